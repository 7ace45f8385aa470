/* lift: the Robomimic Lift analog. A table (top at z = 0.8), a 4 cm cube
 * (50 g) with random position (+-3 cm) and yaw, and a parallel-jaw gripper: a
 * free "hand" welded to a mocap target, two slide fingers coupled by a joint
 * equality, one position actuator (gripper.c: its MJCF, action, observations
 * and expert terms).
 * Actions (7, in [-1, 1]): delta position x 0.05 m, delta rotation
 * (axis-angle) x 0.5 rad, gripper (-1 open, +1 closed). 20 Hz control,
 * 2 ms physics, horizon 400. Success: cube centre above table top + 4 cm.
 * Observations as robosuite names them: object (cube pos 3, cube quat xyzw 4,
 * eef - cube 3), robot0_eef_pos (3), robot0_eef_quat (xyzw, 4),
 * robot0_gripper_qpos (2). */
#include <math.h>
#include <string.h>

#include "env_task.h"
#include "fc_base.h"

static const char s_xml[] =
    "<mujoco model=\"lift\">\n"
    "  <compiler angle=\"radian\" autolimits=\"true\"/>\n"
    "  <option timestep=\"0.002\" integrator=\"implicit\" cone=\"elliptic\" impratio=\"10\" solver=\"Newton\"/>\n"
    "  <size njmax=\"1000\" nconmax=\"200\"/>\n"
    "  <default>\n"
    "    <geom condim=\"4\" friction=\"1.5 0.005 0.0001\" solref=\"0.01 1\"/>\n"
    "  </default>\n"
    "  <worldbody>\n"
    "    <light pos=\"0 0 2\" dir=\"0 0 -1\"/>\n"
    "    <geom name=\"floor\" type=\"plane\" size=\"1 1 0.1\" condim=\"3\"/>\n"
    "    <geom name=\"table\" type=\"box\" pos=\"0 0 0.4\" size=\"0.4 0.4 0.4\" condim=\"3\"/>\n"
    "    <body name=\"cube\" pos=\"0 0 0.82\">\n"
    "      <freejoint name=\"cube\"/>\n"
    "      <geom name=\"cube\" type=\"box\" size=\"0.02 0.02 0.02\" mass=\"0.05\" rgba=\"0.8 0.2 0.2 1\"/>\n"
    "    </body>\n"
    ENV_GRIPPER_BODIES("0.045", "0.035", "0.03")
    "  </worldbody>\n"
    ENV_GRIPPER_ELEMENTS("0.03")
    "</mujoco>\n";

enum { I_CUBE = ENV_GRIP_NIDS, I_CUBE_QPOS };
#define S_TABLE_TOP 0.8
#define S_HALF 0.02

static int s_init(const mjModel *m, int *ids, char *err, size_t errsz) {
  int jcube;
  if (env_gripper_init(m, "lift", ids, err, errsz) ||
      (ids[I_CUBE] = env_id(m, "lift", mjOBJ_BODY, "cube", err, errsz)) < 0 ||
      (jcube = env_id(m, "lift", mjOBJ_JOINT, "cube", err, errsz)) < 0)
    return -1;
  ids[I_CUBE_QPOS] = m->jnt_qposadr[jcube];
  return 0;
}

/* the expert's plan for one episode, drawn at reset */
typedef struct {
  int phase, wait;
  double hover, gain, vmax, grasp_wait, lift_z, noise[3], tol;
} s_expert;

static void s_reset(const mjModel *m, const int *ids, mjData *d, fc_rng *r, void *ts) {
  (void)m;
  /* cube: x, y ~ U[-0.03, 0.03], random yaw, resting on the table */
  double *cq = d->qpos + ids[I_CUBE_QPOS];
  double yaw = (2.0 * fc_rng_uniform(r) - 1.0) * FC_PI;
  cq[0] = (2.0 * fc_rng_uniform(r) - 1.0) * 0.03;
  cq[1] = (2.0 * fc_rng_uniform(r) - 1.0) * 0.03;
  cq[2] = S_TABLE_TOP + S_HALF;
  cq[3] = cos(0.5 * yaw);
  cq[4] = cq[5] = 0.0;
  cq[6] = sin(0.5 * yaw);
  /* hand: upright, 20-28 cm above the table, up to 8 cm off centre */
  double hp[3], upright[4] = {1.0, 0.0, 0.0, 0.0};
  hp[0] = (2.0 * fc_rng_uniform(r) - 1.0) * 0.08;
  hp[1] = (2.0 * fc_rng_uniform(r) - 1.0) * 0.08;
  hp[2] = 1.0 + 0.08 * fc_rng_uniform(r);
  env_gripper_place(ids, d, hp, upright);
  /* the expert's variation */
  s_expert *e = ts;
  e->phase = 0;
  e->hover = 0.08 + 0.02 * fc_rng_uniform(r);
  e->gain = 0.7 + 0.3 * fc_rng_uniform(r);
  e->vmax = 0.4 + 0.2 * fc_rng_uniform(r); /* 2-3 cm per step at most */
  e->grasp_wait = 6 + (int)fc_rng_below(r, 5);
  e->lift_z = S_TABLE_TOP + 0.10 + 0.03 * fc_rng_uniform(r);
  e->tol = 0.005 + 0.003 * fc_rng_uniform(r);
  for (int i = 0; i < 3; i++) e->noise[i] = (2.0 * fc_rng_uniform(r) - 1.0) * 0.002;
}

