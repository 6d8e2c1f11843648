//! # aero-format
//!
//! The lowest tier of the AERO implementation: plain structures that mirror the
//! bytes of an `.aero` file, checked accessors, borrowing decoders of the
//! MessagePack payloads (the tensor index [`tidx`], the control-plane digest
//! [`ihsh`], the page hashes [`phsh`] with their page arithmetic) and the
//! chunk names ([`names`]). It is `#![no_std]`, needs no allocator and
//! contains no `unsafe`; every size computation is checked, so any input — a
//! truncated file, a hostile offset near `u64::MAX` — produces an [`Error`]
//! rather than a panic.
//!
//! An embedded loader can depend on this crate alone:
//!
//! ```
//! use aero_format::{ControlPlane, FourCc};
//! # let bytes = aero_format::testdata::TEST_VECTOR;
//! // `bytes` holds at least the header, the TOC and the string table.
//! let cp = ControlPlane::parse(bytes, bytes.len() as u64)?;
//! let tidx = cp.find(FourCc::TIDX, "tensors")?.expect("test vector has a TIDX");
//! assert_eq!(tidx.entry.chunk_ulen, 153);
//! # Ok::<(), aero_format::Error>(())
//! ```
//!
//! The payload of a compressed TIDX must be inflated by the caller (zstd is not
//! available without an allocator); [`tidx::TensorIter`] then walks the
//! uncompressed MessagePack without allocating.
//!
//! Both ways: with the `alloc` feature, [`encode`] writes every structure and
//! payload these modules read, as the reference writer emits them.
#![no_std]
#![forbid(unsafe_code)]
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod dtype;
#[cfg(feature = "alloc")]
pub mod encode;
mod error;
mod fourcc;
pub mod ggml;
pub mod ihsh;
pub mod layout;
pub mod limits;
pub mod msgpack;
pub mod names;
pub mod phsh;
mod structs;
pub mod tidx;

#[doc(hidden)]
pub mod testdata;

pub use dtype::DType;
pub use error::{Error, ErrorKind, Field};
pub use fourcc::{ChunkFlags, FourCc};
pub use ggml::GgmlType;
pub use layout::{ChunkRef, ControlPlane, TocIter};
pub use structs::{
    FILE_HEADER_LEN, FileHeader, MAGIC, TOC_ENTRY_LEN, TOC_HEADER_LEN, TocEntry, TocHeader, VERSION,
};
pub use tidx::{Shape, TensorIter, TensorRecord};

/// Result alias used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;
