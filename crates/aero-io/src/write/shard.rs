//! The shards step of [`super::write_to`] ([`write_shards`]) and streaming
//! one shard: the shard/page hashers and the two-thread
//! copy of tensor bytes (on [`crate::pipeline`]), with the verbatim fast
//! path for a shard copied unchanged from a verified input.

use std::io::{self, Read};

use super::metadata::Payload;
use super::options::WriteOptions;
use super::out::Out;
use super::place::{FilePlan, Toc};
use super::spec::{Observer, SourceChunk, TensorBytes, TensorSpec};
use crate::error::{Error, Result};
use crate::index::TensorInfo;
use crate::integrity::{PageHashes, encode_phsh};

/// Hashes a shard's bytes as they stream: whole-shard BLAKE3 and, when
/// requested, one BLAKE3 per page.
pub(super) struct ShardHasher {
    shard: blake3::Hasher,
    page_size: u64,
    page: Option<blake3::Hasher>,
    in_page: u64,
    digests: Vec<[u8; 32]>,
}

impl ShardHasher {
    pub(super) fn new(page_size: Option<u64>) -> Self {
        ShardHasher {
            shard: blake3::Hasher::new(),
            page_size: page_size.unwrap_or(0),
            page: page_size.map(|_| blake3::Hasher::new()),
            in_page: 0,
            digests: Vec::new(),
        }
    }

    /// Each hash runs on one thread (the other core is copying, see
    /// [`stream_shard`]; splitting one hash across the pool only makes the
    /// threads compete); page hashes run beside the shard hash.
    pub(super) fn update(&mut self, b: &[u8]) {
        let ShardHasher {
            shard,
            page_size,
            page,
            in_page,
            digests,
        } = self;
        match page {
            None => {
                shard.update(b);
            }
            Some(ph) => {
                rayon::join(
                    || shard.update(b),
                    || Self::pages(ph, *page_size, in_page, digests, b),
                );
            }
        }
    }

    pub(super) fn pages(
        ph: &mut blake3::Hasher,
        page_size: u64,
        in_page: &mut u64,
        digests: &mut Vec<[u8; 32]>,
        mut b: &[u8],
    ) {
        while !b.is_empty() {
            let n = ((page_size - *in_page) as usize).min(b.len());
            ph.update(&b[..n]);
            *in_page += n as u64;
            b = &b[n..];
            if *in_page == page_size {
                digests.push(*ph.finalize().as_bytes());
                *ph = blake3::Hasher::new();
                *in_page = 0;
            }
        }
    }

    /// Starts over (same page size).
    pub(super) fn reset(&mut self) {
        *self = ShardHasher::new(self.page.as_ref().map(|_| self.page_size));
    }

    pub(super) fn finish(mut self) -> ([u8; 32], Vec<[u8; 32]>) {
        if let Some(ph) = &self.page
            && self.in_page > 0
        {
            self.digests.push(*ph.finalize().as_bytes());
        }
        (*self.shard.finalize().as_bytes(), self.digests)
    }
}

/// Streams every shard of `plan` into `out`, each at its alignment, with
/// its PHSH (if any) placed right after it; fills in the shards' TOC
/// entries and, when tensor hashes are asked for, the tensors' `hash_b3`
/// (except those the output must not vouch for).
pub(super) fn write_shards(
    out: &mut Out<'_>,
    toc: &mut Toc,
    specs: Vec<TensorSpec<'_>>,
    plan: &FilePlan,
    opts: &WriteOptions,
    tensors: &mut [TensorInfo],
) -> Result<()> {
    let (shards, chunks) = (&plan.shards, &plan.chunks);
    let mut specs = specs.into_iter().enumerate().peekable();
    for s in 0..shards.shard_len.len() {
        let start = toc
            .align(out, opts.layout.shard_align())
            .map_err(|e| Error::io(out.path, e))?;
        let members: Vec<Member<'_>> =
            std::iter::from_fn(|| specs.next_if(|(ti, _)| shards.placement[*ti].0 == s))
                .map(|(ti, spec)| Member {
                    ti,
                    off: shards.placement[ti].1,
                    spec,
                })
                .collect();
        let mut sh = ShardHasher::new(opts.page_hashes);
        let len = shards.shard_len[s];
        for (ti, h) in stream_shard(out, start, len, members, &mut sh, opts.tensor_hash)? {
            if !opts.unverified.contains(&tensors[ti].name) {
                tensors[ti].hash_b3 = h;
            }
        }
        out.advance(len).map_err(|e| Error::io(out.path, e))?;
        debug_assert_eq!(out.pos - start, len);
        let (digest, pages) = sh.finish();
        let hash = if plan.unvouched[s] { [0; 32] } else { digest };
        toc.set(chunks.wtsh[s], start, len, len, hash);
        if let Some(pi) = chunks.phsh[s] {
            let payload = Payload::plain(encode_phsh(&PageHashes {
                shard_name: chunks.names[chunks.wtsh[s]].clone(),
                page_size: opts
                    .page_hashes
                    .unwrap_or(aero_format::limits::DEFAULT_PAGE_SIZE),
                digests: pages,
            }));
            toc.place(out, pi, &payload)?;
        }
    }
    Ok(())
}

