#!/usr/bin/env python3
"""The dequantization benchmark's Python side (`cargo xtask bench dequant`).

  bench_dequant.py gen OUT.gguf --bytes N
      A GGUF with one Q4_K tensor `w` of about N bytes (rows of 4096
      elements, 16 blocks of 144 bytes each), random quants and scales, the
      two f16 super-block scales set to small finite values, written with
      gguf-py.

  bench_dequant.py run FILE.gguf --slice-mib M --runs R --out OUT.json
      Times gguf.quants.dequantize(Q4_K) over the first M MiB of `w`'s
      bytes, R times after one warm-up, and writes
      {"slice_bytes", "elements", "seconds": [...], "median_s"}. Only the
      call is timed (not Python's start-up or the read).
"""
import argparse
import json
import statistics
import time

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

BLOCK_BYTES, BLOCK_ELEMS, ROW_BLOCKS = 144, 256, 16


def gen(args):
    row_bytes = BLOCK_BYTES * ROW_BLOCKS
    rows = max(1, args.bytes // row_bytes)
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, size=(rows * ROW_BLOCKS, BLOCK_BYTES), dtype=np.uint8)
    scales = np.array([0.01, 0.002], dtype=np.float16).view(np.uint8)
    data[:, 0:4] = scales
    w = gguf.GGUFWriter(args.out, "llama")
    w.add_name("dequant-bench")
    w.add_tensor("w", data.reshape(rows, row_bytes), raw_dtype=T.Q4_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def run(args):
    r = gguf.GGUFReader(args.file)
    t = next(t for t in r.tensors if t.name == "w")
    raw = np.asarray(t.data).reshape(-1)
    n = min(raw.size, args.slice_mib << 20) // (BLOCK_BYTES * ROW_BLOCKS) * (BLOCK_BYTES * ROW_BLOCKS)
    sl = np.ascontiguousarray(raw[:n]).reshape(-1, BLOCK_BYTES * ROW_BLOCKS)
    gguf.quants.dequantize(sl[:16], T.Q4_K)  # warm-up (imports, caches)
    secs = []
    for _ in range(args.runs + 1):
        t0 = time.perf_counter()
        out = gguf.quants.dequantize(sl, T.Q4_K)
        secs.append(time.perf_counter() - t0)
        assert out.size == n // BLOCK_BYTES * BLOCK_ELEMS
        del out
    secs = secs[1:]
    with open(args.out, "w") as f:
        json.dump({"slice_bytes": n, "elements": n // BLOCK_BYTES * BLOCK_ELEMS,
                   "seconds": secs, "median_s": statistics.median(secs)}, f)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("--bytes", type=int, required=True)
    r = sub.add_parser("run")
    r.add_argument("file")
    r.add_argument("--slice-mib", type=int, default=64)
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--out", required=True)
    a = p.parse_args()
    gen(a) if a.cmd == "gen" else run(a)


if __name__ == "__main__":
    main()
