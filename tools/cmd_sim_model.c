/* lfp sim --model SCENE.xml --map MAP.json (--policy POLICY.lfp | --connect
 * ENDPOINT): a trained policy driving the user's own MuJoCo model
 * (policy/pol_mj.h), in-process or as a controller node over the bus, from
 * the model's initial state (or a keyframe) for --seconds per episode. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "env.h"
#include "fc_ckpt.h"
#include "pol_client.h"
#include "env_render.h"
#include "pol_mj.h"
#include "video.h"

/* the node as the model's actor: every control step one request, "infer"
 * when the chunk of Ta actions is used up, else "observe" (the node's
 * history stays consecutive), as tools/client.py does */
typedef struct {
  pol_client *c;
  const pol_client_info *in;
  double queue[256 * POL_MAX_ACTION];
  int qlen, qpos;
  long chunks, clipped;
} s_remote;

static void s_pack_frame(s_remote *r, msgpack_packer *pk, const double *obs) {
  pw_pack_str(pk, "obs");
  msgpack_pack_map(pk, (size_t)r->in->nkeys);
  for (int k = 0, o = 0; k < r->in->nkeys; k++) {
    const uint32_t shape[1] = {(uint32_t)r->in->dims[k]};
    pw_pack_str(pk, r->in->keys[k]);
    pw_pack_ndarray(pk, obs + o, 1, shape, 8);
    o += r->in->dims[k];
  }
}

static int s_remote_act(void *ctx, const double *obs, double *action, char *err, size_t errsz) {
  s_remote *r = ctx;
  const int A = (int)r->in->action_dim, infer = r->qpos >= r->qlen;
  msgpack_packer *pk = pol_client_request(r->c, infer ? "infer" : "observe", infer ? 2 : 1);
  s_pack_frame(r, pk, obs);
  if (infer) {
    pw_pack_str(pk, "dtype");
    pw_pack_str(pk, "<f8");
  }
  if (pol_client_call(r->c, err, errsz)) return -1;
  if (infer) {
    int rank;
    uint32_t shape[PW_MAX_RANK];
    const msgpack_object *a = pw_map_get(pol_client_reply(r->c), "actions");
    const int n = a ? pw_read_array(a, r->queue, sizeof(r->queue) / sizeof(r->queue[0]), &rank, shape, err, errsz) : -1;
    if (n < 0 || rank != 2 || (int)shape[1] != A) {
      if (n >= 0 || !a) fc_set_err(err, errsz, "the controller's reply has no (n, %d) actions", A);
      return -1;
    }
    int64_t clipped = 0;
    pw_map_int(pol_client_reply(r->c), "clipped", &clipped);
    r->qlen = (int)shape[0], r->qpos = 0, r->chunks++, r->clipped += (long)clipped;
  }
  memcpy(action, r->queue + (size_t)r->qpos++ * A, sizeof(double) * (size_t)A);
  return 0;
}

static void s_remote_reset(void *ctx, uint64_t seed) {
  s_remote *r = ctx;
  msgpack_packer *pk = pol_client_request(r->c, "reset", 1);
  pw_pack_str(pk, "seed");
  msgpack_pack_uint64(pk, seed);
  char err[512];
  if (pol_client_call(r->c, err, sizeof(err))) fprintf(stderr, "lfp sim: reset: %s\n", err);
  r->qlen = r->qpos = 0;
}

