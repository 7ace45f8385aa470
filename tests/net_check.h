/* net_check.h: the checks every chunk network kind passes (test_unet,
 * test_tfm), written once on the fc_net interface:
 *   net_check_ref_grads  the double reference's gradients of L = sum(r y)
 *                        against central finite differences: up to 40
 *                        entries of every tensor, every x and c;
 *   net_check_fixture    one case of a PyTorch fixture (tests/make_*_fixture.py):
 *                        the reference's y and gradients against PyTorch's in
 *                        double, the float path's y against them;
 *   net_check_blas       the float BLAS path (forward, backward, accumulate)
 *                        against the reference;
 *   net_check_batch_rows a sample's output does not depend on its batch.
 * Each returns 0 or 1 (a failed ASSERT, with its message) as a test case. */
#ifndef LFP_NET_CHECK_H
#define LFP_NET_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowcore.h"
#include "test.h"

static inline void nc_fill_uniform(fc_rng *r, double *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * fc_rng_uniform(r);
}

static inline double nc_max_abs(const double *v, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fabs(v[i]) > m ? fabs(v[i]) : m;
  return m;
}

/* scale-aware comparison of an analytic and a numerical derivative */
static inline int nc_grad_close(double a, double n) { return fabs(a - n) <= 1e-6 * (fabs(a) + fabs(n)) + 1e-9; }

/* the tensors of a config, allocated (free them); their count in *n */
static inline fc_tensor_info *nc_tensors(const fc_net_config *nc, int *n) {
  *n = fc_net_tensors(nc, NULL, 0);
  fc_tensor_info *ti = malloc((size_t)*n * sizeof(*ti));
  fc_net_tensors(nc, ti, *n);
  return ti;
}

/* The parameters start from the kind's initialization plus U(-perturb/2,
 * perturb/2), so that parameters initialized at a constant (GroupNorm's
 * ones, adaLN-Zero's zeros) are checked off it. */
