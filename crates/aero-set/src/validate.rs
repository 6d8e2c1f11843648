//! Structured validation of a whole set.
//!
//! Checks, in order: SHA-256 and size of the index and of every part (files
//! hashed in parallel, each streamed in bounded windows); each file as an AERO
//! file ([`aero_io::validate()`] in the requested mode, so `Full` verifies every
//! chunk of every part); shard coverage (every shard the global TIDX uses is
//! claimed by a part); and, for every global TIDX entry, that it resolves by
//! name in its part and agrees with the part's entry (dtype, shape, data_len,
//! hash_b3 when both record it). In `Full` mode a `hash_b3` recorded only in
//! the global TIDX is verified against the part's bytes too.

use std::collections::{BTreeMap, HashMap, HashSet};

use aero_io::{ByteSource, Mode, Report, Verdict};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::SetError;
use crate::manifest::{FileEntry, ModelInfo};
use crate::resolve::Location;
use crate::set::{AeroSet, disagreement};

/// The role of a file in a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileRole {
    /// `global_tidx`.
    Index,
    /// One of `parts`.
    Part,
    /// One of `files`: a file that travels with the weights (checked by
    /// size and SHA-256 only).
    File,
}

/// Which file of the set a check is about.
#[derive(Clone, Copy)]
enum Job {
    Index,
    Part(usize),
    Attached(usize),
}

/// Result for one file of the set.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    /// Index or part.
    pub role: FileRole,
    /// The manifest field (`global_tidx`, `parts[2]`).
    pub field: String,
    /// Path as written in the manifest.
    pub path: String,
    /// Global shard ids the manifest assigns to this part.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<u64>,
    /// `size_bytes` from the manifest (`size` in JSON, the name every
    /// command's `--json` gives a file's length in bytes).
    #[serde(rename = "size")]
    pub size_bytes: u64,
    /// The size found, when the file could be opened.
    pub actual_size: Option<u64>,
    /// `verified`, `mismatch` or `error`.
    pub sha256: &'static str,
    /// The SHA-256 found, when the file could be read.
    pub actual_sha256: Option<String>,
    /// Verdict of validating this file as an AERO file.
    pub verdict: Option<Verdict>,
    /// This file's problems, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The file's own validation report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

/// The whole set's validation report. `validate --json` prints this.
#[derive(Clone, Debug, Serialize)]
pub struct SetReport {
    /// The manifest validated (`input` in JSON, as in every command's
    /// `--json`).
    #[serde(rename = "input")]
    pub set: String,
    /// Always `"AEROSET"`, to tell this report from a single file's
    /// (`"AERO"`).
    pub format: &'static str,
    /// Mode used for the files.
    pub mode: Mode,
    /// Outcome.
    pub verdict: Verdict,
    /// `verdict != invalid`.
    pub valid: bool,
    /// `format.version` of the manifest (`version` in JSON, as in
    /// `inspect --json`).
    #[serde(rename = "version")]
    pub format_version: [u64; 2],
    /// `model` of the manifest.
    pub model: ModelInfo,
    /// Entries in the global TIDX.
    pub tensor_count: usize,
    /// Tensors whose global and part entries were checked and agree.
    pub tensors_ok: usize,
    /// The index first, then the parts, then the attached files, in
    /// manifest order.
    pub files: Vec<FileReport>,
    /// Failures, one line each, each naming the file concerned.
    pub errors: Vec<String>,
    /// Things that could not be verified or look odd, one line each.
    pub warnings: Vec<String>,
}

/// Bytes [`validate_set`] will read in `mode`, for progress bars.
pub fn work_bytes(set: &AeroSet, mode: Mode) -> u64 {
    let total = set.total_size();
    if mode == Mode::Full {
        total.saturating_mul(2)
    } else {
        total
    }
}

