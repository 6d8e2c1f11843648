//! # aero-capi — the C ABI of aerotensor
//!
//! `libaerotensor.so` / `libaerotensor.a` with two headers generated from
//! this crate by cbindgen (`cargo xtask capi-header`):
//!
//! - `include/aero_capi.h` — the existing interface, same names and
//!   semantics ([`legacy`]): `aero_load`, `aero_tensor_count`,
//!   `aero_tensor_name`, `aero_tensor_info`, `aero_tensor_ptr` (verified,
//!   zero-copy), `aero_tensor_bytes`, `aero_error_string`, and the state
//!   dict calls (every tensor as floats, GGUF names mapped on request).
//! - `include/aerotensor.h` — includes it and adds ([`ext`]) `aero_open`
//!   for sets and URLs, `aero_validate`, `aero_tensor_ptr_unverified`,
//!   `aero_verify_all`, dtype and ggml type names, error codes and the
//!   version.
//!
//! This is the only crate with `extern "C"` entry points, and most of the
//! workspace's `unsafe` is here, at that boundary (the rest: aero-io's
//! `mmap` and `kernel` modules, aero-quant's call of its AVX2 loop, the
//! CLI's `SIGPIPE` reset, xtask's `wait4`; each block has a `SAFETY`
//! comment, and the workspace denies `unsafe_code` everywhere else). Every
//! entry point runs in `error::guard` (no panic reaches C), checks every
//! pointer for NULL and every length, and hands out only bytes it verified
//! unless the call is named `*_unverified`. The semantics live in the Rust
//! libraries it wraps (`aero-io`, `aero-set`, `aero-convert::state_dict`).
//! See `docs/CAPI.md`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod ext;
mod handle;
pub mod legacy;
mod util;

pub use ext::*;
pub use legacy::*;
