use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use aero_io::TensorInfo;
use anyhow::bail;
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
                t.dtype.to_string(),
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

/// `tensors: N (size), dtypes: f32×3 f16×2` and, past `max`, how to see the rest.
pub fn tensor_summary(tensors: &[TensorInfo], max: usize) -> (String, Option<String>) {
    let total: u64 = tensors.iter().map(|t| t.data_len).sum();
    let mut hist: Vec<(aero_io::DType, usize)> = Vec::new();
    for t in tensors {
        match hist.iter_mut().find(|(d, _)| *d == t.dtype) {
            Some((_, n)) => *n += 1,
            None => hist.push((t.dtype, 1)),
        }
    }
    let hist: Vec<String> = hist.iter().map(|(d, n)| format!("{d}×{n}")).collect();
    let head = format!(
        "tensors: {} ({}), dtypes: {}",
        tensors.len(),
        out::human_bytes(total),
        hist.join(" ")
    );
    let more = (tensors.len() > max).then(|| {
        format!(
            "… {} more (use --max-tensors N or `aerotensor list`)",
            tensors.len() - max
        )
    });
    (head, more)
}

pub fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let f = crate::remote::open_file(&a.file)?;
    if a.json {
        return list_json(&f, &a.file);
    }
    let idx = f.index()?;
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(tensor_table(idx.tensors(), usize::MAX, None, true).as_bytes());
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let f = crate::remote::open_file(&a.file)?;
    let h = f.header();
    let (name, arch) = f.model();
    let idx = f.index();
    let meta = f.meta_json().unwrap_or(None);
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
            "valid": check.valid,
            "errors": check.errors,
        }))?;
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
            if k != "model_name" && k != "architecture" {
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
    match &idx {
        Ok(i) => {
            let (head, more) = tensor_summary(i.tensors(), a.max_tensors);
            println!("{head}");
            print!("{}", tensor_table(i.tensors(), a.max_tensors, None, false));
            if let Some(m) = more {
                println!("{m}");
            }
        }
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

pub fn extract(a: ExtractArgs) -> anyhow::Result<ExitCode> {
    let f = crate::remote::open_file(&a.file)?;
    let dest = output_dest(a.out.as_deref())?;
    let info = f.tensor_info(&a.tensor)?;
    let pb = out::bytes_bar(info.data_len, "extracting");
    let n = aero_io::copy::extract(&f, info, &dest, &copy_options(a.verify, true, &pb))?;
    pb.finish_and_clear();
    report_extracted(&a.tensor, n, &dest);
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
) -> aero_io::copy::CopyOptions<'p> {
    if v.no_verify {
        eprintln!(
            "aerotensor: warning: --no-verify: tensor bytes are written without checking them"
        );
    }
    aero_io::copy::CopyOptions {
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
fn list_json(f: &aero_io::AeroFile, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let payload = f.tidx_payload()?;
    let tidx_err = |e: aero_format::Error| anyhow::anyhow!("{}: TIDX: {e}", f.path().display());
    let iter = aero_format::TensorIter::new(&payload).map_err(tidx_err)?;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    w.write_all(b"{\"file\":")?;
    serde_json::to_writer(&mut w, &file.display().to_string())?;
    w.write_all(b",\"tensors\":[")?;
    for (i, rec) in iter.enumerate() {
        let t = rec.map_err(tidx_err)?;
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(b"{\"name\":")?;
        serde_json::to_writer(&mut w, t.name)?;
        w.write_all(b",\"dtype\":\"")?;
        match t.dtype {
            aero_format::DType::Unknown(_) => w.write_all(t.dtype.to_string().as_bytes())?,
            d => w.write_all(d.name().as_bytes())?,
        }
        w.write_all(b"\",\"dtype_code\":")?;
        put_u64(&mut w, u64::from(t.dtype.code()))?;
        w.write_all(b",\"shape\":[")?;
        for (k, d) in t.shape.iter().enumerate() {
            if k > 0 {
                w.write_all(b",")?;
            }
            put_u64(&mut w, d.map_err(tidx_err)?)?;
        }
        w.write_all(b"],\"shard_id\":")?;
        put_u64(&mut w, t.shard_id)?;
        w.write_all(b",\"data_off\":")?;
        put_u64(&mut w, t.data_off)?;
        w.write_all(b",\"data_len\":")?;
        put_u64(&mut w, t.data_len)?;
        if let Some(h) = t.hash_b3 {
            // A fixed buffer: `hex::encode` builds a String char by char,
            // which was an eighth of `list --json` on 100k tensors.
            let mut hexbuf = [0u8; 64];
            hex::encode_to_slice(h, &mut hexbuf).map_err(std::io::Error::other)?;
            w.write_all(b",\"hash_b3\":\"")?;
            w.write_all(&hexbuf)?;
            w.write_all(b"\"")?;
        }
        if t.has_extras {
            let extra: serde_json::Map<String, Value> = t
                .extras()
                .map(|(k, v)| {
                    (
                        k.to_owned(),
                        aero_io::value::msgpack_to_json(v).unwrap_or(Value::Null),
                    )
                })
                .collect();
            w.write_all(b",\"extra\":")?;
            serde_json::to_writer(&mut w, &extra)?;
        }
        w.write_all(b"}")?;
    }
    w.write_all(b"]}\n")?;
    w.flush()?;
    Ok(ExitCode::SUCCESS)
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

/// A file or a set, opened as `list` / `extract` open them.
pub struct Source(Box<dyn aero_convert::state_dict::TensorSource>);

impl Source {
    pub fn open(p: &std::path::Path) -> anyhow::Result<Source> {
        Ok(Source(if super::set::is_set(p) {
            Box::new(crate::remote::open_set(p)?)
        } else {
            Box::new(crate::remote::open_file(p)?)
        }))
    }

    pub fn as_dyn(&self) -> &dyn aero_convert::state_dict::TensorSource {
        self.0.as_ref()
    }
}

/// `extract --as`: the tensor's values as floats, written atomically.
pub fn extract_floats(a: ExtractArgs) -> anyhow::Result<ExitCode> {
    let fmt: aero_convert::floats::FloatFormat = match a.as_float {
        Some(f) => f.into(),
        None => bail!("--as was not given"),
    };
    let src = Source::open(&a.file)?;
    let dest = output_dest(a.out.as_deref())?;
    if !crate::remote::is_url(&a.file) {
        aero_io::output::refuse_same_file(&dest, &a.file)?;
    }
    let bytes = aero_convert::floats::tensor_bytes(src.as_dyn(), &a.tensor, fmt)
        .map_err(|e| anyhow::Error::new(e).context(a.file.display().to_string()))?;
    let mut out = aero_io::output::Output::create(&dest)?;
    out.file()
        .write_all(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dest.display()))?;
    out.commit(true)?;
    report_extracted(&a.tensor, bytes.len() as u64, &dest);
    Ok(ExitCode::SUCCESS)
}

/// `diff A B`: exit 0 identical, 1 different.
pub fn diff(a: super::DiffArgs) -> anyhow::Result<ExitCode> {
    let (sa, sb) = (Source::open(&a.a)?, Source::open(&a.b)?);
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
                        format!("{cosine:.6}"),
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
