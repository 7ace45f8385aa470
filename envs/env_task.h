/* env_task: what a task provides to env.c (internal to envs/). A task is an
 * MJCF string plus callbacks; env.c does loading, stepping, error handling,
 * state and bookkeeping. */
#ifndef ENV_TASK_H
#define ENV_TASK_H

#include <mujoco/mujoco.h>

#include "env.h"

#define ENV_MAX_IDS 16
#define ENV_TASK_STATE 256

/* where env_render's camera looks from: MuJoCo's free camera (degrees);
 * shadows: drawn (they show a gripper's height over the table, and triple
 * the cost of a frame on llvmpipe) */
typedef struct {
  double lookat[3], distance, azimuth, elevation;
  int shadows;
} env_view;

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
  env_view view;        /* the camera of env_render's pictures */
} env_task;

extern const env_task env_task_lift;
extern const env_task env_task_pusht;
extern const env_task env_task_avoid;
extern const env_task env_task_can;

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
/* out = q reordered as robosuite writes it (x, y, z, w) */
void env_quat_xyzw(double out[4], const double wxyz[4]);
/* v clipped to [-1, 1] */
double env_clip1(double v);

/* ---------- the mocap gripper of lift and can (gripper.c) ----------
 * A free "hand" (palm box) welded to the mocap body "target", a site "grip"
 * 6 cm below it (the end effector), two slide fingers "lf" / "rf" coupled by
 * a joint equality and one position actuator "grip" on lf. The MJCF is two
 * string-literal macros: ENV_GRIPPER_BODIES inside <worldbody>,
 * ENV_GRIPPER_ELEMENTS after it. Sizes are MJCF number strings: PALM_Y the
 * palm's half-width, FINGER_Y each finger's offset from the centre (its
 * inner face is 6 mm nearer), TRAVEL how far each finger closes (the
 * actuator's ctrlrange). */
#define ENV_GRIPPER_BODIES(PALM_Y, FINGER_Y, TRAVEL)                                                           \
  "    <body name=\"target\" mocap=\"true\" pos=\"0 0 1.0\"/>\n"                                               \
  "    <body name=\"hand\" pos=\"0 0 1.0\">\n"                                                                 \
  "      <freejoint name=\"hand\"/>\n"                                                                         \
  "      <geom name=\"palm\" type=\"box\" size=\"0.015 " PALM_Y " 0.01\" mass=\"0.3\" condim=\"3\"/>\n"        \
  "      <site name=\"grip\" pos=\"0 0 -0.06\" size=\"0.005\"/>\n"                                             \
  "      <body name=\"lf\" pos=\"0 " FINGER_Y " -0.045\">\n"                                                   \
  "        <joint name=\"lf\" type=\"slide\" axis=\"0 -1 0\" range=\"0 " TRAVEL "\" damping=\"2\"/>\n"         \
  "        <geom name=\"lf\" type=\"box\" size=\"0.01 0.006 0.03\" mass=\"0.05\"/>\n"                          \
  "      </body>\n"                                                                                            \
  "      <body name=\"rf\" pos=\"0 -" FINGER_Y " -0.045\">\n"                                                  \
  "        <joint name=\"rf\" type=\"slide\" axis=\"0 1 0\" range=\"0 " TRAVEL "\" damping=\"2\"/>\n"          \
  "        <geom name=\"rf\" type=\"box\" size=\"0.01 0.006 0.03\" mass=\"0.05\"/>\n"                          \
  "      </body>\n"                                                                                            \
  "    </body>\n"
#define ENV_GRIPPER_ELEMENTS(TRAVEL)                                                                           \
  "  <contact>\n"                                                                                              \
  "    <exclude body1=\"hand\" body2=\"lf\"/>\n"                                                               \
  "    <exclude body1=\"hand\" body2=\"rf\"/>\n"                                                               \
  "  </contact>\n"                                                                                             \
  "  <equality>\n"                                                                                             \
  "    <weld body1=\"target\" body2=\"hand\" solref=\"0.02 1\"/>\n"                                            \
  "    <joint joint1=\"lf\" joint2=\"rf\"/>\n"                                                                 \
  "  </equality>\n"                                                                                            \
  "  <actuator>\n"                                                                                             \
  "    <position name=\"grip\" joint=\"lf\" kp=\"200\" ctrlrange=\"0 " TRAVEL "\"/>\n"                         \
  "  </actuator>\n"

/* the gripper's ids, the first ENV_GRIP_NIDS of a task's ids[] */
enum { ENV_GRIP_HAND, ENV_GRIP_HAND_QPOS, ENV_GRIP_MOCAP, ENV_GRIP_SITE, ENV_GRIP_LF_QPOS, ENV_GRIP_RF_QPOS,
       ENV_GRIP_ACT, ENV_GRIP_NIDS };
/* look the gripper's names up: 0, or -1 with err naming what task's model lacks */
int env_gripper_init(const mjModel *m, const char *task, int *ids, char *err, size_t errsz);
/* put the hand and its mocap target at pos / quat (w, x, y, z), gripper open */
void env_gripper_place(const int *ids, mjData *d, const double pos[3], const double quat[4]);
/* the 7-D action (clipped): the mocap target = hand pose + delta position
 * x 0.05 m + delta rotation (axis-angle, world frame) x 0.5 rad; a[6] -1
 * open .. +1 closed, linear over the finger travel */
void env_gripper_act(const mjModel *m, const int *ids, mjData *d, const double *a);
/* 9 values: robot0_eef_pos (grip site, 3), robot0_eef_quat (hand, x y z w,
 * 4), robot0_gripper_qpos (lf, -rf) */
void env_gripper_obs(const int *ids, const mjData *d, double *o);
/* expert terms: a[0..2] moving eef toward target at most vmax (in action
 * units) with a proportional gain; a[3..5] keeping the hand upright and
 * turning it by yaw_err (radians) */
void env_gripper_move(const double target[3], const double eef[3], double gain, double vmax, double *a);
void env_gripper_orient(const double hand_quat[4], double yaw_err, double *a);
/* nonzero when any geom of the gripper (hand, fingers) touches body */
int env_gripper_touches(const mjModel *m, const int *ids, const mjData *d, int body);

#endif
