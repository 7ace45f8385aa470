/* lift: the Robomimic Lift analog. A table (top at z = 0.8), a 4 cm cube
 * (50 g) with random position (+-3 cm) and yaw, and a parallel-jaw gripper: a
 * free "hand" welded to a mocap target, two slide fingers coupled by a joint
 * equality, one position actuator.
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
    "    <body name=\"target\" mocap=\"true\" pos=\"0 0 1.0\"/>\n"
    "    <body name=\"hand\" pos=\"0 0 1.0\">\n"
    "      <freejoint name=\"hand\"/>\n"
    "      <geom name=\"palm\" type=\"box\" size=\"0.015 0.045 0.01\" mass=\"0.3\" condim=\"3\"/>\n"
    "      <site name=\"grip\" pos=\"0 0 -0.06\" size=\"0.005\"/>\n"
    "      <body name=\"lf\" pos=\"0 0.035 -0.045\">\n"
    "        <joint name=\"lf\" type=\"slide\" axis=\"0 -1 0\" range=\"0 0.03\" damping=\"2\"/>\n"
    "        <geom name=\"lf\" type=\"box\" size=\"0.01 0.006 0.03\" mass=\"0.05\"/>\n"
    "      </body>\n"
    "      <body name=\"rf\" pos=\"0 -0.035 -0.045\">\n"
    "        <joint name=\"rf\" type=\"slide\" axis=\"0 1 0\" range=\"0 0.03\" damping=\"2\"/>\n"
    "        <geom name=\"rf\" type=\"box\" size=\"0.01 0.006 0.03\" mass=\"0.05\"/>\n"
    "      </body>\n"
    "    </body>\n"
    "  </worldbody>\n"
    "  <contact>\n"
    "    <exclude body1=\"hand\" body2=\"lf\"/>\n"
    "    <exclude body1=\"hand\" body2=\"rf\"/>\n"
    "  </contact>\n"
    "  <equality>\n"
    "    <weld body1=\"target\" body2=\"hand\" solref=\"0.02 1\"/>\n"
    "    <joint joint1=\"lf\" joint2=\"rf\"/>\n"
    "  </equality>\n"
    "  <actuator>\n"
    "    <position name=\"grip\" joint=\"lf\" kp=\"200\" ctrlrange=\"0 0.03\"/>\n"
    "  </actuator>\n"
    "</mujoco>\n";

enum { I_CUBE, I_CUBE_QPOS, I_HAND, I_HAND_QPOS, I_MOCAP, I_GRIP, I_LF_QPOS, I_RF_QPOS, I_ACT };
#define S_TABLE_TOP 0.8
#define S_HALF 0.02

static int s_init(const mjModel *m, int *ids, char *err, size_t errsz) {
  int jcube, jhand, jlf, jrf, target;
  if ((ids[I_CUBE] = env_id(m, "lift", mjOBJ_BODY, "cube", err, errsz)) < 0 ||
      (jcube = env_id(m, "lift", mjOBJ_JOINT, "cube", err, errsz)) < 0 ||
      (ids[I_HAND] = env_id(m, "lift", mjOBJ_BODY, "hand", err, errsz)) < 0 ||
      (jhand = env_id(m, "lift", mjOBJ_JOINT, "hand", err, errsz)) < 0 ||
      (target = env_id(m, "lift", mjOBJ_BODY, "target", err, errsz)) < 0 ||
      (ids[I_GRIP] = env_id(m, "lift", mjOBJ_SITE, "grip", err, errsz)) < 0 ||
      (jlf = env_id(m, "lift", mjOBJ_JOINT, "lf", err, errsz)) < 0 ||
      (jrf = env_id(m, "lift", mjOBJ_JOINT, "rf", err, errsz)) < 0 ||
      (ids[I_ACT] = env_id(m, "lift", mjOBJ_ACTUATOR, "grip", err, errsz)) < 0)
    return -1;
  if ((ids[I_MOCAP] = m->body_mocapid[target]) < 0)
    return fc_set_err(err, errsz, "task lift: body 'target' of its model is not a mocap body"), -1;
  ids[I_CUBE_QPOS] = m->jnt_qposadr[jcube];
  ids[I_HAND_QPOS] = m->jnt_qposadr[jhand];
  ids[I_LF_QPOS] = m->jnt_qposadr[jlf];
  ids[I_RF_QPOS] = m->jnt_qposadr[jrf];
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
  double *hq = d->qpos + ids[I_HAND_QPOS];
  hq[0] = (2.0 * fc_rng_uniform(r) - 1.0) * 0.08;
  hq[1] = (2.0 * fc_rng_uniform(r) - 1.0) * 0.08;
  hq[2] = 1.0 + 0.08 * fc_rng_uniform(r);
  hq[3] = 1.0;
  hq[4] = hq[5] = hq[6] = 0.0;
  memcpy(d->mocap_pos + 3 * ids[I_MOCAP], hq, 3 * sizeof(double));
  memcpy(d->mocap_quat + 4 * ids[I_MOCAP], hq + 3, 4 * sizeof(double));
  d->ctrl[ids[I_ACT]] = 0.0;
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

static void s_act(const mjModel *m, const int *ids, mjData *d, const double *a) {
  (void)m;
  /* position and rotation deltas relative to the hand's current pose */
  const double *hp = d->xpos + 3 * ids[I_HAND], *hq = d->xquat + 4 * ids[I_HAND];
  double *mp = d->mocap_pos + 3 * ids[I_MOCAP], *mq = d->mocap_quat + 4 * ids[I_MOCAP];
  for (int i = 0; i < 3; i++) mp[i] = hp[i] + 0.05 * a[i];
  double aa[3] = {0.5 * a[3], 0.5 * a[4], 0.5 * a[5]}, dq[4];
  env_quat_axis_angle(dq, aa);
  mju_mulQuat(mq, dq, hq);
  mju_normalize4(mq);
  d->ctrl[ids[I_ACT]] = 0.5 * (a[6] + 1.0) * 0.03;
}

