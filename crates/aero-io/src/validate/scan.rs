//! One pass over a weight shard that checks every hash recorded for its
//! bytes: the shard's TOC hash, its PHSH page hashes and the `hash_b3` of
//! each tensor in it (what `validate --full` does).
//!
//! The shard is read once, in windows of [`WINDOW`] bytes (mapped windows
//! for a local file, the next one pre-faulted while the current one is
//! hashed). A local shard with no page or tensor hash to check is hashed by
//! [`crate::verify::hash_range`] instead (independent subtrees, no barrier
//! between windows). Each window is split into independent jobs that rayon spreads
//! over the cores:
//!
//! - the shard hash, as BLAKE3 subtrees: windows start at multiples of a
//!   power of two, so each window (and each half of it, recursively) is a
//!   subtree whose chaining value can be computed on its own and merged
//!   afterwards by the BLAKE3 tree rule ([`crate::tree`]);
//! - the page hashes of the pages inside the window (a page size that
//!   divides the window keeps pages inside windows; other sizes carry one
//!   page hasher from window to window);
//! - one job per tensor that overlaps the window, continuing that tensor's
//!   hasher.
//!
//! Every byte is hashed once per recorded hash that covers it: three times
//! with shard, page and tensor hashes. A standalone page or tensor hash
//! cannot be derived from the shard's tree: BLAKE3 compresses each 1 KiB
//! chunk with its index in the input, so the same bytes hash differently at
//! offset 0 of a page than at their offset in the shard.

use blake3::hazmat::ChainingValue;

use crate::integrity::PageHashes;
use crate::source::SourceRef;

/// Window size: resident memory stays near two windows.
pub(super) const WINDOW: u64 = crate::verify::WINDOW;

/// A tensor to check: (caller's index, shard-relative offset, length,
/// expected BLAKE3).
pub(super) type TensorCheck = (usize, u64, u64, [u8; 32]);

/// What one pass over a shard found.
#[derive(Clone, Debug, Default)]
pub(super) struct ShardScan {
    /// The BLAKE3 of the whole shard.
    pub shard: [u8; 32],
    /// Indices (the caller's) of tensors whose bytes do not match their hash.
    pub bad_tensors: Vec<usize>,
    /// Indices of pages whose bytes do not match their digest.
    pub bad_pages: Vec<u64>,
}

struct Running {
    index: usize,
    start: u64,
    end: u64,
    want: [u8; 32],
    hasher: blake3::Hasher,
}

/// Hashes `len` bytes at `offset` of `src` (a shard) once, checking the
/// tensors' hashes and the page hashes on the way (see the module docs).
/// `progress` is told how many bytes each window held.
pub(super) fn scan_shard<'a>(
    src: impl Into<SourceRef<'a>>,
    offset: u64,
    len: u64,
    tensors: &[TensorCheck],
    pages: Option<&PageHashes>,
    mut progress: impl FnMut(u64),
) -> std::io::Result<ShardScan> {
    let src: SourceRef<'a> = src.into();
    let only_shard = pages.is_none()
        && tensors
            .iter()
            .all(|&(_, off, n, _)| n == 0 || off.checked_add(n).is_none_or(|e| e > len));
    if only_shard && src.local_file().is_some() {
        // Only the shard hash covers these bytes: one BLAKE3 of the range,
        // which for a local file is [`crate::verify::hash_range`]'s subtrees
        // (each core maps and hashes the next window on its own, with no
        // barrier between windows), as `validate --full` hashed shards
        // before page and tensor hashes joined the pass. The windowed pass
        // below waits at the end of every window for its slowest job.
        let mut scanner = ShardScanner::new(len, tensors, pages, WINDOW);
        scanner.out.shard = *crate::verify::hash_range(src, offset, len, progress)?.as_bytes();
        scanner.out.bad_tensors.sort_unstable();
        return Ok(scanner.out);
    }
    let mut scanner = ShardScanner::new(len, tensors, pages, WINDOW);
    crate::verify::for_each_window(src, offset, len, |w| scanner.window(w), &mut progress)?;
    scanner.finish()
}

/// [`scan_shard`] fed by its caller: windows of the shard's bytes in order,
/// each `window_size` bytes (a power of two) except the last. How one pass
/// over a whole remote file checks every shard in it while the same bytes
/// feed other hashes (`validate_with_digest`).
pub(super) struct ShardScanner<'p> {
    len: u64,
    window_size: u64,
    todo: Vec<TensorCheck>,
    next_tensor: usize,
    running: Vec<Running>,
    cvs: Vec<ChainingValue>,
    root: Option<blake3::Hash>,
    pages: Option<&'p PageHashes>,
    page_carry: Option<(blake3::Hasher, u64, u64)>,
    base: u64,
    out: ShardScan,
}

