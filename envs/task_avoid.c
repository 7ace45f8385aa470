/* avoid: obstacle avoidance with two equally good ways round, the clean
 * multimodal test. A disc agent (r 3 cm) on a plane starts near (0, -0.3) m,
 * a cylinder obstacle (r 10 cm) stands at the origin, the goal is (0, 0.3).
 * The expert goes left or right with probability 1/2, independently of the
 * observation, so a regression policy averages the two and drives into the
 * obstacle while a generative one commits to a side.
 * Actions (2, in [-1, 1]): delta of the agent's position target, x 0.05 m.
 * 10 Hz control, 5 ms physics, horizon 100. Observations: agent_pos (2),
 * agent_vel (2). Success: within 4 cm of the goal without ever touching the
 * obstacle (touching ends the episode). The side is decided when the agent is
 * beside the obstacle (|y| < 0.1, |x| > 0.1). */
#include <math.h>
#include <string.h>

#include "env_task.h"
#include "fc_base.h"

static const char s_xml[] =
    "<mujoco model=\"avoid\">\n"
    "  <compiler angle=\"radian\" autolimits=\"true\"/>\n"
    "  <option timestep=\"0.005\" gravity=\"0 0 0\" integrator=\"implicit\"/>\n"
    "  <size njmax=\"400\" nconmax=\"80\"/>\n"
    "  <worldbody>\n"
    "    <light pos=\"0 0 2\" dir=\"0 0 -1\"/>\n"
    "    <geom name=\"floor\" type=\"plane\" size=\"1 1 0.1\" contype=\"0\" conaffinity=\"0\"/>\n"
    "    <geom name=\"obstacle\" type=\"cylinder\" pos=\"0 0 0.05\" size=\"0.1 0.05\" rgba=\"0.8 0.3 0.3 1\"/>\n"
    "    <site name=\"goal\" pos=\"0 0.3 0.05\" size=\"0.04\" rgba=\"0.2 0.8 0.2 0.5\"/>\n"
    "    <body name=\"agent\" pos=\"0 0 0.05\">\n"
    "      <joint name=\"x\" type=\"slide\" axis=\"1 0 0\" damping=\"1\"/>\n"
    "      <joint name=\"y\" type=\"slide\" axis=\"0 1 0\" damping=\"1\"/>\n"
    "      <geom name=\"agent\" type=\"cylinder\" size=\"0.03 0.02\" mass=\"0.5\"/>\n"
    "    </body>\n"
    "  </worldbody>\n"
    "  <actuator>\n"
    "    <general name=\"ax\" joint=\"x\" biastype=\"affine\" gainprm=\"60\" biasprm=\"0 -60 -8\"/>\n"
    "    <general name=\"ay\" joint=\"y\" biastype=\"affine\" gainprm=\"60\" biasprm=\"0 -60 -8\"/>\n"
    "  </actuator>\n"
    "</mujoco>\n";

enum { I_X, I_Y, I_VX, I_VY, I_AX, I_AY };
#define S_OBST_R 0.10
#define S_AGENT_R 0.03
#define S_GOAL_Y 0.3

static int s_init(const mjModel *m, int *ids, char *err, size_t errsz) {
  int jx, jy;
  if ((jx = env_id(m, "avoid", mjOBJ_JOINT, "x", err, errsz)) < 0 ||
      (jy = env_id(m, "avoid", mjOBJ_JOINT, "y", err, errsz)) < 0 ||
      (ids[I_AX] = env_id(m, "avoid", mjOBJ_ACTUATOR, "ax", err, errsz)) < 0 ||
      (ids[I_AY] = env_id(m, "avoid", mjOBJ_ACTUATOR, "ay", err, errsz)) < 0)
    return -1;
  ids[I_X] = m->jnt_qposadr[jx];
  ids[I_Y] = m->jnt_qposadr[jy];
  ids[I_VX] = m->jnt_dofadr[jx];
  ids[I_VY] = m->jnt_dofadr[jy];
  return 0;
}

typedef struct {
  int side, wp;            /* chosen side (-1, +1), current waypoint */
  double way[3][2];        /* waypoints: beside (before), beside (after), goal */
  double speed, tol;
} s_expert;

