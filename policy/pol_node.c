/* pol_node: request handling, sessions and the ROUTER loop. */
#include "pol_node.h"
#include "pol_broker.h"
#include "pol_keys.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "lfp_version.h"
#include "fc_base.h"
#include "fc_rng.h"
#include "pol_wire.h"

#define S_KEY_MAX (1 + 256) /* tag byte + a ZeroMQ identity (<= 255 bytes) or a session name */
#define S_LOG_MAX 20

typedef struct {
  uint8_t key[S_KEY_MAX];
  size_t keylen;
  pol_data *pd; /* allocated once per slot, reused after eviction */
  uint64_t last_used;
  int64_t seq;
  int live;
} s_session;

struct pol_node {
  const pol_policy *p;
  pol_node_config cfg;
  s_session *sessions;
  uint64_t clock; /* request counter, for LRU */
  fc_rng seeds;
  double *frames;  /* (max_batch, To, obs_dim) decoded observation frames */
  double *actions; /* (max_batch, Tp, A): up to the request's horizon */
  pol_batch *batch; /* batched infer's scratch */
  fc_guide_ws *guide; /* RTC's guidance scratch (one: requests are handled one at a time) */
  msgpack_sbuffer sbuf;
  msgpack_packer pk;
  char keylist[POL_MAX_KEYS * 66]; /* "a, b, c": the policy's keys, for error messages */
  pol_node_stats st;
  void *ctx, *sock;
  pthread_mutex_t mu; /* one request at a time, whichever transport (pol_node_lock) */
  /* CURVE (pol_node_secure): the server's secret key, the allowlist, the ZAP handler's socket */
  char curve_secret[41];
  const pol_keys_allow *allow;
  void *zap;
  /* a broker's worker (pol_node_connect) */
  int worker;
  pol_node_worker wk;
  char wk_keys[3][41], endpoint[256];
  double broker_seen;
};

void pol_node_lock(pol_node *n) { pthread_mutex_lock(&n->mu); }
void pol_node_unlock(pol_node *n) { pthread_mutex_unlock(&n->mu); }

static double s_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

void pol_node_config_default(pol_node_config *c) {
  memset(c, 0, sizeof(*c));
  c->max_sessions = 64;
  c->max_msg = 1 << 20;
  c->seed = 0;
  c->name = "policy";
  c->sampler = -1;
  c->steps = 0;
  c->max_batch = 64;
}

pol_node *pol_node_new(const pol_policy *p, const pol_node_config *cfg) {
  FC_ASSERT(cfg->max_sessions >= 1 && cfg->max_msg >= 64 && cfg->max_batch >= 1);
  pol_node *n = fc_calloc(1, sizeof(*n));
  n->p = p;
  n->cfg = *cfg;
  if (n->cfg.sampler < 0) n->cfg.sampler = (int)p->flow->cfg.sampler;
  if (n->cfg.steps <= 0) n->cfg.steps = p->flow->cfg.steps;
  n->sessions = fc_calloc((size_t)cfg->max_sessions, sizeof(s_session));
  fc_rng_seed(&n->seeds, cfg->seed);
  n->frames = fc_calloc((size_t)cfg->max_batch * p->meta.To * p->meta.obs_dim, sizeof(double));
  n->actions = fc_calloc((size_t)cfg->max_batch * p->meta.Tp * p->meta.action_dim, sizeof(double));
  n->batch = pol_batch_new(p, cfg->max_batch);
  pthread_mutex_init(&n->mu, NULL);
  n->guide = fc_guide_ws_new(p->flow, 1);
  msgpack_sbuffer_init(&n->sbuf);
  msgpack_packer_init(&n->pk, &n->sbuf, msgpack_sbuffer_write);
  for (int k = 0; k < p->meta.nkeys; k++) {
    strcat(n->keylist, k ? ", " : "");
    strcat(n->keylist, p->meta.keys[k]);
  }
  return n;
}

void pol_node_free(pol_node *n) {
  if (!n) return;
  if (n->sock) zmq_close(n->sock);
  if (n->zap) zmq_close(n->zap);
  memset(n->curve_secret, 0, sizeof(n->curve_secret));
  if (n->ctx) zmq_ctx_term(n->ctx);
  for (int i = 0; i < n->cfg.max_sessions; i++) pol_data_free(n->sessions[i].pd);
  free(n->sessions);
  free(n->frames);
  free(n->actions);
  pol_batch_free(n->batch);
  fc_guide_ws_free(n->guide);
  pthread_mutex_destroy(&n->mu);
  msgpack_sbuffer_destroy(&n->sbuf);
  free(n);
}

pol_node_stats pol_node_get_stats(const pol_node *n) { return n->st; }

