//! The HTTP(S) range source.

use std::io::{self, Read};
use std::sync::Mutex;
use std::time::Duration;

use super::RemoteOptions;
use crate::source::ByteSource;

/// Network traffic of one source (cache hits are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// HTTP requests sent.
    pub requests: u64,
    /// Body bytes received.
    pub bytes: u64,
}

/// A remote file read with HTTP Range requests.
///
/// Opening performs one ranged GET of the first `prefix_guess` bytes, which
/// learns the file size (from `Content-Range`) and the validator (ETag, or
/// size + Last-Modified) and keeps those bytes in memory: parsing the
/// header, TOC and string table then costs no further request.
pub struct HttpSource {
    url: String,
    agent: ureq::Agent,
    len: u64,
    head: Vec<u8>,
    validator: String,
    etag: Option<String>,
    opts: RemoteOptions,
    stats: Mutex<RequestStats>,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("url", &self.url)
            .field("len", &self.len)
            .finish()
    }
}

/// Why one attempt failed.
enum Failure {
    /// Worth retrying (5xx, 429, connection trouble, dropped body).
    Retry(String),
    /// Final.
    Fatal(io::Error),
}

fn fatal(msg: impl Into<String>) -> Failure {
    Failure::Fatal(io::Error::new(io::ErrorKind::InvalidData, msg.into()))
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

/// Reads until `buf` is full or the body ends; returns the count.
fn read_some(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if got == 0 {
                    return Err(e);
                }
                break;
            }
        }
    }
    Ok(got)
}

