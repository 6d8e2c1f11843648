//! `cargo xtask bench [validate|list|extract|repack|convert|export|capi|py|torch|dequant|remote|micro|all]... [--runs N]`
//!
//! End-to-end performance targets of the release `aerotensor`, each measured
//! against a baseline command in the same run (see docs/BENCHMARKS.md). The
//! 1 GiB fixtures are written with the defaults (hash_b3 for every tensor,
//! 1 MiB page hashes) unless said otherwise.
//!
//! - `validate` — `validate --full` of a 1 GiB single-shard file vs `b3sum`
//!   of the same file: ≤ 1.5× with hash_b3 + page hashes, ≤ 1.05× for a
//!   file with shard hashes only; peak RSS ≤ 64 MiB.
//! - `list`     — `list --json` of a 100,000-tensor file, median wall < 50 ms.
//! - `extract`  — verified `extract` of one 16 MiB tensor of a 1 GiB file vs
//!   `dd` of its byte range: ≤ 3×.
//! - `repack`, `convert`, `export` — `repack` of the 1 GiB file,
//!   `convert-safetensors` of a 1 GiB safetensors file and
//!   `export-safetensors` of the 1 GiB file: the default (durable) command vs
//!   `cp IN OUT2 && sync OUT2` ≤ 1.0×, `--no-fsync` (which, like `cp`, does
//!   not wait for the disk) vs `cp` ≤ 1.3×, peak RSS ≤ 64 MiB; the durable
//!   command vs plain `cp` is reported.
//! - `py`       — the Python package (wheel built with maturin, installed in a
//!   venv under target/bench): `aerotensor.load_file` of the 1 GiB file into
//!   numpy arrays, verified, vs `safetensors.numpy.load_file` of the same
//!   weights ≤ 1.0×; open + `list_tensors()` of the 100,000-tensor file vs the
//!   pure-Python reader `tests/pyref/aero_ref.py` ≤ 0.25×. Timed in-process by
//!   `crates/aero-py/bench/bench_py.py` (a fresh interpreter per call, imports
//!   done before the clock starts).
//! - `torch`    — `model.load_state_dict(aerotensor.torch.load_file(p))` of
//!   the 1 GiB file (256 float32 tensors) in the cached torch venv
//!   (`crate::torch_venv`), verified, vs `safetensors.torch.load_file` of the
//!   same weights (which verifies nothing) plus `b3sum` of its bytes: ≤ 1.1×
//!   their sum (verification may cost what hashing costs, nothing more);
//!   with `verify=False` vs safetensors alone: ≤ 1.0×. Peak RSS reported.
//!   Timed in-process by `crates/aero-py/bench/bench_torch.py` (a fresh
//!   interpreter per load, imports done and the model built before the
//!   clock starts).
//! - `capi`     — the C ABI's loader path (`examples/c/open_all.c` against
//!   the release `libaerotensor.so`): open the 1 GiB file and take a
//!   verified pointer to every tensor, vs `b3sum` of the file: ≤ 1.05× with
//!   `AERO_OPEN_VERIFY_ALL` (each shard hashed once, all cores); per-tensor
//!   verification (`aero_load` + `aero_tensor_ptr`, each tensor's hash_b3)
//!   is reported without a target.
//! - `dequant`  — `extract --as f32` of a 1 GiB Q4_K tensor (a GGUF written
//!   by gguf-py, converted) to /dev/null: verified, dequantized in pieces on
//!   every core. Its input rate vs `gguf.quants.dequantize` over the first
//!   64 MiB of the same bytes (timed in-process by
//!   `crates/aero-quant/bench/bench_dequant.py`; gguf-py's whole 1 GiB would
//!   need tens of GiB of numpy temporaries) ≥ 30×; f32 output ≥ 1 GB/s;
//!   peak RSS ≤ the output's size (the 1 GiB input is mapped: its pages
//!   count).
//! - `remote`   — remote reads at a CDN's pace: nginx (tests/nginx) behind the
//!   `aero-netem` proxy (tests/support: 20 ms per request, 50 MB/s per
//!   connection) serving a 1 GiB AEROSET of 8 parts. `validate --remote --full
//!   --no-cache` of the set vs `aria2c -x 8 -s 8 -j 8` downloading its files
//!   ≤ 1.1×; `fetch-tensor --no-cache` of its 128 MiB tensor vs `aria2c -x 8
//!   -s 8` of a 128 MiB file (its part) ≤ 1.2×; Python `load_file(URL)` of
//!   the set (wheel built with maturin, venv under target/bench) vs the
//!   aria2c download ≤ 1.2× (whole processes, interpreter start included).
//!   Peak RSS reported for each; bytes through the proxy per command in the
//!   notes. `AERO_BENCH_BEFORE=PATH` also measures another `aerotensor`
//!   (e.g. main's) on the same commands. Needs `aria2c` (Debian `aria2`,
//!   installed with apt-get when missing) and nginx (installed by the
//!   script).
//! - `micro`    — the criterion microbenchmarks (`cargo bench -p aero-io --bench read`).
//!
//! With no name, the end-to-end benchmarks run; `all` adds `micro`.
//! Each child runs with stdout on /dev/null and stderr in
//! `target/bench/logs/`; wall time is measured around spawn+wait, peak RSS is
//! the child's `ru_maxrss` from `wait4`. Commands of one benchmark run
//! interleaved (round-robin, rotating order) after one unrecorded warm-up
//! round, so background load affects ours and the baseline alike.
//!
//! A missed target prints FAIL but does not make the command fail; only
//! harness errors (a build failing, a measured command exiting non-zero) do.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Peak RSS target for streaming commands.
const RSS_TARGET: u64 = 64 * MIB;
/// The big fixture: 1 GiB of f32 tensors in one shard.
const BIG_BYTES: u64 = GIB;
const BIG_TENSORS: u64 = 256;
/// The list fixture: 100,000 small tensors.
const LIST_TENSORS: u64 = 100_000;
const LIST_TENSOR_BYTES: u64 = 256;
const LIST_TARGET: Duration = Duration::from_millis(50);
/// `validate --full` of a file with hash_b3 and page hashes vs `b3sum`: every
/// byte is hashed three times (shard, page, tensor; see aero_io::scan).
const VALIDATE_RATIO: f64 = 1.5;
/// `validate --full` of a file with only shard hashes vs `b3sum`.
const VALIDATE_SHARD_RATIO: f64 = 1.05;
/// Writers with the default hashes: durable vs `cp && sync`, and
/// `--no-fsync` vs plain `cp`.
const WRITE_SYNC_RATIO: f64 = 1.0;
const WRITE_CP_RATIO: f64 = 1.3;
/// Verified extract of one 16 MiB tensor vs `dd` of its byte range.
const EXTRACT_RATIO: f64 = 3.0;
/// Bump when the fixture generator changes so stale fixtures are rebuilt.
const FIXTURE_VERSION: &str = "gen_synthetic v2 (layout defaults: hash_b3 + 1 MiB PHSH)";

const E2E: [&str; 11] = [
    "validate", "list", "extract", "repack", "convert", "export", "capi", "py", "torch", "dequant",
    "remote",
];
/// Remote reads vs aria2c through the CDN-like proxy.
const REMOTE_VALIDATE_RATIO: f64 = 1.1;
const REMOTE_FETCH_RATIO: f64 = 1.2;
const REMOTE_PY_RATIO: f64 = 1.2;
/// `pull` of the set vs aria2c fetching the same files unverified, and vs
/// curl fetching them one after another (pull at most a quarter of its wall).
const REMOTE_PULL_RATIO: f64 = 1.0;
const REMOTE_PULL_CURL_RATIO: f64 = 0.25;
/// What the proxy adds: per request, and the per-connection cap (MB/s).
const REMOTE_DELAY_MS: u64 = 20;
const REMOTE_RATE_MBPS: u64 = 50;
/// `extract --as f32` of Q4_K vs gguf-py's dequantize, input bytes per second.
const DEQUANT_RATIO: f64 = 30.0;
/// f32 bytes per second `extract --as f32` must write.
const DEQUANT_OUTPUT_RATE: f64 = 1e9;
/// gguf-py dequantizes this much of the tensor (MiB).
const DEQUANT_PY_SLICE_MIB: u64 = 64;
/// The C ABI loader (open + a verified pointer to every tensor) vs `b3sum`.
const CAPI_RATIO: f64 = 1.05;

fn usage() -> String {
    "usage: cargo xtask bench [validate|list|extract|repack|convert|export|capi|py|torch|dequant|remote|micro|all]... [--runs N]"
        .into()
}

