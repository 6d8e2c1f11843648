//! Hostile and damaged sets: every problem is a clear error naming the
//! manifest field or the file, never a panic and never bytes from outside
//! the set's directory.

use std::path::{Path, PathBuf};

use aero_io::{Mode, Verdict};
use aero_set::{AeroSet, SetError, SetOptions, validate_set};
use serde_json::{Value, json};

type Edit = Box<dyn FnOnce(&mut Value)>;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden")
        .join(name)
}

/// A writable copy of the golden set in `<tmp>/set`.
fn copy_set(tmp: &Path) -> PathBuf {
    let dir = tmp.join("set");
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "model.aeroset.json",
        "index.aero",
        "part-000.aero",
        "part-001.aero",
        "part-002.aero",
    ] {
        let to = dir.join(f);
        std::fs::copy(golden("aeroset-local").join(f), &to).unwrap();
        let mut p = std::fs::metadata(&to).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        p.set_readonly(false);
        std::fs::set_permissions(&to, p).unwrap();
    }
    dir
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("model.aeroset.json")).unwrap()).unwrap()
}

fn write_manifest(dir: &Path, v: &Value) {
    std::fs::write(
        dir.join("model.aeroset.json"),
        serde_json::to_vec_pretty(v).unwrap(),
    )
    .unwrap();
}

/// Opens the set after `edit` changes its manifest; returns the error text.
fn open_err(edit: impl FnOnce(&mut Value)) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_set(tmp.path());
    let mut m = manifest(&dir);
    edit(&mut m);
    write_manifest(&dir, &m);
    match AeroSet::open(&dir) {
        Ok(_) => panic!("opened a hostile manifest: {m}"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "'{p}' not in: {msg}");
    }
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn path_traversal_is_refused() {
    let e = open_err(|m| m["parts"][0]["path"] = json!("../part-000.aero"));
    assert_has(&e, &["parts[0].path", "'../part-000.aero'", ".."]);
    let e = open_err(|m| m["global_tidx"]["path"] = json!("sub/../../index.aero"));
    assert_has(&e, &["global_tidx.path", ".."]);
}

#[test]
fn absolute_paths_are_refused() {
    let abs = golden("aeroset-local/part-001.aero")
        .canonicalize()
        .unwrap();
    let e = open_err(|m| m["parts"][1]["path"] = json!(abs.to_str().unwrap()));
    assert_has(&e, &["parts[1].path", "absolute"]);
    let e = open_err(|m| m["global_tidx"]["path"] = json!("/etc/passwd"));
    assert_has(&e, &["global_tidx.path", "absolute"]);
    let e = open_err(|m| m["parts"][0]["path"] = json!("C:/x/part.aero"));
    assert_has(&e, &["parts[0].path"]);
}

#[cfg(unix)]
#[test]
fn symlink_escape_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_set(tmp.path());
    // An identical file outside the set: the bytes would even verify.
    let outside = tmp.path().join("outside.aero");
    std::fs::copy(dir.join("part-000.aero"), &outside).unwrap();
    std::fs::remove_file(dir.join("part-000.aero")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("part-000.aero")).unwrap();

    let set = AeroSet::open(&dir).unwrap(); // part 0 is opened lazily
    let e = set.tensor("embed.weight").unwrap_err();
    assert!(matches!(e, SetError::UnsafePath { .. }), "{e:?}");
    assert_has(
        &e.to_string(),
        &["parts[0].path", "outside the set directory"],
    );
    // Other parts still read.
    assert!(set.tensor("big.weight").is_ok());

    let r = validate_set(&set, Mode::Quick, &|_| {});
    assert!(!r.valid);
    assert!(
        r.errors
            .iter()
            .any(|x| x.starts_with("part-000.aero: ") && x.contains("outside")),
        "{:?}",
        r.errors
    );

    // Index through a symlink leading out: refused at open.
    std::fs::copy(dir.join("index.aero"), tmp.path().join("idx.aero")).unwrap();
    std::fs::remove_file(dir.join("index.aero")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("idx.aero"), dir.join("index.aero")).unwrap();
    let e = AeroSet::open(&dir).unwrap_err().to_string();
    assert_has(&e, &["global_tidx.path", "outside the set directory"]);
}

