//! A tensor's values in one float format (f32, f16 or bf16), and a whole
//! file or set written as a float safetensors checkpoint: what `extract
//! --as` and `export-safetensors --dequantize` do.
//!
//! Values come from the [`state_dict`](crate::state_dict) (verified bytes;
//! packed GGUF tensors dequantized bit for bit as gguf-py does; shapes of
//! reference-converter files reversed), then are narrowed with
//! `aero_quant`'s round-to-nearest-even (f16 as numpy's `astype(float16)`,
//! bf16 as ggml's `fp32_to_bf16`). Output bytes are little-endian.
//!
//! ```no_run
//! use aero_convert::floats::{tensor_bytes, FloatFormat};
//! let f = aero_io::AeroFile::open("model.aero")?;
//! let bf16: Vec<u8> = tensor_bytes(&f, "blk.0.attn_q.weight", FloatFormat::BF16)?;
//! # Ok::<(), aero_convert::state_dict::StateDictError>(())
//! ```

use std::io::Write;
use std::path::Path;

use aero_format::GgmlType;
use serde_json::{Map, Value, json};

use crate::state_dict::{
    FloatData, FloatType, StateDict, StateDictError, StateDictOptions, TensorSource,
};
use crate::{ConvertError, Result};

/// A float format values are handed out in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FloatFormat {
    /// IEEE single.
    F32,
    /// IEEE half (round to nearest even).
    F16,
    /// bfloat16 (round to nearest even).
    BF16,
}

impl FloatFormat {
    /// Bytes per value.
    pub fn size(self) -> u64 {
        match self {
            FloatFormat::F32 => 4,
            FloatFormat::F16 | FloatFormat::BF16 => 2,
        }
    }

    /// The safetensors dtype name (`F32`, `F16`, `BF16`).
    pub fn safetensors_name(self) -> &'static str {
        match self {
            FloatFormat::F32 => "F32",
            FloatFormat::F16 => "F16",
            FloatFormat::BF16 => "BF16",
        }
    }
}

