/* test_tfm: fc_tfm, the transformer velocity network: the double
 * reference's gradients against central finite differences (every tensor,
 * x and c) and its forward and gradients against PyTorch's
 * (tests/fixtures/tfm_torch.txt), the float BLAS path against the reference,
 * configuration refusals, the tensor list, initialization, width matching,
 * batch independence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowcore.h"
#include "test.h"

static void s_fill_uniform(fc_rng *r, double *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * fc_rng_uniform(r);
}

static double s_max_abs(const double *v, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fabs(v[i]) > m ? fabs(v[i]) : m;
  return m;
}

/* scale-aware comparison of an analytic and a numerical derivative */
static int s_grad_close(double a, double n) { return fabs(a - n) <= 1e-6 * (fabs(a) + fabs(n)) + 1e-9; }

/* a small config: T, A, C, width, depth, heads, ffn, temb, act, cond */
static fc_tfm_config s_cfg(int T, int A, int C, int D, int L, int H, int F, int E, fc_act act, fc_tfm_cond cond) {
  fc_tfm_config cfg;
  fc_tfm_config_default(&cfg, T, A, C);
  cfg.width = D;
  cfg.depth = L;
  cfg.heads = H;
  cfg.ffn = F;
  cfg.temb = E;
  cfg.act = act;
  cfg.cond = cond;
  return cfg;
}

/* ---------- the reference's gradients against central finite differences ---------- */

/* L = sum(r * y) for a random r: every parameter, x and c */
static int s_check_ref_grads(const fc_tfm_config *cfg, uint64_t seed) {
  char err[256];
  ASSERT_MSG(fc_tfm_config_check(cfg, err, sizeof(err)) == 0, "%s", err);
  const int B = 2, D = cfg->dx, C = cfg->dc;
  const size_t P = fc_tfm_nparams(cfg);
  fc_rng rng;
  fc_rng_seed(&rng, seed);
  double *p = malloc(P * sizeof(double)), *g = calloc(P, sizeof(double));
  double *x = malloc((size_t)B * D * sizeof(double)), *r = malloc((size_t)B * D * sizeof(double));
  double *y = malloc((size_t)B * D * sizeof(double)), *dx = malloc((size_t)B * D * sizeof(double));
  double t[2], c[2 * 8] = {0}, dc[2 * 8];
  ASSERT(C <= 8);
  /* weights of PyTorch's scale, and off zero where adaLN-Zero starts them
   * there (the modulation, the output layer), so that every path carries signal */
  {
    float *pf = malloc(P * sizeof(float));
    fc_tfm net;
    fc_tfm_bind(&net, cfg, pf);
    fc_tfm_init(&net, &rng);
    for (size_t i = 0; i < P; i++) p[i] = pf[i] + 0.6 * (fc_rng_uniform(&rng) - 0.5);
    free(pf);
  }
  s_fill_uniform(&rng, t, 2, 0.0, 1.0);
  s_fill_uniform(&rng, x, (size_t)B * D, -2.0, 2.0);
  s_fill_uniform(&rng, c, (size_t)B * C, -2.0, 2.0);
  s_fill_uniform(&rng, r, (size_t)B * D, -1.0, 1.0);
  fc_tfm_ws_ref *ws = fc_tfm_ws_new_ref(cfg, B);
  fc_tfm_forward_ref(cfg, p, ws, y, t, x, C ? c : NULL, B);
  fc_tfm_backward_ref(cfg, p, ws, g, 0, dx, C ? dc : NULL, r, B);
#define S_LOSS(out)                                                    \
  do {                                                                 \
    fc_tfm_forward_ref(cfg, p, ws, y, t, x, C ? c : NULL, B);         \
    out = 0;                                                           \
    for (int i_ = 0; i_ < B * D; i_++) out += r[i_] * y[i_];           \
  } while (0)
  const double h = 1e-5;
  fc_tensor_info ti[FC_TFM_MAX_TENSORS];
  int nt = fc_tfm_tensors(cfg, ti, FC_TFM_MAX_TENSORS);
  for (int k = 0; k < nt; k++) {
    size_t cnt = (size_t)ti[k].rows * ti[k].cols;
    /* at most 40 entries per tensor, spread over it */
    size_t stride = cnt > 40 ? cnt / 40 : 1;
    double gmax = 0;
    for (size_t j = 0; j < cnt; j += stride) {
      size_t i = ti[k].offset + j;
      double keep = p[i], lp, lm;
      p[i] = keep + h; S_LOSS(lp);
      p[i] = keep - h; S_LOSS(lm);
      p[i] = keep;
      double num = (lp - lm) / (2 * h);
      ASSERT_MSG(s_grad_close(g[i], num), "L=%d %s %s[%zu]: analytic %.12g numeric %.12g", cfg->depth,
                 fc_act_name(cfg->act), ti[k].name, j, g[i], num);
      if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
    }
    ASSERT_MSG(gmax > 1e-6, "gradient of %s is trivially zero", ti[k].name);
  }
  for (int i = 0; i < B * D; i++) {
    double keep = x[i], lp, lm;
    x[i] = keep + h; S_LOSS(lp);
    x[i] = keep - h; S_LOSS(lm);
    x[i] = keep;
    ASSERT_MSG(s_grad_close(dx[i], (lp - lm) / (2 * h)), "dx[%d]: %.12g vs %.12g", i, dx[i], (lp - lm) / (2 * h));
  }
  for (int i = 0; i < B * C; i++) {
    double keep = c[i], lp, lm;
    c[i] = keep + h; S_LOSS(lp);
    c[i] = keep - h; S_LOSS(lm);
    c[i] = keep;
    ASSERT_MSG(s_grad_close(dc[i], (lp - lm) / (2 * h)), "dc[%d]: %.12g vs %.12g", i, dc[i], (lp - lm) / (2 * h));
  }
  ASSERT(s_max_abs(dx, (size_t)B * D) > 1e-6);
#undef S_LOSS
  fc_tfm_ws_free_ref(ws);
  free(p); free(g); free(x); free(r); free(y); free(dx);
  return 0;
}

