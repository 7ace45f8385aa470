/* Tests of envs: task construction, determinism, state round trip and
 * replay, instability detection, and the scripted experts' success rates. */
#include "env.h"
#include "fc_base.h"
#include "test.h"

static env_model *s_model(const char *name) {
  char err[256];
  env_model *em = env_model_new(name, err, sizeof(err));
  if (!em) fprintf(stderr, "%s\n", err);
  return em;
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

TEST(episodes_are_deterministic_and_replay_from_states) {
  env_model *em = s_model("lift");
  ASSERT(em);
  env_data *a = env_data_new(em), *b = env_data_new(em);
  const int S = env_state_dim(em);
  double oa[64], ob[64], act[8], *states = malloc(sizeof(double) * S * 400), *acts = malloc(sizeof(double) * 8 * 400);
  char err[256];
  /* the same seed twice: identical observations at every step */
  env_reset(em, a, 5);
  env_reset(em, b, 5);
  int T = 0;
  while (!env_done(em, a)) {
    env_get_state(em, a, states + T * S);
    env_obs(em, a, oa);
    env_obs(em, b, ob);
    ASSERT(memcmp(oa, ob, sizeof(double) * 19) == 0);
    env_expert(em, a, act);
    memcpy(acts + T * 8, act, sizeof(act));
    ASSERT(env_step(em, a, act, err, sizeof(err)) == 0);
    ASSERT(env_step(em, b, act, err, sizeof(err)) == 0);
    T++;
  }
  ASSERT(env_success(em, a));
  /* another seed starts elsewhere */
  env_reset(em, b, 6);
  env_obs(em, b, ob);
  env_reset(em, a, 5);
  env_obs(em, a, oa);
  ASSERT(memcmp(oa, ob, sizeof(double) * 3) != 0);
  /* restoring states[0] and replaying the actions reproduces every state */
  double *s = malloc(sizeof(double) * S), dev = 0;
  env_set_state(em, b, states);
  for (int t = 0; t < T; t++) {
    env_get_state(em, b, s);
    for (int j = 0; j < S; j++) dev = fmax(dev, fabs(s[j] - states[t * S + j]));
    ASSERT(env_step(em, b, acts + t * 8, err, sizeof(err)) == 0);
  }
  ASSERT_MSG(dev < 1e-9, "replay deviates by %g", dev);
  ASSERT(env_success(em, b));
  free(s); free(states); free(acts);
  env_data_free(a);
  env_data_free(b);
  env_model_free(em);
  return 0;
}

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
  /* non-finite actions are clipped to 0, not propagated */
  env_reset(em, ed, 1);
  double bad[7] = {NAN, INFINITY, -INFINITY, 0, 0, 0, 5};
  ASSERT(env_step(em, ed, bad, err, sizeof(err)) == 0);
  free(s);
  env_data_free(ed);
  env_model_free(em);
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

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(lift_model_and_args),
      TEST_ENTRY(episodes_are_deterministic_and_replay_from_states),
      TEST_ENTRY(instability_is_an_error_return),
      TEST_ENTRY(lift_expert_succeeds),
      TEST_ENTRY(avoid_expert_takes_both_sides),
      TEST_ENTRY(pusht_coverage_is_exact),
      TEST_ENTRY(pusht_expert_succeeds),
  };
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
