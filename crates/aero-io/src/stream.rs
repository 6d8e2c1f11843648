//! The streaming model writer (spec §4–§11).
//!
//! Tensor bytes pass through exactly once, in fixed-size buffers, while the
//! shard, tensor (`hash_b3`) and page (PHSH) hashes are computed on the way.
//! Memory does not grow with tensor or model size.
//!
//! File order vs TOC order: the TOC is always in the standard order
//! (\[IHSH\], MJSN, MMSG, TIDX, then WTSH \[+ PHSH\] per shard). When per-tensor
//! hashes are requested the TIDX payload is only known after the weights have
//! streamed, so it is placed *after* the shards in the file (readers follow
//! offsets, spec §1). Without tensor hashes, `Layout::Reference` produces
//! exactly the bytes the reference streaming writer produces.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use aero_format::layout::{Prologue, align_up};
use aero_format::{ChunkFlags, DType, FourCc, TocEntry};

use crate::encode::{Manifest, ManifestChunk, ManifestShard, encode_tidx};
use crate::error::{Error, Result};
use crate::index::TensorInfo;
use crate::integrity::{PageHashes, control_digest, encode_ihsh, encode_phsh};
use crate::output::Output;
use crate::writer::compress;
use aero_format::encode::string_table;

/// Where tensors go inside shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Every `data_off` a multiple of 64 and every WTSH payload at a multiple
    /// of 4096, zero padding: every tensor of every dtype can be viewed as a
    /// typed slice straight from a mapping, and shards suit direct I/O.
    #[default]
    Aligned,
    /// Tensors packed back to back, exactly as the reference writer does.
    Reference,
}

impl Layout {
    fn tensor_align(self) -> u64 {
        match self {
            Layout::Aligned => 64,
            Layout::Reference => 1,
        }
    }
    fn shard_align(self) -> u64 {
        match self {
            Layout::Aligned => 4096,
            Layout::Reference => 16,
        }
    }
}

/// Default cap on one shard's payload (2 GiB).
pub const DEFAULT_MAX_SHARD_BYTES: u64 = 2 << 30;

/// Default PHSH page size of files written in the aligned layout: 1 MiB.
///
/// Measured on this project's 2-core test machine (BLAKE3 of 1 GiB in
/// pages, one thread): 16 KiB pages hash at 0.65× the speed of 1 MiB ones,
/// 64 KiB at 0.8×, 256 KiB and up at full speed (BLAKE3's SIMD needs a
/// few dozen 1 KiB chunks per call). 1 MiB costs 34 bytes of PHSH per MiB
/// of weights (0.003 %), and a verified read of part of a tensor (a slice,
/// a remote range) reads at most one page more than it needs on each side.
/// The reference's 4 MiB default quadruples that overhead for no gain.
pub const DEFAULT_PAGE_HASH_SIZE: u64 = 1 << 20;

/// Options for [`write_model`].
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Model name (MMSG `model.name`, MJSN `model_name`).
    pub model_name: String,
    /// Architecture.
    pub architecture: String,
    /// Extra MJSN keys (model_name / architecture are always set from above).
    pub extra_meta: serde_json::Map<String, serde_json::Value>,
    /// Start a new shard when adding a tensor would exceed this.
    pub max_shard_bytes: u64,
    /// File UUID; random when `None`.
    pub uuid: Option<[u8; 16]>,
    /// Tensor placement.
    pub layout: Layout,
    /// Record `hash_b3` for every tensor (on by default: a verified read of
    /// one tensor then costs one hash of that tensor).
    pub tensor_hash: bool,
    /// Write an IHSH control-plane digest.
    pub control_integrity: bool,
    /// Write PHSH page hashes with this page size (on by default, at
    /// [`DEFAULT_PAGE_HASH_SIZE`]: partial reads verify at page cost).
    pub page_hashes: Option<u64>,
    /// Id of the first shard (AEROSET parts use global shard ids).
    pub first_shard_id: u64,
    /// Tensors whose input bytes failed verification and are copied anyway
    /// (`repack --force`): the output never vouches for them. They get no
    /// `hash_b3`, and every shard holding one gets no TOC hash (all zero:
    /// "not recorded") and no page hashes, so readers report them as
    /// unverifiable instead of trusting fresh hashes over damaged bytes.
    pub unverified: Vec<String>,
    /// Make the file durable before it appears under its name: write-back
    /// starts while streaming and the file is fsynced before the rename
    /// (the default). `false` skips both, like `cp`: the rename stays
    /// atomic, but a crash soon after may lose data.
    pub durable: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            model_name: "converted".into(),
            architecture: "unknown".into(),
            extra_meta: serde_json::Map::new(),
            max_shard_bytes: DEFAULT_MAX_SHARD_BYTES,
            uuid: None,
            layout: Layout::Aligned,
            tensor_hash: true,
            control_integrity: false,
            page_hashes: Some(DEFAULT_PAGE_HASH_SIZE),
            first_shard_id: 0,
            unverified: Vec::new(),
            durable: true,
        }
    }
}

impl WriteOptions {
    /// What the reference writer produces: tensors packed back to back, no
    /// tensor or page hashes. With the same inputs and UUID the output is
    /// byte-identical to the reference writer's.
    pub fn reference() -> WriteOptions {
        WriteOptions {
            layout: Layout::Reference,
            tensor_hash: false,
            page_hashes: None,
            ..WriteOptions::default()
        }
    }
}

