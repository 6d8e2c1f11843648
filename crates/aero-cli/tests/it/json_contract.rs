//! The `--json` contract: every command that takes `--json` is run through
//! the binary — on success and on failure — and each document is checked
//! against its published JSON Schema (`docs/schema/<command>.json`; the
//! error document against `docs/schema/error.json`). The schemas forbid
//! unknown fields and require the documented ones, so a command that
//! emits a field the schema does not allow, or leaves out a required one,
//! fails here. Inputs: the reference's golden files (`../shared/golden`),
//! gguf-py's `reference-gguf/source.gguf`, and safetensors files, a
//! sharded checkpoint and a model folder written in the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use aero_test_support::{Cli, golden, json, repo, safetensors::Dtype, write_safetensors};
use serde_json::Value;

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn schema(name: &str) -> Value {
    let p = repo().join("docs/schema").join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

/// The errors of `doc` against `docs/schema/<name>.json` (empty: valid).
fn violations(name: &str, doc: &Value) -> Vec<String> {
    let v = jsonschema::validator_for(&schema(name)).expect("a valid schema");
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Every subcommand that takes `--json`, from the clap definition itself.
fn commands_with_json() -> BTreeSet<String> {
    aero_cli::command()
        .get_subcommands()
        .filter(|c| c.get_arguments().any(|a| a.get_long() == Some("json")))
        .map(|c| c.get_name().to_owned())
        .collect()
}

/// Runs `args`, checks the exit code, and checks stdout against the
/// command's schema (or the error document's when `code` is not 0 and
/// the command is not one that reports: `validate`, `diff`).
struct Checker {
    seen: BTreeSet<String>,
    docs: Vec<(String, Value)>,
}

impl Checker {
    fn run(&mut self, args: &[&str], code: i32) -> Value {
        let o: Output = cli().run(args);
        self.check(args, o, code)
    }

    /// [`Checker::run`] for a command already run (`args` as given to it).
    fn check(&mut self, args: &[&str], o: Output, code: i32) -> Value {
        assert_eq!(
            o.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let doc = json(&o);
        let cmd = args[0];
        let name = if doc.get("error").is_some() && cmd != "validate" {
            "error"
        } else if cmd == "info" {
            "inspect"
        } else {
            cmd
        };
        let bad = violations(name, &doc);
        assert!(
            bad.is_empty(),
            "{args:?} against {name}.json: {bad:#?}\n{doc:#}"
        );
        if code != 0 && doc.get("error").is_some() {
            assert_eq!(doc["exit_code"], code, "{args:?}: {doc}");
            // The stderr line is the same message with the documented prefix.
            let err = String::from_utf8_lossy(&o.stderr);
            if cmd != "validate" {
                assert!(
                    err.lines()
                        .any(|l| l
                            == format!("aerotensor: error: {}", doc["error"].as_str().unwrap())),
                    "{args:?}: {err}"
                );
            }
        }
        if code == 0 {
            self.seen.insert(cmd.to_owned());
        }
        self.docs.push((name.to_owned(), doc.clone()));
        doc
    }
}

/// A safetensors file with a wide (CJK) tensor name and several dtypes.
fn zoo(path: &Path) {
    write_safetensors(
        path,
        &[
            ("权重.weight".into(), Dtype::F32, vec![2, 3], vec![0; 24]),
            ("a.bf16".into(), Dtype::BF16, vec![4], vec![1; 8]),
            ("b.f8".into(), Dtype::F8_E4M3, vec![4], vec![2; 4]),
            ("c.i64".into(), Dtype::I64, vec![1], vec![3; 8]),
            ("d.bool".into(), Dtype::BOOL, vec![2], vec![1, 0]),
        ],
        Some(&[("model_name", "zoo")]),
    );
}

/// A sharded checkpoint: two safetensors files and their index.
fn sharded(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let a = vec![("x.weight".to_string(), Dtype::F32, vec![8], vec![7u8; 32])];
    let b = vec![("y.weight".to_string(), Dtype::F32, vec![8], vec![9u8; 32])];
    write_safetensors(&dir.join("model-00001-of-00002.safetensors"), &a, None);
    write_safetensors(&dir.join("model-00002-of-00002.safetensors"), &b, None);
    let idx = dir.join("model.safetensors.index.json");
    std::fs::write(
        &idx,
        serde_json::json!({"metadata": {"total_size": 64}, "weight_map": {
            "x.weight": "model-00001-of-00002.safetensors",
            "y.weight": "model-00002-of-00002.safetensors"}})
        .to_string(),
    )
    .unwrap();
    idx
}

#[test]
fn every_json_output_matches_its_published_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |n: &str| tmp.path().join(n);
    let mut c = Checker {
        seen: BTreeSet::new(),
        docs: Vec::new(),
    };
    let g = |n: &str| golden(n).to_str().unwrap().to_owned();
    let gguf = g("reference-gguf/source.gguf");
    let ref_aero = g("reference-gguf/reference-converted.aero");
    let set = g("aeroset-local");
    let st = t("zoo.safetensors");
    zoo(&st);

    // Readers, every input kind.
    for f in [
        g("mixed-multishard.aero"),
        g("ihsh-phsh.aero"),
        ref_aero.clone(),
        gguf.clone(),
        s(&st).to_owned(),
        set.clone(),
    ] {
        c.run(&["inspect", &f, "--json"], 0);
        c.run(&["list", &f, "--json"], 0);
    }
    c.run(
        &["inspect", &gguf, "--json", "--all-values", "--all-tensors"],
        0,
    );
    c.run(
        &[
            "info",
            &g("test-vector.aero"),
            "--json",
            "--filter",
            "linear.*",
        ],
        0,
    );
    c.run(&["inspect-set", &set, "--json", "--max-tensors", "2"], 0);
    for f in [
        g("mixed-multishard.aero"),
        g("mjsn-zero-hash.aero"),
        set.clone(),
        ref_aero.clone(),
    ] {
        c.run(&["validate", &f, "--json"], 0);
        c.run(&["validate", "--full", &f, "--json"], 0);
    }
    c.run(
        &["validate", "--control", &g("ihsh-phsh.aero"), "--json"],
        0,
    );
    c.run(
        &[
            "diff",
            &g("test-vector.aero"),
            &g("test-vector.aero"),
            "--json",
        ],
        0,
    );
    c.run(
        &[
            "diff",
            &g("mixed-multishard.aero"),
            &g("mixed-single-shard.aero"),
            "--json",
            "--numeric",
        ],
        0,
    );
    c.run(&["diff", &gguf, &ref_aero, "--json", "--numeric"], 0);
    c.run(
        &[
            "diff",
            &g("convert-input.safetensors"),
            &g("convert-output.aero"),
            "--json",
        ],
        0,
    );

    // Writers.
    let one = t("one.aero");
    c.run(&["convert", s(&st), s(&one), "--json"], 0);
    c.run(
        &["convert-safetensors", s(&st), s(&t("two.aero")), "--json"],
        0,
    );
    c.run(&["convert-gguf", &gguf, s(&t("g.aero")), "--json"], 0);
    // A tensor above --max-shard-bytes is reported, not hidden.
    let r = c.run(
        &[
            "repack",
            &g("mixed-multishard.aero"),
            s(&t("r.aero")),
            "--max-shard-bytes",
            "4K",
            "--json",
        ],
        0,
    );
    assert!(
        !r["oversized_tensors"].as_array().unwrap().is_empty(),
        "{r}"
    );
    c.run(
        &[
            "repack",
            "--force",
            &g("test-vector.aero"),
            s(&t("f.aero")),
            "--json",
        ],
        0,
    );
    c.run(
        &[
            "export-safetensors",
            &g("convert-output.aero"),
            s(&t("e.safetensors")),
            "--json",
        ],
        0,
    );
    c.run(
        &[
            "export-safetensors",
            &set,
            s(&t("d.safetensors")),
            "--dequantize",
            "f32",
            "--json",
        ],
        0,
    );
    c.run(
        &["export-gguf", s(&t("g.aero")), s(&t("e.gguf")), "--json"],
        0,
    );
    c.run(
        &["convert", s(&one), s(&t("back.safetensors")), "--json"],
        0,
    );
    c.run(&["export-hf", s(&one), s(&t("hf-out")), "--json"], 0);
    let idx = sharded(&t("ckpt"));
    c.run(
        &[
            "convert-safetensors-sharded",
            s(&idx),
            s(&t("set-a")),
            "--json",
        ],
        0,
    );
    c.run(&["convert", s(&t("ckpt")), s(&t("set-b")), "--json"], 0);
    c.run(
        &[
            "convert",
            s(&t("ckpt")),
            s(&t("set-c")),
            "--like",
            s(&t("set-b")),
            "--json",
        ],
        0,
    );
    let folder = t("folder");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("config.json"), r#"{"architectures": ["Zoo"]}"#).unwrap();
    std::fs::copy(&st, folder.join("model.safetensors")).unwrap();
    c.run(&["convert", s(&folder), s(&t("folder.aero")), "--json"], 0);

    // push and pull through the in-process S3 server: the golden set up,
    // then back down.
    #[cfg(feature = "s3")]
    {
        use super::remote_s3::{bin, server, setup};
        let srv = server();
        let (_rt, _store, bucket) = setup(&srv);
        let cache = t("s3-cache");
        let url = format!("s3://{bucket}/set/");
        let args = ["push", set.as_str(), url.as_str(), "--json"];
        let o = bin(&srv, &srv.secret_key, &cache)
            .args(args)
            .output()
            .unwrap();
        c.check(&args, o, 0);
        let manifest = format!("{url}model.aeroset.json");
        let pulled = t("pulled");
        let args = ["pull", manifest.as_str(), s(&pulled), "--json"];
        let o = bin(&srv, &srv.secret_key, &cache)
            .args(args)
            .output()
            .unwrap();
        c.check(&args, o, 0);
    }

    // Every command with --json was run successfully at least once (pull
    // needs a remote server: the S3 one, so only with the `s3` feature).
    let missing: Vec<_> = commands_with_json()
        .into_iter()
        .filter(|n| !c.seen.contains(n))
        .filter(|n| cfg!(feature = "s3") || n != "pull")
        .collect();
    assert!(missing.is_empty(), "not exercised: {missing:?}");

    // Failures: one error document per command (a missing input: exit 2),
    // damage (exit 1), usage errors before the arguments could be read.
    let nothing = t("nothing.aero");
    let nothing = s(&nothing);
    for cmd in commands_with_json() {
        let args: Vec<&str> = match cmd.as_str() {
            "diff" => vec!["diff", nothing, nothing, "--json"],
            "export-hf" => vec!["export-hf", nothing, s(&folder), "--json"],
            "convert-safetensors-sharded" => vec![&*cmd, nothing, "/nonexistent-out", "--json"],
            c2 if c2.starts_with("convert") || c2.starts_with("export") || c2 == "repack" => {
                vec![&*cmd, nothing, "/nonexistent-dir/out.x", "--json"]
            }
            _ => vec![&*cmd, nothing, "--json"],
        };
        c.run(&args, 2);
    }
    let bad = t("bad.aero");
    let mut bytes = std::fs::read(golden("mixed-multishard.aero")).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 1;
    std::fs::write(&bad, bytes).unwrap();
    c.run(&["validate", "--full", s(&bad), "--json"], 1);
    c.run(&["diff", &g("mixed-multishard.aero"), s(&bad), "--json"], 1);
    c.run(
        &[
            "export-safetensors",
            s(&bad),
            s(&t("x.safetensors")),
            "--json",
        ],
        1,
    );
    let cut = t("cut.aero");
    std::fs::write(
        &cut,
        &std::fs::read(golden("mixed-multishard.aero")).unwrap()[..600],
    )
    .unwrap();
    c.run(&["validate", "--json", s(&cut)], 1);
    c.run(&["inspect", "--json", s(&cut)], 1);
    c.run(&["inspect", "--json", "--no-such-flag"], 2);
    c.run(&["extract-nothing", "--json"], 2);

    // The schemas are strict: each document with one field added, or one
    // required field taken away, is refused.
    for (name, doc) in &c.docs {
        let mut extra = doc.clone();
        extra
            .as_object_mut()
            .unwrap()
            .insert("not_in_the_contract".into(), Value::Bool(true));
        assert!(
            !violations(name, &extra).is_empty(),
            "{name}: extra field accepted"
        );
        let mut less = doc.clone();
        let first = less.as_object().unwrap().keys().next().unwrap().clone();
        less.as_object_mut().unwrap().remove(&first);
        assert!(
            !violations(name, &less).is_empty(),
            "{name}: missing '{first}' accepted"
        );
    }
    // And nested: a tensor entry with an unknown key is refused.
    let (_, listed) = c
        .docs
        .iter()
        .find(|(n, d)| n == "list" && d["format"] == "AERO")
        .unwrap();
    let mut nested = listed.clone();
    nested["tensors"][0]["data_len"] = Value::from(1);
    assert!(!violations("list", &nested).is_empty());
}

/// One vocabulary across formats: a tensor is `name`, `dtype`, `shape`,
/// `bytes` whichever format holds it, with the same dtype names (`f32`,
/// not `F32`), and the input is `input` with its `format`.
#[test]
fn one_vocabulary_across_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let st = tmp.path().join("zoo.safetensors");
    zoo(&st);
    let aero = tmp.path().join("zoo.aero");
    cli().ok(&["convert", s(&st), s(&aero)]);
    let list = |p: &Path| json(&cli().run(&["list", s(p), "--json"]));
    let (a, b) = (list(&st), list(&aero));
    assert_eq!(a["format"], "safetensors");
    assert_eq!(b["format"], "AERO");
    assert_eq!(a["input"], s(&st));
    let view = |v: &Value| -> Vec<(String, String, String, u64)> {
        let mut r: Vec<_> = v["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_owned(),
                    t["dtype"].as_str().unwrap().to_owned(),
                    t["shape"].to_string(),
                    t["bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        r.sort();
        r
    };
    assert_eq!(view(&a), view(&b));
    let dtypes: BTreeSet<String> = view(&a).into_iter().map(|t| t.1).collect();
    assert_eq!(
        dtypes,
        ["bf16", "bool", "f32", "f8_e4m3", "i64"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    // GGUF: the F32 tensors of gguf-py's file are `f32` there and in its
    // conversion; block types keep ggml's names.
    let gguf = golden("reference-gguf/source.gguf");
    let g = json(&cli().run(&["list", s(&gguf), "--json"]));
    let conv = tmp.path().join("g.aero");
    cli().ok(&["convert", s(&gguf), s(&conv)]);
    let ga = list(&conv);
    assert_eq!(view(&g), view(&ga));
    assert!(view(&g).iter().any(|t| t.1 == "f32"), "{g}");
    assert!(
        view(&g)
            .iter()
            .any(|t| t.1.starts_with('Q') || t.1.starts_with("TQ")),
        "{g}"
    );
    // The histogram says `dtype` too, in the same names.
    let i = json(&cli().run(&["inspect", s(&gguf), "--json"]));
    assert!(
        i["types"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["dtype"].is_string())
    );
    // Sizes are `size` everywhere.
    let w = json(&cli().run(&["convert", s(&st), s(&tmp.path().join("w.aero")), "--json"]));
    assert_eq!(
        w["size"],
        std::fs::metadata(tmp.path().join("w.aero")).unwrap().len()
    );
    let set = json(&cli().run(&["inspect", s(&golden("aeroset-local")), "--json"]));
    assert!(
        set["parts"][0]["size"].is_u64() && set["size"].is_u64(),
        "{set}"
    );
}
