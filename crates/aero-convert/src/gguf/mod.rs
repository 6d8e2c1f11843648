//! GGUF header parser and writer (AERO.md §15), std only.
//!
//! [`parse`] works on a byte prefix of a file and answers
//! [`GgufError::NeedMore`] until it has the whole header, so a remote reader
//! can fetch just that; [`parse_reader`] does the same on a [`Read`].
//! [`write_header`] writes a header back byte for byte (key/values stay typed
//! and in file order; strings stay raw bytes).
//!
//! Layout: GGUF v1 used 32-bit counts and lengths; llama.cpp's v2 moved every
//! count and length (tensor/kv counts, string and array lengths, dims) to
//! u64, and v3 only added big-endian files, so llama.cpp's v2 and v3 share
//! one little-endian layout (the *u64 layout*). AERO.md §15 describes v2
//! with u32 counts and string lengths instead (the *u32 layout*: as v1,
//! counts, string and array lengths, n_dims and every dim are u32; type ids
//! and tensor offsets stay u32 and u64). A v2 file is parsed in the u64
//! layout first and, if that fails for good, in the u32 layout; v3 is u64
//! only. The u32 layout is recognised only with at least one key/value: a
//! u64-layout file read in it has 0 kvs (the high half of its tensor count),
//! so a u32-layout file without metadata is rejected (or read as u64 if it
//! is empty and padded). [`GgufHeader::counts_u32`] tells which layout a v2
//! header came from and [`write_header`] writes that layout back. v1 and
//! big-endian files are rejected.
//!
//! Hostile input never panics nor allocates from a declared count. Caps:
//! keys and tensor names ≤ [`MAX_KEY_LEN`] (64 KiB), string values ≤
//! [`MAX_STRING_LEN`] (256 MiB), array nesting ≤ [`MAX_DEPTH`] (8), tensors
//! ≤ [`MAX_TENSORS`] (10 M), n_dims ≤ 4, whole header ≤ [`MAX_HEADER_BYTES`]
//! (1 GiB). A count (kv, tensor, array) is first checked against the bytes
//! its entries need at minimum, which must be in the prefix: so allocation
//! stays proportional to the bytes actually given.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![warn(missing_docs)]

pub use aero_format::ggml::{GGML_TYPES, GgmlType};

use std::collections::HashSet;
use std::io::{self, Read, Write};

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the data section and of tensor offsets when the metadata has
/// no [`ALIGNMENT_KEY`].
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Metadata key (a power-of-two u32) that overrides [`DEFAULT_ALIGNMENT`].
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// Largest alignment accepted (1 MiB). ggml uses 32; a larger value only
/// inflates the padding every tensor gets (2^31 turned a 628-byte AERO file
/// into a 4 GiB GGUF).
pub const MAX_ALIGNMENT: u64 = 1 << 20;

/// Whether `a` is an acceptable GGUF alignment: a power of two (so not 0) of
/// at most [`MAX_ALIGNMENT`].
pub fn valid_alignment(a: u64) -> bool {
    a.is_power_of_two() && a <= MAX_ALIGNMENT
}
/// Longest metadata key or tensor name accepted, in bytes.
pub const MAX_KEY_LEN: u64 = 64 << 10;
/// Longest string value accepted, in bytes.
pub const MAX_STRING_LEN: u64 = 256 << 20;
/// Deepest array nesting accepted (an array of scalars has depth 1).
pub const MAX_DEPTH: u32 = 8;
/// Most tensor infos accepted in one header.
pub const MAX_TENSORS: u64 = 10_000_000;
/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// Largest header [`parse`] accepts, in bytes up to the end of the tensor infos.
pub const MAX_HEADER_BYTES: u64 = 1 << 30;

