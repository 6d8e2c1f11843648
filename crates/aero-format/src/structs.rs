//! Byte-exact structures. Parsing copies fields out of little-endian bytes, so
//! structures can be read from any offset on any host; encoding writes them back.

use crate::error::{Error, ErrorKind, Field};
use crate::fourcc::{ChunkFlags, FourCc};

/// `AERO`.
pub const MAGIC: [u8; 4] = *b"AERO";
/// The format version this crate reads and the writers write
/// (`version_major`, `version_minor`): 0.1.
pub const VERSION: (u16, u16) = (0, 1);
/// Size of the file header.
pub const FILE_HEADER_LEN: usize = 96;
/// Size of the TOC header.
pub const TOC_HEADER_LEN: usize = 16;
/// Size of one TOC entry.
pub const TOC_ENTRY_LEN: usize = 80;

/// Fixed-size little-endian field reader over an array; all offsets are
/// compile-time constants inside the array, so `get` never fails in practice
/// but still avoids panicking indexing.
struct Le<'a>(&'a [u8]);

impl Le<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = at.checked_add(N).and_then(|end| self.0.get(at..end)) {
            out.copy_from_slice(src);
        }
        out
    }
    fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes(self.bytes(at))
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.bytes(at))
    }
    fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes(at))
    }
}

fn put(out: &mut [u8], at: usize, src: &[u8]) {
    if let Some(dst) = at
        .checked_add(src.len())
        .and_then(|end| out.get_mut(at..end))
    {
        dst.copy_from_slice(src);
    }
}

/// The 96-byte file header (spec §2), as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// Must be `AERO`.
    pub magic: [u8; 4],
    /// Must be 0.
    pub version_major: u16,
    /// Must be 1.
    pub version_minor: u16,
    /// Must be 96.
    pub header_size: u32,
    /// Offset of the TOC header.
    pub toc_offset: u64,
    /// Bytes of TOC (header + entries).
    pub toc_length: u64,
    /// Offset of the string table.
    pub string_table_offset: u64,
    /// Padded length of the string table.
    pub string_table_length: u64,
    /// Must be 0.
    pub file_flags: u64,
    /// File identity.
    pub uuid: [u8; 16],
    /// Reserved, zero when written.
    pub reserved: [u8; 28],
}

impl FileHeader {
    /// Decodes the header fields without checking them.
    pub fn decode(bytes: &[u8; FILE_HEADER_LEN]) -> FileHeader {
        let r = Le(bytes);
        FileHeader {
            magic: r.bytes(0),
            version_major: r.u16(4),
            version_minor: r.u16(6),
            header_size: r.u32(8),
            toc_offset: r.u64(12),
            toc_length: r.u64(20),
            string_table_offset: r.u64(28),
            string_table_length: r.u64(36),
            file_flags: r.u64(44),
            uuid: r.bytes(52),
            reserved: r.bytes(68),
        }
    }

    /// Decodes and checks magic, version, header size and flags.
    pub fn parse(bytes: &[u8]) -> Result<FileHeader, Error> {
        let arr: &[u8; FILE_HEADER_LEN] = bytes
            .get(..FILE_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::new(
                ErrorKind::Truncated {
                    need: FILE_HEADER_LEN as u64,
                },
                Field::Magic,
                0,
            ))?;
        let h = FileHeader::decode(arr);
        if h.magic != MAGIC {
            return Err(Error::new(ErrorKind::BadMagic(h.magic), Field::Magic, 0));
        }
        if (h.version_major, h.version_minor) != VERSION {
            return Err(Error::new(
                ErrorKind::UnsupportedVersion {
                    major: h.version_major,
                    minor: h.version_minor,
                },
                Field::Version,
                4,
            ));
        }
        if h.header_size as usize != FILE_HEADER_LEN {
            return Err(Error::new(
                ErrorKind::BadValue(h.header_size.into()),
                Field::HeaderSize,
                8,
            ));
        }
        if h.file_flags != 0 {
            return Err(Error::new(
                ErrorKind::BadValue(h.file_flags),
                Field::FileFlags,
                44,
            ));
        }
        Ok(h)
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut out = [0u8; FILE_HEADER_LEN];
        put(&mut out, 0, &self.magic);
        put(&mut out, 4, &self.version_major.to_le_bytes());
        put(&mut out, 6, &self.version_minor.to_le_bytes());
        put(&mut out, 8, &self.header_size.to_le_bytes());
        put(&mut out, 12, &self.toc_offset.to_le_bytes());
        put(&mut out, 20, &self.toc_length.to_le_bytes());
        put(&mut out, 28, &self.string_table_offset.to_le_bytes());
        put(&mut out, 36, &self.string_table_length.to_le_bytes());
        put(&mut out, 44, &self.file_flags.to_le_bytes());
        put(&mut out, 52, &self.uuid);
        put(&mut out, 68, &self.reserved);
        out
    }
}

