/* pol_broker: the load-balancing broker with sticky sessions (see pol_broker.h). */
#include "pol_broker.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "fc_base.h"
#include "pol_keys.h"

#define S_KEY_MAX 96
#define S_ID_MAX 256
#define S_LOG_MAX 50

typedef struct {
  unsigned char id[S_ID_MAX];
  size_t idlen;
  int live;
  double seen;   /* when it last said something (s) */
  int sessions;  /* sessions assigned to it */
} s_worker;

typedef struct {
  char key[S_KEY_MAX];
  size_t klen;
  int worker;    /* index into workers, -1: none */
  uint64_t used; /* request counter at last use (LRU) */
} s_route;

struct pol_broker {
  pol_broker_config cfg;
  void *ctx, *front, *back, *zap;
  s_worker workers[POL_BROKER_MAX_WORKERS];
  int nworkers;
  s_route *routes;
  int nroutes;
  uint64_t clock;
  pol_broker_stats st;
  char secret[41];
  const pol_keys_allow *allow;
  int logged;
};

static double s_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void pol_broker_config_default(pol_broker_config *c) {
  memset(c, 0, sizeof(*c));
  c->heartbeat_ms = 500;
  c->max_sessions = 4096;
  c->max_msg = (size_t)16 << 20;
}

pol_broker *pol_broker_new(const pol_broker_config *c) {
  pol_broker *b = fc_calloc(1, sizeof(*b));
  b->cfg = *c;
  if (b->cfg.heartbeat_ms < 10) b->cfg.heartbeat_ms = 10;
  if (b->cfg.max_sessions < 1) b->cfg.max_sessions = 1;
  b->routes = fc_calloc((size_t)b->cfg.max_sessions, sizeof(s_route));
  return b;
}

void pol_broker_free(pol_broker *b) {
  if (!b) return;
  if (b->front) zmq_close(b->front);
  if (b->back) zmq_close(b->back);
  if (b->zap) zmq_close(b->zap);
  if (b->ctx) zmq_ctx_term(b->ctx);
  memset(b->secret, 0, sizeof(b->secret));
  free(b->routes);
  free(b);
}

void pol_broker_secure(pol_broker *b, const char *secret_z85, const pol_keys_allow *allow) {
  FC_ASSERT(!b->front && strlen(secret_z85) == 40 && allow);
  memcpy(b->secret, secret_z85, 41);
  b->allow = allow;
}

pol_broker_stats pol_broker_get_stats(const pol_broker *b) {
  pol_broker_stats s = b->st;
  s.workers_live = 0;
  for (int i = 0; i < b->nworkers; i++) s.workers_live += b->workers[i].live;
  s.sessions = b->nroutes;
  return s;
}

static void s_log(pol_broker *b, const char *fmt, const char *a, const char *c) {
  if (!b->cfg.log || b->logged++ >= S_LOG_MAX) return;
  fprintf(b->cfg.log, fmt, a, c);
  if (b->logged == S_LOG_MAX) fprintf(b->cfg.log, "lfp broker: (further worker events are counted, not logged)\n");
  fflush(b->cfg.log);
}

/* a worker's identity as text for the log (the bytes in hex) */
static void s_hex(const unsigned char *id, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 3 < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%02x", id[i]);
  if (!n) snprintf(out, cap, "(empty)");
}

static void s_worker_lost(pol_broker *b, int w, const char *why) {
  if (!b->workers[w].live) return;
  b->workers[w].live = 0;
  b->st.workers_lost++;
  char hex[2 * S_ID_MAX + 1];
  s_hex(b->workers[w].id, b->workers[w].idlen, hex, sizeof(hex));
  s_log(b, "lfp broker: worker %s lost (%s); its sessions move to the others\n", hex, why);
}

static int s_worker_find(pol_broker *b, const void *id, size_t n) {
  for (int i = 0; i < b->nworkers; i++)
    if (b->workers[i].idlen == n && !memcmp(b->workers[i].id, id, n)) return i;
  return -1;
}

