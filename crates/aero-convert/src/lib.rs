//! # aero-convert
//!
//! Lossless conversion between AERO and safetensors / GGUF, streaming tensor
//! bytes with bounded memory.
//!
//! - [`safetensors::import`] / [`safetensors::export`]
//! - [`gguf_convert::import`] / [`gguf_convert::export`]
//! - [`detect`] recognises an input by its content.
//!
//! Conventions for what AERO v0.1 cannot express natively (FP8/FP6/FP4
//! safetensors dtypes, GGUF key/values) are documented in `docs/CONVERSION.md`.
#![warn(missing_docs)]

mod detect;
mod error;
pub mod gguf;
pub mod gguf_convert;
pub mod safetensors;
pub mod sharded;

pub use detect::{InputKind, detect};
pub use error::{ConvertError, Result};

/// A reader of tensor bytes, as the streaming writer consumes them.
pub type TensorReader<'a> = Box<dyn std::io::Read + Send + 'a>;

/// Wraps each tensor reader (e.g. to count bytes for a progress bar).
pub type WrapReader<'w> = dyn for<'x> Fn(TensorReader<'x>) -> TensorReader<'x> + 'w;

/// Maps an I/O or parse failure of a source file into a [`ConvertError`].
pub(crate) fn open_source(path: &std::path::Path) -> Result<aero_io::LocalSource> {
    aero_io::LocalSource::open(path).map_err(|e| ConvertError::io(path, e))
}
