use core::fmt;

/// Which field or region of the file an [`Error`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The 4-byte magic at offset 0.
    Magic,
    /// `version_major` / `version_minor`.
    Version,
    /// `header_size`.
    HeaderSize,
    /// `file_flags`.
    FileFlags,
    /// `toc_offset`.
    TocOffset,
    /// `toc_length`.
    TocLength,
    /// `entry_count` in the TOC header.
    EntryCount,
    /// `string_table_offset`.
    StringTableOffset,
    /// `string_table_length`.
    StringTableLength,
    /// A TOC entry's `chunk_offset` / `chunk_length`.
    ChunkRange,
    /// A TOC entry's `chunk_ulen`.
    ChunkUlen,
    /// A TOC entry's `name_off` / `name_len`.
    ChunkName,
    /// The TIDX top-level map.
    Tidx,
    /// The `tensors` array of the TIDX.
    Tensors,
    /// A tensor's `name`.
    TensorName,
    /// A tensor's `dtype`.
    TensorDtype,
    /// A tensor's `shape`.
    TensorShape,
    /// A tensor's `shard_id`.
    TensorShardId,
    /// A tensor's `data_off`.
    TensorDataOff,
    /// A tensor's `data_len`.
    TensorDataLen,
    /// A tensor's `hash_b3`.
    TensorHash,
    /// Some other (extra) tensor key.
    TensorExtra,
    /// A MessagePack value.
    MsgPack,
    /// The IHSH top-level map.
    Ihsh,
    /// The IHSH `algo`.
    IhshAlgo,
    /// The IHSH `covered_ranges`.
    IhshRanges,
    /// The IHSH `digest`.
    IhshDigest,
    /// The PHSH top-level map.
    Phsh,
    /// The PHSH `shard_name`.
    PhshShardName,
    /// The PHSH `page_size`.
    PhshPageSize,
    /// The PHSH `digests`.
    PhshDigests,
}

impl Field {
    /// The name of the field as the specification spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Field::Magic => "magic",
            Field::Version => "version",
            Field::HeaderSize => "header_size",
            Field::FileFlags => "file_flags",
            Field::TocOffset => "toc_offset",
            Field::TocLength => "toc_length",
            Field::EntryCount => "entry_count",
            Field::StringTableOffset => "string_table_offset",
            Field::StringTableLength => "string_table_length",
            Field::ChunkRange => "chunk_offset/chunk_length",
            Field::ChunkUlen => "chunk_ulen",
            Field::ChunkName => "name_off/name_len",
            Field::Tidx => "TIDX",
            Field::Tensors => "tensors",
            Field::TensorName => "name",
            Field::TensorDtype => "dtype",
            Field::TensorShape => "shape",
            Field::TensorShardId => "shard_id",
            Field::TensorDataOff => "data_off",
            Field::TensorDataLen => "data_len",
            Field::TensorHash => "hash_b3",
            Field::TensorExtra => "extra key",
            Field::MsgPack => "msgpack",
            Field::Ihsh => "IHSH",
            Field::IhshAlgo => "IHSH algo",
            Field::IhshRanges => "IHSH covered_ranges",
            Field::IhshDigest => "IHSH digest",
            Field::Phsh => "PHSH",
            Field::PhshShardName => "PHSH shard_name",
            Field::PhshPageSize => "PHSH page_size",
            Field::PhshDigests => "PHSH digests",
        }
    }
}

/// What was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended before the structure did; `need` bytes are required in total.
    Truncated {
        /// Total number of bytes needed from the start of the parsed region.
        need: u64,
    },
    /// The magic bytes are not `AERO`.
    BadMagic([u8; 4]),
    /// Unsupported version.
    UnsupportedVersion {
        /// `version_major` found.
        major: u16,
        /// `version_minor` found.
        minor: u16,
    },
    /// A field holds a value that the format forbids.
    BadValue(u64),
    /// A range does not fit inside the file (or overflows u64).
    OutOfBounds {
        /// Start of the range.
        offset: u64,
        /// Length of the range.
        length: u64,
        /// Size of the containing region.
        limit: u64,
    },
    /// A value exceeds one of the caps in [`crate::limits`].
    LimitExceeded {
        /// Value found.
        value: u64,
        /// The cap.
        limit: u64,
    },
    /// Bytes that must be UTF-8 are not.
    InvalidUtf8,
    /// A MessagePack value has an unexpected type.
    WrongType,
    /// A required key is missing.
    MissingKey,
    /// A key occurs twice in one map.
    DuplicateKey,
    /// MessagePack nesting is deeper than [`crate::limits::MAX_MSGPACK_DEPTH`].
    TooDeep,
    /// A `hash_b3` string is not 64 hex characters.
    BadHex,
    /// A value the format allows but this implementation does not support
    /// (an IHSH `algo` other than `blake3-256`).
    Unsupported,
}

/// A parse error: what was wrong, which field, and where.
///
/// Cheap to create and `Copy`, like `gimli::Error`. `offset` is an absolute
/// file offset for header/TOC errors and an offset inside the uncompressed
/// payload for TIDX errors; `index` is the TOC entry or tensor index when one
/// applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    /// What was wrong.
    pub kind: ErrorKind,
    /// Which field.
    pub field: Field,
    /// Byte offset the problem was found at.
    pub offset: u64,
    /// TOC entry index or tensor index, when one applies.
    pub index: Option<u32>,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind, field: Field, offset: u64) -> Self {
        Error {
            kind,
            field,
            offset,
            index: None,
        }
    }

    pub(crate) const fn at(mut self, index: u32) -> Self {
        self.index = Some(index);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field.as_str();
        match self.kind {
            ErrorKind::Truncated { need } => {
                write!(f, "{field}: input truncated, need {need} bytes")?
            }
            ErrorKind::BadMagic(m) => write!(f, "{field}: expected \"AERO\", found {m:02x?}")?,
            ErrorKind::UnsupportedVersion { major, minor } => write!(
                f,
                "{field}: unsupported version {major}.{minor} (expected 0.1)"
            )?,
            ErrorKind::BadValue(v) => write!(f, "{field}: invalid value {v}")?,
            ErrorKind::OutOfBounds {
                offset,
                length,
                limit,
            } => write!(
                f,
                "{field}: range at {offset} of length {length} exceeds the limit {limit}"
            )?,
            ErrorKind::LimitExceeded { value, limit } => {
                write!(f, "{field}: {value} exceeds the cap {limit}")?
            }
            ErrorKind::InvalidUtf8 => write!(f, "{field}: not valid UTF-8")?,
            ErrorKind::WrongType => write!(f, "{field}: wrong MessagePack type")?,
            ErrorKind::MissingKey => write!(f, "{field}: required key missing")?,
            ErrorKind::DuplicateKey => write!(f, "{field}: key appears twice")?,
            ErrorKind::TooDeep => write!(f, "{field}: MessagePack nested too deeply")?,
            ErrorKind::BadHex => write!(f, "{field}: not 64 lowercase hex characters")?,
            ErrorKind::Unsupported => write!(f, "{field}: not supported")?,
        }
        if let Some(i) = self.index {
            write!(f, " (entry {i})")?;
        }
        write!(f, " at offset {}", self.offset)
    }
}

impl core::error::Error for Error {}
