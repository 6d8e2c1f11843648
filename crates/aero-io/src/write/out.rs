//! The output cursor every step of [`super::write_to`] writes through.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

/// The output file: counts bytes written, writes zero padding, and starts
/// write-back of what is behind it so the final `fsync` has little to wait
/// for (see [`crate::kernel::start_writeback`]).
pub(super) struct Out<'f> {
    /// The output's path, for errors.
    pub(super) path: &'f std::path::Path,
    pub(super) w: io::BufWriter<&'f mut File>,
    pub(super) pos: u64,
    /// Write-back has been started for every byte before this offset;
    /// `u64::MAX` when the output is not to be made durable.
    pub(super) written_back: u64,
}

impl<'f> Out<'f> {
    pub(super) fn new(path: &'f std::path::Path, file: &'f mut File, durable: bool) -> Self {
        Out {
            path,
            w: io::BufWriter::with_capacity(256 << 10, file),
            pos: 0,
            written_back: if durable { 0 } else { u64::MAX },
        }
    }

    pub(super) fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.w.write_all(b)?;
        self.pos += b.len() as u64;
        // Everything but the last step is in the file (the buffer is smaller).
        crate::pipeline::writeback_behind(self.w.get_ref(), &mut self.written_back, self.pos);
        Ok(())
    }

    pub(super) fn pad_to(&mut self, target: u64) -> io::Result<()> {
        const Z: [u8; 4096] = [0; 4096];
        while self.pos < target {
            let n = (target - self.pos).min(Z.len() as u64) as usize;
            self.write(&Z[..n])?;
        }
        Ok(())
    }

    /// Flushes the buffer and returns the file, for positioned writes at
    /// `self.pos`; follow with [`Out::advance`].
    pub(super) fn file(&mut self) -> io::Result<&File> {
        self.w.flush()?;
        Ok(self.w.get_ref())
    }

    /// Moves the cursor past `n` bytes placed with positioned writes.
    pub(super) fn advance(&mut self, n: u64) -> io::Result<()> {
        self.pos += n;
        self.w.seek(SeekFrom::Start(self.pos))?;
        Ok(())
    }
}
