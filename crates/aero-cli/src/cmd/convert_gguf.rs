//! `convert-gguf`: a GGUF file converted to AERO (also `convert` of
//! a GGUF input).

use std::process::ExitCode;

use aero_convert::InputKind;
use aero_convert::route::Conversion;
use clap::Args;

use super::Run;
use super::common::args::ConvertArgs;
use super::common::convert::{check_paths, run_import, write_import};
use crate::remote::Opener;

/// Convert a GGUF (v2/v3) file to AERO; quantized tensors stay packed.
///
/// An OUT named .safetensors or .gguf is refused; a directory receives
/// <IN stem>.aero.
#[derive(Args, Debug)]
pub(crate) struct ConvertGgufArgs {
    #[command(flatten)]
    pub(crate) convert: ConvertArgs,
}

impl Run for ConvertGgufArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        run_import(self.convert, InputKind::Gguf, Conversion::ImportGguf, opener, import)
    }

    fn wants_json(&self) -> bool {
        self.convert.json
    }
}

/// The conversion once the input is known to be GGUF.
pub(crate) fn import(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    let inp = aero_convert::gguf_convert::Input::open(&a.input)?;
    write_import(&a, inp.data_len(), |opts, identity, progress| {
        aero_convert::gguf_convert::import_as(&inp, &a.output, opts, identity, progress)
    })
}
