//! Issue 11: peak RSS of `aerotensor validate --full` is bounded by the
//! input, whatever its metadata chunks claim. Each file below has a hostile
//! MJSN, MMSG, TIDX, IHSH or PHSH (compressed bombs at and beyond the
//! inflation budget, counts that their bytes cannot hold, uncompressed
//! chunks of cheap-to-encode, costly-to-decode values); the child's peak
//! RSS must stay within `64 MiB + 2048 × file size`, the bound
//! docs/FUZZING.md derives (metadata may inflate 64:1, and validation
//! spends up to about 17 bytes per inflated TIDX byte on the index and
//! the report: about 1,100 bytes per stored byte at worst, measured).
#![cfg(target_os = "linux")]

#[path = "../../../aero-io/tests/hostile_files/mod.rs"]
mod hostile_files;

use std::process::Command;

use aero_format::FourCc;
use aero_io::write::raw::{ChunkSpec, encode_chunks};
use hostile_files::*;

const MIB: u64 = 1 << 20;

/// The documented bound: 64 MiB plus 2048 bytes per file byte.
fn bound(file_len: u64) -> u64 {
    64 * MIB + 2048 * file_len
}

/// Runs `aerotensor validate --full --json FILE`; its peak RSS in bytes
/// and exit code. Measured by `/usr/bin/time` when present (a small parent,
/// so nothing of this test process is counted); else by `wait4` on a
/// direct child.
fn peak_rss(path: &std::path::Path) -> (u64, i32) {
    let time = std::path::Path::new("/usr/bin/time");
    if time.exists() {
        let out = path.with_extension("rss");
        let st = Command::new(time)
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&out)
            .arg(env!("CARGO_BIN_EXE_aerotensor"))
            .args(["validate", "--full", "--json"])
            .arg(path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let kib: u64 = text
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no RSS in {text:?}"));
        return (kib * 1024, st.code().unwrap_or(-1));
    }
    let child = Command::new(env!("CARGO_BIN_EXE_aerotensor"))
        .args(["validate", "--full", "--json"])
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it for our child.
    #[allow(unsafe_code)]
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut ru), pid);
        ru
    };
    std::mem::forget(child);
    (ru.ru_maxrss as u64 * 1024, libc::WEXITSTATUS(status))
}

/// Uncompressed MMSG of `n` nils: one byte each, 72 bytes each as JSON.
fn raw_mmsg_nils(n: u32) -> Vec<u8> {
    let mut m = Vec::new();
    marr(&mut m, n);
    m.resize(m.len() + n as usize, 0xc0);
    let mut c = ChunkSpec::standard(FourCc::MMSG, "manifest", m);
    c.flags = 0;
    file_with(r#"{"model_name":"x"}"#, vec![c])
}

/// Uncompressed TIDX of records with many one-byte extras.
fn raw_tidx_extras(records: u32, extras: u32) -> Vec<u8> {
    let mut c = ChunkSpec::standard(FourCc::TIDX, "tensors", tidx_many_extras(records, extras));
    c.flags = aero_format::ChunkFlags::INDEX;
    let chunks = vec![
        ChunkSpec::standard(FourCc::MJSN, "meta.json", b"{}".to_vec()),
        ChunkSpec::standard(FourCc::WTSH, "weights.shard0", Vec::new()),
        c,
    ];
    encode_chunks([0x11; 16], &chunks).unwrap()
}

/// TIDX of many minimal tensors whose ranges are all invalid (each one
/// adds a report entry and an error line), compressed or not.
fn raw_tidx_records(records: u32) -> Vec<u8> {
    tidx_records(records, false)
}

fn zstd_tidx_records(records: u32) -> Vec<u8> {
    tidx_records(records, true)
}

fn tidx_records(records: u32, compressed: bool) -> Vec<u8> {
    let mut t = Vec::new();
    mmap(&mut t, 1);
    mstr(&mut t, "tensors");
    marr(&mut t, records);
    for i in 0..records {
        mmap(&mut t, 6);
        mstr(&mut t, "name");
        mstr(&mut t, &format!("{i:x}"));
        mstr(&mut t, "dtype");
        muint(&mut t, 1);
        mstr(&mut t, "shape");
        marr(&mut t, 1);
        muint(&mut t, 9);
        for k in ["shard_id", "data_off", "data_len"] {
            mstr(&mut t, k);
            muint(&mut t, 7);
        }
    }
    let mut c = ChunkSpec::standard(FourCc::TIDX, "tensors", t);
    if !compressed {
        c.flags = aero_format::ChunkFlags::INDEX;
    }
    let chunks = vec![
        ChunkSpec::standard(FourCc::MJSN, "meta.json", b"{}".to_vec()),
        ChunkSpec::standard(FourCc::WTSH, "weights.shard0", Vec::new()),
        c,
    ];
    encode_chunks([0x11; 16], &chunks).unwrap()
}

#[test]
fn validate_full_rss_is_bounded_by_the_file_size() {
    let dir = tempfile::tempdir().unwrap();
    type Make = fn() -> Vec<u8>;
    let cases: Vec<(&str, Make)> = vec![
        ("MJSN bomb 2 GiB", || mjsn_bomb(2 << 30)),
        ("MJSN bomb 1 MiB", || mjsn_bomb(1 << 20)),
        ("MMSG nils 1 MiB (zstd)", || mmsg_nil_bomb(1 << 20)),
        ("MMSG nils 256 MiB (zstd)", || mmsg_nil_bomb(256 << 20)),
        ("MMSG nils 4 MiB (raw)", || raw_mmsg_nils(4 << 20)),
        ("MMSG nested map keys", || nested_map_key_mmsg(60)),
        ("TIDX extras (zstd)", || tidx_extras_bomb(64, 5000)),
        ("TIDX extras 8 MiB (raw)", || raw_tidx_extras(512, 5000)),
        ("TIDX 200k bad tensors (raw)", || raw_tidx_records(200_000)),
        ("TIDX 20k bad tensors (zstd)", || zstd_tidx_records(20_000)),
        ("TIDX 120k bad tensors (zstd)", || {
            zstd_tidx_records(120_000)
        }),
        ("TIDX 160k bad tensors (zstd)", || {
            zstd_tidx_records(160_000)
        }),
        ("TIDX 200k bad tensors (zstd)", || {
            zstd_tidx_records(200_000)
        }),
        ("IHSH ranges 1 MiB (zstd)", || ihsh_bomb(1 << 20)),
        ("IHSH ranges 512 MiB (zstd)", || ihsh_bomb(512 << 20)),
        ("PHSH 2^20 digests (zstd)", || phsh_huge_count(20)),
        ("PHSH 2^30 digests (zstd)", || phsh_huge_count(30)),
    ];
    let mut failures = Vec::new();
    for (what, make) in cases {
        let bytes = make();
        let p = dir.path().join("hostile.aero");
        std::fs::write(&p, &bytes).unwrap();
        let len = bytes.len() as u64;
        drop(bytes);
        let (rss, code) = peak_rss(&p);
        eprintln!(
            "{what:<30} file {len:>9} B  peak RSS {:>6.1} MiB  bound {:>7.1} MiB  exit {code}",
            rss as f64 / MIB as f64,
            bound(len) as f64 / MIB as f64
        );
        assert!(code == 0 || code == 1, "{what}: exit {code}");
        if rss > bound(len) {
            failures.push(format!("{what}: {rss} > {}", bound(len)));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
