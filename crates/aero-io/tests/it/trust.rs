//! Verified reads: for every byte of small multi-shard files, a flip either
//! makes `validate --full` fail or changes nothing a reader sees — and a
//! verified read never returns a byte that differs from what was written.

use crate::common;

use std::collections::HashMap;

use aero_io::write::{TensorSpec, WriteOptions, write_model};
use aero_io::{AeroFile, DType, Mode, Verdict};
use common::*;

fn open_bytes(bytes: Vec<u8>) -> aero_io::Result<AeroFile> {
    AeroFile::from_source("mem.aero", Box::new(bytes))
}

/// A multi-shard file in this project's default layout (hash_b3 and page
/// hashes), and the same tensors with only shard hashes.
fn our_files() -> Vec<(String, Vec<u8>)> {
    let d = tempfile::tempdir().unwrap();
    let data: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            let n = [300usize, 1024, 77, 2048, 0, 513][i];
            (format!("t{i}"), aero_test_support::bytes(i as u64 + 9, n))
        })
        .collect();
    let specs = || {
        data.iter()
            .map(|(n, b)| TensorSpec {
                name: n.clone(),
                dtype: DType::U8,
                shape: vec![b.len() as u64],
                data_len: b.len() as u64,
                extras: Vec::new(),
                bytes: aero_io::write::TensorBytes::Reader(Box::new(std::io::Cursor::new(
                    b.clone(),
                ))),
            })
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    for (label, opts) in [
        (
            "defaults",
            WriteOptions {
                max_shard_bytes: 2048,
                page_hashes: Some(512),
                uuid: Some([5; 16]),
                ..WriteOptions::default()
            },
        ),
        (
            "pages-only",
            WriteOptions {
                max_shard_bytes: 2048,
                tensor_hash: false,
                page_hashes: Some(256),
                uuid: Some([5; 16]),
                ..WriteOptions::default()
            },
        ),
        (
            "shard-hash-only",
            WriteOptions {
                max_shard_bytes: 2048,
                uuid: Some([5; 16]),
                ..WriteOptions::reference()
            },
        ),
    ] {
        let p = d.path().join(format!("{label}.aero"));
        write_model(&p, specs(), &opts).unwrap();
        out.push((label.to_string(), std::fs::read(&p).unwrap()));
    }
    out
}

#[test]
fn every_byte_flip_is_caught_or_harmless_and_verified_reads_never_lie() {
    let mut files = our_files();
    files.push((
        "golden mixed-multishard".into(),
        std::fs::read(golden().join("mixed-multishard.aero")).unwrap(),
    ));
    for (label, orig) in files {
        let base = open_bytes(orig.clone()).unwrap();
        assert_eq!(
            aero_io::validate(&base, Mode::Full, &|_| {}).verdict,
            Verdict::Valid,
            "{label}"
        );
        let truth: HashMap<String, Vec<u8>> = base
            .index()
            .unwrap()
            .tensors()
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    base.tensor(&t.name).unwrap().bytes().to_vec(),
                )
            })
            .collect();
        let shards = base
            .chunks()
            .iter()
            .filter(|c| c.fourcc == aero_io::FourCc::WTSH)
            .count();
        assert!(shards >= 2, "{label}: {shards} shards");
        let (mut caught, mut refused) = (0u64, 0u64);
        for pos in 0..orig.len() {
            let mut b = orig.clone();
            b[pos] ^= 0x5a;
            let Ok(f) = open_bytes(b) else {
                caught += 1;
                continue;
            };
            let valid = aero_io::validate(&f, Mode::Full, &|_| {}).verdict != Verdict::Invalid;
            if !valid {
                caught += 1;
            }
            let Ok(idx) = f.index() else {
                assert!(!valid, "{label}@{pos}: valid but TIDX unreadable");
                continue;
            };
            for t in idx.tensors() {
                match f.tensor(&t.name) {
                    // A verified read hands out exactly the bytes written …
                    Ok(v) => assert_eq!(
                        Some(&v.bytes().to_vec()),
                        truth.get(&t.name),
                        "{label}: flip at {pos} served wrong bytes for '{}'",
                        t.name
                    ),
                    // … or refuses; a valid file never refuses.
                    Err(e) => {
                        refused += 1;
                        assert!(!valid, "{label}@{pos}: valid but '{}' fails: {e}", t.name);
                    }
                }
            }
        }
        assert!(caught > 0 && refused > 0, "{label}: {caught} {refused}");
    }
}

#[test]
fn a_padded_quantized_tensor_is_invalid() {
    // The reference GGUF converter sizes tensors by the gap to the next
    // one: a Q8_0 tensor of 32 elements (one 34-byte block) stored with 16
    // bytes of padding.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("q.aero");
    let mut qp = Vec::new();
    aero_io::meta::json_to_msgpack(&serde_json::json!({"ggml_type": 8}), &mut qp);
    let spec = |len: usize| TensorSpec {
        name: "blk.0.attn_q.weight".into(),
        dtype: DType::Packed,
        shape: vec![32],
        data_len: len as u64,
        extras: vec![("quant_params".into(), qp.clone())],
        bytes: aero_io::write::TensorBytes::Reader(Box::new(std::io::Cursor::new(vec![1u8; len]))),
    };
    write_model(&p, vec![spec(50)], &WriteOptions::default()).unwrap();
    let f = AeroFile::open(&p).unwrap();
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("Q8_0") && e.contains("34 bytes")),
        "{:?}",
        r.errors
    );
    write_model(&p, vec![spec(34)], &WriteOptions::default()).unwrap();
    let f = AeroFile::open(&p).unwrap();
    assert_eq!(
        aero_io::validate(&f, Mode::Full, &|_| {}).verdict,
        Verdict::Valid
    );
}

