//! Reading tensors from an [`AeroFile`] under the trust rules: verified
//! reads (tensor, page or shard hashes, whichever the file records),
//! streamed verified reads, whole-file verification and damage location;
//! and the explicitly unverified reads. Opening the file and its metadata
//! are in the parent module.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use aero_format::FourCc;

use super::{AeroFile, Protection, Verified};
use crate::chunk::{Chunk, ChunkStatus};
use crate::error::{Error, Result};
use crate::index::TensorInfo;
use crate::integrity::PageHashes;
use crate::source::ByteSource;
use crate::view::TensorView;

/// [`Protection`] with the page hashes themselves.
pub(crate) enum Guard {
    TensorHash,
    Pages(Arc<PageHashes>),
    Shard,
    Unprotected,
    /// The caller asked for unverified bytes.
    Trusted,
}

/// The outcome of hashing a whole weight shard.
#[derive(Clone, Debug)]
pub(super) enum ShardCheck {
    Verified,
    Mismatch,
    Unreadable(String),
}

impl AeroFile {
    /// A tensor's bytes, zero-copy when mapped, **without verification**:
    /// for callers that check the bytes themselves or explicitly accept
    /// unverified data.
    pub fn tensor_unverified<'a>(&'a self, info: &'a TensorInfo) -> Result<TensorView<'a>> {
        let (off, _) = self.tensor_range(info)?;
        let len = self.tensor_len(info);
        let bytes = self
            .source
            .bytes(off, len)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(TensorView::new(info, bytes, None))
    }

