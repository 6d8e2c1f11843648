//! Safe outputs: what every writer in the workspace writes through.
//!
//! The rules (docs/CLI.md, "Outputs"):
//!
//! - **A regular file (or a path that does not exist yet)** is written to a
//!   temporary file created exclusively, with a unique name, in the same
//!   directory, then renamed over the destination. Two processes writing one
//!   destination each write their own temporary file; the last rename wins and
//!   every rename installs a complete file. Dropping an [`Output`] without
//!   [`Output::commit`] removes the temporary file. Missing parent
//!   directories are created. A symbolic link at the destination is
//!   written through (the link stays; the file it names is replaced).
//! - **Anything that is not a regular file** (`/dev/null`, a FIFO, a
//!   terminal, or `-` for standard output) is never replaced: the bytes are
//!   written to an anonymous spool file first (so the writer can seek and a
//!   failed or unverified write sends nothing) and copied to the target on
//!   commit.
//! - **Temporary names** follow one pattern, `.{name}.{pid}-{tag}.aerotmp`
//!   beside the destination `{name}` (for files and for the AEROSET writer's
//!   directories alike). While a writer lives it holds an exclusive lock on
//!   its temporary file (or directory). A process killed with `SIGKILL`
//!   cannot clean up; the next write to the same destination removes every
//!   such leftover whose lock is free and whose process is gone. Nothing
//!   reads these names as outputs.
//! - **Signals**: every temporary file or directory is registered while it
//!   exists; [`remove_in_flight`] removes them all. The `aerotensor` binary
//!   calls [`stop_and_remove_in_flight`] (which also stops new range-cache
//!   temporaries from being made) from its `SIGINT`/`SIGTERM`/`SIGHUP`
//!   handler before exiting with 128 + the signal number. (A library does not install signal
//!   handlers of its own.)
//! - **An output is never one of its inputs**: [`refuse_same_file`] compares
//!   device and inode, so a hard link or a symlink to an input is refused too.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Suffix of every temporary file or directory a writer creates.
pub const TEMP_SUFFIX: &str = ".aerotmp";

/// A temporary that is this much older than now and whose lock is free is
/// removed even if a process with its pid exists (the pid was reused).
const STALE_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Temporary files and directories that exist right now, for
/// [`remove_in_flight`]: (registration id, path, is a directory).
static IN_FLIGHT: Mutex<Vec<(u64, PathBuf, bool)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn in_flight() -> std::sync::MutexGuard<'static, Vec<(u64, PathBuf, bool)>> {
    IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes every temporary file and directory this process is writing. For
/// signal handlers: call it, then exit. Writers that are still running fail
/// on their next write or rename; no destination is touched.
pub fn remove_in_flight() {
    // Removed under the lock: a range-cache temporary is created under it
    // too ([`create_tracked`]), so it is either listed here or made after.
    let mut list = in_flight();
    for (_, path, dir) in std::mem::take(&mut *list) {
        let _ = if dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// Set by [`stop_and_remove_in_flight`]: no new range-cache temporary is
/// created after it.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// For a signal handler that exits next: stops this process from creating
/// new range-cache temporaries (other threads keep running until the exit,
/// and a cache entry they start now would outlive it), then
/// [`remove_in_flight`].
pub fn stop_and_remove_in_flight() {
    {
        let _list = in_flight();
        STOPPING.store(true, Ordering::SeqCst);
    }
    remove_in_flight();
}

/// A temporary file written by another part of this crate (a range-cache
/// entry on its way to its name): listed for [`remove_in_flight`] while it
/// lives, so that an interrupted process leaves no half-written file behind.
/// Dropping it only unlists the path.
pub(crate) struct Tracked {
    id: u64,
}

/// Creates the file `path`, listed for [`remove_in_flight`] until the
/// returned guard drops; refused (`Interrupted`) once
/// [`stop_and_remove_in_flight`] has run. Created under the list's lock, so
/// a concurrent [`remove_in_flight`] either removes it or runs before it
/// exists.
pub(crate) fn create_tracked(path: &Path) -> std::io::Result<(File, Tracked)> {
    let mut list = in_flight();
    if STOPPING.load(Ordering::SeqCst) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "the process is stopping",
        ));
    }
    let f = File::create(path)?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    list.push((id, path.to_path_buf(), false));
    Ok((f, Tracked { id }))
}

impl Drop for Tracked {
    fn drop(&mut self) {
        in_flight().retain(|(id, _, _)| *id != self.id);
    }
}

