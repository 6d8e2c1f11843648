//! [`RemoteSource`]: the read core every remote transport shares.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

use super::RemoteOptions;
use super::transport::{FetchError, Meta, Reply, Served, Transport};
use crate::source::ByteSource;

/// A read is split across connections into pieces of at least this size
/// (see `RemoteSource::cut`).
pub const SPLIT_MIN: u64 = 1 << 20;
/// Ranges of one stream closer than this are fetched as one span.
pub const COALESCE_GAP: u64 = 256 << 10;

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
    /// Cache entries this source read or wrote: what [`Self::invalidate`]
    /// drops when bytes in their range fail a check.
    used: Mutex<Vec<(u64, u64)>>,
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

/// The error of a piece whose call stopped (another piece failed, or the
/// consumer gave up): never reported, the call's first error is.
fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "stopped")
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
/// body: the caller resumes). Stops early, with what it has, once `stop`
/// says so.
fn read_body(
    body: &mut dyn Read,
    buf: &mut [u8],
    stop: &dyn Fn() -> bool,
) -> (usize, Result<(), FetchError>) {
    let mut got = 0;
    while got < buf.len() {
        if stop() {
            return (got, Err(FetchError::Fatal(stopped())));
        }
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
            used: Mutex::new(Vec::new()),
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
    ///
    /// Every cache entry this source read or wrote that overlaps the range
    /// is dropped, however the range was cut into pieces
    /// ([`Self::stream_ranges`], a read split across connections), as is an
    /// entry for exactly the range.
    pub fn invalidate(&self, offset: u64, len: u64) -> bool {
        let Some(c) = &self.opts.cache else {
            return false;
        };
        c.remove(&self.url, &self.validator, offset, len);
        let end = offset.saturating_add(len);
        if let Ok(mut used) = self.used.lock() {
            used.retain(|&(a, n)| {
                let overlaps = a < end && a + n > offset;
                if overlaps {
                    c.remove(&self.url, &self.validator, a, n);
                }
                !overlaps
            });
        }
        true
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
                let (got, res) = read_body(&mut body, &mut buf[..n], &|| false);
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
                let (got, res) = read_body(&mut body, buf, &|| false);
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

    /// The read path: bounds, the in-memory head, the per-read cap, then
    /// the pieces of the read ([`Self::cut`]) from the verified cache or the
    /// network, fetched concurrently into `buf` ([`super::engine`]).
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
        let pieces = self.cut(offset, len);
        let mut cells: Vec<Mutex<&mut [u8]>> = Vec::with_capacity(pieces.len());
        let mut rest = buf;
        for &(_, n) in &pieces {
            let (a, b) = rest.split_at_mut(n as usize);
            cells.push(Mutex::new(a));
            rest = b;
        }
        super::engine::run(
            &self.opts.budget,
            self.opts.jobs,
            pieces.len(),
            super::engine::Held::CallerMemory,
            &|i, ctx| {
                let (at, _) = pieces[i];
                let mut cell = cells[i].lock().map_err(|_| io::Error::other("poisoned"))?;
                self.piece(at, &mut cell, &|| ctx.stopped())
            },
            &mut |_, ()| Ok(()),
        )
    }

    /// How a read (or a streamed span) of `len` bytes at `offset` is cut
    /// into requests, and into cache entries: pieces of at most
    /// `max_request` bytes, and, when `jobs` allows several requests, at
    /// least `min(jobs, len / SPLIT_MIN)` equal pieces (so that a read of a
    /// few MiB still goes out on several connections). With `jobs = 1` a
    /// read is cut at `max_request` only.
    fn cut(&self, offset: u64, len: u64) -> Vec<(u64, u64)> {
        let max = self.opts.max_request.max(1);
        let by_size = len.div_ceil(max);
        let ways = (len / SPLIT_MIN).min(self.opts.jobs as u64);
        let step = if ways > by_size {
            len.div_ceil(ways).next_multiple_of(64 << 10).min(max)
        } else {
            max
        };
        let mut v = Vec::with_capacity(len.div_ceil(step) as usize);
        let mut at = 0;
        while at < len {
            let n = step.min(len - at);
            v.push((offset + at, n));
            at += n;
        }
        v
    }

    /// One piece: the cache, else the network (then cached).
    fn piece(&self, at: u64, buf: &mut [u8], stop: &dyn Fn() -> bool) -> io::Result<()> {
        let len = buf.len() as u64;
        let cache = self.opts.cache.as_ref();
        if let Some(data) = cache.and_then(|c| c.get(&self.url, &self.validator, at, len)) {
            buf.copy_from_slice(&data);
            self.remember(at, len);
            return Ok(());
        }
        self.fetch(at, buf, stop)?;
        if let Some(c) = cache {
            // A failing cache must not fail the read.
            if c.put(&self.url, &self.validator, at, buf).is_ok() {
                self.remember(at, len);
            }
        }
        Ok(())
    }

    fn remember(&self, at: u64, len: u64) {
        if let Ok(mut u) = self.used.lock()
            && !u.contains(&(at, len))
        {
            u.push((at, len));
        }
    }

    /// Streams the bytes of `ranges` (absolute `(offset, length)` pairs,
    /// sorted, not overlapping) to `sink` in order, with up to `jobs`
    /// requests in flight (the range engine, `remote/engine.rs`): ranges smaller than a
    /// piece and closer than [`COALESCE_GAP`] are fetched as one span (small
    /// reads coalesced),
    /// each span is cut into pieces as a read of it would be
    /// (as `cut` does, which also names their cache entries), and each piece
    /// comes from the verified cache or the network, filling the cache as it
    /// arrives. `sink` gets `(offset, bytes)` slices that lie inside one
    /// range, in order, each range covered exactly once; bytes between
    /// coalesced ranges are dropped. Memory stays near `jobs` pieces
    /// whatever the total length. An error from `sink` stops the stream and
    /// is returned as is.
    pub fn stream_ranges(
        &self,
        ranges: &[(u64, u64)],
        sink: &mut dyn FnMut(u64, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut last = 0u64;
        for &(at, n) in ranges {
            let end = at.checked_add(n).filter(|&e| e <= self.len);
            let Some(end) = end else {
                return Err(self.err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("range {at}+{n} is past the end ({})", self.len),
                )));
            };
            if at < last {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "stream_ranges: ranges must be sorted and must not overlap",
                ));
            }
            last = end;
        }
        // The parts inside the in-memory head are served from it; the rest
        // is grouped into spans.
        let head = self.head.len() as u64;
        let mut wanted: Vec<(u64, u64)> = Vec::new();
        for &(at, n) in ranges.iter().filter(|r| r.1 > 0) {
            let end = at + n;
            if at < head {
                let h = end.min(head);
                sink(at, &self.head[at as usize..h as usize])?;
                if h < end {
                    wanted.push((h, end - h));
                }
            } else {
                wanted.push((at, n));
            }
        }
        // Small ranges close together share a span; a range of a piece or
        // more stands alone, so that its pieces start where it starts (a
        // caller that passes a shard as one range gets pieces aligned to it).
        let piece = self.opts.max_request.max(1);
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for &(at, n) in &wanted {
            match spans.last_mut() {
                Some(s) if at - (s.0 + s.1) <= COALESCE_GAP && n < piece && s.1 < piece => {
                    s.1 = at + n - s.0
                }
                _ => spans.push((at, n)),
            }
        }
        let pieces: Vec<(u64, u64)> = spans.iter().flat_map(|&(a, n)| self.cut(a, n)).collect();
        let mut next_range = 0usize;
        super::engine::run(
            &self.opts.budget,
            self.opts.jobs,
            pieces.len(),
            super::engine::Held::Slots,
            &|i, ctx| {
                let (at, n) = pieces[i];
                let mut buf = self.opts.budget.buffer(self.opts.jobs, n as usize);
                self.piece(at, &mut buf, &|| ctx.stopped())?;
                Ok(buf)
            },
            &mut |i, buf| {
                let (at, n) = pieces[i];
                let end = at + n;
                // Hand over the parts of the wanted ranges inside this piece.
                while let Some(&(ra, rn)) = wanted.get(next_range) {
                    let re = ra + rn;
                    if ra >= end {
                        break;
                    }
                    let (from, to) = (ra.max(at), re.min(end));
                    if from < to {
                        sink(from, &buf[(from - at) as usize..(to - at) as usize])?;
                    }
                    if re > end {
                        break;
                    }
                    next_range += 1;
                }
                self.opts.budget.recycle(self.opts.jobs, buf);
                Ok(())
            },
        )
    }

    /// Fetches one piece, retrying and resuming at the current offset.
    fn fetch(&self, start: u64, buf: &mut [u8], stop: &dyn Fn() -> bool) -> io::Result<()> {
        let mut got = 0usize;
        let mut attempt = 0u32;
        let mut stalled = 0u32;
        loop {
            if stop() {
                return Err(stopped());
            }
            let (n, res) = self.attempt(start + got as u64, &mut buf[got..], stop);
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

    /// An error unless a `206` for `asked` holds exactly those bytes of a
    /// file of this length.
    fn check_served(
        &self,
        asked: Range<u64>,
        sent: Range<u64>,
        total: Option<u64>,
    ) -> Result<(), FetchError> {
        if sent == asked && total.is_none_or(|t| t == self.len) {
            return Ok(());
        }
        Err(FetchError::fatal(format!(
            "asked for bytes {}-{} of {}, server sent Content-Range bytes {}-{}/{}",
            asked.start,
            asked.end - 1,
            self.len,
            sent.start,
            sent.end.saturating_sub(1),
            total.map_or_else(|| "*".to_owned(), |t| t.to_string())
        )))
    }

    /// The ETag check of a reply: the file must not have changed since it
    /// was opened.
    fn check_etag(&self, etag: Option<&str>) -> Result<(), FetchError> {
        match (&self.etag, etag) {
            (Some(want), Some(got)) if want != got => {
                Err(FetchError::Changed(format!("ETag {want} → {got}")))
            }
            _ => Ok(()),
        }
    }

    /// One request for `buf.len()` bytes at `start`: the bytes received
    /// (fewer than asked when the body was cut) and why it stopped short.
    fn attempt(
        &self,
        start: u64,
        buf: &mut [u8],
        stop: &dyn Fn() -> bool,
    ) -> (usize, Result<(), FetchError>) {
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
        if let Err(e) = self.check_etag(etag.as_deref()) {
            return (0, Err(e));
        }
        match served {
            Served::Range {
                start: a,
                end: b,
                total,
            } => {
                if let Err(e) = self.check_served(start..end, a..b, total) {
                    return (0, Err(e));
                }
                let (got, res) = read_body(&mut body, buf, stop);
                self.count(got as u64, 0);
                if got == buf.len() {
                    // Read to the end of the body, so that the connection
                    // goes back to the pool for the next request.
                    let _ = body.read(&mut [0u8; 1]);
                }
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
                let (got, res) = read_body(&mut body, buf, stop);
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

    fn stream(
        &self,
        ranges: &[(u64, u64)],
        sink: &mut dyn FnMut(u64, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.stream_ranges(ranges, sink)
    }

    /// One request for the whole range (no cache), read as the caller
    /// reads: a body cut short is asked for again from the first byte
    /// missing, with the checks and retries of a read.
    fn reader_at(&self, start: u64, end: u64) -> io::Result<Box<dyn Read + '_>> {
        crate::source::check_span(self.len, start, end)?;
        Ok(Box::new(RequestReader {
            src: self,
            pos: start,
            end,
            body: None,
            opened_at: start,
            budget_from: start,
            attempts: 0,
            stalled: 0,
            whole: false,
        }))
    }
}

/// [`ByteSource::reader_at`] of a remote file: one request for bytes
/// `pos..end`, its body read as the caller reads. A body that is cut or
/// fails is asked for again from the first byte not yet received, with
/// the checks of a read (`Content-Range`, `ETag`) and its retry budget:
/// `retries` failed attempts with backoff, renewed every `max_request`
/// bytes received (a read's budget is per piece of that size, so a long
/// range gets the same), and a pause only after an attempt that brought
/// nothing. A server that ignores ranges is read piece by piece through
/// [`RemoteSource::read`], which copes with that. The bytes before the
/// in-memory head's end come from it; the cache is not used (the caller
/// reads each byte once).
struct RequestReader<'a, T: Transport + ?Sized> {
    src: &'a RemoteSource<T>,
    pos: u64,
    end: u64,
    body: Option<Box<dyn Read + 'a>>,
    /// Where the current request started.
    opened_at: u64,
    /// Where the retry budget was last renewed (every `max_request` bytes).
    budget_from: u64,
    attempts: u32,
    stalled: u32,
    /// The server answered the whole file: read through `RemoteSource::read`.
    whole: bool,
}

impl<T: Transport + ?Sized> RequestReader<'_, T> {
    fn open(&mut self) -> Result<(), FetchError> {
        let Reply {
            served, etag, body, ..
        } = self.src.request(self.pos..self.end)?;
        self.src.check_etag(etag.as_deref())?;
        self.opened_at = self.pos;
        match served {
            Served::Range { start, end, total } => {
                self.src
                    .check_served(self.pos..self.end, start..end, total)?;
                self.body = Some(body);
            }
            Served::Whole { .. } => self.whole = true,
        }
        Ok(())
    }

    /// A failed attempt: an error once the retry budget is spent, else a
    /// pause when it brought no byte.
    fn failed(&mut self, msg: String) -> io::Result<()> {
        self.body = None;
        if self.pos - self.budget_from >= self.src.opts.max_request.max(1) {
            self.budget_from = self.pos;
            self.attempts = 0;
            self.stalled = 0;
        }
        self.attempts += 1;
        let progress = self.pos > self.opened_at;
        if !progress {
            self.stalled += 1;
        }
        if self.attempts > self.src.opts.retries
            || (self.src.transport.retries_itself() && self.stalled > 1)
        {
            return Err(self.src.err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "giving up after {} attempts at offset {}: {msg}",
                    self.attempts, self.pos
                ),
            )));
        }
        if !progress {
            self.src.sleep(self.attempts);
        }
        // The next request starts here.
        self.opened_at = self.pos;
        Ok(())
    }
}

