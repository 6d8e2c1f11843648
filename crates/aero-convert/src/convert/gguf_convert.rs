//! GGUF ⇄ AERO (spec §15).
//!
//! Import: native ggml types (F32, F16, BF16, F64, I8, I16, I32, I64) become
//! native dtypes; every other type stays `packed`, bytes copied verbatim, with
//! `quant_id` / `quant_params = {"ggml_type": id}` and MJSN
//! `quant_descriptors` exactly as the reference writes them. Sizes come from
//! the type's block layout, never from offset gaps. Shapes are row-major
//! (GGUF `dims` reversed). Every key/value is kept, typed, in MJSN under
//! `gguf` together with the version, alignment and original tensor order, so
//! [`export`] can write an equivalent GGUF back.

use std::io::Write;
use std::path::Path;

use aero_io::write::{TensorSpec, WriteOptions, WriteSummary};
use aero_io::{AeroFile, ByteSource, DType};
use serde_json::{Value, json};

use crate::error::{ConvertError, Result};
use crate::gguf::{
    self, GgmlType, GgufArray, GgufHeader, GgufTensorInfo, GgufValue, GgufValueType,
};

/// MJSN key holding the GGUF key/values, version, alignment and tensor order.
pub const GGUF_KEY: &str = "gguf";

/// Native AERO dtype of a ggml type id, if any.
pub fn native_dtype(ggml: u32) -> Option<DType> {
    DType::from_ggml_type(ggml)
}

/// ggml type id of a native AERO dtype.
pub fn ggml_of(d: DType) -> Option<u32> {
    d.ggml_type()
}

fn type_name(t: GgufValueType) -> &'static str {
    use GgufValueType::*;
    match t {
        U8 => "u8",
        I8 => "i8",
        U16 => "u16",
        I16 => "i16",
        U32 => "u32",
        I32 => "i32",
        F32 => "f32",
        Bool => "bool",
        String => "string",
        Array => "array",
        U64 => "u64",
        I64 => "i64",
        F64 => "f64",
    }
}

fn type_from_name(s: &str) -> Option<GgufValueType> {
    (0..13)
        .filter_map(GgufValueType::from_id)
        .find(|t| type_name(*t) == s)
}

/// JSON for a value's payload (the type is recorded separately). Strings that
/// are not UTF-8 become `{"hex": …}`, non-finite floats `{"bits": …}`.
pub(crate) fn value_json(v: &GgufValue) -> Value {
    match v {
        GgufValue::U8(x) => json!(x),
        GgufValue::I8(x) => json!(x),
        GgufValue::U16(x) => json!(x),
        GgufValue::I16(x) => json!(x),
        GgufValue::U32(x) => json!(x),
        GgufValue::I32(x) => json!(x),
        GgufValue::U64(x) => json!(x),
        GgufValue::I64(x) => json!(x),
        GgufValue::Bool(x) => json!(x),
        GgufValue::F32(x) if x.is_finite() => json!(x),
        GgufValue::F32(x) => json!({"bits": x.to_bits()}),
        GgufValue::F64(x) if x.is_finite() => json!(x),
        GgufValue::F64(x) => json!({"bits": x.to_bits()}),
        GgufValue::String(b) => match std::str::from_utf8(b) {
            Ok(s) => json!(s),
            Err(_) => json!({"hex": hex_encode(b)}),
        },
        // Scalar arrays as the hex of their little-endian bytes: a JSON
        // number per item would cost 72 bytes of memory per input byte.
        GgufValue::Array(a) => match a.le_bytes() {
            Some(b) => json!({"elem": type_name(a.elem_type), "le": hex_encode(b)}),
            None => {
                json!({"elem": type_name(a.elem_type), "items": a.iter().map(|v| value_json(&v)).collect::<Vec<_>>()})
            }
        },
    }
}

