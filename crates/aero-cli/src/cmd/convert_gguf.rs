//! `convert-gguf`: a GGUF file converted to AERO (also `convert` of
//! a GGUF input).

use std::process::ExitCode;

use aero_convert::InputKind;
use aero_convert::route::Conversion;
use anyhow::Context;
use clap::Args;

use super::Run;
use super::common::args::ConvertArgs;
use super::common::convert::{check_paths, checked_output, expect_kind};
use super::common::written::report_written;
use crate::out;
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
        let mut a = self.convert;
        expect_kind(&a.input, InputKind::Gguf)?;
        a.output = checked_output(Conversion::ImportGguf, &a.input, &a.output, opener)?;
        import(a)
    }

    fn wants_json(&self) -> bool {
        self.convert.json
    }
}

/// The conversion once the input is known to be GGUF.
pub(crate) fn import(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    let inp = aero_convert::gguf_convert::Input::open(&a.input)?;
    let pb = out::bytes_bar(inp.data_len(), "converting");
    let identity = a.identity.identity();
    let s = aero_convert::gguf_convert::import_as(&inp, &a.output, &a.writer.options(), &identity, &|n| {
        pb.inc(n)
    })
    .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    report_written(&a.output, &s, a.json)?;
    Ok(ExitCode::SUCCESS)
}
