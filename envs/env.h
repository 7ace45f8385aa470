/* env: MuJoCo manipulation tasks (MJCF built from primitive geoms, embedded in
 * the binary) with scripted experts, on Debian's MuJoCo 2.2.2.
 *
 * As MuJoCo splits mjModel / mjData: an env_model (task, compiled model,
 * parameters) is read-only after env_model_new and is shared by any number of
 * rollouts, each with its own env_data (mjData, RNG, expert state), so
 * rollouts run in parallel threads. Everything is deterministic given the
 * reset seed. MuJoCo errors (which exit the process by default), numerical
 * blow-ups (which 2.2.2 answers with a silent reset) and contacts or
 * constraints MuJoCo had no room for become error returns.
 *
 * Process-wide state: env_init, called once by the program before any other
 * env call, installs MuJoCo's global error and warning handlers; nothing else
 * in envs/ changes process-wide state.
 *
 * Example: one episode of the scripted expert
 *
 *   int expert_episode(uint64_t seed) {
 *     char err[512];
 *     if (env_init(err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;  // once per program
 *     env_model *em = env_model_new("lift", err, sizeof err);
 *     if (!em) return fprintf(stderr, "%s\n", err), -1;
 *     env_data *ed = env_data_new(em);
 *     env_reset(em, ed, seed);
 *     double obs[64], act[ENV_MAX_ACTION];
 *     int rc = 0;
 *     while (!env_done(em, ed) && rc == 0) {
 *       env_obs(em, ed, obs);                       // env_obs_dim(em) values, the keys concatenated
 *       env_expert(em, ed, act);                    // or a policy's action
 *       rc = env_step(em, ed, act, err, sizeof err);
 *       if (rc) fprintf(stderr, "%s\n", err);       // ENV_UNSTABLE or ENV_BAD_ACTION
 *     }
 *     int ok = rc == 0 && env_success(em, ed);
 *     env_data_free(ed);
 *     env_model_free(em);
 *     return ok;
 *   }
 */
#ifndef ENV_H
#define ENV_H

#include <stddef.h>
#include <stdint.h>

#include "fc_rng.h"

#define ENV_MAX_KEYS 8
#define ENV_MAX_ACTION 8

typedef struct {
  const char *name; /* robomimic-style observation key */
  int dim;
} env_key;

typedef struct env_model env_model;
typedef struct env_data env_data;

/* Installs MuJoCo's process-wide handlers, mju_user_error and
 * mju_user_warning, replacing whatever the program had set: a MuJoCo error
 * inside an env call becomes that call's error return (outside one it prints
 * the message and aborts, as MuJoCo would exit), and MuJoCo's warnings are no
 * longer printed (each env_data counts its own, see env_warning_counts). Also
 * checks that the MuJoCo library is the version lfp was compiled against.
 * Idempotent and thread-safe; 0, or -1 with err. Until it has succeeded,
 * env_model_new and env_model_from_args fail with an error saying so. */
int env_init(char *err, size_t errsz);

/* Task names (each task file's opening comment has the details):
 *   "lift"  pick a cube up; success: its centre 4 cm above the table
 *   "pusht" push a T block onto its goal pose; success: goal coverage > 0.95
 *   "avoid" reach a goal past an obstacle, left or right; success: within
 *           4 cm of the goal without having touched the obstacle
 *   "can"   pick a can up and put it into a bin; success: the can rests in
 *           the bin, released (centre within the bin's inner footprint and
 *           below its rim, speed < 3 cm/s and < 0.5 rad/s, no contact with
 *           the gripper; lying on its side counts) */
int env_task_count(void);
const char *env_task_name(int i);

env_model *env_model_new(const char *task, char *err, size_t errsz);
void env_model_free(env_model *em);

const char *env_name(const env_model *em);
int env_action_dim(const env_model *em);
int env_obs_dim(const env_model *em);       /* all keys concatenated */
int env_nkeys(const env_model *em);
const env_key *env_keys(const env_model *em);
/* The keys a policy observes by default (a subset of env_keys, in order:
 * pusht observes the T's keypoints rather than its wrapped angle); writes
 * up to max names, returns their count. */
int env_policy_keys(const env_model *em, const char **names, int max);
/* Where a policy's observation keys sit in env_obs's vector: off[k] is the
 * column of key k's first value. 0, or -1 with a sentence naming the key the
 * task does not observe or whose size differs. */
