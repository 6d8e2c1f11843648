#!/usr/bin/env python3
"""Makes examples/tiny/tiny-llama.safetensors: a tiny, deterministic
llama-shaped model (2 layers, hidden 32) used by README's example command.

usage: python3 examples/tiny/make_tiny.py [OUT]
"""
import os
import sys

import numpy as np
from safetensors.numpy import save_file

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "tiny-llama.safetensors")
rng = np.random.default_rng(2026)
hidden, vocab, ff = 32, 64, 64
t = {
    "model.embed_tokens.weight": rng.standard_normal((vocab, hidden)).astype(np.float16),
    "model.norm.weight": np.ones(hidden, dtype=np.float32),
    "lm_head.weight": rng.standard_normal((vocab, hidden)).astype(np.float16),
    "model.rope.inv_freq": (1.0 / 10000 ** (np.arange(0, hidden, 2) / hidden)).astype(np.float32),
    "model.position_ids": np.arange(16, dtype=np.int64),
}
for i in range(2):
    p = f"model.layers.{i}."
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        t[p + f"self_attn.{name}.weight"] = rng.standard_normal((hidden, hidden)).astype(np.float16)
    t[p + "mlp.gate_proj.weight"] = rng.standard_normal((ff, hidden)).astype(np.float16)
    t[p + "mlp.up_proj.weight"] = rng.standard_normal((ff, hidden)).astype(np.float16)
    t[p + "mlp.down_proj.weight"] = rng.standard_normal((hidden, ff)).astype(np.float16)
    t[p + "input_layernorm.weight"] = np.ones(hidden, dtype=np.float32)
    t[p + "post_attention_layernorm.weight"] = np.ones(hidden, dtype=np.float32)
save_file(t, out, metadata={"model_name": "tiny-llama", "architecture": "llama"})
print(f"wrote {out}")
