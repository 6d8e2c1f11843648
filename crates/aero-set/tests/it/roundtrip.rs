//! Sets we write are read back by our reader with every tensor equal, use
//! global shard ids in their parts, validate, are deterministic with a fixed
//! UUID, and are written atomically.

use std::io::Read;
use std::path::{Path, PathBuf};

use aero_format::FourCc;
use aero_io::meta::json_to_msgpack;
use aero_io::write::raw::{ChunkSpec, write_chunks};
use aero_io::write::raw::{Manifest, ManifestChunk, encode_tidx};
use aero_io::write::{Layout, WriteOptions};
use aero_io::{AeroFile, DType, Mode, TensorInfo, Verdict};
use aero_set::writer::{SetTensor, SetWriteOptions, hash_file, write_set};
use aero_set::{AeroSet, SetError, validate_set};
use serde_json::json;

use aero_test_support::bytes;

fn model() -> Vec<(SetTensor, Vec<u8>)> {
    let mut qp = Vec::new();
    json_to_msgpack(&json!({"ggml_type": 12}), &mut qp);
    let mut qid = Vec::new();
    json_to_msgpack(&json!(0), &mut qid);
    let t = |name: &str, dtype, shape: Vec<u64>, len: usize, extras| {
        (
            SetTensor {
                name: name.into(),
                dtype,
                shape,
                data_len: len as u64,
                extras,
            },
            bytes(name.len() as u64 * 31 + len as u64, len),
        )
    };
    vec![
        t("a.embed", DType::F32, vec![16, 16], 1024, vec![]),
        t("b.norm", DType::F16, vec![33], 66, vec![]),
        t("c.pos", DType::I64, vec![5], 40, vec![]),
        t("d.bytes", DType::U8, vec![1000], 1000, vec![]),
        t("e.mask", DType::Bool, vec![7], 7, vec![]),
        t("f.scalar", DType::F64, vec![], 8, vec![]),
        t("g.empty", DType::F32, vec![0, 4], 0, vec![]),
        t("h.big", DType::BF16, vec![64, 24], 3072, vec![]),
        t(
            "i.q4k",
            DType::Packed,
            vec![256],
            144,
            vec![("quant_id".into(), qid), ("quant_params".into(), qp)],
        ),
        t("j.last", DType::I32, vec![3, 3], 36, vec![]),
    ]
}

fn opts(layout: Layout, tensor_hash: bool) -> SetWriteOptions {
    SetWriteOptions {
        file: WriteOptions {
            model_name: "rt-model".into(),
            architecture: "rt-arch".into(),
            max_shard_bytes: 1024,
            uuid: Some([0x5a; 16]),
            layout,
            tensor_hash,
            ..WriteOptions::default()
        },
        max_part_shards: 2,
        ..Default::default()
    }
}

fn write(out: &Path, o: &SetWriteOptions) -> aero_set::Result<aero_set::SetWriteSummary> {
    let m = model();
    let metas: Vec<SetTensor> = m.iter().map(|(t, _)| t.clone()).collect();
    write_set(out, &metas, o, &mut |i| {
        Ok(Box::new(std::io::Cursor::new(m[i].1.clone())))
    })
}

