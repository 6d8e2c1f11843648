//! The metadata step of [`super::write_to`]: the TIDX rows of the tensors
//! as placed, and the MJSN, MMSG and TIDX payloads ready to place.

use super::options::WriteOptions;
use super::plan::{Planned, ShardPlan};
use super::spec::TensorSpec;
use crate::encode::{Manifest, ManifestChunk, ManifestShard, encode_tidx};
use crate::error::Result;
use crate::index::TensorInfo;
use crate::write::raw::compress;

/// One chunk payload as it is stored: its bytes (compressed or not), its
/// uncompressed length and the BLAKE3 of the uncompressed bytes (the TOC
/// entry's `chunk_ulen` and hash).
pub(super) struct Payload {
    pub(super) stored: Vec<u8>,
    pub(super) ulen: u64,
    pub(super) hash: [u8; 32],
}

impl Payload {
    /// A payload stored as it is.
    pub(super) fn plain(bytes: Vec<u8>) -> Payload {
        Payload {
            ulen: bytes.len() as u64,
            hash: *blake3::hash(&bytes).as_bytes(),
            stored: bytes,
        }
    }

    /// A payload stored zstd-compressed (spec §11).
    pub(super) fn compressed(raw: &[u8]) -> Result<Payload> {
        Ok(Payload {
            stored: compress(raw)?,
            ulen: raw.len() as u64,
            hash: *blake3::hash(raw).as_bytes(),
        })
    }

    /// `len` zero bytes with no hash yet: a payload patched at the end.
    pub(super) fn placeholder(len: usize) -> Payload {
        Payload {
            stored: vec![0; len],
            ulen: len as u64,
            hash: [0; 32],
        }
    }
}

/// The TIDX rows of `specs` as `plan` places them (`hash_b3` is filled in
/// as the shards stream).
pub(super) fn tensor_infos(
    specs: &[TensorSpec<'_>],
    plan: &ShardPlan,
    opts: &WriteOptions,
) -> Vec<TensorInfo> {
    specs
        .iter()
        .zip(&plan.placement)
        .map(|(t, &(s, off))| TensorInfo {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            shard_id: opts.first_shard_id + s as u64,
            data_off: off,
            data_len: t.data_len,
            flags: 0,
            hash_b3: None,
            quant_id: None,
            extras: t.extras.clone(),
        })
        .collect()
}

/// The MJSN payload: `model_name`, `architecture` and the caller's extra
/// keys, as canonical JSON.
pub(super) fn meta_json(opts: &WriteOptions) -> Payload {
    let mut meta = serde_json::Map::new();
    meta.insert("model_name".into(), opts.model_name.clone().into());
    meta.insert("architecture".into(), opts.architecture.clone().into());
    for (k, v) in &opts.extra_meta {
        if k != "model_name" && k != "architecture" {
            meta.insert(k.clone(), v.clone());
        }
    }
    Payload::plain(crate::value::canonical_json(&serde_json::Value::Object(meta)).into_bytes())
}

/// The MMSG payload: every chunk (with the shard it belongs to) and every
/// shard of the plan.
pub(super) fn manifest(opts: &WriteOptions, chunks: &Planned, plan: &ShardPlan) -> Result<Payload> {
    let manifest = Manifest {
        model_name: opts.model_name.clone(),
        architecture: opts.architecture.clone(),
        chunks: (0..chunks.fourcc.len())
            .map(|i| {
                let shard_id = chunks
                    .wtsh
                    .iter()
                    .position(|&w| w == i)
                    .or_else(|| chunks.phsh.iter().position(|&p| p == Some(i)))
                    .map(|s| opts.first_shard_id + s as u64);
                ManifestChunk {
                    fourcc: chunks.fourcc[i],
                    toc_index: i as u64,
                    shard_id,
                }
            })
            .collect(),
        shards: (0..plan.shard_len.len())
            .map(|s| ManifestShard {
                shard_id: opts.first_shard_id + s as u64,
                toc_index: chunks.wtsh[s] as u64,
                size_bytes: plan.shard_len[s],
                tensor_count: plan.shard_tensors[s],
            })
            .collect(),
    }
    .encode();
    Payload::compressed(&manifest)
}

/// The TIDX payload of `tensors`.
pub(super) fn tidx(tensors: &[TensorInfo]) -> Result<Payload> {
    Payload::compressed(&encode_tidx(tensors.iter()))
}
