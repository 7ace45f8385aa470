/* Tests of flowcore: RNG, gradients (finite differences in double), BLAS vs
 * the naive reference, AdamW by hand, sampler convergence orders, LFM with
 * N = 1 vs global FM, checkpoints, W2, LFM end to end on 8 Gaussians, and
 * the network interface (fc_net) against its kinds. */
#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

#include "fc_par.h"
#include "flowcore.h"
#include "test.h"
#include "fc_toy.h"

/* ---------- RNG ---------- */

TEST(rng_determinism) {
  fc_rng a, b, c;
  fc_rng_seed(&a, 123);
  fc_rng_seed(&b, 123);
  fc_rng_seed(&c, 124);
  int differ = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t x = fc_rng_u64(&a), y = fc_rng_u64(&b), z = fc_rng_u64(&c);
    ASSERT(x == y);
    differ += x != z;
  }
  ASSERT(differ > 990);
  /* normals: same stream, and moments of 200k draws within 5 standard errors */
  fc_rng_seed(&a, 7);
  fc_rng_seed(&b, 7);
  double s = 0, ss = 0;
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    double x = fc_rng_normal(&a);
    ASSERT(x == fc_rng_normal(&b));
    s += x;
    ss += x * x;
  }
  ASSERT_NEAR(s / n, 0.0, 5.0 / sqrt(n));
  ASSERT_NEAR(ss / n, 1.0, 5.0 * sqrt(2.0 / n));
  /* a saved state continues identically */
  fc_rng saved = a;
  double next = fc_rng_normal(&a);
  ASSERT(fc_rng_normal(&saved) == next);
  /* permutations are permutations; fc_rng_below stays in range */
  int perm[100], seen[100] = {0};
  fc_rng_permutation(&a, perm, 100);
  for (int i = 0; i < 100; i++) seen[perm[i]]++;
  for (int i = 0; i < 100; i++) ASSERT_EQ_INT(seen[i], 1);
  for (int i = 0; i < 10000; i++) ASSERT(fc_rng_below(&a, 3) < 3);
  return 0;
}

/* ---------- gradients against central finite differences (double) ---------- */

static void s_fill_uniform(fc_rng *r, double *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * fc_rng_uniform(r);
}

/* scale-aware comparison of an analytic and a numerical derivative */
static int s_grad_close(double a, double n) { return fabs(a - n) <= 1e-6 * (fabs(a) + fabs(n)) + 1e-9; }

TEST(activation_gradients) {
  for (int act = 0; act < 3; act++)
    for (double x = -8.0; x <= 8.0; x += 0.37) {
      double d;
      fc_act_ref((fc_act)act, x, &d);
      const double h = 1e-6;
      double num = (fc_act_ref((fc_act)act, x + h, NULL) - fc_act_ref((fc_act)act, x - h, NULL)) / (2 * h);
      ASSERT_MSG(s_grad_close(d, num), "%s at %g: analytic %.12g numeric %.12g", fc_act_name((fc_act)act), x, d, num);
    }
  return 0;
}

/* L = sum(r * y) for a random r: checks every parameter, x and c */
static int s_check_mlp_grads(fc_cond_mode cond, fc_act act, int ndc) {
  fc_mlp_config cfg = {.dx = 3, .dc = ndc, .width = 5, .depth = 2, .temb = 4, .act = act, .cond = cond};
  const int B = 3, D = cfg.dx, C = cfg.dc;
  size_t P = fc_mlp_nparams(&cfg);
  fc_rng rng;
  fc_rng_seed(&rng, 11 + act + 10 * cond);
  double *p = malloc(P * sizeof(double)), *g = calloc(P, sizeof(double));
  double t[3], x[9], c[6] = {0}, r[9], y[9], dx[9], dc[6];
  s_fill_uniform(&rng, p, P, -0.8, 0.8);
  s_fill_uniform(&rng, t, 3, 0.0, 1.0);
  s_fill_uniform(&rng, x, 9, -2.0, 2.0);
  s_fill_uniform(&rng, c, (size_t)B * C, -2.0, 2.0);
  s_fill_uniform(&rng, r, 9, -1.0, 1.0);
  fc_mlp_ws_ref *ws = fc_mlp_ws_new_ref(&cfg, B);
  fc_mlp_forward_ref(&cfg, p, ws, y, t, x, C ? c : NULL, B);
  fc_mlp_backward_ref(&cfg, p, ws, g, 0, dx, C ? dc : NULL, r, B);
#define S_LOSS(out)                                                    \
  do {                                                                 \
    fc_mlp_forward_ref(&cfg, p, ws, y, t, x, C ? c : NULL, B);         \
    out = 0;                                                           \
    for (int i_ = 0; i_ < B * D; i_++) out += r[i_] * y[i_];           \
  } while (0)
  const double h = 1e-5;
  /* every tensor of the layout, every element */
  fc_tensor_info ti[FC_MLP_MAX_TENSORS];
  int nt = fc_mlp_tensors(&cfg, ti, FC_MLP_MAX_TENSORS);
  for (int k = 0; k < nt; k++) {
    size_t cnt = (size_t)ti[k].rows * ti[k].cols;
    double gmax = 0;
    for (size_t j = 0; j < cnt; j++) {
      size_t i = ti[k].offset + j;
      double keep = p[i], lp, lm;
      p[i] = keep + h; S_LOSS(lp);
      p[i] = keep - h; S_LOSS(lm);
      p[i] = keep;
      double num = (lp - lm) / (2 * h);
      ASSERT_MSG(s_grad_close(g[i], num), "%s/%s %s[%zu]: analytic %.12g numeric %.12g", fc_cond_name(cond),
                 fc_act_name(act), ti[k].name, j, g[i], num);
      if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
    }
    ASSERT_MSG(gmax > 1e-6, "gradient of %s is trivially zero", ti[k].name);
  }
  /* inputs x and c */
  for (int i = 0; i < B * D; i++) {
    double keep = x[i], lp, lm;
    x[i] = keep + h; S_LOSS(lp);
    x[i] = keep - h; S_LOSS(lm);
    x[i] = keep;
    ASSERT_MSG(s_grad_close(dx[i], (lp - lm) / (2 * h)), "dx[%d]", i);
  }
  for (int i = 0; i < B * C; i++) {
    double keep = c[i], lp, lm;
    c[i] = keep + h; S_LOSS(lp);
    c[i] = keep - h; S_LOSS(lm);
    c[i] = keep;
    ASSERT_MSG(s_grad_close(dc[i], (lp - lm) / (2 * h)), "dc[%d]", i);
  }
#undef S_LOSS
  fc_mlp_ws_free_ref(ws);
  free(p);
  free(g);
  return 0;
}

TEST(mlp_gradients_film) {
  for (int act = 0; act < 3; act++)
    if (s_check_mlp_grads(FC_COND_FILM, (fc_act)act, 2)) return 1;
  return s_check_mlp_grads(FC_COND_FILM, FC_ACT_SILU, 0);
}

TEST(mlp_gradients_concat) {
  for (int act = 0; act < 3; act++)
    if (s_check_mlp_grads(FC_COND_CONCAT, (fc_act)act, 2)) return 1;
  return s_check_mlp_grads(FC_COND_CONCAT, FC_ACT_MISH, 0);
}

TEST(fm_loss_gradients) {
  for (int interp = 0; interp < 2; interp++)
    for (int cond = 0; cond < 2; cond++) {
      fc_net_config cfg = {.kind = FC_NET_MLP,
                           .mlp = {.dx = 2, .dc = 3, .width = 4, .depth = 1, .temb = 4, .act = FC_ACT_GELU,
                                   .cond = (fc_cond_mode)cond}};
      const int B = 4;
      size_t P = fc_net_nparams(&cfg);
      fc_rng rng;
      fc_rng_seed(&rng, 5 + interp);
      double *p = malloc(P * sizeof(double)), *g = calloc(P, sizeof(double));
      double t[4], x0[8], x1[8], c[12];
      s_fill_uniform(&rng, p, P, -0.8, 0.8);
      s_fill_uniform(&rng, t, 4, 0.0, 1.0);
      s_fill_uniform(&rng, x0, 8, -2.0, 2.0);
      s_fill_uniform(&rng, x1, 8, -2.0, 2.0);
      s_fill_uniform(&rng, c, 12, -1.0, 1.0);
      fc_net_ws_ref *ws = fc_net_ws_new_ref(&cfg, B);
      fc_fm_loss_ref(&cfg, p, ws, g, (fc_interp)interp, t, x0, x1, c, B);
      const double h = 1e-5;
      for (size_t i = 0; i < P; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = fc_fm_loss_ref(&cfg, p, ws, NULL, (fc_interp)interp, t, x0, x1, c, B);
        p[i] = keep - h;
        double lm = fc_fm_loss_ref(&cfg, p, ws, NULL, (fc_interp)interp, t, x0, x1, c, B);
        p[i] = keep;
        double num = (lp - lm) / (2 * h);
        ASSERT_MSG(s_grad_close(g[i], num), "%s/%s param %zu: analytic %.12g numeric %.12g",
                   fc_interp_name((fc_interp)interp), fc_cond_name((fc_cond_mode)cond), i, g[i], num);
      }
      fc_net_ws_free_ref(ws);
      free(p);
      free(g);
    }
  return 0;
}

TEST(interpolant_derivatives) {
  for (int k = 0; k < 2; k++)
    for (double t = 0.05; t < 1.0; t += 0.1) {
      double a, b, da, db, ap, bp, am, bm, dummy;
      const double h = 1e-6;
      fc_interp_coef((fc_interp)k, t, &a, &b, &da, &db);
      fc_interp_coef((fc_interp)k, t + h, &ap, &bp, &dummy, &dummy);
      fc_interp_coef((fc_interp)k, t - h, &am, &bm, &dummy, &dummy);
      ASSERT_NEAR(da, (ap - am) / (2 * h), 1e-8);
      ASSERT_NEAR(db, (bp - bm) / (2 * h), 1e-8);
    }
  /* endpoints: t = 0 is the data, t = 1 the noise */
  for (int k = 0; k < 2; k++) {
    double a, b, da, db;
    fc_interp_coef((fc_interp)k, 0.0, &a, &b, &da, &db);
    ASSERT_NEAR(a, 1.0, 1e-15);
    ASSERT_NEAR(b, 0.0, 1e-15);
    fc_interp_coef((fc_interp)k, 1.0, &a, &b, &da, &db);
    ASSERT_NEAR(a, 0.0, 1e-15);
    ASSERT_NEAR(b, 1.0, 1e-15);
  }
  return 0;
}

/* ---------- the BLAS float path agrees with the naive double reference ---------- */

static double s_max_abs(const double *v, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fabs(v[i]) > m ? fabs(v[i]) : m;
  return m;
}

TEST(mlp_blas_matches_reference) {
  for (int cond = 0; cond < 2; cond++)
    for (int act = 0; act < 3; act++)
      for (int bi = 0; bi < 2; bi++) {
        const int B = bi ? 7 : 1; /* B = 1 takes the sgemv path */
        fc_mlp_config cfg = {.dx = 5, .dc = 3, .width = 33, .depth = 2, .temb = 8, .act = (fc_act)act, .cond = (fc_cond_mode)cond};
        const int D = cfg.dx, C = cfg.dc;
        size_t P = fc_mlp_nparams(&cfg);
        fc_rng rng;
        fc_rng_seed(&rng, 100 + act);
        float *pf = malloc(P * sizeof(float)), *gf = calloc(P, sizeof(float));
        double *pd = malloc(P * sizeof(double)), *gd = calloc(P, sizeof(double));
        fc_mlp net;
        fc_mlp_bind(&net, &cfg, pf);
        fc_mlp_init(&net, &rng);
        for (size_t i = 0; i < P; i++) pd[i] = pf[i];
        float tf[7], xf[35], cf[21], yf[35], dyf[35], dxf[35], dcf[21];
        double td[7], xd[35], cd[21], yd[35], dyd[35], dxd[35], dcd[21];
        for (int i = 0; i < B; i++) td[i] = tf[i] = (float)fc_rng_uniform(&rng);
        for (int i = 0; i < B * D; i++) {
          xd[i] = xf[i] = (float)fc_rng_normal(&rng);
          dyd[i] = dyf[i] = (float)fc_rng_normal(&rng);
        }
        for (int i = 0; i < B * C; i++) cd[i] = cf[i] = (float)fc_rng_normal(&rng);
        fc_mlp_ws *wsf = fc_mlp_ws_new(&cfg, B);
        fc_mlp_ws_ref *wsd = fc_mlp_ws_new_ref(&cfg, B);
        fc_mlp_forward(&net, wsf, yf, tf, xf, cf, B);
        fc_mlp_forward_ref(&cfg, pd, wsd, yd, td, xd, cd, B);
        double ys = s_max_abs(yd, (size_t)B * D);
        for (int i = 0; i < B * D; i++) ASSERT_NEAR(yf[i], yd[i], 1e-5 * (1 + ys));
        for (size_t i = 0; i < P; i++) gf[i] = NAN; /* overwritten, never read */
        fc_mlp_backward(&net, wsf, gf, 0, dxf, dcf, dyf, B);
        fc_mlp_backward_ref(&cfg, pd, wsd, gd, 0, dxd, dcd, dyd, B);
        fc_tensor_info ti[FC_MLP_MAX_TENSORS];
        int nt = fc_mlp_tensors(&cfg, ti, FC_MLP_MAX_TENSORS);
        for (int k = 0; k < nt; k++) {
          size_t cnt = (size_t)ti[k].rows * ti[k].cols;
          double gs = s_max_abs(gd + ti[k].offset, cnt);
          for (size_t j = 0; j < cnt; j++)
            ASSERT_MSG(fabs(gf[ti[k].offset + j] - gd[ti[k].offset + j]) <= 1e-4 * (1 + gs),
                       "%s[%zu] B=%d: %g vs %g", ti[k].name, j, B, gf[ti[k].offset + j], gd[ti[k].offset + j]);
        }
        /* accumulate = 1 adds a second gradient on top */
        fc_mlp_backward(&net, wsf, gf, 1, NULL, NULL, dyf, B);
        for (size_t i = 0; i < P; i++) ASSERT_NEAR(gf[i], 2.0 * gd[i], 2e-4 * (1 + fabs(gd[i])));
        double xs = s_max_abs(dxd, (size_t)B * D), cs = s_max_abs(dcd, (size_t)B * C);
        for (int i = 0; i < B * D; i++) ASSERT_NEAR(dxf[i], dxd[i], 1e-4 * (1 + xs));
        for (int i = 0; i < B * C; i++) ASSERT_NEAR(dcf[i], dcd[i], 1e-4 * (1 + cs));
        fc_mlp_ws_free(wsf);
        fc_mlp_ws_free_ref(wsd);
        free(pf); free(gf); free(pd); free(gd);
      }
  return 0;
}

/* ---------- optimizer ---------- */

