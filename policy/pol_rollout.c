/* rollout: episode bookkeeping and the evaluation summary. */
#include "pol_rollout.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ds_writer.h"
#include "fc_base.h"
#include "fc_ckpt.h"

void pol_rollout_begin(const env_model *em, const env_data *ed, pol_rollout_result *r) {
  r->success = r->len = r->unstable = r->side = 0;
  r->contact_full = r->constraint_full = 0;
  r->digest = 0;
  r->score = 0.0;
  r->max_coverage = env_has_coverage(em) ? env_coverage(em, ed) : 0.0;
}

void pol_rollout_track(const env_model *em, const env_data *ed, pol_rollout_result *r) {
  if (!env_has_coverage(em)) return;
  const double cov = env_coverage(em, ed);
  r->max_coverage = cov > r->max_coverage ? cov : r->max_coverage;
}

void pol_rollout_end(const env_model *em, const env_data *ed, pol_rollout_result *r, int unstable) {
  r->unstable = unstable;
  r->success = !unstable && env_success(em, ed);
  r->len = env_steps(ed);
  r->side = env_side(em, ed);
  env_warnings w;
  env_warning_counts(ed, &w);
  r->contact_full = w.contact_full;
  r->constraint_full = w.constraint_full;
  const int sd = env_state_dim(em);
  double *state = fc_malloc(sizeof(double) * (size_t)sd);
  env_get_state(em, ed, state);
  r->digest = fc_crc32(0, state, sizeof(double) * (size_t)sd);
  const double goal = env_coverage_goal(em);
  r->score = goal > 0 ? (r->max_coverage / goal < 1.0 ? r->max_coverage / goal : 1.0) : r->success;
  free(state);
}

void pol_rollout_summarize(const pol_rollout_result *r, int n, pol_rollout_stats *s) {
  FC_ASSERT(n > 0);
  s->episodes = n;
  s->successes = s->unstable = s->left = s->right = 0;
  s->contact_full = s->constraint_full = 0;
  double len = 0, cov = 0, score = 0;
  uint32_t d = 0;
  for (int i = 0; i < n; i++) {
    s->successes += r[i].success;
    s->unstable += r[i].unstable;
    s->left += r[i].side < 0;
    s->right += r[i].side > 0;
    s->contact_full += r[i].contact_full > 0;
    s->constraint_full += r[i].constraint_full > 0;
    len += r[i].len;
    cov += r[i].max_coverage;
    score += r[i].score;
    d = fc_crc32(d, &r[i].digest, sizeof(r[i].digest));
  }
  s->digest = d;
  s->mean_len = len / n;
  s->mean_coverage = cov / n;
  s->mean_score = score / n;
  /* 95% Wilson score interval */
  const double ph = (double)s->successes / n, z = 1.959963984540054;
  const double den = 1 + z * z / n, mid = (ph + z * z / (2.0 * n)) / den;
  const double half = z * sqrt(ph * (1 - ph) / n + z * z / (4.0 * n * n)) / den;
  s->rate = ph;
  s->ci_lo = mid - half;
  s->ci_hi = mid + half;
}

void pol_rollout_warn(FILE *f, const char *cmd, int episode, uint64_t seed, const char *why) {
  fprintf(f, "lfp %s: warning: episode %d (seed %llu) ended as unstable: %s\n", cmd, episode, (unsigned long long)seed,
          why);
}

void pol_rollout_print(FILE *f, const env_model *em, const pol_rollout_stats *s) {
  fprintf(f, "  success %.1f%% (%d/%d), 95%% CI [%.1f%%, %.1f%%], mean score %.3f, mean length %.1f steps\n",
          100 * s->rate, s->successes, s->episodes, 100 * s->ci_lo, 100 * s->ci_hi, s->mean_score, s->mean_len);
  if (env_has_coverage(em)) fprintf(f, "  mean max coverage %.3f\n", s->mean_coverage);
  if (env_has_side(em))
    fprintf(f, "  sides: %d left, %d right, %d neither\n", s->left, s->right, s->episodes - s->left - s->right);
  fprintf(f, "  unstable %d episodes; MuJoCo lost contacts (CONTACTFULL) in %d, constraints (CNSTRFULL) in %d\n",
          s->unstable, s->contact_full, s->constraint_full);
}

