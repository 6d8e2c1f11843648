use core::fmt;

/// Element type of a tensor (spec §5). Codes the spec does not list are kept as
/// [`DType::Unknown`] so they can be reported, not rejected.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DType {
    /// IEEE 754 half precision.
    F16,
    /// IEEE 754 single precision.
    F32,
    /// bfloat16.
    BF16,
    /// IEEE 754 double precision.
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
    /// One byte per boolean.
    Bool,
    /// Quantized or codec bytes; the element size is not defined.
    Packed,
    /// A code this crate does not know.
    Unknown(u16),
}

/// One row per known dtype: everything the crates above need to know about
/// it. Adding a dtype is a variant above and a row here; the safetensors
/// and GGUF converters, the C ABI and the Python package read this table.
struct Row {
    dtype: DType,
    /// Code stored in the TIDX (spec §5).
    code: u16,
    /// The specification's lowercase name.
    name: &'static str,
    /// Bytes per element (`None`: no element size).
    size: Option<u64>,
    /// The safetensors on-disk name of the same element type, if it has one.
    safetensors: Option<&'static str>,
    /// The ggml type id of the same element type, if GGUF has one.
    ggml: Option<u32>,
}

const fn row(
    dtype: DType,
    code: u16,
    name: &'static str,
    size: Option<u64>,
    safetensors: Option<&'static str>,
    ggml: Option<u32>,
) -> Row {
    Row {
        dtype,
        code,
        name,
        size,
        safetensors,
        ggml,
    }
}

const ROWS: [Row; 14] = [
    row(DType::F16, 0, "f16", Some(2), Some("F16"), Some(1)),
    row(DType::F32, 1, "f32", Some(4), Some("F32"), Some(0)),
    row(DType::BF16, 2, "bf16", Some(2), Some("BF16"), Some(30)),
    row(DType::F64, 3, "f64", Some(8), Some("F64"), Some(28)),
    row(DType::I8, 4, "i8", Some(1), Some("I8"), Some(24)),
    row(DType::U8, 5, "u8", Some(1), Some("U8"), None),
    row(DType::I16, 6, "i16", Some(2), Some("I16"), Some(25)),
    row(DType::U16, 7, "u16", Some(2), Some("U16"), None),
    row(DType::I32, 8, "i32", Some(4), Some("I32"), Some(26)),
    row(DType::U32, 9, "u32", Some(4), Some("U32"), None),
    row(DType::I64, 10, "i64", Some(8), Some("I64"), Some(27)),
    row(DType::U64, 11, "u64", Some(8), Some("U64"), None),
    row(DType::Bool, 12, "bool", Some(1), Some("BOOL"), None),
    row(
        DType::Packed,
        DType::PACKED_CODE,
        "packed",
        None,
        None,
        None,
    ),
];

/// The row with TIDX code `code`.
const fn row_of_code(code: u16) -> Option<&'static Row> {
    let mut rest: &'static [Row] = &ROWS;
    while let [row, tail @ ..] = rest {
        if row.code == code {
            return Some(row);
        }
        rest = tail;
    }
    None
}

impl DType {
    /// The code of `packed`.
    pub const PACKED_CODE: u16 = 0x8000;

    /// Every known dtype.
    pub const ALL: [DType; 14] = {
        let mut all = [DType::Packed; 14];
        let mut out: &mut [DType] = &mut all;
        let mut rest: &[Row] = &ROWS;
        while let ([slot, out_tail @ ..], [row, tail @ ..]) = (out, rest) {
            *slot = row.dtype;
            out = out_tail;
            rest = tail;
        }
        all
    };

