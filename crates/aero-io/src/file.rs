//! [`AeroFile`]: an opened `.aero` file.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aero_format::{ControlPlane, DType, FILE_HEADER_LEN, FileHeader, FourCc, TOC_HEADER_LEN};

use crate::chunk::{Chunk, ChunkStatus, decompress_exact};
use crate::error::{Error, Result};
use crate::index::{TensorIndex, TensorInfo};
use crate::source::{ByteSource, LocalSource};
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
    source: Box<dyn ByteSource>,
    header: FileHeader,
    chunks: Vec<Chunk>,
    payload_start: u64,
    shards: HashMap<u64, ShardSlot>,
    index: OnceLock<TensorIndex>,
}

impl std::fmt::Debug for AeroFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeroFile")
            .field("path", &self.path)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl AeroFile {
    /// Opens a local file (memory-mapped, with a `pread` fallback) and checks
    /// its header, TOC and string table (spec §10).
    pub fn open(path: impl AsRef<Path>) -> Result<AeroFile> {
        let path = path.as_ref();
        let src = LocalSource::open(path).map_err(|e| Error::io(path, e))?;
        Self::from_source(path, Box::new(src))
    }

    /// Opens a remote file with range reads: `http(s)://` URLs over HTTP,
    /// and with the `s3` feature `s3://`, `gs://` and `az://` objects
    /// ([`crate::remote::open_source`]). Other schemes are an error.
    #[cfg(feature = "http")]
    pub fn open_url(url: &str, opts: crate::remote::RemoteOptions) -> Result<AeroFile> {
        let src = crate::remote::open_source(url, opts).map_err(|e| Error::io(url, e))?;
        Self::from_source(url, src)
    }

    /// Opens any [`ByteSource`]; `label` names it in errors.
    pub fn from_source(label: impl Into<PathBuf>, source: Box<dyn ByteSource>) -> Result<AeroFile> {
        let path = label.into();
        let file_len = source.len();
        let fmt_err = |e| Error::Format {
            path: path.clone(),
            source: e,
        };
        let io_err = |e| Error::io(path.clone(), e);
        if file_len < FILE_HEADER_LEN as u64 {
            return Err(fmt_err(aero_format::Error {
                kind: aero_format::ErrorKind::Truncated {
                    need: FILE_HEADER_LEN as u64,
                },
                field: aero_format::Field::Magic,
                offset: 0,
                index: None,
            }));
        }
        // One guess-sized read usually covers header, TOC and string table
        // (what a remote source wants: one range request); a second read of
        // exactly the missing prefix only if the guess was short.
        let mut prefix = source
            .bytes(0, file_len.min(PREFIX_GUESS))
            .map_err(io_err)?;
        let header = FileHeader::parse(&prefix).map_err(fmt_err)?;
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
        let cp = ControlPlane::from_parts(head, &toc, &strtab, file_len).map_err(fmt_err)?;
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
        drop((toc, strtab));
        drop(prefix);
        Ok(AeroFile {
            path,
            source,
            header,
            chunks,
            payload_start,
            shards,
            index: OnceLock::new(),
        })
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

    /// The byte source behind this file.
    pub fn source(&self) -> &dyn ByteSource {
        self.source.as_ref()
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
            Err(Error::HashMismatch { .. })
                if self.source.invalidate(chunk.offset, chunk.length) =>
            {
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
        let budget = crate::value::manifest_budget(self.len());
        crate::value::msgpack_to_json_within(&data, budget.min(crate::value::json_budget(&data)))
            .map(Some)
            .map_err(|e| Error::Metadata {
                path: self.path.clone(),
                chunk: "MMSG",
                reason: e.to_string(),
            })
    }

    /// The MJSN metadata object, if present.
    pub fn meta_json(&self) -> Result<Option<serde_json::Value>> {
        let Some(c) = self.first(FourCc::MJSN) else {
            return Ok(None);
        };
        let (data, _) = self.read_verified(c)?;
        let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| Error::Metadata {
            path: self.path.clone(),
            chunk: "MJSN",
            reason: e.to_string(),
        })?;
        if !v.is_object() {
            return Err(Error::Metadata {
                path: self.path.clone(),
                chunk: "MJSN",
                reason: "not a JSON object".into(),
            });
        }
        Ok(Some(v))
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

    /// Resolves where a tensor's bytes live: (absolute offset, length),
    /// checking the range against its shard without overflow.
    pub fn tensor_range(&self, info: &TensorInfo) -> Result<(u64, u64)> {
        let shard = self.shard(info.shard_id).map_err(|_| Error::Tensor {
            path: self.path.clone(),
            name: info.name.clone(),
            reason: format!(
                "shard {} (weights.shard{}) is missing or ambiguous",
                info.shard_id, info.shard_id
            ),
        })?;
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

    /// A tensor's bytes, zero-copy when mapped, without checking `hash_b3`.
    pub fn tensor_unverified<'a>(&'a self, info: &'a TensorInfo) -> Result<TensorView<'a>> {
        let (off, len) = self.tensor_range(info)?;
        let bytes = self
            .source
            .bytes(off, len)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(TensorView::new(info, bytes))
    }

    /// A streaming reader over a tensor's bytes (no `hash_b3` check: writers
    /// that re-hash while copying use this).
    pub fn tensor_reader<'a>(
        &'a self,
        info: &TensorInfo,
    ) -> Result<Box<dyn std::io::Read + Send + 'a>> {
        let (off, len) = self.tensor_range(info)?;
        crate::source::range_reader(self.source.as_ref(), off, len)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// A tensor by name. When the entry carries `hash_b3`, the bytes are
    /// verified and a mismatch is an error: damaged bytes are never returned.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        let info = self.index()?.get(name).ok_or_else(|| Error::NoSuchTensor {
            path: self.path.clone(),
            name: name.into(),
        })?;
        let mut view = self.tensor_unverified(info)?;
        let ok = |v: &TensorView<'_>| {
            info.hash_b3
                .is_none_or(|h| *crate::verify::hash(v.bytes()).as_bytes() == h)
        };
        if !ok(&view) {
            // A cached copy may be damaged: drop it and read once more.
            let (off, len) = self.tensor_range(info)?;
            if self.source.invalidate(off, len) {
                view = self.tensor_unverified(info)?;
            }
        }
        if !ok(&view) {
            return Err(Error::TensorHashMismatch {
                path: self.path.clone(),
                name: name.into(),
            });
        }
        Ok(view)
    }

    /// Whether this file is an AEROSET index (a TIDX but no weight shards).
    pub fn is_set_index(&self) -> bool {
        self.first(FourCc::WTSH).is_none() && self.first(FourCc::TIDX).is_some()
    }

    /// Counts of each dtype, for summaries.
    pub fn dtype_histogram(&self) -> Result<Vec<(DType, usize)>> {
        let mut v: Vec<(DType, usize)> = Vec::new();
        for t in self.index()?.tensors() {
            match v.iter_mut().find(|(d, _)| *d == t.dtype) {
                Some((_, n)) => *n += 1,
                None => v.push((t.dtype, 1)),
            }
        }
        Ok(v)
    }
}
