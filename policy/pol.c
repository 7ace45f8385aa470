/* pol: policy files and closed-loop inference. */
#include "pol_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lfp_version.h"
#include "fc_base.h"
#include "fc_ckpt.h"

static const char *const s_methods[] = {"lfm", "fm", "mse", "dfm"};
int pol_meta_init(pol_meta *m, pol_method method, int To, int Tp, int Ta, int nkeys, const char *const *names,
                  const int *dims, int action_dim, const char *env_args, double control_hz, char *err, size_t errsz) {
  memset(m, 0, sizeof(*m));
  if (nkeys < 1 || nkeys > POL_MAX_KEYS)
    return fc_set_err(err, errsz, "a policy has 1 to %d observation keys, not %d", POL_MAX_KEYS, nkeys), -1;
  if (action_dim < 1 || action_dim > POL_MAX_ACTION)
    return fc_set_err(err, errsz, "a policy has 1 to %d action values, not %d", POL_MAX_ACTION, action_dim), -1;
  if (!env_args) env_args = "{}";
  if (strlen(env_args) >= sizeof(m->env_args))
    return fc_set_err(err, errsz, "env_args is too long (%zu bytes, at most %zu)", strlen(env_args),
                      sizeof(m->env_args) - 1), -1;
  int obs_dim = 0;
  for (int k = 0; k < nkeys; k++) {
    if (strlen(names[k]) >= sizeof(m->keys[k]))
      return fc_set_err(err, errsz, "observation key '%.40s...' is too long (at most %zu bytes)", names[k],
                        sizeof(m->keys[k]) - 1), -1;
    if (dims[k] < 1 || dims[k] > FC_NORM_MAX_DIM - obs_dim)
      return fc_set_err(err, errsz, "observation key '%s' has %d values: the keys may have 1 to %d in all", names[k],
                        dims[k], FC_NORM_MAX_DIM), -1;
    snprintf(m->keys[k], sizeof(m->keys[k]), "%s", names[k]);
    m->key_dims[k] = dims[k];
    obs_dim += dims[k];
  }
  m->method = method;
  m->To = To, m->Tp = Tp, m->Ta = Ta;
  m->obs_dim = obs_dim, m->action_dim = action_dim, m->nkeys = nkeys;
  for (int j = 0; j < action_dim; j++) m->action_low[j] = -1, m->action_high[j] = 1;
  snprintf(m->env_args, sizeof(m->env_args), "%s", env_args);
  snprintf(m->version, sizeof(m->version), "%s", LFP_VERSION);
  m->control_hz = control_hz;
  return 0;
}

void pol_dims(const pol_policy *p, int *To, int *Tp, int *Ta, int *obs_dim, int *action_dim) {
  if (To) *To = p->meta.To;
  if (Tp) *Tp = p->meta.Tp;
  if (Ta) *Ta = p->meta.Ta;
  if (obs_dim) *obs_dim = p->meta.obs_dim;
  if (action_dim) *action_dim = p->meta.action_dim;
}
int pol_nkeys(const pol_policy *p) { return p->meta.nkeys; }
const char *pol_key_name(const pol_policy *p, int k) { return k >= 0 && k < p->meta.nkeys ? p->meta.keys[k] : NULL; }
int pol_key_dim(const pol_policy *p, int k) { return k >= 0 && k < p->meta.nkeys ? p->meta.key_dims[k] : 0; }
const char *pol_method_of(const pol_policy *p) { return pol_method_name((pol_method)p->meta.method); }
double pol_control_hz(const pol_policy *p) { return p->meta.control_hz; }

const char *pol_method_name(pol_method m) { return (unsigned)m < 4 ? s_methods[m] : "?"; }
int pol_method_parse(const char *s) { return fc_name_index(s, s_methods, 4); }

