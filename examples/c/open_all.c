/*
 * open_all.c — the loader's hot path, timed by `cargo xtask bench capi`:
 * open a file and take a verified zero-copy pointer to every tensor.
 *
 *   open_all MODEL [each|all]
 *
 * each (default): aero_load, then aero_tensor_ptr for every tensor — each
 *   tensor is verified on first access (its hash_b3, pages or shard).
 * all: aero_open with AERO_OPEN_VERIFY_ALL — every weight shard is hashed
 *   once at open on every core; the pointers are then free.
 * Prints the tensor count, the bytes reached and a checksum of one byte per
 * tensor (so the pointers are used).
 */
#include "aerotensor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s MODEL [each|all]\n", argv[0]);
    return 2;
  }
  int all = argc == 3 && strcmp(argv[2], "all") == 0;
  aero_handle_t h;
  if (all) {
    aero_open_options o;
    aero_open_options_init(&o);
    o.flags |= AERO_OPEN_VERIFY_ALL;
    h = aero_open(argv[1], &o);
  } else {
    h = aero_load(argv[1]);
  }
  if (h == NULL) {
    fprintf(stderr, "open_all: %s\n", aero_error_string());
    return 1;
  }
  uint32_t n = aero_tensor_count(h);
  char name[4096];
  uint64_t total = 0;
  unsigned sum = 0;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *p;
    uint64_t len;
    if (aero_tensor_name(h, i, name, sizeof name) != 0 || aero_tensor_ptr(h, name, &p, &len) != 0) {
      fprintf(stderr, "open_all: %s\n", aero_error_string());
      aero_close(h);
      return 1;
    }
    total += len;
    if (len) sum += p[len / 2];
  }
  printf("%" PRIu32 " tensors, %" PRIu64 " bytes verified, checksum %u\n", n, total, sum);
  aero_close(h);
  return 0;
}
