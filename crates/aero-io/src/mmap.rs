//! The only module with `unsafe`: creating memory maps.
#![allow(unsafe_code)]

use std::fs::File;

/// Maps a whole file read-only; `None` when the platform refuses.
pub(crate) fn map_whole(file: &File) -> Option<memmap2::Mmap> {
    // SAFETY: the mapping is read-only. Like every mmap-based reader (and the
    // safetensors crate), we rely on the file not being truncated or modified
    // while mapped; a concurrent writer could change the bytes we see, which
    // is why every payload is hash-verified before it is trusted.
    unsafe { memmap2::MmapOptions::new().map(file) }.ok()
}

/// Maps `len` bytes at `offset` (page-aligned by the caller or not: memmap2
/// handles the alignment), pre-faulting them; `None` on failure.
pub(crate) fn map_window(file: &File, offset: u64, len: usize) -> Option<memmap2::Mmap> {
    // SAFETY: as above; the window is dropped (unmapped) as soon as it is
    // hashed, which keeps resident memory bounded by the window size.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(file)
    }
    .ok()
}
