//! `export-hf`: a model written back as a Hugging Face folder.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::Run;
use super::common::args::VerifyArgs;
use super::common::source::{Source, copy_options};
use crate::out;
use crate::remote::Opener;

/// Write a model back as a Hugging Face folder `transformers` loads.
///
/// The attached files (config.json, tokenizer…) and the weights: the
/// original model.safetensors or shards with their index when the model
/// was converted from a folder — the folder again, byte for byte —
/// else one model.safetensors. Every byte is verified as it is copied.
/// OUT_DIR must not exist or be empty; it is written as a temporary
/// directory beside it and renamed into place, so it appears complete
/// or not at all.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  aerotensor export-hf dist/minilm.aero ./minilm        # then AutoModel.from_pretrained(\"./minilm\")
  aerotensor export-hf dist/llama-set ./llama
  aerotensor export-hf https://host/models/minilm.aero ./minilm")]
pub(crate) struct ExportHfArgs {
    /// The model: a .aero file, an AEROSET (model.aeroset.json or its
    /// directory) or a URL of either.
    pub(crate) input: PathBuf,
    /// The folder to write: must not exist yet, or be empty. It appears
    /// complete or not at all.
    pub(crate) output: PathBuf,
    /// Do not wait for the files to reach the disk (no fsync), like `cp`.
    #[arg(long)]
    pub(crate) no_fsync: bool,
    #[command(flatten)]
    pub(crate) verify: VerifyArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub(crate) json: bool,
}

impl Run for ExportHfArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        export_hf(self, opener)
    }

    fn wants_json(&self) -> bool {
        self.json
    }
}

/// `export-hf IN OUT_DIR`.
pub(crate) fn export_hf(
    a: ExportHfArgs,
    opener: &Opener,
) -> anyhow::Result<ExitCode> {
    let src = Source::open(&a.input, opener)?;
    let total = src.tensor_bytes();
    let pb = out::bytes_bar(total, "exporting");
    let opts = copy_options(a.verify, !a.no_fsync, &pb);
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
