/* can: the Robomimic PickPlaceCan analog. Pick a can up from its start
 * region and put it into a bin.
 *
 * Geometry (metres, table top at z = 0.8): the can is a cylinder of radius
 * 3.3 cm and height 12 cm, 100 g, standing upright at x ~ U[-0.06, 0.06],
 * y ~ -0.17 + U[-0.05, 0.05] with yaw ~ U[-pi/2, pi/2] (a cylinder's yaw only
 * shows in its quaternion; half a turn keeps w >= 0.7, far from the q / -q
 * ambiguity). The bin is fixed (it is not observed): an open box without a
 * floor (the can stands on the table inside it), inner footprint 16 x 16 cm
 * centred at (0, 0.16), walls 1 cm thick and 7 cm high (rim at z = 0.87).
 * The gripper is lift's (gripper.c) with a wider opening: fingers 8.8 cm
 * apart when open, 4.5 cm travel each. The hand starts upright 22-30 cm above
 * the table with yaw ~ U[-0.4, 0.4].
 * Multi-point convex collisions (multiccd) let the can stand on its bottom
 * disc and let each finger hold it at several points; without them a
 * cylinder touches a box at one point and wobbles.
 * Actions (7, in [-1, 1]) as lift's: delta position x 0.05 m, delta rotation
 * (axis-angle) x 0.5 rad, gripper (-1 open, +1 closed). 20 Hz control, 2 ms
 * physics, horizon 400.
 * Success: the can rests in the bin, released: its centre within the bin's
 * inner footprint and below the rim, its speed under 3 cm/s and its angular
 * speed under 0.5 rad/s, and no contact between the gripper and the can. It
 * need not be upright: a can lying in the bin counts, one held in or above it
 * does not.
 * Observations as robomimic's Can (low-dim): object (14: can pos 3, can quat
 * xyzw 4, can pos in the eef frame 3, can quat relative to the eef xyzw 4;
 * both quaternions with w >= 0), robot0_eef_pos (3), robot0_eef_quat (xyzw,
 * 4), robot0_gripper_qpos (2).
 * Expert: above the can -> down -> close and wait -> lift over the rim ->
 * carry over the bin on a seeded arc -> lower -> open and wait -> rise, with
 * seeded hand yaw, hover height, speeds, gains, grasp height on the can, arc
 * height, drop point and release height, and small per-step noise while
 * moving. It starts over when the can slips from the fingers, is knocked
 * away or ends up outside the bin once let go, and grasps a fallen can
 * across its axis. */
#include <math.h>
#include <string.h>

#include "env_task.h"
#include "fc_base.h"

static const char s_xml[] =
    "<mujoco model=\"can\">\n"
    "  <compiler angle=\"radian\" autolimits=\"true\"/>\n"
    "  <option timestep=\"0.002\" integrator=\"implicit\" cone=\"elliptic\" impratio=\"10\" solver=\"Newton\">\n"
    "    <flag multiccd=\"enable\"/>\n"
    "  </option>\n"
    "  <size njmax=\"1000\" nconmax=\"200\"/>\n"
    "  <default>\n"
    "    <geom condim=\"4\" friction=\"1.5 0.005 0.0001\" solref=\"0.01 1\"/>\n"
    "  </default>\n"
    "  <worldbody>\n"
    "    <light pos=\"0 0 2\" dir=\"0 0 -1\"/>\n"
    "    <geom name=\"floor\" type=\"plane\" size=\"1 1 0.1\" condim=\"3\"/>\n"
    "    <geom name=\"table\" type=\"box\" pos=\"0 0 0.4\" size=\"0.4 0.4 0.4\" condim=\"3\"/>\n"
    "    <geom name=\"bin_floor\" type=\"box\" pos=\"0 0.16 0.8\" size=\"0.08 0.08 0.0005\" contype=\"0\" "
    "conaffinity=\"0\" rgba=\"0.3 0.5 0.8 1\"/>\n"
    "    <geom name=\"bin_n\" type=\"box\" pos=\"0 0.245 0.835\" size=\"0.09 0.005 0.035\" rgba=\"0.3 0.5 0.8 1\"/>\n"
    "    <geom name=\"bin_s\" type=\"box\" pos=\"0 0.075 0.835\" size=\"0.09 0.005 0.035\" rgba=\"0.3 0.5 0.8 1\"/>\n"
    "    <geom name=\"bin_e\" type=\"box\" pos=\"0.085 0.16 0.835\" size=\"0.005 0.08 0.035\" "
    "rgba=\"0.3 0.5 0.8 1\"/>\n"
    "    <geom name=\"bin_w\" type=\"box\" pos=\"-0.085 0.16 0.835\" size=\"0.005 0.08 0.035\" "
    "rgba=\"0.3 0.5 0.8 1\"/>\n"
    "    <body name=\"can\" pos=\"0 -0.17 0.86\">\n"
    "      <freejoint name=\"can\"/>\n"
    "      <geom name=\"can\" type=\"cylinder\" size=\"0.033 0.06\" mass=\"0.1\" rgba=\"0.8 0.2 0.2 1\"/>\n"
    "    </body>\n"
    ENV_GRIPPER_BODIES("0.06", "0.05", "0.045")
    "  </worldbody>\n"
    ENV_GRIPPER_ELEMENTS("0.045")
    "</mujoco>\n";

