//! What the old interface lacks (`aerotensor.h`, which includes
//! `aero_capi.h`): opening sets and URLs under the CLI's trust rules,
//! validation with a report, explicitly unverified access, names of dtypes
//! and ggml types, error codes, the version. cbindgen generates
//! `include/aerotensor.h` from this file alone.
#![allow(non_camel_case_types)]

use std::ffi::{CString, c_char, c_int};
use std::ptr;

use aero_io::{Mode, Verdict};

use crate::error::{CError, guard, last_code, pure};
use crate::handle::{HANDLE_MAGIC, Handle, OpenOptions, Source};
use crate::legacy::{aero_handle, aero_handle_t, handle_ref};
use crate::util::{arg_name, arg_path, out};

pub use crate::error::aero_error_code_t;

/// The outcome of `aero_validate`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum aero_verdict_t {
    /// Validation could not run (NULL handle, bad mode): see
    /// `aero_last_error_code`.
    AERO_VERDICT_ERROR = -1,
    /// Everything checked passed.
    AERO_VERDICT_VALID = 0,
    /// Nothing failed, but something could not be checked (a hash that was
    /// never recorded).
    AERO_VERDICT_VALID_WITH_WARNINGS = 1,
    /// Something failed: the report says what.
    AERO_VERDICT_INVALID = 2,
}

/// How much `aero_validate` checks (an `int`, one of the AERO_VALIDATE_*
/// values).
pub type aero_validate_mode_t = c_int;
/// Metadata chunks, tensor table, control-plane hash (no weight bytes).
pub const AERO_VALIDATE_QUICK: aero_validate_mode_t = 0;
/// Everything: every weight shard, every hash_b3, every page hash.
pub const AERO_VALIDATE_FULL: aero_validate_mode_t = 1;
/// The IHSH control-plane hash only.
pub const AERO_VALIDATE_CONTROL: aero_validate_mode_t = 2;

/// `aero_open_options.flags`: a local AEROSET manifest may name remote
/// (http(s)://) parts or a base_url. Off by default, as `--remote` is on
/// the command line: a local file should not make the loader fetch from
/// the network unless asked to.
pub const AERO_OPEN_ALLOW_REMOTE_PARTS: u32 = 1;
/// `aero_open_options.flags`: do not read or write the remote range cache.
pub const AERO_OPEN_NO_CACHE: u32 = 2;
/// `aero_open_options.flags`: hash every weight shard once at open, on
/// every core (fails with AERO_E_CORRUPT if one does not match). Afterwards
/// verified pointers to tensors of a local file cost nothing: what a
/// loader that reads every tensor wants. Without it each tensor is
/// verified on first access.
pub const AERO_OPEN_VERIFY_ALL: u32 = 4;

const KNOWN_FLAGS: u32 = AERO_OPEN_ALLOW_REMOTE_PARTS | AERO_OPEN_NO_CACHE | AERO_OPEN_VERIFY_ALL;

/// Options for `aero_open`. Fill with `aero_open_options_init`, then set
/// fields: `struct_size` lets later versions add fields without breaking
/// programs built against this one.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct aero_open_options {
    /// `sizeof(aero_open_options)` as the caller was compiled.
    pub struct_size: u32,
    /// AERO_OPEN_* bits.
    pub flags: u32,
    /// Directory of the remote range cache; NULL for `$AEROTENSOR_CACHE_DIR`
    /// or `~/.cache/aerotensor`. Read during `aero_open` only.
    pub cache_dir: *const c_char,
}

/// Sets `*opts` to the defaults: `struct_size` filled in, no flags, no
/// cache directory. NULL is a no-op.
///
/// # Safety
/// `opts` must be NULL or valid for writing one `aero_open_options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_open_options_init(opts: *mut aero_open_options) {
    guard((), || {
        if !opts.is_null() {
            // SAFETY: non-null and valid for writing per the contract.
            unsafe {
                opts.write(aero_open_options {
                    struct_size: std::mem::size_of::<aero_open_options>() as u32,
                    flags: 0,
                    cache_dir: ptr::null(),
                })
            };
        }
        Ok(())
    })
}

