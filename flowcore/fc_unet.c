/* fc_unet: Diffusion Policy's 1-D temporal conv U-Net as a velocity network.
 * Configuration, parameter layout and initialization here, and the
 * convolution kernels: float as im2col + fc_nn's split sgemm, double as
 * direct loops (the specification). The layer code (GroupNorm, FiLM, the
 * U-Net's wiring) is fc_unet_impl.inc, instantiated below for both. */
#include "fc_unet.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fc_base.h"
#include "fc_nn.h"
#include "fc_par.h"

/* ---------- configuration and layout ---------- */

void fc_unet_config_default(fc_unet_config *cfg, int T, int A, int dc) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->dx = T * A;
  cfg->dc = dc;
  cfg->horizon = T;
  cfg->adim = A;
  cfg->temb = 64;
  /* three levels when the horizon allows it (two halvings), else fewer */
  cfg->nlevels = T % 4 == 0 ? 3 : T % 2 == 0 ? 2 : 1;
  const int dims[3] = {64, 128, 256};
  for (int i = 0; i < cfg->nlevels; i++) cfg->dims[i] = dims[i];
  cfg->kernel = 5;
  cfg->groups = 8;
  cfg->act = FC_ACT_MISH;
}

int fc_unet_config_check(const fc_unet_config *cfg, char *err, size_t errsz) {
  if (cfg->horizon < 1 || cfg->horizon > FC_UNET_MAX_HORIZON)
    return fc_set_err(err, errsz, "U-Net horizon must be in 1..%d (got %d)", FC_UNET_MAX_HORIZON, cfg->horizon), -1;
  if (cfg->adim < 1 || cfg->adim > FC_UNET_MAX_ADIM)
    return fc_set_err(err, errsz, "U-Net action dimension must be in 1..%d (got %d)", FC_UNET_MAX_ADIM, cfg->adim), -1;
  if (cfg->dx != cfg->horizon * cfg->adim)
    return fc_set_err(err, errsz, "U-Net x dimension %d must be horizon %d x action dimension %d = %d", cfg->dx,
                      cfg->horizon, cfg->adim, cfg->horizon * cfg->adim), -1;
  if (cfg->dc < 0 || cfg->dc > FC_UNET_MAX_COND)
    return fc_set_err(err, errsz, "U-Net condition dimension must be in 0..%d (got %d)", FC_UNET_MAX_COND, cfg->dc), -1;
  if (cfg->temb < 2 || cfg->temb % 2 || cfg->temb > FC_UNET_MAX_TEMB)
    return fc_set_err(err, errsz, "time embedding size must be even and in 2..%d (got %d)", FC_UNET_MAX_TEMB,
                      cfg->temb), -1;
  if (cfg->nlevels < 1 || cfg->nlevels > FC_UNET_MAX_LEVELS)
    return fc_set_err(err, errsz, "U-Net levels must be in 1..%d (got %d)", FC_UNET_MAX_LEVELS, cfg->nlevels), -1;
  const int halvings = 1 << (cfg->nlevels - 1);
  if (cfg->horizon % halvings)
    return fc_set_err(err, errsz, "horizon %d is not divisible by 2^(levels - 1) = %d, which a %d-level U-Net halves "
                      "it by: use a multiple of %d or fewer levels", cfg->horizon, halvings, cfg->nlevels, halvings), -1;
  if (cfg->kernel < 1 || cfg->kernel % 2 == 0 || cfg->kernel > FC_UNET_MAX_KERNEL)
    return fc_set_err(err, errsz, "U-Net kernel size must be odd and in 1..%d, so that padding kernel/2 keeps the "
                      "length (got %d)", FC_UNET_MAX_KERNEL, cfg->kernel), -1;
  if (cfg->groups < 1)
    return fc_set_err(err, errsz, "GroupNorm groups must be >= 1 (got %d)", cfg->groups), -1;
  for (int i = 0; i < cfg->nlevels; i++) {
    const int d = cfg->dims[i];
    if (d < 1 || d > FC_UNET_MAX_DIM)
      return fc_set_err(err, errsz, "U-Net level %d channels must be in 1..%d (got %d)", i, FC_UNET_MAX_DIM, d), -1;
    if (d % cfg->groups)
      return fc_set_err(err, errsz, "U-Net level %d channels %d are not divisible by the %d GroupNorm groups", i, d,
                        cfg->groups), -1;
  }
  if (cfg->act < FC_ACT_SILU || cfg->act > FC_ACT_GELU)
    return fc_set_err(err, errsz, "unknown activation %d", (int)cfg->act), -1;
  return 0;
}

