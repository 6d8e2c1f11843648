//! The integration tests of `aero-convert`, as one test binary (one link instead of one per file).

mod errors;
mod proptest_roundtrip;
mod roundtrip;
mod sharded;
mod state_dict;
