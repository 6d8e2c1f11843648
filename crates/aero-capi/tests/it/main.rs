//! The integration tests of `aero-capi`, as one test binary (one link instead of one per file).

mod ffi;
mod mjsn;
mod open_table;
mod reference_gguf;
