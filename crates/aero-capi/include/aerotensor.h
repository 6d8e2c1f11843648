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

#ifndef AEROTENSOR_H
#define AEROTENSOR_H

/* Generated from crates/aero-capi/src/ext.rs by `cargo xtask capi-header` (cbindgen). Do not edit. */

#include <stddef.h>
#include <stdint.h>
#include "aero_capi.h"

/*
 `aero_open_options.flags`: a local AEROSET manifest may name remote
 (http(s)://) parts or a base_url. Off by default, as `--remote` is on
 the command line: a local file should not make the loader fetch from
 the network unless asked to.
 */
#define AERO_OPEN_ALLOW_REMOTE_PARTS 1

/*
 `aero_open_options.flags`: do not read or write the remote range cache.
 */
#define AERO_OPEN_NO_CACHE 2

/*
 `aero_open_options.flags`: hash every weight shard once at open, on
 every core (fails with AERO_E_CORRUPT if one does not match). Afterwards
 verified pointers to tensors of a local file cost nothing: what a
 loader that reads every tensor wants. Without it each tensor is
 verified on first access.
 */
#define AERO_OPEN_VERIFY_ALL 4

/*
 What went wrong in the last call on this thread
 (`aero_last_error_code`). Calls returning `int` return these values
 (0 = AERO_OK).
 */
typedef enum aero_error_code_t {
  /*
   Success.
   */
  AERO_OK = 0,
  /*
   An operating-system or network error (missing file, permission,
   connection refused).
   */
  AERO_E_IO = 1,
  /*
   Bytes failed their hash (a tensor's hash_b3, a page, a shard, a
   metadata chunk): the file is damaged. Nothing was handed out.
   */
  AERO_E_CORRUPT = 2,
  /*
   Nothing in the file records a hash for the requested bytes; only the
   `*_unverified` calls hand them out.
   */
  AERO_E_UNVERIFIABLE = 3,
  /*
   No tensor of that name (or index).
   */
  AERO_E_NOT_FOUND = 4,
  /*
   A NULL or otherwise invalid argument.
   */
  AERO_E_INVALID_ARGUMENT = 5,
  /*
   The caller's buffer is too small; the message says how large it
   must be.
   */
  AERO_E_BUFFER_TOO_SMALL = 6,
  /*
   Valid, but not something this call or build can do (a URL scheme, a
   rank above 8, a dtype that has no float form, ...).
   */
  AERO_E_UNSUPPORTED = 7,
  /*
   An internal error (a caught panic); the handle may still be used.
   */
  AERO_E_PANIC = 8,
  /*
   The file is malformed or truncated (header, TOC, tensor index, a
   manifest), or not an AERO file at all.
   */
  AERO_E_FORMAT = 9,
  /*
   Refused by the trust rules: a local AEROSET manifest naming remote
   parts without AERO_OPEN_ALLOW_REMOTE_PARTS, or a manifest path
   leaving the set's directory.
   */
  AERO_E_REFUSED = 10,
} aero_error_code_t;

/*
 The outcome of `aero_validate`.
 */
typedef enum aero_verdict_t {
  /*
   Validation could not run (NULL handle, bad mode): see
   `aero_last_error_code`.
   */
  AERO_VERDICT_ERROR = -1,
  /*
   Everything checked passed.
   */
  AERO_VERDICT_VALID = 0,
  /*
   Nothing failed, but something could not be checked (a hash that was
   never recorded).
   */
  AERO_VERDICT_VALID_WITH_WARNINGS = 1,
  /*
   Something failed: the report says what.
   */
  AERO_VERDICT_INVALID = 2,
} aero_verdict_t;

/*
 Options for `aero_open`. Fill with `aero_open_options_init`, then set
 fields: `struct_size` lets later versions add fields without breaking
 programs built against this one.
 */
typedef struct aero_open_options {
  /*
   `sizeof(aero_open_options)` as the caller was compiled.
   */
  uint32_t struct_size;
  /*
   AERO_OPEN_* bits.
   */
  uint32_t flags;
  /*
   Directory of the remote range cache; NULL for `$AEROTENSOR_CACHE_DIR`
   or `~/.cache/aerotensor`. Read during `aero_open` only.
   */
  const char *cache_dir;
} aero_open_options;

/*
 How much `aero_validate` checks (an `int`, one of the AERO_VALIDATE_*
 values).
 */
typedef int aero_validate_mode_t;

/*
 Metadata chunks, tensor table, control-plane hash (no weight bytes).
 */
