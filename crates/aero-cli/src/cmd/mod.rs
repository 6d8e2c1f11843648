//! Subcommands.

mod completions;
mod convert;
mod describe;
mod like;
mod man;
mod read;
pub mod repack;
mod set;
mod transfer;
pub mod validate;
mod write;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Summarise a file: header, chunks, model, key/values, tensor types, tensors.
    ///
    /// Also reads GGUF and safetensors files directly (by content, without
    /// converting them): every key/value typed as gguf-dump types it, arrays
    /// summarised (--all-values for whole vocabularies), tensor types (Q4_K,
    /// IQ2_XS, F16…), element counts and bits per weight, a per-type size
    /// histogram. AERO files converted from GGUF show the kept key/values.
    #[command(
        visible_alias = "info",
        after_help = "Examples:
  aerotensor inspect model.aero
  aerotensor inspect model.gguf                          # before converting it
  aerotensor inspect model.gguf --filter 'blk.0.*'       # glob over names (else substring)
  aerotensor inspect model.gguf --markdown > CARD.md     # tables for a model card
  aerotensor inspect model.gguf --json --all-values | jq '.key_values[] | select(.key == \"tokenizer.ggml.tokens\")'"
    )]
    Inspect(InspectArgs),
    /// List every tensor: name, dtype, shape, shard, offset, length.
    ///
    /// GGUF and safetensors files are listed too: name, type, shape,
    /// elements, offset, bytes, bits per weight.
    #[command(after_help = "Examples:
  aerotensor list model.aero
  aerotensor list model.gguf --filter attn_q            # substring
  aerotensor list model.aero --filter '*.ffn_*' --json | jq -r '.tensors[].name'
  aerotensor list model.safetensors --markdown")]
    List(ListArgs),
    /// Check a file's structure and hashes.
    ///
    /// Default (quick): metadata chunks, tensor table, control-plane hash.
    /// --full also hashes every weight shard, tensor hash_b3 and PHSH page
    /// (one read of the weights). Exit 0 valid, 1 invalid or unreadable
    /// content, 2 when the file cannot be opened; a chunk whose hash was
    /// never recorded is a warning (exit 0), or a failure with --strict.
    #[command(after_help = "Examples:
  aerotensor validate model.aero                 # metadata only, fast
  aerotensor validate --full model.aero          # every weight byte
  aerotensor validate --full --json model.aero   # the report as JSON
  aerotensor validate --full ./model-set         # an AEROSET: manifest, index, every part")]
    Validate(ValidateArgs),
    /// Write one tensor's raw bytes (or an attached file) to a file or stdout.
    ///
    /// The bytes are checked against the file's hashes first (hash_b3, page
    /// hashes or the shard hash); damaged bytes are refused (exit 1) and
    /// nothing is written. `--file NAME` writes an attached file instead
    /// (config.json, a tokenizer), checked against its hash the same way.
    ///
    /// With --as f32|f16|bf16 the tensor's values are written instead, as
    /// little-endian floats: packed GGUF tensors (Q4_K, IQ2_XS, …) are
    /// dequantized bit for bit as gguf-py does, other dtypes converted
    /// (f16/bf16 rounded to nearest even). The bytes are verified first all
    /// the same.
    #[command(after_help = "Examples:
  aerotensor extract model.aero lm_head.weight w.bin
  aerotensor extract model.aero lm_head.weight - | xxd | head
  aerotensor extract model.aero blk.0.attn_q.weight q.f32 --as f32    # Q4_K -> f32 values
  aerotensor extract ./model-set model.norm.weight norm.bin
  aerotensor extract minilm.aero --file config.json config.json      # an attached file")]
    Extract(ExtractArgs),
    /// Compare two files or sets tensor by tensor.
    ///
    /// A side is an AERO file, an AEROSET, a URL, or a safetensors or GGUF
    /// file (read as convert would hold it, so a conversion can be checked).
    /// Reports tensors only in one side, dtype (ggml type for packed GGUF
    /// tensors) and shape changes, and whether each common tensor's bytes
    /// are identical: both sides' bytes are verified against their hashes
    /// first, then compared. --numeric adds, per differing tensor, the max
    /// absolute and relative error and the cosine similarity of the values
    /// (packed tensors dequantized). A different tensor order alone is
    /// reported but is not a difference. Exit 0 identical, 1 different or
    /// a side damaged (then an error naming file, tensor and offset, not a
    /// report), 2 an input it cannot read.
    #[command(after_help = "Examples:
  aerotensor diff a.aero b.aero                      # exit 0 identical, 1 different
  aerotensor diff model.safetensors dist/model.aero  # check a conversion
  aerotensor diff model-q8_0.aero model-q4_k.aero --numeric
  aerotensor diff ./set-v1 ./set-v2 --json | jq '.tensors[] | select(.identical | not) | .name'")]
    Diff(DiffArgs),
    /// Write the AERO v0.1 golden test vector (spec §12).
    MakeTestVector(MakeTestVectorArgs),
    /// Rewrite an AERO file with a new layout, shard size or integrity data.
    ///
    /// Keeps model name, architecture, MJSN extras and unknown TIDX keys.
    /// The input is fully verified first; damaged input is refused unless --force.
    Repack(RepackArgs),
    /// Convert a safetensors file to AERO (tensors sorted by name).
    ///
    /// An OUT named .safetensors or .gguf is refused; a directory receives
    /// <IN stem>.aero.
    ConvertSafetensors(ConvertArgs),
    /// Convert a GGUF (v2/v3) file to AERO; quantized tensors stay packed.
    ///
    /// An OUT named .safetensors or .gguf is refused; a directory receives
    /// <IN stem>.aero.
    ConvertGguf(ConvertArgs),
    /// Convert any supported input, recognised by its content (safetensors, GGUF, AERO,
    /// a Hugging Face model folder).
    ///
    /// What is written is chosen by OUT's name: .safetensors or .gguf export
    /// an AERO input, any other name writes AERO, a directory (existing, or
    /// ending in '/') receives <IN stem>.aero. A sharded safetensors index
    /// file becomes an AEROSET directory.
    ///
    /// A Hugging Face model folder (model.safetensors, or a
    /// *.safetensors.index.json and its shards) becomes one .aero file that
    /// also carries the folder's other files — config.json, tokenizer,
    /// README… (weights in other formats and hidden directories are left
    /// out and listed) — verified like the weights; a sharded folder becomes
    /// an AEROSET unless OUT ends in `.aero`. Model name and architecture
    /// come from config.json (--model-name, --architecture override).
    /// `export-hf` writes the folder back.
    ///
    /// AERO outputs carry a hash_b3 for every tensor and 1 MiB page hashes
    /// (--no-tensor-hash, --no-page-hashes turn them off); the output
    /// appears atomically and missing directories are created.
    #[command(after_help = "Examples:
  aerotensor convert model.safetensors dist/model.aero
  aerotensor convert model.gguf dist/                          # -> dist/model.aero; quantized tensors stay packed
  aerotensor convert dist/model.aero back.safetensors          # export (.gguf likewise)
  aerotensor convert ./all-MiniLM-L6-v2 dist/minilm.aero       # a whole Hugging Face folder
  aerotensor convert ./Llama-3-8B dist/llama-set               # sharded folder -> AEROSET
  aerotensor convert ./checkpoint/model.safetensors.index.json dist/set   # shards alone -> AEROSET
  aerotensor convert in.safetensors out.aero --layout reference   # byte-identical to the reference writer
  aerotensor convert ./Llama-3-8B-v2 dist/llama-set --like dist/llama-set   # update: unchanged parts stay byte-identical")]
    Convert(ConvertAutoArgs),
    /// Write an AERO file back as safetensors (restores __metadata__).
    ///
    /// With --dequantize f16|bf16|f32 every float or packed tensor is
    /// written as floats of that type instead — packed GGUF tensors
    /// dequantized (bit for bit as gguf-py does, then rounded to nearest
    /// even), other floats converted — so a model converted from GGUF
    /// becomes a float safetensors checkpoint. Integer and bool tensors
    /// (position_ids, masks) keep their dtype and bytes.
    /// Names are kept; __metadata__ holds format "pt" and the model name
    /// and architecture. Works on sets and URLs too in this mode. Memory:
    /// one tensor's values at a time.
    #[command(after_help = "Examples:
  aerotensor export-safetensors model.aero back.safetensors
  aerotensor export-safetensors model-q4_k.aero model-f16.safetensors --dequantize f16")]
    ExportSafetensors(ExportSafetensorsArgs),
    /// Write an AERO file back as GGUF (restores key/values and tensor order).
    ExportGguf(ExportArgs),
    /// Write a model back as a Hugging Face folder `transformers` loads.
    ///
    /// The attached files (config.json, tokenizer…) and the weights: the
    /// original model.safetensors or shards with their index when the model
    /// was converted from a folder — the folder again, byte for byte —
    /// else one model.safetensors. Every byte is verified as it is copied.
    /// OUT_DIR must not exist or be empty; it is written as a temporary
    /// directory beside it and renamed into place, so it appears complete
    /// or not at all.
    #[command(after_help = "Examples:
  aerotensor export-hf dist/minilm.aero ./minilm        # then AutoModel.from_pretrained(\"./minilm\")
  aerotensor export-hf dist/llama-set ./llama
  aerotensor export-hf https://host/models/minilm.aero ./minilm")]
    ExportHf(ExportHfArgs),
    /// Summarise an AEROSET: model, index, parts, shards, tensors.
    InspectSet(InspectSetArgs),
    /// Write one tensor of an AEROSET to a file or stdout (`-`).
    ///
    /// Refuses bytes that fail their hash_b3.
    FetchTensor(FetchTensorArgs),
    /// Convert a Hugging Face sharded safetensors checkpoint to an AEROSET.
    ///
    /// IN is a `*.safetensors.index.json` or a directory holding one; OUT_DIR
    /// receives model.aeroset.json, index.aero and part-000.aero…, written
    /// atomically (an existing AEROSET there is replaced; any other non-empty
    /// directory is refused). Tensors are sorted by name. A directory is
    /// taken as a Hugging Face model folder: its other files (config.json,
    /// tokenizer…) are written beside the manifest and listed in it.
    ConvertSafetensorsSharded(ConvertShardedArgs),
    /// Download a .aero file or an AEROSET from a URL, verified, resumable, incremental.
    ///
    /// Parallel range requests (--jobs N, default 8); every byte is checked
    /// as it arrives (PHSH pages and chunk BLAKE3 from the file's TOC, each
    /// file's SHA-256 and size from the set's manifest) and a damaged range
    /// is fetched again, never kept. Files are assembled in .DEST.aero-pull
    /// beside DEST and moved into place only when verified; a set's
    /// manifest comes last and the set replaces DEST in one rename. Killed
    /// at any moment, the next pull keeps every verified byte on disk. When
    /// DEST holds an earlier revision of the set, only files whose SHA-256
    /// changed are fetched. Progress with rate and ETA on a terminal. Exit 1
    /// when the source stays damaged, 2 on other errors.
    #[command(after_help = transfer::PULL_HELP)]
    Pull(transfer::PullArgs),
    /// Upload an AEROSET (or a .aero file) to object storage: parts first, manifest last.
    ///
    /// s3://, gs:// and az:// through object_store (credentials from AWS_*,
    /// GOOGLE_*, AZURE_*; needs the s3 build). Each file is checked against
    /// the manifest before it is sent (a damaged set is never published)
    /// and its SHA-256 is recorded in the object's metadata; a file already
    /// there with the same size and SHA-256 is skipped. The manifest is
    /// uploaded last, so a reader never sees a manifest before its parts.
    /// --base-url writes the uploaded manifest with that base_url, for a CDN
    /// in front of the bucket.
    #[command(after_help = transfer::PUSH_HELP)]
    Push(transfer::PushArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = completions::AFTER_HELP)]
    Completions(completions::CompletionsArgs),
    /// Print the manual page, or write every page (one per command) into a directory.
    #[command(after_help = man::AFTER_HELP)]
    Man(man::ManArgs),
}