/// Why a GGUF header could not be parsed, read or written.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The prefix ends too early: `need` bytes from the file start are needed to go on.
    #[error("need {need} bytes from the start of the file to continue parsing the GGUF header")]
    NeedMore {
        /// Total bytes from the file start needed to make progress.
        need: u64,
    },
    /// The file does not start with [`MAGIC`].
    #[error("not a GGUF file: magic {found:02x?} at offset 0, expected \"GGUF\"")]
    BadMagic {
        /// The first four bytes of the file.
        found: [u8; 4],
    },
    /// A version other than 2 or 3 (v1, big-endian, or unknown).
    #[error("unsupported GGUF version {version} at offset 4: {hint}")]
    UnsupportedVersion {
        /// The version field as read little-endian.
        version: u32,
        /// What the version suggests and what is supported.
        hint: &'static str,
    },
    /// A field holds a bad value: `field` of `ctx` (`header`, `key "…"`, `tensor "…"`) at byte `offset`.
    #[error("invalid {field} of {ctx} at offset {offset}: {reason}")]
    Invalid {
        /// Which field, e.g. `"kv count"`, `"string length"`, `"dims"`.
        field: &'static str,
        /// What it belongs to: `header`, `key "…"` / `key #i`, `tensor "…"` / `tensor #i`.
        ctx: String,
        /// Byte offset of the field from the file start.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor info names a ggml type id not in [`GGML_TYPES`].
    #[error("tensor {tensor:?}: unknown ggml type id {id} at offset {offset}")]
    UnknownGgmlType {
        /// The tensor's name.
        tensor: String,
        /// The type id as read.
        id: u32,
        /// Byte offset of the type id from the file start.
        offset: u64,
    },
    /// The header would exceed a size limit ([`MAX_HEADER_BYTES`] for
    /// [`parse`], the caller's for [`parse_reader`]).
    #[error("the GGUF header would need {need} bytes, over the {limit}-byte limit")]
    HeaderTooLarge {
        /// Bytes from the file start the header would need (at least).
        need: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A tensor's data does not fit in the file ([`GgufHeader::validate_against_len`]).
    #[error(
        "tensor {tensor:?}: data bytes [{start}, {end}) lie past the end of the {file_len}-byte file"
    )]
    OutOfBounds {
        /// The tensor's name.
        tensor: String,
        /// Absolute start of its data.
        start: u64,
        /// Absolute end (exclusive) of its data, `u64::MAX` on overflow.
        end: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The bytes laid out for a tensor do not match the size its ggml type
    /// implies: the gap to the next tensor (or to the end of the file) is a
    /// whole alignment unit or more longer than the type's size. gguf-py
    /// writes Q8_1 with 40-byte blocks where ggml's are 36 (spec §15); such a
    /// tensor is refused rather than cut to the type's size.
    #[error(
        "tensor {tensor:?}: {ggml_type} data should take {expected} bytes, but {laid_out} bytes lie \
         at offset {start} before the next tensor or the end of the file (a writer with another \
         block size for {ggml_type}? gguf-py lays out 40-byte Q8_1 blocks, ggml's are 36)"
    )]
    SizeMismatch {
        /// The tensor's name.
        tensor: String,
        /// Its ggml type's name.
        ggml_type: &'static str,
        /// Bytes the type's block layout gives for its dimensions.
        expected: u64,
        /// Bytes from its start to the next tensor's start or the file's end.
        laid_out: u64,
        /// Absolute start of its data.
        start: u64,
    },
    /// [`parse_reader`] hit end of stream inside the header.
    #[error("GGUF stream ended after {got} bytes, the header needs {need}")]
    Truncated {
        /// Bytes the parser asked for.
        need: u64,
        /// Bytes the stream held.
        got: u64,
    },
    /// [`write_header`] was given a header it cannot encode; the message says why.
    #[error("cannot write GGUF header: {0}")]
    Unwritable(String),
    /// An I/O error of the underlying reader or writer.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// `return Err(GgufError::Invalid { .. })`.
macro_rules! bail {
    ($field:expr, $ctx:expr, $at:expr, $reason:expr) => {
        return Err(GgufError::Invalid {
            field: $field,
            ctx: $ctx.to_string(),
            offset: $at,
            reason: $reason.to_string(),
        })
    };
}

/// Metadata value type ids as stored in the file (`as u32` gives the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum GgufValueType {
    /// `u8`, id 0.
    U8 = 0,
    /// `i8`, id 1.
    I8 = 1,
    /// Little-endian `u16`, id 2.
    U16 = 2,
    /// Little-endian `i16`, id 3.
    I16 = 3,
    /// Little-endian `u32`, id 4.
    U32 = 4,
    /// Little-endian `i32`, id 5.
    I32 = 5,
    /// Little-endian IEEE `f32`, id 6.
    F32 = 6,
    /// One byte, 0 or 1, id 7.
    Bool = 7,
    /// Length-prefixed bytes (meant to be UTF-8), id 8.
    String = 8,
    /// Element type id, length, then the elements, id 9.
    Array = 9,
    /// Little-endian `u64`, id 10.
    U64 = 10,
    /// Little-endian `i64`, id 11.
    I64 = 11,
    /// Little-endian IEEE `f64`, id 12.
    F64 = 12,
}

impl GgufValueType {
    /// The type with this id, or `None` for ids GGUF does not define.
    #[rustfmt::skip]
    pub fn from_id(id: u32) -> Option<Self> {
        use GgufValueType::*;
        const ALL: [GgufValueType; 13] = [U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64];
        ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// Fewest bytes a value of this type takes in the file, in the u64
    /// layout (`wide`) or the u32 one.
    fn min_size(self, wide: bool) -> u64 {
        use GgufValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
            String => len_size(wide),
            Array => len_size(wide).saturating_add(4), // + element type
        }
    }
}

/// A typed metadata value. `String` holds the raw bytes: GGUF strings are
/// meant to be UTF-8, but byte-level vocabularies are not always.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// A [`GgufValueType::U8`].
    U8(u8),
    /// A [`GgufValueType::I8`].
    I8(i8),
    /// A [`GgufValueType::U16`].
    U16(u16),
    /// A [`GgufValueType::I16`].
    I16(i16),
    /// A [`GgufValueType::U32`].
    U32(u32),
    /// A [`GgufValueType::I32`].
    I32(i32),
    /// A [`GgufValueType::F32`] (bit pattern kept, NaNs included).
    F32(f32),
    /// A [`GgufValueType::Bool`].
    Bool(bool),
    /// A [`GgufValueType::String`], raw bytes; see [`GgufValue::as_str`].
    String(Vec<u8>),
    /// A [`GgufValueType::Array`].
    Array(GgufArray),
    /// A [`GgufValueType::U64`].
    U64(u64),
    /// A [`GgufValueType::I64`].
    I64(i64),
    /// A [`GgufValueType::F64`] (bit pattern kept, NaNs included).
    F64(f64),
}

