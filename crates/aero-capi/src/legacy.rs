//! The existing C interface (`aero_capi.h`): same names, same semantics.
//! cbindgen generates `include/aero_capi.h` from this file alone, so it
//! declares nothing else; the extensions are in `ext.rs` / `aerotensor.h`.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use aero_io::DType;

use crate::error::aero_error_code_t as Code;
use crate::error::{CError, CResult, guard, status};
use crate::handle::{HANDLE_MAGIC, Handle, OpenOptions, STATE_DICT_MAGIC, Source, StateHandle};
use crate::util::{arg_name, arg_path, copy_name, out};

/// An opened AERO file or AEROSET (opaque). Create with `aero_load` (or
/// `aero_open` in aerotensor.h), release with `aero_close`.
pub struct aero_handle {
    pub(crate) magic: u64,
    pub(crate) inner: Handle,
}

/// A handle; NULL means "no handle" (`aero_load` failed).
pub type aero_handle_t = *mut aero_handle;

/// A state dict: every tensor of a file as floats (opaque). Create with
/// `aero_load_state_dict`, release with `aero_state_dict_free`.
pub struct aero_state_dict {
    pub(crate) magic: u64,
    pub(crate) inner: StateHandle,
}

/// A state-dict handle; NULL means "no handle".
pub type aero_state_dict_handle_t = *mut aero_state_dict;

/// The live handle behind `h`.
///
/// # Safety
/// `h` must be NULL or a handle from `aero_open`/`aero_load` not yet
/// closed; it is only read.
pub(crate) unsafe fn handle_ref<'a>(h: aero_handle_t) -> CResult<&'a Handle> {
    if h.is_null() {
        return Err(CError::null("handle"));
    }
    // SAFETY: non-null and, per the contract, a live `aero_handle` that
    // outlives this call; we only read it.
    let r = unsafe { &*h };
    if r.magic != HANDLE_MAGIC {
        return Err(CError::invalid(
            "not a live aero_handle_t (closed already, or another kind of pointer)",
        ));
    }
    Ok(&r.inner)
}

/// The live state dict behind `h`.
///
/// # Safety
/// As [`handle_ref`], for `aero_load_state_dict` handles.
pub(crate) unsafe fn state_ref<'a>(h: aero_state_dict_handle_t) -> CResult<&'a StateHandle> {
    if h.is_null() {
        return Err(CError::null("state-dict handle"));
    }
    // SAFETY: non-null and, per the contract, a live `aero_state_dict`.
    let r = unsafe { &*h };
    if r.magic != STATE_DICT_MAGIC {
        return Err(CError::invalid(
            "not a live aero_state_dict_handle_t (freed already, or another kind of pointer)",
        ));
    }
    Ok(&r.inner)
}

/// Element types (AERO dtype codes, spec §5).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum aero_dtype_t {
    AERO_DT_F16 = 0,
    AERO_DT_F32 = 1,
    AERO_DT_BF16 = 2,
    AERO_DT_F64 = 3,
    AERO_DT_I8 = 4,
    AERO_DT_U8 = 5,
    AERO_DT_I16 = 6,
    AERO_DT_U16 = 7,
    AERO_DT_I32 = 8,
    AERO_DT_U32 = 9,
    AERO_DT_I64 = 10,
    AERO_DT_U64 = 11,
    AERO_DT_BOOL = 12,
    /// Quantized or codec bytes (GGUF blocks: see `aero_tensor_ggml_type_name`).
    AERO_DT_PACKED = 0x8000,
}

/// Element type of a state-dict tensor.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum aero_state_dict_dtype_t {
    /// IEEE half precision (2 bytes per element).
    AERO_SD_F16 = 0,
    /// IEEE single precision (4 bytes per element).
    AERO_SD_F32 = 1,
}

pub(crate) fn c_dtype(d: DType) -> Option<aero_dtype_t> {
    use aero_dtype_t::*;
    Some(match d {
        DType::F16 => AERO_DT_F16,
        DType::F32 => AERO_DT_F32,
        DType::BF16 => AERO_DT_BF16,
        DType::F64 => AERO_DT_F64,
        DType::I8 => AERO_DT_I8,
        DType::U8 => AERO_DT_U8,
        DType::I16 => AERO_DT_I16,
        DType::U16 => AERO_DT_U16,
        DType::I32 => AERO_DT_I32,
        DType::U32 => AERO_DT_U32,
        DType::I64 => AERO_DT_I64,
        DType::U64 => AERO_DT_U64,
        DType::Bool => AERO_DT_BOOL,
        DType::Packed => AERO_DT_PACKED,
        DType::Unknown(_) => return None,
    })
}

/// Most dimensions `aero_tensor_info` and `aero_state_dict_get_tensor`
/// write: `shape_out` must hold this many.
pub(crate) const MAX_RANK: usize = 8;

