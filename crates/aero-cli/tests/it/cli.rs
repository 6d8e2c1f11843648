//! The `aerotensor` binary: outputs, exit codes and error messages.

use std::path::PathBuf;
use std::process::{Command, Output};

use aero_test_support::{Cli, golden, json};

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

fn bin() -> Command {
    cli().cmd()
}

fn run(args: &[&str]) -> Output {
    cli().run(args)
}

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(golden("expected.json")).unwrap()).unwrap()
}

#[test]
fn validate_full_json_reaches_the_expected_verdict_for_every_golden_file() {
    let e = expected();
    for (name, info) in e["files"].as_object().unwrap() {
        if !name.ends_with(".aero") || name.ends_with("index.aero") {
            continue;
        }
        let o = run(&[
            "validate",
            "--full",
            "--json",
            golden(name).to_str().unwrap(),
        ]);
        let r = json(&o);
        let want_valid = name != "tensor-hash-defect.aero";
        assert_eq!(r["valid"], want_valid, "{name}: {r}");
        assert_eq!(
            o.status.code(),
            Some(if want_valid { 0 } else { 1 }),
            "{name}"
        );
        if name == "mjsn-zero-hash.aero" {
            assert_eq!(r["verdict"], "valid-with-warnings");
            let st: Vec<&str> = r["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["status"].as_str().unwrap())
                .collect();
            assert_eq!(
                st,
                [
                    "hash-not-recorded",
                    "verified",
                    "verified",
                    "verified",
                    "verified",
                    "verified"
                ]
            );
        }
        if name == "tensor-hash-defect.aero" {
            let errs = r["errors"].to_string();
            assert!(errs.contains("weights.shard0"), "{errs}");
            for t in info["damaged_tensors"].as_array().unwrap() {
                assert!(
                    errs.contains(&format!("tensor '{}'", t.as_str().unwrap())),
                    "{errs}"
                );
            }
            for t in info["intact_tensors"].as_array().unwrap() {
                assert!(
                    !errs.contains(&format!("tensor '{}'", t.as_str().unwrap())),
                    "{errs}"
                );
            }
        }
        if name == "ihsh-phsh.aero" {
            assert_eq!(r["control"]["status"], "verified");
            assert_eq!(r["pages"].as_array().unwrap().len(), 3);
        }
    }
}

#[test]
fn strict_turns_unrecorded_hashes_into_failure() {
    let f = golden("mjsn-zero-hash.aero");
    assert_eq!(
        run(&["validate", f.to_str().unwrap()]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&["validate", "--strict", f.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        run(&[
            "validate",
            "--control",
            golden("ihsh-phsh.aero").to_str().unwrap()
        ])
        .status
        .code(),
        Some(0)
    );
}

#[test]
fn make_test_vector_is_byte_identical_to_the_golden_vector() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("tv.aero");
    assert!(
        run(&["make-test-vector", out.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read(out).unwrap(),
        std::fs::read(golden("test-vector.aero")).unwrap()
    );
}

#[test]
fn list_json_lists_every_tensor() {
    let o = run(&[
        "list",
        "--json",
        golden("test-vector.aero").to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let r = json(&o);
    let t = r["tensors"].as_array().unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0]["name"], "linear.weight");
    assert_eq!(t[0]["dtype"], "f32");
    assert_eq!(t[0]["shape"], serde_json::json!([2, 3]));
    assert_eq!(t[1]["data_off"], 24);
    let human =
        String::from_utf8(run(&["list", golden("test-vector.aero").to_str().unwrap()]).stdout)
            .unwrap();
    assert!(human.contains("linear.bias") && human.contains("[2, 3]") && !human.contains('\x1b'));
}

#[test]
fn inspect_shows_model_and_chunks() {
    for cmd in ["inspect", "info"] {
        let o = run(&[
            cmd,
            golden("ihsh-phsh.aero").to_str().unwrap(),
            "--max-tensors",
            "2",
        ]);
        let s = String::from_utf8(o.stdout).unwrap();
        assert!(
            s.contains("golden-mixed") && s.contains("control.integrity") && s.contains("8 more"),
            "{s}"
        );
    }
    let r = json(&run(&[
        "inspect",
        "--json",
        golden("test-vector.aero").to_str().unwrap(),
    ]));
    assert_eq!(r["model"]["name"], "test-linear");
    assert_eq!(r["tensor_count"], 2);
    assert_eq!(r["uuid"], "11111111111111111111111111111111");
}

#[test]
fn extract_writes_bytes_and_refuses_damaged_tensors() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("w.bin");
    let o = run(&[
        "extract",
        golden("test-vector.aero").to_str().unwrap(),
        "linear.bias",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        [0.5f32.to_le_bytes(), (-0.5f32).to_le_bytes()].concat()
    );
    let o = run(&[
        "extract",
        golden("test-vector.aero").to_str().unwrap(),
        "linear.weight",
        "-",
    ]);
    assert_eq!(o.stdout.len(), 24);
    let bad = d.path().join("bad.bin");
    let o = run(&[
        "extract",
        golden("tensor-hash-defect.aero").to_str().unwrap(),
        "embed.weight",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "damaged input exits 1");
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("embed.weight") && err.contains("hash_b3") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!bad.exists());
    let o = run(&[
        "extract",
        golden("test-vector.aero").to_str().unwrap(),
        "nope",
        "-",
    ]);
    assert!(
        String::from_utf8(o.stderr)
            .unwrap()
            .contains("no tensor named 'nope'")
    );
}

#[test]
fn errors_are_one_line_name_the_file_exit_2_for_io_and_1_for_damage() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing.aero");
    let o = run(&["validate", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("missing.aero") && err.lines().count() == 1,
        "{err}"
    );
    let junk = d.path().join("junk.aero");
    std::fs::write(&junk, b"not an aero file at all, just some text that is long enough to fill the header of ninety-six bytes").unwrap();
    let o = run(&["inspect", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("junk.aero") && err.contains("not an AERO file") && err.lines().count() == 1,
        "{err}"
    );
    let trunc = d.path().join("trunc.aero");
    std::fs::write(
        &trunc,
        &std::fs::read(golden("test-vector.aero")).unwrap()[..200],
    )
    .unwrap();
    let o = run(&["list", trunc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("trunc.aero") && err.contains("truncated"),
        "{err}"
    );
    // Usage errors.
    assert_eq!(run(&["validate"]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(&["--help"]).status.code(), Some(0));
}

#[test]
fn repack_reproduces_golden_and_refuses_damaged_input() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r.aero");
    let u = "33333333333333333333333333333333";
    let o = run(&[
        "repack",
        golden("mixed-multishard.aero").to_str().unwrap(),
        out.to_str().unwrap(),
        "--layout",
        "reference",
        "--uuid",
        u,
        "--max-shard-bytes",
        "4096",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(golden("mixed-multishard.aero")).unwrap()
    );
    let bad_out = d.path().join("bad.aero");
    let o = run(&[
        "repack",
        golden("tensor-hash-defect.aero").to_str().unwrap(),
        bad_out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "damaged input exits 1");
    assert!(String::from_utf8(o.stderr).unwrap().contains("--force"));
    assert!(!bad_out.exists());
    let o = run(&[
        "repack",
        golden("mixed-single-shard.aero").to_str().unwrap(),
        out.to_str().unwrap(),
        "--tensor-hash",
        "--control-integrity",
        "--page-hashes",
    ]);
    assert!(o.status.success());
    let r = json(&run(&[
        "validate",
        "--full",
        "--json",
        out.to_str().unwrap(),
    ]));
    assert_eq!(r["verdict"], "valid", "{r}");
    assert_eq!(r["control"]["status"], "verified");
    assert_eq!(r["pages"][0]["page_size"], 1 << 20);
    assert_eq!(
        run(&["repack", "a", "b", "--max-shard-bytes", "12Q"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn the_pread_fallback_reaches_the_same_verdicts_and_bytes() {
    let e = expected();
    for name in [
        "mixed-multishard.aero",
        "tensor-hash-defect.aero",
        "mjsn-zero-hash.aero",
        "ihsh-phsh.aero",
    ] {
        let f = golden(name);
        let mapped = json(&run(&["validate", "--full", "--json", f.to_str().unwrap()]));
        let o = bin()
            .env("AEROTENSOR_NO_MMAP", "1")
            .args(["validate", "--full", "--json", f.to_str().unwrap()])
            .output()
            .unwrap();
        let pread = json(&o);
        assert_eq!(mapped["verdict"], pread["verdict"], "{name}");
        assert_eq!(mapped["chunks"], pread["chunks"], "{name}");
        assert_eq!(mapped["tensors"], pread["tensors"], "{name}");
    }
    let truth = &e["tensor_sets"]["mixed"]["big.weight"]["blake3"];
    let o = bin()
        .env("AEROTENSOR_NO_MMAP", "1")
        .args([
            "extract",
            golden("mixed-single-shard.aero").to_str().unwrap(),
            "big.weight",
            "-",
        ])
        .output()
        .unwrap();
    assert_eq!(
        blake3::hash(&o.stdout).to_hex().as_str(),
        truth.as_str().unwrap()
    );
}

#[test]
fn streamed_list_json_matches_inspect_json_rows() {
    let d = tempfile::tempdir().unwrap();
    let repo = aero_test_support::repo();
    let o = Command::new("python3")
        .arg(repo.join("tests/fixtures/gen_gguf.py"))
        .arg(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let packed = d.path().join("q.aero");
    let conv = d.path().join("v3_all.gguf");
    assert!(
        run(&[
            "convert",
            conv.to_str().unwrap(),
            packed.to_str().unwrap(),
            "--tensor-hash"
        ])
        .status
        .success()
    );
    let mut files: Vec<PathBuf> = [
        "test-vector.aero",
        "tensor-hash-defect.aero",
        "mixed-multishard.aero",
    ]
    .iter()
    .map(|n| golden(n))
    .collect();
    files.push(packed);
    for f in files {
        let list = json(&run(&["list", "--json", f.to_str().unwrap()]));
        let insp = json(&run(&[
            "inspect",
            "--json",
            "--max-tensors",
            "100000",
            f.to_str().unwrap(),
        ]));
        assert_eq!(list["tensors"], insp["tensors"], "{}", f.display());
        assert!(!list["tensors"].as_array().unwrap().is_empty());
    }
}

#[test]
fn inspect_recognises_an_aeroset() {
    let set = golden("aeroset-local/model.aeroset.json");
    let a = run(&["inspect", set.to_str().unwrap()]);
    let b = run(&["inspect-set", set.to_str().unwrap()]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    assert!(String::from_utf8(a.stdout).unwrap().contains("golden-set"));
}

/// Repacking an aligned file to the same layout hashes each shard once (the
/// input check and the output hash share a pass): a flipped weight byte is
/// still refused, and `--no-fsync` writes the same bytes as the default.
#[test]
fn unchanged_layout_repack_verifies_input_and_no_fsync_writes_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let u = "44444444444444444444444444444444";
    let src = golden("mixed-multishard.aero");
    let o = run(&[
        "repack",
        src.to_str().unwrap(),
        &p("aligned.aero"),
        "--uuid",
        u,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Same layout again, durable and not: identical bytes, valid.
    let o = run(&["repack", &p("aligned.aero"), &p("a.aero"), "--uuid", u]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&[
        "repack",
        &p("aligned.aero"),
        &p("b.aero"),
        "--uuid",
        u,
        "--no-fsync",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = std::fs::read(p("a.aero")).unwrap();
    assert_eq!(a, std::fs::read(p("b.aero")).unwrap());
    assert_eq!(a, std::fs::read(p("aligned.aero")).unwrap());
    let r = json(&run(&["validate", "--full", "--json", &p("a.aero")]));
    assert_eq!(r["verdict"], "valid", "{r}");
    // Flip one byte of the first tensor's data: refused, nothing written.
    let f = aero_io::AeroFile::open(p("aligned.aero")).unwrap();
    let t = f.index().unwrap().tensors()[0].clone();
    let (at, _) = f.tensor_range(&t).unwrap();
    drop(f);
    let mut bytes = std::fs::read(p("aligned.aero")).unwrap();
    bytes[at as usize] ^= 0x40;
    std::fs::write(p("damaged.aero"), &bytes).unwrap();
    let o = run(&["repack", &p("damaged.aero"), &p("c.aero")]);
    assert_eq!(o.status.code(), Some(1), "damaged input exits 1");
    let err = String::from_utf8(o.stderr).unwrap();
    // The file, the tensor and its shard first; then what to do.
    let head = format!(
        "aerotensor: error: {}: input is damaged: tensor '{}' (shard {}): ",
        p("damaged.aero"),
        t.name,
        t.shard_id
    );
    assert!(err.starts_with(&head), "{err}");
    // Its own hash_b3 places the damage: the offset of the bytes it covers.
    assert!(
        err.contains(&format!("bytes at file offset {at} do not match hash_b3"))
            && err
                .trim_end()
                .ends_with("nothing was written (--force copies it anyway)"),
        "{err}"
    );
    assert!(!d.path().join("c.aero").exists());
    // `convert` has no --force: its hint names the command that has.
    let o = run(&["convert", &p("damaged.aero"), &p("c.aero")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("`aerotensor repack --force` copies it anyway"),
        "{err}"
    );
    assert!(!d.path().join("c.aero").exists());
    // --force --json says what the output cannot vouch for.
    let o = run(&[
        "repack",
        "--force",
        "--json",
        &p("damaged.aero"),
        &p("c.aero"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = json(&o);
    assert_eq!(r["unverified_tensors"], serde_json::json!([t.name]), "{r}");
    assert!(
        r["input_damage"]
            .as_str()
            .unwrap()
            .contains(t.name.as_str()),
        "{r}"
    );
    // Damage only in a PHSH chunk: every tensor is still proven, and the
    // warning and JSON say so.
    let f = aero_io::AeroFile::open(p("aligned.aero")).unwrap();
    let phsh = f
        .chunks()
        .iter()
        .find(|c| c.fourcc == aero_io::FourCc::PHSH)
        .expect("the aligned layout writes page hashes")
        .offset;
    drop(f);
    let mut bytes = std::fs::read(p("aligned.aero")).unwrap();
    bytes[phsh as usize + 4] ^= 0x01;
    std::fs::write(p("phsh.aero"), &bytes).unwrap();
    let o = run(&["repack", "--force", "--json", &p("phsh.aero"), &p("e.aero")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = json(&o);
    assert_eq!(r["unverified_tensors"], serde_json::json!([]), "{r}");
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("every tensor was proven"), "{err}");
    // validate names the shard whose page hashes are unreadable, and says
    // the error once (it printed "pages  (0 x 0 B)" and the error twice).
    let o = run(&["validate", "--full", &p("phsh.aero")]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.lines().any(
            |l| l.starts_with("pages weights.shard") && l.ends_with("(page hashes unreadable)")
        ),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{text}"
    );
    let r = json(&run(&["validate", "--full", "--json", &p("e.aero")]));
    assert_eq!(r["verdict"], "valid", "{r}");
    assert!(
        !std::fs::read_dir(d.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".aerotmp")),
        "no temporary left"
    );
}

/// The example model through the CLI: convert, then export back to
/// safetensors (byte-identical to the input, which is in canonical order)
/// and to GGUF, with and without `--no-fsync` (same bytes either way).
#[test]
fn exports_round_trip_the_example_and_no_fsync_writes_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let input = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/tiny/tiny-llama.safetensors");
    let input = input.to_str().unwrap();
    let o = run(&["convert", input, &p("tiny.aero")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (cmd, ext) in [
        ("export-safetensors", "safetensors"),
        ("export-gguf", "gguf"),
    ] {
        let a = p(&format!("a.{ext}"));
        let b = p(&format!("b.{ext}"));
        let o = run(&[cmd, &p("tiny.aero"), &a]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = run(&[cmd, "--no-fsync", &p("tiny.aero"), &b]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let a = std::fs::read(a).unwrap();
        assert_eq!(a, std::fs::read(b).unwrap(), "{cmd}");
        if ext == "safetensors" {
            assert_eq!(a, std::fs::read(input).unwrap(), "round trip");
        }
    }
}

/// Input given to the wrong command gets a usage error naming the right
/// one; a set given to a file exporter says how sets are exported; a
/// truncated safetensors file is reported as truncated (found by a new-user
/// walkthrough: these read as unrelated parse errors before).
#[test]
fn wrong_inputs_name_the_command_that_takes_them() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let st = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/tiny/tiny-llama.safetensors");
    let st = st.to_str().unwrap();
    let aero = golden("mixed-single-shard.aero");
    let aero = aero.to_str().unwrap();
    let set = golden("aeroset-local");
    let set = set.to_str().unwrap();
    for (args, want) in [
        (
            vec!["convert-gguf", st, &p("a.aero")],
            "is safetensors input, not GGUF; use `aerotensor convert-safetensors`",
        ),
        (
            vec!["convert-safetensors", aero, &p("a.aero")],
            "is AERO input, not safetensors; use `aerotensor repack`",
        ),
        (
            vec!["convert-safetensors-sharded", st, &p("set")],
            "is safetensors input, not sharded safetensors; use `aerotensor convert-safetensors`",
        ),
        (
            vec!["export-safetensors", set, &p("a.safetensors")],
            "is an AEROSET; these exporters copy one AERO file as it is stored",
        ),
        (
            vec!["export-gguf", set, &p("a.gguf")],
            "export-safetensors SET OUT --dequantize",
        ),
    ] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(want) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        0,
        "nothing written"
    );
    // A safetensors header cut short: `convert` still sees safetensors and
    // reports the truncation as damage (exit 1).
    let bytes = std::fs::read(st).unwrap();
    std::fs::write(p("cut.safetensors"), &bytes[..20]).unwrap();
    let o = run(&["convert", &p("cut.safetensors"), &p("b.aero")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("runs past the end of the 20-byte file"),
        "{err}"
    );
    // An argument error with --json still prints the error document.
    let o = run(&["convert", "--json", "--layout", "bogus", st, &p("c.aero")]);
    assert_eq!(o.status.code(), Some(2));
    let v = json(&o);
    assert_eq!(v["exit_code"], 2);
    assert!(v["error"].as_str().unwrap().contains("'bogus'"), "{v}");
    // A filter that matches nothing says so (it printed nothing at all).
    for file in [aero, st] {
        let o = run(&["list", file, "--filter", "zz*"]);
        assert_eq!(o.status.code(), Some(0));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("no tensor name matches \"zz*\""),
            "{file}: {err}"
        );
    }
}
