/* pol_mj: a policy on the user's MuJoCo model through a mapping file. */
#include "pol_mj.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_base.h"

#define S_MAX_SOURCES 64

typedef enum { S_SENSOR, S_QPOS, S_QVEL, S_SITE_POS, S_SITE_QUAT, S_BODY_POS, S_BODY_QUAT, S_NKINDS } s_kind;
static const char *const s_kinds[S_NKINDS] = {"sensor", "qpos", "qvel", "site_pos", "site_quat", "body_pos", "body_quat"};

typedef struct {
  s_kind kind;
  int id, adr, n; /* the object, its first value, how many */
  double scale, offset;
} s_source;

typedef struct {
  int actuator, delta;
  double scale, offset, low, high; /* low > high: unbounded */
} s_act;

struct pol_mj_map {
  int nsrc, obs_dim, action_dim;
  s_source src[S_MAX_SOURCES]; /* in the spec's key order */
  s_act act[POL_MAX_ACTION];
  double control_hz;
};

void pol_mj_spec_of(const pol_policy *p, pol_mj_spec *s) {
  memset(s, 0, sizeof(*s));
  s->nkeys = p->meta.nkeys;
  for (int k = 0; k < s->nkeys; k++) s->keys[k] = p->meta.keys[k], s->dims[k] = p->meta.key_dims[k];
  s->action_dim = p->meta.action_dim;
  s->control_hz = p->meta.control_hz;
}

/* mismatches, one sentence a line, as many as fit */
typedef struct {
  char *err;
  size_t errsz, len;
  int n;
  const char *path;
} s_errs;

static void s_bad(s_errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_bad(s_errs *e, const char *fmt, ...) {
  e->n++;
  if (!e->err || e->len + 1 >= e->errsz) return;
  if (e->len) e->err[e->len++] = '\n';
  int w = snprintf(e->err + e->len, e->errsz - e->len, "%s: ", e->path);
  if (w > 0) e->len += (size_t)w < e->errsz - e->len ? (size_t)w : e->errsz - e->len - 1;
  va_list ap;
  va_start(ap, fmt);
  w = vsnprintf(e->err + e->len, e->errsz - e->len, fmt, ap);
  va_end(ap);
  if (w > 0) e->len += (size_t)w < e->errsz - e->len ? (size_t)w : e->errsz - e->len - 1;
}

/* a number member (default def); 0, or -1 (reported) when present but not a finite number */
static int s_num(s_errs *e, const cJSON *o, const char *name, double def, double *v, const char *where) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
  *v = def;
  if (!x) return 0;
  if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) return s_bad(e, "%s: \"%s\" is not a finite number", where, name), -1;
  *v = x->valuedouble;
  return 0;
}

static int s_source_parse(s_errs *e, const mjModel *m, const cJSON *o, s_source *s, const char *where) {
  if (!cJSON_IsObject(o)) return s_bad(e, "%s is not an object like {\"site_pos\": \"NAME\"}", where), -1;
  int found = -1, nkind = 0;
  const char *name = NULL;
  for (int k = 0; k < S_NKINDS; k++) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, s_kinds[k]);
    if (!x) continue;
    nkind++, found = k;
    if (!cJSON_IsString(x)) return s_bad(e, "%s: \"%s\" must name a model element (a string)", where, s_kinds[k]), -1;
    name = x->valuestring;
  }
  for (const cJSON *x = o->child; x; x = x->next) {
    int known = !strcmp(x->string, "scale") || !strcmp(x->string, "offset");
    for (int k = 0; k < S_NKINDS; k++) known |= !strcmp(x->string, s_kinds[k]);
    if (!known)
      return s_bad(e, "%s: unknown field \"%s\" (a source is one of sensor, qpos, qvel, site_pos, site_quat, body_pos, "
                      "body_quat, with scale and offset)", where, x->string), -1;
  }
  if (nkind != 1)
    return s_bad(e, "%s names %d kinds of source; exactly one of sensor, qpos, qvel, site_pos, site_quat, body_pos, "
                    "body_quat", where, nkind), -1;
  static const int types[S_NKINDS] = {mjOBJ_SENSOR, mjOBJ_JOINT, mjOBJ_JOINT, mjOBJ_SITE, mjOBJ_SITE, mjOBJ_BODY, mjOBJ_BODY};
  static const char *const tnames[S_NKINDS] = {"sensor", "joint", "joint", "site", "site", "body", "body"};
  s->kind = (s_kind)found;
  s->id = mj_name2id(m, types[found], name);
  if (s->id < 0) return s_bad(e, "%s: the model has no %s named '%s'", where, tnames[found], name), -1;
  switch (s->kind) {
  case S_SENSOR: s->adr = m->sensor_adr[s->id], s->n = m->sensor_dim[s->id]; break;
  case S_QPOS:
  case S_QVEL: {
    const int t = m->jnt_type[s->id];
    s->n = t == mjJNT_FREE ? (s->kind == S_QPOS ? 7 : 6) : t == mjJNT_BALL ? (s->kind == S_QPOS ? 4 : 3) : 1;
    s->adr = s->kind == S_QPOS ? m->jnt_qposadr[s->id] : m->jnt_dofadr[s->id];
    break;
  }
  case S_SITE_POS:
  case S_BODY_POS: s->n = 3; break;
  default: s->n = 4;
  }
  if (s_num(e, o, "scale", 1.0, &s->scale, where) || s_num(e, o, "offset", 0.0, &s->offset, where)) return -1;
  return 0;
}

