//! `make-test-vector`: the AERO v0.1 golden test vector (spec §12).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::Run;
use crate::remote::Opener;

/// Write the AERO v0.1 golden test vector (spec §12).
#[derive(Args, Debug)]
pub(crate) struct MakeTestVectorArgs {
    /// Where to write the test vector.
    pub(crate) out: PathBuf,
}

impl Run for MakeTestVectorArgs {
    fn run(self, _: &Opener) -> anyhow::Result<ExitCode> {
        let a = self;
    aero_io::write::raw::write_chunks(
        &a.out,
        [0x11; 16],
        &aero_io::write::raw::test_vector_chunks(),
    )
    .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!("wrote {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
}
