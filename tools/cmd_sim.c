/* lfp sim: a MuJoCo task as a separate node, driven by an `lfp serve`
 * controller over ZeroMQ (REQ socket, Lazy Pirate retries).
 *
 * lockstep: the simulation waits for every chunk; with the same policy and
 *   seeds it reproduces `lfp eval` bit for bit (observations and actions
 *   travel as <f8, the last To frames are sent with each request, and the
 *   controller's sampler is reseeded per episode as eval does).
 * realtime: the simulation runs on the wall clock at the task's control rate.
 *   The next chunk is requested when --lead actions of the current one are
 *   left; a reply is due by the step's deadline (--budget-ms after the tick);
 *   actions of a chunk whose steps have already run are dropped and counted
 *   as late; with nothing to execute, the last action is held. A controller
 *   that stops answering (no reply in --timeout-ms, --retries fresh sockets)
 *   ends the episode and the run with a clear message.
 *   --delay-ms D makes a reply usable only D ms after it arrives (a slow
 *   network or model). How a fresh chunk joins the one executing (--join):
 *   replace (from the first action not yet run), blend (over the overlap
 *   0.3 old + 0.7 new, as LeRobot's async client), rtc (the request tells
 *   the node d, the actions that will run before the reply lands, estimated
 *   from measured round trips plus the delay with each episode's cold start
 *   excluded, and the step of the current chunk executing: the node freezes
 *   the first d actions and guides the rest towards the current chunk). The
 *   next chunk is requested when d + --lead actions are left, so that --lead
 *   actions of the current chunk overlap the next one when it lands. */
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cli.h"
#include "video.h"
#include "commands.h"
#include "env.h"
#include "fc_base.h"
#include "pol_client.h"
#include "pol_rollout.h"

#define S_MAX_TO 64
#define S_MAX_H 256 /* actions per reply (a policy's Tp is at most 256) */
#define S_MAX_OBS 256

/* ---- the simulation ---- */

typedef struct {
  pol_client *link;
  pol_client_info info;
  const env_model *em;
  int O, A;
  int off[ENV_MAX_KEYS]; /* where the policy's keys sit in the task's observation */
  double hist[S_MAX_TO * S_MAX_OBS]; /* the last To raw observations, oldest first */
  int nhist;
  int H;                  /* actions per reply: Ta, or --horizon */
  double chunk[S_MAX_H * ENV_MAX_ACTION];
  long clipped_total;
  double *rtt, *sample; /* per chunk, us */
  long nrtt, caprtt;
  long late, held;
  /* realtime joins */
  int join;               /* S_JOIN_* */
  double delay;           /* s: a reply is usable this long after it arrives */
  double recent[32];      /* the last round trips (s), cold starts excluded */
  int nrecent;
  int rtc_delay, rtc_index; /* of the request being built (rtc) */
  double seam_sum;
  long seams, rtc_guided;
  pol_rollout_traj *tr;   /* with --video: the episode being recorded */
} s_sim;

enum { S_JOIN_REPLACE = 0, S_JOIN_BLEND = 1, S_JOIN_RTC = 2 };

static int s_check_env(s_sim *S, char *err, size_t errsz) {
  const pol_client_info *in = &S->info;
  const env_model *em = S->em;
  const char *keys[ENV_MAX_KEYS];
  for (int k = 0; k < in->nkeys; k++) keys[k] = in->keys[k];
  if (env_obs_select(em, keys, in->dims, in->nkeys, S->off, err, errsz)) return -1;
  if (env_action_dim(em) != in->action_dim)
    return fc_set_err(err, errsz, "task %s takes %d-D actions but the policy makes %lld", env_name(em), env_action_dim(em),
                      (long long)in->action_dim), -1;
  if (env_obs_dim(em) > S_MAX_OBS) return fc_set_err(err, errsz, "task %s has too many observation values", env_name(em)), -1;
  return 0;
}

static void s_push_obs(s_sim *S, const double *obs) {
  const int To = (int)S->info.To, O = S->O;
  if (S->nhist == To) memmove(S->hist, S->hist + O, sizeof(double) * (size_t)(To - 1) * O);
  else S->nhist++;
  memcpy(S->hist + (size_t)(S->nhist - 1) * O, obs, sizeof(double) * (size_t)O);
}

