/* Tests of the ZeroMQ controller node: the message pre-scan against
 * allocation bombs, every class of bad request answered with a sentence
 * (and the node serving on), infer equal bit for bit to pol_act on the same
 * frames and seed, stacked frames equal to appended ones, bounded sessions,
 * and the ROUTER loop with REQ and DEALER clients over a real socket. */
#include <pthread.h>
#include <zmq.h>

#include "fc_base.h"
#include "fc_par.h"
#include "node_fixture.h"
#include "pol_client.h"
#include "pol_node.h"
#include "pol_train.h"
#include "pol_wire.h"
#include "test.h"

/* ---- building requests ---- */

typedef struct {
  msgpack_sbuffer sb;
  msgpack_packer pk;
} s_msg;

static void s_begin(s_msg *m) {
  msgpack_sbuffer_init(&m->sb);
  msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

/* {"endpoint": ep, "session": sess?, "dtype": "<f8", "obs": {pos: (n,3), grip: (n,2)}} with
 * frames (n, 5); rank 1 when n == 0 (one frame). */
static void s_obs_request(s_msg *m, const char *ep, const char *sess, const double *frames, int n) {
  s_begin(m);
  msgpack_pack_map(&m->pk, 3 + (sess != NULL));
  pw_pack_str(&m->pk, "endpoint");
  pw_pack_str(&m->pk, ep);
  if (sess) {
    pw_pack_str(&m->pk, "session");
    pw_pack_str(&m->pk, sess);
  }
  pw_pack_str(&m->pk, "dtype");
  pw_pack_str(&m->pk, "<f8");
  pw_pack_str(&m->pk, "obs");
  msgpack_pack_map(&m->pk, 2);
  const int rank = n == 0 ? 1 : 2, nf = n == 0 ? 1 : n;
  double pos[16], grip[16];
  for (int f = 0; f < nf; f++) {
    memcpy(pos + 3 * f, frames + 5 * f, 3 * sizeof(double));
    memcpy(grip + 2 * f, frames + 5 * f + 3, 2 * sizeof(double));
  }
  uint32_t sp[2] = {rank == 1 ? 3u : (uint32_t)nf, 3}, sg[2] = {rank == 1 ? 2u : (uint32_t)nf, 2};
  pw_pack_str(&m->pk, "pos");
  pw_pack_ndarray(&m->pk, pos, rank, sp, 8);
  pw_pack_str(&m->pk, "grip");
  pw_pack_ndarray(&m->pk, grip, rank, sg, 8);
}

/* an obs request whose keys are batches (rows, nf, dim) of frames (rows, nf, 5) */
static void s_batch_request(s_msg *m, const char *ep, const char *sess, const double *frames, int rows, int nf) {
  s_begin(m);
  msgpack_pack_map(&m->pk, 4);
  pw_pack_str(&m->pk, "endpoint");
  pw_pack_str(&m->pk, ep);
  pw_pack_str(&m->pk, "session");
  pw_pack_str(&m->pk, sess);
  pw_pack_str(&m->pk, "dtype");
  pw_pack_str(&m->pk, "<f8");
  pw_pack_str(&m->pk, "obs");
  msgpack_pack_map(&m->pk, 2);
  double pos[7 * 3 * 3], grip[7 * 3 * 2];
  for (int i = 0; i < rows * nf; i++) {
    memcpy(pos + 3 * i, frames + 5 * i, 3 * sizeof(double));
    memcpy(grip + 2 * i, frames + 5 * i + 3, 2 * sizeof(double));
  }
  const uint32_t sp[3] = {(uint32_t)rows, (uint32_t)nf, 3}, sg[3] = {(uint32_t)rows, (uint32_t)nf, 2};
  pw_pack_str(&m->pk, "pos");
  pw_pack_ndarray(&m->pk, pos, 3, sp, 8);
  pw_pack_str(&m->pk, "grip");
  pw_pack_ndarray(&m->pk, grip, 3, sg, 8);
}

static void s_simple(s_msg *m, const char *ep, const char *sess, int has_seed, uint64_t seed) {
  s_begin(m);
  msgpack_pack_map(&m->pk, 1 + (sess != NULL) + has_seed);
  pw_pack_str(&m->pk, "endpoint");
  pw_pack_str(&m->pk, ep);
  if (sess) {
    pw_pack_str(&m->pk, "session");
    pw_pack_str(&m->pk, sess);
  }
  if (has_seed) {
    pw_pack_str(&m->pk, "seed");
    msgpack_pack_uint64(&m->pk, seed);
  }
}

/* send m to the node as peer; the decoded reply in up (caller destroys) */
static int s_call(pol_node *n, const char *peer, s_msg *m, msgpack_unpacked *up) {
  const void *r;
  size_t rl, off = 0;
  int rc = pol_node_handle(n, peer, strlen(peer), m->sb.data, m->sb.size, &r, &rl);
  msgpack_sbuffer_destroy(&m->sb);
  msgpack_unpacked_init(up);
  if (msgpack_unpack_next(up, r, rl, &off) != MSGPACK_UNPACK_SUCCESS || off != rl) return -2;
  return rc;
}

static int s_actions(const msgpack_unpacked *up, double *a, int cap) {
  const msgpack_object *o = pw_map_get(&up->data, "actions");
  int rank;
  uint32_t shape[PW_MAX_RANK];
  char err[256];
  if (!o) return -1;
  return pw_read_array(o, a, (size_t)cap, &rank, shape, err, sizeof(err));
}

static void s_frame(int t, double *f) {
  for (int j = 0; j < 5; j++) f[j] = sin(0.3 * t + j) * (1 + 0.2 * j);
}

TEST(scan_refuses_bombs_and_malformed_bytes) {
  char err[256];
  /* map32 claiming 2^32-1 pairs in 5 bytes: msgpack-c would try to allocate ~100 GB */
  const uint8_t bomb[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
  ASSERT(pw_scan(bomb, sizeof(bomb), err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "claims");
  const uint8_t arr[] = {0xdd, 0x00, 0x10, 0x00, 0x00, 0xc0};
  ASSERT(pw_scan(arr, sizeof(arr), err, sizeof(err)) == -1);
  /* bin32 longer than the message */
  const uint8_t bin[] = {0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00};
  ASSERT(pw_scan(bin, sizeof(bin), err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "runs past");
  /* nesting: 9 one-element arrays */
  uint8_t deep[10];
  memset(deep, 0x91, 9);
  deep[9] = 0x01;
  ASSERT(pw_scan(deep, sizeof(deep), err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "deeper");
  ASSERT(pw_scan(deep + 1, sizeof(deep) - 1, err, sizeof(err)) == 0);
  const uint8_t unused[] = {0xc1};
  ASSERT(pw_scan(unused, 1, err, sizeof(err)) == -1);
  const uint8_t trailing[] = {0x80, 0x80};
  ASSERT(pw_scan(trailing, 2, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "after");
  ASSERT(pw_scan(trailing, 0, err, sizeof(err)) == -1);
  /* a fixmap of 4 pairs whose last value is cut off */
  const uint8_t cut[] = {0x81, 0xa1, 'a'};
  ASSERT(pw_scan(cut, sizeof(cut), err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "ends early");
  return 0;
}

TEST(info_and_ping_describe_the_policy) {
  pol_policy *p = node_fixture_policy();
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  pol_node *n = pol_node_new(p, &cfg);
  s_msg m;
  msgpack_unpacked up;
  s_simple(&m, "info", NULL, 0, 0);
  ASSERT_EQ_INT(s_call(n, "c1", &m, &up), 0);
  const msgpack_object *o = &up.data;
  ASSERT(pw_map_get(o, "obs_keys") && pw_map_get(o, "obs_keys")->via.array.size == 2);
  ASSERT(pw_map_get(o, "obs_shapes")->via.array.ptr[0].via.array.ptr[0].via.u64 == 3);
  ASSERT_EQ_INT(pw_map_get(o, "To")->via.u64, 2);
  ASSERT_EQ_INT(pw_map_get(o, "Ta")->via.u64, 3);
  ASSERT_EQ_INT(pw_map_get(o, "Tp")->via.u64, 4);
  ASSERT_EQ_INT(pw_map_get(o, "action_dim")->via.u64, 2);
  ASSERT_EQ_INT(pw_map_get(o, "protocol")->via.u64, PW_PROTOCOL);
  ASSERT_EQ_INT(pw_map_get(o, "nfe")->via.u64, pol_nfe(p, p->flow->cfg.sampler, 0));
  ASSERT(pw_map_get(o, "action_low")->via.array.ptr[1].via.f64 == -1.0);
  ASSERT(pw_map_get(o, "control_hz")->via.f64 == 20.0);
  ASSERT(pw_map_get(o, "version") && pw_map_get(o, "method") && pw_map_get(o, "env_args"));
  msgpack_unpacked_destroy(&up);
  s_simple(&m, "ping", NULL, 0, 0);
  ASSERT_EQ_INT(s_call(n, "c1", &m, &up), 0);
  ASSERT(pw_map_get(&up.data, "ok") && pw_map_get(&up.data, "ok")->via.boolean);
  msgpack_unpacked_destroy(&up);
  ASSERT_EQ_INT(pol_node_get_stats(n).sessions, 0); /* info and ping keep no state */
  pol_node_free(n);
  pol_free(p);
  return 0;
}

/* A client that observes every step and infers when its queue is empty gets
 * exactly pol_act's actions (same frames, same seed). */
TEST(infer_equals_pol_act_bit_for_bit) {
  pol_policy *p = node_fixture_policy();
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  pol_node *n = pol_node_new(p, &cfg);
  pol_data *pd = pol_data_new(p, 0);
  const uint64_t seed = 4242;
  pol_reset(pd, seed);
  s_msg m;
  msgpack_unpacked up;
  s_simple(&m, "reset", "robot", 1, seed);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 0);
  msgpack_unpacked_destroy(&up);
  double chunk[6] = {0};
  int q = 3, clipped = 0;
  for (int t = 0; t < 20; t++) {
    double f[5], a_ref[2];
    s_frame(t, f);
    char why[256];
    ASSERT_MSG(pol_act(p, pd, f, a_ref, why, sizeof(why)) == 0, "%s", why);
    s_obs_request(&m, q >= 3 ? "infer" : "observe", "robot", f, 0);
    ASSERT_EQ_INT(s_call(n, t % 2 ? "peer-a" : "peer-b", &m, &up), 0); /* the session, not the peer, keys history */
    if (q >= 3) {
      ASSERT_EQ_INT(s_actions(&up, chunk, 6), 6);
      ASSERT_EQ_INT(pw_map_get(&up.data, "seq")->via.u64, t / 3 + 1);
      clipped += (int)pw_map_get(&up.data, "clipped")->via.u64;
      q = 0;
    }
    ASSERT_EQ_INT(pw_map_get(&up.data, "history_frames")->via.u64, t == 0 ? 1 : 2);
    msgpack_unpacked_destroy(&up);
    ASSERT_MSG(!memcmp(&chunk[2 * q], a_ref, sizeof(a_ref)), "step %d: %.17g %.17g vs %.17g %.17g", t, chunk[2 * q],
               chunk[2 * q + 1], a_ref[0], a_ref[1]);
    q++;
  }
  ASSERT_EQ_INT(clipped, pol_data_counts(pd).clipped);
  ASSERT(clipped > 0); /* the random policy overshoots its bounds: clipping is exercised */
  pol_data_free(pd);
  pol_node_free(n);
  pol_free(p);
  return 0;
}

TEST(stacked_frames_replace_the_history) {
  pol_policy *p = node_fixture_policy();
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  pol_node *n = pol_node_new(p, &cfg);
  double f[10], a1[6], a2[6], a3[6];
  s_frame(1, f);
  s_frame(2, f + 5);
  s_msg m;
  msgpack_unpacked up;
  /* A: reset(9), observe f1, infer f2 */
  s_simple(&m, "reset", "A", 1, 9);
  s_call(n, "p", &m, &up);
  msgpack_unpacked_destroy(&up);
  s_obs_request(&m, "observe", "A", f, 0);
  s_call(n, "p", &m, &up);
  msgpack_unpacked_destroy(&up);
  s_obs_request(&m, "infer", "A", f + 5, 0);
  ASSERT_EQ_INT(s_call(n, "p", &m, &up), 0);
  ASSERT_EQ_INT(s_actions(&up, a1, 6), 6);
  msgpack_unpacked_destroy(&up);
  /* B: some unrelated history, reset(9), then [f1, f2] stacked */
  s_obs_request(&m, "observe", "B", f + 5, 0);
  s_call(n, "p", &m, &up);
  msgpack_unpacked_destroy(&up);
  s_simple(&m, "reset", "B", 1, 9);
  s_call(n, "p", &m, &up);
  msgpack_unpacked_destroy(&up);
  s_obs_request(&m, "infer", "B", f, 2);
  ASSERT_EQ_INT(s_call(n, "p", &m, &up), 0);
  ASSERT_EQ_INT(s_actions(&up, a2, 6), 6);
  msgpack_unpacked_destroy(&up);
  ASSERT(!memcmp(a1, a2, sizeof(a1)));
  /* C: reset(9), one stacked frame f2 = f2 padded, unlike [f1, f2] */
  s_simple(&m, "reset", "C", 1, 9);
  s_call(n, "p", &m, &up);
  msgpack_unpacked_destroy(&up);
  s_obs_request(&m, "infer", "C", f + 5, 1);
  ASSERT_EQ_INT(s_call(n, "p", &m, &up), 0);
  ASSERT_EQ_INT(s_actions(&up, a3, 6), 6);
  msgpack_unpacked_destroy(&up);
  ASSERT(memcmp(a1, a3, sizeof(a1)));
  pol_node_free(n);
  pol_free(p);
  return 0;
}

/* raw bytes for error cases */
static void s_raw(s_msg *m, const void *b, size_t n) {
  s_begin(m);
  msgpack_sbuffer_write(&m->sb, b, n);
}

TEST(bad_requests_get_sentences_and_the_node_serves_on) {
  pol_policy *p = node_fixture_policy();
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  cfg.max_msg = 2048;
  pol_node *n = pol_node_new(p, &cfg);
  double f[5];
  s_frame(0, f);
  s_msg m;
  msgpack_unpacked up;
  struct {
    const char *want;
    int kind;
  } cases[] = {
      {"not valid msgpack", 0}, {"not a msgpack map", 1}, {"unknown endpoint 'fly'", 2}, {"needs field \"obs\"", 3},
      {"unknown observation key 'posx'", 4}, {"'grip' is missing", 5}, {"has shape (4,)", 6}, {"dtype '<i4'", 7},
      {"not finite", 8}, {"over the node's limit", 9}, {"unknown field 'sesion'", 10}, {"do not match shape", 11},
      {"belongs to endpoint reset", 12}, {"1 to 64 bytes", 13}, {"but 'pos' has 1", 14}, {"with n <= 2", 15},
      {"claims", 16}, {"appears twice", 17}, {"not a number", 18}, {"\"__ndarray__\": true", 19},
      {"out of float32's range", 20}, {"send every key the same way", 21},
  };
  const int ncase = (int)(sizeof(cases) / sizeof(cases[0]));
  for (int c = 0; c < ncase; c++) {
    const int k = cases[c].kind;
    s_begin(&m);
    msgpack_packer *pk = &m.pk;
    if (k == 0) {
      msgpack_sbuffer_destroy(&m.sb);
      s_raw(&m, "\xc1garbage", 8);
    } else if (k == 1) {
      msgpack_pack_array(pk, 1);
      msgpack_pack_int(pk, 1);
    } else if (k == 2) {
      msgpack_pack_map(pk, 2);
      pw_pack_str(pk, "endpoint");
      pw_pack_str(pk, "fly");
      pw_pack_str(pk, "id");
      msgpack_pack_int(pk, 77);
    } else if (k == 3) {
      msgpack_pack_map(pk, 1);
      pw_pack_str(pk, "endpoint");
      pw_pack_str(pk, "infer");
    } else if (k == 20 || k == 21) {
      msgpack_sbuffer_destroy(&m.sb);
      double fr[5] = {0, 0, 1e39, 0, 0};
      s_obs_request(&m, "infer", NULL, k == 20 ? fr : f, 0);
      if (k == 21) { /* pos rank 1, grip rank 2 */
        msgpack_sbuffer_destroy(&m.sb);
        s_begin(&m);
        msgpack_pack_map(pk, 2);
        pw_pack_str(pk, "endpoint");
        pw_pack_str(pk, "infer");
        pw_pack_str(pk, "obs");
        msgpack_pack_map(pk, 2);
        const uint32_t s3[1] = {3}, s12[2] = {1, 2};
        pw_pack_str(pk, "pos");
        pw_pack_ndarray(pk, f, 1, s3, 8);
        pw_pack_str(pk, "grip");
        pw_pack_ndarray(pk, f + 3, 2, s12, 8);
      }
    } else if (k >= 4 && k <= 8) {
      msgpack_pack_map(pk, 2);
      pw_pack_str(pk, "endpoint");
      pw_pack_str(pk, "infer");
      pw_pack_str(pk, "obs");
      msgpack_pack_map(pk, k == 5 ? 1 : 2);
      const uint32_t s3[1] = {3}, s4[1] = {4}, s2[1] = {2};
      double v[4] = {f[0], f[1], f[2], 0};
      if (k == 8) v[1] = NAN;
      pw_pack_str(pk, k == 4 ? "posx" : "pos");
      pw_pack_ndarray(pk, v, 1, k == 6 ? s4 : s3, 4);
      if (k != 5) {
        pw_pack_str(pk, "grip");
        if (k == 7) { /* an int32 array */
          msgpack_pack_map(pk, 4);
          pw_pack_str(pk, "__ndarray__");
          msgpack_pack_true(pk);
          pw_pack_str(pk, "data");
          msgpack_pack_bin(pk, 8);
          msgpack_pack_bin_body(pk, "\1\0\0\0\2\0\0\0", 8);
          pw_pack_str(pk, "dtype");
          pw_pack_str(pk, "<i4");
          pw_pack_str(pk, "shape");
          msgpack_pack_array(pk, 1);
          msgpack_pack_int(pk, 2);
        } else {
          pw_pack_ndarray(pk, f + 3, 1, s2, 8);
        }
      }
    } else if (k == 9) {
      msgpack_pack_map(pk, 2);
      pw_pack_str(pk, "endpoint");
      pw_pack_str(pk, "ping");
      pw_pack_str(pk, "pad");
      char big[4096] = {0};
      msgpack_pack_bin(pk, sizeof(big));
      msgpack_pack_bin_body(pk, big, sizeof(big));
    } else if (k == 10) {
      msgpack_pack_map(pk, 2);
      pw_pack_str(pk, "endpoint");
      pw_pack_str(pk, "ping");
      pw_pack_str(pk, "sesion");
      pw_pack_str(pk, "x");
    } else if (k == 11 || k == 19) {
      msgpack_pack_map(pk, 2);
      pw_pack_str(pk, "endpoint");
      pw_pack_str(pk, "observe");
      pw_pack_str(pk, "obs");
      msgpack_pack_map(pk, 1);
      pw_pack_str(pk, "pos");
      msgpack_pack_map(pk, 4);
      pw_pack_str(pk, "__ndarray__");
      if (k == 19) msgpack_pack_false(pk);
      else msgpack_pack_true(pk);
      pw_pack_str(pk, "data");
      msgpack_pack_bin(pk, 8);
      msgpack_pack_bin_body(pk, "\0\0\0\0\0\0\0\0", 8);
      pw_pack_str(pk, "dtype");
      pw_pack_str(pk, "<f4");
      pw_pack_str(pk, "shape");
      msgpack_pack_array(pk, 1);
      msgpack_pack_int(pk, 3);
    } else if (k == 12) {
      msgpack_sbuffer_destroy(&m.sb);
      s_obs_request(&m, "infer", NULL, f, 0);
      /* append a seed by rebuilding: simpler to patch the map header (fixmap 3 -> 4) */
      ((uint8_t *)m.sb.data)[0] = 0x84;
      pw_pack_str(&m.pk, "seed");
      msgpack_pack_int(&m.pk, 3);
    } else if (k == 13) {
      msgpack_pack_map(pk, 2);
      pw_pack_str(pk, "endpoint");
      pw_pack_str(pk, "reset");
      pw_pack_str(pk, "session");
      pw_pack_str(pk, "0123456789012345678901234567890123456789012345678901234567890123456789");
    } else if (k == 14 || k == 15) {
      msgpack_sbuffer_destroy(&m.sb);
      double fr[15];
      for (int i = 0; i < 15; i++) fr[i] = 0.1 * i;
      s_obs_request(&m, "infer", NULL, fr, k == 14 ? 2 : 3);
      if (k == 14) { /* make grip rank 1: rebuild with mixed ranks */
        msgpack_sbuffer_destroy(&m.sb);
        s_begin(&m);
        msgpack_pack_map(pk, 2);
        pw_pack_str(pk, "endpoint");
        pw_pack_str(pk, "infer");
        pw_pack_str(pk, "obs");
        msgpack_pack_map(pk, 2);
        const uint32_t s13[2] = {1, 3}, s22[2] = {2, 2};
        pw_pack_str(pk, "pos");
        pw_pack_ndarray(pk, fr, 2, s13, 8);
        pw_pack_str(pk, "grip");
        pw_pack_ndarray(pk, fr, 2, s22, 8);
      }
    } else if (k == 16) {
      msgpack_sbuffer_destroy(&m.sb);
      static const char bomb[] = "\x82\xa8" "endpoint\xa4ping\xa2id\xdd\xff\xff\xff\xff";
      s_raw(&m, bomb, sizeof(bomb) - 1);
    } else if (k == 17) {
      msgpack_pack_map(pk, 2);
      pw_pack_str(pk, "endpoint");
      pw_pack_str(pk, "observe");
      pw_pack_str(pk, "obs");
      msgpack_pack_map(pk, 3);
      const uint32_t s3[1] = {3}, s2[1] = {2};
      pw_pack_str(pk, "pos");
      pw_pack_ndarray(pk, f, 1, s3, 8);
      pw_pack_str(pk, "grip");
      pw_pack_ndarray(pk, f + 3, 1, s2, 8);
      pw_pack_str(pk, "pos");
      pw_pack_ndarray(pk, f, 1, s3, 8);
    } else if (k == 18) {
      msgpack_pack_map(pk, 2);
      pw_pack_str(pk, "endpoint");
      pw_pack_str(pk, "observe");
      pw_pack_str(pk, "obs");
      msgpack_pack_map(pk, 2);
      pw_pack_str(pk, "pos");
      msgpack_pack_array(pk, 3);
      msgpack_pack_double(pk, 1);
      pw_pack_str(pk, "a");
      msgpack_pack_double(pk, 1);
      pw_pack_str(pk, "grip");
      msgpack_pack_array(pk, 2);
      msgpack_pack_double(pk, 1);
      msgpack_pack_double(pk, 1);
    }
    const int64_t e0 = pol_node_get_stats(n).errors;
    ASSERT_EQ_INT(s_call(n, "bad", &m, &up), 1);
    const msgpack_object *e = pw_map_get(&up.data, "error");
    ASSERT(e && e->type == MSGPACK_OBJECT_STR);
    char msg[512];
    snprintf(msg, sizeof(msg), "%.*s", (int)e->via.str.size, e->via.str.ptr);
    ASSERT_MSG(strstr(msg, cases[c].want), "case %d: expected '%s' in '%s'", c, cases[c].want, msg);
    if (k == 2) ASSERT_EQ_INT(pw_map_get(&up.data, "id")->via.i64, 77); /* the id comes back on errors too */
    msgpack_unpacked_destroy(&up);
    ASSERT_EQ_INT(pol_node_get_stats(n).errors, e0 + 1);
    /* and a good request right after */
    s_obs_request(&m, "infer", "good", f, 0);
    ASSERT_EQ_INT(s_call(n, "good", &m, &up), 0);
    msgpack_unpacked_destroy(&up);
  }
  /* lists of numbers and <f4 arrays are accepted: the lists path */
  s_begin(&m);
  msgpack_pack_map(&m.pk, 2);
  pw_pack_str(&m.pk, "endpoint");
  pw_pack_str(&m.pk, "infer");
  pw_pack_str(&m.pk, "obs");
  msgpack_pack_map(&m.pk, 2);
  pw_pack_str(&m.pk, "grip");
  msgpack_pack_array(&m.pk, 1);
  msgpack_pack_array(&m.pk, 2);
  msgpack_pack_int(&m.pk, 0);
  msgpack_pack_float(&m.pk, 0.5f);
  pw_pack_str(&m.pk, "pos");
  msgpack_pack_array(&m.pk, 1);
  msgpack_pack_array(&m.pk, 3);
  for (int j = 0; j < 3; j++) msgpack_pack_double(&m.pk, j);
  ASSERT_EQ_INT(s_call(n, "lists", &m, &up), 0);
  const msgpack_object *a = pw_map_get(&up.data, "actions");
  ASSERT(a && pw_map_get(a, "dtype") && pw_map_get(a, "dtype")->via.str.size == 3 &&
         !memcmp(pw_map_get(a, "dtype")->via.str.ptr, "<f4", 3)); /* float32 by default */
  ASSERT(a->via.map.ptr[0].key.type == MSGPACK_OBJECT_BIN); /* openpi's decoder looks up bin keys */
  msgpack_unpacked_destroy(&up);
  pol_node_free(n);
  pol_free(p);
  return 0;
}

TEST(sessions_are_bounded_least_recently_used_first) {
  pol_policy *p = node_fixture_policy();
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  cfg.max_sessions = 2;
  pol_node *n = pol_node_new(p, &cfg);
  double f[5];
  s_frame(3, f);
  s_msg m;
  msgpack_unpacked up;
  const char *peers[] = {"a", "b", "a", "c", "a", "b"};
  const int frames[] = {1, 1, 2, 1, 2, 1}; /* b was evicted by c; a stayed the most recent */
  for (int i = 0; i < 6; i++) {
    s_obs_request(&m, "observe", NULL, f, 0);
    ASSERT_EQ_INT(s_call(n, peers[i], &m, &up), 0);
    ASSERT_MSG((int)pw_map_get(&up.data, "history_frames")->via.u64 == frames[i], "request %d", i);
    msgpack_unpacked_destroy(&up);
  }
  const pol_node_stats st = pol_node_get_stats(n);
  ASSERT_EQ_INT(st.sessions, 2);
  ASSERT_EQ_INT(st.sessions_created, 4);
  ASSERT_EQ_INT(st.evictions, 2);
  pol_node_free(n);
  pol_free(p);
  return 0;
}

/* ---- over a real socket ---- */

typedef struct {
  pol_node *n;
  volatile sig_atomic_t stop;
} s_server;

static void *s_serve(void *arg) {
  s_server *s = arg;
  char err[256];
  pol_node_run(s->n, &s->stop, err, sizeof(err));
  return NULL;
}

static int s_recv_reply(void *sock, msgpack_unpacked *up, int expect_delim) {
  zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&it, 1, 5000) != 1) return -1;
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  if (zmq_msg_recv(&msg, sock, 0) < 0) return -1;
  if (expect_delim) {
    if (zmq_msg_size(&msg) != 0 || !zmq_msg_more(&msg)) return -1;
    zmq_msg_close(&msg);
    zmq_msg_init(&msg);
    zmq_msg_recv(&msg, sock, 0);
  }
  /* the decoded strings point into the bytes: keep a copy that outlives the message */
  static char keep[1 << 16];
  size_t off = 0, n = zmq_msg_size(&msg);
  if (n > sizeof(keep)) n = sizeof(keep);
  memcpy(keep, zmq_msg_data(&msg), n);
  zmq_msg_close(&msg);
  msgpack_unpacked_init(up);
  return msgpack_unpack_next(up, keep, n, &off) == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
}

TEST(router_serves_req_and_dealer_clients) {
  pol_policy *p = node_fixture_policy();
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  s_server srv = {pol_node_new(p, &cfg), 0};
  char bound[256], err[256];
  ASSERT_MSG(pol_node_bind(srv.n, "tcp://127.0.0.1:*", bound, sizeof(bound), err, sizeof(err)) == 0, "%s", err);
  pthread_t th;
  pthread_create(&th, NULL, s_serve, &srv);
  void *ctx = zmq_ctx_new();
  void *req = zmq_socket(ctx, ZMQ_REQ), *dl = zmq_socket(ctx, ZMQ_DEALER);
  const int linger = 0;
  zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof(linger));
  zmq_setsockopt(dl, ZMQ_LINGER, &linger, sizeof(linger));
  ASSERT(zmq_connect(req, bound) == 0 && zmq_connect(dl, bound) == 0);
  double f[5];
  s_frame(0, f);
  s_msg m;
  msgpack_unpacked up;
  for (int i = 0; i < 20; i++) {
    s_obs_request(&m, "infer", NULL, f, 0);
    zmq_send(req, m.sb.data, m.sb.size, 0);
    /* DEALER without a delimiter, then with one (as REQ) */
    zmq_send(dl, m.sb.data, m.sb.size, 0);
    zmq_send(dl, "", 0, ZMQ_SNDMORE);
    zmq_send(dl, m.sb.data, m.sb.size, 0);
    msgpack_sbuffer_destroy(&m.sb);
    ASSERT(s_recv_reply(req, &up, 0) == 0);
    ASSERT_EQ_INT(pw_map_get(&up.data, "seq")->via.u64, i + 1);
    msgpack_unpacked_destroy(&up);
    ASSERT(s_recv_reply(dl, &up, 0) == 0);
    ASSERT_EQ_INT(pw_map_get(&up.data, "seq")->via.u64, 2 * i + 1); /* one identity: one session */
    msgpack_unpacked_destroy(&up);
    ASSERT(s_recv_reply(dl, &up, 1) == 0);
    ASSERT_EQ_INT(pw_map_get(&up.data, "seq")->via.u64, 2 * i + 2);
    msgpack_unpacked_destroy(&up);
  }
  /* two payload frames: an error reply, and the node serves on */
  zmq_send(dl, "\x80", 1, ZMQ_SNDMORE);
  zmq_send(dl, "\x80", 1, 0);
  ASSERT(s_recv_reply(dl, &up, 0) == 0);
  ASSERT(pw_map_get(&up.data, "error") != NULL);
  msgpack_unpacked_destroy(&up);
  s_simple(&m, "ping", NULL, 0, 0);
  zmq_send(req, m.sb.data, m.sb.size, 0);
  msgpack_sbuffer_destroy(&m.sb);
  ASSERT(s_recv_reply(req, &up, 0) == 0);
  ASSERT(pw_map_get(&up.data, "ok") != NULL);
  msgpack_unpacked_destroy(&up);
  srv.stop = 1;
  pthread_join(th, NULL);
  const pol_node_stats st = pol_node_get_stats(srv.n);
  ASSERT_EQ_INT(st.requests, 62);
  ASSERT_EQ_INT(st.errors, 1);
  ASSERT_EQ_INT(st.sessions, 2);
  zmq_close(req);
  zmq_close(dl);
  zmq_ctx_term(ctx);
  pol_node_free(srv.n);
  pol_free(p);
  return 0;
}

TEST(client_speaks_to_the_node_and_retries) {
  /* pol_client (lfp sim's and lfp bench node's client) against a node in a
   * thread: info, infer with the request's id echoed, an error reply as a
   * sentence, then the node stopped: Lazy Pirate retries, a sentence naming
   * the endpoint, and the next request on a fresh socket once it is back */
  pol_policy *p = node_fixture_policy();
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  s_server srv = {pol_node_new(p, &cfg), 0};
  char bound[256], err[512];
  ASSERT_MSG(pol_node_bind(srv.n, "tcp://127.0.0.1:*", bound, sizeof(bound), err, sizeof(err)) == 0, "%s", err);
  pthread_t th;
  pthread_create(&th, NULL, s_serve, &srv);
  pol_client *c = pol_client_new(NULL, bound, 2000, 2, "test-client", err, sizeof(err));
  ASSERT_MSG(c != NULL, "%s", err);
  ASSERT(!strcmp(pol_client_session(c), "test-client"));
  pol_client_info in;
  ASSERT_MSG(pol_client_get_info(c, &in, err, sizeof(err)) == 0, "%s", err);
  ASSERT_EQ_INT(in.To, 2);
  ASSERT_EQ_INT(in.Ta, 3);
  ASSERT_EQ_INT(in.action_dim, 2);
  ASSERT_EQ_INT(in.nkeys, 2);
  ASSERT(!strcmp(in.keys[0], "pos") && in.dims[0] == 3 && !strcmp(in.keys[1], "grip") && in.dims[1] == 2);
  /* infer: the same actions as pol_act with the session's seed */
  msgpack_packer *pk = pol_client_request(c, "reset", 1);
  pw_pack_str(pk, "seed");
  msgpack_pack_uint64(pk, 5);
  ASSERT_MSG(pol_client_call(c, err, sizeof(err)) == 0, "%s", err);
  double f[5], acts[3 * 2], want[2];
  s_frame(0, f);
  pk = pol_client_request(c, "infer", 2);
  pw_pack_str(pk, "dtype");
  pw_pack_str(pk, "<f8");
  pw_pack_str(pk, "obs");
  msgpack_pack_map(pk, 2);
  const uint32_t sp[1] = {3}, sg[1] = {2};
  pw_pack_str(pk, "pos");
  pw_pack_ndarray(pk, f, 1, sp, 8);
  pw_pack_str(pk, "grip");
  pw_pack_ndarray(pk, f + 3, 1, sg, 8);
  ASSERT_MSG(pol_client_call(c, err, sizeof(err)) == 0, "%s", err);
  int rank;
  uint32_t shape[8];
  ASSERT_EQ_INT(pw_read_array(pw_map_get(pol_client_reply(c), "actions"), acts, 6, &rank, shape, err, sizeof(err)), 6);
  pol_data *pd = pol_data_new(p, 5);
  ASSERT(pol_act(p, pd, f, want, err, sizeof(err)) == 0);
  ASSERT(acts[0] == want[0] && acts[1] == want[1]);
  pol_data_free(pd);
  /* an error reply: a sentence, and the client goes on */
  pol_client_request(c, "fly", 0);
  ASSERT(pol_client_call(c, err, sizeof(err)) == -1);
  ASSERT_MSG(strstr(err, "the controller answered with an error") && strstr(err, "fly"), "%s", err);
  ASSERT_MSG(pol_client_get_info(c, &in, err, sizeof(err)) == 0, "%s", err);
  /* the node stops: 3 tries of 200 ms, then a sentence naming the endpoint */
  srv.stop = 1;
  pthread_join(th, NULL);
  pol_client *slow = pol_client_new(NULL, bound, 200, 2, NULL, err, sizeof(err));
  ASSERT(slow != NULL);
  const double t0 = fc_now();
  pol_client_request(slow, "ping", 0);
  ASSERT(pol_client_call(slow, err, sizeof(err)) == -1);
  ASSERT(fc_now() - t0 >= 0.55);
  ASSERT_MSG(strstr(err, bound) && strstr(err, "did not answer 3 requests within 200 ms each"), "%s", err);
  /* the node is back: the next request goes on a fresh socket and is answered */
  srv.stop = 0;
  pthread_create(&th, NULL, s_serve, &srv);
  pol_client_request(slow, "ping", 0);
  ASSERT_MSG(pol_client_call(slow, err, sizeof(err)) == 0, "%s", err);
  srv.stop = 1;
  pthread_join(th, NULL);
  pol_client_free(slow);
  pol_client_free(c);
  /* a malformed endpoint: NULL and a sentence */
  ASSERT(pol_client_new(NULL, "nowhere", 100, 0, NULL, err, sizeof(err)) == NULL);
  ASSERT_MSG(strstr(err, "cannot connect to nowhere"), "%s", err);
  pol_node_free(srv.n);
  pol_free(p);
  return 0;
}

TEST(batched_infer_is_one_batched_evaluation) {
  /* pol_sample_batch: row r equals the r-th of B successive samples on the
   * same stream (float rounding apart); the node's batched infer equals it
   * bit for bit, leaves the session's history alone, and refuses batches
   * that do not fit with a sentence */
  pol_policy *p = node_fixture_policy();
  const int B = 5, nf = 2, O = 5, A = 2, Ta = 3;
  double frames[5 * 2 * 5], seq[5 * 3 * 2], bat[5 * 3 * 2];
  for (int i = 0; i < B * nf * O; i++) frames[i] = 0.3 * sin(0.7 * i);
  char err[512];
  pol_data *pd = pol_data_new(p, 9);
  for (int r = 0; r < B; r++) {
    pol_forget(pd);
    for (int f = 0; f < nf; f++) ASSERT(pol_observe(p, pd, frames + (r * nf + f) * O, err, sizeof(err)) == 0);
    ASSERT(pol_sample(p, pd, seq + r * Ta * A, err, sizeof(err)) >= 0);
  }
  pol_batch *pb = pol_batch_new(p, 8);
  fc_rng rng;
  fc_rng_seed(&rng, 9);
  ASSERT_MSG(pol_sample_batch(p, pb, frames, B, nf, p->flow->cfg.sampler, p->flow->cfg.steps, &rng, Ta, bat, err,
                              sizeof(err)) >= 0, "%s", err);
  for (int i = 0; i < B * Ta * A; i++) ASSERT_NEAR(bat[i], seq[i], 1e-5);
  /* a refused frame names its row, and nothing is drawn */
  double bad[5 * 2 * 5];
  memcpy(bad, frames, sizeof(bad));
  bad[(3 * nf + 1) * O + 4] = NAN;
  fc_rng before = rng;
  ASSERT(pol_sample_batch(p, pb, bad, B, nf, p->flow->cfg.sampler, p->flow->cfg.steps, &rng, Ta, bat, err,
                          sizeof(err)) == -1);
  ASSERT_MSG(strstr(err, "batch row 3, frame 1") && strstr(err, "grip"), "%s", err);
  ASSERT(!memcmp(&before, &rng, sizeof(rng)));

  /* the node: reset with seed 9, then one batched infer */
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  cfg.max_batch = 6;
  pol_node *n = pol_node_new(p, &cfg);
  s_msg m;
  msgpack_unpacked up;
  s_simple(&m, "reset", "b", 1, 9);
  ASSERT(s_call(n, "peer", &m, &up) == 0);
  msgpack_unpacked_destroy(&up);
  s_obs_request(&m, "observe", "b", frames, 0); /* one frame of history, which the batch must not touch */
  ASSERT(s_call(n, "peer", &m, &up) == 0);
  msgpack_unpacked_destroy(&up);
  s_batch_request(&m, "infer", "b", frames, B, nf);
  ASSERT(s_call(n, "peer", &m, &up) == 0);
  double got[5 * 3 * 2];
  int rank;
  uint32_t shape[PW_MAX_RANK];
  ASSERT_EQ_INT(pw_read_array(pw_map_get(&up.data, "actions"), got, 30, &rank, shape, err, sizeof(err)), 30);
  ASSERT(rank == 3 && shape[0] == 5 && shape[1] == 3 && shape[2] == 2);
  pol_batch *pb2 = pol_batch_new(p, 8);
  fc_rng_seed(&rng, 9);
  ASSERT(pol_sample_batch(p, pb2, frames, B, nf, p->flow->cfg.sampler, p->flow->cfg.steps, &rng, Ta, bat, err,
                          sizeof(err)) >= 0);
  for (int i = 0; i < 30; i++) ASSERT(got[i] == bat[i]);
  int64_t b = 0;
  ASSERT(pw_map_int(&up.data, "batch", &b) == 0 && b == 5);
  msgpack_unpacked_destroy(&up);
  s_obs_request(&m, "observe", "b", frames, 0);
  ASSERT(s_call(n, "peer", &m, &up) == 0);
  ASSERT(pw_map_int(&up.data, "history_frames", &b) == 0 && b == 2); /* the batch left the 1 frame there */
  msgpack_unpacked_destroy(&up);
  /* refusals */
  const struct {
    const char *ep;
    int rows, nf;
    const char *words;
  } bads[] = {{"infer", 7, 2, "at most 6"}, {"observe", 2, 2, "goes to endpoint infer"}, {"infer", 2, 3, "n <= 2"}};
  for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
    static double big[7 * 3 * 5];
    s_batch_request(&m, bads[i].ep, "b", big, bads[i].rows, bads[i].nf);
    ASSERT(s_call(n, "peer", &m, &up) == 1);
    char msg[384];
    ASSERT(pw_map_str(&up.data, "error", msg, sizeof(msg)) == 0);
    ASSERT_MSG(strstr(msg, bads[i].words), "%s", msg);
    msgpack_unpacked_destroy(&up);
  }
  s_batch_request(&m, "infer", "b", bad, B, nf);
  ASSERT(s_call(n, "peer", &m, &up) == 1);
  char msg[384];
  ASSERT(pw_map_str(&up.data, "error", msg, sizeof(msg)) == 0);
  ASSERT_MSG(strstr(msg, "batch row 3, frame 1"), "%s", msg);
  msgpack_unpacked_destroy(&up);
  pol_node_free(n);
  pol_batch_free(pb);
  pol_batch_free(pb2);
  pol_data_free(pd);
  pol_free(p);
  return 0;
}

/* a .npy file: magic, version major.0, header (padded with spaces to a
 * 64-byte boundary and a newline, as np.save does) and nbytes of data */
static size_t s_npy(uint8_t *buf, int major, const char *header, const void *data, size_t nbytes) {
  const size_t pre = major == 1 ? 10 : 12, hl = ((pre + strlen(header) + 1 + 63) / 64) * 64 - pre;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (uint8_t)major, buf[7] = 0;
  buf[8] = (uint8_t)(hl & 0xff), buf[9] = (uint8_t)(hl >> 8);
  if (major > 1) buf[10] = buf[11] = 0;
  memset(buf + pre, ' ', hl);
  memcpy(buf + pre, header, strlen(header));
  buf[pre + hl - 1] = '\n';
  memcpy(buf + pre + hl, data, nbytes);
  return pre + hl + nbytes;
}

TEST(npy_parser_is_strict) {
  /* what np.save writes parses to its values; every departure from it is
   * refused with a sentence, and no dtype that could hold a pickle exists */
  static uint8_t buf[4096];
  const float f[6] = {1, 2, 3, 4, 5, 6};
  char err[384];
  pw_array a;
  size_t n = s_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof(f));
  ASSERT_MSG(pw_npy_parse(buf, n, &a, "x", err, sizeof(err)) == 0, "%s", err);
  ASSERT(a.rank == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.count == 6 && pw_array_get(&a, 5) == 6.0);
  const int64_t iv[3] = {-7, 0, 1LL << 40};
  n = s_npy(buf, 2, "{'shape': (3,), 'fortran_order': False, 'descr': '<i8'}", iv, sizeof(iv));
  ASSERT_MSG(pw_npy_parse(buf, n, &a, "x", err, sizeof(err)) == 0, "%s", err);
  ASSERT(a.rank == 1 && pw_array_get(&a, 0) == -7.0 && pw_array_get(&a, 2) == (double)(1LL << 40));
  const int16_t sv[2] = {-2, 3};
  n = s_npy(buf, 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (1, 1, 2), }", sv, sizeof(sv));
  ASSERT_MSG(pw_npy_parse(buf, n, &a, "x", err, sizeof(err)) == 0, "%s", err);
  ASSERT(a.rank == 3 && pw_array_get(&a, 0) == -2.0 && pw_array_get(&a, 1) == 3.0);
  const struct {
    const char *header;
    size_t nbytes;
    const char *words;
  } bad[] = {
      {"{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }", 48, "never unpickled"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", 24, "dtype '<c8'"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", 24, "dtype '>f4'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", 24, "structured"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, "Fortran"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 24, "unknown or repeated key 'x'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 24, "repeated"},
      {"{'descr': '<f4', 'fortran_order': False}", 24, "lacks descr, fortran_order or shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 24, "non-integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 99999), }", 24, "over 65536"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 6), }", 24, "more than 3 dimensions"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "0-d"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0, "empty"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20, "do not match"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28, "do not match"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } junk", 24, "after its dict"},
      {"['descr', '<f4']", 24, "not a dict"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': ((2, 3),), }", 24, "non-integer"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    static float zeros[16];
    n = s_npy(buf, 1, bad[i].header, zeros, bad[i].nbytes);
    ASSERT_MSG(pw_npy_parse(buf, n, &a, "obs", err, sizeof(err)) == -1, "case %zu parsed", i);
    ASSERT_MSG(strstr(err, bad[i].words) && !strncmp(err, "obs", 3), "case %zu: %s", i, err);
  }
  /* the frame: magic, version, header length, newline, printable bytes */
  n = s_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f, sizeof(f));
  buf[1] = 'n';
  ASSERT(pw_npy_parse(buf, n, &a, "obs", err, sizeof(err)) == -1 && strstr(err, "magic"));
  buf[1] = 'N', buf[6] = 4;
  ASSERT(pw_npy_parse(buf, n, &a, "obs", err, sizeof(err)) == -1 && strstr(err, "version 4.0"));
  buf[6] = 1, buf[8] = 0xff, buf[9] = 0xff;
  ASSERT(pw_npy_parse(buf, n, &a, "obs", err, sizeof(err)) == -1 && strstr(err, "header length"));
  n = s_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f, sizeof(f));
  buf[n - sizeof(f) - 1] = ' '; /* the newline before the data */
  ASSERT(pw_npy_parse(buf, n, &a, "obs", err, sizeof(err)) == -1 && strstr(err, "newline"));
  n = s_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f, sizeof(f));
  buf[20] = 0x01;
  ASSERT(pw_npy_parse(buf, n, &a, "obs", err, sizeof(err)) == -1 && strstr(err, "non-printable"));
  ASSERT(pw_npy_parse(buf, 7, &a, "obs", err, sizeof(err)) == -1);
  return 0;
}

