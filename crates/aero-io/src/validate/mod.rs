//! Structured validation of one AERO file (spec §8–§10): every file-level
//! check lives under this module (the IHSH/PHSH checks in [`integrity`],
//! the one pass over a weight shard in [`scan`]).

mod integrity;
mod scan;

pub use integrity::{ControlStatus, PageReport, check_control};

use std::collections::{HashMap, HashSet};

use aero_format::{DType, FourCc};
use serde::Serialize;

use crate::chunk::{Chunk, ChunkStatus};
use crate::file::AeroFile;
use crate::index::TensorInfo;
use crate::order::{LenCheck, ShapeOrder};
use crate::verify;

/// How much to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Metadata chunks, tensor table consistency and the control-plane hash.
    Quick,
    /// Everything: every chunk including weight shards, every `hash_b3`, every PHSH page.
    Full,
    /// The IHSH control-plane check only.
    Control,
}

/// Overall outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Everything checked passed.
    Valid,
    /// Nothing failed, but something could not be verified (e.g. a hash not recorded).
    ValidWithWarnings,
    /// Something failed.
    Invalid,
    /// The file could not be read at all (missing, no permission): nothing
    /// was checked.
    Error,
}

/// Per-chunk result.
#[derive(Clone, Debug, Serialize)]
pub struct ChunkReport {
    /// TOC index.
    pub index: u32,
    /// Chunk type.
    pub fourcc: String,
    /// Chunk name.
    pub name: String,
    /// Stored offset.
    pub offset: u64,
    /// Stored length.
    pub length: u64,
    /// Uncompressed length.
    pub ulen: u64,
    /// Flag bits.
    pub flags: u32,
    /// `verified`, `mismatch`, `hash-not-recorded`, `skipped` or `error`.
    pub status: &'static str,
    /// Details for `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Per-tensor result.
#[derive(Clone, Debug, Serialize)]
pub struct TensorReport {
    /// Tensor name.
    pub name: String,
    /// `ok` or `invalid`.
    pub status: &'static str,
    /// `verified`, `mismatch`, `absent` or `skipped`.
    pub hash_b3: &'static str,
    /// What is wrong, if anything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// The whole validation report. `--json` prints this.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The file validated (`input` in JSON, the name every command's
    /// `--json` gives the path it read).
    #[serde(rename = "input")]
    pub file: String,
    /// Always `"AERO"` (an AEROSET's report says `"AEROSET"`).
    pub format: &'static str,
    /// Mode used.
    pub mode: Mode,
    /// Outcome.
    pub verdict: Verdict,
    /// `verdict != invalid`.
    pub valid: bool,
    /// Chunk results in TOC order.
    pub chunks: Vec<ChunkReport>,
    /// Tensor results in TIDX order (empty in control mode).
    pub tensors: Vec<TensorReport>,
    /// IHSH result.
    pub control: ControlStatus,
    /// PHSH results, one per PHSH chunk.
    pub pages: Vec<PageReport>,
    /// Failures, one line each.
    pub errors: Vec<String>,
    /// Things that could not be verified, one line each.
    pub warnings: Vec<String>,
    /// Why the file could not be read at all, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// The report on a file that could not be opened: `invalid` when its
    /// content is damaged (truncated, not AERO, a broken header or TOC),
    /// otherwise the verdict is [`Verdict::Error`] (missing, unreadable).
    pub fn unreadable(file: &str, mode: Mode, message: &str, invalid: bool) -> Report {
        let msg = message
            .strip_prefix(file)
            .and_then(|m| m.strip_prefix(": "))
            .unwrap_or(message)
            .to_string();
        Report {
            file: file.to_string(),
            format: "AERO",
            mode,
            verdict: if invalid {
                Verdict::Invalid
            } else {
                Verdict::Error
            },
            valid: false,
            chunks: Vec::new(),
            tensors: Vec::new(),
            control: ControlStatus::NotPresent,
            pages: Vec::new(),
            errors: vec![msg.clone()],
            warnings: Vec::new(),
            error: Some(msg),
        }
    }

