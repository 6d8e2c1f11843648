//! The streaming model writer (spec §4–§11).
//!
//! Tensor bytes pass through exactly once, in fixed-size buffers, while the
//! shard, tensor (`hash_b3`) and page (PHSH) hashes are computed on the way.
//! Memory does not grow with tensor or model size.
//!
//! File order vs TOC order: the TOC is always in the standard order
//! (\[IHSH\], MJSN, MMSG, TIDX, then WTSH \[+ PHSH\] per shard). When per-tensor
//! hashes are requested the TIDX payload is only known after the weights have
//! streamed, so it is placed *after* the shards in the file (readers follow
//! offsets, spec §1). Without tensor hashes, `Layout::Reference` produces
//! exactly the bytes the reference streaming writer produces.

mod options;
mod plan;
pub mod raw;
mod shard;
mod spec;

pub use options::{
    DEFAULT_MAX_SHARD_BYTES, DEFAULT_PAGE_HASH_SIZE, Layout, WriteOptions, random_uuid,
};
pub use plan::ShardPlan;
pub use spec::{FileRange, Observer, SourceChunk, TensorBytes, TensorSpec, check_specs};

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use aero_format::layout::{Prologue, align_up};
use aero_format::{ChunkFlags, TocEntry};

use crate::encode::{Manifest, ManifestChunk, ManifestShard, encode_tidx};
use crate::error::{Error, Result};
use crate::index::TensorInfo;
use crate::integrity::{PageHashes, control_digest, encode_ihsh, encode_phsh};
use crate::output::Output;
use crate::write::raw::compress;
use aero_format::encode::string_table;
use plan::plan_chunks;
use shard::{Member, Out, ShardHasher, stream_shard};

/// What was written.
#[derive(Clone, Debug)]
pub struct WriteSummary {
    /// Total file size.
    pub file_size: u64,
    /// Number of shards.
    pub shards: usize,
    /// The UUID used.
    pub uuid: [u8; 16],
    /// The TIDX entries as written (with hash_b3 when requested).
    pub tensors: Vec<TensorInfo>,
    /// [`WriteOptions::max_shard_bytes`] of the write.
    pub max_shard_bytes: u64,
}

impl WriteSummary {
    /// The tensors larger than [`Self::max_shard_bytes`]: each was written
    /// alone in a shard that exceeds the limit (spec §11 never splits a
    /// tensor), which a caller should say.
    pub fn oversized(&self) -> impl Iterator<Item = &TensorInfo> {
        self.tensors
            .iter()
            .filter(|t| t.data_len > self.max_shard_bytes)
    }
}

/// Writes a model to `path` atomically (see the module docs).
pub fn write_model(
    path: impl AsRef<Path>,
    specs: Vec<TensorSpec<'_>>,
    opts: &WriteOptions,
) -> Result<WriteSummary> {
    let path = path.as_ref();
    check_specs(&specs)?;
    crate::attached::check_files(&opts.attached)?;
    for s in &specs {
        if let Some(r) = s.bytes.file_range() {
            crate::output::refuse_open_input(path, r.file)?;
        }
    }
    for a in &opts.attached {
        if let crate::attached::AttachedData::Path { path: p, .. } = &a.data {
            crate::output::refuse_same_file(path, p)?;
        }
    }
    let mut out = Output::create(path)?;
    let summary = write_to(path, out.file(), specs, opts)?;
    out.commit(opts.durable)?;
    Ok(summary)
}

