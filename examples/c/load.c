/*
 * load.c — a loader adapter in C, in the adoption guide's four steps
 * (discovery, tensors, integrity, weights), against libaerotensor.
 *
 *   load MODEL OUT
 *
 * MODEL is a .aero file, an AEROSET (its directory or model.aeroset.json)
 * or an http(s):// URL. OUT receives one line per tensor,
 *   tensor<TAB>name<TAB>dtype<TAB>dtype-name<TAB>rank<TAB>d0,d1,..<TAB>len<TAB>hex bytes
 * or, when a tensor's bytes fail verification,
 *   error<TAB>name<TAB>code<TAB>message
 * (`cargo xtask capi` checks OUT against the golden files' BLAKE3s).
 * Exit status: 0 when every step ran (damaged tensors are reported in OUT),
 * 1 when the model cannot be opened or OUT cannot be written, 2 on usage.
 */
#include "aerotensor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *verdict_name(aero_verdict_t v) {
  switch (v) {
  case AERO_VERDICT_VALID: return "valid";
  case AERO_VERDICT_VALID_WITH_WARNINGS: return "valid-with-warnings";
  case AERO_VERDICT_INVALID: return "invalid";
  default: return "error";
  }
}

/* The name of tensor i in a buffer that grows until it fits (the
 * AERO_E_BUFFER_TOO_SMALL protocol). Returns 0 on success. */
static int tensor_name(aero_handle_t h, uint32_t i, char **buf, size_t *cap) {
  for (;;) {
    int rc = aero_tensor_name(h, i, *buf, *cap);
    if (rc != AERO_E_BUFFER_TOO_SMALL) return rc;
    size_t bigger = *cap * 2;
    char *p = realloc(*buf, bigger);
    if (p == NULL) return AERO_E_IO;
    *buf = p;
    *cap = bigger;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL OUT\n", argv[0]);
    return 2;
  }
  FILE *out = fopen(argv[2], "w");
  if (out == NULL) {
    perror(argv[2]);
    return 1;
  }
  printf("libaerotensor %s\n", aero_version());

  /* 1. Discovery: header, TOC, string table (and for a set, its manifest
   *    and index file). Quick validation checks the metadata chunks. */
  aero_open_options opts;
  aero_open_options_init(&opts);
  opts.flags |= AERO_OPEN_NO_CACHE;
  aero_handle_t h = aero_open(argv[1], &opts);
  if (h == NULL) {
    fprintf(stderr, "load: %s: %s (%s)\n", argv[1], aero_error_string(),
            aero_error_code_name(aero_last_error_code()));
    fclose(out);
    return 1;
  }
  char *report = NULL;
  aero_verdict_t quick = aero_validate(h, AERO_VALIDATE_QUICK, &report);
  printf("discovery: %s, quick validation %s (%zu bytes of JSON report)\n", argv[1],
         verdict_name(quick), report ? strlen(report) : (size_t)0);
  aero_string_free(report);

  /* 2. Tensors: name, dtype, shape, byte length of each. */
  uint32_t n = aero_tensor_count(h);
  fprintf(out, "count\t%" PRIu32 "\n", n);
  printf("tensors: %" PRIu32 "\n", n);
  size_t cap = 8; /* small on purpose: names longer than 7 bytes grow it */
  char *name = malloc(cap);
  if (name == NULL) return 1;
  for (uint32_t i = 0; i < n; i++) {
    if (tensor_name(h, i, &name, &cap) != 0) {
      fprintf(stderr, "load: tensor %" PRIu32 ": %s\n", i, aero_error_string());
      continue;
    }
    aero_dtype_t dt;
    int64_t shape[8];
    uint32_t rank = 0;
    uint64_t len = 0;
    if (aero_tensor_info(h, name, &dt, shape, &rank, &len) != 0) {
      fprintf(stderr, "load: %s: %s\n", name, aero_error_string());
      continue;
    }
    const char *ggml = aero_tensor_ggml_type_name(h, name);
    printf("  %-16s %-6s rank %" PRIu32 " %" PRIu64 " bytes%s%s\n", name,
           aero_dtype_name((uint32_t)dt), rank, len, ggml ? " ggml " : "", ggml ? ggml : "");
  }

  /* 3. Integrity: every chunk, every weight shard, every tensor and page
   *    hash the file records. */
  report = NULL;
  aero_verdict_t full = aero_validate(h, AERO_VALIDATE_FULL, &report);
  printf("integrity: full validation %s\n", verdict_name(full));
  aero_string_free(report);

  /* 4. Weights: a zero-copy pointer into the mapping, handed out only
   *    after the bytes verified against the file's strongest hash. */
  for (uint32_t i = 0; i < n; i++) {
    if (tensor_name(h, i, &name, &cap) != 0) continue;
    aero_dtype_t dt;
    int64_t shape[8];
    uint32_t rank = 0;
    uint64_t len = 0;
    if (aero_tensor_info(h, name, &dt, shape, &rank, &len) != 0) continue;
    const uint8_t *data = NULL;
    uint64_t size = 0;
    if (aero_tensor_ptr(h, name, &data, &size) != 0) {
      fprintf(out, "error\t%s\t%d\t%s\n", name, (int)aero_last_error_code(), aero_error_string());
      printf("  %s: %s\n", name, aero_error_code_name(aero_last_error_code()));
      continue;
    }
    fprintf(out, "tensor\t%s\t%d\t%s\t%" PRIu32 "\t", name, (int)dt, aero_dtype_name((uint32_t)dt),
            rank);
    for (uint32_t d = 0; d < rank; d++)
      fprintf(out, "%s%" PRId64, d ? "," : "", shape[d]);
    fprintf(out, "\t%" PRIu64 "\t", size);
    for (uint64_t b = 0; b < size; b++) fprintf(out, "%02x", data[b]);
    fputc('\n', out);
  }
  printf("weights: written to %s\n", argv[2]);

  free(name);
  aero_close(h);
  if (fclose(out) != 0) {
    perror(argv[2]);
    return 1;
  }
  return 0;
}
