//! A tiny fault-injecting HTTP/1.1 server for tests (std only).
//!
//! Serves in-memory files by path on `127.0.0.1:0` with single-range support
//! (`bytes=a-b`, `bytes=a-`, `bytes=-n`), `HEAD`, `ETag`, `If-Match` /
//! `If-Range` and keep-alive, records every request, and injects faults per
//! path or globally, switchable while it runs. Dropping the server stops it:
//! the accept loop sees a shutdown flag (woken by a connection to itself) and
//! every connection thread polls the flag, so nothing outlives a test for
//! long. Every loop is bounded.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a connection may sit idle between requests.
const IDLE_LIMIT: Duration = Duration::from_secs(15);
/// Poll interval for the shutdown flag while waiting on a socket.
const POLL: Duration = Duration::from_millis(100);
/// Requests served on one keep-alive connection before it is closed.
const MAX_REQUESTS_PER_CONN: usize = 10_000;
/// Largest request head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Connection threads alive at once; beyond this new connections get a 503.
const MAX_CONNS: u64 = 64;

/// An injected fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The first `n` matching requests answer `503 Service Unavailable`.
    Fail503(u32),
    /// The first `n` matching requests answer `429 Too Many Requests`
    /// (with `Retry-After: 0`).
    Status429(u32),
    /// Headers announce the full `Content-Length`, then only `k` body bytes
    /// are sent and the connection is closed.
    DropBodyAfter(u64),
    /// Accept, read the request, sleep this long, then answer normally.
    Stall(Duration),
    /// Send the headers and half the body, sleep this long, then the rest.
    StallMidBody(Duration),
    /// Answer `200` with the whole file to a Range request.
    IgnoreRange,
    /// `206` whose `Content-Range` (and body) start 16 bytes away from the
    /// asked start.
    WrongContentRange,
    /// `206` whose `Content-Range` claims the asked range, but whose body
    /// (and `Content-Length`) is half as long; the connection is closed.
    Short206,
    /// Flip (xor 0xff) the byte at this absolute file offset in whatever is
    /// served.
    CorruptByte(u64),
    /// `405 Method Not Allowed` on `HEAD`.
    RefuseHead,
    /// `n` chained `302` redirects (`?hop=1`, `?hop=2`, ...) before the file.
    Redirect(u32),
}

impl Fault {
    /// Whether the fault applies to a request with this method.
    fn applies_to(&self, method: &str) -> bool {
        match self {
            Fault::RefuseHead => method == "HEAD",
            Fault::Fail503(_) | Fault::Status429(_) | Fault::Stall(_) | Fault::Redirect(_) => true,
            _ => method == "GET",
        }
    }
}

/// Where a fault applies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    /// Every path.
    All,
    /// One path (without query), e.g. `/model.aero`.
    Path(String),
}

impl From<&str> for Scope {
    fn from(p: &str) -> Scope {
        Scope::Path(p.to_owned())
    }
}

