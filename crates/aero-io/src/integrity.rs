//! IHSH (control-plane digest, spec §8) and PHSH (page hashes, spec §9) as
//! readers and writers hold them: the digest itself, the owned
//! [`PageHashes`] and their encoders. The payloads, the bytes the control
//! digest covers and the page arithmetic are aero-format's
//! ([`aero_format::ihsh`], [`aero_format::phsh`]); what `validate` checks of
//! them is in `validate::integrity`.

use aero_format::ihsh::DigestInput;
use aero_format::phsh::{PageSpan, Phsh};

/// Computes the control-plane digest: BLAKE3 over `prologue` (bytes `[0, P)`)
/// with the 32-byte hash field of each of `entry_count` TOC entries at
/// `toc_offset` replaced by zeros ([`DigestInput`]).
pub fn control_digest(prologue: &[u8], toc_offset: u64, entry_count: u32) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for piece in DigestInput::new(prologue, toc_offset, entry_count) {
        h.update(piece);
    }
    *h.finalize().as_bytes()
}

/// Encodes the 256-byte IHSH payload for a digest over `[0, p)`.
pub fn encode_ihsh(p: u64, digest: &[u8; 32]) -> Vec<u8> {
    aero_format::encode::encode_ihsh(p, digest)
}

/// A decoded PHSH payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageHashes {
    /// `weights.shard{N}`.
    pub shard_name: String,
    /// Page size in bytes.
    pub page_size: u64,
    /// BLAKE3 of each page.
    pub digests: Vec<[u8; 32]>,
}

impl From<Phsh<'_>> for PageHashes {
    fn from(p: Phsh<'_>) -> PageHashes {
        PageHashes {
            shard_name: p.shard_name.to_owned(),
            page_size: p.page_size,
            digests: p.digests().copied().collect(),
        }
    }
}

/// Decodes a PHSH payload into owned page hashes ([`Phsh::parse`]: every
/// count is checked against the bytes left before it is trusted).
pub fn decode_phsh(payload: &[u8]) -> Result<PageHashes, aero_format::Error> {
    Phsh::parse(payload).map(PageHashes::from)
}

/// Encodes a PHSH payload.
pub fn encode_phsh(p: &PageHashes) -> Vec<u8> {
    aero_format::encode::encode_phsh(&p.shard_name, p.page_size, &p.digests)
}

/// Number of pages of `page_size` covering `len` bytes
/// ([`aero_format::phsh::page_count`]).
pub(crate) fn page_count(len: u64, page_size: u64) -> u64 {
    aero_format::phsh::page_count(len, page_size)
}

/// The shard-relative byte range `[start, end)` of the pages of `page_size`
/// that cover `len` bytes at `off` of a shard of `shard_len` bytes; `None`
/// for an empty range or one that does not fit ([`PageSpan::covering`]).
pub(crate) fn page_span(page_size: u64, off: u64, len: u64, shard_len: u64) -> Option<(u64, u64)> {
    PageSpan::covering(page_size, off, len, shard_len).map(|s| (s.start, s.end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phsh_round_trips() {
        let p = PageHashes {
            shard_name: "weights.shard3".into(),
            page_size: 1 << 20,
            digests: vec![[1; 32], [2; 32]],
        };
        assert_eq!(decode_phsh(&encode_phsh(&p)).unwrap(), p);
    }
}
