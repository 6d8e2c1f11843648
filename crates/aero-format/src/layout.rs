//! Layout arithmetic and the parsed control plane (header, TOC, string table).

use crate::error::{Error, ErrorKind, Field};
use crate::fourcc::FourCc;
use crate::limits;
pub use crate::names::parse_shard_name;
use crate::structs::{
    FILE_HEADER_LEN, FileHeader, TOC_ENTRY_LEN, TOC_HEADER_LEN, TocEntry, TocHeader,
};

/// Rounds `x` up to a multiple of `align` (a power of two); `None` on overflow.
pub const fn align_up(x: u64, align: u64) -> Option<u64> {
    if align == 0 || !align.is_power_of_two() {
        return None;
    }
    let mask = align.wrapping_sub(1);
    match x.checked_add(mask) {
        Some(v) => Some(v & !mask),
        None => None,
    }
}

/// Rounds up to a multiple of 16 (payload alignment).
pub const fn align16(x: u64) -> Option<u64> {
    align_up(x, 16)
}

/// Rounds up to a multiple of 8 (string table alignment).
pub const fn align8(x: u64) -> Option<u64> {
    align_up(x, 8)
}

/// `16 + 80 × entry_count`, checked.
pub const fn toc_length(entry_count: u64) -> Option<u64> {
    match entry_count.checked_mul(TOC_ENTRY_LEN as u64) {
        Some(v) => v.checked_add(TOC_HEADER_LEN as u64),
        None => None,
    }
}

/// Offsets of the regions a writer lays out before the first payload (spec §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prologue {
    /// Offset of the TOC (always 96).
    pub toc_offset: u64,
    /// Length of the TOC.
    pub toc_length: u64,
    /// Offset of the string table (align8 after the TOC).
    pub string_table_offset: u64,
    /// Padded string table length (multiple of 8).
    pub string_table_length: u64,
    /// First payload offset (align16 after the string table).
    pub payload_start: u64,
}

impl Prologue {
    /// Computes the standard prologue for `entry_count` chunks whose names
    /// (each followed by a NUL) take `names_bytes` bytes in total.
    pub const fn new(entry_count: u64, names_bytes: u64) -> Option<Prologue> {
        let toc_offset = FILE_HEADER_LEN as u64;
        let Some(toc_length) = toc_length(entry_count) else {
            return None;
        };
        let Some(toc_end) = toc_offset.checked_add(toc_length) else {
            return None;
        };
        let Some(string_table_offset) = align8(toc_end) else {
            return None;
        };
        let Some(string_table_length) = align8(names_bytes) else {
            return None;
        };
        let Some(st_end) = string_table_offset.checked_add(string_table_length) else {
            return None;
        };
        let Some(payload_start) = align16(st_end) else {
            return None;
        };
        Some(Prologue {
            toc_offset,
            toc_length,
            string_table_offset,
            string_table_length,
            payload_start,
        })
    }
}

/// A TOC entry together with its index and resolved name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef<'a> {
    /// Position in the TOC.
    pub index: u32,
    /// The decoded entry.
    pub entry: TocEntry,
    /// The chunk name from the string table.
    pub name: &'a str,
}

impl ChunkRef<'_> {
    /// Shard id of a chunk named `weights.shard{N}` (or `weights.shard{N}.phsh`
    /// when `phsh` is true).
    pub fn shard_id(&self, phsh: bool) -> Option<u64> {
        parse_shard_name(self.name, phsh)
    }
}

/// The parsed and checked control plane of one AERO file: header, TOC and
/// string table. All spec §10 structural checks have passed once this exists,
/// so iterating the entries cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct ControlPlane<'a> {
    /// The file header.
    pub header: FileHeader,
    /// The TOC header.
    pub toc_header: TocHeader,
    entries: &'a [u8],
    strtab: &'a [u8],
    file_len: u64,
}

fn sub(bytes: &[u8], offset: u64, length: u64, field: Field) -> Result<&[u8], Error> {
    let end = offset.checked_add(length).ok_or(Error::new(
        ErrorKind::OutOfBounds {
            offset,
            length,
            limit: u64::MAX,
        },
        field,
        offset,
    ))?;
    let (Ok(s), Ok(e)) = (usize::try_from(offset), usize::try_from(end)) else {
        return Err(Error::new(
            ErrorKind::Truncated { need: end },
            field,
            offset,
        ));
    };
    bytes.get(s..e).ok_or(Error::new(
        ErrorKind::Truncated { need: end },
        field,
        offset,
    ))
}

impl<'a> ControlPlane<'a> {
    /// How many bytes from offset 0 hold the header, TOC and string table of a
    /// file with this header — what a remote reader must fetch before parsing.
    /// Call after [`FileHeader::parse`].
    pub fn required_prefix(header: &FileHeader) -> Option<u64> {
        let toc_end = header.toc_offset.checked_add(header.toc_length)?;
        let st_end = header
            .string_table_offset
            .checked_add(header.string_table_length)?;
        Some(toc_end.max(st_end).max(FILE_HEADER_LEN as u64))
    }

