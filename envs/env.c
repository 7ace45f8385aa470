/* env: the task-independent part: the process-wide MuJoCo handlers
 * (env_init), loading MJCF from memory, MuJoCo errors as error returns,
 * stepping with instability and lost-contact detection, flat states. */
#include "env.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfp_version.h"
#include "env_task.h"
#include "fc_base.h"

static const env_task *const s_tasks[] = {&env_task_lift, &env_task_pusht, &env_task_avoid, &env_task_can};
#define S_NTASKS ((int)(sizeof(s_tasks) / sizeof(s_tasks[0])))

int env_task_count(void) { return S_NTASKS; }
const char *env_task_name(int i) { return (i >= 0 && i < S_NTASKS) ? s_tasks[i]->name : NULL; }

/* ---------- MuJoCo errors and warnings ---------- */

/* mju_error exits the process by default; ours jumps back to the env call
 * that is running on this thread, or aborts with the message when none is */
static _Thread_local jmp_buf *s_jump;
static _Thread_local char s_mj_msg[256];
static pthread_once_t s_init_once = PTHREAD_ONCE_INIT;
static atomic_int s_init_state; /* 0: env_init not called, 1: done, -1: version mismatch */

static void s_on_error(const char *msg) {
  snprintf(s_mj_msg, sizeof(s_mj_msg), "%s", msg);
  if (s_jump) longjmp(*s_jump, 1);
  fprintf(stderr, "lfp: MuJoCo error outside an env call: %s\n", msg);
  abort();
}

/* warnings are counted per mjData in d->warning (checked after each step);
 * the handler only keeps MuJoCo from printing them */
static void s_on_warning(const char *msg) { (void)msg; }

static void s_init_once_fn(void) {
  if (mj_version() != mjVERSION_HEADER) {
    atomic_store(&s_init_state, -1);
    return;
  }
  mju_user_error = s_on_error;
  mju_user_warning = s_on_warning;
  atomic_store(&s_init_state, 1);
}

int env_init(char *err, size_t errsz) {
  pthread_once(&s_init_once, s_init_once_fn);
  if (atomic_load(&s_init_state) != 1)
    return fc_set_err(err, errsz, "the MuJoCo library is version %d but lfp was compiled against version %d",
                      mj_version(), mjVERSION_HEADER), -1;
  return 0;
}

int env_id(const mjModel *m, const char *task, int type, const char *name, char *err, size_t errsz) {
  const int id = mj_name2id(m, type, name);
  if (id < 0) fc_set_err(err, errsz, "task %s: its model has no %s named '%s'", task, mju_type2Str(type), name);
  return id;
}

/* ---------- quaternions ---------- */

void env_quat_axis_angle(double q[4], const double aa[3]) {
  double ang = sqrt(aa[0] * aa[0] + aa[1] * aa[1] + aa[2] * aa[2]);
  if (ang < 1e-12) {
    q[0] = 1; q[1] = q[2] = q[3] = 0;
    return;
  }
  double s = sin(0.5 * ang) / ang;
  q[0] = cos(0.5 * ang);
  q[1] = aa[0] * s;
  q[2] = aa[1] * s;
  q[3] = aa[2] * s;
}

double env_quat_yaw(const double q[4]) {
  return atan2(2.0 * (q[0] * q[3] + q[1] * q[2]), 1.0 - 2.0 * (q[2] * q[2] + q[3] * q[3]));
}

/* ---------- model ---------- */

mjModel *env__load_xml(const char *name, const char *xml, char *err, size_t errsz) {
  mjVFS *vfs = fc_calloc(1, sizeof(mjVFS)); /* ~2 MB: on the heap */
  mj_defaultVFS(vfs);
  char fname[64];
  snprintf(fname, sizeof(fname), "%s.xml", name);
  size_t n = strlen(xml);
  mjModel *m = NULL;
  if (mj_makeEmptyFileVFS(vfs, fname, (int)n) == 0) {
    int i = mj_findFileVFS(vfs, fname);
    memcpy(vfs->filedata[i], xml, n);
    char mjerr[512] = "";
    m = mj_loadXML(fname, vfs, mjerr, sizeof(mjerr));
    if (!m) fc_set_err(err, errsz, "task %s: MuJoCo cannot compile its model: %s", name, mjerr);
  } else {
    fc_set_err(err, errsz, "task %s: cannot place its model in MuJoCo's virtual file system", name);
  }
  mj_deleteVFS(vfs);
  free(vfs);
  return m;
}