TEST(non_finite_inputs_propagate_without_undefined_behaviour) {
  /* a diverged sampler feeds inf and NaN into the network: they must come out
   * non-finite (never a silent finite answer), and the sanitizer build checks
   * that no undefined behaviour happens on the way */
  for (int act = 0; act < 3; act++) {
    fc_mlp_config cfg = {.dx = 3, .dc = 0, .width = 8, .depth = 1, .temb = 4, .act = (fc_act)act, .cond = FC_COND_FILM};
    float *p = calloc(fc_mlp_nparams(&cfg), sizeof(float));
    fc_mlp net;
    fc_mlp_bind(&net, &cfg, p);
    fc_rng r;
    fc_rng_seed(&r, 1);
    fc_mlp_init(&net, &r);
    fc_mlp_ws *ws = fc_mlp_ws_new(&cfg, 2);
    float t[2] = {0.5f, 0.5f}, x[6] = {NAN, 0, 0, INFINITY, -INFINITY, 1}, y[6];
    fc_mlp_forward(&net, ws, y, t, x, NULL, 2);
    int nonfinite = 0;
    for (int i = 0; i < 6; i++) nonfinite += !isfinite(y[i]);
    ASSERT_EQ_INT(nonfinite, 6);
    fc_mlp_ws_free(ws);
    free(p);
  }
  return 0;
}

TEST(adamw_step_by_hand) {
  fc_adamw_config oc;
  fc_adamw_config_default(&oc);
  oc.beta1 = 0.9f; oc.beta2 = 0.999f; oc.eps = 1e-8f; oc.weight_decay = 0.1f;
  float p[3] = {1.0f, -2.0f, 0.5f};
  const float g1[3] = {0.1f, -0.3f, 0.02f}, g2[3] = {-0.2f, 0.1f, 0.05f};
  const float lr1 = 0.01f, lr2 = 0.005f;
  fc_adamw *opt = fc_adamw_new(3, &oc);
  fc_adamw_step(opt, p, g1, 1.0f, lr1, NULL, 0.0f);
  fc_adamw_step(opt, p, g2, 0.5f, lr2, NULL, 0.0f); /* a clipping factor of 0.5 */
  /* Loshchilov & Hutter, Algorithm 2, in double, textbook form */
  for (int i = 0; i < 3; i++) {
    double q = i == 0 ? 1.0 : i == 1 ? -2.0 : 0.5, m = 0, v = 0;
    const double gs[2] = {g1[i], 0.5 * g2[i]}, lrs[2] = {lr1, lr2};
    for (int t = 1; t <= 2; t++) {
      double g = gs[t - 1], lr = lrs[t - 1];
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
      double mh = m / (1 - pow(0.9, t)), vh = v / (1 - pow(0.999, t));
      q -= lr * 0.1 * q;
      q -= lr * mh / (sqrt(vh) + 1e-8);
    }
    ASSERT_NEAR(p[i], q, 1e-6);
  }
  fc_adamw_free(opt);

  /* the fused EMA equals a separate EMA update of the new weights */
  fc_adamw *o2 = fc_adamw_new(3, &oc);
  float q1[3] = {1.0f, 2.0f, 3.0f}, q2[3] = {1.0f, 2.0f, 3.0f}, e1[3] = {0.5f, 0.5f, 0.5f}, e2[3] = {0.5f, 0.5f, 0.5f};
  fc_adamw *o3 = fc_adamw_new(3, &oc);
  fc_adamw_step(o2, q1, g1, 1.0f, 0.1f, e1, 0.9f);
  fc_adamw_step(o3, q2, g1, 1.0f, 0.1f, NULL, 0.0f);
  fc_ema_update(e2, q2, 3, 0.9f);
  for (int i = 0; i < 3; i++) ASSERT_NEAR(e1[i], e2[i], 1e-7);
  fc_adamw_free(o2);
  fc_adamw_free(o3);

  /* clipping to a global norm */
  float g[2] = {3.0f, 4.0f};
  ASSERT_NEAR(fc_grad_norm(g, 2), 5.0, 1e-6);
  ASSERT_NEAR(fc_clip_scale(5.0f, 1.0f), 0.2, 1e-6);
  ASSERT_NEAR(fc_clip_scale(5.0f, 10.0f), 1.0, 0); /* under the bound: unchanged */
  ASSERT_NEAR(fc_clip_scale(5.0f, 0.0f), 1.0, 0);  /* disabled */

  /* warm-up then cosine */
  oc.lr = 1.0f; oc.lr_min = 0.1f; oc.warmup = 10;
  ASSERT_NEAR(fc_lr_schedule(&oc, 0, 110), 0.1, 1e-6);
  ASSERT_NEAR(fc_lr_schedule(&oc, 9, 110), 1.0, 1e-6);
  ASSERT_NEAR(fc_lr_schedule(&oc, 10, 110), 1.0, 1e-6);
  ASSERT_NEAR(fc_lr_schedule(&oc, 109, 110), 0.1, 1e-6);
  ASSERT_NEAR(fc_lr_schedule(&oc, 10 + 99 / 2.0, 110), 0.55, 0.02);

  /* EMA */
  float e[2] = {0.0f, 1.0f};
  const float w[2] = {1.0f, 1.0f};
  fc_ema_update(e, w, 2, 0.9f);
  ASSERT_NEAR(e[0], 0.1, 1e-7);
  ASSERT_NEAR(e[1], 1.0, 1e-7);
  oc.ema = 0.999f; oc.ema_warmup = 1;
  ASSERT_NEAR(fc_ema_decay(&oc, 0), 0.1, 1e-7);
  ASSERT_NEAR(fc_ema_decay(&oc, 1000000), 0.999, 1e-7);
  return 0;
}

/* ---------- samplers: convergence order on an analytic field ---------- */

/* dx/dt = (1 + 2t) x, so x(t) = x(t0) exp(t + t^2 - t0 - t0^2): time-dependent,
 * and its leading error terms do not cancel in either direction */
static void s_field(void *ctx, double t, const float *x, float *v, int B) {
  (void)ctx;
  for (int i = 0; i < 2 * B; i++) v[i] = (float)(1.0 + 2.0 * t) * x[i];
}

static double s_sampler_error(fc_sampler s, int steps, double t0, double t1) {
  fc_ode_ws *ws = fc_ode_ws_new(2, 2);
  float x[4] = {1.0f, -0.5f, 2.0f, 0.25f};
  float x0[4];
  memcpy(x0, x, sizeof(x));
  fc_ode_integrate(s_field, NULL, ws, s, x, 2, t0, t1, steps);
  double f = exp(t1 + t1 * t1 - t0 - t0 * t0), err = 0;
  for (int i = 0; i < 4; i++) err = fmax(err, fabs(x[i] - x0[i] * f));
  fc_ode_ws_free(ws);
  return err;
}

TEST(sampler_convergence_order) {
  const int order[3] = {1, 2, 4};
  /* steps chosen so the error stays far above float rounding yet in the asymptotic regime */
  const int base[3] = {64, 32, 6};
  for (int s = 0; s < 3; s++)
    for (int dir = 0; dir < 2; dir++) {
      double t0 = dir ? 1.0 : 0.0, t1 = dir ? 0.0 : 1.0;
      double e1 = s_sampler_error((fc_sampler)s, base[s], t0, t1);
      double e2 = s_sampler_error((fc_sampler)s, 2 * base[s], t0, t1);
      double p = log2(e1 / e2);
      ASSERT_MSG(fabs(p - order[s]) < 0.3, "%s: observed order %.3f (errors %.3g, %.3g), expected %d",
                 fc_sampler_name((fc_sampler)s), p, e1, e2, order[s]);
    }
  return 0;
}

/* ---------- LFM with N = 1 is global flow matching ---------- */

typedef struct {
  const fc_net *net;
  fc_net_ws *ws;
} s_one_net;

static void s_one_net_field(void *ctx, double t, const float *x, float *v, int B) {
  s_one_net *f = ctx;
  float tb[64];
  for (int b = 0; b < B; b++) tb[b] = (float)t;
  fc_net_forward(f->net, f->ws, v, tb, x, NULL, B);
}

TEST(lfm_single_block_is_fm) {
  /* the chain with N = 1 ... */
  const int D = 2, n = 100, B = 16, steps = 40;
  float data[200];
  fc_rng dr;
  fc_rng_seed(&dr, 3);
  fc_toy_sample(FC_TOY_MOONS, &dr, data, NULL, n);
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, D, 0);
  lc.nblocks = 1;
  lc.net.mlp.width = 16;
  lc.net.mlp.depth = 1;
  char err[256];
  fc_lfm *m = fc_lfm_new(&lc, err, sizeof(err));
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.steps = steps;
  tc.batch = B;
  tc.opt.warmup = 5;
  tc.seed = 99;
  fc_lfm_trainer *tr = fc_lfm_trainer_new(m, data, NULL, n, &tc, err, sizeof(err));
  ASSERT(tr);
  while (!fc_lfm_trainer_done(tr)) fc_lfm_trainer_step(tr);
  fc_lfm_trainer_free(tr);

  /* ... equals plain flow matching written out: x0 from the data, x1 = z ~ N(0, I),
   * t ~ U(0, 1), loss, clip, AdamW on the schedule, EMA */
  size_t P = fc_net_nparams(&lc.net);
  float *p = calloc(P, sizeof(float)), *g = calloc(P, sizeof(float)), *ema = calloc(P, sizeof(float));
  fc_net net;
  fc_net_bind(&net, &lc.net, p);
  fc_rng rng;
  fc_rng_seed(&rng, tc.seed);
  int perm[100], pos = 0;
  fc_rng_permutation(&rng, perm, n);
  fc_net_init(&net, &rng);
  memcpy(ema, p, P * sizeof(float));
  fc_adamw *opt = fc_adamw_new(P, &tc.opt);
  fc_fm_ws *fws = fc_fm_ws_new(&lc.net, B);
  float x0[32], x1[32], t[16];
  for (int s = 0; s < steps; s++) {
    for (int b = 0; b < B; b++) {
      if (pos >= n) {
        fc_rng_permutation(&rng, perm, n);
        pos = 0;
      }
      memcpy(x0 + 2 * b, data + 2 * perm[pos++], 2 * sizeof(float));
    }
    fc_rng_normal_fill(&rng, x1, (size_t)B * D);
    for (int b = 0; b < B; b++) t[b] = (float)fc_rng_uniform(&rng);
    fc_fm_loss(&net, fws, g, lc.interp, t, x0, x1, NULL, B);
    float gn = fc_grad_norm(g, P);
    fc_adamw_step(opt, p, g, fc_clip_scale(gn, tc.opt.clip), fc_lr_schedule(&tc.opt, s, steps), NULL, 0.0f);
    fc_ema_update(ema, p, P, fc_ema_decay(&tc.opt, s));
  }
  ASSERT(memcmp(ema, m->params, P * sizeof(float)) == 0);

  /* generation with N = 1 is one integration of that network from t = 1 to 0 */
  float za[32], zb[32];
  fc_rng_normal_fill(&rng, za, 32);
  memcpy(zb, za, sizeof(za));
  fc_lfm_ws *lws = fc_lfm_ws_new(m, 16);
  fc_lfm_generate(m, lws, za, NULL, 16, FC_SAMPLER_HEUN, 5);
  memcpy(p, ema, P * sizeof(float));
  fc_net_ws *mws = fc_net_ws_new(&lc.net, 16);
  fc_ode_ws *ows = fc_ode_ws_new(16, 2);
  s_one_net f = {&net, mws};
  fc_ode_integrate(s_one_net_field, &f, ows, FC_SAMPLER_HEUN, zb, 16, 1.0, 0.0, 5);
  ASSERT(memcmp(za, zb, sizeof(za)) == 0);
  ASSERT_EQ_INT(fc_lfm_nfe(m, FC_SAMPLER_HEUN, 5), 10);

  fc_lfm_ws_free(lws); fc_net_ws_free(mws); fc_ode_ws_free(ows); fc_fm_ws_free(fws);
  fc_adamw_free(opt); free(p); free(g); free(ema);
  fc_lfm_free(m);
  return 0;
}

/* Train an LFM chain (nblocks, width, depth 1-2) on x (n, D) and c (n, C);
 * returns a copy of the trained weights (*P floats). */
static float *s_train_chain(const float *x, const float *c, int n, int D, int C, int nblocks, int width,
                            int depth, int64_t steps, int batch, uint64_t seed, size_t *P) {
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, D, C);
  lc.nblocks = nblocks;
  lc.net.mlp.width = width;
  lc.net.mlp.depth = depth;
  lc.steps = 2;
  fc_lfm *m = fc_lfm_new(&lc, NULL, 0);
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.steps = steps;
  tc.batch = batch;
  tc.seed = seed;
  fc_lfm_trainer *tr = fc_lfm_trainer_new(m, x, c, (size_t)n, &tc, NULL, 0);
  while (!fc_lfm_trainer_done(tr)) fc_lfm_trainer_step(tr);
  fc_lfm_trainer_free(tr);
  *P = fc_lfm_nparams(m);
  float *w = malloc(*P * sizeof(float));
  memcpy(w, m->params, *P * sizeof(float));
  fc_lfm_free(m);
  return w;
}

TEST(lfm_training_is_deterministic) {
  /* the same seed gives a bit-identical multi-block run; another seed does not */
  float data[2 * 300];
  fc_rng dr;
  fc_rng_seed(&dr, 4);
  fc_toy_sample(FC_TOY_8GAUSSIANS, &dr, data, NULL, 300);
  size_t P;
  float *a = s_train_chain(data, NULL, 300, 2, 0, 3, 24, 1, 60, 32, 17, &P);
  float *b = s_train_chain(data, NULL, 300, 2, 0, 3, 24, 1, 60, 32, 17, &P);
  float *c = s_train_chain(data, NULL, 300, 2, 0, 3, 24, 1, 60, 32, 18, &P);
  for (size_t i = 0; i < P; i++) ASSERT(isfinite(a[i]));
  ASSERT(memcmp(a, b, P * sizeof(float)) == 0);
  ASSERT(memcmp(a, c, P * sizeof(float)) != 0);
  free(a); free(b); free(c);
  return 0;
}

TEST(training_across_thread_counts) {
  /* 1 and 2 threads run the same arithmetic except inside OpenBLAS, whose
   * rounding depends on the shape of each call (a split matmul is several
   * smaller calls): the runs agree to float rounding, not to the bit. Sizes
   * are chosen so every matmul and elementwise pass splits. */
  if (fc_threads() < 2) return 77;
  const int n = 512, D = 16, C = 8, pool = fc_threads();
  fc_rng r;
  fc_rng_seed(&r, 6);
  float *x = malloc((size_t)n * D * sizeof(float)), *c = malloc((size_t)n * C * sizeof(float));
  fc_rng_normal_fill(&r, x, (size_t)n * D);
  fc_rng_normal_fill(&r, c, (size_t)n * C);
  size_t P;
  fc_set_threads(1);
  float *one = s_train_chain(x, c, n, D, C, 2, 256, 2, 6, 128, 0, &P);
  fc_set_threads(pool);
  float *two = s_train_chain(x, c, n, D, C, 2, 256, 2, 6, 128, 0, &P);
  double maxd = 0, maxv = 0;
  for (size_t i = 0; i < P; i++) {
    maxd = fmax(maxd, fabs((double)one[i] - two[i]));
    maxv = fmax(maxv, fabs((double)one[i]));
  }
  ASSERT_MSG(maxd <= 1e-4 * maxv, "max difference %g (max weight %g)", maxd, maxv);
  free(one); free(two); free(x); free(c);
  return 0;
}

