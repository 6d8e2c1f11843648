//! Damaged and hostile input: never a panic, never wrong bytes called valid,
//! bounded memory and time.

use crate::common;

use std::collections::HashMap;

use aero_io::{AeroFile, Mode, Verdict};
use common::*;

fn open_bytes(bytes: Vec<u8>) -> aero_io::Result<AeroFile> {
    AeroFile::from_source("mem.aero", Box::new(bytes))
}

/// Every single-byte change (each bit, and all bits) of the header, TOC and
/// string table of every golden file: either `validate --full` reports the
/// file invalid, or every tensor reads back exactly its original bytes.
#[test]
fn every_control_plane_byte_flip_is_caught_or_harmless() {
    let mut checked = 0u64;
    let mut caught = 0u64;
    for name in aero_files() {
        let orig = std::fs::read(golden().join(&name)).unwrap();
        let base = AeroFile::open(golden().join(&name)).unwrap();
        let base_invalid =
            aero_io::validate(&base, Mode::Full, &|_| {}).verdict == Verdict::Invalid;
        let truth: HashMap<String, Vec<u8>> = base
            .index()
            .unwrap()
            .tensors()
            .iter()
            .filter_map(|t| {
                base.tensor_unverified(t)
                    .ok()
                    .map(|v| (t.name.clone(), v.bytes().to_vec()))
            })
            .collect();
        let end = base.payload_start() as usize;
        for pos in 0..end {
            for mask in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
                let mut b = orig.clone();
                b[pos] ^= mask;
                checked += 1;
                let Ok(f) = open_bytes(b) else {
                    caught += 1;
                    continue;
                };
                let r = aero_io::validate(&f, Mode::Full, &|_| {});
                if r.verdict == Verdict::Invalid {
                    caught += 1;
                    continue;
                }
                assert!(
                    !base_invalid,
                    "{name}: flip {mask:#x} at {pos} made a corrupt file valid"
                );
                let idx = f.index().unwrap_or_else(|e| {
                    panic!("{name}@{pos}^{mask:#x}: valid but TIDX unreadable: {e}")
                });
                assert_eq!(
                    idx.tensors(),
                    base.index().unwrap().tensors(),
                    "{name}@{pos}^{mask:#x}: TIDX changed but file valid"
                );
                if base.is_set_index() {
                    continue;
                }
                for t in idx.tensors() {
                    let got = f
                        .tensor(&t.name)
                        .unwrap_or_else(|e| panic!("{name}@{pos}^{mask:#x}: valid but {e}"));
                    assert_eq!(
                        Some(got.bytes()),
                        truth.get(&t.name).map(|v| v.as_slice()),
                        "{name}@{pos}^{mask:#x}: '{}' bytes differ but file valid",
                        t.name
                    );
                }
            }
        }
    }
    eprintln!("{checked} flipped files, {caught} reported invalid, the rest read identical bytes");
    assert!(checked > 50_000);
}

/// Builds a header with chosen fields over a small body.
fn header(toc_offset: u64, toc_length: u64, st_off: u64, st_len: u64) -> Vec<u8> {
    let h = aero_format::FileHeader {
        magic: *b"AERO",
        version_major: 0,
        version_minor: 1,
        header_size: 96,
        toc_offset,
        toc_length,
        string_table_offset: st_off,
        string_table_length: st_len,
        file_flags: 0,
        uuid: [0; 16],
        reserved: [0; 28],
    };
    h.encode().to_vec()
}