/// Entry point of `cargo xtask bench`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut runs = 5usize;
    let mut names: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix("--runs=") {
            runs = v.parse().context("--runs")?;
        } else if a == "--runs" {
            runs = it
                .next()
                .context("--runs needs a value")?
                .parse()
                .context("--runs")?;
        } else if a == "-h" || a == "--help" {
            eprintln!("{}", usage());
            return Ok(());
        } else if a == "all" {
            names.extend(E2E.iter().map(|s| s.to_string()));
            names.push("micro".into());
        } else if E2E.contains(&a.as_str()) || a == "micro" {
            names.push(a.clone());
        } else {
            bail!("unknown benchmark '{a}'\n{}", usage());
        }
    }
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    if names.is_empty() {
        names.extend(E2E.iter().map(|s| s.to_string()));
    }
    names.dedup();

    let e2e: Vec<&str> = E2E
        .iter()
        .copied()
        .filter(|n| names.iter().any(|m| m == n))
        .collect();
    if !e2e.is_empty() {
        end_to_end(&e2e, runs)?;
    }
    if names.iter().any(|n| n == "micro") {
        crate::run(crate::cargo().args(["bench", "-p", "aero-io", "--bench", "read"]))?;
    }
    Ok(())
}

struct Ctx {
    runs: usize,
    dir: PathBuf,
    logs: PathBuf,
    aerotensor: PathBuf,
    gen_synthetic: PathBuf,
}

