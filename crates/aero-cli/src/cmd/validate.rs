//! `validate`: a file's or a set's structure and hashes checked, a verdict
//! and exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use aero_io::Verdict;
use aero_set::SetReport;
use clap::Args;

use super::Run;
use super::common::source::is_set;
use crate::out;
use crate::remote::Opener;

/// Check a file's structure and hashes.
///
/// Default (quick): metadata chunks, tensor table, control-plane hash.
/// --full also hashes every weight shard, tensor hash_b3 and PHSH page
/// (one read of the weights). Exit 0 valid, 1 invalid or unreadable
/// content, 2 when the file cannot be opened; a chunk whose hash was
/// never recorded is a warning (exit 0), or a failure with --strict.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  aerotensor validate model.aero                 # metadata only, fast
  aerotensor validate --full model.aero          # every weight byte
  aerotensor validate --full --json model.aero   # the report as JSON
  aerotensor validate --full ./model-set         # an AEROSET: manifest, index, every part")]
pub(crate) struct ValidateArgs {
    /// The .aero file, or an AEROSET (model.aeroset.json or its directory).
    pub(crate) file: PathBuf,
    /// Verify every chunk including weight shards, every hash_b3 and PHSH page.
    #[arg(long, conflicts_with = "control")]
    pub(crate) full: bool,
    /// Check only the control-plane hash (IHSH).
    #[arg(long)]
    pub(crate) control: bool,
    /// Treat warnings (e.g. a hash not recorded) as failures.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Machine-readable report.
    #[arg(long)]
    pub(crate) json: bool,
}

impl ValidateArgs {
    /// Prints the report (JSON or human) and maps the verdict to the exit
    /// code: 1 when invalid, or when warnings remain under `--strict`.
    pub(crate) fn finish(
        &self,
        verdict: aero_io::Verdict,
        report: &impl serde::Serialize,
        human: impl FnOnce(),
    ) -> anyhow::Result<ExitCode> {
        if self.json {
            crate::out::print_json(report)?;
        } else {
            human();
        }
        let failed = verdict == aero_io::Verdict::Invalid
            || (self.strict && verdict == aero_io::Verdict::ValidWithWarnings);
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }

    /// The mode the flags select.
    pub(crate) fn mode(&self) -> aero_io::Mode {
        if self.full {
            aero_io::Mode::Full
        } else if self.control {
            aero_io::Mode::Control
        } else {
            aero_io::Mode::Quick
        }
    }
}

impl Run for ValidateArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        if is_set(&self.file) {
            validate_set(self, opener)
        } else {
            validate_file(self, opener)
        }
    }

    fn wants_json(&self) -> bool {
        self.json
    }
}

fn validate_file(a: ValidateArgs, opener: &Opener) -> anyhow::Result<ExitCode> {
    let mode = a.mode();
    let f = match opener.open_file(&a.file) {
        Ok(f) => f,
        Err(e) if wrong_kind(&e) => return Err(e),
        Err(e) => return unreadable(&a, &a.file.display().to_string(), &e),
    };
    let pb = out::bytes_bar(aero_io::validate_work_bytes(&f, mode), "verifying");
    let report = aero_io::validate(&f, mode, &|n| pb.inc(n));
    pb.finish_and_clear();
    a.finish(report.verdict, &report, || print_human(&report, a.strict))
}

fn validate_set(a: ValidateArgs, opener: &Opener) -> anyhow::Result<ExitCode> {
    let mode = a.mode();
    // The manifest only, so that a damaged index is reported, not just
    // refused (a remote manifest is read with its index).
    let opts = aero_set::OpenOptions {
        manifest_only: true,
        ..opener.open_options(aero_set::Expect::Set)
    };
    let set = match opener
        .open_with(&a.file, &opts)
        .and_then(|m| Ok(m.into_set()?))
    {
        Ok(s) => s,
        Err(e) if wrong_kind(&e) => return Err(e),
        Err(e) => return unreadable(&a, &a.file.display().to_string(), &e),
    };
    let pb = out::bytes_bar(aero_set::validate::work_bytes(&set, mode), "verifying set");
    let report = aero_set::validate_set(&set, mode, &|n| pb.inc(n));
    pb.finish_and_clear();
    a.finish(report.verdict, &report, || print_set(&report, a.strict))
}

/// Whether an open failed because the input is valid data of another kind
/// (a GGUF file, a set given as a file): a usage error, not a verdict.
fn wrong_kind(e: &anyhow::Error) -> bool {
    e.downcast_ref::<crate::remote::WrongKind>().is_some()
}

fn print_human(r: &aero_io::Report, strict: bool) {
    let rows: Vec<Vec<String>> = r
        .chunks
        .iter()
        .map(|c| {
            let st = match c.status {
                "verified" => out::green(c.status),
                "mismatch" | "error" => out::red(c.status),
                "hash-not-recorded" => out::yellow(c.status),
                s => s.to_string(),
            };
            vec![
                c.index.to_string(),
                c.fourcc.clone(),
                out::clean(&c.name).into_owned(),
                c.length.to_string(),
                st,
            ]
        })
        .collect();
    if !rows.is_empty() {
        print!(
            "{}",
            out::table(&["#", "fourcc", "name", "bytes", "status"], &rows)
        );
    }
    let control = match &r.control {
        aero_io::ControlStatus::Verified => out::green("verified"),
        aero_io::ControlStatus::Mismatch => {
            out::red("MISMATCH (control plane tampered or corrupt)")
        }
        aero_io::ControlStatus::NotPresent => "not present".into(),
        aero_io::ControlStatus::Error(e) => out::red(&format!("error: {e}")),
    };
    println!("control plane (IHSH): {control}");
    for p in &r.pages {
        let shard = if p.shard.is_empty() {
            &p.chunk
        } else {
            &p.shard
        };
        if p.pages == 0 && p.status != "verified" {
            // The PHSH payload itself could not be read: no page count.
            println!(
                "pages {}: {} (page hashes unreadable)",
                out::clean(shard),
                p.status
            );
        } else {
            println!(
                "pages {} ({} x {} B): {}",
                out::clean(shard),
                p.pages,
                p.page_size,
                p.status
            );
        }
    }
    let bad: Vec<_> = r.tensors.iter().filter(|t| t.status != "ok").collect();
    let verified = r.tensors.iter().filter(|t| t.hash_b3 == "verified").count();
    if !r.tensors.is_empty() {
        println!(
            "tensors: {} checked, {} hash_b3 verified, {} invalid",
            r.tensors.len(),
            verified,
            bad.len()
        );
    }
    for w in &r.warnings {
        println!("{} {}", out::yellow("warning:"), out::clean(w));
    }
    for e in &r.errors {
        println!("{} {}", out::red("error:"), out::clean(e));
    }
    verdict_line(&r.file, "", r.verdict, r.mode, strict, None);
}