/// Reads the fields of `*o` its `struct_size` says the caller has.
///
/// # Safety
/// `o` must be NULL or point to at least `struct_size` readable bytes.
unsafe fn read_options(o: *const aero_open_options) -> Result<OpenOptions, CError> {
    if o.is_null() {
        return Ok(OpenOptions::default());
    }
    // SAFETY: non-null; the first field is always present.
    let size = unsafe { ptr::addr_of!((*o).struct_size).read_unaligned() } as usize;
    let flags_end = std::mem::offset_of!(aero_open_options, flags) + 4;
    if size < flags_end {
        return Err(CError::invalid(format!(
            "aero_open_options.struct_size is {size}; call aero_open_options_init first"
        )));
    }
    // SAFETY: the caller's struct holds at least `flags_end` bytes.
    let flags = unsafe { ptr::addr_of!((*o).flags).read_unaligned() };
    if flags & !KNOWN_FLAGS != 0 {
        return Err(CError::invalid(format!(
            "aero_open_options.flags has unknown bits {:#x}",
            flags & !KNOWN_FLAGS
        )));
    }
    let dir_end = std::mem::offset_of!(aero_open_options, cache_dir) + std::mem::size_of::<usize>();
    let cache_dir = if size >= dir_end {
        // SAFETY: the caller's struct is large enough to hold the field.
        let p = unsafe { ptr::addr_of!((*o).cache_dir).read_unaligned() };
        if p.is_null() {
            None
        } else {
            // SAFETY: a non-null cache_dir is a NUL-terminated string (the
            // documented contract of the field).
            Some(unsafe { arg_path(p, "cache_dir") }?)
        }
    } else {
        None
    };
    Ok(OpenOptions {
        allow_remote_parts: flags & AERO_OPEN_ALLOW_REMOTE_PARTS != 0,
        no_cache: flags & AERO_OPEN_NO_CACHE != 0,
        verify_all: flags & AERO_OPEN_VERIFY_ALL != 0,
        cache_dir,
    })
}

/// Opens a `.aero` file, an AEROSET (its `model.aeroset.json` or the
/// directory holding it) or an `http(s)://` URL of either (a manifest URL
/// ends in `.json`, or in `/` for its directory), with the command line's
/// trust rules: a local manifest may name remote parts only with
/// AERO_OPEN_ALLOW_REMOTE_PARTS, manifest paths never leave the set's
/// directory, and every tensor byte handed out is verified. `opts` may be
/// NULL for the defaults. Returns NULL on failure (`aero_last_error_code`,
/// `aero_error_string`). Release with `aero_close`.
///
/// # Safety
/// `path_or_url` must be NULL or NUL-terminated; `opts` NULL or an
/// initialised `aero_open_options` (see `aero_open_options_init`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_open(
    path_or_url: *const c_char,
    opts: *const aero_open_options,
) -> aero_handle_t {
    guard(ptr::null_mut(), || {
        // SAFETY: per this function's contract.
        let path = unsafe { arg_path(path_or_url, "path_or_url") }?;
        // SAFETY: per this function's contract.
        let opts = unsafe { read_options(opts) }?;
        let src = Source::open(&path, &opts)?;
        Ok(Box::into_raw(Box::new(aero_handle {
            magic: HANDLE_MAGIC,
            inner: Handle::new(src),
        })))
    })
}

/// Hashes every weight shard of the file (every part of a set) once, on
/// every core, as AERO_OPEN_VERIFY_ALL does at open. Returns AERO_OK, or
/// AERO_E_CORRUPT naming the first shard that does not match.
///
/// # Safety
/// `h` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_verify_all(h: aero_handle_t) -> aero_error_code_t {
    guard((), || {
        // SAFETY: per this function's contract.
        let h = unsafe { handle_ref(h) }?;
        h.source.verify_all()
    });
    last_code()
}

