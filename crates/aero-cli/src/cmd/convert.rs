//! `convert`: any supported input, recognised by its content, written as
//! OUT's name says (AERO, safetensors, GGUF, an AEROSET directory).

use std::process::ExitCode;

use aero_convert::detect;
use aero_convert::route::Conversion;
use anyhow::bail;
use clap::Args;

use super::Run;
use super::common::args::{ConvertArgs, ExportArgs, VerifyArgs};
use super::common::convert::{export, refuse_input_as_output};
use super::common::like::LikeArgs;
use super::common::writers::{SetParams, convert_folder, write_set};
use super::repack::RepackArgs;
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
