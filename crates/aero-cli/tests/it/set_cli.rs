//! The `aerotensor` binary on AEROSETs: inspect-set, validate, list,
//! extract, fetch-tensor, convert-safetensors-sharded and convert routing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

type Edit = Box<dyn Fn(&mut Value)>;

fn bin() -> Command {
    aero_test_support::Cli::new(env!("CARGO_BIN_EXE_aerotensor")).cmd()
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

use aero_test_support::{golden, repo as repo_root};

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} / {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn b3(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}

fn gen_sharded(out: &Path) {
    let o = Command::new("python3")
        .arg(repo_root().join("tests/fixtures/gen_sharded.py"))
        .arg(out)
        .output()
        .expect("python3 is needed (cargo xtask setup installs the packages)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// name → bytes of every tensor in the `*.safetensors` files of `dir`.
fn source_tensors(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    aero_test_support::read_safetensors_dir(dir)
        .into_iter()
        .map(|(k, t)| (k, t.data))
        .collect()
}

#[test]
fn golden_set_inspects_lists_and_validates() {
    let g = golden("aeroset-local");
    let o = run(&["inspect-set", "--json", s(&g)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    assert_eq!(v["model"]["name"], "golden-set");
    assert_eq!(v["version"], serde_json::json!([0, 1]));
    assert_eq!(v["parts"].as_array().unwrap().len(), 3);
    assert_eq!(v["tensor_count"], 10);
    assert_eq!(v["tensors"][7]["part"], "part-001.aero");

    let o = run(&["inspect-set", s(&g.join("model.aeroset.json"))]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("AEROSET 0.1") && text.contains("part-002.aero"),
        "{text}"
    );

    for args in [vec!["validate"], vec!["validate", "--full"]] {
        for target in [g.clone(), g.join("model.aeroset.json")] {
            let mut a = args.clone();
            a.push("--json");
            a.push(s(&target));
            let o = run(&a);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stdout)
            );
            let r = json(&o);
            assert_eq!(r["format"], "AEROSET");
            assert_eq!(r["verdict"], "valid");
            assert_eq!(r["tensors_ok"], 10);
        }
    }
    let o = run(&["validate", s(&g)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("AEROSET VALID (quick mode"));

    let o = run(&["list", "--json", s(&g)]);
    let v = json(&o);
    let t = v["tensors"].as_array().unwrap();
    assert_eq!(t.len(), 10);
    assert!(t.iter().all(|t| t["part"].is_string()));
    let o = run(&["list", s(&g)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("part-001.aero"));
}

#[test]
fn fetch_tensor_and_extract_give_the_right_bytes() {
    let g = golden("aeroset-local");
    let e: Value =
        serde_json::from_slice(&std::fs::read(golden("expected.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (name, t) in e["tensor_sets"]["mixed"].as_object().unwrap() {
        let want = t["blake3"].as_str().unwrap();
        let o = run(&["fetch-tensor", s(&g), name, "-"]);
        assert_eq!(o.status.code(), Some(0), "{name}");
        assert_eq!(b3(&o.stdout), want, "{name}");
        let out = tmp.path().join(format!("{name}.bin"));
        let o = run(&["extract", s(&g.join("model.aeroset.json")), name, s(&out)]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(b3(&std::fs::read(&out).unwrap()), want, "{name}");
    }
    let o = run(&["fetch-tensor", s(&g), "nope", "-"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no tensor named 'nope'") && err.lines().count() == 1,
        "{err}"
    );
}

/// Writers that read a set never write over one of its files: `extract
/// --as` and `export-safetensors --dequantize` once replaced the index or a
/// part (found by a new-user walkthrough), breaking the set.
#[test]
fn outputs_onto_a_file_of_the_input_set_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    std::fs::create_dir(&set).unwrap();
    for e in std::fs::read_dir(golden("aeroset-local")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, set.join(p.file_name().unwrap())).unwrap();
    }
    let before: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&set)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    let name = run(&["list", "--json", s(&set)]);
    let name = json(&name)["tensors"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    for target in before.keys() {
        let dest = set.join(target);
        for args in [
            vec!["extract", "--as", "f32", s(&set), &name, s(&dest)],
            vec![
                "export-safetensors",
                s(&set),
                s(&dest),
                "--dequantize",
                "f32",
            ],
            vec!["fetch-tensor", s(&set), &name, s(&dest)],
        ] {
            let o = run(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains("is the same file as the input") && err.contains(target.as_str()),
                "{args:?}: {err}"
            );
        }
    }
    for (f, bytes) in &before {
        assert_eq!(&std::fs::read(set.join(f)).unwrap(), bytes, "{f} changed");
    }
    let o = run(&["validate", "--full", s(&set)]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn sharded_checkpoint_converts_validates_and_matches_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hf");
    gen_sharded(&src);
    let truth = source_tensors(&src);
    let out = tmp.path().join("set");
    let o = run(&[
        "convert-safetensors-sharded",
        s(&src),
        s(&out),
        "--max-shard-bytes",
        "4096",
        "--max-part-shards",
        "2",
        "--tensor-hash",
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    assert_eq!(v["tensors"], truth.len());
    assert!(v["parts"].as_u64().unwrap() >= 2);
    assert_eq!(v["model"]["name"], "tiny-sharded");

    let o = run(&["validate", "--full", "--json", s(&out)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    for (name, data) in &truth {
        let o = run(&["fetch-tensor", s(&out), name, "-"]);
        assert_eq!(o.status.code(), Some(0), "{name}");
        assert_eq!(&o.stdout, data, "{name}");
    }

    // Converting again over our own set replaces it.
    let o = run(&[
        "convert-safetensors-sharded",
        s(&src.join("model.safetensors.index.json")),
        s(&out),
        "--max-shard-bytes",
        "4096",
        "--max-part-shards",
        "2",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // But a directory holding anything else is refused.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.txt"), b"mine").unwrap();
    let o = run(&["convert-safetensors-sharded", s(&src), s(&other)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(other.join("keep.txt").is_file());

    // Corrupt one byte of one part: validation fails and names that part only.
    let set: Value =
        serde_json::from_slice(&std::fs::read(out.join("model.aeroset.json")).unwrap()).unwrap();
    let victim = set["parts"][1]["path"].as_str().unwrap().to_string();
    let p = out.join(&victim);
    let mut b = std::fs::read(&p).unwrap();
    let at = b.len() - 100; // in the last chunk payload
    b[at] ^= 0x01;
    std::fs::write(&p, b).unwrap();
    for full in [false, true] {
        let mut a = vec!["validate", "--json"];
        if full {
            a.push("--full");
        }
        a.push(s(&out));
        let o = run(&a);
        assert_eq!(o.status.code(), Some(1), "full={full}");
        let r = json(&o);
        assert_eq!(r["valid"], false);
        let errs = r["errors"].as_array().unwrap();
        assert!(!errs.is_empty());
        for e in errs {
            assert!(
                e.as_str().unwrap().starts_with(&format!("{victim}: ")),
                "{e}"
            );
        }
    }
    let o = run(&["validate", s(&out)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("error: {victim}: SHA-256 mismatch")),
        "{text}"
    );
}

#[test]
fn convert_routes_sharded_input_to_a_set() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hf");
    gen_sharded(&src);
    for (i, input) in [src.clone(), src.join("model.safetensors.index.json")]
        .iter()
        .enumerate()
    {
        let out = tmp.path().join(format!("set{i}"));
        let o = run(&["convert", s(input), s(&out)]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.join("model.aeroset.json").is_file());
        assert_eq!(run(&["validate", s(&out)]).status.code(), Some(0));
    }
    // Single files still convert to single files.
    let st = golden("convert-input.safetensors");
    let out = tmp.path().join("single.aero");
    assert_eq!(run(&["convert", s(&st), s(&out)]).status.code(), Some(0));
    assert_eq!(run(&["validate", s(&out)]).status.code(), Some(0));
}

#[test]
fn hostile_manifests_are_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("set");
    std::fs::create_dir(&dir).unwrap();
    for f in [
        "index.aero",
        "part-000.aero",
        "part-001.aero",
        "part-002.aero",
    ] {
        std::fs::copy(golden("aeroset-local").join(f), dir.join(f)).unwrap();
    }
    let base: Value =
        serde_json::from_slice(&std::fs::read(golden("aeroset-local/model.aeroset.json")).unwrap())
            .unwrap();
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "traversal",
            Box::new(|m| m["parts"][0]["path"] = "../part-000.aero".into()),
            "parts[0].path",
        ),
        (
            "absolute",
            Box::new(|m| m["global_tidx"]["path"] = "/etc/passwd".into()),
            "global_tidx.path",
        ),
        (
            "two owners",
            Box::new(|m| m["parts"][2]["shards"] = serde_json::json!([2, 1])),
            "parts[2].shards[1]",
        ),
        (
            "wrong type",
            Box::new(|m| m["parts"][1]["shards"] = "1".into()),
            "parts[1].shards",
        ),
        (
            "missing",
            Box::new(|m| drop(m["parts"][1].as_object_mut().unwrap().remove("size_bytes"))),
            "parts[1].size_bytes",
        ),
        (
            "url",
            Box::new(|m| m["parts"][1]["path"] = "https://example.invalid/p.aero".into()),
            "parts[1].path",
        ),
    ];
    for (what, edit, field) in cases {
        let mut m = base.clone();
        edit(&mut m);
        std::fs::write(
            dir.join("model.aeroset.json"),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
        // A damaged manifest is invalid data (exit 1); a remote path in a
        // local manifest is refused by policy (exit 2).
        let code = if what == "url" { 2 } else { 1 };
        for cmd in [vec!["inspect-set"], vec!["list"]] {
            let mut a = cmd.clone();
            a.push(s(&dir));
            let o = run(&a);
            assert_eq!(o.status.code(), Some(code), "{what} {cmd:?}");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains(&format!("field `{field}`")),
                "{what} {cmd:?}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        // validate reports it: one JSON document with the error, same exit code.
        let o = run(&["validate", "--json", s(&dir)]);
        assert_eq!(o.status.code(), Some(code), "{what} validate");
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["valid"], false);
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .contains(&format!("field `{field}`")),
            "{what}: {r}"
        );
    }
    // A shard missing from every part is a validation failure (exit 1).
    let mut m = base.clone();
    m["parts"][2]["shards"] = serde_json::json!([]);
    std::fs::write(
        dir.join("model.aeroset.json"),
        serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
    let o = run(&["validate", s(&dir)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("shard 2"));
}

/// The independent Python reader (tests/pyref) accepts every file of a set we
/// write and returns, from the parts, the bytes our set reader returns.
#[test]
fn independent_reader_accepts_the_files_of_a_set_we_write() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hf");
    gen_sharded(&src);
    let out = tmp.path().join("set");
    let o = run(&[
        "convert-safetensors-sharded",
        s(&src),
        s(&out),
        "--max-shard-bytes",
        "4096",
        "--max-part-shards",
        "2",
        "--tensor-hash",
        "--layout",
        "reference",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let pyref = repo_root().join("tests/pyref/aero_ref.py");
    let list = json(&run(&["list", "--json", s(&out)]));
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "aero") {
            let o = Command::new("python3")
                .arg(&pyref)
                .args(["validate", s(&p), "--json"])
                .output()
                .unwrap();
            let r: Value = serde_json::from_slice(&o.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
            assert_eq!(r["valid"], true, "{}: {r}", p.display());
        }
    }
    for t in list["tensors"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let part = out.join(t["part"].as_str().unwrap());
        let dump = tmp.path().join("dump.bin");
        let o = Command::new("python3")
            .arg(&pyref)
            .args(["dump-tensor", s(&part), name, s(&dump)])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let ours = run(&["fetch-tensor", s(&out), name, "-"]).stdout;
        assert_eq!(std::fs::read(&dump).unwrap(), ours, "{name}");
    }
}

/// A shard's error names it as the user would: beside the index they gave,
/// not by its canonical absolute path.
#[test]
fn a_bad_shard_is_named_relative_to_the_index_given() {
    let tmp = tempfile::tempdir().unwrap();
    let hf = tmp.path().join("hf");
    std::fs::create_dir(&hf).unwrap();
    std::fs::write(
        hf.join("model.safetensors.index.json"),
        r#"{"weight_map": {"w": "g.safetensors"}}"#,
    )
    .unwrap();
    std::fs::write(hf.join("g.safetensors"), b"garbage!garbage!").unwrap();
    let o = bin()
        .current_dir(tmp.path())
        .args(["convert-safetensors-sharded", "hf", "out"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("aerotensor: error: hf/g.safetensors: safetensors: "),
        "{err}"
    );
    assert!(!tmp.path().join("out").exists());
}