fn hex_encode(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[usize::from(x >> 4)] as char);
        s.push(DIGITS[usize::from(x & 15)] as char);
    }
    s
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn value_from_json(t: GgufValueType, v: &Value) -> Option<GgufValue> {
    use GgufValueType as T;
    let bits = v.get("bits").and_then(Value::as_u64);
    Some(match t {
        T::U8 => GgufValue::U8(u8::try_from(v.as_u64()?).ok()?),
        T::I8 => GgufValue::I8(i8::try_from(v.as_i64()?).ok()?),
        T::U16 => GgufValue::U16(u16::try_from(v.as_u64()?).ok()?),
        T::I16 => GgufValue::I16(i16::try_from(v.as_i64()?).ok()?),
        T::U32 => GgufValue::U32(u32::try_from(v.as_u64()?).ok()?),
        T::I32 => GgufValue::I32(i32::try_from(v.as_i64()?).ok()?),
        T::U64 => GgufValue::U64(v.as_u64()?),
        T::I64 => GgufValue::I64(v.as_i64()?),
        T::Bool => GgufValue::Bool(v.as_bool()?),
        T::F32 => GgufValue::F32(match bits {
            Some(b) => f32::from_bits(u32::try_from(b).ok()?),
            None => v.as_f64()? as f32,
        }),
        T::F64 => GgufValue::F64(match bits {
            Some(b) => f64::from_bits(b),
            None => v.as_f64()?,
        }),
        T::String => GgufValue::String(match v {
            Value::String(s) => s.clone().into_bytes(),
            _ => hex_decode(v.get("hex")?.as_str()?)?,
        }),
        T::Array => {
            let elem = type_from_name(v.get("elem")?.as_str()?)?;
            if let Some(le) = v.get("le") {
                return GgufArray::from_le_bytes(elem, hex_decode(le.as_str()?)?)
                    .map(GgufValue::Array);
            }
            let items = v
                .get("items")?
                .as_array()?
                .iter()
                .map(|x| value_from_json(elem, x))
                .collect::<Option<Vec<_>>>()?;
            GgufValue::Array(GgufArray::new(elem, items))
        }
    })
}

/// A parsed GGUF file over a [`ByteSource`] (a mapping for files).
pub struct Input {
    path: std::path::PathBuf,
    src: aero_io::Source,
    header: GgufHeader,
}

impl Input {
    /// Opens and checks a GGUF file: header, every length and product, and
    /// every tensor's range against the file size.
    pub fn open(path: &Path) -> Result<Input> {
        Self::from_source(path, crate::open_source(path)?)
    }

