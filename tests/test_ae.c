/* test_ae: fc_ae, the autoencoder behind latent flows: the double
 * reference's gradients against central finite differences, the float BLAS
 * path against the reference, fitting a low-dimensional manifold (a latent
 * of its dimension reconstructs it, a narrower one cannot), the latent scale,
 * the checkpoint section and its refusals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowcore.h"
#include "test.h"

static fc_ae_config s_cfg(int dx, int dz, int width, int depth, fc_act act) {
  fc_ae_config c;
  fc_ae_config_default(&c, dx, dz);
  c.width = width, c.depth = depth, c.act = act;
  return c;
}

TEST(ae_reference_gradients) {
  const fc_ae_config cfgs[3] = {s_cfg(6, 2, 5, 1, FC_ACT_SILU), s_cfg(5, 3, 4, 2, FC_ACT_GELU),
                                s_cfg(4, 4, 3, 3, FC_ACT_MISH)};
  for (int k = 0; k < 3; k++) {
    const fc_ae_config *cfg = &cfgs[k];
    char err[256];
    ASSERT_MSG(fc_ae_config_check(cfg, err, sizeof(err)) == 0, "%s", err);
    const size_t P = fc_ae_nparams(cfg);
    const int B = 3;
    fc_rng rng;
    fc_rng_seed(&rng, 11 + k);
    double *p = malloc(P * sizeof(double)), *g = malloc(P * sizeof(double));
    double x[3 * 6];
    for (size_t i = 0; i < P; i++) p[i] = 2.0 * fc_rng_uniform(&rng) - 1.0;
    for (int i = 0; i < B * cfg->dx; i++) x[i] = fc_rng_normal(&rng);
    fc_ae_loss_grad_ref(cfg, p, g, x, B);
    const double h = 1e-6;
    for (size_t i = 0; i < P; i++) {
      const double keep = p[i];
      p[i] = keep + h;
      const double lp = fc_ae_loss_grad_ref(cfg, p, NULL, x, B);
      p[i] = keep - h;
      const double lm = fc_ae_loss_grad_ref(cfg, p, NULL, x, B);
      p[i] = keep;
      const double num = (lp - lm) / (2 * h);
      ASSERT_MSG(fabs(g[i] - num) <= 1e-6 * (fabs(g[i]) + fabs(num)) + 1e-9, "config %d param %zu: %.12g vs %.12g", k,
                 i, g[i], num);
    }
    free(p);
    free(g);
  }
  return 0;
}

TEST(ae_blas_matches_reference) {
  fc_ae_config cfg = s_cfg(112, 16, 96, 2, FC_ACT_SILU);
  const size_t P = fc_ae_nparams(&cfg);
  const int B = 37;
  fc_ae *ae = fc_ae_new(&cfg);
  fc_rng rng;
  fc_rng_seed(&rng, 5);
  fc_ae_init(ae, &rng);
  float *x = malloc((size_t)B * cfg.dx * sizeof(float)), *g = malloc(P * sizeof(float));
  double *xd = malloc((size_t)B * cfg.dx * sizeof(double)), *pd = malloc(P * sizeof(double)), *gd = malloc(P * sizeof(double));
  fc_rng_normal_fill(&rng, x, (size_t)B * cfg.dx);
  for (int i = 0; i < B * cfg.dx; i++) xd[i] = x[i];
  for (size_t i = 0; i < P; i++) pd[i] = ae->params[i];
  fc_ae_ws *ws = fc_ae_ws_new(&cfg, B);
  const double lf = fc_ae_loss_grad(ae, ws, g, x, B), ld = fc_ae_loss_grad_ref(&cfg, pd, gd, xd, B);
  ASSERT_NEAR(lf, ld, 1e-5 * ld);
  double gs = 0;
  for (size_t i = 0; i < P; i++) gs = fmax(gs, fabs(gd[i]));
  for (size_t i = 0; i < P; i++) ASSERT_MSG(fabs(g[i] - gd[i]) <= 1e-4 * gs, "param %zu: %.8g vs %.8g", i, g[i], gd[i]);
  /* encode then decode is the loss's forward pass */
  float *z = malloc((size_t)B * cfg.dz * sizeof(float)), *xr = malloc((size_t)B * cfg.dx * sizeof(float));
  fc_ae_encode(ae, ws, z, x, B);
  fc_ae_decode(ae, ws, xr, z, B);
  double mse = 0;
  for (int i = 0; i < B * cfg.dx; i++) mse += ((double)xr[i] - x[i]) * ((double)xr[i] - x[i]);
  ASSERT_NEAR(mse / (B * cfg.dx), lf, 1e-6 * lf);
  /* a row of a batch is that row alone */
  float z1[16];
  fc_ae_encode(ae, ws, z1, x + 5 * cfg.dx, 1);
  for (int j = 0; j < cfg.dz; j++) ASSERT_NEAR(z1[j], z[5 * cfg.dz + j], 1e-5 * (1 + fabs(z1[j])));
  fc_ae_ws_free(ws);
  fc_ae_free(ae);
  free(x); free(g); free(xd); free(pd); free(gd); free(z); free(xr);
  return 0;
}

