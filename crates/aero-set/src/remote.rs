//! Remote AEROSETs (spec §13–§14): the manifest, index and parts read over
//! HTTP(S) with Range requests through [`aero_io::remote::HttpSource`], and
//! with the `s3` feature from object storage (`s3://`, `gs://`, `az://`)
//! through `aero_io::remote::ObjectSource`.
//!
//! Trust rules: a set opened from a URL resolves every path against its URL
//! (or `base_url`), so a remote manifest can never make the reader open a
//! local file; a local manifest may name URLs only when the caller allows it
//! ([`SetOptions::allow_remote`], `--remote` on the CLI); a manifest served
//! over http(s) may not name object-store URLs (see [`crate::resolve`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aero_io::remote::{RemoteOptions, open_source};
use aero_io::{AeroFile, ByteSource};

use crate::error::{Result, SetError};
use crate::manifest::{MAX_MANIFEST_LEN, SetManifest};
use crate::resolve::{LocalStorage, Location, PartStorage, SetBase, SetOptions};
use crate::set::AeroSet;

/// Opens local files (memory-mapped) and URLs (HTTP range reads; object
/// storage with the `s3` feature). Which locations a set may name is decided
/// by path resolution, not here.
#[derive(Clone, Debug, Default)]
pub struct RemoteStorage {
    /// Options for every remote file (timeouts, retries, cache).
    pub options: RemoteOptions,
}

impl PartStorage for RemoteStorage {
    fn open(&self, location: &Location) -> Result<aero_io::Source> {
        match location {
            Location::Local(_) => LocalStorage.open(location),
            Location::Remote(u) => open_source(u, self.options.clone())
                .map(|s| aero_io::Source::Other(Box::new(s)))
                .map_err(|e| SetError::Io {
                    path: PathBuf::from(u),
                    source: e,
                }),
        }
    }

    /// Remote parts are opened with [`AeroFile::from_remote`]: a verified
    /// read whose bytes fail their hash drops the cached copy and reads again.
    fn open_file(
        &self,
        location: &Location,
        label: PathBuf,
        check_len: &dyn Fn(u64) -> Result<()>,
    ) -> Result<AeroFile> {
        let Location::Remote(u) = location else {
            return LocalStorage.open_file(location, label, check_len);
        };
        let src = open_source(u, self.options.clone()).map_err(|e| SetError::Io {
            path: PathBuf::from(u),
            source: e,
        })?;
        check_len(src.len())?;
        Ok(AeroFile::from_remote(label, src)?)
    }

    fn remote_jobs(&self) -> Option<usize> {
        Some(self.options.jobs.max(1))
    }
}

/// The URL "directory" of a manifest URL (everything before the last `/`).
fn url_dir(url: &str) -> &str {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match url[scheme_end..].rfind('/') {
        Some(i) => &url[..scheme_end + i],
        None => url,
    }
}

impl AeroSet {
    /// Opens a set from the URL of its `model.aeroset.json` (or of a
    /// directory URL ending in `/`, to which `model.aeroset.json` is added):
    /// `http(s)://`, or `s3://`, `gs://`, `az://` with the `s3` feature.
    /// Costs one request for the manifest and one or two for the index's
    /// header, TOC and string table (its TIDX follows on first use).
    pub fn open_url(url: &str, options: RemoteOptions) -> Result<AeroSet> {
        let url = if url.ends_with('/') {
            format!("{url}{}", crate::MANIFEST_NAME)
        } else {
            url.to_string()
        };
        let label = PathBuf::from(&url);
        let io = |e| SetError::Io {
            path: label.clone(),
            source: e,
        };
        let mut opts = options.clone();
        // The manifest is small and read whole: it needs no range cache.
        opts.cache = None;
        let src = open_source(&url, opts).map_err(io)?;
        if src.len() > MAX_MANIFEST_LEN {
            return Err(SetError::File {
                path: label.clone(),
                reason: format!(
                    "manifest is {} bytes, over the {MAX_MANIFEST_LEN}-byte cap",
                    src.len()
                ),
            });
        }
        let bytes = src.bytes(0, src.len()).map_err(io)?;
        let manifest = SetManifest::parse(&bytes, &label)?;
        let base = SetBase::Url(url_dir(&url).to_string());
        let set = AeroSet::from_manifest(
            label,
            base,
            manifest,
            &SetOptions { allow_remote: true },
            Arc::new(RemoteStorage { options }),
        )?;
        set.index()?;
        Ok(set)
    }

    /// Opens a local manifest whose parts may be remote (`allow_remote`).
    pub fn open_with_remote(
        path: &Path,
        allow_remote: bool,
        options: RemoteOptions,
    ) -> Result<AeroSet> {
        let set = AeroSet::load(
            path,
            &SetOptions { allow_remote },
            Arc::new(RemoteStorage { options }),
        )?;
        set.index()?;
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::url_dir;

    #[test]
    fn url_dirs() {
        assert_eq!(
            url_dir("http://h:1/a/b/model.aeroset.json"),
            "http://h:1/a/b"
        );
        assert_eq!(url_dir("https://h/model.aeroset.json"), "https://h");
        assert_eq!(
            url_dir("s3://bucket/sets/m/model.aeroset.json"),
            "s3://bucket/sets/m"
        );
        assert_eq!(url_dir("gs://b/model.aeroset.json"), "gs://b");
    }
}
