//! Every golden file written by the reference implementation is read, and
//! validation reaches the verdict recorded in expected.json.

use crate::common;

use aero_io::{AeroFile, ChunkStatus, Mode, Verdict};
use common::*;

fn tensor_set(name: &str) -> serde_json::Map<String, serde_json::Value> {
    expected()["tensor_sets"][name].as_object().unwrap().clone()
}

#[test]
fn chunk_tables_match_expected() {
    let e = expected();
    for name in aero_files() {
        let f = AeroFile::open(golden().join(&name)).unwrap();
        let want = e["files"][&name]["chunks"].as_array();
        let Some(want) = want else { continue };
        assert_eq!(f.chunks().len(), want.len(), "{name}");
        for (c, w) in f.chunks().iter().zip(want) {
            assert_eq!(
                c.fourcc.to_string(),
                w["fourcc"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(c.name, w["name"].as_str().unwrap(), "{name}");
            assert_eq!(c.offset, w["offset"].as_u64().unwrap(), "{name}");
            assert_eq!(c.length, w["length"].as_u64().unwrap(), "{name}");
            assert_eq!(c.ulen, w["ulen"].as_u64().unwrap(), "{name}");
            assert_eq!(u64::from(c.flags.0), w["flags"].as_u64().unwrap(), "{name}");
        }
    }
}

#[test]
fn valid_files_validate_and_every_tensor_hashes_to_truth() {
    let e = expected();
    let valid = [
        "test-vector.aero",
        "mixed-single-shard.aero",
        "mixed-multishard.aero",
        "ihsh-phsh.aero",
        "convert-output.aero",
        "aeroset-local/part-000.aero",
        "aeroset-local/part-001.aero",
        "aeroset-local/part-002.aero",
    ];
    let mut set_seen = std::collections::BTreeSet::new();
    for name in valid {
        let f = AeroFile::open(golden().join(name)).unwrap();
        let r = aero_io::validate(&f, Mode::Full, &|_| {});
        assert_eq!(r.verdict, Verdict::Valid, "{name}: {:?}", r.errors);
        assert!(r.chunks.iter().all(|c| c.status == "verified"), "{name}");
        let set = e["files"][name]["tensors"].as_str().unwrap_or("mixed");
        let truth = tensor_set(set);
        for t in f.index().unwrap().tensors() {
            let v = f.tensor(&t.name).unwrap();
            let w = &truth[&t.name];
            assert_eq!(
                blake3::hash(v.bytes()).to_hex().as_str(),
                w["blake3"].as_str().unwrap(),
                "{name}/{}",
                t.name
            );
            assert_eq!(t.dtype.code() as u64, w["dtype"].as_u64().unwrap());
            assert_eq!(t.data_len, w["data_len"].as_u64().unwrap());
            let shape: Vec<u64> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            assert_eq!(t.shape, shape);
            if name.starts_with("aeroset") {
                set_seen.insert(t.name.clone());
            } else {
                // Every tensor of the set is present in single files.
                assert_eq!(f.index().unwrap().len(), truth.len(), "{name}");
            }
        }
    }
    assert_eq!(
        set_seen.len(),
        10,
        "the three AEROSET parts hold all ten tensors"
    );
}

#[test]
fn ihsh_and_phsh_checks_pass() {
    let f = AeroFile::open(golden().join("ihsh-phsh.aero")).unwrap();
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_eq!(r.control, aero_io::ControlStatus::Verified);
    assert_eq!(r.pages.len(), 3);
    assert!(r.pages.iter().all(|p| p.status == "verified"));
    assert_eq!(
        r.pages.iter().map(|p| p.pages).collect::<Vec<_>>(),
        [1, 16, 1]
    );
    let r = aero_io::validate(&f, Mode::Control, &|_| {});
    assert_eq!(r.verdict, Verdict::Valid);
}

#[test]
fn mjsn_zero_hash_is_not_recorded_not_corrupt() {
    let f = AeroFile::open(golden().join("mjsn-zero-hash.aero")).unwrap();
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_eq!(r.verdict, Verdict::ValidWithWarnings, "{:?}", r.errors);
    for c in &r.chunks {
        let want = if c.fourcc == "MJSN" {
            "hash-not-recorded"
        } else {
            "verified"
        };
        assert_eq!(c.status, want, "{}", c.name);
    }
    let mjsn = f.first(aero_io::FourCc::MJSN).unwrap();
    assert_eq!(
        f.read_verified(mjsn).unwrap().1,
        ChunkStatus::HashNotRecorded
    );
    let truth = tensor_set("mixed");
    for t in f.index().unwrap().tensors() {
        assert_eq!(
            blake3::hash(f.tensor(&t.name).unwrap().bytes())
                .to_hex()
                .as_str(),
            truth[&t.name]["blake3"].as_str().unwrap()
        );
    }
}

#[test]
fn tensor_hash_defect_names_shard_and_the_eight_damaged_tensors() {
    let e = expected();
    let info = &e["files"]["tensor-hash-defect.aero"];
    let damaged: Vec<&str> = info["damaged_tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let intact: Vec<&str> = info["intact_tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let f = AeroFile::open(golden().join("tensor-hash-defect.aero")).unwrap();
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_eq!(r.verdict, Verdict::Invalid);
    let shard = r
        .chunks
        .iter()
        .find(|c| c.name == "weights.shard0")
        .unwrap();
    assert_eq!(shard.status, "mismatch");
    assert!(
        r.chunks
            .iter()
            .filter(|c| c.name != "weights.shard0")
            .all(|c| c.status == "verified")
    );
    let mut bad: Vec<&str> = r
        .tensors
        .iter()
        .filter(|t| t.hash_b3 == "mismatch")
        .map(|t| t.name.as_str())
        .collect();
    let mut want = damaged.clone();
    bad.sort();
    want.sort();
    assert_eq!(bad, want);
    let truth = tensor_set("mixed");
    for n in &damaged {
        assert!(
            matches!(f.tensor(n), Err(aero_io::Error::Corrupt { .. })),
            "{n} must be refused"
        );
    }
    for n in &intact {
        let v = f.tensor(n).unwrap();
        assert_eq!(
            blake3::hash(v.bytes()).to_hex().as_str(),
            truth[*n]["blake3"].as_str().unwrap()
        );
    }
}

#[test]
fn set_index_file_reads_without_shards() {
    let f = AeroFile::open(golden().join("aeroset-local/index.aero")).unwrap();
    assert!(f.is_set_index());
    assert_eq!(f.index().unwrap().len(), 10);
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_ne!(r.verdict, Verdict::Invalid, "{:?}", r.errors);
}

#[test]
fn golden_sha256_unchanged() {
    // Guards against a test accidentally writing into ../shared.
    let e = expected();
    for name in aero_files() {
        let bytes = std::fs::read(golden().join(&name)).unwrap();
        let want = e["files"][&name]["sha256"].as_str().unwrap();
        let got = sha256_hex(&bytes);
        assert_eq!(got, want, "{name}");
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use std::process::Command;
    // Use the system's sha256sum to keep sha2 out of aero-io's dev-deps.
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A source that records every read, like a remote range source would see them.
struct Counting {
    data: Vec<u8>,
    reads: std::sync::Mutex<Vec<(u64, usize)>>,
}

impl aero_io::ByteSource for Counting {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.reads.lock().unwrap().push((offset, buf.len()));
        let s = offset as usize;
        buf.copy_from_slice(
            self.data
                .get(s..s + buf.len())
                .ok_or(std::io::ErrorKind::UnexpectedEof)?,
        );
        Ok(())
    }
}

#[test]
fn a_range_source_sees_one_read_per_region() {
    let data = std::fs::read(golden().join("ihsh-phsh.aero")).unwrap();
    let src = std::sync::Arc::new(Counting {
        data,
        reads: Default::default(),
    });
    struct Shared(std::sync::Arc<Counting>);
    impl aero_io::ByteSource for Shared {
        fn len(&self) -> u64 {
            self.0.len()
        }
        fn read_exact_at(&self, o: u64, b: &mut [u8]) -> std::io::Result<()> {
            self.0.read_exact_at(o, b)
        }
    }
    let f = AeroFile::from_source("remote.aero", Box::new(Shared(src.clone()))).unwrap();
    assert_eq!(
        src.reads.lock().unwrap().len(),
        1,
        "header+TOC+string table in one read"
    );
    f.index().unwrap();
    assert_eq!(src.reads.lock().unwrap().len(), 2, "TIDX in one read");
    let t = f.index().unwrap().get("big.weight").unwrap();
    let (off, len) = f.tensor_range(t).unwrap();
    f.tensor("big.weight").unwrap();
    let reads = src.reads.lock().unwrap().clone();
    // No hash_b3: the PHSH chunk (once), then the pages covering the tensor.
    assert_eq!(reads.len(), 4, "{reads:?}");
    let phsh = f
        .find(
            aero_io::FourCc::PHSH,
            &format!("weights.shard{}.phsh", t.shard_id),
        )
        .unwrap();
    assert_eq!(
        reads[2],
        (phsh.offset, phsh.length as usize),
        "{reads:?} {off} {len}"
    );
    let (start, n) = reads[3];
    assert!(start <= off && start + n as u64 >= off + len, "{reads:?}");
    assert!(
        n as u64 <= len + 2 * 1024,
        "at most a page more on each side: {reads:?}"
    );
    f.tensor("big.weight").unwrap();
    assert_eq!(src.reads.lock().unwrap().len(), 5, "PHSH decoded once");
}
