//! One decoder per ggml type: a packed block (`&[u8; BYTES]`) in, its values
//! (`&mut [f32; ELEMS]`) out.
//!
//! The layouts are ggml's block structs (`ggml-common.h`); the arithmetic is
//! gguf-py's `gguf/quants.py`, operation for operation, so the f32 results are
//! the same bits: every product and sum is one IEEE f32 operation in the order
//! gguf-py's numpy expressions evaluate them (Rust never fuses a multiply and
//! an add on its own). Indices only come from loop counters over constant
//! ranges and from masked fields that fit their tables, so no input can make
//! a decoder index out of bounds.
// The loops index several arrays with arithmetic that mirrors the block
// layout; iterator chains would hide it.
#![allow(clippy::needless_range_loop)]

use crate::grids::{IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID};
use crate::half::f16_to_f32;

/// ggml's `kvalues_iq4nl`: the 16 non-linear levels of IQ4_NL and IQ4_XS.
pub(crate) const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// ggml's `kvalues_mxfp4`: the E2M1 (FP4) values, doubled so they are
/// integers; the block scales are halved to compensate.
pub(crate) const KVALUES_E2M1X2: [i8; 16] =
    [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// ggml's `ksigns_iq2xs`: 7 stored sign bits, the 8th makes the parity even.
pub(crate) const KSIGNS: [u8; 128] = ksigns();

const fn ksigns() -> [u8; 128] {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let parity = (i as u32).count_ones() as u8 & 1;
        t[i] = i as u8 | (parity << 7);
        i += 1;
    }
    t
}

/// E8M0 scale byte → 2^(e-127) / 2 (ggml's `ggml_e8m0_to_fp32_half`); e < 2
/// gives the f32 subnormals 2^-128 and 2^-127.
#[inline(always)]
fn e8m0_half(e: u8) -> f32 {
    let e = u32::from(e);
    let bits = if e < 2 {
        0x0020_0000 << e
    } else {
        (e - 1) << 23
    };
    f32::from_bits(bits)
}

/// UE4M3 scale byte → value / 2 (ggml's `ggml_ue4m3_to_fp32`): 4 exponent
/// bits (bias 7), 3 mantissa bits, bit 7 ignored; 0x00 and 0x7F (NaN) give 0.
/// Every entry is exact in f32.
pub(crate) static UE4M3_HALF: [f32; 256] = ue4m3_half_table();

const fn ue4m3_half_table() -> [f32; 256] {
    let mut t = [0f32; 256];
    let mut x = 0;
    while x < 256 {
        let exp = (x >> 3) & 0xf;
        let man = (x & 7) as f32;
        let raw = if exp == 0 {
            man * (1.0 / 512.0)
        } else {
            // 2^(exp - 7) built from its bits: exact.
            (1.0 + man / 8.0) * f32::from_bits(((exp as u32) + 127 - 7) << 23)
        };
        t[x] = if x == 0 || x == 0x7f { 0.0 } else { raw * 0.5 };
        x += 1;
    }
    t
}

#[inline(always)]
fn u16_at<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn u32_at<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
fn f16_at<const N: usize>(b: &[u8; N], at: usize) -> f32 {
    f16_to_f32(u16_at(b, at))
}

/// `x` with its sign flipped when bit `bit` of `signs` is set: the same value
/// as gguf-py's multiplication by ±1.0.
#[inline(always)]
fn signed(x: f32, signs: u8, bit: usize) -> f32 {
    f32::from_bits(x.to_bits() ^ ((u32::from(signs >> bit) & 1) << 31))
}

// ---------------------------------------------------------------- plain types

#[inline(always)]
pub(crate) fn f32_le(b: &[u8; 4], y: &mut [f32; 1]) {
    y[0] = f32::from_le_bytes(*b);
}

#[inline(always)]
pub(crate) fn f16(b: &[u8; 2], y: &mut [f32; 1]) {
    y[0] = f16_to_f32(u16::from_le_bytes(*b));
}

