//! The C ABI on a file the reference's `convert-gguf` wrote (shapes in GGUF
//! order, tensors padded to 32 bytes: spec §15, §16.5), against gguf-py's
//! view of its source (`../shared/golden/reference-gguf/expected.json`):
//! `aero_tensor_info` gives the row-major shape and the exact length,
//! `aero_tensor_bytes` / `aero_tensor_ptr` the GGUF's bytes (no padding),
//! `aero_tensor_ggml_type_name` the ggml type, and the state dict the
//! row-major shape with gguf-py's f32 values. This project's conversion of
//! the same GGUF answers the same.

use std::ffi::{CStr, CString, c_void};
use std::path::{Path, PathBuf};
use std::ptr;

use aerotensor::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    aero_test_support::golden("reference-gguf")
}

fn expected() -> serde_json::Map<String, Value> {
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap();
    v.as_object().unwrap().clone()
}

fn dims(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_i64().unwrap())
        .collect()
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn c(s: &Path) -> CString {
    CString::new(s.to_str().unwrap()).unwrap()
}

fn last_message() -> String {
    // SAFETY: never NULL; valid until the next call on this thread.
    unsafe { CStr::from_ptr(aero_error_string()) }
        .to_string_lossy()
        .into_owned()
}

/// f16 bits → f32 (the state dict keeps f16 tensors as f16).
fn f16_to_f32(h: u16) -> f32 {
    let (s, e, m) = (
        (h >> 15) as u32,
        ((h >> 10) & 0x1f) as i32,
        (h & 0x3ff) as u32,
    );
    let v = match e {
        0 => m as f32 * (2f32).powi(-24),
        31 if m == 0 => f32::INFINITY,
        31 => f32::NAN,
        _ => (m | 0x400) as f32 * (2f32).powi(e - 25),
    };
    if s == 1 { -v } else { v }
}

/// Checks one file through every C entry point against expected.json.
fn check(path: &Path) {
    let want = expected();
    let p = c(path);
    // SAFETY: valid NUL-terminated strings, out-pointers and buffers of the
    // sizes passed, handles used while live and freed once.
    unsafe {
        let h = aero_load(p.as_ptr());
        assert!(!h.is_null(), "{}", last_message());
        assert_eq!(aero_tensor_count(h) as usize, want.len());
        for (name, e) in &want {
            let n = CString::new(name.as_str()).unwrap();
            let mut dt = aero_dtype_t::AERO_DT_U8;
            let mut shape = [0i64; 8];
            let mut rank = 0u32;
            let mut len = 0u64;
            assert_eq!(
                aero_tensor_info(
                    h,
                    n.as_ptr(),
                    &mut dt,
                    shape.as_mut_ptr(),
                    &mut rank,
                    &mut len
                ),
                0,
                "{name}: {}",
                last_message()
            );
            assert_eq!(
                shape[..rank as usize].to_vec(),
                dims(&e["row_major_shape"]),
                "{name} in {}",
                path.display()
            );
            assert_eq!(len, e["n_bytes"].as_u64().unwrap(), "{name}");
            let mut buf = vec![0u8; len as usize];
            assert_eq!(aero_tensor_bytes(h, n.as_ptr(), buf.as_mut_ptr(), len), 0);
            assert_eq!(sha256(&buf), e["bytes_sha256"], "{name}");
            let (mut d, mut sz) = (ptr::null(), 0u64);
            assert_eq!(aero_tensor_ptr(h, n.as_ptr(), &mut d, &mut sz), 0);
            assert_eq!(sz, len, "{name}");
            assert_eq!(std::slice::from_raw_parts(d, sz as usize), &buf[..]);
            let ty = e["ggml_type"].as_str().unwrap();
            let g = aero_tensor_ggml_type_name(h, n.as_ptr());
            if dt == aero_dtype_t::AERO_DT_PACKED {
                assert_eq!(CStr::from_ptr(g).to_str().unwrap(), ty, "{name}");
            } else {
                assert!(g.is_null(), "{name}");
            }
        }
        aero_close(h);

        let sd = aero_load_state_dict(p.as_ptr(), 0);
        assert!(!sd.is_null(), "{}", last_message());
        assert_eq!(aero_state_dict_tensor_count(sd) as usize, want.len());
        for i in 0..want.len() as u32 {
            let mut name = [0 as std::ffi::c_char; 256];
            let mut shape = [0i64; 8];
            let mut rank = 0u32;
            let mut dt = aero_state_dict_dtype_t::AERO_SD_F32;
            let mut data: *const c_void = ptr::null();
            let mut size = 0u64;
            let rc = aero_state_dict_get_tensor(
                sd,
                i,
                name.as_mut_ptr(),
                name.len(),
                shape.as_mut_ptr(),
                &mut rank,
                &mut dt,
                &mut data,
                &mut size,
            );
            assert_eq!(rc, 0, "{}", last_message());
            let name = CStr::from_ptr(name.as_ptr()).to_str().unwrap().to_owned();
            let e = &want[&name];
            assert_eq!(shape[..rank as usize].to_vec(), dims(&e["row_major_shape"]));
            let bytes = std::slice::from_raw_parts(data.cast::<u8>(), size as usize);
            // gguf-py's f32 values: f16 kept as f16 is widened here.
            let f32s: Vec<u8> = match dt {
                aero_state_dict_dtype_t::AERO_SD_F32 => bytes.to_vec(),
                aero_state_dict_dtype_t::AERO_SD_F16 => bytes
                    .chunks_exact(2)
                    .flat_map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])).to_le_bytes())
                    .collect(),
            };
            assert_eq!(sha256(&f32s), e["f32_sha256"], "{name}");
        }
        aero_state_dict_free(sd);
    }
}

#[test]
fn the_reference_conversion_reads_as_the_gguf_it_came_from() {
    check(&dir().join("reference-converted.aero"));
}

#[test]
fn our_conversion_of_the_same_gguf_answers_the_same() {
    let d = tempfile::tempdir().unwrap();
    let ours = d.path().join("ours.aero");
    aero_convert::gguf_convert::import(
        &dir().join("source.gguf"),
        &ours,
        &aero_io::write::WriteOptions::default(),
    )
    .unwrap();
    check(&ours);
}
