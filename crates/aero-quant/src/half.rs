//! IEEE half-precision and bfloat16 conversions, written so that the hot
//! loops stay branch-free (the compiler turns the selects into vector
//! blends).

/// f16 bits → f32, exact for every input (subnormals, ±0, ±Inf); NaN stays
/// NaN (quiet, payload kept).
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let w = u32::from(h) << 16;
    let sign = w & 0x8000_0000;
    let twice = w.wrapping_add(w); // exponent and mantissa at the top, sign dropped
    // Normal, Inf, NaN: move exponent and mantissa into f32 position, add
    // 224 to the exponent, then scale by 2^-112: the exponent ends up rebiased
    // (15 -> 127), and Inf / NaN stay Inf / NaN.
    let normal = f32::from_bits((twice >> 4) + 0x7000_0000) * f32::from_bits(0x0780_0000);
    // Zero and subnormal: 0.5 + m * 2^-24 is exact in f32; subtracting 0.5
    // leaves m * 2^-24.
    let sub = f32::from_bits((twice >> 17) | 0x3f00_0000) - 0.5;
    let is_sub = mask(twice < 1 << 27);
    f32::from_bits(sign | (sub.to_bits() & is_sub) | (normal.to_bits() & !is_sub))
}

/// f32 → f16 bits, rounding to nearest even (what numpy's
/// `astype(np.float16)` and a hardware `vcvtps2ph` do): overflow goes to ±Inf,
/// tiny values to f16 subnormals or ±0, NaN stays NaN (0x7e00 with the sign).
///
/// The FPU does the rounding: |x| (times 4) is added to a power of two chosen
/// so that the sum's unit in the last place is exactly the f16 unit at |x|'s
/// exponent (never finer than the subnormal unit 2^-24); the f16 exponent and
/// mantissa are then read off the sum's bits. No branches, ~15 operations.
#[inline(always)]
pub(crate) fn f32_to_f16(x: f32) -> u16 {
    let w = x.to_bits();
    let sign = (w >> 16) & 0x8000;
    let twice = w.wrapping_add(w); // exponent in the top 8 bits, sign dropped
    // |x| * 4, or +Inf when |x| >= 2^16 (the first product overflows), so
    // that anything at or above 65520 rounds to Inf below.
    let base = (f32::from_bits(w & 0x7fff_ffff) * f32::from_bits(0x7780_0000)) // 2^112
        * f32::from_bits(0x0880_0000); // 2^-110
    // 2^(e + 15) for x's exponent e, e clamped below at -14 (the f16 subnormals).
    let exp_top = (twice & 0xff00_0000).max(0x7100_0000);
    let magic = f32::from_bits((exp_top >> 1) + 0x0780_0000);
    let sum = (magic + base).to_bits();
    // The sum's exponent, mod 32, plus its mantissa from bit 10 up (the
    // implicit bit of |x| and any rounding carry) is the f16 exponent and
    // mantissa.
    let finite = ((sum >> 13) & 0x7c00) + (sum & 0x0fff);
    let nan = mask(twice > 0xff00_0000);
    ((finite & !nan) | (0x7e00 & nan) | sign) as u16
}

/// All ones if `c`, else zero.
#[inline(always)]
fn mask(c: bool) -> u32 {
    0u32.wrapping_sub(u32::from(c))
}

/// f32 → bfloat16 bits, rounding to nearest even on the dropped 16 bits
/// (ggml's `ggml_compute_fp32_to_bf16`): overflow goes to ±Inf, NaN stays a
/// quiet NaN with its sign.
#[inline(always)]
pub(crate) fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    let rounded = u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16;
    let nan = (u >> 16) | 0x0040;
    let is_nan = mask(u & 0x7fff_ffff > 0x7f80_0000);
    ((nan & is_nan) | (rounded & !is_nan)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_to_f32_is_exact() {
        assert_eq!(f16_to_f32(0x0000).to_bits(), 0);
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert!(f16_to_f32(0x7c01).is_nan());
    }

    /// Every f16 survives f16 → f32 → f16, and for every pair of
    /// neighbouring f16 values the f32s between them round to the nearer one,
    /// and the midpoint to the one with an even mantissa.
    #[test]
    fn f32_to_f16_rounds_to_nearest_even_everywhere() {
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if x.is_nan() {
                let back = f32_to_f16(x);
                assert_eq!(back & 0x7c00, 0x7c00, "{h:#06x}");
                assert_ne!(back & 0x03ff, 0, "{h:#06x}");
                assert_eq!(back & 0x8000, h & 0x8000, "{h:#06x}");
                continue;
            }
            assert_eq!(f32_to_f16(x), h, "{h:#06x}");
            if h & 0x7fff >= 0x7c00 {
                continue;
            }
            // The next f16 away from zero (0x7bff's is Inf, 0x7c00).
            let next = h + 1;
            let (lo, hi) = (f64::from(x), f64::from(f16_to_f32(next)));
            let hi = if next & 0x7fff == 0x7c00 {
                // Inf's "neighbour" for rounding: 65536 (beyond max + half ulp).
                65536.0f64.copysign(lo)
            } else {
                hi
            };
            let mid = ((lo + hi) / 2.0) as f32; // exact: f16 midpoints fit in f32
            let even = if h & 1 == 0 { h } else { next };
            assert_eq!(f32_to_f16(mid), even, "midpoint after {h:#06x}");
            let below = f32::from_bits(mid.to_bits() - 1);
            let above = f32::from_bits(mid.to_bits() + 1);
            let (toward, away) = if lo.abs() < hi.abs() {
                (below, above)
            } else {
                (above, below)
            };
            assert_eq!(f32_to_f16(toward), h, "just inside {h:#06x}");
            assert_eq!(f32_to_f16(away), next, "just past midpoint after {h:#06x}");
        }
        assert_eq!(f32_to_f16(f32::MAX), 0x7c00);
        assert_eq!(f32_to_f16(-f32::MAX), 0xfc00);
        assert_eq!(f32_to_f16(f32::MIN_POSITIVE), 0x0000);
        assert_eq!(f32_to_f16(-1e-30), 0x8000);
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0x0000); // tie -> even (zero)
        assert_eq!(f32_to_f16(3.0 * 2f32.powi(-25)), 0x0002); // tie -> even
    }

    #[test]
    fn f32_to_bf16_rounds_to_nearest_even() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80); // tie, even stays
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82); // tie, odd rounds up
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_7fff)), 0x3f80);
        assert_eq!(f32_to_bf16(f32::MAX), 0x7f80);
        assert_eq!(f32_to_bf16(f32::NEG_INFINITY), 0xff80);
        assert_eq!(f32_to_bf16(-0.0), 0x8000);
        let nan = f32_to_bf16(f32::from_bits(0x7f80_0001));
        assert!(nan & 0x7f80 == 0x7f80 && nan & 0x007f != 0);
        let nan = f32_to_bf16(f32::from_bits(0xffff_ffff));
        assert!(nan & 0xff80 == 0xff80 && nan & 0x007f != 0);
    }
}
