//! The thread-local last error, the mapping of library errors to
//! [`aero_error_code_t`], and [`guard`]: what every entry point runs its
//! body in, so no panic unwinds into C.

use std::cell::RefCell;
use std::ffi::CString;
use std::panic::{AssertUnwindSafe, catch_unwind};

use aero_error_code_t as Code;

/// What went wrong in the last call on this thread
/// (`aero_last_error_code`). Calls returning `int` return these values
/// (0 = AERO_OK).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)] // C names: the header is generated from this
pub enum aero_error_code_t {
    /// Success.
    AERO_OK = 0,
    /// An operating-system or network error (missing file, permission,
    /// connection refused).
    AERO_E_IO = 1,
    /// Bytes failed their hash (a tensor's hash_b3, a page, a shard, a
    /// metadata chunk): the file is damaged. Nothing was handed out.
    AERO_E_CORRUPT = 2,
    /// Nothing in the file records a hash for the requested bytes; only the
    /// `*_unverified` calls hand them out.
    AERO_E_UNVERIFIABLE = 3,
    /// No tensor of that name (or index).
    AERO_E_NOT_FOUND = 4,
    /// A NULL or otherwise invalid argument.
    AERO_E_INVALID_ARGUMENT = 5,
    /// The caller's buffer is too small; the message says how large it
    /// must be.
    AERO_E_BUFFER_TOO_SMALL = 6,
    /// Valid, but not something this call or build can do (a URL scheme, a
    /// rank above 8, a dtype that has no float form, ...).
    AERO_E_UNSUPPORTED = 7,
    /// An internal error (a caught panic); the handle may still be used.
    AERO_E_PANIC = 8,
    /// The file is malformed or truncated (header, TOC, tensor index, a
    /// manifest), or not an AERO file at all.
    AERO_E_FORMAT = 9,
    /// Refused by the trust rules: a local AEROSET manifest naming remote
    /// parts without AERO_OPEN_ALLOW_REMOTE_PARTS, or a manifest path
    /// leaving the set's directory.
    AERO_E_REFUSED = 10,
}

/// An error on its way to C: a code and a message.
#[derive(Debug)]
pub(crate) struct CError {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl CError {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> CError {
        CError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> CError {
        CError::new(Code::AERO_E_INVALID_ARGUMENT, message)
    }

    pub(crate) fn null(what: &str) -> CError {
        CError::invalid(format!("{what} is NULL"))
    }
}

pub(crate) type CResult<T> = Result<T, CError>;

fn io_kind_code(e: &std::io::Error) -> Code {
    match e.kind() {
        std::io::ErrorKind::InvalidData => Code::AERO_E_CORRUPT,
        std::io::ErrorKind::Unsupported => Code::AERO_E_UNSUPPORTED,
        _ => Code::AERO_E_IO,
    }
}

/// The code of an `aero_io` error: what the CLI reports as exit 1 is split
/// into CORRUPT (a failed hash), UNVERIFIABLE (nothing to check against) and
/// FORMAT (malformed or truncated structure).
pub(crate) fn aero_code(e: &aero_io::Error) -> Code {
    use aero_io::Error as E;
    match e {
        E::Io { source, .. } | E::Input { source, .. } => io_kind_code(source),
        E::HashMismatch { .. } | E::Corrupt { .. } | E::InputDamaged { .. } => Code::AERO_E_CORRUPT,
        E::Unverifiable { .. } => Code::AERO_E_UNVERIFIABLE,
        E::NoSuchTensor { .. } => Code::AERO_E_NOT_FOUND,
        E::View { .. } => Code::AERO_E_UNSUPPORTED,
        E::Invalid(_) => Code::AERO_E_INVALID_ARGUMENT,
        E::Format { .. }
        | E::Truncated { .. }
        | E::NotAero { .. }
        | E::Chunk { .. }
        | E::MissingChunk { .. }
        | E::Metadata { .. }
        | E::Tensor { .. } => Code::AERO_E_FORMAT,
        _ => Code::AERO_E_IO,
    }
}

pub(crate) fn set_code(e: &aero_set::SetError) -> Code {
    use aero_set::SetError as E;
    match e {
        E::Aero(a) => aero_code(a),
        E::Io { source, .. } | E::MissingFile { source, .. } => io_kind_code(source),
        // A set whose index and parts contradict each other, or whose bytes
        // fail the global hash_b3, cannot be trusted.
        E::Tensor { .. } => Code::AERO_E_CORRUPT,
        E::Json { .. } | E::Field { .. } | E::File { .. } | E::Invalid(_) => Code::AERO_E_FORMAT,
        E::UnsafePath { .. } | E::RemoteNotAllowed { .. } => Code::AERO_E_REFUSED,
        // Valid input of another kind (a GGUF file, a set where a file is
        // read): not something this call reads.
        E::Unsupported { .. } | E::WrongKind { .. } => Code::AERO_E_UNSUPPORTED,
        E::NoSuchTensor { .. } => Code::AERO_E_NOT_FOUND,
        _ => Code::AERO_E_IO,
    }
}

impl From<aero_io::Error> for CError {
    fn from(e: aero_io::Error) -> CError {
        CError::new(aero_code(&e), e.to_string())
    }
}

impl From<aero_set::SetError> for CError {
    fn from(e: aero_set::SetError) -> CError {
        CError::new(set_code(&e), e.to_string())
    }
}

impl From<aero_convert::state_dict::StateDictError> for CError {
    fn from(e: aero_convert::state_dict::StateDictError) -> CError {
        use aero_convert::state_dict::StateDictError as E;
        let code = match &e {
            E::Aero(a) => aero_code(a),
            E::Set(s) => set_code(s),
            E::Unsupported { .. } => Code::AERO_E_UNSUPPORTED,
            _ => Code::AERO_E_FORMAT,
        };
        CError::new(code, e.to_string())
    }
}

struct Last {
    code: Code,
    message: CString,
}

thread_local! {
    static LAST: RefCell<Last> = RefCell::new(Last {
        code: Code::AERO_OK,
        message: CString::default(),
    });
}

fn c_message(m: &str) -> CString {
    // A C string ends at the first NUL: show embedded ones instead.
    CString::new(m.replace('\0', "\\0")).unwrap_or_default()
}

/// Records the calling thread's last error. Ignored during thread teardown
/// (the thread-local is gone; nobody can read it any more).
pub(crate) fn set_last(code: Code, message: &str) {
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.code = code;
            l.message = c_message(message);
        }
    });
}

