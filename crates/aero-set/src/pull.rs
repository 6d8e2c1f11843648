//! Downloading a remote `.aero` file or AEROSET to a local path: parallel
//! range requests on one pool of `jobs` workers, each piece written to disk
//! as it arrives ([`aero_io::remote::RemoteSource`] reads; the pass is
//! described in `pull/fetch.rs`), every byte checked before its file is
//! renamed into place, resumable after a kill at any moment, incremental
//! against an earlier revision already at the destination.
//!
//! **Checks.** An AERO file is cut into units, each checked as soon as its
//! last byte has arrived: a weight shard's PHSH pages (BLAKE3 per page), any
//! other chunk whose TOC records a BLAKE3 (uncompressed), and the bytes
//! between them (header, TOC, string table, padding), which only the
//! whole-file checks cover: the manifest's SHA-256 and size for a set's
//! index, parts and attached files (computed in order as the bytes arrive),
//! and for a lone file a structural validation of the finished copy. A unit
//! that fails its hash is fetched again (at most [`REFETCH_ROUNDS`] times),
//! never kept; a file whose SHA-256 still differs is an error. No check is
//! skipped: every byte of a set's file passes its BLAKE3 (where the file
//! has one) and the manifest's SHA-256 before the rename; the two run on
//! the worker threads, each byte hashed once by each.
//!
//! **Staging and resumption.** A set is assembled in `.{DEST}.aero-pull`
//! beside DEST (a lone file in `.{DEST}.aero-pull` too, as a file). Each
//! file grows as `NAME.partial` with a sidecar `NAME.partial.json` listing
//! the byte ranges already verified (`verified`) and the unhashed units
//! written whole (`written`), rewritten after every piece; a verified file
//! is renamed to `NAME`. A later pull of the same source keeps every range
//! the sidecar lists — `written` ones only for a file with a manifest
//! SHA-256, which checks them; if it then differs they are fetched again,
//! once — (the sidecar also records the file's size, SHA-256 and a
//! fingerprint of its TOC: a different revision starts that file afresh)
//! and fetches the rest. One pull at a time per destination: a pull holds
//! the lock file [`lock_path`] (a second one fails, exit 2). When everything is verified the
//! manifest is written last and the staging directory replaces DEST
//! atomically (DEST must be absent, empty, or hold an AEROSET and nothing
//! else, as for the set writer).
//!
//! **Incremental.** A file the destination (or the staging directory)
//! already holds with the manifest's SHA-256 and size — under its own name
//! or any name the destination's manifest gives that SHA-256 — is linked
//! (or copied) instead of fetched, after its SHA-256 is checked.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aero_io::remote::{RemoteOptions, RemoteSource, open_source};
use aero_io::{AeroFile, ByteSource};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, SetError};
use crate::manifest::{MANIFEST_NAME, SetManifest};
use crate::resolve::{Location, SetBase, SetOptions};
use crate::set::AeroSet;

mod fetch;

/// Largest piece a pull asks for in one request. A kill loses the pieces in
/// flight (at most `jobs` of them: their bytes are checked and written only
/// once whole), so this bounds what a resumed pull fetches twice, while
/// staying large against a request's latency.
pub const PULL_PIECE: u64 = 1 << 20;

/// Requests in flight for a pull when neither the caller (`--jobs`) nor
/// `AEROTENSOR_REMOTE_JOBS` says ([`remote_options`]). A download wants
/// more than a read (the engine's default): each request pays the
/// server's latency once per [`PULL_PIECE`], so it takes this many
/// connections to fill a CDN-capped link (20 ms and 50 MB/s per
/// connection: 16 requests of 1 MiB top out near 400 MB/s, 32 near
/// 800 MB/s). A kill loses at most this many pieces.
pub const PULL_JOBS: usize = 32;

