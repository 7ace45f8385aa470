/* fc_ae: the autoencoder of fc_ae.h. Configuration, layout, fitting and the
 * checkpoint section here; the layer code is fc_ae_impl.inc, instantiated
 * below for float (fc_nn's split sgemm) and double (naive loops). */
#include "fc_ae.h"

#include <math.h>
#include <string.h>

#include "fc_base.h"
#include "fc_nn.h"
#include "fc_optim.h"
#include "fc_par.h"

void fc_ae_config_default(fc_ae_config *cfg, int dx, int dz) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->dx = dx;
  cfg->dz = dz;
  cfg->width = 256;
  cfg->depth = 2;
  cfg->act = FC_ACT_SILU;
}

int fc_ae_config_check(const fc_ae_config *cfg, char *err, size_t errsz) {
  if (cfg->dx < 1 || cfg->dx > FC_AE_MAX_DIM)
    return fc_set_err(err, errsz, "autoencoder data dimension must be in 1..%d (got %d)", FC_AE_MAX_DIM, cfg->dx), -1;
  if (cfg->dz < 1 || cfg->dz > cfg->dx)
    return fc_set_err(err, errsz, "the latent dimension must be in 1..%d, the dimension of the data it encodes (got %d)",
                      cfg->dx, cfg->dz), -1;
  if (cfg->width < 1 || cfg->width > FC_AE_MAX_WIDTH)
    return fc_set_err(err, errsz, "autoencoder width must be in 1..%d (got %d)", FC_AE_MAX_WIDTH, cfg->width), -1;
  if (cfg->depth < 1 || cfg->depth > FC_AE_MAX_DEPTH)
    return fc_set_err(err, errsz, "autoencoder depth must be in 1..%d hidden layers a side (got %d)", FC_AE_MAX_DEPTH,
                      cfg->depth), -1;
  if (cfg->act < FC_ACT_SILU || cfg->act > FC_ACT_GELU)
    return fc_set_err(err, errsz, "unknown activation %d", (int)cfg->act), -1;
  return 0;
}

#define FC_AE_LAYERS
typedef struct {
  int in, out, act;
  size_t w, b;
} s_layer;

/* the layer stack: encoder dx -> width x depth -> dz, decoder dz -> width x depth -> dx */
static int s_layers(const fc_ae_config *cfg, s_layer *L) {
  int n = 0;
  size_t o = 0;
  for (int side = 0; side < 2; side++) {
    const int in = side ? cfg->dz : cfg->dx, out = side ? cfg->dx : cfg->dz;
    for (int i = 0; i <= cfg->depth; i++) {
      s_layer *l = &L[n++];
      l->in = i ? cfg->width : in;
      l->out = i < cfg->depth ? cfg->width : out;
      l->act = i < cfg->depth;
      l->w = o;
      o += (size_t)l->in * l->out;
      l->b = o;
      o += (size_t)l->out;
    }
  }
  return n;
}

size_t fc_ae_nparams(const fc_ae_config *cfg) {
  s_layer L[FC_AE_MAX_LAYERS];
  const int n = s_layers(cfg, L);
  return L[n - 1].b + (size_t)L[n - 1].out;
}

double fc_ae_macs(const fc_ae_config *cfg) {
  s_layer L[FC_AE_MAX_LAYERS];
  const int n = s_layers(cfg, L);
  double m = 0;
  for (int i = 0; i < n; i++) m += (double)L[i].in * L[i].out;
  return m;
}

int fc_ae_tensors(const fc_ae_config *cfg, fc_tensor_info *out, int max) {
  s_layer L[FC_AE_MAX_LAYERS];
  const int n = s_layers(cfg, L), ne = n / 2;
  int k = 0;
  for (int i = 0; i < n; i++)
    for (int wb = 0; wb < 2; wb++, k++) {
      if (k >= max) continue;
      snprintf(out[k].name, sizeof(out[k].name), "%s%d.%s", i < ne ? "enc" : "dec", i < ne ? i : i - ne, wb ? "b" : "w");
      out[k].offset = wb ? L[i].b : L[i].w;
      out[k].rows = L[i].out;
      out[k].cols = wb ? 1 : L[i].in;
      out[k].fan_in = L[i].in;
    }
  return k;
}

/* ---------- instantiations ---------- */

#define FC_NN_IMPL "fc_ae_impl.inc"
#define FC_NN_TAG ae
#define FC_NN_WS_F s_ws_f
#define FC_NN_WS_D s_ws_d
#include "fc_nn_inst.inc"

