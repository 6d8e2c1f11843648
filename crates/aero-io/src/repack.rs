//! Rewriting an AERO file (new layout, shard size or integrity data) with
//! its input verified as it streams.
//!
//! The input is read once: metadata, manifest and tensor table are checked
//! first (quick validation), then each weight shard is hashed as its tensors
//! stream past (the internal `tee` readers) and the write fails — leaving nothing — if a
//! shard does not match. When an output shard is a byte-for-byte copy of an
//! input shard (a repack that keeps the layout), that one hash both checks
//! the input and becomes the output's ([`crate::write::SourceChunk`]).
//!
//! `force` copies damaged input anyway, but never vouches for it: see
//! [`crate::write::WriteOptions::unverified`].

use std::path::Path;

use crate::error::{Error, Result, ShardMismatch};
use crate::file::AeroFile;
use crate::index::TensorInfo;
use crate::validate::{Mode, Report, Verdict};
use crate::write::{
    FileRange, Observer, SourceChunk, TensorBytes, TensorSpec, WriteOptions, WriteSummary,
};

/// How [`repack`] runs.
pub struct RepackOptions<'p> {
    /// Layout, shard size, hashes, UUID, durability of the output. Model
    /// name, architecture and MJSN extras are taken from the input; tensor
    /// hashes are kept when the input had any.
    pub write: WriteOptions,
    /// Copy an input that fails verification (without vouching for the
    /// damaged tensors) instead of refusing it.
    pub force: bool,
    /// Told how many tensor bytes have been written.
    pub progress: &'p (dyn Fn(u64) + Sync),
}

/// What [`repack`] did.
#[derive(Debug)]
pub struct Repacked {
    /// The write.
    pub summary: WriteSummary,
    /// With `force`: the input's first validation error, when it had one.
    pub damage: Option<String>,
    /// With `force`: the tensors written without hashes, because nothing
    /// proved their input bytes.
    pub unverified: Vec<String>,
    /// With `force`: attached files left out because their bytes failed
    /// verification (without `force` such an input is refused).
    pub dropped_files: Vec<String>,
}

/// Rewrites `input` to `output` (see the module docs). A damaged input is
/// [`Error::InputDamaged`] unless `force`.
pub fn repack(input: &AeroFile, output: &Path, opts: &RepackOptions<'_>) -> Result<Repacked> {
    if let Some(p) = input.local_path() {
        crate::output::refuse_same_file(output, p)?;
    }
    let damaged = |r: &Report| Error::input_damaged_by(input, r);
    let mut verifiers = None;
    let mut write = opts.write.clone();
    let gguf_order = input.shape_order() == crate::ShapeOrder::Gguf;
    let mut damage = None;
    if opts.force {
        let r = crate::validate(input, Mode::Full, &|_| {});
        if r.verdict == Verdict::Invalid {
            damage = r.errors.first().cloned();
            write.unverified = unproven_tensors(input, &r)?;
        }
    } else {
        let r = crate::validate(input, Mode::Quick, &|_| {});
        if r.verdict == Verdict::Invalid {
            return Err(damaged(&r));
        }
        // A reference GGUF-origin file's tensors are copied without their
        // padding, so shards are not streamed whole: verify up front.
        verifiers = if gguf_order {
            None
        } else {
            crate::tee::verifiers(input)?
        };
        if verifiers.is_none() {
            // Tensors out of offset order: verify everything up front instead.
            let r = crate::validate(input, Mode::Full, &|_| {});
            if r.verdict == Verdict::Invalid {
                return Err(damaged(&r));
            }
        }
    }
    let idx = input.index()?;
    let (name, arch) = input.model();
    write.model_name = name.unwrap_or_else(|| "converted".into());
    write.architecture = arch.unwrap_or_else(|| "unknown".into());
    if let Some(serde_json::Value::Object(m)) = input.meta_json().unwrap_or(None) {
        write.extra_meta = m;
    }
    if gguf_order {
        // The output is row-major with exact sizes (the one rule of
        // `crate::order`); a `gguf` record says so to every reader, with
        // what the reference kept of the GGUF header.
        write.extra_meta.insert(
            "gguf".into(),
            serde_json::json!({
                "version": 3,
                "alignment": crate::GGUF_PADDING,
                "metadata": [
                    ["general.architecture", "string", write.architecture],
                    ["general.name", "string", write.model_name],
                ],
                "tensor_order": idx.tensors().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            }),
        );
    }
    write.tensor_hash |= idx.tensors().iter().any(|t| t.hash_b3.is_some());
    // Attached files are carried over, verified (quick validation above has
    // checked them already; with `force` the damaged ones stay behind).
    let mut dropped_files = Vec::new();
    write.attached.clear();
    for c in input.attached_files() {
        match input.attached_file(&c.name) {
            Ok(b) => write.attached.push(crate::attached::AttachedFile {
                name: c.name.clone(),
                data: crate::attached::AttachedData::Bytes(std::sync::Arc::from(&*b)),
            }),
            Err(_) if opts.force => dropped_files.push(c.name.clone()),
            Err(e) => return Err(Error::input_damaged(input, None, e.to_string())),
        }
    }
    let mut specs = Vec::with_capacity(idx.len());
    let mut verifiers = verifiers.map(Vec::into_iter);
    for t in idx.tensors() {
        let tee = verifiers.as_mut().and_then(Iterator::next).flatten();
        let mut spec = spec(input, t, tee, opts.progress)?;
        if gguf_order {
            spec.shape = t.row_major_shape(crate::ShapeOrder::Gguf);
            spec.data_len = t.tensor_len(crate::ShapeOrder::Gguf);
        }
        specs.push(spec);
    }
    let summary = crate::write::write_model(output, specs, &write).map_err(|e| match e {
        // A whole shard failed its hash: the tensor being streamed when
        // that came out is not necessarily the damaged one.
        Error::Input { source, .. } if !opts.force && ShardMismatch::of(&source).is_some() => {
            let name = ShardMismatch::of(&source).unwrap_or_default();
            match input
                .chunks()
                .iter()
                .find(|c| c.fourcc == aero_format::FourCc::WTSH && c.name == name)
            {
                Some(c) => Error::shard_damaged(input, c),
                None => Error::input_damaged(input, None, source.to_string()),
            }
        }
        Error::Input { tensor, source, .. }
            if source.kind() == std::io::ErrorKind::InvalidData && !opts.force =>
        {
            Error::input_damaged(input, Some(tensor), source.to_string())
        }
        e if e.is_invalid_data() && !opts.force => Error::input_damaged(input, None, e.to_string()),
        e => e.in_input(input.path()),
    })?;
    Ok(Repacked {
        summary,
        damage,
        unverified: write.unverified,
        dropped_files,
    })
}