#[inline(always)]
pub(crate) fn bf16(b: &[u8; 2], y: &mut [f32; 1]) {
    y[0] = f32::from_bits(u32::from(u16::from_le_bytes(*b)) << 16);
}

#[inline(always)]
pub(crate) fn f64_le(b: &[u8; 8], y: &mut [f32; 1]) {
    y[0] = f64::from_le_bytes(*b) as f32;
}

#[inline(always)]
pub(crate) fn i8_(b: &[u8; 1], y: &mut [f32; 1]) {
    y[0] = f32::from(b[0] as i8);
}

#[inline(always)]
pub(crate) fn i16_le(b: &[u8; 2], y: &mut [f32; 1]) {
    y[0] = f32::from(i16::from_le_bytes(*b));
}

#[inline(always)]
pub(crate) fn i32_le(b: &[u8; 4], y: &mut [f32; 1]) {
    y[0] = i32::from_le_bytes(*b) as f32;
}

#[inline(always)]
pub(crate) fn i64_le(b: &[u8; 8], y: &mut [f32; 1]) {
    y[0] = i64::from_le_bytes(*b) as f32;
}

// ------------------------------------------------------- 32-element blocks

/// `block_q4_0`: f16 d, 16 bytes of nibbles (low nibbles are values 0..16,
/// high nibbles 16..32); value = d * (q - 8).
#[inline(always)]
pub(crate) fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for l in 0..16 {
        let q = b[2 + l];
        y[l] = d * f32::from((q & 0xf) as i8 - 8);
        y[l + 16] = d * f32::from((q >> 4) as i8 - 8);
    }
}

/// `block_q4_1`: f16 d, f16 m, nibbles; value = d * q + m.
#[inline(always)]
pub(crate) fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    for l in 0..16 {
        let q = b[4 + l];
        y[l] = d * f32::from(q & 0xf) + m;
        y[l + 16] = d * f32::from(q >> 4) + m;
    }
}

/// `block_q5_0`: f16 d, u32 qh (5th bit of value j is bit j), nibbles;
/// value = d * (q - 16).
#[inline(always)]
pub(crate) fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let qh = u32_at(b, 2);
    for l in 0..16 {
        let q = b[6 + l];
        let h0 = ((qh >> l) & 1) as u8;
        let h1 = ((qh >> (l + 16)) & 1) as u8;
        y[l] = d * f32::from(((q & 0xf) | (h0 << 4)) as i8 - 16);
        y[l + 16] = d * f32::from(((q >> 4) | (h1 << 4)) as i8 - 16);
    }
}

/// `block_q5_1`: f16 d, f16 m, u32 qh, nibbles; value = d * q + m.
#[inline(always)]
pub(crate) fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let qh = u32_at(b, 4);
    for l in 0..16 {
        let q = b[8 + l];
        let h0 = ((qh >> l) & 1) as u8;
        let h1 = ((qh >> (l + 16)) & 1) as u8;
        y[l] = d * f32::from((q & 0xf) | (h0 << 4)) + m;
        y[l + 16] = d * f32::from((q >> 4) | (h1 << 4)) + m;
    }
}

/// `block_q8_0`: f16 d, 32 x i8; value = q * d.
#[inline(always)]
pub(crate) fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for l in 0..32 {
        y[l] = f32::from(b[2 + l] as i8) * d;
    }
}

/// `block_iq4_nl`: f16 d, nibbles indexing `kvalues_iq4nl`; value = d * kv.
#[inline(always)]
pub(crate) fn iq4_nl(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for l in 0..16 {
        let q = b[2 + l];
        y[l] = d * f32::from(KVALUES_IQ4NL[usize::from(q & 0xf)]);
        y[l + 16] = d * f32::from(KVALUES_IQ4NL[usize::from(q >> 4)]);
    }
}

