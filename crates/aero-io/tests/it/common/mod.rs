#![allow(dead_code)]
use std::path::PathBuf;

/// `../shared/golden` relative to the repository root.
pub(crate) fn golden() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden");
    assert!(p.is_dir(), "golden files not found at {}", p.display());
    p
}

pub(crate) fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(golden().join("expected.json")).unwrap()).unwrap()
}

/// The `.aero` files listed in expected.json, relative to golden().
pub(crate) fn aero_files() -> Vec<String> {
    let e = expected();
    let mut v: Vec<String> = e["files"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with(".aero"))
        .cloned()
        .collect();
    v.sort();
    v
}

/// Peak resident set size of this process in KiB (Linux), if known.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
