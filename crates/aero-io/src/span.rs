//! Whole loads of a remote file: every wanted tensor read into one region
//! with one parallel ranged read, then verified.

use std::ops::Range;

use rayon::prelude::*;

use crate::file::{AeroFile, Guard};
use crate::{Error, Result, TensorInfo};

/// The verified bytes of several tensors of one file, in one anonymous
/// memory region that holds the span of the file they lie in (see
/// [`AeroFile::verified_span`]). Read-only once built; cheap to share
/// (`Arc`) between the arrays made over it.
#[derive(Debug)]
pub struct TensorSpan {
    map: memmap2::MmapMut,
    /// Per tensor (in the order asked for): its own bytes in `map`.
    slots: Vec<Range<usize>>,
}

impl TensorSpan {
    /// Tensor `i`'s verified bytes (its own bytes,
    /// [`AeroFile::tensor_len`]; padding the file stores after it is left
    /// out). Empty when `i` is out of range.
    pub fn bytes(&self, i: usize) -> &[u8] {
        self.slots
            .get(i)
            .and_then(|r| self.map.get(r.clone()))
            .unwrap_or(&[])
    }

    /// How many tensors the span holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The bytes of the region (the file's span, gaps included).
    pub fn region_len(&self) -> usize {
        self.map.len()
    }
}

impl AeroFile {
    /// The bytes from the first to the last byte of the tensors `infos`
    /// (absolute offset, length), and how many of them the tensors
    /// themselves hold: a whole load reads the span at once when the
    /// tensors fill most of it ([`AeroFile::verified_span`]).
    pub fn span_of(&self, infos: &[&TensorInfo]) -> Result<(u64, u64, u64)> {
        let mut start = u64::MAX;
        let mut end = 0u64;
        let mut used = 0u64;
        for info in infos {
            let (off, len) = self.tensor_range(info)?;
            start = start.min(off);
            end = end.max(off + len);
            used = used.saturating_add(len);
        }
        if start > end {
            return Ok((0, 0, 0));
        }
        Ok((start, end - start, used))
    }

    /// The verified bytes of the tensors `infos`, read with one ranged read
    /// of the span that holds them ([`AeroFile::span_of`]) into one
    /// anonymous region: on a remote file the read is cut into pieces
    /// fetched on several connections at once (the range engine), each
    /// landing in place, so nothing is copied and requests are as large as
    /// the engine makes them, however small the tensors. This is what a
    /// whole load (`load_file(URL)`) calls, once per file; a few tensors of
    /// a large file are better read one by one
    /// ([`AeroFile::verified_tensors`]), as the gaps between them are read
    /// too.
    ///
    /// Every tensor is checked before the span is returned: against its own
    /// `hash_b3` (hashed on every core), as [`AeroFile::view`] checks it.
    /// One that fails is read once more through
    /// [`AeroFile::verified_bytes`] (which drops cached copies and refetches;
    /// [`Error::Corrupt`] when it fails again); tensors checked by pages or
    /// by their shard are read that way too and copied in. No byte of the
    /// span is reachable before it passed.
    pub fn verified_span(&self, infos: &[&TensorInfo]) -> Result<TensorSpan> {
        let (start, span, _) = self.span_of(infos)?;
        let size = usize::try_from(span).map_err(|_| Error::Tensor {
            path: self.path().to_path_buf(),
            name: infos.first().map(|i| i.name.clone()).unwrap_or_default(),
            reason: format!("a span of {span} bytes does not fit in memory"),
        })?;
        let mut map = crate::mmap::anon(size).map_err(|e| Error::io(self.path(), e))?;
        if size > 0 {
            self.source()
                .read_exact_at(start, &mut map)
                .map_err(|e| Error::io(self.path(), e))?;
        }
        // Each tensor's stored range and own bytes within the region.
        let mut slots = Vec::with_capacity(infos.len());
        let mut stored = Vec::with_capacity(infos.len());
        for info in infos {
            let (off, len) = self.tensor_range(info)?;
            let at = (off - start) as usize;
            let own = self.tensor_len(info).min(len) as usize;
            stored.push(at..at + len as usize);
            slots.push(at..at + own);
        }
        // Which tensors pass by their own hash; the others are read again,
        // verified, and copied in.
        let region: &[u8] = &map;
        let ok: Vec<bool> = infos
            .par_iter()
            .zip(stored.par_iter())
            .map(|(info, r)| match (self.guard(info), info.hash_b3) {
                (Guard::TensorHash, Some(want)) => region
                    .get(r.clone())
                    .is_some_and(|b| *crate::verify::hash(b).as_bytes() == want),
                _ => false,
            })
            .collect();
        for (i, info) in infos.iter().enumerate() {
            if ok[i] {
                continue;
            }
            if matches!(self.guard(info), Guard::TensorHash) {
                // A byte went wrong on the way (or in the cache): drop what
                // was cached and read it once more, verified.
                let (off, len) = self.tensor_range(info)?;
                self.invalidate(off, len);
            }
            let bytes = self.verified_bytes(info)?;
            let slot = slots[i].clone();
            match map.get_mut(slot.start..slot.start + bytes.len()) {
                Some(dst) if bytes.len() == slot.len() => dst.copy_from_slice(&bytes),
                _ => {
                    return Err(Error::Tensor {
                        path: self.path().to_path_buf(),
                        name: info.name.clone(),
                        reason: format!(
                            "verified read gave {} bytes where {} were expected",
                            bytes.len(),
                            slot.len()
                        ),
                    });
                }
            }
        }
        Ok(TensorSpan { map, slots })
    }
}

