//! Files built chunk by chunk: the caller supplies every chunk; layout,
//! string table, hashes, zstd and the atomic write are done here (spec §1,
//! §11). For AEROSET indexes, test vectors and hand-made (also deliberately
//! damaged) inputs; models are written with [`crate::write_model`].
//!
//! The payload codecs such files need are here too: TIDX from owned
//! [`TensorInfo`](crate::TensorInfo)s, the manifest, IHSH/PHSH encoders and
//! the owned PHSH decoder. (The borrowing decoders are aero-format's:
//! [`aero_format::ihsh::Ihsh`], [`aero_format::phsh::Phsh`].)

use std::io::Write;
use std::path::Path;

use aero_format::layout::{Prologue, align16};
use aero_format::{ChunkFlags, FourCc, TocEntry, names};

use crate::error::{Error, Result};
use crate::output::Output;

pub use crate::encode::{Manifest, ManifestChunk, ManifestShard, encode_tidx};
pub use crate::integrity::{PageHashes, control_digest, decode_phsh, encode_ihsh, encode_phsh};

/// zstd level for metadata chunks (spec §11).
pub const ZSTD_LEVEL: i32 = 6;

/// One chunk to write.
#[derive(Clone, Debug)]
pub struct ChunkSpec {
    /// Chunk type.
    pub fourcc: FourCc,
    /// Chunk name.
    pub name: String,
    /// Flag bits; with [`ChunkFlags::COMPRESSED`] the payload is zstd-compressed.
    pub flags: u32,
    /// Uncompressed payload.
    pub payload: Vec<u8>,
}

impl ChunkSpec {
    /// A chunk with the flags the spec prescribes for its fourcc (§4).
    pub fn standard(fourcc: FourCc, name: impl Into<String>, payload: Vec<u8>) -> ChunkSpec {
        ChunkSpec {
            fourcc,
            name: name.into(),
            flags: aero_format::encode::standard_flags(fourcc).0,
            payload,
        }
    }
}

/// Compresses metadata as the reference does: one zstd frame at level 6 with
/// the content size recorded and no checksum.
pub fn compress(data: &[u8]) -> Result<Vec<u8>> {
    let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL)
        .map_err(|e| Error::Invalid(format!("zstd: {e}")))?;
    c.set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(true))
        .map_err(|e| Error::Invalid(format!("zstd: {e}")))?;
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(false))
        .map_err(|e| Error::Invalid(format!("zstd: {e}")))?;
    c.compress(data)
        .map_err(|e| Error::Invalid(format!("zstd: {e}")))
}

/// Encodes a whole file in memory from explicit chunks.
pub fn encode_chunks(uuid: [u8; 16], chunks: &[ChunkSpec]) -> Result<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    for c in chunks {
        if !seen.insert((c.fourcc, c.name.as_str())) {
            return Err(Error::Invalid(format!(
                "duplicate chunk ({}, '{}')",
                c.fourcc, c.name
            )));
        }
        if c.fourcc == FourCc::WTSH && c.flags & ChunkFlags::COMPRESSED != 0 {
            return Err(Error::Invalid(format!(
                "weight shard '{}' must not be compressed",
                c.name
            )));
        }
    }
    let (strtab, refs) = aero_format::encode::string_table(chunks.iter().map(|c| c.name.as_str()));
    let names_len: u64 = chunks.iter().map(|c| c.name.len() as u64 + 1).sum();
    let pro = Prologue::new(chunks.len() as u64, names_len).ok_or(Error::LimitExceeded {
        what: "the chunk count",
    })?;
    let mut out = vec![0u8; pro.payload_start as usize];
    let mut entries = Vec::with_capacity(chunks.len());
    for (c, (name_off, name_len)) in chunks.iter().zip(refs) {
        let stored = if c.flags & ChunkFlags::COMPRESSED != 0 {
            compress(&c.payload)?
        } else {
            c.payload.clone()
        };
        let offset = align16(out.len() as u64).ok_or(Error::LimitExceeded {
            what: "the file size",
        })?;
        out.resize(offset as usize, 0);
        out.extend_from_slice(&stored);
        entries.push(TocEntry {
            fourcc: c.fourcc,
            flags: ChunkFlags(c.flags),
            chunk_offset: offset,
            chunk_length: stored.len() as u64,
            chunk_ulen: c.payload.len() as u64,
            name_off,
            name_len,
            reserved0: 0,
            blake3: *blake3::hash(&c.payload).as_bytes(),
        });
    }
    let prologue = aero_format::encode::encode_prologue(&pro, uuid, &entries, &strtab);
    out[..prologue.len()].copy_from_slice(&prologue);
    Ok(out)
}

/// Writes explicit chunks to `path` atomically.
pub fn write_chunks(path: impl AsRef<Path>, uuid: [u8; 16], chunks: &[ChunkSpec]) -> Result<()> {
    let path = path.as_ref();
    let bytes = encode_chunks(uuid, chunks)?;
    let mut out = Output::create(path)?;
    out.file()
        .write_all(&bytes)
        .map_err(|e| Error::io(path, e))?;
    out.commit(true)
}

/// The spec §12 test vector, built through the explicit-chunk path.
pub fn test_vector_chunks() -> Vec<ChunkSpec> {
    use crate::encode::{Manifest, ManifestChunk, ManifestShard};
    use crate::index::TensorInfo;
    let meta =
        serde_json::json!({"description": "AERO v0.1 test vector", "model_name": "test-linear"});
    let manifest = Manifest {
        model_name: "test-linear".into(),
        architecture: "linear".into(),
        chunks: vec![
            ManifestChunk {
                fourcc: FourCc::MJSN,
                toc_index: 0,
                shard_id: None,
            },
            ManifestChunk {
                fourcc: FourCc::MMSG,
                toc_index: 1,
                shard_id: None,
            },
            ManifestChunk {
                fourcc: FourCc::TIDX,
                toc_index: 2,
                shard_id: None,
            },
            ManifestChunk {
                fourcc: FourCc::WTSH,
                toc_index: 3,
                shard_id: Some(0),
            },
        ],
        shards: vec![ManifestShard {
            shard_id: 0,
            toc_index: 3,
            size_bytes: 32,
            tensor_count: 2,
        }],
    };
    let t = |name: &str, shape: Vec<u64>, off, len| TensorInfo {
        name: name.into(),
        dtype: aero_format::DType::F32,
        shape,
        shard_id: 0,
        data_off: off,
        data_len: len,
        flags: 0,
        hash_b3: None,
        quant_id: None,
        extras: Vec::new(),
    };
    let tensors = [
        t("linear.weight", vec![2, 3], 0, 24),
        t("linear.bias", vec![2], 24, 8),
    ];
    let weights: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 0.5, -0.5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    vec![
        ChunkSpec::standard(
            FourCc::MJSN,
            names::META_JSON,
            crate::value::canonical_json(&meta).into_bytes(),
        ),
        ChunkSpec::standard(FourCc::MMSG, names::MANIFEST, manifest.encode()),
        ChunkSpec::standard(
            FourCc::TIDX,
            names::TENSORS,
            crate::encode::encode_tidx(tensors.iter()),
        ),
        ChunkSpec::standard(
            FourCc::WTSH,
            names::ShardName::weights(0).to_string(),
            weights,
        ),
    ]
}
