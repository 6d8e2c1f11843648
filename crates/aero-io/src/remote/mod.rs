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

/// What the two remote sources share for reads: identity, size, the bytes
/// fetched at open, and the options.
pub(crate) struct RemoteFile<'a> {
    pub url: &'a str,
    pub validator: &'a str,
    pub len: u64,
    pub head: &'a [u8],
    pub opts: &'a RemoteOptions,
}

impl RemoteFile<'_> {
    fn err(&self, kind: std::io::ErrorKind, msg: String) -> std::io::Error {
        std::io::Error::new(kind, format!("{}: {msg}", self.url))
    }

    /// The read path of every remote source: bounds, the in-memory head, the
    /// per-read cap, the verified cache, then `fetch` (whose bytes are cached).
    pub fn read(
        &self,
        offset: u64,
        buf: &mut [u8],
        fetch: impl FnOnce(u64, &mut [u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let len = buf.len() as u64;
        if offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(self.err(
                std::io::ErrorKind::UnexpectedEof,
                format!("range {offset}+{len} is past the end ({})", self.len),
            ));
        }
        if len == 0 {
            return Ok(());
        }
        if let Some(s) = (offset as usize)
            .checked_add(buf.len())
            .and_then(|e| self.head.get(offset as usize..e))
        {
            buf.copy_from_slice(s);
            return Ok(());
        }
        if len > self.opts.max_read {
            return Err(self.err(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "read of {len} bytes exceeds the per-read cap of {} bytes",
                    self.opts.max_read
                ),
            ));
        }
        if let Some(data) = self
            .opts
            .cache
            .as_ref()
            .and_then(|c| c.get(self.url, self.validator, offset, len))
        {
            buf.copy_from_slice(&data);
            return Ok(());
        }
        fetch(offset, buf)?;
        if let Some(cache) = &self.opts.cache {
            // A failing cache must not fail the read.
            let _ = cache.put(self.url, self.validator, offset, buf);
        }
        Ok(())
    }

    /// Drops a cached range (after its bytes failed a hash check upstream).
    pub fn invalidate(&self, offset: u64, len: u64) -> bool {
        match &self.opts.cache {
            Some(c) => {
                c.remove(self.url, self.validator, offset, len);
                true
            }
            None => false,
        }
    }
}
