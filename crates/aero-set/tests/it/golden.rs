//! The reference-written `aeroset-local` golden set: parts number their shards
//! locally, so every tensor must be found by name through the part's TIDX.

use std::io::Read;
use std::path::PathBuf;

use aero_io::{Mode, Verdict};
use aero_set::{AeroSet, validate_set};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden")
        .join(name)
}

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(golden("expected.json")).unwrap()).unwrap()
}

#[test]
fn all_ten_tensors_have_the_right_bytes() {
    let set = AeroSet::open(golden("aeroset-local")).unwrap();
    assert_eq!(set.manifest().version, [0, 1]);
    assert_eq!(set.manifest().model.name, "golden-set");
    assert_eq!(set.part_count(), 3);
    assert!((0..3).all(|i| !set.part_is_open(i)), "parts open lazily");
    let e = expected();
    let truth = e["tensor_sets"]["mixed"].as_object().unwrap();
    let idx = set.index().unwrap();
    assert_eq!(idx.len(), truth.len());
    assert_eq!(truth.len(), 10);
    for (name, t) in truth {
        let v = set.tensor(name).unwrap();
        assert_eq!(
            aero_io::verify::hash(v.bytes()).to_hex().as_str(),
            t["blake3"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            u64::from(v.dtype().code()),
            t["dtype"].as_u64().unwrap(),
            "{name}"
        );
        let shape: Vec<u64> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(v.shape(), shape.as_slice(), "{name}");
        assert_eq!(
            v.bytes().len() as u64,
            t["data_len"].as_u64().unwrap(),
            "{name}"
        );
        if std::env::var_os("AEROTENSOR_NO_MMAP").is_none() {
            assert!(v.is_zero_copy(), "{name}: view borrows the part mapping");
        }
        // The streaming reader yields the same bytes.
        let mut buf = Vec::new();
        set.tensor_reader_unverified(name)
            .unwrap()
            .read_to_end(&mut buf)
            .unwrap();
        assert_eq!(buf, v.bytes(), "{name}");
    }
    assert!((0..3).all(|i| set.part_is_open(i)), "parts stay open");
}

#[test]
fn global_shard_ids_differ_from_the_parts_local_ids() {
    // The defect the by-name lookup exists for: the global TIDX says shard 2,
    // the part only has weights.shard0.
    let set = AeroSet::open(golden("aeroset-local/model.aeroset.json")).unwrap();
    let (loc, part, entry) = set.resolve_tensor("scalar").unwrap();
    assert_eq!(loc.global.shard_id, 2);
    assert_eq!(loc.part, 2);
    assert_eq!(entry.shard_id, 0);
    assert!(part.shard(2).is_err());
    assert!(part.shard(0).is_ok());
}

#[test]
fn validates_quick_and_full() {
    let set = AeroSet::open(golden("aeroset-local")).unwrap();
    for mode in [Mode::Quick, Mode::Full] {
        let r = validate_set(&set, mode, &|_| {});
        assert_eq!(
            r.verdict,
            Verdict::Valid,
            "{mode:?}: {:?} {:?}",
            r.errors,
            r.warnings
        );
        assert_eq!(r.tensor_count, 10);
        assert_eq!(r.tensors_ok, 10);
        assert_eq!(r.files.len(), 4);
        assert!(r.files.iter().all(|f| f.sha256 == "verified"));
        assert!(
            r.files.iter().all(|f| f.verdict == Some(Verdict::Valid)),
            "{:?}",
            r.files
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["valid"], true);
        assert_eq!(json["files"][1]["path"], "part-000.aero");
    }
}

#[test]
fn unknown_tensor_is_a_clear_error() {
    let set = AeroSet::open(golden("aeroset-local")).unwrap();
    let e = set.tensor("nope").unwrap_err().to_string();
    assert!(
        e.contains("no tensor named 'nope'") && e.contains("model.aeroset.json"),
        "{e}"
    );
}
