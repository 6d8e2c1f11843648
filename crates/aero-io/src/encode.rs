//! MessagePack for writers: the format's own payloads come from
//! [`aero_format::encode`] (re-exported here for owned tensor entries);
//! [`json_to_msgpack`] turns the JSON values converters keep in TIDX extras
//! into MessagePack the way Python's msgpack does.

use crate::index::TensorInfo;

pub use aero_format::encode::{Manifest, ManifestChunk, ManifestShard};

/// Encodes a TIDX payload from owned entries (see
/// [`aero_format::encode::encode_tidx`] for the key order).
pub fn encode_tidx<'a>(tensors: impl ExactSizeIterator<Item = &'a TensorInfo>) -> Vec<u8> {
    aero_format::encode::encode_tidx(tensors.map(TensorInfo::entry))
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
