//! Seed corpora (`fuzz/corpus/<target>/seed-*`) and regression inputs
//! (`fuzz/regressions/<target>/`) for the fuzz targets, made by code from
//! the golden files (`../shared/golden`), the tiny example model and files
//! this module writes with the project's own writers. Every file is small
//! (< 64 KiB); the same code always writes the same bytes.
//!
//! The files are committed. This crate's test checks that they are exactly
//! what the code writes (a writer change that alters them fails it);
//! `cargo xtask fuzz-seeds` rewrites them (the same test with
//! `AERO_WRITE_SEEDS=1`). It lives beside the fuzz targets rather than in
//! `xtask`, so that xtask does not compile the product crates, and outside
//! the fuzz package, whose libFuzzer binaries a test target would link.

use std::path::{Path, PathBuf};

use aero_convert::gguf::{
    self, GgmlType, GgufArray, GgufHeader, GgufTensorInfo, GgufValue, GgufValueType,
};
use aero_io::write::{TensorSpec, WriteOptions, write_model};
use aero_io::{AeroFile, DType, FourCc};
use anyhow::{Context, Result};

#[path = "../../../crates/aero-io/tests/hostile_files/mod.rs"]
mod hostile;

const MAX_SEED: usize = 64 << 10;

struct Out<'a> {
    root: &'a Path,
    written: usize,
    /// Write the files; else only list those whose bytes differ.
    write: bool,
    stale: Vec<PathBuf>,
}

impl Out<'_> {
    fn put(&mut self, dir: &str, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
        if bytes.len() > MAX_SEED {
            return Ok(());
        }
        let d = self.root.join("fuzz").join(dir).join(target);
        let p = d.join(name);
        if std::fs::read(&p).ok().as_deref() != Some(bytes) {
            if self.write {
                std::fs::create_dir_all(&d)?;
                std::fs::write(&p, bytes).with_context(|| p.display().to_string())?;
            } else {
                self.stale.push(p);
            }
        }
        self.written += 1;
        Ok(())
    }
    fn seed(&mut self, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
        self.put("corpus", target, &format!("seed-{name}"), bytes)
    }
    fn regression(&mut self, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
        self.put("regressions", target, name, bytes)
    }
}

/// Writes every seed and regression input under `root/fuzz`.
pub fn write_all(root: &Path) -> Result<()> {
    let o = generate(root, true)?;
    eprintln!(
        "fuzz seeds: {} files under fuzz/corpus and fuzz/regressions",
        o.written
    );
    Ok(())
}

/// The seed and regression files under `root/fuzz` whose committed bytes
/// differ from what the code writes (missing ones included).
pub fn stale(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(generate(root, false)?.stale)
}

fn generate(root: &Path, write: bool) -> Result<Out<'_>> {
    let mut o = Out {
        root,
        written: 0,
        write,
        stale: Vec::new(),
    };
    let golden = root.join("../shared/golden");
    let mut aero_files: Vec<(String, Vec<u8>)> = Vec::new();
    for dir in [golden.clone(), golden.join("aeroset-local")] {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("golden files at {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let bytes = std::fs::read(&p)?;
            match p.extension().and_then(|e| e.to_str()) {
                Some("aero") => aero_files.push((name, bytes)),
                Some("safetensors") => {
                    o.seed("safetensors_header", &name, &bytes)?;
                    o.seed("safetensors_roundtrip", &name, &bytes)?;
                }
                Some("json") if name == "model.aeroset.json" => {
                    o.seed("set_manifest", &name, &bytes)?;
                    let mut v: serde_json::Value = serde_json::from_slice(&bytes)?;
                    v["format"]["version"] = serde_json::json!([0, 2]);
                    v["base_url"] = "https://example.invalid/sets/m".into();
                    v["cache"] = serde_json::json!({"enabled": true, "recommended": false});
                    o.seed("set_manifest", "v02.json", &serde_json::to_vec(&v)?)?;
                }
                _ => {}
            }
        }
    }
    let tiny = std::fs::read(root.join("examples/tiny/tiny-llama.safetensors"))?;
    o.seed("safetensors_roundtrip", "tiny-llama.safetensors", &tiny)?;
    o.seed("safetensors_header", "tiny-llama.safetensors", &tiny)?;
    let st = small_safetensors();
    o.seed("safetensors_header", "metadata-f8.safetensors", &st)?;
    o.seed("safetensors_roundtrip", "metadata-f8.safetensors", &st)?;
    aero_files.extend(written_files()?);
    for (name, bytes) in &aero_files {
        o.seed("aero_file", name, bytes)?;
        o.seed("control_plane", name, bytes)?;
        let f = AeroFile::from_source(name.as_str(), Box::new(bytes.clone()))?;
        if let Ok(t) = f.tidx_payload() {
            o.seed("tidx", &format!("{name}.tidx"), &t)?;
        }
        for c in f.chunks() {
            if matches!(c.fourcc, FourCc::IHSH | FourCc::PHSH | FourCc::MMSG)
                && let Ok(p) = f.payload(c)
            {
                o.seed("integrity", &format!("{name}.{}.{}", c.index, c.fourcc), &p)?;
            }
        }
    }
    for (i, g) in gguf_files()?.iter().enumerate() {
        o.seed("gguf", &format!("gen-{i}.gguf"), g)?;
    }
    regressions(&mut o)?;
    Ok(o)
}

