//! Remote byte sources: HTTP(S) range reads (`ureq`) behind [`ByteSource`],
//! with retries, resumption, request splitting, strict `Content-Range`
//! checks and an optional verified disk cache ([`RangeCache`]).
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

pub use cache::RangeCache;
pub use http::{HttpSource, RequestStats};

use std::time::Duration;

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

/// Whether `s` looks like a URL this module can read.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}