int pol_node_nfe(const pol_node *n) { return pol_nfe(n->p, (fc_sampler)n->cfg.sampler, n->cfg.steps); }

/* ---- sessions ---- */

static s_session *s_session_get(pol_node *n, const pw_request *rq, const void *peer, size_t peer_len) {
  uint8_t key[S_KEY_MAX];
  size_t klen;
  if (rq->session[0]) {
    klen = strlen(rq->session);
    key[0] = 's';
    memcpy(key + 1, rq->session, klen);
  } else {
    klen = peer_len < S_KEY_MAX - 1 ? peer_len : S_KEY_MAX - 1;
    key[0] = 'i';
    if (klen) memcpy(key + 1, peer, klen);
  }
  klen++;
  s_session *lru = NULL;
  for (int i = 0; i < n->cfg.max_sessions; i++) {
    s_session *s = &n->sessions[i];
    if (s->live && s->keylen == klen && !memcmp(s->key, key, klen)) {
      s->last_used = ++n->clock;
      return s;
    }
    if (!lru || !s->live || (lru->live && s->last_used < lru->last_used)) lru = s;
  }
  if (lru->live) n->st.evictions++;
  else n->st.sessions++;
  memcpy(lru->key, key, klen);
  lru->keylen = klen;
  if (!lru->pd) {
    lru->pd = pol_data_new(n->p, 0);
    pol_set_sampler(n->p, lru->pd, (fc_sampler)n->cfg.sampler, n->cfg.steps);
  }
  pol_reset(lru->pd, fc_rng_u64(&n->seeds));
  lru->seq = 0;
  lru->live = 1;
  lru->last_used = ++n->clock;
  n->st.sessions_created++;
  return lru;
}

/* ---- replies ---- */

static void s_pack_id(pol_node *n, const pw_request *rq) {
  if (!rq->has_id) return;
  pw_pack_str(&n->pk, "id");
  msgpack_pack_int64(&n->pk, rq->id);
}

/* an error reply; refused: the policy refused to act (a non-finite chunk),
 * which a client ends its episode on, unlike a malformed request */
static int s_error_as(pol_node *n, const pw_request *rq, const char *msg, int refused) {
  msgpack_sbuffer_clear(&n->sbuf);
  msgpack_pack_map(&n->pk, 1 + (rq && rq->has_id) + (refused != 0));
  pw_pack_str(&n->pk, "error");
  pw_pack_str(&n->pk, msg);
  if (refused) {
    pw_pack_str(&n->pk, "refused");
    msgpack_pack_true(&n->pk);
  }
  if (rq) s_pack_id(n, rq);
  n->st.errors++;
  if (n->cfg.log && n->st.errors <= S_LOG_MAX)
    fprintf(n->cfg.log, "lfp serve: error reply: %s%s\n", msg,
            n->st.errors == S_LOG_MAX ? " (further errors are only counted)" : "");
  return 1;
}

static int s_error(pol_node *n, const pw_request *rq, const char *msg) { return s_error_as(n, rq, msg, 0); }

static void s_pack_info(pol_node *n, const pw_request *rq) {
  const pol_policy *p = n->p;
  const pol_meta *m = &p->meta;
  msgpack_packer *pk = &n->pk;
  msgpack_pack_map(pk, 21 + rq->has_id);
  pw_pack_str(pk, "protocol");
  msgpack_pack_int(pk, PW_PROTOCOL);
  pw_pack_str(pk, "version");
  pw_pack_str(pk, LFP_VERSION);
  pw_pack_str(pk, "policy");
  pw_pack_str(pk, n->cfg.name ? n->cfg.name : "policy");
  pw_pack_str(pk, "trained_by");
  pw_pack_str(pk, m->version);
  pw_pack_str(pk, "method");
  pw_pack_str(pk, pol_method_name((pol_method)m->method));
  pw_pack_str(pk, "obs_keys");
  msgpack_pack_array(pk, (size_t)m->nkeys);
  for (int k = 0; k < m->nkeys; k++) pw_pack_str(pk, m->keys[k]);
  pw_pack_str(pk, "obs_shapes");
  msgpack_pack_array(pk, (size_t)m->nkeys);
  for (int k = 0; k < m->nkeys; k++) {
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, m->key_dims[k]);
  }
  pw_pack_str(pk, "action_dim");
  msgpack_pack_int(pk, m->action_dim);
  double lo[POL_MAX_ACTION], hi[POL_MAX_ACTION];
  for (int j = 0; j < m->action_dim; j++) lo[j] = m->action_low[j], hi[j] = m->action_high[j];
  pw_pack_str(pk, "action_low");
  pw_pack_doubles(pk, lo, m->action_dim);
  pw_pack_str(pk, "action_high");
  pw_pack_doubles(pk, hi, m->action_dim);
  pw_pack_str(pk, "To");
  msgpack_pack_int(pk, m->To);
  pw_pack_str(pk, "Tp");
  msgpack_pack_int(pk, m->Tp);
  pw_pack_str(pk, "Ta");
  msgpack_pack_int(pk, m->Ta);
  pw_pack_str(pk, "control_hz");
  msgpack_pack_double(pk, m->control_hz);
  pw_pack_str(pk, "nfe");
  msgpack_pack_int(pk, pol_node_nfe(n));
  pw_pack_str(pk, "sampler");
  pw_pack_str(pk, fc_sampler_name((fc_sampler)n->cfg.sampler));
  pw_pack_str(pk, "ode_steps");
  msgpack_pack_int(pk, n->cfg.steps);
  pw_pack_str(pk, "env_args");
  pw_pack_str(pk, m->env_args);
  pw_pack_str(pk, "max_sessions");
  msgpack_pack_int(pk, n->cfg.max_sessions);
  pw_pack_str(pk, "max_msg");
  msgpack_pack_uint64(pk, n->cfg.max_msg);
  pw_pack_str(pk, "endpoints");
  msgpack_pack_array(pk, PW_NENDPOINTS);
  for (int e = 0; e < PW_NENDPOINTS; e++) pw_pack_str(pk, pw_endpoint_name((pw_endpoint)e));
  s_pack_id(n, rq);
}

