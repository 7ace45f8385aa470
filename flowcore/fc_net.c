/* fc_net: one table of operations per network kind, and the dispatch that
 * every user of a network goes through. What a kind shares with the others
 * (the fc_mlp.h API shape) is wrapped by S_NET_COMMON; what is its own
 * (defaults, bounds, width matching, description, checkpoint fields) is
 * written out below it. No network arithmetic here: that is the kind's
 * module. */
#include "fc_net.h"

#include <string.h>

#include "fc_base.h"

typedef struct {
  const char *name;
  /* the kind's own */
  void (*config_default)(fc_net_config *cfg, int dx, int dc);
  void (*set_io)(fc_net_config *cfg, int dx, int dc, int horizon);
  int (*check)(const fc_net_config *cfg, char *err, size_t errsz);
  void (*match)(fc_net_config *out, int copies); /* out holds the config to resize */
  void (*describe)(const fc_net_config *cfg, char *out, size_t n);
  void (*put)(fc_ckpt_buf *b, const fc_net_config *cfg);
  int (*get)(fc_ckpt_cur *c, fc_net_config *cfg);
  /* the common API shape (S_NET_COMMON) */
  int (*dx)(const fc_net_config *cfg);
  int (*dc)(const fc_net_config *cfg);
  size_t (*nparams)(const fc_net_config *cfg);
  double (*macs)(const fc_net_config *cfg);
  int (*tensors)(const fc_net_config *cfg, fc_tensor_info *out, int max);
  void (*bind)(fc_net *net); /* the kind's view of net->cfg and net->params */
  void (*init)(fc_net *net, fc_rng *rng);
  void *(*ws_new)(const fc_net_config *cfg, int max_batch);
  void (*ws_free)(void *ws);
  void (*forward)(const fc_net *net, void *ws, float *y, const float *t, const float *x, const float *c, int B);
  void (*backward)(const fc_net *net, void *ws, float *dparams, int accumulate, float *dx, float *dc,
                   const float *dy, int B);
  void *(*ws_new_ref)(const fc_net_config *cfg, int max_batch);
  void (*ws_free_ref)(void *ws);
  void (*forward_ref)(const fc_net_config *cfg, const double *params, void *ws, double *y, const double *t,
                      const double *x, const double *c, int B);
  void (*backward_ref)(const fc_net_config *cfg, const double *params, void *ws, double *dparams, int accumulate,
                       double *dx, double *dc, const double *dy, int B);
} s_ops;

/* The operations of a module with fc_mlp.h's API shape, K its prefix and
 * the name of its member in fc_net_config and fc_net (mlp -> fc_mlp_*,
 * cfg->mlp, net->mlp): defines the s_K_* that S_COMMON_OPS(K) lists in the
 * kind's table. */
