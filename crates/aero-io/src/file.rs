//! [`AeroFile`]: an opened `.aero` file.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use aero_format::{ControlPlane, FILE_HEADER_LEN, FileHeader, FourCc, TOC_HEADER_LEN};

use crate::chunk::{Chunk, ChunkStatus, decompress_exact};
use crate::error::{Error, Result};
use crate::index::{TensorIndex, TensorInfo};
use crate::integrity::PageHashes;
use crate::order::{LenCheck, ShapeOrder};
use crate::source::{ByteSource, LocalSource, Source, SourceRef};
use crate::view::TensorView;

/// First read when opening a file: covers header, TOC and string table of
/// typical files in one request for remote sources.
const PREFIX_GUESS: u64 = 64 << 10;

/// Largest control-plane prefix fetched in one read; beyond this the TOC and
/// string table are read as separate regions.
const MAX_PREFIX_READ: u64 = 64 << 20;

/// Where a shard id resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ShardSlot {
    Chunk(usize),
    /// Two WTSH chunks carry the same name: refusing to guess protects
    /// against a renamed chunk silently serving another shard's bytes.
    Ambiguous,
}

/// An opened AERO file: parsed header/TOC/string table, lazily decoded TIDX,
/// and zero-copy access to tensor bytes when the file is memory-mapped.
///
/// ```no_run
/// let f = aero_io::AeroFile::open("model.aero")?;
/// let w = f.tensor("linear.weight")?;          // verifies hash_b3 if recorded
/// let values: &[f32] = w.as_slice()?;          // zero-copy when aligned
/// # Ok::<(), aero_io::Error>(())
/// ```
pub struct AeroFile {
    path: PathBuf,
    /// Opened from a local path (not a URL or another source).
    local: bool,
    source: Source,
    /// The remote source behind `source`, when opened from one: its cache
    /// of fetched ranges is dropped when their bytes fail verification.
    remote: Option<Arc<crate::remote::RemoteSource>>,
    header: FileHeader,
    chunks: Vec<Chunk>,
    payload_start: u64,
    shards: HashMap<u64, ShardSlot>,
    index: OnceLock<TensorIndex>,
    /// Shard name → TOC index of its (first) PHSH chunk.
    page_chunks: HashMap<String, usize>,
    /// Per TOC index: the decoded page hashes of a PHSH chunk (`None` when
    /// unusable: unreadable, corrupt, or not matching its shard).
    pages: Vec<OnceLock<Option<Arc<PageHashes>>>>,
    /// Per TOC index: the outcome of hashing a whole weight shard, kept for
    /// a stable source (see [`ByteSource::stable`]).
    shard_checks: Vec<OnceLock<ShardCheck>>,
    /// How the TIDX orders shapes, decided from MJSN on first use.
    shape_order: OnceLock<ShapeOrder>,
}

/// Bytes read for a tensor and, when more was read (whole pages), the
/// tensor's range of them.
type Verified<'a> = (Cow<'a, [u8]>, Option<std::ops::Range<usize>>);

/// What a verified read checks a tensor's bytes against: the strongest hash
/// the file records for them. See the crate docs for what each costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// The tensor's own `hash_b3`: the read hashes exactly the tensor.
    TensorHash,
    /// The PHSH page hashes of its shard: the read hashes the pages that
    /// cover the tensor (at most one page more than the tensor).
    Pages {
        /// Page size in bytes.
        page_size: u64,
    },
    /// Only the shard's TOC hash: the whole shard is hashed, once per open
    /// file for a local file, on every read for a remote one.
    Shard,
    /// Nothing records a hash for these bytes: a verified read fails.
    Unprotected,
}

/// [`Protection`] with the page hashes themselves.
pub(crate) enum Guard {
    TensorHash,
    Pages(Arc<PageHashes>),
    Shard,
    Unprotected,
    /// The caller asked for unverified bytes.
    Trusted,
}

/// The outcome of hashing a whole weight shard.
#[derive(Clone, Debug)]
enum ShardCheck {
    Verified,
    Mismatch,
    Unreadable(String),
}

impl std::fmt::Debug for AeroFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeroFile")
            .field("path", &self.path)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

/// What a file that is not AERO looks like, with what to do about it.
fn looks_like(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"GGUF") {
        return Some("GGUF — try `aerotensor convert`");
    }
    if let Some(n) = head.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
        let n = u64::from_le_bytes(n);
        if n > 0 && n < (100 << 20) && head.get(8) == Some(&b'{') {
            return Some("safetensors — try `aerotensor convert`");
        }
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return Some("JSON — an AEROSET manifest is read by giving its path or directory");
    }
    if head.starts_with(b"PK\x03\x04") {
        return Some(
            "a ZIP archive (a PyTorch .pt/.bin checkpoint?) — convert it to safetensors first",
        );
    }
    None
}

/// A control-plane error that means the file is shorter than it says, as
/// a [`Error::Truncated`].
fn truncation(path: &Path, e: &aero_format::Error, file_len: u64) -> Option<Error> {
    use aero_format::{ErrorKind, Field};
    let (offset, length, limit) = match e.kind {
        ErrorKind::OutOfBounds {
            offset,
            length,
            limit,
        } => (offset, length, limit),
        ErrorKind::Truncated { need } => (0, need, file_len),
        _ => return None,
    };
    let need = offset.checked_add(length)?;
    if limit != file_len || need <= file_len {
        return None;
    }
    let what = match (e.field, e.index) {
        (Field::ChunkRange, Some(i)) => format!("chunk {i} ({})", e.field.as_str()),
        (Field::TocOffset | Field::TocLength | Field::EntryCount, _) => {
            format!("the TOC ({})", e.field.as_str())
        }
        (Field::StringTableOffset | Field::StringTableLength, _) => {
            format!("the string table ({})", e.field.as_str())
        }
        _ => e.field.as_str().into(),
    };
    // Absurd sizes are damage, not truncation.
    (need <= file_len.saturating_mul(1024).max(1 << 30)).then(|| Error::Truncated {
        path: path.to_path_buf(),
        what,
        need,
        have: file_len,
    })
}

