/* lfp eval: closed-loop rollouts of a policy in MuJoCo, in-process. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"
#include "commands.h"
#include "env.h"
#include "ds_writer.h"
#include "fc_base.h"
#include "pol.h"
#include "pol_rollout.h"
#include "video.h"

/* --record: the episodes as demos demo_0.. in seed order (an episode the
 * policy refused to start has no steps and is left out; the warning about
 * refusals names its seed) */
static int s_record(const char *path, const env_model *em, const pol_rollout_eval *ev, int episodes, char *err,
                    size_t errsz) {
  ds_writer *w = ds_writer_create(path, env_args_json(em), err, errsz);
  if (!w) return -1;
  int *ok = fc_malloc(sizeof(int) * (size_t)episodes), *bad = fc_malloc(sizeof(int) * (size_t)episodes);
  int nok = 0, nbad = 0, rc = 0;
  for (int i = 0; i < episodes && !rc; i++) {
    if (ev->traj[i].len == 0) continue;
    const int idx = ds_writer_count(w);
    rc = pol_rollout_traj_write(w, em, &ev->traj[i], err, errsz);
    if (ev->res[i].success) ok[nok++] = idx;
    else bad[nbad++] = idx;
  }
  if (!rc && (ds_writer_set_mask(w, "success", ok, nok, err, errsz) || ds_writer_set_mask(w, "failure", bad, nbad, err, errsz)))
    rc = -1;
  free(ok);
  free(bad);
  if (ds_writer_close(w, rc ? NULL : err, errsz)) rc = -1;
  return rc;
}

/* ---- under mpirun: each rank ran a contiguous slice of the episodes; rank 0
 * gathers them, in seed order, into what one process would have measured ---- */

typedef struct {
  int64_t n, chunks, clipped, obs_clipped, state_clamped, refused, has_traj, nfe;
  double seconds;
  char first_refusal[640];
} s_part;

static void s_put(unsigned char **p, const void *src, size_t n) {
  memcpy(*p, src, n);
  *p += n;
}

/* 0; the other ranks' results are in ev on rank 0 (episodes of them in all) */
static int s_gather(pol_rollout_eval *ev, const env_model *em, int mine, int episodes, char *err, size_t errsz) {
  s_part h = {mine, ev->chunks, ev->clipped, ev->obs_clipped, ev->state_clamped, ev->refused, ev->traj != NULL, ev->nfe,
              ev->seconds, ""};
  snprintf(h.first_refusal, sizeof(h.first_refusal), "%s", ev->first_refusal);
  size_t n = sizeof(h) + sizeof(pol_rollout_result) * (size_t)mine + sizeof(double) * (size_t)ev->chunks;
  for (int i = 0; ev->traj && i < mine; i++) n += pol_rollout_traj_bytes(&ev->traj[i], em);
  unsigned char *buf = fc_malloc(n), *p = buf;
  s_put(&p, &h, sizeof(h));
  s_put(&p, ev->res, sizeof(pol_rollout_result) * (size_t)mine);
  s_put(&p, ev->latency_us, sizeof(double) * (size_t)ev->chunks);
  for (int i = 0; ev->traj && i < mine; i++) {
    pol_rollout_traj_pack(&ev->traj[i], em, p);
    p += pol_rollout_traj_bytes(&ev->traj[i], em);
  }
  void *all;
  size_t total;
  dist_gather(buf, n, &all, &total);
  free(buf);
  if (dist_rank() != 0) return 0;
  /* rank 0: the whole run */
  const int had_traj = ev->traj != NULL;
  pol_rollout_eval_free(ev, mine);
  pol_rollout_eval out;
  memset(&out, 0, sizeof(out));
  out.res = fc_calloc((size_t)episodes, sizeof(pol_rollout_result));
  if (had_traj) out.traj = fc_calloc((size_t)episodes, sizeof(pol_rollout_traj));
  const unsigned char *q = all, *end = (const unsigned char *)all + total;
  int at = 0, rc = 0;
  long lat_cap = 0;
  for (int r = 0; r < dist_size() && !rc; r++) {
    s_part ph;
    if ((size_t)(end - q) < sizeof(ph)) {
      rc = -1;
      break;
    }
    memcpy(&ph, q, sizeof(ph));
    q += sizeof(ph);
    if (at + ph.n > episodes || (size_t)(end - q) < sizeof(pol_rollout_result) * ph.n + sizeof(double) * ph.chunks) {
      rc = -1;
      break;
    }
    memcpy(out.res + at, q, sizeof(pol_rollout_result) * ph.n);
    q += sizeof(pol_rollout_result) * ph.n;
    if (out.chunks + ph.chunks > lat_cap) out.latency_us = fc_realloc(out.latency_us, sizeof(double) * (size_t)(lat_cap = 2 * (out.chunks + ph.chunks) + 1));
    memcpy(out.latency_us + out.chunks, q, sizeof(double) * ph.chunks);
    q += sizeof(double) * ph.chunks;
    for (int i = 0; ph.has_traj && i < ph.n && !rc; i++) {
      const size_t used = pol_rollout_traj_unpack(&out.traj[at + i], em, q, (size_t)(end - q));
      if (!used) rc = -1;
      q += used;
    }
    out.chunks += ph.chunks;
    out.clipped += ph.clipped;
    out.obs_clipped += ph.obs_clipped;
    out.state_clamped += ph.state_clamped;
    out.refused += (int)ph.refused;
    if (!out.first_refusal[0]) snprintf(out.first_refusal, sizeof(out.first_refusal), "%s", ph.first_refusal);
    out.seconds = ph.seconds > out.seconds ? ph.seconds : out.seconds;
    out.nfe = (int)ph.nfe;
    at += (int)ph.n;
  }
  free(all);
  if (rc || at != episodes) {
    pol_rollout_eval_free(&out, episodes);
    return fc_set_err(err, errsz, "the ranks' episodes did not add up (%d of %d)", at, episodes), -1;
  }
  fc_sort(out.latency_us, (int)out.chunks);
  out.latency_us_p50 = fc_quantile(out.latency_us, (int)out.chunks, 0.50);
  out.latency_us_p99 = fc_quantile(out.latency_us, (int)out.chunks, 0.99);
  pol_rollout_summarize(out.res, episodes, &out.stats);
  *ev = out;
  return 0;
}

