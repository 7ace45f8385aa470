/* fc_tfm: the DiT-style transformer velocity network (fc_tfm.h).
 * Configuration, parameter layout and initialization here, and the
 * attention kernels: float as per-head cblas_sgemm on strided views of the
 * qkv buffer, double as direct loops (the specification). The layer code
 * (LayerNorm with modulation, gated residuals, the wiring) is
 * fc_tfm_impl.inc, instantiated below for both. */
#include "fc_tfm.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fc_base.h"
#include "fc_nn.h"
#include "fc_par.h"

/* ---------- configuration and layout ---------- */

void fc_tfm_config_default(fc_tfm_config *cfg, int T, int A, int dc) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->dx = T * A;
  cfg->dc = dc;
  cfg->horizon = T;
  cfg->adim = A;
  cfg->width = 128;
  cfg->depth = 4;
  cfg->heads = 4;
  cfg->ffn = 4 * cfg->width;
  cfg->temb = 64;
  cfg->act = FC_ACT_GELU;
  cfg->cond = FC_TFM_FILM; /* README: FiLM 98% against adaLN-Zero's 94% on lift's selection seeds */
  cfg->ctok = 1;
}

const char *const fc_tfm_cond_names[] = {"adaln", "film", "cross", NULL}; /* fc_tfm_cond's order */
const char *fc_tfm_cond_name(fc_tfm_cond c) { return (unsigned)c <= FC_TFM_CROSS ? fc_tfm_cond_names[c] : "?"; }
int fc_tfm_cond_parse(const char *s) { return fc_name_index(s, fc_tfm_cond_names, FC_TFM_CROSS + 1); }

int fc_tfm_config_check(const fc_tfm_config *cfg, char *err, size_t errsz) {
  if (cfg->horizon < 1 || cfg->horizon > FC_TFM_MAX_HORIZON)
    return fc_set_err(err, errsz, "transformer horizon must be in 1..%d (got %d)", FC_TFM_MAX_HORIZON, cfg->horizon), -1;
  if (cfg->adim < 1 || cfg->adim > FC_TFM_MAX_ADIM)
    return fc_set_err(err, errsz, "transformer action dimension must be in 1..%d (got %d)", FC_TFM_MAX_ADIM, cfg->adim),
           -1;
  if (cfg->dx != cfg->horizon * cfg->adim)
    return fc_set_err(err, errsz, "transformer x dimension %d must be horizon %d x action dimension %d = %d", cfg->dx,
                      cfg->horizon, cfg->adim, cfg->horizon * cfg->adim), -1;
  if (cfg->dc < 0 || cfg->dc > FC_TFM_MAX_COND)
    return fc_set_err(err, errsz, "transformer condition dimension must be in 0..%d (got %d)", FC_TFM_MAX_COND, cfg->dc),
           -1;
  if (cfg->temb < 2 || cfg->temb % 2 || cfg->temb > FC_TFM_MAX_TEMB)
    return fc_set_err(err, errsz, "time embedding size must be even and in 2..%d (got %d)", FC_TFM_MAX_TEMB, cfg->temb),
           -1;
  if (cfg->depth < 1 || cfg->depth > FC_TFM_MAX_DEPTH)
    return fc_set_err(err, errsz, "transformer depth must be in 1..%d blocks (got %d)", FC_TFM_MAX_DEPTH, cfg->depth), -1;
  if (cfg->width < 1 || cfg->width > FC_TFM_MAX_WIDTH)
    return fc_set_err(err, errsz, "transformer width must be in 1..%d (got %d)", FC_TFM_MAX_WIDTH, cfg->width), -1;
  if (cfg->heads < 1 || cfg->heads > cfg->width || cfg->width % cfg->heads)
    return fc_set_err(err, errsz, "transformer width %d does not split into %d attention heads (the width must be a "
                      "multiple of the heads)", cfg->width, cfg->heads), -1;
  if (cfg->ffn < 1 || cfg->ffn > FC_TFM_MAX_FFN)
    return fc_set_err(err, errsz, "transformer MLP width must be in 1..%d (got %d)", FC_TFM_MAX_FFN, cfg->ffn), -1;
  if (cfg->act < FC_ACT_SILU || cfg->act > FC_ACT_GELU)
    return fc_set_err(err, errsz, "unknown activation %d", (int)cfg->act), -1;
  if (cfg->cond != FC_TFM_ADALN && cfg->cond != FC_TFM_FILM && cfg->cond != FC_TFM_CROSS)
    return fc_set_err(err, errsz, "unknown transformer conditioning %d (0 adaln, 1 film, 2 cross)", (int)cfg->cond), -1;
  if (cfg->cond == FC_TFM_CROSS && cfg->dc && (cfg->ctok < 1 || cfg->dc % cfg->ctok))
    return fc_set_err(err, errsz, "the transformer's cross-attention splits the %d condition values into %d tokens: "
                      "the tokens must be at least 1 and divide the values", cfg->dc, cfg->ctok), -1;
  return 0;
}

