/* Tests of policy: observation history and chunk execution on a hand-made
 * sequence, clipping, policy files and their mismatches, training that
 * lowers the loss, and a resumed run equal to an uninterrupted one. */
#include <unistd.h>

#include "fc_ckpt.h"
#include "pol.h"
#include "pol_train.h"
#include "test.h"

/* identity normalization for `dim` values */
static void s_identity(ds_norm *n, int dim) {
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
  lc.net.width = 4;
  lc.net.depth = 0;
  lc.net.cond = FC_COND_CONCAT; /* depth 0: FiLM would have no block to act in */
  fc_lfm *f = fc_lfm_new(&lc, NULL, 0);
  memcpy(f->params + f->blocks[0].lay.b_out, b, 4 * sizeof(float)); /* all else 0 */
  ds_norm on, an;
  s_identity(&on, 1);
  s_identity(&an, 1);
  return pol_new(&m, &on, &an, f, NULL, 0);
}

TEST(history_and_chunks_follow_horizons) {
  const float b[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  pol_policy *p = s_const_policy(b);
  ASSERT(p);
  pol_data *pd = pol_data_new(p, 0);
  /* observations o_t = t; a chunk every Ta = 3 steps; its first 3 actions run */
  const double expect_cond[8][2] = {{0, 0}, {0, 0}, {0, 0}, {2, 3}, {2, 3}, {2, 3}, {5, 6}, {5, 6}};
  for (int t = 0; t < 8; t++) {
    double o = t, a;
    ASSERT(pol_act(p, pd, &o, &a, NULL, 0) == 0);
    ASSERT_NEAR(a, b[t % 3], 1e-7);          /* never the 4th (Tp > Ta) */
    ASSERT_EQ_INT(pd->chunks, t / 3 + 1);
    ASSERT_NEAR(pd->cond[0], expect_cond[t][0], 0); /* the frames t-1, t at replanning; */
    ASSERT_NEAR(pd->cond[1], expect_cond[t][1], 0); /* the first frame repeated at the start */
    ASSERT_NEAR(pd->hist[1], t, 0);
  }
  /* a new episode starts over: padded history, fresh queue */
  pol_reset(pd, 1);
  double o = 42, a;
  ASSERT(pol_act(p, pd, &o, &a, NULL, 0) == 0);
  ASSERT_NEAR(pd->cond[0], 42, 0);
  ASSERT_NEAR(pd->cond[1], 42, 0);
  ASSERT_NEAR(a, 0.1, 1e-7);
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
  c.width = 32;
  c.depth = 1;
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
    /* keys and dimensions are checked */
    const char *good[2] = {"a", "b"}, *bad[2] = {"a", "c"};
    int dims[2] = {2, 1}, wrong[2] = {2, 2};
    ASSERT(pol_check_keys(q, good, dims, 2, err, sizeof(err)) == 0);
    ASSERT(pol_check_keys(q, bad, dims, 2, err, sizeof(err)) == -1);
    ASSERT_CONTAINS(err, "'c'");
    ASSERT(pol_check_keys(q, good, wrong, 2, err, sizeof(err)) == -1);
    ASSERT_CONTAINS(err, "has 2 values");
    ASSERT(pol_check_keys(q, good, dims, 1, err, sizeof(err)) == -1);
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

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(history_and_chunks_follow_horizons),
      TEST_ENTRY(training_lowers_loss_and_files_round_trip),
      TEST_ENTRY(resumed_training_equals_uninterrupted),
      TEST_ENTRY(nonfinite_observations_are_refused_and_change_nothing),
      TEST_ENTRY(nonfinite_chunk_is_an_error_not_a_command),
      TEST_ENTRY(action_bounds_come_from_the_training_actions),
      TEST_ENTRY(ode_steps_must_divide_among_the_blocks),
  };
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
