/* rollout: what closed-loop evaluation shares between `lfp eval` (policy
 * in-process) and `lfp sim` (policy behind a ZeroMQ node): per-episode
 * bookkeeping, the summary (success with a Wilson interval, task figures, a
 * digest of the final states) and its printing, in words and as JSON keys.
 *
 * Example: n expert episodes from seed 100000, summarized
 *
 *   int expert_eval(const env_model *em, int n) {
 *     char err[512];
 *     pol_rollout_result *res = calloc((size_t)n, sizeof *res);
 *     env_data *ed = env_data_new(em);
 *     double obs[64], act[ENV_MAX_ACTION];
 *     for (int i = 0; i < n; i++) {
 *       uint64_t seed = 100000 + (uint64_t)i;
 *       env_reset(em, ed, seed);
 *       pol_rollout_begin(em, ed, &res[i]);
 *       int unstable = 0;
 *       while (!env_done(em, ed)) {
 *         env_obs(em, ed, obs);
 *         env_expert(em, ed, act);
 *         int rc = env_step(em, ed, act, err, sizeof err);
 *         if (rc == ENV_UNSTABLE) { pol_rollout_warn(stderr, "example", i, seed, err); unstable = 1; break; }
 *         if (rc) {                                 // a non-finite action ends the run
 *           fprintf(stderr, "%s\n", err);
 *           env_data_free(ed);
 *           free(res);
 *           return -1;
 *         }
 *         pol_rollout_track(em, ed, &res[i]);
 *       }
 *       pol_rollout_end(em, ed, &res[i], unstable);
 *     }
 *     pol_rollout_stats s;
 *     pol_rollout_summarize(res, n, &s);
 *     pol_rollout_print(stdout, em, &s);
 *     pol_rollout_run run = {.policy = "expert", .method = "expert", .seed = 100000};
 *     pol_rollout_json_open(stdout, em, &run, &s);   // the caller may add members here
 *     pol_rollout_json_close(stdout, 0.0);
 *     env_data_free(ed);
 *     free(res);
 *     return 0;
 *   }
 */
#ifndef POL_ROLLOUT_H
#define POL_ROLLOUT_H

#include <stdint.h>
#include <stdio.h>

#include "env.h"
#include "pol.h"

typedef struct {
  int success, len, unstable, side;
  int contact_full, constraint_full; /* MuJoCo's CONTACTFULL / CNSTRFULL counts (env_warning_counts) */
  double max_coverage;
  double score;    /* Diffusion Policy's score in [0, 1]: min(1, max coverage / goal) on coverage
                      tasks (pusht), success on the others */
  uint32_t digest; /* CRC-32 of the final flat state */
} pol_rollout_result;

typedef struct {
  int episodes, successes, unstable, left, right;
  int contact_full, constraint_full; /* episodes in which MuJoCo lost contacts / constraints (all unstable) */
  double rate, ci_lo, ci_hi, mean_len, mean_coverage, mean_score;
  uint32_t digest; /* CRC-32 over the episodes' digests, in seed order */
} pol_rollout_stats;

void pol_rollout_begin(const env_model *em, const env_data *ed, pol_rollout_result *r);
void pol_rollout_track(const env_model *em, const env_data *ed, pol_rollout_result *r);
void pol_rollout_end(const env_model *em, const env_data *ed, pol_rollout_result *r, int unstable);
void pol_rollout_summarize(const pol_rollout_result *r, int n, pol_rollout_stats *s);
/* "lfp CMD: warning: episode I (seed S) ended as unstable: WHY" on f */
void pol_rollout_warn(FILE *f, const char *cmd, int episode, uint64_t seed, const char *why);
/* "  success ..% (k/n), 95% CI [..], mean length ..", the task's figures, and
 * the episodes in which MuJoCo lost contacts or constraints */
void pol_rollout_print(FILE *f, const env_model *em, const pol_rollout_stats *s);
/* What a run reports besides the episodes: the policy (path or name) and
 * method, the first seed, network evaluations per chunk, clipped action
 * values, and the chunk sampling latency. */
typedef struct {
  const char *policy, *method;
  int seed, nfe;
  long clipped;
  double latency_us_p50, latency_us_p99;
} pol_rollout_run;
/* The JSON object that `lfp eval --json` prints and `lfp sim --json` extends,
 * left open: "{" env, policy, method, episodes, seed, success_rate, ci95,
 * mean_score (Diffusion Policy's metric: the mean of pol_rollout_result.score), mean_len, unstable, contact_full, constraint_full (episodes, as in
 * pol_rollout_stats), digest, max_coverage_mean / left, right where the task
 * has them, latency_us_p50, latency_us_p99, nfe, clipped. The caller adds
 * its own members and closes it with pol_rollout_json_close. */
