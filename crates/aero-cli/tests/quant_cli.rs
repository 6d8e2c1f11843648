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
fn fixtures() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gen_quant_cli.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
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

    // The same file: exit 0, every tensor identical by its hash_b3.
    let (code, r) = diff("a.aero", &[]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["identical"], true);
    assert_eq!(r["tensors"].as_array().unwrap().len(), 3);
    assert!(
        r["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["identical"] == true && t["compared_by"] == "hash_b3")
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
    let b = std::fs::read(&out).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let h: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let q = &h["blk.0.q.weight"];
    assert_eq!(q["dtype"], "F32");
    assert_eq!(q["shape"], serde_json::json!([8, 64]));
    assert_eq!(h["norm.weight"]["dtype"], "F32");
    assert_eq!(h["__metadata__"]["model_name"], "tiny");
    let (s0, e0) = (
        q["data_offsets"][0].as_u64().unwrap() as usize,
        q["data_offsets"][1].as_u64().unwrap() as usize,
    );
    let data = &b[8 + n..];
    assert_eq!(
        &data[s0..e0],
        std::fs::read(p.join("q.f32")).unwrap().as_slice()
    );
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
