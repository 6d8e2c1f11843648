//! `inspect` (alias `info`): what a file holds — AERO, GGUF or safetensors
//! (recognised by content), or an AEROSET (then as `inspect-set`).

use std::path::PathBuf;
use std::process::ExitCode;

use aero_convert::describe::{self, Model, TensorRow};
use clap::Args;
use serde_json::{Value, json};

use super::Run;
use super::common::filter::{NameFilter, filtered};
use super::common::source::{describe_foreign, foreign, is_set};
use super::common::tables::{
    kvs_json, markdown_inspect, meta_key_values, print_key_values, print_tensor_section,
    print_types_and_tensors, row_json, row_major, shape_order_note, tensor_json, types_json,
};
use super::inspect_set::InspectSetArgs;
use crate::out;
use crate::remote::Opener;

/// Summarise a file: header, chunks, model, key/values, tensor types, tensors.
///
/// Also reads GGUF and safetensors files directly (by content, without
/// converting them): every key/value typed as gguf-dump types it, arrays
/// summarised (--all-values for whole vocabularies), tensor types (Q4_K,
/// IQ2_XS, F16…), element counts and bits per weight, a per-type size
/// histogram. AERO files converted from GGUF show the kept key/values.
#[derive(Args, Debug)]
#[command(
    visible_alias = "info",
    after_help = "Examples:
  aerotensor inspect model.aero
  aerotensor inspect model.gguf                          # before converting it
  aerotensor inspect model.gguf --filter 'blk.0.*'       # glob over names (else substring)
  aerotensor inspect model.gguf --markdown > CARD.md     # tables for a model card
  aerotensor inspect model.gguf --json --all-values | jq '.key_values[] | select(.key == \"tokenizer.ggml.tokens\")'"
)]
pub(crate) struct InspectArgs {
    /// The file: .aero, .gguf or .safetensors (recognised by content), or an
    /// AEROSET (model.aeroset.json or its directory).
    pub(crate) file: PathBuf,
    /// Show at most N tensors (0 for none); the rest are counted ("… N more
    /// not shown"; `tensors_shown` and `"truncated": true` in JSON).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub(crate) max_tensors: usize,
    /// Show every tensor (overrides --max-tensors).
    #[arg(long)]
    pub(crate) all_tensors: bool,
    /// Only tensors whose name matches: a glob (`blk.0.*`, `*.attn_?.weight`)
    /// over the whole name, or else a substring.
    #[arg(long, value_name = "PATTERN")]
    pub(crate) filter: Option<String>,
    /// Show arrays (tokenizer vocabularies…) and long strings whole instead
    /// of their first items.
    #[arg(long)]
    pub(crate) all_values: bool,
    /// Markdown tables (for a model card) instead of text.
    #[arg(long, conflicts_with = "json")]
    pub(crate) markdown: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub(crate) json: bool,
}

impl Run for InspectArgs {
    fn run(mut self, opener: &Opener) -> anyhow::Result<ExitCode> {
        if self.all_tensors {
            self.max_tensors = usize::MAX;
        }
        let a = self;
        if is_set(&a.file) {
            // An AEROSET has no key/values of its own to show whole, and
            // its summary is not a model-card table yet: say so rather
            // than ignore the flag.
            if a.markdown || a.all_values {
                anyhow::bail!(
                    "--markdown and --all-values apply to .aero, .gguf and .safetensors files; for an AEROSET inspect its index.aero, or use --json"
                );
            }
            return InspectSetArgs {
                set: a.file,
                max_tensors: a.max_tensors,
                all_tensors: a.all_tensors,
                filter: a.filter,
                json: a.json,
            }
            .run(opener);
        }
        if let Some(format) = foreign(&a.file) {
            return inspect_foreign(&a, format);
        }
        inspect_aero(a, opener)
    }

    fn wants_json(&self) -> bool {
        self.json
    }
}