void pol_rollout_json_open(FILE *f, const env_model *em, const pol_rollout_run *run, const pol_rollout_stats *s) {
  fprintf(f, "{\"env\": ");
  fc_json_str(f, env_name(em));
  fprintf(f, ", \"policy\": ");
  fc_json_str(f, run->policy);
  fprintf(f, ", \"method\": ");
  fc_json_str(f, run->method);
  fprintf(f, ", \"episodes\": %d, \"seed\": %d, \"success_rate\": ", s->episodes, run->seed);
  fc_json_num(f, s->rate);
  fprintf(f, ", \"ci95\": [");
  fc_json_num(f, s->ci_lo);
  fprintf(f, ", ");
  fc_json_num(f, s->ci_hi);
  fprintf(f, "], \"mean_score\": ");
  fc_json_num(f, s->mean_score);
  fprintf(f, ", \"mean_len\": ");
  fc_json_num(f, s->mean_len);
  fprintf(f, ", \"unstable\": %d, \"contact_full\": %d, \"constraint_full\": %d, \"digest\": \"%08x\"", s->unstable,
          s->contact_full, s->constraint_full, (unsigned)s->digest);
  if (env_has_coverage(em)) {
    fprintf(f, ", \"max_coverage_mean\": ");
    fc_json_num(f, s->mean_coverage);
  }
  if (env_has_side(em)) fprintf(f, ", \"left\": %d, \"right\": %d", s->left, s->right);
  fprintf(f, ", \"latency_us_p50\": ");
  fc_json_num(f, run->latency_us_p50);
  fprintf(f, ", \"latency_us_p99\": ");
  fc_json_num(f, run->latency_us_p99);
  fprintf(f, ", \"nfe\": %d, \"clipped\": %ld", run->nfe, run->clipped);
}

void pol_rollout_json_close(FILE *f, double secs) {
  fprintf(f, ", \"seconds\": ");
  fc_json_num(f, secs);
  fprintf(f, "}\n");
}

/* ---------- trajectories ---------- */

void pol_rollout_traj_alloc(pol_rollout_traj *tr, const env_model *em) {
  const size_t H = (size_t)env_horizon(em), O = (size_t)env_obs_dim(em), A = (size_t)env_action_dim(em),
               S = (size_t)env_state_dim(em);
  tr->len = 0;
  tr->obs = fc_malloc(sizeof(double) * H * O);
  tr->next_obs = fc_malloc(sizeof(double) * H * O);
  tr->actions = fc_malloc(sizeof(double) * H * A);
  tr->rewards = fc_malloc(sizeof(double) * H);
  tr->states = fc_malloc(sizeof(double) * H * S);
  tr->dones = fc_malloc(sizeof(int64_t) * H);
  tr->final_state = fc_malloc(sizeof(double) * S);
}

void pol_rollout_traj_free(pol_rollout_traj *tr) {
  free(tr->obs); free(tr->next_obs); free(tr->actions); free(tr->rewards); free(tr->states); free(tr->dones);
  free(tr->final_state);
  memset(tr, 0, sizeof(*tr));
}

void pol_rollout_traj_pre(pol_rollout_traj *tr, const env_model *em, const env_data *ed) {
  FC_ASSERT(tr->len < env_horizon(em));
  env_get_state(em, ed, tr->states + tr->len * env_state_dim(em));
  env_obs(em, ed, tr->obs + tr->len * env_obs_dim(em));
}

void pol_rollout_traj_post(pol_rollout_traj *tr, const env_model *em, const env_data *ed, const double *action) {
  const int64_t t = tr->len;
  memcpy(tr->actions + t * env_action_dim(em), action, sizeof(double) * (size_t)env_action_dim(em));
  env_obs(em, ed, tr->next_obs + t * env_obs_dim(em));
  tr->rewards[t] = env_reward(em, ed);
  env_get_state(em, ed, tr->final_state);
  if (t > 0) tr->dones[t - 1] = 0;
  tr->dones[t] = 1;
  tr->len = t + 1;
}

