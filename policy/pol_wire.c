/* pol_wire: decoding and encoding the controller node's msgpack messages. */
#include "pol_wire.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fc_base.h"

static const char *const s_endpoints[PW_NENDPOINTS] = {"info", "infer", "observe", "reset", "ping"};
const char *pw_endpoint_name(pw_endpoint e) { return (unsigned)e < PW_NENDPOINTS ? s_endpoints[e] : "?"; }

/* ---- structural pre-scan of raw msgpack bytes ---- */

static uint64_t s_be(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

int pw_scan(const void *buf, size_t len, char *err, size_t errsz) {
  const uint8_t *b = buf;
  size_t pos = 0, nobj = 0;
  uint64_t left[PW_MAX_DEPTH + 1]; /* children still expected at each open level */
  int depth = 0;
  left[0] = 1;
  while (depth > 0 || left[0] > 0) {
    if (left[depth] == 0) {
      depth--;
      continue;
    }
    left[depth]--;
    if (pos >= len) return fc_set_err(err, errsz, "message is not valid msgpack: it ends early at byte %zu", pos), -1;
    if (++nobj > PW_MAX_OBJECTS)
      return fc_set_err(err, errsz, "message has more than %d msgpack objects", PW_MAX_OBJECTS), -1;
    const uint8_t t = b[pos];
    const size_t at = pos++;
    uint64_t skip = 0, children = 0;
    int lenbytes = 0, container = 0;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
      /* fixint, nil, bool */
    } else if (t <= 0x8f) {
      children = 2u * (t & 0x0f), container = 1;
    } else if (t <= 0x9f) {
      children = t & 0x0f, container = 1;
    } else if (t <= 0xbf) {
      skip = t & 0x1f;
    } else {
      switch (t) {
      case 0xc4: case 0xd9: lenbytes = 1; break;        /* bin8, str8 */
      case 0xc5: case 0xda: lenbytes = 2; break;        /* bin16, str16 */
      case 0xc6: case 0xdb: lenbytes = 4; break;        /* bin32, str32 */
      case 0xc7: lenbytes = 1, skip = 1; break;         /* ext8: length, type */
      case 0xc8: lenbytes = 2, skip = 1; break;
      case 0xc9: lenbytes = 4, skip = 1; break;
      case 0xca: skip = 4; break;                       /* float32 */
      case 0xcb: skip = 8; break;                       /* float64 */
      case 0xcc: case 0xd0: skip = 1; break;
      case 0xcd: case 0xd1: skip = 2; break;
      case 0xce: case 0xd2: skip = 4; break;
      case 0xcf: case 0xd3: skip = 8; break;
      case 0xd4: skip = 2; break;                       /* fixext 1, 2, 4, 8, 16 (+ type) */
      case 0xd5: skip = 3; break;
      case 0xd6: skip = 5; break;
      case 0xd7: skip = 9; break;
      case 0xd8: skip = 17; break;
      case 0xdc: lenbytes = 2, container = 1; break;    /* array16 */
      case 0xdd: lenbytes = 4, container = 1; break;    /* array32 */
      case 0xde: lenbytes = 2, container = 2; break;    /* map16 */
      case 0xdf: lenbytes = 4, container = 2; break;    /* map32 */
      default: return fc_set_err(err, errsz, "message is not valid msgpack: byte 0x%02x at %zu is not a type", t, at), -1;
      }
      if (lenbytes) {
        if (len - pos < (size_t)lenbytes)
          return fc_set_err(err, errsz, "message is not valid msgpack: it ends early at byte %zu", pos), -1;
        uint64_t n = s_be(b + pos, lenbytes);
        pos += (size_t)lenbytes;
        if (container) children = container == 2 ? 2 * n : n;
        else skip += n;
      }
    }
    if (skip > len - pos)
      return fc_set_err(err, errsz, "message is not valid msgpack: the object at byte %zu runs past its end", at), -1;
    pos += (size_t)skip;
    if (container) {
      /* every child takes at least one byte */
      if (children > len - pos)
        return fc_set_err(err, errsz, "message is not valid msgpack: the container at byte %zu claims %llu elements in %zu bytes",
                          at, (unsigned long long)children, len - pos), -1;
      if (children > 0) {
        if (depth == PW_MAX_DEPTH)
          return fc_set_err(err, errsz, "message nests deeper than %d levels (at byte %zu)", PW_MAX_DEPTH, at), -1;
        left[++depth] = children;
      }
    }
  }
  if (pos != len) return fc_set_err(err, errsz, "message has %zu bytes after its msgpack object", len - pos), -1;
  return 0;
}

/* ---- decoding ---- */

static const char *s_type_name(const msgpack_object *o) {
  switch (o->type) {
  case MSGPACK_OBJECT_NIL: return "nil";
  case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: return "a float";
  case MSGPACK_OBJECT_STR: return "a string";
  case MSGPACK_OBJECT_BIN: return "bytes";
  case MSGPACK_OBJECT_ARRAY: return "a list";
  case MSGPACK_OBJECT_MAP: return "a map";
  default: return "an extension";
  }
}

