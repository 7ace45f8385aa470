/* fc_mlp: residual MLP velocity network. Configuration, parameter layout and
 * initialization here; the layer code is in fc_mlp_impl.inc, instantiated
 * below in float on fc_nn's sgemm kernels and in double on its naive loops
 * (the reference). */
#include "fc_mlp.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fc_base.h"
#include "fc_nn.h"
#include "fc_par.h"

void fc_mlp_config_default(fc_mlp_config *cfg, int dx, int dc) {
  cfg->dx = dx;
  cfg->dc = dc;
  cfg->width = 256;
  cfg->depth = 3;
  cfg->temb = 32;
  cfg->act = FC_ACT_SILU;
  cfg->cond = FC_COND_FILM;
}

int fc_mlp_config_check(const fc_mlp_config *cfg, char *err, size_t errsz) {
  if (cfg->dx < 1) return fc_set_err(err, errsz, "network x dimension must be >= 1 (got %d)", cfg->dx), -1;
  if (cfg->dc < 0) return fc_set_err(err, errsz, "network condition dimension must be >= 0 (got %d)", cfg->dc), -1;
  if (cfg->width < 1) return fc_set_err(err, errsz, "network width must be >= 1 (got %d)", cfg->width), -1;
  if (cfg->depth < 0 || cfg->depth > 64)
    return fc_set_err(err, errsz, "network depth must be in 0..64 (got %d)", cfg->depth), -1;
  /* FiLM applies t and c inside the residual blocks: without blocks the
   * network would silently ignore both */
  if (cfg->depth == 0 && cfg->cond == FC_COND_FILM)
    return fc_set_err(err, errsz, "network depth 0 has no residual block for FiLM to condition, so t and c would be "
                      "ignored: use depth >= 1, or concat conditioning"), -1;
  if (cfg->temb < 2 || cfg->temb % 2)
    return fc_set_err(err, errsz, "time embedding size must be even and >= 2 (got %d)", cfg->temb), -1;
  if (cfg->act < FC_ACT_SILU || cfg->act > FC_ACT_GELU)
    return fc_set_err(err, errsz, "unknown activation %d", (int)cfg->act), -1;
  if (cfg->cond != FC_COND_FILM && cfg->cond != FC_COND_CONCAT)
    return fc_set_err(err, errsz, "unknown conditioning mode %d", (int)cfg->cond), -1;
  return 0;
}

void fc_mlp_layout_make(fc_mlp_layout *lay, const fc_mlp_config *cfg) {
  const size_t D = (size_t)cfg->dx, H = (size_t)cfg->width;
  const int film = cfg->cond == FC_COND_FILM;
  memset(lay, 0, sizeof(*lay));
  lay->din = film ? cfg->dx : cfg->dx + cfg->temb + cfg->dc;
  lay->dk = film ? cfg->temb + cfg->dc : 0;
  size_t o = 0;
  lay->w_in = o; o += H * (size_t)lay->din;
  lay->b_in = o; o += H;
  lay->blocks = o;
  size_t b = 0;
  lay->w1 = b; b += H * H;
  lay->b1 = b; b += H;
  lay->w2 = b; b += H * H;
  lay->b2 = b; b += H;
  lay->blk_stride = b;
  o += b * (size_t)cfg->depth;
  if (film) {
    size_t F = 2 * H * (size_t)cfg->depth;
    lay->wf = o; o += F * (size_t)lay->dk;
    lay->bf = o; o += F;
  }
  lay->w_out = o; o += D * H;
  lay->b_out = o; o += D;
  lay->total = o;
}

size_t fc_mlp_nparams(const fc_mlp_config *cfg) {
  fc_mlp_layout lay;
  fc_mlp_layout_make(&lay, cfg);
  return lay.total;
}

double fc_mlp_macs(const fc_mlp_config *cfg) {
  fc_mlp_layout lay;
  fc_mlp_layout_make(&lay, cfg);
  double H = cfg->width;
  double per_block = 2.0 * H * H + (cfg->cond == FC_COND_FILM ? 2.0 * H * lay.dk : 0.0);
  return H * lay.din + cfg->depth * per_block + H * cfg->dx;
}

int fc_mlp_width_matching(const fc_mlp_config *cfg, int copies) {
  double target = (double)fc_mlp_nparams(cfg);
  fc_mlp_config c = *cfg;
  int best = 1;
  double best_gap = 1e300;
  for (int w = 1; w <= cfg->width; w++) {
    c.width = w;
    double gap = fabs((double)fc_mlp_nparams(&c) * copies - target);
    if (gap < best_gap) {
      best_gap = gap;
      best = w;
    }
  }
  return best;
}

static int s_add(fc_tensor_info *out, int n, int max, const char *name, size_t off, int rows,
                 int cols, int fan_in) {
  if (n < max) {
    snprintf(out[n].name, sizeof(out[n].name), "%s", name);
    out[n].offset = off;
    out[n].rows = rows;
    out[n].cols = cols;
    out[n].fan_in = fan_in;
  }
  return n + 1;
}

