/* ds_norm: per-dimension normalization statistics, fitted on the training
 * split, saved inside policy checkpoints and applied identically at
 * inference.
 *   min-max (Diffusion Policy's choice): y = 2 (x - lo) / (hi - lo) - 1, in [-1, 1]
 *   mean/std:                            y = (x - mean) / std
 * A dimension that is constant on the training split (range or std below
 * 1e-6) maps to y = x - lo (0 on the training data): no division by zero.
 * Both are stored as y = (x - offset) * scale. Mean and variance are
 * accumulated with Welford's update (no E[x^2] - mean^2 cancellation).
 *
 * Checkpoint section (format 2, see fc_ckpt.h): u32 section version (1),
 * i32 dim (1..DS_NORM_MAX_DIM), i32 kind, then f32[dim] each of scale,
 * offset, lo, hi, mean, std. Format-1 sections (the struct written raw,
 * arrays 512 wide) still load.
 *
 * Example: statistics of raw rows (with a dataset and its training split: ds_norm_fit)
 *
 *   #include "fc_ckpt.h"                              // the checkpoint writer
 *
 *   int norm_example(void) {
 *     char err[256];
 *     float x[4 * 2] = {0, 1, 2, 3, 4, 5, 6, 7};      // 4 rows of 2 values
 *     ds_norm an;
 *     if (ds_norm_fit_rows(&an, DS_NORM_MINMAX, x, 4, 2, err, sizeof err)) puts(err);
 *     ds_norm_apply(&an, x, 4);                        // x now in [-1, 1]
 *     ds_norm_invert(&an, x, 4);                       // and back
 *     fc_ckpt_writer *w = fc_ckpt_writer_new("policy");
 *     ds_norm_save(&an, w, "norm.actions");
 *     fc_ckpt_writer_free(w);
 *     return 0;
 *   }
 */
#ifndef DS_NORM_H
#define DS_NORM_H

#include <stddef.h>
#include <stdint.h>

#include "ds_seq.h"

#define DS_NORM_MAX_DIM 512

typedef enum { DS_NORM_MINMAX = 0, DS_NORM_MEANSTD = 1 } ds_norm_kind;
typedef enum { DS_FIELD_OBS = 0, DS_FIELD_ACTIONS = 1 } ds_field;

typedef struct ds_norm {
  int32_t dim;
  int32_t kind;                     /* ds_norm_kind */
  float scale[DS_NORM_MAX_DIM];     /* y = (x - offset) * scale */
  float offset[DS_NORM_MAX_DIM];
  float lo[DS_NORM_MAX_DIM], hi[DS_NORM_MAX_DIM];     /* training-split range */
  float mean[DS_NORM_MAX_DIM], std[DS_NORM_MAX_DIM];  /* training-split moments */
} ds_norm;

/* Fit on every step of the split's demos (obs or actions). 0, or -1 when the
 * dimension exceeds DS_NORM_MAX_DIM or the split is empty. */
int ds_norm_fit(ds_norm *n, ds_norm_kind kind, const ds_dataset *d, const ds_split *s, ds_field field,
                char *err, size_t errsz);
/* Statistics from raw rows x (rows, dim), for callers without a dataset. */
int ds_norm_fit_rows(ds_norm *n, ds_norm_kind kind, const float *x, int64_t rows, int dim, char *err,
                     size_t errsz);
/* Min-max only: dimensions whose range is below min_range (but not
 * constant) are scaled as if their range were min_range, around the centre
 * of their range: y = 2 (x - (lo + hi) / 2) / max(hi - lo, min_range). A
 * value that barely varies in the demonstrations (lift's end-effector
 * quaternion x, y vary by 2e-4) then stays small instead of being blown up
 * to [-1, 1], where tiny deviations at test time would be huge. Other
 * kinds, and min_range <= 0, leave n unchanged. */
void ds_norm_set_min_range(ds_norm *n, double min_range);
/* In place, on rows of n->dim values. */
void ds_norm_apply(const ds_norm *n, float *x, int64_t rows);
void ds_norm_invert(const ds_norm *n, float *x, int64_t rows);
const char *ds_norm_kind_name(ds_norm_kind k);

struct fc_ckpt_writer;
struct fc_ckpt;
/* A checkpoint section `name` holding the statistics (layout above); loading
 * bounds dim and kind and refuses a non-finite or zero scale. */
void ds_norm_save(const ds_norm *n, struct fc_ckpt_writer *w, const char *name);
int ds_norm_load(ds_norm *n, const struct fc_ckpt *ck, const char *name, char *err, size_t errsz);

#endif
