//! IHSH (control-plane digest, spec §8) and PHSH (page hashes, spec §9).

use aero_format::msgpack::{Reader, Token};
use aero_format::{Field, FourCc, TOC_ENTRY_LEN, TOC_HEADER_LEN};
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
/// `toc_offset` replaced by zeros.
pub fn control_digest(prologue: &[u8], toc_offset: u64, entry_count: u32) -> [u8; 32] {
    let mut buf = prologue.to_vec();
    for i in 0..entry_count as usize {
        let at = toc_offset as usize
            + TOC_HEADER_LEN
            + i * TOC_ENTRY_LEN
            + aero_format::TocEntry::HASH_FIELD_OFFSET;
        if let Some(f) = buf.get_mut(at..at + 32) {
            f.fill(0);
        }
    }
    *blake3::hash(&buf).as_bytes()
}

/// Encodes the 256-byte IHSH payload for a digest over `[0, p)`.
pub fn encode_ihsh(p: u64, digest: &[u8; 32]) -> Vec<u8> {
    aero_format::encode::encode_ihsh(p, digest)
}

/// A decoded IHSH payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ihsh {
    /// `covered_ranges` as `(start, end)` pairs.
    pub ranges: Vec<(u64, u64)>,
    /// The control-plane digest.
    pub digest: [u8; 32],
}

/// Fewest MessagePack bytes one `[start, end]` pair takes.
const RANGE_MIN_BYTES: u64 = 3;

/// Checks that `count` entries of at least `min` bytes each can still be in
/// `r`, so a declared count never drives an allocation larger than the input.
fn fits(r: &Reader<'_>, count: u32, min: u64, what: &str) -> Result<(), String> {
    let need = u64::from(count).saturating_mul(min);
    if need > r.remaining() as u64 {
        return Err(format!(
            "{what}: {count} entries need at least {need} bytes, {} remain at offset {}",
            r.remaining(),
            r.position()
        ));
    }
    Ok(())
}