/* an infer request with the last (up to To) frames, <f8 both ways (rtc: with
 * S->rtc_delay and S->rtc_index; a horizon other than Ta: with it) */
static void s_build_infer(s_sim *S, int rtc) {
  const int horizon = S->H != S->info.Ta;
  msgpack_packer *pk = pol_client_request(S->link, "infer", (rtc ? 4 : 2) + horizon);
  if (horizon) {
    pw_pack_str(pk, "horizon");
    msgpack_pack_uint32(pk, (uint32_t)S->H);
  }
  if (rtc) {
    pw_pack_str(pk, "rtc_delay");
    msgpack_pack_uint32(pk, (uint32_t)S->rtc_delay);
    pw_pack_str(pk, "rtc_index");
    msgpack_pack_uint32(pk, (uint32_t)S->rtc_index);
  }
  pw_pack_str(pk, "dtype");
  pw_pack_str(pk, "<f8");
  pw_pack_str(pk, "obs");
  msgpack_pack_map(pk, (size_t)S->info.nkeys);
  double buf[S_MAX_TO * S_MAX_OBS];
  for (int k = 0; k < S->info.nkeys; k++) {
    const int d = S->info.dims[k];
    for (int f = 0; f < S->nhist; f++)
      memcpy(buf + (size_t)f * d, S->hist + (size_t)f * S->O + S->off[k], sizeof(double) * (size_t)d);
    const uint32_t shape[2] = {(uint32_t)S->nhist, (uint32_t)d};
    pw_pack_str(pk, S->info.keys[k]);
    pw_pack_ndarray(pk, buf, 2, shape, 8);
  }
}

/* the reply's chunk -> dst; records round trip and sampling time (and, when
 * warm, the round trip for the realtime delay estimate) */
static int s_take_chunk(s_sim *S, double *dst, int warm, char *err, size_t errsz) {
  const msgpack_object *m = pol_client_reply(S->link), *a = pw_map_get(m, "actions");
  int rank;
  uint32_t shape[PW_MAX_RANK];
  const int H = S->H;
  if (!a || pw_read_array(a, dst, (size_t)H * S->A, &rank, shape, err, errsz) < 0) {
    if (!a) fc_set_err(err, errsz, "the controller's reply has no actions");
    return -1;
  }
  if (rank != 2 || (int)shape[0] != H || (int)shape[1] != S->A)
    return fc_set_err(err, errsz, "the controller sent actions of shape (%u, %u), not (%d, %d)", shape[0], shape[1], H, S->A), -1;
  int64_t clipped = 0;
  pw_map_int(m, "clipped", &clipped);
  S->clipped_total += (long)clipped;
  const msgpack_object *t = pw_map_get(m, "server_timing");
  double sus = NAN;
  if (t) pw_map_num(t, "sample_us", &sus);
  const double rtt = cli_now() - pol_client_sent_at(S->link);
  if (S->nrtt < S->caprtt) {
    S->rtt[S->nrtt] = rtt * 1e6;
    S->sample[S->nrtt] = sus;
    S->nrtt++;
  }
  if (warm) S->recent[S->nrecent++ % 32] = rtt;
  char how[16];
  if (!pw_map_str(m, "rtc", how, sizeof(how)) && strcmp(how, "none")) S->rtc_guided++;
  return 0;
}

/* d: control steps a reply takes to become usable, from the 90th percentile
 * of the recent warm round trips plus the delay (at least 1) */
static int s_delay_steps(const s_sim *S) {
  double v[32], rtt = 0.0;
  const int n = S->nrecent < 32 ? S->nrecent : 32;
  memcpy(v, S->recent, sizeof(double) * (size_t)n);
  if (n) {
    fc_sort(v, n);
    rtt = fc_quantile(v, n, 0.9);
  }
  const int d = (int)ceil((rtt + S->delay) * S->info.control_hz - 1e-9);
  return d < 1 ? 1 : d;
}

static int s_episode_reset(s_sim *S, uint64_t seed, char *err, size_t errsz) {
  msgpack_packer *pk = pol_client_request(S->link, "reset", 1);
  pw_pack_str(pk, "seed");
  msgpack_pack_uint64(pk, seed);
  S->nhist = 0;
  return pol_client_call(S->link, err, errsz);
}

