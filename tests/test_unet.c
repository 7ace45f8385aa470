/* test_unet: fc_unet, the 1-D conv U-Net velocity network: the double
 * reference's gradients against central finite differences and its forward
 * and gradients against PyTorch's (tests/fixtures/unet_torch.txt), the float
 * BLAS path against the reference, configuration refusals, the tensor list, width
 * matching, batch independence. */
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

/* a small config: T, A, C, levels, dims, kernel, groups, act */
static fc_unet_config s_cfg(int T, int A, int C, int L, const int *dims, int K, int G, fc_act act, int temb) {
  fc_unet_config cfg;
  fc_unet_config_default(&cfg, T, A, C);
  cfg.nlevels = L;
  for (int i = 0; i < FC_UNET_MAX_LEVELS; i++) cfg.dims[i] = i < L ? dims[i] : 0;
  cfg.kernel = K;
  cfg.groups = G;
  cfg.act = act;
  cfg.temb = temb;
  return cfg;
}

/* ---------- the reference's gradients against central finite differences ---------- */

/* L = sum(r * y) for a random r: every parameter, x and c */
static int s_check_ref_grads(const fc_unet_config *cfg, uint64_t seed) {
  char err[256];
  ASSERT_MSG(fc_unet_config_check(cfg, err, sizeof(err)) == 0, "%s", err);
  const int B = 2, D = cfg->dx, C = cfg->dc;
  const size_t P = fc_unet_nparams(cfg);
  fc_rng rng;
  fc_rng_seed(&rng, seed);
  double *p = malloc(P * sizeof(double)), *g = calloc(P, sizeof(double));
  double *x = malloc((size_t)B * D * sizeof(double)), *r = malloc((size_t)B * D * sizeof(double));
  double *y = malloc((size_t)B * D * sizeof(double)), *dx = malloc((size_t)B * D * sizeof(double));
  double t[2], c[2 * 8] = {0}, dc[2 * 8];
  ASSERT(C <= 8);
  /* weights of PyTorch's scale, GroupNorm weights near 1 so every layer passes signal */
  {
    float *pf = malloc(P * sizeof(float));
    fc_unet net;
    fc_unet_bind(&net, cfg, pf);
    fc_unet_init(&net, &rng);
    for (size_t i = 0; i < P; i++) p[i] = pf[i] + 0.2 * (fc_rng_uniform(&rng) - 0.5);
    free(pf);
  }
  s_fill_uniform(&rng, t, 2, 0.0, 1.0);
  s_fill_uniform(&rng, x, (size_t)B * D, -2.0, 2.0);
  s_fill_uniform(&rng, c, (size_t)B * C, -2.0, 2.0);
  s_fill_uniform(&rng, r, (size_t)B * D, -1.0, 1.0);
  fc_unet_ws_ref *ws = fc_unet_ws_new_ref(cfg, B);
  fc_unet_forward_ref(cfg, p, ws, y, t, x, C ? c : NULL, B);
  fc_unet_backward_ref(cfg, p, ws, g, 0, dx, C ? dc : NULL, r, B);
#define S_LOSS(out)                                                    \
  do {                                                                 \
    fc_unet_forward_ref(cfg, p, ws, y, t, x, C ? c : NULL, B);         \
    out = 0;                                                           \
    for (int i_ = 0; i_ < B * D; i_++) out += r[i_] * y[i_];           \
  } while (0)
  const double h = 1e-5;
  fc_tensor_info ti[FC_UNET_MAX_TENSORS];
  int nt = fc_unet_tensors(cfg, ti, FC_UNET_MAX_TENSORS);
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
      ASSERT_MSG(s_grad_close(g[i], num), "L=%d %s %s[%zu]: analytic %.12g numeric %.12g", cfg->nlevels,
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
  fc_unet_ws_free_ref(ws);
  free(p); free(g); free(x); free(r); free(y); free(dx);
  return 0;
}

TEST(unet_reference_gradients) {
  /* 3 levels with a residual conv in most blocks, Mish; 1, 2 and 4 levels; no condition; SiLU */
  const int d3[3] = {4, 6, 8}, d1[1] = {6}, d2[2] = {4, 4}, d4[4] = {4, 6, 6, 8};
  fc_unet_config a = s_cfg(8, 2, 3, 3, d3, 3, 2, FC_ACT_MISH, 4);
  fc_unet_config b = s_cfg(5, 3, 2, 1, d1, 5, 3, FC_ACT_MISH, 6);
  fc_unet_config c = s_cfg(4, 2, 0, 2, d2, 3, 2, FC_ACT_SILU, 4);
  fc_unet_config d = s_cfg(8, 1, 2, 4, d4, 3, 2, FC_ACT_GELU, 4);
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

TEST(unet_matches_pytorch) {
  /* tests/make_unet_fixture.py: tools/bench_torch.py's UNet1D in double */
  FILE *f = fopen(LFP_UNET_FIXTURE, "r");
  ASSERT_MSG(f, "cannot open %s", LFP_UNET_FIXTURE);
  char line[512];
  ASSERT(fgets(line, sizeof(line), f) && line[0] == '#');
  int cases = 0, T, A, C, L, d[4], K, G, E, B;
  while (fscanf(f, " case %d %d %d %d %d %d %d %d %d %d %d %d", &T, &A, &C, &L, &d[0], &d[1], &d[2], &d[3], &K, &G,
                &E, &B) == 12) {
    fc_unet_config cfg = s_cfg(T, A, C, L, d, K, G, FC_ACT_MISH, E);
    char err[256];
    ASSERT_MSG(fc_unet_config_check(&cfg, err, sizeof(err)) == 0, "%s", err);
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
    ASSERT_EQ_INT(np, fc_unet_nparams(&cfg));
    ASSERT(nt == B && nx == B * cfg.dx && nc == B * C && ny == nx && ndy == nx && ng == np && ndx == nx && ndc == nc);
    double *yr = malloc((size_t)nx * sizeof(double)), *gr = malloc((size_t)np * sizeof(double));
    double *dxr = malloc((size_t)nx * sizeof(double)), *dcr = malloc(((size_t)nc + 1) * sizeof(double));
    fc_unet_ws_ref *ws = fc_unet_ws_new_ref(&cfg, B);
    fc_unet_forward_ref(&cfg, p, ws, yr, t, x, C ? c : NULL, B);
    if (s_close_arrays("y", yr, y, nx, 1e-10, 0)) return 1;
    fc_unet_backward_ref(&cfg, p, ws, gr, 0, dxr, C ? dcr : NULL, dy, B);
    fc_tensor_info ti[FC_UNET_MAX_TENSORS];
    int n = fc_unet_tensors(&cfg, ti, FC_UNET_MAX_TENSORS);
    /* a floor at 1e-6 of the whole gradient: a conv bias before a
     * one-channel GroupNorm group has gradient 0, rounding on both sides */
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
    fc_unet net;
    fc_unet_bind(&net, &cfg, pf);
    fc_unet_ws *wsf = fc_unet_ws_new(&cfg, B);
    fc_unet_forward(&net, wsf, yf, tf, xf, C ? cf : NULL, B);
    for (int i = 0; i < nx; i++) yr[i] = yf[i];
    if (s_close_arrays("float y", yr, y, nx, 1e-5, 0)) return 1;
    fc_unet_ws_free(wsf);
    fc_unet_ws_free_ref(ws);
    free(p); free(t); free(x); free(c); free(dy); free(y); free(g); free(dx); free(dc);
    free(yr); free(gr); free(dxr); free(dcr); free(pf); free(tf); free(xf); free(cf); free(yf);
    cases++;
  }
  fclose(f);
  ASSERT_EQ_INT(cases, 2);
  return 0;
}

/* ---------- the float BLAS path against the double reference ---------- */

static int s_check_blas(const fc_unet_config *cfg, int B, uint64_t seed) {
  const int D = cfg->dx, C = cfg->dc;
  const size_t P = fc_unet_nparams(cfg), nx = (size_t)B * D, nc = (size_t)B * C;
  fc_rng rng;
  fc_rng_seed(&rng, seed);
  float *pf = malloc(P * sizeof(float)), *gf = malloc(P * sizeof(float));
  double *pd = malloc(P * sizeof(double)), *gd = calloc(P, sizeof(double));
  fc_unet net;
  fc_unet_bind(&net, cfg, pf);
  fc_unet_init(&net, &rng);
  /* GroupNorm parameters off their 1 / 0 start, so that their use is checked */
  for (size_t i = 0; i < P; i++) pd[i] = pf[i] = pf[i] + (float)(0.1 * (fc_rng_uniform(&rng) - 0.5));
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
  fc_unet_ws *wsf = fc_unet_ws_new(cfg, B);
  fc_unet_ws_ref *wsd = fc_unet_ws_new_ref(cfg, B);
  fc_unet_forward(&net, wsf, yf, tf, xf, C ? cf : NULL, B);
  fc_unet_forward_ref(cfg, pd, wsd, yd, td, xd, C ? cd : NULL, B);
  double ys = s_max_abs(yd, nx);
  for (size_t i = 0; i < nx; i++)
    ASSERT_MSG(fabs(yf[i] - yd[i]) <= 1e-5 * (1 + ys), "L=%d B=%d y[%zu]: %.8g vs %.8g", cfg->nlevels, B, i, yf[i],
               yd[i]);
  for (size_t i = 0; i < P; i++) gf[i] = NAN; /* overwritten, never read */
  fc_unet_backward(&net, wsf, gf, 0, dxf, C ? dcf : NULL, dyf, B);
  fc_unet_backward_ref(cfg, pd, wsd, gd, 0, dxd, C ? dcd : NULL, dyd, B);
  fc_tensor_info ti[FC_UNET_MAX_TENSORS];
  int nt = fc_unet_tensors(cfg, ti, FC_UNET_MAX_TENSORS);
  /* each tensor to 1e-4 of its own scale, with a floor at 1e-7 of the whole
   * gradient's (a conv bias before a per-channel GroupNorm has gradient 0) */
  const double gall = s_max_abs(gd, P);
  for (int k = 0; k < nt; k++) {
    size_t cnt = (size_t)ti[k].rows * ti[k].cols;
    double gs = s_max_abs(gd + ti[k].offset, cnt) + 1e-3 * gall;
    for (size_t j = 0; j < cnt; j++)
      ASSERT_MSG(fabs(gf[ti[k].offset + j] - gd[ti[k].offset + j]) <= 1e-4 * gs,
                 "L=%d B=%d %s[%zu]: %.8g vs %.8g (max %.3g)", cfg->nlevels, B, ti[k].name, j, gf[ti[k].offset + j],
                 gd[ti[k].offset + j], gs);
  }
  double xs = s_max_abs(dxd, nx), cs = s_max_abs(dcd, nc);
  for (size_t i = 0; i < nx; i++) ASSERT_NEAR(dxf[i], dxd[i], 1e-4 * (1e-3 + xs));
  for (size_t i = 0; i < nc; i++) ASSERT_NEAR(dcf[i], dcd[i], 1e-4 * (1e-3 + cs));
  /* accumulate = 1 adds a second gradient on top; dx, dc may be NULL */
  fc_unet_backward(&net, wsf, gf, 1, NULL, NULL, dyf, B);
  for (int k = 0; k < nt; k++) {
    size_t cnt = (size_t)ti[k].rows * ti[k].cols;
    double gs = s_max_abs(gd + ti[k].offset, cnt) + 1e-3 * gall;
    for (size_t j = ti[k].offset; j < ti[k].offset + cnt; j++) ASSERT_NEAR(gf[j], 2.0 * gd[j], 2e-4 * gs);
  }
  fc_unet_ws_free(wsf);
  fc_unet_ws_free_ref(wsd);
  free(pf); free(gf); free(pd); free(gd); free(tf); free(xf); free(yf); free(dyf); free(dxf); free(cf); free(dcf);
  free(td); free(xd); free(yd); free(dyd); free(dxd); free(cd); free(dcd);
  return 0;
}

TEST(unet_blas_matches_reference) {
  const int d3[3] = {16, 24, 32}, d1[1] = {16}, d2[2] = {8, 16}, d4[4] = {8, 16, 16, 24};
  fc_unet_config cfgs[4] = {
      s_cfg(16, 3, 5, 3, d3, 5, 8, FC_ACT_MISH, 8),
      s_cfg(7, 2, 4, 1, d1, 3, 4, FC_ACT_MISH, 4),
      s_cfg(8, 7, 0, 2, d2, 5, 4, FC_ACT_SILU, 6),
      s_cfg(16, 2, 6, 4, d4, 3, 4, FC_ACT_GELU, 8),
  };
  for (int k = 0; k < 4; k++) {
    char err[256];
    ASSERT_MSG(fc_unet_config_check(&cfgs[k], err, sizeof(err)) == 0, "%s", err);
    if (s_check_blas(&cfgs[k], 1, 10 + k)) return 1; /* one sample */
    if (s_check_blas(&cfgs[k], 6, 20 + k)) return 1;
  }
  /* the default network at a batch that splits every matmul over the threads */
  fc_unet_config def;
  fc_unet_config_default(&def, 16, 2, 20);
  return s_check_blas(&def, 40, 30);
}

/* ---------- configuration ---------- */

TEST(unet_config_check_refusals) {
  char err[256];
  fc_unet_config cfg;
  fc_unet_config_default(&cfg, 16, 2, 40);
  ASSERT_MSG(fc_unet_config_check(&cfg, err, sizeof(err)) == 0, "%s", err);
  ASSERT_EQ_INT(cfg.nlevels, 3);
  /* the defaults always pass: fewer levels for a horizon that halves fewer times */
  for (int T = 1; T <= 40; T++) {
    fc_unet_config_default(&cfg, T, 7, 38);
    ASSERT_MSG(fc_unet_config_check(&cfg, err, sizeof(err)) == 0, "T=%d: %s", T, err);
  }
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.horizon = 12; /* 3 halvings of 12 do not come back to 12 at 4 levels */
  cfg.dx = 24;
  cfg.nlevels = 4;
  cfg.dims[3] = 256;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "horizon 12 is not divisible by 2^(levels - 1) = 8");
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.dims[1] = 100; /* not a multiple of 8 groups */
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "level 1 channels 100 are not divisible by the 8 GroupNorm groups");
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.kernel = 4;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "kernel size must be odd");
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.dx = 31;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "x dimension 31 must be horizon 16 x action dimension 2");
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.nlevels = 5;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "levels must be in 1..4");
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.temb = 7;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.dims[2] = 2048;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.groups = 0;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  return 0;
}

