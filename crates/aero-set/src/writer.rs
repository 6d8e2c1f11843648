//! Writing an AEROSET (spec §11, §13).
//!
//! Shards are planned over all tensors exactly as for a single file
//! ([`aero_io::write::ShardPlan`]), then grouped into parts of at most `max_part_shards`
//! shards. Part `p` is a complete AERO file written by the streaming writer
//! with `first_shard_id` = the global id of its first shard, so its WTSH
//! chunks are named `weights.shard{global id}` and its TIDX uses global ids:
//! both the by-name lookup and a naive by-shard-id lookup find the bytes.
//! `index.aero` carries MMSG (chunks MMSG 0, TIDX 1; no shards) and the
//! global TIDX (with `hash_b3` when tensor hashes are requested). With
//! [`SetWriteOptions::like`] the parts follow an existing set's plan
//! instead ([`crate::plan`]): same part names, tensor placement, shard ids
//! and UUIDs wherever the tensors allow, new tensors in new parts.
//!
//! Atomicity: everything is written into a sibling directory
//! `.<out>.<pid>-<random>.aerotmp` (see `aero_io::output`; each file itself
//! written atomically and fsynced),
//! which is renamed to `<out>` at the end; on any error the temporary
//! directory is removed and `<out>` is untouched. An existing `<out>` must be
//! absent or an empty directory, or — only with [`SetWriteOptions::replace`] —
//! an AEROSET holding nothing but its manifest and the files it names (so no
//! unrelated file is ever deleted). Replacing renames the old set aside,
//! renames the new one in and then deletes the old one; if the second rename
//! fails the old set is put back.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use aero_format::FourCc;
use aero_io::write::raw::{ChunkSpec, write_chunks};
use aero_io::write::raw::{Manifest, ManifestChunk, encode_tidx};
use aero_io::write::{
    TensorBytes, TensorSpec, WriteOptions, check_specs, random_uuid, write_model,
};
use aero_io::{LocalSource, TensorInfo};
use sha2::{Digest, Sha256};

use crate::error::{Result, SetError};
use crate::manifest::{FileEntry, MANIFEST_NAME, ModelInfo, PartEntry, SetManifest};
use crate::plan::{PartJob, SetPlan};
pub use crate::plan::{SetTensor, part_uuid};

/// Default number of shards per part.
pub const DEFAULT_MAX_PART_SHARDS: usize = 4;
/// Name of the index file written.
pub const INDEX_NAME: &str = "index.aero";

/// Options for [`write_set`].
#[derive(Clone, Debug)]
pub struct SetWriteOptions {
    /// Options for every part: model name and architecture (also written to
    /// the manifest and the index), MJSN extras, `max_shard_bytes`, layout,
    /// `tensor_hash`, `control_integrity`, `page_hashes`. `first_shard_id` is
    /// set per part by the writer. With `uuid` set, the index gets that UUID
    /// and part `p` a UUID derived from it, so output is deterministic.
    /// `attached` files are not put in the parts: each is written beside
    /// the manifest under its name and listed in the manifest's `files`
    /// with its SHA-256 and size.
    pub file: WriteOptions,
    /// Shards per part (at least 1).
    pub max_part_shards: usize,
    /// Replace an existing AEROSET at the destination (see the module docs).
    pub replace: bool,
    /// Where the set will be hosted: writes a v0.2 manifest with this
    /// `base_url` (relative paths then resolve as `base_url/path`).
    pub base_url: Option<String>,
    /// Extra top-level manifest keys (e.g. `huggingface`), written after
    /// the standard ones ([`SetManifest::extra`]).
    pub manifest_extra: serde_json::Map<String, serde_json::Value>,
    /// Write a new revision on the plan of an existing set (part file
    /// names, tensor → part assignment, shard ids, UUIDs), so that every
    /// part whose tensors did not change comes out byte-identical; see
    /// [`crate::plan`]. `max_part_shards` then applies to new parts only.
    /// Cannot be combined with a fixed `file.uuid` (the plan fixes UUIDs).
    pub like: Option<SetPlan>,
}

impl Default for SetWriteOptions {
    fn default() -> Self {
        SetWriteOptions {
            file: WriteOptions::default(),
            max_part_shards: DEFAULT_MAX_PART_SHARDS,
            replace: false,
            base_url: None,
            manifest_extra: serde_json::Map::new(),
            like: None,
        }
    }
}