#[test]
fn hostile_sizes_are_rejected_quickly_with_bounded_memory() {
    let t0 = std::time::Instant::now();
    // entry_count 1,000,000 in a tiny file.
    let mut b = header(96, 16 + 80 * 1_000_000, 112, 0);
    b.extend_from_slice(
        &aero_format::TocHeader {
            entry_count: 1_000_000,
            ..Default::default()
        }
        .encode(),
    );
    let e = open_bytes(b).unwrap_err().to_string();
    assert!(e.contains("toc_length"), "{e}");
    // entry_count 1,000,000 with a toc_length that is too small.
    let mut b = header(96, 16, 112, 0);
    b.extend_from_slice(
        &aero_format::TocHeader {
            entry_count: 1_000_000,
            ..Default::default()
        }
        .encode(),
    );
    assert!(
        open_bytes(b)
            .unwrap_err()
            .to_string()
            .contains("entry_count")
    );
    // entry_count above the cap.
    let mut b = header(96, 16, 112, 0);
    b.extend_from_slice(
        &aero_format::TocHeader {
            entry_count: u32::MAX,
            ..Default::default()
        }
        .encode(),
    );
    assert!(
        open_bytes(b)
            .unwrap_err()
            .to_string()
            .contains("entry_count")
    );
    // Offsets near u64::MAX.
    for (a, l) in [
        (u64::MAX, 16),
        (u64::MAX - 8, 16),
        (96, u64::MAX),
        (u64::MAX - 95, 96),
    ] {
        let mut b = header(a, l, 112, 0);
        b.extend_from_slice(&[0u8; 32]);
        assert!(open_bytes(b).is_err());
        let mut b = header(96, 16, a, l);
        b.extend_from_slice(&[0u8; 32]);
        assert!(open_bytes(b).is_err());
    }
    // A chunk whose offset+length overflows.
    let tv = std::fs::read(golden().join("test-vector.aero")).unwrap();
    let mut b = tv.clone();
    b[112 + 8..112 + 16].copy_from_slice(&(u64::MAX - 4).to_le_bytes());
    assert!(
        open_bytes(b)
            .unwrap_err()
            .to_string()
            .contains("chunk_offset")
    );
    // A TIDX claiming 2 GiB uncompressed (allowed by the cap) with a tiny payload.
    let mut b = tv.clone();
    let tidx_entry = 112 + 2 * 80;
    b[tidx_entry + 24..tidx_entry + 32].copy_from_slice(&(2u64 << 30).to_le_bytes());
    let f = open_bytes(b).unwrap();
    let e = f.index().unwrap_err().to_string();
    assert!(e.contains("chunk_ulen") || e.contains("zstd"), "{e}");
    // A TIDX claiming more than 2 GiB is rejected at open.
    let mut b = tv.clone();
    b[tidx_entry + 24..tidx_entry + 32].copy_from_slice(&((2u64 << 30) + 1).to_le_bytes());
    assert!(
        open_bytes(b)
            .unwrap_err()
            .to_string()
            .contains("chunk_ulen")
    );
    // A zstd frame that really inflates to a lot while claiming less must stop at the claim.
    let big = aero_io::write::raw::compress(&vec![0u8; 64 << 20]).unwrap();
    let e = aero_io::decompress_exact(&big, 1024).unwrap_err();
    assert!(e.contains("declares"), "{e}");
    let mut no_size = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    no_size.include_contentsize(false).unwrap();
    std::io::Write::write_all(&mut no_size, &vec![0u8; 64 << 20]).unwrap();
    let no_size = no_size.finish().unwrap();
    let e = aero_io::decompress_exact(&no_size, 1024).unwrap_err();
    assert!(e.contains("chunk_ulen"), "{e}");
    assert!(
        t0.elapsed().as_secs() < 10,
        "hostile inputs took {:?}",
        t0.elapsed()
    );
    if let Some(kib) = peak_rss_kib() {
        // Generous: the test itself allocates 64 MiB of zeros to compress.
        assert!(kib < 400 * 1024, "peak RSS {kib} KiB");
    }
}

#[test]
fn truncations_of_every_golden_file_never_panic() {
    for name in aero_files() {
        let orig = std::fs::read(golden().join(&name)).unwrap();
        for cut in 0..orig.len() {
            if let Ok(f) = open_bytes(orig[..cut].to_vec()) {
                let r = aero_io::validate(&f, Mode::Full, &|_| {});
                // A cut inside the payload region must be noticed.
                assert_eq!(r.verdict, Verdict::Invalid, "{name} cut at {cut}");
            }
        }
    }
}

#[test]
fn hostile_tidx_payloads_give_errors() {
    use aero_io::TensorIndex;
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xc1],
        vec![0x80], // {} without tensors
        vec![
            0x81, 0xa7, b't', b'e', b'n', b's', b'o', b'r', b's', 0xdd, 0xff, 0xff, 0xff, 0xff,
        ], // 4G-element array
        vec![
            0x81, 0xa7, b't', b'e', b'n', b's', b'o', b'r', b's', 0x91, 0xdf, 0x7f, 0xff, 0xff,
            0xff,
        ],
    ];
    // Deep nesting in an extra key.
    let mut deep = vec![
        0x81, 0xa7, b't', b'e', b'n', b's', b'o', b'r', b's', 0x91, 0x81, 0xa1, b'x',
    ];
    deep.extend(std::iter::repeat_n(0x91, 100_000));
    deep.push(0xc0);
    cases.push(deep);
    for c in cases {
        assert!(TensorIndex::decode(&c).is_err());
    }
}