int env_obs_select(const env_model *em, const char *const *keys, const int *dims, int nkeys, int *off, char *err,
                   size_t errsz);
/* out = the selected keys' values of obs, concatenated in the policy's order */
void env_obs_gather(const int *off, const int *dims, int nkeys, const double *obs, double *out);
int env_state_dim(const env_model *em);
int env_horizon(const env_model *em);
double env_control_hz(const env_model *em);
int env_substeps(const env_model *em);
/* env_args JSON, from which the same task is rebuilt (name, every parameter, lfp version) */
const char *env_args_json(const env_model *em);
/* The compiled model as MJCF text (robomimic's model_file). */
const char *env_model_xml(const env_model *em);
/* Rebuild from env_args JSON (as written by env_args_json). */
env_model *env_model_from_args(const char *json, char *err, size_t errsz);

env_data *env_data_new(const env_model *em);
void env_data_free(env_data *ed);

/* Start an episode: the task's randomized initial state and a fresh expert. */
void env_reset(const env_model *em, env_data *ed, uint64_t seed);
/* env_step's error returns */
#define ENV_UNSTABLE (-1)   /* the episode cannot go on: see env_step */
#define ENV_BAD_ACTION (-2) /* a non-finite action value: nothing was simulated */

/* One control step (action in [-1, 1]^A; finite values outside it are
 * clipped). 0; or ENV_UNSTABLE with err when MuJoCo raised an error, the
 * simulation became unstable (bad qpos, qvel or qacc) or MuJoCo dropped
 * contacts (CONTACTFULL) or constraint rows (CNSTRFULL) for want of room:
 * the episode ends, its state is not to be trusted; or ENV_BAD_ACTION with
 * err ("lift: action[2] is nan at step 7 ...") when an action value is NaN
 * or infinite: the state is unchanged and no command was applied. */
int env_step(const env_model *em, env_data *ed, const double *action, char *err, size_t errsz);
/* MuJoCo's warnings in this env_data since env_reset / env_set_state, from
 * mjData.warning (per env, so per thread). Each ends the episode as unstable
 * on the step that raised it, so a count is 0 or 1 unless the state was
 * already bad at reset. */
typedef struct {
  int bad_qpos, bad_qvel, bad_qacc; /* non-finite or huge state: 2.2.2 resets the data */
  int contact_full;                 /* CONTACTFULL: contacts beyond the buffer were dropped */
  int constraint_full;              /* CNSTRFULL: constraint rows beyond njmax were dropped */
} env_warnings;
void env_warning_counts(const env_data *ed, env_warnings *w);
void env_obs(const env_model *em, const env_data *ed, double *obs);
int env_success(const env_model *em, const env_data *ed);
double env_reward(const env_model *em, const env_data *ed);
int env_steps(const env_data *ed);           /* control steps taken */
int env_done(const env_model *em, const env_data *ed);  /* success or horizon */
/* Task figures: pusht's coverage of the goal T in [0, 1] (NAN for tasks
 * without one); avoid's side this episode, -1 left, +1 right, 0 undecided
 * (0 for others); whether the episode broke the task (avoid: touched the
 * obstacle), which ends it as a failure. */
int env_failed(const env_data *ed);
double env_coverage(const env_model *em, const env_data *ed);
int env_side(const env_model *em, const env_data *ed);
int env_has_coverage(const env_model *em);
/* The coverage above which the task counts as solved (pusht 0.95), 0 for
 * tasks without coverage. Diffusion Policy's score of an episode is
 * min(1, max coverage / goal) on such tasks, success (0 or 1) on the others. */
double env_coverage_goal(const env_model *em);
int env_has_side(const env_model *em);
/* pusht's exact coverage of its goal T (0.256, 0.256, pi/4) by a T at
 * pose (x, y in metres, angle in radians). */
double env_pusht_coverage(const double pose[3]);
/* The scripted expert's action for the current state (uses ed's own RNG). */
void env_expert(const env_model *em, env_data *ed, double *action);

/* Flat state: time, qpos, qvel, act, mocap_pos, mocap_quat, qacc_warmstart,
 * ctrl: enough to replay an episode bit for bit. */
void env_get_state(const env_model *em, const env_data *ed, double *state);
void env_set_state(const env_model *em, env_data *ed, const double *state);

#endif
