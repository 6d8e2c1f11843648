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