/* a str or bin object's bytes (keys may be either) */
static int s_bytes(const msgpack_object *o, const char **p, uint32_t *n) {
  if (o->type == MSGPACK_OBJECT_STR) *p = o->via.str.ptr, *n = o->via.str.size;
  else if (o->type == MSGPACK_OBJECT_BIN) *p = o->via.bin.ptr, *n = o->via.bin.size;
  else return -1;
  return 0;
}

static int s_is(const msgpack_object *o, const char *s) {
  const char *p;
  uint32_t n;
  return !s_bytes(o, &p, &n) && n == strlen(s) && !memcmp(p, s, n);
}

/* printable copy of a str/bin for messages and names (non-printable -> '?') */
static void s_copy_name(const msgpack_object *o, char *dst, size_t cap) {
  const char *p = "";
  uint32_t n = 0;
  if (s_bytes(o, &p, &n)) {
    snprintf(dst, cap, "(%s)", s_type_name(o));
    return;
  }
  size_t k = 0;
  for (uint32_t i = 0; i < n && k + 1 < cap; i++) dst[k++] = (p[i] >= 32 && p[i] < 127) ? p[i] : '?';
  dst[k] = 0;
}

/* openpi's numpy scalars (msgpack_numpy packs np.int64(3) as {"__npgeneric__":
 * true, "data": 3, "dtype": "<i8"}, keys str or bin): the number inside;
 * any other object is itself */
static const msgpack_object *s_scalar(const msgpack_object *o) {
  if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 3) return o;
  const msgpack_object *flag = NULL, *data = NULL, *dtype = NULL;
  for (uint32_t i = 0; i < 3; i++) {
    const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
    if (s_is(k, "__npgeneric__")) flag = v;
    else if (s_is(k, "data")) data = v;
    else if (s_is(k, "dtype")) dtype = v;
  }
  const char *p;
  uint32_t n;
  if (!flag || flag->type != MSGPACK_OBJECT_BOOLEAN || !flag->via.boolean || !data || !dtype || s_bytes(dtype, &p, &n))
    return o;
  return data;
}

const msgpack_object *pw_map_get(const msgpack_object *map, const char *key) {
  if (map->type != MSGPACK_OBJECT_MAP) return NULL;
  for (uint32_t i = 0; i < map->via.map.size; i++)
    if (s_is(&map->via.map.ptr[i].key, key)) return s_scalar(&map->via.map.ptr[i].val);
  return NULL;
}

int pw_map_int(const msgpack_object *m, const char *key, int64_t *v) {
  const msgpack_object *o = pw_map_get(m, key);
  if (!o || (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER && o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)) return -1;
  *v = o->via.i64;
  return 0;
}

int pw_map_num(const msgpack_object *m, const char *key, double *v) {
  const msgpack_object *o = pw_map_get(m, key);
  if (!o) return -1;
  if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) *v = o->via.f64;
  else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) *v = (double)o->via.u64;
  else return -1;
  return 0;
}

int pw_map_str(const msgpack_object *m, const char *key, char *dst, size_t cap) {
  const msgpack_object *o = pw_map_get(m, key);
  if (!o || o->type != MSGPACK_OBJECT_STR) return -1;
  snprintf(dst, cap, "%.*s", (int)o->via.str.size, o->via.str.ptr);
  return 0;
}

static int s_is_number(const msgpack_object *o) {
  o = s_scalar(o);
  return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
         o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64;
}

static double s_number(const msgpack_object *o) {
  o = s_scalar(o);
  switch (o->type) {
  case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double)o->via.i64;
  default: return o->via.f64;
  }
}

