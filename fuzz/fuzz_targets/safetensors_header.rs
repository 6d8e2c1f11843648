//! safetensors input from bytes: header length, JSON header, offsets and
//! sizes; writer options and tensor specs derived from it.
#![no_main]
use std::path::Path;

use aero_convert::safetensors::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(inp) = Input::from_source(Path::new("fuzz.safetensors"), Box::new(data.to_vec())) else {
        return;
    };
    assert!(inp.data_len() <= data.len() as u64);
    let _ = inp.options(&aerotensor_fuzz::write_options());
    let specs = inp.specs(&|_| {}).expect("specs of a checked input");
    assert_eq!(specs.len(), inp.len());
});