/// One tensor of a shard being streamed.
pub(super) struct Member<'a> {
    /// Index in the TIDX.
    pub(super) ti: usize,
    /// Offset in the shard.
    pub(super) off: u64,
    pub(super) spec: TensorSpec<'a>,
}

/// Streams one shard's tensors to the output at `start` with two threads:
/// this one reads each piece of the shard into a small buffer (positioned
/// reads of file ranges, or the tensor's reader; zeros for the gaps),
/// hashes it while it is in cache (shard, page and tensor hashes,
/// observers), and passes it to a writing thread that writes it in place.
/// Both cores stay busy and every byte is read from memory once. Returns each
/// tensor's BLAKE3 when asked for.
pub(super) fn stream_shard(
    out: &mut Out<'_>,
    start: u64,
    len: u64,
    members: Vec<Member<'_>>,
    sh: &mut ShardHasher,
    tensor_hash: bool,
) -> Result<Vec<(usize, Option<[u8; 32]>)>> {
    let written_back = out.written_back;
    let path = out.path;
    let file = out.file().map_err(|e| Error::io(path, e))?;
    let names: Vec<(usize, String)> = members
        .iter()
        .map(|m| (m.ti, m.spec.name.clone()))
        .collect();
    let name_of = |ti: usize| {
        names
            .iter()
            .find(|(i, _)| *i == ti)
            .map(|(_, n)| n.clone())
            .unwrap_or_default()
    };
    let (read, wrote, written_back) = crate::pipeline::run(file, written_back, |pipe| {
        match verbatim_chunk(&members, len) {
            Some(_) => read_verbatim(pipe, start, members, sh, tensor_hash),
            None => read_members(pipe, start, members, sh, tensor_hash),
        }
    });
    // The reading side's error explains more (a corrupt or short input);
    // a cancelled side reports nothing of its own.
    let r = match (read, wrote) {
        (Err(Stop::Failed(ti, e)), _) => Err(Error::Input {
            path: None,
            tensor: name_of(ti),
            source: e,
        }),
        (Err(Stop::Other(e)), _) => Err(e),
        (_, Err(e)) => Err(Error::io(path, e)),
        (Err(Stop::Cancelled), Ok(())) => Err(Error::Cancelled { what: "shard copy" }),
        (Ok(h), Ok(())) if h.rehash_output => {
            // The input had bytes in the gaps that the output has as zeros:
            // hash the output as written.
            sh.reset();
            let mut buf = vec![0u8; crate::pipeline::PIECE];
            let mut pos = 0u64;
            while pos < len {
                let k = (len - pos).min(crate::pipeline::PIECE as u64) as usize;
                crate::source::read_exact_at(file, start + pos, &mut buf[..k])
                    .map_err(|e| Error::io(path, e))?;
                sh.update(&buf[..k]);
                pos += k as u64;
            }
            Ok(h.tensors)
        }
        (Ok(h), Ok(())) => Ok(h.tensors),
    };
    out.written_back = written_back;
    r
}

/// What the reading half of [`stream_shard`] found.
struct Hashed {
    /// Each tensor's BLAKE3, when asked for.
    tensors: Vec<(usize, Option<[u8; 32]>)>,
    /// The shard hashes were taken over input bytes that differ from the
    /// output (non-zero gaps): hash the output again.
    rehash_output: bool,
}

/// Why the reading half stopped.
enum Stop {
    /// Reading tensor `ti` failed.
    Failed(usize, io::Error),
    /// Another error (a short source, a corrupt input).
    Other(Error),
    /// The writing thread failed.
    Cancelled,
}

impl From<crate::pipeline::Cancelled> for Stop {
    fn from(_: crate::pipeline::Cancelled) -> Stop {
        Stop::Cancelled
    }
}

/// The message for a file that is shorter than the range to read.
fn ended_early(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "input file ended early (was it truncated while being read?)",
        )
    } else {
        e
    }
}

