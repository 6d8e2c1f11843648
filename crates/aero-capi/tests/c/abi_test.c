/*
 * abi_test.c — every entry point of libaerotensor with hostile arguments:
 * NULL handles, NULL out-pointers, too-small buffers, missing tensors,
 * a damaged file (one weight byte flipped), a truncated file, garbage, a
 * local manifest naming a remote part, and concurrent use of one handle.
 * Each must return an error code with a message, and nothing may crash.
 *
 *   abi_test GOOD FLIPPED TRUNCATED GARBAGE REMOTE_MANIFEST HASH_DEFECT SET_DIR
 *
 * (`cargo xtask capi` makes the damaged inputs and runs this, plainly,
 * under valgrind and built with AddressSanitizer.) Ends with
 * "abi_test: N passed, M failed"; exit 1 if any failed.
 */
#include "aerotensor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed = 0, failed = 0;

static void check(int ok, const char *what, int line) {
  if (ok) {
    passed++;
  } else {
    failed++;
    printf("FAIL line %d: %s (last error %s: \"%s\")\n", line, what,
           aero_error_code_name(aero_last_error_code()), aero_error_string());
  }
}
#define CHECK(cond) check((cond), #cond, __LINE__)

/* The last call failed with `code` and left a non-empty message. */
static int err_is(int code) {
  return (int)aero_last_error_code() == code && aero_error_string() != NULL && aero_error_string()[0] != 0;
}
/* The last call succeeded and cleared the error. */
static int ok_now(void) { return aero_last_error_code() == AERO_OK && aero_error_string()[0] == 0; }
#define EXPECT_ERR(call, code) CHECK((int)(call) == (code) && err_is(code))

