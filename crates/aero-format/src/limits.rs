//! Caps every reader applies before trusting a size (spec §10).

/// Maximum TOC entries.
pub const MAX_ENTRY_COUNT: u64 = 1_000_000;
/// Maximum string table length (512 MiB).
pub const MAX_STRING_TABLE: u64 = 512 << 20;
/// Maximum uncompressed size of a non-WTSH chunk (2 GiB).
pub const MAX_METADATA_ULEN: u64 = 2 << 30;
/// Maximum tensors in one TIDX.
pub const MAX_TENSORS: u64 = 100_000_000;
/// Maximum tensor name length in bytes.
pub const MAX_NAME_LEN: u64 = 4096;
/// Maximum tensor rank.
pub const MAX_RANK: u64 = 64;
/// Maximum MessagePack nesting depth accepted when skipping values.
pub const MAX_MSGPACK_DEPTH: u32 = 64;
/// Size of the IHSH payload.
pub const IHSH_PAYLOAD_LEN: u64 = 256;
/// Default PHSH page size (4 MiB).
pub const DEFAULT_PAGE_SIZE: u64 = 4 << 20;
/// A compressed metadata chunk may always inflate to this many bytes
/// (see [`max_inflated_len`]).
pub const MIN_INFLATE_BUDGET: u64 = 1 << 20;
/// Beyond [`MIN_INFLATE_BUDGET`], a compressed metadata chunk may inflate to
/// at most this many times its stored length. Real TIDX payloads compress
/// about 25:1 at zstd level 6 (MMSG about 12:1), a zstd bomb 30,000:1.
pub const MAX_INFLATE_RATIO: u64 = 64;
/// Fewest bytes one PHSH digest takes in MessagePack (`bin 8` header, length
/// byte, 32 bytes).
pub const PHSH_DIGEST_MIN_BYTES: u64 = 34;

/// The largest `chunk_ulen` a compressed chunk of `stored` bytes may declare:
/// `max(MIN_INFLATE_BUDGET, MAX_INFLATE_RATIO × stored)`, never more than
/// [`MAX_METADATA_ULEN`]. Memory spent inflating metadata is so bounded by
/// the size of the file, not by what its TOC claims.
///
/// ```
/// use aero_format::limits::*;
/// assert_eq!(max_inflated_len(10), MIN_INFLATE_BUDGET);
/// assert_eq!(max_inflated_len(1 << 20), 64 << 20);
/// assert_eq!(max_inflated_len(u64::MAX), MAX_METADATA_ULEN);
/// ```
pub const fn max_inflated_len(stored: u64) -> u64 {
    let by_ratio = stored.saturating_mul(MAX_INFLATE_RATIO);
    let v = if by_ratio > MIN_INFLATE_BUDGET {
        by_ratio
    } else {
        MIN_INFLATE_BUDGET
    };
    if v > MAX_METADATA_ULEN {
        MAX_METADATA_ULEN
    } else {
        v
    }
}
