//! The download pass of [`super::pull`]: every piece of every file on one
//! pool of `jobs` worker threads.
//!
//! A file's units still to fetch are grouped into **pieces** of at most
//! [`super::PULL_PIECE`] bytes, cut at unit boundaries (a unit larger than
//! a piece spans several). The pieces of all files form one queue. A
//! worker takes a **run** of up to [`RUN_PIECES`] consecutive pieces (fewer
//! as the queue drains, so that the last ones are shared out), asks for the
//! run's bytes with one range request ([`aero_io::ByteSource::reader_at`]:
//! a request's latency is paid once per run, not once per piece; retries,
//! resumption where a body was cut, `Content-Range` checks), and for each
//! piece as its bytes arrive:
//!
//! 1. takes a buffer (at most `jobs` pieces wait in memory besides the ones
//!    being read: memory stays bounded however far a slow piece lets the
//!    others run ahead),
//! 2. reads the piece into it,
//! 3. writes it to the partial file with `pwrite`, straight from that
//!    buffer,
//! 4. checks the BLAKE3 of every unit that lies wholly inside the piece and
//!    records the good ones in the file's sidecar at once (a kill loses only
//!    the pieces in flight),
//! 5. hands the buffer to the file's **sequencer**, which feeds the bytes to
//!    the file's SHA-256 in file order — and the BLAKE3 of units larger than
//!    a piece — whichever worker completes the gap at the sequencer's
//!    cursor runs it; ranges kept from disk, and pieces that found the
//!    memory for waiting pieces full, are read back for it.
//!
//! When a file's sequencer reaches its end with no unit failed, that worker
//! checks the SHA-256 against the manifest, syncs the file and renames it
//! into place, while the other workers go on with the next files. A unit
//! that failed its hash is fetched again in a later round (the SHA-256 is
//! then computed from disk); every byte is still checked by both hashes
//! before the rename.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use aero_io::ByteSource;
use sha2::{Digest, Sha256};