/* n points of a 2-D curved sheet embedded in 12 dimensions */
static float *s_manifold(size_t n, uint64_t seed) {
  fc_rng r;
  fc_rng_seed(&r, seed);
  float *x = malloc(n * 12 * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    const double u = 2 * fc_rng_uniform(&r) - 1, v = 2 * fc_rng_uniform(&r) - 1;
    for (int j = 0; j < 12; j++)
      x[i * 12 + j] = (float)(sin(0.25 * (j + 1) * u + 0.3 * j) * 0.8 + cos(0.2 * (j + 2) * v) * 0.6 * (j % 3 == 0 ? 1 : -0.5));
  }
  return x;
}

TEST(ae_fit_finds_the_manifold_and_its_scale) {
  const size_t n = 4000, nv = 500;
  float *x = s_manifold(n, 1), *vx = s_manifold(nv, 2);
  double var = 0, mean[12] = {0};
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < 12; j++) mean[j] += x[i * 12 + j] / (double)n;
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < 12; j++) var += (x[i * 12 + j] - mean[j]) * (x[i * 12 + j] - mean[j]) / (double)(n * 12);
  fc_ae_fit_config fc;
  fc_ae_fit_config_default(&fc);
  fc.steps = 3000;
  double vmse[2];
  for (int k = 0; k < 2; k++) {
    fc_ae_config cfg = s_cfg(12, k ? 1 : 2, 64, 2, FC_ACT_SILU);
    fc_ae *ae = fc_ae_new(&cfg);
    fc_ae_fit_result res;
    char err[256];
    ASSERT_MSG(fc_ae_fit(ae, x, n, vx, nv, &fc, &res, err, sizeof(err)) == 0, "%s", err);
    ASSERT(isfinite(res.train_mse) && isfinite(res.valid_mse) && res.seconds > 0);
    ASSERT_NEAR(res.valid_mse, fc_ae_mse(ae, vx, nv), 1e-9);
    vmse[k] = res.valid_mse;
    /* standardized latents of the training rows: mean 0, sd 1; decode_std inverts encode_std's scaling */
    fc_ae_ws *ws = fc_ae_ws_new(&cfg, 256);
    float z[256 * 2], xr[256 * 12], xr2[256 * 12];
    double s1[2] = {0}, s2[2] = {0};
    fc_ae_encode_std(ae, ws, z, x, 256);
    for (int b = 0; b < 256; b++)
      for (int j = 0; j < cfg.dz; j++) s1[j] += z[b * cfg.dz + j] / 256.0, s2[j] += z[b * cfg.dz + j] * z[b * cfg.dz + j] / 256.0;
    for (int j = 0; j < cfg.dz; j++) {
      ASSERT_MSG(fabs(s1[j]) < 0.2 && fabs(sqrt(s2[j]) - 1) < 0.2, "latent %d: mean %g, rms %g", j, s1[j], sqrt(s2[j]));
      ASSERT(ae->sd[j] > 0);
    }
    fc_ae_decode_std(ae, ws, xr, z, 256);
    float zraw[256 * 2];
    fc_ae_encode(ae, ws, zraw, x, 256);
    fc_ae_decode(ae, ws, xr2, zraw, 256);
    for (int i = 0; i < 256 * 12; i++) ASSERT_NEAR(xr[i], xr2[i], 1e-4);
    fc_ae_ws_free(ws);
    fc_ae_free(ae);
  }
  /* two latent dimensions hold the sheet; one cannot */
  ASSERT_MSG(vmse[0] < 0.005 * var, "d = 2: validation MSE %g of a variance %g", vmse[0], var);
  ASSERT_MSG(vmse[1] > 20 * vmse[0], "d = 1: %g against d = 2: %g", vmse[1], vmse[0]);
  free(x);
  free(vx);
  return 0;
}