/// The remote options of a pull: as [`crate::model::RemoteSettings::options`],
/// with [`PULL_JOBS`] when `settings` and the environment name no number of
/// requests.
pub fn remote_options(settings: &crate::model::RemoteSettings) -> Result<RemoteOptions> {
    let explicit = settings.jobs.is_some()
        || aero_io::remote::jobs_from_env()
            .map_err(|e| SetError::io("environment", e))?
            .is_some();
    let mut o = settings.options()?;
    if !explicit {
        o.jobs = PULL_JOBS;
    }
    Ok(o)
}

/// How many times a unit that failed its hash is fetched again.
pub const REFETCH_ROUNDS: u32 = 3;

/// Bytes of a unit that nothing finer than the whole-file SHA-256 covers
/// (the gaps between chunks, attached files): one piece, so that each is
/// written whole by one request and recorded as written at once.
const FRAME_UNIT: u64 = PULL_PIECE;

/// What [`pull`] reports as it goes.
#[derive(Clone, Copy, Debug)]
pub enum PullEvent {
    /// Planned: `total` bytes to end with, `reused` of them already on disk
    /// (resumed ranges and unchanged files), the rest to fetch.
    Plan {
        /// Bytes of every file.
        total: u64,
        /// Bytes kept from disk.
        reused: u64,
    },
    /// This many more bytes arrived and were checked.
    Fetched(u64),
}

/// Options of [`pull`].
pub struct PullOptions<'a> {
    /// Remote reads: requests in flight (`jobs`), timeouts, retries. The
    /// range cache is not used (the destination is the copy).
    pub remote: RemoteOptions,
    /// Called with progress (from several threads).
    pub progress: &'a (dyn Fn(PullEvent) + Sync),
}

/// One file of a pull.
#[derive(Clone, Debug, Serialize)]
pub struct PulledFile {
    /// Its path in the destination (relative to the set directory; the
    /// file name for a lone file).
    pub path: String,
    /// Its size.
    #[serde(rename = "size")]
    pub size_bytes: u64,
    /// Bytes fetched over the network (refetches included).
    pub fetched: u64,
    /// Bytes kept from disk (a resumed partial file, or the whole file when
    /// unchanged).
    pub reused: u64,
    /// Units that failed their hash on arrival and were fetched again.
    pub refetched_units: u64,
    /// `fetched`, `resumed` (partly kept) or `unchanged` (wholly kept).
    pub state: &'static str,
}

/// What [`pull`] did.
#[derive(Clone, Debug, Serialize)]
pub struct PullSummary {
    /// The source URL (a set's manifest URL).
    #[serde(rename = "input")]
    pub source: String,
    /// The destination written.
    #[serde(rename = "output")]
    pub dest: PathBuf,
    /// `set` or `file`.
    #[serde(rename = "format", serialize_with = "format_name")]
    pub kind: &'static str,
    /// Every file, manifest last for a set.
    pub files: Vec<PulledFile>,
    /// Sum of the files' sizes.
    #[serde(rename = "size")]
    pub bytes_total: u64,
    /// Bytes fetched over the network.
    pub bytes_fetched: u64,
    /// Bytes kept from disk.
    pub bytes_reused: u64,
    /// Bytes checked against a hash in this run (fetched bytes, and files
    /// kept from disk, whose SHA-256 was checked).
    pub bytes_verified: u64,
}

/// Downloads `src` — the URL of a `.aero` file, of an AEROSET's
/// `model.aeroset.json`, or of a directory (ending in `/`) holding one —
/// to `dest` (a file, or for a set a directory; a lone file pulled into an
/// existing directory is named after the URL). See the module docs.
pub fn pull(src: &str, dest: &Path, opts: &PullOptions<'_>) -> Result<PullSummary> {
    let mut remote = opts.remote.clone();
    remote.cache = None;
    remote.max_request = remote.max_request.clamp(1, PULL_PIECE);
    let url = if src.ends_with('/') {
        format!("{src}{MANIFEST_NAME}")
    } else {
        src.to_string()
    };
    let io_err = |e| SetError::io(&url, e);
    let source = open_source(&url, remote.clone()).map_err(io_err)?;
    let head = source
        .bytes(0, source.len().min(64))
        .map_err(io_err)?
        .into_owned();
    if head.first() == Some(&b'{') {
        pull_set(&url, source, dest, &remote, opts)
    } else {
        pull_lone(&url, source, dest, &remote, opts)
    }
}