/// Streams one attached file into `out` (raw, never compressed), hashing
/// it on the way; returns its length and BLAKE3. A file on disk must still
/// have the length it was listed with.
fn write_attached(out: &mut Out<'_>, a: &crate::attached::AttachedFile) -> Result<(u64, [u8; 32])> {
    use crate::attached::AttachedData;
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

/// Writes a model into an open, empty, seekable file (no atomic rename);
/// `path` names it in errors. The file must be open for reading too: a
/// shard copied from a verified input whose gaps held non-zero bytes is
/// hashed again from the output.
pub fn write_to(
    path: &Path,
    file: &mut File,
    specs: Vec<TensorSpec<'_>>,
    opts: &WriteOptions,
) -> Result<WriteSummary> {
    check_specs(&specs)?;
    crate::attached::check_files(&opts.attached)?;
    if opts.max_shard_bytes == 0 {
        return Err(Error::OptionOutOfRange {
            option: "max shard bytes",
            value: 0,
        });
    }
    if let Some(ps) = opts.page_hashes
        && (ps == 0 || ps > aero_format::limits::MAX_METADATA_ULEN)
    {
        return Err(Error::OptionOutOfRange {
            option: "page size",
            value: ps,
        });
    }
    let io = |e| Error::io(path, e);
    let uuid = opts.uuid.unwrap_or_else(random_uuid);
    let plan = ShardPlan::new(
        specs.iter().map(|t| t.data_len),
        opts.max_shard_bytes,
        opts.layout,
    )?;
    // Shards holding a tensor the output must not vouch for.
    let mut unvouched = vec![false; plan.shard_len.len()];
    if !opts.unverified.is_empty() {
        for (t, &(s, _)) in specs.iter().zip(&plan.placement) {
            if opts.unverified.contains(&t.name) {
                unvouched[s] = true;
            }
        }
    }
    let page_lens: Vec<u64> = plan
        .shard_len
        .iter()
        .zip(&unvouched)
        .map(|(&l, &u)| if u { 0 } else { l })
        .collect();
    let chunks = plan_chunks(opts, &page_lens);
    let n = chunks.fourcc.len();

    let mut tensors: Vec<TensorInfo> = specs
        .iter()
        .zip(&plan.placement)
        .map(|(t, &(s, off))| TensorInfo {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            shard_id: opts.first_shard_id + s as u64,
            data_off: off,
            data_len: t.data_len,
            flags: 0,
            hash_b3: None,
            quant_id: None,
            extras: t.extras.clone(),
        })
        .collect();

    let mut meta = serde_json::Map::new();
    meta.insert("model_name".into(), opts.model_name.clone().into());
    meta.insert("architecture".into(), opts.architecture.clone().into());
    for (k, v) in &opts.extra_meta {
        if k != "model_name" && k != "architecture" {
            meta.insert(k.clone(), v.clone());
        }
    }
    let mjsn = crate::value::canonical_json(&serde_json::Value::Object(meta)).into_bytes();
    let manifest = Manifest {
        model_name: opts.model_name.clone(),
        architecture: opts.architecture.clone(),
        chunks: (0..n)
            .map(|i| {
                let shard_id = chunks
                    .wtsh
                    .iter()
                    .position(|&w| w == i)
                    .or_else(|| chunks.phsh.iter().position(|&p| p == Some(i)))
                    .map(|s| opts.first_shard_id + s as u64);
                ManifestChunk {
                    fourcc: chunks.fourcc[i],
                    toc_index: i as u64,
                    shard_id,
                }
            })
            .collect(),
        shards: (0..plan.shard_len.len())
            .map(|s| ManifestShard {
                shard_id: opts.first_shard_id + s as u64,
                toc_index: chunks.wtsh[s] as u64,
                size_bytes: plan.shard_len[s],
                tensor_count: plan.shard_tensors[s],
            })
            .collect(),
    }
    .encode();
    let mmsg = compress(&manifest)?;
    let tidx_early = if opts.tensor_hash {
        None
    } else {
        let raw = encode_tidx(tensors.iter());
        let c = compress(&raw)?;
        Some((raw, c))
    };

    let (strtab, name_refs) = string_table(chunks.names.iter().map(String::as_str));
    let names_len: u64 = chunks.names.iter().map(|s| s.len() as u64 + 1).sum();
    let pro = Prologue::new(n as u64, names_len).ok_or(Error::LimitExceeded {
        what: "the chunk count",
    })?;

    // Entries: filled in as payloads are placed.
    let mut entries: Vec<TocEntry> = (0..n)
        .map(|i| TocEntry {
            fourcc: chunks.fourcc[i],
            flags: ChunkFlags(chunks.flags[i]),
            chunk_offset: 0,
            chunk_length: 0,
            chunk_ulen: 0,
            name_off: name_refs[i].0,
            name_len: name_refs[i].1,
            reserved0: 0,
            blake3: [0; 32],
        })
        .collect();

    let mut out = Out::new(path, &mut *file, opts.durable);
    out.pad_to(pro.payload_start).map_err(io)?;
    let place = |out: &mut Out<'_>,
                 e: &mut TocEntry,
                 align: u64,
                 stored: &[u8],
                 ulen: u64,
                 hash: [u8; 32]|
     -> io::Result<()> {
        let at = align_up(out.pos, align).unwrap_or(out.pos);
        out.pad_to(at)?;
        out.write(stored)?;
        e.chunk_offset = at;
        e.chunk_length = stored.len() as u64;
        e.chunk_ulen = ulen;
        e.blake3 = hash;
        Ok(())
    };
    if let Some(i) = chunks.ihsh {
        // Placeholder: the digest covers the final TOC, patched at the end.
        place(&mut out, &mut entries[i], 16, &[0u8; 256], 256, [0; 32]).map_err(io)?;
    }
    place(
        &mut out,
        &mut entries[chunks.mjsn],
        16,
        &mjsn,
        mjsn.len() as u64,
        *blake3::hash(&mjsn).as_bytes(),
    )
    .map_err(io)?;
    place(
        &mut out,
        &mut entries[chunks.mmsg],
        16,
        &mmsg,
        manifest.len() as u64,
        *blake3::hash(&manifest).as_bytes(),
    )
    .map_err(io)?;
    if let Some((raw, c)) = &tidx_early {
        place(
            &mut out,
            &mut entries[chunks.tidx],
            16,
            c,
            raw.len() as u64,
            *blake3::hash(raw).as_bytes(),
        )
        .map_err(io)?;
    }

    // Stream the shards.
    let mut specs = specs.into_iter().enumerate().peekable();
    for s in 0..plan.shard_len.len() {
        let start = align_up(out.pos, opts.layout.shard_align()).unwrap_or(out.pos);
        out.pad_to(start).map_err(io)?;
        let members: Vec<Member<'_>> =
            std::iter::from_fn(|| specs.next_if(|(ti, _)| plan.placement[*ti].0 == s))
                .map(|(ti, spec)| Member {
                    ti,
                    off: plan.placement[ti].1,
                    spec,
                })
                .collect();
        let mut sh = ShardHasher::new(opts.page_hashes);
        let len = plan.shard_len[s];
        for (ti, h) in stream_shard(&mut out, start, len, members, &mut sh, opts.tensor_hash)? {
            if !opts.unverified.contains(&tensors[ti].name) {
                tensors[ti].hash_b3 = h;
            }
        }
        out.advance(plan.shard_len[s]).map_err(io)?;
        let len = out.pos - start;
        debug_assert_eq!(len, plan.shard_len[s]);
        let (digest, pages) = sh.finish();
        let e = &mut entries[chunks.wtsh[s]];
        e.chunk_offset = start;
        e.chunk_length = len;
        e.chunk_ulen = len;
        e.blake3 = if unvouched[s] { [0; 32] } else { digest };
        if let Some(pi) = chunks.phsh[s] {
            let payload = encode_phsh(&PageHashes {
                shard_name: chunks.names[chunks.wtsh[s]].clone(),
                page_size: opts
                    .page_hashes
                    .unwrap_or(aero_format::limits::DEFAULT_PAGE_SIZE),
                digests: pages,
            });
            let h = *blake3::hash(&payload).as_bytes();
            place(
                &mut out,
                &mut entries[pi],
                16,
                &payload,
                payload.len() as u64,
                h,
            )
            .map_err(io)?;
        }
    }
    if tidx_early.is_none() {
        let raw = encode_tidx(tensors.iter());
        let c = compress(&raw)?;
        place(
            &mut out,
            &mut entries[chunks.tidx],
            16,
            &c,
            raw.len() as u64,
            *blake3::hash(&raw).as_bytes(),
        )
        .map_err(io)?;
    }
    for (a, &i) in opts.attached.iter().zip(&chunks.files) {
        let at = align_up(out.pos, 16).unwrap_or(out.pos);
        out.pad_to(at).map_err(io)?;
        let (len, hash) = write_attached(&mut out, a)?;
        let e = &mut entries[i];
        e.chunk_offset = at;
        e.chunk_length = len;
        e.chunk_ulen = len;
        e.blake3 = hash;
    }
    let file_size = out.pos;

    // Prologue: header, TOC, string table.
    let build =
        |entries: &[TocEntry]| aero_format::encode::encode_prologue(&pro, uuid, entries, &strtab);
    let w = out.w.into_inner().map_err(|e| io(e.into_error()))?;
    if let Some(i) = chunks.ihsh {
        let digest = control_digest(&build(&entries), pro.toc_offset, n as u32);
        let payload = encode_ihsh(pro.payload_start, &digest);
        entries[i].blake3 = *blake3::hash(&payload).as_bytes();
        w.seek(SeekFrom::Start(entries[i].chunk_offset))
            .map_err(io)?;
        w.write_all(&payload).map_err(io)?;
    }
    w.seek(SeekFrom::Start(0)).map_err(io)?;
    w.write_all(&build(&entries)).map_err(io)?;
    w.flush().map_err(io)?;
    Ok(WriteSummary {
        file_size,
        shards: plan.shard_len.len(),
        uuid,
        tensors,
        max_shard_bytes: opts.max_shard_bytes,
    })
}
