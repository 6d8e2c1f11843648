use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use aero_io::TensorInfo;
use anyhow::bail;
use serde_json::{Value, json};

use super::{ExtractArgs, InspectArgs, ListArgs};
use crate::out;

/// JSON form of an AERO tensor entry (the `list --json` / `inspect --json`
/// schema, docs/CLI.md "JSON vocabulary"): the facts every format shares
/// (`name`, `dtype` in the shared vocabulary, `shape`, `bytes`) first, then
/// AERO's own TIDX fields (`dtype_code`, `ggml_type` of a packed GGUF
/// tensor, `shard_id`, `data_off`, `hash_b3`, `extra`).
pub fn tensor_json(t: &TensorInfo) -> Value {
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

fn shape_str(s: &[u64]) -> String {
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
pub fn tensor_table(
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
/// per-type histogram with bits per weight, the first `max` tensors, and,
/// past `max`, how to see the rest. `shown` is what `--filter` kept of
/// `all` tensors.
pub fn print_tensor_section(
    shown: &[TensorInfo],
    all: usize,
    max: usize,
    part: Option<&dyn Fn(u64) -> String>,
) {
    let rows: Vec<aero_convert::describe::TensorRow> = shown
        .iter()
        .map(aero_convert::describe::aero_tensor_row)
        .collect();
    let total: u64 = shown.iter().map(|t| t.data_len).sum();
    let count = if shown.len() == all {
        all.to_string()
    } else {
        format!("{} of {all} (--filter)", shown.len())
    };
    println!("tensors: {count} ({})", out::human_bytes(total));
    print!(
        "{}",
        super::describe::types_table(&aero_convert::describe::histogram(&rows))
    );
    print!("{}", tensor_table(shown, max, part, false));
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
pub fn row_major(tensors: Vec<TensorInfo>, order: aero_io::ShapeOrder) -> Vec<TensorInfo> {
    tensors
        .into_iter()
        .map(|mut t| {
            t.shape = t.row_major_shape(order);
            t
        })
        .collect()
}

/// The line that says a file stores GGUF order (nothing for row-major).
pub fn shape_order_note(order: aero_io::ShapeOrder) -> Option<&'static str> {
    (order == aero_io::ShapeOrder::Gguf).then_some(
        "stored in GGUF order, innermost dimension first (written by the reference GGUF converter, spec §15); shown row-major",
    )
}

/// The tensors `--filter` keeps.
pub fn filtered(tensors: &[TensorInfo], pattern: Option<&str>) -> anyhow::Result<Vec<TensorInfo>> {
    let f = super::describe::NameFilter::new(pattern)?;
    Ok(tensors
        .iter()
        .filter(|t| f.matches(&t.name))
        .cloned()
        .collect())
}

pub fn list(a: ListArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    if let Some(format) = super::describe::foreign(&a.file) {
        return super::describe::list(&a, format);
    }
    let f = opener.open_file(&a.file)?;
    let filter = super::describe::NameFilter::new(a.filter.as_deref())?;
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
        super::describe::no_match(a.filter.as_deref());
    }
    let text = if a.markdown {
        super::describe::markdown_aero_tensors(&shown)
    } else {
        tensor_table(&shown, usize::MAX, None, true)
    };
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(a: InspectArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    if let Some(format) = super::describe::foreign(&a.file) {
        return super::describe::inspect(&a, format);
    }
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
            "key_values": kept.as_deref().map(super::describe::kvs_json),
            "tensor_count": all,
            "tensor_bytes": total,
            "filter": a.filter,
            "types": super::describe::types_json(&types),
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
            key_values: kept.unwrap_or_else(|| super::describe::meta_key_values(meta.as_ref())),
            tensors: Vec::new(),
        };
        print!(
            "{}",
            super::describe::markdown_inspect(&model, &facts, &types, &rows, a.max_tensors)
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
        super::describe::print_key_values(kvs);
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

pub fn extract(a: ExtractArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    let f = opener.open_file(&a.file)?;
    let dest = output_dest(a.out.as_deref())?;
    let info = f.tensor_info(a.tensor_name())?;
    let pb = out::bytes_bar(info.data_len, "extracting");
    let n = aero_io::extract(&f, info, &dest, &copy_options(a.verify, true, &pb))?;
    pb.finish_and_clear();
    report_extracted(a.tensor_name(), n, &dest);
    Ok(ExitCode::SUCCESS)
}

/// Where `extract` / `fetch-tensor` write: the path given, or `-` (stdout)
/// when none is given and stdout is not a terminal.
pub fn output_dest(out: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    let dest = match out {
        Some(p) => p.to_path_buf(),
        None => "-".into(),
    };
    if aero_io::output::is_stdout(&dest) && std::io::stdout().is_terminal() {
        bail!(
            "refusing to write binary tensor bytes to a terminal; give an output path or `-` with a redirect"
        );
    }
    Ok(dest)
}

/// Copy options from the common flags, counting progress on `pb`.
pub fn copy_options<'p>(
    v: super::VerifyArgs,
    durable: bool,
    pb: &'p indicatif::ProgressBar,
) -> aero_io::CopyOptions<'p> {
    if v.no_verify {
        eprintln!(
            "aerotensor: warning: --no-verify: tensor bytes are written without checking them"
        );
    }
    aero_io::CopyOptions {
        verify: !v.no_verify,
        durable,
        progress: Box::new(move |n| pb.inc(n)),
    }
}

/// The one-line report of an extraction (nothing when the bytes went to stdout).
pub fn report_extracted(tensor: &str, n: u64, dest: &std::path::Path) {
    if !aero_io::output::is_stdout(dest) {
        eprintln!(
            "wrote {n} bytes of '{}' to {}",
            out::clean(tensor),
            out::clean(&dest.display().to_string())
        );
    }
}

/// `list --json` without building an owned index: the verified TIDX payload
/// is walked once and each entry written as it is read (100,000 tensors in
/// tens of milliseconds, memory independent of the tensor count). The schema
/// is the one [`tensor_json`] produces.
fn list_json(
    f: &aero_io::AeroFile,
    file: &std::path::Path,
    filter: &super::describe::NameFilter,
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

/// A file or a set, opened as `list` / `extract` open them; or, for
/// `diff`, a safetensors or GGUF file.
pub enum Source {
    /// An AERO file or set, local or remote.
    Model(Box<dyn aero_convert::hf::ModelSource>),
    /// A safetensors or GGUF file, read as `convert` would hold it.
    Foreign(Box<aero_convert::foreign::ForeignFile>),
}

impl Source {
    pub fn open(p: &std::path::Path, opener: &crate::remote::Opener) -> anyhow::Result<Source> {
        Ok(Source::Model(Box::new(opener.open(p)?)))
    }

    /// A side of `diff`: a set or a URL as [`Source::open`] opens them, or
    /// a local file recognised by its content — AERO, or safetensors / GGUF
    /// read as `convert` would hold them ([`aero_convert::foreign`]). An
    /// input that is none of these (a sharded checkpoint, an unrecognised
    /// or missing file, a URL that is not AERO) is exit 2, never 1: for
    /// `diff`, 1 means "different" or damaged content.
    pub fn open_for_diff(
        p: &std::path::Path,
        opener: &crate::remote::Opener,
    ) -> anyhow::Result<Source> {
        use aero_convert::InputKind;
        let not_aero = |e: anyhow::Error| match e.downcast_ref::<aero_io::Error>() {
            // Valid data of another kind, not damage: a usage error.
            Some(n @ aero_io::Error::NotAero { .. }) => anyhow::anyhow!("{n}"),
            _ => e,
        };
        if super::set::is_set(p) || crate::remote::is_url(p) {
            return Source::open(p, opener).map_err(not_aero);
        }
        match aero_convert::detect(p)? {
            InputKind::Aero => Source::open(p, opener),
            InputKind::SafeTensors | InputKind::Gguf => Ok(Source::Foreign(Box::new(
                aero_convert::foreign::ForeignFile::open(p)?,
            ))),
            other => bail!(
                "{}: is {} input; diff compares AERO files and sets, safetensors and GGUF files",
                p.display(),
                other.name()
            ),
        }
    }

    pub fn as_dyn(&self) -> &dyn aero_convert::state_dict::TensorSource {
        match self {
            Source::Model(m) => m.as_ref(),
            Source::Foreign(f) => f.as_ref(),
        }
    }

    /// The AERO file or set (a model has attached files and a recorded
    /// folder layout; safetensors and GGUF files have neither).
    pub fn as_model(&self) -> anyhow::Result<&dyn aero_convert::hf::ModelSource> {
        match self {
            Source::Model(m) => Ok(m.as_ref()),
            Source::Foreign(f) => bail!("{}: is not an AERO file or set", f.path().display()),
        }
    }
}

/// `extract --as`: the tensor's values as floats, written atomically.
pub fn extract_floats(a: ExtractArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    let fmt: aero_convert::floats::FloatFormat = match a.as_float {
        Some(f) => f.into(),
        None => bail!("--as was not given"),
    };
    let src = Source::open(&a.file, opener)?;
    let dest = output_dest(a.out.as_deref())?;
    // Any file the input reads (a set's manifest, index and parts too).
    src.as_dyn().refuse_as_output(&dest)?;
    let elements = src
        .as_dyn()
        .tensor_index()
        .ok()
        .and_then(|i| i.get(a.tensor_name()).and_then(TensorInfo::elements))
        .unwrap_or(0);
    let pb = out::bytes_bar(elements.saturating_mul(fmt.size()), "converting");
    // Unspooled: the tensor is verified whole before the first value is
    // written, so a pipe or device gets the values as they are decoded
    // (a 7 GiB f32 output is not first copied to the temporary directory).
    let mut out = aero_io::output::Output::create_unspooled(&dest)?;
    let n = aero_convert::floats::write_tensor(
        src.as_dyn(),
        a.tensor_name(),
        fmt,
        out.file(),
        &dest,
        &|n| pb.inc(n),
    )
    .map_err(|e| anyhow::Error::new(e).context(a.file.display().to_string()))?;
    out.commit(true)?;
    pb.finish_and_clear();
    report_extracted(a.tensor_name(), n, &dest);
    Ok(ExitCode::SUCCESS)
}

/// `extract MODEL --file NAME [OUT]`: an attached file, verified, written
/// atomically (or to stdout).
pub fn extract_attached(
    a: ExtractArgs,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    let name = a.attached.as_deref().unwrap_or_default();
    if a.tensor.is_some() && a.out.is_some() {
        bail!("with --file, give the model and the output only: `extract MODEL --file {name} OUT`");
    }
    let out_path = a.out.clone().or_else(|| a.tensor.as_ref().map(Into::into));
    let src = Source::open(&a.file, opener)?;
    let dest = output_dest(out_path.as_deref())?;
    src.as_dyn().refuse_as_output(&dest)?;
    let bytes = src.as_model()?.attached_bytes(name)?;
    let mut out = aero_io::output::Output::create(&dest)?;
    out.file()
        .write_all(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dest.display()))?;
    out.commit(true)?;
    report_extracted(name, bytes.len() as u64, &dest);
    Ok(ExitCode::SUCCESS)
}

/// `diff A B`: exit 0 identical, 1 different.
pub fn diff(a: super::DiffArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    let (sa, sb) = (
        Source::open_for_diff(&a.a, opener)?,
        Source::open_for_diff(&a.b, opener)?,
    );
    let opts = aero_convert::diff::DiffOptions { numeric: a.numeric };
    let r = aero_convert::diff::diff(sa.as_dyn(), sb.as_dyn(), &opts)?;
    let identical = r.identical();
    if a.json {
        out::print_json(&json!({
            "a": a.a.display().to_string(),
            "b": a.b.display().to_string(),
            "identical": identical,
            "only_in_a": r.only_in_a,
            "only_in_b": r.only_in_b,
            "order_changed": r.order_changed,
            "tensors": r.tensors,
        }))?;
    } else {
        print_diff(&a, &r);
    }
    Ok(if identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_diff(a: &super::DiffArgs, r: &aero_convert::diff::DiffReport) {
    use aero_convert::diff::Numeric;
    let (na, nb) = (
        out::clean(&a.a.display().to_string()).into_owned(),
        out::clean(&a.b.display().to_string()).into_owned(),
    );
    println!("--- {na}\n+++ {nb}");
    for n in &r.only_in_a {
        println!("{} {}", out::red("only in A:"), out::clean(n));
    }
    for n in &r.only_in_b {
        println!("{} {}", out::red("only in B:"), out::clean(n));
    }
    let rows: Vec<Vec<String>> = r
        .changed()
        .map(|t| {
            let dtype = if t.dtype_changed {
                format!("{} -> {}", t.a.dtype, t.b.dtype)
            } else {
                t.a.dtype.clone()
            };
            let shape = if t.shape_changed {
                format!("{} -> {}", shape_str(&t.a.shape), shape_str(&t.b.shape))
            } else {
                shape_str(&t.a.shape)
            };
            let mut row = vec![out::clean(&t.name).into_owned(), dtype, shape];
            if a.numeric {
                row.extend(match &t.numeric {
                    Some(Numeric::Compared {
                        max_abs_err,
                        max_rel_err,
                        cosine,
                        ..
                    }) => vec![
                        format!("{max_abs_err:.3e}"),
                        format!("{max_rel_err:.3e}"),
                        cosine.map_or_else(|| "undefined".into(), |c| format!("{c:.6}")),
                    ],
                    Some(Numeric::ElementCountDiffers) => {
                        vec!["-".into(), "-".into(), "element counts differ".into()]
                    }
                    Some(Numeric::Unavailable { reason }) => {
                        vec!["-".into(), "-".into(), out::clean(reason).into_owned()]
                    }
                    None => vec!["-".into(), "-".into(), "-".into()],
                });
            }
            row
        })
        .collect();
    if !rows.is_empty() {
        let mut header = vec!["changed tensor", "dtype", "shape"];
        if a.numeric {
            header.extend(["max abs err", "max rel err", "cosine"]);
        }
        print!("{}", out::table(&header, &rows));
    }
    let same = r.tensors.iter().filter(|t| t.identical).count();
    let changed = r.tensors.len() - same;
    if r.order_changed {
        println!("tensor order differs");
    }
    println!(
        "{}: {same} identical, {changed} changed, {} only in A, {} only in B",
        if r.identical() {
            out::bold("identical")
        } else {
            out::red("different")
        },
        r.only_in_a.len(),
        r.only_in_b.len()
    );
}
