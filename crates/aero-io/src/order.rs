//! How a file orders its shapes, and what a tensor's `data_len` says
//! against its type and shape: the one rule for files written by the
//! reference GGUF converter (spec §15, §16.5), used by every reader.
//!
//! AERO shapes are row-major, outermost dimension first (spec §15). The
//! reference's `convert-gguf` instead copies GGUF's order (`ne0`, the
//! innermost dimension, first) into `shape`, and derives each tensor's
//! `data_len` from the gap to the next tensor's offset, so a tensor may carry
//! the GGUF alignment padding after its bytes.
//!
//! **How such a file is recognised** ([`ShapeOrder::of_meta`]): its MJSN says
//! `"source_format": "gguf"` and has no `gguf` key. This project's GGUF
//! converter always writes that key (the key/values, version, alignment and
//! tensor order); the reference loses the key/values and never writes it.
//! A file without MJSN, or whose MJSN cannot be read, is row-major.
//!
//! In such a file ([`ShapeOrder::Gguf`]):
//! - a tensor's row-major shape is its stored shape reversed
//!   ([`TensorInfo::row_major_shape`]); a packed tensor's ggml blocks run
//!   along the first stored dimension;
//! - a `data_len` equal to the tensor's exact size rounded up to a multiple
//!   of [`GGUF_PADDING`] bytes is padding the reference copied (spec §16.5):
//!   [`LenCheck::Padded`], a warning, not damage. The tensor is the first
//!   [`TensorInfo::tensor_len`] bytes; readers and exporters hand out only
//!   those (the padding is still covered by the hashes that are checked).

use aero_format::{DType, GgmlType};

use crate::index::TensorInfo;

/// The unit the reference GGUF converter's sizes are rounded up to: GGUF's
/// default alignment (`general.alignment` is lost by that converter).
pub const GGUF_PADDING: u64 = 32;

/// How a file's TIDX orders each tensor's dimensions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShapeOrder {
    /// Outermost dimension first, as numpy and safetensors (spec §15).
    #[default]
    RowMajor,
    /// GGUF's `ne` order, innermost dimension first: files written by the
    /// reference GGUF converter (see the module docs for how they are
    /// recognised).
    Gguf,
}

impl ShapeOrder {
    /// The order of a file whose MJSN object is `meta` (see the module
    /// docs): [`ShapeOrder::Gguf`] when `source_format` is `"gguf"` and
    /// there is no `gguf` key.
    pub fn of_meta(meta: &serde_json::Value) -> ShapeOrder {
        let from_gguf = meta
            .get("source_format")
            .and_then(serde_json::Value::as_str)
            == Some("gguf");
        if from_gguf && meta.get("gguf").is_none() {
            ShapeOrder::Gguf
        } else {
            ShapeOrder::RowMajor
        }
    }

    /// `"row-major"` or `"gguf"` (as `--json` outputs print it).
    pub fn name(self) -> &'static str {
        match self {
            ShapeOrder::RowMajor => "row-major",
            ShapeOrder::Gguf => "gguf",
        }
    }
}

/// What a tensor's `data_len` says against its type and shape
/// ([`TensorInfo::len_check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenCheck {
    /// `data_len` is exactly what the type and shape take.
    Exact,
    /// A [`ShapeOrder::Gguf`] file: `data_len` is `len` rounded up to a
    /// multiple of [`GGUF_PADDING`] (spec §16.5). The tensor is its first
    /// `len` bytes.
    Padded {
        /// The tensor's exact byte length.
        len: u64,
    },
    /// Nothing to check against: an unknown dtype code, or a packed tensor
    /// without a ggml type (e.g. FP8 kept from safetensors).
    Unchecked,
    /// `data_len` differs from the `len` the type and shape take.
    Mismatch {
        /// What the type and shape take.
        len: u64,
    },
    /// A packed tensor whose innermost dimension is not a whole number of
    /// its ggml type's blocks.
    NoFit {
        /// The tensor's ggml type.
        ty: GgmlType,
    },
    /// The element count or byte length overflows 64 bits.
    Overflow,
}

impl TensorInfo {
    /// The shape with the outermost dimension first, whatever `order` the
    /// file stores (spec §15).
    pub fn row_major_shape(&self, order: ShapeOrder) -> Vec<u64> {
        let mut s = self.shape.clone();
        if order == ShapeOrder::Gguf {
            s.reverse();
        }
        s
    }

    /// The dimensions in GGUF's `ne` order (innermost first), as ggml's
    /// block table and a GGUF tensor info take them.
    pub fn gguf_dims(&self, order: ShapeOrder) -> Vec<u64> {
        let mut s = self.shape.clone();
        if order == ShapeOrder::RowMajor {
            s.reverse();
        }
        s
    }

