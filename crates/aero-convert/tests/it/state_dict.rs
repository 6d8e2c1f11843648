//! `aero_convert::state_dict` against a tiny llama GGUF written with gguf-py
//! the way llama.cpp's converter writes one (Q/K rows permuted), converted
//! to AERO by our importer: the Hugging Face names and values the state
//! dict must hand out come from `gen_llama_gguf.py` (gguf-py and numpy).

use std::path::{Path, PathBuf};
use std::process::Command;

use aero_convert::state_dict::{FloatType, StateDict, StateDictOptions};
use aero_io::AeroFile;
use aero_io::write::{TensorBytes, TensorSpec, WriteOptions, write_model};
use serde_json::{Value, json};

fn fixture(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gen_llama_gguf.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .output()
        .expect("python3 (pip install -r tests/requirements.txt)");
    assert!(
        out.status.success(),
        "gen_llama_gguf.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let aero = dir.join("llama.aero");
    aero_convert::gguf_convert::import(&dir.join("llama.gguf"), &aero, &WriteOptions::default())
        .unwrap();
    aero
}

#[test]
fn llama_gguf_as_a_hugging_face_state_dict() {
    let tmp = tempfile::tempdir().unwrap();
    let aero = fixture(tmp.path());
    let expected: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(tmp.path().join("expected.json")).unwrap()).unwrap();
    let f = AeroFile::open(&aero).unwrap();
    let sd = StateDict::plan(
        &f,
        &StateDictOptions {
            gguf_name_mapping: true,
        },
    )
    .unwrap();
    assert!(!sd.reference_gguf_order());
    let mut names: Vec<&str> = sd.entries().iter().map(|e| e.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        expected.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (i, e) in sd.entries().iter().enumerate() {
        let want = &expected[&e.name];
        let shape: Vec<u64> = serde_json::from_value(want["shape"].clone()).unwrap();
        assert_eq!(e.shape, shape, "{}", e.name);
        let ft = if want["dtype"] == "f16" {
            FloatType::F16
        } else {
            FloatType::F32
        };
        assert_eq!(e.dtype, ft, "{}", e.name);
        let heads = match e.source.as_str() {
            "blk.0.attn_q.weight" => Some(4),
            "blk.0.attn_k.weight" => Some(2),
            _ => None,
        };
        assert_eq!(e.unpermute_heads(), heads, "{}", e.name);
        let data = sd.load(&f, i).unwrap();
        let bytes = std::fs::read(tmp.path().join(want["file"].as_str().unwrap())).unwrap();
        assert_eq!(data.bytes().len() as u64, e.byte_len(), "{}", e.name);
        assert!(
            data.bytes() == bytes.as_slice(),
            "{} ({}): values differ from gguf-py's",
            e.name,
            e.source
        );
    }
    // Without the mapping, names are the file's and Q keeps GGUF's row order.
    let plain = StateDict::plan(&f, &StateDictOptions::default()).unwrap();
    let q = plain
        .entries()
        .iter()
        .position(|e| e.name == "blk.0.attn_q.weight")
        .unwrap();
    assert_eq!(plain.entries()[q].unpermute_heads(), None);
    let permuted = plain.load(&f, q).unwrap();
    let hf = std::fs::read(
        tmp.path()
            .join("model.layers.0.self_attn.q_proj.weight.bin"),
    )
    .unwrap();
    assert_eq!(permuted.bytes().len(), hf.len());
    assert_ne!(
        permuted.bytes(),
        hf.as_slice(),
        "the GGUF rows are permuted"
    );
}

/// A file as the reference GGUF converter writes it: MJSN source_format
/// gguf without our `gguf` key, shapes in GGUF order, sizes from offset
/// gaps (alignment padding included).
#[test]
fn reference_converter_files_are_recognised_and_reversed() {
    let tmp = tempfile::tempdir().unwrap();
    let aero = fixture(tmp.path());
    let f = AeroFile::open(&aero).unwrap();
    let k = f.tensor("blk.0.attn_k.weight").unwrap();
    let mut packed = k.bytes().to_vec();
    let info = k.info().clone();
    assert_eq!(info.shape, vec![16, 32]);
    // The reference's lengths are gaps between 32-aligned offsets: the
    // exact size rounded up to a multiple of 32 (spec §16.5).
    packed.resize(packed.len().div_ceil(32) * 32, 0);
    let reference = tmp.path().join("reference.aero");
    let mut opts = WriteOptions::reference();
    opts.extra_meta
        .insert("source_format".into(), json!("gguf"));
    let spec = TensorSpec {
        name: info.name.clone(),
        dtype: info.dtype,
        shape: vec![32, 16], // GGUF order
        data_len: packed.len() as u64,
        extras: info.extras.clone(),
        bytes: TensorBytes::Reader(Box::new(std::io::Cursor::new(packed.clone()))),
    };
    write_model(&reference, vec![spec], &opts).unwrap();
    let r = AeroFile::open(&reference).unwrap();
    let plain = StateDictOptions::default();
    let sd = StateDict::plan(&r, &plain).unwrap();
    assert!(sd.reference_gguf_order());
    assert_eq!(sd.entries()[0].shape, vec![16, 32]);
    let ours = StateDict::plan(&f, &plain).unwrap();
    let i = ours
        .entries()
        .iter()
        .position(|e| e.name == "blk.0.attn_k.weight")
        .unwrap();
    assert_eq!(
        sd.load(&r, 0).unwrap().bytes(),
        ours.load(&f, i).unwrap().bytes()
    );
    // Any other length is refused: 16 bytes more (no gap between 32-aligned
    // offsets is that), 32 more (more than the alignment explains).
    for extra in [16usize, 32] {
        let bad = tmp.path().join(format!("bad{extra}.aero"));
        let mut longer = packed.clone();
        longer.resize(packed.len() + extra, 0);
        let spec = TensorSpec {
            name: info.name.clone(),
            dtype: info.dtype,
            shape: vec![32, 16],
            data_len: longer.len() as u64,
            extras: info.extras.clone(),
            bytes: TensorBytes::Reader(Box::new(std::io::Cursor::new(longer))),
        };
        write_model(&bad, vec![spec], &opts).unwrap();
        let err = StateDict::plan(&AeroFile::open(&bad).unwrap(), &plain).unwrap_err();
        assert!(err.to_string().contains("data_len"), "{extra}: {err}");
    }
}

/// Every dtype of the golden mixed file becomes floats with the values a
/// plain cast gives; a damaged tensor is an error, not data.
#[test]
fn golden_dtypes_convert_and_damage_is_refused() {
    let golden = aero_test_support::golden("mixed-single-shard.aero");
    let f = AeroFile::open(&golden).unwrap();
    let sd = StateDict::plan(&f, &StateDictOptions::default()).unwrap();
    for (i, e) in sd.entries().iter().enumerate() {
        let d = sd.load(&f, i).unwrap();
        let raw = f.tensor(&e.source).unwrap();
        let info = raw.info();
        let got: Vec<f32> = match e.dtype {
            FloatType::F32 => bytemuck_f32(d.bytes()),
            FloatType::F16 => {
                assert_eq!(d.bytes(), raw.bytes());
                continue;
            }
        };
        let b = raw.bytes();
        let want: Vec<f32> = match info.dtype {
            aero_io::DType::F32 => bytemuck_f32(b),
            aero_io::DType::BF16 => b
                .chunks(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect(),
            aero_io::DType::F64 => b
                .chunks(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            aero_io::DType::I8 => b.iter().map(|&x| x as i8 as f32).collect(),
            aero_io::DType::U8 => b.iter().map(|&x| x as f32).collect(),
            aero_io::DType::Bool => b.iter().map(|&x| (x != 0) as u8 as f32).collect(),
            aero_io::DType::I64 => b
                .chunks(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            other => panic!("unexpected dtype {other} in the golden file"),
        };
        assert_eq!(got, want, "{}", e.name);
    }
    let bad = aero_test_support::golden("tensor-hash-defect.aero");
    let f = AeroFile::open(&bad).unwrap();
    let sd = StateDict::plan(&f, &StateDictOptions::default()).unwrap();
    let i = sd
        .entries()
        .iter()
        .position(|e| e.name == "embed.weight")
        .unwrap();
    let err = sd.load(&f, i).unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
}

fn bytemuck_f32(b: &[u8]) -> Vec<f32> {
    b.chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// `extract --as` streams values in pieces: whatever the piece size (one
/// block, a few blocks, the default), every tensor of every stored type
/// (F32, F16, BF16, Q8_0) comes out as the whole-tensor encoding does, in
/// each output format.
#[test]
fn streamed_values_equal_whole_tensor_values() {
    use aero_convert::floats::{FloatFormat, tensor_bytes, write_tensor, write_tensor_in_pieces};
    let tmp = tempfile::tempdir().unwrap();
    let aero = fixture(tmp.path());
    let f = AeroFile::open(&aero).unwrap();
    let names: Vec<String> = f
        .index()
        .unwrap()
        .tensors()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(names.len() >= 4);
    let path = tmp.path().join("out.bin");
    for name in &names {
        for fmt in [FloatFormat::F32, FloatFormat::F16, FloatFormat::BF16] {
            let whole = tensor_bytes(&f, name, fmt).unwrap();
            for piece in [1, 70, 1000, u64::MAX] {
                let mut out = Vec::new();
                let seen = std::cell::Cell::new(0u64);
                let n = write_tensor_in_pieces(&f, name, fmt, piece, &mut out, &path, &|k| {
                    seen.set(seen.get() + k)
                })
                .unwrap();
                assert_eq!(n, whole.len() as u64, "{name} {fmt:?} piece {piece}");
                assert_eq!(seen.get(), n, "progress counts every byte");
                assert!(out == whole, "{name} {fmt:?} piece {piece}: values differ");
            }
            let mut out = Vec::new();
            write_tensor(&f, name, fmt, &mut out, &path, &|_| {}).unwrap();
            assert!(out == whole);
        }
        // The f32 pieces `diff --numeric` pulls concatenate to the same values.
        let whole = tensor_bytes(&f, name, FloatFormat::F32).unwrap();
        for piece in [1, 130, u64::MAX] {
            let mut p = aero_convert::floats::F32Pieces::new(&f, name, piece).unwrap();
            let (mut buf, mut all) = (Vec::new(), Vec::new());
            while p.next_into(&mut buf).unwrap() {
                all.extend(buf.iter().flat_map(|v| v.to_le_bytes()));
            }
            assert_eq!(all.len() as u64, p.elements * 4);
            assert!(all == whole, "{name}: pieces of {piece}");
        }
    }
}