/// `block_mxfp4`: E8M0 e, nibbles indexing the doubled E2M1 values;
/// value = (2^(e-127) / 2) * kv.
#[inline(always)]
pub(crate) fn mxfp4(b: &[u8; 17], y: &mut [f32; 32]) {
    let d = e8m0_half(b[0]);
    for l in 0..16 {
        let q = b[1 + l];
        y[l] = d * f32::from(KVALUES_E2M1X2[usize::from(q & 0xf)]);
        y[l + 16] = d * f32::from(KVALUES_E2M1X2[usize::from(q >> 4)]);
    }
}

/// `block_nvfp4`: 4 UE4M3 scales (one per 16 values), 32 bytes of E2M1
/// nibbles; sub-block s reads bytes 8s..8s+8, low nibbles first.
#[inline(always)]
pub(crate) fn nvfp4(b: &[u8; 36], y: &mut [f32; 64]) {
    for s in 0..4 {
        let d = UE4M3_HALF[usize::from(b[s])];
        for l in 0..8 {
            let q = b[4 + 8 * s + l];
            y[16 * s + l] = d * f32::from(KVALUES_E2M1X2[usize::from(q & 0xf)]);
            y[16 * s + 8 + l] = d * f32::from(KVALUES_E2M1X2[usize::from(q >> 4)]);
        }
    }
}

// ------------------------------------------------------------- K-quants

/// The 6-bit scales and mins of Q4_K and Q5_K (ggml's `get_scale_min_k4`),
/// packed in 12 bytes starting at `at`.
#[inline(always)]
fn scale_min_k4<const N: usize>(b: &[u8; N], at: usize) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..4 {
        let (d, m, md) = (b[at + j], b[at + 4 + j], b[at + 8 + j]);
        sc[j] = d & 0x3f;
        mn[j] = m & 0x3f;
        sc[j + 4] = (md & 0x0f) | ((d >> 2) & 0x30);
        mn[j + 4] = (md >> 4) | ((m >> 2) & 0x30);
    }
    (sc, mn)
}

/// `block_q2_K`: scales[16] (low nibble scale, high nibble min), qs[64]
/// (2 bits), f16 d, f16 dmin; value = (d * sc) * q - (dmin * m).
#[inline(always)]
pub(crate) fn q2_k(b: &[u8; 84], y: &mut [f32; 256]) {
    let d = f16_at(b, 80);
    let dmin = f16_at(b, 82);
    // Value j = 128 half + 32 shift + l takes bits 2 shift.. of byte
    // 32 half + l and scale byte j / 16. The 16 bytes of one (half, sub)
    // feed four runs of 16 values, one per 2-bit field.
    for half in 0..2 {
        for sub in 0..2 {
            let mut dl = [0f32; 4];
            let mut ml = [0f32; 4];
            for shift in 0..4 {
                let sc = b[half * 8 + shift * 2 + sub];
                dl[shift] = d * f32::from(sc & 0xf);
                ml[shift] = dmin * f32::from(sc >> 4);
            }
            let base = half * 128 + sub * 16;
            for l in 0..16 {
                let q = b[16 + half * 32 + sub * 16 + l];
                y[base + l] = dl[0] * f32::from(q & 3) - ml[0];
                y[base + 32 + l] = dl[1] * f32::from((q >> 2) & 3) - ml[1];
                y[base + 64 + l] = dl[2] * f32::from((q >> 4) & 3) - ml[2];
                y[base + 96 + l] = dl[3] * f32::from(q >> 6) - ml[3];
            }
        }
    }
}

