/* ds_norm: min-max and mean/std normalization. */
#include "ds_norm.h"

#include <math.h>
#include <string.h>

#include "fc_base.h"
#include "fc_ckpt.h"

#define S_EPS 1e-6

/* statistics from running sums over rows (double accumulators) */
typedef struct {
  int dim;
  double lo[DS_NORM_MAX_DIM], hi[DS_NORM_MAX_DIM], s[DS_NORM_MAX_DIM], ss[DS_NORM_MAX_DIM];
  int64_t n;
} s_acc;

static void s_acc_rows(s_acc *a, const float *x, int64_t rows) {
  for (int64_t r = 0; r < rows; r++, a->n++)
    for (int j = 0; j < a->dim; j++) {
      double v = x[(size_t)r * a->dim + j];
      if (a->n == 0 || v < a->lo[j]) a->lo[j] = v;
      if (a->n == 0 || v > a->hi[j]) a->hi[j] = v;
      a->s[j] += v;
      a->ss[j] += v * v;
    }
}

static void s_finish(ds_norm *n, ds_norm_kind kind, const s_acc *a) {
  memset(n, 0, sizeof(*n));
  n->dim = a->dim;
  n->kind = kind;
  for (int j = 0; j < a->dim; j++) {
    double mean = a->s[j] / a->n, var = a->ss[j] / a->n - mean * mean;
    double sd = var > 0 ? sqrt(var) : 0.0, range = a->hi[j] - a->lo[j];
    n->lo[j] = (float)a->lo[j];
    n->hi[j] = (float)a->hi[j];
    n->mean[j] = (float)mean;
    n->std[j] = (float)sd;
    if (kind == DS_NORM_MINMAX) {
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

int ds_norm_fit_rows(ds_norm *n, ds_norm_kind kind, const float *x, int64_t rows, int dim, char *err, size_t errsz) {
  if (dim < 1 || dim > DS_NORM_MAX_DIM)
    return fc_set_err(err, errsz, "cannot normalize %d values per step (at most %d)", dim, DS_NORM_MAX_DIM), -1;
  if (rows < 1) return fc_set_err(err, errsz, "cannot fit normalization statistics on no data"), -1;
  s_acc *a = fc_calloc(1, sizeof(*a));
  a->dim = dim;
  s_acc_rows(a, x, rows);
  s_finish(n, kind, a);
  free(a);
  return 0;
}

int ds_norm_fit(ds_norm *n, ds_norm_kind kind, const ds_dataset *d, const ds_split *s, ds_field field, char *err,
                size_t errsz) {
  const int dim = field == DS_FIELD_OBS ? d->obs_dim : d->action_dim;
  const float *base = field == DS_FIELD_OBS ? d->obs : d->actions;
  if (dim < 1 || dim > DS_NORM_MAX_DIM)
    return fc_set_err(err, errsz, "%s: cannot normalize %d values per step (at most %d)", d->path, dim, DS_NORM_MAX_DIM), -1;
  if (s->samples < 1) return fc_set_err(err, errsz, "%s: the split to fit normalization on is empty", d->path), -1;
  s_acc *a = fc_calloc(1, sizeof(*a));
  a->dim = dim;
  for (int i = 0; i < s->n; i++) {
    const ds_demo *dm = &d->demos[s->demo[i]];
    s_acc_rows(a, base + (size_t)dm->row * dim, dm->len);
  }
  s_finish(n, kind, a);
  free(a);
  return 0;
}

void ds_norm_apply(const ds_norm *n, float *x, int64_t rows) {
  for (int64_t r = 0; r < rows; r++)
    for (int j = 0; j < n->dim; j++) {
      float *v = &x[(size_t)r * n->dim + j];
      *v = (*v - n->offset[j]) * n->scale[j];
    }
}

void ds_norm_invert(const ds_norm *n, float *x, int64_t rows) {
  for (int64_t r = 0; r < rows; r++)
    for (int j = 0; j < n->dim; j++) {
      float *v = &x[(size_t)r * n->dim + j];
      *v = *v / n->scale[j] + n->offset[j];
    }
}

const char *ds_norm_kind_name(ds_norm_kind k) { return k == DS_NORM_MEANSTD ? "meanstd" : "minmax"; }

void ds_norm_save(const ds_norm *n, fc_ckpt_writer *w, const char *name) { fc_ckpt_add(w, name, n, sizeof(*n)); }

int ds_norm_load(ds_norm *n, const fc_ckpt *ck, const char *name, char *err, size_t errsz) {
  if (fc_ckpt_get_exact(ck, name, n, sizeof(*n), err, errsz)) return -1;
  if (n->dim < 1 || n->dim > DS_NORM_MAX_DIM || (n->kind != DS_NORM_MINMAX && n->kind != DS_NORM_MEANSTD))
    return fc_set_err(err, errsz, "checkpoint is mismatched: section '%s' holds invalid statistics", name), -1;
  for (int j = 0; j < n->dim; j++)
    if (!isfinite(n->scale[j]) || !isfinite(n->offset[j]) || n->scale[j] == 0.0f)
      return fc_set_err(err, errsz, "checkpoint is corrupted: section '%s' has a non-finite scale", name), -1;
  return 0;
}