static inline int net_check_ref_grads(const fc_net_config *nc, uint64_t seed, double perturb) {
  char err[256], desc[160];
  ASSERT_MSG(fc_net_config_check(nc, err, sizeof(err)) == 0, "%s", err);
  fc_net_describe(nc, desc, sizeof(desc));
  const int B = 2, D = fc_net_dx(nc), C = fc_net_dc(nc);
  const size_t P = fc_net_nparams(nc);
  fc_rng rng;
  fc_rng_seed(&rng, seed);
  double *p = malloc(P * sizeof(double)), *g = calloc(P, sizeof(double));
  double *x = malloc((size_t)B * D * sizeof(double)), *r = malloc((size_t)B * D * sizeof(double));
  double *y = malloc((size_t)B * D * sizeof(double)), *dx = malloc((size_t)B * D * sizeof(double));
  double t[2], c[2 * 8] = {0}, dc[2 * 8];
  ASSERT(C <= 8);
  {
    float *pf = malloc(P * sizeof(float));
    fc_net net;
    fc_net_bind(&net, nc, pf);
    fc_net_init(&net, &rng);
    for (size_t i = 0; i < P; i++) p[i] = pf[i] + perturb * (fc_rng_uniform(&rng) - 0.5);
    free(pf);
  }
  nc_fill_uniform(&rng, t, 2, 0.0, 1.0);
  nc_fill_uniform(&rng, x, (size_t)B * D, -2.0, 2.0);
  nc_fill_uniform(&rng, c, (size_t)B * C, -2.0, 2.0);
  nc_fill_uniform(&rng, r, (size_t)B * D, -1.0, 1.0);
  fc_net_ws_ref *ws = fc_net_ws_new_ref(nc, B);
  fc_net_forward_ref(nc, p, ws, y, t, x, C ? c : NULL, B);
  fc_net_backward_ref(nc, p, ws, g, 0, dx, C ? dc : NULL, r, B);
#define NC_LOSS(out)                                                   \
  do {                                                                 \
    fc_net_forward_ref(nc, p, ws, y, t, x, C ? c : NULL, B);           \
    out = 0;                                                           \
    for (int i_ = 0; i_ < B * D; i_++) out += r[i_] * y[i_];           \
  } while (0)
  const double h = 1e-5;
  int nt;
  fc_tensor_info *ti = nc_tensors(nc, &nt);
  for (int k = 0; k < nt; k++) {
    const size_t cnt = (size_t)ti[k].rows * ti[k].cols, stride = cnt > 40 ? cnt / 40 : 1;
    double gmax = 0;
    for (size_t j = 0; j < cnt; j += stride) {
      const size_t i = ti[k].offset + j;
      double keep = p[i], lp, lm;
      p[i] = keep + h; NC_LOSS(lp);
      p[i] = keep - h; NC_LOSS(lm);
      p[i] = keep;
      const double num = (lp - lm) / (2 * h);
      ASSERT_MSG(nc_grad_close(g[i], num), "%s: %s[%zu]: analytic %.12g numeric %.12g", desc, ti[k].name, j, g[i], num);
      if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
    }
    ASSERT_MSG(gmax > 1e-6, "%s: the gradient of %s is trivially zero", desc, ti[k].name);
  }
  double *vars[2] = {x, c}, *an[2] = {dx, dc};
  const int counts[2] = {B * D, B * C};
  for (int v = 0; v < 2; v++)
    for (int i = 0; i < counts[v]; i++) {
      double keep = vars[v][i], lp, lm;
      vars[v][i] = keep + h; NC_LOSS(lp);
      vars[v][i] = keep - h; NC_LOSS(lm);
      vars[v][i] = keep;
      ASSERT_MSG(nc_grad_close(an[v][i], (lp - lm) / (2 * h)), "%s: d%s[%d]: %.12g vs %.12g", desc, v ? "c" : "x", i,
                 an[v][i], (lp - lm) / (2 * h));
    }
  ASSERT(nc_max_abs(dx, (size_t)B * D) > 1e-6);
#undef NC_LOSS
  fc_net_ws_free_ref(ws);
  free(ti); free(p); free(g); free(x); free(r); free(y); free(dx);
  return 0;
}

/* one "name count values..." line of a fixture into a new array */
static inline double *nc_read_array(FILE *f, const char *name, int *count) {
  char got[32];
  if (fscanf(f, "%31s %d", got, count) != 2 || strcmp(got, name) || *count < 0) return NULL;
  double *v = malloc(((size_t)*count + 1) * sizeof(double));
  for (int i = 0; i < *count; i++)
    if (fscanf(f, "%lf", &v[i]) != 1) return free(v), NULL;
  return v;
}

/* |a - b| <= rel (max |b| + floor) elementwise */
static inline int nc_close_arrays(const char *what, const double *a, const double *b, int n, double rel, double floor) {
  const double s = nc_max_abs(b, (size_t)n) + floor;
  for (int i = 0; i < n; i++)
    ASSERT_MSG(fabs(a[i] - b[i]) <= rel * s, "%s[%d]: %.15g vs PyTorch %.15g (max %.3g)", what, i, a[i], b[i], s);
  return 0;
}

/* The arrays of one case (after its "case ..." line, B samples): params,
 * t, x, c, dy, then PyTorch's y, grad, dx, dc. The reference must match
 * PyTorch to 1e-10 (y) and 1e-9 (gradients; a floor at 1e-6 of the whole
 * gradient for entries that are 0 up to rounding on both sides), the float
 * path's y to 1e-5. */
