//! PHSH, the page hashes of one weight shard (spec §9): its payload,
//! decoded borrowing and without allocating, and the page arithmetic every
//! reader of it needs (how many pages, where page `i` lies, which pages
//! cover a byte range).
//!
//! ```
//! use aero_format::phsh::{self, Phsh};
//! // {"shard_name": "weights.shard0", "page_size": 4, "digests": [bin 32, bin 32]}
//! let mut payload = vec![0x83];
//! payload.extend_from_slice(b"\xaashard_name\xaeweights.shard0\xa9page_size\x04\xa7digests\x92");
//! for d in [1u8, 2] {
//!     payload.extend_from_slice(&[0xc4, 32]);
//!     payload.extend_from_slice(&[d; 32]);
//! }
//! let p = Phsh::parse(&payload)?;
//! assert_eq!((p.shard_name, p.page_size, p.digest_count()), ("weights.shard0", 4, 2));
//! assert_eq!(p.digests().nth(1), Some(&[2; 32]));
//! assert!(phsh::digest_count_fits(7, 4, 2));
//! assert_eq!(phsh::page_range(1, 4, 7), Some((4, 7)));
//! assert_eq!(phsh::PageSpan::covering(4, 3, 2, 7).map(|s| s.pages()), Some(0..2));
//! # Ok::<(), aero_format::Error>(())
//! ```

use crate::error::{Error, ErrorKind, Field};
use crate::ihsh::{fits, read_digest};
use crate::limits::PHSH_DIGEST_MIN_BYTES;
use crate::msgpack::Reader;

/// A decoded PHSH payload, borrowing from it. Trailing zero padding is
/// ignored. The digest count was checked against the bytes left (34 per
/// digest) before it drove a loop, and every digest was read once (32
/// bytes of `bin`), so [`Phsh::digests`] cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phsh<'a> {
    /// The shard the pages belong to (`weights.shard{N}`).
    pub shard_name: &'a str,
    /// Page size in bytes (never 0).
    pub page_size: u64,
    digests: &'a [u8],
    count: u32,
}

impl<'a> Phsh<'a> {
    /// Decodes a PHSH payload: `shard_name` a string, `page_size` a
    /// positive integer, `digests` an array of 32-byte `bin` values. Other
    /// keys are skipped; a key given twice counts as given last.
    pub fn parse(payload: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(payload);
        let n = r.read_map_len(Field::Phsh)?;
        let (mut name, mut page_size, mut digests) = (None, None, None);
        for _ in 0..n {
            match r.read_str(Field::Phsh)? {
                "shard_name" => name = Some(r.read_str(Field::PhshShardName)?),
                "page_size" => {
                    let at = r.position() as u64;
                    page_size = Some((r.read_u64(Field::PhshPageSize)?, at));
                }
                "digests" => {
                    let count = r.read_array_len(Field::PhshDigests)?;
                    // Issue 11: the count alone once sized an allocation (a
                    // 70 KiB file asked for 64 GB).
                    fits(&r, count, PHSH_DIGEST_MIN_BYTES, Field::PhshDigests)?;
                    let start = r.position();
                    for _ in 0..count {
                        let at = r.position() as u64;
                        read_digest(&mut r, Field::PhshDigests, at)?;
                    }
                    digests = Some((r.slice(start, r.position()), count));
                }
                _ => {
                    r.skip(Field::Phsh)?;
                }
            }
        }
        let missing = |f| Error::new(ErrorKind::MissingKey, f, 0);
        let (page_size, at) = page_size.ok_or(missing(Field::PhshPageSize))?;
        if page_size == 0 {
            return Err(Error::new(ErrorKind::BadValue(0), Field::PhshPageSize, at));
        }
        let shard_name = name.ok_or(missing(Field::PhshShardName))?;
        let (digests, count) = digests.ok_or(missing(Field::PhshDigests))?;
        Ok(Phsh {
            shard_name,
            page_size,
            digests,
            count,
        })
    }

    /// Number of digests.
    pub fn digest_count(&self) -> u32 {
        self.count
    }

    /// The digests, page 0 first.
    pub fn digests(&self) -> DigestIter<'a> {
        DigestIter {
            r: Reader::new(self.digests),
            left: self.count,
        }
    }

    /// Whether this PHSH holds one digest per page of a shard of
    /// `shard_len` bytes ([`digest_count_fits`]).
    pub fn fits_shard(&self, shard_len: u64) -> bool {
        digest_count_fits(shard_len, self.page_size, self.count.into())
    }
}

/// Iterator over the digests of a [`Phsh`].
#[derive(Clone, Debug)]
pub struct DigestIter<'a> {
    r: Reader<'a>,
    left: u32,
}

