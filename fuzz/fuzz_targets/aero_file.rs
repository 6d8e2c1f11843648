//! A whole AERO file from bytes: open from a `Vec<u8>` source, validate
//! Full, read every tensor, and render what `list --json` / `inspect
//! --json` print (extras as JSON included).
#![no_main]
use aero_io::{AeroFile, Mode, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = AeroFile::from_source("fuzz.aero", Box::new(data.to_vec())) else {
        return;
    };
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    let _ = serde_json::to_vec(&r).expect("report JSON");
    let _ = f.manifest();
    let _ = f.meta_json();
    let _ = f.model();
    let Ok(idx) = f.index() else {
        return;
    };
    let mut rows = Vec::new();
    for t in idx.tensors() {
        rows.push(t.to_json());
        assert!(idx.get(&t.name).is_some());
        let read = f.tensor(&t.name);
        if r.verdict != Verdict::Invalid && !f.is_set_index() {
            let v = read.unwrap_or_else(|e| panic!("valid file, but '{}': {e}", t.name));
            assert_eq!(v.bytes().len() as u64, v.info().data_len);
        }
        if let Ok(v) = f.tensor_unverified(t) {
            let _ = v.bytes().len();
        }
    }
    let _ = serde_json::to_vec(&serde_json::Value::Array(rows)).expect("list JSON");
    // Both exporters on every file validation accepts: an error is fine,
    // a panic or an unbounded output is not.
    if r.verdict != Verdict::Invalid && !f.is_set_index() {
        let input = aerotensor_fuzz::scratch_file("in.aero");
        std::fs::write(&input, data).expect("scratch write");
        let out = aerotensor_fuzz::scratch_file("out.bin");
        if let Ok(n) =
            aero_convert::safetensors::export_with(&input, &out, &aerotensor_fuzz::copy_options())
        {
            assert!(n <= 2 * data.len() as u64 + (1 << 20));
        }
        if let Ok(n) =
            aero_convert::gguf_convert::export_with(&input, &out, &aerotensor_fuzz::copy_options())
        {
            // Tensor bytes, plus at most one alignment of padding each.
            let pad = (idx.len() as u64 + 1) * aero_convert::gguf::MAX_ALIGNMENT;
            assert!(n <= 2 * data.len() as u64 + pad, "{n}");
        }
    }
});