/// `block_q3_K`: hmask[32], qs[64] (2 low bits), scales[12] (16 x 6 bits,
/// offset 32), f16 d; value = (d * sc) * q, q = low bits - 4 unless the hmask
/// bit is set.
#[inline(always)]
pub(crate) fn q3_k(b: &[u8; 110], y: &mut [f32; 256]) {
    let d = f16_at(b, 108);
    let mut dl = [0f32; 16];
    for k in 0..16 {
        let lo = (b[96 + (k % 8)] >> (4 * (k / 8))) & 0xf;
        let hi = (b[104 + (k % 4)] >> (2 * (k / 4))) & 3;
        dl[k] = d * f32::from((lo | (hi << 4)) as i8 - 32);
    }
    // Value j = 128 half + 32 shift + l: low bits from byte 32 half + l of
    // qs, high bit (set means no -4) from bit 4 half + shift of hmask[l].
    let q = |low: u8, mask: u8, bit: usize| -> f32 {
        f32::from((low & 3) as i8 - ((((mask >> bit) & 1) ^ 1) << 2) as i8)
    };
    for half in 0..2 {
        for sub in 0..2 {
            let base = half * 128 + sub * 16;
            let s = half * 8 + sub;
            for l in 0..16 {
                let low = b[32 + half * 32 + sub * 16 + l];
                let mask = b[sub * 16 + l];
                y[base + l] = dl[s] * q(low, mask, 4 * half);
                y[base + 32 + l] = dl[s + 2] * q(low >> 2, mask, 4 * half + 1);
                y[base + 64 + l] = dl[s + 4] * q(low >> 4, mask, 4 * half + 2);
                y[base + 96 + l] = dl[s + 6] * q(low >> 6, mask, 4 * half + 3);
            }
        }
    }
}

/// `block_q4_K`: f16 d, f16 dmin, scales[12] (8 x 6-bit scale and min),
/// qs[128]; value = (d * sc) * q - (dmin * m), eight sub-blocks of 32.
#[inline(always)]
pub(crate) fn q4_k(b: &[u8; 144], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let (sc, mn) = scale_min_k4(b, 4);
    // Byte 32 c + l holds value 64 c + l (low nibble) and 64 c + 32 + l (high).
    for c in 0..4 {
        let (dl0, ml0) = (d * f32::from(sc[2 * c]), dmin * f32::from(mn[2 * c]));
        let (dl1, ml1) = (
            d * f32::from(sc[2 * c + 1]),
            dmin * f32::from(mn[2 * c + 1]),
        );
        for l in 0..32 {
            let q = b[16 + c * 32 + l];
            y[64 * c + l] = dl0 * f32::from(q & 0xf) - ml0;
            y[64 * c + 32 + l] = dl1 * f32::from(q >> 4) - ml1;
        }
    }
}

/// `block_q5_K`: f16 d, f16 dmin, scales[12], qh[32] (5th bits: bit s of
/// byte l for value 32s + l), qs[128]; value = (d * sc) * q - (dmin * m).
#[inline(always)]
pub(crate) fn q5_k(b: &[u8; 176], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let (sc, mn) = scale_min_k4(b, 4);
    for c in 0..4 {
        let (dl0, ml0) = (d * f32::from(sc[2 * c]), dmin * f32::from(mn[2 * c]));
        let (dl1, ml1) = (
            d * f32::from(sc[2 * c + 1]),
            dmin * f32::from(mn[2 * c + 1]),
        );
        for l in 0..32 {
            let q = b[48 + c * 32 + l];
            let h = b[16 + l] >> (2 * c);
            y[64 * c + l] = dl0 * f32::from((q & 0xf) | ((h & 1) << 4)) - ml0;
            y[64 * c + 32 + l] = dl1 * f32::from((q >> 4) | ((h & 2) << 3)) - ml1;
        }
    }
}

/// `block_q6_K`: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (i8),
/// f16 d; value = (d * sc) * (q - 32).
#[inline(always)]
pub(crate) fn q6_k(b: &[u8; 210], y: &mut [f32; 256]) {
    let d = f16_at(b, 208);
    let mut dl = [0f32; 16];
    for k in 0..16 {
        dl[k] = d * f32::from(b[192 + k] as i8);
    }
    // Value j = 128 half + 32 k + l: low nibble of ql byte 64 half + l
    // (k = 0), 64 half + 32 + l (k = 1), or their high nibbles (k = 2, 3);
    // high 2 bits k of qh byte 128 + 32 half + l. Scale j / 16.
    let q = |low: u8, high: u8| -> f32 { f32::from((low | (high << 4)) as i8 - 32) };
    for half in 0..2 {
        for sub in 0..2 {
            let base = half * 128 + sub * 16;
            let s = half * 8 + sub;
            for l in 0..16 {
                let a = b[half * 64 + sub * 16 + l];
                let c = b[half * 64 + 32 + sub * 16 + l];
                let h = b[128 + half * 32 + sub * 16 + l];
                y[base + l] = dl[s] * q(a & 0xf, h & 3);
                y[base + 32 + l] = dl[s + 2] * q(c & 0xf, (h >> 2) & 3);
                y[base + 64 + l] = dl[s + 4] * q(a >> 4, (h >> 4) & 3);
                y[base + 96 + l] = dl[s + 6] * q(c >> 4, h >> 6);
            }
        }
    }
}