static inline int net_check_fixture(const fc_net_config *nc, FILE *f, int B) {
  char err[256];
  ASSERT_MSG(fc_net_config_check(nc, err, sizeof(err)) == 0, "%s", err);
  const int C = fc_net_dc(nc);
  int np, nt, nx, ncn, ndy, ny, ng, ndx, ndc;
  double *p = nc_read_array(f, "params", &np), *t = nc_read_array(f, "t", &nt), *x = nc_read_array(f, "x", &nx);
  double *c = nc_read_array(f, "c", &ncn), *dy = nc_read_array(f, "dy", &ndy), *y = nc_read_array(f, "y", &ny);
  double *g = nc_read_array(f, "grad", &ng), *dx = nc_read_array(f, "dx", &ndx), *dc = nc_read_array(f, "dc", &ndc);
  ASSERT(p && t && x && c && dy && y && g && dx && dc);
  /* the inputs are floats, written with the 9 digits that identify a float:
   * read back through float to get their exact values */
  double *in[5] = {p, t, x, c, dy};
  const int nin[5] = {np, nt, nx, ncn, ndy};
  for (int k = 0; k < 5; k++)
    for (int i = 0; i < nin[k]; i++) in[k][i] = (float)in[k][i];
  ASSERT_EQ_INT(np, fc_net_nparams(nc));
  ASSERT(nt == B && nx == B * fc_net_dx(nc) && ncn == B * C && ny == nx && ndy == nx && ng == np && ndx == nx &&
         ndc == ncn);
  double *yr = malloc((size_t)nx * sizeof(double)), *gr = malloc((size_t)np * sizeof(double));
  double *dxr = malloc((size_t)nx * sizeof(double)), *dcr = malloc(((size_t)ncn + 1) * sizeof(double));
  fc_net_ws_ref *ws = fc_net_ws_new_ref(nc, B);
  fc_net_forward_ref(nc, p, ws, yr, t, x, C ? c : NULL, B);
  if (nc_close_arrays("y", yr, y, nx, 1e-10, 0)) return 1;
  fc_net_backward_ref(nc, p, ws, gr, 0, dxr, C ? dcr : NULL, dy, B);
  int n;
  fc_tensor_info *ti = nc_tensors(nc, &n);
  const double gall = nc_max_abs(g, (size_t)np);
  for (int k = 0; k < n; k++)
    if (nc_close_arrays(ti[k].name, gr + ti[k].offset, g + ti[k].offset, ti[k].rows * ti[k].cols, 1e-9, 1e-6 * gall))
      return 1;
  if (nc_close_arrays("dx", dxr, dx, nx, 1e-9, 0) || nc_close_arrays("dc", dcr, dc, ncn, 1e-9, 0)) return 1;
  /* and the float network on the same (float-representable) weights */
  float *pf = malloc((size_t)np * sizeof(float)), *tf = malloc((size_t)B * sizeof(float));
  float *xf = malloc((size_t)nx * sizeof(float)), *cf = malloc(((size_t)ncn + 1) * sizeof(float));
  float *yf = malloc((size_t)nx * sizeof(float));
  for (int i = 0; i < np; i++) pf[i] = (float)p[i];
  for (int i = 0; i < B; i++) tf[i] = (float)t[i];
  for (int i = 0; i < nx; i++) xf[i] = (float)x[i];
  for (int i = 0; i < ncn; i++) cf[i] = (float)c[i];
  fc_net net;
  fc_net_bind(&net, nc, pf);
  fc_net_ws *wsf = fc_net_ws_new(nc, B);
  fc_net_forward(&net, wsf, yf, tf, xf, C ? cf : NULL, B);
  for (int i = 0; i < nx; i++) yr[i] = yf[i];
  if (nc_close_arrays("float y", yr, y, nx, 1e-5, 0)) return 1;
  fc_net_ws_free(wsf);
  fc_net_ws_free_ref(ws);
  free(ti); free(p); free(t); free(x); free(c); free(dy); free(y); free(g); free(dx); free(dc);
  free(yr); free(gr); free(dxr); free(dcr); free(pf); free(tf); free(xf); free(cf); free(yf);
  return 0;
}

/* forward and both backward modes of the float path against the
 * reference at batch B; parameters perturbed as in net_check_ref_grads.
 * Each gradient tensor to 1e-4 of its own scale, with a floor at 1e-3 of
 * the whole gradient's (entries that are 0 up to rounding: a conv bias
 * before a per-channel GroupNorm, the attention's key bias). */
