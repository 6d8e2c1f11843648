//! `inspect` (alias `info`): what a file holds — AERO, GGUF or safetensors
//! (recognised by content), or an AEROSET (then as `inspect-set`).

use std::path::PathBuf;
use std::process::ExitCode;

use aero_convert::describe::{self, Details, InspectedTensors, Inspection, KeyValue, Values};
use clap::Args;
use serde_json::{Value, json};

use super::Run;
use super::common::filter::NameFilter;
use super::common::source::{describe_foreign, foreign, is_set};
use super::common::tables::{
    kvs_json, markdown_inspect, meta_key_values, print_key_values, print_tensor_section, row_json,
    shape_order_note, tensor_json, tensor_rows_table, tensor_table, types_json,
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
        let facts = match foreign(&a.file) {
            Some(format) => Inspection::from(describe_foreign(&a.file, format, a.all_values)?),
            None => {
                let values = if a.all_values {
                    Values::All
                } else {
                    Values::Summary
                };
                Inspection::of_aero(&opener.open_file(&a.file)?, &a.file, values)
            }
        };
        render(&a, &facts)?;
        // A damaged file is shown as far as it can be, then exit 1.
        Ok(if facts.valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }

    fn wants_json(&self) -> bool {
        self.json
    }
}

/// The one renderer of `inspect` for every format: JSON, markdown or text
/// from the facts the library gathered.
fn render(a: &InspectArgs, f: &Inspection) -> anyhow::Result<()> {
    let filter = NameFilter::new(a.filter.as_deref())?;
    let shown = f.tensors.filtered(|n| filter.matches(n));
    let rows = shown.rows();
    let types = aero_convert::describe::histogram(&rows);
    let aero = match &f.details {
        Details::Aero(d) => Some(d.as_ref()),
        _ => None,
    };
    let path = f.path.display().to_string();
    if a.json {
        let tensors: Vec<Value> = match &shown {
            InspectedTensors::Aero(t) => t.iter().take(a.max_tensors).map(tensor_json).collect(),
            InspectedTensors::Rows(t) => t.iter().take(a.max_tensors).map(row_json).collect(),
        };
        let mut doc = serde_json::Map::new();
        doc.insert("input".into(), json!(path));
        doc.insert("format".into(), json!(f.format.name()));
        doc.insert("size".into(), json!(f.size));
        match (&f.details, aero) {
            (_, Some(d)) => {
                doc.insert("version".into(), json!([d.version.0, d.version.1]));
                doc.insert("uuid".into(), json!(hex::encode(d.uuid)));
            }
            (Details::Gguf { version, alignment }, _) => {
                doc.insert("version".into(), json!(version));
                doc.insert("alignment".into(), json!(alignment));
            }
            _ => {
                doc.insert("version".into(), Value::Null);
                doc.insert("alignment".into(), Value::Null);
            }
        }
        doc.insert(
            "model".into(),
            json!({"name": f.model_name, "architecture": f.architecture}),
        );
        if let Some(d) = aero {
            doc.insert("shape_order".into(), json!(d.shape_order.name()));
            doc.insert("meta".into(), json!(d.meta));
            let chunks: Vec<Value> = d.chunks.iter().map(|c| json!({"index": c.index, "fourcc": c.fourcc.to_string(), "name": c.name, "offset": c.offset,
                       "length": c.length, "ulen": c.ulen, "flags": c.flags.0, "blake3": hex::encode(c.blake3)})).collect();
            doc.insert("chunks".into(), json!(chunks));
            let attached: Vec<Value> = d
                .attached
                .iter()
                .map(|x| json!({"name": x.name, "size": x.size, "status": x.status}))
                .collect();
            doc.insert("attached_files".into(), json!(attached));
        }
        doc.insert(
            "key_values".into(),
            json!(f.key_values.as_deref().map(kvs_json)),
        );
        doc.insert("tensor_count".into(), json!(f.tensor_count));
        doc.insert("tensor_bytes".into(), json!(f.tensor_bytes));
        doc.insert("filter".into(), json!(a.filter));
        doc.insert("types".into(), json!(types_json(&types)));
        doc.insert("tensors_shown".into(), json!(tensors.len()));
        doc.insert("truncated".into(), json!(tensors.len() < shown.len()));
        doc.insert("tensors".into(), Value::Array(tensors));
        if let Some(d) = aero {
            doc.insert("tidx_error".into(), json!(d.tidx_error));
        }
        doc.insert("valid".into(), json!(f.valid));
        doc.insert("errors".into(), json!(f.errors));
        return out::print_json(&Value::Object(doc));
    }
    // The facts table: `format`, AERO's `uuid`, `size` (markdown only: the
    // text shows it beside the name), `model`, `architecture`.
    let mut facts = vec![(
        "format",
        match (&f.details, aero) {
            (_, Some(d)) => format!("AERO {}.{}", d.version.0, d.version.1),
            (Details::Gguf { version, alignment }, _) => {
                format!("{} v{version}, alignment {alignment}", f.format.name())
            }
            _ => f.format.name().to_owned(),
        },
    )];
    if let Some(d) = aero {
        facts.push(("uuid", hex::encode(d.uuid)));
    }
    facts.push(("size", out::human_bytes(f.size)));
    facts.push(("model", f.model_name.clone().unwrap_or_else(|| "-".into())));
    facts.push((
        "architecture",
        f.architecture.clone().unwrap_or_else(|| "-".into()),
    ));
    let note = aero.and_then(|d| shape_order_note(d.shape_order));
    if a.markdown {
        if let Some(note) = note {
            facts.push(("shapes", note.to_owned()));
        }
        // An AERO file not converted from GGUF shows its MJSN entries.
        let key_values: Vec<KeyValue> = match (&f.key_values, aero) {
            (Some(kvs), _) => kvs.clone(),
            (None, Some(d)) => meta_key_values(d.meta.as_ref()),
            (None, None) => Vec::new(),
        };
        print!(
            "{}",
            markdown_inspect(&f.path, &key_values, &facts, &types, &rows, a.max_tensors)
        );
        if !f.valid {
            eprintln!(
                "aerotensor: error: {}: damaged: {} (run `validate` for the full report)",
                out::clean(&path),
                out::clean(&f.errors.join("; "))
            );
        }
        return Ok(());
    }
    println!("{}  {}", out::bold(&path), out::human_bytes(f.size));
    for (k, v) in &facts {
        if *k != "size" {
            println!("  {k:<12} {}", out::clean(v));
        }
    }
    if let Some(d) = aero {
        print_aero_header(d, f.key_values.is_some());
    }
    if let Some(note) = note {
        println!("  shapes       {note}");
    }
    if aero.is_some_and(|d| d.set_index) {
        println!("  (AEROSET index file: weights live in the set's parts)");
    }
    println!();
    if let Some(d) = aero {
        print_chunks_and_files(d);
    }
    match (&f.key_values, aero) {
        (Some(kvs), Some(_)) => {
            println!("GGUF key/values kept from the source:");
            print_key_values(kvs);
            println!();
        }
        (Some(kvs), None) => {
            print_key_values(kvs);
            println!();
        }
        (None, _) => {}
    }
    if let Some(e) = aero.and_then(|d| d.key_values_error.as_ref()) {
        println!(
            "{} {}",
            out::red("GGUF key/values unreadable:"),
            out::clean(e)
        );
    }
    match (aero.and_then(|d| d.tidx_error.as_ref()), &shown) {
        (Some(e), _) => println!(
            "{} {}",
            out::red("tensor index unreadable:"),
            out::clean(e)
        ),
        (None, InspectedTensors::Aero(t)) => {
            let table = tensor_table(t, a.max_tensors, None, false);
            print_tensor_section(&rows, f.tensor_count, a.max_tensors, &table);
        }
        (None, InspectedTensors::Rows(t)) => {
            let table = tensor_rows_table(t.iter(), a.max_tensors, false);
            print_tensor_section(&rows, f.tensor_count, a.max_tensors, &table);
        }
    }
    if !f.valid {
        println!();
        for e in &f.errors {
            println!("{} {}", out::red("error:"), out::clean(e));
        }
        println!(
            "{}: {} (run `validate` for the full report)",
            out::clean(&path),
            out::red("DAMAGED")
        );
    }
    Ok(())
}

