/* fc_norm: min-max and mean/std normalization. */
#include "fc_norm.h"

#include <math.h>
#include <string.h>

#include "fc_base.h"
#include "fc_ckpt.h"

#define S_EPS 1e-6

/* statistics over rows in one pass: range, and mean and variance by
 * Welford's update (double accumulators; E[x^2] - mean^2 cancels
 * catastrophically when |mean| >> std, e.g. positions near 1e4 in float) */
struct fc_norm_acc {
  int dim;
  double lo[FC_NORM_MAX_DIM], hi[FC_NORM_MAX_DIM], mean[FC_NORM_MAX_DIM], m2[FC_NORM_MAX_DIM];
  int64_t n;
};

fc_norm_acc *fc_norm_acc_new(int dim, char *err, size_t errsz) {
  if (dim < 1 || dim > FC_NORM_MAX_DIM)
    return fc_set_err(err, errsz, "cannot normalize %d values per step (at most %d)", dim, FC_NORM_MAX_DIM), NULL;
  fc_norm_acc *a = fc_calloc(1, sizeof(*a));
  a->dim = dim;
  return a;
}

void fc_norm_acc_free(fc_norm_acc *a) { free(a); }

void fc_norm_acc_rows(fc_norm_acc *a, const float *x, int64_t rows) {
  for (int64_t r = 0; r < rows; r++, a->n++)
    for (int j = 0; j < a->dim; j++) {
      double v = x[(size_t)r * a->dim + j];
      if (a->n == 0 || v < a->lo[j]) a->lo[j] = v;
      if (a->n == 0 || v > a->hi[j]) a->hi[j] = v;
      double d = v - a->mean[j];
      a->mean[j] += d / (double)(a->n + 1);
      a->m2[j] += d * (v - a->mean[j]);
    }
}

static void s_finish(fc_norm *n, fc_norm_kind kind, const fc_norm_acc *a) {
  memset(n, 0, sizeof(*n));
  n->dim = a->dim;
  n->kind = kind;
  for (int j = 0; j < a->dim; j++) {
    double mean = a->mean[j], var = a->m2[j] / (double)a->n;
    double sd = var > 0 ? sqrt(var) : 0.0, range = a->hi[j] - a->lo[j];
    n->lo[j] = (float)a->lo[j];
    n->hi[j] = (float)a->hi[j];
    n->mean[j] = (float)mean;
    n->std[j] = (float)sd;
    if (kind == FC_NORM_MINMAX) {
      if (range < S_EPS) {
        n->scale[j] = 1.0f; /* constant: y = x - lo */
        n->offset[j] = (float)a->lo[j];
      } else {
        n->scale[j] = (float)(2.0 / range);
        n->offset[j] = (float)(0.5 * (a->lo[j] + a->hi[j]));
      }
    } else {
      if (sd < S_EPS) {
        n->scale[j] = 1.0f;
        n->offset[j] = (float)a->lo[j];
      } else {
        n->scale[j] = (float)(1.0 / sd);
        n->offset[j] = (float)mean;
      }
    }
  }
}

void fc_norm_set_min_range(fc_norm *n, double min_range) {
  if (n->kind != FC_NORM_MINMAX || !(min_range > 0)) return;
  for (int j = 0; j < n->dim; j++) {
    const double range = (double)n->hi[j] - (double)n->lo[j];
    if (range >= S_EPS && range < min_range) {
      n->scale[j] = (float)(2.0 / min_range);
      n->offset[j] = (float)(0.5 * ((double)n->lo[j] + (double)n->hi[j]));
    }
  }
}

int fc_norm_acc_finish(const fc_norm_acc *a, fc_norm *n, fc_norm_kind kind, char *err, size_t errsz) {
  if (a->n < 1) return fc_set_err(err, errsz, "cannot fit normalization statistics on no data"), -1;
  s_finish(n, kind, a);
  return 0;
}

int fc_norm_fit_rows(fc_norm *n, fc_norm_kind kind, const float *x, int64_t rows, int dim, char *err, size_t errsz) {
  fc_norm_acc *a = fc_norm_acc_new(dim, err, errsz);
  if (!a) return -1;
  fc_norm_acc_rows(a, x, rows);
  const int rc = fc_norm_acc_finish(a, n, kind, err, errsz);
  fc_norm_acc_free(a);
  return rc;
}

