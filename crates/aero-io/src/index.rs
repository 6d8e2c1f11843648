//! The owned tensor index (TIDX) with O(1) lookup by name.

use aero_format::DType;
use aero_format::encode::TensorEntry;
use aero_format::tidx::{TensorIter, TensorRecord};

/// One tensor entry (a TIDX row), owned. Unknown keys are kept as raw
/// MessagePack so a rewrite can carry them over unchanged.
///
/// The same row as aero-format's borrowed [`TensorRecord`] (decoded; see
/// [`TensorInfo::from_record`]) and [`TensorEntry`] (to encode; see
/// [`TensorInfo::entry`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// WTSH shard id.
    pub shard_id: u64,
    /// Offset inside the shard.
    pub data_off: u64,
    /// Byte length.
    pub data_len: u64,
    /// Reserved flags.
    pub flags: u64,
    /// BLAKE3-256 of the bytes, when recorded.
    pub hash_b3: Option<[u8; 32]>,
    /// `quant_id`, when present.
    pub quant_id: Option<u64>,
    /// Keys other than the interpreted ones (`quant_id`, `quant_params`,
    /// anything unknown), in stored order, as raw MessagePack values.
    pub extras: Vec<(String, Vec<u8>)>,
}

impl TensorInfo {
    /// The owned copy of a decoded TIDX row (fails only on a malformed
    /// dimension, which the iterator reports lazily).
    pub fn from_record(rec: &TensorRecord<'_>) -> Result<TensorInfo, aero_format::Error> {
        let mut shape = Vec::with_capacity(rec.shape.rank() as usize);
        for d in rec.shape.iter() {
            shape.push(d?);
        }
        Ok(TensorInfo {
            name: rec.name.to_owned(),
            dtype: rec.dtype,
            shape,
            shard_id: rec.shard_id,
            data_off: rec.data_off,
            data_len: rec.data_len,
            flags: rec.flags,
            hash_b3: rec.hash_b3,
            quant_id: rec.quant_id,
            extras: rec
                .extras()
                .map(|(k, v)| (k.to_owned(), v.to_vec()))
                .collect(),
        })
    }

    /// This row as aero-format's encoder takes it.
    pub fn entry(&self) -> TensorEntry<'_> {
        TensorEntry {
            name: &self.name,
            dtype: self.dtype,
            shape: &self.shape,
            shard_id: self.shard_id,
            data_off: self.data_off,
            data_len: self.data_len,
            flags: self.flags,
            extras: &self.extras,
            hash_b3: self.hash_b3.as_ref(),
        }
    }

    /// Product of the dimensions, `None` on overflow.
    pub fn elements(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }

    /// The byte length dtype × shape implies, for sized dtypes.
    pub fn expected_len(&self) -> Option<u64> {
        self.dtype.byte_len(self.elements()?)
    }

    /// An extra key's raw MessagePack value.
    pub fn extra(&self, key: &str) -> Option<&[u8]> {
        self.extras
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The ggml type of a packed tensor converted from GGUF
    /// (`quant_params.ggml_type`), when it names one ggml defines.
    pub fn ggml_type(&self) -> Option<aero_format::GgmlType> {
        use aero_format::Field;
        use aero_format::msgpack::Reader;
        let mut r = Reader::new(self.extra("quant_params")?);
        let n = r.read_map_len(Field::TensorExtra).ok()?;
        for _ in 0..n {
            if r.read_str(Field::TensorExtra).ok()? == "ggml_type" {
                let id = r.read_u64(Field::TensorExtra).ok()?;
                return aero_format::GgmlType::from_id(u32::try_from(id).ok()?);
            }
            r.skip(Field::TensorExtra).ok()?;
        }
        None
    }

    /// The TIDX entry as JSON under the spec's TIDX key names: name, dtype
    /// and its code, `ggml_type`'s name for a packed tensor converted from
    /// GGUF, shape as stored, shard, `data_off`, `data_len`, `hash_b3` in
    /// hex when recorded, and the extras (see [`Self::extras_json`]). The
    /// CLI's `list --json` renders its own shared vocabulary instead
    /// (docs/CLI.md, "JSON vocabulary").
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Value, json};
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("dtype".into(), json!(self.dtype.to_string()));
        m.insert("dtype_code".into(), json!(self.dtype.code()));
        if let Some(g) = self.ggml_type().filter(|_| self.dtype == DType::Packed) {
            m.insert("ggml_type".into(), json!(g.name));
        }
        m.insert("shape".into(), json!(self.shape));
        m.insert("shard_id".into(), json!(self.shard_id));
        m.insert("data_off".into(), json!(self.data_off));
        m.insert("data_len".into(), json!(self.data_len));
        if let Some(h) = &self.hash_b3 {
            m.insert("hash_b3".into(), json!(hex::encode(h)));
        }
        if !self.extras.is_empty() {
            m.insert("extra".into(), Value::Object(self.extras_json()));
        }
        Value::Object(m)
    }

    /// Extras as a JSON object (bin as hex).
    pub fn extras_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.extras
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    crate::value::msgpack_to_json(v).unwrap_or(serde_json::Value::Null),
                )
            })
            .collect()
    }
}

