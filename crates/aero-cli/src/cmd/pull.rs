//! `pull`: its flags and work are `transfer::PullArgs` and `transfer::pull`
//! (shared with `push`); this file is the command's help and registration.

use std::process::ExitCode;

use clap::Args;

use super::Run;
use super::transfer::PullArgs;
use crate::remote::Opener;

/// Download a .aero file or an AEROSET from a URL, verified, resumable, incremental.
///
/// Parallel range requests (--jobs N, default 32); every byte is checked
/// as it arrives (PHSH pages and chunk BLAKE3 from the file's TOC, each
/// file's SHA-256 and size from the set's manifest) and a damaged range
/// is fetched again, never kept. Files are assembled in .DEST.aero-pull
/// beside DEST and moved into place only when verified; a set's
/// manifest comes last and the set replaces DEST in one rename. Killed
/// at any moment, the next pull keeps every verified byte on disk. When
/// DEST holds an earlier revision of the set, only files whose SHA-256
/// changed are fetched. Progress with rate and ETA on a terminal. Exit 1
/// when the source stays damaged, 2 on other errors.
#[derive(Args, Debug)]
#[command(after_help = super::transfer::PULL_HELP)]
pub(crate) struct PullCommand {
    #[command(flatten)]
    args: PullArgs,
}

impl Run for PullCommand {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        super::transfer::pull(self.args, opener)
    }

    fn wants_json(&self) -> bool {
        self.args.json
    }
}