/* the parts must agree: dims, horizons, statistics, network sizes */
static int s_check(const pol_meta *m, const fc_norm *on, const fc_norm *an, const fc_lfm *f, const fc_ae *ae, char *err,
                   size_t errsz) {
  if (m->method < POL_LFM || m->method > POL_DFM) return fc_set_err(err, errsz, "unknown policy method %d", m->method), -1;
  if (m->To < 1 || m->Tp < 1 || m->Ta < 1 || m->Ta > m->Tp || m->To > 64 || m->Tp > 256)
    return fc_set_err(err, errsz, "bad horizons To %d, Tp %d, Ta %d (need 1 <= Ta <= Tp)", m->To, m->Tp, m->Ta), -1;
  if (m->action_dim < 1 || m->action_dim > POL_MAX_ACTION || m->obs_dim < 1 || m->nkeys < 1 || m->nkeys > POL_MAX_KEYS)
    return fc_set_err(err, errsz, "bad policy dimensions (obs %d, action %d, %d keys)", m->obs_dim, m->action_dim, m->nkeys), -1;
  int64_t sum = 0;
  for (int k = 0; k < m->nkeys; k++) {
    if (m->key_dims[k] < 1 || m->key_dims[k] > m->obs_dim)
      return fc_set_err(err, errsz, "observation key %d has %d values, outside 1..%d", k, m->key_dims[k], m->obs_dim), -1;
    sum += m->key_dims[k];
  }
  if (sum != m->obs_dim)
    return fc_set_err(err, errsz, "observation keys add up to %lld values, not %d", (long long)sum, m->obs_dim), -1;
  if (on->dim != m->obs_dim || an->dim != m->action_dim)
    return fc_set_err(err, errsz, "normalization statistics are for %d obs / %d action values, the policy has %d / %d",
                      on->dim, an->dim, m->obs_dim, m->action_dim), -1;
  const int D = fc_net_dx(&f->cfg.net), C = fc_net_dc(&f->cfg.net);
  if (ae && (ae->cfg.dx != m->Tp * m->action_dim || ae->cfg.dz != D))
    return fc_set_err(err, errsz, "the autoencoder maps %d-D chunks to %d latent values; the policy has %d-D chunks and a "
                      "flow over %d values", ae->cfg.dx, ae->cfg.dz, m->Tp * m->action_dim, D), -1;
  if ((!ae && D != m->Tp * m->action_dim) || C != m->To * m->obs_dim)
    return fc_set_err(err, errsz, "the network takes %d-D chunks and %d-D conditions; the policy needs %d and %d", D, C,
                      m->Tp * m->action_dim, m->To * m->obs_dim), -1;
  if ((m->method == POL_MSE) != (f->cfg.objective == FC_OBJ_REGRESS) || (m->method == POL_DFM) != (f->cfg.objective == FC_OBJ_DFM) ||
      (m->method == POL_FM && f->cfg.nblocks != 1))
    return fc_set_err(err, errsz, "method %s does not match its network (%d blocks, %s)", pol_method_name((pol_method)m->method),
                      f->cfg.nblocks, f->cfg.objective == FC_OBJ_REGRESS ? "regression" : "flow"), -1;
  for (int j = 0; j < m->action_dim; j++)
    if (!isfinite(m->action_low[j]) || !isfinite(m->action_high[j]) || !(m->action_low[j] <= m->action_high[j]))
      return fc_set_err(err, errsz, "action bounds of dimension %d are [%g, %g]: they must be finite with low <= high", j,
                        (double)m->action_low[j], (double)m->action_high[j]), -1;
  return 0;
}

pol_policy *pol_new_latent(const pol_meta *meta, const fc_norm *on, const fc_norm *an, fc_lfm *flow, fc_ae *ae,
                           char *err, size_t errsz) {
  if (s_check(meta, on, an, flow, ae, err, errsz)) {
    fc_ae_free(ae);
    return NULL;
  }
  pol_policy *p = fc_calloc(1, sizeof(*p));
  p->meta = *meta;
  p->obs_norm = *on;
  p->act_norm = *an;
  p->flow = flow;
  p->latent = ae;
  return p;
}

pol_policy *pol_new(const pol_meta *meta, const fc_norm *on, const fc_norm *an, fc_lfm *flow, char *err, size_t errsz) {
  return pol_new_latent(meta, on, an, flow, NULL, err, errsz);
}

void pol_describe(const pol_policy *p, char *out, size_t n) {
  fc_net_describe(&p->flow->cfg.net, out, n);
  const size_t len = strlen(out);
  if (p->latent && len < n)
    snprintf(out + len, n - len, ", flowing in a latent of %d values (autoencoder width %d)", p->latent->cfg.dz,
             p->latent->cfg.width);
}

void pol_free(pol_policy *p) {
  if (!p) return;
  fc_lfm_free(p->flow);
  fc_ae_free(p->latent);
  free(p);
}

/* ---------- policy files ---------- */

/* pol.meta, field by field (section version 1; layout in pol.h) */
#define S_META_VERSION 1

static void s_meta_save(const pol_meta *m, fc_ckpt_writer *w) {
  fc_ckpt_buf b = {0};
  fc_ckpt_put_u32(&b, S_META_VERSION);
  const int32_t iv[7] = {m->method, m->To, m->Tp, m->Ta, m->obs_dim, m->action_dim, m->nkeys};
  for (int i = 0; i < 7; i++) fc_ckpt_put_i32(&b, iv[i]);
  for (int k = 0; k < m->nkeys; k++) {
    fc_ckpt_put_str(&b, m->keys[k]);
    fc_ckpt_put_i32(&b, m->key_dims[k]);
  }
  fc_ckpt_put_f32s(&b, m->action_low, (size_t)m->action_dim);
  fc_ckpt_put_f32s(&b, m->action_high, (size_t)m->action_dim);
  fc_ckpt_put_str(&b, m->env_args);
  fc_ckpt_put_str(&b, m->version);
  fc_ckpt_put_f64(&b, m->control_hz);
  fc_ckpt_add_buf(w, "pol.meta", &b);
}

/* the leading integers, each bounded (format 1 and 2 share them) */
static int s_meta_ints(fc_ckpt_cur *c, pol_meta *m) {
  return fc_ckpt_get_i32(c, "method", POL_LFM, POL_DFM, &m->method) || fc_ckpt_get_i32(c, "To", 1, 64, &m->To) ||
         fc_ckpt_get_i32(c, "Tp", 1, 256, &m->Tp) || fc_ckpt_get_i32(c, "Ta", 1, 256, &m->Ta) ||
         fc_ckpt_get_i32(c, "obs_dim", 1, FC_NORM_MAX_DIM, &m->obs_dim) ||
         fc_ckpt_get_i32(c, "action_dim", 1, POL_MAX_ACTION, &m->action_dim) ||
         fc_ckpt_get_i32(c, "nkeys", 1, POL_MAX_KEYS, &m->nkeys)
             ? -1
             : 0;
}

