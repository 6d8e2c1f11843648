//! Random identifiers: the UUID of a new file, and the tags of temporary
//! names ([`crate::output`]).

/// A random UUID without an extra dependency: BLAKE3 of the time, the process
/// id, a per-process random hasher key and a counter.
pub fn random_uuid() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(&now.as_nanos().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let mut s = std::collections::hash_map::RandomState::new().build_hasher();
    s.write_u64(0);
    h.update(&s.finish().to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out[6] = (out[6] & 0x0f) | 0x40; // RFC 4122 version 4
    out[8] = (out[8] & 0x3f) | 0x80;
    out
}
