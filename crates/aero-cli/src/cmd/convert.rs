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
        InputKind::HfFolder => "convert",
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
    opener: &crate::remote::Opener,
) -> anyhow::Result<PathBuf> {
    aero_convert::route::check_output(conversion, input, output).or_else(|e| {
        refuse_input_as_output(input, output, opener)?;
        Err(e.into())
    })
}

/// An output that is one of the input's files (the file, or any file of
/// an input set) is refused as that, whatever else is wrong with its name:
/// "refusing to overwrite an input" says more than "names an AERO file".
fn refuse_input_as_output(
    input: &Path,
    output: &Path,
    opener: &crate::remote::Opener,
) -> anyhow::Result<()> {
    if crate::remote::is_url(input) {
        return Ok(());
    }
    if super::set::is_set(input) {
        if let Ok(src) = super::read::Source::open(input, opener) {
            src.as_dyn().refuse_as_output(output)?;
        }
        return Ok(());
    }
    Ok(aero_io::output::refuse_same_file(output, input)?)
}

pub fn safetensors_cmd(
    mut a: ConvertArgs,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    expect_kind(&a.input, InputKind::SafeTensors)?;
    a.output = checked_output(Conversion::ImportSafeTensors, &a.input, &a.output, opener)?;
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
    let identity = a.identity.identity();
    let s = safetensors::import_as(&inp, &a.output, &a.writer.options(), &identity, &|n| {
        pb.inc(n)
    })
    .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    report_written(&a.output, &s, a.json)?;
    Ok(ExitCode::SUCCESS)
}

pub fn gguf_cmd(mut a: ConvertArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    expect_kind(&a.input, InputKind::Gguf)?;
    a.output = checked_output(Conversion::ImportGguf, &a.input, &a.output, opener)?;
    convert_gguf(a)
}

/// `convert-gguf` once the input is known to be GGUF.
fn convert_gguf(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    check_paths(&a.input, &a.output)?;
    let inp = gguf_convert::Input::open(&a.input)?;
    let pb = out::bytes_bar(inp.data_len(), "converting");
    let identity = a.identity.identity();
    let s = gguf_convert::import_as(&inp, &a.output, &a.writer.options(), &identity, &|n| {
        pb.inc(n)
    })
    .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    report_written(&a.output, &s, a.json)?;
    Ok(ExitCode::SUCCESS)
}

/// `convert IN OUT`: the input recognised by its content, what is written
/// chosen by OUT's name ([`aero_convert::route::route`]): `.safetensors` and
/// `.gguf` export an AERO input, anything else is AERO, a directory gets
/// `DIR/<IN stem>.aero`, a sharded checkpoint becomes an AEROSET directory.
pub fn auto(
    mut a: ConvertArgs,
    like: super::like::LikeArgs,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    let kind = detect(&a.input)?;
    let route = aero_convert::route::route(&a.input, kind, &a.output).or_else(|e| {
        refuse_input_as_output(&a.input, &a.output, opener)?;
        Err(anyhow::Error::from(e))
    })?;
    a.output = route.output;
    if like.like.is_some()
        && !matches!(
            route.conversion,
            Conversion::FolderToSet | Conversion::ShardedToSet
        )
    {
        bail!(
            "--like applies when the output is an AEROSET (a sharded checkpoint, or a model folder written to a directory); {} is written as one {} file",
            a.output.display(),
            route
                .conversion
                .writes()
                .map_or("AERO", aero_convert::route::Format::name)
        );
    }
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
        Conversion::FolderToFile => convert_folder(a, None, opener),
        Conversion::FolderToSet => convert_folder(
            a,
            Some(SetParams {
                max_part_shards: aero_set::writer::DEFAULT_MAX_PART_SHARDS,
                base_url: None,
                like,
            }),
            opener,
        ),
        Conversion::Repack if !a.identity.identity().is_empty() => bail!(
            "{}: is an AERO file: it keeps its own model name and architecture (--model-name and --architecture apply to conversions)",
            a.input.display()
        ),
        Conversion::Repack => super::repack::run_as(
            super::RepackArgs {
                input: a.input,
                output: a.output,
                writer: a.writer,
                force: false,
                json: a.json,
            },
            "`aerotensor repack --force` copies it anyway",
            opener,
        ),
        Conversion::ExportSafeTensors => {
            export(export_args(a)?, safetensors::export_with, "safetensors")
        }
        Conversion::ExportGguf => export(export_args(a)?, gguf_convert::export_with, "GGUF"),
        Conversion::ShardedToSet => super::set::convert_sharded(
            super::ConvertShardedArgs {
                input: a.input,
                output: a.output,
                max_part_shards: aero_set::writer::DEFAULT_MAX_PART_SHARDS,
                base_url: None,
                like,
                identity: a.identity,
                writer: a.writer,
                json: a.json,
            },
            opener,
        ),
    }
}

