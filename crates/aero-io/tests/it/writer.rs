//! The streaming writer: byte-identical reference layout, aligned layout with
//! zero-copy views, integrity data accepted by an independent reader, atomicity.

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use aero_io::write::{Layout, TensorSpec, WriteOptions, write_model};
use aero_io::{AeroFile, DType, Mode, Verdict};
use common::*;

/// Tensor specs reading from an opened AERO file, in its TIDX order.
fn specs_from(f: &AeroFile) -> Vec<TensorSpec<'_>> {
    f.index()
        .unwrap()
        .tensors()
        .iter()
        .map(|t| TensorSpec {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            data_len: t.data_len,
            extras: t.extras.clone(),
            bytes: aero_io::write::TensorBytes::Reader(f.tensor_reader_unverified(t).unwrap()),
        })
        .collect()
}

fn golden_opts(f: &AeroFile) -> WriteOptions {
    let (name, arch) = f.model();
    let mut extra = match f.meta_json().unwrap() {
        Some(serde_json::Value::Object(m)) => m,
        _ => Default::default(),
    };
    extra.remove("model_name");
    WriteOptions {
        model_name: name.unwrap(),
        architecture: arch.unwrap(),
        extra_meta: extra,
        uuid: Some([0x33; 16]),
        ..WriteOptions::reference()
    }
}

#[test]
fn reference_layout_reproduces_golden_files_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for (name, max) in [
        ("mixed-single-shard.aero", None),
        ("mixed-multishard.aero", Some(4096)),
    ] {
        let f = AeroFile::open(golden().join(name)).unwrap();
        let mut opts = golden_opts(&f);
        if let Some(m) = max {
            opts.max_shard_bytes = m;
        }
        let out = dir.path().join(name);
        write_model(&out, specs_from(&f), &opts).unwrap();
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(golden().join(name)).unwrap(),
            "{name} differs"
        );
    }
}

#[test]
fn output_is_deterministic_for_a_fixed_uuid() {
    let dir = tempfile::tempdir().unwrap();
    let f = AeroFile::open(golden().join("mixed-single-shard.aero")).unwrap();
    let mut opts = golden_opts(&f);
    opts.layout = Layout::Aligned;
    opts.tensor_hash = true;
    opts.control_integrity = true;
    opts.page_hashes = Some(1024);
    let (a, b) = (dir.path().join("a.aero"), dir.path().join("b.aero"));
    write_model(&a, specs_from(&f), &opts).unwrap();
    write_model(&b, specs_from(&f), &opts).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    opts.uuid = None;
    write_model(&b, specs_from(&f), &opts).unwrap();
    assert_ne!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "random UUIDs differ"
    );
}

/// A mixed-dtype model covering every sized dtype plus packed bytes, with
/// sizes chosen so that back-to-back packing would misalign most tensors.
fn mixed_model() -> Vec<(String, DType, Vec<u64>, Vec<u8>)> {
    let mut v = Vec::new();
    let dtypes = [
        DType::U8,
        DType::F16,
        DType::F32,
        DType::BF16,
        DType::F64,
        DType::I8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
        DType::Bool,
    ];
    let mut rng = aero_test_support::Rng::new(1);
    for (i, d) in dtypes.iter().enumerate() {
        let n = 3 + 5 * i as u64;
        let len = n * d.size().unwrap();
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let x = rng.next_u64();
                if *d == DType::Bool {
                    (x & 1) as u8
                } else {
                    x as u8
                }
            })
            .collect();
        v.push((format!("t{i:02}.{}", d.name()), *d, vec![n], bytes));
    }
    v.push((
        "z.packed".into(),
        DType::Packed,
        vec![7],
        (0..7u8).collect(),
    ));
    v.push((
        "z.scalar".into(),
        DType::F64,
        vec![],
        1.5f64.to_le_bytes().to_vec(),
    ));
    v.push(("z.empty".into(), DType::F32, vec![0, 4], vec![]));
    v
}