/* ---------- safe actions and action bounds (issue 10) ---------- */

TEST(info_reports_the_action_bounds_of_the_data) {
  /* a policy trained on actions spanning about [-3, 3] x [-0.5, 2.5]: the
   * bounds (what the node clips to) are that range, not [-1, 1] */
  ds_dataset *d = calloc(1, sizeof(*d));
  d->path = strdup("mem");
  d->ndemos = 4;
  d->demos = calloc(4, sizeof(ds_demo));
  d->nkeys = 1;
  d->keys = calloc(1, sizeof(ds_key));
  snprintf(d->keys[0].name, DS_NAME_MAX, "o");
  d->keys[0].dim = 1;
  d->obs_dim = 1;
  d->action_dim = 2;
  d->total = 40;
  d->obs = malloc(sizeof(float) * 40);
  d->actions = malloc(sizeof(float) * 80);
  for (int i = 0; i < 4; i++) {
    snprintf(d->demos[i].name, DS_NAME_MAX, "demo_%d", i);
    d->demos[i].index = i;
    d->demos[i].len = 10;
    d->demos[i].row = 10 * i;
    for (int t = 0; t < 10; t++) {
      const int r = 10 * i + t;
      d->obs[r] = (float)sin(0.7 * t + i);
      d->actions[2 * r] = 3.0f * d->obs[r];
      d->actions[2 * r + 1] = 1.0f + 1.5f * (float)cos(0.7 * t + i);
    }
  }
  pol_train_config c;
  pol_train_config_default(&c);
  c.method = POL_MSE;
  c.steps = 2, c.batch = 8, c.net.mlp.width = 8, c.net.mlp.depth = 1, c.Tp = 2, c.Ta = 1;
  c.valid_frac = 0.25;
  char err[512];
  pol_trainer *t = pol_trainer_new(d, &c, "{}", 10.0, err, sizeof(err));
  ASSERT_MSG(t, "%s", err);
  const pol_policy *p = pol_trainer_policy(t);
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  pol_node *n = pol_node_new(p, &cfg);
  s_msg m;
  msgpack_unpacked up;
  s_simple(&m, "info", NULL, 0, 0);
  ASSERT_EQ_INT(s_call(n, "c1", &m, &up), 0);
  const msgpack_object *lo = pw_map_get(&up.data, "action_low"), *hi = pw_map_get(&up.data, "action_high");
  ASSERT(lo && hi && lo->via.array.size == 2 && hi->via.array.size == 2);
  for (int j = 0; j < 2; j++) {
    ASSERT(lo->via.array.ptr[j].via.f64 == p->act_norm.lo[j]);
    ASSERT(hi->via.array.ptr[j].via.f64 == p->act_norm.hi[j]);
  }
  ASSERT_MSG(lo->via.array.ptr[0].via.f64 < -2 && hi->via.array.ptr[0].via.f64 > 2 && lo->via.array.ptr[1].via.f64 < 0 &&
                 hi->via.array.ptr[1].via.f64 > 2,
             "bounds [%g, %g] x [%g, %g]", lo->via.array.ptr[0].via.f64, hi->via.array.ptr[0].via.f64,
             lo->via.array.ptr[1].via.f64, hi->via.array.ptr[1].via.f64);
  msgpack_unpacked_destroy(&up);
  pol_node_free(n);
  pol_trainer_free(t);
  ds_dataset_free(d);
  return 0;
}

