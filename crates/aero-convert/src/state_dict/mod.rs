//! Every tensor of an AERO file or set as floats — what a framework's
//! `load_state_dict` wants — with llama-family GGUF names optionally mapped
//! to Hugging Face names and llama.cpp's Q/K row permutation undone.
//!
//! - f32 and f16 tensors are kept (zero-copy from the file's mapping when
//!   their bytes are aligned for the element type);
//! - bf16, f64 and every integer and bool dtype become f32 (integers rounded
//!   to nearest, ties to even; bool is 0.0 / 1.0);
//! - packed tensors converted from GGUF (`quant_params.ggml_type`) are
//!   dequantized to f32 with `aero_quant`, bit for bit what gguf-py gives.
//!
//! The llama-family naming and the Q/K permutation are in `llama.rs`.
//!
//! Every tensor's bytes are verified first (the strongest hash the file
//! records, see docs/VERIFICATION.md).
//!
//! Shapes are row-major, innermost dimension last, as this project writes
//! them. Files from the reference GGUF converter store GGUF order (spec §15)
//! and are recognised by [`aero_io::ShapeOrder::of_meta`] (MJSN says
//! `"source_format": "gguf"` but has no `gguf` key: our converter always
//! writes it; the reference loses the key/values). Their shapes are
//! reversed, and the alignment padding their tensors may carry (spec §16.5,
//! [`aero_io::LenCheck::Padded`]) is left out.
//!
//! ```no_run
//! use aero_convert::state_dict::{StateDict, StateDictOptions};
//! let f = aero_io::AeroFile::open("model.aero")?;
//! let sd = StateDict::plan(&f, &StateDictOptions { gguf_name_mapping: true })?;
//! for (i, e) in sd.entries().iter().enumerate() {
//!     let t = sd.load(&f, i)?;
//!     println!("{} {:?} {:?} {} bytes", e.name, e.dtype, e.shape, t.bytes().len());
//! }
//! # Ok::<(), aero_convert::state_dict::StateDictError>(())
//! ```

use std::collections::HashSet;

use aero_format::{DType, GgmlType};
use aero_io::{AeroFile, LenCheck, ShapeOrder, TensorIndex, TensorInfo, TensorView};
use serde_json::Value;

mod llama;

use llama::{HeadCounts, qk_tensor};
pub use llama::{hf_name, unpermute_rows};

/// Why a state dict could not be planned or a tensor loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateDictError {
    /// Reading or verifying the file failed.
    #[error(transparent)]
    Aero(#[from] aero_io::Error),
    /// Reading or verifying a set failed.
    #[error(transparent)]
    Set(#[from] aero_set::SetError),
    /// Dequantizing failed (sizes that do not fit the type).
    #[error("tensor '{name}': {source}")]
    Quant {
        /// The tensor (its name in the file).
        name: String,
        /// What aero-quant said.
        #[source]
        source: aero_quant::QuantError,
    },
    /// The tensor cannot be expressed as floats (e.g. FP8 kept packed from
    /// safetensors, or a ggml type aero-quant does not decode).
    #[error("tensor '{name}': {reason}")]
    Unsupported {
        /// The tensor.
        name: String,
        /// Which dtype or ggml type, and why it has no float form. Free
        /// text: a caller skips or refuses the tensor; the variant says so.
        reason: String,
    },
    /// No tensor of that name.
    #[error(
        "no tensor named '{name}'{}",
        aero_io::names::did_you_mean(suggestions)
    )]
    NotFound {
        /// The name asked for.
        name: String,
        /// The closest names the input has ([`aero_io::names::nearest`]).
        suggestions: Vec<String>,
    },
    /// The tensor's entry is inconsistent (length against dtype and shape,
    /// a Q/K shape the head count does not divide, two tensors mapped to
    /// one name).
    #[error("tensor '{name}': {reason}")]
    Invalid {
        /// The tensor.
        name: String,
        /// Which of the listed inconsistencies, with the numbers. Free text:
        /// all of them mean "this entry is damaged" to a caller.
        reason: String,
    },
}

impl StateDictError {
    /// Whether the error says a file's content is damaged or inconsistent
    /// (the CLI exits 1), rather than unsupported or an I/O failure.
    pub fn is_invalid_data(&self) -> bool {
        match self {
            StateDictError::Aero(e) => e.is_invalid_data(),
            StateDictError::Set(e) => e.is_invalid_data(),
            StateDictError::Quant { .. } | StateDictError::Invalid { .. } => true,
            StateDictError::Unsupported { .. } | StateDictError::NotFound { .. } => false,
        }
    }
}

