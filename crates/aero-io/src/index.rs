//! The owned tensor index (TIDX) with O(1) lookup by name.

use std::collections::HashMap;

use aero_format::DType;
use aero_format::tidx::TensorIter;

/// One tensor entry, owned. Unknown keys are kept as raw MessagePack so a
/// rewrite can carry them over unchanged.
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

    /// The byte length a packed tensor's ggml type and shape imply: ggml's
    /// block table applied with the innermost dimension last (this
    /// project's row-major shapes) or first (the GGUF order the reference
    /// converter stores, spec §15); `None` when neither fits the block size.
    pub fn ggml_len(&self, ty: aero_format::GgmlType) -> Option<u64> {
        let mut dims = self.shape.clone();
        dims.reverse();
        ty.tensor_bytes(&dims)
            .or_else(|| ty.tensor_bytes(&self.shape))
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

/// The decoded TIDX.
#[derive(Clone, Debug, Default)]
pub struct TensorIndex {
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    duplicates: Vec<String>,
}

impl TensorIndex {
    /// Decodes an uncompressed TIDX payload.
    pub fn decode(payload: &[u8]) -> Result<TensorIndex, aero_format::Error> {
        let iter = TensorIter::new(payload)?;
        let mut tensors = Vec::with_capacity(iter.declared_len().min(1 << 20) as usize);
        let mut by_name = HashMap::with_capacity(tensors.capacity());
        let mut duplicates = Vec::new();
        for rec in iter {
            let rec = rec?;
            let shape = rec.shape.iter().collect::<Result<Vec<u64>, _>>()?;
            let extras = rec
                .extras()
                .map(|(k, v)| (k.to_owned(), v.to_vec()))
                .collect();
            let info = TensorInfo {
                name: rec.name.to_owned(),
                dtype: rec.dtype,
                shape,
                shard_id: rec.shard_id,
                data_off: rec.data_off,
                data_len: rec.data_len,
                flags: rec.flags,
                hash_b3: rec.hash_b3,
                quant_id: rec.quant_id,
                extras,
            };
            if by_name.contains_key(&info.name) {
                duplicates.push(info.name.clone());
            } else {
                by_name.insert(info.name.clone(), tensors.len());
            }
            tensors.push(info);
        }
        Ok(TensorIndex {
            tensors,
            by_name,
            duplicates,
        })
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
        self.by_name.get(name).and_then(|&i| self.tensors.get(i))
    }

    /// Names that occur more than once.
    pub fn duplicates(&self) -> &[String] {
        &self.duplicates
    }
}