impl AeroFile {
    /// Opens a local file (memory-mapped, with a `pread` fallback) and checks
    /// its header, TOC and string table (spec §10).
    pub fn open(path: impl AsRef<Path>) -> Result<AeroFile> {
        let path = path.as_ref();
        let src = LocalSource::open(path).map_err(|e| Error::io(path, e))?;
        let mut f = Self::from_source(path, src)?;
        f.local = true;
        Ok(f)
    }

    /// Opens a remote file with range reads: `http(s)://` URLs over HTTP,
    /// and with the `s3` feature `s3://`, `gs://` and `az://` objects
    /// ([`crate::remote::open_source`]). Other schemes are an error.
    pub fn open_url(url: &str, opts: crate::remote::RemoteOptions) -> Result<AeroFile> {
        let src = crate::remote::open_source(url, opts).map_err(|e| Error::io(url, e))?;
        Self::from_remote(url, src)
    }

    /// Opens a remote source ([`crate::remote::open_source`]); `label` names
    /// it in errors. Unlike [`AeroFile::from_source`], a verified read whose
    /// bytes fail their hash drops the source's cached copy of them and reads
    /// once more ([`crate::remote::RemoteSource::invalidate`]).
    pub fn from_remote(
        label: impl Into<PathBuf>,
        source: Arc<crate::remote::RemoteSource>,
    ) -> Result<AeroFile> {
        let shared: Box<dyn ByteSource> = Box::new(Arc::clone(&source));
        let mut f = Self::from_source(label, shared)?;
        f.remote = Some(source);
        Ok(f)
    }