/* data parallelism without MPI: two shards in two threads, their reduce a
 * sum through shared memory between two barriers */
typedef struct {
  pthread_barrier_t bar;
  float *acc;       /* the sum being built */
  size_t cap;
  pthread_mutex_t mu;
  float *inputs[2]; /* each shard's buffer, for the sum */
} s_shared_sum;

typedef struct {
  s_shared_sum *ss;
  int shard;
} s_shard_user;

static void s_thread_reduce(float *buf, size_t n, void *user) {
  s_shard_user *u = user;
  s_shared_sum *ss = u->ss;
  ss->inputs[u->shard] = buf;
  pthread_barrier_wait(&ss->bar);
  if (u->shard == 0) {
    if (ss->cap < n) ss->acc = realloc(ss->acc, (ss->cap = n) * sizeof(float));
    for (size_t i = 0; i < n; i++) ss->acc[i] = ss->inputs[0][i] + ss->inputs[1][i];
  }
  pthread_barrier_wait(&ss->bar);
  memcpy(buf, ss->acc, n * sizeof(float));
  pthread_barrier_wait(&ss->bar);
}

typedef struct {
  const float *x, *c, *vx, *vc;
  int n, nv, D, C;
  int shard, nshards, objective;
  s_shard_user user;
  float *params; /* out */
  size_t P;
  double valid, last_loss;
} s_shard_run;

static void *s_shard_train(void *arg) {
  s_shard_run *r = arg;
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, r->D, r->C);
  lc.objective = (fc_objective)r->objective;
  lc.nblocks = r->objective == FC_OBJ_FLOW ? 3 : 1;
  lc.net.mlp.width = 24;
  lc.net.mlp.depth = 1;
  lc.steps = 3;
  fc_lfm *m = fc_lfm_new(&lc, NULL, 0);
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.steps = 45;
  tc.batch = 31; /* odd: shards of 15 and 16 rows */
  tc.seed = 23;
  if (r->nshards > 1) {
    tc.nshards = r->nshards;
    tc.shard = r->shard;
    tc.reduce = s_thread_reduce;
    tc.reduce_user = &r->user;
  }
  fc_lfm_trainer *tr = fc_lfm_trainer_new(m, r->x, r->c, (size_t)r->n, &tc, NULL, 0);
  fc_lfm_trainer_set_valid(tr, r->vx, r->vc, (size_t)r->nv);
  while (!fc_lfm_trainer_done(tr)) r->last_loss = fc_lfm_trainer_step(tr);
  r->valid = fc_lfm_trainer_valid_loss(tr);
  fc_lfm_trainer_free(tr);
  r->P = fc_lfm_nparams(m);
  r->params = malloc(r->P * sizeof(float));
  memcpy(r->params, m->params, r->P * sizeof(float));
  fc_lfm_free(m);
  return NULL;
}

TEST(sharded_training_equals_one_trainer) {
  /* 2 shards (rows of each minibatch split, gradients summed) against one
   * trainer on the same data and seed: the same weights to float rounding,
   * for 3 LFM blocks (the pushed-forward inputs computed half per shard),
   * with a condition, and for DFM and the regression objective; and the shards'
   * weights equal each other bit for bit */
  enum { N = 200, NV = 40, D = 2, C = 3 };
  static float x[N * D], c[N * C], vx[NV * D], vc[NV * C];
  fc_rng dr;
  fc_rng_seed(&dr, 8);
  fc_toy_sample(FC_TOY_8GAUSSIANS, &dr, x, NULL, N);
  fc_toy_sample(FC_TOY_8GAUSSIANS, &dr, vx, NULL, NV);
  fc_rng_normal_fill(&dr, c, N * C);
  fc_rng_normal_fill(&dr, vc, NV * C);
  static const int objectives[3] = {FC_OBJ_FLOW, FC_OBJ_DFM, FC_OBJ_REGRESS};
  for (int obj = 0; obj < 3; obj++) {
    const int objective = objectives[obj];
    s_shard_run one = {x, c, vx, vc, N, NV, D, C, 0, 1, objective, {0}, NULL, 0, 0, 0};
    s_shard_train(&one);
    s_shared_sum ss = {0};
    pthread_barrier_init(&ss.bar, NULL, 2);
    s_shard_run two[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
      two[k] = one;
      two[k].params = NULL;
      two[k].shard = k;
      two[k].nshards = 2;
      two[k].user = (s_shard_user){&ss, k};
      pthread_create(&th[k], NULL, s_shard_train, &two[k]);
    }
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    pthread_barrier_destroy(&ss.bar);
    free(ss.acc);
    ASSERT(two[0].P == one.P && !memcmp(two[0].params, two[1].params, one.P * sizeof(float)));
    double worst = 0, scale = 0;
    for (size_t i = 0; i < one.P; i++) {
      const double d = fabs((double)two[0].params[i] - one.params[i]);
      worst = d > worst ? d : worst;
      scale = fabs(one.params[i]) > scale ? fabs(one.params[i]) : scale;
    }
    ASSERT_MSG(worst < 1e-4 * scale, "objective %d: 2 shards differ from one trainer by %g (weights up to %g)", objective,
               worst, scale);
    ASSERT_MSG(fabs(two[0].last_loss - one.last_loss) < 1e-4 * (1 + fabs(one.last_loss)) &&
                   fabs(two[0].valid - one.valid) < 1e-4 * (1 + fabs(one.valid)),
               "losses: %g vs %g, validation %g vs %g", two[0].last_loss, one.last_loss, two[0].valid, one.valid);
    free(one.params);
    free(two[0].params);
    free(two[1].params);
  }
  return 0;
}

TEST(trainer_resume_is_bit_identical) {
  /* stop at a block boundary (step 20 of 3 x 20) and inside a block (step 27),
   * save, rebuild everything from the file, continue: the same final weights
   * as a run that was never interrupted */
  float data[2 * 300];
  fc_rng dr;
  fc_rng_seed(&dr, 4);
  fc_toy_sample(FC_TOY_RINGS, &dr, data, NULL, 300);
  size_t P;
  float *ref = s_train_chain(data, NULL, 300, 2, 0, 3, 24, 1, 60, 32, 17, &P);
  const int stops[2] = {20, 27};
  char path[] = "/tmp/lfp_resume_XXXXXX", err[512];
  int fd = mkstemp(path);
  close(fd);
  for (int k = 0; k < 2; k++) {
    fc_lfm_config lc;
    fc_lfm_config_default(&lc, 2, 0);
    lc.nblocks = 3;
    lc.net.mlp.width = 24;
    lc.net.mlp.depth = 1;
    lc.steps = 2;
    fc_train_config tc;
    fc_train_config_default(&tc);
    tc.steps = 60;
    tc.batch = 32;
    tc.seed = 17;
    fc_lfm *m = fc_lfm_new(&lc, NULL, 0);
    fc_lfm_trainer *tr = fc_lfm_trainer_new(m, data, NULL, 300, &tc, NULL, 0);
    while (fc_lfm_trainer_steps_done(tr) < stops[k]) fc_lfm_trainer_step(tr);
    fc_ckpt_writer *w = fc_ckpt_writer_new("run");
    fc_lfm_save(m, w, NULL);
    fc_lfm_trainer_save(tr, w);
    ASSERT(fc_ckpt_write(w, path, err, sizeof(err)) == 0);
    fc_ckpt_writer_free(w);
    fc_lfm_trainer_free(tr);
    fc_lfm_free(m);
    /* a new process would start here */
    fc_ckpt *ck = fc_ckpt_read(path, "run", err, sizeof(err));
    ASSERT_MSG(ck, "%s", err);
    m = fc_lfm_load(ck, NULL, err, sizeof(err));
    ASSERT_MSG(m, "%s", err);
    tr = fc_lfm_trainer_new(m, data, NULL, 300, &tc, NULL, 0);
    ASSERT_MSG(fc_lfm_trainer_restore(tr, ck, err, sizeof(err)) == 0, "%s", err);
    ASSERT_EQ_INT(fc_lfm_trainer_steps_done(tr), stops[k]);
    while (!fc_lfm_trainer_done(tr)) fc_lfm_trainer_step(tr);
    ASSERT_MSG(memcmp(m->params, ref, P * sizeof(float)) == 0, "resumed at step %d: weights differ", stops[k]);
    /* a different run configuration is refused */
    fc_lfm_trainer *other;
    tc.seed = 18;
    other = fc_lfm_trainer_new(m, data, NULL, 300, &tc, NULL, 0);
    ASSERT(fc_lfm_trainer_restore(other, ck, err, sizeof(err)) == -1);
    ASSERT_CONTAINS(err, "mismatched");
    fc_lfm_trainer_free(other);
    fc_lfm_trainer_free(tr);
    fc_lfm_free(m);
    fc_ckpt_free(ck);
  }
  unlink(path);
  free(ref);
  return 0;
}

TEST(regression_objective_and_validation_loss) {
  /* x0 = (sin c0, c0 c1): the regression baseline learns it, its validation
   * loss falls with training, and generation is one network evaluation */
  const int n = 512, nv = 128;
  float *x = malloc(sizeof(float) * (n + nv) * 2), *c = malloc(sizeof(float) * (n + nv) * 2);
  fc_rng r;
  fc_rng_seed(&r, 2);
  for (int i = 0; i < n + nv; i++) {
    c[2 * i] = (float)(2 * fc_rng_uniform(&r) - 1);
    c[2 * i + 1] = (float)(2 * fc_rng_uniform(&r) - 1);
    x[2 * i] = sinf(c[2 * i]);
    x[2 * i + 1] = c[2 * i] * c[2 * i + 1];
  }
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 2, 2);
  lc.nblocks = 1;
  lc.objective = FC_OBJ_REGRESS;
  lc.net.mlp.width = 32;
  lc.net.mlp.depth = 1;
  char err[256];
  fc_lfm *m = fc_lfm_new(&lc, err, sizeof(err));
  ASSERT_MSG(m, "%s", err);
  ASSERT_EQ_INT(fc_lfm_nfe(m, FC_SAMPLER_RK4, 8), 1);
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.steps = 1500;
  tc.batch = 64;
  tc.opt.warmup = 50;
  fc_lfm_trainer *tr = fc_lfm_trainer_new(m, x, c, (size_t)n, &tc, err, sizeof(err));
  fc_lfm_trainer_set_valid(tr, x + 2 * n, c + 2 * n, (size_t)nv);
  double v0 = 0;
  while (!fc_lfm_trainer_done(tr)) {
    if (fc_lfm_trainer_steps_done(tr) == 10) v0 = fc_lfm_trainer_valid_loss(tr);
    if (fc_lfm_trainer_steps_done(tr) == 1499) {
      double v1 = fc_lfm_trainer_valid_loss(tr);
      ASSERT_MSG(v1 < 0.1 * v0 && v1 < 2e-3, "validation loss %g -> %g", v0, v1);
    }
    fc_lfm_trainer_step(tr);
  }
  /* done: the final model's (last) block, with the weights it keeps */
  ASSERT_EQ_INT(fc_lfm_trainer_valid_block(tr), 0);
  const double vd = fc_lfm_trainer_valid_loss(tr);
  ASSERT_MSG(isfinite(vd) && vd < 2e-3, "final validation loss %g", vd);
  fc_lfm_trainer_free(tr);
  /* generation ignores its input and returns the regression */
  fc_lfm_ws *ws = fc_lfm_ws_new(m, 16);
  float g[2] = {123.0f, -7.0f};
  fc_lfm_generate(m, ws, g, c + 2 * n, 1, FC_SAMPLER_RK4, 8);
  ASSERT_NEAR(g[0], x[2 * n], 0.05);
  ASSERT_NEAR(g[1], x[2 * n + 1], 0.05);
  /* the objective survives a checkpoint; more than one block is refused */
  char path[] = "/tmp/lfp_reg_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  ASSERT(fc_lfm_save_file(m, path, err, sizeof(err)) == 0);
  fc_lfm *back = fc_lfm_load_file(path, err, sizeof(err));
  ASSERT(back && back->cfg.objective == FC_OBJ_REGRESS);
  fc_lfm_free(back);
  unlink(path);
  lc.nblocks = 2;
  ASSERT(fc_lfm_new(&lc, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "one block");
  fc_lfm_ws_free(ws);
  fc_lfm_free(m);
  free(x);
  free(c);
  return 0;
}

TEST(lfm_gamma_schedule) {
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 2, 0);
  lc.nblocks = 4;
  lc.gamma_c = 0.025f;
  lc.gamma_rho = 1.25f;
  ASSERT_NEAR(fc_lfm_gamma(&lc, 1), 0.025, 1e-7);
  ASSERT_NEAR(fc_lfm_gamma(&lc, 2), 0.03125, 1e-7);
  ASSERT_NEAR(fc_lfm_gamma(&lc, 3), 0.0390625, 1e-7);
  ASSERT_NEAR(fc_lfm_gamma(&lc, 4), 0.0, 0); /* the free last block */
  char err[256];
  lc.nblocks = 0;
  ASSERT(fc_lfm_new(&lc, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "blocks");
  lc.nblocks = 2;
  lc.net.mlp.temb = 3;
  ASSERT(fc_lfm_new(&lc, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "time embedding");
  return 0;
}

/* ---------- checkpoints ---------- */

static unsigned char *s_slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n);
  if (fread(b, 1, *n, f) != *n) *n = 0;
  fclose(f);
  return b;
}

static void s_spit(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(b, 1, n, f);
  fclose(f);
}

static fc_lfm *s_random_model(uint64_t seed) {
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 3, 2);
  lc.nblocks = 2;
  lc.net.mlp.width = 8;
  lc.net.mlp.depth = 1;
  lc.interp = FC_INTERP_TRIG;
  lc.coupling = FC_COUPLING_SHUFFLED;
  fc_lfm *m = fc_lfm_new(&lc, NULL, 0);
  fc_rng r;
  fc_rng_seed(&r, seed);
  for (int b = 0; b < lc.nblocks; b++) fc_net_init(&m->blocks[b], &r);
  return m;
}