static int s_meta_hz(fc_ckpt_cur *c, const pol_meta *m) {
  if (!(m->control_hz >= 0 && m->control_hz <= 1e6))
    return fc_ckpt_cur_fail(c, "has control_hz = %g, outside 0..1e6", m->control_hz);
  return 0;
}

/* format 2: the layout of pol.h */
static int s_meta_read(fc_ckpt_cur *c, pol_meta *m) {
  uint32_t ver;
  if (fc_ckpt_cur_version(c, S_META_VERSION, &ver) || s_meta_ints(c, m)) return -1;
  for (int k = 0; k < m->nkeys; k++)
    if (fc_ckpt_get_str(c, "key name", m->keys[k], sizeof(m->keys[k])) ||
        fc_ckpt_get_i32(c, "key dim", 1, FC_NORM_MAX_DIM, &m->key_dims[k]))
      return -1;
  return fc_ckpt_get_f32s(c, "action_low", m->action_low, (size_t)m->action_dim) ||
                 fc_ckpt_get_f32s(c, "action_high", m->action_high, (size_t)m->action_dim) ||
                 fc_ckpt_get_str(c, "env_args", m->env_args, sizeof(m->env_args)) ||
                 fc_ckpt_get_str(c, "version", m->version, sizeof(m->version)) ||
                 fc_ckpt_get_f64(c, "control_hz", &m->control_hz) || s_meta_hz(c, m) || fc_ckpt_cur_end(c)
             ? -1
             : 0;
}

/* format 1: the struct as gcc/clang laid it out on x86-64 (1752 bytes):
 * 7 int32, char keys[8][64], int32 key_dims[8], float action_low[16],
 * action_high[16], char env_args[1024], version[16], 4 bytes of padding,
 * double control_hz. Fixed here, not taken from today's struct. */
static int s_meta_read_v1(fc_ckpt_cur *c, pol_meta *m) {
  char keys[8][64], env[1024], ver[16], pad[4];
  int32_t dims[8];
  float lo[16], hi[16];
  if (s_meta_ints(c, m) || fc_ckpt_get_bytes(c, "keys", keys, sizeof(keys)) ||
      fc_ckpt_get_bytes(c, "key_dims", dims, sizeof(dims)) || fc_ckpt_get_f32s(c, "action_low", lo, 16) ||
      fc_ckpt_get_f32s(c, "action_high", hi, 16) || fc_ckpt_get_bytes(c, "env_args", env, sizeof(env)) ||
      fc_ckpt_get_bytes(c, "version", ver, sizeof(ver)) || fc_ckpt_get_bytes(c, "padding", pad, sizeof(pad)) ||
      fc_ckpt_get_f64(c, "control_hz", &m->control_hz) || s_meta_hz(c, m) || fc_ckpt_cur_end(c))
    return -1;
  for (int k = 0; k < m->nkeys; k++) {
    if (dims[k] < 1 || dims[k] > FC_NORM_MAX_DIM)
      return fc_ckpt_cur_fail(c, "has key dim %d = %d, outside 1..%d", k, dims[k], FC_NORM_MAX_DIM);
    snprintf(m->keys[k], sizeof(m->keys[k]), "%.63s", keys[k]);
    m->key_dims[k] = dims[k];
  }
  memcpy(m->action_low, lo, (size_t)m->action_dim * sizeof(float));
  memcpy(m->action_high, hi, (size_t)m->action_dim * sizeof(float));
  snprintf(m->env_args, sizeof(m->env_args), "%.*s", (int)sizeof(env) - 1, env);
  snprintf(m->version, sizeof(m->version), "%.*s", (int)sizeof(ver) - 1, ver);
  return 0;
}

/* pol.distill (section version 2; layout in pol.h) */
#define S_DISTILL_VERSION 2

static void s_distill_save(const pol_distill *d, fc_ckpt_writer *w) {
  fc_ckpt_buf b = {0};
  fc_ckpt_put_u32(&b, S_DISTILL_VERSION);
  fc_ckpt_put_str(&b, d->teacher);
  fc_ckpt_put_u32(&b, d->teacher_crc);
  fc_ckpt_put_i32(&b, d->teacher_blocks);
  fc_ckpt_put_i32(&b, d->teacher_sampler);
  fc_ckpt_put_i32(&b, d->teacher_steps);
  fc_ckpt_put_i32(&b, d->teacher_nfe);
  fc_ckpt_put_i64(&b, d->steps);
  fc_ckpt_put_i32(&b, d->batch);
  fc_ckpt_put_u64(&b, d->seed);
  fc_ckpt_put_f32(&b, d->lr);
  fc_ckpt_put_i64(&b, d->pairs);
  fc_ckpt_add_buf(w, "pol.distill", &b);
}

