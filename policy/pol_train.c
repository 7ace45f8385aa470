/* pol_train: policy training on flowcore's LFM trainer. */
#include "pol_train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ds_seq.h"
#include "fc_base.h"
#include "fc_ckpt.h"

void pol_train_config_default(pol_train_config *c) {
  memset(c, 0, sizeof(*c));
  c->method = POL_LFM;
  /* N = 2 by experiment (README): on lift at equal parameters, steps and NFE,
   * 4 blocks reached 62-74% where 2 reached 86%; the expert's actions given
   * an observation are nearly a point, which a deterministic sub-flow cannot
   * spread, so the generative work falls to the last block */
  c->blocks = 2;
  c->steps = 16000; /* lift: 8000 gave LFM 88%, 16000 gave 92% (README) */
  c->batch = 256;
  c->seed = 0;
  c->To = 2;
  c->Tp = 16;
  c->Ta = 8;
  fc_net_config_default(&c->net, FC_NET_MLP, 1, 0); /* width 256, depth 3; sizes from the data */
  c->lr = 1e-3f;
  /* gamma_1 = 1 (README, "LFM against FM"): LFM N = 2 on selection seeds
   * 200000..200049, score at the end of training: can (32000 steps) 0.52
   * with c = 0.2 (the toy's), 1.00 with 1.0 and with 2.0; lift 0.96 -> 1.00;
   * avoid 1.00 with both sides taken. A larger first OU step gives the first
   * block (the data side, trained first) the generative work, so the chain
   * is good before the last block is trained */
  c->gamma_c = 1.0f;
  c->gamma_rho = 1.25f;
  c->sampler = FC_SAMPLER_RK4;
  c->ode_steps = 8; /* over the chain: fm 8 RK4 steps, lfm N = 2: 4 per block (NFE 32) */
  c->dfm_sigma = 0.5f;
  c->dfm_delta = 0.02f;
  c->norm = FC_NORM_MINMAX;
  /* observation ranges floored at 0.01 (README, "Observation normalization"):
   * on can (FM, 16000 steps, selection seeds 200000..200049) 70% -> 98%, the
   * end-effector quaternion's x, y vary by 2e-4 in the demonstrations; on
   * lift (LFM) 98% -> 96%, within the interval */
  c->obs_min_range = 0.01;
  c->valid_frac = 0.1;
  c->latent = 0;
  c->latent_tokens = 1;
  c->ae_width = 256;
  c->ae_steps = 4000;
}

struct pol_trainer {
  pol_train_config cfg;
  pol_policy *policy;
  fc_lfm_trainer *tr;
  float *xo, *xa, *vo, *va; /* windows: obs conditions and action chunks, train and valid */
  int64_t ntrain, nvalid;
  char split[64];
  fc_ae_fit_result ae_fit; /* latent runs: the autoencoder's fit */
};

/* Per-task recipes (README, "Per-task recipes", has the runs). Each entry
 * overrides the general defaults above; 0 / NULL fields keep them. */
typedef struct {
  const char *task;
  int64_t steps;
  int Ta;
  int unet_dims[FC_UNET_MAX_LEVELS]; /* nonzero: the U-Net with these channels per level */
  /* a latent flow on the recipe's own network (--latent d), and the
   * transformer in action space (--net transformer): pol_train_recipe_net */
  int64_t latent_steps;
  int latent_tokens;
  int64_t tfm_steps;
  const char *text;
} s_recipe;

