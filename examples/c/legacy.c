/*
 * legacy.c — a program written against the existing aero_capi.h only (no
 * aerotensor.h extensions): it compiles and runs unchanged against
 * libaerotensor. `cargo xtask capi` builds it with an include path that
 * holds nothing but aero_capi.h, links it to the shared and to the static
 * library, and checks its output like load.c's.
 *
 *   legacy MODEL OUT
 *
 * Writes the same tensor/error lines as load.c (bytes from
 * aero_tensor_bytes, compared with aero_tensor_ptr), then loads the state
 * dict and checks every float against its own conversion of the raw bytes.
 *
 * Packed tensors (AERO_DT_PACKED: GGUF quantized blocks such as Q4_K) have
 * no float conversion this program could redo with aero_capi.h alone (the
 * header names no ggml type): the state dict is where the library
 * dequantizes them, and for those the program checks what it can — the
 * call succeeds, one f32 per element of the row-major shape
 * aero_tensor_info gives — and says so in a `packed` line.
 *
 * Exit status: 0 when every tensor was read and every check passed; 1 when
 * a tensor could not be read (damaged: AERO_E_CORRUPT, or unverifiable) or
 * a check failed (stderr says which); 2 on a usage error.
 */
#include "aero_capi.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
static int unreadable = 0;
static int packed = 0;

static void expect(int ok, const char *what, const char *name) {
  if (!ok) {
    fprintf(stderr, "legacy: %s: %s\n", name, what);
    failures++;
  }
}

static uint64_t rd(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static float f16_to_f32(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 0x400), e - 25);
  return (h & 0x8000) ? -v : v;
}