/// Bytes of memory a decoded [`TensorIndex`] may take per byte of its
/// uncompressed TIDX payload (plus [`INDEX_BUDGET_BASE`]). Real indexes take
/// about 2 (a 125-byte record becomes a 160-byte [`TensorInfo`], its name
/// and shape); hostile ones (empty names, rank-64 shapes of one-byte dims,
/// thousands of one-byte extra keys) up to 40 without this cap.
pub const INDEX_BUDGET_PER_BYTE: usize = 8;
/// Bytes a decoded [`TensorIndex`] may always take.
pub const INDEX_BUDGET_BASE: usize = 64 << 10;

/// Fewest bytes one TIDX record takes: a map header and the six required
/// keys (44 bytes of key strings) with one-byte values.
const MIN_RECORD_BYTES: usize = 51;

/// Heap bytes of an allocation of `n` bytes, as glibc's malloc rounds it.
fn heap(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).div_ceil(16).max(2) * 16
    }
}

/// The decoded TIDX.
#[derive(Clone, Debug, Default)]
pub struct TensorIndex {
    tensors: Vec<TensorInfo>,
    /// Open-addressing table of `index + 1` into `tensors` (0 = empty),
    /// a power of two at most half full: O(1) lookup without a second
    /// copy of every name.
    slots: Vec<u32>,
    hasher: std::hash::RandomState,
    duplicates: Vec<String>,
}

impl TensorIndex {
    /// Decodes an uncompressed TIDX payload.
    ///
    /// Memory is bounded by the payload: the index may take at most
    /// [`INDEX_BUDGET_PER_BYTE`] bytes per payload byte (plus
    /// [`INDEX_BUDGET_BASE`]), else decoding fails with `LimitExceeded`.
    pub fn decode(payload: &[u8]) -> Result<TensorIndex, aero_format::Error> {
        let iter = TensorIter::new(payload)?;
        let budget = payload
            .len()
            .saturating_mul(INDEX_BUDGET_PER_BYTE)
            .saturating_add(INDEX_BUDGET_BASE);
        let mut spent = 0usize;
        // A declared count is only trusted as far as the bytes could hold it.
        let cap = (iter.declared_len() as usize).min(payload.len() / MIN_RECORD_BYTES);
        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(cap);
        let mut index = TensorIndex::default();
        for rec in iter {
            let rec = rec?;
            let mut n_extras = 0;
            let mut cost = std::mem::size_of::<TensorInfo>()
                + 2 * std::mem::size_of::<u32>()
                + heap(rec.name.len())
                + heap(8 * rec.shape.rank() as usize);
            for (k, v) in rec.extras() {
                n_extras += 1;
                cost += heap(k.len()) + heap(v.len());
            }
            cost += heap(n_extras * std::mem::size_of::<(String, Vec<u8>)>());
            spent = spent.saturating_add(cost);
            if spent > budget {
                return Err(aero_format::Error {
                    kind: aero_format::ErrorKind::LimitExceeded {
                        value: spent as u64,
                        limit: budget as u64,
                    },
                    field: aero_format::Field::Tensors,
                    offset: rec.raw.as_ptr() as u64 - payload.as_ptr() as u64,
                    index: Some(rec.index),
                });
            }
            tensors.push(TensorInfo::from_record(&rec)?);
        }
        index.tensors = tensors;
        index.build_slots();
        Ok(index)
    }

    /// An index over `tensors` as given (in this order), for a source that
    /// has no TIDX of its own: a safetensors or GGUF file read as AERO
    /// would hold it. Names after the first of each are
    /// [`TensorIndex::duplicates`].
    pub fn from_tensors(tensors: Vec<TensorInfo>) -> TensorIndex {
        let mut index = TensorIndex {
            tensors,
            ..TensorIndex::default()
        };
        index.build_slots();
        index
    }

    fn slot_of(&self, name: &str) -> usize {
        use std::hash::BuildHasher;
        self.hasher.hash_one(name) as usize & (self.slots.len() - 1)
    }

    /// Fills the lookup table; names after the first of each are duplicates.
    fn build_slots(&mut self) {
        let size = (self.tensors.len() * 2).next_power_of_two().max(2);
        self.slots = vec![0; size];
        let mut duplicates = Vec::new();
        for i in 0..self.tensors.len() {
            let name = self.tensors[i].name.as_str();
            let mut at = self.slot_of(name);
            loop {
                match self.slots[at] {
                    0 => {
                        self.slots[at] = i as u32 + 1;
                        break;
                    }
                    j if self.tensors[j as usize - 1].name == name => {
                        duplicates.push(name.to_owned());
                        break;
                    }
                    _ => at = (at + 1) & (size - 1),
                }
            }
        }
        self.duplicates = duplicates;
    }

    /// All entries in stored order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Looks up a tensor by name in O(1) (the first entry if a name repeats).
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        if self.slots.is_empty() {
            return None;
        }
        let mut at = self.slot_of(name);
        loop {
            let t = self.tensors.get(self.slots[at].checked_sub(1)? as usize)?;
            if t.name == name {
                return Some(t);
            }
            at = (at + 1) & (self.slots.len() - 1);
        }
    }

    /// Names that occur more than once.
    pub fn duplicates(&self) -> &[String] {
        &self.duplicates
    }
}