/* the arrays of a trajectory of len steps, and their sizes in doubles */
static int s_traj_arrays(const pol_rollout_traj *tr, const env_model *em, int64_t len, double **a, size_t *n) {
  const size_t L = (size_t)len, O = (size_t)env_obs_dim(em), A = (size_t)env_action_dim(em), S = (size_t)env_state_dim(em);
  a[0] = tr->obs, n[0] = L * O;
  a[1] = tr->next_obs, n[1] = L * O;
  a[2] = tr->actions, n[2] = L * A;
  a[3] = tr->rewards, n[3] = L;
  a[4] = tr->states, n[4] = L * S;
  a[5] = tr->final_state, n[5] = S;
  return 6;
}

size_t pol_rollout_traj_bytes(const pol_rollout_traj *tr, const env_model *em) {
  double *a[6];
  size_t n[6], tot = sizeof(int64_t) * (1 + (size_t)tr->len); /* len, dones */
  const int k = s_traj_arrays(tr, em, tr->len, a, n);
  for (int i = 0; i < k; i++) tot += n[i] * sizeof(double);
  return tot;
}

void pol_rollout_traj_pack(const pol_rollout_traj *tr, const env_model *em, unsigned char *out) {
  double *a[6];
  size_t n[6];
  const int k = s_traj_arrays(tr, em, tr->len, a, n);
  memcpy(out, &tr->len, sizeof(int64_t));
  out += sizeof(int64_t);
  memcpy(out, tr->dones, sizeof(int64_t) * (size_t)tr->len);
  out += sizeof(int64_t) * (size_t)tr->len;
  for (int i = 0; i < k; i++) {
    memcpy(out, a[i], n[i] * sizeof(double));
    out += n[i] * sizeof(double);
  }
}

size_t pol_rollout_traj_unpack(pol_rollout_traj *tr, const env_model *em, const unsigned char *in, size_t avail) {
  int64_t len;
  if (avail < sizeof(len)) return 0;
  memcpy(&len, in, sizeof(len));
  if (len < 0 || len > env_horizon(em)) return 0;
  pol_rollout_traj_alloc(tr, em);
  tr->len = len;
  if (pol_rollout_traj_bytes(tr, em) > avail) {
    pol_rollout_traj_free(tr);
    return 0;
  }
  double *a[6];
  size_t n[6];
  const int k = s_traj_arrays(tr, em, len, a, n);
  const unsigned char *p = in + sizeof(int64_t);
  memcpy(tr->dones, p, sizeof(int64_t) * (size_t)len);
  p += sizeof(int64_t) * (size_t)len;
  for (int i = 0; i < k; i++) {
    memcpy(a[i], p, n[i] * sizeof(double));
    p += n[i] * sizeof(double);
  }
  return (size_t)(p - in);
}

int pol_rollout_traj_write(ds_writer *w, const env_model *em, const pol_rollout_traj *tr, char *err, size_t errsz) {
  const int O = env_obs_dim(em), nk = env_nkeys(em);
  const env_key *keys = env_keys(em);
  double *kobs[ENV_MAX_KEYS], *knext[ENV_MAX_KEYS];
  ds_obs_data od[ENV_MAX_KEYS];
  FC_ASSERT(tr->len > 0);
  for (int k = 0, col = 0; k < nk; col += keys[k].dim, k++) {
    kobs[k] = fc_malloc(sizeof(double) * (size_t)tr->len * keys[k].dim);
    knext[k] = fc_malloc(sizeof(double) * (size_t)tr->len * keys[k].dim);
    for (int64_t t = 0; t < tr->len; t++)
      for (int j = 0; j < keys[k].dim; j++) {
        kobs[k][t * keys[k].dim + j] = tr->obs[t * O + col + j];
        knext[k][t * keys[k].dim + j] = tr->next_obs[t * O + col + j];
      }
    od[k] = (ds_obs_data){keys[k].name, keys[k].dim, kobs[k], knext[k]};
  }
  ds_demo_data dd = {.len = tr->len, .action_dim = env_action_dim(em), .actions = tr->actions,
                     .rewards = tr->rewards, .dones = tr->dones, .state_dim = env_state_dim(em),
                     .states = tr->states, .nobs = nk, .obs = od, .model_file = env_model_xml(em)};
  const int rc = ds_writer_add(w, &dd, err, errsz) < 0 ? -1 : 0;
  for (int k = 0; k < nk; k++) {
    free(kobs[k]);
    free(knext[k]);
  }
  return rc;
}

