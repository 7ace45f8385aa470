/* Fuzz target: lfp's HDF5 reader on arbitrary bytes, fed through HDF5's
 * file-image API (ds_open_image: the core driver without a backing store, so
 * nothing on disk is read or written), then everything a command does with a
 * file: ds_load of every low-dim key of the first demo, the train/validation
 * split (ds_split_make), and ds_read_record of the first demos (replay).
 * Invariants: no crash or sanitizer report; every refusal is one non-empty
 * sentence on one line; a loaded dataset agrees with the file's info.
 *
 * Built with clang and -fsanitize=fuzzer (LFP_FUZZ=ON, in the sanitizer
 * build of tools/test.sh) it is libFuzzer's target; CTest runs it for a
 * bounded time from the seeds in tests/fuzz/h5 (written by
 * tests/fuzz/make_h5_corpus.py) with tests/fuzz/h5.dict. Built without
 * libFuzzer it replays files given on the command line (the seeds, or a
 * crash artifact): fuzz_h5 FILE... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_file.h"
#include "ds_seq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a refusal must be one sentence on one line */
static void s_check_err(const char *what, const char *err) {
  if (!err[0] || strchr(err, '\n')) {
    fprintf(stderr, "fuzz_h5: %s failed without a one-line sentence: '%s'\n", what, err);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512] = "";
  ds_file *f = ds_open_image(data, size, "fuzz.hdf5", err, sizeof(err));
  if (!f) {
    s_check_err("ds_open_image", err);
    return 0;
  }
  const ds_info *in = ds_file_info(f);
  const char *keys[8];
  int nk = 0;
  for (int k = 0; k < in->nobs && nk < 8; k++)
    if (in->obs[k].rank <= 1 && in->obs[k].dim > 0) keys[nk++] = in->obs[k].name;
  err[0] = 0;
  ds_dataset *d = ds_load(f, keys, nk, err, sizeof(err));
  if (!d) {
    s_check_err("ds_load", err);
  } else {
    if (d->total != in->total || d->ndemos != in->ndemos || d->action_dim != in->action_dim || d->action_dim < 1) {
      fprintf(stderr, "fuzz_h5: the loaded dataset disagrees with the file's info\n");
      abort();
    }
    ds_split tr, va;
    err[0] = 0;
    if (ds_split_make(d, 0.1, 0, &tr, &va, err, sizeof(err)) == 0) {
      if (tr.samples + va.samples > d->total || tr.samples < 1) {
        fprintf(stderr, "fuzz_h5: splits of %lld + %lld samples from %lld\n", (long long)tr.samples,
                (long long)va.samples, (long long)d->total);
        abort();
      }
      ds_split_free(&tr);
      ds_split_free(&va);
    } else {
      s_check_err("ds_split_make", err);
    }
    ds_dataset_free(d);
  }
  for (int i = 0; i < in->ndemos && i < 3; i++) {
    err[0] = 0;
    ds_record *r = ds_read_record(f, i, err, sizeof(err));
    if (!r) s_check_err("ds_read_record", err);
    ds_record_free(r);
  }
  ds_close(f);
  return 0;
}

#ifndef LFP_LIBFUZZER
int main(int argc, char **argv) {
  int n = 0;
  static uint8_t buf[1 << 20];
  for (int i = 1; i < argc; i++) {
    FILE *fp = fopen(argv[i], "rb");
    if (!fp) {
      fprintf(stderr, "fuzz_h5: cannot open %s\n", argv[i]);
      return 1;
    }
    const size_t len = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, len);
    n++;
  }
  printf("fuzz_h5: %d inputs replayed, no failure\n", n);
  return n > 0 ? 0 : 1;
}
#endif