/* a block's tensors, in vector order, from offset o; returns the next offset */
static size_t s_block_make(fc_unet_block *bk, int cin, int cout, int len, int K, int film, size_t o) {
  memset(bk, 0, sizeof(*bk));
  bk->cin = cin;
  bk->cout = cout;
  bk->len = len;
  bk->film = film;
  bk->res = cin != cout;
  const size_t ci = (size_t)cin, co = (size_t)cout;
  bk->w1 = o; o += co * K * ci;
  bk->b1 = o; o += co;
  bk->n1w = o; o += co;
  bk->n1b = o; o += co;
  bk->w2 = o; o += co * K * co;
  bk->b2 = o; o += co;
  bk->n2w = o; o += co;
  bk->n2b = o; o += co;
  if (bk->res) {
    bk->wr = o; o += co * ci;
    bk->br = o; o += co;
  }
  return o;
}

void fc_unet_layout_make(fc_unet_layout *lay, const fc_unet_config *cfg) {
  memset(lay, 0, sizeof(*lay));
  const int L = cfg->nlevels, K = cfg->kernel, T = cfg->horizon, A = cfg->adim;
  const size_t E = (size_t)cfg->temb;
  const int *d = cfg->dims;
  lay->nblocks = 4 * L;
  lay->dk = cfg->temb + cfg->dc;
  size_t o = 0;
  int film = 0;
  lay->tw1 = o; o += 4 * E * E;
  lay->tb1 = o; o += 4 * E;
  lay->tw2 = o; o += E * 4 * E;
  lay->tb2 = o; o += E;
  /* encoder */
  for (int i = 0; i < L; i++) {
    const int len = T >> i;
    o = s_block_make(&lay->blk[2 * i], i ? d[i - 1] : A, d[i], len, K, film, o);
    film += 2 * d[i];
    o = s_block_make(&lay->blk[2 * i + 1], d[i], d[i], len, K, film, o);
    film += 2 * d[i];
    if (i < L - 1) {
      lay->down_w[i] = o; o += (size_t)d[i] * 3 * d[i];
      lay->down_b[i] = o; o += (size_t)d[i];
    }
  }
  /* middle */
  for (int q = 0; q < 2; q++) {
    o = s_block_make(&lay->blk[2 * L + q], d[L - 1], d[L - 1], T >> (L - 1), K, film, o);
    film += 2 * d[L - 1];
  }
  /* decoder: stage j at level i = L - 1 - j, from [x ; skip i] (2 d[i]) to d[i - 1] */
  for (int j = 0; j < L - 1; j++) {
    const int i = L - 1 - j, len = T >> i, n = 2 * L + 2 + 2 * j;
    o = s_block_make(&lay->blk[n], 2 * d[i], d[i - 1], len, K, film, o);
    film += 2 * d[i - 1];
    o = s_block_make(&lay->blk[n + 1], d[i - 1], d[i - 1], len, K, film, o);
    film += 2 * d[i - 1];
    lay->up_w[j] = o; o += (size_t)4 * d[i - 1] * d[i - 1];
    lay->up_b[j] = o; o += (size_t)d[i - 1];
  }
  lay->fw = film;
  lay->wf = o; o += (size_t)film * lay->dk;
  lay->bf = o; o += (size_t)film;
  lay->fin_w = o; o += (size_t)d[0] * K * d[0];
  lay->fin_b = o; o += (size_t)d[0];
  lay->fin_nw = o; o += (size_t)d[0];
  lay->fin_nb = o; o += (size_t)d[0];
  lay->w_out = o; o += (size_t)A * d[0];
  lay->b_out = o; o += (size_t)A;
  lay->total = o;
}

size_t fc_unet_nparams(const fc_unet_config *cfg) {
  fc_unet_layout lay;
  fc_unet_layout_make(&lay, cfg);
  return lay.total;
}

