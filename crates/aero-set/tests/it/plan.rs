//! `aero_set::plan`: the plan read from an existing set (the reference's
//! `aeroset-local`, whose parts number their shards locally), and new
//! revisions written on it.

use std::path::{Path, PathBuf};

use aero_io::{Mode, Verdict};
use aero_set::writer::{SetTensor, SetWriteOptions, write_set};
use aero_set::{AeroSet, SetError, SetPlan, validate_set};

use aero_test_support::golden;

/// The UUID field of an AERO header (bytes 52..68), read from the file.
fn header_uuid(path: &Path) -> [u8; 16] {
    std::fs::read(path).unwrap()[52..68].try_into().unwrap()
}

/// Every tensor of `set` with its verified bytes, in global index order.
fn tensors_of(set: &AeroSet) -> Vec<(SetTensor, Vec<u8>)> {
    set.index()
        .unwrap()
        .tensors()
        .iter()
        .map(|t| {
            assert_eq!(t.quant_id, None, "{}", t.name);
            (
                SetTensor {
                    name: t.name.clone(),
                    dtype: t.dtype,
                    shape: t.shape.clone(),
                    data_len: t.data_len,
                    extras: t.extras.clone(),
                },
                set.tensor(&t.name).unwrap().bytes().to_vec(),
            )
        })
        .collect()
}

fn write(out: &Path, model: &[(SetTensor, Vec<u8>)], like: Option<SetPlan>) -> Vec<String> {
    let metas: Vec<SetTensor> = model.iter().map(|(t, _)| t.clone()).collect();
    let opts = SetWriteOptions {
        like,
        replace: true,
        ..Default::default()
    };
    let s = write_set(out, &metas, &opts, &mut |i| {
        Ok(Box::new(std::io::Cursor::new(model[i].1.clone())))
    })
    .unwrap();
    s.identical_parts
}

fn part_of(set: &AeroSet, name: &str) -> String {
    let l = set.locate(name).unwrap();
    set.manifest().parts[l.part].file.path.clone()
}

#[test]
fn the_plan_of_the_reference_set() {
    let dir = golden("aeroset-local");
    let set = AeroSet::open(&dir).unwrap();
    let plan = SetPlan::of_set(&set).unwrap();
    assert_eq!(plan.index_uuid, header_uuid(&dir.join("index.aero")));
    let m = set.manifest();
    assert_eq!(plan.parts.len(), m.parts.len());
    for (p, e) in plan.parts.iter().zip(&m.parts) {
        assert_eq!(p.path, e.file.path);
        assert_eq!(p.shards, e.shards);
        assert_eq!(p.sha256, e.file.sha256);
        assert_eq!(p.uuid, header_uuid(&dir.join(&p.path)));
        // Its tensors: those the global index places in it.
        let mut want: Vec<String> = set
            .index()
            .unwrap()
            .tensors()
            .iter()
            .filter(|t| e.shards.contains(&t.shard_id))
            .map(|t| t.name.clone())
            .collect();
        let mut got = p.tensors.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{}", p.path);
    }
}

#[test]
fn a_revision_on_the_reference_plan_keeps_parts_and_becomes_stable() {
    let golden_set = AeroSet::open(golden("aeroset-local")).unwrap();
    let model = tensors_of(&golden_set);
    let d = tempfile::tempdir().unwrap();

    // On the reference's plan: same part names and tensor placement, UUIDs
    // kept; the parts are rewritten once (global shard ids).
    let v1 = d.path().join("v1");
    write(&v1, &model, Some(SetPlan::of_set(&golden_set).unwrap()));
    let set1 = AeroSet::open(&v1).unwrap();
    assert_eq!(
        validate_set(&set1, Mode::Full, &|_| {}).verdict,
        Verdict::Valid
    );
    for (t, b) in &model {
        assert_eq!(part_of(&set1, &t.name), part_of(&golden_set, &t.name));
        assert_eq!(set1.tensor(&t.name).unwrap().bytes(), &b[..], "{}", t.name);
    }
    for p in &set1.manifest().parts {
        assert_eq!(
            header_uuid(&v1.join(&p.file.path)),
            header_uuid(&golden("aeroset-local").join(&p.file.path))
        );
    }

    // From then on stable: the same tensors on v1's plan are v1, byte for
    // byte, including the index (same UUID, same global index).
    let v2 = d.path().join("v2");
    let identical = write(&v2, &model, Some(SetPlan::of_set(&set1).unwrap()));
    let names: Vec<String> = set1
        .manifest()
        .parts
        .iter()
        .map(|p| p.file.path.clone())
        .collect();
    assert_eq!(identical, names);
    for f in names.iter().chain([&"index.aero".to_string()]) {
        assert_eq!(
            std::fs::read(v1.join(f)).unwrap(),
            std::fs::read(v2.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn a_plan_with_a_fixed_uuid_or_parts_outside_the_directory_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let golden_set = AeroSet::open(golden("aeroset-local")).unwrap();
    let model = tensors_of(&golden_set);
    let metas: Vec<SetTensor> = model.iter().map(|(t, _)| t.clone()).collect();
    let mut opts = SetWriteOptions {
        like: Some(SetPlan::of_set(&golden_set).unwrap()),
        ..Default::default()
    };
    opts.file.uuid = Some([7; 16]);
    let out = d.path().join("x");
    let e = write_set(&out, &metas, &opts, &mut |_| unreachable!()).unwrap_err();
    assert!(matches!(e, SetError::Plan { .. }), "{e}");
    assert!(!out.exists());

    // A set whose part lives in a subdirectory: its name cannot be kept.
    let sub: PathBuf = d.path().join("sub");
    std::fs::create_dir_all(sub.join("p")).unwrap();
    let src = golden("aeroset-local");
    for f in [
        "index.aero",
        "part-000.aero",
        "part-001.aero",
        "part-002.aero",
    ] {
        std::fs::copy(src.join(f), sub.join(f)).unwrap();
    }
    std::fs::rename(sub.join("part-001.aero"), sub.join("p/part-001.aero")).unwrap();
    let m = std::fs::read_to_string(src.join("model.aeroset.json"))
        .unwrap()
        .replace("\"part-001.aero\"", "\"p/part-001.aero\"");
    std::fs::write(sub.join("model.aeroset.json"), m).unwrap();
    let e = SetPlan::of_set(&AeroSet::open(&sub).unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("parts[1].path 'p/part-001.aero'"),
        "{e}"
    );
}
