//! `aerotensor man`: manual pages (roff) generated from the clap
//! definitions (clap_mangen): `aerotensor.1` and one `aerotensor-COMMAND.1`
//! per command, as `cargo xtask dist` ships them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use clap_mangen::Man;

use crate::out;

pub const AFTER_HELP: &str = "\
Examples:
  aerotensor man | man -l -                 # read the main page
  aerotensor man convert | man -l -         # one command's page
  aerotensor man --dir ~/.local/share/man/man1   # install every page";

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Print this command's page (`convert`, `validate`…) instead of the main page.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
    /// Write every page into DIR (created if missing) instead of printing one:
    /// aerotensor.1 and aerotensor-COMMAND.1 for each command.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub dir: Option<PathBuf>,
}

/// Every page: the main one first, then each visible command's (named
/// `aerotensor-COMMAND` by clap once the definition is built).
fn pages() -> Vec<Man> {
    let mut root = crate::command().disable_help_subcommand(true);
    root.build();
    let mut pages = vec![Man::new(root.clone())];
    pages.extend(
        root.get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| Man::new(c.clone())),
    );
    pages
}

/// The page as roff, every non-ASCII character (the help's `…` and `—`)
/// written as a groff Unicode escape (`\[u2026]`), so the page renders the
/// same through `man`, plain `groff -man` and mandoc, whatever the locale.
fn render(page: &Man) -> anyhow::Result<Vec<u8>> {
    let mut roff = Vec::new();
    page.render(&mut roff)?;
    let text = String::from_utf8(roff).context("the rendered page is not UTF-8")?;
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            ascii.push_str(&format!("\\[u{:04X}]", c as u32));
        }
    }
    Ok(ascii.into_bytes())
}

pub fn run(a: ManArgs) -> anyhow::Result<ExitCode> {
    let pages = pages();
    let Some(dir) = a.dir else {
        let page = match &a.command {
            None => &pages[0],
            Some(name) => match pages
                .iter()
                .find(|p| p.get_filename() == format!("aerotensor-{name}.1"))
            {
                Some(p) => p,
                None => bail!("{name}: no such command (`aerotensor --help` lists them)"),
            },
        };
        let mut so = std::io::stdout().lock();
        so.write_all(&render(page)?)?;
        so.flush()?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    for page in &pages {
        let path = dir.join(page.get_filename());
        let mut o = aero_io::output::Output::create(&path)?;
        o.file()
            .write_all(&render(page)?)
            .with_context(|| format!("{}", path.display()))?;
        o.commit(true)?;
    }
    eprintln!(
        "wrote {} manual pages into {}",
        pages.len(),
        out::clean(&dir.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}