/// One tensor to write: metadata and a source of exactly `data_len` bytes.
pub struct TensorSpec<'a> {
    /// Unique name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Byte length the source will supply.
    pub data_len: u64,
    /// Extra TIDX keys as raw MessagePack (`quant_id`, `quant_params`, unknown keys).
    pub extras: Vec<(String, Vec<u8>)>,
    /// The bytes.
    pub source: Box<dyn Read + Send + 'a>,
    /// The same bytes as a range of a local file, when they are one: the
    /// writer then reads the range with positioned reads, `source` is not
    /// read, and an unchanged shard of a verified input can be checked and
    /// hashed in one pass (see [`SourceChunk`]).
    pub file_range: Option<FileRange<'a>>,
}

/// A tensor's bytes as a range of a local file (see [`TensorSpec::file_range`]).
pub struct FileRange<'a> {
    /// The file.
    pub file: &'a File,
    /// Offset of the tensor's first byte.
    pub offset: u64,
    /// Called with every block of the bytes as they are written (input
    /// verification, progress).
    pub observers: Vec<Box<dyn Observer + 'a>>,
    /// The verified input chunk the bytes lie in, if any (see [`SourceChunk`]).
    pub chunk: Option<SourceChunk<'a>>,
}

/// An input chunk with a recorded BLAKE3 that a [`FileRange`] lies in,
/// and the observer that verifies it as the bytes stream (for example the
/// internal `tee::TeeReader`).
///
/// When an output shard is a byte-for-byte copy of one such chunk — the same
/// tensors at the same offsets, the same length, zero gaps: what `repack`
/// writes when the layout does not change — the writer hashes the chunk
/// once, checks the digest against `blake3` and uses it for the output
/// shard; the verifiers are then not run. Otherwise each `verifier` is fed
/// like any other observer.
pub struct SourceChunk<'a> {
    /// Chunk name, for errors.
    pub name: String,
    /// Absolute offset of the chunk in the [`FileRange::file`].
    pub offset: u64,
    /// Chunk length.
    pub length: u64,
    /// Its recorded BLAKE3.
    pub blake3: [u8; 32],
    /// Verifies the chunk when the shortcut does not apply.
    pub verifier: Box<dyn Observer + 'a>,
}

/// Sees a tensor's bytes as the writer streams them from a [`FileRange`]
/// (in pieces of at most 256 KiB).
pub trait Observer: Send {
    /// Before the first block.
    fn start(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Each block, in order.
    fn bytes(&mut self, block: &[u8]) -> io::Result<()>;
    /// After the last block; an error aborts the write.
    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for TensorSpec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorSpec")
            .field("name", &self.name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .finish()
    }
}

/// What was written.
#[derive(Clone, Debug)]
pub struct WriteSummary {
    /// Total file size.
    pub file_size: u64,
    /// Number of shards.
    pub shards: usize,
    /// The UUID used.
    pub uuid: [u8; 16],
    /// The TIDX entries as written (with hash_b3 when requested).
    pub tensors: Vec<TensorInfo>,
}

/// A random UUID without an extra dependency: BLAKE3 of the time, the process
/// id, a per-process random hasher key and a counter.
pub fn random_uuid() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(&now.as_nanos().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let mut s = std::collections::hash_map::RandomState::new().build_hasher();
    s.write_u64(0);
    h.update(&s.finish().to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out[6] = (out[6] & 0x0f) | 0x40; // RFC 4122 version 4
    out[8] = (out[8] & 0x3f) | 0x80;
    out
}

/// Checks tensor metadata before anything is written.
pub fn check_specs(specs: &[TensorSpec<'_>]) -> Result<()> {
    if specs.is_empty() {
        return Err(Error::Invalid("no tensors to write".into()));
    }
    let mut names = std::collections::HashSet::with_capacity(specs.len());
    for t in specs {
        if let Some(m) = &t.file_range {
            // Fail before writing anything rather than at the end of a long
            // stream (and name the tensor).
            let size = m
                .file
                .metadata()
                .map_err(|e| Error::Input {
                    tensor: t.name.clone(),
                    source: e,
                })?
                .len();
            if m.offset
                .checked_add(t.data_len)
                .is_none_or(|end| end > size)
            {
                return Err(Error::Input {
                    tensor: t.name.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "bytes {}..+{} lie past the end of the input file ({size} bytes)",
                            m.offset, t.data_len
                        ),
                    ),
                });
            }
        }
        if t.name.is_empty() {
            return Err(Error::Invalid("a tensor has an empty name".into()));
        }
        if t.name.len() as u64 > aero_format::limits::MAX_NAME_LEN {
            return Err(Error::Invalid(format!(
                "tensor name of {} bytes exceeds {} bytes: '{}…'",
                t.name.len(),
                aero_format::limits::MAX_NAME_LEN,
                t.name.chars().take(40).collect::<String>()
            )));
        }
        if !names.insert(t.name.as_str()) {
            return Err(Error::Invalid(format!(
                "duplicate tensor name '{}'",
                t.name
            )));
        }
        if t.shape.len() as u64 > aero_format::limits::MAX_RANK {
            return Err(Error::Invalid(format!(
                "tensor '{}': rank {} exceeds 64",
                t.name,
                t.shape.len()
            )));
        }
        let elems = t
            .shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "tensor '{}': shape {:?} overflows",
                    t.name, t.shape
                ))
            })?;
        if let Some(size) = t.dtype.size() {
            let want = elems.checked_mul(size).ok_or_else(|| {
                Error::Invalid(format!(
                    "tensor '{}': shape {:?} × {} bytes overflows",
                    t.name, t.shape, size
                ))
            })?;
            if want != t.data_len {
                return Err(Error::Invalid(format!(
                    "tensor '{}': {} × shape {:?} is {want} bytes but {} bytes were given",
                    t.name, t.dtype, t.shape, t.data_len
                )));
            }
        }
    }
    Ok(())
}

