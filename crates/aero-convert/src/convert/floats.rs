//! A tensor's values in one float format (f32, f16 or bf16), and a whole
//! file or set written as a float safetensors checkpoint: what `extract
//! --as` and `export-safetensors --dequantize` do. Dequantizing a whole
//! file applies to floats and packed tensors; integer and boolean tensors
//! (`position_ids`, masks) keep their dtype ([`keeps_dtype`]).
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
use aero_io::TensorView;

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

/// The ggml type aero_quant widens or narrows `stored` values with.
fn ggml_float(name: &str, stored: FloatType) -> Result<GgmlType, StateDictError> {
    match stored {
        FloatType::F32 => GgmlType::from_name("F32"),
        FloatType::F16 => GgmlType::from_name("F16"),
    }
    .ok_or_else(|| StateDictError::Unsupported {
        name: name.to_owned(),
        reason: "the ggml type table lacks F32/F16".into(),
    })
}

/// `elements` as a length on this platform.
fn length(name: &str, elements: u64) -> Result<usize, StateDictError> {
    usize::try_from(elements).map_err(|_| StateDictError::Unsupported {
        name: name.to_owned(),
        reason: "too large for this platform's address space".into(),
    })
}

/// The values a state dict handed out, as f32: converted values are moved,
/// stored ones decoded straight into the result (one copy, no bytes in
/// between).
pub fn f32_values(
    name: &str,
    data: FloatData<'_>,
    stored: FloatType,
    elements: u64,
) -> Result<Vec<f32>, StateDictError> {
    let data = match (data, stored) {
        (FloatData::F32(v), FloatType::F32) if v.len() as u64 == elements => return Ok(v),
        (data, _) => data,
    };
    let ty = ggml_float(name, stored)?;
    let mut out = vec![0f32; length(name, elements)?];
    aero_quant::par_dequantize(ty, &le_bytes(&data), elements, &mut out).map_err(|source| {
        StateDictError::Quant {
            name: name.to_owned(),
            source,
        }
    })?;
    Ok(out)
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
    let ty = ggml_float(name, stored)?;
    let src = le_bytes(data);
    let quant = |source| StateDictError::Quant {
        name: name.to_owned(),
        source,
    };
    let n = length(name, elements)?;
    Ok(match fmt {
        FloatFormat::F32 if stored == FloatType::F32 => src.into_owned(),
        FloatFormat::F32 => {
            let mut out = vec![0f32; n];
            aero_quant::par_dequantize(ty, &src, elements, &mut out).map_err(quant)?;
            le_f32(&out).into_owned()
        }
        FloatFormat::F16 if stored == FloatType::F16 => src.into_owned(),
        FloatFormat::F16 | FloatFormat::BF16 => {
            let mut out = vec![0u16; n];
            if fmt == FloatFormat::F16 {
                aero_quant::par_dequantize_f16(ty, &src, elements, &mut out).map_err(quant)?;
            } else {
                aero_quant::par_dequantize_bf16(ty, &src, elements, &mut out).map_err(quant)?;
            }
            le_u16(&out).into_owned()
        }
    })
}

