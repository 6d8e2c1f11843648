//! The parallel range engine over HTTP, with several ranges in flight: our
//! fault-injecting test server (`support/http_server.rs`) behind the
//! latency/rate-limiting proxy of `aero_test_support::netem`, which delays
//! every request (so pieces overlap) and injects faults into the response
//! of one range among those in flight. Every fault ends in the right bytes
//! or a clear error, touches only its own range, and a damaged range is
//! never kept in the cache.
//!
//! Run: `cargo test -p aero-io --features http --test it -- remote_engine::`
#![cfg(feature = "http")]

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aero_io::remote::{RangeCache, RemoteOptions};
use aero_io::write::{TensorBytes, TensorSpec, WriteOptions, write_model};
use aero_io::{AeroFile, ByteSource, DType, Error, Mode, Verdict};
use aero_test_support::netem::{self, Fault, Proxy};
use support::http_server::TestServer;

const MIB: u64 = 1 << 20;
/// The big tensor: 16 MiB, read as 8 pieces of 2 MiB with 8 jobs.
const BIG: u64 = 16 * MIB;
const PIECE: u64 = 2 * MIB;

/// Aborts the test binary if a test hangs.
struct Watchdog(Arc<AtomicBool>);

fn watchdog(limit: Duration) -> Watchdog {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < limit {
            if d.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("watchdog: still running after {limit:?}; aborting");
        std::process::exit(101);
    });
    Watchdog(done)
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A model written by the project's writer: a small tensor and a 16 MiB one,
/// both with `hash_b3`, the big one past the 64 KiB read at open.
struct Model {
    bytes: Vec<u8>,
    big: Vec<u8>,
    /// Absolute offset of the big tensor.
    off: u64,
}

fn model(tensor_hash: bool) -> Model {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.aero");
    let small = aero_test_support::bytes(1, 100 << 10);
    let big = aero_test_support::bytes(2, BIG as usize);
    let specs = vec![
        TensorSpec {
            name: "a.small".into(),
            dtype: DType::U8,
            shape: vec![small.len() as u64],
            data_len: small.len() as u64,
            extras: Vec::new(),
            bytes: TensorBytes::Reader(Box::new(std::io::Cursor::new(small))),
        },
        TensorSpec {
            name: "b.big".into(),
            dtype: DType::U8,
            shape: vec![BIG],
            data_len: BIG,
            extras: Vec::new(),
            bytes: TensorBytes::Reader(Box::new(std::io::Cursor::new(big.clone()))),
        },
    ];
    let opts = WriteOptions {
        tensor_hash,
        page_hashes: None,
        uuid: Some([7; 16]),
        ..Default::default()
    };
    write_model(&path, specs, &opts).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let f = AeroFile::open(&path).unwrap();
    let info = f.tensor_info("b.big").unwrap().clone();
    let (off, _) = f.tensor_range(&info).unwrap();
    assert!(off > 64 << 10);
    Model { bytes, big, off }
}

/// The server with the model at `/m.aero`, and a proxy in front of it
/// adding `delay` to every request.
fn serve(m: &Model, delay: Duration) -> (TestServer, Proxy) {
    let srv = TestServer::start();
    srv.put("/m.aero", m.bytes.clone());
    let proxy = Proxy::start(netem::Config::new(&srv.base_url(), delay, None)).unwrap();
    (srv, proxy)
}

fn opts() -> RemoteOptions {
    RemoteOptions {
        timeout: Duration::from_secs(2),
        retries: 3,
        backoff: Duration::from_millis(10),
        jobs: 8,
        ..Default::default()
    }
}

/// The offset `k` pieces into the big tensor (a byte inside piece `k`).
fn in_piece(m: &Model, k: u64) -> u64 {
    m.off + k * PIECE + 1000
}

/// How many times the server was asked for a range starting at each
/// offset inside the big tensor, as (piece start, count) sorted.
fn asked(srv: &TestServer, m: &Model) -> Vec<(u64, usize)> {
    let mut v: Vec<(u64, usize)> = Vec::new();
    for e in srv.log() {
        if let Some((a, _)) = e.range_bounds()
            && a >= m.off
            && a < m.off + BIG
        {
            match v.iter_mut().find(|(s, _)| *s == a) {
                Some((_, n)) => *n += 1,
                None => v.push((a, 1)),
            }
        }
    }
    v.sort_unstable();
    v
}