static const s_recipe s_recipes[] = {
    /* pusht: the U-Net, training length and the number of demonstrations
     * are the levers (README, "Push-T: why it failed"). FM, agent_pos +
     * block_keypoints, 1000 demos, selection seeds 200000..200049: the MLP
     * reached 56% (score 0.971) at 64000 steps and 68% (0.975) at 128000
     * (30 minutes on the busy 2-core machine); the U-Net {32, 64, 128}
     * reached 70% (0.974) at 8000 steps in 16 minutes on the same busy
     * machine (944 s), so it is the recipe. A latent flow (--latent 8, the
     * U-Net over 4 tokens, autoencoder width 128, FM, training seed 0) on the
     * selection seeds: 40% (score 0.907) at 8000 steps, 76% (0.985) at
     * 32000, whose step costs a quarter of the chunk's (4 tokens for 16), so
     * it trains as long as the action-space recipe (tools/studies.sh
     * latent-steps). The transformer at the U-Net's parameters (width 136,
     * FM, training seed 0) on the selection seeds: 64% (score 0.965) at 8000
     * steps, 90% (0.997) at 16000 (tools/studies.sh tfm-steps) */
    {.task = "pusht",
     .steps = 8000,
     .unet_dims = {32, 64, 128},
     .latent_steps = 32000,
     .latent_tokens = 4,
     .tfm_steps = 16000,
     .text = "pusht: unet dims 32,64,128, 8000 steps; a latent flow: 32000 steps, 4 tokens; a transformer: 16000 steps"},
    /* can: training length. FM, the MLP, 200 demos, one 32000-step run with
     * --eval-every 4000 on selection seeds 200000..200049: score 0.24 /
     * 0.64 / 0.84 / 0.94 at 4000..16000 steps, 1.00 from 20000 to 32000
     * (519 s of training on the busy 2-core machine); 16000 steps had given
     * 82 +- 10% over 3 seeds on the evaluation seeds */
    {.task = "can", .steps = 32000, .text = "can: 32000 steps"},
};

static const s_recipe *s_recipe_find(const char *task) {
  for (size_t i = 0; task && i < sizeof(s_recipes) / sizeof(s_recipes[0]); i++)
    if (!strcmp(s_recipes[i].task, task)) return &s_recipes[i];
  return NULL;
}

int pol_train_recipe(const char *task, pol_train_config *c) {
  const s_recipe *r = s_recipe_find(task);
  if (!r) return 0;
  if (r->steps) c->steps = r->steps;
  if (r->Ta) c->Ta = r->Ta;
  if (r->unet_dims[0]) {
    fc_net_config_default(&c->net, FC_NET_UNET, 1, 0);
    c->net.unet.nlevels = 0;
    for (int l = 0; l < FC_UNET_MAX_LEVELS; l++) {
      c->net.unet.dims[l] = r->unet_dims[l];
      c->net.unet.nlevels += r->unet_dims[l] > 0;
    }
  }
  return 1;
}

void pol_train_recipe_net(const char *task, pol_train_config *c, int steps_given, int tokens_given) {
  const s_recipe *r = s_recipe_find(task);
  if (!r) return;
  if (c->latent <= 0) {
    if (r->tfm_steps && c->net.kind == FC_NET_TRANSFORMER && !steps_given) c->steps = r->tfm_steps;
    return;
  }
  if (r->unet_dims[0] && c->net.kind != FC_NET_UNET) return;
  if (r->latent_steps && !steps_given) c->steps = r->latent_steps;
  if (r->latent_tokens && !tokens_given) c->latent_tokens = r->latent_tokens;
}

const char *pol_train_recipe_text(const char *task) {
  const s_recipe *r = s_recipe_find(task);
  return r ? r->text : "";
}

/* a latent run's tokens must split its latent evenly; 0, or -1 and err */
static int s_check_latent_tokens(const pol_train_config *c, char *err, size_t errsz) {
  if (c->latent > 0 && (c->latent_tokens < 1 || c->latent % c->latent_tokens))
    return fc_set_err(err, errsz, "--latent-tokens %d does not divide the %d latent values into equal tokens",
                      c->latent_tokens, c->latent), -1;
  return 0;
}