/// f32 values as little-endian bytes (a borrow on little-endian hosts).
fn le_f32(v: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(v))
    } else {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

/// u16 values (f16/bf16 bits) as little-endian bytes.
fn le_u16(v: &[u16]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(v))
    } else {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

/// Output bytes per piece when values are streamed: large enough that
/// rayon spreads a piece over every core (64 KiB of input per task), small
/// enough that the buffer stays in cache and memory stays flat whatever the
/// tensor's size (16 MiB pieces went out to RAM: same CPU time, lower core
/// use, measured with `perf stat` on the 1 GiB Q4_K bench tensor).
const PIECE: u64 = 2 << 20;

/// Writes one tensor's values (by its name in the file) as `fmt`,
/// little-endian, to `w` — what `extract --as` does. The tensor's bytes are
/// verified first (as [`tensor_bytes`]); then they are dequantized or
/// converted in pieces of about 2 MiB of output, each spread over every
/// core, so memory stays at one piece (plus the verified input, which is
/// the file's own mapping for a local file) whatever the tensor's size.
/// Tensors whose rows are reordered (llama.cpp's Q/K permutation) or that
/// are converted whole (unsigned integers) are encoded in one piece.
/// `out_path` names `w` in errors; `progress` is told the bytes written.
/// Returns the number of bytes written.
pub fn write_tensor(
    src: &dyn TensorSource,
    name: &str,
    fmt: FloatFormat,
    w: &mut dyn Write,
    out_path: &Path,
    progress: &dyn Fn(u64),
) -> Result<u64> {
    write_tensor_in_pieces(src, name, fmt, PIECE, w, out_path, progress)
}

/// [`write_tensor`] with pieces of about `piece` output bytes (at least
/// one block each) instead of 2 MiB: for tuning, and for tests that cross
/// piece boundaries with small tensors.
pub fn write_tensor_in_pieces(
    src: &dyn TensorSource,
    name: &str,
    fmt: FloatFormat,
    piece: u64,
    w: &mut dyn Write,
    out_path: &Path,
    progress: &dyn Fn(u64),
) -> Result<u64> {
    let sd = StateDict::plan_one(src, name)?;
    write_entry(&sd, src, 0, fmt, piece, w, out_path, progress)
}

/// The verified stored bytes of entry `i` and the ggml type they decode
/// as, block by block, with the number of bytes to use (checked to be
/// exactly the elements' blocks); `None` for entries decoded whole (rows
/// reordered, unsigned integers).
fn blocks_of<'a>(
    sd: &StateDict,
    src: &'a dyn TensorSource,
    i: usize,
) -> Result<Option<(TensorView<'a>, GgmlType, usize)>, StateDictError> {
    let e = sd.entry(i)?;
    let ty = match (e.unpermute_heads(), e.block_type()) {
        (None, Some(ty)) => ty,
        _ => return Ok(None),
    };
    let view = src.verified(&e.source)?;
    let want = aero_quant::packed_len(ty, e.elements).map_err(|source| StateDictError::Quant {
        name: e.source.clone(),
        source,
    })?;
    let used = usize::try_from(e.used_len()).unwrap_or(usize::MAX);
    if want != e.used_len() || used > view.bytes().len() {
        return Err(StateDictError::Invalid {
            name: e.source.clone(),
            reason: format!(
                "{} bytes stored, {} used, {want} for {} {} elements",
                view.bytes().len(),
                e.used_len(),
                e.elements,
                ty.name
            ),
        });
    }
    Ok(Some((view, ty, used)))
}

/// A tensor's values as f32, a piece at a time (for comparing two tensors
/// with bounded memory, as `diff --numeric` does): verified first, then
/// decoded block by block; tensors decoded whole come as one piece.
pub struct F32Pieces<'a> {
    state: PiecesState<'a>,
    /// Elements in all.
    pub elements: u64,
}

enum PiecesState<'a> {
    Whole(Option<Vec<f32>>),
    Blocks {
        view: TensorView<'a>,
        ty: GgmlType,
        used: usize,
        at: usize,
        done: u64,
        blocks: u64,
        name: String,
    },
}

impl<'a> F32Pieces<'a> {
    /// The values of tensor `name` (its name in the file), in pieces of
    /// about `piece` bytes of f32.
    pub fn new(src: &'a dyn TensorSource, name: &str, piece: u64) -> Result<Self, StateDictError> {
        let sd = StateDict::plan_one(src, name)?;
        let e = sd
            .entries()
            .first()
            .ok_or_else(|| StateDictError::NotFound {
                name: name.to_owned(),
                suggestions: Vec::new(),
            })?;
        let elements = e.elements;
        let state = match blocks_of(&sd, src, 0)? {
            Some((view, ty, used)) => PiecesState::Blocks {
                view,
                ty,
                used,
                at: 0,
                done: 0,
                blocks: (piece / ty.block_elems.saturating_mul(4).max(1)).max(1),
                name: e.source.clone(),
            },
            None => {
                let data = sd.load(src, 0)?;
                PiecesState::Whole(Some(f32_values(&e.source, data, e.dtype, e.elements)?))
            }
        };
        Ok(F32Pieces { state, elements })
    }