fn big(f: &AeroFile) -> aero_io::Result<Vec<u8>> {
    f.tensor("b.big").map(|v| v.bytes().to_vec())
}

#[test]
fn a_large_read_goes_out_on_several_connections_at_once() {
    let _w = watchdog(Duration::from_secs(60));
    let m = model(true);
    let (srv, proxy) = serve(&m, Duration::from_millis(40));
    let f = AeroFile::open_url(&proxy.url("/m.aero"), opts()).unwrap();
    let start = Instant::now();
    assert_eq!(big(&f).unwrap(), m.big);
    let took = start.elapsed();
    // 8 pieces of 2 MiB, each asked once, most of them at the same time.
    let a = asked(&srv, &m);
    assert_eq!(a.len(), 8, "{a:?}");
    assert!(a.iter().all(|&(_, n)| n == 1), "{a:?}");
    assert!(
        proxy.peak_in_flight() >= 4,
        "peak {}",
        proxy.peak_in_flight()
    );
    // One after another, the 8 requests would wait 8 × 40 ms at least.
    eprintln!("16 MiB in 8 pieces at 40 ms per request: {took:?}");
    // With one job, one request at a time again.
    srv.clear_log();
    proxy.reset();
    let f = AeroFile::open_url(&proxy.url("/m.aero"), RemoteOptions { jobs: 1, ..opts() }).unwrap();
    assert_eq!(big(&f).unwrap(), m.big);
    // (The proxy counts a request until it has sent the last byte, so the
    // next one may start just before: 2.)
    assert!(proxy.peak_in_flight() <= 2, "{}", proxy.peak_in_flight());
}

#[test]
fn transient_faults_on_single_ranges_end_in_the_right_bytes() {
    let _w = watchdog(Duration::from_secs(60));
    let m = model(true);
    let (srv, proxy) = serve(&m, Duration::from_millis(20));
    let f = AeroFile::open_url(&proxy.url("/m.aero"), opts()).unwrap();
    srv.clear_log();
    // Five pieces in flight together each meet a different fault once.
    proxy.fault_at("/m.aero", in_piece(&m, 1), Fault::Fail503, 1);
    proxy.fault_at("/m.aero", in_piece(&m, 2), Fault::Short206, 1);
    proxy.fault_at("/m.aero", in_piece(&m, 3), Fault::DropBodyAfter(5000), 1);
    proxy.fault_at("/m.aero", in_piece(&m, 4), Fault::IgnoreRange, 1);
    proxy.fault_at(
        "/m.aero",
        in_piece(&m, 5),
        Fault::StallMidBody(Duration::from_secs(5)),
        1,
    );
    let start = Instant::now();
    assert_eq!(big(&f).unwrap(), m.big);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the stall timed out"
    );
    let a = asked(&srv, &m);
    let count = |k: u64| {
        a.iter()
            .find(|(s, _)| *s == m.off + k * PIECE)
            .map_or(0, |x| x.1)
    };
    // The faulty pieces were asked again (a cut body resumes at its
    // offset, so it is asked at another start as well) …
    assert_eq!(count(1), 1, "the 503 never reached the server: {a:?}");
    assert!(
        a.iter()
            .any(|&(s, _)| s > m.off + 2 * PIECE && s < m.off + 3 * PIECE),
        "{a:?}"
    );
    assert!(
        a.iter()
            .any(|&(s, _)| s > m.off + 3 * PIECE && s < m.off + 4 * PIECE),
        "{a:?}"
    );
    assert!(
        a.iter()
            .any(|&(s, _)| s > m.off + 5 * PIECE && s < m.off + 6 * PIECE),
        "the stalled piece resumed where it stopped: {a:?}"
    );
    // … the others once.
    for k in [0, 6, 7] {
        assert_eq!(count(k), 1, "piece {k}: {a:?}");
    }
    // The whole-file answer to piece 4 was streamed forward, not kept.
    assert!(srv.log().iter().any(|e| e.status == 200));
}

#[test]
fn a_wrong_content_range_on_one_range_is_an_error_never_wrong_bytes() {
    let _w = watchdog(Duration::from_secs(60));
    let m = model(true);
    let (_srv, proxy) = serve(&m, Duration::from_millis(20));
    let f = AeroFile::open_url(&proxy.url("/m.aero"), opts()).unwrap();
    proxy.fault_at("/m.aero", in_piece(&m, 3), Fault::WrongContentRange(16), 1);
    let e = big(&f).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("Content-Range"), "{e}");
    assert!(e.to_string().contains("m.aero"), "names the file: {e}");
    // The next read is right.
    assert_eq!(big(&f).unwrap(), m.big);
}

