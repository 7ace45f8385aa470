/* fc_flow: interpolants, the flow-matching loss, fixed-step ODE samplers, and
 * the Local Flow Matching chain with its trainer and diagnostics.
 * Algorithms: flow matching (Lipman et al. 2023; Albergo and Vanden-Eijnden
 * 2023, InterFlow) and Local Flow Matching (Xu, Cheng and Xie, arXiv
 * 2410.02548): the conventions and equations are stated in fc_flow.h. */
#include "fc_flow.h"

#include <math.h>
#include <string.h>

#include "fc_base.h"
#include "fc_ckpt.h"

/* ---------- interpolants ---------- */

void fc_interp_coef(fc_interp k, double t, double *a, double *b, double *da, double *db) {
  if (k == FC_INTERP_TRIG) {
    double h = 0.5 * FC_PI;
    *a = cos(h * t);
    *b = sin(h * t);
    *da = -h * sin(h * t);
    *db = h * cos(h * t);
  } else {
    *a = 1.0 - t;
    *b = t;
    *da = -1.0;
    *db = 1.0;
  }
}

/* ---------- the flow-matching loss, float and double ---------- */

#define REAL float
#define FM_LOSS_NAME s_fm_loss_f
#define FM_CTX_PARAMS const fc_net *net, fc_net_ws *nws, float *grads, const float *c
#define FM_FORWARD(v, t, xt) fc_net_forward(net, nws, v, t, xt, c, B)
#define FM_BACKWARD(dv) fc_net_backward(net, nws, grads, 0, NULL, NULL, dv, B)
#define FM_WANT_GRAD (grads != NULL)
#include "fc_fm_impl.inc"
#undef REAL
#undef FM_LOSS_NAME
#undef FM_CTX_PARAMS
#undef FM_FORWARD
#undef FM_BACKWARD
#undef FM_WANT_GRAD

#define REAL double
#define FM_LOSS_NAME s_fm_loss_d
#define FM_CTX_PARAMS const fc_net_config *cfg, const double *params, fc_net_ws_ref *nws, double *grads, const double *c
#define FM_FORWARD(v, t, xt) fc_net_forward_ref(cfg, params, nws, v, t, xt, c, B)
#define FM_BACKWARD(dv) fc_net_backward_ref(cfg, params, nws, grads, 0, NULL, NULL, dv, B)
#define FM_WANT_GRAD (grads != NULL)
#include "fc_fm_impl.inc"
#undef REAL
#undef FM_LOSS_NAME
#undef FM_CTX_PARAMS
#undef FM_FORWARD
#undef FM_BACKWARD
#undef FM_WANT_GRAD

double fc_regress_loss(const fc_net *net, fc_fm_ws *ws, float *grads, const float *x0, const float *c, int B) {
  FC_ASSERT(B >= 1 && B <= ws->max_batch);
  const size_t n = (size_t)B * (size_t)fc_net_dx(&net->cfg);
  /* input x = 0 at t = 0 (ws->target doubles as the time buffer) */
  memset(ws->xt, 0, n * sizeof(float));
  memset(ws->target, 0, (size_t)B * sizeof(float));
  fc_net_forward(net, ws->net, ws->v, ws->target, ws->xt, c, B);
  const double scale = 2.0 / (double)n;
  double loss = 0.0;
  for (size_t i = 0; i < n; i++) {
    double r = (double)ws->v[i] - (double)x0[i];
    loss += r * r;
    ws->v[i] = (float)(scale * r);
  }
  if (grads) fc_net_backward(net, ws->net, grads, 0, NULL, NULL, ws->v, B);
  return loss / (double)n;
}

fc_fm_ws *fc_fm_ws_new(const fc_net_config *cfg, int max_batch) {
  fc_fm_ws *ws = fc_calloc(1, sizeof(*ws));
  size_t n = (size_t)max_batch * (size_t)fc_net_dx(cfg);
  ws->net = fc_net_ws_new(cfg, max_batch);
  ws->max_batch = max_batch;
  ws->xt = fc_calloc(n, sizeof(float));
  ws->target = fc_calloc(n, sizeof(float));
  ws->v = fc_calloc(n, sizeof(float));
  return ws;
}

void fc_fm_ws_free(fc_fm_ws *ws) {
  if (!ws) return;
  fc_net_ws_free(ws->net);
  free(ws->xt);
  free(ws->target);
  free(ws->v);
  free(ws);
}

double fc_fm_loss(const fc_net *net, fc_fm_ws *ws, float *grads, fc_interp k, const float *t,
                  const float *x0, const float *x1, const float *c, int B) {
  FC_ASSERT(B >= 1 && B <= ws->max_batch);
  return s_fm_loss_f(fc_net_dx(&net->cfg), k, t, x0, x1, NULL, 0.0, ws->xt, ws->target, ws->v, B, net, ws->net, grads, c);
}

double fc_dfm_loss(const fc_net *net, fc_fm_ws *ws, float *grads, double sigma, const float *t, const float *x0,
                   const float *x1, const float *eps, const float *c, int B) {
  FC_ASSERT(B >= 1 && B <= ws->max_batch);
  return s_fm_loss_f(fc_net_dx(&net->cfg), FC_INTERP_LINEAR, t, x0, x1, eps, sigma, ws->xt, ws->target, ws->v, B, net,
                     ws->net, grads, c);
}

static double s_loss_ref(const fc_net_config *cfg, const double *params, fc_net_ws_ref *ws, double *grads, fc_interp k,
                         const double *t, const double *x0, const double *x1, const double *eps, double sigma,
                         const double *c, int B) {
  const int D = fc_net_dx(cfg);
  size_t n = (size_t)B * (size_t)D;
  double *xt = fc_malloc(n * sizeof(double)), *tg = fc_malloc(n * sizeof(double));
  double *v = fc_malloc(n * sizeof(double));
  double loss = s_fm_loss_d(D, k, t, x0, x1, eps, sigma, xt, tg, v, B, cfg, params, ws, grads, c);
  free(xt);
  free(tg);
  free(v);
  return loss;
}

double fc_fm_loss_ref(const fc_net_config *cfg, const double *params, fc_net_ws_ref *ws,
                      double *grads, fc_interp k, const double *t, const double *x0,
                      const double *x1, const double *c, int B) {
  return s_loss_ref(cfg, params, ws, grads, k, t, x0, x1, NULL, 0.0, c, B);
}

double fc_dfm_loss_ref(const fc_net_config *cfg, const double *params, fc_net_ws_ref *ws, double *grads, double sigma,
                       const double *t, const double *x0, const double *x1, const double *eps, const double *c, int B) {
  return s_loss_ref(cfg, params, ws, grads, FC_INTERP_LINEAR, t, x0, x1, eps, sigma, c, B);
}

/* ---------- fixed-step ODE samplers ---------- */

fc_ode_ws *fc_ode_ws_new(int max_batch, int dim) {
  fc_ode_ws *ws = fc_calloc(1, sizeof(*ws));
  size_t n = (size_t)max_batch * (size_t)dim;
  ws->max_batch = max_batch;
  ws->dim = dim;
  ws->k1 = fc_calloc(n, sizeof(float));
  ws->k2 = fc_calloc(n, sizeof(float));
  ws->k3 = fc_calloc(n, sizeof(float));
  ws->k4 = fc_calloc(n, sizeof(float));
  ws->xt = fc_calloc(n, sizeof(float));
  return ws;
}

void fc_ode_ws_free(fc_ode_ws *ws) {
  if (!ws) return;
  free(ws->k1); free(ws->k2); free(ws->k3); free(ws->k4); free(ws->xt);
  free(ws);
}

int fc_sampler_stages(fc_sampler s) { return s == FC_SAMPLER_RK4 ? 4 : s == FC_SAMPLER_HEUN ? 2 : 1; }

/* out = x + h * k */
FC_HOT static void s_axpy_to(float *out, const float *x, float h, const float *restrict k, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = x[i] + h * k[i];
}

/* x into [-bound, bound] when a bound is set (NaN stays NaN: it is refused downstream) */
static void s_bound(fc_ode_ws *ws, float *x, size_t n) {
  const float b = ws->bound;
  if (!(b > 0.0f)) return;
  int64_t c = 0;
  for (size_t i = 0; i < n; i++) {
    if (x[i] > b) x[i] = b, c++;
    else if (x[i] < -b) x[i] = -b, c++;
  }
  ws->clamped += c;
}

