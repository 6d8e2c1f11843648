//! Linux file-copy system calls the writer uses to stay close to `cp`:
//! `copy_file_range` (copy in the kernel, no trip through user space) and
//! `sync_file_range` (start write-back early, so the final `fsync` has
//! little left to wait for). Besides [`crate::mmap`], the only module with
//! `unsafe`. On other systems both are reported as unsupported / no-ops and
//! the writer uses plain `write`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Copies up to `len` bytes from `from` at `from_off` to `to` at `to_off`
/// without moving either file position; returns the bytes copied (0 at the
/// end of `from`). Errors of kind [`io::ErrorKind::Unsupported`] mean "use
/// another way" (other file system, kernel without the call, ...).
#[cfg(target_os = "linux")]
pub(crate) fn copy_range(
    from: &File,
    from_off: u64,
    to: &File,
    to_off: u64,
    len: usize,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut off_in = libc::loff_t::try_from(from_off).map_err(|_| unsupported())?;
    let mut off_out = libc::loff_t::try_from(to_off).map_err(|_| unsupported())?;
    loop {
        // SAFETY: both descriptors are open for the lifetime of the borrows,
        // the offset pointers point to live locals, and the kernel only
        // reads and writes file contents (no user memory besides the offsets).
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                &mut off_in,
                to.as_raw_fd(),
                &mut off_out,
                len,
                0,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            // Not possible between these files: the caller writes instead.
            Some(
                libc::ENOSYS
                | libc::EXDEV
                | libc::EINVAL
                | libc::EOPNOTSUPP
                | libc::EPERM
                | libc::EBADF,
            ) => return Err(unsupported()),
            _ => return Err(e),
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn copy_range(_: &File, _: u64, _: &File, _: u64, _: usize) -> io::Result<usize> {
    Err(unsupported())
}

fn unsupported() -> io::Error {
    io::Error::from(io::ErrorKind::Unsupported)
}

/// Asks the kernel to start writing `len` bytes at `off` of `f` back to
/// storage, without waiting. Advisory: failures are ignored (the final
/// `fsync` still makes the file durable).
#[cfg(target_os = "linux")]
pub(crate) fn start_writeback(f: &File, off: u64, len: u64) {
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
pub(crate) fn start_writeback(_: &File, _: u64, _: u64) {}

/// Writes all of `buf` at `off` of `f` without moving its position.
#[cfg(unix)]
pub(crate) fn write_all_at(f: &File, off: u64, buf: &[u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, off)
}

/// Writes all of `buf` at `off` of `f`.
#[cfg(windows)]
pub(crate) fn write_all_at(f: &File, mut off: u64, mut buf: &[u8]) -> io::Result<()> {
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
    fn copy_range_copies_at_offsets_without_moving_positions() {
        let mut a = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        a.write_all(&data).unwrap();
        let mut b = tempfile::tempfile().unwrap();
        b.write_all(b"head").unwrap();
        let mut done = 0;
        while done < 50_000 {
            match copy_range(&a, 1000 + done as u64, &b, 4 + done as u64, 50_000 - done) {
                Ok(0) => panic!("early end"),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    eprintln!("copy_file_range unsupported here; nothing to check");
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
        // Positions unchanged: `b` is still at 4, `a` at its end.
        assert_eq!(b.stream_position().unwrap(), 4);
        assert_eq!(a.stream_position().unwrap(), data.len() as u64);
        let mut got = Vec::new();
        b.seek(SeekFrom::Start(0)).unwrap();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..], &data[1000..51_000]);
        // At the end of the source: 0 bytes.
        assert_eq!(copy_range(&a, data.len() as u64, &b, 0, 10).unwrap(), 0);
        start_writeback(&b, 0, got.len() as u64);
    }
}