static int s_episode_lockstep(s_sim *S, env_data *ed, pol_rollout_result *r, int *unstable, char *err, size_t errsz) {
  const env_model *em = S->em;
  double obs[S_MAX_OBS];
  int qpos = S->H;
  while (!env_done(em, ed)) {
    env_obs(em, ed, obs);
    s_push_obs(S, obs);
    if (qpos >= S->H) {
      s_build_infer(S, 0);
      const int rc = pol_client_call(S->link, err, errsz);
      if (rc) return rc;
      if (s_take_chunk(S, S->chunk, 0, err, errsz)) return -1;
      qpos = 0;
    }
    if (S->tr) pol_rollout_traj_pre(S->tr, em, ed);
    const int src = env_step(em, ed, S->chunk + (size_t)qpos * S->A, err, errsz);
    if (src == ENV_UNSTABLE) {
      *unstable = 1; /* err says why */
      return 0;
    }
    if (src) return -1; /* a non-finite action from the controller */
    if (S->tr) pol_rollout_traj_post(S->tr, em, ed, S->chunk + (size_t)qpos * S->A);
    qpos++;
    pol_rollout_track(em, ed, r);
  }
  return 0;
}

/* realtime: S->chunk holds actions for steps qstart .. qstart+H-1; a reply
 * that has arrived waits in pend (for steps from pend_req) until pend_at */
typedef struct {
  int qstart, req_step;
  double last[ENV_MAX_ACTION];
  double pend[S_MAX_H * ENV_MAX_ACTION];
  int pending, pend_req;
  double pend_at;
} s_rt;

/* the pending chunk joins the executing one with step `cur` about to run
 * (cur < 0: the episode is over: nothing is late, nothing joins) */
static void s_rt_join(s_sim *S, s_rt *rt, int cur) {
  const int H = S->H, A = S->A; /* H: a reply's actions */
  rt->pending = 0;
  if (cur < 0) return;
  const long late = cur - rt->pend_req;
  S->late += late < 0 ? 0 : late > H ? H : late;
  const int old_idx = cur - rt->qstart, new_idx = cur - rt->pend_req;
  const int had_plan = old_idx >= 0 && old_idx < H;
  if (S->join == S_JOIN_BLEND) /* over the overlap: 0.3 old + 0.7 new (LeRobot's async client) */
    for (int j = cur; j < rt->qstart + H && j < rt->pend_req + H; j++)
      for (int a = 0; a < A; a++) {
        double *nv = rt->pend + (size_t)(j - rt->pend_req) * A + a;
        *nv = 0.3 * S->chunk[(size_t)(j - rt->qstart) * A + a] + 0.7 * *nv;
      }
  if (had_plan && new_idx >= 0 && new_idx < H) {
    /* the seam: the first action run from the new chunk against the old plan for that step */
    double d2 = 0.0;
    for (int a = 0; a < A; a++) {
      const double d = rt->pend[(size_t)new_idx * A + a] - S->chunk[(size_t)old_idx * A + a];
      d2 += d * d;
    }
    S->seam_sum += sqrt(d2);
    S->seams++;
  }
  memcpy(S->chunk, rt->pend, sizeof(double) * (size_t)H * A);
  rt->qstart = rt->pend_req;
}

/* Wait until wall time `until` while a reply is in flight (returning at its
 * arrival when `early`); a reply that arrives is usable S->delay later and
 * joins when it is, with step `cur` about to run; Lazy Pirate on timeouts. */
