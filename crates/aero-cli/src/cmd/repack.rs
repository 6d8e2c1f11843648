use std::path::Path;
use std::process::ExitCode;

use aero_io::stream::{TensorSpec, WriteOptions};
use aero_io::{Mode, Verdict};

use super::{RepackArgs, WriterArgs};
use crate::out;

/// Parses `4096`, `64K`, `64KiB`, `512M`, `2G`, `2GiB` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (examples: 4096, 64K, 512M, 2G)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        u => return Err(format!("unknown size unit '{u}' in '{s}'")),
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("size '{s}' is zero or too large"))
}

/// Parses 32 hex digits (dashes allowed) into a UUID.
pub fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let h: String = s.chars().filter(|c| *c != '-').collect();
    let v = hex::decode(&h).map_err(|_| format!("'{s}' is not hex"))?;
    v.try_into()
        .map_err(|_| format!("UUID '{s}' must be 32 hex digits (16 bytes)"))
}

impl WriterArgs {
    /// Writer options from the common flags.
    pub fn options(&self) -> WriteOptions {
        let base = match self.layout {
            super::LayoutArg::Aligned => WriteOptions::default(),
            super::LayoutArg::Reference => WriteOptions::reference(),
        };
        WriteOptions {
            max_shard_bytes: self
                .max_shard_bytes
                .unwrap_or(aero_io::stream::DEFAULT_MAX_SHARD_BYTES),
            uuid: self.uuid,
            tensor_hash: (base.tensor_hash || self.tensor_hash) && !self.no_tensor_hash,
            control_integrity: self.control_integrity,
            page_hashes: if self.no_page_hashes {
                None
            } else {
                self.page_hashes.or(base.page_hashes)
            },
            durable: !self.no_fsync,
            ..base
        }
    }
}

/// Prints the one-line summary of a write.
pub fn report_written(
    out_path: &Path,
    s: &aero_io::stream::WriteSummary,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        out::print_json(&serde_json::json!({
            "output": out_path.display().to_string(),
            "file_size": s.file_size,
            "shards": s.shards,
            "tensors": s.tensors.len(),
            "uuid": hex::encode(s.uuid),
        }))
    } else {
        eprintln!(
            "wrote {} ({}, {} tensors in {} shard{})",
            out_path.display(),
            out::human_bytes(s.file_size),
            s.tensors.len(),
            s.shards,
            if s.shards == 1 { "" } else { "s" }
        );
        Ok(())
    }
}

pub fn run(a: RepackArgs) -> anyhow::Result<ExitCode> {
    aero_io::output::refuse_same_file(&a.output, &a.input)?;
    let f = crate::remote::open_file(&a.input)?;
    // Metadata, manifest and tensor table first; weight shards are verified
    // while they stream (aero_io::tee), so the input is read only once.
    let mut readers = None;
    if !a.force {
        let refuse = |r: &aero_io::Report| {
            anyhow::Error::new(aero_convert::ConvertError::InputInvalid {
                path: a.input.clone(),
                reason: r.errors.first().cloned().unwrap_or_default(),
            })
            .context("use --force to repack anyway")
        };
        let r = aero_io::validate(&f, Mode::Quick, &|_| {});
        if r.verdict == Verdict::Invalid {
            return Err(refuse(&r));
        }
        readers = aero_io::tee::verifiers(&f)
            .map_err(|e| anyhow::Error::new(e).context("use --force to repack anyway"))?;
        if readers.is_none() {
            // Tensors out of offset order: verify everything up front instead.
            let pb = out::bytes_bar(
                aero_io::validate::work_bytes(&f, Mode::Full),
                "verifying input",
            );
            let r = aero_io::validate(&f, Mode::Full, &|n| pb.inc(n));
            pb.finish_and_clear();
            if r.verdict == Verdict::Invalid {
                return Err(refuse(&r));
            }
        }
    }
    let idx = f.index()?;
    let (name, arch) = f.model();
    let mut opts = a.writer.options();
    if a.force {
        opts.unverified = forced_tensors(&f, &a.input)?;
    }
    opts.model_name = name.unwrap_or_else(|| "converted".into());
    opts.architecture = arch.unwrap_or_else(|| "unknown".into());
    if let Some(serde_json::Value::Object(m)) = f.meta_json().unwrap_or(None) {
        opts.extra_meta = m;
    }
    // Keep tensor hashes when the input had them.
    opts.tensor_hash |= idx.tensors().iter().any(|t| t.hash_b3.is_some());
    let total: u64 = idx.tensors().iter().map(|t| t.data_len).sum();
    let pb = out::bytes_bar(total, "repacking");
    let mut specs = Vec::with_capacity(idx.len());
    let mut verifiers = readers.map(Vec::into_iter);
    for t in idx.tensors() {
        let tee = verifiers.as_mut().and_then(Iterator::next).flatten();
        let (source, range) = tensor_bytes(&f, t, tee, &pb)?;
        specs.push(TensorSpec {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            data_len: t.data_len,
            extras: t.extras.clone(),
            source,
            file_range: range,
        });
    }
    let s = match aero_io::stream::write_model(&a.output, specs, &opts) {
        Ok(s) => s,
        Err(e) if e.is_invalid_data() => {
            return Err(anyhow::Error::new(e).context(format!(
                "{}: input is damaged, nothing was written (use --force to repack anyway)",
                a.input.display()
            )));
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("writing {}", a.output.display())));
        }
    };
    pb.finish_and_clear();
    report_written(&a.output, &s, a.json)?;
    Ok(ExitCode::SUCCESS)
}

