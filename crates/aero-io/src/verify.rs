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
    mut sink: impl FnMut(&[u8]) + Send,
    mut progress: impl FnMut(u64),
) -> std::io::Result<()> {
    let end = offset
        .checked_add(len)
        .filter(|&e| e <= src.len())
        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
    if let Some(file) = src.file()
        && windows_mapped(file, offset, end, &mut sink, &mut progress)
    {
        return Ok(());
    }
    let mut pos = offset;
    let mut buf = Vec::new();
    while pos < end {
        let n = (end - pos).min(WINDOW);
        buf.resize(n as usize, 0);
        src.read_exact_at(pos, &mut buf)?;
        sink(&buf);
        pos += n;
        progress(n);
    }
    Ok(())
}

/// Mapped windows, each consumed while the next one is being mapped and
/// pre-faulted on the other side of a `rayon::join`, so page-table work
/// overlaps hashing. `false` if mapping failed before anything was consumed.
fn windows_mapped(
    file: &File,
    start: u64,
    end: u64,
    sink: &mut (impl FnMut(&[u8]) + Send),
    progress: &mut impl FnMut(u64),
) -> bool {
    let map = |at: u64| crate::mmap::map_window(file, at, (end - at).min(WINDOW) as usize);
    if start == end {
        return true;
    }
    let Some(mut current) = map(start) else {
        return false;
    };
    let mut pos = start;
    loop {
        let n = current.len() as u64;
        let next_at = pos + n;
        let next = if next_at < end {
            let (_, next) = rayon::join(
                || sink(&current),
                || {
                    crate::mmap::map_window_populated(
                        file,
                        next_at,
                        (end - next_at).min(WINDOW) as usize,
                    )
                },
            );
            next
        } else {
            sink(&current);
            None
        };
        progress(n);
        pos = next_at;
        if pos >= end {
            return true;
        }
        current = match next.or_else(|| map(pos)) {
            Some(m) => m,
            None => {
                // Rare: a later window cannot be mapped; finish with reads.
                let mut buf = vec![0u8; WINDOW as usize];
                while pos < end {
                    let k = (end - pos).min(WINDOW) as usize;
                    if crate::source::read_exact_at(file, pos, &mut buf[..k]).is_err() {
                        return false;
                    }
                    sink(&buf[..k]);
                    progress(k as u64);
                    pos += k as u64;
                }
                return true;
            }
        };
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