/// A registered temporary file or directory: removed on drop unless
/// [`TempGuard::disarm`]ed. Holds the exclusive lock that tells other
/// processes it is in use.
#[derive(Debug)]
pub struct TempGuard {
    id: u64,
    path: PathBuf,
    dir: bool,
    /// The locked descriptor (the temporary file itself, or the directory).
    lock: Option<File>,
    armed: bool,
}

impl TempGuard {
    fn register(path: PathBuf, dir: bool, lock: File) -> TempGuard {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        in_flight().push((id, path.clone(), dir));
        TempGuard {
            id,
            path,
            dir,
            lock: Some(lock),
            armed: true,
        }
    }

    /// The temporary path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn unregister(&self) {
        in_flight().retain(|(id, _, _)| *id != self.id);
    }

    /// Keeps the temporary (it has been renamed into place).
    pub fn disarm(mut self) {
        self.unregister();
        self.armed = false;
        drop(self.lock.take());
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            self.unregister();
            let _ = if self.dir {
                std::fs::remove_dir_all(&self.path)
            } else {
                std::fs::remove_file(&self.path)
            };
        }
    }
}

/// The directory an output path lives in (`.` for a bare file name).
pub fn parent_dir(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(dest: &Path) -> Result<&OsStr> {
    dest.file_name().ok_or_else(|| {
        Error::io(
            dest,
            io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        )
    })
}

/// `.{name}.` — the prefix of every temporary of `name`.
fn temp_prefix(name: &OsStr) -> OsString {
    let mut s = OsString::from(".");
    s.push(name);
    s.push(".");
    s
}

/// A fresh temporary path for `dest`: `.{name}.{pid}-{tag}.aerotmp` in its directory.
fn temp_path(dest: &Path) -> Result<PathBuf> {
    let name = file_name(dest)?;
    let mut s = temp_prefix(name);
    let tag = hex::encode(&crate::random::random_uuid()[..6]);
    s.push(format!("{}-{tag}{TEMP_SUFFIX}", std::process::id()));
    Ok(parent_dir(dest).join(s))
}

/// The pid a temporary name carries, if it is one of `name`'s.
fn temp_owner(entry: &OsStr, name: &OsStr) -> Option<u32> {
    let entry = entry.to_str()?;
    let rest = entry.strip_prefix(temp_prefix(name).to_str()?)?;
    let rest = rest.strip_suffix(TEMP_SUFFIX)?;
    let (pid, tag) = rest.split_once('-')?;
    (tag.len() == 12 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| pid.parse().ok())
        .flatten()
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true // unknown: rely on the lock and the age
    }
}

/// Removes leftovers of earlier writes to `dest` (temporaries of killed
/// processes): only names of the documented pattern, only when their lock is
/// free, and only when their process is gone or they are stale.
pub fn sweep_leftovers(dest: &Path) {
    let Ok(name) = file_name(dest) else { return };
    let Ok(rd) = std::fs::read_dir(parent_dir(dest)) else {
        return;
    };
    for e in rd.flatten() {
        let Some(pid) = temp_owner(&e.file_name(), name) else {
            continue;
        };
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !(meta.is_file() || meta.is_dir()) {
            continue;
        }
        let Ok(f) = File::open(&path) else { continue };
        if f.try_lock().is_err() {
            continue; // a live writer holds it
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .unwrap_or_default();
        // A live process may have created it and not locked it yet.
        if process_alive(pid) && age < STALE_AGE {
            continue;
        }
        let _ = if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// Creates a unique, locked, registered temporary file beside `dest`
/// (creating missing parent directories first).
pub fn temp_file(dest: &Path) -> Result<(TempGuard, File)> {
    create_unique(dest, |path| {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let lock = file.try_clone()?;
        let _ = lock.try_lock();
        Ok((TempGuard::register(path.to_path_buf(), false, lock), file))
    })
}

/// Creates a unique, locked, registered temporary directory beside `dest`.
pub fn temp_dir(dest: &Path) -> Result<TempGuard> {
    create_unique(dest, |path| {
        std::fs::create_dir(path)?;
        let lock = File::open(path)?;
        let _ = lock.try_lock();
        Ok(TempGuard::register(path.to_path_buf(), true, lock))
    })
}

/// Sweeps `dest`'s leftovers, then calls `make` with fresh temporary names
/// until one does not exist yet.
fn create_unique<T>(dest: &Path, make: impl Fn(&Path) -> io::Result<T>) -> Result<T> {
    let dir = parent_dir(dest);
    std::fs::create_dir_all(&dir).map_err(|e| {
        // `afile/x.aero` where `afile` is a file: say so, not "File exists".
        let blocker = dir.ancestors().find(|a| a.is_file());
        match blocker {
            Some(b) => Error::io(
                dest,
                io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is a file, not a directory", b.display()),
                ),
            ),
            None => Error::io(&dir, e),
        }
    })?;
    sweep_leftovers(dest);
    for _ in 0..16 {
        let path = temp_path(dest)?;
        match make(&path) {
            Ok(t) => return Ok(t),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                // Whatever was created before a later step failed must not stay
                // (the name is ours: it was created exclusively).
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir(&path);
                // Named by the destination the user gave, with the directory
                // where the temporary could not be made (the temporary's own
                // name means nothing to them).
                return Err(Error::io(
                    dest,
                    io::Error::new(
                        e.kind(),
                        format!("cannot create a temporary file in {}: {e}", dir.display()),
                    ),
                ));
            }
        }
    }
    Err(Error::io(
        dest,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "could not create a unique temporary",
        ),
    ))
}