TEST(nonfinite_chunk_gets_an_error_reply_not_actions) {
  /* a broken weight makes every sample NaN: the reply is an error, not the
   * lower bound */
  pol_policy *p = node_fixture_policy();
  p->flow->params[fc_lfm_nparams(p->flow) - 1] = NAN; /* the last block's last output bias */
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  pol_node *n = pol_node_new(p, &cfg);
  s_msg m;
  msgpack_unpacked up;
  double f[5];
  s_frame(0, f);
  s_obs_request(&m, "infer", "robot", f, 0);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 1);
  const msgpack_object *e = pw_map_get(&up.data, "error");
  ASSERT(e && e->type == MSGPACK_OBJECT_STR);
  char msg[256];
  snprintf(msg, sizeof(msg), "%.*s", (int)e->via.str.size, e->via.str.ptr);
  ASSERT_CONTAINS(msg, "the policy sampled a non-finite action");
  ASSERT(pw_map_get(&up.data, "actions") == NULL);
  /* marked as a refusal (protocol 2), which a client ends its episode on */
  const msgpack_object *rf = pw_map_get(&up.data, "refused");
  ASSERT(rf && rf->type == MSGPACK_OBJECT_BOOLEAN && rf->via.boolean);
  msgpack_unpacked_destroy(&up);
  /* a NaN observation is refused by the library's check, frame by frame */
  f[3] = NAN;
  double two[10];
  s_frame(1, two);
  memcpy(two + 5, f, sizeof(f));
  s_obs_request(&m, "observe", "robot", two, 2);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 1);
  e = pw_map_get(&up.data, "error");
  ASSERT(e);
  snprintf(msg, sizeof(msg), "%.*s", (int)e->via.str.size, e->via.str.ptr);
  ASSERT_CONTAINS(msg, "frame 1: observation 'grip' value 0 is not finite (nan)");
  ASSERT(pw_map_get(&up.data, "refused") == NULL); /* a bad request is not a refusal */
  msgpack_unpacked_destroy(&up);
  /* the node serves on */
  s_simple(&m, "ping", NULL, 0, 0);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 0);
  msgpack_unpacked_destroy(&up);
  ASSERT_EQ_INT(pol_node_get_stats(n).errors, 2);
  pol_node_free(n);
  pol_free(p);
  return 0;
}


