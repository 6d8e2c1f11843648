//! `push`: its flags and work are `transfer::PushArgs` and `transfer::push`
//! (shared with `pull`); this file is the command's help and registration.

use std::process::ExitCode;

use clap::Args;

use super::Run;
use super::transfer::PushArgs;
use crate::remote::Opener;

/// Upload an AEROSET (or a .aero file) to object storage: parts first, manifest last.
///
/// s3://, gs:// and az:// through object_store (credentials from AWS_*,
/// GOOGLE_*, AZURE_*; needs the s3 build). Each file is checked against
/// the manifest before it is sent (a damaged set is never published)
/// and its SHA-256 is recorded in the object's metadata; a file already
/// there with the same size and SHA-256 is skipped. The manifest is
/// uploaded last, so a reader never sees a manifest before its parts.
/// --base-url writes the uploaded manifest with that base_url, for a CDN
/// in front of the bucket.
#[derive(Args, Debug)]
#[command(after_help = super::transfer::PUSH_HELP)]
pub(crate) struct PushCommand {
    #[command(flatten)]
    args: PushArgs,
}

impl Run for PushCommand {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        super::transfer::push(self.args, opener)
    }

    fn wants_json(&self) -> bool {
        self.args.json
    }
}
