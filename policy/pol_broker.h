/* pol_broker: a fleet of controller nodes behind one endpoint: ZeroMQ's
 * load-balancing broker (a ROUTER for clients, a ROUTER for workers), with
 * the Paranoid Pirate pattern's heartbeats, so a dead worker is noticed and
 * its clients move to a live one.
 *
 * Clients connect to the frontend exactly as to one node (REQ or DEALER,
 * every protocol the node speaks); workers are nodes started with
 * pol_node_connect (lfp serve --connect BACKEND), which connect a DEALER to
 * the backend, say READY and then heartbeat.
 *
 * Routing is sticky by session: the first request of a session (its
 * "session" field, else the client's connection) goes to the live worker
 * that holds the fewest sessions, and every later one to the same worker,
 * which keeps the session's observation history and sampler RNG. When that
 * worker dies (no heartbeat for 3 periods, or the backend cannot reach it)
 * the session moves to another worker and starts a fresh history there; a
 * request that was in flight on the dead worker is lost, and the client's
 * retry (Lazy Pirate, as pol_client and lfp.Client do) is answered by the
 * new one. With no live worker a request gets an error reply at once. The
 * broker parses nothing but the request's top-level "session" and "id".
 *
 * Wire between broker and worker: a worker sends [READY] (one byte 0x01)
 * when it connects and [HEARTBEAT] (0x02) every period; the broker sends
 * [HEARTBEAT] to each worker every period; requests go to a worker as
 * [client, (empty), payload] and its replies come back the same way.
 *
 * Example: a broker until *stop is set (workers: lfp serve --connect tcp://127.0.0.1:5556)
 *
 *   int broker(volatile sig_atomic_t *stop) {
 *     char err[512], fb[256], bb[256];
 *     pol_broker_config cfg;
 *     pol_broker_config_default(&cfg);
 *     pol_broker *b = pol_broker_new(&cfg);
 *     int rc = pol_broker_bind(b, "tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556", fb, sizeof fb, bb, sizeof bb, err,
 *                              sizeof err);
 *     if (!rc) rc = pol_broker_run(b, stop, err, sizeof err);
 *     if (rc) fprintf(stderr, "%s\n", err);
 *     pol_broker_stats st = pol_broker_get_stats(b);
 *     printf("%lld requests, %d workers seen\n", (long long)st.requests, st.workers_seen);
 *     pol_broker_free(b);
 *     return rc;
 *   }
 */
#ifndef POL_BROKER_H
#define POL_BROKER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define POL_BROKER_READY 0x01
#define POL_BROKER_HEARTBEAT 0x02
#define POL_BROKER_MAX_WORKERS 256

typedef struct {
  int heartbeat_ms;    /* the heartbeat period (workers use the same: lfp serve --heartbeat-ms) */
  int max_sessions;    /* sessions remembered (least recently used forgotten beyond) */
  size_t max_msg;      /* ZMQ_MAXMSGSIZE on both sockets */
  FILE *log;           /* one line per worker joining, dying, returning; or NULL */
} pol_broker_config;

typedef struct {
  int64_t requests, replies; /* forwarded to workers; forwarded back to clients */
  int64_t no_worker;         /* requests answered with an error: no live worker */
  int64_t moved;             /* sessions moved off a dead worker */
  int64_t refused;           /* CURVE clients or workers refused (pol_broker_secure) */
  int workers_seen, workers_lost, workers_live;
  int sessions;              /* remembered now */
} pol_broker_stats;

typedef struct pol_broker pol_broker;

void pol_broker_config_default(pol_broker_config *c); /* 500 ms, 4096 sessions, 16 MB, no log */
pol_broker *pol_broker_new(const pol_broker_config *c);
void pol_broker_free(pol_broker *b);
/* CURVE on both sockets (pol_keys.h), before pol_broker_bind: clients and
 * workers alike must hold a key in allow (which must outlive the broker). */
struct pol_keys_allow;
void pol_broker_secure(pol_broker *b, const char *secret_z85, const struct pol_keys_allow *allow);
/* Bind the frontend and the backend; the resolved endpoints into fbound and
 * bbound. 0, or -1 with a sentence. */
int pol_broker_bind(pol_broker *b, const char *frontend, const char *backend, char *fbound, size_t fsz, char *bbound,
                    size_t bsz, char *err, size_t errsz);
/* Route until *stop is nonzero (checked at least every heartbeat period). */
int pol_broker_run(pol_broker *b, volatile sig_atomic_t *stop, char *err, size_t errsz);
pol_broker_stats pol_broker_get_stats(const pol_broker *b);

#endif
