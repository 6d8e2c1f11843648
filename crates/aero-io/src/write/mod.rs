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

mod metadata;
mod options;
mod out;
mod place;
mod plan;
mod prologue;
pub mod raw;
mod shard;
mod spec;

pub use options::{
    DEFAULT_MAX_SHARD_BYTES, DEFAULT_PAGE_HASH_SIZE, Layout, WriteOptions, random_uuid,
};
pub use plan::ShardPlan;
pub use spec::{FileRange, Observer, SourceChunk, TensorBytes, TensorSpec, check_specs};

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};
use crate::index::TensorInfo;
use crate::output::Output;
use metadata::Payload;
use out::Out;
use place::FilePlan;
use shard::write_shards;

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
    check_options(opts)?;
    let uuid = opts.uuid.unwrap_or_else(random_uuid);
    // Placement: shards, TOC order, prologue size.
    let plan = FilePlan::new(&specs, opts)?;
    let chunks = &plan.chunks;
    // Metadata payloads (the TIDX waits for the tensor hashes, if asked).
    let mut tensors = metadata::tensor_infos(&specs, &plan.shards, opts);
    let mjsn = metadata::meta_json(opts);
    let mmsg = metadata::manifest(opts, chunks, &plan.shards)?;
    let tidx_early = match opts.tensor_hash {
        true => None,
        false => Some(metadata::tidx(&tensors)?),
    };

    let mut toc = plan.toc();
    let mut out = Out::new(path, &mut *file, opts.durable);
    out.pad_to(plan.prologue.payload_start)
        .map_err(|e| Error::io(path, e))?;
    if let Some(i) = chunks.ihsh {
        // Placeholder: the digest covers the final TOC, patched at the end.
        toc.place(&mut out, i, &Payload::placeholder(256))?;
    }
    toc.place(&mut out, chunks.mjsn, &mjsn)?;
    toc.place(&mut out, chunks.mmsg, &mmsg)?;
    if let Some(tidx) = &tidx_early {
        toc.place(&mut out, chunks.tidx, tidx)?;
    }
    // Shards, each followed by its page hashes.
    write_shards(&mut out, &mut toc, specs, &plan, opts, &mut tensors)?;
    if tidx_early.is_none() {
        toc.place(&mut out, chunks.tidx, &metadata::tidx(&tensors)?)?;
    }
    for (a, &i) in opts.attached.iter().zip(&chunks.files) {
        toc.place_attached(&mut out, i, a)?;
    }
    let file_size = out.pos;
    // Prologue: header, TOC, string table, and the IHSH digest over them.
    prologue::finish(out, &plan, uuid, &mut toc)?;
    Ok(WriteSummary {
        file_size,
        shards: plan.shards.shard_len.len(),
        uuid,
        tensors,
        max_shard_bytes: opts.max_shard_bytes,
    })
}

/// Refuses writer options no file can be written with.
fn check_options(opts: &WriteOptions) -> Result<()> {
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
    Ok(())
}
