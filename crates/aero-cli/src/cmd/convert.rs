use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aero_convert::route::Conversion;
use aero_convert::{InputKind, detect, gguf_convert, safetensors};
use anyhow::{Context, bail};

use super::repack::report_written;
use super::{ConvertArgs, ExportArgs};
use crate::out;

fn check_paths(input: &Path, output: &Path) -> anyhow::Result<()> {
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
    }
}

/// A usage error when `input` is recognisably another kind than `want`
/// (a GGUF given to `convert-safetensors`), naming the command for it.
/// Unrecognised input goes on to the converter, whose error says what is
/// wrong with it.
pub(super) fn expect_kind(input: &Path, want: InputKind) -> anyhow::Result<()> {
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
pub(super) fn checked_output(
    conversion: Conversion,
    input: &Path,
    output: &Path,
) -> anyhow::Result<PathBuf> {
    aero_convert::route::check_output(conversion, input, output).or_else(|e| {
        refuse_input_as_output(input, output)?;
        Err(e.into())
    })
}

/// An output that is one of the input's files (the file, or any file of
/// an input set) is refused as that, whatever else is wrong with its name:
/// "refusing to overwrite an input" says more than "names an AERO file".
fn refuse_input_as_output(input: &Path, output: &Path) -> anyhow::Result<()> {
    if crate::remote::is_url(input) {
        return Ok(());
    }
    if super::set::is_set(input) {
        if let Ok(src) = super::read::Source::open(input) {
            src.as_dyn().refuse_as_output(output)?;
        }
        return Ok(());
    }
    Ok(aero_io::output::refuse_same_file(output, input)?)
}

pub fn safetensors_cmd(mut a: ConvertArgs) -> anyhow::Result<ExitCode> {
    expect_kind(&a.input, InputKind::SafeTensors)?;
    a.output = checked_output(Conversion::ImportSafeTensors, &a.input, &a.output)?;
    convert_safetensors(a)
}

/// `convert-safetensors` once the input is known to be safetensors.
fn convert_safetensors(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    let inp = safetensors::Input::open(&a.input)?;
    if a.writer.layout == super::LayoutArg::Reference {
        for w in inp.reference_losses() {
            eprintln!("aerotensor: warning: {}", out::clean(&w));
        }
    }
    let pb = out::bytes_bar(inp.data_len(), "converting");
    let s = safetensors::import_with(&inp, &a.output, &a.writer.options(), &|n| pb.inc(n))
        .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    report_written(&a.output, &s, a.json)?;
    Ok(ExitCode::SUCCESS)
}

pub fn gguf_cmd(mut a: ConvertArgs) -> anyhow::Result<ExitCode> {
    expect_kind(&a.input, InputKind::Gguf)?;
    a.output = checked_output(Conversion::ImportGguf, &a.input, &a.output)?;
    convert_gguf(a)
}

/// `convert-gguf` once the input is known to be GGUF.
fn convert_gguf(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    let inp = gguf_convert::Input::open(&a.input)?;
    let pb = out::bytes_bar(inp.data_len(), "converting");
    let s = gguf_convert::import_with(&inp, &a.output, &a.writer.options(), &|n| pb.inc(n))
        .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    report_written(&a.output, &s, a.json)?;
    Ok(ExitCode::SUCCESS)
}

/// `convert IN OUT`: the input recognised by its content, what is written
/// chosen by OUT's name ([`aero_convert::route::route`]): `.safetensors` and
/// `.gguf` export an AERO input, anything else is AERO, a directory gets
/// `DIR/<IN stem>.aero`, a sharded checkpoint becomes an AEROSET directory.
pub fn auto(mut a: ConvertArgs) -> anyhow::Result<ExitCode> {
    let kind = detect(&a.input)?;
    let route = aero_convert::route::route(&a.input, kind, &a.output).or_else(|e| {
        refuse_input_as_output(&a.input, &a.output)?;
        Err(anyhow::Error::from(e))
    })?;
    a.output = route.output;
    let export_args = |a: ConvertArgs| -> anyhow::Result<ExportArgs> {
        let aero_only = a.writer.aero_only_flags();
        if !aero_only.is_empty() {
            bail!(
                "{}: {} appl{} to AERO outputs; this writes {}",
                a.output.display(),
                aero_only.join(", "),
                if aero_only.len() == 1 { "ies" } else { "y" },
                route
                    .conversion
                    .writes()
                    .map_or("an AEROSET", aero_convert::route::Format::name)
            );
        }
        Ok(ExportArgs {
            input: a.input,
            output: a.output,
            no_fsync: a.writer.no_fsync,
            verify: super::VerifyArgs { no_verify: false },
            json: a.json,
        })
    };
    match route.conversion {
        // Already recognised: no second look at the file.
        Conversion::ImportSafeTensors => convert_safetensors(a),
        Conversion::ImportGguf => convert_gguf(a),
        Conversion::Repack => super::repack::run_as(
            super::RepackArgs {
                input: a.input,
                output: a.output,
                writer: a.writer,
                force: false,
                json: a.json,
            },
            "`aerotensor repack --force` copies it anyway",
        ),
        Conversion::ExportSafeTensors => export(export_args(a)?, safetensors::export_with),
        Conversion::ExportGguf => export(export_args(a)?, gguf_convert::export_with),
        Conversion::ShardedToSet => super::set::convert_sharded(super::ConvertShardedArgs {
            input: a.input,
            output: a.output,
            max_part_shards: aero_set::writer::DEFAULT_MAX_PART_SHARDS,
            base_url: None,
            writer: a.writer,
            json: a.json,
        }),
    }
}

pub fn export_safetensors(mut a: super::ExportSafetensorsArgs) -> anyhow::Result<ExitCode> {
    a.export.output = checked_output(
        Conversion::ExportSafeTensors,
        &a.export.input,
        &a.export.output,
    )?;
    let Some(fmt) = a.dequantize else {
        return export(a.export, safetensors::export_with);
    };
    let a_ = &a.export;
    if a_.verify.no_verify {
        bail!("--dequantize reads verified bytes only; it cannot be combined with --no-verify");
    }
    if !crate::remote::is_url(&a_.input) {
        check_paths(&a_.input, &a_.output)?;
    }
    let src = super::read::Source::open(&a_.input)?;
    let total: u64 = src
        .as_dyn()
        .tensor_index()
        .map(|i| i.tensors().iter().map(|t| t.data_len).sum())
        .unwrap_or(0);
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
    report_exported(a_, n)
}

pub fn export_gguf(mut a: ExportArgs) -> anyhow::Result<ExitCode> {
    a.output = checked_output(Conversion::ExportGguf, &a.input, &a.output)?;
    export(a, gguf_convert::export_with)
}

type Exporter = fn(&Path, &Path, &aero_io::CopyOptions<'_>) -> aero_convert::Result<u64>;

fn export(a: ExportArgs, exporter: Exporter) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    if super::set::is_set(&a.input) {
        bail!(
            "{}: is an AEROSET; these exporters copy one AERO file as it is stored. A set is exported as floats with `aerotensor export-safetensors SET OUT --dequantize f16|bf16|f32`",
            a.input.display()
        );
    }
    let total = aero_io::AeroFile::open(&a.input)
        .and_then(|f| Ok(f.index()?.tensors().iter().map(|t| t.data_len).sum()))
        .unwrap_or(0);
    let pb = out::bytes_bar(total, "exporting");
    let opts = super::read::copy_options(a.verify, !a.no_fsync, &pb);
    let n = exporter(&a.input, &a.output, &opts)?;
    pb.finish_and_clear();
    report_exported(&a, n)
}

fn report_exported(a: &ExportArgs, n: u64) -> anyhow::Result<ExitCode> {
    if a.json {
        out::print_json(&serde_json::json!({
            "output": a.output.display().to_string(),
            "file_size": n,
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