/* an ndarray map or a (nested) list of numbers -> a */
static int s_parse_array(const msgpack_object *o, pw_array *a, const char *what, char *err, size_t errsz) {
  a->data = NULL, a->list = NULL, a->itemsize = 0, a->kind = 'f';
  if (o->type == MSGPACK_OBJECT_ARRAY) {
    const uint32_t n0 = o->via.array.size;
    if (n0 == 0) return fc_set_err(err, errsz, "%s is an empty list", what), -1;
    const msgpack_object *e = o->via.array.ptr;
    if (s_is_number(&e[0])) {
      for (uint32_t i = 0; i < n0; i++)
        if (!s_is_number(&e[i]))
          return fc_set_err(err, errsz, "%s: element %u is %s, not a number", what, i, s_type_name(&e[i])), -1;
      a->rank = 1, a->shape[0] = n0, a->shape[1] = a->shape[2] = 1;
    } else if (e[0].type == MSGPACK_OBJECT_ARRAY) {
      const uint32_t n1 = e[0].via.array.size;
      for (uint32_t i = 0; i < n0; i++) {
        if (e[i].type != MSGPACK_OBJECT_ARRAY || e[i].via.array.size != n1)
          return fc_set_err(err, errsz, "%s: row %u is not a list of %u numbers", what, i, n1), -1;
        for (uint32_t j = 0; j < n1; j++)
          if (!s_is_number(&e[i].via.array.ptr[j]))
            return fc_set_err(err, errsz, "%s: element [%u][%u] is %s, not a number", what, i, j,
                              s_type_name(&e[i].via.array.ptr[j])), -1;
      }
      a->rank = 2, a->shape[0] = n0, a->shape[1] = n1, a->shape[2] = 1;
    } else {
      return fc_set_err(err, errsz, "%s is a list of %s, not of numbers", what, s_type_name(&e[0])), -1;
    }
    a->list = o;
    a->count = (size_t)a->shape[0] * a->shape[1];
    return 0;
  }
  if (o->type != MSGPACK_OBJECT_MAP)
    return fc_set_err(err, errsz, "%s is %s, not an array (an ndarray map or a list of numbers)", what, s_type_name(o)), -1;
  const msgpack_object *nd = NULL, *data = NULL, *dtype = NULL, *shape = NULL;
  for (uint32_t i = 0; i < o->via.map.size; i++) {
    const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
    if (s_is(k, "__ndarray__")) nd = v;
    else if (s_is(k, "data")) data = v;
    else if (s_is(k, "dtype")) dtype = v;
    else if (s_is(k, "shape")) shape = v;
    else {
      char kn[PW_MAX_NAME + 1];
      s_copy_name(k, kn, sizeof(kn));
      return fc_set_err(err, errsz, "%s has an unknown ndarray field '%s' (expected __ndarray__, data, dtype, shape)", what, kn), -1;
    }
  }
  if (!nd || nd->type != MSGPACK_OBJECT_BOOLEAN || !nd->via.boolean)
    return fc_set_err(err, errsz, "%s is a map without \"__ndarray__\": true", what), -1;
  if (!data || data->type != MSGPACK_OBJECT_BIN) return fc_set_err(err, errsz, "%s: \"data\" must be bytes (msgpack bin)", what), -1;
  const char *dt;
  uint32_t dtn;
  if (!dtype || s_bytes(dtype, &dt, &dtn)) return fc_set_err(err, errsz, "%s: \"dtype\" must be a string", what), -1;
  if (dtn == 3 && !memcmp(dt, "<f4", 3)) a->itemsize = 4;
  else if (dtn == 3 && !memcmp(dt, "<f8", 3)) a->itemsize = 8;
  else {
    char dn[PW_MAX_NAME + 1];
    s_copy_name(dtype, dn, sizeof(dn));
    return fc_set_err(err, errsz, "%s has dtype '%s'; the node takes '<f4' or '<f8'", what, dn), -1;
  }
  if (!shape || shape->type != MSGPACK_OBJECT_ARRAY || shape->via.array.size < 1 ||
      shape->via.array.size > PW_MAX_RANK)
    return fc_set_err(err, errsz, "%s: \"shape\" must be a list of 1 to %d sizes", what, PW_MAX_RANK), -1;
  a->rank = (int)shape->via.array.size;
  a->shape[1] = a->shape[2] = 1;
  for (int d = 0; d < a->rank; d++) {
    const msgpack_object *s = s_scalar(&shape->via.array.ptr[d]);
    if (s->type != MSGPACK_OBJECT_POSITIVE_INTEGER || s->via.u64 == 0 || s->via.u64 > 65536)
      return fc_set_err(err, errsz, "%s: shape entry %d must be an integer in 1..65536", what, d), -1;
    a->shape[d] = (uint32_t)s->via.u64;
  }
  a->count = (size_t)a->shape[0] * a->shape[1] * a->shape[2]; /* at most 2^48 */
  if ((uint64_t)data->via.bin.size != (uint64_t)a->count * (uint64_t)a->itemsize)
    return fc_set_err(err, errsz, "%s: %u data bytes do not match shape and dtype (%zu values of %d bytes)", what,
                      data->via.bin.size, a->count, a->itemsize), -1;
  a->data = (const uint8_t *)data->via.bin.ptr;
  return 0;
}

double pw_array_get(const pw_array *a, size_t i) {
  if (a->list) {
    if (a->rank == 1) return s_number(&a->list->via.array.ptr[i]);
    const size_t c = a->shape[1];
    return s_number(&a->list->via.array.ptr[i / c].via.array.ptr[i % c]);
  }
  /* little-endian on the wire, whatever the host */
  uint64_t bits = 0;
  for (int b = a->itemsize - 1; b >= 0; b--) bits = bits << 8 | a->data[i * (size_t)a->itemsize + (size_t)b];
  if (a->kind == 'f' && a->itemsize == 4) {
    uint32_t u = (uint32_t)bits;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  if (a->kind == 'f') {
    double d;
    memcpy(&d, &bits, 8);
    return d;
  }
  if (a->kind == 'i' && a->itemsize < 8 && (bits >> (8 * a->itemsize - 1) & 1))
    bits |= ~(uint64_t)0 << (8 * a->itemsize); /* sign-extend */
  return a->kind == 'i' ? (double)(int64_t)bits : (double)bits;
}

/* ---- .npy (np.save, allow_pickle=False) ---- */

static const char *s_npy_ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t')) p++;
  return p;
}

