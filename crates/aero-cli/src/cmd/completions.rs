//! `aerotensor completions SHELL`: a completion script generated from the
//! clap definitions (clap_complete), so it always knows every command and
//! flag of this build.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use clap_complete::Shell;

use super::Run;
use crate::remote::Opener;

const AFTER_HELP: &str = "\
Install (then open a new shell):
  aerotensor completions bash > ~/.local/share/bash-completion/completions/aerotensor
  aerotensor completions zsh > ~/.zfunc/_aerotensor          # with fpath+=(~/.zfunc) before compinit
  aerotensor completions fish > ~/.config/fish/completions/aerotensor.fish
  aerotensor completions powershell >> $PROFILE
  aerotensor completions elvish >> ~/.config/elvish/rc.elv";

/// Print a shell completion script (bash, zsh, fish, powershell, elvish).
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: Shell,
}

impl Run for CompletionsArgs {
        fn run(self, _: &Opener) -> anyhow::Result<ExitCode> {
            let a = self;
        let mut script = Vec::new();
        clap_complete::generate(a.shell, &mut crate::command(), "aerotensor", &mut script);
        let mut so = std::io::stdout().lock();
        so.write_all(&script)?;
        so.flush()?;
        Ok(ExitCode::SUCCESS)
    }
}
