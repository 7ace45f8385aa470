/* pol_mj: a trained policy driving the user's own MuJoCo model, through a
 * mapping file that says where each observation key comes from and where
 * each action dimension goes. The mapping (JSON):
 *
 *   {"control_hz": 20,                                   (optional: the policy's rate)
 *    "obs": {"KEY": [SOURCE, ...], ...},                 every key the policy takes, its values concatenated
 *    "actions": [{"actuator": "NAME", "mode": "absolute" | "delta",
 *                 "scale": 1, "offset": 0, "low": L, "high": H}, ...]}   one per action dimension
 *
 * A SOURCE is one of {"sensor": NAME} (its sensordata), {"qpos": JOINT},
 * {"qvel": JOINT} (free 7 / 6, ball 4 / 3, slide and hinge 1 / 1 values),
 * {"site_pos": SITE}, {"site_quat": SITE}, {"body_pos": BODY},
 * {"body_quat": BODY} (world frame, w x y z), with optional "scale" and
 * "offset" (obs value = raw * scale + offset). An action value a becomes
 * ctrl = a * scale + offset (absolute) or ctrl + a * scale (delta: added to
 * the actuator's current control), clamped to [low, high] (default: the
 * actuator's ctrlrange when it is ctrllimited). The mapping is checked
 * against the model and the policy before anything runs: every mismatch is
 * one sentence naming the file and the entry (all of them are reported, one
 * per line).
 *
 * The policy acts every substeps() physics steps (the model's timestep
 * against control_hz) and the control is held in between. Run it from the
 * user's own loop, between mj_step1 and mj_step2 (where MuJoCo computes
 * positions and velocities, then actuation: the observation is the current
 * state's), or as MuJoCo's control callback, which MuJoCo calls at the same
 * point of every mj_step: pol_mj_install sets mjcb_control, a process-wide
 * hook, so it is opt-in, one pol_mj at a time, and undone by
 * pol_mj_uninstall. Both ways give the same trajectory, bit for bit.
 *
 * Example: a policy on the user's scene for 10 simulated seconds
 *
 *   int drive(const char *scene, const char *map, const char *policy) {
 *     char err[2048];
 *     mjModel *m = mj_loadXML(scene, NULL, err, sizeof err);
 *     pol_policy *p = m ? pol_load(policy, err, sizeof err) : NULL;
 *     pol_mj *a = p ? pol_mj_new(m, map, p, 100000, err, sizeof err) : NULL;
 *     int rc = a ? 0 : -1;
 *     if (!a) fprintf(stderr, "%s\n", err);
 *     mjData *d = a ? mj_makeData(m) : NULL;
 *     for (int t = 0; a && t < (int)(10 / m->opt.timestep) && rc == 0; t++) {
 *       mj_step1(m, d);                                 // positions, velocities, sensors
 *       rc = pol_mj_step(a, m, d, err, sizeof err);   // observes and acts on control steps
 *       if (rc) fprintf(stderr, "%s\n", err);          // a refused step: the control is held
 *       mj_step2(m, d);                                 // actuation, integration
 *     }
 *     if (d) mj_deleteData(d);
 *     pol_mj_free(a);
 *     pol_free(p);
 *     if (m) mj_deleteModel(m);
 *     return rc;
 *   }
 */
#ifndef POL_MJ_H
#define POL_MJ_H

#include <mujoco/mujoco.h>
#include <stddef.h>
#include <stdint.h>

#include "pol.h"

typedef struct pol_mj_map pol_mj_map;

/* What the mapping must fit: the policy's keys (names, dims), its action
 * dimension and control rate. */
typedef struct {
  int nkeys;
  const char *keys[POL_MAX_KEYS];
  int dims[POL_MAX_KEYS];
  int action_dim;
  double control_hz;
} pol_mj_spec;
void pol_mj_spec_of(const pol_policy *p, pol_mj_spec *s);

/* Read and check the mapping file against the model and the spec; NULL and
 * one sentence per mismatch (newline-separated) in err. */
pol_mj_map *pol_mj_map_load(const mjModel *m, const char *path, const pol_mj_spec *spec, char *err, size_t errsz);
void pol_mj_map_free(pol_mj_map *map);
/* The observation (the spec's keys concatenated, obs_dim values) from d
 * after mj_step1 (or mj_forward): what a user's own controller records for
 * lfp train, and what the policy sees. */
void pol_mj_map_obs(const pol_mj_map *map, const mjModel *m, const mjData *d, double *obs);
int pol_mj_map_obs_dim(const pol_mj_map *map);
/* Write one action (action_dim values) into d->ctrl; returns the values clamped. */
int pol_mj_map_act(const pol_mj_map *map, const mjModel *m, mjData *d, const double *action);
/* Physics steps per control step: round(1 / (control_hz * timestep)), >= 1. */
int pol_mj_map_substeps(const pol_mj_map *map, const mjModel *m);

/* A policy attached to the model through a mapping file (the policy and
 * the model must outlive it); seed: its sampler's. */
typedef struct pol_mj pol_mj;
pol_mj *pol_mj_new(const mjModel *m, const char *map_path, const pol_policy *p, uint64_t seed, char *err,
                   size_t errsz);
void pol_mj_free(pol_mj *a);
/* A new episode: the policy's history and queue emptied, its sampler reseeded. */
void pol_mj_reset(pol_mj *a, uint64_t seed);
/* Call between mj_step1 and mj_step2: on control steps it observes, asks
 * the policy and writes ctrl. 0, or -1 with the policy's sentence (a refused
 * observation or chunk: the control is held, never a non-finite one). */
int pol_mj_step(pol_mj *a, const mjModel *m, mjData *d, char *err, size_t errsz);
const pol_mj_map *pol_mj_get_map(const pol_mj *a);
/* Any other source of actions: a node over the bus (lfp sim --model
 * --connect), or a user's own controller. act gets the observation
 * (obs_dim values, the spec's keys concatenated) and writes action_dim
 * values: 0, or -1 with a sentence (the control then holds); reset (may be
 * NULL) starts an episode with a seed. ctx is the actor's. */
typedef struct {
  int (*act)(void *ctx, const double *obs, double *action, char *err, size_t errsz);
  void (*reset)(void *ctx, uint64_t seed);
  void *ctx;
} pol_mj_actor;
pol_mj *pol_mj_new_actor(const mjModel *m, const char *map_path, const pol_mj_spec *spec, const pol_mj_actor *actor,
                         char *err, size_t errsz);
/* What it has done: control steps, refused steps, action values clamped by
 * the mapping's bounds, and the policy's counters (zero for an actor). */
typedef struct {
  int64_t control_steps, refused, clamped;
  pol_counts policy;
} pol_mj_stats;
pol_mj_stats pol_mj_get_stats(const pol_mj *a);

/* MuJoCo's control callback (process-wide, opt-in): mjcb_control runs
 * pol_mj_step for a on every mj_step of model m. -1 with a sentence when
 * another callback is already installed. Refusals inside the callback are
 * counted (pol_mj_get_stats) and the first one kept (pol_mj_last_error). */
int pol_mj_install(pol_mj *a, const mjModel *m, char *err, size_t errsz);
void pol_mj_uninstall(void);
const char *pol_mj_last_error(const pol_mj *a);

#endif
