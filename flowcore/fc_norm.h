/* fc_norm: per-dimension normalization statistics, fitted on the training
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
 * i32 dim (1..FC_NORM_MAX_DIM), i32 kind, then f32[dim] each of scale,
 * offset, lo, hi, mean, std. Format-1 sections (the struct written raw,
 * arrays 512 wide) still load.
 *
 * Example: statistics of raw rows (with a dataset and its training split: fc_norm_fit)
 *
 *   #include "fc_ckpt.h"                              // the checkpoint writer
 *
 *   int norm_example(void) {
 *     char err[256];
 *     float x[4 * 2] = {0, 1, 2, 3, 4, 5, 6, 7};      // 4 rows of 2 values
 *     fc_norm an;
 *     if (fc_norm_fit_rows(&an, FC_NORM_MINMAX, x, 4, 2, err, sizeof err)) puts(err);
 *     fc_norm_apply(&an, x, 4);                        // x now in [-1, 1]
 *     fc_norm_invert(&an, x, 4);                       // and back
 *     fc_ckpt_writer *w = fc_ckpt_writer_new("policy");
 *     fc_norm_save(&an, w, "norm.actions");
 *     fc_ckpt_writer_free(w);
 *     return 0;
 *   }
 */
#ifndef FC_NORM_H
#define FC_NORM_H

#include <stddef.h>
#include <stdint.h>


#define FC_NORM_MAX_DIM 512

typedef enum { FC_NORM_MINMAX = 0, FC_NORM_MEANSTD = 1 } fc_norm_kind;

typedef struct fc_norm {
  int32_t dim;
  int32_t kind;                     /* fc_norm_kind */
  float scale[FC_NORM_MAX_DIM];     /* y = (x - offset) * scale */
  float offset[FC_NORM_MAX_DIM];
  float lo[FC_NORM_MAX_DIM], hi[FC_NORM_MAX_DIM];     /* training-split range */
  float mean[FC_NORM_MAX_DIM], std[FC_NORM_MAX_DIM];  /* training-split moments */
} fc_norm;

/* Statistics accumulated in one pass over any number of row blocks: range,
 * and mean and variance by Welford's update. fc_norm_acc_new refuses dim
 * outside 1..FC_NORM_MAX_DIM; fc_norm_acc_finish refuses no rows. */
typedef struct fc_norm_acc fc_norm_acc;
fc_norm_acc *fc_norm_acc_new(int dim, char *err, size_t errsz);
void fc_norm_acc_free(fc_norm_acc *a);
void fc_norm_acc_rows(fc_norm_acc *a, const float *x, int64_t rows); /* rows of dim values */
int fc_norm_acc_finish(const fc_norm_acc *a, fc_norm *n, fc_norm_kind kind, char *err, size_t errsz);
/* Statistics of raw rows x (rows, dim) in one call. */
int fc_norm_fit_rows(fc_norm *n, fc_norm_kind kind, const float *x, int64_t rows, int dim, char *err,
                     size_t errsz);
/* Min-max only: dimensions whose range is below min_range (but not
 * constant) are scaled as if their range were min_range, around the centre
 * of their range: y = 2 (x - (lo + hi) / 2) / max(hi - lo, min_range). A
 * value that barely varies in the demonstrations (lift's end-effector
 * quaternion x, y vary by 2e-4) then stays small instead of being blown up
 * to [-1, 1], where tiny deviations at test time would be huge. Other
 * kinds, and min_range <= 0, leave n unchanged. */
void fc_norm_set_min_range(fc_norm *n, double min_range);
/* Min-max statistics of the range [lo, hi] (lo < hi) in each of dim
 * dimensions, as if fitted on data spanning it: y = 2 (x - (lo + hi) / 2) /
 * (hi - lo); mean the centre, std 0. For policies made without data
 * (benchmarks, test fixtures). */
void fc_norm_range(fc_norm *n, int dim, float lo, float hi);
/* In place, on rows of n->dim values. */
void fc_norm_apply(const fc_norm *n, float *x, int64_t rows);
void fc_norm_invert(const fc_norm *n, float *x, int64_t rows);
const char *fc_norm_kind_name(fc_norm_kind k);

struct fc_ckpt_writer;
struct fc_ckpt;
/* A checkpoint section `name` holding the statistics (layout above); loading
 * bounds dim and kind and refuses a non-finite or zero scale. */
void fc_norm_save(const fc_norm *n, struct fc_ckpt_writer *w, const char *name);
int fc_norm_load(fc_norm *n, const struct fc_ckpt *ck, const char *name, char *err, size_t errsz);

#endif