/// Validates the file or set: `mode` is AERO_VALIDATE_QUICK, _FULL or
/// _CONTROL. Returns the verdict. When `report_json_out` is not NULL it
/// receives the report as JSON (the `aerotensor validate --json` schema),
/// a string the caller frees with `aero_string_free`; on
/// AERO_VERDICT_ERROR it is set to NULL.
///
/// # Safety
/// `h` must be NULL or a live handle; `report_json_out` NULL or valid for
/// writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_validate(
    h: aero_handle_t,
    mode: aero_validate_mode_t,
    report_json_out: *mut *mut c_char,
) -> aero_verdict_t {
    if !report_json_out.is_null() {
        // SAFETY: non-null and valid for writing per the contract.
        unsafe { report_json_out.write(ptr::null_mut()) };
    }
    guard(aero_verdict_t::AERO_VERDICT_ERROR, || {
        // SAFETY: per this function's contract.
        let h = unsafe { handle_ref(h) }?;
        let mode = match mode {
            AERO_VALIDATE_QUICK => Mode::Quick,
            AERO_VALIDATE_FULL => Mode::Full,
            AERO_VALIDATE_CONTROL => Mode::Control,
            m => return Err(CError::invalid(format!("unknown validation mode {m}"))),
        };
        let (verdict, json) = h.source.validate(mode)?;
        if !report_json_out.is_null() {
            let s = CString::new(json).map_err(|_| {
                CError::new(aero_error_code_t::AERO_E_IO, "report contains a NUL byte")
            })?;
            // SAFETY: non-null and valid for writing per the contract.
            unsafe { report_json_out.write(s.into_raw()) };
        }
        Ok(match verdict {
            Verdict::Valid => aero_verdict_t::AERO_VERDICT_VALID,
            Verdict::ValidWithWarnings => aero_verdict_t::AERO_VERDICT_VALID_WITH_WARNINGS,
            Verdict::Invalid | Verdict::Error => aero_verdict_t::AERO_VERDICT_INVALID,
        })
    })
}

/// Frees a string the library allocated for the caller (the report of
/// `aero_validate`). NULL is a no-op.
///
/// # Safety
/// `s` must be NULL or a string from this library not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_string_free(s: *mut c_char) {
    guard((), || {
        if !s.is_null() {
            // SAFETY: `s` came from CString::into_raw in this library and is
            // freed once (the contract).
            drop(unsafe { CString::from_raw(s) });
        }
        Ok(())
    })
}

/// A zero-copy pointer to a tensor's bytes WITHOUT verifying them (unless
/// an earlier verified call on this handle already did): for files whose
/// hashes are missing (AERO_E_UNVERIFIABLE from `aero_tensor_ptr`) or that
/// the caller trusts. Damaged bytes are handed out as they are. Valid until
/// `aero_close(h)`.
///
/// # Safety
/// `h` must be NULL or a live handle; `name` NULL or NUL-terminated;
/// `data_out`, `size_out` NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_tensor_ptr_unverified(
    h: aero_handle_t,
    name: *const c_char,
    data_out: *mut *const u8,
    size_out: *mut u64,
) -> aero_error_code_t {
    guard((), || {
        // SAFETY: per this function's contract.
        let h = unsafe { handle_ref(h) }?;
        // SAFETY: per this function's contract.
        let name = unsafe { arg_name(name) }?;
        let data_out = out(data_out, "data_out")?;
        let size_out = out(size_out, "size_out")?;
        let (p, n) = h.unverified_ptr(name)?;
        // SAFETY: non-null, valid for writing per the contract.
        unsafe {
            data_out.write(p);
            size_out.write(n as u64);
        }
        Ok(())
    });
    last_code()
}

/// Every known dtype's name (aero-format's table) as a C string, made once.
static DTYPE_NAMES: std::sync::LazyLock<Vec<(aero_io::DType, std::ffi::CString)>> =
    std::sync::LazyLock::new(|| {
        aero_io::DType::ALL
            .into_iter()
            .filter_map(|d| Some((d, std::ffi::CString::new(d.name()).ok()?)))
            .collect()
    });

