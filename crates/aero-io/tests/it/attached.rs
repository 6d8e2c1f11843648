//! Attached files (`FILE` chunks): written after the weights, read back
//! verified, checked by `validate` in every mode, carried by `repack`, and
//! skipped by a reader that knows only the spec (the independent Python
//! reader), which still validates the file and reads the same tensors.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use aero_io::write::{Layout, TensorBytes, TensorSpec, WriteOptions, write_model};
use aero_io::{AeroFile, AttachedData, AttachedFile, DType, Error, FourCc, Mode, Verdict};

fn specs(data: &[(String, Vec<u8>)]) -> Vec<TensorSpec<'_>> {
    data.iter()
        .map(|(n, b)| TensorSpec {
            name: n.clone(),
            dtype: DType::F32,
            shape: vec![b.len() as u64 / 4],
            data_len: b.len() as u64,
            extras: Vec::new(),
            bytes: TensorBytes::Reader(Box::new(&b[..])),
        })
        .collect()
}

fn tensors() -> Vec<(String, Vec<u8>)> {
    (0..3)
        .map(|i| {
            (
                format!("layer.{i}.weight"),
                aero_test_support::bytes(i + 7, 4 * (100 + 50 * i as usize)),
            )
        })
        .collect()
}

fn bytes_file(name: &str, b: &[u8]) -> AttachedFile {
    AttachedFile {
        name: name.into(),
        data: AttachedData::Bytes(Arc::from(b)),
    }
}

/// `config.json` from disk, a tokenizer and a nested file from memory.
fn attached(dir: &Path) -> Vec<AttachedFile> {
    let cfg = dir.join("config.json");
    std::fs::write(
        &cfg,
        br#"{"architectures": ["BertModel"], "model_type": "bert"}"#,
    )
    .unwrap();
    vec![
        AttachedFile {
            name: "config.json".into(),
            data: AttachedData::Path {
                path: cfg.clone(),
                len: std::fs::metadata(&cfg).unwrap().len(),
            },
        },
        bytes_file("tokenizer.json", &aero_test_support::bytes(99, 5000)),
        bytes_file(
            "1_Pooling/config.json",
            b"{\"pooling_mode_mean_tokens\": true}",
        ),
        bytes_file("empty.txt", b""),
    ]
}

fn pyref(args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/pyref/aero_ref.py"))
        .args(args)
        .output()
        .expect("python3 is needed (cargo xtask setup installs the packages)")
}