fc_lfm *pol_flow_new(const pol_train_config *c, int obs_dim, int action_dim, char *err, size_t errsz) {
  /* lfm N blocks of matched width, fm one block, mse a regression; x: Tp
   * actions, time-major, or a latent run's d values (no time axis) */
  const int dx = c->latent > 0 ? c->latent : c->Tp * action_dim, horizon = c->latent > 0 ? c->latent_tokens : c->Tp;
  if (s_check_latent_tokens(c, err, errsz)) return NULL;
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, dx, c->To * obs_dim);
  lc.net = c->net;
  fc_net_config_set_io(&lc.net, dx, c->To * obs_dim, horizon);
  /* a cross-attention transformer reads one memory token per observation frame */
  if (lc.net.kind == FC_NET_TRANSFORMER && lc.net.tfm.cond == FC_TFM_CROSS) lc.net.tfm.ctok = c->To;
  lc.nblocks = c->method == POL_LFM ? c->blocks : 1;
  if (lc.nblocks > 1) fc_net_match(&lc.net, &lc.net, lc.nblocks);
  lc.objective = c->method == POL_MSE ? FC_OBJ_REGRESS : c->method == POL_DFM ? FC_OBJ_DFM : FC_OBJ_FLOW;
  lc.dfm_sigma = c->dfm_sigma;
  lc.dfm_delta = c->dfm_delta;
  lc.gamma_c = c->gamma_c;
  lc.gamma_rho = c->gamma_rho;
  lc.sampler = c->sampler;
  lc.steps = fc_lfm_steps_per_block(c->ode_steps, lc.nblocks, err, errsz);
  if (lc.steps < 0) return NULL;
  return fc_lfm_new(&lc, err, errsz);
}

/* The bounds inference clips to: the training split's action range (an,
 * so absolute actions such as robomimic's *_abs files keep their scale),
 * then the config's overrides. */
static int s_action_bounds(const pol_train_config *c, const fc_norm *an, pol_meta *m, char *err, size_t errsz) {
  const int A = m->action_dim;
  const int counts[2] = {c->action_nlow, c->action_nhigh};
  for (int s = 0; s < 2; s++)
    if (counts[s] != 0 && counts[s] != 1 && counts[s] != A)
      return fc_set_err(err, errsz, "%d %s action bounds were given for %d action dimensions (give one for all, or one per "
                        "dimension)", counts[s], s ? "upper" : "lower", A), -1;
  for (int j = 0; j < A; j++) {
    const double lo = c->action_nlow ? c->action_low[c->action_nlow == 1 ? 0 : j] : an->lo[j];
    const double hi = c->action_nhigh ? c->action_high[c->action_nhigh == 1 ? 0 : j] : an->hi[j];
    if ((c->action_nlow && !isfinite((float)lo)) || (c->action_nhigh && !isfinite((float)hi)))
      return fc_set_err(err, errsz, "action bounds of dimension %d are [%g, %g]: an override must be a finite float", j, lo,
                        hi), -1;
    if ((c->action_nlow || c->action_nhigh) && !(lo < hi))
      return fc_set_err(err, errsz, "action bounds of dimension %d would be [%g, %g] (the training actions span [%g, %g]): "
                        "low must be below high", j, lo, hi, (double)an->lo[j], (double)an->hi[j]), -1;
    m->action_low[j] = (float)lo;
    m->action_high[j] = (float)hi;
  }
  return 0;
}

/* every window of both splits, normalized */
static void s_windows(pol_trainer *t, const ds_dataset *d, const ds_split *train, const ds_split *valid, int To, int Tp,
                      const fc_norm *on, const fc_norm *an) {
  const int Cd = To * d->obs_dim, Dd = Tp * d->action_dim;
  t->ntrain = train->samples;
  t->nvalid = valid->samples;
  t->xo = fc_malloc(sizeof(float) * (size_t)t->ntrain * Cd);
  t->xa = fc_malloc(sizeof(float) * (size_t)t->ntrain * Dd);
  ds_windows_all(d, train, To, Tp, on, an, t->xo, t->xa);
  if (t->nvalid) {
    t->vo = fc_malloc(sizeof(float) * (size_t)t->nvalid * Cd);
    t->va = fc_malloc(sizeof(float) * (size_t)t->nvalid * Dd);
    ds_windows_all(d, valid, To, Tp, on, an, t->vo, t->va);
  }
}

