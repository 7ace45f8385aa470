/* fc_optim: AdamW, clipping, schedule, EMA on flat vectors. */
#include "fc_optim.h"

#include <math.h>
#include <string.h>

#include "fc_base.h"

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

void fc_adamw_step(fc_adamw *o, float *restrict p, const float *restrict g, float gscale, float lr,
                   float *restrict ema, float ema_decay) {
  const fc_adamw_config *c = &o->cfg;
  o->t++;
  /* bias corrections folded into the step size and epsilon:
   * p -= lr * (m / bc1) / (sqrt(v / bc2) + eps) == lr * m * (sqrt(bc2) / bc1) / (sqrt(v) + eps sqrt(bc2)) */
  const double bc1 = 1.0 - pow((double)c->beta1, (double)o->t);
  const double bc2 = 1.0 - pow((double)c->beta2, (double)o->t);
  const float step = (float)(lr * sqrt(bc2) / bc1);
  const float eps = (float)(c->eps * sqrt(bc2));
  const float b1 = c->beta1, b2 = c->beta2, decay = 1.0f - lr * c->weight_decay;
  const float c1 = (1.0f - b1) * gscale, c2 = (1.0f - b2) * gscale * gscale;
  float *restrict m = o->m, *restrict v = o->v;
  const size_t n = o->n;
  if (ema) {
    const float ea = 1.0f - ema_decay;
    for (size_t i = 0; i < n; i++) {
      m[i] = b1 * m[i] + c1 * g[i];
      v[i] = b2 * v[i] + c2 * g[i] * g[i];
      p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) + eps);
      ema[i] += ea * (p[i] - ema[i]);
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      m[i] = b1 * m[i] + c1 * g[i];
      v[i] = b2 * v[i] + c2 * g[i] * g[i];
      p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) + eps);
    }
  }
}

float fc_grad_norm(const float *g, size_t n) {
  /* 16 float lanes per block of 4096 (explicit, so the loop vectorizes
   * without reassociation), blocks accumulated in double */
  double ss = 0.0;
  size_t i = 0;
  for (; i + 4096 <= n; i += 4096) {
    float lane[16] = {0};
    for (size_t j = 0; j < 4096; j += 16)
      for (int k = 0; k < 16; k++) lane[k] += g[i + j + k] * g[i + j + k];
    for (int k = 0; k < 16; k++) ss += lane[k];
  }
  for (; i < n; i++) ss += (double)g[i] * g[i];
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

void fc_ema_update(float *restrict ema, const float *restrict p, size_t n, float decay) {
  const float a = 1.0f - decay;
  for (size_t i = 0; i < n; i++) ema[i] += a * (p[i] - ema[i]);
}
