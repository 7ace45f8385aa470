/* pol_node: the ZeroMQ controller node. A ROUTER socket serves any number of
 * REQ or DEALER clients; each message is one msgpack map (pol_wire.h,
 * protocol PW_PROTOCOL) and gets exactly one reply, an error reply being
 * {"error": "<sentence>"}. Endpoints:
 *   info     the policy's metadata (keys, shapes, bounds, horizons, rate, ...)
 *   infer    obs -> a chunk of Ta actions (Ta, A), seq, server timing; a batch
 *            (every key (B, n, dim)) -> actions (B, Ta, A) from one batched
 *            network evaluation per solver step (pol_sample_batch), the
 *            session's RNG drawing the noise and its history untouched
 *   observe  obs -> appended to the history, no sampling
 *   reset    clear this client's history (and reseed with "seed")
 *   ping     liveness
 * A client's observation history (and sampler RNG) lives in a session keyed
 * by its "session" field or else its ZeroMQ identity. Sessions are bounded
 * (least recently used evicted) and their memory is allocated once, so the
 * node's memory does not grow with requests or clients.
 *
 * pol_node_handle is the whole request logic without sockets (tests and the
 * fuzz target call it); pol_node_bind + pol_node_run put it on the bus.
 *
 * Example: serve a loaded policy until *stop is set (by a signal handler)
 *
 *   int serve(const pol_policy *policy, volatile sig_atomic_t *stop) {
 *     char err[512], bound[256];
 *     pol_node_config cfg;
 *     pol_node_config_default(&cfg);
 *     pol_node *n = pol_node_new(policy, &cfg);
 *     int rc = pol_node_bind(n, "tcp://127.0.0.1:5555", bound, sizeof bound, err, sizeof err);
 *     if (rc == 0) rc = pol_node_run(n, stop, err, sizeof err);  // until *stop != 0
 *     if (rc) fprintf(stderr, "%s\n", err);
 *     pol_node_free(n);
 *     return rc;
 *   }
 */
#ifndef POL_NODE_H
#define POL_NODE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pol.h"

typedef struct {
  int max_sessions;    /* clients remembered at once (LRU eviction beyond) */
  size_t max_msg;      /* larger messages get an error reply; 16x this is ZMQ_MAXMSGSIZE,
                          beyond which libzmq drops the connection */
  uint64_t seed;       /* sessions without a "seed" draw theirs from this */
  const char *name;    /* shown by info as "policy" */
  FILE *log;           /* one line per error (the first 20), or NULL */
  int sampler;         /* fc_sampler, or -1: the trained one */
  int steps;           /* ODE steps per block, or <= 0: the trained ones */
  int max_batch;       /* rows of a batched infer (default 64) */
} pol_node_config;

typedef struct {
  int64_t requests, errors, infers, sessions_created, evictions;
  int sessions; /* live now */
  int64_t refused; /* CURVE clients whose key was not allowed (pol_node_secure) */
} pol_node_stats;

typedef struct pol_node pol_node;

void pol_node_config_default(pol_node_config *c);
/* The policy must outlive the node. */
pol_node *pol_node_new(const pol_policy *p, const pol_node_config *cfg);
void pol_node_free(pol_node *n);

/* Handle one request from peer (its ZeroMQ identity, any bytes). The reply
 * stays valid until the next call. Returns 0, or 1 when it is an error reply. */
int pol_node_handle(pol_node *n, const void *peer, size_t peer_len, const void *msg, size_t len, const void **reply,
                    size_t *reply_len);

/* Requests on several threads (pol_node_run and a pol_ws thread): hold the
 * lock from pol_node_handle until done with its reply. pol_node_run and
 * pol_ws take it themselves. */
void pol_node_lock(pol_node *n);
void pol_node_unlock(pol_node *n);
/* The node's info reply (what endpoint info answers), as msgpack bytes
 * valid until the next request; call it under the lock. */
void pol_node_info(pol_node *n, const void **reply, size_t *reply_len);
/* The largest request the node reads (pol_node_config.max_msg). */
size_t pol_node_max_msg(const pol_node *n);

/* CURVE (pol_keys.h), before pol_node_bind: the ZeroMQ socket encrypts
 * every connection with the server's secret key (Z85, 40 characters) and
 * admits only clients whose public key is in allow (which must outlive the
 * node). A client with another key, a plaintext client and a client that
 * has the wrong server key get nothing (their handshake fails); the node
 * logs one line per refused key (the first 20) and counts them
 * (pol_node_stats.refused). The ZAP handler runs inside pol_node_run. */
struct pol_keys_allow;
void pol_node_secure(pol_node *n, const char *secret_z85, const struct pol_keys_allow *allow);
/* Bind a ROUTER socket (LINGER 0, MAXMSGSIZE, bounded queues). bound gets
 * the resolved endpoint (e.g. the port chosen for "tcp://127.0.0.1:*"). */
int pol_node_bind(pol_node *n, const char *endpoint, char *bound, size_t boundsz, char *err, size_t errsz);
/* Instead of pol_node_bind: a worker of a broker (pol_broker.h). A DEALER
 * connects to the broker's backend, says READY and heartbeats every
 * heartbeat_ms; a broker silent for 3 periods is reconnected to. With
 * server_key (the broker's public key), public_key and secret_key (this
 * worker's; Z85, 40 characters each) the link is CURVE-encrypted; all NULL:
 * plaintext. */
typedef struct {
  int heartbeat_ms;
  const char *server_key, *public_key, *secret_key;
} pol_node_worker;
int pol_node_connect(pol_node *n, const char *endpoint, const pol_node_worker *w, char *err, size_t errsz);
/* Serve until *stop is nonzero (checked at least every 100 ms and on EINTR). */
int pol_node_run(pol_node *n, volatile sig_atomic_t *stop, char *err, size_t errsz);

pol_node_stats pol_node_get_stats(const pol_node *n);
/* Network evaluations per chunk with the node's sampler and steps (as info reports). */
int pol_node_nfe(const pol_node *n);

#endif