void fc_ode_integrate(fc_field_fn f, void *ctx, fc_ode_ws *ws, fc_sampler s, float *x, int B,
                      double t0, double t1, int steps) {
  FC_ASSERT(B >= 1 && B <= ws->max_batch && steps >= 1);
  const size_t n = (size_t)B * (size_t)ws->dim;
  const double h = (t1 - t0) / steps;
  const float hf = (float)h;
  float *k1 = ws->k1, *k2 = ws->k2, *k3 = ws->k3, *k4 = ws->k4, *xt = ws->xt;
  for (int i = 0; i < steps; i++) {
    double t = t0 + i * h; /* computed from i, so no drift in t */
    switch (s) {
      case FC_SAMPLER_EULER:
        f(ctx, t, x, k1, B);
        s_axpy_to(x, x, hf, k1, n);
        break;
      case FC_SAMPLER_HEUN: /* explicit trapezoid (Heun's method) */
        f(ctx, t, x, k1, B);
        s_axpy_to(xt, x, hf, k1, n);
        s_bound(ws, xt, n);
        f(ctx, t + h, xt, k2, B);
        for (size_t j = 0; j < n; j++) x[j] += 0.5f * hf * (k1[j] + k2[j]);
        break;
      case FC_SAMPLER_RK4: /* classical Runge-Kutta */
        f(ctx, t, x, k1, B);
        s_axpy_to(xt, x, 0.5f * hf, k1, n);
        s_bound(ws, xt, n);
        f(ctx, t + 0.5 * h, xt, k2, B);
        s_axpy_to(xt, x, 0.5f * hf, k2, n);
        s_bound(ws, xt, n);
        f(ctx, t + 0.5 * h, xt, k3, B);
        s_axpy_to(xt, x, hf, k3, n);
        s_bound(ws, xt, n);
        f(ctx, t + h, xt, k4, B);
        for (size_t j = 0; j < n; j++) x[j] += (hf / 6.0f) * (k1[j] + 2.0f * k2[j] + 2.0f * k3[j] + k4[j]);
        break;
    }
    s_bound(ws, x, n);
  }
}

/* ---------- the LFM chain ---------- */

/* DFM's defaults; a file without DFM fields (any model but DFM) loads with them */
#define S_DFM_SIGMA 0.5f
#define S_DFM_DELTA 0.02f

void fc_lfm_config_default(fc_lfm_config *cfg, int dx, int dc) {
  cfg->nblocks = 4;
  fc_net_config_default(&cfg->net, FC_NET_MLP, dx, dc);
  cfg->interp = FC_INTERP_LINEAR;
  cfg->gamma_c = 0.2f;
  cfg->gamma_rho = 1.25f;
  cfg->coupling = FC_COUPLING_DEPENDENT;
  cfg->objective = FC_OBJ_FLOW;
  cfg->sampler = FC_SAMPLER_RK4;
  cfg->steps = 4;
  cfg->dfm_sigma = S_DFM_SIGMA;
  cfg->dfm_delta = S_DFM_DELTA;
}

int fc_lfm_config_check(const fc_lfm_config *cfg, char *err, size_t errsz) {
  if (cfg->nblocks < 1 || cfg->nblocks > FC_LFM_MAX_BLOCKS)
    return fc_set_err(err, errsz, "number of blocks must be in 1..%d (got %d)", FC_LFM_MAX_BLOCKS, cfg->nblocks), -1;
  if (fc_net_config_check(&cfg->net, err, errsz)) return -1; /* the network, within flowcore's bounds */
  if (cfg->interp != FC_INTERP_LINEAR && cfg->interp != FC_INTERP_TRIG)
    return fc_set_err(err, errsz, "unknown interpolant %d", (int)cfg->interp), -1;
  if (cfg->nblocks > 1 && !(cfg->gamma_c > 0.0f && isfinite(cfg->gamma_c)))
    return fc_set_err(err, errsz, "gamma c must be a positive number (got %g)", (double)cfg->gamma_c), -1;
  if (cfg->nblocks > 1 && !(cfg->gamma_rho > 0.0f && isfinite(cfg->gamma_rho)))
    return fc_set_err(err, errsz, "gamma rho must be a positive number (got %g)", (double)cfg->gamma_rho), -1;
  if (cfg->coupling < FC_COUPLING_DEPENDENT || cfg->coupling > FC_COUPLING_INDEPENDENT)
    return fc_set_err(err, errsz, "unknown coupling %d", (int)cfg->coupling), -1;
  if (cfg->objective != FC_OBJ_FLOW && cfg->objective != FC_OBJ_REGRESS && cfg->objective != FC_OBJ_DFM)
    return fc_set_err(err, errsz, "unknown objective %d", (int)cfg->objective), -1;
  if (cfg->objective != FC_OBJ_FLOW && cfg->nblocks != 1)
    return fc_set_err(err, errsz, "the %s objective has one block (got %d)",
                      cfg->objective == FC_OBJ_DFM ? "DFM" : "regression", cfg->nblocks), -1;
  if (cfg->objective == FC_OBJ_DFM && !(cfg->dfm_sigma >= 0.0f && cfg->dfm_sigma <= 10.0f))
    return fc_set_err(err, errsz, "DFM sigma must be in 0..10 (got %g)", (double)cfg->dfm_sigma), -1;
  if (cfg->objective == FC_OBJ_DFM && !(cfg->dfm_delta > 0.0f && cfg->dfm_delta < 1.0f))
    return fc_set_err(err, errsz, "DFM's early stop delta must lie strictly between 0 and 1 (got %g)",
                      (double)cfg->dfm_delta), -1;
  if (cfg->sampler < FC_SAMPLER_EULER || cfg->sampler > FC_SAMPLER_RK4)
    return fc_set_err(err, errsz, "unknown sampler %d", (int)cfg->sampler), -1;
  if (cfg->steps < 1 || cfg->steps > 10000)
    return fc_set_err(err, errsz, "steps per block must be in 1..10000 (got %d)", cfg->steps), -1;
  return 0;
}

double fc_lfm_gamma(const fc_lfm_config *cfg, int n) {
  if (n < 1 || n >= cfg->nblocks) return 0.0;
  return (double)cfg->gamma_c * pow((double)cfg->gamma_rho, (double)(n - 1));
}

fc_lfm *fc_lfm_new(const fc_lfm_config *cfg, char *err, size_t errsz) {
  if (fc_lfm_config_check(cfg, err, errsz)) return NULL;
  fc_lfm *m = fc_calloc(1, sizeof(*m));
  m->cfg = *cfg;
  m->block_params = fc_net_nparams(&cfg->net);
  m->params = fc_calloc(m->block_params * (size_t)cfg->nblocks, sizeof(float));
  m->blocks = fc_calloc((size_t)cfg->nblocks, sizeof(fc_net));
  for (int i = 0; i < cfg->nblocks; i++)
    fc_net_bind(&m->blocks[i], &cfg->net, m->params + (size_t)i * m->block_params);
  return m;
}

void fc_lfm_free(fc_lfm *m) {
  if (!m) return;
  free(m->params);
  free(m->blocks);
  free(m);
}

size_t fc_lfm_nparams(const fc_lfm *m) { return m->block_params * (size_t)m->cfg.nblocks; }

int fc_lfm_nfe(const fc_lfm *m, fc_sampler s, int steps) {
  if (m->cfg.objective == FC_OBJ_REGRESS) return 1;
  if (m->cfg.objective == FC_OBJ_DFM) return steps; /* Euler-Maruyama: one evaluation a step */
  return m->cfg.nblocks * steps * fc_sampler_stages(s);
}

int fc_lfm_steps_per_block(int total, int nblocks, char *err, size_t errsz) {
  if (nblocks < 1 || total < 1)
    return fc_set_err(err, errsz, "%d ODE steps over %d blocks: both must be >= 1", total, nblocks), -1;
  if (total % nblocks) {
    const int lo = total / nblocks * nblocks, hi = lo + nblocks;
    if (lo > 0)
      return fc_set_err(err, errsz, "%d ODE steps over the chain do not divide evenly among its %d blocks (equal NFE needs a "
                        "multiple of %d, e.g. %d or %d)", total, nblocks, nblocks, lo, hi), -1;
    return fc_set_err(err, errsz, "%d ODE steps over the chain do not divide evenly among its %d blocks (equal NFE needs a "
                      "multiple of %d, e.g. %d)", total, nblocks, nblocks, hi), -1;
  }
  return total / nblocks;
}

fc_lfm_ws *fc_lfm_ws_new(const fc_lfm *m, int max_batch) {
  fc_lfm_ws *ws = fc_calloc(1, sizeof(*ws));
  ws->max_batch = max_batch;
  ws->net = fc_net_ws_new(&m->cfg.net, max_batch);
  ws->ode = fc_ode_ws_new(max_batch, fc_net_dx(&m->cfg.net));
  ws->tbuf = fc_calloc((size_t)max_batch, sizeof(float));
  return ws;
}

