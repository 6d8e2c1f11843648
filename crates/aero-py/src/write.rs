//! `save_file` and `convert`: the project's writer and converters, called
//! with the GIL released.

use std::io::Read;
use std::path::Path;

use aero_io::write::{Layout, TensorBytes, TensorSpec, WriteOptions, WriteSummary};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{Failure, IntoPyResult, Res};

/// MJSN keys the writer fills in itself, refused as user metadata.
const RESERVED_META: [&str; 5] = [
    "model_name",
    "architecture",
    "quant_descriptors",
    aero_convert::safetensors::METADATA_KEY,
    aero_convert::sharded::INDEX_METADATA_KEY,
];

/// Writer options from Python keywords.
pub(crate) struct Options {
    pub model_name: Option<String>,
    pub architecture: Option<String>,
    pub extra_meta_json: Option<String>,
    pub uuid: Option<Vec<u8>>,
    pub layout: String,
    pub max_shard_bytes: Option<u64>,
    pub tensor_hash: Option<bool>,
    pub page_hashes: Option<u64>,
    pub control_integrity: bool,
    /// The safetensors `__metadata__` to keep (MJSN `safetensors_metadata`,
    /// as pairs in this order, which `export-safetensors` restores).
    pub st_metadata: Option<Vec<(String, String)>>,
    /// fsync before the rename (WriteOptions::durable).
    pub durable: bool,
}

impl Options {
    pub(crate) fn to_write_options(&self) -> PyResult<WriteOptions> {
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
                for k in m.keys() {
                    if RESERVED_META.contains(&k.as_str()) {
                        return Err(PyValueError::new_err(format!(
                            "metadata key {k:?} is reserved: the writer records it itself"
                        )));
                    }
                }
                o.extra_meta = m;
            }
        }
        if let Some(pairs) = &self.st_metadata {
            let pairs: Vec<serde_json::Value> = pairs
                .iter()
                .map(|(k, v)| serde_json::json!([k, v]))
                .collect();
            o.extra_meta.insert(
                aero_convert::safetensors::METADATA_KEY.into(),
                serde_json::Value::Array(pairs),
            );
        }
        o.durable = self.durable;
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

/// One tensor from Python: name, element type name (numpy's and torch's:
/// `float32`, `bfloat16`, `float8_e4m3fn`, …), shape, contiguous
/// little-endian array (or any object with `tobytes`), byte length.
pub(crate) type PyTensor = (String, String, Vec<u64>, Py<PyAny>, u64);

/// Writes `tensors` to `path` with the streaming writer (atomic, verified
/// hashes as configured). Element types map to AERO through `dtypes.rs`:
/// safetensors dtypes without an AERO code (float8, complex64) are stored
/// `packed` as the converter stores them, with MJSN `quant_descriptors`.
pub(crate) fn save(
    py: Python<'_>,
    path: &str,
    tensors: Vec<PyTensor>,
    opts: &Options,
) -> PyResult<WriteSummary> {
    let mut wopts = opts.to_write_options()?;
    let mut quant_names: Vec<String> = Vec::new();
    let mut specs: Vec<TensorSpec<'static>> = Vec::with_capacity(tensors.len());
    for (name, elem, shape, array, len) in tensors {
        let (dtype, extras) =
            crate::dtypes::stored_as(&elem, &mut quant_names).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "tensor {name:?}: element type {elem} has no AERO dtype (storable: {})",
                    crate::dtypes::storable().join(", ")
                ))
            })?;
        specs.push(TensorSpec {
            name,
            dtype,
            shape,
            data_len: len,
            extras,
            bytes: TensorBytes::Reader(Box::new(ArrayReader {
                array,
                bytes: None,
                pos: 0,
                len: usize::try_from(len).unwrap_or(usize::MAX),
            })),
        });
    }
    if !quant_names.is_empty() {
        wopts.extra_meta.insert(
            "quant_descriptors".into(),
            serde_json::Value::Array(aero_convert::safetensors::quant_descriptors(&quant_names)),
        );
    }
    py.detach(|| -> Res<WriteSummary> { Ok(aero_io::write::write_model(path, specs, &wopts)?) })
        .py(py)
}

