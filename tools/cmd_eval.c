/* lfp eval: closed-loop rollouts of a policy in MuJoCo, in-process. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "env.h"
#include "fc_base.h"
#include "pol.h"
#include "rollout.h"

typedef struct {
  const env_model *em;
  const pol_policy *p;
  fc_sampler sampler;
  int steps, episodes;
  uint64_t seed;
  atomic_int next;
  rollout_result *res;
  double *lat;        /* chunk latencies, us */
  atomic_long nlat;
  long maxlat;
  atomic_long clipped;
  atomic_int refused; /* episodes stopped because the policy refused an observation or a
                         chunk (non-finite): never executed, the episode ends failed */
  pthread_mutex_t mu;  /* guards fail and first_refusal */
  char fail[640];      /* the first error that ends the run ("" while none) */
  char first_refusal[640]; /* with its episode and step */
} s_eval;

static void *s_worker(void *arg) {
  s_eval *ev = arg;
  env_data *ed = env_data_new(ev->em);
  pol_data *pd = pol_data_new(ev->p, 0);
  pd->sampler = ev->sampler;
  pd->steps = ev->steps;
  double obs[256], act[POL_MAX_ACTION];
  char err[512];
  for (;;) {
    int i = atomic_fetch_add(&ev->next, 1);
    if (i >= ev->episodes) break;
    rollout_result *r = &ev->res[i];
    env_reset(ev->em, ed, ev->seed + (uint64_t)i);
    pol_reset(pd, ev->seed + (uint64_t)i);
    int64_t clip0 = pd->clipped;
    int unstable = 0;
    rollout_begin(ev->em, ed, r);
    while (!env_done(ev->em, ed)) {
      env_obs(ev->em, ed, obs);
      int sampling = pd->qpos >= pd->qlen;
      double t0 = cli_now();
      if (pol_act(ev->p, pd, obs, act, err, sizeof(err))) {
        pthread_mutex_lock(&ev->mu);
        if (!ev->first_refusal[0])
          snprintf(ev->first_refusal, sizeof(ev->first_refusal), "episode with seed %llu stopped at step %d: %s",
                   (unsigned long long)(ev->seed + (uint64_t)i), env_steps(ed), err);
        pthread_mutex_unlock(&ev->mu);
        atomic_fetch_add(&ev->refused, 1);
        break;
      }
      if (sampling) {
        long k = atomic_fetch_add(&ev->nlat, 1);
        if (k < ev->maxlat) ev->lat[k] = (cli_now() - t0) * 1e6;
      }
      const int src = env_step(ev->em, ed, act, err, sizeof(err));
      if (src == ENV_UNSTABLE) {
        rollout_warn(stderr, "eval", i, ev->seed + (uint64_t)i, err);
        unstable = 1;
        break;
      }
      if (src) { /* a non-finite action: never a command; the run ends with it */
        pthread_mutex_lock(&ev->mu);
        if (!ev->fail[0])
          snprintf(ev->fail, sizeof(ev->fail), "episode %d (seed %llu): %s", i,
                   (unsigned long long)(ev->seed + (uint64_t)i), err);
        pthread_mutex_unlock(&ev->mu);
        atomic_store(&ev->next, ev->episodes);
        break;
      }
      rollout_track(ev->em, ed, r);
    }
    rollout_end(ev->em, ed, r, unstable);
    atomic_fetch_add(&ev->clipped, (long)(pd->clipped - clip0));
  }
  pol_data_free(pd);
  env_data_free(ed);
  return NULL;
}