void fc_tfm_layout_make(fc_tfm_layout *lay, const fc_tfm_config *cfg) {
  memset(lay, 0, sizeof(*lay));
  const size_t E = (size_t)cfg->temb, D = (size_t)cfg->width, F = (size_t)cfg->ffn, A = (size_t)cfg->adim;
  lay->dk = cfg->temb + cfg->dc;
  const int cross = cfg->cond == FC_TFM_CROSS;
  lay->nm = cfg->cond == FC_TFM_ADALN ? 6 : cross ? 0 : 4;
  lay->mw = cross ? 0 : (cfg->depth * lay->nm + 2) * cfg->width;
  const int tc = cross && cfg->dc ? (cfg->ctok > 0 ? cfg->ctok : 1) : 0;
  lay->ns = cross ? 1 + tc : 0;
  lay->cw = tc ? cfg->dc / tc : 0;
  size_t o = 0;
  lay->tw1 = o; o += 4 * E * E;
  lay->tb1 = o; o += 4 * E;
  lay->tw2 = o; o += E * 4 * E;
  lay->tb2 = o; o += E;
  lay->w_in = o; o += D * A;
  lay->b_in = o; o += D;
  lay->pos = o; o += (size_t)cfg->horizon * D;
  if (cross) {
    const size_t S = (size_t)lay->ns, cw = (size_t)lay->cw;
    lay->w_ct = o; o += D * E;
    lay->b_ct = o; o += D;
    lay->w_co = o; o += D * cw;
    lay->b_co = o; o += tc ? D : 0;
    lay->cpos = o; o += S * D;
    lay->w_e1 = o; o += F * D;
    lay->b_e1 = o; o += F;
    lay->w_e2 = o; o += D * F;
    lay->b_e2 = o; o += D;
  }
  for (int l = 0; l < cfg->depth; l++) {
    fc_tfm_block *b = &lay->blk[l];
    b->wqkv = o; o += 3 * D * D;
    b->bqkv = o; o += 3 * D;
    b->wo = o; o += D * D;
    b->bo = o; o += D;
    if (cross) {
      b->wq2 = o; o += D * D;
      b->bq2 = o; o += D;
      b->wkv2 = o; o += 2 * D * D;
      b->bkv2 = o; o += 2 * D;
      b->wo2 = o; o += D * D;
      b->bo2 = o; o += D;
    }
    b->w1 = o; o += F * D;
    b->b1 = o; o += F;
    b->w2 = o; o += D * F;
    b->b2 = o; o += D;
  }
  lay->wm = o; o += (size_t)lay->mw * lay->dk;
  lay->bm = o; o += (size_t)lay->mw;
  lay->w_out = o; o += A * D;
  lay->b_out = o; o += A;
  lay->total = o;
}

size_t fc_tfm_nparams(const fc_tfm_config *cfg) {
  fc_tfm_layout lay;
  fc_tfm_layout_make(&lay, cfg);
  return lay.total;
}