/// AEROSET options of `convert-safetensors-sharded`.
pub struct SetParams {
    pub max_part_shards: usize,
    pub base_url: Option<String>,
    pub like: super::like::LikeArgs,
}

/// `convert` of a Hugging Face model folder: one .aero file, or an AEROSET
/// (`set` given by `convert-safetensors-sharded`, or a sharded folder
/// whose output does not end in `.aero`).
pub fn convert_folder(
    a: ConvertArgs,
    set: Option<SetParams>,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    let mut folder = aero_convert::hf::Folder::open(&a.input)?;
    folder.identity = a.identity.identity();
    if let (Ok(o), Ok(d)) = (std::path::absolute(&a.output), a.input.canonicalize()) {
        let o = o
            .parent()
            .and_then(|p| p.canonicalize().ok())
            .map(|p| p.join(o.file_name().unwrap_or_default()))
            .unwrap_or(o);
        if o.starts_with(&d) {
            bail!(
                "{}: is inside the input folder {}; write the output elsewhere",
                a.output.display(),
                a.input.display()
            );
        }
    }
    let ends_aero = a
        .output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("aero"));
    let to_set = set.is_some() || (folder.is_sharded() && !ends_aero);
    for l in folder.left_out() {
        eprintln!(
            "aerotensor: note: {}: left out {} ({})",
            out::clean(&a.input.display().to_string()),
            out::clean(&l.name),
            l.reason
        );
    }
    let (name, arch) = folder.identity();
    let mut extra = serde_json::Map::new();
    extra.insert(
        "model".into(),
        serde_json::json!({"name": name, "architecture": arch}),
    );
    extra.insert(
        "attached_files".into(),
        serde_json::json!(folder.files().iter().map(|f| &f.name).collect::<Vec<_>>()),
    );
    extra.insert(
        "left_out".into(),
        serde_json::json!(
            folder
                .left_out()
                .iter()
                .map(|l| serde_json::json!({"name": l.name, "reason": l.reason}))
                .collect::<Vec<_>>()
        ),
    );
    let pb = out::bytes_bar(folder.data_len(), "converting");
    let bar = pb.clone();
    if to_set {
        let p = set.unwrap_or(SetParams {
            max_part_shards: aero_set::writer::DEFAULT_MAX_PART_SHARDS,
            base_url: None,
            like: Default::default(),
        });
        let base = aero_set::SetWriteOptions {
            file: a.writer.options(),
            max_part_shards: p.max_part_shards,
            replace: true,
            base_url: p.base_url,
            manifest_extra: Default::default(),
            like: p.like.plan(opener)?,
        };
        let s = folder
            .write_set(&a.output, &base, &move |n| bar.inc(n))
            .with_context(|| format!("converting {}", a.input.display()))?;
        pb.finish_and_clear();
        p.like.json(&s, &mut extra);
        super::set::report_set_written(&a.output, &s, a.json, extra)?;
        if !a.json {
            p.like.print(&s);
        }
    } else {
        let s = folder
            .write_file(&a.output, &a.writer.options(), &move |n| bar.inc(n))
            .with_context(|| format!("converting {}", a.input.display()))?;
        pb.finish_and_clear();
        if !a.json {
            eprintln!(
                "{}: model {}, architecture {}; {} attached file{}",
                out::clean(&a.input.display().to_string()),
                out::clean(&name),
                out::clean(&arch),
                folder.files().len(),
                if folder.files().len() == 1 { "" } else { "s" }
            );
        }
        super::repack::report_written_with(&a.output, &s, a.json, extra)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `export-hf IN OUT_DIR`.
pub fn export_hf(
    a: super::ExportHfArgs,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    let src = super::read::Source::open(&a.input, opener)?;
    let total: u64 = src
        .as_dyn()
        .tensor_index()
        .map(|i| i.tensors().iter().map(|t| t.data_len).sum())
        .unwrap_or(0);
    let pb = out::bytes_bar(total, "exporting");
    let opts = super::read::copy_options(a.verify, !a.no_fsync, &pb);
    let r = aero_convert::hf::export(src.as_model()?, &a.output, &opts)
        .with_context(|| format!("exporting {}", a.input.display()))?;
    pb.finish_and_clear();
    let size: u64 = r.files.iter().map(|(_, n)| n).sum();
    if a.json {
        out::print_json(&serde_json::json!({
            "input": a.input.display().to_string(),
            "output": a.output.display().to_string(),
            "format": "hf-folder",
            "size": size,
            "files": r.files.iter().map(|(n, s)| serde_json::json!({"name": n, "size": s})).collect::<Vec<_>>(),
            "original_layout": r.original_layout,
            "skipped": r.skipped,
        }))?;
    } else {
        for n in &r.skipped {
            eprintln!(
                "aerotensor: note: {}: left out the attached {} (the weights are written as one model.safetensors)",
                out::clean(&a.input.display().to_string()),
                out::clean(n)
            );
        }
        eprintln!(
            "wrote {} ({}, {} files: {})",
            out::clean(&a.output.display().to_string()),
            out::human_bytes(size),
            r.files.len(),
            out::clean(
                &r.files
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        );
        if !r.original_layout {
            eprintln!(
                "  (the input records no Hugging Face folder layout: the weights are written as one canonical model.safetensors)"
            );
        }
        if !r.files.iter().any(|(n, _)| n == "config.json") {
            eprintln!(
                "aerotensor: warning: no config.json was attached to this model; transformers needs one to load the folder"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export_safetensors(
    mut a: super::ExportSafetensorsArgs,
    opener: &crate::remote::Opener,
) -> anyhow::Result<ExitCode> {
    a.export.output = checked_output(
        Conversion::ExportSafeTensors,
        &a.export.input,
        &a.export.output,
        opener,
    )?;
    let Some(fmt) = a.dequantize else {
        return export(a.export, safetensors::export_with, "safetensors");
    };
    let a_ = &a.export;
    if a_.verify.no_verify {
        bail!("--dequantize reads verified bytes only; it cannot be combined with --no-verify");
    }
    if !crate::remote::is_url(&a_.input) {
        check_paths(&a_.input, &a_.output)?;
    }
    let src = super::read::Source::open(&a_.input, opener)?;
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
    report_exported(a_, n, "safetensors")
}

pub fn export_gguf(mut a: ExportArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    a.output = checked_output(Conversion::ExportGguf, &a.input, &a.output, opener)?;
    export(a, gguf_convert::export_with, "GGUF")
}

type Exporter = fn(&Path, &Path, &aero_io::CopyOptions<'_>) -> aero_convert::Result<u64>;

fn export(a: ExportArgs, exporter: Exporter, format: &str) -> anyhow::Result<ExitCode> {
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
    report_exported(&a, n, format)
}

fn report_exported(a: &ExportArgs, n: u64, format: &str) -> anyhow::Result<ExitCode> {
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