struct fc_ae_ws {
  s_ws_f *w;
};

/* ---------- the autoencoder ---------- */

fc_ae *fc_ae_new(const fc_ae_config *cfg) {
  FC_ASSERT(fc_ae_config_check(cfg, NULL, 0) == 0);
  fc_ae *ae = fc_calloc(1, sizeof(*ae));
  ae->cfg = *cfg;
  ae->params = fc_calloc(fc_ae_nparams(cfg), sizeof(float));
  ae->mu = fc_calloc((size_t)cfg->dz, sizeof(float));
  ae->sd = fc_malloc((size_t)cfg->dz * sizeof(float));
  for (int j = 0; j < cfg->dz; j++) ae->sd[j] = 1.0f;
  return ae;
}

void fc_ae_init(fc_ae *ae, fc_rng *rng) {
  s_layer L[FC_AE_MAX_LAYERS];
  const int n = s_layers(&ae->cfg, L);
  for (int i = 0; i < n; i++) {
    const double bound = 1.0 / sqrt((double)L[i].in);
    const size_t cnt = (size_t)L[i].in * L[i].out + (size_t)L[i].out; /* W then b, adjacent */
    for (size_t j = 0; j < cnt; j++) ae->params[L[i].w + j] = (float)((2.0 * fc_rng_uniform(rng) - 1.0) * bound);
  }
}

fc_ae *fc_ae_clone(const fc_ae *ae) {
  fc_ae *c = fc_ae_new(&ae->cfg);
  memcpy(c->params, ae->params, fc_ae_nparams(&ae->cfg) * sizeof(float));
  memcpy(c->mu, ae->mu, (size_t)ae->cfg.dz * sizeof(float));
  memcpy(c->sd, ae->sd, (size_t)ae->cfg.dz * sizeof(float));
  return c;
}

void fc_ae_free(fc_ae *ae) {
  if (!ae) return;
  free(ae->params);
  free(ae->mu);
  free(ae->sd);
  free(ae);
}

fc_ae_ws *fc_ae_ws_new(const fc_ae_config *cfg, int max_batch) {
  fc_ae_ws *ws = fc_calloc(1, sizeof(*ws));
  ws->w = s_ws_alloc_f(cfg, max_batch);
  return ws;
}

void fc_ae_ws_free(fc_ae_ws *ws) {
  if (!ws) return;
  s_ws_release_f(ws->w);
  free(ws);
}

void fc_ae_encode(const fc_ae *ae, fc_ae_ws *ws, float *z, const float *x, int B) {
  s_layer L[FC_AE_MAX_LAYERS];
  const int n = s_layers(&ae->cfg, L);
  s_run_f(ae->cfg.act, L, 0, n / 2, ae->params, ws->w, x, B);
  memcpy(z, ws->w->a[n / 2 - 1], (size_t)B * ae->cfg.dz * sizeof(float));
}

void fc_ae_decode(const fc_ae *ae, fc_ae_ws *ws, float *x, const float *z, int B) {
  s_layer L[FC_AE_MAX_LAYERS];
  const int n = s_layers(&ae->cfg, L);
  s_run_f(ae->cfg.act, L, n / 2, n, ae->params, ws->w, z, B);
  memcpy(x, ws->w->a[n - 1], (size_t)B * ae->cfg.dx * sizeof(float));
}

void fc_ae_encode_std(const fc_ae *ae, fc_ae_ws *ws, float *z, const float *x, int B) {
  const int d = ae->cfg.dz;
  fc_ae_encode(ae, ws, z, x, B);
  for (int b = 0; b < B; b++)
    for (int j = 0; j < d; j++) z[(size_t)b * d + j] = (z[(size_t)b * d + j] - ae->mu[j]) / ae->sd[j];
}

void fc_ae_decode_std(const fc_ae *ae, fc_ae_ws *ws, float *x, const float *z, int B) {
  const int d = ae->cfg.dz;
  float *u = ws->w->d0; /* free between passes, at least max_batch x dz */
  for (int b = 0; b < B; b++)
    for (int j = 0; j < d; j++) u[(size_t)b * d + j] = ae->mu[j] + ae->sd[j] * z[(size_t)b * d + j];
  s_layer L[FC_AE_MAX_LAYERS];
  const int n = s_layers(&ae->cfg, L);
  s_run_f(ae->cfg.act, L, n / 2, n, ae->params, ws->w, u, B);
  memcpy(x, ws->w->a[n - 1], (size_t)B * ae->cfg.dx * sizeof(float));
}