double fc_unet_macs(const fc_unet_config *cfg) {
  fc_unet_layout lay;
  fc_unet_layout_make(&lay, cfg);
  const double K = cfg->kernel, E = cfg->temb, T = cfg->horizon;
  const int L = cfg->nlevels;
  double m = 8.0 * E * E + (double)lay.dk * lay.fw; /* time MLP, FiLM */
  for (int n = 0; n < lay.nblocks; n++) {
    const fc_unet_block *bk = &lay.blk[n];
    m += (double)bk->len * bk->cout * (K * bk->cin + K * bk->cout + (bk->res ? bk->cin : 0));
  }
  for (int i = 0; i < L - 1; i++) m += (double)(cfg->horizon >> (i + 1)) * 3.0 * cfg->dims[i] * cfg->dims[i];
  for (int j = 0; j < L - 1; j++) {
    const int i = L - 1 - j;
    m += (double)(cfg->horizon >> i) * 4.0 * cfg->dims[i - 1] * cfg->dims[i - 1];
  }
  m += T * cfg->dims[0] * (K * cfg->dims[0] + cfg->adim);
  return m;
}

fc_unet_config fc_unet_width_matching(const fc_unet_config *cfg, int copies) {
  const double target = (double)fc_unet_nparams(cfg);
  const int G = cfg->groups, steps = cfg->dims[0] / G;
  fc_unet_config best = *cfg, c = *cfg;
  double best_gap = 1e300;
  /* dims[0] = m G for m = 1..dims[0] / G, the other levels scaled alike */
  for (int m = 1; m <= steps; m++) {
    for (int i = 0; i < cfg->nlevels; i++) {
      long q = lround((double)cfg->dims[i] * m / steps / G);
      int di = (int)(q < 1 ? 1 : q) * G;
      c.dims[i] = di < cfg->dims[i] ? di : cfg->dims[i];
    }
    double gap = fabs((double)fc_unet_nparams(&c) * copies - target);
    if (gap < best_gap) {
      best_gap = gap;
      best = c;
    }
  }
  return best;
}

/* initialization of a tensor: uniform from its fan-in, or GroupNorm's 1 / 0 */
enum { S_INIT_UNIFORM, S_INIT_ONE, S_INIT_ZERO };

static int s_add(fc_tensor_info *out, int *kinds, int n, int max, const char *name, size_t off, int rows, int cols,
                 int fan_in, int kind) {
  if (n < max) {
    snprintf(out[n].name, sizeof(out[n].name), "%s", name);
    out[n].offset = off;
    out[n].rows = rows;
    out[n].cols = cols;
    out[n].fan_in = fan_in;
    if (kinds) kinds[n] = kind;
  }
  return n + 1;
}

/* a conv / linear weight and bias, both from fan_in */
static int s_add_wb(fc_tensor_info *out, int *kinds, int n, int max, const char *pre, const char *what, size_t w,
                    size_t b, int rows, int cols, int nbias, int fan_in) {
  char nm[sizeof(((fc_tensor_info *)0)->name)];
  snprintf(nm, sizeof(nm), "%s%s.w", pre, what);
  n = s_add(out, kinds, n, max, nm, w, rows, cols, fan_in, S_INIT_UNIFORM);
  snprintf(nm, sizeof(nm), "%s%s.b", pre, what);
  return s_add(out, kinds, n, max, nm, b, nbias, 1, fan_in, S_INIT_UNIFORM);
}

static int s_add_gn(fc_tensor_info *out, int *kinds, int n, int max, const char *pre, const char *what, size_t w,
                    size_t b, int C) {
  char nm[sizeof(((fc_tensor_info *)0)->name)];
  snprintf(nm, sizeof(nm), "%s%s.w", pre, what);
  n = s_add(out, kinds, n, max, nm, w, C, 1, 0, S_INIT_ONE);
  snprintf(nm, sizeof(nm), "%s%s.b", pre, what);
  return s_add(out, kinds, n, max, nm, b, C, 1, 0, S_INIT_ZERO);
}

static int s_add_block(fc_tensor_info *out, int *kinds, int n, int max, const char *pre, const fc_unet_block *bk,
                       int K) {
  const int ci = bk->cin, co = bk->cout;
  n = s_add_wb(out, kinds, n, max, pre, "conv1", bk->w1, bk->b1, co, K * ci, co, K * ci);
  n = s_add_gn(out, kinds, n, max, pre, "gn1", bk->n1w, bk->n1b, co);
  n = s_add_wb(out, kinds, n, max, pre, "conv2", bk->w2, bk->b2, co, K * co, co, K * co);
  n = s_add_gn(out, kinds, n, max, pre, "gn2", bk->n2w, bk->n2b, co);
  if (bk->res) n = s_add_wb(out, kinds, n, max, pre, "res", bk->wr, bk->br, co, ci, co, ci);
  return n;
}

