//! Verified tensor copies: tensor bytes streamed from an AERO file into an
//! output file, each checked against the strongest hash the file records for
//! it (see [`crate::Protection`]), with bounded memory.
//!
//! This is how every command that writes tensor bytes out reads them
//! (`extract`, `fetch-tensor`, both exporters): one pass over the bytes,
//! positioned reads in 256 KiB pieces (resident memory stays near 1 MiB
//! whatever the size, the file is not mapped), hashing on the reading
//! thread while a second thread writes (see `pipeline`).
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
                    Mode::PerTensor => {
                        for m in members {
                            per_tensor(f, shard, m, pipe, opts, &fetched)?;
                        }
                    }
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

/// Reads of one contiguous range, in order. A local source is read with one
/// positioned read per piece; a remote one a window of up to 16 MiB at a
/// time (one range request instead of 64), served piece by piece.
struct Ranged<'f> {
    f: &'f AeroFile,
    fetched: &'f Fetched,
    /// End of the range being read (absolute).
    end: u64,
    window: Vec<u8>,
    window_at: u64,
}

impl<'f> Ranged<'f> {
    fn new(f: &'f AeroFile, end: u64, fetched: &'f Fetched) -> Ranged<'f> {
        Ranged {
            f,
            fetched,
            end,
            window: Vec::new(),
            window_at: 0,
        }
    }

    fn read_at(&mut self, abs: u64, buf: &mut [u8]) -> Result<(), Stop> {
        let src = self.f.source();
        if src.stable() {
            return src
                .read_exact_at(abs, buf)
                .map_err(|e| Stop::Failed(Error::io(self.f.path(), e)));
        }
        let want_end = abs + buf.len() as u64;
        let have_end = self.window_at + self.window.len() as u64;
        if abs < self.window_at || want_end > have_end {
            let n = (self.end.saturating_sub(abs)).clamp(buf.len() as u64, crate::verify::WINDOW);
            self.window.resize(n as usize, 0);
            self.window_at = abs;
            self.fetched.borrow_mut().push((abs, n));
            src.read_exact_at(abs, &mut self.window)
                .map_err(|e| Stop::Failed(Error::io(self.f.path(), e)))?;
        }
        let from = (abs - self.window_at) as usize;
        buf.copy_from_slice(&self.window[from..from + buf.len()]);
        Ok(())
    }
}

/// Copies one tensor, checked by its own guard.
fn per_tensor(
    f: &AeroFile,
    shard: &Chunk,
    m: &Item<'_>,
    pipe: &Pipe<'_, '_>,
    opts: &CopyOptions<'_>,
    fetched: &Fetched,
) -> Result<(), Stop> {
    let (a, len) = (m.info.data_off, m.info.data_len);
    let corrupt = |offset: u64, check: String| Error::Corrupt {
        path: f.path().to_path_buf(),
        tensor: m.info.name.clone(),
        shard: shard.name.clone(),
        offset,
        check,
    };
    match &m.guard {
        Guard::Pages(ph) => {
            let Some((start, end)) =
                crate::integrity::page_span(ph.page_size, a, len, shard.length)
            else {
                return Ok(());
            };
            let ps = ph.page_size;
            let mut src = Ranged::new(f, shard.offset + end, fetched);
            let mut page = blake3::Hasher::new();
            let mut in_page = 0u64;
            let mut index = start / ps;
            let mut pos = start;
            while pos < end {
                let mut buf = pipe.take()?;
                let k = (end - pos).min(PIECE as u64).min(ps - in_page) as usize;
                src.read_at(shard.offset + pos, &mut buf[..k])?;
                page.update(&buf[..k]);
                in_page += k as u64;
                let piece_end = pos + k as u64;
                if in_page == ps || piece_end == end {
                    let ok = ph
                        .digests
                        .get(index as usize)
                        .is_some_and(|d| d == page.finalize().as_bytes());
                    if !ok {
                        return Err(Stop::Failed(corrupt(
                            shard.offset + index * ps,
                            format!("PHSH page {index}"),
                        )));
                    }
                    page = blake3::Hasher::new();
                    in_page = 0;
                    index += 1;
                }
                let (from, to) = (a.max(pos), (a + m.len).min(piece_end));
                let writes = if from < to {
                    (opts.progress)(to - from);
                    vec![(
                        (from - pos) as usize,
                        (to - pos) as usize,
                        m.dst + (from - a),
                    )]
                } else {
                    Vec::new()
                };
                pipe.put_parts(buf, writes)?;
                pos = piece_end;
            }
            Ok(())
        }
        guard => {
            let mut h = matches!(guard, Guard::TensorHash).then(blake3::Hasher::new);
            let mut src = Ranged::new(f, shard.offset + a + len, fetched);
            let mut done = 0u64;
            while done < len {
                let mut buf = pipe.take()?;
                let k = (len - done).min(PIECE as u64) as usize;
                src.read_at(shard.offset + a + done, &mut buf[..k])?;
                if let Some(h) = h.as_mut() {
                    h.update(&buf[..k]);
                }
                // Bytes past `m.len` (padding) are read for the hash only.
                let w = (m.len.saturating_sub(done)).min(k as u64) as usize;
                pipe.put(buf, w, m.dst + done)?;
                (opts.progress)(w as u64);
                done += k as u64;
            }
            if let Some(h) = h
                && m.info.hash_b3 != Some(*h.finalize().as_bytes())
            {
                return Err(Stop::Failed(corrupt(shard.offset + a, "hash_b3".into())));
            }
            Ok(())
        }
    }
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
    let mut src = Ranged::new(f, shard.offset + shard.length, fetched);
    let mut pos = 0u64;
    while pos < shard.length {
        let mut buf = pipe.take()?;
        let k = (shard.length - pos).min(PIECE as u64) as usize;
        src.read_at(shard.offset + pos, &mut buf[..k])?;
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
        pos = end;
    }
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
