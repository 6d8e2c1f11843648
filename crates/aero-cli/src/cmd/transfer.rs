//! `pull` and `push`: the CLI side (arguments, progress, output) of
//! `aero_set::pull` and `aero_set::push`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use clap::Args;

use crate::out;

pub const PULL_HELP: &str = "Examples:
  aerotensor pull https://models.example.com/llama/ ./llama             # a set: manifest, index, parts
  aerotensor pull https://models.example.com/llama/model.aeroset.json ./llama --jobs 16
  aerotensor pull s3://models/minilm.aero ./minilm.aero                 # one file (s3:// needs the s3 build)
  aerotensor pull https://models.example.com/llama/ ./llama --json | jq .bytes_fetched

Run again after an interruption: verified bytes already on disk are kept.
Run again on a newer revision: only files whose SHA-256 changed are fetched.";

pub const PUSH_HELP: &str = "Examples:
  aerotensor push ./llama s3://models/llama/                  # parts first, manifest last
  aerotensor push ./llama s3://models/llama/ --base-url https://cdn.example.com/llama
  aerotensor push dist/minilm.aero gs://bucket/models/        # one file -> gs://bucket/models/minilm.aero
  aerotensor push ./llama-v2 s3://models/llama/ --json        # unchanged parts are skipped";

#[derive(Args, Debug)]
pub struct PullArgs {
    /// URL of a .aero file, of an AEROSET's model.aeroset.json, or of a
    /// directory (ending in '/') holding one: http(s)://, s3://, gs://, az://.
    pub src: String,
    /// Local destination: a file for a .aero file (or an existing directory
    /// to put it in), a directory for a set (absent, empty, or an earlier
    /// revision of the set, which is updated).
    pub dest: PathBuf,
    /// Print a JSON summary (bytes fetched, reused, verified; every file).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// A local AEROSET (directory or model.aeroset.json) or .aero file.
    pub src: PathBuf,
    /// Destination: s3://, gs:// or az:// URL of the set's directory (or
    /// manifest); for a file, its object URL or a directory URL ending in '/'.
    pub dest_url: String,
    /// Rewrite the uploaded manifest's base_url (an http(s):// URL, e.g. a
    /// CDN in front of the bucket): readers fetch the parts from there.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Print a JSON summary (bytes uploaded, skipped; every file).
    #[arg(long)]
    pub json: bool,
}

pub fn pull(a: PullArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    let remote = aero_set::pull::remote_options(opener.settings())?;
    let bar: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);
    let progress = |e: aero_set::pull::PullEvent| {
        let mut b = bar.lock().unwrap_or_else(|e| e.into_inner());
        match e {
            aero_set::pull::PullEvent::Plan { total, reused } => {
                let pb = out::bytes_bar(total, "pulling");
                pb.set_position(reused);
                pb.reset_eta();
                *b = Some(pb);
            }
            aero_set::pull::PullEvent::Fetched(n) => {
                if let Some(pb) = b.as_ref() {
                    pb.inc(n);
                }
            }
        }
    };
    let opts = aero_set::pull::PullOptions {
        remote,
        progress: &progress,
    };
    let s =
        aero_set::pull::pull(&a.src, &a.dest, &opts).with_context(|| format!("pull {}", a.src))?;
    if let Some(pb) = bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
        pb.finish_and_clear();
    }
    if a.json {
        out::print_json(&s)?;
    } else {
        println!(
            "{}: {} file{} ({}) from {}: fetched {}, kept {} already on disk; every byte verified",
            s.dest.display(),
            s.files.len(),
            if s.files.len() == 1 { "" } else { "s" },
            out::human_bytes(s.bytes_total),
            s.source,
            out::human_bytes(s.bytes_fetched),
            out::human_bytes(s.bytes_reused),
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "s3")]
pub fn push(a: PushArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    if !matches!(
        aero_io::url::classify(&a.dest_url),
        aero_io::url::Kind::Object { .. }
    ) {
        anyhow::bail!(
            "{}: push writes to object storage: the destination must be an s3://, gs:// or az:// URL",
            a.dest_url
        );
    }
    let remote = opener.options()?;
    let bar: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);
    let progress = |e: aero_set::push::PushEvent| {
        let mut b = bar.lock().unwrap_or_else(|e| e.into_inner());
        match e {
            aero_set::push::PushEvent::Plan(total) => *b = Some(out::bytes_bar(total, "pushing")),
            aero_set::push::PushEvent::Done(n) => {
                if let Some(pb) = b.as_ref() {
                    pb.inc(n);
                }
            }
        }
    };
    let opts = aero_set::push::PushOptions {
        remote,
        base_url: a.base_url.clone(),
        progress: &progress,
    };
    let s = aero_set::push::push(&a.src, &a.dest_url, &opts)
        .with_context(|| format!("push {}", a.src.display()))?;
    if let Some(pb) = bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
        pb.finish_and_clear();
    }
    if a.json {
        out::print_json(&s)?;
    } else {
        let skipped = s.files.iter().filter(|f| f.state == "skipped").count();
        println!(
            "{}: {} file{} pushed ({}), {} already there ({}){}",
            s.url,
            s.files.len() - skipped,
            if s.files.len() - skipped == 1 {
                ""
            } else {
                "s"
            },
            out::human_bytes(s.bytes_uploaded),
            skipped,
            out::human_bytes(s.bytes_skipped),
            if s.kind == "set" {
                "; manifest last"
            } else {
                ""
            },
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "s3"))]
pub fn push(a: PushArgs, _: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "{}: push writes to object storage (s3://, gs://, az://), which needs aerotensor built with the `s3` feature",
        a.dest_url
    )
}
