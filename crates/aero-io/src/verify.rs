//! Hashing: BLAKE3 of payloads, parallel and with bounded memory for large ones.

use std::fs::File;

use crate::source::SourceRef;

/// Payloads at least this large are hashed with rayon.
const PARALLEL_THRESHOLD: usize = 1 << 20;

pub use crate::source::WINDOW;

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
/// [`WINDOW`] bytes, each starting a multiple of [`WINDOW`] after `offset`.
/// For a local file each window is mapped, consumed and unmapped (so
/// resident memory stays bounded regardless of the range size); other
/// sources are streamed ([`crate::ByteSource::stream`]: a remote file keeps
/// several range requests in flight) and regrouped into windows.
pub fn for_each_window<'a>(
    src: impl Into<SourceRef<'a>>,
    offset: u64,
    len: u64,
    mut sink: impl FnMut(&[u8]) + Send,
    mut progress: impl FnMut(u64),
) -> std::io::Result<()> {
    let src = src.into();
    let (file, src) = (src.local_file(), src.bytes());
    let end = offset
        .checked_add(len)
        .filter(|&e| e <= src.len())
        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
    if let Some(file) = file
        && windows_mapped(file, offset, end, &mut sink, &mut progress)
    {
        return Ok(());
    }
    if let Some(file) = file {
        // Mapping failed: positioned reads into one buffer.
        let mut pos = offset;
        let mut buf = Vec::new();
        while pos < end {
            let n = (end - pos).min(WINDOW);
            buf.resize(n as usize, 0);
            crate::source::read_exact_at(file, pos, &mut buf)?;
            sink(&buf);
            pos += n;
            progress(n);
        }
        return Ok(());
    }
    // Streamed pieces regrouped into windows; a piece that holds a whole
    // window is handed over without a copy.
    let mut win: Vec<u8> = Vec::new();
    let mut wstart = offset;
    src.stream(&[(offset, len)], &mut |_, mut bytes| {
        while !bytes.is_empty() {
            let size = (end - wstart).min(WINDOW) as usize;
            let need = size - win.len();
            let k = need.min(bytes.len());
            if win.is_empty() && k == size {
                sink(&bytes[..k]);
            } else {
                win.extend_from_slice(&bytes[..k]);
                if win.len() < size {
                    return Ok(());
                }
                sink(&win);
                win.clear();
            }
            bytes = &bytes[k..];
            wstart += size as u64;
            progress(size as u64);
        }
        Ok(())
    })
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
pub fn hash_range<'a>(
    src: impl Into<SourceRef<'a>>,
    offset: u64,
    len: u64,
    mut progress: impl FnMut(u64),
) -> std::io::Result<blake3::Hash> {
    let src = src.into();
    if let Some(file) = src.local_file()
        && len > WINDOW
    {
        if offset
            .checked_add(len)
            .is_none_or(|e| e > src.bytes().len())
        {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        return hash_subtrees(file, offset, len, &mut progress);
    }
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

/// BLAKE3 of a local file range longer than one [`WINDOW`]. Windows start at
/// multiples of `WINDOW` (a power of two) from the start of the range, so
/// each is a subtree of the BLAKE3 tree: one thread per core takes the next
/// window, maps it, hashes it as a subtree and unmaps it (resident memory
/// stays near one window per thread, and no thread waits for another), then
/// the chaining values are merged as the tree dictates ([`crate::tree`]).
fn hash_subtrees(
    file: &File,
    offset: u64,
    len: u64,
    progress: &mut impl FnMut(u64),
) -> std::io::Result<blake3::Hash> {
    use blake3::hazmat::ChainingValue;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let n = len.div_ceil(WINDOW) as usize;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    // As many as the rayon pool has (so RAYON_NUM_THREADS applies too).
    let workers = rayon::current_num_threads().clamp(1, n);
    let mut cvs: Vec<ChainingValue> = vec![[0; 32]; n];
    let mut done = 0usize;
    let mut error = None;
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<(usize, ChainingValue, u64)>>();
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, failed) = (&next, &failed);
            s.spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let at = i as u64 * WINDOW;
                    let k = (len - at).min(WINDOW);
                    let r = match crate::mmap::map_window(file, offset + at, k as usize) {
                        Some(m) => Ok(crate::tree::leaf_cv(&m, at)),
                        None => {
                            buf.resize(k as usize, 0);
                            crate::source::read_exact_at(file, offset + at, &mut buf)
                                .map(|()| crate::tree::leaf_cv(&buf, at))
                        }
                    };
                    if tx.send(r.map(|cv| (i, cv, k))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for msg in rx {
            match msg {
                Ok((i, cv, k)) => {
                    cvs[i] = cv;
                    done += 1;
                    progress(k);
                }
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    error.get_or_insert(e);
                }
            }
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    if done != n {
        return Err(std::io::Error::other("a hashing thread stopped early"));
    }
    crate::tree::merge_windows(&cvs, WINDOW, len)
        .map(blake3::Hash::from)
        .ok_or_else(|| std::io::Error::other("BLAKE3 subtree without a window"))
}