double fc_tfm_macs(const fc_tfm_config *cfg) {
  fc_tfm_layout lay;
  fc_tfm_layout_make(&lay, cfg);
  const double E = cfg->temb, D = cfg->width, F = cfg->ffn, T = cfg->horizon, A = cfg->adim;
  double m = 8.0 * E * E + (double)lay.dk * lay.mw;                   /* time MLP, modulation */
  m += T * A * D * 2.0;                                                /* tokens in, velocity out */
  m += cfg->depth * (T * (4.0 * D * D + 2.0 * D * F) + 2.0 * T * T * D); /* qkv, o, MLP; q k^T and p v */
  if (cfg->cond == FC_TFM_CROSS) {
    const double S = lay.ns;
    m += D * E + (S - 1) * lay.cw * D + S * 2.0 * D * F;                       /* memory tokens, memory MLP */
    m += cfg->depth * (T * 2.0 * D * D + S * 2.0 * D * D + 2.0 * T * S * D); /* q2, o2; k2 v2; q2 k2^T, p2 v2 */
  }
  return m;
}

fc_tfm_config fc_tfm_width_matching(const fc_tfm_config *cfg, int copies) {
  const double target = (double)fc_tfm_nparams(cfg);
  const int H = cfg->heads;
  fc_tfm_config best = *cfg, c = *cfg;
  double best_gap = 1e300;
  for (int w = H; w <= cfg->width; w += H) {
    c.width = w;
    long f = lround((double)cfg->ffn * w / cfg->width);
    c.ffn = (int)(f < 1 ? 1 : f);
    const double gap = fabs((double)fc_tfm_nparams(&c) * copies - target);
    if (gap < best_gap) {
      best_gap = gap;
      best = c;
    }
  }
  return best;
}

/* initialization of a tensor */
enum { S_INIT_UNIFORM, S_INIT_ZERO, S_INIT_POS };

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

/* a linear layer's weight (rows, cols) and bias (rows), both from fan-in cols */
static int s_add_lin(fc_tensor_info *out, int *kinds, int n, int max, const char *pre, size_t w, size_t b, int rows,
                     int cols, int kind) {
  char nm[sizeof(((fc_tensor_info *)0)->name)];
  snprintf(nm, sizeof(nm), "%s.w", pre);
  n = s_add(out, kinds, n, max, nm, w, rows, cols, cols, kind);
  snprintf(nm, sizeof(nm), "%s.b", pre);
  return s_add(out, kinds, n, max, nm, b, rows, 1, cols, kind);
}