/// The staging path of `dest`: `.{name}.aero-pull` beside it.
pub fn staging_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pull".into());
    aero_io::output::parent_dir(dest).join(format!(".{name}.aero-pull"))
}

/// The lock file of `dest`'s staging: `.{name}.aero-pull.lock` beside it.
pub fn lock_path(dest: &Path) -> PathBuf {
    let mut p = staging_path(dest).into_os_string();
    p.push(".lock");
    PathBuf::from(p)
}

/// An exclusive lock on a destination's staging directory, held for the
/// whole pull: a second pull into the same destination fails at once
/// ([`SetError::Output`], naming the lock file) instead of writing the same
/// partial files. The operating system releases it when the process ends,
/// however it ends (a killed pull leaves no stale lock); a pull that
/// finishes also removes the file.
struct StagingLock {
    path: PathBuf,
    _file: File,
}

impl StagingLock {
    fn acquire(dest: &Path) -> Result<StagingLock> {
        let path = lock_path(dest);
        if let Some(p) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(p).map_err(|e| SetError::io(p, e))?;
        }
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| SetError::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(SetError::Output {
                        path: dest.to_path_buf(),
                        reason: format!(
                            "another pull is writing to it (it holds the lock {}); wait for it to end, then run this pull again",
                            path.display()
                        ),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(SetError::io(&path, e)),
            }
            // The pull that held it may have removed the file just before
            // we locked it: only the file at the path counts.
            if same_file(&file, &path) {
                return Ok(StagingLock { path, _file: file });
            }
        }
    }
}

