/* gripper: the mocap parallel-jaw gripper that lift and can share (its MJCF
 * is ENV_GRIPPER_BODIES / ENV_GRIPPER_ELEMENTS in env_task.h): name lookups,
 * placing it at reset, the 7-D delta action, its observations and the
 * feedback terms of the scripted experts. Not a task by itself. */
#include <math.h>
#include <string.h>

#include "env_task.h"
#include "fc_base.h"

int env_gripper_init(const mjModel *m, const char *task, int *ids, char *err, size_t errsz) {
  int jhand, jlf, jrf, target;
  if ((ids[ENV_GRIP_HAND] = env_id(m, task, mjOBJ_BODY, "hand", err, errsz)) < 0 ||
      (jhand = env_id(m, task, mjOBJ_JOINT, "hand", err, errsz)) < 0 ||
      (target = env_id(m, task, mjOBJ_BODY, "target", err, errsz)) < 0 ||
      (ids[ENV_GRIP_SITE] = env_id(m, task, mjOBJ_SITE, "grip", err, errsz)) < 0 ||
      (jlf = env_id(m, task, mjOBJ_JOINT, "lf", err, errsz)) < 0 ||
      (jrf = env_id(m, task, mjOBJ_JOINT, "rf", err, errsz)) < 0 ||
      (ids[ENV_GRIP_ACT] = env_id(m, task, mjOBJ_ACTUATOR, "grip", err, errsz)) < 0)
    return -1;
  if ((ids[ENV_GRIP_MOCAP] = m->body_mocapid[target]) < 0)
    return fc_set_err(err, errsz, "task %s: body 'target' of its model is not a mocap body", task), -1;
  ids[ENV_GRIP_HAND_QPOS] = m->jnt_qposadr[jhand];
  ids[ENV_GRIP_LF_QPOS] = m->jnt_qposadr[jlf];
  ids[ENV_GRIP_RF_QPOS] = m->jnt_qposadr[jrf];
  return 0;
}

void env_gripper_place(const int *ids, mjData *d, const double pos[3], const double quat[4]) {
  double *hq = d->qpos + ids[ENV_GRIP_HAND_QPOS];
  memcpy(hq, pos, 3 * sizeof(double));
  memcpy(hq + 3, quat, 4 * sizeof(double));
  memcpy(d->mocap_pos + 3 * ids[ENV_GRIP_MOCAP], hq, 3 * sizeof(double));
  memcpy(d->mocap_quat + 4 * ids[ENV_GRIP_MOCAP], hq + 3, 4 * sizeof(double));
  d->ctrl[ids[ENV_GRIP_ACT]] = 0.0;
}

void env_gripper_act(const mjModel *m, const int *ids, mjData *d, const double *a) {
  /* position and rotation deltas relative to the hand's current pose, read
   * from its free joint: after mj_forward it equals xpos / xquat, and a
   * restored state (env_set_state) holds it bit for bit */
  const double *hp = d->qpos + ids[ENV_GRIP_HAND_QPOS], *hq = hp + 3;
  double *mp = d->mocap_pos + 3 * ids[ENV_GRIP_MOCAP], *mq = d->mocap_quat + 4 * ids[ENV_GRIP_MOCAP];
  for (int i = 0; i < 3; i++) mp[i] = hp[i] + 0.05 * a[i];
  double aa[3] = {0.5 * a[3], 0.5 * a[4], 0.5 * a[5]}, dq[4];
  env_quat_axis_angle(dq, aa);
  mju_mulQuat(mq, dq, hq);
  mju_normalize4(mq);
  /* gripper: -1 open .. +1 closed over the finger's travel (its ctrlrange) */
  d->ctrl[ids[ENV_GRIP_ACT]] = 0.5 * (a[6] + 1.0) * m->actuator_ctrlrange[2 * ids[ENV_GRIP_ACT] + 1];
}

void env_quat_xyzw(double out[4], const double wxyz[4]) {
  out[0] = wxyz[1];
  out[1] = wxyz[2];
  out[2] = wxyz[3];
  out[3] = wxyz[0];
}

void env_gripper_obs(const int *ids, const mjData *d, double *o) {
  memcpy(o, d->site_xpos + 3 * ids[ENV_GRIP_SITE], 3 * sizeof(double));
  env_quat_xyzw(o + 3, d->xquat + 4 * ids[ENV_GRIP_HAND]);
  o[7] = d->qpos[ids[ENV_GRIP_LF_QPOS]];
  o[8] = -d->qpos[ids[ENV_GRIP_RF_QPOS]];
}

double env_clip1(double v) { return v < -1.0 ? -1.0 : v > 1.0 ? 1.0 : v; }

void env_gripper_move(const double target[3], const double eef[3], double gain, double vmax, double *a) {
  for (int i = 0; i < 3; i++) a[i] = vmax * env_clip1(gain * (target[i] - eef[i]) / (0.05 * vmax));
}

void env_gripper_orient(const double hq[4], double yaw_err, double *a) {
  /* roll and pitch from the hand's z axis, which should point up */
  double zaxis[3] = {2.0 * (hq[1] * hq[3] + hq[0] * hq[2]), 2.0 * (hq[2] * hq[3] - hq[0] * hq[1]),
                     1.0 - 2.0 * (hq[1] * hq[1] + hq[2] * hq[2])};
  a[3] = env_clip1(zaxis[1] / 0.5);
  a[4] = env_clip1(-zaxis[0] / 0.5);
  a[5] = env_clip1(0.8 * yaw_err / 0.5);
}

int env_gripper_touches(const mjModel *m, const int *ids, const mjData *d, int body) {
  for (int i = 0; i < d->ncon; i++) {
    const int b1 = m->geom_bodyid[d->contact[i].geom1], b2 = m->geom_bodyid[d->contact[i].geom2];
    if ((b1 == body && m->body_rootid[b2] == ids[ENV_GRIP_HAND]) ||
        (b2 == body && m->body_rootid[b1] == ids[ENV_GRIP_HAND]))
      return 1;
  }
  return 0;
}