    /// A streaming reader over a tensor's bytes, **without verification**
    /// (writers that verify while copying, such as [`crate::repack`], use it).
    pub fn tensor_reader_unverified<'a>(
        &'a self,
        info: &TensorInfo,
    ) -> Result<Box<dyn std::io::Read + Send + 'a>> {
        let (off, len) = self.tensor_range(info)?;
        crate::source::range_reader(self.source_ref(), off, len)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// A tensor by name, verified against the strongest hash the file
    /// records for its bytes ([`Protection`]): damaged bytes are never
    /// returned. Zero-copy when the file is mapped. The bytes are the
    /// tensor's own, [`AeroFile::tensor_len`] of them (a reference
    /// GGUF-origin tensor's alignment padding is left out); its shape as
    /// stored is in [`AeroFile::shape_order`].
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        self.view(self.tensor_info(name)?)
    }

    /// A tensor's index entry by name.
    pub fn tensor_info(&self, name: &str) -> Result<&TensorInfo> {
        let index = self.index()?;
        index.get(name).ok_or_else(|| Error::NoSuchTensor {
            path: self.path.clone(),
            name: name.into(),
            suggestions: crate::names::nearest(name, index.tensors().iter().map(|t| &*t.name)),
        })
    }

    /// The verified bytes of a tensor entry (see [`AeroFile::tensor`]).
    pub fn view<'a>(&'a self, info: &'a TensorInfo) -> Result<TensorView<'a>> {
        let (bytes, range) = self.verified(info)?;
        Ok(TensorView::new(info, bytes, range))
    }

    /// The verified bytes of a tensor entry, checked as [`AeroFile::view`]
    /// checks them, without the view around them: they borrow the file only
    /// (zero-copy when it is mapped), not `info`, which may be a temporary
    /// (an AEROSET part's entry carrying the index's `hash_b3`).
    pub fn verified_bytes<'a>(&'a self, info: &TensorInfo) -> Result<Cow<'a, [u8]>> {
        let (bytes, range) = self.verified(info)?;
        Ok(match range {
            Some(r) => sub_range(bytes, r),
            None => bytes,
        })
    }

    /// Reads and checks a tensor's bytes; the range, when given, is the
    /// tensor's part of them (pages around it, or its padding, were read
    /// too). The bytes are the tensor's own ([`AeroFile::tensor_len`]).
    fn verified<'a>(&'a self, info: &TensorInfo) -> Result<Verified<'a>> {
        let (off, len) = self.tensor_range(info)?;
        let used = self.tensor_len(info);
        let shard = self.shard(info.shard_id)?;
        let unverified = |len| {
            self.source
                .bytes(off, len)
                .map_err(|e| Error::io(&self.path, e))
        };
        if self.shard_known_good(shard) {
            // The whole shard matched its hash (see `verify_all`).
            return Ok((unverified(used)?, None));
        }
        match self.guard(info) {
            Guard::TensorHash => {
                // hash_b3 covers every stored byte, padding included.
                let want = info.hash_b3.unwrap_or_default();
                let (bytes, ok) = self.retrying(off, len, || {
                    let v = unverified(len)?;
                    let ok = *crate::verify::hash(&v).as_bytes() == want;
                    Ok((v, ok))
                })?;
                if ok {
                    let range = (used < len).then_some(0..used as usize);
                    Ok((bytes, range))
                } else {
                    Err(self.corrupt(info, shard, off, "hash_b3".into()))
                }
            }
            Guard::Pages(ph) => {
                let (bytes, range) = self.pages_read(info, shard, &ph, info.data_off, used)?;
                Ok((bytes, Some(range)))
            }
            Guard::Shard => {
                if self.source.stable() {
                    self.verify_shard(shard, info)?;
                    Ok((unverified(used)?, None))
                } else {
                    let bytes = self.shard_pass(shard, info, Some((info.data_off, used)))?;
                    Ok((Cow::Owned(bytes), None))
                }
            }
            Guard::Unprotected | Guard::Trusted => Err(Error::Unverifiable {
                path: self.path.clone(),
                tensor: info.name.clone(),
                shard: shard.name.clone(),
            }),
        }
    }

    /// The verified bytes of several tensors, handed to `each(i, bytes)`
    /// (`i` indexes `infos`) as each is complete: what a loader that wants
    /// many tensors calls. Each tensor is checked as [`AeroFile::view`]
    /// checks it. On a local file this is [`AeroFile::verified_bytes`] per
    /// tensor. On a remote file the tensors that record their own `hash_b3`
    /// are streamed together ([`crate::ByteSource::stream`]: several range
    /// requests in flight, neighbouring tensors sharing requests), each
    /// hashed as its bytes arrive and handed over when its last byte has
    /// matched; the others (checked by pages or their shard) follow one by
    /// one. A tensor whose streamed bytes fail their hash is read once more
    /// through [`AeroFile::verified_bytes`] (which drops cached copies); an
    /// error from `each` stops the reads and is returned.
    pub fn verified_tensors<'a>(
        &'a self,
        infos: &[&TensorInfo],
        each: &mut dyn FnMut(usize, Cow<'a, [u8]>) -> Result<()>,
    ) -> Result<()> {
        let mut streamed: Vec<(usize, u64, u64, [u8; 32])> = Vec::new();
        let mut others: Vec<usize> = Vec::new();
        for (i, info) in infos.iter().enumerate() {
            let (off, len) = self.tensor_range(info)?;
            match info.hash_b3 {
                Some(h) if !self.source.stable() && len > 0 => streamed.push((i, off, len, h)),
                _ => others.push(i),
            }
        }
        streamed.sort_by_key(|t| t.1);
        // Two entries over one range (or overlapping ones) are read alone.
        let mut last_end = 0u64;
        streamed.retain(|&(i, off, len, _)| {
            if off < last_end {
                others.push(i);
                return false;
            }
            last_end = off + len;
            true
        });
        if !streamed.is_empty() {
            let ranges: Vec<(u64, u64)> = streamed.iter().map(|t| (t.1, t.2)).collect();
            let mut k = 0usize;
            let mut buf: Vec<u8> = Vec::new();
            let mut hasher = blake3::Hasher::new();
            let mut failed: Option<Error> = None;
            let mut retry: Vec<usize> = Vec::new();
            let streamed_ok = self.source.stream(&ranges, &mut |at, bytes| {
                while let Some(&(_, off, len, _)) = streamed.get(k)
                    && at >= off + len
                {
                    k += 1;
                }
                let Some(&(i, off, len, want)) = streamed.get(k) else {
                    return Ok(());
                };
                if buf.is_empty() {
                    buf.reserve_exact(len as usize);
                }
                buf.extend_from_slice(bytes);
                hasher.update(bytes);
                if at + bytes.len() as u64 == off + len {
                    let ok = *hasher.finalize().as_bytes() == want;
                    hasher = blake3::Hasher::new();
                    let bytes = std::mem::take(&mut buf);
                    if ok {
                        if let Err(e) = each(i, Cow::Owned(bytes)) {
                            failed = Some(e);
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::Interrupted,
                                "stopped by the consumer",
                            ));
                        }
                    } else {
                        retry.push(i);
                    }
                    k += 1;
                }
                Ok(())
            });
            if let Some(e) = failed {
                return Err(e);
            }
            streamed_ok.map_err(|e| Error::io(&self.path, e))?;
            for i in retry {
                let (off, len) = self.tensor_range(infos[i])?;
                self.invalidate(off, len);
                each(i, self.verified_bytes(infos[i])?)?;
            }
        }
        for i in others {
            each(i, self.verified_bytes(infos[i])?)?;
        }
        Ok(())
    }

    /// Verified bytes of part of a tensor: `len` bytes starting `start`
    /// bytes into it (a few rows, say). They are checked against the PHSH
    /// pages that cover them when the shard has page hashes, so the read
    /// costs those pages (at most one page more than asked on each side),
    /// not the tensor; without page hashes the whole tensor is read and
    /// checked as [`AeroFile::view`] does (its `hash_b3`, else the shard
    /// hash). A shard already proven by [`AeroFile::verify_all`] is not
    /// hashed again. Zero-copy when the file is mapped.
    ///
    /// ```no_run
    /// let f = aero_io::AeroFile::open("model.aero")?;
    /// let info = f.tensor_info("embed.weight")?;
    /// let row_bytes = info.data_len / info.shape[0];
    /// let rows_10_to_12 = f.tensor_part(info, 10 * row_bytes, 2 * row_bytes)?;
    /// # Ok::<(), aero_io::Error>(())
    /// ```
    pub fn tensor_part<'a>(
        &'a self,
        info: &TensorInfo,
        start: u64,
        len: u64,
    ) -> Result<Cow<'a, [u8]>> {
        let own = self.tensor_len(info);
        let end = start
            .checked_add(len)
            .filter(|&e| e <= own)
            .ok_or_else(|| Error::Tensor {
                path: self.path.clone(),
                name: info.name.clone(),
                reason: format!(
                    "bytes {start}..{start}+{len} lie outside the tensor's {own} bytes"
                ),
            })?;
        if start == 0 && len == own {
            return self.verified_bytes(info);
        }
        let (off, _) = self.tensor_range(info)?;
        let shard = self.shard(info.shard_id)?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        if self.shard_known_good(shard) {
            return self
                .source
                .bytes(off + start, len)
                .map_err(|e| Error::io(&self.path, e));
        }
        if let Some(ph) = self.page_hashes(shard) {
            let (bytes, range) = self.pages_read(info, shard, &ph, info.data_off + start, len)?;
            return Ok(sub_range(bytes, range));
        }
        let whole = self.verified_bytes(info)?;
        Ok(sub_range(whole, start as usize..end as usize))
    }

    /// Hashes every weight shard once, on every core, and remembers the
    /// outcome: afterwards every verified read of a local file hands out
    /// bytes without hashing them again. This is what a loader that reads
    /// every tensor should call first — one pass over the weights (one hash
    /// per byte) instead of one hash per tensor plus page overlaps. Fails on
    /// the first shard that does not match; a shard whose TOC hash is not
    /// recorded is skipped (its tensors are still checked by their own
    /// hashes when read). On a remote source nothing is remembered.
    pub fn verify_all(&self) -> Result<()> {
        for c in self.chunks.iter().filter(|c| c.fourcc == FourCc::WTSH) {
            if !c.hash_recorded() {
                continue; // its tensors fall back to their own hashes
            }
            let check = match self.shard_checks.get(c.index as usize) {
                Some(cell) if self.source.stable() => {
                    cell.get_or_init(|| self.hash_shard(c)).clone()
                }
                _ => self.hash_shard(c),
            };
            match check {
                ShardCheck::Verified => {}
                ShardCheck::Mismatch => {
                    // Name the damaged tensor when a finer hash tells it.
                    return Err(self
                        .locate_damage(c)
                        .unwrap_or_else(|| Error::HashMismatch {
                            path: self.path.clone(),
                            index: c.index,
                            fourcc: c.fourcc,
                            name: c.name.clone(),
                        }));
                }
                ShardCheck::Unreadable(reason) => {
                    return Err(Error::Chunk {
                        path: self.path.clone(),
                        index: c.index,
                        fourcc: c.fourcc,
                        name: c.name.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    /// After weight shard `shard` failed its TOC hash: which tensor holds
    /// the damaged bytes, as the finer hashes the file records tell it —
    /// the first tensor of the shard (in offset order) whose bytes fail
    /// their own `hash_b3`, or a PHSH page that lies wholly inside them, as
    /// [`Error::Corrupt`] (file, tensor, shard, absolute offset of the range
    /// that failed, the check). `None` when no finer hash places the
    /// damage in one tensor: it lies in bytes only the shard hash covers (a
    /// tensor without `hash_b3` or pages, the padding between tensors), or
    /// in a page that several tensors share.
    ///
    /// Whole-shard checks (a verbatim repack, an export reading the whole
    /// shard, [`AeroFile::verify_all`]) learn of damage only at the shard's
    /// last byte and cannot tell which tensor it was in; they call this on
    /// their failure path. It reads the shard's tensors once more.
    pub fn locate_damage(&self, shard: &Chunk) -> Option<Error> {
        let idx = self.index().ok()?;
        let mut here: Vec<&TensorInfo> = idx
            .tensors()
            .iter()
            .filter(|t| self.shard(t.shard_id).is_ok_and(|c| c.index == shard.index))
            .collect();
        here.sort_by_key(|t| t.data_off);
        for t in here {
            let Ok((off, len)) = self.tensor_range(t) else {
                continue;
            };
            match self.guard(t) {
                Guard::TensorHash => {
                    let h = crate::verify::hash_range(self.source_ref(), off, len, |_| {});
                    if h.is_ok_and(|h| Some(*h.as_bytes()) != t.hash_b3) {
                        return Some(self.corrupt(t, shard, off, "hash_b3".into()));
                    }
                }
                Guard::Pages(ph) => {
                    // A failing page names this tensor only when it holds
                    // nothing else: a page shared with another tensor (or
                    // with padding) cannot say whose bytes changed.
                    if let Err(e @ Error::Corrupt { offset, .. }) =
                        self.pages_read(t, shard, &ph, t.data_off, t.data_len)
                    {
                        let page_end = offset
                            .saturating_add(ph.page_size)
                            .min(shard.offset.saturating_add(shard.length));
                        if offset >= off && page_end <= off.saturating_add(len) {
                            return Some(e);
                        }
                    }
                }
                Guard::Shard | Guard::Unprotected | Guard::Trusted => {}
            }
        }
        None
    }

    /// What a verified read of `info` checks its bytes against.
    pub fn protection(&self, info: &TensorInfo) -> Protection {
        match self.guard(info) {
            Guard::TensorHash => Protection::TensorHash,
            Guard::Pages(ph) => Protection::Pages {
                page_size: ph.page_size,
            },
            Guard::Shard => Protection::Shard,
            Guard::Unprotected | Guard::Trusted => Protection::Unprotected,
        }
    }

    pub(crate) fn guard(&self, info: &TensorInfo) -> Guard {
        if info.hash_b3.is_some() {
            return Guard::TensorHash;
        }
        let Ok(shard) = self.shard(info.shard_id) else {
            return Guard::Unprotected;
        };
        if let Some(ph) = self.page_hashes(shard) {
            return Guard::Pages(ph);
        }
        if shard.hash_recorded() {
            Guard::Shard
        } else {
            Guard::Unprotected
        }
    }

    /// The page hashes covering a weight shard, when the file has a usable
    /// PHSH for it: the chunk verifies against its TOC hash, decodes, names
    /// this shard and holds one digest per page. Decoded once.
    pub fn page_hashes(&self, shard: &Chunk) -> Option<Arc<PageHashes>> {
        let &i = self.page_chunks.get(&shard.name)?;
        self.pages
            .get(i)?
            .get_or_init(|| {
                let c = self.chunks.get(i)?;
                let (payload, status) = self.read_verified(c).ok()?;
                if status != ChunkStatus::Verified {
                    return None;
                }
                let ph = crate::integrity::decode_phsh(&payload).ok()?;
                let want = crate::integrity::page_count(shard.length, ph.page_size);
                let count_ok =
                    ph.digests.len() as u64 == want || (shard.length == 0 && ph.digests.len() == 1);
                (ph.shard_name == shard.name && count_ok).then(|| Arc::new(ph))
            })
            .clone()
    }

    fn corrupt(&self, info: &TensorInfo, shard: &Chunk, offset: u64, check: String) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            tensor: info.name.clone(),
            shard: shard.name.clone(),
            offset,
            check,
        }
    }

    /// Runs a read-and-check `attempt` (returning the value and whether it
    /// verified); when it fails to verify and the source holds a cached copy
    /// of `off..off+len`, drops the copy and tries once more. Returns the
    /// last attempt's value and verdict.
    fn retrying<T>(
        &self,
        off: u64,
        len: u64,
        mut attempt: impl FnMut() -> Result<(T, bool)>,
    ) -> Result<(T, bool)> {
        let first = attempt()?;
        if !first.1 && self.invalidate(off, len) {
            return attempt();
        }
        Ok(first)
    }

    /// Drops cached copies of `off..off+len`: the range as one read, and as
    /// the [`crate::verify::WINDOW`]-sized reads a windowed pass makes.
    pub(crate) fn invalidate(&self, off: u64, len: u64) -> bool {
        let mut any = self.drop_cached(off, len);
        let w = crate::verify::WINDOW;
        let mut at = 0u64;
        while len > w && at < len {
            let n = (len - at).min(w);
            any |= self.drop_cached(off + at, n);
            at += n;
        }
        any
    }

    /// Reads the pages covering `len` bytes at shard offset `a` (part of
    /// `info`), checks each against the PHSH, and returns the pages' bytes
    /// with the range of them that was asked for.
    fn pages_read<'a>(
        &'a self,
        info: &TensorInfo,
        shard: &Chunk,
        ph: &PageHashes,
        a: u64,
        len: u64,
    ) -> Result<(Cow<'a, [u8]>, std::ops::Range<usize>)> {
        use rayon::prelude::*;
        let Some((start, end)) = crate::integrity::page_span(ph.page_size, a, len, shard.length)
        else {
            return Ok((Cow::Borrowed(&[]), 0..0));
        };
        let first = start / ph.page_size;
        let step = usize::try_from(ph.page_size).unwrap_or(usize::MAX);
        let abs = shard.offset + start;
        let ((bytes, bad), _) = self.retrying(abs, end - start, || {
            let bytes = self
                .source
                .bytes(abs, end - start)
                .map_err(|e| Error::io(&self.path, e))?;
            let bad = bytes
                .par_chunks(step.max(1))
                .enumerate()
                .find_first(|(i, page)| {
                    ph.digests.get(first as usize + i) != Some(crate::verify::hash(page).as_bytes())
                })
                .map(|(i, _)| i as u64);
            Ok(((bytes, bad), bad.is_none()))
        })?;
        match bad {
            None => {
                let from = (a - start) as usize;
                Ok((bytes, from..from + len as usize))
            }
            Some(i) => Err(self.corrupt(
                info,
                shard,
                abs + i * ph.page_size,
                format!("PHSH page {}", first + i),
            )),
        }
    }

    /// Hashes a whole weight shard once (kept for the life of this file: a
    /// stable source does not change while open) and fails for `info` when
    /// it does not match the TOC.
    pub(crate) fn verify_shard(&self, shard: &Chunk, info: &TensorInfo) -> Result<()> {
        let check = match self.shard_checks.get(shard.index as usize) {
            Some(cell) => cell.get_or_init(|| self.hash_shard(shard)).clone(),
            None => self.hash_shard(shard),
        };
        match check {
            ShardCheck::Verified => Ok(()),
            ShardCheck::Mismatch => Err(self.corrupt(
                info,
                shard,
                shard.offset,
                format!("the {} BLAKE3", shard.name),
            )),
            ShardCheck::Unreadable(e) => Err(Error::Chunk {
                path: self.path.clone(),
                index: shard.index,
                fourcc: shard.fourcc,
                name: shard.name.clone(),
                reason: e,
            }),
        }
    }

    /// Whether a shard has been hashed whole and matched its TOC hash.
    pub(crate) fn shard_known_good(&self, shard: &Chunk) -> bool {
        self.source.stable()
            && self
                .shard_checks
                .get(shard.index as usize)
                .and_then(OnceLock::get)
                .is_some_and(|c| matches!(c, ShardCheck::Verified))
    }

    fn hash_shard(&self, shard: &Chunk) -> ShardCheck {
        if let Some(problem) = shard.weight_shard_problem() {
            return ShardCheck::Unreadable(problem);
        }
        let attempt = || match crate::verify::hash_range(
            self.source_ref(),
            shard.offset,
            shard.length,
            |_| {},
        ) {
            Ok(h) => Ok(((), *h.as_bytes() == shard.blake3)),
            Err(e) => Err(Error::io(&self.path, e)),
        };
        match self.retrying(shard.offset, shard.length, attempt) {
            Ok(((), true)) => ShardCheck::Verified,
            Ok(((), false)) => ShardCheck::Mismatch,
            Err(e) => ShardCheck::Unreadable(e.to_string()),
        }
    }

    /// One pass over a whole shard that checks its BLAKE3 and keeps the bytes
    /// of `keep` (shard-relative offset, length): how an unstable (remote)
    /// source serves a tensor protected only by its shard hash.
    fn shard_pass(
        &self,
        shard: &Chunk,
        info: &TensorInfo,
        keep: Option<(u64, u64)>,
    ) -> Result<Vec<u8>> {
        if !shard.hash_recorded() {
            return Err(Error::Unverifiable {
                path: self.path.clone(),
                tensor: info.name.clone(),
                shard: shard.name.clone(),
            });
        }
        let attempt = || {
            let (ka, kl) = keep.unwrap_or((0, 0));
            let mut out = Vec::with_capacity(usize::try_from(kl).unwrap_or(0).min(1 << 30));
            let mut h = blake3::Hasher::new();
            let mut pos = 0u64;
            crate::verify::for_each_window(
                self.source_ref(),
                shard.offset,
                shard.length,
                |w| {
                    h.update(w);
                    let (s, e) = (pos, pos + w.len() as u64);
                    let (from, to) = (ka.max(s), (ka + kl).min(e));
                    if from < to {
                        out.extend_from_slice(&w[(from - s) as usize..(to - s) as usize]);
                    }
                    pos = e;
                },
                |_| {},
            )
            .map_err(|e| Error::io(&self.path, e))?;
            Ok((out, *h.finalize().as_bytes() == shard.blake3))
        };
        match self.retrying(shard.offset, shard.length, attempt)? {
            (out, true) => Ok(out),
            (_, false) => Err(self.corrupt(
                info,
                shard,
                shard.offset,
                format!("the {} BLAKE3", shard.name),
            )),
        }
    }
}

/// `range` of `bytes`, without copying when borrowed or when it is the whole
/// buffer.
fn sub_range(bytes: Cow<'_, [u8]>, range: std::ops::Range<usize>) -> Cow<'_, [u8]> {
    match bytes {
        Cow::Borrowed(b) => Cow::Borrowed(b.get(range).unwrap_or_default()),
        Cow::Owned(v) if range == (0..v.len()) => Cow::Owned(v),
        Cow::Owned(v) => Cow::Owned(v.get(range).unwrap_or_default().to_vec()),
    }
}