use super::{
    Check, Job, PULL_PIECE, PullEvent, PulledFile, REFETCH_ROUNDS, Sidecar, Tally, Work, add_range,
    keeps, partial_paths, save_sidecar, sha_hex,
};
use crate::error::{Result, SetError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Most pieces one request asks for: a run's latency is paid once for
/// this many pieces. A kill still loses only the pieces being read (each
/// is written and recorded as soon as its bytes are in).
pub(super) const RUN_PIECES: usize = 8;

/// Piece buffers: at most `limit` out at once, reused; of those, at most
/// `hold_limit` wait for a sequencer (beyond that, a piece's bytes stay on
/// disk and are read back when the sequencer comes to them).
struct Pool {
    state: Mutex<PoolState>,
    cv: Condvar,
    limit: usize,
    hold_limit: usize,
}

struct PoolState {
    free: Vec<Vec<u8>>,
    out: usize,
    held: usize,
}

impl Pool {
    /// Buffers for `workers` readers and `hold` waiting pieces: a worker
    /// holds one buffer while it reads, so with waiting pieces capped at
    /// `hold` a buffer is always there for the piece at a cursor.
    fn new(workers: usize, hold: usize) -> Pool {
        Pool {
            state: Mutex::new(PoolState {
                free: Vec::new(),
                out: 0,
                held: 0,
            }),
            cv: Condvar::new(),
            limit: workers + hold + 1,
            hold_limit: hold,
        }
    }

    /// Whether a piece may wait in memory (`cursor`: it is the one the
    /// sequencer waits for, which always may).
    fn hold(&self, cursor: bool) -> bool {
        let mut st = lock(&self.state);
        let ok = cursor || st.held < self.hold_limit;
        if ok {
            st.held += 1;
        }
        ok
    }

    /// A held buffer back, its bytes consumed.
    fn release(&self, buf: Vec<u8>) {
        {
            let mut st = lock(&self.state);
            st.held = st.held.saturating_sub(1);
        }
        self.give(buf);
    }

    /// A buffer of at least [`PULL_PIECE`] bytes, or `None` once `stop`.
    fn take(&self, stop: &AtomicBool) -> Option<Vec<u8>> {
        let mut st = lock(&self.state);
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            if st.out < self.limit {
                st.out += 1;
                return Some(
                    st.free
                        .pop()
                        .unwrap_or_else(|| vec![0u8; PULL_PIECE as usize]),
                );
            }
            st = self
                .cv
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn give(&self, buf: Vec<u8>) {
        let mut st = lock(&self.state);
        st.out -= 1;
        st.free.push(buf);
        drop(st);
        self.cv.notify_one();
    }
}

/// Bytes `start..end` of file `file`, holding the units `whole` (indexes
/// into its units) entirely: what is written and checked at once.
struct Piece {
    file: usize,
    start: u64,
    end: u64,
    whole: std::ops::Range<usize>,
}

/// A file being fetched.
pub(super) struct FileRun<'a> {
    pub(super) job: &'a Job,
    pub(super) work: &'a Work,
    pub(super) reused: u64,
    file: File,
    part: PathBuf,
    side: PathBuf,
    st: Mutex<RunState>,
}

struct RunState {
    sidecar: Sidecar,
    /// The pieces of this round, in order (the sequencer's plan).
    pieces: Vec<(u64, u64)>,
    /// Units larger than a piece in this round: hashed by the sequencer.
    big: Vec<usize>,
    /// Sequencer: next byte, next piece, next big unit and its hasher.
    pos: u64,
    next_piece: usize,
    next_big: usize,
    big_hasher: blake3::Hasher,
    /// SHA-256 of bytes `0..pos`; `None` once it cannot be trusted (a unit
    /// failed) or is not wanted: then computed from disk at the end.
    sha: Option<Sha256>,
    sequencing: bool,
    /// The sequencer reached the end and is finishing the file.
    finishing: bool,
    /// Pieces written and checked, waiting for the sequencer: their
    /// bytes, or `None` when they were left on disk (read back then).
    pending: BTreeMap<u64, Option<Vec<u8>>>,
    failed: Vec<usize>,
    /// Frames kept from an earlier run (checked by the SHA-256 only).
    frames_kept: bool,
    /// The SHA-256 differed with frames kept: fetch them again.
    frames_again: bool,
    fetched: u64,
    refetched: u64,
    done: Option<PulledFile>,
}

impl<'a> FileRun<'a> {
    /// Opens the partial copy of a planned file and keeps the verified
    /// units its sidecar lists.
    pub(super) fn open(job: &'a Job, work: &'a Work, stage: &Path) -> Result<FileRun<'a>> {
        let (part, side) = partial_paths(stage, &job.rel);
        if let Some(p) = part.parent() {
            std::fs::create_dir_all(p).map_err(|e| SetError::io(p, e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .map_err(|e| SetError::io(&part, e))?;
        file.set_len(job.size).map_err(|e| SetError::io(&part, e))?;
        let mut sidecar = Sidecar {
            size: job.size,
            sha256: sha_hex(job),
            fingerprint: work.fingerprint.clone(),
            verified: Vec::new(),
            written: Vec::new(),
        };
        // Keep whole units only: Blake3 units verified, and frames written
        // when the file's SHA-256 will check them.
        for u in &work.units {
            if keeps(job, u, &work.verified, &work.written) {
                match u.check {
                    Check::Blake3(_) => add_range(&mut sidecar.verified, u.start, u.end),
                    Check::Frame => add_range(&mut sidecar.written, u.start, u.end),
                }
            }
        }
        let reused = sidecar.verified.iter().map(|r| r.1 - r.0).sum::<u64>()
            + sidecar.written.iter().map(|r| r.1 - r.0).sum::<u64>();
        let frames_kept = !sidecar.written.is_empty();
        Ok(FileRun {
            job,
            work,
            reused,
            file,
            part,
            side,
            st: Mutex::new(RunState {
                sidecar,
                pieces: Vec::new(),
                big: Vec::new(),
                pos: 0,
                next_piece: 0,
                next_big: 0,
                big_hasher: blake3::Hasher::new(),
                sha: None,
                sequencing: false,
                finishing: false,
                pending: BTreeMap::new(),
                failed: Vec::new(),
                frames_kept,
                frames_again: false,
                fetched: 0,
                refetched: 0,
                done: None,
            }),
        })
    }

    /// The units not kept from disk.
    fn todo(&self) -> Vec<usize> {
        let st = lock(&self.st);
        (0..self.work.units.len())
            .filter(|&i| {
                let u = &self.work.units[i];
                !keeps(self.job, u, &st.sidecar.verified, &st.sidecar.written)
            })
            .collect()
    }

    /// The frame units, all of them fetched again: after a SHA-256
    /// mismatch of a file whose frames were kept from an earlier run.
    fn frames_again(&self) -> Result<Vec<usize>> {
        let mut st = lock(&self.st);
        st.sidecar.written.clear();
        st.frames_kept = false;
        save_sidecar(&self.side, &st.sidecar).map_err(|e| SetError::io(&self.side, e))?;
        Ok((0..self.work.units.len())
            .filter(|&i| matches!(self.work.units[i].check, Check::Frame))
            .collect())
    }

    fn io_err(&self, e: io::Error) -> SetError {
        SetError::Io {
            path: PathBuf::from(&self.job.url),
            source: io::Error::new(
                e.kind(),
                format!("{e} (while writing {}.partial)", self.job.rel),
            ),
        }
    }

    /// The whole file's SHA-256 against the manifest, then sync and rename
    /// into place. `Ok(false)`: the SHA-256 differs but frames were kept
    /// from an earlier run, which may be what is wrong: fetch them again.
    fn finish(&self, sha: Option<Sha256>, stage: &Path) -> Result<bool> {
        if let Some(want) = &self.job.sha256 {
            let got = match sha {
                Some(h) => <[u8; 32]>::from(h.finalize()),
                None => {
                    let mut h = Sha256::new();
                    hash_from_disk(&self.file, &self.part, 0, self.job.size, &mut h)?;
                    <[u8; 32]>::from(h.finalize())
                }
            };
            if got != *want && lock(&self.st).frames_kept {
                return Ok(false);
            }
            if got != *want {
                // Only the frame bytes (no hash of their own) can be wrong:
                // start this file afresh next time.
                let _ = std::fs::remove_file(&self.side);
                let _ = std::fs::remove_file(&self.part);
                return Err(SetError::File {
                    path: PathBuf::from(&self.job.url),
                    reason: format!(
                        "SHA-256 of the downloaded bytes is {} but the manifest says {}",
                        hex::encode(got),
                        hex::encode(want)
                    ),
                });
            }
        }
        self.file
            .sync_all()
            .map_err(|e| SetError::io(&self.part, e))?;
        let staged = stage.join(&self.job.rel);
        std::fs::rename(&self.part, &staged).map_err(|e| SetError::io(&staged, e))?;
        let _ = std::fs::remove_file(&self.side);
        let mut st = lock(&self.st);
        st.done = Some(PulledFile {
            path: self.job.rel.clone(),
            size_bytes: self.job.size,
            fetched: st.fetched,
            reused: self.reused,
            refetched_units: st.refetched,
            state: if self.reused > 0 {
                "resumed"
            } else {
                "fetched"
            },
        });
        Ok(true)
    }
}

/// Fetches everything `runs` lack, in rounds (a unit that failed its hash
/// is fetched again, at most [`REFETCH_ROUNDS`] times), and finishes each
/// file. Returns them in order.
pub(super) fn fetch_all(
    runs: &[FileRun<'_>],
    stage: &Path,
    jobs: usize,
    tally: &Tally<'_>,
) -> Result<Vec<PulledFile>> {
    let mut todo: Vec<Vec<usize>> = runs.iter().map(FileRun::todo).collect();
    for round in 0..=REFETCH_ROUNDS {
        let pieces = plan_round(runs, &todo, round == 0);
        if !pieces.is_empty() {
            run_round(runs, &pieces, stage, jobs, tally)?;
        }
        for (r, t) in runs.iter().zip(todo.iter_mut()) {
            let mut st = lock(&r.st);
            *t = std::mem::take(&mut st.failed);
            st.refetched += t.len() as u64;
        }
        if todo.iter().all(Vec::is_empty) {
            break;
        }
    }
    for (r, t) in runs.iter().zip(&todo) {
        if let Some(&i) = t.first() {
            let u = &r.work.units[i];
            return Err(SetError::File {
                path: PathBuf::from(&r.job.url),
                reason: format!(
                    "bytes {}..{} failed their BLAKE3 check on {} fetches; nothing was kept",
                    u.start,
                    u.end,
                    REFETCH_ROUNDS + 1
                ),
            });
        }
    }
    // Files not finished by their sequencer (refetched units, or nothing
    // left to fetch): the SHA-256 from disk. A file whose SHA-256 differs
    // with frames kept from an earlier run gets them fetched again, once.
    for again in [false, true] {
        if again {
            let todo: Vec<Vec<usize>> = runs
                .iter()
                .map(|r| {
                    if std::mem::take(&mut lock(&r.st).frames_again) {
                        r.frames_again()
                    } else {
                        Ok(Vec::new())
                    }
                })
                .collect::<Result<_>>()?;
            let pieces = plan_round(runs, &todo, false);
            if pieces.is_empty() {
                break;
            }
            run_round(runs, &pieces, stage, jobs, tally)?;
        }
        for r in runs {
            let failed = lock(&r.st).failed.first().copied();
            if let Some(i) = failed {
                // Only frames were fetched: nothing here has a hash to fail.
                let u = &r.work.units[i];
                return Err(SetError::Invalid(format!(
                    "pull: unit {}..{} of {} failed in a frame round",
                    u.start, u.end, r.job.rel
                )));
            }
        }
        super::concurrently(runs, 2, |r| {
            let skip = {
                let st = lock(&r.st);
                st.done.is_some() || st.frames_again
            };
            if skip {
                return Ok(());
            }
            if !r.finish(None, stage)? {
                lock(&r.st).frames_again = true;
            }
            Ok(())
        })
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    }
    Ok(runs
        .iter()
        .filter_map(|r| lock(&r.st).done.take())
        .collect())
}

/// Cuts each file's units `todo` into pieces and resets the sequencers.
/// In the first round the sequencer computes the SHA-256 as it goes.
fn plan_round(runs: &[FileRun<'_>], todo: &[Vec<usize>], first: bool) -> Vec<Piece> {
    let mut out = Vec::new();
    for (f, (r, t)) in runs.iter().zip(todo).enumerate() {
        let units = &r.work.units;
        let mut pieces: Vec<Piece> = Vec::new();
        let mut big = Vec::new();
        for &i in t {
            let u = &units[i];
            let len = u.end - u.start;
            if len > PULL_PIECE {
                if matches!(u.check, Check::Blake3(_)) {
                    big.push(i);
                }
                let mut a = u.start;
                while a < u.end {
                    let b = (a + PULL_PIECE).min(u.end);
                    pieces.push(Piece {
                        file: f,
                        start: a,
                        end: b,
                        whole: i..i,
                    });
                    a = b;
                }
                continue;
            }
            match pieces.last_mut() {
                Some(p)
                    if p.end == u.start && p.whole.end == i && u.end - p.start <= PULL_PIECE =>
                {
                    p.end = u.end;
                    p.whole.end = i + 1;
                }
                _ => pieces.push(Piece {
                    file: f,
                    start: u.start,
                    end: u.end,
                    whole: i..i + 1,
                }),
            }
        }
        let mut st = lock(&r.st);
        st.pieces = pieces.iter().map(|p| (p.start, p.end)).collect();
        st.big = big;
        st.pos = 0;
        st.next_piece = 0;
        st.next_big = 0;
        st.big_hasher = blake3::Hasher::new();
        st.sha = (first && r.job.sha256.is_some()).then(Sha256::new);
        st.pending.clear();
        st.finishing = false;
        drop(st);
        out.extend(pieces);
    }
    out
}

/// One round: the pieces on `jobs` workers.
fn run_round(
    runs: &[FileRun<'_>],
    pieces: &[Piece],
    stage: &Path,
    jobs: usize,
    tally: &Tally<'_>,
) -> Result<()> {
    let workers = jobs.clamp(1, pieces.len());
    let pool = Pool::new(workers, workers);
    let next = Mutex::new(0usize);
    let stop = AtomicBool::new(false);
    let error: Mutex<Option<SetError>> = Mutex::new(None);
    let fail = |e: SetError| {
        stop.store(true, Ordering::Relaxed);
        let mut slot = lock(&error);
        if slot.is_none() {
            *slot = Some(e);
        }
    };
    // The next run: up to RUN_PIECES pieces, fewer once fewer than that
    // are left per worker, so that the end of the queue is shared out.
    let take_run = || {
        let mut n = lock(&next);
        let left = pieces.len() - *n;
        let k = (left / workers).clamp(1, RUN_PIECES).min(left);
        let run = &pieces[*n..*n + k];
        *n += k;
        run
    };
    let worker = || {
        loop {
            let run = take_run();
            if run.is_empty() || stop.load(Ordering::Relaxed) {
                return;
            }
            // One request per stretch of consecutive pieces of one file.
            for stretch in run.chunk_by(|a, b| a.file == b.file && a.end == b.start) {
                let (first, last) = (&stretch[0], &stretch[stretch.len() - 1]);
                let r = &runs[first.file];
                let mut rd = match r.work.source.reader_at(first.start, last.end) {
                    Ok(rd) => rd,
                    Err(e) => return fail(r.io_err(e)),
                };
                for p in stretch {
                    let Some(mut buf) = pool.take(&stop) else {
                        return;
                    };
                    if let Err(e) = piece(r, p, &mut buf, &mut rd, tally) {
                        pool.give(buf);
                        return fail(e);
                    }
                    {
                        // Held for the sequencer while memory allows: beyond
                        // that (a slow piece holds the cursor back) the bytes
                        // stay on disk and are read back when their turn comes.
                        let mut st = lock(&r.st);
                        if pool.hold(st.pos == p.start) {
                            st.pending.insert(p.start, Some(buf));
                        } else {
                            st.pending.insert(p.start, None);
                            drop(st);
                            pool.give(buf);
                        }
                    }
                    if let Err(e) = sequence(r, &pool, stage) {
                        return fail(e);
                    }
                }
            }
        }
    };
    std::thread::scope(|s| {
        for k in 0..workers {
            let spawned = std::thread::Builder::new()
                .name(format!("aero-pull-{k}"))
                .spawn_scoped(s, worker);
            if spawned.is_err() && k == 0 {
                fail(SetError::Invalid(
                    "pull: cannot start a worker thread".into(),
                ));
            }
        }
    });
    match error.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Reads one piece from `rd` (the request of its run, at the piece's
/// first byte), writes and checks it.
fn piece(
    r: &FileRun<'_>,
    p: &Piece,
    buf: &mut Vec<u8>,
    rd: &mut dyn Read,
    tally: &Tally<'_>,
) -> Result<()> {
    let n = (p.end - p.start) as usize;
    if buf.len() < n {
        buf.resize(n, 0);
    }
    let bytes = &mut buf[..n];
    rd.read_exact(bytes).map_err(|e| r.io_err(e))?;
    aero_io::write_all_at(&r.file, p.start, bytes).map_err(|e| r.io_err(e))?;
    // Written back as the pull goes, so that the sync before the file's
    // rename has little left to wait for.
    aero_io::start_writeback(&r.file, p.start, n as u64);
    let mut good = Vec::new();
    let mut frames = Vec::new();
    let mut bad = Vec::new();
    let mut ok_bytes = 0u64;
    for i in p.whole.clone() {
        let u = &r.work.units[i];
        let (a, b) = ((u.start - p.start) as usize, (u.end - p.start) as usize);
        match &u.check {
            Check::Blake3(d) if blake3::hash(&bytes[a..b]).as_bytes() != d => bad.push(i),
            Check::Blake3(_) => {
                good.push(i);
                ok_bytes += u.end - u.start;
            }
            Check::Frame => {
                frames.push(i);
                ok_bytes += (b - a) as u64;
            }
        }
    }
    if p.whole.is_empty() {
        // Part of a unit larger than a piece: checked by the sequencer.
        ok_bytes = n as u64;
    }
    {
        let mut st = lock(&r.st);
        st.fetched += n as u64;
        for &i in &good {
            let u = &r.work.units[i];
            add_range(&mut st.sidecar.verified, u.start, u.end);
        }
        if r.job.sha256.is_some() {
            for &i in &frames {
                let u = &r.work.units[i];
                add_range(&mut st.sidecar.written, u.start, u.end);
            }
        } else {
            frames.clear();
        }
        // (A failed unit also voids the sequencer's SHA-256.)
        st.failed.extend(bad);
        if !good.is_empty() || !frames.is_empty() {
            save_sidecar(&r.side, &st.sidecar).map_err(|e| SetError::io(&r.side, e))?;
        }
    }
    if ok_bytes > 0 {
        tally.fetched.fetch_add(ok_bytes, Ordering::Relaxed);
        (tally.opts.progress)(PullEvent::Fetched(ok_bytes));
    }
    Ok(())
}

/// What the sequencer does with bytes `pos..pos + bytes.len()`.
#[allow(clippy::too_many_arguments)]
fn feed(
    r: &FileRun<'_>,
    pos: u64,
    bytes: &[u8],
    sha: &mut Option<Sha256>,
    big: &[usize],
    next_big: &mut usize,
    hasher: &mut blake3::Hasher,
    verified: &mut Vec<usize>,
    failed: &mut Vec<usize>,
) {
    if let Some(h) = sha.as_mut() {
        h.update(bytes);
    }
    let end = pos + bytes.len() as u64;
    while let Some(&i) = big.get(*next_big) {
        let u = &r.work.units[i];
        if u.start >= end {
            break;
        }
        let (a, b) = (u.start.max(pos), u.end.min(end));
        if a < b {
            hasher.update(&bytes[(a - pos) as usize..(b - pos) as usize]);
        }
        if b < u.end {
            break;
        }
        let ok = match &u.check {
            Check::Blake3(d) => hasher.finalize().as_bytes() == d,
            Check::Frame => true,
        };
        hasher.reset();
        if ok {
            verified.push(i);
        } else {
            failed.push(i);
        }
        *next_big += 1;
    }
}

/// Runs the file's sequencer as far as the bytes that have arrived allow,
/// unless another worker is running it; finishes the file at its end.
fn sequence(r: &FileRun<'_>, pool: &Pool, stage: &Path) -> Result<()> {
    let size = r.job.size;
    let mut st = lock(&r.st);
    if st.sequencing {
        return Ok(());
    }
    st.sequencing = true;
    let mut sha = st.sha.take();
    let mut hasher = std::mem::take(&mut st.big_hasher);
    let big = std::mem::take(&mut st.big);
    let mut next_big = st.next_big;
    let mut scratch: Vec<u8> = Vec::new();
    let mut result = Ok(());
    loop {
        let next_start = st.pieces.get(st.next_piece).map_or(size, |p| p.0);
        let pos = st.pos;
        let mut verified = Vec::new();
        let mut failed = Vec::new();
        if pos < next_start {
            // Kept from disk: read back for the SHA-256.
            if sha.is_some() {
                let n = (next_start - pos).min(PULL_PIECE) as usize;
                scratch.resize(n, 0);
                drop(st);
                let read = aero_io::read_exact_at(&r.file, pos, &mut scratch);
                if let Err(e) = read {
                    st = lock(&r.st);
                    result = Err(SetError::io(&r.part, e));
                    break;
                }
                if let Some(h) = sha.as_mut() {
                    h.update(&scratch);
                }
                st = lock(&r.st);
                st.pos = pos + n as u64;
            } else {
                st.pos = next_start;
            }
            continue;
        }
        if st.next_piece == st.pieces.len() {
            break;
        }
        let Some(held) = st.pending.remove(&pos) else {
            break;
        };
        let (a, b) = st.pieces[st.next_piece];
        st.next_piece += 1;
        if !st.failed.is_empty() {
            // A unit failed: the SHA-256 is computed from disk later.
            sha = None;
        }
        drop(st);
        let n = (b - a) as usize;
        let buf = match held {
            Some(buf) => Some(buf),
            None if sha.is_some() || next_big < big.len() => {
                scratch.resize(n, 0);
                if let Err(e) = aero_io::read_exact_at(&r.file, a, &mut scratch) {
                    st = lock(&r.st);
                    result = Err(SetError::io(&r.part, e));
                    break;
                }
                None
            }
            None => {
                // Nothing to feed: no SHA-256 to compute, no large unit.
                st = lock(&r.st);
                st.pos = b;
                continue;
            }
        };
        let bytes = match &buf {
            Some(v) => &v[..n],
            None => &scratch[..n],
        };
        feed(
            r,
            pos,
            bytes,
            &mut sha,
            &big,
            &mut next_big,
            &mut hasher,
            &mut verified,
            &mut failed,
        );
        if let Some(buf) = buf {
            pool.release(buf);
        }
        st = lock(&r.st);
        st.pos = b;
        for &i in &verified {
            let u = &r.work.units[i];
            add_range(&mut st.sidecar.verified, u.start, u.end);
        }
        if !verified.is_empty()
            && let Err(e) = save_sidecar(&r.side, &st.sidecar)
        {
            result = Err(SetError::io(&r.side, e));
            break;
        }
        if !failed.is_empty() {
            sha = None;
            st.failed.extend(failed);
        }
    }
    let at_end = st.pos == size && st.next_piece == st.pieces.len();
    let finish = at_end && st.failed.is_empty() && result.is_ok() && !st.finishing;
    st.finishing |= finish;
    if !finish {
        st.sha = sha.take();
    }
    st.big_hasher = hasher;
    st.big = big;
    st.next_big = next_big;
    st.sequencing = false;
    drop(st);
    result?;
    if finish && !r.finish(sha, stage)? {
        // Every unit of this round checked, every byte hashed in order,
        // but the SHA-256 differs with frames kept from an earlier run.
        lock(&r.st).frames_again = true;
    }
    Ok(())
}

pub(super) fn hash_from_disk(
    file: &File,
    path: &Path,
    a: u64,
    b: u64,
    h: &mut Sha256,
) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = a;
    while pos < b {
        let k = ((b - pos) as usize).min(buf.len());
        aero_io::read_exact_at(file, pos, &mut buf[..k]).map_err(|e| SetError::io(path, e))?;
        h.update(&buf[..k]);
        pos += k as u64;
    }
    Ok(())
}