#[test]
fn a_server_ignoring_range_on_one_piece_is_refused_past_the_limit() {
    let _w = watchdog(Duration::from_secs(60));
    let m = model(true);
    let (_srv, proxy) = serve(&m, Duration::from_millis(10));
    let o = RemoteOptions {
        max_ignored_range: 4 * MIB,
        ..opts()
    };
    let f = AeroFile::open_url(&proxy.url("/m.aero"), o).unwrap();
    proxy.fault_at("/m.aero", in_piece(&m, 6), Fault::IgnoreRange, 1);
    let e = big(&f).unwrap_err();
    assert!(e.to_string().contains("ignores Range"), "{e}");
}

#[test]
fn a_corrupted_range_is_refetched_and_never_kept() {
    let _w = watchdog(Duration::from_secs(60));
    let cache = tempfile::tempdir().unwrap();
    let m = model(true);
    let (_srv, proxy) = serve(&m, Duration::from_millis(10));
    let o = RemoteOptions {
        cache: Some(RangeCache::new(cache.path(), 256 * MIB).unwrap()),
        ..opts()
    };
    let f = AeroFile::open_url(&proxy.url("/m.aero"), o.clone()).unwrap();
    // One corrupted answer among the pieces in flight: hash_b3 fails, the
    // cached pieces are dropped, the tensor comes again and is right.
    proxy.fault_at(
        "/m.aero",
        in_piece(&m, 4) + 77,
        Fault::CorruptByte(in_piece(&m, 4) + 77),
        1,
    );
    assert_eq!(big(&f).unwrap(), m.big);
    // What the cache holds now is right: with every tensor range refused by
    // the network, a new reader gets the tensor from the cache alone.
    for k in 0..8 {
        proxy.fault_at("/m.aero", in_piece(&m, k), Fault::Fail503, 1000);
    }
    let f = AeroFile::open_url(&proxy.url("/m.aero"), o.clone()).unwrap();
    assert_eq!(big(&f).unwrap(), m.big);
    proxy.clear_faults();
    // Corruption on every answer: a clear error, and nothing kept that a
    // later reader would take.
    let cache2 = tempfile::tempdir().unwrap();
    let o2 = RemoteOptions {
        cache: Some(RangeCache::new(cache2.path(), 256 * MIB).unwrap()),
        ..opts()
    };
    let f = AeroFile::open_url(&proxy.url("/m.aero"), o2.clone()).unwrap();
    proxy.fault("/m.aero", Fault::CorruptByte(in_piece(&m, 2)));
    let e = big(&f).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    proxy.clear_faults();
    let f = AeroFile::open_url(&proxy.url("/m.aero"), o2).unwrap();
    assert_eq!(big(&f).unwrap(), m.big);
}

#[test]
fn a_stalled_range_times_out_alone_and_a_persistent_stall_is_an_error() {
    let _w = watchdog(Duration::from_secs(90));
    let m = model(true);
    let (_srv, proxy) = serve(&m, Duration::from_millis(10));
    let o = RemoteOptions {
        timeout: Duration::from_secs(1),
        ..opts()
    };
    let f = AeroFile::open_url(&proxy.url("/m.aero"), o).unwrap();
    f.index().unwrap();
    proxy.reset();
    proxy.fault_at(
        "/m.aero",
        in_piece(&m, 2),
        Fault::Stall(Duration::from_secs(20)),
        1,
    );
    let start = Instant::now();
    assert_eq!(big(&f).unwrap(), m.big);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(4), "{took:?}");
    // 8 pieces, one of them twice.
    assert_eq!(proxy.path_stats("/m.aero").requests, 9);
    // A range that never answers: an error once its retries are spent
    // (4 attempts of 1 s), well before the stall would end.
    proxy.fault_at(
        "/m.aero",
        in_piece(&m, 6),
        Fault::Stall(Duration::from_secs(60)),
        100,
    );
    let start = Instant::now();
    let e = big(&f).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    let msg = e.to_string().to_lowercase();
    assert!(
        msg.contains("giving up") || msg.contains("timed out") || msg.contains("timeout"),
        "{e}"
    );
}