#define S_NET_COMMON(K)                                                                                          \
  static int s_##K##_dx(const fc_net_config *cfg) { return cfg->K.dx; }                                         \
  static int s_##K##_dc(const fc_net_config *cfg) { return cfg->K.dc; }                                         \
  static size_t s_##K##_nparams(const fc_net_config *cfg) { return fc_##K##_nparams(&cfg->K); }                 \
  static double s_##K##_macs(const fc_net_config *cfg) { return fc_##K##_macs(&cfg->K); }                       \
  static int s_##K##_tensors(const fc_net_config *cfg, fc_tensor_info *out, int max) {                         \
    return fc_##K##_tensors(&cfg->K, out, max);                                                                 \
  }                                                                                                             \
  static void s_##K##_bind(fc_net *net) { fc_##K##_bind(&net->K, &net->cfg.K, net->params); }                  \
  static void s_##K##_init(fc_net *net, fc_rng *rng) { fc_##K##_init(&net->K, rng); }                           \
  static void *s_##K##_ws_new(const fc_net_config *cfg, int max_batch) {                                        \
    return fc_##K##_ws_new(&cfg->K, max_batch);                                                                 \
  }                                                                                                             \
  static void s_##K##_ws_free(void *ws) { fc_##K##_ws_free(ws); }                                                \
  static void s_##K##_forward(const fc_net *net, void *ws, float *y, const float *t, const float *x,            \
                              const float *c, int B) {                                                          \
    fc_##K##_forward(&net->K, ws, y, t, x, c, B);                                                               \
  }                                                                                                             \
  static void s_##K##_backward(const fc_net *net, void *ws, float *dparams, int accumulate, float *dx,          \
                               float *dc, const float *dy, int B) {                                             \
    fc_##K##_backward(&net->K, ws, dparams, accumulate, dx, dc, dy, B);                                         \
  }                                                                                                             \
  static void *s_##K##_ws_new_ref(const fc_net_config *cfg, int max_batch) {                                    \
    return fc_##K##_ws_new_ref(&cfg->K, max_batch);                                                             \
  }                                                                                                             \
  static void s_##K##_ws_free_ref(void *ws) { fc_##K##_ws_free_ref(ws); }                                        \
  static void s_##K##_forward_ref(const fc_net_config *cfg, const double *params, void *ws, double *y,          \
                                  const double *t, const double *x, const double *c, int B) {                   \
    fc_##K##_forward_ref(&cfg->K, params, ws, y, t, x, c, B);                                                   \
  }                                                                                                             \
  static void s_##K##_backward_ref(const fc_net_config *cfg, const double *params, void *ws, double *dparams,   \
                                   int accumulate, double *dx, double *dc, const double *dy, int B) {           \
    fc_##K##_backward_ref(&cfg->K, params, ws, dparams, accumulate, dx, dc, dy, B);                             \
  }
#define S_COMMON_OPS(K)                                                                                          \
  .dx = s_##K##_dx, .dc = s_##K##_dc, .nparams = s_##K##_nparams, .macs = s_##K##_macs,                         \
  .tensors = s_##K##_tensors, .bind = s_##K##_bind, .init = s_##K##_init, .ws_new = s_##K##_ws_new,             \
  .ws_free = s_##K##_ws_free, .forward = s_##K##_forward, .backward = s_##K##_backward,                         \
  .ws_new_ref = s_##K##_ws_new_ref, .ws_free_ref = s_##K##_ws_free_ref, .forward_ref = s_##K##_forward_ref,     \
  .backward_ref = s_##K##_backward_ref

/* ---------- mlp ---------- */

S_NET_COMMON(mlp)

static void s_mlp_default(fc_net_config *cfg, int dx, int dc) { fc_mlp_config_default(&cfg->mlp, dx, dc); }

static void s_mlp_set_io(fc_net_config *cfg, int dx, int dc, int horizon) {
  cfg->mlp.dx = dx; /* x is one flat vector to the MLP: no time axis */
  cfg->mlp.dc = dc;
}

static int s_mlp_check(const fc_net_config *cfg, char *err, size_t errsz) {
  const fc_mlp_config *m = &cfg->mlp;
  if (fc_mlp_config_check(m, err, errsz)) return -1;
  if (m->width > FC_NET_MAX_WIDTH || m->dx > FC_NET_MAX_DIM || m->dc > FC_NET_MAX_DIM || m->temb > FC_NET_MAX_TEMB)
    return fc_set_err(err, errsz, "network width %d, dimensions %d and %d or time embedding %d beyond flowcore's bounds "
                      "(%d, %d, %d)", m->width, m->dx, m->dc, m->temb, FC_NET_MAX_WIDTH, FC_NET_MAX_DIM,
                      FC_NET_MAX_TEMB), -1;
  return 0;
}

static void s_mlp_match(fc_net_config *out, int copies) { out->mlp.width = fc_mlp_width_matching(&out->mlp, copies); }

static void s_mlp_describe(const fc_net_config *cfg, char *out, size_t n) {
  const fc_mlp_config *m = &cfg->mlp;
  snprintf(out, n, "mlp width %d depth %d %s %s", m->width, m->depth, fc_cond_name(m->cond), fc_act_name(m->act));
}