/// A typed array; every item has type `elem_type` (arrays may nest).
///
/// Arrays of fixed-width scalars (integers, floats, bools) keep their
/// little-endian bytes as in the file, so a 16 MiB `u8` array takes 16 MiB,
/// not 32 bytes per item; strings and nested arrays are kept as values.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufArray {
    /// Type of every item ([`write_header`] rejects items of another type).
    pub elem_type: GgufValueType,
    items: Items,
}

#[derive(Debug, Clone, PartialEq)]
enum Items {
    /// Fixed-width scalars, little-endian, `width(elem_type)` bytes each.
    Packed(Vec<u8>),
    /// Strings, arrays, or items whose type differs from `elem_type`.
    Values(Vec<GgufValue>),
}

impl GgufValueType {
    /// Bytes of one value of a fixed-width scalar type, `None` for strings and arrays.
    pub fn width(self) -> Option<usize> {
        use GgufValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }
}

fn scalar_from_le(t: GgufValueType, b: &[u8]) -> Option<GgufValue> {
    use GgufValue as V;
    use GgufValueType as T;
    Some(match t {
        T::U8 => V::U8(u8::from_le_bytes(*b.first_chunk()?)),
        T::I8 => V::I8(i8::from_le_bytes(*b.first_chunk()?)),
        T::Bool => V::Bool(*b.first()? != 0),
        T::U16 => V::U16(u16::from_le_bytes(*b.first_chunk()?)),
        T::I16 => V::I16(i16::from_le_bytes(*b.first_chunk()?)),
        T::U32 => V::U32(u32::from_le_bytes(*b.first_chunk()?)),
        T::I32 => V::I32(i32::from_le_bytes(*b.first_chunk()?)),
        T::F32 => V::F32(f32::from_le_bytes(*b.first_chunk()?)),
        T::U64 => V::U64(u64::from_le_bytes(*b.first_chunk()?)),
        T::I64 => V::I64(i64::from_le_bytes(*b.first_chunk()?)),
        T::F64 => V::F64(f64::from_le_bytes(*b.first_chunk()?)),
        T::String | T::Array => return None,
    })
}

fn scalar_to_le(v: &GgufValue, out: &mut Vec<u8>) -> bool {
    match v {
        GgufValue::U8(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::Bool(x) => out.push(u8::from(*x)),
        GgufValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F32(x) => out.extend_from_slice(&x.to_bits().to_le_bytes()),
        GgufValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F64(x) => out.extend_from_slice(&x.to_bits().to_le_bytes()),
        GgufValue::String(_) | GgufValue::Array(_) => return false,
    }
    true
}

impl GgufArray {
    /// An array of `items`; scalars of `elem_type` are stored packed.
    pub fn new(elem_type: GgufValueType, items: Vec<GgufValue>) -> GgufArray {
        if let Some(w) = elem_type.width()
            && items.iter().all(|i| i.value_type() == elem_type)
        {
            let mut bytes = Vec::with_capacity(items.len().saturating_mul(w));
            for i in &items {
                scalar_to_le(i, &mut bytes);
            }
            return GgufArray {
                elem_type,
                items: Items::Packed(bytes),
            };
        }
        GgufArray {
            elem_type,
            items: Items::Values(items),
        }
    }

    /// An array of fixed-width scalars from their little-endian bytes;
    /// `None` if `elem_type` is not such a type, `bytes` is not a whole
    /// number of items, or a bool is not 0 or 1.
    pub fn from_le_bytes(elem_type: GgufValueType, bytes: Vec<u8>) -> Option<GgufArray> {
        let w = elem_type.width()?;
        if !bytes.len().is_multiple_of(w)
            || (elem_type == GgufValueType::Bool && bytes.iter().any(|b| *b > 1))
        {
            return None;
        }
        Some(GgufArray {
            elem_type,
            items: Items::Packed(bytes),
        })
    }

    /// The little-endian bytes of an array of fixed-width scalars.
    pub fn le_bytes(&self) -> Option<&[u8]> {
        match &self.items {
            Items::Packed(b) => Some(b),
            Items::Values(_) => None,
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match &self.items {
            Items::Packed(b) => b
                .len()
                .checked_div(self.elem_type.width().unwrap_or(1))
                .unwrap_or(0),
            Items::Values(v) => v.len(),
        }
    }

    /// Whether the array has no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items in file order (scalars are decoded as they are visited).
    pub fn iter(&self) -> impl Iterator<Item = GgufValue> + '_ {
        let w = self.elem_type.width().unwrap_or(1).max(1);
        let packed = match &self.items {
            Items::Packed(b) => b.as_slice(),
            Items::Values(_) => &[],
        };
        let values = match &self.items {
            Items::Packed(_) => &[][..],
            Items::Values(v) => v.as_slice(),
        };
        packed
            .chunks_exact(w)
            .filter_map(|c| scalar_from_le(self.elem_type, c))
            .chain(values.iter().cloned())
    }
}

impl GgufValue {
    /// The type id this value is stored with.
    #[rustfmt::skip]
    pub fn value_type(&self) -> GgufValueType {
        use GgufValue as V;
        use GgufValueType as T;
        match self {
            V::U8(_) => T::U8, V::I8(_) => T::I8, V::U16(_) => T::U16, V::I16(_) => T::I16,
            V::U32(_) => T::U32, V::I32(_) => T::I32, V::F32(_) => T::F32, V::Bool(_) => T::Bool,
            V::String(_) => T::String, V::Array(_) => T::Array,
            V::U64(_) => T::U64, V::I64(_) => T::I64, V::F64(_) => T::F64,
        }
    }

    /// The string, if this is a UTF-8 string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Any integer value that fits in a u64.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
}

/// One tensor info of the header: where a tensor's data lies and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorInfo {
    /// The tensor's name (UTF-8, unique within the header).
    pub name: String,
    /// ggml order: `dims[0]` is the innermost (contiguous) dimension. See [`Self::shape`].
    pub dims: Vec<u64>,
    /// The element (or block) type.
    pub ggml_type: GgmlType,
    /// Offset relative to the data section ([`GgufHeader::data_offset`]); a multiple of the alignment.
    pub offset: u64,
    /// Exact data size from the type's block layout (never from offset gaps).
    pub size: u64,
}

