/* test_mj: a policy on a user's own MuJoCo model (pol_mj.h), on a scene
 * this test writes: a puck on two slide joints driven by two motors towards
 * a goal (a mocap body). The mapping file is checked against the model and
 * the policy with one sentence per mismatch; observations and actions reach
 * the named elements; the control callback and the user's loop give the
 * same trajectory bit for bit; and the whole path a user takes: record demos
 * from their own controller with the datasets writer, train, attach. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ds_writer.h"
#include "fc_par.h"
#include "fc_rng.h"
#include "pol_mj.h"
#include "pol_train.h"
#include "test.h"

static const char *s_scene =
    "<mujoco model=\"puck\">\n"
    "  <option timestep=\"0.01\"/>\n"
    "  <worldbody>\n"
    "    <body name=\"puck\" pos=\"0 0 0.05\">\n"
    "      <joint name=\"x\" type=\"slide\" axis=\"1 0 0\" damping=\"2\"/>\n"
    "      <joint name=\"y\" type=\"slide\" axis=\"0 1 0\" damping=\"2\"/>\n"
    "      <geom type=\"sphere\" size=\"0.05\" mass=\"1\"/>\n"
    "      <site name=\"tip\"/>\n"
    "    </body>\n"
    "    <body name=\"goal\" pos=\"0.3 0.2 0.05\" mocap=\"true\"><site name=\"goal\" size=\"0.02\"/></body>\n"
    "  </worldbody>\n"
    "  <actuator>\n"
    "    <motor name=\"fx\" joint=\"x\" ctrllimited=\"true\" ctrlrange=\"-1 1\" gear=\"4\"/>\n"
    "    <motor name=\"fy\" joint=\"y\" ctrllimited=\"true\" ctrlrange=\"-1 1\" gear=\"4\"/>\n"
    "  </actuator>\n"
    "  <sensor><framepos name=\"goalpos\" objtype=\"site\" objname=\"goal\"/></sensor>\n"
    "</mujoco>\n";

static const char *s_map =
    "{\"control_hz\": 20,\n"
    " \"obs\": {\"puck\": [{\"site_pos\": \"tip\"}],\n"
    "         \"vel\": [{\"qvel\": \"x\"}, {\"qvel\": \"y\", \"scale\": 1}],\n"
    "         \"goal\": [{\"sensor\": \"goalpos\"}]},\n"
    " \"actions\": [{\"actuator\": \"fx\"}, {\"actuator\": \"fy\", \"mode\": \"absolute\"}]}\n";

static char s_dir[64];

static const char *s_write(const char *name, const char *text) {
  static char path[8][160];
  static int k;
  char *p = path[k++ % 8];
  snprintf(p, 160, "%s/%s", s_dir, name);
  FILE *f = fopen(p, "w");
  fputs(text, f);
  fclose(f);
  return p;
}

static mjModel *s_model(void) {
  char err[512];
  snprintf(s_dir, sizeof(s_dir), "/tmp/lfp_test_mj.XXXXXX");
  if (!mkdtemp(s_dir)) return NULL;
  mjModel *m = mj_loadXML(s_write("scene.xml", s_scene), NULL, err, sizeof(err));
  if (!m) fprintf(stderr, "%s\n", err);
  return m;
}

static void s_cleanup(void) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", s_dir);
  if (system(cmd)) fprintf(stderr, "cannot remove %s\n", s_dir);
}

static pol_mj_spec s_spec(void) {
  pol_mj_spec s = {3, {"puck", "vel", "goal"}, {3, 2, 3}, 2, 0.0};
  return s;
}

TEST(map_mismatches_are_one_sentence_each) {
  mjModel *m = s_model();
  ASSERT(m);
  const pol_mj_spec spec = s_spec();
  char err[4096];
  const char *bad = s_write("bad.json",
                            "{\"obs\": {\"puck\": [{\"body_pos\": \"puck\"}, {\"qpos\": \"x\"}],\n"
                            "          \"vel\": [{\"qvel\": \"x\"}, {\"site_pos\": \"tipp\"}],\n"
                            "          \"camera\": [{\"sensor\": \"goalpos\"}]},\n"
                            " \"actions\": [{\"actuator\": \"fz\", \"mode\": \"rel\"}],\n"
                            " \"extra\": 1}");
  ASSERT(pol_mj_map_load(m, bad, &spec, err, sizeof(err)) == NULL);
  const char *want[] = {"unknown field \"extra\"",
                        "control_hz must be positive",
                        "obs key 'camera' is not one the policy takes",
                        "obs 'puck' gives 4 values; the policy takes 3",
                        "obs 'vel' source 1: the model has no site named 'tipp'",
                        "the policy's key 'goal' (3 values) has no entry in obs",
                        "actions has 1 entries; the policy makes 2-D actions",
                        "action 0: the model has no actuator named 'fz'"};
  int lines = 1;
  for (const char *c = err; *c; c++) lines += *c == '\n';
  ASSERT_MSG(lines == (int)(sizeof(want) / sizeof(want[0])), "%d lines:\n%s", lines, err);
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) ASSERT_MSG(strstr(err, want[i]), "no '%s' in:\n%s", want[i], err);
  for (const char *line = err; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    ASSERT_MSG(!strncmp(line, bad, strlen(bad)), "a line without the file's name: %s", line); /* each names the file */
  /* a mode, bounds and a stray field of one action; not JSON; no file */
  const char *acts = s_write("acts.json",
                             "{\"control_hz\": 20, \"obs\": {\"puck\": [{\"site_pos\": \"tip\"}], \"vel\": [{\"qvel\": \"x\"}, "
                             "{\"qvel\": \"y\"}], \"goal\": [{\"sensor\": \"goalpos\"}]}, \"actions\": [{\"actuator\": \"fx\", "
                             "\"mode\": \"rel\"}, {\"actuator\": \"fy\", \"low\": 1, \"high\": -1, \"gain\": 2}]}");
  ASSERT(pol_mj_map_load(m, acts, &spec, err, sizeof(err)) == NULL);
  ASSERT_MSG(strstr(err, "action 0: \"mode\" must be \"absolute\" or \"delta\"") && strstr(err, "action 1: unknown field \"gain\""),
             "%s", err);
  ASSERT(pol_mj_map_load(m, s_write("nojson.json", "{\"obs\": "), &spec, err, sizeof(err)) == NULL);
  ASSERT_MSG(strstr(err, "not valid JSON"), "%s", err);
  ASSERT(pol_mj_map_load(m, "/nonexistent/map.json", &spec, err, sizeof(err)) == NULL);
  ASSERT_MSG(strstr(err, "cannot read /nonexistent/map.json"), "%s", err);
  char *big = malloc((1 << 20) + 16); /* valid JSON, but past the 1 MB a mapping may have */
  memset(big, ' ', (1 << 20) + 8);
  memcpy(big + (1 << 20) + 8, "{}", 3);
  ASSERT(pol_mj_map_load(m, s_write("big.json", big), &spec, err, sizeof(err)) == NULL);
  free(big);
  ASSERT_MSG(strstr(err, "big.json is larger than 1 MB"), "%s", err);
  mj_deleteModel(m);
  s_cleanup();
  return 0;
}