static void s_quat_xyzw(double *out, const double *wxyz) {
  out[0] = wxyz[1];
  out[1] = wxyz[2];
  out[2] = wxyz[3];
  out[3] = wxyz[0];
}

static void s_obs(const mjModel *m, const int *ids, const mjData *d, double *o) {
  (void)m;
  const double *cp = d->xpos + 3 * ids[I_CUBE], *cq = d->xquat + 4 * ids[I_CUBE];
  const double *ep = d->site_xpos + 3 * ids[I_GRIP];
  /* object: cube pos, cube quat (xyzw), eef - cube */
  memcpy(o, cp, 3 * sizeof(double));
  s_quat_xyzw(o + 3, cq);
  for (int i = 0; i < 3; i++) o[7 + i] = ep[i] - cp[i];
  /* robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos */
  memcpy(o + 10, ep, 3 * sizeof(double));
  s_quat_xyzw(o + 13, d->xquat + 4 * ids[I_HAND]);
  o[17] = d->qpos[ids[I_LF_QPOS]];
  o[18] = -d->qpos[ids[I_RF_QPOS]];
}

static int s_success(const mjModel *m, const int *ids, const mjData *d) {
  (void)m;
  return d->xpos[3 * ids[I_CUBE] + 2] > S_TABLE_TOP + 0.04;
}

static double s_clip(double v) { return v < -1.0 ? -1.0 : v > 1.0 ? 1.0 : v; }

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
  const double *cp = d->xpos + 3 * ids[I_CUBE], *ep = d->site_xpos + 3 * ids[I_GRIP];
  const double *hq = d->xquat + 4 * ids[I_HAND];
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
  for (int i = 0; i < 3; i++) a[i] = e->vmax * s_clip(e->gain * (target[i] - ep[i]) / (0.05 * e->vmax));
  /* keep the hand upright (roll, pitch from its z axis), turn to the cube's yaw */
  double zaxis[3] = {2.0 * (hq[1] * hq[3] + hq[0] * hq[2]), 2.0 * (hq[2] * hq[3] - hq[0] * hq[1]),
                     1.0 - 2.0 * (hq[1] * hq[1] + hq[2] * hq[2])};
  a[3] = s_clip(zaxis[1] / 0.5);
  a[4] = s_clip(-zaxis[0] / 0.5);
  a[5] = e->phase <= 1 ? s_clip(0.8 * yaw_err / 0.5) : 0.0;
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
    .act = s_act,
    .obs = s_obs,
    .success = s_success,
    .expert = s_expert_act,
};
