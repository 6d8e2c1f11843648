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