/* ---------- a policy's episodes, in-process ---------- */

typedef struct {
  const char *cmd;
  const env_model *em;
  const pol_policy *p;
  fc_sampler sampler;
  int steps, episodes;
  uint64_t seed;
  atomic_int next;
  pol_rollout_result *res;
  int off[POL_MAX_KEYS];  /* where the policy's keys sit in the task's observation */
  pol_rollout_traj *traj;     /* NULL, or one per episode */
  double *lat;        /* chunk latencies, us */
  atomic_long nlat;
  long maxlat;
  atomic_long clipped, obs_clipped, state_clamped;
  atomic_int refused; /* episodes stopped because the policy refused an observation or a
                         chunk (non-finite): never executed, the episode ends failed */
  pthread_mutex_t mu;  /* guards fail and first_refusal */
  char fail[640];      /* the first error that ends the run ("" while none) */
  char first_refusal[640]; /* with its episode and step */
} s_eval;

static void *s_policy_worker(void *arg) {
  s_eval *ev = arg;
  env_data *ed = env_data_new(ev->em);
  pol_data *pd = pol_data_new(ev->p, 0);
  pol_set_sampler(ev->p, pd, ev->sampler, ev->steps);
  double full[256], obs[256], act[POL_MAX_ACTION];
  char err[512];
  for (;;) {
    int i = atomic_fetch_add(&ev->next, 1);
    if (i >= ev->episodes) break;
    pol_rollout_result *r = &ev->res[i];
    env_reset(ev->em, ed, ev->seed + (uint64_t)i);
    pol_reset(pd, ev->seed + (uint64_t)i);
    const pol_counts c0 = pol_data_counts(pd);
    int unstable = 0;
    pol_rollout_begin(ev->em, ed, r);
    pol_rollout_traj *tr = ev->traj ? &ev->traj[i] : NULL;
    if (tr) pol_rollout_traj_alloc(tr, ev->em);
    while (!env_done(ev->em, ed)) {
      if (tr) pol_rollout_traj_pre(tr, ev->em, ed);
      env_obs(ev->em, ed, full);
      env_obs_gather(ev->off, ev->p->meta.key_dims, ev->p->meta.nkeys, full, obs);
      const int sampling = pol_data_queued(pd) == 0;
      double t0 = fc_now();
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
        if (k < ev->maxlat) ev->lat[k] = (fc_now() - t0) * 1e6;
      }
      const int src = env_step(ev->em, ed, act, err, sizeof(err));
      if (src == ENV_UNSTABLE) {
        pol_rollout_warn(stderr, ev->cmd, i, ev->seed + (uint64_t)i, err);
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
      if (tr) pol_rollout_traj_post(tr, ev->em, ed, act);
      pol_rollout_track(ev->em, ed, r);
    }
    pol_rollout_end(ev->em, ed, r, unstable);
    const pol_counts c1 = pol_data_counts(pd);
    atomic_fetch_add(&ev->clipped, (long)(c1.clipped - c0.clipped));
    atomic_fetch_add(&ev->obs_clipped, (long)(c1.obs_clipped - c0.obs_clipped));
    atomic_fetch_add(&ev->state_clamped, (long)(c1.state_clamped - c0.state_clamped));
  }
  pol_data_free(pd);
  env_data_free(ed);
  return NULL;
}


