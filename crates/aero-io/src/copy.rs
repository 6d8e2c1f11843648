//! Verified tensor copies: tensor bytes streamed from an AERO file into an
//! output file, each checked against the strongest hash the file records for
//! it (see [`crate::Protection`]), with bounded memory.
//!
//! This is how every command that writes tensor bytes out reads them
//! (`extract`, `fetch-tensor`, both exporters): one pass over the bytes,
//! hashing on the reading thread while a second thread writes (see
//! `pipeline`). A local file is read with positioned reads in 256 KiB
//! pieces (resident memory stays near 1 MiB whatever the size, the file is
//! not mapped); a remote file is streamed ([`crate::ByteSource::stream`]:
//! several range requests in flight, a shard's tensors in one stream, memory
//! bounded by the range engine) and its bytes checked as each tensor or
//! page completes.
//!
//! Bytes reach the output before the hash that covers them has been
//! finished (a tensor's `hash_b3` is known only at its last byte, a shard's
//! at the shard's). A failed check therefore leaves unspecified bytes in the
//! output: write into an [`Output`](crate::output::Output) and drop it on
//! error (every writer in this workspace does), so nothing unverified is
//! ever installed under the destination's name.

use std::fs::File;
use std::path::Path;

use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::file::{AeroFile, Guard};
use crate::index::TensorInfo;
use crate::pipeline::{self, Cancelled, PIECE, Pipe};

/// A tensor to copy and the output offset of its first byte.
#[derive(Clone, Copy, Debug)]
pub struct Placement<'a> {
    /// The tensor (an entry of the file's index, or a copy of one).
    pub tensor: &'a TensorInfo,
    /// Where its first byte goes in the output.
    pub dst: u64,
    /// How many of its bytes to write: `data_len`, or fewer to leave out
    /// the alignment padding a reference GGUF-origin tensor carries
    /// ([`AeroFile::tensor_len`]). Every stored byte is still read and
    /// checked against the hashes that cover it.
    pub len: u64,
}

impl<'a> Placement<'a> {
    /// The tensor's own bytes of `f` ([`AeroFile::tensor_len`]) at `dst`.
    pub fn new(f: &AeroFile, tensor: &'a TensorInfo, dst: u64) -> Placement<'a> {
        Placement {
            tensor,
            dst,
            len: f.tensor_len(tensor),
        }
    }
}

/// How [`copy_tensors`] runs.
pub struct CopyOptions<'p> {
    /// Check every byte against the file's hashes (the default). `false`
    /// copies without checking: only for callers that explicitly asked for
    /// unverified data.
    pub verify: bool,
    /// Start write-back of the output while copying (for outputs that will
    /// be fsynced).
    pub durable: bool,
    /// Told how many tensor bytes have been written.
    pub progress: Box<dyn Fn(u64) + Sync + 'p>,
}

impl Default for CopyOptions<'_> {
    fn default() -> Self {
        CopyOptions {
            verify: true,
            durable: true,
            progress: Box::new(|_| {}),
        }
    }
}

/// How one shard's tensors are read.
enum Mode {
    /// Each tensor on its own, checked by its own guard.
    PerTensor,
    /// The whole shard in one pass, checked against its TOC hash.
    WholeShard,
}

struct Item<'a> {
    info: &'a TensorInfo,
    dst: u64,
    /// Bytes written (a prefix of `data_len`).
    len: u64,
    guard: Guard,
}

/// Why the producing half stopped.
enum Stop {
    Failed(Error),
    Cancelled,
}