/// The 16-byte TOC header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TocHeader {
    /// Number of 80-byte entries that follow.
    pub entry_count: u32,
    /// Reserved.
    pub reserved0: u32,
    /// Reserved.
    pub reserved1: u64,
}

impl TocHeader {
    /// Decodes the TOC header.
    pub fn decode(bytes: &[u8; TOC_HEADER_LEN]) -> TocHeader {
        let r = Le(bytes);
        TocHeader {
            entry_count: r.u32(0),
            reserved0: r.u32(4),
            reserved1: r.u64(8),
        }
    }

    /// Encodes the TOC header.
    pub fn encode(&self) -> [u8; TOC_HEADER_LEN] {
        let mut out = [0u8; TOC_HEADER_LEN];
        put(&mut out, 0, &self.entry_count.to_le_bytes());
        put(&mut out, 4, &self.reserved0.to_le_bytes());
        put(&mut out, 8, &self.reserved1.to_le_bytes());
        out
    }
}

/// One 80-byte TOC entry (spec §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TocEntry {
    /// Chunk type.
    pub fourcc: FourCc,
    /// Flag bits.
    pub flags: ChunkFlags,
    /// Absolute offset of the stored payload.
    pub chunk_offset: u64,
    /// Stored bytes.
    pub chunk_length: u64,
    /// Uncompressed bytes.
    pub chunk_ulen: u64,
    /// Offset of the name in the string table.
    pub name_off: u32,
    /// Length of the name.
    pub name_len: u32,
    /// Reserved.
    pub reserved0: u64,
    /// BLAKE3-256 of the uncompressed payload; all zero means "not recorded".
    pub blake3: [u8; 32],
}

impl TocEntry {
    /// Offset of the hash field inside an entry.
    pub const HASH_FIELD_OFFSET: usize = 48;

    /// Decodes an entry without checking it.
    pub fn decode(bytes: &[u8; TOC_ENTRY_LEN]) -> TocEntry {
        let r = Le(bytes);
        TocEntry {
            fourcc: FourCc(r.bytes(0)),
            flags: ChunkFlags(r.u32(4)),
            chunk_offset: r.u64(8),
            chunk_length: r.u64(16),
            chunk_ulen: r.u64(24),
            name_off: r.u32(32),
            name_len: r.u32(36),
            reserved0: r.u64(40),
            blake3: r.bytes(48),
        }
    }

    /// Encodes an entry.
    pub fn encode(&self) -> [u8; TOC_ENTRY_LEN] {
        let mut out = [0u8; TOC_ENTRY_LEN];
        put(&mut out, 0, &self.fourcc.0);
        put(&mut out, 4, &self.flags.0.to_le_bytes());
        put(&mut out, 8, &self.chunk_offset.to_le_bytes());
        put(&mut out, 16, &self.chunk_length.to_le_bytes());
        put(&mut out, 24, &self.chunk_ulen.to_le_bytes());
        put(&mut out, 32, &self.name_off.to_le_bytes());
        put(&mut out, 36, &self.name_len.to_le_bytes());
        put(&mut out, 40, &self.reserved0.to_le_bytes());
        put(&mut out, 48, &self.blake3);
        out
    }

    /// Whether the hash field is all zero ("hash not recorded", spec §10).
    pub fn hash_recorded(&self) -> bool {
        self.blake3 != [0u8; 32]
    }

    /// The stored byte range `offset..offset+length`, checked for overflow.
    pub fn stored_range(&self) -> Option<(u64, u64)> {
        self.chunk_offset
            .checked_add(self.chunk_length)
            .map(|end| (self.chunk_offset, end))
    }
}
