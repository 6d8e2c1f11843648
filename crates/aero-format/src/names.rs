//! Chunk names: the ones a writer gives the standard chunks (spec §4), the
//! numbered shard names, and the rules for the names of attached files
//! (`FILE` chunks, this project's extension: `docs/FORMAT-NOTES.md`).
//!
//! ```
//! use aero_format::names::{self, ShardName};
//! use aero_format::FourCc;
//! assert_eq!(FourCc::TIDX.standard_name(), Some(names::TENSORS));
//! let mut buf = [0u8; 64];
//! let n = ShardName::page_hashes(3).write_to(&mut buf).unwrap();
//! assert_eq!(&buf[..n], b"weights.shard3.phsh");
//! assert_eq!(names::parse_shard_name("weights.shard3.phsh", true), Some(3));
//! assert_eq!(names::attached_name_problem("../etc/passwd"), Some("the name has a '.' or '..' component"));
//! ```

use core::fmt;

use crate::fourcc::FourCc;

/// The MJSN chunk's name.
pub const META_JSON: &str = "meta.json";
/// The MMSG chunk's name.
pub const MANIFEST: &str = "manifest";
/// The TIDX chunk's name.
pub const TENSORS: &str = "tensors";
/// The IHSH chunk's name.
pub const CONTROL_INTEGRITY: &str = "control.integrity";
/// What every weight shard's name starts with (`weights.shard{N}`).
pub const SHARD_PREFIX: &str = "weights.shard";
/// What a PHSH chunk's name adds to its shard's (`weights.shard{N}.phsh`).
pub const PAGE_HASHES_SUFFIX: &str = ".phsh";

impl FourCc {
    /// The name a writer gives the one chunk of this type (spec §4), for
    /// the types that have a fixed name; `None` for WTSH and PHSH (named by
    /// their shard: [`ShardName`]), `FILE` (named by the file's path) and
    /// unknown types.
    pub const fn standard_name(self) -> Option<&'static str> {
        match self {
            FourCc::MJSN => Some(META_JSON),
            FourCc::MMSG => Some(MANIFEST),
            FourCc::TIDX => Some(TENSORS),
            FourCc::IHSH => Some(CONTROL_INTEGRITY),
            _ => None,
        }
    }
}

/// The name of shard `id`'s WTSH chunk (`weights.shard{id}`) or of its
/// PHSH chunk (`weights.shard{id}.phsh`), written by [`fmt::Display`]
/// (`to_string()` where there is an allocator, [`ShardName::write_to`]
/// where there is none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardName {
    /// The shard id.
    pub id: u64,
    /// Whether this names the shard's page hashes (PHSH) rather than the
    /// shard itself.
    pub page_hashes: bool,
}

impl ShardName {
    /// `weights.shard{id}`.
    pub const fn weights(id: u64) -> ShardName {
        ShardName {
            id,
            page_hashes: false,
        }
    }

    /// `weights.shard{id}.phsh`.
    pub const fn page_hashes(id: u64) -> ShardName {
        ShardName {
            id,
            page_hashes: true,
        }
    }

    /// Writes the name into `buf` and returns its length; `None` when `buf`
    /// is too small (38 bytes always suffice).
    pub fn write_to(&self, buf: &mut [u8]) -> Option<usize> {
        struct Cursor<'b> {
            buf: &'b mut [u8],
            len: usize,
        }
        impl fmt::Write for Cursor<'_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
                self.buf
                    .get_mut(self.len..end)
                    .ok_or(fmt::Error)?
                    .copy_from_slice(s.as_bytes());
                self.len = end;
                Ok(())
            }
        }
        let mut c = Cursor { buf, len: 0 };
        fmt::write(&mut c, format_args!("{self}")).ok()?;
        Some(c.len)
    }

    /// Whether `name` is this name.
    pub fn is(&self, name: &str) -> bool {
        parse_shard_name(name, self.page_hashes) == Some(self.id)
    }
}

impl fmt::Display for ShardName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SHARD_PREFIX}{}", self.id)?;
        if self.page_hashes {
            f.write_str(PAGE_HASHES_SUFFIX)?;
        }
        Ok(())
    }
}

