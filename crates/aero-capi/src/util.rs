//! Argument checks shared by the entry points: NULL pointers, strings
//! and output buffers (handles: `legacy::handle_ref`, `legacy::state_ref`,
//! beside the handle types).

use std::ffi::{CStr, c_char};
use std::path::PathBuf;

use crate::error::aero_error_code_t as Code;
use crate::error::{CError, CResult};

/// A C string argument's bytes.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that stays
/// unchanged during the call.
unsafe fn arg_bytes<'a>(p: *const c_char, what: &str) -> CResult<&'a [u8]> {
    if p.is_null() {
        return Err(CError::null(what));
    }
    // SAFETY: non-null and NUL-terminated per the contract.
    Ok(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// A path or URL argument (any bytes but NUL: Unix paths need not be UTF-8).
///
/// # Safety
/// As [`arg_bytes`].
pub(crate) unsafe fn arg_path(p: *const c_char, what: &str) -> CResult<PathBuf> {
    // SAFETY: forwarded.
    let b = unsafe { arg_bytes(p, what) }?;
    if b.is_empty() {
        return Err(CError::invalid(format!("{what} is empty")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(b)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(b)
            .map(PathBuf::from)
            .map_err(|_| CError::invalid(format!("{what} is not valid UTF-8")))
    }
}

/// A tensor name argument (UTF-8, as names are in the file).
///
/// # Safety
/// As [`arg_bytes`].
pub(crate) unsafe fn arg_name<'a>(p: *const c_char) -> CResult<&'a str> {
    // SAFETY: forwarded.
    let b = unsafe { arg_bytes(p, "name") }?;
    std::str::from_utf8(b).map_err(|_| {
        CError::new(
            Code::AERO_E_NOT_FOUND,
            "no tensor has this name: it is not valid UTF-8",
        )
    })
}

/// A non-null out-pointer.
pub(crate) fn out<T>(p: *mut T, what: &str) -> CResult<*mut T> {
    if p.is_null() {
        Err(CError::null(what))
    } else {
        Ok(p)
    }
}

/// Copies `name` and a NUL into `buf` (`size` bytes). On failure writes
/// an empty string when there is room for one.
///
/// # Safety
/// `buf` must be NULL or valid for writing `size` bytes.
pub(crate) unsafe fn copy_name(name: &str, buf: *mut c_char, size: usize) -> CResult<()> {
    let buf = out(buf, "buffer")?;
    let fail = |e: CError| {
        if size > 0 {
            // SAFETY: `buf` is valid for `size` >= 1 bytes.
            unsafe { buf.write(0) };
        }
        Err(e)
    };
    if name.as_bytes().contains(&0) {
        return fail(CError::new(
            Code::AERO_E_UNSUPPORTED,
            "the tensor name contains a NUL byte and cannot be a C string",
        ));
    }
    if name.len() >= size {
        return fail(CError::new(
            Code::AERO_E_BUFFER_TOO_SMALL,
            format!(
                "the buffer holds {size} bytes; the name '{name}' needs {} with its NUL",
                name.len() + 1
            ),
        ));
    }
    // SAFETY: `buf` is valid for `size` > name.len() bytes, and a Rust
    // string cannot overlap the caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(name.as_ptr().cast::<c_char>(), buf, name.len());
        buf.add(name.len()).write(0);
    }
    Ok(())
}
