//! The C ABI's tasks.
//!
//! - `cargo xtask capi-header [--check]` — generates
//!   `crates/aero-capi/include/aero_capi.h` (from `src/legacy.rs`) and
//!   `aerotensor.h` (from `src/ext.rs`) with cbindgen; `--check` fails when
//!   the committed headers differ from what the source generates.
//! - `cargo xtask capi` — the header check, `libaerotensor.so`/`.a` in
//!   release, `target/capi/aerotensor.pc`, the C and C++ examples and the C
//!   ABI test compiled with `-Wall -Wextra -Werror` (flags from pkg-config),
//!   run on the golden files with their output checked against
//!   `expected.json` (names, dtypes, shapes, lengths, BLAKE3 of the bytes),
//!   then again under valgrind memcheck and AddressSanitizer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::root;

const CRATE: &str = "crates/aero-capi";

const LICENSE_NOTE: &str = "/*
 * aerotensor C ABI — AERO model-weight containers (libaerotensor).
 * Link: pkg-config --cflags --libs aerotensor, or -I<include> -L<lib> -laerotensor.
 *
 * Ownership and lifetimes:
 *  - A handle (aero_load / aero_open, aero_load_state_dict) is owned by the
 *    caller and released exactly once with aero_close / aero_state_dict_free
 *    (NULL is a no-op). Every pointer obtained through a handle (tensor
 *    data, state-dict data) stays valid, read-only and unchanged until then.
 *  - Strings the library allocates for the caller (the report of
 *    aero_validate) are freed with aero_string_free.
 *  - aero_error_string(), aero_dtype_name(), aero_version() and the ggml and
 *    error-code names are owned by the library: never free them.
 *    aero_error_string() is valid until the next aero_* call on the same thread.
 *  - Input strings (paths, names) are only read during the call.
 *
 * Errors: functions returning int return 0 on success and an error code
 * (aero_error_code_t in aerotensor.h) on failure; functions returning a
 * handle or pointer return NULL. Every call first clears the calling
 * thread's last error, then sets it on failure: aero_error_string() (never
 * NULL, \"\" after success). Nothing is written to out-parameters on failure.
 *
 * Trust: every tensor byte handed out is first verified against the
 * strongest hash the file records for it (hash_b3, page hashes, or the
 * shard hash); damaged bytes are an error, never data. Only calls named
 * *_unverified skip that.
 *
 * Threads: handles may be used from several threads at once (the library
 * synchronises internally). Closing a handle while another thread uses it
 * is the caller's error.
 */";

fn config(guard: &str, includes: Vec<String>, source: &str) -> cbindgen::Config {
    let mut c = cbindgen::Config {
        language: cbindgen::Language::C,
        cpp_compat: true,
        include_guard: Some(guard.into()),
        no_includes: true,
        sys_includes: vec!["stddef.h".into(), "stdint.h".into()],
        includes,
        documentation: true,
        documentation_style: cbindgen::DocumentationStyle::C,
        style: cbindgen::Style::Both,
        usize_is_size_t: true,
        header: Some(LICENSE_NOTE.into()),
        autogen_warning: Some(format!(
            "/* Generated from {CRATE}/{source} by `cargo xtask capi-header` (cbindgen). Do not edit. */"
        )),
        ..cbindgen::Config::default()
    };
    c.enumeration.prefix_with_name = false;
    c
}

/// The two headers as the source generates them: (file name, contents).
fn generate() -> Result<Vec<(&'static str, Vec<u8>)>> {
    let dir = root().join(CRATE).join("src");
    let mut out = Vec::new();
    for (name, src, guard, includes) in [
        ("aero_capi.h", "legacy.rs", "AERO_CAPI_H", vec![]),
        (
            "aerotensor.h",
            "ext.rs",
            "AEROTENSOR_H",
            vec!["aero_capi.h".to_string()],
        ),
    ] {
        let mut builder = cbindgen::Builder::new()
            .with_config(config(guard, includes, &format!("src/{src}")))
            .with_src(dir.join(src));
        if src == "ext.rs" {
            // The error codes are defined beside the errors they name
            // (`error.rs`); `ext.rs` re-exports them.
            builder = builder.with_src(dir.join("error.rs"));
        }
        let bindings = builder
            .generate()
            .with_context(|| format!("cbindgen on {src}"))?;
        let mut buf = Vec::new();
        bindings.write(&mut buf);
        out.push((name, buf));
    }
    Ok(out)
}