int fc_mlp_tensors(const fc_mlp_config *cfg, fc_tensor_info *out, int max) {
  fc_mlp_layout lay;
  fc_mlp_layout_make(&lay, cfg);
  const int H = cfg->width, D = cfg->dx;
  int n = 0;
  char nm[24];
  n = s_add(out, n, max, "w_in", lay.w_in, H, lay.din, lay.din);
  n = s_add(out, n, max, "b_in", lay.b_in, H, 1, lay.din);
  for (int l = 0; l < cfg->depth; l++) {
    size_t base = lay.blocks + (size_t)l * lay.blk_stride;
    snprintf(nm, sizeof(nm), "blk%d.w1", l); n = s_add(out, n, max, nm, base + lay.w1, H, H, H);
    snprintf(nm, sizeof(nm), "blk%d.b1", l); n = s_add(out, n, max, nm, base + lay.b1, H, 1, H);
    snprintf(nm, sizeof(nm), "blk%d.w2", l); n = s_add(out, n, max, nm, base + lay.w2, H, H, H);
    snprintf(nm, sizeof(nm), "blk%d.b2", l); n = s_add(out, n, max, nm, base + lay.b2, H, 1, H);
  }
  if (cfg->cond == FC_COND_FILM && cfg->depth > 0) {
    n = s_add(out, n, max, "film.w", lay.wf, 2 * H * cfg->depth, lay.dk, lay.dk);
    n = s_add(out, n, max, "film.b", lay.bf, 2 * H * cfg->depth, 1, lay.dk);
  }
  n = s_add(out, n, max, "w_out", lay.w_out, D, H, H);
  n = s_add(out, n, max, "b_out", lay.b_out, D, 1, H);
  return n;
}

void fc_mlp_bind(fc_mlp *net, const fc_mlp_config *cfg, float *params) {
  net->cfg = *cfg;
  fc_mlp_layout_make(&net->lay, cfg);
  net->params = params;
}

void fc_mlp_init(fc_mlp *net, fc_rng *rng) {
  fc_tensor_info ti[FC_MLP_MAX_TENSORS];
  int n = fc_mlp_tensors(&net->cfg, ti, (int)(sizeof(ti) / sizeof(ti[0])));
  for (int i = 0; i < n; i++) {
    double bound = 1.0 / sqrt((double)ti[i].fan_in);
    float *p = net->params + ti[i].offset;
    size_t cnt = (size_t)ti[i].rows * (size_t)ti[i].cols;
    for (size_t j = 0; j < cnt; j++) p[j] = (float)((2.0 * fc_rng_uniform(rng) - 1.0) * bound);
  }
}

static const char *const s_act_names[] = {"silu", "mish", "gelu"};
static const char *const s_cond_names[] = {"film", "concat"};
const char *fc_act_name(fc_act act) { return (unsigned)act < 3 ? s_act_names[act] : "?"; }
int fc_act_parse(const char *s) { return fc_name_index(s, s_act_names, 3); }
const char *fc_cond_name(fc_cond_mode c) { return (unsigned)c < 2 ? s_cond_names[c] : "?"; }
int fc_cond_parse(const char *s) { return fc_name_index(s, s_cond_names, 2); }

/* ---------- instantiations ---------- */

#define FC_NN_IMPL "fc_mlp_impl.inc"
#define FC_NN_TAG mlp
#define FC_NN_WS_F fc_mlp_ws
#define FC_NN_WS_D fc_mlp_ws_ref
#include "fc_nn_inst.inc"

fc_mlp_ws *fc_mlp_ws_new(const fc_mlp_config *cfg, int max_batch) { return s_ws_alloc_f(cfg, max_batch); }
void fc_mlp_ws_free(fc_mlp_ws *ws) { s_ws_release_f(ws); }

void fc_mlp_forward(const fc_mlp *net, fc_mlp_ws *ws, float *y, const float *t, const float *x,
                    const float *c, int B) {
  s_forward_f(&net->cfg, &net->lay, net->params, ws, y, t, x, c, B);
}
void fc_mlp_backward(const fc_mlp *net, fc_mlp_ws *ws, float *dparams, int accumulate, float *dx,
                     float *dc, const float *dy, int B) {
  s_backward_f(&net->cfg, &net->lay, net->params, ws, dparams, accumulate, dx, dc, dy, B);
}

fc_mlp_ws_ref *fc_mlp_ws_new_ref(const fc_mlp_config *cfg, int max_batch) { return s_ws_alloc_d(cfg, max_batch); }
void fc_mlp_ws_free_ref(fc_mlp_ws_ref *ws) { s_ws_release_d(ws); }

void fc_mlp_forward_ref(const fc_mlp_config *cfg, const double *params, fc_mlp_ws_ref *ws, double *y,
                        const double *t, const double *x, const double *c, int B) {
  fc_mlp_layout lay;
  fc_mlp_layout_make(&lay, cfg);
  s_forward_d(cfg, &lay, params, ws, y, t, x, c, B);
}
void fc_mlp_backward_ref(const fc_mlp_config *cfg, const double *params, fc_mlp_ws_ref *ws,
                         double *dparams, int accumulate, double *dx, double *dc, const double *dy,
                         int B) {
  fc_mlp_layout lay;
  fc_mlp_layout_make(&lay, cfg);
  s_backward_d(cfg, &lay, params, ws, dparams, accumulate, dx, dc, dy, B);
}

double fc_act_ref(fc_act act, double x, double *dydx) {
  if (dydx) *dydx = s_act_bwd_d(act, x);
  return s_act_fwd_d(act, x);
}