    /// Replaces `buf` with the next piece; `false` when there is none.
    pub fn next_into(&mut self, buf: &mut Vec<f32>) -> Result<bool, StateDictError> {
        match &mut self.state {
            PiecesState::Whole(v) => match v.take() {
                Some(v) => {
                    *buf = v;
                    Ok(true)
                }
                None => Ok(false),
            },
            PiecesState::Blocks {
                view,
                ty,
                used,
                at,
                done,
                blocks,
                name,
            } => {
                if *at >= *used {
                    return Ok(false);
                }
                let len = usize::try_from(blocks.saturating_mul(ty.block_bytes))
                    .unwrap_or(usize::MAX)
                    .min(*used - *at);
                let chunk = &view.bytes()[*at..*at + len];
                let n = self
                    .elements
                    .saturating_sub(*done)
                    .min(blocks.saturating_mul(ty.block_elems));
                buf.resize(usize::try_from(n).unwrap_or(0), 0.0);
                aero_quant::par_dequantize(*ty, chunk, n, buf).map_err(|source| {
                    StateDictError::Quant {
                        name: name.clone(),
                        source,
                    }
                })?;
                *at += len;
                *done += n;
                Ok(true)
            }
        }
    }
}

/// [`write_tensor`] for entry `i` of a planned state dict.
#[allow(clippy::too_many_arguments)]
fn write_entry(
    sd: &StateDict,
    src: &dyn TensorSource,
    i: usize,
    fmt: FloatFormat,
    piece: u64,
    w: &mut dyn Write,
    out_path: &Path,
    progress: &dyn Fn(u64),
) -> Result<u64> {
    let io = |e| ConvertError::io(out_path, e);
    let e = sd.entry(i)?;
    let Some((view, ty, used)) = blocks_of(sd, src, i)? else {
        let data = sd.load(src, i)?;
        let bytes = encode(&e.source, &data, e.dtype, e.elements, fmt)?;
        w.write_all(&bytes).map_err(io)?;
        progress(bytes.len() as u64);
        return Ok(bytes.len() as u64);
    };
    let stored = &view.bytes()[..used];
    let quant = |source| StateDictError::Quant {
        name: e.source.clone(),
        source,
    };
    let same = matches!(
        (ty.name, fmt),
        ("F32", FloatFormat::F32) | ("F16", FloatFormat::F16) | ("BF16", FloatFormat::BF16)
    );
    let mut written = 0u64;
    if same {
        for part in stored.chunks(usize::try_from(piece.max(1)).unwrap_or(usize::MAX)) {
            w.write_all(part).map_err(io)?;
            progress(part.len() as u64);
            written += part.len() as u64;
        }
        return Ok(written);
    }
    let (be, bb) = (ty.block_elems, ty.block_bytes);
    let blocks = (piece / be.saturating_mul(fmt.size()).max(1)).max(1);
    let piece_elems = usize::try_from(blocks.saturating_mul(be)).unwrap_or(usize::MAX);
    let mut f32s: Vec<f32> = Vec::new();
    let mut u16s: Vec<u16> = Vec::new();
    let mut done = 0u64;
    for chunk in stored.chunks(usize::try_from(blocks.saturating_mul(bb)).unwrap_or(usize::MAX)) {
        let n = e
            .elements
            .saturating_sub(done)
            .min(blocks.saturating_mul(be));
        let k = usize::try_from(n).unwrap_or(piece_elems);
        let bytes = match fmt {
            FloatFormat::F32 => {
                f32s.resize(k, 0.0);
                aero_quant::par_dequantize(ty, chunk, n, &mut f32s[..k]).map_err(quant)?;
                le_f32(&f32s[..k])
            }
            FloatFormat::F16 => {
                u16s.resize(k, 0);
                aero_quant::par_dequantize_f16(ty, chunk, n, &mut u16s[..k]).map_err(quant)?;
                le_u16(&u16s[..k])
            }
            FloatFormat::BF16 => {
                u16s.resize(k, 0);
                aero_quant::par_dequantize_bf16(ty, chunk, n, &mut u16s[..k]).map_err(quant)?;
                le_u16(&u16s[..k])
            }
        };
        w.write_all(&bytes).map_err(io)?;
        progress(bytes.len() as u64);
        written += bytes.len() as u64;
        done += n;
    }
    Ok(written)
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

/// Whether a stored dtype is an integer or boolean type: kept as it is by
/// [`export_safetensors`] (dequantizing applies to floats and packed
/// tensors only; `position_ids` must stay `I64`).
pub fn keeps_dtype(d: aero_io::DType) -> bool {
    use aero_io::DType as D;
    matches!(
        d,
        D::I8 | D::U8 | D::I16 | D::U16 | D::I32 | D::U32 | D::I64 | D::U64 | D::Bool
    )
}

/// Writes every tensor of `src` as a safetensors file at `output`:
/// floats and packed tensors as `fmt` values, integer and boolean tensors
/// with their own dtype and bytes ([`keeps_dtype`]; verified all the same),
/// through [`aero_io::output::Output`] (a temporary renamed into
/// place; nothing appears on error). Tensors keep their names (no name
/// mapping) and are laid out in name order; `__metadata__` holds the
/// model name and architecture from MJSN when present and
/// `"format": "pt"`. Memory: one piece of values at a time (see
/// [`write_tensor`]).
/// `progress` is told each tensor's output bytes. Returns the file size.
pub fn export_safetensors(
    src: &dyn TensorSource,
    output: &Path,
    fmt: FloatFormat,
    durable: bool,
    progress: &dyn Fn(u64),
) -> Result<u64> {
    src.refuse_as_output(output)?;
    let sd = StateDict::plan(
        src,
        &StateDictOptions {
            gguf_name_mapping: false,
        },
    )
    .map_err(ConvertError::from)?;
    let idx = src.tensor_index().map_err(ConvertError::from)?;
    // The stored dtype of entries kept as they are.
    let kept: Vec<Option<aero_io::DType>> = sd
        .entries()
        .iter()
        .map(|e| {
            idx.get(&e.source)
                .map(|t| t.dtype)
                .filter(|d| keeps_dtype(*d))
        })
        .collect();
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
        let too_large =
            || ConvertError::unsupported(output, Some(&e.name), "too large for a safetensors file");
        let (dtype, shape, len) = match kept[i] {
            Some(d) => {
                let t = idx.get(&e.source).ok_or_else(too_large)?;
                let name = crate::safetensors::safetensors_name(d).ok_or_else(too_large)?;
                (
                    name,
                    t.shape.clone(),
                    d.byte_len(e.elements).ok_or_else(too_large)?,
                )
            }
            None => (
                fmt.safetensors_name(),
                e.shape.clone(),
                e.elements.checked_mul(fmt.size()).ok_or_else(too_large)?,
            ),
        };
        header.insert(
            e.name.clone(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + len]}),
        );
        off += len;
    }
    let mut hb = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| ConvertError::unsupported(output, None, format!("safetensors header: {e}")))?;
    hb.resize(hb.len().div_ceil(8) * 8, b' ');
    let total = 8 + hb.len() as u64 + off;
    let mut out = aero_io::output::Output::create(output)?;
    let io = |e| ConvertError::io(output, e);
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, out.file());
        w.write_all(&(hb.len() as u64).to_le_bytes()).map_err(io)?;
        w.write_all(&hb).map_err(io)?;
        for &i in &order {
            if kept[i].is_some() {
                let e = &sd.entries()[i];
                let view = src.verified(&e.source).map_err(ConvertError::from)?;
                let want = kept[i].and_then(|d| d.byte_len(e.elements));
                if want != Some(view.bytes().len() as u64) {
                    return Err(ConvertError::unsupported(
                        output,
                        Some(&e.name),
                        format!(
                            "{} bytes stored for {} elements",
                            view.bytes().len(),
                            e.elements
                        ),
                    ));
                }
                w.write_all(view.bytes()).map_err(io)?;
                progress(view.bytes().len() as u64);
                continue;
            }
            write_entry(&sd, src, i, fmt, PIECE, &mut w, output, progress)?;
        }
        w.flush().map_err(io)?;
    }
    out.commit(durable)?;
    Ok(total)
}