fn pyref_validate(p: &Path) -> serde_json::Value {
    let o = pyref(&["validate", p.to_str().unwrap(), "--json"]);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn attached_files_round_trip_verified_in_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let t = tensors();
    let files = attached(dir.path());
    for (i, layout) in [Layout::Aligned, Layout::Reference].into_iter().enumerate() {
        let out = dir.path().join(format!("m{i}.aero"));
        let opts = WriteOptions {
            layout,
            control_integrity: true,
            attached: files.clone(),
            uuid: Some([3; 16]),
            ..Default::default()
        };
        write_model(&out, specs(&t), &opts).unwrap();
        let f = AeroFile::open(&out).unwrap();
        let names: Vec<&str> = f.attached_files().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "config.json",
                "tokenizer.json",
                "1_Pooling/config.json",
                "empty.txt"
            ]
        );
        // After every standard chunk, in TOC and in file order; optional.
        let last_std = f
            .chunks()
            .iter()
            .filter(|c| c.fourcc != FourCc::FILE)
            .map(|c| (c.index, c.offset + c.length))
            .max()
            .unwrap();
        for c in f.attached_files() {
            assert!(c.index > last_std.0 && c.offset >= last_std.1, "{c:?}");
            assert!(c.flags.optional() && !c.flags.compressed(), "{c:?}");
        }
        for a in &files {
            let want: Vec<u8> = match &a.data {
                AttachedData::Bytes(b) => b.to_vec(),
                AttachedData::Path { path, .. } => std::fs::read(path).unwrap(),
            };
            assert_eq!(&*f.attached_file(&a.name).unwrap(), &want[..], "{}", a.name);
        }
        assert!(matches!(
            f.attached_file("nope.json"),
            Err(Error::NoSuchAttachedFile { .. })
        ));
        // The manifest lists them (role attached_file); validation passes.
        let man = f.manifest().unwrap().unwrap();
        let roles: Vec<&str> = man["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["fourcc"] == "FILE")
            .map(|c| c["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["attached_file"; 4]);
        for mode in [Mode::Quick, Mode::Full] {
            let r = aero_io::validate(&f, mode, &|_| {});
            assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.errors);
            for row in r.chunks.iter().filter(|c| c.fourcc == "FILE") {
                assert_eq!(row.status, "verified", "{row:?}");
            }
        }
        // A reader that knows only the spec skips nothing it needs: the
        // file validates, every chunk's hash verifies, the tensors are ours.
        let r = pyref_validate(&out);
        assert_eq!(r["valid"], true, "{r}");
        assert_eq!(r["control"], "verified", "{r}");
        for (n, b) in &t {
            assert_eq!(r["tensors"][n]["hash_b3"], "verified", "{r}");
            assert_eq!(
                r["tensors"][n]["blake3"],
                blake3::hash(b).to_hex().as_str(),
                "{n}"
            );
        }
        let file_rows: Vec<&serde_json::Value> = r["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["fourcc"] == "FILE")
            .collect();
        assert_eq!(file_rows.len(), 4);
        assert!(file_rows.iter().all(|c| c["status"] == "verified"), "{r}");
    }
}

#[test]
fn the_same_model_without_files_reads_the_same_for_a_spec_reader() {
    let dir = tempfile::tempdir().unwrap();
    let t = tensors();
    let (a, b) = (
        dir.path().join("with.aero"),
        dir.path().join("without.aero"),
    );
    let base = WriteOptions {
        uuid: Some([5; 16]),
        ..Default::default()
    };
    write_model(&b, specs(&t), &base).unwrap();
    let opts = WriteOptions {
        attached: attached(dir.path()),
        ..base
    };
    write_model(&a, specs(&t), &opts).unwrap();
    let (ra, rb) = (pyref_validate(&a), pyref_validate(&b));
    assert_eq!(ra["valid"], true, "{ra}");
    assert_eq!(ra["tensors"], rb["tensors"]);
    assert_eq!(ra["pages"], rb["pages"]);
    assert_eq!(ra["warnings"], rb["warnings"]);
    // Every chunk the spec knows is the same chunk, with the same hash.
    let fa = AeroFile::open(&a).unwrap();
    let fb = AeroFile::open(&b).unwrap();
    for cb in fb.chunks() {
        let ca = fa.find(cb.fourcc, &cb.name).unwrap();
        if cb.fourcc != FourCc::MMSG {
            assert_eq!(ca.blake3, cb.blake3, "{}", cb.name);
        }
    }
    assert_eq!(fa.chunks().len(), fb.chunks().len() + 4);
    assert_eq!(fa.meta_json().unwrap(), fb.meta_json().unwrap());
}

#[test]
fn a_damaged_attached_file_is_refused_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let t = tensors();
    let out = dir.path().join("m.aero");
    let opts = WriteOptions {
        attached: attached(dir.path()),
        ..Default::default()
    };
    write_model(&out, specs(&t), &opts).unwrap();
    let c = AeroFile::open(&out)
        .unwrap()
        .find(FourCc::FILE, "tokenizer.json")
        .unwrap()
        .clone();
    let mut bytes = std::fs::read(&out).unwrap();
    bytes[(c.offset + 10) as usize] ^= 0x40;
    std::fs::write(&out, &bytes).unwrap();
    let f = AeroFile::open(&out).unwrap();
    let e = f.attached_file("tokenizer.json").unwrap_err();
    assert!(matches!(e, Error::HashMismatch { .. }), "{e}");
    assert!(e.is_invalid_data());
    assert!(e.to_string().contains("'tokenizer.json'"), "{e}");
    // The other files and every tensor still read.
    assert!(f.attached_file("config.json").is_ok());
    assert!(f.tensor("layer.1.weight").is_ok());
    // Quick validation already hashes attached files.
    let r = aero_io::validate(&f, Mode::Quick, &|_| {});
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("FILE 'tokenizer.json'") && e.contains("mismatch")),
        "{:?}",
        r.errors
    );
    let r = pyref_validate(&out);
    assert_eq!(r["valid"], false, "{r}");
    // repack refuses the damaged input; with force it leaves the file out.
    let o2 = dir.path().join("r.aero");
    let e = aero_io::repack(
        &f,
        &o2,
        &aero_io::RepackOptions {
            write: WriteOptions::default(),
            force: false,
            progress: &|_| {},
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::InputDamaged { .. }), "{e}");
    assert!(!o2.exists());
    let r = aero_io::repack(
        &f,
        &o2,
        &aero_io::RepackOptions {
            write: WriteOptions::default(),
            force: true,
            progress: &|_| {},
        },
    )
    .unwrap();
    assert_eq!(r.dropped_files, ["tokenizer.json"]);
    let g = AeroFile::open(&o2).unwrap();
    let names: Vec<&str> = g.attached_files().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["config.json", "1_Pooling/config.json", "empty.txt"]);
}

