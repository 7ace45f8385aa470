/* ds_writer: write Robomimic-style HDF5 files incrementally, one demo at a
 * time, in the layout and types robomimic writes (float64 obs, next_obs,
 * actions, states, rewards; int64 dones; variable-length UTF-8 string
 * attributes; masks as fixed-width byte strings). Datasets of 64 KB and more
 * are chunked, shuffled and deflated; smaller ones are contiguous. HDF5's
 * process-wide error printing is off inside each call and restored before it
 * returns (as in ds_file.h): failures are the err sentence.
 *
 * Crash safety: the file's metadata is held in memory (HDF5's metadata cache
 * with evictions disabled) and written only when a demo is complete
 * (H5Fflush), while a new demo's raw data goes to fresh space past the end
 * of the file. A process killed while writing therefore leaves the file as it
 * was after the last demo that ds_writer_add returned for: every reported
 * demo complete and readable, the partial one absent. (The flush itself
 * takes milliseconds and is not atomic: HDF5 1.10 has no journal.)
 *
 * Example: a file of one demo of T steps with 7-D actions and one 3-D key
 *
 *   int write_one(const char *path, const double *acts, const double *obj, int64_t T, char *err, size_t errsz) {
 *     ds_writer *w = ds_writer_create(path, "{\"env_name\": \"lift\"}", err, errsz);
 *     if (!w) return -1;
 *     ds_obs_data od = {.name = "object", .dim = 3, .obs = obj};
 *     ds_demo_data dd = {.len = T, .action_dim = 7, .actions = acts, .nobs = 1, .obs = &od};
 *     int idx[1] = {0};
 *     int rc = ds_writer_add(w, &dd, err, errsz) < 0 ||              // demo_0, then demo_1, ...
 *              ds_writer_set_mask(w, "train", idx, 1, err, errsz) ? -1 : 0;
 *     if (ds_writer_close(w, rc ? NULL : err, errsz)) rc = -1;
 *     return rc;
 *   }
 */
#ifndef DS_WRITER_H
#define DS_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *name; /* obs key */
  int dim;          /* values per step */
  const double *obs;      /* (len, dim) */
  const double *next_obs; /* (len, dim) or NULL */
} ds_obs_data;

typedef struct {
  int64_t len;            /* steps N > 0 */
  int action_dim;
  const double *actions;  /* (N, A) */
  const double *rewards;  /* (N) or NULL */
  const int64_t *dones;   /* (N) or NULL */
  int state_dim;
  const double *states;   /* (N, S) or NULL */
  int nobs;
  const ds_obs_data *obs;
  const char *model_file; /* MJCF text or NULL */
} ds_demo_data;

typedef struct ds_writer ds_writer;

/* Create (truncate) path with /data, its `total` (0) and `env_args`
 * attributes (env_args may be NULL). */
ds_writer *ds_writer_create(const char *path, const char *env_args, char *err, size_t errsz);
/* Write the next demo (demo_<k>, k = 0, 1, ...) and flush. Returns its index
 * or -1 with err. */
int ds_writer_add(ds_writer *w, const ds_demo_data *demo, char *err, size_t errsz);
/* Write /mask/<name> = the names of demos idx[0..n) (fixed-width strings). */
int ds_writer_set_mask(ds_writer *w, const char *name, const int *idx, int n, char *err, size_t errsz);
/* Demos written so far. */
int ds_writer_count(const ds_writer *w);
/* Called after each dataset of a demo is written (progress reporting; tests
 * use it to stop a writer in the middle of a demo). */
void ds_writer_on_dataset(ds_writer *w, void (*fn)(void *ctx, int demo, const char *dataset), void *ctx);
/* Flush and close; frees w. 0 or -1 with err (w is freed either way). */
int ds_writer_close(ds_writer *w, char *err, size_t errsz);

#endif
