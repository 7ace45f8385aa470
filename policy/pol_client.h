/* pol_client: the robot stack's side of the controller node (pol_node.h),
 * protocol 1-2 over a ZeroMQ REQ socket with Lazy Pirate retries: a request
 * that gets no reply within timeout_ms is sent again on a fresh socket, up
 * to `retries` times, and then fails with a sentence naming the endpoint.
 * Replies are checked: a msgpack map (pw_scan's limits), the request's id
 * echoed, and an {"error": ...} reply turned into a sentence
 * (POL_CLIENT_REFUSED when the policy refused to act: a non-finite chunk).
 * Every request carries the client's session and a fresh id. `lfp sim`,
 * `lfp bench node` and the node's tests use it.
 *
 * Example: one infer round trip to a node serving a policy with one key
 * "obs" of 3 values and To 1
 *
 *   int one_chunk(const char *endpoint, double *actions, size_t cap) { // room for Ta x action_dim values
 *     char err[512];
 *     pol_client *c = pol_client_new(NULL, endpoint, 2000, 3, NULL, err, sizeof err);
 *     if (!c) return fprintf(stderr, "%s\n", err), -1;
 *     pol_client_info in;
 *     int rc = pol_client_get_info(c, &in, err, sizeof err);
 *     if (rc == 0) {
 *       const double obs[3] = {0.1, 0.2, 0.3};
 *       msgpack_packer *pk = pol_client_request(c, "infer", 1); // endpoint, session, id and 1 more field
 *       pw_pack_str(pk, "obs");
 *       msgpack_pack_map(pk, 1);
 *       pw_pack_str(pk, "obs");
 *       pw_pack_doubles(pk, obs, 3);
 *       rc = pol_client_call(c, err, sizeof err);
 *     }
 *     const msgpack_object *a = rc == 0 ? pw_map_get(pol_client_reply(c), "actions") : NULL;
 *     int rank;
 *     uint32_t shape[8];
 *     if (rc == 0 && (!a || pw_read_array(a, actions, cap, &rank, shape, err, sizeof err) < 0)) rc = -1;
 *     if (rc) fprintf(stderr, "%s\n", a || rc != -1 ? err : "the reply has no actions");
 *     pol_client_free(c);
 *     return rc;
 *   }
 */
#ifndef POL_CLIENT_H
#define POL_CLIENT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "pol.h"
#include "pol_wire.h"

#define POL_CLIENT_REFUSED (-2)

typedef struct pol_client pol_client;

/* A client of the node at endpoint. zctx: the ZeroMQ context to share
 * (NULL: its own). session: the session every request names (NULL:
 * "client-PID-TIME-N", unique in the process). NULL and a sentence when the
 * endpoint is malformed. */
pol_client *pol_client_new(void *zctx, const char *endpoint, int timeout_ms, int retries, const char *session,
                           char *err, size_t errsz);
/* Encrypt and authenticate with CURVE (pol_keys.h): the node's public key
 * (a .pub file) and this client's secret key (a .key file, mode 0600; its
 * public key must be in the node's allowlist). Reconnects; every retry's
 * fresh socket uses the keys too. 0, or -1 with a sentence about the files.
 * A node that does not admit the key never answers: calls time out. */
int pol_client_secure(pol_client *c, const char *server_key_path, const char *secret_key_path, char *err, size_t errsz);
void pol_client_free(pol_client *c);
void pol_client_set_session(pol_client *c, const char *session);
const char *pol_client_session(const pol_client *c);

/* Start the next request: a map of 3 + nfields entries whose first three
 * (endpoint, session, id) are packed; pack the nfields others with the
 * returned packer. */
msgpack_packer *pol_client_request(pol_client *c, const char *endpoint, int nfields);
/* Send the request and wait for its reply, retrying: 0 (the reply is
 * pol_client_reply's), -1 or POL_CLIENT_REFUSED with a sentence. */
int pol_client_call(pol_client *c, char *err, size_t errsz);
/* The same in steps, for callers that do other work meanwhile: send (a new
 * request: its retries start from 0; after one left unanswered, on a fresh
 * socket), then poll (1: the reply arrived, 0: not yet, -1 / POL_CLIENT_REFUSED: it is an
 * error), retry after a poll that timed out (the request as it is now,
 * on a fresh socket; -1 once the retries are spent). A reply resets the
 * retry count. */
int pol_client_send(pol_client *c, char *err, size_t errsz);
int pol_client_poll(pol_client *c, int ms, char *err, size_t errsz);
int pol_client_retry(pol_client *c, char *err, size_t errsz);
int pol_client_inflight(const pol_client *c);
int pol_client_timeout_ms(const pol_client *c);
double pol_client_sent_at(const pol_client *c); /* fc_now() of the last send */
/* The last reply (a map), valid until the next poll. */
const msgpack_object *pol_client_reply(const pol_client *c);

/* What the node's info endpoint says. */
typedef struct {
  int protocol;
  int64_t To, Tp, Ta, action_dim, nfe;
  double control_hz;
  char method[16], policy[512], env_args[POL_ENV_ARGS_MAX];
  char keys[POL_MAX_KEYS][64];
  int dims[POL_MAX_KEYS], nkeys;
} pol_client_info;
/* Ask for it and check it (a protocol this lfp speaks, horizons and sizes
 * within pol.h's bounds); 0, or -1 with a sentence. */
int pol_client_get_info(pol_client *c, pol_client_info *in, char *err, size_t errsz);

#endif
