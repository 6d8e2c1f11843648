//! A set we write with `--base-url`, served by a real nginx on 127.0.0.1,
//! read remotely by `aerotensor fetch-tensor` (spec §13–§14, issue 6).
//!
//! Runs when `cargo xtask ci` has started nginx and set AERO_NGINX_URL,
//! AERO_NGINX_LOG and AERO_NGINX_ROOT (a writable directory nginx serves);
//! they are `#[ignore]`d, and fail when run without nginx.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    aero_test_support::Cli::new(env!("CARGO_BIN_EXE_aerotensor")).cmd()
}

fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// (path, range) of the log lines after `from`.
fn log_since(log: &Path, from: usize) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .skip(from)
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].to_string(),
                f[3].to_string(),
            )
        })
        .collect()
}

fn log_len(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs nginx: run by cargo xtask ci"]
fn set_with_base_url_is_read_remotely_with_only_the_needed_ranges() {
    let (Ok(url), Ok(log), Ok(root)) = (
        std::env::var("AERO_NGINX_URL"),
        std::env::var("AERO_NGINX_LOG"),
        std::env::var("AERO_NGINX_ROOT"),
    ) else {
        panic!("set AERO_NGINX_URL, AERO_NGINX_LOG and AERO_NGINX_ROOT (cargo xtask ci does)");
    };
    let log = PathBuf::from(log);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("sharded");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let o = Command::new("python3")
        .arg(repo.join("tests/fixtures/gen_sharded.py"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let name = format!("set-{}", std::process::id());
    let out = PathBuf::from(&root).join(&name);
    let base = format!("{url}/{name}");
    ok(bin()
        .args([
            "convert-safetensors-sharded",
            src.to_str().unwrap(),
            out.to_str().unwrap(),
        ])
        .args([
            "--base-url",
            &base,
            "--max-shard-bytes",
            "2K",
            "--max-part-shards",
            "2",
            "--tensor-hash",
        ]));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model.aeroset.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"]["version"], serde_json::json!([0, 2]));
    assert_eq!(manifest["base_url"], base.as_str());
    assert!(
        manifest["parts"].as_array().unwrap().len() > 1,
        "several parts"
    );
    let local_list: serde_json::Value =
        serde_json::from_str(&ok(bin().args(["list", "--json", out.to_str().unwrap()]))).unwrap();
    let tensors: Vec<String> = local_list["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(tensors.len() > 5);
    let remote_json = format!("{base}/model.aeroset.json");
    let cache = tmp.path().join("cache");
    let fetched = tmp.path().join("t.bin");
    let local = tmp.path().join("l.bin");

    // Cold: each fetch costs the JSON, index head (+TIDX), part head (+TIDX) and the tensor.
    for t in &tensors {
        let before = log_len(&log);
        ok(bin().args([
            "fetch-tensor",
            &remote_json,
            t,
            fetched.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ]));
        ok(bin().args([
            "fetch-tensor",
            out.to_str().unwrap(),
            t,
            local.to_str().unwrap(),
        ]));
        assert_eq!(
            std::fs::read(&fetched).unwrap(),
            std::fs::read(&local).unwrap(),
            "{t}"
        );
        let reqs = log_since(&log, before);
        assert!(!reqs.is_empty() && reqs.len() <= 6, "{t}: {reqs:?}");
        let files: BTreeSet<&str> = reqs
            .iter()
            .map(|r| r.1.rsplit('/').next().unwrap())
            .collect();
        assert!(
            files.len() <= 3,
            "{t}: JSON, index and one part only: {reqs:?}"
        );
        for (method, path, range, status) in &reqs {
            assert_eq!(method, "GET", "{path}");
            assert!(
                range.starts_with("bytes=") && !range.contains(','),
                "{path}: {range}"
            );
            assert_eq!(status, "206", "{path} {range}");
        }
    }
    // Warm cache: no request beyond each file's first (header) range.
    let before = log_len(&log);
    for t in &tensors {
        ok(bin().args([
            "fetch-tensor",
            &remote_json,
            t,
            fetched.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ]));
    }
    let warm = log_since(&log, before);
    assert!(
        warm.iter().all(|r| r.2 == "bytes=0-65535"),
        "tensor or TIDX requests with a warm cache: {warm:?}"
    );
    // The set validates remotely, parts streamed and sha256-checked.
    ok(bin().args(["validate", "--full", &remote_json, "--no-cache"]));
    let _ = std::fs::remove_dir_all(&out);
}

/// A Hugging Face folder converted into a set and into one file, served by
/// nginx, exported back with `export-hf URL OUT_DIR`: the folder again,
/// byte for byte (attached files fetched and verified: a set's beside its
/// manifest by size and SHA-256, a file's FILE chunks by their TOC hash).
#[test]
#[ignore = "needs nginx: run by cargo xtask ci"]
fn hf_folder_is_exported_from_urls() {
    let (Ok(url), Ok(root)) = (
        std::env::var("AERO_NGINX_URL"),
        std::env::var("AERO_NGINX_ROOT"),
    ) else {
        panic!("set AERO_NGINX_URL and AERO_NGINX_ROOT (cargo xtask ci does)");
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hf");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let o = Command::new("python3")
        .arg(repo.join("tests/fixtures/gen_hf_folder.py"))
        .arg(&src)
        .args(["--shards", "3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let name = format!("hf-{}", std::process::id());
    let served = PathBuf::from(&root).join(&name);
    std::fs::create_dir_all(&served).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    ok(bin().args(["convert", &s(&src), &s(&served.join("set"))]));
    ok(bin().args(["convert", &s(&src), &s(&served.join("one.aero"))]));
    let files = |d: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = Vec::new();
        let mut todo = vec![(d.to_path_buf(), String::new())];
        while let Some((at, prefix)) = todo.pop() {
            for e in std::fs::read_dir(&at).unwrap() {
                let e = e.unwrap();
                let rel = format!("{prefix}{}", e.file_name().to_string_lossy());
                if e.file_type().unwrap().is_dir() {
                    todo.push((e.path(), format!("{rel}/")));
                } else {
                    v.push((rel, std::fs::read(e.path()).unwrap()));
                }
            }
        }
        v.sort();
        v
    };
    for (i, remote) in [
        format!("{url}/{name}/set/model.aeroset.json"),
        format!("{url}/{name}/one.aero"),
    ]
    .iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("back{i}"));
        ok(bin().args(["--no-cache", "export-hf", remote.as_str(), &s(&out)]));
        let (a, b) = (files(&out), files(&src));
        assert_eq!(
            a.iter().map(|x| &x.0).collect::<Vec<_>>(),
            b.iter().map(|x| &x.0).collect::<Vec<_>>(),
            "{remote}"
        );
        assert!(a == b, "{remote}: contents differ");
    }
    // A damaged attached file on the server: refused, naming it.
    let cfg = served.join("set/config.json");
    let mut bytes = std::fs::read(&cfg).unwrap();
    bytes[1] ^= 0x20;
    std::fs::write(&cfg, bytes).unwrap();
    let o = bin()
        .args([
            "--no-cache",
            "export-hf",
            &format!("{url}/{name}/set/model.aeroset.json"),
            &s(&tmp.path().join("bad")),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("config.json"), "{err}");
    assert!(!tmp.path().join("bad").exists());
    let _ = std::fs::remove_dir_all(&served);
}