/* The request's observation -> n->frames; returns the number of frames
 * (rank 1: 1 frame to append, *replace = 0; rank 2: 1..To frames that
 * replace the history, *replace = 1; rank 3: a batch of *batch rows of
 * 1..To frames each, (B, n, dim)), or -1 with err. Nothing is changed on
 * error. */
static int s_obs_frames(pol_node *n, const pw_request *rq, int *replace, int *batch, char *err, size_t errsz) {
  static const char *const how[4] = {"", "one frame (rank 1)", "a stack of frames (rank 2)", "a batch (rank 3)"};
  const pol_meta *m = &n->p->meta;
  const char *keys = n->keylist;
  for (int i = 0; i < rq->nobs; i++) {
    int found = 0;
    for (int k = 0; k < m->nkeys; k++) found |= !strcmp(rq->obs[i].name, m->keys[k]);
    if (!found) return fc_set_err(err, errsz, "unknown observation key '%s' (the policy takes %s)", rq->obs[i].name, keys), -1;
    for (int j = 0; j < i; j++)
      if (!strcmp(rq->obs[i].name, rq->obs[j].name))
        return fc_set_err(err, errsz, "observation key '%s' appears twice", rq->obs[i].name), -1;
  }
  int nframes = -1, rank = 0, rows = 1, off = 0;
  const char *first = NULL;
  for (int k = 0; k < m->nkeys; k++) {
    const pw_array *a = NULL;
    for (int i = 0; i < rq->nobs; i++)
      if (!strcmp(rq->obs[i].name, m->keys[k])) a = &rq->obs[i];
    if (!a) return fc_set_err(err, errsz, "observation key '%s' is missing (the policy takes %s)", m->keys[k], keys), -1;
    const int dim = m->key_dims[k];
    const uint32_t width = a->shape[a->rank - 1];
    const int nf = a->rank == 1 ? 1 : (int)a->shape[a->rank - 2], B = a->rank == 3 ? (int)a->shape[0] : 1;
    if ((int)width != dim || nf < 1 || nf > m->To) {
      char sh[64];
      if (a->rank == 1) snprintf(sh, sizeof(sh), "(%u,)", a->shape[0]);
      else if (a->rank == 2) snprintf(sh, sizeof(sh), "(%u, %u)", a->shape[0], a->shape[1]);
      else snprintf(sh, sizeof(sh), "(%u, %u, %u)", a->shape[0], a->shape[1], a->shape[2]);
      return fc_set_err(err, errsz, "observation '%s' has shape %s but the policy takes (%d,), (n, %d) or (B, n, %d) "
                        "with n <= %d", m->keys[k], sh, dim, dim, dim, m->To), -1;
    }
    if (B > n->cfg.max_batch)
      return fc_set_err(err, errsz, "observation '%s' is a batch of %d rows; this node takes at most %d", m->keys[k], B,
                        n->cfg.max_batch), -1;
    if (nframes >= 0 && a->rank != rank)
      return fc_set_err(err, errsz, "observation '%s' is %s but '%s' is %s; send every key the same way", m->keys[k],
                        how[a->rank], first, how[rank]), -1;
    if (nframes >= 0 && nf != nframes)
      return fc_set_err(err, errsz, "observation '%s' has %d frames but '%s' has %d", m->keys[k], nf, first, nframes), -1;
    if (nframes >= 0 && B != rows)
      return fc_set_err(err, errsz, "observation '%s' has %d batch rows but '%s' has %d", m->keys[k], B, first, rows), -1;
    nframes = nf, rank = a->rank, rows = B, first = m->keys[k];
    for (int r = 0; r < B; r++)
      for (int f = 0; f < nf; f++)
        for (int j = 0; j < dim; j++)
          n->frames[((size_t)r * nf + f) * m->obs_dim + off + j] =
              pw_array_get(a, ((size_t)r * nf + f) * (size_t)dim + (size_t)j);
    off += dim;
  }
  /* every frame finite, also once normalized in float32 (the library's
   * check), before the session changes */
  for (int r = 0; r < rows; r++)
    for (int f = 0; f < nframes; f++) {
      char why[256];
      if (pol_check_obs(n->p, n->frames + ((size_t)r * nframes + f) * m->obs_dim, why, sizeof(why))) {
        if (rank == 1) return fc_set_err(err, errsz, "%s", why), -1;
        if (rank == 2) return fc_set_err(err, errsz, "frame %d: %s", f, why), -1;
        return fc_set_err(err, errsz, "batch row %d, frame %d: %s", r, f, why), -1;
      }
    }
  *replace = rank == 2;
  *batch = rank == 3 ? rows : 0;
  return nframes;
}