    /// Opens any [`ByteSource`] (a `Box<dyn ByteSource>`, or a
    /// [`LocalSource`] whose fast paths stay available: see [`Source`]);
    /// `label` names it in errors.
    pub fn from_source(label: impl Into<PathBuf>, source: impl Into<Source>) -> Result<AeroFile> {
        let path = label.into();
        let source = source.into();
        let file_len = source.len();
        let fmt_err = |e| Error::Format {
            path: path.clone(),
            source: e,
        };
        let io_err = |e| Error::io(path.clone(), e);
        if file_len < FILE_HEADER_LEN as u64 {
            let head = source
                .bytes(0, file_len)
                .map_err(|e| Error::io(path.clone(), e))?;
            if !head.starts_with(&aero_format::MAGIC[..head.len().min(4)]) || head.is_empty() {
                return Err(Error::NotAero {
                    looks_like: looks_like(&head),
                    path,
                });
            }
            return Err(Error::Truncated {
                path,
                what: "the header".into(),
                need: FILE_HEADER_LEN as u64,
                have: file_len,
            });
        }
        // One guess-sized read usually covers header, TOC and string table
        // (what a remote source wants: one range request); a second read of
        // exactly the missing prefix only if the guess was short.
        let mut prefix = source
            .bytes(0, file_len.min(PREFIX_GUESS))
            .map_err(io_err)?;
        let header = FileHeader::parse(&prefix).map_err(|e| match e.kind {
            aero_format::ErrorKind::BadMagic(_) => Error::NotAero {
                looks_like: looks_like(&prefix),
                path: path.clone(),
            },
            _ => fmt_err(e),
        })?;
        if let Some(need) = ControlPlane::required_prefix(&header).filter(|&n| n <= file_len)
            && need > prefix.len() as u64
            && need <= MAX_PREFIX_READ
        {
            prefix = source.bytes(0, need).map_err(io_err)?;
        }
        let region = |off: u64, len: u64| -> std::io::Result<Cow<'_, [u8]>> {
            match off.checked_add(len).filter(|&e| e <= prefix.len() as u64) {
                Some(end) => Ok(Cow::Borrowed(&prefix[off as usize..end as usize])),
                None => source.bytes(off, len),
            }
        };
        let head = &prefix[..FILE_HEADER_LEN];
        // Read only what the entries need, even if toc_length claims more.
        let toc_len_fits = header
            .toc_offset
            .checked_add(header.toc_length)
            .is_some_and(|e| e <= file_len);
        let count = if toc_len_fits && header.toc_length >= TOC_HEADER_LEN as u64 {
            let th = region(header.toc_offset, TOC_HEADER_LEN as u64).map_err(io_err)?;
            u64::from(u32::from_le_bytes([th[0], th[1], th[2], th[3]]))
        } else {
            0
        };
        let toc_read =
            aero_format::layout::toc_length(count.min(aero_format::limits::MAX_ENTRY_COUNT + 1))
                .unwrap_or(u64::MAX)
                .min(header.toc_length);
        let toc = if toc_len_fits {
            region(header.toc_offset, toc_read).map_err(io_err)?
        } else {
            Cow::Borrowed(&[][..])
        };
        let st_fits = header
            .string_table_offset
            .checked_add(header.string_table_length)
            .is_some_and(|e| e <= file_len)
            && header.string_table_length <= aero_format::limits::MAX_STRING_TABLE;
        let strtab = if st_fits {
            region(header.string_table_offset, header.string_table_length).map_err(io_err)?
        } else {
            Cow::Borrowed(&[][..])
        };
        let cp = ControlPlane::from_parts(head, &toc, &strtab, file_len)
            .map_err(|e| truncation(&path, &e, file_len).unwrap_or_else(|| fmt_err(e)))?;
        let chunks: Vec<Chunk> = cp
            .entries()
            .map(|c| Chunk {
                index: c.index,
                fourcc: c.entry.fourcc,
                flags: c.entry.flags,
                offset: c.entry.chunk_offset,
                length: c.entry.chunk_length,
                ulen: c.entry.chunk_ulen,
                name: c.name.to_owned(),
                blake3: c.entry.blake3,
            })
            .collect();
        let payload_start = cp.payload_start().unwrap_or(u64::MAX);
        let mut shards = HashMap::new();
        for (i, c) in chunks.iter().enumerate() {
            if let Some(id) = c.shard_id() {
                shards
                    .entry(id)
                    .and_modify(|s| *s = ShardSlot::Ambiguous)
                    .or_insert(ShardSlot::Chunk(i));
            }
        }
        let mut page_chunks = HashMap::new();
        for (i, c) in chunks.iter().enumerate() {
            if c.fourcc == FourCc::PHSH {
                // The shard a PHSH covers is named in its payload; the
                // standard chunk name `weights.shard{N}.phsh` says which to
                // decode without reading every PHSH up front.
                if let Some(shard) = c.name.strip_suffix(".phsh") {
                    page_chunks.entry(shard.to_owned()).or_insert(i);
                }
            }
        }
        drop((toc, strtab));
        drop(prefix);
        let n = chunks.len();
        Ok(AeroFile {
            path,
            local: false,
            source,
            remote: None,
            header,
            chunks,
            payload_start,
            shards,
            index: OnceLock::new(),
            page_chunks,
            pages: (0..n).map(|_| OnceLock::new()).collect(),
            shard_checks: (0..n).map(|_| OnceLock::new()).collect(),
            shape_order: OnceLock::new(),
        })
    }

    /// The local path the file was opened from ([`AeroFile::open`]); `None`
    /// for a URL or another source.
    pub fn local_path(&self) -> Option<&Path> {
        self.local.then_some(self.path.as_path())
    }

    /// The path (or label) the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// File size in bytes.
    pub fn len(&self) -> u64 {
        self.source.len()
    }

    /// Whether the file is empty (never true for an opened file).
    pub fn is_empty(&self) -> bool {
        self.source.len() == 0
    }

    /// Drops the remote source's cached copy of `off..off+len` (its bytes
    /// failed verification). Returns whether reading again can give other
    /// bytes: false for a local file or a source without a cache.
    pub(crate) fn drop_cached(&self, off: u64, len: u64) -> bool {
        self.remote.as_ref().is_some_and(|r| r.invalidate(off, len))
    }

    /// The weight shards tensors can name: (shard id, its TOC entry);
    /// ambiguous ids (two chunks of one name) are left out.
    pub(crate) fn weight_shards(&self) -> impl Iterator<Item = (&u64, &Chunk)> {
        self.shards.iter().filter_map(|(id, s)| match s {
            ShardSlot::Chunk(i) => self.chunks.get(*i).map(|c| (id, c)),
            ShardSlot::Ambiguous => None,
        })
    }

    /// The byte source behind this file.
    pub fn source(&self) -> &dyn ByteSource {
        self.source.as_source_ref().bytes()
    }

    /// The byte source behind this file, keeping a local file's concrete
    /// type (for the read core's fast paths).
    pub fn source_ref(&self) -> SourceRef<'_> {
        self.source.as_source_ref()
    }

    /// The local file behind this file, when it was opened from one (for
    /// positioned reads of it, and the writer's [`crate::write::FileRange`]).
    pub fn local_file(&self) -> Option<&std::fs::File> {
        self.source.local().map(LocalSource::file)
    }

    /// All TOC entries in order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Start of payloads: align16 after the string table (end of the IHSH range).
    pub fn payload_start(&self) -> u64 {
        self.payload_start
    }

    /// The first chunk with this fourcc.
    pub fn first(&self, fourcc: FourCc) -> Option<&Chunk> {
        self.chunks.iter().find(|c| c.fourcc == fourcc)
    }

    /// The first chunk with this fourcc and name.
    pub fn find(&self, fourcc: FourCc, name: &str) -> Option<&Chunk> {
        self.chunks
            .iter()
            .find(|c| c.fourcc == fourcc && c.name == name)
    }

    /// The WTSH chunk of a shard id.
    pub fn shard(&self, shard_id: u64) -> Result<&Chunk> {
        match self.shards.get(&shard_id) {
            Some(ShardSlot::Chunk(i)) => Ok(&self.chunks[*i]),
            Some(ShardSlot::Ambiguous) => Err(Error::Chunk {
                path: self.path.clone(),
                index: 0,
                fourcc: FourCc::WTSH,
                name: format!("weights.shard{shard_id}"),
                reason: "more than one WTSH chunk has this name".into(),
            }),
            None => Err(Error::MissingChunk {
                path: self.path.clone(),
                what: "WTSH for the requested shard",
            }),
        }
    }

    /// Stored bytes of a chunk, without decompression or verification.
    pub fn stored(&self, chunk: &Chunk) -> Result<Cow<'_, [u8]>> {
        self.source
            .bytes(chunk.offset, chunk.length)
            .map_err(|e| Error::io(&self.path, e))
    }

    fn chunk_err(&self, c: &Chunk, reason: impl Into<String>) -> Error {
        Error::Chunk {
            path: self.path.clone(),
            index: c.index,
            fourcc: c.fourcc,
            name: c.name.clone(),
            reason: reason.into(),
        }
    }

    /// The uncompressed payload of a chunk, without hash verification.
    /// Compressed payloads are inflated with memory bounded by `chunk_ulen`.
    pub fn payload(&self, chunk: &Chunk) -> Result<Cow<'_, [u8]>> {
        if chunk.flags.compressed() {
            if chunk.fourcc == FourCc::WTSH {
                return Err(self.chunk_err(chunk, "weight shards must not be compressed"));
            }
            if chunk.ulen > aero_format::limits::MAX_METADATA_ULEN {
                return Err(self.chunk_err(chunk, "chunk_ulen exceeds the 2 GiB cap"));
            }
            let stored = self.stored(chunk)?;
            decompress_exact(&stored, chunk.ulen)
                .map(Cow::Owned)
                .map_err(|r| self.chunk_err(chunk, r))
        } else {
            if chunk.length != chunk.ulen {
                return Err(self.chunk_err(
                    chunk,
                    format!(
                        "uncompressed chunk has chunk_length {} but chunk_ulen {}",
                        chunk.length, chunk.ulen
                    ),
                ));
            }
            self.stored(chunk)
        }
    }

    /// Reads a chunk and checks its BLAKE3. A mismatch is an error; an
    /// all-zero hash field yields [`ChunkStatus::HashNotRecorded`].
    pub fn read_verified(&self, chunk: &Chunk) -> Result<(Cow<'_, [u8]>, ChunkStatus)> {
        match self.read_verified_once(chunk) {
            // A cached copy may be damaged: drop it and read once more.
            Err(Error::HashMismatch { .. }) if self.drop_cached(chunk.offset, chunk.length) => {
                self.read_verified_once(chunk)
            }
            other => other,
        }
    }

    fn read_verified_once(&self, chunk: &Chunk) -> Result<(Cow<'_, [u8]>, ChunkStatus)> {
        let data = self.payload(chunk)?;
        if !chunk.hash_recorded() {
            return Ok((data, ChunkStatus::HashNotRecorded));
        }
        if *crate::verify::hash(&data).as_bytes() != chunk.blake3 {
            return Err(Error::HashMismatch {
                path: self.path.clone(),
                index: chunk.index,
                fourcc: chunk.fourcc,
                name: chunk.name.clone(),
            });
        }
        Ok((data, ChunkStatus::Verified))
    }

    /// The uncompressed, hash-verified TIDX payload (for borrowing iteration
    /// with [`aero_format::tidx::TensorIter`] without building an index).
    pub fn tidx_payload(&self) -> Result<Cow<'_, [u8]>> {
        let c = self.first(FourCc::TIDX).ok_or(Error::MissingChunk {
            path: self.path.clone(),
            what: "TIDX",
        })?;
        Ok(self.read_verified(c)?.0)
    }

    /// The decoded tensor index (first TIDX chunk), verified and cached.
    pub fn index(&self) -> Result<&TensorIndex> {
        if let Some(i) = self.index.get() {
            return Ok(i);
        }
        let c = self.first(FourCc::TIDX).ok_or(Error::MissingChunk {
            path: self.path.clone(),
            what: "TIDX",
        })?;
        let (data, _) = self.read_verified(c)?;
        let idx = TensorIndex::decode(&data).map_err(|e| Error::Metadata {
            path: self.path.clone(),
            chunk: "TIDX",
            reason: e.to_string(),
        })?;
        Ok(self.index.get_or_init(|| idx))
    }

    /// The MMSG manifest as JSON (digests as hex), if present.
    pub fn manifest(&self) -> Result<Option<serde_json::Value>> {
        let Some(c) = self.first(FourCc::MMSG) else {
            return Ok(None);
        };
        let (data, _) = self.read_verified(c)?;
        self.decode_manifest(&data).map(Some)
    }

    /// An MMSG payload as JSON (bounded by the file's size).
    pub(crate) fn decode_manifest(&self, data: &[u8]) -> Result<serde_json::Value> {
        let budget = crate::value::manifest_budget(self.len());
        crate::value::msgpack_to_json_within(data, budget.min(crate::value::json_budget(data)))
            .map_err(|e| Error::Metadata {
                path: self.path.clone(),
                chunk: "MMSG",
                reason: e.to_string(),
            })
    }

    /// The MJSN metadata object, if present. A payload that is not a JSON
    /// object is an error whether or not the TOC records its hash (spec
    /// §7): validation reports the same error.
    pub fn meta_json(&self) -> Result<Option<serde_json::Value>> {
        let Some(c) = self.first(FourCc::MJSN) else {
            return Ok(None);
        };
        let (data, _) = self.read_verified(c)?;
        self.decode_meta(&data).map(Some)
    }

    /// An MJSN payload as a JSON object.
    pub(crate) fn decode_meta(&self, data: &[u8]) -> Result<serde_json::Value> {
        let bad = |reason: String| Error::Metadata {
            path: self.path.clone(),
            chunk: "MJSN",
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_slice(data).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(bad(format!(
                "not a JSON object (the payload is a JSON {})",
                json_kind(&v)
            )));
        }
        Ok(v)
    }

    /// Model name and architecture from the manifest (falling back to MJSN).
    pub fn model(&self) -> (Option<String>, Option<String>) {
        let from = |v: &serde_json::Value, a: &str, b: &str| {
            v.pointer(a)
                .or_else(|| v.get(b))
                .and_then(|x| x.as_str())
                .map(str::to_owned)
        };
        let man = self.manifest().ok().flatten();
        let meta = self.meta_json().ok().flatten();
        let name = man
            .as_ref()
            .and_then(|m| from(m, "/model/name", ""))
            .or_else(|| {
                meta.as_ref()
                    .and_then(|m| from(m, "/model_name", "model_name"))
            });
        let arch = man
            .as_ref()
            .and_then(|m| from(m, "/model/architecture", ""))
            .or_else(|| {
                meta.as_ref()
                    .and_then(|m| from(m, "/architecture", "architecture"))
            });
        (name, arch)
    }

    /// How this file's TIDX orders shapes: [`ShapeOrder::Gguf`] for a file
    /// written by the reference GGUF converter, recognised by its MJSN
    /// ([`ShapeOrder::of_meta`]; see docs/FORMAT-NOTES.md), else row-major.
    /// A file without a readable MJSN is row-major (an unreadable MJSN is
    /// reported by validation, and the answer is not kept, so a remote read
    /// that failed once is tried again).
    pub fn shape_order(&self) -> ShapeOrder {
        if let Some(o) = self.shape_order.get() {
            return *o;
        }
        match self.meta_json() {
            Ok(meta) => *self.shape_order.get_or_init(|| {
                meta.as_ref()
                    .map_or(ShapeOrder::RowMajor, ShapeOrder::of_meta)
            }),
            Err(_) => ShapeOrder::RowMajor,
        }
    }

    /// The tensor's own bytes: `data_len`, less the alignment padding a
    /// tensor of a reference GGUF-origin file may carry (spec §16.5; see
    /// [`TensorInfo::tensor_len`]). Verified reads hand out this many bytes;
    /// the hashes checked still cover the whole stored range.
    pub fn tensor_len(&self, info: &TensorInfo) -> u64 {
        match info.len_check(ShapeOrder::RowMajor) {
            // Both orders give one exact size whenever both fit, so a
            // tensor that fits row-major exactly is whole in every file:
            // the MJSN is only read (once) for one that does not.
            LenCheck::Exact | LenCheck::Unchecked => info.data_len,
            _ => info.tensor_len(self.shape_order()),
        }
    }

    /// Resolves where a tensor's bytes live: (absolute offset, length),
    /// checking the range against its shard without overflow, and the
    /// shard's TOC entry itself ([`Chunk::weight_shard_problem`]). Every
    /// read of tensor bytes goes through here, verified or not, so a
    /// malformed shard entry is refused the same way on every path.
    pub fn tensor_range(&self, info: &TensorInfo) -> Result<(u64, u64)> {
        let shard = self.shard(info.shard_id).map_err(|_| Error::Tensor {
            path: self.path.clone(),
            name: info.name.clone(),
            reason: format!(
                "shard {} (weights.shard{}) is missing or ambiguous",
                info.shard_id, info.shard_id
            ),
        })?;
        if let Some(problem) = shard.weight_shard_problem() {
            return Err(Error::Tensor {
                path: self.path.clone(),
                name: info.name.clone(),
                reason: format!(
                    "its shard, chunk {} ({} '{}'), is malformed: {problem}",
                    shard.index, shard.fourcc, shard.name
                ),
            });
        }
        let end = info.data_off.checked_add(info.data_len);
        if end.is_none_or(|e| e > shard.length) {
            return Err(Error::Tensor {
                path: self.path.clone(),
                name: info.name.clone(),
                reason: format!(
                    "data_off {} + data_len {} exceeds shard {} length {}",
                    info.data_off, info.data_len, info.shard_id, shard.length
                ),
            });
        }
        Ok((shard.offset.saturating_add(info.data_off), info.data_len))
    }

    /// A tensor's bytes, zero-copy when mapped, **without verification**:
    /// for callers that check the bytes themselves or explicitly accept
    /// unverified data.
    pub fn tensor_unverified<'a>(&'a self, info: &'a TensorInfo) -> Result<TensorView<'a>> {
        let (off, _) = self.tensor_range(info)?;
        let len = self.tensor_len(info);
        let bytes = self
            .source
            .bytes(off, len)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(TensorView::new(info, bytes, None))
    }

    /// A streaming reader over a tensor's bytes, **without verification**
    /// (writers that verify while copying, such as [`crate::repack`], use it).
    pub fn tensor_reader_unverified<'a>(
        &'a self,
        info: &TensorInfo,
    ) -> Result<Box<dyn std::io::Read + Send + 'a>> {
        let (off, len) = self.tensor_range(info)?;
        crate::source::range_reader(self.source_ref(), off, len)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// A tensor by name, verified against the strongest hash the file
    /// records for its bytes ([`Protection`]): damaged bytes are never
    /// returned. Zero-copy when the file is mapped. The bytes are the
    /// tensor's own, [`AeroFile::tensor_len`] of them (a reference
    /// GGUF-origin tensor's alignment padding is left out); its shape as
    /// stored is in [`AeroFile::shape_order`].
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        self.view(self.tensor_info(name)?)
    }

    /// A tensor's index entry by name.
    pub fn tensor_info(&self, name: &str) -> Result<&TensorInfo> {
        let index = self.index()?;
        index.get(name).ok_or_else(|| Error::NoSuchTensor {
            path: self.path.clone(),
            name: name.into(),
            suggestions: crate::names::nearest(name, index.tensors().iter().map(|t| &*t.name)),
        })
    }

    /// The verified bytes of a tensor entry (see [`AeroFile::tensor`]).
    pub fn view<'a>(&'a self, info: &'a TensorInfo) -> Result<TensorView<'a>> {
        let (bytes, range) = self.verified(info)?;
        Ok(TensorView::new(info, bytes, range))
    }

    /// The verified bytes of a tensor entry, checked as [`AeroFile::view`]
    /// checks them, without the view around them: they borrow the file only
    /// (zero-copy when it is mapped), not `info`, which may be a temporary
    /// (an AEROSET part's entry carrying the index's `hash_b3`).
    pub fn verified_bytes<'a>(&'a self, info: &TensorInfo) -> Result<Cow<'a, [u8]>> {
        let (bytes, range) = self.verified(info)?;
        Ok(match range {
            Some(r) => sub_range(bytes, r),
            None => bytes,
        })
    }

    /// Reads and checks a tensor's bytes; the range, when given, is the
    /// tensor's part of them (pages around it, or its padding, were read
    /// too). The bytes are the tensor's own ([`AeroFile::tensor_len`]).
    fn verified<'a>(&'a self, info: &TensorInfo) -> Result<Verified<'a>> {
        let (off, len) = self.tensor_range(info)?;
        let used = self.tensor_len(info);
        let shard = self.shard(info.shard_id)?;
        let unverified = |len| {
            self.source
                .bytes(off, len)
                .map_err(|e| Error::io(&self.path, e))
        };
        if self.shard_known_good(shard) {
            // The whole shard matched its hash (see `verify_all`).
            return Ok((unverified(used)?, None));
        }
        match self.guard(info) {
            Guard::TensorHash => {
                // hash_b3 covers every stored byte, padding included.
                let want = info.hash_b3.unwrap_or_default();
                let (bytes, ok) = self.retrying(off, len, || {
                    let v = unverified(len)?;
                    let ok = *crate::verify::hash(&v).as_bytes() == want;
                    Ok((v, ok))
                })?;
                if ok {
                    let range = (used < len).then_some(0..used as usize);
                    Ok((bytes, range))
                } else {
                    Err(self.corrupt(info, shard, off, "hash_b3".into()))
                }
            }
            Guard::Pages(ph) => {
                let (bytes, range) = self.pages_read(info, shard, &ph, info.data_off, used)?;
                Ok((bytes, Some(range)))
            }
            Guard::Shard => {
                if self.source.stable() {
                    self.verify_shard(shard, info)?;
                    Ok((unverified(used)?, None))
                } else {
                    let bytes = self.shard_pass(shard, info, Some((info.data_off, used)))?;
                    Ok((Cow::Owned(bytes), None))
                }
            }
            Guard::Unprotected | Guard::Trusted => Err(Error::Unverifiable {
                path: self.path.clone(),
                tensor: info.name.clone(),
                shard: shard.name.clone(),
            }),
        }
    }

    /// The verified bytes of several tensors, handed to `each(i, bytes)`
    /// (`i` indexes `infos`) as each is complete: what a loader that wants
    /// many tensors calls. Each tensor is checked as [`AeroFile::view`]
    /// checks it. On a local file this is [`AeroFile::verified_bytes`] per
    /// tensor. On a remote file the tensors that record their own `hash_b3`
    /// are streamed together ([`crate::ByteSource::stream`]: several range
    /// requests in flight, neighbouring tensors sharing requests), each
    /// hashed as its bytes arrive and handed over when its last byte has
    /// matched; the others (checked by pages or their shard) follow one by
    /// one. A tensor whose streamed bytes fail their hash is read once more
    /// through [`AeroFile::verified_bytes`] (which drops cached copies); an
    /// error from `each` stops the reads and is returned.
    pub fn verified_tensors<'a>(
        &'a self,
        infos: &[&TensorInfo],
        each: &mut dyn FnMut(usize, Cow<'a, [u8]>) -> Result<()>,
    ) -> Result<()> {
        let mut streamed: Vec<(usize, u64, u64, [u8; 32])> = Vec::new();
        let mut others: Vec<usize> = Vec::new();
        for (i, info) in infos.iter().enumerate() {
            let (off, len) = self.tensor_range(info)?;
            match info.hash_b3 {
                Some(h) if !self.source.stable() && len > 0 => streamed.push((i, off, len, h)),
                _ => others.push(i),
            }
        }
        streamed.sort_by_key(|t| t.1);
        // Two entries over one range (or overlapping ones) are read alone.
        let mut last_end = 0u64;
        streamed.retain(|&(i, off, len, _)| {
            if off < last_end {
                others.push(i);
                return false;
            }
            last_end = off + len;
            true
        });
        if !streamed.is_empty() {
            let ranges: Vec<(u64, u64)> = streamed.iter().map(|t| (t.1, t.2)).collect();
            let mut k = 0usize;
            let mut buf: Vec<u8> = Vec::new();
            let mut hasher = blake3::Hasher::new();
            let mut failed: Option<Error> = None;
            let mut retry: Vec<usize> = Vec::new();
            let streamed_ok = self.source.stream(&ranges, &mut |at, bytes| {
                while let Some(&(_, off, len, _)) = streamed.get(k)
                    && at >= off + len
                {
                    k += 1;
                }
                let Some(&(i, off, len, want)) = streamed.get(k) else {
                    return Ok(());
                };
                if buf.is_empty() {
                    buf.reserve_exact(len as usize);
                }
                buf.extend_from_slice(bytes);
                hasher.update(bytes);
                if at + bytes.len() as u64 == off + len {
                    let ok = *hasher.finalize().as_bytes() == want;
                    hasher = blake3::Hasher::new();
                    let bytes = std::mem::take(&mut buf);
                    if ok {
                        if let Err(e) = each(i, Cow::Owned(bytes)) {
                            failed = Some(e);
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::Interrupted,
                                "stopped by the consumer",
                            ));
                        }
                    } else {
                        retry.push(i);
                    }
                    k += 1;
                }
                Ok(())
            });
            if let Some(e) = failed {
                return Err(e);
            }
            streamed_ok.map_err(|e| Error::io(&self.path, e))?;
            for i in retry {
                let (off, len) = self.tensor_range(infos[i])?;
                self.invalidate(off, len);
                each(i, self.verified_bytes(infos[i])?)?;
            }
        }
        for i in others {
            each(i, self.verified_bytes(infos[i])?)?;
        }
        Ok(())
    }

    /// Verified bytes of part of a tensor: `len` bytes starting `start`
    /// bytes into it (a few rows, say). They are checked against the PHSH
    /// pages that cover them when the shard has page hashes, so the read
    /// costs those pages (at most one page more than asked on each side),
    /// not the tensor; without page hashes the whole tensor is read and
    /// checked as [`AeroFile::view`] does (its `hash_b3`, else the shard
    /// hash). A shard already proven by [`AeroFile::verify_all`] is not
    /// hashed again. Zero-copy when the file is mapped.
    ///
    /// ```no_run
    /// let f = aero_io::AeroFile::open("model.aero")?;
    /// let info = f.tensor_info("embed.weight")?;
    /// let row_bytes = info.data_len / info.shape[0];
    /// let rows_10_to_12 = f.tensor_part(info, 10 * row_bytes, 2 * row_bytes)?;
    /// # Ok::<(), aero_io::Error>(())
    /// ```
    pub fn tensor_part<'a>(
        &'a self,
        info: &TensorInfo,
        start: u64,
        len: u64,
    ) -> Result<Cow<'a, [u8]>> {
        let own = self.tensor_len(info);
        let end = start
            .checked_add(len)
            .filter(|&e| e <= own)
            .ok_or_else(|| Error::Tensor {
                path: self.path.clone(),
                name: info.name.clone(),
                reason: format!(
                    "bytes {start}..{start}+{len} lie outside the tensor's {own} bytes"
                ),
            })?;
        if start == 0 && len == own {
            return self.verified_bytes(info);
        }
        let (off, _) = self.tensor_range(info)?;
        let shard = self.shard(info.shard_id)?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        if self.shard_known_good(shard) {
            return self
                .source
                .bytes(off + start, len)
                .map_err(|e| Error::io(&self.path, e));
        }
        if let Some(ph) = self.page_hashes(shard) {
            let (bytes, range) = self.pages_read(info, shard, &ph, info.data_off + start, len)?;
            return Ok(sub_range(bytes, range));
        }
        let whole = self.verified_bytes(info)?;
        Ok(sub_range(whole, start as usize..end as usize))
    }

    /// Hashes every weight shard once, on every core, and remembers the
    /// outcome: afterwards every verified read of a local file hands out
    /// bytes without hashing them again. This is what a loader that reads
    /// every tensor should call first — one pass over the weights (one hash
    /// per byte) instead of one hash per tensor plus page overlaps. Fails on
    /// the first shard that does not match; a shard whose TOC hash is not
    /// recorded is skipped (its tensors are still checked by their own
    /// hashes when read). On a remote source nothing is remembered.
    pub fn verify_all(&self) -> Result<()> {
        for c in self.chunks.iter().filter(|c| c.fourcc == FourCc::WTSH) {
            if !c.hash_recorded() {
                continue; // its tensors fall back to their own hashes
            }
            let check = match self.shard_checks.get(c.index as usize) {
                Some(cell) if self.source.stable() => {
                    cell.get_or_init(|| self.hash_shard(c)).clone()
                }
                _ => self.hash_shard(c),
            };
            match check {
                ShardCheck::Verified => {}
                ShardCheck::Mismatch => {
                    // Name the damaged tensor when a finer hash tells it.
                    return Err(self
                        .locate_damage(c)
                        .unwrap_or_else(|| Error::HashMismatch {
                            path: self.path.clone(),
                            index: c.index,
                            fourcc: c.fourcc,
                            name: c.name.clone(),
                        }));
                }
                ShardCheck::Unreadable(reason) => {
                    return Err(Error::Chunk {
                        path: self.path.clone(),
                        index: c.index,
                        fourcc: c.fourcc,
                        name: c.name.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    /// After weight shard `shard` failed its TOC hash: which tensor holds
    /// the damaged bytes, as the finer hashes the file records tell it —
    /// the first tensor of the shard (in offset order) whose bytes fail
    /// their own `hash_b3`, or a PHSH page that lies wholly inside them, as
    /// [`Error::Corrupt`] (file, tensor, shard, absolute offset of the range
    /// that failed, the check). `None` when no finer hash places the
    /// damage in one tensor: it lies in bytes only the shard hash covers (a
    /// tensor without `hash_b3` or pages, the padding between tensors), or
    /// in a page that several tensors share.
    ///
    /// Whole-shard checks (a verbatim repack, an export reading the whole
    /// shard, [`AeroFile::verify_all`]) learn of damage only at the shard's
    /// last byte and cannot tell which tensor it was in; they call this on
    /// their failure path. It reads the shard's tensors once more.
    pub fn locate_damage(&self, shard: &Chunk) -> Option<Error> {
        let idx = self.index().ok()?;
        let mut here: Vec<&TensorInfo> = idx
            .tensors()
            .iter()
            .filter(|t| self.shard(t.shard_id).is_ok_and(|c| c.index == shard.index))
            .collect();
        here.sort_by_key(|t| t.data_off);
        for t in here {
            let Ok((off, len)) = self.tensor_range(t) else {
                continue;
            };
            match self.guard(t) {
                Guard::TensorHash => {
                    let h = crate::verify::hash_range(self.source_ref(), off, len, |_| {});
                    if h.is_ok_and(|h| Some(*h.as_bytes()) != t.hash_b3) {
                        return Some(self.corrupt(t, shard, off, "hash_b3".into()));
                    }
                }
                Guard::Pages(ph) => {
                    // A failing page names this tensor only when it holds
                    // nothing else: a page shared with another tensor (or
                    // with padding) cannot say whose bytes changed.
                    if let Err(e @ Error::Corrupt { offset, .. }) =
                        self.pages_read(t, shard, &ph, t.data_off, t.data_len)
                    {
                        let page_end = offset
                            .saturating_add(ph.page_size)
                            .min(shard.offset.saturating_add(shard.length));
                        if offset >= off && page_end <= off.saturating_add(len) {
                            return Some(e);
                        }
                    }
                }
                Guard::Shard | Guard::Unprotected | Guard::Trusted => {}
            }
        }
        None
    }

    /// What a verified read of `info` checks its bytes against.
    pub fn protection(&self, info: &TensorInfo) -> Protection {
        match self.guard(info) {
            Guard::TensorHash => Protection::TensorHash,
            Guard::Pages(ph) => Protection::Pages {
                page_size: ph.page_size,
            },
            Guard::Shard => Protection::Shard,
            Guard::Unprotected | Guard::Trusted => Protection::Unprotected,
        }
    }

    pub(crate) fn guard(&self, info: &TensorInfo) -> Guard {
        if info.hash_b3.is_some() {
            return Guard::TensorHash;
        }
        let Ok(shard) = self.shard(info.shard_id) else {
            return Guard::Unprotected;
        };
        if let Some(ph) = self.page_hashes(shard) {
            return Guard::Pages(ph);
        }
        if shard.hash_recorded() {
            Guard::Shard
        } else {
            Guard::Unprotected
        }
    }

    /// The page hashes covering a weight shard, when the file has a usable
    /// PHSH for it: the chunk verifies against its TOC hash, decodes, names
    /// this shard and holds one digest per page. Decoded once.
    pub fn page_hashes(&self, shard: &Chunk) -> Option<Arc<PageHashes>> {
        let &i = self.page_chunks.get(&shard.name)?;
        self.pages
            .get(i)?
            .get_or_init(|| {
                let c = self.chunks.get(i)?;
                let (payload, status) = self.read_verified(c).ok()?;
                if status != ChunkStatus::Verified {
                    return None;
                }
                let ph = crate::integrity::decode_phsh(&payload).ok()?;
                let want = crate::integrity::page_count(shard.length, ph.page_size);
                let count_ok =
                    ph.digests.len() as u64 == want || (shard.length == 0 && ph.digests.len() == 1);
                (ph.shard_name == shard.name && count_ok).then(|| Arc::new(ph))
            })
            .clone()
    }

    fn corrupt(&self, info: &TensorInfo, shard: &Chunk, offset: u64, check: String) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            tensor: info.name.clone(),
            shard: shard.name.clone(),
            offset,
            check,
        }
    }

    /// Runs a read-and-check `attempt` (returning the value and whether it
    /// verified); when it fails to verify and the source holds a cached copy
    /// of `off..off+len`, drops the copy and tries once more. Returns the
    /// last attempt's value and verdict.
    fn retrying<T>(
        &self,
        off: u64,
        len: u64,
        mut attempt: impl FnMut() -> Result<(T, bool)>,
    ) -> Result<(T, bool)> {
        let first = attempt()?;
        if !first.1 && self.invalidate(off, len) {
            return attempt();
        }
        Ok(first)
    }

    /// Drops cached copies of `off..off+len`: the range as one read, and as
    /// the [`crate::verify::WINDOW`]-sized reads a windowed pass makes.
    pub(crate) fn invalidate(&self, off: u64, len: u64) -> bool {
        let mut any = self.drop_cached(off, len);
        let w = crate::verify::WINDOW;
        let mut at = 0u64;
        while len > w && at < len {
            let n = (len - at).min(w);
            any |= self.drop_cached(off + at, n);
            at += n;
        }
        any
    }

    /// Reads the pages covering `len` bytes at shard offset `a` (part of
    /// `info`), checks each against the PHSH, and returns the pages' bytes
    /// with the range of them that was asked for.
    fn pages_read<'a>(
        &'a self,
        info: &TensorInfo,
        shard: &Chunk,
        ph: &PageHashes,
        a: u64,
        len: u64,
    ) -> Result<(Cow<'a, [u8]>, std::ops::Range<usize>)> {
        use rayon::prelude::*;
        let Some((start, end)) = crate::integrity::page_span(ph.page_size, a, len, shard.length)
        else {
            return Ok((Cow::Borrowed(&[]), 0..0));
        };
        let first = start / ph.page_size;
        let step = usize::try_from(ph.page_size).unwrap_or(usize::MAX);
        let abs = shard.offset + start;
        let ((bytes, bad), _) = self.retrying(abs, end - start, || {
            let bytes = self
                .source
                .bytes(abs, end - start)
                .map_err(|e| Error::io(&self.path, e))?;
            let bad = bytes
                .par_chunks(step.max(1))
                .enumerate()
                .find_first(|(i, page)| {
                    ph.digests.get(first as usize + i) != Some(crate::verify::hash(page).as_bytes())
                })
                .map(|(i, _)| i as u64);
            Ok(((bytes, bad), bad.is_none()))
        })?;
        match bad {
            None => {
                let from = (a - start) as usize;
                Ok((bytes, from..from + len as usize))
            }
            Some(i) => Err(self.corrupt(
                info,
                shard,
                abs + i * ph.page_size,
                format!("PHSH page {}", first + i),
            )),
        }
    }

    /// Hashes a whole weight shard once (kept for the life of this file: a
    /// stable source does not change while open) and fails for `info` when
    /// it does not match the TOC.
    pub(crate) fn verify_shard(&self, shard: &Chunk, info: &TensorInfo) -> Result<()> {
        let check = match self.shard_checks.get(shard.index as usize) {
            Some(cell) => cell.get_or_init(|| self.hash_shard(shard)).clone(),
            None => self.hash_shard(shard),
        };
        match check {
            ShardCheck::Verified => Ok(()),
            ShardCheck::Mismatch => Err(self.corrupt(
                info,
                shard,
                shard.offset,
                format!("the {} BLAKE3", shard.name),
            )),
            ShardCheck::Unreadable(e) => Err(Error::Chunk {
                path: self.path.clone(),
                index: shard.index,
                fourcc: shard.fourcc,
                name: shard.name.clone(),
                reason: e,
            }),
        }
    }

    /// Whether a shard has been hashed whole and matched its TOC hash.
    pub(crate) fn shard_known_good(&self, shard: &Chunk) -> bool {
        self.source.stable()
            && self
                .shard_checks
                .get(shard.index as usize)
                .and_then(OnceLock::get)
                .is_some_and(|c| matches!(c, ShardCheck::Verified))
    }

    fn hash_shard(&self, shard: &Chunk) -> ShardCheck {
        if let Some(problem) = shard.weight_shard_problem() {
            return ShardCheck::Unreadable(problem);
        }
        let attempt = || match crate::verify::hash_range(
            self.source_ref(),
            shard.offset,
            shard.length,
            |_| {},
        ) {
            Ok(h) => Ok(((), *h.as_bytes() == shard.blake3)),
            Err(e) => Err(Error::io(&self.path, e)),
        };
        match self.retrying(shard.offset, shard.length, attempt) {
            Ok(((), true)) => ShardCheck::Verified,
            Ok(((), false)) => ShardCheck::Mismatch,
            Err(e) => ShardCheck::Unreadable(e.to_string()),
        }
    }

    /// One pass over a whole shard that checks its BLAKE3 and keeps the bytes
    /// of `keep` (shard-relative offset, length): how an unstable (remote)
    /// source serves a tensor protected only by its shard hash.
    fn shard_pass(
        &self,
        shard: &Chunk,
        info: &TensorInfo,
        keep: Option<(u64, u64)>,
    ) -> Result<Vec<u8>> {
        if !shard.hash_recorded() {
            return Err(Error::Unverifiable {
                path: self.path.clone(),
                tensor: info.name.clone(),
                shard: shard.name.clone(),
            });
        }
        let attempt = || {
            let (ka, kl) = keep.unwrap_or((0, 0));
            let mut out = Vec::with_capacity(usize::try_from(kl).unwrap_or(0).min(1 << 30));
            let mut h = blake3::Hasher::new();
            let mut pos = 0u64;
            crate::verify::for_each_window(
                self.source_ref(),
                shard.offset,
                shard.length,
                |w| {
                    h.update(w);
                    let (s, e) = (pos, pos + w.len() as u64);
                    let (from, to) = (ka.max(s), (ka + kl).min(e));
                    if from < to {
                        out.extend_from_slice(&w[(from - s) as usize..(to - s) as usize]);
                    }
                    pos = e;
                },
                |_| {},
            )
            .map_err(|e| Error::io(&self.path, e))?;
            Ok((out, *h.finalize().as_bytes() == shard.blake3))
        };
        match self.retrying(shard.offset, shard.length, attempt)? {
            (out, true) => Ok(out),
            (_, false) => Err(self.corrupt(
                info,
                shard,
                shard.offset,
                format!("the {} BLAKE3", shard.name),
            )),
        }
    }

    /// Whether this file is an AEROSET index (a TIDX but no weight shards).
    pub fn is_set_index(&self) -> bool {
        self.first(FourCc::WTSH).is_none() && self.first(FourCc::TIDX).is_some()
    }
}

/// What kind of JSON value `v` is, for messages.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// `range` of `bytes`, without copying when borrowed or when it is the whole
/// buffer.
fn sub_range(bytes: Cow<'_, [u8]>, range: std::ops::Range<usize>) -> Cow<'_, [u8]> {
    match bytes {
        Cow::Borrowed(b) => Cow::Borrowed(b.get(range).unwrap_or_default()),
        Cow::Owned(v) if range == (0..v.len()) => Cow::Owned(v),
        Cow::Owned(v) => Cow::Owned(v.get(range).unwrap_or_default().to_vec()),
    }
}