impl GgufTensorInfo {
    /// Product of the dims (1 for no dims), saturating; [`parse`] ensures it fits in an i64.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1, |a, d| a.saturating_mul(*d))
    }

    /// Row-major shape (outermost first), i.e. `dims` reversed, as numpy/safetensors use.
    pub fn shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }
}

/// A parsed GGUF header: everything before the data section.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    /// The format version, 2 or 3.
    pub version: u32,
    /// Key/values in file order.
    pub metadata: Vec<(String, GgufValue)>,
    /// Tensor infos in file order.
    pub tensors: Vec<GgufTensorInfo>,
    /// From `general.alignment` (u32, nonzero power of two), default 32.
    pub alignment: u64,
    /// Bytes up to the end of the tensor infos. For a v2 header this also
    /// records the layout it was parsed from (see [`Self::counts_u32`]); a
    /// header built by hand may leave it 0.
    pub header_len: u64,
    /// Absolute start of the data section: `header_len` rounded up to `alignment`.
    pub data_offset: u64,
}

impl GgufHeader {
    /// The value of metadata key `key`, if present.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Absolute byte range `[start, end)` of a tensor's data; `None` on overflow.
    pub fn tensor_range(&self, t: &GgufTensorInfo) -> Option<(u64, u64)> {
        let start = self.data_offset.checked_add(t.offset)?;
        Some((start, start.checked_add(t.size)?))
    }

    /// True if this is a v2 header in the u32 layout (32-bit counts, lengths
    /// and dims; see the module docs), which [`write_header`] then writes.
    ///
    /// The layout is not a field of its own: it is whichever one encodes
    /// this header in exactly [`Self::header_len`] bytes, which [`parse`] sets
    /// (the u32 encoding is always shorter than the u64 one). So a header
    /// parsed from a u32-layout file is written back byte for byte, while
    /// one built by hand (`header_len` 0), or changed after parsing so that
    /// its encoded length changed, is written in the u64 layout. Costs a dry
    /// run of the writer.
    pub fn counts_u32(&self) -> bool {
        if self.version != 2 || self.header_len == 0 {
            return false;
        }
        let mut o = Out {
            w: &mut io::sink(),
            pos: 0,
            wide: false,
        };
        write_body(self, &mut o).is_ok() && o.pos == self.header_len
    }

    /// Checks that the header and every tensor's data lie within a file of
    /// `file_len` bytes, and that no tensor has a whole alignment unit or
    /// more of unexplained bytes after it ([`GgufError::SizeMismatch`]):
    /// the space up to the next tensor's start (or the file's end) must be
    /// the type's size plus less than `alignment` bytes of padding.
    pub fn validate_against_len(&self, file_len: u64) -> Result<(), GgufError> {
        if self.header_len > file_len {
            let why = format!("the header alone takes {} bytes", self.header_len);
            bail!("file length", "header", file_len, why);
        }
        let mut ranges = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let (start, end) = self.tensor_range(t).unwrap_or((self.data_offset, u64::MAX));
            if end > file_len {
                return Err(GgufError::OutOfBounds {
                    tensor: t.name.clone(),
                    start,
                    end,
                    file_len,
                });
            }
            ranges.push((start, end, t));
        }
        ranges.sort_by_key(|r| (r.0, r.1));
        for (i, &(start, end, t)) in ranges.iter().enumerate() {
            // Tensors sharing a start (zero-sized ones) bound nothing.
            let next = ranges
                .iter()
                .skip(i.saturating_add(1))
                .find(|r| r.0 > start)
                .map_or(file_len, |r| r.0);
            let gap = next.saturating_sub(end);
            if gap >= self.alignment && t.size > 0 {
                return Err(GgufError::SizeMismatch {
                    tensor: t.name.clone(),
                    ggml_type: t.ggml_type.name,
                    expected: t.size,
                    laid_out: next.saturating_sub(start),
                    start,
                });
            }
        }
        Ok(())
    }
}

/// Bytes of a count or length: 8 in the u64 layout (`wide`), 4 in the u32 one.
fn len_size(wide: bool) -> u64 {
    if wide { 8 } else { 4 }
}

fn align_up(x: u64, align: u64) -> Option<u64> {
    let mask = align.checked_sub(1)?;
    Some(x.checked_add(mask)? & !mask)
}