fn mixed_specs(m: &[(String, DType, Vec<u64>, Vec<u8>)]) -> Vec<TensorSpec<'_>> {
    m.iter()
        .map(|(n, d, s, b)| {
            let mut extras = Vec::new();
            if *d == DType::Packed {
                let mut qp = Vec::new();
                aero_io::meta::json_to_msgpack(
                    &serde_json::json!({"codec": "test", "bits": 3}),
                    &mut qp,
                );
                extras.push(("quant_id".to_string(), vec![0u8]));
                extras.push(("quant_params".to_string(), qp));
                extras.push(("x_custom".to_string(), vec![0xa3, b'y', b'e', b's']));
            }
            TensorSpec {
                name: n.clone(),
                dtype: *d,
                shape: s.clone(),
                data_len: b.len() as u64,
                extras,
                bytes: aero_io::write::TensorBytes::Reader(Box::new(b.as_slice())),
            }
        })
        .collect()
}

fn check_views(f: &AeroFile) {
    use aero_io::TensorView;
    fn typed<T: aero_io::Element>(v: &TensorView<'_>) {
        let s: &[T] = v.as_slice().unwrap_or_else(|e| panic!("{}: {e}", v.name()));
        assert_eq!(std::mem::size_of_val(s), v.bytes().len());
    }
    for t in f.index().unwrap().tensors() {
        let v = f.tensor(&t.name).unwrap();
        assert!(v.is_zero_copy(), "{} was copied", t.name);
        match t.dtype {
            DType::F32 => typed::<f32>(&v),
            DType::F64 => typed::<f64>(&v),
            DType::F16 | DType::BF16 | DType::U16 => typed::<u16>(&v),
            DType::I16 => typed::<i16>(&v),
            DType::I32 => typed::<i32>(&v),
            DType::U32 => typed::<u32>(&v),
            DType::I64 => typed::<i64>(&v),
            DType::U64 => typed::<u64>(&v),
            DType::I8 => typed::<i8>(&v),
            _ => typed::<u8>(&v),
        }
    }
}

#[test]
fn aligned_layout_gives_aligned_offsets_and_typed_zero_copy_views() {
    let dir = tempfile::tempdir().unwrap();
    let m = mixed_model();
    let out = dir.path().join("aligned.aero");
    let opts = WriteOptions {
        max_shard_bytes: 300,
        uuid: Some([7; 16]),
        ..Default::default()
    };
    let s = write_model(&out, mixed_specs(&m), &opts).unwrap();
    assert!(s.shards > 1, "several shards exercise the 4096 alignment");
    let f = AeroFile::open(&out).unwrap();
    for c in f
        .chunks()
        .iter()
        .filter(|c| c.fourcc == aero_io::FourCc::WTSH)
    {
        assert_eq!(c.offset % 4096, 0, "{}", c.name);
    }
    for t in f.index().unwrap().tensors() {
        assert_eq!(t.data_off % 64, 0, "{}", t.name);
    }
    check_views(&f);
    for (n, _, _, b) in &m {
        assert_eq!(f.tensor(n).unwrap().bytes(), b.as_slice());
    }
    let packed = f.index().unwrap().get("z.packed").unwrap();
    assert_eq!(packed.quant_id, Some(0));
    assert_eq!(
        packed.extras_json()["quant_params"],
        serde_json::json!({"codec": "test", "bits": 3})
    );
    assert_eq!(packed.extras_json()["x_custom"], serde_json::json!("yes"));
    assert_eq!(
        aero_io::validate(&f, Mode::Full, &|_| {}).verdict,
        Verdict::Valid
    );
}

