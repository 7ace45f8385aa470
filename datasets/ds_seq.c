/* ds_seq: windows, splits, minibatches. */
#include "ds_seq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_base.h"

static int s_int_cmp(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return x < y ? -1 : x > y;
}

static void s_split_init(ds_split *s, const ds_dataset *d, const int *demos, int n, const char *source) {
  memset(s, 0, sizeof(*s));
  s->n = n;
  s->demo = fc_malloc((size_t)(n ? n : 1) * sizeof(int));
  memcpy(s->demo, demos, (size_t)n * sizeof(int));
  qsort(s->demo, (size_t)n, sizeof(int), s_int_cmp);
  s->start = fc_malloc((size_t)(n + 1) * sizeof(int64_t));
  s->start[0] = 0;
  for (int i = 0; i < n; i++) s->start[i + 1] = s->start[i] + d->demos[s->demo[i]].len;
  s->samples = s->start[n];
  snprintf(s->source, sizeof(s->source), "%s", source);
}

/* demo indices named by a mask; -1 when it names a demo the file lacks */
static int s_mask_demos(const ds_dataset *d, const ds_mask *m, int *out, char *err, size_t errsz) {
  for (int i = 0; i < m->count; i++) {
    out[i] = ds_demo_find(d->demos, d->ndemos, m->demos[i]);
    if (out[i] < 0)
      return fc_set_err(err, errsz, "%s: mask/%s names %s, which the file does not have", d->path, m->name,
                        m->demos[i]), -1;
    for (int j = 0; j < i; j++)
      if (out[j] == out[i])
        return fc_set_err(err, errsz, "%s: mask/%s names %s twice", d->path, m->name, m->demos[i]), -1;
  }
  return 0;
}

int ds_split_make(const ds_dataset *d, double valid_frac, uint64_t seed, ds_split *train, ds_split *valid,
                  char *err, size_t errsz) {
  const int N = d->ndemos;
  int *side = fc_calloc((size_t)N, sizeof(int)), *a = fc_malloc((size_t)N * sizeof(int) + 1);
  int *b = fc_malloc((size_t)N * sizeof(int) + 1), na = 0, nb = 0, rc = 0;
  int mt = ds_mask_find(d->masks, d->nmasks, "train"), mv = ds_mask_find(d->masks, d->nmasks, "valid");
  if (mt >= 0 || mv >= 0) {
    /* the file's own split: side[i] 1 train, 2 valid, 0 neither (both masks
     * given, demo in none); a lone mask's complement is the other side */
    int *tmp = fc_malloc((size_t)(N + 1) * sizeof(int) + sizeof(int) * (size_t)(mt >= 0 ? d->masks[mt].count : 0) +
                         sizeof(int) * (size_t)(mv >= 0 ? d->masks[mv].count : 0));
    if (mt >= 0 && (rc = s_mask_demos(d, &d->masks[mt], tmp, err, errsz)) == 0)
      for (int i = 0; i < d->masks[mt].count; i++) side[tmp[i]] = 1;
    if (!rc && mv >= 0 && (rc = s_mask_demos(d, &d->masks[mv], tmp, err, errsz)) == 0)
      for (int i = 0; i < d->masks[mv].count; i++) {
        if (side[tmp[i]] == 1) {
          fc_set_err(err, errsz, "%s: %s is in both mask/train and mask/valid", d->path, d->demos[tmp[i]].name);
          rc = -1;
          break;
        }
        side[tmp[i]] = 2;
      }
    free(tmp);
    for (int i = 0; i < N && !rc; i++) {
      if (side[i] == 0 && (mt < 0 || mv < 0)) side[i] = mt < 0 ? 1 : 2;
      if (side[i] == 1) a[na++] = i;
      else if (side[i] == 2) b[nb++] = i;
    }
    if (!rc) {
      s_split_init(train, d, a, na, mt >= 0 ? "mask/train" : "all but mask/valid");
      s_split_init(valid, d, b, nb, mv >= 0 ? "mask/valid" : "all but mask/train");
    }
  } else {
    /* seeded split: a permutation of the demos, the first k held out */
    int k = (int)floor(valid_frac * N + 0.5);
    if (k == 0 && valid_frac > 0 && N >= 2) k = 1;
    if (k >= N) k = N - 1;
    fc_rng r;
    fc_rng_seed(&r, seed);
    int *perm = fc_malloc((size_t)N * sizeof(int));
    fc_rng_permutation(&r, perm, N);
    for (int i = 0; i < N; i++) {
      if (i < k) b[nb++] = perm[i];
      else a[na++] = perm[i];
    }
    free(perm);
    char src[64];
    snprintf(src, sizeof(src), "seeded %.0f%% split (seed %llu)", 100.0 * valid_frac, (unsigned long long)seed);
    s_split_init(train, d, a, na, src);
    s_split_init(valid, d, b, nb, src);
  }
  if (!rc && train->samples == 0) {
    ds_split_free(train);
    ds_split_free(valid);
    fc_set_err(err, errsz, "%s: the training split is empty", d->path);
    rc = -1;
  }
  free(side);
  free(a);
  free(b);
  return rc;
}

