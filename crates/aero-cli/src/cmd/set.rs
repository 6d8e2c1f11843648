//! AEROSET commands: `inspect-set`, `fetch-tensor`,
//! `convert-safetensors-sharded`, and the set forms of `validate`, `list`,
//! `extract` and `convert`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use aero_convert::sharded::ShardedSafetensors;
use aero_io::Verdict;
use aero_set::{AeroSet, SetReport, SetWriteOptions};
use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::read::{filtered, print_tensor_section, tensor_json, tensor_table};
use super::{
    ConvertArgs, ConvertAutoArgs, ConvertShardedArgs, ExtractArgs, FetchTensorArgs, InspectSetArgs,
    ListArgs, ValidateArgs,
};
use crate::out;

/// Whether a path given to `validate` / `list` / `extract` is an AEROSET.
pub fn is_set(path: &Path) -> bool {
    aero_set::model::Target::classify(path).is_set()
}

fn part_path(set: &AeroSet, shard_id: u64) -> Option<&str> {
    set.manifest()
        .part_for_shard(shard_id)
        .and_then(|i| set.manifest().parts.get(i))
        .map(|p| p.file.path.as_str())
}

pub fn inspect_set(a: InspectSetArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
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
            .map(|t| {
                let mut v = tensor_json(t);
                v["part"] = json!(part_path(&set, t.shard_id));
                v
            })
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
            "types": super::describe::types_json(&aero_convert::describe::histogram(&rows)),
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
    print_tensor_section(&shown, idx.len(), a.max_tensors, Some(&part));
    Ok(ExitCode::SUCCESS)
}

pub fn validate(a: ValidateArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    let mode = a.mode();
    // The manifest only, so that a damaged index is reported, not just
    // refused (a remote manifest is read with its index).
    let opts = aero_set::OpenOptions {
        manifest_only: true,
        ..opener.open_options(aero_set::Expect::Set)
    };
    let set = match opener
        .open_with(&a.file, &opts)
        .and_then(|m| Ok(m.into_set()?))
    {
        Ok(s) => s,
        Err(e) if super::validate::wrong_kind(&e) => return Err(e),
        Err(e) => return super::validate::unreadable(&a, &a.file.display().to_string(), &e),
    };
    let pb = out::bytes_bar(aero_set::validate::work_bytes(&set, mode), "verifying set");
    let report = aero_set::validate_set(&set, mode, &|n| pb.inc(n));
    pb.finish_and_clear();
    a.finish(report.verdict, &report, || print_human(&report, a.strict))
}

fn print_human(r: &SetReport, strict: bool) {
    let rows: Vec<Vec<String>> = r
        .files
        .iter()
        .map(|f| {
            let sha = match f.sha256 {
                "verified" => out::green(f.sha256),
                s => out::red(s),
            };
            let verdict = match f.verdict {
                Some(Verdict::Valid) => out::green("valid"),
                Some(Verdict::ValidWithWarnings) => out::yellow("valid-with-warnings"),
                Some(Verdict::Invalid) => out::red("invalid"),
                // An attached file is not an AERO file: size and SHA-256 are its check.
                None if f.role == aero_set::FileRole::File => "-".to_string(),
                Some(Verdict::Error) | None => out::red("not checked"),
            };
            vec![
                f.field.clone(),
                f.path.clone(),
                f.size_bytes.to_string(),
                sha,
                verdict,
            ]
        })
        .collect();
    print!(
        "{}",
        out::table(&["field", "file", "bytes", "sha256", "aero"], &rows)
    );
    println!(
        "tensors: {} in the global TIDX, {} resolved and agreeing with their part",
        r.tensor_count, r.tensors_ok
    );
    for w in &r.warnings {
        println!("{} {}", out::yellow("warning:"), out::clean(w));
    }
    for e in &r.errors {
        println!("{} {}", out::red("error:"), out::clean(e));
    }
    // A quick check of a set hashes every file whole (SHA-256 against the
    // manifest): say so, and how much, rather than "weight bytes NOT checked".
    let hashed: Vec<u64> = r
        .files
        .iter()
        .filter(|f| f.actual_sha256.is_some())
        .filter_map(|f| f.actual_size)
        .collect();
    let hashed = (!hashed.is_empty()).then(|| (hashed.len(), hashed.iter().sum()));
    super::validate::verdict_line(&r.set, "AEROSET ", r.verdict, r.mode, strict, hashed);
}

