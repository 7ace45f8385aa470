/* pol_wire: the controller node's message format (protocol 3), on Debian's
 * msgpack-c. One msgpack map per message; arrays are openpi's msgpack-numpy
 * map {"__ndarray__": true, "data": <bin>, "dtype": "<f4", "shape": [..]}
 * (keys as bin or str, dtype "<f4" or "<f8"), or plain msgpack lists of
 * numbers. Decoding never trusts a declared size: pw_scan walks the raw bytes
 * first and refuses containers that claim more elements than bytes remain,
 * nesting deeper than PW_MAX_DEPTH or more than PW_MAX_OBJECTS objects, so
 * msgpack-c never allocates more than a small multiple of the message.
 *
 * Replies are built with msgpack-c's packer and the pw_pack_* helpers.
 *
 * Example: a request's bytes buf (len) as the node reads them
 *
 *   int handle(const void *buf, size_t len, char *err, size_t errsz) {
 *     pw_request rq;
 *     int rc = pw_decode(&rq, buf, len, err, errsz);   // on error: reply {"error": err}
 *     if (rc == 0 && rq.endpoint == PW_INFER && rq.nobs > 0)
 *       printf("%s: %zu values, first %g\n", rq.obs[0].name, rq.obs[0].count,
 *              rq.obs[0].count ? pw_array_get(&rq.obs[0], 0) : 0.0);
 *     pw_request_free(&rq);
 *     return rc;
 *   }
 */
#ifndef POL_WIRE_H
#define POL_WIRE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define PW_PROTOCOL 3 /* 2: infer takes rtc_delay and rtc_index (real-time chunking); 3: infer
                          takes horizon (actions per reply, Ta by default). A request of an
                          older protocol is a protocol-3 request without the newer fields */
#define PW_MAX_DEPTH 8
#define PW_MAX_OBJECTS 4096
#define PW_MAX_OBS 8      /* observation keys in one request */
#define PW_MAX_NAME 64    /* bytes of a key or session name */

/* lfp's endpoints; PW_MODALITY is GR00T's get_modality_config (the GR00T
 * dialect below maps get_action to PW_INFER, ping and reset to theirs) */
typedef enum { PW_INFO = 0, PW_INFER, PW_OBSERVE, PW_RESET, PW_PING, PW_NENDPOINTS, PW_MODALITY = PW_NENDPOINTS } pw_endpoint;
/* Which client's conventions a request follows (and its reply must):
 *   PW_LFP        this file's protocol
 *   PW_GR00T      Isaac GR00T's ZeroMQ dialect, N1.5 style: {"endpoint": E,
 *                 "data": OBS}, arrays {"__ndarray_class__": true, "as_npy":
 *                 <np.save bytes>}; the reply to get_action is {"action":
 *                 (B, H, A)}
 *   PW_GR00T_N16  N1.6 style: data {"observation": OBS, "options": ...};
 *                 get_action's reply is [{"action": (B, H, A)}, info]
 * OBS holds the state arrays (B, T, D) either nested ("state": {key: ...})
 * or flat ("state.key", or the bare key); "video", "video.*", "language",
 * "language.*" and "annotation.*" entries are skipped (lfp's policies see
 * state only). Endpoints: get_action, ping, reset, get_modality_config;
 * kill is refused (stop the node with a signal). */
typedef enum { PW_LFP = 0, PW_GR00T = 1, PW_GR00T_N16 = 2 } pw_dialect;
const char *pw_endpoint_name(pw_endpoint e);

/* A decoded array: rank 1 or 2 (as an ndarray map also 3: a batch), values
 * as <f4, <f8 or a msgpack list. It points into the request's buffers. */
#define PW_MAX_RANK 3
typedef struct {
  char name[PW_MAX_NAME + 1];
  int rank;
  uint32_t shape[PW_MAX_RANK]; /* unused entries 1 */
  size_t count;                /* the product of the shape */
  int itemsize;                /* bytes per value for raw data (4 or 8; .npy also 1, 2); 0 for a list */
  char kind;                   /* raw data: 'f' float, 'i' signed, 'u' unsigned integer, 'b' bool */
  const uint8_t *data;         /* raw little-endian values */
  const msgpack_object *list;  /* or: list of numbers (rank 1) or of lists (rank 2) */
} pw_array;

