//! Issue 20 item 7 through the C ABI: an MJSN chunk that is not a JSON
//! object is an error whether or not its TOC hash is recorded —
//! `aero_validate` says INVALID (it said valid with a warning) and the
//! state dict, which reads MJSN, refuses the file. The input is the
//! reference writer's `mjsn-zero-hash.aero` with its MJSN object rewritten
//! as a JSON array of the same length.

use std::ffi::{CStr, CString};
use std::ptr;

use aerotensor::*;

fn last_message() -> String {
    // SAFETY: aero_error_string never returns NULL and the string lives
    // until the next call on this thread.
    unsafe { CStr::from_ptr(aero_error_string()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn an_mjsn_that_is_not_an_object_is_invalid() {
    let mut b = std::fs::read(aero_test_support::golden("mjsn-zero-hash.aero")).unwrap();
    let entry = 112; // TOC entry 0
    assert_eq!(&b[entry..entry + 4], b"MJSN");
    assert!(
        b[entry + 48..entry + 80].iter().all(|&x| x == 0),
        "hash not recorded"
    );
    let field =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    let (off, len) = (field(&b, entry + 8), field(&b, entry + 16));
    for c in &mut b[off..off + len] {
        *c = match *c {
            b'{' => b'[',
            b'}' => b']',
            b':' => b',',
            x => x,
        };
    }
    assert!(
        serde_json::from_slice::<serde_json::Value>(&b[off..off + len])
            .unwrap()
            .is_array()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mjsn-array.aero");
    std::fs::write(&path, &b).unwrap();
    let p = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated strings and out-pointers throughout.
    unsafe {
        let h = aero_load(p.as_ptr());
        assert!(!h.is_null(), "{}", last_message());
        for mode in [AERO_VALIDATE_QUICK, AERO_VALIDATE_FULL] {
            let mut report = ptr::null_mut();
            assert_eq!(
                aero_validate(h, mode, &mut report),
                aero_verdict_t::AERO_VERDICT_INVALID
            );
            let json: serde_json::Value =
                serde_json::from_str(CStr::from_ptr(report).to_str().unwrap()).unwrap();
            assert_eq!(json["chunks"][0]["status"], "error", "{json}");
            assert!(
                json["errors"].to_string().contains("not a JSON object"),
                "{json}"
            );
            aero_string_free(report);
        }
        aero_close(h);
        let sd = aero_load_state_dict(p.as_ptr(), 0);
        assert!(sd.is_null());
        assert!(last_message().contains("MJSN"), "{}", last_message());
    }
}