env_model *env_model_new(const char *task, char *err, size_t errsz) {
  if (atomic_load(&s_init_state) != 1)
    return fc_set_err(err, errsz, "task %s: env_init has not succeeded (call it once, before any env_model_new, "
                      "to install MuJoCo's error handlers)", task ? task : "(none)"), NULL;
  const env_task *t = NULL;
  for (int i = 0; i < S_NTASKS; i++)
    if (!strcmp(s_tasks[i]->name, task)) t = s_tasks[i];
  if (!t) {
    char list[128] = "";
    for (int i = 0; i < S_NTASKS; i++) {
      if (i) strncat(list, ", ", sizeof(list) - strlen(list) - 1);
      strncat(list, s_tasks[i]->name, sizeof(list) - strlen(list) - 1);
    }
    return fc_set_err(err, errsz, "unknown task '%s' (tasks: %s)", task, list), NULL;
  }
  jmp_buf jb;
  if (setjmp(jb)) {
    s_jump = NULL;
    return fc_set_err(err, errsz, "task %s: MuJoCo error: %s", task, s_mj_msg), NULL;
  }
  s_jump = &jb;
  mjModel *m = env__load_xml(t->name, t->xml, err, errsz);
  s_jump = NULL;
  if (!m) return NULL;
  env_model *em = fc_calloc(1, sizeof(*em));
  em->task = t;
  em->m = m;
  if (t->init(m, em->ids, err, errsz)) {
    env_model_free(em);
    return NULL;
  }
  for (int k = 0; k < t->nkeys; k++) em->obs_dim += t->keys[k].dim;
  em->state_dim = 1 + m->nq + m->nv + m->na + 7 * m->nmocap + m->nv + m->nu;
  em->substeps = (int)lround(1.0 / (t->control_hz * m->opt.timestep));
  char buf[512];
  snprintf(buf, sizeof(buf),
           "{\"env_name\": \"%s\", \"type\": 0, \"env_lib\": \"lfp\", \"lfp_version\": \"%s\", "
           "\"env_kwargs\": {\"horizon\": %d, \"control_hz\": %g, \"timestep\": %g, \"substeps\": %d, "
           "\"action_dim\": %d}}",
           t->name, LFP_VERSION, t->horizon, t->control_hz, m->opt.timestep, em->substeps, t->action_dim);
  em->args = fc_malloc(strlen(buf) + 1);
  strcpy(em->args, buf);
  return em;
}

void env_model_free(env_model *em) {
  if (!em) return;
  if (em->m) mj_deleteModel(em->m);
  free(em->args);
  free(em);
}

/* the string value of "env_name" in an env_args object */
static int s_env_name(const char *json, char *out, size_t n) {
  const char *p = json ? strstr(json, "\"env_name\"") : NULL;
  if (!p) return -1;
  p += 10;
  while (*p == ' ' || *p == ':') p++;
  if (*p++ != '"') return -1;
  size_t i = 0;
  while (*p && *p != '"' && i + 1 < n) out[i++] = *p++;
  out[i] = 0;
  return *p == '"' ? 0 : -1;
}

env_model *env_model_from_args(const char *json, char *err, size_t errsz) {
  char name[64];
  if (s_env_name(json, name, sizeof(name)))
    return fc_set_err(err, errsz, "env_args has no env_name: %.80s", json ? json : "(none)"), NULL;
  return env_model_new(name, err, errsz);
}

const char *env_name(const env_model *em) { return em->task->name; }
int env_action_dim(const env_model *em) { return em->task->action_dim; }
int env_obs_dim(const env_model *em) { return em->obs_dim; }
int env_nkeys(const env_model *em) { return em->task->nkeys; }
const env_key *env_keys(const env_model *em) { return em->task->keys; }
int env_state_dim(const env_model *em) { return em->state_dim; }

int env_policy_keys(const env_model *em, const char **names, int max) {
  const env_task *t = em->task;
  int n = 0;
  if (t->policy_keys[0])
    for (; n < max && t->policy_keys[n]; n++) names[n] = t->policy_keys[n];
  else
    for (; n < max && n < t->nkeys; n++) names[n] = t->keys[n].name;
  return n;
}

int env_obs_select(const env_model *em, const char *const *keys, const int *dims, int nkeys, int *off, char *err,
                   size_t errsz) {
  const env_task *t = em->task;
  for (int k = 0; k < nkeys; k++) {
    int col = 0, j = 0;
    for (; j < t->nkeys && strcmp(t->keys[j].name, keys[k]); j++) col += t->keys[j].dim;
    if (j == t->nkeys) {
      char list[256] = "";
      for (int i = 0; i < t->nkeys; i++) {
        if (i) strncat(list, ", ", sizeof(list) - strlen(list) - 1);
        strncat(list, t->keys[i].name, sizeof(list) - strlen(list) - 1);
      }
      return fc_set_err(err, errsz, "task %s does not observe '%s' (its keys: %s)", t->name, keys[k], list), -1;
    }
    if (t->keys[j].dim != dims[k])
      return fc_set_err(err, errsz, "task %s observes '%s' with %d values, not %d", t->name, keys[k], t->keys[j].dim,
                        dims[k]), -1;
    off[k] = col;
  }
  return 0;
}