/// The hostile files of issue 11, for the targets that reach each defect.
fn regressions(o: &mut Out<'_>) -> Result<()> {
    let key = hostile::nested_map_key_mmsg(60);
    o.regression("aero_file", "issue11-nested-map-key-mmsg.aero", &key)?;
    let f = AeroFile::from_source("k", Box::new(key.clone()))?;
    let mmsg = f.first(FourCc::MMSG).context("MMSG")?;
    o.regression(
        "integrity",
        "issue11-nested-map-key.msgpack",
        &f.payload(mmsg)?,
    )?;
    o.regression(
        "aero_file",
        "issue11-phsh-huge-count.aero",
        &hostile::phsh_huge_count(27),
    )?;
    o.regression(
        "aero_file",
        "issue11-mjsn-bomb.aero",
        &hostile::mjsn_bomb(256 << 20),
    )?;
    o.regression(
        "aero_file",
        "issue11-mmsg-nil-bomb.aero",
        &hostile::mmsg_nil_bomb(64 << 20),
    )?;
    o.regression(
        "aero_file",
        "issue11-ihsh-bomb.aero",
        &hostile::ihsh_bomb(64 << 20),
    )?;
    o.regression(
        "aero_file",
        "issue11-tidx-extras.aero",
        &hostile::tidx_extras_bomb(64, 5000),
    )?;
    o.regression(
        "tidx",
        "issue11-tidx-extras.msgpack",
        &hostile::tidx_many_extras(16, 1000),
    )?;
    o.regression(
        "aero_file",
        "issue11-gguf-alignment-0.aero",
        &hostile::gguf_alignment_aero(0),
    )?;
    o.regression(
        "aero_file",
        "issue11-gguf-alignment-2p31.aero",
        &hostile::gguf_alignment_aero(1 << 31),
    )?;
    o.regression(
        "aero_file",
        "issue11-packed-length.aero",
        &hostile::packed_len_mismatch_aero(),
    )?;
    o.regression(
        "gguf",
        "issue11-u8-array.gguf",
        &hostile::gguf_u8_array(60 << 10),
    )?;
    let mut phsh = Vec::new();
    hostile::mmap(&mut phsh, 1);
    hostile::mstr(&mut phsh, "digests");
    hostile::marr(&mut phsh, 3000);
    phsh.resize(phsh.len() + 6000, 0xc0);
    o.regression("integrity", "issue11-phsh-count.msgpack", &phsh)?;
    Ok(())
}

