//! `cargo xtask fuzz [--seconds N] [--replay] [TARGET…]`: coverage-guided
//! fuzzing with libFuzzer (see docs/FUZZING.md).
//!
//! - builds every target of the `fuzz` package with sanitizer-coverage
//!   instrumentation, as `cargo fuzz build -s none` does, with plain cargo
//!   on stable (profile `fuzz`, target directory shared with the workspace;
//!   nothing to install);
//! - default: runs each target for N seconds (180) with `-timeout=10`,
//!   `-rss_limit_mb=512`, its dictionary and its corpus — as many targets at
//!   once as there are cores, each libFuzzer being one process on one core —
//!   then prints a table of executions, exec/s and coverage; any crash,
//!   timeout or OOM fails the task, and the input is minimised
//!   (`-minimize_crash=1`) under `fuzz/artifacts/<target>/`;
//! - `--replay`: runs every target once over its committed corpus and every
//!   past finding (`fuzz/regressions/<target>/`), `-runs=0`.
//!
//! The seed corpora and regression inputs are committed; `fuzz/seeds` writes
//! them (`cargo xtask fuzz-seeds`) and its test checks they are current.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{cargo, root, run};

/// Every target with the dictionary it uses and its `-max_len` (0: the
/// largest seed). MessagePack targets are capped at 8 KiB: structure, not
/// size, is what they explore, and small inputs run several times faster.
pub(crate) const TARGETS: &[(&str, &str, u32)] = &[
    ("control_plane", "aero.dict", 0),
    ("tidx", "msgpack.dict", 8192),
    ("integrity", "msgpack.dict", 8192),
    ("set_manifest", "manifest.dict", 0),
    ("safetensors_header", "safetensors.dict", 0),
    ("aero_file", "aero.dict", 0),
    ("safetensors_roundtrip", "safetensors.dict", 0),
    ("gguf", "gguf.dict", 0),
];

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

struct Stats {
    target: String,
    execs: u64,
    per_sec: u64,
    cov: u64,
    ft: u64,
    corpus: u64,
    outcome: String,
}

pub(crate) fn main(rest: &[String]) -> Result<()> {
    let mut seconds = 180u64;
    let mut replay = false;
    let mut targets: Vec<String> = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .context("--seconds needs a value")?
                    .parse()
                    .context("--seconds N")?
            }
            "--replay" => replay = true,
            t if t.starts_with('-') => bail!("unknown option {t}"),
            t if TARGETS.iter().any(|(n, _, _)| *n == t) => targets.push(t.to_string()),
            t => bail!(
                "unknown fuzz target {t} (targets: {})",
                TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.0.to_string()).collect();
    }
    build()?;
    if replay {
        for t in &targets {
            replay_target(t)?;
        }
        eprintln!("xtask fuzz --replay: every corpus and regression input passes");
        return Ok(());
    }
    // libFuzzer is single-threaded: one target per core at a time.
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut table = Vec::new();
    for group in targets.chunks(jobs) {
        let results: Vec<Result<Stats>> = std::thread::scope(|s| {
            let handles: Vec<_> = group
                .iter()
                .map(|t| s.spawn(move || run_target(t, seconds)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| bail!("fuzz runner panicked")))
                .collect()
        });
        for r in results {
            table.push(r?);
        }
    }
    let failed: Vec<String> = table
        .iter()
        .filter(|s| s.outcome != "ok")
        .map(|s| format!("{}: {}", s.target, s.outcome))
        .collect();
    print_table(&table, seconds);
    if !failed.is_empty() {
        bail!("fuzzing found problems:\n  {}", failed.join("\n  "));
    }
    Ok(())
}

