//! safetensors ⇄ AERO (spec §15).
//!
//! Import maps the eleven dtypes the reference maps plus `U32`/`U64` to
//! native AERO dtypes. Every other safetensors dtype (F8_E4M3, F8_E5M2,
//! F8_E8M0, F6_E2M3, F6_E3M2, F4, C64, …) is stored as `packed` with
//! `quant_params = {"safetensors_dtype": NAME}` and a `quant_id` into the
//! MJSN `quant_descriptors` (codec `"safetensors"`), so export restores it.
//! `__metadata__` is kept whole in MJSN under `safetensors_metadata`, as an
//! array of `[key, value]` pairs: MJSN is canonical JSON with sorted keys, so
//! an object would lose the original key order that export restores.

use std::io::Write;
use std::path::Path;

use aero_io::write::{TensorSpec, WriteOptions, WriteSummary};
use aero_io::{AeroFile, ByteSource, DType};
use safetensors::tensor::Dtype;
use serde_json::{Map, Value, json};

use crate::error::{ConvertError, Result};

/// MJSN key holding the original `__metadata__` object.
pub const METADATA_KEY: &str = "safetensors_metadata";
/// `quant_params` key naming the original safetensors dtype of a packed tensor.
pub const DTYPE_PARAM: &str = "safetensors_dtype";

/// The AERO dtype for a safetensors dtype; `None` means it is kept `packed`.
pub fn native_dtype(d: Dtype) -> Option<DType> {
    DType::from_safetensors_name(&dtype_name(d))
}

fn dtype_name(d: Dtype) -> String {
    // The crate's serde names are the on-disk names ("F8_E4M3", …).
    serde_json::to_value(d)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{d:?}"))
}

fn parse_dtype(name: &str) -> Option<Dtype> {
    serde_json::from_value(Value::String(name.to_owned())).ok()
}

/// The safetensors name of a native AERO dtype.
pub fn safetensors_name(d: DType) -> Option<&'static str> {
    d.safetensors_name()
}

/// How a tensor of safetensors dtype `d` is stored in AERO: its native
/// dtype, or `packed` with the TIDX extras `quant_id` (its dtype's position
/// in `quant_names`, which is extended on first appearance) and
/// `quant_params = {"safetensors_dtype": NAME}`. The one representation of
/// F8_E4M3, F8_E5M2, C64, … used by every writer (converters, the Python
/// package), so export restores the dtype.
pub fn stored_as(d: Dtype, quant_names: &mut Vec<String>) -> (DType, Vec<(String, Vec<u8>)>) {
    if let Some(native) = native_dtype(d) {
        return (native, Vec::new());
    }
    let dn = dtype_name(d);
    let id = quant_names
        .iter()
        .position(|q| *q == dn)
        .unwrap_or_else(|| {
            quant_names.push(dn.clone());
            quant_names.len() - 1
        });
    let mut qid = Vec::new();
    aero_io::meta::json_to_msgpack(&json!(id), &mut qid);
    let mut qp = Vec::new();
    aero_io::meta::json_to_msgpack(&json!({DTYPE_PARAM: dn}), &mut qp);
    (
        DType::Packed,
        vec![
            ("quant_id".to_string(), qid),
            ("quant_params".to_string(), qp),
        ],
    )
}

/// The MJSN `quant_descriptors` for the packed safetensors dtypes named
/// by [`stored_as`], ids in the order of `quant_names`.
pub fn quant_descriptors(quant_names: &[String]) -> Vec<Value> {
    quant_names
        .iter()
        .enumerate()
        .map(|(id, n)| {
            json!({"id": id, "quant_name": n, "codec": "safetensors", "params": {DTYPE_PARAM: n}})
        })
        .collect()
}

/// A safetensors dtype by its on-disk name (`"F8_E4M3"`), `None` for a
/// name the format does not define.
pub fn dtype_by_name(name: &str) -> Option<Dtype> {
    parse_dtype(name)
}

/// The safetensors dtype a stored tensor has: its native dtype's, or for a
/// `packed` tensor the `quant_params.safetensors_dtype` it was stored with
/// ([`stored_as`]); `None` for packed data of another codec (GGUF blocks).
pub fn tensor_dtype_name(t: &aero_io::TensorInfo) -> Option<String> {
    match t.dtype {
        DType::Packed => t
            .extras_json()
            .get("quant_params")
            .and_then(|q| q.get(DTYPE_PARAM))
            .and_then(Value::as_str)
            .map(str::to_owned),
        d => safetensors_name(d).map(str::to_owned),
    }
}