/// The reading half of [`stream_shard`], tensor by tensor.
fn read_members(
    pipe: &crate::pipeline::Pipe<'_, '_>,
    start: u64,
    members: Vec<Member<'_>>,
    sh: &mut ShardHasher,
    tensor_hash: bool,
) -> std::result::Result<Hashed, Stop> {
    let mut hashes = Vec::with_capacity(members.len());
    let mut cursor = 0u64;
    for Member { ti, off, spec } in members {
        send_zeros(pipe, sh, start + cursor, off - cursor)?;
        cursor = off + spec.data_len;
        let mut th = tensor_hash.then(blake3::Hasher::new);
        let mut hash = |block: &[u8]| match th.as_mut() {
            Some(h) => {
                rayon::join(|| sh.update(block), || h.update(block));
            }
            None => sh.update(block),
        };
        let dst = start + off;
        match spec.bytes {
            TensorBytes::File(mut r) => {
                if let Some(c) = r.chunk.take() {
                    r.observers.push(c.verifier);
                }
                for o in &mut r.observers {
                    o.start().map_err(|e| Stop::Failed(ti, e))?;
                }
                let mut done = 0u64;
                while done < spec.data_len {
                    let mut buf = pipe.take()?;
                    let k = (spec.data_len - done).min(buf.len() as u64) as usize;
                    crate::source::read_exact_at(r.file, r.offset + done, &mut buf[..k])
                        .map_err(|e| Stop::Failed(ti, ended_early(e)))?;
                    hash(&buf[..k]);
                    for o in &mut r.observers {
                        o.bytes(&buf[..k]).map_err(|e| Stop::Failed(ti, e))?;
                    }
                    pipe.put(buf, k, dst + done)?;
                    done += k as u64;
                }
                for o in &mut r.observers {
                    o.end().map_err(|e| Stop::Failed(ti, e))?;
                }
            }
            TensorBytes::Reader(mut src) => {
                let mut done = 0u64;
                while done < spec.data_len {
                    let mut buf = pipe.take()?;
                    let want = (spec.data_len - done).min(buf.len() as u64) as usize;
                    let got =
                        read_full(&mut src, &mut buf[..want]).map_err(|e| Stop::Failed(ti, e))?;
                    if got == 0 {
                        return Err(Stop::Other(Error::Input {
                            path: None,
                            tensor: spec.name.clone(),
                            source: io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!("source ended after {done} of {} bytes", spec.data_len),
                            ),
                        }));
                    }
                    hash(&buf[..got]);
                    pipe.put(buf, got, dst + done)?;
                    done += got as u64;
                }
            }
        }
        hashes.push((ti, th.map(|h| *h.finalize().as_bytes())));
    }
    Ok(Hashed {
        tensors: hashes,
        rehash_output: false,
    })
}

/// Sends `n` zero bytes to be written at `dst`, hashing them.
fn send_zeros(
    pipe: &crate::pipeline::Pipe<'_, '_>,
    sh: &mut ShardHasher,
    mut dst: u64,
    mut n: u64,
) -> std::result::Result<(), Stop> {
    while n > 0 {
        let mut buf = pipe.take()?;
        let k = n.min(buf.len() as u64) as usize;
        buf[..k].fill(0);
        sh.update(&buf[..k]);
        pipe.put(buf, k, dst)?;
        dst += k as u64;
        n -= k as u64;
    }
    Ok(())
}

/// The input chunk this shard is a byte-for-byte copy of, if it is one (see
/// [`SourceChunk`]): every tensor read from the same file and chunk, at its
/// offset in the chunk, and the chunk as long as the shard.
fn verbatim_chunk<'m>(members: &'m [Member<'_>], len: u64) -> Option<&'m SourceChunk<'m>> {
    let first = members.first()?.spec.bytes.file_range()?;
    let c = first.chunk.as_ref()?;
    let same = members.iter().all(|m| {
        m.spec.bytes.file_range().is_some_and(|s| {
            std::ptr::eq(s.file, first.file)
                && s.chunk.as_ref().is_some_and(|k| {
                    (k.offset, k.length, k.blake3) == (c.offset, c.length, c.blake3)
                })
                && s.offset.checked_sub(c.offset) == Some(m.off)
        })
    });
    (same && c.length == len).then_some(c)
}

