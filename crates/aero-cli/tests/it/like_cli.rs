//! `--like OLD_SET`: a new revision of a sharded checkpoint converted on
//! the plan of the set it replaces. Every part whose tensors did not change
//! comes out byte-identical (compared byte for byte with the old files);
//! the result validates and reads the new values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use aero_test_support::{Cli, StTensor, bytes, json, safetensors::Dtype, write_safetensors};
use serde_json::Value;

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(args: &[&str]) -> Output {
    cli().run(args)
}

fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A checkpoint as `transformers` saves one: tensors spread over
/// `files` safetensors files in name order, and the index.
struct Checkpoint {
    tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)>,
}

impl Checkpoint {
    /// `n` f32 tensors of 1024 elements (4 KiB), `layer.000.weight`…
    fn new(n: usize) -> Checkpoint {
        Checkpoint {
            tensors: (0..n)
                .map(|i| {
                    (
                        format!("layer.{i:03}.weight"),
                        (vec![1024], bytes(i as u64 + 1, 4096)),
                    )
                })
                .collect(),
        }
    }

    fn write(&self, dir: &Path, files: usize) {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let names: Vec<&String> = self.tensors.keys().collect();
        let per = names.len().div_ceil(files);
        let mut weight_map = serde_json::Map::new();
        let mut total = 0usize;
        for (f, chunk) in names.chunks(per).enumerate() {
            let file = format!("model-{:05}-of-{files:05}.safetensors", f + 1);
            let ts: Vec<StTensor> = chunk
                .iter()
                .map(|n| {
                    let (shape, b) = &self.tensors[*n];
                    total += b.len();
                    weight_map.insert((*n).clone(), Value::String(file.clone()));
                    ((*n).clone(), Dtype::F32, shape.clone(), b.clone())
                })
                .collect();
            write_safetensors(&dir.join(&file), &ts, Some(&[("format", "pt")]));
        }
        let index =
            serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();
    }
}

/// The flags of every conversion here: 8 KiB shards (two tensors each),
/// one shard per part, a fixed identity.
const FLAGS: &[&str] = &[
    "--max-shard-bytes",
    "8K",
    "--max-part-shards",
    "1",
    "--model-name",
    "like-test",
    "--architecture",
    "TestLM",
];

fn convert(ckpt: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["convert-safetensors-sharded", s(ckpt), s(out), "--json"];
    args.extend_from_slice(FLAGS);
    args.extend_from_slice(extra);
    json(&ok(&args))
}

fn manifest(set: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(set.join("model.aeroset.json")).unwrap()).unwrap()
}