/// A float format for values handed out.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatArg {
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

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// First file or set (.aero, AEROSET manifest or directory, URL).
    pub a: PathBuf,
    /// Second file or set.
    pub b: PathBuf,
    /// Also compare values: max abs/rel error and cosine similarity per
    /// differing tensor (packed tensors dequantized).
    #[arg(long)]
    pub numeric: bool,
    /// Machine-readable report.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ExportSafetensorsArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// Write every float or packed tensor as floats of this type
    /// (dequantizing packed GGUF tensors) instead of the stored bytes;
    /// integer and bool tensors keep their dtype.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub dequantize: Option<FloatArg>,
}

#[derive(Args, Debug)]
pub struct InspectSetArgs {
    /// The set: model.aeroset.json or the directory holding it.
    pub set: PathBuf,
    /// Show at most N tensors (0 for none); the rest are counted.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_tensors: usize,
    /// Show every tensor (overrides --max-tensors).
    #[arg(long)]
    pub all_tensors: bool,
    /// Only tensors whose name matches: a glob (`blk.0.*`) over the whole
    /// name, or else a substring.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FetchTensorArgs {
    /// The set: model.aeroset.json or the directory holding it.
    pub set: PathBuf,
    /// Tensor name.
    pub tensor: String,
    /// Output file, or `-` for stdout.
    pub out: PathBuf,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

/// Verification of the bytes a command reads (on by default).
#[derive(Args, Debug, Clone, Copy)]
pub struct VerifyArgs {
    /// Hand out tensor bytes WITHOUT checking them against the file's
    /// hashes (hash_b3, page hashes or the shard hash). Only for files you
    /// trust, or whose hashes are missing.
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Args, Debug)]
pub struct ConvertShardedArgs {
    /// A `*.safetensors.index.json`, or a directory holding one.
    pub input: PathBuf,
    /// Output AEROSET directory.
    pub output: PathBuf,
    /// Shards per part file.
    #[arg(long, value_name = "N", default_value_t = aero_set::writer::DEFAULT_MAX_PART_SHARDS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_part_shards: usize,
    /// URL where the set will be hosted: writes an AEROSET v0.2 manifest with this base_url.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub like: like::LikeArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub writer: WriterArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Input model file, or a Hugging Face model folder (`convert`).
    pub input: PathBuf,
    /// Output file, written atomically; a directory receives <IN stem>.aero
    /// (`convert`: .safetensors / .gguf export an AERO input; a sharded
    /// folder becomes an AEROSET directory unless OUT ends in `.aero`).
    pub output: PathBuf,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub writer: WriterArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// `convert`: [`ConvertArgs`] and, for AEROSET output, `--like`.
#[derive(Args, Debug)]
pub struct ConvertAutoArgs {
    #[command(flatten)]
    pub convert: ConvertArgs,
    #[command(flatten)]
    pub like: like::LikeArgs,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Input .aero file.
    pub input: PathBuf,
    /// Output file (written atomically; `-`, a device or a FIFO are written
    /// through, never replaced).
    pub output: PathBuf,
    /// Do not wait for the output to reach the disk (no fsync), like `cp`;
    /// see the writer flag of the same name.
    #[arg(long)]
    pub no_fsync: bool,
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// How tensors are placed in shards.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayoutArg {
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
pub struct WriterArgs {
    /// Tensor placement. `aligned` also records hash_b3 and page hashes
    /// unless turned off; `reference` places tensors as the reference
    /// writer does (no tensor or page hashes unless asked for; see
    /// docs/CLI.md for when the bytes are identical).
    #[arg(long, value_enum, default_value_t = LayoutArg::Aligned)]
    pub layout: LayoutArg,
    /// Largest shard payload (e.g. 4096, 512M, 2G) [default: 2G].
    #[arg(long, value_name = "N", value_parser = repack::parse_size)]
    pub max_shard_bytes: Option<u64>,
    /// Record a BLAKE3 (hash_b3) for every tensor, so reading one tensor
    /// verifies just that tensor [default: on with --layout aligned].
    #[arg(long, conflicts_with = "no_tensor_hash")]
    pub tensor_hash: bool,
    /// Do not record hash_b3: reading one tensor then verifies its pages or
    /// its whole shard instead.
    #[arg(long)]
    pub no_tensor_hash: bool,
    /// Write an IHSH control-plane hash over header, TOC and string table.
    #[arg(long)]
    pub control_integrity: bool,
    /// Write PHSH page hashes per shard, so partial reads verify at page
    /// cost [default: on with --layout aligned, 1M pages; SIZE default 1M].
    #[arg(long, value_name = "SIZE", num_args = 0..=1, require_equals = true, default_missing_value = "1M", value_parser = repack::parse_size, conflicts_with = "no_page_hashes")]
    pub page_hashes: Option<u64>,
    /// Do not write PHSH page hashes.
    #[arg(long)]
    pub no_page_hashes: bool,
    /// File UUID as 32 hex digits (random by default); fixes the output bytes.
    #[arg(long, value_name = "HEX", value_parser = repack::parse_uuid)]
    pub uuid: Option<[u8; 16]>,
    /// Do not wait for the output to reach the disk (no fsync), like `cp`.
    /// Faster when the disk is the bottleneck; the output still appears
    /// atomically, but a crash or power loss soon after may leave it
    /// incomplete, even where it replaced an existing file.
    #[arg(long)]
    pub no_fsync: bool,
}

#[derive(Args, Debug)]
pub struct RepackArgs {
    /// Input .aero file.
    pub input: PathBuf,
    /// Output .aero file (written atomically).
    pub output: PathBuf,
    #[command(flatten)]
    pub writer: WriterArgs,
    /// Repack even if the input fails verification.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The file: .aero, .gguf or .safetensors (recognised by content), or an
    /// AEROSET (model.aeroset.json or its directory).
    pub file: PathBuf,
    /// Show at most N tensors (0 for none); the rest are counted ("… N more
    /// not shown"; `tensors_shown` and `"truncated": true` in JSON).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_tensors: usize,
    /// Show every tensor (overrides --max-tensors).
    #[arg(long)]
    pub all_tensors: bool,
    /// Only tensors whose name matches: a glob (`blk.0.*`, `*.attn_?.weight`)
    /// over the whole name, or else a substring.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// Show arrays (tokenizer vocabularies…) and long strings whole instead
    /// of their first items.
    #[arg(long)]
    pub all_values: bool,
    /// Markdown tables (for a model card) instead of text.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// The file: .aero, .gguf or .safetensors (recognised by content), or an
    /// AEROSET (model.aeroset.json or its directory).
    pub file: PathBuf,
    /// Only tensors whose name matches: a glob (`blk.0.*`) over the whole
    /// name, or else a substring.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// A markdown table instead of text.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The .aero file, or an AEROSET (model.aeroset.json or its directory).
    pub file: PathBuf,
    /// Verify every chunk including weight shards, every hash_b3 and PHSH page.
    #[arg(long, conflicts_with = "control")]
    pub full: bool,
    /// Check only the control-plane hash (IHSH).
    #[arg(long)]
    pub control: bool,
    /// Treat warnings (e.g. a hash not recorded) as failures.
    #[arg(long)]
    pub strict: bool,
    /// Machine-readable report.
    #[arg(long)]
    pub json: bool,
}

impl ValidateArgs {
    /// Prints the report (JSON or human) and maps the verdict to the exit
    /// code: 1 when invalid, or when warnings remain under `--strict`.
    pub fn finish(
        &self,
        verdict: aero_io::Verdict,
        report: &impl serde::Serialize,
        human: impl FnOnce(),
    ) -> anyhow::Result<ExitCode> {
        if self.json {
            crate::out::print_json(report)?;
        } else {
            human();
        }
        let failed = verdict == aero_io::Verdict::Invalid
            || (self.strict && verdict == aero_io::Verdict::ValidWithWarnings);
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }

