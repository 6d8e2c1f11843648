//! The parallel range engine: pieces of one or more byte ranges fetched on
//! several connections at once, delivered in order with bounded memory.
//!
//! Every remote read goes through [`run`]: a read into a caller's buffer
//! (its pieces land in disjoint parts of that buffer), a streamed list of
//! ranges ([`super::RemoteSource::stream_ranges`]: `validate --full`, verified
//! copies, whole-file loads, a future `pull`). Two limits bound it, both
//! shared by every source opened with clones of one
//! [`super::RemoteOptions`] (so a whole set's parts share them):
//!
//! - **requests in flight** ([`Budget::jobs`], `--jobs`,
//!   `AEROTENSOR_REMOTE_JOBS`): a worker holds a permit from just before its
//!   request to the end of the body;
//! - **pieces held** (as many): a streamed piece holds a slot from the
//!   moment a worker claims it until the consumer has taken its bytes, so
//!   memory stays below `jobs` pieces (plus one per stream: the piece a
//!   stream is waiting for never needs a slot, which keeps nested and
//!   concurrent streams from waiting on each other forever).
//!
//! Pieces are claimed in order and delivered in order on the calling thread;
//! each is fetched (with its own retries, resumption and checks) by a
//! worker thread of this call, so a failing or slow piece delays only the
//! consumer, never another piece's request. The first error in delivery
//! order stops the call: no new piece is claimed, workers drop what they
//! hold, and the error is returned once the workers have returned.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

/// Requests in flight when nothing else is said.
pub const DEFAULT_JOBS: usize = 16;

/// The environment variable that sets [`super::RemoteOptions::jobs`] for
/// every front end (CLI, C ABI, Python).
pub const JOBS_ENV: &str = "AEROTENSOR_REMOTE_JOBS";

/// Largest accepted `jobs`.
pub const MAX_JOBS: usize = 256;

/// `jobs` from [`JOBS_ENV`]: `Ok(None)` when unset or empty, an error naming
/// the variable when it is not a number from 1 to [`MAX_JOBS`].
pub fn jobs_from_env() -> io::Result<Option<usize>> {
    match std::env::var(JOBS_ENV) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => parse_jobs(&v).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{JOBS_ENV}={v:?}: {e}"),
            )
        }),
        Err(_) => Ok(None),
    }
}

/// Parses a `jobs` value (1 to [`MAX_JOBS`]).
pub fn parse_jobs(v: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_JOBS).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of requests from 1 to {MAX_JOBS}"
        )),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A counting semaphore.
