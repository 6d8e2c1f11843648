//! AEROSET manifest parsing and path resolution (no file system access:
//! paths resolve against a URL base; lexical checks keep every local path
//! inside the set).
#![no_main]
use std::path::Path;

use aero_set::resolve::{check_lexical, resolve};
use aero_set::{Location, SetBase, SetManifest, SetOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let label = Path::new("model.aeroset.json");
    let Ok(m) = SetManifest::parse(data, label) else {
        return;
    };
    let text = serde_json::to_vec(&m.to_json()).expect("manifest JSON");
    let again = SetManifest::parse(&text, label).expect("to_json output parses");
    assert_eq!(again, m);
    let paths = m
        .parts
        .iter()
        .map(|p| p.file.path.as_str())
        .chain([m.global_tidx.path.as_str()]);
    for raw in paths {
        if let Ok(false) = check_lexical(label, "path", raw) {
            assert!(!raw.starts_with('/') && !raw.split('/').any(|c| c == ".."));
        }
        for allow_remote in [false, true] {
            let base = SetBase::Url("https://example.invalid/set".into());
            let opts = SetOptions { allow_remote };
            // A relative path is appended to the base (the manifest's own
            // base_url may say anything; the path may not climb out of it).
            if let (Ok(false), Ok(Location::Remote(u))) = (
                check_lexical(label, "path", raw),
                resolve(label, &base, m.base_url.as_deref(), "path", raw, &opts),
            ) {
                assert!(u.ends_with(raw.trim_start_matches("./")), "{u} for {raw}");
            }
        }
    }
    for p in &m.parts {
        for s in &p.shards {
            assert!(m.part_for_shard(*s).is_some());
        }
    }
});
