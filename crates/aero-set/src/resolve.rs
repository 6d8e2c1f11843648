//! Where a manifest path points, whether it may be followed, and how its
//! bytes are opened.
//!
//! Resolution is separate from opening so that the safety rules (spec §13)
//! are applied in one place whatever the storage: a relative path must stay
//! inside the set's directory (no `..`, no absolute paths, no symlink leading
//! out), and a local set names remote URLs only when the caller allows it.
//! Opening goes through [`PartStorage`], the seam a remote range source plugs
//! into (AEROSET v0.2 remote reading) without callers changing.

use std::path::{Component, Path, PathBuf};

use aero_io::url::{Kind, classify};
use aero_io::{AeroFile, ByteSource, LocalSource};

use crate::error::{Result, SetError};

/// A resolved manifest path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local file, canonicalized and checked to lie inside the set directory.
    Local(PathBuf),
    /// An `http://` / `https://` URL, or an object-store URL (`s3://`,
    /// `gs://`, `az://`; opened only by storage built with the `s3` feature).
    Remote(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Remote(u) => f.write_str(u),
        }
    }
}

/// Where the manifest itself lives: relative paths resolve against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetBase {
    /// A local directory (canonical).
    Dir(PathBuf),
    /// A remote manifest's URL "directory" (everything before the last `/`).
    Url(String),
}

/// Options for opening a set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Let a local manifest name remote parts: absolute `http(s)://` paths,
    /// and relative paths under a v0.2 `base_url`. Off by default; with it
    /// off, `base_url` is ignored and relative paths are read from the set's
    /// directory (a downloaded copy of a hosted set reads locally).
    pub allow_remote: bool,
}

/// Opens the bytes behind a [`Location`]. Implemented for local files by
/// [`LocalStorage`]; a remote range source implements it for URLs.
pub trait PartStorage: Send + Sync {
    /// Opens `location` for random access.
    /// A local file is returned as [`aero_io::Source::Local`], so hashing
    /// and copying it keep the local fast paths.
    fn open(&self, location: &Location) -> Result<aero_io::Source>;

    /// Opens `location` as an AERO file named `label` in errors, once
    /// `check_len` accepted its size. The default parses [`PartStorage::open`]'s
    /// source; a storage whose sources cache fetched ranges overrides it so
    /// that verified reads can drop a damaged cached copy
    /// ([`aero_io::AeroFile::from_remote`]).
    fn open_file(
        &self,
        location: &Location,
        label: PathBuf,
        check_len: &dyn Fn(u64) -> Result<()>,
    ) -> Result<AeroFile> {
        let src = self.open(location)?;
        check_len(src.len())?;
        Ok(AeroFile::from_source(label, src)?)
    }

    /// Range requests this storage keeps in flight for remote files
    /// (`None`: it opens local files only). Whole-set operations read a
    /// quarter as many remote files at once (rounded up), which share them.
    fn remote_jobs(&self) -> Option<usize> {
        None
    }
}

/// Local files only: memory-mapped where possible. URLs are refused.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalStorage;

impl PartStorage for LocalStorage {
    fn open(&self, location: &Location) -> Result<aero_io::Source> {
        match location {
            Location::Local(p) => {
                let src = LocalSource::open(p).map_err(|e| SetError::io(p, e))?;
                Ok(src.into())
            }
            Location::Remote(u) => Err(SetError::Unsupported {
                location: u.clone(),
                reason:
                    "remote parts need a remote storage backend; this reader opens local files only"
                        .into(),
            }),
        }
    }
}

