//! Writes a synthetic single-shard model for benchmarks.
//!
//! ```text
//! cargo run --release -p aero-io --example gen_synthetic -- \
//!     OUT --bytes 1G --tensors 256 [--layout aligned|reference] [--seed N] [--safetensors] [--first N]
//! ```
//!
//! `--bytes` is the total tensor payload (a multiple of 4). Every tensor is
//! f32 and the same size except the last, which absorbs the remainder. The
//! bytes come from a deterministic xorshift generator that implements `Read`,
//! so memory stays at the writer's fixed buffers whatever the model size. The
//! UUID derives from the seed: the same arguments always give the same file.
//!
//! `--safetensors` writes the same tensors as a safetensors file instead
//! (8-byte little-endian header length, JSON header, data), the input for the
//! `convert-safetensors` benchmark. `--first N` numbers the tensors from `N`
//! (`model.layers.{N}.weight`, …), so several files can be the shards of
//! one sharded checkpoint (the remote-set benchmark's input).

use std::io::Read;
use std::process::ExitCode;

use aero_io::DType;
use aero_io::write::{Layout, TensorSpec, WriteOptions, write_model};

/// Deterministic pseudo-random bytes (xorshift64*), `len` of them.
struct XorShift {
    state: u64,
    left: u64,
}

impl XorShift {
    fn new(seed: u64, len: u64) -> Self {
        // splitmix64 of the seed so neighbouring seeds diverge immediately; never zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift {
            state: z | 1,
            left: len,
        }
    }

    #[inline]
    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Read for XorShift {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.left.min(buf.len() as u64)) as usize;
        let buf = &mut buf[..n];
        let mut words = buf.chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next().to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let v = self.next().to_le_bytes();
            let k = tail.len();
            tail.copy_from_slice(&v[..k]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// `4096`, `64K`, `512M`, `1G`, `1GiB` (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad size '{s}'"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        u => return Err(format!("unknown size unit '{u}'")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' overflows"))
}

struct Args {
    out: String,
    bytes: u64,
    tensors: u64,
    layout: Layout,
    seed: u64,
    safetensors: bool,
    first: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut bytes = None;
    let mut tensors = None;
    let mut layout = Layout::Aligned;
    let mut seed = 1u64;
    let mut safetensors = false;
    let mut first = 0u64;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--bytes" => bytes = Some(parse_size(&val("--bytes")?)?),
            "--tensors" => {
                tensors = Some(
                    val("--tensors")?
                        .parse::<u64>()
                        .map_err(|e| format!("--tensors: {e}"))?,
                )
            }
            "--layout" => {
                layout = match val("--layout")?.as_str() {
                    "aligned" => Layout::Aligned,
                    "reference" => Layout::Reference,
                    l => return Err(format!("unknown layout '{l}' (aligned|reference)")),
                }
            }
            "--seed" => seed = val("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--safetensors" => safetensors = true,
            "--first" => {
                first = val("--first")?
                    .parse()
                    .map_err(|e| format!("--first: {e}"))?
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option '{s}'")),
            s if out.is_none() => out = Some(s.to_string()),
            s => return Err(format!("unexpected argument '{s}'")),
        }
    }
    let args = Args {
        out: out.ok_or("missing OUT")?,
        bytes: bytes.ok_or("missing --bytes")?,
        tensors: tensors.ok_or("missing --tensors")?,
        layout,
        seed,
        safetensors,
        first,
    };
    if args.tensors == 0 {
        return Err("--tensors must be at least 1".into());
    }
    if !args.bytes.is_multiple_of(4) || args.bytes / 4 < args.tensors {
        return Err("--bytes must be a multiple of 4 and give every tensor an element".into());
    }
    Ok(args)
}

/// Row-major shape for `elems` f32 values: `[rows, 256]` when that divides, else `[elems]`.
fn shape_of(elems: u64) -> Vec<u64> {
    if elems >= 256 && elems.is_multiple_of(256) {
        vec![elems / 256, 256]
    } else {
        vec![elems]
    }
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("gen_synthetic: {e}");
            }
            eprintln!(
                "usage: gen_synthetic OUT --bytes SIZE --tensors N [--layout aligned|reference] [--seed N] [--safetensors] [--first N]"
            );
            return ExitCode::from(2);
        }
    };
    let per = (a.bytes / a.tensors) & !3;
    let last = a.bytes - per * (a.tensors - 1);
    let width = (a.first + a.tensors - 1).to_string().len();
    let specs: Vec<TensorSpec<'static>> = (0..a.tensors)
        .map(|i| {
            let len = if i + 1 == a.tensors { last } else { per };
            TensorSpec {
                name: format!("model.layers.{:0width$}.weight", a.first + i),
                dtype: DType::F32,
                shape: shape_of(len / 4),
                data_len: len,
                extras: Vec::new(),
                bytes: aero_io::write::TensorBytes::Reader(Box::new(XorShift::new(
                    a.seed ^ (i << 20),
                    len,
                ))),
            }
        })
        .collect();
    if a.safetensors {
        return match write_safetensors(&a.out, specs) {
            Ok(n) => {
                eprintln!(
                    "wrote {}: {n} bytes, {} tensors (safetensors)",
                    a.out, a.tensors
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gen_synthetic: {}: {e}", a.out);
                ExitCode::FAILURE
            }
        };
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&blake3::hash(&a.seed.to_le_bytes()).as_bytes()[..16]);
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    let opts = WriteOptions {
        model_name: "synthetic".into(),
        architecture: "synthetic".into(),
        // One shard whatever the size.
        max_shard_bytes: u64::MAX,
        uuid: Some(uuid),
        layout: a.layout,
        // The layout's defaults: hash_b3 and page hashes for aligned files,
        // none for reference ones (what the reference writer writes).
        ..if a.layout == Layout::Reference {
            WriteOptions::reference()
        } else {
            WriteOptions::default()
        }
    };
    match write_model(&a.out, specs, &opts) {
        Ok(s) => {
            eprintln!(
                "wrote {}: {} bytes, {} tensors, {} shard(s)",
                a.out,
                s.file_size,
                s.tensors.len(),
                s.shards
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_synthetic: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `specs` (all F32) as a safetensors file; returns its size.
fn write_safetensors(path: &str, specs: Vec<TensorSpec<'_>>) -> std::io::Result<u64> {
    use std::io::Write;
    let mut header = String::from(r#"{"__metadata__":{"format":"pt"}"#);
    let mut off = 0u64;
    for t in &specs {
        let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
        header.push_str(&format!(
            r#","{}":{{"dtype":"F32","shape":[{}],"data_offsets":[{},{}]}}"#,
            t.name,
            shape.join(","),
            off,
            off + t.data_len
        ));
        off += t.data_len;
    }
    header.push('}');
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let tmp = format!("{path}.tmp");
    let mut w = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(&tmp)?);
    w.write_all(&(header.len() as u64).to_le_bytes())?;
    w.write_all(header.as_bytes())?;
    let mut buf = vec![0u8; 4 << 20];
    for t in specs {
        let aero_io::write::TensorBytes::Reader(mut source) = t.bytes else {
            return Err(std::io::Error::other("generated tensors are readers"));
        };
        let mut left = t.data_len;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = source.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            w.write_all(&buf[..n])?;
            left -= n as u64;
        }
    }
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    Ok(8 + header.len() as u64 + off)
}