/* the section when the file has one (d->present = 0 otherwise); -1 with why */
static int s_distill_read(const fc_ckpt *ck, pol_distill *d, char *why, size_t n) {
  memset(d, 0, sizeof(*d));
  if (!fc_ckpt_get(ck, "pol.distill", NULL)) return 0;
  fc_ckpt_cur c;
  uint32_t ver;
  if (fc_ckpt_cur_open(&c, ck, "pol.distill", why, n) || fc_ckpt_cur_version(&c, S_DISTILL_VERSION, &ver) ||
      fc_ckpt_get_str(&c, "teacher", d->teacher, sizeof(d->teacher)) ||
      fc_ckpt_get_u32(&c, "teacher_crc", &d->teacher_crc) ||
      fc_ckpt_get_i32(&c, "teacher_blocks", 1, FC_LFM_MAX_BLOCKS, &d->teacher_blocks) ||
      fc_ckpt_get_i32(&c, "teacher_sampler", FC_SAMPLER_EULER, FC_SAMPLER_RK4, &d->teacher_sampler) ||
      fc_ckpt_get_i32(&c, "teacher_steps", 1, 1 << 20, &d->teacher_steps) ||
      fc_ckpt_get_i32(&c, "teacher_nfe", 1, 1 << 30, &d->teacher_nfe) ||
      fc_ckpt_get_i64(&c, "steps", 1, INT64_MAX, &d->steps) || fc_ckpt_get_i32(&c, "batch", 1, INT32_MAX, &d->batch) ||
      fc_ckpt_get_u64(&c, "seed", &d->seed) || fc_ckpt_get_f32(&c, "lr", &d->lr) ||
      (ver >= 2 && fc_ckpt_get_i64(&c, "pairs", 0, (int64_t)1 << 24, &d->pairs)) || fc_ckpt_cur_end(&c))
    return -1;
  d->present = 1;
  return 0;
}

/* pol.origin (section version 1; layout in pol.h) */
#define S_ORIGIN_VERSION 1

static void s_origin_save(const pol_origin *o, fc_ckpt_writer *w) {
  fc_ckpt_buf b = {0};
  fc_ckpt_put_u32(&b, S_ORIGIN_VERSION);
  fc_ckpt_put_str(&b, o->data);
  fc_ckpt_put_str(&b, o->data_sha256);
  fc_ckpt_put_i64(&b, o->demos);
  fc_ckpt_put_i64(&b, o->train_windows);
  fc_ckpt_put_i64(&b, o->valid_windows);
  fc_ckpt_put_u64(&b, o->seed);
  fc_ckpt_put_i64(&b, o->steps);
  fc_ckpt_put_i32(&b, o->batch);
  fc_ckpt_put_f32(&b, o->lr);
  fc_ckpt_put_f64(&b, o->train_s);
  fc_ckpt_put_str(&b, o->command);
  fc_ckpt_add_buf(w, "pol.origin", &b);
}

static int s_origin_read(const fc_ckpt *ck, pol_origin *o, char *why, size_t n) {
  memset(o, 0, sizeof(*o));
  if (!fc_ckpt_get(ck, "pol.origin", NULL)) return 0;
  fc_ckpt_cur c;
  uint32_t ver;
  if (fc_ckpt_cur_open(&c, ck, "pol.origin", why, n) || fc_ckpt_cur_version(&c, S_ORIGIN_VERSION, &ver) ||
      fc_ckpt_get_str(&c, "data", o->data, sizeof(o->data)) ||
      fc_ckpt_get_str(&c, "data_sha256", o->data_sha256, sizeof(o->data_sha256)) ||
      fc_ckpt_get_i64(&c, "demos", 0, INT64_MAX, &o->demos) ||
      fc_ckpt_get_i64(&c, "train_windows", 0, INT64_MAX, &o->train_windows) ||
      fc_ckpt_get_i64(&c, "valid_windows", 0, INT64_MAX, &o->valid_windows) || fc_ckpt_get_u64(&c, "seed", &o->seed) ||
      fc_ckpt_get_i64(&c, "steps", 0, INT64_MAX, &o->steps) || fc_ckpt_get_i32(&c, "batch", 0, INT32_MAX, &o->batch) ||
      fc_ckpt_get_f32(&c, "lr", &o->lr) || fc_ckpt_get_f64(&c, "train_s", &o->train_s) ||
      fc_ckpt_get_str(&c, "command", o->command, sizeof(o->command)) || fc_ckpt_cur_end(&c))
    return -1;
  o->present = 1;
  return 0;
}

void pol_save(const pol_policy *p, fc_ckpt_writer *w) {
  s_meta_save(&p->meta, w);
  fc_norm_save(&p->obs_norm, w, "norm.obs");
  fc_norm_save(&p->act_norm, w, "norm.actions");
  fc_lfm_save(p->flow, w, NULL);
  if (p->distill.present) s_distill_save(&p->distill, w);
  if (p->origin.present) s_origin_save(&p->origin, w);
  if (p->latent) fc_ae_save(p->latent, w, "pol.latent");
}

uint32_t pol_params_crc(const pol_policy *p) {
  uint32_t crc = fc_crc32(0, p->flow->params, fc_lfm_nparams(p->flow) * sizeof(float));
  if (p->latent) crc = fc_crc32(crc, p->latent->params, fc_ae_nparams(&p->latent->cfg) * sizeof(float));
  return crc;
}

