//! HTTP(S) range requests (`ureq`): `GET` with `Range: bytes=a-b` and
//! `If-Match`, classified by status code. `HEAD` is never sent, so servers
//! that refuse it work.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::sync::{Mutex, OnceLock};

use super::RemoteOptions;
use super::transport::{FetchError, Meta, Reply, Served, Transport};

/// The HTTP(S) transport of [`super::HttpSource`].
pub struct HttpTransport {
    url: String,
    agent: ureq::Agent,
    max_redirects: u32,
}

/// The process-wide agent for these options: one connection pool shared by
/// every file read with them (a set's parts reuse each other's
/// connections), keeping enough idle connections per host for the range
/// engine's `jobs`.
fn agent(opts: &RemoteOptions) -> ureq::Agent {
    type Key = (std::time::Duration, u32);
    static AGENTS: OnceLock<Mutex<HashMap<Key, ureq::Agent>>> = OnceLock::new();
    let key = (opts.timeout, opts.max_redirects);
    let agents = AGENTS.get_or_init(Default::default);
    if let Some(a) = agents.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return a;
    }
    let idle = super::MAX_JOBS;
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(opts.timeout))
        .http_status_as_error(false)
        .max_redirects(opts.max_redirects)
        .max_idle_connections(idle)
        .max_idle_connections_per_host(idle)
        .user_agent(concat!("aerotensor/", env!("CARGO_PKG_VERSION")))
        .build();
    let a = ureq::Agent::new_with_config(config);
    if let Ok(mut m) = agents.lock() {
        return m.entry(key).or_insert(a).clone();
    }
    a
}

/// Parses `bytes a-b/total` (total may be `*`).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let total = if total.trim() == "*" {
        None
    } else {
        Some(total.trim().parse().ok()?)
    };
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total))
}

impl Transport for HttpTransport {
    fn connect(url: &str, opts: &RemoteOptions) -> io::Result<HttpTransport> {
        if crate::url::classify(url) != crate::url::Kind::Http {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{url}: only http:// and https:// URLs are supported"),
            ));
        }
        Ok(HttpTransport {
            url: url.to_owned(),
            agent: agent(opts),
            max_redirects: opts.max_redirects,
        })
    }

    fn get(&self, range: Range<u64>, etag: Option<&str>) -> Result<Reply<'_>, FetchError> {
        let (start, last) = (range.start, range.end.saturating_sub(1));
        let mut req = self
            .agent
            .get(&self.url)
            .header("Range", format!("bytes={start}-{last}"));
        if let Some(e) = etag {
            req = req.header("If-Match", e);
        }
        let resp = req.call().map_err(|e| match e {
            ureq::Error::TooManyRedirects => {
                FetchError::fatal(format!("more than {} redirects", self.max_redirects))
            }
            // Timeouts, connection and I/O errors, and anything else ureq
            // reports before a status arrived.
            other => FetchError::Retry(other.to_string()),
        })?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, modified) = (header("etag"), header("last-modified"));
        let served = match status {
            206 => {
                let cr = header("content-range")
                    .ok_or_else(|| FetchError::fatal("206 without Content-Range"))?;
                let (a, b, total) = parse_content_range(&cr)
                    .filter(|&(a, b, _)| a <= b && b < u64::MAX)
                    .ok_or_else(|| FetchError::fatal(format!("malformed Content-Range {cr:?}")))?;
                Served::Range {
                    start: a,
                    end: b + 1,
                    total,
                }
            }
            200 => Served::Whole {
                total: header("content-length").and_then(|v| v.trim().parse().ok()),
            },
            412 => return Err(FetchError::Changed("412 Precondition Failed".into())),
            416 => {
                // `Content-Range: bytes */N` gives the size: an empty file
                // answers 416 to `bytes=0-…`.
                let size = header("content-range").and_then(|cr| {
                    cr.rsplit('/')
                        .next()
                        .and_then(|t| t.trim().parse::<u64>().ok())
                });
                return Err(FetchError::Unsatisfiable {
                    meta: size.map(|size| Meta {
                        size,
                        etag,
                        modified,
                    }),
                    error: io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bytes {start}-{last} are past the end of the remote file (416)"),
                    ),
                });
            }
            429 | 500..=599 => return Err(FetchError::Retry(format!("HTTP {status}"))),
            // A missing or forbidden file is an I/O error like a local one,
            // not damaged data: callers (the Python package, the CLI's exit
            // code) report it as such.
            s @ (404 | 410) => {
                return Err(FetchError::Fatal(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("HTTP {s}"),
                )));
            }
            s @ (401 | 403) => {
                return Err(FetchError::Fatal(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("HTTP {s}"),
                )));
            }
            s => return Err(FetchError::fatal(format!("HTTP {s}"))),
        };
        Ok(Reply {
            served,
            etag,
            modified,
            body: Box::new(resp.into_body().into_reader()),
        })
    }
}
