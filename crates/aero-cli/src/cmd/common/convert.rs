//! What the converting and exporting commands share: the input's kind and
//! the output's name checked, and the exporters that copy an AERO file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aero_convert::route::Conversion;
use aero_convert::{InputKind, detect};
use anyhow::{Context, bail};

use super::args::{ConvertArgs, ExportArgs};
use super::source::{Source, copy_options, is_set};
use super::written::report_written;
use crate::out;
use crate::remote::Opener;

/// Refuses an output that is the input.
pub(crate) fn check_paths(input: &Path, output: &Path) -> anyhow::Result<()> {
    Ok(aero_io::output::refuse_same_file(output, input)?)
}

/// The command that converts `kind`.
fn converter_of(kind: InputKind) -> &'static str {
    match kind {
        InputKind::SafeTensors => "convert-safetensors",
        InputKind::Gguf => "convert-gguf",
        InputKind::Aero => "repack",
        InputKind::ShardedSafeTensors => "convert-safetensors-sharded",
        InputKind::AeroSet => "inspect-set",
        InputKind::HfFolder => "convert",
    }
}

/// A usage error when `input` is recognisably another kind than `want`
/// (a GGUF given to `convert-safetensors`), naming the command for it.
/// Unrecognised input goes on to the converter, whose error says what is
/// wrong with it.
pub(crate) fn expect_kind(input: &Path, want: InputKind) -> anyhow::Result<()> {
    match detect(input) {
        Ok(kind) if kind != want => bail!(
            "{}: is {} input, not {}; use `aerotensor {}` (or `aerotensor convert`, which recognises it)",
            input.display(),
            kind.name(),
            want.name(),
            converter_of(kind)
        ),
        _ => Ok(()),
    }
}

/// The output `a` names for `conversion`: a directory resolved to
/// `DIR/<input stem>.<ext>`, an extension naming another format refused
/// (exit 2) with the command that writes it ([`aero_convert::route`]).
pub(crate) fn checked_output(
    conversion: Conversion,
    input: &Path,
    output: &Path,
    opener: &Opener,
) -> anyhow::Result<PathBuf> {
    aero_convert::route::check_output(conversion, input, output).or_else(|e| {
        refuse_input_as_output(input, output, opener)?;
        Err(e.into())
    })
}

/// An output that is one of the input's files (the file, or any file of
/// an input set) is refused as that, whatever else is wrong with its name:
/// "refusing to overwrite an input" says more than "names an AERO file".
pub(crate) fn refuse_input_as_output(
    input: &Path,
    output: &Path,
    opener: &Opener,
) -> anyhow::Result<()> {
    if crate::remote::is_url(input) {
        return Ok(());
    }
    if is_set(input) {
        if let Ok(src) = Source::open(input, opener) {
            src.as_dyn().refuse_as_output(output)?;
        }
        return Ok(());
    }
    Ok(aero_io::output::refuse_same_file(output, input)?)
}

type Exporter = fn(&Path, &Path, &aero_io::CopyOptions<'_>) -> aero_convert::Result<u64>;

/// `export-safetensors`, `export-gguf` and `convert` to either: one AERO
/// file copied tensor by tensor, every tensor verified.
pub(crate) fn export(a: ExportArgs, exporter: Exporter, format: &str) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    if is_set(&a.input) {
        bail!(
            "{}: is an AEROSET; these exporters copy one AERO file as it is stored. A set is exported as floats with `aerotensor export-safetensors SET OUT --dequantize f16|bf16|f32`",
            a.input.display()
        );
    }
    let total = aero_io::AeroFile::open(&a.input)
        .and_then(|f| Ok(f.index()?.tensors().iter().map(|t| t.data_len).sum()))
        .unwrap_or(0);
    let pb = out::bytes_bar(total, "exporting");
    let opts = copy_options(a.verify, !a.no_fsync, &pb);
    let n = exporter(&a.input, &a.output, &opts)?;
    pb.finish_and_clear();
    report_exported(&a, n, format)
}

/// The summary of an export: one line, or the JSON document.
pub(crate) fn report_exported(a: &ExportArgs, n: u64, format: &str) -> anyhow::Result<ExitCode> {
    if a.json {
        out::print_json(&serde_json::json!({
            "input": a.input.display().to_string(),
            "output": a.output.display().to_string(),
            "format": format,
            "size": n,
        }))?;
    } else if !aero_io::output::is_stdout(&a.output) {
        eprintln!(
            "wrote {} ({})",
            out::clean(&a.output.display().to_string()),
            out::human_bytes(n)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A single-file conversion whose input must be of `kind`: the input's
/// kind and the output checked, then `import` (the converter's `import`,
/// also what `convert` calls once it has recognised the input).
pub(crate) fn run_import(
    mut a: ConvertArgs,
    kind: InputKind,
    conversion: Conversion,
    opener: &Opener,
    import: fn(ConvertArgs) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    expect_kind(&a.input, kind)?;
    a.output = checked_output(conversion, &a.input, &a.output, opener)?;
    import(a)
}

/// An opened input of `data_len` bytes written by `write` (given the
/// writer options, the model identity and a progress callback), with a
/// progress bar and the written report.
pub(crate) fn write_import(
    a: &ConvertArgs,
    data_len: u64,
    write: impl FnOnce(
        &aero_io::write::WriteOptions,
        &aero_convert::Identity,
        &aero_convert::Progress<'_>,
    ) -> aero_convert::Result<aero_io::write::WriteSummary>,
) -> anyhow::Result<ExitCode> {
    let pb = out::bytes_bar(data_len, "converting");
    let identity = a.identity.identity();
    let s = write(&a.writer.options(), &identity, &|n| pb.inc(n))
        .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    report_written(&a.output, &s, a.json)?;
    Ok(ExitCode::SUCCESS)
}
