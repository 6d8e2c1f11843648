//! `list`: every tensor of an AERO, GGUF or safetensors file, or of an AEROSET.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use aero_convert::describe::{self, TensorRow};
use clap::Args;
use serde_json::{Value, json};

use super::Run;
use super::common::filter::{NameFilter, filtered, no_match};
use super::common::source::{describe_foreign, foreign, is_set, part_path};
use super::common::tables::{
    markdown_aero_tensors, markdown_tensors, row_json, row_major, set_tensor_json, shape_order_note,
    tensor_rows_table, tensor_table,
};
use crate::out;
use crate::remote::Opener;

/// List every tensor: name, dtype, shape, shard, offset, length.
///
/// GGUF and safetensors files are listed too: name, type, shape,
/// elements, offset, bytes, bits per weight.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  aerotensor list model.aero
  aerotensor list model.gguf --filter attn_q            # substring
  aerotensor list model.aero --filter '*.ffn_*' --json | jq -r '.tensors[].name'
  aerotensor list model.safetensors --markdown")]
pub(crate) struct ListArgs {
    /// The file: .aero, .gguf or .safetensors (recognised by content), or an
    /// AEROSET (model.aeroset.json or its directory).
    pub(crate) file: PathBuf,
    /// Only tensors whose name matches: a glob (`blk.0.*`) over the whole
    /// name, or else a substring.
    #[arg(long, value_name = "PATTERN")]
    pub(crate) filter: Option<String>,
    /// A markdown table instead of text.
    #[arg(long, conflicts_with = "json")]
    pub(crate) markdown: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub(crate) json: bool,
}

impl Run for ListArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        if is_set(&self.file) {
            return list_set(self, opener);
        }
        if let Some(format) = foreign(&self.file) {
            return list_foreign(&self, format);
        }
        list_aero(self, opener)
    }

    fn wants_json(&self) -> bool {
        self.json
    }
}