/// Parses `weights.shard{N}` (or `weights.shard{N}.phsh` when `phsh` is
/// true). Leading zeros and signs are rejected so each id has exactly one
/// name.
pub fn parse_shard_name(name: &str, phsh: bool) -> Option<u64> {
    let rest = name.strip_prefix(SHARD_PREFIX)?;
    let digits = if phsh {
        rest.strip_suffix(PAGE_HASHES_SUFFIX)?
    } else {
        rest
    };
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The shard a PHSH chunk's name says it covers (`weights.shard3.phsh` →
/// `weights.shard3`): the standard name without [`PAGE_HASHES_SUFFIX`];
/// `None` for a name without it. The payload's `shard_name` is what a
/// reader trusts once the chunk verifies.
pub fn shard_of_page_hashes(name: &str) -> Option<&str> {
    name.strip_suffix(PAGE_HASHES_SUFFIX)
}

/// Longest attached file name, in bytes.
pub const MAX_ATTACHED_NAME_LEN: usize = 1024;
/// Most path components in an attached file name.
pub const MAX_ATTACHED_DEPTH: usize = 16;

/// What is wrong with an attached file's name (a `FILE` chunk's name), if
/// anything: it must be a relative path of `/`-separated components (at
/// most [`MAX_ATTACHED_DEPTH`]), none empty, `.` or `..`, with no
/// backslash, NUL or other control character, at most
/// [`MAX_ATTACHED_NAME_LEN`] bytes — so a name can never point outside the
/// folder it is written into. Checked when written and again when read.
pub fn attached_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("the name is empty");
    }
    if name.len() > MAX_ATTACHED_NAME_LEN {
        return Some("the name is longer than 1024 bytes");
    }
    if name.chars().any(|c| c.is_control()) {
        return Some("the name holds a control character");
    }
    if name.contains('\\') {
        return Some("the name holds a backslash");
    }
    if name.starts_with('/') {
        return Some("the name is an absolute path");
    }
    let mut depth = 0usize;
    for c in name.split('/') {
        depth = depth.saturating_add(1);
        match c {
            "" => return Some("the name has an empty path component"),
            "." | ".." => return Some("the name has a '.' or '..' component"),
            _ => {}
        }
    }
    if depth > MAX_ATTACHED_DEPTH {
        return Some("the name has more than 16 path components");
    }
    None
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_round_trip() {
        let mut buf = [0u8; 38];
        for id in [0, 7, 10, u64::MAX] {
            for name in [ShardName::weights(id), ShardName::page_hashes(id)] {
                let n = name.write_to(&mut buf).unwrap();
                let s = core::str::from_utf8(&buf[..n]).unwrap();
                assert_eq!(parse_shard_name(s, name.page_hashes), Some(id), "{s}");
                assert!(name.is(s));
                assert_eq!(parse_shard_name(s, !name.page_hashes), None, "{s}");
            }
        }
        assert_eq!(ShardName::weights(1).write_to(&mut [0u8; 13]), None);
        for bad in [
            "weights.shard",
            "weights.shard01",
            "weights.shard+1",
            "weights.shard1x",
        ] {
            assert_eq!(parse_shard_name(bad, false), None, "{bad}");
        }
        assert_eq!(
            shard_of_page_hashes("weights.shard2.phsh"),
            Some("weights.shard2")
        );
        assert_eq!(shard_of_page_hashes("weights.shard2"), None);
    }

    #[test]
    fn standard_names() {
        assert_eq!(FourCc::MJSN.standard_name(), Some("meta.json"));
        assert_eq!(FourCc::MMSG.standard_name(), Some("manifest"));
        assert_eq!(FourCc::TIDX.standard_name(), Some("tensors"));
        assert_eq!(FourCc::IHSH.standard_name(), Some("control.integrity"));
        for fc in [FourCc::WTSH, FourCc::PHSH, FourCc::FILE, FourCc(*b"ABCD")] {
            assert_eq!(fc.standard_name(), None);
        }
    }
}
