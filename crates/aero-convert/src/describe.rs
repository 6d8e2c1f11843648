//! What a model file holds, read-only, for `inspect` and `list`: every
//! key/value typed and readable, every tensor with its type name (`Q4_K`,
//! `F16`, …), element count, bytes and bits per weight, and a per-type
//! histogram — for GGUF and safetensors files (recognised by content) and for
//! AERO files, whose GGUF key/values are the ones kept in MJSN `gguf`.
//!
//! Nothing here reads tensor bytes: a description costs the header only.
//!
//! ```no_run
//! use aero_convert::describe::{self, Values};
//! let m = describe::describe_path("model.gguf".as_ref(), Values::Summary)?;
//! for t in describe::histogram(&m.tensors) {
//!     println!("{} ×{}: {} bytes, {:.2} bits/weight", t.type_name, t.count, t.bytes,
//!              t.bits_per_weight().unwrap_or(0.0));
//! }
//! # Ok::<(), aero_convert::ConvertError>(())
//! ```

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::gguf::{GgufArray, GgufValue, GgufValueType};
use crate::{ConvertError, InputKind, Result};

/// How many items of an array (and characters of a string) a summary shows.
pub const SUMMARY_ITEMS: usize = 8;
/// Strings longer than this are cut in a summary (a chat template is often
/// several KiB).
pub const SUMMARY_CHARS: usize = 120;

/// How much of each value to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    /// Arrays cut to their first [`SUMMARY_ITEMS`] items and strings to
    /// [`SUMMARY_CHARS`] characters (the length is always given).
    Summary,
    /// Every item of every array (tokenizer vocabularies included) and whole
    /// strings.
    All,
}

/// The container format of a described file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An AERO file.
    Aero,
    /// A GGUF file.
    Gguf,
    /// A safetensors file.
    SafeTensors,
}

impl Format {
    /// `"AERO"`, `"GGUF"` or `"safetensors"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Aero => "AERO",
            Format::Gguf => "GGUF",
            Format::SafeTensors => "safetensors",
        }
    }
}

/// One key/value, typed as gguf-py names the types (`UINT32`, `STRING`,
/// `ARRAY`…; safetensors `__metadata__` values are all `STRING`).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value's type name.
    pub value_type: &'static str,
    /// For arrays, the items' type name, then (for arrays of arrays) the
    /// first inner array's, and so on — `["ARRAY", "INT32"]` — as
    /// `gguf-dump --json` gives `array_types`; empty for scalars.
    pub array_types: Vec<&'static str>,
    /// Items in an array, bytes in a string, 1 for other scalars.
    pub len: u64,
    /// The value as JSON: numbers, booleans and strings as themselves
    /// (non-finite floats as the strings `"nan"`, `"inf"`, `"-inf"`; strings
    /// that are not UTF-8 with U+FFFD), arrays as a JSON array of their first
    /// items (every item under [`Values::All`]).
    pub value: Value,
    /// Whether `value` shows less than the whole (see [`Values::Summary`]).
    pub truncated: bool,
}

/// One tensor of a described file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRow {
    /// The tensor's name.
    pub name: String,
    /// The type in the one vocabulary every format and command shares
    /// ([`dtype_name`], [`ggml_dtype_name`], [`safetensors_dtype_name`]):
    /// AERO's lowercase element-type names (`f32`, `bf16`, `i64`, `bool`)
    /// whatever the file format spells them, safetensors' other dtypes
    /// lowercased (`f8_e4m3`), and ggml's names for GGUF block types
    /// (`Q4_K`, `TQ2_0`), in GGUF files and in AERO tensors packed from them.
    pub type_name: String,
    /// Row-major shape (outermost first), as numpy and safetensors use;
    /// GGUF's `ne` order reversed.
    pub shape: Vec<u64>,
    /// Number of elements (the shape's product, saturating).
    pub elements: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// Where the bytes start: absolute in GGUF and safetensors files, inside
    /// the shard for AERO files.
    pub offset: u64,
    /// AERO only: the weight shard holding the bytes.
    pub shard: Option<u64>,
}