/// SHA-256 of a whole byte source, in bounded windows.
pub fn sha256_of<'a>(
    src: impl Into<aero_io::SourceRef<'a>>,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<[u8; 32]> {
    let src = src.into();
    let mut h = Sha256::new();
    let len = src.bytes().len();
    aero_io::verify::for_each_window(src, 0, len, |w| h.update(w), progress)?;
    Ok(h.finalize().into())
}

/// Validates a set. Never panics; every problem lands in the report. The
/// set may have been opened with [`AeroSet::load`] (index unchecked).
pub fn validate_set(set: &AeroSet, mode: Mode, progress: &(dyn Fn(u64) + Sync)) -> SetReport {
    let m = set.manifest();
    let mut r = SetReport {
        set: set.path().display().to_string(),
        format: "AEROSET",
        mode,
        verdict: Verdict::Valid,
        valid: true,
        format_version: m.version,
        model: m.model.clone(),
        tensor_count: 0,
        tensors_ok: 0,
        files: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };

    // Files: the index, the parts and the attached files, in parallel: on
    // the cores for local files, on threads of their own when any is remote
    // ([`AeroSet::remote_files_at_once`]; their range requests share the
    // set's budget of requests in flight).
    let jobs: Vec<Job> = std::iter::once(Job::Index)
        .chain((0..m.parts.len()).map(Job::Part))
        .chain((0..m.files.len()).map(Job::Attached))
        .collect();
    r.files = match set.remote_files_at_once() {
        None => jobs
            .into_par_iter()
            .map(|job| check_file(set, job, mode, progress))
            .collect(),
        Some(n) => concurrently(&jobs, n, |&job| check_file(set, job, mode, progress)),
    };
    for f in &r.files {
        r.errors.extend(f.errors.iter().cloned());
        if let Some(rep) = &f.report {
            r.warnings.extend(
                rep.warnings
                    .iter()
                    .filter(|w| !w.starts_with("AEROSET index file"))
                    .map(|w| format!("{}: {w}", f.path)),
            );
        }
    }

    check_tensors(set, mode, &mut r);

    r.verdict = if !r.errors.is_empty() {
        Verdict::Invalid
    } else if !r.warnings.is_empty() {
        Verdict::ValidWithWarnings
    } else {
        Verdict::Valid
    };
    r.valid = r.verdict != Verdict::Invalid;
    r
}

