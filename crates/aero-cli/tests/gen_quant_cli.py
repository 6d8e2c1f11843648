#!/usr/bin/env python3
"""GGUF fixtures for the `diff`, `extract --as` and Q8_1 tests, written with gguf-py.

Usage: gen_quant_cli.py OUT_DIR

  a.gguf        blk.0.q.weight Q8_0 [8, 64] (gguf-py's quantize), norm.weight F16 [4, 32],
                out.weight F32 [16]
  changed.gguf  a.gguf with one value of norm.weight changed
  reorder.gguf  a.gguf's tensors in the reverse order
  requant.gguf  a.gguf with blk.0.q.weight quantized to Q4_0 from the same values
  q81.gguf      a Q8_1 tensor of 512 values as gguf-py lays it out (40-byte blocks:
                640 bytes where ggml's 36-byte blocks take 576), then an F32 tensor
  q.f32 / q.f16 / q.bf16   blk.0.q.weight of a.gguf: gguf.quants.dequantize, its
                numpy astype(float16), and its bf16 rounded to nearest even
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, quants


def write(path, qtype=T.Q8_0, change=False, reverse=False):
    rng = np.random.default_rng(5)
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny")
    w.add_array("tokenizer.ggml.tokens", ["a", "b", "c"] * 100)
    q = rng.standard_normal((8, 64)).astype(np.float32)
    norm = rng.standard_normal((4, 32)).astype(np.float16)
    if change:
        norm[0, 0] += 1
    tensors = [
        ("blk.0.q.weight", quants.quantize(q, qtype), qtype),
        ("norm.weight", norm, None),
        ("out.weight", rng.standard_normal((16,)).astype(np.float32), None),
    ]
    if reverse:
        tensors.reverse()
    for name, data, raw in tensors:
        if raw is None:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    tensors = write(os.path.join(out, "a.gguf"))
    write(os.path.join(out, "changed.gguf"), change=True)
    write(os.path.join(out, "reorder.gguf"), reverse=True)
    write(os.path.join(out, "requant.gguf"), qtype=T.Q4_0)

    ref = quants.dequantize(tensors[0][1], T.Q8_0).astype(np.float32).ravel()
    ref.tofile(os.path.join(out, "q.f32"))
    ref.astype(np.float16).tofile(os.path.join(out, "q.f16"))
    bits = ref.view(np.uint32).astype(np.uint64)
    bf16 = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    bf16.tofile(os.path.join(out, "q.bf16"))

    w = gguf.GGUFWriter(os.path.join(out, "q81.gguf"), "llama")
    raw = np.random.default_rng(1).integers(0, 256, size=(640,), dtype=np.uint8)
    w.add_tensor("q81.weight", raw, raw_dtype=T.Q8_1)
    w.add_tensor("after.weight", np.ones((32,), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