/// The instrumentation `cargo fuzz build -s none` asks rustc for (all
/// stable flags): inline 8-bit edge counters, the PC table and comparison
/// tracing that libFuzzer's coverage feedback reads, `cfg(fuzzing)`, and
/// debug assertions and overflow checks so that arithmetic slips crash.
const FUZZ_RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// Builds every fuzz target. `--target` keeps the instrumented artifacts
/// (and the flags) apart from the host build of build scripts and proc
/// macros, which are shared with the rest of the workspace.
fn build() -> Result<()> {
    let flags: Vec<&str> = FUZZ_RUSTFLAGS.split_whitespace().collect();
    run(cargo()
        .args([
            "build",
            "--package",
            "aerotensor-fuzz",
            "--bins",
            "--profile",
            "fuzz",
            "--target",
            TRIPLE,
        ])
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f")))
}

/// `cargo xtask fuzz-seeds`: rewrites the committed seed corpora and
/// regression inputs (the `aero-fuzz-seeds` test, asked to write), with the
/// features of the main test build so that nothing recompiles.
pub(crate) fn write_seeds() -> Result<()> {
    run(cargo()
        .args([
            "test",
            "--package",
            "aero-fuzz-seeds",
            "--features",
            crate::TEST_FEATURES,
            "--lib",
        ])
        .env("AERO_WRITE_SEEDS", "1"))
}

fn bin(target: &str) -> PathBuf {
    crate::target_dir().join(format!("{TRIPLE}/fuzz/{target}"))
}

fn dirs(target: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let r = root();
    (
        crate::target_dir().join(format!("fuzz-corpus/{target}")),
        r.join(format!("fuzz/corpus/{target}")),
        r.join(format!("fuzz/regressions/{target}")),
        r.join(format!("fuzz/artifacts/{target}")),
    )
}

fn dict(target: &str) -> PathBuf {
    let d = TARGETS
        .iter()
        .find(|t| t.0 == target)
        .map_or("aero.dict", |t| t.1);
    root().join("fuzz/dict").join(d)
}

fn common_args(c: &mut Command, target: &str) {
    if let Some(&(_, _, max_len)) = TARGETS.iter().find(|t| t.0 == target)
        && max_len > 0
    {
        c.arg(format!("-max_len={max_len}"));
    }
    c.arg("-timeout=10")
        .arg("-rss_limit_mb=512")
        .arg("-malloc_limit_mb=512")
        .arg(format!("-dict={}", dict(target).display()));
}

fn replay_target(target: &str) -> Result<()> {
    let (_, corpus, regressions, _) = dirs(target);
    let mut c = Command::new(bin(target));
    common_args(&mut c, target);
    c.arg("-runs=0");
    let mut n = 0;
    for d in [&corpus, &regressions] {
        if d.is_dir() {
            n += std::fs::read_dir(d)?.count();
            c.arg(d);
        }
    }
    eprintln!("replay {target}: {n} inputs");
    let out = c.current_dir(root()).output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(40).collect();
        bail!(
            "{target}: replay failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

fn run_target(target: &str, seconds: u64) -> Result<Stats> {
    let (work, corpus, regressions, artifacts) = dirs(target);
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(&artifacts)?;
    let logs = crate::target_dir().join("fuzz-logs");
    std::fs::create_dir_all(&logs)?;
    let log = logs.join(format!("{target}.log"));
    let mut c = Command::new(bin(target));
    common_args(&mut c, target);
    c.arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&work);
    for d in [&corpus, &regressions] {
        if d.is_dir() {
            c.arg(d);
        }
    }
    eprintln!("fuzz {target}: {seconds} s (log: {})", log.display());
    let out = c
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .status()?;
    let text = std::fs::read_to_string(&log)?;
    let mut s = parse_stats(target, &text);
    s.corpus = std::fs::read_dir(&work)
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    if !out.success() {
        let kind = if text.contains("ERROR: libFuzzer: timeout") {
            "timeout"
        } else if text.contains("out-of-memory") {
            "OOM"
        } else {
            "crash"
        };
        let artifact = text
            .lines()
            .find_map(|l| l.split("Test unit written to ").nth(1))
            .map(|p| p.trim().to_string());
        s.outcome = match artifact {
            Some(a) => {
                let min = minimize(target, Path::new(&a));
                format!(
                    "{kind}: {a}{}",
                    min.map(|m| format!(" (minimised: {m})"))
                        .unwrap_or_default()
                )
            }
            None => format!("{kind} ({out})"),
        };
    }
    Ok(s)
}

/// libFuzzer's crash minimisation (what `cargo fuzz tmin` runs) into
/// `fuzz/artifacts/<target>/minimized-from-<name>`.
fn minimize(target: &str, artifact: &Path) -> Option<String> {
    let out = artifact.with_file_name(format!(
        "minimized-from-{}",
        artifact.file_name()?.to_string_lossy()
    ));
    Command::new(bin(target))
        .args([
            "-minimize_crash=1",
            "-runs=2000",
            "-timeout=10",
            "-rss_limit_mb=512",
        ])
        .arg(format!("-exact_artifact_path={}", out.display()))
        .arg(artifact)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    out.is_file().then(|| out.display().to_string())
}

fn stat(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(key))
        .filter_map(|v| v.trim().trim_start_matches(':').trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

/// Executions and exec/s from `-print_final_stats=1`; cov and ft from the
/// last status line (`#N DONE cov: C ft: F ...`).
fn parse_stats(target: &str, text: &str) -> Stats {
    let mut cov = 0;
    let mut ft = 0;
    for l in text.lines().filter(|l| l.starts_with('#')) {
        let w: Vec<&str> = l.split_whitespace().collect();
        for (i, x) in w.iter().enumerate() {
            match *x {
                "cov:" => cov = w.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(cov),
                "ft:" => ft = w.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(ft),
                _ => {}
            }
        }
    }
    Stats {
        target: target.to_string(),
        execs: stat(text, "stat::number_of_executed_units"),
        per_sec: stat(text, "stat::average_exec_per_sec"),
        cov,
        ft,
        corpus: 0,
        outcome: "ok".into(),
    }
}

fn print_table(rows: &[Stats], seconds: u64) {
    println!("\nfuzzing, {seconds} s per target (-timeout=10 -rss_limit_mb=512)");
    println!(
        "{:<22} {:>13} {:>9} {:>7} {:>8} {:>8}  outcome",
        "target", "executions", "exec/s", "cov", "ft", "corpus"
    );
    for s in rows {
        println!(
            "{:<22} {:>13} {:>9} {:>7} {:>8} {:>8}  {}",
            s.target, s.execs, s.per_sec, s.cov, s.ft, s.corpus, s.outcome
        );
    }
}