/// Result alias.
pub type Result<T, E = StateDictError> = std::result::Result<T, E>;

/// What a tensor becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatType {
    /// IEEE half, as its `u16` bits.
    F16,
    /// IEEE single.
    F32,
}

impl FloatType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            FloatType::F16 => 2,
            FloatType::F32 => 4,
        }
    }
}

/// Options for [`StateDict::plan`].
#[derive(Clone, Copy, Debug, Default)]
pub struct StateDictOptions {
    /// Map llama-family GGUF names to Hugging Face names ([`hf_name`]) and
    /// undo llama.cpp's Q/K row permutation ([`unpermute_rows`]).
    pub gguf_name_mapping: bool,
}

/// Where tensors come from: an [`AeroFile`] or an [`aero_set::AeroSet`].
pub trait TensorSource {
    /// The tensor index (the global one for a set).
    fn tensor_index(&self) -> Result<&TensorIndex>;
    /// The MJSN object (the index file's for a set), if any.
    fn meta(&self) -> Result<Option<Value>>;
    /// A tensor's verified bytes (its own: [`AeroFile::tensor_len`]):
    /// checked against the strongest hash the file records for them (AERO
    /// files and sets). A format that records no hashes
    /// ([`crate::foreign::ForeignFile`]: safetensors, GGUF) hands out its
    /// bytes as stored.
    fn verified(&self, name: &str) -> Result<TensorView<'_>>;
    /// How the tensor index orders shapes ([`ShapeOrder::of_meta`] of
    /// [`TensorSource::meta`]).
    fn shape_order(&self) -> Result<ShapeOrder> {
        Ok(self
            .meta()?
            .as_ref()
            .map_or(ShapeOrder::RowMajor, ShapeOrder::of_meta))
    }
    /// The local files this source reads (a file; a set's manifest, index
    /// and parts): an output must never be one of them.
    fn local_files(&self) -> Vec<std::path::PathBuf>;
    /// Errors when `output` is one of [`TensorSource::local_files`].
    fn refuse_as_output(&self, output: &std::path::Path) -> aero_io::Result<()> {
        for p in self.local_files() {
            aero_io::output::refuse_same_file(output, &p)?;
        }
        Ok(())
    }
}

impl TensorSource for AeroFile {
    fn tensor_index(&self) -> Result<&TensorIndex> {
        Ok(self.index()?)
    }
    fn meta(&self) -> Result<Option<Value>> {
        Ok(self.meta_json()?)
    }
    fn verified(&self, name: &str) -> Result<TensorView<'_>> {
        Ok(self.tensor(name)?)
    }
    fn local_files(&self) -> Vec<std::path::PathBuf> {
        self.local_path()
            .map(std::path::Path::to_path_buf)
            .into_iter()
            .collect()
    }
}

impl TensorSource for aero_set::AeroSet {
    fn tensor_index(&self) -> Result<&TensorIndex> {
        Ok(self.index()?)
    }
    fn meta(&self) -> Result<Option<Value>> {
        // The set's index file usually has no MJSN; the first part does.
        if let Some(m) = self.index_file()?.meta_json()? {
            return Ok(Some(m));
        }
        match self.part_count() {
            0 => Ok(None),
            _ => Ok(self.part(0)?.meta_json()?),
        }
    }
    fn verified(&self, name: &str) -> Result<TensorView<'_>> {
        Ok(self.tensor(name)?)
    }
    fn local_files(&self) -> Vec<std::path::PathBuf> {
        aero_set::AeroSet::local_files(self)
    }
}

/// An opened file or set ([`aero_set::Model::open`], the opener every front
/// end uses) reads as what it holds.
impl TensorSource for aero_set::Model {
    fn tensor_index(&self) -> Result<&TensorIndex> {
        self.inner().tensor_index()
    }
    fn meta(&self) -> Result<Option<Value>> {
        self.inner().meta()
    }
    fn verified(&self, name: &str) -> Result<TensorView<'_>> {
        self.inner().verified(name)
    }
    fn local_files(&self) -> Vec<std::path::PathBuf> {
        aero_set::Model::local_files(self)
    }
}

/// The file or set inside a [`aero_set::Model`], as the trait object both
/// already are.
pub(crate) trait ModelInner {
    fn inner(&self) -> &dyn crate::hf::ModelSource;
}

