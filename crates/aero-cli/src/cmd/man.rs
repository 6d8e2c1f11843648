//! `aerotensor man`: manual pages (roff) generated from the clap
//! definitions (clap_mangen): `aerotensor.1` and one `aerotensor-COMMAND.1`
//! per command, as `cargo xtask dist` ships them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use clap_mangen::Man;

use super::Run;
use crate::out;
use crate::remote::Opener;

const AFTER_HELP: &str = "\
Examples:
  aerotensor man | man -l -                 # read the main page
  aerotensor man convert | man -l -         # one command's page
  aerotensor man --dir ~/.local/share/man/man1   # install every page";

/// Print the manual page, or write every page (one per command) into a directory.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct ManArgs {
    /// Print this command's page (`convert`, `validate`…) instead of the main page.
    #[arg(value_name = "COMMAND")]
    pub(crate) command: Option<String>,
    /// Write every page into DIR (created if missing) instead of printing one:
    /// aerotensor.1 and aerotensor-COMMAND.1 for each command.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub(crate) dir: Option<PathBuf>,
}

/// Every page, the main one first, then each visible command's (named
/// `aerotensor-COMMAND` by clap once the definition is built).
fn pages() -> Vec<clap::Command> {
    let mut root = crate::command().disable_help_subcommand(true);
    root.build();
    let mut pages = vec![root.clone()];
    pages.extend(root.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    pages
}

/// The page's file name (`aerotensor-convert.1`).
fn file_name(cmd: &clap::Command) -> String {
    Man::new(cmd.clone()).get_filename()
}

/// Text for a no-fill block: backslashes, minus signs and control
/// characters at the start of a line escaped.
fn roff_lines(text: &str) -> String {
    let mut o = String::new();
    for line in text.lines() {
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        if line.starts_with(['.', '\'']) {
            o.push_str("\\&");
        }
        o.push_str(&line);
        o.push('\n');
    }
    o
}

/// The page as roff. clap_mangen renders the standard sections; the
/// examples (the commands' `after_help`) and the version are written as
/// no-fill blocks here, so each example stays on its own line. Every
/// non-ASCII character (the help's `…` and `—`) is written as a groff
/// Unicode escape (`\[u2026]`), so the page renders the same through
/// `man`, plain `groff -man` and mandoc, whatever the locale.
fn render(cmd: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let page = Man::new(cmd.clone()).source(concat!("aerotensor ", env!("CARGO_PKG_VERSION")));
    let mut roff = Vec::new();
    page.render_title(&mut roff)?;
    page.render_name_section(&mut roff)?;
    page.render_synopsis_section(&mut roff)?;
    page.render_description_section(&mut roff)?;
    page.render_options_section(&mut roff)?;
    if cmd.has_subcommands() {
        page.render_subcommands_section(&mut roff)?;
    }
    if let Some(after) = cmd.get_after_help() {
        let after = after.to_string();
        let (heading, body) = match after.strip_prefix("Examples:\n") {
            Some(rest) => ("EXAMPLES", rest.to_string()),
            None => ("NOTES", after.clone()),
        };
        roff.extend_from_slice(
            format!(".SH {heading}\n.nf\n{}.fi\n", roff_lines(&body)).as_bytes(),
        );
    }
    if let Some(v) = cmd.get_long_version().or(cmd.get_version()) {
        let v = format!("{} {v}", cmd.get_display_name().unwrap_or(cmd.get_name()));
        roff.extend_from_slice(format!(".SH VERSION\n.nf\n{}.fi\n", roff_lines(&v)).as_bytes());
    }
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

impl Run for ManArgs {
        fn run(self, _: &Opener) -> anyhow::Result<ExitCode> {
            let a = self;
        let pages = pages();
        let Some(dir) = a.dir else {
            let page = match &a.command {
                None => &pages[0],
                Some(name) => {
                    let want = format!("aerotensor-{name}.1");
                    match pages.iter().find(|p| file_name(p) == want) {
                        Some(p) => p,
                        None => bail!("{name}: no such command (`aerotensor --help` lists them)"),
                    }
                }
            };
            let mut so = std::io::stdout().lock();
            so.write_all(&render(page)?)?;
            so.flush()?;
            return Ok(ExitCode::SUCCESS);
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        for page in &pages {
            let path = dir.join(file_name(page));
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
}
