/* fc_mlp: residual MLP velocity network. Configuration, parameter layout and
 * initialization here; the layer code is in fc_mlp_impl.inc, instantiated
 * below in float on cblas_sgemm and in double on naive loops (the reference). */
#include "fc_mlp.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fc_base.h"
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

/* ---------- float kernels: BLAS ---------- */

/* exp for the activations: a Cody-Waite reduction and a degree-6 Taylor
 * polynomial (relative error < 2e-7), branch-free so loops vectorize. The
 * argument saturates at +-40, where every activation is flat to float
 * precision. (With the full range [-87, 88] GCC specializes the clamped lanes
 * into x / (1 + e^88), a denormal for every lane, and each denormal costs a
 * microcode assist: SiLU ran 2.5x slower.) The clamp also maps NaN into
 * range, so the integer exponent below is always defined; the activations
 * still propagate NaN through their x factor. */
static inline float s_expf(float x) {
  x = x > -40.0f ? x : -40.0f; /* false for NaN: -40 */
  x = x < 40.0f ? x : 40.0f;
  float k = floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - k * 0.693145751953125f;
  r = r - k * 1.428606765330187045e-06f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f +
            r * (0.008333334f + r * 0.0013888889f)))));
  union { int32_t i; float f; } sc;
  sc.i = ((int32_t)k + 127) << 23;
  return p * sc.f;
}

/* Each matmul is split over fc_par's threads by columns of its output (rows
 * of the weight matrix for the forward, the weight gradient's rows, the
 * input gradient's columns), every part a single-threaded BLAS call with no
 * reduction across threads. (Column splits keep each thread on its own slice of the weights:
 * about 150 GFLOP/s on 2 cores at 256 x 512 x 512 against 120 for row
 * splits.) Small products run on the calling thread. */
typedef struct {
  float *out, *db;
  const float *in, *w, *b;
  int B, IN, OUT, acc;
} s_mm_job;

static void s_mm_split(s_mm_job *j, size_t cols, fc_par_fn fn) {
  double macs = (double)j->B * j->IN * j->OUT;
  fc_par_for(cols, macs >= (double)(1 << 20) ? 16 : cols, fn, j);
}

/* out[:, lo:hi] = in W[lo:hi]^T + b[lo:hi] */
static void s_mm_fwd_cols(void *ctx, size_t lo, size_t hi) {
  const s_mm_job *j = ctx;
  const int N = (int)(hi - lo), IN = j->IN, OUT = j->OUT, B = j->B;
  float *out = j->out + lo;
  const float *w = j->w + lo * (size_t)IN;
  for (int i = 0; i < B; i++) memcpy(out + (size_t)i * OUT, j->b + lo, (size_t)N * sizeof(float));
  if (B == 1)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, N, IN, 1.0f, w, IN, j->in, 1, 1.0f, out, 1);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, N, IN, 1.0f, j->in, IN, w, IN, 1.0f, out, OUT);
}

/* out (B, OUT) = in (B, IN) W^T + b, W (OUT, IN) */
static void s_mm_fwd_f(float *out, const float *in, const float *w, const float *b, int B, int IN, int OUT) {
  s_mm_job j = {out, NULL, in, w, b, B, IN, OUT, 0};
  s_mm_split(&j, (size_t)OUT, s_mm_fwd_cols);
}

/* dW[lo:hi] (+)= dout[:, lo:hi]^T in; db[lo:hi] (+)= column sums of dout */
static void s_mm_bwd_w_rows(void *ctx, size_t lo, size_t hi) {
  const s_mm_job *j = ctx;
  const int M = (int)(hi - lo), IN = j->IN, OUT = j->OUT, B = j->B;
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, IN, B, 1.0f, j->in + lo, OUT, j->w, IN,
              j->acc ? 1.0f : 0.0f, j->out + lo * (size_t)IN, IN);
  if (!j->acc) memset(j->db + lo, 0, (hi - lo) * sizeof(float));
  for (int i = 0; i < B; i++) {
    const float *d = j->in + (size_t)i * OUT;
    for (size_t o = lo; o < hi; o++) j->db[o] += d[o];
  }
}