/// The path a write to `dest` lands on: `dest` itself, or, when `dest` is a
/// symbolic link (even a dangling one), the path its chain of links ends
/// at. Gives up after 40 links (the kernel's own limit), returning `dest`.
fn link_target(dest: &Path) -> PathBuf {
    let mut p = dest.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&p) {
                Ok(next) => p = parent_dir(&p).join(next),
                Err(_) => return dest.to_path_buf(),
            },
            _ => return p,
        }
    }
    dest.to_path_buf()
}

/// Whether `dest` names standard output (`-`).
pub fn is_stdout(dest: &Path) -> bool {
    dest.as_os_str() == "-"
}

/// Errors when `output` is the same file (device and inode) as `input`.
/// A missing output or input is not the same file.
pub fn refuse_same_file(output: &Path, input: &Path) -> Result<()> {
    if is_stdout(output) {
        return Ok(());
    }
    match (std::fs::metadata(output), std::fs::metadata(input)) {
        (Ok(o), Ok(i)) if same_inode(&o, &i) => Err(Error::SameFile {
            output: output.to_path_buf(),
            input: input.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// [`refuse_same_file`] against an open input file.
pub fn refuse_open_input(output: &Path, input: &File) -> Result<()> {
    if is_stdout(output) {
        return Ok(());
    }
    match (std::fs::metadata(output), input.metadata()) {
        (Ok(o), Ok(i)) if same_inode(&o, &i) => Err(Error::OutputIsInput {
            output: output.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// Where committed bytes go.
#[derive(Debug)]
enum Kind {
    /// A temporary file renamed over `target`: the destination, or the
    /// file a symbolic link at the destination points to.
    Replace {
        guard: TempGuard,
        file: File,
        target: PathBuf,
    },
    /// A spool copied to a target that is not a regular file.
    Spool { spool: File, sink: Sink },
    /// A target that is not a regular file, written as bytes come
    /// ([`Output::create_unspooled`]).
    Direct { target: File },
}

#[derive(Debug)]
enum Sink {
    Stdout,
    File(File),
}

/// An output being written (see the module docs). [`Output::file`] is a
/// readable, writable, seekable file whatever the destination is.
#[derive(Debug)]
pub struct Output {
    dest: PathBuf,
    kind: Kind,
}

impl Output {
    /// Prepares to write `dest`: a temporary beside it when it is (or will
    /// be) a regular file, a spool when it is `-`, a device, a FIFO or
    /// another special file. A directory is an error.
    pub fn create(dest: impl AsRef<Path>) -> Result<Output> {
        let dest = dest.as_ref().to_path_buf();
        if is_stdout(&dest) {
            return Ok(Output {
                kind: Kind::Spool {
                    spool: spool_file()?,
                    sink: Sink::Stdout,
                },
                dest,
            });
        }
        match std::fs::metadata(&dest) {
            Ok(m) if m.is_dir() => Err(Error::io(
                &dest,
                io::Error::new(io::ErrorKind::IsADirectory, "is a directory"),
            )),
            // `out/` names a directory, existing or not: a file cannot be
            // written there (the rename would fail late, "Not a directory").
            Err(_) if dest.as_os_str().as_encoded_bytes().ends_with(b"/") => Err(Error::io(
                &dest,
                io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "names a directory (it ends with '/'); give a file name",
                ),
            )),
            Ok(m) if !m.is_file() => {
                // Opened now, so a missing permission fails before any work.
                let target = OpenOptions::new()
                    .write(true)
                    .open(&dest)
                    .map_err(|e| Error::io(&dest, e))?;
                Ok(Output {
                    kind: Kind::Spool {
                        spool: spool_file()?,
                        sink: Sink::File(target),
                    },
                    dest,
                })
            }
            _ => {
                // Through a symbolic link, as `cp` writes: the link stays and
                // the file it names is replaced (or created).
                let target = link_target(&dest);
                let (guard, file) = temp_file(&target)?;
                Ok(Output {
                    kind: Kind::Replace {
                        guard,
                        file,
                        target,
                    },
                    dest,
                })
            }
        }
    }

    /// [`Output::create`] for a writer that has checked everything it will
    /// write before writing the first byte (values decoded from a tensor
    /// verified whole, say): a regular file is still written to a temporary
    /// and renamed, but stdout, a device or a FIFO is written directly
    /// instead of through a spool — no copy of the whole output in the
    /// temporary directory first. Only an I/O error part-way can then leave
    /// part of the output in the stream (the caller reports it).
    pub fn create_unspooled(dest: impl AsRef<Path>) -> Result<Output> {
        let out = Output::create(dest)?;
        let Output { dest, kind } = out;
        let kind = match kind {
            Kind::Spool { sink, .. } => Kind::Direct {
                target: match sink {
                    Sink::File(f) => f,
                    Sink::Stdout => stdout_file().map_err(|e| Error::io(&dest, e))?,
                },
            },
            other => other,
        };
        Ok(Output { dest, kind })
    }

    /// The destination path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Whether the destination is not a regular file (stdout, a device, a
    /// FIFO): bytes are spooled and copied on commit.
    pub fn is_stream(&self) -> bool {
        matches!(self.kind, Kind::Spool { .. } | Kind::Direct { .. })
    }

    /// The file to write (a temporary or the spool): readable, writable and
    /// seekable.
    pub fn file(&mut self) -> &mut File {
        match &mut self.kind {
            Kind::Replace { file, .. } => file,
            Kind::Spool { spool, .. } => spool,
            Kind::Direct { target } => target,
        }
    }

    /// Installs the output: renames the temporary over the destination
    /// (after flushing it to disk when `durable`), or copies the spool to the
    /// special file / standard output.
    pub fn commit(self, durable: bool) -> Result<()> {
        let dest = self.dest;
        let io_err = |e| Error::io(&dest, e);
        match self.kind {
            Kind::Replace {
                guard,
                file,
                target,
            } => {
                if durable {
                    file.sync_all().map_err(io_err)?;
                }
                drop(file);
                std::fs::rename(guard.path(), &target).map_err(io_err)?;
                guard.disarm();
                if durable && let Ok(d) = File::open(parent_dir(&target)) {
                    let _ = d.sync_all();
                }
                Ok(())
            }
            Kind::Spool { mut spool, sink } => {
                spool.seek(SeekFrom::Start(0)).map_err(io_err)?;
                match sink {
                    Sink::Stdout => {
                        let mut so = io::stdout().lock();
                        copy_all(&mut spool, &mut so).map_err(io_err)?;
                        so.flush().map_err(io_err)
                    }
                    Sink::File(mut f) => {
                        copy_all(&mut spool, &mut f).map_err(io_err)?;
                        f.flush().map_err(io_err)
                    }
                }
            }
            Kind::Direct { mut target } => target.flush().map_err(io_err),
        }
    }
}

/// Standard output as a `File` (a duplicate of descriptor 1).
#[cfg(unix)]
fn stdout_file() -> io::Result<File> {
    use std::os::fd::AsFd;
    Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
}

#[cfg(not(unix))]
fn stdout_file() -> io::Result<File> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "unspooled standard output needs a Unix descriptor",
    ))
}

fn copy_all(from: &mut File, to: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}

/// An anonymous file in the temporary directory: its name is removed as
/// soon as it is open, so nothing is left behind even after `SIGKILL`.
fn spool_file() -> Result<File> {
    let dir = std::env::temp_dir();
    for _ in 0..16 {
        let tag = hex::encode(&crate::random::random_uuid()[..8]);
        let path = dir.join(format!(".aerotensor-spool-{}-{tag}", std::process::id()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                if cfg!(unix) {
                    let _ = std::fs::remove_file(&path);
                }
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Err(Error::io(
        &dir,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "could not create a spool file",
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(TEMP_SUFFIX))
            .collect()
    }

    /// `dir/` that does not exist names a directory: refused up front,
    /// nothing created.
    #[test]
    fn a_path_ending_in_a_slash_is_not_a_file_name() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("newdir/");
        let dest = PathBuf::from(format!("{}/", dest.display()));
        let e = Output::create(&dest).unwrap_err();
        assert!(e.to_string().contains("give a file name"), "{e}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    /// A symbolic link as the destination is written through, as `cp`
    /// does: the link stays, the file it names gets the bytes (created when
    /// the link dangles), and the temporary is made beside that file.
    #[test]
    fn a_symbolic_link_is_written_through_not_replaced() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("sub/real.bin");
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(&real, b"old").unwrap();
        let link = d.path().join("link.bin");
        std::os::unix::fs::symlink("sub/real.bin", &link).unwrap();
        let chain = d.path().join("chain.bin");
        std::os::unix::fs::symlink("link.bin", &chain).unwrap();
        for (via, bytes) in [(&link, b"new1"), (&chain, b"new2")] {
            let mut o = Output::create(via).unwrap();
            o.file().write_all(bytes).unwrap();
            o.commit(true).unwrap();
            assert!(
                std::fs::symlink_metadata(via)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert_eq!(std::fs::read(&real).unwrap(), bytes);
        }
        assert!(leftovers(d.path()).is_empty() && leftovers(&d.path().join("sub")).is_empty());
        // A dangling link: its target is created.
        let dangling = d.path().join("dangling.bin");
        std::os::unix::fs::symlink("sub/new.bin", &dangling).unwrap();
        let mut o = Output::create(&dangling).unwrap();
        o.file().write_all(b"x").unwrap();
        o.commit(false).unwrap();
        assert!(
            std::fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(d.path().join("sub/new.bin")).unwrap(), b"x");
    }

    #[test]
    fn commit_renames_and_drop_removes() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("sub/dir/out.bin");
        let mut o = Output::create(&dest).unwrap();
        o.file().write_all(b"hello").unwrap();
        assert_eq!(leftovers(&d.path().join("sub/dir")).len(), 1);
        o.commit(true).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert!(leftovers(&d.path().join("sub/dir")).is_empty());
        let mut o = Output::create(&dest).unwrap();
        o.file().write_all(b"partial").unwrap();
        drop(o);
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert!(leftovers(&d.path().join("sub/dir")).is_empty());
    }

    #[test]
    fn temp_names_follow_the_pattern() {
        let dest = Path::new("/x/model.aero");
        let t = temp_path(dest).unwrap();
        let n = t.file_name().unwrap();
        assert_eq!(
            temp_owner(n, OsStr::new("model.aero")),
            Some(std::process::id())
        );
        assert_eq!(temp_owner(n, OsStr::new("model")), None);
        assert_eq!(
            temp_owner(
                OsStr::new(".model.aero.12-zz.aerotmp"),
                OsStr::new("model.aero")
            ),
            None
        );
    }

    #[test]
    fn dead_writers_leftovers_are_swept_live_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("m.aero");
        // A leftover of a process that no longer exists (pid beyond pid_max).
        let dead = d.path().join(".m.aero.4194999-0123456789ab.aerotmp");
        std::fs::write(&dead, b"junk").unwrap();
        // A live writer of this process holds its lock.
        let (live, _f) = temp_file(&dest).unwrap();
        assert!(!dead.exists(), "swept by the new write");
        // An unrelated file with a similar name is never touched.
        let other = d.path().join(".m.aero.notes.aerotmp");
        std::fs::write(&other, b"x").unwrap();
        sweep_leftovers(&dest);
        assert!(live.path().exists());
        assert!(other.exists());
    }

    #[test]
    fn remove_in_flight_removes_registered_temporaries() {
        let d = tempfile::tempdir().unwrap();
        let (g, _f) = temp_file(&d.path().join("a.aero")).unwrap();
        let gd = temp_dir(&d.path().join("set")).unwrap();
        std::fs::write(gd.path().join("part"), b"x").unwrap();
        let (p, pd) = (g.path().to_path_buf(), gd.path().to_path_buf());
        assert!(p.exists() && pd.exists());
        remove_in_flight();
        assert!(!p.exists() && !pd.exists());
        drop((g, gd));
    }

    #[test]
    fn special_files_are_written_through_not_replaced() {
        let mut o = Output::create("/dev/null").unwrap();
        assert!(o.is_stream());
        o.file().write_all(&[7u8; 4096]).unwrap();
        o.commit(true).unwrap();
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(!m.is_file());
    }

    #[test]
    fn same_inode_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        std::fs::write(&a, b"x").unwrap();
        let b = d.path().join("b");
        std::fs::hard_link(&a, &b).unwrap();
        assert!(matches!(
            refuse_same_file(&b, &a),
            Err(Error::SameFile { .. })
        ));
        assert!(refuse_same_file(&d.path().join("c"), &a).is_ok());
    }
}