/* i32 dx, dc, width, depth, temb, act, cond: the order lfm.config has
 * always had them in (section versions 1 and 2, format 1) */
static void s_mlp_put(fc_ckpt_buf *b, const fc_net_config *cfg) {
  const fc_mlp_config *m = &cfg->mlp;
  const int32_t v[7] = {m->dx, m->dc, m->width, m->depth, m->temb, m->act, m->cond};
  for (int i = 0; i < 7; i++) fc_ckpt_put_i32(b, v[i]);
}

static int s_mlp_get(fc_ckpt_cur *c, fc_net_config *cfg) {
  static const struct {
    const char *name;
    int32_t lo, hi;
  } f[7] = {{"dx", 1, FC_NET_MAX_DIM},         {"dc", 0, FC_NET_MAX_DIM},    {"width", 1, FC_NET_MAX_WIDTH},
            {"depth", 0, FC_NET_MAX_DEPTH},    {"temb", 2, FC_NET_MAX_TEMB}, {"act", FC_ACT_SILU, FC_ACT_GELU},
            {"cond", FC_COND_FILM, FC_COND_CONCAT}};
  int32_t v[7];
  for (int i = 0; i < 7; i++)
    if (fc_ckpt_get_i32(c, f[i].name, f[i].lo, f[i].hi, &v[i])) return -1;
  fc_mlp_config *m = &cfg->mlp;
  m->dx = v[0]; m->dc = v[1]; m->width = v[2]; m->depth = v[3]; m->temb = v[4];
  m->act = (fc_act)v[5]; m->cond = (fc_cond_mode)v[6];
  return 0;
}

/* ---------- unet ---------- */

S_NET_COMMON(unet)

/* fc_unet's defaults for a horizon that allows all its levels; set_io then
 * gives the real horizon (the policy's Tp) */
static void s_unet_default(fc_net_config *cfg, int dx, int dc) { fc_unet_config_default(&cfg->unet, 4, 1, dc); }

static void s_unet_set_io(fc_net_config *cfg, int dx, int dc, int horizon) {
  fc_unet_config *u = &cfg->unet;
  u->dx = dx;
  u->dc = dc;
  u->horizon = horizon > 0 ? horizon : 1;
  u->adim = dx / u->horizon; /* a dx the horizon does not divide fails the check */
  /* the levels stay as they are: a horizon they do not fit (2^(levels - 1)
   * must divide it) fails the check with a sentence, never a silent change */
}

static int s_unet_check(const fc_net_config *cfg, char *err, size_t errsz) {
  const fc_unet_config *u = &cfg->unet;
  if (u->horizon > 0 && u->adim * u->horizon != u->dx)
    return fc_set_err(err, errsz, "the U-Net needs x of horizon x action values: %d values do not split into %d steps",
                      u->dx, u->horizon), -1;
  if (fc_unet_config_check(u, err, errsz)) return -1;
  if (u->dx > FC_NET_MAX_DIM || u->dc > FC_NET_MAX_DIM || u->temb > FC_NET_MAX_TEMB)
    return fc_set_err(err, errsz, "U-Net dimensions %d and %d or time embedding %d beyond flowcore's bounds (%d, %d)",
                      u->dx, u->dc, u->temb, FC_NET_MAX_DIM, FC_NET_MAX_TEMB), -1;
  return 0;
}

static void s_unet_match(fc_net_config *out, int copies) { out->unet = fc_unet_width_matching(&out->unet, copies); }

static void s_unet_describe(const fc_net_config *cfg, char *out, size_t n) {
  const fc_unet_config *u = &cfg->unet;
  int o = snprintf(out, n, "unet dims ");
  for (int l = 0; l < u->nlevels && o > 0 && (size_t)o < n; l++)
    o += snprintf(out + o, n - (size_t)o, "%s%d", l ? "," : "", u->dims[l]);
  if (o > 0 && (size_t)o < n)
    snprintf(out + o, n - (size_t)o, " kernel %d groups %d %s", u->kernel, u->groups, fc_act_name(u->act));
}