/* "server_timing": {"sample_us", "handle_us" (since t0, now)} */
static void s_pack_timing(msgpack_packer *pk, double sample_us, double t0) {
  pw_pack_str(pk, "server_timing");
  msgpack_pack_map(pk, 2);
  pw_pack_str(pk, "sample_us");
  msgpack_pack_double(pk, sample_us);
  pw_pack_str(pk, "handle_us");
  msgpack_pack_double(pk, s_now_us() - t0);
}

/* the members every infer reply has, after its map header: actions (rank 2
 * or, for a batch, 3), the session's seq, clipped, one more count (key),
 * server_timing and the id */
static void s_pack_chunk(pol_node *n, const pw_request *rq, s_session *s, int rank, const uint32_t *shape, int clipped,
                         const char *key, int value, double sample_us, double t0) {
  msgpack_packer *pk = &n->pk;
  pw_pack_str(pk, "actions");
  pw_pack_ndarray(pk, n->actions, rank, shape, rq->action_itemsize);
  pw_pack_str(pk, "seq");
  msgpack_pack_int64(pk, ++s->seq);
  pw_pack_str(pk, "clipped");
  msgpack_pack_int(pk, clipped);
  pw_pack_str(pk, key);
  msgpack_pack_int(pk, value);
  s_pack_timing(pk, sample_us, t0);
  s_pack_id(n, rq);
}

/* a GR00T array: {"__ndarray_class__": true, "as_npy": <np.save bytes, float32>} */
static void s_pack_gr00t_array(msgpack_packer *pk, const double *v, int rank, const uint32_t *shape) {
  msgpack_pack_map(pk, 2);
  pw_pack_str(pk, "__ndarray_class__");
  msgpack_pack_true(pk);
  pw_pack_str(pk, "as_npy");
  pw_pack_npy(pk, v, rank, shape, 4);
}

/* GR00T's get_modality_config: per modality a ModalityConfig as GR00T's
 * serializer writes one ({"__ModalityConfig_class__": true, "as_json": ...}):
 * the state keys with the frames the policy looks at (delta_indices -(To-1)..0)
 * and one action group "action" of Ta steps (0..Ta-1) */
static size_t s_json_key(char *js, size_t o, size_t cap, const char *key) {
  o += (size_t)snprintf(js + o, cap - o, "\"");
  for (const unsigned char *c = (const unsigned char *)key; *c && o + 8 < cap; c++)
    o += (size_t)(*c == '"' || *c == '\\' ? snprintf(js + o, cap - o, "\\%c", *c)
                  : *c < 0x20              ? snprintf(js + o, cap - o, "\\u%04x", *c)
                                           : snprintf(js + o, cap - o, "%c", *c));
  return o + (size_t)snprintf(js + o, cap - o, "\"");
}

