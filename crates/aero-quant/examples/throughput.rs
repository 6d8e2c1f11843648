//! Decoding speed of every supported type with the data in cache: 64 KiB
//! of random packed blocks (scale fields included, so some values are NaN or
//! Inf, which costs nothing extra) decoded over and over on one thread.
//! Memory bandwidth is left out on purpose; `dequant_file` measures it.
//!
//! ```text
//! cargo run --release -p aero-quant --example throughput [-- TYPE...]
//! ```

use std::time::Instant;

use aero_quant::{GgmlType, dequantize, dequantize_bf16, dequantize_f16, supported_types};

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "{:8} {:>14} {:>14} {:>14}",
        "type", "f32 Gval/s", "f16 Gval/s", "bf16 Gval/s"
    );
    for ty in supported_types()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w.eq_ignore_ascii_case(t.name)))
    {
        let (f32s, f16s, bf16s) = measure(ty);
        println!("{:8} {f32s:>14.2} {f16s:>14.2} {bf16s:>14.2}", ty.name);
    }
}

fn measure(ty: GgmlType) -> (f64, f64, f64) {
    let n_blocks = (64 * 1024 / ty.block_bytes).max(1) as usize;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..n_blocks * ty.block_bytes as usize)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let n = n_blocks as u64 * ty.block_elems;
    let mut out32 = vec![0f32; n as usize];
    let mut out16 = vec![0u16; n as usize];
    // About 0.2 s per measurement whatever the type.
    let reps = (50_000_000 / n).max(1);
    let mut best = [f64::MAX; 3];
    for _ in 0..3 {
        for (i, best) in best.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..reps {
                match i {
                    0 => dequantize(ty, &bytes, n, &mut out32),
                    1 => dequantize_f16(ty, &bytes, n, &mut out16),
                    _ => dequantize_bf16(ty, &bytes, n, &mut out16),
                }
                .expect("sizes are right");
            }
            *best = best.min(t.elapsed().as_secs_f64());
        }
    }
    let values = (n * reps) as f64 / 1e9;
    (values / best[0], values / best[1], values / best[2])
}