double fc_ae_loss_grad(const fc_ae *ae, fc_ae_ws *ws, float *grads, const float *x, int B) {
  return s_loss_grad_f(&ae->cfg, ae->params, ws->w, grads, x, B);
}

double fc_ae_loss_grad_ref(const fc_ae_config *cfg, const double *params, double *grads, const double *x, int B) {
  s_ws_d *ws = s_ws_alloc_d(cfg, B);
  const double loss = s_loss_grad_d(cfg, params, ws, grads, x, B);
  s_ws_release_d(ws);
  return loss;
}

/* ---------- fitting ---------- */

void fc_ae_fit_config_default(fc_ae_fit_config *c) {
  c->steps = 4000;
  c->batch = 256;
  c->lr = 1e-3f;
  c->seed = 0;
}

double fc_ae_mse(const fc_ae *ae, const float *x, size_t n) {
  if (!n) return NAN;
  const int chunk = 256;
  fc_ae_ws *ws = fc_ae_ws_new(&ae->cfg, chunk);
  double sum = 0;
  for (size_t r = 0; r < n; r += chunk) {
    const int B = n - r < (size_t)chunk ? (int)(n - r) : chunk;
    sum += fc_ae_loss_grad(ae, ws, NULL, x + r * ae->cfg.dx, B) * B;
  }
  fc_ae_ws_free(ws);
  return sum / (double)n;
}

int fc_ae_fit(fc_ae *ae, const float *x, size_t n, const float *vx, size_t nv, const fc_ae_fit_config *c,
              fc_ae_fit_result *res, char *err, size_t errsz) {
  const fc_ae_config *cfg = &ae->cfg;
  if (n < 1) return fc_set_err(err, errsz, "the autoencoder has no training rows to fit"), -1;
  if (c->steps < 1 || c->batch < 1) return fc_set_err(err, errsz, "autoencoder steps and batch must be >= 1"), -1;
  const double t0 = fc_now();
  fc_rng rng;
  fc_rng_seed(&rng, c->seed);
  fc_ae_init(ae, &rng);
  const size_t P = fc_ae_nparams(cfg), D = (size_t)cfg->dx;
  fc_adamw_config oc;
  fc_adamw_config_default(&oc);
  oc.lr = c->lr;
  oc.warmup = c->steps / 10 < 500 ? (int)(c->steps / 10) : 500;
  fc_adamw *opt = fc_adamw_new(P, &oc);
  float *g = fc_calloc(P, sizeof(float)), *xb = fc_malloc((size_t)c->batch * D * sizeof(float));
  fc_ae_ws *ws = fc_ae_ws_new(cfg, c->batch);
  int rc = 0;
  for (int64_t s = 0; s < c->steps; s++) {
    for (int b = 0; b < c->batch; b++)
      memcpy(xb + (size_t)b * D, x + (size_t)fc_rng_below(&rng, n) * D, D * sizeof(float));
    const double loss = fc_ae_loss_grad(ae, ws, g, xb, c->batch);
    if (!isfinite(loss)) {
      fc_set_err(err, errsz, "the autoencoder's reconstruction loss is not finite at step %lld: the data or the "
                 "learning rate %g is out of range", (long long)s, (double)c->lr);
      rc = -1;
      break;
    }
    fc_adamw_step(opt, ae->params, g, fc_clip_scale(fc_grad_norm(g, P), oc.clip), fc_lr_schedule(&oc, s, c->steps),
                  NULL, 0.0f);
  }
  fc_ae_ws_free(ws);
  fc_adamw_free(opt);
  free(g);
  free(xb);
  if (rc) return rc;
  /* the latents' scale on the training rows: encoded once, then two passes
   * (mean, then squared deviations: no cancellation) */
  const int d = cfg->dz, chunk = 256;
  double *s1 = fc_calloc((size_t)d, sizeof(double)), *s2 = fc_calloc((size_t)d, sizeof(double));
  float *z = fc_malloc(n * (size_t)d * sizeof(float));
  fc_ae_ws *wz = fc_ae_ws_new(cfg, chunk);
  for (size_t r = 0; r < n; r += chunk) {
    const int B = n - r < (size_t)chunk ? (int)(n - r) : chunk;
    fc_ae_encode(ae, wz, z + r * d, x + r * D, B);
  }
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < d; j++) s1[j] += z[i * d + j];
  for (int j = 0; j < d; j++) s1[j] /= (double)n;
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < d; j++) s2[j] += (z[i * d + j] - s1[j]) * (z[i * d + j] - s1[j]);
  for (int j = 0; j < d; j++) {
    const double sd = sqrt(s2[j] / (double)n);
    ae->mu[j] = (float)s1[j];
    ae->sd[j] = (float)(sd > 1e-6 ? sd : 1e-6);
  }
  fc_ae_ws_free(wz);
  free(z);
  free(s1);
  free(s2);
  res->train_mse = fc_ae_mse(ae, x, n);
  res->valid_mse = nv ? fc_ae_mse(ae, vx, nv) : NAN;
  res->seconds = fc_now() - t0;
  return 0;
}