TEST(ae_section_round_trips_and_refuses_bad_bytes) {
  fc_ae_config cfg = s_cfg(10, 3, 8, 2, FC_ACT_GELU);
  fc_ae *ae = fc_ae_new(&cfg);
  fc_rng rng;
  fc_rng_seed(&rng, 9);
  fc_ae_init(ae, &rng);
  for (int j = 0; j < 3; j++) ae->mu[j] = 0.1f * j, ae->sd[j] = 0.5f + j;
  fc_ckpt_writer *w = fc_ckpt_writer_new("test");
  fc_ae_save(ae, w, "ae");
  char path[] = "/tmp/lfp_test_ae_XXXXXX", err[512];
  int fd = mkstemp(path);
  ASSERT(fd >= 0);
  close(fd);
  ASSERT_MSG(fc_ckpt_write(w, path, err, sizeof(err)) == 0, "%s", err);
  fc_ckpt_writer_free(w);
  fc_ckpt *ck = fc_ckpt_read(path, "test", err, sizeof(err));
  ASSERT_MSG(ck, "%s", err);
  int missing = 0;
  fc_ae *back = fc_ae_load(ck, "ae", &missing, err, sizeof(err));
  ASSERT_MSG(back, "%s", err);
  ASSERT(!missing && back->cfg.dx == 10 && back->cfg.dz == 3 && back->cfg.width == 8 && back->cfg.act == FC_ACT_GELU);
  ASSERT(!memcmp(back->params, ae->params, fc_ae_nparams(&cfg) * sizeof(float)));
  ASSERT(!memcmp(back->sd, ae->sd, 3 * sizeof(float)) && !memcmp(back->mu, ae->mu, 3 * sizeof(float)));
  ASSERT(!fc_ae_load(ck, "nothing", &missing, err, sizeof(err)) && missing);
  fc_ae_free(back);
  fc_ckpt_free(ck);
  /* a section whose sizes do not match its bytes, or with a zero scale, is refused in one sentence */
  for (int bad = 0; bad < 3; bad++) {
    fc_ckpt_buf b = {0};
    fc_ckpt_put_u32(&b, 1);
    const int32_t v[5] = {10, bad == 2 ? 11 : 3, bad == 0 ? 4096 : 8, 2, FC_ACT_GELU};
    for (int i = 0; i < 5; i++) fc_ckpt_put_i32(&b, v[i]);
    float mu[3] = {0}, sd[3] = {1, bad == 1 ? 0.0f : 1.0f, 1};
    fc_ckpt_put_f32s(&b, mu, 3);
    fc_ckpt_put_f32s(&b, sd, 3);
    fc_ckpt_put_f32s(&b, ae->params, fc_ae_nparams(&cfg));
    w = fc_ckpt_writer_new("test");
    fc_ckpt_add_buf(w, "ae", &b);
    ASSERT(fc_ckpt_write(w, path, err, sizeof(err)) == 0);
    fc_ckpt_writer_free(w);
    ck = fc_ckpt_read(path, "test", err, sizeof(err));
    ASSERT(ck);
    ASSERT(!fc_ae_load(ck, "ae", &missing, err, sizeof(err)) && !missing);
    ASSERT_CONTAINS(err, "corrupted");
    ASSERT_CONTAINS(err, "'ae'");
    ASSERT(!strchr(err, '\n'));
    fc_ckpt_free(ck);
  }
  unlink(path);
  fc_ae_free(ae);
  /* configuration refusals */
  fc_ae_config c = s_cfg(10, 11, 8, 2, FC_ACT_SILU);
  ASSERT(fc_ae_config_check(&c, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "latent dimension must be in 1..10");
  c = s_cfg(10, 2, 8, 0, FC_ACT_SILU);
  ASSERT(fc_ae_config_check(&c, err, sizeof(err)) != 0);
  return 0;
}

TEST(toy_latent_run_reports_the_bounds_parts) {
  fc_toy_config tc;
  fc_toy_config_default(&tc);
  tc.steps = 300, tc.train_size = 2000, tc.eval_size = 200, tc.eval_reps = 2, tc.width = 64;
  tc.ambient = 8, tc.latent = 3, tc.ae_steps = 300, tc.ae_width = 32;
  fc_toy_result r;
  char err[256];
  ASSERT_MSG(fc_toy_run(&tc, 1, &r, err, sizeof(err)) == 0, "%s", err);
  ASSERT(isfinite(r.w2) && isfinite(r.w2_ae) && isfinite(r.w2_latent) && isfinite(r.ae_mse) && r.ae_params > 0);
  ASSERT(r.w2_ae > 0.5 * r.w2_floor); /* other held-out points through the autoencoder: at least near the floor */
  /* without a latent: no parts */
  tc.latent = 0;
  ASSERT(fc_toy_run(&tc, 1, &r, err, sizeof(err)) == 0 && isnan(r.w2_ae) && isnan(r.w2_latent));
  /* refusals */
  tc.ambient = 4;
  ASSERT(fc_toy_run(&tc, 1, &r, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "ambient dimension is 2 (the plane) or in 6..4096");
  tc.ambient = 8, tc.latent = 9;
  ASSERT(fc_toy_run(&tc, 1, &r, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "latent dimension must be in 0..8");
  return 0;
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(ae_reference_gradients),
      TEST_ENTRY(ae_blas_matches_reference),
      TEST_ENTRY(ae_fit_finds_the_manifold_and_its_scale),
      TEST_ENTRY(ae_section_round_trips_and_refuses_bad_bytes),
      TEST_ENTRY(toy_latent_run_reports_the_bounds_parts),
  };
  fc_par_init(0);
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