impl<'a> Iterator for DigestIter<'a> {
    type Item = &'a [u8; 32];
    fn next(&mut self) -> Option<&'a [u8; 32]> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        // Validated by `Phsh::parse`.
        match self.r.next(Field::PhshDigests).ok()? {
            crate::msgpack::Token::Bin(b) => b.try_into().ok(),
            _ => None,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for DigestIter<'_> {}

/// Number of pages of `page_size` bytes covering `len` bytes (a page size
/// of 0 counts as 1).
pub const fn page_count(len: u64, page_size: u64) -> u64 {
    len.div_ceil(if page_size == 0 { 1 } else { page_size })
}

/// Whether `count` digests are what a PHSH of a shard of `shard_len` bytes
/// must hold: one per page, and one (the hash of nothing) for an empty
/// shard, as the reference writes it.
pub const fn digest_count_fits(shard_len: u64, page_size: u64, count: u64) -> bool {
    count == page_count(shard_len, page_size) || (shard_len == 0 && count == 1)
}

/// The shard-relative byte range `[start, end)` of page `index` of a shard
/// of `shard_len` bytes: `page_size` bytes, the last page shorter; `None`
/// past the last page.
pub const fn page_range(index: u64, page_size: u64, shard_len: u64) -> Option<(u64, u64)> {
    let Some(start) = index.checked_mul(page_size) else {
        return None;
    };
    if start >= shard_len {
        return None;
    }
    let end = match start.checked_add(page_size) {
        Some(e) if e < shard_len => e,
        _ => shard_len,
    };
    Some((start, end))
}

/// The whole pages that cover a byte range of a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSpan {
    /// The page size.
    pub page_size: u64,
    /// Shard offset of the first covering page.
    pub start: u64,
    /// End of the last covering page (the shard's end for its last page).
    pub end: u64,
}

impl PageSpan {
    /// The pages of `page_size` (0 counts as 1) that cover `len` bytes at
    /// `off` of a shard of `shard_len` bytes; `None` for an empty range or
    /// one that does not fit in the shard.
    pub const fn covering(page_size: u64, off: u64, len: u64, shard_len: u64) -> Option<PageSpan> {
        let end = match off.checked_add(len) {
            Some(e) if e <= shard_len && len > 0 => e,
            _ => return None,
        };
        let ps = if page_size == 0 { 1 } else { page_size };
        let start = match off.checked_rem(ps) {
            Some(r) => off.saturating_sub(r),
            None => off,
        };
        let stop = end.div_ceil(ps).saturating_mul(ps);
        Some(PageSpan {
            page_size: ps,
            start,
            end: if stop < shard_len { stop } else { shard_len },
        })
    }

    /// The indices of the covering pages.
    pub const fn pages(&self) -> core::ops::Range<u64> {
        let ps = if self.page_size == 0 {
            1
        } else {
            self.page_size
        };
        let first = match self.start.checked_div(ps) {
            Some(f) => f,
            None => 0,
        };
        first..self.end.div_ceil(ps)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// Pages cover a shard exactly once, the last one shorter; the span of
    /// a range is the pages that hold any of its bytes.
    #[test]
    fn page_arithmetic_agrees_with_itself() {
        for len in [0u64, 1, 7, 8, 9, 64] {
            for ps in [1u64, 3, 8, 100] {
                let n = page_count(len, ps);
                let mut at = 0;
                for i in 0..n {
                    let (s, e) = page_range(i, ps, len).unwrap();
                    assert_eq!(s, at);
                    assert!(e > s && e - s <= ps && (e - s == ps || e == len));
                    at = e;
                }
                assert_eq!(at, len);
                assert_eq!(page_range(n, ps, len), None);
                assert!(digest_count_fits(len, ps, n));
                assert_eq!(digest_count_fits(len, ps, 1), n == 1 || len == 0);
                for off in 0..len {
                    for l in 1..=len - off {
                        let sp = PageSpan::covering(ps, off, l, len).unwrap();
                        let pages = sp.pages();
                        assert_eq!(pages.start, off / ps);
                        assert_eq!(pages.end - 1, (off + l - 1) / ps);
                        assert_eq!(sp.start, page_range(pages.start, ps, len).unwrap().0);
                        assert_eq!(sp.end, page_range(pages.end - 1, ps, len).unwrap().1);
                    }
                }
                assert_eq!(PageSpan::covering(ps, 0, 0, len), None);
                assert_eq!(PageSpan::covering(ps, len, 1, len), None);
            }
        }
        assert_eq!(page_count(10, 0), 10);
        assert_eq!(PageSpan::covering(8, u64::MAX, 1, u64::MAX), None);
        assert_eq!(page_range(u64::MAX, 2, u64::MAX), None);
    }
}
