/* fc_toy: 2-D distributions (as in FFJORD's and the LFM authors' toy code) and
 * the train / sample / measure experiment of `lfp toy`. */
#include "fc_toy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fc_ae.h"
#include "fc_base.h"
#include "fc_metric.h"

static const char *const s_names[] = {"8gaussians", "moons", "checkerboard", "rings"};
static const int s_nmodes[] = {8, 2, 8, 4};

const char *fc_toy_dist_name(fc_toy_dist d) { return (unsigned)d < FC_TOY_NDIST ? s_names[d] : "?"; }
int fc_toy_dist_parse(const char *s) { return fc_name_index(s, s_names, FC_TOY_NDIST); }
int fc_toy_dist_modes(fc_toy_dist d) { return s_nmodes[d]; }

void fc_toy_sample(fc_toy_dist d, fc_rng *r, float *x, int *label, int n) {
  for (int i = 0; i < n; i++) {
    double a, b;
    int lab;
    switch (d) {
      case FC_TOY_8GAUSSIANS: { /* 8 centres on a circle of radius 4/sqrt2, std 0.5/sqrt2 */
        lab = (int)fc_rng_below(r, 8);
        double th = 2.0 * FC_PI * lab / 8.0;
        a = (4.0 * cos(th) + 0.5 * fc_rng_normal(r)) / 1.414;
        b = (4.0 * sin(th) + 0.5 * fc_rng_normal(r)) / 1.414;
        break;
      }
      case FC_TOY_MOONS: { /* two interleaved half circles, noise 0.1, centred and x2 */
        lab = (int)fc_rng_below(r, 2);
        double th = FC_PI * fc_rng_uniform(r);
        a = lab ? 1.0 - cos(th) : cos(th);
        b = lab ? 0.5 - sin(th) : sin(th);
        a = (a + 0.1 * fc_rng_normal(r) - 0.5) * 2.0;
        b = (b + 0.1 * fc_rng_normal(r) - 0.25) * 2.0;
        break;
      }
      case FC_TOY_CHECKERBOARD: { /* 8 occupied unit cells of a 4x4 board, x2 */
        double x1 = fc_rng_uniform(r) * 4.0 - 2.0;
        double x2 = fc_rng_uniform(r) - 2.0 * (double)fc_rng_below(r, 2);
        int col = (int)floor(x1);
        x2 += (double)(((col % 2) + 2) % 2);
        int ix = col + 2, iy = (int)floor(x2) + 2;
        lab = ix * 2 + iy / 2;
        a = 2.0 * x1;
        b = 2.0 * x2;
        break;
      }
      default: { /* 4 concentric rings of radii 3, 2.25, 1.5, 0.75, noise 0.08 */
        lab = (int)fc_rng_below(r, 4);
        double rad = 3.0 * (1.0 - 0.25 * lab), th = 2.0 * FC_PI * fc_rng_uniform(r);
        a = rad * cos(th) + 0.08 * fc_rng_normal(r);
        b = rad * sin(th) + 0.08 * fc_rng_normal(r);
        break;
      }
    }
    x[2 * i] = (float)a;
    x[2 * i + 1] = (float)b;
    if (label) label[i] = lab;
  }
}

void fc_toy_config_default(fc_toy_config *tc) {
  tc->dist = FC_TOY_8GAUSSIANS;
  tc->steps = 6000;
  tc->batch = 256;
  tc->width = 256;
  tc->depth = 2;
  tc->train_size = 20000;
  tc->eval_size = 1000;
  tc->eval_reps = 5;
  tc->sampler = FC_SAMPLER_RK4;
  tc->ode_steps = 8;
  tc->lr = 2e-3f;
  tc->gamma_c = 0.2f;
  tc->gamma_rho = 1.25f;
  tc->seed = 0;
  tc->progress = NULL;
  tc->progress_ctx = NULL;
  tc->dfm = 0;
  tc->dfm_sigma = 0.5f;
  tc->dfm_delta = 0.02f;
  tc->nsweep = 0;
  tc->ambient = 2;
  tc->latent = 0;
  tc->ae_width = 256;
  tc->ae_steps = 4000;
}

/* ---------- the ambient embedding of latent runs ---------- */

#define S_PHI 6