/// Shard assignment: for each tensor (local shard index, data_off), and per
/// shard its payload length and tensor count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardPlan {
    /// (shard index, data_off) per tensor.
    pub placement: Vec<(usize, u64)>,
    /// Payload length of each shard.
    pub shard_len: Vec<u64>,
    /// Tensors in each shard.
    pub shard_tensors: Vec<u64>,
}

impl ShardPlan {
    /// Walks tensors in order; a new shard starts when the current one is
    /// non-empty and adding the tensor would exceed `max` (spec §11).
    pub fn new(lens: impl IntoIterator<Item = u64>, max: u64, layout: Layout) -> Result<ShardPlan> {
        let overflow = || Error::Invalid("shard size overflows u64".into());
        let mut p = ShardPlan {
            placement: Vec::new(),
            shard_len: Vec::new(),
            shard_tensors: Vec::new(),
        };
        for len in lens {
            let (cur_len, cur_n) = match (p.shard_len.last(), p.shard_tensors.last()) {
                (Some(l), Some(n)) => (*l, *n),
                _ => (0, 0),
            };
            let off = align_up(cur_len, layout.tensor_align()).ok_or_else(overflow)?;
            let end = off.checked_add(len).ok_or_else(overflow)?;
            if p.shard_len.is_empty() || (cur_n > 0 && end > max) {
                p.shard_len.push(len);
                p.shard_tensors.push(1);
                p.placement.push((p.shard_len.len() - 1, 0));
            } else {
                let i = p.shard_len.len() - 1;
                p.shard_len[i] = end;
                p.shard_tensors[i] += 1;
                p.placement.push((i, off));
            }
        }
        Ok(p)
    }
}

struct Planned {
    /// TOC-order chunk descriptors.
    fourcc: Vec<FourCc>,
    names: Vec<String>,
    flags: Vec<u32>,
    /// TOC positions of each kind of chunk.
    ihsh: Option<usize>,
    mjsn: usize,
    mmsg: usize,
    tidx: usize,
    wtsh: Vec<usize>,
    phsh: Vec<Option<usize>>,
}

fn plan_chunks(opts: &WriteOptions, shard_len: &[u64]) -> Planned {
    let mut p = Planned {
        fourcc: Vec::new(),
        names: Vec::new(),
        flags: Vec::new(),
        ihsh: None,
        mjsn: 0,
        mmsg: 0,
        tidx: 0,
        wtsh: Vec::new(),
        phsh: Vec::new(),
    };
    let push = |p: &mut Planned, fc: FourCc, name: String| {
        let flags = aero_format::encode::standard_flags(fc).0;
        p.fourcc.push(fc);
        p.names.push(name);
        p.flags.push(flags);
        p.fourcc.len() - 1
    };
    if opts.control_integrity {
        p.ihsh = Some(push(&mut p, FourCc::IHSH, "control.integrity".into()));
    }
    p.mjsn = push(&mut p, FourCc::MJSN, "meta.json".into());
    p.mmsg = push(&mut p, FourCc::MMSG, "manifest".into());
    p.tidx = push(&mut p, FourCc::TIDX, "tensors".into());
    for (s, &len) in shard_len.iter().enumerate() {
        let id = opts.first_shard_id + s as u64;
        let w = push(&mut p, FourCc::WTSH, format!("weights.shard{id}"));
        p.wtsh.push(w);
        // An empty shard has no pages: its PHSH would hold no digests,
        // which the reference package's validator rejects (spec §16.7).
        let ph = opts
            .page_hashes
            .filter(|_| len > 0)
            .map(|_| push(&mut p, FourCc::PHSH, format!("weights.shard{id}.phsh")));
        p.phsh.push(ph);
    }
    p
}

/// The output file: counts bytes written, writes zero padding, and starts
/// write-back of what is behind it so the final `fsync` has little to wait
/// for (see [`crate::kernel::start_writeback`]).
struct Out<'f> {
    w: io::BufWriter<&'f mut File>,
    pos: u64,
    /// Write-back has been started for every byte before this offset;
    /// `u64::MAX` when the output is not to be made durable.
    written_back: u64,
}

