//! Bit-exactness against gguf-py: `gen_quant_fixtures.py` packs blocks for
//! every supported type (gguf-py's own quantization where it has one, random,
//! extreme and table-walking blocks otherwise) and records
//! `gguf.quants.dequantize`'s f32 output plus numpy's f16 and a
//! round-to-nearest-even bf16 of it. Every entry point must reproduce them.
//!
//! Needs `python3` with `pip install -r tests/requirements.txt` (gguf, numpy);
//! without them these tests fail, they are never skipped. `$PYTHON` picks
//! another interpreter.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use aero_quant::{
    GgmlType, OutputType, dequantize, dequantize_bf16, dequantize_f16, dequantize_reader,
    par_dequantize, par_dequantize_bf16, par_dequantize_f16, supported_types,
};

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a Python script and panics, loudly, when it cannot run or fails.
fn run_python(args: &[&std::ffi::OsStr]) {
    let python = python();
    let out = Command::new(&python)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `{python}` ({e}). These tests need python3 with gguf and numpy: \
             pip install -r tests/requirements.txt"
            )
        });
    assert!(
        out.status.success(),
        "`{python} {:?}` failed ({}). These tests need python3 with gguf and numpy: \
         pip install -r tests/requirements.txt\n--- stderr ---\n{}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn u16s(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Compares bit patterns; two NaNs are equal whatever their payloads.
fn compare<T: Copy + PartialEq + std::fmt::Debug>(
    what: &str,
    got: &[T],
    want: &[T],
    is_nan: impl Fn(T) -> bool,
    block_elems: usize,
    failures: &mut Vec<String>,
) {
    if got.len() != want.len() {
        failures.push(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
        return;
    }
    let bad: Vec<usize> = (0..got.len())
        .filter(|&i| got[i] != want[i] && !(is_nan(got[i]) && is_nan(want[i])))
        .collect();
    if let Some(&i) = bad.first() {
        failures.push(format!(
            "{what}: {} of {} values differ; first at {i} (block {}, element {}): got {:?}, expected {:?}",
            bad.len(),
            got.len(),
            i / block_elems,
            i % block_elems,
            got[i],
            want[i]
        ));
    }
}

fn f32_bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check_type(ty: GgmlType, n: u64, dir: &Path, failures: &mut Vec<String>) {
    let name = ty.name;
    let packed = read(dir, &format!("{name}.packed"));
    let want32 = f32_bits(&f32s(&read(dir, &format!("{name}.f32"))));
    let want16 = u16s(&read(dir, &format!("{name}.f16")));
    let wantbf = u16s(&read(dir, &format!("{name}.bf16")));
    let len = n as usize;
    let be = ty.block_elems as usize;
    let nan32 = |b: u32| b & 0x7fff_ffff > 0x7f80_0000;
    let nan16 = |h: u16| h & 0x7fff > 0x7c00;
    let nanbf = |h: u16| h & 0x7fff > 0x7f80;

    let mut out = vec![0f32; len];
    match dequantize(ty, &packed, n, &mut out) {
        Ok(()) => compare(
            &format!("{name} f32"),
            &f32_bits(&out),
            &want32,
            nan32,
            be,
            failures,
        ),
        Err(e) => failures.push(format!("{name} f32: {e}")),
    }
    let mut out = vec![0f32; len];
    match par_dequantize(ty, &packed, n, &mut out) {
        Ok(()) => compare(
            &format!("{name} par f32"),
            &f32_bits(&out),
            &want32,
            nan32,
            be,
            failures,
        ),
        Err(e) => failures.push(format!("{name} par f32: {e}")),
    }
    let mut out = vec![0u16; len];
    match dequantize_f16(ty, &packed, n, &mut out) {
        Ok(()) => compare(&format!("{name} f16"), &out, &want16, nan16, be, failures),
        Err(e) => failures.push(format!("{name} f16: {e}")),
    }
    let mut out = vec![0u16; len];
    match par_dequantize_f16(ty, &packed, n, &mut out) {
        Ok(()) => compare(
            &format!("{name} par f16"),
            &out,
            &want16,
            nan16,
            be,
            failures,
        ),
        Err(e) => failures.push(format!("{name} par f16: {e}")),
    }
    let mut out = vec![0u16; len];
    match dequantize_bf16(ty, &packed, n, &mut out) {
        Ok(()) => compare(&format!("{name} bf16"), &out, &wantbf, nanbf, be, failures),
        Err(e) => failures.push(format!("{name} bf16: {e}")),
    }
    let mut out = vec![0u16; len];
    match par_dequantize_bf16(ty, &packed, n, &mut out) {
        Ok(()) => compare(
            &format!("{name} par bf16"),
            &out,
            &wantbf,
            nanbf,
            be,
            failures,
        ),
        Err(e) => failures.push(format!("{name} par bf16: {e}")),
    }
    for (output, what) in [
        (OutputType::F32, "stream f32"),
        (OutputType::F16, "stream f16"),
        (OutputType::BF16, "stream bf16"),
    ] {
        let mut bytes = Vec::new();
        match dequantize_reader(ty, n, &packed[..], output, &mut bytes) {
            Ok(written) if written != bytes.len() as u64 => failures.push(format!(
                "{name} {what}: reported {written} bytes, wrote {}",
                bytes.len()
            )),
            Ok(_) if output == OutputType::F32 => compare(
                &format!("{name} {what}"),
                &f32_bits(&f32s(&bytes)),
                &want32,
                nan32,
                be,
                failures,
            ),
            Ok(_) if output == OutputType::F16 => compare(
                &format!("{name} {what}"),
                &u16s(&bytes),
                &want16,
                nan16,
                be,
                failures,
            ),
            Ok(_) => compare(
                &format!("{name} {what}"),
                &u16s(&bytes),
                &wantbf,
                nanbf,
                be,
                failures,
            ),
            Err(e) => failures.push(format!("{name} {what}: {e}")),
        }
    }
}

#[test]
fn every_type_matches_gguf_py_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let script = crate_dir().join("tests/gen_quant_fixtures.py");
    run_python(&[script.as_os_str(), dir.path().as_os_str()]);

    let manifest = std::fs::read_to_string(dir.path().join("manifest.tsv")).unwrap();
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for line in manifest.lines() {
        if let Some(versions) = line.strip_prefix("# ") {
            eprintln!("fixtures from {versions}");
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, id, n, source] = fields[..] else {
            panic!("bad manifest line {line:?}");
        };
        let ty = GgmlType::from_name(name).unwrap_or_else(|| panic!("unknown type {name}"));
        assert_eq!(ty.id.to_string(), id, "{name}");
        let n: u64 = n.parse().unwrap();
        let before = failures.len();
        check_type(ty, n, dir.path(), &mut failures);
        let verdict = if failures.len() == before {
            "ok"
        } else {
            "MISMATCH"
        };
        eprintln!("{name:8} {n:7} values vs {source}: {verdict}");
        seen.insert(name.to_string());
    }
    let missing: Vec<_> = supported_types()
        .map(|t| t.name)
        .filter(|name| !seen.contains(*name))
        .collect();
    assert!(missing.is_empty(), "no fixture for {missing:?}");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn grids_rs_is_generated_from_gguf_py() {
    let script = crate_dir().join("gen/gen_grids.py");
    run_python(&[script.as_os_str(), "--check".as_ref()]);
}