static void s_pack_modality(pol_node *n) {
  const pol_meta *m = &n->p->meta;
  msgpack_packer *pk = &n->pk;
  char js[POL_MAX_KEYS * 80 + 2048];
  msgpack_pack_map(pk, 2);
  for (int mod = 0; mod < 2; mod++) {
    size_t o = (size_t)snprintf(js, sizeof(js), "{\"delta_indices\": [");
    const int lo = mod == 0 ? 1 - m->To : 0, hi = mod == 0 ? 0 : m->Ta - 1;
    for (int d = lo; d <= hi; d++) o += (size_t)snprintf(js + o, sizeof(js) - o, "%s%d", d > lo ? ", " : "", d);
    o += (size_t)snprintf(js + o, sizeof(js) - o, "], \"modality_keys\": [");
    if (mod == 0)
      for (int k = 0; k < m->nkeys; k++) {
        if (k) o += (size_t)snprintf(js + o, sizeof(js) - o, ", ");
        o = s_json_key(js, o, sizeof(js), m->keys[k]);
      }
    else
      o += (size_t)snprintf(js + o, sizeof(js) - o, "\"action\"");
    snprintf(js + o, sizeof(js) - o, "]}");
    pw_pack_str(pk, mod == 0 ? "state" : "action");
    msgpack_pack_map(pk, 2);
    pw_pack_str(pk, "__ModalityConfig_class__");
    msgpack_pack_true(pk);
    pw_pack_str(pk, "as_json");
    pw_pack_str(pk, js);
  }
}

/* a batched infer: B rows of nf frames in n->frames -> actions (B, H, A);
 * the session's RNG draws the noise, its history is not touched */
static int s_infer_batch(pol_node *n, const pw_request *rq, s_session *s, int B, int nf, double t0) {
  const pol_meta *m = &n->p->meta;
  msgpack_packer *pk = &n->pk;
  char err[384];
  const int H = rq->horizon ? rq->horizon : m->Ta;
  const double ts = s_now_us();
  const int clipped = pol_sample_batch(n->p, n->batch, n->frames, B, nf, (fc_sampler)n->cfg.sampler, n->cfg.steps,
                                       pol_data_rng(s->pd), H, n->actions, err, sizeof(err));
  const double te = s_now_us();
  if (clipped < 0) return s_error_as(n, rq, err, 1);
  n->st.infers++;
  const uint32_t shape[3] = {(uint32_t)B, (uint32_t)H, (uint32_t)m->action_dim};
  if (rq->dialect != PW_LFP) { /* {"action": (B, H, A)}, and N1.6's info after it */
    if (rq->dialect == PW_GR00T_N16) msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 1);
    pw_pack_str(pk, "action");
    s_pack_gr00t_array(pk, n->actions, 3, shape);
    if (rq->dialect == PW_GR00T_N16) {
      msgpack_pack_map(pk, 3);
      pw_pack_str(pk, "clipped");
      msgpack_pack_int(pk, clipped);
      pw_pack_str(pk, "sample_us");
      msgpack_pack_double(pk, te - ts);
      pw_pack_str(pk, "handle_us");
      msgpack_pack_double(pk, s_now_us() - t0);
    }
    return 0;
  }
  msgpack_pack_map(pk, 5 + rq->has_id);
  s_pack_chunk(n, rq, s, 3, shape, clipped, "batch", B, te - ts, t0);
  return 0;
}

size_t pol_node_max_msg(const pol_node *n) { return n->cfg.max_msg; }

void pol_node_info(pol_node *n, const void **reply, size_t *reply_len) {
  pw_request rq;
  memset(&rq, 0, sizeof(rq));
  msgpack_sbuffer_clear(&n->sbuf);
  s_pack_info(n, &rq);
  *reply = n->sbuf.data;
  *reply_len = n->sbuf.size;
}