fn list_aero(a: ListArgs, opener: &Opener) -> anyhow::Result<ExitCode> {
    let f = opener.open_file(&a.file)?;
    let filter = NameFilter::new(a.filter.as_deref())?;
    let order = f.shape_order();
    if a.json {
        return list_json(&f, &a.file, &filter, order);
    }
    let idx = f.index()?;
    let shown = row_major(filtered(idx.tensors(), a.filter.as_deref())?, order);
    if let Some(note) = shape_order_note(order) {
        eprintln!(
            "aerotensor: note: {}: shapes {note}",
            out::clean(&a.file.display().to_string())
        );
    }
    if shown.is_empty() {
        no_match(a.filter.as_deref());
    }
    let text = if a.markdown {
        markdown_aero_tensors(&shown)
    } else {
        tensor_table(&shown, usize::MAX, None, true)
    };
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn list_set(a: ListArgs, opener: &Opener) -> anyhow::Result<ExitCode> {
    let set = opener.open_set(&a.file)?;
    let idx = set.index()?;
    let shown = filtered(idx.tensors(), a.filter.as_deref())?;
    if a.json {
        let tensors: Vec<Value> = shown
            .iter()
            .map(|t| set_tensor_json(&set, t))
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
        markdown_aero_tensors(&shown)
    } else {
        tensor_table(&shown, usize::MAX, Some(&part), true)
    };
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// `list` of a GGUF or safetensors file.
fn list_foreign(a: &ListArgs, format: describe::Format) -> anyhow::Result<ExitCode> {
    let m = describe_foreign(&a.file, format, false)?;
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

/// `list --json` without building an owned index: the verified TIDX payload
/// is walked once and each entry written as it is read (100,000 tensors in
/// tens of milliseconds, memory independent of the tensor count). The schema
/// is the one `tables::tensor_json` produces.
fn list_json(
    f: &aero_io::AeroFile,
    file: &std::path::Path,
    filter: &NameFilter,
    order: aero_io::ShapeOrder,
) -> anyhow::Result<ExitCode> {
    let payload = f.tidx_payload()?;
    let tidx_err = |e: aero_format::Error| anyhow::anyhow!("{}: TIDX: {e}", f.path().display());
    let iter = aero_format::TensorIter::new(&payload).map_err(tidx_err)?;
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, raw_stdout(&mut lock));
    w.write_all(b"{\"input\":")?;
    serde_json::to_writer(&mut w, &file.display().to_string())?;
    w.write_all(b",\"format\":\"AERO\",\"shape_order\":\"")?;
    w.write_all(order.name().as_bytes())?;
    w.write_all(b"\",\"tensors\":[")?;
    let mut dims: Vec<u64> = Vec::new();
    let mut first = true;
    for rec in iter {
        let t = rec.map_err(tidx_err)?;
        if !filter.matches(t.name) {
            continue;
        }
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        let extra: Option<serde_json::Map<String, Value>> = t.has_extras.then(|| {
            t.extras()
                .map(|(k, v)| {
                    (
                        k.to_owned(),
                        aero_io::meta::msgpack_to_json(v).unwrap_or(Value::Null),
                    )
                })
                .collect()
        });
        // The dtype in the shared vocabulary (as `describe::dtype_name`):
        // a packed tensor by its ggml type or its safetensors dtype.
        let quant = |key: &str| {
            extra
                .as_ref()
                .and_then(|e| e.get("quant_params"))
                .and_then(|q| q.get(key))
                .cloned()
        };
        let ggml = (t.dtype == aero_format::DType::Packed)
            .then(|| quant("ggml_type"))
            .flatten()
            .and_then(|v| v.as_u64())
            .and_then(|id| u32::try_from(id).ok())
            .and_then(aero_format::GgmlType::from_id);
        w.write_all(b"{\"name\":")?;
        serde_json::to_writer(&mut w, t.name)?;
        w.write_all(b",\"dtype\":")?;
        match (t.dtype, ggml) {
            (aero_format::DType::Packed, Some(g)) => {
                serde_json::to_writer(&mut w, &aero_convert::describe::ggml_dtype_name(g))?
            }
            (aero_format::DType::Packed, None) => {
                match quant(aero_convert::safetensors::DTYPE_PARAM) {
                    Some(Value::String(n)) => serde_json::to_writer(
                        &mut w,
                        &aero_convert::describe::safetensors_dtype_name(&n),
                    )?,
                    _ => serde_json::to_writer(&mut w, &t.dtype.to_string())?,
                }
            }
            (aero_format::DType::Unknown(_), _) => {
                serde_json::to_writer(&mut w, &t.dtype.to_string())?
            }
            (d, _) => {
                w.write_all(b"\"")?;
                w.write_all(d.name().as_bytes())?;
                w.write_all(b"\"")?;
            }
        }
        w.write_all(b",\"shape\":[")?;
        dims.clear();
        for d in t.shape.iter() {
            dims.push(d.map_err(tidx_err)?);
        }
        if order == aero_io::ShapeOrder::Gguf {
            dims.reverse(); // row-major, as TensorInfo::row_major_shape
        }
        for (k, d) in dims.iter().enumerate() {
            if k > 0 {
                w.write_all(b",")?;
            }
            put_u64(&mut w, *d)?;
        }
        w.write_all(b"],\"bytes\":")?;
        put_u64(&mut w, t.data_len)?;
        w.write_all(b",\"dtype_code\":")?;
        put_u64(&mut w, u64::from(t.dtype.code()))?;
        if let Some(g) = ggml {
            w.write_all(b",\"ggml_type\":")?;
            serde_json::to_writer(&mut w, g.name)?;
        }
        w.write_all(b",\"shard_id\":")?;
        put_u64(&mut w, t.shard_id)?;
        w.write_all(b",\"data_off\":")?;
        put_u64(&mut w, t.data_off)?;
        if let Some(h) = t.hash_b3 {
            // A fixed buffer: `hex::encode` builds a String char by char,
            // which was an eighth of `list --json` on 100k tensors.
            let mut hexbuf = [0u8; 64];
            hex::encode_to_slice(h, &mut hexbuf).map_err(std::io::Error::other)?;
            w.write_all(b",\"hash_b3\":\"")?;
            w.write_all(&hexbuf)?;
            w.write_all(b"\"")?;
        }
        if let Some(extra) = &extra {
            w.write_all(b",\"extra\":")?;
            serde_json::to_writer(&mut w, extra)?;
        }
        w.write_all(b"}")?;
    }
    w.write_all(b"]}\n")?;
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Standard output without std's line buffering (which scans every write
/// for a newline: an eighth of `list --json`), as a duplicate of descriptor
/// 1 written while `lock` is held; the locked handle itself elsewhere.
fn raw_stdout<'a>(lock: &'a mut std::io::StdoutLock<'static>) -> Box<dyn Write + 'a> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = lock.as_fd().try_clone_to_owned() {
            return Box::new(std::fs::File::from(fd));
        }
    }
    Box::new(lock)
}

/// Writes a decimal integer without going through `fmt` (hot in `list --json`).
fn put_u64(w: &mut impl Write, mut v: u64) -> std::io::Result<()> {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    w.write_all(&buf[i..])
}
