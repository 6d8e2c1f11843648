use std::path::Path;
use std::process::ExitCode;

use aero_convert::{InputKind, detect, gguf_convert, safetensors};
use anyhow::{Context, bail};

use super::repack::report_written;
use super::{ConvertArgs, ExportArgs};
use crate::out;

fn check_paths(input: &Path, output: &Path) -> anyhow::Result<()> {
    if input == output {
        bail!("input and output are the same path: {}", input.display());
    }
    Ok(())
}

pub fn safetensors_cmd(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    let inp = safetensors::Input::open(&a.input)?;
    let pb = out::bytes_bar(inp.data_len(), "converting");
    let s = safetensors::import_with(&inp, &a.output, &a.writer.options(), &|n| pb.inc(n))
        .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    report_written(&a.output, &s, a.json)?;
    Ok(ExitCode::SUCCESS)
}

pub fn gguf_cmd(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    let inp = gguf_convert::Input::open(&a.input)?;
    let pb = out::bytes_bar(inp.data_len(), "converting");
    let s = gguf_convert::import_with(&inp, &a.output, &a.writer.options(), &|n| pb.inc(n))
        .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    report_written(&a.output, &s, a.json)?;
    Ok(ExitCode::SUCCESS)
}

pub fn auto(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    match detect(&a.input)? {
        InputKind::SafeTensors => safetensors_cmd(a),
        InputKind::Gguf => gguf_cmd(a),
        InputKind::Aero => super::repack::run(super::RepackArgs {
            input: a.input,
            output: a.output,
            writer: a.writer,
            force: false,
            json: a.json,
        }),
        InputKind::ShardedSafeTensors => {
            bail!(
                "{}: sharded safetensors input: use `aerotensor convert-safetensors-sharded` (AEROSET output)",
                a.input.display()
            )
        }
        InputKind::AeroSet => bail!("{}: is an AEROSET; nothing to convert", a.input.display()),
    }
}

pub fn export_safetensors(a: ExportArgs) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    let n = safetensors::export_with(&a.input, &a.output, !a.no_fsync)?;
    eprintln!("wrote {} ({})", a.output.display(), out::human_bytes(n));
    Ok(ExitCode::SUCCESS)
}

pub fn export_gguf(a: ExportArgs) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    let n = gguf_convert::export_with(&a.input, &a.output, !a.no_fsync)?;
    eprintln!("wrote {} ({})", a.output.display(), out::human_bytes(n));
    Ok(ExitCode::SUCCESS)
}