static inline int net_check_blas(const fc_net_config *nc, int B, uint64_t seed, double perturb) {
  char desc[160];
  fc_net_describe(nc, desc, sizeof(desc));
  const int D = fc_net_dx(nc), C = fc_net_dc(nc);
  const size_t P = fc_net_nparams(nc), nx = (size_t)B * D, ncn = (size_t)B * C;
  fc_rng rng;
  fc_rng_seed(&rng, seed);
  float *pf = malloc(P * sizeof(float)), *gf = malloc(P * sizeof(float));
  double *pd = malloc(P * sizeof(double)), *gd = calloc(P, sizeof(double));
  fc_net net;
  fc_net_bind(&net, nc, pf);
  fc_net_init(&net, &rng);
  for (size_t i = 0; i < P; i++) pd[i] = pf[i] = pf[i] + (float)(perturb * (fc_rng_uniform(&rng) - 0.5));
  float *tf = malloc((size_t)B * sizeof(float)), *xf = malloc(nx * sizeof(float)), *yf = malloc(nx * sizeof(float));
  float *dyf = malloc(nx * sizeof(float)), *dxf = malloc(nx * sizeof(float));
  float *cf = malloc((ncn + 1) * sizeof(float)), *dcf = malloc((ncn + 1) * sizeof(float));
  double *td = malloc((size_t)B * sizeof(double)), *xd = malloc(nx * sizeof(double)), *yd = malloc(nx * sizeof(double));
  double *dyd = malloc(nx * sizeof(double)), *dxd = malloc(nx * sizeof(double));
  double *cd = malloc((ncn + 1) * sizeof(double)), *dcd = malloc((ncn + 1) * sizeof(double));
  for (int i = 0; i < B; i++) td[i] = tf[i] = (float)fc_rng_uniform(&rng);
  for (size_t i = 0; i < nx; i++) {
    xd[i] = xf[i] = (float)fc_rng_normal(&rng);
    dyd[i] = dyf[i] = (float)fc_rng_normal(&rng);
  }
  for (size_t i = 0; i < ncn; i++) cd[i] = cf[i] = (float)fc_rng_normal(&rng);
  fc_net_ws *wsf = fc_net_ws_new(nc, B);
  fc_net_ws_ref *wsd = fc_net_ws_new_ref(nc, B);
  fc_net_forward(&net, wsf, yf, tf, xf, C ? cf : NULL, B);
  fc_net_forward_ref(nc, pd, wsd, yd, td, xd, C ? cd : NULL, B);
  const double ys = nc_max_abs(yd, nx);
  for (size_t i = 0; i < nx; i++)
    ASSERT_MSG(fabs(yf[i] - yd[i]) <= 1e-5 * (1 + ys), "%s, B=%d: y[%zu]: %.8g vs %.8g", desc, B, i, yf[i], yd[i]);
  for (size_t i = 0; i < P; i++) gf[i] = NAN; /* overwritten, never read */
  fc_net_backward(&net, wsf, gf, 0, dxf, C ? dcf : NULL, dyf, B);
  fc_net_backward_ref(nc, pd, wsd, gd, 0, dxd, C ? dcd : NULL, dyd, B);
  int nt;
  fc_tensor_info *ti = nc_tensors(nc, &nt);
  const double gall = nc_max_abs(gd, P);
  for (int k = 0; k < nt; k++) {
    const size_t cnt = (size_t)ti[k].rows * ti[k].cols;
    const double gs = nc_max_abs(gd + ti[k].offset, cnt) + 1e-3 * gall;
    for (size_t j = 0; j < cnt; j++)
      ASSERT_MSG(fabs(gf[ti[k].offset + j] - gd[ti[k].offset + j]) <= 1e-4 * gs, "%s, B=%d: %s[%zu]: %.8g vs %.8g (max %.3g)",
                 desc, B, ti[k].name, j, gf[ti[k].offset + j], gd[ti[k].offset + j], gs);
  }
  const double xs = nc_max_abs(dxd, nx), cs = nc_max_abs(dcd, ncn);
  for (size_t i = 0; i < nx; i++) ASSERT_NEAR(dxf[i], dxd[i], 1e-4 * (1e-3 + xs));
  for (size_t i = 0; i < ncn; i++) ASSERT_NEAR(dcf[i], dcd[i], 1e-4 * (1e-3 + cs));
  /* accumulate = 1 adds a second gradient on top; dx, dc may be NULL */
  fc_net_backward(&net, wsf, gf, 1, NULL, NULL, dyf, B);
  for (int k = 0; k < nt; k++) {
    const size_t cnt = (size_t)ti[k].rows * ti[k].cols;
    const double gs = nc_max_abs(gd + ti[k].offset, cnt) + 1e-3 * gall;
    for (size_t j = ti[k].offset; j < ti[k].offset + cnt; j++) ASSERT_NEAR(gf[j], 2.0 * gd[j], 2e-4 * gs);
  }
  fc_net_ws_free(wsf);
  fc_net_ws_free_ref(wsd);
  free(ti); free(pf); free(gf); free(pd); free(gd); free(tf); free(xf); free(yf); free(dyf); free(dxf); free(cf);
  free(dcf); free(td); free(xd); free(yd); free(dyd); free(dxd); free(cd); free(dcd);
  return 0;
}