/// The calling thread's last error code.
pub(crate) fn last_code() -> Code {
    LAST.try_with(|l| l.try_borrow().map(|l| l.code).unwrap_or(Code::AERO_OK))
        .unwrap_or(Code::AERO_OK)
}

/// The calling thread's last message: valid until the next call that sets
/// or clears it on this thread (the `CString` is only replaced then).
pub(crate) fn last_message_ptr() -> *const std::ffi::c_char {
    LAST.try_with(|l| l.try_borrow().map(|l| l.message.as_ptr()).ok())
        .ok()
        .flatten()
        .unwrap_or(c"".as_ptr())
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

/// Runs an entry point's body: clears the thread's last error, turns an
/// `Err` into the last error and `fallback`, and catches any panic (which
/// must never unwind into C) as [`Code::AERO_E_PANIC`].
pub(crate) fn guard<T>(fallback: T, body: impl FnOnce() -> CResult<T>) -> T {
    set_last(Code::AERO_OK, "");
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_last(e.code, &e.message);
            fallback
        }
        Err(p) => {
            let msg = panic_message(p.as_ref());
            // Dropping the payload may itself panic; never let that out.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(p)));
            set_last(
                Code::AERO_E_PANIC,
                &format!("internal error in aerotensor (a panic, please report it): {msg}"),
            );
            fallback
        }
    }
}

/// For the calls that only read static data (names, the version): catches
/// any panic but leaves the thread's last error as it is, so they can be
/// used while reporting one.
pub(crate) fn pure<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// [`guard`] for calls that return a status: the code as an `int`.
pub(crate) fn status(body: impl FnOnce() -> CResult<()>) -> std::ffi::c_int {
    guard((), body);
    last_code() as std::ffi::c_int
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_aero_e_panic_with_the_message() {
        let v = guard(7u32, || -> CResult<u32> { panic!("boom {}", 42) });
        assert_eq!(v, 7);
        assert_eq!(last_code(), Code::AERO_E_PANIC);
        // SAFETY: the pointer is this thread's live message, NUL-terminated.
        let m = unsafe { std::ffi::CStr::from_ptr(last_message_ptr()) };
        assert!(m.to_str().unwrap().contains("boom 42"), "{m:?}");
        // The next successful call clears it.
        assert_eq!(guard(0u32, || Ok(1)), 1);
        assert_eq!(last_code(), Code::AERO_OK);
    }

    #[test]
    fn embedded_nul_is_shown_not_truncating() {
        set_last(Code::AERO_E_IO, "a\0b");
        // SAFETY: as above.
        let m = unsafe { std::ffi::CStr::from_ptr(last_message_ptr()) };
        assert_eq!(m.to_str().unwrap(), "a\\0b");
    }
}
