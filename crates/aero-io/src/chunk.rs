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

    /// What makes this weight shard's TOC entry unusable, if anything: a
    /// WTSH payload is stored raw (spec §4), so the compressed flag or a
    /// `chunk_ulen` other than `chunk_length` means the entry is damaged.
    /// `None` for a sound WTSH entry and for every other chunk type.
    ///
    /// The one structural check of a weight shard: validation reports it,
    /// and every read of a tensor's bytes (verified or not, by any path)
    /// refuses a tensor whose shard fails it (see
    /// [`AeroFile::tensor_range`](crate::AeroFile::tensor_range)).
    pub fn weight_shard_problem(&self) -> Option<String> {
        if self.fourcc != FourCc::WTSH {
            return None;
        }
        if self.flags.compressed() {
            return Some(
                "weight shard flagged as compressed (WTSH payloads are stored raw)".into(),
            );
        }
        (self.length != self.ulen).then(|| {
            format!(
                "chunk_length {} != chunk_ulen {} (WTSH payloads are stored raw)",
                self.length, self.ulen
            )
        })
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
/// A frame that declares a different content size is rejected before
/// decoding. `ulen` may be at most [`aero_format::limits::max_inflated_len`]
/// of the stored length (1 MiB, or 64 times the stored bytes): a small chunk
/// cannot make a reader allocate gigabytes.
///
/// The frames are decoded in one call straight into a buffer of `ulen`
/// bytes (within that budget), so nothing is copied twice: streaming through
/// `Read` decoded into zstd's window and copied out, and grew the output by
/// reallocation. Pages of the buffer are touched only as bytes are
/// produced, and output beyond `ulen` is an error, as before.
pub fn decompress_exact(stored: &[u8], ulen: u64) -> Result<Vec<u8>, String> {
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
    let cap = usize::try_from(ulen).map_err(|_| format!("chunk_ulen {ulen} too large"))?;
    let mut out = Vec::with_capacity(cap);
    let mut dctx = zstd::zstd_safe::DCtx::try_create().ok_or("zstd: no decompression context")?;
    dctx.decompress(&mut out, stored).map_err(|code| {
        // Classified by what the frames hold, not by the library's message:
        // stream them (the error path only) and count up to `ulen + 1` bytes.
        if inflates_past(stored, ulen) {
            format!("zstd payload inflates to more than the {ulen} bytes chunk_ulen says")
        } else {
            format!("zstd: {}", zstd::zstd_safe::get_error_name(code))
        }
    })?;
    if out.len() as u64 != ulen {
        return Err(format!(
            "decompressed to {} bytes, TOC chunk_ulen says {ulen}",
            out.len()
        ));
    }
    Ok(out)
}

/// Whether the zstd frames in `stored` decode to more than `ulen` bytes
/// (reading at most `ulen + 1` of them into a sink).
fn inflates_past(stored: &[u8], ulen: u64) -> bool {
    let Ok(dec) = zstd::stream::read::Decoder::with_buffer(stored) else {
        return false;
    };
    let mut limited = std::io::Read::take(dec, ulen.saturating_add(1));
    // A decoding error part-way still counts what came out before it.
    let mut n = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        match std::io::Read::read(&mut limited, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k as u64,
        }
    }
    n > ulen
}

#[cfg(test)]
mod tests {
    use super::decompress_exact;

    /// Frames written by a streaming encoder carry no content size, so only
    /// decoding shows that they hold more than `chunk_ulen`.
    #[test]
    fn frames_larger_than_ulen_are_named_as_such() {
        let data = vec![7u8; 5000];
        let stored = zstd::stream::encode_all(&data[..], 3).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&stored)
                .ok()
                .flatten(),
            None,
            "the streaming encoder should not declare a size"
        );
        assert_eq!(decompress_exact(&stored, 5000).unwrap(), data);
        let e = decompress_exact(&stored, 4999).unwrap_err();
        assert_eq!(
            e,
            "zstd payload inflates to more than the 4999 bytes chunk_ulen says"
        );
        let mut broken = stored.clone();
        let n = broken.len();
        broken[n / 2] ^= 0xff;
        broken.truncate(n - 2);
        let e = decompress_exact(&broken, 5000).unwrap_err();
        assert!(
            e.starts_with("zstd: ") || e.starts_with("decompressed to"),
            "{e}"
        );
    }
}