/// Writes `shape` into a caller's 8-element array.
///
/// # Safety
/// `shape_out` must be valid for writing [`MAX_RANK`] `int64_t`s.
unsafe fn write_shape(
    shape: &[u64],
    shape_out: *mut i64,
    rank_out: *mut u32,
) -> Result<(), CError> {
    if shape.len() > MAX_RANK {
        return Err(CError::new(
            Code::AERO_E_UNSUPPORTED,
            format!(
                "rank {} exceeds the {MAX_RANK} dimensions this call returns",
                shape.len()
            ),
        ));
    }
    let dims = shape
        .iter()
        .map(|&d| i64::try_from(d))
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|_| CError::new(Code::AERO_E_UNSUPPORTED, "a dimension exceeds INT64_MAX"))?;
    // SAFETY: the caller guarantees room for MAX_RANK values and
    // dims.len() <= MAX_RANK; the regions cannot overlap our Vec.
    unsafe { ptr::copy_nonoverlapping(dims.as_ptr(), shape_out, dims.len()) };
    // SAFETY: rank_out was checked non-null by the caller of this helper.
    unsafe { rank_out.write(dims.len() as u32) };
    Ok(())
}

/// Opens an AERO file — or an AEROSET manifest or its directory, or an
/// http(s):// URL — checking its header, TOC and string table.
///
/// Returns NULL on failure; `aero_error_string()` says why. Same as
/// `aero_open(path, NULL)`. Release the handle with `aero_close`.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_load(path: *const c_char) -> aero_handle_t {
    guard(ptr::null_mut(), || {
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { arg_path(path, "path") }?;
        let src = Source::open(&path, &OpenOptions::default())?;
        Ok(Box::into_raw(Box::new(aero_handle {
            magic: HANDLE_MAGIC,
            inner: Handle::new(src),
        })))
    })
}

/// Closes a handle and unmaps the file: every pointer obtained through it
/// becomes invalid. NULL is a no-op. No other thread may be using the
/// handle.
///
/// # Safety
/// `h` must be NULL or a handle from `aero_load` / `aero_open` that was
/// not closed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_close(h: aero_handle_t) {
    guard((), || {
        if h.is_null() {
            return Ok(());
        }
        // SAFETY: a live handle, per this function's contract.
        unsafe { handle_ref(h) }?;
        // SAFETY: `h` came from Box::into_raw in aero_open and is closed
        // only once (the contract); clearing the magic makes a second close
        // of the same pointer more likely to be caught than to double-free.
        unsafe {
            (*h).magic = 0;
            drop(Box::from_raw(h));
        }
        Ok(())
    })
}

/// Number of tensors (0 on error, e.g. a NULL handle or a damaged tensor
/// index: check `aero_error_string()`).
///
/// # Safety
/// `h` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_tensor_count(h: aero_handle_t) -> u32 {
    guard(0, || {
        // SAFETY: per this function's contract.
        let h = unsafe { handle_ref(h) }?;
        Ok(u32::try_from(h.source.index()?.len()).unwrap_or(u32::MAX))
    })
}

/// Copies the name of tensor `i` (in index order) into `buffer` as a
/// NUL-terminated UTF-8 string. Returns 0 on success; non-zero (an
/// `aero_error_code_t`) when `i` is out of range, the buffer is too small
/// (it must hold the name and its NUL), or an argument is NULL.
///
/// # Safety
/// `h` must be NULL or a live handle; `buffer` must be NULL or valid for
/// writing `buffer_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_tensor_name(
    h: aero_handle_t,
    i: u32,
    buffer: *mut c_char,
    buffer_size: usize,
) -> c_int {
    status(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { handle_ref(h) }?;
        let idx = h.source.index()?;
        let t = idx.tensors().get(i as usize).ok_or_else(|| {
            CError::new(
                Code::AERO_E_NOT_FOUND,
                format!("no tensor {i}: there are {}", idx.len()),
            )
        })?;
        // SAFETY: per this function's contract.
        unsafe { copy_name(&t.name, buffer, buffer_size) }
    })
}

