/* pol_ws: openpi's websocket protocol over libwebsockets. */
#include "pol_ws.h"

#include <libwebsockets.h>
#include <msgpack.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_base.h"
#include "pol_wire.h"

#define S_CLOSE_INTERNAL 1011 /* openpi's server closes with INTERNAL_ERROR after an error */
#define S_CLOSE_TOO_BIG 1009

struct pol_ws {
  pol_node *n;
  struct lws_context *ctx;
  char iface[128];
  int port;
  atomic_int stop;
  long conns;
  char api_key[264]; /* "Api-Key K" required of every connection (pol_ws_require_key), or "" */
  FILE *log;
  long refused;
};

void pol_ws_require_key(pol_ws *w, const char *key, FILE *log) {
  snprintf(w->api_key, sizeof(w->api_key), "Api-Key %s", key);
  w->log = log;
}

long pol_ws_refused(const pol_ws *w) { return w->refused; }

/* openpi's Authorization header against the key, in time independent of
 * where they differ */
static int s_key_ok(const pol_ws *w, struct lws *wsi) {
  char got[264] = "";
  const int n = lws_hdr_copy(wsi, got, sizeof(got), WSI_TOKEN_HTTP_AUTHORIZATION);
  const size_t want = strlen(w->api_key);
  if (n < 0 || (size_t)n != want) return 0;
  unsigned char diff = 0;
  for (size_t i = 0; i < want; i++) diff |= (unsigned char)(got[i] ^ w->api_key[i]);
  return diff == 0;
}

/* one connection: its session, the frame being received, the frame to send */
typedef struct {
  char session[32];
  unsigned char *rx;
  size_t rxlen, rxcap;
  int rx_ready, rx_binary, too_big;
  unsigned char *tx; /* LWS_PRE bytes of room, then the frame */
  size_t txlen;
  int tx_text, close_after;
  double prev_total_ms; /* the last request's time, openpi's server_timing.prev_total_ms */
  int has_prev;
} s_conn;

static void s_set_tx(s_conn *c, const void *data, size_t len, int text, int close_after) {
  free(c->tx);
  c->tx = fc_malloc(LWS_PRE + len + 1);
  memcpy(c->tx + LWS_PRE, data, len);
  c->txlen = len, c->tx_text = text, c->close_after = close_after;
}

static void s_error_frame(s_conn *c, const char *msg) { s_set_tx(c, msg, strlen(msg), 1, 1); }