void fc_norm_range(fc_norm *n, int dim, float lo, float hi) {
  FC_ASSERT(dim >= 1 && dim <= FC_NORM_MAX_DIM && lo < hi);
  memset(n, 0, sizeof(*n));
  n->dim = dim;
  n->kind = FC_NORM_MINMAX;
  for (int j = 0; j < dim; j++) {
    n->lo[j] = lo, n->hi[j] = hi;
    n->mean[j] = n->offset[j] = 0.5f * (lo + hi);
    n->scale[j] = 2.0f / (hi - lo);
  }
}

void fc_norm_apply(const fc_norm *n, float *x, int64_t rows) {
  for (int64_t r = 0; r < rows; r++)
    for (int j = 0; j < n->dim; j++) {
      float *v = &x[(size_t)r * n->dim + j];
      *v = (*v - n->offset[j]) * n->scale[j];
    }
}

void fc_norm_invert(const fc_norm *n, float *x, int64_t rows) {
  for (int64_t r = 0; r < rows; r++)
    for (int j = 0; j < n->dim; j++) {
      float *v = &x[(size_t)r * n->dim + j];
      *v = *v / n->scale[j] + n->offset[j];
    }
}

const char *fc_norm_kind_name(fc_norm_kind k) { return k == FC_NORM_MEANSTD ? "meanstd" : "minmax"; }

/* Section layout (version 1): u32 version, i32 dim, i32 kind, then f32[dim]
 * each of scale, offset, lo, hi, mean, std. Format 1 wrote the struct raw:
 * dim, kind and each array 512 wide (12296 bytes, no version). */
#define S_SEC_VERSION 1
#define S_V1_WIDTH 512

void fc_norm_save(const fc_norm *n, fc_ckpt_writer *w, const char *name) {
  fc_ckpt_buf b = {0};
  fc_ckpt_put_u32(&b, S_SEC_VERSION);
  fc_ckpt_put_i32(&b, n->dim);
  fc_ckpt_put_i32(&b, n->kind);
  const float *arr[6] = {n->scale, n->offset, n->lo, n->hi, n->mean, n->std};
  for (int i = 0; i < 6; i++) fc_ckpt_put_f32s(&b, arr[i], (size_t)n->dim);
  fc_ckpt_add_buf(w, name, &b);
}

int fc_norm_load(fc_norm *n, const fc_ckpt *ck, const char *name, char *err, size_t errsz) {
  static const char *const fields[6] = {"scale", "offset", "lo", "hi", "mean", "std"};
  const int v1 = fc_ckpt_version(ck) < 2;
  fc_ckpt_cur c;
  uint32_t ver = 1;
  int32_t dim, kind;
  memset(n, 0, sizeof(*n));
  if (fc_ckpt_cur_open(&c, ck, name, err, errsz) || (!v1 && fc_ckpt_cur_version(&c, S_SEC_VERSION, &ver)) ||
      fc_ckpt_get_i32(&c, "dim", 1, v1 ? S_V1_WIDTH : FC_NORM_MAX_DIM, &dim) ||
      fc_ckpt_get_i32(&c, "kind", FC_NORM_MINMAX, FC_NORM_MEANSTD, &kind))
    return -1;
  n->dim = dim;
  n->kind = kind;
  float *arr[6] = {n->scale, n->offset, n->lo, n->hi, n->mean, n->std};
  for (int i = 0; i < 6; i++) {
    float wide[S_V1_WIDTH];
    if (v1 ? fc_ckpt_get_f32s(&c, fields[i], wide, S_V1_WIDTH) : fc_ckpt_get_f32s(&c, fields[i], arr[i], (size_t)dim))
      return -1;
    if (v1) memcpy(arr[i], wide, (size_t)dim * sizeof(float));
  }
  if (fc_ckpt_cur_end(&c)) return -1;
  for (int j = 0; j < n->dim; j++)
    if (!isfinite(n->scale[j]) || !isfinite(n->offset[j]) || n->scale[j] == 0.0f)
      return fc_set_err(err, errsz, "checkpoint is corrupted: section '%s' has a non-finite or zero scale at dimension %d",
                        name, j), -1;
  return 0;
}
