//! MessagePack encodings of MMSG and TIDX exactly as the reference emits them
//! (spec §5, §6, §11): maps in the documented key order, integers in their
//! smallest encoding, strings as str, digests as bin.

use aero_format::FourCc;

use crate::index::TensorInfo;

/// Role of a chunk in the manifest's `chunks` list.
pub fn role_of(fourcc: FourCc) -> &'static str {
    match fourcc {
        FourCc::MJSN => "json",
        FourCc::MMSG => "manifest",
        FourCc::TIDX => "tensors",
        FourCc::WTSH => "weights",
        FourCc::IHSH => "control_integrity",
        FourCc::PHSH => "page_hashes",
        _ => "other",
    }
}

/// One entry of the manifest's `chunks` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestChunk {
    /// Chunk type.
    pub fourcc: FourCc,
    /// TOC position.
    pub toc_index: u64,
    /// Shard id for WTSH and PHSH.
    pub shard_id: Option<u64>,
}

/// One entry of the manifest's `shards` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestShard {
    /// Shard id.
    pub shard_id: u64,
    /// TOC position of its WTSH.
    pub toc_index: u64,
    /// Payload size.
    pub size_bytes: u64,
    /// Tensors stored in it.
    pub tensor_count: u64,
}

/// Everything an MMSG payload says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Model name.
    pub model_name: String,
    /// Architecture.
    pub architecture: String,
    /// Chunks in TOC order.
    pub chunks: Vec<ManifestChunk>,
    /// One per WTSH.
    pub shards: Vec<ManifestShard>,
}

fn s(w: &mut Vec<u8>, v: &str) {
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_str(w, v);
}
fn u(w: &mut Vec<u8>, v: u64) {
    let _ = rmp::encode::write_uint(w, v);
}
fn map(w: &mut Vec<u8>, n: u32) {
    let _ = rmp::encode::write_map_len(w, n);
}
fn arr(w: &mut Vec<u8>, n: u32) {
    let _ = rmp::encode::write_array_len(w, n);
}

impl Manifest {
    /// Encodes the MMSG payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(256 + 48 * self.chunks.len());
        let w = &mut w;
        map(w, 4);
        s(w, "format");
        map(w, 2);
        s(w, "name");
        s(w, "AERO");
        s(w, "version");
        arr(w, 2);
        u(w, 0);
        u(w, 1);
        s(w, "model");
        map(w, 2);
        s(w, "name");
        s(w, &self.model_name);
        s(w, "architecture");
        s(w, &self.architecture);
        s(w, "chunks");
        arr(w, self.chunks.len() as u32);
        for c in &self.chunks {
            map(w, if c.shard_id.is_some() { 4 } else { 3 });
            s(w, "role");
            s(w, role_of(c.fourcc));
            s(w, "fourcc");
            s(w, &c.fourcc.to_string());
            s(w, "toc_index");
            u(w, c.toc_index);
            if let Some(id) = c.shard_id {
                s(w, "shard_id");
                u(w, id);
            }
        }
        s(w, "shards");
        arr(w, self.shards.len() as u32);
        for sh in &self.shards {
            map(w, 5);
            s(w, "shard_id");
            u(w, sh.shard_id);
            s(w, "toc_index");
            u(w, sh.toc_index);
            s(w, "size_bytes");
            u(w, sh.size_bytes);
            s(w, "tensor_count");
            u(w, sh.tensor_count);
            s(w, "mmap_critical");
            let _ = rmp::encode::write_bool(w, true);
        }
        std::mem::take(w)
    }
}

/// Encodes a TIDX payload: `{"tensors": [...]}` with keys name, dtype,
/// shape, shard_id, data_off, data_len, flags, then the extras in their
/// stored order (`quant_id`, `quant_params`, unknown keys), then `hash_b3`.
pub fn encode_tidx<'a>(tensors: impl ExactSizeIterator<Item = &'a TensorInfo>) -> Vec<u8> {
    let mut w = Vec::with_capacity(64 + 96 * tensors.len());
    let w = &mut w;
    map(w, 1);
    s(w, "tensors");
    arr(w, tensors.len() as u32);
    for t in tensors {
        let n = 7 + t.extras.len() + usize::from(t.hash_b3.is_some());
        map(w, n as u32);
        s(w, "name");
        s(w, &t.name);
        s(w, "dtype");
        u(w, u64::from(t.dtype.code()));
        s(w, "shape");
        arr(w, t.shape.len() as u32);
        for &d in &t.shape {
            u(w, d);
        }
        s(w, "shard_id");
        u(w, t.shard_id);
        s(w, "data_off");
        u(w, t.data_off);
        s(w, "data_len");
        u(w, t.data_len);
        s(w, "flags");
        u(w, t.flags);
        for (k, v) in &t.extras {
            s(w, k);
            w.extend_from_slice(v);
        }
        if let Some(h) = &t.hash_b3 {
            s(w, "hash_b3");
            s(w, &hex::encode(h));
        }
    }
    std::mem::take(w)
}

/// Encodes a JSON value as MessagePack the way Python's msgpack does for the
/// values converters store in TIDX extras (`quant_params`): maps in the given
/// order, smallest integer encodings, floats as float64.
pub fn json_to_msgpack(v: &serde_json::Value, w: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Null => {
            let _ = rmp::encode::write_nil(w);
        }
        Value::Bool(b) => {
            let _ = rmp::encode::write_bool(w, *b);
        }
        Value::Number(n) => {
            if let Some(x) = n.as_u64() {
                u(w, x);
            } else if let Some(x) = n.as_i64() {
                let _ = rmp::encode::write_sint(w, x);
            } else {
                let _ = rmp::encode::write_f64(w, n.as_f64().unwrap_or(0.0));
            }
        }
        Value::String(x) => s(w, x),
        Value::Array(a) => {
            arr(w, a.len() as u32);
            for x in a {
                json_to_msgpack(x, w);
            }
        }
        Value::Object(m) => {
            map(w, m.len() as u32);
            for (k, x) in m {
                s(w, k);
                json_to_msgpack(x, w);
            }
        }
    }
}
