//! Flag groups several commands flatten into their arguments, and their
//! value parsers.

use std::path::PathBuf;

use aero_io::write::WriteOptions;
use clap::Args;

/// A float format for values handed out.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FloatArg {
    /// IEEE single, 4 bytes.
    F32,
    /// IEEE half, 2 bytes (round to nearest even).
    F16,
    /// bfloat16, 2 bytes (round to nearest even).
    Bf16,
}

impl From<FloatArg> for aero_convert::floats::FloatFormat {
    fn from(a: FloatArg) -> Self {
        match a {
            FloatArg::F32 => Self::F32,
            FloatArg::F16 => Self::F16,
            FloatArg::Bf16 => Self::BF16,
        }
    }
}

/// Verification of the bytes a command reads (on by default).
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct VerifyArgs {
    /// Hand out tensor bytes WITHOUT checking them against the file's
    /// hashes (hash_b3, page hashes or the shard hash). Only for files you
    /// trust, or whose hashes are missing.
    #[arg(long)]
    pub(crate) no_verify: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ConvertArgs {
    /// Input model file, or a Hugging Face model folder (`convert`).
    pub(crate) input: PathBuf,
    /// Output file, written atomically; a directory receives <IN stem>.aero
    /// (`convert`: .safetensors / .gguf export an AERO input; a sharded
    /// folder becomes an AEROSET directory unless OUT ends in `.aero`).
    pub(crate) output: PathBuf,
    #[command(flatten)]
    pub(crate) identity: IdentityArgs,
    #[command(flatten)]
    pub(crate) writer: WriterArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// Input .aero file.
    pub(crate) input: PathBuf,
    /// Output file (written atomically; `-`, a device or a FIFO are written
    /// through, never replaced).
    pub(crate) output: PathBuf,
    /// Do not wait for the output to reach the disk (no fsync), like `cp`;
    /// see the writer flag of the same name.
    #[arg(long)]
    pub(crate) no_fsync: bool,
    #[command(flatten)]
    pub(crate) verify: VerifyArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub(crate) json: bool,
}

/// How tensors are placed in shards.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum LayoutArg {
    /// data_off % 64 == 0, shards at 4096-byte offsets: zero-copy typed views for every dtype.
    #[default]
    Aligned,
    /// Tensors packed back to back, as the reference writer places them:
    /// byte-identical to its output without tensor or page hashes, except
    /// that the MJSN hash is recorded where the reference's 0.2.0 package
    /// writer leaves it all zero (spec §16.1).
    Reference,
}

/// Options shared by every command that writes an AERO file.
#[derive(Args, Debug, Clone)]
pub(crate) struct WriterArgs {
    /// Tensor placement. `aligned` also records hash_b3 and page hashes
    /// unless turned off; `reference` places tensors as the reference
    /// writer does (no tensor or page hashes unless asked for; see
    /// docs/CLI.md for when the bytes are identical).
    #[arg(long, value_enum, default_value_t = LayoutArg::Aligned)]
    pub(crate) layout: LayoutArg,
    /// Largest shard payload (e.g. 4096, 512M, 2G) [default: 2G].
    #[arg(long, value_name = "N", value_parser = parse_size)]
    pub(crate) max_shard_bytes: Option<u64>,
    /// Record a BLAKE3 (hash_b3) for every tensor, so reading one tensor
    /// verifies just that tensor [default: on with --layout aligned].
    #[arg(long, conflicts_with = "no_tensor_hash")]
    pub(crate) tensor_hash: bool,
    /// Do not record hash_b3: reading one tensor then verifies its pages or
    /// its whole shard instead.
    #[arg(long)]
    pub(crate) no_tensor_hash: bool,
    /// Write an IHSH control-plane hash over header, TOC and string table.
    #[arg(long)]
    pub(crate) control_integrity: bool,
    /// Write PHSH page hashes per shard, so partial reads verify at page
    /// cost [default: on with --layout aligned, 1M pages; SIZE default 1M].
    #[arg(long, value_name = "SIZE", num_args = 0..=1, require_equals = true, default_missing_value = "1M", value_parser = parse_size, conflicts_with = "no_page_hashes")]
    pub(crate) page_hashes: Option<u64>,
    /// Do not write PHSH page hashes.
    #[arg(long)]
    pub(crate) no_page_hashes: bool,
    /// File UUID as 32 hex digits (random by default); fixes the output bytes.
    #[arg(long, value_name = "HEX", value_parser = parse_uuid)]
    pub(crate) uuid: Option<[u8; 16]>,
    /// Do not wait for the output to reach the disk (no fsync), like `cp`.
    /// Faster when the disk is the bottleneck; the output still appears
    /// atomically, but a crash or power loss soon after may leave it
    /// incomplete, even where it replaced an existing file.
    #[arg(long)]
    pub(crate) no_fsync: bool,
}

