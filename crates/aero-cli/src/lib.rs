//! `aerotensor`: convert, validate, inspect and read AERO model files.
//!
//! The whole command-line tool is [`main_with_args`]: the `aerotensor`
//! binary is a one-line `main` around it, and the Python package's
//! `aerotensor` console script (and `python -m aerotensor`) calls it through
//! the extension module, so both are the same program — every command, the
//! same output and exit codes. [`command`] is the clap definition the
//! completions and man pages are generated from.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cmd;
mod out;
mod remote;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::LazyLock;

use clap::{CommandFactory, Parser};

/// Convert, validate, inspect and read AERO model-weight files.
///
/// AERO stores tensors in one `.aero` file (or an AEROSET of several) with a
/// BLAKE3 hash per chunk; every chunk starts on 16 bytes, and the default
/// aligned layout puts each weight shard on 4096 bytes and each tensor on
/// 64 inside it, so every tensor can be memory-mapped without copying. Every tensor byte a command hands out is
/// checked against the file's hashes first.
///
/// Exit codes: 0 success / valid; 1 a file is damaged or cannot be trusted
/// (validation failed, a hash mismatch, truncation); 2 usage or I/O error.
#[derive(Parser, Debug)]
#[command(
    name = "aerotensor",
    version,
    long_version = LONG_VERSION.as_str(),
    propagate_version = true,
    max_term_width = 100,
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
    #[command(flatten)]
    remote: remote::RemoteArgs,
}

/// What `--version` prints after the name: the crate version, the format
/// versions read and written (from the format crates' own constants) and
/// the remote schemes this build reads.
static LONG_VERSION: LazyLock<String> = LazyLock::new(|| {
    let (major, minor) = aero_format::VERSION;
    let set = |v: &[u64; 2]| format!("{}.{}", v[0], v[1]);
    let set_read: Vec<String> = aero_set::manifest::READ_VERSIONS.iter().map(set).collect();
    format!(
        "{}\nformats: reads and writes AERO {major}.{minor}; reads AEROSET {}, writes AEROSET {} ({} with --base-url)\n\
         remote: {}",
        env!("CARGO_PKG_VERSION"),
        set_read.join(" and "),
        set(&aero_set::manifest::WRITE_VERSION),
        set(&aero_set::manifest::WRITE_VERSION_BASE_URL),
        if cfg!(feature = "s3") {
            "http(s)://, s3://, gs://, az://"
        } else {
            "http(s):// (this build has no s3://, gs://, az://)"
        }
    )
});

/// The clap definition of the command line (every subcommand and flag),
/// for generated documentation: `aerotensor completions`, `aerotensor man`.
pub fn command() -> clap::Command {
    Cli::command()
}

const EXAMPLES: &str = "\
Examples:
  aerotensor convert model.safetensors dist/model.aero     # safetensors, GGUF or AERO in
  aerotensor convert ./checkpoint dist/model-set            # sharded safetensors -> AEROSET
  aerotensor validate --full dist/model.aero                # every hash; exit 1 if damaged
  aerotensor inspect dist/model.aero                        # model, chunks, first tensors
  aerotensor list --json dist/model.aero | jq '.tensors[].name'
  aerotensor extract dist/model.aero lm_head.weight w.bin   # verified raw bytes
  aerotensor export-safetensors dist/model.aero back.safetensors
  aerotensor inspect https://host/models/model.aero         # remote: only the ranges needed

Docs: docs/CLI.md (outputs, exit codes, --json), docs/VERIFICATION.md (what reads check).";

/// Makes a closed stdout (e.g. `aerotensor list big.aero | head`) end the
/// process quietly, as for other Unix tools, instead of a "broken pipe" panic.
#[cfg(unix)]
#[allow(unsafe_code)]
fn reset_sigpipe() {
    // SAFETY: `signal` only changes the disposition of SIGPIPE, process-wide
    // and atomically; restoring the default has no memory-safety
    // implications, whatever other threads (a Python interpreter's) run.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn reset_sigpipe() {}

/// On SIGINT, SIGTERM or SIGHUP: remove every temporary file or directory
/// a write in progress created (`aero_io::output`), then exit with 128 + the
/// signal number, as a shell reports it (130 for Ctrl-C, 143 for SIGTERM).
/// Destinations are untouched: they only ever change by an atomic rename.
#[cfg(unix)]
fn clean_up_on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            aero_io::output::stop_and_remove_in_flight();
            std::process::exit(128 + sig);
        }
    });
}

