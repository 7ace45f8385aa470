/* fc_optim: AdamW with decoupled weight decay, global gradient-norm clipping,
 * linear warm-up + cosine learning-rate schedule, and an EMA of the weights.
 * Everything acts on flat float vectors (params, grads, m, v, ema share one
 * layout), so an optimizer step is one loop.
 *
 * Example: n parameters, their gradients from a backward pass, their EMA
 *
 *   void fit(float *params, float *grads, float *ema, size_t n, int64_t total) {
 *     fc_adamw_config oc;
 *     fc_adamw_config_default(&oc);
 *     fc_adamw *opt = fc_adamw_new(n, &oc);
 *     for (int64_t step = 0; step < total; step++) {
 *       memset(grads, 0, n * sizeof(float));       // ... then the backward pass
 *       float gnorm = fc_grad_norm(grads, n);
 *       float lr = fc_lr_schedule(&oc, step, total);
 *       fc_adamw_step(opt, params, grads, fc_clip_scale(gnorm, oc.clip), lr,
 *                     ema, fc_ema_decay(&oc, step));  // AdamW + EMA in one pass
 *     }
 *     fc_adamw_free(opt);
 *   }
 */
#ifndef FC_OPTIM_H
#define FC_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  float lr;           /* peak learning rate */
  float lr_min;       /* floor of the cosine decay */
  float beta1, beta2, eps;
  float weight_decay; /* decoupled (AdamW): p -= lr * wd * p */
  float clip;         /* max global gradient L2 norm; <= 0 disables */
  int warmup;         /* linear warm-up steps */
  float ema;          /* EMA decay (0 disables: EMA = weights) */
  int ema_warmup;     /* EMA decay ramps as min(ema, (1 + s) / (10 + s)) */
} fc_adamw_config;

typedef struct {
  fc_adamw_config cfg;
  size_t n;
  int64_t t;    /* steps taken (for bias correction) */
  float *m, *v; /* first and second moments, n each */
} fc_adamw;

/* lr 1e-3, lr_min 0, betas (0.9, 0.999), eps 1e-8, wd 1e-6, clip 1, warmup 500,
 * ema 0.999 with warm-up on. */
void fc_adamw_config_default(fc_adamw_config *cfg);
fc_adamw *fc_adamw_new(size_t n, const fc_adamw_config *cfg);
void fc_adamw_free(fc_adamw *opt);
/* Zero the moments and the step count. */
void fc_adamw_reset(fc_adamw *opt);
/* One AdamW step (Loshchilov & Hutter 2019, Alg. 2) with learning rate lr on
 * the gradient gscale * grads (gscale: the clipping factor, 1 for none). When
 * ema != NULL the same pass also updates ema = decay * ema + (1 - decay) * params
 * with the new params: one sweep over memory instead of three. */
void fc_adamw_step(fc_adamw *opt, float *params, const float *grads, float gscale, float lr,
                   float *ema, float ema_decay);

/* Global L2 norm of grads (accumulated in double). */
float fc_grad_norm(const float *grads, size_t n);
/* Factor that clips a gradient of L2 norm `norm` to at most max_norm
 * (1 when max_norm <= 0 or the norm is already within it). */
float fc_clip_scale(float norm, float max_norm);
/* Learning rate at step (0-based) of total: linear warm-up from lr / warmup to
 * lr, then cosine decay to lr_min at the last step. */
float fc_lr_schedule(const fc_adamw_config *cfg, int64_t step, int64_t total);
/* EMA decay to use after step (0-based). */
float fc_ema_decay(const fc_adamw_config *cfg, int64_t step);
/* ema = decay * ema + (1 - decay) * params */
void fc_ema_update(float *ema, const float *params, size_t n, float decay);

#endif