static int s_act_parse(s_errs *e, const mjModel *m, const cJSON *o, s_act *a, const char *where) {
  if (!cJSON_IsObject(o)) return s_bad(e, "%s is not an object like {\"actuator\": \"NAME\"}", where), -1;
  for (const cJSON *x = o->child; x; x = x->next)
    if (strcmp(x->string, "actuator") && strcmp(x->string, "mode") && strcmp(x->string, "scale") &&
        strcmp(x->string, "offset") && strcmp(x->string, "low") && strcmp(x->string, "high"))
      return s_bad(e, "%s: unknown field \"%s\" (an action has actuator, mode, scale, offset, low, high)", where,
                   x->string), -1;
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "actuator"), *mode = cJSON_GetObjectItemCaseSensitive(o, "mode");
  if (!cJSON_IsString(name)) return s_bad(e, "%s: \"actuator\" must name one of the model's actuators", where), -1;
  a->actuator = mj_name2id(m, mjOBJ_ACTUATOR, name->valuestring);
  if (a->actuator < 0) return s_bad(e, "%s: the model has no actuator named '%s'", where, name->valuestring), -1;
  a->delta = 0;
  if (mode && (!cJSON_IsString(mode) || (strcmp(mode->valuestring, "absolute") && strcmp(mode->valuestring, "delta"))))
    return s_bad(e, "%s: \"mode\" must be \"absolute\" or \"delta\"", where), -1;
  if (mode) a->delta = !strcmp(mode->valuestring, "delta");
  const int lim = m->actuator_ctrllimited[a->actuator];
  const double lo = lim ? m->actuator_ctrlrange[2 * a->actuator] : 1, hi = lim ? m->actuator_ctrlrange[2 * a->actuator + 1] : -1;
  if (s_num(e, o, "scale", 1.0, &a->scale, where) || s_num(e, o, "offset", 0.0, &a->offset, where) ||
      s_num(e, o, "low", lo, &a->low, where) || s_num(e, o, "high", hi, &a->high, where))
    return -1;
  const int given = cJSON_GetObjectItemCaseSensitive(o, "low") || cJSON_GetObjectItemCaseSensitive(o, "high");
  if (given && !(a->low < a->high)) return s_bad(e, "%s: low %g is not below high %g", where, a->low, a->high), -1;
  return 0;
}

