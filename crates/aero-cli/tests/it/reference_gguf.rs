//! Issue 20 item 2: files the reference's `convert-gguf` wrote (shapes in
//! GGUF order, spec §15; tensors padded to 32 bytes, §16.5), through the
//! binary, on `../shared/golden/reference-gguf/`: `source.gguf` (written by
//! gguf-py), `reference-converted.aero` and
//! `reference-converted-tensor-hash.aero` (the reference converter's
//! output), and `expected.json` (gguf-py's view of the source: ggml type,
//! `ne`, row-major shape, exact bytes, SHA-256 of the raw bytes and of
//! gguf-py's f32 dequantization). Every command must agree with it.

use std::path::{Path, PathBuf};
use std::process::Command;

use aero_test_support::{Cli, golden, json};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

fn dir() -> PathBuf {
    golden("reference-gguf")
}

fn reference() -> PathBuf {
    dir().join("reference-converted.aero")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// expected.json: tensor name → facts.
fn expected() -> serde_json::Map<String, Value> {
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap();
    v.as_object().unwrap().clone()
}

fn dims(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect()
}

fn sha256(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn validate_full_is_valid_with_a_warning_for_the_order_and_each_padded_tensor() {
    let o = cli().run(&["validate", "--full", "--json", s(&reference())]);
    let r = json(&o);
    assert_eq!(o.status.code(), Some(0), "{r}");
    assert_eq!(r["verdict"], "valid-with-warnings");
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("GGUF order")),
        "{warnings:?}"
    );
    // norm.weight: F32 [3, 5] is 60 bytes, stored 64; output.weight: TQ2_0
    // [8, 256] is 528, stored 544 — each one warning, nothing else padded.
    let padded: Vec<&&str> = warnings.iter().filter(|w| w.contains("padding")).collect();
    assert_eq!(padded.len(), 2, "{warnings:?}");
    assert!(
        padded
            .iter()
            .any(|w| w.contains("'norm.weight'") && w.contains("= 60 bytes followed by 4 bytes")),
        "{padded:?}"
    );
    assert!(
        padded.iter().any(|w| w.contains("'output.weight'")
            && w.contains("TQ2_0 x shape [8, 256] = 528 bytes followed by 16 bytes")),
        "{padded:?}"
    );
    for t in r["tensors"].as_array().unwrap() {
        assert_eq!(t["status"], "ok", "{t}");
    }
    // --strict turns warnings into failure, as for every other warning.
    let o = cli().run(&["validate", "--full", "--strict", s(&reference())]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn the_tensor_hash_variant_is_invalid_for_its_real_damage_only() {
    // The reference's --tensor-hash writer overwrote shard 0 (spec §16.2):
    // that, and only that, is an error; the padding stays a warning.
    let f = dir().join("reference-converted-tensor-hash.aero");
    let o = cli().run(&["validate", "--full", "--json", s(&f)]);
    let r = json(&o);
    assert_eq!(o.status.code(), Some(1), "{r}");
    let errors: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e.contains("hash_b3") || e.contains("BLAKE3 mismatch")),
        "{errors:?}"
    );
    assert!(!errors.iter().any(|e| e.contains("data_len")), "{errors:?}");
}

