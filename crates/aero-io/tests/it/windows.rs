//! Ranges larger than one 16 MiB window: hashing with overlapped mapping,
//! and the writer streaming a mapped file range, across window boundaries.

use std::io::Write;

use aero_io::write::{FileRange, Observer, TensorBytes, TensorSpec, WriteOptions, write_model};
use aero_io::{AeroFile, DType, LocalSource, Mode, Verdict};

fn pattern(len: usize) -> Vec<u8> {
    aero_test_support::bytes(0x2545_f491, len)
}

struct Count(std::sync::Arc<std::sync::atomic::AtomicU64>);
impl Observer for Count {
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.0
            .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn multi_window_hashing_and_mapped_copies_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let len = 40 * (1 << 20) + 12345; // three windows, the last partial
    let data = pattern(len);
    let raw = dir.path().join("raw.bin");
    std::fs::File::create(&raw)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let src = LocalSource::open(&raw).unwrap();
    // Hashing at an odd offset across windows.
    for (off, n) in [
        (0u64, len as u64),
        (7, len as u64 - 100),
        (16 << 20, 17 << 20),
    ] {
        let got = aero_io::verify::hash_range(&src, off, n, |_| {}).unwrap();
        assert_eq!(
            got,
            blake3::hash(&data[off as usize..(off + n) as usize]),
            "{off}+{n}"
        );
    }
    // The writer copies a mapped range of 40 MiB at an unaligned offset.
    let file = std::fs::File::open(&raw).unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let n = (len - 3) as u64;
    let spec = TensorSpec {
        name: "big".into(),
        dtype: DType::U8,
        shape: vec![n],
        data_len: n,
        extras: vec![],
        bytes: TensorBytes::File(FileRange {
            file: &file,
            offset: 3,
            observers: vec![Box::new(Count(seen.clone()))],
            chunk: None,
        }),
    };
    let out = dir.path().join("big.aero");
    let opts = WriteOptions {
        tensor_hash: true,
        page_hashes: Some(1 << 20),
        control_integrity: true,
        ..Default::default()
    };
    write_model(&out, vec![spec], &opts).unwrap();
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), n);
    let f = AeroFile::open(&out).unwrap();
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.errors);
    assert!(r.pages.iter().all(|p| p.status == "verified"));
    assert!(f.tensor("big").unwrap().bytes() == &data[3..]);
}

/// One shard mixing mapped tensors (copied by the placing thread) and
/// reader-only tensors (written by the hashing thread), with odd lengths so
/// the aligned layout leaves zero gaps between them.
#[test]
fn shards_mixing_mapped_and_reader_sources_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(3 << 20);
    let raw = dir.path().join("raw.bin");
    std::fs::write(&raw, &data).unwrap();
    let file = std::fs::File::open(&raw).unwrap();
    let pieces: Vec<(usize, usize, bool)> = vec![
        (1, 1_000_001, true),
        (5, 333, false),
        (4096, 70_000, true),
        (123_457, 2_000_000, false),
        (9, 0, true),
        (2_100_000, 999_999, true),
    ];
    let specs: Vec<TensorSpec<'_>> = pieces
        .iter()
        .enumerate()
        .map(|(i, &(off, len, mapped))| TensorSpec {
            name: format!("t{i}"),
            dtype: DType::U8,
            shape: vec![len as u64],
            data_len: len as u64,
            extras: vec![],
            bytes: if mapped {
                TensorBytes::File(FileRange {
                    file: &file,
                    offset: off as u64,
                    observers: vec![],
                    chunk: None,
                })
            } else {
                TensorBytes::Reader(Box::new(std::io::Cursor::new(
                    data[off..off + len].to_vec(),
                )))
            },
        })
        .collect();
    let out = dir.path().join("mixed.aero");
    let opts = WriteOptions {
        tensor_hash: true,
        page_hashes: Some(64 << 10),
        ..Default::default()
    };
    let summary = write_model(&out, specs, &opts).unwrap();
    assert_eq!(summary.shards, 1);
    let f = AeroFile::open(&out).unwrap();
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.errors);
    for (i, &(off, len, _)) in pieces.iter().enumerate() {
        let t = f.tensor(&format!("t{i}")).unwrap();
        assert!(t.bytes() == &data[off..off + len], "t{i}");
        assert_eq!(t.info().data_off % 64, 0);
    }
}