impl Drop for StagingLock {
    fn drop(&mut self) {
        // Removed while still locked, so that no other pull locks a file
        // that is no longer at the path (see `acquire`).
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn same_file(f: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    // An open file cannot be removed here: the path is the file locked.
    path.exists()
}

/// A file to bring to the staging directory.
struct Job {
    /// Path relative to the staging directory (the set's manifest path).
    rel: String,
    /// Where it comes from.
    url: String,
    size: u64,
    sha256: Option<[u8; 32]>,
    /// Parsed as AERO for finer checks (index, parts, a lone file).
    aero: bool,
    /// Candidate local copies (same path, or the same SHA-256 in the old
    /// destination's manifest).
    candidates: Vec<PathBuf>,
}

/// Shared counters.
struct Tally<'a> {
    opts: &'a PullOptions<'a>,
    fetched: AtomicU64,
}

fn pull_set(
    url: &str,
    source: Arc<RemoteSource>,
    dest: &Path,
    remote: &RemoteOptions,
    opts: &PullOptions<'_>,
) -> Result<PullSummary> {
    let label = PathBuf::from(url);
    let io_err = |e| SetError::io(url, e);
    if source.len() > crate::manifest::MAX_MANIFEST_LEN {
        return Err(SetError::File {
            path: label,
            reason: format!(
                "manifest is {} bytes, over the {}-byte cap",
                source.len(),
                crate::manifest::MAX_MANIFEST_LEN
            ),
        });
    }
    let manifest_bytes = source.bytes(0, source.len()).map_err(io_err)?.into_owned();
    drop(source);
    let manifest = SetManifest::parse(&manifest_bytes, &label)?;
    let set = AeroSet::from_manifest(
        label.clone(),
        SetBase::Url(crate::remote::url_dir(url).to_string()),
        manifest.clone(),
        &SetOptions { allow_remote: true },
        Arc::new(crate::remote::RemoteStorage {
            options: remote.clone(),
        }),
    )?;
    // The destination's current manifest, if it holds a set: its files are
    // candidates by SHA-256.
    let old: HashMap<[u8; 32], Vec<String>> = match SetManifest::load(&dest.join(MANIFEST_NAME)) {
        Ok(m) => {
            let mut by_sha: HashMap<[u8; 32], Vec<String>> = HashMap::new();
            let entries = std::iter::once(&m.global_tidx)
                .chain(m.parts.iter().map(|p| &p.file))
                .chain(m.files.iter());
            for e in entries {
                by_sha.entry(e.sha256).or_default().push(e.path.clone());
            }
            by_sha
        }
        Err(_) => HashMap::new(),
    };
    let _lock = StagingLock::acquire(dest)?;
    crate::writer::check_install(dest)?;
    let stage = staging_path(dest);
    let mut jobs = Vec::new();
    let mut entries = vec![("global_tidx".to_string(), &manifest.global_tidx, true)];
    entries.extend(
        manifest
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("parts[{i}]"), &p.file, true)),
    );
    entries.extend(
        manifest
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("files[{i}]"), f, false)),
    );
    for (k, (field, entry, aero)) in entries.into_iter().enumerate() {
        let loc = match k {
            0 => set.index_location()?,
            k if aero => set.part_location(k - 1)?,
            k => set.file_location(k - 1 - manifest.parts.len())?,
        };
        let Location::Remote(file_url) = loc else {
            return Err(SetError::Invalid(format!(
                "{url}: {field} resolves to a local path"
            )));
        };
        if aero_io::url::classify(&entry.path).is_url() {
            return Err(SetError::Unsupported {
                location: url.to_string(),
                reason: format!(
                    "field `{field}.path` is a URL ({}); pull copies sets whose files are named by relative paths",
                    entry.path
                ),
            });
        }
        let mut candidates = vec![dest.join(&entry.path)];
        for p in old.get(&entry.sha256).into_iter().flatten() {
            let c = dest.join(p);
            if !candidates.contains(&c) && !aero_io::url::classify(p).is_url() {
                candidates.push(c);
            }
        }
        jobs.push(Job {
            rel: entry.path.clone(),
            url: file_url,
            size: entry.size_bytes,
            sha256: Some(entry.sha256),
            aero,
            candidates,
        });
    }
    std::fs::create_dir_all(&stage).map_err(|e| SetError::io(&stage, e))?;
    let tally = Tally {
        opts,
        fetched: AtomicU64::new(0),
    };
    let mut files = run_jobs(&jobs, &stage, remote, &tally)?;
    // Leftovers of an earlier revision's pull are not part of this set.
    let expected: Vec<PathBuf> = jobs.iter().map(|j| stage.join(&j.rel)).collect();
    remove_others(&stage, &expected);
    // Every file is verified: the manifest last, then the directory swap.
    let mpath = stage.join(MANIFEST_NAME);
    std::fs::write(&mpath, &manifest_bytes).map_err(|e| SetError::io(&mpath, e))?;
    crate::writer::install_dir(&stage, dest)?;
    files.push(PulledFile {
        path: MANIFEST_NAME.into(),
        size_bytes: manifest_bytes.len() as u64,
        fetched: manifest_bytes.len() as u64,
        reused: 0,
        refetched_units: 0,
        state: "fetched",
    });
    Ok(summary(url, dest, "set", files))
}