fn inspect_aero(a: InspectArgs, opener: &Opener) -> anyhow::Result<ExitCode> {
    let f = opener.open_file(&a.file)?;
    let h = f.header();
    let (name, arch) = f.model();
    let idx = f.index();
    let meta = f.meta_json().unwrap_or(None);
    let all = idx.as_ref().map_or(0, |i| i.len());
    let order = f.shape_order();
    let shown = match &idx {
        Ok(i) => row_major(filtered(i.tensors(), a.filter.as_deref())?, order),
        Err(_) => Vec::new(),
    };
    let rows: Vec<aero_convert::describe::TensorRow> = shown
        .iter()
        .map(aero_convert::describe::aero_tensor_row)
        .collect();
    let types = aero_convert::describe::histogram(&rows);
    // GGUF key/values kept by the converter, shown as a GGUF file shows them.
    let values = if a.all_values {
        aero_convert::describe::Values::All
    } else {
        aero_convert::describe::Values::Summary
    };
    let kept = meta
        .as_ref()
        .and_then(|m| aero_convert::describe::aero_gguf_key_values(m, all as u64, values));
    let (kept, kept_err) = match kept {
        Some(Ok(k)) => (Some(k), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    // The metadata checks of `validate` (quick): inspect says when what it
    // shows comes from a damaged file, and exits 1.
    let check = aero_io::validate(&f, aero_io::Mode::Quick, &|_| {});
    let chunks: Vec<Value> = f
        .chunks()
        .iter()
        .map(|c| {
            json!({"index": c.index, "fourcc": c.fourcc.to_string(), "name": c.name, "offset": c.offset,
                   "length": c.length, "ulen": c.ulen, "flags": c.flags.0, "blake3": hex::encode(c.blake3)})
        })
        .collect();
    let total = match &idx {
        Ok(i) => i.tensors().iter().map(|t| t.data_len).sum::<u64>(),
        Err(_) => 0,
    };
    // Attached files (FILE chunks), with the status quick validation gave
    // their hashes.
    let attached: Vec<(String, u64, &str)> = f
        .attached_files()
        .iter()
        .map(|c| {
            let status = check
                .chunks
                .iter()
                .find(|r| r.index == c.index)
                .map_or("skipped", |r| r.status);
            (c.name.clone(), c.ulen, status)
        })
        .collect();
    if a.json {
        let tensors: Vec<Value> = shown.iter().take(a.max_tensors).map(tensor_json).collect();
        out::print_json(&json!({
            "input": a.file.display().to_string(),
            "format": "AERO",
            "size": f.len(),
            "version": [h.version_major, h.version_minor],
            "uuid": hex::encode(h.uuid),
            "model": {"name": name, "architecture": arch},
            "shape_order": order.name(),
            "meta": meta,
            "chunks": chunks,
            "attached_files": attached.iter().map(|(n, len, st)| json!({"name": n, "size": len, "status": st})).collect::<Vec<_>>(),
            "key_values": kept.as_deref().map(kvs_json),
            "tensor_count": all,
            "tensor_bytes": total,
            "filter": a.filter,
            "types": types_json(&types),
            "tensors_shown": tensors.len(),
            "truncated": tensors.len() < shown.len(),
            "tensors": tensors,
            "tidx_error": idx.as_ref().err().map(|e| e.to_string()),
            "valid": check.valid,
            "errors": check.errors,
        }))?;
        return Ok(damaged_exit(&check));
    }
    if a.markdown {
        let facts = vec![
            (
                "format",
                format!("AERO {}.{}", h.version_major, h.version_minor),
            ),
            ("uuid", hex::encode(h.uuid)),
            ("size", out::human_bytes(f.len())),
            ("model", name.clone().unwrap_or_else(|| "-".into())),
            ("architecture", arch.clone().unwrap_or_else(|| "-".into())),
        ];
        let mut facts = facts;
        if let Some(note) = shape_order_note(order) {
            facts.push(("shapes", note.to_owned()));
        }
        let model = aero_convert::describe::Model {
            path: a.file.clone(),
            format: aero_convert::describe::Format::Aero,
            size: f.len(),
            version: None,
            alignment: None,
            key_values: kept.unwrap_or_else(|| meta_key_values(meta.as_ref())),
            tensors: Vec::new(),
        };
        print!(
            "{}",
            markdown_inspect(&model, &facts, &types, &rows, a.max_tensors)
        );
        if !check.valid {
            eprintln!(
                "aerotensor: error: {}: damaged: {} (run `validate` for the full report)",
                out::clean(&a.file.display().to_string()),
                out::clean(&check.errors.join("; "))
            );
        }
        return Ok(damaged_exit(&check));
    }
    println!(
        "{}  {}",
        out::bold(&a.file.display().to_string()),
        out::human_bytes(f.len())
    );
    println!(
        "  format       AERO {}.{}",
        h.version_major, h.version_minor
    );
    println!("  uuid         {}", hex::encode(h.uuid));
    println!(
        "  model        {}",
        out::clean(name.as_deref().unwrap_or("-"))
    );
    println!(
        "  architecture {}",
        out::clean(arch.as_deref().unwrap_or("-"))
    );
    if let Some(Value::Object(m)) = &meta {
        for (k, v) in m {
            let shown_below = k == aero_convert::gguf_convert::GGUF_KEY && kept.is_some();
            if k == aero_convert::hf::LAYOUT_KEY {
                // The folder layout: its weight files, not their headers.
                let files: Vec<&str> = v
                    .get("weights")
                    .and_then(Value::as_array)
                    .map(|w| w.iter().filter_map(|x| x.get("file")?.as_str()).collect())
                    .unwrap_or_default();
                println!("  hf weights   {}", out::clean(&files.join(", ")));
                continue;
            }
            if k != "model_name" && k != "architecture" && !shown_below {
                let s = v.to_string();
                let s = if s.len() > 80 {
                    format!("{}…", s.chars().take(77).collect::<String>())
                } else {
                    s
                };
                println!("  meta.{:<8} {}", out::clean(k), out::clean(&s));
            }
        }
    }
    if let Some(note) = shape_order_note(order) {
        println!("  shapes       {note}");
    }
    if f.is_set_index() {
        println!("  (AEROSET index file: weights live in the set's parts)");
    }
    println!();
    let rows: Vec<Vec<String>> = f
        .chunks()
        .iter()
        .map(|c| {
            vec![
                c.index.to_string(),
                c.fourcc.to_string(),
                out::clean(&c.name).into_owned(),
                c.offset.to_string(),
                c.length.to_string(),
                c.ulen.to_string(),
                format!("{:#x}", c.flags.0),
            ]
        })
        .collect();
    print!(
        "{}",
        out::table(
            &["#", "fourcc", "name", "offset", "stored", "ulen", "flags"],
            &rows
        )
    );
    println!();
    if !attached.is_empty() {
        let bytes: u64 = attached.iter().map(|(_, n, _)| n).sum();
        println!(
            "attached files: {} ({}; `extract MODEL --file NAME OUT` writes one)",
            attached.len(),
            out::human_bytes(bytes)
        );
        let rows: Vec<Vec<String>> = attached
            .iter()
            .map(|(n, len, st)| {
                let st = match *st {
                    "verified" => out::green(st),
                    "skipped" => (*st).to_string(),
                    _ => out::red(st),
                };
                vec![out::clean(n).into_owned(), len.to_string(), st]
            })
            .collect();
        print!("{}", out::table(&["name", "bytes", "blake3"], &rows));
        println!();
    }
    if let Some(kvs) = &kept {
        println!("GGUF key/values kept from the source:");
        print_key_values(kvs);
        println!();
    }
    if let Some(e) = &kept_err {
        println!(
            "{} {}",
            out::red("GGUF key/values unreadable:"),
            out::clean(e)
        );
    }
    match &idx {
        Ok(_) => print_tensor_section(&shown, all, a.max_tensors, None),
        Err(e) => println!(
            "{} {}",
            out::red("tensor index unreadable:"),
            out::clean(&e.to_string())
        ),
    }
    if !check.valid {
        println!();
        for e in &check.errors {
            println!("{} {}", out::red("error:"), out::clean(e));
        }
        println!(
            "{}: {} (run `validate` for the full report)",
            out::clean(&a.file.display().to_string()),
            out::red("DAMAGED")
        );
    }
    Ok(damaged_exit(&check))
}

/// `inspect` shows what it can of a damaged file, then exits 1.
fn damaged_exit(check: &aero_io::Report) -> ExitCode {
    if check.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `inspect` of a GGUF or safetensors file.
fn inspect_foreign(a: &InspectArgs, format: describe::Format) -> anyhow::Result<ExitCode> {
    let m = describe_foreign(&a.file, format, a.all_values)?;
    let filter = NameFilter::new(a.filter.as_deref())?;
    let tensors: Vec<TensorRow> = m
        .tensors
        .iter()
        .filter(|t| filter.matches(&t.name))
        .cloned()
        .collect();
    let types = describe::histogram(&tensors);
    let (name, arch) = model_names(&m);
    if a.json {
        let listed: Vec<Value> = tensors.iter().take(a.max_tensors).map(row_json).collect();
        out::print_json(&json!({
            "input": m.path.display().to_string(),
            "format": m.format.name(),
            "size": m.size,
            "version": m.version,
            "alignment": m.alignment,
            "model": {"name": name, "architecture": arch},
            "key_values": kvs_json(&m.key_values),
            "tensor_count": m.tensors.len(),
            "tensor_bytes": m.tensors.iter().map(|t| t.bytes).sum::<u64>(),
            "filter": a.filter,
            "types": types_json(&types),
            "tensors_shown": listed.len(),
            "truncated": listed.len() < tensors.len(),
            "tensors": listed,
            "valid": true,
            "errors": [],
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut facts = vec![(
        "format",
        match (m.version, m.alignment) {
            (Some(v), Some(al)) => format!("{} v{v}, alignment {al}", m.format.name()),
            _ => m.format.name().to_owned(),
        },
    )];
    facts.push(("size", out::human_bytes(m.size)));
    facts.push(("model", name.unwrap_or_else(|| "-".into())));
    facts.push(("architecture", arch.unwrap_or_else(|| "-".into())));
    if a.markdown {
        print!(
            "{}",
            markdown_inspect(&m, &facts, &types, &tensors, a.max_tensors)
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}  {}",
        out::bold(&m.path.display().to_string()),
        out::human_bytes(m.size)
    );
    for (k, v) in &facts[..] {
        if *k != "size" {
            println!("  {k:<12} {}", out::clean(v));
        }
    }
    println!();
    print_key_values(&m.key_values);
    println!();
    print_types_and_tensors(&types, &tensors, a.max_tensors, m.tensors.len());
    Ok(ExitCode::SUCCESS)
}

/// Model name and architecture from the usual keys (GGUF `general.*`,
/// safetensors `__metadata__` has none by convention).
fn model_names(m: &Model) -> (Option<String>, Option<String>) {
    let get = |k: &str| {
        m.key_values
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_str().map(str::to_owned))
    };
    (get("general.name"), get("general.architecture"))
}