#[test]
fn written_sets_read_back_equal_and_validate() {
    for layout in [Layout::Aligned, Layout::Reference] {
        for tensor_hash in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let out = tmp.path().join("set");
            let s = write(&out, &opts(layout, tensor_hash)).unwrap();
            assert!(
                s.manifest.parts.len() >= 3,
                "several parts: {:?}",
                s.manifest.parts
            );
            assert!(s.manifest.parts.iter().all(|p| p.shards.len() <= 2));

            let set = AeroSet::open(&out).unwrap();
            assert_eq!(set.manifest(), &s.manifest);
            assert_eq!(set.manifest().model.name, "rt-model");
            let m = model();
            assert_eq!(set.index().unwrap().len(), m.len());
            for (t, data) in &m {
                let v = set.tensor(&t.name).unwrap();
                assert_eq!(v.bytes(), data.as_slice(), "{}", t.name);
                assert_eq!(v.dtype(), t.dtype);
                assert_eq!(v.shape(), t.shape.as_slice());
                let g = set.index().unwrap().get(&t.name).unwrap();
                assert_eq!(
                    g.hash_b3.is_some(),
                    tensor_hash,
                    "{}: global hash_b3",
                    t.name
                );
                assert_eq!(
                    g.extras, t.extras,
                    "{}: extras kept in the global TIDX",
                    t.name
                );
                assert_eq!(
                    v.info().extras,
                    t.extras,
                    "{}: extras kept in the part",
                    t.name
                );
                if layout == Layout::Aligned
                    && t.data_len > 0
                    && std::env::var_os("AEROTENSOR_NO_MMAP").is_none()
                {
                    assert!(v.is_zero_copy());
                }
            }

            // Parts use global shard ids: WTSH names and TIDX shard_ids.
            for (i, p) in s.manifest.parts.iter().enumerate() {
                let f = set.part(i).unwrap();
                let ids: Vec<u64> = f.chunks().iter().filter_map(|c| c.shard_id()).collect();
                assert_eq!(ids, p.shards, "{}", p.file.path);
                assert!(
                    f.index()
                        .unwrap()
                        .tensors()
                        .iter()
                        .all(|t| p.shards.contains(&t.shard_id))
                );
                assert_eq!(f.model().0.as_deref(), Some("rt-model"));
            }
            // Shards are numbered 0.. over the whole set, in order.
            let all: Vec<u64> = s
                .manifest
                .parts
                .iter()
                .flat_map(|p| p.shards.clone())
                .collect();
            assert_eq!(all, (0..s.shards as u64).collect::<Vec<_>>());

            let idx = AeroFile::open(out.join("index.aero")).unwrap();
            assert!(idx.is_set_index());
            let kinds: Vec<FourCc> = idx.chunks().iter().map(|c| c.fourcc).collect();
            assert_eq!(kinds, [FourCc::MMSG, FourCc::TIDX]);
            let man = idx.manifest().unwrap().unwrap();
            assert_eq!(man["shards"], json!([]));
            assert_eq!(man["chunks"][1]["toc_index"], 1);

            let r = validate_set(&set, Mode::Full, &|_| {});
            assert_eq!(r.verdict, Verdict::Valid, "{:?} {:?}", r.errors, r.warnings);
            assert_eq!(r.tensors_ok, m.len());
            assert!(
                !tmp.path()
                    .read_dir()
                    .unwrap()
                    .any(|e| { e.unwrap().file_name().to_string_lossy().contains(".tmp-") })
            );
        }
    }
}

#[test]
fn a_fixed_uuid_makes_the_output_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write(&a, &opts(Layout::Aligned, true)).unwrap();
    write(&b, &opts(Layout::Aligned, true)).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(names.len() >= 5);
    for n in names {
        assert_eq!(
            std::fs::read(a.join(&n)).unwrap(),
            std::fs::read(b.join(&n)).unwrap(),
            "{n:?}"
        );
    }
    // Parts get distinct UUIDs derived from the set's.
    let u0 = *AeroFile::open(a.join("part-000.aero")).unwrap().header();
    let u1 = *AeroFile::open(a.join("part-001.aero")).unwrap().header();
    assert_ne!(u0.uuid, u1.uuid);
    assert_eq!(
        AeroFile::open(a.join("index.aero")).unwrap().header().uuid,
        [0x5a; 16]
    );
}