fn pull_lone(
    url: &str,
    source: Arc<RemoteSource>,
    dest: &Path,
    remote: &RemoteOptions,
    opts: &PullOptions<'_>,
) -> Result<PullSummary> {
    let name = url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("download.aero")
        .to_string();
    let dest = if dest.is_dir() {
        dest.join(&name)
    } else {
        dest.to_path_buf()
    };
    let _lock = StagingLock::acquire(&dest)?;
    let stage = staging_path(&dest);
    std::fs::create_dir_all(&stage).map_err(|e| SetError::io(&stage, e))?;
    let job = Job {
        rel: name.clone(),
        url: url.to_string(),
        size: source.len(),
        sha256: None,
        aero: true,
        candidates: Vec::new(),
    };
    drop(source);
    let tally = Tally {
        opts,
        fetched: AtomicU64::new(0),
    };
    let mut files = run_jobs(std::slice::from_ref(&job), &stage, remote, &tally)?;
    let staged = stage.join(&name);
    // The bytes outside the chunks have no hash of their own: the copy
    // must open and validate (structure, control-plane hash).
    let f = AeroFile::open(&staged)?;
    let rep = aero_io::validate(&f, aero_io::Mode::Quick, &|_| {});
    if !rep.valid {
        let _ = std::fs::remove_file(&staged);
        return Err(SetError::File {
            path: PathBuf::from(url),
            reason: format!(
                "the downloaded copy does not validate: {}",
                rep.errors.join("; ")
            ),
        });
    }
    drop(f);
    std::fs::rename(&staged, &dest).map_err(|e| SetError::io(&dest, e))?;
    let _ = std::fs::remove_dir(&stage);
    if let Some(f) = files.first_mut() {
        f.path = dest
            .file_name()
            .map_or(name, |n| n.to_string_lossy().into_owned());
    }
    Ok(summary(url, &dest, "file", files))
}

/// `set` / `file` as the CLI's `--json` names formats (`AEROSET` / `AERO`,
/// docs/CLI.md "JSON vocabulary").
pub(crate) fn format_name<S: serde::Serializer>(
    kind: &&'static str,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(if *kind == "set" { "AEROSET" } else { "AERO" })
}

fn summary(url: &str, dest: &Path, kind: &'static str, files: Vec<PulledFile>) -> PullSummary {
    let sum = |f: fn(&PulledFile) -> u64| files.iter().map(f).sum::<u64>();
    PullSummary {
        source: url.to_string(),
        dest: dest.to_path_buf(),
        kind,
        bytes_total: sum(|f| f.size_bytes),
        bytes_fetched: sum(|f| f.fetched),
        bytes_reused: sum(|f| f.reused),
        bytes_verified: sum(|f| f.fetched.max(f.size_bytes)),
        files,
    }
}

/// A file being pulled: its plan.
struct Planned<'j> {
    job: &'j Job,
    /// Done already: kept from disk.
    kept: Option<PulledFile>,
    /// Else: the source, the units, the sidecar state.
    work: Option<Work>,
}

struct Work {
    source: Arc<RemoteSource>,
    units: Vec<Unit>,
    fingerprint: String,
    verified: Vec<(u64, u64)>,
    written: Vec<(u64, u64)>,
}

/// A range checked as one.
#[derive(Clone, Debug)]
struct Unit {
    start: u64,
    end: u64,
    check: Check,
}

#[derive(Clone, Debug)]
enum Check {
    /// BLAKE3 of the unit's bytes.
    Blake3([u8; 32]),
    /// Covered only by the whole-file checks (refetched when resuming).
    Frame,
}

/// Plans every job (keeping what disk already holds), then fetches the
/// rest with the files streamed concurrently: their requests share the
/// options' budget of `jobs` in flight.
fn run_jobs(
    jobs: &[Job],
    stage: &Path,
    remote: &RemoteOptions,
    tally: &Tally<'_>,
) -> Result<Vec<PulledFile>> {
    let planned: Vec<Planned<'_>> =
        concurrently(jobs, remote.jobs.max(1), |j| plan(j, stage, remote))
            .into_iter()
            .collect::<Result<_>>()?;
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let reused: u64 = planned
        .iter()
        .map(|p| match (&p.kept, &p.work) {
            (Some(k), _) => k.reused,
            (None, Some(w)) => kept_bytes(p.job, &w.verified, &w.written, &w.units),
            _ => 0,
        })
        .sum();
    (tally.opts.progress)(PullEvent::Plan { total, reused });
    // Every file still to fetch, on one pool of `jobs` workers.
    let runs: Vec<fetch::FileRun<'_>> = planned
        .iter()
        .filter_map(|p| {
            p.work
                .as_ref()
                .map(|w| fetch::FileRun::open(p.job, w, stage))
        })
        .collect::<Result<_>>()?;
    let mut fetched = fetch::fetch_all(&runs, stage, remote.jobs.max(1), tally)?.into_iter();
    planned
        .iter()
        .map(|p| match (&p.kept, &p.work) {
            (Some(k), _) => Ok(k.clone()),
            (None, Some(_)) => fetched
                .next()
                .ok_or_else(|| SetError::Invalid("pull: a file was not fetched".into())),
            _ => Err(SetError::Invalid("pull: nothing planned".into())),
        })
        .collect()
}