/* the windows' chunks replaced by their standardized latents under ae */
static void s_encode_windows(pol_trainer *t, const fc_ae *ae) {
  float **sets[2] = {&t->xa, &t->va};
  const int64_t counts[2] = {t->ntrain, t->nvalid};
  const int chunk = 256, dx = ae->cfg.dx, dz = ae->cfg.dz;
  fc_ae_ws *ws = fc_ae_ws_new(&ae->cfg, chunk);
  for (int k = 0; k < 2; k++) {
    if (!counts[k]) continue;
    float *z = fc_malloc(sizeof(float) * (size_t)counts[k] * dz);
    for (int64_t r = 0; r < counts[k]; r += chunk) {
      const int B = counts[k] - r < chunk ? (int)(counts[k] - r) : chunk;
      fc_ae_encode_std(ae, ws, z + (size_t)r * dz, *sets[k] + (size_t)r * dx, B);
    }
    free(*sets[k]);
    *sets[k] = z;
  }
  fc_ae_ws_free(ws);
}

/* a latent run's autoencoder, fitted on the training chunks (NULL, and err,
 * when the config is unusable) */
static fc_ae *s_fit_latent(pol_trainer *t, const pol_train_config *c, int action_dim, char *err, size_t errsz) {
  fc_ae_config ac;
  fc_ae_config_default(&ac, c->Tp * action_dim, c->latent);
  ac.width = c->ae_width;
  char why[256];
  if (fc_ae_config_check(&ac, why, sizeof(why)))
    return fc_set_err(err, errsz, "--latent %d: %s", c->latent, why), NULL;
  fc_ae *ae = fc_ae_new(&ac);
  fc_ae_fit_config fc;
  fc_ae_fit_config_default(&fc);
  fc.steps = c->ae_steps;
  fc.batch = c->batch;
  fc.seed = c->seed;
  if (fc_ae_fit(ae, t->xa, (size_t)t->ntrain, t->va, (size_t)t->nvalid, &fc, &t->ae_fit, err, errsz)) {
    fc_ae_free(ae);
    return NULL;
  }
  return ae;
}

fc_ae_fit_result pol_trainer_latent_fit(const pol_trainer *t) { return t->ae_fit; }

/* flowcore's training config for a policy config: its steps, batch, seed
 * and lr, warm-up a tenth of a block (at most 500 steps) */
static void s_train_config(const pol_train_config *c, int nblocks, fc_train_config *tc) {
  fc_train_config_default(tc);
  tc->steps = c->steps;
  tc->batch = c->batch;
  tc->seed = c->seed;
  tc->opt.lr = c->lr;
  tc->opt.warmup = c->steps / nblocks / 10 < 500 ? (int)(c->steps / nblocks / 10) : 500;
  tc->nshards = c->par.n;
  tc->shard = c->par.shard;
  tc->reduce = c->par.reduce;
  tc->reduce_user = c->par.user;
}

/* the flowcore trainer on the materialized windows, with the validation split */
static int s_trainer_start(pol_trainer *t, fc_lfm *flow, const fc_train_config *tc, char *err, size_t errsz) {
  t->tr = fc_lfm_trainer_new(flow, t->xa, t->xo, (size_t)t->ntrain, tc, err, errsz);
  if (!t->tr) return -1;
  if (t->nvalid) fc_lfm_trainer_set_valid(t->tr, t->va, t->vo, (size_t)t->nvalid);
  return 0;
}