struct FailAfter(usize);
impl Read for FailAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = self.0.min(buf.len());
        buf[..n].fill(7);
        self.0 -= n;
        Ok(n)
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".old-"))
        .collect()
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    let m = model();
    let metas: Vec<SetTensor> = m.iter().map(|(t, _)| t.clone()).collect();
    // Fail in the last tensor, after earlier parts were fully written.
    let last = metas.len() - 1;
    let e = write_set(&out, &metas, &opts(Layout::Aligned, false), &mut |i| {
        if i == last {
            Ok(Box::new(FailAfter(10)))
        } else {
            Ok(Box::new(std::io::Cursor::new(m[i].1.clone())))
        }
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("disk on fire") || e.to_string().contains("j.last"),
        "{e}"
    );
    assert!(!out.exists());
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );

    // A source that cannot even be opened.
    let e = write_set(&out, &metas, &opts(Layout::Aligned, false), &mut |i| {
        if i == 3 {
            Err(std::io::Error::other("gone"))
        } else {
            Ok(Box::new(std::io::Cursor::new(m[i].1.clone())))
        }
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("d.bytes") && e.to_string().contains("gone"),
        "{e}"
    );
    assert!(!out.exists());
    assert!(leftovers(tmp.path()).is_empty());

    // A failure replacing an existing set leaves the old set intact.
    write(&out, &opts(Layout::Aligned, false)).unwrap();
    let before = std::fs::read(out.join("model.aeroset.json")).unwrap();
    let mut o = opts(Layout::Aligned, true);
    o.replace = true;
    assert!(
        write_set(&out, &metas, &o, &mut |i| {
            if i == last {
                Ok(Box::new(FailAfter(3)))
            } else {
                Ok(Box::new(std::io::Cursor::new(m[i].1.clone())))
            }
        })
        .is_err()
    );
    assert_eq!(
        std::fs::read(out.join("model.aeroset.json")).unwrap(),
        before
    );
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn invalid_input_is_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    let mut bad = model();
    bad[1].0.name = bad[0].0.name.clone();
    let metas: Vec<SetTensor> = bad.iter().map(|(t, _)| t.clone()).collect();
    let e = write_set(&out, &metas, &opts(Layout::Aligned, false), &mut |_| {
        Ok(Box::new(std::io::empty()))
    });
    assert!(e.unwrap_err().to_string().contains("duplicate tensor name"));
    let mut o = opts(Layout::Aligned, false);
    o.max_part_shards = 0;
    assert!(write(&out, &o).is_err());
    assert!(
        write_set(&out, &[], &opts(Layout::Aligned, false), &mut |_| Ok(
            Box::new(std::io::empty())
        ))
        .is_err()
    );
    assert!(!out.exists());
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn destination_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(Layout::Aligned, false);

    // An empty directory is used.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    write(&empty, &o).unwrap();
    assert!(empty.join("model.aeroset.json").is_file());

    // An existing set is refused unless replacing is allowed; then replaced.
    let e = write(&empty, &o).unwrap_err();
    assert!(
        matches!(e, SetError::Output { .. }) && e.to_string().contains("already holds an AEROSET"),
        "{e}"
    );
    let mut r = o.clone();
    r.replace = true;
    r.file.model_name = "second".into();
    write(&empty, &r).unwrap();
    assert_eq!(
        AeroSet::open(&empty).unwrap().manifest().model.name,
        "second"
    );
    assert!(leftovers(tmp.path()).is_empty());

    // A set directory holding anything else is never replaced.
    std::fs::write(empty.join("README.md"), b"mine").unwrap();
    let e = write(&empty, &r).unwrap_err().to_string();
    assert!(e.contains("README.md"), "{e}");
    assert!(empty.join("README.md").is_file());

    // Neither is a non-set directory or a file.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("x"), b"x").unwrap();
    assert!(
        write(&other, &r)
            .unwrap_err()
            .to_string()
            .contains("not empty")
    );
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(
        write(&file, &r)
            .unwrap_err()
            .to_string()
            .contains("not a directory")
    );
    // Missing parents are created.
    let nested = tmp.path().join("new/parent/set");
    write(&nested, &r).unwrap();
    assert!(AeroSet::open(&nested).is_ok());
}

/// Rewrites the set's index with `edit` applied to its TIDX entries and
/// updates the manifest's sha256/size, so only the TIDX content differs.
fn rewrite_index(dir: &Path, edit: impl FnOnce(&mut Vec<TensorInfo>)) {
    let set = AeroSet::open(dir).unwrap();
    let mut tensors = set.index().unwrap().tensors().to_vec();
    edit(&mut tensors);
    let mmsg = Manifest {
        model_name: "rt-model".into(),
        architecture: "rt-arch".into(),
        chunks: vec![
            ManifestChunk {
                fourcc: FourCc::MMSG,
                toc_index: 0,
                shard_id: None,
            },
            ManifestChunk {
                fourcc: FourCc::TIDX,
                toc_index: 1,
                shard_id: None,
            },
        ],
        shards: vec![],
    };
    let p = dir.join("index.aero");
    write_chunks(
        &p,
        [1; 16],
        &[
            ChunkSpec::standard(FourCc::MMSG, "manifest", mmsg.encode()),
            ChunkSpec::standard(FourCc::TIDX, "tensors", encode_tidx(tensors.iter())),
        ],
    )
    .unwrap();
    fix_manifest_entry(dir, "/global_tidx", &p);
}