/// `block_q8_K`: f32 d, 256 x i8, bsums (ignored); value = d * q. gguf-py has
/// no Q8_K; this follows ggml's `dequantize_row_q8_K`.
#[inline(always)]
pub(crate) fn q8_k(b: &[u8; 292], y: &mut [f32; 256]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for l in 0..256 {
        y[l] = d * f32::from(b[4 + l] as i8);
    }
}

// ---------------------------------------------------------- ternary types

/// `block_tq1_0`: qs[48] and qh[4] hold base-3 digits as fixed-point
/// fractions (digit = (byte * 3^k mod 256) * 3 >> 8), f16 d; value = d * (t - 1).
#[inline(always)]
pub(crate) fn tq1_0(b: &[u8; 54], y: &mut [f32; 256]) {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let d = f16_at(b, 52);
    let trit = |byte: u8, k: usize| -> f32 {
        let v = byte.wrapping_mul(POW3[k]);
        f32::from(((u16::from(v) * 3) >> 8) as i8 - 1)
    };
    for k in 0..5 {
        for l in 0..32 {
            y[k * 32 + l] = d * trit(b[l], k);
        }
    }
    for k in 0..5 {
        for l in 0..16 {
            y[160 + k * 16 + l] = d * trit(b[32 + l], k);
        }
    }
    for k in 0..4 {
        for l in 0..4 {
            y[240 + k * 4 + l] = d * trit(b[48 + l], k);
        }
    }
}

/// `block_tq2_0`: qs[64] (2 bits, 0..3 meaning -1..2), f16 d; value = d * (q - 1).
#[inline(always)]
pub(crate) fn tq2_0(b: &[u8; 66], y: &mut [f32; 256]) {
    let d = f16_at(b, 64);
    let t = |q: u8| f32::from((q & 3) as i8 - 1);
    for c in 0..2 {
        for l in 0..32 {
            let q = b[c * 32 + l];
            y[c * 128 + l] = d * t(q);
            y[c * 128 + 32 + l] = d * t(q >> 2);
            y[c * 128 + 64 + l] = d * t(q >> 4);
            y[c * 128 + 96 + l] = d * t(q >> 6);
        }
    }
}

// -------------------------------------------------------------- i-quants

/// `block_iq4_xs`: f16 d, u16 scales_h, scales_l[4], qs[128]; eight
/// sub-blocks of 32 with 6-bit scales (minus 32) and `kvalues_iq4nl` levels.
#[inline(always)]
pub(crate) fn iq4_xs(b: &[u8; 136], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    let scales_h = u16_at(b, 2);
    for ib in 0..8 {
        let lo = (b[4 + ib / 2] >> (4 * (ib % 2))) & 0xf;
        let hi = ((scales_h >> (2 * ib)) & 3) as u8;
        let dl = d * f32::from((lo | (hi << 4)) as i8 - 32);
        for l in 0..16 {
            let q = b[8 + ib * 16 + l];
            y[ib * 32 + l] = dl * f32::from(KVALUES_IQ4NL[usize::from(q & 0xf)]);
            y[ib * 32 + 16 + l] = dl * f32::from(KVALUES_IQ4NL[usize::from(q >> 4)]);
        }
    }
}

