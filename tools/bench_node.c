/* lfp bench node: the ZeroMQ controller node against the raw ZeroMQ round
 * trip, measured side by side in one run on loopback TCP:
 *   zmq    REQ/REP echo of messages the size of an infer request and reply
 *   sample pol_sample on the policy, in-process
 *   infer  REQ -> the node (ROUTER, its own thread) -> reply
 * in interleaved rounds (medians of all samples), so that drift of the
 * machine hits all three alike. overhead_ratio = (infer - sample) / zmq at
 * the median: what the node adds on top of sampling, in raw round trips.
 * Then sustained infer requests/s with 1 and 4 concurrent clients (lost =
 * requests without a reply), and the process's resident memory after 1k and
 * after 100k requests (--mem-requests) to a node with few sessions (eviction running), on a
 * narrow policy of the same dimensions so that the run stays short. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "cli.h"
#include "commands.h"
#include "env.h"
#include "fc_base.h"
#include "fc_rng.h"
#include "pol_keys.h"
#include "pol_node.h"
#include "pol_train.h"
#include "pol_client.h"
#include "pol_wire.h"

/* a random-weight policy of the default training config for a task's
 * dimensions (the weights do not change the cost), or of an mlp of the
 * given width */
static pol_policy *s_default_policy(const env_model *em, int width, int recipe, char *err, size_t errsz) {
  pol_train_config tc;
  pol_train_config_default(&tc);
  if (recipe) pol_train_recipe(env_name(em), &tc);
  if (width > 0) tc.net.mlp.width = width;
  fc_lfm *flow = pol_flow_new(&tc, env_obs_dim(em), env_action_dim(em), err, errsz);
  if (!flow) return NULL;
  fc_rng r;
  fc_rng_seed(&r, 1);
  for (size_t i = 0; i < fc_lfm_nparams(flow); i++) flow->params[i] = 0.05f * (float)fc_rng_normal(&r);
  pol_meta m;
  const char *names[ENV_MAX_KEYS];
  int dims[ENV_MAX_KEYS];
  for (int k = 0; k < env_nkeys(em); k++) names[k] = env_keys(em)[k].name, dims[k] = env_keys(em)[k].dim;
  fc_norm on, an;
  if (pol_meta_init(&m, POL_LFM, tc.To, tc.Tp, tc.Ta, env_nkeys(em), names, dims, env_action_dim(em),
                    env_args_json(em), env_control_hz(em), err, errsz))
    return fc_lfm_free(flow), NULL;
  fc_norm_range(&on, m.obs_dim, -1, 1);
  fc_norm_range(&an, m.action_dim, -1, 1);
  pol_policy *p = pol_new(&m, &on, &an, flow, err, errsz);
  if (!p) fc_lfm_free(flow);
  return p;
}

/* observation value g (of obs_dim) at request t: inside the training range
 * of that value ([lo, hi] of the policy's statistics, the middle half), so
 * that a trained policy sees frames like its demonstrations' and samples as
 * it would in a rollout; the default policy's range is [-1, 1] */
static double s_obs_value(const pol_policy *p, int g, int t) {
  const double lo = p->obs_norm.lo[g], hi = p->obs_norm.hi[g];
  return lo + (hi - lo) * (0.5 + 0.25 * sin(0.1 * t + g));
}

/* the field "obs" with one frame per key (s_obs_value) */
static void s_pack_obs(const pol_policy *p, int t, msgpack_packer *pk) {
  pw_pack_str(pk, "obs");
  msgpack_pack_map(pk, (size_t)p->meta.nkeys);
  for (int k = 0, g = 0; k < p->meta.nkeys; k++) {
    double v[FC_NORM_MAX_DIM]; /* a key has at most the statistics' dimensions */
    const uint32_t shape[1] = {(uint32_t)p->meta.key_dims[k]};
    for (uint32_t j = 0; j < shape[0]; j++) v[j] = s_obs_value(p, g++, t);
    pw_pack_str(pk, p->meta.keys[k]);
    pw_pack_ndarray(pk, v, 1, shape, 4);
  }
}

/* sb holds the start of an infer request of session: its map with
 * endpoint and session packed, the obs field to follow */
static void s_infer_head(msgpack_sbuffer *sb, msgpack_packer *pk, const char *session) {
  msgpack_sbuffer_clear(sb);
  msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(pk, 3);
  pw_pack_str(pk, "endpoint");
  pw_pack_str(pk, "infer");
  pw_pack_str(pk, "session");
  pw_pack_str(pk, session);
}

