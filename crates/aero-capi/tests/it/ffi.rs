//! The C entry points called from Rust (through the rlib): the cases the C
//! ABI test cannot make from the golden files — a tensor nothing records a
//! hash for, and a file in the default layout (hash_b3 + page hashes).

use std::ffi::{CStr, CString};
use std::ptr;

use aero_io::DType;
use aero_io::write::{TensorBytes, TensorSpec, WriteOptions, write_model};
use aerotensor::*;

fn write(path: &std::path::Path, opts: &WriteOptions, data: &[u8]) {
    let spec = TensorSpec {
        name: "w".into(),
        dtype: DType::F32,
        shape: vec![(data.len() / 4) as u64],
        data_len: data.len() as u64,
        extras: Vec::new(),
        bytes: TensorBytes::Reader(Box::new(std::io::Cursor::new(data.to_vec()))),
    };
    write_model(path, vec![spec], opts).unwrap();
}

fn c(s: &std::path::Path) -> CString {
    CString::new(s.to_str().unwrap()).unwrap()
}

fn last_message() -> String {
    // SAFETY: aero_error_string never returns NULL and the string lives
    // until the next call on this thread.
    unsafe { CStr::from_ptr(aero_error_string()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn unverifiable_tensor_needs_the_unverified_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nohash.aero");
    let data = aero_test_support::bytes(1, 4096);
    let opts = WriteOptions {
        unverified: vec!["w".into()], // no hash_b3, no pages, shard hash zero
        ..WriteOptions::default()
    };
    write(&path, &opts, &data);
    let p = c(&path);
    let name = c"w";
    // SAFETY: valid NUL-terminated strings and out-pointers throughout.
    unsafe {
        let h = aero_load(p.as_ptr());
        assert!(!h.is_null(), "{}", last_message());
        let (mut d, mut n) = (ptr::null(), 0u64);
        assert_eq!(
            aero_tensor_ptr(h, name.as_ptr(), &mut d, &mut n),
            aero_error_code_t::AERO_E_UNVERIFIABLE as i32
        );
        assert!(
            last_message().contains("cannot be verified"),
            "{}",
            last_message()
        );
        let mut buf = vec![0u8; 4096];
        assert_eq!(
            aero_tensor_bytes(h, name.as_ptr(), buf.as_mut_ptr(), 4096),
            aero_error_code_t::AERO_E_UNVERIFIABLE as i32
        );
        assert_eq!(
            aero_tensor_ptr_unverified(h, name.as_ptr(), &mut d, &mut n),
            aero_error_code_t::AERO_OK
        );
        assert_eq!(std::slice::from_raw_parts(d, n as usize), data.as_slice());
        let mut report = ptr::null_mut();
        assert_eq!(
            aero_validate(h, AERO_VALIDATE_FULL, &mut report),
            aero_verdict_t::AERO_VERDICT_VALID_WITH_WARNINGS
        );
        let json: serde_json::Value =
            serde_json::from_str(CStr::from_ptr(report).to_str().unwrap()).unwrap();
        assert_eq!(json["verdict"], "valid-with-warnings");
        aero_string_free(report);
        aero_close(h);
    }
}

#[test]
fn default_layout_pointers_are_verified_zero_copy_and_shared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("default.aero");
    let data = aero_test_support::bytes(2, 3 << 20);
    write(&path, &WriteOptions::default(), &data);
    let p = c(&path);
    // SAFETY: as above; the handle is shared by reference between threads,
    // which the header promises is allowed.
    unsafe {
        let h = aero_load(p.as_ptr());
        assert!(!h.is_null());
        let hp = h as usize;
        let ptrs: Vec<usize> = std::thread::scope(|s| {
            let t: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(move || {
                        let (mut d, mut n) = (ptr::null(), 0u64);
                        let rc =
                            aero_tensor_ptr(hp as aero_handle_t, c"w".as_ptr(), &mut d, &mut n);
                        assert_eq!(rc, 0);
                        assert_eq!(n, 3 << 20);
                        d as usize
                    })
                })
                .collect();
            t.into_iter().map(|j| j.join().unwrap()).collect()
        });
        assert!(
            ptrs.windows(2).all(|w| w[0] == w[1]),
            "one kept copy: {ptrs:?}"
        );
        let d = ptrs[0] as *const u8;
        assert_eq!(std::slice::from_raw_parts(d, 3 << 20), data.as_slice());
        // Aligned layout: data_off % 64 == 0 and the mapping is page-aligned.
        assert_eq!(d as usize % 64, 0);
        assert_eq!(aero_verify_all(h), aero_error_code_t::AERO_OK);
        let mut dt = aero_dtype_t::AERO_DT_U8;
        let (mut shape, mut rank, mut len) = ([0i64; 8], 0u32, 0u64);
        assert_eq!(
            aero_tensor_info(
                h,
                c"w".as_ptr(),
                &mut dt,
                shape.as_mut_ptr(),
                &mut rank,
                &mut len
            ),
            0
        );
        assert_eq!(
            (dt, rank, shape[0], len),
            (aero_dtype_t::AERO_DT_F32, 1, 3 << 18, 3 << 20)
        );
        aero_close(h);
    }
}