void fc_lfm_ws_free(fc_lfm_ws *ws) {
  if (!ws) return;
  fc_net_ws_free(ws->net);
  fc_ode_ws_free(ws->ode);
  free(ws->tbuf);
  free(ws);
}

/* the velocity field of one block, as an ODE right-hand side */
typedef struct {
  const fc_net *net;
  fc_net_ws *ws;
  const float *c;
  float *tbuf;
} s_net_field;

static void s_net_field_eval(void *ctx, double t, const float *x, float *v, int B) {
  s_net_field *f = ctx;
  for (int b = 0; b < B; b++) f->tbuf[b] = (float)t;
  fc_net_forward(f->net, f->ws, v, f->tbuf, x, f->c, B);
}

void fc_lfm_push(const fc_lfm *m, fc_lfm_ws *ws, int blk, int forward, float *x, const float *c,
                 int B, fc_sampler s, int steps) {
  FC_ASSERT(blk >= 0 && blk < m->cfg.nblocks);
  const int D = fc_net_dx(&m->cfg.net), C = fc_net_dc(&m->cfg.net);
  for (int off = 0; off < B; off += ws->max_batch) {
    int nb = B - off < ws->max_batch ? B - off : ws->max_batch;
    s_net_field f = {&m->blocks[blk], ws->net, c ? c + (size_t)off * C : NULL, ws->tbuf};
    fc_ode_integrate(s_net_field_eval, &f, ws->ode, s, x + (size_t)off * D, nb,
                     forward ? 0.0 : 1.0, forward ? 1.0 : 0.0, steps);
  }
}

/* ---------- guided generation (RTC) ---------- */

struct fc_guide_ws {
  int max_batch;
  float *e, *gx; /* (B, D) */
};

fc_guide_ws *fc_guide_ws_new(const fc_lfm *m, int max_batch) {
  fc_guide_ws *g = fc_calloc(1, sizeof(*g));
  const size_t n = (size_t)max_batch * fc_net_dx(&m->cfg.net);
  g->max_batch = max_batch;
  g->e = fc_calloc(n, sizeof(float));
  g->gx = fc_calloc(n, sizeof(float));
  return g;
}

void fc_guide_ws_free(fc_guide_ws *g) {
  if (!g) return;
  free(g->e);
  free(g->gx);
  free(g);
}

typedef struct {
  s_net_field f;
  fc_guide_ws *g;
  const float *y, *W;
  float yscale, beta;
  int D;
} s_guided_field;

static void s_guided_eval(void *ctx, double t, const float *x, float *v, int B) {
  s_guided_field *q = ctx;
  s_net_field_eval(&q->f, t, x, v, B);
  const size_t n = (size_t)B * q->D;
  const float tf = (float)t;
  for (size_t i = 0; i < n; i++) q->g->e[i] = q->W[i] * (q->yscale * q->y[i] - (x[i] - tf * v[i]));
  fc_net_backward(q->f.net, q->f.ws, NULL, 0, q->g->gx, NULL, q->g->e, B); /* gx = (dv/dx)^T e */
  const double r = t > 0.0 && t < 1.0 ? ((1.0 - t) * (1.0 - t) + t * t) / (t * (1.0 - t)) : INFINITY;
  const float w = (float)(r < q->beta ? r : q->beta);
  for (size_t i = 0; i < n; i++) v[i] -= w * (q->g->e[i] - tf * q->g->gx[i]);
}

void fc_lfm_sample_guided(const fc_lfm *m, fc_lfm_ws *ws, fc_guide_ws *gws, float *x, const float *c, int B,
                          fc_sampler s, int steps, const float *y, const float *W, float beta) {
  FC_ASSERT(m->cfg.objective == FC_OBJ_FLOW && B <= gws->max_batch && B <= ws->max_batch);
  const int D = fc_net_dx(&m->cfg.net);
  for (int blk = m->cfg.nblocks - 1; blk >= 0; blk--) {
    /* the OU contraction of the blocks before this one */
    double before = 0.0;
    for (int k = 1; k <= blk; k++) before += fc_lfm_gamma(&m->cfg, k);
    s_guided_field q = {{&m->blocks[blk], ws->net, c, ws->tbuf}, gws, y, W, (float)exp(-before), beta, D};
    fc_ode_integrate(s_guided_eval, &q, ws->ode, s, x, B, 1.0, 0.0, steps);
  }
}

/* DFM: Euler-Maruyama from t = 1 to delta (fc_lfm_sample) */
static void s_dfm_sample(const fc_lfm *m, fc_lfm_ws *ws, float *x, const float *c, int B, int steps, fc_rng *rng) {
  const int D = fc_net_dx(&m->cfg.net), C = fc_net_dc(&m->cfg.net);
  const double delta = m->cfg.dfm_delta, h = (1.0 - delta) / steps;
  const float sq = (float)(m->cfg.dfm_sigma * sqrt(h));
  for (int off = 0; off < B; off += ws->max_batch) {
    const int nb = B - off < ws->max_batch ? B - off : ws->max_batch;
    float *xo = x + (size_t)off * D, *v = ws->ode->k1, *xi = ws->ode->k2;
    const float *co = c ? c + (size_t)off * C : NULL;
    for (int k = 0; k < steps; k++) {
      const double t = 1.0 - k * h;
      for (int b = 0; b < nb; b++) ws->tbuf[b] = (float)t;
      fc_net_forward(&m->blocks[0], ws->net, v, ws->tbuf, xo, co, nb);
      fc_rng_normal_fill(rng, xi, (size_t)nb * D);
      for (size_t i = 0; i < (size_t)nb * D; i++) xo[i] += (float)(-h) * v[i] + sq * xi[i];
      s_bound(ws->ode, xo, (size_t)nb * D);
    }
  }
}

void fc_lfm_generate(const fc_lfm *m, fc_lfm_ws *ws, float *x, const float *c, int B, fc_sampler s, int steps) {
  fc_lfm_sample(m, ws, x, c, B, s, steps, NULL);
}

void fc_lfm_sample(const fc_lfm *m, fc_lfm_ws *ws, float *x, const float *c, int B, fc_sampler s, int steps,
                   fc_rng *rng) {
  if (m->cfg.objective == FC_OBJ_DFM) {
    FC_ASSERT(rng); /* its noise */
    s_dfm_sample(m, ws, x, c, B, steps, rng);
    return;
  }
  if (m->cfg.objective == FC_OBJ_REGRESS) {
    /* one evaluation at t = 0, x = 0 */
    const int D = fc_net_dx(&m->cfg.net), C = fc_net_dc(&m->cfg.net);
    for (int off = 0; off < B; off += ws->max_batch) {
      int nb = B - off < ws->max_batch ? B - off : ws->max_batch;
      float *xo = x + (size_t)off * D;
      memset(xo, 0, (size_t)nb * D * sizeof(float));
      memset(ws->tbuf, 0, (size_t)nb * sizeof(float));
      memcpy(ws->ode->xt, xo, (size_t)nb * D * sizeof(float));
      fc_net_forward(&m->blocks[0], ws->net, xo, ws->tbuf, ws->ode->xt, c ? c + (size_t)off * C : NULL, nb);
    }
    return;
  }
  for (int blk = m->cfg.nblocks - 1; blk >= 0; blk--) fc_lfm_push(m, ws, blk, 0, x, c, B, s, steps);
}

static double s_mean_dist(const float *a, const float *b, int n, int D) {
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    double ss = 0.0;
    for (int j = 0; j < D; j++) {
      double d = (double)a[(size_t)i * D + j] - (double)b[(size_t)i * D + j];
      ss += d * d;
    }
    sum += sqrt(ss);
  }
  return n ? sum / n : 0.0;
}

void fc_lfm_diagnose(const fc_lfm *m, fc_lfm_ws *ws, const float *x, const float *c, int n,
                     fc_sampler s, int steps, fc_block_diag *out) {
  const int D = fc_net_dx(&m->cfg.net);
  size_t bytes = (size_t)n * D * sizeof(float);
  float *cur = fc_malloc(bytes), *fwd = fc_malloc(bytes), *back = fc_malloc(bytes);
  memcpy(cur, x, bytes);
  for (int blk = 0; blk < m->cfg.nblocks; blk++) {
    memcpy(fwd, cur, bytes);
    fc_lfm_push(m, ws, blk, 1, fwd, c, n, s, steps);
    memcpy(back, fwd, bytes);
    fc_lfm_push(m, ws, blk, 0, back, c, n, s, steps);
    out[blk].inversion_err = s_mean_dist(cur, back, n, D);
    out[blk].transport = s_mean_dist(cur, fwd, n, D);
    memcpy(cur, fwd, bytes); /* the next block's inputs */
  }
  free(cur);
  free(fwd);
  free(back);
}