void ds_split_free(ds_split *s) {
  free(s->demo);
  free(s->start);
  memset(s, 0, sizeof(*s));
}

void ds_split_locate(const ds_split *s, int64_t k, int *demo, int64_t *t) {
  FC_ASSERT(k >= 0 && k < s->samples);
  int lo = 0, hi = s->n - 1; /* last i with start[i] <= k */
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (s->start[mid] <= k) lo = mid;
    else hi = mid - 1;
  }
  *demo = s->demo[lo];
  *t = k - s->start[lo];
}

void ds_window(const ds_dataset *d, int demo, int64_t t, int To, int Tp, float *obs, float *act) {
  const ds_demo *dm = &d->demos[demo];
  const int64_t T = dm->len;
  FC_ASSERT(t >= 0 && t < T && To >= 1 && Tp >= 1);
  /* frames t-To+1 .. t and t .. t+Tp-1, clamped into the demo: repeating the
   * first frame at the start (begin pad) and the last at the end (end pad) */
  for (int i = 0; i < To; i++) {
    int64_t s = t - (To - 1) + i;
    s = s < 0 ? 0 : s;
    memcpy(obs + (size_t)i * d->obs_dim, d->obs + (size_t)(dm->row + s) * d->obs_dim, (size_t)d->obs_dim * sizeof(float));
  }
  for (int i = 0; i < Tp; i++) {
    int64_t s = t + i;
    s = s >= T ? T - 1 : s;
    memcpy(act + (size_t)i * d->action_dim, d->actions + (size_t)(dm->row + s) * d->action_dim,
           (size_t)d->action_dim * sizeof(float));
  }
}

static void s_window_normed(const ds_dataset *d, int demo, int64_t t, int To, int Tp, const fc_norm *on,
                            const fc_norm *an, float *obs, float *act) {
  ds_window(d, demo, t, To, Tp, obs, act);
  if (on) fc_norm_apply(on, obs, To);
  if (an) fc_norm_apply(an, act, Tp);
}

void ds_batch(const ds_dataset *d, const ds_split *s, fc_rng *rng, int B, int To, int Tp, const fc_norm *on,
              const fc_norm *an, float *obs, float *act) {
  FC_ASSERT(s->samples > 0);
  const size_t ow = (size_t)To * d->obs_dim, aw = (size_t)Tp * d->action_dim;
  for (int b = 0; b < B; b++) {
    int demo;
    int64_t t;
    ds_split_locate(s, (int64_t)fc_rng_below(rng, (uint64_t)s->samples), &demo, &t);
    s_window_normed(d, demo, t, To, Tp, on, an, obs + b * ow, act + b * aw);
  }
}

void ds_windows_all(const ds_dataset *d, const ds_split *s, int To, int Tp, const fc_norm *on, const fc_norm *an,
                    float *obs, float *act) {
  const size_t ow = (size_t)To * d->obs_dim, aw = (size_t)Tp * d->action_dim;
  int64_t k = 0;
  for (int i = 0; i < s->n; i++)
    for (int64_t t = 0; t < d->demos[s->demo[i]].len; t++, k++)
      s_window_normed(d, s->demo[i], t, To, Tp, on, an, obs + k * ow, act + k * aw);
}

int ds_norm_fit(fc_norm *n, fc_norm_kind kind, const ds_dataset *d, const ds_split *s, ds_field field, char *err,
                size_t errsz) {
  const int dim = field == DS_FIELD_OBS ? d->obs_dim : d->action_dim;
  const float *base = field == DS_FIELD_OBS ? d->obs : d->actions;
  if (s->samples < 1) return fc_set_err(err, errsz, "%s: the split to fit normalization on is empty", d->path), -1;
  char why[256];
  fc_norm_acc *a = fc_norm_acc_new(dim, why, sizeof why);
  if (!a) return fc_set_err(err, errsz, "%s: %s", d->path, why), -1;
  for (int i = 0; i < s->n; i++) {
    const ds_demo *dm = &d->demos[s->demo[i]];
    fc_norm_acc_rows(a, base + (size_t)dm->row * dim, dm->len);
  }
  const int rc = fc_norm_acc_finish(a, n, kind, err, errsz);
  fc_norm_acc_free(a);
  return rc;
}