/* a message from a worker's identity: it is alive (joined or back) */
static int s_worker_seen(pol_broker *b, const void *id, size_t n) {
  if (n > S_ID_MAX) return -1;
  int w = s_worker_find(b, id, n);
  if (w < 0) {
    if (b->nworkers < POL_BROKER_MAX_WORKERS) {
      w = b->nworkers++;
    } else { /* full: a dead worker's slot (its sessions go to the newcomer) */
      for (w = 0; w < b->nworkers && b->workers[w].live; w++) {
      }
      if (w == b->nworkers) return -1;
    }
    memset(&b->workers[w], 0, sizeof(b->workers[w]));
    memcpy(b->workers[w].id, id, n);
    b->workers[w].idlen = n;
  }
  if (!b->workers[w].live) {
    b->workers[w].live = 1;
    b->st.workers_seen++;
    char hex[2 * S_ID_MAX + 1];
    s_hex(b->workers[w].id, b->workers[w].idlen, hex, sizeof(hex));
    s_log(b, "lfp broker: worker %s%s joined\n", hex, "");
  }
  b->workers[w].seen = s_now();
  return w;
}

/* the route of a session key: an existing one, or a fresh one (the least
 * recently used forgotten when full) with no worker */
static s_route *s_route_get(pol_broker *b, const char *key, size_t klen) {
  b->clock++;
  for (int i = 0; i < b->nroutes; i++)
    if (b->routes[i].klen == klen && !memcmp(b->routes[i].key, key, klen)) {
      b->routes[i].used = b->clock;
      return &b->routes[i];
    }
  s_route *r;
  if (b->nroutes < b->cfg.max_sessions) {
    r = &b->routes[b->nroutes++];
  } else {
    r = &b->routes[0];
    for (int i = 1; i < b->nroutes; i++)
      if (b->routes[i].used < r->used) r = &b->routes[i];
    if (r->worker >= 0 && b->workers[r->worker].sessions > 0) b->workers[r->worker].sessions--;
  }
  memcpy(r->key, key, klen);
  r->klen = klen;
  r->worker = -1;
  r->used = b->clock;
  return r;
}

/* the live worker with the fewest sessions, or -1 */
static int s_pick(const pol_broker *b) {
  int best = -1;
  for (int i = 0; i < b->nworkers; i++)
    if (b->workers[i].live && (best < 0 || b->workers[i].sessions < b->workers[best].sessions)) best = i;
  return best;
}

/* the request's "session" (as the key, prefixed 's') and "id" from its
 * top-level msgpack map; key falls back to the client's identity ('c') */
