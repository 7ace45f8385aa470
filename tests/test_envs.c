/* Tests of envs: env_init, task construction (and its name lookups),
 * determinism, state round trip and replay, instability, lost contacts and
 * constraints, non-finite actions, the scripted experts' success rates, and
 * can's keys and success criterion. */
#include <pthread.h>

#include "env.h"
#include "env_task.h" /* internal: the tasks' init, the model, env__load_xml */
#include "fc_base.h"
#include "test.h"

static env_model *s_model(const char *name) {
  char err[256];
  if (env_init(err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return NULL;
  }
  env_model *em = env_model_new(name, err, sizeof(err));
  if (!em) fprintf(stderr, "%s\n", err);
  return em;
}

static void *s_init_thread(void *arg) {
  char err[256];
  *(int *)arg = env_init(err, sizeof(err));
  return NULL;
}

TEST(env_init_is_required_idempotent_and_thread_safe) {
  /* this case runs first in its own process: nothing has called env_init */
  char err[256] = "";
  ASSERT(env_model_new("lift", err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "env_init has not succeeded");
  ASSERT(env_model_from_args("{\"env_name\": \"lift\"}", err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "env_init");
  /* from several threads at once, then again: every call succeeds */
  pthread_t th[4];
  int rc[4] = {-7, -7, -7, -7};
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, s_init_thread, &rc[i]);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++) ASSERT_EQ_INT(rc[i], 0);
  ASSERT_EQ_INT(env_init(err, sizeof(err)), 0);
  ASSERT(mju_user_error != NULL && mju_user_warning != NULL);
  env_model *em = env_model_new("lift", err, sizeof(err));
  ASSERT_MSG(em, "%s", err);
  env_model_free(em);
  return 0;
}

TEST(lift_model_and_args) {
  env_model *em = s_model("lift");
  ASSERT(em);
  ASSERT_EQ_INT(env_action_dim(em), 7);
  ASSERT_EQ_INT(env_obs_dim(em), 19);
  ASSERT_EQ_INT(env_nkeys(em), 4);
  ASSERT(!strcmp(env_keys(em)[0].name, "object") && env_keys(em)[0].dim == 10);
  ASSERT_EQ_INT(env_substeps(em), 25); /* 20 Hz control over 2 ms physics */
  ASSERT_EQ_INT(env_horizon(em), 400);
  ASSERT_CONTAINS(env_args_json(em), "\"env_name\": \"lift\"");
  char err[256];
  env_model *again = env_model_from_args(env_args_json(em), err, sizeof(err));
  ASSERT_MSG(again, "%s", err);
  ASSERT_EQ_INT(env_state_dim(again), env_state_dim(em));
  env_model_free(again);
  ASSERT(env_model_new("juggle", err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "unknown task 'juggle'");
  ASSERT_CONTAINS(err, "lift");
  ASSERT(env_model_from_args("{\"type\": 1}", err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "env_name");
  env_model_free(em);
  return 0;
}

/* a task's expert episode from seed 5, run twice: bit-identical states and
 * observations at every step; another seed starts elsewhere; restoring
 * states[0] and replaying the actions reproduces every state bit for bit */
static int s_deterministic_replay(const char *task) {
  env_model *em = s_model(task);
  ASSERT(em);
  env_data *a = env_data_new(em), *b = env_data_new(em);
  const int S = env_state_dim(em), O = env_obs_dim(em), H = env_horizon(em);
  double oa[64], ob[64], act[8], *states = malloc(sizeof(double) * S * H), *acts = malloc(sizeof(double) * 8 * H);
  double *sb = malloc(sizeof(double) * S);
  char err[256];
  /* the same seed twice: identical states and observations at every step */
  env_reset(em, a, 5);
  env_reset(em, b, 5);
  int T = 0;
  while (!env_done(em, a)) {
    env_get_state(em, a, states + T * S);
    env_get_state(em, b, sb);
    ASSERT_MSG(memcmp(states + T * S, sb, sizeof(double) * S) == 0, "%s: states differ at step %d", task, T);
    env_obs(em, a, oa);
    env_obs(em, b, ob);
    ASSERT(memcmp(oa, ob, sizeof(double) * O) == 0);
    env_expert(em, a, act);
    memcpy(acts + T * 8, act, sizeof(act));
    ASSERT(env_step(em, a, act, err, sizeof(err)) == 0);
    ASSERT(env_step(em, b, act, err, sizeof(err)) == 0);
    T++;
  }
  ASSERT_MSG(env_success(em, a), "%s: the expert failed seed 5", task);
  /* another seed starts elsewhere */
  env_reset(em, b, 6);
  env_obs(em, b, ob);
  env_reset(em, a, 5);
  env_obs(em, a, oa);
  ASSERT(memcmp(oa, ob, sizeof(double) * 3) != 0);
  /* restoring states[0] and replaying the actions reproduces every state */
  double dev = 0;
  env_set_state(em, b, states);
  for (int t = 0; t < T; t++) {
    env_get_state(em, b, sb);
    for (int j = 0; j < S; j++) dev = fmax(dev, fabs(sb[j] - states[t * S + j]));
    ASSERT(env_step(em, b, acts + t * 8, err, sizeof(err)) == 0);
  }
  ASSERT_MSG(dev == 0, "%s: replay deviates by %g", task, dev); /* bit for bit */
  ASSERT(env_success(em, b));
  free(sb); free(states); free(acts);
  env_data_free(a);
  env_data_free(b);
  env_model_free(em);
  return 0;
}

TEST(episodes_are_deterministic_and_replay_from_states) { return s_deterministic_replay("lift"); }

TEST(instability_is_an_error_return) {
  env_model *em = s_model("lift");
  ASSERT(em);
  env_data *ed = env_data_new(em);
  env_reset(em, ed, 1);
  const int S = env_state_dim(em);
  double *s = malloc(sizeof(double) * S), act[7] = {0};
  env_get_state(em, ed, s);
  s[1] = NAN; /* a position (the state starts with time, then qpos) */
  env_set_state(em, ed, s);
  char err[256] = "";
  ASSERT(env_step(em, ed, act, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "unstable");
  env_warnings w;
  env_warning_counts(ed, &w);
  ASSERT(w.bad_qpos + w.bad_qvel + w.bad_qacc >= 1);
  ASSERT_EQ_INT(w.contact_full + w.constraint_full, 0);
  free(s);
  env_data_free(ed);
  env_model_free(em);
  return 0;
}

TEST(nonfinite_action_is_refused) {
  /* a NaN or infinite action value is an error naming it, never a command:
   * the state stays as it was */
  env_model *em = s_model("lift");
  ASSERT(em);
  env_data *ed = env_data_new(em);
  env_reset(em, ed, 1);
  const int S = env_state_dim(em);
  double *s0 = malloc(sizeof(double) * S), *s1 = malloc(sizeof(double) * S);
  env_get_state(em, ed, s0);
  char err[256] = "";
  double bad[7] = {0, 0, NAN, 0, 0, 0, 5};
  ASSERT_EQ_INT(env_step(em, ed, bad, err, sizeof(err)), ENV_BAD_ACTION);
  ASSERT_CONTAINS(err, "lift: action[2] is nan at step 0");
  env_get_state(em, ed, s1);
  ASSERT(memcmp(s0, s1, sizeof(double) * S) == 0);
  ASSERT_EQ_INT(env_steps(ed), 0);
  double inf[7] = {0, 0, 0, 0, 0, 0, -INFINITY};
  ASSERT_EQ_INT(env_step(em, ed, inf, err, sizeof(err)), ENV_BAD_ACTION);
  ASSERT_CONTAINS(err, "action[6] is -inf");
  /* finite values outside [-1, 1] are still clipped, and the episode goes on */
  double big[7] = {0, 0, 0, 0, 0, 0, 5};
  ASSERT_EQ_INT(env_step(em, ed, big, err, sizeof(err)), 0);
  ASSERT_EQ_INT(env_steps(ed), 1);
  free(s0);
  free(s1);
  env_data_free(ed);
  env_model_free(em);
  return 0;
}

/* lift with its contact (nconmax) or constraint (njmax) buffer shrunk to n,
 * stepped from rest: the cube sits on the table (4 contacts), the hand is
 * welded to its target (6 rows + the finger coupling) */
static int s_overflow(int contacts, int n, char *err, size_t errsz, env_warnings *w) {
  env_model *em = s_model("lift");
  if (!em) return -99;
  if (contacts) em->m->nconmax = n;
  else em->m->njmax = n;
  env_data *ed = env_data_new(em), *ok = NULL;
  env_reset(em, ed, 1);
  double act[7] = {0};
  int rc = 0;
  for (int t = 0; t < 5 && !rc; t++) rc = env_step(em, ed, act, err, errsz);
  env_warning_counts(ed, w);
  /* the counts are the env_data's own: another one is untouched */
  if (contacts) em->m->nconmax = 20;
  else em->m->njmax = 100;
  ok = env_data_new(em);
  env_reset(em, ok, 1);
  char e2[256];
  env_warnings w2;
  if (env_step(em, ok, act, e2, sizeof(e2))) rc = -98;
  env_warning_counts(ok, &w2);
  if (w2.contact_full || w2.constraint_full) rc = -97;
  env_data_free(ok);
  env_data_free(ed);
  env_model_free(em);
  return rc;
}

TEST(contact_buffer_overflow_ends_episode_as_unstable) {
  char err[256] = "";
  env_warnings w;
  ASSERT_EQ_INT(s_overflow(1, 1, err, sizeof(err), &w), ENV_UNSTABLE);
  ASSERT_CONTAINS(err, "lift: contacts lost (MuJoCo CONTACTFULL");
  ASSERT_CONTAINS(err, "at step 0");
  ASSERT_EQ_INT(w.contact_full, 1);
  ASSERT_EQ_INT(w.bad_qpos + w.bad_qvel + w.bad_qacc, 0);
  return 0;
}

TEST(constraint_buffer_overflow_ends_episode_as_unstable) {
  char err[256] = "";
  env_warnings w;
  ASSERT_EQ_INT(s_overflow(0, 2, err, sizeof(err), &w), ENV_UNSTABLE);
  ASSERT_CONTAINS(err, "lift: constraints lost (MuJoCo CNSTRFULL");
  /* once in env_reset's mj_forward, once in the step that ended it */
  ASSERT_MSG(w.constraint_full >= 1, "%d", w.constraint_full);
  ASSERT_EQ_INT(w.contact_full, 0);
  return 0;
}

/* a task's init on its own MJCF with one edit: 0, or -1 with err */
static int s_init_edited(const env_task *t, const char *from, const char *to, char *err, size_t errsz) {
  const char *at = strstr(t->xml, from);
  if (!at) return fc_set_err(err, errsz, "test: '%s' is not in %s's MJCF", from, t->name), -99;
  const size_t n = strlen(t->xml) + strlen(to) + 1;
  char *xml = malloc(n);
  snprintf(xml, n, "%.*s%s%s", (int)(at - t->xml), t->xml, to, at + strlen(from));
  mjModel *m = env__load_xml(t->name, xml, err, errsz);
  free(xml);
  if (!m) return -98;
  int ids[ENV_MAX_IDS];
  const int rc = t->init(m, ids, err, errsz);
  mj_deleteModel(m);
  return rc;
}

TEST(task_init_names_a_missing_element) {
  static const struct {
    const env_task *t;
    const char *from, *to, *msg;
  } cases[] = {
      {&env_task_lift, "<freejoint name=\"cube\"/>", "<freejoint name=\"cube_j\"/>",
       "task lift: its model has no joint named 'cube'"},
      {&env_task_lift, "<freejoint name=\"hand\"/>", "<freejoint/>", "task lift: its model has no joint named 'hand'"},
      {&env_task_lift, "<site name=\"grip\"", "<site name=\"pinch\"", "task lift: its model has no site named 'grip'"},
      {&env_task_lift, "name=\"target\" mocap=\"true\"", "name=\"target\"",
       "task lift: body 'target' of its model is not a mocap body"},
      {&env_task_avoid, "<general name=\"ay\"", "<general name=\"ay2\"",
       "task avoid: its model has no actuator named 'ay'"},
      {&env_task_pusht, "<general name=\"agent_y\"", "<general name=\"agent_v\"",
       "task pusht: its model has no actuator named 'agent_y'"},
      {&env_task_can, "<freejoint name=\"can\"/>", "<freejoint/>", "task can: its model has no joint named 'can'"},
      {&env_task_can, "<body name=\"can\"", "<body name=\"tin\"", "task can: its model has no body named 'can'"},
      {&env_task_can, "<site name=\"grip\"", "<site name=\"pinch\"", "task can: its model has no site named 'grip'"},
      {&env_task_can, "name=\"target\" mocap=\"true\"", "name=\"target\"",
       "task can: body 'target' of its model is not a mocap body"},
  };
  char err[256];
  ASSERT_MSG(env_init(err, sizeof(err)) == 0, "%s", err);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    err[0] = 0;
    const int rc = s_init_edited(cases[i].t, cases[i].from, cases[i].to, err, sizeof(err));
    ASSERT_MSG(rc == -1, "case %zu: init gave %d: %s", i, rc, err);
    ASSERT_CONTAINS(err, cases[i].msg);
  }
  /* the models as built in have every name */
  for (int i = 0; i < env_task_count(); i++) {
    env_model *em = s_model(env_task_name(i));
    ASSERT(em);
    env_model_free(em);
  }
  return 0;
}

/* expert success over n seeds */
static double s_expert_rate(const char *task, int n, uint64_t seed0) {
  env_model *em = s_model(task);
  if (!em) return -1;
  env_data *ed = env_data_new(em);
  double obs[64], act[8];
  char err[256];
  int ok = 0;
  for (int i = 0; i < n; i++) {
    env_reset(em, ed, seed0 + (uint64_t)i);
    while (!env_done(em, ed)) {
      env_obs(em, ed, obs);
      env_expert(em, ed, act);
      if (env_step(em, ed, act, err, sizeof(err))) break;
    }
    ok += env_success(em, ed);
  }
  env_data_free(ed);
  env_model_free(em);
  return (double)ok / n;
}

TEST(lift_expert_succeeds) {
  /* the bar: at least 95% over 200 seeds */
  double r = s_expert_rate("lift", 200, 0);
  printf("lift expert: %.1f%% over 200 seeds\n", 100 * r);
  ASSERT_MSG(r >= 0.95, "lift expert success %.3f", r);
  return 0;
}

TEST(avoid_expert_takes_both_sides) {
  /* at least 95% success, and a fair coin: over 200 seeds each side is taken
   * 100 +- 30 times (more than 4 standard deviations) */
  env_model *em = s_model("avoid");
  ASSERT(em);
  env_data *ed = env_data_new(em);
  double obs[8], act[2];
  char err[256];
  int ok = 0, side[3] = {0, 0, 0};
  for (int i = 0; i < 200; i++) {
    env_reset(em, ed, (uint64_t)i);
    while (!env_done(em, ed)) {
      env_obs(em, ed, obs);
      env_expert(em, ed, act);
      ASSERT(env_step(em, ed, act, err, sizeof(err)) == 0);
    }
    ok += env_success(em, ed);
    side[env_side(em, ed) + 1]++;
  }
  printf("avoid expert: %d/200, %d left, %d right\n", ok, side[0], side[2]);
  ASSERT(ok >= 190);
  ASSERT(side[0] >= 70 && side[2] >= 70);
  /* driving straight at the goal (what averaging the two sides does) touches
   * the obstacle: the episode ends there as a failure */
  env_reset(em, ed, 1);
  double straight[2] = {0.0, 1.0};
  while (!env_done(em, ed)) ASSERT(env_step(em, ed, straight, err, sizeof(err)) == 0);
  ASSERT(env_failed(ed));
  ASSERT(!env_success(em, ed));
  ASSERT(env_steps(ed) < env_horizon(em));
  env_data_free(ed);
  env_model_free(em);
  return 0;
}

TEST(coverage_goal_gives_the_score_scale) {
  /* Diffusion Policy's score is min(1, max coverage / goal) on pusht (goal
   * 0.95, its success threshold) and success on tasks without coverage */
  env_model *pt = s_model("pusht"), *lift = s_model("lift"), *av = s_model("avoid");
  ASSERT(pt && lift && av);
  ASSERT(env_coverage_goal(pt) == 0.95);
  ASSERT(env_coverage_goal(lift) == 0.0 && env_coverage_goal(av) == 0.0);
  /* the goal is the success threshold */
  env_data *ed = env_data_new(pt);
  env_reset(pt, ed, 3);
  ASSERT(env_success(pt, ed) == (env_coverage(pt, ed) > env_coverage_goal(pt)));
  env_data_free(ed);
  env_model_free(pt);
  env_model_free(lift);
  env_model_free(av);
  return 0;
}

TEST(pusht_coverage_is_exact) {
  /* the T is 120 x 30 + 30 x 90 = 6300 mm^2; its pose origin is the mean of
   * the two rectangles' centres, 45 mm below the top edge */
  const double g = 0.25 * FC_PI, c = cos(g), s = sin(g);
  double p[3] = {0.256, 0.256, g};
  ASSERT_NEAR(env_pusht_coverage(p), 1.0, 1e-12);
  /* 15 mm along the block's own x axis: crossbar 105 x 30, stem 15 x 90 overlap */
  double q[3] = {0.256 + 0.015 * c, 0.256 + 0.015 * s, g};
  ASSERT_NEAR(env_pusht_coverage(q), (105.0 * 30 + 15.0 * 90) / 6300, 1e-9);
  /* 30 mm along its y axis: the crossbars no longer overlap; the moved stem
   * covers 30 x 30 of the crossbar and 30 x 60 of the stem */
  double r[3] = {0.256 - 0.030 * s, 0.256 + 0.030 * c, g};
  ASSERT_NEAR(env_pusht_coverage(r), 2700.0 / 6300, 1e-9);
  /* half a turn about the origin: three 30 x 30 squares overlap */
  double u[3] = {0.256, 0.256, g + FC_PI};
  ASSERT_NEAR(env_pusht_coverage(u), 2700.0 / 6300, 1e-9);
  /* far away: nothing */
  double v[3] = {0.05, 0.05, 0.0};
  ASSERT_NEAR(env_pusht_coverage(v), 0.0, 0);
  /* mirror symmetry: +a and -a about the goal angle give the same coverage */
  for (double a = 0.01; a < 1.0; a += 0.1) {
    double w1[3] = {0.256, 0.256, g + a}, w2[3] = {0.256, 0.256, g - a};
    ASSERT_NEAR(env_pusht_coverage(w1), env_pusht_coverage(w2), 1e-12);
  }
  return 0;
}

TEST(pusht_expert_succeeds) {
  /* measured 200/200 at horizon 300; the bar here leaves room for other
   * machines' floating point */
  double r = s_expert_rate("pusht", 200, 0);
  printf("pusht expert: %.1f%% over 200 seeds\n", 100 * r);
  ASSERT_MSG(r >= 0.9, "pusht expert success %.3f", r);
  return 0;
}

/* pusht's block_keypoints are the outline corners and origin of the T at
 * block_pose, continuous where the wrapped angle jumps; a policy's keys are
 * found by name in the task's observation, in the policy's order */
TEST(pusht_keypoints_and_key_selection) {
  env_model *em = s_model("pusht");
  ASSERT(em);
  ASSERT_EQ_INT(env_obs_dim(em), 23);
  const char *pk[ENV_MAX_KEYS];
  ASSERT_EQ_INT(env_policy_keys(em, pk, ENV_MAX_KEYS), 2);
  ASSERT(!strcmp(pk[0], "agent_pos") && !strcmp(pk[1], "block_keypoints"));
  env_data *ed = env_data_new(em);
  double obs[23], prev[23], a[2] = {0.3, -0.2};
  char err[256];
  env_reset(em, ed, 200007);
  for (int t = 0; t < 40; t++) {
    env_obs(em, ed, obs);
    const double x = obs[2], y = obs[3], ang = obs[4];
    ASSERT(ang > -FC_PI && ang <= FC_PI);
    /* corner 0 is (-0.06, 0.045) in the block frame; keypoint 8 the origin */
    ASSERT_NEAR(obs[5], x + cos(ang) * -0.06 - sin(ang) * 0.045, 1e-12);
    ASSERT_NEAR(obs[6], y + sin(ang) * -0.06 + cos(ang) * 0.045, 1e-12);
    ASSERT_NEAR(obs[21], x, 1e-12);
    ASSERT_NEAR(obs[22], y, 1e-12);
    /* neighbouring corners stay 3 cm .. 12 cm apart (a rigid T) */
    ASSERT_NEAR(hypot(obs[7] - obs[5], obs[8] - obs[6]), 0.03, 1e-9);
    if (t) /* continuous: a control step moves no keypoint far */
      for (int j = 5; j < 23; j++) ASSERT(fabs(obs[j] - prev[j]) < 0.05);
    memcpy(prev, obs, sizeof(obs));
    env_expert(em, ed, a);
    ASSERT_EQ_INT(env_step(em, ed, a, err, sizeof(err)), 0);
  }
  const char *keys[2] = {"block_keypoints", "agent_pos"};
  int dims[2] = {18, 2}, off[2];
  ASSERT_EQ_INT(env_obs_select(em, keys, dims, 2, off, err, sizeof(err)), 0);
  ASSERT_EQ_INT(off[0], 5);
  ASSERT_EQ_INT(off[1], 0);
  double out[20];
  env_obs_gather(off, dims, 2, obs, out);
  ASSERT(out[0] == obs[5] && out[17] == obs[22] && out[18] == obs[0] && out[19] == obs[1]);
  const char *missing[1] = {"block_angle"};
  ASSERT_EQ_INT(env_obs_select(em, missing, dims, 1, off, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "does not observe 'block_angle'");
  ASSERT_CONTAINS(err, "block_keypoints");
  int bad[1] = {3};
  ASSERT_EQ_INT(env_obs_select(em, keys + 1, bad, 1, off, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "'agent_pos' with 2 values, not 3");
  env_data_free(ed);
  env_model_free(em);
  return 0;
}

TEST(can_model_and_keys) {
  /* robomimic's Can low-dim keys: object-state is can pos, quat, and its pose
   * in the eef frame (pos, quat) */
  env_model *em = s_model("can");
  ASSERT(em);
  ASSERT_EQ_INT(env_action_dim(em), 7);
  ASSERT_EQ_INT(env_obs_dim(em), 23);
  ASSERT_EQ_INT(env_nkeys(em), 4);
  static const env_key want[] = {
      {"object", 14}, {"robot0_eef_pos", 3}, {"robot0_eef_quat", 4}, {"robot0_gripper_qpos", 2}};
  for (int k = 0; k < 4; k++)
    ASSERT_MSG(!strcmp(env_keys(em)[k].name, want[k].name) && env_keys(em)[k].dim == want[k].dim, "key %d: %s (%d)", k,
               env_keys(em)[k].name, env_keys(em)[k].dim);
  ASSERT_EQ_INT(env_substeps(em), 25);
  ASSERT_EQ_INT(env_horizon(em), 400);
  ASSERT(env_control_hz(em) == 20.0);
  ASSERT_CONTAINS(env_args_json(em), "\"env_name\": \"can\"");
  char err[256];
  env_model *again = env_model_from_args(env_args_json(em), err, sizeof(err));
  ASSERT_MSG(again, "%s", err);
  ASSERT(!strcmp(env_name(again), "can") && env_state_dim(again) == env_state_dim(em));
  env_model_free(again);
  /* at reset: the can stands on the table (z 0.8 + 6 cm) in its start
   * region, both quaternions have w >= 0 (xyzw), the relative position is
   * the can - eef offset rotated into the eef frame (same length) */
  env_data *ed = env_data_new(em);
  double o[64];
  for (uint64_t seed = 0; seed < 20; seed++) {
    env_reset(em, ed, seed);
    env_obs(em, ed, o);
    ASSERT_NEAR(o[2], 0.86, 1e-6);
    ASSERT(fabs(o[0]) <= 0.06 && o[1] >= -0.22 && o[1] <= -0.12);
    ASSERT(o[6] >= 0.7 && o[13] >= 0.0);
    double q2 = o[3] * o[3] + o[4] * o[4] + o[5] * o[5] + o[6] * o[6];
    ASSERT_NEAR(q2, 1.0, 1e-9);
    double world = 0, local = 0;
    for (int i = 0; i < 3; i++) world += (o[i] - o[14 + i]) * (o[i] - o[14 + i]), local += o[7 + i] * o[7 + i];
    ASSERT_NEAR(world, local, 1e-12);
    ASSERT(o[16] > o[2] + 0.1); /* the eef starts well above the can */
    ASSERT_NEAR(o[21], 0.0, 1e-9); /* gripper open */
  }
  env_data_free(ed);
  env_model_free(em);
  return 0;
}

TEST(can_episodes_are_deterministic_and_replay_from_states) { return s_deterministic_replay("can"); }

TEST(can_expert_succeeds) {
  /* 200/200 on seeds 0-199 when written (lfp collect, README); here a quick
   * sample of seeds the collect default never uses */
  double r = s_expert_rate("can", 20, 200000);
  printf("can expert: %.0f%% over 20 seeds from 200000\n", 100 * r);
  ASSERT_MSG(r >= 0.95, "can expert success %.3f", r);
  return 0;
}

/* the can placed at (x, y, z) with quaternion q (w x y z) and velocity vx,
 * the hand where the state had it; then env_success */
static int s_can_at(const env_model *em, env_data *ed, const double *state, double x, double y, double z,
                    const double q[4], double vx) {
  const mjModel *m = em->m;
  const int j = mj_name2id(m, mjOBJ_JOINT, "can");
  double *s = malloc(sizeof(double) * env_state_dim(em));
  memcpy(s, state, sizeof(double) * env_state_dim(em));
  double *qp = s + 1 + m->jnt_qposadr[j], *qv = s + 1 + m->nq + m->jnt_dofadr[j];
  qp[0] = x, qp[1] = y, qp[2] = z;
  memcpy(qp + 3, q, 4 * sizeof(double));
  memset(qv, 0, 6 * sizeof(double));
  qv[0] = vx;
  env_set_state(em, ed, s);
  free(s);
  return env_success(em, ed);
}

TEST(can_success_needs_the_can_released_at_rest_in_the_bin) {
  env_model *em = s_model("can");
  ASSERT(em);
  env_data *ed = env_data_new(em);
  env_reset(em, ed, 7);
  double *s0 = malloc(sizeof(double) * env_state_dim(em));
  env_get_state(em, ed, s0); /* the hand 22-30 cm above the table, away from the bin */
  const double up[4] = {1, 0, 0, 0}, side[4] = {sqrt(0.5), sqrt(0.5), 0, 0}; /* lying: axis along y */
  /* at reset the can is in its start region */
  ASSERT(!env_success(em, ed));
  /* standing or lying at rest in the bin (centre (0, 0.16), inner half-size 0.08) */
  ASSERT(s_can_at(em, ed, s0, 0.0, 0.16, 0.86, up, 0.0));
  ASSERT(s_can_at(em, ed, s0, 0.03, 0.20, 0.86, up, 0.0));
  ASSERT(s_can_at(em, ed, s0, 0.0, 0.16, 0.833, side, 0.0));
  /* moving, outside the bin on the table, or above the rim */
  ASSERT(!s_can_at(em, ed, s0, 0.0, 0.16, 0.86, up, 0.2));
  ASSERT(!s_can_at(em, ed, s0, 0.13, 0.16, 0.86, up, 0.0));
  ASSERT(!s_can_at(em, ed, s0, 0.0, -0.05, 0.86, up, 0.0));
  ASSERT(!s_can_at(em, ed, s0, 0.0, 0.16, 0.95, up, 0.0));
  /* the expert's episode: whenever the gripper touches the can, carried over
   * the bin or set down in it, there is no success; once let go, there is */
  const int ican = mj_name2id(em->m, mjOBJ_BODY, "can");
  int over = 0, inside = 0;
  char err[256];
  double act[8];
  env_reset(em, ed, 7);
  while (!env_done(em, ed)) {
    env_expert(em, ed, act);
    ASSERT_MSG(env_step(em, ed, act, err, sizeof(err)) == 0, "%s", err);
    const double *cp = ed->d->xpos + 3 * ican;
    const int held = env_gripper_touches(em->m, em->ids, ed->d, ican);
    const int footprint = fabs(cp[0]) < 0.08 && fabs(cp[1] - 0.16) < 0.08;
    if (held && footprint) {
      ASSERT_MSG(!env_success(em, ed), "success with the can held at step %d", env_steps(ed));
      over += cp[2] - 0.06 > 0.87; /* its bottom over the rim */
      inside += cp[2] - 0.06 < 0.87;
    }
  }
  ASSERT_MSG(over > 0 && inside > 0, "held over the bin %d steps, in it %d", over, inside);
  ASSERT(env_success(em, ed));
  ASSERT(!env_gripper_touches(em->m, em->ids, ed->d, ican));
  free(s0);
  env_data_free(ed);
  env_model_free(em);
  return 0;
}

TEST(can_expert_recovers_from_a_drop_and_a_fallen_can) {
  /* the gripper forced open for 8 steps while carrying: the can falls (on
   * the table, a wall or into the bin) and the expert picks it up again;
   * and a can lying on its side at the start is grasped across its axis */
  env_model *em = s_model("can");
  ASSERT(em);
  env_data *ed = env_data_new(em);
  const int ican = mj_name2id(em->m, mjOBJ_BODY, "can"), jcan = mj_name2id(em->m, mjOBJ_JOINT, "can");
  const int S = env_state_dim(em);
  double act[8], *s = malloc(sizeof(double) * S);
  char err[256];
  int dropped = 0, lying = 0;
  for (uint64_t seed = 0; seed < 6; seed++) {
    env_reset(em, ed, seed);
    int t_open = -1;
    while (!env_done(em, ed)) {
      env_expert(em, ed, act);
      if (t_open < 0 && ed->d->xpos[3 * ican + 2] > 0.95 + 0.01 * (double)seed) t_open = env_steps(ed);
      if (t_open >= 0 && env_steps(ed) < t_open + 8) act[6] = -1.0;
      ASSERT_MSG(env_step(em, ed, act, err, sizeof(err)) == 0, "%s", err);
    }
    ASSERT(t_open >= 0);
    dropped += env_success(em, ed);
    /* lying along a seeded direction, at rest on the table */
    env_reset(em, ed, seed);
    env_get_state(em, ed, s);
    double *q = s + 1 + em->m->jnt_qposadr[jcan], yaw = 0.5 * (double)seed;
    const double qz[4] = {cos(0.5 * yaw), 0, 0, sin(0.5 * yaw)}, qx[4] = {sqrt(0.5), sqrt(0.5), 0, 0};
    mju_mulQuat(q + 3, qz, qx);
    q[2] = 0.8 + 0.033;
    env_set_state(em, ed, s);
    while (!env_done(em, ed)) {
      env_expert(em, ed, act);
      ASSERT_MSG(env_step(em, ed, act, err, sizeof(err)) == 0, "%s", err);
    }
    lying += env_success(em, ed);
  }
  printf("can expert: %d/6 after a drop, %d/6 from lying on the table\n", dropped, lying);
  ASSERT(dropped >= 5 && lying >= 5);
  free(s);
  env_data_free(ed);
  env_model_free(em);
  return 0;
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(env_init_is_required_idempotent_and_thread_safe),
      TEST_ENTRY(lift_model_and_args),
      TEST_ENTRY(episodes_are_deterministic_and_replay_from_states),
      TEST_ENTRY(instability_is_an_error_return),
      TEST_ENTRY(nonfinite_action_is_refused),
      TEST_ENTRY(contact_buffer_overflow_ends_episode_as_unstable),
      TEST_ENTRY(constraint_buffer_overflow_ends_episode_as_unstable),
      TEST_ENTRY(task_init_names_a_missing_element),
      TEST_ENTRY(lift_expert_succeeds),
      TEST_ENTRY(avoid_expert_takes_both_sides),
      TEST_ENTRY(pusht_coverage_is_exact), TEST_ENTRY(coverage_goal_gives_the_score_scale),
      TEST_ENTRY(pusht_expert_succeeds),
      TEST_ENTRY(pusht_keypoints_and_key_selection),
      TEST_ENTRY(can_model_and_keys),
      TEST_ENTRY(can_episodes_are_deterministic_and_replay_from_states),
      TEST_ENTRY(can_expert_succeeds),
      TEST_ENTRY(can_success_needs_the_can_released_at_rest_in_the_bin),
      TEST_ENTRY(can_expert_recovers_from_a_drop_and_a_fallen_can),
  };
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
