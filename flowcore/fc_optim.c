/* fc_optim: AdamW, clipping, schedule, EMA on flat vectors. */
#include "fc_optim.h"

#include <math.h>
#include <string.h>

#include "fc_base.h"
#include "fc_par.h"

void fc_adamw_config_default(fc_adamw_config *c) {
  c->lr = 1e-3f;
  c->lr_min = 0.0f;
  c->beta1 = 0.9f;
  c->beta2 = 0.999f;
  c->eps = 1e-8f;
  c->weight_decay = 1e-6f;
  c->clip = 1.0f;
  c->warmup = 500;
  c->ema = 0.999f;
  c->ema_warmup = 1;
}

fc_adamw *fc_adamw_new(size_t n, const fc_adamw_config *cfg) {
  fc_adamw *o = fc_calloc(1, sizeof(*o));
  o->cfg = *cfg;
  o->n = n;
  o->m = fc_calloc(n, sizeof(float));
  o->v = fc_calloc(n, sizeof(float));
  return o;
}

void fc_adamw_free(fc_adamw *o) {
  if (!o) return;
  free(o->m);
  free(o->v);
  free(o);
}

void fc_adamw_reset(fc_adamw *o) {
  memset(o->m, 0, o->n * sizeof(float));
  memset(o->v, 0, o->n * sizeof(float));
  o->t = 0;
}

typedef struct {
  float *p, *m, *v, *ema;
  const float *g;
  float b1, b2, c1, c2, step, eps, decay, ea;
} s_adam_job;

FC_HOT static void s_adam_range(void *ctx, size_t lo, size_t hi) {
  const s_adam_job *j = ctx;
  float *restrict p = j->p, *restrict m = j->m, *restrict v = j->v, *restrict ema = j->ema;
  const float *restrict g = j->g;
  const float b1 = j->b1, b2 = j->b2, c1 = j->c1, c2 = j->c2, step = j->step, eps = j->eps, decay = j->decay;
  if (ema) {
    const float ea = j->ea;
    for (size_t i = lo; i < hi; i++) {
      m[i] = b1 * m[i] + c1 * g[i];
      v[i] = b2 * v[i] + c2 * g[i] * g[i];
      p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) + eps);
      ema[i] += ea * (p[i] - ema[i]);
    }
  } else {
    for (size_t i = lo; i < hi; i++) {
      m[i] = b1 * m[i] + c1 * g[i];
      v[i] = b2 * v[i] + c2 * g[i] * g[i];
      p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) + eps);
    }
  }
}

void fc_adamw_step(fc_adamw *o, float *p, const float *g, float gscale, float lr, float *ema,
                   float ema_decay) {
  const fc_adamw_config *c = &o->cfg;
  o->t++;
  /* bias corrections folded into the step size and epsilon:
   * p -= lr * (m / bc1) / (sqrt(v / bc2) + eps) == lr * m * (sqrt(bc2) / bc1) / (sqrt(v) + eps sqrt(bc2)) */
  const double bc1 = 1.0 - pow((double)c->beta1, (double)o->t);
  const double bc2 = 1.0 - pow((double)c->beta2, (double)o->t);
  s_adam_job j = {p, o->m, o->v, ema, g, c->beta1, c->beta2, (1.0f - c->beta1) * gscale,
                  (1.0f - c->beta2) * gscale * gscale, (float)(lr * sqrt(bc2) / bc1),
                  (float)(c->eps * sqrt(bc2)), 1.0f - lr * c->weight_decay, 1.0f - ema_decay};
  /* elementwise: the result does not depend on how the range is split */
  fc_par_for(o->n, 1 << 16, s_adam_range, &j);
}

/* sum of squares over fixed blocks (16 float lanes each, so the loop
 * vectorizes without reassociation); the partials are added in block order,
 * so the result does not depend on the number of threads */
#define S_NORM_PARTS 1024
typedef struct {
  const float *g;
  size_t n, block;
  double *part;
} s_norm_job;

FC_HOT static void s_norm_range(void *ctx, size_t lo, size_t hi) {
  const s_norm_job *j = ctx;
  for (size_t b = lo; b < hi; b++) {
    size_t s = b * j->block, e = s + j->block < j->n ? s + j->block : j->n, i = s;
    float lane[16] = {0};
    for (; i + 16 <= e; i += 16)
      for (int k = 0; k < 16; k++) lane[k] += j->g[i + k] * j->g[i + k];
    double acc = 0.0;
    for (int k = 0; k < 16; k++) acc += lane[k];
    for (; i < e; i++) acc += (double)j->g[i] * j->g[i];
    j->part[b] = acc;
  }
}

float fc_grad_norm(const float *g, size_t n) {
  double part[S_NORM_PARTS];
  size_t block = (n + S_NORM_PARTS - 1) / S_NORM_PARTS;
  block = block < 4096 ? 4096 : (block + 15) & ~(size_t)15;
  size_t nb = (n + block - 1) / block;
  s_norm_job j = {g, n, block, part};
  fc_par_for(nb, 8, s_norm_range, &j);
  double ss = 0.0;
  for (size_t b = 0; b < nb; b++) ss += part[b];
  return (float)sqrt(ss);
}

float fc_clip_scale(float norm, float max_norm) {
  return (max_norm > 0.0f && norm > max_norm) ? max_norm / (norm + 1e-6f) : 1.0f;
}

float fc_lr_schedule(const fc_adamw_config *c, int64_t step, int64_t total) {
  if (c->warmup > 0 && step < c->warmup) return c->lr * (float)(step + 1) / (float)c->warmup;
  int64_t span = total - (c->warmup > 0 ? c->warmup : 0);
  if (span <= 1) return c->lr;
  double prog = (double)(step - (c->warmup > 0 ? c->warmup : 0)) / (double)(span - 1);
  if (prog > 1.0) prog = 1.0;
  return (float)(c->lr_min + 0.5 * (c->lr - c->lr_min) * (1.0 + cos(FC_PI * prog)));
}

float fc_ema_decay(const fc_adamw_config *c, int64_t step) {
  if (c->ema <= 0.0f) return 0.0f;
  if (!c->ema_warmup) return c->ema;
  float w = (float)(1 + step) / (float)(10 + step);
  return w < c->ema ? w : c->ema;
}

/* the loop, dispatched (FC_HOT is for file-local functions: clang multiversions
 * a public one only when every declaration carries the attribute) */
FC_HOT static void s_ema(float *restrict ema, const float *restrict p, size_t n, float a) {
  for (size_t i = 0; i < n; i++) ema[i] += a * (p[i] - ema[i]);
}

void fc_ema_update(float *restrict ema, const float *restrict p, size_t n, float decay) { s_ema(ema, p, n, 1.0f - decay); }
