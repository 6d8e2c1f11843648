/*
 * aerotensor C ABI — AERO model-weight containers (libaerotensor).
 * Link: pkg-config --cflags --libs aerotensor, or -I<include> -L<lib> -laerotensor.
 *
 * Ownership and lifetimes:
 *  - A handle (aero_load / aero_open, aero_load_state_dict) is owned by the
 *    caller and released exactly once with aero_close / aero_state_dict_free
 *    (NULL is a no-op). Every pointer obtained through a handle (tensor
 *    data, state-dict data) stays valid, read-only and unchanged until then.
 *  - Strings the library allocates for the caller (the report of
 *    aero_validate) are freed with aero_string_free.
 *  - aero_error_string(), aero_dtype_name(), aero_version() and the ggml and
 *    error-code names are owned by the library: never free them.
 *    aero_error_string() is valid until the next aero_* call on the same thread.
 *  - Input strings (paths, names) are only read during the call.
 *
 * Errors: functions returning int return 0 on success and an error code
 * (aero_error_code_t in aerotensor.h) on failure; functions returning a
 * handle or pointer return NULL. Every call first clears the calling
 * thread's last error, then sets it on failure: aero_error_string() (never
 * NULL, "" after success). Nothing is written to out-parameters on failure.
 *
 * Trust: every tensor byte handed out is first verified against the
 * strongest hash the file records for it (hash_b3, page hashes, or the
 * shard hash); damaged bytes are an error, never data. Only calls named
 * *_unverified skip that.
 *
 * Threads: handles may be used from several threads at once (the library
 * synchronises internally). Closing a handle while another thread uses it
 * is the caller's error.
 */

#ifndef AERO_CAPI_H
#define AERO_CAPI_H

/* Generated from crates/aero-capi/src/legacy.rs by `cargo xtask capi-header` (cbindgen). Do not edit. */

#include <stddef.h>
#include <stdint.h>

/*
 Element types (AERO dtype codes, spec §5).
 */
typedef enum aero_dtype_t {
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
  /*
   Quantized or codec bytes (GGUF blocks: see `aero_tensor_ggml_type_name`).
   */
  AERO_DT_PACKED = 32768,
} aero_dtype_t;

/*
 Element type of a state-dict tensor.
 */
typedef enum aero_state_dict_dtype_t {
  /*
   IEEE half precision (2 bytes per element).
   */
  AERO_SD_F16 = 0,
  /*
   IEEE single precision (4 bytes per element).
   */
  AERO_SD_F32 = 1,
} aero_state_dict_dtype_t;

/*
 An opened AERO file or AEROSET (opaque). Create with `aero_load` (or
 `aero_open` in aerotensor.h), release with `aero_close`.
 */
typedef struct aero_handle aero_handle;

/*
 A state dict: every tensor of a file as floats (opaque). Create with
 `aero_load_state_dict`, release with `aero_state_dict_free`.
 */
typedef struct aero_state_dict aero_state_dict;

/*
 A handle; NULL means "no handle" (`aero_load` failed).
 */
typedef struct aero_handle *aero_handle_t;

/*
 A state-dict handle; NULL means "no handle".
 */
typedef struct aero_state_dict *aero_state_dict_handle_t;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/*
 Opens an AERO file — or an AEROSET manifest or its directory, or an
 http(s):// URL — checking its header, TOC and string table.

 Returns NULL on failure; `aero_error_string()` says why. Same as
 `aero_open(path, NULL)`. Release the handle with `aero_close`.

 # Safety
 `path` must be NULL or a NUL-terminated string.
 */
aero_handle_t aero_load(const char *path);

/*
 Closes a handle and unmaps the file: every pointer obtained through it
 becomes invalid. NULL is a no-op. No other thread may be using the
 handle.

 # Safety
 `h` must be NULL or a handle from `aero_load` / `aero_open` that was
 not closed yet.
 */
void aero_close(aero_handle_t h);

/*
 Number of tensors (0 on error, e.g. a NULL handle or a damaged tensor
 index: check `aero_error_string()`).

 # Safety
 `h` must be NULL or a live handle.
 */
uint32_t aero_tensor_count(aero_handle_t h);

/*
 Copies the name of tensor `i` (in index order) into `buffer` as a
 NUL-terminated UTF-8 string. Returns 0 on success; non-zero (an
 `aero_error_code_t`) when `i` is out of range, the buffer is too small
 (it must hold the name and its NUL), or an argument is NULL.

 # Safety
 `h` must be NULL or a live handle; `buffer` must be NULL or valid for
 writing `buffer_size` bytes.
 */
int aero_tensor_name(aero_handle_t h, uint32_t i, char *buffer, size_t buffer_size);