/// A tensor's dtype, shape (row-major, outermost first; `shape_out` must
/// hold 8 values), rank and byte length. A file from the reference GGUF
/// converter stores shapes in GGUF order and may pad tensors (spec §15,
/// §16.5): the shape is still given row-major and the length is the
/// tensor's own, without the padding. Returns 0 on success; non-zero
/// when the tensor does not exist, an argument is NULL, the rank exceeds 8
/// or the dtype code is not one of `aero_dtype_t`. Nothing is written on
/// failure.
///
/// # Safety
/// `h` must be NULL or a live handle; `name` NULL or NUL-terminated; each
/// out-pointer NULL or valid for writing (8 values for `shape_out`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_tensor_info(
    h: aero_handle_t,
    name: *const c_char,
    dtype_out: *mut aero_dtype_t,
    shape_out: *mut i64,
    rank_out: *mut u32,
    data_len_out: *mut u64,
) -> c_int {
    status(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { handle_ref(h) }?;
        // SAFETY: per this function's contract.
        let name = unsafe { arg_name(name) }?;
        let dtype_out = out(dtype_out, "dtype_out")?;
        let shape_out = out(shape_out, "shape_out")?;
        let rank_out = out(rank_out, "rank_out")?;
        let data_len_out = out(data_len_out, "data_len_out")?;
        let (info, shape, len) = h.source.described(name)?;
        let dt = c_dtype(info.dtype).ok_or_else(|| {
            CError::new(
                Code::AERO_E_UNSUPPORTED,
                format!(
                    "tensor '{name}' has dtype code {}, not one of aero_dtype_t",
                    info.dtype.code()
                ),
            )
        })?;
        // SAFETY: both out-pointers are non-null and, per the contract,
        // valid for 8 dimensions and one u32.
        unsafe { write_shape(&shape, shape_out, rank_out) }?;
        // SAFETY: non-null, valid for writing per the contract.
        unsafe {
            dtype_out.write(dt);
            data_len_out.write(len);
        }
        Ok(())
    })
}

/// A zero-copy pointer to a tensor's bytes, VERIFIED first against the
/// strongest hash the file records for them (its hash_b3, else its pages,
/// else its shard). A damaged tensor is an error (AERO_E_CORRUPT), and a
/// tensor nothing records a hash for is refused (AERO_E_UNVERIFIABLE). The
/// bytes are read-only and stay valid until `aero_close(h)`. Returns 0 on
/// success.
///
/// # Safety
/// `h` must be NULL or a live handle; `name` NULL or NUL-terminated;
/// `data_out`, `size_out` NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_tensor_ptr(
    h: aero_handle_t,
    name: *const c_char,
    data_out: *mut *const u8,
    size_out: *mut u64,
) -> c_int {
    status(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { handle_ref(h) }?;
        // SAFETY: per this function's contract.
        let name = unsafe { arg_name(name) }?;
        let data_out = out(data_out, "data_out")?;
        let size_out = out(size_out, "size_out")?;
        let (p, n) = h.verified_ptr(name)?;
        // SAFETY: non-null, valid for writing per the contract.
        unsafe {
            data_out.write(p);
            size_out.write(n as u64);
        }
        Ok(())
    })
}

/// Copies a tensor's VERIFIED bytes (see `aero_tensor_ptr`) into `buffer`,
/// which must hold at least its `data_len` bytes (`aero_tensor_info`).
/// Exactly `data_len` bytes are written. Returns 0 on success.
///
/// # Safety
/// `h` must be NULL or a live handle; `name` NULL or NUL-terminated;
/// `buffer` NULL or valid for writing `buffer_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_tensor_bytes(
    h: aero_handle_t,
    name: *const c_char,
    buffer: *mut u8,
    buffer_size: u64,
) -> c_int {
    status(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { handle_ref(h) }?;
        // SAFETY: per this function's contract.
        let name = unsafe { arg_name(name) }?;
        let buffer = out(buffer, "buffer")?;
        let (_, _, need) = h.source.described(name)?;
        if need > buffer_size {
            return Err(crate::handle::too_small(
                usize::try_from(need).unwrap_or(usize::MAX),
                usize::try_from(buffer_size).unwrap_or(usize::MAX),
            ));
        }
        let len = usize::try_from(need)
            .map_err(|_| CError::new(Code::AERO_E_UNSUPPORTED, "tensor larger than memory"))?;
        // SAFETY: `buffer` is non-null and, per the contract, valid for
        // writing buffer_size >= len bytes; nothing else aliases it here.
        let dst = unsafe { std::slice::from_raw_parts_mut(buffer, len) };
        h.copy_verified(name, dst)?;
        Ok(())
    })
}

/// The calling thread's last error message; "" after a call that
/// succeeded. Never NULL. The string is owned by the library and valid
/// until the next aero_* call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn aero_error_string() -> *const c_char {
    crate::error::last_message_ptr()
}

/// Opens `path` (as `aero_load` does) and plans its state dict: every
/// tensor as floats. f32 and f16 tensors are kept; bf16, f64, integer and
/// bool tensors become f32; packed GGUF tensors are dequantized to f32.
/// With `apply_gguf_name_mapping` non-zero, llama-family GGUF names become
/// Hugging Face names (`blk.N.attn_q.weight` ->
/// `model.layers.N.self_attn.q_proj.weight`, ...) and llama.cpp's Q/K row
/// permutation is undone. Tensors are verified and converted on first
/// access. NULL on failure. Release with `aero_state_dict_free`.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_load_state_dict(
    path: *const c_char,
    apply_gguf_name_mapping: c_int,
) -> aero_state_dict_handle_t {
    guard(ptr::null_mut(), || {
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { arg_path(path, "path") }?;
        let inner = StateHandle::open(&path, apply_gguf_name_mapping != 0)?;
        Ok(Box::into_raw(Box::new(aero_state_dict {
            magic: STATE_DICT_MAGIC,
            inner,
        })))
    })
}