/// A private, copy-on-write mapping of a whole local AERO file
/// ([`AeroFile::private_map`]), with the weight shards whose bytes were
/// verified in it.
#[derive(Debug)]
pub struct PrivateMap {
    map: memmap2::MmapMut,
    verified: Vec<u64>,
}

impl PrivateMap {
    /// The file's bytes, as mapped.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Whether weight shard `shard_id`'s bytes were hashed in this mapping
    /// and matched the TOC hash.
    pub fn verified(&self, shard_id: u64) -> bool {
        self.verified.contains(&shard_id)
    }
}

impl AeroFile {
    /// Maps this local file privately (copy-on-write: memory made from it
    /// may be written, the file never is) and, when `verify`, hashes every
    /// weight shard whose TOC hash is recorded **in that mapping**, on
    /// every core: the bytes checked are the very pages handed out, and
    /// reading them there faults them in once, for the hash and for
    /// whoever copies them next (`load_state_dict`). A shard that does not
    /// match is an error naming the damaged tensor when a finer hash tells
    /// it ([`AeroFile::locate_damage`]); tensors of a shard without a
    /// recorded hash are not covered ([`PrivateMap::verified`] is false for
    /// it; read them through [`AeroFile::verified_bytes`]). `None` for a
    /// file that is not local, or when it cannot be mapped.
    pub fn private_map(&self, verify: bool) -> Result<Option<PrivateMap>> {
        let Some(file) = self.local_file() else {
            return Ok(None);
        };
        let Ok(map) = crate::mmap::map_private(file) else {
            return Ok(None);
        };
        if map.len() as u64 != self.len() {
            return Ok(None);
        }
        let mut verified = Vec::new();
        if verify {
            for (&id, c) in self.weight_shards() {
                if !c.hash_recorded() || c.weight_shard_problem().is_some() {
                    continue;
                }
                let bytes = usize::try_from(c.offset)
                    .ok()
                    .zip(usize::try_from(c.length).ok())
                    .and_then(|(o, n)| map.get(o..o.checked_add(n)?));
                let Some(bytes) = bytes else { continue };
                if *crate::verify::hash(bytes).as_bytes() != c.blake3 {
                    return Err(self
                        .locate_damage(c)
                        .unwrap_or_else(|| Error::HashMismatch {
                            path: self.path().to_path_buf(),
                            index: c.index,
                            fourcc: c.fourcc,
                            name: c.name.clone(),
                        }));
                }
                verified.push(id);
            }
        }
        Ok(Some(PrivateMap { map, verified }))
    }
}