impl ModelInner for aero_set::Model {
    fn inner(&self) -> &dyn crate::hf::ModelSource {
        match self {
            aero_set::Model::File(f) => f.as_ref(),
            aero_set::Model::Set(s) => s.as_ref(),
        }
    }
}

/// How a stored tensor becomes floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conversion {
    /// f32 or f16 bytes as they are.
    Keep,
    /// A dtype aero-quant decodes as a ggml type (bf16, f64, i8–i64) or a
    /// packed ggml type.
    Ggml(GgmlType),
    /// u8, u16, u32, u64, bool.
    Unsigned(DType),
}

/// One tensor of the state dict.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name handed out (mapped when asked for).
    pub name: String,
    /// The tensor's name in the file.
    pub source: String,
    /// Row-major shape, innermost dimension last.
    pub shape: Vec<u64>,
    /// What its values are.
    pub dtype: FloatType,
    /// Number of elements.
    pub elements: u64,
    conversion: Conversion,
    /// The stored bytes to use (a prefix of `data_len` for padded tensors
    /// from the reference converter).
    used_len: u64,
    /// Heads to undo llama.cpp's Q/K permutation with.
    unpermute: Option<u64>,
}

impl Entry {
    /// Bytes of the float data.
    pub fn byte_len(&self) -> u64 {
        self.elements.saturating_mul(self.dtype.size() as u64)
    }

    /// Whether llama.cpp's Q/K row permutation is undone for this tensor,
    /// and with how many heads.
    pub fn unpermute_heads(&self) -> Option<u64> {
        self.unpermute
    }

    /// The ggml type the stored bytes decode as, block by block (f32 and
    /// f16 kept as they are count as ggml's `F32`/`F16`); `None` for
    /// tensors converted whole (unsigned integers, bool).
    pub(crate) fn block_type(&self) -> Option<GgmlType> {
        match self.conversion {
            Conversion::Ggml(ty) => Some(ty),
            Conversion::Keep => GgmlType::from_name(match self.dtype {
                FloatType::F32 => "F32",
                FloatType::F16 => "F16",
            }),
            Conversion::Unsigned(_) => None,
        }
    }

    /// The stored bytes the values come from (see `used_len`).
    pub(crate) fn used_len(&self) -> u64 {
        self.used_len
    }
}

/// A tensor's float values, native-endian.
#[derive(Debug)]
pub enum FloatData<'a> {
    /// The file's own bytes, verified, aligned for the element type
    /// (zero-copy when [`TensorView::is_zero_copy`]).
    Stored(TensorView<'a>),
    /// Converted f32 values.
    F32(Vec<f32>),
    /// f16 bits (reordered rows, or copied for alignment).
    F16(Vec<u16>),
}

impl FloatData<'_> {
    /// The values as bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            FloatData::Stored(v) => v.bytes(),
            FloatData::F32(v) => bytemuck::cast_slice(v),
            FloatData::F16(v) => bytemuck::cast_slice(v),
        }
    }
}

/// The planned state dict: names, shapes and float types of every tensor,
/// and how to produce each. Planning reads only the index and MJSN.
#[derive(Clone, Debug)]
pub struct StateDict {
    entries: Vec<Entry>,
    order: ShapeOrder,
}

impl StateDict {
    /// Plans the state dict of `src`: every tensor of its index, in order.
    pub fn plan(src: &dyn TensorSource, opts: &StateDictOptions) -> Result<StateDict> {
        let idx = src.tensor_index()?;
        let meta = src.meta()?;
        let order = meta
            .as_ref()
            .map_or(ShapeOrder::RowMajor, ShapeOrder::of_meta);
        let heads = if opts.gguf_name_mapping {
            meta.as_ref().map(HeadCounts::from_meta).unwrap_or_default()
        } else {
            HeadCounts::default()
        };
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(idx.len());
        for t in idx.tensors() {
            let e = plan_one(t, order, opts, &heads)?;
            if !seen.insert(e.name.clone()) {
                return Err(StateDictError::Invalid {
                    name: t.name.clone(),
                    reason: format!("a second tensor is named '{}' in the state dict", e.name),
                });
            }
            entries.push(e);
        }
        Ok(StateDict { entries, order })
    }

