//! `convert-safetensors`: a safetensors file converted to AERO (also `convert` of
//! a safetensors input).

use std::process::ExitCode;

use aero_convert::InputKind;
use aero_convert::route::Conversion;
use clap::Args;

use super::Run;
use super::common::args::{ConvertArgs, LayoutArg};
use super::common::convert::{check_paths, run_import, write_import};
use crate::out;
use crate::remote::Opener;

/// Convert a safetensors file to AERO (tensors sorted by name).
///
/// An OUT named .safetensors or .gguf is refused; a directory receives
/// <IN stem>.aero.
#[derive(Args, Debug)]
pub(crate) struct ConvertSafetensorsArgs {
    #[command(flatten)]
    pub(crate) convert: ConvertArgs,
}

impl Run for ConvertSafetensorsArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        run_import(self.convert, InputKind::SafeTensors, Conversion::ImportSafeTensors, opener, import)
    }

    fn wants_json(&self) -> bool {
        self.convert.json
    }
}

/// The conversion once the input is known to be safetensors.
pub(crate) fn import(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    let inp = aero_convert::safetensors::Input::open(&a.input)?;
    if a.writer.layout == LayoutArg::Reference {
        for w in inp.reference_losses() {
            eprintln!("aerotensor: warning: {}", out::clean(&w));
        }
    }
    write_import(&a, inp.data_len(), |opts, identity, progress| {
        aero_convert::safetensors::import_as(&inp, &a.output, opts, identity, progress)
    })
}