TEST(tfm_reference_gradients) {
  /* adaLN and FiLM; one and two heads; no condition; T = 1 (attention over one token); each activation */
  fc_tfm_config a = s_cfg(4, 2, 3, 8, 2, 2, 12, 4, FC_ACT_GELU, FC_TFM_ADALN);
  fc_tfm_config b = s_cfg(3, 3, 2, 6, 1, 1, 10, 6, FC_ACT_SILU, FC_TFM_FILM);
  fc_tfm_config c = s_cfg(5, 1, 0, 4, 2, 2, 8, 4, FC_ACT_MISH, FC_TFM_ADALN);
  fc_tfm_config d = s_cfg(1, 2, 2, 4, 1, 2, 4, 2, FC_ACT_GELU, FC_TFM_ADALN);
  if (s_check_ref_grads(&a, 1)) return 1;
  if (s_check_ref_grads(&b, 2)) return 1;
  if (s_check_ref_grads(&c, 3)) return 1;
  return s_check_ref_grads(&d, 4);
}

/* ---------- the reference against PyTorch (an independent implementation) ---------- */

/* one "name count values..." line of the fixture into a new array */
static double *s_read_array(FILE *f, const char *name, int *count) {
  char got[32];
  if (fscanf(f, "%31s %d", got, count) != 2 || strcmp(got, name) || *count < 0) return NULL;
  double *v = malloc(((size_t)*count + 1) * sizeof(double));
  for (int i = 0; i < *count; i++)
    if (fscanf(f, "%lf", &v[i]) != 1) return free(v), NULL;
  return v;
}