    /// The mode the flags select.
    pub fn mode(&self) -> aero_io::Mode {
        if self.full {
            aero_io::Mode::Full
        } else if self.control {
            aero_io::Mode::Control
        } else {
            aero_io::Mode::Quick
        }
    }
}

#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// The .aero file, or an AEROSET (model.aeroset.json or its directory).
    pub file: PathBuf,
    /// Tensor name (with --file: the output).
    #[arg(required_unless_present = "attached")]
    pub tensor: Option<String>,
    /// Output file, or `-` for stdout (the default when stdout is not a terminal).
    pub out: Option<PathBuf>,
    /// Write the attached file NAME (`config.json`, `tokenizer.json`, as
    /// `inspect` lists them) instead of a tensor, verified: `extract MODEL
    /// --file config.json OUT`.
    #[arg(long = "file", value_name = "NAME", conflicts_with = "as_float")]
    pub attached: Option<String>,
    /// Write the values as little-endian floats of this type (dequantizing
    /// a packed tensor) instead of the stored bytes.
    #[arg(
        long = "as",
        value_enum,
        value_name = "TYPE",
        conflicts_with = "no_verify"
    )]
    pub as_float: Option<FloatArg>,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

impl ExtractArgs {
    /// The tensor asked for (present unless `--file` was given).
    pub fn tensor_name(&self) -> &str {
        self.tensor.as_deref().unwrap_or_default()
    }
}

