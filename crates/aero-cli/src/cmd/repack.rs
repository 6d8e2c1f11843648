//! `repack`: an AERO file rewritten with a new layout, shard size or
//! integrity data (also `convert` of an AERO input).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Run;
use super::common::args::WriterArgs;
use super::common::convert::checked_output;
use super::common::written::report_written_with;
use crate::out;
use crate::remote::Opener;

/// Rewrite an AERO file with a new layout, shard size or integrity data.
///
/// Keeps model name, architecture, MJSN extras and unknown TIDX keys.
/// The input is fully verified first; damaged input is refused unless --force.
#[derive(Args, Debug)]
pub(crate) struct RepackArgs {
    /// Input .aero file.
    pub(crate) input: PathBuf,
    /// Output .aero file (written atomically).
    pub(crate) output: PathBuf,
    #[command(flatten)]
    pub(crate) writer: WriterArgs,
    /// Repack even if the input fails verification.
    #[arg(long)]
    pub(crate) force: bool,
    /// Print a JSON summary.
    #[arg(long)]
    pub(crate) json: bool,
}

impl Run for RepackArgs {
    fn run(mut self, opener: &Opener) -> anyhow::Result<ExitCode> {
        self.output = checked_output(
            aero_convert::route::Conversion::Repack,
            &self.input,
            &self.output,
            opener,
        )?;
        run_as(self, "--force copies it anyway", opener)
    }

    fn wants_json(&self) -> bool {
        self.json
    }
}

/// A damaged input the writer refused, and what the user can do about it.
/// Its message is the library error's, then the hint; the error stays in
/// the chain so the exit code is still 1.
#[derive(Debug)]
struct Refused {
    source: aero_io::Error,
    hint: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; nothing was written ({})", self.source, self.hint)
    }
}

impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `repack`, or `convert` of an AERO input (which has no `--force`, so its
/// `hint` names `repack --force`).
pub(crate) fn run_as(
    a: RepackArgs,
    hint: &'static str,
    opener: &Opener,
) -> anyhow::Result<ExitCode> {
    let f = opener.open_file(&a.input)?;
    let total: u64 = f
        .index()
        .map(|i| i.tensors().iter().map(|t| t.data_len).sum())
        .unwrap_or(0);
    let pb = out::bytes_bar(total, "repacking");
    let bar = pb.clone();
    let opts = aero_io::RepackOptions {
        write: a.writer.options(),
        force: a.force,
        progress: &move |n| bar.inc(n),
    };
    let r = aero_io::repack(&f, &a.output, &opts).map_err(|e| match e {
        e @ aero_io::Error::InputDamaged { .. } => anyhow::Error::new(Refused { source: e, hint }),
        e => anyhow::Error::new(e),
    })?;
    pb.finish_and_clear();
    let input = out::clean(&a.input.display().to_string()).into_owned();
    match (&r.damage, r.unverified.len()) {
        (None, _) => {}
        (Some(damage), 0) => eprintln!(
            "aerotensor: warning: {input}: --force: the input failed verification ({}), but every tensor was proven by its own hashes; the output's hashes are recomputed from those bytes and vouch for all {} tensors",
            out::clean(damage),
            r.summary.tensors.len()
        ),
        (Some(damage), n) => eprintln!(
            "aerotensor: warning: {input}: --force: {n} of {} tensors failed verification ({}); they are copied without hashes, so the output does not vouch for them",
            r.summary.tensors.len(),
            out::clean(damage)
        ),
    }
    if !r.dropped_files.is_empty() {
        eprintln!(
            "aerotensor: warning: {input}: --force: attached file{} {} failed verification and {} left out",
            if r.dropped_files.len() == 1 { "" } else { "s" },
            out::clean(&r.dropped_files.join(", ")),
            if r.dropped_files.len() == 1 {
                "is"
            } else {
                "are"
            },
        );
    }
    let mut extra = serde_json::Map::new();
    if a.force {
        extra.insert("dropped_files".into(), serde_json::json!(r.dropped_files));
        // Only with --force can a write succeed over damage: say what it
        // could not vouch for.
        extra.insert("input_damage".into(), serde_json::json!(r.damage));
        extra.insert("unverified_tensors".into(), serde_json::json!(r.unverified));
    }
    report_written_with(&a.output, &r.summary, a.json, extra)?;
    Ok(ExitCode::SUCCESS)
}
