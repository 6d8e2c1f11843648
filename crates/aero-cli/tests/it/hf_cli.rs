//! Hugging Face model folders through the `aerotensor` binary: `convert
//! HF_DIR` (one `.aero` or an AEROSET carrying config, tokenizer and the
//! rest), `inspect` / `extract --file` of attached files, `export-hf` back to
//! the same folder byte for byte, damaged attached files, unusable folders
//! and outputs. Folders are written by `tests/fixtures/gen_hf_folder.py`
//! with the `safetensors` package. (The `transformers` round trip on a real
//! model is `crates/aero-py/tests/torch_tests/test_torch_hf_folder.py`.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aero_test_support::{Cli, json, leftovers, repo};

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A model folder made by the fixture generator with `args`.
fn gen_folder(out: &Path, args: &[&str]) {
    let o = Command::new("python3")
        .arg(repo().join("tests/fixtures/gen_hf_folder.py"))
        .arg(out)
        .args(args)
        .output()
        .expect("python3 is needed (cargo xtask setup installs the packages)");
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Every regular file under `dir`: relative path → bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(at: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(at).unwrap() {
            let e = e.unwrap();
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{name}/"), out);
            } else {
                out.insert(name, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, "", &mut out);
    out
}

/// The folder as it should come back: without what a converter leaves out.
fn without_extras(mut t: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    t.retain(|k, _| !k.starts_with(".git/") && k != "pytorch_model.bin" && !k.starts_with("onnx/"));
    t
}

fn assert_same_tree(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) {
    let (ka, kb): (Vec<&String>, Vec<&String>) = (a.keys().collect(), b.keys().collect());
    assert_eq!(ka, kb, "file lists differ");
    for (k, v) in a {
        assert!(v == &b[k], "{k} differs");
    }
}

fn pyref(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(repo().join("tests/pyref/aero_ref.py"))
        .args(args)
        .output()
        .expect("python3 is needed (cargo xtask setup installs the packages)")
}

/// Flips one byte of `file` at `offset`.
fn flip(file: &Path, offset: u64) {
    let mut b = std::fs::read(file).unwrap();
    b[offset as usize] ^= 0x20;
    std::fs::write(file, b).unwrap();
}

fn no_leftovers(dir: &Path) {
    let l = leftovers(dir);
    assert!(l.is_empty(), "temporaries left behind: {l:?}");
}

#[test]
fn folder_converts_whole_and_exports_back_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("tiny-bert");
    gen_folder(&src, &["--extras"]);
    let aero = tmp.path().join("tiny.aero");
    let o = cli().run(&["convert", "--json", s(&src), s(&aero)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["model"]["name"], "tiny-org/tiny-bert");
    assert_eq!(v["model"]["architecture"], "BertModel");
    let attached: Vec<&str> = v["attached_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(
        attached,
        [
            "1_Pooling/config.json",
            "README.md",
            "added_tokens.json",
            "config.json",
            "generation_config.json",
            "special_tokens_map.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "vocab.txt",
        ]
    );
    let left: Vec<(&str, &str)> = v["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap(), x["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        left,
        [
            (".git/", "hidden directory"),
            ("onnx/model.onnx", "weights in another format"),
            ("pytorch_model.bin", "weights in another format"),
        ]
    );
    // Without --json the left-out files are named on stderr.
    let o = cli().run(&["convert", s(&src), s(&tmp.path().join("again.aero"))]);
    assert!(
        stderr(&o).contains("left out pytorch_model.bin (weights in another format)"),
        "{}",
        stderr(&o)
    );

    // inspect lists the attached files, verified; the MMSG names the model.
    let v = json(&cli().run(&["inspect", "--json", s(&aero)]));
    assert_eq!(v["model"]["name"], "tiny-org/tiny-bert");
    let files = v["attached_files"].as_array().unwrap();
    assert_eq!(files.len(), attached.len());
    for f in files {
        assert_eq!(f["status"], "verified", "{f}");
        let name = f["name"].as_str().unwrap();
        assert_eq!(
            f["size"].as_u64().unwrap(),
            std::fs::metadata(src.join(name)).unwrap().len()
        );
    }
    let text = cli().ok(&["inspect", s(&aero)]);
    assert!(
        text.contains("attached files: 9") && text.contains("tokenizer_config.json"),
        "{text}"
    );

    // extract --file: the bytes of the source file, to a file or stdout.
    let out = tmp.path().join("cfg.json");
    cli().ok(&["extract", s(&aero), "--file", "config.json", s(&out)]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(src.join("config.json")).unwrap()
    );
    let o = cli().run(&["extract", s(&aero), "--file", "1_Pooling/config.json", "-"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        o.stdout,
        std::fs::read(src.join("1_Pooling/config.json")).unwrap()
    );
    let o = cli().run(&["extract", s(&aero), "--file", "nope.json", s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no attached file named 'nope.json'"),
        "{}",
        stderr(&o)
    );

    assert_eq!(
        cli().run(&["validate", "--full", s(&aero)]).status.code(),
        Some(0)
    );

    // Back to a folder: the source folder again, byte for byte, minus
    // what was left out.
    let back = tmp.path().join("back");
    let o = cli().run(&["export-hf", "--json", s(&aero), s(&back)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["original_layout"], true);
    assert_same_tree(&tree(&back), &without_extras(tree(&src)));
    no_leftovers(tmp.path());

    // An existing empty directory is fine; a non-empty one is refused.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    cli().ok(&["export-hf", s(&aero), s(&empty)]);
    assert_same_tree(&tree(&empty), &tree(&back));
    let o = cli().run(&["export-hf", s(&aero), s(&back)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("exists and is not empty"),
        "{}",
        stderr(&o)
    );
    assert_same_tree(&tree(&back), &tree(&empty));
}

/// A reader that knows only the spec reads and validates a file carrying
/// attached files: it skips the FILE chunks (verifying their hashes as it
/// does every chunk's) and returns the source's tensors.
#[test]
fn spec_reader_validates_a_file_with_attached_files() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m");
    gen_folder(&src, &[]);
    let aero = tmp.path().join("m.aero");
    cli().ok(&["convert", "--control-integrity", s(&src), s(&aero)]);
    let o = pyref(&["validate", s(&aero), "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{r}");
    assert_eq!(r["valid"], true);
    assert_eq!(r["control"], "verified");
    let chunks = r["chunks"].as_array().unwrap();
    let files: Vec<&serde_json::Value> = chunks.iter().filter(|c| c["fourcc"] == "FILE").collect();
    assert_eq!(files.len(), 9);
    assert!(chunks.iter().all(|c| c["status"] == "verified"), "{r}");
    let source = aero_test_support::read_safetensors_dir(&src);
    assert_eq!(r["tensors"].as_object().unwrap().len(), source.len());
    for (name, t) in &source {
        assert_eq!(
            r["tensors"][name]["blake3"],
            blake3::hash(&t.data).to_hex().as_str(),
            "{name}"
        );
    }
}

#[test]
fn sharded_folder_round_trips_through_a_set_and_through_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("sharded");
    gen_folder(&src, &["--shards", "3"]);
    assert!(src.join("model-00003-of-00003.safetensors").is_file());

    // A sharded folder becomes an AEROSET (its name does not end in .aero),
    // named from config.json, with the folder's files beside the manifest.
    let set = tmp.path().join("set");
    let o = cli().run(&[
        "convert",
        "--json",
        "--max-shard-bytes",
        "2K",
        s(&src),
        s(&set),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["model"]["name"], "tiny-org/tiny-bert");
    assert_eq!(v["model"]["architecture"], "BertModel");
    assert!(v["parts"].as_u64().unwrap() > 1, "{v}");
    assert_eq!(
        std::fs::read(set.join("tokenizer.json")).unwrap(),
        std::fs::read(src.join("tokenizer.json")).unwrap()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(set.join("model.aeroset.json")).unwrap()).unwrap();
    assert_eq!(manifest["model"]["name"], "tiny-org/tiny-bert");
    assert_eq!(
        manifest["files"].as_array().unwrap().len(),
        10,
        "{manifest}"
    );
    assert_eq!(
        manifest["huggingface"]["index"], "model.safetensors.index.json",
        "{manifest}"
    );
    assert_eq!(
        cli().run(&["validate", "--full", s(&set)]).status.code(),
        Some(0)
    );
    let v = json(&cli().run(&["inspect", "--json", s(&set)]));
    assert_eq!(v["files"].as_array().unwrap().len(), 10);
    let cfg = tmp.path().join("cfg.json");
    cli().ok(&["extract", s(&set), "--file", "config.json", s(&cfg)]);
    assert_eq!(
        std::fs::read(&cfg).unwrap(),
        std::fs::read(src.join("config.json")).unwrap()
    );

    let back = tmp.path().join("back-set");
    cli().ok(&["export-hf", s(&set), s(&back)]);
    assert_same_tree(&tree(&back), &tree(&src));

    // The same folder into one file (OUT ends in .aero), and back.
    let one = tmp.path().join("one.aero");
    cli().ok(&["convert", s(&src), s(&one)]);
    let back1 = tmp.path().join("back-one");
    cli().ok(&["export-hf", s(&one), s(&back1)]);
    assert_same_tree(&tree(&back1), &tree(&src));

    // convert-safetensors-sharded on the folder: a set with the files too.
    let set2 = tmp.path().join("set2");
    cli().ok(&["convert-safetensors-sharded", s(&src), s(&set2)]);
    assert!(set2.join("config.json").is_file());

    // Given the index file alone: the weights only, still named from the
    // config.json beside it (it used to be "converted-sharded"/"unknown").
    let set3 = tmp.path().join("set3");
    let o = cli().run(&[
        "convert",
        "--json",
        s(&src.join("model.safetensors.index.json")),
        s(&set3),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["model"]["name"], "tiny-org/tiny-bert", "{v}");
    assert_eq!(v["model"]["architecture"], "BertModel");
    assert!(!set3.join("config.json").exists());
    no_leftovers(tmp.path());
}

#[test]
fn model_name_and_architecture_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m");
    gen_folder(&src, &[]);
    let aero = tmp.path().join("m.aero");
    cli().ok(&[
        "convert",
        "--model-name",
        "my-model",
        "--architecture",
        "MyArch",
        s(&src),
        s(&aero),
    ]);
    let v = json(&cli().run(&["inspect", "--json", s(&aero)]));
    assert_eq!(v["model"]["name"], "my-model");
    assert_eq!(v["model"]["architecture"], "MyArch");
    // Plain safetensors and sharded inputs take them too.
    let st = tmp.path().join("st.aero");
    cli().ok(&[
        "convert-safetensors",
        "--model-name",
        "plain",
        s(&src.join("model.safetensors")),
        s(&st),
    ]);
    assert_eq!(
        json(&cli().run(&["inspect", "--json", s(&st)]))["model"]["name"],
        "plain"
    );
    // An AERO input keeps its own.
    let o = cli().run(&["convert", "--model-name", "x", s(&aero), s(&st)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("keeps its own model name"),
        "{}",
        stderr(&o)
    );
    // Without config.json the name falls back to the folder's.
    std::fs::remove_file(src.join("config.json")).unwrap();
    let v = json(&cli().run(&["convert", "--json", s(&src), s(&aero)]));
    assert_eq!(v["model"]["name"], "m");
}

#[test]
fn a_damaged_attached_file_is_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m");
    gen_folder(&src, &[]);
    let aero = tmp.path().join("m.aero");
    cli().ok(&["convert", s(&src), s(&aero)]);
    let v = json(&cli().run(&["inspect", "--json", s(&aero)]));
    let chunk = v["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["fourcc"] == "FILE" && c["name"] == "tokenizer.json")
        .unwrap()
        .clone();
    flip(&aero, chunk["offset"].as_u64().unwrap() + 7);

    let out = tmp.path().join("out");
    let o = cli().run(&["export-hf", s(&aero), s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("'tokenizer.json'") && stderr(&o).contains("mismatch"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    no_leftovers(tmp.path());
    let o = cli().run(&[
        "extract",
        s(&aero),
        "--file",
        "tokenizer.json",
        s(&tmp.path().join("t")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("'tokenizer.json'"), "{}", stderr(&o));
    assert!(!tmp.path().join("t").exists());
    // The other attached files and the tensors still read.
    cli().ok(&[
        "extract",
        s(&aero),
        "--file",
        "config.json",
        s(&tmp.path().join("c")),
    ]);
    let o = cli().run(&["validate", s(&aero)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("tokenizer.json"));
    let o = cli().run(&["inspect", s(&aero)]);
    assert_eq!(o.status.code(), Some(1));
    // The spec-only reader sees the damage too.
    assert_eq!(pyref(&["validate", s(&aero)]).status.code(), Some(1));

    // In a set: the file beside the manifest.
    let set = tmp.path().join("set");
    cli().ok(&["convert-safetensors-sharded", s(&src), s(&set)]);
    flip(&set.join("config.json"), 3);
    let o = cli().run(&["export-hf", s(&set), s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("config.json") && stderr(&o).contains("SHA-256"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    let o = cli().run(&["validate", s(&set)]);
    assert_eq!(o.status.code(), Some(1));
    no_leftovers(tmp.path());
}

#[test]
fn a_damaged_tensor_leaves_no_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m");
    gen_folder(&src, &[]);
    let aero = tmp.path().join("m.aero");
    cli().ok(&["convert", s(&src), s(&aero)]);
    let v = json(&cli().run(&["inspect", "--json", s(&aero)]));
    let shard = v["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["fourcc"] == "WTSH")
        .unwrap()
        .clone();
    flip(&aero, shard["offset"].as_u64().unwrap() + 5);
    let out = tmp.path().join("out");
    let o = cli().run(&["export-hf", s(&aero), s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!out.exists());
    no_leftovers(tmp.path());
}

#[test]
fn unusable_folders_and_outputs_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    // No weights at all.
    let empty = tmp.path().join("no-weights");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("config.json"), "{}").unwrap();
    let out = tmp.path().join("o.aero");
    let o = cli().run(&["convert", s(&empty), s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no-weights") && stderr(&o).contains("model.safetensors"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());

    // A symbolic link leaving the folder.
    let src = tmp.path().join("m");
    gen_folder(&src, &[]);
    let secret = tmp.path().join("secret.txt");
    std::fs::write(&secret, "do not ship").unwrap();
    std::os::unix::fs::symlink(&secret, src.join("notes.txt")).unwrap();
    let o = cli().run(&["convert", s(&src), s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("notes.txt") && stderr(&o).contains("outside the folder"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    // A link that stays inside is followed.
    std::fs::remove_file(src.join("notes.txt")).unwrap();
    std::os::unix::fs::symlink("README.md", src.join("notes.txt")).unwrap();
    let o = cli().run(&["convert", "--json", s(&src), s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        json(&o)["attached_files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "notes.txt")
    );

    // Malformed config.json: damaged content, named.
    let bad = tmp.path().join("bad-config");
    gen_folder(&bad, &[]);
    std::fs::write(bad.join("config.json"), "{\"architectures\": [").unwrap();
    let o = cli().run(&["convert", s(&bad), s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));

    // The output inside the input folder.
    let o = cli().run(&["convert", s(&src), s(&src.join("m.aero"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("inside the input folder"),
        "{}",
        stderr(&o)
    );

    // export-hf onto a file.
    let o = cli().run(&["export-hf", s(&out), s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// A model that never was a folder comes out as one canonical
/// model.safetensors (and says config.json is missing).
#[test]
fn a_plain_file_exports_as_one_model_safetensors() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m");
    gen_folder(&src, &["--shards", "2"]);
    let st = tmp.path().join("plain.aero");
    cli().ok(&[
        "convert",
        s(&src.join("model-00001-of-00002.safetensors")),
        s(&st),
    ]);
    let out = tmp.path().join("out");
    let o = cli().run(&["export-hf", "--json", s(&st), s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["original_layout"], false);
    let files: Vec<String> = tree(&out).into_keys().collect();
    assert_eq!(files, ["model.safetensors"]);
    // The same bytes the safetensors exporter writes: one code path.
    let st_out = tmp.path().join("x.safetensors");
    cli().ok(&["export-safetensors", s(&st), s(&st_out)]);
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        std::fs::read(&st_out).unwrap()
    );
    let o = cli().run(&["export-hf", s(&st), s(&tmp.path().join("out2"))]);
    assert!(stderr(&o).contains("no config.json"), "{}", stderr(&o));
}

/// `export-safetensors --dequantize` turns floats into the asked type and
/// keeps integer and bool tensors as they are (position_ids stays I64).
#[test]
fn dequantize_keeps_integer_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m");
    gen_folder(&src, &[]);
    let aero = tmp.path().join("m.aero");
    cli().ok(&["convert", s(&src), s(&aero)]);
    let out: PathBuf = tmp.path().join("f32.safetensors");
    cli().ok(&[
        "export-safetensors",
        s(&aero),
        s(&out),
        "--dequantize",
        "f32",
    ]);
    let (h, _) = aero_test_support::read_safetensors(&out);
    let source = aero_test_support::read_safetensors_dir(&src);
    let p = &h["embeddings.position_ids"];
    assert_eq!(p.dtype, "I64");
    assert_eq!(p.shape, [1, 32]);
    assert_eq!(p.data, source["embeddings.position_ids"].data);
    let m = &h["pooler.mask"];
    assert_eq!(m.dtype, "BOOL");
    assert_eq!(m.data, source["pooler.mask"].data);
    assert_eq!(h["embeddings.LayerNorm.bias"].dtype, "F32"); // f16 source
    assert_eq!(h["pooler.scale"].dtype, "F32"); // f64 source
}
