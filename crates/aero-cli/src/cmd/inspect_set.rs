//! `inspect-set`: an AEROSET summarised — model, index, parts, shards, tensors.

use std::path::PathBuf;
use std::process::ExitCode;

use aero_convert::describe::{self, TensorRow};
use clap::Args;
use serde_json::{Value, json};

use super::Run;
use super::common::filter::filtered;
use super::common::source::part_path;
use super::common::tables::{print_tensor_section, set_tensor_json, tensor_table, types_json};
use crate::out;
use crate::remote::Opener;

/// Summarise an AEROSET: model, index, parts, shards, tensors.
#[derive(Args, Debug)]
pub(crate) struct InspectSetArgs {
    /// The set: model.aeroset.json or the directory holding it.
    pub(crate) set: PathBuf,
    /// Show at most N tensors (0 for none); the rest are counted.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub(crate) max_tensors: usize,
    /// Show every tensor (overrides --max-tensors).
    #[arg(long)]
    pub(crate) all_tensors: bool,
    /// Only tensors whose name matches: a glob (`blk.0.*`) over the whole
    /// name, or else a substring.
    #[arg(long, value_name = "PATTERN")]
    pub(crate) filter: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub(crate) json: bool,
}

impl Run for InspectSetArgs {
    fn run(mut self, opener: &Opener) -> anyhow::Result<ExitCode> {
        if self.all_tensors {
            self.max_tensors = usize::MAX;
        }
        inspect_set(self, opener)
    }

    fn wants_json(&self) -> bool {
        self.json
    }
}

fn inspect_set(a: InspectSetArgs, opener: &Opener) -> anyhow::Result<ExitCode> {
    let set = opener.open_set(&a.set)?;
    let m = set.manifest();
    let idx = set.index()?;
    let total: u64 = idx.tensors().iter().map(|t| t.data_len).sum();
    let shown = filtered(idx.tensors(), a.filter.as_deref())?;
    if a.json {
        let parts: Vec<Value> = m
            .parts
            .iter()
            .map(|p| {
                json!({"path": p.file.path, "size": p.file.size_bytes,
                       "sha256": hex::encode(p.file.sha256), "shards": p.shards})
            })
            .collect();
        let rows: Vec<aero_convert::describe::TensorRow> = shown
            .iter()
            .map(aero_convert::describe::aero_tensor_row)
            .collect();
        let tensors: Vec<Value> = shown
            .iter()
            .take(a.max_tensors)
            .map(|t| set_tensor_json(&set, t))
            .collect();
        out::print_json(&json!({
            "input": set.path().display().to_string(),
            "format": "AEROSET",
            "version": m.version,
            "model": {"name": m.model.name, "architecture": m.model.architecture},
            "base_url": m.base_url,
            "cache": m.cache,
            "index": {"path": m.global_tidx.path, "size": m.global_tidx.size_bytes,
                      "sha256": hex::encode(m.global_tidx.sha256)},
            "parts": parts,
            "files": m.files.iter().map(|f| json!({"path": f.path, "size": f.size_bytes,
                                                    "sha256": hex::encode(f.sha256)})).collect::<Vec<_>>(),
            "size": set.total_size(),
            "shard_count": m.parts.iter().map(|p| p.shards.len()).sum::<usize>(),
            "tensor_count": idx.len(),
            "tensor_bytes": total,
            "filter": a.filter,
            "types": types_json(&aero_convert::describe::histogram(&rows)),
            "tensors_shown": tensors.len(),
            "truncated": tensors.len() < shown.len(),
            "tensors": tensors,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}  {} in {} files",
        out::bold(&set.path().display().to_string()),
        out::human_bytes(set.total_size()),
        m.parts.len() + 2 + m.files.len()
    );
    println!("  format       AEROSET {}.{}", m.version[0], m.version[1]);
    println!("  model        {}", out::clean(&m.model.name));
    println!("  architecture {}", out::clean(&m.model.architecture));
    if let Some(b) = &m.base_url {
        println!("  base_url     {b}");
    }
    println!(
        "  index        {}  {}  sha256 {}",
        m.global_tidx.path,
        out::human_bytes(m.global_tidx.size_bytes),
        hex::encode(m.global_tidx.sha256)
    );
    println!();
    let rows: Vec<Vec<String>> = m
        .parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            vec![
                i.to_string(),
                out::clean(&p.file.path).into_owned(),
                p.file.size_bytes.to_string(),
                format!("{:?}", p.shards),
                hex::encode(&p.file.sha256[..8]),
            ]
        })
        .collect();
    print!(
        "{}",
        out::table(&["#", "part", "bytes", "shards", "sha256"], &rows)
    );
    println!();
    if !m.files.is_empty() {
        println!(
            "attached files: {} (beside the manifest; `extract SET --file NAME OUT` writes one)",
            m.files.len()
        );
        let rows: Vec<Vec<String>> = m
            .files
            .iter()
            .map(|f| {
                vec![
                    out::clean(&f.path).into_owned(),
                    f.size_bytes.to_string(),
                    hex::encode(&f.sha256[..8]),
                ]
            })
            .collect();
        print!("{}", out::table(&["name", "bytes", "sha256"], &rows));
        println!();
    }
    let part = |id: u64| part_path(&set, id).unwrap_or("-").to_string();
    let rows: Vec<TensorRow> = shown.iter().map(describe::aero_tensor_row).collect();
    let table = tensor_table(&shown, a.max_tensors, Some(&part), false);
    print_tensor_section(&rows, idx.len(), a.max_tensors, &table);
    Ok(ExitCode::SUCCESS)
}
