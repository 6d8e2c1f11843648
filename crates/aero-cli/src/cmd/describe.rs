//! `inspect` / `list` of GGUF and safetensors files (recognised by content),
//! and the pieces AERO's `inspect` shares with them: key/value tables,
//! the per-type histogram, `--filter`, `--markdown`.

use std::path::Path;
use std::process::ExitCode;

use aero_convert::describe::{self, KeyValue, Model, TensorRow, TypeStats, Values};
use serde_json::{Value, json};

use super::{InspectArgs, ListArgs};
use crate::out;

/// A GGUF or safetensors file (by content), or `None` for anything else:
/// AERO files, sets, URLs and unreadable paths go the AERO way, whose
/// errors say what they are.
pub fn foreign(path: &Path) -> Option<describe::Format> {
    if crate::remote::is_url(path) || !path.is_file() {
        return None;
    }
    match aero_convert::detect(path).ok()? {
        aero_convert::InputKind::Gguf => Some(describe::Format::Gguf),
        aero_convert::InputKind::SafeTensors => Some(describe::Format::SafeTensors),
        _ => None,
    }
}

/// `--filter PATTERN`: a glob (`*`, `?`, `[…]`) matched against the whole
/// tensor name, or, without glob characters, a substring.
pub enum NameFilter {
    /// No filter: every name.
    All,
    /// A substring.
    Contains(String),
    /// A glob over the whole name.
    Glob(glob::Pattern),
}

