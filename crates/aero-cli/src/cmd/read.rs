use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use aero_io::TensorInfo;
use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{ExtractArgs, InspectArgs, ListArgs};
use crate::out;

/// JSON form of a tensor entry (stable schema for `list --json` / `inspect --json`).
pub fn tensor_json(t: &TensorInfo) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), json!(t.name));
    m.insert("dtype".into(), json!(t.dtype.to_string()));
    m.insert("dtype_code".into(), json!(t.dtype.code()));
    m.insert("shape".into(), json!(t.shape));
    m.insert("shard_id".into(), json!(t.shard_id));
    m.insert("data_off".into(), json!(t.data_off));
    m.insert("data_len".into(), json!(t.data_len));
    if let Some(h) = &t.hash_b3 {
        m.insert("hash_b3".into(), json!(hex::encode(h)));
    }
    if !t.extras.is_empty() {
        m.insert("extra".into(), Value::Object(t.extras_json()));
    }
    Value::Object(m)
}

fn shape_str(s: &[u64]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let f = crate::remote::open_file(&a.file)?;
    let idx = f.index()?;
    if a.json {
        let tensors: Vec<Value> = idx.tensors().iter().map(tensor_json).collect();
        out::print_json(&json!({"file": a.file.display().to_string(), "tensors": tensors}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = idx
        .tensors()
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.dtype.to_string(),
                shape_str(&t.shape),
                t.shard_id.to_string(),
                t.data_off.to_string(),
                t.data_len.to_string(),
            ]
        })
        .collect();
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(
        out::table(
            &["name", "dtype", "shape", "shard", "offset", "bytes"],
            &rows,
        )
        .as_bytes(),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let f = crate::remote::open_file(&a.file)?;
    let h = f.header();
    let (name, arch) = f.model();
    let idx = f.index();
    let meta = f.meta_json().unwrap_or(None);
    let chunks: Vec<Value> = f
        .chunks()
        .iter()
        .map(|c| {
            json!({"index": c.index, "fourcc": c.fourcc.to_string(), "name": c.name, "offset": c.offset,
                   "length": c.length, "ulen": c.ulen, "flags": c.flags.0, "blake3": hex::encode(c.blake3)})
        })
        .collect();
    let (count, total) = match &idx {
        Ok(i) => (i.len(), i.tensors().iter().map(|t| t.data_len).sum::<u64>()),
        Err(_) => (0, 0),
    };
    if a.json {
        let tensors: Vec<Value> = match &idx {
            Ok(i) => i
                .tensors()
                .iter()
                .take(a.max_tensors)
                .map(tensor_json)
                .collect(),
            Err(_) => Vec::new(),
        };
        out::print_json(&json!({
            "file": a.file.display().to_string(),
            "size": f.len(),
            "version": [h.version_major, h.version_minor],
            "uuid": hex::encode(h.uuid),
            "model": {"name": name, "architecture": arch},
            "meta": meta,
            "chunks": chunks,
            "tensor_count": count,
            "tensor_bytes": total,
            "tensors": tensors,
            "tidx_error": idx.as_ref().err().map(|e| e.to_string()),
        }))?;
        return Ok(ExitCode::SUCCESS);
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
    println!("  model        {}", name.as_deref().unwrap_or("-"));
    println!("  architecture {}", arch.as_deref().unwrap_or("-"));
    if let Some(Value::Object(m)) = &meta {
        for (k, v) in m {
            if k != "model_name" && k != "architecture" {
                let s = v.to_string();
                let s = if s.len() > 80 {
                    format!("{}…", s.chars().take(77).collect::<String>())
                } else {
                    s
                };
                println!("  meta.{k:<8} {s}");
            }
        }
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
                c.name.clone(),
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
    match &idx {
        Ok(i) => {
            let hist = f.dtype_histogram().unwrap_or_default();
            let hist: Vec<String> = hist.iter().map(|(d, n)| format!("{d}×{n}")).collect();
            println!(
                "tensors: {count} ({}), dtypes: {}",
                out::human_bytes(total),
                hist.join(" ")
            );
            let rows: Vec<Vec<String>> = i
                .tensors()
                .iter()
                .take(a.max_tensors)
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.dtype.to_string(),
                        shape_str(&t.shape),
                        t.shard_id.to_string(),
                        t.data_len.to_string(),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                print!(
                    "{}",
                    out::table(&["name", "dtype", "shape", "shard", "bytes"], &rows)
                );
            }
            if count > a.max_tensors {
                println!(
                    "… {} more (use --max-tensors N or `aerotensor list`)",
                    count - a.max_tensors
                );
            }
        }
        Err(e) => println!("{} {e}", out::red("tensor index unreadable:")),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn extract(a: ExtractArgs) -> anyhow::Result<ExitCode> {
    let f = crate::remote::open_file(&a.file)?;
    let view = f.tensor(&a.tensor)?;
    let to_stdout = match &a.out {
        Some(p) => p.as_os_str() == "-",
        None => {
            if std::io::stdout().is_terminal() {
                bail!(
                    "refusing to write binary tensor bytes to a terminal; give an output path or `-`"
                );
            }
            true
        }
    };
    if to_stdout {
        let mut so = std::io::stdout().lock();
        so.write_all(view.bytes()).context("writing to stdout")?;
        so.flush().context("writing to stdout")?;
    } else if let Some(p) = &a.out {
        let mut w = aero_io::atomic::AtomicFile::create(p)
            .with_context(|| format!("creating {}", p.display()))?;
        w.file()
            .write_all(view.bytes())
            .with_context(|| format!("writing {}", p.display()))?;
        w.commit()
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!(
            "wrote {} bytes of '{}' to {}",
            view.bytes().len(),
            a.tensor,
            p.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