    /// Plans the state dict of one tensor of `src` (by its name in the file,
    /// without name mapping): what `extract --as` needs.
    pub fn plan_one(src: &dyn TensorSource, name: &str) -> Result<StateDict> {
        let idx = src.tensor_index()?;
        let t = idx.get(name).ok_or_else(|| StateDictError::NotFound {
            name: name.to_owned(),
            suggestions: aero_io::names::nearest(name, idx.tensors().iter().map(|t| &*t.name)),
        })?;
        let order = src.shape_order()?;
        let e = plan_one(
            t,
            order,
            &StateDictOptions::default(),
            &HeadCounts::default(),
        )?;
        Ok(StateDict {
            entries: vec![e],
            order,
        })
    }

    /// Entry `i` (`NotFound` naming `#i` when out of range).
    pub fn entry(&self, i: usize) -> Result<&Entry> {
        self.entries.get(i).ok_or_else(|| StateDictError::NotFound {
            name: format!("#{i}"),
            suggestions: Vec::new(),
        })
    }

    /// Every tensor, in the index's order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether the file was recognised as written by the reference GGUF
    /// converter (shapes in GGUF order, reversed here).
    pub fn reference_gguf_order(&self) -> bool {
        self.order == ShapeOrder::Gguf
    }

    /// Tensor `i`'s values: its bytes verified, then converted.
    pub fn load<'a>(&self, src: &'a dyn TensorSource, i: usize) -> Result<FloatData<'a>> {
        let e = self.entries.get(i).ok_or_else(|| StateDictError::Invalid {
            name: format!("#{i}"),
            reason: format!("no tensor {i}: the state dict has {}", self.entries.len()),
        })?;
        let view = src.verified(&e.source)?;
        let used = usize::try_from(e.used_len).map_err(|_| too_big(e))?;
        let stored = view
            .bytes()
            .get(..used)
            .ok_or_else(|| StateDictError::Invalid {
                name: e.source.clone(),
                reason: format!("{} bytes stored, {} needed", view.bytes().len(), e.used_len),
            })?;
        let n = usize::try_from(e.elements).map_err(|_| too_big(e))?;
        let data = match (e.conversion, e.dtype) {
            (Conversion::Keep, dt) => {
                let aligned = (stored.as_ptr() as usize).is_multiple_of(dt.size());
                if aligned && used == view.bytes().len() && cfg!(target_endian = "little") {
                    FloatData::Stored(view)
                } else if dt == FloatType::F32 {
                    FloatData::F32(
                        stored
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect(),
                    )
                } else {
                    FloatData::F16(
                        stored
                            .chunks_exact(2)
                            .map(|c| u16::from_le_bytes([c[0], c[1]]))
                            .collect(),
                    )
                }
            }
            (Conversion::Ggml(ty), _) => {
                let mut out = vec![0f32; n];
                aero_quant::par_dequantize(ty, stored, e.elements, &mut out).map_err(|source| {
                    StateDictError::Quant {
                        name: e.source.clone(),
                        source,
                    }
                })?;
                FloatData::F32(out)
            }
            (Conversion::Unsigned(dt), _) => FloatData::F32(unsigned_to_f32(dt, stored)),
        };
        match e.unpermute {
            None => Ok(data),
            Some(heads) => {
                let rows = e.shape.first().copied().unwrap_or(1) as usize;
                let row_len = n.checked_div(rows).unwrap_or(0);
                let heads = heads as usize;
                Ok(match data {
                    FloatData::F32(v) => FloatData::F32(unpermute_rows(&v, rows, row_len, heads)),
                    FloatData::F16(v) => FloatData::F16(unpermute_rows(&v, rows, row_len, heads)),
                    FloatData::Stored(view) => match e.dtype {
                        FloatType::F32 => {
                            let v: Vec<f32> = view.to_vec()?;
                            FloatData::F32(unpermute_rows(&v, rows, row_len, heads))
                        }
                        FloatType::F16 => {
                            let v: Vec<u16> = view.to_vec()?;
                            FloatData::F16(unpermute_rows(&v, rows, row_len, heads))
                        }
                    },
                })
            }
        }
    }
}

fn too_big(e: &Entry) -> StateDictError {
    StateDictError::Unsupported {
        name: e.source.clone(),
        reason: "too large for this platform's address space".into(),
    }
}

fn unsigned_to_f32(dt: DType, b: &[u8]) -> Vec<f32> {
    match dt {
        DType::U8 => b.iter().map(|&x| f32::from(x)).collect(),
        DType::Bool => b.iter().map(|&x| if x != 0 { 1.0 } else { 0.0 }).collect(),
        DType::U16 => b
            .chunks_exact(2)
            .map(|c| f32::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        DType::U32 => b
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        _ => b
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                u64::from_le_bytes(a) as f32
            })
            .collect(),
    }
}