/// A parsed safetensors file over a [`ByteSource`] (a mapping for files).
pub struct Input {
    path: std::path::PathBuf,
    src: aero_io::Source,
    header_len: u64,
    metadata: Option<Map<String, Value>>,
    tensors: Vec<(String, safetensors::tensor::TensorInfo)>,
}

/// The one header key the converter keeps besides the tensors; every other
/// key is skipped by the JSON parser without being built.
#[derive(serde::Deserialize)]
struct HeaderMeta {
    #[serde(rename = "__metadata__", default)]
    metadata: Option<Value>,
}

/// Largest safetensors header accepted (the `safetensors` crate's cap).
const MAX_HEADER_LEN: u64 = 100_000_000;

impl Input {
    /// Opens and checks a safetensors file (the `safetensors` crate checks the
    /// header cap, offsets, and that each size equals shape × dtype size).
    pub fn open(path: &Path) -> Result<Input> {
        Self::from_source(path, crate::open_source(path)?)
    }

    /// [`Input::open`] over any byte source (e.g. a `Vec<u8>`); `label`
    /// names it in errors. Reads the 8-byte length and the header; tensor
    /// bytes are read only when converted.
    pub fn from_source(label: &Path, src: impl Into<aero_io::Source>) -> Result<Input> {
        let src = src.into();
        let bad = |reason: String| ConvertError::SafeTensors {
            path: label.to_path_buf(),
            reason,
        };
        let len = src.len();
        if len < 8 {
            return Err(bad("file shorter than the 8-byte header length".into()));
        }
        let head = src.bytes(0, 8).map_err(|e| ConvertError::io(label, e))?;
        let n = u64::from_le_bytes(head[..8].try_into().unwrap_or([0xff; 8]));
        if n > MAX_HEADER_LEN {
            return Err(bad(format!(
                "header length {n} exceeds the cap of {MAX_HEADER_LEN} bytes"
            )));
        }
        if n > len - 8 {
            return Err(bad(format!(
                "header length {n} runs past the end of the {len}-byte file"
            )));
        }
        let header = src.bytes(8, n).map_err(|e| ConvertError::io(label, e))?;
        let text = std::str::from_utf8(&header).map_err(|e| bad(format!("header: {e}")))?;
        let meta: safetensors::tensor::Metadata =
            serde_json::from_str(text).map_err(|e| bad(format!("header JSON: {e}")))?;
        // Validated by the crate: offsets contiguous from 0, sizes exact.
        let data: u64 = meta
            .tensors()
            .values()
            .map(|t| (t.data_offsets.1 - t.data_offsets.0) as u64)
            .sum();
        if 8 + n + data != len {
            return Err(bad(format!(
                "the header describes {data} data bytes, the file holds {}",
                len - 8 - n
            )));
        }
        let kept: HeaderMeta =
            serde_json::from_str(text).map_err(|e| bad(format!("header JSON: {e}")))?;
        let metadata = match kept.metadata {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(bad("__metadata__ is not an object".into())),
        };
        let mut tensors: Vec<(String, safetensors::tensor::TensorInfo)> = meta
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, v.clone()))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Input {
            path: label.to_path_buf(),
            src,
            header_len: n,
            metadata,
            tensors,
        })
    }

    /// `__metadata__` as stored (key order kept).
    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        self.metadata.as_ref()
    }

    /// The tensors as the header describes them (sorted by name; offsets
    /// are relative to the data section, which starts at `8 + header_len`).
    pub fn tensors(&self) -> &[(String, safetensors::tensor::TensorInfo)] {
        &self.tensors
    }

    /// The JSON header's length in bytes.
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// The JSON header as stored (valid UTF-8: checked when opened),
    /// padding included.
    pub fn header_text(&self) -> Result<String> {
        let b = self
            .src
            .bytes(8, self.header_len)
            .map_err(|e| ConvertError::io(&self.path, e))?;
        String::from_utf8(b.into_owned()).map_err(|e| ConvertError::SafeTensors {
            path: self.path.clone(),
            reason: format!("header: {e}"),
        })
    }

    /// Total tensor bytes.
    pub fn data_len(&self) -> u64 {
        self.tensors
            .iter()
            .map(|(_, t)| (t.data_offsets.1 - t.data_offsets.0) as u64)
            .sum()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the file holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Writer options (model name, architecture, MJSN extras) on top of `base`.
    pub fn options(&self, base: &WriteOptions) -> WriteOptions {
        let mut o = base.clone();
        let get = |k: &str| {
            self.metadata
                .as_ref()
                .and_then(|m| m.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        o.model_name = get("model_name").unwrap_or_else(|| "converted".into());
        o.architecture = get("architecture").unwrap_or_else(|| "unknown".into());
        o.extra_meta
            .insert("source_format".into(), json!("safetensors"));
        if o.layout == aero_io::write::Layout::Reference {
            // The reference keeps nothing else (see `reference_losses`).
            return o;
        }
        if let Some(m) = &self.metadata {
            let pairs: Vec<Value> = m.iter().map(|(k, v)| json!([k, v])).collect();
            o.extra_meta
                .insert(METADATA_KEY.into(), Value::Array(pairs));
        }
        let mut quant_names: Vec<String> = Vec::new();
        for (_, t) in &self.tensors {
            stored_as(t.dtype, &mut quant_names);
        }
        if !quant_names.is_empty() {
            o.extra_meta.insert(
                "quant_descriptors".into(),
                Value::Array(quant_descriptors(&quant_names)),
            );
        }
        o
    }

    /// What `--layout reference` drops to stay byte-identical to the
    /// reference converter, one line each (empty when nothing is lost):
    /// `__metadata__` keys other than `model_name` / `architecture`.
    pub fn reference_losses(&self) -> Vec<String> {
        let dropped: Vec<&str> = self
            .metadata
            .iter()
            .flat_map(|m| m.keys())
            .map(String::as_str)
            .filter(|k| *k != "model_name" && *k != "architecture")
            .collect();
        if dropped.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "--layout reference drops the __metadata__ keys the reference converter drops: {} (export-safetensors cannot restore them)",
            dropped.join(", ")
        )]
    }

    /// Errors when a tensor has a dtype the reference converter cannot
    /// write (it maps F16, F32, BF16, F64, I8, U8, I16, U16, I32, I64, BOOL).
    fn check_reference_dtypes(&self) -> Result<()> {
        for (name, t) in &self.tensors {
            let ok = matches!(
                t.dtype,
                Dtype::F16
                    | Dtype::F32
                    | Dtype::BF16
                    | Dtype::F64
                    | Dtype::I8
                    | Dtype::U8
                    | Dtype::I16
                    | Dtype::U16
                    | Dtype::I32
                    | Dtype::I64
                    | Dtype::BOOL
            );
            if !ok {
                return Err(ConvertError::unsupported(
                    &self.path,
                    Some(name),
                    format!(
                        "{} is a dtype the reference converter cannot write, so --layout reference cannot reproduce it; use --layout aligned",
                        dtype_name(t.dtype)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Every tensor as the converter writes its TIDX entry, in name order:
    /// dtype (packed with `quant_params.safetensors_dtype` for a dtype AERO
    /// has no code for), row-major shape, length, and `data_off` = the
    /// absolute offset of its bytes in this file (`shard_id` 0, no
    /// `hash_b3`: safetensors records no hashes).
    pub fn tensor_infos(&self) -> Vec<aero_io::TensorInfo> {
        let mut quant_names: Vec<String> = Vec::new();
        let base = 8 + self.header_len;
        let mut out = Vec::with_capacity(self.tensors.len());
        for (name, t) in &self.tensors {
            let (s, e) = (t.data_offsets.0 as u64, t.data_offsets.1 as u64);
            let (dtype, extras) = stored_as(t.dtype, &mut quant_names);
            let quant_id = (dtype == DType::Packed)
                .then(|| {
                    let dn = dtype_name(t.dtype);
                    quant_names.iter().position(|q| *q == dn)
                })
                .flatten()
                .map(|i| i as u64);
            out.push(aero_io::TensorInfo {
                name: name.clone(),
                dtype,
                shape: t.shape.iter().map(|&d| d as u64).collect(),
                shard_id: 0,
                data_off: base + s,
                data_len: e - s,
                flags: 0,
                hash_b3: None,
                quant_id,
                extras,
            });
        }
        out
    }

    /// The byte source the tensors are read from.
    pub(crate) fn source(&self) -> &aero_io::Source {
        &self.src
    }

    /// Tensor specs in name order, reading straight from the mapping.
    pub fn specs<'s>(&'s self, progress: &'s crate::Progress<'s>) -> Result<Vec<TensorSpec<'s>>> {
        crate::mapped_specs(
            self.src.as_source_ref(),
            &self.path,
            self.tensor_infos(),
            progress,
        )
    }
}

import_entry_points!("safetensors");

impl Input {
    /// Refuses what must not reach the writer (see [`crate::ImportInput::check`]).
    fn check_import(&self, base: &WriteOptions) -> Result<()> {
        if self.is_empty() {
            return Err(ConvertError::NoTensors {
                path: self.path.clone(),
                format: "safetensors",
            });
        }
        if base.layout == aero_io::write::Layout::Reference {
            self.check_reference_dtypes()?;
        }
        Ok(())
    }
}

/// The safetensors dtype a tensor exports as (`path` names its file in
/// errors).
pub(crate) fn export_dtype(path: &Path, t: &aero_io::TensorInfo) -> Result<Dtype> {
    let unsupported = |why: String| ConvertError::unsupported(path, Some(&t.name), why);
    let name = match t.dtype {
        DType::Packed => {
            let qp = t
                .extras_json()
                .get("quant_params")
                .cloned()
                .unwrap_or(Value::Null);
            match qp.get(DTYPE_PARAM).and_then(|v| v.as_str()) {
                Some(n) => n.to_owned(),
                None => {
                    let what = match t.ggml_type() {
                        Some(g) => format!("{} blocks (GGUF ggml type {})", g.name, g.id),
                        None => match qp.get("ggml_type") {
                            Some(id) => {
                                format!("blocks of ggml type {id}, which ggml does not define")
                            }
                            None => "packed data of an unknown codec".into(),
                        },
                    };
                    return Err(unsupported(format!(
                        "{what}: safetensors has no dtype for them. Export their values \
                         as floats with `export-safetensors --dequantize f32|f16|bf16`, or \
                         keep the blocks with `export-gguf`"
                    )));
                }
            }
        }
        d => safetensors_name(d)
            .ok_or_else(|| unsupported(format!("dtype {d} has no safetensors equivalent")))?
            .to_owned(),
    };
    parse_dtype(&name).ok_or_else(|| unsupported(format!("unknown safetensors dtype '{name}'")))
}

/// The safetensors dtype name of a tensor (`F32`, `I64`, `F8_E4M3`…), when
/// it has one: what an exporter writes in the header.
pub(crate) fn export_dtype_name(path: &Path, t: &aero_io::TensorInfo) -> Result<String> {
    export_dtype(path, t).map(dtype_name)
}

/// Checks that a tensor's own bytes are exactly what dtype × shape take
/// (bits for sub-byte types; a reference GGUF-origin tensor's alignment
/// padding is not exported, [`aero_io::TensorInfo::tensor_len`] in the
/// file's `order`); an error names `path` and the tensor.
pub(crate) fn check_length(
    path: &Path,
    t: &aero_io::TensorInfo,
    order: aero_io::ShapeOrder,
) -> Result<Dtype> {
    let d = export_dtype(path, t)?;
    let bits = t.elements().and_then(|n| n.checked_mul(d.bitsize() as u64));
    let want = bits.filter(|b| b % 8 == 0).map(|b| b / 8);
    if want != Some(t.tensor_len(order)) {
        return Err(ConvertError::unsupported(
            path,
            Some(&t.name),
            format!(
                "{} × {:?} is {} bytes, stored {}",
                dtype_name(d),
                t.row_major_shape(order),
                want.map_or_else(|| "not a whole number of".into(), |w| w.to_string()),
                t.data_len
            ),
        ));
    }
    Ok(d)
}

/// What [`export`] needs from an AERO file before it writes a byte: every
/// tensor has a safetensors dtype, and its `data_len` is exactly the bytes
/// dtype × shape take (a packed tensor whose length disagreed once made a
/// file no safetensors reader accepts). An error names the file and tensor.
pub fn check_exportable(f: &AeroFile) -> Result<()> {
    let order = f.shape_order();
    for t in f.index()?.tensors() {
        check_length(f.path(), t, order)?;
    }
    Ok(())
}

/// One safetensors file to write: its JSON header (padded, without the
/// 8-byte length) and where each tensor's bytes go, relative to the data
/// section. Tensors may come from several AERO files (the parts of a set).
pub(crate) struct StFile<'a> {
    /// The header bytes as they will be written.
    pub header: Vec<u8>,
    /// (file holding the tensor, its entry there, offset in the data section).
    pub items: Vec<(&'a AeroFile, std::borrow::Cow<'a, aero_io::TensorInfo>, u64)>,
    /// Length of the data section.
    pub data_len: u64,
}

/// The header `safetensors` itself writes for `tensors` (each with its
/// dtype name): tensors laid out by dtype descending, then name;
/// `__metadata__` first when given; padded with spaces to 8 bytes. Returns
/// the header and, per tensor in the order given, its data offset.
pub(crate) fn canonical_header(
    path: &Path,
    tensors: &[&aero_io::TensorInfo],
    metadata: Option<Map<String, Value>>,
    order: aero_io::ShapeOrder,
) -> Result<(Vec<u8>, Vec<u64>, u64)> {
    let mut items: Vec<(usize, Dtype)> = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        items.push((i, export_dtype(path, t)?));
    }
    items.sort_by(|(li, l), (ri, r)| r.cmp(l).then(tensors[*li].name.cmp(&tensors[*ri].name)));
    let mut header = Map::new();
    if let Some(m) = metadata {
        header.insert("__metadata__".into(), Value::Object(m));
    }
    let mut off = 0u64;
    let mut offsets = vec![0u64; tensors.len()];
    // Row-major shapes and the tensors' own bytes, whatever order and
    // padding a reference GGUF-origin file stores (aero_io::ShapeOrder).
    for (i, d) in &items {
        let t = tensors[*i];
        let len = t.tensor_len(order);
        header.insert(t.name.clone(), json!({"dtype": dtype_name(*d), "shape": t.row_major_shape(order), "data_offsets": [off, off + len]}));
        offsets[*i] = off;
        off += len;
    }
    let mut hb = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| ConvertError::unsupported(path, None, format!("safetensors header: {e}")))?;
    hb.resize(hb.len().div_ceil(8) * 8, b' ');
    Ok((hb, offsets, off))
}

/// Writes `st` into `out` (a fresh, empty file; `path` names it in errors):
/// the header's length, the header, then every tensor's bytes at its
/// place, verified as they are copied ([`aero_io::copy_tensors`], one pass
/// per source file). Returns the file size. What every safetensors
/// exporter writes through (`export-safetensors`, `export-hf`).
pub(crate) fn write_st(
    out: &mut std::fs::File,
    path: &Path,
    st: &StFile<'_>,
    opts: &aero_io::CopyOptions<'_>,
) -> Result<u64> {
    let io = |e| ConvertError::io(path, e);
    out.write_all(&(st.header.len() as u64).to_le_bytes())
        .map_err(io)?;
    out.write_all(&st.header).map_err(io)?;
    let data_start = 8 + st.header.len() as u64;
    let mut done = vec![false; st.items.len()];
    for i in 0..st.items.len() {
        if done[i] {
            continue;
        }
        let file = st.items[i].0;
        let mut placements = Vec::new();
        for (j, (f, info, off)) in st.items.iter().enumerate().skip(i) {
            if std::ptr::eq(*f, file) {
                done[j] = true;
                placements.push(aero_io::Placement::new(
                    file,
                    info.as_ref(),
                    data_start + off,
                ));
            }
        }
        aero_io::copy_tensors(file, &placements, out, path, opts)?;
    }
    let total = data_start + st.data_len;
    out.set_len(total).map_err(io)?;
    Ok(total)
}

export_entry_points!(
    /// Writes an AERO file as safetensors, atomically, verifying every tensor
    /// as it is copied (see [`aero_io::copy_tensors`]). Tensors are laid out as the
    /// `safetensors` crate does (dtype descending, then name) so a canonical
    /// input round-trips to the same bytes; `__metadata__` is restored from MJSN
    /// when present.
);

/// `__metadata__` as MJSN keeps it (`safetensors_metadata`: pairs in their
/// original order, or an object), if any.
pub(crate) fn kept_metadata(meta: Option<&Value>) -> Option<Map<String, Value>> {
    match meta.and_then(|m| m.get(METADATA_KEY)) {
        Some(Value::Object(m)) => Some(m.clone()),
        Some(Value::Array(pairs)) => {
            let mut m = Map::new();
            for p in pairs {
                if let (Some(k), Some(v)) = (p.get(0).and_then(Value::as_str), p.get(1)) {
                    m.insert(k.to_owned(), v.clone());
                }
            }
            Some(m)
        }
        _ => None,
    }
}

/// The body of [`export_with`]: `f` is the opened, checked input (whose
/// path `f` names in errors, so `_input` is not needed here).
fn export_checked(
    f: AeroFile,
    _input: &Path,
    output: &Path,
    opts: &aero_io::CopyOptions<'_>,
) -> Result<u64> {
    let idx = f.index()?;
    let tensors: Vec<&aero_io::TensorInfo> = idx.tensors().iter().collect();
    let meta = f.meta_json()?;
    let (header, offsets, data_len) = canonical_header(
        f.path(),
        &tensors,
        kept_metadata(meta.as_ref()),
        f.shape_order(),
    )?;
    let st = StFile {
        header,
        items: tensors
            .iter()
            .zip(&offsets)
            .map(|(t, &o)| (&f, std::borrow::Cow::Borrowed(*t), o))
            .collect(),
        data_len,
    };
    let mut out = aero_io::output::Output::create(output)?;
    let total = write_st(out.file(), output, &st, opts)?;
    out.commit(opts.durable)?;
    Ok(total)
}