/* ---- real-time chunking (protocol 2) ---- */

/* an infer request of one frame with the optional fields: rtc_delay and
 * rtc_index when delay >= 0, horizon when > 0 (or < 0: that value, sent as
 * a signed integer, to be refused) */
static void s_infer_ext(s_msg *m, const char *sess, const double *frame, int delay, int index, int horizon) {
  s_begin(m);
  msgpack_pack_map(&m->pk, 4 + 2 * (delay >= 0) + (horizon != 0));
  pw_pack_str(&m->pk, "endpoint");
  pw_pack_str(&m->pk, "infer");
  pw_pack_str(&m->pk, "session");
  pw_pack_str(&m->pk, sess);
  if (delay >= 0) {
    pw_pack_str(&m->pk, "rtc_delay");
    msgpack_pack_int(&m->pk, delay);
    pw_pack_str(&m->pk, "rtc_index");
    msgpack_pack_int(&m->pk, index);
  }
  if (horizon) {
    pw_pack_str(&m->pk, "horizon");
    msgpack_pack_int(&m->pk, horizon);
  }
  pw_pack_str(&m->pk, "dtype");
  pw_pack_str(&m->pk, "<f8");
  pw_pack_str(&m->pk, "obs");
  msgpack_pack_map(&m->pk, 2);
  const uint32_t sp[1] = {3}, sg[1] = {2};
  pw_pack_str(&m->pk, "pos");
  pw_pack_ndarray(&m->pk, frame, 1, sp, 8);
  pw_pack_str(&m->pk, "grip");
  pw_pack_ndarray(&m->pk, frame + 3, 1, sg, 8);
}
#define s_rtc_request(m, sess, frame, delay, index) s_infer_ext(m, sess, frame, delay, index, 0)