static int s_tensors(const fc_tfm_config *cfg, fc_tensor_info *out, int *kinds, int max) {
  fc_tfm_layout lay;
  fc_tfm_layout_make(&lay, cfg);
  const int E = cfg->temb, D = cfg->width, F = cfg->ffn, A = cfg->adim;
  const int zero = cfg->cond == FC_TFM_ADALN ? S_INIT_ZERO : S_INIT_UNIFORM; /* adaLN-Zero */
  const int cross = cfg->cond == FC_TFM_CROSS;
  char pre[24];
  int n = 0;
  n = s_add_lin(out, kinds, n, max, "time.fc1", lay.tw1, lay.tb1, 4 * E, E, S_INIT_UNIFORM);
  n = s_add_lin(out, kinds, n, max, "time.fc2", lay.tw2, lay.tb2, E, 4 * E, S_INIT_UNIFORM);
  n = s_add_lin(out, kinds, n, max, "in", lay.w_in, lay.b_in, D, A, S_INIT_UNIFORM);
  n = s_add(out, kinds, n, max, "pos", lay.pos, cfg->horizon, D, 0, S_INIT_POS);
  if (cross) {
    n = s_add_lin(out, kinds, n, max, "ctime", lay.w_ct, lay.b_ct, D, E, S_INIT_UNIFORM);
    if (lay.cw) n = s_add_lin(out, kinds, n, max, "ccond", lay.w_co, lay.b_co, D, lay.cw, S_INIT_UNIFORM);
    n = s_add(out, kinds, n, max, "cpos", lay.cpos, lay.ns, D, 0, S_INIT_POS);
    n = s_add_lin(out, kinds, n, max, "mem.fc1", lay.w_e1, lay.b_e1, F, D, S_INIT_UNIFORM);
    n = s_add_lin(out, kinds, n, max, "mem.fc2", lay.w_e2, lay.b_e2, D, F, S_INIT_UNIFORM);
  }
  for (int l = 0; l < cfg->depth; l++) {
    const fc_tfm_block *b = &lay.blk[l];
    snprintf(pre, sizeof(pre), "blk%d.qkv", l);
    n = s_add_lin(out, kinds, n, max, pre, b->wqkv, b->bqkv, 3 * D, D, S_INIT_UNIFORM);
    snprintf(pre, sizeof(pre), "blk%d.proj", l);
    n = s_add_lin(out, kinds, n, max, pre, b->wo, b->bo, D, D, S_INIT_UNIFORM);
    if (cross) {
      snprintf(pre, sizeof(pre), "blk%d.xq", l);
      n = s_add_lin(out, kinds, n, max, pre, b->wq2, b->bq2, D, D, S_INIT_UNIFORM);
      snprintf(pre, sizeof(pre), "blk%d.xkv", l);
      n = s_add_lin(out, kinds, n, max, pre, b->wkv2, b->bkv2, 2 * D, D, S_INIT_UNIFORM);
      snprintf(pre, sizeof(pre), "blk%d.xproj", l);
      n = s_add_lin(out, kinds, n, max, pre, b->wo2, b->bo2, D, D, S_INIT_UNIFORM);
    }
    snprintf(pre, sizeof(pre), "blk%d.fc1", l);
    n = s_add_lin(out, kinds, n, max, pre, b->w1, b->b1, F, D, S_INIT_UNIFORM);
    snprintf(pre, sizeof(pre), "blk%d.fc2", l);
    n = s_add_lin(out, kinds, n, max, pre, b->w2, b->b2, D, F, S_INIT_UNIFORM);
  }
  if (!cross) n = s_add_lin(out, kinds, n, max, "mod", lay.wm, lay.bm, lay.mw, lay.dk, zero);
  n = s_add_lin(out, kinds, n, max, "out", lay.w_out, lay.b_out, A, D, zero);
  return n;
}

int fc_tfm_tensors(const fc_tfm_config *cfg, fc_tensor_info *out, int max) { return s_tensors(cfg, out, NULL, max); }

void fc_tfm_bind(fc_tfm *net, const fc_tfm_config *cfg, float *params) {
  FC_ASSERT(fc_tfm_config_check(cfg, NULL, 0) == 0);
  net->cfg = *cfg;
  fc_tfm_layout_make(&net->lay, cfg);
  net->params = params;
}

void fc_tfm_init(fc_tfm *net, fc_rng *rng) {
  fc_tensor_info ti[FC_TFM_MAX_TENSORS];
  int kinds[FC_TFM_MAX_TENSORS];
  const int n = s_tensors(&net->cfg, ti, kinds, FC_TFM_MAX_TENSORS);
  FC_ASSERT(n <= FC_TFM_MAX_TENSORS);
  for (int i = 0; i < n; i++) {
    float *p = net->params + ti[i].offset;
    const size_t cnt = (size_t)ti[i].rows * (size_t)ti[i].cols;
    if (kinds[i] == S_INIT_UNIFORM) {
      const double bound = 1.0 / sqrt((double)ti[i].fan_in);
      for (size_t j = 0; j < cnt; j++) p[j] = (float)((2.0 * fc_rng_uniform(rng) - 1.0) * bound);
    } else if (kinds[i] == S_INIT_POS) {
      for (size_t j = 0; j < cnt; j++) p[j] = (float)(0.02 * fc_rng_normal(rng));
    } else {
      memset(p, 0, cnt * sizeof(float));
    }
  }
}