impl NameFilter {
    pub fn new(pattern: Option<&str>) -> anyhow::Result<NameFilter> {
        Ok(match pattern {
            None => NameFilter::All,
            Some(p) if p.contains(['*', '?', '[']) => NameFilter::Glob(
                glob::Pattern::new(p).map_err(|e| anyhow::anyhow!("--filter {p:?}: {e}"))?,
            ),
            Some(p) => NameFilter::Contains(p.to_owned()),
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameFilter::All => true,
            NameFilter::Contains(s) => name.contains(s.as_str()),
            NameFilter::Glob(g) => g.matches(name),
        }
    }
}

fn values(all: bool) -> Values {
    if all { Values::All } else { Values::Summary }
}

fn open(path: &Path, format: describe::Format, all: bool) -> anyhow::Result<Model> {
    Ok(match format {
        describe::Format::SafeTensors => describe::describe_safetensors(path, values(all))?,
        _ => describe::describe_gguf(path, values(all))?,
    })
}

/// `inspect` of a GGUF or safetensors file.
pub fn inspect(a: &InspectArgs, format: describe::Format) -> anyhow::Result<ExitCode> {
    let m = open(&a.file, format, a.all_values)?;
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

/// `list` of a GGUF or safetensors file.
pub fn list(a: &ListArgs, format: describe::Format) -> anyhow::Result<ExitCode> {
    let m = open(&a.file, format, false)?;
    let filter = NameFilter::new(a.filter.as_deref())?;
    let tensors: Vec<&TensorRow> = m
        .tensors
        .iter()
        .filter(|t| filter.matches(&t.name))
        .collect();
    if tensors.is_empty() {
        no_match(a.filter.as_deref());
    }
    if a.json {
        out::print_json(&json!({
            "input": m.path.display().to_string(),
            "format": m.format.name(),
            "tensors": tensors.iter().map(|t| row_json(t)).collect::<Vec<_>>(),
        }))?;
    } else if a.markdown {
        print!("{}", markdown_tensors(tensors.into_iter(), usize::MAX));
    } else {
        print!(
            "{}",
            tensor_rows_table(tensors.into_iter(), usize::MAX, true)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr that `--filter` left nothing to show (stdout keeps its
/// format: an empty table or `"tensors": []`).
pub fn no_match(filter: Option<&str>) {
    if let Some(f) = filter {
        eprintln!(
            "aerotensor: note: no tensor name matches {}",
            out::clean(&format!("{f:?}"))
        );
    }
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

/// The JSON form of key/values (`inspect --json`, every format).
pub fn kvs_json(kvs: &[KeyValue]) -> Vec<Value> {
    kvs.iter()
        .map(|kv| {
            let mut o = serde_json::Map::new();
            o.insert("key".into(), json!(kv.key));
            o.insert("type".into(), json!(kv.value_type));
            if !kv.array_types.is_empty() {
                o.insert("array_types".into(), json!(kv.array_types));
            }
            o.insert("len".into(), json!(kv.len));
            o.insert("value".into(), kv.value.clone());
            o.insert("truncated".into(), json!(kv.truncated));
            Value::Object(o)
        })
        .collect()
}

/// The JSON form of the per-type histogram.
pub fn types_json(types: &[TypeStats]) -> Vec<Value> {
    types
        .iter()
        .map(|t| {
            json!({"dtype": t.type_name, "count": t.count, "elements": t.elements,
                   "bytes": t.bytes, "bits_per_weight": t.bits_per_weight()})
        })
        .collect()
}

fn row_json(t: &TensorRow) -> Value {
    json!({"name": t.name, "dtype": t.type_name, "shape": t.shape, "bytes": t.bytes,
           "elements": t.elements, "bits_per_weight": t.bits_per_weight(), "offset": t.offset})
}

fn bpw(b: Option<f64>) -> String {
    b.map_or_else(|| "-".into(), |b| format!("{b:.2}"))
}

fn shape(s: &[u64]) -> String {
    let dims: Vec<String> = s.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// A value as one readable line: strings quoted, arrays as `[a, b, …]`,
/// with `…` where the summary cut it.
fn value_text(kv: &KeyValue) -> String {
    fn one(v: &Value) -> String {
        match v {
            Value::String(s) => format!("{s:?}"),
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(one).collect();
                format!("[{}]", parts.join(", "))
            }
            other => other.to_string(),
        }
    }
    let mut s = one(&kv.value);
    if kv.truncated {
        match kv.value {
            Value::Array(_) => {
                s.pop();
                s.push_str(", …]");
            }
            _ => s.push('…'),
        }
    }
    s
}

/// `UINT32`, `[STRING]`, `[[INT32]]` as `gguf-dump` prints them.
fn type_text(kv: &KeyValue) -> String {
    match kv.array_types.split_last() {
        Some((last, outer)) => {
            let depth = outer.iter().filter(|t| **t == "ARRAY").count() + 1;
            format!("{}{last}{}", "[".repeat(depth), "]".repeat(depth))
        }
        None => kv.value_type.to_owned(),
    }
}

/// The key/value table, numbered as `gguf-dump` numbers it.
pub fn print_key_values(kvs: &[KeyValue]) {
    println!("key/values: {}", kvs.len());
    let rows = kv_rows(kvs, &|s| out::clean(s).into_owned());
    if !rows.is_empty() {
        print!("{}", out::table(&KV_HEADER, &rows));
    }
}

/// Columns of the key/value tables (text and markdown), as `gguf-dump`
/// orders them.
const KV_HEADER: [&str; 5] = ["#", "type", "len", "key", "value"];

/// One row per key/value, each cell passed through `cell` (escaping for
/// the terminal or for markdown).
fn kv_rows(kvs: &[KeyValue], cell: &dyn Fn(&str) -> String) -> Vec<Vec<String>> {
    kvs.iter()
        .enumerate()
        .map(|(i, kv)| {
            vec![
                (i + 1).to_string(),
                cell(&type_text(kv)),
                kv.len.to_string(),
                cell(&kv.key),
                cell(&value_text(kv)),
            ]
        })
        .collect()
}

/// The per-type histogram, then the first `max` tensors.
pub fn print_types_and_tensors(types: &[TypeStats], tensors: &[TensorRow], max: usize, all: usize) {
    let total: u64 = tensors.iter().map(|t| t.bytes).sum();
    let shown = if tensors.len() == all {
        format!("tensors: {all}")
    } else {
        format!("tensors: {} of {all} (--filter)", tensors.len())
    };
    println!("{shown} ({})", out::human_bytes(total));
    print!("{}", types_table(types));
    print!("{}", tensor_rows_table(tensors.iter(), max, false));
    if tensors.len() > max {
        println!(
            "… {} more not shown (--all-tensors or --max-tensors N lists them; so does `aerotensor list`)",
            tensors.len() - max
        );
    }
}

/// The per-type histogram as a text table (empty for no tensors), then a
/// blank line.
pub fn types_table(types: &[TypeStats]) -> String {
    let rows = type_rows(types, &|s| out::clean(s).into_owned());
    if rows.is_empty() {
        return String::new();
    }
    let mut s = out::table(&TYPES_HEADER, &rows);
    s.push('\n');
    s
}

/// Columns of the per-type histogram (text and markdown).
const TYPES_HEADER: [&str; 5] = ["type", "tensors", "elements", "size", "bits/weight"];

/// One row per type, the name passed through `cell`.
fn type_rows(types: &[TypeStats], cell: &dyn Fn(&str) -> String) -> Vec<Vec<String>> {
    types
        .iter()
        .map(|t| {
            vec![
                cell(&t.type_name),
                t.count.to_string(),
                t.elements.to_string(),
                out::human_bytes(t.bytes),
                bpw(t.bits_per_weight()),
            ]
        })
        .collect()
}

fn tensor_rows_table<'a>(
    tensors: impl Iterator<Item = &'a TensorRow>,
    max: usize,
    offset: bool,
) -> String {
    let mut header = vec!["name", "type", "shape", "elements"];
    if offset {
        header.push("offset");
    }
    header.extend(["bytes", "bits/weight"]);
    let rows: Vec<Vec<String>> = tensors
        .take(max)
        .map(|t| {
            let mut r = vec![
                out::clean(&t.name).into_owned(),
                t.type_name.clone(),
                shape(&t.shape),
                t.elements.to_string(),
            ];
            if offset {
                r.push(t.offset.to_string());
            }
            r.push(t.bytes.to_string());
            r.push(bpw(t.bits_per_weight()));
            r
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    out::table(&header, &rows)
}

/// A markdown table cell: `|` escaped, control characters (newlines
/// included) shown escaped.
fn md(s: &str) -> String {
    out::clean(s).replace('|', "\\|")
}

fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n", header.join(" | "));
    s.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for r in rows {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

/// `inspect --markdown`: for model cards.
pub fn markdown_inspect(
    m: &Model,
    facts: &[(&str, String)],
    types: &[TypeStats],
    tensors: &[TensorRow],
    max: usize,
) -> String {
    let name = m.path.file_name().map_or_else(
        || m.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut s = format!("# {}\n\n", md(&name));
    let rows: Vec<Vec<String>> = facts
        .iter()
        .map(|(k, v)| vec![(*k).to_owned(), md(v)])
        .collect();
    s.push_str(&md_table(&["field", "value"], &rows));
    s.push_str(&markdown_key_values(&m.key_values));
    s.push_str("\n## Tensor types\n\n");
    s.push_str(&md_table(&TYPES_HEADER, &type_rows(types, &md)));
    s.push_str(&format!("\n## Tensors ({})\n\n", tensors.len()));
    s.push_str(&markdown_tensors(tensors.iter(), max));
    if tensors.len() > max {
        s.push_str(&format!(
            "\n… {} more not shown (--all-tensors lists them)\n",
            tensors.len() - max
        ));
    }
    s
}

/// The `## Key/values` section of `inspect --markdown`.
pub fn markdown_key_values(kvs: &[KeyValue]) -> String {
    format!(
        "\n## Key/values ({})\n\n{}",
        kvs.len(),
        md_table(&KV_HEADER, &kv_rows(kvs, &md))
    )
}

fn markdown_tensors<'a>(tensors: impl Iterator<Item = &'a TensorRow>, max: usize) -> String {
    let rows: Vec<Vec<String>> = tensors
        .take(max)
        .map(|t| {
            vec![
                md(&t.name),
                md(&t.type_name),
                shape(&t.shape),
                t.elements.to_string(),
                t.bytes.to_string(),
                bpw(t.bits_per_weight()),
            ]
        })
        .collect();
    md_table(
        &["name", "type", "shape", "elements", "bytes", "bits/weight"],
        &rows,
    )
}

/// An AERO file's MJSN entries as key/values (type `JSON`) for
/// `inspect --markdown` of files that did not come from GGUF.
pub fn meta_key_values(meta: Option<&Value>) -> Vec<KeyValue> {
    let Some(Value::Object(m)) = meta else {
        return Vec::new();
    };
    m.iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value_type: "JSON",
            array_types: Vec::new(),
            len: 1,
            value: match v {
                Value::String(_) => v.clone(),
                other => Value::String(other.to_string()),
            },
            truncated: false,
        })
        .collect()
}

/// `list --markdown` of an AERO file or set.
pub fn markdown_aero_tensors(tensors: &[aero_io::TensorInfo]) -> String {
    let rows: Vec<TensorRow> = tensors.iter().map(describe::aero_tensor_row).collect();
    markdown_tensors(rows.iter(), usize::MAX)
}
