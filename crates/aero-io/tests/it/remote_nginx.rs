//! Remote reading through a real nginx (Debian `nginx-light`) serving the
//! golden files: every chunk and tensor read over HTTP equals the local
//! bytes, nginx sees only Range GETs, and a warm cache makes no tensor
//! requests.
//!
//! Needs a running nginx, started by `tests/nginx/run_nginx_test.sh`:
//!
//! ```sh
//! export AERO_NGINX_URL=$(bash tests/nginx/run_nginx_test.sh start ../shared/golden)
//! export AERO_NGINX_LOG=$(bash tests/nginx/run_nginx_test.sh log)
//! cargo test -p aero-io --features http --test it -- --ignored remote_nginx::
//! bash tests/nginx/run_nginx_test.sh stop
//! ```
//!
//! The test is `#[ignore]`d, so a plain `cargo test` reports it as ignored;
//! `cargo xtask ci` starts nginx and runs it with `--run-ignored`. Run
//! without `AERO_NGINX_URL` / `AERO_NGINX_LOG`, it fails.
#![cfg(feature = "http")]

use crate::common;

use std::time::{Duration, Instant};

use aero_io::remote::{RangeCache, RemoteOptions};
use aero_io::{AeroFile, Mode};
use common::{aero_files, golden};

/// One access-log line: `METHOD|URI|RANGE|STATUS|BYTES|IF_MATCH|IF_RANGE`.
#[derive(Debug, Clone)]
struct Line {
    method: String,
    uri: String,
    range: Option<String>,
    status: u16,
    raw: String,
}

fn parse(raw: &str) -> Line {
    let f: Vec<&str> = raw.split('|').collect();
    assert!(
        f.len() >= 5,
        "unexpected access log line {raw:?} (wrong log_format?)"
    );
    Line {
        method: f[0].to_owned(),
        uri: f[1].to_owned(),
        range: Some(f[2])
            .filter(|r| *r != "-" && !r.is_empty())
            .map(str::to_owned),
        status: f[3].parse().unwrap_or(0),
        raw: raw.to_owned(),
    }
}

struct Log {
    path: String,
}