/* an infer request of session "bench-batch" with To frames per key: one
 * stack (n, dim) when rows == 0, else a batch (rows, n, dim) */
static void s_stack_request(const pol_policy *p, int t, int rows, msgpack_sbuffer *sb) {
  msgpack_packer pk;
  s_infer_head(sb, &pk, "bench-batch");
  pw_pack_str(&pk, "obs");
  msgpack_pack_map(&pk, (size_t)p->meta.nkeys);
  const int To = p->meta.To, R = rows ? rows : 1;
  double *v = fc_malloc(sizeof(double) * (size_t)R * To * FC_NORM_MAX_DIM);
  for (int k = 0, g0 = 0; k < p->meta.nkeys; k++) {
    const int d = p->meta.key_dims[k];
    for (int r = 0; r < R; r++)
      for (int f = 0; f < To; f++)
        for (int j = 0; j < d; j++) v[((size_t)r * To + f) * d + j] = s_obs_value(p, g0 + j, t + r + f);
    const uint32_t shape[3] = {(uint32_t)R, (uint32_t)To, (uint32_t)d};
    pw_pack_str(&pk, p->meta.keys[k]);
    if (rows) pw_pack_ndarray(&pk, v, 3, shape, 4);
    else pw_pack_ndarray(&pk, v, 2, shape + 1, 4);
    g0 += d;
  }
  free(v);
}

/* an infer request of session "bench" (s_pack_obs), for the raw REQ socket
 * the latency rounds compare with the echo */
static void s_infer_request(const pol_policy *p, int t, msgpack_sbuffer *sb) {
  msgpack_packer pk;
  s_infer_head(sb, &pk, "bench");
  s_pack_obs(p, t, &pk);
}

static void *s_socket(void *ctx, int type, const char *ep) {
  void *s = zmq_socket(ctx, type);
  const int linger = 0;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
  if (ep) zmq_connect(s, ep);
  return s;
}

/* one REQ round trip with a timeout: reply bytes, or -1 */
static int s_roundtrip(void *sock, const void *msg, size_t len, int timeout_ms, zmq_msg_t *reply) {
  if (zmq_send(sock, msg, len, 0) < 0) return -1;
  zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&it, 1, timeout_ms) != 1) return -1;
  return zmq_msg_recv(reply, sock, 0);
}

/* ---- the node and the echo server, each in a thread ---- */

typedef struct {
  pol_node *n;
  volatile sig_atomic_t stop;
  char ep[256];
} s_server;

static void *s_node_thread(void *arg) {
  s_server *s = arg;
  char err[256];
  pol_node_run(s->n, &s->stop, err, sizeof(err));
  return NULL;
}

typedef struct {
  void *sock;
  size_t reply_len;
  _Atomic double busy_us; /* service time: the echo spins this long before replying */
  volatile sig_atomic_t stop;
} s_echo;

static void *s_echo_thread(void *arg) {
  s_echo *e = arg;
  char *reply = fc_calloc(1, e->reply_len);
  zmq_pollitem_t it = {e->sock, 0, ZMQ_POLLIN, 0};
  while (!e->stop) {
    if (zmq_poll(&it, 1, 50) != 1) continue;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, e->sock, 0) >= 0) {
      const double t0 = cli_now(), busy = atomic_load(&e->busy_us) * 1e-6;
      while (cli_now() - t0 < busy) {
      }
      zmq_send(e->sock, reply, e->reply_len, 0);
    }
    zmq_msg_close(&m);
  }
  free(reply);
  return NULL;
}

/* ---- clients for the throughput and memory runs ---- */

typedef struct {
  const pol_policy *p;
  void *ctx;
  const char *ep;
  int id, nsessions;
  double until;       /* wall-clock end, or 0 */
  long count;         /* requests to send when until == 0 */
  long sent, answered;
  pthread_barrier_t *bar; /* memory run: at request bar_at, wait twice (the main thread reads RSS in between) */
  long bar_at;
} s_client;