    /// [`Input::open`] over any byte source (e.g. a `Vec<u8>`); `label`
    /// names it in errors. Only the header is read (growing the prefix as
    /// the parser asks, never past the source's length).
    pub fn from_source(label: &Path, src: impl Into<aero_io::Source>) -> Result<Input> {
        let src = src.into();
        let gg = |source| ConvertError::Gguf {
            path: label.to_path_buf(),
            source,
        };
        let len = src.len();
        let mut want = len.min(64 << 10);
        let header = loop {
            let prefix = match src.mapped(0, len) {
                Some(all) => std::borrow::Cow::Borrowed(all),
                None => src.bytes(0, want).map_err(|e| ConvertError::io(label, e))?,
            };
            match gguf::parse(&prefix) {
                Ok(h) => break h,
                Err(gguf::GgufError::NeedMore { need }) if need <= len && want < len => {
                    want = need.max(want.saturating_mul(2)).min(len);
                }
                Err(gguf::GgufError::NeedMore { need }) => {
                    return Err(gg(gguf::GgufError::Truncated { need, got: len }));
                }
                Err(e) => return Err(gg(e)),
            }
        };
        header.validate_against_len(len).map_err(gg)?;
        Ok(Input {
            path: label.to_path_buf(),
            src,
            header,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &GgufHeader {
        &self.header
    }

    /// Total tensor bytes.
    pub fn data_len(&self) -> u64 {
        self.header.tensors.iter().map(|t| t.size).sum()
    }

    fn sorted(&self) -> Vec<&GgufTensorInfo> {
        let mut v: Vec<&GgufTensorInfo> = self.header.tensors.iter().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Writer options (model name, architecture, MJSN extras) on top of `base`.
    pub fn options(&self, base: &WriteOptions) -> WriteOptions {
        let h = &self.header;
        let mut o = base.clone();
        o.model_name = h
            .get("general.name")
            .and_then(GgufValue::as_str)
            .unwrap_or("converted-gguf")
            .to_owned();
        o.architecture = h
            .get("general.architecture")
            .and_then(GgufValue::as_str)
            .unwrap_or("unknown")
            .to_owned();
        o.extra_meta.insert("source_format".into(), json!("gguf"));
        let mut descriptors: Vec<Value> = Vec::new();
        let mut seen = Vec::new();
        for t in self.sorted() {
            let id = t.ggml_type.id;
            if native_dtype(id).is_none() && !seen.contains(&id) {
                seen.push(id);
                descriptors.push(json!({"id": descriptors.len(), "quant_name": t.ggml_type.name, "codec": "ggml", "params": {"ggml_type": id}}));
            }
        }
        if !descriptors.is_empty() {
            o.extra_meta
                .insert("quant_descriptors".into(), Value::Array(descriptors));
        }
        let kv: Vec<Value> = h
            .metadata
            .iter()
            .map(|(k, v)| json!([k, type_name(v.value_type()), value_json(v)]))
            .collect();
        o.extra_meta.insert(
            GGUF_KEY.into(),
            json!({
                "version": h.version,
                "alignment": h.alignment,
                "metadata": kv,
                "tensor_order": h.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            }),
        );
        o
    }

    /// Every tensor as the converter writes its TIDX entry, sorted by
    /// name: a native dtype, or packed with `quant_params.ggml_type`;
    /// row-major shape (GGUF's `ne` reversed); the exact size its type
    /// implies; `data_off` = the absolute offset of its bytes in this file
    /// (`shard_id` 0, no `hash_b3`: GGUF records no hashes).
    pub fn tensor_infos(&self) -> Result<Vec<aero_io::TensorInfo>> {
        let mut seen: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        for t in self.sorted() {
            let (start, _) = self.header.tensor_range(t).ok_or_else(|| {
                ConvertError::unsupported(&self.path, Some(&t.name), "its byte range overflows")
            })?;
            let id = t.ggml_type.id;
            let mut extras = Vec::new();
            let mut quant_id = None;
            let dtype = match native_dtype(id) {
                Some(d) => d,
                None => {
                    let q = seen.iter().position(|&x| x == id).unwrap_or_else(|| {
                        seen.push(id);
                        seen.len() - 1
                    });
                    let mut qid = Vec::new();
                    aero_io::meta::json_to_msgpack(&json!(q), &mut qid);
                    let mut qp = Vec::new();
                    aero_io::meta::json_to_msgpack(&json!({"ggml_type": id}), &mut qp);
                    extras.push(("quant_id".to_string(), qid));
                    extras.push(("quant_params".to_string(), qp));
                    quant_id = Some(q as u64);
                    DType::Packed
                }
            };
            out.push(aero_io::TensorInfo {
                name: t.name.clone(),
                dtype,
                shape: t.shape(),
                shard_id: 0,
                data_off: start,
                data_len: t.size,
                flags: 0,
                hash_b3: None,
                quant_id,
                extras,
            });
        }
        Ok(out)
    }

    /// The byte source the tensors are read from.
    pub(crate) fn source(&self) -> &aero_io::Source {
        &self.src
    }

    /// Tensor specs sorted by name, reading straight from the mapping.
    pub fn specs<'s>(&'s self, progress: &'s crate::Progress<'s>) -> Result<Vec<TensorSpec<'s>>> {
        crate::mapped_specs(
            self.src.as_source_ref(),
            &self.path,
            self.tensor_infos()?,
            progress,
        )
    }
}

import_entry_points!("GGUF");

impl Input {
    /// Refuses what must not reach the writer (see [`crate::ImportInput::check`]).
    fn check_import(&self, base: &WriteOptions) -> Result<()> {
        if self.header.tensors.is_empty() {
            return Err(ConvertError::NoTensors {
                path: self.path.clone(),
                format: "GGUF",
            });
        }
        if base.layout == aero_io::write::Layout::Reference {
            return Err(ConvertError::unsupported(
                &self.path,
                None,
                REFERENCE_LAYOUT_REFUSED,
            ));
        }
        Ok(())
    }
}

/// The GGUF key/values kept in MJSN `gguf` (`g` is that object), typed, in
/// file order; the error names the malformed entry.
pub(crate) fn kept_key_values(g: &Value) -> std::result::Result<Vec<(String, GgufValue)>, String> {
    let mut kv = Vec::new();
    for e in g
        .get("metadata")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(k), Some(t)) = (
            e.get(0).and_then(Value::as_str),
            e.get(1).and_then(Value::as_str).and_then(type_from_name),
        ) else {
            return Err(format!("MJSN gguf.metadata entry {e} is malformed"));
        };
        let v = e
            .get(2)
            .and_then(|v| value_from_json(t, v))
            .ok_or_else(|| format!("MJSN gguf value for '{k}' is malformed"))?;
        kv.push((k.to_owned(), v));
    }
    Ok(kv)
}

/// Why `--layout reference` is refused for GGUF input.
const REFERENCE_LAYOUT_REFUSED: &str = "--layout reference is byte-identical to the reference only for safetensors input: the reference GGUF converter writes gap-derived sizes and GGUF-order shapes and loses the key/values (spec §16.5); use --layout aligned";