fn check_file(set: &AeroSet, job: Job, mode: Mode, progress: &(dyn Fn(u64) + Sync)) -> FileReport {
    let m = set.manifest();
    let (role, field, entry, shards): (FileRole, String, &FileEntry, Vec<u64>) = match job {
        Job::Index => (
            FileRole::Index,
            "global_tidx".into(),
            &m.global_tidx,
            Vec::new(),
        ),
        Job::Part(i) => (
            FileRole::Part,
            format!("parts[{i}]"),
            &m.parts[i].file,
            m.parts[i].shards.clone(),
        ),
        Job::Attached(i) => (
            FileRole::File,
            format!("files[{i}]"),
            &m.files[i],
            Vec::new(),
        ),
    };
    let mut fr = FileReport {
        role,
        field,
        path: entry.path.clone(),
        shards,
        size_bytes: entry.size_bytes,
        actual_size: None,
        sha256: "error",
        actual_sha256: None,
        verdict: None,
        errors: Vec::new(),
        report: None,
    };
    let name = entry.path.clone();
    let loc = match job {
        Job::Part(i) => set.part_location(i),
        Job::Index => set.index_location(),
        Job::Attached(i) => set.file_location(i),
    };
    let loc = match loc {
        Ok(l) => l,
        Err(e) => {
            fr.errors.push(format!("{name}: {e}"));
            return fr;
        }
    };
    // A remote file that opens as AERO with the manifest's size (which the
    // set's open checks) is read once: its SHA-256 and its validation in one
    // stream (`validate_with_digest`).
    // (An attached file is not AERO: it is hashed below.)
    if matches!(loc, Location::Remote(_)) {
        let file = match job {
            Job::Part(i) => Some(set.part(i)),
            Job::Index => Some(set.index_file()),
            Job::Attached(_) => None,
        };
        if let Some(Ok(f)) = file {
            fr.actual_size = Some(f.len());
            let mut h = Sha256::new();
            let (rep, read) =
                aero_io::validate_with_digest(f, mode, progress, &mut |b| h.update(b));
            match read {
                Ok(()) => record_sha(&mut fr, &name, entry, h.finalize().into()),
                Err(e) => fr.errors.push(format!("{name}: reading: {e}")),
            }
            record_report(&mut fr, &name, role, f, rep);
            return fr;
        }
    }
    // Hash the raw bytes independently of whether they parse as AERO.
    let raw = match set.open_source(&loc) {
        Ok(s) => s,
        Err(e) => {
            fr.errors
                .push(format!("{name}: cannot open: {}", strip(&e, &loc)));
            return fr;
        }
    };
    fr.actual_size = Some(raw.len());
    if raw.len() != entry.size_bytes {
        fr.errors.push(format!(
            "{name}: size is {} bytes but the manifest's {}.size_bytes says {}",
            raw.len(),
            fr.field,
            entry.size_bytes
        ));
    }
    match sha256_of(&raw, progress) {
        Ok(h) => record_sha(&mut fr, &name, entry, h),
        Err(e) => fr.errors.push(format!("{name}: reading: {e}")),
    }
    drop(raw);
    if fr.actual_size != Some(entry.size_bytes) {
        // The set-level open refuses a wrongly sized file; report it once.
        return fr;
    }
    let file = match job {
        Job::Part(i) => set.part(i),
        Job::Index => set.index_file(),
        // Not an AERO file: size and SHA-256 are its whole check.
        Job::Attached(_) => return fr,
    };
    match file {
        Ok(f) => {
            let rep = aero_io::validate(f, mode, progress);
            record_report(&mut fr, &name, role, f, rep);
        }
        Err(e) => fr.errors.push(format!("{name}: {}", strip(&e, &loc))),
    }
    fr
}

