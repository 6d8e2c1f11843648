//! [`RemoteSource`]: the read core every remote transport shares.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

use super::RemoteOptions;
use super::transport::{FetchError, Meta, Reply, Served, Transport};
use crate::source::ByteSource;

/// Network traffic of one source (cache hits are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Requests sent.
    pub requests: u64,
    /// Body bytes received.
    pub bytes: u64,
}

/// A remote file read with range requests through a [`Transport`].
///
/// Opening performs one range request for the first `prefix_guess` bytes,
/// which learns the file size and its validator (ETag, or size + last
/// modification time) and keeps those bytes in memory: parsing the header,
/// TOC and string table then costs no further request. Later reads:
///
/// - are bounds-checked, served from the in-memory head when they fall
///   inside it, capped at `max_read`, and looked up in the verified
///   [`super::RangeCache`] (keyed by URL, validator, start and length);
/// - are split into requests of at most `max_request` bytes, each pinned to
///   the ETag seen at open (a changed file is an error, never mixed bytes);
/// - must be answered with exactly the range asked for (a server that
///   ignores ranges is streamed forward, up to `max_ignored_range`);
/// - are retried with exponential backoff after a failure the transport
///   calls transient, and resumed at the current offset when a body is cut.
///
/// [`RemoteSource::invalidate`] drops a cached range whose bytes failed a
/// hash check, so that the next read fetches it again. It is not part of
/// [`ByteSource`] ("bytes at offset" only): a verified reader that can use it
/// holds the source itself ([`crate::AeroFile::from_remote`]).
///
/// `T` is the transport; `RemoteSource` (that is, `RemoteSource<dyn
/// Transport>`) is any of them, which a `Box<RemoteSource<T>>` coerces to.
pub struct RemoteSource<T: Transport + ?Sized = dyn Transport> {
    url: String,
    len: u64,
    head: Vec<u8>,
    validator: String,
    etag: Option<String>,
    opts: RemoteOptions,
    stats: Mutex<RequestStats>,
    transport: T,
}

impl<T: Transport + ?Sized> std::fmt::Debug for RemoteSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSource")
            .field("url", &self.url)
            .field("len", &self.len)
            .finish()
    }
}

/// A [`FetchError`] as the error a read returns.
fn into_io(e: FetchError) -> io::Error {
    match e {
        FetchError::Retry(msg) => io::Error::new(io::ErrorKind::TimedOut, msg),
        FetchError::Unsatisfiable { error, .. } | FetchError::Fatal(error) => error,
        FetchError::Changed(detail) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("remote file changed since it was opened ({detail})"),
        ),
    }
}

/// Reads until `buf` is full or the body ends. Returns the count, and an
/// error only when nothing arrived (after some bytes, a failure is a cut
/// body: the caller resumes).
fn read_body(body: &mut dyn Read, buf: &mut [u8]) -> (usize, Result<(), FetchError>) {
    let mut got = 0;
    while got < buf.len() {
        match body.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if got == 0 => return (0, Err(FetchError::Retry(e.to_string()))),
            Err(_) => break,
        }
    }
    (got, Ok(()))
}

impl<T: Transport> RemoteSource<T> {
    /// Opens `url` with transport `T` (one range request).
    pub fn open(url: &str, opts: RemoteOptions) -> io::Result<RemoteSource<T>> {
        let transport = T::connect(url, &opts)?;
        Self::with_transport(url, transport, opts)
    }

    /// Opens `url` through an already connected transport.
    pub fn with_transport(
        url: &str,
        transport: T,
        opts: RemoteOptions,
    ) -> io::Result<RemoteSource<T>> {
        let mut src = RemoteSource {
            url: url.to_owned(),
            len: 0,
            head: Vec::new(),
            validator: String::new(),
            etag: None,
            opts,
            stats: Mutex::new(RequestStats::default()),
            transport,
        };
        let (head, meta) = src.first_read()?;
        src.len = meta.size;
        src.head = head;
        src.validator = match (&meta.etag, &meta.modified) {
            (Some(e), _) => format!("etag:{e}"),
            (None, Some(m)) => format!("size:{};modified:{m}", meta.size),
            (None, None) => {
                // Nothing tells a changed file from the old one: a cache
                // keyed by size alone could serve stale bytes, so don't cache.
                src.opts.cache = None;
                format!("size:{}", meta.size)
            }
        };
        src.etag = meta.etag;
        Ok(src)
    }
}