export_entry_points!(
    /// Writes an AERO file as GGUF, atomically, verifying every tensor as it is
    /// copied (see [`aero_io::copy_tensors`]). Key/values, version, alignment and tensor
    /// order come from MJSN `gguf` when the file was converted from GGUF;
    /// otherwise a minimal header is made (`general.architecture`,
    /// `general.name`, alignment 32, TIDX order).
);

/// The body of [`export_with`]: `f` is the opened, checked `input`.
fn export_checked(
    f: AeroFile,
    input: &Path,
    output: &Path,
    opts: &aero_io::CopyOptions<'_>,
) -> Result<u64> {
    let idx = f.index()?;
    let meta = f.meta_json()?.unwrap_or(Value::Null);
    let bad = |why: String| ConvertError::unsupported(input, None, why);
    let (version, alignment, metadata, order) = match meta.get(GGUF_KEY) {
        Some(g) => {
            let version = g.get("version").and_then(Value::as_u64).unwrap_or(3) as u32;
            let alignment = g
                .get("alignment")
                .and_then(Value::as_u64)
                .unwrap_or(gguf::DEFAULT_ALIGNMENT);
            let kv = kept_key_values(g).map_err(bad)?;
            let order: Vec<String> = g
                .get("tensor_order")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            (version, alignment, kv, order)
        }
        None => {
            let (name, arch) = f.model();
            let kv = vec![
                (
                    "general.architecture".to_owned(),
                    GgufValue::String(arch.unwrap_or_else(|| "unknown".into()).into_bytes()),
                ),
                (
                    "general.name".to_owned(),
                    GgufValue::String(name.unwrap_or_else(|| "converted".into()).into_bytes()),
                ),
            ];
            (3, gguf::DEFAULT_ALIGNMENT, kv, Vec::new())
        }
    };
    // Tensors in the original order, then any the order does not mention.
    let mut tensors: Vec<&aero_io::TensorInfo> = order.iter().filter_map(|n| idx.get(n)).collect();
    let listed: std::collections::HashSet<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    tensors.extend(
        idx.tensors()
            .iter()
            .filter(|t| !listed.contains(t.name.as_str())),
    );
    // A reference GGUF-origin file stores `ne` order and padded lengths:
    // aero_io's rule gives the dims and the tensor's own bytes.
    let order = f.shape_order();
    let mut infos = Vec::with_capacity(tensors.len());
    let mut off = 0u64;
    for t in &tensors {
        let bad_t = |why: String| ConvertError::unsupported(input, Some(&t.name), why);
        let ty = gguf_type_of(t).map_err(bad_t)?;
        let dims = gguf_dims(t, order);
        let size = ty.tensor_bytes(&dims).ok_or_else(|| {
            bad_t(format!(
                "shape {:?} does not fit {}",
                t.row_major_shape(order),
                ty.name
            ))
        })?;
        if size != f.tensor_len(t) {
            return Err(bad_t(format!(
                "{} × {:?} is {size} bytes, stored {}",
                ty.name,
                t.row_major_shape(order),
                t.data_len
            )));
        }
        off = off.div_ceil(alignment) * alignment;
        infos.push(GgufTensorInfo {
            name: t.name.clone(),
            dims,
            ggml_type: ty,
            offset: off,
            size,
        });
        off += size;
    }
    let header = GgufHeader {
        version,
        metadata,
        tensors: infos,
        alignment,
        header_len: 0,
        data_offset: 0,
    };
    let mut head = Vec::new();
    let data_start =
        gguf::write_header(&header, &mut head).map_err(|source| ConvertError::Gguf {
            path: output.to_path_buf(),
            source,
        })?;
    // The data section is padded to the alignment, as gguf-py does.
    let end = off.div_ceil(alignment) * alignment;
    let total = data_start + end;
    let mut out = aero_io::output::Output::create(output)?;
    let io = |e| ConvertError::io(output, e);
    {
        let file = out.file();
        file.write_all(&head).map_err(io)?;
        let placements: Vec<aero_io::Placement<'_>> = tensors
            .iter()
            .zip(&header.tensors)
            .map(|(t, info)| aero_io::Placement::new(&f, t, data_start + info.offset))
            .collect();
        aero_io::copy_tensors(&f, &placements, file, output, opts)?;
        // Alignment gaps are holes of zeros; this also writes the tail padding.
        file.set_len(total).map_err(io)?;
    }
    out.commit(opts.durable)?;
    Ok(total)
}