#[test]
fn full_validation_streams_the_file_with_faults_on_some_ranges() {
    let _w = watchdog(Duration::from_secs(60));
    for tensor_hash in [true, false] {
        let m = model(tensor_hash);
        let (srv, proxy) = serve(&m, Duration::from_millis(10));
        let f = AeroFile::open_url(&proxy.url("/m.aero"), opts()).unwrap();
        srv.clear_log();
        proxy.fault_at("/m.aero", in_piece(&m, 1), Fault::Fail503, 1);
        proxy.fault_at("/m.aero", in_piece(&m, 3), Fault::DropBodyAfter(1), 1);
        let r = aero_io::validate(&f, Mode::Full, &|_| {});
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.errors);
        assert!(proxy.peak_in_flight() >= 2);
        // Damage in transit on every answer for one range: INVALID, naming
        // what failed.
        proxy.fault("/m.aero", Fault::CorruptByte(in_piece(&m, 5)));
        let r = aero_io::validate(&f, Mode::Full, &|_| {});
        assert_eq!(r.verdict, Verdict::Invalid, "{tensor_hash}");
        assert!(
            r.errors
                .iter()
                .any(|e| e.contains("mismatch") || e.contains("hash_b3")),
            "{:?}",
            r.errors
        );
        proxy.clear_faults();
    }
}

#[test]
fn one_pass_validation_digests_every_byte_once() {
    let _w = watchdog(Duration::from_secs(60));
    let m = model(true);
    let (_srv, proxy) = serve(&m, Duration::from_millis(5));
    let f = AeroFile::open_url(&proxy.url("/m.aero"), opts()).unwrap();
    // (The proxy counts bytes just after sending them: let the count of the
    // read at open settle before zeroing it.)
    std::thread::sleep(Duration::from_millis(200));
    proxy.reset();
    let mut all = Vec::new();
    let (r, read) =
        aero_io::validate_with_digest(&f, Mode::Full, &|_| {}, &mut |b| all.extend_from_slice(b));
    read.unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.errors);
    assert_eq!(all, m.bytes, "every byte, in order, once");
    // The weights crossed the network once (the first 64 KiB came at open;
    // the small metadata chunks past them are read by their own checks too).
    let sent = proxy.path_stats("/m.aero").bytes;
    let once = m.bytes.len() as u64 - (64 << 10);
    assert!(sent >= once && sent - once < 16 << 10, "{sent} vs {once}");
}

#[test]
fn a_stopped_stream_leaves_only_whole_entries_in_the_cache() {
    let _w = watchdog(Duration::from_secs(60));
    let cache = tempfile::tempdir().unwrap();
    let m = model(true);
    let (_srv, proxy) = serve(&m, Duration::from_millis(30));
    let o = RemoteOptions {
        cache: Some(RangeCache::new(cache.path(), 256 * MIB).unwrap()),
        max_request: 256 << 10,
        ..opts()
    };
    let src = aero_io::remote::open_source(&proxy.url("/m.aero"), o).unwrap();
    // The consumer gives up after 1 MiB: the stream stops at once.
    let mut seen = 0u64;
    let start = Instant::now();
    let e = src
        .stream(&[(m.off, BIG)], &mut |_, b| {
            seen += b.len() as u64;
            if seen >= MIB {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "cancelled",
                ));
            }
            Ok(())
        })
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Interrupted);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(proxy.path_stats("/m.aero").bytes < BIG, "stopped fetching");
    check_cache(cache.path(), &m.bytes);
}

/// Every entry of a range cache is whole (its bytes match the BLAKE3
/// stored after them) and is a range of `file`; no temporary is left.
fn check_cache(dir: &Path, file: &[u8]) {
    let mut n = 0;
    for sub in std::fs::read_dir(dir).unwrap() {
        for e in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.ends_with(".bin"), "leftover {name}");
            let data = std::fs::read(&p).unwrap();
            let (body, tail) = data.split_at(data.len() - 32);
            assert_eq!(blake3::hash(body).as_bytes(), tail, "{name}");
            assert!(
                file.windows(body.len().min(4096))
                    .any(|w| w == &body[..body.len().min(4096)]),
                "{name} is not from the file"
            );
            n += 1;
        }
    }
    assert!(n > 0, "something was cached");
}
