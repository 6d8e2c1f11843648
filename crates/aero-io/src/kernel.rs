//! File-system calls of the streaming writer: positioned writes, and on
//! Linux `sync_file_range` (start write-back early, so the final `fsync`
//! has little left to wait for; a no-op elsewhere). With [`crate::mmap`],
//! the only modules of aero-io with `unsafe`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Asks the kernel to start writing `len` bytes at `off` of `f` back to
/// storage, without waiting. Advisory: failures are ignored (the final
/// `fsync` still makes the file durable).
#[cfg(target_os = "linux")]
pub fn start_writeback(f: &File, off: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (libc::off64_t::try_from(off), libc::off64_t::try_from(len)) else {
        return;
    };
    if len == 0 {
        return;
    }
    // SAFETY: a plain system call on an open descriptor; no memory is passed.
    let _ = unsafe { libc::sync_file_range(f.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
}

#[cfg(not(target_os = "linux"))]
pub fn start_writeback(_: &File, _: u64, _: u64) {}

/// Writes all of `buf` at `off` of `f` without moving its position.
#[cfg(unix)]
pub fn write_all_at(f: &File, off: u64, buf: &[u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, off)
}

/// Writes all of `buf` at `off` of `f`.
#[cfg(windows)]
pub fn write_all_at(f: &File, mut off: u64, mut buf: &[u8]) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = f.seek_write(buf, off)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        off += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn write_all_at_places_bytes_without_moving_the_position() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        write_all_at(&f, 3, b"abc").unwrap();
        write_all_at(&f, 12, b"Z").unwrap(); // past the end: a zero-filled hole
        assert_eq!(f.stream_position().unwrap(), 10);
        start_writeback(&f, 0, 13);
        start_writeback(&f, 0, 0);
        start_writeback(&f, u64::MAX, 1); // out of range: ignored
        let mut got = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"012abc6789\0\0Z");
    }
}