void env_obs_gather(const int *off, const int *dims, int nkeys, const double *obs, double *out) {
  for (int k = 0; k < nkeys; k++) {
    memcpy(out, obs + off[k], sizeof(double) * (size_t)dims[k]);
    out += dims[k];
  }
}
int env_horizon(const env_model *em) { return em->task->horizon; }
double env_control_hz(const env_model *em) { return em->task->control_hz; }
int env_substeps(const env_model *em) { return em->substeps; }
const char *env_args_json(const env_model *em) { return em->args; }
const char *env_model_xml(const env_model *em) { return em->task->xml; }

/* ---------- data ---------- */

env_data *env_data_new(const env_model *em) {
  env_data *ed = fc_calloc(1, sizeof(*ed));
  ed->d = mj_makeData(em->m);
  return ed;
}

void env_data_free(env_data *ed) {
  if (!ed) return;
  mj_deleteData(ed->d);
  free(ed);
}

void env_reset(const env_model *em, env_data *ed, uint64_t seed) {
  mj_resetData(em->m, ed->d);
  fc_rng_seed(&ed->rng, seed);
  ed->t = 0;
  ed->failed = 0;
  ed->side = 0;
  memset(ed->ts, 0, sizeof(ed->ts));
  em->task->reset(em->m, em->ids, ed->d, &ed->rng, ed->ts);
  mj_forward(em->m, ed->d);
}

/* MuJoCo's warnings that end an episode, with the words env_step uses */
static const struct {
  int w;
  const char *what;
} s_fatal_warnings[] = {
    {mjWARN_BADQPOS, "unstable simulation (bad position; MuJoCo reset the state)"},
    {mjWARN_BADQVEL, "unstable simulation (bad velocity; MuJoCo reset the state)"},
    {mjWARN_BADQACC, "unstable simulation (bad acceleration; MuJoCo reset the state)"},
    {mjWARN_CONTACTFULL, "contacts lost (MuJoCo CONTACTFULL: the contact buffer is full)"},
    {mjWARN_CNSTRFULL, "constraints lost (MuJoCo CNSTRFULL: the constraint buffer is full)"},
};
#define S_NFATAL ((int)(sizeof(s_fatal_warnings) / sizeof(s_fatal_warnings[0])))

int env_step(const env_model *em, env_data *ed, const double *action, char *err, size_t errsz) {
  const mjModel *m = em->m;
  mjData *d = ed->d;
  /* a non-finite action is refused before anything moves */
  double a[ENV_MAX_ACTION];
  for (int i = 0; i < em->task->action_dim; i++) {
    const double v = action[i];
    if (!isfinite(v))
      return fc_set_err(err, errsz, "%s: action[%d] is %g at step %d; actions must be finite (nothing was applied)",
                        em->task->name, i, v, ed->t), ENV_BAD_ACTION;
    a[i] = v < -1.0 ? -1.0 : v > 1.0 ? 1.0 : v;
  }
  jmp_buf jb;
  if (setjmp(jb)) {
    s_jump = NULL;
    return fc_set_err(err, errsz, "%s: MuJoCo error at step %d: %s", em->task->name, ed->t, s_mj_msg), ENV_UNSTABLE;
  }
  s_jump = &jb;
  em->task->act(m, em->ids, d, a);
  /* 2.2.2 answers a non-finite or huge qpos, qvel or qacc with a warning and
   * a silent reset, and a full contact or constraint buffer with a warning
   * and dropped contacts or constraint rows: any of those ends the episode */
  int w0[S_NFATAL];
  for (int k = 0; k < S_NFATAL; k++) w0[k] = d->warning[s_fatal_warnings[k].w].number;
  for (int s = 0; s < em->substeps; s++) {
    mj_step(m, d);
    for (int k = 0; k < S_NFATAL; k++)
      if (d->warning[s_fatal_warnings[k].w].number != w0[k]) {
        s_jump = NULL;
        return fc_set_err(err, errsz, "%s: %s at step %d", em->task->name, s_fatal_warnings[k].what, ed->t),
               ENV_UNSTABLE;
      }
    if (em->task->failed && !ed->failed) ed->failed = em->task->failed(m, em->ids, d);
  }
  mj_forward(m, d); /* positions and sensors at the new time, for observations */
  s_jump = NULL;
  ed->t++;
  if (em->task->side && !ed->side) ed->side = em->task->side(m, em->ids, d);
  return 0;
}