#define AERO_VALIDATE_QUICK 0

/*
 Everything: every weight shard, every hash_b3, every page hash.
 */
#define AERO_VALIDATE_FULL 1

/*
 The IHSH control-plane hash only.
 */
#define AERO_VALIDATE_CONTROL 2

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/*
 Sets `*opts` to the defaults: `struct_size` filled in, no flags, no
 cache directory. NULL is a no-op.

 # Safety
 `opts` must be NULL or valid for writing one `aero_open_options`.
 */
void aero_open_options_init(struct aero_open_options *opts);

/*
 Opens a `.aero` file, an AEROSET (its `model.aeroset.json` or the
 directory holding it) or an `http(s)://` URL of either (a manifest URL
 ends in `.json`, or in `/` for its directory), with the command line's
 trust rules: a local manifest may name remote parts only with
 AERO_OPEN_ALLOW_REMOTE_PARTS, manifest paths never leave the set's
 directory, and every tensor byte handed out is verified. `opts` may be
 NULL for the defaults. Returns NULL on failure (`aero_last_error_code`,
 `aero_error_string`). Release with `aero_close`.

 # Safety
 `path_or_url` must be NULL or NUL-terminated; `opts` NULL or an
 initialised `aero_open_options` (see `aero_open_options_init`).
 */
aero_handle_t aero_open(const char *path_or_url, const struct aero_open_options *opts);

/*
 Hashes every weight shard of the file (every part of a set) once, on
 every core, as AERO_OPEN_VERIFY_ALL does at open. Returns AERO_OK, or
 AERO_E_CORRUPT naming the first shard that does not match.

 # Safety
 `h` must be NULL or a live handle.
 */
enum aero_error_code_t aero_verify_all(aero_handle_t h);

/*
 Validates the file or set: `mode` is AERO_VALIDATE_QUICK, _FULL or
 _CONTROL. Returns the verdict. When `report_json_out` is not NULL it
 receives the report as JSON (the `aerotensor validate --json` schema),
 a string the caller frees with `aero_string_free`; on
 AERO_VERDICT_ERROR it is set to NULL.

 # Safety
 `h` must be NULL or a live handle; `report_json_out` NULL or valid for
 writing one pointer.
 */
enum aero_verdict_t aero_validate(aero_handle_t h,
                                  aero_validate_mode_t mode,
                                  char **report_json_out);

/*
 Frees a string the library allocated for the caller (the report of
 `aero_validate`). NULL is a no-op.

 # Safety
 `s` must be NULL or a string from this library not freed yet.
 */
void aero_string_free(char *s);

/*
 A zero-copy pointer to a tensor's bytes WITHOUT verifying them (unless
 an earlier verified call on this handle already did): for files whose
 hashes are missing (AERO_E_UNVERIFIABLE from `aero_tensor_ptr`) or that
 the caller trusts. Damaged bytes are handed out as they are. Valid until
 `aero_close(h)`.

 # Safety
 `h` must be NULL or a live handle; `name` NULL or NUL-terminated;
 `data_out`, `size_out` NULL or valid for writing.
 */
enum aero_error_code_t aero_tensor_ptr_unverified(aero_handle_t h,
                                                  const char *name,
                                                  const uint8_t **data_out,
                                                  uint64_t *size_out);

/*
 The name of a dtype code ("f16", "f32", "bf16", ..., "packed"), or
 "unknown". Never NULL; a static string. Leaves the last error as it is.
 */
const char *aero_dtype_name(uint32_t dtype);

/*
 The ggml type name ("Q4_K", "Q8_0", ...) of a packed tensor converted
 from GGUF (its `quant_params.ggml_type`): a static string. NULL when the
 tensor has none (then `aero_last_error_code()` is AERO_OK) or on error
 (AERO_E_NOT_FOUND, ...).

 # Safety
 `h` must be NULL or a live handle; `name` NULL or NUL-terminated.
 */
const char *aero_tensor_ggml_type_name(aero_handle_t h, const char *name);

/*
 The calling thread's last error code: AERO_OK after a call that
 succeeded. Leaves the last error as it is.
 */
enum aero_error_code_t aero_last_error_code(void);

/*
 The name of an error code ("AERO_E_CORRUPT"), or "AERO_E_UNKNOWN".
 Never NULL; a static string. Leaves the last error as it is.
 */
const char *aero_error_code_name(int code);

/*
 The library's version ("0.3.0"), a static string. Leaves the last
 error as it is.
 */
const char *aero_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* AEROTENSOR_H */