/* Q (D, 6): Gram-Schmidt on fixed normal draws */
static void s_embed_matrix(double *Q, int D) {
  fc_rng r;
  fc_rng_seed(&r, 0x51ee7);
  for (int k = 0; k < S_PHI; k++) {
    double *q = Q + (size_t)k * D; /* column k, stored contiguously */
    for (int i = 0; i < D; i++) q[i] = fc_rng_normal(&r);
    for (int j = 0; j < k; j++) {
      const double *p = Q + (size_t)j * D;
      double dot = 0;
      for (int i = 0; i < D; i++) dot += p[i] * q[i];
      for (int i = 0; i < D; i++) q[i] -= dot * p[i];
    }
    double nn = 0;
    for (int i = 0; i < D; i++) nn += q[i] * q[i];
    for (int i = 0; i < D; i++) q[i] /= sqrt(nn);
  }
}

/* y (n, D) = Q phi(x (n, 2)) */
static void s_embed(const double *Q, int D, const float *x, float *y, int n) {
  for (int i = 0; i < n; i++) {
    const double a = x[2 * i], b = x[2 * i + 1];
    const double phi[S_PHI] = {a, b, sin(1.5 * a), sin(1.5 * b), 0.5 * cos(a + b), 0.25 * a * b};
    for (int d = 0; d < D; d++) {
      double v = 0;
      for (int k = 0; k < S_PHI; k++) v += Q[(size_t)k * D + d] * phi[k];
      y[(size_t)i * D + d] = (float)v;
    }
  }
}

/* x (n, 2) = the first two coordinates of Q^T y: the point on the sheet nearest y's projection */
static void s_project(const double *Q, int D, const float *y, float *x, int n) {
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 2; k++) {
      double v = 0;
      for (int d = 0; d < D; d++) v += Q[(size_t)k * D + d] * y[(size_t)i * D + d];
      x[2 * i + k] = (float)v;
    }
}

/* the toy's network: an mlp on the flow's points, no condition */
static void s_net_config(const fc_toy_config *tc, fc_net_config *net, int width) {
  /* the flow's points: the plane, the ambient space, or the latent */
  fc_net_config_default(net, FC_NET_MLP, tc->latent > 0 ? tc->latent : tc->ambient > 2 ? tc->ambient : 2, 0);
  net->mlp.width = width;
  net->mlp.depth = tc->depth;
}

int fc_toy_block_width(const fc_toy_config *tc, int blocks) {
  fc_net_config net;
  s_net_config(tc, &net, tc->width);
  fc_net_match(&net, &net, blocks);
  return net.mlp.width;
}

/* Label generated points by their nearest held-out target point (within tau);
 * a mode is covered when it receives at least a quarter of its fair share. */
static void s_modes(const float *gen, const float *tgt, const int *lab, int n, int modes,
                    int *covered, double *off) {
  const double tau = 0.5;
  int counts[16] = {0}, far = 0;
  for (int i = 0; i < n; i++) {
    double best = 1e300;
    int bl = -1;
    for (int j = 0; j < n; j++) {
      double dx = gen[2 * i] - tgt[2 * j], dy = gen[2 * i + 1] - tgt[2 * j + 1];
      double d = dx * dx + dy * dy;
      if (d < best) {
        best = d;
        bl = lab[j];
      }
    }
    if (best <= tau * tau) counts[bl]++;
    else far++;
  }
  *covered = 0;
  for (int m = 0; m < modes; m++)
    if (counts[m] >= 0.25 * n / modes) (*covered)++;
  *off = (double)far / n;
}

