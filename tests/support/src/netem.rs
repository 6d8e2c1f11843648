//! A latency and rate-limiting HTTP/1.1 proxy for tests and benchmarks
//! (std only): what a CDN looks like to a client, in front of any origin
//! server on the same machine (nginx, the in-process test server).
//!
//! Every request waits a fixed `delay` before it is forwarded (a round
//! trip, time to first byte), and each client connection's response bodies
//! are paced at `rate` bytes per second (a per-connection cap, as CDNs
//! apply). The proxy can also inject faults into responses, by path or for
//! every path, and counts requests, body bytes sent per path, connections
//! and the most requests it had in flight at once (how many ranges a client
//! really fetched in parallel).
//!
//! Run in-process ([`Proxy::start`]) by the Rust tests, or as the
//! `aero-netem` binary (`src/bin/aero-netem.rs`) by `cargo xtask bench`;
//! the binary also answers `GET /__netem/stats` with the counters as JSON
//! and `GET /__netem/reset` by zeroing them.
//!
//! Each client connection gets its own upstream connection (kept alive while
//! both sides allow it). Responses must carry a `Content-Length` (static file
//! servers do) or end with the connection; a chunked response is answered
//! with `502`. Every loop is bounded by the shutdown flag, a timeout or the
//! data, so nothing outlives a test for long.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Poll interval for the shutdown flag while waiting on a socket.
const POLL: Duration = Duration::from_millis(100);
/// Longest a client connection may sit idle between requests.
const IDLE_LIMIT: Duration = Duration::from_secs(30);
/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Bytes copied (and paced) at a time.
const STEP: usize = 128 << 10;
/// Connection threads alive at once; beyond this new connections get a 503.
const MAX_CONNS: u64 = 512;

/// A fault injected into a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer `503 Service Unavailable` without asking the origin.
    Fail503,
    /// Send the headers and this many body bytes, then close the connection.
    DropBodyAfter(u64),
    /// Wait this long after the request's delay before forwarding it.
    Stall(Duration),
    /// Send half the body, wait this long, then the rest.
    StallMidBody(Duration),
    /// Drop the request's `Range` header: the origin answers `200` with the
    /// whole file.
    IgnoreRange,
    /// Rewrite a `206`'s `Content-Range` to start this many bytes later than
    /// the origin said (the body is unchanged).
    WrongContentRange(u64),
    /// A `206` that keeps its `Content-Range` and `Content-Length` but sends
    /// half the body, then closes the connection.
    Short206,
    /// Flip (xor 0xff) the byte at this absolute file offset, if the
    /// response carries it.
    CorruptByte(u64),
}

/// Where a fault applies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
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
    /// Only requests whose range contains this absolute offset (with a
    /// `Range` header) match; `None`: any request.
    at: Option<u64>,
    /// Matching requests left (`None` = forever).
    remaining: Option<u32>,
}

/// Counters of one path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Requests received.
    pub requests: u64,
    /// Response body bytes sent to clients.
    pub bytes: u64,
}

/// How the proxy shapes traffic.
#[derive(Clone, Debug)]
pub struct Config {
    /// The origin, `host:port` or `http://host:port[/…]` (the path is ignored).
    pub upstream: String,
    /// Added before every request is forwarded.
    pub delay: Duration,
    /// Body bytes per second per client connection (`None`: unlimited).
    pub rate: Option<u64>,
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Answer `GET /__netem/stats` and `/__netem/reset` (the binary does).
    pub control: bool,
}

impl Config {
    /// A proxy to `upstream` adding `delay` per request and capping each
    /// connection at `rate` bytes per second.
    pub fn new(upstream: &str, delay: Duration, rate: Option<u64>) -> Config {
        Config {
            upstream: upstream.to_owned(),
            delay,
            rate,
            listen: "127.0.0.1:0".into(),
            control: false,
        }
    }
}