static int s_rt_pump(s_sim *S, s_rt *rt, double until, int cur, int early, char *err, size_t errsz) {
  const double timeout = pol_client_timeout_ms(S->link) * 1e-3;
  for (;;) {
    const double now = cli_now();
    if (rt->pending && now >= rt->pend_at) {
      s_rt_join(S, rt, cur);
      if (early) return 0;
      continue;
    }
    if (!pol_client_inflight(S->link)) {
      double stop = until;
      if (rt->pending && early && rt->pend_at < stop) stop = rt->pend_at;
      if (stop > now) {
        const double sl = stop - now;
        struct timespec ts = {(time_t)sl, (long)((sl - (time_t)sl) * 1e9)};
        nanosleep(&ts, NULL);
      }
      if (rt->pending && cli_now() >= rt->pend_at && cli_now() < until) continue;
      return 0;
    }
    if (now - pol_client_sent_at(S->link) > timeout) {
      /* a fresh socket; the request carries the newest frames (and, for rtc,
       * the step of the chunk executing now) */
      rt->req_step = cur;
      S->rtc_index = cur - rt->qstart;
      s_build_infer(S, S->join == S_JOIN_RTC);
      if (pol_client_retry(S->link, err, errsz)) return -1;
      continue;
    }
    double wait = until - now;
    const double to = pol_client_sent_at(S->link) + timeout - now;
    if (to < wait) wait = to;
    if (wait <= 0 && until <= now) return 0;
    const int rc = pol_client_poll(S->link, (int)ceil(wait * 1e3), err, errsz);
    if (rc < 0) return rc;
    if (rc > 0) {
      if (s_take_chunk(S, rt->pend, 1, err, errsz)) return -1;
      rt->pending = 1;
      rt->pend_req = rt->req_step;
      rt->pend_at = cli_now() + S->delay;
      continue;
    }
    if (cli_now() >= until) return 0;
  }
}

static int s_episode_realtime(s_sim *S, env_data *ed, pol_rollout_result *r, int *unstable, int lead, double budget,
                              char *err, size_t errsz) {
  const env_model *em = S->em;
  const double dt = 1.0 / S->info.control_hz;
  const int H = S->H, A = S->A; /* H: a reply's actions */
  double obs[S_MAX_OBS];
  s_rt rt;
  memset(&rt, 0, sizeof(rt));
  /* the first chunk before the clock starts: the robot waits at rest (a
   * cold start: its round trip does not enter the delay estimate) */
  env_obs(em, ed, obs);
  s_push_obs(S, obs);
  s_build_infer(S, 0);
  const int rc0 = pol_client_call(S->link, err, errsz);
  if (rc0) return rc0;
  if (s_take_chunk(S, S->chunk, 0, err, errsz)) return -1;
  const double t0 = cli_now();
  for (int k = 0; !env_done(em, ed); k++) {
    if (k > 0) {
      env_obs(em, ed, obs);
      s_push_obs(S, obs);
    }
    const int remaining = rt.qstart + H - k, d = s_delay_steps(S);
    if (!pol_client_inflight(S->link) && !rt.pending && remaining <= d + lead) {
      rt.req_step = k;
      S->rtc_delay = d;
      S->rtc_index = k - rt.qstart;
      s_build_infer(S, S->join == S_JOIN_RTC);
      if (pol_client_send(S->link, err, errsz)) return -1;
    }
    /* a reply is due by this step's deadline */
    int prc = (pol_client_inflight(S->link) || rt.pending) ? s_rt_pump(S, &rt, t0 + k * dt + budget, k, 1, err, errsz) : 0;
    if (prc) return prc;
    const int idx = k - rt.qstart;
    if (idx >= 0 && idx < H) memcpy(rt.last, S->chunk + (size_t)idx * A, sizeof(double) * (size_t)A);
    else S->held++;
    if (S->tr) pol_rollout_traj_pre(S->tr, em, ed);
    const int src = env_step(em, ed, rt.last, err, errsz);
    if (src == ENV_UNSTABLE) {
      *unstable = 1; /* err says why */
      return 0;
    }
    if (src) return -1; /* a non-finite action from the controller */
    if (S->tr) pol_rollout_traj_post(S->tr, em, ed, rt.last);
    pol_rollout_track(em, ed, r);
    if ((prc = s_rt_pump(S, &rt, t0 + (k + 1) * dt, k + 1, 0, err, errsz))) return prc;
  }
  /* a reply still in flight belongs to this episode: wait it out (its
   * actions are for steps after the end, so none counts as late; a refusal
   * then does not change the episode) */
  while (pol_client_inflight(S->link)) {
    const int wrc = s_rt_pump(S, &rt, cli_now() + 0.01, -1, 1, err, errsz);
    if (wrc == POL_CLIENT_REFUSED) break;
    if (wrc) return wrc;
  }
  rt.pending = 0;
  return 0;
}