/// Whether an MJSN object marks a file written by the reference GGUF
/// converter, whose shapes are in GGUF order (`ne0` first, spec §15): the
/// rule of [`ShapeOrder::of_meta`] (`source_format` is `"gguf"` and there
/// is no `gguf` key, which this project's converter always writes and the
/// reference never does).
pub fn reference_gguf_order(meta: &Value) -> bool {
    ShapeOrder::of_meta(meta) == ShapeOrder::Gguf
}

fn plan_one(
    t: &TensorInfo,
    order: ShapeOrder,
    opts: &StateDictOptions,
    heads: &HeadCounts,
) -> Result<Entry> {
    let invalid = |reason: String| StateDictError::Invalid {
        name: t.name.clone(),
        reason,
    };
    let unsupported = |reason: String| StateDictError::Unsupported {
        name: t.name.clone(),
        reason,
    };
    let shape = t.row_major_shape(order);
    let elements = t
        .elements()
        .ok_or_else(|| invalid(format!("shape {:?} overflows", t.shape)))?;
    let (conversion, dtype) = match t.dtype {
        DType::F32 => (Conversion::Keep, FloatType::F32),
        DType::F16 => (Conversion::Keep, FloatType::F16),
        DType::BF16 | DType::F64 | DType::I8 | DType::I16 | DType::I32 | DType::I64 => {
            let ggml = crate::gguf_convert::ggml_of(t.dtype)
                .and_then(GgmlType::from_id)
                .ok_or_else(|| unsupported(format!("no conversion for {}", t.dtype)))?;
            (Conversion::Ggml(ggml), FloatType::F32)
        }
        DType::U8 | DType::U16 | DType::U32 | DType::U64 | DType::Bool => {
            (Conversion::Unsigned(t.dtype), FloatType::F32)
        }
        DType::Packed => {
            let ty = t.ggml_type().ok_or_else(|| {
                unsupported(
                    "packed without a ggml type (quant_params.ggml_type): not a GGUF \
                     quantization, cannot be expressed as floats"
                        .into(),
                )
            })?;
            if !aero_quant::can_dequantize(ty) {
                return Err(unsupported(format!(
                    "ggml type {} (id {}) cannot be dequantized",
                    ty.name, ty.id
                )));
            }
            (Conversion::Ggml(ty), FloatType::F32)
        }
        DType::Unknown(code) => return Err(unsupported(format!("unknown dtype code {code}"))),
    };
    // The stored bytes the values come from: all of them, or the tensor's
    // own of a padded reference GGUF-origin tensor (aero_io's rule).
    let need = match t.len_check(order) {
        LenCheck::Exact => t.data_len,
        LenCheck::Padded { len } => len,
        LenCheck::Mismatch { len } => {
            return Err(invalid(format!(
                "data_len is {} but {} × {:?} takes {len} bytes",
                t.data_len, t.dtype, shape
            )));
        }
        // Rows are whole blocks: the innermost dimension must be a
        // multiple of the block size.
        LenCheck::NoFit { ty } => {
            return Err(invalid(format!(
                "shape {shape:?} does not fit {}: the innermost dimension must be a \
                 multiple of {}",
                ty.name, ty.block_elems
            )));
        }
        LenCheck::Overflow | LenCheck::Unchecked => {
            return Err(invalid("byte length overflows".into()));
        }
    };
    let mut name = t.name.clone();
    let mut unpermute = None;
    if opts.gguf_name_mapping {
        if let Some(hf) = hf_name(&t.name) {
            name = hf;
        }
        if let Some((layer, kind)) = qk_tensor(&t.name) {
            unpermute = heads.for_tensor(layer, kind).map_err(&invalid)?;
            if let Some(h) = unpermute {
                let rows = shape.first().copied().unwrap_or(0);
                if h == 0 || rows % (2 * h) != 0 {
                    return Err(invalid(format!(
                        "{rows} rows cannot be split into {h} heads of an even size \
                         (undoing llama.cpp's Q/K permutation)"
                    )));
                }
            }
        }
    }
    Ok(Entry {
        name,
        source: t.name.clone(),
        shape,
        dtype,
        elements,
        conversion,
        used_len: need,
        unpermute,
    })
}
