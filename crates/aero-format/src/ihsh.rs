//! IHSH, the control-plane digest (spec §8): its payload, decoded
//! borrowing and without allocating, and the bytes its digest covers.
//!
//! The digest is BLAKE3 over bytes `[0, P)` of the file (P: the start of
//! payloads) with the 32-byte hash field of every TOC entry read as zeros.
//! This crate does not hash; [`DigestInput`] yields those bytes as pieces
//! for the caller's hasher, without copying the prefix:
//!
//! ```
//! use aero_format::{ControlPlane, ihsh};
//! # let prefix = aero_format::testdata::TEST_VECTOR;
//! let cp = ControlPlane::parse(prefix, prefix.len() as u64)?;
//! let p = cp.payload_start().unwrap() as usize;
//! let mut covered = 0;
//! for piece in ihsh::DigestInput::new(&prefix[..p], cp.header.toc_offset, cp.len()) {
//!     covered += piece.len(); // hasher.update(piece)
//! }
//! assert_eq!(covered, p);
//! # Ok::<(), aero_format::Error>(())
//! ```

use crate::error::{Error, ErrorKind, Field};
use crate::msgpack::{Reader, Token};
use crate::structs::{TOC_ENTRY_LEN, TOC_HEADER_LEN, TocEntry};

/// The only digest algorithm the format defines.
pub const ALGO: &str = "blake3-256";

/// Fewest MessagePack bytes one `[start, end]` pair takes.
const RANGE_MIN_BYTES: u64 = 3;

/// A decoded IHSH payload, borrowing from it. Trailing zero padding is
/// ignored. Every count was checked against the bytes left before it drove
/// a loop, and every range was read once, so [`Ihsh::ranges`] cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ihsh<'a> {
    ranges: &'a [u8],
    count: u32,
    /// The control-plane digest.
    pub digest: [u8; 32],
}

impl<'a> Ihsh<'a> {
    /// Decodes an IHSH payload: `algo` must be [`ALGO`], `covered_ranges`
    /// an array of `[start, end]` pairs, `digest` 32 bytes of `bin`. Other
    /// keys are skipped; a key given twice counts as given last.
    pub fn parse(payload: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(payload);
        let n = r.read_map_len(Field::Ihsh)?;
        let (mut algo, mut ranges, mut digest) = (None, None, None);
        for _ in 0..n {
            match r.read_str(Field::Ihsh)? {
                "algo" => {
                    let at = r.position() as u64;
                    algo = Some((r.read_str(Field::IhshAlgo)?, at));
                }
                "covered_ranges" => {
                    let at = r.position() as u64;
                    let count = r.read_array_len(Field::IhshRanges)?;
                    fits(&r, count, RANGE_MIN_BYTES, Field::IhshRanges)?;
                    let start = r.position();
                    for _ in 0..count {
                        let pat = r.position() as u64;
                        let len = r.read_array_len(Field::IhshRanges)?;
                        if len != 2 {
                            return Err(Error::new(
                                ErrorKind::BadValue(len.into()),
                                Field::IhshRanges,
                                pat,
                            ));
                        }
                        r.read_u64(Field::IhshRanges)?;
                        r.read_u64(Field::IhshRanges)?;
                    }
                    ranges = Some((r.slice(start, r.position()), count, at));
                }
                "digest" => {
                    let at = r.position() as u64;
                    digest = Some(read_digest(&mut r, Field::IhshDigest, at)?);
                }
                _ => {
                    r.skip(Field::Ihsh)?;
                }
            }
        }
        let missing = |f| Error::new(ErrorKind::MissingKey, f, 0);
        let (algo, at) = algo.ok_or(missing(Field::IhshAlgo))?;
        if algo != ALGO {
            return Err(Error::new(ErrorKind::Unsupported, Field::IhshAlgo, at));
        }
        let (ranges, count, _) = ranges.ok_or(missing(Field::IhshRanges))?;
        Ok(Ihsh {
            ranges,
            count,
            digest: digest.ok_or(missing(Field::IhshDigest))?,
        })
    }

    /// The `covered_ranges`, as `(start, end)` pairs in stored order.
    pub fn ranges(&self) -> RangeIter<'a> {
        RangeIter {
            r: Reader::new(self.ranges),
            left: self.count,
        }
    }

    /// Whether the digest covers exactly `[0, payload_start)`, the one range
    /// a writer records (spec §8).
    pub fn covers_prologue(&self, payload_start: u64) -> bool {
        let mut it = self.ranges();
        it.next() == Some((0, payload_start)) && it.next().is_none()
    }
}

/// Iterator over the `(start, end)` pairs of [`Ihsh::ranges`].
#[derive(Clone, Debug)]
pub struct RangeIter<'a> {
    r: Reader<'a>,
    left: u32,
}

