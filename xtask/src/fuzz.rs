//! `cargo xtask fuzz [--seconds N] [--replay] [TARGET…]`: coverage-guided
//! fuzzing with cargo-fuzz / libFuzzer (see docs/FUZZING.md).
//!
//! - installs cargo-fuzz when missing, writes the seed corpora and the
//!   regression inputs (`crate::seeds`), builds every target (`-s none`,
//!   which works on stable);
//! - default: runs each target for N seconds (180) with `-timeout=10`,
//!   `-rss_limit_mb=512`, its dictionary and its corpus, then prints a table
//!   of executions, exec/s and coverage; any crash, timeout or OOM fails the
//!   task, and the input is minimised (`cargo fuzz tmin`) under
//!   `fuzz/artifacts/<target>/`;
//! - `--replay`: runs every target once over its committed corpus and every
//!   past finding (`fuzz/regressions/<target>/`), `-runs=0`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{cargo, root, run};

/// Every target with the dictionary it uses and its `-max_len` (0: the
/// largest seed). MessagePack targets are capped at 8 KiB: structure, not
/// size, is what they explore, and small inputs run several times faster.
pub const TARGETS: &[(&str, &str, u32)] = &[
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

pub fn main(rest: &[String]) -> Result<()> {
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
    ensure_cargo_fuzz()?;
    crate::seeds::write_all(&root())?;
    run(cargo().args(["fuzz", "build", "-s", "none"]))?;
    if replay {
        for t in &targets {
            replay_target(t)?;
        }
        eprintln!("xtask fuzz --replay: every corpus and regression input passes");
        return Ok(());
    }
    let mut table = Vec::new();
    let mut failed = Vec::new();
    for t in &targets {
        let s = run_target(t, seconds)?;
        if s.outcome != "ok" {
            failed.push(format!("{t}: {}", s.outcome));
        }
        table.push(s);
    }
    print_table(&table, seconds);
    if !failed.is_empty() {
        bail!("fuzzing found problems:\n  {}", failed.join("\n  "));
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<()> {
    let ok = cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

fn bin(target: &str) -> PathBuf {
    root().join(format!("fuzz/target/{TRIPLE}/release/{target}"))
}

fn dirs(target: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let r = root();
    (
        r.join(format!("target/fuzz-corpus/{target}")),
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
    let logs = root().join("target/fuzz-logs");
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

/// `cargo fuzz tmin` into `fuzz/artifacts/<target>/`; the smallest
/// `minimized-from-*` file it left there.
fn minimize(target: &str, artifact: &Path) -> Option<String> {
    cargo()
        .args(["fuzz", "tmin", "-s", "none", target])
        .arg(artifact)
        .args(["-r", "2000", "--", "-timeout=10", "-rss_limit_mb=512"])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let dir = artifact.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("minimized-from-")
        })
        .filter_map(|e| Some((e.metadata().ok()?.len(), e.path())))
        .min()
        .map(|(_, p)| p.display().to_string())
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