/// A mapped range that runs past the end of its file fails the write with
/// the tensor's name, and leaves nothing at the destination.
#[test]
fn a_mapped_range_past_the_end_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.bin");
    std::fs::write(&raw, pattern(100_000)).unwrap();
    let file = std::fs::File::open(&raw).unwrap();
    let spec = TensorSpec {
        name: "short".into(),
        dtype: DType::U8,
        shape: vec![50_000],
        data_len: 50_000,
        extras: vec![],
        bytes: TensorBytes::File(FileRange {
            file: &file,
            offset: 60_000,
            observers: vec![],
            chunk: None,
        }),
    };
    let out = dir.path().join("out.aero");
    let e = write_model(&out, vec![spec], &WriteOptions::default()).unwrap_err();
    assert!(e.to_string().contains("short"), "{e}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only raw.bin is left"
    );
}

/// An input "chunk": tensors of odd lengths at 64-aligned offsets, with the
/// given byte in the gaps. Returns the bytes and each tensor's (offset, len).
fn chunk_with_gaps(gap: u8) -> (Vec<u8>, Vec<(u64, u64)>) {
    let lens = [1_000_001u64, 333, 17 << 20, 64, 5];
    let mut bytes = Vec::new();
    let mut at = Vec::new();
    let data = pattern(18 << 20);
    for (i, &n) in lens.iter().enumerate() {
        while bytes.len() % 64 != 0 {
            bytes.push(gap);
        }
        at.push((bytes.len() as u64, n));
        let from = i * 1000;
        bytes.extend_from_slice(&data[from..from + n as usize]);
    }
    (bytes, at)
}

/// Specs for every tensor of a chunk stored at `base` of `file`, each with
/// the chunk (and a verifier counting what it is fed).
fn chunk_specs<'a>(
    file: &'a std::fs::File,
    base: u64,
    chunk: &[u8],
    at: &[(u64, u64)],
    expected: [u8; 32],
    fed: &std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Vec<TensorSpec<'a>> {
    at.iter()
        .enumerate()
        .map(|(i, &(off, n))| TensorSpec {
            name: format!("t{i}"),
            dtype: DType::U8,
            shape: vec![n],
            data_len: n,
            extras: vec![],
            bytes: TensorBytes::File(FileRange {
                file,
                offset: base + off,
                observers: vec![],
                chunk: Some(aero_io::write::SourceChunk {
                    name: "weights.shard0".into(),
                    offset: base,
                    length: chunk.len() as u64,
                    blake3: expected,
                    verifier: Box::new(Count(fed.clone())),
                }),
            }),
        })
        .collect()
}

