/* pol_ws: openpi's websocket protocol for a pol_node (libwebsockets), so
 * openpi's clients (openpi_client.websocket_client_policy) can drive an lfp
 * policy unchanged:
 *   - on connect the server sends its metadata: one binary msgpack frame,
 *     the node's info map;
 *   - each binary frame from the client is an observation dict (msgpack,
 *     arrays as openpi's msgpack-numpy maps): every policy key -> (dim,) or
 *     (n, dim), as the node's infer takes them; str values (openpi's
 *     "prompt") are skipped; the reply is one binary frame {"actions": (Ta,
 *     A), "server_timing": {"infer_ms", "prev_total_ms" after the first},
 *     "clipped"};
 *   - an error (a bad observation, a refused chunk) is sent as a text frame
 *     holding the sentence, then the connection is closed with 1011
 *     (internal error), as openpi's server does; a frame over the node's
 *     max_msg is closed with 1009;
 *   - HTTP GET /healthz answers 200 "OK".
 * Each connection is one session of the node (its own history and RNG,
 * named "ws-N"). The node's requests are handled one at a time, whichever
 * transport they come by, so a websocket thread and pol_node_run can serve
 * the same node at once.
 *
 * Example: serve a node over websocket until *stop (a signal handler sets it)
 *
 *   int serve_ws(pol_node *n, volatile sig_atomic_t *stop) {
 *     char err[512], bound[256];
 *     pol_ws *w = pol_ws_new(n, "ws://127.0.0.1:8000", bound, sizeof bound, err, sizeof err);
 *     if (!w) return fprintf(stderr, "%s\n", err), -1;
 *     int rc = pol_ws_run(w, stop, err, sizeof err);
 *     if (rc) fprintf(stderr, "%s\n", err);
 *     pol_ws_free(w);
 *     return rc;
 *   }
 */
#ifndef POL_WS_H
#define POL_WS_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "pol_node.h"

typedef struct pol_ws pol_ws;

/* Listen on url ("ws://HOST:PORT"; HOST an interface address, PORT 1..65535).
 * bound gets "ws://HOST:PORT". NULL and a sentence when the url is malformed
 * or the port cannot be bound. The node must outlive it. */
pol_ws *pol_ws_new(pol_node *n, const char *url, char *bound, size_t boundsz, char *err, size_t errsz);
/* Require openpi's API key: every connection must send the header
 * "Authorization: Api-Key KEY" (openpi_client's api_key), or it is refused
 * before the upgrade, with one line on log (the first 20; log may be NULL)
 * and a count (pol_ws_refused). Before pol_ws_run. */
void pol_ws_require_key(pol_ws *w, const char *key, FILE *log);
long pol_ws_refused(const pol_ws *w);
/* Serve until *stop is nonzero or pol_ws_stop is called (from any thread). */
int pol_ws_run(pol_ws *w, volatile sig_atomic_t *stop, char *err, size_t errsz);
void pol_ws_stop(pol_ws *w);
void pol_ws_free(pol_ws *w);
/* 1 when s names a websocket endpoint ("ws://..."). */
int pol_ws_url(const char *s);

#endif