#[derive(Debug)]
struct Semaphore {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Semaphore {
    fn new(n: usize) -> Semaphore {
        Semaphore {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }

    /// Takes a permit, or returns `false` once `stop` is set.
    fn acquire(&self, stop: &AtomicBool) -> bool {
        let mut free = lock(&self.free);
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            if *free > 0 {
                *free -= 1;
                return true;
            }
            free = self
                .cv
                .wait_timeout(free, std::time::Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Takes a permit if one is free.
    fn try_acquire(&self) -> bool {
        let mut free = lock(&self.free);
        if *free > 0 {
            *free -= 1;
            true
        } else {
            false
        }
    }

    fn release(&self) {
        *lock(&self.free) += 1;
        self.cv.notify_all();
    }

    /// Gives a permit back to a semaphore whose only waiters are
    /// [`Semaphore::acquire`]rs: one of them can take it, so one is woken
    /// (not every request thread of every stream).
    fn release_to_one(&self) {
        *lock(&self.free) += 1;
        self.cv.notify_one();
    }

    /// Waits until a permit may be free or `changed` says something else
    /// the waiter watches has moved (then [`Semaphore::wake`] was called),
    /// or a while has passed.
    fn wait(&self, changed: &dyn Fn() -> bool) {
        let free = lock(&self.free);
        if *free > 0 || changed() {
            return;
        }
        let _ = self
            .cv
            .wait_timeout(free, std::time::Duration::from_millis(50));
    }

    /// Wakes every [`Semaphore::wait`]er to look again.
    fn wake(&self) {
        let _g = lock(&self.free);
        self.cv.notify_all();
    }
}

#[derive(Debug)]
struct Limits {
    jobs: usize,
    requests: Semaphore,
    slots: Semaphore,
    /// Piece buffers handed back by consumers, for the next pieces.
    spare: Mutex<Vec<Vec<u8>>>,
}

/// The shared limits of remote reads: requests in flight and pieces held.
/// Cheap to clone; clones share the limits. A fresh `Budget` takes its size
/// from the first source that uses it ([`super::RemoteOptions::jobs`]).
#[derive(Clone, Debug, Default)]
pub struct Budget {
    limits: Arc<OnceLock<Limits>>,
}

impl Budget {
    /// A budget not shared with any other.
    pub fn new() -> Budget {
        Budget::default()
    }

    fn limits(&self, jobs: usize) -> &Limits {
        self.limits.get_or_init(|| {
            let jobs = jobs.clamp(1, MAX_JOBS);
            Limits {
                jobs,
                requests: Semaphore::new(jobs),
                slots: Semaphore::new(jobs),
                spare: Mutex::new(Vec::new()),
            }
        })
    }

    /// A buffer of `n` bytes for a piece (its content is overwritten),
    /// reusing one handed back if any. A new one is zeroed lazily by the
    /// allocator, so its pages are only touched as bytes arrive.
    pub(crate) fn buffer(&self, jobs: usize, n: usize) -> Vec<u8> {
        match lock(&self.limits(jobs).spare).pop() {
            Some(mut v) => {
                if v.len() >= n {
                    v.truncate(n);
                } else {
                    v.resize(n, 0);
                }
                v
            }
            None => vec![0u8; n],
        }
    }

    /// Hands a piece's buffer back for reuse (at most as many are kept as
    /// pieces may be held).
    pub(crate) fn recycle(&self, jobs: usize, buf: Vec<u8>) {
        let l = self.limits(jobs);
        let mut spare = lock(&l.spare);
        if spare.len() < l.jobs {
            spare.push(buf);
        }
    }

    /// The number of requests in flight this budget allows (`None` before
    /// its first use).
    pub fn jobs(&self) -> Option<usize> {
        self.limits.get().map(|l| l.jobs)
    }
}

/// What a fetch sees: whether the call is stopping (a fetch checks it
/// between body reads and gives up early).
pub(crate) struct Ctx<'a> {
    stop: &'a AtomicBool,
}

impl Ctx<'_> {
    /// Whether the call is stopping.
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A permit to send one request, released on drop.
pub(crate) struct Permit<'a>(&'a Semaphore);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // Only request permits are held as `Permit`s.
        self.0.release_to_one();
    }
}

/// Waits for a request permit (a single read outside [`run`]).
pub(crate) fn request_permit(budget: &Budget, jobs: usize) -> Permit<'_> {
    let l = budget.limits(jobs);
    let never = AtomicBool::new(false);
    l.requests.acquire(&never);
    Permit(&l.requests)
}

struct Shared<R> {
    /// Next piece to claim.
    next: usize,
    /// Pieces delivered so far (the consumer waits for piece `delivered`).
    delivered: usize,
    /// Finished pieces not yet delivered, with whether each holds a slot.
    done: BTreeMap<usize, (io::Result<R>, bool)>,
    /// Workers still running.
    workers: usize,
}

/// How [`run`] bounds memory.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// Each piece brings its own memory (it is fetched into a buffer it
    /// owns until delivered): pieces beyond the one the consumer waits for
    /// need a slot.
    Slots,
    /// Pieces land in the caller's memory: only requests are limited.
    CallerMemory,
}

