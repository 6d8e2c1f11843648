//! Part-stable writing: a new revision of a model written on the plan of
//! the set it replaces ([`crate::SetWriteOptions::like`]), so that every part whose
//! tensors did not change comes out byte-identical and an update ships only
//! the parts that did (plus the index and the manifest).
//!
//! [`SetPlan::of_set`] reads what the old set decided: its parts in order,
//! each with its file name, UUID (from the part's header), shard ids and
//! tensors in stored order, and the index's UUID. The writer then places
//! the new revision's tensors by name:
//!
//! - a tensor the old set has stays in its old part, in its old order;
//! - a part keeps its file name, its UUID and its first shard id, and is
//!   re-planned (with the current `max_shard_bytes` and layout) over the
//!   tensors it still holds. When that needs more shards than the part had
//!   (a tensor grew), the part takes fresh shard ids after every id in use,
//!   so no two parts ever claim one; when it holds no tensor any more
//!   (all removed), it is dropped;
//! - tensors the old set does not have go, in input order, into new parts
//!   after the old ones, planned as a fresh set would be (`max_part_shards`
//!   shards each) with fresh shard ids, named `part-NNN.aero` numbered after
//!   the highest old number — a name the old set used is never reused for
//!   other content, so a cache in front of the parts never serves a stale
//!   one — with UUIDs derived from the index's UUID and that number
//!   ([`part_uuid`]);
//! - the index keeps the old index's UUID.
//!
//! A part comes out byte-identical to its old file when it holds the same
//! tensors (names, dtypes, shapes, bytes, extras) and is written with the
//! same per-part settings as before: the writer flags (layout,
//! `max_shard_bytes`, tensor and page hashes, control integrity), the model
//! name and architecture and the source metadata every part records
//! (`source_format`, …). Changing one of those changes every part.

use std::collections::HashMap;
use std::path::PathBuf;

use aero_io::DType;
use aero_io::write::{ShardPlan, WriteOptions};
use sha2::{Digest, Sha256};

use crate::AeroSet;
use crate::error::{Result, SetError};

/// What an existing set decided about its layout, for writing a new
/// revision on it ([`crate::SetWriteOptions::like`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetPlan {
    /// The old set's manifest (or label), named in errors and reports.
    pub set: PathBuf,
    /// The old parts, in manifest order.
    pub parts: Vec<PlannedPart>,
    /// The old index's UUID: the new index keeps it, and new parts derive
    /// theirs from it.
    pub index_uuid: [u8; 16],
}

/// One part of a [`SetPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedPart {
    /// Its file name in the set's directory (`part-003.aero`).
    pub path: String,
    /// The UUID in its header.
    pub uuid: [u8; 16],
    /// The global shard ids it holds (as the manifest lists them).
    pub shards: Vec<u64>,
    /// Its tensors' names, in the part's stored order.
    pub tensors: Vec<String>,
    /// The SHA-256 of the whole file (from the manifest): a part written
    /// anew with this hash is byte-identical to the old one.
    pub sha256: [u8; 32],
}

impl SetPlan {
    /// Reads the plan of `set`: its manifest, its index's header and every
    /// part's header and tensor index (no weights are read). Part paths
    /// must be plain file names in the set's directory (what this crate's
    /// writer names them): the new revision writes files of those names.
    pub fn of_set(set: &AeroSet) -> Result<SetPlan> {
        let label = set.path().to_path_buf();
        let index_uuid = set.index_file()?.header().uuid;
        let mut parts = Vec::with_capacity(set.part_count());
        for (i, p) in set.manifest().parts.iter().enumerate() {
            let path = p.file.path.as_str();
            if path.contains(['/', '\\']) || path.contains("://") || path.starts_with('.') {
                return Err(SetError::Plan {
                    set: label,
                    reason: format!(
                        "parts[{i}].path '{path}' is not a plain file name in the set's directory; a new revision keeps the part file names, so the plan of this set cannot be followed"
                    ),
                });
            }
            let f = set.part(i)?;
            parts.push(PlannedPart {
                path: path.to_string(),
                uuid: f.header().uuid,
                shards: p.shards.clone(),
                tensors: f
                    .index()?
                    .tensors()
                    .iter()
                    .map(|t| t.name.clone())
                    .collect(),
                sha256: p.file.sha256,
            });
        }
        Ok(SetPlan {
            set: label,
            parts,
            index_uuid,
        })
    }
}

/// One part to write: its file name, UUID, first global shard id and the
/// tensors (indexes into the writer's input) in write order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartJob {
    pub name: String,
    pub uuid: Option<[u8; 16]>,
    pub first_shard: u64,
    /// Shards the part is planned with (checked against what is written).
    pub shards: usize,
    pub tensors: Vec<usize>,
    /// The old part's SHA-256 when the part is an old one kept.
    pub old_sha256: Option<[u8; 32]>,
}

/// A tensor to write, without its bytes (they come from a callback).
#[derive(Clone, Debug, PartialEq)]
pub struct SetTensor {
    /// Unique name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Byte length the source will supply.
    pub data_len: u64,
    /// Extra TIDX keys as raw MessagePack (`quant_id`, `quant_params`, …).
    pub extras: Vec<(String, Vec<u8>)>,
}

