//! `convert-safetensors`: a safetensors file converted to AERO (also `convert` of
//! a safetensors input).

use std::process::ExitCode;

use aero_convert::InputKind;
use aero_convert::route::Conversion;
use anyhow::Context;
use clap::Args;

use super::Run;
use super::common::args::{ConvertArgs, LayoutArg};
use super::common::convert::{check_paths, checked_output, expect_kind};
use super::common::written::report_written;
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
        let mut a = self.convert;
        expect_kind(&a.input, InputKind::SafeTensors)?;
        a.output = checked_output(Conversion::ImportSafeTensors, &a.input, &a.output, opener)?;
        import(a)
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
    let pb = out::bytes_bar(inp.data_len(), "converting");
    let identity = a.identity.identity();
    let s = aero_convert::safetensors::import_as(&inp, &a.output, &a.writer.options(), &identity, &|n| {
        pb.inc(n)
    })
    .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    report_written(&a.output, &s, a.json)?;
    Ok(ExitCode::SUCCESS)
}