impl TensorRow {
    /// Stored bits per element (`None` for a tensor without elements).
    pub fn bits_per_weight(&self) -> Option<f64> {
        (self.elements > 0).then(|| self.bytes as f64 * 8.0 / self.elements as f64)
    }
}

/// Tensors of one type, summed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeStats {
    /// The type name (as [`TensorRow::type_name`]).
    pub type_name: String,
    /// Tensors of this type.
    pub count: u64,
    /// Their elements.
    pub elements: u64,
    /// Their stored bytes.
    pub bytes: u64,
}

impl TypeStats {
    /// Stored bits per element over the type's tensors.
    pub fn bits_per_weight(&self) -> Option<f64> {
        (self.elements > 0).then(|| self.bytes as f64 * 8.0 / self.elements as f64)
    }
}

/// The per-type histogram of `tensors`: one row per type, largest total
/// size first (ties by name).
pub fn histogram(tensors: &[TensorRow]) -> Vec<TypeStats> {
    let mut out: Vec<TypeStats> = Vec::new();
    for t in tensors {
        let row = match out.iter_mut().find(|s| s.type_name == t.type_name) {
            Some(s) => s,
            None => {
                out.push(TypeStats {
                    type_name: t.type_name.clone(),
                    count: 0,
                    elements: 0,
                    bytes: 0,
                });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        row.count += 1;
        row.elements = row.elements.saturating_add(t.elements);
        row.bytes = row.bytes.saturating_add(t.bytes);
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.type_name.cmp(&b.type_name)));
    out
}

/// A GGUF or safetensors file, described.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Its size in bytes.
    pub size: u64,
    /// The format version (GGUF 2 or 3), when the format has one.
    pub version: Option<u32>,
    /// GGUF: the data alignment.
    pub alignment: Option<u64>,
    /// Key/values in file order. For GGUF the first three are gguf-py's
    /// `GGUF.version`, `GGUF.tensor_count` and `GGUF.kv_count`, as
    /// `gguf-dump` lists them; for safetensors the `__metadata__` entries.
    pub key_values: Vec<KeyValue>,
    /// Tensors in file order (by offset).
    pub tensors: Vec<TensorRow>,
}

/// Everything `inspect` shows of one model file, gathered once whatever
/// its format ([`Inspection::of_aero`], or [`From<Model>`] for a GGUF or
/// safetensors file), so that one renderer presents every format.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// The file, as the caller named it.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Its size in bytes.
    pub size: u64,
    /// The model's name: an AERO file's MJSN, GGUF's `general.name`.
    pub model_name: Option<String>,
    /// Its architecture: an AERO file's MJSN, GGUF's `general.architecture`.
    pub architecture: Option<String>,
    /// The key/values ([`Model::key_values`]); for an AERO file the GGUF
    /// key/values it kept from its source, `None` when it did not come from
    /// GGUF or they are unreadable ([`AeroDetails::key_values_error`]).
    pub key_values: Option<Vec<KeyValue>>,
    /// Tensors in the file.
    pub tensor_count: usize,
    /// Their stored bytes.
    pub tensor_bytes: u64,
    /// Every tensor, in file order.
    pub tensors: InspectedTensors,
    /// What only one format has.
    pub details: Details,
    /// Whether the file passed the checks reading it made (an AERO file's
    /// quick validation; GGUF and safetensors headers are checked as they
    /// are parsed, so a described one is valid).
    pub valid: bool,
    /// What those checks found, one line each.
    pub errors: Vec<String>,
}

/// The tensors of an [`Inspection`].
#[derive(Clone, Debug)]
pub enum InspectedTensors {
    /// An AERO file's TIDX entries, shapes row-major whatever the file
    /// stores ([`aero_io::ShapeOrder`]): copies for display, never read
    /// through.
    Aero(Vec<aero_io::TensorInfo>),
    /// A GGUF or safetensors file's tensors.
    Rows(Vec<TensorRow>),
}