/* an observation frame -> the node's infer -> openpi's reply (or an error frame) */
static void s_handle(pol_ws *w, s_conn *c) {
  const double t0 = fc_now();
  char err[512];
  if (!c->rx_binary) return s_error_frame(c, "expected a binary frame: a msgpack map of observations");
  if (pw_scan(c->rx, c->rxlen, err, sizeof(err))) return s_error_frame(c, err);
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  if (msgpack_unpack_next(&up, (const char *)c->rx, c->rxlen, &off) != MSGPACK_UNPACK_SUCCESS ||
      up.data.type != MSGPACK_OBJECT_MAP) {
    msgpack_unpacked_destroy(&up);
    return s_error_frame(c, "the frame is not a msgpack map of observations");
  }
  /* the node's request: {"endpoint": "infer", "session": ..., "obs": {arrays}} (str values, openpi's prompt, skipped) */
  const msgpack_object *m = &up.data;
  uint32_t narrays = 0;
  for (uint32_t i = 0; i < m->via.map.size; i++) narrays += m->via.map.ptr[i].val.type != MSGPACK_OBJECT_STR;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 3);
  pw_pack_str(&pk, "endpoint");
  pw_pack_str(&pk, "infer");
  pw_pack_str(&pk, "session");
  pw_pack_str(&pk, c->session);
  pw_pack_str(&pk, "obs");
  msgpack_pack_map(&pk, narrays);
  for (uint32_t i = 0; i < m->via.map.size; i++)
    if (m->via.map.ptr[i].val.type != MSGPACK_OBJECT_STR) {
      msgpack_pack_object(&pk, m->via.map.ptr[i].key);
      msgpack_pack_object(&pk, m->via.map.ptr[i].val);
    }
  msgpack_unpacked_destroy(&up);
  pol_node_lock(w->n);
  const void *reply;
  size_t rlen;
  pol_node_handle(w->n, c->session, strlen(c->session), sb.data, sb.size, &reply, &rlen);
  msgpack_sbuffer_destroy(&sb);
  /* the node's reply -> openpi's */
  msgpack_unpacked_init(&up);
  off = 0;
  FC_ASSERT(msgpack_unpack_next(&up, reply, rlen, &off) == MSGPACK_UNPACK_SUCCESS);
  pol_node_unlock(w->n);
  const msgpack_object *r = &up.data, *e = pw_map_get(r, "error");
  if (e) {
    if (pw_map_str(r, "error", err, sizeof(err))) snprintf(err, sizeof(err), "error");
    msgpack_unpacked_destroy(&up);
    return s_error_frame(c, err);
  }
  double sample_us = 0;
  int64_t clipped = 0;
  const msgpack_object *t = pw_map_get(r, "server_timing");
  if (t) pw_map_num(t, "sample_us", &sample_us);
  pw_map_int(r, "clipped", &clipped);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 3);
  pw_pack_str(&pk, "actions");
  msgpack_pack_object(&pk, *pw_map_get(r, "actions"));
  pw_pack_str(&pk, "clipped");
  msgpack_pack_int64(&pk, clipped);
  pw_pack_str(&pk, "server_timing");
  msgpack_pack_map(&pk, 1 + c->has_prev);
  pw_pack_str(&pk, "infer_ms");
  msgpack_pack_double(&pk, sample_us * 1e-3);
  if (c->has_prev) {
    pw_pack_str(&pk, "prev_total_ms");
    msgpack_pack_double(&pk, c->prev_total_ms);
  }
  msgpack_unpacked_destroy(&up);
  s_set_tx(c, sb.data, sb.size, 0, 0);
  msgpack_sbuffer_destroy(&sb);
  c->prev_total_ms = (fc_now() - t0) * 1e3, c->has_prev = 1;
}

