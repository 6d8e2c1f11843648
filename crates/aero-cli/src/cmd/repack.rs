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
    let f = crate::remote::open_file(&a.input)?;
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
        e @ aero_io::Error::InputDamaged { .. } => {
            anyhow::Error::new(e).context("nothing was written (use --force to repack anyway)")
        }
        e => anyhow::Error::new(e),
    })?;
    pb.finish_and_clear();
    if let Some(damage) = &r.damage {
        eprintln!(
            "aerotensor: warning: {}: --force: {} of {} tensors failed verification ({}); they are copied without hashes, so the output does not vouch for them",
            out::clean(&a.input.display().to_string()),
            r.unverified.len(),
            r.summary.tensors.len(),
            out::clean(damage)
        );
    }
    report_written(&a.output, &r.summary, a.json)?;
    Ok(ExitCode::SUCCESS)
}
