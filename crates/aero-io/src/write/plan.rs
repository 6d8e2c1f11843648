//! Where everything goes: shards (spec §11 planning) and the TOC-order
//! chunk list.

use aero_format::FourCc;
use aero_format::layout::align_up;
use aero_format::names::{self, ShardName};

use super::options::{Layout, WriteOptions};
use crate::error::{Error, Result};

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
        let overflow = || Error::LimitExceeded {
            what: "a shard size",
        };
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

pub(super) struct Planned {
    /// TOC-order chunk descriptors.
    pub(super) fourcc: Vec<FourCc>,
    pub(super) names: Vec<String>,
    pub(super) flags: Vec<u32>,
    /// TOC positions of each kind of chunk.
    pub(super) ihsh: Option<usize>,
    pub(super) mjsn: usize,
    pub(super) mmsg: usize,
    pub(super) tidx: usize,
    pub(super) wtsh: Vec<usize>,
    pub(super) phsh: Vec<Option<usize>>,
    /// One `FILE` chunk per attached file, after the shards.
    pub(super) files: Vec<usize>,
}

pub(super) fn plan_chunks(opts: &WriteOptions, shard_len: &[u64]) -> Planned {
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
        files: Vec::new(),
    };
    let push = |p: &mut Planned, fc: FourCc, name: String| {
        let flags = aero_format::encode::standard_flags(fc).0;
        p.fourcc.push(fc);
        p.names.push(name);
        p.flags.push(flags);
        p.fourcc.len() - 1
    };
    if opts.control_integrity {
        p.ihsh = Some(push(&mut p, FourCc::IHSH, names::CONTROL_INTEGRITY.into()));
    }
    p.mjsn = push(&mut p, FourCc::MJSN, names::META_JSON.into());
    p.mmsg = push(&mut p, FourCc::MMSG, names::MANIFEST.into());
    p.tidx = push(&mut p, FourCc::TIDX, names::TENSORS.into());
    for (s, &len) in shard_len.iter().enumerate() {
        let id = opts.first_shard_id + s as u64;
        let w = push(&mut p, FourCc::WTSH, ShardName::weights(id).to_string());
        p.wtsh.push(w);
        // An empty shard has no pages: its PHSH would hold no digests,
        // which the reference package's validator rejects (spec §16.7).
        let ph = opts
            .page_hashes
            .filter(|_| len > 0)
            .map(|_| push(&mut p, FourCc::PHSH, ShardName::page_hashes(id).to_string()));
        p.phsh.push(ph);
    }
    for a in &opts.attached {
        let i = push(&mut p, FourCc::FILE, a.name.clone());
        p.files.push(i);
    }
    p
}
