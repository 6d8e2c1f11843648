//! What `validate` checks of IHSH (the control-plane digest, spec §8) and
//! PHSH (page hashes, spec §9). The page hashes of a shard are compared in
//! the one pass over it ([`super::scan`]) or, for a shard read apart, by
//! [`page_mismatches`].

use aero_format::ihsh::Ihsh;
use aero_format::{FourCc, names};
use serde::Serialize;

use crate::file::AeroFile;
use crate::integrity::{PageHashes, control_digest, decode_phsh, page_count};
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

/// Checks the IHSH chunk, if any.
pub fn check_control(f: &AeroFile) -> ControlStatus {
    let Some(c) = f.first(FourCc::IHSH) else {
        return ControlStatus::NotPresent;
    };
    let payload = match f.read_verified(c) {
        Ok((p, _)) => p,
        Err(e) => return ControlStatus::Error(super::detail(&e, f)),
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

/// A PHSH chunk read and matched to its shard, before any page is hashed.
#[derive(Clone, Debug)]
pub(super) struct PageCheck {
    /// The report so far (`error` with a detail when the chunk is unusable).
    pub report: PageReport,
    /// The shard's TOC index and the page hashes to check it against.
    pub target: Option<(u32, PageHashes)>,
}

/// Reads every PHSH chunk and matches it to its shard: the payload must
/// verify and decode, name an existing shard and hold one digest per page.
/// No page is hashed here (see [`super::scan`]).
pub(super) fn page_checks(f: &AeroFile) -> Vec<PageCheck> {
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
            .map_err(|e| super::detail(&e, f))
            .and_then(|(p, _)| decode_phsh(&p).map_err(|e| format!("malformed PHSH payload: {e}")))
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
pub(super) fn finish_page_report(report: &mut PageReport, bad: Vec<u64>) {
    if bad.is_empty() {
        report.status = "verified";
    } else {
        report.status = "mismatch";
        report.detail = Some(format!("{} page(s) differ", bad.len()));
        report.bad_pages = bad;
    }
}

/// Indices of pages whose BLAKE3 differs from `ph`.
pub(super) fn page_mismatches<'a>(
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