/* |a - b| <= rel (max |b| + floor) elementwise */
static int s_close_arrays(const char *what, const double *a, const double *b, int n, double rel, double floor) {
  double s = s_max_abs(b, (size_t)n) + floor;
  for (int i = 0; i < n; i++)
    ASSERT_MSG(fabs(a[i] - b[i]) <= rel * s, "%s[%d]: %.15g vs PyTorch %.15g (max %.3g)", what, i, a[i], b[i], s);
  return 0;
}

TEST(tfm_matches_pytorch) {
  /* tests/make_tfm_fixture.py: tools/bench_torch.py's DiT1D in double */
  FILE *f = fopen(LFP_TFM_FIXTURE, "r");
  ASSERT_MSG(f, "cannot open %s", LFP_TFM_FIXTURE);
  char line[512];
  ASSERT(fgets(line, sizeof(line), f) && line[0] == '#');
  int cases = 0, T, A, C, D, L, H, F, E, cond, B;
  while (fscanf(f, " case %d %d %d %d %d %d %d %d %d %d", &T, &A, &C, &D, &L, &H, &F, &E, &cond, &B) == 10) {
    fc_tfm_config cfg = s_cfg(T, A, C, D, L, H, F, E, FC_ACT_GELU, (fc_tfm_cond)cond);
    char err[256];
    ASSERT_MSG(fc_tfm_config_check(&cfg, err, sizeof(err)) == 0, "%s", err);
    int np, nt, nx, nc, ndy, ny, ng, ndx, ndc;
    double *p = s_read_array(f, "params", &np), *t = s_read_array(f, "t", &nt), *x = s_read_array(f, "x", &nx);
    double *c = s_read_array(f, "c", &nc), *dy = s_read_array(f, "dy", &ndy), *y = s_read_array(f, "y", &ny);
    double *g = s_read_array(f, "grad", &ng), *dx = s_read_array(f, "dx", &ndx), *dc = s_read_array(f, "dc", &ndc);
    ASSERT(p && t && x && c && dy && y && g && dx && dc);
    /* the inputs are floats, written with the 9 digits that identify a float:
     * read back through float to get their exact values */
    double *in[5] = {p, t, x, c, dy};
    int nin[5] = {np, nt, nx, nc, ndy};
    for (int k = 0; k < 5; k++)
      for (int i = 0; i < nin[k]; i++) in[k][i] = (float)in[k][i];
    ASSERT_EQ_INT(np, fc_tfm_nparams(&cfg));
    ASSERT(nt == B && nx == B * cfg.dx && nc == B * C && ny == nx && ndy == nx && ng == np && ndx == nx && ndc == nc);
    double *yr = malloc((size_t)nx * sizeof(double)), *gr = malloc((size_t)np * sizeof(double));
    double *dxr = malloc((size_t)nx * sizeof(double)), *dcr = malloc(((size_t)nc + 1) * sizeof(double));
    fc_tfm_ws_ref *ws = fc_tfm_ws_new_ref(&cfg, B);
    fc_tfm_forward_ref(&cfg, p, ws, yr, t, x, C ? c : NULL, B);
    if (s_close_arrays("y", yr, y, nx, 1e-10, 0)) return 1;
    fc_tfm_backward_ref(&cfg, p, ws, gr, 0, dxr, C ? dcr : NULL, dy, B);
    fc_tensor_info ti[FC_TFM_MAX_TENSORS];
    int n = fc_tfm_tensors(&cfg, ti, FC_TFM_MAX_TENSORS);
    /* a floor at 1e-6 of the whole gradient: the key bias has gradient 0
     * (softmax is invariant to it), rounding on both sides */
    const double gall = s_max_abs(g, (size_t)np);
    for (int k = 0; k < n; k++)
      if (s_close_arrays(ti[k].name, gr + ti[k].offset, g + ti[k].offset, ti[k].rows * ti[k].cols, 1e-9, 1e-6 * gall))
        return 1;
    if (s_close_arrays("dx", dxr, dx, nx, 1e-9, 0) || s_close_arrays("dc", dcr, dc, nc, 1e-9, 0)) return 1;
    /* and the float network on the same (float-representable) weights */
    float *pf = malloc((size_t)np * sizeof(float)), *tf = malloc((size_t)B * sizeof(float));
    float *xf = malloc((size_t)nx * sizeof(float)), *cf = malloc(((size_t)nc + 1) * sizeof(float));
    float *yf = malloc((size_t)nx * sizeof(float));
    for (int i = 0; i < np; i++) pf[i] = (float)p[i];
    for (int i = 0; i < B; i++) tf[i] = (float)t[i];
    for (int i = 0; i < nx; i++) xf[i] = (float)x[i];
    for (int i = 0; i < nc; i++) cf[i] = (float)c[i];
    fc_tfm net;
    fc_tfm_bind(&net, &cfg, pf);
    fc_tfm_ws *wsf = fc_tfm_ws_new(&cfg, B);
    fc_tfm_forward(&net, wsf, yf, tf, xf, C ? cf : NULL, B);
    for (int i = 0; i < nx; i++) yr[i] = yf[i];
    if (s_close_arrays("float y", yr, y, nx, 1e-5, 0)) return 1;
    fc_tfm_ws_free(wsf);
    fc_tfm_ws_free_ref(ws);
    free(p); free(t); free(x); free(c); free(dy); free(y); free(g); free(dx); free(dc);
    free(yr); free(gr); free(dxr); free(dcr); free(pf); free(tf); free(xf); free(cf); free(yf);
    cases++;
  }
  fclose(f);
  ASSERT_EQ_INT(cases, 2);
  return 0;
}