    fn finish(mut self) -> Report {
        self.verdict = if !self.errors.is_empty() {
            Verdict::Invalid
        } else if !self.warnings.is_empty() {
            Verdict::ValidWithWarnings
        } else {
            Verdict::Valid
        };
        self.valid = self.verdict != Verdict::Invalid;
        self
    }
}

/// Progress callback: bytes processed so far are reported as increments.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Total bytes `validate` will hash in `mode` (for progress bars).
pub fn work_bytes(f: &AeroFile, mode: Mode) -> u64 {
    match mode {
        Mode::Full => f.chunks().iter().map(|c| c.length).sum(),
        _ => 0,
    }
}

/// Validates a file. Never panics on any input; every problem lands in the report.
pub fn validate(f: &AeroFile, mode: Mode, progress: Progress<'_>) -> Report {
    validate_inner(f, mode, progress, None).0
}

/// Validates a file like [`validate`] and feeds every byte of it, in order,
/// to `digest` (how a set checks each file's SHA-256, spec §13). In
/// [`Mode::Full`] the file is read **once**: one stream over the whole file
/// ([`crate::ByteSource::stream`], several range requests in flight for a
/// remote file) feeds `digest` and checks every weight shard, its pages and
/// its tensors' `hash_b3` as the bytes pass. In the other modes the file is
/// streamed for `digest` after the checks. The second value says whether
/// every byte reached `digest` (an error: the digest is incomplete).
/// `progress` is told of the digested bytes as well as the checked ones.
pub fn validate_with_digest(
    f: &AeroFile,
    mode: Mode,
    progress: Progress<'_>,
    digest: &mut (dyn FnMut(&[u8]) + Send),
) -> (Report, std::io::Result<()>) {
    let (r, digested) = validate_inner(f, mode, progress, Some(digest));
    (r, digested.unwrap_or(Ok(())))
}

type Digest<'d> = &'d mut (dyn FnMut(&[u8]) + Send);

fn validate_inner(
    f: &AeroFile,
    mode: Mode,
    progress: Progress<'_>,
    mut digest: Option<Digest<'_>>,
) -> (Report, Option<std::io::Result<()>>) {
    let mut r = Report {
        file: f.path().display().to_string(),
        format: "AERO",
        mode,
        verdict: Verdict::Valid,
        valid: true,
        chunks: Vec::new(),
        tensors: Vec::new(),
        control: ControlStatus::NotPresent,
        pages: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        error: None,
    };

    r.control = check_control(f);
    match &r.control {
        ControlStatus::Mismatch => r
            .errors
            .push("IHSH: control plane tampered or corrupt".into()),
        ControlStatus::Error(e) => r.errors.push(format!("IHSH: {e}")),
        _ => {}
    }
    if mode == Mode::Control {
        if r.control == ControlStatus::NotPresent {
            r.warnings
                .push("IHSH: no control-plane hash in this file".into());
        }
        let digested = digest.map(|d| digest_whole(f, d, progress));
        return (r.finish(), digested);
    }

    check_duplicates(f, &mut r);
    for c in f.chunks() {
        r.chunks.push(ChunkReport {
            index: c.index,
            fourcc: c.fourcc.to_string(),
            name: c.name.clone(),
            offset: c.offset,
            length: c.length,
            ulen: c.ulen,
            flags: c.flags.0,
            status: "skipped",
            detail: None,
        });
        let row = r.chunks.len() - 1;
        record_chunk(&mut r, row, c, chunk_status(f, c, mode, progress));
    }

    check_manifest(f, &mut r);
    check_tensors(f, &mut r);
    let mut digested = None;
    if mode == Mode::Full {
        digested = Some(scan_shards(f, &mut r, progress, digest.take()));
        for p in &r.pages {
            if p.status != "verified" {
                let e = format!(
                    "PHSH '{}': {}",
                    p.chunk,
                    p.detail.clone().unwrap_or_else(|| p.status.to_string())
                );
                // A damaged PHSH chunk is already reported by its chunk row
                // (same words): say it once.
                let said = p.detail.as_deref().is_some_and(|d| {
                    r.errors
                        .iter()
                        .any(|x| x.contains(&p.chunk) && x.ends_with(d))
                });
                if !said {
                    r.errors.push(e);
                }
            }
        }
    }
    if let Some(d) = digest {
        digested = Some(Some(digest_whole(f, d, progress)));
    }
    (r.finish(), digested.flatten())
}

/// Streams the whole file to `digest`.
fn digest_whole(f: &AeroFile, digest: Digest<'_>, progress: Progress<'_>) -> std::io::Result<()> {
    f.source().stream(&[(0, f.len())], &mut |_, b| {
        digest(b);
        progress(b.len() as u64);
        Ok(())
    })
}

fn check_duplicates(f: &AeroFile, r: &mut Report) {
    let mut seen = HashSet::new();
    for c in f.chunks() {
        let ours = c.fourcc.is_known() || c.fourcc == FourCc::FILE;
        if ours && !seen.insert((c.fourcc, c.name.as_str())) {
            r.errors.push(format!(
                "chunk {} {} '{}': duplicate (fourcc, name)",
                c.index, c.fourcc, c.name
            ));
        }
        if c.fourcc == FourCc::FILE
            && let Some(p) = aero_format::names::attached_name_problem(&c.name)
        {
            r.errors.push(format!(
                "chunk {} {} '{}': unsafe attached file name: {p}",
                c.index,
                c.fourcc,
                c.name.escape_debug()
            ));
        }
    }
}

fn chunk_status(f: &AeroFile, c: &Chunk, mode: Mode, progress: Progress<'_>) -> ChunkStatus {
    // The TOC entry alone says a weight shard is unusable: in every mode,
    // as every read of its tensors refuses it (`AeroFile::tensor_range`).
    if let Some(problem) = c.weight_shard_problem() {
        return ChunkStatus::Error(problem);
    }
    // Attached files are checked like metadata: they are small, and a
    // reader hands them out whole.
    let metadata = c.fourcc.is_metadata() || c.fourcc == FourCc::FILE;
    if !metadata && mode != Mode::Full {
        return ChunkStatus::Skipped;
    }
    if c.fourcc == FourCc::WTSH {
        // Hashed with its pages and tensors in one pass (`scan_shards`).
        return ChunkStatus::Skipped;
    }
    let out = match f.payload(c) {
        Ok(data) => {
            let hash = if !c.hash_recorded() {
                ChunkStatus::HashNotRecorded
            } else if *verify::hash(&data).as_bytes() == c.blake3 {
                ChunkStatus::Verified
            } else {
                ChunkStatus::Mismatch
            };
            // A payload that does not decode is an error whether or not a
            // hash vouches for it (an unrecorded hash vouches for nothing;
            // a recorded one only says the writer meant these bytes).
            match (hash, decoded(f, c, &data)) {
                (ChunkStatus::Mismatch, _) => ChunkStatus::Mismatch,
                (_, Err(e)) => ChunkStatus::Error(e),
                (h, Ok(())) => h,
            }
        }
        Err(e) => ChunkStatus::Error(detail(&e, f)),
    };
    progress(c.length);
    out
}

/// Decodes the payload of a JSON (MJSN) or manifest (MMSG) chunk as every
/// reader does ([`AeroFile::meta_json`], [`AeroFile::manifest`]); the TIDX
/// is decoded by the tensor checks, IHSH and PHSH by theirs.
fn decoded(f: &AeroFile, c: &Chunk, data: &[u8]) -> Result<(), String> {
    let r = match c.fourcc {
        FourCc::MJSN => f.decode_meta(data).map(drop),
        FourCc::MMSG => f.decode_manifest(data).map(drop),
        _ => Ok(()),
    };
    r.map_err(|e| match e {
        crate::Error::Metadata { reason, .. } => reason,
        e => detail(&e, f),
    })
}

fn check_manifest(f: &AeroFile, r: &mut Report) {
    let man = match f.manifest() {
        Ok(Some(m)) => m,
        Ok(None) => {
            r.warnings.push("no MMSG manifest".into());
            return;
        }
        Err(_) => return, // already reported as a chunk error
    };
    let chunks = f.chunks();
    if let Some(list) = man.get("chunks").and_then(|v| v.as_array()) {
        for e in list {
            let idx = e.get("toc_index").and_then(|v| v.as_u64());
            let fourcc = e.get("fourcc").and_then(|v| v.as_str());
            match (idx, fourcc) {
                (Some(i), Some(fc)) => match chunks.get(i as usize) {
                    Some(c) if c.fourcc.to_string() == fc => {}
                    _ => r.errors.push(format!(
                        "manifest: chunk {fc} at toc_index {i} does not match the TOC"
                    )),
                },
                _ => r
                    .errors
                    .push("manifest: chunks entry without toc_index/fourcc".into()),
            }
        }
    }
    let tidx_counts: Option<HashMap<u64, u64>> = f.index().ok().map(|idx| {
        let mut m = HashMap::new();
        for t in idx.tensors() {
            *m.entry(t.shard_id).or_insert(0) += 1;
        }
        m
    });
    if let Some(list) = man.get("shards").and_then(|v| v.as_array()) {
        for s in list {
            let (Some(id), Some(ti)) = (
                s.get("shard_id").and_then(|v| v.as_u64()),
                s.get("toc_index").and_then(|v| v.as_u64()),
            ) else {
                r.errors
                    .push("manifest: shards entry without shard_id/toc_index".into());
                continue;
            };
            match chunks.get(ti as usize) {
                Some(c) if c.fourcc == FourCc::WTSH && c.shard_id() == Some(id) => {
                    if let Some(sz) = s.get("size_bytes").and_then(|v| v.as_u64())
                        && sz != c.length
                    {
                        r.errors.push(format!(
                            "manifest: shard {id} size_bytes {sz} but WTSH length {}",
                            c.length
                        ));
                    }
                }
                _ => r.errors.push(format!(
                    "manifest: shard {id} toc_index {ti} is not weights.shard{id}"
                )),
            }
            if let (Some(n), Some(counts)) =
                (s.get("tensor_count").and_then(|v| v.as_u64()), &tidx_counts)
            {
                let have = counts.get(&id).copied().unwrap_or(0);
                if n != have {
                    r.errors.push(format!(
                        "manifest: shard {id} tensor_count {n} but the TIDX lists {have}"
                    ));
                }
            }
        }
    }
}

fn check_tensors(f: &AeroFile, r: &mut Report) {
    let idx = match f.index() {
        Ok(i) => i,
        Err(e) => {
            let tidx_row_failed = f.first(FourCc::TIDX).is_some_and(|c| {
                r.chunks
                    .iter()
                    .any(|row| row.index == c.index && matches!(row.status, "error" | "mismatch"))
            });
            if tidx_row_failed {
                // Already reported as the TIDX chunk's error.
            } else if f.first(FourCc::TIDX).is_some() {
                r.errors.push(format!("TIDX: {}", detail(&e, f)));
            } else {
                r.errors.push("no TIDX chunk".into());
            }
            return;
        }
    };
    let set_index = f.is_set_index();
    let order = f.shape_order();
    if order == ShapeOrder::Gguf {
        r.warnings.push(
            "shapes are stored in GGUF order, innermost dimension first (written by the \
             reference GGUF converter: MJSN source_format \"gguf\" without a \"gguf\" key, \
             spec §15); readers reverse them"
                .into(),
        );
    }
    for d in idx.duplicates() {
        r.errors
            .push(format!("tensor '{d}': name appears more than once"));
    }
    let mut dup_seen = HashSet::new();
    // Tensors of a shard whose TOC entry is malformed: one line per shard
    // (its chunk row says why), not one per tensor.
    let mut in_bad_shard: Vec<(String, usize)> = Vec::new();
    for t in idx.tensors() {
        let mut problems = Vec::new();
        if !dup_seen.insert(t.name.as_str()) {
            problems.push("duplicate name".to_string());
        }
        size_problems(t, order, &mut problems, &mut r.warnings);
        let hash = if t.hash_b3.is_some() {
            "skipped"
        } else {
            "absent"
        };
        let bad_shard = f
            .shard(t.shard_id)
            .ok()
            .filter(|c| c.weight_shard_problem().is_some());
        if !set_index && let Err(e) = f.tensor_range(t) {
            problems.push(match e {
                crate::Error::Tensor { reason, .. } => reason,
                e => strip_path(&e.to_string(), f),
            });
        }
        let mut shown = problems.as_slice();
        if let (false, Some(c)) = (set_index, bad_shard) {
            match in_bad_shard.iter_mut().find(|(n, _)| *n == c.name) {
                Some((_, n)) => *n += 1,
                None => in_bad_shard.push((c.name.clone(), 1)),
            }
            shown = problems.split_last().map_or(&[], |(_, rest)| rest);
        }
        for p in shown {
            r.errors.push(format!("tensor '{}': {p}", t.name));
        }
        r.tensors.push(TensorReport {
            name: t.name.clone(),
            status: if problems.is_empty() { "ok" } else { "invalid" },
            hash_b3: hash,
            problems,
        });
    }
    for (shard, n) in in_bad_shard {
        r.errors.push(format!(
            "{shard}: its TOC entry is malformed, so none of its {n} tensor(s) can be read"
        ));
    }
    if set_index && !idx.is_empty() {
        r.warnings.push(
            "AEROSET index file: tensor bytes live in the set's parts (validate the set's JSON)"
                .into(),
        );
    }
}

/// One weight shard to scan: its report row, its chunk, the tensors whose
/// `hash_b3` it checks and the PHSH (index into the page checks) checked
/// with it.
struct ShardJob<'f> {
    row: usize,
    chunk: &'f Chunk,
    tensors: Vec<scan::TensorCheck>,
    page_at: Option<usize>,
}