/// Whether a resume keeps unit `u`: a Blake3 unit wholly inside
/// `verified`, or — for a file the manifest gives a SHA-256, which checks
/// them before the file is renamed — a frame wholly inside `written`.
fn keeps(job: &Job, u: &Unit, verified: &[(u64, u64)], written: &[(u64, u64)]) -> bool {
    match u.check {
        Check::Blake3(_) => covered(verified, u.start, u.end),
        Check::Frame => job.sha256.is_some() && covered(written, u.start, u.end),
    }
}

/// Bytes of the units a resume keeps.
fn kept_bytes(job: &Job, verified: &[(u64, u64)], written: &[(u64, u64)], units: &[Unit]) -> u64 {
    units
        .iter()
        .filter(|u| keeps(job, u, verified, written))
        .map(|u| u.end - u.start)
        .sum()
}

fn covered(verified: &[(u64, u64)], a: u64, b: u64) -> bool {
    verified.iter().any(|&(s, e)| s <= a && b <= e)
}

fn add_range(v: &mut Vec<(u64, u64)>, a: u64, b: u64) {
    v.push((a, b));
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for &(s, e) in v.iter() {
        match out.last_mut() {
            Some(l) if s <= l.1 => l.1 = l.1.max(e),
            _ => out.push((s, e)),
        }
    }
    *v = out;
}

/// The sidecar of a partial file.
#[derive(Serialize, Deserialize, Default)]
struct Sidecar {
    size: u64,
    sha256: String,
    fingerprint: String,
    /// Ranges whose units passed their BLAKE3 check.
    verified: Vec<(u64, u64)>,
    /// Ranges of frame units (no hash of their own) written whole: kept by
    /// a resume and checked by the file's SHA-256.
    #[serde(default)]
    written: Vec<(u64, u64)>,
}

fn partial_paths(stage: &Path, rel: &str) -> (PathBuf, PathBuf) {
    (
        stage.join(format!("{rel}.partial")),
        stage.join(format!("{rel}.partial.json")),
    )
}

fn sha_hex(j: &Job) -> String {
    j.sha256.map(hex::encode).unwrap_or_default()
}

/// Whether `path` holds `size` bytes with SHA-256 `sha`.
fn file_matches(path: &Path, size: u64, sha: &[u8; 32]) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.len() != size {
        return false;
    }
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return false,
        }
    }
    <[u8; 32]>::from(h.finalize()) == *sha
}

fn plan<'j>(job: &'j Job, stage: &Path, remote: &RemoteOptions) -> Result<Planned<'j>> {
    let staged = stage.join(&job.rel);
    let kept = |reused| PulledFile {
        path: job.rel.clone(),
        size_bytes: job.size,
        fetched: 0,
        reused,
        refetched_units: 0,
        state: "unchanged",
    };
    if let Some(sha) = &job.sha256 {
        if file_matches(&staged, job.size, sha) {
            return Ok(Planned {
                job,
                kept: Some(kept(job.size)),
                work: None,
            });
        }
        for c in &job.candidates {
            if file_matches(c, job.size, sha) {
                if let Some(p) = staged.parent() {
                    std::fs::create_dir_all(p).map_err(|e| SetError::io(p, e))?;
                }
                let _ = std::fs::remove_file(&staged);
                if std::fs::hard_link(c, &staged).is_err() {
                    std::fs::copy(c, &staged).map_err(|e| SetError::io(&staged, e))?;
                }
                return Ok(Planned {
                    job,
                    kept: Some(kept(job.size)),
                    work: None,
                });
            }
        }
    }
    let source = open_source(&job.url, remote.clone()).map_err(|e| SetError::io(&job.url, e))?;
    if source.len() != job.size {
        return Err(SetError::File {
            path: PathBuf::from(&job.url),
            reason: format!(
                "is {} bytes but the manifest says size_bytes {}",
                source.len(),
                job.size
            ),
        });
    }
    let (units, fingerprint) = if job.aero {
        let f = AeroFile::from_remote(&job.url, Arc::clone(&source))?;
        aero_units(&f)
    } else {
        (frame_units(0, job.size), String::new())
    };
    let (_, side) = partial_paths(stage, &job.rel);
    let (verified, written) = std::fs::read(&side)
        .ok()
        .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
        .filter(|s| s.size == job.size && s.sha256 == sha_hex(job) && s.fingerprint == fingerprint)
        .map(|s| (s.verified, s.written))
        .unwrap_or_default();
    Ok(Planned {
        job,
        kept: None,
        work: Some(Work {
            source,
            units,
            fingerprint,
            verified,
            written,
        }),
    })
}

