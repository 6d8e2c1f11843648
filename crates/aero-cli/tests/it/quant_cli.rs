//! Issue 15 as a user meets it: `diff`, `extract --as`,
//! `export-safetensors --dequantize`, and a gguf-py Q8_1 tensor, through the
//! binary. Fixtures come from `gen_quant_cli.py` (gguf-py).

use std::path::{Path, PathBuf};
use std::process::Command;

use aero_test_support::{Cli, json};

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

/// Generates the GGUF fixtures and converts each to AERO (fixed UUID).
/// A temporary directory filled by the fixture script `tests/<script>` (gguf-py).
fn python_fixtures(script: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let o = Command::new("python3")
        .arg(&script)
        .arg(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d
}

fn fixtures() -> (tempfile::TempDir, PathBuf) {
    let d = python_fixtures("gen_quant_cli.py");
    for n in ["a", "changed", "reorder", "requant"] {
        let gguf = d.path().join(format!("{n}.gguf"));
        let aero = d.path().join(format!("{n}.aero"));
        cli().ok(&[
            "convert",
            gguf.to_str().unwrap(),
            aero.to_str().unwrap(),
            "--uuid",
            "000102030405060708090a0b0c0d0e0f",
        ]);
    }
    let p = d.path().to_path_buf();
    (d, p)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn diff_reports_identical_changed_reordered_and_requantized_files() {
    let (_d, p) = fixtures();
    let a = p.join("a.aero");
    let diff = |b: &str, extra: &[&str]| {
        let b = p.join(b);
        let mut args = vec!["diff", s(&a), s(&b), "--json"];
        args.extend_from_slice(extra);
        let o = cli().run(&args);
        (o.status.code(), json(&o))
    };

    // The same file: exit 0, every tensor identical, its bytes verified and compared.
    let (code, r) = diff("a.aero", &[]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["identical"], true);
    assert_eq!(r["tensors"].as_array().unwrap().len(), 3);
    assert!(
        r["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["identical"] == true && t["bytes_identical"] == true)
    );

    // One changed value: exactly norm.weight differs, same dtype and shape.
    let (code, r) = diff("changed.aero", &["--numeric"]);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["identical"], false);
    let changed: Vec<&serde_json::Value> = r["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["identical"] == false)
        .collect();
    assert_eq!(changed.len(), 1, "{r}");
    let t = changed[0];
    assert_eq!(t["name"], "norm.weight");
    assert_eq!(t["dtype_changed"], false);
    assert_eq!(t["shape_changed"], false);
    assert_eq!(t["numeric"]["status"], "compared");
    let abs = t["numeric"]["max_abs_err"].as_f64().unwrap();
    assert!((0.99..=1.01).contains(&abs), "{t}");
    assert!(t["numeric"]["cosine"].as_f64().unwrap() < 1.0);

    // The same tensors in another order: not a difference.
    let (code, r) = diff("reorder.aero", &[]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["identical"], true);
    assert!(r["only_in_a"].as_array().unwrap().is_empty());

    // Requantized Q8_0 -> Q4_0: exactly that tensor, a dtype change named by
    // ggml type, values close but not equal.
    let (code, r) = diff("requant.aero", &["--numeric"]);
    assert_eq!(code, Some(1), "{r}");
    let changed: Vec<&serde_json::Value> = r["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["identical"] == false)
        .collect();
    assert_eq!(changed.len(), 1, "{r}");
    let t = changed[0];
    assert_eq!(t["name"], "blk.0.q.weight");
    assert_eq!(t["dtype_changed"], true);
    assert_eq!(t["a"]["dtype"], "Q8_0");
    assert_eq!(t["b"]["dtype"], "Q4_0");
    assert_eq!(t["shape_changed"], false);
    let cos = t["numeric"]["cosine"].as_f64().unwrap();
    assert!(cos > 0.98 && cos < 1.0, "{t}");

    // The human form says the same, and a missing input is exit 2 with the
    // one JSON error document.
    let o = cli().run(&["diff", s(&a), s(&p.join("requant.aero"))]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Q8_0 -> Q4_0"), "{text}");
    assert!(text.contains("1 changed"), "{text}");
    let o = cli().run(&["diff", s(&a), s(&p.join("missing.aero")), "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json(&o)["exit_code"], 2);
}

#[test]
fn diff_reports_tensors_only_in_one_side() {
    let (_d, p) = fixtures();
    // q81 is refused by convert, so compare a file against the golden-free
    // safetensors round trip: a file with a tensor less.
    let st = p.join("small.safetensors");
    let mut tensors = aero_test_support::f32_model(2, 4);
    aero_test_support::write_safetensors(&st, &tensors, None);
    let one = p.join("one.aero");
    cli().ok(&["convert", s(&st), s(&one)]);
    tensors.truncate(1);
    aero_test_support::write_safetensors(&st, &tensors, None);
    let two = p.join("two.aero");
    cli().ok(&["convert", s(&st), s(&two)]);
    let o = cli().run(&["diff", s(&one), s(&two), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let r = json(&o);
    assert_eq!(r["only_in_a"].as_array().unwrap().len(), 1, "{r}");
    assert!(r["only_in_b"].as_array().unwrap().is_empty());
}

#[test]
fn extract_as_float_equals_gguf_py_and_numpy() {
    let (_d, p) = fixtures();
    let a = p.join("a.aero");
    for (fmt, reference) in [("f32", "q.f32"), ("f16", "q.f16"), ("bf16", "q.bf16")] {
        let out = p.join(format!("out.{fmt}"));
        cli().ok(&["extract", s(&a), "blk.0.q.weight", s(&out), "--as", fmt]);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(p.join(reference)).unwrap(),
            "--as {fmt}"
        );
    }
    // A float tensor is converted: f16 -> f32 widening is exact.
    let out = p.join("norm.f32");
    cli().ok(&["extract", s(&a), "norm.weight", s(&out), "--as", "f32"]);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 4 * 128);
    // Unverified values are not on offer.
    let o = cli().run(&[
        "extract",
        s(&a),
        "norm.weight",
        s(&out),
        "--as",
        "f32",
        "--no-verify",
    ]);
    assert_eq!(o.status.code(), Some(2));
    // An unknown tensor is an error naming it; nothing is written.
    let missing = p.join("missing.f32");
    let o = cli().run(&["extract", s(&a), "nope", s(&missing), "--as", "f32"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
    assert!(!missing.exists());
}

#[test]
fn extract_as_refuses_damaged_bytes() {
    let (_d, p) = fixtures();
    let a = p.join("a.aero");
    let info = json(&cli().run(&["list", "--json", s(&a)]));
    let t = info["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "blk.0.q.weight")
        .unwrap()
        .clone();
    // Find the shard's offset from inspect and flip one tensor byte.
    let ins = json(&cli().run(&["inspect", "--json", s(&a)]));
    let shard = ins["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["fourcc"] == "WTSH")
        .unwrap()
        .clone();
    let at = shard["offset"].as_u64().unwrap() + t["data_off"].as_u64().unwrap() + 5;
    let mut bytes = std::fs::read(&a).unwrap();
    bytes[at as usize] ^= 0x40;
    let bad = p.join("bad.aero");
    std::fs::write(&bad, bytes).unwrap();
    let out = p.join("bad.f32");
    let o = cli().run(&["extract", s(&bad), "blk.0.q.weight", s(&out), "--as", "f32"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists());
}

#[test]
fn export_safetensors_dequantize_writes_a_float_checkpoint() {
    let (_d, p) = fixtures();
    let a = p.join("a.aero");
    let out = p.join("f32.safetensors");
    cli().ok(&["export-safetensors", s(&a), s(&out), "--dequantize", "f32"]);
    let (h, meta) = aero_test_support::read_safetensors(&out);
    let q = &h["blk.0.q.weight"];
    assert_eq!(q.dtype, "F32");
    assert_eq!(q.shape, [8, 64]);
    assert_eq!(h["norm.weight"].dtype, "F32");
    assert_eq!(
        meta.unwrap_or_default()
            .get("model_name")
            .map(String::as_str),
        Some("tiny")
    );
    assert_eq!(q.data, std::fs::read(p.join("q.f32")).unwrap());
    // The output can be converted back: a valid safetensors file.
    let back = p.join("back.aero");
    cli().ok(&["convert", s(&out), s(&back)]);
    // Refused onto its input.
    let o = cli().run(&["export-safetensors", s(&a), s(&a), "--dequantize", "f16"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn gguf_py_q8_1_tensor_is_an_error_naming_it_never_truncated() {
    let (_d, p) = fixtures();
    let out = p.join("q81.aero");
    let o = cli().run(&["convert", s(&p.join("q81.gguf")), s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("q81.weight"), "{err}");
    assert!(err.contains("Q8_1"), "{err}");
    assert!(err.contains("576") && err.contains("640"), "{err}");
    assert!(!out.exists());
}

/// `gen_inspect.py`'s fixtures: kv.gguf (every key/value type, six tensor
/// types, written by gguf-py) and m.safetensors.
fn inspect_fixtures() -> tempfile::TempDir {
    python_fixtures("gen_inspect.py")
}

/// What gguf-py's own `gguf-dump --json --json-array` says of a file.
fn gguf_dump(file: &Path) -> serde_json::Value {
    let o = Command::new("python3")
        .args(["-m", "gguf.scripts.gguf_dump", "--json", "--json-array"])
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every key/value of `ours` (inspect --json --all-values) against gguf-dump's.
/// gguf-dump's type name in the CLI's dtype vocabulary (docs/CLI.md):
/// plain types by AERO's lowercase names, block types as ggml names them.
fn vocab(ggml: &str) -> String {
    match ggml {
        "F32" | "F16" | "BF16" | "F64" | "I8" | "I16" | "I32" | "I64" => ggml.to_ascii_lowercase(),
        _ => ggml.to_owned(),
    }
}

fn assert_same_key_values(ours: &serde_json::Value, dump: &serde_json::Value) {
    let dump_kvs = dump["metadata"].as_object().unwrap();
    let kvs = ours["key_values"].as_array().unwrap();
    let our_keys: Vec<&str> = kvs.iter().map(|kv| kv["key"].as_str().unwrap()).collect();
    let dump_keys: Vec<&str> = dump_kvs.keys().map(String::as_str).collect();
    assert_eq!(our_keys, dump_keys, "keys and their order");
    for kv in kvs {
        let key = kv["key"].as_str().unwrap();
        let d = &dump_kvs[key];
        assert_eq!(kv["type"], d["type"], "{key}");
        if d["type"] == "ARRAY" {
            assert_eq!(kv["array_types"], d["array_types"], "{key}");
            assert_eq!(kv["truncated"], false, "{key}");
            let items = kv["value"].as_array().unwrap();
            assert_eq!(kv["len"], items.len(), "{key}");
            // gguf-py flattens nested arrays; compare plain ones item by item.
            if d["array_types"].as_array().unwrap().len() == 1 {
                assert_eq!(&kv["value"], &d["value"], "{key}");
            }
        } else {
            assert_eq!(kv["value"], d["value"], "{key}");
        }
    }
}

#[test]
fn inspect_gguf_lists_what_gguf_dump_lists() {
    let d = inspect_fixtures();
    let kv = d.path().join("kv.gguf");
    let dump = gguf_dump(&kv);
    let o = cli().run(&[
        "inspect",
        "--json",
        "--all-values",
        "--max-tensors",
        "100",
        s(&kv),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let ours = json(&o);
    assert_eq!(ours["format"], "GGUF");
    assert_eq!(ours["version"], 3);
    assert_same_key_values(&ours, &dump);

    // Tensors: same names in file order, same type names, gguf-dump's
    // `ne` order reversed to row-major, element counts and bits per weight.
    let dump_t = dump["tensors"].as_object().unwrap();
    let tensors = ours["tensors"].as_array().unwrap();
    let names: Vec<&str> = tensors
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, dump_t.keys().map(String::as_str).collect::<Vec<_>>());
    for t in tensors {
        let dt = &dump_t[t["name"].as_str().unwrap()];
        assert_eq!(t["dtype"], vocab(dt["type"].as_str().unwrap()));
        let mut ne: Vec<u64> = dt["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(t["elements"].as_u64().unwrap(), ne.iter().product::<u64>());
        ne.reverse();
        assert_eq!(t["shape"], serde_json::json!(ne));
    }
    let by_name = |n: &str| tensors.iter().find(|t| t["name"] == n).unwrap().clone();
    assert_eq!(by_name("blk.0.attn_q.weight")["bits_per_weight"], 4.5); // Q4_K: 144 B / 256
    assert_eq!(by_name("blk.1.ffn_up.weight")["bytes"], 296); // IQ2_XS: 2 rows × 2 × 74 B
    let types: Vec<&str> = ours["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["dtype"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 6, "{types:?}");
    for want in ["Q4_K", "Q8_0", "IQ2_XS", "f32", "f16", "bf16"] {
        assert!(types.contains(&want), "{want} missing from {types:?}");
    }

    // The summary (default) keeps every key but cuts the vocabulary and the
    // chat template, saying so.
    let sum = cli().ok(&["inspect", "--json", s(&kv)]);
    let sum: serde_json::Value = serde_json::from_str(&sum).unwrap();
    let tokens = sum["key_values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "tokenizer.ggml.tokens")
        .unwrap()
        .clone();
    assert_eq!(tokens["len"], 1000);
    assert_eq!(tokens["truncated"], true);
    assert!(tokens["value"].as_array().unwrap().len() < 20);

    // Text: every key and tensor is there, with gguf-dump's type spellings.
    let text = cli().ok(&["inspect", "--max-tensors", "100", s(&kv)]);
    for key in dump["metadata"].as_object().unwrap().keys() {
        assert!(text.contains(key.as_str()), "{key} missing:\n{text}");
    }
    for want in [
        "[STRING]",
        "[[INT32]]",
        "FLOAT64",
        "IQ2_XS",
        "4.50",
        "tok7",
        "…",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert!(
        !text.contains("tok999"),
        "the vocabulary is summarised:\n{text}"
    );

    // Converted to AERO, `inspect` shows the same key/values (kept in MJSN)
    // and ggml type names instead of `packed`.
    let aero = d.path().join("kv.aero");
    cli().ok(&["convert", s(&kv), s(&aero)]);
    let o = cli().run(&[
        "inspect",
        "--json",
        "--all-values",
        "--max-tensors",
        "100",
        s(&aero),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let a = json(&o);
    assert_same_key_values(&a, &dump);
    let listed = json(&cli().run(&["list", "--json", s(&aero)]));
    for t in listed["tensors"].as_array().unwrap() {
        let want = &dump_t[t["name"].as_str().unwrap()]["type"];
        // One vocabulary: the AERO list says what the GGUF list says.
        assert_eq!(t["dtype"], vocab(want.as_str().unwrap()), "{t}");
        if t["dtype_code"] == 0x8000 {
            assert_eq!(&t["ggml_type"], want, "{t}");
        }
    }
    let text = cli().ok(&["list", s(&aero)]);
    assert!(
        text.contains("IQ2_XS") && !text.contains("packed"),
        "{text}"
    );
}

#[test]
fn inspect_and_list_filter_markdown_and_safetensors() {
    let d = inspect_fixtures();
    let kv = d.path().join("kv.gguf");
    let names = |args: &[&str]| -> Vec<String> {
        let o = cli().run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        json(&o)["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // A glob matches the whole name; a plain pattern is a substring.
    assert_eq!(
        names(&["list", "--json", "--filter", "blk.0.*", s(&kv)]),
        ["blk.0.attn_q.weight", "blk.0.attn_k.weight"]
    );
    assert_eq!(
        names(&["list", "--json", "--filter", "norm", s(&kv)]),
        ["blk.1.ffn_norm.weight"]
    );
    assert!(names(&["list", "--json", "--filter", "blk.0", s(&kv)]).len() == 2);
    let aero = d.path().join("kv.aero");
    cli().ok(&["convert", s(&kv), s(&aero)]);
    assert_eq!(
        names(&["list", "--json", "--filter", "*.attn_?.weight", s(&aero)]),
        ["blk.0.attn_k.weight", "blk.0.attn_q.weight"]
    );
    let i = json(&cli().run(&["inspect", "--json", "--filter", "blk.1.*", s(&aero)]));
    assert_eq!(i["tensor_count"], 6);
    assert_eq!(i["tensors"].as_array().unwrap().len(), 2);
    assert_eq!(
        i["types"].as_array().unwrap().len(),
        2,
        "histogram of the filtered tensors"
    );
    let bad = cli().run(&["list", "--filter", "[", s(&kv)]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--filter"));

    // Markdown for model cards: sections, one row per key and tensor, `|` escaped.
    let md = cli().ok(&["inspect", "--markdown", s(&kv)]);
    for want in [
        "# kv.gguf",
        "## Key/values (23)",
        "## Tensor types",
        "| Q4_K | 1 | 1024 |",
        "héllo \\| world",
    ] {
        assert!(md.contains(want), "{want} missing:\n{md}");
    }
    let md = cli().ok(&["list", "--markdown", s(&aero)]);
    assert_eq!(md.lines().count(), 2 + 6, "{md}");
    assert!(
        md.contains("| blk.1.ffn_up.weight | IQ2_XS | [2, 512] | 1024 | 296 | 2.31 |"),
        "{md}"
    );

    // safetensors: metadata as STRING key/values, dtypes as the format names them.
    let st = d.path().join("m.safetensors");
    let i = json(&cli().run(&["inspect", "--json", s(&st)]));
    assert_eq!(i["format"], "safetensors");
    let kvs: Vec<(String, String)> = i["key_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap().into(),
                k["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    // In stored order, which the safetensors package picks from a hash map.
    let mut kvs = kvs;
    kvs.sort();
    assert_eq!(
        kvs,
        [
            ("format".into(), "pt".into()),
            ("note".into(), "a | b".into())
        ]
    );
    let t = &i["tensors"];
    let find = |n: &str| {
        t.as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(find("model.embed.weight")["dtype"], "f16");
    assert_eq!(
        find("model.embed.weight")["shape"],
        serde_json::json!([4, 8])
    );
    assert_eq!(find("lm_head.weight")["dtype"], "i8");
    assert_eq!(find("lm_head.weight")["bits_per_weight"], 8.0);

    // A truncated GGUF is named with what is missing, exit 1; JSON says so too.
    let bytes = std::fs::read(&kv).unwrap();
    let cut = d.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let o = cli().run(&["inspect", "--json", s(&cut)]);
    assert_eq!(o.status.code(), Some(1));
    let e = json(&o);
    assert!(e["error"].as_str().unwrap().contains("cut.gguf"), "{e}");
}