static void s_reset(const mjModel *m, const int *ids, mjData *d, fc_rng *r, void *ts) {
  (void)m;
  /* near-symmetric start below the obstacle */
  d->qpos[ids[I_X]] = (2.0 * fc_rng_uniform(r) - 1.0) * 0.01;
  d->qpos[ids[I_Y]] = -0.3 + (2.0 * fc_rng_uniform(r) - 1.0) * 0.02;
  d->ctrl[ids[I_AX]] = d->qpos[ids[I_X]];
  d->ctrl[ids[I_AY]] = d->qpos[ids[I_Y]];
  /* the expert's side: a fair coin, independent of the observation */
  s_expert *e = ts;
  e->side = fc_rng_uniform(r) < 0.5 ? -1 : 1;
  double lateral = 0.19 + 0.03 * fc_rng_uniform(r);
  e->way[0][0] = e->side * lateral;
  e->way[0][1] = -0.10 - 0.03 * fc_rng_uniform(r);
  e->way[1][0] = e->side * lateral;
  e->way[1][1] = 0.10 + 0.03 * fc_rng_uniform(r);
  e->way[2][0] = 0.0;
  e->way[2][1] = S_GOAL_Y;
  e->speed = 0.6 + 0.3 * fc_rng_uniform(r);
  e->tol = 0.03 + 0.02 * fc_rng_uniform(r);
  e->wp = 0;
}

static void s_act(const mjModel *m, const int *ids, mjData *d, const double *a) {
  (void)m;
  d->ctrl[ids[I_AX]] = d->qpos[ids[I_X]] + 0.05 * a[0];
  d->ctrl[ids[I_AY]] = d->qpos[ids[I_Y]] + 0.05 * a[1];
}

static void s_obs(const mjModel *m, const int *ids, const mjData *d, double *o) {
  (void)m;
  o[0] = d->qpos[ids[I_X]];
  o[1] = d->qpos[ids[I_Y]];
  o[2] = d->qvel[ids[I_VX]];
  o[3] = d->qvel[ids[I_VY]];
}

static int s_success(const mjModel *m, const int *ids, const mjData *d) {
  (void)m;
  return hypot(d->qpos[ids[I_X]], d->qpos[ids[I_Y]] - S_GOAL_Y) < 0.04;
}

/* touching: the agent's disc overlaps the obstacle's */
static int s_failed(const mjModel *m, const int *ids, const mjData *d) {
  (void)m;
  return hypot(d->qpos[ids[I_X]], d->qpos[ids[I_Y]]) < S_OBST_R + S_AGENT_R;
}

static int s_side(const mjModel *m, const int *ids, const mjData *d) {
  (void)m;
  double x = d->qpos[ids[I_X]], y = d->qpos[ids[I_Y]];
  if (fabs(y) < S_OBST_R && fabs(x) > S_OBST_R) return x < 0 ? -1 : 1;
  return 0;
}

/* waypoint follower: beside the obstacle on the chosen side, past it, goal */
static void s_expert_act(const mjModel *m, const int *ids, const mjData *d, fc_rng *r, void *ts, double *a) {
  (void)m;
  (void)r;
  s_expert *e = ts;
  double x = d->qpos[ids[I_X]], y = d->qpos[ids[I_Y]];
  if (e->wp < 2 && hypot(e->way[e->wp][0] - x, e->way[e->wp][1] - y) < e->tol) e->wp++;
  double dx = e->way[e->wp][0] - x, dy = e->way[e->wp][1] - y, dist = hypot(dx, dy);
  double v = dist / 0.05 < e->speed ? dist / 0.05 : e->speed; /* slow down at the end */
  a[0] = dist > 1e-9 ? v * dx / dist : 0.0;
  a[1] = dist > 1e-9 ? v * dy / dist : 0.0;
}

const env_task env_task_avoid = {
    .name = "avoid",
    .xml = s_xml,
    .action_dim = 2,
    .control_hz = 10.0,
    .horizon = 100,
    .nkeys = 2,
    .keys = {{"agent_pos", 2}, {"agent_vel", 2}},
    .init = s_init,
    .reset = s_reset,
    .act = s_act,
    .obs = s_obs,
    .success = s_success,
    .expert = s_expert_act,
    .side = s_side,
    .failed = s_failed,
    .view = {{0, 0.05, 0}, 1.1, 90, -60, 0},
};