/// What was written.
#[derive(Clone, Debug)]
pub struct SetWriteSummary {
    /// The set directory.
    pub dir: PathBuf,
    /// The manifest as written.
    pub manifest: SetManifest,
    /// The global TIDX entries (global shard ids; `hash_b3` when requested).
    pub tensors: Vec<TensorInfo>,
    /// Number of shards over all parts.
    pub shards: usize,
    /// Total bytes of all files (manifest included).
    pub total_size: u64,
    /// With [`SetWriteOptions::like`]: the parts (file names) that came out
    /// byte-identical to the old set's file of that name (same SHA-256);
    /// every other part is new or changed. Empty otherwise.
    pub identical_parts: Vec<String>,
    /// The shard size limit of the write (`max_shard_bytes`).
    pub max_shard_bytes: u64,
}

impl SetWriteSummary {
    /// The tensors larger than [`Self::max_shard_bytes`]: each was written
    /// alone in a shard above the limit (a tensor is never split).
    pub fn oversized(&self) -> impl Iterator<Item = &TensorInfo> {
        self.tensors
            .iter()
            .filter(|t| t.data_len > self.max_shard_bytes)
    }
}

/// SHA-256 and size of a local file, streamed in bounded windows.
pub fn hash_file(path: &Path) -> Result<([u8; 32], u64)> {
    let src = LocalSource::open(path).map_err(|e| SetError::io(path, e))?;
    let h = crate::validate::sha256_of(&src, &|_| {}).map_err(|e| SetError::io(path, e))?;
    Ok((h, aero_io::ByteSource::len(&src)))
}

/// Writes tensors given as full specs (each with its reader). The readers
/// are consumed part by part; for sources that should only be opened when
/// needed, use [`write_set`].
pub fn write_set_specs<'a>(
    out: &Path,
    specs: Vec<TensorSpec<'a>>,
    opts: &SetWriteOptions,
) -> Result<SetWriteSummary> {
    let mut metas = Vec::with_capacity(specs.len());
    let mut sources: Vec<Option<TensorBytes<'a>>> = Vec::with_capacity(specs.len());
    for s in specs {
        metas.push(SetTensor {
            name: s.name,
            dtype: s.dtype,
            shape: s.shape,
            data_len: s.data_len,
            extras: s.extras,
        });
        sources.push(Some(s.bytes));
    }
    write_set_bytes(out, &metas, opts, &mut |i| {
        sources
            .get_mut(i)
            .and_then(Option::take)
            .ok_or_else(|| io::Error::other(format!("source of tensor {i} requested twice")))
    })
}

/// Writes an AEROSET to the directory `out`, atomically (see the module
/// docs). `open(i)` yields the bytes of `tensors[i]`; it is called for the
/// tensors of one part at a time, just before that part is written, so only
/// one part's sources are open at once and memory stays bounded.
///
/// ```no_run
/// use aero_set::writer::{SetTensor, SetWriteOptions, write_set};
/// let t = vec![SetTensor { name: "w".into(), dtype: aero_io::DType::F32, shape: vec![2],
///                          data_len: 8, extras: vec![] }];
/// let bytes = [0u8; 8];
/// write_set("out-set".as_ref(), &t, &SetWriteOptions::default(),
///           &mut |_| Ok(Box::new(&bytes[..])))?;
/// # Ok::<(), aero_set::SetError>(())
/// ```
pub fn write_set<'a>(
    out: &Path,
    tensors: &[SetTensor],
    opts: &SetWriteOptions,
    open: &mut dyn FnMut(usize) -> io::Result<Box<dyn Read + Send + 'a>>,
) -> Result<SetWriteSummary> {
    write_set_bytes(out, tensors, opts, &mut |i| {
        open(i).map(TensorBytes::Reader)
    })
}

