/* pol: policy files and closed-loop inference. */
#include "pol.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fc_base.h"
#include "fc_ckpt.h"

static const char *const s_methods[] = {"lfm", "fm", "mse"};
const char *pol_method_name(pol_method m) { return (unsigned)m < 3 ? s_methods[m] : "?"; }
int pol_method_parse(const char *s) { return fc_name_index(s, s_methods, 3); }

/* the parts must agree: dims, horizons, statistics, network sizes */
static int s_check(const pol_meta *m, const ds_norm *on, const ds_norm *an, const fc_lfm *f, char *err, size_t errsz) {
  if (m->method < POL_LFM || m->method > POL_MSE) return fc_set_err(err, errsz, "unknown policy method %d", m->method), -1;
  if (m->To < 1 || m->Tp < 1 || m->Ta < 1 || m->Ta > m->Tp || m->To > 64 || m->Tp > 256)
    return fc_set_err(err, errsz, "bad horizons To %d, Tp %d, Ta %d (need 1 <= Ta <= Tp)", m->To, m->Tp, m->Ta), -1;
  if (m->action_dim < 1 || m->action_dim > POL_MAX_ACTION || m->obs_dim < 1 || m->nkeys < 1 || m->nkeys > POL_MAX_KEYS)
    return fc_set_err(err, errsz, "bad policy dimensions (obs %d, action %d, %d keys)", m->obs_dim, m->action_dim, m->nkeys), -1;
  int sum = 0;
  for (int k = 0; k < m->nkeys; k++) sum += m->key_dims[k];
  if (sum != m->obs_dim) return fc_set_err(err, errsz, "observation keys add up to %d values, not %d", sum, m->obs_dim), -1;
  if (on->dim != m->obs_dim || an->dim != m->action_dim)
    return fc_set_err(err, errsz, "normalization statistics are for %d obs / %d action values, the policy has %d / %d",
                      on->dim, an->dim, m->obs_dim, m->action_dim), -1;
  if (f->cfg.net.dx != m->Tp * m->action_dim || f->cfg.net.dc != m->To * m->obs_dim)
    return fc_set_err(err, errsz, "the network takes %d-D chunks and %d-D conditions; the policy needs %d and %d",
                      f->cfg.net.dx, f->cfg.net.dc, m->Tp * m->action_dim, m->To * m->obs_dim), -1;
  if ((m->method == POL_MSE) != (f->cfg.objective == FC_OBJ_REGRESS) || (m->method == POL_FM && f->cfg.nblocks != 1))
    return fc_set_err(err, errsz, "method %s does not match its network (%d blocks, %s)", pol_method_name((pol_method)m->method),
                      f->cfg.nblocks, f->cfg.objective == FC_OBJ_REGRESS ? "regression" : "flow"), -1;
  for (int j = 0; j < m->action_dim; j++)
    if (!isfinite(m->action_low[j]) || !isfinite(m->action_high[j]) || !(m->action_low[j] <= m->action_high[j]))
      return fc_set_err(err, errsz, "action bounds of dimension %d are [%g, %g]: they must be finite with low <= high", j,
                        (double)m->action_low[j], (double)m->action_high[j]), -1;
  return 0;
}

pol_policy *pol_new(const pol_meta *meta, const ds_norm *on, const ds_norm *an, fc_lfm *flow, char *err, size_t errsz) {
  if (s_check(meta, on, an, flow, err, errsz)) return NULL;
  pol_policy *p = fc_calloc(1, sizeof(*p));
  p->meta = *meta;
  p->obs_norm = *on;
  p->act_norm = *an;
  p->flow = flow;
  return p;
}

void pol_free(pol_policy *p) {
  if (!p) return;
  fc_lfm_free(p->flow);
  free(p);
}

void pol_save(const pol_policy *p, fc_ckpt_writer *w) {
  fc_ckpt_add(w, "pol.meta", &p->meta, sizeof(p->meta));
  ds_norm_save(&p->obs_norm, w, "norm.obs");
  ds_norm_save(&p->act_norm, w, "norm.actions");
  fc_lfm_save(p->flow, w, NULL);
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
  ds_norm on, an;
  char why[400];
  if (fc_ckpt_get_exact(ck, "pol.meta", &meta, sizeof(meta), why, sizeof(why)) ||
      ds_norm_load(&on, ck, "norm.obs", why, sizeof(why)) || ds_norm_load(&an, ck, "norm.actions", why, sizeof(why)))
    return fc_set_err(err, errsz, "%s: %s", path, why), NULL;
  meta.env_args[POL_ENV_ARGS_MAX - 1] = 0;
  meta.version[sizeof(meta.version) - 1] = 0;
  for (int k = 0; k < POL_MAX_KEYS; k++) meta.keys[k][63] = 0;
  fc_lfm *f = fc_lfm_load(ck, NULL, why, sizeof(why));
  if (!f) return fc_set_err(err, errsz, "%s: %s", path, why), NULL;
  pol_policy *p = pol_new(&meta, &on, &an, f, why, sizeof(why));
  if (!p) {
    fc_lfm_free(f);
    return fc_set_err(err, errsz, "%s is mismatched: %s", path, why), NULL;
  }
  return p;
}