pol_trainer *pol_trainer_new(const ds_dataset *d, const pol_train_config *c, const char *env_args, double control_hz,
                             char *err, size_t errsz) {
  if (d->nkeys > POL_MAX_KEYS) return fc_set_err(err, errsz, "at most %d observation keys", POL_MAX_KEYS), NULL;
  if (d->action_dim > POL_MAX_ACTION) return fc_set_err(err, errsz, "at most %d action values", POL_MAX_ACTION), NULL;
  if (env_args && strlen(env_args) >= POL_ENV_ARGS_MAX) return fc_set_err(err, errsz, "env_args is too long"), NULL;
  ds_split train, valid;
  if (ds_split_make(d, c->valid_frac, c->seed, &train, &valid, err, errsz)) return NULL;
  pol_trainer *t = fc_calloc(1, sizeof(*t));
  t->cfg = *c;
  snprintf(t->split, sizeof(t->split), "%s", train.source);

  /* statistics on the training split */
  fc_norm on, an;
  if (ds_norm_fit(&on, c->norm, d, &train, DS_FIELD_OBS, err, errsz) ||
      ds_norm_fit(&an, c->norm, d, &train, DS_FIELD_ACTIONS, err, errsz))
    goto fail;
  fc_norm_set_min_range(&on, c->obs_min_range);

  s_windows(t, d, &train, &valid, c->To, c->Tp, &on, &an);
  t->ae_fit.train_mse = t->ae_fit.valid_mse = NAN;
  fc_ae *ae = NULL;
  if (c->latent > 0) {
    if (s_check_latent_tokens(c, err, errsz)) goto fail; /* before the autoencoder's fit */
    if (!(ae = s_fit_latent(t, c, d->action_dim, err, errsz))) goto fail;
    s_encode_windows(t, ae);
  }

  fc_lfm *flow = pol_flow_new(c, d->obs_dim, d->action_dim, err, errsz);
  if (!flow) {
    fc_ae_free(ae);
    goto fail;
  }
  const int nblocks = flow->cfg.nblocks;

  pol_meta m;
  const char *names[POL_MAX_KEYS];
  int dims[POL_MAX_KEYS];
  for (int k = 0; k < d->nkeys; k++) names[k] = d->keys[k].name, dims[k] = d->keys[k].dim;
  if (pol_meta_init(&m, c->method, c->To, c->Tp, c->Ta, d->nkeys, names, dims, d->action_dim, env_args, control_hz,
                    err, errsz) ||
      s_action_bounds(c, &an, &m, err, errsz)) {
    fc_lfm_free(flow);
    fc_ae_free(ae);
    goto fail;
  }
  t->policy = pol_new_latent(&m, &on, &an, flow, ae, err, errsz);
  if (!t->policy) {
    fc_lfm_free(flow);
    goto fail;
  }

  fc_train_config tc;
  s_train_config(c, nblocks, &tc);
  if (s_trainer_start(t, flow, &tc, err, errsz)) goto fail;
  ds_split_free(&train);
  ds_split_free(&valid);
  return t;
fail:
  ds_split_free(&train);
  ds_split_free(&valid);
  pol_trainer_free(t);
  return NULL;
}

void pol_distill_config_default(pol_distill_config *c) {
  memset(c, 0, sizeof(*c));
  c->steps = 4000;
  c->batch = 256;
  c->lr = 3e-4f;
  c->valid_frac = 0.1;
  c->teacher_sampler = FC_SAMPLER_RK4;
  c->teacher_steps = 0;
}