impl<T: Transport + ?Sized> Read for RequestReader<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.end - self.pos).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let buf = &mut buf[..n];
        if let Some(h) = usize::try_from(self.pos)
            .ok()
            .and_then(|p| self.src.head.get(p..))
            .filter(|h| !h.is_empty())
        {
            let k = h.len().min(n);
            buf[..k].copy_from_slice(&h[..k]);
            self.pos += k as u64;
            return Ok(k);
        }
        loop {
            if self.whole {
                let k = n.min(
                    usize::try_from(self.src.opts.max_request)
                        .unwrap_or(n)
                        .max(1),
                );
                self.src.read(self.pos, &mut buf[..k])?;
                self.pos += k as u64;
                return Ok(k);
            }
            let Some(body) = self.body.as_mut() else {
                match self.open() {
                    Ok(()) => {}
                    Err(FetchError::Retry(msg)) => self.failed(msg)?,
                    Err(e) => return Err(self.src.err(into_io(e))),
                }
                continue;
            };
            match body.read(buf) {
                Ok(0) => {
                    let msg = format!("body ended early, at offset {}", self.pos);
                    self.failed(msg)?;
                }
                Ok(k) => {
                    self.pos += k as u64;
                    self.src.count(k as u64, 0);
                    if self.pos == self.end {
                        // Read to the end of the body, so that the
                        // connection goes back to the pool.
                        let _ = body.read(&mut [0u8; 1]);
                        self.body = None;
                    }
                    return Ok(k);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.failed(e.to_string())?,
            }
        }
    }
}