/* ---------- attention kernels ----------
 * One sample's multi-head attention of Tq query tokens over Tk key tokens
 * (self-attention: Tq = Tk = T, q, k, v the three thirds of each token's
 * qkv row; cross: the block's queries over the S memory tokens). q (Tq, ldq),
 * k (Tk, ldk), v (Tk, ldv) rows, head h in columns h dh .. (h + 1) dh; p
 * (H, Tq, Tk) the softmax rows; o (Tq, D) the heads' outputs side by side.
 * The gradients dq, dk, dv have the layouts of q, k, v.
 *   forward:  s = q_h k_h^T / sqrt(dh), p = softmax(s) per row, o_h = p v_h
 *   backward: dp = do_h v_h^T, dv_h = p^T do_h,
 *             ds = p (dp - rowsum(dp p)), dq_h = ds k_h / sqrt(dh), dk_h = ds^T q_h / sqrt(dh)
 * dp (H, Tq, Tk) is the sample's scratch. The softmax (shared by both types)
 * is in fc_tfm_impl.inc; these are the products around it. */
typedef struct {
  int Tq, Tk, D, H, dh;
  int ldq, ldk, ldv;
  double scale; /* 1 / sqrt(dh) */
} s_att;

/* float: every product is one single-threaded sgemm on strided views */
static void s_att_scores_f(const s_att *g, float *p, const float *q, const float *k) {
  for (int h = 0; h < g->H; h++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->Tq, g->Tk, g->dh, (float)g->scale, q + h * g->dh, g->ldq,
                k + h * g->dh, g->ldk, 0.0f, p + (size_t)h * g->Tq * g->Tk, g->Tk);
}

static void s_att_values_f(const s_att *g, float *o, const float *p, const float *v) {
  for (int h = 0; h < g->H; h++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->Tq, g->dh, g->Tk, 1.0f, p + (size_t)h * g->Tq * g->Tk,
                g->Tk, v + h * g->dh, g->ldv, 0.0f, o + h * g->dh, g->D);
}

/* dp = do v^T and dv = p^T do */
static void s_att_bwd_values_f(const s_att *g, float *dp, float *dv, const float *p, const float *v,
                               const float *dout) {
  for (int h = 0; h < g->H; h++) {
    const float *d = dout + h * g->dh;
    const size_t ph = (size_t)h * g->Tq * g->Tk;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->Tq, g->Tk, g->dh, 1.0f, d, g->D, v + h * g->dh, g->ldv,
                0.0f, dp + ph, g->Tk);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g->Tk, g->dh, g->Tq, 1.0f, p + ph, g->Tk, d, g->D, 0.0f,
                dv + h * g->dh, g->ldv);
  }
}

/* dq = ds k scale and dk = ds^T q scale (ds in dp) */
static void s_att_bwd_scores_f(const s_att *g, float *dq, float *dk, const float *ds, const float *q,
                               const float *k) {
  for (int h = 0; h < g->H; h++) {
    const float *s = ds + (size_t)h * g->Tq * g->Tk;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->Tq, g->dh, g->Tk, (float)g->scale, s, g->Tk,
                k + h * g->dh, g->ldk, 0.0f, dq + h * g->dh, g->ldq);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g->Tk, g->dh, g->Tq, (float)g->scale, s, g->Tk,
                q + h * g->dh, g->ldq, 0.0f, dk + h * g->dh, g->ldk);
  }
}

/* double: the same four as loops */
static void s_att_scores_d(const s_att *g, double *p, const double *q, const double *k) {
  for (int h = 0; h < g->H; h++)
    for (int i = 0; i < g->Tq; i++)
      for (int j = 0; j < g->Tk; j++) {
        double s = 0;
        for (int e = 0; e < g->dh; e++) s += q[(size_t)i * g->ldq + h * g->dh + e] * k[(size_t)j * g->ldk + h * g->dh + e];
        p[((size_t)h * g->Tq + i) * g->Tk + j] = s * g->scale;
      }
}

static void s_att_values_d(const s_att *g, double *o, const double *p, const double *v) {
  for (int h = 0; h < g->H; h++)
    for (int i = 0; i < g->Tq; i++)
      for (int e = 0; e < g->dh; e++) {
        double s = 0;
        for (int j = 0; j < g->Tk; j++) s += p[((size_t)h * g->Tq + i) * g->Tk + j] * v[(size_t)j * g->ldv + h * g->dh + e];
        o[(size_t)i * g->D + h * g->dh + e] = s;
      }
}