pol_trainer *pol_distiller_new(const ds_dataset *d, const pol_policy *teacher, const char *teacher_path,
                               const pol_distill_config *c, char *err, size_t errsz) {
  const pol_meta *tm = &teacher->meta;
  const fc_lfm_config *tf = &teacher->flow->cfg;
  if (tf->objective == FC_OBJ_REGRESS)
    return fc_set_err(err, errsz, "%s is an mse policy: it samples with one network evaluation already, there is nothing to "
                      "distill", teacher_path), NULL;
  if (tf->objective != FC_OBJ_FLOW)
    return fc_set_err(err, errsz, "%s is a %s policy, sampled by a stochastic sampler: distillation takes a flow (lfm or fm)",
                      teacher_path, pol_method_name((pol_method)tm->method)), NULL;
  if (teacher->distill.present)
    return fc_set_err(err, errsz, "%s is itself distilled (from %s): distill its teacher instead", teacher_path,
                      teacher->distill.teacher), NULL;
  if (d->nkeys != tm->nkeys || d->obs_dim != tm->obs_dim || d->action_dim != tm->action_dim)
    return fc_set_err(err, errsz, "the data has %d observation values and %d action values; the teacher %s expects %d and %d",
                      d->obs_dim, d->action_dim, teacher_path, tm->obs_dim, tm->action_dim), NULL;
  for (int k = 0; k < d->nkeys; k++)
    if (strcmp(d->keys[k].name, tm->keys[k]) || d->keys[k].dim != tm->key_dims[k])
      return fc_set_err(err, errsz, "observation key %d of the data is %s (%d values); the teacher %s has %s (%d)", k,
                        d->keys[k].name, d->keys[k].dim, teacher_path, tm->keys[k], tm->key_dims[k]), NULL;
  if (c->steps < tf->nblocks)
    return fc_set_err(err, errsz, "distillation steps (%lld) must be at least the teacher's blocks (%d)", (long long)c->steps,
                      tf->nblocks), NULL;
  if (strlen(teacher_path) >= sizeof(((pol_distill *)0)->teacher))
    return fc_set_err(err, errsz, "the teacher's path is too long to record"), NULL;
  ds_split train, valid;
  if (ds_split_make(d, c->valid_frac, c->seed, &train, &valid, err, errsz)) return NULL;
  pol_trainer *t = fc_calloc(1, sizeof(*t));
  pol_train_config_default(&t->cfg);
  t->cfg.method = (pol_method)tm->method;
  t->cfg.blocks = tf->nblocks;
  t->cfg.steps = c->steps;
  t->cfg.batch = c->batch;
  t->cfg.seed = c->seed;
  t->cfg.To = tm->To, t->cfg.Tp = tm->Tp, t->cfg.Ta = tm->Ta;
  t->cfg.net = tf->net;
  t->cfg.lr = c->lr;
  t->cfg.par = c->par;
  snprintf(t->split, sizeof(t->split), "%s", train.source);
  s_windows(t, d, &train, &valid, tm->To, tm->Tp, &teacher->obs_norm, &teacher->act_norm);
  ds_split_free(&train);
  ds_split_free(&valid);
  /* a latent teacher's student shares its autoencoder and flows in its latent */
  t->ae_fit.train_mse = t->ae_fit.valid_mse = NAN;
  if (teacher->latent) {
    t->cfg.latent = teacher->latent->cfg.dz;
    s_encode_windows(t, teacher->latent);
  }

  /* the student: the teacher's chain, one Euler step per block */
  fc_lfm_config sc = *tf;
  sc.sampler = FC_SAMPLER_EULER;
  sc.steps = 1;
  fc_lfm *flow = fc_lfm_new(&sc, err, errsz);
  if (!flow) goto fail;
  /* every block starts as the teacher's (the trainer copies each again when
   * its turn comes): a snapshot mid-run is the students so far followed by
   * the teacher's blocks taken in one step */
  memcpy(flow->params, teacher->flow->params, fc_lfm_nparams(flow) * sizeof(float));
  t->policy = pol_new_latent(tm, &teacher->obs_norm, &teacher->act_norm, flow,
                             teacher->latent ? fc_ae_clone(teacher->latent) : NULL, err, errsz);
  if (!t->policy) {
    fc_lfm_free(flow);
    goto fail;
  }
  pol_distill *rec = &t->policy->distill;
  rec->present = 1;
  snprintf(rec->teacher, sizeof(rec->teacher), "%s", teacher_path);
  rec->teacher_crc = pol_params_crc(teacher);
  rec->teacher_blocks = tf->nblocks;
  rec->teacher_sampler = c->teacher_steps > 0 ? c->teacher_sampler : tf->sampler;
  rec->teacher_steps = c->teacher_steps > 0 ? c->teacher_steps : tf->steps;
  rec->teacher_nfe = pol_nfe(teacher, (fc_sampler)rec->teacher_sampler, rec->teacher_steps);
  rec->steps = c->steps;
  rec->batch = c->batch;
  rec->seed = c->seed;
  rec->lr = c->lr;
  rec->pairs = c->pairs;

  fc_train_config tc;
  s_train_config(&t->cfg, tf->nblocks, &tc);
  tc.teacher = teacher->flow;
  tc.teacher_sampler = (fc_sampler)rec->teacher_sampler;
  tc.teacher_steps = rec->teacher_steps;
  tc.teacher_pairs = c->pairs;
  if (s_trainer_start(t, flow, &tc, err, errsz)) goto fail;
  return t;
fail:
  pol_trainer_free(t);
  return NULL;
}