/* a Python str literal in single quotes -> [*v, *v + *n) */
static const char *s_npy_str(const char *p, const char *e, const char **v, size_t *n) {
  if (p >= e || *p != '\'') return NULL;
  const char *q = memchr(p + 1, '\'', (size_t)(e - p - 1));
  if (!q) return NULL;
  *v = p + 1, *n = (size_t)(q - p - 1);
  return q + 1;
}

int pw_npy_parse(const uint8_t *buf, size_t len, pw_array *a, const char *what, char *err, size_t errsz) {
  static const struct {
    const char *descr;
    char kind;
    int size;
  } types[] = {{"<f4", 'f', 4}, {"<f8", 'f', 8}, {"<i8", 'i', 8}, {"<i4", 'i', 4}, {"<i2", 'i', 2}, {"|i1", 'i', 1},
               {"<u8", 'u', 8}, {"<u4", 'u', 4}, {"<u2", 'u', 2}, {"|u1", 'u', 1}, {"|b1", 'b', 1}};
  a->list = NULL;
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6))
    return fc_set_err(err, errsz, "%s is not a .npy array (no \\x93NUMPY magic)", what), -1;
  const int major = buf[6];
  if (major < 1 || major > 3 || buf[7] != 0)
    return fc_set_err(err, errsz, "%s: .npy format version %d.%d is not one of 1.0, 2.0, 3.0", what, buf[6], buf[7]), -1;
  size_t hl, start;
  if (major == 1) hl = (size_t)buf[8] | (size_t)buf[9] << 8, start = 10;
  else {
    if (len < 12) return fc_set_err(err, errsz, "%s: the .npy header is cut short", what), -1;
    hl = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24, start = 12;
  }
  if (hl > 4096 || hl > len - start) return fc_set_err(err, errsz, "%s: the .npy header length %zu is out of range", what, hl), -1;
  const char *p = (const char *)buf + start, *e = p + hl;
  if (hl == 0 || e[-1] != '\n') return fc_set_err(err, errsz, "%s: the .npy header does not end with a newline", what), -1;
  e--;
  while (e > p && e[-1] == ' ') e--; /* np.save pads with spaces */
  for (const char *q = p; q < e; q++)
    if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
      return fc_set_err(err, errsz, "%s: the .npy header has a non-printable byte", what), -1;
  p = s_npy_ws(p, e);
  if (p >= e || *p++ != '{') return fc_set_err(err, errsz, "%s: the .npy header is not a dict", what), -1;
  int seen = 0; /* 1 descr, 2 fortran_order, 4 shape */
  const char *descr = NULL;
  size_t dn = 0;
  int rank = 0;
  uint64_t shape[PW_MAX_RANK + 1], count = 1;
  for (;;) {
    p = s_npy_ws(p, e);
    if (p < e && *p == '}') break;
    const char *k;
    size_t kn;
    if (!(p = s_npy_str(p, e, &k, &kn))) return fc_set_err(err, errsz, "%s: a .npy header key is not a quoted string", what), -1;
    p = s_npy_ws(p, e);
    if (p >= e || *p++ != ':') return fc_set_err(err, errsz, "%s: the .npy header lacks a ':'", what), -1;
    p = s_npy_ws(p, e);
    if (kn == 5 && !memcmp(k, "descr", 5) && !(seen & 1)) {
      if (!(p = s_npy_str(p, e, &descr, &dn)))
        return fc_set_err(err, errsz, "%s: the .npy descr is not a plain dtype string (structured arrays are refused)",
                          what), -1;
      seen |= 1;
    } else if (kn == 13 && !memcmp(k, "fortran_order", 13) && !(seen & 2)) {
      if (e - p >= 5 && !memcmp(p, "False", 5)) p += 5;
      else if (e - p >= 4 && !memcmp(p, "True", 4))
        return fc_set_err(err, errsz, "%s is a Fortran-ordered .npy array; send C order (np.ascontiguousarray)", what), -1;
      else return fc_set_err(err, errsz, "%s: the .npy fortran_order is not False", what), -1;
      seen |= 2;
    } else if (kn == 5 && !memcmp(k, "shape", 5) && !(seen & 4)) {
      if (p >= e || *p++ != '(') return fc_set_err(err, errsz, "%s: the .npy shape is not a tuple", what), -1;
      for (;;) {
        p = s_npy_ws(p, e);
        if (p < e && *p == ')') break;
        if (p >= e || *p < '0' || *p > '9') return fc_set_err(err, errsz, "%s: the .npy shape holds a non-integer", what), -1;
        uint64_t v = 0;
        while (p < e && *p >= '0' && *p <= '9') {
          v = v * 10 + (uint64_t)(*p++ - '0');
          if (v > 65536) return fc_set_err(err, errsz, "%s: a .npy dimension is over 65536", what), -1;
        }
        if (rank == PW_MAX_RANK)
          return fc_set_err(err, errsz, "%s has more than %d dimensions", what, PW_MAX_RANK), -1;
        shape[rank++] = v;
        count *= v;
        p = s_npy_ws(p, e);
        if (p < e && *p == ',') p++;
        else if (p < e && *p == ')') break;
        else return fc_set_err(err, errsz, "%s: the .npy shape is malformed", what), -1;
      }
      p++; /* ')' */
      seen |= 4;
    } else {
      return fc_set_err(err, errsz, "%s: the .npy header has an unknown or repeated key '%.*s'", what,
                        (int)(kn < 32 ? kn : 32), k), -1;
    }
    p = s_npy_ws(p, e);
    if (p < e && *p == ',') p++;
    else if (!(p < e && *p == '}')) return fc_set_err(err, errsz, "%s: the .npy header dict is malformed", what), -1;
  }
  p = s_npy_ws(p + 1, e);
  if (p != e) return fc_set_err(err, errsz, "%s: the .npy header has bytes after its dict", what), -1;
  if (seen != 7) return fc_set_err(err, errsz, "%s: the .npy header lacks descr, fortran_order or shape", what), -1;
  int t = -1;
  for (int i = 0; i < (int)(sizeof(types) / sizeof(types[0])); i++)
    if (dn == 3 && !memcmp(descr, types[i].descr, 3)) t = i;
  if (t < 0)
    return fc_set_err(err, errsz, "%s has dtype '%.*s'; the node takes <f4, <f8 or a little-endian integer or bool type "
                      "(object arrays are never unpickled)", what, (int)(dn < 16 ? dn : 16), descr), -1;
  if (rank == 0) return fc_set_err(err, errsz, "%s is a 0-d .npy array, not an array of values", what), -1;
  if (count == 0) return fc_set_err(err, errsz, "%s is an empty .npy array", what), -1;
  const size_t data = start + hl;
  if ((uint64_t)(len - data) != count * (uint64_t)types[t].size)
    return fc_set_err(err, errsz, "%s: %zu .npy data bytes do not match its shape and dtype (%llu values of %d bytes)",
                      what, len - data, (unsigned long long)count, types[t].size), -1;
  a->rank = rank;
  for (int d = 0; d < PW_MAX_RANK; d++) a->shape[d] = d < rank ? (uint32_t)shape[d] : 1;
  a->count = (size_t)count;
  a->itemsize = types[t].size;
  a->kind = types[t].kind;
  a->data = buf + data;
  return 0;
}

