//! Owned TOC entries and verified payload reads.

use aero_format::{ChunkFlags, FourCc};

/// One TOC entry with its name, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the TOC.
    pub index: u32,
    /// Chunk type.
    pub fourcc: FourCc,
    /// Flag bits.
    pub flags: ChunkFlags,
    /// Absolute offset of the stored payload.
    pub offset: u64,
    /// Stored length.
    pub length: u64,
    /// Uncompressed length.
    pub ulen: u64,
    /// Name from the string table.
    pub name: String,
    /// BLAKE3-256 of the uncompressed payload (all zero = not recorded).
    pub blake3: [u8; 32],
}

impl Chunk {
    /// Whether the TOC records a hash for this chunk.
    pub fn hash_recorded(&self) -> bool {
        self.blake3 != [0u8; 32]
    }

    /// Shard id if this is `weights.shard{N}`.
    pub fn shard_id(&self) -> Option<u64> {
        if self.fourcc == FourCc::WTSH {
            aero_format::layout::parse_shard_name(&self.name, false)
        } else {
            None
        }
    }
}

/// Result of checking one chunk's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkStatus {
    /// The BLAKE3 of the payload matches the TOC.
    Verified,
    /// The BLAKE3 of the payload differs from the TOC.
    Mismatch,
    /// The TOC hash field is all zero: nothing to check against.
    HashNotRecorded,
    /// Not checked in this mode.
    Skipped,
    /// The payload could not be read or decompressed.
    Error(String),
}

impl ChunkStatus {
    /// Stable lowercase name used in JSON output.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChunkStatus::Verified => "verified",
            ChunkStatus::Mismatch => "mismatch",
            ChunkStatus::HashNotRecorded => "hash-not-recorded",
            ChunkStatus::Skipped => "skipped",
            ChunkStatus::Error(_) => "error",
        }
    }
}

/// Decompresses a zstd payload whose uncompressed size must be exactly `ulen`.
/// Memory grows with the bytes actually produced, never with the claim, and a
/// frame that declares a different content size is rejected before decoding.
/// `ulen` may be at most [`aero_format::limits::max_inflated_len`] of the
/// stored length (1 MiB, or 64 times the stored bytes): a small chunk cannot
/// make a reader allocate gigabytes.
pub fn decompress_exact(stored: &[u8], ulen: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let budget = aero_format::limits::max_inflated_len(stored.len() as u64);
    if ulen > budget {
        return Err(format!(
            "chunk_ulen {ulen} exceeds the inflation budget of {budget} bytes for {} stored bytes \
             (at most {}:1 beyond {} bytes)",
            stored.len(),
            aero_format::limits::MAX_INFLATE_RATIO,
            aero_format::limits::MIN_INFLATE_BUDGET
        ));
    }
    if let Ok(Some(declared)) = zstd::zstd_safe::get_frame_content_size(stored)
        && declared != ulen
    {
        return Err(format!(
            "zstd frame declares {declared} bytes, TOC chunk_ulen says {ulen}"
        ));
    }
    let dec = zstd::stream::read::Decoder::with_buffer(stored).map_err(|e| format!("zstd: {e}"))?;
    let mut out = Vec::with_capacity(usize::try_from(ulen.min(1 << 20)).unwrap_or(0));
    dec.take(ulen.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("zstd: {e}"))?;
    if out.len() as u64 != ulen {
        return Err(format!(
            "decompressed to {} bytes, TOC chunk_ulen says {ulen}",
            out.len()
        ));
    }
    Ok(out)
}