TEST(checkpoint_round_trip_and_damage) {
  char dir[] = "/tmp/lfp_test_ckpt_XXXXXX";
  ASSERT(mkdtemp(dir));
  char path[256], bad[256], err[512];
  snprintf(path, sizeof(path), "%s/model.lfp", dir);
  snprintf(bad, sizeof(bad), "%s/bad.lfp", dir);
  fc_lfm *m = s_random_model(1);
  ASSERT(fc_lfm_save_file(m, path, err, sizeof(err)) == 0);

  /* round trip: same config, same bytes */
  fc_lfm *r = fc_lfm_load_file(path, err, sizeof(err));
  ASSERT_MSG(r, "%s", err);
  ASSERT(memcmp(&r->cfg, &m->cfg, sizeof(m->cfg)) == 0);
  ASSERT(memcmp(r->params, m->params, fc_lfm_nparams(m) * sizeof(float)) == 0);
  fc_lfm_free(r);

  /* overwriting is atomic and leaves no temporary file behind */
  fc_lfm *m2 = s_random_model(2);
  ASSERT(fc_lfm_save_file(m2, path, err, sizeof(err)) == 0);
  r = fc_lfm_load_file(path, err, sizeof(err));
  ASSERT(r && memcmp(r->params, m2->params, fc_lfm_nparams(m2) * sizeof(float)) == 0);
  fc_lfm_free(r);
  DIR *d = opendir(dir);
  int entries = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') entries++;
  closedir(d);
  ASSERT_EQ_INT(entries, 1);

  size_t n;
  unsigned char *bytes = s_slurp(path, &n);
  ASSERT(bytes && n > 200);

  /* truncation, at every kind of place */
  const size_t cuts[] = {0, 4, 10, 63, 100, n / 2, n - 9, n - 1};
  for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
    s_spit(bad, bytes, cuts[i]);
    ASSERT(fc_lfm_load_file(bad, err, sizeof(err)) == NULL);
    ASSERT_CONTAINS(err, "truncated");
  }
  /* corruption: a flipped bit in the weights, in the table, in the checksum; extra bytes */
  const size_t flips[] = {n / 2, 70, n - 6};
  for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
    bytes[flips[i]] ^= 0x10;
    s_spit(bad, bytes, n);
    bytes[flips[i]] ^= 0x10;
    ASSERT(fc_lfm_load_file(bad, err, sizeof(err)) == NULL);
    ASSERT_CONTAINS(err, "corrupted");
  }
  unsigned char *longer = calloc(n + 5, 1);
  memcpy(longer, bytes, n);
  s_spit(bad, longer, n + 5);
  ASSERT(fc_lfm_load_file(bad, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "corrupted");
  free(longer);
  /* not a checkpoint at all */
  s_spit(bad, (const unsigned char *)"hello, this is not a checkpoint", 31);
  ASSERT(fc_lfm_load_file(bad, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "not an lfp checkpoint");

  /* mismatched: another format version, another kind, a section of the wrong size */
  bytes[8] = 99;
  s_spit(bad, bytes, n);
  bytes[8] = FC_CKPT_VERSION;
  ASSERT(fc_lfm_load_file(bad, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "mismatched");
  ASSERT_CONTAINS(err, "version 99");
  fc_ckpt_writer *w = fc_ckpt_writer_new("policy");
  fc_lfm_save(m, w, NULL);
  ASSERT(fc_ckpt_write(w, bad, err, sizeof(err)) == 0);
  fc_ckpt_writer_free(w);
  ASSERT(fc_lfm_load_file(bad, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "mismatched");
  w = fc_ckpt_writer_new("lfm");
  fc_ckpt *ck = fc_ckpt_read(path, "lfm", err, sizeof(err));
  size_t csz;
  const void *cfg = fc_ckpt_get(ck, "lfm.config", &csz);
  fc_ckpt_add(w, "lfm.config", cfg, csz);
  fc_ckpt_add(w, "lfm.params", m->params, 12);
  fc_ckpt_free(ck);
  ASSERT(fc_ckpt_write(w, bad, err, sizeof(err)) == 0);
  fc_ckpt_writer_free(w);
  ASSERT(fc_lfm_load_file(bad, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "mismatched");
  ASSERT_CONTAINS(err, "lfm.params");

  /* an unwritable destination is an error, not a crash */
  ASSERT(fc_lfm_save_file(m, "/nonexistent-dir/x.lfp", err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "/nonexistent-dir");

  free(bytes);
  fc_lfm_free(m);
  fc_lfm_free(m2);
  unlink(path);
  unlink(bad);
  rmdir(dir);
  return 0;
}

TEST(crc32_known_value) {
  /* the standard check value of CRC-32/IEEE */
  ASSERT_EQ_INT(fc_crc32(0, "123456789", 9), 0xCBF43926u);
  return 0;
}

/* ---------- W2 by optimal assignment ---------- */

static double s_brute_w2(const float *x, const float *y, int n) {
  int p[6] = {0, 1, 2, 3, 4, 5};
  double best = 1e300;
  /* Heap's algorithm over all n! assignments */
  int c[6] = {0};
  for (int i = 0;;) {
    double s = 0;
    for (int k = 0; k < n; k++) {
      double dx = (double)x[2 * k] - y[2 * p[k]], dy = (double)x[2 * k + 1] - y[2 * p[k] + 1];
      s += dx * dx + dy * dy;
    }
    best = s < best ? s : best;
    while (i < n && c[i] >= i) c[i++] = 0;
    if (i >= n) break;
    int j = i % 2 ? c[i] : 0, t = p[j];
    p[j] = p[i];
    p[i] = t;
    c[i]++;
    i = 0;
  }
  return sqrt(best / n);
}

TEST(w2_exact_assignment) {
  fc_rng r;
  fc_rng_seed(&r, 8);
  for (int trial = 0; trial < 20; trial++) {
    float x[12], y[12];
    fc_rng_normal_fill(&r, x, 12);
    fc_rng_normal_fill(&r, y, 12);
    ASSERT_NEAR(fc_w2_exact(x, y, 6, 2, NULL), s_brute_w2(x, y, 6), 1e-9);
  }
  /* a point set against itself shuffled is 0; against itself shifted by (3, 4) is 5 */
  float a[400], b[400], c[400];
  fc_rng_normal_fill(&r, a, 400);
  int perm[200];
  fc_rng_permutation(&r, perm, 200);
  for (int i = 0; i < 200; i++) {
    b[2 * i] = a[2 * perm[i]];
    b[2 * i + 1] = a[2 * perm[i] + 1];
    c[2 * i] = a[2 * i] + 3.0f;
    c[2 * i + 1] = a[2 * i + 1] + 4.0f;
  }
  ASSERT_NEAR(fc_w2_exact(a, b, 200, 2, NULL), 0.0, 1e-9);
  ASSERT_NEAR(fc_w2_exact(a, c, 200, 2, NULL), 5.0, 1e-5);
  ASSERT(fc_energy_distance(a, 200, b, 200, 2) < 1e-9);
  ASSERT(fc_energy_distance(a, 200, c, 200, 2) > 1.0);
  return 0;
}

/* ---------- end to end: LFM on 8 Gaussians ---------- */

TEST(lfm_8gaussians_end_to_end) {
  /* A smaller run than the demo's default (which reaches W2 within about 1.1x
   * the floor), sized to finish in seconds even under the sanitizers; W2 and
   * its floor are means over 5 independent evaluations (one evaluation of
   * W2 at 1000 points varies by about +-15%).
   * Threshold: W2 < 2 x w2_floor. With 1000 points the floor is about 0.29. A
   * model that drops one of the 8 modes must move 1/8 of the mass at least the
   * distance between neighbouring centres (2.16), so its W2 is at least
   * sqrt(2.16^2 / 8) = 0.76 > 2 x 0.29; one that blurs the modes into a ring
   * or a blob sits far above as well. */
  fc_toy_config tc;
  fc_toy_config_default(&tc);
  tc.dist = FC_TOY_8GAUSSIANS;
  tc.steps = 2000;
  tc.width = 128;
  tc.train_size = 10000;
  fc_toy_result r;
  char err[256];
  ASSERT_MSG(fc_toy_run(&tc, 4, &r, err, sizeof(err)) == 0, "%s", err);
  printf("LFM N=4: W2 %.4f, floor %.4f, modes %d/%d, off-mode %.3f, %.1f s\n", r.w2, r.w2_floor,
         r.modes_covered, r.modes_total, r.off_mode, r.train_s);
  ASSERT_EQ_INT(r.modes_covered, 8);
  ASSERT_MSG(r.w2 < 2.0 * r.w2_floor, "W2 %.4f vs floor %.4f", r.w2, r.w2_floor);
  for (int b = 0; b < 4; b++) ASSERT_MSG(r.diag[b].inversion_err < 0.05, "block %d inversion error %g", b, r.diag[b].inversion_err);
  return 0;
}

/* ---------- network config, ODE steps per block, validation loss (issue 10) ---------- */

TEST(film_with_depth_0_is_refused) {
  /* FiLM acts inside the residual blocks: with none, t and c would be ignored */
  fc_mlp_config cfg;
  fc_mlp_config_default(&cfg, 3, 2);
  cfg.depth = 0;
  char err[256] = "";
  ASSERT(fc_mlp_config_check(&cfg, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "depth 0 has no residual block for FiLM");
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 3, 2);
  lc.net.mlp.depth = 0;
  ASSERT(fc_lfm_new(&lc, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "depth 0");
  /* concat conditioning feeds t and c to the input layer: depth 0 means something */
  cfg.cond = FC_COND_CONCAT;
  ASSERT(fc_mlp_config_check(&cfg, err, sizeof(err)) == 0);
  cfg.cond = FC_COND_FILM;
  cfg.depth = 1;
  ASSERT(fc_mlp_config_check(&cfg, err, sizeof(err)) == 0);
  return 0;
}

TEST(ode_steps_divide_evenly_among_blocks) {
  char err[256] = "";
  ASSERT_EQ_INT(fc_lfm_steps_per_block(8, 1, err, sizeof(err)), 8);
  ASSERT_EQ_INT(fc_lfm_steps_per_block(8, 2, err, sizeof(err)), 4);
  ASSERT_EQ_INT(fc_lfm_steps_per_block(12, 3, err, sizeof(err)), 4);
  /* 8 over 3 blocks was 2 per block: NFE 24 where FM with 8 steps has 32 */
  ASSERT_EQ_INT(fc_lfm_steps_per_block(8, 3, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "8 ODE steps over the chain do not divide evenly among its 3 blocks");
  ASSERT_CONTAINS(err, "e.g. 6 or 9");
  /* 1 over 2 blocks was rounded up to 1 per block: twice the NFE asked for */
  ASSERT_EQ_INT(fc_lfm_steps_per_block(1, 2, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "1 ODE steps over the chain do not divide evenly among its 2 blocks");
  ASSERT_EQ_INT(fc_lfm_steps_per_block(0, 2, err, sizeof(err)), -1);
  return 0;
}

/* The validation loss of block k of m, computed here from its definition in
 * fc_flow.h (fixed seed, batches of B, dependent OU targets or noise). */
static double s_valid_ref(const fc_lfm *m, const float *params, int k, const float *x, const float *c, int nv, int B,
                          uint64_t seed) {
  const int D = fc_net_dx(&m->cfg.net), C = fc_net_dc(&m->cfg.net), N = m->cfg.nblocks;
  fc_net net;
  fc_net_bind(&net, &m->cfg.net, (float *)params);
  fc_fm_ws *ws = fc_fm_ws_new(&m->cfg.net, B);
  float *x1 = malloc(sizeof(float) * B * D), *z = malloc(sizeof(float) * B * D), *t = malloc(sizeof(float) * B);
  fc_rng r;
  fc_rng_seed(&r, seed ^ 0x5a17u);
  double sum = 0;
  for (int off = 0; off < nv; off += B) {
    const int nb = nv - off < B ? nv - off : B;
    const float *x0 = x + (size_t)off * D;
    fc_rng_normal_fill(&r, z, (size_t)nb * D);
    const double g = fc_lfm_gamma(&m->cfg, k + 1);
    for (int i = 0; i < nb * D; i++)
      x1[i] = k == N - 1 ? z[i] : (float)exp(-g) * x0[i] + (float)sqrt(1.0 - exp(-2.0 * g)) * z[i];
    for (int b = 0; b < nb; b++) t[b] = (float)fc_rng_uniform(&r);
    sum += nb * fc_fm_loss(&net, ws, NULL, m->cfg.interp, t, x0, x1, C ? c + (size_t)off * C : NULL, nb);
  }
  fc_fm_ws_free(ws);
  free(x1); free(z); free(t);
  return sum / nv;
}

TEST(validation_loss_measures_the_block_it_names) {
  /* two blocks; at the boundary the loss is block 1's (just finished, on its
   * own inputs), not block 1's weights against block 2's inputs and targets;
   * when done it is the final model's last block */
  const int n = 256, nv = 100, D = 2, C = 1;
  float *x = malloc(sizeof(float) * (n + nv) * D), *c = malloc(sizeof(float) * (n + nv) * C);
  fc_rng r;
  fc_rng_seed(&r, 5);
  for (int i = 0; i < n + nv; i++) {
    c[i] = (float)(2 * fc_rng_uniform(&r) - 1);
    x[2 * i] = c[i] + 0.1f * (float)fc_rng_normal(&r);
    x[2 * i + 1] = -c[i] + 0.1f * (float)fc_rng_normal(&r);
  }
  const float *vx = x + (size_t)n * D, *vc = c + n;
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, D, C);
  lc.nblocks = 2;
  lc.net.mlp.width = 16;
  lc.net.mlp.depth = 1;
  char err[256];
  fc_lfm *m = fc_lfm_new(&lc, err, sizeof(err));
  ASSERT_MSG(m, "%s", err);
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.steps = 120;
  tc.batch = 32;
  tc.seed = 3;
  tc.warm_start = 0;
  fc_lfm_trainer *tr = fc_lfm_trainer_new(m, x, c, (size_t)n, &tc, err, sizeof(err));
  ASSERT_MSG(tr, "%s", err);
  fc_lfm_trainer_set_valid(tr, vx, vc, (size_t)nv);
  ASSERT_EQ_INT(fc_lfm_trainer_valid_block(tr), -1);
  ASSERT(isnan(fc_lfm_trainer_valid_loss(tr))); /* nothing trained yet */
  while (fc_lfm_trainer_steps_done(tr) < 60) {
    fc_lfm_trainer_step(tr);
    ASSERT_EQ_INT(fc_lfm_trainer_valid_block(tr), 0);
  }
  /* the boundary: block 1 finished, block 2 not begun */
  ASSERT_EQ_INT(fc_lfm_trainer_block(tr), 1);
  const double vb = fc_lfm_trainer_valid_loss(tr), vb_ref = s_valid_ref(m, m->blocks[0].params, 0, vx, vc, nv, 32, 3);
  ASSERT_MSG(vb == vb_ref, "boundary: %.17g vs block 1 on its inputs %.17g", vb, vb_ref);
  ASSERT(fc_lfm_trainer_valid_loss(tr) == vb); /* repeatable, changes nothing */
  fc_lfm_trainer_step(tr);
  ASSERT_EQ_INT(fc_lfm_trainer_valid_block(tr), 1);
  while (!fc_lfm_trainer_done(tr)) fc_lfm_trainer_step(tr);
  /* done: block 2 with its final weights on the set pushed through block 1 */
  ASSERT_EQ_INT(fc_lfm_trainer_valid_block(tr), 1);
  float *pushed = malloc(sizeof(float) * nv * D);
  memcpy(pushed, vx, sizeof(float) * nv * D);
  fc_lfm_ws *ws = fc_lfm_ws_new(m, 1024);
  fc_lfm_push(m, ws, 0, 1, pushed, vc, nv, lc.sampler, lc.steps);
  const double vd = fc_lfm_trainer_valid_loss(tr), vd_ref = s_valid_ref(m, m->blocks[1].params, 1, pushed, vc, nv, 32, 3);
  ASSERT_MSG(vd == vd_ref, "done: %.17g vs block 2 on its inputs %.17g", vd, vd_ref);
  ASSERT(isfinite(vd) && vd != vb);
  fc_lfm_ws_free(ws);
  fc_lfm_trainer_free(tr);
  fc_lfm_free(m);
  free(pushed);
  free(x);
  free(c);
  return 0;
}

/* ---------- checkpoint format 2: field-wise sections, bounded readers ---------- */

TEST(crc32_constant_table_matches_the_bitwise_crc) {
  /* the constant table against the bitwise definition, one byte at a time
   * (each entry of the table is reached by exactly one byte from crc 0) */
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = ~0u ^ i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    const unsigned char byte = (unsigned char)i;
    ASSERT_EQ_INT(fc_crc32(0, &byte, 1), ~c);
  }
  return 0;
}

TEST(section_cursor_bounds_every_field) {
  fc_ckpt_writer *w = fc_ckpt_writer_new("t");
  fc_ckpt_buf b = {0};
  fc_ckpt_put_u32(&b, 1);
  fc_ckpt_put_i32(&b, -5);
  fc_ckpt_put_str(&b, "abc");
  const float v[3] = {1, 2, 3};
  fc_ckpt_put_f32s(&b, v, 3);
  fc_ckpt_add_buf(w, "s", &b);
  ASSERT(b.data == NULL && b.len == 0);
  char dir[] = "/tmp/lfp_cur_XXXXXX", path[256], err[512];
  ASSERT(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/c.lfp", dir);
  ASSERT_MSG(fc_ckpt_write(w, path, err, sizeof(err)) == 0, "%s", err);
  fc_ckpt_writer_free(w);
  fc_ckpt *ck = fc_ckpt_read(path, "t", err, sizeof(err));
  ASSERT_MSG(ck, "%s", err);
  fc_ckpt_cur c;
  uint32_t ver;
  int32_t x;
  char str[8];
  float f[3];
  /* in order and in bounds */
  ASSERT(fc_ckpt_cur_open(&c, ck, "s", err, sizeof(err)) == 0 && fc_ckpt_cur_version(&c, 1, &ver) == 0);
  ASSERT(fc_ckpt_get_i32(&c, "x", -5, 5, &x) == 0 && x == -5);
  ASSERT(fc_ckpt_get_str(&c, "name", str, sizeof(str)) == 0 && !strcmp(str, "abc"));
  ASSERT(fc_ckpt_get_f32s(&c, "v", f, 3) == 0 && f[2] == 3.0f);
  ASSERT(fc_ckpt_cur_end(&c) == 0);
  /* out of bounds, too long a string, past the end, a huge count, a missing section */
  ASSERT(fc_ckpt_cur_open(&c, ck, "s", err, sizeof(err)) == 0 && fc_ckpt_cur_version(&c, 1, &ver) == 0);
  ASSERT(fc_ckpt_get_i32(&c, "x", 0, 5, &x) == -1);
  ASSERT_CONTAINS(err, "section 's' has x = -5, outside 0..5");
  ASSERT(fc_ckpt_get_f32s(&c, "v", f, 1) == -1); /* sticky */
  ASSERT(fc_ckpt_cur_open(&c, ck, "s", err, sizeof(err)) == 0 && fc_ckpt_get_u32(&c, "version", &ver) == 0 &&
         fc_ckpt_get_i32(&c, "x", -5, 5, &x) == 0);
  ASSERT(fc_ckpt_get_str(&c, "name", str, 3) == -1);
  ASSERT_CONTAINS(err, "has a 3-byte name, longer than 2");
  ASSERT(fc_ckpt_cur_open(&c, ck, "s", err, sizeof(err)) == 0 && fc_ckpt_get_u32(&c, "version", &ver) == 0);
  ASSERT(fc_ckpt_get_f32s(&c, "all", f, SIZE_MAX / 2) == -1);
  ASSERT_CONTAINS(err, "ends inside field 'all'");
  ASSERT(fc_ckpt_cur_open(&c, ck, "s", err, sizeof(err)) == 0 && fc_ckpt_cur_version(&c, 0, &ver) == -1);
  ASSERT_CONTAINS(err, "section 's' has version 1, this lfp reads 1 to 0");
  ASSERT(fc_ckpt_cur_open(&c, ck, "nope", err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "section 'nope' is missing");
  fc_ckpt_free(ck);
  /* sealing makes edited bytes parse: the fuzz target's and the tests' way
   * to put hostile contents behind a valid checksum */
  size_t n = 0;
  unsigned char *bytes = s_slurp(path, &n);
  ASSERT(bytes && n > 100);
  bytes[n / 2] ^= 1;
  ASSERT(fc_ckpt_parse(bytes, n, path, "t", err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "corrupted");
  fc_ckpt_seal(bytes, n);
  ck = fc_ckpt_parse(bytes, n, path, "t", err, sizeof(err));
  ASSERT_MSG(ck, "%s", err);
  fc_ckpt_free(ck);
  /* behind a valid CRC: a section without a terminated name, an empty name */
  memset(bytes + 64, 'x', FC_CKPT_NAME_MAX);
  fc_ckpt_seal(bytes, n);
  ASSERT(fc_ckpt_parse(bytes, n, path, "t", err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "section 0 ('xxx");
  ASSERT_CONTAINS(err, "has no name of at most 39 bytes");
  memset(bytes + 64, 0, FC_CKPT_NAME_MAX);
  fc_ckpt_seal(bytes, n);
  ASSERT(fc_ckpt_parse(bytes, n, path, "t", err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "has no name");
  free(bytes);
  /* two sections of one name */
  w = fc_ckpt_writer_new("t");
  fc_ckpt_add(w, "a", v, sizeof(v));
  fc_ckpt_add(w, "b", v, sizeof(v));
  ASSERT(fc_ckpt_write(w, path, err, sizeof(err)) == 0);
  fc_ckpt_writer_free(w);
  bytes = s_slurp(path, &n);
  ASSERT(bytes && n > 100);
  bytes[64 + FC_CKPT_NAME_MAX + 16] = 'a';
  fc_ckpt_seal(bytes, n);
  ASSERT(fc_ckpt_parse(bytes, n, path, "t", err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "section 1 ('a') appears twice");
  free(bytes);
  /* a bare file name: written, renamed and its directory (".") flushed */
  char cwd[1024];
  ASSERT(getcwd(cwd, sizeof(cwd)) && chdir(dir) == 0);
  w = fc_ckpt_writer_new("t");
  fc_ckpt_add(w, "s", v, sizeof(v));
  const int rc = fc_ckpt_write(w, "rel.lfp", err, sizeof(err));
  fc_ckpt_writer_free(w);
  ASSERT(chdir(cwd) == 0);
  ASSERT_MSG(rc == 0, "%s", err);
  snprintf(path + strlen(dir), sizeof(path) - strlen(dir), "/rel.lfp");
  ck = fc_ckpt_read(path, "t", err, sizeof(err));
  ASSERT_MSG(ck, "%s", err);
  fc_ckpt_free(ck);
  unlink(path);
  snprintf(path, sizeof(path), "%s/c.lfp", dir);
  unlink(path);
  rmdir(dir);
  return 0;
}

TEST(hostile_train_state_is_refused) {
  /* a trainer checkpoint whose train.state is cut, out of range or of a
   * future version: a sentence, never a resumed run in an impossible state */
  float data[2 * 64];
  fc_rng r;
  fc_rng_seed(&r, 1);
  fc_toy_sample(FC_TOY_RINGS, &r, data, NULL, 64);
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 2, 0);
  lc.nblocks = 2, lc.net.mlp.width = 8, lc.net.mlp.depth = 1;
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.steps = 10, tc.batch = 16;
  fc_lfm *m = fc_lfm_new(&lc, NULL, 0);
  fc_lfm_trainer *tr = fc_lfm_trainer_new(m, data, NULL, 64, &tc, NULL, 0);
  for (int i = 0; i < 3; i++) fc_lfm_trainer_step(tr);
  char path[] = "/tmp/lfp_state_XXXXXX", err[512];
  int fd = mkstemp(path);
  close(fd);
  fc_ckpt_writer *w = fc_ckpt_writer_new("run");
  fc_lfm_trainer_save(tr, w);
  ASSERT(fc_ckpt_write(w, path, err, sizeof(err)) == 0);
  fc_ckpt_writer_free(w);
  size_t n = 0;
  unsigned char *good = s_slurp(path, &n);
  ASSERT(good && n > 200);
  fc_ckpt *ck = fc_ckpt_parse(good, n, path, "run", err, sizeof(err));
  ASSERT_MSG(ck && fc_lfm_trainer_restore(tr, ck, err, sizeof(err)) == 0, "%s", err);
  size_t ssz;
  ASSERT(fc_ckpt_get(ck, "train.state", &ssz));
  ASSERT_EQ_INT(ssz, 4 + 10 * 8 + 5 * 8 + 2 * 8);
  fc_ckpt_free(ck);
  /* train.state is the first entry of the section table (at byte 64: name[40], u64 offset) */
  ASSERT(!strcmp((const char *)good + 64, "train.state"));
  uint64_t off;
  memcpy(&off, good + 64 + FC_CKPT_NAME_MAX, 8);
  /* field offsets inside the section: version 0, block 4, ..., steps_done 20, has_spare 76 */
  const struct {
    size_t at;
    int64_t value;
    int width;
    const char *expect;
  } cases[] = {
      {0, 7, 4, "section 'train.state' has version 7, this lfp reads 1 to 1"},
      {4, -1, 8, "has block = -1, outside 0..64"},
      {4, 3, 8, "its training position is impossible"},
      {20, 11, 8, "its training position is impossible"},
      {76, 2, 8, "has_spare = 2, outside 0..1"},
      {44, 65, 8, "it was training on 65 samples"},
  };
  unsigned char *bad = malloc(n);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    memcpy(bad, good, n);
    if (cases[i].width == 4) {
      uint32_t v = (uint32_t)cases[i].value;
      memcpy(bad + off + cases[i].at, &v, 4);
    } else {
      memcpy(bad + off + cases[i].at, &cases[i].value, 8);
    }
    fc_ckpt_seal(bad, n);
    ck = fc_ckpt_parse(bad, n, path, "run", err, sizeof(err));
    ASSERT_MSG(ck, "%s", err);
    ASSERT(fc_lfm_trainer_restore(tr, ck, err, sizeof(err)) == -1);
    ASSERT_MSG(strstr(err, cases[i].expect), "case %zu: expected \"%s\" in \"%s\"", i, cases[i].expect, err);
    printf("| hostile train.state (field at %zu = %lld) | %s |\n", cases[i].at, (long long)cases[i].value, err);
    fc_ckpt_free(ck);
  }
  free(bad);
  free(good);
  fc_lfm_trainer_free(tr);
  fc_lfm_free(m);
  unlink(path);
  return 0;
}

TEST(config_check_enforces_the_loader_bounds) {
  /* a model too wide to load is refused when built, with the same bound */
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 4, 2);
  char err[256] = "";
  lc.net.mlp.width = FC_LFM_MAX_WIDTH + 1;
  ASSERT(fc_lfm_new(&lc, err, sizeof(err)) == NULL);
  ASSERT_MSG(strstr(err, "beyond flowcore's bounds"), "%s", err);
  lc.net.mlp.width = 8;
  lc.net.mlp.dc = FC_LFM_MAX_DIM + 1;
  ASSERT(fc_lfm_config_check(&lc, err, sizeof(err)) != 0);
  lc.net.mlp.dc = 2;
  ASSERT_MSG(fc_lfm_config_check(&lc, err, sizeof(err)) == 0, "%s", err);
  return 0;
}

/* ---------- the network interface (fc_net) ---------- */

TEST(net_interface_is_the_mlp_bit_for_bit) {
  /* fc_net's dispatch adds nothing: every operation on an mlp config gives
   * exactly what fc_mlp's own function gives (init, forward, backward with
   * and without accumulation, the references, sizes, width matching) */
  for (int cond = 0; cond < 2; cond++)
    for (int act = 0; act < 3; act++)
      for (int bi = 0; bi < 2; bi++) {
        const int B = bi ? 7 : 1; /* B = 1 takes the sgemv path */
        fc_net_config nc;
        fc_net_config_default(&nc, FC_NET_MLP, 5, 3);
        nc.mlp.width = 33, nc.mlp.depth = 2, nc.mlp.temb = 8, nc.mlp.act = (fc_act)act, nc.mlp.cond = (fc_cond_mode)cond;
        const fc_mlp_config mc = nc.mlp;
        const int D = mc.dx, C = mc.dc;
        char err[256];
        ASSERT_MSG(fc_net_config_check(&nc, err, sizeof(err)) == 0, "%s", err);
        ASSERT_EQ_INT(fc_net_dx(&nc), D);
        ASSERT_EQ_INT(fc_net_dc(&nc), C);
        const size_t P = fc_mlp_nparams(&mc);
        ASSERT_EQ_INT(fc_net_nparams(&nc), P);
        ASSERT(fc_net_macs(&nc) == fc_mlp_macs(&mc));
        fc_tensor_info ta[FC_MLP_MAX_TENSORS], tb[FC_MLP_MAX_TENSORS];
        const int nt = fc_mlp_tensors(&mc, ta, FC_MLP_MAX_TENSORS);
        ASSERT_EQ_INT(fc_net_tensors(&nc, NULL, 0), nt);
        ASSERT_EQ_INT(fc_net_tensors(&nc, tb, FC_MLP_MAX_TENSORS), nt);
        for (int i = 0; i < nt; i++) /* field by field: the bytes after a name's NUL are not set */
          ASSERT(!strcmp(ta[i].name, tb[i].name) && ta[i].offset == tb[i].offset && ta[i].rows == tb[i].rows &&
                 ta[i].cols == tb[i].cols && ta[i].fan_in == tb[i].fan_in);
        for (int copies = 1; copies <= 4; copies++) {
          fc_net_config m;
          fc_net_match(&m, &nc, copies);
          ASSERT_EQ_INT(m.mlp.width, fc_mlp_width_matching(&mc, copies));
          ASSERT(m.mlp.depth == mc.depth && m.mlp.dx == D && m.mlp.dc == C);
        }
        /* same initialization from the same stream */
        float *pa = malloc(P * sizeof(float)), *pb = malloc(P * sizeof(float));
        fc_mlp ma;
        fc_net nb;
        fc_mlp_bind(&ma, &mc, pa);
        fc_net_bind(&nb, &nc, pb);
        ASSERT(nb.params == pb && nb.mlp.params == pb);
        fc_rng ra, rb;
        fc_rng_seed(&ra, 200 + act), fc_rng_seed(&rb, 200 + act);
        fc_mlp_init(&ma, &ra);
        fc_net_init(&nb, &rb);
        ASSERT(memcmp(pa, pb, P * sizeof(float)) == 0);
        /* forward and backward */
        float t[7], x[35], c[21], dy[35];
        for (int i = 0; i < B; i++) t[i] = (float)fc_rng_uniform(&ra);
        fc_rng_normal_fill(&ra, x, (size_t)B * D);
        fc_rng_normal_fill(&ra, c, (size_t)B * C);
        fc_rng_normal_fill(&ra, dy, (size_t)B * D);
        float ya[35], yb[35], dxa[35], dxb[35], dca[21], dcb[21];
        float *ga = malloc(P * sizeof(float)), *gb = malloc(P * sizeof(float));
        fc_mlp_ws *wa = fc_mlp_ws_new(&mc, B);
        fc_net_ws *wb = fc_net_ws_new(&nc, B);
        fc_mlp_forward(&ma, wa, ya, t, x, c, B);
        fc_net_forward(&nb, wb, yb, t, x, c, B);
        ASSERT(memcmp(ya, yb, (size_t)B * D * sizeof(float)) == 0);
        fc_mlp_backward(&ma, wa, ga, 0, dxa, dca, dy, B);
        fc_net_backward(&nb, wb, gb, 0, dxb, dcb, dy, B);
        ASSERT(memcmp(ga, gb, P * sizeof(float)) == 0);
        ASSERT(memcmp(dxa, dxb, (size_t)B * D * sizeof(float)) == 0);
        ASSERT(memcmp(dca, dcb, (size_t)B * C * sizeof(float)) == 0);
        fc_mlp_backward(&ma, wa, ga, 1, NULL, NULL, dy, B);
        fc_net_backward(&nb, wb, gb, 1, NULL, NULL, dy, B);
        ASSERT(memcmp(ga, gb, P * sizeof(float)) == 0);
        /* the double references */
        double *pd = malloc(P * sizeof(double)), *gda = malloc(P * sizeof(double)), *gdb = malloc(P * sizeof(double));
        for (size_t i = 0; i < P; i++) pd[i] = pa[i];
        double td[7], xd[35], cd[21], dyd[35], yda[35], ydb[35], dxda[35], dxdb[35], dcda[21], dcdb[21];
        for (int i = 0; i < B; i++) td[i] = t[i];
        for (int i = 0; i < B * D; i++) xd[i] = x[i], dyd[i] = dy[i];
        for (int i = 0; i < B * C; i++) cd[i] = c[i];
        fc_mlp_ws_ref *ra_ws = fc_mlp_ws_new_ref(&mc, B);
        fc_net_ws_ref *rb_ws = fc_net_ws_new_ref(&nc, B);
        fc_mlp_forward_ref(&mc, pd, ra_ws, yda, td, xd, cd, B);
        fc_net_forward_ref(&nc, pd, rb_ws, ydb, td, xd, cd, B);
        ASSERT(memcmp(yda, ydb, (size_t)B * D * sizeof(double)) == 0);
        fc_mlp_backward_ref(&mc, pd, ra_ws, gda, 0, dxda, dcda, dyd, B);
        fc_net_backward_ref(&nc, pd, rb_ws, gdb, 0, dxdb, dcdb, dyd, B);
        ASSERT(memcmp(gda, gdb, P * sizeof(double)) == 0);
        ASSERT(memcmp(dxda, dxdb, (size_t)B * D * sizeof(double)) == 0);
        ASSERT(memcmp(dcda, dcdb, (size_t)B * C * sizeof(double)) == 0);
        fc_mlp_ws_free_ref(ra_ws);
        fc_net_ws_free_ref(rb_ws);
        fc_mlp_ws_free(wa);
        fc_net_ws_free(wb);
        free(pa); free(pb); free(ga); free(gb); free(pd); free(gda); free(gdb);
      }
  return 0;
}

TEST(net_tensors_cover_the_parameters_exactly_once) {
  /* every float of the parameter vector belongs to exactly one tensor, in
   * order, each with a name and a positive fan-in (init divides by it) */
  const struct {
    int dx, dc, width, depth, temb;
    fc_cond_mode cond;
  } cases[] = {{3, 2, 5, 2, 4, FC_COND_FILM}, {3, 0, 5, 1, 4, FC_COND_FILM}, {4, 6, 8, 0, 4, FC_COND_CONCAT},
               {2, 3, 7, 3, 6, FC_COND_CONCAT}, {112, 38, 16, 4, 32, FC_COND_FILM}};
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    fc_net_config nc;
    fc_net_config_default(&nc, FC_NET_MLP, cases[k].dx, cases[k].dc);
    nc.mlp.width = cases[k].width, nc.mlp.depth = cases[k].depth, nc.mlp.temb = cases[k].temb, nc.mlp.cond = cases[k].cond;
    char err[256];
    ASSERT_MSG(fc_net_config_check(&nc, err, sizeof(err)) == 0, "%s", err);
    const size_t P = fc_net_nparams(&nc);
    const int nt = fc_net_tensors(&nc, NULL, 0);
    ASSERT(nt > 0);
    fc_tensor_info *ti = malloc((size_t)nt * sizeof(*ti));
    ASSERT_EQ_INT(fc_net_tensors(&nc, ti, nt), nt);
    unsigned char *hits = calloc(P, 1);
    size_t next = 0;
    for (int i = 0; i < nt; i++) {
      ASSERT_MSG(ti[i].name[0] && ti[i].rows > 0 && ti[i].cols > 0 && ti[i].fan_in > 0, "case %zu tensor %d", k, i);
      ASSERT_MSG(ti[i].offset == next, "case %zu: %s starts at %zu, the previous tensor ends at %zu", k, ti[i].name,
                 ti[i].offset, next);
      const size_t cnt = (size_t)ti[i].rows * (size_t)ti[i].cols;
      ASSERT_MSG(ti[i].offset + cnt <= P, "case %zu: %s runs past the %zu parameters", k, ti[i].name, P);
      for (size_t j = 0; j < cnt; j++) hits[ti[i].offset + j]++;
      next = ti[i].offset + cnt;
    }
    for (size_t j = 0; j < P; j++) ASSERT_MSG(hits[j] == 1, "case %zu: parameter %zu is in %d tensors", k, j, hits[j]);
    free(hits);
    free(ti);
  }
  return 0;
}

TEST(net_config_names_checks_and_descriptions) {
  ASSERT_EQ_INT(fc_net_kind_parse("mlp"), FC_NET_MLP);
  ASSERT_EQ_INT(fc_net_kind_parse("transformer"), FC_NET_TRANSFORMER);
  ASSERT_EQ_INT(fc_net_kind_parse("resnet"), -1);
  ASSERT_EQ_INT(fc_net_kind_parse(NULL), -1);
  ASSERT(!strcmp(fc_net_kind_name(FC_NET_MLP), "mlp"));
  ASSERT(!strcmp(fc_net_kind_name((fc_net_kind)7), "?"));
  fc_net_config a, b;
  fc_net_config_default(&a, FC_NET_MLP, 4, 2);
  char desc[128], err[256];
  fc_net_describe(&a, desc, sizeof(desc));
  ASSERT(!strcmp(desc, "mlp width 256 depth 3 film silu"));
  /* the defaults are fc_mlp's; set_io changes the sizes only */
  fc_mlp_config mc;
  fc_mlp_config_default(&mc, 4, 2);
  ASSERT(memcmp(&a.mlp, &mc, sizeof(mc)) == 0);
  b = a;
  b.mlp.width = 64, b.mlp.act = FC_ACT_GELU, b.mlp.cond = FC_COND_CONCAT;
  fc_net_config_set_io(&b, 32, 10, 16);
  ASSERT(b.mlp.dx == 32 && b.mlp.dc == 10 && b.mlp.width == 64 && b.mlp.act == FC_ACT_GELU);
  fc_net_describe(&b, desc, sizeof(desc));
  ASSERT(!strcmp(desc, "mlp width 64 depth 3 concat gelu"));
  /* field-wise comparison */
  ASSERT(fc_net_config_same(&a, &a));
  ASSERT(!fc_net_config_same(&a, &b));
  b = a;
  b.mlp.temb = 16;
  ASSERT(!fc_net_config_same(&a, &b));
  /* checks: the kind's own, the bounds, an unknown kind */
  ASSERT_MSG(fc_net_config_check(&a, err, sizeof(err)) == 0, "%s", err);
  b = a;
  b.mlp.depth = 0;
  ASSERT(fc_net_config_check(&b, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "depth 0 has no residual block for FiLM");
  b = a;
  b.mlp.temb = FC_NET_MAX_TEMB + 2;
  ASSERT(fc_net_config_check(&b, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "beyond flowcore's bounds");
  b = a;
  b.kind = (fc_net_kind)7;
  ASSERT(fc_net_config_check(&b, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "unknown network kind 7 (this lfp knows mlp");
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 4, 2);
  lc.net.kind = (fc_net_kind)7;
  ASSERT(fc_lfm_new(&lc, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "unknown network kind 7");
  fc_net_describe(&b, desc, sizeof(desc));
  ASSERT_CONTAINS(desc, "unknown network kind 7");
  return 0;
}

TEST(net_every_kind_against_its_reference) {
  /* what every kind must satisfy through the interface, on its defaults for
   * an action chunk (horizon 4 of 2-D actions, 3 condition values): a
   * tensor list that covers the parameters, checkpoint fields that read back
   * to the same config, a width match no larger than the original, the
   * float path near the double reference, and the reference's gradient
   * against central finite differences on a sample of parameters and on
   * x and c */
  for (int kind = 0; kind < FC_NET_KINDS; kind++) {
    const int T = 4, A = 2, D = T * A, C = 3, B = 2;
    fc_net_config nc;
    fc_net_config_default(&nc, (fc_net_kind)kind, D, C);
    fc_net_config_set_io(&nc, D, C, T);
    char err[256], desc[128];
    ASSERT_MSG(fc_net_config_check(&nc, err, sizeof(err)) == 0, "%s: %s", fc_net_kind_name(nc.kind), err);
    fc_net_describe(&nc, desc, sizeof(desc));
    ASSERT_MSG(!strncmp(desc, fc_net_kind_name(nc.kind), strlen(fc_net_kind_name(nc.kind))), "%s", desc);
    ASSERT(fc_net_dx(&nc) == D && fc_net_dc(&nc) == C && fc_net_macs(&nc) > 0);
    const size_t P = fc_net_nparams(&nc);
    const int nt = fc_net_tensors(&nc, NULL, 0);
    fc_tensor_info *ti = malloc((size_t)nt * sizeof(*ti));
    fc_net_tensors(&nc, ti, nt);
    size_t next = 0;
    for (int i = 0; i < nt; i++) {
      /* GroupNorm's weights and biases (initialized to 1 and 0) and the
       * transformer's positions (N(0, 0.02^2)) have no fan-in */
      ASSERT_MSG(ti[i].offset == next && (ti[i].fan_in > 0 || strstr(ti[i].name, "gn") || !strcmp(ti[i].name, "pos")),
                 "%s: tensor %s", desc, ti[i].name);
      next += (size_t)ti[i].rows * (size_t)ti[i].cols;
    }
    ASSERT_MSG(next == P, "%s: the tensors cover %zu of %zu parameters", desc, next, P);
    /* checkpoint fields */
    fc_ckpt_buf b = {0};
    fc_net_config_put(&b, &nc);
    fc_ckpt_cur cur;
    memset(&cur, 0, sizeof(cur));
    cur.p = b.data, cur.size = b.len, cur.err = err, cur.errsz = sizeof(err);
    snprintf(cur.name, sizeof(cur.name), "net");
    fc_net_config back;
    ASSERT_MSG(fc_net_config_get(&cur, &back) == 0 && fc_ckpt_cur_end(&cur) == 0, "%s", err);
    ASSERT(fc_net_config_same(&back, &nc) && memcmp(&back, &nc, sizeof(nc)) == 0);
    free(b.data);
    /* width matching */
    fc_net_config half;
    fc_net_match(&half, &nc, 2);
    ASSERT_MSG(fc_net_config_check(&half, err, sizeof(err)) == 0, "%s", err);
    ASSERT(fc_net_nparams(&half) <= P && fc_net_dx(&half) == D && fc_net_dc(&half) == C);
    /* float against double, then gradients */
    float *pf = malloc(P * sizeof(float));
    double *pd = malloc(P * sizeof(double)), *g = malloc(P * sizeof(double));
    fc_net net;
    fc_net_bind(&net, &nc, pf);
    fc_rng rng;
    fc_rng_seed(&rng, 300 + kind);
    fc_net_init(&net, &rng);
    /* off the initialization, where adaLN-Zero's zeros leave all but the
     * output layer without gradient */
    for (size_t i = 0; i < P; i++) pd[i] = pf[i] += (float)(0.05 * (fc_rng_uniform(&rng) - 0.5));
    float tf[2], xf[16], cf[6], yf[16];
    double t[2], x[16], c[6], r[16], y[16], dx[16], dc[6];
    for (int i = 0; i < B; i++) t[i] = tf[i] = (float)fc_rng_uniform(&rng);
    for (int i = 0; i < B * D; i++) x[i] = xf[i] = (float)fc_rng_normal(&rng), r[i] = fc_rng_normal(&rng);
    for (int i = 0; i < B * C; i++) c[i] = cf[i] = (float)fc_rng_normal(&rng);
    fc_net_ws *wf = fc_net_ws_new(&nc, B);
    fc_net_ws_ref *wd = fc_net_ws_new_ref(&nc, B);
    fc_net_forward(&net, wf, yf, tf, xf, cf, B);
    fc_net_forward_ref(&nc, pd, wd, y, t, x, c, B);
    const double ys = s_max_abs(y, (size_t)B * D);
    for (int i = 0; i < B * D; i++) ASSERT_MSG(fabs(yf[i] - y[i]) <= 1e-5 * (1 + ys), "%s y[%d]: %g vs %g", desc, i, yf[i], y[i]);
    fc_net_backward_ref(&nc, pd, wd, g, 0, dx, dc, r, B);
    /* without parameter gradients (NULL, guidance's vector-Jacobian product):
     * the same dx and dc, bit for bit, in float and in the reference */
    {
      float *gf = malloc(P * sizeof(float)), rf[16], dxf[16], dcf[6], dxn[16], dcn[6];
      double dxr[16], dcr[6];
      for (int i = 0; i < B * D; i++) rf[i] = (float)r[i];
      fc_net_forward(&net, wf, yf, tf, xf, cf, B);
      fc_net_backward(&net, wf, gf, 0, dxf, dcf, rf, B);
      fc_net_forward(&net, wf, yf, tf, xf, cf, B);
      fc_net_backward(&net, wf, NULL, 0, dxn, dcn, rf, B);
      ASSERT_MSG(!memcmp(dxf, dxn, sizeof(float) * B * D) && !memcmp(dcf, dcn, sizeof(float) * B * C),
                 "%s: backward without parameter gradients changed dx or dc", desc);
      fc_net_forward(&net, wf, yf, tf, xf, cf, B);
      fc_net_backward(&net, wf, NULL, 0, dxn, NULL, rf, B);
      ASSERT_MSG(!memcmp(dxf, dxn, sizeof(float) * B * D), "%s: dx alone differs", desc);
      fc_net_backward_ref(&nc, pd, wd, NULL, 0, dxr, dcr, r, B);
      ASSERT_MSG(!memcmp(dx, dxr, sizeof(double) * B * D) && !memcmp(dc, dcr, sizeof(double) * B * C),
                 "%s: the reference without parameter gradients changed dx or dc", desc);
      free(gf);
    }
#define S_LOSS(out)                                                    \
  do {                                                                 \
    fc_net_forward_ref(&nc, pd, wd, y, t, x, c, B);                    \
    out = 0;                                                           \
    for (int i_ = 0; i_ < B * D; i_++) out += r[i_] * y[i_];           \
  } while (0)
    /* 300 sampled parameters, then every x and c */
    const double h = 1e-5;
    double *vars[3] = {pd, x, c};
    const double *analytic[3] = {g, dx, dc};
    const size_t counts[3] = {300, (size_t)B * D, (size_t)B * C};
    static const char *const names[3] = {"param", "x", "c"};
    int nonzero = 0;
    for (int v = 0; v < 3; v++)
      for (size_t k = 0; k < counts[v]; k++) {
        const size_t i = v ? k : (size_t)fc_rng_below(&rng, P);
        double keep = vars[v][i], lp, lm;
        vars[v][i] = keep + h; S_LOSS(lp);
        vars[v][i] = keep - h; S_LOSS(lm);
        vars[v][i] = keep;
        const double num = (lp - lm) / (2 * h);
        ASSERT_MSG(s_grad_close(analytic[v][i], num), "%s %s[%zu]: analytic %.12g numeric %.12g", desc, names[v], i,
                   analytic[v][i], num);
        nonzero += v == 0 && fabs(analytic[v][i]) > 1e-9;
      }
    ASSERT_MSG(nonzero > 30, "%s: %d of 300 sampled gradients are nonzero", desc, nonzero);
#undef S_LOSS
    printf("%s: %zu parameters, %d tensors, matched for 2 copies: %zu\n", desc, P, nt, fc_net_nparams(&half));
    fc_net_ws_free(wf);
    fc_net_ws_free_ref(wd);
    free(ti); free(pf); free(pd); free(g);
  }
  return 0;
}

/* A bare "lfm" file image of one model whose lfm.config section is written
 * here field by field: the given section version (1: no network kind; 2:
 * `kind`, then the mlp's fields), its params from m. */
static unsigned char *s_lfm_image(const fc_lfm *m, uint32_t version, int32_t kind, size_t *n) {
  const fc_lfm_config *c = &m->cfg;
  const fc_mlp_config *net = &c->net.mlp;
  fc_ckpt_buf b = {0};
  fc_ckpt_put_u32(&b, version);
  fc_ckpt_put_i32(&b, c->nblocks);
  if (version >= 2) fc_ckpt_put_i32(&b, kind);
  const int32_t iv[12] = {net->dx,     net->dc,     net->width, net->depth,  net->temb, net->act,
                          net->cond,   c->interp,   c->coupling, c->sampler, c->steps,  c->objective};
  for (int i = 0; i < 12; i++) fc_ckpt_put_i32(&b, iv[i]);
  fc_ckpt_put_f32(&b, c->gamma_c);
  fc_ckpt_put_f32(&b, c->gamma_rho);
  fc_ckpt_writer *w = fc_ckpt_writer_new("lfm");
  fc_ckpt_add_buf(w, "lfm.config", &b);
  fc_ckpt_add(w, "lfm.params", m->params, fc_lfm_nparams(m) * sizeof(float));
  char path[] = "/tmp/lfp_cfgv_XXXXXX", err[256];
  int fd = mkstemp(path);
  close(fd);
  unsigned char *bytes = NULL;
  if (fc_ckpt_write(w, path, err, sizeof(err)) == 0) bytes = s_slurp(path, n);
  fc_ckpt_writer_free(w);
  unlink(path);
  return bytes;
}

TEST(lfm_config_section_versions_and_network_kinds) {
  fc_lfm *m = s_random_model(3);
  char err[512];
  /* what this lfp writes: version 2, the kind between nblocks and the mlp's fields */
  fc_ckpt_writer *w = fc_ckpt_writer_new("lfm");
  fc_lfm_save(m, w, NULL);
  char path[] = "/tmp/lfp_cfg2_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  ASSERT(fc_ckpt_write(w, path, err, sizeof(err)) == 0);
  fc_ckpt_writer_free(w);
  size_t n2 = 0;
  unsigned char *written = s_slurp(path, &n2);
  unlink(path);
  size_t n = 0;
  unsigned char *v2 = s_lfm_image(m, 2, FC_NET_MLP, &n);
  ASSERT(v2 && written && n == n2 && memcmp(v2, written, n) == 0); /* the layout fc_flow.h documents */
  free(written);
  /* version 1 (no kind) loads as the same mlp model */
  unsigned char *v1 = s_lfm_image(m, 1, 0, &n);
  ASSERT(v1);
  fc_ckpt *ck = fc_ckpt_parse(v1, n, "v1.lfp", "lfm", err, sizeof(err));
  ASSERT_MSG(ck, "%s", err);
  fc_lfm *r = fc_lfm_load(ck, NULL, err, sizeof(err));
  ASSERT_MSG(r, "%s", err);
  ASSERT_EQ_INT(r->cfg.net.kind, FC_NET_MLP);
  ASSERT(memcmp(&r->cfg, &m->cfg, sizeof(m->cfg)) == 0);
  ASSERT(memcmp(r->params, m->params, fc_lfm_nparams(m) * sizeof(float)) == 0);
  fc_lfm_free(r);
  fc_ckpt_free(ck);
  free(v1);
  /* an unknown kind number is refused with a sentence, before its fields are read */
  const int32_t kinds[] = {FC_NET_KINDS, 7, -1, INT32_MAX};
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
    unsigned char *bad = s_lfm_image(m, 2, kinds[i], &n);
    ASSERT(bad);
    ck = fc_ckpt_parse(bad, n, "kind.lfp", "lfm", err, sizeof(err));
    ASSERT_MSG(ck, "%s", err);
    ASSERT(fc_lfm_load(ck, NULL, err, sizeof(err)) == NULL);
    char want[128];
    snprintf(want, sizeof(want), "has network kind %d, which this lfp does not know (it knows mlp", (int)kinds[i]);
    ASSERT_MSG(strstr(err, want) && strstr(err, "mismatched") && strstr(err, "'lfm.config'"), "%s", err);
    printf("| lfm.config with network kind %d | %s |\n", (int)kinds[i], err);
    fc_ckpt_free(ck);
    free(bad);
  }
  /* a version from the future, and a kind's field out of its bounds */
  unsigned char *bad = s_lfm_image(m, 4, FC_NET_MLP, &n);
  ck = fc_ckpt_parse(bad, n, "v4.lfp", "lfm", err, sizeof(err));
  ASSERT(ck && fc_lfm_load(ck, NULL, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "section 'lfm.config' has version 4, this lfp reads 1 to 3");
  fc_ckpt_free(ck);
  free(bad);
  fc_lfm *wide = s_random_model(4);
  wide->cfg.net.mlp.act = (fc_act)5; /* written as is by s_lfm_image */
  bad = s_lfm_image(wide, 2, FC_NET_MLP, &n);
  ck = fc_ckpt_parse(bad, n, "act.lfp", "lfm", err, sizeof(err));
  ASSERT(ck && fc_lfm_load(ck, NULL, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "has act = 5, outside 0..2");
  fc_ckpt_free(ck);
  free(bad);
  fc_lfm_free(wide);
  free(v2);
  fc_lfm_free(m);
  return 0;
}



/* ---------- Diffusion Flow Matching (seed 002) ---------- */

TEST(dfm_loss_gradients_and_float_path) {
  /* the bridge loss: its gradient against central differences of the
   * double reference, the float path against the reference, and sigma = 0
   * against linear flow matching (the same regression) */
  fc_net_config cfg = {.kind = FC_NET_MLP,
                       .mlp = {.dx = 2, .dc = 3, .width = 4, .depth = 1, .temb = 4, .act = FC_ACT_GELU, .cond = FC_COND_FILM}};
  const int B = 4;
  const size_t P = fc_net_nparams(&cfg);
  fc_rng rng;
  fc_rng_seed(&rng, 21);
  double *p = malloc(P * sizeof(double)), *g = calloc(P, sizeof(double));
  double t[4], x0[8], x1[8], e[8], c[12];
  s_fill_uniform(&rng, p, P, -0.8, 0.8);
  s_fill_uniform(&rng, t, 4, 0.05, 1.0);
  s_fill_uniform(&rng, x0, 8, -2.0, 2.0);
  s_fill_uniform(&rng, x1, 8, -2.0, 2.0);
  s_fill_uniform(&rng, e, 8, -2.0, 2.0);
  s_fill_uniform(&rng, c, 12, -1.0, 1.0);
  const double sigma = 0.7;
  fc_net_ws_ref *ws = fc_net_ws_new_ref(&cfg, B);
  const double l = fc_dfm_loss_ref(&cfg, p, ws, g, sigma, t, x0, x1, e, c, B);
  const double h = 1e-5;
  for (size_t i = 0; i < P; i++) {
    double keep = p[i];
    p[i] = keep + h;
    double lp = fc_dfm_loss_ref(&cfg, p, ws, NULL, sigma, t, x0, x1, e, c, B);
    p[i] = keep - h;
    double lm = fc_dfm_loss_ref(&cfg, p, ws, NULL, sigma, t, x0, x1, e, c, B);
    p[i] = keep;
    double num = (lp - lm) / (2 * h);
    ASSERT_MSG(s_grad_close(g[i], num), "param %zu: analytic %.12g numeric %.12g", i, g[i], num);
  }
  /* float network on the same values */
  float pf[4096], gf[4096], tf[4], x0f[8], x1f[8], ef[8], cf[12];
  ASSERT(P <= 4096);
  for (size_t i = 0; i < P; i++) pf[i] = (float)p[i];
  for (int i = 0; i < 4; i++) tf[i] = (float)t[i];
  for (int i = 0; i < 8; i++) x0f[i] = (float)x0[i], x1f[i] = (float)x1[i], ef[i] = (float)e[i];
  for (int i = 0; i < 12; i++) cf[i] = (float)c[i];
  fc_net net;
  fc_net_bind(&net, &cfg, pf);
  fc_fm_ws *fws = fc_fm_ws_new(&cfg, B);
  const double lf = fc_dfm_loss(&net, fws, gf, sigma, tf, x0f, x1f, ef, cf, B);
  ASSERT_MSG(fabs(lf - l) <= 1e-4 * fabs(l), "float %.9g, reference %.9g", lf, l);
  for (size_t i = 0; i < P; i++) ASSERT_MSG(fabs(gf[i] - g[i]) <= 1e-3 * (fabs(g[i]) + 1e-3), "grad %zu", i);
  /* sigma = 0: the bridge is the straight line, the target x1 - x0 */
  const double l0 = fc_dfm_loss(&net, fws, NULL, 0.0, tf, x0f, x1f, ef, cf, B);
  const double lfm = fc_fm_loss(&net, fws, NULL, FC_INTERP_LINEAR, tf, x0f, x1f, cf, B);
  ASSERT_MSG(fabs(l0 - lfm) <= 1e-5 * fabs(lfm), "dfm(0) %.9g, fm %.9g", l0, lfm);
  fc_fm_ws_free(fws);
  fc_net_ws_free_ref(ws);
  free(p);
  free(g);
  return 0;
}

TEST(dfm_8gaussians_end_to_end_and_checkpoint) {
  /* DFM on 8 Gaussians, sampled by Euler-Maruyama at NFE 32: every mode, W2
   * under 2 x the floor (the threshold and its reasoning as for LFM above);
   * with 2 steps the error is larger (the paper's claim: it grows with the
   * step size). The model round-trips through a file (config section
   * version 3: sigma and delta kept), a flow is still written as version 2,
   * and a version-2 section that names the DFM objective is refused. */
  fc_toy_config tc;
  fc_toy_config_default(&tc);
  tc.dist = FC_TOY_8GAUSSIANS;
  tc.steps = 2000;
  tc.width = 128;
  tc.train_size = 10000;
  tc.dfm = 1;
  tc.nsweep = 2;
  tc.sweep[0] = 2;
  tc.sweep[1] = 32;
  fc_toy_result r;
  char err[256];
  ASSERT_MSG(fc_toy_run(&tc, 1, &r, err, sizeof(err)) == 0, "%s", err);
  printf("DFM: W2 %.4f, floor %.4f, modes %d/%d; W2 at NFE 2 %.4f, at 32 %.4f\n", r.w2, r.w2_floor, r.modes_covered,
         r.modes_total, r.sweep_w2[0], r.sweep_w2[1]);
  ASSERT_EQ_INT(r.nfe, 32);
  ASSERT_EQ_INT(r.modes_covered, 8);
  ASSERT_MSG(r.w2 < 2.0 * r.w2_floor, "W2 %.4f vs floor %.4f", r.w2, r.w2_floor);
  ASSERT_MSG(r.sweep_w2[0] > 1.5 * r.sweep_w2[1], "NFE 2 %.4f vs 32 %.4f", r.sweep_w2[0], r.sweep_w2[1]);

  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 2, 0);
  lc.nblocks = 1;
  lc.objective = FC_OBJ_DFM;
  lc.dfm_sigma = 0.3f;
  lc.dfm_delta = 0.05f;
  lc.steps = 16;
  fc_lfm *m = fc_lfm_new(&lc, err, sizeof(err));
  ASSERT_MSG(m, "%s", err);
  char path[] = "/tmp/lfp_dfm_XXXXXX";
  close(mkstemp(path));
  ASSERT(fc_lfm_save_file(m, path, err, sizeof(err)) == 0);
  fc_lfm *q = fc_lfm_load_file(path, err, sizeof(err));
  ASSERT_MSG(q, "%s", err);
  ASSERT(q->cfg.objective == FC_OBJ_DFM && q->cfg.dfm_sigma == 0.3f && q->cfg.dfm_delta == 0.05f);
  ASSERT_EQ_INT(fc_lfm_nfe(q, FC_SAMPLER_RK4, 16), 16);
  fc_lfm_free(q);
  /* the version word of the written section */
  fc_ckpt *ck = fc_ckpt_read(path, "lfm", err, sizeof(err));
  size_t sz;
  const unsigned char *sec = fc_ckpt_get(ck, "lfm.config", &sz);
  uint32_t ver;
  memcpy(&ver, sec, 4);
  ASSERT_EQ_INT((int)ver, 3);
  fc_ckpt_free(ck);
  /* a DFM model is one block; its sigma and delta are bounded */
  lc.nblocks = 2;
  ASSERT(fc_lfm_new(&lc, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "DFM objective has one block");
  lc.nblocks = 1;
  lc.dfm_delta = 0.0f;
  ASSERT(fc_lfm_new(&lc, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "delta");
  fc_lfm_free(m);
  /* a flow: version 2 */
  fc_lfm_config_default(&lc, 2, 0);
  m = fc_lfm_new(&lc, err, sizeof(err));
  ASSERT(fc_lfm_save_file(m, path, err, sizeof(err)) == 0);
  ck = fc_ckpt_read(path, "lfm", err, sizeof(err));
  sec = fc_ckpt_get(ck, "lfm.config", &sz);
  memcpy(&ver, sec, 4);
  ASSERT_EQ_INT((int)ver, 2);
  fc_ckpt_free(ck);
  fc_lfm_free(m);
  unlink(path);
  return 0;
}



/* ---------- the sampler's state bound ---------- */

static void s_one_net_field_calm(void *ctx, double t, const float *x, float *v, int B) {
  (void)ctx;
  for (int i = 0; i < B * 3; i++) v[i] = (float)(0.5 * x[i] - t);
}

static void s_explosive(void *ctx, double t, const float *x, float *v, int B) {
  (void)ctx, (void)t;
  for (int i = 0; i < B * 3; i++) v[i] = -400.0f * x[i] * fabsf(x[i]); /* integrated t: 1 -> 0, it blows up */
}

TEST(ode_state_bound_keeps_a_stiff_field_finite) {
  /* unbounded, RK4 overflows to a non-finite state; with a bound every value
   * stays within it and the clamps are counted; a bound the state never
   * reaches changes nothing, bit for bit */
  fc_ode_ws *ws = fc_ode_ws_new(2, 3);
  float x[6] = {0.5f, -0.3f, 1.0f, 0.1f, -2.0f, 0.7f}, y[6];
  memcpy(y, x, sizeof(x));
  fc_ode_integrate(s_explosive, NULL, ws, FC_SAMPLER_RK4, y, 2, 1.0, 0.0, 8);
  int finite = 1;
  for (int i = 0; i < 6; i++) finite &= isfinite(y[i]) != 0;
  ASSERT(!finite);
  ws->bound = 5.0f;
  memcpy(y, x, sizeof(x));
  fc_ode_integrate(s_explosive, NULL, ws, FC_SAMPLER_RK4, y, 2, 1.0, 0.0, 8);
  for (int i = 0; i < 6; i++) ASSERT_MSG(isfinite(y[i]) && fabsf(y[i]) <= 5.0f, "%d: %g", i, y[i]);
  ASSERT(ws->clamped > 0);
  /* a calm field: the same with and without a (distant) bound */
  fc_ode_ws *free_ws = fc_ode_ws_new(2, 3);
  float a[6], b[6];
  memcpy(a, x, sizeof(x));
  memcpy(b, x, sizeof(x));
  ws->bound = 100.0f;
  ws->clamped = 0;
  fc_ode_integrate(s_one_net_field_calm, NULL, ws, FC_SAMPLER_RK4, a, 2, 1.0, 0.0, 8);
  fc_ode_integrate(s_one_net_field_calm, NULL, free_ws, FC_SAMPLER_RK4, b, 2, 1.0, 0.0, 8);
  ASSERT(!memcmp(a, b, sizeof(a)) && ws->clamped == 0);
  fc_ode_ws_free(free_ws);
  fc_ode_ws_free(ws);
  return 0;
}

/* ---------- guided generation (real-time chunking) ---------- */

TEST(guided_sampling_pulls_towards_its_target_and_w0_is_plain) {
  /* W = 0: exactly fc_lfm_sample (no guidance); W = 1: the samples move
   * towards y, the closer the larger beta; a 2-block chain (the target
   * scaled per block) and 1 block */
  for (int nb = 1; nb <= 2; nb++) {
    fc_lfm_config lc;
    fc_lfm_config_default(&lc, 6, 3);
    lc.nblocks = nb;
    lc.net.mlp.width = 16;
    lc.net.mlp.depth = 1;
    lc.steps = 4;
    char err[256];
    fc_lfm *m = fc_lfm_new(&lc, err, sizeof(err));
    ASSERT_MSG(m, "%s", err);
    fc_rng r;
    fc_rng_seed(&r, 3);
    for (size_t i = 0; i < fc_lfm_nparams(m); i++) m->params[i] = 0.3f * (float)fc_rng_normal(&r);
    const int B = 5, D = 6;
    float z[30], c[15], y[30], w0[30], w1[30], a[30], b[30], g1[30], g5[30];
    fc_rng_normal_fill(&r, z, 30);
    fc_rng_normal_fill(&r, c, 15);
    for (int i = 0; i < 30; i++) y[i] = 0.5f * (float)sin(i), w0[i] = 0.0f, w1[i] = 1.0f;
    fc_lfm_ws *ws = fc_lfm_ws_new(m, B);
    fc_guide_ws *gws = fc_guide_ws_new(m, B);
    memcpy(a, z, sizeof(z));
    fc_lfm_sample(m, ws, a, c, B, FC_SAMPLER_RK4, 4, NULL);
    memcpy(b, z, sizeof(z));
    fc_lfm_sample_guided(m, ws, gws, b, c, B, FC_SAMPLER_RK4, 4, y, w0, 5.0f);
    ASSERT(!memcmp(a, b, sizeof(a)));
    memcpy(g1, z, sizeof(z));
    fc_lfm_sample_guided(m, ws, gws, g1, c, B, FC_SAMPLER_RK4, 4, y, w1, 1.0f);
    memcpy(g5, z, sizeof(z));
    fc_lfm_sample_guided(m, ws, gws, g5, c, B, FC_SAMPLER_RK4, 4, y, w1, 5.0f);
    double d0 = 0, d1 = 0, d5 = 0;
    for (int i = 0; i < B * D; i++) {
      d0 += (a[i] - y[i]) * (a[i] - y[i]);
      d1 += (g1[i] - y[i]) * (g1[i] - y[i]);
      d5 += (g5[i] - y[i]) * (g5[i] - y[i]);
    }
    printf("%d block(s): distance to the target: plain %.4f, beta 1 %.4f, beta 5 %.4f\n", nb, sqrt(d0), sqrt(d1), sqrt(d5));
    ASSERT_MSG(d5 < d1 && d1 < d0 && d5 < 0.25 * d0, "plain %g, beta 1 %g, beta 5 %g", d0, d1, d5);
    fc_guide_ws_free(gws);
    fc_lfm_ws_free(ws);
    fc_lfm_free(m);
  }
  return 0;
}

/* ---------- distillation ---------- */

/* generate n samples of model m from the noise z (copied), (sampler, steps per block) */
static float *s_generate(const fc_lfm *m, const float *z, int n, fc_sampler smp, int steps) {
  const int D = fc_net_dx(&m->cfg.net);
  float *x = malloc((size_t)n * D * sizeof(float));
  memcpy(x, z, (size_t)n * D * sizeof(float));
  fc_lfm_ws *ws = fc_lfm_ws_new(m, 256);
  fc_lfm_generate(m, ws, x, NULL, n, smp, steps);
  fc_lfm_ws_free(ws);
  return x;
}

TEST(distilled_student_matches_its_teacher_in_one_step_per_block) {
  /* A 2-block LFM teacher on 8 Gaussians (RK4, 4 steps per block: NFE 32),
   * distilled block by block into one Euler step each (NFE 2). From the same
   * noise, W2 between the student's and the teacher's samples must be far
   * below what the teacher gives with the same 2 evaluations (Euler, 1 step
   * per block: the naive few-step baseline) and below 0.25, a tenth of the
   * distance between neighbouring centres (2.16 for radius 2.83), with fresh
   * pairs and with a pool of them. Measured: naive 2.16, student 0.025
   * (fresh) and 0.029 (a pool of 4096 pairs per block). */
  const int n = 2000, ne = 400;
  float *data = malloc((size_t)n * 2 * sizeof(float));
  fc_rng dr;
  fc_rng_seed(&dr, 11);
  fc_toy_sample(FC_TOY_8GAUSSIANS, &dr, data, NULL, n);
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 2, 0);
  lc.nblocks = 2;
  lc.net.mlp.width = 64;
  lc.net.mlp.depth = 2;
  lc.steps = 4;
  char err[256];
  fc_lfm *teacher = fc_lfm_new(&lc, err, sizeof(err));
  ASSERT_MSG(teacher, "%s", err);
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.steps = 3000;
  tc.batch = 256;
  tc.opt.warmup = 100;
  fc_lfm_trainer *tr = fc_lfm_trainer_new(teacher, data, NULL, (size_t)n, &tc, err, sizeof(err));
  ASSERT_MSG(tr, "%s", err);
  while (!fc_lfm_trainer_done(tr)) fc_lfm_trainer_step(tr);
  fc_lfm_trainer_free(tr);

  fc_lfm_config sc = teacher->cfg;
  sc.sampler = FC_SAMPLER_EULER;
  sc.steps = 1;
  fc_lfm *student = NULL;
  float *z = malloc((size_t)ne * 2 * sizeof(float));
  fc_rng zr;
  fc_rng_seed(&zr, 99);
  fc_rng_normal_fill(&zr, z, (size_t)ne * 2);
  float *xt = s_generate(teacher, z, ne, FC_SAMPLER_RK4, 4);
  float *xn = s_generate(teacher, z, ne, FC_SAMPLER_EULER, 1);
  const double w_naive = fc_w2_exact(xn, xt, ne, 2, NULL);
  fc_train_config dc;
  /* fresh pairs every step, then a pool of 4096 per block (lfp distill --pairs) */
  for (int pooled = 0; pooled < 2; pooled++) {
    fc_lfm_free(student);
    student = fc_lfm_new(&sc, err, sizeof(err));
    ASSERT_MSG(student, "%s", err);
    fc_train_config_default(&dc);
    dc.steps = 2000;
    dc.opt.warmup = 100;
    dc.seed = 5;
    dc.teacher = teacher;
    dc.teacher_sampler = FC_SAMPLER_RK4;
    dc.teacher_steps = 4;
    dc.teacher_pairs = pooled ? 4096 : 0;
    tr = fc_lfm_trainer_new(student, data, NULL, (size_t)n, &dc, err, sizeof(err));
    ASSERT_MSG(tr, "%s", err);
    fc_lfm_trainer_set_valid(tr, data, NULL, 500);
    double v0 = NAN;
    while (!fc_lfm_trainer_done(tr)) {
      fc_lfm_trainer_step(tr);
      if (fc_lfm_trainer_steps_done(tr) == 1) v0 = fc_lfm_trainer_valid_loss(tr);
    }
    const double v1 = fc_lfm_trainer_valid_loss(tr);
    fc_lfm_trainer_free(tr);
    /* the student's block 1 started as the teacher's: its one-step error fell */
    ASSERT_MSG(isfinite(v0) && v1 < 0.5 * v0, "validation loss %.4f -> %.4f", v0, v1);
    float *xs = s_generate(student, z, ne, FC_SAMPLER_EULER, 1);
    const double w_student = fc_w2_exact(xs, xt, ne, 2, NULL);
    free(xs);
    printf("W2 to the teacher (NFE 32): student (NFE 2, %s) %.4f, teacher at NFE 2 %.4f\n",
           pooled ? "pool of 4096 pairs" : "fresh pairs", w_student, w_naive);
    ASSERT_MSG(w_student < 0.25 && w_student < 0.3 * w_naive, "student %.4f, naive %.4f", w_student, w_naive);
  }
  ASSERT_EQ_INT(fc_lfm_nfe(student, FC_SAMPLER_EULER, 1), 2);

  /* a mismatched student or a regression teacher is refused with a sentence */
  fc_lfm_config bad = sc;
  bad.net.mlp.width = 32;
  fc_lfm *other = fc_lfm_new(&bad, err, sizeof(err));
  ASSERT(other);
  err[0] = 0;
  ASSERT(fc_lfm_trainer_new(other, data, NULL, (size_t)n, &dc, err, sizeof(err)) == NULL);
  ASSERT_MSG(strstr(err, "teacher's chain"), "%s", err);
  fc_lfm_free(other);

  free(z); free(xt); free(xn); free(data);
  fc_lfm_free(student);
  fc_lfm_free(teacher);
  return 0;
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(rng_determinism),          TEST_ENTRY(activation_gradients),
      TEST_ENTRY(mlp_gradients_film),       TEST_ENTRY(mlp_gradients_concat),
      TEST_ENTRY(fm_loss_gradients),        TEST_ENTRY(interpolant_derivatives),
      TEST_ENTRY(mlp_blas_matches_reference),
      TEST_ENTRY(non_finite_inputs_propagate_without_undefined_behaviour), TEST_ENTRY(adamw_step_by_hand),
      TEST_ENTRY(sampler_convergence_order), TEST_ENTRY(lfm_single_block_is_fm),
      TEST_ENTRY(lfm_training_is_deterministic), TEST_ENTRY(training_across_thread_counts),
      TEST_ENTRY(trainer_resume_is_bit_identical), TEST_ENTRY(sharded_training_equals_one_trainer), TEST_ENTRY(regression_objective_and_validation_loss),
      TEST_ENTRY(lfm_gamma_schedule),
      TEST_ENTRY(checkpoint_round_trip_and_damage), TEST_ENTRY(crc32_known_value),
      TEST_ENTRY(w2_exact_assignment),      TEST_ENTRY(lfm_8gaussians_end_to_end),
      TEST_ENTRY(film_with_depth_0_is_refused), TEST_ENTRY(ode_steps_divide_evenly_among_blocks),
      TEST_ENTRY(validation_loss_measures_the_block_it_names),
      TEST_ENTRY(crc32_constant_table_matches_the_bitwise_crc), TEST_ENTRY(section_cursor_bounds_every_field),
      TEST_ENTRY(hostile_train_state_is_refused), TEST_ENTRY(config_check_enforces_the_loader_bounds),
      TEST_ENTRY(net_interface_is_the_mlp_bit_for_bit), TEST_ENTRY(net_tensors_cover_the_parameters_exactly_once),
      TEST_ENTRY(net_config_names_checks_and_descriptions), TEST_ENTRY(net_every_kind_against_its_reference),
      TEST_ENTRY(lfm_config_section_versions_and_network_kinds),
      TEST_ENTRY(distilled_student_matches_its_teacher_in_one_step_per_block),
      TEST_ENTRY(ode_state_bound_keeps_a_stiff_field_finite),
      TEST_ENTRY(guided_sampling_pulls_towards_its_target_and_w0_is_plain), TEST_ENTRY(dfm_loss_gradients_and_float_path), TEST_ENTRY(dfm_8gaussians_end_to_end_and_checkpoint),
  };
  fc_par_init(0); /* as lfp does: the pool sized from the CPUs, OpenBLAS one thread per call */
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