int pol_rollout_policy(const char *cmd, const env_model *em, const pol_policy *p, fc_sampler s, int steps, uint64_t seed,
                   int episodes, int jobs, int record, pol_rollout_eval *out, char *err, size_t errsz) {
  memset(out, 0, sizeof(*out));
  FC_ASSERT(episodes >= 1);
  const char *keys[POL_MAX_KEYS];
  s_eval ev;
  memset(&ev, 0, sizeof(ev));
  for (int k = 0; k < p->meta.nkeys; k++) keys[k] = p->meta.keys[k];
  if (env_obs_dim(em) > 256)
    return fc_set_err(err, errsz, "task %s has too many observation values", env_name(em)), POL_ROLLOUT_MISFIT;
  if (env_obs_select(em, keys, p->meta.key_dims, p->meta.nkeys, ev.off, err, errsz)) return POL_ROLLOUT_MISFIT;
  if (env_action_dim(em) != p->meta.action_dim)
    return fc_set_err(err, errsz, "task %s takes %d-D actions but the policy makes %d", env_name(em), env_action_dim(em),
                      p->meta.action_dim), POL_ROLLOUT_MISFIT;
  ev.cmd = cmd;
  ev.em = em;
  ev.p = p;
  ev.sampler = s;
  ev.steps = steps > 0 ? steps : p->flow->cfg.steps;
  ev.episodes = episodes;
  ev.seed = seed;
  pthread_mutex_init(&ev.mu, NULL);
  ev.res = fc_calloc((size_t)episodes, sizeof(pol_rollout_result));
  if (record) ev.traj = fc_calloc((size_t)episodes, sizeof(pol_rollout_traj));
  ev.maxlat = (long)episodes * (env_horizon(em) / p->meta.Ta + 2);
  ev.lat = fc_malloc(sizeof(double) * (size_t)ev.maxlat);
  if (jobs > episodes) jobs = episodes;
  if (jobs < 1) jobs = 1;
  pthread_t *th = fc_calloc((size_t)jobs, sizeof(pthread_t));
  double t0 = fc_now();
  for (int j = 0; j < jobs; j++) pthread_create(&th[j], NULL, s_policy_worker, &ev);
  for (int j = 0; j < jobs; j++) pthread_join(th[j], NULL);
  free(th);
  pthread_mutex_destroy(&ev.mu);
  if (ev.fail[0]) {
    fc_set_err(err, errsz, "%s", ev.fail);
    free(ev.res);
    free(ev.lat);
    out->latency_us = NULL;
    out->traj = ev.traj;
    pol_rollout_eval_free(out, episodes);
    return POL_ROLLOUT_FAILED;
  }
  out->seconds = fc_now() - t0;
  out->res = ev.res;
  out->traj = ev.traj;
  pol_rollout_summarize(ev.res, episodes, &out->stats);
  long nl = atomic_load(&ev.nlat) < ev.maxlat ? atomic_load(&ev.nlat) : ev.maxlat;
  fc_sort(ev.lat, (int)nl);
  out->latency_us_p50 = fc_quantile(ev.lat, (int)nl, 0.50);
  out->latency_us_p99 = fc_quantile(ev.lat, (int)nl, 0.99);
  out->latency_us = ev.lat;
  out->chunks = nl;
  out->clipped = atomic_load(&ev.clipped);
  out->obs_clipped = atomic_load(&ev.obs_clipped);
  out->state_clamped = atomic_load(&ev.state_clamped);
  out->refused = atomic_load(&ev.refused);
  snprintf(out->first_refusal, sizeof(out->first_refusal), "%s", ev.first_refusal);
  out->nfe = pol_nfe(p, ev.sampler, ev.steps);
  return 0;
}

void pol_rollout_eval_free(pol_rollout_eval *out, int episodes) {
  free(out->res);
  out->res = NULL;
  free(out->latency_us);
  out->latency_us = NULL;
  if (out->traj)
    for (int i = 0; i < episodes; i++) pol_rollout_traj_free(&out->traj[i]);
  free(out->traj);
  out->traj = NULL;
}