impl Log {
    fn lines(&self) -> Vec<Line> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_else(|e| panic!("{}: {e}", self.path))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse)
            .collect()
    }

    /// Lines after the first `from`, once nginx has written at least `min`
    /// of them (it logs after sending the response) and the count settled.
    fn since(&self, from: usize, min: usize) -> Vec<Line> {
        let start = Instant::now();
        let mut last = usize::MAX;
        loop {
            let v = self.lines();
            let n = v.len().saturating_sub(from);
            if (n >= min && n == last) || start.elapsed() > Duration::from_secs(5) {
                return v.into_iter().skip(from).collect();
            }
            last = n;
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn opts() -> RemoteOptions {
    RemoteOptions {
        timeout: Duration::from_secs(10),
        retries: 2,
        backoff: Duration::from_millis(50),
        ..Default::default()
    }
}

#[track_caller]
fn assert_only_ranges(lines: &[Line]) {
    for l in lines {
        assert_eq!(l.method, "GET", "{}", l.raw);
        let r = l
            .range
            .as_deref()
            .unwrap_or_else(|| panic!("no Range header: {}", l.raw));
        assert!(r.starts_with("bytes=") && !r.contains(','), "{}", l.raw);
        assert_eq!(l.status, 206, "{}", l.raw);
    }
}

/// Reads everything of every golden file through `base`, comparing with the
/// local file. Returns the files that validate locally with damage found
/// (their damaged ranges are refetched on every verified read, cache or not).
fn read_all(base: &str, o: &RemoteOptions) -> Vec<String> {
    let names = aero_files();
    let mut damaged = Vec::new();
    for name in &names {
        let url = format!("{base}/{name}");
        let local = AeroFile::open(golden().join(name)).unwrap();
        let remote = AeroFile::open_url(&url, o.clone()).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(remote.len(), local.len(), "{name}");
        assert_eq!(remote.chunks(), local.chunks(), "{name}");
        for (r, l) in remote.chunks().iter().zip(local.chunks()) {
            assert_eq!(
                remote.stored(r).unwrap().as_ref(),
                local.stored(l).unwrap().as_ref(),
                "{name}: chunk {}",
                l.name
            );
        }
        let Ok(lidx) = local.index() else {
            assert!(remote.index().is_err(), "{name}");
            continue;
        };
        let ridx = remote.index().unwrap();
        assert_eq!(ridx.len(), lidx.len(), "{name}");
        for t in lidx.tensors() {
            if local.tensor_range(t).is_ok() {
                assert_eq!(
                    remote
                        .tensor_unverified(ridx.get(&t.name).unwrap())
                        .unwrap()
                        .bytes(),
                    local.tensor_unverified(t).unwrap().bytes(),
                    "{name}/{}",
                    t.name
                );
            }
            match (local.tensor(&t.name), remote.tensor(&t.name)) {
                (Ok(l), Ok(r)) => assert_eq!(l.bytes(), r.bytes(), "{name}/{}", t.name),
                (Err(_), Err(_)) => {}
                (l, r) => panic!(
                    "{name}/{}: local {:?}, remote {:?}",
                    t.name,
                    l.map(|_| ()),
                    r.map(|_| ())
                ),
            }
        }
        let lr = aero_io::validate(&local, Mode::Full, &|_| {});
        let rr = aero_io::validate(&remote, Mode::Full, &|_| {});
        assert_eq!(rr.verdict, lr.verdict, "{name}: {:?}", rr.errors);
        if !lr.valid {
            damaged.push(name.clone());
        }
    }
    damaged
}

#[test]
#[ignore = "needs nginx: run by cargo xtask ci"]
fn golden_files_through_nginx() {
    let (Ok(base), Ok(log)) = (
        std::env::var("AERO_NGINX_URL"),
        std::env::var("AERO_NGINX_LOG"),
    ) else {
        panic!(
            "set AERO_NGINX_URL and AERO_NGINX_LOG (tests/nginx/run_nginx_test.sh; cargo xtask ci does)"
        );
    };
    let base = base.trim_end_matches('/').to_owned();
    let log = Log { path: log };

    // 1. Default options: each golden file (all below the 64 KiB prefix
    //    guess) costs exactly one Range request.
    let n0 = log.lines().len();
    let files = aero_files().len();
    read_all(&base, &opts());
    let lines = log.since(n0, files);
    assert_only_ranges(&lines);
    for name in aero_files() {
        let mine: Vec<&Line> = lines
            .iter()
            .filter(|l| l.uri == format!("/{name}"))
            .collect();
        assert_eq!(mine.len(), 1, "{name}: {mine:?}");
        assert_eq!(mine[0].range.as_deref(), Some("bytes=0-65535"), "{name}");
    }
    assert_eq!(lines.len(), files, "{lines:#?}");

    // 2. A tiny prefix guess: header, TIDX and tensors each become real
    //    ranged reads served by nginx.
    let small = RemoteOptions {
        prefix_guess: 1024,
        ..opts()
    };
    let n1 = log.lines().len();
    read_all(&base, &small);
    let lines = log.since(n1, files * 2);
    assert_only_ranges(&lines);
    assert!(
        lines.len() > files * 2,
        "expected many ranged reads, got {}",
        lines.len()
    );
    assert!(
        lines
            .iter()
            .any(|l| !l.range.as_deref().unwrap().starts_with("bytes=0-"))
    );

    // 3. Cache: a second pass with a warm cache costs only the opens.
    let dir = tempfile::tempdir().unwrap();
    let cached = RemoteOptions {
        cache: Some(RangeCache::new(dir.path(), 256 << 20).unwrap()),
        ..small
    };
    read_all(&base, &cached);
    let n2 = log.lines().len();
    let damaged = read_all(&base, &cached);
    assert!(
        damaged.iter().any(|d| d == "tensor-hash-defect.aero"),
        "{damaged:?}"
    );
    let lines = log.since(n2, files);
    assert_only_ranges(&lines);
    let intact: Vec<&Line> = lines
        .iter()
        .filter(|l| !damaged.iter().any(|d| l.uri == format!("/{d}")))
        .collect();
    assert_eq!(
        intact.len(),
        files - damaged.len(),
        "warm cache: only one open request per intact file: {intact:#?}"
    );
    assert!(
        intact
            .iter()
            .all(|l| l.range.as_deref() == Some("bytes=0-1023")),
        "{intact:#?}"
    );
    println!("nginx: {} files read and checked through {base}", files);
}