/// Cursor over the prefix; every read past its end is `NeedMore`. `ctx`
/// names what is being read (`header`, `key "…"`, `tensor "…"`) for errors;
/// `wide` picks the u64 layout for counts, lengths and dims (else u32).
struct Cur<'a> {
    buf: &'a [u8],
    pos: u64,
    ctx: String,
    wide: bool,
}

impl<'a> Cur<'a> {
    /// Demands that `n` more bytes be available; returns their end.
    fn need(&self, n: u64) -> Result<u64, GgufError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= MAX_HEADER_BYTES);
        let need = self.pos.saturating_add(n);
        let end = end.ok_or(GgufError::HeaderTooLarge {
            need,
            limit: MAX_HEADER_BYTES,
        })?;
        if end > self.buf.len() as u64 {
            return Err(GgufError::NeedMore { need: end });
        }
        Ok(end)
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], GgufError> {
        let end = self.need(n)?;
        let range = usize::try_from(self.pos)
            .ok()
            .zip(usize::try_from(end).ok());
        let s = range.and_then(|(a, b)| self.buf.get(a..b));
        self.pos = end;
        s.ok_or(GgufError::NeedMore { need: end })
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let s = self.bytes(N as u64)?.first_chunk::<N>().copied();
        s.ok_or(GgufError::NeedMore { need: self.pos })
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        self.arr().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        self.arr().map(u64::from_le_bytes)
    }

    /// A count or length: u64, or u32 in the u32 layout.
    fn len(&mut self) -> Result<u64, GgufError> {
        if self.wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// A length (see [`Self::len`]), at most `cap`, then that many bytes.
    fn string(&mut self, cap: u64, field: &'static str) -> Result<&'a [u8], GgufError> {
        let at = self.pos;
        let len = self.len()?;
        if len > cap {
            let why = format!("length {len} exceeds the cap of {cap} bytes");
            bail!(field, self.ctx, at, why);
        }
        self.bytes(len)
    }

    /// A key or tensor name: UTF-8, at most `MAX_KEY_LEN` bytes.
    fn name(&mut self, field: &'static str) -> Result<String, GgufError> {
        let at = self.pos;
        match std::str::from_utf8(self.string(MAX_KEY_LEN, field)?) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => bail!(field, self.ctx, at, "not valid UTF-8"),
        }
    }

    /// Checks that `count` entries of at least `min` bytes each fit in the prefix.
    fn count(&self, count: u64, min: u64, field: &'static str, at: u64) -> Result<(), GgufError> {
        match count.checked_mul(min) {
            Some(bytes) => self.need(bytes).map(|_| ()),
            None => bail!(field, self.ctx, at, format!("{count} overflows")),
        }
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<GgufValue, GgufError> {
        use GgufValue as V;
        let at = self.pos;
        let Some(vt) = GgufValueType::from_id(ty) else {
            bail!("value type", self.ctx, at, format!("unknown type id {ty}"));
        };
        Ok(match vt {
            GgufValueType::U8 => V::U8(u8::from_le_bytes(self.arr()?)),
            GgufValueType::I8 => V::I8(i8::from_le_bytes(self.arr()?)),
            GgufValueType::U16 => V::U16(u16::from_le_bytes(self.arr()?)),
            GgufValueType::I16 => V::I16(i16::from_le_bytes(self.arr()?)),
            GgufValueType::U32 => V::U32(self.u32()?),
            GgufValueType::I32 => V::I32(i32::from_le_bytes(self.arr()?)),
            GgufValueType::F32 => V::F32(f32::from_bits(self.u32()?)),
            GgufValueType::U64 => V::U64(self.u64()?),
            GgufValueType::I64 => V::I64(i64::from_le_bytes(self.arr()?)),
            GgufValueType::F64 => V::F64(f64::from_bits(self.u64()?)),
            GgufValueType::Bool => match self.arr()? {
                [0] => V::Bool(false),
                [1] => V::Bool(true),
                [b] => bail!("bool value", self.ctx, at, format!("{b} is not 0 or 1")),
            },
            GgufValueType::String => {
                V::String(self.string(MAX_STRING_LEN, "string length")?.to_vec())
            }
            GgufValueType::Array => {
                if depth >= MAX_DEPTH {
                    let why = format!("nested deeper than {MAX_DEPTH} levels");
                    bail!("array", self.ctx, at, why);
                }
                let et = self.u32()?;
                let Some(elem_type) = GgufValueType::from_id(et) else {
                    let why = format!("unknown type id {et}");
                    bail!("array element type", self.ctx, at, why);
                };
                let n_at = self.pos;
                let n = self.len()?;
                self.count(n, elem_type.min_size(self.wide), "array length", n_at)?;
                if let Some(w) = elem_type.width() {
                    // Scalars stay as their bytes: memory equals input.
                    let bytes = self.bytes(n.saturating_mul(w as u64))?.to_vec();
                    match GgufArray::from_le_bytes(elem_type, bytes) {
                        Some(a) => V::Array(a),
                        None => bail!("bool value", self.ctx, n_at, "not 0 or 1"),
                    }
                } else {
                    // `count` bounded n by the prefix length, so this
                    // allocation is too.
                    let mut items = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
                    for _ in 0..n {
                        items.push(self.value(et, depth.saturating_add(1))?);
                    }
                    V::Array(GgufArray {
                        elem_type,
                        items: Items::Values(items),
                    })
                }
            }
        })
    }

    /// One tensor info, after its name.
    fn tensor(&mut self, name: String, alignment: u64) -> Result<GgufTensorInfo, GgufError> {
        let nd_at = self.pos;
        let n_dims = self.u32()?;
        if n_dims > MAX_DIMS {
            let why = format!("{n_dims} dimensions, at most {MAX_DIMS}");
            bail!("n_dims", self.ctx, nd_at, why);
        }
        let at = self.pos;
        let dims: Vec<u64> = (0..n_dims).map(|_| self.len()).collect::<Result<_, _>>()?;
        let elems = dims.iter().try_fold(1u64, |a, d| a.checked_mul(*d));
        if elems.is_none_or(|n| i64::try_from(n).is_err()) {
            let why = format!("element count of {dims:?} overflows i64");
            bail!("dims", self.ctx, at, why);
        }
        let ty_at = self.pos;
        let id = self.u32()?;
        let Some(ty) = GgmlType::from_id(id) else {
            return Err(GgufError::UnknownGgmlType {
                tensor: name,
                id,
                offset: ty_at,
            });
        };
        let Some(size) = ty.tensor_bytes(&dims) else {
            match dims.first() {
                Some(d0) if d0.checked_rem(ty.block_elems) != Some(0) => {
                    let why = format!(
                        "first dimension {d0} is not a multiple of the {} block size {}",
                        ty.name, ty.block_elems
                    );
                    bail!("dims", self.ctx, at, why)
                }
                _ => {
                    let why = format!("byte size of {dims:?} x {} overflows", ty.name);
                    bail!("dims", self.ctx, at, why)
                }
            }
        };
        let off_at = self.pos;
        let offset = self.u64()?;
        if offset.checked_rem(alignment) != Some(0) {
            let why = format!("{offset} is not a multiple of the alignment {alignment}");
            bail!("offset", self.ctx, off_at, why);
        }
        if offset.checked_add(size).is_none() {
            let why = format!("{offset} + size {size} overflows");
            bail!("offset", self.ctx, off_at, why);
        }
        Ok(GgufTensorInfo {
            name,
            dims,
            ggml_type: ty,
            offset,
            size,
        })
    }
}

/// Parses the GGUF header from a prefix of the file.
///
/// Returns [`GgufError::NeedMore`] with the total number of bytes (from the
/// file start) needed to make progress when the prefix ends inside the
/// header; the padding after the tensor infos is not needed. A caller that
/// knows the file length should treat a `need` beyond it as a truncated or
/// hostile file. Any other error is final.
///
/// A v2 header is read in the u64 layout (llama.cpp's) and, only if that
/// fails with a final error, in the u32 layout (AERO.md §15; see the module
/// docs). The answer is then: a clean u64 parse; else `NeedMore` while the
/// u64 layout still can make progress (with the smaller `need` of the two if
/// the u32 layout can too, so that neither is asked for more than it needs);
/// else the u32 layout's result, be it a header or `NeedMore`; and if both
/// fail, the error of the layout that got further into the prefix (u64 on a
/// tie). A clean u64 parse is never second-guessed: a u32-layout file with
/// metadata reads in the u64 layout as at least 2^32 tensors and fails at
/// once.
pub fn parse(prefix: &[u8]) -> Result<GgufHeader, GgufError> {
    let mut c = Cur {
        buf: prefix,
        pos: 0,
        ctx: "header".into(),
        wide: true,
    };
    let found = c.arr::<4>()?;
    if found != MAGIC {
        return Err(GgufError::BadMagic { found });
    }
    let version = c.u32()?;
    let hint = match version {
        2 | 3 => "",
        1 => "GGUF v1 (32-bit counts) is obsolete; only v2 and v3 are supported",
        v if v & 0xFFFF == 0 => {
            "this looks like a big-endian GGUF; only little-endian is supported"
        }
        _ => "only v2 and v3 are supported",
    };
    if !hint.is_empty() {
        return Err(GgufError::UnsupportedVersion { version, hint });
    }
    let body_at = c.pos;
    let wide = parse_body(&mut c, version);
    if version != 2 {
        return wide;
    }
    let wide_err = match wide {
        Ok(h) => return Ok(h),
        Err(e) => e,
    };
    let mut n = Cur {
        buf: prefix,
        pos: body_at,
        ctx: "header".into(),
        wide: false,
    };
    let narrow = parse_body(&mut n, version);
    match (wide_err, narrow) {
        (GgufError::NeedMore { need: a }, Err(GgufError::NeedMore { need: b })) => {
            Err(GgufError::NeedMore { need: a.min(b) })
        }
        (e @ GgufError::NeedMore { .. }, _) => Err(e),
        (_, Ok(h)) => Ok(h),
        (_, Err(e @ GgufError::NeedMore { .. })) => Err(e),
        (we, Err(ne)) => Err(if n.pos > c.pos { ne } else { we }),
    }
}

/// Parses everything after the version, in the layout `c.wide` picks.
fn parse_body(c: &mut Cur<'_>, version: u32) -> Result<GgufHeader, GgufError> {
    let len = len_size(c.wide);
    // Fewest bytes of a kv: key length, 4 (type), 1 (value); of a tensor
    // info: name length, 4 (n_dims), 4 (type), 8 (offset).
    let (min_kv, min_tensor) = (len.saturating_add(5), len.saturating_add(16));
    let n_tensors = c.len()?;
    if n_tensors > MAX_TENSORS {
        let why = format!("{n_tensors} exceeds the cap of {MAX_TENSORS}");
        bail!("tensor count", c.ctx, 8, why);
    }
    let kv_at = c.pos;
    let n_kv = c.len()?;
    if !c.wide && n_kv == 0 {
        // A u64-layout file reads in the u32 layout as its tensor count and
        // 0 kvs (the count's high half); only metadata tells the two apart.
        bail!(
            "kv count",
            c.ctx,
            kv_at,
            "0, which the u32 layout does not accept"
        );
    }
    c.count(n_kv, min_kv, "kv count", kv_at)?;

    let mut metadata = Vec::new();
    let mut keys = HashSet::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for i in 0..n_kv {
        let key_at = c.pos;
        c.ctx = format!("key #{i}");
        let key = c.name("key")?;
        c.ctx = format!("key {key:?}");
        if !keys.insert(key.clone()) {
            bail!("key", c.ctx, key_at, "duplicate key");
        }
        let ty_at = c.pos;
        let ty = c.u32()?;
        let value = c.value(ty, 0)?;
        if key == ALIGNMENT_KEY {
            alignment = match value {
                GgufValue::U32(a) if valid_alignment(a.into()) => a.into(),
                _ => {
                    let why =
                        format!("{value:?} is not a power-of-two u32 of at most {MAX_ALIGNMENT}");
                    bail!("alignment", c.ctx, ty_at, why)
                }
            };
        }
        metadata.push((key, value));
    }

    c.ctx = "header".into();
    c.count(n_tensors, min_tensor, "tensor count", 8)?;
    let mut tensors = Vec::new();
    let mut names = HashSet::new();
    for i in 0..n_tensors {
        let name_at = c.pos;
        c.ctx = format!("tensor #{i}");
        let name = c.name("name")?;
        c.ctx = format!("tensor {name:?}");
        if !names.insert(name.clone()) {
            bail!("name", c.ctx, name_at, "duplicate tensor name");
        }
        tensors.push(c.tensor(name, alignment)?);
    }
    let header_len = c.pos;
    let data_offset = align_up(header_len, alignment).ok_or(GgufError::HeaderTooLarge {
        need: header_len,
        limit: MAX_HEADER_BYTES,
    })?;
    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        alignment,
        header_len,
        data_offset,
    })
}

