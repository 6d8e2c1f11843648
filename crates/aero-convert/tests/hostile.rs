//! Regression tests for the converter defects of issue 11, on the hostile
//! files that reproduced them (built by `aero-io/tests/hostile_files`).

#[path = "../../aero-io/tests/hostile_files/mod.rs"]
mod hostile_files;

use std::path::Path;
use std::sync::Mutex;

use aero_convert::{gguf, gguf_convert, safetensors};
use aero_io::{AeroFile, Mode, Verdict};
use aero_test_support::alloc::{Counting, peak_of};
use hostile_files::*;

#[global_allocator]
static A: Counting = Counting;
static SERIAL: Mutex<()> = Mutex::new(());

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn valid(p: &Path) {
    let f = AeroFile::open(p).unwrap();
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_ne!(r.verdict, Verdict::Invalid, "{:?}", r.errors);
}

/// `export-gguf` divided by zero on a kept `gguf.alignment` of 0, and
/// wrote 4 GiB for 2^31, on files `validate --full` calls valid.
#[test]
fn export_gguf_refuses_a_bad_kept_alignment() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    for a in [0u64, 3, 1 << 21, 1 << 31] {
        let input = write(dir.path(), "a.aero", &gguf_alignment_aero(a));
        valid(&input);
        let out = dir.path().join("a.gguf");
        let e = gguf_convert::export_with(
            &input,
            &out,
            &aero_io::CopyOptions {
                durable: false,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("alignment"), "{a}: {e}");
        assert!(!out.exists());
    }
    // The default alignment exports.
    let input = write(dir.path(), "ok.aero", &gguf_alignment_aero(32));
    let out = dir.path().join("ok.gguf");
    gguf_convert::export_with(
        &input,
        &out,
        &aero_io::CopyOptions {
            durable: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        gguf::parse(&std::fs::read(&out).unwrap())
            .unwrap()
            .alignment,
        32
    );
}

/// A GGUF whose `general.alignment` is 0 or above 1 MiB is rejected where
/// it is read.
#[test]
fn gguf_parser_caps_the_alignment() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (a, ok) in [
        (0u32, false),
        (32, true),
        (1 << 20, true),
        (1 << 21, false),
        (1 << 31, false),
    ] {
        let mut g = Vec::new();
        g.extend_from_slice(b"GGUF");
        g.extend_from_slice(&3u32.to_le_bytes());
        g.extend_from_slice(&0u64.to_le_bytes());
        g.extend_from_slice(&1u64.to_le_bytes());
        g.extend_from_slice(&17u64.to_le_bytes());
        g.extend_from_slice(b"general.alignment");
        g.extend_from_slice(&4u32.to_le_bytes());
        g.extend_from_slice(&a.to_le_bytes());
        assert_eq!(gguf::parse(&g).is_ok(), ok, "alignment {a}");
    }
}

/// `export-safetensors` wrote a file no reader accepts when a packed
/// tensor's length disagreed with dtype × shape.
#[test]
fn export_safetensors_checks_every_length_first() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "p.aero", &packed_len_mismatch_aero());
    valid(&input);
    let out = dir.path().join("p.safetensors");
    let e = safetensors::export_with(
        &input,
        &out,
        &aero_io::CopyOptions {
            durable: false,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("is 4 bytes, stored 3"), "{e}");
    assert!(!out.exists());
}

/// A 16 MiB GGUF holding one u8 array made `convert-gguf` peak at 2.9 GB
/// (32 bytes per parsed item, 72 per JSON value).
#[test]
fn convert_gguf_memory_is_a_small_multiple_of_the_input() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let g = gguf_u8_array(16 << 20);
    let input = write(dir.path(), "big.gguf", &g);
    drop(g);
    let out = dir.path().join("big.aero");
    let opts = aero_io::write::WriteOptions {
        durable: false,
        ..Default::default()
    };
    let (r, peak) = peak_of(|| gguf_convert::import(&input, &out, &opts));
    r.unwrap();
    eprintln!("convert-gguf of a 16 MiB u8 array: peak {peak} bytes allocated");
    assert!(
        peak < 12 * (16 << 20),
        "peak {peak} bytes for a 16 MiB GGUF"
    );
    // And the array comes back byte for byte.
    let back = dir.path().join("back.gguf");
    gguf_convert::export_with(
        &out,
        &back,
        &aero_io::CopyOptions {
            durable: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(&input).unwrap()
    );
}

/// Found by the `integrity` fuzz target: serde_json parsed some floats one
/// unit in the last place off (its fast path), so a GGUF f64/f32 key/value
/// kept in MJSN came back with other bits. `float_roundtrip` parses exactly.
#[test]
fn gguf_float_values_survive_the_mjsn_round_trip() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use gguf::{GgmlType, GgufHeader, GgufTensorInfo, GgufValue};
    let dir = tempfile::tempdir().unwrap();
    let values = [7.464259823342934e-32f64, 0.1, 1e300, -2.5e-300, 5e-324];
    let mut metadata: Vec<(String, GgufValue)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("f64.{i}"), GgufValue::F64(*v)))
        .collect();
    metadata.push(("f32".into(), GgufValue::F32(7.464_26e-32)));
    let h = GgufHeader {
        version: 3,
        metadata,
        tensors: vec![GgufTensorInfo {
            name: "w".into(),
            dims: vec![2],
            ggml_type: GgmlType::from_id(0).unwrap(),
            offset: 0,
            size: 8,
        }],
        alignment: 32,
        header_len: 0,
        data_offset: 0,
    };
    let mut g = Vec::new();
    gguf::write_header(&h, &mut g).unwrap();
    g.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    g.resize(g.len().div_ceil(32) * 32, 0);
    let input = write(dir.path(), "f.gguf", &g);
    let aero = dir.path().join("f.aero");
    let opts = aero_io::write::WriteOptions {
        durable: false,
        ..Default::default()
    };
    gguf_convert::import(&input, &aero, &opts).unwrap();
    let back = dir.path().join("back.gguf");
    gguf_convert::export_with(
        &aero,
        &back,
        &aero_io::CopyOptions {
            durable: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(std::fs::read(&back).unwrap() == g, "float bits changed");
}
