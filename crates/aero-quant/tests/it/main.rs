//! The integration tests of `aero-quant`, as one test binary (one link instead of one per file).

mod api;
mod gguf_py;