/* ---------- checkpoint section ---------- */

#define S_AE_VERSION 1

void fc_ae_save(const fc_ae *ae, fc_ckpt_writer *w, const char *name) {
  fc_ckpt_buf b = {0};
  const fc_ae_config *c = &ae->cfg;
  fc_ckpt_put_u32(&b, S_AE_VERSION);
  const int32_t v[5] = {c->dx, c->dz, c->width, c->depth, c->act};
  for (int i = 0; i < 5; i++) fc_ckpt_put_i32(&b, v[i]);
  fc_ckpt_put_f32s(&b, ae->mu, (size_t)c->dz);
  fc_ckpt_put_f32s(&b, ae->sd, (size_t)c->dz);
  fc_ckpt_put_f32s(&b, ae->params, fc_ae_nparams(c));
  fc_ckpt_add_buf(w, name, &b);
}

fc_ae *fc_ae_load(const fc_ckpt *ck, const char *name, int *missing, char *why, size_t n) {
  size_t size = 0;
  *missing = 0;
  if (!fc_ckpt_get(ck, name, &size)) {
    *missing = 1;
    return fc_set_err(why, n, "the checkpoint has no section '%s'", name), NULL;
  }
  fc_ckpt_cur c;
  uint32_t ver;
  int32_t v[5];
  static const char *const names[5] = {"dx", "dz", "width", "depth", "act"};
  const int32_t lo[5] = {1, 1, 1, 1, FC_ACT_SILU}, hi[5] = {FC_AE_MAX_DIM, FC_AE_MAX_DIM, FC_AE_MAX_WIDTH,
                                                            FC_AE_MAX_DEPTH, FC_ACT_GELU};
  if (fc_ckpt_cur_open(&c, ck, name, why, n) || fc_ckpt_cur_version(&c, S_AE_VERSION, &ver)) return NULL;
  for (int i = 0; i < 5; i++)
    if (fc_ckpt_get_i32(&c, names[i], lo[i], hi[i], &v[i])) return NULL;
  fc_ae_config cfg = {v[0], v[1], v[2], v[3], (fc_act)v[4]};
  char e2[256];
  if (fc_ae_config_check(&cfg, e2, sizeof(e2)))
    return fc_set_err(why, n, "checkpoint is corrupted: section '%s': %s", name, e2), NULL;
  /* the floats must be in the section before anything is sized from them */
  const double want = 4.0 * (2.0 * cfg.dz + (double)fc_ae_nparams(&cfg)) + 4.0 + 5 * 4.0;
  if (want != (double)size)
    return fc_set_err(why, n, "checkpoint is corrupted: section '%s' holds %zu bytes, its autoencoder needs %.0f", name,
                      size, want), NULL;
  fc_ae *ae = fc_ae_new(&cfg);
  if (fc_ckpt_get_f32s(&c, "mu", ae->mu, (size_t)cfg.dz) || fc_ckpt_get_f32s(&c, "sd", ae->sd, (size_t)cfg.dz) ||
      fc_ckpt_get_f32s(&c, "params", ae->params, fc_ae_nparams(&cfg)) || fc_ckpt_cur_end(&c)) {
    fc_ae_free(ae);
    return NULL;
  }
  for (int j = 0; j < cfg.dz; j++)
    if (!isfinite(ae->mu[j]) || !isfinite(ae->sd[j]) || !(ae->sd[j] > 0)) {
      fc_set_err(why, n, "checkpoint is corrupted: section '%s' has a non-finite latent mean or a scale that is not "
                 "positive at dimension %d", name, j);
      fc_ae_free(ae);
      return NULL;
    }
  return ae;
}