    /// This dtype's row; `None` for [`DType::Unknown`].
    const fn row(self) -> Option<&'static Row> {
        if let DType::Unknown(_) = self {
            return None;
        }
        row_of_code(self.code())
    }

    /// Maps a code to a dtype (never fails: unknown codes become [`DType::Unknown`]).
    pub const fn from_code(code: u16) -> DType {
        match row_of_code(code) {
            Some(r) => r.dtype,
            None => DType::Unknown(code),
        }
    }

    /// The numeric code stored in the TIDX.
    pub const fn code(self) -> u16 {
        match self {
            DType::F16 => 0,
            DType::F32 => 1,
            DType::BF16 => 2,
            DType::F64 => 3,
            DType::I8 => 4,
            DType::U8 => 5,
            DType::I16 => 6,
            DType::U16 => 7,
            DType::I32 => 8,
            DType::U32 => 9,
            DType::I64 => 10,
            DType::U64 => 11,
            DType::Bool => 12,
            DType::Packed => Self::PACKED_CODE,
            DType::Unknown(c) => c,
        }
    }

    /// Bytes per element, or `None` for `packed` and unknown codes.
    pub const fn size(self) -> Option<u64> {
        match self.row() {
            Some(r) => r.size,
            None => None,
        }
    }

    /// Whether this is `packed`.
    pub const fn is_packed(self) -> bool {
        matches!(self, DType::Packed)
    }

    /// Lowercase name as the specification spells it (`f32`, `bf16`, `packed`, `unknown`).
    pub const fn name(self) -> &'static str {
        match self.row() {
            Some(r) => r.name,
            None => "unknown",
        }
    }

    /// Parses a name produced by [`DType::name`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<DType> {
        ROWS.iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .map(|r| r.dtype)
    }

    /// The safetensors on-disk name of this element type (`F32`, `BOOL`),
    /// `None` for `packed` and unknown codes.
    pub const fn safetensors_name(self) -> Option<&'static str> {
        match self.row() {
            Some(r) => r.safetensors,
            None => None,
        }
    }

    /// The native dtype of a safetensors on-disk name (`"BF16"`), `None`
    /// for names with no native AERO dtype (`F8_E4M3`, `C64`, …: those are
    /// stored `packed`).
    pub fn from_safetensors_name(name: &str) -> Option<DType> {
        ROWS.iter()
            .find(|r| r.safetensors == Some(name))
            .map(|r| r.dtype)
    }

    /// The ggml type id of this element type (`f32` → 0, `bf16` → 30),
    /// `None` when GGUF has no plain type for it.
    pub const fn ggml_type(self) -> Option<u32> {
        match self.row() {
            Some(r) => r.ggml,
            None => None,
        }
    }

    /// The native dtype of a ggml type id, `None` for block types (those
    /// are stored `packed`) and ids with no AERO equivalent.
    pub fn from_ggml_type(id: u32) -> Option<DType> {
        ROWS.iter().find(|r| r.ggml == Some(id)).map(|r| r.dtype)
    }

    /// Expected byte length for `elements` elements, `None` if the dtype has no
    /// element size or the product overflows.
    pub const fn byte_len(self, elements: u64) -> Option<u64> {
        match self.size() {
            Some(s) => elements.checked_mul(s),
            None => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::Unknown(c) => write!(f, "unknown({c})"),
            d => f.write_str(d.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_round_trips_every_code_name_and_foreign_name() {
        for d in DType::ALL {
            assert_eq!(DType::from_code(d.code()), d);
            assert_eq!(DType::from_name(d.name()), Some(d));
            if let Some(s) = d.safetensors_name() {
                assert_eq!(DType::from_safetensors_name(s), Some(d));
            }
            if let Some(g) = d.ggml_type() {
                assert_eq!(DType::from_ggml_type(g), Some(d));
            }
        }
        assert_eq!(DType::from_code(13), DType::Unknown(13));
        assert_eq!(DType::Unknown(13).name(), "unknown");
        assert_eq!(DType::Unknown(13).size(), None);
        assert_eq!(DType::BF16.ggml_type(), Some(30));
        assert_eq!(DType::U8.ggml_type(), None);
        assert_eq!(DType::from_safetensors_name("F8_E4M3"), None);
    }
}