/// `block_iq2_xxs`: f16 d, then per 32 values two u32: four 8-bit grid
/// indices, and four 7-bit sign indices plus a 4-bit scale;
/// value = ((d * (0.5 + s)) * 0.25) * grid, signed.
#[inline(always)]
pub(crate) fn iq2_xxs(b: &[u8; 66], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let at = 2 + 8 * ib;
        let aux1 = u32_at(b, at + 4);
        let db = d * (0.5 + (aux1 >> 28) as f32) * 0.25;
        for k in 0..4 {
            let grid = IQ2XXS_GRID[usize::from(b[at + k])].to_le_bytes();
            let signs = KSIGNS[((aux1 >> (7 * k)) & 0x7f) as usize];
            for i in 0..8 {
                y[ib * 32 + k * 8 + i] = signed(db * f32::from(grid[i]), signs, i);
            }
        }
    }
}

/// `block_iq2_xs`: f16 d, 32 x u16 (9-bit grid index, 7-bit sign index),
/// scales[8] (4 bits per 16 values); value = ((d * (0.5 + s)) * 0.25) * grid.
#[inline(always)]
pub(crate) fn iq2_xs(b: &[u8; 74], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    for l in 0..32 {
        let q = u16_at(b, 2 + 2 * l);
        let s = (b[66 + l / 4] >> (4 * ((l / 2) % 2))) & 0xf;
        let db = d * (0.5 + f32::from(s)) * 0.25;
        let grid = IQ2XS_GRID[usize::from(q & 511)].to_le_bytes();
        let signs = KSIGNS[usize::from(q >> 9)];
        for i in 0..8 {
            y[l * 8 + i] = signed(db * f32::from(grid[i]), signs, i);
        }
    }
}

/// `block_iq2_s`: f16 d, qs[32] (low 8 bits of a 10-bit grid index),
/// signs[32] (one byte per 8 values), qh[8] (high 2 bits), scales[8];
/// value = ((d * (0.5 + s)) * 0.25) * grid, signed.
#[inline(always)]
pub(crate) fn iq2_s(b: &[u8; 82], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    for l in 0..32 {
        let high = (b[66 + l / 4] >> (2 * (l % 4))) & 3;
        let index = usize::from(b[2 + l]) | (usize::from(high) << 8);
        let s = (b[74 + l / 4] >> (4 * ((l / 2) % 2))) & 0xf;
        let db = d * (0.5 + f32::from(s)) * 0.25;
        let grid = IQ2S_GRID[index].to_le_bytes();
        let signs = b[34 + l];
        for i in 0..8 {
            y[l * 8 + i] = signed(db * f32::from(grid[i]), signs, i);
        }
    }
}

/// `block_iq3_xxs`: f16 d, qs[64] (8-bit grid indices, 4 values each), then
/// per 32 values a u32 of four 7-bit sign indices and a 4-bit scale;
/// value = ((d * (0.5 + s)) * 0.5) * grid, signed.
#[inline(always)]
pub(crate) fn iq3_xxs(b: &[u8; 98], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let aux = u32_at(b, 66 + 4 * ib);
        let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
        for k in 0..4 {
            let signs = KSIGNS[((aux >> (7 * k)) & 0x7f) as usize];
            let g0 = IQ3XXS_GRID[usize::from(b[2 + ib * 8 + 2 * k])].to_le_bytes();
            let g1 = IQ3XXS_GRID[usize::from(b[2 + ib * 8 + 2 * k + 1])].to_le_bytes();
            let base = ib * 32 + k * 8;
            for i in 0..4 {
                y[base + i] = signed(db * f32::from(g0[i]), signs, i);
                y[base + 4 + i] = signed(db * f32::from(g1[i]), signs, 4 + i);
            }
        }
    }
}

/// `block_iq3_s`: f16 d, qs[64] (low 8 bits of 9-bit grid indices), qh[8],
/// signs[32], scales[4] (4 bits per 32 values); value = (d * (1 + 2s)) * grid,
/// signed.
#[inline(always)]
pub(crate) fn iq3_s(b: &[u8; 110], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let s = (b[106 + ib / 2] >> (4 * (ib % 2))) & 0xf;
        let db = d * f32::from(1 + 2 * s);
        for k in 0..8 {
            let l = ib * 8 + k;
            let high = (b[66 + l / 8] >> (l % 8)) & 1;
            let grid = IQ3S_GRID[usize::from(b[2 + l]) | (usize::from(high) << 8)].to_le_bytes();
            let signs = b[74 + l / 2];
            for i in 0..4 {
                y[l * 4 + i] = signed(db * f32::from(grid[i]), signs, 4 * (l % 2) + i);
            }
        }
    }
}