#[test]
fn repack_carries_attached_files() {
    let dir = tempfile::tempdir().unwrap();
    let t = tensors();
    let out = dir.path().join("m.aero");
    let files = attached(dir.path());
    let opts = WriteOptions {
        attached: files.clone(),
        ..WriteOptions::reference()
    };
    write_model(&out, specs(&t), &opts).unwrap();
    let f = AeroFile::open(&out).unwrap();
    let o2 = dir.path().join("aligned.aero");
    aero_io::repack(
        &f,
        &o2,
        &aero_io::RepackOptions {
            write: WriteOptions::default(),
            force: false,
            progress: &|_| {},
        },
    )
    .unwrap();
    let g = AeroFile::open(&o2).unwrap();
    for a in &files {
        assert_eq!(
            f.attached_file(&a.name).unwrap(),
            g.attached_file(&a.name).unwrap()
        );
    }
}

#[test]
fn unsafe_or_clashing_names_and_oversized_files_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = tensors();
    let out = dir.path().join("m.aero");
    for (files, what) in [
        (vec![bytes_file("../escape.txt", b"x")], "'..'"),
        (vec![bytes_file("/etc/passwd", b"x")], "absolute"),
        (vec![bytes_file("a", b"x"), bytes_file("a", b"y")], "twice"),
        (
            vec![bytes_file("a/b", b"x"), bytes_file("a", b"y")],
            "directory",
        ),
        (
            vec![AttachedFile {
                name: "big.bin".into(),
                data: AttachedData::Path {
                    path: dir.path().join("big.bin"),
                    len: aero_io::attached::MAX_FILE_LEN + 1,
                },
            }],
            "cap",
        ),
    ] {
        let opts = WriteOptions {
            attached: files,
            ..Default::default()
        };
        let e = write_model(&out, specs(&t), &opts).unwrap_err();
        assert!(matches!(e, Error::BadAttachedFile { .. }), "{e}");
        assert!(e.to_string().contains(what), "{e} / {what}");
        assert!(!e.is_invalid_data());
        assert!(!out.exists());
        assert!(aero_test_support::leftovers(dir.path()).is_empty());
    }
    // A file that changed length after it was listed.
    let p = dir.path().join("grows.txt");
    std::fs::write(&p, b"12345").unwrap();
    let opts = WriteOptions {
        attached: vec![AttachedFile {
            name: "grows.txt".into(),
            data: AttachedData::Path { path: p, len: 3 },
        }],
        ..Default::default()
    };
    let e = write_model(&out, specs(&t), &opts).unwrap_err();
    assert!(e.to_string().contains("changed while it was read"), "{e}");
    assert!(!out.exists());
}