/// Reads and parses the header from a stream, buffering at most about
/// `max_header_bytes` (the buffer grows geometrically, re-parsing each time).
///
/// Returns the header and the bytes already read past `data_offset`; the
/// reader is left at `data_offset + leftover.len()` (or at EOF if the file
/// ends inside the padding).
pub fn parse_reader<R: Read>(
    r: &mut R,
    max_header_bytes: u64,
) -> Result<(GgufHeader, Vec<u8>), GgufError> {
    let mut buf = Vec::new();
    let mut want = max_header_bytes.min(64 << 10);
    loop {
        let have = buf.len() as u64;
        let got = r
            .by_ref()
            .take(want.saturating_sub(have))
            .read_to_end(&mut buf)? as u64;
        let eof = got < want.saturating_sub(have);
        match parse(&buf) {
            Ok(h) => {
                let have = buf.len() as u64;
                if let Some(skip) = h.data_offset.checked_sub(have) {
                    io::copy(&mut r.by_ref().take(skip), &mut io::sink())?;
                    return Ok((h, Vec::new()));
                }
                let split = usize::try_from(h.data_offset).unwrap_or(buf.len());
                let rest = buf.split_off(split.min(buf.len()));
                return Ok((h, rest));
            }
            Err(GgufError::NeedMore { need }) if need > max_header_bytes => {
                return Err(GgufError::HeaderTooLarge {
                    need,
                    limit: max_header_bytes,
                });
            }
            Err(GgufError::NeedMore { need }) if eof => {
                return Err(GgufError::Truncated {
                    need,
                    got: buf.len() as u64,
                });
            }
            Err(GgufError::NeedMore { need }) => {
                want = need
                    .max((buf.len() as u64).saturating_mul(2))
                    .min(max_header_bytes);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writer that counts its bytes; `wide` picks the u64 layout (else u32).
struct Out<'a, W: Write> {
    w: &'a mut W,
    pos: u64,
    wide: bool,
}

impl<W: Write> Out<'_, W> {
    fn put(&mut self, b: &[u8]) -> Result<(), GgufError> {
        self.w.write_all(b)?;
        self.pos = self.pos.saturating_add(b.len() as u64);
        Ok(())
    }

    /// A count, length or dim: u64, or u32 in the u32 layout.
    fn len(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<(), GgufError> {
        if self.wide {
            return self.put(&n.to_le_bytes());
        }
        match u32::try_from(n) {
            Ok(n) => self.put(&n.to_le_bytes()),
            Err(_) => Err(GgufError::Unwritable(format!(
                "{} is {n}, too big for the u32 layout",
                what()
            ))),
        }
    }

    fn string(&mut self, s: &[u8], cap: u64, what: &str) -> Result<(), GgufError> {
        let len = s.len() as u64;
        if len > cap {
            return Err(GgufError::Unwritable(format!(
                "{what} is {len} bytes, over the cap of {cap}"
            )));
        }
        self.len(len, &|| format!("the length of {what}"))?;
        self.put(s)
    }

    fn value(&mut self, v: &GgufValue, depth: u32, key: &str) -> Result<(), GgufError> {
        match v {
            GgufValue::U8(x) => self.put(&x.to_le_bytes()),
            GgufValue::I8(x) => self.put(&x.to_le_bytes()),
            GgufValue::U16(x) => self.put(&x.to_le_bytes()),
            GgufValue::I16(x) => self.put(&x.to_le_bytes()),
            GgufValue::U32(x) => self.put(&x.to_le_bytes()),
            GgufValue::I32(x) => self.put(&x.to_le_bytes()),
            GgufValue::F32(x) => self.put(&x.to_bits().to_le_bytes()),
            GgufValue::Bool(x) => self.put(&[u8::from(*x)]),
            GgufValue::U64(x) => self.put(&x.to_le_bytes()),
            GgufValue::I64(x) => self.put(&x.to_le_bytes()),
            GgufValue::F64(x) => self.put(&x.to_bits().to_le_bytes()),
            GgufValue::String(s) => {
                self.string(s, MAX_STRING_LEN, &format!("a string of key {key:?}"))
            }
            GgufValue::Array(a) => {
                if depth >= MAX_DEPTH {
                    return Err(GgufError::Unwritable(format!(
                        "key {key:?}: arrays nested deeper than {MAX_DEPTH}"
                    )));
                }
                let values = match &a.items {
                    Items::Packed(_) => &[][..],
                    Items::Values(v) => v.as_slice(),
                };
                if values.iter().any(|i| i.value_type() != a.elem_type) {
                    return Err(GgufError::Unwritable(format!(
                        "key {key:?}: array items differ from {:?}",
                        a.elem_type
                    )));
                }
                self.put(&(a.elem_type as u32).to_le_bytes())?;
                let what = || format!("the length of an array of key {key:?}");
                self.len(a.len() as u64, &what)?;
                if let Items::Packed(b) = &a.items {
                    return self.put(b);
                }
                values
                    .iter()
                    .try_for_each(|i| self.value(i, depth.saturating_add(1), key))
            }
        }
    }
}

/// Writes magic, version, counts, key/values, tensor infos and zero padding
/// up to the alignment (taken from `general.alignment` in the metadata, which
/// must agree with `h.alignment`). Returns the bytes written, i.e. the data
/// section offset. For a file with zero padding, `write_header(parse(x))`
/// reproduces `x[..data_offset]`.
///
/// Version 3, and version 2 unless [`GgufHeader::counts_u32`] says so, are
/// written in the u64 layout; a v2 header parsed from a u32-layout file is
/// written in the u32 layout (where every count, length and dim must fit a
/// u32).
pub fn write_header<W: Write>(h: &GgufHeader, out: &mut W) -> Result<u64, GgufError> {
    if !matches!(h.version, 2 | 3) {
        return Err(GgufError::Unwritable(format!(
            "version {} (only 2 and 3 are supported)",
            h.version
        )));
    }
    let alignment = match h.get(ALIGNMENT_KEY) {
        None => DEFAULT_ALIGNMENT,
        Some(GgufValue::U32(a)) if valid_alignment((*a).into()) => (*a).into(),
        Some(v) => return Err(GgufError::Unwritable(format!("{ALIGNMENT_KEY} = {v:?}"))),
    };
    if alignment != h.alignment {
        return Err(GgufError::Unwritable(format!(
            "alignment {} disagrees with the metadata's {alignment}",
            h.alignment
        )));
    }
    let mut o = Out {
        w: out,
        pos: 0,
        wide: !h.counts_u32(),
    };
    write_body(h, &mut o)?;
    let end = align_up(o.pos, alignment).unwrap_or(o.pos);
    let pad = usize::try_from(end.saturating_sub(o.pos)).unwrap_or(0);
    o.put(&vec![0u8; pad])?; // pad < alignment <= MAX_ALIGNMENT
    Ok(o.pos)
}

/// Writes magic, version, counts, key/values and tensor infos in the layout
/// `o.wide` picks (no alignment checks, no padding).
fn write_body<W: Write>(h: &GgufHeader, o: &mut Out<'_, W>) -> Result<(), GgufError> {
    o.put(&MAGIC)?;
    o.put(&h.version.to_le_bytes())?;
    o.len(h.tensors.len() as u64, &|| "the tensor count".into())?;
    o.len(h.metadata.len() as u64, &|| "the kv count".into())?;
    for (key, value) in &h.metadata {
        o.string(key.as_bytes(), MAX_KEY_LEN, &format!("key {key:?}"))?;
        o.put(&(value.value_type() as u32).to_le_bytes())?;
        o.value(value, 0, key)?;
    }
    for t in &h.tensors {
        o.string(
            t.name.as_bytes(),
            MAX_KEY_LEN,
            &format!("tensor name {:?}", t.name),
        )?;
        let n_dims = u32::try_from(t.dims.len()).ok().filter(|n| *n <= MAX_DIMS);
        let n_dims = n_dims.ok_or_else(|| {
            GgufError::Unwritable(format!("tensor {:?} has {} dims", t.name, t.dims.len()))
        })?;
        o.put(&n_dims.to_le_bytes())?;
        let what = || format!("a dim of tensor {:?}", t.name);
        t.dims.iter().try_for_each(|d| o.len(*d, &what))?;
        o.put(&t.ggml_type.id.to_le_bytes())?;
        o.put(&t.offset.to_le_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod tests;