int pol_save_file(const pol_policy *p, const char *path, char *err, size_t errsz) {
  fc_ckpt_writer *w = fc_ckpt_writer_new("policy");
  pol_save(p, w);
  int rc = fc_ckpt_write(w, path, err, errsz);
  fc_ckpt_writer_free(w);
  return rc;
}

pol_policy *pol_load_ckpt(const fc_ckpt *ck, const char *path, char *err, size_t errsz) {
  pol_meta meta;
  fc_norm on, an;
  char why[400];
  fc_ckpt_cur c;
  pol_distill dist;
  pol_origin orig;
  memset(&meta, 0, sizeof(meta));
  if (fc_ckpt_cur_open(&c, ck, "pol.meta", why, sizeof(why)) ||
      (fc_ckpt_version(ck) < 2 ? s_meta_read_v1(&c, &meta) : s_meta_read(&c, &meta)) ||
      fc_norm_load(&on, ck, "norm.obs", why, sizeof(why)) || fc_norm_load(&an, ck, "norm.actions", why, sizeof(why)) ||
      s_distill_read(ck, &dist, why, sizeof(why)) || s_origin_read(ck, &orig, why, sizeof(why)))
    return fc_set_err(err, errsz, "%s: %s", path, why), NULL;
  /* the statistics must fit the metadata before the network is allocated */
  if (on.dim != meta.obs_dim || an.dim != meta.action_dim)
    return fc_set_err(err, errsz, "%s is mismatched: normalization statistics are for %d obs / %d action values, the policy has %d / %d",
                      path, on.dim, an.dim, meta.obs_dim, meta.action_dim), NULL;
  int no_latent = 0;
  fc_ae *ae = fc_ae_load(ck, "pol.latent", &no_latent, why, sizeof(why));
  if (!ae && !no_latent) return fc_set_err(err, errsz, "%s: %s", path, why), NULL;
  fc_lfm *f = fc_lfm_load(ck, NULL, why, sizeof(why));
  if (!f) {
    fc_ae_free(ae);
    return fc_set_err(err, errsz, "%s: %s", path, why), NULL;
  }
  pol_policy *p = pol_new_latent(&meta, &on, &an, f, ae, why, sizeof(why));
  if (!p) {
    fc_lfm_free(f);
    return fc_set_err(err, errsz, "%s is mismatched: %s", path, why), NULL;
  }
  if (dist.present && dist.teacher_blocks != f->cfg.nblocks) {
    pol_free(p);
    return fc_set_err(err, errsz, "%s is mismatched: section pol.distill names a teacher of %d blocks, the policy has %d", path,
                      (int)dist.teacher_blocks, f->cfg.nblocks), NULL;
  }
  p->distill = dist;
  p->origin = orig;
  return p;
}

pol_policy *pol_load(const char *path, char *err, size_t errsz) {
  fc_ckpt *ck = fc_ckpt_read(path, "policy", err, errsz);
  if (!ck) return NULL;
  pol_policy *p = pol_load_ckpt(ck, path, err, errsz);
  fc_ckpt_free(ck);
  return p;
}

int pol_nfe(const pol_policy *p, fc_sampler s, int steps) {
  return fc_lfm_nfe(p->flow, s, steps > 0 ? steps : p->flow->cfg.steps);
}

pol_data *pol_data_new(const pol_policy *p, uint64_t seed) {
  const pol_meta *m = &p->meta;
  pol_data *pd = fc_calloc(1, sizeof(*pd));
  pd->hist = fc_calloc((size_t)m->To * m->obs_dim, sizeof(float));
  pd->frame = fc_calloc((size_t)m->obs_dim, sizeof(float));
  pd->queue = fc_calloc((size_t)m->Ta * m->action_dim, sizeof(double));
  pd->cond = fc_calloc((size_t)m->To * m->obs_dim, sizeof(float));
  pd->chunk = fc_calloc((size_t)m->Tp * m->action_dim, sizeof(float));
  pd->prev = fc_calloc((size_t)m->Tp * m->action_dim, sizeof(float));
  pd->wts = fc_calloc((size_t)m->Tp * m->action_dim, sizeof(float));
  pd->ws = fc_lfm_ws_new(p->flow, 1);
  pd->ws->ode->bound = POL_STATE_BOUND;
  if (p->latent) {
    pd->z = fc_calloc((size_t)p->latent->cfg.dz, sizeof(float));
    pd->aews = fc_ae_ws_new(&p->latent->cfg, 1);
  }
  pd->sampler = p->flow->cfg.sampler;
  pd->steps = p->flow->cfg.steps;
  pol_reset(pd, seed);
  return pd;
}

void pol_data_free(pol_data *pd) {
  if (!pd) return;
  free(pd->hist);
  free(pd->frame);
  free(pd->queue);
  free(pd->cond);
  free(pd->chunk);
  free(pd->prev);
  free(pd->wts);
  free(pd->z);
  fc_ae_ws_free(pd->aews);
  fc_lfm_ws_free(pd->ws);
  free(pd);
}

void pol_reset(pol_data *pd, uint64_t seed) {
  pd->nseen = 0;
  pd->qlen = pd->qpos = 0;
  pd->has_chunk = 0;
  fc_rng_seed(&pd->rng, seed);
}

/* obs -> frame, normalized; -1 with a sentence naming the key when a value
 * is not finite before or after normalization */