/// The name of a dtype code ("f16", "f32", "bf16", ..., "packed"), or
/// "unknown". Never NULL; a static string. Leaves the last error as it is.
#[unsafe(no_mangle)]
pub extern "C" fn aero_dtype_name(dtype: u32) -> *const c_char {
    pure(c"unknown".as_ptr(), || {
        u16::try_from(dtype)
            .ok()
            .map(aero_io::DType::from_code)
            .and_then(|d| DTYPE_NAMES.iter().find(|(k, _)| *k == d))
            .map_or(c"unknown", |(_, name)| name.as_c_str())
            .as_ptr()
    })
}

/// The ggml type name ("Q4_K", "Q8_0", ...) of a packed tensor converted
/// from GGUF (its `quant_params.ggml_type`): a static string. NULL when the
/// tensor has none (then `aero_last_error_code()` is AERO_OK) or on error
/// (AERO_E_NOT_FOUND, ...).
///
/// # Safety
/// `h` must be NULL or a live handle; `name` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_tensor_ggml_type_name(
    h: aero_handle_t,
    name: *const c_char,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: per this function's contract.
        let h = unsafe { handle_ref(h) }?;
        // SAFETY: per this function's contract.
        let name = unsafe { arg_name(name) }?;
        let info = h.source.info(name)?;
        if info.dtype != aero_io::DType::Packed {
            return Ok(ptr::null());
        }
        Ok(info.ggml_type().map_or(ptr::null(), |t| ggml_name(t.name)))
    })
}

/// NUL-terminated static copies of the ggml type names.
fn ggml_name(name: &str) -> *const c_char {
    static NAMES: std::sync::OnceLock<Vec<(&'static str, CString)>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        aero_format::ggml::GGML_TYPES
            .iter()
            .map(|t| (t.name, CString::new(t.name).unwrap_or_default()))
            .collect()
    });
    names
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(ptr::null(), |(_, c)| c.as_ptr())
}

/// The calling thread's last error code: AERO_OK after a call that
/// succeeded. Leaves the last error as it is.
#[unsafe(no_mangle)]
pub extern "C" fn aero_last_error_code() -> aero_error_code_t {
    last_code()
}

/// The name of an error code ("AERO_E_CORRUPT"), or "AERO_E_UNKNOWN".
/// Never NULL; a static string. Leaves the last error as it is.
#[unsafe(no_mangle)]
pub extern "C" fn aero_error_code_name(code: c_int) -> *const c_char {
    use aero_error_code_t::*;
    pure(c"AERO_E_UNKNOWN".as_ptr(), || {
        let all = [
            (AERO_OK, c"AERO_OK"),
            (AERO_E_IO, c"AERO_E_IO"),
            (AERO_E_CORRUPT, c"AERO_E_CORRUPT"),
            (AERO_E_UNVERIFIABLE, c"AERO_E_UNVERIFIABLE"),
            (AERO_E_NOT_FOUND, c"AERO_E_NOT_FOUND"),
            (AERO_E_INVALID_ARGUMENT, c"AERO_E_INVALID_ARGUMENT"),
            (AERO_E_BUFFER_TOO_SMALL, c"AERO_E_BUFFER_TOO_SMALL"),
            (AERO_E_UNSUPPORTED, c"AERO_E_UNSUPPORTED"),
            (AERO_E_PANIC, c"AERO_E_PANIC"),
            (AERO_E_FORMAT, c"AERO_E_FORMAT"),
            (AERO_E_REFUSED, c"AERO_E_REFUSED"),
        ];
        all.iter()
            .find(|(c, _)| *c as c_int == code)
            .map_or(c"AERO_E_UNKNOWN", |(_, n)| n)
            .as_ptr()
    })
}

/// The library's version ("0.3.0"), a static string. Leaves the last
/// error as it is.
#[unsafe(no_mangle)]
pub extern "C" fn aero_version() -> *const c_char {
    const V: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    V.as_ptr()
}
