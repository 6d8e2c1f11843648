//! Attached files: whole files that travel with the weights (a model's
//! `config.json`, its tokenizer, its README), stored in an AERO file as
//! `FILE` chunks — this project's extension, documented in
//! `docs/FORMAT-NOTES.md`.
//!
//! A `FILE` chunk's name is the file's relative path (`config.json`,
//! `1_Pooling/config.json`), its payload the file's bytes, its TOC hash the
//! BLAKE3 of those bytes, its flags `0x8` (optional: readers that do not know
//! the chunk skip it). Reading one ([`AeroFile::attached_file`]) verifies
//! that hash every time, as for metadata chunks; `validate` checks them in
//! every mode.
//!
//! Names are checked when written and again when read
//! ([`name_problem`], aero-format's
//! [`attached_name_problem`](aero_format::names::attached_name_problem)): a
//! relative path of `/`-separated components, none empty, `.` or `..`,
//! without backslashes or control characters — a name can never point
//! outside the folder it is written into.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use aero_format::FourCc;

use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::file::AeroFile;

/// Largest attached file (256 MiB): configurations and tokenizers are far
/// smaller; a file this large is probably weights in another format.
pub const MAX_FILE_LEN: u64 = 256 << 20;
/// Largest total of all attached files of one model (1 GiB).
pub const MAX_TOTAL_LEN: u64 = 1 << 30;
/// Most attached files one model may carry.
pub const MAX_FILES: usize = 10_000;
/// Longest attached file name, in bytes.
pub const MAX_NAME_LEN: usize = aero_format::names::MAX_ATTACHED_NAME_LEN;
/// Most path components in an attached file name.
pub const MAX_DEPTH: usize = aero_format::names::MAX_ATTACHED_DEPTH;

/// Where the bytes of a file to attach come from.
#[derive(Clone, Debug)]
pub enum AttachedData {
    /// A local file, read (and hashed) while the output is written; it must
    /// still have the length it had when listed.
    Path {
        /// The file.
        path: PathBuf,
        /// Its length when it was listed.
        len: u64,
    },
    /// Bytes in memory (a file copied from another AERO file).
    Bytes(Arc<[u8]>),
}

impl AttachedData {
    /// The number of bytes.
    pub fn len(&self) -> u64 {
        match self {
            AttachedData::Path { len, .. } => *len,
            AttachedData::Bytes(b) => b.len() as u64,
        }
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file to attach to a model being written.
#[derive(Clone, Debug)]
pub struct AttachedFile {
    /// Its relative path in the model's folder (the chunk name).
    pub name: String,
    /// Its bytes.
    pub data: AttachedData,
}

pub use aero_format::names::attached_name_problem as name_problem;

/// Checks a list of files to attach before anything is written: valid,
/// unique names, no name that is also a directory of another (`a` and
/// `a/b`), within the count and size caps.
pub fn check_files(files: &[AttachedFile]) -> Result<()> {
    let bad = |name: &str, reason: String| Error::BadAttachedFile {
        name: name.to_string(),
        reason,
    };
    if files.len() > MAX_FILES {
        return Err(bad(
            &files[MAX_FILES].name,
            format!("more than {MAX_FILES} attached files"),
        ));
    }
    let mut names = std::collections::HashSet::new();
    let mut total = 0u64;
    for f in files {
        if let Some(p) = name_problem(&f.name) {
            return Err(bad(&f.name, p.into()));
        }
        if !names.insert(f.name.as_str()) {
            return Err(bad(&f.name, "attached twice".into()));
        }
        let len = f.data.len();
        if len > MAX_FILE_LEN {
            return Err(bad(
                &f.name,
                format!("{len} bytes exceed the cap of {MAX_FILE_LEN} bytes per attached file"),
            ));
        }
        total = total.saturating_add(len);
        if total > MAX_TOTAL_LEN {
            return Err(bad(
                &f.name,
                format!("attached files exceed the cap of {MAX_TOTAL_LEN} bytes in all"),
            ));
        }
    }
    for f in files {
        let mut at = 0;
        while let Some(i) = f.name[at..].find('/') {
            let dir = &f.name[..at + i];
            if names.contains(dir) {
                return Err(bad(
                    dir,
                    format!("is a file, and also the directory of '{}'", f.name),
                ));
            }
            at += i + 1;
        }
    }
    Ok(())
}

impl AeroFile {
    /// The `FILE` chunks (attached files), in TOC order.
    pub fn attached_files(&self) -> Vec<&Chunk> {
        self.chunks()
            .iter()
            .filter(|c| c.fourcc == FourCc::FILE)
            .collect()
    }

    /// The bytes of the attached file `name`, verified against its TOC hash
    /// (on every call). A mismatch is [`Error::HashMismatch`] naming the
    /// chunk; a hash that was never recorded, an unsafe name or two chunks
    /// with this name are [`Error::Chunk`]; no such file is
    /// [`Error::NoSuchAttachedFile`].
    pub fn attached_file(&self, name: &str) -> Result<Cow<'_, [u8]>> {
        let mut found = self
            .chunks()
            .iter()
            .filter(|c| c.fourcc == FourCc::FILE && c.name == name);
        let Some(c) = found.next() else {
            return Err(Error::NoSuchAttachedFile {
                path: self.path().to_path_buf(),
                name: name.to_string(),
            });
        };
        let chunk_err = |reason: String| Error::Chunk {
            path: self.path().to_path_buf(),
            index: c.index,
            fourcc: c.fourcc,
            name: c.name.clone(),
            reason,
        };
        if found.next().is_some() {
            return Err(chunk_err("more than one FILE chunk has this name".into()));
        }
        if let Some(p) = name_problem(name) {
            return Err(chunk_err(format!("unsafe attached file name: {p}")));
        }
        if c.ulen > MAX_FILE_LEN {
            return Err(chunk_err(format!(
                "{} bytes exceed the cap of {MAX_FILE_LEN} bytes per attached file",
                c.ulen
            )));
        }
        let (data, status) = self.read_verified(c)?;
        if status != crate::ChunkStatus::Verified {
            return Err(chunk_err(
                "its hash was not recorded (all-zero TOC hash): the bytes cannot be verified"
                    .into(),
            ));
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "config.json",
            "1_Pooling/config.json",
            ".gitattributes",
            "a b/ü.txt",
        ] {
            assert_eq!(name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/",
            "./a",
            "a\\b",
            "a\nb",
            "a\0b",
        ] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(name_problem("a/".repeat(17).trim_end_matches('/')).is_some());
    }

    #[test]
    fn file_and_directory_clash() {
        let f = |n: &str| AttachedFile {
            name: n.into(),
            data: AttachedData::Bytes(Arc::from(&b"x"[..])),
        };
        assert!(check_files(&[f("a/b"), f("c")]).is_ok());
        let e = check_files(&[f("a/b/c"), f("a/b")]).unwrap_err();
        assert!(e.to_string().contains("'a/b'"), "{e}");
        assert!(check_files(&[f("a"), f("a")]).is_err());
    }
}