TEST(observations_and_actions_reach_the_named_elements) {
  mjModel *m = s_model();
  ASSERT(m);
  const pol_mj_spec spec = s_spec();
  char err[4096];
  const char *path = s_write("scaled.json",
                             "{\"control_hz\": 20, \"obs\": {\"puck\": [{\"site_pos\": \"tip\", \"scale\": 2, \"offset\": 1}], "
                             "\"vel\": [{\"qvel\": \"x\"}, {\"qvel\": \"y\"}], \"goal\": [{\"sensor\": \"goalpos\"}]}, "
                             "\"actions\": [{\"actuator\": \"fx\", \"scale\": 0.5}, {\"actuator\": \"fy\", \"mode\": \"delta\", "
                             "\"scale\": 0.1, \"low\": -0.25, \"high\": 0.25}]}");
  pol_mj_map *map = pol_mj_map_load(m, path, &spec, err, sizeof(err));
  ASSERT_MSG(map, "%s", err);
  ASSERT_EQ_INT(pol_mj_map_obs_dim(map), 8);
  ASSERT_EQ_INT(pol_mj_map_substeps(map, m), 5); /* 20 Hz on a 0.01 s step */
  mjData *d = mj_makeData(m);
  d->qpos[0] = 0.1, d->qpos[1] = -0.2, d->qvel[0] = 0.5, d->qvel[1] = -0.5;
  d->mocap_pos[0] = 0.4, d->mocap_pos[1] = 0.3;
  mj_forward(m, d);
  double obs[8];
  pol_mj_map_obs(map, m, d, obs);
  ASSERT_NEAR(obs[0], 2 * 0.1 + 1, 1e-12);
  ASSERT_NEAR(obs[1], 2 * -0.2 + 1, 1e-12);
  ASSERT_NEAR(obs[2], 2 * 0.05 + 1, 1e-12);
  ASSERT_NEAR(obs[3], 0.5, 1e-12);
  ASSERT_NEAR(obs[4], -0.5, 1e-12);
  ASSERT_NEAR(obs[5], 0.4, 1e-12);
  ASSERT_NEAR(obs[6], 0.3, 1e-12);
  /* absolute (x 0.5, clamped to the ctrlrange) and delta (+0.1 a, within +-0.25) */
  const double a1[2] = {1.2, 1.0};
  ASSERT_EQ_INT(pol_mj_map_act(map, m, d, a1), 0);
  ASSERT_NEAR(d->ctrl[0], 0.6, 1e-12);
  ASSERT_NEAR(d->ctrl[1], 0.1, 1e-12);
  const double a2[2] = {4.0, 2.0};
  ASSERT_EQ_INT(pol_mj_map_act(map, m, d, a2), 2); /* 2.0 > ctrlrange 1; 0.1 + 0.2 > 0.25 */
  ASSERT_NEAR(d->ctrl[0], 1.0, 1e-12);
  ASSERT_NEAR(d->ctrl[1], 0.25, 1e-12);
  mj_deleteData(d);
  pol_mj_map_free(map);
  mj_deleteModel(m);
  s_cleanup();
  return 0;
}