static void s_unet_put(fc_ckpt_buf *b, const fc_net_config *cfg) {
  const fc_unet_config *u = &cfg->unet;
  const int32_t v[6] = {u->dx, u->dc, u->horizon, u->adim, u->temb, u->nlevels};
  for (int i = 0; i < 6; i++) fc_ckpt_put_i32(b, v[i]);
  for (int l = 0; l < FC_UNET_MAX_LEVELS; l++) fc_ckpt_put_i32(b, l < u->nlevels ? u->dims[l] : 0);
  fc_ckpt_put_i32(b, u->kernel);
  fc_ckpt_put_i32(b, u->groups);
  fc_ckpt_put_i32(b, u->act);
}

static int s_unet_get(fc_ckpt_cur *c, fc_net_config *cfg) {
  fc_unet_config *u = &cfg->unet;
  int32_t v[6], d[FC_UNET_MAX_LEVELS], k, g, act;
  static const char *const names[6] = {"dx", "dc", "horizon", "adim", "temb", "nlevels"};
  static const int32_t lo[6] = {1, 0, 1, 1, 2, 1};
  const int32_t hi[6] = {FC_NET_MAX_DIM, FC_NET_MAX_DIM, FC_UNET_MAX_HORIZON, FC_NET_MAX_DIM, FC_NET_MAX_TEMB,
                         FC_UNET_MAX_LEVELS};
  for (int i = 0; i < 6; i++)
    if (fc_ckpt_get_i32(c, names[i], lo[i], hi[i], &v[i])) return -1;
  for (int l = 0; l < FC_UNET_MAX_LEVELS; l++)
    if (fc_ckpt_get_i32(c, "dims", l < v[5] ? 1 : 0, l < v[5] ? FC_UNET_MAX_DIM : 0, &d[l])) return -1;
  if (fc_ckpt_get_i32(c, "kernel", 1, 63, &k) || fc_ckpt_get_i32(c, "groups", 1, FC_UNET_MAX_DIM, &g) ||
      fc_ckpt_get_i32(c, "act", FC_ACT_SILU, FC_ACT_GELU, &act))
    return -1;
  u->dx = v[0]; u->dc = v[1]; u->horizon = v[2]; u->adim = v[3]; u->temb = v[4]; u->nlevels = v[5];
  memcpy(u->dims, d, sizeof(d));
  u->kernel = k; u->groups = g; u->act = (fc_act)act;
  return 0;
}

/* ---------- transformer ---------- */

S_NET_COMMON(tfm)

/* fc_tfm's defaults; set_io then gives the real horizon (the policy's Tp) */
static void s_tfm_default(fc_net_config *cfg, int dx, int dc) { fc_tfm_config_default(&cfg->tfm, 1, dx, dc); }

static void s_tfm_set_io(fc_net_config *cfg, int dx, int dc, int horizon) {
  fc_tfm_config *m = &cfg->tfm;
  m->dx = dx;
  m->dc = dc;
  m->horizon = horizon > 0 ? horizon : 1;
  m->adim = dx / m->horizon; /* a dx the horizon does not divide fails the check */
}

static int s_tfm_check(const fc_net_config *cfg, char *err, size_t errsz) {
  const fc_tfm_config *m = &cfg->tfm;
  if (m->horizon > 0 && m->adim * m->horizon != m->dx)
    return fc_set_err(err, errsz, "the transformer needs x of horizon x action values: %d values do not split into %d "
                      "steps", m->dx, m->horizon), -1;
  if (fc_tfm_config_check(m, err, errsz)) return -1;
  if (m->dx > FC_NET_MAX_DIM || m->dc > FC_NET_MAX_DIM || m->temb > FC_NET_MAX_TEMB)
    return fc_set_err(err, errsz, "transformer dimensions %d and %d or time embedding %d beyond flowcore's bounds (%d, "
                      "%d)", m->dx, m->dc, m->temb, FC_NET_MAX_DIM, FC_NET_MAX_TEMB), -1;
  return 0;
}