fn write_set_bytes<'a>(
    out: &Path,
    tensors: &[SetTensor],
    opts: &SetWriteOptions,
    open: &mut dyn FnMut(usize) -> io::Result<TensorBytes<'a>>,
) -> Result<SetWriteSummary> {
    if opts.max_part_shards == 0 {
        return Err(SetError::OptionOutOfRange {
            option: "max_part_shards",
            value: 0,
        });
    }
    if opts.file.max_shard_bytes == 0 {
        return Err(SetError::OptionOutOfRange {
            option: "max_shard_bytes",
            value: 0,
        });
    }
    let spec_of = |t: &SetTensor, bytes: TensorBytes<'a>| TensorSpec {
        name: t.name.clone(),
        dtype: t.dtype,
        shape: t.shape.clone(),
        data_len: t.data_len,
        extras: t.extras.clone(),
        bytes,
    };
    check_specs(
        &tensors
            .iter()
            .map(|t| spec_of(t, TensorBytes::Reader(Box::new(io::empty()))))
            .collect::<Vec<_>>(),
    )?;
    let jobs: Vec<PartJob> = match &opts.like {
        None => crate::plan::fresh_jobs(tensors, &opts.file, opts.max_part_shards)?,
        Some(plan) if opts.file.uuid.is_some() => {
            return Err(SetError::Plan {
                set: plan.set.clone(),
                reason:
                    "a new revision keeps this set's UUIDs; a fixed UUID cannot be given as well"
                        .into(),
            });
        }
        Some(plan) => crate::plan::like_jobs(tensors, &opts.file, opts.max_part_shards, plan)?,
    };
    let nshards: usize = jobs.iter().map(|j| j.shards).sum();
    aero_io::attached::check_files(&opts.file.attached)?;
    for a in &opts.file.attached {
        let clash = a.name == MANIFEST_NAME
            || a.name == INDEX_NAME
            || jobs.iter().any(|j| a.name == j.name);
        if clash {
            return Err(SetError::Aero(aero_io::Error::BadAttachedFile {
                name: a.name.clone(),
                reason: "has the name of one of the set's own files".into(),
            }));
        }
    }

    let dest = Dest::new(out)?;
    dest.state(opts.replace)?;
    let tmp = TempDir::create(&dest)?;

    let mut parts = Vec::with_capacity(jobs.len());
    let mut global: Vec<TensorInfo> = Vec::with_capacity(tensors.len());
    let mut total_size = 0u64;
    let mut identical_parts = Vec::new();
    for job in &jobs {
        let mut specs = Vec::with_capacity(job.tensors.len());
        for &ti in &job.tensors {
            let t = &tensors[ti];
            let src = open(ti).map_err(|e| SetError::Io {
                path: PathBuf::from(format!("<source of tensor '{}'>", t.name)),
                source: e,
            })?;
            specs.push(spec_of(t, src));
        }
        let path = tmp.path.join(&job.name);
        let mut fo = opts.file.clone();
        fo.attached = Vec::new();
        fo.first_shard_id = job.first_shard;
        fo.uuid = job.uuid;
        let s = write_model(&path, specs, &fo)?;
        if s.shards != job.shards || s.tensors.len() != job.tensors.len() {
            return Err(SetError::Invalid(format!(
                "internal error: {} was planned with {} shards and {} tensors but written with {} and {}",
                job.name,
                job.shards,
                job.tensors.len(),
                s.shards,
                s.tensors.len()
            )));
        }
        let (sha256, size_bytes) = hash_file(&path)?;
        if job.old_sha256 == Some(sha256) {
            identical_parts.push(job.name.clone());
        }
        total_size = total_size.saturating_add(size_bytes);
        parts.push(PartEntry {
            file: FileEntry {
                path: job.name.clone(),
                sha256,
                size_bytes,
            },
            shards: (job.first_shard..job.first_shard + job.shards as u64).collect(),
        });
        global.extend(s.tensors);
    }

    // The index: MMSG + global TIDX, no weights.
    let mmsg = Manifest {
        model_name: opts.file.model_name.clone(),
        architecture: opts.file.architecture.clone(),
        chunks: vec![
            ManifestChunk {
                fourcc: FourCc::MMSG,
                toc_index: 0,
                shard_id: None,
            },
            ManifestChunk {
                fourcc: FourCc::TIDX,
                toc_index: 1,
                shard_id: None,
            },
        ],
        shards: Vec::new(),
    }
    .encode();
    let index_path = tmp.path.join(INDEX_NAME);
    let index_uuid = match &opts.like {
        Some(plan) => plan.index_uuid,
        None => opts.file.uuid.unwrap_or_else(random_uuid),
    };
    write_chunks(
        &index_path,
        index_uuid,
        &[
            ChunkSpec::standard(FourCc::MMSG, "manifest", mmsg),
            ChunkSpec::standard(FourCc::TIDX, "tensors", encode_tidx(global.iter())),
        ],
    )?;
    let (sha256, size_bytes) = hash_file(&index_path)?;
    total_size = total_size.saturating_add(size_bytes);
    if let Some(b) = &opts.base_url
        && aero_io::url::classify(b) != aero_io::url::Kind::Http
    {
        return Err(SetError::Field {
            path: out.to_path_buf(),
            field: "base_url".into(),
            reason: format!("'{b}' is not an http:// or https:// URL"),
        });
    }
    let mut manifest = SetManifest::new(
        if opts.base_url.is_some() {
            crate::manifest::WRITE_VERSION_BASE_URL
        } else {
            crate::manifest::WRITE_VERSION
        },
        ModelInfo {
            name: opts.file.model_name.clone(),
            architecture: opts.file.architecture.clone(),
        },
        parts,
        FileEntry {
            path: INDEX_NAME.into(),
            sha256,
            size_bytes,
        },
    )?;
    manifest.base_url = opts.base_url.clone();
    for a in &opts.file.attached {
        let e = write_attached(&tmp.path, a, opts.file.durable)?;
        total_size = total_size.saturating_add(e.size_bytes);
        manifest.files.push(e);
    }
    manifest.extra = opts.manifest_extra.clone();
    let json = manifest.to_json_pretty();
    total_size = total_size.saturating_add(json.len() as u64);
    let mpath = tmp.path.join(MANIFEST_NAME);
    let mut af = aero_io::output::Output::create(&mpath)?;
    af.file()
        .write_all(json.as_bytes())
        .map_err(|e| SetError::io(&mpath, e))?;
    af.commit(opts.file.durable)?;
    sync_dir(&tmp.path);

    tmp.commit(&dest, opts.replace)?;
    Ok(SetWriteSummary {
        dir: out.to_path_buf(),
        manifest,
        tensors: global,
        shards: nshards,
        total_size,
        identical_parts,
        max_shard_bytes: opts.file.max_shard_bytes,
    })
}