static int s_tensors(const fc_unet_config *cfg, fc_tensor_info *out, int *kinds, int max) {
  fc_unet_layout lay;
  fc_unet_layout_make(&lay, cfg);
  const int L = cfg->nlevels, K = cfg->kernel, E = cfg->temb, *d = cfg->dims;
  char pre[24];
  int n = 0;
  n = s_add_wb(out, kinds, n, max, "time.", "fc1", lay.tw1, lay.tb1, 4 * E, E, 4 * E, E);
  n = s_add_wb(out, kinds, n, max, "time.", "fc2", lay.tw2, lay.tb2, E, 4 * E, E, 4 * E);
  for (int i = 0; i < L; i++) {
    for (int q = 0; q < 2; q++) {
      snprintf(pre, sizeof(pre), "enc%d.%d.", i, q);
      n = s_add_block(out, kinds, n, max, pre, &lay.blk[2 * i + q], K);
    }
    snprintf(pre, sizeof(pre), "enc%d.", i);
    if (i < L - 1) n = s_add_wb(out, kinds, n, max, pre, "down", lay.down_w[i], lay.down_b[i], d[i], 3 * d[i], d[i],
                                  3 * d[i]);
  }
  for (int q = 0; q < 2; q++) {
    snprintf(pre, sizeof(pre), "mid.%d.", q);
    n = s_add_block(out, kinds, n, max, pre, &lay.blk[2 * L + q], K);
  }
  for (int j = 0; j < L - 1; j++) {
    const int c = d[L - 2 - j];
    for (int q = 0; q < 2; q++) {
      snprintf(pre, sizeof(pre), "dec%d.%d.", j, q);
      n = s_add_block(out, kinds, n, max, pre, &lay.blk[2 * L + 2 + 2 * j + q], K);
    }
    /* PyTorch's ConvTranspose1d fan-in: its weight's dim 1 (out channels) x K */
    snprintf(pre, sizeof(pre), "dec%d.", j);
    n = s_add_wb(out, kinds, n, max, pre, "up", lay.up_w[j], lay.up_b[j], 4 * c, c, c, 4 * c);
  }
  n = s_add_wb(out, kinds, n, max, "", "film", lay.wf, lay.bf, lay.fw, lay.dk, lay.fw, lay.dk);
  n = s_add_wb(out, kinds, n, max, "final.", "conv", lay.fin_w, lay.fin_b, d[0], K * d[0], d[0], K * d[0]);
  n = s_add_gn(out, kinds, n, max, "final.", "gn", lay.fin_nw, lay.fin_nb, d[0]);
  n = s_add_wb(out, kinds, n, max, "", "out", lay.w_out, lay.b_out, cfg->adim, d[0], cfg->adim, d[0]);
  return n;
}

int fc_unet_tensors(const fc_unet_config *cfg, fc_tensor_info *out, int max) { return s_tensors(cfg, out, NULL, max); }

void fc_unet_bind(fc_unet *net, const fc_unet_config *cfg, float *params) {
  FC_ASSERT(fc_unet_config_check(cfg, NULL, 0) == 0);
  net->cfg = *cfg;
  fc_unet_layout_make(&net->lay, cfg);
  net->params = params;
}

void fc_unet_init(fc_unet *net, fc_rng *rng) {
  fc_tensor_info ti[FC_UNET_MAX_TENSORS];
  int kinds[FC_UNET_MAX_TENSORS];
  int n = s_tensors(&net->cfg, ti, kinds, FC_UNET_MAX_TENSORS);
  FC_ASSERT(n <= FC_UNET_MAX_TENSORS);
  for (int i = 0; i < n; i++) {
    float *p = net->params + ti[i].offset;
    size_t cnt = (size_t)ti[i].rows * (size_t)ti[i].cols;
    if (kinds[i] == S_INIT_UNIFORM) {
      double bound = 1.0 / sqrt((double)ti[i].fan_in);
      for (size_t j = 0; j < cnt; j++) p[j] = (float)((2.0 * fc_rng_uniform(rng) - 1.0) * bound);
    } else {
      for (size_t j = 0; j < cnt; j++) p[j] = kinds[i] == S_INIT_ONE ? 1.0f : 0.0f;
    }
  }
}