/* ---------- training ---------- */

void fc_train_config_default(fc_train_config *tc) {
  memset(tc, 0, sizeof(*tc)); /* no teacher, no sharding */
  tc->steps = 10000;
  tc->batch = 256;
  fc_adamw_config_default(&tc->opt);
  tc->warm_start = 1;
  tc->seed = 0;
  tc->teacher = NULL;
  tc->teacher_sampler = FC_SAMPLER_RK4;
  tc->teacher_steps = 4;
  tc->teacher_pairs = 0;
}

struct fc_lfm_trainer {
  fc_lfm *model;
  fc_train_config tc;
  const float *data, *c; /* (n, D), (n, C) */
  size_t n;
  const float *cur;      /* the current block's inputs: data or cache */
  float *cache;          /* (n, D) training set pushed through the trained blocks */
  fc_rng rng;
  int *perm;             /* epoch permutation of 0..n-1 */
  size_t perm_pos;
  float *grads, *ema;    /* block_params each */
  fc_adamw *opt;
  fc_fm_ws *fm;
  fc_lfm_ws *push;
  const float *vdata, *vc; /* validation set (nv, D), (nv, C) */
  size_t nv;
  const float *vcur;     /* its current-block inputs */
  float *vcache;
  float *vprev;          /* (nv, D) scratch: the inputs of a finished block, for valid_loss at a boundary */
  int *idx;              /* (B) */
  float *x0, *x1, *cb, *t, *z; /* (B, D), (B, D), (B, C), (B), (B, D) */
  float *eps;            /* (B, D): DFM's bridge noise */
  float *pool_x1, *pool_x0, *pool_c; /* distilling from a pool: (P, D) start points, (P, D) endpoints, (P, C) */
  int pool_block;        /* the block the pool was drawn for; -1: none */
  float *vpair_x1, *vpair_x0; /* distilling: (nv, D) validation start points and teacher endpoints */
  int vpair_block;       /* the block they are of; -1: none */
  int block;
  int64_t step_in_block, steps_done, *block_steps;
  float last_lr;
  int64_t nonfinite;
};

fc_lfm_trainer *fc_lfm_trainer_new(fc_lfm *model, const float *x, const float *c, size_t n,
                                   const fc_train_config *tc, char *err, size_t errsz) {
  const int N = model->cfg.nblocks, D = fc_net_dx(&model->cfg.net), C = fc_net_dc(&model->cfg.net);
  if (n < 1) return fc_set_err(err, errsz, "training set is empty"), NULL;
  if (n > (size_t)1 << 30) return fc_set_err(err, errsz, "training set too large (%zu samples)", n), NULL;
  if (C > 0 && !c) return fc_set_err(err, errsz, "the network expects %d condition values per sample but none were given", C), NULL;
  if (tc->batch < 1) return fc_set_err(err, errsz, "batch size must be >= 1 (got %d)", tc->batch), NULL;
  if (tc->steps < N)
    return fc_set_err(err, errsz, "training steps (%lld) must be at least the number of blocks (%d)", (long long)tc->steps, N), NULL;
  if (tc->teacher) {
    const fc_lfm_config *a = &tc->teacher->cfg, *s = &model->cfg;
    if (a->nblocks != N || !fc_net_config_same(&a->net, &s->net) || a->gamma_c != s->gamma_c ||
        a->gamma_rho != s->gamma_rho || tc->teacher->block_params != model->block_params)
      return fc_set_err(err, errsz, "a student must have its teacher's chain (blocks, network and gamma schedule)"), NULL;
    if (a->objective != FC_OBJ_FLOW || s->objective != FC_OBJ_FLOW)
      return fc_set_err(err, errsz, "only a flow can be distilled (the regression baseline is one evaluation already)"), NULL;
    if ((unsigned)tc->teacher_sampler > FC_SAMPLER_RK4 || tc->teacher_steps < 1 || tc->teacher_steps > 4096)
      return fc_set_err(err, errsz, "the teacher's sampler needs 1 to 4096 steps per block (got %d)", tc->teacher_steps), NULL;
    if (tc->teacher_pairs < 0 || tc->teacher_pairs > (int64_t)1 << 24)
      return fc_set_err(err, errsz, "teacher pairs per block must be 0 (fresh every step) to 16777216 (got %lld)",
                        (long long)tc->teacher_pairs), NULL;
  }
  if (tc->nshards > 1 && (tc->shard < 0 || tc->shard >= tc->nshards || !tc->reduce || tc->batch < tc->nshards))
    return fc_set_err(err, errsz, "data parallelism needs a shard in 0..%d, a reduction, and a batch (%d) of at least one "
                      "row per shard", tc->nshards - 1, tc->batch), NULL;
  fc_lfm_trainer *tr = fc_calloc(1, sizeof(*tr));
  const size_t B = (size_t)tc->batch, P = model->block_params;
  tr->model = model;
  tr->tc = *tc;
  tr->data = x;
  tr->c = c;
  tr->n = n;
  tr->cur = x;
  fc_rng_seed(&tr->rng, tc->seed);
  tr->perm = fc_malloc(n * sizeof(int));
  fc_rng_permutation(&tr->rng, tr->perm, (int)n);
  tr->grads = fc_calloc(P + 1, sizeof(float)); /* + the loss, reduced with the gradient */
  tr->ema = fc_calloc(P, sizeof(float));
  tr->opt = fc_adamw_new(P, &tc->opt);
  tr->fm = fc_fm_ws_new(&model->cfg.net, tc->batch);
  tr->push = fc_lfm_ws_new(model, 1024);
  tr->idx = fc_calloc(B, sizeof(int));
  tr->x0 = fc_calloc(B * D, sizeof(float));
  tr->x1 = fc_calloc(B * D, sizeof(float));
  tr->cb = fc_calloc(B * (C ? C : 1), sizeof(float));
  tr->t = fc_calloc(B, sizeof(float));
  tr->z = fc_calloc(B * D, sizeof(float));
  tr->eps = fc_calloc(B * D, sizeof(float));
  tr->pool_block = tr->vpair_block = -1;
  tr->block_steps = fc_calloc((size_t)N, sizeof(int64_t));
  for (int i = 0; i < N; i++) tr->block_steps[i] = tc->steps / N + (i < tc->steps % N ? 1 : 0);
  return tr;
}

void fc_lfm_trainer_free(fc_lfm_trainer *tr) {
  if (!tr) return;
  free(tr->cache); free(tr->vcache); free(tr->vprev); free(tr->perm); free(tr->grads); free(tr->ema);
  fc_adamw_free(tr->opt);
  fc_fm_ws_free(tr->fm);
  fc_lfm_ws_free(tr->push);
  free(tr->idx); free(tr->x0); free(tr->x1); free(tr->cb); free(tr->t); free(tr->z); free(tr->eps);
  free(tr->pool_x1); free(tr->pool_x0); free(tr->pool_c); free(tr->vpair_x1); free(tr->vpair_x0);
  free(tr->block_steps);
  free(tr);
}

int fc_lfm_trainer_done(const fc_lfm_trainer *tr) { return tr->block >= tr->model->cfg.nblocks; }
int64_t fc_lfm_trainer_steps_done(const fc_lfm_trainer *tr) { return tr->steps_done; }
int fc_lfm_trainer_block(const fc_lfm_trainer *tr) { return tr->block; }
float fc_lfm_trainer_lr(const fc_lfm_trainer *tr) { return tr->last_lr; }
int64_t fc_lfm_trainer_nonfinite(const fc_lfm_trainer *tr) { return tr->nonfinite; }

/* next B indices of the epoch permutation, reshuffling when it runs out */
static void s_next_indices(fc_lfm_trainer *tr, int *idx, int B) {
  for (int b = 0; b < B; b++) {
    if (tr->perm_pos >= tr->n) {
      fc_rng_permutation(&tr->rng, tr->perm, (int)tr->n);
      tr->perm_pos = 0;
    }
    idx[b] = tr->perm[tr->perm_pos++];
  }
}

/* a new block starts from fresh weights, or from its predecessor's (warm start) */
static void s_block_begin(fc_lfm_trainer *tr) {
  fc_lfm *m = tr->model;
  fc_net *net = &m->blocks[tr->block];
  if (tr->tc.teacher) /* a student starts as its teacher */
    memcpy(net->params, tr->tc.teacher->blocks[tr->block].params, m->block_params * sizeof(float));
  else if (tr->block > 0 && tr->tc.warm_start)
    memcpy(net->params, m->blocks[tr->block - 1].params, m->block_params * sizeof(float));
  else
    fc_net_init(net, &tr->rng);
  fc_adamw_reset(tr->opt);
  memcpy(tr->ema, net->params, m->block_params * sizeof(float));
}