enum { I_CAN = ENV_GRIP_NIDS, I_CAN_QPOS, I_CAN_DOF };
#define S_TABLE_TOP 0.8
#define S_CAN_R 0.033
#define S_CAN_HH 0.06   /* half height */
#define S_START_Y (-0.17)
#define S_BIN_Y 0.16    /* bin centre (x = 0) */
#define S_BIN_HALF 0.08 /* inner half-size */
#define S_RIM 0.87
#define S_FINGER_IN 0.044 /* an open finger's inner face from the centre */
#define S_PALM_DZ 0.05    /* palm bottom above the grip site */
#define S_TIP_DZ 0.015    /* finger tips below it */

static int s_init(const mjModel *m, int *ids, char *err, size_t errsz) {
  int jcan;
  if (env_gripper_init(m, "can", ids, err, errsz) ||
      (ids[I_CAN] = env_id(m, "can", mjOBJ_BODY, "can", err, errsz)) < 0 ||
      (jcan = env_id(m, "can", mjOBJ_JOINT, "can", err, errsz)) < 0)
    return -1;
  ids[I_CAN_QPOS] = m->jnt_qposadr[jcan];
  ids[I_CAN_DOF] = m->jnt_dofadr[jcan];
  return 0;
}

/* the expert's phases */
enum { P_APPROACH, P_DESCEND, P_CLOSE, P_LIFT, P_CARRY, P_LOWER, P_RELEASE, P_RETREAT };

/* the expert's plan for one episode, drawn at reset, and its progress */
typedef struct {
  int phase, wait, regrasp;
  double yaw0;                 /* the hand's yaw over a standing can */
  double hover, grasp_dz;      /* finger tips over the can's top; palm over it when grasping (+8 mm) */
  double gain, vmax, vslow;    /* moving; descending and lowering */
  double tol, jitter;          /* alignment before descending; per-step noise */
  double grasp_wait, release_wait;
  double clear, arc;           /* can bottom over the rim while carrying, mid-way bump */
  double drop[2], release_h;   /* over the bin; can bottom above the table at release */
  double carry0;               /* horizontal distance when carrying began */
  double hold_dz;              /* can centre below the grip site once grasped */
  double noise[2], rise_z;
} s_expert;
_Static_assert(sizeof(s_expert) <= ENV_TASK_STATE, "can's expert state does not fit env_data");

static double s_u(fc_rng *r, double lo, double hi) { return lo + (hi - lo) * fc_rng_uniform(r); }

static void s_reset(const mjModel *m, const int *ids, mjData *d, fc_rng *r, void *ts) {
  (void)m;
  /* can: upright in its start region, random yaw */
  double *cq = d->qpos + ids[I_CAN_QPOS];
  double yaw = s_u(r, -0.5, 0.5) * FC_PI;
  cq[0] = s_u(r, -0.06, 0.06);
  cq[1] = S_START_Y + s_u(r, -0.05, 0.05);
  cq[2] = S_TABLE_TOP + S_CAN_HH;
  cq[3] = cos(0.5 * yaw);
  cq[4] = cq[5] = 0.0;
  cq[6] = sin(0.5 * yaw);
  /* hand: upright, 22-30 cm above the table, between the can and the bin */
  double hp[3], hyaw = s_u(r, -0.4, 0.4), hq[4] = {cos(0.5 * hyaw), 0.0, 0.0, sin(0.5 * hyaw)};
  hp[0] = s_u(r, -0.08, 0.08);
  hp[1] = s_u(r, -0.12, 0.04);
  hp[2] = 1.02 + s_u(r, 0.0, 0.08);
  env_gripper_place(ids, d, hp, hq);
  /* the expert's variation */
  s_expert *e = ts;
  e->phase = P_APPROACH;
  e->yaw0 = hyaw + s_u(r, -0.3, 0.3);
  e->hover = s_u(r, 0.07, 0.10);
  e->grasp_dz = s_u(r, 0.0, 0.015);
  e->gain = s_u(r, 0.7, 1.0);
  e->vmax = s_u(r, 0.2, 0.32); /* 1-1.6 cm per step at most */
  e->vslow = e->vmax * s_u(r, 0.5, 0.7);
  e->tol = s_u(r, 0.003, 0.006);
  e->jitter = s_u(r, 0.0, 0.04);
  e->grasp_wait = 6 + (int)fc_rng_below(r, 5);
  e->release_wait = 3 + (int)fc_rng_below(r, 4);
  e->clear = s_u(r, 0.03, 0.06);
  e->arc = s_u(r, 0.0, 0.05);
  e->drop[0] = s_u(r, -0.03, 0.03);
  e->drop[1] = S_BIN_Y + s_u(r, -0.03, 0.03);
  e->release_h = s_u(r, 0.005, 0.025);
  for (int i = 0; i < 2; i++) e->noise[i] = s_u(r, -0.002, 0.002);
}

