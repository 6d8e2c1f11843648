//! The integration tests of `aero-set`, as one test binary (one link instead of one per file).

mod golden;
mod hostile;
mod plan;
mod roundtrip;