/// Converts the values a state dict handed out to `fmt`, little-endian.
pub fn encode(
    name: &str,
    data: &FloatData<'_>,
    stored: FloatType,
    elements: u64,
    fmt: FloatFormat,
) -> Result<Vec<u8>, StateDictError> {
    // aero_quant treats F32 and F16 as ggml types: widening and narrowing
    // through it use the same rounding as its dequantizers.
    let ty = match stored {
        FloatType::F32 => GgmlType::from_name("F32"),
        FloatType::F16 => GgmlType::from_name("F16"),
    }
    .ok_or_else(|| StateDictError::Unsupported {
        name: name.to_owned(),
        reason: "the ggml type table lacks F32/F16".into(),
    })?;
    let src = le_bytes(data);
    let quant = |source| StateDictError::Quant {
        name: name.to_owned(),
        source,
    };
    let n = usize::try_from(elements).map_err(|_| StateDictError::Unsupported {
        name: name.to_owned(),
        reason: "too large for this platform's address space".into(),
    })?;
    Ok(match fmt {
        FloatFormat::F32 if stored == FloatType::F32 => src.into_owned(),
        FloatFormat::F32 => {
            let mut out = vec![0f32; n];
            aero_quant::par_dequantize(ty, &src, elements, &mut out).map_err(quant)?;
            out.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        FloatFormat::F16 if stored == FloatType::F16 => src.into_owned(),
        FloatFormat::F16 | FloatFormat::BF16 => {
            let mut out = vec![0u16; n];
            if fmt == FloatFormat::F16 {
                aero_quant::par_dequantize_f16(ty, &src, elements, &mut out).map_err(quant)?;
            } else {
                aero_quant::par_dequantize_bf16(ty, &src, elements, &mut out).map_err(quant)?;
            }
            out.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
    })
}

/// The values as little-endian bytes (a borrow on little-endian hosts).
fn le_bytes<'a>(data: &'a FloatData<'_>) -> std::borrow::Cow<'a, [u8]> {
    if cfg!(target_endian = "little") {
        return std::borrow::Cow::Borrowed(data.bytes());
    }
    match data {
        FloatData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        FloatData::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        // Stored bytes are the file's, little-endian already.
        FloatData::Stored(s) => std::borrow::Cow::Borrowed(s.bytes()),
    }
}

/// One tensor (by its name in the file) as `fmt` values, little-endian:
/// verified, dequantized when packed, converted when another dtype.
pub fn tensor_bytes(
    src: &dyn TensorSource,
    name: &str,
    fmt: FloatFormat,
) -> Result<Vec<u8>, StateDictError> {
    let sd = StateDict::plan_one(src, name)?;
    let e = sd
        .entries()
        .first()
        .ok_or_else(|| StateDictError::Invalid {
            name: name.to_owned(),
            reason: "no such tensor".into(),
        })?;
    let data = sd.load(src, 0)?;
    encode(name, &data, e.dtype, e.elements, fmt)
}

/// Writes every tensor of `src` as a safetensors file of `fmt` values at
/// `output`, through [`aero_io::output::Output`] (a temporary renamed into
/// place; nothing appears on error). Tensors keep their names (no name
/// mapping) and are laid out in name order; `__metadata__` holds the
/// model name and architecture from MJSN when present and
/// `"format": "pt"`. Memory: one tensor's values at a time.
/// `progress` is told each tensor's output bytes. Returns the file size.
pub fn export_safetensors(
    src: &dyn TensorSource,
    output: &Path,
    fmt: FloatFormat,
    durable: bool,
    progress: &dyn Fn(u64),
) -> Result<u64> {
    let sd = StateDict::plan(
        src,
        &StateDictOptions {
            gguf_name_mapping: false,
        },
    )
    .map_err(ConvertError::from)?;
    let mut order: Vec<usize> = (0..sd.entries().len()).collect();
    order.sort_by(|&a, &b| sd.entries()[a].name.cmp(&sd.entries()[b].name));
    let mut header = Map::new();
    let mut meta = Map::new();
    meta.insert("format".into(), json!("pt"));
    if let Some(m) = src.meta().map_err(ConvertError::from)? {
        for k in ["model_name", "architecture"] {
            if let Some(v) = m.get(k).and_then(Value::as_str) {
                meta.insert(k.into(), json!(v));
            }
        }
    }
    header.insert("__metadata__".into(), Value::Object(meta));
    let mut off = 0u64;
    for &i in &order {
        let e = &sd.entries()[i];
        let len = e.elements.checked_mul(fmt.size()).ok_or_else(|| {
            ConvertError::Unsupported(format!("tensor '{}' is too large", e.name))
        })?;
        header.insert(
            e.name.clone(),
            json!({"dtype": fmt.safetensors_name(), "shape": e.shape, "data_offsets": [off, off + len]}),
        );
        off += len;
    }
    let mut hb = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| ConvertError::Unsupported(e.to_string()))?;
    hb.resize(hb.len().div_ceil(8) * 8, b' ');
    let total = 8 + hb.len() as u64 + off;
    let mut out = aero_io::output::Output::create(output)?;
    let io = |e| ConvertError::io(output, e);
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, out.file());
        w.write_all(&(hb.len() as u64).to_le_bytes()).map_err(io)?;
        w.write_all(&hb).map_err(io)?;
        for &i in &order {
            let e = &sd.entries()[i];
            let data = sd.load(src, i).map_err(ConvertError::from)?;
            let bytes =
                encode(&e.source, &data, e.dtype, e.elements, fmt).map_err(ConvertError::from)?;
            w.write_all(&bytes).map_err(io)?;
            progress(bytes.len() as u64);
        }
        w.flush().map_err(io)?;
    }
    out.commit(durable)?;
    Ok(total)
}