impl<'p> ShardScanner<'p> {
    /// A scan of a shard of `len` bytes checking `tensors` and `pages`, fed
    /// windows of `window_size` bytes (a power of two).
    pub(super) fn new(
        len: u64,
        tensors: &[TensorCheck],
        pages: Option<&'p PageHashes>,
        window_size: u64,
    ) -> ShardScanner<'p> {
        let mut todo: Vec<TensorCheck> = tensors
            .iter()
            .copied()
            .filter(|&(_, off, n, _)| off.checked_add(n).is_some_and(|e| e <= len))
            .collect();
        todo.sort_by_key(|t| t.1);
        let mut out = ShardScan::default();
        // Empty tensors hash the empty input.
        for &(i, _, n, want) in &todo {
            if n == 0 && *blake3::hash(&[]).as_bytes() != want {
                out.bad_tensors.push(i);
            }
        }
        ShardScanner {
            len,
            window_size: window_size.max(1 << 10).next_power_of_two(),
            todo,
            next_tensor: 0,
            running: Vec::new(),
            cvs: Vec::new(),
            root: None,
            pages,
            page_carry: pages.map(|p| (blake3::Hasher::new(), 0u64, p.page_size.max(1))),
            base: 0,
            out,
        }
    }

    /// The size of the windows this scan takes.
    pub(super) fn window_size(&self) -> u64 {
        self.window_size
    }

    /// Consumes the next window.
    pub(super) fn window(&mut self, w: &[u8]) {
        let base = self.base;
        let end = base + w.len() as u64;
        // Tensors that start in this window join the running set.
        while let Some(&(i, off, n, want)) = self.todo.get(self.next_tensor) {
            if off >= end {
                break;
            }
            self.next_tensor += 1;
            if n > 0 {
                self.running.push(Running {
                    index: i,
                    start: off,
                    end: off + n,
                    want,
                    hasher: blake3::Hasher::new(),
                });
            }
        }
        let mut cv = None;
        let mut bad_pages = Vec::new();
        let (len, window_size, pages) = (self.len, self.window_size, self.pages);
        let carry = &mut self.page_carry;
        let running = &mut self.running;
        rayon::scope(|s| {
            let whole = len <= window_size;
            let cv = &mut cv;
            s.spawn(move |_| {
                *cv = Some(if whole {
                    Err(crate::tree::root_hash(w))
                } else {
                    Ok(crate::tree::subtree_cv(w, base))
                });
            });
            if let Some(ph) = pages {
                let bad = &mut bad_pages;
                s.spawn(move |_| page_job(w, base, window_size, ph, carry, bad));
            }
            for r in running.iter_mut() {
                let (from, to) = (r.start.max(base), r.end.min(end));
                if from < to {
                    let seg = &w[(from - base) as usize..(to - base) as usize];
                    s.spawn(move |_| {
                        r.hasher.update(seg);
                    });
                }
            }
        });
        match cv {
            Some(Ok(c)) => self.cvs.push(c),
            Some(Err(h)) => self.root = Some(h),
            None => {}
        }
        self.out.bad_pages.extend(bad_pages);
        // Tensors that ended in this window are checked.
        let out = &mut self.out;
        self.running.retain(|r| {
            if r.end > end {
                return true;
            }
            if *r.hasher.finalize().as_bytes() != r.want {
                out.bad_tensors.push(r.index);
            }
            false
        });
        self.base = end;
    }

    /// What the scan found, once every window was given.
    pub(super) fn finish(mut self) -> std::io::Result<ShardScan> {
        let len = self.len;
        if self.base != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("shard scan got {} of {len} bytes", self.base),
            ));
        }
        if let Some((h, n, _)) = self.page_carry.take().filter(|(_, n, _)| *n > 0)
            && let Some(ph) = self.pages
        {
            let i = (len - n) / ph.page_size.max(1);
            if ph.digests.get(i as usize) != Some(h.finalize().as_bytes()) {
                self.out.bad_pages.push(i);
            }
        }
        if len == 0 {
            self.root = Some(blake3::hash(&[]));
            if let Some(ph) = self.pages
                && ph
                    .digests
                    .first()
                    .is_some_and(|d| d != blake3::hash(&[]).as_bytes())
            {
                self.out.bad_pages.push(0);
            }
        }
        let mut out = self.out;
        out.bad_tensors.sort_unstable();
        out.bad_pages.sort_unstable();
        out.bad_pages.dedup();
        out.shard = match self.root {
            Some(h) => *h.as_bytes(),
            None => crate::tree::merge_windows(&self.cvs, self.window_size, len)
                .ok_or_else(|| std::io::Error::other("BLAKE3 subtree without a window"))?,
        };
        Ok(out)
    }
}

