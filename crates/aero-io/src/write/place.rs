//! The placement step of [`super::write_to`]: where every chunk goes (the
//! shard plan, the TOC-order chunk list, the prologue's size) and the TOC
//! entries filled in as payloads are written at their offsets.

use std::io;

use aero_format::encode::string_table;
use aero_format::layout::{Prologue, align_up};
use aero_format::{ChunkFlags, TocEntry};

use super::metadata::Payload;
use super::options::WriteOptions;
use super::out::Out;
use super::plan::{Planned, ShardPlan, plan_chunks};
use super::spec::TensorSpec;
use crate::error::{Error, Result};

/// Alignment of every payload but the weight shards (spec §4).
const PAYLOAD_ALIGN: u64 = 16;

/// Where everything goes, decided before a byte is written.
pub(super) struct FilePlan {
    /// Tensors to shards and offsets.
    pub(super) shards: ShardPlan,
    /// Shards holding a tensor the output must not vouch for: their TOC
    /// hash is left zero and they get no page hashes.
    pub(super) unvouched: Vec<bool>,
    /// The chunks in TOC order.
    pub(super) chunks: Planned,
    /// Sizes and offsets of header, TOC and string table.
    pub(super) prologue: Prologue,
    /// The string table and each chunk's `(name_off, name_len)` in it.
    pub(super) strtab: Vec<u8>,
    name_refs: Vec<(u32, u32)>,
}

impl FilePlan {
    pub(super) fn new(specs: &[TensorSpec<'_>], opts: &WriteOptions) -> Result<FilePlan> {
        let shards = ShardPlan::new(
            specs.iter().map(|t| t.data_len),
            opts.max_shard_bytes,
            opts.layout,
        )?;
        let mut unvouched = vec![false; shards.shard_len.len()];
        if !opts.unverified.is_empty() {
            for (t, &(s, _)) in specs.iter().zip(&shards.placement) {
                if opts.unverified.contains(&t.name) {
                    unvouched[s] = true;
                }
            }
        }
        let page_lens: Vec<u64> = shards
            .shard_len
            .iter()
            .zip(&unvouched)
            .map(|(&l, &u)| if u { 0 } else { l })
            .collect();
        let chunks = plan_chunks(opts, &page_lens);
        let (strtab, name_refs) = string_table(chunks.names.iter().map(String::as_str));
        let names_len: u64 = chunks.names.iter().map(|s| s.len() as u64 + 1).sum();
        let prologue =
            Prologue::new(chunks.fourcc.len() as u64, names_len).ok_or(Error::LimitExceeded {
                what: "the chunk count",
            })?;
        Ok(FilePlan {
            shards,
            unvouched,
            chunks,
            prologue,
            strtab,
            name_refs,
        })
    }

    /// The TOC entries, named and flagged, with nothing placed yet.
    pub(super) fn toc(&self) -> Toc {
        let c = &self.chunks;
        Toc {
            entries: (0..c.fourcc.len())
                .map(|i| TocEntry {
                    fourcc: c.fourcc[i],
                    flags: ChunkFlags(c.flags[i]),
                    chunk_offset: 0,
                    chunk_length: 0,
                    chunk_ulen: 0,
                    name_off: self.name_refs[i].0,
                    name_len: self.name_refs[i].1,
                    reserved0: 0,
                    blake3: [0; 32],
                })
                .collect(),
        }
    }
}

/// The TOC entries, filled in as payloads are placed.
pub(super) struct Toc {
    pub(super) entries: Vec<TocEntry>,
}

impl Toc {
    /// Writes `p` as chunk `i` at the next 16-byte boundary of `out`.
    pub(super) fn place(&mut self, out: &mut Out<'_>, i: usize, p: &Payload) -> Result<()> {
        let path = out.path;
        let io = |e| Error::io(path, e);
        let at = self.align(out, PAYLOAD_ALIGN).map_err(io)?;
        out.write(&p.stored).map_err(io)?;
        self.set(i, at, p.stored.len() as u64, p.ulen, p.hash);
        Ok(())
    }

    /// Pads `out` to the next multiple of `align` and returns that offset.
    pub(super) fn align(&self, out: &mut Out<'_>, align: u64) -> io::Result<u64> {
        let at = align_up(out.pos, align).unwrap_or(out.pos);
        out.pad_to(at)?;
        Ok(at)
    }

    /// Records where chunk `i` was written and what it holds.
    pub(super) fn set(&mut self, i: usize, offset: u64, length: u64, ulen: u64, hash: [u8; 32]) {
        let e = &mut self.entries[i];
        e.chunk_offset = offset;
        e.chunk_length = length;
        e.chunk_ulen = ulen;
        e.blake3 = hash;
    }

    /// Writes attached file `a` (raw, never compressed) as chunk `i`.
    pub(super) fn place_attached(
        &mut self,
        out: &mut Out<'_>,
        i: usize,
        a: &crate::attached::AttachedFile,
    ) -> Result<()> {
        let at = self
            .align(out, PAYLOAD_ALIGN)
            .map_err(|e| Error::io(out.path, e))?;
        let (len, hash) = write_attached(out, a)?;
        self.set(i, at, len, len, hash);
        Ok(())
    }
}

/// Streams one attached file into `out` (raw, never compressed), hashing
/// it on the way; returns its length and BLAKE3. A file on disk must still
/// have the length it was listed with.
fn write_attached(out: &mut Out<'_>, a: &crate::attached::AttachedFile) -> Result<(u64, [u8; 32])> {
    use crate::attached::AttachedData;
    use std::fs::File;
    use std::io::Read;
    let opath = out.path;
    let io = |e| Error::io(opath, e);
    let mut h = blake3::Hasher::new();
    match &a.data {
        AttachedData::Bytes(b) => {
            h.update(b);
            out.write(b).map_err(io)?;
            Ok((b.len() as u64, *h.finalize().as_bytes()))
        }
        AttachedData::Path { path, len } => {
            let src = |e| Error::io(path, e);
            let mut f = File::open(path).map_err(src)?;
            let mut buf = vec![0u8; 256 << 10];
            let mut n = 0u64;
            loop {
                let k = f.read(&mut buf).map_err(src)?;
                if k == 0 {
                    break;
                }
                n += k as u64;
                if n > *len {
                    break;
                }
                h.update(&buf[..k]);
                out.write(&buf[..k]).map_err(io)?;
            }
            if n != *len {
                return Err(Error::BadAttachedFile {
                    name: a.name.clone(),
                    reason: format!(
                        "{} changed while it was read (listed with {len} bytes)",
                        path.display()
                    ),
                });
            }
            Ok((n, *h.finalize().as_bytes()))
        }
    }
}