void pol_trainer_free(pol_trainer *t) {
  if (!t) return;
  fc_lfm_trainer_free(t->tr);
  pol_free(t->policy);
  free(t->xo); free(t->xa); free(t->vo); free(t->va);
  free(t);
}

double pol_trainer_step(pol_trainer *t) { return fc_lfm_trainer_step(t->tr); }
int pol_trainer_done(const pol_trainer *t) { return fc_lfm_trainer_done(t->tr); }
int64_t pol_trainer_steps_done(const pol_trainer *t) { return fc_lfm_trainer_steps_done(t->tr); }
int64_t pol_trainer_total_steps(const pol_trainer *t) { return t->cfg.steps; }
int pol_trainer_block(const pol_trainer *t) { return fc_lfm_trainer_block(t->tr); }
float pol_trainer_lr(const pol_trainer *t) { return fc_lfm_trainer_lr(t->tr); }
double pol_trainer_valid_loss(pol_trainer *t) { return fc_lfm_trainer_valid_loss(t->tr); }
int64_t pol_trainer_train_windows(const pol_trainer *t) { return t->ntrain; }
int64_t pol_trainer_valid_windows(const pol_trainer *t) { return t->nvalid; }
const char *pol_trainer_split(const pol_trainer *t) { return t->split; }
const pol_policy *pol_trainer_policy(const pol_trainer *t) { return t->policy; }
pol_origin *pol_trainer_origin(pol_trainer *t) { return &t->policy->origin; }

pol_policy *pol_trainer_snapshot(const pol_trainer *t, char *err, size_t errsz) {
  const pol_policy *p = t->policy;
  fc_lfm *flow = fc_lfm_new(&p->flow->cfg, err, errsz);
  if (!flow) return NULL;
  fc_lfm_trainer_snapshot(t->tr, flow);
  pol_policy *s = pol_new_latent(&p->meta, &p->obs_norm, &p->act_norm, flow, p->latent ? fc_ae_clone(p->latent) : NULL,
                                 err, errsz);
  if (!s) {
    fc_lfm_free(flow);
  } else {
    s->distill = p->distill;
    s->origin = p->origin;
  }
  return s;
}

int pol_trainer_checkpoint(const pol_trainer *t, const char *path, char *err, size_t errsz) {
  fc_ckpt_writer *w = fc_ckpt_writer_new("policy");
  pol_save(t->policy, w);
  fc_lfm_trainer_save(t->tr, w);
  int rc = fc_ckpt_write(w, path, err, errsz);
  fc_ckpt_writer_free(w);
  return rc;
}

/* What a resumed run must share with the saved one: the data-derived
 * statistics, the metadata and the network config, compared field by field
 * (not the lfp version, not the struct bytes). NULL when they agree, else
 * the first part that differs. */
static int s_same_floats(const float *a, const float *b, int n) { return !memcmp(a, b, (size_t)n * sizeof(float)); }

