//! Remote byte sources: HTTP(S) range reads (`ureq`) behind [`ByteSource`],
//! with retries, resumption, request splitting, strict `Content-Range`
//! checks and an optional verified disk cache ([`RangeCache`]); with the
//! `s3` feature, objects in S3, Google Cloud Storage and Azure Blob Storage
//! (`s3://`, `gs://`, `az://`) through `object_store` (`ObjectSource`).
//! [`open_source`] picks the source by URL scheme.
//!
//! ```no_run
//! use aero_io::remote::{HttpSource, RemoteOptions, RangeCache};
//! let opts = RemoteOptions { cache: Some(RangeCache::from_env()?), ..Default::default() };
//! let f = aero_io::AeroFile::open_url("https://example.com/model.aero", opts)?;
//! let w = f.tensor("lm_head.weight")?;   // one Range request (or none when cached)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod http;
#[cfg(feature = "s3")]
mod object;

pub use cache::RangeCache;
pub use http::{HttpSource, RequestStats};
#[cfg(feature = "s3")]
pub use object::ObjectSource;

use std::io;
use std::time::Duration;

use crate::source::ByteSource;

/// Behaviour of remote reads.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Timeout of one request, from connect to the last body byte.
    pub timeout: Duration,
    /// Retries after 5xx, 429, connection errors and dropped bodies.
    pub retries: u32,
    /// First backoff; doubles on each retry (capped at 5 s).
    pub backoff: Duration,
    /// Requests above this are split.
    pub max_request: u64,
    /// Cap on one read (one tensor).
    pub max_read: u64,
    /// Redirects followed.
    pub max_redirects: u32,
    /// When a server answers 200 to a Range request the body is streamed
    /// forward to the wanted offset; refused when `start + len` exceeds this.
    pub max_ignored_range: u64,
    /// Size of the first read at open (header, TOC and string table usually fit).
    pub prefix_guess: u64,
    /// Disk cache of fetched ranges; `None` disables caching.
    pub cache: Option<RangeCache>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            timeout: Duration::from_secs(30),
            retries: 4,
            backoff: Duration::from_millis(200),
            max_request: 64 << 20,
            max_read: 2 << 30,
            max_redirects: 3,
            max_ignored_range: 256 << 20,
            prefix_guess: 64 << 10,
            cache: None,
        }
    }
}

/// Whether `s` is an `http://` or `https://` URL.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Whether `s` is an object-store URL (`s3://`, `gs://`, `az://`; scheme
/// case-insensitive), whether or not this build can read it (the `s3`
/// feature). Lets callers give a clear error instead of treating such a
/// string as a local path.
pub fn is_object_url(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once("://") else {
        return false;
    };
    ["s3", "gs", "az"]
        .iter()
        .any(|k| scheme.eq_ignore_ascii_case(k))
}

/// Whether this build can open `s` as a remote URL: `http(s)://`, and with
/// the `s3` feature `s3://`, `gs://` and `az://`.
pub fn is_remote_url(s: &str) -> bool {
    is_url(s) || (cfg!(feature = "s3") && is_object_url(s))
}

/// Opens a remote URL with the source for its scheme: [`HttpSource`] for
/// `http(s)://`, `ObjectSource` for `s3://`, `gs://` and `az://` (feature
/// `s3`). Other schemes, and object URLs in a build without `s3`, are
/// refused with an error saying so.
pub fn open_source(url: &str, opts: RemoteOptions) -> io::Result<Box<dyn ByteSource>> {
    if is_url(url) {
        return Ok(Box::new(HttpSource::open(url, opts)?));
    }
    if is_object_url(url) {
        #[cfg(feature = "s3")]
        {
            return Ok(Box::new(ObjectSource::open(url, opts)?));
        }
        #[cfg(not(feature = "s3"))]
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{url}: object-store URLs (s3://, gs://, az://) need aerotensor built with the `s3` feature"
                ),
            ));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{url}: unsupported URL scheme; remote files must be http://, https://{}",
            if cfg!(feature = "s3") {
                ", s3://, gs:// or az://"
            } else {
                " (or s3://, gs://, az:// with the `s3` feature)"
            }
        ),
    ))
}
