//! `cargo xtask <task>`: the project's workflows as plain Rust.
//!
//! - `ci`     — everything CI checks: fmt, clippy -D warnings, tests (nextest when
//!   installed, else cargo test), doc tests, the no_std/no-alloc target build,
//!   the independent Python reader against the golden files, and `capi`.
//! - `bench`  — the performance targets, measured against baselines in one run.
//! - `dist`   — a release build of `aerotensor` into `target/dist/`.
//! - `wheel`  — the `aerotensor` Python wheel (crate aero-py, abi3, CPython ≥ 3.9)
//!   built with maturin into `target/wheels/`; `pytest` also installs it into a
//!   fresh venv and runs the Python suite (`crates/aero-py/tests`).
//! - `fuzz`   — coverage-guided fuzzing with cargo-fuzz (`fuzz [--seconds N] [--replay] [TARGET…]`,
//!   see docs/FUZZING.md); `fuzz-seeds` only rewrites the seed corpora and regression inputs.
//! - `setup`  — install test prerequisites (Python packages, rustup target).
//! - `capi`   — the C ABI: header check, `libaerotensor` in release, the C
//!   and C++ examples and the C ABI test built with `-Wall -Wextra -Werror`
//!   and run on the golden files (output checked against `expected.json`),
//!   under valgrind memcheck and AddressSanitizer.
//! - `capi-header [--check]` — regenerate (or check) the cbindgen headers.
//! - `example` — the main job on the tiny model shipped in `examples/tiny`:
//!   convert, validate, inspect, list, export back and compare.

mod bench;
mod capi;
mod fuzz;
mod seeds;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const NO_STD_TARGET: &str = "thumbv7em-none-eabihf";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    match task {
        "ci" => ci(),
        "setup" => setup(),
        "bench" => bench(rest),
        "dist" => dist(),
        "wheel" => wheel().map(|_| ()),
        "pytest" => pytest(),
        "fuzz" => fuzz::main(rest),
        "fuzz-seeds" => seeds::write_all(&root()),
        "no-std" => no_std(),
        "example" => example(),
        "capi" => capi::capi(),
        "capi-header" => capi::header(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|setup|example|bench [NAME]|dist|wheel|pytest|fuzz [--seconds N] [--replay] [TARGET…]|fuzz-seeds|no-std|capi|capi-header [--check]>"
            );
            Ok(())
        }
    }
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let st = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("running {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(())
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn has(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn setup() -> Result<()> {
    run(Command::new("python3").args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
        "tests/requirements.txt",
    ]))?;
    if has("rustup", "--version") {
        run(Command::new("rustup").args(["target", "add", NO_STD_TARGET]))?;
    }
    Ok(())
}

fn no_std() -> Result<()> {
    run(cargo().args([
        "build",
        "--package",
        "no-alloc-consumer",
        "--target",
        NO_STD_TARGET,
    ]))?;
    run(cargo().args([
        "build",
        "--package",
        "aero-format",
        "--target",
        NO_STD_TARGET,
    ]))
}

fn ci() -> Result<()> {
    setup()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        "aero-io/http",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        "aero-io/http,aero-cli/s3",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The fuzz crate is outside the workspace (it needs its own profile):
    // lint it here so an API change breaks the build in seconds, not after
    // the whole test suite.
    run(cargo().args([
        "clippy",
        "--manifest-path",
        "fuzz/Cargo.toml",
        "--bins",
        "--",
        "-D",
        "warnings",
    ]))?;
    no_std()?;
    if has_nextest() {
        run(cargo().args([
            "nextest",
            "run",
            "--workspace",
            "--no-fail-fast",
            "--features",
            "aero-io/http,aero-cli/s3",
        ]))?;
    } else {
        run(cargo().args([
            "test",
            "--workspace",
            "--no-fail-fast",
            "--features",
            "aero-io/http,aero-cli/s3",
        ]))?;
    }
    run(cargo().args(["test", "--workspace", "--doc"]))?;
    // Rustdoc is part of the documentation: broken links fail the build.
    run(cargo()
        .args([
            "doc",
            "--no-deps",
            "--workspace",
            "--features",
            "aero-io/http,aero-cli/s3",
        ])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    run(Command::new("python3").arg("tests/pyref/test_golden.py"))?;
    // The C ABI: header freshness, C/C++ examples on the golden files,
    // the ABI test, valgrind and AddressSanitizer (a few minutes).
    capi::capi()?;
    // The Python package: the wheel as shipped, in a fresh venv.
    pytest()?;
    nginx_test()?;
    s3_test()?;
    // Every committed corpus input and past finding once, then a short
    // coverage-guided smoke run of every target.
    fuzz::main(&["--replay".into()])?;
    fuzz::main(&["--seconds".into(), "20".into()])?;
    eprintln!("xtask ci: all checks passed");
    Ok(())
}

fn dist() -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "aero-cli",
        "--bin",
        "aerotensor",
    ]))?;
    let dist = root().join("target/dist");
    std::fs::create_dir_all(&dist)?;
    std::fs::copy(
        root().join("target/release/aerotensor"),
        dist.join("aerotensor"),
    )?;
    eprintln!("wrote {}", dist.join("aerotensor").display());
    Ok(())
}

