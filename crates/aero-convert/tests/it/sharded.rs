//! Hugging Face sharded safetensors → AEROSET, on checkpoints written by the
//! Python `safetensors` package (tests/fixtures/gen_sharded.py).

use std::path::{Path, PathBuf};
use std::process::Command;

use aero_convert::sharded::{ShardedSafetensors, import};
use aero_io::write::WriteOptions;
use aero_io::{Mode, Verdict};
use aero_set::{AeroSet, SetWriteOptions, validate_set};
use serde_json::{Value, json};

type Edit = Box<dyn FnOnce(&mut Value)>;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn gen_sharded(out: &Path, extra: &[&str]) {
    let o = Command::new("python3")
        .arg(repo_root().join("tests/fixtures/gen_sharded.py"))
        .arg(out)
        .args(extra)
        .output()
        .expect("python3 is needed (cargo xtask setup installs the packages)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

use aero_test_support::read_safetensors_dir as source_tensors;

fn opts(max_shard_bytes: u64, max_part_shards: usize) -> SetWriteOptions {
    SetWriteOptions {
        file: WriteOptions {
            max_shard_bytes,
            tensor_hash: true,
            ..WriteOptions::default()
        },
        max_part_shards,
        ..Default::default()
    }
}

#[test]
fn converts_and_every_tensor_equals_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hf");
    gen_sharded(&src, &[]);
    let truth = source_tensors(&src);
    assert!(truth.len() > 20);

    let inp = ShardedSafetensors::open(&src).unwrap();
    assert_eq!(inp.len(), truth.len());
    assert_eq!(inp.files().count(), 3);
    assert_eq!(
        inp.data_len(),
        truth.values().map(|t| t.data.len() as u64).sum::<u64>()
    );

    let out = tmp.path().join("set");
    let s = inp.write(&out, &opts(4096, 2), &|_| {}).unwrap();
    assert!(s.manifest.parts.len() >= 2, "{:?}", s.manifest.parts);

    let set = AeroSet::open(&out).unwrap();
    assert_eq!(set.manifest().model.name, "tiny-sharded");
    assert_eq!(set.manifest().model.architecture, "LlamaForCausalLM");
    let names: Vec<&str> = set
        .index()
        .unwrap()
        .tensors()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "tensors sorted by name");
    assert_eq!(names.len(), truth.len());
    for (name, t) in &truth {
        let v = set.tensor(name).unwrap();
        assert_eq!(v.bytes(), t.data.as_slice(), "{name}");
        assert_eq!(v.shape(), t.shape.as_slice(), "{name}");
        assert_eq!(
            aero_convert::safetensors::safetensors_name(v.dtype()),
            Some(t.dtype.as_str()),
            "{name}"
        );
    }
    let meta = set.part(0).unwrap().meta_json().unwrap().unwrap();
    assert_eq!(meta["source_format"], "safetensors");
    assert_eq!(
        meta["safetensors_index_metadata"]["model_name"],
        "tiny-sharded"
    );
    // Not the set-wide total_size: parts stay identical across revisions
    // that add or resize tensors elsewhere (aero_set::plan).
    assert!(
        meta["safetensors_index_metadata"]
            .get("total_size")
            .is_none()
    );
    assert_eq!(meta["safetensors_metadata"], json!({"format": "pt"}));

    let r = validate_set(&set, Mode::Full, &|_| {});
    assert_eq!(r.verdict, Verdict::Valid, "{:?} {:?}", r.errors, r.warnings);
}

#[test]
fn index_file_input_and_default_names() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hf");
    gen_sharded(&src, &["--no-metadata", "--shards", "2"]);
    let out = tmp.path().join("set");
    let s = import(
        &src.join("model.safetensors.index.json"),
        &out,
        &opts(1 << 30, 4),
    )
    .unwrap();
    assert_eq!(s.manifest.parts.len(), 1);
    assert_eq!(s.manifest.model.name, "converted-sharded");
    assert_eq!(s.manifest.model.architecture, "unknown");
    let set = AeroSet::open(out.join("model.aeroset.json")).unwrap();
    for (name, t) in source_tensors(&src) {
        assert_eq!(
            set.tensor(&name).unwrap().bytes(),
            t.data.as_slice(),
            "{name}"
        );
    }
}

fn edit_index(src: &Path, f: impl FnOnce(&mut Value)) {
    let p = src.join("model.safetensors.index.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn inconsistent_or_hostile_indexes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hf");
    gen_sharded(&src, &[]);
    let pristine = std::fs::read(src.join("model.safetensors.index.json")).unwrap();
    const SHARD1: &str = "model-00001-of-00003.safetensors";
    let shard1 = SHARD1;
    let cases: Vec<(Edit, &[&str])> = vec![
        (
            Box::new(|v| v["weight_map"]["model.norm.weight"] = json!("../x.safetensors")),
            &["weight_map[\"model.norm.weight\"]", ".."],
        ),
        (
            Box::new(|v| v["weight_map"]["model.norm.weight"] = json!("/etc/passwd")),
            &["weight_map[\"model.norm.weight\"]", "absolute"],
        ),
        (
            Box::new(|v| v["weight_map"]["model.norm.weight"] = json!(3)),
            &["weight_map[\"model.norm.weight\"]", "string"],
        ),
        (
            Box::new(|v| v["weight_map"]["ghost"] = json!(SHARD1)),
            &["ghost", "no such tensor"],
        ),
        (
            Box::new(|v| {
                drop(
                    v["weight_map"]
                        .as_object_mut()
                        .unwrap()
                        .remove("lm_head.weight"),
                )
            }),
            &["lm_head.weight", "not in weight_map"],
        ),
        (
            Box::new(|v| v["weight_map"]["lm_head.weight"] = json!(SHARD1)),
            &["lm_head.weight", "weight_map maps it to"],
        ),
        (
            Box::new(|v| v["weight_map"]["lm_head.weight"] = json!("missing.safetensors")),
            &["missing.safetensors", "cannot open"],
        ),
        (
            Box::new(|v| drop(v.as_object_mut().unwrap().remove("weight_map"))),
            &["weight_map", "missing"],
        ),
        (
            Box::new(|v| v["metadata"] = json!([1])),
            &["metadata", "object"],
        ),
    ];
    for (edit, want) in cases {
        std::fs::write(src.join("model.safetensors.index.json"), &pristine).unwrap();
        edit_index(&src, edit);
        let e = ShardedSafetensors::open(&src).unwrap_err().to_string();
        for w in want {
            assert!(e.contains(w), "'{w}' not in: {e}");
        }
    }

    // Two index files: ambiguous.
    std::fs::write(src.join("model.safetensors.index.json"), &pristine).unwrap();
    std::fs::write(src.join("other.safetensors.index.json"), &pristine).unwrap();
    let e = ShardedSafetensors::open(&src).unwrap_err().to_string();
    assert!(e.contains("more than one"), "{e}");
    // Naming one explicitly works.
    assert!(ShardedSafetensors::open(&src.join("other.safetensors.index.json")).is_ok());

    #[cfg(unix)]
    {
        // A shard file that is a symlink leading out of the directory.
        let outside = tmp.path().join("outside.safetensors");
        std::fs::rename(src.join(shard1), &outside).unwrap();
        std::os::unix::fs::symlink(&outside, src.join(shard1)).unwrap();
        let e = ShardedSafetensors::open(&src.join("model.safetensors.index.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside"), "{e}");
    }
}