#[cfg(not(unix))]
fn clean_up_on_signals() {}

/// 1 when the error says a file is damaged or untrustworthy (a failed
/// hash, a malformed structure), 2 for usage and operating-system errors.
pub(crate) fn exit_code(e: &anyhow::Error) -> u8 {
    let invalid = e.chain().any(|c| {
        c.downcast_ref::<aero_io::Error>()
            .is_some_and(aero_io::Error::is_invalid_data)
            || c.downcast_ref::<aero_set::SetError>()
                .is_some_and(aero_set::SetError::is_invalid_data)
            || c.downcast_ref::<aero_convert::ConvertError>()
                .is_some_and(aero_convert::ConvertError::is_invalid_data)
            || c.downcast_ref::<aero_convert::state_dict::StateDictError>()
                .is_some_and(aero_convert::state_dict::StateDictError::is_invalid_data)
    });
    if invalid { 1 } else { 2 }
}

/// Runs the command line `args` (the first item is the program name, as
/// in `std::env::args_os()`) and returns the exit code: 0 success / valid /
/// identical, 1 damaged or untrustworthy content (or "different" for
/// `diff`), 2 usage or I/O error, as documented in docs/CLI.md. Output goes
/// to the process's stdout and stderr, flushed before it returns.
///
/// It is a process's main, not a function to call in passing: it sets
/// process-wide state. On Unix it resets SIGPIPE to the default (a closed
/// pipe ends the process quietly, like other Unix tools) and installs
/// handlers for SIGINT, SIGTERM and SIGHUP that remove the temporaries of a
/// write in progress and exit with 128 + the signal number (130 for Ctrl-C).
/// The global flags (`--remote`, `--cache-dir`, `--no-cache`, `--jobs`)
/// apply to this call only.
pub fn main_with_args<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    static SETUP: std::sync::Once = std::sync::Once::new();
    SETUP.call_once(|| {
        reset_sigpipe();
        clean_up_on_signals();
    });
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let code = run_args(&args);
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    code
}

fn run_args(args: &[OsString]) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return 0; // --help, --version
            }
            // Usage errors get the one documented prefix too
            // (`aerotensor: error: …`), then clap's usage and tips.
            let text = e.to_string();
            eprint!(
                "aerotensor: {}",
                text.strip_prefix("error: ")
                    .map_or_else(|| text.clone(), |r| format!("error: {r}"))
            );
            // A usage error before the arguments could be read: `--json`
            // anywhere still gets the one documented error document.
            if args.iter().skip(1).any(|a| a == "--json") {
                let first = e.to_string();
                let first = first.lines().next().unwrap_or("").trim();
                let first = first.strip_prefix("error: ").unwrap_or(first);
                let _ = out::print_json(&serde_json::json!({
                    "error": first,
                    "exit_code": 2,
                }));
            }
            return 2;
        }
    };
    let opener = remote::Opener::from(cli.remote);
    let json = cli.command.wants_json();
    match cli.command.run(&opener) {
        Ok(code) => exit_code_value(code),
        Err(e) => {
            out::error_line(&e);
            let code = exit_code(&e);
            if json {
                let _ = out::print_json(&serde_json::json!({
                    "error": out::chain(&e),
                    "exit_code": code,
                }));
            }
            code
        }
    }
}

/// The number behind a command's `ExitCode`. Commands return only the
/// documented codes 0, 1 and 2, and `ExitCode` has no accessor, so it is
/// compared with them.
fn exit_code_value(code: ExitCode) -> u8 {
    (0..=2).find(|&n| ExitCode::from(n) == code).unwrap_or(2)
}
