/* fc_toy: 2-D distributions (as in FFJORD's and the LFM authors' toy code) and
 * the train / sample / measure experiment of `lfp toy`. */
#include "fc_toy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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
}

/* the toy's network: an mlp on 2-D points, no condition */
static void s_net_config(const fc_toy_config *tc, fc_net_config *net, int width) {
  fc_net_config_default(net, FC_NET_MLP, 2, 0);
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

  const int n = tc->eval_size, R = tc->eval_reps;
  float *train = fc_malloc((size_t)tc->train_size * 2 * sizeof(float));
  float *ta = fc_malloc((size_t)n * 2 * sizeof(float)), *tb = fc_malloc((size_t)n * 2 * sizeof(float));
  float *gen = fc_malloc((size_t)n * 2 * sizeof(float));
  int *lab = fc_malloc((size_t)n * sizeof(int));
  fc_toy_sample(tc->dist, &r_train, train, NULL, tc->train_size);

  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 2, 0);
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
  fc_lfm_trainer *tr = model ? fc_lfm_trainer_new(model, train, NULL, (size_t)tc->train_size, &trc, err, errsz) : NULL;
  if (!tr) {
    fc_lfm_free(model);
    free(train); free(ta); free(tb); free(gen); free(lab);
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

  /* generate and measure against held-out targets, R independent times */
  fc_lfm_ws *ws = fc_lfm_ws_new(model, 1024);
  double w2[64], floor_[64], energy[64], off[64];
  int covered_min = 1 << 30;
  for (int r = 0; r < R; r++) {
    fc_toy_sample(tc->dist, &r_eval, ta, lab, n);
    fc_toy_sample(tc->dist, &r_eval, tb, NULL, n);
    fc_rng_normal_fill(&r_z, gen, (size_t)n * 2);
    t0 = fc_now();
    fc_lfm_sample(model, ws, gen, NULL, n, lc.sampler, lc.steps, &r_z);
    out->sample_s += (fc_now() - t0) / R;
    w2[r] = fc_w2_exact(gen, ta, n, 2, NULL);
    floor_[r] = fc_w2_exact(tb, ta, n, 2, NULL);
    energy[r] = fc_energy_distance(gen, n, ta, n, 2);
    int cov;
    s_modes(gen, ta, lab, n, fc_toy_dist_modes(tc->dist), &cov, &off[r]);
    covered_min = cov < covered_min ? cov : covered_min;
  }
  double dummy;
  s_mean_sd(w2, R, &out->w2, &out->w2_sd);
  s_mean_sd(floor_, R, &out->w2_floor, &out->w2_floor_sd);
  s_mean_sd(energy, R, &out->energy, &dummy);
  s_mean_sd(off, R, &out->off_mode, &dummy);
  out->modes_total = fc_toy_dist_modes(tc->dist);
  out->modes_covered = covered_min; /* in every repetition */
  if (!tc->dfm) fc_lfm_diagnose(model, ws, train, NULL, n, lc.sampler, lc.steps, out->diag);
  /* the sweep: W2 against the number of first-order steps, R repetitions each */
  for (int i = 0; i < tc->nsweep; i++) {
    const int nfe = tc->sweep[i], per = tc->dfm ? nfe : nfe / blocks;
    out->sweep_w2[i] = NAN;
    if (nfe < 1 || (!tc->dfm && nfe % blocks)) continue;
    double sum = 0.0;
    for (int r = 0; r < R; r++) {
      fc_toy_sample(tc->dist, &r_sweep, ta, NULL, n);
      fc_rng_normal_fill(&r_sweep, gen, (size_t)n * 2);
      fc_lfm_sample(model, ws, gen, NULL, n, FC_SAMPLER_EULER, per, &r_sweep);
      sum += fc_w2_exact(gen, ta, n, 2, NULL);
    }
    out->sweep_w2[i] = sum / R;
  }
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
  free(train); free(ta); free(tb); free(gen); free(lab);
  return rc;
}
