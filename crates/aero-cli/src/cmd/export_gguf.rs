//! `export-gguf`: an AERO file written back as GGUF.

use std::process::ExitCode;

use aero_convert::route::Conversion;
use clap::Args;

use super::Run;
use super::common::args::ExportArgs;
use super::common::convert::{checked_output, export};
use crate::remote::Opener;

/// Write an AERO file back as GGUF (restores key/values and tensor order).
#[derive(Args, Debug)]
pub(crate) struct ExportGgufArgs {
    #[command(flatten)]
    pub(crate) export: ExportArgs,
}

impl Run for ExportGgufArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        let mut a = self.export;
        a.output = checked_output(Conversion::ExportGguf, &a.input, &a.output, opener)?;
        export(a, aero_convert::gguf_convert::export_with, "GGUF")
    }

    fn wants_json(&self) -> bool {
        self.export.json
    }
}