/// Full mode: every weight shard hashed once with its page and tensor
/// hashes ([`crate::scan`]); fills in the WTSH chunk rows, the tensors'
/// `hash_b3` status and the PHSH reports. With `digest`, the whole file is
/// streamed once instead, feeding `digest` and the shard scans together;
/// the result says whether every byte was read (`None` without `digest`).
fn scan_shards(
    f: &AeroFile,
    r: &mut Report,
    progress: Progress<'_>,
    digest: Option<Digest<'_>>,
) -> Option<std::io::Result<()>> {
    let mut pages = integrity::page_checks(f);
    let idx = f.index().ok();
    let mut jobs: Vec<ShardJob<'_>> = Vec::new();
    for row in 0..r.chunks.len() {
        let Some(c) = f.chunks().get(r.chunks[row].index as usize) else {
            continue;
        };
        if c.fourcc != FourCc::WTSH || r.chunks[row].status != "skipped" {
            continue;
        }
        // The tensors stored in this chunk that record a hash.
        let mut tensors = Vec::new();
        if let Some(idx) = idx {
            for (i, t) in idx.tensors().iter().enumerate() {
                let here = f.shard(t.shard_id).is_ok_and(|s| s.index == c.index);
                if let (true, Some(h), Some(rep)) = (here, t.hash_b3, r.tensors.get(i))
                    && rep.status == "ok"
                {
                    tensors.push((i, t.data_off, t.data_len, h));
                }
            }
        }
        // The first usable PHSH of this chunk (not claimed by an earlier
        // copy of the chunk) is checked in the same pass.
        let page_at = pages.iter().enumerate().position(|(i, p)| {
            p.target.as_ref().is_some_and(|(s, _)| *s == c.index)
                && !jobs.iter().any(|j| j.page_at == Some(i))
        });
        jobs.push(ShardJob {
            row,
            chunk: c,
            tensors,
            page_at,
        });
    }
    let (results, digested) = match digest {
        None => {
            let results = jobs
                .iter()
                .map(|j| {
                    let ph = j
                        .page_at
                        .and_then(|i| pages[i].target.as_ref().map(|(_, ph)| ph));
                    scan::scan_shard(
                        f.source_ref(),
                        j.chunk.offset,
                        j.chunk.length,
                        &j.tensors,
                        ph,
                        progress,
                    )
                })
                .collect();
            (results, None)
        }
        Some(d) => {
            let (results, read) = scan_streamed(f, &jobs, &pages, progress, d);
            (results, Some(read))
        }
    };
    for (j, scanned) in jobs.iter().zip(results) {
        let c = j.chunk;
        let status = match scanned {
            Ok(scan) => {
                for &(i, ..) in &j.tensors {
                    let bad = scan.bad_tensors.contains(&i);
                    if let Some(t) = r.tensors.get_mut(i) {
                        t.hash_b3 = if bad { "mismatch" } else { "verified" };
                        if bad {
                            t.status = "invalid";
                            t.problems.push("bytes do not match hash_b3".into());
                            r.errors
                                .push(format!("tensor '{}': bytes do not match hash_b3", t.name));
                        }
                    }
                }
                if let Some(i) = j.page_at {
                    integrity::finish_page_report(&mut pages[i].report, scan.bad_pages);
                    pages[i].target = None;
                }
                if !c.hash_recorded() {
                    ChunkStatus::HashNotRecorded
                } else if scan.shard == c.blake3 {
                    ChunkStatus::Verified
                } else {
                    ChunkStatus::Mismatch
                }
            }
            Err(e) => ChunkStatus::Error(e.to_string()),
        };
        record_chunk(r, j.row, c, status);
    }
    // PHSH chunks not checked above (a second PHSH for one shard).
    for p in &mut pages {
        if let Some((s, ph)) = p.target.take()
            && let Some(c) = f.chunks().get(s as usize)
        {
            match integrity::page_mismatches(f.source_ref(), c.offset, c.length, &ph) {
                Ok(bad) => integrity::finish_page_report(&mut p.report, bad),
                Err(e) => p.report.detail = Some(e.to_string()),
            }
        }
    }
    r.pages = pages.into_iter().map(|p| p.report).collect();
    digested
}