#[test]
fn reference_layout_typed_views_fall_back_to_copies() {
    let dir = tempfile::tempdir().unwrap();
    let m = mixed_model();
    let out = dir.path().join("ref.aero");
    let opts = WriteOptions {
        uuid: Some([7; 16]),
        ..WriteOptions::reference()
    };
    write_model(&out, mixed_specs(&m), &opts).unwrap();
    let f = AeroFile::open(&out).unwrap();
    let mut misaligned = 0;
    for t in f
        .index()
        .unwrap()
        .tensors()
        .iter()
        .filter(|t| t.dtype == DType::F32 || t.dtype == DType::I64)
    {
        let v = f.tensor(&t.name).unwrap();
        match t.dtype {
            DType::F32 => {
                if v.as_slice::<f32>().is_err() {
                    misaligned += 1;
                }
                assert_eq!(v.to_vec::<f32>().unwrap().len() * 4, v.bytes().len());
            }
            _ => {
                if v.as_slice::<i64>().is_err() {
                    misaligned += 1;
                }
                assert_eq!(v.to_vec::<i64>().unwrap().len() * 8, v.bytes().len());
            }
        }
    }
    assert!(
        misaligned > 0,
        "the reference layout packs tensors unaligned"
    );
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pyref(args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(repo_root().join("tests/pyref/aero_ref.py"))
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
fn independent_reader_accepts_integrity_data_and_every_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let m = mixed_model();
    for (i, layout) in [Layout::Aligned, Layout::Reference].into_iter().enumerate() {
        let out = dir.path().join(format!("full{i}.aero"));
        let opts = WriteOptions {
            max_shard_bytes: 256,
            uuid: Some([9; 16]),
            layout,
            tensor_hash: true,
            control_integrity: true,
            page_hashes: Some(64),
            ..Default::default()
        };
        write_model(&out, mixed_specs(&m), &opts).unwrap();
        let r = pyref_validate(&out);
        assert_eq!(r["valid"], true, "{r}");
        assert_eq!(r["control"], "verified", "{r}");
        assert!(
            r["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["status"] == "verified"),
            "{r}"
        );
        let pages = r["pages"].as_object().unwrap();
        assert!(
            !pages.is_empty() && pages.values().all(|v| v == "verified"),
            "{r}"
        );
        for (n, _, _, b) in &m {
            assert_eq!(r["tensors"][n]["hash_b3"], "verified", "{n}");
            let dump = dir.path().join("t.bin");
            let o = pyref(&[
                "dump-tensor",
                out.to_str().unwrap(),
                n,
                dump.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(&std::fs::read(&dump).unwrap(), b, "{n}");
        }
        if layout == Layout::Aligned {
            let o = pyref(&["check-aligned", out.to_str().unwrap()]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        }
        // Our own reader agrees.
        let f = AeroFile::open(&out).unwrap();
        let rep = aero_io::validate(&f, Mode::Full, &|_| {});
        assert_eq!(rep.verdict, Verdict::Valid, "{:?}", rep.errors);
        assert!(rep.tensors.iter().all(|t| t.hash_b3 == "verified"));
    }
    // The golden IHSH/PHSH file passes the same independent checks.
    let r = pyref_validate(&golden().join("ihsh-phsh.aero"));
    assert_eq!(r["valid"], true);
    assert_eq!(r["control"], "verified");
}

/// A source that yields `n` bytes and then ends, although more were declared.
struct Short(u64);
impl Read for Short {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = (self.0 as usize).min(buf.len());
        buf[..k].fill(1);
        self.0 -= k as u64;
        Ok(k)
    }
}

#[test]
fn a_failing_write_leaves_no_tmp_and_the_destination_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.aero");
    std::fs::write(&out, b"previous contents").unwrap();
    let spec = |n: &str, len, have| TensorSpec {
        name: n.into(),
        dtype: DType::U8,
        shape: vec![len],
        data_len: len,
        extras: vec![],
        bytes: aero_io::write::TensorBytes::Reader(Box::new(Short(have))),
    };
    let err = write_model(
        &out,
        vec![spec("a", 10, 10), spec("b", 1 << 20, 1000)],
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("source ended after 1000 of 1048576 bytes"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"previous contents");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn invalid_tensor_sets_are_rejected_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.aero");
    let t = |n: &str, d: DType, shape: Vec<u64>, len: u64| TensorSpec {
        name: n.into(),
        dtype: d,
        shape,
        data_len: len,
        extras: vec![],
        bytes: aero_io::write::TensorBytes::Reader(Box::new(std::io::empty())),
    };
    let long = "n".repeat(4097);
    let cases: Vec<(Vec<TensorSpec<'_>>, &str)> = vec![
        (vec![], "no tensors"),
        (
            vec![t("a", DType::U8, vec![1], 1), t("a", DType::U8, vec![1], 1)],
            "duplicate tensor name 'a'",
        ),
        (vec![t("", DType::U8, vec![1], 1)], "empty name"),
        (vec![t(&long, DType::U8, vec![1], 1)], "exceeds 4096 bytes"),
        (
            vec![t("a", DType::F32, vec![2, 3], 20)],
            "is 24 bytes but 20 bytes were given",
        ),
        (vec![t("a", DType::F32, vec![u64::MAX, 2], 0)], "overflows"),
    ];
    for (specs, want) in cases {
        let e = write_model(&out, specs, &WriteOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e} does not contain {want}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left behind"
        );
    }
    // Packed tensors have no element size: any length is accepted.
    write_model(
        &out,
        vec![t("p", DType::Packed, vec![3], 0)],
        &WriteOptions::default(),
    )
    .unwrap();
}

#[test]
fn shard_planning_follows_the_reference_rule() {
    use aero_io::write::ShardPlan;
    let p = ShardPlan::new(
        [128, 8, 32, 16, 5, 24, 7, 16384, 0, 8],
        4096,
        Layout::Reference,
    )
    .unwrap();
    assert_eq!(p.shard_len, [220, 16384, 8]);
    assert_eq!(p.shard_tensors, [7, 1, 2]);
    let p = ShardPlan::new([5, 5, 5], 128, Layout::Aligned).unwrap();
    assert_eq!(p.placement, [(0, 0), (0, 64), (1, 0)]);
}

#[test]
fn independent_reader_accepts_the_default_output() {
    let dir = tempfile::tempdir().unwrap();
    let m = mixed_model();
    // The defaults (hash_b3 and 1 MiB pages), several shards, and a file
    // whose only shard is empty (it gets no PHSH: spec §16.7).
    let cases: Vec<(&str, Vec<TensorSpec<'_>>, WriteOptions)> = vec![
        (
            "defaults",
            mixed_specs(&m),
            WriteOptions {
                max_shard_bytes: 256,
                uuid: Some([9; 16]),
                ..WriteOptions::default()
            },
        ),
        (
            "empty-shard",
            vec![TensorSpec {
                name: "empty".into(),
                dtype: DType::F32,
                shape: vec![0, 4],
                data_len: 0,
                extras: vec![],
                bytes: aero_io::write::TensorBytes::Reader(Box::new(std::io::empty())),
            }],
            WriteOptions::default(),
        ),
    ];
    for (label, specs, opts) in cases {
        let out = dir.path().join(format!("{label}.aero"));
        write_model(&out, specs, &opts).unwrap();
        let f = AeroFile::open(&out).unwrap();
        let shards = f
            .chunks()
            .iter()
            .filter(|c| c.fourcc == aero_io::FourCc::WTSH)
            .count();
        let pages = f
            .chunks()
            .iter()
            .filter(|c| c.fourcc == aero_io::FourCc::PHSH)
            .count();
        if label == "empty-shard" {
            assert_eq!((shards, pages), (1, 0), "no PHSH for an empty shard");
        } else {
            assert!(shards > 1 && pages == shards, "{shards} {pages}");
        }
        assert!(
            f.index()
                .unwrap()
                .tensors()
                .iter()
                .all(|t| t.hash_b3.is_some())
        );
        let r = pyref_validate(&out);
        assert_eq!(r["valid"], true, "{label}: {r}");
        assert!(
            r["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["status"] == "verified"),
            "{label}: {r}"
        );
        assert!(
            r["pages"]
                .as_object()
                .unwrap()
                .values()
                .all(|v| v == "verified"),
            "{r}"
        );
        for t in f.index().unwrap().tensors() {
            assert_eq!(
                r["tensors"][&t.name]["hash_b3"], "verified",
                "{label} {}",
                t.name
            );
        }
    }
}
