//! Read-path microbenchmarks: TIDX decode, lookup by name, quick validation.
//!
//! `cargo bench -p aero-io --bench read` (or `cargo xtask bench micro`).

use std::hint::black_box;
use std::io::Read as _;
use std::time::Duration;

use aero_io::write::{TensorSpec, WriteOptions, write_model};
use aero_io::{AeroFile, DType, Mode, TensorIndex, TensorInfo, validate};
use criterion::{Criterion, criterion_group, criterion_main};

const N: u64 = 100_000;

fn entries(n: u64) -> Vec<TensorInfo> {
    (0..n)
        .map(|i| TensorInfo {
            name: format!("model.layers.{}.block.{}.weight", i / 16, i % 16),
            dtype: DType::F32,
            shape: vec![16, 4],
            shard_id: 0,
            data_off: i * 256,
            data_len: 256,
            flags: 0,
            hash_b3: None,
            quant_id: None,
            extras: Vec::new(),
        })
        .collect()
}

fn tidx(c: &mut Criterion) {
    let list = entries(N);
    let payload = aero_io::write::raw::encode_tidx(list.iter());
    let mut g = c.benchmark_group("tidx");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    g.throughput(criterion::Throughput::Elements(N));
    g.bench_function("decode_100k", |b| {
        b.iter(|| TensorIndex::decode(black_box(&payload)).expect("decodes"))
    });
    g.finish();

    let idx = TensorIndex::decode(&payload).expect("decodes");
    let names: Vec<String> = (0..1000u64)
        .map(|k| {
            let i = (k * 7919) % N;
            format!("model.layers.{}.block.{}.weight", i / 16, i % 16)
        })
        .collect();
    let mut g = c.benchmark_group("lookup");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(criterion::Throughput::Elements(names.len() as u64));
    g.bench_function("get_1000_of_100k", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for n in &names {
                sum += idx.get(black_box(n)).expect("present").data_off;
            }
            sum
        })
    });
    g.bench_function("miss_1000_of_100k", |b| {
        b.iter(|| {
            names
                .iter()
                .filter(|n| idx.get(black_box(&n[1..])).is_some())
                .count()
        })
    });
    g.finish();
}

fn quick_validate(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("small.aero");
    let specs: Vec<TensorSpec<'static>> = (0..64u64)
        .map(|i| TensorSpec {
            name: format!("layer.{i}.weight"),
            dtype: DType::F32,
            shape: vec![64, 64],
            data_len: 64 * 64 * 4,
            extras: Vec::new(),
            bytes: aero_io::write::TensorBytes::Reader(Box::new(
                std::io::repeat(i as u8).take(64 * 64 * 4),
            )),
        })
        .collect();
    let opts = WriteOptions {
        control_integrity: true,
        tensor_hash: true,
        ..WriteOptions::default()
    };
    write_model(&path, specs, &opts).expect("writes");

    let mut g = c.benchmark_group("validate");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("open_quick_64_tensors_1MiB", |b| {
        b.iter(|| {
            let f = AeroFile::open(black_box(&path)).expect("opens");
            let r = validate(&f, Mode::Quick, &|_| {});
            assert!(r.valid);
            r.tensors.len()
        })
    });
    g.bench_function("open_full_64_tensors_1MiB", |b| {
        b.iter(|| {
            let f = AeroFile::open(black_box(&path)).expect("opens");
            let r = validate(&f, Mode::Full, &|_| {});
            assert!(r.valid);
            r.tensors.len()
        })
    });
    g.finish();
}

criterion_group!(benches, tidx, quick_validate);
criterion_main!(benches);