void pw_pack_npy(msgpack_packer *pk, const double *v, int rank, const uint32_t *shape, int itemsize) {
  FC_ASSERT(rank >= 1 && rank <= PW_MAX_RANK && (itemsize == 4 || itemsize == 8));
  char hdr[160];
  int n = snprintf(hdr, sizeof(hdr), "{'descr': '<f%d', 'fortran_order': False, 'shape': (", itemsize);
  size_t count = 1;
  for (int d = 0; d < rank; d++) {
    n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "%u,%s", shape[d], d + 1 < rank ? " " : "");
    count *= shape[d];
  }
  if (rank > 1) n--; /* (2, 3) but (5,) */
  n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "), }");
  const int total = (10 + n + 1 + 63) / 64 * 64, hl = total - 10; /* np.save aligns the data to 64 bytes */
  msgpack_pack_bin(pk, (size_t)total + count * (size_t)itemsize);
  uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hl & 0xff), (uint8_t)(hl >> 8)};
  msgpack_pack_bin_body(pk, pre, 10);
  msgpack_pack_bin_body(pk, hdr, (size_t)n);
  for (int i = n; i < hl - 1; i++) msgpack_pack_bin_body(pk, " ", 1);
  msgpack_pack_bin_body(pk, "\n", 1);
  for (size_t i = 0; i < count; i++) {
    uint8_t b[8];
    uint64_t bits;
    if (itemsize == 4) {
      const float f = (float)v[i];
      uint32_t u;
      memcpy(&u, &f, 4);
      bits = u;
    } else {
      memcpy(&bits, &v[i], 8);
    }
    for (int k = 0; k < itemsize; k++) b[k] = (uint8_t)(bits >> (8 * k));
    msgpack_pack_bin_body(pk, b, (size_t)itemsize);
  }
}

/* ---- Isaac GR00T's dialect ---- */

/* one observation entry of a GR00T request: {"__ndarray_class__": true, "as_npy": bin} */
static int s_gr00t_array(pw_request *rq, const char *name, size_t nlen, const msgpack_object *v, char *err,
                         size_t errsz) {
  if (nlen == 0 || nlen > PW_MAX_NAME)
    return fc_set_err(err, errsz, "observation key of %zu bytes (1 to %d allowed)", nlen, PW_MAX_NAME), -1;
  if (rq->nobs == PW_MAX_OBS) return fc_set_err(err, errsz, "the observation has more than %d state keys", PW_MAX_OBS), -1;
  pw_array *a = &rq->obs[rq->nobs++];
  memcpy(a->name, name, nlen);
  a->name[nlen] = 0;
  if (strlen(a->name) != nlen) return fc_set_err(err, errsz, "an observation key contains a zero byte"), -1;
  char what[PW_MAX_NAME + 32];
  snprintf(what, sizeof(what), "observation '%s'", a->name);
  const msgpack_object *cls = NULL, *npy = NULL;
  if (v->type == MSGPACK_OBJECT_MAP)
    for (uint32_t i = 0; i < v->via.map.size; i++) {
      const msgpack_object *k = &v->via.map.ptr[i].key;
      if (s_is(k, "__ndarray_class__")) cls = &v->via.map.ptr[i].val;
      else if (s_is(k, "as_npy")) npy = &v->via.map.ptr[i].val;
      else return fc_set_err(err, errsz, "%s has a field other than __ndarray_class__ and as_npy", what), -1;
    }
  if (!cls || cls->type != MSGPACK_OBJECT_BOOLEAN || !cls->via.boolean || !npy || npy->type != MSGPACK_OBJECT_BIN)
    return fc_set_err(err, errsz, "%s is not a GR00T array ({\"__ndarray_class__\": true, \"as_npy\": <bytes>})", what),
           -1;
  return pw_npy_parse((const uint8_t *)npy->via.bin.ptr, npy->via.bin.size, a, what, err, errsz);
}