#[cfg(unix)]
#[test]
fn symlink_inside_the_set_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_set(tmp.path());
    std::fs::create_dir(dir.join("blobs")).unwrap();
    std::fs::rename(dir.join("part-001.aero"), dir.join("blobs/p1")).unwrap();
    std::os::unix::fs::symlink("blobs/p1", dir.join("part-001.aero")).unwrap();
    let set = AeroSet::open(&dir).unwrap();
    assert!(set.tensor("big.weight").is_ok());
    assert!(validate_set(&set, Mode::Full, &|_| {}).valid);
}

#[test]
fn shard_claimed_by_two_parts_is_refused() {
    let e = open_err(|m| m["parts"][1]["shards"] = json!([1, 0]));
    assert_has(
        &e,
        &["parts[1].shards[1]", "shard 0", "also claimed by parts[0]"],
    );
    let e = open_err(|m| m["parts"][0]["shards"] = json!([0, 0]));
    assert_has(&e, &["parts[0].shards[1]", "listed twice"]);
}

#[test]
fn shard_missing_from_every_part_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_set(tmp.path());
    let mut m = manifest(&dir);
    m["parts"][2]["shards"] = json!([]);
    write_manifest(&dir, &m);
    let set = AeroSet::open(&dir).unwrap();
    let e = set.tensor("scalar").unwrap_err().to_string();
    assert_has(&e, &["tensor 'scalar'", "shard_id 2", "not listed"]);
    let r = validate_set(&set, Mode::Quick, &|_| {});
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(
        r.errors
            .iter()
            .any(|x| x.contains("shard 2") && x.contains("not listed in the `shards` of any part")),
        "{:?}",
        r.errors
    );
}

#[test]
fn wrong_json_types_name_the_field() {
    let cases: Vec<(Edit, &[&str])> = vec![
        (
            Box::new(|m| m["parts"][0]["size_bytes"] = json!("1212")),
            &["parts[0].size_bytes", "non-negative integer", "string"],
        ),
        (
            Box::new(|m| m["parts"][0]["size_bytes"] = json!(-5)),
            &["parts[0].size_bytes", "negative"],
        ),
        (
            Box::new(|m| m["parts"][1]["size_bytes"] = json!(17248.5)),
            &["parts[1].size_bytes", "non-integer"],
        ),
        (
            Box::new(|m| m["parts"][0]["shards"] = json!("0")),
            &["parts[0].shards", "array"],
        ),
        (
            Box::new(|m| m["parts"][2]["shards"] = json!([2, "x"])),
            &["parts[2].shards[1]"],
        ),
        (
            Box::new(|m| m["parts"] = json!({"path": "x"})),
            &["`parts`", "expected an array"],
        ),
        (
            Box::new(|m| m["parts"][0] = json!("part-000.aero")),
            &["parts[0]", "object"],
        ),
        (
            Box::new(|m| m["parts"][0]["path"] = json!(7)),
            &["parts[0].path", "string"],
        ),
        (
            Box::new(|m| m["parts"][0]["sha256"] = json!("abc")),
            &["parts[0].sha256", "64 hex"],
        ),
        (
            Box::new(|m| m["parts"][0]["sha256"] = json!("z".repeat(64))),
            &["parts[0].sha256", "hexadecimal"],
        ),
        (
            Box::new(|m| m["format"]["version"] = json!("0.1")),
            &["format.version", "[major, minor]"],
        ),
        (
            Box::new(|m| m["format"]["version"] = json!([0, 3])),
            &["format.version", "unsupported", "0.3"],
        ),
        (
            Box::new(|m| m["format"]["name"] = json!("AERO")),
            &["format.name", "AEROSET"],
        ),
        (
            Box::new(|m| m["model"]["name"] = json!(5)),
            &["model.name", "string"],
        ),
        (
            Box::new(|m| m["global_tidx"] = json!([])),
            &["global_tidx", "object"],
        ),
        (Box::new(|m| m["base_url"] = json!(3)), &["base_url"]),
        (
            Box::new(|m| m["base_url"] = json!("ftp://x")),
            &["base_url", "http"],
        ),
        (
            Box::new(|m| m["cache"] = json!({"enabled": "yes"})),
            &["cache.enabled", "true or false"],
        ),
        (Box::new(|m| m["parts"] = json!([])), &["`parts`", "empty"]),
        (Box::new(|m| *m = json!([1, 2])), &["(root)", "object"]),
    ];
    for (edit, want) in cases {
        let e = open_err(edit);
        assert_has(&e, want);
        assert_has(&e, &["model.aeroset.json: field `"]);
    }
}

