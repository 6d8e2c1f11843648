//! Dequantizes a file of packed ggml blocks and reports how long it took;
//! with `--expect FILE` also checks the f32 result against little-endian f32
//! values (e.g. gguf-py's, from `bench/gguf_py_q4k.py`), NaNs aside.
//!
//! ```text
//! cargo run --release -p aero-quant --example dequant_file -- Q4_K q4_k.packed [--expect q4_k.f32] [--runs 5]
//! ```

use std::time::Instant;

use aero_quant::{
    GgmlType, OutputType, dequantize, dequantize_reader, dequantize_to_vec, par_dequantize,
};

fn main() {
    if let Err(e) = run() {
        eprintln!("dequant_file: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: dequant_file TYPE PACKED_FILE [--expect F32_FILE] [--runs N]";
    let (ty, path) = match args.as_slice() {
        [ty, path, ..] => (ty, path),
        _ => return Err(usage.into()),
    };
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let runs: usize = opt("--runs")
        .map_or(Ok(5), |s| s.parse())
        .map_err(|e| format!("--runs: {e}"))?;
    let ty = GgmlType::from_name(ty).ok_or_else(|| format!("unknown ggml type {ty}"))?;
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let n = bytes.len() as u64 / ty.block_bytes * ty.block_elems;
    let gb = n as f64 * 4.0 / 1e9;
    println!(
        "{}: {} packed bytes ({:.1} MiB) -> {n} f32 values ({gb:.3} GB); {} rayon threads",
        ty.name,
        bytes.len(),
        bytes.len() as f64 / (1 << 20) as f64,
        rayon::current_num_threads()
    );

    let report = |what: &str, secs: &mut Vec<f64>| {
        secs.sort_by(f64::total_cmp);
        let (best, median) = (secs[0], secs[secs.len() / 2]);
        println!(
            "{what:44} best {best:.3} s ({:.2} GB/s), median {median:.3} s ({:.2} GB/s) of {} runs",
            gb / best,
            gb / median,
            secs.len()
        );
    };

    // Into a fresh vector each time: allocation and page faults included,
    // like gguf-py's np.empty output.
    let mut secs = Vec::new();
    let mut out = Vec::new();
    for _ in 0..runs {
        drop(std::mem::take(&mut out));
        let t = Instant::now();
        out = dequantize_to_vec(ty, &bytes, n).map_err(|e| e.to_string())?;
        secs.push(t.elapsed().as_secs_f64());
    }
    report("dequantize_to_vec (parallel, new buffer)", &mut secs);

    // Into a buffer that is already mapped: the decoding alone.
    for (what, parallel) in [
        ("par_dequantize (reused buffer)", true),
        ("dequantize (1 thread, reused buffer)", false),
    ] {
        let mut secs = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            if parallel {
                par_dequantize(ty, &bytes, n, &mut out)
            } else {
                dequantize(ty, &bytes, n, &mut out)
            }
            .map_err(|e| e.to_string())?;
            secs.push(t.elapsed().as_secs_f64());
        }
        report(what, &mut secs);
    }

    // What `aerotensor extract --as f32` does after verifying the bytes:
    // pieces of about 2 MiB of output decoded on every core into one reused
    // buffer that stays in cache, then handed on (here: dropped).
    let mut secs = Vec::new();
    let blocks = ((2u64 << 20) / (ty.block_elems * 4)).max(1);
    let mut piece = vec![0f32; (blocks * ty.block_elems) as usize];
    for _ in 0..runs {
        let t = Instant::now();
        let mut done = 0u64;
        for chunk in bytes.chunks((blocks * ty.block_bytes) as usize) {
            let k = (chunk.len() as u64 / ty.block_bytes) * ty.block_elems;
            par_dequantize(ty, chunk, k, &mut piece[..k as usize]).map_err(|e| e.to_string())?;
            std::hint::black_box(&piece);
            done += k;
        }
        assert_eq!(done, n);
        secs.push(t.elapsed().as_secs_f64());
    }
    report("par_dequantize in 2 MiB pieces (in cache)", &mut secs);

    // Streaming with bounded memory: the f32 bytes go to io::sink().
    let mut secs = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        dequantize_reader(ty, n, &bytes[..], OutputType::F32, std::io::sink())
            .map_err(|e| e.to_string())?;
        secs.push(t.elapsed().as_secs_f64());
    }
    report("dequantize_reader (1 thread, f32 bytes, sink)", &mut secs);

    if let Some(expect) = opt("--expect") {
        let want = std::fs::read(expect).map_err(|e| format!("{expect}: {e}"))?;
        if want.len() != out.len() * 4 {
            return Err(format!(
                "{expect}: {} bytes, {} expected",
                want.len(),
                out.len() * 4
            ));
        }
        let differ = want
            .chunks_exact(4)
            .zip(&out)
            .filter(|(w, g)| {
                let w = f32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                w.to_bits() != g.to_bits() && !(w.is_nan() && g.is_nan())
            })
            .count();
        println!(
            "compared with {expect}: {differ} of {} values differ",
            out.len()
        );
        if differ != 0 {
            return Err("output differs from the expected values".into());
        }
    }
    Ok(())
}