/// Decodes an IHSH payload (spec §8; trailing zero padding is ignored).
/// Every count is checked against the bytes left before it is trusted.
pub fn decode_ihsh(payload: &[u8]) -> Result<Ihsh, String> {
    let mut r = Reader::new(payload);
    let e = |e: aero_format::Error| e.to_string();
    let n = r.read_map_len(Field::MsgPack).map_err(e)?;
    let (mut algo, mut ranges, mut digest) = (None, None, None);
    for _ in 0..n {
        match r.read_str(Field::MsgPack).map_err(e)? {
            "algo" => algo = Some(r.read_str(Field::MsgPack).map_err(e)?.to_owned()),
            "covered_ranges" => {
                let k = r.read_array_len(Field::MsgPack).map_err(e)?;
                fits(&r, k, RANGE_MIN_BYTES, "covered_ranges")?;
                let mut v = Vec::with_capacity(k as usize);
                for _ in 0..k {
                    if r.read_array_len(Field::MsgPack).map_err(e)? != 2 {
                        return Err("covered_ranges entries must be [start, end]".into());
                    }
                    v.push((
                        r.read_u64(Field::MsgPack).map_err(e)?,
                        r.read_u64(Field::MsgPack).map_err(e)?,
                    ));
                }
                ranges = Some(v);
            }
            "digest" => match r.next(Field::MsgPack).map_err(e)? {
                Token::Bin(b) if b.len() == 32 => digest = b.try_into().ok(),
                _ => return Err("digest must be 32 bytes of bin".into()),
            },
            _ => {
                r.skip(Field::MsgPack).map_err(e)?;
            }
        }
    }
    if algo.as_deref() != Some("blake3-256") {
        return Err(format!("unsupported algo {algo:?}"));
    }
    Ok(Ihsh {
        ranges: ranges.ok_or("covered_ranges missing")?,
        digest: digest.ok_or("digest missing")?,
    })
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
    let ihsh = match decode_ihsh(&payload) {
        Ok(i) => i,
        Err(e) => return ControlStatus::Error(format!("malformed IHSH payload: {e}")),
    };
    let p = f.payload_start();
    if ihsh.ranges != [(0, p)] {
        return ControlStatus::Error(format!(
            "covered_ranges {:?} is not [[0, {p}]]",
            ihsh.ranges
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

/// Decodes a PHSH payload (trailing zero padding is ignored). The digest
/// count is checked against the bytes left (34 per digest) before anything
/// is allocated.
pub fn decode_phsh(payload: &[u8]) -> Result<PageHashes, String> {
    let mut r = Reader::new(payload);
    let e = |e: aero_format::Error| e.to_string();
    let n = r.read_map_len(Field::MsgPack).map_err(e)?;
    let (mut name, mut ps, mut digests) = (None, None, None);
    for _ in 0..n {
        match r.read_str(Field::MsgPack).map_err(e)? {
            "shard_name" => name = Some(r.read_str(Field::MsgPack).map_err(e)?.to_owned()),
            "page_size" => ps = Some(r.read_u64(Field::MsgPack).map_err(e)?),
            "digests" => {
                let k = r.read_array_len(Field::MsgPack).map_err(e)?;
                // Issue 11: the count alone once sized this allocation (a
                // 70 KiB file asked for 64 GB). A digest takes 34 bytes.
                fits(&r, k, aero_format::limits::PHSH_DIGEST_MIN_BYTES, "digests")?;
                let mut v = Vec::with_capacity(k as usize);
                for _ in 0..k {
                    match r.next(Field::MsgPack).map_err(e)? {
                        Token::Bin(b) if b.len() == 32 => {
                            v.push(b.try_into().map_err(|_| "digest length")?)
                        }
                        _ => return Err("each digest must be 32 bytes of bin".into()),
                    }
                }
                digests = Some(v);
            }
            _ => {
                r.skip(Field::MsgPack).map_err(e)?;
            }
        }
    }
    let page_size = ps.ok_or("page_size missing")?;
    if page_size == 0 {
        return Err("page_size is 0".into());
    }
    Ok(PageHashes {
        shard_name: name.ok_or("shard_name missing")?,
        page_size,
        digests: digests.ok_or("digests missing")?,
    })
}

/// Encodes a PHSH payload.
pub fn encode_phsh(p: &PageHashes) -> Vec<u8> {
    aero_format::encode::encode_phsh(&p.shard_name, p.page_size, &p.digests)
}

/// Number of pages of `page_size` covering `len` bytes.
pub fn page_count(len: u64, page_size: u64) -> u64 {
    len.div_ceil(page_size.max(1))
}

/// The shard-relative byte range `[start, end)` of the pages of `page_size`
/// that cover `len` bytes at `off` of a shard of `shard_len` bytes; `None`
/// for an empty range or one that does not fit.
pub fn page_span(page_size: u64, off: u64, len: u64, shard_len: u64) -> Option<(u64, u64)> {
    let end = off
        .checked_add(len)
        .filter(|&e| e <= shard_len && len > 0)?;
    let ps = page_size.max(1);
    let start = off / ps * ps;
    let stop = end.div_ceil(ps).saturating_mul(ps).min(shard_len);
    Some((start, stop))
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
            shard: c.name.strip_suffix(".phsh").unwrap_or_default().to_owned(),
            page_size: 0,
            pages: 0,
            status: "error",
            bad_pages: Vec::new(),
            detail: None,
        };
        let ph = match f
            .read_verified(c)
            .map_err(|e| crate::validate::detail(&e, f))
            .and_then(|(p, _)| decode_phsh(&p))
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
        let expected = page_count(shard.length, ph.page_size);
        if ph.digests.len() as u64 != expected && !(shard.length == 0 && ph.digests.len() == 1) {
            report.detail = Some(format!(
                "{} digests for {} pages",
                ph.digests.len(),
                expected
            ));
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
    for (i, d) in ph.digests.iter().enumerate() {
        let start = i as u64 * ph.page_size;
        let n = ph.page_size.min(len - start);
        if *verify::hash_range(src, offset + start, n, |_| {})?.as_bytes() != *d {
            bad.push(i as u64);
        }
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11: a PHSH declaring 2^32-1 digests made `validate --full`
    /// allocate 128 GiB (`Vec::with_capacity(k)` checked against one byte
    /// per digest only).
    #[test]
    fn phsh_digest_count_is_bounded_by_the_payload() {
        let mut p = Vec::new();
        rmp::encode::write_map_len(&mut p, 3).unwrap();
        rmp::encode::write_str(&mut p, "shard_name").unwrap();
        rmp::encode::write_str(&mut p, "weights.shard0").unwrap();
        rmp::encode::write_str(&mut p, "page_size").unwrap();
        rmp::encode::write_uint(&mut p, 4096).unwrap();
        rmp::encode::write_str(&mut p, "digests").unwrap();
        rmp::encode::write_array_len(&mut p, u32::MAX).unwrap();
        // Enough bytes to pass a one-byte-per-element check (70 KiB).
        p.resize(p.len() + (70 << 10), 0xc0);
        assert!(decode_phsh(&p).is_err());
        // A count that the bytes could hold at one byte each but not at 34.
        let mut q = p.clone();
        let at = q.len() - (70 << 10) - 4;
        q[at..at + 4].copy_from_slice(&((70u32 << 10) / 2).to_be_bytes());
        assert!(decode_phsh(&q).unwrap_err().contains("at least"));
    }

    #[test]
    fn ihsh_range_count_is_bounded_by_the_payload() {
        let mut p = Vec::new();
        rmp::encode::write_map_len(&mut p, 1).unwrap();
        rmp::encode::write_str(&mut p, "covered_ranges").unwrap();
        rmp::encode::write_array_len(&mut p, 100).unwrap();
        p.resize(p.len() + 200, 0x92);
        assert!(decode_ihsh(&p).unwrap_err().contains("covered_ranges"));
        let good = encode_ihsh(4096, &[7; 32]);
        assert_eq!(
            decode_ihsh(&good).unwrap(),
            Ihsh {
                ranges: vec![(0, 4096)],
                digest: [7; 32]
            }
        );
    }

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