/* the inputs of block b + 1 from those of block b (x, n rows, in place):
 * pushed forward (t: 0 -> 1) through block b of the model, or of the
 * teacher when distilling (the students are independent of each other) */
/* this shard's rows [lo, lo + *cnt) of n (all of them without sharding) */
static size_t s_shard_rows(const fc_lfm_trainer *tr, size_t n, size_t *cnt) {
  if (tr->tc.nshards <= 1) return *cnt = n, 0;
  const size_t K = (size_t)tr->tc.nshards, s = (size_t)tr->tc.shard;
  const size_t lo = n * s / K, hi = n * (s + 1) / K;
  *cnt = hi - lo;
  return lo;
}

/* fc_lfm_push of n rows, a slice per shard: each shard pushes its rows,
 * zeroes the others', and the sum across shards assembles them all */
static void s_push_shard(fc_lfm_trainer *tr, const fc_lfm *src, int b, int dir, float *x, const float *c, size_t n,
                         fc_sampler smp, int steps) {
  const size_t D = (size_t)fc_net_dx(&tr->model->cfg.net), C = (size_t)fc_net_dc(&tr->model->cfg.net);
  size_t cnt;
  const size_t lo = s_shard_rows(tr, n, &cnt);
  if (cnt) fc_lfm_push(src, tr->push, b, dir, x + lo * D, c ? c + lo * C : NULL, (int)cnt, smp, steps);
  if (tr->tc.nshards <= 1) return;
  memset(x, 0, lo * D * sizeof(float));
  memset(x + (lo + cnt) * D, 0, (n - lo - cnt) * D * sizeof(float));
  tr->tc.reduce(x, n * D, tr->tc.reduce_user);
}

static void s_push_inputs(fc_lfm_trainer *tr, int b, float *x, const float *c, size_t n) {
  const fc_lfm *src = tr->tc.teacher ? tr->tc.teacher : tr->model;
  const fc_sampler smp = tr->tc.teacher ? tr->tc.teacher_sampler : tr->model->cfg.sampler;
  const int steps = tr->tc.teacher ? tr->tc.teacher_steps : tr->model->cfg.steps;
  s_push_shard(tr, src, b, 1, x, c, n, smp, steps);
}

/* distillation pairs: x0 (B, D) := the teacher block's endpoint from the
 * start points x1, t := 1 (the student's one Euler step) */
static void s_distill_targets(fc_lfm_trainer *tr, int blk, float *x0, const float *x1, const float *c, float *t, int B) {
  const int D = fc_net_dx(&tr->model->cfg.net);
  memcpy(x0, x1, (size_t)B * D * sizeof(float));
  fc_lfm_push(tr->tc.teacher, tr->push, blk, 0, x0, c, B, tr->tc.teacher_sampler, tr->tc.teacher_steps);
  for (int b = 0; b < B; b++) t[b] = 1.0f;
}

/* training times: uniform on [0, 1); DFM's on [delta, 1] */
static void s_times(const fc_lfm_trainer *tr, fc_rng *r, float *t, int B) {
  const int dfm = tr->model->cfg.objective == FC_OBJ_DFM;
  const double lo = dfm ? tr->model->cfg.dfm_delta : 0.0;
  for (int b = 0; b < B; b++) t[b] = (float)(lo + (1.0 - lo) * fc_rng_uniform(r));
}

/* the block's objective on the pairs (x0, tr->x1) at times tr->t (and DFM's
 * tr->eps): flow matching (linear when distilling), DFM, or the regression */
static double s_loss_rows(fc_lfm_trainer *tr, const fc_net *net, float *grads, const float *x0, const float *c, int B,
                          size_t lo) {
  const fc_lfm_config *cfg = &tr->model->cfg;
  const size_t D = (size_t)fc_net_dx(&cfg->net);
  const float *t = tr->t + lo, *x1 = tr->x1 + lo * D, *eps = tr->eps + lo * D;
  if (cfg->objective == FC_OBJ_REGRESS) return fc_regress_loss(net, tr->fm, grads, x0, c, B);
  if (cfg->objective == FC_OBJ_DFM) return fc_dfm_loss(net, tr->fm, grads, cfg->dfm_sigma, t, x0, x1, eps, c, B);
  return fc_fm_loss(net, tr->fm, grads, tr->tc.teacher ? FC_INTERP_LINEAR : cfg->interp, t, x0, x1, c, B);
}

static double s_loss(fc_lfm_trainer *tr, const fc_net *net, float *grads, const float *x0, const float *c, int B) {
  return s_loss_rows(tr, net, grads, x0, c, B, 0);
}

/* a finished block keeps its EMA weights; its inputs, pushed forward through
 * it (t: 0 -> 1), become the next block's inputs */
static void s_block_end(fc_lfm_trainer *tr) {
  fc_lfm *m = tr->model;
  const int D = fc_net_dx(&m->cfg.net);
  memcpy(m->blocks[tr->block].params, tr->ema, m->block_params * sizeof(float));
  if (tr->block + 1 < m->cfg.nblocks) {
    if (!tr->cache) {
      tr->cache = fc_malloc(tr->n * D * sizeof(float));
      memcpy(tr->cache, tr->data, tr->n * D * sizeof(float));
    }
    s_push_inputs(tr, tr->block, tr->cache, tr->c, tr->n);
    tr->cur = tr->cache;
    if (tr->nv) {
      if (!tr->vcache) {
        tr->vcache = fc_malloc(tr->nv * D * sizeof(float));
        memcpy(tr->vcache, tr->vdata, tr->nv * D * sizeof(float));
      }
      s_push_inputs(tr, tr->block, tr->vcache, tr->vc, tr->nv);
      tr->vcur = tr->vcache;
    }
  }
  tr->block++;
  tr->step_in_block = 0;
}

/* block blk's start points x1 (B, D) from its inputs x0 (B, D): an OU step
 * of length gamma from an input coupled as given, or pure noise for the free
 * last block (draws from r; tr->z is scratch) */
static void s_start_points(fc_lfm_trainer *tr, fc_rng *r, int blk, fc_coupling coupling, const float *x0, float *x1,
                           int B) {
  const fc_lfm *m = tr->model;
  const int D = fc_net_dx(&m->cfg.net);
  fc_rng_normal_fill(r, tr->z, (size_t)B * D);
  if (blk == m->cfg.nblocks - 1) {
    memcpy(x1, tr->z, (size_t)B * D * sizeof(float));
    return;
  }
  double g = fc_lfm_gamma(&m->cfg, blk + 1);
  float ea = (float)exp(-g), sg = (float)sqrt(1.0 - exp(-2.0 * g));
  for (int b = 0; b < B; b++) {
    const float *src = x0 + (size_t)b * D;
    if (coupling == FC_COUPLING_SHUFFLED)
      src = x0 + (size_t)fc_rng_below(r, (uint64_t)B) * D;
    else if (coupling == FC_COUPLING_INDEPENDENT)
      src = tr->cur + (size_t)fc_rng_below(r, tr->n) * D;
    float *dst = x1 + (size_t)b * D;
    const float *zb = tr->z + (size_t)b * D;
    for (int j = 0; j < D; j++) dst[j] = ea * src[j] + sg * zb[j];
  }
}

/* the distillation pool of the current block: teacher_pairs start points
 * drawn as a minibatch's are (inputs uniform over the block's inputs, with
 * their conditions), from a stream of the seed and the block, and the
 * teacher block's endpoints from them */
static void s_pool_build(fc_lfm_trainer *tr) {
  const fc_lfm *m = tr->model;
  const int D = fc_net_dx(&m->cfg.net), C = fc_net_dc(&m->cfg.net), B = tr->tc.batch;
  const size_t P = (size_t)tr->tc.teacher_pairs;
  if (!tr->pool_x1) {
    tr->pool_x1 = fc_malloc(P * D * sizeof(float));
    tr->pool_x0 = fc_malloc(P * D * sizeof(float));
    tr->pool_c = fc_malloc(P * (C ? C : 1) * sizeof(float));
  }
  fc_rng r;
  fc_rng_seed(&r, tr->tc.seed ^ 0x9a1c7e0d5eedull ^ ((uint64_t)tr->block << 40));
  for (size_t off = 0; off < P; off += (size_t)B) {
    const int nb = (int)(P - off < (size_t)B ? P - off : (size_t)B);
    for (int b = 0; b < nb; b++) {
      const size_t k = (size_t)fc_rng_below(&r, tr->n);
      memcpy(tr->x0 + (size_t)b * D, tr->cur + k * D, D * sizeof(float));
      if (C) memcpy(tr->pool_c + (off + b) * C, tr->c + k * C, C * sizeof(float));
    }
    s_start_points(tr, &r, tr->block, m->cfg.coupling, tr->x0, tr->pool_x1 + off * D, nb);
  }
  memcpy(tr->pool_x0, tr->pool_x1, P * D * sizeof(float));
  s_push_shard(tr, tr->tc.teacher, tr->block, 0, tr->pool_x0, C ? tr->pool_c : NULL, P, tr->tc.teacher_sampler,
               tr->tc.teacher_steps);
  tr->pool_block = tr->block;
}