pub fn list(a: ListArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    let set = opener.open_set(&a.file)?;
    let idx = set.index()?;
    let shown = filtered(idx.tensors(), a.filter.as_deref())?;
    if a.json {
        let tensors: Vec<Value> = shown
            .iter()
            .map(|t| {
                let mut v = tensor_json(t);
                v["part"] = json!(part_path(&set, t.shard_id));
                v
            })
            .collect();
        out::print_json(&json!({
            "input": set.path().display().to_string(),
            "format": "AEROSET",
            "tensors": tensors,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let part = |id: u64| part_path(&set, id).unwrap_or("-").to_string();
    let text = if a.markdown {
        super::describe::markdown_aero_tensors(&shown)
    } else {
        tensor_table(&shown, usize::MAX, Some(&part), true)
    };
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// Writes one tensor of a set to `out` (`-` or `None` for stdout).
fn write_tensor(
    set_path: &Path,
    tensor: &str,
    out_path: Option<&Path>,
    verify: super::VerifyArgs,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    let set = opener.open_set(set_path)?;
    let dest = super::read::output_dest(out_path)?;
    let len = set.locate(tensor)?.global.data_len;
    let pb = out::bytes_bar(len, "extracting");
    let n = set.extract_to(tensor, &dest, &super::read::copy_options(verify, true, &pb))?;
    pb.finish_and_clear();
    super::read::report_extracted(tensor, n, &dest);
    Ok(ExitCode::SUCCESS)
}

pub fn extract(a: ExtractArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    write_tensor(&a.file, a.tensor_name(), a.out.as_deref(), a.verify, opener)
}

pub fn fetch_tensor(
    a: FetchTensorArgs,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    write_tensor(&a.set, &a.tensor, Some(&a.out), a.verify, opener)
}

pub fn convert_sharded(
    a: ConvertShardedArgs,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    if a.input.is_dir() && aero_convert::hf::is_folder(&a.input) {
        // A model folder: its other files travel with the weights.
        super::convert::checked_output(
            aero_convert::route::Conversion::FolderToSet,
            &a.input,
            &a.output,
            opener,
        )?;
        return super::convert::convert_folder(
            ConvertArgs {
                input: a.input,
                output: a.output,
                identity: a.identity,
                writer: a.writer,
                json: a.json,
            },
            Some(super::convert::SetParams {
                max_part_shards: a.max_part_shards,
                base_url: a.base_url,
                like: a.like,
            }),
            opener,
        );
    }
    super::convert::expect_kind(&a.input, aero_convert::InputKind::ShardedSafeTensors)?;
    super::convert::checked_output(
        aero_convert::route::Conversion::ShardedToSet,
        &a.input,
        &a.output,
        opener,
    )?;
    let mut inp = ShardedSafetensors::open(&a.input)?;
    inp.identity = a.identity.identity();
    let index_dir = inp.index_path().parent().map(Path::to_path_buf);
    if let (Some(d), Ok(o)) = (index_dir, a.output.canonicalize())
        && d.canonicalize().is_ok_and(|d| d == o)
    {
        bail!(
            "{}: the output directory is the input's directory",
            a.output.display()
        );
    }
    let base = SetWriteOptions {
        file: a.writer.options(),
        max_part_shards: a.max_part_shards,
        // Like the single-file converters, which write over an existing
        // output: an existing AEROSET (and nothing else) is replaced.
        replace: true,
        base_url: a.base_url.clone(),
        manifest_extra: Default::default(),
        like: a.like.plan(opener)?,
    };
    let pb = out::bytes_bar(inp.data_len(), "converting");
    let bar = pb.clone();
    let s = inp
        .write(&a.output, &base, &move |n| bar.inc(n))
        .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    let mut extra = serde_json::Map::new();
    a.like.json(&s, &mut extra);
    report_set_written(&a.output, &s, a.json, extra)?;
    if !a.json {
        a.like.print(&s);
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary of a set written: one line, or a JSON document with `extra`.
pub fn report_set_written(
    output: &Path,
    s: &aero_set::SetWriteSummary,
    json: bool,
    extra: serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    let parts = s.manifest.parts.len();
    if json {
        let mut doc = json!({
            "output": output.display().to_string(),
            "format": "AEROSET",
            "size": s.total_size,
            "parts": parts,
            "shards": s.shards,
            "tensors": s.tensors.len(),
            "model": {"name": s.manifest.model.name, "architecture": s.manifest.model.architecture},
            "files": s.manifest.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            "max_shard_bytes": s.max_shard_bytes,
            "oversized_tensors": super::repack::oversized_json(s.oversized()),
        });
        if let Some(m) = doc.as_object_mut() {
            m.extend(extra);
        }
        super::repack::warn_oversized_tensors(output, s.oversized().collect(), s.max_shard_bytes);
        out::print_json(&doc)?;
    } else {
        super::repack::warn_oversized_tensors(output, s.oversized().collect(), s.max_shard_bytes);
        let files = s.manifest.files.len();
        eprintln!(
            "wrote {} ({}, {} tensors in {} shard{} over {} part{}{})",
            output.display(),
            out::human_bytes(s.total_size),
            s.tensors.len(),
            s.shards,
            if s.shards == 1 { "" } else { "s" },
            parts,
            if parts == 1 { "" } else { "s" },
            match files {
                0 => String::new(),
                1 => ", 1 attached file".into(),
                n => format!(", {n} attached files"),
            }
        );
    }
    Ok(())
}

/// `convert`: sharded safetensors (an index file or a directory holding
/// one) become an AEROSET; everything else goes to the single-file converter.
pub fn convert_auto(
    a: ConvertAutoArgs,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    // What is written is chosen by the output's name, an AEROSET for a
    // sharded checkpoint included (`convert::auto`); `--like` applies when
    // that is an AEROSET.
    super::convert::auto(a.convert, a.like, opener)
}