static int s_frame(const pol_policy *p, const double *obs, float *frame, char *err, size_t errsz) {
  const pol_meta *m = &p->meta;
  const int O = m->obs_dim;
  for (int j = 0; j < O; j++) frame[j] = (float)obs[j];
  fc_norm_apply(&p->obs_norm, frame, 1);
  for (int j = 0, k = 0, base = 0; j < O; j++) {
    while (j >= base + m->key_dims[k]) base += m->key_dims[k++];
    if (!isfinite(obs[j]))
      return fc_set_err(err, errsz, "observation '%s' value %d is not finite (%g)", m->keys[k], j - base, obs[j]), -1;
    if (!isfinite(frame[j]))
      return fc_set_err(err, errsz, "observation '%s' value %d (%g) is out of float32's range once normalized", m->keys[k],
                        j - base, obs[j]), -1;
  }
  return 0;
}

int pol_check_obs(const pol_policy *p, const double *obs, char *err, size_t errsz) {
  float frame[FC_NORM_MAX_DIM];
  FC_ASSERT(p->meta.obs_dim <= FC_NORM_MAX_DIM); /* pol_new: obs_dim = the statistics' dim */
  return s_frame(p, obs, frame, err, errsz);
}

/* clip a normalized frame to +-POL_OBS_CLIP; the values clipped */
static int s_clip_frame(float *frame, int O) {
  int n = 0;
  for (int j = 0; j < O; j++)
    if (fabsf(frame[j]) > POL_OBS_CLIP) {
      frame[j] = frame[j] > 0 ? POL_OBS_CLIP : -POL_OBS_CLIP;
      n++;
    }
  return n;
}

/* push a normalized frame into a history of To frames (the newest last);
 * the first frame of an episode (nseen 0) fills it: robomimic's begin padding */
static void s_push(float *hist, const float *frame, int To, int O, int nseen) {
  if (nseen == 0) {
    for (int i = 0; i < To; i++) memcpy(hist + (size_t)i * O, frame, (size_t)O * sizeof(float));
  } else {
    memmove(hist, hist + O, (size_t)(To - 1) * O * sizeof(float));
    memcpy(hist + (size_t)(To - 1) * O, frame, (size_t)O * sizeof(float));
  }
}

int pol_observe(const pol_policy *p, pol_data *pd, const double *obs, char *err, size_t errsz) {
  const pol_meta *m = &p->meta;
  float *frame = pd->frame;
  if (s_frame(p, obs, frame, err, errsz)) return -1;
  pd->obs_clipped += s_clip_frame(frame, m->obs_dim);
  s_push(pd->hist, frame, m->To, m->obs_dim, pd->nseen);
  pd->nseen++;
  return 0;
}

void pol_forget(pol_data *pd) {
  pd->nseen = 0;
  pd->qlen = pd->qpos = 0;
}

void pol_new_episode(pol_data *pd) {
  pol_forget(pd);
  pd->has_chunk = 0;
}

void pol_set_sampler(const pol_policy *p, pol_data *pd, fc_sampler s, int steps) {
  pd->sampler = (int)s < 0 ? p->flow->cfg.sampler : s;
  pd->steps = steps <= 0 ? p->flow->cfg.steps : steps;
}

pol_counts pol_data_counts(const pol_data *pd) {
  return (pol_counts){pd->chunks, pd->clipped, pd->obs_clipped, pd->ws->ode->clamped};
}

int pol_data_frames(const pol_data *pd) { return pd->nseen; }
fc_rng *pol_data_rng(pol_data *pd) { return &pd->rng; }
int pol_data_queued(const pol_data *pd) { return pd->qlen - pd->qpos; }

/* the sampled chunk (pd->chunk, normalized) -> its first n actions (n x A), checked and clipped */
/* 0 when the first n actions of a normalized chunk are finite once
 * unnormalized; else -1 and a sentence naming the step and dimension (and
 * the batch row, when row >= 0) */
static int s_chunk_check(const pol_policy *p, const float *chunk, int n, int row, char *err, size_t errsz) {
  const int A = p->meta.action_dim;
  float act[POL_MAX_ACTION];
  for (int i = 0; i < n; i++) {
    memcpy(act, chunk + (size_t)i * A, (size_t)A * sizeof(float));
    fc_norm_invert(&p->act_norm, act, 1);
    for (int j = 0; j < A; j++)
      if (!isfinite(act[j])) {
        if (row >= 0)
          return fc_set_err(err, errsz, "the policy sampled a non-finite action (batch row %d, step %d of the chunk, "
                            "dimension %d): no actions", row, i, j), -1;
        return fc_set_err(err, errsz, "the policy sampled a non-finite action (step %d of the chunk, dimension %d): "
                          "its weights or normalization statistics are broken", i, j), -1;
      }
  }
  return 0;
}

/* the first n actions of a checked chunk, unnormalized and clipped to the
 * bounds, into actions (n, A); the values clipped */