static void s_tfm_match(fc_net_config *out, int copies) { out->tfm = fc_tfm_width_matching(&out->tfm, copies); }

static void s_tfm_describe(const fc_net_config *cfg, char *out, size_t n) {
  const fc_tfm_config *m = &cfg->tfm;
  snprintf(out, n, "transformer width %d depth %d heads %d ffn %d %s %s", m->width, m->depth, m->heads, m->ffn,
           fc_tfm_cond_name(m->cond), fc_act_name(m->act));
}

static void s_tfm_put(fc_ckpt_buf *b, const fc_net_config *cfg) {
  const fc_tfm_config *m = &cfg->tfm;
  const int32_t v[11] = {m->dx, m->dc, m->horizon, m->adim, m->width, m->depth, m->heads, m->ffn, m->temb, m->act,
                         m->cond};
  for (int i = 0; i < 11; i++) fc_ckpt_put_i32(b, v[i]);
  if (m->cond == FC_TFM_CROSS) fc_ckpt_put_i32(b, m->ctok); /* files of the other two read as before */
}

static int s_tfm_get(fc_ckpt_cur *c, fc_net_config *cfg) {
  static const struct {
    const char *name;
    int32_t lo, hi;
  } f[11] = {{"dx", 1, FC_NET_MAX_DIM},          {"dc", 0, FC_NET_MAX_DIM},
             {"horizon", 1, FC_TFM_MAX_HORIZON}, {"adim", 1, FC_TFM_MAX_ADIM},
             {"width", 1, FC_TFM_MAX_WIDTH},     {"depth", 1, FC_TFM_MAX_DEPTH},
             {"heads", 1, FC_TFM_MAX_WIDTH},     {"ffn", 1, FC_TFM_MAX_FFN},
             {"temb", 2, FC_NET_MAX_TEMB},       {"act", FC_ACT_SILU, FC_ACT_GELU},
             {"cond", FC_TFM_ADALN, FC_TFM_CROSS}};
  int32_t v[11];
  for (int i = 0; i < 11; i++)
    if (fc_ckpt_get_i32(c, f[i].name, f[i].lo, f[i].hi, &v[i])) return -1;
  fc_tfm_config *m = &cfg->tfm;
  m->dx = v[0]; m->dc = v[1]; m->horizon = v[2]; m->adim = v[3]; m->width = v[4]; m->depth = v[5];
  m->heads = v[6]; m->ffn = v[7]; m->temb = v[8]; m->act = (fc_act)v[9]; m->cond = (fc_tfm_cond)v[10];
  m->ctok = 1;
  if (m->cond == FC_TFM_CROSS && fc_ckpt_get_i32(c, "ctok", 1, FC_NET_MAX_DIM, &m->ctok)) return -1;
  return 0;
}

/* ---------- the kinds ---------- */

static const s_ops s_kinds[FC_NET_KINDS] = {
    [FC_NET_MLP] = {.name = "mlp", .config_default = s_mlp_default, .set_io = s_mlp_set_io, .check = s_mlp_check,
                    .match = s_mlp_match, .describe = s_mlp_describe, .put = s_mlp_put, .get = s_mlp_get,
                    S_COMMON_OPS(mlp)},
    [FC_NET_UNET] = {.name = "unet", .config_default = s_unet_default, .set_io = s_unet_set_io,
                     .check = s_unet_check, .match = s_unet_match, .describe = s_unet_describe, .put = s_unet_put,
                     .get = s_unet_get, S_COMMON_OPS(unet)},
    [FC_NET_TRANSFORMER] = {.name = "transformer", .config_default = s_tfm_default, .set_io = s_tfm_set_io,
                            .check = s_tfm_check, .match = s_tfm_match, .describe = s_tfm_describe,
                            .put = s_tfm_put, .get = s_tfm_get, S_COMMON_OPS(tfm)},
};