impl InspectedTensors {
    /// The tensors whose name `keep` accepts, in the same order.
    pub fn filtered(&self, keep: impl Fn(&str) -> bool) -> InspectedTensors {
        match self {
            InspectedTensors::Aero(t) => {
                InspectedTensors::Aero(t.iter().filter(|t| keep(&t.name)).cloned().collect())
            }
            InspectedTensors::Rows(t) => {
                InspectedTensors::Rows(t.iter().filter(|t| keep(&t.name)).cloned().collect())
            }
        }
    }

    /// How many.
    pub fn len(&self) -> usize {
        match self {
            InspectedTensors::Aero(t) => t.len(),
            InspectedTensors::Rows(t) => t.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each as a [`TensorRow`] (type names, elements, bits per weight).
    pub fn rows(&self) -> Vec<TensorRow> {
        match self {
            InspectedTensors::Aero(t) => t.iter().map(aero_tensor_row).collect(),
            InspectedTensors::Rows(t) => t.clone(),
        }
    }
}

/// What an [`Inspection`] holds for one format only.
#[derive(Clone, Debug)]
pub enum Details {
    /// An AERO file.
    Aero(Box<AeroDetails>),
    /// A GGUF file.
    Gguf {
        /// The GGUF version (2 or 3).
        version: u32,
        /// The data alignment.
        alignment: u64,
    },
    /// A safetensors file.
    SafeTensors,
}

/// An AERO file's own facts, for `inspect`.
#[derive(Clone, Debug)]
pub struct AeroDetails {
    /// Format version (major, minor) from the header.
    pub version: (u16, u16),
    /// The file UUID.
    pub uuid: [u8; 16],
    /// How the file stores shapes.
    pub shape_order: aero_io::ShapeOrder,
    /// The MJSN metadata, when readable.
    pub meta: Option<Value>,
    /// Every TOC entry.
    pub chunks: Vec<aero_io::Chunk>,
    /// The attached files (`FILE` chunks).
    pub attached: Vec<AttachedSummary>,
    /// Why the GGUF key/values kept in MJSN could not be read.
    pub key_values_error: Option<String>,
    /// Why the tensor index could not be read (then there are no tensors).
    pub tidx_error: Option<String>,
    /// Whether the file is an AEROSET's index (weights in the set's parts).
    pub set_index: bool,
}

/// An attached file of an AERO file, as `inspect` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachedSummary {
    /// Its name (`config.json`).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// What quick validation said of its hash (`verified`, `mismatch`, …;
    /// `skipped` when it did not look).
    pub status: &'static str,
}

impl Inspection {
    /// Gathers what `inspect` shows of an open AERO file named `path`: the
    /// header, the MJSN, every chunk and attached file, the GGUF
    /// key/values kept from a GGUF source (`values`: how much of each),
    /// every tensor, and the verdict of quick validation (the metadata
    /// checks of `validate`), so a damaged file is shown and said to be so.
    pub fn of_aero(f: &aero_io::AeroFile, path: &Path, values: Values) -> Inspection {
        let h = f.header();
        let (model_name, architecture) = f.model();
        let idx = f.index();
        let meta = f.meta_json().unwrap_or(None);
        let order = f.shape_order();
        let tensor_count = idx.as_ref().map_or(0, |i| i.len());
        let (tensors, tensor_bytes, tidx_error) = match &idx {
            Ok(i) => (
                i.tensors()
                    .iter()
                    .map(|t| {
                        let mut t = t.clone();
                        t.shape = t.row_major_shape(order);
                        t
                    })
                    .collect(),
                i.tensors().iter().map(|t| t.data_len).sum::<u64>(),
                None,
            ),
            Err(e) => (Vec::new(), 0, Some(e.to_string())),
        };
        let kept = meta
            .as_ref()
            .and_then(|m| aero_gguf_key_values(m, tensor_count as u64, values));
        let (key_values, key_values_error) = match kept {
            Some(Ok(k)) => (Some(k), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let check = aero_io::validate(f, aero_io::Mode::Quick, &|_| {});
        let attached = f
            .attached_files()
            .iter()
            .map(|c| AttachedSummary {
                name: c.name.clone(),
                size: c.ulen,
                status: check
                    .chunks
                    .iter()
                    .find(|r| r.index == c.index)
                    .map_or("skipped", |r| r.status),
            })
            .collect();
        Inspection {
            path: path.to_path_buf(),
            format: Format::Aero,
            size: f.len(),
            model_name,
            architecture,
            key_values,
            tensor_count,
            tensor_bytes,
            tensors: InspectedTensors::Aero(tensors),
            details: Details::Aero(Box::new(AeroDetails {
                version: (h.version_major, h.version_minor),
                uuid: h.uuid,
                shape_order: order,
                meta,
                chunks: f.chunks().to_vec(),
                attached,
                key_values_error,
                tidx_error,
                set_index: f.is_set_index(),
            })),
            valid: check.valid,
            errors: check.errors,
        }
    }
}

impl From<Model> for Inspection {
    /// A described GGUF or safetensors file; the model's name and
    /// architecture from GGUF's `general.name` and `general.architecture`
    /// (safetensors `__metadata__` has none by convention).
    fn from(m: Model) -> Inspection {
        let get = |k: &str| {
            m.key_values
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.as_str().map(str::to_owned))
        };
        let (model_name, architecture) = (get("general.name"), get("general.architecture"));
        let details = match (m.format, m.version, m.alignment) {
            (Format::Gguf, Some(version), Some(alignment)) => Details::Gguf { version, alignment },
            _ => Details::SafeTensors,
        };
        Inspection {
            path: m.path,
            format: m.format,
            size: m.size,
            model_name,
            architecture,
            key_values: Some(m.key_values),
            tensor_count: m.tensors.len(),
            tensor_bytes: m.tensors.iter().map(|t| t.bytes).sum(),
            tensors: InspectedTensors::Rows(m.tensors),
            details,
            valid: true,
            errors: Vec::new(),
        }
    }
}

/// Describes a GGUF or safetensors file, recognised by its content. An AERO
/// file, a set or an unknown format is [`ConvertError::UnknownFormat`] (the
/// CLI describes AERO files from their own reader).
pub fn describe_path(path: &Path, values: Values) -> Result<Model> {
    match crate::detect(path)? {
        InputKind::Gguf => describe_gguf(path, values),
        InputKind::SafeTensors => describe_safetensors(path, values),
        other => Err(ConvertError::UnknownFormat {
            path: path.to_path_buf(),
            reason: format!(
                "{other:?} is not described by this function (GGUF and safetensors are)"
            ),
        }),
    }
}

/// Describes a GGUF file: its header is parsed and every tensor's range
/// checked against the file's size; no tensor byte is read.
pub fn describe_gguf(path: &Path, values: Values) -> Result<Model> {
    let inp = crate::gguf_convert::Input::open(path)?;
    let h = inp.header();
    let size = std::fs::metadata(path)
        .map_err(|e| ConvertError::io(path, e))?
        .len();
    let mut key_values = gguf_pseudo_keys(h.version, h.tensors.len() as u64, h.metadata.len());
    key_values.extend(gguf_key_values(&h.metadata, values));
    let tensors = h
        .tensors
        .iter()
        .map(|t| TensorRow {
            name: t.name.clone(),
            type_name: ggml_dtype_name(t.ggml_type),
            shape: t.shape(),
            elements: t.n_elements(),
            bytes: t.size,
            offset: h.data_offset.saturating_add(t.offset),
            shard: None,
        })
        .collect();
    Ok(Model {
        path: path.to_path_buf(),
        format: Format::Gguf,
        size,
        version: Some(h.version),
        alignment: Some(h.alignment),
        key_values,
        tensors,
    })
}

/// Describes a safetensors file: the header is parsed and checked (offsets,
/// sizes, total length) as the converter checks it; no tensor byte is read.
pub fn describe_safetensors(path: &Path, values: Values) -> Result<Model> {
    let inp = crate::safetensors::Input::open(path)?;
    let size = std::fs::metadata(path)
        .map_err(|e| ConvertError::io(path, e))?
        .len();
    let key_values = inp
        .metadata()
        .into_iter()
        .flatten()
        .map(|(k, v)| match v {
            Value::String(s) => string_kv(k, s.as_bytes(), values),
            // Not a string (the format says strings; some writers differ):
            // shown as the JSON it is.
            other => KeyValue {
                key: k.clone(),
                value_type: "JSON",
                array_types: Vec::new(),
                len: 1,
                value: other.clone(),
                truncated: false,
            },
        })
        .collect();
    let base = 8 + inp.header_len();
    let mut tensors: Vec<TensorRow> = inp
        .tensors()
        .iter()
        .map(|(name, t)| TensorRow {
            name: name.clone(),
            type_name: safetensors_dtype_name(&format!("{:?}", t.dtype)),
            shape: t.shape.iter().map(|&d| d as u64).collect(),
            elements: t
                .shape
                .iter()
                .fold(1u64, |a, &d| a.saturating_mul(d as u64)),
            bytes: (t.data_offsets.1 - t.data_offsets.0) as u64,
            offset: base + t.data_offsets.0 as u64,
            shard: None,
        })
        .collect();
    tensors.sort_by(|a, b| a.offset.cmp(&b.offset).then(a.name.cmp(&b.name)));
    Ok(Model {
        path: path.to_path_buf(),
        format: Format::SafeTensors,
        size,
        version: None,
        alignment: None,
        key_values,
        tensors,
    })
}

/// The three header fields `gguf-dump` lists as key/values before the real
/// ones: `GGUF.version`, `GGUF.tensor_count`, `GGUF.kv_count`.
pub fn gguf_pseudo_keys(version: u32, tensors: u64, kvs: usize) -> Vec<KeyValue> {
    let kv = |key: &str, value_type, value: Value| KeyValue {
        key: key.to_owned(),
        value_type,
        array_types: Vec::new(),
        len: 1,
        value,
        truncated: false,
    };
    vec![
        kv("GGUF.version", "UINT32", json!(version)),
        kv("GGUF.tensor_count", "UINT64", json!(tensors)),
        kv("GGUF.kv_count", "UINT64", json!(kvs)),
    ]
}

/// GGUF key/values made readable (see [`KeyValue`]).
pub fn gguf_key_values(kvs: &[(String, GgufValue)], values: Values) -> Vec<KeyValue> {
    kvs.iter()
        .map(|(k, v)| match v {
            GgufValue::String(b) => string_kv(k, b, values),
            GgufValue::Array(a) => array_kv(k, a, values),
            v => KeyValue {
                key: k.clone(),
                value_type: v.value_type().name(),
                array_types: Vec::new(),
                len: 1,
                value: scalar_json(v),
                truncated: false,
            },
        })
        .collect()
}

/// The GGUF key/values an AERO file kept from its GGUF source (MJSN `gguf`,
/// docs/CONVERSION.md), preceded by the three `GGUF.*` header fields;
/// `None` when the file did not come from GGUF through our converter.
pub fn aero_gguf_key_values(
    meta: &Value,
    tensor_count: u64,
    values: Values,
) -> Option<std::result::Result<Vec<KeyValue>, String>> {
    let g = meta.get(crate::gguf_convert::GGUF_KEY)?;
    let kvs = match crate::gguf_convert::kept_key_values(g) {
        Ok(kvs) => kvs,
        Err(e) => return Some(Err(e)),
    };
    let version = g.get("version").and_then(Value::as_u64).unwrap_or(3);
    let mut out = gguf_pseudo_keys(
        u32::try_from(version).unwrap_or(u32::MAX),
        tensor_count,
        kvs.len(),
    );
    out.extend(gguf_key_values(&kvs, values));
    Some(Ok(out))
}

/// A tensor of an AERO file as a [`TensorRow`]: packed tensors converted
/// from GGUF take their ggml type's name.
pub fn aero_tensor_row(t: &aero_io::TensorInfo) -> TensorRow {
    let type_name = dtype_name(t);
    TensorRow {
        name: t.name.clone(),
        type_name,
        shape: t.shape.clone(),
        elements: t.shape.iter().fold(1u64, |a, &d| a.saturating_mul(d)),
        bytes: t.data_len,
        offset: t.data_off,
        shard: Some(t.shard_id),
    }
}

/// A tensor's type in the vocabulary shared by every format and command
/// (`list`, `inspect`, `diff`, JSON and text alike): the AERO dtype name
/// (`f32`, `bf16`, `bool`); for a `packed` tensor converted from GGUF its
/// ggml type (`Q4_K`), for one converted from a safetensors dtype AERO has
/// no code for that dtype lowercased (`f8_e4m3`), else `packed`.
pub fn dtype_name(t: &aero_io::TensorInfo) -> String {
    if t.dtype != aero_io::DType::Packed {
        return t.dtype.to_string();
    }
    if let Some(g) = t.ggml_type() {
        return ggml_dtype_name(g);
    }
    match crate::safetensors::tensor_dtype_name(t) {
        Some(n) => safetensors_dtype_name(&n),
        None => t.dtype.to_string(),
    }
}

/// A ggml type in the shared vocabulary: the plain types AERO has a dtype
/// for by that dtype's name (`F32` → `f32`, `BF16` → `bf16`), block types
/// by ggml's name (`Q4_K`).
pub fn ggml_dtype_name(g: aero_format::GgmlType) -> String {
    match crate::gguf_convert::native_dtype(g.id) {
        Some(d) => d.to_string(),
        None => g.name.to_owned(),
    }
}

/// A safetensors dtype name (`F32`, `BOOL`, `F8_E4M3`) in the shared
/// vocabulary: lowercased (`f32`, `bool`, `f8_e4m3`), which for every
/// dtype AERO has a code for is that dtype's AERO name.
pub fn safetensors_dtype_name(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn string_kv(key: &str, bytes: &[u8], values: Values) -> KeyValue {
    let s = String::from_utf8_lossy(bytes);
    let (value, truncated) = match values {
        Values::Summary if s.chars().count() > SUMMARY_CHARS => {
            (s.chars().take(SUMMARY_CHARS).collect::<String>(), true)
        }
        _ => (s.into_owned(), false),
    };
    KeyValue {
        key: key.to_owned(),
        value_type: "STRING",
        array_types: Vec::new(),
        len: bytes.len() as u64,
        value: Value::String(value),
        truncated,
    }
}

fn array_kv(key: &str, a: &GgufArray, values: Values) -> KeyValue {
    let take = match values {
        Values::Summary => SUMMARY_ITEMS,
        Values::All => usize::MAX,
    };
    let items: Vec<Value> = a.iter().take(take).map(|v| item_json(&v, values)).collect();
    KeyValue {
        key: key.to_owned(),
        value_type: "ARRAY",
        array_types: array_types(a),
        len: a.len() as u64,
        truncated: items.len() < a.len(),
        value: Value::Array(items),
    }
}

fn array_types(a: &GgufArray) -> Vec<&'static str> {
    let mut out = vec![a.elem_type.name()];
    if a.elem_type == GgufValueType::Array
        && let Some(GgufValue::Array(inner)) = a.iter().next()
    {
        out.extend(array_types(&inner));
    }
    out
}

/// An array item: scalars as [`scalar_json`], strings whole (a vocabulary
/// entry is short; the array is what gets cut), nested arrays summarised
/// the same way.
fn item_json(v: &GgufValue, values: Values) -> Value {
    match v {
        GgufValue::String(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        GgufValue::Array(a) => array_kv("", a, values).value,
        v => scalar_json(v),
    }
}

fn float_json(x: f64) -> Value {
    if x.is_nan() {
        json!("nan")
    } else if x.is_infinite() {
        json!(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(x)
    }
}

/// A scalar as readable JSON: integers and booleans as the MJSN form
/// writes them, floats with non-finite values named, strings lossily.
fn scalar_json(v: &GgufValue) -> Value {
    match v {
        GgufValue::F32(x) => float_json(f64::from(*x)),
        GgufValue::F64(x) => float_json(*x),
        GgufValue::String(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        GgufValue::Array(a) => array_kv("", a, Values::Summary).value,
        other => crate::gguf_convert::value_json(other),
    }
}

impl GgufValueType {
    /// The type's name as gguf-py (and so `gguf-dump`) spells it:
    /// `UINT8`, `INT8`, …, `FLOAT32`, `BOOL`, `STRING`, `ARRAY`, `FLOAT64`.
    pub fn name(self) -> &'static str {
        use GgufValueType::*;
        match self {
            U8 => "UINT8",
            I8 => "INT8",
            U16 => "UINT16",
            I16 => "INT16",
            U32 => "UINT32",
            I32 => "INT32",
            F32 => "FLOAT32",
            Bool => "BOOL",
            String => "STRING",
            Array => "ARRAY",
            U64 => "UINT64",
            I64 => "INT64",
            F64 => "FLOAT64",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, ty: &str, elements: u64, bytes: u64) -> TensorRow {
        TensorRow {
            name: name.into(),
            type_name: ty.into(),
            shape: vec![elements],
            elements,
            bytes,
            offset: 0,
            shard: None,
        }
    }

    #[test]
    fn histogram_sums_per_type_largest_first() {
        let rows = [
            row("a", "Q4_K", 256, 144),
            row("b", "F32", 10, 40),
            row("c", "Q4_K", 512, 288),
        ];
        let h = histogram(&rows);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].type_name, "Q4_K");
        assert_eq!((h[0].count, h[0].elements, h[0].bytes), (2, 768, 432));
        assert_eq!(h[0].bits_per_weight(), Some(4.5));
        assert_eq!(h[1].bits_per_weight(), Some(32.0));
        assert_eq!(row("z", "F32", 0, 0).bits_per_weight(), None);
    }

    #[test]
    fn arrays_are_summarised_unless_all_is_asked() {
        let items: Vec<GgufValue> = (0..100)
            .map(|i| GgufValue::String(format!("t{i}").into_bytes()))
            .collect();
        let kvs = vec![
            (
                "tokenizer.ggml.tokens".to_owned(),
                GgufValue::Array(GgufArray::new(GgufValueType::String, items)),
            ),
            ("x".to_owned(), GgufValue::F32(f32::NAN)),
            ("s".to_owned(), GgufValue::String(vec![b'a'; 500])),
        ];
        let s = gguf_key_values(&kvs, Values::Summary);
        assert_eq!(s[0].value_type, "ARRAY");
        assert_eq!(s[0].array_types, ["STRING"]);
        assert_eq!(s[0].len, 100);
        assert!(s[0].truncated);
        assert_eq!(s[0].value.as_array().unwrap().len(), SUMMARY_ITEMS);
        assert_eq!(s[1].value, json!("nan"));
        assert_eq!(s[1].value_type, "FLOAT32");
        assert!(s[2].truncated);
        assert_eq!(s[2].len, 500);
        let a = gguf_key_values(&kvs, Values::All);
        assert!(!a[0].truncated);
        assert_eq!(a[0].value.as_array().unwrap().len(), 100);
        assert_eq!(a[0].value[99], json!("t99"));
        assert_eq!(a[2].value.as_str().unwrap().len(), 500);
    }
}
