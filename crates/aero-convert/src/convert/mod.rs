//! The converters: safetensors (one file, and Hugging Face sharded
//! checkpoints as sets), GGUF, Hugging Face folders, float exports; and
//! what routes an input to one of them ([`detect`] by content, [`route`] by
//! the output's name). Each is re-exported at the crate root under its own
//! name (`aero_convert::safetensors`, …).

pub(crate) mod detect;
pub mod floats;
pub mod gguf_convert;
pub mod hf;
pub mod route;
pub mod safetensors;
pub mod sharded;
