//! The golden test vector (spec §12), embedded for doc tests and embedded targets' tests.

/// `test-vector.aero` as written by the reference implementation.
pub const TEST_VECTOR: &[u8] = include_bytes!("../testdata/test-vector.aero");