/// Checks a manifest path without touching the filesystem: not empty, no NUL,
/// not absolute, no drive letter or URL scheme, no backslash, no `..`.
/// Returns `Ok(true)` for an `http(s)://` or object-store (`s3://`, `gs://`,
/// `az://`) URL ([`aero_io::url::classify`]; object-store URLs are
/// recognised whatever the build's features, so that the trust rules treat
/// them as remote everywhere), `Ok(false)` for a relative path.
pub fn check_lexical(manifest: &Path, field: &str, raw: &str) -> Result<bool> {
    let unsafe_path = |reason: &str| SetError::UnsafePath {
        path: manifest.to_path_buf(),
        field: field.to_string(),
        value: raw.to_string(),
        reason: reason.to_string(),
    };
    if raw.is_empty() {
        return Err(unsafe_path("is empty"));
    }
    if raw.contains('\0') {
        return Err(unsafe_path("contains a NUL byte"));
    }
    if matches!(classify(raw), Kind::Http | Kind::Object { .. }) {
        return Ok(true);
    }
    if raw.starts_with('/') || raw.starts_with('\\') || Path::new(raw).is_absolute() {
        return Err(unsafe_path(
            "is absolute; paths must be relative to the set directory",
        ));
    }
    if raw.contains('\\') {
        return Err(unsafe_path(
            "contains a backslash; use '/' as the separator",
        ));
    }
    let first = raw.split('/').next().unwrap_or_default();
    if first.contains(':') {
        return Err(unsafe_path(
            "starts with a URL scheme or drive letter; only relative paths and http(s)://, s3://, gs:// or az:// URLs are allowed",
        ));
    }
    if raw.split('/').any(|c| c == "..") {
        return Err(unsafe_path("uses '..' and would leave the set directory"));
    }
    if Path::new(raw)
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(unsafe_path("is not a plain relative path"));
    }
    Ok(false)
}

/// Resolves a manifest path. `dir` must be canonical. A local result is
/// canonicalized (the file must exist) and must stay inside `dir` after
/// following symlinks.
///
/// Remote manifests: relative paths resolve against `base_url`, else the
/// manifest's own URL "directory" (`https://h/set`, `s3://bucket/set`);
/// absolute URLs are followed, except that a manifest fetched over
/// http(s) may not name object-store URLs: those are read with this
/// machine's cloud credentials, which an unauthenticated web server must
/// not be able to point at arbitrary buckets.
pub fn resolve(
    manifest: &Path,
    base: &SetBase,
    base_url: Option<&str>,
    field: &str,
    raw: &str,
    opts: &SetOptions,
) -> Result<Location> {
    let remote = check_lexical(manifest, field, raw)?;
    let not_allowed = |url: String| SetError::RemoteNotAllowed {
        path: manifest.to_path_buf(),
        field: field.to_string(),
        url,
    };
    match base {
        SetBase::Url(u) => {
            if remote {
                let object = |s| matches!(classify(s), Kind::Object { .. });
                if object(raw) && !object(u) {
                    return Err(SetError::UnsafePath {
                        path: manifest.to_path_buf(),
                        field: field.to_string(),
                        value: raw.to_string(),
                        reason: "names an object-store URL from a manifest served over http(s); \
                                 only a manifest in object storage (or a local one with --remote) \
                                 may name s3://, gs:// or az:// objects"
                            .to_string(),
                    });
                }
                Ok(Location::Remote(raw.to_string()))
            } else {
                let b = base_url.unwrap_or(u);
                Ok(Location::Remote(format!(
                    "{}/{}",
                    b.trim_end_matches('/'),
                    raw.trim_start_matches("./")
                )))
            }
        }
        SetBase::Dir(dir) => {
            if remote {
                return if opts.allow_remote {
                    Ok(Location::Remote(raw.to_string()))
                } else {
                    Err(not_allowed(raw.to_string()))
                };
            }
            if let (Some(b), true) = (base_url, opts.allow_remote) {
                return Ok(Location::Remote(format!(
                    "{}/{}",
                    b.trim_end_matches('/'),
                    raw.trim_start_matches("./")
                )));
            }
            inside(manifest, dir, field, raw).map(Location::Local)
        }
    }
}