fn frame_units(a: u64, b: u64) -> Vec<Unit> {
    let mut v = Vec::new();
    let mut pos = a;
    while pos < b {
        let e = (pos + FRAME_UNIT).min(b);
        v.push(Unit {
            start: pos,
            end: e,
            check: Check::Frame,
        });
        pos = e;
    }
    v
}

/// The units of an AERO file and a fingerprint of its TOC (what makes the
/// verified ranges of a partial copy valid for it).
fn aero_units(f: &AeroFile) -> (Vec<Unit>, String) {
    let mut chunks: Vec<&aero_io::Chunk> = f.chunks().iter().filter(|c| c.length > 0).collect();
    chunks.sort_by_key(|c| c.offset);
    let mut fp = blake3::Hasher::new();
    fp.update(&f.len().to_le_bytes());
    let mut units = Vec::new();
    let mut pos = 0u64;
    for c in chunks {
        fp.update(&c.offset.to_le_bytes());
        fp.update(&c.length.to_le_bytes());
        fp.update(&c.blake3);
        let end = c.offset.saturating_add(c.length).min(f.len());
        if c.offset < pos || c.offset >= end {
            continue; // overlapping or out of range: left to the frame checks
        }
        units.extend(frame_units(pos, c.offset));
        let pages = (c.fourcc == aero_format::FourCc::WTSH)
            .then(|| f.page_hashes(c))
            .flatten();
        if let Some(ph) = pages {
            let ps = ph.page_size.max(1);
            for (i, d) in ph.digests.iter().enumerate() {
                let a = c.offset + i as u64 * ps;
                let b = (a + ps).min(end);
                if a < b {
                    fp.update(d);
                    units.push(Unit {
                        start: a,
                        end: b,
                        check: Check::Blake3(*d),
                    });
                }
            }
        } else if c.hash_recorded() && !c.flags.compressed() {
            units.push(Unit {
                start: c.offset,
                end,
                check: Check::Blake3(c.blake3),
            });
        } else {
            units.extend(frame_units(c.offset, end));
        }
        pos = end;
    }
    units.extend(frame_units(pos, f.len()));
    (units, hex::encode(fp.finalize().as_bytes()))
}

/// Removes every file under `dir` that is not in `keep`.
fn remove_others(dir: &Path, keep: &[PathBuf]) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => {
                remove_others(&p, keep);
                let _ = std::fs::remove_dir(&p);
            }
            Ok(_) if !keep.contains(&p) => {
                let _ = std::fs::remove_file(&p);
            }
            _ => {}
        }
    }
}

/// Writes the sidecar atomically.
fn save_sidecar(path: &Path, s: &Sidecar) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(s).map_err(io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

/// Runs `f` on every item with at most `n` at once (threads of their own:
/// the work waits on the network), results in order.
fn concurrently<'a, T: Sync, R: Send>(
    items: &'a [T],
    n: usize,
    f: impl Fn(&'a T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicU64::new(0);
    let out: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..n.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    if let Ok(mut slot) = out[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    out.into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}