/* ---------- the float BLAS path against the double reference ---------- */

static int s_check_blas(const fc_tfm_config *cfg, int B, uint64_t seed) {
  const int D = cfg->dx, C = cfg->dc;
  const size_t P = fc_tfm_nparams(cfg), nx = (size_t)B * D, nc = (size_t)B * C;
  fc_rng rng;
  fc_rng_seed(&rng, seed);
  float *pf = malloc(P * sizeof(float)), *gf = malloc(P * sizeof(float));
  double *pd = malloc(P * sizeof(double)), *gd = calloc(P, sizeof(double));
  fc_tfm net;
  fc_tfm_bind(&net, cfg, pf);
  fc_tfm_init(&net, &rng);
  /* off adaLN-Zero's zeros, so that every path is checked */
  for (size_t i = 0; i < P; i++) pd[i] = pf[i] = pf[i] + (float)(0.2 * (fc_rng_uniform(&rng) - 0.5));
  float *tf = malloc((size_t)B * sizeof(float)), *xf = malloc(nx * sizeof(float)), *yf = malloc(nx * sizeof(float));
  float *dyf = malloc(nx * sizeof(float)), *dxf = malloc(nx * sizeof(float));
  float *cf = malloc((nc + 1) * sizeof(float)), *dcf = malloc((nc + 1) * sizeof(float));
  double *td = malloc((size_t)B * sizeof(double)), *xd = malloc(nx * sizeof(double)), *yd = malloc(nx * sizeof(double));
  double *dyd = malloc(nx * sizeof(double)), *dxd = malloc(nx * sizeof(double));
  double *cd = malloc((nc + 1) * sizeof(double)), *dcd = malloc((nc + 1) * sizeof(double));
  for (int i = 0; i < B; i++) td[i] = tf[i] = (float)fc_rng_uniform(&rng);
  for (size_t i = 0; i < nx; i++) {
    xd[i] = xf[i] = (float)fc_rng_normal(&rng);
    dyd[i] = dyf[i] = (float)fc_rng_normal(&rng);
  }
  for (size_t i = 0; i < nc; i++) cd[i] = cf[i] = (float)fc_rng_normal(&rng);
  fc_tfm_ws *wsf = fc_tfm_ws_new(cfg, B);
  fc_tfm_ws_ref *wsd = fc_tfm_ws_new_ref(cfg, B);
  fc_tfm_forward(&net, wsf, yf, tf, xf, C ? cf : NULL, B);
  fc_tfm_forward_ref(cfg, pd, wsd, yd, td, xd, C ? cd : NULL, B);
  double ys = s_max_abs(yd, nx);
  for (size_t i = 0; i < nx; i++)
    ASSERT_MSG(fabs(yf[i] - yd[i]) <= 1e-5 * (1 + ys), "L=%d B=%d y[%zu]: %.8g vs %.8g", cfg->depth, B, i, yf[i],
               yd[i]);
  for (size_t i = 0; i < P; i++) gf[i] = NAN; /* overwritten, never read */
  fc_tfm_backward(&net, wsf, gf, 0, dxf, C ? dcf : NULL, dyf, B);
  fc_tfm_backward_ref(cfg, pd, wsd, gd, 0, dxd, C ? dcd : NULL, dyd, B);
  fc_tensor_info ti[FC_TFM_MAX_TENSORS];
  int nt = fc_tfm_tensors(cfg, ti, FC_TFM_MAX_TENSORS);
  /* each tensor to 1e-4 of its own scale, with a floor at 1e-3 of the whole
   * gradient's (the key bias has gradient 0) */
  const double gall = s_max_abs(gd, P);
  for (int k = 0; k < nt; k++) {
    size_t cnt = (size_t)ti[k].rows * ti[k].cols;
    double gs = s_max_abs(gd + ti[k].offset, cnt) + 1e-3 * gall;
    for (size_t j = 0; j < cnt; j++)
      ASSERT_MSG(fabs(gf[ti[k].offset + j] - gd[ti[k].offset + j]) <= 1e-4 * gs,
                 "L=%d B=%d %s[%zu]: %.8g vs %.8g (max %.3g)", cfg->depth, B, ti[k].name, j, gf[ti[k].offset + j],
                 gd[ti[k].offset + j], gs);
  }
  double xs = s_max_abs(dxd, nx), cs = s_max_abs(dcd, nc);
  for (size_t i = 0; i < nx; i++) ASSERT_NEAR(dxf[i], dxd[i], 1e-4 * (1e-3 + xs));
  for (size_t i = 0; i < nc; i++) ASSERT_NEAR(dcf[i], dcd[i], 1e-4 * (1e-3 + cs));
  /* accumulate = 1 adds a second gradient on top; dx, dc may be NULL */
  fc_tfm_backward(&net, wsf, gf, 1, NULL, NULL, dyf, B);
  for (int k = 0; k < nt; k++) {
    size_t cnt = (size_t)ti[k].rows * ti[k].cols;
    double gs = s_max_abs(gd + ti[k].offset, cnt) + 1e-3 * gall;
    for (size_t j = ti[k].offset; j < ti[k].offset + cnt; j++) ASSERT_NEAR(gf[j], 2.0 * gd[j], 2e-4 * gs);
  }
  fc_tfm_ws_free(wsf);
  fc_tfm_ws_free_ref(wsd);
  free(pf); free(gf); free(pd); free(gd); free(tf); free(xf); free(yf); free(dyf); free(dxf); free(cf); free(dcf);
  free(td); free(xd); free(yd); free(dyd); free(dxd); free(cd); free(dcd);
  return 0;
}

