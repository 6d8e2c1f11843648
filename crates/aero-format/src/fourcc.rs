use core::fmt;

/// A chunk type code: four ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// JSON metadata (`meta.json`).
    pub const MJSN: FourCc = FourCc(*b"MJSN");
    /// MessagePack manifest (`manifest`).
    pub const MMSG: FourCc = FourCc(*b"MMSG");
    /// MessagePack tensor index (`tensors`).
    pub const TIDX: FourCc = FourCc(*b"TIDX");
    /// Weight shard (`weights.shard{N}`).
    pub const WTSH: FourCc = FourCc(*b"WTSH");
    /// Control-plane digest (`control.integrity`).
    pub const IHSH: FourCc = FourCc(*b"IHSH");
    /// Page hashes of one shard (`weights.shard{N}.phsh`).
    pub const PHSH: FourCc = FourCc(*b"PHSH");
    /// An attached file (this project's extension, not in the spec): the
    /// bytes of one file that travels with the weights (`config.json`, a
    /// tokenizer), named by its relative path. Written with the optional
    /// flag, so readers that do not know it skip it. See
    /// `docs/FORMAT-NOTES.md`.
    pub const FILE: FourCc = FourCc(*b"FILE");

    /// The six codes the specification defines.
    pub const KNOWN: [FourCc; 6] = [
        Self::MJSN,
        Self::MMSG,
        Self::TIDX,
        Self::WTSH,
        Self::IHSH,
        Self::PHSH,
    ];

    /// Whether this is one of [`FourCc::KNOWN`].
    pub fn is_known(self) -> bool {
        Self::KNOWN.contains(&self)
    }

    /// The code as text, if it is ASCII (it always is for known codes).
    pub fn as_str(&self) -> Option<&str> {
        if self.0.is_ascii() {
            core::str::from_utf8(&self.0).ok()
        } else {
            None
        }
    }

    /// The chunk's `role` in the MMSG manifest (spec §6); `"other"` for an
    /// unknown fourcc.
    pub fn role(self) -> &'static str {
        match self {
            FourCc::MJSN => "json",
            FourCc::MMSG => "manifest",
            FourCc::TIDX => "tensors",
            FourCc::WTSH => "weights",
            FourCc::IHSH => "control_integrity",
            FourCc::PHSH => "page_hashes",
            FourCc::FILE => "attached_file",
            _ => "other",
        }
    }

    /// Metadata chunks are hash-verified on every read (spec §10).
    pub fn is_metadata(self) -> bool {
        matches!(
            self,
            Self::MJSN | Self::MMSG | Self::TIDX | Self::IHSH | Self::PHSH
        )
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => f.write_str(s),
            None => write!(
                f,
                "{:02x}{:02x}{:02x}{:02x}",
                self.0[0], self.0[1], self.0[2], self.0[3]
            ),
        }
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc({self})")
    }
}

/// Chunk flag bits (spec §3). Unknown bits are preserved and ignored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChunkFlags(pub u32);

impl ChunkFlags {
    /// Payload is zstd-compressed.
    pub const COMPRESSED: u32 = 0x1;
    /// Payload is mmap-critical (weights).
    pub const MMAP_CRITICAL: u32 = 0x2;
    /// Payload is an index structure.
    pub const INDEX: u32 = 0x4;
    /// Chunk is optional: a reader that does not know it skips it.
    pub const OPTIONAL: u32 = 0x8;

    /// `COMPRESSED` is set.
    pub const fn compressed(self) -> bool {
        self.0 & Self::COMPRESSED != 0
    }
    /// `MMAP_CRITICAL` is set.
    pub const fn mmap_critical(self) -> bool {
        self.0 & Self::MMAP_CRITICAL != 0
    }
    /// `INDEX` is set.
    pub const fn index(self) -> bool {
        self.0 & Self::INDEX != 0
    }
    /// `OPTIONAL` is set.
    pub const fn optional(self) -> bool {
        self.0 & Self::OPTIONAL != 0
    }
}

impl fmt::Debug for ChunkFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkFlags({:#x})", self.0)
    }
}
