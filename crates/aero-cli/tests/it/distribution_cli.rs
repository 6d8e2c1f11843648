//! What ships beside the binary: shell completions and manual pages made
//! from the clap definitions, and `--version` naming the format versions
//! the binary reads and writes (checked against what it writes).

use std::path::Path;
use std::process::Command;

use aero_test_support::{Cli, f32_model, json, write_safetensors};

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The commands `--help` lists (name of each line of its Commands section).
fn commands_in_help() -> Vec<String> {
    let help = cli().ok(&["--help"]);
    let section = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands section");
    let names: Vec<String> = section
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .filter(|n| n != "help")
        .collect();
    assert!(names.len() >= 18, "{names:?}");
    names
}

/// Bash's completions for the command line `words` (the last one being
/// completed), from the generated script.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let prog = format!(
        "source '{}'\nCOMP_WORDS=({line})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n_aerotensor aerotensor '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let o = Command::new("bash")
        .args(["--norc", "-c", &prog])
        .output()
        .expect("bash");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn bash_completion_knows_every_command_and_completes_them() {
    let script = cli().ok(&["completions", "bash"]);
    let commands = commands_in_help();
    // The root's list of words offers every command.
    let root_opts = script
        .lines()
        .find(|l| l.trim_start().starts_with("opts=\"") && l.contains(" inspect "))
        .expect("the root opts line");
    for c in &commands {
        assert!(
            root_opts.split(['"', ' ']).any(|w| w == c),
            "{c} missing from {root_opts}"
        );
    }
    // It is valid bash, and bash completes with it.
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("aerotensor.bash");
    std::fs::write(&path, &script).unwrap();
    let o = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        bash_complete(&path, &["aerotensor", "convert-s"]),
        ["convert-safetensors", "convert-safetensors-sharded"]
    );
    let flags = bash_complete(&path, &["aerotensor", "convert", "--li"]);
    assert_eq!(flags, ["--like"]);
    let words = bash_complete(&path, &["aerotensor", "completions", ""]);
    let shells: Vec<&String> = words.iter().filter(|w| !w.starts_with('-')).collect();
    assert_eq!(shells, ["bash", "elvish", "fish", "powershell", "zsh"]);
}

#[test]
fn every_shell_gets_a_script_naming_every_command() {
    let commands = commands_in_help();
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let script = cli().ok(&["completions", shell]);
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell}: {c} missing");
        }
    }
    let o = cli().run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid value 'tcsh'"));
}

/// The page rendered by groff (what `man -l` runs), with warnings on:
/// (text, warnings).
fn render(page: &Path) -> (String, String) {
    let o = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .arg(page)
        .output()
        .expect("groff (groff-base) renders man pages");
    assert!(o.status.success());
    // Strip overstriking (bold/underline) to plain text.
    let mut text = String::new();
    let raw = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        text.push(c);
    }
    (text, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn man_pages_render_one_per_command() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("man");
    let o = cli().run(&["man", "--dir", s(&dir)]);
    assert_eq!(o.status.code(), Some(0));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want: Vec<String> = commands_in_help()
        .iter()
        .map(|c| format!("aerotensor-{c}.1"))
        .collect();
    want.push("aerotensor.1".into());
    want.sort();
    assert_eq!(files, want);

    let (text, warnings) = render(&dir.join("aerotensor.1"));
    assert_eq!(warnings, "", "groff warnings");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SUBCOMMANDS",
        "EXAMPLES",
        "VERSION",
    ] {
        assert!(
            text.contains(&format!("\n{section}\n")),
            "{section}:\n{text}"
        );
    }
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("aerotensor - Convert, validate, inspect and read AERO"));
    // Examples and the version keep their lines.
    assert!(
        text.contains("\n         aerotensor validate --full dist/model.aero                # every hash; exit 1 if damaged\n"),
        "{text}"
    );
    let version = cli().ok(&["--version"]);
    let shown: Vec<&str> = text
        .split("\nVERSION\n")
        .nth(1)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    assert_eq!(shown, version.lines().collect::<Vec<_>>());
    for c in commands_in_help() {
        assert!(text.contains(&format!("aerotensor-{c}(1)")), "{c}");
    }
    // A command's page: its flags and help, non-ASCII text escaped so
    // plain groff renders it without complaint.
    let (text, warnings) = render(&dir.join("aerotensor-convert.1"));
    assert_eq!(warnings, "", "groff warnings");
    assert!(text.contains("--like"), "{text}");
    assert!(text.contains("README…"), "{text}");

    // `man` alone prints the main page; `man COMMAND` one command's.
    let main = cli().ok(&["man"]);
    assert_eq!(
        main,
        std::fs::read_to_string(dir.join("aerotensor.1")).unwrap()
    );
    let convert = cli().ok(&["man", "convert"]);
    assert_eq!(
        convert,
        std::fs::read_to_string(dir.join("aerotensor-convert.1")).unwrap()
    );
    let o = cli().run(&["man", "frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .starts_with("aerotensor: error: frobnicate: no such command")
    );
    // `man -l` itself, when installed.
    if Command::new("man").arg("--version").output().is_ok() {
        let o = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(dir.join("aerotensor-validate.1"))
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout).contains("--full"));
    }
}

#[test]
fn version_names_the_format_versions_it_writes() {
    let v = cli().ok(&["--version"]);
    let lines: Vec<&str> = v.lines().collect();
    assert_eq!(lines[0], concat!("aerotensor ", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        lines[1],
        "formats: reads and writes AERO 0.1; reads AEROSET 0.1 and 0.2, writes AEROSET 0.1 (0.2 with --base-url)"
    );
    assert!(lines[2].starts_with("remote: http(s)://"), "{v}");
    assert_eq!(
        cli().ok(&["validate", "--version"]).lines().nth(1),
        Some(lines[1])
    );
    // -V is the short form.
    assert_eq!(cli().ok(&["-V"]).trim(), lines[0]);

    // What it writes is what it says.
    let d = tempfile::tempdir().unwrap();
    let st = d.path().join("m.safetensors");
    write_safetensors(&st, &f32_model(3, 16), None);
    let aero = d.path().join("m.aero");
    cli().ok(&["convert", s(&st), s(&aero)]);
    let head = std::fs::read(&aero).unwrap();
    assert_eq!(
        (&head[..4], &head[4..8]),
        (&b"AERO"[..], &[0u8, 0, 1, 0][..])
    );
    let dir = d.path().join("ckpt");
    std::fs::create_dir(&dir).unwrap();
    write_safetensors(&dir.join("a.safetensors"), &f32_model(2, 16), None);
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"metadata": {}, "weight_map": {"layer.000.weight": "a.safetensors", "layer.001.weight": "a.safetensors"}}"#,
    )
    .unwrap();
    for (extra, version) in [(None, [0, 1]), (Some("https://cdn.example/m"), [0, 2])] {
        let out = d.path().join(format!("set-{}", version[1]));
        let mut args = vec!["convert-safetensors-sharded", s(&dir), s(&out)];
        if let Some(u) = extra {
            args.extend(["--base-url", u]);
        }
        cli().ok(&args);
        let o = cli().run(&["inspect-set", "--json", s(&out)]);
        assert_eq!(json(&o)["version"], serde_json::json!(version));
    }
}