impl WriterArgs {
    /// The flags given that only mean something for an AERO output (all
    /// but `--no-fsync`), as typed: `convert` refuses them when it exports.
    pub(crate) fn aero_only_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.layout != LayoutArg::Aligned {
            v.push("--layout");
        }
        if self.max_shard_bytes.is_some() {
            v.push("--max-shard-bytes");
        }
        if self.tensor_hash {
            v.push("--tensor-hash");
        }
        if self.no_tensor_hash {
            v.push("--no-tensor-hash");
        }
        if self.control_integrity {
            v.push("--control-integrity");
        }
        if self.page_hashes.is_some() {
            v.push("--page-hashes");
        }
        if self.no_page_hashes {
            v.push("--no-page-hashes");
        }
        if self.uuid.is_some() {
            v.push("--uuid");
        }
        v
    }

    /// Writer options from the common flags.
    pub(crate) fn options(&self) -> WriteOptions {
        let base = match self.layout {
            LayoutArg::Aligned => WriteOptions::default(),
            LayoutArg::Reference => WriteOptions::reference(),
        };
        WriteOptions {
            max_shard_bytes: self
                .max_shard_bytes
                .unwrap_or(aero_io::write::DEFAULT_MAX_SHARD_BYTES),
            uuid: self.uuid,
            tensor_hash: (base.tensor_hash || self.tensor_hash) && !self.no_tensor_hash,
            control_integrity: self.control_integrity,
            page_hashes: if self.no_page_hashes {
                None
            } else {
                self.page_hashes.or(base.page_hashes)
            },
            durable: !self.no_fsync,
            ..base
        }
    }
}

/// Parses `4096`, `64K`, `64KiB`, `512M`, `2G`, `2GiB` (powers of 1024).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (examples: 4096, 64K, 512M, 2G)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        u => return Err(format!("unknown size unit '{u}' in '{s}'")),
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("size '{s}' is zero or too large"))
}

/// Parses 32 hex digits (dashes allowed) into a UUID.
pub(crate) fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let h: String = s.chars().filter(|c| *c != '-').collect();
    let v = hex::decode(&h).map_err(|_| format!("'{s}' is not hex"))?;
    v.try_into()
        .map_err(|_| format!("UUID '{s}' must be 32 hex digits (16 bytes)"))
}

/// The model identity a converter records, over what the input says.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct IdentityArgs {
    /// Model name to record [default: config.json's `_name_or_path`, else
    /// the input's metadata].
    #[arg(long, value_name = "NAME")]
    pub(crate) model_name: Option<String>,
    /// Architecture to record [default: config.json's `architectures[0]`
    /// or `model_type`, else the input's metadata].
    #[arg(long, value_name = "NAME")]
    pub(crate) architecture: Option<String>,
}

impl IdentityArgs {
    pub(crate) fn identity(&self) -> aero_convert::Identity {
        aero_convert::Identity {
            model_name: self.model_name.clone(),
            architecture: self.architecture.clone(),
        }
    }
}
