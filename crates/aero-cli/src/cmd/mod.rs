//! The subcommands, one file each: its arguments (a clap `Args` struct
//! whose doc comment and `#[command(...)]` attributes are the command's
//! help) beside its handler (its [`Run`] impl). What several commands share
//! is in `common`, once. A new command is a new file and one line in the
//! `commands!` list below, which declares the module, the `Command`
//! variant, and its dispatch.

mod common;
// `pull` and `push` internals (kept as one file while that work is in
// flight); its items are `pub` and reachable only in this crate.
#[allow(unreachable_pub)]
mod transfer;

use std::process::ExitCode;

use crate::remote::Opener;

/// A command's handler, implemented by its arguments.
trait Run {
    /// Runs the command. `opener` opens the paths and URLs it names under
    /// the global flags (`--remote`, `--cache-dir`, `--no-cache`, `--jobs`).
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode>;

    /// Whether `--json` was given: then an error is also reported as one
    /// JSON document on stdout (`{"error": …, "exit_code": …}`), so a
    /// program reading stdout always gets one.
    fn wants_json(&self) -> bool {
        false
    }
}

/// Declares each command's module and its `Command` variant (in `--help`
/// order), and dispatches to its [`Run`] impl.
macro_rules! commands {
    ($($variant:ident($module:ident::$args:ident),)*) => {
        $(mod $module;)*

        /// Every subcommand, parsed.
        #[derive(clap::Subcommand, Debug)]
        pub(crate) enum Command {
            $($variant($module::$args),)*
        }

        impl Command {
            /// Whether `--json` was given ([`Run::wants_json`]).
            pub(crate) fn wants_json(&self) -> bool {
                match self {
                    $(Command::$variant(a) => a.wants_json(),)*
                }
            }

            /// Runs the command ([`Run::run`]).
            pub(crate) fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
                match self {
                    $(Command::$variant(a) => a.run(opener),)*
                }
            }
        }
    };
}

commands! {
    Inspect(inspect::InspectArgs),
    List(list::ListArgs),
    Validate(validate::ValidateArgs),
    Extract(extract::ExtractArgs),
    Diff(diff::DiffArgs),
    MakeTestVector(make_test_vector::MakeTestVectorArgs),
    Repack(repack::RepackArgs),
    ConvertSafetensors(convert_safetensors::ConvertSafetensorsArgs),
    ConvertGguf(convert_gguf::ConvertGgufArgs),
    Convert(convert::ConvertAutoArgs),
    ExportSafetensors(export_safetensors::ExportSafetensorsArgs),
    ExportGguf(export_gguf::ExportGgufArgs),
    ExportHf(export_hf::ExportHfArgs),
    InspectSet(inspect_set::InspectSetArgs),
    FetchTensor(fetch_tensor::FetchTensorArgs),
    ConvertSafetensorsSharded(convert_safetensors_sharded::ConvertShardedArgs),
    Pull(pull::PullCommand),
    Push(push::PushCommand),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
}