/* The float the state dict must hold for element k of a raw tensor. */
static float as_float(aero_dtype_t dt, const uint8_t *raw, uint64_t k) {
  union { uint32_t u; float f; } c32;
  union { uint64_t u; double d; } c64;
  switch (dt) {
  case AERO_DT_F32: c32.u = (uint32_t)rd(raw + 4 * k, 4); return c32.f;
  case AERO_DT_F16: return f16_to_f32((uint16_t)rd(raw + 2 * k, 2));
  case AERO_DT_BF16: c32.u = (uint32_t)rd(raw + 2 * k, 2) << 16; return c32.f;
  case AERO_DT_F64: c64.u = rd(raw + 8 * k, 8); return (float)c64.d;
  case AERO_DT_I8: return (float)(int8_t)raw[k];
  case AERO_DT_U8: return (float)raw[k];
  case AERO_DT_BOOL: return raw[k] ? 1.0f : 0.0f;
  case AERO_DT_I16: return (float)(int16_t)rd(raw + 2 * k, 2);
  case AERO_DT_U16: return (float)(uint16_t)rd(raw + 2 * k, 2);
  case AERO_DT_I32: return (float)(int32_t)rd(raw + 4 * k, 4);
  case AERO_DT_U32: return (float)(uint32_t)rd(raw + 4 * k, 4);
  case AERO_DT_I64: return (float)(int64_t)rd(raw + 8 * k, 8);
  case AERO_DT_U64: return (float)rd(raw + 8 * k, 8);
  default: return NAN;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL OUT\n", argv[0]);
    return 2;
  }
  FILE *out = fopen(argv[2], "w");
  if (!out) return 1;
  aero_handle_t h = aero_load(argv[1]);
  if (!h) {
    fprintf(stderr, "legacy: %s\n", aero_error_string());
    fclose(out);
    return 1;
  }
  uint32_t n = aero_tensor_count(h);
  fprintf(out, "count\t%" PRIu32 "\n", n);
  char name[256];
  for (uint32_t i = 0; i < n; i++) {
    aero_dtype_t dt;
    int64_t shape[8];
    uint32_t rank;
    uint64_t len;
    if (aero_tensor_name(h, i, name, sizeof name) != 0 ||
        aero_tensor_info(h, name, &dt, shape, &rank, &len) != 0) {
      fprintf(stderr, "legacy: tensor %" PRIu32 ": %s\n", i, aero_error_string());
      failures++;
      continue;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return 1;
    int rc = aero_tensor_bytes(h, name, buf, len);
    if (rc != 0) {
      fprintf(out, "error\t%s\t%d\t%s\n", name, rc, aero_error_string());
      fprintf(stderr, "legacy: %s: cannot be read: %s\n", name, aero_error_string());
      unreadable++;
      const uint8_t *p = NULL;
      uint64_t sz = 0;
      expect(aero_tensor_ptr(h, name, &p, &sz) == rc, "ptr and bytes disagree on a damaged tensor", name);
      free(buf);
      continue;
    }
    const uint8_t *p = NULL;
    uint64_t sz = 0;
    expect(aero_tensor_ptr(h, name, &p, &sz) == 0 && sz == len && (len == 0 || memcmp(p, buf, len) == 0),
           "aero_tensor_ptr differs from aero_tensor_bytes", name);
    fprintf(out, "tensor\t%s\t%d\tlegacy\t%" PRIu32 "\t", name, (int)dt, rank);
    for (uint32_t d = 0; d < rank; d++) fprintf(out, "%s%" PRId64, d ? "," : "", shape[d]);
    fprintf(out, "\t%" PRIu64 "\t", len);
    for (uint64_t b = 0; b < len; b++) fprintf(out, "%02x", buf[b]);
    fputc('\n', out);
    free(buf);
  }

  /* The state dict: every tensor as floats, checked against the raw bytes. */
  aero_state_dict_handle_t sd = aero_load_state_dict(argv[1], 0);
  if (!sd) {
    fprintf(stderr, "legacy: state dict: %s\n", aero_error_string());
    failures++;
  } else {
    uint32_t m = aero_state_dict_tensor_count(sd);
    expect(m == n, "state dict count differs", argv[1]);
    for (uint32_t i = 0; i < m; i++) {
      char sname[256];
      int64_t shape[8];
      uint32_t rank;
      aero_state_dict_dtype_t sdt;
      const void *data;
      uint64_t size;
      int rc = aero_state_dict_get_tensor(sd, i, sname, sizeof sname, shape, &rank, &sdt, &data, &size);
      const uint8_t *raw = NULL;
      uint64_t rlen = 0;
      aero_dtype_t dt;
      int64_t rshape[8];
      uint32_t rrank;
      /* Without name mapping the state dict keeps the index order. */
      if (aero_tensor_name(h, i, name, sizeof name) != 0) {
        failures++;
        continue;
      }
      int rawrc = aero_tensor_ptr(h, name, &raw, &rlen);
      if (rawrc != 0) {
        expect(rc == rawrc, "state dict and aero_tensor_ptr disagree on a damaged tensor", name);
        continue;
      }
      expect(rc == 0 && strcmp(sname, name) == 0, "state dict name", name);
      if (rc != 0) {
        fprintf(stderr, "legacy: state dict %" PRIu32 ": %s\n", i, aero_error_string());
        failures++;
        continue;
      }
      aero_tensor_info(h, sname, &dt, rshape, &rrank, &rlen);
      uint64_t elems = 1;
      for (uint32_t d = 0; d < rank; d++) elems *= (uint64_t)shape[d];
      expect(rank == rrank && memcmp(shape, rshape, rank * sizeof shape[0]) == 0, "shape differs", sname);
      int want_f16 = dt == AERO_DT_F16;
      expect(sdt == (want_f16 ? AERO_SD_F16 : AERO_SD_F32), "float type", sname);
      expect(size == elems * (want_f16 ? 2 : 4), "size", sname);
      if (dt == AERO_DT_PACKED) {
        /* Dequantized by the library (bit for bit what gguf-py gives);
           checked above for type, shape and size only. */
        packed++;
        fprintf(out, "packed\t%s\t%" PRIu64 "\tdequantized by the library to %" PRIu64 " f32 values\n",
                sname, rlen, elems);
        fprintf(out, "sd\t%s\t%d\t%" PRIu64 "\n", sname, (int)sdt, size);
        continue;
      }
      for (uint64_t k = 0; k < elems; k++) {
        float want = as_float(dt, raw, k);
        float got = want_f16 ? f16_to_f32(((const uint16_t *)data)[k]) : ((const float *)data)[k];
        if (!(got == want || (isnan(got) && isnan(want)))) {
          fprintf(stderr, "legacy: %s[%" PRIu64 "]: %g, expected %g\n", sname, k, got, want);
          failures++;
          break;
        }
      }
      fprintf(out, "sd\t%s\t%d\t%" PRIu64 "\n", sname, (int)sdt, size);
    }
    aero_state_dict_free(sd);
  }
  aero_close(h);
  fclose(out);
  if (packed)
    fprintf(stderr,
            "legacy: %d packed (quantized) tensor(s): dequantized by the library's state dict and checked "
            "for type, shape and size; their values are not re-derived here (aero_capi.h names no ggml "
            "type: see aero_tensor_ggml_type_name in aerotensor.h)\n",
            packed);
  if (unreadable)
    fprintf(stderr, "legacy: %d tensor(s) could not be read: %s is damaged or cannot be verified\n", unreadable,
            argv[1]);
  if (failures) fprintf(stderr, "legacy: %d check(s) failed\n", failures);
  return failures || unreadable ? 1 : 0;
}