typedef struct {
  pw_endpoint endpoint;
  pw_dialect dialect;
  char session[PW_MAX_NAME + 1]; /* "" when absent */
  int has_seed;
  uint64_t seed;                 /* reset: reseed this client's sampler */
  int has_id;
  int64_t id;                    /* echoed in the reply */
  int action_itemsize;           /* infer: 4 ("<f4", default) or 8 ("<f8") */
  int has_rtc;                   /* infer: real-time chunking against the session's last chunk */
  int rtc_delay, rtc_index;      /* actions that run before the reply lands; the step of the
                                    last chunk executing when the observation was taken */
  int horizon;                   /* infer: actions wanted (1..Tp, checked by the node); 0: Ta */
  int nobs;
  pw_array obs[PW_MAX_OBS];
  msgpack_unpacked up;           /* owns the decoded objects */
} pw_request;

/* 0 when buf holds exactly one well-formed msgpack object within the limits,
 * else -1 with a sentence naming the byte offset. */
int pw_scan(const void *buf, size_t len, char *err, size_t errsz);
/* Decode and check a request's structure (not its fit to a policy). On error
 * fills err; rq->has_id is still set when the id could be read. Always call
 * pw_request_free afterwards. */
int pw_decode(pw_request *rq, const void *buf, size_t len, char *err, size_t errsz);
void pw_request_free(pw_request *rq);
/* A .npy file (np.save with allow_pickle=False: format 1.0 to 3.0) as an
 * array of rank 1 to PW_MAX_RANK pointing into buf, parsed strictly: the
 * header is the dict np.save writes, {'descr': D, 'fortran_order': False,
 * 'shape': (...)} and nothing else, D one of <f4 <f8 <i8 <i4 <i2 |i1 <u8
 * <u4 <u2 |u1 |b1 (object, structured, big-endian and Fortran-ordered
 * arrays are refused: nothing is ever unpickled), and the data exactly the
 * shape's size. 0, or -1 with a sentence naming `what`. */
int pw_npy_parse(const uint8_t *buf, size_t len, pw_array *a, const char *what, char *err, size_t errsz);
/* The .npy bytes np.load reads back as a float32 (itemsize 4) or float64
 * array of the given shape (rank 1 to PW_MAX_RANK), into a bin. */
void pw_pack_npy(msgpack_packer *pk, const double *v, int rank, const uint32_t *shape, int itemsize);
/* Element i (row-major) of an array as a double. */
double pw_array_get(const pw_array *a, size_t i);

/* Packing helpers (msgpack-c packer): a str; an openpi ndarray map (rank 1
 * to PW_MAX_RANK) with bin keys holding float32 (itemsize 4) or float64 (8)
 * values converted from v; a list of doubles. */
void pw_pack_str(msgpack_packer *pk, const char *s);
void pw_pack_ndarray(msgpack_packer *pk, const double *v, int rank, const uint32_t *shape, int itemsize);
void pw_pack_doubles(msgpack_packer *pk, const double *v, int n);

/* Client side: decode an ndarray map (or a list of numbers) found in a reply
 * into at most cap doubles; returns the element count and the shape (rank
 * entries, shape has room for PW_MAX_RANK), or -1 with err. */
int pw_read_array(const msgpack_object *o, double *out, size_t cap, int *rank, uint32_t *shape, char *err, size_t errsz);
/* The value of a str/bin key in a msgpack map, or NULL. */
const msgpack_object *pw_map_get(const msgpack_object *map, const char *key);
/* A map's integer, number (float or integer) or str value by key: 0, or -1
 * when the key is absent or of another type (dst truncated to cap). */
int pw_map_int(const msgpack_object *map, const char *key, int64_t *v);
int pw_map_num(const msgpack_object *map, const char *key, double *v);
int pw_map_str(const msgpack_object *map, const char *key, char *dst, size_t cap);

#endif
