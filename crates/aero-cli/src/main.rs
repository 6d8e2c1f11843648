//! `aerotensor`: convert, validate, inspect and read AERO model files.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// The workspace warns on `unreachable_pub`; in this binary every `pub` is
// unreachable from outside. The per-command split of the CLI (issue 23)
// rewrites these modules and narrows them; until then they are allowed here.
#![allow(unreachable_pub)]

mod cmd;
mod out;
mod remote;

use std::process::ExitCode;

use clap::Parser;

/// Convert, validate, inspect and read AERO model-weight files.
///
/// AERO stores tensors in one `.aero` file (or an AEROSET of several) with a
/// BLAKE3 hash per chunk and 16-byte-aligned weight shards that can be
/// memory-mapped without copying. Every tensor byte a command hands out is
/// checked against the file's hashes first.
///
/// Exit codes: 0 success / valid; 1 a file is damaged or cannot be trusted
/// (validation failed, a hash mismatch, truncation); 2 usage or I/O error.
#[derive(Parser, Debug)]
#[command(
    name = "aerotensor",
    version,
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
    // SAFETY: called first thing in main, before any thread exists; restoring
    // the default disposition of SIGPIPE has no memory-safety implications.
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
            aero_io::output::remove_in_flight();
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

fn main() -> ExitCode {
    reset_sigpipe();
    clean_up_on_signals();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                return ExitCode::SUCCESS; // --help, --version
            }
            // A usage error before the arguments could be read: `--json`
            // anywhere still gets the one documented error document.
            if std::env::args_os().skip(1).any(|a| a == "--json") {
                let first = e.to_string();
                let first = first.lines().next().unwrap_or("").trim();
                let first = first.strip_prefix("error: ").unwrap_or(first);
                let _ = out::print_json(&serde_json::json!({
                    "error": first,
                    "exit_code": 2,
                }));
            }
            return ExitCode::from(2);
        }
    };
    remote::init(cli.remote);
    let json = cli.command.wants_json();
    match cmd::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            out::error_line(&e);
            let code = exit_code(&e);
            if json {
                let _ = out::print_json(&serde_json::json!({
                    "error": out::chain(&e),
                    "exit_code": code,
                }));
            }
            ExitCode::from(code)
        }
    }
}