static void s_mean_sd(const double *v, int n, double *mean, double *sd) {
  double s = 0, ss = 0;
  for (int i = 0; i < n; i++) s += v[i];
  *mean = s / n;
  for (int i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
  *sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

int fc_toy_run(const fc_toy_config *tc, int blocks, fc_toy_result *out, char *err, size_t errsz) {
  memset(out, 0, sizeof(*out));
  if (blocks < 1 || blocks > 64) return fc_set_err(err, errsz, "blocks must be in 1..64 (got %d)", blocks), -1;
  if (tc->dfm && blocks != 1) return fc_set_err(err, errsz, "DFM is one block (got %d)", blocks), -1;
  if (tc->nsweep < 0 || tc->nsweep > 16) return fc_set_err(err, errsz, "at most 16 NFEs to sweep"), -1;
  if (tc->eval_reps < 1 || tc->eval_reps > 64)
    return fc_set_err(err, errsz, "evaluation repetitions must be in 1..64 (got %d)", tc->eval_reps), -1;
  if (tc->ambient != 2 && (tc->ambient < S_PHI || tc->ambient > 4096))
    return fc_set_err(err, errsz, "the ambient dimension is 2 (the plane) or in %d..4096, where the curved sheet fits "
                      "(got %d)", S_PHI, tc->ambient), -1;
  if (tc->latent < 0 || tc->latent > tc->ambient)
    return fc_set_err(err, errsz, "the latent dimension must be in 0..%d, the ambient dimension (got %d)", tc->ambient,
                      tc->latent), -1;
  if (tc->latent && tc->dfm) return fc_set_err(err, errsz, "latent runs are flows, not DFM"), -1;

  /* independent streams: training set, held-out targets (two sets per
   * repetition: A for the model, B for the noise floor), noise, training */
  fc_rng master, r_train, r_eval, r_z;
  fc_rng_seed(&master, tc->seed);
  fc_rng_split(&master, &r_train);
  fc_rng_split(&master, &r_eval);
  fc_rng_split(&master, &r_z);
  uint64_t train_seed = fc_rng_u64(&master);
  fc_rng r_sweep; /* split last: the streams above are those of runs without a sweep */
  fc_rng_split(&master, &r_sweep);

  const int n = tc->eval_size, R = tc->eval_reps, D = tc->ambient, dz = tc->latent ? tc->latent : D;
  const int emb = D > 2;
  double *Q = emb ? fc_malloc((size_t)D * S_PHI * sizeof(double)) : NULL;
  if (emb) s_embed_matrix(Q, D);
  /* 2-D points (p2 scratch), their ambient images (D values each), the flow's space (dz) */
  float *p2 = fc_malloc((size_t)(tc->train_size > n ? tc->train_size : n) * 2 * sizeof(float));
  float *train = fc_malloc((size_t)tc->train_size * D * sizeof(float));
  float *ta = fc_malloc((size_t)n * D * sizeof(float)), *tb = fc_malloc((size_t)n * D * sizeof(float));
  float *gen = fc_malloc((size_t)n * D * sizeof(float)), *ta2 = fc_malloc((size_t)n * 2 * sizeof(float));
  float *gen2 = fc_malloc((size_t)n * 2 * sizeof(float)), *gz = fc_malloc((size_t)n * dz * sizeof(float));
  float *za = fc_malloc((size_t)n * dz * sizeof(float));
  int *lab = fc_malloc((size_t)n * sizeof(int));
  fc_toy_sample(tc->dist, &r_train, emb ? p2 : train, NULL, tc->train_size);
  if (emb) s_embed(Q, D, p2, train, tc->train_size);
  out->w2_ae = out->w2_ae_sd = out->w2_latent = out->w2_latent_sd = out->ae_mse = NAN;
  /* a latent run: the autoencoder first, on the training points and a held-out set */
  fc_ae *ae = NULL;
  float *ztrain = NULL;
  if (tc->latent) {
    fc_ae_config ac;
    fc_ae_config_default(&ac, D, tc->latent);
    ac.width = tc->ae_width;
    if (fc_ae_config_check(&ac, err, errsz)) {
      free(Q); free(p2); free(train); free(ta); free(tb); free(gen); free(ta2); free(gen2); free(gz); free(za); free(lab);
      return -1;
    }
    ae = fc_ae_new(&ac);
    fc_rng r_ae;
    fc_rng_split(&r_train, &r_ae);
    fc_toy_sample(tc->dist, &r_ae, p2, NULL, n);
    if (emb) s_embed(Q, D, p2, ta, n);
    else memcpy(ta, p2, (size_t)n * 2 * sizeof(float));
    fc_ae_fit_config afc;
    fc_ae_fit_config_default(&afc);
    afc.steps = tc->ae_steps;
    afc.batch = tc->batch;
    afc.seed = train_seed ^ 0xae;
    fc_ae_fit_result afr;
    if (fc_ae_fit(ae, train, (size_t)tc->train_size, ta, (size_t)n, &afc, &afr, err, errsz)) {
      fc_ae_free(ae);
      free(Q); free(p2); free(train); free(ta); free(tb); free(gen); free(ta2); free(gen2); free(gz); free(za); free(lab);
      return -1;
    }
    out->ae_mse = afr.valid_mse;
    out->ae_params = fc_ae_nparams(&ac);
    ztrain = fc_malloc((size_t)tc->train_size * dz * sizeof(float));
    fc_ae_ws *aw = fc_ae_ws_new(&ac, 1024);
    for (int r = 0; r < tc->train_size; r += 1024) {
      const int b = tc->train_size - r < 1024 ? tc->train_size - r : 1024;
      fc_ae_encode_std(ae, aw, ztrain + (size_t)r * dz, train + (size_t)r * D, b);
    }
    fc_ae_ws_free(aw);
  }
  const float *flow_train = ztrain ? ztrain : train;

  fc_lfm_config lc;
  fc_lfm_config_default(&lc, dz, 0);
  lc.nblocks = blocks;
  out->width = blocks == 1 ? tc->width : fc_toy_block_width(tc, blocks);
  s_net_config(tc, &lc.net, out->width);
  lc.sampler = tc->sampler;
  lc.steps = tc->dfm ? tc->ode_steps * fc_sampler_stages(tc->sampler)
                     : fc_lfm_steps_per_block(tc->ode_steps, blocks, err, errsz);
  if (tc->dfm) {
    lc.objective = FC_OBJ_DFM;
    lc.dfm_sigma = tc->dfm_sigma;
    lc.dfm_delta = tc->dfm_delta;
  }
  out->method = tc->dfm ? "dfm" : blocks == 1 ? "fm" : "lfm";
  lc.gamma_c = tc->gamma_c;
  lc.gamma_rho = tc->gamma_rho;
  fc_lfm *model = lc.steps > 0 ? fc_lfm_new(&lc, err, errsz) : NULL;
  fc_train_config trc;
  fc_train_config_default(&trc);
  trc.steps = tc->steps;
  trc.batch = tc->batch;
  trc.opt.lr = tc->lr;
  trc.opt.warmup = 200;
  trc.seed = train_seed;
  fc_lfm_trainer *tr = model ? fc_lfm_trainer_new(model, flow_train, NULL, (size_t)tc->train_size, &trc, err, errsz) : NULL;
  if (!tr) {
    fc_lfm_free(model);
    fc_ae_free(ae);
    free(Q); free(p2); free(train); free(ta); free(tb); free(gen); free(ta2); free(gen2); free(gz); free(za); free(lab);
    free(ztrain);
    return -1;
  }

  /* train */
  char label[32], extra[64];
  snprintf(label, sizeof(label), "%s N=%d", out->method, blocks);
  if (tc->progress) tc->progress(tc->progress_ctx, label, 0, tc->steps, "");
  double t0 = fc_now(), ema_loss = 0.0;
  while (!fc_lfm_trainer_done(tr)) {
    double loss = fc_lfm_trainer_step(tr);
    ema_loss = fc_lfm_trainer_steps_done(tr) == 1 ? loss : 0.98 * ema_loss + 0.02 * loss;
    snprintf(extra, sizeof(extra), "block %d loss %.4f", fc_lfm_trainer_block(tr) + 1, ema_loss);
    if (tc->progress) tc->progress(tc->progress_ctx, label, fc_lfm_trainer_steps_done(tr), tc->steps, extra);
  }
  if (tc->progress) tc->progress(tc->progress_ctx, label, -1, tc->steps, "");
  out->train_s = fc_now() - t0;
  int64_t bad = fc_lfm_trainer_nonfinite(tr);
  fc_lfm_trainer_free(tr);

  /* generate and measure against held-out targets, R independent times
   * (in the ambient space; the modes on the plane) */
  fc_lfm_ws *ws = fc_lfm_ws_new(model, 1024);
  fc_ae_ws *aw = ae ? fc_ae_ws_new(&ae->cfg, n) : NULL;
  double w2[64], floor_[64], energy[64], off[64], w2ae[64], w2z[64];
  int covered_min = 1 << 30;
  for (int r = 0; r < R; r++) {
    fc_toy_sample(tc->dist, &r_eval, ta2, lab, n);
    fc_toy_sample(tc->dist, &r_eval, p2, NULL, n);
    if (emb) {
      s_embed(Q, D, ta2, ta, n);
      s_embed(Q, D, p2, tb, n);
    } else {
      memcpy(ta, ta2, (size_t)n * 2 * sizeof(float));
      memcpy(tb, p2, (size_t)n * 2 * sizeof(float));
    }
    float *g = ae ? gz : gen;
    fc_rng_normal_fill(&r_z, g, (size_t)n * dz);
    t0 = fc_now();
    fc_lfm_sample(model, ws, g, NULL, n, lc.sampler, lc.steps, &r_z);
    if (ae) fc_ae_decode_std(ae, aw, gen, gz, n);
    out->sample_s += (fc_now() - t0) / R;
    w2[r] = fc_w2_exact(gen, ta, n, D, NULL);
    floor_[r] = fc_w2_exact(tb, ta, n, D, NULL);
    energy[r] = fc_energy_distance(gen, n, ta, n, D);
    if (ae) {
      /* the autoencoder's part: B through it against A; the flow's: its latents against A's */
      fc_ae_encode_std(ae, aw, za, tb, n);
      fc_ae_decode_std(ae, aw, tb, za, n);
      w2ae[r] = fc_w2_exact(tb, ta, n, D, NULL);
      fc_ae_encode_std(ae, aw, za, ta, n);
      w2z[r] = fc_w2_exact(gz, za, n, dz, NULL);
    }
    if (emb) s_project(Q, D, gen, gen2, n);
    else memcpy(gen2, gen, (size_t)n * 2 * sizeof(float));
    int cov;
    s_modes(gen2, ta2, lab, n, fc_toy_dist_modes(tc->dist), &cov, &off[r]);
    covered_min = cov < covered_min ? cov : covered_min;
  }
  double dummy;
  s_mean_sd(w2, R, &out->w2, &out->w2_sd);
  s_mean_sd(floor_, R, &out->w2_floor, &out->w2_floor_sd);
  s_mean_sd(energy, R, &out->energy, &dummy);
  s_mean_sd(off, R, &out->off_mode, &dummy);
  if (ae) {
    s_mean_sd(w2ae, R, &out->w2_ae, &out->w2_ae_sd);
    s_mean_sd(w2z, R, &out->w2_latent, &out->w2_latent_sd);
  }
  out->modes_total = fc_toy_dist_modes(tc->dist);
  out->modes_covered = covered_min; /* in every repetition */
  if (!tc->dfm) fc_lfm_diagnose(model, ws, flow_train, NULL, n, lc.sampler, lc.steps, out->diag);
  /* the sweep: W2 against the number of first-order steps, R repetitions each */
  for (int i = 0; i < tc->nsweep; i++) {
    const int nfe = tc->sweep[i], per = tc->dfm ? nfe : nfe / blocks;
    out->sweep_w2[i] = NAN;
    if (nfe < 1 || (!tc->dfm && nfe % blocks)) continue;
    double sum = 0.0;
    for (int r = 0; r < R; r++) {
      fc_toy_sample(tc->dist, &r_sweep, p2, NULL, n);
      if (emb) s_embed(Q, D, p2, ta, n);
      else memcpy(ta, p2, (size_t)n * 2 * sizeof(float));
      float *g = ae ? gz : gen;
      fc_rng_normal_fill(&r_sweep, g, (size_t)n * dz);
      fc_lfm_sample(model, ws, g, NULL, n, FC_SAMPLER_EULER, per, &r_sweep);
      if (ae) fc_ae_decode_std(ae, aw, gen, gz, n);
      sum += fc_w2_exact(gen, ta, n, D, NULL);
    }
    out->sweep_w2[i] = sum / R;
  }
  fc_ae_ws_free(aw);
  fc_lfm_ws_free(ws);

  out->blocks = blocks;
  out->params = fc_lfm_nparams(model);
  out->steps = tc->steps;
  out->nfe = fc_lfm_nfe(model, lc.sampler, lc.steps);
  int rc = 0;
  if (bad) {
    fc_set_err(err, errsz, "training diverged: %lld steps had a non-finite loss", (long long)bad);
    rc = -1;
  }
  fc_lfm_free(model);
  fc_ae_free(ae);
  free(Q); free(p2); free(train); free(ta); free(tb); free(gen); free(ta2); free(gen2); free(gz); free(za); free(lab);
  free(ztrain);
  return rc;
}
