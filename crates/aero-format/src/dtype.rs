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

impl DType {
    /// The code of `packed`.
    pub const PACKED_CODE: u16 = 0x8000;

    /// Every known dtype.
    pub const ALL: [DType; 14] = [
        DType::F16,
        DType::F32,
        DType::BF16,
        DType::F64,
        DType::I8,
        DType::U8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
        DType::Bool,
        DType::Packed,
    ];

    /// Maps a code to a dtype (never fails: unknown codes become [`DType::Unknown`]).
    pub const fn from_code(code: u16) -> DType {
        match code {
            0 => DType::F16,
            1 => DType::F32,
            2 => DType::BF16,
            3 => DType::F64,
            4 => DType::I8,
            5 => DType::U8,
            6 => DType::I16,
            7 => DType::U16,
            8 => DType::I32,
            9 => DType::U32,
            10 => DType::I64,
            11 => DType::U64,
            12 => DType::Bool,
            Self::PACKED_CODE => DType::Packed,
            c => DType::Unknown(c),
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
        match self {
            DType::I8 | DType::U8 | DType::Bool => Some(1),
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => Some(2),
            DType::F32 | DType::I32 | DType::U32 => Some(4),
            DType::F64 | DType::I64 | DType::U64 => Some(8),
            DType::Packed | DType::Unknown(_) => None,
        }
    }

    /// Whether this is `packed`.
    pub const fn is_packed(self) -> bool {
        matches!(self, DType::Packed)
    }

    /// Lowercase name as the specification spells it (`f32`, `bf16`, `packed`, `unknown`).
    pub const fn name(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::F32 => "f32",
            DType::BF16 => "bf16",
            DType::F64 => "f64",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I16 => "i16",
            DType::U16 => "u16",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::I64 => "i64",
            DType::U64 => "u64",
            DType::Bool => "bool",
            DType::Packed => "packed",
            DType::Unknown(_) => "unknown",
        }
    }

    /// Parses a name produced by [`DType::name`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(name))
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