/// Files written by the streaming writer with every optional feature.
fn written_files() -> Result<Vec<(String, Vec<u8>)>> {
    let dir = std::env::temp_dir().join(format!("aero-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut out = Vec::new();
    for (i, (hash, control, pages)) in [(true, true, Some(1024)), (false, false, None)]
        .into_iter()
        .enumerate()
    {
        let specs = vec![
            spec("a.weight", DType::F32, vec![4, 8], 128, Vec::new()),
            spec("b.bias", DType::BF16, vec![8], 16, Vec::new()),
            spec("c.scalar", DType::I64, vec![], 8, Vec::new()),
            spec("d.q", DType::Packed, vec![32], 34, {
                let mut qp = Vec::new();
                aero_io::meta::json_to_msgpack(&serde_json::json!({"ggml_type": 8}), &mut qp);
                vec![("quant_id".into(), vec![0]), ("quant_params".into(), qp)]
            }),
        ];
        let opts = WriteOptions {
            uuid: Some([0x22; 16]),
            durable: false,
            tensor_hash: hash,
            control_integrity: control,
            page_hashes: pages,
            max_shard_bytes: if i == 0 { 150 } else { 1 << 20 },
            ..Default::default()
        };
        let p = dir.join(format!("w{i}.aero"));
        write_model(&p, specs, &opts)?;
        out.push((format!("written-{i}.aero"), std::fs::read(&p)?));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

fn spec(
    name: &str,
    dtype: DType,
    shape: Vec<u64>,
    len: u64,
    extras: Vec<(String, Vec<u8>)>,
) -> TensorSpec<'static> {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
    TensorSpec {
        name: name.into(),
        dtype,
        shape,
        data_len: len,
        extras,
        bytes: aero_io::write::TensorBytes::Reader(Box::new(std::io::Cursor::new(bytes))),
    }
}

/// A safetensors file with `__metadata__`, an F8 tensor and a U32 one.
fn small_safetensors() -> Vec<u8> {
    let header = serde_json::json!({
        "__metadata__": {"model_name": "seed", "architecture": "llama", "note": "x"},
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [16, 20]},
        "c": {"dtype": "U32", "shape": [1], "data_offsets": [20, 24]},
    });
    let mut h = serde_json::to_vec(&header).unwrap_or_default();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend((0..24u8).map(|i| i.wrapping_mul(3)));
    out
}

/// GGUF v3 and v2 files with every value type and a quantized tensor.
fn gguf_files() -> Result<Vec<Vec<u8>>> {
    let mut files = Vec::new();
    for (version, alignment) in [(3u32, 32u64), (2, 64)] {
        let mut metadata = vec![
            (
                "general.architecture".to_string(),
                GgufValue::String(b"llama".to_vec()),
            ),
            (
                "general.name".to_string(),
                GgufValue::String(b"seed".to_vec()),
            ),
            ("u8".into(), GgufValue::U8(7)),
            ("i16".into(), GgufValue::I16(-3)),
            ("f32".into(), GgufValue::F32(0.5)),
            ("b".into(), GgufValue::Bool(true)),
            ("u64".into(), GgufValue::U64(1 << 40)),
            ("f64".into(), GgufValue::F64(-1.25)),
            (
                "tokens".into(),
                GgufValue::Array(GgufArray::new(
                    GgufValueType::String,
                    vec![
                        GgufValue::String(b"a".to_vec()),
                        GgufValue::String(vec![0xff]),
                    ],
                )),
            ),
            (
                "scores".into(),
                GgufValue::Array(GgufArray::new(
                    GgufValueType::F32,
                    vec![GgufValue::F32(1.0), GgufValue::F32(-2.0)],
                )),
            ),
            (
                "nested".into(),
                GgufValue::Array(GgufArray::new(
                    GgufValueType::Array,
                    vec![GgufValue::Array(GgufArray::new(
                        GgufValueType::I32,
                        vec![GgufValue::I32(-1)],
                    ))],
                )),
            ),
        ];
        if alignment != gguf::DEFAULT_ALIGNMENT {
            metadata.push((gguf::ALIGNMENT_KEY.into(), GgufValue::U32(alignment as u32)));
        }
        let f32t = GgmlType::from_id(0).context("F32")?;
        let q8 = GgmlType::from_id(8).context("Q8_0")?;
        let tensors = vec![
            GgufTensorInfo {
                name: "w".into(),
                dims: vec![4, 2],
                ggml_type: f32t,
                offset: 0,
                size: 32,
            },
            GgufTensorInfo {
                name: "q".into(),
                dims: vec![32],
                ggml_type: q8,
                offset: alignment,
                size: 34,
            },
        ];
        let h = GgufHeader {
            version,
            metadata,
            tensors,
            alignment,
            header_len: 0,
            data_offset: 0,
        };
        let mut out = Vec::new();
        let start = gguf::write_header(&h, &mut out)?;
        assert_eq!(start as usize, out.len());
        out.extend((0..32u8).map(|i| i.wrapping_mul(5)));
        out.resize(out.len() + alignment as usize - 32, 0);
        out.extend((0..34u8).map(|i| i.wrapping_mul(11)));
        files.push(out);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The committed corpora are what this code writes: `cargo xtask
    /// fuzz-seeds` (this test with `AERO_WRITE_SEEDS=1`) rewrites them.
    #[test]
    fn committed_seeds_are_what_the_code_writes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        if std::env::var_os("AERO_WRITE_SEEDS").is_some() {
            super::write_all(&root).unwrap();
        }
        let stale = super::stale(&root).unwrap();
        assert!(
            stale.is_empty(),
            "fuzz seed files differ from what fuzz/seeds writes (run `cargo xtask fuzz-seeds` and commit them): {stale:?}"
        );
    }
}