#[derive(Args, Debug)]
pub struct ExportHfArgs {
    /// The model: a .aero file, an AEROSET (model.aeroset.json or its
    /// directory) or a URL of either.
    pub input: PathBuf,
    /// The folder to write: must not exist yet, or be empty. It appears
    /// complete or not at all.
    pub output: PathBuf,
    /// Do not wait for the files to reach the disk (no fsync), like `cp`.
    #[arg(long)]
    pub no_fsync: bool,
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// The model identity a converter records, over what the input says.
#[derive(Args, Debug, Clone, Default)]
pub struct IdentityArgs {
    /// Model name to record [default: config.json's `_name_or_path`, else
    /// the input's metadata].
    #[arg(long, value_name = "NAME")]
    pub model_name: Option<String>,
    /// Architecture to record [default: config.json's `architectures[0]`
    /// or `model_type`, else the input's metadata].
    #[arg(long, value_name = "NAME")]
    pub architecture: Option<String>,
}

impl IdentityArgs {
    pub fn identity(&self) -> aero_convert::Identity {
        aero_convert::Identity {
            model_name: self.model_name.clone(),
            architecture: self.architecture.clone(),
        }
    }
}

#[derive(Args, Debug)]
pub struct MakeTestVectorArgs {
    /// Where to write the test vector.
    pub out: PathBuf,
}

impl Command {
    /// Whether `--json` was given: then an error is also reported as one
    /// JSON document on stdout (`{"error": …, "exit_code": …}`), so a
    /// program reading stdout always gets one.
    pub fn wants_json(&self) -> bool {
        match self {
            Command::Inspect(a) => a.json,
            Command::List(a) => a.json,
            Command::Validate(a) => a.json,
            Command::Repack(a) => a.json,
            Command::ConvertSafetensors(a) | Command::ConvertGguf(a) => a.json,
            Command::Convert(a) => a.convert.json,
            Command::ExportSafetensors(a) => a.export.json,
            Command::ExportGguf(a) => a.json,
            Command::ExportHf(a) => a.json,
            Command::Diff(a) => a.json,
            Command::InspectSet(a) => a.json,
            Command::ConvertSafetensorsSharded(a) => a.json,
            Command::Pull(a) => a.json,
            Command::Push(a) => a.json,
            Command::Extract(_)
            | Command::MakeTestVector(_)
            | Command::FetchTensor(_)
            | Command::Completions(_)
            | Command::Man(_) => false,
        }
    }
}

pub fn run(mut cmd: Command, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    match &mut cmd {
        Command::Inspect(a) if a.all_tensors => a.max_tensors = usize::MAX,
        Command::InspectSet(a) if a.all_tensors => a.max_tensors = usize::MAX,
        _ => {}
    }
    match cmd {
        Command::Inspect(a) if set::is_set(&a.file) => {
            // An AEROSET has no key/values of its own to show whole, and
            // its summary is not a model-card table yet: say so rather
            // than ignore the flag.
            if a.markdown || a.all_values {
                anyhow::bail!(
                    "--markdown and --all-values apply to .aero, .gguf and .safetensors files; for an AEROSET inspect its index.aero, or use --json"
                );
            }
            set::inspect_set(
                InspectSetArgs {
                    set: a.file,
                    max_tensors: a.max_tensors,
                    all_tensors: a.all_tensors,
                    filter: a.filter,
                    json: a.json,
                },
                opener,
            )
        }
        Command::Inspect(a) => read::inspect(a, opener),
        Command::List(a) if set::is_set(&a.file) => set::list(a, opener),
        Command::List(a) => read::list(a, opener),
        Command::Validate(a) if set::is_set(&a.file) => set::validate(a, opener),
        Command::Validate(a) => validate::run(a, opener),
        Command::Extract(a) if a.attached.is_some() => read::extract_attached(a, opener),
        Command::Extract(a) if a.as_float.is_some() => read::extract_floats(a, opener),
        Command::Extract(a) if set::is_set(&a.file) => set::extract(a, opener),
        Command::Diff(a) => read::diff(a, opener),
        Command::Extract(a) => read::extract(a, opener),
        Command::MakeTestVector(a) => write::make_test_vector(a),
        Command::Repack(a) => repack::run(a, opener),
        Command::ConvertSafetensors(a) => convert::safetensors_cmd(a, opener),
        Command::ConvertGguf(a) => convert::gguf_cmd(a, opener),
        Command::Convert(a) => set::convert_auto(a, opener),
        Command::ExportSafetensors(a) => convert::export_safetensors(a, opener),
        Command::ExportGguf(a) => convert::export_gguf(a, opener),
        Command::ExportHf(a) => convert::export_hf(a, opener),
        Command::InspectSet(a) => set::inspect_set(a, opener),
        Command::FetchTensor(a) => set::fetch_tensor(a, opener),
        Command::ConvertSafetensorsSharded(a) => set::convert_sharded(a, opener),
        Command::Pull(a) => transfer::pull(a, opener),
        Command::Push(a) => transfer::push(a, opener),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
    }
}