    /// The exact byte length the dtype (or, packed, the ggml type) and
    /// shape take, read in `order`; `Err` with the [`LenCheck`] that says
    /// why there is none.
    fn exact_len(&self, order: ShapeOrder) -> Result<u64, LenCheck> {
        match self.dtype {
            DType::Unknown(_) => Err(LenCheck::Unchecked),
            DType::Packed => {
                let Some(ty) = self.ggml_type() else {
                    return Err(LenCheck::Unchecked);
                };
                let dims = self.gguf_dims(order);
                match ty.tensor_bytes(&dims) {
                    Some(n) => Ok(n),
                    None if dims.first().copied().unwrap_or(1) % ty.block_elems.max(1) != 0 => {
                        Err(LenCheck::NoFit { ty })
                    }
                    None => Err(LenCheck::Overflow),
                }
            }
            d => self
                .elements()
                .and_then(|n| d.byte_len(n))
                .ok_or(LenCheck::Overflow),
        }
    }

    /// `data_len` against the type and shape, read in `order` (see
    /// [`LenCheck`] and the module docs).
    pub fn len_check(&self, order: ShapeOrder) -> LenCheck {
        let len = match self.exact_len(order) {
            Ok(len) => len,
            Err(c) => return c,
        };
        if len == self.data_len {
            LenCheck::Exact
        } else if order == ShapeOrder::Gguf
            && self.data_len > len
            && self.data_len.is_multiple_of(GGUF_PADDING)
            && self.data_len - len < GGUF_PADDING
        {
            LenCheck::Padded { len }
        } else {
            LenCheck::Mismatch { len }
        }
    }

    /// The tensor's own bytes: `data_len`, less the padding of a
    /// [`LenCheck::Padded`] tensor. What readers hand out and exporters
    /// write.
    pub fn tensor_len(&self, order: ShapeOrder) -> u64 {
        match self.len_check(order) {
            LenCheck::Padded { len } => len,
            _ => self.data_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(dtype: DType, shape: &[u64], data_len: u64, ggml: Option<u32>) -> TensorInfo {
        let mut extras = Vec::new();
        if let Some(id) = ggml {
            let mut v = Vec::new();
            crate::encode::json_to_msgpack(&json!({"ggml_type": id}), &mut v);
            extras.push(("quant_params".to_string(), v));
        }
        TensorInfo {
            name: "t".into(),
            dtype,
            shape: shape.to_vec(),
            shard_id: 0,
            data_off: 0,
            data_len,
            flags: 0,
            hash_b3: None,
            quant_id: None,
            extras,
        }
    }

    #[test]
    fn recognised_by_source_format_without_gguf_key() {
        assert_eq!(
            ShapeOrder::of_meta(&json!({"source_format": "gguf"})),
            ShapeOrder::Gguf
        );
        for m in [
            json!({"source_format": "gguf", "gguf": {}}),
            json!({"source_format": "safetensors"}),
            json!({}),
        ] {
            assert_eq!(ShapeOrder::of_meta(&m), ShapeOrder::RowMajor, "{m}");
        }
    }

    #[test]
    fn padding_only_in_gguf_order_and_only_up_to_the_next_32() {
        let f32_15 = |len| info(DType::F32, &[5, 3], len, None);
        assert_eq!(
            f32_15(64).len_check(ShapeOrder::Gguf),
            LenCheck::Padded { len: 60 }
        );
        assert_eq!(f32_15(64).tensor_len(ShapeOrder::Gguf), 60);
        assert_eq!(
            f32_15(64).len_check(ShapeOrder::RowMajor),
            LenCheck::Mismatch { len: 60 }
        );
        assert_eq!(f32_15(64).tensor_len(ShapeOrder::RowMajor), 64);
        // Not a multiple of 32, or a whole 32 or more past the end.
        assert_eq!(
            f32_15(62).len_check(ShapeOrder::Gguf),
            LenCheck::Mismatch { len: 60 }
        );
        assert_eq!(
            f32_15(96).len_check(ShapeOrder::Gguf),
            LenCheck::Mismatch { len: 60 }
        );
        assert_eq!(f32_15(60).len_check(ShapeOrder::Gguf), LenCheck::Exact);
    }

    #[test]
    fn packed_blocks_run_along_the_innermost_dimension_of_the_order() {
        // TQ2_0 (id 35): 256 elements in 66 bytes; ne = [256, 8].
        let gguf = info(DType::Packed, &[256, 8], 544, Some(35));
        assert_eq!(
            gguf.len_check(ShapeOrder::Gguf),
            LenCheck::Padded { len: 528 }
        );
        assert_eq!(gguf.row_major_shape(ShapeOrder::Gguf), vec![8, 256]);
        assert!(matches!(
            gguf.len_check(ShapeOrder::RowMajor),
            LenCheck::NoFit { .. }
        ));
        let ours = info(DType::Packed, &[8, 256], 528, Some(35));
        assert_eq!(ours.len_check(ShapeOrder::RowMajor), LenCheck::Exact);
        assert_eq!(ours.gguf_dims(ShapeOrder::RowMajor), vec![256, 8]);
        let fp8 = info(DType::Packed, &[3], 3, None);
        assert_eq!(fp8.len_check(ShapeOrder::Gguf), LenCheck::Unchecked);
    }
}
