#!/usr/bin/env python3
"""The gguf-py side of docs/QUANT.md's measurement: writes SIZE_MIB of
random Q4_K blocks (finite f16 scales) as a tensor of 4096-value rows, times
`gguf.quants.dequantize` on them, and writes its f32 output so the Rust side
(`cargo run --release -p aero-quant --example dequant_file`) can check that
it produces the same bits.

    python3 bench/gguf_py_q4k.py OUT_DIR [--mib 256] [--runs 1]

Writes OUT_DIR/q4_k.packed and OUT_DIR/q4_k.f32 (about 7.1x the packed size).
"""

import argparse
import pathlib
import sys
import time

import numpy as np
from gguf.constants import GGMLQuantizationType as T
from gguf.quants import dequantize

BLOCK_BYTES, BLOCK_ELEMS, ROW_BLOCKS = 144, 256, 16  # Q4_K; rows of 4096 values


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=pathlib.Path)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    rows = args.mib * 1024 * 1024 // (BLOCK_BYTES * ROW_BLOCKS)
    rng = np.random.default_rng(7)
    packed = rng.integers(0, 256, (rows * ROW_BLOCKS, BLOCK_BYTES), dtype=np.uint8)
    for off in (0, 2):  # d and dmin: random sign and mantissa, exponent 2^-14 .. 2^-1
        h = rng.integers(0, 0x10000, rows * ROW_BLOCKS, dtype=np.uint32)
        h = (h & 0x83FF) | (rng.integers(1, 15, rows * ROW_BLOCKS, dtype=np.uint32) << 10)
        packed[:, off] = h & 0xFF
        packed[:, off + 1] = (h >> 8) & 0xFF
    packed = packed.reshape(rows, ROW_BLOCKS * BLOCK_BYTES)
    (args.out_dir / "q4_k.packed").write_bytes(packed.tobytes())
    n_values = rows * ROW_BLOCKS * BLOCK_ELEMS
    print(f"Q4_K: {packed.nbytes} packed bytes ({packed.nbytes / 2**20:.1f} MiB), "
          f"{rows} rows x {ROW_BLOCKS * BLOCK_ELEMS} = {n_values} values")

    times = []
    out = None
    for _ in range(args.runs):
        out = None
        t0 = time.perf_counter()
        out = dequantize(packed, T.Q4_K)
        times.append(time.perf_counter() - t0)
    assert out.dtype == np.float32 and out.size == n_values
    best = min(times)
    print(f"gguf-py {__import__('importlib.metadata').metadata.version('gguf')} "
          f"numpy {np.__version__}: gguf.quants.dequantize best of {args.runs}: {best:.3f} s, "
          f"{n_values * 4 / best / 1e9:.3f} GB/s of f32 output")
    (args.out_dir / "q4_k.f32").write_bytes(out.astype("<f4", copy=False).tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