/// The reading half of [`stream_shard`] for a shard that copies an input
/// chunk verbatim: one pass over the chunk gives its verification digest,
/// the output shard and page hashes, and the tensor hashes. Gap bytes are
/// written as zeros; if an input gap byte is not zero, the output is hashed
/// again afterwards.
fn read_verbatim(
    pipe: &crate::pipeline::Pipe<'_, '_>,
    start: u64,
    mut members: Vec<Member<'_>>,
    sh: &mut ShardHasher,
    tensor_hash: bool,
) -> std::result::Result<Hashed, Stop> {
    let Some(first) = members.first().and_then(|m| m.spec.bytes.file_range()) else {
        return Err(Stop::Other(Error::Invalid("empty verbatim shard".into())));
    };
    let file = first.file;
    let Some(c) = first.chunk.as_ref() else {
        return Err(Stop::Other(Error::Invalid(
            "verbatim shard without a chunk".into(),
        )));
    };
    let (name, offset, length, want) = (c.name.clone(), c.offset, c.length, c.blake3);
    let first_ti = members[0].ti;
    let mut ths: Vec<Option<blake3::Hasher>> = members
        .iter()
        .map(|_| tensor_hash.then(blake3::Hasher::new))
        .collect();
    let mut observers: Vec<Vec<Box<dyn Observer + '_>>> = members
        .iter_mut()
        .map(|m| {
            m.spec
                .bytes
                .file_range_mut()
                .map(|s| std::mem::take(&mut s.observers))
                .unwrap_or_default()
        })
        .collect();
    let ranges: Vec<(u64, u64)> = members
        .iter()
        .map(|m| (m.off, m.off + m.spec.data_len))
        .collect();
    let tis: Vec<usize> = members.iter().map(|m| m.ti).collect();
    drop(members);
    for (i, obs) in observers.iter_mut().enumerate() {
        for o in obs.iter_mut() {
            o.start().map_err(|e| Stop::Failed(tis[i], e))?;
        }
    }
    let mut nonzero_gap = false;
    let mut mi = 0usize; // first member not yet passed
    let mut pos = 0u64; // chunk-relative offset of the next byte
    while pos < length {
        let mut buf = pipe.take()?;
        let k = (length - pos).min(buf.len() as u64) as usize;
        crate::source::read_exact_at(file, offset + pos, &mut buf[..k]).map_err(|e| {
            // Blame the tensor being read (or the one after a gap).
            let i = ranges.iter().position(|r| r.1 > pos).unwrap_or(0);
            let e = ended_early(e);
            let at = io::Error::new(
                e.kind(),
                format!("input {name} at offset {}: {e}", offset + pos),
            );
            Stop::Failed(tis.get(i).copied().unwrap_or(first_ti), at)
        })?;
        let end = pos + k as u64;
        let piece = &buf[..k];
        // Feeds the tensors' hashes and observers; notes gaps with non-zero
        // bytes, to be zeroed.
        let mut walk = || -> std::result::Result<Vec<(usize, usize)>, Stop> {
            let mut dirty = Vec::new();
            let mut p = pos;
            while p < end {
                while ranges.get(mi).is_some_and(|r| r.1 <= p) {
                    mi += 1;
                }
                let (seg_end, tensor) = match ranges.get(mi) {
                    Some(&(from, to)) if from <= p => (to.min(end), true),
                    Some(&(from, _)) => (from.min(end), false),
                    None => (end, false),
                };
                let (a, b) = ((p - pos) as usize, (seg_end - pos) as usize);
                let seg = &piece[a..b];
                if tensor {
                    if let Some(h) = ths[mi].as_mut() {
                        h.update(seg);
                    }
                    for o in observers[mi].iter_mut() {
                        o.bytes(seg).map_err(|e| Stop::Failed(tis[mi], e))?;
                    }
                } else if seg.iter().any(|&b| b != 0) {
                    dirty.push((a, b));
                }
                p = seg_end;
            }
            Ok(dirty)
        };
        // The shard (and page) hashes beside the tensors' own, if any.
        let walked = if tensor_hash {
            rayon::join(|| sh.update(piece), walk).1
        } else {
            sh.update(piece);
            walk()
        };
        for (a, b) in walked? {
            nonzero_gap = true;
            buf[a..b].fill(0);
        }
        pipe.put(buf, k, start + pos)?;
        pos = end;
    }
    if *sh.shard.finalize().as_bytes() != want {
        // The whole chunk failed: which tensor held the damage is for the
        // caller to find (`AeroFile::locate_damage`), not `first_ti`.
        return Err(Stop::Failed(
            first_ti,
            crate::error::ShardMismatch::io(&name),
        ));
    }
    for (i, obs) in observers.iter_mut().enumerate() {
        for o in obs.iter_mut() {
            o.end().map_err(|e| Stop::Failed(tis[i], e))?;
        }
    }
    Ok(Hashed {
        tensors: tis
            .into_iter()
            .zip(ths)
            .map(|(ti, h)| (ti, h.map(|h| *h.finalize().as_bytes())))
            .collect(),
        rehash_output: nonzero_gap,
    })
}

/// Reads until `buf` is full or the source ends; returns bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