static int s_healthz(struct lws *wsi, const char *uri) {
  const int ok = !strcmp(uri, "/healthz");
  unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
  const char *body = ok ? "OK\n" : "not found: this is an lfp node (websocket, and GET /healthz)\n";
  if (lws_add_http_common_headers(wsi, ok ? HTTP_STATUS_OK : HTTP_STATUS_NOT_FOUND, "text/plain", strlen(body), &p, end) ||
      lws_finalize_write_http_header(wsi, start, &p, end))
    return 1;
  unsigned char out[LWS_PRE + 128];
  memcpy(out + LWS_PRE, body, strlen(body));
  if (lws_write(wsi, out + LWS_PRE, strlen(body), LWS_WRITE_HTTP_FINAL) < 0) return 1;
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int s_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  pol_ws *w = lws_context_user(lws_get_context(wsi));
  s_conn *c = user;
  switch (reason) {
  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    /* before the upgrade: a connection without the API key is refused */
    if (w->api_key[0] && !s_key_ok(w, wsi)) {
      w->refused++;
      if (w->log && w->refused <= 20) {
        fprintf(w->log, "lfp serve: refused a websocket client: %s API key (openpi's Authorization: Api-Key header)\n",
                lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 ? "a wrong" : "no");
        fflush(w->log);
      }
      return 1;
    }
    return 0;
  case LWS_CALLBACK_HTTP:
    return s_healthz(wsi, in ? (const char *)in : "");
  case LWS_CALLBACK_ESTABLISHED: {
    memset(c, 0, sizeof(*c));
    snprintf(c->session, sizeof(c->session), "ws-%ld", ++w->conns);
    pol_node_lock(w->n);
    const void *info;
    size_t ilen;
    pol_node_info(w->n, &info, &ilen); /* openpi's metadata frame */
    s_set_tx(c, info, ilen, 0, 0);
    pol_node_unlock(w->n);
    lws_callback_on_writable(wsi);
    return 0;
  }
  case LWS_CALLBACK_RECEIVE: {
    if (lws_is_first_fragment(wsi)) c->rxlen = 0, c->too_big = 0, c->rx_binary = lws_frame_is_binary(wsi);
    const size_t max = pol_node_max_msg(w->n);
    if (!c->too_big && c->rxlen + len > max) c->too_big = 1;
    if (!c->too_big) {
      if (c->rxlen + len > c->rxcap) {
        c->rxcap = (c->rxlen + len) * 2 < max ? (c->rxlen + len) * 2 : max;
        c->rx = realloc(c->rx, c->rxcap);
        FC_ASSERT(c->rx);
      }
      memcpy(c->rx + c->rxlen, in, len);
      c->rxlen += len;
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
    if (c->too_big) {
      char msg[128];
      snprintf(msg, sizeof(msg), "frame over the node's limit of %zu bytes", max);
      lws_close_reason(wsi, S_CLOSE_TOO_BIG, (unsigned char *)msg, strlen(msg));
      return -1;
    }
    c->rx_ready = 1;
    if (!c->tx) {
      s_handle(w, c);
      c->rx_ready = 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
  }
  case LWS_CALLBACK_SERVER_WRITEABLE: {
    if (!c->tx) return 0;
    const int n = lws_write(wsi, c->tx + LWS_PRE, c->txlen, c->tx_text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
    free(c->tx);
    c->tx = NULL;
    if (n < 0) return -1;
    if (c->close_after) {
      static const char why[] = "internal error";
      lws_close_reason(wsi, S_CLOSE_INTERNAL, (unsigned char *)why, sizeof(why) - 1);
      return -1;
    }
    if (c->rx_ready) { /* a frame that arrived while this one waited */
      s_handle(w, c);
      c->rx_ready = 0;
      lws_callback_on_writable(wsi);
    }
    return 0;
  }
  case LWS_CALLBACK_CLOSED:
    free(c->rx);
    free(c->tx);
    c->rx = c->tx = NULL;
    return 0;
  default:
    return 0;
  }
}

static const struct lws_protocols s_protocols[] = {
    {"lfp", s_callback, sizeof(s_conn), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int pol_ws_url(const char *s) { return !strncmp(s, "ws://", 5); }

pol_ws *pol_ws_new(pol_node *n, const char *url, char *bound, size_t boundsz, char *err, size_t errsz) {
  if (!pol_ws_url(url)) return fc_set_err(err, errsz, "'%s' is not a websocket endpoint (ws://HOST:PORT)", url), NULL;
  const char *host = url + 5, *colon = strrchr(host, ':');
  char *end;
  const long port = colon ? strtol(colon + 1, &end, 10) : 0;
  if (!colon || colon == host || (size_t)(colon - host) >= 128 || !colon[1] || *end || port < 1 || port > 65535)
    return fc_set_err(err, errsz, "'%s' is not ws://HOST:PORT with a port in 1..65535", url), NULL;
  pol_ws *w = fc_calloc(1, sizeof(*w));
  w->n = n;
  memcpy(w->iface, host, (size_t)(colon - host));
  w->port = (int)port;
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof(info));
  info.port = w->port;
  info.iface = w->iface;
  info.protocols = s_protocols;
  info.user = w;
  info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
  info.gid = -1, info.uid = -1;
  w->ctx = lws_create_context(&info);
  if (!w->ctx) {
    fc_set_err(err, errsz, "cannot listen on %s (is the port in use, or the address not this machine's?)", url);
    free(w);
    return NULL;
  }
  snprintf(bound, boundsz, "ws://%s:%d", w->iface, w->port);
  return w;
}

int pol_ws_run(pol_ws *w, volatile sig_atomic_t *stop, char *err, size_t errsz) {
  while (!*stop && !atomic_load(&w->stop))
    if (lws_service(w->ctx, 0) < 0) return fc_set_err(err, errsz, "the websocket service failed"), -1;
  return 0;
}

void pol_ws_stop(pol_ws *w) {
  atomic_store(&w->stop, 1);
  lws_cancel_service(w->ctx);
}

void pol_ws_free(pol_ws *w) {
  if (!w) return;
  lws_context_destroy(w->ctx);
  free(w);
}