static int s_known(int kind) { return kind >= 0 && kind < FC_NET_KINDS; }

/* the table of a kind the caller vouches for (a checked config) */
static const s_ops *s_ops_of(fc_net_kind kind) {
  FC_ASSERT(s_known((int)kind));
  return &s_kinds[kind];
}

/* "mlp, unet": the known names, for messages */
static void s_kind_list(char *out, size_t n) {
  size_t o = 0;
  out[0] = 0;
  for (int k = 0; k < FC_NET_KINDS && o < n; k++) o += (size_t)snprintf(out + o, n - o, "%s%s", k ? ", " : "", s_kinds[k].name);
}

const char *fc_net_kind_name(fc_net_kind kind) { return s_known((int)kind) ? s_kinds[kind].name : "?"; }

int fc_net_kind_parse(const char *s) {
  for (int k = 0; k < FC_NET_KINDS; k++)
    if (s && !strcmp(s, s_kinds[k].name)) return k;
  return -1;
}

/* ---------- configs ---------- */

void fc_net_config_default(fc_net_config *cfg, fc_net_kind kind, int dx, int dc) {
  memset(cfg, 0, sizeof(*cfg)); /* unused union bytes zeroed: configs compare and copy cleanly */
  cfg->kind = kind;
  s_ops_of(kind)->config_default(cfg, dx, dc);
  fc_net_config_set_io(cfg, dx, dc, 1);
}

void fc_net_config_set_io(fc_net_config *cfg, int dx, int dc, int horizon) {
  s_ops_of(cfg->kind)->set_io(cfg, dx, dc, horizon);
}

int fc_net_config_check(const fc_net_config *cfg, char *err, size_t errsz) {
  if (!s_known((int)cfg->kind)) {
    char names[128];
    s_kind_list(names, sizeof(names));
    return fc_set_err(err, errsz, "unknown network kind %d (this lfp knows %s)", (int)cfg->kind, names), -1;
  }
  return s_kinds[cfg->kind].check(cfg, err, errsz);
}

int fc_net_config_same(const fc_net_config *a, const fc_net_config *b) {
  fc_ckpt_buf x = {0}, y = {0};
  fc_net_config_put(&x, a);
  fc_net_config_put(&y, b);
  const int same = x.len == y.len && !memcmp(x.data, y.data, x.len);
  free(x.data);
  free(y.data);
  return same;
}

int fc_net_dx(const fc_net_config *cfg) { return s_ops_of(cfg->kind)->dx(cfg); }
int fc_net_dc(const fc_net_config *cfg) { return s_ops_of(cfg->kind)->dc(cfg); }
size_t fc_net_nparams(const fc_net_config *cfg) { return s_ops_of(cfg->kind)->nparams(cfg); }
double fc_net_macs(const fc_net_config *cfg) { return s_ops_of(cfg->kind)->macs(cfg); }

int fc_net_tensors(const fc_net_config *cfg, fc_tensor_info *out, int max) {
  return s_ops_of(cfg->kind)->tensors(cfg, out, max);
}

void fc_net_match(fc_net_config *out, const fc_net_config *cfg, int copies) {
  FC_ASSERT(copies >= 1);
  const fc_net_config c = *cfg; /* out may be cfg */
  *out = c;
  s_ops_of(c.kind)->match(out, copies);
}

void fc_net_describe(const fc_net_config *cfg, char *out, size_t n) {
  if (!s_known((int)cfg->kind)) {
    snprintf(out, n, "unknown network kind %d", (int)cfg->kind);
    return;
  }
  s_kinds[cfg->kind].describe(cfg, out, n);
}

/* ---------- bound networks and workspaces ---------- */