fn fix_manifest_entry(dir: &Path, field: &str, file: &Path) {
    let (sha, size) = hash_file(file).unwrap();
    let mp = dir.join("model.aeroset.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    let e = m.pointer_mut(field).unwrap();
    e["sha256"] = json!(hex::encode(sha));
    e["size_bytes"] = json!(size);
    std::fs::write(&mp, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

fn fresh(tmp: &Path, tensor_hash: bool) -> PathBuf {
    let out = tmp.join("set");
    write(&out, &opts(Layout::Aligned, tensor_hash)).unwrap();
    out
}

#[test]
fn global_and_part_entries_must_agree() {
    type Edit = Box<dyn Fn(&mut TensorInfo)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("dtype", Box::new(|t| t.dtype = DType::I32)),
        ("shape", Box::new(|t| t.shape = vec![1024])),
        ("data_len", Box::new(|t| t.data_len = 512)),
        ("hash_b3", Box::new(|t| t.hash_b3 = Some([9; 32]))),
    ];
    for (what, edit) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fresh(tmp.path(), true);
        rewrite_index(&dir, |ts| edit(&mut ts[0]));
        let set = AeroSet::open(&dir).unwrap();
        let e = set.tensor("a.embed").unwrap_err().to_string();
        assert!(
            e.contains(what) && e.contains("part-000.aero"),
            "{what}: {e}"
        );
        let r = validate_set(&set, Mode::Quick, &|_| {});
        assert!(!r.valid);
        assert!(
            r.errors
                .iter()
                .any(|x| x.starts_with("part-000.aero: tensor 'a.embed'") && x.contains(what)),
            "{what}: {:?}",
            r.errors
        );
        assert!(set.tensor("b.norm").is_ok(), "other tensors still read");
    }

    // A tensor the part does not have.
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path(), false);
    rewrite_index(&dir, |ts| ts[0].name = "ghost".into());
    let set = AeroSet::open(&dir).unwrap();
    assert!(
        set.tensor("ghost")
            .unwrap_err()
            .to_string()
            .contains("has no tensor of this name")
    );
    let r = validate_set(&set, Mode::Quick, &|_| {});
    assert!(
        r.errors.iter().any(|x| x.contains("has no tensor 'ghost'")),
        "{:?}",
        r.errors
    );
    assert!(
        r.warnings
            .iter()
            .any(|x| x.contains("not in the global TIDX")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_hash_recorded_only_in_the_index_is_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path(), false);
    let data = model()[3].1.clone();
    let h = *aero_io::verify::hash(&data).as_bytes();
    rewrite_index(&dir, |ts| ts[3].hash_b3 = Some(h));
    let set = AeroSet::open(&dir).unwrap();
    assert_eq!(set.tensor("d.bytes").unwrap().bytes(), data.as_slice());
    assert_eq!(set.expected_hash("d.bytes").unwrap(), Some(h));
    assert!(validate_set(&set, Mode::Full, &|_| {}).valid);
    drop(set);

    // Damage the tensor's bytes in its part and re-pin the part's sha256,
    // so only the index's hash_b3 can notice.
    let set = AeroSet::open(&dir).unwrap();
    let (loc, f, entry) = set.resolve_tensor("d.bytes").unwrap();
    let (off, _) = f.tensor_range(entry).unwrap();
    let part = loc.part;
    let path = dir.join(&set.manifest().parts[part].file.path);
    drop(set);
    let mut b = std::fs::read(&path).unwrap();
    b[off as usize + 10] ^= 0xff;
    std::fs::write(&path, b).unwrap();
    fix_manifest_entry(&dir, &format!("/parts/{part}"), &path);
    let set = AeroSet::open(&dir).unwrap();
    let e = set.tensor("d.bytes").unwrap_err().to_string();
    assert!(e.contains("global TIDX hash_b3"), "{e}");
    let r = validate_set(&set, Mode::Full, &|_| {});
    assert!(
        r.errors
            .iter()
            .any(|x| x.contains("tensor 'd.bytes'") && x.contains("hash_b3")),
        "{:?}",
        r.errors
    );
}
