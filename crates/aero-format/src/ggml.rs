//! The ggml tensor type table (packed AERO tensors name one in
//! `quant_params.ggml_type`; spec §15): id, name, elements per block, bytes per block.
//!
//! Sizes follow the block structs of ggml's `ggml-common.h` and the
//! `type_traits` table of `ggml.c` (not gguf-py, whose Q8_1 entry says 40
//! bytes where ggml's `block_q8_1` is 36). Ids 4, 5 (old Q4_2/Q4_3), 31–33
//! (Q4_0_4_4 etc.) and 36–38 (IQ4_NL_4_4 etc.) were removed from ggml and are
//! rejected as unknown.

/// One ggml tensor type. A tensor of `n` elements of this type takes
/// `n / block_elems * block_bytes` bytes, and its first dimension must be a
/// multiple of `block_elems`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType {
    /// The id stored in a GGUF tensor info (ggml's `enum ggml_type` value).
    pub id: u32,
    /// ggml's name for it, e.g. `"F32"`, `"Q4_K"`.
    pub name: &'static str,
    /// Elements per block (1 for plain types).
    pub block_elems: u64,
    /// Bytes per block (the element size for plain types).
    pub block_bytes: u64,
}

const fn t(id: u32, name: &'static str, block_elems: u64, block_bytes: u64) -> GgmlType {
    GgmlType {
        id,
        name,
        block_elems,
        block_bytes,
    }
}

/// QK_K, the super-block size of the K-quants and i-quants.
const QK_K: u64 = 256;

/// Every type llama.cpp's `enum ggml_type` defines (as of NVFP4 = 40 and
/// Q1_0 = 41), in id order.
pub const GGML_TYPES: &[GgmlType] = &[
    t(0, "F32", 1, 4),
    t(1, "F16", 1, 2),
    t(2, "Q4_0", 32, 2 + 16),                   // f16 d, 32 nibbles
    t(3, "Q4_1", 32, 2 + 2 + 16),               // f16 d, m, 32 nibbles
    t(6, "Q5_0", 32, 2 + 4 + 16),               // f16 d, qh[4], 32 nibbles
    t(7, "Q5_1", 32, 2 + 2 + 4 + 16),           // f16 d, m, qh[4], 32 nibbles
    t(8, "Q8_0", 32, 2 + 32),                   // f16 d, 32 x i8
    t(9, "Q8_1", 32, 2 + 2 + 32),               // f16 d, s, 32 x i8
    t(10, "Q2_K", QK_K, 16 + 64 + 2 + 2),       // scales, qs, f16 d, dmin
    t(11, "Q3_K", QK_K, 32 + 64 + 12 + 2),      // hmask, qs, scales, f16 d
    t(12, "Q4_K", QK_K, 2 + 2 + 12 + 128),      // f16 d, dmin, scales, qs
    t(13, "Q5_K", QK_K, 2 + 2 + 12 + 32 + 128), // + qh
    t(14, "Q6_K", QK_K, 128 + 64 + 16 + 2),     // ql, qh, scales, f16 d
    t(15, "Q8_K", QK_K, 4 + 256 + 32),          // f32 d, 256 x i8, 16 x i16 bsums
    t(16, "IQ2_XXS", QK_K, 2 + 64),             // f16 d, 32 x u16
    t(17, "IQ2_XS", QK_K, 2 + 64 + 8),          // + scales[8]
    t(18, "IQ3_XXS", QK_K, 2 + 96),             // f16 d, 3*QK_K/8
    t(19, "IQ1_S", QK_K, 2 + 32 + 16),          // f16 d, qs[32], 8 x u16 qh
    t(20, "IQ4_NL", 32, 2 + 16),                // f16 d, 32 nibbles
    t(21, "IQ3_S", QK_K, 2 + 64 + 8 + 32 + 4),  // d, qs, qh, signs, scales
    t(22, "IQ2_S", QK_K, 2 + 64 + 8 + 8),       // d, qs, qh, scales
    t(23, "IQ4_XS", QK_K, 2 + 2 + 4 + 128),     // d, scales_h, scales_l, qs
    t(24, "I8", 1, 1),
    t(25, "I16", 1, 2),
    t(26, "I32", 1, 4),
    t(27, "I64", 1, 8),
    t(28, "F64", 1, 8),
    t(29, "IQ1_M", QK_K, 32 + 16 + 8), // qs, qh, scales (no d)
    t(30, "BF16", 1, 2),
    t(34, "TQ1_0", QK_K, 48 + 4 + 2), // qs (5 trits/byte), qh, f16 d
    t(35, "TQ2_0", QK_K, 64 + 2),     // qs (2 bits), f16 d
    t(39, "MXFP4", 32, 1 + 16),       // e8m0 scale, 32 e2m1 nibbles
    t(40, "NVFP4", 64, 4 + 32),       // 4 ue4m3 sub-block scales, 64 e2m1 nibbles
    t(41, "Q1_0", 128, 2 + 16),       // f16 d, 128 sign bits
];

impl GgmlType {
    /// The type with this id, or `None` for ids ggml does not define.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        GGML_TYPES.iter().find(|t| t.id == id).copied()
    }

    /// The type with this name (as in the table, e.g. `"Q4_K"`), ASCII case-insensitive.
    pub fn from_name(name: &str) -> Option<GgmlType> {
        GGML_TYPES
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .copied()
    }

    /// True for block-quantized types (kept packed by the converter).
    pub fn is_quantized(&self) -> bool {
        self.block_elems > 1
    }

    /// Exact byte size of a contiguous tensor with these ggml-order dims
    /// (`dims[0]` innermost): `dims[0] / block_elems * block_bytes * dims[1] * ...`.
    /// `None` if `dims[0]` is not a multiple of the block size or on overflow.
    pub fn tensor_bytes(&self, dims: &[u64]) -> Option<u64> {
        let (first, rest) = dims.split_first().unwrap_or((&1, &[]));
        if self.block_elems == 0 || first.checked_rem(self.block_elems)? != 0 {
            return None;
        }
        let row = first
            .checked_div(self.block_elems)?
            .checked_mul(self.block_bytes)?;
        rest.iter().try_fold(row, |acc, d| acc.checked_mul(*d))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_known_sizes() {
        assert!(GGML_TYPES.windows(2).all(|w| w[0].id < w[1].id));
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 42] {
            assert!(GgmlType::from_id(id).is_none(), "{id}");
        }
        let size = |n: &str| GgmlType::from_name(n).map(|t| (t.block_elems, t.block_bytes));
        assert_eq!(size("q8_1"), Some((32, 36)));
        assert_eq!(size("Q4_K"), Some((256, 144)));
        assert_eq!(size("Q6_K"), Some((256, 210)));
        assert_eq!(size("IQ2_XXS"), Some((256, 66)));
        assert_eq!(size("TQ1_0"), Some((256, 54)));
        assert_eq!(size("MXFP4"), Some((32, 17)));
        assert_eq!(size("NVFP4"), Some((64, 36)));
        let q4k = GgmlType::from_id(12).unwrap();
        assert_eq!(q4k.tensor_bytes(&[512, 3]), Some(2 * 144 * 3));
        assert_eq!(q4k.tensor_bytes(&[100, 3]), None);
        assert_eq!(q4k.tensor_bytes(&[256, u64::MAX]), None);
        assert_eq!(GgmlType::from_id(0).unwrap().tensor_bytes(&[]), Some(4));
    }
}