static int s_chunk_write(const pol_policy *p, const float *chunk, int n, double *actions) {
  const pol_meta *m = &p->meta;
  const int A = m->action_dim;
  float act[POL_MAX_ACTION];
  int clipped = 0;
  for (int i = 0; i < n; i++) {
    memcpy(act, chunk + (size_t)i * A, (size_t)A * sizeof(float));
    fc_norm_invert(&p->act_norm, act, 1);
    for (int j = 0; j < A; j++) {
      double v = act[j];
      if (v < m->action_low[j]) v = m->action_low[j], clipped++;
      else if (v > m->action_high[j]) v = m->action_high[j], clipped++;
      actions[(size_t)i * A + j] = v;
    }
  }
  return clipped;
}

static int s_finish(const pol_policy *p, pol_data *pd, int n, double *actions, char *err, size_t errsz) {
  const pol_meta *m = &p->meta;
  FC_ASSERT(n >= 1 && n <= m->Tp);
  pd->chunks++;
  pd->has_chunk = 0;
  if (pd->ws->ode->clamped != pd->clamped_seen) {
    pd->clamped_seen = pd->ws->ode->clamped;
    return fc_set_err(err, errsz, "the policy's sampler diverged (its state left +-%g in normalized action units): the "
                      "observation is far from the demonstrations", (double)POL_STATE_BOUND), -1;
  }
  /* every executed value finite once unnormalized, before any is written:
   * a NaN is never clipped into a command */
  if (s_chunk_check(p, pd->chunk, n, -1, err, errsz)) return -1;
  const int clipped = s_chunk_write(p, pd->chunk, n, actions);
  pd->clipped += clipped;
  pd->has_chunk = 1;
  return clipped;
}

/* a chunk's start: the condition from the history, the noise into the
 * flow's state (pd->chunk, a latent policy's pd->z) */
static void s_chunk_begin(const pol_policy *p, pol_data *pd) {
  const pol_meta *m = &p->meta;
  memcpy(pd->cond, pd->hist, (size_t)m->To * m->obs_dim * sizeof(float));
  if (p->latent) fc_rng_normal_fill(&pd->rng, pd->z, (size_t)p->latent->cfg.dz);
  else fc_rng_normal_fill(&pd->rng, pd->chunk, (size_t)m->Tp * m->action_dim);
}

/* one chunk from the flow into pd->chunk (a latent policy: sampled in its
 * latent, then decoded) */
static void s_chunk_sample(const pol_policy *p, pol_data *pd) {
  if (!p->latent) {
    fc_lfm_sample(p->flow, pd->ws, pd->chunk, pd->cond, 1, pd->sampler, pd->steps, &pd->rng);
    return;
  }
  fc_lfm_sample(p->flow, pd->ws, pd->z, pd->cond, 1, pd->sampler, pd->steps, &pd->rng);
  fc_ae_decode_std(p->latent, pd->aews, pd->chunk, pd->z, 1);
}

int pol_sample_n(const pol_policy *p, pol_data *pd, int n, double *actions, char *err, size_t errsz) {
  /* sample Tp actions conditioned on the history, keep the first n */
  s_chunk_begin(p, pd);
  s_chunk_sample(p, pd);
  return s_finish(p, pd, n, actions, err, errsz);
}

int pol_sample(const pol_policy *p, pol_data *pd, double *actions, char *err, size_t errsz) {
  return pol_sample_n(p, pd, p->meta.Ta, actions, err, errsz);
}

struct pol_batch {
  int max_batch;
  fc_lfm_ws *ws;
  float *cond;  /* (max_batch, To * obs_dim) */
  float *x;     /* (max_batch, Tp * A) */
  float *z;     /* latent policies: (max_batch, d) the flow's state */
  fc_ae_ws *aews;
  float *frame; /* (obs_dim) */
  int64_t obs_clipped;
};

pol_batch *pol_batch_new(const pol_policy *p, int max_batch) {
  FC_ASSERT(max_batch >= 1);
  const pol_meta *m = &p->meta;
  pol_batch *b = fc_calloc(1, sizeof(*b));
  b->max_batch = max_batch;
  b->ws = fc_lfm_ws_new(p->flow, max_batch);
  b->ws->ode->bound = POL_STATE_BOUND;
  b->cond = fc_malloc(sizeof(float) * (size_t)max_batch * m->To * m->obs_dim);
  b->x = fc_malloc(sizeof(float) * (size_t)max_batch * m->Tp * m->action_dim);
  b->frame = fc_malloc(sizeof(float) * (size_t)m->obs_dim);
  if (p->latent) {
    b->z = fc_malloc(sizeof(float) * (size_t)max_batch * p->latent->cfg.dz);
    b->aews = fc_ae_ws_new(&p->latent->cfg, max_batch);
  }
  return b;
}

void pol_batch_free(pol_batch *b) {
  if (!b) return;
  fc_lfm_ws_free(b->ws);
  free(b->cond);
  free(b->x);
  free(b->frame);
  free(b->z);
  fc_ae_ws_free(b->aews);
  free(b);
}

int64_t pol_batch_obs_clipped(const pol_batch *b) { return b->obs_clipped; }