/// `--force`: verifies the whole input first and names the tensors whose
/// bytes nothing vouches for (their shard fails its hash and no hash_b3 or
/// page hash of their own proves them), warning about each. The writer
/// copies them without fresh hashes (`WriteOptions::unverified`).
fn forced_tensors(f: &aero_io::AeroFile, input: &Path) -> anyhow::Result<Vec<String>> {
    let pb = out::bytes_bar(
        aero_io::validate::work_bytes(f, Mode::Full),
        "verifying input",
    );
    let r = aero_io::validate(f, Mode::Full, &|n| pb.inc(n));
    pb.finish_and_clear();
    if r.verdict != Verdict::Invalid {
        return Ok(Vec::new());
    }
    let idx = f.index()?;
    let mut bad = Vec::new();
    for (t, rep) in idx.tensors().iter().zip(&r.tensors) {
        if rep.hash_b3 == "verified" {
            continue;
        }
        let shard_ok = f.shard(t.shard_id).ok().and_then(|c| {
            r.chunks
                .iter()
                .find(|row| row.index == c.index)
                .map(|row| row.status == "verified")
        });
        let pages_ok = f.shard(t.shard_id).ok().is_some_and(|c| {
            r.pages.iter().any(|p| {
                p.shard == c.name
                    && p.status != "error"
                    && aero_io::integrity::page_span(p.page_size, t.data_off, t.data_len, c.length)
                        .is_some_and(|(a, b)| {
                            let (first, last) = (a / p.page_size, (b - 1) / p.page_size);
                            !p.bad_pages.iter().any(|&i| i >= first && i <= last)
                        })
            })
        });
        if rep.hash_b3 == "mismatch" || (shard_ok != Some(true) && !pages_ok) {
            bad.push(t.name.clone());
        }
    }
    eprintln!(
        "aerotensor: warning: {}: --force: {} of {} tensors failed verification ({}); they are copied without hashes, so the output does not vouch for them",
        out::clean(&input.display().to_string()),
        bad.len(),
        idx.len(),
        out::clean(&r.errors.first().cloned().unwrap_or_default())
    );
    Ok(bad)
}

/// Counts bytes for a progress bar as the writer streams them.
pub struct ProgressObserver(pub indicatif::ProgressBar);

impl aero_io::stream::Observer for ProgressObserver {
    fn bytes(&mut self, block: &[u8]) -> std::io::Result<()> {
        self.0.inc(block.len() as u64);
        Ok(())
    }
}

type Bytes<'a> = (
    Box<dyn std::io::Read + Send + 'a>,
    Option<aero_io::stream::FileRange<'a>>,
);

/// A tensor's bytes for the writer: straight from the input mapping when the
/// input is a local file (observed by the verifier and the progress bar),
/// else through a reader.
fn tensor_bytes<'a>(
    f: &'a aero_io::AeroFile,
    t: &aero_io::TensorInfo,
    tee: Option<aero_io::tee::TeeReader<'a>>,
    pb: &indicatif::ProgressBar,
) -> anyhow::Result<Bytes<'a>> {
    if let Some(file) = f.source().file() {
        let (offset, _) = f.tensor_range(t)?;
        let observers: Vec<Box<dyn aero_io::stream::Observer + 'a>> =
            vec![Box::new(ProgressObserver(pb.clone()))];
        let mut range = aero_io::stream::FileRange {
            file,
            offset,
            observers,
            chunk: None,
        };
        if let Some(tee) = tee {
            // With the shard's recorded hash, the writer can verify the input
            // with the same pass that hashes an unchanged output shard.
            let c = f.shard(t.shard_id)?;
            if c.hash_recorded() && c.ulen == c.length {
                range.chunk = Some(aero_io::stream::SourceChunk {
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
        return Ok((Box::new(std::io::empty()), Some(range)));
    }
    let reader: Box<dyn std::io::Read + Send + 'a> = match tee {
        Some(tee) => Box::new(tee),
        None => f.tensor_reader_unverified(t)?,
    };
    Ok((Box::new(pb.wrap_read(reader)), None))
}