/// Canonicalizes `dir/raw` and checks it stays under the canonical `dir`.
pub fn inside(manifest: &Path, dir: &Path, field: &str, raw: &str) -> Result<PathBuf> {
    check_lexical(manifest, field, raw)?;
    let joined = dir.join(raw);
    let canon = joined.canonicalize().map_err(|e| SetError::MissingFile {
        path: manifest.to_path_buf(),
        field: field.to_string(),
        file: joined.clone(),
        source: e,
    })?;
    if !canon.starts_with(dir) {
        return Err(SetError::UnsafePath {
            path: manifest.to_path_buf(),
            field: field.to_string(),
            value: raw.to_string(),
            reason: format!(
                "resolves to {} (through a symlink), outside the set directory {}",
                canon.display(),
                dir.display()
            ),
        });
    }
    if canon.is_dir() {
        return Err(SetError::Field {
            path: manifest.to_path_buf(),
            field: field.to_string(),
            reason: format!("'{}' is a directory, not a file", joined.display()),
        });
    }
    Ok(canon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_rules() {
        let m = Path::new("m.json");
        for bad in [
            "",
            "/etc/passwd",
            "../x.aero",
            "a/../../x",
            "a\\b",
            "C:x",
            "file:///etc/passwd",
            "a\0b",
        ] {
            assert!(check_lexical(m, "parts[0].path", bad).is_err(), "{bad:?}");
        }
        assert!(!check_lexical(m, "f", "part-000.aero").unwrap());
        assert!(!check_lexical(m, "f", "./sub/part.aero").unwrap());
        assert!(check_lexical(m, "f", "https://h/x.aero").unwrap());
        assert!(check_lexical(m, "f", "HTTP://h/x.aero").unwrap());
        assert!(check_lexical(m, "f", "s3://bucket/x.aero").unwrap());
        assert!(check_lexical(m, "f", "GS://bucket/x.aero").unwrap());
        assert!(check_lexical(m, "f", "az://container/x.aero").unwrap());
        for bad in ["s3:///x.aero", "s3://", "s3:x", "ftp://h/x.aero"] {
            assert!(check_lexical(m, "f", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_urls_follow_the_same_trust_rules() {
        let m = Path::new("m.json");
        let dir = std::env::temp_dir().canonicalize().unwrap();
        let local = SetBase::Dir(dir);
        let deny = SetOptions::default();
        let allow = SetOptions { allow_remote: true };
        let e = resolve(m, &local, None, "parts[0].path", "s3://b/p.aero", &deny).unwrap_err();
        assert!(matches!(e, SetError::RemoteNotAllowed { .. }), "{e}");
        assert_eq!(
            resolve(m, &local, None, "f", "s3://b/p.aero", &allow).unwrap(),
            Location::Remote("s3://b/p.aero".into())
        );
        // A manifest in a bucket: relative paths stay in its "directory"
        // (or go under base_url); absolute URLs of any accepted scheme.
        let s3 = SetBase::Url("s3://b/sets/m".into());
        assert_eq!(
            resolve(m, &s3, None, "f", "part-000.aero", &allow).unwrap(),
            Location::Remote("s3://b/sets/m/part-000.aero".into())
        );
        assert_eq!(
            resolve(m, &s3, Some("https://cdn/m/"), "f", "p.aero", &allow).unwrap(),
            Location::Remote("https://cdn/m/p.aero".into())
        );
        assert_eq!(
            resolve(m, &s3, None, "f", "gs://other/p.aero", &allow).unwrap(),
            Location::Remote("gs://other/p.aero".into())
        );
        for bad in ["../p.aero", "/etc/passwd", "file:///etc/passwd"] {
            assert!(resolve(m, &s3, None, "f", bad, &allow).is_err(), "{bad}");
        }
        // A web manifest cannot aim this machine's cloud credentials.
        let web = SetBase::Url("https://h/m".into());
        let e = resolve(
            m,
            &web,
            None,
            "parts[1].path",
            "s3://private/p.aero",
            &allow,
        )
        .unwrap_err();
        assert!(e.to_string().contains("object-store"), "{e}");
    }

    #[test]
    fn urls_need_permission_and_base_url_is_used_only_when_remote_is_allowed() {
        let m = Path::new("m.json");
        let dir = std::env::temp_dir().canonicalize().unwrap();
        let base = SetBase::Dir(dir);
        let e = resolve(
            m,
            &base,
            None,
            "parts[0].path",
            "https://h/p",
            &SetOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("parts[0].path"), "{e}");
        let allow = SetOptions { allow_remote: true };
        assert_eq!(
            resolve(m, &base, Some("https://h/set/"), "f", "p.aero", &allow).unwrap(),
            Location::Remote("https://h/set/p.aero".into())
        );
        let ub = SetBase::Url("https://h/s".into());
        assert_eq!(
            resolve(m, &ub, None, "f", "p.aero", &allow).unwrap(),
            Location::Remote("https://h/s/p.aero".into())
        );
    }
}