int pol_sample_batch(const pol_policy *p, pol_batch *b, const double *frames, int B, int nf, fc_sampler s, int steps,
                     fc_rng *rng, int n, double *actions, char *err, size_t errsz) {
  const pol_meta *m = &p->meta;
  const int O = m->obs_dim, A = m->action_dim, To = m->To, D = m->Tp * A;
  FC_ASSERT(B >= 1 && B <= b->max_batch && nf >= 1 && n >= 1 && n <= m->Tp);
  /* every frame checked and normalized before anything is drawn */
  int64_t oclip = 0;
  for (int r = 0; r < B; r++) {
    float *hist = b->cond + (size_t)r * To * O;
    for (int f = 0; f < nf; f++) {
      char why[384];
      if (s_frame(p, frames + ((size_t)r * nf + f) * O, b->frame, why, sizeof(why)))
        return fc_set_err(err, errsz, "batch row %d, frame %d: %s", r, f, why), -1;
      oclip += s_clip_frame(b->frame, O);
      s_push(hist, b->frame, To, O, f);
    }
  }
  b->obs_clipped += oclip;
  /* the noise row by row, as B successive pol_sample calls on rng draw it */
  const int Dz = p->latent ? p->latent->cfg.dz : D;
  float *state = p->latent ? b->z : b->x;
  for (int r = 0; r < B; r++) fc_rng_normal_fill(rng, state + (size_t)r * Dz, (size_t)Dz);
  const int64_t clamped0 = b->ws->ode->clamped;
  fc_lfm_sample(p->flow, b->ws, state, b->cond, B, s, steps, rng);
  if (p->latent) fc_ae_decode_std(p->latent, b->aews, b->x, b->z, B);
  if (b->ws->ode->clamped != clamped0)
    return fc_set_err(err, errsz, "the policy's sampler diverged on this batch (its state left +-%g in normalized "
                      "action units): no actions", (double)POL_STATE_BOUND), -1;
  /* every row checked before any is written */
  for (int r = 0; r < B; r++)
    if (s_chunk_check(p, b->x + (size_t)r * D, n, r, err, errsz)) return -1;
  int clipped = 0;
  for (int r = 0; r < B; r++) clipped += s_chunk_write(p, b->x + (size_t)r * D, n, actions + (size_t)r * n * A);
  return clipped;
}

void pol_rtc_weights(int Tp, int delay, int index, float *w) {
  const int overlap = Tp - index; /* new step j is old step j + index, planned for j < overlap */
  for (int j = 0; j < Tp; j++) {
    if (j >= overlap) w[j] = 0.0f;
    else if (j < delay) w[j] = 1.0f;
    else {
      const double c = (double)(overlap - j) / (double)(overlap - delay + 1);
      w[j] = (float)(c * expm1(c) / (exp(1.0) - 1.0));
    }
  }
}

int pol_sample_rtc(const pol_policy *p, pol_data *pd, fc_guide_ws *gws, const pol_rtc *r, int n, double *actions,
                   int *how, char *err, size_t errsz) {
  const pol_meta *m = &p->meta;
  const int A = m->action_dim, Tp = m->Tp, D = Tp * A;
  *how = POL_RTC_NONE;
  if (!pd->has_chunk || r->index < 0 || r->index >= Tp || p->flow->cfg.objective != FC_OBJ_FLOW)
    return pol_sample_n(p, pd, n, actions, err, errsz);
  const int d = r->delay < 0 ? 0 : r->delay > Tp - r->index ? Tp - r->index : r->delay;
  /* the old plan aligned to the new chunk's steps, and its weights per step */
  float wj[256];
  pol_rtc_weights(Tp, d, r->index, wj);
  for (int j = 0; j < Tp; j++)
    for (int a = 0; a < A; a++) {
      const int i = j * A + a;
      pd->prev[i] = j + r->index < Tp ? pd->chunk[(size_t)(j + r->index) * A + a] : 0.0f;
      pd->wts[i] = wj[j];
    }
  s_chunk_begin(p, pd);
  const int one_step = pd->steps == 1 && pd->sampler == FC_SAMPLER_EULER;
  if (one_step || p->latent) {
    /* nothing to guide in one step, and no guidance through a decoder:
     * sample, then blend towards the old plan */
    s_chunk_sample(p, pd);
    for (int i = 0; i < D; i++) pd->chunk[i] = pd->wts[i] * pd->prev[i] + (1.0f - pd->wts[i]) * pd->chunk[i];
    *how = POL_RTC_BLENDED;
  } else {
    fc_lfm_sample_guided(p->flow, pd->ws, gws, pd->chunk, pd->cond, 1, pd->sampler, pd->steps, pd->prev, pd->wts,
                         r->beta > 0 ? r->beta : POL_RTC_BETA);
    *how = POL_RTC_GUIDED;
  }
  /* the first d actions execute before this chunk lands: they are the old ones */
  memcpy(pd->chunk, pd->prev, (size_t)d * A * sizeof(float));
  return s_finish(p, pd, n, actions, err, errsz);
}

int pol_act(const pol_policy *p, pol_data *pd, const double *obs, double *action, char *err, size_t errsz) {
  const int A = p->meta.action_dim;
  if (pol_observe(p, pd, obs, err, errsz)) return -1;
  if (pd->qpos >= pd->qlen) {
    pd->qlen = pd->qpos = 0; /* empty until a whole chunk is good */
    if (pol_sample(p, pd, pd->queue, err, errsz) < 0) return -1;
    pd->qlen = p->meta.Ta;
  }
  memcpy(action, pd->queue + (size_t)pd->qpos * A, (size_t)A * sizeof(double));
  pd->qpos++;
  return 0;
}
