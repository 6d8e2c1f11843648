//! `aerotensor`: convert, validate, inspect and read AERO model files.
//! The program is `aero_cli::main_with_args` (see the library's docs).

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(aero_cli::main_with_args(std::env::args_os()))
}
