//! Hashing: BLAKE3 of payloads, parallel and with bounded memory for large ones.

use std::fs::File;

use crate::source::ByteSource;

/// Payloads at least this large are hashed with rayon.
const PARALLEL_THRESHOLD: usize = 1 << 20;

/// Window used when hashing large ranges: resident memory stays near this.
pub const WINDOW: u64 = 16 << 20;

/// BLAKE3 of a buffer, multithreaded for large inputs.
pub fn hash(data: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    if data.len() >= PARALLEL_THRESHOLD {
        h.update_rayon(data);
    } else {
        h.update(data);
    }
    h.finalize()
}

/// Feeds `len` bytes at `offset` of `src` to `sink` in windows of at most
/// [`WINDOW`] bytes. For a local file each window is mapped, consumed and
/// unmapped (so resident memory stays bounded regardless of the range size);
/// other sources are read into one reusable buffer.
pub fn for_each_window(
    src: &dyn ByteSource,
    offset: u64,
    len: u64,
    mut sink: impl FnMut(&[u8]),
    mut progress: impl FnMut(u64),
) -> std::io::Result<()> {
    let end = offset
        .checked_add(len)
        .filter(|&e| e <= src.len())
        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let mut pos = offset;
    let mut buf = Vec::new();
    while pos < end {
        let n = (end - pos).min(WINDOW);
        let done = match src.file() {
            Some(f) => with_window(f, pos, n as usize, &mut sink),
            None => false,
        };
        if !done {
            buf.resize(n as usize, 0);
            src.read_exact_at(pos, &mut buf)?;
            sink(&buf);
        }
        pos += n;
        progress(n);
    }
    Ok(())
}

fn with_window(file: &File, offset: u64, len: usize, sink: &mut impl FnMut(&[u8])) -> bool {
    match crate::mmap::map_window(file, offset, len) {
        Some(m) => {
            sink(&m);
            true
        }
        None => false,
    }
}

/// BLAKE3 of `len` bytes at `offset`, windowed and parallel.
pub fn hash_range(
    src: &dyn ByteSource,
    offset: u64,
    len: u64,
    progress: impl FnMut(u64),
) -> std::io::Result<blake3::Hash> {
    let mut h = blake3::Hasher::new();
    for_each_window(
        src,
        offset,
        len,
        |w| {
            if w.len() >= PARALLEL_THRESHOLD {
                h.update_rayon(w);
            } else {
                h.update(w);
            }
        },
        progress,
    )?;
    Ok(h.finalize())
}