/// Window size of the streamed scans: small, since a set validates several
/// files at once and each keeps one window being filled.
const STREAM_WINDOW: u64 = 4 << 20;

/// One stream over the whole file: every byte goes to `digest`, and the
/// bytes of each job's shard to its [`scan::ShardScanner`], regrouped
/// into windows. Returns each job's scan and whether the stream finished.
fn scan_streamed(
    f: &AeroFile,
    jobs: &[ShardJob<'_>],
    pages: &[integrity::PageCheck],
    progress: Progress<'_>,
    digest: Digest<'_>,
) -> (Vec<std::io::Result<scan::ShardScan>>, std::io::Result<()>) {
    struct Open<'p> {
        scanner: scan::ShardScanner<'p>,
        start: u64,
        end: u64,
        /// Absolute offset the shard's bytes have reached.
        at: u64,
        win: Vec<u8>,
    }
    let mut open: Vec<Open<'_>> = jobs
        .iter()
        .map(|j| {
            let ph = j
                .page_at
                .and_then(|i| pages[i].target.as_ref().map(|(_, ph)| ph));
            Open {
                scanner: scan::ShardScanner::new(j.chunk.length, &j.tensors, ph, STREAM_WINDOW),
                start: j.chunk.offset,
                end: j.chunk.offset.saturating_add(j.chunk.length),
                at: j.chunk.offset,
                win: Vec::new(),
            }
        })
        .collect();
    // The file as ranges cut at the shards' edges, so that each shard's
    // pieces start where it starts and its windows mostly need no copy.
    let len = f.len();
    let mut cuts: Vec<u64> = vec![0, len];
    for o in &open {
        cuts.extend([o.start.min(len), o.end.min(len)]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let ranges: Vec<(u64, u64)> = cuts.windows(2).map(|w| (w[0], w[1] - w[0])).collect();
    let read = f.source().stream(&ranges, &mut |at, bytes| {
        digest(bytes);
        progress(bytes.len() as u64);
        let end = at + bytes.len() as u64;
        for o in open.iter_mut().filter(|o| o.start < end && o.end > at) {
            // Only the bytes this shard has not had yet (chunks may overlap
            // in a damaged file; each scan sees its own range once).
            let from = o.at.max(at);
            let to = o.end.min(end);
            if from >= to {
                continue;
            }
            let mut part = &bytes[(from - at) as usize..(to - at) as usize];
            let ws = o.scanner.window_size();
            while !part.is_empty() {
                let rel = o.at - o.start;
                let size = (o.end - o.start - (rel - rel % ws)).min(ws) as usize;
                let need = size - o.win.len();
                let k = need.min(part.len());
                if o.win.is_empty() && k == size {
                    o.scanner.window(&part[..k]);
                    progress(k as u64);
                } else {
                    o.win.extend_from_slice(&part[..k]);
                    if o.win.len() == size {
                        o.scanner.window(&o.win);
                        o.win.clear();
                        progress(size as u64);
                    }
                }
                o.at += k as u64;
                part = &part[k..];
            }
        }
        Ok(())
    });
    let results = open
        .into_iter()
        .map(|o| match &read {
            Err(e) if o.at < o.end => Err(std::io::Error::new(e.kind(), e.to_string())),
            _ => o.scanner.finish(),
        })
        .collect();
    (results, read)
}

/// Sets a chunk row's status and adds the error or warning it implies.
fn record_chunk(r: &mut Report, row: usize, c: &Chunk, status: ChunkStatus) {
    match &status {
        ChunkStatus::Mismatch => r.errors.push(format!(
            "chunk {} {} '{}': BLAKE3 mismatch",
            c.index, c.fourcc, c.name
        )),
        ChunkStatus::Error(e) => r
            .errors
            .push(format!("chunk {} {} '{}': {e}", c.index, c.fourcc, c.name)),
        ChunkStatus::HashNotRecorded => r.warnings.push(format!(
            "chunk {} {} '{}': hash not recorded (all-zero TOC hash)",
            c.index, c.fourcc, c.name
        )),
        _ => {}
    }
    if let Some(row) = r.chunks.get_mut(row) {
        row.status = status.as_str();
        row.detail = match status {
            ChunkStatus::Error(e) => Some(e),
            _ => None,
        };
    }
}

fn size_problems(
    t: &TensorInfo,
    order: ShapeOrder,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    if t.shape.len() as u64 > aero_format::limits::MAX_RANK {
        problems.push(format!(
            "rank {} exceeds {}",
            t.shape.len(),
            aero_format::limits::MAX_RANK
        ));
    }
    // "ggml type Q4_0 x shape [16, 256]" / "dtype f32 x shape [3, 5]",
    // the shape row-major whatever the file stores.
    let what = || {
        let ty = match t.ggml_type().filter(|_| t.dtype == DType::Packed) {
            Some(g) => format!("ggml type {}", g.name),
            None => format!("dtype {}", t.dtype),
        };
        format!("{ty} x shape {:?}", t.row_major_shape(order))
    };
    match t.len_check(order) {
        LenCheck::Exact => {}
        LenCheck::Unchecked => {
            if let DType::Unknown(c) = t.dtype {
                warnings.push(format!("tensor '{}': unknown dtype code {c}", t.name));
            }
        }
        LenCheck::Padded { len } => warnings.push(format!(
            "tensor '{}': data_len {} is {} = {len} bytes followed by {} bytes of \
             alignment padding (reference GGUF converter, spec §16.5); readers and \
             exporters use the first {len}",
            t.name,
            t.data_len,
            what(),
            t.data_len - len
        )),
        LenCheck::Mismatch { len } => problems.push(format!(
            "data_len {} does not match {} = {len} bytes",
            t.data_len,
            what()
        )),
        LenCheck::NoFit { ty } => problems.push(format!(
            "shape {:?} does not fit ggml type {} (the innermost dimension must be a \
             multiple of its {}-element blocks)",
            t.row_major_shape(order),
            ty.name,
            ty.block_elems
        )),
        LenCheck::Overflow => problems.push("dtype x shape overflows".into()),
    }
}

/// An error as a report line about `f`: without the path (the report names
/// the file) and without the chunk it is already filed under.
pub(crate) fn detail(e: &crate::Error, f: &AeroFile) -> String {
    match e {
        crate::Error::Chunk { reason, .. } => reason.clone(),
        crate::Error::HashMismatch { .. } => "BLAKE3 mismatch".into(),
        _ => strip_path(&e.to_string(), f),
    }
}

fn strip_path(msg: &str, f: &AeroFile) -> String {
    let p = format!("{}: ", f.path().display());
    msg.strip_prefix(&p).unwrap_or(msg).to_string()
}