impl HttpSource {
    /// Opens `url` (http or https).
    pub fn open(url: &str, opts: RemoteOptions) -> io::Result<HttpSource> {
        if !super::is_url(url) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{url}: only http:// and https:// URLs are supported"),
            ));
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .http_status_as_error(false)
            .max_redirects(opts.max_redirects)
            .user_agent(concat!("aerotensor/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::new_with_config(config);
        let mut src = HttpSource {
            url: url.to_owned(),
            agent,
            len: u64::MAX,
            head: Vec::new(),
            validator: String::new(),
            etag: None,
            opts,
            stats: Mutex::new(RequestStats::default()),
        };
        let want = src.opts.prefix_guess.max(1);
        let mut buf = vec![0u8; want as usize];
        let (got, total, etag, modified) = src.first_read(&mut buf)?;
        buf.truncate(got);
        src.len = total;
        src.head = buf;
        src.validator = match (&etag, &modified) {
            (Some(e), _) => format!("etag:{e}"),
            (None, Some(m)) => format!("size:{total};modified:{m}"),
            (None, None) => {
                // Nothing tells a changed file from the old one: a cache
                // keyed by size alone could serve stale bytes, so don't cache.
                src.opts.cache = None;
                format!("size:{total}")
            }
        };
        src.etag = etag;
        Ok(src)
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests and bytes fetched so far.
    pub fn stats(&self) -> RequestStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    fn err(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.url))
    }

    fn count(&self, bytes: u64, requests: u64) {
        if let Ok(mut s) = self.stats.lock() {
            s.requests += requests;
            s.bytes += bytes;
        }
    }

    /// The first read: learns size and validator. The file may be shorter
    /// than the guess.
    fn first_read(
        &self,
        buf: &mut [u8],
    ) -> io::Result<(usize, u64, Option<String>, Option<String>)> {
        let mut attempt = 0u32;
        loop {
            match self.attempt_first(buf) {
                Ok(r) => return Ok(r),
                Err(Failure::Fatal(e)) => return Err(self.err(e)),
                Err(Failure::Retry(msg)) => {
                    attempt += 1;
                    if attempt > self.opts.retries {
                        return Err(self.err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("giving up after {attempt} attempts: {msg}"),
                        )));
                    }
                    self.sleep(attempt);
                }
            }
        }
    }

    fn attempt_first(
        &self,
        buf: &mut [u8],
    ) -> Result<(usize, u64, Option<String>, Option<String>), Failure> {
        let end = buf.len() as u64 - 1;
        let mut resp = self.send(0, end)?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header("etag");
        let modified = header("last-modified");
        match status {
            206 => {
                let cr =
                    header("content-range").ok_or_else(|| fatal("206 without Content-Range"))?;
                let (a, b, total) = parse_content_range(&cr)
                    .ok_or_else(|| fatal(format!("malformed Content-Range {cr:?}")))?;
                let total =
                    total.ok_or_else(|| fatal("Content-Range does not give the file size"))?;
                let expect_end = end.min(total.saturating_sub(1));
                if a != 0 || b != expect_end {
                    return Err(fatal(format!(
                        "asked for bytes 0-{end}, server sent Content-Range {cr:?}"
                    )));
                }
                let n = (b - a + 1) as usize;
                let got = read_some(&mut resp.body_mut().as_reader(), &mut buf[..n])
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                self.count(got as u64, 0);
                if got < n {
                    return Err(Failure::Retry(format!(
                        "body ended after {got} of {n} bytes"
                    )));
                }
                Ok((n, total, etag, modified))
            }
            200 => {
                // No Range support: the whole file follows. Keep what fits the guess.
                let total = header("content-length").and_then(|v| v.parse::<u64>().ok());
                let got = read_some(&mut resp.body_mut().as_reader(), buf)
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                self.count(got as u64, 0);
                let total = match total {
                    Some(t) => t,
                    None if got < buf.len() => got as u64,
                    None => return Err(fatal("server ignores Range and sends no Content-Length")),
                };
                if (got as u64) < total.min(buf.len() as u64) {
                    return Err(Failure::Retry(format!("body ended after {got} bytes")));
                }
                Ok((got, total, etag, modified))
            }
            416 => {
                // An empty file answers 416 to bytes=0-…
                let total = header("content-range").and_then(|cr| {
                    cr.rsplit('/')
                        .next()
                        .and_then(|t| t.trim().parse::<u64>().ok())
                });
                match total {
                    Some(0) => Ok((0, 0, etag, modified)),
                    _ => Err(fatal("416 Range Not Satisfiable")),
                }
            }
            s => Err(classify(s)),
        }
    }

    fn send(&self, start: u64, end: u64) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        self.count(0, 1);
        let mut req = self
            .agent
            .get(&self.url)
            .header("Range", format!("bytes={start}-{end}"));
        if let Some(e) = &self.etag {
            req = req.header("If-Match", e.as_str());
        }
        req.call().map_err(|e| match e {
            ureq::Error::Timeout(_)
            | ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound => Failure::Retry(e.to_string()),
            ureq::Error::TooManyRedirects => {
                fatal(format!("more than {} redirects", self.opts.max_redirects))
            }
            other => Failure::Retry(other.to_string()),
        })
    }

    fn sleep(&self, attempt: u32) {
        let d = self
            .opts
            .backoff
            .saturating_mul(1u32 << attempt.min(10).saturating_sub(1));
        std::thread::sleep(d.min(Duration::from_secs(5)));
    }

    /// Fetches `buf.len()` bytes at `start`, splitting, retrying and resuming.
    fn fetch(&self, start: u64, buf: &mut [u8]) -> io::Result<()> {
        let step = self.opts.max_request.max(1) as usize;
        for (i, piece) in buf.chunks_mut(step).enumerate() {
            self.fetch_piece(start + (i * step) as u64, piece)?;
        }
        Ok(())
    }

    fn fetch_piece(&self, start: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut got = 0usize;
        let mut attempt = 0u32;
        loop {
            match self.attempt(start + got as u64, &mut buf[got..]) {
                Ok(n) => {
                    got += n;
                    if got == buf.len() {
                        return Ok(());
                    }
                    attempt += 1;
                    if attempt > self.opts.retries {
                        return Err(self.err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "body keeps ending early: {got} of {} bytes at offset {start}",
                                buf.len()
                            ),
                        )));
                    }
                    // Progress was made: resume at once from the new offset.
                    if n == 0 {
                        self.sleep(attempt);
                    }
                }
                Err(Failure::Fatal(e)) => return Err(self.err(e)),
                Err(Failure::Retry(msg)) => {
                    attempt += 1;
                    if attempt > self.opts.retries {
                        return Err(self.err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("giving up after {attempt} attempts: {msg}"),
                        )));
                    }
                    self.sleep(attempt);
                }
            }
        }
    }

    /// One request for `buf.len()` bytes at `start`; returns bytes received
    /// (fewer than asked when the body was cut).
    fn attempt(&self, start: u64, buf: &mut [u8]) -> Result<usize, Failure> {
        let end = start + buf.len() as u64 - 1;
        let mut resp = self.send(start, end)?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if let (Some(want), Some(got)) = (&self.etag, header("etag"))
            && *want != got
            && matches!(status, 200 | 206)
        {
            return Err(fatal(format!(
                "remote file changed since it was opened (ETag {want} → {got})"
            )));
        }
        match status {
            206 => {
                let cr =
                    header("content-range").ok_or_else(|| fatal("206 without Content-Range"))?;
                match parse_content_range(&cr) {
                    Some((a, b, total))
                        if a == start && b == end && total.is_none_or(|t| t == self.len) => {}
                    _ => {
                        return Err(fatal(format!(
                            "asked for bytes {start}-{end} of {}, server sent Content-Range {cr:?}",
                            self.len
                        )));
                    }
                }
                let got = read_some(&mut resp.body_mut().as_reader(), buf)
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                self.count(got as u64, 0);
                Ok(got)
            }
            200 => {
                // The server ignores Range: stream forward without buffering.
                if end + 1 > self.opts.max_ignored_range {
                    return Err(fatal(format!(
                        "server ignores Range requests; refusing to download {} bytes to reach offset {start} (limit {})",
                        end + 1,
                        self.opts.max_ignored_range
                    )));
                }
                let mut body = resp.body_mut().as_reader();
                let skipped = io::copy(&mut (&mut body).take(start), &mut io::sink())
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                if skipped < start {
                    return Err(Failure::Retry(format!(
                        "body ended after {skipped} bytes, before offset {start}"
                    )));
                }
                let got = read_some(&mut body, buf).map_err(|e| Failure::Retry(e.to_string()))?;
                self.count(skipped + got as u64, 0);
                Ok(got)
            }
            412 => Err(fatal(
                "remote file changed since it was opened (412 Precondition Failed)",
            )),
            416 => Err(fatal(format!(
                "bytes {start}-{end} are past the end of the remote file (416)"
            ))),
            s => Err(classify(s)),
        }
    }
}

fn classify(status: u16) -> Failure {
    // A missing or forbidden file is an I/O error like a local one, not
    // damaged data: callers (the Python package) report it as such.
    let kind = match status {
        429 | 500..=599 => return Failure::Retry(format!("HTTP {status}")),
        404 | 410 => io::ErrorKind::NotFound,
        401 | 403 => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::InvalidData,
    };
    Failure::Fatal(io::Error::new(kind, format!("HTTP {status}")))
}

impl HttpSource {
    fn remote_file(&self) -> super::RemoteFile<'_> {
        super::RemoteFile {
            url: &self.url,
            validator: &self.validator,
            len: self.len,
            head: &self.head,
            opts: &self.opts,
        }
    }
}

impl ByteSource for HttpSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.remote_file()
            .read(offset, buf, |o, b| self.fetch(o, b))
    }

    fn invalidate(&self, offset: u64, len: u64) -> bool {
        self.remote_file().invalidate(offset, len)
    }
}
