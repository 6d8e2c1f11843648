//! safetensors → AERO (streaming writer) → `validate --full` → safetensors
//! → re-import: every accepted input converts to a valid AERO file and comes
//! back with the same tensors and metadata.
#![no_main]
use std::path::Path;

use aero_convert::safetensors::{Input, export_with, import_with};
use aero_io::{AeroFile, Mode, Verdict};
use aerotensor_fuzz::{scratch_file, write_options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(inp) = Input::from_source(Path::new("fuzz.safetensors"), Box::new(data.to_vec())) else {
        return;
    };
    if inp.is_empty() {
        return;
    }
    let aero = scratch_file("st.aero");
    let back = scratch_file("st.back.safetensors");
    let mut opts = write_options();
    opts.tensor_hash = data.first().is_some_and(|b| b & 1 == 1);
    opts.page_hashes = data.get(1).filter(|b| *b & 1 == 1).map(|_| 4096);
    // The writer's own rules (e.g. a non-empty tensor name) may refuse an
    // input the parser accepts: an error, never a panic, is what counts.
    match import_with(&inp, &aero, &opts, &|_| {}) {
        Err(e) if aerotensor_fuzz::writer_refused(&e) => return,
        r => r.expect("a checked safetensors input converts"),
    };
    let f = AeroFile::open(&aero).expect("converted file opens");
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.errors);
    export_with(&aero, &back, &aerotensor_fuzz::copy_options()).expect("a converted file exports");
    let again = Input::open(&back).expect("exported file re-imports");
    assert_eq!(again.len(), inp.len());
    assert_eq!(again.metadata(), inp.metadata());
    let idx = f.index().expect("index");
    let g = AeroFile::from_source("b", Box::new(std::fs::read(&back).expect("read back")));
    drop(g);
    for t in idx.tensors() {
        let v = f.tensor(&t.name).expect("tensor reads");
        assert_eq!(v.bytes().len() as u64, t.data_len);
    }
});