impl<'f> Out<'f> {
    fn new(file: &'f mut File, durable: bool) -> Self {
        Out {
            w: io::BufWriter::with_capacity(256 << 10, file),
            pos: 0,
            written_back: if durable { 0 } else { u64::MAX },
        }
    }

    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.w.write_all(b)?;
        self.pos += b.len() as u64;
        // Everything but the last step is in the file (the buffer is smaller).
        crate::pipeline::writeback_behind(self.w.get_ref(), &mut self.written_back, self.pos);
        Ok(())
    }

    fn pad_to(&mut self, target: u64) -> io::Result<()> {
        const Z: [u8; 4096] = [0; 4096];
        while self.pos < target {
            let n = (target - self.pos).min(Z.len() as u64) as usize;
            self.write(&Z[..n])?;
        }
        Ok(())
    }

    /// Flushes the buffer and returns the file, for positioned writes at
    /// `self.pos`; follow with [`Out::advance`].
    fn file(&mut self) -> io::Result<&File> {
        self.w.flush()?;
        Ok(self.w.get_ref())
    }

    /// Moves the cursor past `n` bytes placed with positioned writes.
    fn advance(&mut self, n: u64) -> io::Result<()> {
        self.pos += n;
        self.w.seek(SeekFrom::Start(self.pos))?;
        Ok(())
    }
}

/// Hashes a shard's bytes as they stream: whole-shard BLAKE3 and, when
/// requested, one BLAKE3 per page.
struct ShardHasher {
    shard: blake3::Hasher,
    page_size: u64,
    page: Option<blake3::Hasher>,
    in_page: u64,
    digests: Vec<[u8; 32]>,
}

impl ShardHasher {
    fn new(page_size: Option<u64>) -> Self {
        ShardHasher {
            shard: blake3::Hasher::new(),
            page_size: page_size.unwrap_or(0),
            page: page_size.map(|_| blake3::Hasher::new()),
            in_page: 0,
            digests: Vec::new(),
        }
    }

    /// Each hash runs on one thread (the other core is copying, see
    /// [`stream_shard`]; splitting one hash across the pool only makes the
    /// threads compete); page hashes run beside the shard hash.
    fn update(&mut self, b: &[u8]) {
        let ShardHasher {
            shard,
            page_size,
            page,
            in_page,
            digests,
        } = self;
        match page {
            None => {
                shard.update(b);
            }
            Some(ph) => {
                rayon::join(
                    || shard.update(b),
                    || Self::pages(ph, *page_size, in_page, digests, b),
                );
            }
        }
    }

    fn pages(
        ph: &mut blake3::Hasher,
        page_size: u64,
        in_page: &mut u64,
        digests: &mut Vec<[u8; 32]>,
        mut b: &[u8],
    ) {
        while !b.is_empty() {
            let n = ((page_size - *in_page) as usize).min(b.len());
            ph.update(&b[..n]);
            *in_page += n as u64;
            b = &b[n..];
            if *in_page == page_size {
                digests.push(*ph.finalize().as_bytes());
                *ph = blake3::Hasher::new();
                *in_page = 0;
            }
        }
    }

    /// Starts over (same page size).
    fn reset(&mut self) {
        *self = ShardHasher::new(self.page.as_ref().map(|_| self.page_size));
    }

    fn finish(mut self) -> ([u8; 32], Vec<[u8; 32]>) {
        if let Some(ph) = &self.page
            && self.in_page > 0
        {
            self.digests.push(*ph.finalize().as_bytes());
        }
        (*self.shard.finalize().as_bytes(), self.digests)
    }
}

/// Writes a model to `path` atomically (see the module docs).
pub fn write_model(
    path: impl AsRef<Path>,
    specs: Vec<TensorSpec<'_>>,
    opts: &WriteOptions,
) -> Result<WriteSummary> {
    let path = path.as_ref();
    check_specs(&specs)?;
    for s in &specs {
        if let Some(r) = &s.file_range {
            crate::output::refuse_open_input(path, r.file)?;
        }
    }
    let mut out = Output::create(path)?;
    let summary = write_to(out.file(), specs, opts).map_err(|e| match e {
        Error::Io { source, .. } => Error::io(path, source),
        other => other,
    })?;
    out.commit(opts.durable)?;
    Ok(summary)
}