/* ---------- convolution kernels ---------- */

/* One convolution over (B, len, channels) activations: Conv1d(cin, cout, k,
 * stride s, padding p) from length lin to lout, or (tr) ConvTranspose1d:
 *   conv:       out[o] = b + sum_k W[:, k, :] in[s o + k - p]           W (cout, k, cin)
 *   transposed: out[s i + k - p] += W[k] in[i], then + b                W (k, cout, cin)
 * positions outside [0, len) are zero padding. */
typedef struct {
  int cin, cout, k, s, p, lin, lout, tr;
} s_conv;

/* float: im2col (rows of k channel vectors) + one sgemm over the batch */
typedef struct {
  float *col, *dst;
  const float *src, *bias;
  int rows, lsrc, C, K, s, p, acc;
} s_col_job;

/* The taps of output row r read source rows s r - p .. s r - p + K - 1,
 * consecutive for any stride: the in-range ones are one contiguous span of
 * the source and of the im2col row, [k0, k1) in tap numbers. */
static void s_tap_span(int r, int s, int p, int K, int lsrc, int *k0, int *k1) {
  const int l0 = s * r - p;
  *k0 = l0 < 0 ? (-l0 < K ? -l0 : K) : 0;
  *k1 = l0 + K > lsrc ? lsrc - l0 : K;
  if (*k1 < *k0) *k1 = *k0;
}

/* col[b, r, k, :] = src[b, s r + k - p, :] (0 outside) */
static void s_im2col_rows(void *ctx, size_t lo, size_t hi) {
  const s_col_job *j = ctx;
  const size_t C = (size_t)j->C, KC = (size_t)j->K * C;
  for (size_t b = lo; b < hi; b++)
    for (int r = 0; r < j->rows; r++) {
      float *dst = j->col + (b * j->rows + r) * KC;
      const float *src = j->src + b * (size_t)j->lsrc * C;
      int k0, k1;
      s_tap_span(r, j->s, j->p, j->K, j->lsrc, &k0, &k1);
      if (k0) memset(dst, 0, (size_t)k0 * C * sizeof(float));
      memcpy(dst + k0 * C, src + (size_t)(j->s * r - j->p + k0) * C, (size_t)(k1 - k0) * C * sizeof(float));
      if (k1 < j->K) memset(dst + k1 * C, 0, (size_t)(j->K - k1) * C * sizeof(float));
    }
}

/* dst[b, s r + k - p, :] += col[b, r, k, :], dst first set to the bias (or
 * zero) unless acc */
static void s_col2im_rows(void *ctx, size_t lo, size_t hi) {
  const s_col_job *j = ctx;
  const size_t C = (size_t)j->C, KC = (size_t)j->K * C;
  for (size_t b = lo; b < hi; b++) {
    float *dst = j->dst + b * (size_t)j->lsrc * C;
    if (!j->acc) {
      if (j->bias)
        for (int l = 0; l < j->lsrc; l++) memcpy(dst + (size_t)l * C, j->bias, C * sizeof(float));
      else
        memset(dst, 0, (size_t)j->lsrc * C * sizeof(float));
    }
    for (int r = 0; r < j->rows; r++) {
      int k0, k1;
      s_tap_span(r, j->s, j->p, j->K, j->lsrc, &k0, &k1);
      float *restrict d = dst + (size_t)(j->s * r - j->p + k0) * C;
      const float *restrict c = j->col + (b * j->rows + r) * KC + k0 * C;
      const size_t n = (size_t)(k1 - k0) * C;
      for (size_t q = 0; q < n; q++) d[q] += c[q];
    }
  }
}

static void s_col_run(fc_par_fn fn, s_col_job *j, int B) {
  size_t per = (size_t)j->rows * j->K * j->C, grain = 65536 / (per ? per : 1);
  fc_par_for((size_t)B, grain ? grain : 1, fn, j);
}

static void s_im2col(float *col, const float *src, int B, int rows, int lsrc, int C, int K, int s, int p) {
  s_col_job j = {.col = col, .src = src, .rows = rows, .lsrc = lsrc, .C = C, .K = K, .s = s, .p = p};
  s_col_run(s_im2col_rows, &j, B);
}