#[test]
fn ggml_type_names_of_packed_gguf_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q8.aero");
    let mut qp = Vec::new();
    aero_io::meta::json_to_msgpack(&serde_json::json!({"ggml_type": 8}), &mut qp);
    let data = aero_test_support::bytes(3, 34 * 2); // two Q8_0 blocks
    let spec = TensorSpec {
        name: "q".into(),
        dtype: DType::Packed,
        shape: vec![64],
        data_len: data.len() as u64,
        extras: vec![("quant_params".into(), qp)],
        bytes: TensorBytes::Reader(Box::new(std::io::Cursor::new(data))),
    };
    write_model(&path, vec![spec], &WriteOptions::default()).unwrap();
    let p = c(&path);
    // SAFETY: valid strings and out-pointers; static names are not freed.
    unsafe {
        let h = aero_load(p.as_ptr());
        assert!(!h.is_null());
        let n = aero_tensor_ggml_type_name(h, c"q".as_ptr());
        assert_eq!(CStr::from_ptr(n).to_str().unwrap(), "Q8_0");
        assert_eq!(aero_last_error_code(), aero_error_code_t::AERO_OK);
        let mut dt = aero_dtype_t::AERO_DT_F32;
        let (mut shape, mut rank, mut len) = ([0i64; 8], 0u32, 0u64);
        assert_eq!(
            aero_tensor_info(
                h,
                c"q".as_ptr(),
                &mut dt,
                shape.as_mut_ptr(),
                &mut rank,
                &mut len
            ),
            0
        );
        assert_eq!((dt, len), (aero_dtype_t::AERO_DT_PACKED, 68));
        assert_eq!(
            CStr::from_ptr(aero_dtype_name(dt as u32)).to_str().unwrap(),
            "packed"
        );
        aero_close(h);
        // The state dict dequantizes it to 64 f32 values.
        let sd = aero_load_state_dict(p.as_ptr(), 1);
        assert!(!sd.is_null(), "{}", last_message());
        let mut name = [0 as std::ffi::c_char; 16];
        let mut sdt = aero_state_dict_dtype_t::AERO_SD_F16;
        let (mut data, mut size) = (ptr::null(), 0u64);
        assert_eq!(
            aero_state_dict_get_tensor(
                sd,
                0,
                name.as_mut_ptr(),
                name.len(),
                shape.as_mut_ptr(),
                &mut rank,
                &mut sdt,
                &mut data,
                &mut size
            ),
            0,
            "{}",
            last_message()
        );
        assert_eq!(
            (sdt, size, rank, shape[0]),
            (aero_state_dict_dtype_t::AERO_SD_F32, 256, 1, 64)
        );
        assert_eq!(data as usize % 4, 0);
        aero_state_dict_free(sd);
    }
}