#[test]
fn a_loader_that_verifies_everything_first_reads_each_byte_once() {
    let (_, bytes) = our_files().remove(2);
    let f = open_bytes(bytes.clone()).unwrap();
    f.verify_all().unwrap();
    for t in f.index().unwrap().tensors() {
        assert_eq!(f.protection(t), aero_io::Protection::Shard);
        f.tensor(&t.name).unwrap();
    }
    // A damaged shard fails verify_all, naming it.
    let c = f
        .chunks()
        .iter()
        .find(|c| c.fourcc == aero_io::FourCc::WTSH && c.length > 0)
        .unwrap()
        .clone();
    let mut b = bytes;
    b[c.offset as usize] ^= 1;
    let f = open_bytes(b).unwrap();
    let e = f.verify_all().unwrap_err().to_string();
    assert!(e.contains(&c.name), "{e}");
}

#[test]
fn files_without_any_hash_are_refused_unless_read_unverified() {
    // The all-zero TOC hash means "not recorded" (spec §10): nothing proves
    // these bytes, so a verified read fails and says how to read anyway.
    let (_, mut bytes) = our_files().remove(2);
    let f = open_bytes(bytes.clone()).unwrap();
    let c = f
        .chunks()
        .iter()
        .find(|c| c.fourcc == aero_io::FourCc::WTSH)
        .unwrap()
        .clone();
    let at = f.header().toc_offset as usize + 16 + 80 * c.index as usize + 48;
    bytes[at..at + 32].fill(0);
    let f = open_bytes(bytes).unwrap();
    let t = f
        .index()
        .unwrap()
        .tensors()
        .iter()
        .find(|t| t.shard_id == c.shard_id().unwrap())
        .unwrap()
        .clone();
    let e = f.tensor(&t.name).unwrap_err();
    assert!(matches!(e, aero_io::Error::Unverifiable { .. }), "{e}");
    assert!(e.to_string().contains("unverified"), "{e}");
    assert!(f.tensor_unverified(&t).is_ok());
}

/// A partial read (`tensor_part`, what row slices use) hands out exactly the
/// bytes written or refuses, whatever byte of the file is flipped; pages
/// verify just the range when the file has them.
#[test]
fn partial_reads_never_lie() {
    for (label, orig) in our_files() {
        let base = open_bytes(orig.clone()).unwrap();
        let ranges = |len: u64| {
            [
                (0, len / 2),
                (len / 3, (len / 3 + 1).min(len - len / 3)),
                (len - len / 4, len / 4),
            ]
        };
        let truth: HashMap<(String, u64, u64), Vec<u8>> = base
            .index()
            .unwrap()
            .tensors()
            .iter()
            .flat_map(|t| {
                let all = base.tensor(&t.name).unwrap().bytes().to_vec();
                ranges(t.data_len).map(|(s, l)| {
                    (
                        (t.name.clone(), s, l),
                        all[s as usize..(s + l) as usize].to_vec(),
                    )
                })
            })
            .collect();
        let info = base.tensor_info("t3").unwrap();
        assert!(base.tensor_part(info, 0, info.data_len + 1).is_err());
        assert!(base.tensor_part(info, u64::MAX, 2).is_err());
        let mut refused = 0u64;
        for pos in (0..orig.len()).step_by(3) {
            let mut b = orig.clone();
            b[pos] ^= 0xa5;
            let Ok(f) = open_bytes(b) else { continue };
            let Ok(idx) = f.index() else { continue };
            for t in idx.tensors() {
                for (s, l) in ranges(t.data_len) {
                    match f.tensor_part(t, s, l) {
                        Ok(got) => assert_eq!(
                            Some(&got.to_vec()),
                            truth.get(&(t.name.clone(), s, l)),
                            "{label}: flip at {pos} served wrong bytes for '{}' [{s}, +{l})",
                            t.name
                        ),
                        Err(_) => refused += 1,
                    }
                }
            }
        }
        assert!(refused > 0, "{label}");
    }
}

/// With page hashes, damage outside the pages a partial read covers does
/// not stop the read (it costs the pages, not the tensor); damage inside
/// them does.
#[test]
fn partial_reads_check_only_their_pages() {
    let (_, orig) = our_files().remove(1); // pages only, 256-byte pages
    let f = open_bytes(orig.clone()).unwrap();
    let t = f.tensor_info("t3").unwrap().clone(); // 2048 bytes
    let shard = f.shard(t.shard_id).unwrap();
    let at = (shard.offset + t.data_off) as usize;
    let mut b = orig.clone();
    b[at + 1500] ^= 1; // page 5 of the tensor (if data_off is page-aligned)
    let g = open_bytes(b).unwrap();
    assert!(t.data_off.is_multiple_of(256), "data_off {}", t.data_off);
    assert_eq!(
        g.tensor_part(&t, 0, 512).unwrap().to_vec(),
        f.tensor_part(&t, 0, 512).unwrap().to_vec()
    );
    let e = g.tensor_part(&t, 1400, 200).unwrap_err().to_string();
    assert!(e.contains("PHSH page"), "{e}");
    assert!(g.tensor("t3").is_err());
}