/* {endpoint: ep, field: value}: one integer field where it may not belong */
static void s_field_request(s_msg *m, const char *ep, const char *field, int value) {
  s_begin(m);
  msgpack_pack_map(&m->pk, 2);
  pw_pack_str(&m->pk, "endpoint");
  pw_pack_str(&m->pk, ep);
  pw_pack_str(&m->pk, field);
  msgpack_pack_int(&m->pk, value);
}

TEST(rtc_infer_continues_the_last_chunk) {
  /* after a plain infer, an infer with rtc_delay d and rtc_index i answers
   * "guided" and its first d actions are the last chunk's actions i..i+d-1;
   * after reset there is no chunk to continue ("none"); the fields are
   * checked, and belong to infer */
  pol_policy *p = node_fixture_policy();
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  pol_node *n = pol_node_new(p, &cfg);
  s_msg m;
  msgpack_unpacked up;
  double f[5], first[6], next[6];
  char how[16];
  s_frame(0, f);
  s_obs_request(&m, "infer", "r", f, 0);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 0);
  ASSERT_EQ_INT(s_actions(&up, first, 6), 6);
  ASSERT(!pw_map_get(&up.data, "rtc"));
  msgpack_unpacked_destroy(&up);
  s_frame(1, f);
  s_rtc_request(&m, "r", f, 1, 1);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 0);
  ASSERT(!pw_map_str(&up.data, "rtc", how, sizeof(how)) && !strcmp(how, "guided"));
  ASSERT_EQ_INT(s_actions(&up, next, 6), 6);
  msgpack_unpacked_destroy(&up);
  /* frozen: new step 0 is old step 1 (to float rounding of the normalization round trip) */
  for (int a = 0; a < 2; a++) ASSERT_MSG(fabs(next[a] - first[2 + a]) < 1e-5, "%g vs %g", next[a], first[2 + a]);
  s_simple(&m, "reset", "r", 0, 0);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 0);
  msgpack_unpacked_destroy(&up);
  s_rtc_request(&m, "r", f, 1, 1);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 0);
  ASSERT(!pw_map_str(&up.data, "rtc", how, sizeof(how)) && !strcmp(how, "none"));
  msgpack_unpacked_destroy(&up);
  /* bad fields */
  s_field_request(&m, "ping", "rtc_delay", 2);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 1);
  char e[256];
  ASSERT(!pw_map_str(&up.data, "error", e, sizeof(e)));
  ASSERT_CONTAINS(e, "belong to endpoint infer");
  msgpack_unpacked_destroy(&up);
  s_field_request(&m, "infer", "rtc_index", -3);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 1);
  ASSERT(!pw_map_str(&up.data, "error", e, sizeof(e)));
  ASSERT_CONTAINS(e, "rtc_index");
  msgpack_unpacked_destroy(&up);
  pol_node_free(n);
  pol_free(p);
  return 0;
}