static void s_obs(const mjModel *m, const int *ids, const mjData *d, double *o) {
  (void)m;
  const double *cp = d->xpos + 3 * ids[I_CUBE], *cq = d->xquat + 4 * ids[I_CUBE];
  const double *ep = d->site_xpos + 3 * ids[ENV_GRIP_SITE];
  /* object: cube pos, cube quat (xyzw), eef - cube */
  memcpy(o, cp, 3 * sizeof(double));
  env_quat_xyzw(o + 3, cq);
  for (int i = 0; i < 3; i++) o[7 + i] = ep[i] - cp[i];
  /* robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos */
  env_gripper_obs(ids, d, o + 10);
}

static int s_success(const mjModel *m, const int *ids, const mjData *d) {
  (void)m;
  return d->xpos[3 * ids[I_CUBE] + 2] > S_TABLE_TOP + 0.04;
}

/* wrap an angle to (-pi/4, pi/4]: the cube looks the same every quarter turn */
static double s_quarter(double a) {
  while (a > 0.25 * FC_PI) a -= 0.5 * FC_PI;
  while (a <= -0.25 * FC_PI) a += 0.5 * FC_PI;
  return a;
}

/* waypoint expert: above the cube (yaw aligned) -> down -> close and wait -> lift */
static void s_expert_act(const mjModel *m, const int *ids, const mjData *d, fc_rng *r, void *ts, double *a) {
  (void)m;
  (void)r;
  s_expert *e = ts;
  const double *cp = d->xpos + 3 * ids[I_CUBE], *ep = d->site_xpos + 3 * ids[ENV_GRIP_SITE];
  const double *hq = d->xquat + 4 * ids[ENV_GRIP_HAND];
  double target[3] = {cp[0] + e->noise[0], cp[1] + e->noise[1], cp[2]};
  double grip = -1.0;
  double yaw_err = s_quarter(env_quat_yaw(d->xquat + 4 * ids[I_CUBE]) - env_quat_yaw(hq));
  double dxy = hypot(ep[0] - target[0], ep[1] - target[1]);
  switch (e->phase) {
    case 0: /* hover above the cube, aligned */
      target[2] = cp[2] + e->hover;
      if (dxy < e->tol && fabs(ep[2] - target[2]) < 0.01 && fabs(yaw_err) < 0.05) e->phase = 1;
      break;
    case 1: /* descend around it */
      target[2] = cp[2] + e->noise[2];
      if (dxy < e->tol && fabs(ep[2] - target[2]) < e->tol) e->phase = 2;
      break;
    case 2: /* close and wait */
      target[2] = cp[2] + e->noise[2];
      grip = 1.0;
      if (++e->wait >= e->grasp_wait) e->phase = 3;
      break;
    default: /* lift */
      target[0] = ep[0];
      target[1] = ep[1];
      target[2] = e->lift_z;
      grip = 1.0;
      break;
  }
  env_gripper_move(target, ep, e->gain, e->vmax, a);
  /* keep the hand upright, turn to the cube's yaw until it closes */
  env_gripper_orient(hq, e->phase <= 1 ? yaw_err : 0.0, a);
  a[6] = grip;
}

const env_task env_task_lift = {
    .name = "lift",
    .xml = s_xml,
    .action_dim = 7,
    .control_hz = 20.0,
    .horizon = 400,
    .nkeys = 4,
    .keys = {{"object", 10}, {"robot0_eef_pos", 3}, {"robot0_eef_quat", 4}, {"robot0_gripper_qpos", 2}},
    .init = s_init,
    .reset = s_reset,
    .act = env_gripper_act,
    .obs = s_obs,
    .success = s_success,
    .expert = s_expert_act,
    .view = {{0, 0, 0.84}, 0.5, 150, -25, 1},
};
