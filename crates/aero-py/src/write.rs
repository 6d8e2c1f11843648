//! `save_file` and `convert`: the project's writer and converters, called
//! with the GIL released.

use std::io::Read;
use std::path::Path;

use aero_format::DType;
use aero_io::write::{Layout, TensorBytes, TensorSpec, WriteOptions, WriteSummary};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{Failure, IntoPyResult, Res};

/// Writer options from Python keywords.
pub struct Options {
    pub model_name: Option<String>,
    pub architecture: Option<String>,
    pub extra_meta_json: Option<String>,
    pub uuid: Option<Vec<u8>>,
    pub layout: String,
    pub max_shard_bytes: Option<u64>,
    pub tensor_hash: Option<bool>,
    pub page_hashes: Option<u64>,
    pub control_integrity: bool,
}

impl Options {
    pub fn to_write_options(&self) -> PyResult<WriteOptions> {
        let mut o = match self.layout.as_str() {
            "aligned" => WriteOptions::default(),
            "reference" => WriteOptions::reference(),
            other => {
                return Err(PyValueError::new_err(format!(
                    "layout must be 'aligned' or 'reference', not {other:?}"
                )));
            }
        };
        debug_assert!(matches!(o.layout, Layout::Aligned | Layout::Reference));
        if let Some(n) = &self.model_name {
            o.model_name = n.clone();
        }
        if let Some(a) = &self.architecture {
            o.architecture = a.clone();
        }
        if let Some(j) = &self.extra_meta_json {
            let v: serde_json::Value =
                serde_json::from_str(j).map_err(|e| PyValueError::new_err(e.to_string()))?;
            if let serde_json::Value::Object(m) = v {
                o.extra_meta = m;
            }
        }
        if let Some(u) = &self.uuid {
            let u: [u8; 16] = u
                .as_slice()
                .try_into()
                .map_err(|_| PyValueError::new_err("uuid must be 16 bytes"))?;
            o.uuid = Some(u);
        }
        if let Some(m) = self.max_shard_bytes {
            o.max_shard_bytes = m;
        }
        if let Some(t) = self.tensor_hash {
            o.tensor_hash = t;
        }
        if let Some(p) = self.page_hashes {
            o.page_hashes = (p > 0).then_some(p);
        }
        o.control_integrity = self.control_integrity;
        Ok(o)
    }
}

/// Reads a numpy array's bytes for the writer's reading thread: the GIL is
/// taken only to copy them out (`tobytes()` once, then one piece per call),
/// and the copy is dropped as soon as the tensor is written.
struct ArrayReader {
    array: Py<PyAny>,
    bytes: Option<Py<PyBytes>>,
    pos: usize,
    len: usize,
}

impl Read for ArrayReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        Python::attach(|py| -> PyResult<usize> {
            if self.bytes.is_none() {
                let b = self.array.bind(py).call_method0("tobytes")?;
                let b = b.cast_into::<PyBytes>()?;
                if b.as_bytes().len() != self.len {
                    return Err(PyValueError::new_err(format!(
                        "array gave {} bytes, expected {}",
                        b.as_bytes().len(),
                        self.len
                    )));
                }
                self.bytes = Some(b.unbind());
            }
            let n = {
                let all = self
                    .bytes
                    .as_ref()
                    .map(|b| b.bind(py).as_bytes())
                    .unwrap_or_default();
                let src = all.get(self.pos..).unwrap_or_default();
                let n = src.len().min(buf.len());
                buf[..n].copy_from_slice(&src[..n]);
                n
            };
            self.pos += n;
            if self.pos >= self.len {
                self.bytes = None;
            }
            Ok(n)
        })
        .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// One tensor from Python: name, dtype code, shape, contiguous
/// little-endian array (or bytes-like object with `tobytes`), byte length.
pub type PyTensor = (String, u16, Vec<u64>, Py<PyAny>, u64);

/// Writes `tensors` to `path` with the streaming writer (atomic, verified
/// hashes as configured).
pub fn save(
    py: Python<'_>,
    path: &str,
    tensors: Vec<PyTensor>,
    opts: &Options,
) -> PyResult<WriteSummary> {
    let wopts = opts.to_write_options()?;
    let specs: Vec<TensorSpec<'static>> = tensors
        .into_iter()
        .map(|(name, code, shape, array, len)| TensorSpec {
            name,
            dtype: DType::from_code(code),
            shape,
            data_len: len,
            extras: Vec::new(),
            bytes: TensorBytes::Reader(Box::new(ArrayReader {
                array,
                bytes: None,
                pos: 0,
                len: usize::try_from(len).unwrap_or(usize::MAX),
            })),
        })
        .collect();
    py.detach(|| -> Res<WriteSummary> { Ok(aero_io::write::write_model(path, specs, &wopts)?) })
        .py(py)
}

/// What `convert` wrote.
pub struct Converted {
    pub kind: &'static str,
    pub output: String,
    pub file_size: u64,
    pub tensors: usize,
    pub shards: usize,
    /// With `like`: the parts that came out byte-identical to the old set's.
    pub identical_parts: Option<Vec<String>>,
}