/*
 A tensor's dtype, shape (row-major, outermost first; `shape_out` must
 hold 8 values), rank and byte length. A file from the reference GGUF
 converter stores shapes in GGUF order and may pad tensors (spec §15,
 §16.5): the shape is still given row-major and the length is the
 tensor's own, without the padding. Returns 0 on success; non-zero
 when the tensor does not exist, an argument is NULL, the rank exceeds 8
 or the dtype code is not one of `aero_dtype_t`. Nothing is written on
 failure.

 # Safety
 `h` must be NULL or a live handle; `name` NULL or NUL-terminated; each
 out-pointer NULL or valid for writing (8 values for `shape_out`).
 */
int aero_tensor_info(aero_handle_t h,
                     const char *name,
                     enum aero_dtype_t *dtype_out,
                     int64_t *shape_out,
                     uint32_t *rank_out,
                     uint64_t *data_len_out);

/*
 A zero-copy pointer to a tensor's bytes, VERIFIED first against the
 strongest hash the file records for them (its hash_b3, else its pages,
 else its shard). A damaged tensor is an error (AERO_E_CORRUPT), and a
 tensor nothing records a hash for is refused (AERO_E_UNVERIFIABLE). The
 bytes are read-only and stay valid until `aero_close(h)`. Returns 0 on
 success.

 # Safety
 `h` must be NULL or a live handle; `name` NULL or NUL-terminated;
 `data_out`, `size_out` NULL or valid for writing.
 */
int aero_tensor_ptr(aero_handle_t h,
                    const char *name,
                    const uint8_t **data_out,
                    uint64_t *size_out);

/*
 Copies a tensor's VERIFIED bytes (see `aero_tensor_ptr`) into `buffer`,
 which must hold at least its `data_len` bytes (`aero_tensor_info`).
 Exactly `data_len` bytes are written. Returns 0 on success.

 # Safety
 `h` must be NULL or a live handle; `name` NULL or NUL-terminated;
 `buffer` NULL or valid for writing `buffer_size` bytes.
 */
int aero_tensor_bytes(aero_handle_t h, const char *name, uint8_t *buffer, uint64_t buffer_size);

/*
 The calling thread's last error message; "" after a call that
 succeeded. Never NULL. The string is owned by the library and valid
 until the next aero_* call on this thread.
 */
const char *aero_error_string(void);

/*
 Opens `path` (as `aero_load` does) and plans its state dict: every
 tensor as floats. f32 and f16 tensors are kept; bf16, f64, integer and
 bool tensors become f32; packed GGUF tensors are dequantized to f32.
 With `apply_gguf_name_mapping` non-zero, llama-family GGUF names become
 Hugging Face names (`blk.N.attn_q.weight` ->
 `model.layers.N.self_attn.q_proj.weight`, ...) and llama.cpp's Q/K row
 permutation is undone. Tensors are verified and converted on first
 access. NULL on failure. Release with `aero_state_dict_free`.

 # Safety
 `path` must be NULL or a NUL-terminated string.
 */
aero_state_dict_handle_t aero_load_state_dict(const char *path, int apply_gguf_name_mapping);

/*
 Number of tensors in a state dict (0 on error).

 # Safety
 `h` must be NULL or a live state-dict handle.
 */
uint32_t aero_state_dict_tensor_count(aero_state_dict_handle_t h);

/*
 Tensor `i` of a state dict: its (mapped) name as a NUL-terminated
 string in `name_buf`, shape (`shape_out` must hold 8 values), rank,
 float type, and a pointer to its values (native-endian, aligned for the
 type) with their size in bytes. The data stays valid until
 `aero_state_dict_free(h)`. The first access verifies and converts the
 tensor (an error, e.g. AERO_E_CORRUPT, if its bytes are damaged).
 Returns 0 on success; nothing is written on failure.

 # Safety
 `h` must be NULL or a live state-dict handle; `name_buf` NULL or valid
 for writing `name_size` bytes; other out-pointers NULL or valid for
 writing (8 values for `shape_out`).
 */
int aero_state_dict_get_tensor(aero_state_dict_handle_t h,
                               uint32_t i,
                               char *name_buf,
                               size_t name_size,
                               int64_t *shape_out,
                               uint32_t *rank_out,
                               enum aero_state_dict_dtype_t *dtype_out,
                               const void **data_ptr_out,
                               uint64_t *size_bytes_out);

/*
 Frees a state dict and every tensor it handed out. NULL is a no-op.

 # Safety
 `h` must be NULL or a live state-dict handle not used by another thread.
 */
void aero_state_dict_free(aero_state_dict_handle_t h);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* AERO_CAPI_H */