    /// Parses the control plane from a prefix of the file starting at offset 0
    /// (the whole file, or at least [`ControlPlane::required_prefix`] bytes).
    /// `file_len` is the size of the whole file.
    pub fn parse(prefix: &'a [u8], file_len: u64) -> Result<Self, Error> {
        let header = FileHeader::parse(prefix)?;
        Self::check_header_ranges(&header, file_len)?;
        let toc = sub(
            prefix,
            header.toc_offset,
            header.toc_length,
            Field::TocOffset,
        )?;
        let strtab = sub(
            prefix,
            header.string_table_offset,
            header.string_table_length,
            Field::StringTableOffset,
        )?;
        Self::from_regions(header, toc, strtab, file_len)
    }

    fn check_header_ranges(header: &FileHeader, file_len: u64) -> Result<(), Error> {
        let toc_end = header.toc_offset.checked_add(header.toc_length);
        if toc_end.is_none_or(|e| e > file_len) {
            return Err(Error::new(
                ErrorKind::OutOfBounds {
                    offset: header.toc_offset,
                    length: header.toc_length,
                    limit: file_len,
                },
                Field::TocLength,
                20,
            ));
        }
        if header.toc_length < TOC_HEADER_LEN as u64 {
            return Err(Error::new(
                ErrorKind::BadValue(header.toc_length),
                Field::TocLength,
                20,
            ));
        }
        if header.string_table_length > limits::MAX_STRING_TABLE {
            return Err(Error::new(
                ErrorKind::LimitExceeded {
                    value: header.string_table_length,
                    limit: limits::MAX_STRING_TABLE,
                },
                Field::StringTableLength,
                36,
            ));
        }
        let st_end = header
            .string_table_offset
            .checked_add(header.string_table_length);
        if st_end.is_none_or(|e| e > file_len) {
            return Err(Error::new(
                ErrorKind::OutOfBounds {
                    offset: header.string_table_offset,
                    length: header.string_table_length,
                    limit: file_len,
                },
                Field::StringTableLength,
                28,
            ));
        }
        Ok(())
    }

    /// Parses the control plane from separately read regions: the 96-byte
    /// header, the TOC bytes at `toc_offset` (at least `16 + 80 × entry_count`
    /// and at most `toc_length` of them), and the
    /// `string_table_length` bytes at `string_table_offset`.
    pub fn from_parts(
        header: &[u8],
        toc: &'a [u8],
        strtab: &'a [u8],
        file_len: u64,
    ) -> Result<Self, Error> {
        let header = FileHeader::parse(header)?;
        Self::check_header_ranges(&header, file_len)?;
        // The TOC slice may stop after the last entry: `toc_length` may be
        // larger than what the entries need (readers accept that).
        if toc.len() as u64 > header.toc_length {
            return Err(Error::new(
                ErrorKind::Truncated {
                    need: header.toc_length,
                },
                Field::TocLength,
                header.toc_offset,
            ));
        }
        if strtab.len() as u64 != header.string_table_length {
            return Err(Error::new(
                ErrorKind::Truncated {
                    need: header.string_table_length,
                },
                Field::StringTableLength,
                header.string_table_offset,
            ));
        }
        Self::from_regions(header, toc, strtab, file_len)
    }

    fn from_regions(
        header: FileHeader,
        toc: &'a [u8],
        strtab: &'a [u8],
        file_len: u64,
    ) -> Result<Self, Error> {
        let toc_header_bytes: &[u8; TOC_HEADER_LEN] = toc
            .get(..TOC_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::new(
                ErrorKind::Truncated {
                    need: TOC_HEADER_LEN as u64,
                },
                Field::TocLength,
                header.toc_offset,
            ))?;
        let toc_header = TocHeader::decode(toc_header_bytes);
        let count = u64::from(toc_header.entry_count);
        if count > limits::MAX_ENTRY_COUNT {
            return Err(Error::new(
                ErrorKind::LimitExceeded {
                    value: count,
                    limit: limits::MAX_ENTRY_COUNT,
                },
                Field::EntryCount,
                header.toc_offset,
            ));
        }
        // count ≤ 1e6, so this cannot overflow; checked anyway.
        let needed = toc_length(count).unwrap_or(u64::MAX);
        if header.toc_length < needed {
            return Err(Error::new(
                ErrorKind::OutOfBounds {
                    offset: header.toc_offset,
                    length: needed,
                    limit: header.toc_length,
                },
                Field::EntryCount,
                header.toc_offset,
            ));
        }
        let entries = sub(
            toc,
            TOC_HEADER_LEN as u64,
            needed.saturating_sub(TOC_HEADER_LEN as u64),
            Field::TocLength,
        )?;
        let cp = ControlPlane {
            header,
            toc_header,
            entries,
            strtab,
            file_len,
        };
        // Check every entry once, so iteration afterwards is infallible.
        for i in 0..toc_header.entry_count {
            cp.check_entry(i)?;
        }
        Ok(cp)
    }

