//! Remote files read with range requests, behind [`ByteSource`](crate::ByteSource).
//!
//! One read core, [`RemoteSource`], owns everything a remote read needs
//! whatever the protocol: the bytes fetched at open, bounds and the
//! per-read cap, splitting at `max_request`, retries with backoff, resuming
//! a cut body at the current offset, strict `Content-Range` and length
//! checks, a server that ignores ranges, request statistics and the
//! verified disk cache ([`RangeCache`]). A protocol is a small
//! [`Transport`] that sends one range request and classifies its failures
//! by type ([`FetchError`]): HTTP(S) through `ureq` ([`HttpTransport`],
//! feature `http`) and, with the `s3` feature, objects in S3, Google Cloud
//! Storage and Azure Blob Storage through `object_store`
//! (`ObjectTransport`). [`open_source`] picks the transport by URL scheme
//! ([`crate::url::classify`]).
//!
//! A new transport is one file beside this one, implementing [`Transport`],
//! and one line in the `transports!` list below naming its module, type and
//! schemes.
//!
//! ```no_run
//! use aero_io::remote::{RemoteOptions, RangeCache};
//! let opts = RemoteOptions { cache: Some(RangeCache::from_env()?), ..Default::default() };
//! let f = aero_io::AeroFile::open_url("https://example.com/model.aero", opts)?;
//! let w = f.tensor("lm_head.weight")?;   // one Range request (or none when cached)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod engine;
mod source;
mod transport;

