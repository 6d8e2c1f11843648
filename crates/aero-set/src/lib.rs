//! # aero-set
//!
//! AEROSET multi-file sets (spec §13): a JSON manifest
//! (`model.aeroset.json`), an index file holding the global tensor index,
//! and parts — standalone AERO files holding the weights.
//!
//! - [`Model::open`] opens what a user names — a path or URL, an AERO file
//!   or a set — under one set of trust and remote rules ([`model`]); the
//!   CLI, the C ABI and Python all open through it.
//! - [`AeroSet`] opens a set and reads tensors zero-copy from the parts,
//!   whichever way the parts number their shards.
//! - [`validate_set`] checks sizes and SHA-256 of every file, every part as
//!   an AERO file, and that the global and part tensor indexes agree.
//! - [`writer::write_set`] writes a set atomically; with
//!   [`SetWriteOptions::like`] a new revision on the plan of the set it
//!   replaces ([`plan`]), so unchanged parts come out byte-identical.
//! - Hugging Face sharded safetensors import lives in `aero_convert::sharded`.
//!
//! Paths in a manifest never leave the set's directory, and a local manifest
//! names remote URLs only when [`SetOptions::allow_remote`] is set. Bytes are
//! opened through [`PartStorage`], the seam a remote range source implements.
//!
//! ```no_run
//! let set = aero_set::AeroSet::open("model-dir")?;
//! let report = aero_set::validate_set(&set, aero_io::Mode::Quick, &|_| {});
//! assert!(report.valid, "{:?}", report.errors);
//! let w = set.tensor("lm_head.weight")?;
//! println!("{} bytes, zero-copy: {}", w.bytes().len(), w.is_zero_copy());
//! # Ok::<(), aero_set::SetError>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod manifest;
pub mod model;
pub mod plan;
#[cfg(feature = "http")]
pub mod remote;
pub mod resolve;
mod set;
pub mod validate;
pub mod writer;

pub use error::{Result, SetError};
pub use manifest::{FileEntry, MANIFEST_NAME, ModelInfo, PartEntry, SetManifest};
pub use model::{Expect, Model, OpenOptions};
pub use plan::SetPlan;
pub use resolve::{LocalStorage, Location, PartStorage, SetBase, SetOptions};
pub use set::{AeroSet, Located, disagreement, is_set};
pub use validate::{FileReport, FileRole, SetReport, validate_set};
pub use writer::{SetTensor, SetWriteOptions, SetWriteSummary, write_set, write_set_specs};