TEST(tfm_blas_matches_reference) {
  fc_tfm_config cfgs[4] = {
      s_cfg(16, 3, 5, 32, 2, 4, 64, 8, FC_ACT_GELU, FC_TFM_ADALN),
      s_cfg(7, 2, 4, 24, 1, 3, 40, 4, FC_ACT_SILU, FC_TFM_FILM),
      s_cfg(8, 7, 0, 16, 3, 1, 16, 6, FC_ACT_MISH, FC_TFM_ADALN),
      s_cfg(1, 2, 6, 16, 2, 2, 32, 8, FC_ACT_GELU, FC_TFM_FILM),
  };
  for (int k = 0; k < 4; k++) {
    char err[256];
    ASSERT_MSG(fc_tfm_config_check(&cfgs[k], err, sizeof(err)) == 0, "%s", err);
    if (s_check_blas(&cfgs[k], 1, 10 + k)) return 1; /* one sample */
    if (s_check_blas(&cfgs[k], 6, 20 + k)) return 1;
  }
  /* the default network at a batch that splits every matmul over the threads */
  fc_tfm_config def;
  fc_tfm_config_default(&def, 16, 2, 20);
  return s_check_blas(&def, 40, 30);
}

/* ---------- configuration ---------- */

TEST(tfm_config_check_refusals) {
  char err[256];
  fc_tfm_config cfg;
  for (int T = 1; T <= 40; T++) { /* the defaults always pass */
    fc_tfm_config_default(&cfg, T, 7, 38);
    ASSERT_MSG(fc_tfm_config_check(&cfg, err, sizeof(err)) == 0, "T=%d: %s", T, err);
  }
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.heads = 3; /* 128 is not a multiple of 3 */
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "width 128 does not split into 3 attention heads");
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.dx = 31;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "x dimension 31 must be horizon 16 x action dimension 2");
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.depth = 0;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "depth must be in 1..32");
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.temb = 7;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.cond = (fc_tfm_cond)2;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "unknown transformer conditioning 2");
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.ffn = 0;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  fc_tfm_config_default(&cfg, 2000, 2, 40);
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "horizon must be in 1..1024");
  return 0;
}

