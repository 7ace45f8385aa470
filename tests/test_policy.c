/* Tests of policy: observation history and chunk execution on a hand-made
 * sequence, clipping, policy files and their mismatches, training that
 * lowers the loss, and a resumed run equal to an uninterrupted one. */
#include <math.h>
#include <unistd.h>

#include "fc_par.h"
#include "fc_ckpt.h"
#include "pol.h"
#include "pol_impl.h" /* white-box: the history and condition */
#include "pol_train.h"
#include "test.h"

/* identity normalization for `dim` values */
static void s_identity(fc_norm *n, int dim) {
  memset(n, 0, sizeof(*n));
  n->dim = dim;
  for (int j = 0; j < dim; j++) n->scale[j] = 1.0f, n->lo[j] = -1, n->hi[j] = 1;
}

/* an MSE policy whose chunk is the output bias b, whatever the observations:
 * To 2, Tp 4, Ta 3, one 1-D key, 1-D actions */
static pol_policy *s_const_policy(const float b[4]) {
  pol_meta m;
  memset(&m, 0, sizeof(m));
  m.method = POL_MSE;
  m.To = 2; m.Tp = 4; m.Ta = 3;
  m.obs_dim = 1; m.action_dim = 1; m.nkeys = 1;
  snprintf(m.keys[0], 64, "o");
  m.key_dims[0] = 1;
  m.action_low[0] = -1; m.action_high[0] = 1;
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 4, 2);
  lc.nblocks = 1;
  lc.objective = FC_OBJ_REGRESS;
  lc.net.mlp.width = 4;
  lc.net.mlp.depth = 0;
  lc.net.mlp.cond = FC_COND_CONCAT; /* depth 0: FiLM would have no block to act in */
  fc_lfm *f = fc_lfm_new(&lc, NULL, 0);
  memcpy(f->params + f->blocks[0].mlp.lay.b_out, b, 4 * sizeof(float)); /* all else 0 */
  fc_norm on, an;
  s_identity(&on, 1);
  s_identity(&an, 1);
  return pol_new(&m, &on, &an, f, NULL, 0);
}