/* q with w >= 0 (q and -q are the same rotation), as x y z w */
static void s_quat_canonical_xyzw(double *out, const double *wxyz) {
  double q[4];
  const double s = wxyz[0] < 0.0 ? -1.0 : 1.0;
  for (int i = 0; i < 4; i++) q[i] = s * wxyz[i];
  env_quat_xyzw(out, q);
}

static void s_obs(const mjModel *m, const int *ids, const mjData *d, double *o) {
  (void)m;
  const double *cp = d->xpos + 3 * ids[I_CAN], *cq = d->xquat + 4 * ids[I_CAN];
  const double *ep = d->site_xpos + 3 * ids[ENV_GRIP_SITE], *hq = d->xquat + 4 * ids[ENV_GRIP_HAND];
  /* object: can pos, can quat, the can's pose in the eef frame (robosuite's
   * Can_to_robot0_eef_pos / _quat) */
  memcpy(o, cp, 3 * sizeof(double));
  s_quat_canonical_xyzw(o + 3, cq);
  double dp[3] = {cp[0] - ep[0], cp[1] - ep[1], cp[2] - ep[2]}, hinv[4], rq[4];
  mju_rotVecMatT(o + 7, dp, d->site_xmat + 9 * ids[ENV_GRIP_SITE]);
  mju_negQuat(hinv, hq);
  mju_mulQuat(rq, hinv, cq);
  s_quat_canonical_xyzw(o + 10, rq);
  /* robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos */
  env_gripper_obs(ids, d, o + 14);
}

static int s_in_bin(const double *cp) {
  return fabs(cp[0]) < S_BIN_HALF && fabs(cp[1] - S_BIN_Y) < S_BIN_HALF && cp[2] < S_RIM;
}

static int s_success(const mjModel *m, const int *ids, const mjData *d) {
  const double *v = d->qvel + ids[I_CAN_DOF]; /* linear (world), angular (local) */
  return s_in_bin(d->xpos + 3 * ids[I_CAN]) && sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) < 0.03 &&
         sqrt(v[3] * v[3] + v[4] * v[4] + v[5] * v[5]) < 0.5 && !env_gripper_touches(m, ids, d, ids[I_CAN]);
}

/* wrap an angle to (-pi/2, pi/2]: the fingers look the same every half turn */
static double s_half(double a) {
  while (a > 0.5 * FC_PI) a -= FC_PI;
  while (a <= -0.5 * FC_PI) a += FC_PI;
  return a;
}

/* the can's vertical half-extent (its top is centre + it, its bottom centre - it) */
static double s_extent(const double *cmat) {
  const double az = fabs(cmat[8]);
  return S_CAN_HH * az + S_CAN_R * sqrt(fmax(0.0, 1.0 - az * az));
}

