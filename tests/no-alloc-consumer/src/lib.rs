//! A `#![no_std]` consumer of `aero-format` that has no allocator. If
//! `aero-format` (or anything it depends on) used `alloc`, building this crate
//! for a bare-metal target such as `thumbv7em-none-eabihf` would fail to link
//! `alloc` (no `extern crate alloc` exists here, and the target has no std).
#![no_std]

use aero_format::{ControlPlane, FourCc, tidx::TensorIter};

/// Sums the byte lengths of all tensors listed in an uncompressed TIDX payload
/// without allocating; returns `None` on any parse error.
pub fn total_tensor_bytes(tidx_payload: &[u8]) -> Option<u64> {
    let mut total = 0u64;
    for t in TensorIter::new(tidx_payload).ok()? {
        total = total.checked_add(t.ok()?.data_len)?;
    }
    Some(total)
}

/// Offset and length of the first WTSH chunk in a file prefix.
pub fn first_shard(prefix: &[u8], file_len: u64) -> Option<(u64, u64)> {
    let cp = ControlPlane::parse(prefix, file_len).ok()?;
    let c = cp.first(FourCc::WTSH)?;
    Some((c.entry.chunk_offset, c.entry.chunk_length))
}

/// The digest PHSH records for page `index`, and that page's byte range in
/// its shard (`shard_len` bytes); `None` on a malformed payload, a digest
/// count that does not fit the shard, or no such page.
pub fn page_digest(
    phsh_payload: &[u8],
    shard_len: u64,
    index: u64,
) -> Option<(&[u8; 32], (u64, u64))> {
    let p = aero_format::phsh::Phsh::parse(phsh_payload).ok()?;
    if !p.fits_shard(shard_len) {
        return None;
    }
    let range = aero_format::phsh::page_range(index, p.page_size, shard_len)?;
    Some((p.digests().nth(usize::try_from(index).ok()?)?, range))
}

/// Feeds the bytes the IHSH digest covers (the prefix up to the first
/// payload, TOC hash fields zeroed) to `hash`, and returns the digest the
/// IHSH payload records, if it covers exactly that prefix.
pub fn control_digest_input(
    prefix: &[u8],
    file_len: u64,
    ihsh_payload: &[u8],
    mut hash: impl FnMut(&[u8]),
) -> Option<[u8; 32]> {
    let cp = ControlPlane::parse(prefix, file_len).ok()?;
    let p = cp.payload_start()?;
    let ihsh = aero_format::ihsh::Ihsh::parse(ihsh_payload).ok()?;
    if !ihsh.covers_prologue(p) {
        return None;
    }
    let covered = prefix.get(..usize::try_from(p).ok()?)?;
    for piece in aero_format::ihsh::DigestInput::new(covered, cp.header.toc_offset, cp.len()) {
        hash(piece);
    }
    Some(ihsh.digest)
}