/// The tensors of a damaged input that nothing vouches for: their shard
/// fails its hash and neither their own `hash_b3` nor the pages covering
/// them verified.
fn unproven_tensors(f: &AeroFile, r: &Report) -> Result<Vec<String>> {
    let idx = f.index()?;
    let mut bad = Vec::new();
    for (t, rep) in idx.tensors().iter().zip(&r.tensors) {
        if rep.hash_b3 == "verified" {
            continue;
        }
        let shard = f.shard(t.shard_id).ok();
        let shard_ok = shard.is_some_and(|c| {
            r.chunks
                .iter()
                .any(|row| row.index == c.index && row.status == "verified")
        });
        let pages_ok = shard.is_some_and(|c| {
            r.pages.iter().any(|p| {
                p.shard == c.name
                    && p.status != "error"
                    && aero_format::phsh::PageSpan::covering(
                        p.page_size,
                        t.data_off,
                        t.data_len,
                        c.length,
                    )
                    .is_some_and(|span| !p.bad_pages.iter().any(|i| span.pages().contains(i)))
            })
        });
        if rep.hash_b3 == "mismatch" || (!shard_ok && !pages_ok) {
            bad.push(t.name.clone());
        }
    }
    Ok(bad)
}

/// Counts bytes for progress as the writer streams them.
struct Progress<'p>(&'p (dyn Fn(u64) + Sync));

impl Observer for Progress<'_> {
    fn bytes(&mut self, block: &[u8]) -> std::io::Result<()> {
        (self.0)(block.len() as u64);
        Ok(())
    }
}

/// A tensor's bytes for the writer: the input file's range when it is a
/// local file (observed by the verifier and progress), else a reader.
fn spec<'a>(
    f: &'a AeroFile,
    t: &TensorInfo,
    tee: Option<crate::tee::TeeReader<'a>>,
    progress: &'a (dyn Fn(u64) + Sync),
) -> Result<TensorSpec<'a>> {
    let mut spec = TensorSpec {
        name: t.name.clone(),
        dtype: t.dtype,
        shape: t.shape.clone(),
        data_len: t.data_len,
        extras: t.extras.clone(),
        bytes: TensorBytes::Reader(Box::new(std::io::empty())),
    };
    if let Some(file) = f.local_file() {
        let (offset, _) = f.tensor_range(t)?;
        let mut range = FileRange {
            file,
            offset,
            observers: vec![Box::new(Progress(progress))],
            chunk: None,
        };
        if let Some(tee) = tee {
            // With the shard's recorded hash, the writer can verify the input
            // with the same pass that hashes an unchanged output shard.
            let c = f.shard(t.shard_id)?;
            if c.hash_recorded() && c.ulen == c.length {
                range.chunk = Some(SourceChunk {
                    name: c.name.clone(),
                    offset: c.offset,
                    length: c.length,
                    blake3: c.blake3,
                    verifier: Box::new(tee),
                });
            } else {
                range.observers.push(Box::new(tee));
            }
        }
        spec.bytes = TensorBytes::File(range);
        return Ok(spec);
    }
    let reader: Box<dyn std::io::Read + Send + 'a> = match tee {
        Some(tee) => Box::new(tee),
        None => f.tensor_reader_unverified(t)?,
    };
    spec.bytes = TensorBytes::Reader(Box::new(Counting {
        inner: reader,
        progress,
    }));
    Ok(spec)
}

struct Counting<'a> {
    inner: Box<dyn std::io::Read + Send + 'a>,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl std::io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}