/// Number of tensors in a state dict (0 on error).
///
/// # Safety
/// `h` must be NULL or a live state-dict handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_state_dict_tensor_count(h: aero_state_dict_handle_t) -> u32 {
    guard(0, || {
        // SAFETY: per this function's contract.
        let h = unsafe { state_ref(h) }?;
        Ok(u32::try_from(h.plan.entries().len()).unwrap_or(u32::MAX))
    })
}

/// Tensor `i` of a state dict: its (mapped) name as a NUL-terminated
/// string in `name_buf`, shape (`shape_out` must hold 8 values), rank,
/// float type, and a pointer to its values (native-endian, aligned for the
/// type) with their size in bytes. The data stays valid until
/// `aero_state_dict_free(h)`. The first access verifies and converts the
/// tensor (an error, e.g. AERO_E_CORRUPT, if its bytes are damaged).
/// Returns 0 on success; nothing is written on failure.
///
/// # Safety
/// `h` must be NULL or a live state-dict handle; `name_buf` NULL or valid
/// for writing `name_size` bytes; other out-pointers NULL or valid for
/// writing (8 values for `shape_out`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_state_dict_get_tensor(
    h: aero_state_dict_handle_t,
    i: u32,
    name_buf: *mut c_char,
    name_size: usize,
    shape_out: *mut i64,
    rank_out: *mut u32,
    dtype_out: *mut aero_state_dict_dtype_t,
    data_ptr_out: *mut *const c_void,
    size_bytes_out: *mut u64,
) -> c_int {
    status(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { state_ref(h) }?;
        let name_buf = out(name_buf, "name_buf")?;
        let shape_out = out(shape_out, "shape_out")?;
        let rank_out = out(rank_out, "rank_out")?;
        let dtype_out = out(dtype_out, "dtype_out")?;
        let data_ptr_out = out(data_ptr_out, "data_ptr_out")?;
        let size_bytes_out = out(size_bytes_out, "size_bytes_out")?;
        let entries = h.plan.entries();
        let e = entries.get(i as usize).ok_or_else(|| {
            CError::new(
                Code::AERO_E_NOT_FOUND,
                format!("no tensor {i}: the state dict has {}", entries.len()),
            )
        })?;
        if e.name.len() >= name_size {
            return Err(CError::new(
                Code::AERO_E_BUFFER_TOO_SMALL,
                format!(
                    "name_buf holds {name_size} bytes; '{}' needs {} with its NUL",
                    e.name,
                    e.name.len() + 1
                ),
            ));
        }
        if e.shape.len() > MAX_RANK {
            return Err(CError::new(
                Code::AERO_E_UNSUPPORTED,
                format!(
                    "rank {} exceeds the {MAX_RANK} dimensions this call returns",
                    e.shape.len()
                ),
            ));
        }
        let (p, n) = h.tensor(i as usize)?;
        // SAFETY: per this function's contract (name_size bytes, checked
        // above to fit the name and its NUL).
        unsafe { copy_name(&e.name, name_buf, name_size) }?;
        // SAFETY: non-null out-pointers, valid per the contract.
        unsafe { write_shape(&e.shape, shape_out, rank_out) }?;
        let dt = match e.dtype {
            aero_convert::state_dict::FloatType::F16 => aero_state_dict_dtype_t::AERO_SD_F16,
            aero_convert::state_dict::FloatType::F32 => aero_state_dict_dtype_t::AERO_SD_F32,
        };
        // SAFETY: non-null out-pointers, valid per the contract.
        unsafe {
            dtype_out.write(dt);
            data_ptr_out.write(p.cast());
            size_bytes_out.write(n as u64);
        }
        Ok(())
    })
}

/// Frees a state dict and every tensor it handed out. NULL is a no-op.
///
/// # Safety
/// `h` must be NULL or a live state-dict handle not used by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aero_state_dict_free(h: aero_state_dict_handle_t) {
    guard((), || {
        if h.is_null() {
            return Ok(());
        }
        // SAFETY: a live handle, per this function's contract.
        unsafe { state_ref(h) }?;
        // SAFETY: `h` came from Box::into_raw in aero_load_state_dict and is
        // freed once (the contract).
        unsafe {
            (*h).magic = 0;
            drop(Box::from_raw(h));
        }
        Ok(())
    })
}
