//! Subcommands.

mod read;
mod validate;
mod write;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Summarise a file: header, chunks, model, tensors.
    #[command(visible_alias = "info")]
    Inspect(InspectArgs),
    /// List every tensor: name, dtype, shape, shard, offset, length.
    List(ListArgs),
    /// Check a file's structure and hashes.
    ///
    /// Default (quick): metadata chunks, tensor table, control-plane hash.
    /// --full also hashes every weight shard, tensor hash_b3 and PHSH page.
    /// Exit 0 valid, 1 invalid; a chunk whose hash was never recorded is a
    /// warning (exit 0), or a failure with --strict.
    Validate(ValidateArgs),
    /// Write one tensor's raw bytes to a file or stdout.
    ///
    /// Refuses bytes that fail their hash_b3.
    Extract(ExtractArgs),
    /// Write the AERO v0.1 golden test vector (spec §12).
    MakeTestVector(MakeTestVectorArgs),
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The .aero file.
    pub file: PathBuf,
    /// Show at most N tensors (0 for none).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_tensors: usize,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// The .aero file.
    pub file: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The .aero file.
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

#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// The .aero file.
    pub file: PathBuf,
    /// Tensor name.
    pub tensor: String,
    /// Output file, or `-` for stdout (the default when stdout is not a terminal).
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct MakeTestVectorArgs {
    /// Where to write the test vector.
    pub out: PathBuf,
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Inspect(a) => read::inspect(a),
        Command::List(a) => read::list(a),
        Command::Validate(a) => validate::run(a),
        Command::Extract(a) => read::extract(a),
        Command::MakeTestVector(a) => write::make_test_vector(a),
    }
}