int pol_node_handle(pol_node *n, const void *peer, size_t peer_len, const void *msg, size_t len, const void **reply,
                    size_t *reply_len) {
  const double t0 = s_now_us();
  char err[384];
  int rc = 0;
  n->st.requests++;
  msgpack_sbuffer_clear(&n->sbuf);
  if (len > n->cfg.max_msg) {
    snprintf(err, sizeof(err), "message of %zu bytes is over the node's limit of %zu bytes", len, n->cfg.max_msg);
    rc = s_error(n, NULL, err);
    goto done;
  }
  pw_request rq;
  if (pw_decode(&rq, msg, len, err, sizeof(err))) {
    rc = s_error(n, &rq, err);
    pw_request_free(&rq);
    goto done;
  }
  msgpack_packer *pk = &n->pk;
  switch (rq.endpoint) {
  case PW_MODALITY:
    s_pack_modality(n);
    break;
  case PW_PING:
    if (rq.dialect != PW_LFP) { /* GR00T's answer */
      msgpack_pack_map(pk, 2);
      pw_pack_str(pk, "status");
      pw_pack_str(pk, "ok");
      pw_pack_str(pk, "message");
      pw_pack_str(pk, "lfp node " LFP_VERSION);
      break;
    }
    msgpack_pack_map(pk, 3 + rq.has_id);
    pw_pack_str(pk, "ok");
    msgpack_pack_true(pk);
    pw_pack_str(pk, "protocol");
    msgpack_pack_int(pk, PW_PROTOCOL);
    pw_pack_str(pk, "version");
    pw_pack_str(pk, LFP_VERSION);
    s_pack_id(n, &rq);
    break;
  case PW_INFO:
    s_pack_info(n, &rq);
    break;
  case PW_RESET: {
    s_session *s = s_session_get(n, &rq, peer, peer_len);
    pol_new_episode(s->pd); /* no chunk to continue */
    if (rq.has_seed) pol_reset(s->pd, rq.seed);
    s->seq = 0;
    if (rq.dialect != PW_LFP) {
      msgpack_pack_map(pk, 1);
      pw_pack_str(pk, "status");
      pw_pack_str(pk, "ok");
      break;
    }
    msgpack_pack_map(pk, 1 + rq.has_id);
    pw_pack_str(pk, "ok");
    msgpack_pack_true(pk);
    s_pack_id(n, &rq);
    break;
  }
  case PW_OBSERVE:
  case PW_INFER: {
    int replace, batch;
    const int nf = s_obs_frames(n, &rq, &replace, &batch, err, sizeof(err));
    if (nf < 0) {
      rc = s_error(n, &rq, err);
      break;
    }
    if (rq.dialect != PW_LFP && !batch) {
      rc = s_error(n, &rq, "GR00T's get_action takes state arrays of shape (B, T, D)");
      break;
    }
    if (batch && rq.endpoint == PW_OBSERVE) {
      rc = s_error(n, &rq, "a batch of observations (rank 3) goes to endpoint infer; observe takes one frame or a stack");
      break;
    }
    if (batch && rq.has_rtc) {
      rc = s_error(n, &rq, "real-time chunking (rtc_delay, rtc_index) continues one session's chunk; a batch cannot");
      break;
    }
    if (rq.has_seed) {
      rc = s_error(n, &rq, "field \"seed\" belongs to endpoint reset");
      break;
    }
    if (rq.horizon > n->p->meta.Tp) {
      snprintf(err, sizeof(err), "field \"horizon\" asks for %d actions; this policy predicts %d per chunk (Tp)",
               rq.horizon, n->p->meta.Tp);
      rc = s_error(n, &rq, err);
      break;
    }
    s_session *s = s_session_get(n, &rq, peer, peer_len);
    const pol_meta *m = &n->p->meta;
    if (batch) {
      rc = s_infer_batch(n, &rq, s, batch, nf, t0);
      break;
    }
    if (replace) pol_forget(s->pd);
    for (int f = 0; f < nf; f++) /* checked above: cannot fail */
      FC_ASSERT(pol_observe(n->p, s->pd, n->frames + (size_t)f * m->obs_dim, err, sizeof(err)) == 0);
    const int seen = pol_data_frames(s->pd), frames = seen < m->To ? seen : m->To;
    if (rq.endpoint == PW_OBSERVE) {
      msgpack_pack_map(pk, 2 + rq.has_id);
      pw_pack_str(pk, "ok");
      msgpack_pack_true(pk);
      pw_pack_str(pk, "history_frames");
      msgpack_pack_int(pk, frames);
      s_pack_id(n, &rq);
      break;
    }
    const double ts = s_now_us();
    int how = POL_RTC_NONE;
    const pol_rtc rtc = {rq.rtc_delay, rq.rtc_index, 0.0f};
    const int H = rq.horizon ? rq.horizon : m->Ta;
    const int clipped = rq.has_rtc ? pol_sample_rtc(n->p, s->pd, n->guide, &rtc, H, n->actions, &how, err, sizeof(err))
                                   : pol_sample_n(n->p, s->pd, H, n->actions, err, sizeof(err));
    const double te = s_now_us();
    if (clipped < 0) {
      rc = s_error_as(n, &rq, err, 1);
      break;
    }
    n->st.infers++;
    msgpack_pack_map(pk, 5 + rq.has_id + (rq.has_rtc != 0));
    if (rq.has_rtc) {
      static const char *const hows[] = {"none", "guided", "blended"};
      pw_pack_str(pk, "rtc");
      pw_pack_str(pk, hows[how]);
    }
    const uint32_t shape[2] = {(uint32_t)H, (uint32_t)m->action_dim};
    s_pack_chunk(n, &rq, s, 2, shape, clipped, "history_frames", frames, te - ts, t0);
    break;
  }
  default:
    FC_ASSERT(0);
  }
  pw_request_free(&rq);
done:
  *reply = n->sbuf.data;
  *reply_len = n->sbuf.size;
  return rc;
}