struct fc_net_ws {
  fc_net_kind kind;
  void *impl; /* the kind's workspace */
};
struct fc_net_ws_ref {
  fc_net_kind kind;
  void *impl;
};

void fc_net_bind(fc_net *net, const fc_net_config *cfg, float *params) {
  net->cfg = *cfg;
  net->params = params;
  s_ops_of(cfg->kind)->bind(net);
}

void fc_net_init(fc_net *net, fc_rng *rng) { s_ops_of(net->cfg.kind)->init(net, rng); }

fc_net_ws *fc_net_ws_new(const fc_net_config *cfg, int max_batch) {
  fc_net_ws *ws = fc_calloc(1, sizeof(*ws));
  ws->kind = cfg->kind;
  ws->impl = s_ops_of(cfg->kind)->ws_new(cfg, max_batch);
  return ws;
}

void fc_net_ws_free(fc_net_ws *ws) {
  if (!ws) return;
  s_ops_of(ws->kind)->ws_free(ws->impl);
  free(ws);
}

void fc_net_forward(const fc_net *net, fc_net_ws *ws, float *y, const float *t, const float *x, const float *c,
                    int B) {
  FC_ASSERT(ws->kind == net->cfg.kind);
  s_kinds[ws->kind].forward(net, ws->impl, y, t, x, c, B);
}

void fc_net_backward(const fc_net *net, fc_net_ws *ws, float *dparams, int accumulate, float *dx, float *dc,
                     const float *dy, int B) {
  FC_ASSERT(ws->kind == net->cfg.kind);
  s_kinds[ws->kind].backward(net, ws->impl, dparams, accumulate, dx, dc, dy, B);
}

fc_net_ws_ref *fc_net_ws_new_ref(const fc_net_config *cfg, int max_batch) {
  fc_net_ws_ref *ws = fc_calloc(1, sizeof(*ws));
  ws->kind = cfg->kind;
  ws->impl = s_ops_of(cfg->kind)->ws_new_ref(cfg, max_batch);
  return ws;
}

void fc_net_ws_free_ref(fc_net_ws_ref *ws) {
  if (!ws) return;
  s_ops_of(ws->kind)->ws_free_ref(ws->impl);
  free(ws);
}

void fc_net_forward_ref(const fc_net_config *cfg, const double *params, fc_net_ws_ref *ws, double *y,
                        const double *t, const double *x, const double *c, int B) {
  FC_ASSERT(ws->kind == cfg->kind);
  s_kinds[ws->kind].forward_ref(cfg, params, ws->impl, y, t, x, c, B);
}

void fc_net_backward_ref(const fc_net_config *cfg, const double *params, fc_net_ws_ref *ws, double *dparams,
                         int accumulate, double *dx, double *dc, const double *dy, int B) {
  FC_ASSERT(ws->kind == cfg->kind);
  s_kinds[ws->kind].backward_ref(cfg, params, ws->impl, dparams, accumulate, dx, dc, dy, B);
}

/* ---------- checkpoint fields ---------- */

void fc_net_config_put(fc_ckpt_buf *b, const fc_net_config *cfg) {
  fc_ckpt_put_i32(b, (int32_t)cfg->kind);
  s_ops_of(cfg->kind)->put(b, cfg);
}

int fc_net_config_get(fc_ckpt_cur *c, fc_net_config *cfg) {
  int32_t kind;
  if (fc_ckpt_get_i32(c, "network kind", INT32_MIN, INT32_MAX, &kind)) return -1;
  if (!s_known(kind)) {
    char names[128];
    s_kind_list(names, sizeof(names));
    return fc_ckpt_cur_mismatch(c, "has network kind %d, which this lfp does not know (it knows %s)", (int)kind, names);
  }
  return fc_net_config_get_fields(c, (fc_net_kind)kind, cfg);
}

int fc_net_config_get_fields(fc_ckpt_cur *c, fc_net_kind kind, fc_net_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->kind = kind;
  return s_ops_of(kind)->get(c, cfg);
}