/// Writes a model into an open, empty, seekable file (no atomic rename).
/// The file must be open for reading too: a shard copied from a verified
/// input whose gaps held non-zero bytes is hashed again from the output.
pub fn write_to(
    file: &mut File,
    specs: Vec<TensorSpec<'_>>,
    opts: &WriteOptions,
) -> Result<WriteSummary> {
    check_specs(&specs)?;
    if opts.max_shard_bytes == 0 {
        return Err(Error::Invalid("max shard bytes must be positive".into()));
    }
    if let Some(ps) = opts.page_hashes
        && (ps == 0 || ps > aero_format::limits::MAX_METADATA_ULEN)
    {
        return Err(Error::Invalid(format!("page size {ps} is out of range")));
    }
    let io = |e| Error::io("<output>", e);
    let uuid = opts.uuid.unwrap_or_else(random_uuid);
    let plan = ShardPlan::new(
        specs.iter().map(|t| t.data_len),
        opts.max_shard_bytes,
        opts.layout,
    )?;
    // Shards holding a tensor the output must not vouch for.
    let mut unvouched = vec![false; plan.shard_len.len()];
    if !opts.unverified.is_empty() {
        for (t, &(s, _)) in specs.iter().zip(&plan.placement) {
            if opts.unverified.contains(&t.name) {
                unvouched[s] = true;
            }
        }
    }
    let page_lens: Vec<u64> = plan
        .shard_len
        .iter()
        .zip(&unvouched)
        .map(|(&l, &u)| if u { 0 } else { l })
        .collect();
    let chunks = plan_chunks(opts, &page_lens);
    let n = chunks.fourcc.len();

    let mut tensors: Vec<TensorInfo> = specs
        .iter()
        .zip(&plan.placement)
        .map(|(t, &(s, off))| TensorInfo {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            shard_id: opts.first_shard_id + s as u64,
            data_off: off,
            data_len: t.data_len,
            flags: 0,
            hash_b3: None,
            quant_id: None,
            extras: t.extras.clone(),
        })
        .collect();

    let mut meta = serde_json::Map::new();
    meta.insert("model_name".into(), opts.model_name.clone().into());
    meta.insert("architecture".into(), opts.architecture.clone().into());
    for (k, v) in &opts.extra_meta {
        if k != "model_name" && k != "architecture" {
            meta.insert(k.clone(), v.clone());
        }
    }
    let mjsn = crate::value::canonical_json(&serde_json::Value::Object(meta)).into_bytes();
    let manifest = Manifest {
        model_name: opts.model_name.clone(),
        architecture: opts.architecture.clone(),
        chunks: (0..n)
            .map(|i| {
                let shard_id = chunks
                    .wtsh
                    .iter()
                    .position(|&w| w == i)
                    .or_else(|| chunks.phsh.iter().position(|&p| p == Some(i)))
                    .map(|s| opts.first_shard_id + s as u64);
                ManifestChunk {
                    fourcc: chunks.fourcc[i],
                    toc_index: i as u64,
                    shard_id,
                }
            })
            .collect(),
        shards: (0..plan.shard_len.len())
            .map(|s| ManifestShard {
                shard_id: opts.first_shard_id + s as u64,
                toc_index: chunks.wtsh[s] as u64,
                size_bytes: plan.shard_len[s],
                tensor_count: plan.shard_tensors[s],
            })
            .collect(),
    }
    .encode();
    let mmsg = compress(&manifest)?;
    let tidx_early = if opts.tensor_hash {
        None
    } else {
        let raw = encode_tidx(tensors.iter());
        let c = compress(&raw)?;
        Some((raw, c))
    };

    let (strtab, name_refs) = string_table(chunks.names.iter().map(String::as_str));
    let names_len: u64 = chunks.names.iter().map(|s| s.len() as u64 + 1).sum();
    let pro = Prologue::new(n as u64, names_len)
        .ok_or_else(|| Error::Invalid("too many chunks".into()))?;

    // Entries: filled in as payloads are placed.
    let mut entries: Vec<TocEntry> = (0..n)
        .map(|i| TocEntry {
            fourcc: chunks.fourcc[i],
            flags: ChunkFlags(chunks.flags[i]),
            chunk_offset: 0,
            chunk_length: 0,
            chunk_ulen: 0,
            name_off: name_refs[i].0,
            name_len: name_refs[i].1,
            reserved0: 0,
            blake3: [0; 32],
        })
        .collect();

    let mut out = Out::new(&mut *file, opts.durable);
    out.pad_to(pro.payload_start).map_err(io)?;
    let place = |out: &mut Out<'_>,
                 e: &mut TocEntry,
                 align: u64,
                 stored: &[u8],
                 ulen: u64,
                 hash: [u8; 32]|
     -> io::Result<()> {
        let at = align_up(out.pos, align).unwrap_or(out.pos);
        out.pad_to(at)?;
        out.write(stored)?;
        e.chunk_offset = at;
        e.chunk_length = stored.len() as u64;
        e.chunk_ulen = ulen;
        e.blake3 = hash;
        Ok(())
    };
    if let Some(i) = chunks.ihsh {
        // Placeholder: the digest covers the final TOC, patched at the end.
        place(&mut out, &mut entries[i], 16, &[0u8; 256], 256, [0; 32]).map_err(io)?;
    }
    place(
        &mut out,
        &mut entries[chunks.mjsn],
        16,
        &mjsn,
        mjsn.len() as u64,
        *blake3::hash(&mjsn).as_bytes(),
    )
    .map_err(io)?;
    place(
        &mut out,
        &mut entries[chunks.mmsg],
        16,
        &mmsg,
        manifest.len() as u64,
        *blake3::hash(&manifest).as_bytes(),
    )
    .map_err(io)?;
    if let Some((raw, c)) = &tidx_early {
        place(
            &mut out,
            &mut entries[chunks.tidx],
            16,
            c,
            raw.len() as u64,
            *blake3::hash(raw).as_bytes(),
        )
        .map_err(io)?;
    }

    // Stream the shards.
    let mut specs = specs.into_iter().enumerate().peekable();
    for s in 0..plan.shard_len.len() {
        let start = align_up(out.pos, opts.layout.shard_align()).unwrap_or(out.pos);
        out.pad_to(start).map_err(io)?;
        let members: Vec<Member<'_>> =
            std::iter::from_fn(|| specs.next_if(|(ti, _)| plan.placement[*ti].0 == s))
                .map(|(ti, spec)| Member {
                    ti,
                    off: plan.placement[ti].1,
                    spec,
                })
                .collect();
        let mut sh = ShardHasher::new(opts.page_hashes);
        let len = plan.shard_len[s];
        for (ti, h) in stream_shard(&mut out, start, len, members, &mut sh, opts.tensor_hash)? {
            if !opts.unverified.contains(&tensors[ti].name) {
                tensors[ti].hash_b3 = h;
            }
        }
        out.advance(plan.shard_len[s]).map_err(io)?;
        let len = out.pos - start;
        debug_assert_eq!(len, plan.shard_len[s]);
        let (digest, pages) = sh.finish();
        let e = &mut entries[chunks.wtsh[s]];
        e.chunk_offset = start;
        e.chunk_length = len;
        e.chunk_ulen = len;
        e.blake3 = if unvouched[s] { [0; 32] } else { digest };
        if let Some(pi) = chunks.phsh[s] {
            let payload = encode_phsh(&PageHashes {
                shard_name: chunks.names[chunks.wtsh[s]].clone(),
                page_size: opts
                    .page_hashes
                    .unwrap_or(aero_format::limits::DEFAULT_PAGE_SIZE),
                digests: pages,
            });
            let h = *blake3::hash(&payload).as_bytes();
            place(
                &mut out,
                &mut entries[pi],
                16,
                &payload,
                payload.len() as u64,
                h,
            )
            .map_err(io)?;
        }
    }
    if tidx_early.is_none() {
        let raw = encode_tidx(tensors.iter());
        let c = compress(&raw)?;
        place(
            &mut out,
            &mut entries[chunks.tidx],
            16,
            &c,
            raw.len() as u64,
            *blake3::hash(&raw).as_bytes(),
        )
        .map_err(io)?;
    }
    let file_size = out.pos;

    // Prologue: header, TOC, string table.
    let build =
        |entries: &[TocEntry]| aero_format::encode::encode_prologue(&pro, uuid, entries, &strtab);
    let w = out.w.into_inner().map_err(|e| io(e.into_error()))?;
    if let Some(i) = chunks.ihsh {
        let digest = control_digest(&build(&entries), pro.toc_offset, n as u32);
        let payload = encode_ihsh(pro.payload_start, &digest);
        entries[i].blake3 = *blake3::hash(&payload).as_bytes();
        w.seek(SeekFrom::Start(entries[i].chunk_offset))
            .map_err(io)?;
        w.write_all(&payload).map_err(io)?;
    }
    w.seek(SeekFrom::Start(0)).map_err(io)?;
    w.write_all(&build(&entries)).map_err(io)?;
    w.flush().map_err(io)?;
    Ok(WriteSummary {
        file_size,
        shards: plan.shard_len.len(),
        uuid,
        tensors,
    })
}