static void s_col2im(float *dst, const float *col, const float *bias, int B, int rows, int ldst, int C, int K, int s,
                     int p, int acc) {
  s_col_job j = {.col = (float *)col, .dst = dst, .bias = bias, .rows = rows, .lsrc = ldst, .C = C, .K = K, .s = s,
                 .p = p, .acc = acc};
  s_col_run(s_col2im_rows, &j, B);
}

static int s_pointwise(const s_conv *g) { return g->k == 1 && g->s == 1 && g->p == 0 && !g->tr; }

static void s_conv_fwd_f(const s_conv *g, float *out, const float *in, const float *w, const float *b, int B,
                         float *col) {
  if (g->tr) {
    /* every input position's k contributions (B lin, k cout), scattered */
    fc__mm_fwd(col, in, w, NULL, B * g->lin, g->cin, g->k * g->cout);
    s_col2im(out, col, b, B, g->lin, g->lout, g->cout, g->k, g->s, g->p, 0);
    return;
  }
  const float *a = in;
  if (!s_pointwise(g)) {
    s_im2col(col, in, B, g->lout, g->lin, g->cin, g->k, g->s, g->p);
    a = col;
  }
  fc__mm_fwd(out, a, w, b, B * g->lout, g->k * g->cin, g->cout);
}

/* column sums of x (rows, C) into db, or += when acc */
static void s_colsum_f(float *db, const float *x, size_t rows, int C, int acc) {
  if (!acc) memset(db, 0, (size_t)C * sizeof(float));
  for (size_t r = 0; r < rows; r++)
    for (int c = 0; c < C; c++) db[c] += x[r * C + c];
}

/* dw, db (+)= dL/dW, dL/db (acc_w) when dw is not NULL; dx (+)= dL/din
 * (acc_x) when dx is not NULL */
static void s_conv_bwd_f(const s_conv *g, float *dw, float *db, float *dx, const float *dout, const float *in,
                         const float *w, int B, int acc_w, int acc_x, float *col) {
  if (g->tr) {
    s_im2col(col, dout, B, g->lin, g->lout, g->cout, g->k, g->s, g->p);
    if (dw) {
      fc__mm_bwd_w(dw, NULL, col, in, B * g->lin, g->cin, g->k * g->cout, acc_w);
      s_colsum_f(db, dout, (size_t)B * g->lout, g->cout, acc_w);
    }
    if (dx) fc__mm_bwd_x(dx, col, w, B * g->lin, g->cin, g->k * g->cout, acc_x);
    return;
  }
  const int M = B * g->lout;
  if (s_pointwise(g)) {
    if (dw) fc__mm_bwd_w(dw, db, dout, in, M, g->cin, g->cout, acc_w);
    if (dx) fc__mm_bwd_x(dx, dout, w, M, g->cin, g->cout, acc_x);
    return;
  }
  if (dw) {
    s_im2col(col, in, B, g->lout, g->lin, g->cin, g->k, g->s, g->p);
    fc__mm_bwd_w(dw, db, dout, col, M, g->k * g->cin, g->cout, acc_w);
  }
  if (!dx) return;
  fc__mm_bwd_x(col, dout, w, M, g->k * g->cin, g->cout, 0);
  s_col2im(dx, col, NULL, B, g->lout, g->lin, g->cin, g->k, g->s, g->p, acc_x);
}

/* double: the definitions above as direct loops (the col argument unused) */
static void s_conv_fwd_d(const s_conv *g, double *out, const double *in, const double *w, const double *b, int B,
                         double *col) {
  (void)col;
  const int ci = g->cin, co = g->cout, K = g->k;
  for (int n = 0; n < B; n++) {
    const double *x = in + (size_t)n * g->lin * ci;
    double *y = out + (size_t)n * g->lout * co;
    for (int o = 0; o < g->lout; o++)
      for (int c = 0; c < co; c++) y[(size_t)o * co + c] = b[c];
    for (int r = 0; r < (g->tr ? g->lin : g->lout); r++)
      for (int k = 0; k < K; k++) {
        const int l = g->s * r + k - g->p; /* conv: input position; transposed: output position */
        if (l < 0 || l >= (g->tr ? g->lout : g->lin)) continue;
        for (int c = 0; c < co; c++) {
          double s = 0;
          for (int q = 0; q < ci; q++)
            s += g->tr ? w[((size_t)k * co + c) * ci + q] * x[(size_t)r * ci + q]
                       : w[((size_t)c * K + k) * ci + q] * x[(size_t)l * ci + q];
          y[(size_t)(g->tr ? l : r) * co + c] += s;
        }
      }
  }
}

