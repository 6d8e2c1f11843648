//! What a write reports: the one-line summary on stderr or the JSON
//! document, and the tensors larger than `--max-shard-bytes`.

use std::path::Path;

use serde_json::{Value, json};

use crate::out;

/// Prints the one-line summary of a write.
pub(crate) fn report_written(
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
pub(crate) fn warn_oversized_tensors(out_path: &Path, big: Vec<&aero_io::TensorInfo>, max: u64) {
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
pub(crate) fn oversized_json<'a>(
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
pub(crate) fn report_written_with(
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

/// The summary of a set written: one line, or a JSON document with `extra`.
pub(crate) fn report_set_written(
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
            "oversized_tensors": oversized_json(s.oversized()),
        });
        if let Some(m) = doc.as_object_mut() {
            m.extend(extra);
        }
        warn_oversized_tensors(output, s.oversized().collect(), s.max_shard_bytes);
        out::print_json(&doc)?;
    } else {
        warn_oversized_tensors(output, s.oversized().collect(), s.max_shard_bytes);
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
