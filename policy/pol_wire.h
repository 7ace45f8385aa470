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

typedef enum { PW_INFO = 0, PW_INFER, PW_OBSERVE, PW_RESET, PW_PING, PW_NENDPOINTS } pw_endpoint;
const char *pw_endpoint_name(pw_endpoint e);

/* A decoded array: rank 1 or 2, values as <f4, <f8 or a msgpack list. It
 * points into the request's buffers. */
typedef struct {
  char name[PW_MAX_NAME + 1];
  int rank;
  uint32_t shape[2];
  size_t count;                /* shape[0] (* shape[1]) */
  int itemsize;                /* 4 or 8 for raw data; 0 for a list */
  const uint8_t *data;         /* raw little-endian values */
  const msgpack_object *list;  /* or: list of numbers (rank 1) or of lists (rank 2) */
} pw_array;

typedef struct {
  pw_endpoint endpoint;
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
/* Element i (row-major) of an array as a double. */
double pw_array_get(const pw_array *a, size_t i);

/* Packing helpers (msgpack-c packer): a str; an openpi ndarray map with
 * bin keys holding float32 (itemsize 4) or float64 (8) values converted from
 * v; a list of doubles. */
void pw_pack_str(msgpack_packer *pk, const char *s);
void pw_pack_ndarray(msgpack_packer *pk, const double *v, int rank, const uint32_t *shape, int itemsize);
void pw_pack_doubles(msgpack_packer *pk, const double *v, int n);

/* Client side: decode an ndarray map (or a list of numbers) found in a reply
 * into at most cap doubles; returns the element count and the shape, or -1
 * with err. */
int pw_read_array(const msgpack_object *o, double *out, size_t cap, int *rank, uint32_t *shape, char *err, size_t errsz);
/* The value of a str/bin key in a msgpack map, or NULL. */
const msgpack_object *pw_map_get(const msgpack_object *map, const char *key);
/* A map's integer, number (float or integer) or str value by key: 0, or -1
 * when the key is absent or of another type (dst truncated to cap). */
int pw_map_int(const msgpack_object *map, const char *key, int64_t *v);
int pw_map_num(const msgpack_object *map, const char *key, double *v);
int pw_map_str(const msgpack_object *map, const char *key, char *dst, size_t cap);

#endif