/// Writes one attached file under `dir` (atomically, creating its
/// directories), hashing it on the way; returns its manifest entry.
fn write_attached(dir: &Path, a: &aero_io::AttachedFile, durable: bool) -> Result<FileEntry> {
    use aero_io::AttachedData;
    let dest = dir.join(&a.name);
    let mut out = aero_io::output::Output::create(&dest)?;
    let mut h = Sha256::new();
    let io = |e| SetError::io(&dest, e);
    let n = match &a.data {
        AttachedData::Bytes(b) => {
            h.update(b);
            out.file().write_all(b).map_err(io)?;
            b.len() as u64
        }
        AttachedData::Path { path, len } => {
            let mut f = std::fs::File::open(path).map_err(|e| SetError::io(path, e))?;
            let mut buf = vec![0u8; 256 << 10];
            let mut n = 0u64;
            loop {
                let k = f.read(&mut buf).map_err(|e| SetError::io(path, e))?;
                if k == 0 || n + k as u64 > *len {
                    n += k as u64;
                    break;
                }
                h.update(&buf[..k]);
                out.file().write_all(&buf[..k]).map_err(io)?;
                n += k as u64;
            }
            if n != *len {
                return Err(SetError::Aero(aero_io::Error::BadAttachedFile {
                    name: a.name.clone(),
                    reason: format!(
                        "{} changed while it was read (listed with {len} bytes)",
                        path.display()
                    ),
                }));
            }
            n
        }
    };
    out.commit(durable)?;
    Ok(FileEntry {
        path: a.name.clone(),
        sha256: h.finalize().into(),
        size_bytes: n,
    })
}

fn sync_dir(p: &Path) {
    if let Ok(d) = std::fs::File::open(p) {
        let _ = d.sync_all();
    }
}

/// The destination directory split into parent and name.
struct Dest {
    out: PathBuf,
    parent: PathBuf,
    name: String,
}

/// What is at the destination now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DestState {
    Absent,
    EmptyDir,
    ReplaceableSet,
}

impl Dest {
    fn new(out: &Path) -> Result<Dest> {
        let bad = |reason: &str| SetError::Output {
            path: out.to_path_buf(),
            reason: reason.into(),
        };
        let name = out
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad("needs a final directory name (UTF-8)"))?
            .to_string();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| SetError::io(&parent, e))?;
        Ok(Dest {
            out: out.to_path_buf(),
            parent,
            name,
        })
    }

    fn err(&self, reason: String) -> SetError {
        SetError::Output {
            path: self.out.clone(),
            reason,
        }
    }

    fn state(&self, replace: bool) -> Result<DestState> {
        let meta = match std::fs::symlink_metadata(&self.out) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DestState::Absent),
            Err(e) => return Err(SetError::io(&self.out, e)),
        };
        if meta.file_type().is_symlink() {
            return Err(self.err("is a symlink; refusing to replace it".into()));
        }
        if !meta.is_dir() {
            return Err(self.err("exists and is not a directory".into()));
        }
        let mut entries = std::fs::read_dir(&self.out).map_err(|e| SetError::io(&self.out, e))?;
        if entries.next().is_none() {
            return Ok(DestState::EmptyDir);
        }
        match replaceable(&self.out) {
            Ok(()) if replace => Ok(DestState::ReplaceableSet),
            Ok(()) => {
                Err(self.err("already holds an AEROSET (allow replacing it to overwrite)".into()))
            }
            Err(why) => Err(self.err(format!(
                "exists and is not empty, and is not an AEROSET that can be replaced ({why})"
            ))),
        }
    }
}