static void s_att_bwd_values_d(const s_att *g, double *dp, double *dv, const double *p, const double *v,
                               const double *dout) {
  for (int h = 0; h < g->H; h++) {
    for (int i = 0; i < g->Tq; i++)
      for (int j = 0; j < g->Tk; j++) {
        double s = 0;
        for (int e = 0; e < g->dh; e++)
          s += dout[(size_t)i * g->D + h * g->dh + e] * v[(size_t)j * g->ldv + h * g->dh + e];
        dp[((size_t)h * g->Tq + i) * g->Tk + j] = s;
      }
    for (int j = 0; j < g->Tk; j++)
      for (int e = 0; e < g->dh; e++) {
        double s = 0;
        for (int i = 0; i < g->Tq; i++) s += p[((size_t)h * g->Tq + i) * g->Tk + j] * dout[(size_t)i * g->D + h * g->dh + e];
        dv[(size_t)j * g->ldv + h * g->dh + e] = s;
      }
  }
}

static void s_att_bwd_scores_d(const s_att *g, double *dq, double *dk, const double *ds, const double *q,
                               const double *k) {
  for (int h = 0; h < g->H; h++) {
    for (int i = 0; i < g->Tq; i++)
      for (int e = 0; e < g->dh; e++) {
        double s = 0;
        for (int j = 0; j < g->Tk; j++) s += ds[((size_t)h * g->Tq + i) * g->Tk + j] * k[(size_t)j * g->ldk + h * g->dh + e];
        dq[(size_t)i * g->ldq + h * g->dh + e] = s * g->scale;
      }
    for (int j = 0; j < g->Tk; j++)
      for (int e = 0; e < g->dh; e++) {
        double s = 0;
        for (int i = 0; i < g->Tq; i++) s += ds[((size_t)h * g->Tq + i) * g->Tk + j] * q[(size_t)i * g->ldq + h * g->dh + e];
        dk[(size_t)j * g->ldk + h * g->dh + e] = s * g->scale;
      }
  }
}

/* ---------- instantiations ---------- */

#define FC_NN_IMPL "fc_tfm_impl.inc"
#define FC_NN_TAG tfm
#define FC_NN_WS_F fc_tfm_ws
#define FC_NN_WS_D fc_tfm_ws_ref
#include "fc_nn_inst.inc"

fc_tfm_ws *fc_tfm_ws_new(const fc_tfm_config *cfg, int max_batch) { return s_ws_alloc_f(cfg, max_batch); }
void fc_tfm_ws_free(fc_tfm_ws *ws) { s_ws_release_f(ws); }

void fc_tfm_forward(const fc_tfm *net, fc_tfm_ws *ws, float *y, const float *t, const float *x, const float *c,
                    int B) {
  s_forward_f(&net->cfg, &net->lay, net->params, ws, y, t, x, c, B);
}
void fc_tfm_backward(const fc_tfm *net, fc_tfm_ws *ws, float *dparams, int accumulate, float *dx, float *dc,
                     const float *dy, int B) {
  s_backward_f(&net->cfg, &net->lay, net->params, ws, dparams, accumulate, dx, dc, dy, B);
}

fc_tfm_ws_ref *fc_tfm_ws_new_ref(const fc_tfm_config *cfg, int max_batch) { return s_ws_alloc_d(cfg, max_batch); }
void fc_tfm_ws_free_ref(fc_tfm_ws_ref *ws) { s_ws_release_d(ws); }

void fc_tfm_forward_ref(const fc_tfm_config *cfg, const double *params, fc_tfm_ws_ref *ws, double *y,
                        const double *t, const double *x, const double *c, int B) {
  fc_tfm_layout lay;
  fc_tfm_layout_make(&lay, cfg);
  s_forward_d(cfg, &lay, params, ws, y, t, x, c, B);
}
void fc_tfm_backward_ref(const fc_tfm_config *cfg, const double *params, fc_tfm_ws_ref *ws, double *dparams,
                         int accumulate, double *dx, double *dc, const double *dy, int B) {
  fc_tfm_layout lay;
  fc_tfm_layout_make(&lay, cfg);
  s_backward_d(cfg, &lay, params, ws, dparams, accumulate, dx, dc, dy, B);
}
