//! Messages that say what happened, through the binary: an oversized
//! tensor under `--max-shard-bytes`, a quick set validation that hashed
//! every file, an undefined cosine, tables with wide (CJK) names, nearest
//! names for a mistyped tensor, the export refusal for packed blocks, a
//! missing file of a set (exit 2), the truncation marker of `inspect`,
//! the one error prefix, and exactly when `--layout reference` is the
//! reference's bytes. Inputs are written in the test (the `safetensors`
//! crate) or are the reference's golden files.

use std::path::Path;
use std::process::Output;

use aero_test_support::{Cli, golden, json, safetensors::Dtype, write_safetensors};

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn a_tensor_larger_than_max_shard_bytes_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let st = tmp.path().join("m.safetensors");
    write_safetensors(
        &st,
        &[
            ("big".into(), Dtype::F32, vec![1024], vec![1; 4096]),
            ("small".into(), Dtype::F32, vec![4], vec![2; 16]),
        ],
        None,
    );
    let o = cli().run(&[
        "convert",
        s(&st),
        s(&tmp.path().join("m.aero")),
        "--max-shard-bytes",
        "1K",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains("tensor 'big' is 4096 bytes, more than --max-shard-bytes 1024"),
        "{}",
        err(&o)
    );
    let v = json(&o);
    assert_eq!(v["max_shard_bytes"], 1024);
    assert_eq!(v["oversized_tensors"][0]["name"], "big");
    assert_eq!(v["oversized_tensors"][0]["bytes"], 4096);
    assert_eq!(v["oversized_tensors"].as_array().unwrap().len(), 1);
    // Within the limit: nothing said.
    let o = cli().run(&["convert", s(&st), s(&tmp.path().join("n.aero"))]);
    assert!(!err(&o).contains("warning"), "{}", err(&o));
    // An AEROSET writer says the same.
    let ck = tmp.path().join("ckpt");
    std::fs::create_dir(&ck).unwrap();
    write_safetensors(
        &ck.join("a.safetensors"),
        &[("big".into(), Dtype::F32, vec![1024], vec![1; 4096])],
        None,
    );
    write_safetensors(
        &ck.join("b.safetensors"),
        &[("small".into(), Dtype::F32, vec![4], vec![2; 16])],
        None,
    );
    std::fs::write(
        ck.join("model.safetensors.index.json"),
        r#"{"metadata": {}, "weight_map": {"big": "a.safetensors", "small": "b.safetensors"}}"#,
    )
    .unwrap();
    let o = cli().run(&[
        "convert",
        s(&ck),
        s(&tmp.path().join("set")),
        "--max-shard-bytes",
        "1K",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains("tensor 'big' is 4096 bytes, more than --max-shard-bytes 1024"),
        "{}",
        err(&o)
    );
    assert_eq!(json(&o)["oversized_tensors"][0]["name"], "big");
}

#[test]
fn quick_set_validation_says_it_hashed_every_file() {
    let o = cli().run(&["validate", s(&golden("aeroset-local"))]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let last = out(&o).lines().last().unwrap().to_owned();
    assert!(
        last.contains("every byte of the 4 files hashed against the manifest's SHA-256"),
        "{last}"
    );
    assert!(!last.contains("weight bytes NOT checked"), "{last}");
    // A single file's quick check still says its weights were not read.
    let o = cli().run(&["validate", s(&golden("test-vector.aero"))]);
    assert!(out(&o).contains("weight bytes NOT checked"), "{}", out(&o));
}

#[test]
fn an_undefined_cosine_is_undefined() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (
        tmp.path().join("a.safetensors"),
        tmp.path().join("b.safetensors"),
    );
    write_safetensors(
        &a,
        &[("w".into(), Dtype::F32, vec![3], f32s(&[0.0, 0.0, 0.0]))],
        None,
    );
    write_safetensors(
        &b,
        &[("w".into(), Dtype::F32, vec![3], f32s(&[1.0, 2.0, 3.0]))],
        None,
    );
    let o = cli().run(&["diff", s(&a), s(&b), "--numeric", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let n = &json(&o)["tensors"][0]["numeric"];
    assert_eq!(n["status"], "compared");
    assert!(n["cosine"].is_null(), "{n}");
    assert_eq!(n["max_abs_err"], 3.0);
    let o = cli().run(&["diff", s(&a), s(&b), "--numeric"]);
    let row = out(&o)
        .lines()
        .find(|l| l.starts_with("w "))
        .unwrap()
        .to_owned();
    assert!(row.trim_end().ends_with("undefined"), "{row}");
    // A defined one is still a number.
    let c = tmp.path().join("c.safetensors");
    write_safetensors(
        &c,
        &[("w".into(), Dtype::F32, vec![3], f32s(&[1.0, 2.0, 3.5]))],
        None,
    );
    let v = json(&cli().run(&["diff", s(&b), s(&c), "--numeric", "--json"]));
    assert!(v["tensors"][0]["numeric"]["cosine"].as_f64().unwrap() > 0.99);
}

#[test]
fn tables_align_with_wide_names() {
    let tmp = tempfile::tempdir().unwrap();
    let st = tmp.path().join("cjk.safetensors");
    write_safetensors(
        &st,
        &[
            ("嵌入.权重".into(), Dtype::F32, vec![2], vec![0; 8]),
            ("ascii.weight.long".into(), Dtype::F16, vec![2], vec![0; 4]),
            ("é".into(), Dtype::F32, vec![1], vec![0; 4]),
        ],
        None,
    );
    let aero = tmp.path().join("cjk.aero");
    cli().ok(&["convert", s(&st), s(&aero)]);
    for f in [&st, &aero] {
        let text = cli().ok(&["list", s(f)]);
        // The dtype column starts at the same terminal column on every row.
        let cols: Vec<usize> = text
            .lines()
            .skip(1)
            .map(|l| {
                let name_end = l.find("  ").unwrap();
                let pad = l[name_end..].len() - l[name_end..].trim_start().len();
                unicode_width::UnicodeWidthStr::width(&l[..name_end]) + pad
            })
            .collect();
        assert_eq!(cols.len(), 3, "{text}");
        assert!(cols.iter().all(|&c| c == cols[0]), "{cols:?}\n{text}");
    }
}

#[test]
fn an_unknown_tensor_name_suggests_the_nearest() {
    let tmp = tempfile::tempdir().unwrap();
    let tv = golden("test-vector.aero");
    let o = cli().run(&["extract", s(&tv), "linear.wieght", s(&tmp.path().join("x"))]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("no tensor named 'linear.wieght' (did you mean 'linear.weight'"),
        "{}",
        err(&o)
    );
    let o = cli().run(&["extract", s(&tv), "weight", "-", "--as", "f32"]);
    assert!(
        err(&o).contains("did you mean 'linear.weight'"),
        "{}",
        err(&o)
    );
    // Sets, through the set's index.
    let o = cli().run(&[
        "fetch-tensor",
        s(&golden("aeroset-local")),
        "embed.weigth",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("did you mean 'embed.weight'"),
        "{}",
        err(&o)
    );
    // Nothing near: no suggestion.
    let o = cli().run(&["extract", s(&tv), "zzzzzz", "-"]);
    assert!(!err(&o).contains("did you mean"), "{}", err(&o));
}

#[test]
fn exporting_packed_blocks_names_the_ggml_type_and_dequantize() {
    let tmp = tempfile::tempdir().unwrap();
    let aero = tmp.path().join("g.aero");
    cli().ok(&[
        "convert",
        s(&golden("reference-gguf/source.gguf")),
        s(&aero),
    ]);
    let o = cli().run(&[
        "export-safetensors",
        s(&aero),
        s(&tmp.path().join("x.safetensors")),
    ]);
    assert_ne!(o.status.code(), Some(0));
    let e = err(&o);
    assert!(e.starts_with("aerotensor: error: "), "{e}");
    assert!(
        e.contains("Q8_0 blocks (GGUF ggml type 8)")
            || e.contains("Q4_0 blocks (GGUF ggml type 2)")
            || e.contains("TQ2_0 blocks"),
        "{e}"
    );
    assert!(e.contains("--dequantize"), "{e}");
}

#[test]
fn a_missing_file_of_a_set_is_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    std::fs::create_dir(&set).unwrap();
    for e in std::fs::read_dir(golden("aeroset-local")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), set.join(e.file_name())).unwrap();
    }
    std::fs::remove_file(set.join("part-001.aero")).unwrap();
    let o = cli().run(&["fetch-tensor", s(&set), "big.weight", "-"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("field `parts[1].path`: cannot open"),
        "{}",
        err(&o)
    );
    // The other parts still read.
    assert_eq!(
        cli()
            .run(&["fetch-tensor", s(&set), "embed.weight", "-"])
            .status
            .code(),
        Some(0)
    );
    std::fs::remove_file(set.join("index.aero")).unwrap();
    for args in [vec!["list", s(&set)], vec!["inspect", s(&set), "--json"]] {
        let o = cli().run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(err(&o).starts_with("aerotensor: error: "), "{}", err(&o));
    }
}

#[test]
fn inspect_marks_a_cut_list() {
    let gguf = golden("reference-gguf/source.gguf");
    let v = json(&cli().run(&["inspect", s(&gguf), "--json", "--max-tensors", "2"]));
    assert_eq!(v["tensor_count"], 5);
    assert_eq!(v["tensors_shown"], 2);
    assert_eq!(v["truncated"], true);
    assert_eq!(v["tensors"].as_array().unwrap().len(), 2);
    let v = json(&cli().run(&[
        "inspect",
        s(&gguf),
        "--json",
        "--max-tensors",
        "2",
        "--all-tensors",
    ]));
    assert_eq!(
        (v["tensors_shown"].as_u64(), v["truncated"].as_bool()),
        (Some(5), Some(false))
    );
    let text = cli().ok(&["inspect", s(&gguf), "--max-tensors", "2"]);
    assert!(text.contains("… 3 more not shown (--all-tensors"), "{text}");
    // The same for AERO files and sets.
    let v = json(&cli().run(&[
        "inspect",
        s(&golden("mixed-multishard.aero")),
        "--json",
        "--max-tensors",
        "3",
    ]));
    assert_eq!(
        (v["tensors_shown"].as_u64(), v["truncated"].as_bool()),
        (Some(3), Some(true))
    );
    let v = json(&cli().run(&[
        "inspect",
        s(&golden("aeroset-local")),
        "--json",
        "--all-tensors",
    ]));
    assert_eq!(
        (v["tensors_shown"].as_u64(), v["truncated"].as_bool()),
        (Some(10), Some(false))
    );
}

#[test]
fn usage_errors_carry_the_error_prefix() {
    let o = cli().run(&["inspect", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).starts_with("aerotensor: error: unexpected argument '--no-such-flag'"),
        "{}",
        err(&o)
    );
    let o = cli().run(&["list", "/nonexistent/m.aero"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).starts_with("aerotensor: error: /nonexistent/m.aero: "),
        "{}",
        err(&o)
    );
}

/// `--layout reference` is the reference writer's bytes except the one
/// defect we do not copy: the package writer's all-zero MJSN hash (spec
/// §16.1). Repacking its golden file with its UUID and shard split gives a
/// file that differs in exactly the 32 bytes of MJSN's TOC hash field.
#[test]
fn reference_layout_differs_only_in_the_mjsn_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let src = golden("mjsn-zero-hash.aero");
    let info = json(&cli().run(&["inspect", s(&src), "--json"]));
    let uuid = info["uuid"].as_str().unwrap();
    assert_eq!(info["chunks"][0]["fourcc"], "MJSN");
    assert_eq!(info["chunks"][0]["blake3"], "0".repeat(64));
    let out_path = tmp.path().join("r.aero");
    cli().ok(&[
        "repack",
        s(&src),
        s(&out_path),
        "--layout",
        "reference",
        "--uuid",
        uuid,
        "--max-shard-bytes",
        "4096",
    ]);
    let (a, b) = (
        std::fs::read(&src).unwrap(),
        std::fs::read(&out_path).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    let ours = json(&cli().run(&["inspect", s(&out_path), "--json"]));
    let hash = hex_bytes(ours["chunks"][0]["blake3"].as_str().unwrap());
    // Where the 32 hash bytes sit: find our hash in our file.
    let at = b.windows(32).position(|w| w == hash).unwrap();
    assert!(
        !diff.is_empty() && diff.iter().all(|&i| (at..at + 32).contains(&i)),
        "{diff:?} vs {at}"
    );
    assert!(a[at..at + 32].iter().all(|&x| x == 0));
    // The reference's own non-defective outputs are reproduced exactly.
    let conv = tmp.path().join("c.aero");
    cli().ok(&[
        "convert",
        s(&golden("convert-input.safetensors")),
        s(&conv),
        "--layout",
        "reference",
        "--uuid",
        &"44".repeat(16),
    ]);
    assert_eq!(
        std::fs::read(&conv).unwrap(),
        std::fs::read(golden("convert-output.aero")).unwrap()
    );
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}