/// `block_iq1_s`: f16 d, qs[32] (low 8 bits of 11-bit grid indices), qh[8] x
/// u16 (3 high bits per index, 3-bit scale, delta sign); value =
/// (d * (2s + 1)) * (grid ± 0.125).
#[inline(always)]
pub(crate) fn iq1_s(b: &[u8; 50], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let qh = u16_at(b, 34 + 2 * ib);
        let dl = d * f32::from(2 * ((qh >> 12) & 7) + 1);
        let delta = if qh & 0x8000 == 0 { 0.125f32 } else { -0.125 };
        for k in 0..4 {
            let l = ib * 4 + k;
            let index = usize::from(b[2 + l]) | (usize::from((qh >> (3 * k)) & 7) << 8);
            let grid = IQ1S_GRID[index].to_le_bytes();
            for i in 0..8 {
                y[l * 8 + i] = dl * (f32::from(grid[i] as i8) + delta);
            }
        }
    }
}

/// `block_iq1_m`: qs[32], qh[16] (per 8 values: 3 high index bits and a
/// delta sign), scales[8] as 4 u16 (3-bit scales per 16 values; the top
/// nibbles together are the f16 d); value = (d * (2s + 1)) * (grid ± 0.125).
#[inline(always)]
pub(crate) fn iq1_m(b: &[u8; 56], y: &mut [f32; 256]) {
    let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
    let d = f16_to_f32(
        (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000),
    );
    for l in 0..32 {
        let s = (sc[l / 8] >> (3 * ((l / 2) % 4))) & 7;
        let dl = d * f32::from(2 * s + 1);
        let qh = (b[32 + l / 2] >> (4 * (l % 2))) & 0xf;
        let index = usize::from(b[l]) | (usize::from(qh & 7) << 8);
        let delta = if qh & 8 == 0 { 0.125f32 } else { -0.125 };
        let grid = IQ1S_GRID[index].to_le_bytes();
        for i in 0..8 {
            y[l * 8 + i] = dl * (f32::from(grid[i] as i8) + delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksigns_match_ggml_head_and_tail() {
        // ggml-common.h: ksigns_iq2xs = { 0, 129, 130, 3, 132, 5, 6, 135, ..., 252, 125, 126, 255 }
        assert_eq!(KSIGNS[..8], [0, 129, 130, 3, 132, 5, 6, 135]);
        assert_eq!(KSIGNS[124..], [252, 125, 126, 255]);
    }

    #[test]
    fn scale_decoders() {
        assert_eq!(e8m0_half(127), 0.5);
        assert_eq!(e8m0_half(128), 1.0);
        // 2^-128 and 2^-127 as products: `powi(-128)` is 1 / 2^128, which
        // overflows to 0 when it is not constant-folded (opt-level 0).
        assert_eq!(e8m0_half(0), 2f32.powi(-64) * 2f32.powi(-64));
        assert_eq!(e8m0_half(1), 2f32.powi(-64) * 2f32.powi(-63));
        assert_eq!(e8m0_half(255), 2f32.powi(127));
        assert_eq!(UE4M3_HALF[0x38], 0.5); // exp 7, man 0: 1.0, halved
        assert_eq!(UE4M3_HALF[0x01], 2f32.powi(-10)); // subnormal 2^-9, halved
        assert_eq!(UE4M3_HALF[0x7e], 224.0); // 448, halved
        assert_eq!(UE4M3_HALF[0x7f], 0.0);
        assert_eq!(UE4M3_HALF[0xff], 240.0); // bit 7 ignored: 0x7f's twin is not special
    }
}