int cmd_sim(int argc, char **argv) {
  for (int i = 1; i < argc; i++) /* the user's own model: another command behind the same name */
    if (!strcmp(argv[i], "--model") || !strncmp(argv[i], "--model=", 8)) return cmd_sim_model(argc, argv);
  const char *envname = NULL, *connect = "tcp://127.0.0.1:5555", *mode = "lockstep", *join = "replace";
  int episodes = 10, seed = 100000, json = 0, timeout_ms = 1000, retries = 3, lead = 1, rtc = 0, horizon = 0;
  double budget_ms = -1, delay_ms = 0;
  static const char *const modes[] = {"lockstep", "realtime", NULL};
  static const char *const joins[] = {"replace", "blend", "rtc", NULL};
  video_opts vo;
  video_opts_default(&vo);
  const char *curve_server = NULL, *curve_secret = NULL;
  cli_opt opts[] = {
      {"--env", CLI_STR, &envname, "task (default: the one the controller's policy was trained on)", NULL, 0, 0},
      {"--connect", CLI_STR, &connect, "the controller's ZeroMQ endpoint (lfp serve)", NULL, 0, 0},
      {"--episodes", CLI_INT, &episodes, "rollouts", NULL, 1, 1000000},
      {"--seed", CLI_INT, &seed, "seed of the first episode (100000.. are the evaluation seeds)", NULL, 0, 2147483647},
      {"--mode", CLI_CHOICE, &mode, "lockstep (waits for each chunk) or realtime (wall clock at the control rate)", modes, 0, 0},
      {"--timeout-ms", CLI_INT, &timeout_ms, "a request unanswered this long is retried on a fresh socket", NULL, 1, 3600000},
      {"--retries", CLI_INT, &retries, "retries before the controller is declared dead", NULL, 0, 100},
      {"--lead", CLI_INT, &lead, "realtime: request the next chunk when d + this many actions are left (d: the steps a "
                                 "reply takes to become usable, from the measured round trips and --delay-ms; at least 1)",
       NULL, 0, 64},
      {"--budget-ms", CLI_DOUBLE, &budget_ms, "realtime: a reply is due this long after its step's tick (-1: half a control period)",
       NULL, 0, 0},
      {"--delay-ms", CLI_DOUBLE, &delay_ms, "realtime: a reply becomes usable only this long after it arrives (a slow "
                                            "network or model)", NULL, 0, 60000},
      {"--join", CLI_CHOICE, &join, "realtime: how a fresh chunk joins the one executing: replace, blend (0.3 old + 0.7 new "
                                    "over the overlap) or rtc (real-time chunking on the node)", joins, 0, 0},
      {"--rtc", CLI_FLAG, &rtc, "realtime: --join rtc", NULL, 0, 0},
      VIDEO_CLI_OPTS(vo),
      {"--curve-server", CLI_STR, &curve_server, "CURVE: the node's public key (its .pub file); needs --curve-secret", NULL,
       0, 0},
      {"--curve-secret", CLI_STR, &curve_secret, "CURVE: this client's secret key (lfp keygen's .key, mode 0600)", NULL, 0,
       0},
      {"--horizon", CLI_INT, &horizon, "actions per reply, up to the policy's Tp (0: its Ta); more than Ta keeps "
                                       "actions to execute while a late reply is on its way (protocol 3)", NULL, 0, S_MAX_H},
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("sim", "lfp sim [--env NAME] [--connect tcp://127.0.0.1:5555] [--episodes 10] [--seed 100000] "
                            "[--mode lockstep|realtime] [--json]\n"
                            "       lfp sim --model SCENE.xml --map MAP.json (--policy P.lfp | --connect EP) ...: your own "
                            "MuJoCo model (lfp sim --model SCENE.xml --help)",
                     argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  const int realtime = !strcmp(mode, "realtime");
  if (rtc) join = "rtc";
  char err[512];
  s_sim *S = fc_calloc(1, sizeof(*S));
  S->join = !strcmp(join, "blend") ? S_JOIN_BLEND : !strcmp(join, "rtc") ? S_JOIN_RTC : S_JOIN_REPLACE;
  S->delay = delay_ms * 1e-3;
  if (!realtime && (S->join != S_JOIN_REPLACE || delay_ms > 0)) {
    cli_error("sim", "--join, --rtc and --delay-ms belong to --mode realtime");
    free(S);
    return 2;
  }
  env_model *em = NULL;
  env_data *ed = NULL;
  pol_rollout_result *res = NULL;
  pol_rollout_traj *trajs = NULL;
  video_episode *eps = NULL;
  video_result vr = {0};
  int status = 1, refused = 0;
  if (!curve_server != !curve_secret) {
    cli_error("sim", "%s needs %s", curve_server ? "--curve-server" : "--curve-secret",
              curve_server ? "--curve-secret KEY" : "--curve-server PUB");
    free(S);
    return 2;
  }
  if (!(S->link = pol_client_new(NULL, connect, timeout_ms, retries, NULL, err, sizeof(err))) ||
      (curve_server && pol_client_secure(S->link, curve_server, curve_secret, err, sizeof(err))) ||
      pol_client_get_info(S->link, &S->info, err, sizeof(err)))
    goto fail;
  S->H = horizon ? horizon : (int)S->info.Ta;
  if (horizon > S->info.Tp) {
    fc_set_err(err, sizeof(err), "--horizon %d is more than the %lld actions the controller's policy predicts (Tp)", horizon,
               (long long)S->info.Tp);
    goto fail;
  }
  if (S->H != S->info.Ta && S->info.protocol < 3) {
    fc_set_err(err, sizeof(err), "the controller speaks protocol %d, which has no horizon field: leave --horizon out",
               S->info.protocol);
    goto fail;
  }
  if (S->join == S_JOIN_RTC && S->info.protocol < 2) {
    fc_set_err(err, sizeof(err), "the controller speaks protocol %d, which has no real-time chunking (rtc_delay, rtc_index): "
               "use --join replace or blend", S->info.protocol);
    goto fail;
  }
  em = envname ? env_model_new(envname, err, sizeof(err)) : env_model_from_args(S->info.env_args, err, sizeof(err));
  if (!em) goto fail;
  S->em = em;
  S->O = env_obs_dim(em);
  S->A = env_action_dim(em);
  if (s_check_env(S, err, sizeof(err))) goto fail;
  if (!(S->info.control_hz > 0)) {
    fc_set_err(err, sizeof(err), "the controller reports no control rate");
    goto fail;
  }
  const double budget = budget_ms >= 0 ? budget_ms * 1e-3 : 0.5 / S->info.control_hz;
  ed = env_data_new(em);
  res = fc_calloc((size_t)episodes, sizeof(pol_rollout_result));
  if (vo.dir) trajs = fc_calloc((size_t)episodes, sizeof(pol_rollout_traj));
  S->caprtt = (long)episodes * (env_horizon(em) + 2);
  S->rtt = fc_malloc(sizeof(double) * (size_t)S->caprtt);
  S->sample = fc_malloc(sizeof(double) * (size_t)S->caprtt);
  const double t0 = cli_now();
  for (int i = 0; i < episodes; i++) {
    const uint64_t s = (uint64_t)seed + (uint64_t)i;
    env_reset(em, ed, s);
    if (trajs) {
      pol_rollout_traj_alloc(&trajs[i], em);
      S->tr = &trajs[i];
    }
    if (s_episode_reset(S, s, err, sizeof(err))) {
      const size_t len = strlen(err);
      snprintf(err + len, sizeof(err) - len, "; episode %d (seed %llu) not started", i, (unsigned long long)s);
      goto fail;
    }
    pol_rollout_begin(em, ed, &res[i]);
    int unstable = 0;
    const int erc = realtime ? s_episode_realtime(S, ed, &res[i], &unstable, lead, budget, err, sizeof(err))
                             : s_episode_lockstep(S, ed, &res[i], &unstable, err, sizeof(err));
    if (erc == POL_CLIENT_REFUSED) {
      /* the policy refused to act (a non-finite chunk): a failed episode, as
       * lfp eval counts it; the run goes on */
      if (!refused++) fprintf(stderr, "lfp sim: episode %d (seed %llu) refused at step %d: %s\n", i, (unsigned long long)s,
                              env_steps(ed), err);
      pol_rollout_end(em, ed, &res[i], 0);
      continue;
    }
    if (erc) {
      const size_t len = strlen(err);
      snprintf(err + len, sizeof(err) - len, "; episode %d (seed %llu) stopped at step %d", i, (unsigned long long)s,
               env_steps(ed));
      goto fail;
    }
    if (unstable) pol_rollout_warn(stderr, "sim", i, s, err);
    pol_rollout_end(em, ed, &res[i], unstable);
  }
  const double secs = cli_now() - t0;
  pol_rollout_stats rs;
  pol_rollout_summarize(res, episodes, &rs);
  fc_sort(S->rtt, (int)S->nrtt);
  fc_sort(S->sample, (int)S->nrtt);
  const double r50 = fc_quantile(S->rtt, (int)S->nrtt, 0.5), r99 = fc_quantile(S->rtt, (int)S->nrtt, 0.99);
  const double s50 = fc_quantile(S->sample, (int)S->nrtt, 0.5), s99 = fc_quantile(S->sample, (int)S->nrtt, 0.99);
  printf("lfp sim: %s on %s via %s, %s, %d episodes (seeds %d..%d), %s (NFE %lld)\n", S->info.policy, env_name(em), connect,
         mode, episodes, seed, seed + episodes - 1, S->info.method, (long long)S->info.nfe);
  pol_rollout_print(stdout, em, &rs);
  printf("  round trip p50 %.0f us, p99 %.0f us; sampling p50 %.0f us (%ld chunks); %ld late actions, %ld steps held; "
         "%ld action values clipped; %.1f s\n",
         r50, r99, s50, S->nrtt, S->late, S->held, S->clipped_total, secs);
  if (refused) printf("  %d episodes refused by the policy (a diverged or non-finite chunk: failures, as lfp eval counts them)\n", refused);
  const double seam = S->seams ? S->seam_sum / S->seams : NAN;
  if (realtime)
    printf("  join %s, delay %.0f ms: seam jump mean %.4f over %ld seams\n", join, delay_ms, seam, S->seams);
  if (S->join == S_JOIN_RTC) printf("  %ld chunks made by real-time chunking on the node\n", S->rtc_guided);
  if (trajs) {
    eps = fc_calloc((size_t)episodes, sizeof(*eps));
    for (int i = 0; i < episodes; i++) video_episode_from_traj(&eps[i], &trajs[i], &res[i], (uint64_t)seed + (uint64_t)i);
    char why[480];
    if (video_render(&vo, em, eps, episodes, &vr, why, sizeof(why))) {
      snprintf(err, sizeof(err), "--video: %s", why);
      goto fail;
    }
    video_print(stdout, vo.dir, &vr);
  }
  if (json) {
    cli_json_stdout();
    const pol_rollout_run run = {S->info.policy, S->info.method, seed, (int)S->info.nfe, S->clipped_total, s50, s99};
    pol_rollout_json_open(stdout, em, &run, &rs);
    printf(", \"mode\": \"%s\", \"rtt_us_p50\": ", mode);
    fc_json_num(stdout, r50);
    printf(", \"rtt_us_p99\": ");
    fc_json_num(stdout, r99);
    printf(", \"late_actions\": %ld, \"held_steps\": %ld, \"horizon\": %d, \"join\": \"%s\", \"delay_ms\": ", S->late,
           S->held, S->H, join);
    fc_json_num(stdout, delay_ms);
    printf(", \"seam_jump_mean\": ");
    fc_json_num(stdout, seam);
    printf(", \"seams\": %ld, \"rtc_chunks\": %ld, \"refused\": %d", S->seams, S->rtc_guided, refused);
    video_json_hist(stdout, "latency_us_hist", S->sample, S->nrtt, 40);
    video_json_hist(stdout, "rtt_us_hist", S->rtt, S->nrtt, 40);
    if (eps) {
      video_json_traces(stdout, em, eps, episodes);
      video_json(stdout, &vr);
    }
    pol_rollout_json_close(stdout, secs);
  }
  status = 0;
fail:
  if (status) cli_error("sim", "%s", err);
  video_result_free(&vr);
  free(eps);
  for (int i = 0; trajs && i < episodes; i++) pol_rollout_traj_free(&trajs[i]);
  free(trajs);
  free(res);
  free(S->rtt);
  free(S->sample);
  env_data_free(ed);
  env_model_free(em);
  pol_client_free(S->link);
  free(S);
  return status;
}