#[test]
fn missing_fields_name_the_field() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "format",
            Box::new(|m| drop(m.as_object_mut().unwrap().remove("format"))),
        ),
        (
            "format.version",
            Box::new(|m| drop(m["format"].as_object_mut().unwrap().remove("version"))),
        ),
        (
            "model",
            Box::new(|m| drop(m.as_object_mut().unwrap().remove("model"))),
        ),
        (
            "model.architecture",
            Box::new(|m| drop(m["model"].as_object_mut().unwrap().remove("architecture"))),
        ),
        (
            "parts",
            Box::new(|m| drop(m.as_object_mut().unwrap().remove("parts"))),
        ),
        (
            "parts[1].sha256",
            Box::new(|m| drop(m["parts"][1].as_object_mut().unwrap().remove("sha256"))),
        ),
        (
            "parts[2].shards",
            Box::new(|m| drop(m["parts"][2].as_object_mut().unwrap().remove("shards"))),
        ),
        (
            "parts[0].path",
            Box::new(|m| drop(m["parts"][0].as_object_mut().unwrap().remove("path"))),
        ),
        (
            "global_tidx",
            Box::new(|m| drop(m.as_object_mut().unwrap().remove("global_tidx"))),
        ),
        (
            "global_tidx.size_bytes",
            Box::new(|m| {
                drop(
                    m["global_tidx"]
                        .as_object_mut()
                        .unwrap()
                        .remove("size_bytes"),
                )
            }),
        ),
    ];
    for (field, edit) in cases {
        let e = open_err(edit);
        assert_has(&e, &[&format!("field `{field}`"), "missing"]);
    }
}

#[test]
fn not_json_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_set(tmp.path());
    std::fs::write(dir.join("model.aeroset.json"), b"{\"format\": ").unwrap();
    let e = AeroSet::open(&dir).unwrap_err().to_string();
    assert_has(&e, &["model.aeroset.json", "not valid JSON"]);
}

#[test]
fn unknown_keys_are_ignored_and_v02_reads_locally() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_set(tmp.path());
    let mut m = manifest(&dir);
    m["format"]["version"] = json!([0, 2]);
    m["base_url"] = json!("https://models.example/golden-set");
    m["cache"] = json!({"enabled": true, "recommended": false, "ttl": 5});
    m["publisher"] = json!({"anything": [1, 2, 3]});
    m["parts"][0]["note"] = json!("ignored");
    m["global_tidx"]["extra"] = json!(null);
    write_manifest(&dir, &m);
    let set = AeroSet::open(dir.join("model.aeroset.json")).unwrap();
    assert_eq!(set.manifest().version, [0, 2]);
    assert_eq!(set.manifest().cache.unwrap().enabled, Some(true));
    assert!(set.tensor("big.weight").is_ok());
    assert!(validate_set(&set, Mode::Full, &|_| {}).valid);
}