/* a minibatch of B pairs from the pool (drawn with replacement from tr->rng):
 * start points into x1, endpoints into x0, conditions into cb, t := 1 */
static void s_pool_batch(fc_lfm_trainer *tr, int B) {
  const int D = fc_net_dx(&tr->model->cfg.net), C = fc_net_dc(&tr->model->cfg.net);
  if (tr->pool_block != tr->block) s_pool_build(tr);
  for (int b = 0; b < B; b++) {
    const size_t k = (size_t)fc_rng_below(&tr->rng, (uint64_t)tr->tc.teacher_pairs);
    memcpy(tr->x1 + (size_t)b * D, tr->pool_x1 + k * D, D * sizeof(float));
    memcpy(tr->x0 + (size_t)b * D, tr->pool_x0 + k * D, D * sizeof(float));
    if (C) memcpy(tr->cb + (size_t)b * C, tr->pool_c + k * C, C * sizeof(float));
    tr->t[b] = 1.0f;
  }
}

double fc_lfm_trainer_step(fc_lfm_trainer *tr) {
  FC_ASSERT(!fc_lfm_trainer_done(tr));
  fc_lfm *m = tr->model;
  const int B = tr->tc.batch, D = fc_net_dx(&m->cfg.net), C = fc_net_dc(&m->cfg.net);
  if (tr->step_in_block == 0) s_block_begin(tr);
  fc_net *net = &m->blocks[tr->block];

  if (tr->tc.teacher && tr->tc.teacher_pairs) {
    s_pool_batch(tr, B);
  } else {
    /* minibatch: inputs x0 and their conditions */
    s_next_indices(tr, tr->idx, B);
    for (int b = 0; b < B; b++) {
      memcpy(tr->x0 + (size_t)b * D, tr->cur + (size_t)tr->idx[b] * D, D * sizeof(float));
      if (C) memcpy(tr->cb + (size_t)b * C, tr->c + (size_t)tr->idx[b] * C, C * sizeof(float));
    }
    s_start_points(tr, &tr->rng, tr->block, m->cfg.coupling, tr->x0, tr->x1, B);
    s_times(tr, &tr->rng, tr->t, B);
    if (m->cfg.objective == FC_OBJ_DFM) fc_rng_normal_fill(&tr->rng, tr->eps, (size_t)B * D);
  }
  /* this shard's rows of the minibatch (all of them without sharding) */
  size_t nb;
  const size_t lo = s_shard_rows(tr, (size_t)B, &nb);
  /* distilling: x1 is the start point, x0 the teacher's endpoint from it */
  if (tr->tc.teacher && !tr->tc.teacher_pairs)
    s_distill_targets(tr, tr->block, tr->x0 + lo * D, tr->x1 + lo * D, C ? tr->cb + lo * C : NULL, tr->t + lo, (int)nb);

  /* loss, gradient (written, not accumulated), clipped AdamW step, EMA */
  double loss = s_loss_rows(tr, net, tr->grads, tr->x0 + lo * D, C ? tr->cb + lo * C : NULL, (int)nb, lo);
  if (tr->tc.nshards > 1) {
    /* the minibatch's mean: each shard's mean weighted by its rows, summed */
    const float w = (float)nb / (float)B;
    for (size_t i = 0; i < m->block_params; i++) tr->grads[i] *= w;
    tr->grads[m->block_params] = (float)(loss * w);
    tr->tc.reduce(tr->grads, m->block_params + 1, tr->tc.reduce_user);
    loss = tr->grads[m->block_params];
  }
  float gn = fc_grad_norm(tr->grads, m->block_params);
  tr->last_lr = fc_lr_schedule(&tr->tc.opt, tr->step_in_block, tr->block_steps[tr->block]);
  if (isfinite(loss) && isfinite(gn)) {
    fc_adamw_step(tr->opt, net->params, tr->grads, fc_clip_scale(gn, tr->tc.opt.clip), tr->last_lr,
                  tr->ema, fc_ema_decay(&tr->tc.opt, tr->step_in_block));
  } else {
    tr->nonfinite++;
  }

  tr->step_in_block++;
  tr->steps_done++;
  if (tr->step_in_block >= tr->block_steps[tr->block]) s_block_end(tr);
  return loss;
}

void fc_lfm_trainer_set_valid(fc_lfm_trainer *tr, const float *x, const float *c, size_t n) {
  FC_ASSERT(tr->block == 0 && tr->step_in_block == 0); /* before training starts */
  tr->vdata = tr->vcur = x;
  tr->vc = c;
  tr->nv = n;
}

void fc_lfm_trainer_snapshot(const fc_lfm_trainer *tr, fc_lfm *dst) {
  const fc_lfm *m = tr->model;
  FC_ASSERT(dst->block_params == m->block_params && dst->cfg.nblocks == m->cfg.nblocks);
  memcpy(dst->params, m->params, fc_lfm_nparams(m) * sizeof(float));
  if (tr->block < m->cfg.nblocks && tr->step_in_block > 0)
    memcpy(dst->params + (size_t)tr->block * m->block_params, tr->ema, m->block_params * sizeof(float));
}

int fc_lfm_trainer_valid_block(const fc_lfm_trainer *tr) {
  /* mid-block: the block being trained; at a boundary or when done: the one just finished */
  return tr->step_in_block > 0 ? tr->block : tr->block - 1;
}

/* The validation inputs of block k: vcur holds those of block
 * min(block, N - 1) (kept by s_block_end and restore); an earlier block's
 * (only at a boundary) are recomputed into vprev from the data. */
static const float *s_valid_inputs(fc_lfm_trainer *tr, int k) {
  fc_lfm *m = tr->model;
  const int D = fc_net_dx(&m->cfg.net), N = m->cfg.nblocks;
  if (k == (tr->block < N ? tr->block : N - 1)) return tr->vcur;
  if (k == 0) return tr->vdata;
  if (!tr->vprev) tr->vprev = fc_malloc(tr->nv * D * sizeof(float));
  memcpy(tr->vprev, tr->vdata, tr->nv * D * sizeof(float));
  for (int b = 0; b < k; b++) s_push_inputs(tr, b, tr->vprev, tr->vc, tr->nv);
  return tr->vprev;
}

double fc_lfm_trainer_valid_loss(fc_lfm_trainer *tr) {
  const int k = fc_lfm_trainer_valid_block(tr);
  if (!tr->nv || k < 0) return NAN;
  fc_lfm *m = tr->model;
  const int B = tr->tc.batch, D = fc_net_dx(&m->cfg.net), C = fc_net_dc(&m->cfg.net);
  /* block k with its EMA weights (mid-block: the running EMA; finished: the
   * EMA it kept), on a private view */
  fc_net net;
  fc_net_bind(&net, &m->cfg.net, k == tr->block ? tr->ema : m->blocks[k].params);
  /* distilling, the pairs of block k are the same at every call (fixed
   * stream, the same inputs): the teacher runs once per block */
  const int cached = tr->tc.teacher && tr->vpair_block == k;
  const float *vin = cached ? NULL : s_valid_inputs(tr, k);
  fc_rng r;
  fc_rng_seed(&r, tr->tc.seed ^ 0x5a17u);
  if (tr->tc.teacher && !tr->vpair_x1) {
    tr->vpair_x1 = fc_malloc(tr->nv * D * sizeof(float));
    tr->vpair_x0 = fc_malloc(tr->nv * D * sizeof(float));
  }
  double sum = 0.0;
  size_t cnt = 0;
  for (size_t off = 0; off < tr->nv; off += (size_t)B) {
    int nb = (int)(tr->nv - off < (size_t)B ? tr->nv - off : (size_t)B);
    const float *cb = C ? tr->vc + off * C : NULL;
    double loss;
    if (cached) { /* the distillation objective on the block's stored pairs */
      memcpy(tr->x1, tr->vpair_x1 + off * D, (size_t)nb * D * sizeof(float));
      for (int b = 0; b < nb; b++) tr->t[b] = 1.0f;
      loss = s_loss(tr, &net, NULL, tr->vpair_x0 + off * D, cb, nb);
    } else if (m->cfg.objective == FC_OBJ_REGRESS) {
      loss = s_loss(tr, &net, NULL, vin + off * D, cb, nb);
    } else {
      const float *x0 = vin + off * D;
      /* the dependent coupling, whatever the training coupling */
      s_start_points(tr, &r, k, FC_COUPLING_DEPENDENT, x0, tr->x1, nb);
      s_times(tr, &r, tr->t, nb);
      if (m->cfg.objective == FC_OBJ_DFM) fc_rng_normal_fill(&r, tr->eps, (size_t)nb * D);
      if (tr->tc.teacher) { /* the distillation objective: endpoints into the scratch x0, kept */
        s_distill_targets(tr, k, tr->x0, tr->x1, cb, tr->t, nb);
        x0 = tr->x0;
        memcpy(tr->vpair_x1 + off * D, tr->x1, (size_t)nb * D * sizeof(float));
        memcpy(tr->vpair_x0 + off * D, tr->x0, (size_t)nb * D * sizeof(float));
      }
      loss = s_loss(tr, &net, NULL, x0, cb, nb);
    }
    sum += loss * nb;
    cnt += (size_t)nb;
  }
  if (tr->tc.teacher) tr->vpair_block = k;
  return sum / (double)cnt;
}