/// Fetches pieces `0..n` with `fetch` on up to `jobs` worker threads
/// (fewer when `budget` is busy with other calls) and gives each result to
/// `deliver` in order on the calling thread (see the module docs). With
/// `n == 1`, or a budget of one request, everything runs on the calling
/// thread.
pub(crate) fn run<R: Send>(
    budget: &Budget,
    jobs: usize,
    n: usize,
    held: Held,
    fetch: &(dyn Fn(usize, &Ctx<'_>) -> io::Result<R> + Sync),
    deliver: &mut dyn FnMut(usize, R) -> io::Result<()>,
) -> io::Result<()> {
    let limits = budget.limits(jobs);
    let stop = AtomicBool::new(false);
    let workers = limits.jobs.min(n);
    if workers <= 1 {
        for i in 0..n {
            let r = {
                let _p = request_permit(budget, jobs);
                fetch(i, &Ctx { stop: &stop })?
            };
            deliver(i, r)?;
        }
        return Ok(());
    }
    let shared = Mutex::new(Shared {
        next: 0,
        delivered: 0,
        done: BTreeMap::new(),
        workers,
    });
    let cv = Condvar::new();
    // `Shared::delivered`, readable without the lock.
    let delivered = std::sync::atomic::AtomicUsize::new(0);
    // A stream holds at most this many pieces itself.
    let window = limits.jobs;
    let worker = || {
        let ctx = Ctx { stop: &stop };
        loop {
            // Claim the next piece: free when it is the one the consumer
            // waits for, else with a slot (streams) once in the window.
            let (i, slot) = {
                let mut st = lock(&shared);
                loop {
                    if stop.load(Ordering::Relaxed) || st.next >= n {
                        break (None, false);
                    }
                    if st.next == st.delivered && !st.done.contains_key(&st.next) {
                        let i = st.next;
                        st.next += 1;
                        break (Some(i), false);
                    }
                    if st.next < st.delivered + window {
                        if held == Held::CallerMemory || limits.slots.try_acquire() {
                            let i = st.next;
                            st.next += 1;
                            break (Some(i), held == Held::Slots);
                        }
                        // Every slot is taken (by other streams): wait for
                        // one, or for this stream's consumer to catch up
                        // (then the next piece is free).
                        let seen = st.delivered;
                        drop(st);
                        limits.slots.wait(&|| {
                            stop.load(Ordering::Relaxed)
                                || delivered.load(Ordering::Relaxed) != seen
                        });
                        st = lock(&shared);
                        continue;
                    }
                    st = cv
                        .wait_timeout(st, std::time::Duration::from_millis(50))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            };
            let Some(i) = i else {
                let mut st = lock(&shared);
                st.workers -= 1;
                cv.notify_all();
                return;
            };
            let r = if limits.requests.acquire(&stop) {
                let _p = Permit(&limits.requests);
                fetch(i, &ctx)
            } else {
                Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"))
            };
            let mut st = lock(&shared);
            st.done.insert(i, (r, slot));
            cv.notify_all();
        }
    };
    let mut result = Ok(());
    std::thread::scope(|s| {
        for k in 0..workers {
            let spawned = std::thread::Builder::new()
                .name(format!("aero-range-{k}"))
                .spawn_scoped(s, worker);
            if spawned.is_err() {
                // Fewer workers than planned: the others do the work.
                let mut st = lock(&shared);
                st.workers -= 1;
                if st.workers == 0 {
                    stop.store(true, Ordering::Relaxed);
                    result = Err(io::Error::other("cannot start a range worker thread"));
                    return;
                }
            }
        }
        for i in 0..n {
            let got = {
                let mut st = lock(&shared);
                loop {
                    if let Some(x) = st.done.remove(&i) {
                        break Some(x);
                    }
                    if st.workers == 0 {
                        break None;
                    }
                    st = cv
                        .wait_timeout(st, std::time::Duration::from_millis(50))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            };
            let Some((r, slot)) = got else {
                result = Err(io::Error::other("range workers stopped early"));
                break;
            };
            let step = r.and_then(|v| deliver(i, v));
            if slot {
                limits.slots.release();
            }
            {
                let mut st = lock(&shared);
                st.delivered = i + 1;
                delivered.store(i + 1, Ordering::Relaxed);
                cv.notify_all();
            }
            if held == Held::Slots {
                // Workers waiting for a slot may now claim the next piece
                // for free.
                limits.slots.wake();
            }
            if let Err(e) = step {
                result = Err(e);
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        cv.notify_all();
        limits.slots.wake();
    });
    // Pieces fetched but never delivered give their slots back.
    for (_, (_, slot)) in std::mem::take(&mut lock(&shared).done) {
        if slot {
            limits.slots.release();
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn delivers_in_order_with_bounded_concurrency() {
        let budget = Budget::new();
        let now = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let mut seen = Vec::new();
        run(
            &budget,
            4,
            40,
            Held::Slots,
            &|i, _| {
                let k = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(k, Ordering::SeqCst);
                // Later pieces finish first now and then.
                std::thread::sleep(Duration::from_millis(((40 - i) % 7) as u64));
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(i * 10)
            },
            &mut |i, v| {
                assert_eq!(v, i * 10);
                seen.push(i);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        let p = peak.load(Ordering::SeqCst);
        assert!((2..=4).contains(&p), "peak {p}");
        assert_eq!(budget.jobs(), Some(4));
    }

    #[test]
    fn the_first_error_in_order_stops_the_call() {
        let budget = Budget::new();
        let fetched = AtomicUsize::new(0);
        let mut delivered = Vec::new();
        let e = run(
            &budget,
            3,
            1000,
            Held::Slots,
            &|i, _| {
                fetched.fetch_add(1, Ordering::SeqCst);
                if i == 5 {
                    Err(io::Error::other("piece 5 failed"))
                } else {
                    Ok(i)
                }
            },
            &mut |i, _| {
                delivered.push(i);
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "piece 5 failed");
        assert_eq!(delivered, vec![0, 1, 2, 3, 4]);
        // Bounded by the window, not the 1000 pieces.
        assert!(fetched.load(Ordering::SeqCst) <= 5 + 1 + 2 * 3 + 3);
        // Every slot came back: a second call can use them all.
        let mut n = 0;
        run(&budget, 3, 50, Held::Slots, &|i, _| Ok(i), &mut |_, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 50);
    }

    #[test]
    fn a_consumer_error_stops_the_call() {
        let budget = Budget::new();
        let e = run(&budget, 4, 100, Held::Slots, &|i, _| Ok(i), &mut |i, _| {
            if i == 3 {
                Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted);
    }

    #[test]
    fn nested_and_concurrent_calls_on_one_budget_finish() {
        // Every slot held by one call's later pieces must not stop another
        // call (or a call made from inside a delivery) from progressing.
        let budget = Budget::new();
        std::thread::scope(|s| {
            for t in 0..4 {
                let budget = budget.clone();
                s.spawn(move || {
                    let mut total = 0usize;
                    run(
                        &budget,
                        2,
                        30,
                        Held::Slots,
                        &|i, _| Ok(i + t),
                        &mut |_, v| {
                            let mut inner = 0;
                            run(&budget, 2, 3, Held::Slots, &|j, _| Ok(j), &mut |_, w| {
                                inner += w;
                                Ok(())
                            })?;
                            total += v + inner;
                            Ok(())
                        },
                    )
                    .unwrap();
                    assert_eq!(total, (0..30).map(|i| i + t + 3).sum::<usize>());
                });
            }
        });
    }

    #[test]
    fn jobs_parse() {
        assert_eq!(parse_jobs(" 8 "), Ok(8));
        assert!(parse_jobs("0").is_err());
        assert!(parse_jobs("x").is_err());
        assert!(parse_jobs("257").is_err());
    }
}
