//! A test-only transport over files held in memory (`mem://NAME`), with
//! injectable faults. It is what a third transport costs: this file and one
//! line in the `transports!` list of `remote/mod.rs`. Its tests run the
//! retry, split, resume, `Content-Range` and cache behaviour of
//! [`super::RemoteSource`] that `tests/it/remote.rs` checks over HTTP.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::RemoteOptions;
use super::transport::{FetchError, Meta, Reply, Served, Transport};

/// What the next request gets instead of a right answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// A transient failure before any byte (a 503, a refused connection).
    Unavailable,
    /// The right `Content-Range`, but the body ends after this many bytes.
    ShortBody(usize),
    /// A `Content-Range` one byte later than asked (with the bytes it names).
    WrongRange,
    /// The whole file from byte 0, as a server that ignores `Range` sends it.
    IgnoreRange,
    /// The right answer with the byte at this absolute offset flipped.
    Corrupt(u64),
}

/// A file served by [`MemoryTransport`].
#[derive(Default)]
pub(super) struct MemFile {
    data: Mutex<Vec<u8>>,
    etag: Mutex<Option<String>>,
    faults: Mutex<VecDeque<Fault>>,
    /// Faults for the next requests whose range holds an offset.
    targeted: Mutex<Vec<(u64, Fault, u32)>>,
    delay: Mutex<std::time::Duration>,
    in_flight: std::sync::atomic::AtomicU64,
    peak: std::sync::atomic::AtomicU64,
    log: Mutex<Vec<Range<u64>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemFile {
    /// Replaces the content (and the ETag, when `etag` is given).
    pub(super) fn set(&self, data: Vec<u8>, etag: Option<&str>) {
        *lock(&self.data) = data;
        *lock(&self.etag) = etag.map(str::to_owned);
    }

    /// Queues faults for the next requests, in order.
    pub(super) fn fault(&self, faults: &[Fault]) {
        lock(&self.faults).extend(faults);
    }

    /// Gives the next `times` requests whose range holds `offset` this
    /// fault (one piece among several in flight).
    pub(crate) fn fault_at(&self, offset: u64, fault: Fault, times: u32) {
        lock(&self.targeted).push((offset, fault, times));
    }

    /// Makes every request take this long (so that pieces overlap).
    pub(crate) fn set_delay(&self, d: std::time::Duration) {
        *lock(&self.delay) = d;
    }

    /// The most requests that were being answered at once.
    pub(crate) fn peak_in_flight(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The ranges asked for so far.
    pub(super) fn log(&self) -> Vec<Range<u64>> {
        lock(&self.log).clone()
    }

    /// Forgets the ranges asked for so far.
    pub(super) fn clear_log(&self) {
        lock(&self.log).clear();
    }
}

fn files() -> &'static Mutex<HashMap<String, Arc<MemFile>>> {
    static F: OnceLock<Mutex<HashMap<String, Arc<MemFile>>>> = OnceLock::new();
    F.get_or_init(Default::default)
}

/// Serves `data` at `mem://{name}` (replacing any earlier file of that name).
pub(super) fn serve(name: &str, data: Vec<u8>, etag: Option<&str>) -> Arc<MemFile> {
    let file = Arc::new(MemFile::default());
    file.set(data, etag);
    lock(files()).insert(name.to_owned(), Arc::clone(&file));
    file
}

/// Reads files registered with [`serve`].
pub struct MemoryTransport {
    file: Arc<MemFile>,
}

impl Transport for MemoryTransport {
    fn connect(url: &str, _opts: &RemoteOptions) -> io::Result<MemoryTransport> {
        // The scheme is `mem` in any case (the registration decided that).
        let name = url.split_once("://").map_or(url, |(_, name)| name);
        let file = lock(files()).get(name).cloned().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{url}: no such file"))
        })?;
        Ok(MemoryTransport { file })
    }

    fn get(&self, range: Range<u64>, etag: Option<&str>) -> Result<Reply<'_>, FetchError> {
        use std::sync::atomic::Ordering;
        lock(&self.file.log).push(range.clone());
        let now = self.file.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.file.peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(*lock(&self.file.delay));
        self.file.in_flight.fetch_sub(1, Ordering::SeqCst);
        let targeted = {
            let mut t = lock(&self.file.targeted);
            let hit = t
                .iter_mut()
                .find(|(at, _, n)| *n > 0 && range.contains(at))
                .map(|(_, f, n)| {
                    *n -= 1;
                    *f
                });
            t.retain(|(_, _, n)| *n > 0);
            hit
        };
        let fault = targeted.or_else(|| lock(&self.file.faults).pop_front());
        let data = lock(&self.file.data).clone();
        let current = lock(&self.file.etag).clone();
        if etag.is_some() && current.as_deref() != etag {
            return Err(FetchError::Changed("ETag differs".into()));
        }
        let total = data.len() as u64;
        let meta = Meta {
            size: total,
            etag: current.clone(),
            modified: None,
        };
        if fault == Some(Fault::Unavailable) {
            return Err(FetchError::Retry("503 Service Unavailable".into()));
        }
        if fault == Some(Fault::IgnoreRange) {
            return Ok(Reply {
                served: Served::Whole { total: Some(total) },
                etag: current,
                modified: None,
                body: Box::new(io::Cursor::new(data)),
            });
        }
        if range.start >= total {
            return Err(FetchError::Unsatisfiable {
                meta: Some(meta),
                error: io::Error::new(io::ErrorKind::InvalidData, "range not satisfiable"),
            });
        }
        let shift = u64::from(fault == Some(Fault::WrongRange));
        let start = range.start + shift;
        let end = range.end.min(total).max(start);
        let mut body = data
            .get(start as usize..end as usize)
            .unwrap_or_default()
            .to_vec();
        if let Some(Fault::ShortBody(n)) = fault {
            body.truncate(n);
        }
        if let Some(Fault::Corrupt(at)) = fault
            && (start..end).contains(&at)
        {
            body[(at - start) as usize] ^= 0xff;
        }
        Ok(Reply {
            served: Served::Range {
                start,
                end,
                total: Some(total),
            },
            etag: current,
            modified: None,
            body: Box::new(io::Cursor::new(body)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RangeCache, RemoteSource, open_source};
    use super::*;
    use crate::source::ByteSource;
    use std::collections::HashMap;
    use std::time::Duration;

    type MemSource = RemoteSource<MemoryTransport>;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn opts() -> RemoteOptions {
        RemoteOptions {
            retries: 3,
            backoff: Duration::from_millis(1),
            max_request: 1000,
            prefix_guess: 100,
            ..Default::default()
        }
    }

    fn read(src: &MemSource, at: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        src.read_exact_at(at, &mut v)?;
        Ok(v)
    }

    #[test]
    fn registered_scheme_opens_through_open_source() {
        let data = pattern(5000);
        serve("registered", data.clone(), Some("\"e1\""));
        let src = open_source("MEM://registered", opts()).unwrap();
        assert_eq!(src.len(), 5000);
        let mut buf = vec![0u8; 300];
        src.read_exact_at(4000, &mut buf).unwrap();
        assert_eq!(buf, data[4000..4300]);
        assert!(super::super::can_open("Mem://missing"));
        assert!(!super::super::can_open("ftp://h/x"));
        assert!(!super::super::can_open("s3:///key"));
        let Err(e) = open_source("mem://missing", opts()) else {
            panic!("opened a file that is not served");
        };
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn open_reads_the_prefix_once_then_serves_it_from_memory() {
        let data = pattern(5000);
        let f = serve("prefix", data.clone(), Some("\"e\""));
        let src = MemSource::open("mem://prefix", opts()).unwrap();
        assert_eq!(read(&src, 10, 50).unwrap(), data[10..60]);
        assert_eq!(f.log(), vec![0..100]);
        assert_eq!(src.stats().requests, 1);
    }

    #[test]
    fn large_reads_are_split_at_max_request() {
        let data = pattern(5000);
        let f = serve("split", data.clone(), Some("\"e\""));
        let src = MemSource::open("mem://split", opts()).unwrap();
        f.clear_log();
        assert_eq!(read(&src, 200, 2500).unwrap(), data[200..2700]);
        assert_eq!(f.log(), vec![200..1200, 1200..2200, 2200..2700]);
    }

    #[test]
    fn unavailable_is_retried_then_right_bytes() {
        let data = pattern(5000);
        let f = serve("retry", data.clone(), Some("\"e\""));
        f.fault(&[Fault::Unavailable]);
        let src = MemSource::open("mem://retry", opts()).unwrap();
        f.fault(&[Fault::Unavailable, Fault::Unavailable]);
        f.clear_log();
        assert_eq!(read(&src, 1000, 500).unwrap(), data[1000..1500]);
        assert_eq!(f.log(), vec![1000..1500; 3]);
        assert_eq!(src.stats().requests, 5);
    }

    #[test]
    fn persistent_unavailability_is_an_error_after_the_retries() {
        let f = serve("down", pattern(5000), Some("\"e\""));
        let src = MemSource::open("mem://down", opts()).unwrap();
        f.fault(&[Fault::Unavailable; 10]);
        f.clear_log();
        let e = read(&src, 1000, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert_eq!(f.log().len(), 4); // the first attempt and three retries
    }

    #[test]
    fn short_body_resumes_at_the_current_offset() {
        let data = pattern(5000);
        let f = serve("short", data.clone(), Some("\"e\""));
        let src = MemSource::open("mem://short", opts()).unwrap();
        f.fault(&[Fault::ShortBody(123), Fault::ShortBody(0)]);
        f.clear_log();
        assert_eq!(read(&src, 1000, 900).unwrap(), data[1000..1900]);
        assert_eq!(f.log(), vec![1000..1900, 1123..1900, 1123..1900]);
    }

    #[test]
    fn short_body_at_open_is_retried() {
        let data = pattern(5000);
        let f = serve("short-open", data.clone(), Some("\"e\""));
        f.fault(&[Fault::ShortBody(10)]);
        let src = MemSource::open("mem://short-open", opts()).unwrap();
        assert_eq!(read(&src, 0, 100).unwrap(), data[..100]);
        assert_eq!(f.log(), vec![0..100, 0..100]);
    }

    #[test]
    fn body_cut_every_time_is_an_error() {
        let f = serve("cut", pattern(5000), Some("\"e\""));
        let src = MemSource::open("mem://cut", opts()).unwrap();
        f.fault(&[Fault::ShortBody(0); 10]);
        let e = read(&src, 1000, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    #[test]
    fn wrong_content_range_is_an_error_never_wrong_bytes() {
        let f = serve("wrong", pattern(5000), Some("\"e\""));
        let src = MemSource::open("mem://wrong", opts()).unwrap();
        f.fault(&[Fault::WrongRange]);
        f.clear_log();
        let e = read(&src, 1000, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert_eq!(f.log().len(), 1, "a wrong answer is not retried");
        f.fault(&[Fault::WrongRange]);
        assert!(MemSource::open("mem://wrong", opts()).is_err());
    }

    #[test]
    fn server_ignoring_range_is_streamed_up_to_the_limit() {
        let data = pattern(5000);
        let f = serve("ignore", data.clone(), Some("\"e\""));
        f.fault(&[Fault::IgnoreRange]);
        let src = MemSource::open("mem://ignore", opts()).unwrap();
        assert_eq!(src.len(), 5000);
        f.fault(&[Fault::IgnoreRange]);
        assert_eq!(read(&src, 3000, 200).unwrap(), data[3000..3200]);
        let mut o = opts();
        o.max_ignored_range = 1000;
        let src = MemSource::open("mem://ignore", o).unwrap();
        f.fault(&[Fault::IgnoreRange]);
        let e = read(&src, 3000, 200).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn empty_file_opens_and_reads_past_the_end_fail() {
        serve("empty", Vec::new(), None);
        let src = MemSource::open("mem://empty", opts()).unwrap();
        assert_eq!(src.len(), 0);
        let e = read(&src, 0, 1).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_read_above_max_read_is_an_error() {
        serve("cap", pattern(5000), Some("\"e\""));
        let mut o = opts();
        o.max_read = 1000;
        let src = MemSource::open("mem://cap", o).unwrap();
        let e = read(&src, 1000, 1001).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn changed_file_is_an_error_never_mixed_bytes() {
        let f = serve("changed", pattern(5000), Some("\"v1\""));
        let src = MemSource::open("mem://changed", opts()).unwrap();
        f.set(vec![1u8; 5000], Some("\"v2\""));
        let e = read(&src, 1000, 10).unwrap_err();
        assert!(
            e.kind() == io::ErrorKind::InvalidData,
            "{e} ({:?})",
            e.kind()
        );
    }

    /// Options for the parallel tests: pieces of 1000 bytes, 4 in flight.
    fn parallel() -> RemoteOptions {
        RemoteOptions {
            jobs: 4,
            ..opts()
        }
    }

    fn counts(log: &[Range<u64>]) -> HashMap<u64, usize> {
        let mut m = HashMap::new();
        for r in log {
            *m.entry(r.start).or_insert(0) += 1;
        }
        m
    }

    #[test]
    fn pieces_in_flight_recover_each_on_its_own() {
        let data = pattern(40_000);
        let f = serve("parallel", data.clone(), Some("\"e\""));
        let src = MemSource::open("mem://parallel", parallel()).unwrap();
        f.clear_log();
        f.set_delay(Duration::from_millis(5));
        // One piece gets a 503, one a cut body, one the whole file.
        f.fault_at(5_500, Fault::Unavailable, 1);
        f.fault_at(9_000, Fault::ShortBody(100), 1);
        f.fault_at(15_000, Fault::IgnoreRange, 1);
        assert_eq!(read(&src, 3_000, 20_000).unwrap(), data[3_000..23_000]);
        assert!(f.peak_in_flight() >= 2, "peak {}", f.peak_in_flight());
        let log = f.log();
        let n = counts(&log);
        assert_eq!(n[&5_000], 2, "the 503 piece was asked twice: {log:?}");
        assert_eq!(n[&9_000], 1);
        assert_eq!(n[&9_100], 1, "the cut piece resumed where it stopped");
        assert_eq!(n[&15_000], 1, "streamed forward from the whole file");
        // Every other piece went out once.
        let others = n
            .iter()
            .filter(|(k, _)| ![5_000, 9_000, 9_100, 15_000].contains(*k))
            .collect::<Vec<_>>();
        assert_eq!(others.len(), 17, "{log:?}");
        assert!(others.iter().all(|(_, c)| **c == 1), "{log:?}");
    }

    #[test]
    fn a_wrong_range_on_one_piece_fails_the_read_never_wrong_bytes() {
        let f = serve("parallel-wrong", pattern(40_000), Some("\"e\""));
        let src = MemSource::open("mem://parallel-wrong", parallel()).unwrap();
        f.set_delay(Duration::from_millis(2));
        f.fault_at(12_345, Fault::WrongRange, 1);
        let e = read(&src, 3_000, 20_000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains("Content-Range"), "{e}");
        // Persistent unavailability of one piece: an error after its retries.
        f.fault_at(7_777, Fault::Unavailable, 100);
        let e = read(&src, 3_000, 20_000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    }

    #[test]
    fn streamed_ranges_arrive_in_order_close_ones_share_requests() {
        let data = pattern(600_000);
        let f = serve("stream", data.clone(), Some("\"e\""));
        let src = MemSource::open("mem://stream", parallel()).unwrap();
        f.clear_log();
        f.set_delay(Duration::from_millis(2));
        // One inside the head, two small neighbours (one span), one larger
        // than a piece farther than COALESCE_GAP (a span of its own).
        const { assert!(500_000 - 10_950 > super::super::COALESCE_GAP) };
        let ranges = [(50, 30), (10_000, 600), (10_650, 300), (500_000, 4_321)];
        let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
        src.stream_ranges(&ranges, &mut |at, b| {
            match got.last_mut() {
                Some((s, v)) if *s + v.len() as u64 == at => v.extend_from_slice(b),
                _ => got.push((at, b.to_vec())),
            }
            Ok(())
        })
        .unwrap();
        let want: Vec<(u64, Vec<u8>)> = ranges
            .iter()
            .map(|&(a, n)| (a, data[a as usize..(a + n) as usize].to_vec()))
            .collect();
        assert_eq!(got, want);
        // The head range cost nothing; the two neighbours one request of
        // 950 bytes, the last 5 pieces of at most 1000.
        let mut log = f.log();
        log.sort_by_key(|r| r.start);
        assert_eq!(log[0], 10_000..10_950, "{log:?}");
        assert_eq!(log.len(), 1 + 5, "{log:?}");
        assert!(log.iter().all(|r| r.start >= 10_000));
        assert!(f.peak_in_flight() >= 2);
        // Out of order or overlapping ranges are refused.
        let e = src
            .stream_ranges(&[(10_000, 10), (9_000, 10)], &mut |_, _| Ok(()))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        // A consumer's error stops the stream and comes back as is.
        let e = src
            .stream_ranges(&[(10_000, 50_000)], &mut |_, _| {
                Err(io::Error::other("consumer stopped"))
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "consumer stopped");
    }

    #[test]
    fn streamed_pieces_fill_the_cache_and_invalidate_drops_what_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(30_000);
        let f = serve("stream-cache", data.clone(), Some("\"e\""));
        let mut o = parallel();
        o.cache = Some(RangeCache::new(dir.path(), 1 << 20).unwrap());
        let src = MemSource::open("mem://stream-cache", o.clone()).unwrap();
        let all = |src: &MemSource| {
            let mut v = Vec::new();
            src.stream_ranges(&[(1_000, 20_000)], &mut |_, b| {
                v.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
            v
        };
        assert_eq!(all(&src), data[1_000..21_000]);
        // A corrupted piece on the way: the stream hands it over (checking
        // is the reader's job), the reader drops what overlaps it.
        let src = MemSource::open("mem://stream-cache", o.clone()).unwrap();
        f.clear_log();
        assert_eq!(all(&src), data[1_000..21_000]);
        assert!(f.log().is_empty(), "served from the cache: {:?}", f.log());
        assert!(src.invalidate(12_500, 10));
        assert_eq!(all(&src), data[1_000..21_000]);
        assert_eq!(f.log(), vec![12_000..13_000], "only the piece holding it");
        // A read cut differently finds the pieces a stream cached only when
        // it is cut the same way; invalidating a range drops the cached
        // pieces of any cut that overlap it.
        f.clear_log();
        f.fault_at(5_000, Fault::Corrupt(5_000), 1);
        assert!(src.invalidate(4_000, 3_000));
        let got = all(&src);
        assert_ne!(got, data[1_000..21_000], "the corrupted piece came through");
        assert!(src.invalidate(5_000, 1));
        assert_eq!(all(&src), data[1_000..21_000], "and was dropped, not kept");
    }

    #[test]
    fn warm_cache_makes_no_requests_and_invalidate_refetches() {
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(5000);
        let f = serve("cache", data.clone(), Some("\"e\""));
        let mut o = opts();
        o.cache = Some(RangeCache::new(dir.path(), 1 << 20).unwrap());
        let src = MemSource::open("mem://cache", o.clone()).unwrap();
        assert_eq!(read(&src, 1000, 500).unwrap(), data[1000..1500]);
        let src = MemSource::open("mem://cache", o.clone()).unwrap();
        f.clear_log();
        assert_eq!(read(&src, 1000, 500).unwrap(), data[1000..1500]);
        assert!(f.log().is_empty(), "{:?}", f.log());
        assert_eq!(src.stats().requests, 1);
        assert!(src.invalidate(1000, 500));
        assert_eq!(read(&src, 1000, 500).unwrap(), data[1000..1500]);
        assert_eq!(f.log(), vec![1000..1500]);
        // Without a validator nothing tells a changed file from the old one:
        // such a file is not cached.
        let g = serve("cache-noetag", data.clone(), None);
        let src = MemSource::open("mem://cache-noetag", o).unwrap();
        read(&src, 1000, 500).unwrap();
        g.clear_log();
        read(&src, 1000, 500).unwrap();
        assert_eq!(g.log(), vec![1000..1500]);
        assert!(!src.invalidate(1000, 500));
    }
}