fn end_to_end(names: &[&str], runs: usize) -> Result<()> {
    crate::run(crate::cargo().args([
        "build",
        "--release",
        "-p",
        "aero-cli",
        "--bin",
        "aerotensor",
    ]))?;
    crate::run(crate::cargo().args([
        "build",
        "--release",
        "-p",
        "aero-io",
        "--example",
        "gen_synthetic",
    ]))?;
    let target = crate::target_dir();
    let dir = target.join("bench");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let ctx = Ctx {
        runs,
        dir,
        logs,
        // AERO_BENCH_AEROTENSOR measures another build (e.g. an older
        // commit's) against the same baselines and fixtures.
        aerotensor: std::env::var_os("AERO_BENCH_AEROTENSOR")
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("release/aerotensor")),
        gen_synthetic: target.join("release/examples/gen_synthetic"),
    };
    for p in [&ctx.aerotensor, &ctx.gen_synthetic] {
        if !p.is_file() {
            bail!("{} was not built", p.display());
        }
    }

    let machine = machine_info();
    let date = now_utc();
    let load_start = loadavg();
    if load_start > 0.5 {
        eprintln!(
            "bench: warning: load average is {load_start:.2} before starting; other work on \
             this machine makes the timings noisy (commands are interleaved so both sides share it)"
        );
    }
    eprintln!("bench: measuring {}", ctx.aerotensor.display());
    eprintln!(
        "bench: {} run(s) per command, {} | {}",
        runs,
        date,
        machine["summary"].as_str().unwrap_or("")
    );

    let mut checks: Vec<Check> = Vec::new();
    let mut details: Vec<Value> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for &name in names {
        eprintln!("\n== {name} ==");
        let r = match name {
            "validate" => bench_validate(&ctx),
            "list" => bench_list(&ctx),
            "extract" => bench_extract(&ctx),
            "repack" => bench_repack(&ctx),
            "convert" => bench_convert(&ctx),
            "export" => bench_export(&ctx),
            "capi" => bench_capi(&ctx),
            "py" => bench_py(&ctx),
            "torch" => bench_torch(&ctx),
            "dequant" => bench_dequant(&ctx),
            "remote" => bench_remote(&ctx),
            _ => unreachable!("names are checked"),
        };
        match r {
            Ok(out) => {
                checks.extend(out.checks);
                details.push(json!({"benchmark": name, "commands": out.commands}));
                notes.extend(out.notes);
            }
            Err(e) => {
                eprintln!("bench {name}: ERROR: {e:#}");
                errors.push(format!("{name}: {e:#}"));
                checks.push(Check::error(name, &format!("{e:#}")));
            }
        }
    }

    let load_end = loadavg();
    let table = render_table(&checks);
    println!();
    println!(
        "AERO benchmarks — {date} — {}",
        machine["summary"].as_str().unwrap_or("")
    );
    println!(
        "median of {runs} run(s) per command after one warm-up run; RSS = peak RSS (ru_maxrss)"
    );
    println!();
    println!("1-min load average: {load_start:.2} at start, {load_end:.2} at end");
    println!();
    print!("{table}");
    for n in &notes {
        println!("note: {n}");
    }
    println!();
    println!("{}", render_details(&details));

    let results = json!({
        "date": date,
        "machine": machine,
        "runs": runs,
        "load_average": {"start": load_start, "end": load_end},
        "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        "benchmarks": details,
        "notes": notes,
        "errors": errors,
        "table": table,
    });
    let out = ctx.dir.join("results.json");
    fs::write(&out, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    if !errors.is_empty() {
        bail!(
            "{} benchmark(s) could not run: {}",
            errors.len(),
            errors.join("; ")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- measuring

/// One command to measure.
#[derive(Clone, Debug)]
struct Cmd {
    label: String,
    argv: Vec<OsString>,
}

impl Cmd {
    fn new<I, S>(label: &str, argv: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cmd {
            label: label.into(),
            argv: argv.into_iter().map(Into::into).collect(),
        }
    }

    fn shell(&self) -> String {
        self.argv
            .iter()
            .map(|a| {
                let s = a.to_string_lossy();
                if s.contains([' ', '\'', '"', '&', '$']) {
                    format!("'{}'", s.replace('\'', r"'\''"))
                } else {
                    s.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    wall: Duration,
    /// Peak resident set of the child (and its reaped descendants), bytes.
    max_rss: u64,
    /// Peak RssAnon sampled from /proc every 2 ms (a lower bound), bytes.
    anon_peak: u64,
    /// User + system CPU time of the child (and its reaped descendants).
    cpu: Duration,
}

#[derive(Clone, Debug)]
struct Series {
    cmd: Cmd,
    samples: Vec<Sample>,
}

impl Series {
    fn median(&self) -> Duration {
        let mut w: Vec<Duration> = self.samples.iter().map(|s| s.wall).collect();
        w.sort();
        let n = w.len();
        if n % 2 == 1 {
            w[n / 2]
        } else {
            (w[n / 2 - 1] + w[n / 2]) / 2
        }
    }
    fn min(&self) -> Duration {
        self.samples
            .iter()
            .map(|s| s.wall)
            .min()
            .unwrap_or_default()
    }
    fn max(&self) -> Duration {
        self.samples
            .iter()
            .map(|s| s.wall)
            .max()
            .unwrap_or_default()
    }
    /// Worst peak RSS over all runs.
    fn max_rss(&self) -> u64 {
        self.samples.iter().map(|s| s.max_rss).max().unwrap_or(0)
    }
    fn anon_peak(&self) -> u64 {
        self.samples.iter().map(|s| s.anon_peak).max().unwrap_or(0)
    }
    fn median_cpu(&self) -> Duration {
        let mut c: Vec<Duration> = self.samples.iter().map(|s| s.cpu).collect();
        c.sort();
        c.get(c.len() / 2).copied().unwrap_or_default()
    }
    fn to_json(&self) -> Value {
        json!({
            "label": self.cmd.label,
            "command": self.cmd.shell(),
            "wall_s": self.samples.iter().map(|s| s.wall.as_secs_f64()).collect::<Vec<_>>(),
            "median_s": self.median().as_secs_f64(),
            "min_s": self.min().as_secs_f64(),
            "max_s": self.max().as_secs_f64(),
            "max_rss_bytes": self.samples.iter().map(|s| s.max_rss).collect::<Vec<_>>(),
            "peak_rss_bytes": self.max_rss(),
            "anon_peak_bytes": self.anon_peak(),
            "cpu_s": self.samples.iter().map(|s| s.cpu.as_secs_f64()).collect::<Vec<_>>(),
            "median_cpu_s": self.median_cpu().as_secs_f64(),
        })
    }
}

/// Waits for `pid` with `wait4`, returning its status and resource usage.
#[allow(unsafe_code)] // libc::wait4: the only way to get a child's rusage
fn wait4(pid: libc::pid_t) -> Result<(ExitStatus, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std's `Child` never
        // waited for it); both out-pointers are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            return Ok((ExitStatus::from_raw(status), ru));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            bail!("wait4({pid}): {e}");
        }
    }
}

/// Samples `RssAnon` of `pid` until `stop` is set; returns the peak in bytes.
fn anon_sampler(pid: u32, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        let mut peak = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if let Ok(s) = fs::read_to_string(&path)
                && let Some(kb) = s
                    .lines()
                    .find_map(|l| l.strip_prefix("RssAnon:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb * 1024);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        peak
    })
}

fn tail(path: &Path, lines: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Runs `cmd` once: stdout to /dev/null, stderr to `log`.
fn measure(cmd: &Cmd, log: &Path) -> Result<Sample> {
    let err = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let start = Instant::now();
    let child = Command::new(&cmd.argv[0])
        .args(&cmd.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", cmd.shell()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = anon_sampler(child.id(), stop.clone());
    let waited = wait4(child.id() as libc::pid_t);
    let wall = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let anon_peak = sampler.join().unwrap_or(0);
    drop(child); // already reaped by wait4
    let (status, ru) = waited?;
    if !status.success() {
        bail!(
            "`{}` failed ({status}); stderr ({}):\n{}",
            cmd.shell(),
            log.display(),
            tail(log, 10)
        );
    }
    Ok(Sample {
        wall,
        // Linux reports ru_maxrss in KiB.
        max_rss: (ru.ru_maxrss.max(0) as u64) * 1024,
        anon_peak,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
    })
}

/// Measures `cmds` interleaved: one unrecorded warm-up round, then `runs`
/// rounds, each starting at a different command. `prepare` runs (untimed)
/// before every command.
fn measure_all(
    ctx: &Ctx,
    bench: &str,
    cmds: &[Cmd],
    prepare: &dyn Fn() -> Result<()>,
) -> Result<Vec<Series>> {
    let mut series: Vec<Series> = cmds
        .iter()
        .map(|c| Series {
            cmd: c.clone(),
            samples: Vec::new(),
        })
        .collect();
    for c in cmds {
        eprintln!("  [{}] {}", c.label, c.shell());
    }
    for round in 0..=ctx.runs {
        for k in 0..cmds.len() {
            let i = (round + k) % cmds.len();
            let c = &cmds[i];
            prepare()?;
            let log = ctx.logs.join(format!("{bench}-{}.stderr", slug(&c.label)));
            let s = measure(c, &log)?;
            if round > 0 {
                series[i].samples.push(s);
            }
        }
        if round == 0 {
            eprint!("  warm-up done; runs:");
        } else {
            eprint!(" {round}");
        }
    }
    eprintln!();
    Ok(series)
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

// ---------------------------------------------------------------- fixtures

/// Generates `name` under target/bench with gen_synthetic, unless a file made
/// with the same arguments (recorded in `<name>.stamp`) is already there.
fn fixture(ctx: &Ctx, name: &str, args: &[&str]) -> Result<PathBuf> {
    let path = ctx.dir.join(name);
    let stamp = ctx.dir.join(format!("{name}.stamp"));
    let key = format!("{FIXTURE_VERSION}: {}", args.join(" "));
    if let (Ok(meta), Ok(s)) = (fs::metadata(&path), fs::read_to_string(&stamp))
        && s == format!("{key}\nsize {}\n", meta.len())
    {
        eprintln!("  reusing {} ({})", path.display(), human(meta.len()));
        return Ok(path);
    }
    let _ = fs::remove_file(&stamp);
    crate::run(Command::new(&ctx.gen_synthetic).arg(&path).args(args))?;
    let size = fs::metadata(&path)
        .with_context(|| format!("{} was not written", path.display()))?
        .len();
    fs::write(&stamp, format!("{key}\nsize {size}\n"))?;
    Ok(path)
}

/// The 1 GiB file as the reference writer lays it out: shard hashes only.
fn big_aero_reference(ctx: &Ctx) -> Result<PathBuf> {
    fixture(
        ctx,
        "model-1g-reference.aero",
        &[
            "--bytes",
            &BIG_BYTES.to_string(),
            "--tensors",
            &BIG_TENSORS.to_string(),
            "--layout",
            "reference",
        ],
    )
}

fn big_aero(ctx: &Ctx) -> Result<PathBuf> {
    fixture(
        ctx,
        "model-1g.aero",
        &[
            "--bytes",
            &BIG_BYTES.to_string(),
            "--tensors",
            &BIG_TENSORS.to_string(),
            "--layout",
            "aligned",
        ],
    )
}

/// Reads a file once so every measured command starts from a warm page cache.
fn warm(path: &Path) -> Result<()> {
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0u8; 4 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

fn remove(paths: &[&Path]) -> Result<()> {
    for p in paths {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }
    Ok(())
}

fn sync_all() -> Result<()> {
    let st = Command::new("sync").status().context("running sync")?;
    if !st.success() {
        bail!("sync failed: {st}");
    }
    Ok(())
}

// ---------------------------------------------------------------- checks

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Info,
    Skipped,
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Info => "info",
            Outcome::Skipped => "skipped",
            Outcome::Error => "ERROR",
        }
    }
    fn of(ok: bool) -> Outcome {
        if ok { Outcome::Pass } else { Outcome::Fail }
    }
}

/// One row of the results table.
#[derive(Clone, Debug)]
struct Check {
    benchmark: String,
    ours: String,
    baseline: String,
    ratio: String,
    rss: String,
    target: String,
    outcome: Outcome,
    ratio_value: Option<f64>,
    /// Ratio of the fastest runs: less sensitive to a noisy machine.
    min_ratio: Option<f64>,
}

impl Check {
    fn error(bench: &str, msg: &str) -> Check {
        Check {
            benchmark: bench.into(),
            ours: "-".into(),
            baseline: "-".into(),
            ratio: "-".into(),
            rss: "-".into(),
            target: msg.lines().next().unwrap_or("").chars().take(60).collect(),
            outcome: Outcome::Error,
            ratio_value: None,
            min_ratio: None,
        }
    }

    /// Wall-time ratio of `ours` to `base`, compared with `target` (None: report only).
    fn ratio(bench: &str, ours: &Series, base: &Series, target: Option<f64>) -> Check {
        let r = ours.median().as_secs_f64() / base.median().as_secs_f64().max(1e-9);
        let m = ours.min().as_secs_f64() / base.min().as_secs_f64().max(1e-9);
        Check {
            benchmark: bench.into(),
            ours: dur(ours.median()),
            baseline: format!("{} {}", base.cmd.label, dur(base.median())),
            ratio: format!("{r:.2}x (min {m:.2}x)"),
            rss: human(ours.max_rss()),
            target: match target {
                Some(t) => format!("wall <= {t:.2}x {}", base.cmd.label),
                None => format!("(none) vs {}", base.cmd.label),
            },
            // Both must hold: on a noisy machine one slow baseline run can
            // flatter the median ratio, one lucky run the minimum.
            outcome: target.map_or(Outcome::Info, |t| Outcome::of(r <= t && m <= t)),
            ratio_value: Some(r),
            min_ratio: Some(m),
        }
    }

    /// Peak RSS of `ours` against `limit` (None: report only).
    fn rss(bench: &str, ours: &Series, base: Option<&Series>, limit: Option<u64>) -> Check {
        Check {
            benchmark: bench.into(),
            ours: human(ours.max_rss()),
            baseline: base.map_or("-".into(), |b| {
                format!("{} {}", b.cmd.label, human(b.max_rss()))
            }),
            ratio: "-".into(),
            rss: human(ours.max_rss()),
            target: match limit {
                Some(l) => format!("RSS <= {}", human(l)),
                None => "(none) RSS".into(),
            },
            outcome: limit.map_or(Outcome::Info, |l| Outcome::of(ours.max_rss() <= l)),
            ratio_value: None,
            min_ratio: None,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "benchmark": self.benchmark,
            "ours": self.ours,
            "baseline": self.baseline,
            "ratio": self.ratio_value,
            "ratio_of_min": self.min_ratio,
            "peak_rss": self.rss,
            "target": self.target,
            "result": self.outcome.as_str(),
        })
    }
}

struct BenchOut {
    checks: Vec<Check>,
    commands: Vec<Value>,
    notes: Vec<String>,
}

impl BenchOut {
    fn new(series: &[Series]) -> BenchOut {
        BenchOut {
            checks: Vec::new(),
            commands: series.iter().map(Series::to_json).collect(),
            notes: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------- benchmarks

/// `validate --full` of the 1 GiB file (hash_b3 + page hashes) and of a
/// 1 GiB file with only shard hashes, each vs `b3sum` of the same file.
fn bench_validate(ctx: &Ctx) -> Result<BenchOut> {
    let b3sum = ensure_b3sum();
    let mut all = BenchOut {
        checks: Vec::new(),
        commands: Vec::new(),
        notes: Vec::new(),
    };
    for (file, name, ratio) in [
        (
            big_aero(ctx)?,
            "validate --full 1 GiB (hash_b3+PHSH)",
            VALIDATE_RATIO,
        ),
        (
            big_aero_reference(ctx)?,
            "validate --full 1 GiB (shard hash)",
            VALIDATE_SHARD_RATIO,
        ),
    ] {
        warm(&file)?;
        let ours = Cmd::new(
            "aerotensor",
            [
                ctx.aerotensor.as_os_str(),
                "validate".as_ref(),
                "--full".as_ref(),
                file.as_os_str(),
            ],
        );
        let mut cmds = vec![ours];
        if let Some(b) = &b3sum {
            cmds.push(Cmd::new("b3sum", [b.as_os_str(), file.as_os_str()]));
        }
        let s = measure_all(ctx, "validate", &cmds, &|| Ok(()))?;
        let out = &mut all;
        out.commands.extend(s.iter().map(Series::to_json));
        match s.get(1) {
            Some(base) => out
                .checks
                .push(Check::ratio(name, &s[0], base, Some(ratio))),
            None => {
                out.checks.push(Check {
                    benchmark: name.into(),
                    ours: dur(s[0].median()),
                    baseline: "b3sum missing".into(),
                    ratio: "-".into(),
                    rss: human(s[0].max_rss()),
                    target: format!("wall <= {ratio:.2}x b3sum"),
                    outcome: Outcome::Skipped,
                    ratio_value: None,
                    min_ratio: None,
                });
                out.notes.push(
                    "validate ratio skipped: b3sum is not installed and could not be installed \
                     (apt-get install b3sum / cargo install b3sum --locked)"
                        .into(),
                );
            }
        }
        out.checks
            .push(Check::rss(name, &s[0], s.get(1), Some(RSS_TARGET)));
    }
    all.notes.push(
        "a file with hash_b3 and PHSH holds three hashes of every weight byte (shard, page, \
         tensor); validate --full computes all three in one read, b3sum one"
            .into(),
    );
    Ok(all)
}

/// Verified `extract` of one 16 MiB tensor from a 1 GiB file written with
/// the defaults vs `dd` of the same byte range, both into a file.
fn bench_extract(ctx: &Ctx) -> Result<BenchOut> {
    let file = fixture(
        ctx,
        "model-1g-16m.aero",
        &[
            "--bytes",
            &BIG_BYTES.to_string(),
            "--tensors",
            &(BIG_BYTES / (16 * MIB)).to_string(),
            "--layout",
            "aligned",
        ],
    )?;
    warm(&file)?;
    let listing = Command::new(&ctx.aerotensor)
        .args(["inspect", "--json", "--max-tensors", "1000000"])
        .arg(&file)
        .output()?;
    let v: Value = serde_json::from_slice(&listing.stdout).context("inspect --json")?;
    let t = v["tensors"]
        .as_array()
        .and_then(|a| a.get(a.len() / 2))
        .context("no tensor")?
        .clone();
    let name = t["name"].as_str().context("tensor name")?.to_string();
    let shard = format!("weights.shard{}", t["shard_id"]);
    let chunk = v["chunks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == shard.as_str()))
        .context("tensor's shard chunk")?;
    let off =
        chunk["offset"].as_u64().context("offset")? + t["data_off"].as_u64().context("data_off")?;
    let len = tensor_bytes(&t)?;
    fs::create_dir_all(ctx.dir.join("out"))?;
    let out = ctx.dir.join("out/tensor.bin");
    let out2 = ctx.dir.join("out/dd.bin");
    let ours = Cmd::new(
        "aerotensor",
        [
            ctx.aerotensor.as_os_str(),
            "extract".as_ref(),
            file.as_os_str(),
            name.as_ref(),
            out.as_os_str(),
        ],
    );
    let mut of = OsString::from("of=");
    of.push(&out2);
    let mut iff = OsString::from("if=");
    iff.push(&file);
    let dd = Cmd::new(
        "dd",
        [
            "dd".into(),
            iff,
            of,
            "bs=1M".into(),
            format!("skip={off}").into(),
            format!("count={len}").into(),
            "iflag=skip_bytes,count_bytes".into(),
            "status=none".into(),
        ],
    );
    let s = measure_all(ctx, "extract", &[ours, dd], &|| remove(&[&out, &out2]))?;
    let mut o = BenchOut::new(&s);
    o.checks.push(Check::ratio(
        "extract 16 MiB tensor of 1 GiB (verified)",
        &s[0],
        &s[1],
        Some(EXTRACT_RATIO),
    ));
    o.notes.push(format!(
        "extract checks the tensor's hash_b3 (16 MiB hashed) and writes atomically; dd copies {len} bytes at offset {off}"
    ));
    Ok(o)
}

/// The 100,000-tensor file `list` and the Python bench read.
fn list_fixture(ctx: &Ctx) -> Result<PathBuf> {
    fixture(
        ctx,
        "tensors-100k.aero",
        &[
            "--bytes",
            &(LIST_TENSORS * LIST_TENSOR_BYTES).to_string(),
            "--tensors",
            &LIST_TENSORS.to_string(),
            "--layout",
            "aligned",
        ],
    )
}

/// `list --json` of the 100,000-tensor file, output to /dev/null.
fn bench_list(ctx: &Ctx) -> Result<BenchOut> {
    let file = list_fixture(ctx)?;
    warm(&file)?;
    let ours = Cmd::new(
        "aerotensor",
        [
            ctx.aerotensor.as_os_str(),
            "list".as_ref(),
            "--json".as_ref(),
            file.as_os_str(),
        ],
    );
    let s = measure_all(ctx, "list", &[ours], &|| Ok(()))?;
    let m = s[0].median();
    let mut out = BenchOut::new(&s);
    out.checks.push(Check {
        benchmark: "list --json 100k tensors".into(),
        ours: dur(m),
        baseline: "-".into(),
        ratio: "-".into(),
        rss: human(s[0].max_rss()),
        target: format!("wall < {}", dur(LIST_TARGET)),
        outcome: Outcome::of(m < LIST_TARGET),
        ratio_value: None,
        min_ratio: None,
    });
    Ok(out)
}

/// `extract --as f32` of a 1 GiB Q4_K tensor vs gguf-py's dequantize.
fn bench_dequant(ctx: &Ctx) -> Result<BenchOut> {
    let script = crate::root().join("crates/aero-quant/bench/bench_dequant.py");
    let gguf = ctx.dir.join("q4k-1g.gguf");
    let aero = ctx.dir.join("q4k-1g.aero");
    let stamp = ctx.dir.join("q4k-1g.stamp");
    let key = format!("bench_dequant.py gen --bytes {BIG_BYTES}; convert\n");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(key.as_str())
        || !gguf.is_file()
        || !aero.is_file()
    {
        let _ = fs::remove_file(&stamp);
        crate::run(
            Command::new("python3")
                .arg(&script)
                .arg("gen")
                .arg(&gguf)
                .args(["--bytes", &BIG_BYTES.to_string()]),
        )?;
        crate::run(
            Command::new(&ctx.aerotensor)
                .arg("convert")
                .arg(&gguf)
                .arg(&aero)
                .args(["--uuid", "00112233445566778899aabbccddeeff"]),
        )?;
        fs::write(&stamp, &key)?;
    } else {
        eprintln!("  reusing {} and {}", gguf.display(), aero.display());
    }
    warm(&aero)?;
    let listing = Command::new(&ctx.aerotensor)
        .args(["list", "--json"])
        .arg(&aero)
        .output()?;
    let v: Value = serde_json::from_slice(&listing.stdout).context("list --json")?;
    let t = v["tensors"].get(0).context("no tensor")?;
    let in_bytes = tensor_bytes(t)?;
    let elements: u64 = t["shape"]
        .as_array()
        .context("shape")?
        .iter()
        .filter_map(Value::as_u64)
        .product();
    let out_bytes = elements * 4;
    let ours = Cmd::new(
        "aerotensor",
        [
            ctx.aerotensor.as_os_str(),
            "extract".as_ref(),
            aero.as_os_str(),
            "w".as_ref(),
            "/dev/null".as_ref(),
            "--as".as_ref(),
            "f32".as_ref(),
        ],
    );
    let s = measure_all(ctx, "dequant", &[ours], &|| Ok(()))?;
    let py_out = ctx.dir.join("dequant-py.json");
    crate::run(
        Command::new("python3")
            .arg(&script)
            .arg("run")
            .arg(&gguf)
            .args(["--slice-mib", &DEQUANT_PY_SLICE_MIB.to_string()])
            .args(["--runs", &ctx.runs.to_string()])
            .arg("--out")
            .arg(&py_out),
    )?;
    let py: Value =
        serde_json::from_slice(&fs::read(&py_out)?).context("bench_dequant.py output")?;
    let py_bytes = py["slice_bytes"].as_f64().context("slice_bytes")?;
    let py_secs = py["median_s"].as_f64().context("median_s")?;
    let ours_secs = s[0].median().as_secs_f64().max(1e-9);
    let ours_rate = in_bytes as f64 / ours_secs;
    let py_rate = py_bytes / py_secs.max(1e-9);
    let speedup = ours_rate / py_rate;
    let out_rate = out_bytes as f64 / ours_secs;
    let mut o = BenchOut::new(&s);
    o.commands.push(
        json!({"label": "gguf.quants.dequantize", "slice_bytes": py_bytes,
                           "seconds": py["seconds"], "median_s": py_secs}),
    );
    o.checks.push(Check {
        benchmark: "extract --as f32, 1 GiB Q4_K (verified)".into(),
        ours: format!("{} ({}/s in)", dur(s[0].median()), human(ours_rate as u64)),
        baseline: format!(
            "gguf-py {} for {} ({}/s in)",
            dur(Duration::from_secs_f64(py_secs)),
            human(py_bytes as u64),
            human(py_rate as u64)
        ),
        ratio: format!("{speedup:.1}x faster"),
        rss: human(s[0].max_rss()),
        target: format!(">= {DEQUANT_RATIO:.0}x gguf-py input rate"),
        outcome: Outcome::of(speedup >= DEQUANT_RATIO),
        ratio_value: Some(speedup),
        min_ratio: None,
    });
    o.checks.push(Check {
        benchmark: "extract --as f32 output rate".into(),
        ours: format!("{:.2} GB/s", out_rate / 1e9),
        baseline: "-".into(),
        ratio: "-".into(),
        rss: human(s[0].max_rss()),
        target: format!(">= {:.1} GB/s of f32", DEQUANT_OUTPUT_RATE / 1e9),
        outcome: Outcome::of(out_rate >= DEQUANT_OUTPUT_RATE),
        ratio_value: None,
        min_ratio: None,
    });
    o.checks.push(Check::rss(
        "extract --as f32 peak RSS",
        &s[0],
        None,
        Some(out_bytes),
    ));
    o.notes.push(format!(
        "dequant: {in_bytes} bytes of Q4_K -> {out_bytes} bytes of f32; anon peak {} (the rest of RSS is the mapped input); gguf-py timed on the first {} MiB in-process",
        human(s[0].anon_peak()),
        DEQUANT_PY_SLICE_MIB
    ));
    Ok(o)
}

/// The Python package: loading every tensor of the 1 GiB file into numpy
/// arrays (verified) vs safetensors, and listing 100k tensors vs the
/// pure-Python reader; see `crates/aero-py/bench/bench_py.py`.
fn bench_py(ctx: &Ctx) -> Result<BenchOut> {
    let wheel = crate::wheel(crate::WheelProfile::Release)?;
    let py = crate::venv(&wheel, "bench/py-venv", &["msgpack", "zstandard"])?;
    let aero = big_aero(ctx)?;
    let st = fixture(
        ctx,
        "model-1g.safetensors",
        &[
            "--bytes",
            &BIG_BYTES.to_string(),
            "--tensors",
            &BIG_TENSORS.to_string(),
            "--safetensors",
        ],
    )?;
    let list = list_fixture(ctx)?;
    let out = ctx.dir.join("py.json");
    let root = crate::root();
    crate::run(
        Command::new(&py)
            .arg(root.join("crates/aero-py/bench/bench_py.py"))
            .arg("run")
            .arg("--load-aero")
            .arg(&aero)
            .arg("--load-safetensors")
            .arg(&st)
            .arg("--list-aero")
            .arg(&list)
            .arg("--pyref")
            .arg(root.join("tests/pyref"))
            .arg("--runs")
            .arg(ctx.runs.to_string())
            .arg("--out")
            .arg(&out),
    )?;
    let v: Value = serde_json::from_slice(&fs::read(&out)?).context("bench_py.py output")?;
    let mut o = BenchOut {
        checks: Vec::new(),
        commands: Vec::new(),
        notes: Vec::new(),
    };
    for r in v.as_array().context("bench_py.py output: a list")? {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        let s = |k: &str| dur(Duration::from_secs_f64(f(k).max(0.0)));
        let name = match r["benchmark"].as_str() {
            Some("load") => "py: load_file 1 GiB into numpy (verified)",
            Some("list") => "py: list_tensors 100k tensors",
            _ => "py: ?",
        };
        let target = f("target");
        o.checks.push(Check {
            benchmark: name.into(),
            ours: s("ours_median_s"),
            baseline: format!(
                "{} {}",
                r["baseline"].as_str().unwrap_or(""),
                s("baseline_median_s")
            ),
            ratio: format!("{:.2}x (min {:.2}x)", f("ratio"), f("ratio_of_min")),
            rss: human(r["ours_peak_rss"].as_u64().unwrap_or(0)),
            target: format!(
                "wall <= {target:.2}x {}",
                r["baseline"].as_str().unwrap_or("")
            ),
            outcome: Outcome::of(r["pass"].as_bool().unwrap_or(false)),
            ratio_value: Some(f("ratio")),
            min_ratio: Some(f("ratio_of_min")),
        });
        for (side, label) in [("ours", "ours"), ("baseline", "baseline")] {
            let samples = &r["samples"][r[side].as_str().unwrap_or("")];
            let walls: Vec<f64> = samples
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["s"].as_f64())
                .collect();
            let min = walls.iter().copied().fold(f64::INFINITY, f64::min);
            let max = walls.iter().copied().fold(0.0, f64::max);
            o.commands.push(json!({
                "label": format!("{} ({label})", r[side].as_str().unwrap_or("")),
                "command": format!("bench_py.py child ({})", r["benchmark"]),
                "wall_s": walls,
                "median_s": f(&format!("{side}_median_s")),
                "min_s": min,
                "max_s": max,
                "peak_rss_bytes": r[format!("{side}_peak_rss")],
                "anon_peak_bytes": 0,
                "median_cpu_s": 0.0,
            }));
        }
    }
    o.notes.push(
        "py rows: time of the call in a fresh interpreter (imports excluded); load_file verifies \
         every shard on all cores, then hands out zero-copy read-only views of the mapping; \
         safetensors.numpy.load_file reads the file into memory and does not verify"
            .into(),
    );
    Ok(o)
}

/// `model.load_state_dict(load_file(p))` of the 1 GiB file through
/// `aerotensor.torch` (verified, and with `verify=False`) vs
/// `safetensors.torch` on the same weights, plus `b3sum` of them.
fn bench_torch(ctx: &Ctx) -> Result<BenchOut> {
    let wheel = crate::wheel(crate::WheelProfile::Release)?;
    let py = crate::torch_venv(&wheel)?;
    let aero = big_aero(ctx)?;
    let st = fixture(
        ctx,
        "model-1g.safetensors",
        &[
            "--bytes",
            &BIG_BYTES.to_string(),
            "--tensors",
            &BIG_TENSORS.to_string(),
            "--safetensors",
        ],
    )?;
    let b3sum = ensure_b3sum().context("b3sum is needed as the baseline")?;
    let out = ctx.dir.join("torch.json");
    crate::run(
        Command::new(&py)
            .arg(crate::root().join("crates/aero-py/bench/bench_torch.py"))
            .arg("run")
            .arg("--aero")
            .arg(&aero)
            .arg("--safetensors")
            .arg(&st)
            .arg("--b3sum")
            .arg(&b3sum)
            .arg("--runs")
            .arg(ctx.runs.to_string())
            .arg("--out")
            .arg(&out),
    )?;
    let v: Value = serde_json::from_slice(&fs::read(&out)?).context("bench_torch.py output")?;
    let mut o = BenchOut {
        checks: Vec::new(),
        commands: Vec::new(),
        notes: Vec::new(),
    };
    let secs = |x: &Value| {
        dur(Duration::from_secs_f64(
            x.as_f64().unwrap_or(f64::NAN).max(0.0),
        ))
    };
    for r in v["rows"]
        .as_array()
        .context("bench_torch.py output: rows")?
    {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        let name = match r["benchmark"].as_str() {
            Some("verified") => "torch: load_state_dict(load_file) 1 GiB, verified",
            Some("unverified") => "torch: load_state_dict(load_file) 1 GiB, verify=False",
            _ => "torch: ?",
        };
        let baseline = r["baseline"].as_str().unwrap_or("");
        o.checks.push(Check {
            benchmark: name.into(),
            ours: secs(&r["ours_median_s"]),
            baseline: format!("{baseline} {}", secs(&r["baseline_median_s"])),
            ratio: format!("{:.2}x (min {:.2}x)", f("ratio"), f("ratio_of_min")),
            rss: human(r["ours_peak_rss"].as_u64().unwrap_or(0)),
            target: format!("wall <= {:.2}x {baseline}", f("target")),
            outcome: Outcome::of(r["pass"].as_bool().unwrap_or(false)),
            ratio_value: Some(f("ratio")),
            min_ratio: Some(f("ratio_of_min")),
        });
    }
    for (op, samples) in v["samples"]
        .as_object()
        .context("bench_torch.py output: samples")?
    {
        let walls: Vec<f64> = samples
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["s"].as_f64())
            .collect();
        o.commands.push(json!({
            "label": op,
            "command": format!("bench_torch.py child {op}"),
            "wall_s": walls,
            "median_s": v["median_s"][op],
            "min_s": v["min_s"][op],
            "max_s": walls.iter().copied().fold(0.0, f64::max),
            "peak_rss_bytes": v["peak_rss"][op],
            "anon_peak_bytes": 0,
            "median_cpu_s": v["median_cpu_s"][op],
        }));
    }
    let rss = |op: &str| human(v["peak_rss"][op].as_u64().unwrap_or(0));
    o.notes.push(format!(
        "torch rows: time of load_state_dict(load_file(p)) in a fresh interpreter (imports and \
         the model's allocation excluded). aerotensor.torch hashes every shard once on all cores \
         (verify=False skips that), then places each tensor in a private copy-on-write mapping \
         of the file; safetensors.torch maps its file and verifies nothing; b3sum hashes the \
         safetensors file. Peak RSS (the process's, with the model's 1 GiB allocated before the \
         clock): aero {}, aero verify=False {}, safetensors {}, b3sum {}; the verifying pass maps \
         the file in windows it drops as it goes, so it adds nothing to the peak",
        rss("aero"),
        rss("aero-unverified"),
        rss("safetensors"),
        rss("b3sum"),
    ));
    Ok(o)
}

/// The remote bench's 1 GiB set, written once under `dir/www/set`: 8
/// safetensors shards written by gen_synthetic (the first one tensor of
/// 128 MiB, the others 16 tensors of 8 MiB) converted by
/// `convert-safetensors-sharded` into 8 parts of one shard each (hash_b3
/// and 1 MiB page hashes, the defaults).
fn remote_set(ctx: &Ctx, dir: &Path) -> Result<PathBuf> {
    let set = dir.join("www/set");
    let stamp = dir.join("set.stamp");
    let key = format!("{FIXTURE_VERSION}: remote set v1 (1x128M + 7x16x8M, 8 parts)");
    if set.join("model.aeroset.json").is_file()
        && fs::read_to_string(&stamp).is_ok_and(|s| s == key)
    {
        eprintln!("  reusing {}", set.display());
        return Ok(set);
    }
    let _ = fs::remove_file(&stamp);
    let _ = fs::remove_dir_all(&set);
    let st = dir.join("st");
    let _ = fs::remove_dir_all(&st);
    fs::create_dir_all(&st)?;
    let mut weight_map = serde_json::Map::new();
    for i in 0..8u64 {
        let file = format!("shard{i}.safetensors");
        let (tensors, first) = if i == 0 {
            (1, 0)
        } else {
            (16, 1 + (i - 1) * 16)
        };
        crate::run(
            Command::new(&ctx.gen_synthetic)
                .arg(st.join(&file))
                .args(["--bytes", "128M", "--safetensors"])
                .args(["--tensors", &tensors.to_string()])
                .args(["--first", &first.to_string()])
                .args(["--seed", &(i + 1).to_string()]),
        )?;
        let width = (first + tensors - 1).to_string().len();
        for k in 0..tensors {
            weight_map.insert(
                format!("model.layers.{:0width$}.weight", first + k),
                file.clone().into(),
            );
        }
    }
    fs::write(
        st.join("model.safetensors.index.json"),
        json!({"metadata": {}, "weight_map": weight_map}).to_string(),
    )?;
    crate::run(
        Command::new(&ctx.aerotensor)
            .arg("convert-safetensors-sharded")
            .arg(&st)
            .arg(&set)
            .args([
                "--max-shard-bytes",
                "129M",
                "--max-part-shards",
                "1",
                "--no-fsync",
            ]),
    )?;
    fs::remove_dir_all(&st)?;
    fs::write(&stamp, key)?;
    Ok(set)
}

/// Finds `aria2c`, installing Debian's `aria2` with apt-get (as root) when
/// missing.
#[allow(unsafe_code)] // libc::geteuid
fn ensure_aria2c() -> Result<()> {
    if crate::has("aria2c", "--version") {
        return Ok(());
    }
    eprintln!("  aria2c not found: installing Debian's aria2");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "aria2"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    if !crate::has("aria2c", "--version") {
        bail!("aria2c is needed as the baseline: apt-get install aria2");
    }
    Ok(())
}

/// A running nginx (tests/nginx) and the proxy in front of it; both stop
/// when this drops.
struct RemoteServer {
    prefix: PathBuf,
    proxy: std::process::Child,
    url: String,
}

impl RemoteServer {
    fn start(www: &Path, prefix: &Path, netem: &Path) -> Result<RemoteServer> {
        let script = crate::root().join("tests/nginx/run_nginx_test.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(www)
            .env("AERO_NGINX_PREFIX", prefix)
            .output()?;
        if !out.status.success() {
            bail!("starting nginx: {}", String::from_utf8_lossy(&out.stderr));
        }
        let origin = String::from_utf8(out.stdout)?.trim().to_string();
        let mut proxy = Command::new(netem)
            .args(["--upstream", &origin])
            .args(["--delay-ms", &REMOTE_DELAY_MS.to_string()])
            .args(["--rate-mbps", &REMOTE_RATE_MBPS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", netem.display()))?;
        let mut line = String::new();
        if let Some(out) = proxy.stdout.take() {
            use std::io::BufRead;
            std::io::BufReader::new(out).read_line(&mut line)?;
        }
        let server = RemoteServer {
            prefix: prefix.to_path_buf(),
            proxy,
            url: line.trim().to_string(),
        };
        if !server.url.starts_with("http://") {
            bail!("aero-netem did not print its URL");
        }
        eprintln!(
            "  nginx {origin} behind aero-netem {} ({REMOTE_DELAY_MS} ms per request, {REMOTE_RATE_MBPS} MB/s per connection)",
            server.url
        );
        Ok(server)
    }

    /// What the proxy saw since the last call (and resets its counters):
    /// body bytes, requests, client connections and the most requests in
    /// flight at once.
    fn take_stats(&self) -> ProxyStats {
        let get = |path: &str| {
            Command::new("curl")
                .args(["-s", &format!("{}{path}", self.url)])
                .output()
                .ok()
                .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        };
        let v = get("/__netem/stats").unwrap_or(Value::Null);
        let sum = |key: &str| -> u64 {
            v["paths"]
                .as_object()
                .map(|p| p.values().filter_map(|x| x[key].as_u64()).sum())
                .unwrap_or(0)
        };
        let s = ProxyStats {
            bytes: sum("bytes"),
            requests: sum("requests"),
            connections: v["connections"].as_u64().unwrap_or(0),
            peak_in_flight: v["peak_in_flight"].as_u64().unwrap_or(0),
        };
        let _ = get("/__netem/reset");
        s
    }
}

/// Counters of the bench's proxy for one command.
struct ProxyStats {
    bytes: u64,
    requests: u64,
    connections: u64,
    peak_in_flight: u64,
}

impl Drop for RemoteServer {
    fn drop(&mut self) {
        // Closing its stdin stops the proxy.
        drop(self.proxy.stdin.take());
        let _ = self.proxy.wait();
        let _ = Command::new("bash")
            .arg(crate::root().join("tests/nginx/run_nginx_test.sh"))
            .arg("stop")
            .env("AERO_NGINX_PREFIX", &self.prefix)
            .status();
    }
}

/// Remote reads through the CDN-like proxy vs aria2c (see the module docs).
fn bench_remote(ctx: &Ctx) -> Result<BenchOut> {
    ensure_aria2c()?;
    crate::run(crate::cargo().args([
        "build",
        "--release",
        "-p",
        "aero-test-support",
        "--bin",
        "aero-netem",
    ]))?;
    let dir = ctx.dir.join("remote");
    let bin = dir.join("bin");
    fs::create_dir_all(&bin)?;
    // A copy: the shared target directory's binary may be rebuilt meanwhile.
    let netem = bin.join("aero-netem");
    fs::copy(crate::target_dir().join("release/aero-netem"), &netem)?;
    let set = remote_set(ctx, &dir)?;
    let wheel = crate::wheel(crate::WheelProfile::Release)?;
    let py = crate::venv(&wheel, "bench/remote-venv", &[])?;
    let server = RemoteServer::start(&dir.join("www"), &dir.join("nginx"), &netem)?;
    let url = |name: &str| format!("{}/set/{name}", server.url);
    let manifest = url("model.aeroset.json");
    let dl = dir.join("download");
    let out = dir.join("out");
    fs::create_dir_all(&out)?;
    let list = dir.join("aria2-set.txt");
    let mut names: Vec<String> = fs::read_dir(&set)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    fs::write(
        &list,
        names.iter().map(|n| url(n) + "\n").collect::<String>(),
    )?;
    let aria2 = |label: &str, extra: &[&str], uris: &[&str]| {
        let mut argv: Vec<OsString> = vec!["aria2c".into(), "-q".into()];
        argv.extend(extra.iter().map(OsString::from));
        argv.extend([
            "--allow-overwrite=true".into(),
            "-d".into(),
            dl.clone().into(),
        ]);
        argv.extend(uris.iter().map(OsString::from));
        Cmd::new(label, argv)
    };
    let list_arg = format!("--input-file={}", list.display());
    let before = std::env::var_os("AERO_BENCH_BEFORE").map(PathBuf::from);
    let sides: Vec<(&str, PathBuf)> = std::iter::once(("aerotensor", ctx.aerotensor.clone()))
        .chain(before.map(|b| ("before", b)))
        .collect();
    let clean = || {
        let _ = fs::remove_dir_all(&dl);
        fs::create_dir_all(&dl)?;
        remove(&[&out.join("tensor.bin")])
    };
    let mut o = BenchOut {
        checks: Vec::new(),
        commands: Vec::new(),
        notes: Vec::new(),
    };
    let mut bytes_note = Vec::new();
    let mut run = |bench: &str, cmds: Vec<Cmd>| -> Result<Vec<Series>> {
        let s = measure_all(ctx, bench, &cmds, &|| {
            clean()?;
            server.take_stats();
            Ok(())
        })?;
        // One more (unrecorded) run of each, for what it fetches.
        for c in &cmds {
            clean()?;
            server.take_stats();
            measure(c, &ctx.logs.join(format!("{bench}-bytes.stderr")))?;
            let st = server.take_stats();
            bytes_note.push(format!(
                "{} {}: {} in {} requests on {} connections, at most {} in flight",
                bench,
                c.label,
                human(st.bytes),
                st.requests,
                st.connections,
                st.peak_in_flight
            ));
        }
        o.commands.extend(s.iter().map(Series::to_json));
        Ok(s)
    };

    // Whole-set validation vs downloading the set.
    let mut cmds: Vec<Cmd> = sides
        .iter()
        .map(|(label, exe)| {
            Cmd::new(
                label,
                [
                    exe.as_os_str(),
                    "validate".as_ref(),
                    "--remote".as_ref(),
                    "--full".as_ref(),
                    "--no-cache".as_ref(),
                    manifest.as_ref(),
                ],
            )
        })
        .collect();
    cmds.push(aria2(
        "aria2c -x8 -s8 -j8",
        &["-x", "8", "-s", "8", "-j", "8", &list_arg],
        &[],
    ));
    let s = run("remote-validate", cmds)?;
    let base = s.last().context("aria2c series")?;
    let name = "remote: validate --remote --full --no-cache, 1 GiB set of 8 parts";
    o.checks
        .push(Check::ratio(name, &s[0], base, Some(REMOTE_VALIDATE_RATIO)));
    if s.len() > 2 {
        o.checks
            .push(Check::ratio(&format!("{name} (before)"), &s[1], base, None));
    }

    // One 128 MiB tensor vs a 128 MiB file.
    let tensor_out = out.join("tensor.bin");
    let mut cmds: Vec<Cmd> = sides
        .iter()
        .map(|(label, exe)| {
            Cmd::new(
                label,
                [
                    exe.as_os_str(),
                    "fetch-tensor".as_ref(),
                    "--no-cache".as_ref(),
                    manifest.as_ref(),
                    "model.layers.0.weight".as_ref(),
                    tensor_out.as_os_str(),
                ],
            )
        })
        .collect();
    let part0 = url("part-000.aero");
    cmds.push(aria2("aria2c -x8 -s8", &["-x", "8", "-s", "8"], &[&part0]));
    let s = run("remote-fetch", cmds)?;
    let base = s.last().context("aria2c series")?;
    let name = "remote: fetch-tensor --no-cache, one 128 MiB tensor";
    o.checks
        .push(Check::ratio(name, &s[0], base, Some(REMOTE_FETCH_RATIO)));
    if s.len() > 2 {
        o.checks
            .push(Check::ratio(&format!("{name} (before)"), &s[1], base, None));
    }

    // Python load_file(URL) of the set vs downloading it.
    let script = "import sys, aerotensor\n\
                  d = aerotensor.load_file(sys.argv[1], cache=False)\n\
                  assert sum(a.nbytes for a in d.values()) == int(sys.argv[2])\n";
    let total: u64 = 1 << 30;
    let cmds = vec![
        Cmd::new(
            "python load_file",
            [
                py.as_os_str(),
                "-c".as_ref(),
                script.as_ref(),
                manifest.as_ref(),
                total.to_string().as_ref(),
            ],
        ),
        aria2(
            "aria2c -x8 -s8 -j8",
            &["-x", "8", "-s", "8", "-j", "8", &list_arg],
            &[],
        ),
    ];
    let s = run("remote-py", cmds)?;
    o.checks.push(Check::ratio(
        "remote: Python load_file(URL) of the 1 GiB set (verified)",
        &s[0],
        &s[1],
        Some(REMOTE_PY_RATIO),
    ));
    // pull of the set (verified, into a directory) vs aria2c and curl.
    let pulled = dl.join("pulled");
    let mut cmds: Vec<Cmd> = sides
        .iter()
        .map(|(label, exe)| {
            Cmd::new(
                label,
                [
                    exe.as_os_str(),
                    "pull".as_ref(),
                    "--no-cache".as_ref(),
                    manifest.as_ref(),
                    pulled.as_os_str(),
                ],
            )
        })
        .collect();
    cmds.push(aria2(
        "aria2c -x8 -s8 -j8",
        &["-x", "8", "-s", "8", "-j", "8", &list_arg],
        &[],
    ));
    let curl_script = names
        .iter()
        .map(|n| {
            format!(
                "curl -sSf -o '{}' '{}' || exit 1\n",
                dl.join(n).display(),
                url(n)
            )
        })
        .collect::<String>();
    cmds.push(Cmd::new(
        "curl one file after another",
        ["sh", "-c", curl_script.as_str()],
    ));
    let s = run("remote-pull", cmds)?;
    let aria = &s[s.len() - 2];
    let curl = &s[s.len() - 1];
    let name = "remote: pull --no-cache of the 1 GiB set of 8 parts (verified)";
    o.checks
        .push(Check::ratio(name, &s[0], aria, Some(REMOTE_PULL_RATIO)));
    o.checks.push(Check::ratio(
        &format!("{name} vs curl"),
        &s[0],
        curl,
        Some(REMOTE_PULL_CURL_RATIO),
    ));
    if s.len() > 3 {
        o.checks
            .push(Check::ratio(&format!("{name} (before)"), &s[1], aria, None));
    }

    o.notes.push(format!(
        "remote: nginx behind aero-netem ({REMOTE_DELAY_MS} ms per request, {REMOTE_RATE_MBPS} MB/s per connection); \
         aerotensor verifies every byte (SHA-256 of each file and every BLAKE3 for validate; hash_b3 for the \
         tensors), aria2c downloads to disk unverified; the Python row is a whole process (interpreter start and \
         imports included) whose arrays hold the 1 GiB"
    ));
    o.notes.push(format!(
        "remote: through the proxy per run: {}",
        bytes_note.join("; ")
    ));
    drop(server);
    let _ = fs::remove_dir_all(&dl);
    Ok(o)
}

/// The two copy baselines: plain `cp`, and `cp` then `sync` of the copy (our
/// writers fsync their output).
fn copy_baselines(input: &Path, out2: &Path) -> [Cmd; 2] {
    [
        Cmd::new("cp", ["cp".as_ref(), input.as_os_str(), out2.as_os_str()]),
        Cmd::new(
            "cp+sync",
            [
                "sh".as_ref(),
                "-c".as_ref(),
                r#"cp "$1" "$2" && sync "$2""#.as_ref(),
                "sh".as_ref(),
                input.as_os_str(),
                out2.as_os_str(),
            ],
        ),
    ]
}

/// A write benchmark: `aerotensor SUB IN OUT` (durable: it fsyncs) and
/// `aerotensor SUB --no-fsync IN OUT` vs the copy baselines of `input`.
fn write_bench(
    ctx: &Ctx,
    bench: &str,
    name: &str,
    sub: &str,
    input: &Path,
    out: &Path,
) -> Result<BenchOut> {
    let aero = |extra: &[&str]| {
        let mut argv: Vec<OsString> = vec![ctx.aerotensor.clone().into(), sub.into()];
        argv.extend(extra.iter().map(OsString::from));
        argv.extend([input.as_os_str().to_owned(), out.as_os_str().to_owned()]);
        argv
    };
    let ours = Cmd::new("aerotensor", aero(&[]));
    let fast = Cmd::new("aerotensor --no-fsync", aero(&["--no-fsync"]));
    let out2 = ctx.dir.join("out/copy.bin");
    let mut cmds = vec![ours, fast];
    cmds.extend(copy_baselines(input, &out2));
    // Every run starts with no outputs and nothing dirty in the page cache,
    // so no command pays for writing back another's data.
    let prepare = || -> Result<()> {
        remove(&[out, &out2])?;
        sync_all()
    };
    let s = measure_all(ctx, bench, &cmds, &prepare)?;
    remove(&[out, &out2])?;
    let mut o = BenchOut::new(&s);
    let (durable, fast, cp, cp_sync) = (&s[0], &s[1], &s[2], &s[3]);
    o.checks.push(Check::ratio(name, durable, cp, None));
    o.checks
        .push(Check::ratio(name, durable, cp_sync, Some(WRITE_SYNC_RATIO)));
    o.checks.push(Check::ratio(
        &format!("{name} --no-fsync"),
        fast,
        cp,
        Some(WRITE_CP_RATIO),
    ));
    o.checks
        .push(Check::rss(name, durable, Some(cp), Some(RSS_TARGET)));
    o.notes.push(format!(
        "`{sub}` fsyncs its output before the rename (durable), `cp` does not: \
         `cp+sync` is the durable copy, `{sub} --no-fsync` the like-for-like one"
    ));
    Ok(o)
}

/// `repack IN OUT` (default aligned layout) of the 1 GiB file vs `cp`.
fn bench_repack(ctx: &Ctx) -> Result<BenchOut> {
    let file = big_aero(ctx)?;
    fs::create_dir_all(ctx.dir.join("out"))?;
    let out = ctx.dir.join("out/repacked.aero");
    warm(&file)?;
    write_bench(ctx, "repack", "repack 1 GiB", "repack", &file, &out)
}

/// `convert-safetensors IN OUT` of a 1 GiB safetensors file vs `cp`, when the
/// command exists.
fn bench_convert(ctx: &Ctx) -> Result<BenchOut> {
    let available = Command::new(&ctx.aerotensor)
        .args(["convert-safetensors", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        eprintln!("  skipped: convert-safetensors not available");
        return Ok(BenchOut {
            checks: vec![Check {
                benchmark: "convert-safetensors 1 GiB".into(),
                ours: "-".into(),
                baseline: "-".into(),
                ratio: "-".into(),
                rss: "-".into(),
                target: format!("wall <= {WRITE_SYNC_RATIO:.2}x cp+sync"),
                outcome: Outcome::Skipped,
                ratio_value: None,
                min_ratio: None,
            }],
            commands: Vec::new(),
            notes: vec!["skipped: convert-safetensors not available".into()],
        });
    }
    let input = fixture(
        ctx,
        "model-1g.safetensors",
        &[
            "--bytes",
            &BIG_BYTES.to_string(),
            "--tensors",
            &BIG_TENSORS.to_string(),
            "--safetensors",
        ],
    )?;
    fs::create_dir_all(ctx.dir.join("out"))?;
    let out = ctx.dir.join("out/converted.aero");
    warm(&input)?;
    write_bench(
        ctx,
        "convert",
        "convert-safetensors 1 GiB",
        "convert-safetensors",
        &input,
        &out,
    )
}

/// `export-safetensors` of the 1 GiB file written with the defaults (every
/// tensor verified as it is copied) vs `cp`; peak RSS counts mapped pages.
fn bench_export(ctx: &Ctx) -> Result<BenchOut> {
    let file = big_aero(ctx)?;
    fs::create_dir_all(ctx.dir.join("out"))?;
    let out = ctx.dir.join("out/exported.safetensors");
    warm(&file)?;
    write_bench(
        ctx,
        "export",
        "export-safetensors 1 GiB",
        "export-safetensors",
        &file,
        &out,
    )
}

/// The C loader path on the 1 GiB default file vs `b3sum` of it: open plus
/// a verified zero-copy pointer to each of its 256 tensors, verified per
/// tensor (hash_b3) or by hashing the shard once at open.
fn bench_capi(ctx: &Ctx) -> Result<BenchOut> {
    let prog = crate::capi::build_open_all()?;
    let file = big_aero(ctx)?;
    warm(&file)?;
    let b3sum = ensure_b3sum().context("b3sum is needed as the baseline")?;
    let cmds = [
        Cmd::new(
            "open_all each",
            [prog.as_os_str(), file.as_os_str(), "each".as_ref()],
        ),
        Cmd::new(
            "open_all all",
            [prog.as_os_str(), file.as_os_str(), "all".as_ref()],
        ),
        Cmd::new("b3sum", [b3sum.as_os_str(), file.as_os_str()]),
    ];
    let s = measure_all(ctx, "capi", &cmds, &|| Ok(()))?;
    let mut o = BenchOut::new(&s);
    o.checks.push(Check::ratio(
        "C ABI: aero_open(VERIFY_ALL) + aero_tensor_ptr x256, 1 GiB",
        &s[1],
        &s[2],
        Some(CAPI_RATIO),
    ));
    o.checks.push(Check::ratio(
        "C ABI: aero_load + aero_tensor_ptr x256, 1 GiB (hash_b3 each)",
        &s[0],
        &s[2],
        None,
    ));
    o.notes.push(
        "open_all (examples/c/open_all.c) takes a pointer to every tensor of the 1 GiB file \
         written with the defaults; every byte is hashed once, as b3sum hashes it. The target \
         is on the loader that says it wants every tensor (AERO_OPEN_VERIFY_ALL: one parallel \
         pass per shard); per-tensor verification (aero_load) hashes each 4 MiB tensor on the \
         rayon pool from the caller's thread, one hand-off and wake-up per tensor, and is \
         reported without a target"
            .into(),
    );
    Ok(o)
}

/// Finds `b3sum`, installing it when missing (apt-get as root, else
/// `cargo install b3sum --locked`). `None` (with a message) if that fails.
#[allow(unsafe_code)] // libc::geteuid
fn ensure_b3sum() -> Option<PathBuf> {
    let found = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin/b3sum"));
    let candidates = || std::iter::once(PathBuf::from("b3sum")).chain(cargo_bin.clone());
    if let Some(p) = candidates().find(|p| found(p)) {
        return Some(p);
    }
    eprintln!("  b3sum not found: installing it");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root && crate::has("apt-get", "--version") {
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        if apt(&["update", "-qq"])
            && apt(&["install", "-y", "-qq", "b3sum"])
            && let Some(p) = candidates().find(|p| found(p))
        {
            return Some(p);
        }
    }
    let _ = crate::cargo()
        .args(["install", "b3sum", "--locked"])
        .status();
    if let Some(p) = candidates().find(|p| found(p)) {
        return Some(p);
    }
    eprintln!("  skipped: b3sum could not be installed; the validate ratio is not measured");
    None
}

// ---------------------------------------------------------------- output

fn dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

fn human(b: u64) -> String {
    if b >= GIB {
        format!("{:.2} GiB", b as f64 / GIB as f64)
    } else {
        format!("{:.1} MiB", b as f64 / MIB as f64)
    }
}

fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            s.push(' ');
            s.push_str(c);
            s.push_str(&" ".repeat(w[i] - c.chars().count()));
            s.push_str(" |");
        }
        s.push('\n');
        s
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(w.iter().map(|n| "-".repeat(*n)).collect()));
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn render_table(checks: &[Check]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                c.benchmark.clone(),
                c.ours.clone(),
                c.baseline.clone(),
                c.ratio.clone(),
                c.rss.clone(),
                c.target.clone(),
                c.outcome.as_str().into(),
            ]
        })
        .collect();
    render(
        &[
            "benchmark",
            "ours (median)",
            "baseline (median)",
            "ratio (fastest runs)",
            "peak RSS",
            "target",
            "result",
        ],
        &rows,
    )
}

fn render_details(details: &[Value]) -> String {
    let mut rows = Vec::new();
    for d in details {
        let bench = d["benchmark"].as_str().unwrap_or("");
        for c in d["commands"].as_array().into_iter().flatten() {
            let s = |k: &str| Duration::from_secs_f64(c[k].as_f64().unwrap_or(0.0));
            let b = |k: &str| c[k].as_u64().unwrap_or(0);
            rows.push(vec![
                bench.to_string(),
                c["label"].as_str().unwrap_or("").to_string(),
                dur(s("median_s")),
                format!("{} – {}", dur(s("min_s")), dur(s("max_s"))),
                human(b("peak_rss_bytes")),
                human(b("anon_peak_bytes")),
                dur(s("median_cpu_s")),
            ]);
        }
    }
    let mut out = String::from(
        "per command (wall median, min – max over runs; peak RSS; sampled peak anonymous RSS; user+sys CPU time):\n",
    );
    out.push_str(&render(
        &[
            "benchmark",
            "command",
            "median",
            "min – max",
            "peak RSS",
            "anon RSS",
            "CPU (median)",
        ],
        &rows,
    ));
    out
}

fn machine_info() -> Value {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": cores,
        "memory_bytes": mem,
        "kernel": kernel,
        "summary": format!("{cores} cores ({cpu}), {} RAM, Linux {kernel}", human(mem)),
    })
}

/// The 1-minute load average (0 when unknown).
fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn now_utc() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            format!("unix time {}", t.as_secs())
        })
}

/// A `list --json` tensor's byte length: `bytes` in the JSON vocabulary,
/// `data_len` in builds from before it (measured with AERO_BENCH_AEROTENSOR).
fn tensor_bytes(t: &Value) -> Result<u64> {
    t["bytes"]
        .as_u64()
        .or_else(|| t["data_len"].as_u64())
        .context("tensor bytes (bytes or data_len) in list --json")
}