void pol_rollout_json_open(FILE *f, const env_model *em, const pol_rollout_run *run, const pol_rollout_stats *s);
/* ", "seconds": secs}" and a newline */
void pol_rollout_json_close(FILE *f, double secs);

/* ---------- trajectories, as Robomimic-style demos ---------- */

/* One episode's record: before each action the flat state and the
 * observation (all the task's keys), then the action, the next observation,
 * the reward and done (1 on the last step). */
typedef struct {
  int64_t len;
  double *obs, *next_obs;  /* (len, obs_dim) */
  double *actions;         /* (len, action_dim) */
  double *rewards, *states; /* (len), (len, state_dim) */
  int64_t *dones;          /* (len) */
  double *final_state;     /* (state_dim): the state after the last step (len > 0) */
} pol_rollout_traj;

/* room for a whole episode (the task's horizon), len 0 */
void pol_rollout_traj_alloc(pol_rollout_traj *tr, const env_model *em);
void pol_rollout_traj_free(pol_rollout_traj *tr);
/* the state and observation before step len */
void pol_rollout_traj_pre(pol_rollout_traj *tr, const env_model *em, const env_data *ed);
/* after env_step succeeded with action: its action, next observation, reward
 * and the state it left (final_state); len + 1 */
void pol_rollout_traj_post(pol_rollout_traj *tr, const env_model *em, const env_data *ed, const double *action);
/* The trajectory as bytes (for moving it between processes of the same
 * build: lfp under mpirun): pol_rollout_traj_bytes of them written by
 * pack; unpack allocates tr (pol_rollout_traj_alloc) and fills it from
 * bytes written by pack for the same task, returning the bytes it read, or
 * 0 when they do not fit (a bug: they come from the same binary). */
size_t pol_rollout_traj_bytes(const pol_rollout_traj *tr, const env_model *em);
void pol_rollout_traj_pack(const pol_rollout_traj *tr, const env_model *em, unsigned char *out);
size_t pol_rollout_traj_unpack(pol_rollout_traj *tr, const env_model *em, const unsigned char *in, size_t n);
/* append the episode (len > 0) to w as the next demo, its observation keys
 * split out and the task's model attached; 0 or -1 with err */
struct ds_writer;
int pol_rollout_traj_write(struct ds_writer *w, const env_model *em, const pol_rollout_traj *tr, char *err, size_t errsz);

/* ---------- a policy's episodes, in-process (lfp eval, lfp train --eval-every) ---------- */

/* What pol_rollout_policy measured. */
typedef struct {
  pol_rollout_result *res;         /* one per episode, in seed order (owned) */
  pol_rollout_stats stats;
  double latency_us_p50, latency_us_p99; /* chunk sampling latency */
  double *latency_us;          /* each chunk's sampling latency, sorted (chunks values, owned) */
  long chunks, clipped;        /* chunks sampled; action values clipped to the bounds */
  long obs_clipped;            /* normalized observation values clipped (pol.h: POL_OBS_CLIP) */
  long state_clamped;          /* sampler state values clamped (pol.h: POL_STATE_BOUND) */
  int refused;                 /* episodes the policy ended by refusing to act (failures) */
  char first_refusal[640];     /* the first refusal, with its seed and step ("" if none) */
  double seconds;
  int nfe;                     /* network evaluations per chunk */
  pol_rollout_traj *traj;          /* with record: one per episode, in seed order (owned) */
} pol_rollout_eval;

/* `episodes` episodes of policy p on task em, seeds seed, seed + 1, ..., on
 * `jobs` threads (the results do not depend on jobs; warnings of unstable
 * episodes name the command cmd), with the sampler s and
 * `steps` ODE steps per block (steps <= 0: the trained ones); with record,
 * each episode's trajectory is kept (out->traj). The policy's
 * observation keys are found by name in the task's (env_obs_select).
 * 0; or, with a sentence in err and nothing returned, POL_ROLLOUT_MISFIT (the
 * policy's keys or actions do not fit the task) or POL_ROLLOUT_FAILED (an action
 * reached env_step not finite: a bug, as policies refuse such chunks). Free
 * with pol_rollout_eval_free. */
#define POL_ROLLOUT_MISFIT (-1)
#define POL_ROLLOUT_FAILED (-2)
int pol_rollout_policy(const char *cmd, const env_model *em, const pol_policy *p, fc_sampler s, int steps, uint64_t seed,
                   int episodes, int jobs, int record, pol_rollout_eval *out, char *err, size_t errsz);
void pol_rollout_eval_free(pol_rollout_eval *out, int episodes);

#endif
