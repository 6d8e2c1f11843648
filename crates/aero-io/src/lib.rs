//! # aero-io
//!
//! Reading, validating and writing AERO files on top of [`aero_format`].
//!
//! Loading a tensor: every byte handed out has been checked against the
//! strongest hash the file carries (spec §10; see [`AeroFile::tensor`]).
//!
//! ```no_run
//! let f = aero_io::AeroFile::open("model.aero")?;
//! let w = f.tensor("model.embed.weight")?;
//! let values: &[f32] = w.as_slice()?;
//! println!("{} {:?} {:?}: {} values", w.name(), w.dtype(), w.shape(), values.len());
//! # Ok::<(), aero_io::Error>(())
//! ```
//!
//! Listing and checking a whole file:
//!
//! ```no_run
//! use aero_io::{AeroFile, Mode, validate};
//! let f = AeroFile::open("model.aero")?;
//! for t in f.index()?.tensors() {
//!     println!("{} {} {:?}", t.name, t.dtype, t.shape);
//! }
//! let report = validate(&f, Mode::Full, &|_| {});
//! assert!(report.valid);
//! # Ok::<(), aero_io::Error>(())
//! ```
//!
//! Writing: [`write_model`] streams [`TensorSpec`]s into one file with the
//! shard, tensor and page hashes computed on the way ([`WriteOptions`]);
//! [`repack`], [`extract`] and [`copy_tensors`] rewrite or copy from an open
//! file, verifying what they copy.
//!
//! # What is where
//!
//! The crate root is what a loader needs: open ([`AeroFile`]), list
//! ([`TensorIndex`], [`TensorInfo`]), read ([`TensorView`]), check
//! ([`validate`]), write ([`write_model`]). The public modules are the
//! building blocks the other AERO crates and tools share:
//!
//! | module | for |
//! |---|---|
//! | [`write`](mod@write) | the writer's options, tensor sources, observers and shard planning; [`write::raw`] builds files chunk by chunk (tests, hand-made inputs) |
//! | [`remote`] | HTTP and object-storage sources, the [`remote::Transport`] seam, the verified range cache |
//! | [`output`] | atomic, never-partial outputs: a unique temporary beside the destination, renamed on success |
//! | [`meta`] | JSON ⇄ MessagePack for the metadata callers see as JSON |
//! | [`verify`] | BLAKE3 over byte ranges, in windows, on every core |
//! | [`url`] | the one URL classifier (local path, HTTP, object storage) |
//! | [`attached`] | files that travel with the weights (`FILE` chunks): name rules, caps; read with [`AeroFile::attached_file`] |
//!
//! The byte layout itself (header, TOC, TIDX, IHSH, PHSH both ways) lives in
//! [`aero_format`], re-exported as [`format`](mod@format).
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod attached;
mod chunk;
mod copy;
mod encode;
mod error;
mod file;
mod index;
mod integrity;
mod kernel;
mod mmap;
pub mod names;
mod order;
pub mod output;
mod pipeline;
mod random;
pub mod remote;
mod repack;
mod source;
mod span;
mod tee;
mod tree;
pub mod url;
mod validate;
mod value;
pub mod verify;
mod view;
pub mod write;

pub use aero_format::{self as format, DType, FourCc};

pub use attached::{AttachedData, AttachedFile};
pub use chunk::{Chunk, ChunkStatus, decompress_exact};
pub use copy::{CopyOptions, Placement, copy_tensors, extract};
pub use error::{Error, Result, TensorProblem};
pub use file::{AeroFile, Protection};
pub use index::{INDEX_BUDGET_BASE, INDEX_BUDGET_PER_BYTE, TensorIndex, TensorInfo};
pub use integrity::PageHashes;
pub use kernel::{start_writeback, write_all_at};
pub use order::{GGUF_PADDING, LenCheck, ShapeOrder};
pub use repack::{RepackOptions, Repacked, repack};
pub use source::{ByteSource, LocalSource, Source, SourceRef, range_reader, read_exact_at};
pub use span::{PrivateMap, TensorSpan};
pub use validate::{
    ChunkReport, ControlStatus, Mode, PageReport, Progress, Report, TensorReport, Verdict,
    check_control, validate, validate_with_digest, work_bytes as validate_work_bytes,
};
pub use view::{Element, TensorView};
pub use write::{Layout, TensorBytes, TensorSpec, WriteOptions, WriteSummary, write_model};

/// JSON ⇄ MessagePack for the metadata callers see as JSON (the manifest,
/// TIDX keys the format does not define, GGUF key/values), and the
/// canonical JSON of MJSN. Every conversion from bytes is bounded: nesting
/// depth and output size are capped in proportion to the input.
pub mod meta {
    pub use crate::encode::json_to_msgpack;
    pub use crate::value::{
        JSON_BUDGET_BASE, JSON_BUDGET_PER_BYTE, canonical_json, json_budget, manifest_budget,
        msgpack_to_json, msgpack_to_json_within,
    };
}