int cmd_eval(int argc, char **argv) {
  const char *path = NULL, *envname = NULL, *sampler = NULL;
  int episodes = 50, seed = 100000, jobs = (int)sysconf(_SC_NPROCESSORS_ONLN), json = 0, steps = 0;
  static const char *const samplers[] = {"euler", "heun", "rk4", NULL};
  cli_opt opts[] = {
      {"--policy", CLI_STR, &path, "policy file (from lfp train)", NULL, 0, 0},
      {"--env", CLI_STR, &envname, "task (default: the one the policy was trained on)", NULL, 0, 0},
      {"--episodes", CLI_INT, &episodes, "rollouts", NULL, 1, 1000000},
      {"--seed", CLI_INT, &seed, "seed of the first episode (100000.. are the evaluation seeds)", NULL, 0, 2147483647},
      {"--jobs", CLI_INT, &jobs, "parallel rollouts (results do not depend on it)", NULL, 1, 256},
      {"--sampler", CLI_CHOICE, &sampler, "override the trained ODE sampler", samplers, 0, 0},
      {"--ode-steps", CLI_INT, &steps, "override the steps per block", NULL, 0, 10000},
      {"--json", CLI_FLAG, &json, "print one JSON object as the last line", NULL, 0, 0},
  };
  int rc = cli_parse("eval", "lfp eval --policy POLICY.lfp [--env NAME] [--episodes 50] [--seed 100000] [--jobs J] [--json]",
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
  const char *keys[ENV_MAX_KEYS];
  int dims[ENV_MAX_KEYS];
  for (int k = 0; k < env_nkeys(em); k++) {
    keys[k] = env_keys(em)[k].name;
    dims[k] = env_keys(em)[k].dim;
  }
  if (pol_check_keys(p, keys, dims, env_nkeys(em), err, sizeof(err)) || env_action_dim(em) != p->meta.action_dim) {
    if (env_action_dim(em) != p->meta.action_dim)
      snprintf(err, sizeof(err), "task %s takes %d-D actions but the policy makes %d", env_name(em), env_action_dim(em),
               p->meta.action_dim);
    cli_error("eval", "%s does not fit task %s: %s", path, env_name(em), err);
    env_model_free(em);
    pol_free(p);
    return 1;
  }

  s_eval ev;
  memset(&ev, 0, sizeof(ev));
  ev.em = em;
  ev.p = p;
  ev.sampler = sampler ? (fc_sampler)fc_sampler_parse(sampler) : p->flow->cfg.sampler;
  ev.steps = steps > 0 ? steps : p->flow->cfg.steps;
  ev.episodes = episodes;
  ev.seed = (uint64_t)seed;
  pthread_mutex_init(&ev.mu, NULL);
  ev.res = fc_calloc((size_t)episodes, sizeof(rollout_result));
  ev.maxlat = (long)episodes * (env_horizon(em) / p->meta.Ta + 2);
  ev.lat = fc_malloc(sizeof(double) * (size_t)ev.maxlat);
  if (jobs > episodes) jobs = episodes;
  pthread_t *th = fc_calloc((size_t)jobs, sizeof(pthread_t));
  double t0 = cli_now();
  for (int j = 0; j < jobs; j++) pthread_create(&th[j], NULL, s_worker, &ev);
  for (int j = 0; j < jobs; j++) pthread_join(th[j], NULL);
  double secs = cli_now() - t0;
  pthread_mutex_destroy(&ev.mu);
  if (ev.fail[0]) {
    cli_error("eval", "%s: %s", path, ev.fail);
    free(th);
    free(ev.res);
    free(ev.lat);
    env_model_free(em);
    pol_free(p);
    return 1;
  }
  const int refused = atomic_load(&ev.refused);
  if (refused)
    cli_error("eval", "warning: %s: %d episode%s stopped because the policy refused to act (counted as failures); the first: "
              "%s", path, refused, refused == 1 ? "" : "s", ev.first_refusal);

  rollout_stats rs;
  rollout_summarize(ev.res, episodes, &rs);
  long nl = atomic_load(&ev.nlat) < ev.maxlat ? atomic_load(&ev.nlat) : ev.maxlat;
  cli_sort(ev.lat, (int)nl);
  double p50 = cli_quantile(ev.lat, (int)nl, 0.50), p99 = cli_quantile(ev.lat, (int)nl, 0.99);
  const int nfe = pol_nfe(p, ev.sampler, ev.steps);

  char desc[128];
  fc_net_describe(&p->flow->cfg.net, desc, sizeof(desc));
  printf("lfp eval: %s on %s, %d episodes (seeds %d..%d), %s (%d block(s) of %s) %s x %d steps per block (NFE %d)\n",
         path, env_name(em), episodes, seed, seed + episodes - 1, pol_method_name((pol_method)p->meta.method),
         p->flow->cfg.nblocks, desc, fc_sampler_name(ev.sampler), ev.steps, nfe);
  rollout_print(stdout, em, &rs);
  cli_print_bounds(stdout, p->meta.action_low, p->meta.action_high, p->meta.action_dim, 0);
  printf("  chunk latency p50 %.0f us, p99 %.0f us (%ld chunks); %ld action values clipped; %d episodes refused by the "
         "policy; %.1f s on %d threads\n",
         p50, p99, nl, atomic_load(&ev.clipped), refused, secs, jobs);
  if (json) {
    const rollout_run run = {path, pol_method_name((pol_method)p->meta.method), seed, nfe, atomic_load(&ev.clipped), p50, p99};
    rollout_json_open(stdout, em, &run, &rs);
    cli_print_bounds(stdout, p->meta.action_low, p->meta.action_high, p->meta.action_dim, 1);
    printf(", \"refused\": %d, \"net\": \"%s\", \"net_desc\": ", refused, fc_net_kind_name(p->flow->cfg.net.kind));
    cli_json_str(stdout, desc);
    rollout_json_close(stdout, secs);
  }
  free(th);
  free(ev.res);
  free(ev.lat);
  env_model_free(em);
  pol_free(p);
  return 0;
}
