//! `export-safetensors`: an AERO file written back as safetensors, or any
//! model as floats (`--dequantize`).

use std::process::ExitCode;

use aero_convert::route::Conversion;
use anyhow::{Context, bail};
use clap::Args;

use super::Run;
use super::common::args::{ExportArgs, FloatArg};
use super::common::convert::{check_paths, checked_output, export, report_exported};
use super::common::source::Source;
use crate::out;
use crate::remote::Opener;

/// Write an AERO file back as safetensors (restores __metadata__).
///
/// With --dequantize f16|bf16|f32 every float or packed tensor is
/// written as floats of that type instead — packed GGUF tensors
/// dequantized (bit for bit as gguf-py does, then rounded to nearest
/// even), other floats converted — so a model converted from GGUF
/// becomes a float safetensors checkpoint. Integer and bool tensors
/// (position_ids, masks) keep their dtype and bytes.
/// Names are kept; __metadata__ holds format "pt" and the model name
/// and architecture. Works on sets and URLs too in this mode. Memory:
/// one tensor's values at a time.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  aerotensor export-safetensors model.aero back.safetensors
  aerotensor export-safetensors model-q4_k.aero model-f16.safetensors --dequantize f16")]
pub(crate) struct ExportSafetensorsArgs {
    #[command(flatten)]
    pub(crate) export: ExportArgs,
    /// Write every float or packed tensor as floats of this type
    /// (dequantizing packed GGUF tensors) instead of the stored bytes;
    /// integer and bool tensors keep their dtype.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub(crate) dequantize: Option<FloatArg>,
}

impl Run for ExportSafetensorsArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        export_safetensors(self, opener)
    }

    fn wants_json(&self) -> bool {
        self.export.json
    }
}

fn export_safetensors(
    mut a: ExportSafetensorsArgs,
    opener: &Opener,
) -> anyhow::Result<ExitCode> {
    a.export.output = checked_output(
        Conversion::ExportSafeTensors,
        &a.export.input,
        &a.export.output,
        opener,
    )?;
    let Some(fmt) = a.dequantize else {
        return export(a.export, aero_convert::safetensors::export_with, "safetensors");
    };
    let a_ = &a.export;
    if a_.verify.no_verify {
        bail!("--dequantize reads verified bytes only; it cannot be combined with --no-verify");
    }
    if !crate::remote::is_url(&a_.input) {
        check_paths(&a_.input, &a_.output)?;
    }
    let src = Source::open(&a_.input, opener)?;
    let total = src.tensor_bytes();
    let pb = out::bytes_bar(total, "exporting");
    let n = aero_convert::floats::export_safetensors(
        src.as_dyn(),
        &a_.output,
        fmt.into(),
        !a_.no_fsync,
        &|n| pb.inc(n),
    )
    .with_context(|| format!("exporting {}", a_.input.display()))?;
    pb.finish_and_clear();
    report_exported(a_, n, "safetensors")
}
