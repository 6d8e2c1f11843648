//! The two-thread copy pipeline shared by the model writer
//! ([`crate::write`]) and the verified tensor copier ([`crate::copy`]).
//!
//! The calling thread *produces*: it fills small buffers (reads, zeros),
//! hashes them while they are in its cache, and hands them over with the
//! output offsets they go to. A second thread *writes* each buffer in place
//! (`pwrite`) and returns it. [`PIECES`] buffers of [`PIECE`] bytes
//! circulate, so memory stays near 1 MiB whatever is copied, and both cores
//! work: one reads and hashes, the other writes.
//!
//! For durable outputs the producer also starts write-back of what was
//! written more than [`WRITEBACK_STEP`] ago (`sync_file_range` on Linux), so
//! the final `fsync` has little left to wait for.

use std::fs::File;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};

/// Size of each buffer: small enough to stay in a core's cache between the
/// read, the hash and the write.
pub(crate) const PIECE: usize = 256 << 10;
/// Buffers in flight between the two threads.
const PIECES: usize = 4;

/// Start write-back once this many bytes are waiting behind the cursor.
pub(crate) const WRITEBACK_STEP: u64 = 16 << 20;

/// Starts write-back of `file` from `*from` up to one step behind `pos`,
/// once at least a step is due, and advances `*from`. `*from == u64::MAX`
/// (not durable) never starts any.
pub(crate) fn writeback_behind(file: &File, from: &mut u64, pos: u64) {
    let to = pos.saturating_sub(WRITEBACK_STEP);
    if to >= from.saturating_add(WRITEBACK_STEP) {
        crate::kernel::start_writeback(file, *from, to - *from);
        *from = to;
    }
}

/// The writing thread stopped (it failed): the producer should stop too.
#[derive(Debug)]
pub(crate) struct Cancelled;

/// One part of a buffer and where it goes: `buf[from..to]` at output offset `dst`.
pub(crate) type Write = (usize, usize, u64);

struct Piece {
    buf: Vec<u8>,
    writes: Vec<Write>,
}

struct Shared<'f> {
    file: &'f File,
    /// Set when either half fails: the other stops early.
    stop: AtomicBool,
    /// The writing half has written the output up to this offset.
    placed: AtomicU64,
    /// Write-back has been started for every byte before this offset
    /// (`u64::MAX`: the output is not made durable).
    written_back: Mutex<u64>,
}

/// The producer's end of the pipeline.
pub(crate) struct Pipe<'s, 'f> {
    full: SyncSender<Piece>,
    free: Receiver<Vec<u8>>,
    shared: &'s Shared<'f>,
}

impl Pipe<'_, '_> {
    /// A buffer of [`PIECE`] bytes to fill; fails when the writer has stopped.
    pub(crate) fn take(&self) -> Result<Vec<u8>, Cancelled> {
        if self.shared.stop.load(Ordering::Relaxed) {
            return Err(Cancelled);
        }
        self.free.recv().map_err(|_| Cancelled)
    }

    /// Hands `buf[..len]` over to be written at `dst`.
    pub(crate) fn put(&self, buf: Vec<u8>, len: usize, dst: u64) -> Result<(), Cancelled> {
        self.put_parts(buf, vec![(0, len, dst)])
    }

    /// Hands parts of `buf` over to be written where each says (none: the
    /// buffer just goes back to the pool).
    pub(crate) fn put_parts(&self, buf: Vec<u8>, writes: Vec<Write>) -> Result<(), Cancelled> {
        self.full
            .send(Piece { buf, writes })
            .map_err(|_| Cancelled)?;
        if let Ok(mut from) = self.shared.written_back.try_lock() {
            writeback_behind(
                self.shared.file,
                &mut from,
                self.shared.placed.load(Ordering::Acquire),
            );
        }
        Ok(())
    }
}

/// Runs `produce` on this thread while a second thread writes what it puts
/// into `file`. `written_back` is where write-back stands (`u64::MAX` when
/// the output is not to be made durable); returns the producer's result,
/// the writer's, and where write-back stands afterwards.
pub(crate) fn run<T, E>(
    file: &File,
    written_back: u64,
    produce: impl FnOnce(&Pipe<'_, '_>) -> Result<T, E>,
) -> (Result<T, E>, io::Result<()>, u64) {
    let shared = Shared {
        file,
        stop: AtomicBool::new(false),
        placed: AtomicU64::new(0),
        written_back: Mutex::new(written_back),
    };
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Piece>(PIECES);
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    for _ in 0..PIECES {
        // Cannot fail: the receiver is alive.
        let _ = free_tx.send(vec![0u8; PIECE]);
    }
    let (produced, wrote) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let r = write_pieces(&shared, full_rx, free_tx);
            if r.is_err() {
                shared.stop.store(true, Ordering::Relaxed);
            }
            r
        });
        let pipe = Pipe {
            full: full_tx,
            free: free_rx,
            shared: &shared,
        };
        let produced = produce(&pipe);
        if produced.is_err() {
            shared.stop.store(true, Ordering::Relaxed);
        }
        drop(pipe); // ends the writer's loop
        let wrote = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writing thread panicked")));
        (produced, wrote)
    });
    let written_back = shared
        .written_back
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    (produced, wrote, written_back)
}

/// The writing half.
fn write_pieces(
    shared: &Shared<'_>,
    full: Receiver<Piece>,
    free: Sender<Vec<u8>>,
) -> io::Result<()> {
    for p in full {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let mut end = 0;
        for &(from, to, dst) in &p.writes {
            let part = p.buf.get(from..to).ok_or_else(|| {
                io::Error::other(format!("piece range {from}..{to} out of bounds"))
            })?;
            crate::kernel::write_all_at(shared.file, dst, part)?;
            end = end.max(dst + part.len() as u64);
        }
        shared.placed.fetch_max(end, Ordering::AcqRel);
        // The producer may have finished: then the buffer is not needed.
        let _ = free.send(p.buf);
    }
    Ok(())
}