fn print_set(r: &SetReport, strict: bool) {
    let rows: Vec<Vec<String>> = r
        .files
        .iter()
        .map(|f| {
            let sha = match f.sha256 {
                "verified" => out::green(f.sha256),
                s => out::red(s),
            };
            let verdict = match f.verdict {
                Some(Verdict::Valid) => out::green("valid"),
                Some(Verdict::ValidWithWarnings) => out::yellow("valid-with-warnings"),
                Some(Verdict::Invalid) => out::red("invalid"),
                // An attached file is not an AERO file: size and SHA-256 are its check.
                None if f.role == aero_set::FileRole::File => "-".to_string(),
                Some(Verdict::Error) | None => out::red("not checked"),
            };
            vec![
                f.field.clone(),
                f.path.clone(),
                f.size_bytes.to_string(),
                sha,
                verdict,
            ]
        })
        .collect();
    print!(
        "{}",
        out::table(&["field", "file", "bytes", "sha256", "aero"], &rows)
    );
    println!(
        "tensors: {} in the global TIDX, {} resolved and agreeing with their part",
        r.tensor_count, r.tensors_ok
    );
    for w in &r.warnings {
        println!("{} {}", out::yellow("warning:"), out::clean(w));
    }
    for e in &r.errors {
        println!("{} {}", out::red("error:"), out::clean(e));
    }
    // A quick check of a set hashes every file whole (SHA-256 against the
    // manifest): say so, and how much, rather than "weight bytes NOT checked".
    let hashed: Vec<u64> = r
        .files
        .iter()
        .filter(|f| f.actual_sha256.is_some())
        .filter_map(|f| f.actual_size)
        .collect();
    let hashed = (!hashed.is_empty()).then(|| (hashed.len(), hashed.iter().sum()));
    verdict_line(&r.set, "AEROSET ", r.verdict, r.mode, strict, hashed);
}

/// The report on a file or set that could not be opened: printed like any
/// report (one JSON document with an `error` field under `--json`); exit 1
/// when its content is damaged, 2 when it cannot be read (missing, denied).
fn unreadable(a: &ValidateArgs, file: &str, e: &anyhow::Error) -> anyhow::Result<ExitCode> {
    let invalid = crate::exit_code(e) == 1;
    let msg = crate::out::chain(e);
    let report = aero_io::Report::unreadable(file, a.mode(), &msg, invalid);
    let code = if invalid { 1 } else { 2 };
    if a.json {
        // The report, and the error document every command prints: the
        // one-line message as on stderr (file first) and the exit code.
        let mut doc = serde_json::to_value(&report)?;
        if let Some(m) = doc.as_object_mut() {
            m.insert("error".into(), serde_json::json!(msg));
            m.insert("exit_code".into(), serde_json::json!(code));
        }
        out::print_json(&doc)?;
    } else if invalid {
        println!(
            "{} {}",
            out::red("error:"),
            out::clean(&report.errors.join("; "))
        );
        verdict_line(file, "", report.verdict, report.mode, a.strict, None);
    } else {
        out::error_line(e);
    }
    Ok(ExitCode::from(code))
}

/// The last line of a validation: `FILE: VALID (full mode)`, and in quick
/// mode what was not checked. `hashed`: the bytes a quick check of a set
/// read whole to check their SHA-256 (every part's byte, but not against
/// the parts' own chunk and tensor hashes).
fn verdict_line(
    file: &str,
    kind: &str,
    verdict: Verdict,
    mode: aero_io::Mode,
    strict: bool,
    hashed: Option<(usize, u64)>,
) {
    let v = match verdict {
        Verdict::Valid => out::green("VALID"),
        Verdict::ValidWithWarnings if strict => out::red("INVALID (warnings under --strict)"),
        Verdict::ValidWithWarnings => out::yellow("VALID with warnings"),
        Verdict::Invalid => out::red("INVALID"),
        Verdict::Error => out::red("NOT CHECKED (unreadable)"),
    };
    let how = match mode {
        aero_io::Mode::Full => "full mode: every hash checked".to_string(),
        aero_io::Mode::Control => "control mode: only the IHSH control-plane hash".to_string(),
        aero_io::Mode::Quick => match hashed {
            Some((files, bytes)) => format!(
                "quick mode: every byte of the {files} files hashed against the manifest's SHA-256 ({}); \
                 the parts' own chunk, tensor and page hashes NOT checked; add --full to check them",
                out::human_bytes(bytes)
            ),
            None => "quick mode: metadata only, weight bytes NOT checked; add --full to check them"
                .to_string(),
        },
    };
    println!("{}: {kind}{v} ({how})", out::clean(file));
}