/// Runs `f` on every item with at most `n` at once (threads of their own:
/// the work waits on the network, not on the cores), results in order.
fn concurrently<T: Sync, R: Send>(items: &[T], n: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..n.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

/// Records a file's SHA-256 against the manifest's.
fn record_sha(fr: &mut FileReport, name: &str, entry: &FileEntry, h: [u8; 32]) {
    fr.actual_sha256 = Some(hex::encode(h));
    if h == entry.sha256 {
        fr.sha256 = "verified";
    } else {
        fr.sha256 = "mismatch";
        fr.errors.push(format!(
            "{name}: SHA-256 mismatch (manifest {}.sha256 {}, file {})",
            fr.field,
            hex::encode(entry.sha256),
            hex::encode(h)
        ));
    }
}

/// Records a file's own validation report.
fn record_report(
    fr: &mut FileReport,
    name: &str,
    role: FileRole,
    f: &aero_io::AeroFile,
    rep: Report,
) {
    for e in &rep.errors {
        fr.errors.push(format!("{name}: {e}"));
    }
    if role == FileRole::Index && !f.is_set_index() {
        fr.errors.push(format!(
            "{name}: the index file holds weight shards (WTSH); an AEROSET index has only MMSG and TIDX"
        ));
    }
    // An index file always carries the "weights live in the parts" note;
    // that is expected here, not a warning.
    let only_note = rep
        .warnings
        .iter()
        .all(|w| w.starts_with("AEROSET index file"));
    fr.verdict = Some(match rep.verdict {
        Verdict::ValidWithWarnings if role == FileRole::Index && only_note => Verdict::Valid,
        v => v,
    });
    fr.report = Some(rep);
}

/// The error text without a leading "<location>: " (the line is prefixed
/// with the manifest path already).
fn strip(e: &SetError, loc: &Location) -> String {
    let s = e.to_string();
    let p = format!("{loc}: ");
    s.strip_prefix(&p).map(str::to_string).unwrap_or(s)
}

fn check_tensors(set: &AeroSet, mode: Mode, r: &mut SetReport) {
    let m = set.manifest();
    let idx = match set.index() {
        Ok(i) => i,
        Err(_) => return, // reported with the index file
    };
    r.tensor_count = idx.len();
    for d in idx.duplicates() {
        r.errors.push(format!(
            "{}: tensor '{d}' appears more than once in the global TIDX",
            m.global_tidx.path
        ));
    }

    // Shard coverage.
    let mut missing: BTreeMap<u64, (usize, &str)> = BTreeMap::new();
    let mut used: HashSet<u64> = HashSet::new();
    for t in idx.tensors() {
        used.insert(t.shard_id);
        if m.part_for_shard(t.shard_id).is_none() {
            missing.entry(t.shard_id).or_insert((0, &t.name)).0 += 1;
        }
    }
    for (shard, (n, example)) in &missing {
        r.errors.push(format!(
            "{}: shard {shard} (used by {n} tensor{}, e.g. '{example}') is not listed in the `shards` of any part",
            m.global_tidx.path,
            if *n == 1 { "" } else { "s" }
        ));
    }
    for (i, p) in m.parts.iter().enumerate() {
        for s in &p.shards {
            if !used.contains(s) {
                r.warnings.push(format!(
                    "{}: parts[{i}] claims shard {s}, which no tensor in the global TIDX uses",
                    p.file.path
                ));
            }
        }
    }

    // Per-tensor agreement, and which part tensors are reachable.
    let mut seen_in_part: HashMap<usize, HashSet<&str>> = HashMap::new();
    for t in idx.tensors() {
        let Some(pi) = m.part_for_shard(t.shard_id) else {
            continue;
        };
        let pname = &m.parts[pi].file.path;
        let Ok(f) = set.part(pi) else {
            continue; // the part's own report says why
        };
        let Ok(pidx) = f.index() else {
            continue;
        };
        let Some(pe) = pidx.get(&t.name) else {
            r.errors.push(format!(
                "{pname}: has no tensor '{}' (the global TIDX puts it in shard {}, claimed by parts[{pi}])",
                t.name, t.shard_id
            ));
            continue;
        };
        seen_in_part.entry(pi).or_default().insert(t.name.as_str());
        if let Some(d) = disagreement(t, pe) {
            r.errors.push(format!("{pname}: tensor '{}': {d}", t.name));
            continue;
        }
        if let Err(e) = f.tensor_range(pe) {
            r.errors.push(format!("{pname}: tensor '{}': {e}", t.name));
            continue;
        }
        if mode == Mode::Full
            && pe.hash_b3.is_none()
            && let Some(h) = t.hash_b3
        {
            match f.tensor_unverified(pe) {
                Ok(v) if *aero_io::verify::hash(v.bytes()).as_bytes() == h => {}
                Ok(_) => {
                    r.errors.push(format!(
                        "{pname}: tensor '{}': bytes do not match the global TIDX hash_b3",
                        t.name
                    ));
                    continue;
                }
                Err(e) => {
                    r.errors.push(format!("{pname}: tensor '{}': {e}", t.name));
                    continue;
                }
            }
        }
        r.tensors_ok += 1;
    }
    for (pi, names) in &seen_in_part {
        let Ok(f) = set.part(*pi) else { continue };
        let Ok(pidx) = f.index() else { continue };
        let extra: Vec<&str> = pidx
            .tensors()
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| !names.contains(n) && idx.get(n).is_none())
            .collect();
        if let Some(first) = extra.first() {
            r.warnings.push(format!(
                "{}: {} tensor(s) not in the global TIDX (unreachable through the set), e.g. '{first}'",
                m.parts[*pi].file.path,
                extra.len()
            ));
        }
    }
}