pol_mj_map *pol_mj_map_load(const mjModel *m, const char *path, const pol_mj_spec *spec, char *err, size_t errsz) {
  if (err && errsz) err[0] = 0;
  s_errs e = {err, errsz, 0, 0, path};
  size_t n;
  char *text = fc_read_file(path, (size_t)1 << 20, &n, err, errsz); /* "cannot read PATH (...)" or "PATH is larger than 1 MB" */
  if (!text) return NULL;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
  if (!root) {
    fc_set_err(err, errsz, "%s: not valid JSON (near byte %ld)", path, end ? (long)(end - text) : 0L);
    free(text);
    return NULL;
  }
  free(text);
  pol_mj_map *map = fc_calloc(1, sizeof(*map));
  map->action_dim = spec->action_dim;
  if (!cJSON_IsObject(root)) s_bad(&e, "the mapping is not a JSON object with obs and actions");
  for (const cJSON *x = cJSON_IsObject(root) ? root->child : NULL; x; x = x->next)
    if (strcmp(x->string, "obs") && strcmp(x->string, "actions") && strcmp(x->string, "control_hz"))
      s_bad(&e, "unknown field \"%s\" (a mapping has obs, actions, control_hz)", x->string);
  s_num(&e, root, "control_hz", spec->control_hz, &map->control_hz, "the mapping");
  if (!(map->control_hz > 0)) s_bad(&e, "control_hz must be positive (the policy has none: give one)");
  const cJSON *obs = cJSON_GetObjectItemCaseSensitive(root, "obs"), *acts = cJSON_GetObjectItemCaseSensitive(root, "actions");
  if (!cJSON_IsObject(obs)) s_bad(&e, "\"obs\" must map each of the policy's keys to a list of sources");
  else {
    for (const cJSON *x = obs->child; x; x = x->next) {
      int known = 0;
      for (int k = 0; k < spec->nkeys; k++) known |= !strcmp(x->string, spec->keys[k]);
      if (!known) s_bad(&e, "obs key '%s' is not one the policy takes", x->string);
    }
    for (int k = 0; k < spec->nkeys; k++) {
      const cJSON *list = cJSON_GetObjectItemCaseSensitive(obs, spec->keys[k]);
      if (!list) {
        s_bad(&e, "the policy's key '%s' (%d values) has no entry in obs", spec->keys[k], spec->dims[k]);
        continue;
      }
      if (!cJSON_IsArray(list)) {
        s_bad(&e, "obs '%s' must be a list of sources", spec->keys[k]);
        continue;
      }
      int vals = 0, i = 0, ok = 1;
      for (const cJSON *x = list->child; x; x = x->next, i++) {
        char where[160];
        snprintf(where, sizeof(where), "obs '%s' source %d", spec->keys[k], i);
        if (map->nsrc == S_MAX_SOURCES) {
          s_bad(&e, "%s: more than %d sources in all", where, S_MAX_SOURCES);
          ok = 0;
          break;
        }
        if (s_source_parse(&e, m, x, &map->src[map->nsrc], where)) ok = 0;
        else vals += map->src[map->nsrc++].n;
      }
      if (ok && vals != spec->dims[k])
        s_bad(&e, "obs '%s' gives %d values; the policy takes %d", spec->keys[k], vals, spec->dims[k]);
      map->obs_dim += spec->dims[k];
    }
  }
  if (!cJSON_IsArray(acts)) s_bad(&e, "\"actions\" must list one entry per action dimension");
  else {
    const int na = cJSON_GetArraySize(acts);
    if (na != spec->action_dim) s_bad(&e, "actions has %d entries; the policy makes %d-D actions", na, spec->action_dim);
    int i = 0;
    for (const cJSON *x = acts->child; x && i < POL_MAX_ACTION; x = x->next, i++) {
      char where[64];
      snprintf(where, sizeof(where), "action %d", i);
      s_act_parse(&e, m, x, &map->act[i], where);
    }
  }
  cJSON_Delete(root);
  if (e.n) return free(map), NULL;
  return map;
}

void pol_mj_map_free(pol_mj_map *map) { free(map); }
int pol_mj_map_obs_dim(const pol_mj_map *map) { return map->obs_dim; }

void pol_mj_map_obs(const pol_mj_map *map, const mjModel *m, const mjData *d, double *obs) {
  int o = 0;
  for (int i = 0; i < map->nsrc; i++) {
    const s_source *s = &map->src[i];
    mjtNum q[4];
    const mjtNum *v;
    switch (s->kind) {
    case S_SENSOR: v = d->sensordata + s->adr; break;
    case S_QPOS: v = d->qpos + s->adr; break;
    case S_QVEL: v = d->qvel + s->adr; break;
    case S_SITE_POS: v = d->site_xpos + 3 * s->id; break;
    case S_SITE_QUAT: mju_mat2Quat(q, d->site_xmat + 9 * s->id), v = q; break;
    case S_BODY_POS: v = d->xpos + 3 * s->id; break;
    default: v = d->xquat + 4 * s->id;
    }
    for (int j = 0; j < s->n; j++) obs[o++] = (double)v[j] * s->scale + s->offset;
  }
  (void)m;
}

int pol_mj_map_act(const pol_mj_map *map, const mjModel *m, mjData *d, const double *action) {
  int clamped = 0;
  for (int i = 0; i < map->action_dim; i++) {
    const s_act *a = &map->act[i];
    double c = a->delta ? d->ctrl[a->actuator] + action[i] * a->scale : action[i] * a->scale + a->offset;
    if (a->low <= a->high) {
      if (c < a->low) c = a->low, clamped++;
      else if (c > a->high) c = a->high, clamped++;
    }
    d->ctrl[a->actuator] = c;
  }
  (void)m;
  return clamped;
}