#[test]
fn urls_need_explicit_permission() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_set(tmp.path());
    let mut m = manifest(&dir);
    m["format"]["version"] = json!([0, 2]);
    m["parts"][0]["path"] = json!("https://models.example/part-000.aero");
    write_manifest(&dir, &m);
    let e = AeroSet::open(&dir).unwrap_err();
    assert!(matches!(e, SetError::RemoteNotAllowed { .. }), "{e:?}");
    assert_has(
        &e.to_string(),
        &[
            "parts[0].path",
            "https://models.example/part-000.aero",
            "remote",
        ],
    );

    // Allowed: the local parts read; the remote one needs a remote backend.
    let set = AeroSet::open_with(&dir, &SetOptions { allow_remote: true }).unwrap();
    assert!(set.tensor("big.weight").is_ok());
    let e = set.tensor("embed.weight").unwrap_err();
    assert!(matches!(e, SetError::Unsupported { .. }), "{e:?}");
}

#[test]
fn corrupting_one_part_byte_names_that_part() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_set(tmp.path());
    let p = dir.join("part-001.aero");
    let mut b = std::fs::read(&p).unwrap();
    b[5000] ^= 0x40; // inside weights.shard0 (offset 864, 16384 bytes)
    std::fs::write(&p, b).unwrap();
    let set = AeroSet::open(&dir).unwrap();
    for mode in [Mode::Quick, Mode::Full] {
        let r = validate_set(&set, mode, &|_| {});
        assert_eq!(r.verdict, Verdict::Invalid, "{mode:?}");
        assert!(!r.errors.is_empty());
        for e in &r.errors {
            assert!(e.starts_with("part-001.aero: "), "{mode:?}: {e}");
        }
        assert!(
            r.errors.iter().any(|e| e.contains("SHA-256 mismatch")),
            "{:?}",
            r.errors
        );
        if mode == Mode::Full {
            assert!(
                r.errors
                    .iter()
                    .any(|e| e.contains("weights.shard0") && e.contains("BLAKE3 mismatch")),
                "{:?}",
                r.errors
            );
        }
        assert_eq!(r.files[2].sha256, "mismatch");
        assert_eq!(r.files[1].sha256, "verified");
    }
}

#[test]
fn wrong_size_and_missing_files_name_the_part() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_set(tmp.path());
    let mut m = manifest(&dir);
    m["parts"][2]["size_bytes"] = json!(889);
    write_manifest(&dir, &m);
    let set = AeroSet::open(&dir).unwrap();
    let e = set.tensor("scalar").unwrap_err().to_string();
    assert_has(&e, &["part-002.aero", "888 bytes", "size_bytes 889"]);
    let r = validate_set(&set, Mode::Quick, &|_| {});
    assert!(
        r.errors
            .iter()
            .any(|e| e.starts_with("part-002.aero: size is 888")),
        "{:?}",
        r.errors
    );

    std::fs::remove_file(dir.join("part-000.aero")).unwrap();
    let set = AeroSet::open(&dir).unwrap();
    let e = set.tensor("mask").unwrap_err().to_string();
    assert_has(&e, &["parts[0].path", "cannot open"]);
    let r = validate_set(&set, Mode::Quick, &|_| {});
    assert!(
        r.errors.iter().any(|e| e.starts_with("part-000.aero: ")),
        "{:?}",
        r.errors
    );
}

#[test]
fn damaged_index_is_reported_by_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_set(tmp.path());
    let p = dir.join("index.aero");
    let mut b = std::fs::read(&p).unwrap();
    b[500] ^= 1; // inside the TIDX payload (offset 448)
    std::fs::write(&p, b).unwrap();
    assert!(AeroSet::open(&dir).is_err());
    let set = AeroSet::load(
        &dir,
        &SetOptions::default(),
        std::sync::Arc::new(aero_set::LocalStorage),
    )
    .unwrap();
    let r = validate_set(&set, Mode::Quick, &|_| {});
    assert!(!r.valid);
    assert!(
        r.errors.iter().all(|e| e.starts_with("index.aero: ")),
        "{:?}",
        r.errors
    );
    assert!(
        r.errors.iter().any(|e| e.contains("SHA-256")),
        "{:?}",
        r.errors
    );
}