int cmd_eval(int argc, char **argv) {
  const char *path = NULL, *envname = NULL, *sampler = NULL, *record = NULL;
  int episodes = 50, seed = 100000, jobs = (int)sysconf(_SC_NPROCESSORS_ONLN), json = 0, steps = 0;
  static const char *const samplers[] = {"euler", "heun", "rk4", NULL};
  video_opts vo;
  video_opts_default(&vo);
  cli_opt opts[] = {
      {"--policy", CLI_STR, &path, "policy file (from lfp train)", NULL, 0, 0},
      {"--env", CLI_STR, &envname, "task (default: the one the policy was trained on)", NULL, 0, 0},
      {"--episodes", CLI_INT, &episodes, "rollouts", NULL, 1, 1000000},
      {"--seed", CLI_INT, &seed, "seed of the first episode (100000.. are the evaluation seeds)", NULL, 0, 2147483647},
      {"--jobs", CLI_INT, &jobs, "parallel rollouts (results do not depend on it)", NULL, 1, 256},
      {"--sampler", CLI_CHOICE, &sampler, "override the trained ODE sampler", samplers, 0, 0},
      {"--ode-steps", CLI_INT, &steps, "override the steps per block", NULL, 0, 10000},
      {"--record", CLI_STR, &record, "write the episodes to this HDF5 file as Robomimic-style demos (states, obs, "
                                     "actions, rewards; masks success / failure), in seed order", NULL, 0, 0},
      VIDEO_CLI_OPTS(vo),
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("eval", "lfp eval --policy POLICY.lfp [--env NAME] [--episodes 50] [--seed 100000] [--jobs J] [--video DIR] [--json]",
                     argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  if (!path) {
    cli_error("eval", "--policy POLICY.lfp is required");
    return 2;
  }
  char err[512];
  pol_policy *p = pol_load(path, err, sizeof(err));
  if (!p) {
    cli_error("eval", "%s", err);
    return 1;
  }
  env_model *em = envname ? env_model_new(envname, err, sizeof(err)) : env_model_from_args(p->meta.env_args, err, sizeof(err));
  if (!em) {
    cli_error("eval", "%s", err);
    pol_free(p);
    return 1;
  }
  const fc_sampler smp = sampler ? (fc_sampler)fc_sampler_parse(sampler) : p->flow->cfg.sampler;
  const int nsteps = steps > 0 ? steps : p->flow->cfg.steps;
  pol_rollout_eval ev;
  /* under mpirun: this rank's slice of the episodes (dist.h); rank 0 gathers */
  int first = 0, mine = episodes;
  dist_split(episodes, &first, &mine);
  const int rrc = mine == 0 ? (memset(&ev, 0, sizeof(ev)), 0)
                            : pol_rollout_policy("eval", em, p, smp, nsteps, (uint64_t)seed + (uint64_t)first, mine, jobs,
                                                 record != NULL || vo.dir != NULL || json, &ev, err, sizeof(err));
  if (rrc) {
    if (rrc == POL_ROLLOUT_MISFIT)
      cli_error("eval", "%s does not fit task %s: %s", path, env_name(em), err);
    else
      cli_error("eval", "%s: %s", path, err);
    env_model_free(em);
    pol_free(p);
    return 1;
  }
  if (dist_size() > 1) {
    if (s_gather(&ev, em, mine, episodes, err, sizeof(err))) {
      cli_error("eval", "%s", err);
      env_model_free(em);
      pol_free(p);
      return 1;
    }
    if (dist_rank() != 0) { /* rank 0 reports and writes */
      env_model_free(em);
      pol_free(p);
      return 0;
    }
  }
  if (ev.refused)
    cli_error("eval", "warning: %s: %d episode%s stopped because the policy refused to act (counted as failures); the first: "
              "%s", path, ev.refused, ev.refused == 1 ? "" : "s", ev.first_refusal);
  const pol_rollout_stats rs = ev.stats;
  const double p50 = ev.latency_us_p50, p99 = ev.latency_us_p99, secs = ev.seconds;
  const int nfe = ev.nfe, refused = ev.refused;
  if (jobs > episodes) jobs = episodes;

  char desc[256];
  pol_describe(p, desc, sizeof(desc));
  printf("lfp eval: %s on %s, %d episodes (seeds %d..%d), %s (%d block(s) of %s) %s x %d steps per block (NFE %d)\n",
         path, env_name(em), episodes, seed, seed + episodes - 1, pol_method_name((pol_method)p->meta.method),
         p->flow->cfg.nblocks, desc, fc_sampler_name(smp), nsteps, nfe);
  if (p->distill.present)
    printf("  distilled from %s (NFE %d with %s x %d per block) in %lld steps, %s%lld teacher pairs per block\n",
           p->distill.teacher, (int)p->distill.teacher_nfe, fc_sampler_name((fc_sampler)p->distill.teacher_sampler),
           (int)p->distill.teacher_steps, (long long)p->distill.steps, p->distill.pairs ? "a pool of " : "fresh ",
           (long long)(p->distill.pairs ? p->distill.pairs : p->distill.batch));
  pol_rollout_print(stdout, em, &rs);
  cli_print_bounds(stdout, p->meta.action_low, p->meta.action_high, p->meta.action_dim, 0);
  printf("  chunk latency p50 %.0f us, p99 %.0f us (%ld chunks); %ld action values clipped, %ld observation values "
         "(beyond +-%g once normalized), %ld sampler state values (beyond +-%g); %d episodes refused by the "
         "policy; %.1f s on %d threads\n",
         p50, p99, ev.chunks, ev.clipped, ev.obs_clipped, (double)POL_OBS_CLIP, ev.state_clamped,
         (double)POL_STATE_BOUND, refused, secs, jobs);
  int status = 0;
  if (record && s_record(record, em, &ev, episodes, err, sizeof(err))) {
    cli_error("eval", "--record: %s", err);
    status = 1;
  } else if (record) {
    printf("  recorded the episodes to %s\n", record);
  }
  /* the trajectories as episodes to draw and to trace */
  video_episode *eps = NULL;
  if (ev.traj) {
    eps = fc_calloc((size_t)episodes, sizeof(*eps));
    for (int i = 0; i < episodes; i++) video_episode_from_traj(&eps[i], &ev.traj[i], &ev.res[i], (uint64_t)seed + (uint64_t)i);
  }
  video_result vr = {0};
  if (!status && vo.dir) {
    if (video_render(&vo, em, eps, episodes, &vr, err, sizeof(err))) {
      cli_error("eval", "--video: %s", err);
      status = 1;
    } else {
      video_print(stdout, vo.dir, &vr);
    }
  }
  if (json) {
    cli_json_stdout();
    const pol_rollout_run run = {path, pol_method_name((pol_method)p->meta.method), seed, nfe, ev.clipped, p50, p99};
    pol_rollout_json_open(stdout, em, &run, &rs);
    cli_print_bounds(stdout, p->meta.action_low, p->meta.action_high, p->meta.action_dim, 1);
    printf(", \"refused\": %d, \"obs_clipped\": %ld, \"state_clamped\": %ld, \"net\": \"%s\", \"latent\": %d, "
           "\"net_desc\": ", refused, ev.obs_clipped, ev.state_clamped, fc_net_kind_name(p->flow->cfg.net.kind),
           p->latent ? p->latent->cfg.dz : 0);
    fc_json_str(stdout, desc);
    if (p->distill.present) {
      printf(", \"distilled_from\": ");
      fc_json_str(stdout, p->distill.teacher);
      printf(", \"teacher_nfe\": %d", (int)p->distill.teacher_nfe);
    }
    printf(", \"sampler\": \"%s\", \"ode_steps\": %d", fc_sampler_name(smp), nsteps);
    video_json_hist(stdout, "latency_us_hist", ev.latency_us, ev.chunks, 40);
    if (eps) video_json_traces(stdout, em, eps, episodes);
    if (vo.dir && !status) video_json(stdout, &vr);
    pol_rollout_json_close(stdout, secs);
  }
  video_result_free(&vr);
  free(eps);
  pol_rollout_eval_free(&ev, episodes);
  env_model_free(em);
  pol_free(p);
  return status;
}
