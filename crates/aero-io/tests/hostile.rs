//! Regression tests for the defects the coverage-guided campaign of issue 11
//! found, each on the hostile file that reproduced it. Memory is measured
//! with a counting global allocator (peak bytes allocated by this process).

mod hostile_files;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aero_io::{AeroFile, ChunkStatus, Mode};
use aero_test_support::alloc::{Counting, peak_of};
use hostile_files::*;

#[global_allocator]
static A: Counting = Counting;

/// Tests in one binary share the counter: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const MIB: usize = 1 << 20;

/// The counter sees allocations (else every bound below holds trivially).
#[test]
fn the_counting_allocator_counts() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (v, peak) = peak_of(|| vec![1u8; 3 * MIB]);
    assert_eq!(v.len(), 3 * MIB);
    assert!((3 * MIB..4 * MIB).contains(&peak), "peak {peak}");
}

fn open(bytes: Vec<u8>) -> AeroFile {
    AeroFile::from_source("hostile.aero", Box::new(bytes)).expect("control plane is valid")
}

/// Validate Full of `file`, with its peak allocation (the file itself
/// excluded) and its duration.
fn validate_full(file: Vec<u8>) -> (aero_io::Report, usize, Duration) {
    let f = open(file);
    let t = Instant::now();
    let (r, peak) = peak_of(|| aero_io::validate(&f, Mode::Full, &|_| {}));
    (r, peak, t.elapsed())
}

#[test]
fn nested_map_keys_in_mmsg_convert_in_linear_time_and_memory() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 290 bytes; before the fix 2^60 bytes of JSON (allocation failure).
    let file = nested_map_key_mmsg(60);
    assert!(file.len() < 1024, "{}", file.len());
    let (r, peak, took) = validate_full(file.clone());
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(peak < 4 * MIB, "{peak}");
    assert!(
        r.chunks.iter().all(|c| c.status != "error"),
        "{:?}",
        r.errors
    );
    let f = open(file);
    let man = f.manifest().unwrap().unwrap();
    assert!(man.to_string().len() < 4096);
}

#[test]
fn phsh_digest_count_cannot_drive_an_allocation() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // ~10 KiB; its PHSH inflates to 128 MiB declaring 2^27 digests, which
    // once became a 4 GiB Vec::with_capacity.
    let file = phsh_huge_count(27);
    assert!(file.len() < 64 << 10, "{}", file.len());
    let (r, peak, _) = validate_full(file);
    assert!(peak < 16 * MIB, "{peak}");
    let p = &r.pages[0];
    assert_eq!(p.status, "error");
    assert!(
        p.detail.as_deref().unwrap_or("").contains("budget"),
        "{p:?}"
    );
}

#[test]
fn a_small_compressed_chunk_cannot_inflate_to_gigabytes() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // MJSN flagged compressed, 256 MiB of `{}` and spaces in a few KiB.
    let file = mjsn_bomb(256 << 20);
    let len = file.len();
    assert!(len < 64 << 10, "{len}");
    let (r, peak, _) = validate_full(file.clone());
    assert!(peak < 8 * MIB, "{peak}");
    let mjsn = r.chunks.iter().find(|c| c.fourcc == "MJSN").unwrap();
    assert_eq!(mjsn.status, "error");
    assert!(mjsn.detail.as_deref().unwrap().contains("inflation budget"));
    let f = open(file);
    let c = f.first(aero_io::FourCc::MJSN).unwrap();
    assert!(f.payload(c).is_err());
    // Within the ratio, a compressed chunk still reads.
    assert_eq!(
        aero_io::decompress_exact(&aero_io::write::raw::compress(&[7; 4096]).unwrap(), 4096)
            .unwrap()
            .len(),
        4096
    );
    let _ = ChunkStatus::Skipped;
}

#[test]
fn the_tensor_index_takes_a_small_multiple_of_its_payload() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Real-looking records: decoded, the index takes about 2× the payload.
    let mut t = Vec::new();
    mmap(&mut t, 1);
    mstr(&mut t, "tensors");
    marr(&mut t, 20_000);
    for i in 0..20_000u64 {
        mmap(&mut t, 7);
        mstr(&mut t, "name");
        mstr(&mut t, &format!("model.layers.{i}.self_attn.q_proj.weight"));
        mstr(&mut t, "dtype");
        muint(&mut t, 0);
        mstr(&mut t, "shape");
        marr(&mut t, 2);
        muint(&mut t, 4096);
        muint(&mut t, 4096);
        for (k, v) in [
            ("shard_id", i / 64),
            ("data_off", (i % 64) << 25),
            ("data_len", 1 << 25),
            ("flags", 0),
        ] {
            mstr(&mut t, k);
            muint(&mut t, v);
        }
    }
    let (idx, peak) = peak_of(|| aero_io::TensorIndex::decode(&t).unwrap());
    assert_eq!(idx.len(), 20_000);
    assert!(
        idx.get("model.layers.19999.self_attn.q_proj.weight")
            .is_some()
    );
    assert!(peak <= 4 * t.len(), "{peak} for {} payload bytes", t.len());
    // Thousands of one-byte extra keys per record: 3 payload bytes each,
    // ~130 bytes each once decoded. Refused at 8 bytes per payload byte.
    let hostile = tidx_many_extras(64, 5000);
    let (r, peak) = peak_of(|| aero_io::TensorIndex::decode(&hostile));
    let e = r.unwrap_err();
    assert!(
        matches!(e.kind, aero_format::ErrorKind::LimitExceeded { .. }),
        "{e}"
    );
    assert!(
        peak <= 8 * hostile.len() + (1 << 20),
        "{peak} for {}",
        hostile.len()
    );
}

#[test]
fn every_metadata_chunk_is_bounded_by_the_file_size() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Each hostile chunk inflates as far as the budget allows (or further);
    // validate Full then stays within 16 MiB + 1024 × the file size.
    let files = [
        ("MJSN", mjsn_bomb(64 << 20)),
        ("MMSG", mmsg_nil_bomb(1 << 20)),
        ("MMSG", mmsg_nil_bomb(64 << 20)),
        ("TIDX", tidx_extras_bomb(64, 5000)),
        ("IHSH", ihsh_bomb(1 << 20)),
        ("IHSH", ihsh_bomb(64 << 20)),
        ("PHSH", phsh_huge_count(20)),
        ("PHSH", phsh_huge_count(27)),
    ];
    for (what, file) in files {
        let len = file.len();
        let (_, peak, took) = validate_full(file);
        let bound = 16 * MIB + 1024 * len;
        eprintln!("{what}: {len} bytes, peak {peak} bytes allocated, {took:?}");
        assert!(peak <= bound, "{what}: {peak} > {bound} ({len}-byte file)");
    }
}