static int s_cmp_offset(const void *a, const void *b) {
  const fc_tensor_info *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

TEST(unet_tensors_cover_the_vector) {
  const int d4[4] = {32, 64, 64, 128};
  for (int L = 1; L <= 4; L++)
    for (int C = 0; C <= 5; C += 5) {
      fc_unet_config cfg = s_cfg(16, 3, C, L, d4, 5, 8, FC_ACT_MISH, 16);
      char err[256];
      ASSERT_MSG(fc_unet_config_check(&cfg, err, sizeof(err)) == 0, "%s", err);
      fc_tensor_info ti[FC_UNET_MAX_TENSORS + 1];
      int n = fc_unet_tensors(&cfg, ti, FC_UNET_MAX_TENSORS + 1);
      ASSERT(n <= FC_UNET_MAX_TENSORS);
      /* 4 time, per block 8 or 10, downs and ups 2 each, FiLM 2, final 4, output 2 */
      int nres = 0;
      fc_unet_layout lay;
      fc_unet_layout_make(&lay, &cfg);
      for (int b = 0; b < lay.nblocks; b++) nres += lay.blk[b].res;
      ASSERT_EQ_INT(n, 4 + 8 * 4 * L + 2 * nres + 4 * (L - 1) + 8);
      qsort(ti, (size_t)n, sizeof(ti[0]), s_cmp_offset);
      size_t next = 0;
      for (int k = 0; k < n; k++) {
        ASSERT_MSG(ti[k].offset == next, "%s at %zu, expected %zu", ti[k].name, ti[k].offset, next);
        ASSERT(ti[k].rows >= 1 && ti[k].cols >= 1);
        next += (size_t)ti[k].rows * ti[k].cols;
      }
      ASSERT_EQ_INT(next, fc_unet_nparams(&cfg));
      /* a max below the count fills no more than max, still returns the count */
      fc_tensor_info few[3];
      ASSERT_EQ_INT(fc_unet_tensors(&cfg, few, 3), n);
    }
  /* DP's counts for its blocks: the largest level-2 block at {256, 512, 1024} */
  fc_unet_config dp;
  fc_unet_config_default(&dp, 16, 2, 40);
  dp.dims[0] = 256, dp.dims[1] = 512, dp.dims[2] = 1024;
  fc_unet_layout lay;
  fc_unet_layout_make(&lay, &dp);
  ASSERT_EQ_INT(lay.blk[4].cin, 512);
  ASSERT_EQ_INT(lay.blk[4].cout, 1024);
  ASSERT_EQ_INT(lay.blk[8].cin, 2048); /* decoder stage 0: [mid ; skip 2] */
  ASSERT_EQ_INT(lay.blk[8].cout, 512);
  ASSERT_EQ_INT(lay.blk[10].cin, 1024);
  ASSERT_EQ_INT(lay.blk[10].cout, 256);
  ASSERT_EQ_INT(lay.blk[10].len, 8);
  return 0;
}

TEST(unet_init_follows_pytorch) {
  fc_unet_config cfg;
  fc_unet_config_default(&cfg, 16, 2, 20);
  const size_t P = fc_unet_nparams(&cfg);
  float *p = malloc(P * sizeof(float));
  fc_unet net;
  fc_unet_bind(&net, &cfg, p);
  fc_rng rng;
  fc_rng_seed(&rng, 3);
  fc_unet_init(&net, &rng);
  fc_tensor_info ti[FC_UNET_MAX_TENSORS];
  int n = fc_unet_tensors(&cfg, ti, FC_UNET_MAX_TENSORS);
  for (int k = 0; k < n; k++) {
    const float *v = p + ti[k].offset;
    size_t cnt = (size_t)ti[k].rows * ti[k].cols;
    int is_gn = strstr(ti[k].name, "gn") != NULL;
    ASSERT_EQ_INT(ti[k].fan_in == 0, is_gn);
    double lo = 1e9, hi = -1e9;
    for (size_t j = 0; j < cnt; j++) lo = v[j] < lo ? v[j] : lo, hi = v[j] > hi ? v[j] : hi;
    if (is_gn) {
      double want = ti[k].name[strlen(ti[k].name) - 1] == 'w' ? 1.0 : 0.0;
      ASSERT_MSG(lo == want && hi == want, "%s in [%g, %g]", ti[k].name, lo, hi);
    } else {
      double bound = 1.0 / sqrt((double)ti[k].fan_in);
      ASSERT_MSG(lo >= -bound && hi <= bound, "%s in [%g, %g], bound %g", ti[k].name, lo, hi, bound);
      if (cnt >= 64) ASSERT_MSG(hi - lo > bound, "%s in [%g, %g], bound %g", ti[k].name, lo, hi, bound);
    }
  }
  free(p);
  return 0;
}

TEST(unet_width_matching_is_closest) {
  fc_unet_config cfg;
  fc_unet_config_default(&cfg, 16, 7, 38);
  fc_unet_config one = fc_unet_width_matching(&cfg, 1);
  ASSERT(memcmp(one.dims, cfg.dims, sizeof(cfg.dims)) == 0);
  const double target = (double)fc_unet_nparams(&cfg);
  const int G = cfg.groups, steps = cfg.dims[0] / G;
  for (int copies = 2; copies <= 8; copies++) {
    fc_unet_config m = fc_unet_width_matching(&cfg, copies);
    char err[256];
    ASSERT_MSG(fc_unet_config_check(&m, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < m.nlevels; i++) ASSERT(m.dims[i] % G == 0 && m.dims[i] <= cfg.dims[i]);
    const double gap = fabs((double)fc_unet_nparams(&m) * copies - target);
    /* no other scaling of the levels by a common factor comes closer */
    for (int s = 1; s <= steps; s++) {
      fc_unet_config c = cfg;
      for (int i = 0; i < c.nlevels; i++) {
        long q = lround((double)cfg.dims[i] * s / steps / G);
        c.dims[i] = (int)(q < 1 ? 1 : q) * G;
      }
      ASSERT_MSG(gap <= fabs((double)fc_unet_nparams(&c) * copies - target),
                 "copies %d: dims[0] %d beats the matched %d", copies, c.dims[0], m.dims[0]);
    }
    /* and it is close: within a third of one network */
    ASSERT_MSG(gap < target / 3, "copies %d: gap %g of %g", copies, gap, target);
  }
  return 0;
}

/* ---------- batch behaviour ---------- */

TEST(unet_batch1_equals_row_of_batch) {
  fc_unet_config cfg;
  fc_unet_config_default(&cfg, 16, 7, 38);
  const int B = 9, D = cfg.dx, C = cfg.dc;
  const size_t P = fc_unet_nparams(&cfg);
  float *p = malloc(P * sizeof(float));
  fc_unet net;
  fc_unet_bind(&net, &cfg, p);
  fc_rng rng;
  fc_rng_seed(&rng, 5);
  fc_unet_init(&net, &rng);
  float t[9], *x = malloc((size_t)B * D * sizeof(float)), *c = malloc((size_t)B * C * sizeof(float));
  float *y = malloc((size_t)B * D * sizeof(float)), *y1 = malloc((size_t)D * sizeof(float));
  for (int b = 0; b < B; b++) t[b] = (float)fc_rng_uniform(&rng);
  fc_rng_normal_fill(&rng, x, (size_t)B * D);
  fc_rng_normal_fill(&rng, c, (size_t)B * C);
  fc_unet_ws *ws = fc_unet_ws_new(&cfg, B), *ws1 = fc_unet_ws_new(&cfg, 1);
  fc_unet_forward(&net, ws, y, t, x, c, B);
  for (int row = 0; row < B; row += 4) { /* rows 0, 4, 8 */
    fc_unet_forward(&net, ws1, y1, t + row, x + (size_t)row * D, c + (size_t)row * C, 1);
    double s = 0;
    for (int i = 0; i < D; i++) s = fmax(s, fabs(y1[i]));
    for (int i = 0; i < D; i++)
      ASSERT_MSG(fabs(y1[i] - y[(size_t)row * D + i]) <= 1e-5 * (1 + s), "row %d [%d]: %.8g vs %.8g", row, i, y1[i],
                 y[(size_t)row * D + i]);
  }
  /* a non-finite sample stays in its row (GroupNorm is per sample) */
  float *y2 = malloc((size_t)B * D * sizeof(float));
  x[3] = NAN;
  fc_unet_forward(&net, ws, y2, t, x, c, B);
  int bad0 = 0;
  for (int i = 0; i < D; i++) bad0 += !isfinite(y2[i]);
  ASSERT_EQ_INT(bad0, D);
  for (int i = D; i < B * D; i++) ASSERT_MSG(y2[i] == y[i], "[%d]: %.8g vs %.8g", i, y2[i], y[i]);
  fc_unet_ws_free(ws);
  fc_unet_ws_free(ws1);
  free(p); free(x); free(c); free(y); free(y1); free(y2);
  return 0;
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(unet_reference_gradients),      TEST_ENTRY(unet_matches_pytorch),
      TEST_ENTRY(unet_blas_matches_reference),
      TEST_ENTRY(unet_config_check_refusals),    TEST_ENTRY(unet_tensors_cover_the_vector),
      TEST_ENTRY(unet_init_follows_pytorch),     TEST_ENTRY(unet_width_matching_is_closest),
      TEST_ENTRY(unet_batch1_equals_row_of_batch),
  };
  fc_par_init(0); /* as lfp does: the pool sized from the CPUs, OpenBLAS one thread per call */
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