impl Iterator for RangeIter<'_> {
    type Item = (u64, u64);
    fn next(&mut self) -> Option<(u64, u64)> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        // Validated by `Ihsh::parse`.
        self.r.read_array_len(Field::IhshRanges).ok()?;
        let start = self.r.read_u64(Field::IhshRanges).ok()?;
        let end = self.r.read_u64(Field::IhshRanges).ok()?;
        Some((start, end))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for RangeIter<'_> {}

/// Checks that `count` entries of at least `min` bytes each can still be in
/// `r`, so a declared count never drives a loop or an allocation larger
/// than the input.
pub(crate) fn fits(r: &Reader<'_>, count: u32, min: u64, field: Field) -> Result<(), Error> {
    let need = u64::from(count).saturating_mul(min);
    if need > r.remaining() as u64 {
        return Err(Error::new(
            ErrorKind::Truncated {
                need: (r.position() as u64).saturating_add(need),
            },
            field,
            r.position() as u64,
        ));
    }
    Ok(())
}

/// Reads one 32-byte digest stored as `bin`.
pub(crate) fn read_digest(r: &mut Reader<'_>, field: Field, at: u64) -> Result<[u8; 32], Error> {
    match r.next(field)? {
        Token::Bin(b) => b
            .try_into()
            .map_err(|_| Error::new(ErrorKind::BadValue(b.len() as u64), field, at)),
        _ => Err(Error::new(ErrorKind::WrongType, field, at)),
    }
}

/// The bytes the control-plane digest covers, as pieces to hash in order:
/// `prefix` (bytes `[0, P)` of the file) with the 32-byte hash field of each
/// of `entry_count` TOC entries at `toc_offset` replaced by zeros. A field
/// that does not lie wholly inside `prefix` is left as it is (and so are
/// the ones after it).
#[derive(Clone, Debug)]
pub struct DigestInput<'a> {
    prefix: &'a [u8],
    /// Next byte of `prefix` not yet yielded.
    pos: usize,
    /// Next hash field to zero, and the number of fields left.
    field: usize,
    left: u32,
    /// Whether a field's zeros come next.
    zeros: bool,
}

const ZEROS: [u8; 32] = [0; 32];

impl<'a> DigestInput<'a> {
    /// The pieces of `prefix` with the hash fields of the TOC at
    /// `toc_offset` (of `entry_count` entries) zeroed.
    pub fn new(prefix: &'a [u8], toc_offset: u64, entry_count: u32) -> Self {
        let first = usize::try_from(toc_offset)
            .ok()
            .and_then(|t| t.checked_add(TOC_HEADER_LEN + TocEntry::HASH_FIELD_OFFSET));
        DigestInput {
            prefix,
            pos: 0,
            field: first.unwrap_or(usize::MAX),
            left: if first.is_some() { entry_count } else { 0 },
            zeros: false,
        }
    }
}

impl<'a> Iterator for DigestInput<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.zeros {
            self.zeros = false;
            return Some(&ZEROS);
        }
        let end = self.field.checked_add(ZEROS.len());
        if self.left > 0
            && let Some(end) = end.filter(|&e| e <= self.prefix.len())
        {
            let piece = self.prefix.get(self.pos..self.field).unwrap_or_default();
            self.pos = end;
            self.field = self.field.saturating_add(TOC_ENTRY_LEN);
            self.left = self.left.saturating_sub(1);
            self.zeros = true;
            return Some(piece);
        }
        self.left = 0;
        if self.pos >= self.prefix.len() {
            return None;
        }
        let rest = self.prefix.get(self.pos..).unwrap_or_default();
        self.pos = self.prefix.len();
        Some(rest)
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    fn concat(it: DigestInput<'_>) -> ([u8; 1024], usize) {
        let mut out = [0u8; 1024];
        let mut n = 0;
        for p in it {
            out[n..n + p.len()].copy_from_slice(p);
            n += p.len();
        }
        (out, n)
    }

    /// The pieces are the prefix with each entry's hash field zeroed, and
    /// nothing else changed.
    #[test]
    fn digest_input_zeroes_the_hash_fields() {
        let prefix: [u8; 400] = core::array::from_fn(|i| (i % 251) as u8 + 1);
        for (toc, count) in [(96u64, 3u32), (96, 0), (100, 4), (96, 10), (1000, 1)] {
            let (got, n) = concat(DigestInput::new(&prefix, toc, count));
            assert_eq!(n, prefix.len());
            let mut want = prefix;
            for i in 0..count as usize {
                let at = toc as usize + 16 + i * 80 + 48;
                if at + 32 <= want.len() {
                    want[at..at + 32].fill(0);
                }
            }
            assert_eq!(&got[..n], &want[..], "toc {toc} count {count}");
        }
        assert_eq!(DigestInput::new(&[], 96, 1).count(), 0);
        assert_eq!(concat(DigestInput::new(&prefix, u64::MAX, 5)).1, 400);
    }
}
