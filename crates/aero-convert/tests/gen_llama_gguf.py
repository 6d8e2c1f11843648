#!/usr/bin/env python3
"""A tiny llama GGUF written the way llama.cpp's convert_hf_to_gguf.py
writes one, and what a Hugging Face state dict of it must hold.

Usage: gen_llama_gguf.py OUT_DIR

Writes OUT_DIR/llama.gguf (architecture llama, 1 block, 4 heads, 2 KV heads,
head_dim 8: Q and K rows permuted by LlamaModel.permute below, a copy of
llama.cpp's; tensors in F32, F16, BF16 and Q8_0) and, for every Hugging Face
name, OUT_DIR/<name>.bin with the values the state dict must hand out
(little-endian f32, or f16 for the F16 tensor) plus OUT_DIR/expected.json
{name: {"file", "dtype": "f32"|"f16", "shape"}}.

Expected values never go through an inverse permutation: for a quantized
or BF16 tensor they are gguf-py's dequantize(quantize(W)) of the HF-order
matrix W (quantization blocks run along rows and the permutation moves
whole rows, so this is what unpermuting the GGUF tensor must give).
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

N_HEAD, N_KV, DIM, FF, VOCAB = 4, 2, 32, 64, 48
HEAD_DIM = DIM // N_HEAD


def permute(weights, n_head, n_head_kv):
    # llama.cpp convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(2024)
    w = gguf.GGUFWriter(os.path.join(out, "llama.gguf"), "llama")
    w.add_name("tiny-llama-for-tests")
    w.add_block_count(1)
    w.add_embedding_length(DIM)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_KV)
    expected = {}

    def put(gguf_name, hf_name, hf, qtype, perm=None):
        hf = hf.astype(np.float32)
        stored = permute(hf, *perm) if perm else hf
        if qtype == T.F32:
            w.add_tensor(gguf_name, stored)
            want, dt = hf, "f32"
        elif qtype == T.F16:
            w.add_tensor(gguf_name, stored.astype(np.float16))
            want, dt = hf.astype(np.float16), "f16"
        else:
            w.add_tensor(gguf_name, quants.quantize(stored, qtype), raw_dtype=qtype)
            want = quants.dequantize(quants.quantize(hf, qtype), qtype).astype(np.float32)
            dt = "f32"
        fname = hf_name + ".bin"
        np.ascontiguousarray(want).astype("<" + want.dtype.str[1:]).tofile(os.path.join(out, fname))
        expected[hf_name] = {"file": fname, "dtype": dt, "shape": list(hf.shape)}

    r = lambda *s: rng.standard_normal(s)
    put("token_embd.weight", "model.embed_tokens.weight", r(VOCAB, DIM), T.F16)
    put("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight", r(DIM), T.F32)
    put("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", r(DIM, DIM), T.F32, (N_HEAD, N_HEAD))
    put("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight", r(N_KV * HEAD_DIM, DIM), T.Q8_0,
        (N_HEAD, N_KV))
    put("blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj.weight", r(N_KV * HEAD_DIM, DIM), T.F32)
    put("blk.0.attn_output.weight", "model.layers.0.self_attn.o_proj.weight", r(DIM, DIM), T.BF16)
    put("blk.0.ffn_norm.weight", "model.layers.0.post_attention_layernorm.weight", r(DIM), T.F32)
    put("blk.0.ffn_gate.weight", "model.layers.0.mlp.gate_proj.weight", r(FF, DIM), T.Q8_0)
    put("blk.0.ffn_up.weight", "model.layers.0.mlp.up_proj.weight", r(FF, DIM), T.F32)
    put("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight", r(DIM, FF), T.Q8_0)
    put("output_norm.weight", "model.norm.weight", r(DIM), T.F32)
    put("output.weight", "lm_head.weight", r(VOCAB, DIM), T.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