/// An AERO file's MJSN entries under its facts (`kept`: the GGUF
/// key/values are shown below, not here); a Hugging Face folder layout as
/// its weight files.
fn print_aero_header(d: &describe::AeroDetails, kept: bool) {
    let Some(Value::Object(m)) = &d.meta else {
        return;
    };
    for (k, v) in m {
        let shown_below = k == aero_convert::gguf_convert::GGUF_KEY && kept;
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

/// An AERO file's chunk table, then its attached files.
fn print_chunks_and_files(d: &describe::AeroDetails) {
    let rows: Vec<Vec<String>> = d
        .chunks
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
    if !d.attached.is_empty() {
        let bytes: u64 = d.attached.iter().map(|x| x.size).sum();
        println!(
            "attached files: {} ({}; `extract MODEL --file NAME OUT` writes one)",
            d.attached.len(),
            out::human_bytes(bytes)
        );
        let rows: Vec<Vec<String>> = d
            .attached
            .iter()
            .map(|x| {
                let st = match x.status {
                    "verified" => out::green(x.status),
                    "skipped" => x.status.to_string(),
                    _ => out::red(x.status),
                };
                vec![out::clean(&x.name).into_owned(), x.size.to_string(), st]
            })
            .collect();
        print!("{}", out::table(&["name", "bytes", "blake3"], &rows));
        println!();
    }
}