/// The page-hash job of one window: whole pages are hashed in parallel
/// when the page size divides the window; otherwise one hasher carries a
/// page across windows.
fn page_job(
    w: &[u8],
    base: u64,
    window_size: u64,
    ph: &PageHashes,
    carry: &mut Option<(blake3::Hasher, u64, u64)>,
    bad: &mut Vec<u64>,
) {
    use rayon::prelude::*;
    let ps = ph.page_size.max(1);
    let check = |i: u64, h: blake3::Hash| ph.digests.get(i as usize) == Some(h.as_bytes());
    if window_size.is_multiple_of(ps) && base.is_multiple_of(ps) {
        let step = ps as usize;
        let first = base / ps;
        let found: Vec<u64> = w
            .par_chunks(step)
            .enumerate()
            .filter_map(|(j, p)| {
                let i = first + j as u64;
                // A last page shorter than a page is complete only at the
                // end of the shard, which is the end of this window.
                (!check(i, blake3::hash(p))).then_some(i)
            })
            .collect();
        bad.extend(found);
        return;
    }
    let Some((h, n, ps)) = carry.as_mut() else {
        return;
    };
    let mut rest = w;
    let mut pos = base;
    while !rest.is_empty() {
        let k = ((*ps - *n) as usize).min(rest.len());
        h.update(&rest[..k]);
        *n += k as u64;
        pos += k as u64;
        rest = &rest[k..];
        if *n == *ps {
            let i = (pos - 1) / *ps;
            if !check(i, h.finalize()) {
                bad.push(i);
            }
            *h = blake3::Hasher::new();
            *n = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        aero_test_support::bytes(0x2545_f491, n)
    }

    fn pages_of(b: &[u8], ps: u64) -> PageHashes {
        PageHashes {
            shard_name: "weights.shard0".into(),
            page_size: ps,
            digests: if b.is_empty() {
                vec![*blake3::hash(&[]).as_bytes()]
            } else {
                b.chunks(ps as usize)
                    .map(|p| *blake3::hash(p).as_bytes())
                    .collect()
            },
        }
    }

    #[test]
    fn one_pass_matches_separate_hashes_for_every_shape() {
        let sizes = [
            0usize,
            1,
            1023,
            1024,
            (2 << 20) + 5,
            WINDOW as usize,
            WINDOW as usize + 1,
            3 * WINDOW as usize + 12345,
        ];
        for &n in &sizes {
            let b = data(n);
            for ps in [1 << 20, 3000u64, WINDOW * 2] {
                let ph = pages_of(&b, ps);
                let cut = n / 3;
                let tensors: Vec<TensorCheck> = vec![
                    (0, 0, cut as u64, *blake3::hash(&b[..cut]).as_bytes()),
                    (
                        1,
                        cut as u64,
                        (n - cut) as u64,
                        *blake3::hash(&b[cut..]).as_bytes(),
                    ),
                    (2, 0, n as u64, *blake3::hash(&b).as_bytes()),
                ];
                let r = scan_shard(&b, 0, n as u64, &tensors, Some(&ph), |_| {}).unwrap();
                assert_eq!(r.shard, *blake3::hash(&b).as_bytes(), "n={n} ps={ps}");
                assert!(
                    r.bad_tensors.is_empty(),
                    "n={n} ps={ps} {:?}",
                    r.bad_tensors
                );
                assert!(r.bad_pages.is_empty(), "n={n} ps={ps} {:?}", r.bad_pages);
                if n > 10 {
                    // One flipped byte is caught by all three hashes.
                    let mut d = b.clone();
                    d[n - 3] ^= 1;
                    let r = scan_shard(&d, 0, n as u64, &tensors, Some(&ph), |_| {}).unwrap();
                    assert_ne!(r.shard, *blake3::hash(&b).as_bytes());
                    assert_eq!(r.bad_tensors, vec![1, 2], "n={n} ps={ps}");
                    assert_eq!(r.bad_pages, vec![(n as u64 - 3) / ps], "n={n} ps={ps}");
                }
            }
        }
    }

    #[test]
    fn a_local_shard_with_only_its_own_hash_is_hashed_whole() {
        // The subtree path (no pages, no tensor hashes, a local file longer
        // than a window) gives the shard's BLAKE3 and sees a flipped byte.
        let n = 3 * WINDOW as usize + 12345;
        let mut b = data(n + 100);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard");
        for flip in [false, true] {
            if flip {
                b[100 + n - 7] ^= 1;
            }
            std::fs::write(&path, &b).unwrap();
            let src = crate::source::LocalSource::open(&path).unwrap();
            let empty = (0usize, 5u64, 0u64, *blake3::hash(&[]).as_bytes());
            let mut seen = 0u64;
            let r = scan_shard(&src, 100, n as u64, &[empty], None, |k| seen += k).unwrap();
            assert_eq!(seen, n as u64);
            assert_eq!(r.shard, *blake3::hash(&b[100..]).as_bytes());
            let original = *blake3::hash(&data(n + 100)[100..]).as_bytes();
            assert_eq!(r.shard == original, !flip);
            assert!(r.bad_tensors.is_empty() && r.bad_pages.is_empty());
        }
    }
}