/// Whether `dir` holds an AEROSET and nothing else: its manifest plus only
/// the plain files the manifest names (parts, index, attached files and
/// the directories that hold attached files).
fn replaceable(dir: &Path) -> std::result::Result<(), String> {
    let m = SetManifest::load(&dir.join(MANIFEST_NAME)).map_err(|e| e.to_string())?;
    let mut files: Vec<&str> = vec![MANIFEST_NAME, m.global_tidx.path.as_str()];
    files.extend(m.parts.iter().map(|p| p.file.path.as_str()));
    files.extend(m.files.iter().map(|f| f.path.as_str()));
    let dirs: Vec<&str> = m
        .files
        .iter()
        .flat_map(|f| f.path.match_indices('/').map(|(i, _)| &f.path[..i]))
        .collect();
    let mut todo = vec![(dir.to_path_buf(), String::new())];
    while let Some((at, prefix)) = todo.pop() {
        let rd = std::fs::read_dir(&at).map_err(|e| e.to_string())?;
        for e in rd {
            let e = e.map_err(|e| e.to_string())?;
            let ft = e.file_type().map_err(|e| e.to_string())?;
            let name = e.file_name();
            let rel = format!("{prefix}{}", name.to_string_lossy());
            if ft.is_dir() && dirs.contains(&rel.as_str()) {
                todo.push((e.path(), format!("{rel}/")));
            } else if !ft.is_file() || !files.contains(&rel.as_str()) {
                return Err(format!("it also holds '{rel}'"));
            }
        }
    }
    Ok(())
}

/// Whether a finished set directory can be moved to `out` as the writer
/// commits its own: `out` absent, an empty directory, or a set holding
/// nothing but its own files (replaced: renamed aside, then removed).
pub(crate) fn check_install(out: &Path) -> Result<()> {
    Dest::new(out)?.state(true).map(|_| ())
}

/// Moves a finished set directory (see [`check_install`] for `out`).
pub(crate) fn install_dir(staging: &Path, out: &Path) -> Result<()> {
    let dest = Dest::new(out)?;
    let rename = |a: &Path, b: &Path| std::fs::rename(a, b).map_err(|e| SetError::io(b, e));
    match dest.state(true)? {
        DestState::Absent => rename(staging, &dest.out)?,
        DestState::EmptyDir => {
            std::fs::remove_dir(&dest.out).map_err(|e| SetError::io(&dest.out, e))?;
            rename(staging, &dest.out)?;
        }
        DestState::ReplaceableSet => {
            let tag = hex::encode(&random_uuid()[..6]);
            let old = dest.parent.join(format!("{}.old-{tag}", dest.name));
            rename(&dest.out, &old)?;
            if let Err(e) = rename(staging, &dest.out) {
                let _ = std::fs::rename(&old, &dest.out);
                return Err(e);
            }
            let _ = std::fs::remove_dir_all(&old);
        }
    }
    sync_dir(&dest.parent);
    Ok(())
}

/// The temporary sibling directory (`aero_io::output`'s naming, lock and
/// signal registration), removed on drop unless committed.
struct TempDir {
    path: PathBuf,
    guard: aero_io::output::TempGuard,
}

impl TempDir {
    fn create(dest: &Dest) -> Result<TempDir> {
        let guard = aero_io::output::temp_dir(&dest.out)?;
        Ok(TempDir {
            path: guard.path().to_path_buf(),
            guard,
        })
    }

    fn commit(self, dest: &Dest, replace: bool) -> Result<()> {
        let rename = |a: &Path, b: &Path| std::fs::rename(a, b).map_err(|e| SetError::io(b, e));
        match dest.state(replace)? {
            DestState::Absent => rename(&self.path, &dest.out)?,
            DestState::EmptyDir => {
                std::fs::remove_dir(&dest.out).map_err(|e| SetError::io(&dest.out, e))?;
                rename(&self.path, &dest.out)?;
            }
            DestState::ReplaceableSet => {
                let tag = hex::encode(&random_uuid()[..6]);
                let old = dest.parent.join(format!("{}.old-{tag}", dest.name));
                rename(&dest.out, &old)?;
                if let Err(e) = rename(&self.path, &dest.out) {
                    let _ = std::fs::rename(&old, &dest.out);
                    return Err(e);
                }
                let _ = std::fs::remove_dir_all(&old);
            }
        }
        self.guard.disarm();
        sync_dir(&dest.parent);
        Ok(())
    }
}