int pol_mj_map_substeps(const pol_mj_map *map, const mjModel *m) {
  const double k = 1.0 / (map->control_hz * m->opt.timestep);
  return k < 1.5 ? 1 : (int)floor(k + 0.5);
}

struct pol_mj {
  pol_mj_map *map;
  const pol_policy *p; /* an in-process policy, or NULL for an actor */
  pol_data *pd;
  pol_mj_actor actor;
  int64_t tick, control_steps, refused, clamped;
  int substeps;
  double obs[FC_NORM_MAX_DIM];
  char last_error[512];
};

pol_mj *pol_mj_new(const mjModel *m, const char *map_path, const pol_policy *p, uint64_t seed, char *err,
                   size_t errsz) {
  pol_mj_spec spec;
  pol_mj_spec_of(p, &spec);
  pol_mj_map *map = pol_mj_map_load(m, map_path, &spec, err, errsz);
  if (!map) return NULL;
  pol_mj *a = fc_calloc(1, sizeof(*a));
  a->map = map;
  a->p = p;
  a->pd = pol_data_new(p, seed);
  a->substeps = pol_mj_map_substeps(map, m);
  return a;
}

pol_mj *pol_mj_new_actor(const mjModel *m, const char *map_path, const pol_mj_spec *spec, const pol_mj_actor *actor,
                         char *err, size_t errsz) {
  pol_mj_map *map = pol_mj_map_load(m, map_path, spec, err, errsz);
  if (!map) return NULL;
  pol_mj *a = fc_calloc(1, sizeof(*a));
  a->map = map;
  a->actor = *actor;
  a->substeps = pol_mj_map_substeps(map, m);
  return a;
}

void pol_mj_free(pol_mj *a) {
  if (!a) return;
  pol_data_free(a->pd);
  pol_mj_map_free(a->map);
  free(a);
}

void pol_mj_reset(pol_mj *a, uint64_t seed) {
  if (a->pd) pol_reset(a->pd, seed);
  else if (a->actor.reset) a->actor.reset(a->actor.ctx, seed);
  a->tick = 0;
}

const pol_mj_map *pol_mj_get_map(const pol_mj *a) { return a->map; }

int pol_mj_step(pol_mj *a, const mjModel *m, mjData *d, char *err, size_t errsz) {
  if (a->tick++ % a->substeps) return 0; /* between control steps the control holds */
  a->control_steps++;
  pol_mj_map_obs(a->map, m, d, a->obs);
  double act[POL_MAX_ACTION];
  if (a->pd ? pol_act(a->p, a->pd, a->obs, act, err, errsz) : a->actor.act(a->actor.ctx, a->obs, act, err, errsz)) {
    a->refused++;
    return -1;
  }
  a->clamped += pol_mj_map_act(a->map, m, d, act);
  return 0;
}

pol_mj_stats pol_mj_get_stats(const pol_mj *a) {
  return (pol_mj_stats){a->control_steps, a->refused, a->clamped, a->pd ? pol_data_counts(a->pd) : (pol_counts){0, 0, 0, 0}};
}

const char *pol_mj_last_error(const pol_mj *a) { return a->last_error; }

/* the installed controller (mjcb_control has no user pointer) */
static pol_mj *s_installed;
static const mjModel *s_installed_model;

static void s_control_cb(const mjModel *m, mjData *d) {
  pol_mj *a = s_installed;
  if (!a || m != s_installed_model) return;
  char err[512];
  if (pol_mj_step(a, m, d, err, sizeof(err)) && !a->last_error[0]) snprintf(a->last_error, sizeof(a->last_error), "%s", err);
}

int pol_mj_install(pol_mj *a, const mjModel *m, char *err, size_t errsz) {
  if (mjcb_control && mjcb_control != s_control_cb)
    return fc_set_err(err, errsz, "mjcb_control is already set by someone else: lfp will not replace it"), -1;
  if (s_installed && s_installed != a)
    return fc_set_err(err, errsz, "another lfp controller is installed as mjcb_control (pol_mj_uninstall it first)"), -1;
  s_installed = a, s_installed_model = m;
  mjcb_control = s_control_cb;
  return 0;
}

void pol_mj_uninstall(void) {
  if (mjcb_control == s_control_cb) mjcb_control = NULL;
  s_installed = NULL, s_installed_model = NULL;
}
