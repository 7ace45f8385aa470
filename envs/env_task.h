/* env_task: what a task provides to env.c (internal to envs/). A task is an
 * MJCF string plus callbacks; env.c does loading, stepping, error handling,
 * state and bookkeeping. */
#ifndef ENV_TASK_H
#define ENV_TASK_H

#include <mujoco/mujoco.h>

#include "env.h"

#define ENV_MAX_IDS 16
#define ENV_TASK_STATE 256

typedef struct env_task {
  const char *name;
  const char *xml;          /* MJCF, primitive geoms only */
  int action_dim;
  double control_hz;
  int horizon;
  int nkeys;
  env_key keys[ENV_MAX_KEYS];
  /* optional: the keys a policy observes by default, NULL-terminated (NULL:
   * all of keys) */
  const char *policy_keys[ENV_MAX_KEYS + 1];
  /* look up body/joint/site ids once: ids[] in env_model */
  int (*init)(const mjModel *m, int *ids, char *err, size_t errsz);
  /* randomize the initial state with rng; reset the expert (task state) */
  void (*reset)(const mjModel *m, const int *ids, mjData *d, fc_rng *rng, void *ts);
  /* apply a clipped action before the physics substeps */
  void (*act)(const mjModel *m, const int *ids, mjData *d, const double *a);
  void (*obs)(const mjModel *m, const int *ids, const mjData *d, double *obs);
  int (*success)(const mjModel *m, const int *ids, const mjData *d);
  /* scripted expert: action for the current state; ts: its state, rng: its randomness */
  void (*expert)(const mjModel *m, const int *ids, const mjData *d, fc_rng *rng, void *ts, double *a);
  /* optional task figures (NULL when the task has none): pusht's goal
   * coverage in [0, 1]; avoid's side: -1 left, +1 right, 0 not yet decided */
  double (*coverage)(const mjModel *m, const int *ids, const mjData *d);
  double coverage_goal; /* coverage above which the task is solved (pusht 0.95); 0 without coverage */
  int (*side)(const mjModel *m, const int *ids, const mjData *d);
  /* optional: nonzero when the current state breaks the task (avoid: touching
   * the obstacle); checked after every physics substep, latched by env.c, and
   * it ends the episode as a failure */
  int (*failed)(const mjModel *m, const int *ids, const mjData *d);
} env_task;

extern const env_task env_task_lift;
extern const env_task env_task_pusht;
extern const env_task env_task_avoid;

struct env_model {
  const env_task *task;
  mjModel *m;
  int ids[ENV_MAX_IDS];
  int obs_dim, state_dim, substeps;
  char *args;
};

struct env_data {
  mjData *d;
  fc_rng rng;      /* the expert's randomness */
  int t;           /* control steps taken */
  int failed;      /* latched task->failed */
  int side;        /* first nonzero task->side of the episode */
  unsigned char ts[ENV_TASK_STATE] __attribute__((aligned(16))); /* task/expert state */
};

/* mj_name2id(m, type, name), or -1 with err "task T: its model has no
 * <type> named '<name>'": every task's init looks its names up with it */
int env_id(const mjModel *m, const char *task, int type, const char *name, char *err, size_t errsz);
/* Compile MJCF text (named name.xml) from memory: the model, or NULL with err.
 * Internal, for env.c and tests; MuJoCo errors must be caught by the caller. */
mjModel *env__load_xml(const char *name, const char *xml, char *err, size_t errsz);

/* quaternion helpers shared by tasks (w, x, y, z) */
void env_quat_axis_angle(double q[4], const double axis_angle[3]);
double env_quat_yaw(const double q[4]);

#endif
