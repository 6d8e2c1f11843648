//! Structured validation of one AERO file (spec §8–§10).

use std::collections::{HashMap, HashSet};

use aero_format::{DType, FourCc};
use serde::Serialize;

use crate::chunk::{Chunk, ChunkStatus};
use crate::file::AeroFile;
use crate::index::TensorInfo;
use crate::integrity::{ControlStatus, PageReport, check_control, check_pages};
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
    /// The file validated.
    pub file: String,
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
}

impl Report {
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
    let mut r = Report {
        file: f.path().display().to_string(),
        mode,
        verdict: Verdict::Valid,
        valid: true,
        chunks: Vec::new(),
        tensors: Vec::new(),
        control: ControlStatus::NotPresent,
        pages: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
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
        return r.finish();
    }

    check_duplicates(f, &mut r);
    for c in f.chunks() {
        let status = chunk_status(f, c, mode, progress);
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
        let detail = if let ChunkStatus::Error(e) = &status {
            Some(e.clone())
        } else {
            None
        };
        r.chunks.push(ChunkReport {
            index: c.index,
            fourcc: c.fourcc.to_string(),
            name: c.name.clone(),
            offset: c.offset,
            length: c.length,
            ulen: c.ulen,
            flags: c.flags.0,
            status: status.as_str(),
            detail,
        });
    }

    check_manifest(f, &mut r);
    check_tensors(f, mode, &mut r);
    if mode == Mode::Full {
        for p in check_pages(f) {
            if p.status != "verified" {
                r.errors.push(format!(
                    "PHSH '{}': {}",
                    p.chunk,
                    p.detail.clone().unwrap_or_else(|| p.status.to_string())
                ));
            }
            r.pages.push(p);
        }
    }
    r.finish()
}

fn check_duplicates(f: &AeroFile, r: &mut Report) {
    let mut seen = HashSet::new();
    for c in f.chunks() {
        if c.fourcc.is_known() && !seen.insert((c.fourcc, c.name.as_str())) {
            r.errors.push(format!(
                "chunk {} {} '{}': duplicate (fourcc, name)",
                c.index, c.fourcc, c.name
            ));
        }
    }
}

fn chunk_status(f: &AeroFile, c: &Chunk, mode: Mode, progress: Progress<'_>) -> ChunkStatus {
    let metadata = c.fourcc.is_metadata();
    if !metadata && mode != Mode::Full {
        return ChunkStatus::Skipped;
    }
    if c.fourcc == FourCc::WTSH {
        if c.flags.compressed() {
            return ChunkStatus::Error("weight shard flagged as compressed".into());
        }
        if c.length != c.ulen {
            return ChunkStatus::Error(format!(
                "chunk_length {} != chunk_ulen {}",
                c.length, c.ulen
            ));
        }
        return match verify::hash_range(f.source(), c.offset, c.length, progress) {
            Ok(_) if !c.hash_recorded() => ChunkStatus::HashNotRecorded,
            Ok(h) if *h.as_bytes() == c.blake3 => ChunkStatus::Verified,
            Ok(_) => ChunkStatus::Mismatch,
            Err(e) => ChunkStatus::Error(e.to_string()),
        };
    }
    let out = match f.payload(c) {
        Ok(_) if !c.hash_recorded() => ChunkStatus::HashNotRecorded,
        Ok(data) if *verify::hash(&data).as_bytes() == c.blake3 => ChunkStatus::Verified,
        Ok(_) => ChunkStatus::Mismatch,
        Err(e) => ChunkStatus::Error(e.to_string()),
    };
    progress(c.length);
    out
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

fn check_tensors(f: &AeroFile, mode: Mode, r: &mut Report) {
    let idx = match f.index() {
        Ok(i) => i,
        Err(e) => {
            if f.first(FourCc::TIDX).is_some() {
                r.errors.push(format!("TIDX: {e}"));
            } else {
                r.errors.push("no TIDX chunk".into());
            }
            return;
        }
    };
    let set_index = f.is_set_index();
    for d in idx.duplicates() {
        r.errors
            .push(format!("tensor '{d}': name appears more than once"));
    }
    let mut dup_seen = HashSet::new();
    for t in idx.tensors() {
        let mut problems = Vec::new();
        if !dup_seen.insert(t.name.as_str()) {
            problems.push("duplicate name".to_string());
        }
        size_problems(t, &mut problems, &mut r.warnings);
        let mut hash = if t.hash_b3.is_some() {
            "skipped"
        } else {
            "absent"
        };
        if !set_index {
            match f.tensor_range(t) {
                Err(e) => problems.push(strip_path(&e.to_string(), f)),
                Ok(_) if mode == Mode::Full && t.hash_b3.is_some() => {
                    hash = match f.tensor_unverified(t) {
                        Ok(v) if Some(*verify::hash(v.bytes()).as_bytes()) == t.hash_b3 => {
                            "verified"
                        }
                        Ok(_) => {
                            problems.push("bytes do not match hash_b3".into());
                            "mismatch"
                        }
                        Err(e) => {
                            problems.push(strip_path(&e.to_string(), f));
                            "mismatch"
                        }
                    };
                }
                Ok(_) => {}
            }
        }
        for p in &problems {
            r.errors.push(format!("tensor '{}': {p}", t.name));
        }
        r.tensors.push(TensorReport {
            name: t.name.clone(),
            status: if problems.is_empty() { "ok" } else { "invalid" },
            hash_b3: hash,
            problems,
        });
    }
    if set_index && !idx.is_empty() {
        r.warnings.push(
            "AEROSET index file: tensor bytes live in the set's parts (validate the set's JSON)"
                .into(),
        );
    }
}

fn size_problems(t: &TensorInfo, problems: &mut Vec<String>, warnings: &mut Vec<String>) {
    if t.shape.len() as u64 > aero_format::limits::MAX_RANK {
        problems.push(format!(
            "rank {} exceeds {}",
            t.shape.len(),
            aero_format::limits::MAX_RANK
        ));
    }
    match t.dtype {
        DType::Unknown(c) => warnings.push(format!("tensor '{}': unknown dtype code {c}", t.name)),
        DType::Packed => {}
        d => match t.elements() {
            None => problems.push("shape product overflows".into()),
            Some(n) => match d.byte_len(n) {
                Some(len) if len == t.data_len => {}
                Some(len) => problems.push(format!(
                    "data_len {} does not match dtype {} x shape {:?} = {len} bytes",
                    t.data_len, d, t.shape
                )),
                None => problems.push("dtype x shape overflows".into()),
            },
        },
    }
}

fn strip_path(msg: &str, f: &AeroFile) -> String {
    let p = format!("{}: ", f.path().display());
    msg.strip_prefix(&p).unwrap_or(msg).to_string()
}
