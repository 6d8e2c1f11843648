//! The opener's table (`tests/fixtures/open-table.json`) through the C ABI:
//! `aero_open` answers every `any` case as the CLI and Python do (the C
//! ABI opens whatever the target is). A set is told from a file by its
//! `aero_validate` report (a set's lists its files, a file's its chunks).

use std::ffi::{CStr, CString};
use std::ptr;

use aero_test_support::open_table;
use aerotensor::*;

fn last_message() -> String {
    // SAFETY: never NULL; valid until the next call on this thread.
    unsafe { CStr::from_ptr(aero_error_string()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn aero_open_answers_every_case_of_the_open_table() {
    let cases: Vec<_> = open_table()
        .into_iter()
        .filter(|c| c.expect == "any")
        .collect();
    assert!(cases.len() >= 6, "the table lost its cases");
    for c in cases {
        let path = CString::new(c.input.as_str()).unwrap();
        // SAFETY: a valid C string; NULL options are the defaults.
        let h = unsafe { aero_open(path.as_ptr(), ptr::null()) };
        let code = aero_last_error_code();
        let msg = last_message();
        let what = format!("{}: {code:?} {msg}", c.input);
        match c.outcome.as_str() {
            "file" | "set" => {
                assert!(!h.is_null(), "{what}");
                let mut report: *mut std::os::raw::c_char = ptr::null_mut();
                // SAFETY: a live handle and a valid out pointer.
                let verdict = unsafe { aero_validate(h, AERO_VALIDATE_QUICK, &mut report) };
                assert_eq!(verdict, aero_verdict_t::AERO_VERDICT_VALID, "{what}");
                // SAFETY: a string the library allocated, freed once below.
                let json: serde_json::Value =
                    serde_json::from_slice(unsafe { CStr::from_ptr(report) }.to_bytes()).unwrap();
                // SAFETY: from aero_validate, freed once; the handle closed once.
                unsafe {
                    aero_string_free(report);
                    aero_close(h);
                }
                let is_set = json.get("files").is_some();
                assert_eq!(is_set, c.outcome == "set", "{what}: {json}");
            }
            "wrong-kind" => {
                assert!(h.is_null(), "{what}");
                assert_eq!(code, aero_error_code_t::AERO_E_UNSUPPORTED, "{what}");
                let found = c.found.as_deref().expect("found");
                assert!(msg.contains(&format!("is {found}, not ")), "{what}");
            }
            "not-found" => {
                assert!(h.is_null(), "{what}");
                assert_eq!(code, aero_error_code_t::AERO_E_IO, "{what}");
                assert!(msg.contains("no-such-file.aero"), "{what}");
            }
            "unsupported" => {
                assert!(h.is_null(), "{what}");
                assert_eq!(code, aero_error_code_t::AERO_E_UNSUPPORTED, "{what}");
                assert!(msg.contains("ftp://"), "{what}");
            }
            other => panic!("unknown outcome {other}"),
        }
    }
}