/// One tensor of a shard being streamed.
struct Member<'a> {
    /// Index in the TIDX.
    ti: usize,
    /// Offset in the shard.
    off: u64,
    spec: TensorSpec<'a>,
}

/// Streams one shard's tensors to the output at `start` with two threads:
/// this one reads each piece of the shard into a small buffer (positioned
/// reads of file ranges, or the tensor's reader; zeros for the gaps),
/// hashes it while it is in cache (shard, page and tensor hashes,
/// observers), and passes it to a writing thread that writes it in place.
/// Both cores stay busy and every byte is read from memory once. Returns each
/// tensor's BLAKE3 when asked for.
fn stream_shard(
    out: &mut Out<'_>,
    start: u64,
    len: u64,
    members: Vec<Member<'_>>,
    sh: &mut ShardHasher,
    tensor_hash: bool,
) -> Result<Vec<(usize, Option<[u8; 32]>)>> {
    let written_back = out.written_back;
    let file = out.file().map_err(|e| Error::io("<output>", e))?;
    let names: Vec<(usize, String)> = members
        .iter()
        .map(|m| (m.ti, m.spec.name.clone()))
        .collect();
    let name_of = |ti: usize| {
        names
            .iter()
            .find(|(i, _)| *i == ti)
            .map(|(_, n)| n.clone())
            .unwrap_or_default()
    };
    let (read, wrote, written_back) = crate::pipeline::run(file, written_back, |pipe| {
        match verbatim_chunk(&members, len) {
            Some(_) => read_verbatim(pipe, start, members, sh, tensor_hash),
            None => read_members(pipe, start, members, sh, tensor_hash),
        }
    });
    // The reading side's error explains more (a corrupt or short input);
    // a cancelled side reports nothing of its own.
    let r = match (read, wrote) {
        (Err(Stop::Failed(ti, e)), _) => Err(Error::Input {
            tensor: name_of(ti),
            source: e,
        }),
        (Err(Stop::Other(e)), _) => Err(e),
        (_, Err(e)) => Err(Error::io("<output>", e)),
        (Err(Stop::Cancelled), Ok(())) => Err(Error::Invalid("shard copy was cancelled".into())),
        (Ok(h), Ok(())) if h.rehash_output => {
            // The input had bytes in the gaps that the output has as zeros:
            // hash the output as written.
            sh.reset();
            let mut buf = vec![0u8; crate::pipeline::PIECE];
            let mut pos = 0u64;
            while pos < len {
                let k = (len - pos).min(crate::pipeline::PIECE as u64) as usize;
                crate::source::read_exact_at(file, start + pos, &mut buf[..k])
                    .map_err(|e| Error::io("<output>", e))?;
                sh.update(&buf[..k]);
                pos += k as u64;
            }
            Ok(h.tensors)
        }
        (Ok(h), Ok(())) => Ok(h.tensors),
    };
    out.written_back = written_back;
    r
}