TEST(infer_horizon_returns_more_of_the_chunk) {
  /* protocol 3: "horizon": n returns the chunk's first n (1..Tp) actions,
   * whose first Ta are the actions a plain infer returns from the same seed
   * and history, bit for bit (with rtc too); out-of-range horizons and a
   * horizon on another endpoint get sentences */
  pol_policy *p = node_fixture_policy(); /* To 2, Tp 4, Ta 3, 2-D actions */
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  pol_node *n = pol_node_new(p, &cfg);
  s_msg m;
  msgpack_unpacked up;
  double f[5], plain[6], full[8], rtc_plain[6], rtc_full[8];
  char e[256];
  for (int pass = 0; pass < 2; pass++) {
    s_simple(&m, "reset", "h", 1, 42);
    ASSERT_EQ_INT(s_call(n, "x", &m, &up), 0);
    msgpack_unpacked_destroy(&up);
    s_frame(0, f);
    s_infer_ext(&m, "h", f, -1, 0, pass ? 4 : 0);
    ASSERT_EQ_INT(s_call(n, "x", &m, &up), 0);
    ASSERT_EQ_INT(s_actions(&up, pass ? full : plain, pass ? 8 : 6), pass ? 8 : 6);
    msgpack_unpacked_destroy(&up);
    s_frame(1, f);
    s_infer_ext(&m, "h", f, 1, 1, pass ? 4 : 0);
    ASSERT_EQ_INT(s_call(n, "x", &m, &up), 0);
    ASSERT_EQ_INT(s_actions(&up, pass ? rtc_full : rtc_plain, pass ? 8 : 6), pass ? 8 : 6);
    msgpack_unpacked_destroy(&up);
  }
  ASSERT(!memcmp(plain, full, sizeof(plain)) && !memcmp(rtc_plain, rtc_full, sizeof(rtc_plain)));
  /* the reply's shape says (4, 2) */
  s_infer_ext(&m, "h", f, -1, 0, 4);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 0);
  {
    int rank;
    uint32_t shape[PW_MAX_RANK];
    double buf[8];
    ASSERT(pw_read_array(pw_map_get(&up.data, "actions"), buf, 8, &rank, shape, e, sizeof(e)) == 8);
    ASSERT(rank == 2 && shape[0] == 4 && shape[1] == 2);
  }
  msgpack_unpacked_destroy(&up);
  static const struct { int horizon; const char *msg; } bad[] = {
      {5, "asks for 5 actions; this policy predicts 4 per chunk (Tp)"},
      {-1, "field \"horizon\" must be an integer in 1..1024"},
      {2000, "field \"horizon\" must be an integer in 1..1024"},
  };
  for (int i = 0; i < 3; i++) {
    s_infer_ext(&m, "h", f, -1, 0, bad[i].horizon);
    ASSERT_EQ_INT(s_call(n, "x", &m, &up), 1);
    ASSERT(!pw_map_str(&up.data, "error", e, sizeof(e)));
    ASSERT_CONTAINS(e, bad[i].msg);
    msgpack_unpacked_destroy(&up);
  }
  s_field_request(&m, "ping", "horizon", 2);
  ASSERT_EQ_INT(s_call(n, "x", &m, &up), 1);
  ASSERT(!pw_map_str(&up.data, "error", e, sizeof(e)));
  ASSERT_CONTAINS(e, "field \"horizon\" belongs to endpoint infer");
  msgpack_unpacked_destroy(&up);
  pol_node_free(n);
  pol_free(p);
  return 0;
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(scan_refuses_bombs_and_malformed_bytes),
      TEST_ENTRY(info_and_ping_describe_the_policy),
      TEST_ENTRY(infer_equals_pol_act_bit_for_bit),
      TEST_ENTRY(stacked_frames_replace_the_history),
      TEST_ENTRY(bad_requests_get_sentences_and_the_node_serves_on),
      TEST_ENTRY(sessions_are_bounded_least_recently_used_first),
      TEST_ENTRY(router_serves_req_and_dealer_clients),
      TEST_ENTRY(client_speaks_to_the_node_and_retries),
      TEST_ENTRY(batched_infer_is_one_batched_evaluation),
      TEST_ENTRY(npy_parser_is_strict),
      TEST_ENTRY(info_reports_the_action_bounds_of_the_data),
      TEST_ENTRY(nonfinite_chunk_gets_an_error_reply_not_actions),
      TEST_ENTRY(rtc_infer_continues_the_last_chunk),
      TEST_ENTRY(infer_horizon_returns_more_of_the_chunk),
  };
  fc_par_init(0); /* as lfp does: the pool sized from the CPUs, OpenBLAS one thread per call */
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