static void s_conv_bwd_d(const s_conv *g, double *dw, double *db, double *dx, const double *dout, const double *in,
                         const double *w, int B, int acc_w, int acc_x, double *col) {
  (void)col;
  const int ci = g->cin, co = g->cout, K = g->k;
  const int wgrad = dw != NULL;
  if (wgrad && !acc_w) {
    memset(dw, 0, (size_t)co * K * ci * sizeof(double));
    memset(db, 0, (size_t)co * sizeof(double));
  }
  if (dx && !acc_x) memset(dx, 0, (size_t)B * g->lin * ci * sizeof(double));
  for (int n = 0; n < B; n++) {
    const double *x = in + (size_t)n * g->lin * ci, *gy = dout + (size_t)n * g->lout * co;
    double *gx = dx ? dx + (size_t)n * g->lin * ci : NULL;
    for (int o = 0; o < g->lout && wgrad; o++)
      for (int c = 0; c < co; c++) db[c] += gy[(size_t)o * co + c];
    for (int r = 0; r < (g->tr ? g->lin : g->lout); r++)
      for (int k = 0; k < K; k++) {
        const int l = g->s * r + k - g->p;
        if (l < 0 || l >= (g->tr ? g->lout : g->lin)) continue;
        const int xo = g->tr ? r : l, yo = g->tr ? l : r; /* input and output positions */
        for (int c = 0; c < co; c++) {
          const double d = gy[(size_t)yo * co + c];
          const size_t wo = g->tr ? ((size_t)k * co + c) * ci : ((size_t)c * K + k) * ci;
          for (int q = 0; q < ci; q++) {
            if (wgrad) dw[wo + q] += d * x[(size_t)xo * ci + q];
            if (gx) gx[(size_t)xo * ci + q] += d * w[wo + q];
          }
        }
      }
  }
}

/* ---------- instantiations ---------- */

#define FC_NN_IMPL "fc_unet_impl.inc"
#define FC_NN_TAG unet
#define FC_NN_WS_F fc_unet_ws
#define FC_NN_WS_D fc_unet_ws_ref
#include "fc_nn_inst.inc"

fc_unet_ws *fc_unet_ws_new(const fc_unet_config *cfg, int max_batch) { return s_ws_alloc_f(cfg, max_batch); }
void fc_unet_ws_free(fc_unet_ws *ws) { s_ws_release_f(ws); }

void fc_unet_forward(const fc_unet *net, fc_unet_ws *ws, float *y, const float *t, const float *x, const float *c,
                     int B) {
  s_forward_f(&net->cfg, &net->lay, net->params, ws, y, t, x, c, B);
}
void fc_unet_backward(const fc_unet *net, fc_unet_ws *ws, float *dparams, int accumulate, float *dx, float *dc,
                      const float *dy, int B) {
  s_backward_f(&net->cfg, &net->lay, net->params, ws, dparams, accumulate, dx, dc, dy, B);
}

fc_unet_ws_ref *fc_unet_ws_new_ref(const fc_unet_config *cfg, int max_batch) { return s_ws_alloc_d(cfg, max_batch); }
void fc_unet_ws_free_ref(fc_unet_ws_ref *ws) { s_ws_release_d(ws); }

void fc_unet_forward_ref(const fc_unet_config *cfg, const double *params, fc_unet_ws_ref *ws, double *y,
                         const double *t, const double *x, const double *c, int B) {
  fc_unet_layout lay;
  fc_unet_layout_make(&lay, cfg);
  s_forward_d(cfg, &lay, params, ws, y, t, x, c, B);
}
void fc_unet_backward_ref(const fc_unet_config *cfg, const double *params, fc_unet_ws_ref *ws, double *dparams,
                          int accumulate, double *dx, double *dc, const double *dy, int B) {
  fc_unet_layout lay;
  fc_unet_layout_make(&lay, cfg);
  s_backward_d(cfg, &lay, params, ws, dparams, accumulate, dx, dc, dy, B);
}