static void *s_client_thread(void *arg) {
  s_client *c = arg;
  char session[32], err[512];
  pol_client *cl = pol_client_new(c->ctx, c->ep, 5000, 0, "", err, sizeof(err));
  FC_ASSERT(cl); /* a tcp endpoint the node bound */
  for (long i = 0; c->until > 0 ? cli_now() < c->until : i < c->count; i++) {
    if (c->bar && i == c->bar_at) {
      pthread_barrier_wait(c->bar);
      pthread_barrier_wait(c->bar);
    }
    /* a client's own sessions, and every 8th request a new one (evicting the least recently used) */
    if (c->nsessions > 1 && i % 8 == 7) snprintf(session, sizeof(session), "c%d-once-%ld", c->id, i);
    else snprintf(session, sizeof(session), "c%d-%ld", c->id, c->nsessions > 0 ? i % c->nsessions : 0);
    pol_client_set_session(cl, session);
    s_pack_obs(c->p, (int)i, pol_client_request(cl, "infer", 1));
    c->sent++;
    /* a lost reply: the next request goes on a fresh socket (Lazy Pirate) */
    if (pol_client_call(cl, err, sizeof(err)) == 0) c->answered++;
  }
  pol_client_free(cl);
  return NULL;
}

static long s_rss_kb(void);

/* nclients clients for secs seconds, or count requests in all; with rss1k,
 * the resident memory after the first 1000 requests is read there */
static double s_run_clients(const pol_policy *p, void *ctx, const char *ep, int nclients, double secs, long count,
                            int nsessions, long *sent, long *answered, long *rss1k) {
  s_client c[8];
  pthread_t th[8];
  pthread_barrier_t bar;
  if (rss1k) pthread_barrier_init(&bar, NULL, (unsigned)nclients + 1);
  const double t0 = cli_now();
  for (int i = 0; i < nclients; i++) {
    c[i] = (s_client){p, ctx, ep, i, nsessions, secs > 0 ? t0 + secs : 0, count / nclients, 0, 0, rss1k ? &bar : NULL,
                      1000 / nclients};
    pthread_create(&th[i], NULL, s_client_thread, &c[i]);
  }
  if (rss1k) {
    pthread_barrier_wait(&bar);
    *rss1k = s_rss_kb();
    pthread_barrier_wait(&bar);
  }
  *sent = *answered = 0;
  for (int i = 0; i < nclients; i++) {
    pthread_join(th[i], NULL);
    *sent += c[i].sent;
    *answered += c[i].answered;
  }
  if (rss1k) pthread_barrier_destroy(&bar);
  return cli_now() - t0;
}

/* the node's server_timing in a reply: handle_us and sample_us (NAN if absent) */
static void s_server_timing(zmq_msg_t *reply, double *handle, double *sample) {
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  *handle = *sample = NAN;
  if (msgpack_unpack_next(&up, zmq_msg_data(reply), zmq_msg_size(reply), &off) == MSGPACK_UNPACK_SUCCESS) {
    const msgpack_object *t = pw_map_get(&up.data, "server_timing");
    if (t) {
      pw_map_num(t, "handle_us", handle);
      pw_map_num(t, "sample_us", sample);
    }
  }
  msgpack_unpacked_destroy(&up);
}

/* The cost of CURVE: a second node on the same policy with CURVE (fresh key
 * pairs in a scratch folder, the client's key allowed), and ping and infer
 * round trips to both, interleaved; p50s in us[4]: ping plain, ping curve,
 * infer plain, infer curve. 0, or -1 with a sentence. */