struct State {
    upstream: SocketAddr,
    delay: Duration,
    rate: Option<u64>,
    control: bool,
    rules: Mutex<Vec<Rule>>,
    paths: Mutex<BTreeMap<String, PathStats>>,
    shutdown: AtomicBool,
    conns: AtomicU64,
    live: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

/// `host:port` of an `http://host:port/…` URL or a bare `host:port`.
fn authority(s: &str) -> &str {
    let rest = s.strip_prefix("http://").unwrap_or(s);
    rest.split('/').next().unwrap_or(rest)
}

impl Proxy {
    /// Starts a proxy for `config`.
    pub fn start(config: Config) -> io::Result<Proxy> {
        let upstream = authority(&config.upstream)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other(format!("{}: no address", config.upstream)))?;
        let listener = TcpListener::bind(&config.listen)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            delay: config.delay,
            rate: config.rate.filter(|&r| r > 0),
            control: config.control,
            rules: Mutex::new(Vec::new()),
            paths: Mutex::new(BTreeMap::new()),
            shutdown: AtomicBool::new(false),
            conns: AtomicU64::new(0),
            live: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
        });
        let st = state.clone();
        let accept = std::thread::Builder::new()
            .name("netem-accept".into())
            .spawn(move || accept_loop(listener, st))?;
        Ok(Proxy {
            addr,
            state,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/path` (path starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Adds a fault for every matching request until cleared.
    pub fn fault(&self, scope: impl Into<Scope>, fault: Fault) {
        self.add(scope.into(), fault, None, None);
    }

    /// Adds a fault for the next `times` matching requests.
    pub fn fault_times(&self, scope: impl Into<Scope>, fault: Fault, times: u32) {
        self.add(scope.into(), fault, None, Some(times));
    }

    /// Adds a fault for the next `times` requests whose `Range` contains the
    /// absolute offset `at` (one range among several in flight).
    pub fn fault_at(&self, scope: impl Into<Scope>, at: u64, fault: Fault, times: u32) {
        self.add(scope.into(), fault, Some(at), Some(times));
    }

    fn add(&self, scope: Scope, fault: Fault, at: Option<u64>, remaining: Option<u32>) {
        lock(&self.state.rules).push(Rule {
            scope,
            fault,
            at,
            remaining,
        });
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.state.rules).clear();
    }

    /// Counters of one path.
    pub fn path_stats(&self, path: &str) -> PathStats {
        lock(&self.state.paths)
            .get(path)
            .copied()
            .unwrap_or_default()
    }

    /// Counters of every path seen.
    pub fn stats(&self) -> BTreeMap<String, PathStats> {
        lock(&self.state.paths).clone()
    }

    /// Body bytes sent for all paths.
    pub fn total_bytes(&self) -> u64 {
        lock(&self.state.paths).values().map(|s| s.bytes).sum()
    }

    /// Client connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.conns.load(Ordering::SeqCst)
    }

    /// The most requests that were being answered at once.
    pub fn peak_in_flight(&self) -> u64 {
        self.state.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Zeroes the counters (paths, connections, peak).
    pub fn reset(&self) {
        reset(&self.state);
    }
}

fn reset(state: &State) {
    lock(&state.paths).clear();
    state.conns.store(0, Ordering::SeqCst);
    state
        .peak_in_flight
        .store(state.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    for stream in listener.incoming() {
        if state.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        state.conns.fetch_add(1, Ordering::SeqCst);
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
            .name("netem-conn".into())
            .spawn(move || {
                let _ = serve(stream, &st);
                st.live.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            state.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A request or response head: the first line and the headers, in order.
struct Head {
    line: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn remove(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    fn set(&mut self, name: &str, value: String) {
        self.remove(name);
        self.headers.push((name.to_owned(), value));
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{}\r\n", self.line);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        s.into_bytes()
    }

    fn wants_close(&self) -> bool {
        self.get("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
            || self.line.ends_with("HTTP/1.0") && self.get("connection").is_none()
    }
}

/// Reads one head. `Ok(None)`: the peer closed, or shutdown, or idle too long.
fn read_head(r: &mut BufReader<TcpStream>, state: &State) -> io::Result<Option<Head>> {
    let mut head = Vec::new();
    let started = Instant::now();
    loop {
        if state.shutdown.load(Ordering::SeqCst) || started.elapsed() > IDLE_LIMIT {
            return Ok(None);
        }
        if head.len() > MAX_HEAD {
            return Err(io::Error::other("head too large"));
        }
        let mut line = Vec::new();
        match r.by_ref().take(8192).read_until(b'\n', &mut line) {
            Ok(0) if head.is_empty() => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {
                if head.is_empty() && (line == b"\r\n" || line == b"\n") {
                    continue;
                }
                head.extend_from_slice(&line);
                if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
                    break;
                }
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                head.extend_from_slice(&line);
            }
            Err(e) => return Err(e),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Some(Head { line, headers }))
}

/// The first byte a request's `Range: bytes=a-b` asks for and its last.
fn range_of(h: &Head) -> Option<(u64, Option<u64>)> {
    let spec = h.get("range")?.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let b = b.trim();
    Some((
        a.trim().parse().ok()?,
        if b.is_empty() { None } else { b.parse().ok() },
    ))
}

/// `(start, end inclusive, total)` of a `Content-Range: bytes a-b/t`.
fn content_range(h: &Head) -> Option<(u64, u64, String)> {
    let v = h.get("content-range")?.trim().strip_prefix("bytes ")?;
    let (r, total) = v.split_once('/')?;
    let (a, b) = r.split_once('-')?;
    Some((
        a.trim().parse().ok()?,
        b.trim().parse().ok()?,
        total.to_owned(),
    ))
}

fn faults_for(state: &State, path: &str, req: &Head) -> Vec<Fault> {
    let range = range_of(req);
    let mut rules = lock(&state.rules);
    let mut out = Vec::new();
    for r in rules.iter_mut() {
        let in_scope = match &r.scope {
            Scope::All => true,
            Scope::Path(p) => p == path,
        };
        let at_ok = match (r.at, range) {
            (None, _) => true,
            (Some(at), Some((a, b))) => at >= a && b.is_none_or(|b| at <= b),
            (Some(_), None) => false,
        };
        if !in_scope || !at_ok || r.remaining == Some(0) {
            continue;
        }
        if let Some(k) = &mut r.remaining {
            *k -= 1;
        }
        out.push(r.fault.clone());
    }
    rules.retain(|r| r.remaining != Some(0));
    out
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

struct Upstream {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

fn connect(state: &State) -> io::Result<Upstream> {
    let s = TcpStream::connect_timeout(&state.upstream, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let _ = s.set_nodelay(true);
    Ok(Upstream {
        writer: s.try_clone()?,
        reader: BufReader::with_capacity(STEP, s),
    })
}

/// Counts one request in flight for as long as it lives.
struct InFlight<'a>(&'a State);

impl<'a> InFlight<'a> {
    fn new(state: &'a State) -> InFlight<'a> {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve(client: TcpStream, state: &State) -> io::Result<()> {
    client.set_read_timeout(Some(POLL))?;
    client.set_write_timeout(Some(Duration::from_secs(30)))?;
    let _ = client.set_nodelay(true);
    let mut out = client.try_clone()?;
    let mut reader = BufReader::new(client);
    let mut upstream: Option<Upstream> = None;
    while let Some(req) = read_head(&mut reader, state)? {
        let keep = {
            let _counted = InFlight::new(state);
            one_request(&mut reader, &mut out, &mut upstream, req, state)?
        };
        if !keep || state.shutdown.load(Ordering::SeqCst) {
            break;
        }
    }
    let _ = out.flush();
    let _ = out.shutdown(Shutdown::Both);
    Ok(())
}

fn simple(out: &mut TcpStream, status: &str, body: &[u8], close: bool) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: {}\r\n\r\n",
        body.len(),
        if close { "close" } else { "keep-alive" }
    );
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

fn stats_json(state: &State) -> Vec<u8> {
    let paths: serde_json::Map<String, serde_json::Value> = lock(&state.paths)
        .iter()
        .map(|(p, s)| {
            (
                p.clone(),
                serde_json::json!({"requests": s.requests, "bytes": s.bytes}),
            )
        })
        .collect();
    serde_json::json!({
        "paths": paths,
        "connections": state.conns.load(Ordering::SeqCst),
        "peak_in_flight": state.peak_in_flight.load(Ordering::SeqCst),
    })
    .to_string()
    .into_bytes()
}

/// Serves one request; returns whether the client connection stays open.
fn one_request(
    client: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
    upstream: &mut Option<Upstream>,
    mut req: Head,
    state: &State,
) -> io::Result<bool> {
    let target = req.line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let path = target.split('?').next().unwrap_or("/").to_owned();
    let method = req.line.split_whitespace().next().unwrap_or("").to_owned();
    let close = req.wants_close();
    // A request body (none expected: GET and HEAD) is read and forwarded.
    let body_len: u64 = req
        .get("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if body_len > 1 << 20 {
        simple(out, "413 Payload Too Large", b"", true)?;
        return Ok(false);
    }
    let mut body = Vec::new();
    client.by_ref().take(body_len).read_to_end(&mut body)?;
    if state.control && path.starts_with("/__netem/") {
        if path == "/__netem/reset" {
            reset(state);
        }
        let json = stats_json(state);
        simple(out, "200 OK", &json, close)?;
        return Ok(!close);
    }
    lock(&state.paths).entry(path.clone()).or_default().requests += 1;
    let faults = faults_for(state, &path, &req);
    nap(state, state.delay);
    for f in &faults {
        if let Fault::Stall(d) = f {
            nap(state, *d);
        }
    }
    if faults.contains(&Fault::Fail503) {
        simple(out, "503 Service Unavailable", b"", close)?;
        return Ok(!close);
    }
    if faults.contains(&Fault::IgnoreRange) {
        req.remove("range");
        req.remove("if-range");
    }
    let asked_range = range_of(&req);
    // Forward; one reconnect if a kept-alive upstream connection went away.
    let mut resp = None;
    for attempt in 0..2 {
        if upstream.is_none() {
            *upstream = Some(connect(state)?);
        }
        let Some(up) = upstream.as_mut() else {
            continue;
        };
        let sent = up
            .writer
            .write_all(&req.to_bytes())
            .and_then(|()| up.writer.write_all(&body));
        let head = sent.and_then(|()| read_head(&mut up.reader, state));
        match head {
            Ok(Some(h)) => {
                resp = Some(h);
                break;
            }
            _ if attempt == 0 => *upstream = None,
            Ok(None) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) => return Err(e),
        }
    }
    let Some(mut resp) = resp else {
        simple(out, "502 Bad Gateway", b"", true)?;
        return Ok(false);
    };
    let Some(up) = upstream.as_mut() else {
        return Ok(false);
    };
    let status: u16 = resp
        .line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if resp
        .get("transfer-encoding")
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        *upstream = None;
        simple(
            out,
            "502 Bad Gateway",
            b"chunked responses are not proxied",
            true,
        )?;
        return Ok(false);
    }
    let no_body =
        method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status);
    let length: Option<u64> = if no_body {
        Some(0)
    } else {
        resp.get("content-length")
            .and_then(|v| v.trim().parse().ok())
    };
    let upstream_close = resp.wants_close() || length.is_none();
    // Where the body starts in the file, for CorruptByte.
    let first_byte = match (status, content_range(&resp)) {
        (206, Some((a, _, _))) => Some(a),
        (200, _) => Some(0),
        _ => None,
    };
    let _ = asked_range;
    if status == 206
        && let Some(shift) = faults.iter().find_map(|f| match f {
            Fault::WrongContentRange(k) => Some(*k),
            _ => None,
        })
        && let Some((a, b, total)) = content_range(&resp)
    {
        resp.set(
            "Content-Range",
            format!("bytes {}-{}/{total}", a + shift, b + shift),
        );
    }
    // How much of the body to send before closing.
    let full = length.unwrap_or(u64::MAX);
    let mut cut: Option<u64> = None;
    for f in &faults {
        match f {
            Fault::DropBodyAfter(k) => cut = Some(cut.map_or(*k, |c| c.min(*k))),
            Fault::Short206 if status == 206 => {
                let half = full / 2;
                cut = Some(cut.map_or(half, |c| c.min(half)));
            }
            _ => {}
        }
    }
    let mid_stall = faults.iter().find_map(|f| match f {
        Fault::StallMidBody(d) => Some(*d),
        _ => None,
    });
    let corrupt: Vec<u64> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::CorruptByte(o) => Some(*o),
            _ => None,
        })
        .collect();
    let close_after = close || upstream_close || cut.is_some();
    resp.set(
        "Connection",
        if close_after { "close" } else { "keep-alive" }.into(),
    );
    out.write_all(&resp.to_bytes())?;
    let to_send = cut.map_or(full, |c| c.min(full));
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buf = vec![0u8; STEP];
    let mut stalled = false;
    while sent < to_send {
        let mut want = (to_send - sent).min(STEP as u64) as usize;
        if let Some(_d) = mid_stall.filter(|_| !stalled && length.is_some()) {
            let half = full / 2;
            if sent < half {
                want = want.min((half - sent) as usize);
            }
        }
        // Pace before sending: these bytes leave once the ones before them
        // have had their time at `rate` (no wait after the last one).
        if let Some(rate) = state.rate {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            let now = started.elapsed();
            if due > now {
                nap(state, due - now);
            }
        }
        let n = match up.reader.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                *upstream = None;
                return Err(e);
            }
        };
        if let Some(first) = first_byte {
            for &o in &corrupt {
                let at = first + sent;
                if o >= at && o < at + n as u64 {
                    buf[(o - at) as usize] ^= 0xff;
                }
            }
        }
        out.write_all(&buf[..n])?;
        sent += n as u64;
        lock(&state.paths).entry(path.clone()).or_default().bytes += n as u64;
        if let Some(d) = mid_stall
            && !stalled
            && sent >= full / 2
        {
            out.flush()?;
            stalled = true;
            nap(state, d);
        }
        if state.shutdown.load(Ordering::SeqCst) {
            break;
        }
    }
    out.flush()?;
    if close_after || sent < to_send {
        // The upstream connection may hold the rest of a body: drop it.
        *upstream = None;
        return Ok(false);
    }
    Ok(true)
}

/// Parses `--upstream URL --delay-ms N --rate-mbps N [--listen ADDR]`
/// (rates in MB/s, 10^6 bytes) into a [`Config`] with the control paths on.
pub fn config_from_args(args: &[String]) -> Result<Config, String> {
    let mut m: HashMap<&str, &str> = HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let key = a.as_str();
        if !matches!(
            key,
            "--upstream" | "--delay-ms" | "--rate-mbps" | "--listen"
        ) {
            return Err(format!("unexpected argument '{a}'"));
        }
        let v = it.next().ok_or_else(|| format!("{key} needs a value"))?;
        m.insert(key, v);
    }
    let upstream = m.get("--upstream").ok_or("missing --upstream")?;
    let num = |k: &str| -> Result<f64, String> {
        m.get(k).map_or(Ok(0.0), |v| {
            v.parse::<f64>().map_err(|e| format!("{k}: {e}"))
        })
    };
    let delay = Duration::from_secs_f64(num("--delay-ms")?.max(0.0) / 1e3);
    let rate = num("--rate-mbps")?;
    let mut c = Config::new(upstream, delay, (rate > 0.0).then_some((rate * 1e6) as u64));
    if let Some(l) = m.get("--listen") {
        c.listen = (*l).to_owned();
    }
    c.control = true;
    Ok(c)
}