/// `cargo xtask capi-header [--check]`.
pub(crate) fn header(rest: &[String]) -> Result<()> {
    let check = rest.iter().any(|a| a == "--check");
    let dir = root().join(CRATE).join("include");
    let mut stale = Vec::new();
    for (name, text) in generate()? {
        let path = dir.join(name);
        if check {
            let have = std::fs::read(&path).unwrap_or_default();
            if have != text {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        bail!(
            "stale C header(s): {} — the Rust source generates something else; run `cargo xtask capi-header` and commit",
            stale.join(", ")
        );
    }
    if check {
        eprintln!("capi-header: headers match the source");
    }
    Ok(())
}

/// Writes `aerotensor.pc` for the release library in this tree.
fn write_pc(dir: &Path, libdir: &Path) -> Result<PathBuf> {
    let include = root().join(CRATE).join("include");
    let pc = format!(
        "includedir={}\nlibdir={}\n\nName: aerotensor\nDescription: AERO model-weight containers: verified zero-copy loading (C ABI)\nVersion: {}\nCflags: -I${{includedir}}\nLibs: -L${{libdir}} -laerotensor\nLibs.private: -lpthread -ldl -lm -lgcc_s -lc\n",
        include.display(),
        libdir.display(),
        env!("CARGO_PKG_VERSION"),
    );
    std::fs::create_dir_all(dir)?;
    let path = dir.join("aerotensor.pc");
    std::fs::write(&path, pc)?;
    Ok(path)
}

fn output(cmd: &mut Command) -> Result<Output> {
    // `cargo run` puts target/*/deps on LD_LIBRARY_PATH, which outranks
    // the programs' rpath and could load a stale debug libaerotensor.so.
    cmd.env_remove("LD_LIBRARY_PATH");
    eprintln!("$ {cmd:?}");
    cmd.output().with_context(|| format!("running {cmd:?}"))
}

fn pkg_config(pc_dir: &Path, args: &[&str]) -> Result<Vec<String>> {
    let o = output(
        Command::new("pkg-config")
            .args(args)
            .arg("aerotensor")
            .env("PKG_CONFIG_PATH", pc_dir),
    )?;
    ensure!(
        o.status.success(),
        "pkg-config failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(String::from_utf8(o.stdout)?
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

fn ensure_tools() -> Result<()> {
    let missing: Vec<&str> = [
        ("gcc", "gcc"),
        ("g++", "g++"),
        ("valgrind", "valgrind"),
        ("pkg-config", "pkg-config"),
    ]
    .into_iter()
    .filter(|(bin, _)| !crate::has(bin, "--version"))
    .map(|(_, pkg)| pkg)
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("capi: installing {}", missing.join(" "));
    let apt = |args: &[&str]| -> Result<()> {
        crate::run(
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(&missing);
    apt(&args)
}

struct Built {
    dir: PathBuf,
}

impl Built {
    fn bin(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Builds the library, the .pc file and every C/C++ program. The library is
/// the dev build (dependencies that hash and inflate optimised, see the
/// workspace profile), which `cargo xtask wheel --dev` shares: the checks
/// here are about the ABI, memory and the answers, not speed (`cargo xtask
/// bench capi` measures a release build).
fn build() -> Result<Built> {
    crate::run(crate::cargo().args(["build", "-p", "aero-capi"]))?;
    let lib = crate::target_dir().join("debug");
    for f in ["libaerotensor.so", "libaerotensor.a"] {
        ensure!(
            lib.join(f).is_file(),
            "{} was not built",
            lib.join(f).display()
        );
    }
    let dir = crate::target_dir().join("capi");
    let pc = write_pc(&dir, &lib)?;
    eprintln!("wrote {}", pc.display());
    let cflags = pkg_config(&dir, &["--cflags"])?;
    let libs = pkg_config(&dir, &["--libs"])?;
    let rpath = format!("-Wl,-rpath,{}", lib.display());
    let warn = ["-Wall", "-Wextra", "-Werror", "-g"];
    let r = root();
    let cc = |out: &str, src: &str, extra: &[&str]| -> Result<()> {
        crate::run(
            Command::new("gcc")
                .args(["-std=c11", "-pedantic"])
                .args(warn)
                .args(&cflags)
                .args(extra)
                .arg(r.join(src))
                .arg("-o")
                .arg(dir.join(out))
                .args(&libs)
                .arg(&rpath)
                .arg("-pthread"),
        )
    };
    let asan = ["-fsanitize=address", "-fno-omit-frame-pointer"];
    cc("load", "examples/c/load.c", &[])?;
    cc("load_asan", "examples/c/load.c", &asan)?;
    cc("abi_test", "crates/aero-capi/tests/c/abi_test.c", &[])?;
    cc(
        "abi_test_asan",
        "crates/aero-capi/tests/c/abi_test.c",
        &asan,
    )?;
    // The legacy program sees only aero_capi.h (its include path holds
    // nothing else), and is linked once against each library.
    let only_legacy = dir.join("legacy-include");
    std::fs::create_dir_all(&only_legacy)?;
    std::fs::copy(
        r.join(CRATE).join("include/aero_capi.h"),
        only_legacy.join("aero_capi.h"),
    )?;
    let legacy = |out: &str, link: &[String]| -> Result<()> {
        crate::run(
            Command::new("gcc")
                .args(["-std=c99", "-pedantic"])
                .args(warn)
                .arg(format!("-I{}", only_legacy.display()))
                .arg(r.join("examples/c/legacy.c"))
                .arg("-o")
                .arg(dir.join(out))
                .args(link),
        )
    };
    legacy(
        "legacy",
        &[libs.clone(), vec![rpath.clone(), "-lm".into()]].concat(),
    )?;
    let static_libs = pkg_config(&dir, &["--libs", "--static"])?;
    let static_link: Vec<String> = static_libs
        .iter()
        .map(|a| {
            if a == "-laerotensor" {
                lib.join("libaerotensor.a").display().to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    legacy("legacy_static", &static_link)?;
    crate::run(
        Command::new("g++")
            .args(["-std=c++17", "-pedantic"])
            .args(warn)
            .args(&cflags)
            .arg(r.join("examples/cpp/load.cpp"))
            .arg("-o")
            .arg(dir.join("load_cpp"))
            .args(&libs)
            .arg(&rpath),
    )?;
    Ok(Built { dir })
}

/// `libaerotensor.so` in release and `examples/c/open_all.c` at -O2
/// against it (for `cargo xtask bench capi`).
pub(crate) fn build_open_all() -> Result<PathBuf> {
    crate::run(crate::cargo().args(["build", "--release", "-p", "aero-capi"]))?;
    let lib = crate::target_dir().join("release");
    let dir = crate::target_dir().join("capi");
    std::fs::create_dir_all(&dir)?;
    let out = dir.join("open_all");
    crate::run(
        Command::new("gcc")
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"])
            .arg(format!(
                "-I{}",
                root().join(CRATE).join("include").display()
            ))
            .arg(root().join("examples/c/open_all.c"))
            .arg("-o")
            .arg(&out)
            .arg(format!("-L{}", lib.display()))
            .arg("-laerotensor")
            // DT_RPATH: wins over a LD_LIBRARY_PATH that `cargo run` sets.
            .arg("-Wl,--disable-new-dtags")
            .arg(format!("-Wl,-rpath,{}", lib.display())),
    )?;
    Ok(out)
}

/// A program's output lines for one input, as the checker reads them.
#[derive(Debug, Default)]
struct Listing {
    /// name → (dtype code, shape, data_len, bytes)
    tensors: BTreeMap<String, (u64, Vec<u64>, u64, Vec<u8>)>,
    /// name → error code
    errors: BTreeMap<String, i64>,
    count: Option<u64>,
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    ensure!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("hex"))
        .collect()
}

/// Parses the `tensor` / `error` / `count` lines the examples write.
fn parse_listing(text: &str) -> Result<Listing> {
    let mut l = Listing::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.first().copied() {
            Some("count") => l.count = Some(f.get(1).context("count")?.parse()?),
            Some("tensor") => {
                ensure!(f.len() == 8, "bad tensor line: {line}");
                let shape = if f[5].is_empty() {
                    Vec::new()
                } else {
                    f[5].split(',')
                        .map(|d| d.parse::<u64>().context("dim"))
                        .collect::<Result<_>>()?
                };
                let bytes = unhex(f[7])?;
                let dup = l.tensors.insert(
                    f[1].to_string(),
                    (f[2].parse()?, shape, f[6].parse()?, bytes),
                );
                ensure!(dup.is_none(), "tensor {} listed twice", f[1]);
            }
            Some("error") => {
                ensure!(f.len() >= 3, "bad error line: {line}");
                l.errors.insert(f[1].to_string(), f[2].parse()?);
            }
            _ => {}
        }
    }
    Ok(l)
}

/// Checks a listing against `expected.json`: every tensor of the set with
/// its dtype, shape, length and the BLAKE3 of its bytes; `damaged` tensors
/// must instead have failed with AERO_E_CORRUPT (2).
fn check_listing(
    l: &Listing,
    set: &serde_json::Map<String, Value>,
    damaged: &[&str],
) -> Result<()> {
    ensure!(
        l.count == Some(set.len() as u64),
        "count {:?}, expected {}",
        l.count,
        set.len()
    );
    for (name, want) in set {
        if damaged.contains(&name.as_str()) {
            ensure!(
                l.errors.get(name) == Some(&2),
                "damaged tensor {name}: expected error 2 (AERO_E_CORRUPT), got {:?} / data {}",
                l.errors.get(name),
                l.tensors.contains_key(name)
            );
            continue;
        }
        let (dtype, shape, len, bytes) = l
            .tensors
            .get(name)
            .with_context(|| format!("tensor {name} missing (error {:?})", l.errors.get(name)))?;
        ensure!(
            Some(*dtype) == want["dtype"].as_u64(),
            "{name}: dtype {dtype}"
        );
        let wshape: Vec<u64> = want["shape"]
            .as_array()
            .context("shape")?
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        ensure!(
            *shape == wshape,
            "{name}: shape {shape:?}, expected {wshape:?}"
        );
        ensure!(
            Some(*len) == want["data_len"].as_u64(),
            "{name}: data_len {len}"
        );
        ensure!(
            bytes.len() as u64 == *len,
            "{name}: {} bytes listed",
            bytes.len()
        );
        let b3 = blake3::hash(bytes).to_hex().to_string();
        ensure!(
            Some(b3.as_str()) == want["blake3"].as_str(),
            "{name}: BLAKE3 {b3}, expected {}",
            want["blake3"]
        );
    }
    for name in l.tensors.keys().chain(l.errors.keys()) {
        ensure!(set.contains_key(name), "unexpected tensor {name}");
    }
    Ok(())
}

fn golden() -> PathBuf {
    root().join("../shared/golden")
}

/// (input, tensor set, damaged tensors) for the examples.
fn cases(expected: &Value) -> Result<Vec<(PathBuf, String, Vec<String>)>> {
    let mut v = Vec::new();
    for (file, meta) in expected["files"].as_object().context("files")? {
        let Some(set) = meta["tensors"].as_str() else {
            continue;
        };
        let path = match file.strip_suffix("/model.aeroset.json") {
            Some(dir) => golden().join(dir),
            None => golden().join(file),
        };
        let damaged = meta["damaged_tensors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect();
        v.push((path, set.to_string(), damaged));
    }
    ensure!(
        v.len() >= 8,
        "expected.json lists {} files with tensors",
        v.len()
    );
    Ok(v)
}

/// Runs `prog IN OUT` on every golden case and checks OUT.
fn run_examples(b: &Built, prog: &str, wrap: &[&str]) -> Result<usize> {
    let expected: Value = serde_json::from_slice(&std::fs::read(golden().join("expected.json"))?)?;
    let out_dir = b.dir.join("out");
    std::fs::create_dir_all(&out_dir)?;
    let mut n = 0;
    for (input, set_name, damaged) in cases(&expected)? {
        let set = expected["tensor_sets"][&set_name]
            .as_object()
            .with_context(|| format!("tensor set {set_name}"))?;
        let out = out_dir.join(format!(
            "{prog}-{}.txt",
            input.file_name().unwrap_or_default().to_string_lossy()
        ));
        let mut cmd = match wrap.split_first() {
            Some((w, args)) => {
                let mut c = Command::new(w);
                c.args(args).arg(b.bin(prog));
                c
            }
            None => Command::new(b.bin(prog)),
        };
        let o = output(cmd.arg(&input).arg(&out))?;
        let stderr = String::from_utf8_lossy(&o.stderr);
        // legacy.c exits 1 on a file with damaged tensors (having listed
        // them as errors); its own checks must still have passed.
        let fails_on_damage = prog.starts_with("legacy") && !damaged.is_empty();
        ensure!(
            o.status.success() != fails_on_damage && !stderr.contains("check(s) failed"),
            "{prog} {} exited {} ({}): {stderr}",
            input.display(),
            o.status,
            if fails_on_damage {
                "expected 1: damaged tensors"
            } else {
                "expected 0"
            }
        );
        let l = parse_listing(&std::fs::read_to_string(&out)?)?;
        check_listing(
            &l,
            set,
            &damaged.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .with_context(|| format!("{prog} on {}", input.display()))?;
        if !wrap.is_empty() {
            let label = format!(
                "{prog} {}",
                input.file_name().unwrap_or_default().to_string_lossy()
            );
            check_memcheck(&label, &stderr).with_context(|| label.clone())?;
        }
        n += 1;
    }
    eprintln!("capi: {prog}: output of {n} golden files matches expected.json");
    Ok(n)
}

/// `prog IN OUT` on GGUF-origin models (examples/c/legacy.c must exit 0 on
/// them: packed tensors are checked through the state dict): the
/// reference converter's `reference-gguf/reference-converted.aero` (shapes
/// stored in GGUF order, padded tensors) and this project's conversion of
/// its source, `source.gguf` (`aerotensor convert-gguf`). Each tensor listed
/// must be the GGUF's as gguf-py sees it (`reference-gguf/expected.json`):
/// its row-major shape, its exact length, the SHA-256 of its bytes; every
/// tensor gets a state-dict line, packed ones a `packed` line. A copy of the
/// reference file with one weight byte flipped must exit 1 with the damage
/// listed as AERO_E_CORRUPT.
fn run_gguf_origin(b: &Built, prog: &str, wrap: &[&str]) -> Result<()> {
    let dir = golden().join("reference-gguf");
    let expected: Value = serde_json::from_slice(&std::fs::read(dir.join("expected.json"))?)?;
    let expected = expected
        .as_object()
        .context("reference-gguf/expected.json")?;
    let work = b.dir.join(format!(
        "gguf-origin-{}",
        if wrap.is_empty() { "plain" } else { "valgrind" }
    ));
    std::fs::create_dir_all(&work)?;
    crate::run(crate::cargo().args(["build", "--quiet", "--package", "aero-cli"]))?;
    let ours = work.join("converted.aero");
    crate::run(
        Command::new(crate::target_dir().join("debug/aerotensor"))
            .arg("convert-gguf")
            .arg(dir.join("source.gguf"))
            .arg(&ours),
    )?;
    let reference = dir.join("reference-converted.aero");
    let mut flipped = std::fs::read(&reference)?;
    let at = weight_offset(&flipped)? as usize;
    flipped[at] ^= 0x01;
    let damaged = work.join("reference-flipped.aero");
    std::fs::write(&damaged, &flipped)?;
    let run = |input: &Path, out: &Path| -> Result<(Output, String)> {
        let mut cmd = match wrap.split_first() {
            Some((w, args)) => {
                let mut c = Command::new(w);
                c.args(args).arg(b.bin(prog));
                c
            }
            None => Command::new(b.bin(prog)),
        };
        let o = output(cmd.arg(input).arg(out))?;
        let text = std::fs::read_to_string(out)?;
        Ok((o, text))
    };
    for input in [&reference, &ours] {
        let label = input.file_name().unwrap_or_default().to_string_lossy();
        let out = work.join(format!("{prog}-{label}.txt"));
        let (o, text) = run(input, &out)?;
        let stderr = String::from_utf8_lossy(&o.stderr);
        ensure!(
            o.status.success(),
            "{prog} {} failed ({}): {stderr}",
            input.display(),
            o.status
        );
        let l = parse_listing(&text)?;
        ensure!(
            l.count == Some(expected.len() as u64) && l.errors.is_empty(),
            "{prog} {label}: count {:?}, errors {:?}",
            l.count,
            l.errors
        );
        for (name, e) in expected {
            let (dtype, shape, len, bytes) = l
                .tensors
                .get(name)
                .with_context(|| format!("{prog} {label}: {name} missing"))?;
            let ggml = e["ggml_type"].as_str().context("ggml_type")?;
            let want_dtype = aero_dtype_of_ggml(ggml);
            let want_shape: Vec<u64> = e["row_major_shape"]
                .as_array()
                .context("row_major_shape")?
                .iter()
                .filter_map(Value::as_u64)
                .collect();
            let sha = sha256_of(&work, bytes)?;
            ensure!(
                *dtype == want_dtype
                    && *shape == want_shape
                    && Some(*len) == e["n_bytes"].as_u64()
                    && Some(sha.as_str()) == e["bytes_sha256"].as_str(),
                "{prog} {label}: {name}: dtype {dtype}, shape {shape:?}, {len} bytes, SHA-256 \
                 {sha}; gguf-py: {ggml} ({want_dtype}), {want_shape:?}, {} bytes, {}",
                e["n_bytes"],
                e["bytes_sha256"]
            );
            ensure!(
                text.contains(&format!("sd\t{name}\t")),
                "{prog} {label}: no state-dict line for {name}"
            );
            ensure!(
                want_dtype != 32768 || text.contains(&format!("packed\t{name}\t")),
                "{prog} {label}: no packed line for {name}"
            );
        }
        if !wrap.is_empty() {
            check_memcheck(&format!("{prog} {label}"), &stderr)?;
        }
    }
    let (o, text) = run(&damaged, &work.join(format!("{prog}-flipped.txt")))?;
    let stderr = String::from_utf8_lossy(&o.stderr);
    let l = parse_listing(&text)?;
    ensure!(
        o.status.code() == Some(1)
            && l.errors.values().any(|&c| c == 2)
            && stderr.contains("could not be read")
            && !stderr.contains("check(s) failed"),
        "{prog} on a damaged GGUF-origin file: exit {}, errors {:?}: {stderr}",
        o.status,
        l.errors
    );
    eprintln!(
        "capi: {prog}: GGUF-origin models (the reference's, GGUF order, and ours) read as \
         gguf-py reads source.gguf; a damaged one exits 1"
    );
    Ok(())
}

/// The AERO dtype code a GGUF tensor of ggml type `name` converts to: the
/// native types (spec §15), else 32768 (packed).
fn aero_dtype_of_ggml(name: &str) -> u64 {
    match name {
        "F16" => 0,
        "F32" => 1,
        "BF16" => 2,
        "F64" => 3,
        "I8" => 4,
        "I16" => 6,
        "I32" => 8,
        "I64" => 10,
        _ => 32768,
    }
}

/// SHA-256 of `bytes` in hex (coreutils' `sha256sum`, through a file in
/// `dir`), as expected.json records gguf-py's.
fn sha256_of(dir: &Path, bytes: &[u8]) -> Result<String> {
    let f = dir.join("sha256.bin");
    std::fs::write(&f, bytes)?;
    let o = output(Command::new("sha256sum").arg(&f))?;
    ensure!(o.status.success(), "sha256sum failed");
    Ok(String::from_utf8(o.stdout)?
        .split_whitespace()
        .next()
        .context("sha256sum output")?
        .to_owned())
}

/// valgrind's verdict: no errors, nothing definitely lost.
fn check_memcheck(label: &str, stderr: &str) -> Result<()> {
    let summary = stderr
        .lines()
        .rev()
        .find(|l| l.contains("ERROR SUMMARY:"))
        .context("no valgrind ERROR SUMMARY")?;
    ensure!(
        summary.contains("ERROR SUMMARY: 0 errors"),
        "valgrind: {summary}"
    );
    let lost = stderr.lines().find(|l| l.contains("definitely lost:"));
    if let Some(l) = lost {
        ensure!(l.contains("definitely lost: 0 bytes"), "valgrind: {l}");
    }
    let strip = |l: &str| l.split_once("== ").map_or(l, |(_, r)| r).trim().to_string();
    eprintln!(
        "  valgrind {label}: {}; {}",
        strip(summary),
        lost.map_or("no leaks possible".into(), strip)
    );
    Ok(())
}

const VALGRIND: &[&str] = &[
    "valgrind",
    "--error-exitcode=99",
    "--leak-check=full",
    "--show-leak-kinds=definite",
    "--errors-for-leak-kinds=definite",
];

/// The offset of the middle byte of the first non-empty weight shard
/// (header: toc_offset at 12; TOC entries of 80 bytes after 16).
fn weight_offset(b: &[u8]) -> Result<u64> {
    let u64_at = |o: usize| -> Result<u64> {
        Ok(u64::from_le_bytes(
            b.get(o..o + 8).context("short file")?.try_into()?,
        ))
    };
    let toc = u64_at(12)? as usize;
    let count = u32::from_le_bytes(b.get(toc..toc + 4).context("short TOC")?.try_into()?);
    for i in 0..count as usize {
        let e = toc + 16 + 80 * i;
        if b.get(e..e + 4) == Some(b"WTSH") && u64_at(e + 16)? > 0 {
            return Ok(u64_at(e + 8)? + u64_at(e + 16)? / 2);
        }
    }
    bail!("no weight shard")
}

/// Deterministic bytes that are not an AERO file.
fn garbage(n: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Damaged inputs for the ABI test: a flipped weight byte (shard hash only,
/// and hash_b3), a truncated file, garbage, a local manifest naming a
/// remote part.
fn abi_fixtures(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let good = golden().join("mixed-single-shard.aero");
    let bytes = std::fs::read(&good)?;
    let f = weight_offset(&bytes)?;
    let mut flipped = bytes.clone();
    flipped[f as usize] ^= 0x01;
    let damaged = dir.join("flipped.aero");
    std::fs::write(&damaged, &flipped)?;
    let truncated = dir.join("truncated.aero");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2])?;
    let junk = dir.join("garbage.aero");
    std::fs::write(&junk, garbage(4096))?;
    let set = dir.join("remote-set");
    std::fs::create_dir_all(&set)?;
    let src = golden().join("aeroset-local");
    for e in std::fs::read_dir(&src)? {
        let e = e?;
        std::fs::copy(e.path(), set.join(e.file_name()))?;
    }
    let mpath = set.join("model.aeroset.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath)?)?;
    m["parts"][0]["path"] = Value::from("http://127.0.0.1:9/part-000.aero");
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m)?)?;
    Ok(vec![
        good,
        damaged,
        truncated,
        junk,
        mpath,
        golden().join("tensor-hash-defect.aero"),
        golden().join("aeroset-local"),
    ])
}

fn run_abi_test(b: &Built, prog: &str, wrap: &[&str], args: &[PathBuf]) -> Result<()> {
    let mut cmd = match wrap.split_first() {
        Some((w, a)) => {
            let mut c = Command::new(w);
            c.args(a).arg(b.bin(prog));
            c
        }
        None => Command::new(b.bin(prog)),
    };
    let o = output(cmd.args(args))?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.contains("passed"))
        .unwrap_or("");
    eprintln!("{prog}: {last}");
    ensure!(
        o.status.success(),
        "{prog} failed ({}):\n{stdout}\n{stderr}",
        o.status
    );
    if !wrap.is_empty() {
        check_memcheck(prog, &stderr)?;
    }
    Ok(())
}

/// `cargo xtask capi`.
pub(crate) fn capi() -> Result<()> {
    header(&["--check".into()])?;
    ensure_tools()?;
    let b = build()?;
    // Plain runs, checked against expected.json.
    run_examples(&b, "load", &[])?;
    run_examples(&b, "load_cpp", &[])?;
    run_examples(&b, "legacy", &[])?;
    run_examples(&b, "legacy_static", &[])?;
    run_gguf_origin(&b, "legacy", &[])?;
    let fixtures = abi_fixtures(&b.dir.join("abi"))?;
    run_abi_test(&b, "abi_test", &[], &fixtures)?;
    // AddressSanitizer on the C side (the Rust library is built normally).
    let asan_env = "detect_leaks=1:abort_on_error=0:halt_on_error=1";
    let run_asan = |prog: &str| -> Result<()> {
        let o = output(
            Command::new(b.bin(prog))
                .args(&fixtures)
                .env("ASAN_OPTIONS", asan_env),
        )?;
        ensure!(
            o.status.success(),
            "{prog} under ASan failed ({}):\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        eprintln!("capi: {prog}: clean under AddressSanitizer");
        Ok(())
    };
    run_asan("abi_test_asan")?;
    let expected: Value = serde_json::from_slice(&std::fs::read(golden().join("expected.json"))?)?;
    for (input, _, _) in cases(&expected)? {
        let out = b.dir.join("out/asan.txt");
        let o = output(
            Command::new(b.bin("load_asan"))
                .arg(&input)
                .arg(&out)
                .env("ASAN_OPTIONS", asan_env),
        )?;
        ensure!(
            o.status.success(),
            "load_asan {} failed: {}",
            input.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    eprintln!("capi: load_asan: clean under AddressSanitizer on every golden file");
    // valgrind memcheck: zero errors, nothing definitely lost. Each run is
    // one process on one core: two at a time.
    let b = &b;
    let fixtures = &fixtures;
    let runs: [&(dyn Fn() -> Result<()> + Sync); 5] = [
        &|| run_examples(b, "load", VALGRIND).map(drop),
        &|| run_examples(b, "load_cpp", VALGRIND).map(drop),
        &|| run_examples(b, "legacy", VALGRIND).map(drop),
        &|| run_gguf_origin(b, "legacy", VALGRIND),
        &|| run_abi_test(b, "abi_test", VALGRIND, fixtures),
    ];
    for pair in runs.chunks(2) {
        std::thread::scope(|s| {
            let hs: Vec<_> = pair.iter().map(|f| s.spawn(*f)).collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| bail!("valgrind runner panicked"))
                })
                .collect::<Result<Vec<()>>>()
        })?;
    }
    eprintln!("capi: all C ABI checks passed");
    Ok(())
}