/// What the reading half of [`stream_shard`] found.
struct Hashed {
    /// Each tensor's BLAKE3, when asked for.
    tensors: Vec<(usize, Option<[u8; 32]>)>,
    /// The shard hashes were taken over input bytes that differ from the
    /// output (non-zero gaps): hash the output again.
    rehash_output: bool,
}

/// Why the reading half stopped.
enum Stop {
    /// Reading tensor `ti` failed.
    Failed(usize, io::Error),
    /// Another error (a short source, a corrupt input).
    Other(Error),
    /// The writing thread failed.
    Cancelled,
}

impl From<crate::pipeline::Cancelled> for Stop {
    fn from(_: crate::pipeline::Cancelled) -> Stop {
        Stop::Cancelled
    }
}

/// The message for a file that is shorter than the range to read.
fn ended_early(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "input file ended early (was it truncated while being read?)",
        )
    } else {
        e
    }
}

/// The reading half of [`stream_shard`], tensor by tensor.
fn read_members(
    pipe: &crate::pipeline::Pipe<'_, '_>,
    start: u64,
    members: Vec<Member<'_>>,
    sh: &mut ShardHasher,
    tensor_hash: bool,
) -> std::result::Result<Hashed, Stop> {
    let mut hashes = Vec::with_capacity(members.len());
    let mut cursor = 0u64;
    for Member { ti, off, spec } in members {
        send_zeros(pipe, sh, start + cursor, off - cursor)?;
        cursor = off + spec.data_len;
        let mut th = tensor_hash.then(blake3::Hasher::new);
        let mut hash = |block: &[u8]| match th.as_mut() {
            Some(h) => {
                rayon::join(|| sh.update(block), || h.update(block));
            }
            None => sh.update(block),
        };
        let dst = start + off;
        match spec.file_range {
            Some(mut r) => {
                if let Some(c) = r.chunk.take() {
                    r.observers.push(c.verifier);
                }
                for o in &mut r.observers {
                    o.start().map_err(|e| Stop::Failed(ti, e))?;
                }
                let mut done = 0u64;
                while done < spec.data_len {
                    let mut buf = pipe.take()?;
                    let k = (spec.data_len - done).min(buf.len() as u64) as usize;
                    crate::source::read_exact_at(r.file, r.offset + done, &mut buf[..k])
                        .map_err(|e| Stop::Failed(ti, ended_early(e)))?;
                    hash(&buf[..k]);
                    for o in &mut r.observers {
                        o.bytes(&buf[..k]).map_err(|e| Stop::Failed(ti, e))?;
                    }
                    pipe.put(buf, k, dst + done)?;
                    done += k as u64;
                }
                for o in &mut r.observers {
                    o.end().map_err(|e| Stop::Failed(ti, e))?;
                }
            }
            None => {
                let mut src = spec.source;
                let mut done = 0u64;
                while done < spec.data_len {
                    let mut buf = pipe.take()?;
                    let want = (spec.data_len - done).min(buf.len() as u64) as usize;
                    let got =
                        read_full(&mut src, &mut buf[..want]).map_err(|e| Stop::Failed(ti, e))?;
                    if got == 0 {
                        return Err(Stop::Other(Error::Input {
                            tensor: spec.name.clone(),
                            source: io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!("source ended after {done} of {} bytes", spec.data_len),
                            ),
                        }));
                    }
                    hash(&buf[..got]);
                    pipe.put(buf, got, dst + done)?;
                    done += got as u64;
                }
            }
        }
        hashes.push((ti, th.map(|h| *h.finalize().as_bytes())));
    }
    Ok(Hashed {
        tensors: hashes,
        rehash_output: false,
    })
}

/// Sends `n` zero bytes to be written at `dst`, hashing them.
fn send_zeros(
    pipe: &crate::pipeline::Pipe<'_, '_>,
    sh: &mut ShardHasher,
    mut dst: u64,
    mut n: u64,
) -> std::result::Result<(), Stop> {
    while n > 0 {
        let mut buf = pipe.take()?;
        let k = n.min(buf.len() as u64) as usize;
        buf[..k].fill(0);
        sh.update(&buf[..k]);
        pipe.put(buf, k, dst)?;
        dst += k as u64;
        n -= k as u64;
    }
    Ok(())
}

/// The input chunk this shard is a byte-for-byte copy of, if it is one (see
/// [`SourceChunk`]): every tensor read from the same file and chunk, at its
/// offset in the chunk, and the chunk as long as the shard.
fn verbatim_chunk<'m>(members: &'m [Member<'_>], len: u64) -> Option<&'m SourceChunk<'m>> {
    let first = members.first()?.spec.file_range.as_ref()?;
    let c = first.chunk.as_ref()?;
    let same = members.iter().all(|m| {
        m.spec.file_range.as_ref().is_some_and(|s| {
            std::ptr::eq(s.file, first.file)
                && s.chunk.as_ref().is_some_and(|k| {
                    (k.offset, k.length, k.blake3) == (c.offset, c.length, c.blake3)
                })
                && s.offset.checked_sub(c.offset) == Some(m.off)
        })
    });
    (same && c.length == len).then_some(c)
}

