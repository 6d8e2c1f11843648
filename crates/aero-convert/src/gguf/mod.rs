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
//!
//! Files: this one holds the header model (`GgufHeader`, `GgufTensorInfo`),
//! the caps and the error; `value.rs` the typed metadata values, `parse.rs`
//! the parser, `write.rs` the writer.
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

mod parse;
mod value;
mod write;

pub use parse::{parse, parse_reader};
use value::Items;
pub use value::{GgufArray, GgufValue, GgufValueType};
pub use write::write_header;
use write::{Out, write_body};

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

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod tests;
