//! GGUF: header parse and write-back of the same bytes; GGUF → AERO →
//! `validate --full` → GGUF with the same tensors.
#![no_main]
use std::path::Path;

use aero_convert::gguf;
use aero_convert::gguf_convert::{Input, export_with, import_with};
use aero_io::{AeroFile, Mode, Verdict};
use aerotensor_fuzz::{scratch_file, write_options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = gguf::parse(data) {
        assert!(gguf::valid_alignment(h.alignment));
        let mut out = Vec::new();
        if gguf::write_header(&h, &mut out).is_ok() {
            // Compared as bytes: NaN key/values are kept bit for bit but
            // are not equal to themselves.
            let h2 = gguf::parse(&out).expect("a written header parses");
            let mut again = Vec::new();
            gguf::write_header(&h2, &mut again).expect("rewrite");
            assert!(again == out, "write(parse(write(h))) differs");
            assert_eq!(h2.tensors, h.tensors);
        }
    }
    let Ok(inp) = Input::from_source(Path::new("fuzz.gguf"), Box::new(data.to_vec())) else {
        return;
    };
    if inp.header().tensors.is_empty() {
        return;
    }
    let aero = scratch_file("g.aero");
    let back = scratch_file("g.back.gguf");
    // The writer's own rules (e.g. a non-empty tensor name) may refuse an
    // input the parser accepts: an error, never a panic, is what counts.
    match import_with(&inp, &aero, &write_options(), &|_| {}) {
        Err(e) if aerotensor_fuzz::writer_refused(&e) => return,
        r => r.expect("a checked GGUF converts"),
    };
    let f = AeroFile::open(&aero).expect("converted file opens");
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.errors);
    export_with(&aero, &back, &aerotensor_fuzz::copy_options()).expect("a converted GGUF exports");
    let again = Input::open(&back).expect("exported GGUF re-imports");
    let names = |h: &gguf::GgufHeader| {
        let mut v: Vec<(String, u32, Vec<u64>)> = h
            .tensors
            .iter()
            // A 0-dim GGUF tensor is a scalar in AERO and comes back with
            // dims [1] (ggml has no 0-dim tensors): same bytes, same count.
            .map(|t| {
                let dims = if t.dims.is_empty() {
                    vec![1]
                } else {
                    t.dims.clone()
                };
                (t.name.clone(), t.ggml_type.id, dims)
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(again.header()), names(inp.header()));
    assert!(
        kv_bytes(again.header()) == kv_bytes(inp.header()),
        "key/values changed"
    );
});

/// The key/values of a header as GGUF bytes (NaNs compare by their bits).
fn kv_bytes(h: &gguf::GgufHeader) -> Vec<u8> {
    let only = gguf::GgufHeader {
        version: 3,
        metadata: h.metadata.clone(),
        tensors: Vec::new(),
        alignment: h.alignment,
        header_len: 0,
        data_offset: 0,
    };
    let mut out = Vec::new();
    gguf::write_header(&only, &mut out).expect("key/values write");
    out
}
