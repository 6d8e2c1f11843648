//! `convert`: any supported input, recognised by its content, written as
//! OUT's name says (AERO, safetensors, GGUF, an AEROSET directory).

use std::process::ExitCode;

use aero_convert::detect;
use aero_convert::route::Conversion;
use anyhow::{Context, bail};
use clap::Args;

use super::Run;
use super::common::args::{ConvertArgs, ExportArgs, VerifyArgs};
use super::common::convert::{export, refuse_input_as_output};
use super::common::like::LikeArgs;
use super::common::written::{report_set_written, report_written_with};
use super::convert_safetensors_sharded::{SetParams, write_set};
use super::repack::RepackArgs;
use crate::out;
use crate::remote::Opener;

/// Convert any supported input, recognised by its content (safetensors, GGUF, AERO,
/// a Hugging Face model folder).
///
/// What is written is chosen by OUT's name: .safetensors or .gguf export
/// an AERO input, any other name writes AERO, a directory (existing, or
/// ending in '/') receives <IN stem>.aero. A sharded safetensors index
/// file becomes an AEROSET directory.
///
/// A Hugging Face model folder (model.safetensors, or a
/// *.safetensors.index.json and its shards) becomes one .aero file that
/// also carries the folder's other files — config.json, tokenizer,
/// README… (weights in other formats and hidden directories are left
/// out and listed) — verified like the weights; a sharded folder becomes
/// an AEROSET unless OUT ends in `.aero`. Model name and architecture
/// come from config.json (--model-name, --architecture override).
/// `export-hf` writes the folder back.
///
/// AERO outputs carry a hash_b3 for every tensor and 1 MiB page hashes
/// (--no-tensor-hash, --no-page-hashes turn them off); the output
/// appears atomically and missing directories are created.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  aerotensor convert model.safetensors dist/model.aero
  aerotensor convert model.gguf dist/                          # -> dist/model.aero; quantized tensors stay packed
  aerotensor convert dist/model.aero back.safetensors          # export (.gguf likewise)
  aerotensor convert ./all-MiniLM-L6-v2 dist/minilm.aero       # a whole Hugging Face folder
  aerotensor convert ./Llama-3-8B dist/llama-set               # sharded folder -> AEROSET
  aerotensor convert ./checkpoint/model.safetensors.index.json dist/set   # shards alone -> AEROSET
  aerotensor convert in.safetensors out.aero --layout reference   # byte-identical to the reference writer
  aerotensor convert ./Llama-3-8B-v2 dist/llama-set --like dist/llama-set   # update: unchanged parts stay byte-identical")]
pub(crate) struct ConvertAutoArgs {
    #[command(flatten)]
    pub(crate) convert: ConvertArgs,
    #[command(flatten)]
    pub(crate) like: LikeArgs,
}

impl Run for ConvertAutoArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        // What is written is chosen by the output's name, an AEROSET for a
        // sharded checkpoint included; `--like` applies when that is an
        // AEROSET.
        auto(self.convert, self.like, opener)
    }

    fn wants_json(&self) -> bool {
        self.convert.json
    }
}

/// `convert IN OUT`: the input recognised by its content, what is written
/// chosen by OUT's name ([`aero_convert::route::route`]): `.safetensors` and
/// `.gguf` export an AERO input, anything else is AERO, a directory gets
/// `DIR/<IN stem>.aero`, a sharded checkpoint becomes an AEROSET directory.
fn auto(
    mut a: ConvertArgs,
    like: LikeArgs,
    opener: &Opener,
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
            verify: VerifyArgs { no_verify: false },
            json: a.json,
        })
    };
    // The one decision: the input as `detect` recognised it (looked at
    // once) and the output `route` chose. Each arm takes its input as
    // recognised; none looks at the file again.
    let set = move || SetParams {
        like,
        ..SetParams::default()
    };
    match route.conversion {
        Conversion::ImportSafeTensors => super::convert_safetensors::import(a),
        Conversion::ImportGguf => super::convert_gguf::import(a),
        Conversion::FolderToFile => convert_folder(a, None, opener),
        Conversion::FolderToSet => convert_folder(a, Some(set()), opener),
        Conversion::ShardedToSet => write_set(a, set(), opener),
        Conversion::Repack if !a.identity.identity().is_empty() => bail!(
            "{}: is an AERO file: it keeps its own model name and architecture (--model-name and --architecture apply to conversions)",
            a.input.display()
        ),
        Conversion::Repack => super::repack::run_as(
            RepackArgs {
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
            export(export_args(a)?, aero_convert::safetensors::export_with, "safetensors")
        }
        Conversion::ExportGguf => export(export_args(a)?, aero_convert::gguf_convert::export_with, "GGUF"),
    }
}

/// `convert` of a Hugging Face model folder: one .aero file, or, with
/// `set`, an AEROSET (`convert-safetensors-sharded`, or `convert` of a
/// sharded folder whose output does not end in `.aero`, as
/// [`aero_convert::route`] decided).
pub(crate) fn convert_folder(
    a: ConvertArgs,
    set: Option<SetParams>,
    opener: &Opener,
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
    if let Some(p) = set {
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
        report_set_written(&a.output, &s, a.json, extra)?;
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
        report_written_with(&a.output, &s, a.json, extra)?;
    }
    Ok(ExitCode::SUCCESS)
}