/// What [`export`] needs from an AERO file before it writes a byte: a
/// kept `gguf.alignment` that is a power of two of at most
/// [`gguf::MAX_ALIGNMENT`] (0 once divided by zero, 2^31 once made a 4 GiB
/// file out of 628 bytes), a kept version of 2 or 3, and every tensor's
/// `data_len` equal to what its ggml type and shape imply
/// ([`GgmlType::tensor_bytes`]; in a reference GGUF-origin file the shape
/// is read in GGUF order and the alignment padding left out, see
/// [`aero_io::ShapeOrder`]). An error names the file and the tensor.
pub fn check_exportable(f: &AeroFile) -> Result<()> {
    let bad = |why: String| ConvertError::unsupported(f.path(), None, why);
    let meta = f.meta_json()?.unwrap_or(Value::Null);
    if let Some(g) = meta.get(GGUF_KEY) {
        match g.get("alignment") {
            None => {}
            Some(a) => match a.as_u64() {
                Some(a) if gguf::valid_alignment(a) => {}
                _ => {
                    return Err(bad(format!(
                        "MJSN gguf.alignment {a} is not a power of two of at most {}",
                        gguf::MAX_ALIGNMENT
                    )));
                }
            },
        }
        if let Some(v) = g.get("version")
            && !matches!(v.as_u64(), Some(2 | 3))
        {
            return Err(bad(format!("MJSN gguf.version {v} is not 2 or 3")));
        }
    }
    let order = f.shape_order();
    for t in f.index()?.tensors() {
        let bad_t = |why: String| ConvertError::unsupported(f.path(), Some(&t.name), why);
        let ty = gguf_type_of(t).map_err(bad_t)?;
        let shape = t.row_major_shape(order);
        match ty.tensor_bytes(&gguf_dims(t, order)) {
            Some(n) if n == t.tensor_len(order) => {}
            Some(n) => {
                return Err(bad_t(format!(
                    "{} × {shape:?} is {n} bytes, stored {}",
                    ty.name, t.data_len
                )));
            }
            None => {
                return Err(bad_t(format!("shape {shape:?} does not fit {}", ty.name)));
            }
        }
    }
    Ok(())
}

/// A tensor's GGUF `ne` (innermost dimension first; `[1]` for a scalar).
fn gguf_dims(t: &aero_io::TensorInfo, order: aero_io::ShapeOrder) -> Vec<u64> {
    if t.shape.is_empty() {
        vec![1]
    } else {
        t.gguf_dims(order)
    }
}

/// The GGUF type a tensor is written as: its `quant_params.ggml_type` when
/// packed, else the type of its dtype; its rank must fit GGUF. The error
/// says what is wrong (the caller adds the file and the tensor).
fn gguf_type_of(t: &aero_io::TensorInfo) -> std::result::Result<GgmlType, String> {
    let id = match t.dtype {
        DType::Packed => t
            .extras_json()
            .get("quant_params")
            .and_then(|q| q.get("ggml_type"))
            .and_then(Value::as_u64)
            .and_then(|x| u32::try_from(x).ok()),
        d => ggml_of(d),
    }
    .ok_or_else(|| format!("{} has no GGUF type", t.dtype))?;
    let ty = GgmlType::from_id(id).ok_or_else(|| format!("unknown ggml type {id}"))?;
    if t.shape.len() > gguf::MAX_DIMS as usize {
        return Err(format!(
            "rank {} (GGUF allows {})",
            t.shape.len(),
            gguf::MAX_DIMS
        ));
    }
    Ok(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_round_trip_through_json() {
        let vals = vec![
            GgufValue::U8(7),
            GgufValue::I8(-3),
            GgufValue::F32(f32::NAN),
            GgufValue::F32(0.1),
            GgufValue::F64(f64::INFINITY),
            GgufValue::String(vec![0xff, 0x00, b'a']),
            GgufValue::String(b"hello".to_vec()),
            GgufValue::Array(GgufArray::new(
                GgufValueType::Array,
                vec![GgufValue::Array(GgufArray::new(
                    GgufValueType::I64,
                    vec![GgufValue::I64(-1)],
                ))],
            )),
        ];
        for v in vals {
            let j = value_json(&v);
            let back = value_from_json(v.value_type(), &j).unwrap();
            match (&v, &back) {
                (GgufValue::F32(a), GgufValue::F32(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                _ => assert_eq!(v, back),
            }
        }
    }
}