/// The reading half of [`stream_shard`] for a shard that copies an input
/// chunk verbatim: one pass over the chunk gives its verification digest,
/// the output shard and page hashes, and the tensor hashes. Gap bytes are
/// written as zeros; if an input gap byte is not zero, the output is hashed
/// again afterwards.
fn read_verbatim(
    pipe: &crate::pipeline::Pipe<'_, '_>,
    start: u64,
    mut members: Vec<Member<'_>>,
    sh: &mut ShardHasher,
    tensor_hash: bool,
) -> std::result::Result<Hashed, Stop> {
    let Some(first) = members.first().and_then(|m| m.spec.file_range.as_ref()) else {
        return Err(Stop::Other(Error::Invalid("empty verbatim shard".into())));
    };
    let file = first.file;
    let Some(c) = first.chunk.as_ref() else {
        return Err(Stop::Other(Error::Invalid(
            "verbatim shard without a chunk".into(),
        )));
    };
    let (name, offset, length, want) = (c.name.clone(), c.offset, c.length, c.blake3);
    let first_ti = members[0].ti;
    let mut ths: Vec<Option<blake3::Hasher>> = members
        .iter()
        .map(|_| tensor_hash.then(blake3::Hasher::new))
        .collect();
    let mut observers: Vec<Vec<Box<dyn Observer + '_>>> = members
        .iter_mut()
        .map(|m| {
            m.spec
                .file_range
                .as_mut()
                .map(|s| std::mem::take(&mut s.observers))
                .unwrap_or_default()
        })
        .collect();
    let ranges: Vec<(u64, u64)> = members
        .iter()
        .map(|m| (m.off, m.off + m.spec.data_len))
        .collect();
    let tis: Vec<usize> = members.iter().map(|m| m.ti).collect();
    drop(members);
    for (i, obs) in observers.iter_mut().enumerate() {
        for o in obs.iter_mut() {
            o.start().map_err(|e| Stop::Failed(tis[i], e))?;
        }
    }
    let mut nonzero_gap = false;
    let mut mi = 0usize; // first member not yet passed
    let mut pos = 0u64; // chunk-relative offset of the next byte
    while pos < length {
        let mut buf = pipe.take()?;
        let k = (length - pos).min(buf.len() as u64) as usize;
        crate::source::read_exact_at(file, offset + pos, &mut buf[..k]).map_err(|e| {
            // Blame the tensor being read (or the one after a gap).
            let i = ranges.iter().position(|r| r.1 > pos).unwrap_or(0);
            let e = ended_early(e);
            let at = io::Error::new(
                e.kind(),
                format!("input {name} at offset {}: {e}", offset + pos),
            );
            Stop::Failed(tis.get(i).copied().unwrap_or(first_ti), at)
        })?;
        let end = pos + k as u64;
        let piece = &buf[..k];
        // Feeds the tensors' hashes and observers; notes gaps with non-zero
        // bytes, to be zeroed.
        let mut walk = || -> std::result::Result<Vec<(usize, usize)>, Stop> {
            let mut dirty = Vec::new();
            let mut p = pos;
            while p < end {
                while ranges.get(mi).is_some_and(|r| r.1 <= p) {
                    mi += 1;
                }
                let (seg_end, tensor) = match ranges.get(mi) {
                    Some(&(from, to)) if from <= p => (to.min(end), true),
                    Some(&(from, _)) => (from.min(end), false),
                    None => (end, false),
                };
                let (a, b) = ((p - pos) as usize, (seg_end - pos) as usize);
                let seg = &piece[a..b];
                if tensor {
                    if let Some(h) = ths[mi].as_mut() {
                        h.update(seg);
                    }
                    for o in observers[mi].iter_mut() {
                        o.bytes(seg).map_err(|e| Stop::Failed(tis[mi], e))?;
                    }
                } else if seg.iter().any(|&b| b != 0) {
                    dirty.push((a, b));
                }
                p = seg_end;
            }
            Ok(dirty)
        };
        // The shard (and page) hashes beside the tensors' own, if any.
        let walked = if tensor_hash {
            rayon::join(|| sh.update(piece), walk).1
        } else {
            sh.update(piece);
            walk()
        };
        for (a, b) in walked? {
            nonzero_gap = true;
            buf[a..b].fill(0);
        }
        pipe.put(buf, k, start + pos)?;
        pos = end;
    }
    if *sh.shard.finalize().as_bytes() != want {
        return Err(Stop::Failed(
            first_ti,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name}: BLAKE3 mismatch (corrupt)"),
            ),
        ));
    }
    for (i, obs) in observers.iter_mut().enumerate() {
        for o in obs.iter_mut() {
            o.end().map_err(|e| Stop::Failed(tis[i], e))?;
        }
    }
    Ok(Hashed {
        tensors: tis
            .into_iter()
            .zip(ths)
            .map(|(ti, h)| (ti, h.map(|h| *h.finalize().as_bytes())))
            .collect(),
        rehash_output: nonzero_gap,
    })
}

/// Reads until `buf` is full or the source ends; returns bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
