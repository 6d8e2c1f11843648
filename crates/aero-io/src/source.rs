//! The "bytes at offset" seam: a whole-file memory map where possible, `pread`
//! otherwise. Remote files implement the same trait through one read core,
//! `remote::RemoteSource` (feature-gated transports: see `crate::remote`).

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::path::Path;

/// Window used when hashing or streaming large ranges: resident memory
/// stays near this (also `verify::WINDOW`).
pub const WINDOW: u64 = 16 << 20;

/// Random-access bytes. Implemented for local files (mmap or pread), for
/// memory, and for remote files (`remote::RemoteSource`).
pub trait ByteSource: Send + Sync {
    /// Total size in bytes.
    fn len(&self) -> u64;

    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset`; errors if fewer are available.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// The bytes at `offset..offset+len` without copying, when the source is
    /// memory-mapped.
    fn mapped(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let _ = (offset, len);
        None
    }

    /// Whether the bytes at an offset stay the same while the source is open:
    /// true for a local file (the contract every memory-mapped reader relies
    /// on) and for memory; false for remote sources, whose bytes are
    /// re-verified on every read instead of being remembered as good.
    fn stable(&self) -> bool {
        false
    }

    /// Streams the bytes of `ranges` (absolute `(offset, length)` pairs,
    /// sorted, not overlapping) to `sink` in order, as `(offset, bytes)`
    /// slices that each lie inside one range; every byte of every range is
    /// given exactly once. An error from `sink` stops the stream and is
    /// returned. Memory stays bounded whatever the lengths.
    ///
    /// The default hands out mapped slices, or reads windows of
    /// [`WINDOW`] bytes one after another; a remote source
    /// fetches several pieces at once
    /// ([`crate::remote::RemoteSource::stream_ranges`]).
    fn stream(
        &self,
        ranges: &[(u64, u64)],
        sink: &mut dyn FnMut(u64, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut buf = Vec::new();
        for &(at, n) in ranges {
            range_end(self.len(), at, n)?;
            let mut pos = at;
            while pos < at + n {
                let k = (at + n - pos).min(WINDOW);
                match self.mapped(pos, k) {
                    Some(s) => sink(pos, s)?,
                    None => {
                        buf.resize(k as usize, 0);
                        self.read_exact_at(pos, &mut buf)?;
                        sink(pos, &buf)?;
                    }
                }
                pos += k;
            }
        }
        Ok(())
    }

    /// A reader of the bytes `start..end`, in order, for a caller that
    /// consumes a long range piece by piece. A remote source answers it
    /// with one request for the whole range, resumed where a cut body
    /// stopped, so that a request's latency is paid once rather than once
    /// per piece ([`crate::remote::RemoteSource`]); the default reads
    /// through [`ByteSource::read_exact_at`]. After `end`, reads give 0.
    fn reader_at(&self, start: u64, end: u64) -> io::Result<Box<dyn io::Read + '_>> {
        check_span(self.len(), start, end)?;
        Ok(Box::new(RangeReader {
            src: self,
            pos: start,
            end,
        }))
    }

    /// The bytes at `offset..offset+len`, borrowed if mapped, else read.
    fn bytes(&self, offset: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        if let Some(s) = self.mapped(offset, len) {
            return Ok(Cow::Borrowed(s));
        }
        range_end(self.len(), offset, len)?;
        let n = usize::try_from(len).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("range {offset}+{len} does not fit in memory"),
            )
        })?;
        let mut v = vec![0u8; n];
        self.read_exact_at(offset, &mut v)?;
        Ok(Cow::Owned(v))
    }
}

/// `offset + len`, or the error every reader gives for a range that does
/// not lie inside a source of `size` bytes.
pub(crate) fn range_end(size: u64, offset: u64, len: u64) -> io::Result<u64> {
    offset
        .checked_add(len)
        .filter(|&e| e <= size)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("range {offset}+{len} is past the end ({size})"),
            )
        })
}

/// An error unless `start..end` lies inside a source of `size` bytes
/// ([`ByteSource::reader_at`]).
pub(crate) fn check_span(size: u64, start: u64, end: u64) -> io::Result<()> {
    let len = end.checked_sub(start).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("range {start}..{end} ends before it starts"),
        )
    })?;
    range_end(size, start, len).map(|_| ())
}

/// A local file, memory-mapped when the platform allows it.
pub struct LocalSource {
    file: File,
    len: u64,
    map: Option<memmap2::Mmap>,
}

impl LocalSource {
    /// Opens `path`, mapping it if possible (`mmap` fails on some special files
    /// and filesystems; reads then go through `pread`).
    ///
    /// # The memory-map contract
    ///
    /// A mapping shows the file as it is *now*: if another process truncates
    /// or rewrites the file while it is mapped, the bytes seen through
    /// [`ByteSource::mapped`] change underneath, and touching a truncated
    /// page kills the process with `SIGBUS`. Like every mmap-based reader
    /// (ripgrep's `MmapChoice`, `safetensors`), this crate assumes that a file
    /// it reads is not modified while open; writers here never modify a file
    /// in place (they write a temporary and rename it). Under that contract a
    /// verified shard stays verified ([`ByteSource::stable`]). Where other
    /// programs may rewrite files in place, use [`LocalSource::open_unmapped`]
    /// (or set `AEROTENSOR_NO_MMAP`): every read is then a `pread` into a
    /// buffer of ours.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with(path, std::env::var_os("AEROTENSOR_NO_MMAP").is_none())
    }

    /// Opens `path` without mapping it: reads are positioned reads into
    /// buffers, so a concurrent change cannot alter bytes already handed
    /// out or raise `SIGBUS` (see [`LocalSource::open`]).
    pub fn open_unmapped(path: &Path) -> io::Result<Self> {
        Self::open_with(path, false)
    }

    fn open_with(path: &Path, map: bool) -> io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory",
            ));
        }
        let len = meta.len();
        let map = if len == 0 || !map {
            None
        } else {
            crate::mmap::map_whole(&file)
        };
        Ok(LocalSource { file, len, map })
    }

    /// Whether the file is memory-mapped.
    pub fn is_mapped(&self) -> bool {
        self.map.is_some()
    }

    /// The open file: for the fast paths that map windows of it, hash it
    /// by subtrees or hand a range of it to the writer (see [`SourceRef`]).
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// An owned byte source that keeps a local file's concrete type, so the
/// read core's fast paths (windowed mapping, subtree hashing, positioned
/// reads, the writer's file ranges) stay available behind it without the
/// [`ByteSource`] trait exposing a file.
pub enum Source {
    /// A local file.
    Local(LocalSource),
    /// Any other source (memory, remote, a caller's own).
    Other(Box<dyn ByteSource>),
}

impl Source {
    /// Borrowed, for the functions that take a [`SourceRef`].
    pub fn as_source_ref(&self) -> SourceRef<'_> {
        match self {
            Source::Local(l) => SourceRef::Local(l),
            Source::Other(s) => SourceRef::Other(s.as_ref()),
        }
    }

    /// The local file behind this source, if it is one.
    pub fn local(&self) -> Option<&LocalSource> {
        match self {
            Source::Local(l) => Some(l),
            Source::Other(_) => None,
        }
    }

    fn dyn_source(&self) -> &dyn ByteSource {
        match self {
            Source::Local(l) => l,
            Source::Other(s) => s.as_ref(),
        }
    }
}

impl From<LocalSource> for Source {
    fn from(l: LocalSource) -> Source {
        Source::Local(l)
    }
}

impl From<Box<dyn ByteSource>> for Source {
    fn from(s: Box<dyn ByteSource>) -> Source {
        Source::Other(s)
    }
}

impl<T: ByteSource + 'static> From<Box<T>> for Source {
    fn from(s: Box<T>) -> Source {
        Source::Other(s)
    }
}

impl ByteSource for Source {
    fn len(&self) -> u64 {
        self.dyn_source().len()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.dyn_source().read_exact_at(offset, buf)
    }
    fn mapped(&self, offset: u64, len: u64) -> Option<&[u8]> {
        self.dyn_source().mapped(offset, len)
    }
    fn stable(&self) -> bool {
        self.dyn_source().stable()
    }
    fn stream(
        &self,
        ranges: &[(u64, u64)],
        sink: &mut dyn FnMut(u64, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.dyn_source().stream(ranges, sink)
    }
    fn reader_at(&self, start: u64, end: u64) -> io::Result<Box<dyn io::Read + '_>> {
        self.dyn_source().reader_at(start, end)
    }
}

/// A borrowed byte source as the read core's loops take it: a local file
/// (whose [`LocalSource::file`] they may map in windows or read with
/// `pread`) or any other [`ByteSource`] (read through the trait). Every
/// function taking one accepts `&LocalSource`, `&dyn ByteSource`, `&Source`
/// and `&Vec<u8>` through `Into`.
#[derive(Clone, Copy)]
pub enum SourceRef<'a> {
    /// A local file.
    Local(&'a LocalSource),
    /// Any other source.
    Other(&'a dyn ByteSource),
}

impl<'a> SourceRef<'a> {
    /// The source as a trait object.
    pub fn bytes(self) -> &'a dyn ByteSource {
        match self {
            SourceRef::Local(l) => l,
            SourceRef::Other(s) => s,
        }
    }

    /// The local file, if the source is one.
    pub fn local_file(self) -> Option<&'a File> {
        match self {
            SourceRef::Local(l) => Some(l.file()),
            SourceRef::Other(_) => None,
        }
    }
}

impl<'a> From<&'a LocalSource> for SourceRef<'a> {
    fn from(l: &'a LocalSource) -> Self {
        SourceRef::Local(l)
    }
}

impl<'a> From<&'a dyn ByteSource> for SourceRef<'a> {
    fn from(s: &'a dyn ByteSource) -> Self {
        SourceRef::Other(s)
    }
}

impl<'a> From<&'a Source> for SourceRef<'a> {
    fn from(s: &'a Source) -> Self {
        s.as_source_ref()
    }
}

impl<'a> From<&'a Vec<u8>> for SourceRef<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        SourceRef::Other(v)
    }
}

impl ByteSource for LocalSource {
    fn len(&self) -> u64 {
        self.len
    }

    /// Always a positioned read, even when the file is mapped: copies into
    /// the caller's buffer then keep resident memory at the buffer size
    /// instead of growing with every mapped page touched.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_exact_at(&self.file, offset, buf)
    }

    fn stable(&self) -> bool {
        true
    }

    fn mapped(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let map = self.map.as_ref()?;
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        map.get(start..end)
    }
}

/// Positioned read of exactly `buf.len()` bytes.
pub fn read_exact_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0usize;
        while done < buf.len() {
            let n = file.seek_read(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// An in-memory source (tests, small files, fetched regions).
impl ByteSource for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let s = self
            .mapped(offset, buf.len() as u64)
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(s);
        Ok(())
    }
    fn mapped(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        self.get(start..start.checked_add(usize::try_from(len).ok()?)?)
    }
    fn stable(&self) -> bool {
        true
    }
}

/// A shared source (an [`std::sync::Arc`] kept elsewhere too, as a remote
/// file's cache handle is).
impl<T: ByteSource + ?Sized> ByteSource for std::sync::Arc<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
    fn mapped(&self, offset: u64, len: u64) -> Option<&[u8]> {
        (**self).mapped(offset, len)
    }
    fn stable(&self) -> bool {
        (**self).stable()
    }
    fn stream(
        &self,
        ranges: &[(u64, u64)],
        sink: &mut dyn FnMut(u64, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        (**self).stream(ranges, sink)
    }
    fn reader_at(&self, start: u64, end: u64) -> io::Result<Box<dyn io::Read + '_>> {
        (**self).reader_at(start, end)
    }
}

/// A `Read` over `len` bytes at `offset` of a source, for streaming copies.
///
/// A local file is read with `pread` even when it is memory-mapped: the
/// caller copies into its own buffer either way, and positioned reads keep
/// resident memory at the buffer size instead of growing with every mapped
/// page touched. Other sources use their zero-copy slice when they have one.
pub fn range_reader<'a>(
    src: impl Into<SourceRef<'a>>,
    offset: u64,
    len: u64,
) -> io::Result<Box<dyn io::Read + Send + 'a>> {
    let src = src.into();
    let (file, src) = (src.local_file(), src.bytes());
    range_end(src.len(), offset, len)?;
    if let Some(file) = file {
        return Ok(Box::new(FileRange {
            file,
            pos: offset,
            end: offset + len,
        }));
    }
    if let Some(s) = src.mapped(offset, len) {
        return Ok(Box::new(s));
    }
    Ok(Box::new(RangeReader {
        src,
        pos: offset,
        end: offset + len,
    }))
}

struct FileRange<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
}

impl io::Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.end - self.pos).min(buf.len() as u64) as usize;
        read_exact_at(self.file, self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Bytes `pos..end` of a source, read through `read_exact_at`
/// ([`range_reader`], and [`ByteSource::reader_at`]'s default).
struct RangeReader<'a, S: ?Sized> {
    src: &'a S,
    pos: u64,
    end: u64,
}

impl<S: ByteSource + ?Sized> io::Read for RangeReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.end - self.pos).min(buf.len() as u64) as usize;
        self.src.read_exact_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}