#[derive(Clone, Debug)]
struct Rule {
    scope: Scope,
    fault: Fault,
    /// Matching requests left before the rule disappears (`None` = forever).
    remaining: Option<u32>,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub(crate) struct LogEntry {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The raw request target (path and query).
    pub target: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// Status answered.
    pub status: u16,
    /// Body bytes actually written. Filled in after the write, so it may
    /// lag behind what a client has already received, except for answers
    /// that close the connection (the close comes after the update).
    pub body_sent: u64,
    /// Whether the whole announced body was written (same caveat).
    pub complete: bool,
    /// All request headers (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// Which connection (1-based, in accept order) carried the request.
    pub conn: u64,
}

impl LogEntry {
    /// A request header by lower-case name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Range` header parsed as a single `bytes=a-b` / `bytes=a-` range:
    /// `(start, Some(end_inclusive))` / `(start, None)`.
    pub(crate) fn range_bounds(&self) -> Option<(u64, Option<u64>)> {
        let spec = self.range.as_deref()?.trim().strip_prefix("bytes=")?;
        let (a, b) = spec.split_once('-')?;
        let start = a.trim().parse().ok()?;
        let end = if b.trim().is_empty() {
            None
        } else {
            Some(b.trim().parse().ok()?)
        };
        Some((start, end))
    }
}

#[derive(Clone)]
struct Served {
    data: Arc<Vec<u8>>,
    etag: String,
}

struct State {
    files: Mutex<HashMap<String, Served>>,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<LogEntry>>,
    shutdown: AtomicBool,
    version: AtomicU64,
    conns: AtomicU64,
    live: AtomicU64,
    port: u16,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running server; stops when dropped.
pub(crate) struct TestServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with no files on a free loopback port.
    pub(crate) fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            files: Mutex::new(HashMap::new()),
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
            version: AtomicU64::new(0),
            conns: AtomicU64::new(0),
            live: AtomicU64::new(0),
            port: addr.port(),
        });
        let st = state.clone();
        let accept = std::thread::Builder::new()
            .name("test-http-accept".into())
            .spawn(move || accept_loop(listener, st))
            .expect("spawn accept thread");
        TestServer {
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/path` (path must start with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Serves (or replaces) `path`; a new ETag is assigned.
    pub(crate) fn put(&self, path: &str, data: Vec<u8>) -> String {
        let v = self.state.version.fetch_add(1, Ordering::SeqCst) + 1;
        let etag = format!("\"v{v}-{:016x}\"", fnv1a(&data));
        lock(&self.state.files).insert(
            path.to_owned(),
            Served {
                data: Arc::new(data),
                etag: etag.clone(),
            },
        );
        etag
    }

    /// Replaces `path`'s bytes but keeps its ETag (a misbehaving server).
    pub(crate) fn put_keep_etag(&self, path: &str, data: Vec<u8>) {
        let mut files = lock(&self.state.files);
        let etag = files
            .get(path)
            .map(|s| s.etag.clone())
            .unwrap_or_else(|| "\"fixed\"".into());
        files.insert(
            path.to_owned(),
            Served {
                data: Arc::new(data),
                etag,
            },
        );
    }

    /// Stops serving `path` (404).
    pub(crate) fn remove(&self, path: &str) {
        lock(&self.state.files).remove(path);
    }

    /// The current ETag of `path`.
    pub(crate) fn etag(&self, path: &str) -> Option<String> {
        lock(&self.state.files).get(path).map(|s| s.etag.clone())
    }

    /// Adds a fault that stays until cleared (`Fail503(n)` / `Status429(n)`
    /// still expire after `n` requests).
    pub(crate) fn fault(&self, scope: impl Into<Scope>, fault: Fault) {
        let remaining = match fault {
            Fault::Fail503(n) | Fault::Status429(n) => Some(n),
            _ => None,
        };
        lock(&self.state.rules).push(Rule {
            scope: scope.into(),
            fault,
            remaining,
        });
    }

    /// Adds a fault that applies to the next `times` matching requests only.
    pub(crate) fn fault_times(&self, scope: impl Into<Scope>, fault: Fault, times: u32) {
        lock(&self.state.rules).push(Rule {
            scope: scope.into(),
            fault,
            remaining: Some(times),
        });
    }

    /// Removes every fault.
    pub(crate) fn clear_faults(&self) {
        lock(&self.state.rules).clear();
    }

    /// A copy of the request log.
    pub(crate) fn log(&self) -> Vec<LogEntry> {
        lock(&self.state.log).clone()
    }

    /// Number of requests logged so far.
    pub(crate) fn request_count(&self) -> usize {
        lock(&self.state.log).len()
    }

    /// Log entries from index `from` on.
    pub(crate) fn log_since(&self, from: usize) -> Vec<LogEntry> {
        lock(&self.state.log).get(from..).unwrap_or(&[]).to_vec()
    }

    /// Empties the log.
    pub(crate) fn clear_log(&self) {
        lock(&self.state.log).clear();
    }

    /// Connections accepted so far.
    pub(crate) fn connections(&self) -> u64 {
        self.state.conns.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.shutdown.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    // Bounded by the shutdown flag: Drop sets it and then connects once.
    for stream in listener.incoming() {
        if state.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let id = state.conns.fetch_add(1, Ordering::SeqCst) + 1;
        if state.live.load(Ordering::SeqCst) >= MAX_CONNS {
            let mut s = stream;
            let _ = s.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        state.live.fetch_add(1, Ordering::SeqCst);
        let st = state.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("test-http-conn-{id}"))
            .spawn(move || {
                let _ = serve_conn(stream, &st, id);
                st.live.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            state.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

struct Request {
    method: String,
    target: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    close: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request head; `Ok(None)` on a clean close, idle timeout or shutdown.
fn read_head(reader: &mut BufReader<TcpStream>, state: &State) -> io::Result<Option<Request>> {
    let mut head = Vec::new();
    let started = Instant::now();
    loop {
        if state.shutdown.load(Ordering::SeqCst) || started.elapsed() > IDLE_LIMIT {
            return Ok(None);
        }
        if head.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        let mut line = Vec::new();
        match reader.by_ref().take(8192).read_until(b'\n', &mut line) {
            Ok(0) => return Ok(None),
            Ok(_) => {
                head.extend_from_slice(&line);
                if head == b"\r\n" || head == b"\n" {
                    // Stray blank line between requests.
                    head.clear();
                    continue;
                }
                if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
                    break;
                }
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                // Keep what was read so far (read_until appended it to `line`).
                head.extend_from_slice(&line);
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let version = parts.next().unwrap_or("HTTP/1.1").to_owned();
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target.clone(), String::new()),
    };
    let conn_hdr = headers
        .iter()
        .find(|(k, _)| k == "connection")
        .map(|(_, v)| v.to_ascii_lowercase());
    let close = match conn_hdr.as_deref() {
        Some(v) if v.contains("close") => true,
        Some(v) if v.contains("keep-alive") => false,
        _ => version == "HTTP/1.0",
    };
    Ok(Some(Request {
        method,
        target,
        path,
        query,
        headers,
        close,
    }))
}

/// Discards a request body announced by Content-Length (bounded).
fn skip_body(reader: &mut BufReader<TcpStream>, req: &Request) -> io::Result<()> {
    let n: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if n > 1 << 20 {
        return Err(io::Error::other("request body too large"));
    }
    io::copy(&mut reader.by_ref().take(n), &mut io::sink())?;
    Ok(())
}

fn serve_conn(stream: TcpStream, state: &State, conn: u64) -> io::Result<()> {
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    for _ in 0..MAX_REQUESTS_PER_CONN {
        let Some(req) = read_head(&mut reader, state)? else {
            break;
        };
        skip_body(&mut reader, &req)?;
        let keep = respond(&mut writer, &req, state, conn)?;
        if !keep || req.close || state.shutdown.load(Ordering::SeqCst) {
            break;
        }
    }
    let _ = writer.flush();
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

/// Takes the faults that apply to this request, consuming counted ones.
fn active_faults(state: &State, req: &Request) -> Vec<Fault> {
    let mut rules = lock(&state.rules);
    let mut out = Vec::new();
    for r in rules.iter_mut() {
        let in_scope = match &r.scope {
            Scope::All => true,
            Scope::Path(p) => *p == req.path,
        };
        if !in_scope || !r.fault.applies_to(&req.method) {
            continue;
        }
        if let Fault::Redirect(n) = r.fault {
            // Only the hops of the chain count as applications.
            if hop(req) >= n {
                continue;
            }
        }
        match &mut r.remaining {
            Some(0) => continue,
            Some(k) => *k -= 1,
            None => {}
        }
        out.push(r.fault.clone());
    }
    rules.retain(|r| r.remaining != Some(0));
    out
}

fn hop(req: &Request) -> u32 {
    req.query
        .split('&')
        .find_map(|kv| kv.strip_prefix("hop="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sleeps up to `d`, returning early on shutdown.
fn nap(state: &State, d: Duration) {
    let end = Instant::now() + d;
    loop {
        let now = Instant::now();
        if now >= end || state.shutdown.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep((end - now).min(POLL));
    }
}

enum RangeReq {
    None,
    Satisfiable(u64, u64), // start, end exclusive
    Unsatisfiable,
    Unsupported,
}

fn parse_range(h: Option<&str>, len: u64) -> RangeReq {
    let Some(h) = h else { return RangeReq::None };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeReq::Unsupported;
    };
    if spec.contains(',') {
        return RangeReq::Unsupported;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeReq::Unsupported;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix range: the last n bytes.
        let Ok(n) = b.parse::<u64>() else {
            return RangeReq::Unsupported;
        };
        if n == 0 || len == 0 {
            return RangeReq::Unsatisfiable;
        }
        return RangeReq::Satisfiable(len.saturating_sub(n), len);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeReq::Unsupported;
    };
    let end = if b.is_empty() {
        len
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.saturating_add(1).min(len),
            _ => return RangeReq::Unsupported,
        }
    };
    if start >= len {
        return RangeReq::Unsatisfiable;
    }
    RangeReq::Satisfiable(start, end)
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Value of Content-Length (defaults to body length).
    content_length: Option<u64>,
    /// Body bytes to actually send (defaults to all).
    send: Option<u64>,
    /// Sleep after sending half the body.
    mid_stall: Option<Duration>,
    close: bool,
}

impl Answer {
    fn empty(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            content_length: None,
            send: None,
            mid_stall: None,
            close: false,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        404 => "Not Found",
        405 => "Method Not Allowed",
        412 => "Precondition Failed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Other",
    }
}

fn etag_matches(list: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    list.split(',')
        .any(|t| t.trim() == "*" || strip(t) == strip(etag))
}

/// Builds and writes the answer; returns whether the connection may stay open.
fn respond(w: &mut TcpStream, req: &Request, state: &State, conn: u64) -> io::Result<bool> {
    let faults = active_faults(state, req);
    let mut ans = build(req, state, &faults);
    // Logged on arrival (in request order); the body count is filled in below.
    let slot = {
        let mut log = lock(&state.log);
        log.push(LogEntry {
            method: req.method.clone(),
            path: req.path.clone(),
            target: req.target.clone(),
            range: req.header("range").map(str::to_owned),
            status: ans.status,
            body_sent: 0,
            complete: false,
            headers: req.headers.clone(),
            conn,
        });
        log.len() - 1
    };

    if let Some(d) = faults.iter().find_map(|f| match f {
        Fault::Stall(d) => Some(*d),
        _ => None,
    }) {
        nap(state, d);
    }
    if ans.status == 206 || ans.status == 200 {
        if let Some(k) = faults.iter().find_map(|f| match f {
            Fault::DropBodyAfter(k) => Some(*k),
            _ => None,
        }) {
            ans.send = Some(k.min(ans.body.len() as u64));
            ans.close = true;
        }
        if let Some(d) = faults.iter().find_map(|f| match f {
            Fault::StallMidBody(d) => Some(*d),
            _ => None,
        }) {
            ans.mid_stall = Some(d);
        }
    }

    let head_only = req.method == "HEAD";
    let content_length = ans.content_length.unwrap_or(ans.body.len() as u64);
    let mut head = format!("HTTP/1.1 {} {}\r\n", ans.status, reason(ans.status));
    for (k, v) in &ans.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {content_length}\r\n"));
    let close = ans.close || req.close;
    head.push_str(if close {
        "Connection: close\r\n"
    } else {
        "Connection: keep-alive\r\n"
    });
    head.push_str("\r\n");

    let mut sent = 0u64;
    let result = (|| -> io::Result<()> {
        w.write_all(head.as_bytes())?;
        if head_only {
            return Ok(());
        }
        let to_send = ans.send.unwrap_or(ans.body.len() as u64) as usize;
        let body = &ans.body[..to_send.min(ans.body.len())];
        match ans.mid_stall {
            Some(d) => {
                let half = body.len() / 2;
                w.write_all(&body[..half])?;
                w.flush()?;
                sent = half as u64;
                nap(state, d);
                w.write_all(&body[half..])?;
                sent = body.len() as u64;
            }
            None => {
                w.write_all(body)?;
                sent = body.len() as u64;
            }
        }
        w.flush()
    })();

    if let Some(e) = lock(&state.log).get_mut(slot) {
        e.body_sent = sent;
        e.complete = result.is_ok() && !head_only && sent == content_length;
    }
    result?;
    Ok(!close)
}

fn build(req: &Request, state: &State, faults: &[Fault]) -> Answer {
    let has = |p: &dyn Fn(&Fault) -> bool| faults.iter().any(p);
    if has(&|f| matches!(f, Fault::Fail503(_))) {
        let mut a = Answer::empty(503);
        a.headers.push(("Retry-After".into(), "0".into()));
        return a;
    }
    if has(&|f| matches!(f, Fault::Status429(_))) {
        let mut a = Answer::empty(429);
        a.headers.push(("Retry-After".into(), "0".into()));
        return a;
    }
    if has(&|f| matches!(f, Fault::RefuseHead)) && req.method == "HEAD" {
        let mut a = Answer::empty(405);
        a.headers.push(("Allow".into(), "GET".into()));
        return a;
    }
    if has(&|f| matches!(f, Fault::Redirect(_))) {
        let mut a = Answer::empty(302);
        let next = hop(req) + 1;
        a.headers.push((
            "Location".into(),
            format!("http://127.0.0.1:{}{}?hop={next}", state.port, req.path),
        ));
        return a;
    }
    if req.method != "GET" && req.method != "HEAD" {
        let mut a = Answer::empty(405);
        a.headers.push(("Allow".into(), "GET, HEAD".into()));
        return a;
    }
    let Some(file) = lock(&state.files).get(&req.path).cloned() else {
        return Answer::empty(404);
    };
    let len = file.data.len() as u64;
    let mut common = vec![
        ("ETag".to_owned(), file.etag.clone()),
        ("Accept-Ranges".to_owned(), "bytes".to_owned()),
        (
            "Content-Type".to_owned(),
            "application/octet-stream".to_owned(),
        ),
    ];
    if let Some(m) = req.header("if-match")
        && !etag_matches(m, &file.etag)
    {
        let mut a = Answer::empty(412);
        a.headers = common;
        return a;
    }
    let mut range = parse_range(req.header("range"), len);
    if let Some(ir) = req.header("if-range")
        && (!etag_matches(ir, &file.etag) || ir.trim().starts_with("W/"))
    {
        range = RangeReq::None;
    }
    if has(&|f| matches!(f, Fault::IgnoreRange)) {
        range = RangeReq::None;
    }
    let content = |start: u64, end: u64| -> Vec<u8> {
        let mut v = file.data[start as usize..end as usize].to_vec();
        for f in faults {
            if let Fault::CorruptByte(off) = *f
                && off >= start
                && off < end
            {
                v[(off - start) as usize] ^= 0xff;
            }
        }
        v
    };
    match range {
        RangeReq::None | RangeReq::Unsupported => {
            let mut a = Answer::empty(200);
            a.headers = common;
            a.body = content(0, len);
            a
        }
        RangeReq::Unsatisfiable => {
            common.push(("Content-Range".into(), format!("bytes */{len}")));
            let mut a = Answer::empty(416);
            a.headers = common;
            a
        }
        RangeReq::Satisfiable(start, end) => {
            let n = end - start;
            if has(&|f| matches!(f, Fault::WrongContentRange)) {
                let s2 = if start >= 16 { start - 16 } else { start + 16 };
                let s2 = s2.min(len.saturating_sub(1));
                let e2 = (s2 + n).min(len);
                common.push((
                    "Content-Range".into(),
                    format!("bytes {}-{}/{len}", s2, e2 - 1),
                ));
                let mut a = Answer::empty(206);
                a.headers = common;
                a.body = content(s2, e2);
                return a;
            }
            common.push((
                "Content-Range".into(),
                format!("bytes {}-{}/{len}", start, end - 1),
            ));
            let mut a = Answer::empty(206);
            a.headers = common;
            if has(&|f| matches!(f, Fault::Short206)) {
                a.body = content(start, start + n / 2);
                a.close = true;
            } else {
                a.body = content(start, end);
            }
            a
        }
    }
}
