//! Creating memory maps (with [`crate::kernel`], the only modules of aero-io with `unsafe`).
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

/// Maps `len` bytes at `offset` (memmap2 handles page alignment); `None` on
/// failure. Not pre-faulted: pages fault in inside the parallel hashing
/// threads, so both cores share that work (as with `b3sum`).
pub(crate) fn map_window(file: &File, offset: u64, len: usize) -> Option<memmap2::Mmap> {
    // SAFETY: as above; the window is dropped (unmapped) as soon as it is
    // hashed, which keeps resident memory bounded by the window size.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map(file)
    }
    .ok()
}

/// [`map_window`], pre-faulted (`MAP_POPULATE`): used for the *next* window
/// while the current one is hashed on the other core.
pub(crate) fn map_window_populated(file: &File, offset: u64, len: usize) -> Option<memmap2::Mmap> {
    // SAFETY: as for `map_window`.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(file)
    }
    .ok()
}

/// An anonymous, zeroed, writable region of `len` bytes (at least one).
/// No huge-page advice: where the kernel defragments for `MADV_HUGEPAGE`
/// (the common `defrag=madvise` setting) faulting it in costs far more
/// system time than the 4 KiB faults it saves.
pub(crate) fn anon(len: usize) -> std::io::Result<memmap2::MmapMut> {
    memmap2::MmapMut::map_anon(len.max(1))
}

/// Maps a whole file privately and writable (copy-on-write: writes stay in
/// this process's memory, the file is never touched), as
/// `torch.UntypedStorage.from_file(shared=False)` and safetensors map theirs.
pub(crate) fn map_private(file: &File) -> std::io::Result<memmap2::MmapMut> {
    // SAFETY: as for `map_whole`: we rely on the file not being truncated
    // while mapped; its bytes are hash-verified in this very mapping before
    // they are handed out (unless the caller asked for unverified bytes).
    // Writes go to private copies of the pages, never to the file.
    unsafe { memmap2::MmapOptions::new().map_copy(file) }
}