static const char *s_differs(const pol_policy *a, const pol_policy *b) {
  const pol_meta *x = &a->meta, *y = &b->meta;
  if (x->method != y->method) return "method";
  if (x->To != y->To || x->Tp != y->Tp || x->Ta != y->Ta) return "horizons";
  if (x->obs_dim != y->obs_dim || x->action_dim != y->action_dim || x->nkeys != y->nkeys) return "dimensions";
  for (int k = 0; k < x->nkeys; k++)
    if (strcmp(x->keys[k], y->keys[k]) || x->key_dims[k] != y->key_dims[k]) return "observation keys";
  if (!s_same_floats(x->action_low, y->action_low, x->action_dim) ||
      !s_same_floats(x->action_high, y->action_high, x->action_dim))
    return "action bounds";
  if (strcmp(x->env_args, y->env_args) || x->control_hz != y->control_hz) return "task";
  const fc_norm *n[2][2] = {{&a->obs_norm, &b->obs_norm}, {&a->act_norm, &b->act_norm}};
  for (int i = 0; i < 2; i++) {
    const fc_norm *u = n[i][0], *v = n[i][1];
    if (u->dim != v->dim || u->kind != v->kind || !s_same_floats(u->scale, v->scale, u->dim) ||
        !s_same_floats(u->offset, v->offset, u->dim) || !s_same_floats(u->lo, v->lo, u->dim) ||
        !s_same_floats(u->hi, v->hi, u->dim) || !s_same_floats(u->mean, v->mean, u->dim) ||
        !s_same_floats(u->std, v->std, u->dim))
      return i ? "action statistics" : "observation statistics";
  }
  const fc_lfm_config *f = &a->flow->cfg, *g = &b->flow->cfg;
  if (f->nblocks != g->nblocks || !fc_net_config_same(&f->net, &g->net) || f->interp != g->interp ||
      f->gamma_c != g->gamma_c || f->gamma_rho != g->gamma_rho || f->coupling != g->coupling ||
      f->objective != g->objective || f->sampler != g->sampler || f->steps != g->steps)
    return "network config";
  const fc_ae *la = a->latent, *lb = b->latent;
  if (!la != !lb ||
      (la && (memcmp(&la->cfg, &lb->cfg, sizeof(la->cfg)) ||
              !s_same_floats(la->params, lb->params, (int)fc_ae_nparams(&la->cfg)) ||
              !s_same_floats(la->mu, lb->mu, la->cfg.dz) || !s_same_floats(la->sd, lb->sd, la->cfg.dz))))
    return "latent autoencoder (a different fit: other data, seed or thread count)";
  const pol_distill *da = &a->distill, *db = &b->distill;
  if (da->present != db->present ||
      (da->present && (da->teacher_crc != db->teacher_crc || da->teacher_sampler != db->teacher_sampler ||
                       da->teacher_steps != db->teacher_steps || da->lr != db->lr || da->pairs != db->pairs)))
    return "teacher or distillation settings";
  return NULL;
}

int pol_trainer_resume(pol_trainer *t, const char *path, char *err, size_t errsz) {
  fc_ckpt *ck = fc_ckpt_read(path, "policy", err, errsz);
  if (!ck) return -1;
  char why[400];
  int rc = -1;
  const char *diff = NULL;
  pol_policy *saved = pol_load_ckpt(ck, path, why, sizeof(why));
  if (!saved) {
    fc_set_err(err, errsz, "%s", why);
  } else if ((diff = s_differs(saved, t->policy))) {
    fc_set_err(err, errsz, "%s was made from other data or settings than this run (its %s differ)", path, diff);
  } else {
    /* the weights first: restoring recomputes the current block's inputs from them */
    memcpy(t->policy->flow->params, saved->flow->params, fc_lfm_nparams(saved->flow) * sizeof(float));
    if (fc_lfm_trainer_restore(t->tr, ck, why, sizeof(why))) fc_set_err(err, errsz, "%s: %s", path, why);
    else rc = 0;
  }
  pol_free(saved);
  fc_ckpt_free(ck);
  return rc;
}