static void null_handles(void) {
  char buf[64];
  aero_dtype_t dt;
  int64_t shape[8];
  uint32_t rank;
  uint64_t len;
  const uint8_t *p;
  const void *vp;
  aero_state_dict_dtype_t sdt;
  aero_close(NULL);
  CHECK(ok_now());
  aero_state_dict_free(NULL);
  CHECK(ok_now());
  aero_string_free(NULL);
  aero_open_options_init(NULL);
  CHECK(aero_load(NULL) == NULL && err_is(AERO_E_INVALID_ARGUMENT));
  CHECK(aero_load("") == NULL && err_is(AERO_E_INVALID_ARGUMENT));
  CHECK(aero_open(NULL, NULL) == NULL && err_is(AERO_E_INVALID_ARGUMENT));
  CHECK(aero_load_state_dict(NULL, 1) == NULL && err_is(AERO_E_INVALID_ARGUMENT));
  CHECK(aero_tensor_count(NULL) == 0 && err_is(AERO_E_INVALID_ARGUMENT));
  EXPECT_ERR(aero_tensor_name(NULL, 0, buf, sizeof buf), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_info(NULL, "x", &dt, shape, &rank, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_ptr(NULL, "x", &p, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_bytes(NULL, "x", (uint8_t *)buf, sizeof buf), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_ptr_unverified(NULL, "x", &p, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_verify_all(NULL), AERO_E_INVALID_ARGUMENT);
  CHECK(aero_validate(NULL, AERO_VALIDATE_QUICK, NULL) == AERO_VERDICT_ERROR && err_is(AERO_E_INVALID_ARGUMENT));
  CHECK(aero_tensor_ggml_type_name(NULL, "x") == NULL && err_is(AERO_E_INVALID_ARGUMENT));
  CHECK(aero_state_dict_tensor_count(NULL) == 0 && err_is(AERO_E_INVALID_ARGUMENT));
  EXPECT_ERR(aero_state_dict_get_tensor(NULL, 0, buf, sizeof buf, shape, &rank, &sdt, &vp, &len),
             AERO_E_INVALID_ARGUMENT);
  /* The pure calls never fail and never return NULL. */
  CHECK(strcmp(aero_dtype_name(AERO_DT_F32), "f32") == 0);
  CHECK(strcmp(aero_dtype_name(AERO_DT_PACKED), "packed") == 0);
  CHECK(strcmp(aero_dtype_name(999), "unknown") == 0);
  CHECK(strcmp(aero_error_code_name(AERO_E_CORRUPT), "AERO_E_CORRUPT") == 0);
  CHECK(strcmp(aero_error_code_name(-5), "AERO_E_UNKNOWN") == 0);
  CHECK(aero_version()[0] != 0);
  CHECK(err_is(AERO_E_INVALID_ARGUMENT)); /* ...and left the last error alone */
}

static void good_file(const char *path) {
  aero_handle_t h = aero_load(path);
  CHECK(h != NULL && ok_now());
  if (!h) return;
  uint32_t n = aero_tensor_count(h);
  CHECK(n == 10 && ok_now());
  char name[64];
  aero_dtype_t dt;
  int64_t shape[8];
  uint32_t rank;
  uint64_t len;
  const uint8_t *p, *p2;
  CHECK(aero_tensor_name(h, 0, name, sizeof name) == 0 && ok_now());
  /* Too-small buffers: 0 bytes, 1 byte, exactly the name without its NUL. */
  size_t need = strlen(name) + 1;
  char small[64];
  EXPECT_ERR(aero_tensor_name(h, 0, small, 0), AERO_E_BUFFER_TOO_SMALL);
  small[0] = 'x';
  EXPECT_ERR(aero_tensor_name(h, 0, small, 1), AERO_E_BUFFER_TOO_SMALL);
  CHECK(small[0] == 0); /* an empty string on failure */
  EXPECT_ERR(aero_tensor_name(h, 0, small, need - 1), AERO_E_BUFFER_TOO_SMALL);
  CHECK(aero_tensor_name(h, 0, small, need) == 0 && strcmp(small, name) == 0);
  EXPECT_ERR(aero_tensor_name(h, 0, NULL, 64), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_name(h, n, name, sizeof name), AERO_E_NOT_FOUND);
  EXPECT_ERR(aero_tensor_name(h, UINT32_MAX, name, sizeof name), AERO_E_NOT_FOUND);
  /* NULL out-pointers, one at a time. */
  EXPECT_ERR(aero_tensor_info(h, NULL, &dt, shape, &rank, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_info(h, "big.weight", NULL, shape, &rank, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_info(h, "big.weight", &dt, NULL, &rank, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_info(h, "big.weight", &dt, shape, NULL, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_info(h, "big.weight", &dt, shape, &rank, NULL), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_ptr(h, "big.weight", NULL, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_ptr(h, "big.weight", &p, NULL), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_ptr(h, NULL, &p, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_ptr_unverified(h, "big.weight", NULL, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_tensor_bytes(h, "big.weight", NULL, 16384), AERO_E_INVALID_ARGUMENT);
  /* Good calls. */
  CHECK(aero_tensor_info(h, "big.weight", &dt, shape, &rank, &len) == 0 && ok_now());
  CHECK(dt == AERO_DT_F32 && rank == 2 && shape[0] == 64 && shape[1] == 64 && len == 16384);
  CHECK(aero_tensor_info(h, "scalar", &dt, shape, &rank, &len) == 0 && rank == 0 && dt == AERO_DT_F64);
  CHECK(aero_tensor_ptr(h, "big.weight", &p, &len) == 0 && len == 16384 && p != NULL);
  CHECK(aero_tensor_ptr(h, "big.weight", &p2, &len) == 0 && p2 == p); /* same mapping */
  CHECK(aero_tensor_ptr(h, "empty", &p2, &len) == 0 && len == 0 && p2 != NULL);
  uint8_t *buf = malloc(16384);
  EXPECT_ERR(aero_tensor_bytes(h, "big.weight", buf, 16383), AERO_E_BUFFER_TOO_SMALL);
  CHECK(aero_tensor_bytes(h, "big.weight", buf, 16384) == 0 && memcmp(buf, p, 16384) == 0);
  free(buf);
  /* Missing tensors. */
  EXPECT_ERR(aero_tensor_info(h, "no.such.tensor", &dt, shape, &rank, &len), AERO_E_NOT_FOUND);
  EXPECT_ERR(aero_tensor_ptr(h, "no.such.tensor", &p, &len), AERO_E_NOT_FOUND);
  EXPECT_ERR(aero_tensor_ptr_unverified(h, "no.such.tensor", &p, &len), AERO_E_NOT_FOUND);
  uint8_t one;
  EXPECT_ERR(aero_tensor_bytes(h, "no.such.tensor", &one, 1), AERO_E_NOT_FOUND);
  CHECK(aero_tensor_ggml_type_name(h, "no.such.tensor") == NULL && err_is(AERO_E_NOT_FOUND));
  CHECK(aero_tensor_ggml_type_name(h, "big.weight") == NULL && ok_now());
  EXPECT_ERR(aero_tensor_info(h, "\xff\xfe", &dt, shape, &rank, &len), AERO_E_NOT_FOUND);
  /* Validation. */
  char *report = (char *)1;
  CHECK(aero_validate(h, 42, &report) == AERO_VERDICT_ERROR && err_is(AERO_E_INVALID_ARGUMENT) && report == NULL);
  CHECK(aero_validate(h, AERO_VALIDATE_FULL, &report) == AERO_VERDICT_VALID && report != NULL &&
        strstr(report, "\"verdict\":\"valid\"") != NULL);
  aero_string_free(report);
  CHECK(aero_validate(h, AERO_VALIDATE_QUICK, NULL) == AERO_VERDICT_VALID);
  CHECK(aero_verify_all(h) == AERO_OK);
  aero_close(h);

  /* State dict: NULL out-pointers, small name buffer, out of range. */
  aero_state_dict_handle_t sd = aero_load_state_dict(path, 1);
  CHECK(sd != NULL && ok_now());
  if (!sd) return;
  CHECK(aero_state_dict_tensor_count(sd) == 10);
  aero_state_dict_dtype_t sdt;
  const void *vp;
  char nm[64];
  EXPECT_ERR(aero_state_dict_get_tensor(sd, 0, NULL, 64, shape, &rank, &sdt, &vp, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_state_dict_get_tensor(sd, 0, nm, 64, NULL, &rank, &sdt, &vp, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_state_dict_get_tensor(sd, 0, nm, 64, shape, NULL, &sdt, &vp, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_state_dict_get_tensor(sd, 0, nm, 64, shape, &rank, NULL, &vp, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_state_dict_get_tensor(sd, 0, nm, 64, shape, &rank, &sdt, NULL, &len), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_state_dict_get_tensor(sd, 0, nm, 64, shape, &rank, &sdt, &vp, NULL), AERO_E_INVALID_ARGUMENT);
  EXPECT_ERR(aero_state_dict_get_tensor(sd, 0, nm, 1, shape, &rank, &sdt, &vp, &len), AERO_E_BUFFER_TOO_SMALL);
  EXPECT_ERR(aero_state_dict_get_tensor(sd, 10, nm, 64, shape, &rank, &sdt, &vp, &len), AERO_E_NOT_FOUND);
  for (uint32_t i = 0; i < 10; i++)
    CHECK(aero_state_dict_get_tensor(sd, i, nm, 64, shape, &rank, &sdt, &vp, &len) == 0 && vp != NULL);
  aero_state_dict_free(sd);
}

static void flipped_file(const char *path) {
  /* The metadata is intact, so the file opens; a weight byte is not, and
   * the shard hash (the only one this reference file has) catches it. */
  aero_handle_t h = aero_load(path);
  CHECK(h != NULL);
  if (!h) return;
  const uint8_t *p;
  uint64_t len;
  uint8_t buf[16384];
  EXPECT_ERR(aero_tensor_ptr(h, "big.weight", &p, &len), AERO_E_CORRUPT);
  CHECK(strstr(aero_error_string(), "corrupt") != NULL);
  EXPECT_ERR(aero_tensor_bytes(h, "big.weight", buf, sizeof buf), AERO_E_CORRUPT);
  EXPECT_ERR(aero_tensor_ptr(h, "norm.weight", &p, &len), AERO_E_CORRUPT); /* same shard */
  EXPECT_ERR(aero_verify_all(h), AERO_E_CORRUPT);
  CHECK(aero_validate(h, AERO_VALIDATE_FULL, NULL) == AERO_VERDICT_INVALID);
  /* Only the call named unverified hands the damaged bytes out. */
  CHECK(aero_tensor_ptr_unverified(h, "big.weight", &p, &len) == AERO_OK && len == 16384);
  aero_close(h);
  aero_open_options o;
  aero_open_options_init(&o);
  o.flags = AERO_OPEN_VERIFY_ALL;
  CHECK(aero_open(path, &o) == NULL && err_is(AERO_E_CORRUPT));
  aero_state_dict_handle_t sd = aero_load_state_dict(path, 0);
  CHECK(sd != NULL);
  if (sd) {
    char nm[64];
    int64_t shape[8];
    uint32_t rank;
    aero_state_dict_dtype_t sdt;
    const void *vp;
    EXPECT_ERR(aero_state_dict_get_tensor(sd, 0, nm, 64, shape, &rank, &sdt, &vp, &len), AERO_E_CORRUPT);
    aero_state_dict_free(sd);
  }
}

static void hash_defect(const char *path) {
  /* hash_b3 recorded per tensor: damaged tensors fail, intact ones pass. */
  aero_handle_t h = aero_load(path);
  CHECK(h != NULL);
  if (!h) return;
  const uint8_t *p;
  uint64_t len;
  EXPECT_ERR(aero_tensor_ptr(h, "embed.weight", &p, &len), AERO_E_CORRUPT);
  CHECK(strstr(aero_error_string(), "hash_b3") != NULL);
  CHECK(aero_tensor_ptr(h, "scalar", &p, &len) == 0 && len == 8);
  aero_close(h);
}

static void unopenable(const char *truncated, const char *garbage, const char *remote) {
  CHECK(aero_load(truncated) == NULL && err_is(AERO_E_FORMAT) && strstr(aero_error_string(), "truncated"));
  CHECK(aero_load_state_dict(truncated, 0) == NULL && err_is(AERO_E_FORMAT));
  CHECK(aero_load(garbage) == NULL && err_is(AERO_E_FORMAT));
  CHECK(aero_load("/nonexistent/model.aero") == NULL && err_is(AERO_E_IO));
  CHECK(aero_load("ftp://example.invalid/m.aero") == NULL && err_is(AERO_E_UNSUPPORTED));
  /* A local manifest naming a remote part is refused before any network
   * access unless the caller allows remote parts. */
  CHECK(aero_open(remote, NULL) == NULL && err_is(AERO_E_REFUSED) && strstr(aero_error_string(), "remote"));
  aero_open_options o;
  aero_open_options_init(&o);
  o.struct_size = 0;
  CHECK(aero_open(remote, &o) == NULL && err_is(AERO_E_INVALID_ARGUMENT));
  aero_open_options_init(&o);
  o.flags = 0x80;
  CHECK(aero_open(remote, &o) == NULL && err_is(AERO_E_INVALID_ARGUMENT));
}

struct job {
  aero_handle_t h;
  const uint8_t *p;
  int rc;
};

static void *reader(void *arg) {
  struct job *j = arg;
  uint64_t len;
  for (int k = 0; k < 50 && j->rc == 0; k++) {
    j->rc = aero_tensor_ptr(j->h, "big.weight", &j->p, &len);
    const char *n = aero_error_string(); /* this thread's own: "" */
    if (j->rc == 0 && n[0] != 0) j->rc = -1;
  }
  return NULL;
}

static void threads(const char *set_dir) {
  /* One handle (here an AEROSET), eight threads, the same tensor. */
  aero_handle_t h = aero_open(set_dir, NULL);
  CHECK(h != NULL);
  if (!h) return;
  struct job jobs[8];
  pthread_t t[8];
  for (int i = 0; i < 8; i++) {
    jobs[i].h = h;
    jobs[i].p = NULL;
    jobs[i].rc = 0;
    CHECK(pthread_create(&t[i], NULL, reader, &jobs[i]) == 0);
  }
  /* Meanwhile this thread fails a call: other threads' errors are theirs. */
  const uint8_t *p;
  uint64_t len;
  EXPECT_ERR(aero_tensor_ptr(h, "nope", &p, &len), AERO_E_NOT_FOUND);
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    CHECK(jobs[i].rc == 0 && jobs[i].p == jobs[0].p);
  }
  CHECK(err_is(AERO_E_NOT_FOUND));
  aero_close(h);
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s GOOD FLIPPED TRUNCATED GARBAGE REMOTE_MANIFEST HASH_DEFECT SET_DIR\n", argv[0]);
    return 2;
  }
  null_handles();
  good_file(argv[1]);
  flipped_file(argv[2]);
  unopenable(argv[3], argv[4], argv[5]);
  hash_defect(argv[6]);
  threads(argv[7]);
  printf("abi_test: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
