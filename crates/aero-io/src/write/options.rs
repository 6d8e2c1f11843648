//! Options of the streaming writer: layout, shard size, hashes, UUID,
//! durability.

pub use crate::random::random_uuid;

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
    pub(super) fn tensor_align(self) -> u64 {
        match self {
            Layout::Aligned => 64,
            Layout::Reference => 1,
        }
    }
    pub(super) fn shard_align(self) -> u64 {
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

/// Options for [`write_model`](super::write_model).
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
    /// Files that travel with the weights (`config.json`, a tokenizer):
    /// each becomes a `FILE` chunk, placed after everything else in both
    /// TOC and file order (see [`crate::attached`]).
    pub attached: Vec<crate::attached::AttachedFile>,
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
            attached: Vec::new(),
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