/* Batch independence at batch 9: rows 0, 4 and 8 alone equal their rows of
 * the batch, and a non-finite sample stays in its row (every normalization
 * and attention is per sample); parameters perturbed as above. */
static inline int net_check_batch_rows(const fc_net_config *nc, uint64_t seed, double perturb) {
  const int B = 9, D = fc_net_dx(nc), C = fc_net_dc(nc);
  const size_t P = fc_net_nparams(nc);
  float *p = malloc(P * sizeof(float));
  fc_net net;
  fc_net_bind(&net, nc, p);
  fc_rng rng;
  fc_rng_seed(&rng, seed);
  fc_net_init(&net, &rng);
  for (size_t i = 0; i < P; i++) p[i] += (float)(perturb * (fc_rng_uniform(&rng) - 0.5));
  float t[9], *x = malloc((size_t)B * D * sizeof(float)), *c = malloc(((size_t)B * C + 1) * sizeof(float));
  float *y = malloc((size_t)B * D * sizeof(float)), *y1 = malloc((size_t)D * sizeof(float));
  for (int b = 0; b < B; b++) t[b] = (float)fc_rng_uniform(&rng);
  fc_rng_normal_fill(&rng, x, (size_t)B * D);
  fc_rng_normal_fill(&rng, c, (size_t)B * C);
  fc_net_ws *ws = fc_net_ws_new(nc, B), *ws1 = fc_net_ws_new(nc, 1);
  fc_net_forward(&net, ws, y, t, x, C ? c : NULL, B);
  for (int row = 0; row < B; row += 4) {
    fc_net_forward(&net, ws1, y1, t + row, x + (size_t)row * D, C ? c + (size_t)row * C : NULL, 1);
    double s = 0;
    for (int i = 0; i < D; i++) s = fmax(s, fabs(y1[i]));
    for (int i = 0; i < D; i++)
      ASSERT_MSG(fabs(y1[i] - y[(size_t)row * D + i]) <= 1e-5 * (1 + s), "row %d [%d]: %.8g vs %.8g", row, i, y1[i],
                 y[(size_t)row * D + i]);
  }
  float *y2 = malloc((size_t)B * D * sizeof(float));
  x[3] = NAN;
  fc_net_forward(&net, ws, y2, t, x, C ? c : NULL, B);
  int bad0 = 0;
  for (int i = 0; i < D; i++) bad0 += !isfinite(y2[i]);
  ASSERT_EQ_INT(bad0, D);
  for (int i = D; i < B * D; i++) ASSERT_MSG(y2[i] == y[i], "[%d]: %.8g vs %.8g", i, y2[i], y[i]);
  fc_net_ws_free(ws);
  fc_net_ws_free(ws1);
  free(p); free(x); free(c); free(y); free(y1); free(y2);
  return 0;
}

#endif
