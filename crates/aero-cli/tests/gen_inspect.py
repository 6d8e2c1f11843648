#!/usr/bin/env python3
"""A GGUF file with every key/value type and several tensor types, written
with gguf-py, for the `inspect`/`list` vs `gguf-dump` test.

Usage: gen_inspect.py OUT_DIR   (writes OUT_DIR/kv.gguf and OUT_DIR/m.safetensors)
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, quants
from safetensors.numpy import save_file


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(os.path.join(out, "kv.gguf"), "llama")
    w.add_name("inspect-fixture")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.5)
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float64("t.f64", 1.25)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo | world")
    w.add_string("tokenizer.chat_template", "{% for m in messages %}" * 40)
    w.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(1000)])
    w.add_array("tokenizer.ggml.scores", [float(i) / 4 for i in range(1000)])
    w.add_array("t.ints", [1, 2, 3])
    w.add_array("t.bools", [True, False])
    w.add_array("t.empty", [])
    w.add_array("t.nested", [[1, 2], [3]])
    q = rng.standard_normal((4, 256)).astype(np.float32)
    q4k = rng.integers(0, 256, size=(4, 144), dtype=np.uint8)
    w.add_tensor("blk.0.attn_q.weight", q4k, raw_dtype=T.Q4_K)
    w.add_tensor("blk.0.attn_k.weight", quants.quantize(q, T.Q8_0), raw_dtype=T.Q8_0)
    iq = rng.integers(0, 256, size=(2, 74 * 2), dtype=np.uint8)
    w.add_tensor("blk.1.ffn_up.weight", iq, raw_dtype=T.IQ2_XS)
    w.add_tensor("blk.1.ffn_norm.weight", rng.standard_normal((64,)).astype(np.float32))
    w.add_tensor("token_embd.weight", rng.standard_normal((8, 32)).astype(np.float16))
    bf = rng.integers(0, 2**16, size=(3, 16), dtype=np.uint16)
    w.add_tensor("output.weight", bf, raw_dtype=T.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    save_file(
        {
            "model.embed.weight": rng.standard_normal((4, 8)).astype(np.float16),
            "model.norm.weight": np.ones((8,), dtype=np.float32),
            "lm_head.weight": np.zeros((2, 8), dtype=np.int8),
        },
        os.path.join(out, "m.safetensors"),
        metadata={"format": "pt", "note": "a | b"},
    )


if __name__ == "__main__":
    main()