/// When the output shard copies an input chunk verbatim, the writer checks
/// the chunk's hash itself in the same pass (the verifiers are not fed); a
/// corrupt chunk fails the write; non-zero gap bytes in the input still
/// give an output with zero gaps and correct hashes.
#[test]
fn verbatim_shards_are_verified_and_hashed_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    for gap in [0u8, 0xAB] {
        let (chunk, at) = chunk_with_gaps(gap);
        let base = 4096u64;
        let raw = dir.path().join("raw.bin");
        let mut file_bytes = vec![0x55u8; base as usize];
        file_bytes.extend_from_slice(&chunk);
        std::fs::write(&raw, &file_bytes).unwrap();
        let file = std::fs::File::open(&raw).unwrap();
        let good = *blake3::hash(&chunk).as_bytes();
        let opts = WriteOptions {
            tensor_hash: true,
            page_hashes: Some(1 << 20),
            ..Default::default()
        };

        // The shortcut: one shard, same offsets, same length.
        let fed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let out = dir.path().join(format!("ok-{gap}.aero"));
        let specs = chunk_specs(&file, base, &chunk, &at, good, &fed);
        let s = write_model(&out, specs, &opts).unwrap();
        assert_eq!(
            fed.load(std::sync::atomic::Ordering::Relaxed),
            0,
            "verifier skipped"
        );
        let f = AeroFile::open(&out).unwrap();
        let r = aero_io::validate(&f, Mode::Full, &|_| {});
        assert_eq!(r.verdict, Verdict::Valid, "gap {gap:#x}: {:?}", r.errors);
        let w = f.shard(0).unwrap();
        let all = std::fs::read(&out).unwrap();
        let shard = &all[w.offset as usize..(w.offset + w.length) as usize];
        let mut zeroed = chunk.clone();
        let mut cursor = 0usize;
        for (i, &(off, n)) in at.iter().enumerate() {
            zeroed[cursor..off as usize].fill(0);
            cursor = (off + n) as usize;
            let t = f.tensor(&format!("t{i}")).unwrap();
            assert_eq!(t.info().data_off, off);
            assert!(t.bytes() == &chunk[off as usize..(off + n) as usize]);
            assert_eq!(
                s.tensors[i].hash_b3,
                Some(*blake3::hash(t.bytes()).as_bytes())
            );
        }
        assert!(shard == zeroed.as_slice(), "gaps are zero in the output");

        // A corrupt chunk (wrong recorded hash) fails and leaves nothing.
        let bad = dir.path().join(format!("bad-{gap}.aero"));
        let mut wrong = good;
        wrong[0] ^= 1;
        let specs = chunk_specs(&file, base, &chunk, &at, wrong, &fed);
        let e = write_model(&bad, specs, &opts).unwrap_err();
        assert!(e.to_string().contains("BLAKE3 mismatch (corrupt)"), "{e}");
        assert!(!bad.exists());

        // No shortcut when the shard differs (two shards here): the verifiers
        // see every tensor byte.
        let fed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let split = dir.path().join(format!("split-{gap}.aero"));
        let specs = chunk_specs(&file, base, &chunk, &at, good, &fed);
        let opts2 = WriteOptions {
            max_shard_bytes: 2 << 20,
            ..opts.clone()
        };
        let s = write_model(&split, specs, &opts2).unwrap();
        assert!(s.shards > 1);
        let total: u64 = at.iter().map(|a| a.1).sum();
        assert_eq!(fed.load(std::sync::atomic::Ordering::Relaxed), total);
        let f = AeroFile::open(&split).unwrap();
        assert_eq!(
            aero_io::validate(&f, Mode::Full, &|_| {}).verdict,
            Verdict::Valid
        );
    }
}

/// Ranges longer than one window are hashed as independent BLAKE3 subtrees
/// on several threads and merged: the result must equal `blake3::hash` for
/// every shape of tree (exact multiples, one byte over, odd offsets).
#[test]
fn parallel_subtree_hashing_matches_blake3_for_every_tree_shape() {
    const W: usize = aero_io::verify::WINDOW as usize;
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(4 * W + 5000);
    let raw = dir.path().join("raw.bin");
    std::fs::write(&raw, &data).unwrap();
    let src = LocalSource::open(&raw).unwrap();
    for (off, n) in [
        (0, W + 1),
        (0, 2 * W),
        (1, 2 * W + 1),
        (3, 3 * W),
        (4096, 3 * W + 1023),
        (0, 4 * W),
        (5, 4 * W + 1),
        (0, 4 * W + 5000),
    ] {
        let mut seen = 0u64;
        let got = aero_io::verify::hash_range(&src, off as u64, n as u64, |k| seen += k).unwrap();
        assert_eq!(got, blake3::hash(&data[off..off + n]), "{off}+{n}");
        assert_eq!(seen, n as u64, "progress covers the range");
    }
    // Past the end: an error, not a panic or a short hash.
    assert!(aero_io::verify::hash_range(&src, 10, data.len() as u64, |_| {}).is_err());
}
