/* lfp sim --model SCENE.xml --map MAP.json --policy POLICY.lfp: a trained
 * policy driving the user's own MuJoCo model (policy/pol_mj.h), in-process,
 * from the model's initial state (or a keyframe) for --seconds per episode. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "env.h"
#include "fc_ckpt.h"
#include "pol_mj.h"

int cmd_sim_model(int argc, char **argv) {
  const char *model = NULL, *map = NULL, *path = NULL, *connect = NULL;
  int episodes = 1, seed = 100000, json = 0, keyframe = -1, callback = 0;
  double seconds = 10;
  cli_opt opts[] = {
      {"--model", CLI_STR, &model, "the user's MJCF scene", NULL, 0, 0},
      {"--map", CLI_STR, &map, "the mapping file: observation sources and actuators (see policy/pol_mj.h)", NULL, 0, 0},
      {"--policy", CLI_STR, &path, "the trained policy, run in-process", NULL, 0, 0},
      {"--connect", CLI_STR, &connect, "(not with --model yet: the policy runs in-process)", NULL, 0, 0},
      {"--episodes", CLI_INT, &episodes, "episodes, each from the initial state", NULL, 1, 100000},
      {"--seconds", CLI_DOUBLE, &seconds, "simulated seconds per episode", NULL, 1e-3, 1e6},
      {"--seed", CLI_INT, &seed, "the sampler's seed of the first episode (then +1 each)", NULL, 0, 2147483647},
      {"--keyframe", CLI_INT, &keyframe, "start each episode from this keyframe (default: the model's qpos0)", NULL, 0, 1000000},
      {"--callback", CLI_FLAG, &callback, "run the policy as MuJoCo's mjcb_control instead of an explicit loop", NULL, 0, 0},
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("sim", "lfp sim --model SCENE.xml --map MAP.json --policy POLICY.lfp [--seconds S] [--episodes N] "
                            "[--json]", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  if (!map || !path) {
    cli_error("sim", "--model needs --map MAP.json and --policy POLICY.lfp");
    return 2;
  }
  if (connect) {
    cli_error("sim", "--connect is for lfp's own tasks; with --model the policy runs in-process (--policy)");
    return 2;
  }
  char err[4096];
  if (env_init(err, sizeof(err))) { /* MuJoCo's error handler and version check */
    cli_error("sim", "%s", err);
    return 1;
  }
  mjModel *m = mj_loadXML(model, NULL, err, sizeof(err));
  if (!m) {
    cli_error("sim", "%s: %s", model, err[0] ? err : "MuJoCo could not load it");
    return 1;
  }
  if (keyframe >= m->nkey) {
    cli_error("sim", "--keyframe %d: %s has %d keyframes", keyframe, model, m->nkey);
    mj_deleteModel(m);
    return 2;
  }
  pol_policy *p = pol_load(path, err, sizeof(err));
  pol_mj *a = p ? pol_mj_new(m, map, p, (uint64_t)seed, err, sizeof(err)) : NULL;
  if (!a) {
    fprintf(stderr, "%s\n", err); /* one sentence per mismatch, each naming the file */
    pol_free(p);
    mj_deleteModel(m);
    return 1;
  }
  mjData *d = mj_makeData(m);
  const int substeps = pol_mj_map_substeps(pol_mj_get_map(a), m);
  const long steps = (long)ceil(seconds / m->opt.timestep);
  if (callback && pol_mj_install(a, m, err, sizeof(err))) {
    cli_error("sim", "%s", err);
    rc = 1;
    episodes = 0;
  }
  printf("lfp sim: %s on %s (%s), %d episode%s of %.3g s (%ld steps of %.4g s, the policy every %d), %s\n", path,
         model, map, episodes, episodes == 1 ? "" : "s", seconds, steps, m->opt.timestep, substeps,
         callback ? "as mjcb_control" : "explicit loop (mj_step1, policy, mj_step2)");
  const double t0 = cli_now();
  uint32_t digest = 0;
  long refused_episodes = 0;
  char first_refusal[4200] = "";
  for (int e = 0; e < episodes; e++) {
    if (keyframe >= 0) mj_resetDataKeyframe(m, d, keyframe);
    else mj_resetData(m, d);
    pol_mj_reset(a, (uint64_t)seed + (uint64_t)e);
    const pol_mj_stats s0 = pol_mj_get_stats(a);
    for (long t = 0; t < steps; t++) {
      if (callback) {
        mj_step(m, d);
      } else {
        mj_step1(m, d);
        if (pol_mj_step(a, m, d, err, sizeof(err)) && !first_refusal[0])
          snprintf(first_refusal, sizeof(first_refusal), "episode %d, step %ld: %s", e, t, err);
        mj_step2(m, d);
      }
    }
    if (callback && pol_mj_last_error(a)[0] && !first_refusal[0])
      snprintf(first_refusal, sizeof(first_refusal), "episode %d: %s", e, pol_mj_last_error(a));
    refused_episodes += pol_mj_get_stats(a).refused > s0.refused;
    digest = fc_crc32(digest, d->qpos, sizeof(mjtNum) * (size_t)m->nq);
  }
  pol_mj_uninstall();
  const double secs = cli_now() - t0;
  const pol_mj_stats st = pol_mj_get_stats(a);
  printf("  %lld control steps, %lld refused (%ld episode%s), %lld action values clamped by the map, %lld clipped by "
         "the policy, %lld chunks; %.2f s wall, %.1fx real time; final-state digest %08x\n",
         (long long)st.control_steps, (long long)st.refused, refused_episodes, refused_episodes == 1 ? "" : "s",
         (long long)st.clamped, (long long)st.policy.clipped, (long long)st.policy.chunks, secs,
         secs > 0 ? episodes * seconds / secs : 0.0, digest);
  if (first_refusal[0]) printf("  first refusal: %s\n", first_refusal);
  if (json) {
    cli_json_stdout();
    printf("{\"model\": ");
    fc_json_str(stdout, model);
    printf(", \"policy\": ");
    fc_json_str(stdout, path);
    printf(", \"episodes\": %d, \"steps_per_episode\": %ld, \"substeps\": %d, \"control_steps\": %lld, \"refused\": %lld, "
           "\"refused_episodes\": %ld, \"clamped\": %lld, \"clipped\": %lld, \"chunks\": %lld, \"digest\": \"%08x\", "
           "\"callback\": %s, \"seconds\": ",
           episodes, steps, substeps, (long long)st.control_steps, (long long)st.refused, refused_episodes,
           (long long)st.clamped, (long long)st.policy.clipped, (long long)st.policy.chunks, digest,
           callback ? "true" : "false");
    fc_json_num(stdout, secs);
    printf("}\n");
  }
  mj_deleteData(d);
  pol_mj_free(a);
  pol_free(p);
  mj_deleteModel(m);
  return rc;
}