/* dW (OUT, IN) = dout^T in; db (OUT) = column sums of dout (+= when acc) */
static void s_mm_bwd_w_f(float *dw, float *db, const float *dout, const float *in, int B, int IN, int OUT,
                         int acc) {
  s_mm_job j = {dw, db, dout, in, NULL, B, IN, OUT, acc};
  s_mm_split(&j, (size_t)OUT, s_mm_bwd_w_rows);
}

/* din[:, lo:hi] = dout W[:, lo:hi] */
static void s_mm_bwd_x_cols(void *ctx, size_t lo, size_t hi) {
  const s_mm_job *j = ctx;
  const int N = (int)(hi - lo), IN = j->IN, OUT = j->OUT;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->B, N, OUT, 1.0f, j->in, OUT, j->w + lo, IN, 0.0f,
              j->out + lo, IN);
}

/* din (B, IN) = dout (B, OUT) W */
static void s_mm_bwd_x_f(float *din, const float *dout, const float *w, int B, int IN, int OUT) {
  s_mm_job j = {din, NULL, dout, w, NULL, B, IN, OUT, 0};
  s_mm_split(&j, (size_t)IN, s_mm_bwd_x_cols);
}

/* ---------- double kernels: naive loops, the specification ---------- */

static void s_mm_fwd_d(double *out, const double *in, const double *w, const double *b, int B, int IN, int OUT) {
  for (int i = 0; i < B; i++)
    for (int o = 0; o < OUT; o++) {
      double s = b[o];
      for (int k = 0; k < IN; k++) s += in[(size_t)i * IN + k] * w[(size_t)o * IN + k];
      out[(size_t)i * OUT + o] = s;
    }
}
static void s_mm_bwd_w_d(double *dw, double *db, const double *dout, const double *in, int B, int IN, int OUT,
                         int acc) {
  for (int o = 0; o < OUT; o++) {
    for (int k = 0; k < IN; k++) {
      double s = 0;
      for (int i = 0; i < B; i++) s += dout[(size_t)i * OUT + o] * in[(size_t)i * IN + k];
      dw[(size_t)o * IN + k] = (acc ? dw[(size_t)o * IN + k] : 0.0) + s;
    }
    double s = 0;
    for (int i = 0; i < B; i++) s += dout[(size_t)i * OUT + o];
    db[o] = (acc ? db[o] : 0.0) + s;
  }
}
static void s_mm_bwd_x_d(double *din, const double *dout, const double *w, int B, int IN, int OUT) {
  for (int i = 0; i < B; i++)
    for (int k = 0; k < IN; k++) {
      double s = 0;
      for (int o = 0; o < OUT; o++) s += dout[(size_t)i * OUT + o] * w[(size_t)o * IN + k];
      din[(size_t)i * IN + k] = s;
    }
}

/* ---------- instantiations ---------- */

#define REAL float
#define WS fc_mlp_ws
#define FN(name) s_##name##_f
#define EXPR(x) s_expf(x)
#define PAR_FOR(n, grain, fn, ctx) fc_par_for((n), (grain), (fn), (ctx))
#include "fc_mlp_impl.inc"
#undef REAL
#undef WS
#undef FN
#undef EXPR
#undef PAR_FOR

#define REAL double
#define WS fc_mlp_ws_ref
#define FN(name) s_##name##_d
#define EXPR(x) exp(x)
#define PAR_FOR(n, grain, fn, ctx) ((void)(grain), (fn)((ctx), 0, (n)))
#include "fc_mlp_impl.inc"
#undef REAL
#undef WS
#undef FN
#undef EXPR
#undef PAR_FOR

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