static size_t s_session_key(const void *msg, size_t len, const void *client, size_t clen, char *key, msgpack_object *id,
                            int *has_id, msgpack_unpacked *up) {
  *has_id = 0;
  size_t off = 0;
  if (msgpack_unpack_next(up, msg, len, &off) == MSGPACK_UNPACK_SUCCESS && up->data.type == MSGPACK_OBJECT_MAP) {
    const msgpack_object_map *m = &up->data.via.map;
    const msgpack_object *session = NULL;
    for (uint32_t i = 0; i < m->size; i++) {
      const msgpack_object *k = &m->ptr[i].key;
      if (k->type != MSGPACK_OBJECT_STR) continue;
      if (k->via.str.size == 7 && !memcmp(k->via.str.ptr, "session", 7) && m->ptr[i].val.type == MSGPACK_OBJECT_STR)
        session = &m->ptr[i].val;
      if (k->via.str.size == 2 && !memcmp(k->via.str.ptr, "id", 2) &&
          (m->ptr[i].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER || m->ptr[i].val.type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
        *id = m->ptr[i].val, *has_id = 1;
    }
    if (session && session->via.str.size > 0 && session->via.str.size < S_KEY_MAX - 1) {
      key[0] = 's';
      memcpy(key + 1, session->via.str.ptr, session->via.str.size);
      return 1 + session->via.str.size;
    }
  }
  key[0] = 'c';
  const size_t n = clen < S_KEY_MAX - 1 ? clen : S_KEY_MAX - 1;
  memcpy(key + 1, client, n);
  return 1 + n;
}

/* an error reply to a client, as a node writes one */
static void s_error_reply(pol_broker *b, zmq_msg_t *client, int delim, const msgpack_object *id, int has_id,
                          const char *msg) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 1 + has_id);
  msgpack_pack_str_with_body(&pk, "error", 5);
  msgpack_pack_str_with_body(&pk, msg, strlen(msg));
  if (has_id) {
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_object(&pk, *id);
  }
  if (zmq_send(b->front, zmq_msg_data(client), zmq_msg_size(client), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
    if (delim) zmq_send(b->front, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(b->front, sb.data, sb.size, ZMQ_DONTWAIT);
  }
  msgpack_sbuffer_destroy(&sb);
}

/* all remaining parts of the message being received on sock, closed */
static void s_drain(void *sock) {
  int more = 1;
  size_t sz = sizeof(more);
  while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    zmq_msg_recv(&m, sock, 0);
    zmq_msg_close(&m);
  }
}

/* one client request: [client, (empty), payload] */
static void s_frontend_one(pol_broker *b, msgpack_unpacked *up) {
  zmq_msg_t client, part[2];
  zmq_msg_init(&client);
  if (zmq_msg_recv(&client, b->front, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&client);
    return;
  }
  int n = 0, more = zmq_msg_more(&client);
  while (more && n < 2) {
    zmq_msg_init(&part[n]);
    if (zmq_msg_recv(&part[n], b->front, 0) < 0) {
      zmq_msg_close(&part[n]);
      break;
    }
    more = zmq_msg_more(&part[n]);
    n++;
  }
  if (more) s_drain(b->front);
  const int delim = n == 2 && zmq_msg_size(&part[0]) == 0;
  zmq_msg_t *payload = n ? &part[n - 1] : NULL;
  b->st.requests++;
  char key[S_KEY_MAX];
  msgpack_object id = {0};
  int has_id = 0;
  const size_t klen = payload ? s_session_key(zmq_msg_data(payload), zmq_msg_size(payload), zmq_msg_data(&client),
                                              zmq_msg_size(&client), key, &id, &has_id, up)
                              : 0;
  if (!payload) { /* nothing to route (a worker answers any other malformed message itself) */
    zmq_msg_close(&client);
    return;
  }
  s_route *r = s_route_get(b, key, klen);
  for (int attempt = 0; attempt < 2; attempt++) {
    if (r->worker >= 0 && !b->workers[r->worker].live) {
      b->st.moved++;
      r->worker = -1;
    }
    if (r->worker < 0) {
      r->worker = s_pick(b);
      if (r->worker >= 0) b->workers[r->worker].sessions++;
    }
    if (r->worker < 0) break;
    s_worker *w = &b->workers[r->worker];
    /* ROUTER_MANDATORY: a worker the backend cannot reach any more fails here */
    if (zmq_send(b->back, w->id, w->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
      s_worker_lost(b, r->worker, "the backend cannot reach it");
      continue;
    }
    zmq_send(b->back, zmq_msg_data(&client), zmq_msg_size(&client), ZMQ_SNDMORE);
    if (delim) zmq_send(b->back, "", 0, ZMQ_SNDMORE);
    for (int i = delim; i < n; i++) zmq_send(b->back, zmq_msg_data(&part[i]), zmq_msg_size(&part[i]), i + 1 < n ? ZMQ_SNDMORE : 0);
    zmq_msg_close(&client);
    for (int i = 0; i < n; i++) zmq_msg_close(&part[i]);
    return;
  }
  b->st.no_worker++;
  s_error_reply(b, &client, delim, &id, has_id,
                "lfp broker: no worker is serving (start one: lfp serve --policy P --connect BACKEND)");
  zmq_msg_close(&client);
  for (int i = 0; i < n; i++) zmq_msg_close(&part[i]);
}

/* one message from a worker: [worker, READY | HEARTBEAT] or [worker, client, (empty), reply] */
static void s_backend_one(pol_broker *b) {
  zmq_msg_t wid, m;
  zmq_msg_init(&wid);
  if (zmq_msg_recv(&wid, b->back, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&wid);
    return;
  }
  const int w = s_worker_seen(b, zmq_msg_data(&wid), zmq_msg_size(&wid));
  zmq_msg_close(&wid);
  if (w < 0) {
    s_drain(b->back);
    return;
  }
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, b->back, 0) < 0) {
    zmq_msg_close(&m);
    return;
  }
  if (!zmq_msg_more(&m)) { /* a control frame: nothing more to do */
    zmq_msg_close(&m);
    return;
  }
  /* a reply: forward [client, ...] as it is */
  int more = 1;
  int ok = zmq_send(b->front, zmq_msg_data(&m), zmq_msg_size(&m), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0;
  zmq_msg_close(&m);
  while (more) {
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, b->back, 0) < 0) {
      zmq_msg_close(&m);
      break;
    }
    more = zmq_msg_more(&m);
    if (ok) zmq_send(b->front, zmq_msg_data(&m), zmq_msg_size(&m), (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
    zmq_msg_close(&m);
  }
  if (ok) b->st.replies++;
}

static void *s_socket(pol_broker *b) {
  void *s = zmq_socket(b->ctx, ZMQ_ROUTER);
  const int linger = 0, hwm = 1000, one = 1;
  const int64_t maxmsg = (int64_t)b->cfg.max_msg;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
  zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
  zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
  zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
  zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
  if (b->allow) pol_keys_curve_server(s, b->secret);
  return s;
}

int pol_broker_bind(pol_broker *b, const char *frontend, const char *backend, char *fbound, size_t fsz, char *bbound,
                    size_t bsz, char *err, size_t errsz) {
  FC_ASSERT(!b->ctx);
  b->ctx = zmq_ctx_new();
  if (b->allow && !(b->zap = pol_keys_zap_open(b->ctx, err, errsz))) return -1;
  b->front = s_socket(b);
  b->back = s_socket(b);
  const char *which = zmq_bind(b->front, frontend) ? frontend : zmq_bind(b->back, backend) ? backend : NULL;
  if (which) return fc_set_err(err, errsz, "cannot bind %s: %s", which, zmq_strerror(zmq_errno())), -1;
  size_t sz = fsz;
  if (zmq_getsockopt(b->front, ZMQ_LAST_ENDPOINT, fbound, &sz)) snprintf(fbound, fsz, "%s", frontend);
  sz = bsz;
  if (zmq_getsockopt(b->back, ZMQ_LAST_ENDPOINT, bbound, &sz)) snprintf(bbound, bsz, "%s", backend);
  return 0;
}

int pol_broker_run(pol_broker *b, volatile sig_atomic_t *stop, char *err, size_t errsz) {
  FC_ASSERT(b->front);
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  const double period = b->cfg.heartbeat_ms * 1e-3;
  double next_beat = s_now() + period;
  zmq_pollitem_t it[3] = {{b->back, 0, ZMQ_POLLIN, 0}, {b->front, 0, ZMQ_POLLIN, 0}, {b->zap, 0, ZMQ_POLLIN, 0}};
  int rc = 0;
  while (!*stop) {
    const double now = s_now();
    long wait_ms = (long)((next_beat - now) * 1e3);
    if (wait_ms < 0) wait_ms = 0;
    if (zmq_poll(it, b->zap ? 3 : 2, wait_ms) < 0) {
      if (zmq_errno() == EINTR) continue;
      rc = (fc_set_err(err, errsz, "polling the broker's sockets failed: %s", zmq_strerror(zmq_errno())), -1);
      break;
    }
    if (b->zap && (it[2].revents & ZMQ_POLLIN)) pol_keys_zap_handle(b->zap, b->allow, b->cfg.log, "broker", &b->st.refused);
    /* replies first, then requests, a bounded number each turn */
    for (int i = 0; i < 64 && (it[0].revents & ZMQ_POLLIN); i++) {
      int ev = 0;
      size_t sz = sizeof(ev);
      zmq_getsockopt(b->back, ZMQ_EVENTS, &ev, &sz);
      if (!(ev & ZMQ_POLLIN)) break;
      s_backend_one(b);
    }
    for (int i = 0; i < 64 && (it[1].revents & ZMQ_POLLIN); i++) {
      int ev = 0;
      size_t sz = sizeof(ev);
      zmq_getsockopt(b->front, ZMQ_EVENTS, &ev, &sz);
      if (!(ev & ZMQ_POLLIN)) break;
      s_frontend_one(b, &up);
    }
    const double t = s_now();
    if (t >= next_beat) {
      const unsigned char beat = POL_BROKER_HEARTBEAT;
      for (int w = 0; w < b->nworkers; w++) {
        if (!b->workers[w].live) continue;
        if (t - b->workers[w].seen > 3 * period) {
          s_worker_lost(b, w, "no heartbeat for 3 periods");
          continue;
        }
        if (zmq_send(b->back, b->workers[w].id, b->workers[w].idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
          s_worker_lost(b, w, "the backend cannot reach it");
          continue;
        }
        zmq_send(b->back, &beat, 1, ZMQ_DONTWAIT);
      }
      next_beat = t + period;
    }
  }
  msgpack_unpacked_destroy(&up);
  return rc;
}
