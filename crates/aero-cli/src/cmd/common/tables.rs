//! Presentation of what files hold, shared by `inspect`, `list`,
//! `inspect-set` and `diff`: tensor, key/value and per-type tables (text and
//! markdown) and their JSON forms.

use std::path::Path;

use aero_convert::describe::{self, KeyValue, TensorRow, TypeStats};
use aero_io::TensorInfo;
use serde_json::{Value, json};

use crate::out;

/// JSON form of an AERO tensor entry (the `list --json` / `inspect --json`
/// schema, docs/CLI.md "JSON vocabulary"): the facts every format shares
/// (`name`, `dtype` in the shared vocabulary, `shape`, `bytes`) first, then
/// AERO's own TIDX fields (`dtype_code`, `ggml_type` of a packed GGUF
/// tensor, `shard_id`, `data_off`, `hash_b3`, `extra`).
pub(crate) fn tensor_json(t: &TensorInfo) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), json!(t.name));
    m.insert("dtype".into(), json!(aero_convert::describe::dtype_name(t)));
    m.insert("shape".into(), json!(t.shape));
    m.insert("bytes".into(), json!(t.data_len));
    m.insert("dtype_code".into(), json!(t.dtype.code()));
    if let Some(g) = t.ggml_type().filter(|_| t.dtype == aero_io::DType::Packed) {
        m.insert("ggml_type".into(), json!(g.name));
    }
    m.insert("shard_id".into(), json!(t.shard_id));
    m.insert("data_off".into(), json!(t.data_off));
    if let Some(h) = &t.hash_b3 {
        m.insert("hash_b3".into(), json!(hex::encode(h)));
    }
    if !t.extras.is_empty() {
        m.insert("extra".into(), Value::Object(t.extras_json()));
    }
    Value::Object(m)
}

/// JSON form of a tensor of an AEROSET (`list --json`, `inspect --json`):
/// [`tensor_json`] and the `part` holding it.
pub(crate) fn set_tensor_json(set: &aero_set::AeroSet, t: &TensorInfo) -> Value {
    let mut v = tensor_json(t);
    v["part"] = json!(super::source::part_path(set, t.shard_id));
    v
}

