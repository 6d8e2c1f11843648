//! [`AeroFile`]: an opened `.aero` file: opening it (header, TOC, the
//! kind of input it really is), its chunks and its metadata (TIDX, MMSG,
//! MJSN). Reading tensor bytes under the trust rules is in `verified`.

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

mod verified;

pub(crate) use verified::Guard;
use verified::ShardCheck;

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