fn part_files(set: &Path) -> Vec<String> {
    manifest(set)["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect()
}

/// The part of `set` that holds `tensor` (from `list --json`).
fn part_of(set: &Path, tensor: &str) -> String {
    let v = json(&ok(&["list", "--json", s(set)]));
    v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == tensor)
        .unwrap_or_else(|| panic!("{tensor} not in {}", set.display()))["part"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The part files of `new` whose bytes differ from the file of the same
/// name in `old` (or that `old` does not have).
fn differing_parts(old: &Path, new: &Path) -> Vec<String> {
    part_files(new)
        .into_iter()
        .filter(|p| std::fs::read(old.join(p)).ok() != Some(std::fs::read(new.join(p)).unwrap()))
        .collect()
}

/// Every tensor of `set`, extracted (verified) and compared with `ckpt`.
fn assert_reads(set: &Path, ckpt: &Checkpoint, tmp: &Path) {
    let v = json(&ok(&["list", "--json", s(set)]));
    let names: Vec<&str> = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = ckpt.tensors.keys().map(String::as_str).collect();
    let mut got = names.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let out = tmp.join("t.bin");
    for (name, (_, b)) in &ckpt.tensors {
        ok(&["extract", s(set), name, s(&out)]);
        assert_eq!(&std::fs::read(&out).unwrap(), b, "{name}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn setup(tmp: &Path) -> (Checkpoint, PathBuf, PathBuf) {
    let ckpt = Checkpoint::new(20);
    let src = tmp.join("ckpt");
    ckpt.write(&src, 3);
    let v1 = tmp.join("v1");
    let summary = convert(&src, &v1, &[]);
    assert_eq!(summary["parts"], 10, "{summary}");
    (ckpt, src, v1)
}

#[test]
fn changing_one_tensor_of_a_ten_part_set_changes_one_part() {
    let d = tempfile::tempdir().unwrap();
    let (mut ckpt, src, v1) = setup(d.path());
    let v1_parts = part_files(&v1);
    assert_eq!(v1_parts.len(), 10);

    // Without --like, a second conversion of the same checkpoint shares no
    // part with the first (random UUIDs): what --like is for.
    let again = d.path().join("again");
    convert(&src, &again, &[]);
    assert_eq!(differing_parts(&v1, &again).len(), 10);

    // Revision 2: one tensor's values change.
    let changed = "layer.007.weight";
    ckpt.tensors.get_mut(changed).unwrap().1 = bytes(777, 4096);
    ckpt.write(&src, 3);
    let v2 = d.path().join("v2");
    let summary = convert(&src, &v2, &["--like", s(&v1)]);

    // Byte for byte, every part but one is the old file.
    let diff = differing_parts(&v1, &v2);
    assert_eq!(diff, vec![part_of(&v1, changed)], "parts that differ");
    assert_eq!(part_files(&v2), v1_parts, "part names and order kept");
    assert_eq!(part_of(&v2, changed), part_of(&v1, changed));
    // The summary says so too.
    assert_eq!(summary["changed_parts"], serde_json::json!(diff));
    assert_eq!(summary["identical_parts"].as_array().unwrap().len(), 9);
    // Index and manifest change (new tensor hash, new part hash).
    assert_ne!(
        std::fs::read(v1.join("index.aero")).unwrap(),
        std::fs::read(v2.join("index.aero")).unwrap()
    );
    assert_ne!(manifest(&v1), manifest(&v2));

    ok(&["validate", "--full", s(&v2)]);
    assert_reads(&v2, &ckpt, d.path());

    // Updating in place (OLD_SET is the output) through `convert` gives the
    // same files: the plan is read before the set is replaced.
    let v1_kept = d.path().join("v1-kept");
    copy_dir(&v1, &v1_kept);
    let mut args = vec!["convert", s(&src), s(&v1), "--like", s(&v1)];
    args.extend(
        FLAGS
            .iter()
            .filter(|f| !f.starts_with("--max-part") && **f != "1"),
    );
    let o = ok(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("9 of 10 parts identical to {}", v1.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("new or changed: {}", diff[0])),
        "{err}"
    );
    for f in std::fs::read_dir(&v2).unwrap() {
        let name = f.unwrap().file_name();
        assert_eq!(
            std::fs::read(v1.join(&name)).unwrap(),
            std::fs::read(v2.join(&name)).unwrap(),
            "{name:?}: an in-place update writes what a fresh one does"
        );
    }
    assert_eq!(differing_parts(&v1_kept, &v1), diff);
    assert!(aero_test_support::leftovers(d.path()).is_empty());
}

#[test]
fn added_removed_and_resized_tensors_leave_the_other_parts_alone() {
    let d = tempfile::tempdir().unwrap();
    let (mut ckpt, src, v1) = setup(d.path());
    let removed = "layer.003.weight";
    let grown = "layer.015.weight";
    let (p_removed, p_grown) = (part_of(&v1, removed), part_of(&v1, grown));
    ckpt.tensors.remove(removed);
    // Twice the size: its part now needs more shards than it had.
    ckpt.tensors
        .insert(grown.into(), (vec![2048], bytes(1515, 8192)));
    // Sorted first by name, but new: it goes to a new part at the end.
    ckpt.tensors
        .insert("aaa.new.weight".into(), (vec![1024], bytes(4242, 4096)));
    ckpt.write(&src, 3);
    let v2 = d.path().join("v2");
    convert(&src, &v2, &["--like", s(&v1)]);

    let mut diff = differing_parts(&v1, &v2);
    diff.sort();
    let mut want = vec![
        p_removed.clone(),
        p_grown.clone(),
        "part-010.aero".to_string(),
    ];
    want.sort();
    assert_eq!(diff, want);
    assert_eq!(part_of(&v2, "aaa.new.weight"), "part-010.aero");
    assert_eq!(part_of(&v2, grown), p_grown);
    let mut names = part_files(&v1);
    names.push("part-010.aero".into());
    assert_eq!(part_files(&v2), names);
    // No shard id is claimed twice, and the grown part took fresh ids.
    let m = manifest(&v2);
    let mut ids: Vec<u64> = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["shards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
        })
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "{m}");

    ok(&["validate", "--full", "--strict", s(&v2)]);
    assert_reads(&v2, &ckpt, d.path());

    // A third revision on v2's plan: nothing changed, nothing differs.
    let v3 = d.path().join("v3");
    let summary = convert(&src, &v3, &["--like", s(&v2)]);
    assert!(differing_parts(&v2, &v3).is_empty());
    assert_eq!(summary["changed_parts"], serde_json::json!([]));
    // Every tensor removed from a part: the part is dropped, and its name
    // is not reused for other tensors.
    let only = ckpt
        .tensors
        .iter()
        .filter(|(n, _)| part_of(&v2, n) != "part-000.aero")
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    let ckpt4 = Checkpoint { tensors: only };
    ckpt4.write(&src, 2);
    let v4 = d.path().join("v4");
    convert(&src, &v4, &["--like", s(&v2)]);
    assert!(!part_files(&v4).contains(&"part-000.aero".to_string()));
    assert!(differing_parts(&v2, &v4).is_empty());
    ok(&["validate", "--full", s(&v4)]);
}

#[test]
fn like_is_refused_where_it_cannot_apply() {
    let d = tempfile::tempdir().unwrap();
    let (_, src, v1) = setup(d.path());
    // With a fixed UUID: the plan fixes the UUIDs.
    let o = run(&[
        "convert-safetensors-sharded",
        s(&src),
        s(&d.path().join("x")),
        "--like",
        s(&v1),
        "--uuid",
        "00112233445566778899aabbccddeeff",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--uuid"));
    // Single-file output.
    let st = d.path().join("one.safetensors");
    write_safetensors(&st, &[("w".into(), Dtype::F32, vec![2], vec![0; 8])], None);
    let o = run(&[
        "convert",
        s(&st),
        s(&d.path().join("one.aero")),
        "--like",
        s(&v1),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("aerotensor: error: --like applies when the output is an AEROSET"),
        "{err}"
    );
    assert!(!d.path().join("one.aero").exists());
    // OLD_SET missing, or not a set (a safetensors file: valid input of
    // another kind, a usage error): exit 2, named in the error, nothing
    // written.
    let out = d.path().join("y");
    for (old, code) in [(d.path().join("missing"), 2), (st.clone(), 2)] {
        let o = run(&[
            "convert-safetensors-sharded",
            s(&src),
            s(&out),
            "--like",
            s(&old),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{err}");
        assert!(
            err.starts_with(&format!("aerotensor: error: --like {}", old.display())),
            "{err}"
        );
        assert!(!out.exists());
    }
}