static int s_prefix(const char *p, uint32_t n, const char *pre) {
  const size_t k = strlen(pre);
  return n >= k && !memcmp(p, pre, k);
}

/* GR00T's observation dict: nested modalities or flat "modality.key" names */
static int s_gr00t_obs(pw_request *rq, const msgpack_object *obs, char *err, size_t errsz) {
  if (obs->type != MSGPACK_OBJECT_MAP)
    return fc_set_err(err, errsz, "the observation is %s, not a map", s_type_name(obs)), -1;
  for (uint32_t i = 0; i < obs->via.map.size; i++) {
    const msgpack_object *k = &obs->via.map.ptr[i].key, *v = &obs->via.map.ptr[i].val;
    const char *p;
    uint32_t n;
    if (s_bytes(k, &p, &n)) return fc_set_err(err, errsz, "observation key %u is %s, not a string", i, s_type_name(k)), -1;
    if ((n == 5 && !memcmp(p, "video", 5)) || (n == 8 && !memcmp(p, "language", 8)) || s_prefix(p, n, "video.") ||
        s_prefix(p, n, "language.") || s_prefix(p, n, "annotation."))
      continue; /* lfp's policies see state only */
    if (n == 5 && !memcmp(p, "state", 5) && v->type == MSGPACK_OBJECT_MAP && !pw_map_get(v, "__ndarray_class__")) {
      for (uint32_t j = 0; j < v->via.map.size; j++) {
        const char *q;
        uint32_t m;
        if (s_bytes(&v->via.map.ptr[j].key, &q, &m)) return fc_set_err(err, errsz, "a state key is not a string"), -1;
        if (s_gr00t_array(rq, q, m, &v->via.map.ptr[j].val, err, errsz)) return -1;
      }
      continue;
    }
    if (s_prefix(p, n, "state.")) p += 6, n -= 6;
    if (s_gr00t_array(rq, p, n, v, err, errsz)) return -1;
  }
  return 0;
}

static int s_decode_gr00t(pw_request *rq, const msgpack_object *m, char *err, size_t errsz) {
  static const char *const eps[] = {"get_action", "ping", "reset", "get_modality_config", "kill"};
  const msgpack_object *ep = NULL, *data = NULL;
  for (uint32_t i = 0; i < m->via.map.size; i++) {
    const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
    if (s_is(k, "endpoint")) ep = v;
    else if (s_is(k, "data")) data = v;
    else if (s_is(k, "api_token"))
      return fc_set_err(err, errsz, "field \"api_token\": this node has no tokens (it trusts its network; bind it to "
                        "loopback or a private interface)"), -1;
    else {
      char kn[PW_MAX_NAME + 1];
      s_copy_name(k, kn, sizeof(kn));
      return fc_set_err(err, errsz, "unknown field '%s' (a GR00T request has endpoint and data)", kn), -1;
    }
  }
  int e = -1;
  for (int i = 0; i < 5; i++)
    if (ep && s_is(ep, eps[i])) e = i;
  if (e < 0) return fc_set_err(err, errsz, "unknown GR00T endpoint (expected get_action, ping, reset or get_modality_config)"), -1;
  if (e == 4) return fc_set_err(err, errsz, "endpoint kill is not served: stop lfp serve with SIGINT or SIGTERM"), -1;
  static const pw_endpoint map[4] = {PW_INFER, PW_PING, PW_RESET, PW_MODALITY};
  rq->endpoint = map[e];
  rq->dialect = PW_GR00T;
  if (data && data->type == MSGPACK_OBJECT_NIL) data = NULL;
  if (data && data->type != MSGPACK_OBJECT_MAP)
    return fc_set_err(err, errsz, "field \"data\" is %s, not a map", s_type_name(data)), -1;
  const msgpack_object *obs = data;
  if (data && (pw_map_get(data, "observation") || pw_map_get(data, "options"))) {
    rq->dialect = PW_GR00T_N16;
    obs = pw_map_get(data, "observation");
    for (uint32_t i = 0; i < data->via.map.size; i++)
      if (!s_is(&data->via.map.ptr[i].key, "observation") && !s_is(&data->via.map.ptr[i].key, "options"))
        return fc_set_err(err, errsz, "field \"data\" has a key other than observation and options"), -1;
  }
  if (rq->endpoint != PW_INFER) return 0; /* ping, reset, get_modality_config take nothing lfp uses */
  if (!obs) return fc_set_err(err, errsz, "get_action needs the observation in field \"data\""), -1;
  rq->action_itemsize = 4;
  return s_gr00t_obs(rq, obs, err, errsz);
}