void env_warning_counts(const env_data *ed, env_warnings *w) {
  const mjData *d = ed->d;
  w->bad_qpos = d->warning[mjWARN_BADQPOS].number;
  w->bad_qvel = d->warning[mjWARN_BADQVEL].number;
  w->bad_qacc = d->warning[mjWARN_BADQACC].number;
  w->contact_full = d->warning[mjWARN_CONTACTFULL].number;
  w->constraint_full = d->warning[mjWARN_CNSTRFULL].number;
}

void env_obs(const env_model *em, const env_data *ed, double *obs) { em->task->obs(em->m, em->ids, ed->d, obs); }
int env_success(const env_model *em, const env_data *ed) {
  return !ed->failed && em->task->success(em->m, em->ids, ed->d);
}
double env_reward(const env_model *em, const env_data *ed) { return env_success(em, ed) ? 1.0 : 0.0; }
int env_steps(const env_data *ed) { return ed->t; }
int env_done(const env_model *em, const env_data *ed) {
  return ed->t >= em->task->horizon || ed->failed || env_success(em, ed);
}

double env_coverage(const env_model *em, const env_data *ed) {
  return em->task->coverage ? em->task->coverage(em->m, em->ids, ed->d) : NAN;
}
int env_side(const env_model *em, const env_data *ed) {
  (void)em;
  return ed->side;
}
int env_failed(const env_data *ed) { return ed->failed; }
int env_has_coverage(const env_model *em) { return em->task->coverage != NULL; }
double env_coverage_goal(const env_model *em) { return em->task->coverage ? em->task->coverage_goal : 0.0; }
int env_has_side(const env_model *em) { return em->task->side != NULL; }

void env_expert(const env_model *em, env_data *ed, double *action) {
  em->task->expert(em->m, em->ids, ed->d, &ed->rng, ed->ts, action);
}

void env_get_state(const env_model *em, const env_data *ed, double *s) {
  const mjModel *m = em->m;
  const mjData *d = ed->d;
  size_t o = 0;
  s[o++] = d->time;
  memcpy(s + o, d->qpos, sizeof(double) * m->nq); o += (size_t)m->nq;
  memcpy(s + o, d->qvel, sizeof(double) * m->nv); o += (size_t)m->nv;
  memcpy(s + o, d->act, sizeof(double) * m->na); o += (size_t)m->na;
  memcpy(s + o, d->mocap_pos, sizeof(double) * 3 * m->nmocap); o += 3 * (size_t)m->nmocap;
  memcpy(s + o, d->mocap_quat, sizeof(double) * 4 * m->nmocap); o += 4 * (size_t)m->nmocap;
  memcpy(s + o, d->qacc_warmstart, sizeof(double) * m->nv); o += (size_t)m->nv;
  memcpy(s + o, d->ctrl, sizeof(double) * m->nu);
}

/* a flat state into d's time, qpos, qvel, act, mocap pose, warm start, ctrl */
static void s_put_state(const mjModel *m, mjData *d, const double *s) {
  size_t o = 0;
  d->time = s[o++];
  memcpy(d->qpos, s + o, sizeof(double) * m->nq); o += (size_t)m->nq;
  memcpy(d->qvel, s + o, sizeof(double) * m->nv); o += (size_t)m->nv;
  memcpy(d->act, s + o, sizeof(double) * m->na); o += (size_t)m->na;
  memcpy(d->mocap_pos, s + o, sizeof(double) * 3 * m->nmocap); o += 3 * (size_t)m->nmocap;
  memcpy(d->mocap_quat, s + o, sizeof(double) * 4 * m->nmocap); o += 4 * (size_t)m->nmocap;
  memcpy(d->qacc_warmstart, s + o, sizeof(double) * m->nv); o += (size_t)m->nv;
  memcpy(d->ctrl, s + o, sizeof(double) * m->nu);
}

void env_set_state(const env_model *em, env_data *ed, const double *s) {
  const mjModel *m = em->m;
  mjData *d = ed->d;
  mj_resetData(m, d);
  s_put_state(m, d, s);
  mj_forward(m, d);
  /* mj_forward normalizes the quaternions of qpos and mocap_quat in place
   * (which can move an already normalized one by an ulp, enough to flip a
   * contact at zero distance) and may refine the warm start: the recorded
   * state is what the next step started from */
  s_put_state(m, d, s);
}