/// Builds the `aerotensor` wheel (release, abi3) with maturin into
/// `target/wheels/` and returns its path.
pub(crate) fn wheel() -> Result<PathBuf> {
    let out = root().join("target/wheels");
    std::fs::create_dir_all(&out)?;
    // Only this build's wheel is left, so the path below is unambiguous.
    for e in std::fs::read_dir(&out)? {
        let p = e?.path();
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("aerotensor-") && n.ends_with(".whl"))
        {
            std::fs::remove_file(&p)?;
        }
    }
    let mut cmd = if has("maturin", "--version") {
        Command::new("maturin")
    } else {
        let mut c = Command::new("python3");
        c.args(["-m", "maturin"]);
        c
    };
    run(cmd
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(root().join("crates/aero-py/Cargo.toml"))
        .arg("--out")
        .arg(&out))?;
    let wheel = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .with_context(|| format!("maturin wrote no wheel into {}", out.display()))?;
    eprintln!("wrote {}", wheel.display());
    Ok(wheel)
}

/// A fresh venv under `target/` with the wheel and what the tests import
/// (numpy, pytest, blake3, safetensors, gguf) and `extra`; returns its
/// python.
pub(crate) fn venv(wheel: &Path, name: &str, extra: &[&str]) -> Result<PathBuf> {
    let dir = root().join("target").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    let py = dir.join("bin/python");
    run(Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(wheel)
        .args(["pytest", "blake3", "safetensors", "gguf"])
        .args(extra))?;
    Ok(py)
}

/// Builds the wheel, installs it into a fresh venv and runs the Python
/// suite there (from outside the source tree, so the installed package is
/// what is imported). Its nginx tests start their own server.
fn pytest() -> Result<()> {
    let wheel = wheel()?;
    let py = venv(&wheel, "py-venv", &[])?;
    let tmp = root().join("target/pytest-tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    run(Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp"])
        .arg(&tmp)
        .arg(root().join("crates/aero-py/tests")))
}

fn bench(rest: &[String]) -> Result<()> {
    bench::run(rest)
}

fn example() -> Result<()> {
    run(cargo().args(["build", "--quiet", "--package", "aero-cli"]))?;
    let bin = root().join("target/debug/aerotensor");
    let input = "examples/tiny/tiny-llama.safetensors";
    let out_dir = root().join("target/example");
    std::fs::create_dir_all(&out_dir)?;
    let aero = out_dir.join("tiny-llama.aero");
    let back = out_dir.join("tiny-llama.roundtrip.safetensors");
    let a = aero.to_str().context("path")?;
    run(Command::new(&bin).args([
        "convert",
        input,
        a,
        "--tensor-hash",
        "--control-integrity",
        "--page-hashes=16K",
    ]))?;
    run(Command::new(&bin).args(["validate", "--full", a]))?;
    run(Command::new(&bin).args(["inspect", a, "--max-tensors", "8"]))?;
    run(Command::new(&bin).args(["export-safetensors", a, back.to_str().context("path")?]))?;
    if std::fs::read(root().join(input))? != std::fs::read(&back)? {
        bail!("round trip differs: {} vs {}", input, back.display());
    }
    eprintln!(
        "example: {input} -> {} -> {} (byte-identical round trip)",
        aero.display(),
        back.display()
    );
    Ok(())
}