/* ---------- resume state ---------- */

/* train.state, field by field: the format-1 section was the same fields as
 * one raw struct of 8-byte members (no version, no padding), so one reader
 * serves both, the version word present from format 2 on */
#define S_STATE_VERSION 1

void fc_lfm_trainer_save(const fc_lfm_trainer *tr, fc_ckpt_writer *w) {
  fc_ckpt_buf b = {0};
  fc_ckpt_put_u32(&b, S_STATE_VERSION);
  fc_ckpt_put_i64(&b, tr->block);
  fc_ckpt_put_i64(&b, tr->step_in_block);
  fc_ckpt_put_i64(&b, tr->steps_done);
  fc_ckpt_put_i64(&b, (int64_t)tr->perm_pos);
  fc_ckpt_put_i64(&b, tr->nonfinite);
  fc_ckpt_put_i64(&b, (int64_t)tr->n);
  fc_ckpt_put_i64(&b, tr->tc.batch);
  fc_ckpt_put_i64(&b, tr->tc.steps);
  fc_ckpt_put_i64(&b, tr->opt->t);
  fc_ckpt_put_i64(&b, tr->rng.has_spare);
  fc_ckpt_put_u64(&b, tr->tc.seed);
  for (int i = 0; i < 4; i++) fc_ckpt_put_u64(&b, tr->rng.s[i]);
  fc_ckpt_put_f64(&b, tr->rng.spare);
  fc_ckpt_put_f64(&b, tr->last_lr);
  fc_ckpt_add_buf(w, "train.state", &b);
  const size_t P = tr->model->block_params;
  fc_ckpt_add(w, "train.perm", tr->perm, tr->n * sizeof(int32_t));
  fc_ckpt_add(w, "train.adam_m", tr->opt->m, P * sizeof(float));
  fc_ckpt_add(w, "train.adam_v", tr->opt->v, P * sizeof(float));
  fc_ckpt_add(w, "train.ema", tr->ema, P * sizeof(float));
}

int fc_lfm_trainer_restore(fc_lfm_trainer *tr, const fc_ckpt *ck, char *err, size_t errsz) {
  fc_ckpt_cur c;
  uint32_t ver = 1;
  int64_t block, step_in_block, steps_done, perm_pos, nonfinite, n, batch, steps, adam_t, has_spare;
  uint64_t seed, rng[4];
  double spare, last_lr;
  const int64_t big = INT64_MAX;
  if (fc_ckpt_cur_open(&c, ck, "train.state", err, errsz) ||
      (fc_ckpt_version(ck) >= 2 && fc_ckpt_cur_version(&c, S_STATE_VERSION, &ver)) ||
      fc_ckpt_get_i64(&c, "block", 0, 64, &block) || fc_ckpt_get_i64(&c, "step_in_block", 0, big, &step_in_block) ||
      fc_ckpt_get_i64(&c, "steps_done", 0, big, &steps_done) || fc_ckpt_get_i64(&c, "perm_pos", 0, big, &perm_pos) ||
      fc_ckpt_get_i64(&c, "nonfinite", 0, big, &nonfinite) || fc_ckpt_get_i64(&c, "n", 1, big, &n) ||
      fc_ckpt_get_i64(&c, "batch", 1, big, &batch) || fc_ckpt_get_i64(&c, "steps", 0, big, &steps) ||
      fc_ckpt_get_i64(&c, "adam_t", 0, big, &adam_t) || fc_ckpt_get_i64(&c, "has_spare", 0, 1, &has_spare) ||
      fc_ckpt_get_u64(&c, "seed", &seed) || fc_ckpt_get_u64(&c, "rng0", &rng[0]) ||
      fc_ckpt_get_u64(&c, "rng1", &rng[1]) || fc_ckpt_get_u64(&c, "rng2", &rng[2]) ||
      fc_ckpt_get_u64(&c, "rng3", &rng[3]) || fc_ckpt_get_f64(&c, "spare", &spare) ||
      fc_ckpt_get_f64(&c, "last_lr", &last_lr) || fc_ckpt_cur_end(&c))
    return -1;
  if (n != (int64_t)tr->n || batch != tr->tc.batch || steps != tr->tc.steps || seed != tr->tc.seed)
    return fc_set_err(err, errsz,
                      "checkpoint is mismatched: it was training on %lld samples, batch %lld, %lld steps, seed %llu; "
                      "this run has %zu, %d, %lld, %llu",
                      (long long)n, (long long)batch, (long long)steps, (unsigned long long)seed, tr->n,
                      tr->tc.batch, (long long)tr->tc.steps, (unsigned long long)tr->tc.seed), -1;
  const int N = tr->model->cfg.nblocks;
  if (block > N || perm_pos > n || steps_done > steps || (block < N && step_in_block >= tr->block_steps[block]))
    return fc_set_err(err, errsz, "checkpoint is corrupted: its training position is impossible"), -1;
  const size_t P = tr->model->block_params;
  if (fc_ckpt_get_exact(ck, "train.perm", tr->perm, tr->n * sizeof(int32_t), err, errsz) ||
      fc_ckpt_get_exact(ck, "train.adam_m", tr->opt->m, P * sizeof(float), err, errsz) ||
      fc_ckpt_get_exact(ck, "train.adam_v", tr->opt->v, P * sizeof(float), err, errsz) ||
      fc_ckpt_get_exact(ck, "train.ema", tr->ema, P * sizeof(float), err, errsz))
    return -1;
  for (size_t i = 0; i < tr->n; i++)
    if (tr->perm[i] < 0 || (size_t)tr->perm[i] >= tr->n)
      return fc_set_err(err, errsz, "checkpoint is corrupted: its epoch permutation is out of range"), -1;
  tr->block = (int)block;
  tr->step_in_block = step_in_block;
  tr->steps_done = steps_done;
  tr->perm_pos = (size_t)perm_pos;
  tr->nonfinite = nonfinite;
  tr->opt->t = adam_t;
  memcpy(tr->rng.s, rng, sizeof(rng));
  tr->rng.spare = spare;
  tr->rng.has_spare = (int)has_spare;
  tr->last_lr = (float)last_lr;
  tr->pool_block = -1; /* a distillation pool is drawn again, the same, at the next step */
  /* the current block's inputs: the data pushed through the finished blocks */
  tr->cur = tr->data;
  tr->vcur = tr->vdata;
  const int D = fc_net_dx(&tr->model->cfg.net);
  for (int b = 0; b < tr->block && b + 1 < N; b++) {
    if (!tr->cache) tr->cache = fc_malloc(tr->n * D * sizeof(float));
    if (b == 0) memcpy(tr->cache, tr->data, tr->n * D * sizeof(float));
    s_push_inputs(tr, b, tr->cache, tr->c, tr->n);
    tr->cur = tr->cache;
    if (tr->nv) {
      if (!tr->vcache) tr->vcache = fc_malloc(tr->nv * D * sizeof(float));
      if (b == 0) memcpy(tr->vcache, tr->vdata, tr->nv * D * sizeof(float));
      s_push_inputs(tr, b, tr->vcache, tr->vc, tr->nv);
      tr->vcur = tr->vcache;
    }
  }
  return 0;
}

/* ---------- names ---------- */