pub use cache::RangeCache;
pub use engine::{Budget, DEFAULT_JOBS, JOBS_ENV, MAX_JOBS, jobs_from_env, parse_jobs};
pub use source::{COALESCE_GAP, RemoteSource, RequestStats, SPLIT_MIN};
pub use transport::{FetchError, Meta, Reply, Served, Transport};

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Declares the transports: for each, its module (a file beside this one),
/// its type, and the URL schemes it opens; `#[cfg]` attributes apply to
/// both the module and the registration.
macro_rules! transports {
    ($($(#[$cfg:meta])* $module:ident :: $transport:ident => [$($scheme:literal),+];)+) => {
        $(
            $(#[$cfg])*
            mod $module;
            $(#[$cfg])*
            pub use $module::$transport;
        )+

        /// The transport registered for `scheme`, opening `url`.
        #[allow(unused_variables)] // in a build without transports
        fn open_registered(
            scheme: &str,
            url: &str,
            opts: RemoteOptions,
        ) -> Option<io::Result<Arc<RemoteSource>>> {
            $(
                $(#[$cfg])*
                if [$($scheme),+].iter().any(|s| scheme.eq_ignore_ascii_case(s)) {
                    return Some(
                        RemoteSource::<$module::$transport>::open(url, opts)
                            .map(|s| Arc::new(s) as Arc<RemoteSource>),
                    );
                }
            )+
            None
        }

        /// Every scheme this build opens, in registration order.
        fn schemes() -> Vec<&'static str> {
            #[allow(unused_mut)]
            let mut v = Vec::new();
            $(
                $(#[$cfg])*
                v.extend([$($scheme),+]);
            )+
            v
        }
    };
}

transports! {
    #[cfg(feature = "http")] http::HttpTransport => ["http", "https"];
    #[cfg(feature = "s3")] object::ObjectTransport => ["s3", "gs", "az"];
    #[cfg(test)] memory::MemoryTransport => ["mem"];
}

/// An `http(s)://` file ([`RemoteSource`] over [`HttpTransport`]).
#[cfg(feature = "http")]
pub type HttpSource = RemoteSource<HttpTransport>;

/// An `s3://`, `gs://` or `az://` object ([`RemoteSource`] over
/// `ObjectTransport`; feature `s3`).
#[cfg(feature = "s3")]
pub type ObjectSource = RemoteSource<ObjectTransport>;

/// Behaviour of remote reads.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Timeout of one request, from connect to the last body byte.
    pub timeout: Duration,
    /// Retries after 5xx, 429, connection errors and dropped bodies.
    pub retries: u32,
    /// First backoff; doubles on each retry (capped at 5 s).
    pub backoff: Duration,
    /// Requests above this are split (the size of a streamed piece).
    pub max_request: u64,
    /// Range requests in flight at once (at least 1): a large read is cut
    /// into pieces fetched on up to this many connections, and streamed
    /// reads keep this many pieces coming. Shared through `budget` by every
    /// source opened with clones of these options.
    pub jobs: usize,
    /// The limits `jobs` sets, shared by clones of these options (a set's
    /// parts, files opened by one command): at most `jobs` requests in
    /// flight and `jobs` streamed pieces of `max_request` bytes held in
    /// memory (plus one per stream), whatever the number of files read at
    /// once. Sized on first use from `jobs`.
    pub budget: Budget,
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

/// The defaults, with `jobs` from `AEROTENSOR_REMOTE_JOBS` when it is set to
/// a valid number (so every front end honours it; [`jobs_from_env`] tells
/// an invalid value).
impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            timeout: Duration::from_secs(30),
            retries: 4,
            backoff: Duration::from_millis(200),
            max_request: 4 << 20,
            jobs: jobs_from_env().ok().flatten().unwrap_or(DEFAULT_JOBS),
            budget: Budget::new(),
            max_read: 2 << 30,
            max_redirects: 3,
            max_ignored_range: 256 << 20,
            prefix_guess: 64 << 10,
            cache: None,
        }
    }
}

/// Whether this build has a transport for `url` ([`open_source`] may
/// succeed): `http(s)://` with the `http` feature; `s3://`, `gs://` and
/// `az://` URLs with a bucket with the `s3` feature.
pub fn can_open(url: &str) -> bool {
    use crate::url::{Kind, ObjectScheme};
    let kind = crate::url::classify(url);
    let registered = kind
        .scheme(url)
        .is_some_and(|s| schemes().iter().any(|k| s.eq_ignore_ascii_case(k)));
    // An object-store scheme without a bucket is not an object URL.
    registered && !matches!(kind, Kind::OtherScheme(s) if ObjectScheme::parse(s).is_some())
}

/// Opens a remote URL with the transport registered for its scheme
/// ([`crate::url::classify`]): [`HttpSource`] for `http(s)://`,
/// `ObjectSource` for `s3://`, `gs://` and `az://` (feature `s3`). Other
/// schemes, and URLs whose transport this build lacks, are refused with an
/// error saying so.
///
/// The result is a [`crate::ByteSource`] (so is an `Arc` of it) that can
/// also drop cached ranges ([`RemoteSource::invalidate`]): pass it to
/// [`crate::AeroFile::from_remote`] so that verified reads use that.
pub fn open_source(url: &str, opts: RemoteOptions) -> io::Result<Arc<RemoteSource>> {
    let kind = crate::url::classify(url);
    if let Some(opened) = kind
        .scheme(url)
        .and_then(|scheme| open_registered(scheme, url, opts))
    {
        return opened;
    }
    let (kind, reason) = unsupported(url);
    Err(io::Error::new(kind, format!("{url}: {reason}")))
}

/// Why this build cannot open `url` ([`can_open`] is false): the error
/// kind and the reason, without the URL.
pub fn unsupported(url: &str) -> (io::ErrorKind, String) {
    use crate::url::Kind;
    match crate::url::classify(url) {
        Kind::Object { .. } => (
            io::ErrorKind::Unsupported,
            "object-store URLs (s3://, gs://, az://) need aerotensor built with the `s3` feature"
                .into(),
        ),
        Kind::Http => (
            io::ErrorKind::Unsupported,
            "http(s):// URLs need aero-io built with the `http` feature".into(),
        ),
        Kind::OtherScheme(_) | Kind::LocalPath => {
            let list: Vec<String> = schemes().iter().map(|s| format!("{s}://")).collect();
            let list = match list.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => "none in this build".into(),
            };
            (
                io::ErrorKind::InvalidInput,
                format!(
                    "unsupported URL scheme; remote files must be {list}{}",
                    if cfg!(feature = "s3") {
                        ""
                    } else {
                        " (s3://, gs://, az:// need the `s3` feature)"
                    }
                ),
            )
        }
    }
}