pol_policy *pol_load(const char *path, char *err, size_t errsz) {
  fc_ckpt *ck = fc_ckpt_read(path, "policy", err, errsz);
  if (!ck) return NULL;
  pol_policy *p = pol_load_ckpt(ck, path, err, errsz);
  fc_ckpt_free(ck);
  return p;
}

int pol_check_keys(const pol_policy *p, const char *const *keys, const int *dims, int nkeys, char *err, size_t errsz) {
  const pol_meta *m = &p->meta;
  if (nkeys != m->nkeys) return fc_set_err(err, errsz, "the policy takes %d observation keys, got %d", m->nkeys, nkeys), -1;
  for (int k = 0; k < nkeys; k++) {
    if (strcmp(keys[k], m->keys[k]))
      return fc_set_err(err, errsz, "observation key %d is '%s' but the policy was trained on '%s'", k, keys[k], m->keys[k]), -1;
    if (dims[k] != m->key_dims[k])
      return fc_set_err(err, errsz, "observation key '%s' has %d values but the policy was trained on %d", keys[k], dims[k],
                        m->key_dims[k]), -1;
  }
  return 0;
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
  pd->ws = fc_lfm_ws_new(p->flow, 1);
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
  fc_lfm_ws_free(pd->ws);
  free(pd);
}

void pol_reset(pol_data *pd, uint64_t seed) {
  pd->nseen = 0;
  pd->qlen = pd->qpos = 0;
  fc_rng_seed(&pd->rng, seed);
}

/* obs -> frame, normalized; -1 with a sentence naming the key when a value
 * is not finite before or after normalization */
static int s_frame(const pol_policy *p, const double *obs, float *frame, char *err, size_t errsz) {
  const pol_meta *m = &p->meta;
  const int O = m->obs_dim;
  for (int j = 0; j < O; j++) frame[j] = (float)obs[j];
  ds_norm_apply(&p->obs_norm, frame, 1);
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
  float frame[DS_NORM_MAX_DIM];
  FC_ASSERT(p->meta.obs_dim <= DS_NORM_MAX_DIM); /* pol_new: obs_dim = the statistics' dim */
  return s_frame(p, obs, frame, err, errsz);
}

int pol_observe(const pol_policy *p, pol_data *pd, const double *obs, char *err, size_t errsz) {
  const pol_meta *m = &p->meta;
  const int O = m->obs_dim;
  /* the newest normalized frame goes last; the first frame of an episode
   * fills the history (robomimic's begin padding) */
  float *frame = pd->frame;
  if (s_frame(p, obs, frame, err, errsz)) return -1;
  if (pd->nseen == 0) {
    for (int i = 0; i < m->To; i++) memcpy(pd->hist + (size_t)i * O, frame, (size_t)O * sizeof(float));
  } else {
    memmove(pd->hist, pd->hist + O, (size_t)(m->To - 1) * O * sizeof(float));
    memcpy(pd->hist + (size_t)(m->To - 1) * O, frame, (size_t)O * sizeof(float));
  }
  pd->nseen++;
  return 0;
}

void pol_forget(pol_data *pd) {
  pd->nseen = 0;
  pd->qlen = pd->qpos = 0;
}

int pol_sample(const pol_policy *p, pol_data *pd, double *actions, char *err, size_t errsz) {
  const pol_meta *m = &p->meta;
  const int A = m->action_dim;
  /* sample Tp actions conditioned on the history, keep the first Ta */
  memcpy(pd->cond, pd->hist, (size_t)m->To * m->obs_dim * sizeof(float));
  fc_rng_normal_fill(&pd->rng, pd->chunk, (size_t)m->Tp * A);
  fc_lfm_generate(p->flow, pd->ws, pd->chunk, pd->cond, 1, pd->sampler, pd->steps);
  pd->chunks++;
  /* every executed value finite once unnormalized, before any is written:
   * a NaN is never clipped into a command */
  float act[POL_MAX_ACTION];
  for (int i = 0; i < m->Ta; i++) {
    memcpy(act, pd->chunk + (size_t)i * A, (size_t)A * sizeof(float));
    ds_norm_invert(&p->act_norm, act, 1);
    for (int j = 0; j < A; j++)
      if (!isfinite(act[j]))
        return fc_set_err(err, errsz, "the policy sampled a non-finite action (step %d of the chunk, dimension %d): "
                          "its weights or normalization statistics are broken", i, j), -1;
  }
  int clipped = 0;
  for (int i = 0; i < m->Ta; i++) {
    memcpy(act, pd->chunk + (size_t)i * A, (size_t)A * sizeof(float));
    ds_norm_invert(&p->act_norm, act, 1);
    for (int j = 0; j < A; j++) {
      double v = act[j];
      if (v < m->action_low[j]) v = m->action_low[j], clipped++;
      else if (v > m->action_high[j]) v = m->action_high[j], clipped++;
      actions[(size_t)i * A + j] = v;
    }
  }
  pd->clipped += clipped;
  return clipped;
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