/// A shape as `[a, b, c]`.
pub(crate) fn shape_str(s: &[u64]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The tensor table of `list`, `inspect` and their AEROSET forms: name,
/// dtype, shape, shard, then the part (sets), the offset (`list`) and the
/// byte length; names escaped for the terminal.
pub(crate) fn tensor_table(
    tensors: &[TensorInfo],
    max: usize,
    part: Option<&dyn Fn(u64) -> String>,
    offset: bool,
) -> String {
    let mut header = vec!["name", "dtype", "shape", "shard"];
    if part.is_some() {
        header.push("part");
    }
    if offset {
        header.push("offset");
    }
    header.push("bytes");
    let rows: Vec<Vec<String>> = tensors
        .iter()
        .take(max)
        .map(|t| {
            let mut r = vec![
                out::clean(&t.name).into_owned(),
                aero_convert::describe::aero_tensor_row(t).type_name,
                shape_str(&t.shape),
                t.shard_id.to_string(),
            ];
            if let Some(p) = part {
                r.push(out::clean(&p(t.shard_id)).into_owned());
            }
            if offset {
                r.push(t.data_off.to_string());
            }
            r.push(t.data_len.to_string());
            r
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    out::table(&header, &rows)
}

/// The tensor part of `inspect` (files and sets): the count and size, the
/// per-type histogram with bits per weight, `table` (the first `max`
/// tensors, as the format shows them) and, past `max`, how to see the
/// rest. `shown` is what `--filter` kept of `all` tensors.
pub(crate) fn print_tensor_section(shown: &[TensorRow], all: usize, max: usize, table: &str) {
    let total: u64 = shown.iter().map(|t| t.bytes).sum();
    let count = if shown.len() == all {
        all.to_string()
    } else {
        format!("{} of {all} (--filter)", shown.len())
    };
    println!("tensors: {count} ({})", out::human_bytes(total));
    print!("{}", types_table(&describe::histogram(shown)));
    print!("{table}");
    if shown.len() > max {
        println!(
            "… {} more not shown (--all-tensors or --max-tensors N lists them; so does `aerotensor list`)",
            shown.len() - max
        );
    }
}

/// `tensors` as `list` and `inspect` show them: shapes row-major whatever
/// the file stores ([`aero_io::ShapeOrder`]; a reference GGUF-origin file
/// stores GGUF order). Copies for display only, never read through.
pub(crate) fn row_major(tensors: Vec<TensorInfo>, order: aero_io::ShapeOrder) -> Vec<TensorInfo> {
    tensors
        .into_iter()
        .map(|mut t| {
            t.shape = t.row_major_shape(order);
            t
        })
        .collect()
}

/// The line that says a file stores GGUF order (nothing for row-major).
pub(crate) fn shape_order_note(order: aero_io::ShapeOrder) -> Option<&'static str> {
    (order == aero_io::ShapeOrder::Gguf).then_some(
        "stored in GGUF order, innermost dimension first (written by the reference GGUF converter, spec §15); shown row-major",
    )
}

/// The JSON form of key/values (`inspect --json`, every format).
pub(crate) fn kvs_json(kvs: &[KeyValue]) -> Vec<Value> {
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
pub(crate) fn types_json(types: &[TypeStats]) -> Vec<Value> {
    types
        .iter()
        .map(|t| {
            json!({"dtype": t.type_name, "count": t.count, "elements": t.elements,
                   "bytes": t.bytes, "bits_per_weight": t.bits_per_weight()})
        })
        .collect()
}

/// The JSON form of a GGUF or safetensors tensor (`list`, `inspect`).
pub(crate) fn row_json(t: &TensorRow) -> Value {
    json!({"name": t.name, "dtype": t.type_name, "shape": t.shape, "bytes": t.bytes,
           "elements": t.elements, "bits_per_weight": t.bits_per_weight(), "offset": t.offset})
}

fn bpw(b: Option<f64>) -> String {
    b.map_or_else(|| "-".into(), |b| format!("{b:.2}"))
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
pub(crate) fn print_key_values(kvs: &[KeyValue]) {
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

/// The per-type histogram as a text table (empty for no tensors), then a
/// blank line.
pub(crate) fn types_table(types: &[TypeStats]) -> String {
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

/// The tensor table of a GGUF or safetensors file (`offset`: with the
/// offset column, as `list` shows it).
pub(crate) fn tensor_rows_table<'a>(
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
                shape_str(&t.shape),
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
pub(crate) fn markdown_inspect(
    path: &Path,
    key_values: &[KeyValue],
    facts: &[(&str, String)],
    types: &[TypeStats],
    tensors: &[TensorRow],
    max: usize,
) -> String {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut s = format!("# {}\n\n", md(&name));
    let rows: Vec<Vec<String>> = facts
        .iter()
        .map(|(k, v)| vec![(*k).to_owned(), md(v)])
        .collect();
    s.push_str(&md_table(&["field", "value"], &rows));
    s.push_str(&markdown_key_values(key_values));
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
pub(crate) fn markdown_key_values(kvs: &[KeyValue]) -> String {
    format!(
        "\n## Key/values ({})\n\n{}",
        kvs.len(),
        md_table(&KV_HEADER, &kv_rows(kvs, &md))
    )
}

/// The tensor table of `list --markdown` and `inspect --markdown`.
pub(crate) fn markdown_tensors<'a>(
    tensors: impl Iterator<Item = &'a TensorRow>,
    max: usize,
) -> String {
    let rows: Vec<Vec<String>> = tensors
        .take(max)
        .map(|t| {
            vec![
                md(&t.name),
                md(&t.type_name),
                shape_str(&t.shape),
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
pub(crate) fn meta_key_values(meta: Option<&Value>) -> Vec<KeyValue> {
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
pub(crate) fn markdown_aero_tensors(tensors: &[aero_io::TensorInfo]) -> String {
    let rows: Vec<TensorRow> = tensors.iter().map(describe::aero_tensor_row).collect();
    markdown_tensors(rows.iter(), usize::MAX)
}