static const char *const s_interp_names[] = {"linear", "trig"};
static const char *const s_sampler_names[] = {"euler", "heun", "rk4"};
static const char *const s_coupling_names[] = {"dependent", "shuffled", "independent"};

const char *fc_interp_name(fc_interp k) { return (unsigned)k < 2 ? s_interp_names[k] : "?"; }
int fc_interp_parse(const char *s) { return fc_name_index(s, s_interp_names, 2); }
const char *fc_sampler_name(fc_sampler s) { return (unsigned)s < 3 ? s_sampler_names[s] : "?"; }
int fc_sampler_parse(const char *s) { return fc_name_index(s, s_sampler_names, 3); }
const char *fc_coupling_name(fc_coupling c) { return (unsigned)c < 3 ? s_coupling_names[c] : "?"; }
int fc_coupling_parse(const char *s) { return fc_name_index(s, s_coupling_names, 3); }

/* ---------- checkpoints ---------- */

/* lfm.config, field by field (version 2 of the section):
 *   u32 version, i32 nblocks, the network (fc_net_config_put: i32 kind, then
 *   the kind's fields), i32 interp, coupling, sampler, steps, objective,
 *   f32 gamma_c, gamma_rho
 * Version 1 is the same without the kind: the network was an mlp, whose
 * fields (dx, dc, width, depth, temb, act, cond) sat where they still do.
 * Format 1 wrote version 1's fields without the version word, with 3 zero
 * int32 after objective and 2 zero floats after gamma_rho (80 bytes). So
 * one reader serves all three. */
#define S_CONFIG_VERSION 3 /* written only for DFM: other models are written as version 2, which
                              older lfp reads */

static void s_sec_name(char *out, size_t n, const char *prefix, const char *name) {
  snprintf(out, n, "%s%s", prefix ? prefix : "", name);
}

void fc_lfm_save(const fc_lfm *m, fc_ckpt_writer *w, const char *prefix) {
  const fc_lfm_config *c = &m->cfg;
  const int32_t iv[5] = {c->interp, c->coupling, c->sampler, c->steps, c->objective};
  fc_ckpt_buf b = {0};
  const int dfm = c->objective == FC_OBJ_DFM;
  fc_ckpt_put_u32(&b, dfm ? S_CONFIG_VERSION : 2);
  fc_ckpt_put_i32(&b, c->nblocks);
  fc_net_config_put(&b, &c->net);
  for (int i = 0; i < 5; i++) fc_ckpt_put_i32(&b, iv[i]);
  fc_ckpt_put_f32(&b, c->gamma_c);
  fc_ckpt_put_f32(&b, c->gamma_rho);
  if (dfm) {
    fc_ckpt_put_f32(&b, c->dfm_sigma);
    fc_ckpt_put_f32(&b, c->dfm_delta);
  }
  char name[FC_CKPT_NAME_MAX];
  s_sec_name(name, sizeof(name), prefix, "lfm.config");
  fc_ckpt_add_buf(w, name, &b);
  s_sec_name(name, sizeof(name), prefix, "lfm.params");
  fc_ckpt_add(w, name, m->params, fc_lfm_nparams(m) * sizeof(float));
}

/* the config section, every field bounded (FC_LFM_MAX_*, the network's by
 * fc_net_config_get) before use */
static int s_read_config(const fc_ckpt *ck, const char *name, fc_lfm_config *cfg, char *err, size_t errsz) {
  fc_ckpt_cur c;
  const int format1 = fc_ckpt_version(ck) < 2;
  uint32_t ver = 1, pad;
  int32_t nblocks, iv[5];
  float fv[2], fpad;
  static const struct {
    const char *name;
    int32_t lo, hi;
  } f[5] = {{"interp", 0, 1}, {"coupling", 0, 2}, {"sampler", 0, 2}, {"steps", 1, 10000}, {"objective", 0, 2}};
  memset(cfg, 0, sizeof(*cfg));
  if (fc_ckpt_cur_open(&c, ck, name, err, errsz) || (!format1 && fc_ckpt_cur_version(&c, S_CONFIG_VERSION, &ver)) ||
      fc_ckpt_get_i32(&c, "nblocks", 1, FC_LFM_MAX_BLOCKS, &nblocks))
    return -1;
  /* the network: its kind from version 2 on, before that always an mlp */
  if (ver >= 2 ? fc_net_config_get(&c, &cfg->net) : fc_net_config_get_fields(&c, FC_NET_MLP, &cfg->net)) return -1;
  for (int i = 0; i < 5; i++)
    if (fc_ckpt_get_i32(&c, f[i].name, f[i].lo, f[i].hi, &iv[i])) return -1;
  for (int i = 0; format1 && i < 3; i++)
    if (fc_ckpt_get_u32(&c, "padding", &pad)) return -1;
  if (fc_ckpt_get_f32(&c, "gamma_c", &fv[0]) || fc_ckpt_get_f32(&c, "gamma_rho", &fv[1])) return -1;
  for (int i = 0; format1 && i < 2; i++)
    if (fc_ckpt_get_f32(&c, "padding", &fpad)) return -1;
  cfg->dfm_sigma = S_DFM_SIGMA;
  cfg->dfm_delta = S_DFM_DELTA;
  if (ver >= 3 && (fc_ckpt_get_f32(&c, "dfm_sigma", &cfg->dfm_sigma) || fc_ckpt_get_f32(&c, "dfm_delta", &cfg->dfm_delta)))
    return -1;
  if (fc_ckpt_cur_end(&c)) return -1;
  if (ver < 3 && iv[4] == FC_OBJ_DFM)
    return fc_set_err(err, errsz, "checkpoint is mismatched: its model config names the DFM objective in a section "
                      "version (%u) before DFM", ver), -1;
  cfg->nblocks = nblocks;
  cfg->interp = (fc_interp)iv[0]; cfg->coupling = (fc_coupling)iv[1];
  cfg->sampler = (fc_sampler)iv[2]; cfg->steps = iv[3]; cfg->objective = (fc_objective)iv[4];
  cfg->gamma_c = fv[0]; cfg->gamma_rho = fv[1];
  char why[200];
  if (fc_lfm_config_check(cfg, why, sizeof(why)))
    return fc_set_err(err, errsz, "checkpoint is mismatched: its model config is invalid (%s)", why), -1;
  return 0;
}

fc_lfm *fc_lfm_load(const fc_ckpt *ck, const char *prefix, char *err, size_t errsz) {
  char name[FC_CKPT_NAME_MAX];
  fc_lfm_config c;
  s_sec_name(name, sizeof(name), prefix, "lfm.config");
  if (s_read_config(ck, name, &c, err, errsz)) return NULL;
  /* the parameter count before anything is allocated: within fc_net's
   * bounds one block has far fewer than 2^63 parameters (the kind's layout
   * sums cannot wrap on 64-bit); the products with N and sizeof(float) are
   * checked, and the file must hold exactly that many bytes */
  const size_t per_block = fc_net_nparams(&c.net);
  size_t count, bytes, have = 0;
  s_sec_name(name, sizeof(name), prefix, "lfm.params");
  if (__builtin_mul_overflow(per_block, (size_t)c.nblocks, &count) || __builtin_mul_overflow(count, sizeof(float), &bytes))
    return fc_set_err(err, errsz, "checkpoint is mismatched: its model config has more parameters than memory can address"),
           NULL;
  const void *params = fc_ckpt_get(ck, name, &have);
  if (!params) return fc_set_err(err, errsz, "checkpoint is mismatched: section '%s' is missing", name), NULL;
  if (have != bytes)
    return fc_set_err(err, errsz, "checkpoint is mismatched: section '%s' has %zu bytes, its config needs %zu", name, have,
                      bytes), NULL;
  fc_lfm *m = fc_lfm_new(&c, err, errsz);
  if (!m) return NULL;
  memcpy(m->params, params, bytes); /* checked above: exactly the model's parameters */
  return m;
}

int fc_lfm_save_file(const fc_lfm *m, const char *path, char *err, size_t errsz) {
  fc_ckpt_writer *w = fc_ckpt_writer_new("lfm");
  fc_lfm_save(m, w, NULL);
  int rc = fc_ckpt_write(w, path, err, errsz);
  fc_ckpt_writer_free(w);
  return rc;
}

fc_lfm *fc_lfm_load_file(const char *path, char *err, size_t errsz) {
  fc_ckpt *ck = fc_ckpt_read(path, "lfm", err, errsz);
  if (!ck) return NULL;
  char why[300];
  fc_lfm *m = fc_lfm_load(ck, NULL, why, sizeof(why));
  if (!m) fc_set_err(err, errsz, "%s: %s", path, why);
  fc_ckpt_free(ck);
  return m;
}