static int s_cmp_offset(const void *a, const void *b) {
  const fc_tensor_info *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

TEST(tfm_tensors_cover_the_vector) {
  for (int L = 1; L <= 4; L += 3)
    for (int cond = 0; cond <= 1; cond++) {
      fc_tfm_config cfg = s_cfg(16, 3, 5 * cond, 32, L, 4, 48, 16, FC_ACT_GELU, (fc_tfm_cond)cond);
      char err[256];
      ASSERT_MSG(fc_tfm_config_check(&cfg, err, sizeof(err)) == 0, "%s", err);
      fc_tensor_info ti[FC_TFM_MAX_TENSORS + 1];
      const int n = fc_tfm_tensors(&cfg, ti, FC_TFM_MAX_TENSORS + 1);
      ASSERT(n <= FC_TFM_MAX_TENSORS);
      ASSERT_EQ_INT(n, 4 + 3 + 8 * L + 4); /* time, in + pos, blocks, modulation, out */
      qsort(ti, (size_t)n, sizeof(ti[0]), s_cmp_offset);
      size_t next = 0;
      for (int k = 0; k < n; k++) {
        ASSERT_MSG(ti[k].offset == next, "%s at %zu, expected %zu", ti[k].name, ti[k].offset, next);
        ASSERT(ti[k].rows >= 1 && ti[k].cols >= 1);
        next += (size_t)ti[k].rows * ti[k].cols;
      }
      ASSERT_EQ_INT(next, fc_tfm_nparams(&cfg));
      fc_tensor_info few[3];
      ASSERT_EQ_INT(fc_tfm_tensors(&cfg, few, 3), n);
      /* the modulation: 6 vectors a block with adaLN, 4 with FiLM, and the final 2 */
      fc_tfm_layout lay;
      fc_tfm_layout_make(&lay, &cfg);
      ASSERT_EQ_INT(lay.mw, ((cond ? 4 : 6) * L + 2) * 32);
    }
  /* DiT's count for one block of width D, ffn 4 D: 12 D^2 + 9 D, plus 6 D (dk + 1) of modulation */
  fc_tfm_config a = s_cfg(16, 2, 10, 64, 1, 4, 256, 16, FC_ACT_GELU, FC_TFM_ADALN), b = a;
  b.depth = 2;
  ASSERT_EQ_INT(fc_tfm_nparams(&b) - fc_tfm_nparams(&a), 12 * 64 * 64 + 9 * 64 + 6 * 64 * (16 + 10 + 1));
  return 0;
}

TEST(tfm_init_is_adaln_zero) {
  for (int cond = 0; cond <= 1; cond++) {
    fc_tfm_config cfg;
    fc_tfm_config_default(&cfg, 16, 2, 20);
    cfg.cond = (fc_tfm_cond)cond;
    const size_t P = fc_tfm_nparams(&cfg);
    float *p = malloc(P * sizeof(float));
    fc_tfm net;
    fc_tfm_bind(&net, &cfg, p);
    fc_rng rng;
    fc_rng_seed(&rng, 3);
    fc_tfm_init(&net, &rng);
    fc_tensor_info ti[FC_TFM_MAX_TENSORS];
    const int n = fc_tfm_tensors(&cfg, ti, FC_TFM_MAX_TENSORS);
    for (int k = 0; k < n; k++) {
      const float *v = p + ti[k].offset;
      const size_t cnt = (size_t)ti[k].rows * ti[k].cols;
      double lo = 1e9, hi = -1e9, ss = 0;
      for (size_t j = 0; j < cnt; j++) lo = fmin(lo, v[j]), hi = fmax(hi, v[j]), ss += (double)v[j] * v[j];
      const int zero = cond == FC_TFM_ADALN && (!strncmp(ti[k].name, "mod.", 4) || !strncmp(ti[k].name, "out.", 4));
      if (zero) {
        ASSERT_MSG(lo == 0 && hi == 0, "%s in [%g, %g], adaLN-Zero wants 0", ti[k].name, lo, hi);
      } else if (!strcmp(ti[k].name, "pos")) {
        ASSERT_EQ_INT(ti[k].fan_in, 0);
        const double sd = sqrt(ss / (double)cnt);
        ASSERT_MSG(sd > 0.018 && sd < 0.022, "pos sd %g, want 0.02", sd);
      } else {
        const double bound = 1.0 / sqrt((double)ti[k].fan_in);
        ASSERT_MSG(lo >= -bound && hi <= bound, "%s in [%g, %g], bound %g", ti[k].name, lo, hi, bound);
        if (cnt >= 64) ASSERT_MSG(hi - lo > bound, "%s in [%g, %g], bound %g", ti[k].name, lo, hi, bound);
      }
    }
    /* adaLN-Zero starts at v = 0 for every input */
    if (cond == FC_TFM_ADALN) {
      float t[2] = {0.3f, 0.8f}, x[64], c[40], y[64];
      fc_rng_normal_fill(&rng, x, 64);
      fc_rng_normal_fill(&rng, c, 40);
      fc_tfm_ws *ws = fc_tfm_ws_new(&cfg, 2);
      fc_tfm_forward(&net, ws, y, t, x, c, 2);
      for (int i = 0; i < 64; i++) ASSERT(y[i] == 0.0f);
      fc_tfm_ws_free(ws);
    }
    free(p);
  }
  return 0;
}

TEST(tfm_width_matching_is_closest) {
  fc_tfm_config cfg;
  fc_tfm_config_default(&cfg, 16, 7, 38);
  fc_tfm_config one = fc_tfm_width_matching(&cfg, 1);
  ASSERT_EQ_INT(one.width, cfg.width);
  ASSERT_EQ_INT(one.ffn, cfg.ffn);
  const double target = (double)fc_tfm_nparams(&cfg);
  for (int copies = 2; copies <= 8; copies++) {
    fc_tfm_config m = fc_tfm_width_matching(&cfg, copies);
    char err[256];
    ASSERT_MSG(fc_tfm_config_check(&m, err, sizeof(err)) == 0, "%s", err);
    ASSERT(m.width % cfg.heads == 0 && m.width <= cfg.width);
    ASSERT_EQ_INT(m.ffn, (int)lround(4.0 * m.width));
    const double gap = fabs((double)fc_tfm_nparams(&m) * copies - target);
    for (int w = cfg.heads; w <= cfg.width; w += cfg.heads) { /* no other width comes closer */
      fc_tfm_config c = cfg;
      c.width = w;
      c.ffn = 4 * w;
      ASSERT_MSG(gap <= fabs((double)fc_tfm_nparams(&c) * copies - target), "copies %d: width %d beats %d", copies, w,
                 m.width);
    }
    ASSERT_MSG(gap < target / 10, "copies %d: gap %g of %g", copies, gap, target);
  }
  return 0;
}

/* ---------- batch behaviour ---------- */

TEST(tfm_batch1_equals_row_of_batch) {
  fc_tfm_config cfg;
  fc_tfm_config_default(&cfg, 16, 7, 38);
  const int B = 9, D = cfg.dx, C = cfg.dc;
  const size_t P = fc_tfm_nparams(&cfg);
  float *p = malloc(P * sizeof(float));
  fc_tfm net;
  fc_tfm_bind(&net, &cfg, p);
  fc_rng rng;
  fc_rng_seed(&rng, 5);
  fc_tfm_init(&net, &rng);
  for (size_t i = 0; i < P; i++) p[i] += (float)(0.1 * (fc_rng_uniform(&rng) - 0.5)); /* off adaLN-Zero's zeros */
  float t[9], *x = malloc((size_t)B * D * sizeof(float)), *c = malloc((size_t)B * C * sizeof(float));
  float *y = malloc((size_t)B * D * sizeof(float)), *y1 = malloc((size_t)D * sizeof(float));
  for (int b = 0; b < B; b++) t[b] = (float)fc_rng_uniform(&rng);
  fc_rng_normal_fill(&rng, x, (size_t)B * D);
  fc_rng_normal_fill(&rng, c, (size_t)B * C);
  fc_tfm_ws *ws = fc_tfm_ws_new(&cfg, B), *ws1 = fc_tfm_ws_new(&cfg, 1);
  fc_tfm_forward(&net, ws, y, t, x, c, B);
  for (int row = 0; row < B; row += 4) { /* rows 0, 4, 8 */
    fc_tfm_forward(&net, ws1, y1, t + row, x + (size_t)row * D, c + (size_t)row * C, 1);
    double s = 0;
    for (int i = 0; i < D; i++) s = fmax(s, fabs(y1[i]));
    for (int i = 0; i < D; i++)
      ASSERT_MSG(fabs(y1[i] - y[(size_t)row * D + i]) <= 1e-5 * (1 + s), "row %d [%d]: %.8g vs %.8g", row, i, y1[i],
                 y[(size_t)row * D + i]);
  }
  /* a non-finite sample stays in its row (attention and LayerNorm are per sample) */
  float *y2 = malloc((size_t)B * D * sizeof(float));
  x[3] = NAN;
  fc_tfm_forward(&net, ws, y2, t, x, c, B);
  int bad0 = 0;
  for (int i = 0; i < D; i++) bad0 += !isfinite(y2[i]);
  ASSERT_EQ_INT(bad0, D);
  for (int i = D; i < B * D; i++) ASSERT_MSG(y2[i] == y[i], "[%d]: %.8g vs %.8g", i, y2[i], y[i]);
  fc_tfm_ws_free(ws);
  fc_tfm_ws_free(ws1);
  free(p); free(x); free(c); free(y); free(y1); free(y2);
  return 0;
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(tfm_reference_gradients),      TEST_ENTRY(tfm_matches_pytorch),
      TEST_ENTRY(tfm_blas_matches_reference),   TEST_ENTRY(tfm_config_check_refusals),
      TEST_ENTRY(tfm_tensors_cover_the_vector), TEST_ENTRY(tfm_init_is_adaln_zero),
      TEST_ENTRY(tfm_width_matching_is_closest), TEST_ENTRY(tfm_batch1_equals_row_of_batch),
  };
  fc_par_init(0); /* as lfp does: the pool sized from the CPUs, OpenBLAS one thread per call */
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
