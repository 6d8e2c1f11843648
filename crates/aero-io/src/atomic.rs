//! Atomic output: write `<out>.tmp`, fsync, rename over `<out>`.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A file being written to `<dest>.tmp`. [`AtomicFile::commit`] syncs it and
/// renames it over `dest`; dropping it uncommitted removes the temporary file,
/// so an error never leaves a partial file and never touches an existing `dest`.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

/// `<path>.tmp`.
pub fn tmp_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

impl AtomicFile {
    /// Creates (truncating) `<dest>.tmp`.
    pub fn create(dest: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let dest = dest.as_ref().to_path_buf();
        if dest.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a directory", dest.display()),
            ));
        }
        let tmp = tmp_path(&dest);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        Ok(AtomicFile {
            tmp,
            dest,
            file: Some(file),
        })
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        // Present until commit consumes self.
        self.file.as_mut().expect("AtomicFile used after commit")
    }

    /// The destination path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes to disk and renames over the destination.
    pub fn commit(self) -> io::Result<()> {
        self.commit_with(true)
    }

    /// Renames over the destination, first flushing the file and then its
    /// directory to disk when `durable`. Without it the rename is still
    /// atomic (readers see the old file or the complete new one), but a
    /// crash or power loss soon after may leave the new name with missing
    /// data, as after `cp`.
    pub fn commit_with(mut self, durable: bool) -> io::Result<()> {
        let file = self.file.take().expect("AtomicFile committed twice");
        if durable {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&self.tmp, &self.dest)?;
        if let Some(dir) = self.dest.parent().filter(|_| durable) {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