static int s_curve_cost(const pol_policy *p, void *ctx, void *plain, int rounds, int per_round, double us[4], char *err,
                        size_t errsz) {
  char dir[] = "/tmp/lfp_bench_curve_XXXXXX", name[64], path[96], sec[41], pub[41], spub[41];
  if (!mkdtemp(dir)) return fc_set_err(err, errsz, "cannot make a scratch folder for the CURVE keys"), -1;
  snprintf(name, sizeof(name), "%s/server", dir);
  int rc = pol_keys_generate(name, err, errsz);
  snprintf(name, sizeof(name), "%s/client", dir);
  if (!rc) rc = pol_keys_generate(name, err, errsz);
  snprintf(path, sizeof(path), "%s/server.key", dir);
  char ssec[41];
  if (!rc) rc = pol_keys_read_secret(path, ssec, spub, err, errsz);
  snprintf(path, sizeof(path), "%s/client.key", dir);
  if (!rc) rc = pol_keys_read_secret(path, sec, pub, err, errsz);
  pol_keys_allow *allow = rc ? NULL : pol_keys_allow_load(dir, err, errsz);
  static const char *const files[] = {"server.key", "server.pub", "client.key", "client.pub"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
  if (!allow) return -1;
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  s_server srv = {pol_node_new(p, &cfg), 0, ""};
  pol_node_secure(srv.n, ssec, allow);
  if (pol_node_bind(srv.n, "tcp://127.0.0.1:*", srv.ep, sizeof(srv.ep), err, errsz)) {
    pol_node_free(srv.n);
    pol_keys_allow_free(allow);
    return -1;
  }
  pthread_t th;
  pthread_create(&th, NULL, s_node_thread, &srv);
  void *cs = s_socket(ctx, ZMQ_REQ, NULL);
  zmq_setsockopt(cs, ZMQ_CURVE_SERVERKEY, spub, 41);
  zmq_setsockopt(cs, ZMQ_CURVE_PUBLICKEY, pub, 41);
  zmq_setsockopt(cs, ZMQ_CURVE_SECRETKEY, sec, 41);
  zmq_connect(cs, srv.ep);
  msgpack_sbuffer ping, req;
  msgpack_sbuffer_init(&ping);
  msgpack_sbuffer_init(&req);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &ping, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str_with_body(&pk, "endpoint", 8);
  msgpack_pack_str_with_body(&pk, "ping", 4);
  const int n = rounds * per_round;
  double *t[4];
  for (int k = 0; k < 4; k++) t[k] = fc_malloc(sizeof(double) * (size_t)n);
  zmq_msg_t reply;
  zmq_msg_init(&reply);
  long lost = 0;
  for (int w = 0; w < 20; w++) lost += s_roundtrip(cs, ping.data, ping.size, 5000, &reply) < 0;
  for (int r = 0, k = 0; r < rounds && !lost; r++, k += per_round)
    for (int kind = 0; kind < 4; kind++)
      for (int i = 0; i < per_round; i++) {
        void *sock = kind & 1 ? cs : plain;
        const msgpack_sbuffer *m = &ping;
        if (kind >= 2) {
          s_infer_request(p, k + i, &req);
          m = &req;
        }
        const double t0 = cli_now();
        if (s_roundtrip(sock, m->data, m->size, 5000, &reply) < 0) lost++;
        t[kind][k + i] = (cli_now() - t0) * 1e6;
      }
  for (int k = 0; k < 4; k++) {
    fc_sort(t[k], n);
    us[k] = fc_quantile(t[k], n, 0.5);
    free(t[k]);
  }
  zmq_msg_close(&reply);
  zmq_close(cs);
  msgpack_sbuffer_destroy(&ping);
  msgpack_sbuffer_destroy(&req);
  srv.stop = 1;
  pthread_join(th, NULL);
  pol_node_free(srv.n);
  pol_keys_allow_free(allow);
  memset(ssec, 0, sizeof(ssec));
  memset(sec, 0, sizeof(sec));
  if (lost) return fc_set_err(err, errsz, "the CURVE node at %s did not answer", srv.ep), -1;
  return 0;
}

static long s_rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

int bench_node(int argc, char **argv) {
  const char *path = NULL, *envname = "lift";
  int json = 0, rounds = 10, per_round = 100, mem_requests = 100000;
  double secs = 3;
  int batch = 16, width = 0, recipe = 0;
  cli_opt opts[] = {
      {"--policy", CLI_STR, &path, "policy file (default: random weights, the default training config, --env's dimensions)", NULL, 0, 0},
      {"--env", CLI_STR, &envname, "task whose dimensions the default policy takes", NULL, 0, 0},
      {"--rounds", CLI_INT, &rounds, "interleaved rounds of zmq / sample / infer latency", NULL, 1, 1000},
      {"--per-round", CLI_INT, &per_round, "round trips of each kind per round", NULL, 1, 100000},
      {"--seconds", CLI_DOUBLE, &secs, "duration of each throughput run", NULL, 0.1, 600},
      {"--recipe", CLI_FLAG, &recipe, "the default policy's network is --env's training recipe (pusht: the U-Net)",
       NULL, 0, 0},
      {"--width", CLI_INT, &width, "the default policy's network width (default: lfp train's)", NULL, 8, 4096},
      {"--batch", CLI_INT, &batch, "rows of the batched infer compared with one-at-a-time infers", NULL, 2, 64},
      {"--mem-requests", CLI_INT, &mem_requests, "requests of the memory run (resident size after 1k and at the end; at least 2000)",
       NULL, 2000, 100000000},
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("bench node", "lfp bench node [--policy POLICY.lfp] [--mem-requests N] [--json]", argc, argv, opts,
                     (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  char err[512];
  env_model *em = env_model_new(envname, err, sizeof(err));
  if (!em) {
    cli_error("bench", "%s", err);
    return 1;
  }
  pol_policy *p = path ? pol_load(path, err, sizeof(err)) : s_default_policy(em, width, recipe, err, sizeof(err));
  pol_policy *small = s_default_policy(em, 32, 0, err, sizeof(err));
  if (!p || !small) {
    cli_error("bench", "%s", err);
    env_model_free(em);
    pol_free(p);
    return 1;
  }

  void *ctx = zmq_ctx_new();
  /* the node */
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  s_server srv = {pol_node_new(p, &cfg), 0, ""};
  if (pol_node_bind(srv.n, "tcp://127.0.0.1:*", srv.ep, sizeof(srv.ep), err, sizeof(err))) {
    cli_error("bench", "%s", err);
    return 1;
  }
  pthread_t node_th;
  pthread_create(&node_th, NULL, s_node_thread, &srv);

  /* sizes of a real request and reply, for the echo */
  msgpack_sbuffer req;
  msgpack_sbuffer_init(&req);
  s_infer_request(p, 0, &req);
  void *cli = s_socket(ctx, ZMQ_REQ, srv.ep);
  zmq_msg_t reply;
  zmq_msg_init(&reply);
  const int rlen = s_roundtrip(cli, req.data, req.size, 5000, &reply);
  if (rlen < 0) {
    cli_error("bench", "the node at %s did not answer", srv.ep);
    return 1;
  }
  s_echo echo = {s_socket(ctx, ZMQ_REP, NULL), (size_t)rlen, 0.0, 0};
  char echo_ep[256];
  size_t echo_len = sizeof(echo_ep);
  zmq_bind(echo.sock, "tcp://127.0.0.1:*");
  zmq_getsockopt(echo.sock, ZMQ_LAST_ENDPOINT, echo_ep, &echo_len);
  pthread_t echo_th;
  pthread_create(&echo_th, NULL, s_echo_thread, &echo);
  void *raw = s_socket(ctx, ZMQ_REQ, echo_ep);

  /* interleaved latency rounds */
  const int n = rounds * per_round;
  double *zl = fc_malloc(sizeof(double) * n), *sl = fc_malloc(sizeof(double) * n), *il = fc_malloc(sizeof(double) * n);
  double *bl = fc_malloc(sizeof(double) * n); /* raw round trip minus the echo's service time */
  double *hl = fc_malloc(sizeof(double) * n), *nl = fc_malloc(sizeof(double) * n); /* the node's own handle / sample */
  pol_data *pd = pol_data_new(p, 3);
  double *frame = fc_calloc((size_t)p->meta.obs_dim, sizeof(double));
  for (int g = 0; g < p->meta.obs_dim; g++) frame[g] = s_obs_value(p, g, 0);
  double *acts = fc_malloc(sizeof(double) * (size_t)p->meta.Ta * p->meta.action_dim);
  char why[256] = "";
  long lost = 0, refused = 0; /* refused: observations or chunks the policy refused (non-finite) */
  refused += pol_observe(p, pd, frame, why, sizeof(why)) < 0;
  for (int w = 0; w < 20; w++) { /* warm-up */
    s_roundtrip(raw, req.data, req.size, 5000, &reply);
    s_roundtrip(cli, req.data, req.size, 5000, &reply);
  }
  /* the sampling time, for the echo's service time */
  for (int i = 0; i < 200; i++) {
    const double t0 = cli_now();
    refused += pol_sample(p, pd, acts, why, sizeof(why)) < 0;
    sl[i % n] = (cli_now() - t0) * 1e6;
  }
  fc_sort(sl, n < 200 ? n : 200);
  const double service = fc_quantile(sl, n < 200 ? n : 200, 0.5);
  for (int r = 0, k = 0; r < rounds; r++, k += per_round) {
    for (int i = 0; i < per_round; i++) {
      const double t0 = cli_now();
      if (s_roundtrip(raw, req.data, req.size, 5000, &reply) < 0) lost++;
      zl[k + i] = (cli_now() - t0) * 1e6;
    }
    atomic_store(&echo.busy_us, service);
    for (int i = 0; i < per_round; i++) {
      const double t0 = cli_now();
      if (s_roundtrip(raw, req.data, req.size, 5000, &reply) < 0) lost++;
      bl[k + i] = (cli_now() - t0) * 1e6 - service;
    }
    atomic_store(&echo.busy_us, 0.0);
    for (int i = 0; i < per_round; i++) {
      const double t0 = cli_now();
      refused += pol_sample(p, pd, acts, why, sizeof(why)) < 0;
      sl[k + i] = (cli_now() - t0) * 1e6;
    }
    for (int i = 0; i < per_round; i++) {
      s_infer_request(p, k + i, &req);
      const double t0 = cli_now();
      if (s_roundtrip(cli, req.data, req.size, 5000, &reply) < 0) lost++;
      il[k + i] = (cli_now() - t0) * 1e6;
      s_server_timing(&reply, &hl[k + i], &nl[k + i]);
    }
  }
  fc_sort(zl, n);
  fc_sort(sl, n);
  fc_sort(il, n);
  fc_sort(bl, n);
  const double b50 = fc_quantile(bl, n, 0.5), b99 = fc_quantile(bl, n, 0.99);
  fc_sort(hl, n);
  fc_sort(nl, n);
  const double h50 = fc_quantile(hl, n, 0.5), n50 = fc_quantile(nl, n, 0.5);
  const double z50 = fc_quantile(zl, n, 0.5), z99 = fc_quantile(zl, n, 0.99);
  const double s50 = fc_quantile(sl, n, 0.5), s99 = fc_quantile(sl, n, 0.99);
  const double i50 = fc_quantile(il, n, 0.5), i99 = fc_quantile(il, n, 0.99);
  /* what the node adds on top of sampling, in round trips of a bare REQ/REP
   * server that holds each request for the same time (a client that waits
   * a millisecond pays for waking up, whatever the server) */
  const double overhead = (i50 - s50) / b50, overhead_idle = (i50 - s50) / z50;

  /* throughput */
  long sent1, ans1, sent4, ans4;
  const double d1 = s_run_clients(p, ctx, srv.ep, 1, secs, 0, 1, &sent1, &ans1, NULL);
  const double d4 = s_run_clients(p, ctx, srv.ep, 4, secs, 0, 1, &sent4, &ans4, NULL);
  lost += (sent1 - ans1) + (sent4 - ans4);
  const double rps1 = ans1 / d1, rps4 = ans4 / d4;

  /* batched infer: B chunks in one request of B rows against B requests
   * of one stack each (the same frames), alternated, over the node and in
   * process (pol_sample_batch against B pol_sample calls) */
  const int brounds = rounds < 5 ? 5 : rounds, breps = 4;
  double *bratio = fc_malloc(sizeof(double) * brounds), *bratio_local = fc_malloc(sizeof(double) * brounds);
  double bt_one = 0, bt_batch = 0, bl_one = 0, bl_batch = 0;
  msgpack_sbuffer breq, sreq;
  msgpack_sbuffer_init(&breq);
  msgpack_sbuffer_init(&sreq);
  s_stack_request(p, 0, batch, &breq);
  pol_batch *pb = pol_batch_new(p, batch);
  double *bframes = fc_malloc(sizeof(double) * (size_t)batch * p->meta.To * p->meta.obs_dim);
  double *bacts = fc_malloc(sizeof(double) * (size_t)batch * p->meta.Ta * p->meta.action_dim);
  for (int r = 0; r < batch; r++)
    for (int f = 0; f < p->meta.To; f++)
      for (int g = 0; g < p->meta.obs_dim; g++)
        bframes[((size_t)r * p->meta.To + f) * p->meta.obs_dim + g] = s_obs_value(p, g, r + f);
  fc_rng brng;
  fc_rng_seed(&brng, 5);
  long brefused = 0;
  for (int w = 0; w < 3; w++) { /* warm-up */
    s_roundtrip(cli, breq.data, breq.size, 5000, &reply);
    s_stack_request(p, w, 0, &sreq);
    s_roundtrip(cli, sreq.data, sreq.size, 5000, &reply);
  }
  for (int r = 0; r < brounds; r++) {
    double t0 = cli_now();
    for (int q = 0; q < breps; q++)
      for (int i = 0; i < batch; i++) {
        s_stack_request(p, i, 0, &sreq);
        if (s_roundtrip(cli, sreq.data, sreq.size, 5000, &reply) < 0) lost++;
      }
    const double one = cli_now() - t0;
    t0 = cli_now();
    for (int q = 0; q < breps; q++) {
      s_stack_request(p, 0, batch, &breq); /* built per request, as the single ones are */
      if (s_roundtrip(cli, breq.data, breq.size, 5000, &reply) < 0) lost++;
    }
    const double bat = cli_now() - t0;
    bratio[r] = one / bat;
    bt_one += one, bt_batch += bat;
    t0 = cli_now();
    for (int q = 0; q < breps; q++)
      for (int i = 0; i < batch; i++) {
        pol_forget(pd);
        for (int f = 0; f < p->meta.To; f++)
          refused += pol_observe(p, pd, bframes + ((size_t)i * p->meta.To + f) * p->meta.obs_dim, why, sizeof(why)) < 0;
        brefused += pol_sample(p, pd, acts, why, sizeof(why)) < 0;
      }
    const double lone = cli_now() - t0;
    t0 = cli_now();
    for (int q = 0; q < breps; q++)
      brefused += pol_sample_batch(p, pb, bframes, batch, p->meta.To, p->flow->cfg.sampler, p->flow->cfg.steps, &brng,
                                   p->meta.Ta, bacts, why, sizeof(why)) < 0;
    const double lbat = cli_now() - t0;
    bratio_local[r] = lone / lbat;
    bl_one += lone, bl_batch += lbat;
  }
  fc_sort(bratio, brounds);
  fc_sort(bratio_local, brounds);
  const double batch_ratio = fc_quantile(bratio, brounds, 0.5), batch_ratio_local = fc_quantile(bratio_local, brounds, 0.5);
  const double chunks = (double)brounds * breps * batch;
  const double cps_one = chunks / bt_one, cps_batch = chunks / bt_batch;
  const double cps_local_one = chunks / bl_one, cps_local_batch = chunks / bl_batch;
  refused += brefused;
  pol_batch_free(pb);
  free(bframes);
  free(bacts);
  msgpack_sbuffer_destroy(&breq);
  msgpack_sbuffer_destroy(&sreq);

  /* CURVE against plaintext, on the same policy */
  double cv[4];
  if (s_curve_cost(p, ctx, cli, rounds, per_round, cv, err, sizeof(err))) {
    cli_error("bench", "%s", err);
    return 1;
  }

  /* memory: a node on the narrow policy with 16 sessions; 4 clients with 4
   * sessions each, and a new session every 8th request */
  pol_node_config mcfg;
  pol_node_config_default(&mcfg);
  mcfg.max_sessions = 16;
  s_server msrv = {pol_node_new(small, &mcfg), 0, ""};
  pol_node_bind(msrv.n, "tcp://127.0.0.1:*", msrv.ep, sizeof(msrv.ep), err, sizeof(err));
  pthread_t mth;
  pthread_create(&mth, NULL, s_node_thread, &msrv);
  long ms, ma, rss_1k;
  const double mem_secs = s_run_clients(small, ctx, msrv.ep, 4, 0, mem_requests, 4, &ms, &ma, &rss_1k);
  lost += ms - ma;
  const long rss_end = s_rss_kb();
  const pol_node_stats mst = pol_node_get_stats(msrv.n);
  msrv.stop = 1;
  pthread_join(mth, NULL);

  char desc[128];
  snprintf(desc, sizeof(desc), "a default %s-sized policy (random weights, %s)", env_name(em),
           recipe ? "the task's recipe" : width ? "the given width" : "lfp train's default network");
  printf("lfp bench node: %s (%s, NFE %d), loopback TCP, %d x %d round trips of each kind interleaved\n",
         path ? path : desc, pol_method_name((pol_method)p->meta.method),
         pol_nfe(p, p->flow->cfg.sampler, p->flow->cfg.steps), rounds, per_round);
  printf("  raw ZeroMQ REQ/REP round trip   p50 %7.0f us  p99 %7.0f us  (%zu-byte request, %d-byte reply)\n", z50, z99,
         req.size, rlen);
  printf("  ... with a %4.0f us service time p50 %7.0f us  p99 %7.0f us  (round trip minus the service time)\n", service,
         b50, b99);
  printf("  policy sampling (in-process)    p50 %7.0f us  p99 %7.0f us\n", s50, s99);
  printf("  infer round trip via the node   p50 %7.0f us  p99 %7.0f us\n", i50, i99);
  printf("    of which in the node: handling p50 %.0f us, sampling p50 %.0f us\n", h50, n50);
  printf("  the node adds %.0f us on top of sampling = %.2fx the raw round trip at equal service time (target <= 2);\n"
         "    %.2fx the round trip of an echo that answers at once\n",
         i50 - s50, overhead, overhead_idle);
  printf("  sustained: %.0f requests/s with 1 client, %.0f with 4 clients; %ld requests lost\n", rps1, rps4, lost);
  printf("  batched infer, B = %d: %.0f chunks/s in batches, %.0f one at a time: %.2fx (median of %d rounds; target "
         ">= 4x)\n    in process (pol_sample_batch vs %d pol_sample): %.0f vs %.0f chunks/s, %.2fx\n",
         batch, cps_batch, cps_one, batch_ratio, brounds, batch, cps_local_batch, cps_local_one, batch_ratio_local);
  printf("  CURVE (encrypted, allowlisted) against plaintext: ping p50 %.0f vs %.0f us (%+.0f), infer p50 %.0f vs %.0f "
         "us (%+.0f)\n", cv[1], cv[0], cv[1] - cv[0], cv[3], cv[2], cv[3] - cv[2]);
  printf("  memory: %ld kB resident after 1k requests, %ld kB after %d (%+ld kB; %lld sessions created, %lld evicted, "
         "%.1f s)\n",
         rss_1k, rss_end, mem_requests, rss_end - rss_1k, (long long)mst.sessions_created, (long long)mst.evictions, mem_secs);
  if (json) {
    cli_json_stdout();
    printf("{\"policy\": ");
    fc_json_str(stdout, path ? path : "default");
    printf(", \"nfe\": %d, \"zmq_rtt_us_p50\": ", pol_nfe(p, p->flow->cfg.sampler, p->flow->cfg.steps));
    fc_json_num(stdout, z50);
    printf(", \"zmq_rtt_us_p99\": ");
    fc_json_num(stdout, z99);
    printf(", \"zmq_rtt_service_us_p50\": ");
    fc_json_num(stdout, b50);
    printf(", \"zmq_rtt_service_us_p99\": ");
    fc_json_num(stdout, b99);
    printf(", \"sample_us_p50\": ");
    fc_json_num(stdout, s50);
    printf(", \"sample_us_p99\": ");
    fc_json_num(stdout, s99);
    printf(", \"infer_rtt_us_p50\": ");
    fc_json_num(stdout, i50);
    printf(", \"infer_rtt_us_p99\": ");
    fc_json_num(stdout, i99);
    printf(", \"overhead_ratio\": ");
    fc_json_num(stdout, overhead);
    printf(", \"overhead_ratio_idle_echo\": ");
    fc_json_num(stdout, overhead_idle);
    printf(", \"node_handle_us_p50\": ");
    fc_json_num(stdout, h50);
    printf(", \"ping_rtt_us_p50\": ");
    fc_json_num(stdout, cv[0]);
    printf(", \"curve_ping_rtt_us_p50\": ");
    fc_json_num(stdout, cv[1]);
    printf(", \"plain_infer_rtt_us_p50\": ");
    fc_json_num(stdout, cv[2]);
    printf(", \"curve_infer_rtt_us_p50\": ");
    fc_json_num(stdout, cv[3]);
    printf(", \"batch\": %d, \"batch_chunks_per_s\": ", batch);
    fc_json_num(stdout, cps_batch);
    printf(", \"single_chunks_per_s\": ");
    fc_json_num(stdout, cps_one);
    printf(", \"batch_speedup\": ");
    fc_json_num(stdout, batch_ratio);
    printf(", \"batch_speedup_in_process\": ");
    fc_json_num(stdout, batch_ratio_local);
    printf(", \"rps_1\": ");
    fc_json_num(stdout, rps1);
    printf(", \"rps_4\": ");
    fc_json_num(stdout, rps4);
    printf(", \"lost\": %ld, \"rss_kb_1k\": %ld, \"rss_kb_end\": %ld, \"mem_requests\": %d, \"evictions\": %lld}\n",
           lost, rss_1k, rss_end, mem_requests, (long long)mst.evictions);
  }
  echo.stop = 1;
  pthread_join(echo_th, NULL);
  srv.stop = 1;
  pthread_join(node_th, NULL);
  zmq_msg_close(&reply);
  msgpack_sbuffer_destroy(&req);
  zmq_close(cli);
  zmq_close(raw);
  zmq_close(echo.sock);
  zmq_ctx_term(ctx);
  pol_node_free(srv.n);
  pol_node_free(msrv.n);
  pol_data_free(pd);
  free(frame);
  free(acts);
  free(bratio);
  free(bratio_local);
  free(zl);
  free(sl);
  free(il);
  free(hl);
  free(bl);
  free(nl);
  pol_free(p);
  pol_free(small);
  env_model_free(em);
  if (refused) {
    cli_error("bench", "the policy refused %ld of its in-process chunks, so its sampling figures are void: %s", refused, why);
    return 1;
  }
  return 0;
}
