//! `convert-safetensors-sharded`: a sharded safetensors checkpoint (or a
//! Hugging Face folder) converted to an AEROSET directory.

use std::path::PathBuf;
use std::process::ExitCode;

use aero_convert::InputKind;
use aero_convert::route::Conversion;
use clap::Args;

use super::Run;
use super::common::args::{ConvertArgs, IdentityArgs, WriterArgs};
use super::common::convert::{checked_output, expect_kind};
use super::common::like::LikeArgs;
use super::common::writers::{SetParams, convert_folder, write_set};
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