TEST(history_and_chunks_follow_horizons) {
  const float b[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  pol_policy *p = s_const_policy(b);
  ASSERT(p);
  pol_data *pd = pol_data_new(p, 0);
  /* observations o_t = t / 2; a chunk every Ta = 3 steps; its first 3 actions run */
  const double expect_cond[8][2] = {{0, 0}, {0, 0}, {0, 0}, {1, 1.5}, {1, 1.5}, {1, 1.5}, {2.5, 3}, {2.5, 3}};
  for (int t = 0; t < 8; t++) {
    double o = 0.5 * t, a;
    ASSERT(pol_act(p, pd, &o, &a, NULL, 0) == 0);
    ASSERT_NEAR(a, b[t % 3], 1e-7);          /* never the 4th (Tp > Ta) */
    ASSERT_EQ_INT(pd->chunks, t / 3 + 1);
    ASSERT_NEAR(pd->cond[0], expect_cond[t][0], 0); /* the frames t-1, t at replanning; */
    ASSERT_NEAR(pd->cond[1], expect_cond[t][1], 0); /* the first frame repeated at the start */
    ASSERT_NEAR(pd->hist[1], 0.5 * t, 0);
  }
  ASSERT(pd->obs_clipped == 0);
  /* a new episode starts over: padded history, fresh queue */
  pol_reset(pd, 1);
  double o = 4.2, a;
  ASSERT(pol_act(p, pd, &o, &a, NULL, 0) == 0);
  ASSERT_NEAR(pd->cond[0], 4.2f, 0);
  ASSERT_NEAR(pd->cond[1], 4.2f, 0);
  ASSERT_NEAR(a, 0.1, 1e-7);
  /* normalized observations far outside the data saturate at +-POL_OBS_CLIP, counted */
  pol_reset(pd, 1);
  o = -1e6;
  ASSERT(pol_act(p, pd, &o, &a, NULL, 0) == 0);
  ASSERT_NEAR(pd->cond[1], -POL_OBS_CLIP, 0);
  ASSERT(pd->obs_clipped == 1);
  o = 4.2;
  pol_data_free(pd);
  pol_free(p);
  /* out-of-bounds actions are clipped and counted */
  const float big[4] = {2.0f, -3.0f, 0.5f, 0.0f};
  p = s_const_policy(big);
  pd = pol_data_new(p, 0);
  double acts[3];
  for (int t = 0; t < 3; t++) ASSERT(pol_act(p, pd, &o, &acts[t], NULL, 0) == 0);
  ASSERT_NEAR(acts[0], 1.0, 0);
  ASSERT_NEAR(acts[1], -1.0, 0);
  ASSERT_NEAR(acts[2], 0.5, 1e-7);
  ASSERT_EQ_INT(pd->clipped, 2);
  pol_data_free(pd);
  pol_free(p);
  return 0;
}

/* a small dataset: 6 demos of 20 steps, 3-D obs in 2 keys, 2-D actions that
 * depend on the obs */
static ds_dataset *s_dataset(void) {
  ds_dataset *d = calloc(1, sizeof(*d));
  d->path = strdup("mem");
  d->ndemos = 6;
  d->demos = calloc(6, sizeof(ds_demo));
  d->nkeys = 2;
  d->keys = calloc(2, sizeof(ds_key));
  snprintf(d->keys[0].name, DS_NAME_MAX, "a");
  d->keys[0].dim = 2;
  snprintf(d->keys[1].name, DS_NAME_MAX, "b");
  d->keys[1].dim = 1;
  d->keys[1].col = 2;
  d->obs_dim = 3;
  d->action_dim = 2;
  d->total = 120;
  d->obs = malloc(sizeof(float) * 120 * 3);
  d->actions = malloc(sizeof(float) * 120 * 2);
  for (int i = 0; i < 6; i++) {
    snprintf(d->demos[i].name, DS_NAME_MAX, "demo_%d", i);
    d->demos[i].index = i;
    d->demos[i].len = 20;
    d->demos[i].row = 20 * i;
    for (int t = 0; t < 20; t++) {
      int r = 20 * i + t;
      d->obs[r * 3] = (float)sin(0.3 * t + i);
      d->obs[r * 3 + 1] = (float)cos(0.3 * t + i);
      d->obs[r * 3 + 2] = (float)(i % 2);
      d->actions[r * 2] = 0.5f * d->obs[r * 3];
      d->actions[r * 2 + 1] = (i % 2) ? 0.7f : -0.7f;
    }
  }
  return d;
}

static pol_train_config s_small_config(pol_method m) {
  pol_train_config c;
  pol_train_config_default(&c);
  c.method = m;
  c.blocks = 2;
  c.steps = 400;
  c.batch = 32;
  c.net.mlp.width = 32;
  c.net.mlp.depth = 1;
  c.Tp = 4;
  c.Ta = 2;
  return c;
}

TEST(training_lowers_loss_and_files_round_trip) {
  ds_dataset *d = s_dataset();
  char err[512];
  for (int method = 0; method < 3; method++) {
    pol_train_config c = s_small_config((pol_method)method);
    pol_trainer *t = pol_trainer_new(d, &c, "{\"env_name\": \"none\"}", 10.0, err, sizeof(err));
    ASSERT_MSG(t, "%s", err);
    /* the last block's loss: its first 20 steps against its last 40 */
    const int64_t start = c.steps - c.steps / (method == POL_LFM ? c.blocks : 1);
    double first = 0, last = 0;
    while (!pol_trainer_done(t)) {
      int64_t s = pol_trainer_steps_done(t);
      double l = pol_trainer_step(t);
      if (s >= start && s < start + 20) first += l / 20;
      if (s >= c.steps - 40) last += l / 40;
    }
    /* flow losses keep an irreducible floor (the conditional variance): ask for a 20% drop */
    ASSERT_MSG(last < 0.8 * first, "%s: loss %g -> %g", pol_method_name((pol_method)method), first, last);
    /* the file round trip gives the same actions for the same seed */
    char path[] = "/tmp/lfp_pol_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    const pol_policy *p = pol_trainer_policy(t);
    ASSERT(pol_save_file(p, path, err, sizeof(err)) == 0);
    pol_policy *q = pol_load(path, err, sizeof(err));
    ASSERT_MSG(q, "%s", err);
    ASSERT(memcmp(&q->meta, &p->meta, sizeof(pol_meta)) == 0);
    pol_data *a = pol_data_new(p, 9), *b = pol_data_new(q, 9);
    for (int s = 0; s < 6; s++) {
      double obs[3] = {0.1 * s, 0.2, 1.0}, x[2], y[2];
      ASSERT(pol_act(p, a, obs, x, err, sizeof(err)) == 0);
      ASSERT(pol_act(q, b, obs, y, err, sizeof(err)) == 0);
      ASSERT(x[0] == y[0] && x[1] == y[1]);
    }
    pol_data_free(a);
    pol_data_free(b);
    pol_free(q);
    /* a file of another kind is refused */
    ASSERT(fc_lfm_save_file(p->flow, path, err, sizeof(err)) == 0);
    ASSERT(pol_load(path, err, sizeof(err)) == NULL);
    ASSERT_CONTAINS(err, "mismatched");
    unlink(path);
    pol_trainer_free(t);
  }
  ds_dataset_free(d);
  return 0;
}

/* pol.origin: where a policy came from, saved with it and with its
 * snapshots; optional (files without it load with present 0) */
TEST(policy_origin_round_trips_and_is_optional) {
  ds_dataset *d = s_dataset();
  char err[512];
  pol_train_config c = s_small_config(POL_FM);
  c.steps = 3;
  pol_trainer *t = pol_trainer_new(d, &c, "{\"env_name\": \"none\"}", 10.0, err, sizeof(err));
  ASSERT_MSG(t, "%s", err);
  while (!pol_trainer_done(t)) pol_trainer_step(t);
  char path[] = "/tmp/lfp_pol_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  /* without it */
  ASSERT(pol_save_file(pol_trainer_policy(t), path, err, sizeof(err)) == 0);
  pol_policy *q = pol_load(path, err, sizeof(err));
  ASSERT_MSG(q, "%s", err);
  ASSERT(!q->origin.present);
  pol_free(q);
  /* with it: every field back, in the file and in a snapshot */
  pol_origin *o = pol_trainer_origin(t);
  snprintf(o->data, sizeof(o->data), "demos/lift.hdf5");
  snprintf(o->data_sha256, sizeof(o->data_sha256), "%064d", 7);
  o->demos = 200;
  o->train_windows = 3881;
  o->valid_windows = 444;
  o->seed = 12345678901ull;
  o->steps = 16000;
  o->batch = 256;
  o->lr = 3e-4f;
  o->train_s = 237.5;
  snprintf(o->command, sizeof(o->command), "lfp train --data 'a b.hdf5' --out p.lfp");
  o->present = 1;
  ASSERT(pol_save_file(pol_trainer_policy(t), path, err, sizeof(err)) == 0);
  q = pol_load(path, err, sizeof(err));
  ASSERT_MSG(q, "%s", err);
  ASSERT(q->origin.present && !strcmp(q->origin.data, o->data) && !strcmp(q->origin.data_sha256, o->data_sha256) &&
         q->origin.demos == 200 && q->origin.train_windows == 3881 && q->origin.valid_windows == 444 &&
         q->origin.seed == 12345678901ull && q->origin.steps == 16000 && q->origin.batch == 256 &&
         q->origin.lr == 3e-4f && q->origin.train_s == 237.5 && !strcmp(q->origin.command, o->command));
  pol_free(q);
  pol_policy *snap = pol_trainer_snapshot(t, err, sizeof(err));
  ASSERT_MSG(snap, "%s", err);
  ASSERT(snap->origin.present && !strcmp(snap->origin.command, o->command));
  pol_free(snap);
  unlink(path);
  pol_trainer_free(t);
  ds_dataset_free(d);
  return 0;
}

TEST(resumed_training_equals_uninterrupted) {
  ds_dataset *d = s_dataset();
  char err[512], path[] = "/tmp/lfp_ckpt_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  pol_train_config c = s_small_config(POL_LFM);
  pol_trainer *a = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  while (!pol_trainer_done(a)) pol_trainer_step(a);
  pol_trainer *b = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  while (pol_trainer_steps_done(b) < 250) pol_trainer_step(b); /* inside block 2 */
  ASSERT(pol_trainer_checkpoint(b, path, err, sizeof(err)) == 0);
  pol_trainer_free(b);
  pol_trainer *r = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT_MSG(pol_trainer_resume(r, path, err, sizeof(err)) == 0, "%s", err);
  ASSERT_EQ_INT(pol_trainer_steps_done(r), 250);
  while (!pol_trainer_done(r)) pol_trainer_step(r);
  const fc_lfm *fa = pol_trainer_policy(a)->flow, *fr = pol_trainer_policy(r)->flow;
  ASSERT(memcmp(fa->params, fr->params, fc_lfm_nparams(fa) * sizeof(float)) == 0);
  /* other settings: refused */
  c.batch = 16;
  pol_trainer *o = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT(pol_trainer_resume(o, path, err, sizeof(err)) == -1);
  pol_trainer_free(o);
  pol_trainer_free(a);
  pol_trainer_free(r);
  unlink(path);
  ds_dataset_free(d);
  return 0;
}

/* ---------- safe actions and action bounds (issue 10) ---------- */

TEST(nonfinite_observations_are_refused_and_change_nothing) {
  const float b[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  pol_policy *p = s_const_policy(b);
  pol_data *pd = pol_data_new(p, 0);
  char err[256] = "";
  double o = 0.5, a = 7;
  ASSERT(pol_act(p, pd, &o, &a, err, sizeof(err)) == 0);
  ASSERT_NEAR(a, 0.1, 1e-7);
  const float hist[2] = {pd->hist[0], pd->hist[1]};
  const int nseen = pd->nseen, qpos = pd->qpos;
  const int64_t chunks = pd->chunks;
  const double bad[3] = {NAN, -INFINITY, 1e300 /* finite, but not in float32 */};
  const char *why[3] = {"observation 'o' value 0 is not finite (nan)", "observation 'o' value 0 is not finite (-inf)",
                        "observation 'o' value 0 (1e+300) is out of float32's range once normalized"};
  for (int i = 0; i < 3; i++) {
    a = 7;
    ASSERT(pol_act(p, pd, &bad[i], &a, err, sizeof(err)) == -1);
    ASSERT_CONTAINS(err, why[i]);
    ASSERT(a == 7); /* no action, not even a bound */
    ASSERT(pd->hist[0] == hist[0] && pd->hist[1] == hist[1]);
    ASSERT_EQ_INT(pd->nseen, nseen);
    ASSERT_EQ_INT(pd->qpos, qpos);
    ASSERT_EQ_INT(pd->chunks, chunks);
    ASSERT(pol_observe(p, pd, &bad[i], err, sizeof(err)) == -1);
    ASSERT(pol_check_obs(p, &bad[i], err, sizeof(err)) == -1);
    ASSERT_CONTAINS(err, why[i]);
  }
  ASSERT(pol_check_obs(p, &o, err, sizeof(err)) == 0);
  /* the episode goes on from where it was */
  ASSERT(pol_act(p, pd, &o, &a, err, sizeof(err)) == 0);
  ASSERT_NEAR(a, 0.2, 1e-7);
  pol_data_free(pd);
  pol_free(p);
  return 0;
}

TEST(nonfinite_chunk_is_an_error_not_a_command) {
  /* a chunk with NaN (or inf) was clipped to the lower bound: a full command */
  const float nan_b[4] = {0.1f, NAN, 0.3f, 0.4f}, inf_b[4] = {INFINITY, 0.2f, 0.3f, 0.4f};
  const float *bs[2] = {nan_b, inf_b};
  for (int i = 0; i < 2; i++) {
    pol_policy *p = s_const_policy(bs[i]);
    pol_data *pd = pol_data_new(p, 0);
    char err[256] = "";
    double o = 0.5, a = 7, acts[3] = {7, 7, 7};
    ASSERT(pol_act(p, pd, &o, &a, err, sizeof(err)) == -1);
    ASSERT_CONTAINS(err, "the policy sampled a non-finite action");
    ASSERT(a == 7);
    ASSERT_EQ_INT(pd->qlen, 0); /* the queue is empty, not half filled */
    ASSERT_EQ_INT(pd->clipped, 0);
    ASSERT(pol_act(p, pd, &o, &a, err, sizeof(err)) == -1); /* and stays refused */
    ASSERT(pol_sample(p, pd, acts, err, sizeof(err)) == -1);
    ASSERT(acts[0] == 7 && acts[1] == 7 && acts[2] == 7);
    pol_data_free(pd);
    pol_free(p);
  }
  return 0;
}

/* 6 demos of 20 steps: obs a = (sin, cos), b = parity; actions 3 sin and
 * 2.5 cos, so they span about [-3, 3] and [-2.5, 2.5] (absolute targets) */
static ds_dataset *s_wide_dataset(void) {
  ds_dataset *d = s_dataset();
  for (int r = 0; r < 120; r++) {
    d->actions[r * 2] = 3.0f * d->obs[r * 3];
    d->actions[r * 2 + 1] = 2.5f * d->obs[r * 3 + 1];
  }
  return d;
}

TEST(action_bounds_come_from_the_training_actions) {
  ds_dataset *d = s_wide_dataset();
  char err[512];
  pol_train_config c = s_small_config(POL_MSE);
  c.steps = 1500;
  pol_trainer *t = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT_MSG(t, "%s", err);
  while (!pol_trainer_done(t)) pol_trainer_step(t);
  const pol_policy *p = pol_trainer_policy(t);
  /* the bounds are the training split's range, per dimension */
  for (int j = 0; j < 2; j++) {
    ASSERT(p->meta.action_low[j] == p->act_norm.lo[j]);
    ASSERT(p->meta.action_high[j] == p->act_norm.hi[j]);
  }
  ASSERT_MSG(p->meta.action_low[0] < -2.5 && p->meta.action_high[0] > 2.5, "[%g, %g]", p->meta.action_low[0],
             p->meta.action_high[0]);
  ASSERT_MSG(p->meta.action_low[1] < -2 && p->meta.action_high[1] > 2, "[%g, %g]", p->meta.action_low[1],
             p->meta.action_high[1]);
  /* the policy reproduces actions outside [-1, 1], unclipped: two frames
   * as in the demos (0.3 rad apart), whose next targets are (3 sin, 2.5 cos)
   * at 0.7 and 2.4 rad */
  const double angles[2] = {0.7, 2.4};
  for (int k = 0; k < 2; k++) {
    pol_data *pd = pol_data_new(p, 1);
    const double th = angles[k];
    double prev[3] = {sin(th - 0.3), cos(th - 0.3), 0}, obs[3] = {sin(th), cos(th), 0}, act[2 * 2];
    ASSERT(pol_observe(p, pd, prev, err, sizeof(err)) == 0);
    ASSERT(pol_observe(p, pd, obs, err, sizeof(err)) == 0);
    ASSERT(pol_sample(p, pd, act, err, sizeof(err)) == 0); /* none clipped */
    ASSERT_MSG(fabs(act[0] - 3 * obs[0]) < 0.3 && fabs(act[1] - 2.5 * obs[1]) < 0.3, "%g %g for targets %g %g", act[0],
               act[1], 3 * obs[0], 2.5 * obs[1]);
    ASSERT_MSG(fabs(act[0]) > 1.5 && fabs(act[1]) > 1.5, "%g %g", act[0], act[1]);
    pol_data_free(pd);
  }
  pol_trainer_free(t);
  /* overrides: one value for all dimensions, or one per dimension */
  c.steps = 2;
  c.action_nlow = 1, c.action_low[0] = -2;
  c.action_nhigh = 2, c.action_high[0] = 2.75, c.action_high[1] = 4;
  t = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT_MSG(t, "%s", err);
  p = pol_trainer_policy(t);
  ASSERT(p->meta.action_low[0] == -2 && p->meta.action_low[1] == -2);
  ASSERT(p->meta.action_high[0] == 2.75f && p->meta.action_high[1] == 4);
  pol_trainer_free(t);
  c.action_nhigh = 0; /* an upper bound from the data, a lower one given */
  c.action_nlow = 2, c.action_low[0] = -1, c.action_low[1] = 2.9;
  ASSERT(pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "action bounds of dimension 1 would be [2.9, ");
  ASSERT_CONTAINS(err, "low must be below high");
  c.action_nlow = 3;
  ASSERT(pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "3 lower action bounds were given for 2 action dimensions");
  c.action_nlow = 1, c.action_low[0] = 1e300;
  ASSERT(pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "must be a finite float");
  ds_dataset_free(d);
  return 0;
}

TEST(ode_steps_must_divide_among_the_blocks) {
  pol_train_config c = s_small_config(POL_LFM);
  char err[256];
  c.blocks = 3;
  c.ode_steps = 8;
  ASSERT(pol_flow_new(&c, 3, 2, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "8 ODE steps over the chain do not divide evenly among its 3 blocks");
  c.ode_steps = 9;
  fc_lfm *f = pol_flow_new(&c, 3, 2, err, sizeof(err));
  ASSERT_MSG(f, "%s", err);
  ASSERT_EQ_INT(f->cfg.steps, 3);
  fc_lfm_free(f);
  return 0;
}

/* ---------- the policy file format (field-wise, versioned, bounded) ---------- */

/* a seed of tests/fuzz/ckpt: one flag byte, then the file */
static unsigned char *s_seed_bytes(const char *name, size_t *n) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", LFP_CKPT_SEEDS, name);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static unsigned char buf[1 << 16];
  *n = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  if (*n < 2) return NULL;
  unsigned char *b = malloc(--*n);
  memcpy(b, buf + 1, *n);
  return b;
}

static fc_ckpt *s_seed(const char *name, char *err, size_t errsz) {
  size_t n = 0;
  unsigned char *b = s_seed_bytes(name, &n);
  if (!b) return snprintf(err, errsz, "cannot read seed %s", name), NULL;
  fc_ckpt *ck = fc_ckpt_parse(b, n, name, NULL, err, errsz);
  free(b);
  return ck;
}

/* the offset of a section's bytes in a file image (the table at byte 64:
 * entries of name[40], u64 offset, u64 size) */
static size_t s_section_at(const unsigned char *b, const char *name) {
  uint32_t n;
  memcpy(&n, b + 20, 4);
  for (uint32_t i = 0; i < n; i++) {
    const unsigned char *e = b + 64 + (size_t)i * (FC_CKPT_NAME_MAX + 16);
    uint64_t off;
    memcpy(&off, e + FC_CKPT_NAME_MAX, 8);
    if (!strcmp((const char *)e, name)) return (size_t)off;
  }
  return 0;
}

TEST(policy_sections_are_field_wise_and_sized_by_the_dimensions) {
  const float b[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  pol_policy *p = s_const_policy(b);
  char err[512], path[] = "/tmp/lfp_fmt_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  ASSERT(pol_save_file(p, path, err, sizeof(err)) == 0);
  fc_ckpt *ck = fc_ckpt_read(path, "policy", err, sizeof(err));
  ASSERT_MSG(ck, "%s", err);
  ASSERT_EQ_INT(fc_ckpt_version(ck), FC_CKPT_VERSION);
  size_t sz;
  /* pol.meta: version, 7 int32, one key "o" (4 + 1 bytes) and its dim, 1 + 1
   * bounds, env_args "" and version "" (4 bytes each), control_hz */
  const unsigned char *meta = fc_ckpt_get(ck, "pol.meta", &sz);
  ASSERT_EQ_INT(sz, 4 + 28 + 5 + 4 + 8 + 4 + 4 + 8);
  uint32_t ver;
  memcpy(&ver, meta, 4);
  ASSERT_EQ_INT(ver, 1);
  /* each norm section: version, dim, kind, 6 arrays of dim (1) values */
  ASSERT(fc_ckpt_get(ck, "norm.obs", &sz) && sz == 12 + 6 * 4);
  ASSERT(fc_ckpt_get(ck, "norm.actions", &sz) && sz == 12 + 6 * 4);
  /* lfm.config: version, nblocks, the network (kind + 7 mlp fields), 5 int32, 2 floats */
  ASSERT(fc_ckpt_get(ck, "lfm.config", &sz) && sz == 4 + 4 + 8 * 4 + 5 * 4 + 2 * 4);
  /* and it loads back field for field */
  pol_policy *q = pol_load_ckpt(ck, path, err, sizeof(err));
  ASSERT_MSG(q, "%s", err);
  ASSERT(memcmp(&q->meta, &p->meta, sizeof(pol_meta)) == 0);
  ASSERT(memcmp(&q->obs_norm, &p->obs_norm, sizeof(fc_norm)) == 0);
  ASSERT(memcmp(q->flow->params, p->flow->params, fc_lfm_nparams(p->flow) * sizeof(float)) == 0);
  pol_free(q);
  fc_ckpt_free(ck);
  pol_free(p);
  unlink(path);
  return 0;
}

/* The seeds <prefix>NAME (older files, of checkpoint format `format`) and
 * their twins NAME written by this lfp from the same weights and statistics
 * load to the same policies and models and act identically. */
static int s_old_seeds_agree(const char *prefix, int format) {
  static const char *const names[3] = {"lfm-minmax.seed", "fm-meanstd-concat.seed", "mse-minmax.seed"};
  char err[512], v1name[64];
  for (int i = 0; i < 3; i++) {
    snprintf(v1name, sizeof(v1name), "%s%s", prefix, names[i]);
    fc_ckpt *c1 = s_seed(v1name, err, sizeof(err)), *c2 = s_seed(names[i], err, sizeof(err));
    ASSERT_MSG(c1 && c2, "%s", err);
    ASSERT_EQ_INT(fc_ckpt_version(c1), format);
    ASSERT_EQ_INT(fc_ckpt_version(c2), 2);
    pol_policy *p1 = pol_load_ckpt(c1, v1name, err, sizeof(err));
    ASSERT_MSG(p1, "%s", err);
    pol_policy *p2 = pol_load_ckpt(c2, names[i], err, sizeof(err));
    ASSERT_MSG(p2, "%s", err);
    ASSERT(memcmp(&p1->meta, &p2->meta, sizeof(pol_meta)) == 0);
    ASSERT_CONTAINS(p1->meta.env_args, "seed");
    ASSERT(strcmp(p1->meta.keys[1], "grip") == 0 && p1->meta.key_dims[1] == 1);
    ASSERT(memcmp(&p1->obs_norm, &p2->obs_norm, sizeof(fc_norm)) == 0);
    ASSERT(memcmp(&p1->act_norm, &p2->act_norm, sizeof(fc_norm)) == 0);
    ASSERT(memcmp(&p1->flow->cfg, &p2->flow->cfg, sizeof(fc_lfm_config)) == 0);
    ASSERT(memcmp(p1->flow->params, p2->flow->params, fc_lfm_nparams(p1->flow) * sizeof(float)) == 0);
    pol_data *a = pol_data_new(p1, 3), *b = pol_data_new(p2, 3);
    for (int t = 0; t < 4; t++) {
      double obs[3] = {0.1 * t, -0.2, 0.5}, x[2], y[2];
      ASSERT(pol_act(p1, a, obs, x, NULL, 0) == 0);
      ASSERT(pol_act(p2, b, obs, y, NULL, 0) == 0);
      ASSERT(x[0] == y[0] && x[1] == y[1]);
    }
    pol_data_free(a);
    pol_data_free(b);
    pol_free(p1);
    pol_free(p2);
    fc_ckpt_free(c1);
    fc_ckpt_free(c2);
  }
  /* a bare model ("lfm" kind) too */
  snprintf(v1name, sizeof(v1name), "%slfm-kind.seed", prefix);
  fc_ckpt *c1 = s_seed(v1name, err, sizeof(err)), *c2 = s_seed("lfm-kind.seed", err, sizeof(err));
  ASSERT_MSG(c1 && c2, "%s", err);
  fc_lfm *m1 = fc_lfm_load(c1, NULL, err, sizeof(err)), *m2 = fc_lfm_load(c2, NULL, err, sizeof(err));
  ASSERT_MSG(m1 && m2, "%s", err);
  ASSERT_EQ_INT(m1->cfg.net.kind, FC_NET_MLP);
  ASSERT(memcmp(&m1->cfg, &m2->cfg, sizeof(fc_lfm_config)) == 0);
  ASSERT(memcmp(m1->params, m2->params, fc_lfm_nparams(m1) * sizeof(float)) == 0);
  fc_lfm_free(m1);
  fc_lfm_free(m2);
  fc_ckpt_free(c1);
  fc_ckpt_free(c2);
  return 0;
}

TEST(format1_policy_files_still_load) {
  /* the v1-* seeds were written by lfp at a28839e (format 1: raw structs) */
  char err[512];
  if (s_old_seeds_agree("v1-", 1)) return 1;
  /* the format-1 reader is bounded too: a width of 10^9, a negative obs
   * dimension or a huge norm dim behind a valid CRC are refused */
  const struct {
    const char *section;
    size_t at;
    int32_t value;
    const char *expect;
  } hostile[] = {
      {"lfm.config", 12, 1000000000, "section 'lfm.config' has width = 1000000000, outside 1..65536"},
      {"pol.meta", 16, -3, "section 'pol.meta' has obs_dim = -3, outside 1..512"},
      {"pol.meta", 540, 1 << 30, "section 'pol.meta' has key dim 0 = 1073741824, outside 1..512"},
      {"norm.obs", 0, 1 << 30, "section 'norm.obs' has dim = 1073741824, outside 1..512"},
  };
  for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
    size_t n = 0;
    unsigned char *b = s_seed_bytes("v1-lfm-minmax.seed", &n);
    ASSERT(b);
    const size_t off = s_section_at(b, hostile[i].section);
    ASSERT(off > 0);
    memcpy(b + off + hostile[i].at, &hostile[i].value, 4);
    fc_ckpt_seal(b, n);
    fc_ckpt *ck = fc_ckpt_parse(b, n, "v1.lfp", "policy", err, sizeof(err));
    ASSERT_MSG(ck, "%s", err);
    ASSERT(pol_load_ckpt(ck, "v1.lfp", err, sizeof(err)) == NULL);
    ASSERT_MSG(strstr(err, hostile[i].expect), "expected \"%s\" in \"%s\"", hostile[i].expect, err);
    printf("| hostile format-1 policy file: %s field at %zu = %d | %s |\n", hostile[i].section, hostile[i].at,
           hostile[i].value, err);
    fc_ckpt_free(ck);
    free(b);
  }
  return 0;
}

TEST(config_version1_policy_files_still_load) {
  /* the cfg1-* seeds were written by lfp at 28aa4df (format 2, lfm.config
   * version 1: no network kind, an mlp): they load as that mlp */
  return s_old_seeds_agree("cfg1-", 2);
}

/* A policy file built section by section, every CRC valid: FM, To 2, Tp 2,
 * Ta 1, keys "pos" (2) + "grip" (1), 2-D actions, width 8, depth 1, temb 4;
 * each hostile case overrides one part. */
typedef struct {
  const char *what;
  int32_t nblocks, width, depth, dx, dc;
  int32_t obs_dim, action_dim, nkeys, kd0, kd1;
  int32_t norm_obs_dim, meta_version;
  uint32_t env_len;  /* a length word for env_args (0: the real one) */
  int cut_meta;      /* bytes cut off the end of pol.meta */
  int extra_meta;    /* bytes appended to pol.meta */
  float obs_scale;
  int params_floats; /* -1: as many as the config needs */
  const char *expect;
  int config_v2;     /* lfm.config version 2 with network kind net_kind (0: version 1, no kind) */
  int32_t net_kind;
} s_hostile;

static void s_hostile_write(const s_hostile *h, const char *path, char *err, size_t errsz) {
  fc_ckpt_writer *w = fc_ckpt_writer_new("policy");
  fc_ckpt_buf b = {0};
  fc_ckpt_put_u32(&b, (uint32_t)h->meta_version);
  const int32_t iv[7] = {POL_FM, 2, 2, 1, h->obs_dim, h->action_dim, h->nkeys};
  for (int i = 0; i < 7; i++) fc_ckpt_put_i32(&b, iv[i]);
  const char *keys[2] = {"pos", "grip"};
  const int32_t kd[2] = {h->kd0, h->kd1};
  for (int k = 0; k < 2; k++) {
    fc_ckpt_put_str(&b, keys[k]);
    fc_ckpt_put_i32(&b, kd[k]);
  }
  const float lo[2] = {-1, -1}, hi[2] = {1, 1};
  fc_ckpt_put_f32s(&b, lo, 2);
  fc_ckpt_put_f32s(&b, hi, 2);
  if (h->env_len) fc_ckpt_put_u32(&b, h->env_len);
  else fc_ckpt_put_str(&b, "{}");
  fc_ckpt_put_str(&b, "test");
  fc_ckpt_put_f64(&b, 10.0);
  for (int i = 0; i < h->extra_meta; i++) fc_ckpt_put_u32(&b, 0);
  b.len -= (size_t)h->cut_meta;
  fc_ckpt_add_buf(w, "pol.meta", &b);
  /* statistics: norm.obs of norm_obs_dim values, norm.actions of 2 */
  const int32_t ndim[2] = {h->norm_obs_dim, 2};
  const char *nname[2] = {"norm.obs", "norm.actions"};
  for (int i = 0; i < 2; i++) {
    fc_ckpt_put_u32(&b, 1);
    fc_ckpt_put_i32(&b, ndim[i]);
    fc_ckpt_put_i32(&b, FC_NORM_MINMAX);
    const int n = ndim[i] > 0 && ndim[i] < 64 ? ndim[i] : 4;
    for (int a = 0; a < 6; a++)
      for (int j = 0; j < n; j++) fc_ckpt_put_f32(&b, a == 0 ? (i == 0 ? h->obs_scale : 1.0f) : 0.0f);
    fc_ckpt_add_buf(w, nname[i], &b);
  }
  /* the network (version 2: the kind after nblocks) */
  const int32_t cv[13] = {h->nblocks, h->dx, h->dc, h->width, h->depth, 4, FC_ACT_SILU, FC_COND_FILM,
                          FC_INTERP_LINEAR, FC_COUPLING_DEPENDENT, FC_SAMPLER_RK4, 2, FC_OBJ_FLOW};
  fc_ckpt_put_u32(&b, h->config_v2 ? 2 : 1);
  for (int i = 0; i < 13; i++) {
    fc_ckpt_put_i32(&b, cv[i]);
    if (i == 0 && h->config_v2) fc_ckpt_put_i32(&b, h->net_kind);
  }
  fc_ckpt_put_f32(&b, 0.2f);
  fc_ckpt_put_f32(&b, 1.25f);
  fc_ckpt_add_buf(w, "lfm.config", &b);
  /* as many parameters as the config needs when it is small, else the base's */
  const int small = h->dx > 0 && h->dx < 64 && h->dc >= 0 && h->dc < 64 && h->width > 0 && h->width < 64 &&
                    h->depth >= 0 && h->depth < 4 && h->nblocks > 0 && h->nblocks < 4;
  fc_mlp_config nc;
  fc_mlp_config_default(&nc, small ? h->dx : 4, small ? h->dc : 6);
  nc.width = small ? h->width : 8, nc.depth = small ? h->depth : 1, nc.temb = 4;
  const size_t np = h->params_floats >= 0 ? (size_t)h->params_floats : fc_mlp_nparams(&nc) * (small ? h->nblocks : 1);
  float *params = calloc(np ? np : 1, sizeof(float));
  fc_ckpt_add(w, "lfm.params", params, np * sizeof(float));
  free(params);
  if (fc_ckpt_write(w, path, err, errsz)) fprintf(stderr, "%s\n", err);
  fc_ckpt_writer_free(w);
}

TEST(hostile_policy_files_are_refused_with_a_sentence) {
  /* valid CRC, hostile contents: each refused before anything is sized from
   * it (under ASan an attempted huge allocation would abort the test) */
  const s_hostile base = {"valid", 1, 8, 1, 4, 6, 3, 2, 2, 2, 1, 3, 1, 0, 0, 0, 1.0f, -1, NULL, 0, 0};
  s_hostile cases[24];
  int n = 0;
  cases[n] = base, cases[n].what = "width 10^9", cases[n].width = 1000000000,
  cases[n++].expect = "width = 1000000000, outside 1..65536";
  cases[n] = base, cases[n].what = "nblocks 10^6", cases[n].nblocks = 1000000,
  cases[n++].expect = "nblocks = 1000000, outside 1..64";
  cases[n] = base, cases[n].what = "negative network dim", cases[n].dx = -4,
  cases[n++].expect = "dx = -4, outside 1..65536";
  cases[n] = base, cases[n].what = "negative obs_dim", cases[n].obs_dim = -3,
  cases[n++].expect = "obs_dim = -3, outside 1..512";
  cases[n] = base, cases[n].what = "overflowing key dims (2^31-1 + 1)", cases[n].kd0 = INT32_MAX,
  cases[n++].expect = "key dim = 2147483647, outside 1..512";
  cases[n] = base, cases[n].what = "key dims that do not sum", cases[n].kd0 = 3,
  cases[n++].expect = "observation keys add up to 4 values, not 3";
  cases[n] = base, cases[n].what = "norm dim mismatching obs_dim", cases[n].norm_obs_dim = 4,
  cases[n++].expect = "normalization statistics are for 4 obs / 2 action values, the policy has 3 / 2";
  cases[n] = base, cases[n].what = "norm dim 2^31-1", cases[n].norm_obs_dim = INT32_MAX,
  cases[n++].expect = "dim = 2147483647, outside 1..512";
  cases[n] = base, cases[n].what = "parameters missing", cases[n].params_floats = 0,
  cases[n++].expect = "section 'lfm.params' has 0 bytes, its config needs 1584";
  cases[n] = base, cases[n].what = "network not matching the policy", cases[n].dc = 8,
  cases[n++].expect = "the network takes 4-D chunks and 8-D conditions; the policy needs 4 and 6";
  cases[n] = base, cases[n].what = "every bound at its maximum (7 x 10^13 parameters)", cases[n].nblocks = 64,
  cases[n].width = 65536, cases[n].depth = 64, cases[n].dx = 65536, cases[n].dc = 65536,
  cases[n++].expect = "section 'lfm.params' has 1584 bytes, its config needs 283686918422528";
  cases[n] = base, cases[n].what = "string length 2^32-1", cases[n].env_len = UINT32_MAX,
  cases[n++].expect = "has a 4294967295-byte env_args, longer than 1023";
  cases[n] = base, cases[n].what = "pol.meta cut inside a field", cases[n].cut_meta = 3,
  cases[n++].expect = "ends inside field 'control_hz'";
  cases[n] = base, cases[n].what = "pol.meta with bytes left over", cases[n].extra_meta = 1,
  cases[n++].expect = "has 4 bytes left over";
  cases[n] = base, cases[n].what = "section version from the future", cases[n].meta_version = 9,
  cases[n++].expect = "section 'pol.meta' has version 9, this lfp reads 1 to 1";
  cases[n] = base, cases[n].what = "NaN normalization scale", cases[n].obs_scale = NAN,
  cases[n++].expect = "non-finite or zero scale at dimension 0";
  cases[n] = base, cases[n].what = "network kind this lfp does not know", cases[n].config_v2 = 1,
  cases[n].net_kind = FC_NET_KINDS, cases[n++].expect = "which this lfp does not know (it knows mlp";
  cases[n] = base, cases[n].what = "network kind -7", cases[n].config_v2 = 1, cases[n].net_kind = -7,
  cases[n++].expect = "section 'lfm.config' has network kind -7";
  cases[n] = base, cases[n].what = "width 10^9 behind the network kind", cases[n].config_v2 = 1,
  cases[n].width = 1000000000, cases[n++].expect = "width = 1000000000, outside 1..65536";
  char path[] = "/tmp/lfp_hostile_XXXXXX", err[512];
  int fd = mkstemp(path);
  close(fd);
  /* the base file is valid, with either lfm.config version: each case fails for its own reason only */
  s_hostile base2 = base;
  base2.config_v2 = 1, base2.net_kind = FC_NET_MLP;
  s_hostile_write(&base2, path, err, sizeof(err));
  pol_policy *p = pol_load(path, err, sizeof(err));
  ASSERT_MSG(p, "%s", err);
  pol_free(p);
  s_hostile_write(&base, path, err, sizeof(err));
  p = pol_load(path, err, sizeof(err));
  ASSERT_MSG(p, "%s", err);
  pol_free(p);
  for (int i = 0; i < n; i++) {
    s_hostile_write(&cases[i], path, err, sizeof(err));
    err[0] = 0;
    p = pol_load(path, err, sizeof(err));
    ASSERT_MSG(!p, "%s: loaded", cases[i].what);
    ASSERT_MSG(strstr(err, cases[i].expect), "%s: expected \"%s\" in \"%s\"", cases[i].what, cases[i].expect, err);
    ASSERT_CONTAINS(err, path);
    printf("| hostile policy file: %s | %s |\n", cases[i].what, err);
  }
  unlink(path);
  return 0;
}

TEST(resume_compares_fields_not_the_lfp_version) {
  /* a checkpoint written by another lfp version resumes; one from other
   * statistics is refused, naming what differs */
  ds_dataset *d = s_dataset();
  char err[512], path[] = "/tmp/lfp_ckpt_ver_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  pol_train_config c = s_small_config(POL_FM);
  c.steps = 40;
  pol_trainer *a = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT_MSG(a, "%s", err);
  while (pol_trainer_steps_done(a) < 20) pol_trainer_step(a);
  snprintf(((pol_policy *)pol_trainer_policy(a))->meta.version, 16, "0.0.1-old");
  ASSERT(pol_trainer_checkpoint(a, path, err, sizeof(err)) == 0);
  pol_trainer *r = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT_MSG(pol_trainer_resume(r, path, err, sizeof(err)) == 0, "%s", err);
  ASSERT_EQ_INT(pol_trainer_steps_done(r), 20);
  pol_trainer_free(r);
  /* other statistics: another normalization kind */
  c.norm = FC_NORM_MEANSTD;
  r = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT(pol_trainer_resume(r, path, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "observation statistics differ");
  pol_trainer_free(r);
  pol_trainer_free(a);
  unlink(path);
  ds_dataset_free(d);
  return 0;
}


/* ---------- distillation (issue 12) ---------- */

/* a small lfm teacher, trained (NULL on failure) */
static pol_trainer *s_trained_teacher(const ds_dataset *d) {
  char err[512];
  pol_train_config c = s_small_config(POL_LFM);
  pol_trainer *t = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  if (!t) fprintf(stderr, "%s\n", err);
  while (t && !pol_trainer_done(t)) pol_trainer_step(t);
  return t;
}

/* 120 distillation steps (60 per block) of batch 32 */
static pol_distill_config s_small_distill(void) {
  pol_distill_config dc;
  pol_distill_config_default(&dc);
  dc.steps = 120;
  dc.batch = 32;
  return dc;
}

TEST(distilled_policy_reloads_bit_for_bit_and_resumes) {
  /* a small lfm teacher; its student: NFE = blocks, the teacher's metadata
   * and statistics, a pol.distill record; the file reloads to the same
   * weights, record and actions; a resumed distillation equals an
   * uninterrupted one; an mse teacher, a distilled teacher and another
   * teacher on resume are refused */
  ds_dataset *d = s_dataset();
  char err[512], path[] = "/tmp/lfp_student_XXXXXX", ck[] = "/tmp/lfp_dckpt_XXXXXX";
  close(mkstemp(path));
  close(mkstemp(ck));
  pol_trainer *tt = s_trained_teacher(d);
  ASSERT(tt);
  const pol_policy *teacher = pol_trainer_policy(tt);
  pol_distill_config dc = s_small_distill();
  pol_trainer *a = pol_distiller_new(d, teacher, "teacher.lfp", &dc, err, sizeof(err));
  ASSERT_MSG(a, "%s", err);
  while (!pol_trainer_done(a)) pol_trainer_step(a);
  const pol_policy *st = pol_trainer_policy(a);
  ASSERT_EQ_INT(pol_nfe(st, st->flow->cfg.sampler, 0), 2);
  ASSERT(st->distill.present && !strcmp(st->distill.teacher, "teacher.lfp"));
  ASSERT(st->distill.teacher_crc == pol_params_crc(teacher));
  ASSERT_EQ_INT(st->distill.teacher_nfe, pol_nfe(teacher, teacher->flow->cfg.sampler, 0));
  ASSERT(memcmp(&st->meta, &teacher->meta, sizeof(pol_meta)) == 0);
  ASSERT(memcmp(st->flow->params, teacher->flow->params, fc_lfm_nparams(st->flow) * sizeof(float)) != 0);
  ASSERT(pol_save_file(st, path, err, sizeof(err)) == 0);
  pol_policy *q = pol_load(path, err, sizeof(err));
  ASSERT_MSG(q, "%s", err);
  ASSERT(memcmp(q->flow->params, st->flow->params, fc_lfm_nparams(st->flow) * sizeof(float)) == 0);
  ASSERT(memcmp(&q->distill, &st->distill, sizeof(pol_distill)) == 0);
  pol_data *x = pol_data_new(st, 3), *y = pol_data_new(q, 3);
  for (int s = 0; s < 6; s++) {
    double obs[3] = {0.1 * s, -0.2, 0.0}, u[2], v[2];
    ASSERT(pol_act(st, x, obs, u, err, sizeof(err)) == 0);
    ASSERT(pol_act(q, y, obs, v, err, sizeof(err)) == 0);
    ASSERT(!memcmp(u, v, sizeof(u)));
  }
  pol_data_free(x);
  pol_data_free(y);

  /* resume inside block 2 */
  pol_trainer *b = pol_distiller_new(d, teacher, "teacher.lfp", &dc, err, sizeof(err));
  while (pol_trainer_steps_done(b) < 70) pol_trainer_step(b);
  ASSERT(pol_trainer_checkpoint(b, ck, err, sizeof(err)) == 0);
  pol_trainer_free(b);
  pol_trainer *r = pol_distiller_new(d, teacher, "teacher.lfp", &dc, err, sizeof(err));
  ASSERT_MSG(pol_trainer_resume(r, ck, err, sizeof(err)) == 0, "%s", err);
  while (!pol_trainer_done(r)) pol_trainer_step(r);
  ASSERT(memcmp(pol_trainer_policy(r)->flow->params, st->flow->params, fc_lfm_nparams(st->flow) * sizeof(float)) == 0);
  pol_trainer_free(r);
  /* another teacher (the student itself, as a stand-in with other weights): refused */
  pol_policy *other = pol_load(path, err, sizeof(err));
  other->distill.present = 0;
  pol_trainer *o = pol_distiller_new(d, other, "teacher.lfp", &dc, err, sizeof(err));
  ASSERT_MSG(o, "%s", err);
  ASSERT(pol_trainer_resume(o, ck, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "teacher");
  pol_trainer_free(o);
  pol_free(other);
  /* a distilled teacher, an mse teacher: refused with a sentence */
  ASSERT(pol_distiller_new(d, q, path, &dc, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "itself distilled");
  pol_train_config mc = s_small_config(POL_MSE);
  mc.steps = 20;
  pol_trainer *mt = pol_trainer_new(d, &mc, "{}", 10.0, err, sizeof(err));
  while (!pol_trainer_done(mt)) pol_trainer_step(mt);
  ASSERT(pol_distiller_new(d, pol_trainer_policy(mt), "mse.lfp", &dc, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "nothing to distill");
  pol_trainer_free(mt);
  pol_free(q);
  pol_trainer_free(a);
  pol_trainer_free(tt);
  unlink(path);
  unlink(ck);
  ds_dataset_free(d);
  return 0;
}

TEST(pooled_distillation_resumes_and_records_its_pool) {
  /* lfp distill --pairs: the pool is drawn once per block from a stream of
   * the seed and the block, so a run resumed inside block 1 or 2 equals an
   * uninterrupted one bit for bit; the pool size is recorded, reloads, and
   * another pool size on resume is refused; the pooled student differs from
   * the fresh-pairs one (the pool is used) and lowers the distillation loss;
   * a pool size out of range is refused. A version-1 pol.distill section
   * (before pairs) reads as fresh pairs. */
  ds_dataset *d = s_dataset();
  char err[512], path[] = "/tmp/lfp_pooled_XXXXXX", ck[] = "/tmp/lfp_pckpt_XXXXXX";
  close(mkstemp(path));
  close(mkstemp(ck));
  pol_trainer *tt = s_trained_teacher(d);
  ASSERT(tt);
  const pol_policy *teacher = pol_trainer_policy(tt);
  pol_distill_config dc = s_small_distill();
  pol_trainer *fresh = pol_distiller_new(d, teacher, "teacher.lfp", &dc, err, sizeof(err));
  while (!pol_trainer_done(fresh)) pol_trainer_step(fresh);
  dc.pairs = 100; /* not a multiple of the batch: the last chunk of the pool is short */
  pol_trainer *a = pol_distiller_new(d, teacher, "teacher.lfp", &dc, err, sizeof(err));
  ASSERT_MSG(a, "%s", err);
  double first = 0.0, last = 0.0;
  for (int i = 0; !pol_trainer_done(a); i++) {
    double l = pol_trainer_step(a);
    if (i >= 60 && i < 65) first += l;
    if (i >= 115) last += l;
  }
  ASSERT_MSG(last < first, "block 2's pooled loss rose: %g -> %g", first / 5, last / 5);
  const pol_policy *st = pol_trainer_policy(a);
  const size_t np = fc_lfm_nparams(st->flow);
  ASSERT(memcmp(st->flow->params, pol_trainer_policy(fresh)->flow->params, np * sizeof(float)) != 0);
  ASSERT(st->distill.pairs == 100);
  ASSERT(pol_save_file(st, path, err, sizeof(err)) == 0);
  pol_policy *q = pol_load(path, err, sizeof(err));
  ASSERT_MSG(q, "%s", err);
  ASSERT(q->distill.pairs == 100 && memcmp(&q->distill, &st->distill, sizeof(pol_distill)) == 0);
  /* the validation pairs are kept per block: a second call, and the first
   * call of another trainer at the same point, give the same loss */
  double va = pol_trainer_valid_loss(a), vc = pol_trainer_valid_loss(a);
  ASSERT(isfinite(va) && va == vc);
  for (int at = 30; at <= 90; at += 60) { /* inside block 1, inside block 2 */
    pol_trainer *b = pol_distiller_new(d, teacher, "teacher.lfp", &dc, err, sizeof(err)), *e = NULL;
    if (at == 90) e = pol_distiller_new(d, teacher, "teacher.lfp", &dc, err, sizeof(err));
    for (int i = 0; i < at; i++) {
      pol_trainer_step(b);
      if (e) pol_trainer_step(e);
      if (e && i == 10) pol_trainer_valid_loss(b); /* b keeps block 1's pairs, then block 2's */
      if (e && i == 80) pol_trainer_valid_loss(b);
    }
    if (e) {
      double vb = pol_trainer_valid_loss(b), ve = pol_trainer_valid_loss(e);
      ASSERT_MSG(vb == ve, "kept validation pairs give %.9g, fresh ones %.9g", vb, ve);
      pol_trainer_free(e);
    }
    ASSERT(pol_trainer_checkpoint(b, ck, err, sizeof(err)) == 0);
    pol_trainer_free(b);
    pol_trainer *r = pol_distiller_new(d, teacher, "teacher.lfp", &dc, err, sizeof(err));
    ASSERT_MSG(pol_trainer_resume(r, ck, err, sizeof(err)) == 0, "%s", err);
    while (!pol_trainer_done(r)) pol_trainer_step(r);
    ASSERT_MSG(memcmp(pol_trainer_policy(r)->flow->params, st->flow->params, np * sizeof(float)) == 0,
               "resumed at step %d", at);
    pol_trainer_free(r);
  }
  pol_distill_config other = dc;
  other.pairs = 200;
  pol_trainer *o = pol_distiller_new(d, teacher, "teacher.lfp", &other, err, sizeof(err));
  ASSERT(pol_trainer_resume(o, ck, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "distillation settings");
  pol_trainer_free(o);
  other.pairs = ((int64_t)1 << 24) + 1;
  ASSERT(pol_distiller_new(d, teacher, "teacher.lfp", &other, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "teacher pairs");

  /* version 1 of pol.distill: the same fields without pairs */
  pol_policy *v1 = pol_load(path, err, sizeof(err));
  v1->distill.present = 0;
  fc_ckpt_writer *w = fc_ckpt_writer_new("policy");
  pol_save(v1, w);
  fc_ckpt_buf buf = {0};
  const pol_distill *r = &st->distill;
  fc_ckpt_put_u32(&buf, 1);
  fc_ckpt_put_str(&buf, r->teacher);
  fc_ckpt_put_u32(&buf, r->teacher_crc);
  fc_ckpt_put_i32(&buf, r->teacher_blocks);
  fc_ckpt_put_i32(&buf, r->teacher_sampler);
  fc_ckpt_put_i32(&buf, r->teacher_steps);
  fc_ckpt_put_i32(&buf, r->teacher_nfe);
  fc_ckpt_put_i64(&buf, r->steps);
  fc_ckpt_put_i32(&buf, r->batch);
  fc_ckpt_put_u64(&buf, r->seed);
  fc_ckpt_put_f32(&buf, r->lr);
  fc_ckpt_add_buf(w, "pol.distill", &buf);
  ASSERT_MSG(fc_ckpt_write(w, path, err, sizeof(err)) == 0, "%s", err);
  fc_ckpt_writer_free(w);
  pol_policy *old = pol_load(path, err, sizeof(err));
  ASSERT_MSG(old, "%s", err);
  ASSERT(old->distill.present && old->distill.pairs == 0 && old->distill.teacher_crc == r->teacher_crc &&
         old->distill.steps == r->steps);
  pol_free(old);
  pol_free(v1);
  pol_free(q);
  pol_trainer_free(a);
  pol_trainer_free(fresh);
  pol_trainer_free(tt);
  unlink(path);
  unlink(ck);
  ds_dataset_free(d);
  return 0;
}

/* ---------- latent flows (issue 16) ---------- */

TEST(latent_policy_decodes_its_flow_and_round_trips) {
  ds_dataset *d = s_dataset();
  char err[512], path[] = "/tmp/lfp_latent_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  pol_train_config c = s_small_config(POL_FM);
  c.latent = 3; /* chunks of Tp 4 x 2 = 8 values */
  c.ae_width = 16;
  c.ae_steps = 300;
  c.steps = 200;
  pol_trainer *t = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT_MSG(t, "%s", err);
  const fc_ae_fit_result af = pol_trainer_latent_fit(t);
  ASSERT(isfinite(af.train_mse) && isfinite(af.valid_mse) && af.train_mse < 0.5);
  while (!pol_trainer_done(t)) pol_trainer_step(t);
  const pol_policy *p = pol_trainer_policy(t);
  ASSERT(p->latent && p->latent->cfg.dx == 8 && p->latent->cfg.dz == 3);
  ASSERT_EQ_INT(fc_net_dx(&p->flow->cfg.net), 3);
  /* one chunk by hand: 3 normals, the flow, the decoder, unnormalized and clipped */
  const double obs[3] = {0.2, -0.4, 1.0};
  pol_data *pd = pol_data_new(p, 5);
  double act[2 * 2];
  ASSERT(pol_observe(p, pd, obs, err, sizeof(err)) == 0);
  ASSERT_MSG(pol_sample(p, pd, act, err, sizeof(err)) >= 0, "%s", err);
  fc_rng rng;
  fc_rng_seed(&rng, 5);
  float z[3], chunk[8];
  fc_rng_normal_fill(&rng, z, 3);
  fc_lfm_ws *ws = fc_lfm_ws_new(p->flow, 1);
  fc_lfm_sample(p->flow, ws, z, pd->cond, 1, p->flow->cfg.sampler, p->flow->cfg.steps, &rng);
  fc_ae_ws *aw = fc_ae_ws_new(&p->latent->cfg, 1);
  fc_ae_decode_std(p->latent, aw, chunk, z, 1);
  fc_norm_invert(&p->act_norm, chunk, 4);
  for (int i = 0; i < 4; i++) {
    const int j = i % 2;
    const double want = fmin(fmax(chunk[i], p->meta.action_low[j]), p->meta.action_high[j]);
    ASSERT_MSG(act[i] == want, "action %d: %.9g vs %.9g", i, act[i], want);
  }
  fc_ae_ws_free(aw);
  fc_lfm_ws_free(ws);
  /* the batch path: row r is the r-th of successive samples on one stream */
  const int B = 3;
  double frames[3 * 3], seq[3 * 2 * 2], bat[3 * 2 * 2];
  for (int i = 0; i < B * 3; i++) frames[i] = 0.3 * sin(0.9 * i);
  pol_reset(pd, 8);
  for (int r = 0; r < B; r++) {
    pol_forget(pd);
    ASSERT(pol_observe(p, pd, frames + r * 3, err, sizeof(err)) == 0);
    ASSERT(pol_sample(p, pd, seq + r * 4, err, sizeof(err)) >= 0);
  }
  pol_batch *pb = pol_batch_new(p, 4);
  fc_rng_seed(&rng, 8);
  ASSERT_MSG(pol_sample_batch(p, pb, frames, B, 1, p->flow->cfg.sampler, p->flow->cfg.steps, &rng, 2, bat, err,
                              sizeof(err)) >= 0, "%s", err);
  for (int i = 0; i < B * 4; i++) ASSERT_NEAR(bat[i], seq[i], 1e-5);
  pol_batch_free(pb);
  /* RTC on a latent policy blends (no guidance through the decoder) */
  fc_guide_ws *gw = fc_guide_ws_new(p->flow, 1);
  pol_rtc r = {.index = 2, .delay = 1, .beta = 0};
  int how = -1;
  ASSERT(pol_sample_rtc(p, pd, gw, &r, 2, act, &how, err, sizeof(err)) >= 0);
  ASSERT_EQ_INT(how, POL_RTC_BLENDED);
  fc_guide_ws_free(gw);
  pol_data_free(pd);
  /* the file holds the autoencoder: it reloads bit for bit and samples the same */
  ASSERT_MSG(pol_save_file(p, path, err, sizeof(err)) == 0, "%s", err);
  pol_policy *q = pol_load(path, err, sizeof(err));
  ASSERT_MSG(q, "%s", err);
  ASSERT(q->latent && !memcmp(q->latent->params, p->latent->params, fc_ae_nparams(&p->latent->cfg) * sizeof(float)));
  ASSERT(pol_params_crc(q) == pol_params_crc(p));
  double a1[4], a2[4];
  pol_data *d1 = pol_data_new(p, 3), *d2 = pol_data_new(q, 3);
  ASSERT(pol_act(p, d1, obs, a1, err, sizeof(err)) == 0 && pol_act(q, d2, obs, a2, err, sizeof(err)) == 0);
  ASSERT(!memcmp(a1, a2, 2 * sizeof(double)));
  pol_data_free(d1);
  pol_data_free(d2);
  pol_free(q);
  /* resuming a latent run: the autoencoder is fitted again, identically */
  pol_trainer *b = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  while (pol_trainer_steps_done(b) < 80) pol_trainer_step(b);
  ASSERT(pol_trainer_checkpoint(b, path, err, sizeof(err)) == 0);
  pol_trainer_free(b);
  pol_trainer *rr = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT_MSG(pol_trainer_resume(rr, path, err, sizeof(err)) == 0, "%s", err);
  while (!pol_trainer_done(rr)) pol_trainer_step(rr);
  ASSERT(!memcmp(pol_trainer_policy(rr)->flow->params, p->flow->params, fc_lfm_nparams(p->flow) * sizeof(float)));
  pol_trainer_free(rr);
  /* another latent size, or none, is another run */
  c.latent = 2;
  pol_trainer *o = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT(pol_trainer_resume(o, path, err, sizeof(err)) == -1);
  pol_trainer_free(o);
  /* a latent wider than the chunk: one sentence */
  c.latent = 9;
  ASSERT(pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "--latent 9: the latent dimension must be in 1..8");
  /* distilling a latent teacher: the student shares its autoencoder */
  pol_distill_config dc;
  pol_distill_config_default(&dc);
  dc.steps = 40;
  dc.batch = 16;
  pol_trainer *st = pol_distiller_new(d, p, "teacher.lfp", &dc, err, sizeof(err));
  ASSERT_MSG(st, "%s", err);
  while (!pol_trainer_done(st)) pol_trainer_step(st);
  const pol_policy *sp = pol_trainer_policy(st);
  ASSERT(sp->latent && !memcmp(sp->latent->params, p->latent->params, fc_ae_nparams(&p->latent->cfg) * sizeof(float)));
  pol_data *ds = pol_data_new(sp, 1);
  ASSERT_MSG(pol_act(sp, ds, obs, a1, err, sizeof(err)) == 0, "%s", err);
  pol_data_free(ds);
  pol_trainer_free(st);
  pol_trainer_free(t);
  unlink(path);
  ds_dataset_free(d);
  return 0;
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(history_and_chunks_follow_horizons),
      TEST_ENTRY(training_lowers_loss_and_files_round_trip),
      TEST_ENTRY(policy_origin_round_trips_and_is_optional),
      TEST_ENTRY(resumed_training_equals_uninterrupted),
      TEST_ENTRY(nonfinite_observations_are_refused_and_change_nothing),
      TEST_ENTRY(nonfinite_chunk_is_an_error_not_a_command),
      TEST_ENTRY(action_bounds_come_from_the_training_actions),
      TEST_ENTRY(ode_steps_must_divide_among_the_blocks),
      TEST_ENTRY(policy_sections_are_field_wise_and_sized_by_the_dimensions),
      TEST_ENTRY(format1_policy_files_still_load), TEST_ENTRY(config_version1_policy_files_still_load),
      TEST_ENTRY(hostile_policy_files_are_refused_with_a_sentence),
      TEST_ENTRY(resume_compares_fields_not_the_lfp_version),
      TEST_ENTRY(distilled_policy_reloads_bit_for_bit_and_resumes),
      TEST_ENTRY(pooled_distillation_resumes_and_records_its_pool),
      TEST_ENTRY(latent_policy_decodes_its_flow_and_round_trips),
  };
  fc_par_init(0); /* as lfp does: the pool sized from the CPUs, OpenBLAS one thread per call */
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
