//! # aero-io
//!
//! Reading, validating and writing AERO files on top of [`aero_format`].
//!
//! ```no_run
//! use aero_io::{AeroFile, validate, Mode};
//! let f = AeroFile::open("model.aero")?;
//! for t in f.index()?.tensors() {
//!     println!("{} {} {:?}", t.name, t.dtype, t.shape);
//! }
//! let report = validate(&f, Mode::Full, &|_| {});
//! assert!(report.valid);
//! # Ok::<(), aero_io::Error>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod chunk;
pub mod copy;
pub mod encode;
mod error;
mod file;
mod index;
pub mod integrity;
mod kernel;
mod mmap;
pub mod output;
mod pipeline;
pub mod remote;
pub mod repack;
pub mod scan;
pub mod source;
pub mod stream;
mod tee;
pub mod url;
pub mod validate;
pub mod value;
pub mod verify;
mod view;
pub mod writer;

pub use aero_format::{self as format, DType, FourCc};

pub use chunk::{Chunk, ChunkStatus, decompress_exact};
pub use error::{Error, Result, TensorProblem};
pub use file::{AeroFile, Protection};
pub use index::{INDEX_BUDGET_BASE, INDEX_BUDGET_PER_BYTE, TensorIndex, TensorInfo};
pub use source::{ByteSource, LocalSource, Source, SourceRef};
pub use validate::{Mode, Report, Verdict, validate};
pub use view::{Element, TensorView};