impl From<Cancelled> for Stop {
    fn from(_: Cancelled) -> Stop {
        Stop::Cancelled
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

/// Copies the bytes of `items` into `out` at their placements (see the
/// module docs). Fails before writing anything when a tensor's range is out
/// of bounds or nothing records a hash for it (with `verify`).
pub fn copy_tensors(
    f: &AeroFile,
    items: &[Placement<'_>],
    out: &File,
    out_path: &Path,
    opts: &CopyOptions<'_>,
) -> Result<()> {
    // Resolve everything first: bad ranges and unverifiable tensors fail
    // before a byte is written.
    let mut groups: Vec<(&Chunk, Vec<Item<'_>>)> = Vec::new();
    for p in items {
        f.tensor_range(p.tensor)?;
        let shard = f.shard(p.tensor.shard_id)?;
        let guard = if opts.verify {
            f.guard(p.tensor)
        } else {
            Guard::Trusted
        };
        if matches!(guard, Guard::Unprotected) {
            return Err(Error::Unverifiable {
                path: f.path().to_path_buf(),
                tensor: p.tensor.name.clone(),
                shard: shard.name.clone(),
            });
        }
        if p.len > p.tensor.data_len {
            return Err(Error::Tensor {
                path: f.path().to_path_buf(),
                name: p.tensor.name.clone(),
                reason: format!("{} bytes asked of a tensor of {}", p.len, p.tensor.data_len),
            });
        }
        let item = Item {
            info: p.tensor,
            dst: p.dst,
            len: p.len,
            guard,
        };
        match groups.iter_mut().find(|(c, _)| c.index == shard.index) {
            Some((_, v)) => v.push(item),
            None => groups.push((shard, vec![item])),
        }
    }
    groups.sort_by_key(|(c, _)| c.offset);
    let mut plan = Vec::with_capacity(groups.len());
    for (shard, mut members) in groups {
        members.sort_by_key(|m| m.info.data_off);
        let mode = if members.iter().any(|m| matches!(m.guard, Guard::Shard))
            && !f.shard_known_good(shard)
        {
            let wanted: u64 = members.iter().map(|m| m.info.data_len).sum();
            if f.source().stable() && wanted < shard.length / 2 {
                // A small part of a big shard: hash it once on every core
                // (remembered for this open file), then copy just the part.
                if let Some(m) = members.iter().find(|m| matches!(m.guard, Guard::Shard)) {
                    f.verify_shard(shard, m.info)?;
                }
                Mode::PerTensor
            } else {
                Mode::WholeShard
            }
        } else {
            Mode::PerTensor
        };
        plan.push((shard, members, mode));
    }

    let fetched = Fetched::default();
    let attempt = || {
        let written_back = if opts.durable { 0 } else { u64::MAX };
        let (produced, wrote, _) = pipeline::run(out, written_back, |pipe| {
            for (shard, members, mode) in &plan {
                match mode {
                    Mode::WholeShard => whole_shard(f, shard, members, pipe, opts, &fetched)?,
                    Mode::PerTensor => per_tensors(f, shard, members, pipe, opts, &fetched)?,
                }
            }
            Ok::<(), Stop>(())
        });
        match (produced, wrote) {
            (Err(Stop::Failed(e)), _) => Err(e),
            (_, Err(e)) => Err(Error::io(out_path, e)),
            (Err(Stop::Cancelled), Ok(())) => Err(Error::Cancelled {
                what: "tensor copy",
            }),
            (Ok(()), Ok(())) => Ok(()),
        }
    };
    match attempt() {
        // A remote source may have served a damaged cached copy: drop every
        // range this copy fetched and try once more from the network.
        Err(e @ Error::Corrupt { .. }) if !f.source().stable() => {
            let mut any = false;
            for (at, len) in fetched.borrow_mut().drain(..) {
                any |= f.drop_cached(at, len);
            }
            if any { attempt() } else { Err(e) }
        }
        r => r,
    }
}

/// Ranges a copy fetched from a remote source (to drop from its cache when
/// they turn out damaged).
type Fetched = std::cell::RefCell<Vec<(u64, u64)>>;

/// Hands the bytes of `ranges` (absolute `(offset, length)`, sorted, not
/// overlapping) to `each` in order, one pipe buffer at a time:
/// `each(r, pos, buf, k)` gets a buffer whose first `k` bytes are those at
/// `pos` bytes into range `r`, where `k` is at most `piece(r, pos)`. A local
/// (stable) source is read with one positioned read per buffer; any other
/// is streamed in one go ([`crate::ByteSource::stream`]: a remote file keeps
/// several range requests in flight, and close ranges share requests) and
/// copied into the buffers.
fn feed(
    f: &AeroFile,
    fetched: &Fetched,
    pipe: &Pipe<'_, '_>,
    ranges: &[(u64, u64)],
    piece: &dyn Fn(usize, u64) -> usize,
    each: &mut dyn FnMut(usize, u64, Vec<u8>, usize) -> Result<(), Stop>,
) -> Result<(), Stop> {
    let src = f.source();
    let io_err = |e| Stop::Failed(Error::io(f.path(), e));
    if src.stable() {
        for (r, &(start, len)) in ranges.iter().enumerate() {
            let mut pos = 0u64;
            while pos < len {
                let mut buf = pipe.take()?;
                let k = ((len - pos) as usize).min(piece(r, pos)).min(buf.len());
                src.read_exact_at(start + pos, &mut buf[..k])
                    .map_err(io_err)?;
                each(r, pos, buf, k)?;
                pos += k as u64;
            }
        }
        return Ok(());
    }
    fetched.borrow_mut().extend_from_slice(ranges);
    let mut stopped: Option<Stop> = None;
    let (mut r, mut pos) = (0usize, 0u64);
    let mut cur: Option<(Vec<u8>, usize, usize)> = None; // buffer, filled, wanted
    let streamed = src.stream(ranges, &mut |at, mut bytes| {
        let mut step = || -> Result<(), Stop> {
            // Skip ranges already complete (and empty ones).
            while let Some(&(ra, rn)) = ranges.get(r)
                && (pos >= rn || at >= ra + rn)
            {
                r += 1;
                pos = 0;
            }
            let Some(&(_, len)) = ranges.get(r) else {
                return Ok(());
            };
            while !bytes.is_empty() {
                let (mut buf, mut filled, want) = match cur.take() {
                    Some(c) => c,
                    None => {
                        let buf = pipe.take()?;
                        let want = ((len - pos) as usize).min(piece(r, pos)).min(buf.len());
                        (buf, 0, want)
                    }
                };
                let k = (want - filled).min(bytes.len());
                buf[filled..filled + k].copy_from_slice(&bytes[..k]);
                filled += k;
                bytes = &bytes[k..];
                if filled == want {
                    each(r, pos, buf, want)?;
                    pos += want as u64;
                } else {
                    cur = Some((buf, filled, want));
                }
            }
            Ok(())
        };
        step().map_err(|e| {
            stopped = Some(e);
            std::io::Error::new(std::io::ErrorKind::Interrupted, "copy stopped")
        })
    });
    if let Some(e) = stopped {
        return Err(e);
    }
    streamed.map_err(io_err)
}

/// The copy of one tensor checked by its own guard, fed piece by piece.
struct TensorCopy<'a, 'f> {
    f: &'f AeroFile,
    shard: &'f Chunk,
    m: &'a Item<'a>,
    /// Shard-relative range read: the pages around the tensor (PHSH) or the
    /// tensor itself.
    start: u64,
    end: u64,
    hash: Option<blake3::Hasher>,
    page: Option<(blake3::Hasher, u64, u64)>, // hasher, bytes in page, page index
}

impl<'a, 'f> TensorCopy<'a, 'f> {
    fn new(f: &'f AeroFile, shard: &'f Chunk, m: &'a Item<'a>) -> TensorCopy<'a, 'f> {
        let (a, len) = (m.info.data_off, m.info.data_len);
        let mut c = TensorCopy {
            f,
            shard,
            m,
            start: a,
            end: a + len,
            hash: None,
            page: None,
        };
        match &m.guard {
            Guard::Pages(ph) => {
                let (s, e) = crate::integrity::page_span(ph.page_size, a, len, shard.length)
                    .unwrap_or((a, a));
                c.start = s;
                c.end = e;
                c.page = Some((blake3::Hasher::new(), 0, s / ph.page_size.max(1)));
            }
            Guard::TensorHash => c.hash = Some(blake3::Hasher::new()),
            _ => {}
        }
        c
    }

    /// The absolute range to read.
    fn range(&self) -> (u64, u64) {
        (self.shard.offset + self.start, self.end - self.start)
    }

    /// The longest piece at `rel` bytes into the range (pieces never cross
    /// a page boundary).
    fn piece(&self, rel: u64) -> usize {
        match &self.m.guard {
            Guard::Pages(ph) => {
                (PIECE as u64).min(ph.page_size - (self.start + rel) % ph.page_size) as usize
            }
            _ => PIECE,
        }
    }

    fn corrupt(&self, offset: u64, check: String) -> Stop {
        Stop::Failed(Error::Corrupt {
            path: self.f.path().to_path_buf(),
            tensor: self.m.info.name.clone(),
            shard: self.shard.name.clone(),
            offset,
            check,
        })
    }

    /// Checks and hands over `buf[..k]`, the bytes `rel` bytes into the range.
    fn step(
        &mut self,
        rel: u64,
        buf: Vec<u8>,
        k: usize,
        pipe: &Pipe<'_, '_>,
        opts: &CopyOptions<'_>,
    ) -> Result<(), Stop> {
        // Bytes past `m.len` (padding) are read for the hashes only.
        let (a, len) = (self.m.info.data_off, self.m.len);
        let pos = self.start + rel;
        let piece_end = pos + k as u64;
        if let Some(h) = self.hash.as_mut() {
            h.update(&buf[..k]);
        }
        if let (Guard::Pages(ph), Some((page, in_page, index))) = (&self.m.guard, &mut self.page) {
            let ps = ph.page_size;
            page.update(&buf[..k]);
            *in_page += k as u64;
            if *in_page == ps || piece_end == self.end {
                let ok = ph
                    .digests
                    .get(*index as usize)
                    .is_some_and(|d| d == page.finalize().as_bytes());
                let at = self.shard.offset + *index * ps;
                let which = *index;
                *page = blake3::Hasher::new();
                *in_page = 0;
                *index += 1;
                if !ok {
                    return Err(self.corrupt(at, format!("PHSH page {which}")));
                }
            }
        }
        let (from, to) = (a.max(pos), (a + len).min(piece_end));
        let writes = if from < to {
            (opts.progress)(to - from);
            vec![(
                (from - pos) as usize,
                (to - pos) as usize,
                self.m.dst + (from - a),
            )]
        } else {
            Vec::new()
        };
        pipe.put_parts(buf, writes)?;
        Ok(())
    }

    /// After the last piece: the tensor's own hash.
    fn finish(&mut self) -> Result<(), Stop> {
        if let Some(h) = self.hash.take()
            && self.m.info.hash_b3 != Some(*h.finalize().as_bytes())
        {
            let at = self.shard.offset + self.m.info.data_off;
            return Err(self.corrupt(at, "hash_b3".into()));
        }
        Ok(())
    }
}

/// Copies tensors of one shard, each checked by its own guard. A remote
/// shard's tensors are streamed together (their ranges in one stream, so
/// requests overlap and close tensors share them) unless their ranges
/// overlap (two tensors in one PHSH page); a local one is read tensor by
/// tensor.
fn per_tensors(
    f: &AeroFile,
    shard: &Chunk,
    members: &[Item<'_>],
    pipe: &Pipe<'_, '_>,
    opts: &CopyOptions<'_>,
    fetched: &Fetched,
) -> Result<(), Stop> {
    let mut copies: Vec<TensorCopy<'_, '_>> = members
        .iter()
        .map(|m| TensorCopy::new(f, shard, m))
        .collect();
    copies.sort_by_key(|c| c.start);
    let disjoint = copies.windows(2).all(|w| w[0].end <= w[1].start);
    if f.source().stable() || !disjoint {
        for c in &mut copies {
            let ranges = [c.range()];
            let cell = std::cell::RefCell::new(&mut *c);
            feed(
                f,
                fetched,
                pipe,
                &ranges,
                &|_, rel| cell.borrow().piece(rel),
                &mut |_, rel, buf, k| cell.borrow_mut().step(rel, buf, k, pipe, opts),
            )?;
            c.finish()?;
        }
        return Ok(());
    }
    let ranges: Vec<(u64, u64)> = copies.iter().map(TensorCopy::range).collect();
    let cells: Vec<std::cell::RefCell<&mut TensorCopy<'_, '_>>> =
        copies.iter_mut().map(std::cell::RefCell::new).collect();
    let fed = feed(
        f,
        fetched,
        pipe,
        &ranges,
        &|r, rel| cells[r].borrow().piece(rel),
        &mut |r, rel, buf, k| {
            let mut c = cells[r].borrow_mut();
            c.step(rel, buf, k, pipe, opts)?;
            if rel + k as u64 == ranges[r].1 {
                c.finish()?;
            }
            Ok(())
        },
    );
    fed?;
    // Empty tensors (no piece) are checked here; the others already were.
    for c in cells {
        c.borrow_mut().finish()?;
    }
    Ok(())
}

/// Copies tensors of one shard by reading the whole shard once and checking
/// its TOC hash.
fn whole_shard(
    f: &AeroFile,
    shard: &Chunk,
    members: &[Item<'_>],
    pipe: &Pipe<'_, '_>,
    opts: &CopyOptions<'_>,
    fetched: &Fetched,
) -> Result<(), Stop> {
    let mut h = blake3::Hasher::new();
    feed(
        f,
        fetched,
        pipe,
        &[(shard.offset, shard.length)],
        &|_, _| PIECE,
        &mut |_, pos, buf, k| {
            h.update(&buf[..k]);
            let end = pos + k as u64;
            let mut writes = Vec::new();
            for m in members {
                let (a, b) = (m.info.data_off, m.info.data_off + m.len);
                let (from, to) = (a.max(pos), b.min(end));
                if from < to {
                    (opts.progress)(to - from);
                    writes.push((
                        (from - pos) as usize,
                        (to - pos) as usize,
                        m.dst + (from - a),
                    ));
                }
            }
            pipe.put_parts(buf, writes)?;
            Ok(())
        },
    )?;
    if *h.finalize().as_bytes() != shard.blake3 {
        // The damaged tensor, when a finer hash tells it and it is one of
        // those being copied. Else, copying one tensor, that tensor: its
        // only protection, the shard hash, failed. Else the shard: no
        // tensor can be named (not merely the first one copied).
        if let Some(e @ Error::Corrupt { .. }) = f.locate_damage(shard)
            && let Error::Corrupt { tensor, .. } = &e
            && members.iter().any(|m| m.info.name == *tensor)
        {
            return Err(Stop::Failed(e));
        }
        return Err(Stop::Failed(match members {
            [only] => Error::Corrupt {
                path: f.path().to_path_buf(),
                tensor: only.info.name.clone(),
                shard: shard.name.clone(),
                offset: shard.offset,
                check: format!("the {} BLAKE3", shard.name),
            },
            _ => Error::HashMismatch {
                path: f.path().to_path_buf(),
                index: shard.index,
                fourcc: shard.fourcc,
                name: shard.name.clone(),
            },
        }));
    }
    Ok(())
}

/// Writes one tensor's verified bytes ([`AeroFile::tensor_len`] of them) to `dest` — a file (atomically), `-`
/// for standard output, a device or a FIFO (see [`crate::output`]) — and
/// returns the number of bytes. Refuses a `dest` that is the input file.
pub fn extract(
    f: &AeroFile,
    info: &TensorInfo,
    dest: &Path,
    opts: &CopyOptions<'_>,
) -> Result<u64> {
    crate::output::refuse_same_file(dest, f.path())?;
    let mut out = crate::output::Output::create(dest)?;
    let place = Placement::new(f, info, 0);
    copy_tensors(f, &[place], out.file(), dest, opts)?;
    out.file()
        .set_len(place.len)
        .map_err(|e| Error::io(dest, e))?;
    out.commit(opts.durable)?;
    Ok(place.len)
}
