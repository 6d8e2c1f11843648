use std::process::ExitCode;

use aero_io::Verdict;

use super::ValidateArgs;
use crate::out;

pub fn run(a: ValidateArgs) -> anyhow::Result<ExitCode> {
    let mode = a.mode();
    let f = crate::remote::open_file(&a.file)?;
    let pb = out::bytes_bar(aero_io::validate::work_bytes(&f, mode), "verifying");
    let report = aero_io::validate(&f, mode, &|n| pb.inc(n));
    pb.finish_and_clear();
    a.finish(report.verdict, &report, || print_human(&report, a.strict))
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
        aero_io::integrity::ControlStatus::Verified => out::green("verified"),
        aero_io::integrity::ControlStatus::Mismatch => {
            out::red("MISMATCH (control plane tampered or corrupt)")
        }
        aero_io::integrity::ControlStatus::NotPresent => "not present".into(),
        aero_io::integrity::ControlStatus::Error(e) => out::red(&format!("error: {e}")),
    };
    println!("control plane (IHSH): {control}");
    for p in &r.pages {
        println!(
            "pages {} ({} x {} B): {}",
            p.shard, p.pages, p.page_size, p.status
        );
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
    let verdict = match r.verdict {
        Verdict::Valid => out::green("VALID"),
        Verdict::ValidWithWarnings if strict => out::red("INVALID (warnings under --strict)"),
        Verdict::ValidWithWarnings => out::yellow("VALID with warnings"),
        Verdict::Invalid => out::red("INVALID"),
    };
    println!(
        "{}: {verdict} ({} mode)",
        r.file,
        serde_json::to_string(&r.mode)
            .unwrap_or_default()
            .trim_matches('"')
    );
}
