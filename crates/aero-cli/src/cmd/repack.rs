use std::path::Path;
use std::process::ExitCode;

use aero_io::write::WriteOptions;

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
    /// The flags given that only mean something for an AERO output (all
    /// but `--no-fsync`), as typed: `convert` refuses them when it exports.
    pub fn aero_only_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.layout != super::LayoutArg::Aligned {
            v.push("--layout");
        }
        if self.max_shard_bytes.is_some() {
            v.push("--max-shard-bytes");
        }
        if self.tensor_hash {
            v.push("--tensor-hash");
        }
        if self.no_tensor_hash {
            v.push("--no-tensor-hash");
        }
        if self.control_integrity {
            v.push("--control-integrity");
        }
        if self.page_hashes.is_some() {
            v.push("--page-hashes");
        }
        if self.no_page_hashes {
            v.push("--no-page-hashes");
        }
        if self.uuid.is_some() {
            v.push("--uuid");
        }
        v
    }

    /// Writer options from the common flags.
    pub fn options(&self) -> WriteOptions {
        let base = match self.layout {
            super::LayoutArg::Aligned => WriteOptions::default(),
            super::LayoutArg::Reference => WriteOptions::reference(),
        };
        WriteOptions {
            max_shard_bytes: self
                .max_shard_bytes
                .unwrap_or(aero_io::write::DEFAULT_MAX_SHARD_BYTES),
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
    s: &aero_io::write::WriteSummary,
    json: bool,
) -> anyhow::Result<()> {
    report_written_with(out_path, s, json, serde_json::Map::new())
}

/// Says on stderr which tensors exceed `--max-shard-bytes` on their own:
/// each got a shard of its own, larger than the limit (a tensor is never
/// split), so the limit was not met and the user should know.
fn warn_oversized(out_path: &Path, s: &aero_io::write::WriteSummary) {
    warn_oversized_tensors(out_path, s.oversized().collect(), s.max_shard_bytes);
}

/// [`warn_oversized`] for any writer: `big` are the tensors above `max`.
pub(super) fn warn_oversized_tensors(out_path: &Path, big: Vec<&aero_io::TensorInfo>, max: u64) {
    let Some(first) = big.first() else { return };
    let more = match big.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    eprintln!(
        "aerotensor: warning: {}: tensor '{}' is {} bytes, more than --max-shard-bytes {}{more}: \
         a tensor is never split, so it was written alone in a shard larger than the limit",
        out::clean(&out_path.display().to_string()),
        out::clean(&first.name),
        first.data_len,
        max
    );
}

/// `oversized_tensors` of a writer's `--json`: name, bytes, shard.
pub(super) fn oversized_json<'a>(
    big: impl Iterator<Item = &'a aero_io::TensorInfo>,
) -> serde_json::Value {
    serde_json::Value::Array(
        big.map(
            |t| serde_json::json!({"name": t.name, "bytes": t.data_len, "shard_id": t.shard_id}),
        )
        .collect(),
    )
}

/// [`report_written`], with more keys in the JSON document.
pub(super) fn report_written_with(
    out_path: &Path,
    s: &aero_io::write::WriteSummary,
    json: bool,
    extra: serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<()> {
    if json {
        let mut doc = serde_json::json!({
            "output": out_path.display().to_string(),
            "format": "AERO",
            "size": s.file_size,
            "shards": s.shards,
            "tensors": s.tensors.len(),
            "uuid": hex::encode(s.uuid),
        });
        if let Some(m) = doc.as_object_mut() {
            m.insert(
                "max_shard_bytes".into(),
                serde_json::json!(s.max_shard_bytes),
            );
            m.insert("oversized_tensors".into(), oversized_json(s.oversized()));
            m.extend(extra);
        }
        warn_oversized(out_path, s);
        out::print_json(&doc)
    } else {
        warn_oversized(out_path, s);
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

/// A damaged input the writer refused, and what the user can do about it.
/// Its message is the library error's, then the hint; the error stays in
/// the chain so the exit code is still 1.
#[derive(Debug)]
struct Refused {
    source: aero_io::Error,
    hint: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; nothing was written ({})", self.source, self.hint)
    }
}

impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `repack IN OUT`.
pub fn run(mut a: RepackArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    a.output = super::convert::checked_output(
        aero_convert::route::Conversion::Repack,
        &a.input,
        &a.output,
        opener,
    )?;
    run_as(a, "--force copies it anyway", opener)
}

/// `repack`, or `convert` of an AERO input (which has no `--force`, so its
/// `hint` names `repack --force`).
pub fn run_as(
    a: RepackArgs,
    hint: &'static str,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    let f = opener.open_file(&a.input)?;
    let total: u64 = f
        .index()
        .map(|i| i.tensors().iter().map(|t| t.data_len).sum())
        .unwrap_or(0);
    let pb = out::bytes_bar(total, "repacking");
    let bar = pb.clone();
    let opts = aero_io::RepackOptions {
        write: a.writer.options(),
        force: a.force,
        progress: &move |n| bar.inc(n),
    };
    let r = aero_io::repack(&f, &a.output, &opts).map_err(|e| match e {
        e @ aero_io::Error::InputDamaged { .. } => anyhow::Error::new(Refused { source: e, hint }),
        e => anyhow::Error::new(e),
    })?;
    pb.finish_and_clear();
    let input = out::clean(&a.input.display().to_string()).into_owned();
    match (&r.damage, r.unverified.len()) {
        (None, _) => {}
        (Some(damage), 0) => eprintln!(
            "aerotensor: warning: {input}: --force: the input failed verification ({}), but every tensor was proven by its own hashes; the output's hashes are recomputed from those bytes and vouch for all {} tensors",
            out::clean(damage),
            r.summary.tensors.len()
        ),
        (Some(damage), n) => eprintln!(
            "aerotensor: warning: {input}: --force: {n} of {} tensors failed verification ({}); they are copied without hashes, so the output does not vouch for them",
            r.summary.tensors.len(),
            out::clean(damage)
        ),
    }
    if !r.dropped_files.is_empty() {
        eprintln!(
            "aerotensor: warning: {input}: --force: attached file{} {} failed verification and {} left out",
            if r.dropped_files.len() == 1 { "" } else { "s" },
            out::clean(&r.dropped_files.join(", ")),
            if r.dropped_files.len() == 1 {
                "is"
            } else {
                "are"
            },
        );
    }
    let mut extra = serde_json::Map::new();
    if a.force {
        extra.insert("dropped_files".into(), serde_json::json!(r.dropped_files));
        // Only with --force can a write succeed over damage: say what it
        // could not vouch for.
        extra.insert("input_damage".into(), serde_json::json!(r.damage));
        extra.insert("unverified_tensors".into(), serde_json::json!(r.unverified));
    }
    report_written_with(&a.output, &r.summary, a.json, extra)?;
    Ok(ExitCode::SUCCESS)
}
