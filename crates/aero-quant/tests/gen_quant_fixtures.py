#!/usr/bin/env python3
"""Fixtures for aero-quant's bit-exactness test (tests/it/gguf_py.rs runs this).

For every ggml type aero-quant decodes, writes into OUT_DIR:

    NAME.packed   packed ggml blocks
    NAME.f32      the expected values, little-endian f32
    NAME.f16      numpy's rounding of those f32 (astype(np.float16)), LE bits
    NAME.bf16     round-to-nearest-even of the f32 bits (quiet NaN), LE bits
    manifest.tsv  NAME <tab> id <tab> n_elems <tab> where the f32 came from

The packed blocks are: gguf-py's own `gguf.quants.quantize` of random data
where gguf-py can quantize the type; random blocks whose f16/f32 scale fields
are made finite (an all-ones exponent loses its top bit); blocks where those
scales are extreme (max, min normal, min subnormal, ±0, negative); a few raw
blocks with Inf/NaN scales and all-0x00 / all-0xFF blocks; and, for the
lattice and table types, blocks whose index fields walk every grid point,
sign pattern and scale byte, so a wrong table entry anywhere is seen.

The expected f32 is `gguf.quants.dequantize` for every type gguf-py decodes,
numpy's `astype(np.float32)` for F64/I8/I16/I32/I64, and numpy's
`d * q` in f32 for Q8_K (ggml's dequantize_row_q8_K; gguf-py has no Q8_K).

    python3 gen_quant_fixtures.py OUT_DIR [--seed N]
"""

import argparse
import importlib.metadata
import pathlib
import sys

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

# Offsets of the f16 scale fields in each block (ggml-common.h).
F16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    "IQ2_XXS": [0], "IQ2_XS": [0], "IQ2_S": [0], "IQ3_XXS": [0], "IQ3_S": [0],
    "IQ1_S": [0], "IQ4_NL": [0], "IQ4_XS": [0], "TQ1_0": [52], "TQ2_0": [64],
}  # IQ1_M spreads its f16 over four nibbles; MXFP4/NVFP4 scales are always finite.