/* a random-weight policy of the spec's shape (To 2, Tp 4, Ta 2, LFM) */
static pol_policy *s_random_policy(void) {
  pol_train_config tc;
  pol_train_config_default(&tc);
  tc.To = 2, tc.Tp = 4, tc.Ta = 2;
  tc.net.mlp.width = 32;
  fc_lfm *flow = pol_flow_new(&tc, 8, 2, NULL, 0);
  fc_rng r;
  fc_rng_seed(&r, 3);
  for (size_t i = 0; i < fc_lfm_nparams(flow); i++) flow->params[i] = 0.05f * (float)fc_rng_normal(&r);
  const pol_mj_spec s = s_spec();
  pol_meta meta;
  if (pol_meta_init(&meta, POL_LFM, 2, 4, 2, 3, s.keys, s.dims, 2, NULL, 20.0, NULL, 0)) return NULL;
  fc_norm on, an;
  fc_norm_range(&on, 8, -1, 1);
  fc_norm_range(&an, 2, -1, 1);
  return pol_new(&meta, &on, &an, flow, NULL, 0);
}

TEST(the_control_callback_equals_the_users_loop) {
  mjModel *m = s_model();
  pol_policy *p = s_random_policy();
  ASSERT(m && p);
  char err[4096];
  const char *map = s_write("map.json", s_map);
  pol_mj *a = pol_mj_new(m, map, p, 7, err, sizeof(err));
  ASSERT_MSG(a, "%s", err);
  mjData *d1 = mj_makeData(m), *d2 = mj_makeData(m);
  for (int t = 0; t < 300; t++) { /* the user's loop */
    mj_step1(m, d1);
    ASSERT_MSG(pol_mj_step(a, m, d1, err, sizeof(err)) == 0, "%s", err);
    mj_step2(m, d1);
  }
  const pol_mj_stats s1 = pol_mj_get_stats(a);
  ASSERT_EQ_INT(s1.control_steps, 60);
  pol_mj_reset(a, 7);
  ASSERT(pol_mj_install(a, m, err, sizeof(err)) == 0);
  pol_mj *b = pol_mj_new(m, map, p, 7, err, sizeof(err));
  ASSERT(pol_mj_install(b, m, err, sizeof(err)) == -1 && strstr(err, "another lfp controller"));
  for (int t = 0; t < 300; t++) mj_step(m, d2); /* as mjcb_control */
  pol_mj_uninstall();
  ASSERT(mjcb_control == NULL);
  for (int i = 0; i < m->nq; i++) ASSERT_MSG(d1->qpos[i] == d2->qpos[i], "qpos[%d] %.17g vs %.17g", i, d1->qpos[i], d2->qpos[i]);
  ASSERT(d1->qpos[0] != 0 || d1->qpos[1] != 0); /* the policy moved the puck */
  ASSERT(!pol_mj_last_error(a)[0]);
  /* someone else's callback is never replaced */
  mjcb_control = (mjfGeneric)(void (*)(const mjModel *, mjData *))mj_forward;
  ASSERT(pol_mj_install(b, m, err, sizeof(err)) == -1 && strstr(err, "already set by someone else"));
  mjcb_control = NULL;
  mj_deleteData(d1);
  mj_deleteData(d2);
  pol_mj_free(a);
  pol_mj_free(b);
  pol_free(p);
  mj_deleteModel(m);
  s_cleanup();
  return 0;
}

