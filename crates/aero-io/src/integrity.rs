//! IHSH (control-plane digest, spec §8) and PHSH (page hashes, spec §9):
//! what `validate` checks of them, and the owned [`PageHashes`] readers keep.
//! The payloads themselves, the bytes the control digest covers and the page
//! arithmetic are aero-format's ([`aero_format::ihsh`], [`aero_format::phsh`]).

use aero_format::ihsh::{DigestInput, Ihsh};
use aero_format::phsh::{PageSpan, Phsh};
use aero_format::{FourCc, names};
use serde::Serialize;

use crate::file::AeroFile;
use crate::source::SourceRef;
use crate::verify;

/// Result of the IHSH check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "detail")]
pub enum ControlStatus {
    /// The digest matches.
    Verified,
    /// "control plane tampered or corrupt".
    Mismatch,
    /// The file has no IHSH chunk.
    NotPresent,
    /// The IHSH payload is unreadable or malformed.
    Error(String),
}

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

/// Checks the IHSH chunk, if any.
pub fn check_control(f: &AeroFile) -> ControlStatus {
    let Some(c) = f.first(FourCc::IHSH) else {
        return ControlStatus::NotPresent;
    };
    let payload = match f.read_verified(c) {
        Ok((p, _)) => p,
        Err(e) => return ControlStatus::Error(crate::validate::detail(&e, f)),
    };
    let ihsh = match Ihsh::parse(&payload) {
        Ok(i) => i,
        Err(e) => return ControlStatus::Error(format!("malformed IHSH payload: {e}")),
    };
    let p = f.payload_start();
    if !ihsh.covers_prologue(p) {
        return ControlStatus::Error(format!(
            "covered_ranges {:?} is not [[0, {p}]]",
            ihsh.ranges().collect::<Vec<_>>()
        ));
    }
    let prologue = match f.source().bytes(0, p) {
        Ok(b) => b,
        Err(e) => return ControlStatus::Error(e.to_string()),
    };
    let count = f.chunks().len() as u32;
    if control_digest(&prologue, f.header().toc_offset, count) == ihsh.digest {
        ControlStatus::Verified
    } else {
        ControlStatus::Mismatch
    }
}

/// Result of checking one PHSH chunk.
#[derive(Clone, Debug, Serialize)]
pub struct PageReport {
    /// The PHSH chunk name.
    pub chunk: String,
    /// The shard it covers.
    pub shard: String,
    /// Page size.
    pub page_size: u64,
    /// Number of pages.
    pub pages: u64,
    /// `verified`, `mismatch` or `error`.
    pub status: &'static str,
    /// Indices of pages whose digest differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bad_pages: Vec<u64>,
    /// Details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
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
pub fn page_count(len: u64, page_size: u64) -> u64 {
    aero_format::phsh::page_count(len, page_size)
}

/// The shard-relative byte range `[start, end)` of the pages of `page_size`
/// that cover `len` bytes at `off` of a shard of `shard_len` bytes; `None`
/// for an empty range or one that does not fit ([`PageSpan::covering`]).
pub fn page_span(page_size: u64, off: u64, len: u64, shard_len: u64) -> Option<(u64, u64)> {
    PageSpan::covering(page_size, off, len, shard_len).map(|s| (s.start, s.end))
}

/// A PHSH chunk read and matched to its shard, before any page is hashed.
#[derive(Clone, Debug)]
pub struct PageCheck {
    /// The report so far (`error` with a detail when the chunk is unusable).
    pub report: PageReport,
    /// The shard's TOC index and the page hashes to check it against.
    pub target: Option<(u32, PageHashes)>,
}

/// Reads every PHSH chunk and matches it to its shard: the payload must
/// verify and decode, name an existing shard and hold one digest per page.
/// No page is hashed here (see [`crate::scan`]).
pub fn page_checks(f: &AeroFile) -> Vec<PageCheck> {
    let mut out = Vec::new();
    for c in f.chunks().iter().filter(|c| c.fourcc == FourCc::PHSH) {
        let mut report = PageReport {
            chunk: c.name.clone(),
            // The standard name (spec §1: `weights.shard{N}.phsh`) until the
            // payload, if readable, names the shard itself.
            shard: names::shard_of_page_hashes(&c.name)
                .unwrap_or_default()
                .to_owned(),
            page_size: 0,
            pages: 0,
            status: "error",
            bad_pages: Vec::new(),
            detail: None,
        };
        let ph = match f
            .read_verified(c)
            .map_err(|e| crate::validate::detail(&e, f))
            .and_then(|(p, _)| {
                decode_phsh(&p).map_err(|e| format!("malformed PHSH payload: {e}"))
            })
        {
            Ok(p) => p,
            Err(e) => {
                report.detail = Some(e);
                out.push(PageCheck {
                    report,
                    target: None,
                });
                continue;
            }
        };
        report.shard = ph.shard_name.clone();
        report.page_size = ph.page_size;
        report.pages = ph.digests.len() as u64;
        let Some(shard) = f.find(FourCc::WTSH, &ph.shard_name) else {
            report.detail = Some(format!("no WTSH named '{}'", ph.shard_name));
            out.push(PageCheck {
                report,
                target: None,
            });
            continue;
        };
        let got = ph.digests.len() as u64;
        if !aero_format::phsh::digest_count_fits(shard.length, ph.page_size, got) {
            let expected = page_count(shard.length, ph.page_size);
            report.detail = Some(format!("{got} digests for {expected} pages"));
            out.push(PageCheck {
                report,
                target: None,
            });
            continue;
        }
        out.push(PageCheck {
            report,
            target: Some((shard.index, ph)),
        });
    }
    out
}

/// Records the outcome of hashing a PHSH's pages in its report.
pub fn finish_page_report(report: &mut PageReport, bad: Vec<u64>) {
    if bad.is_empty() {
        report.status = "verified";
    } else {
        report.status = "mismatch";
        report.detail = Some(format!("{} page(s) differ", bad.len()));
        report.bad_pages = bad;
    }
}

/// Indices of pages whose BLAKE3 differs from `ph`.
pub fn page_mismatches<'a>(
    src: impl Into<SourceRef<'a>>,
    offset: u64,
    len: u64,
    ph: &PageHashes,
) -> std::io::Result<Vec<u64>> {
    let src = src.into();
    let mut bad = Vec::new();
    if len == 0 {
        if ph
            .digests
            .first()
            .is_some_and(|d| d != blake3::hash(&[]).as_bytes())
        {
            bad.push(0);
        }
        return Ok(bad);
    }
    for (i, d) in (0u64..).zip(&ph.digests) {
        let Some((start, end)) = aero_format::phsh::page_range(i, ph.page_size, len) else {
            break;
        };
        if *verify::hash_range(src, offset + start, end - start, |_| {})?.as_bytes() != *d {
            bad.push(i);
        }
    }
    Ok(bad)
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