/// The UUID of part `p` derived from the set's UUID.
pub fn part_uuid(set_uuid: &[u8; 16], part: usize) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"aeroset-part-uuid");
    h.update(set_uuid);
    h.update((part as u64).to_le_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The parts of a fresh set: shards planned over all tensors in order,
/// `max_part_shards` per part, `part-000.aero`… with UUIDs derived from
/// `file.uuid` when given.
pub(crate) fn fresh_jobs(
    tensors: &[SetTensor],
    file: &WriteOptions,
    max_part_shards: usize,
) -> Result<Vec<PartJob>> {
    let all: Vec<usize> = (0..tensors.len()).collect();
    let mut jobs = Vec::new();
    group(
        tensors,
        &all,
        file,
        max_part_shards,
        0,
        &mut |p| {
            let name = format!("part-{p:03}.aero");
            let uuid = file.uuid.map(|u| part_uuid(&u, p));
            (name, uuid)
        },
        &mut jobs,
    )?;
    Ok(jobs)
}

/// Plans `idx` (indexes into `tensors`, in order) as a fresh set would,
/// shard ids from `first_shard`, and appends one job per group of
/// `max_part_shards` shards, named and given UUIDs by `naming(p)` for the
/// p-th new part.
fn group(
    tensors: &[SetTensor],
    idx: &[usize],
    file: &WriteOptions,
    max_part_shards: usize,
    first_shard: u64,
    naming: &mut dyn FnMut(usize) -> (String, Option<[u8; 16]>),
    jobs: &mut Vec<PartJob>,
) -> Result<()> {
    let plan = ShardPlan::new(
        idx.iter().map(|&i| tensors[i].data_len),
        file.max_shard_bytes,
        file.layout,
    )?;
    let nshards = plan.shard_len.len();
    let k = max_part_shards;
    let mut ti = 0;
    for p in 0..nshards.div_ceil(k) {
        let first = p * k;
        let last = (first + k).min(nshards);
        let start = ti;
        while ti < idx.len() && plan.placement[ti].0 < last {
            ti += 1;
        }
        let (name, uuid) = naming(p);
        jobs.push(PartJob {
            name,
            uuid,
            first_shard: first_shard + first as u64,
            shards: last - first,
            tensors: idx[start..ti].to_vec(),
            old_sha256: None,
        });
    }
    Ok(())
}

/// The parts of a new revision written on `plan` (see the module docs).
pub(crate) fn like_jobs(
    tensors: &[SetTensor],
    file: &WriteOptions,
    max_part_shards: usize,
    plan: &SetPlan,
) -> Result<Vec<PartJob>> {
    let by_name: HashMap<&str, usize> = tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut placed = vec![false; tensors.len()];
    // Fresh shard ids start after every id the old set used, so a part
    // that outgrows its ids never collides with one that kept them.
    let mut next_shard = plan
        .parts
        .iter()
        .flat_map(|p| p.shards.iter().copied())
        .max()
        .map_or(0, |m| m + 1);
    let mut jobs = Vec::new();
    for old in &plan.parts {
        let idx: Vec<usize> = old
            .tensors
            .iter()
            .filter_map(|n| by_name.get(n.as_str()).copied())
            .filter(|&i| !std::mem::replace(&mut placed[i], true))
            .collect();
        if idx.is_empty() {
            continue;
        }
        let shards = ShardPlan::new(
            idx.iter().map(|&i| tensors[i].data_len),
            file.max_shard_bytes,
            file.layout,
        )?
        .shard_len
        .len();
        let first = old.shards.iter().copied().min().unwrap_or(next_shard);
        let fits = shards <= old.shards.len()
            && (first..first + shards as u64).all(|s| old.shards.contains(&s));
        let first_shard = if fits {
            first
        } else {
            let f = next_shard;
            next_shard += shards as u64;
            f
        };
        jobs.push(PartJob {
            name: old.path.clone(),
            uuid: Some(old.uuid),
            first_shard,
            shards,
            tensors: idx,
            old_sha256: Some(old.sha256),
        });
    }
    let new: Vec<usize> = (0..tensors.len()).filter(|&i| !placed[i]).collect();
    if !new.is_empty() {
        let old_names: Vec<&str> = plan.parts.iter().map(|p| p.path.as_str()).collect();
        let mut number = plan
            .parts
            .iter()
            .filter_map(|p| {
                p.path
                    .strip_prefix("part-")?
                    .strip_suffix(".aero")?
                    .parse::<usize>()
                    .ok()
            })
            .max()
            .map_or(plan.parts.len(), |m| m + 1);
        let index_uuid = plan.index_uuid;
        group(
            tensors,
            &new,
            file,
            max_part_shards,
            next_shard,
            &mut |_| {
                let mut name = format!("part-{number:03}.aero");
                while old_names.contains(&name.as_str()) {
                    number += 1;
                    name = format!("part-{number:03}.aero");
                }
                let uuid = part_uuid(&index_uuid, number);
                number += 1;
                (name, Some(uuid))
            },
            &mut jobs,
        )?;
    }
    Ok(jobs)
}