int cmd_sim_model(int argc, char **argv) {
  const char *model = NULL, *map = NULL, *path = NULL, *connect = NULL;
  int episodes = 1, seed = 100000, json = 0, keyframe = -1, callback = 0, timeout_ms = 2000, retries = 3;
  double seconds = 10;
  const char *camera = NULL;
  video_opts vo;
  video_opts_default(&vo);
  cli_opt opts[] = {
      {"--model", CLI_STR, &model, "the user's MJCF scene", NULL, 0, 0},
      {"--map", CLI_STR, &map, "the mapping file: observation sources and actuators (see policy/pol_mj.h)", NULL, 0, 0},
      {"--policy", CLI_STR, &path, "the trained policy, run in-process", NULL, 0, 0},
      {"--connect", CLI_STR, &connect, "or a controller node (lfp serve) to ask, one request per control step", NULL, 0, 0},
      {"--timeout-ms", CLI_INT, &timeout_ms, "with --connect: wait this long for each reply", NULL, 1, 600000},
      {"--retries", CLI_INT, &retries, "with --connect: fresh sockets before giving up (Lazy Pirate)", NULL, 0, 100},
      {"--episodes", CLI_INT, &episodes, "episodes, each from the initial state", NULL, 1, 100000},
      {"--seconds", CLI_DOUBLE, &seconds, "simulated seconds per episode", NULL, 1e-3, 1e6},
      {"--seed", CLI_INT, &seed, "the sampler's seed of the first episode (then +1 each)", NULL, 0, 2147483647},
      {"--keyframe", CLI_INT, &keyframe, "start each episode from this keyframe (-1: the model's qpos0)", NULL, 0, 1000000},
      {"--callback", CLI_FLAG, &callback, "run the policy as MuJoCo's mjcb_control instead of an explicit loop", NULL, 0, 0},
      {"--video", CLI_STR, &vo.dir, "render the first --video-episodes episodes into this folder as MP4 (seedS.mp4), "
                                    "one frame per control step", NULL, 0, 0},
      {"--video-episodes", CLI_INT, &vo.episodes, "episodes to render", NULL, 1, 100000},
      {"--size", CLI_STR, &vo.size, "video frame size WxH, even", NULL, 0, 0},
      {"--camera", CLI_STR, &camera, "the model's camera to film from (default: MuJoCo's free camera framing the model)",
       NULL, 0, 0},
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("sim", "lfp sim --model SCENE.xml --map MAP.json (--policy POLICY.lfp | --connect ENDPOINT) "
                            "[--seconds S] [--episodes N] [--json]", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  if (!map || !path == !connect) {
    cli_error("sim", "--model needs --map MAP.json and one of --policy POLICY.lfp or --connect ENDPOINT");
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
  pol_policy *p = NULL;
  pol_mj *a = NULL;
  s_remote remote = {0};
  pol_client_info info;
  if (path) {
    p = pol_load(path, err, sizeof(err));
    a = p ? pol_mj_new(m, map, p, (uint64_t)seed, err, sizeof(err)) : NULL;
  } else if ((remote.c = pol_client_new(NULL, connect, timeout_ms, retries, NULL, err, sizeof(err))) &&
             !pol_client_get_info(remote.c, &info, err, sizeof(err))) {
    remote.in = &info;
    pol_mj_spec spec = {.nkeys = info.nkeys, .action_dim = (int)info.action_dim, .control_hz = info.control_hz};
    for (int k = 0; k < info.nkeys; k++) spec.keys[k] = info.keys[k], spec.dims[k] = info.dims[k];
    const pol_mj_actor actor = {s_remote_act, s_remote_reset, &remote};
    a = pol_mj_new_actor(m, map, &spec, &actor, err, sizeof(err));
  }
  if (!a) {
    fprintf(stderr, "%s\n", err); /* one sentence per mismatch, each naming the file */
    pol_client_free(remote.c);
    pol_free(p);
    mj_deleteModel(m);
    return 1;
  }
  if (!path) path = connect;
  mjData *d = mj_makeData(m);
  const int substeps = pol_mj_map_substeps(pol_mj_get_map(a), m);
  /* --video: drawn from a copy of the data after each control step (the
   * rollout is only read) */
  env_render *rr = NULL;
  video_result vr = {0};
  unsigned char *rgb = NULL;
  int vw = 0, vh = 0;
  if (vo.dir && (video_prepare(&vo, &vw, &vh, err, sizeof(err)) ||
                 !(rr = env_render_new_model(m, camera, vw, vh, err, sizeof(err))))) {
    cli_error("sim", "--video: %s", err);
    rc = 1;
    episodes = 0;
  }
  if (rr) {
    rgb = fc_malloc((size_t)vw * (size_t)vh * 3);
    vr.files = fc_calloc((size_t)(vo.episodes < episodes ? vo.episodes : episodes), sizeof(video_file));
    vr.width = vw, vr.height = vh, vr.fps = 1.0 / (substeps * m->opt.timestep);
    snprintf(vr.backend, sizeof(vr.backend), "%s", env_render_backend(rr));
  }
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
    env_video *v = NULL;
    video_file *vf = rr && e < vo.episodes ? &vr.files[vr.n] : NULL;
    if (vf) {
      snprintf(vf->name, sizeof(vf->name), "seed%llu", (unsigned long long)seed + (unsigned long long)e);
      snprintf(vf->path, sizeof(vf->path), "%s/%s.mp4", vo.dir, vf->name);
      if (!(v = env_video_open(vf->path, vw, vh, vr.fps, err, sizeof(err)))) {
        cli_error("sim", "--video: %s", err);
        rc = 1;
        break;
      }
      if (!vr.encoder[0]) snprintf(vr.encoder, sizeof(vr.encoder), "%s", env_video_encoder(v));
    }
    int vrc = 0;
    for (long t = 0; t <= steps && !vrc; t++) {
      if (v && t % substeps == 0) { /* a frame per control step, the first at the start */
        char caption[96];
        snprintf(caption, sizeof(caption), "%s  t %.2f s", vf->name, d->time);
        const double f0 = cli_now();
        vrc = env_render_data(rr, d, caption, NULL, rgb, err, sizeof(err));
        const double f1 = cli_now();
        if (!vrc) vrc = env_video_frame(v, rgb, err, sizeof(err));
        vr.draw_s += f1 - f0, vr.encode_s += cli_now() - f1;
        vf->frames++;
      }
      if (t == steps) break;
      if (callback) {
        mj_step(m, d);
      } else {
        mj_step1(m, d);
        if (pol_mj_step(a, m, d, err, sizeof(err)) && !first_refusal[0])
          snprintf(first_refusal, sizeof(first_refusal), "episode %d, step %ld: %s", e, t, err);
        mj_step2(m, d);
      }
    }
    if (v) {
      const double c0 = cli_now();
      if (env_video_close(v, vrc ? NULL : err, sizeof(err))) vrc = -1;
      vr.encode_s += cli_now() - c0;
      if (vrc) {
        cli_error("sim", "--video: %s", err);
        rc = 1;
        break;
      }
      vf->success = pol_mj_get_stats(a).refused == s0.refused;
      vr.frames += vf->frames;
      vr.n++;
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
         (long long)st.clamped, (long long)st.policy.clipped + remote.clipped, (long long)st.policy.chunks + remote.chunks, secs,
         secs > 0 ? episodes * seconds / secs : 0.0, digest);
  if (first_refusal[0]) printf("  first refusal: %s\n", first_refusal);
  if (rr && !rc) video_print(stdout, vo.dir, &vr);
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
           (long long)st.clamped, (long long)st.policy.clipped + remote.clipped, (long long)st.policy.chunks + remote.chunks,
           digest,
           callback ? "true" : "false");
    fc_json_num(stdout, secs);
    if (rr && !rc) video_json(stdout, &vr);
    printf("}\n");
  }
  video_result_free(&vr);
  free(rgb);
  env_render_free(rr);
  mj_deleteData(d);
  pol_mj_free(a);
  pol_client_free(remote.c);
  pol_free(p);
  mj_deleteModel(m);
  return rc;
}
