//! A minimal static HTTP/1.1 file server for tests (std only): serves the
//! files of one directory on `127.0.0.1:0` with single-range requests
//! (`bytes=a-b`, `bytes=a-`), `ETag` (size and modification time) and
//! `If-Match`, and keep-alive. Put a [`crate::netem::Proxy`] in front of it
//! for latency, rate limits and faults. Stops when dropped.

use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running file server; stops when dropped.
pub struct Origin {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Origin {
    /// Serves the files under `root`.
    pub fn serve(root: &Path) -> io::Result<Origin> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (root, st) = (root.to_path_buf(), stop.clone());
        let accept = std::thread::Builder::new()
            .name("origin-accept".into())
            .spawn(move || {
                for s in listener.incoming() {
                    if st.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(s) = s else { continue };
                    let (root, st) = (root.clone(), st.clone());
                    let _ = std::thread::Builder::new()
                        .name("origin-conn".into())
                        .spawn(move || {
                            let _ = conn(s, &root, &st);
                        });
                }
            })?;
        Ok(Origin {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn conn(s: TcpStream, root: &Path, stop: &AtomicBool) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = s.try_clone()?;
    let mut r = BufReader::new(s);
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("/").to_owned();
        let close = header(&headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        respond(&mut out, root, &method, &target, &headers)?;
        if close {
            break;
        }
    }
    let _ = out.shutdown(Shutdown::Both);
    Ok(())
}

fn header<'a>(headers: &'a [(String, String)], k: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
}

fn file_of(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split('?').next()?.trim_start_matches('/');
    let rel = Path::new(path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let p = root.join(rel);
    p.is_file().then_some(p)
}

fn respond(
    out: &mut TcpStream,
    root: &Path,
    method: &str,
    target: &str,
    headers: &[(String, String)],
) -> io::Result<()> {
    let get = |k: &str| header(headers, k);
    let head = |status: &str, extra: &str, len: u64| {
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {len}\r\nConnection: keep-alive\r\n\r\n"
        )
    };
    let Some(path) = file_of(root, target).filter(|_| method == "GET" || method == "HEAD") else {
        return out.write_all(head("404 Not Found", "", 0).as_bytes());
    };
    let mut f = std::fs::File::open(&path)?;
    let meta = f.metadata()?;
    let len = meta.len();
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{len:x}-{mtime:x}\"");
    if let Some(m) = get("if-match")
        && m.trim() != "*"
        && m.trim() != etag
    {
        return out.write_all(head("412 Precondition Failed", "", 0).as_bytes());
    }
    let range = get("range")
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let a: u64 = a.trim().parse().ok()?;
            let b = if b.trim().is_empty() {
                len.checked_sub(1)?
            } else {
                b.trim().parse::<u64>().ok()?.min(len.checked_sub(1)?)
            };
            Some((a, b))
        });
    let (status, from, n, extra) = match (get("range"), range) {
        (None, _) => ("200 OK", 0, len, format!("ETag: {etag}\r\n")),
        (Some(_), Some((a, b))) if a <= b => (
            "206 Partial Content",
            a,
            b - a + 1,
            format!("ETag: {etag}\r\nContent-Range: bytes {a}-{b}/{len}\r\n"),
        ),
        _ => {
            let extra = format!("ETag: {etag}\r\nContent-Range: bytes */{len}\r\n");
            return out.write_all(head("416 Range Not Satisfiable", &extra, 0).as_bytes());
        }
    };
    out.write_all(head(status, &extra, n).as_bytes())?;
    if method == "HEAD" {
        return Ok(());
    }
    f.seek(SeekFrom::Start(from))?;
    io::copy(&mut f.take(n), out)?;
    out.flush()
}
