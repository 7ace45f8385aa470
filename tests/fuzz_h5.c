/* Fuzz target: lfp's HDF5 reader on arbitrary bytes, fed through HDF5's
 * file-image API (ds_open_image: the core driver without a backing store, so
 * nothing on disk is read or written), then everything a command does with a
 * file: ds_load of every low-dim key of the first demo, the train/validation
 * split (ds_split_make), and ds_read_record of the first demos (replay).
 * Invariants: no crash or sanitizer report; every refusal is one non-empty
 * sentence on one line; a loaded dataset agrees with the file's info.
 *
 * Two bugs of libhdf5 1.10.8 are stepped around, not fixed. A heap ID (the
 * stored reference of a variable-length string: length, collection address,
 * object index) is trusted: H5HG_read indexes the collection's object table
 * with the index guarded only by an assert, so an index the collection
 * lacks reads past the table (SEGV in H5HG_read <- H5T__conv_vlen <-
 * H5Aread / H5Dread), and H5T__conv_vlen allocates the length before
 * reading (a 4 GiB string from 16 bytes). Heap IDs are not visible through
 * HDF5's API (an attribute's value lies in an object header lfp does not
 * parse), so lfp cannot check them first; the collections' sizes, which lfp
 * can check, it does (ds_file.c, s_gheaps_check). Inputs that hold a
 * collection's address with an index it lacks or a length beyond the object
 * (s_hdf5_heap_id_bugs) are skipped, so that the bounded run tests lfp
 * instead of finding these again in its first seconds. The pattern is found
 * by bytes, so it also skips some inputs that would not crash.
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

static uint64_t s_le(const uint8_t *p, size_t w) {
  uint64_t v = 0;
  for (size_t i = 0; i < w; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Could the bytes reach libhdf5's heap-ID bugs (see the top)? With the
 * widths of lengths and addresses of the superblock at byte 0: for each
 * well-formed "GCOL" collection (ds_open refuses the others before reading
 * one), the sizes of its objects, then every place its address is followed
 * by a 4-byte index it does not hold, or preceded by a 4-byte length larger
 * than that object. */
static int s_hdf5_heap_id_bugs(const uint8_t *b, size_t n) {
  static uint8_t has[65536 / 8];
  static uint64_t osize[65536];
  if (n < 16) return 0;
  const size_t sa = b[8] < 2 ? b[13] : b[9], ss = b[8] < 2 ? b[14] : b[10];
  if ((sa != 2 && sa != 4 && sa != 8) || (ss != 2 && ss != 4 && ss != 8)) return 0; /* HDF5 refuses it */
  for (size_t a = 0; a + 8 + ss <= n; a++) {
    if (memcmp(b + a, "GCOL\x01", 5)) continue;
    memset(has, 0, sizeof(has));
    const uint64_t size = s_le(b + a + 8, ss);
    int ok = size >= 4096 && size <= n - a;
    for (uint64_t q = 8 + ss; ok && q + 8 + ss <= size;) {
      const unsigned idx = (unsigned)s_le(b + a + q, 2);
      const uint64_t osz = s_le(b + a + q + 8, ss);
      const uint64_t need = idx ? 8 + ss + ((osz + 7) & ~(uint64_t)7) : osz;
      ok = osz <= size - q && need > 0 && need <= size - q;
      has[idx / 8] |= (uint8_t)(1u << (idx % 8));
      osize[idx] = osz;
      q += need;
    }
    for (size_t p = 0; ok && p + sa + 4 <= n; p++) {
      if (s_le(b + p, sa) != a) continue;
      const uint64_t idx = s_le(b + p + sa, 4);
      if (idx == 0 || idx > 65535 || !(has[idx / 8] & (1u << (idx % 8)))) return 1;
      if (p >= 4 && s_le(b + p - 4, 4) > osize[idx]) return 1;
    }
  }
  return 0;
}

/* a refusal must be one sentence on one line */
static void s_check_err(const char *what, const char *err) {
  if (!err[0] || strchr(err, '\n')) {
    fprintf(stderr, "fuzz_h5: %s failed without a one-line sentence: '%s'\n", what, err);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (s_hdf5_heap_id_bugs(data, size)) return 0;
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
