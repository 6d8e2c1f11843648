//! `_cli_main`: the `aerotensor` command line inside the Python package,
//! for its console script and `python -m aerotensor` (`aerotensor/__main__.py`).

use std::ffi::OsString;

use pyo3::prelude::*;

/// Runs the `aerotensor` command line on `argv` (`argv[0]` is the program
/// name) and returns its exit code; output goes straight to the process's
/// stdout and stderr. The GIL is released while the command runs.
///
/// This is a process's main, as `aero_cli::main_with_args` documents: it
/// resets SIGPIPE to the default and installs SIGINT/SIGTERM/SIGHUP
/// handlers that remove a write's temporaries and exit (130 for Ctrl-C).
/// `import aerotensor` does none of that; only calling this does.
#[pyfunction(name = "_cli_main")]
pub(crate) fn cli_main(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| aero_cli::main_with_args(argv))
}