/// What `convert` wrote.
pub(crate) struct Converted {
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

/// Converts by content, writing what the output's name asks for
/// ([`aero_convert::route::route`], the rule `aerotensor convert` follows):
/// safetensors or GGUF into AERO, a sharded safetensors checkpoint into an
/// AEROSET directory, an AERO file into safetensors or GGUF (`.safetensors`
/// / `.gguf`) or into a repacked AERO file; a directory output gets
/// `DIR/<input stem>.aero`. `aero_only` names the writer options the caller
/// set (they apply to AERO outputs only: an export with any is refused).
/// With `like`, an AEROSET output is a new revision of that set
/// (`SetWriteOptions::like`); other outputs refuse it.
pub(crate) fn convert(
    src: &str,
    dst: &str,
    opts: &WriteOptions,
    aero_only: &[&str],
    like: Option<&str>,
) -> Res<Converted> {
    use aero_convert::route::Conversion;
    use aero_convert::{gguf_convert, safetensors};
    let input = Path::new(src);
    let kind = aero_convert::detect(input)?;
    let route = aero_convert::route::route(input, kind, Path::new(dst))?;
    let output = route.output.as_path();
    let out_name = output.display().to_string();
    aero_io::output::refuse_same_file(output, input)?;
    let done = |kind, s: WriteSummary| Converted {
        kind,
        output: out_name.clone(),
        file_size: s.file_size,
        tensors: s.tensors.len(),
        shards: s.shards,
        identical_parts: None,
    };
    let exporting = matches!(
        route.conversion,
        Conversion::ExportSafeTensors | Conversion::ExportGguf
    );
    if exporting && !aero_only.is_empty() {
        return Err(Failure::Py(pyo3::exceptions::PyValueError::new_err(
            format!(
                "{out_name}: {} appl{} to AERO outputs; this writes {}",
                aero_only.join(", "),
                if aero_only.len() == 1 { "ies" } else { "y" },
                route
                    .conversion
                    .writes()
                    .map_or("an AEROSET", aero_convert::route::Format::name)
            ),
        )));
    }
    let like = match like {
        Some(_)
            if !matches!(
                route.conversion,
                Conversion::ShardedToSet | Conversion::FolderToSet
            ) =>
        {
            return Err(Failure::Py(pyo3::exceptions::PyValueError::new_err(
                format!(
                    "like= applies when the output is an AEROSET (a sharded checkpoint or model folder); {out_name} is written as one {} file",
                    route
                        .conversion
                        .writes()
                        .map_or("AERO", aero_convert::route::Format::name)
                ),
            )));
        }
        Some(l) => Some(plan_of(l)?),
        None => None,
    };
    let following = like.is_some();
    Ok(match route.conversion {
        Conversion::ImportSafeTensors => {
            done("safetensors", safetensors::import(input, output, opts)?)
        }
        Conversion::ImportGguf => done("gguf", gguf_convert::import(input, output, opts)?),
        Conversion::ExportSafeTensors => {
            let n = safetensors::export(input, output)?;
            exported("aero", &out_name, n, input)?
        }
        Conversion::ExportGguf => {
            let n = gguf_convert::export(input, output)?;
            exported("aero", &out_name, n, input)?
        }
        Conversion::Repack => {
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
        Conversion::ShardedToSet => {
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
        Conversion::FolderToFile => {
            let folder = aero_convert::hf::Folder::open(input)?;
            done("hf-folder", folder.write_file(output, opts, &|_| {})?)
        }
        Conversion::FolderToSet => {
            let folder = aero_convert::hf::Folder::open(input)?;
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
