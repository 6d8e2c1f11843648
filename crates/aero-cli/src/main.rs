//! `aerotensor`: convert, validate, inspect and read AERO model files.

mod cmd;
mod out;
mod remote;

use std::process::ExitCode;

use clap::Parser;

/// Convert, validate, inspect and read AERO model-weight files.
///
/// AERO stores tensors in one `.aero` file (or an AEROSET of several) with a
/// BLAKE3 hash per chunk and 16-byte-aligned weight shards that can be
/// memory-mapped without copying.
///
/// Exit codes: 0 success / valid, 1 invalid (validation failed), 2 usage or I/O error.
#[derive(Parser, Debug)]
#[command(
    name = "aerotensor",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
    #[command(flatten)]
    remote: remote::RemoteArgs,
}

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

fn main() -> ExitCode {
    reset_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    remote::init(cli.remote);
    match cmd::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            out::error_line(&e);
            ExitCode::from(2)
        }
    }
}