impl<T: Transport + ?Sized> RemoteSource<T> {
    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests and bytes fetched so far (a request the transport retries
    /// internally counts once).
    pub fn stats(&self) -> RequestStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Drops the cached copy of `offset..offset+len` (after its bytes failed
    /// a hash check upstream), so that the next read of that range fetches
    /// it again. Returns whether this source caches at all, that is,
    /// whether reading again can give other bytes.
    pub fn invalidate(&self, offset: u64, len: u64) -> bool {
        match &self.opts.cache {
            Some(c) => {
                c.remove(&self.url, &self.validator, offset, len);
                true
            }
            None => false,
        }
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

    fn sleep(&self, attempt: u32) {
        let d = self
            .opts
            .backoff
            .saturating_mul(1u32 << attempt.min(10).saturating_sub(1));
        std::thread::sleep(d.min(Duration::from_secs(5)));
    }

    /// One request, counted.
    fn request(&self, range: Range<u64>) -> Result<Reply<'_>, FetchError> {
        self.count(0, 1);
        self.transport.get(range, self.etag.as_deref())
    }

    /// Runs `f` until it succeeds or fails for good: a transient failure is
    /// retried after a backoff, up to `retries` times (once only when the
    /// transport retries each request itself).
    fn retrying<V>(&self, mut f: impl FnMut() -> Result<V, FetchError>) -> Result<V, FetchError> {
        let mut attempt = 0u32;
        loop {
            match f() {
                Err(FetchError::Retry(msg)) => {
                    attempt += 1;
                    if attempt > self.opts.retries
                        || (self.transport.retries_itself() && attempt > 1)
                    {
                        return Err(FetchError::Fatal(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("giving up after {attempt} attempts: {msg}"),
                        )));
                    }
                    self.sleep(attempt);
                }
                other => return other,
            }
        }
    }

    /// The read at open: the first `prefix_guess` bytes (fewer when the
    /// file is shorter) and what they tell about the file.
    fn first_read(&self) -> io::Result<(Vec<u8>, Meta)> {
        let want = usize::try_from(self.opts.prefix_guess.max(1)).unwrap_or(usize::MAX);
        let mut buf = vec![0u8; want];
        match self.retrying(|| self.attempt_first(&mut buf)) {
            Ok((n, meta)) => {
                buf.truncate(n);
                Ok((buf, meta))
            }
            // An empty file has no byte range to give: learn its size (from
            // the refusal, or by asking) before calling that an error.
            Err(FetchError::Unsatisfiable { meta, error }) => {
                let meta = match meta {
                    Some(m) => Some(m),
                    None => self.retrying(|| self.stat()).ok().flatten(),
                };
                match meta {
                    Some(m) if m.size == 0 => Ok((Vec::new(), m)),
                    _ => Err(self.err(error)),
                }
            }
            Err(e) => Err(self.err(into_io(e))),
        }
    }

    fn stat(&self) -> Result<Option<Meta>, FetchError> {
        match self.transport.stat() {
            None => Ok(None),
            Some(r) => {
                self.count(0, 1);
                r.map(Some)
            }
        }
    }

    fn attempt_first(&self, buf: &mut [u8]) -> Result<(usize, Meta), FetchError> {
        let want = buf.len() as u64;
        let Reply {
            served,
            etag,
            modified,
            mut body,
        } = self.request(0..want)?;
        match served {
            Served::Range { start, end, total } => {
                let total = total.ok_or_else(|| {
                    FetchError::fatal("Content-Range does not give the file size")
                })?;
                if start != 0 || end != want.min(total) {
                    return Err(FetchError::fatal(format!(
                        "asked for bytes 0-{}, server sent Content-Range bytes {start}-{}/{total}",
                        want - 1,
                        end.saturating_sub(1)
                    )));
                }
                let n = (end - start) as usize;
                let (got, res) = read_body(&mut body, &mut buf[..n]);
                self.count(got as u64, 0);
                res?;
                if got < n {
                    return Err(FetchError::Retry(format!(
                        "body ended after {got} of {n} bytes"
                    )));
                }
                Ok((
                    n,
                    Meta {
                        size: total,
                        etag,
                        modified,
                    },
                ))
            }
            Served::Whole { total } => {
                // No range support: the whole file follows. Keep what fits.
                let (got, res) = read_body(&mut body, buf);
                self.count(got as u64, 0);
                res?;
                let total = match total {
                    Some(t) => t,
                    None if got < buf.len() => got as u64,
                    None => {
                        return Err(FetchError::fatal(
                            "server ignores Range and sends no Content-Length",
                        ));
                    }
                };
                if (got as u64) < total.min(want) {
                    return Err(FetchError::Retry(format!("body ended after {got} bytes")));
                }
                Ok((
                    got,
                    Meta {
                        size: total,
                        etag,
                        modified,
                    },
                ))
            }
        }
    }

    /// The read path: bounds, the in-memory head, the per-read cap, the
    /// verified cache, then the network (whose bytes are cached).
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let len = buf.len() as u64;
        if offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(self.err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("range {offset}+{len} is past the end ({})", self.len),
            )));
        }
        if len == 0 {
            return Ok(());
        }
        if let Some(s) = usize::try_from(offset)
            .ok()
            .and_then(|o| self.head.get(o..o.checked_add(buf.len())?))
        {
            buf.copy_from_slice(s);
            return Ok(());
        }
        if len > self.opts.max_read {
            return Err(self.err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "read of {len} bytes exceeds the per-read cap of {} bytes",
                    self.opts.max_read
                ),
            )));
        }
        let cache = self.opts.cache.as_ref();
        if let Some(data) = cache.and_then(|c| c.get(&self.url, &self.validator, offset, len)) {
            buf.copy_from_slice(&data);
            return Ok(());
        }
        let step = usize::try_from(self.opts.max_request.max(1)).unwrap_or(usize::MAX);
        let mut at = offset;
        for piece in buf.chunks_mut(step) {
            self.fetch(at, piece)?;
            at += piece.len() as u64;
        }
        if let Some(c) = cache {
            // A failing cache must not fail the read.
            let _ = c.put(&self.url, &self.validator, offset, buf);
        }
        Ok(())
    }

    /// Fetches one piece, retrying and resuming at the current offset.
    fn fetch(&self, start: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut got = 0usize;
        let mut attempt = 0u32;
        let mut stalled = 0u32;
        loop {
            let (n, res) = self.attempt(start + got as u64, &mut buf[got..]);
            got += n;
            if got == buf.len() {
                return Ok(());
            }
            let failure = match res {
                Ok(()) => None,
                Err(FetchError::Retry(msg)) => Some(msg),
                Err(e) => return Err(self.err(into_io(e))),
            };
            attempt += 1;
            if n == 0 {
                stalled += 1;
            }
            if attempt > self.opts.retries || (self.transport.retries_itself() && stalled > 1) {
                return Err(self.err(match failure {
                    Some(msg) => io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("giving up after {attempt} attempts: {msg}"),
                    ),
                    None => io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "body keeps ending early: {got} of {} bytes at offset {start}",
                            buf.len()
                        ),
                    ),
                }));
            }
            // Progress was made: resume at once from the new offset.
            if n == 0 {
                self.sleep(attempt);
            }
        }
    }

    /// One request for `buf.len()` bytes at `start`: the bytes received
    /// (fewer than asked when the body was cut) and why it stopped short.
    fn attempt(&self, start: u64, buf: &mut [u8]) -> (usize, Result<(), FetchError>) {
        let end = start + buf.len() as u64;
        let Reply {
            served,
            etag,
            mut body,
            ..
        } = match self.request(start..end) {
            Ok(r) => r,
            Err(e) => return (0, Err(e)),
        };
        if let (Some(want), Some(got)) = (&self.etag, &etag)
            && want != got
        {
            return (0, Err(FetchError::Changed(format!("ETag {want} → {got}"))));
        }
        match served {
            Served::Range {
                start: a,
                end: b,
                total,
            } => {
                if a != start || b != end || total.is_some_and(|t| t != self.len) {
                    return (
                        0,
                        Err(FetchError::fatal(format!(
                            "asked for bytes {start}-{} of {}, server sent Content-Range bytes {a}-{}/{}",
                            end - 1,
                            self.len,
                            b.saturating_sub(1),
                            total.map_or_else(|| "*".to_owned(), |t| t.to_string())
                        ))),
                    );
                }
                let (got, res) = read_body(&mut body, buf);
                self.count(got as u64, 0);
                (got, res)
            }
            Served::Whole { .. } => {
                // The server ignores Range: stream forward without buffering.
                if end > self.opts.max_ignored_range {
                    return (
                        0,
                        Err(FetchError::fatal(format!(
                            "server ignores Range requests; refusing to download {end} bytes to reach offset {start} (limit {})",
                            self.opts.max_ignored_range
                        ))),
                    );
                }
                let skipped = io::copy(&mut (&mut body).take(start), &mut io::sink());
                let skipped = match skipped {
                    Ok(k) => k,
                    Err(e) => return (0, Err(FetchError::Retry(e.to_string()))),
                };
                self.count(skipped, 0);
                if skipped < start {
                    return (
                        0,
                        Err(FetchError::Retry(format!(
                            "body ended after {skipped} bytes, before offset {start}"
                        ))),
                    );
                }
                let (got, res) = read_body(&mut body, buf);
                self.count(got as u64, 0);
                (got, res)
            }
        }
    }
}

impl<T: Transport + ?Sized> ByteSource for RemoteSource<T> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read(offset, buf)
    }
}
