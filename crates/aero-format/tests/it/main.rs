//! The integration tests of `aero-format`, as one test binary (one link instead of one per file).

mod error_kinds;
mod integrity_payloads;