/// The plan of the set `like` names (path or URL) for a new revision
/// (`aero_set::plan`): manifest, index and part headers, no weights.
fn plan_of(like: &str) -> Res<aero_set::SetPlan> {
    let remote = crate::handle::RemoteArgs {
        cache: true,
        ..Default::default()
    };
    match crate::handle::Backing::open(like, "set", &remote)? {
        crate::handle::Backing::Set(s) => Ok(aero_set::SetPlan::of_set(&s)?),
        crate::handle::Backing::File(_) => Err(Failure::aero(
            "set-plan",
            format!("{like}: like= names a set, not an AERO file"),
        )),
    }
}

/// Converts by content: safetensors or GGUF into AERO, a sharded
/// safetensors checkpoint into an AEROSET, an AERO file into safetensors
/// or GGUF (by the output's extension) or into a repacked AERO file. With
/// `like`, an AEROSET output is a new revision of that set
/// (`SetWriteOptions::like`); other outputs refuse it.
pub fn convert(src: &str, dst: &str, opts: &WriteOptions, like: Option<&str>) -> Res<Converted> {
    use aero_convert::{InputKind, gguf_convert, safetensors};
    let (input, output) = (Path::new(src), Path::new(dst));
    aero_io::output::refuse_same_file(output, input)?;
    let done = |kind, s: WriteSummary| Converted {
        kind,
        output: dst.to_string(),
        file_size: s.file_size,
        tensors: s.tensors.len(),
        shards: s.shards,
        identical_parts: None,
    };
    let ext = output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let kind = aero_convert::detect(input)?;
    let to_set = match kind {
        InputKind::ShardedSafeTensors => true,
        InputKind::HfFolder => {
            ext.as_deref() != Some("aero") && aero_convert::hf::Folder::open(input)?.is_sharded()
        }
        _ => false,
    };
    let like = match like {
        Some(_) if !to_set => {
            return Err(Failure::Py(PyValueError::new_err(format!(
                "like= applies when the output is an AEROSET (a sharded checkpoint or model folder); {src} converts to one file"
            ))));
        }
        Some(l) => Some(plan_of(l)?),
        None => None,
    };
    let following = like.is_some();
    Ok(match kind {
        InputKind::SafeTensors => done("safetensors", safetensors::import(input, output, opts)?),
        InputKind::Gguf => done("gguf", gguf_convert::import(input, output, opts)?),
        InputKind::Aero if ext.as_deref() == Some("safetensors") => {
            let n = safetensors::export(input, output)?;
            exported("aero", dst, n, input)?
        }
        InputKind::Aero if ext.as_deref() == Some("gguf") => {
            let n = gguf_convert::export(input, output)?;
            exported("aero", dst, n, input)?
        }
        InputKind::Aero => {
            let f = aero_io::AeroFile::open(input)?;
            let r = aero_io::repack(
                &f,
                output,
                &aero_io::RepackOptions {
                    write: opts.clone(),
                    force: false,
                    progress: &|_| {},
                },
            )?;
            done("aero", r.summary)
        }
        InputKind::ShardedSafeTensors => {
            let set_opts = aero_set::writer::SetWriteOptions {
                file: opts.clone(),
                // A new revision usually replaces the set it follows.
                replace: like.is_some(),
                like,
                ..Default::default()
            };
            let s = aero_convert::sharded::import(input, output, &set_opts)?;
            Converted {
                kind: "sharded-safetensors",
                output: s.dir.display().to_string(),
                file_size: s.total_size,
                tensors: s.tensors.len(),
                shards: s.shards,
                identical_parts: following.then(|| s.identical_parts.clone()),
            }
        }
        InputKind::HfFolder => {
            // A Hugging Face model folder: one .aero file carrying its other
            // files, or (sharded, output not named .aero) an AEROSET.
            let folder = aero_convert::hf::Folder::open(input)?;
            if folder.is_sharded() && ext.as_deref() != Some("aero") {
                let set_opts = aero_set::writer::SetWriteOptions {
                    file: opts.clone(),
                    replace: true,
                    like,
                    ..Default::default()
                };
                let s = folder.write_set(output, &set_opts, &|_| {})?;
                Converted {
                    kind: "hf-folder",
                    output: s.dir.display().to_string(),
                    file_size: s.total_size,
                    tensors: s.tensors.len(),
                    shards: s.shards,
                    identical_parts: following.then(|| s.identical_parts.clone()),
                }
            } else {
                done("hf-folder", folder.write_file(output, opts, &|_| {})?)
            }
        }
        InputKind::AeroSet => {
            return Err(Failure::aero(
                "unsupported",
                format!("{src}: is an AEROSET; nothing to convert"),
            ));
        }
    })
}

fn exported(kind: &'static str, dst: &str, n: u64, input: &Path) -> Res<Converted> {
    let f = aero_io::AeroFile::open(input)?;
    let tensors = f.index()?.len();
    Ok(Converted {
        kind,
        output: dst.to_string(),
        file_size: n,
        tensors,
        shards: 0,
        identical_parts: None,
    })
}