/// Serves a writable copy of the golden files with a real nginx on
/// 127.0.0.1 (installed and started by `tests/nginx/run_nginx_test.sh`) and
/// reads files and a freshly written `base_url` set remotely; nginx is
/// stopped whatever the outcome.
fn nginx_test() -> Result<()> {
    let script = "tests/nginx/run_nginx_test.sh";
    let www = root().join("target/nginx-root");
    let _ = std::fs::remove_dir_all(&www);
    run(Command::new("cp")
        .args(["-r", "../shared/golden"])
        .arg(&www))?;
    run(Command::new("chmod").args(["-R", "u+w"]).arg(&www))?;
    let out = Command::new("bash")
        .arg(script)
        .arg("start")
        .arg(&www)
        .current_dir(root())
        .output()?;
    if !out.status.success() {
        bail!(
            "starting nginx failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let url = String::from_utf8(out.stdout)?.trim().to_string();
    let log = Command::new("bash")
        .args([script, "log"])
        .current_dir(root())
        .output()?;
    let log = String::from_utf8(log.stdout)?.trim().to_string();
    let tests = || -> Result<()> {
        let env = [("AERO_NGINX_URL", &url), ("AERO_NGINX_LOG", &log)];
        let root_env = www.to_string_lossy().to_string();
        if has_nextest() {
            // The same build as the main test run: nothing recompiles.
            let mut c = cargo();
            c.args([
                "nextest",
                "run",
                "--workspace",
                "--features",
                "aero-io/http,aero-cli/s3",
                "--no-capture",
                "--run-ignored",
                "only",
                "-E",
            ])
            .arg("binary(remote_nginx) or binary(remote_set_nginx) or binary(remote_proxy_nginx)")
            .env("AERO_NGINX_ROOT", &root_env);
            for (k, v) in env {
                c.env(k, v);
            }
            return run(&mut c);
        }
        run(cargo()
            .args([
                "test",
                "--workspace",
                "--features",
                "aero-io/http,aero-cli/s3",
                "--test",
                "remote_nginx",
                "--test",
                "remote_set_nginx",
                "--test",
                "remote_proxy_nginx",
                "--",
                "--ignored",
                "--nocapture",
            ])
            .envs(env)
            .env("AERO_NGINX_ROOT", &root_env))
    };
    let result = tests();
    let _ = Command::new("bash")
        .args([script, "stop"])
        .current_dir(root())
        .status();
    result
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts an S3-compatible server that checks signatures (s3s-fs, installed
/// by the script if missing) on 127.0.0.1, reads golden files and sets
/// through `s3://` URLs, and stops the server whatever the outcome.
fn s3_test() -> Result<()> {
    let script = "tests/s3/run_s3_server.sh";
    let out = Command::new("bash")
        .args([script, "start"])
        .current_dir(root())
        .output()?;
    if !out.status.success() {
        bail!(
            "starting the S3 server failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let env = Command::new("bash")
        .args([script, "env"])
        .current_dir(root())
        .output()?;
    let mut c = cargo();
    if has_nextest() {
        c.args([
            "nextest",
            "run",
            "--workspace",
            "--features",
            "aero-io/http,aero-cli/s3",
            "--no-capture",
            "--run-ignored",
            "only",
            "-E",
            "binary(remote_s3)",
        ]);
    } else {
        c.args([
            "test",
            "--package",
            "aero-cli",
            "--features",
            "s3",
            "--test",
            "remote_s3",
            "--",
            "--ignored",
            "--nocapture",
        ]);
    }
    for line in String::from_utf8(env.stdout)?.lines() {
        let line = line.trim().trim_start_matches("export ");
        if let Some((k, v)) = line.split_once('=') {
            c.env(k, v.trim_matches(|ch| ch == '"' || ch == '\''));
        }
    }
    let result = run(&mut c);
    let _ = Command::new("bash")
        .args([script, "stop"])
        .current_dir(root())
        .status();
    result
}
