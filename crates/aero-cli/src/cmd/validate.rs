use std::process::ExitCode;

use aero_io::Verdict;

use super::ValidateArgs;
use crate::out;

pub fn run(a: ValidateArgs, opener: &crate::remote::Opener) -> anyhow::Result<ExitCode> {
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

/// Whether an open failed because the input is valid data of another kind
/// (a GGUF file, a set given as a file): a usage error, not a verdict.
pub fn wrong_kind(e: &anyhow::Error) -> bool {
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

/// The report on a file or set that could not be opened: printed like any
/// report (one JSON document with an `error` field under `--json`); exit 1
/// when its content is damaged, 2 when it cannot be read (missing, denied).
pub fn unreadable(a: &ValidateArgs, file: &str, e: &anyhow::Error) -> anyhow::Result<ExitCode> {
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
pub fn verdict_line(
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
