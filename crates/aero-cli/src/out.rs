//! Presentation helpers: colour (TTY only, never with NO_COLOR), tables,
//! progress bars (stderr, TTY only), one-line errors.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether stdout gets colour.
pub(crate) fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Wraps `s` in an ANSI colour when colour is on.
pub(crate) fn paint(s: &str, code: &str) -> String {
    if color() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

pub(crate) fn green(s: &str) -> String {
    paint(s, "32")
}
pub(crate) fn red(s: &str) -> String {
    paint(s, "31")
}
pub(crate) fn yellow(s: &str) -> String {
    paint(s, "33")
}
pub(crate) fn bold(s: &str) -> String {
    paint(s, "1")
}

/// `s` with every control character (C0, DEL, C1) and every Unicode
/// bidirectional override shown as an escape (`\x1b`, `\n`, `\u{202e}`):
/// names and strings from files never reach a terminal raw.
pub(crate) fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    let bad =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x100 && bad(c) => o.push_str(&format!("\\x{:02x}", c as u32)),
            c if bad(c) => o.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => o.push(c),
        }
    }
    std::borrow::Cow::Owned(o)
}

/// An error and its causes as one line, each cause once, and no path twice
/// (`converting a.gguf: a.gguf: bad magic` reads `converting a.gguf: bad magic`).
pub(crate) fn chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if msg.contains(&c) {
            continue;
        }
        let last = msg.rsplit(' ').next().unwrap_or("");
        let c = match c.strip_prefix(last).and_then(|r| r.strip_prefix(": ")) {
            Some(rest) if !last.is_empty() => rest.to_string(),
            _ => c,
        };
        msg.push_str(": ");
        msg.push_str(&c);
    }
    if e.chain().any(|c| {
        matches!(
            c.downcast_ref::<aero_io::Error>(),
            Some(aero_io::Error::Unverifiable { .. })
        )
    }) {
        // The library says what is missing; the flag is the CLI's.
        msg.push_str("; `extract`, `fetch-tensor` and the exporters read it with `--no-verify`");
    }
    msg.replace('\n', " ")
}

/// Prints an error as one line on stderr: `aerotensor: error: <chain>`.
pub(crate) fn error_line(e: &anyhow::Error) {
    let msg = clean(&chain(e)).into_owned();
    let prefix = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        "\x1b[31merror\x1b[0m"
    } else {
        "error"
    };
    eprintln!("aerotensor: {prefix}: {msg}");
}

/// A byte-progress bar on stderr when it is a terminal and `total` is large
/// enough to be worth showing; hidden otherwise.
pub(crate) fn bytes_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() || total < (64 << 20) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Left-aligned text table with a header row.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| visible_len(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(visible_len(c));
            }
        }
    }
    let mut s = String::new();
    let line = |cells: Vec<String>, s: &mut String| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            s.push_str(&c);
            if i + 1 < n {
                s.push_str(&" ".repeat(w[i].saturating_sub(visible_len(&c)) + 2));
            }
        }
        s.push('\n');
    };
    line(header.iter().map(|h| bold(h)).collect(), &mut s);
    for r in rows {
        line(r.clone(), &mut s);
    }
    s
}

/// Terminal columns `s` takes: ANSI escape sequences skipped, wide
/// characters (CJK, most emoji) two columns, combining marks none
/// (`unicode-width`), so tables align whatever the names are.
pub(crate) fn visible_len(s: &str) -> usize {
    use unicode_width::UnicodeWidthChar;
    let mut n = 0;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            if c == 'm' {
                esc = false;
            }
        } else if c == '\x1b' {
            esc = true;
        } else {
            n += c.width().unwrap_or(0);
        }
    }
    n
}

/// Human-readable byte count.
pub(crate) fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Prints JSON to stdout (pretty when a terminal, compact otherwise).
pub(crate) fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if std::io::stdout().is_terminal() {
        serde_json::to_writer_pretty(&mut out, v)?;
    } else {
        serde_json::to_writer(&mut out, v)?;
    }
    writeln!(out)?;
    Ok(())
}