GGUF_DEQUANT = [
    "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K",
    "Q5_K", "Q6_K", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS",
    "IQ3_S", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4", "NVFP4", "F32",
]
NUMPY_CAST = {"F64": np.float64, "I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64}

EXTREME_F16 = [0x7BFF, 0xFBFF, 0x0400, 0x0001, 0x8001, 0x03FF, 0x0000, 0x8000, 0x3C00, 0xBC00]
NONFINITE_F16 = [0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFFFF]


def finite_f16(h: np.ndarray) -> np.ndarray:
    return np.where((h & 0x7C00) == 0x7C00, h & ~np.uint16(0x4000), h).astype(np.uint16)


def set_u16(blocks: np.ndarray, off: int, values) -> None:
    v = np.asarray(values, dtype=np.uint16).reshape(-1)
    blocks[:, off] = (v & 0xFF).astype(np.uint8)
    blocks[:, off + 1] = (v >> 8).astype(np.uint8)


def get_u16(blocks: np.ndarray, off: int) -> np.ndarray:
    return blocks[:, off].astype(np.uint16) | (blocks[:, off + 1].astype(np.uint16) << 8)


def iq1m_fix_d(blocks: np.ndarray, special=None) -> None:
    """IQ1_M's f16 d is the top nibbles of its four u16 scales (bytes 48..56)."""
    s = [get_u16(blocks, 48 + 2 * i) for i in range(4)]
    d = (s[0] >> 12) | ((s[1] >> 8) & 0xF0) | ((s[2] >> 4) & 0xF00) | (s[3] & 0xF000)
    d = finite_f16(d) if special is None else np.full_like(d, special)
    for i in range(4):
        nib = (d >> (4 * i)) & 0xF
        set_u16(blocks, 48 + 2 * i, (s[i] & 0x0FFF) | (nib << 12))


def random_blocks(rng, name: str, n: int) -> np.ndarray:
    size = GGML_QUANT_SIZES[T[name]][1]
    blocks = rng.integers(0, 256, (n, size), dtype=np.uint8)
    for off in F16_FIELDS.get(name, []):
        set_u16(blocks, off, finite_f16(get_u16(blocks, off)))
    if name == "IQ1_M":
        iq1m_fix_d(blocks)
    if name == "Q8_K":
        d = blocks[:, :4].copy().view(np.uint32).reshape(-1)
        d = np.where((d & 0x7F800000) == 0x7F800000, d & ~np.uint32(0x40000000), d).astype(np.uint32)
        blocks[:, :4] = d.view(np.uint8).reshape(n, 4)
    return blocks


def extreme_blocks(rng, name: str) -> np.ndarray:
    size = GGML_QUANT_SIZES[T[name]][1]
    out = []
    specials = EXTREME_F16 + NONFINITE_F16
    if name in F16_FIELDS:
        for v in specials:
            b = random_blocks(rng, name, 1)
            for off in F16_FIELDS[name]:
                set_u16(b, off, [v])
            out.append(b)
        # Scale fields differing from each other (d huge, dmin tiny and so on).
        if len(F16_FIELDS[name]) == 2:
            for a, c in [(0x7BFF, 0x0001), (0x0001, 0x7BFF), (0xFBFF, 0x7BFF)]:
                b = random_blocks(rng, name, 1)
                set_u16(b, F16_FIELDS[name][0], [a])
                set_u16(b, F16_FIELDS[name][1], [c])
                out.append(b)
    elif name == "IQ1_M":
        for v in specials:
            b = random_blocks(rng, name, 1)
            iq1m_fix_d(b, v)
            out.append(b)
    elif name == "Q8_K":
        for v in [3.4028235e38, -3.4028235e38, 1e-45, 1.1754944e-38, 0.0, -0.0, np.inf, np.nan]:
            b = random_blocks(rng, name, 1)
            b[:, :4] = np.array([v], dtype=np.float32).view(np.uint8)
            out.append(b)
    out.append(np.zeros((1, size), dtype=np.uint8))
    out.append(np.full((1, size), 0xFF, dtype=np.uint8))
    out.append(rng.integers(0, 256, (4, size), dtype=np.uint8))  # raw, unmasked
    return np.concatenate(out, axis=0)


def put_u32(b: np.ndarray, off: int, v: int) -> None:
    b[off:off + 4] = np.frombuffer(int(v).to_bytes(4, "little"), dtype=np.uint8)


def coverage_blocks(rng, name: str) -> np.ndarray:
    """Blocks whose index fields walk every grid point / sign pattern / scale byte."""
    if name == "IQ2_XXS":  # 256 grid points, 128 sign patterns: 32 of each per block
        blocks = random_blocks(rng, name, 8)
        for bi, b in enumerate(blocks):
            for ib in range(8):
                aux1 = int(rng.integers(0, 16)) << 28
                for k in range(4):
                    i = bi * 32 + ib * 4 + k
                    b[2 + 8 * ib + k] = i % 256
                    aux1 |= (i % 128) << (7 * k)
                put_u32(b, 2 + 8 * ib + 4, aux1)
        return blocks
    if name == "IQ2_XS":  # 512 grid points: 32 per block
        blocks = random_blocks(rng, name, 16)
        for bi, b in enumerate(blocks):
            for l in range(32):
                i = bi * 32 + l
                q = (i % 512) | ((i % 128) << 9)
                b[2 + 2 * l], b[3 + 2 * l] = q & 0xFF, q >> 8
        return blocks
    if name == "IQ2_S":  # 1024 grid points: 32 per block
        blocks = random_blocks(rng, name, 32)
        for bi, b in enumerate(blocks):
            b[66:74] = 0
            for l in range(32):
                g = (bi * 32 + l) % 1024
                b[2 + l] = g & 0xFF
                b[66 + l // 4] |= (g >> 8) << (2 * (l % 4))
        return blocks
    if name == "IQ3_XXS":  # 256 grid points (64 per block), 128 sign patterns
        blocks = random_blocks(rng, name, 4)
        for bi, b in enumerate(blocks):
            for m in range(64):
                b[2 + m] = (bi * 64 + m) % 256
            for ib in range(8):
                aux = int(rng.integers(0, 16)) << 28
                for k in range(4):
                    aux |= ((bi * 32 + ib * 4 + k) % 128) << (7 * k)
                put_u32(b, 66 + 4 * ib, aux)
        return blocks
    if name == "IQ3_S":  # 512 grid points: 64 per block
        blocks = random_blocks(rng, name, 8)
        for bi, b in enumerate(blocks):
            b[66:74] = 0
            for l in range(64):
                g = (bi * 64 + l) % 512
                b[2 + l] = g & 0xFF
                b[66 + l // 8] |= (g >> 8) << (l % 8)
        return blocks
    if name == "IQ1_S":  # 2048 grid points: 32 per block
        blocks = random_blocks(rng, name, 64)
        for bi, b in enumerate(blocks):
            for ib in range(8):
                qh = int(b[34 + 2 * ib]) | (int(b[35 + 2 * ib]) << 8)
                qh &= 0xF000
                for k in range(4):
                    g = (bi * 32 + ib * 4 + k) % 2048
                    b[2 + ib * 4 + k] = g & 0xFF
                    qh |= (g >> 8) << (3 * k)
                b[34 + 2 * ib], b[35 + 2 * ib] = qh & 0xFF, qh >> 8
        return blocks
    if name == "IQ1_M":  # 2048 grid points: 32 per block
        blocks = random_blocks(rng, name, 64)
        for bi, b in enumerate(blocks):
            for l in range(32):
                g = (bi * 32 + l) % 2048
                b[l] = g & 0xFF
                shift = 4 * (l % 2)
                nib = (int(b[32 + l // 2]) >> shift) & 0x8 | (g >> 8)
                b[32 + l // 2] = (int(b[32 + l // 2]) & ~(0xF << shift) & 0xFF) | (nib << shift)
        return blocks
    if name == "NVFP4":  # every UE4M3 scale byte
        blocks = random_blocks(rng, name, 64)
        for bi, b in enumerate(blocks):
            b[0:4] = [bi * 4 + s for s in range(4)]
        return blocks
    if name == "MXFP4":  # every E8M0 scale byte
        blocks = random_blocks(rng, name, 256)
        blocks[:, 0] = np.arange(256, dtype=np.uint8)
        return blocks
    return random_blocks(rng, name, 0)


def quantized_blocks(rng, name: str) -> np.ndarray | None:
    """gguf-py's own quantization of random rows, if gguf-py can quantize `name`."""
    rows = [rng.standard_normal(256) * s for s in (1e-3, 1.0, 30.0, 1e4)]
    rows.append(np.zeros(256))
    spike = rng.standard_normal(256) * 0.01
    spike[17] = 50.0
    rows.append(spike)
    rows.append(rng.uniform(-1, 1, 256))
    data = np.stack(rows).astype(np.float32)
    try:
        packed = quantize(data, T[name])
    except NotImplementedError:
        return None
    size = GGML_QUANT_SIZES[T[name]][1]
    return np.ascontiguousarray(packed).view(np.uint8).reshape(-1, size)


def plain_f32(rng) -> np.ndarray:
    """f32 values that exercise f32 -> f16 / bf16 rounding: random bits, every
    f16 value, f16 midpoints and their neighbours, bf16 midpoints."""
    h = np.arange(0x10000, dtype=np.uint32)
    h = h[(h & 0x7C00) != 0x7C00].astype(np.uint16)
    exact = h.view(np.float16).astype(np.float32)
    ebits = exact.view(np.uint32)
    # Midpoints between consecutive f16 normals: set the 13 dropped bits to 0x1000.
    normal = ebits[((ebits >> 23) & 0xFF) >= 113]
    mids = normal | 0x1000
    vals = [ebits, mids, mids + 1, mids - 1,
            rng.integers(0, 2**32, 4096, dtype=np.uint64).astype(np.uint32),
            (rng.integers(0, 2**32, 4096, dtype=np.uint64).astype(np.uint32) & 0xFFFF0000) | 0x8000,
            np.array([0x477FEFFF, 0x477FF000, 0x477FF001, 0x33000000, 0x33000001, 0x32FFFFFF,
                      0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFFFFFFF, 0x7F7FFFFF,
                      0x00000001, 0x80000001, 0x7F7F8000, 0x7F7FFFFF], dtype=np.uint32)]
    return np.concatenate(vals).astype(np.uint32)


def plain_blocks(rng, name: str) -> np.ndarray:
    if name == "F32":
        return plain_f32(rng).view(np.uint8).reshape(-1, 4)
    if name == "F16":
        return np.arange(0x10000, dtype=np.uint16).view(np.uint8).reshape(-1, 2)
    if name == "BF16":
        q = quantized_blocks(rng, name).reshape(-1)
        raw = rng.integers(0, 256, 8192, dtype=np.uint8)
        return np.concatenate([q, raw]).reshape(-1, 2)
    ty = NUMPY_CAST[name]
    if ty == np.float64:
        vals = np.concatenate([
            rng.standard_normal(2048) * 10.0 ** rng.integers(-50, 50, 2048),
            [1e300, -1e300, 1e-300, 3.4028235677973366e38, 3.4028235677973362e38, 1.401298464324817e-45,
             7.006492321624085e-46, 7.006492321624087e-46, np.inf, -np.inf, np.nan, 0.0, -0.0],
        ]).astype(np.float64)
        raw = rng.integers(0, 2**63, 1024, dtype=np.int64).view(np.float64)
        return np.concatenate([vals, raw]).view(np.uint8).reshape(-1, 8)
    info = np.iinfo(ty)
    vals = rng.integers(info.min, info.max, 4096, dtype=ty, endpoint=True)
    edge = np.array([info.min, info.max, 0, -1, 1, info.max - 1, info.min + 1], dtype=ty)
    if ty in (np.int32, np.int64):  # ints that are not exact in f32, ties included
        edge = np.concatenate([edge, np.array([2**24 + 1, 2**24 + 3, -(2**24 + 1), 2**31 - 64, 2**31 - 65], dtype=ty)])
    if ty == np.int64:
        edge = np.concatenate([edge, np.array([2**62 + 2**38, 2**62 + 2**38 + 1, 2**63 - 1], dtype=ty)])
    return np.concatenate([vals, edge]).view(np.uint8).reshape(-1, np.dtype(ty).itemsize)


def expected_f32(name: str, packed: np.ndarray) -> tuple[np.ndarray, str]:
    with np.errstate(all="ignore"):
        if name in GGUF_DEQUANT:
            out = dequantize(packed.reshape(1, -1) if name in ("F32", "F16", "BF16") else packed, T[name])
            return np.asarray(out, dtype=np.float32).reshape(-1), "gguf.quants.dequantize"
        if name in NUMPY_CAST:
            return packed.reshape(-1).view(NUMPY_CAST[name]).astype(np.float32), "numpy astype(float32)"
        if name == "Q8_K":
            d = packed[:, :4].copy().view(np.float32)
            q = packed[:, 4:260].view(np.int8).astype(np.float32)
            return (d * q).reshape(-1), "numpy d*q (ggml dequantize_row_q8_K)"
    raise SystemExit(f"no reference for {name}")


def bf16_bits(f: np.ndarray) -> np.ndarray:
    n = f.view(np.uint32).astype(np.uint64)
    nan = (n & 0x7FFFFFFF) > 0x7F800000
    rounded = (n + 0x7FFF + ((n >> 16) & 1)) >> 16
    return np.where(nan, (n >> 16) | 0x40, rounded).astype(np.uint16)


TYPES = GGUF_DEQUANT + list(NUMPY_CAST) + ["Q8_K"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=pathlib.Path)
    ap.add_argument("--seed", type=int, default=20240615)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    manifest = [f"# gguf {importlib.metadata.version('gguf')} numpy {np.__version__} seed {args.seed}"]
    for index, name in enumerate(TYPES):
        rng = np.random.default_rng([args.seed, index])
        block_elems, block_bytes = GGML_QUANT_SIZES[T[name]]
        if block_elems == 1:
            packed = plain_blocks(rng, name)
        else:
            n_random = max(16, 8192 // block_elems)
            parts = [random_blocks(rng, name, n_random), extreme_blocks(rng, name), coverage_blocks(rng, name)]
            q = quantized_blocks(rng, name)
            if q is not None:
                parts.insert(0, q)
            packed = np.ascontiguousarray(np.concatenate(parts, axis=0))
        assert packed.dtype == np.uint8 and packed.shape[1] == block_bytes, name
        f32, source = expected_f32(name, packed)
        n_elems = packed.shape[0] * block_elems
        assert f32.shape == (n_elems,), (name, f32.shape)
        with np.errstate(all="ignore"):
            f16 = f32.astype(np.float16).view(np.uint16)
        (args.out_dir / f"{name}.packed").write_bytes(packed.tobytes())
        (args.out_dir / f"{name}.f32").write_bytes(f32.astype("<f4").tobytes())
        (args.out_dir / f"{name}.f16").write_bytes(f16.astype("<u2").tobytes())
        (args.out_dir / f"{name}.bf16").write_bytes(bf16_bits(f32).astype("<u2").tobytes())
        manifest.append(f"{name}\t{T[name].value}\t{n_elems}\t{source}")
    (args.out_dir / "manifest.tsv").write_text("\n".join(manifest) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
