//! `convert-safetensors-sharded`: a sharded safetensors checkpoint (or a
//! Hugging Face folder) converted to an AEROSET directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aero_convert::InputKind;
use aero_convert::route::Conversion;
use aero_convert::sharded::ShardedSafetensors;
use aero_set::SetWriteOptions;
use anyhow::{Context, bail};
use clap::Args;

use super::Run;
use super::common::args::{ConvertArgs, IdentityArgs, WriterArgs};
use super::common::convert::{checked_output, expect_kind};
use super::common::like::LikeArgs;
use super::common::written::report_set_written;
use super::convert::convert_folder;
use crate::out;
use crate::remote::Opener;

/// Convert a Hugging Face sharded safetensors checkpoint to an AEROSET.
///
/// IN is a `*.safetensors.index.json` or a directory holding one; OUT_DIR
/// receives model.aeroset.json, index.aero and part-000.aero…, written
/// atomically (an existing AEROSET there is replaced; any other non-empty
/// directory is refused). Tensors are sorted by name. A directory is
/// taken as a Hugging Face model folder: its other files (config.json,
/// tokenizer…) are written beside the manifest and listed in it.
#[derive(Args, Debug)]
pub(crate) struct ConvertShardedArgs {
    /// A `*.safetensors.index.json`, or a directory holding one.
    pub(crate) input: PathBuf,
    /// Output AEROSET directory.
    pub(crate) output: PathBuf,
    /// Shards per part file.
    #[arg(long, value_name = "N", default_value_t = aero_set::writer::DEFAULT_MAX_PART_SHARDS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) max_part_shards: usize,
    /// URL where the set will be hosted: writes an AEROSET v0.2 manifest with this base_url.
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: Option<String>,
    #[command(flatten)]
    pub(crate) like: LikeArgs,
    #[command(flatten)]
    pub(crate) identity: IdentityArgs,
    #[command(flatten)]
    pub(crate) writer: WriterArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub(crate) json: bool,
}

impl Run for ConvertShardedArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        let set = SetParams {
            max_part_shards: self.max_part_shards,
            base_url: self.base_url,
            like: self.like,
        };
        let mut a = ConvertArgs {
            input: self.input,
            output: self.output,
            identity: self.identity,
            writer: self.writer,
            json: self.json,
        };
        if a.input.is_dir() && aero_convert::hf::is_folder(&a.input) {
            // A model folder: its other files travel with the weights.
            a.output = checked_output(Conversion::FolderToSet, &a.input, &a.output, opener)?;
            return convert_folder(a, Some(set), opener);
        }
        expect_kind(&a.input, InputKind::ShardedSafeTensors)?;
        a.output = checked_output(Conversion::ShardedToSet, &a.input, &a.output, opener)?;
        write_set(a, set, opener)
    }

    fn wants_json(&self) -> bool {
        self.json
    }
}

/// The AEROSET options of a conversion that writes one.
pub(crate) struct SetParams {
    /// `--max-part-shards`.
    pub(crate) max_part_shards: usize,
    /// `--base-url`.
    pub(crate) base_url: Option<String>,
    /// `--like`.
    pub(crate) like: LikeArgs,
}

impl Default for SetParams {
    /// What `convert` writes: the default part size, no base URL, no `--like`.
    fn default() -> Self {
        SetParams {
            max_part_shards: aero_set::writer::DEFAULT_MAX_PART_SHARDS,
            base_url: None,
            like: LikeArgs::default(),
        }
    }
}

/// A sharded safetensors checkpoint, already recognised as one, written as
/// an AEROSET at an output already checked (this command, and `convert`).
pub(crate) fn write_set(a: ConvertArgs, set: SetParams, opener: &Opener) -> anyhow::Result<ExitCode> {
    let mut inp = ShardedSafetensors::open(&a.input)?;
    inp.identity = a.identity.identity();
    let index_dir = inp.index_path().parent().map(Path::to_path_buf);
    if let (Some(d), Ok(o)) = (index_dir, a.output.canonicalize())
        && d.canonicalize().is_ok_and(|d| d == o)
    {
        bail!(
            "{}: the output directory is the input's directory",
            a.output.display()
        );
    }
    let base = SetWriteOptions {
        file: a.writer.options(),
        max_part_shards: set.max_part_shards,
        // Like the single-file converters, which write over an existing
        // output: an existing AEROSET (and nothing else) is replaced.
        replace: true,
        base_url: set.base_url,
        manifest_extra: Default::default(),
        like: set.like.plan(opener)?,
    };
    let pb = out::bytes_bar(inp.data_len(), "converting");
    let bar = pb.clone();
    let s = inp
        .write(&a.output, &base, &move |n| bar.inc(n))
        .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    let mut extra = serde_json::Map::new();
    set.like.json(&s, &mut extra);
    report_set_written(&a.output, &s, a.json, extra)?;
    if !a.json {
        set.like.print(&s);
    }
    Ok(ExitCode::SUCCESS)
}