int pw_decode(pw_request *rq, const void *buf, size_t len, char *err, size_t errsz) {
  memset(rq, 0, sizeof(*rq));
  msgpack_unpacked_init(&rq->up);
  rq->action_itemsize = 4;
  if (pw_scan(buf, len, err, errsz)) return -1;
  size_t off = 0;
  if (msgpack_unpack_next(&rq->up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
    return fc_set_err(err, errsz, "message is not valid msgpack"), -1;
  const msgpack_object *m = &rq->up.data;
  if (m->type != MSGPACK_OBJECT_MAP) return fc_set_err(err, errsz, "message is %s, not a msgpack map", s_type_name(m)), -1;
  {
    const msgpack_object *gep = pw_map_get(m, "endpoint");
    if (pw_map_get(m, "data") || (gep && (s_is(gep, "get_action") || s_is(gep, "get_modality_config") || s_is(gep, "kill"))))
      return s_decode_gr00t(rq, m, err, errsz);
  }
  const msgpack_object *ep = NULL, *obs = NULL;
  /* the id first, so that even a bad request's error can be matched */
  const msgpack_object *id = pw_map_get(m, "id");
  if (id && ((id->type == MSGPACK_OBJECT_POSITIVE_INTEGER && id->via.u64 <= INT64_MAX) ||
             id->type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
    rq->has_id = 1, rq->id = id->via.i64;
  for (uint32_t i = 0; i < m->via.map.size; i++) {
    const msgpack_object *k = &m->via.map.ptr[i].key, *v = s_scalar(&m->via.map.ptr[i].val);
    if (s_is(k, "endpoint")) ep = v;
    else if (s_is(k, "obs")) obs = v;
    else if (s_is(k, "id")) {
      if (!rq->has_id) return fc_set_err(err, errsz, "field \"id\" must be a 64-bit signed integer"), -1;
    } else if (s_is(k, "session")) {
      const char *p;
      uint32_t n;
      if (s_bytes(v, &p, &n) || n == 0 || n > PW_MAX_NAME)
        return fc_set_err(err, errsz, "field \"session\" must be a string of 1 to %d bytes", PW_MAX_NAME), -1;
      memcpy(rq->session, p, n);
      rq->session[n] = 0;
      if (strlen(rq->session) != n) return fc_set_err(err, errsz, "field \"session\" contains a zero byte"), -1;
    } else if (s_is(k, "seed")) {
      if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return fc_set_err(err, errsz, "field \"seed\" must be a non-negative integer"), -1;
      rq->has_seed = 1, rq->seed = v->via.u64;
    } else if (s_is(k, "rtc_delay") || s_is(k, "rtc_index")) {
      const int delay = s_is(k, "rtc_delay");
      if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > 1024)
        return fc_set_err(err, errsz, "field \"%s\" must be an integer in 0..1024", delay ? "rtc_delay" : "rtc_index"), -1;
      rq->has_rtc |= delay ? 1 : 2;
      if (delay) rq->rtc_delay = (int)v->via.u64;
      else rq->rtc_index = (int)v->via.u64;
    } else if (s_is(k, "horizon")) {
      if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 < 1 || v->via.u64 > 1024)
        return fc_set_err(err, errsz, "field \"horizon\" must be an integer in 1..1024"), -1;
      rq->horizon = (int)v->via.u64;
    } else if (s_is(k, "dtype")) {
      if (s_is(v, "<f4")) rq->action_itemsize = 4;
      else if (s_is(v, "<f8")) rq->action_itemsize = 8;
      else return fc_set_err(err, errsz, "field \"dtype\" (of the actions) must be \"<f4\" or \"<f8\""), -1;
    } else {
      char kn[PW_MAX_NAME + 1];
      s_copy_name(k, kn, sizeof(kn));
      return fc_set_err(err, errsz, "unknown field '%s' (a request has endpoint, obs, session, seed, dtype, id, rtc_delay, "
                                          "rtc_index, horizon)", kn), -1;
    }
  }
  if (!ep) return fc_set_err(err, errsz, "field \"endpoint\" is missing (info, infer, observe, reset or ping)"), -1;
  int e = -1;
  for (int i = 0; i < PW_NENDPOINTS; i++)
    if (s_is(ep, s_endpoints[i])) e = i;
  if (e < 0) {
    char en[PW_MAX_NAME + 1];
    s_copy_name(ep, en, sizeof(en));
    return fc_set_err(err, errsz, "unknown endpoint '%s' (expected info, infer, observe, reset or ping)", en), -1;
  }
  rq->endpoint = (pw_endpoint)e;
  if (rq->has_rtc && rq->endpoint != PW_INFER)
    return fc_set_err(err, errsz, "fields \"rtc_delay\" and \"rtc_index\" belong to endpoint infer"), -1;
  if (rq->horizon && rq->endpoint != PW_INFER)
    return fc_set_err(err, errsz, "field \"horizon\" belongs to endpoint infer"), -1;
  if (rq->has_rtc && rq->has_rtc != 3)
    return fc_set_err(err, errsz, "real-time chunking needs both \"rtc_delay\" and \"rtc_index\""), -1;
  if (rq->endpoint == PW_INFER || rq->endpoint == PW_OBSERVE) {
    if (!obs) return fc_set_err(err, errsz, "endpoint %s needs field \"obs\" (a map from observation key to array)", s_endpoints[e]), -1;
    if (obs->type != MSGPACK_OBJECT_MAP) return fc_set_err(err, errsz, "field \"obs\" is %s, not a map", s_type_name(obs)), -1;
    if (obs->via.map.size > PW_MAX_OBS)
      return fc_set_err(err, errsz, "field \"obs\" has %u keys; the node takes at most %d", obs->via.map.size, PW_MAX_OBS), -1;
    for (uint32_t i = 0; i < obs->via.map.size; i++) {
      const msgpack_object *k = &obs->via.map.ptr[i].key;
      const char *p;
      uint32_t n;
      if (k->type != MSGPACK_OBJECT_STR && k->type != MSGPACK_OBJECT_BIN)
        return fc_set_err(err, errsz, "observation key %u is %s, not a string", i, s_type_name(k)), -1;
      s_bytes(k, &p, &n);
      if (n == 0 || n > PW_MAX_NAME) return fc_set_err(err, errsz, "observation key %u has %u bytes (1 to %d allowed)", i, n, PW_MAX_NAME), -1;
      pw_array *a = &rq->obs[rq->nobs++];
      s_copy_name(k, a->name, sizeof(a->name));
      char what[PW_MAX_NAME + 32];
      snprintf(what, sizeof(what), "observation '%s'", a->name);
      if (s_parse_array(&obs->via.map.ptr[i].val, a, what, err, errsz)) return -1;
    }
  } else if (obs) {
    return fc_set_err(err, errsz, "endpoint %s takes no \"obs\"", s_endpoints[e]), -1;
  }
  return 0;
}

void pw_request_free(pw_request *rq) { msgpack_unpacked_destroy(&rq->up); }

int pw_read_array(const msgpack_object *o, double *out, size_t cap, int *rank, uint32_t *shape, char *err, size_t errsz) {
  pw_array a;
  if (s_parse_array(o, &a, "array", err, errsz)) return -1;
  if (a.count > cap) return fc_set_err(err, errsz, "array has %zu values, more than the %zu expected", a.count, cap), -1;
  for (size_t i = 0; i < a.count; i++) out[i] = pw_array_get(&a, i);
  *rank = a.rank;
  for (int d = 0; d < a.rank; d++) shape[d] = a.shape[d];
  return (int)a.count;
}

/* ---- encoding ---- */

void pw_pack_str(msgpack_packer *pk, const char *s) {
  const size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static void s_pack_bin(msgpack_packer *pk, const char *s) {
  const size_t n = strlen(s);
  msgpack_pack_bin(pk, n);
  msgpack_pack_bin_body(pk, s, n);
}

void pw_pack_ndarray(msgpack_packer *pk, const double *v, int rank, const uint32_t *shape, int itemsize) {
  FC_ASSERT(rank >= 1 && rank <= PW_MAX_RANK && (itemsize == 4 || itemsize == 8));
  size_t count = 1;
  for (int d = 0; d < rank; d++) count *= shape[d];
  msgpack_pack_map(pk, 4);
  s_pack_bin(pk, "__ndarray__");
  msgpack_pack_true(pk);
  s_pack_bin(pk, "data");
  msgpack_pack_bin(pk, count * (size_t)itemsize);
  uint8_t le[8];
  for (size_t i = 0; i < count; i++) {
    uint64_t bits;
    if (itemsize == 4) {
      float f = (float)v[i];
      uint32_t u;
      memcpy(&u, &f, 4);
      bits = u;
    } else {
      memcpy(&bits, &v[i], 8);
    }
    for (int b = 0; b < itemsize; b++) le[b] = (uint8_t)(bits >> (8 * b));
    msgpack_pack_bin_body(pk, le, (size_t)itemsize);
  }
  s_pack_bin(pk, "dtype");
  pw_pack_str(pk, itemsize == 4 ? "<f4" : "<f8"); /* openpi writes the dtype value as str */
  s_pack_bin(pk, "shape");
  msgpack_pack_array(pk, (size_t)rank);
  for (int d = 0; d < rank; d++) msgpack_pack_uint32(pk, shape[d]);
}

void pw_pack_doubles(msgpack_packer *pk, const double *v, int n) {
  msgpack_pack_array(pk, (size_t)n);
  for (int i = 0; i < n; i++) msgpack_pack_double(pk, v[i]);
}