/* ---- the socket ---- */

void pol_node_secure(pol_node *n, const char *secret_z85, const pol_keys_allow *allow) {
  FC_ASSERT(!n->sock && strlen(secret_z85) == 40 && allow);
  memcpy(n->curve_secret, secret_z85, 41);
  n->allow = allow;
}

int pol_node_bind(pol_node *n, const char *endpoint, char *bound, size_t boundsz, char *err, size_t errsz) {
  FC_ASSERT(!n->sock);
  n->ctx = zmq_ctx_new();
  if (n->allow) {
    /* the ZAP handler is bound before any connection can arrive */
    if (!(n->zap = pol_keys_zap_open(n->ctx, err, errsz))) {
      zmq_ctx_term(n->ctx);
      n->ctx = NULL;
      return -1;
    }
  }
  n->sock = zmq_socket(n->ctx, ZMQ_ROUTER);
  if (n->allow) pol_keys_curve_server(n->sock, n->curve_secret);
  const int linger = 0, one = 1, hwm = 1000;
  const int64_t maxmsg = (int64_t)n->cfg.max_msg * 16;
  zmq_setsockopt(n->sock, ZMQ_LINGER, &linger, sizeof(linger));
  zmq_setsockopt(n->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
  zmq_setsockopt(n->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
  zmq_setsockopt(n->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
  zmq_setsockopt(n->sock, ZMQ_ROUTER_HANDOVER, &one, sizeof(one));
  if (zmq_bind(n->sock, endpoint)) {
    fc_set_err(err, errsz, "cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
    zmq_close(n->sock);
    if (n->zap) zmq_close(n->zap);
    zmq_ctx_term(n->ctx);
    n->sock = n->ctx = n->zap = NULL;
    return -1;
  }
  if (bound && boundsz) {
    size_t sz = boundsz;
    if (zmq_getsockopt(n->sock, ZMQ_LAST_ENDPOINT, bound, &sz)) snprintf(bound, boundsz, "%s", endpoint);
  }
  return 0;
}

/* ---- a broker's worker: a DEALER connected to its backend ---- */

static double s_now_s(void) { return s_now_us() * 1e-6; }

static int s_worker_open(pol_node *n) {
  if (n->sock) zmq_close(n->sock);
  n->sock = zmq_socket(n->ctx, ZMQ_DEALER);
  const int linger = 0, hwm = 1000;
  const int64_t maxmsg = (int64_t)n->cfg.max_msg * 16;
  zmq_setsockopt(n->sock, ZMQ_LINGER, &linger, sizeof(linger));
  zmq_setsockopt(n->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
  zmq_setsockopt(n->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
  zmq_setsockopt(n->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
  if (n->wk.server_key) {
    zmq_setsockopt(n->sock, ZMQ_CURVE_SERVERKEY, n->wk_keys[0], 41);
    zmq_setsockopt(n->sock, ZMQ_CURVE_PUBLICKEY, n->wk_keys[1], 41);
    zmq_setsockopt(n->sock, ZMQ_CURVE_SECRETKEY, n->wk_keys[2], 41);
  }
  if (zmq_connect(n->sock, n->endpoint)) return -1;
  const unsigned char ready = POL_BROKER_READY;
  zmq_send(n->sock, &ready, 1, ZMQ_DONTWAIT);
  n->broker_seen = s_now_s();
  return 0;
}

int pol_node_connect(pol_node *n, const char *endpoint, const pol_node_worker *w, char *err, size_t errsz) {
  FC_ASSERT(!n->sock && !n->allow);
  if (strlen(endpoint) >= sizeof(n->endpoint)) return fc_set_err(err, errsz, "the endpoint %.60s... is too long", endpoint), -1;
  n->worker = 1;
  n->wk = *w;
  if (n->wk.heartbeat_ms < 10) n->wk.heartbeat_ms = 10;
  if (w->server_key) {
    FC_ASSERT(strlen(w->server_key) == 40 && strlen(w->public_key) == 40 && strlen(w->secret_key) == 40);
    memcpy(n->wk_keys[0], w->server_key, 41);
    memcpy(n->wk_keys[1], w->public_key, 41);
    memcpy(n->wk_keys[2], w->secret_key, 41);
    n->wk.server_key = n->wk_keys[0], n->wk.public_key = n->wk_keys[1], n->wk.secret_key = n->wk_keys[2];
  }
  snprintf(n->endpoint, sizeof(n->endpoint), "%s", endpoint);
  n->ctx = zmq_ctx_new();
  if (s_worker_open(n)) {
    fc_set_err(err, errsz, "cannot connect to %s: %s", endpoint, zmq_strerror(zmq_errno()));
    zmq_close(n->sock);
    zmq_ctx_term(n->ctx);
    n->sock = n->ctx = NULL;
    return -1;
  }
  return 0;
}

/* One message from the ROUTER: [identity, (empty delimiter), payload]. */
static void s_serve_one(pol_node *n, zmq_msg_t *idm) {
  zmq_msg_t part[3];
  int nparts = 0, extra = 0;
  int more = zmq_msg_more(idm);
  while (more) {
    zmq_msg_t tmp;
    zmq_msg_init(&tmp);
    if (zmq_msg_recv(&tmp, n->sock, 0) < 0) {
      zmq_msg_close(&tmp);
      break;
    }
    more = zmq_msg_more(&tmp);
    if (nparts < 3) part[nparts++] = tmp;
    else extra++, zmq_msg_close(&tmp);
  }
  /* REQ (and DEALERs that imitate it) put an empty delimiter first */
  const int delim = nparts >= 1 && zmq_msg_size(&part[0]) == 0;
  const int npayload = nparts - delim + extra;
  const void *reply;
  size_t rlen;
  pol_node_lock(n);
  if (npayload != 1) {
    char err[128];
    snprintf(err, sizeof(err), "expected one msgpack frame per message, got %d", npayload);
    s_error(n, NULL, err);
    n->st.requests++;
    reply = n->sbuf.data, rlen = n->sbuf.size;
  } else {
    zmq_msg_t *pl = &part[delim];
    pol_node_handle(n, zmq_msg_data(idm), zmq_msg_size(idm), zmq_msg_data(pl), zmq_msg_size(pl), &reply, &rlen);
  }
  /* a vanished peer or a full queue drops the reply; never block */
  if (zmq_send(n->sock, zmq_msg_data(idm), zmq_msg_size(idm), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
    if (delim) zmq_send(n->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->sock, reply, rlen, ZMQ_DONTWAIT);
  }
  pol_node_unlock(n);
  for (int i = 0; i < nparts; i++) zmq_msg_close(&part[i]);
}

int pol_node_run(pol_node *n, volatile sig_atomic_t *stop, char *err, size_t errsz) {
  FC_ASSERT(n->sock);
  zmq_pollitem_t it[2] = {{n->sock, 0, ZMQ_POLLIN, 0}, {n->zap, 0, ZMQ_POLLIN, 0}};
  const double period = n->worker ? n->wk.heartbeat_ms * 1e-3 : 0;
  double next_beat = s_now_s() + period;
  while (!*stop) {
    if (n->worker) {
      /* Paranoid Pirate: a heartbeat every period; a broker silent for 3
       * periods is reconnected to (a fresh socket, READY again) */
      const double t = s_now_s();
      if (t - n->broker_seen > 3 * period) {
        if (n->cfg.log) {
          fprintf(n->cfg.log, "lfp serve: the broker at %s is silent; reconnecting\n", n->endpoint);
          fflush(n->cfg.log);
        }
        if (s_worker_open(n))
          return fc_set_err(err, errsz, "cannot reconnect to %s: %s", n->endpoint, zmq_strerror(zmq_errno())), -1;
        it[0].socket = n->sock;
        next_beat = t + period;
      } else if (t >= next_beat) {
        const unsigned char beat = POL_BROKER_HEARTBEAT;
        zmq_send(n->sock, &beat, 1, ZMQ_DONTWAIT);
        next_beat = t + period;
      }
    }
    long wait = 100;
    if (n->worker) {
      wait = (long)((next_beat - s_now_s()) * 1e3);
      wait = wait < 0 ? 0 : wait > 100 ? 100 : wait;
    }
    const int rc = zmq_poll(it, n->zap ? 2 : 1, wait);
    if (rc < 0) {
      if (zmq_errno() == EINTR) continue;
      return fc_set_err(err, errsz, "polling the socket failed: %s", zmq_strerror(zmq_errno())), -1;
    }
    if (n->zap && (it[1].revents & ZMQ_POLLIN)) pol_keys_zap_handle(n->zap, n->allow, n->cfg.log, "serve", &n->st.refused);
    while (!*stop) {
      zmq_msg_t idm;
      zmq_msg_init(&idm);
      if (zmq_msg_recv(&idm, n->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&idm);
        break;
      }
      if (n->worker) {
        n->broker_seen = s_now_s();
        if (!zmq_msg_more(&idm)) { /* the broker's heartbeat (or a stray single frame) */
          zmq_msg_close(&idm);
          continue;
        }
      }
      s_serve_one(n, &idm);
      zmq_msg_close(&idm);
    }
  }
  return 0;
}