/* the user's own controller: a PD law towards the goal, in [-1, 1] */
static void s_expert(const mjData *d, double *act) {
  for (int j = 0; j < 2; j++) {
    const double a = 3.0 * (d->mocap_pos[j] - d->qpos[j]) - 0.8 * d->qvel[j];
    act[j] = a > 1 ? 1 : a < -1 ? -1 : a;
  }
}

static void s_episode_start(const mjModel *m, mjData *d, fc_rng *r) {
  mj_resetData(m, d);
  d->mocap_pos[0] = 0.6 * fc_rng_uniform(r) - 0.3;
  d->mocap_pos[1] = 0.6 * fc_rng_uniform(r) - 0.3;
}

static double s_distance(const mjData *d) { return hypot(d->mocap_pos[0] - d->qpos[0], d->mocap_pos[1] - d->qpos[1]); }

TEST(record_train_attach_on_a_users_model) {
  mjModel *m = s_model();
  ASSERT(m);
  char err[4096];
  const pol_mj_spec spec0 = s_spec();
  pol_mj_spec spec = spec0;
  spec.control_hz = 20;
  const char *mapfile = s_write("map.json", s_map);
  pol_mj_map *map = pol_mj_map_load(m, mapfile, &spec, err, sizeof(err));
  ASSERT_MSG(map, "%s", err);
  /* record: 40 episodes of 2 s from the user's controller, at the control rate */
  char h5[160];
  snprintf(h5, sizeof(h5), "%s/demos.hdf5", s_dir);
  ds_writer *w = ds_writer_create(h5, "{\"env_name\": \"puck\"}", err, sizeof(err));
  ASSERT_MSG(w, "%s", err);
  mjData *d = mj_makeData(m);
  fc_rng r;
  fc_rng_seed(&r, 200000); /* selection seeds for the demos */
  enum { T = 40 };
  double obs[T][8], act[T][2], puck[T][3], vel[T][2], goal[T][3];
  for (int e = 0; e < 40; e++) {
    s_episode_start(m, d, &r);
    for (int t = 0; t < T; t++) {
      for (int k = 0; k < 5; k++) { /* the control held for 5 steps */
        mj_step1(m, d);
        if (k == 0) {
          pol_mj_map_obs(map, m, d, obs[t]);
          s_expert(d, act[t]);
          pol_mj_map_act(map, m, d, act[t]);
        }
        mj_step2(m, d);
      }
    }
    for (int t = 0; t < T; t++) {
      memcpy(puck[t], obs[t], sizeof(puck[t]));
      memcpy(vel[t], obs[t] + 3, sizeof(vel[t]));
      memcpy(goal[t], obs[t] + 5, sizeof(goal[t]));
    }
    const ds_obs_data od[3] = {{"puck", 3, &puck[0][0], NULL}, {"vel", 2, &vel[0][0], NULL}, {"goal", 3, &goal[0][0], NULL}};
    const ds_demo_data dd = {.len = T, .action_dim = 2, .actions = &act[0][0], .nobs = 3, .obs = od};
    ASSERT_MSG(ds_writer_add(w, &dd, err, sizeof(err)) == e, "%s", err);
  }
  ASSERT_MSG(ds_writer_close(w, err, sizeof(err)) == 0, "%s", err);
  /* train */
  ds_file *f = ds_open(h5, err, sizeof(err));
  ASSERT_MSG(f, "%s", err);
  ds_dataset *ds = ds_load(f, spec.keys, 3, err, sizeof(err));
  ASSERT_MSG(ds, "%s", err);
  pol_train_config tc;
  pol_train_config_default(&tc);
  tc.method = POL_FM;
  tc.steps = 1500;
  tc.To = 2, tc.Tp = 8, tc.Ta = 4;
  tc.net.mlp.width = 64;
  tc.seed = 0;
  pol_trainer *tr = pol_trainer_new(ds, &tc, "{\"env_name\": \"puck\"}", 20.0, err, sizeof(err));
  ASSERT_MSG(tr, "%s", err);
  while (!pol_trainer_done(tr)) pol_trainer_step(tr);
  const pol_policy *p = pol_trainer_policy(tr);
  /* attach: 10 new episodes (selection seeds), the trained policy against
   * no control at all; success: the puck ends within 5 cm of the goal */
  pol_mj *a = pol_mj_new(m, mapfile, p, 200100, err, sizeof(err));
  ASSERT_MSG(a, "%s", err);
  fc_rng_seed(&r, 200100);
  double dist0 = 0, dist = 0;
  int near = 0;
  for (int e = 0; e < 10; e++) {
    s_episode_start(m, d, &r);
    pol_mj_reset(a, 200100 + (uint64_t)e);
    dist0 += s_distance(d);
    for (int t = 0; t < 300; t++) {
      mj_step1(m, d);
      ASSERT_MSG(pol_mj_step(a, m, d, err, sizeof(err)) == 0, "%s", err);
      mj_step2(m, d);
    }
    dist += s_distance(d);
    near += s_distance(d) < 0.05;
  }
  printf("trained policy on the user's model: mean distance to the goal %.3f -> %.3f, %d/10 within 5 cm\n", dist0 / 10,
         dist / 10, near);
  ASSERT_MSG(near >= 7, "only %d/10 episodes ended within 5 cm of the goal", near);
  /* the same through lfp sim --model: the explicit loop and the callback
   * agree on the final states; a broken map is one sentence per mismatch */
  char pol[160], cmd[1024], out[2][4096];
  snprintf(pol, sizeof(pol), "%s/p.lfp", s_dir);
  ASSERT_MSG(pol_save_file(p, pol, err, sizeof(err)) == 0, "%s", err);
  for (int cb = 0; cb < 2; cb++) {
    snprintf(cmd, sizeof(cmd), "%s sim --model %s/scene.xml --map %s --policy %s --episodes 2 --seconds 1 --json%s 2>/dev/null",
             LFP_BINARY, s_dir, mapfile, pol, cb ? " --callback" : "");
    FILE *pp = popen(cmd, "r");
    ASSERT(pp);
    const size_t n = fread(out[cb], 1, sizeof(out[cb]) - 1, pp);
    out[cb][n] = 0;
    ASSERT_MSG(pclose(pp) == 0, "%s: %s", cmd, out[cb]);
    ASSERT_MSG(strstr(out[cb], "\"control_steps\": 40") && strstr(out[cb], "\"refused\": 0"), "%s", out[cb]);
  }
  const char *d0 = strstr(out[0], "\"digest\""), *d1 = strstr(out[1], "\"digest\"");
  ASSERT(d0 && d1 && !strncmp(d0, d1, 22));
  /* --video films the first episode (a frame per control step and the
   * start: 21 frames) without changing the run: the same digest; ffprobe,
   * an independent reader, counts the frames */
  char vout[8192];
  snprintf(cmd, sizeof(cmd), "%s sim --model %s/scene.xml --map %s --policy %s --episodes 2 --seconds 1 --json --video "
           "%s/videos --video-episodes 1 --size 96x64 2>/dev/null", LFP_BINARY, s_dir, mapfile, pol, s_dir);
  FILE *vp = popen(cmd, "r");
  ASSERT(vp);
  const size_t vn = fread(vout, 1, sizeof(vout) - 1, vp);
  vout[vn] = 0;
  ASSERT_MSG(pclose(vp) == 0, "%s: %s", cmd, vout);
  const char *dv = strstr(vout, "\"digest\"");
  ASSERT_MSG(dv && !strncmp(d0, dv, 22), "the digest changed with --video: %s", vout);
  ASSERT_MSG(strstr(vout, "seed100000.mp4") && strstr(vout, "\"frames\": 21") && !strstr(vout, "seed100001"), "%s", vout);
  snprintf(cmd, sizeof(cmd), "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
           "stream=width,height,nb_read_frames -of csv=p=0 %s/videos/seed100000.mp4", s_dir);
  FILE *fp = popen(cmd, "r");
  ASSERT(fp);
  char probe[256] = "";
  const size_t pn = fread(probe, 1, sizeof(probe) - 1, fp);
  probe[pn] = 0;
  ASSERT_MSG(pclose(fp) == 0 && !strncmp(probe, "96,64,21", 8), "ffprobe read '%s'", probe);
  /* and through a controller node (lfp serve on an ipc socket): the same
   * actions, so the same final states, bit for bit */
  char remote[4096];
  snprintf(cmd, sizeof(cmd),
           "L=%s; D=%s; $L serve --policy $D/p.lfp --bind ipc://$D/node.ipc >/dev/null 2>&1 & S=$!; "
           "for i in $(seq 200); do [ -S $D/node.ipc ] && break; sleep 0.05; done; "
           "$L sim --model $D/scene.xml --map %s --connect ipc://$D/node.ipc --episodes 2 --seconds 1 --json 2>/dev/null; "
           "R=$?; kill $S; wait $S; exit $R",
           LFP_BINARY, s_dir, mapfile);
  FILE *rp = popen(cmd, "r");
  ASSERT(rp);
  const size_t rn = fread(remote, 1, sizeof(remote) - 1, rp);
  remote[rn] = 0;
  ASSERT_MSG(pclose(rp) == 0, "%s", remote);
  const char *dr = strstr(remote, "\"digest\"");
  ASSERT_MSG(dr && !strncmp(d0, dr, 22) && strstr(remote, "\"refused\": 0"), "remote %s vs in-process %s", remote, out[0]);
  snprintf(cmd, sizeof(cmd), "%s sim --model %s/scene.xml --map %s/bad.json --policy %s 2>&1", LFP_BINARY, s_dir, s_dir, pol);
  s_write("bad.json", "{\"control_hz\": 20, \"obs\": {\"puck\": [{\"site_pos\": \"nosite\"}]}, \"actions\": []}");
  FILE *pp = popen(cmd, "r");
  const size_t n = fread(out[0], 1, sizeof(out[0]) - 1, pp);
  out[0][n] = 0;
  ASSERT(pclose(pp) != 0);
  ASSERT_MSG(strstr(out[0], "no site named 'nosite'") && strstr(out[0], "'vel' (2 values) has no entry") &&
                 strstr(out[0], "actions has 0 entries"), "%s", out[0]);
  mj_deleteData(d);
  pol_mj_free(a);
  pol_trainer_free(tr);
  ds_dataset_free(ds);
  ds_close(f);
  pol_mj_map_free(map);
  mj_deleteModel(m);
  s_cleanup();
  return 0;
}

int main(int argc, char **argv) {
  fc_par_init(0);
  static const test_case cases[] = {
      TEST_ENTRY(map_mismatches_are_one_sentence_each),
      TEST_ENTRY(observations_and_actions_reach_the_named_elements),
      TEST_ENTRY(the_control_callback_equals_the_users_loop),
      TEST_ENTRY(record_train_attach_on_a_users_model),
  };
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