    fn raw_entry(&self, index: u32) -> Option<TocEntry> {
        let start = (index as usize).checked_mul(TOC_ENTRY_LEN)?;
        let bytes: &[u8; TOC_ENTRY_LEN] = self
            .entries
            .get(start..start.checked_add(TOC_ENTRY_LEN)?)?
            .try_into()
            .ok()?;
        Some(TocEntry::decode(bytes))
    }

    fn entry_offset(&self, index: u32) -> u64 {
        let rel = u64::from(index)
            .saturating_mul(TOC_ENTRY_LEN as u64)
            .saturating_add(TOC_HEADER_LEN as u64);
        self.header.toc_offset.saturating_add(rel)
    }

    fn check_entry(&self, index: u32) -> Result<ChunkRef<'a>, Error> {
        let at = self.entry_offset(index);
        let entry = self.raw_entry(index).ok_or(
            Error::new(
                ErrorKind::Truncated {
                    need: at.saturating_add(80),
                },
                Field::TocLength,
                at,
            )
            .at(index),
        )?;
        let end = entry.chunk_offset.checked_add(entry.chunk_length);
        if end.is_none_or(|e| e > self.file_len) {
            return Err(Error::new(
                ErrorKind::OutOfBounds {
                    offset: entry.chunk_offset,
                    length: entry.chunk_length,
                    limit: self.file_len,
                },
                Field::ChunkRange,
                at.saturating_add(8),
            )
            .at(index));
        }
        if entry.fourcc != FourCc::WTSH && entry.chunk_ulen > limits::MAX_METADATA_ULEN {
            return Err(Error::new(
                ErrorKind::LimitExceeded {
                    value: entry.chunk_ulen,
                    limit: limits::MAX_METADATA_ULEN,
                },
                Field::ChunkUlen,
                at.saturating_add(24),
            )
            .at(index));
        }
        let name_off = u64::from(entry.name_off);
        let name_len = u64::from(entry.name_len);
        let name_bytes = sub(self.strtab, name_off, name_len, Field::ChunkName).map_err(|_| {
            Error::new(
                ErrorKind::OutOfBounds {
                    offset: name_off,
                    length: name_len,
                    limit: self.strtab.len() as u64,
                },
                Field::ChunkName,
                at.saturating_add(32),
            )
            .at(index)
        })?;
        let name = core::str::from_utf8(name_bytes).map_err(|_| {
            Error::new(
                ErrorKind::InvalidUtf8,
                Field::ChunkName,
                at.saturating_add(32),
            )
            .at(index)
        })?;
        Ok(ChunkRef { index, entry, name })
    }

    /// Size of the whole file as given to the parser.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Number of TOC entries.
    pub fn len(&self) -> u32 {
        self.toc_header.entry_count
    }

    /// Whether the TOC has no entries.
    pub fn is_empty(&self) -> bool {
        self.toc_header.entry_count == 0
    }

    /// The entry at `index`.
    pub fn get(&self, index: u32) -> Option<ChunkRef<'a>> {
        if index >= self.toc_header.entry_count {
            return None;
        }
        self.check_entry(index).ok()
    }

    /// Iterates over all entries in TOC order.
    pub fn entries(&self) -> TocIter<'a> {
        TocIter { cp: *self, next: 0 }
    }

    /// The first chunk with this fourcc and name.
    pub fn find(&self, fourcc: FourCc, name: &str) -> Result<Option<ChunkRef<'a>>, Error> {
        Ok(self
            .entries()
            .find(|c| c.entry.fourcc == fourcc && c.name == name))
    }

    /// The first chunk with this fourcc.
    pub fn first(&self, fourcc: FourCc) -> Option<ChunkRef<'a>> {
        self.entries().find(|c| c.entry.fourcc == fourcc)
    }

    /// The start of payloads: align16 after the string table (the end of the
    /// range an IHSH digest covers).
    pub fn payload_start(&self) -> Option<u64> {
        align16(
            self.header
                .string_table_offset
                .checked_add(self.header.string_table_length)?,
        )
    }

    /// File offset of the 32-byte hash field of entry `index`.
    pub fn hash_field_offset(&self, index: u32) -> u64 {
        self.entry_offset(index)
            .saturating_add(TocEntry::HASH_FIELD_OFFSET as u64)
    }
}

/// Iterator over the checked TOC entries of a [`ControlPlane`].
#[derive(Clone, Debug)]
pub struct TocIter<'a> {
    cp: ControlPlane<'a>,
    next: u32,
}

impl<'a> Iterator for TocIter<'a> {
    type Item = ChunkRef<'a>;
    fn next(&mut self) -> Option<ChunkRef<'a>> {
        while self.next < self.cp.toc_header.entry_count {
            let i = self.next;
            self.next = self.next.saturating_add(1);
            if let Ok(c) = self.cp.check_entry(i) {
                return Some(c);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.cp.toc_header.entry_count.saturating_sub(self.next) as usize;
        (left, Some(left))
    }
}