#[test]
fn list_and_inspect_show_row_major_shapes_and_say_the_file_stores_gguf_order() {
    let want = expected();
    // list --json
    let o = cli().run(&["list", "--json", s(&reference())]);
    assert_eq!(o.status.code(), Some(0));
    let l = json(&o);
    assert_eq!(l["shape_order"], "gguf");
    let tensors = l["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), want.len());
    for t in tensors {
        let e = &want[t["name"].as_str().unwrap()];
        assert_eq!(dims(&t["shape"]), dims(&e["row_major_shape"]), "{t}");
    }
    // list (text): the shapes, and a note on stderr.
    let o = cli().run(&["list", s(&reference())]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    for (name, e) in &want {
        let shape = format!("{:?}", dims(&e["row_major_shape"]));
        let row = text.lines().find(|l| l.starts_with(name.as_str())).unwrap();
        assert!(row.contains(&shape), "{row} lacks {shape}");
    }
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stored in GGUF order"), "{err}");
    // inspect (text and --json)
    let text = cli().ok(&["inspect", s(&reference())]);
    assert!(text.contains("stored in GGUF order"), "{text}");
    assert!(
        text.contains("[64, 256]") && text.contains("[3, 5]"),
        "{text}"
    );
    let o = cli().run(&["inspect", "--json", s(&reference())]);
    assert_eq!(o.status.code(), Some(0));
    let i = json(&o);
    assert_eq!(i["shape_order"], "gguf");
    assert_eq!(i["valid"], true, "{i}");
    for t in i["tensors"].as_array().unwrap() {
        let e = &want[t["name"].as_str().unwrap()];
        assert_eq!(dims(&t["shape"]), dims(&e["row_major_shape"]), "{t}");
    }
    // A file of ours is row-major and says so.
    let l = json(&cli().run(&["list", "--json", s(&golden("mixed-single-shard.aero"))]));
    assert_eq!(l["shape_order"], "row-major");
}

/// gguf-py's view of a GGUF file: name → (type name, ne, bytes sha256).
fn gguf_py(path: &Path) -> Value {
    let script = r#"
import hashlib, json, sys
import gguf
r = gguf.GGUFReader(sys.argv[1])
print(json.dumps({t.name: {"ggml_type": t.tensor_type.name,
                           "ne": [int(x) for x in t.shape],
                           "n_bytes": int(t.n_bytes),
                           "bytes_sha256": hashlib.sha256(t.data.tobytes()).hexdigest()}
                  for t in r.tensors}))
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn export_gguf_read_by_gguf_py_gives_the_sources_types_ne_and_bytes() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("back.gguf");
    cli().ok(&["export-gguf", s(&reference()), s(&out)]);
    let back = gguf_py(&out);
    let source = gguf_py(&dir().join("source.gguf"));
    assert_eq!(back, source);
    for (name, e) in expected() {
        let b = &back[&name];
        assert_eq!(b["ggml_type"], e["ggml_type"], "{name}");
        assert_eq!(b["ne"], e["ne"], "{name}");
        assert_eq!(b["n_bytes"], e["n_bytes"], "{name}");
        assert_eq!(b["bytes_sha256"], e["bytes_sha256"], "{name}");
    }
}

#[test]
fn extract_gives_the_tensors_own_bytes_and_gguf_py_values() {
    let d = tempfile::tempdir().unwrap();
    for (name, e) in expected() {
        let raw = d.path().join("raw.bin");
        cli().ok(&["extract", s(&reference()), &name, s(&raw)]);
        let bytes = std::fs::read(&raw).unwrap();
        assert_eq!(bytes.len() as u64, e["n_bytes"].as_u64().unwrap(), "{name}");
        assert_eq!(sha256(&bytes), e["bytes_sha256"], "{name}");
        let f32s = d.path().join("values.f32");
        cli().ok(&["extract", s(&reference()), &name, s(&f32s), "--as", "f32"]);
        assert_eq!(
            sha256(&std::fs::read(&f32s).unwrap()),
            e["f32_sha256"],
            "{name}"
        );
    }
}

#[test]
fn export_safetensors_dequantize_is_row_major_and_plain_export_names_the_ggml_type() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("f32.safetensors");
    cli().ok(&[
        "export-safetensors",
        s(&reference()),
        s(&out),
        "--dequantize",
        "f32",
    ]);
    let (got, _) = aero_test_support::read_safetensors(&out);
    let want = expected();
    assert_eq!(got.len(), want.len());
    for (name, t) in &got {
        let e = &want[name];
        assert_eq!(t.dtype, "F32", "{name}");
        assert_eq!(t.shape, dims(&e["row_major_shape"]), "{name}");
        assert_eq!(sha256(&t.data), e["f32_sha256"], "{name}");
    }
    // Without --dequantize the packed blocks have no safetensors dtype: the
    // refusal names the ggml type and the way out, and writes nothing.
    let plain = d.path().join("plain.safetensors");
    let o = cli().run(&["export-safetensors", s(&reference()), s(&plain)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Q8_0") && err.contains("--dequantize") && !err.contains("ggml_type 8"),
        "{err}"
    );
    assert!(!plain.exists());
}

#[test]
fn diff_with_our_conversion_of_the_same_gguf_is_identical() {
    let d = tempfile::tempdir().unwrap();
    let ours = d.path().join("ours.aero");
    cli().ok(&["convert-gguf", s(&dir().join("source.gguf")), s(&ours)]);
    // Ours is row-major and unpadded: the two files store different shapes
    // and lengths, yet hold the same tensors.
    let l = json(&cli().run(&["list", "--json", s(&ours)]));
    assert_eq!(l["shape_order"], "row-major");
    let o = cli().run(&["diff", s(&reference()), s(&ours), "--json"]);
    let r = json(&o);
    assert_eq!(o.status.code(), Some(0), "{r}");
    assert_eq!(r["identical"], true);
    let want = expected();
    let tensors = r["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), want.len());
    for t in tensors {
        let e = &want[t["name"].as_str().unwrap()];
        for side in ["a", "b"] {
            assert_eq!(dims(&t[side]["shape"]), dims(&e["row_major_shape"]), "{t}");
            assert_eq!(t[side]["bytes"], e["n_bytes"], "{t}");
        }
        assert_eq!(t["identical"], true, "{t}");
    }
    let text = cli().ok(&["diff", s(&ours), s(&reference())]);
    assert!(text.contains("5 identical, 0 changed"), "{text}");
}

#[test]
fn repack_and_convert_write_a_row_major_file_with_the_tensors_own_bytes() {
    let d = tempfile::tempdir().unwrap();
    let want = expected();
    let repacked = d.path().join("repacked.aero");
    cli().ok(&["repack", s(&reference()), s(&repacked)]);
    let set_dir = d.path().join("set");
    cli().ok(&[
        "convert",
        s(&reference()),
        &format!("{}/", set_dir.display()),
    ]);
    let converted = set_dir.join("reference-converted.aero");
    for out in [&repacked, &converted] {
        // Valid without warnings: row-major, exact sizes.
        let o = cli().run(&["validate", "--full", "--strict", s(out)]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        let l = json(&cli().run(&["list", "--json", s(out)]));
        assert_eq!(l["shape_order"], "row-major", "{l}");
        for t in l["tensors"].as_array().unwrap() {
            let e = &want[t["name"].as_str().unwrap()];
            assert_eq!(dims(&t["shape"]), dims(&e["row_major_shape"]), "{t}");
        }
        // The same tensors as the input, byte for byte.
        let o = cli().run(&["diff", s(&reference()), s(out)]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        // And back to the source GGUF's types, ne and bytes.
        let back = d.path().join("back.gguf");
        cli().ok(&["export-gguf", s(out), s(&back)]);
        assert_eq!(gguf_py(&back), gguf_py(&dir().join("source.gguf")));
    }
}
