/* pol_client: the node's REQ client with Lazy Pirate retries. */
#include "pol_client.h"
#include "pol_keys.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "fc_base.h"

struct pol_client {
  void *ctx, *sock;
  int own_ctx;
  char endpoint[256];
  int timeout_ms, retries;
  msgpack_sbuffer sb; /* the request in flight */
  msgpack_packer pk;
  msgpack_unpacked up; /* the last reply */
  zmq_msg_t rmsg;
  int inflight, tries;
  double sent_at;
  int64_t id;
  char session[64];
  int curve;                             /* pol_client_secure */
  char server_key[41], public_key[41], secret_key[41];
};

static int s_open(pol_client *c) {
  if (c->sock) zmq_close(c->sock);
  c->sock = zmq_socket(c->ctx, ZMQ_REQ);
  if (!c->sock) return -1;
  const int linger = 0;
  const int64_t maxmsg = 1 << 20;
  zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger));
  zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
  if (c->curve && (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, c->server_key, 41) ||
                   zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, c->public_key, 41) ||
                   zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, c->secret_key, 41)))
    return -1;
  return zmq_connect(c->sock, c->endpoint);
}

int pol_client_secure(pol_client *c, const char *server_key_path, const char *secret_key_path, char *err, size_t errsz) {
  if (pol_keys_read_public(server_key_path, c->server_key, err, errsz) ||
      pol_keys_read_secret(secret_key_path, c->secret_key, c->public_key, err, errsz))
    return -1;
  c->curve = 1;
  if (s_open(c)) {
    c->curve = 0;
    return fc_set_err(err, errsz, "cannot connect to %s with CURVE: %s", c->endpoint, zmq_strerror(zmq_errno())), -1;
  }
  return 0;
}

pol_client *pol_client_new(void *zctx, const char *endpoint, int timeout_ms, int retries, const char *session,
                           char *err, size_t errsz) {
  static atomic_long count;
  if (strlen(endpoint) >= sizeof(((pol_client *)0)->endpoint))
    return fc_set_err(err, errsz, "the endpoint '%.60s...' is too long", endpoint), NULL;
  pol_client *c = fc_calloc(1, sizeof(*c));
  c->own_ctx = zctx == NULL;
  c->ctx = zctx ? zctx : zmq_ctx_new();
  snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
  c->timeout_ms = timeout_ms;
  c->retries = retries;
  msgpack_sbuffer_init(&c->sb);
  msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
  msgpack_unpacked_init(&c->up);
  zmq_msg_init(&c->rmsg);
  if (session) pol_client_set_session(c, session);
  else
    snprintf(c->session, sizeof(c->session), "client-%ld-%ld-%ld", (long)getpid(), (long)time(NULL),
             atomic_fetch_add(&count, 1));
  if (s_open(c)) {
    fc_set_err(err, errsz, "cannot connect to %s: %s", endpoint, zmq_strerror(zmq_errno()));
    pol_client_free(c);
    return NULL;
  }
  return c;
}

void pol_client_free(pol_client *c) {
  if (!c) return;
  if (c->sock) zmq_close(c->sock);
  zmq_msg_close(&c->rmsg);
  msgpack_unpacked_destroy(&c->up);
  msgpack_sbuffer_destroy(&c->sb);
  if (c->own_ctx) zmq_ctx_term(c->ctx);
  free(c);
}

void pol_client_set_session(pol_client *c, const char *session) {
  snprintf(c->session, sizeof(c->session), "%s", session);
}
const char *pol_client_session(const pol_client *c) { return c->session; }
int pol_client_inflight(const pol_client *c) { return c->inflight; }
int pol_client_timeout_ms(const pol_client *c) { return c->timeout_ms; }
double pol_client_sent_at(const pol_client *c) { return c->sent_at; }
const msgpack_object *pol_client_reply(const pol_client *c) { return &c->up.data; }

msgpack_packer *pol_client_request(pol_client *c, const char *endpoint, int nfields) {
  msgpack_sbuffer_clear(&c->sb);
  msgpack_pack_map(&c->pk, (size_t)(3 + nfields));
  pw_pack_str(&c->pk, "endpoint");
  pw_pack_str(&c->pk, endpoint);
  pw_pack_str(&c->pk, "session");
  pw_pack_str(&c->pk, c->session);
  pw_pack_str(&c->pk, "id");
  msgpack_pack_int64(&c->pk, ++c->id);
  return &c->pk;
}

static int s_send(pol_client *c, char *err, size_t errsz) {
  c->inflight = 1;
  c->sent_at = fc_now();
  if (zmq_send(c->sock, c->sb.data, c->sb.size, ZMQ_DONTWAIT) < 0)
    return fc_set_err(err, errsz, "cannot send to %s: %s", c->endpoint, zmq_strerror(zmq_errno())), -1;
  return 0;
}

int pol_client_send(pol_client *c, char *err, size_t errsz) {
  c->tries = 0;
  /* the last request was never answered: its REQ socket waits for that
   * reply forever, so this one goes on a fresh socket */
  if (c->inflight && s_open(c))
    return fc_set_err(err, errsz, "cannot reconnect to %s: %s", c->endpoint, zmq_strerror(zmq_errno())), -1;
  return s_send(c, err, errsz);
}

