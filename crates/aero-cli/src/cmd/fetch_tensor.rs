//! `fetch-tensor`: one tensor of an AEROSET, verified (as `extract SET`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Run;
use super::common::args::VerifyArgs;
use crate::remote::Opener;

/// Write one tensor of an AEROSET to a file or stdout (`-`).
///
/// Refuses bytes that fail their hash_b3.
#[derive(Args, Debug)]
pub(crate) struct FetchTensorArgs {
    /// The set: model.aeroset.json or the directory holding it.
    pub(crate) set: PathBuf,
    /// Tensor name.
    pub(crate) tensor: String,
    /// Output file, or `-` for stdout.
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) verify: VerifyArgs,
}

impl Run for FetchTensorArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        super::extract::set_tensor(&self.set, &self.tensor, Some(&self.out), self.verify, opener)
    }
}