/* waypoint expert (see the top of the file) */
static void s_expert_act(const mjModel *m, const int *ids, const mjData *d, fc_rng *r, void *ts, double *a) {
  (void)m;
  s_expert *e = ts;
  const double *cp = d->xpos + 3 * ids[I_CAN], *cmat = d->xmat + 9 * ids[I_CAN];
  const double *ep = d->site_xpos + 3 * ids[ENV_GRIP_SITE], *hq = d->xquat + 4 * ids[ENV_GRIP_HAND];
  const double ext = s_extent(cmat), top = cp[2] + ext, bottom = cp[2] - ext;
  const double dxy = hypot(ep[0] - cp[0] - e->noise[0], ep[1] - cp[1] - e->noise[1]);
  const double finger = d->qpos[ids[ENV_GRIP_LF_QPOS]];
  /* a standing can is grasped at a seeded yaw, a fallen one across its axis */
  double yaw_des = fabs(cmat[8]) > 0.7 ? e->yaw0 : atan2(cmat[5], cmat[2]);
  double yaw_err = s_half(yaw_des - env_quat_yaw(hq));
  /* the grip site when grasping: palm clear of the can's top, tips clear of the table */
  const double grasp_z = fmax(top - S_PALM_DZ + 0.008 + e->grasp_dz, S_TABLE_TOP + S_TIP_DZ + 0.006);
  const double hover_z = top + S_TIP_DZ + e->hover;
  /* held phases: the can slipped out of the fingers (or they closed on nothing) */
  if (e->phase >= P_LIFT && e->phase <= P_LOWER &&
      (hypot(ep[0] - cp[0], ep[1] - cp[1]) > 0.03 || fabs(ep[2] - cp[2] - e->hold_dz) > 0.025 ||
       finger > S_FINGER_IN - S_CAN_R + 0.008)) {
    e->phase = P_APPROACH;
    e->regrasp++;
  }
  double target[3] = {cp[0] + e->noise[0], cp[1] + e->noise[1], hover_z}, grip = -1.0, v = e->vmax;
  int moving = 1;
  switch (e->phase) {
    case P_APPROACH: /* over the can, aligned; after a slip, rise first */
      if (e->regrasp && ep[2] < hover_z - 0.02 && dxy > 0.015) {
        target[0] = ep[0];
        target[1] = ep[1];
      }
      if (dxy < e->tol && fabs(ep[2] - hover_z) < 0.01 && fabs(yaw_err) < 0.05) e->phase = P_DESCEND;
      break;
    case P_DESCEND: /* down around it; start over if it was pushed away */
      target[2] = grasp_z;
      v = e->vslow;
      moving = 0;
      if (dxy > 0.015) e->phase = P_APPROACH, e->regrasp++;
      else if (dxy < e->tol && fabs(ep[2] - grasp_z) < 0.004) e->phase = P_CLOSE, e->wait = 0;
      break;
    case P_CLOSE: /* close and wait */
      target[2] = grasp_z;
      grip = 1.0;
      moving = 0;
      if (++e->wait >= e->grasp_wait) e->phase = P_LIFT, e->hold_dz = ep[2] - cp[2];
      break;
    case P_LIFT: /* straight up until the can's bottom is over the rim */
      target[0] = ep[0];
      target[1] = ep[1];
      target[2] = ep[2] + S_RIM + e->clear - bottom;
      grip = 1.0;
      if (bottom > S_RIM + 0.01) e->phase = P_CARRY, e->carry0 = hypot(ep[0] - e->drop[0], ep[1] - e->drop[1]);
      break;
    case P_CARRY: { /* over the drop point, the can's bottom on an arc over the rim */
      const double dist = hypot(ep[0] - e->drop[0], ep[1] - e->drop[1]);
      const double s = e->carry0 > 1e-9 ? fmin(1.0, fmax(0.0, 1.0 - dist / e->carry0)) : 1.0;
      target[0] = e->drop[0];
      target[1] = e->drop[1];
      target[2] = ep[2] + S_RIM + e->clear + 4.0 * e->arc * s * (1.0 - s) - bottom;
      grip = 1.0;
      if (dist < 0.01) e->phase = P_LOWER;
      break;
    }
    case P_LOWER: /* down until the can's bottom is at the release height */
      target[0] = e->drop[0];
      target[1] = e->drop[1];
      target[2] = ep[2] + S_TABLE_TOP + e->release_h - bottom;
      grip = 1.0;
      v = e->vslow;
      moving = 0;
      if (fabs(bottom - S_TABLE_TOP - e->release_h) < 0.004)
        e->phase = P_RELEASE, e->wait = 0, e->rise_z = ep[2] + 0.08;
      break;
    case P_RELEASE: /* open and wait */
      target[0] = ep[0];
      target[1] = ep[1];
      target[2] = ep[2];
      moving = 0;
      if (++e->wait >= e->release_wait) e->phase = P_RETREAT;
      break;
    default: /* rise out of the bin; risen with the can not in it (on a wall, say), start over */
      target[0] = ep[0];
      target[1] = ep[1];
      target[2] = e->rise_z;
      if (fabs(ep[2] - e->rise_z) < 0.01 && !s_in_bin(cp)) e->phase = P_APPROACH, e->regrasp++;
      break;
  }
  env_gripper_move(target, ep, e->gain, v, a);
  if (moving)
    for (int i = 0; i < 3; i++) a[i] += e->jitter * (2.0 * fc_rng_uniform(r) - 1.0);
  /* keep the hand upright; turn it only before grasping */
  env_gripper_orient(hq, e->phase <= P_DESCEND ? yaw_err : 0.0, a);
  a[6] = grip;
}

const env_task env_task_can = {
    .name = "can",
    .xml = s_xml,
    .action_dim = 7,
    .control_hz = 20.0,
    .horizon = 400,
    .nkeys = 4,
    .keys = {{"object", 14}, {"robot0_eef_pos", 3}, {"robot0_eef_quat", 4}, {"robot0_gripper_qpos", 2}},
    .init = s_init,
    .reset = s_reset,
    .act = env_gripper_act,
    .obs = s_obs,
    .success = s_success,
    .expert = s_expert_act,
    .view = {{0, 0.06, 0.86}, 0.95, 150, -35, 1},
};