int pol_client_poll(pol_client *c, int ms, char *err, size_t errsz) {
  zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&it, 1, ms < 0 ? 0 : ms) <= 0 || !(it.revents & ZMQ_POLLIN)) return 0;
  zmq_msg_close(&c->rmsg);
  zmq_msg_init(&c->rmsg);
  if (zmq_msg_recv(&c->rmsg, c->sock, 0) < 0) return 0;
  c->inflight = 0;
  c->tries = 0;
  const void *d = zmq_msg_data(&c->rmsg);
  const size_t n = zmq_msg_size(&c->rmsg);
  size_t off = 0;
  msgpack_unpacked_destroy(&c->up);
  msgpack_unpacked_init(&c->up);
  if (pw_scan(d, n, err, errsz) || msgpack_unpack_next(&c->up, d, n, &off) != MSGPACK_UNPACK_SUCCESS ||
      c->up.data.type != MSGPACK_OBJECT_MAP)
    return fc_set_err(err, errsz, "the controller's reply is not a msgpack map"), -1;
  char msg[384];
  if (pw_map_get(&c->up.data, "error")) {
    if (pw_map_str(&c->up.data, "error", msg, sizeof(msg))) snprintf(msg, sizeof(msg), "(no message)");
    const msgpack_object *rf = pw_map_get(&c->up.data, "refused");
    const int refused = rf && rf->type == MSGPACK_OBJECT_BOOLEAN && rf->via.boolean;
    fc_set_err(err, errsz, "the controller answered with an error: %s", msg);
    return refused ? POL_CLIENT_REFUSED : -1;
  }
  int64_t id;
  if (!pw_map_int(&c->up.data, "id", &id) && id != c->id)
    return fc_set_err(err, errsz, "the controller's reply has id %lld, not %lld", (long long)id, (long long)c->id), -1;
  return 1;
}

int pol_client_retry(pol_client *c, char *err, size_t errsz) {
  if (++c->tries > c->retries)
    return fc_set_err(err, errsz, "the controller at %s did not answer %d request%s within %d ms each", c->endpoint,
                      c->retries + 1, c->retries ? "s" : "", c->timeout_ms), -1;
  if (s_open(c)) return fc_set_err(err, errsz, "cannot reconnect to %s: %s", c->endpoint, zmq_strerror(zmq_errno())), -1;
  return s_send(c, err, errsz);
}

int pol_client_call(pol_client *c, char *err, size_t errsz) {
  if (pol_client_send(c, err, errsz)) return -1;
  for (;;) {
    const int rc = pol_client_poll(c, c->timeout_ms, err, errsz);
    if (rc) return rc > 0 ? 0 : rc;
    if (pol_client_retry(c, err, errsz)) return -1;
  }
}

int pol_client_get_info(pol_client *c, pol_client_info *in, char *err, size_t errsz) {
  memset(in, 0, sizeof(*in));
  pol_client_request(c, "info", 0);
  if (pol_client_call(c, err, errsz)) return -1;
  const msgpack_object *m = &c->up.data;
  int64_t proto = 0;
  if (pw_map_int(m, "protocol", &proto) || proto < 1 || proto > PW_PROTOCOL)
    return fc_set_err(err, errsz, "the controller speaks protocol %lld; this lfp speaks 1 to %d", (long long)proto,
                      PW_PROTOCOL), -1;
  in->protocol = (int)proto;
  if (pw_map_int(m, "To", &in->To) || pw_map_int(m, "Ta", &in->Ta) || pw_map_int(m, "action_dim", &in->action_dim) ||
      pw_map_int(m, "nfe", &in->nfe) || pw_map_num(m, "control_hz", &in->control_hz) ||
      pw_map_str(m, "method", in->method, sizeof(in->method)) || pw_map_str(m, "policy", in->policy, sizeof(in->policy)) ||
      pw_map_str(m, "env_args", in->env_args, sizeof(in->env_args)))
    return fc_set_err(err, errsz, "the controller's info reply lacks a field of protocol %d", PW_PROTOCOL), -1;
  if (pw_map_int(m, "Tp", &in->Tp)) in->Tp = in->Ta;
  if (in->To < 1 || in->To > 64 || in->Ta < 1 || in->Tp < in->Ta || in->Tp > 256 || in->action_dim < 1 ||
      in->action_dim > POL_MAX_ACTION)
    return fc_set_err(err, errsz, "the controller's horizons (To %lld, Tp %lld, Ta %lld, %lld-D actions) are out of range",
                      (long long)in->To, (long long)in->Tp, (long long)in->Ta, (long long)in->action_dim), -1;
  const msgpack_object *keys = pw_map_get(m, "obs_keys"), *shapes = pw_map_get(m, "obs_shapes");
  if (!keys || !shapes || keys->type != MSGPACK_OBJECT_ARRAY || shapes->type != MSGPACK_OBJECT_ARRAY ||
      keys->via.array.size != shapes->via.array.size || keys->via.array.size > POL_MAX_KEYS)
    return fc_set_err(err, errsz, "the controller's obs_keys / obs_shapes are malformed"), -1;
  in->nkeys = (int)keys->via.array.size;
  for (int k = 0; k < in->nkeys; k++) {
    const msgpack_object *kn = &keys->via.array.ptr[k], *sh = &shapes->via.array.ptr[k];
    if (kn->type != MSGPACK_OBJECT_STR || sh->type != MSGPACK_OBJECT_ARRAY || sh->via.array.size != 1 ||
        sh->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || sh->via.array.ptr[0].via.u64 < 1 ||
        sh->via.array.ptr[0].via.u64 > FC_NORM_MAX_DIM)
      return fc_set_err(err, errsz, "the controller's observation key %d is malformed", k), -1;
    snprintf(in->keys[k], sizeof(in->keys[k]), "%.*s", (int)kn->via.str.size, kn->via.str.ptr);
    in->dims[k] = (int)sh->via.array.ptr[0].via.u64;
  }
  return 0;
}
