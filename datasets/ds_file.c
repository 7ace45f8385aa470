/* ds_file: Robomimic-style HDF5 reader on the HDF5 C API. Structure and
 * metadata are read and checked at open; ds_load reads the chosen obs keys
 * and actions, ds_read_record everything of one demo. The file is untrusted:
 * every extent, rank, dtype and attribute goes through the checks below
 * (s_link, s_numeric_open, s_stored_ok, s_attr_int, s_attr_str, s_read_mask)
 * against the bounds of ds_file.h before a byte is allocated for it. HDF5's
 * error printing is off inside each public call (ds_h5.h): every failure
 * becomes one sentence in the caller's err buffer. */
#include "ds_file.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds_h5.h"
#include "fc_base.h"

struct ds_file {
  hid_t fid;
  uint64_t filesize; /* bytes of the file: no dataset stores more */
  ds_info info;
  /* during ds_open only: the file's bytes and its global heaps' objects */
  const unsigned char *bytes;
  size_t nbytes;
  void *heap; /* s_heap */
};

static char *s_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = fc_malloc(n);
  memcpy(p, s, n);
  return p;
}

/* ---------- small HDF5 helpers ---------- */

static herr_t s_find_truncated(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  if (e->desc && strstr(e->desc, "truncated")) *(int *)data = 1;
  return 0;
}

/* "float64", "int64", "uint8", "string", "compound", ... */
static void s_dtype_name(hid_t t, char *out, size_t n) {
  static const char *const names[] = {"integer", "float", "time", "string", "bitfield", "opaque",
                                      "compound", "reference", "enum", "variable-length", "array"};
  H5T_class_t c = H5Tget_class(t);
  size_t sz = H5Tget_size(t);
  if (c == H5T_FLOAT) snprintf(out, n, "float%zu", 8 * sz);
  else if (c == H5T_INTEGER) snprintf(out, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", 8 * sz);
  else if (c >= 0 && c < (int)(sizeof(names) / sizeof(names[0]))) snprintf(out, n, "%s", names[c]);
  else snprintf(out, n, "unknown type");
}

/* integers and floats HDF5 converts to double (at most 16 bytes wide) */
static int s_is_numeric(hid_t t) {
  H5T_class_t c = H5Tget_class(t);
  size_t sz = H5Tget_size(t);
  return (c == H5T_FLOAT || c == H5T_INTEGER) && sz >= 1 && sz <= 16;
}

/* what a name in a group refers to; links are followed only inside the file */
enum { S_NONE, S_GROUP, S_DATASET, S_OTHER, S_DANGLING, S_EXTERNAL };

static int s_link(hid_t loc, const char *name) {
  if (loc < 0 || H5Lexists(loc, name, H5P_DEFAULT) <= 0) return S_NONE;
  H5L_info_t li;
  if (H5Lget_info(loc, name, &li, H5P_DEFAULT) < 0) return S_DANGLING;
  if (li.type != H5L_TYPE_HARD && li.type != H5L_TYPE_SOFT) return S_EXTERNAL;
  H5O_info_t oi;
  if (H5Oget_info_by_name2(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return S_DANGLING;
  return oi.type == H5O_TYPE_GROUP ? S_GROUP : oi.type == H5O_TYPE_DATASET ? S_DATASET : S_OTHER;
}

/* the sentence's end for a name that is not the expected kind of object */
static const char *s_link_says(int kind, int want_group) {
  switch (kind) {
  case S_NONE: return "is missing";
  case S_DANGLING: return "is a link to a missing object";
  case S_EXTERNAL: return "is a link to another file (lfp reads only what is stored in the file)";
  case S_GROUP: return want_group ? "is a group" : "is a group, not a dataset";
  case S_DATASET: return want_group ? "is a dataset, not a group" : "is a dataset";
  default: return want_group ? "is neither a group nor a dataset" : "is not a dataset";
  }
}

/* rank and extent of a dataset (dims holds H5S_MAX_RANK entries); -1 on error */
static int s_space(hid_t ds, hsize_t *dims) {
  hid_t sp = H5Dget_space(ds);
  if (sp < 0) return -1;
  int r = H5Sget_simple_extent_ndims(sp);
  if (r < 0 || r > H5S_MAX_RANK || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) r = -1;
  H5Sclose(sp);
  return r;
}

static void s_shape_str(const hsize_t *dims, int rank, char *out, size_t n) {
  size_t o = (size_t)snprintf(out, n, "(");
  for (int i = 0; i < rank && o < n; i++)
    o += (size_t)snprintf(out + o, n - o, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
  if (o < n) snprintf(out + o, n - o, rank == 1 ? ",)" : ")");
}

/* Does dataset ds (where = "demo_0/actions") keep its `need` bytes in the
 * file? Refuses external raw storage, virtual layouts, filters other than
 * deflate/shuffle/fletcher32, chunks over DS_MAX_CHUNK, storage larger than
 * the file, and values not backed by stored bytes (chunks never written). */
static int s_stored_ok(const ds_file *f, hid_t ds, const char *where, uint64_t need, uint64_t *stored, char *err,
                       size_t errsz) {
  const char *path = f->info.path;
  hid_t dcpl = H5Dget_create_plist(ds);
  if (dcpl < 0) return fc_set_err(err, errsz, "%s: %s cannot be read (damaged)", path, where), -1;
  int rc = 0, filtered = 0;
  H5D_layout_t lay = H5Pget_layout(dcpl);
  if (lay == H5D_VIRTUAL) {
    fc_set_err(err, errsz, "%s: %s is a virtual dataset (its values live in other files; lfp reads only what is stored in the file)", path, where);
    rc = -1;
  } else if (H5Pget_external_count(dcpl) != 0) {
    fc_set_err(err, errsz, "%s: %s keeps its values in external files (lfp reads only what is stored in the file)", path, where);
    rc = -1;
  } else if (lay != H5D_CONTIGUOUS && lay != H5D_CHUNKED && lay != H5D_COMPACT) {
    fc_set_err(err, errsz, "%s: %s has an unknown storage layout (damaged)", path, where);
    rc = -1;
  }
  const int nf = rc ? 0 : H5Pget_nfilters(dcpl);
  for (int i = 0; i < nf && !rc; i++) {
    unsigned flags, cd[8];
    size_t ncd = 8;
    char fname[64] = "";
    H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof(fname), fname, NULL);
    if (id == H5Z_FILTER_DEFLATE) filtered = 1;
    else if (id != H5Z_FILTER_SHUFFLE && id != H5Z_FILTER_FLETCHER32) {
      fc_set_err(err, errsz, "%s: %s is stored with HDF5 filter %d, which lfp does not read (deflate, shuffle and fletcher32 only)", path, where, (int)id);
      rc = -1;
    }
  }
  if (!rc && lay == H5D_CHUNKED) {
    hsize_t cdims[H5S_MAX_RANK];
    hid_t t = H5Dget_type(ds);
    uint64_t bytes = t < 0 ? 0 : H5Tget_size(t);
    if (t >= 0) H5Tclose(t);
    int cr = H5Pget_chunk(dcpl, H5S_MAX_RANK, cdims);
    for (int i = 0; i < cr && bytes; i++)
      bytes = cdims[i] && bytes <= (uint64_t)DS_MAX_CHUNK / cdims[i] ? bytes * cdims[i] : (uint64_t)DS_MAX_CHUNK + 1;
    if (cr < 0 || bytes > (uint64_t)DS_MAX_CHUNK) {
      fc_set_err(err, errsz, "%s: %s has chunks of more than %lld bytes (or damaged chunk dimensions)", path, where, (long long)DS_MAX_CHUNK);
      rc = -1;
    }
  }
  H5Pclose(dcpl);
  if (rc) return -1;
  const uint64_t have = H5Dget_storage_size(ds);
  if (have > f->filesize)
    return fc_set_err(err, errsz, "%s: %s claims %llu stored bytes, more than the file's %llu (damaged)", path, where,
                      (unsigned long long)have, (unsigned long long)f->filesize), -1;
  if (need > have * (uint64_t)(filtered ? DS_MAX_RATIO : 1))
    return fc_set_err(err, errsz, "%s: %s declares %llu bytes of values but stores %llu (never written, or damaged)", path,
                      where, (unsigned long long)need, (unsigned long long)have), -1;
  if (stored) *stored = have;
  return 0;
}

/* Open dataset `name` of g (where = "demo_0/obs/object") as numbers whose
 * first axis is time: k gets the per-step shape, *rows the steps, *stored the
 * bytes it keeps in the file. Every bound of ds_file.h is checked; the open
 * dataset is returned (read it whole: its extent is what was checked), or -1
 * with a sentence. */
static hid_t s_numeric_open(const ds_file *f, hid_t g, const char *name, const char *where, ds_key *k, int64_t *rows,
                            uint64_t *stored, char *err, size_t errsz) {
  const char *path = f->info.path;
  memset(k, 0, sizeof(*k));
  snprintf(k->name, sizeof(k->name), "%s", name);
  int kind = s_link(g, name);
  if (kind != S_DATASET) return fc_set_err(err, errsz, "%s: %s %s", path, where, s_link_says(kind, 0)), -1;
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return fc_set_err(err, errsz, "%s: %s cannot be opened (damaged)", path, where), -1;
  hid_t t = H5Dget_type(ds);
  int numeric = t >= 0 && s_is_numeric(t);
  size_t esz = t >= 0 ? H5Tget_size(t) : 0;
  if (t >= 0) s_dtype_name(t, k->dtype, sizeof(k->dtype));
  if (t >= 0) H5Tclose(t);
  hsize_t dims[H5S_MAX_RANK];
  int rank = numeric ? s_space(ds, dims) : 0;
  char shape[160];
  if (rank > 0) s_shape_str(dims, rank, shape, sizeof(shape));
  if (!numeric) {
    fc_set_err(err, errsz, "%s: %s holds %s values, not numbers", path, where, t < 0 ? "unreadable" : k->dtype);
  } else if (rank < 0) {
    fc_set_err(err, errsz, "%s: %s has an unreadable shape (damaged)", path, where);
  } else if (rank == 0) {
    fc_set_err(err, errsz, "%s: %s is a scalar; expected (steps, ...) values", path, where);
  } else if (rank > DS_MAX_RANK + 1) {
    fc_set_err(err, errsz, "%s: %s has rank %d, shape %s; lfp reads ranks 1 to %d", path, where, rank, shape, DS_MAX_RANK + 1);
    rank = -1;
  } else if (dims[0] > (hsize_t)DS_MAX_ROWS) {
    fc_set_err(err, errsz, "%s: %s has shape %s: %llu steps, more than lfp's bound of %lld", path, where, shape,
               (unsigned long long)dims[0], (long long)DS_MAX_ROWS);
    rank = -1;
  } else {
    uint64_t cols = 1;
    for (int i = 1; i < rank; i++) cols = dims[i] <= (hsize_t)DS_MAX_COLS ? cols * dims[i] : (uint64_t)DS_MAX_COLS + 1;
    if (cols > (uint64_t)DS_MAX_COLS) cols = (uint64_t)DS_MAX_COLS + 1; /* (the product stays below 2^42 * 2^20) */
    const uint64_t values = (uint64_t)dims[0] * cols;
    if (cols > (uint64_t)DS_MAX_COLS) {
      fc_set_err(err, errsz, "%s: %s has shape %s: more than lfp's bound of %d values per step", path, where, shape, DS_MAX_COLS);
      rank = -1;
    } else if (values > (uint64_t)DS_MAX_BYTES / sizeof(double)) {
      fc_set_err(err, errsz, "%s: %s has shape %s: more than lfp's bound of %lld values", path, where, shape,
                 (long long)(DS_MAX_BYTES / (int64_t)sizeof(double)));
      rank = -1;
    } else if (s_stored_ok(f, ds, where, values * esz, stored, err, errsz) == 0) {
      k->rank = rank - 1;
      k->dim = (int)cols;
      for (int i = 1; i < rank; i++) k->shape[i - 1] = (int64_t)dims[i];
      *rows = (int64_t)dims[0];
      return ds;
    } else {
      rank = -1;
    }
  }
  (void)rank;
  H5Dclose(ds);
  return -1;
}

/* read the whole checked dataset as (rows, dim) doubles; NULL with a sentence */
static double *s_read_all(const ds_file *f, hid_t ds, const char *where, int64_t rows, int dim, char *err, size_t errsz) {
  double *buf = fc_malloc((size_t)rows * (size_t)dim * sizeof(double) + 1);
  if (rows > 0 && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    free(buf);
    return fc_set_err(err, errsz, "%s: %s cannot be read (damaged data)", f->info.path, where), NULL;
  }
  return buf;
}

/* an attribute holding one value, its type and space open; 0 absent, 1 open, -1 not one value */
static int s_attr_open(hid_t obj, const char *name, hid_t *a, hid_t *ft) {
  if (H5Aexists(obj, name) <= 0) return 0;
  *a = H5Aopen(obj, name, H5P_DEFAULT);
  if (*a < 0) return -1;
  hid_t sp = H5Aget_space(*a);
  hssize_t np = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
  if (sp >= 0) H5Sclose(sp);
  *ft = H5Aget_type(*a);
  if (np != 1 || *ft < 0) {
    if (*ft >= 0) H5Tclose(*ft);
    H5Aclose(*a);
    return -1;
  }
  return 1;
}

/* A count attribute of obj (where = "demo_3" or "/data"): 0 absent, 1 read
 * into *v, -1 (with a sentence) when it is not one integer in [0, DS_MAX_ROWS]. */
static int s_attr_int(const ds_file *f, hid_t obj, const char *where, const char *name, int64_t *v, char *err,
                      size_t errsz) {
  hid_t a, ft;
  int rc = s_attr_open(obj, name, &a, &ft);
  if (rc == 0) return 0;
  if (rc > 0) {
    double x = -1;
    rc = s_is_numeric(ft) && H5Aread(a, H5T_NATIVE_DOUBLE, &x) >= 0 && x >= 0 && x <= (double)DS_MAX_ROWS && x == floor(x) ? 1 : -1;
    *v = rc > 0 ? (int64_t)x : 0;
    H5Tclose(ft);
    H5Aclose(a);
  }
  if (rc < 0) fc_set_err(err, errsz, "%s: %s attribute %s is not one integer from 0 to %lld", f->info.path, where, name,
                         (long long)DS_MAX_ROWS);
  return rc;
}

/* A string attribute of obj: 0 absent, 1 read (into *out unless out is NULL:
 * checked only), -1 (with a sentence) when it is not one string of at most
 * DS_MAX_STR bytes. */
static int s_attr_str(const ds_file *f, hid_t obj, const char *where, const char *name, char **out, char *err,
                      size_t errsz) {
  if (out) *out = NULL;
  hid_t a, ft;
  int rc = s_attr_open(obj, name, &a, &ft);
  if (rc == 0) return 0;
  const char *why = "is not one string";
  if (rc > 0) {
    rc = -1;
    if (H5Tget_class(ft) == H5T_STRING) {
      hid_t mt = H5Tcopy(H5T_C_S1);
      if (H5Tis_variable_str(ft) > 0) {
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char *s = NULL;
        if (H5Aread(a, mt, &s) >= 0) {
          if (s && strlen(s) > (size_t)DS_MAX_STR) why = "is longer than lfp's bound on strings,";
          else {
            if (out) *out = s_strdup(s ? s : "");
            rc = 1;
          }
          if (s) H5free_memory(s);
        }
      } else {
        const size_t sz = H5Tget_size(ft);
        if (sz == 0 || sz > (size_t)DS_MAX_STR) {
          why = "is longer than lfp's bound on strings,";
        } else if (!out) {
          rc = 1;
        } else {
          H5Tset_size(mt, sz);
          H5Tset_strpad(mt, H5T_STR_NULLPAD);
          char *buf = fc_calloc(sz + 1, 1);
          if (H5Aread(a, mt, buf) >= 0) *out = buf, rc = 1;
          else free(buf);
        }
      }
      H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
  }
  if (rc < 0 && why[strlen(why) - 1] == ',')
    fc_set_err(err, errsz, "%s: %s attribute %s %s %d bytes", f->info.path, where, name, why, DS_MAX_STR);
  else if (rc < 0)
    fc_set_err(err, errsz, "%s: %s attribute %s %s", f->info.path, where, name, why);
  return rc;
}

/* ---------- listing ---------- */

typedef struct {
  char (*names)[DS_NAME_MAX];
  int n, cap;
} s_names;

static herr_t s_collect(hid_t g, const char *name, const H5L_info_t *li, void *data) {
  (void)g;
  (void)li;
  s_names *l = data;
  if (strlen(name) >= DS_NAME_MAX) return 0;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 16;
    void *p = realloc(l->names, (size_t)l->cap * DS_NAME_MAX);
    FC_ASSERT(p);
    l->names = p;
  }
  snprintf(l->names[l->n++], DS_NAME_MAX, "%s", name);
  return 0;
}

static void s_list(hid_t g, s_names *out) {
  memset(out, 0, sizeof(*out));
  H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, s_collect, out);
}

/* "demo_<digits>" -> index; -1 otherwise */
static int64_t s_demo_index(const char *name) {
  if (strncmp(name, "demo_", 5) || !name[5]) return -1;
  int64_t v = 0;
  for (const char *p = name + 5; *p; p++) {
    if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10) return -1;
    v = 10 * v + (*p - '0');
  }
  return v;
}

static int s_demo_cmp(const void *a, const void *b) {
  int64_t x = ((const ds_demo *)a)->index, y = ((const ds_demo *)b)->index;
  return x < y ? -1 : x > y;
}

/* a little-endian unsigned integer of w bytes (w <= 8) */
static uint64_t s_le(const unsigned char *p, size_t w) {
  uint64_t v = 0;
  for (size_t i = 0; i < w; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* HDF5 1.10.8 trusts what it reads of a global heap collection, where
 * variable-length strings (env_args, model_file, h5py's str masks) live: a
 * collection whose sizes run past it makes H5Aread/H5Dread copy past it
 * (H5HG_read), ask for SIZE_MAX bytes (H5C_protect) or loop forever. HDF5
 * finds a collection by address and checks its "GCOL" signature and version
 * 1, so every collection it could read is among those found here by
 * signature; each must lie inside the file and hold objects that lie inside
 * it, walked as H5HG__cache_heap_deserialize walks them. The objects found
 * are kept (s_heap) to check the heap IDs of variable-length masks
 * (s_read_mask). HDF5 trusts heap IDs too (the object index is guarded by
 * an assert, the length is allocated before reading): those of attributes
 * are not visible through its API, see tests/fuzz_h5.c. */
typedef struct {
  uint64_t addr, idx, size; /* collection address, object index, bytes */
} s_hobj;

typedef struct {
  s_hobj *obj;
  size_t n, cap;
  size_t sa; /* bytes of an address */
} s_heap;

static int s_hobj_cmp(const void *a, const void *b) {
  const s_hobj *x = a, *y = b;
  if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* 0, or the offset + 1 of the first damaged collection; h gets the objects */
static size_t s_gheaps_check(const unsigned char *b, size_t n, size_t ss, s_heap *h) {
  const size_t hdr = 8 + ss, ohdr = 8 + ss; /* "GCOL", version, 3 reserved, size | idx, nrefs, 4 reserved, size */
  for (size_t a = 0; a + hdr <= n; a++) {
    const unsigned char *p = memchr(b + a, 'G', n - a);
    if (!p) break;
    a = (size_t)(p - b);
    if (a + hdr > n || memcmp(p, "GCOL", 4) || p[4] != 1) continue; /* HDF5 refuses those itself */
    const uint64_t size = s_le(p + 8, ss);
    if (size < 4096 || size > n - a) return a + 1;
    for (uint64_t q = hdr; q + ohdr <= size;) { /* a tail shorter than an object header is free space */
      const unsigned idx = (unsigned)s_le(p + q, 2);
      const uint64_t osz = s_le(p + q + 8, ss);
      const uint64_t need = idx ? ohdr + ((osz + 7) & ~(uint64_t)7) : osz;
      if (osz > size - q || need == 0 || need > size - q) return a + 1;
      if (idx) {
        if (h->n == h->cap) {
          h->cap = h->cap ? 2 * h->cap : 64;
          h->obj = realloc(h->obj, h->cap * sizeof(s_hobj));
          FC_ASSERT(h->obj);
        }
        h->obj[h->n++] = (s_hobj){a, idx, osz};
      }
      q += need;
    }
  }
  if (h->n) qsort(h->obj, h->n, sizeof(s_hobj), s_hobj_cmp);
  return 0;
}

/* Is the heap ID at p (4-byte length, address, 4-byte index) one HDF5 can
 * read safely: empty, or naming an object of exactly that length? */
static int s_heap_id_ok(const s_heap *h, const unsigned char *p) {
  const uint64_t len = s_le(p, 4);
  if (len == 0) return 1;
  const s_hobj key = {s_le(p + 4, h->sa), s_le(p + 4 + h->sa, 4), 0};
  const s_hobj *o = h->n ? bsearch(&key, h->obj, h->n, sizeof(s_hobj), s_hobj_cmp) : NULL;
  return o && o->size == len;
}

/* read a mask (a 1-D array of demo names) of group mg */
static int s_read_mask(const ds_file *f, hid_t mg, const char *name, ds_mask *m, char *err, size_t errsz) {
  const char *path = f->info.path;
  memset(m, 0, sizeof(*m));
  snprintf(m->name, sizeof(m->name), "%s", name);
  char where[2 * DS_NAME_MAX];
  snprintf(where, sizeof(where), "mask/%s", name);
  hid_t ds = H5Dopen2(mg, name, H5P_DEFAULT);
  if (ds < 0) return fc_set_err(err, errsz, "%s: %s cannot be read (damaged)", path, where), -1;
  hid_t ft = H5Dget_type(ds);
  hsize_t dims[H5S_MAX_RANK];
  int rank = s_space(ds, dims), rc = -1;
  const size_t sz = ft < 0 ? 0 : H5Tget_size(ft);
  const int vlen = ft >= 0 && H5Tis_variable_str(ft) > 0;
  if (ft < 0 || H5Tget_class(ft) != H5T_STRING || rank < 0 || rank > 1) {
    fc_set_err(err, errsz, "%s: %s is not a 1-D array of demo names", path, where);
    goto out;
  }
  const uint64_t n = rank == 0 ? 1 : dims[0];
  if (n > (uint64_t)DS_MAX_DEMOS) {
    fc_set_err(err, errsz, "%s: %s names %llu demos, more than lfp's bound of %d", path, where, (unsigned long long)n,
               DS_MAX_DEMOS);
    goto out;
  }
  if (!vlen && (sz == 0 || sz > (size_t)DS_MAX_STR)) {
    fc_set_err(err, errsz, "%s: %s holds strings of %zu bytes, more than lfp's bound of %d", path, where, sz, DS_MAX_STR);
    goto out;
  }
  if (s_stored_ok(f, ds, where, n * sz, NULL, err, errsz)) goto out;
  if (vlen) { /* the heap IDs, stored contiguously, checked before HDF5 follows them */
    const s_heap *h = f->heap;
    const haddr_t at = H5Dget_offset(ds);
    const size_t w = 8 + (h ? h->sa : 8);
    if (!h || at == HADDR_UNDEF || at > f->nbytes || n > (f->nbytes - at) / w) {
      fc_set_err(err, errsz, "%s: %s holds variable-length strings that are not stored contiguously, which lfp does not read (store them contiguous or fixed-width)", path, where);
      goto out;
    }
    for (uint64_t i = 0; i < n; i++)
      if (!s_heap_id_ok(h, f->bytes + at + i * w)) {
        fc_set_err(err, errsz, "%s is damaged: %s entry %llu refers to a string its global heap does not hold", path, where,
                   (unsigned long long)i);
        goto out;
      }
  }
  m->count = (int)n;
  m->demos = fc_calloc(n ? n : 1, DS_NAME_MAX);
  hid_t mt = H5Tcopy(H5T_C_S1);
  const char *bad = NULL; /* a name too long for a demo */
  if (vlen) {
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft));
    char **buf = fc_calloc(n ? n : 1, sizeof(char *));
    if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
      for (size_t i = 0; i < n; i++) {
        const char *s = buf[i] ? buf[i] : "";
        if (strlen(s) >= DS_NAME_MAX) bad = "a name longer than";
        snprintf(m->demos[i], DS_NAME_MAX, "%s", s);
      }
      hid_t sp = H5Dget_space(ds);
      H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
      H5Sclose(sp);
      rc = 0;
    }
    free(buf);
  } else {
    H5Tset_size(mt, sz);
    H5Tset_strpad(mt, H5T_STR_NULLPAD);
    char *buf = fc_calloc(n * sz + 1, 1);
    if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
      for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(buf + i * sz, sz);
        if (len >= DS_NAME_MAX) bad = "a name longer than", len = DS_NAME_MAX - 1;
        memcpy(m->demos[i], buf + i * sz, len);
        m->demos[i][len] = 0;
      }
      rc = 0;
    }
    free(buf);
  }
  H5Tclose(mt);
  if (rc) fc_set_err(err, errsz, "%s: %s cannot be read (damaged)", path, where);
  else if (bad) {
    fc_set_err(err, errsz, "%s: %s holds %s %d bytes (demo names are shorter)", path, where, bad, DS_NAME_MAX - 1);
    rc = -1;
  }
out:
  if (ft >= 0) H5Tclose(ft);
  H5Dclose(ds);
  return rc;
}

static void s_masks_free(ds_mask *m, int n) {
  for (int i = 0; i < n; i++) free(m[i].demos);
  free(m);
}

static void s_info_free(ds_info *in) {
  free(in->path);
  free(in->demos);
  free(in->obs);
  free(in->env_args);
  s_masks_free(in->masks, in->nmasks);
  memset(in, 0, sizeof(*in));
}

/* A dataset of demo group dg that must have `steps` rows (where = "demo_1/states"):
 * the key into *k, 0 when absent, -1 with a sentence when wrong. cols: the
 * values per step it must have (0: any), rank2: it must be (steps, d). */
static int s_demo_field(const ds_file *f, hid_t dg, const char *name, const char *where, int64_t steps, int cols,
                        int rank2, ds_key *k, char *err, size_t errsz) {
  if (s_link(dg, name) == S_NONE) return 0;
  int64_t n = 0;
  hid_t ds = s_numeric_open(f, dg, name, where, k, &n, NULL, err, errsz);
  if (ds < 0) return -1;
  H5Dclose(ds);
  const char *path = f->info.path;
  if (n != steps)
    return fc_set_err(err, errsz, "%s: %s has %lld steps but actions has %lld", path, where, (long long)n, (long long)steps), -1;
  if (rank2 && k->rank != 1) {
    char shape[160];
    size_t o = (size_t)snprintf(shape, sizeof(shape), "(%lld", (long long)n);
    for (int i = 0; i < k->rank && o < sizeof(shape); i++) o += (size_t)snprintf(shape + o, sizeof(shape) - o, ", %lld", (long long)k->shape[i]);
    if (o < sizeof(shape)) snprintf(shape + o, sizeof(shape) - o, k->rank ? ")" : ",)");
    return fc_set_err(err, errsz, "%s: %s has shape %s; expected (steps, values)", path, where, shape), -1;
  }
  if (cols && (k->dim != cols || k->rank > 1))
    return fc_set_err(err, errsz, "%s: %s has %d values per step; expected %d", path, where, k->dim, cols), -1;
  return 1;
}

/* ---------- open ---------- */

static ds_file *s_open_fid(hid_t fid, const char *path, const unsigned char *bytes, size_t nbytes, char *err,
                           size_t errsz) {
  ds_file *f = fc_calloc(1, sizeof(*f));
  f->fid = fid;
  hsize_t fsz = 0;
  f->filesize = H5Fget_filesize(fid, &fsz) >= 0 ? (uint64_t)fsz : 0;
  ds_info *in = &f->info;
  in->path = s_strdup(path);
  in->total_attr = -1;
  char msg[512] = "", where[3 * DS_NAME_MAX + 16];
  hid_t data = -1, dg = -1, og = -1;
  s_names names = {0}, keys = {0};
  int kind = S_NONE;
  s_heap heap = {0};

  /* the global heaps, before HDF5 reads a variable-length string from one */
  size_t ssize = 0, saddr = 0;
  hid_t fcpl = H5Fget_create_plist(fid);
  if (fcpl < 0 || H5Pget_sizes(fcpl, &saddr, &ssize) < 0 || (ssize != 2 && ssize != 4 && ssize != 8)) {
    snprintf(msg, sizeof(msg), "%s: its superblock gives %zu-byte lengths (lfp reads 2, 4 or 8)", path, ssize);
    if (fcpl >= 0) H5Pclose(fcpl);
    goto fail;
  }
  H5Pclose(fcpl);
  if (saddr != 2 && saddr != 4 && saddr != 8) {
    snprintf(msg, sizeof(msg), "%s: its superblock gives %zu-byte addresses (lfp reads 2, 4 or 8)", path, saddr);
    goto fail;
  }
  heap.sa = saddr;
  f->bytes = bytes;
  f->nbytes = nbytes;
  f->heap = &heap;
  const size_t bad_heap = s_gheaps_check(bytes, nbytes, ssize, &heap);
  if (bad_heap) {
    snprintf(msg, sizeof(msg), "%s is damaged: its global heap at byte %zu (where variable-length strings live) holds sizes that do not fit it",
             path, bad_heap - 1);
    goto fail;
  }
  kind = s_link(fid, "data");

  if (kind != S_GROUP) {
    if (kind == S_NONE) snprintf(msg, sizeof(msg), "%s has no /data group (not a Robomimic-style demonstration file)", path);
    else snprintf(msg, sizeof(msg), "%s: /data %s", path, s_link_says(kind, 1));
    goto fail;
  }
  data = H5Gopen2(fid, "data", H5P_DEFAULT);
  int64_t tot;
  int has = s_attr_int(f, data, "/data", "total", &tot, msg, sizeof(msg));
  if (has < 0) goto fail;
  if (has) in->total_attr = tot;
  if (s_attr_str(f, data, "/data", "env_args", &in->env_args, msg, sizeof(msg)) < 0) goto fail;

  /* demos, in integer order */
  s_list(data, &names);
  in->demos = fc_calloc((size_t)(names.n ? names.n : 1), sizeof(ds_demo));
  for (int i = 0; i < names.n; i++) {
    int64_t idx = s_demo_index(names.names[i]);
    if (idx < 0) continue;
    if ((kind = s_link(data, names.names[i])) != S_GROUP) {
      snprintf(msg, sizeof(msg), "%s: data/%s %s", path, names.names[i], s_link_says(kind, 1));
      goto fail;
    }
    ds_demo *d = &in->demos[in->ndemos++];
    snprintf(d->name, sizeof(d->name), "%s", names.names[i]);
    d->index = idx;
  }
  if (in->ndemos == 0) {
    snprintf(msg, sizeof(msg), "%s: /data holds no demo_<k> groups", path);
    goto fail;
  }
  if (in->ndemos > DS_MAX_DEMOS) {
    snprintf(msg, sizeof(msg), "%s: /data holds %d demos, more than lfp's bound of %d", path, in->ndemos, DS_MAX_DEMOS);
    goto fail;
  }
  qsort(in->demos, (size_t)in->ndemos, sizeof(ds_demo), s_demo_cmp);
  for (int i = 1; i < in->ndemos; i++)
    if (in->demos[i].index == in->demos[i - 1].index) {
      snprintf(msg, sizeof(msg), "%s: %s and %s have the same demo number", path, in->demos[i - 1].name, in->demos[i].name);
      goto fail;
    }

  /* each demo: actions (N, A) with N > 0; obs, next_obs, states, rewards,
   * dones N steps long; attributes of the right types */
  for (int i = 0; i < in->ndemos; i++) {
    ds_demo *d = &in->demos[i];
    dg = H5Gopen2(data, d->name, H5P_DEFAULT);
    if (dg < 0) {
      snprintf(msg, sizeof(msg), "%s: %s cannot be opened (damaged)", path, d->name);
      goto fail;
    }
    if ((kind = s_link(dg, "actions")) == S_NONE) {
      snprintf(msg, sizeof(msg), "%s: %s has no actions dataset", path, d->name);
      goto fail;
    }
    ds_key ak;
    int64_t n = 0;
    snprintf(where, sizeof(where), "%s/actions", d->name);
    hid_t ads = s_numeric_open(f, dg, "actions", where, &ak, &n, NULL, msg, sizeof(msg));
    if (ads < 0) goto fail;
    if (ak.rank != 1) {
      hsize_t dims[H5S_MAX_RANK];
      int rank = s_space(ads, dims);
      char shape[160];
      s_shape_str(dims, rank, shape, sizeof(shape));
      snprintf(msg, sizeof(msg), "%s: %s/actions has rank %d, shape %s; expected rank 2, (steps, action dim)", path,
               d->name, rank, shape);
      H5Dclose(ads);
      goto fail;
    }
    H5Dclose(ads);
    d->len = n;
    if (n == 0) {
      snprintf(msg, sizeof(msg), "%s: %s is empty (0 samples)", path, d->name);
      goto fail;
    }
    if (ak.dim == 0) {
      snprintf(msg, sizeof(msg), "%s: %s/actions has 0 columns", path, d->name);
      goto fail;
    }
    if (i == 0) {
      in->action_dim = ak.dim;
      snprintf(in->action_dtype, sizeof(in->action_dtype), "%s", ak.dtype);
    } else if (ak.dim != in->action_dim) {
      snprintf(msg, sizeof(msg), "%s: %s/actions has %d columns but %s has %d", path, d->name, ak.dim,
               in->demos[0].name, in->action_dim);
      goto fail;
    }
    if (in->total > DS_MAX_ROWS - d->len) {
      snprintf(msg, sizeof(msg), "%s: the demos up to %s hold more than lfp's bound of %lld steps", path, d->name,
               (long long)DS_MAX_ROWS);
      goto fail;
    }
    int64_t ns;
    has = s_attr_int(f, dg, d->name, "num_samples", &ns, msg, sizeof(msg));
    if (has < 0) goto fail;
    if (has && ns != d->len) {
      snprintf(msg, sizeof(msg), "%s: %s says num_samples = %lld but actions has %lld steps", path, d->name,
               (long long)ns, (long long)d->len);
      goto fail;
    }
    if (s_attr_str(f, dg, d->name, "model_file", NULL, msg, sizeof(msg)) < 0) goto fail;
    ds_key sk;
    snprintf(where, sizeof(where), "%s/states", d->name);
    if ((has = s_demo_field(f, dg, "states", where, n, i ? in->state_dim : 0, 1, &sk, msg, sizeof(msg))) < 0) goto fail;
    if (i == 0 && has) in->state_dim = sk.dim;
    if (i > 0 && has && !in->state_dim) {
      snprintf(msg, sizeof(msg), "%s: %s has states but %s has none", path, d->name, in->demos[0].name);
      goto fail;
    }
    for (int r = 0; r < 2; r++) {
      const char *field = r ? "dones" : "rewards";
      snprintf(where, sizeof(where), "%s/%s", d->name, field);
      if (s_demo_field(f, dg, field, where, n, 1, 0, &sk, msg, sizeof(msg)) < 0) goto fail;
    }
    for (int pass = 0; pass < 2; pass++) {
      const char *grp = pass ? "next_obs" : "obs";
      if ((kind = s_link(dg, grp)) == S_NONE) continue;
      if (kind != S_GROUP) {
        snprintf(msg, sizeof(msg), "%s: %s/%s %s", path, d->name, grp, s_link_says(kind, 1));
        goto fail;
      }
      og = H5Gopen2(dg, grp, H5P_DEFAULT);
      s_list(og, &keys);
      for (int k = 0; k < keys.n; k++) {
        ds_key key;
        int64_t kn = 0;
        if ((kind = s_link(og, keys.names[k])) == S_GROUP || kind == S_OTHER) continue; /* not an obs key */
        snprintf(where, sizeof(where), "%s/%s/%s", d->name, grp, keys.names[k]);
        hid_t kds = s_numeric_open(f, og, keys.names[k], where, &key, &kn, NULL, msg, sizeof(msg));
        if (kds < 0) goto fail;
        H5Dclose(kds);
        if (kn != n) {
          snprintf(msg, sizeof(msg), "%s: %s has %lld steps but actions has %lld", path, where, (long long)kn, (long long)n);
          goto fail;
        }
        if (i == 0 && pass == 0) { /* the first demo's keys describe the file */
          in->obs = realloc(in->obs, (size_t)(in->nobs + 1) * sizeof(ds_key));
          FC_ASSERT(in->obs);
          in->obs[in->nobs++] = key;
        }
      }
      if (i == 0 && pass == 1) in->has_next_obs = keys.n > 0;
      free(keys.names);
      keys.names = NULL;
      H5Gclose(og);
      og = -1;
    }
    in->total += d->len;
    H5Gclose(dg);
    dg = -1;
  }

  /* masks */
  if ((kind = s_link(fid, "mask")) == S_GROUP) {
    og = H5Gopen2(fid, "mask", H5P_DEFAULT);
    s_list(og, &keys);
    in->masks = fc_calloc((size_t)(keys.n ? keys.n : 1), sizeof(ds_mask));
    for (int i = 0; i < keys.n; i++) {
      if ((kind = s_link(og, keys.names[i])) == S_GROUP || kind == S_OTHER) continue; /* not a mask */
      if (kind != S_DATASET) {
        snprintf(msg, sizeof(msg), "%s: mask/%s %s", path, keys.names[i], s_link_says(kind, 0));
        goto fail;
      }
      if (s_read_mask(f, og, keys.names[i], &in->masks[in->nmasks], msg, sizeof(msg))) {
        free(in->masks[in->nmasks].demos);
        goto fail;
      }
      in->nmasks++;
    }
    free(keys.names);
    keys.names = NULL;
    H5Gclose(og);
    og = -1;
  } else if (kind != S_NONE) {
    snprintf(msg, sizeof(msg), "%s: /mask %s", path, s_link_says(kind, 1));
    goto fail;
  }
  free(names.names);
  H5Gclose(data);
  free(heap.obj);
  f->bytes = NULL, f->heap = NULL;
  return f;

fail:
  fc_set_err(err, errsz, "%s", msg);
  free(heap.obj);
  free(names.names);
  free(keys.names);
  if (og >= 0) H5Gclose(og);
  if (dg >= 0) H5Gclose(dg);
  if (data >= 0) H5Gclose(data);
  ds_close(f);
  return NULL;
}

/* the sentence for a file HDF5 refuses to open */
static void s_open_failed(const char *path, char *err, size_t errsz) {
  int trunc = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, s_find_truncated, &trunc);
  if (trunc) fc_set_err(err, errsz, "%s is truncated: it is shorter than its HDF5 header says", path);
  else fc_set_err(err, errsz, "%s is damaged: HDF5 cannot open it", path);
}

ds_file *ds_open(const char *path, char *err, size_t errsz) {
  ds__quiet q = ds__quiet_begin();
  ds_file *f = NULL;
  struct stat st;
  if (stat(path, &st) != 0) fc_set_err(err, errsz, "cannot open %s: %s", path, strerror(errno));
  else if (!S_ISREG(st.st_mode)) fc_set_err(err, errsz, "%s is not a regular file", path);
  else if (H5Fis_hdf5(path) <= 0) fc_set_err(err, errsz, "%s is not an HDF5 file", path);
  else {
    /* the bytes, mapped, for the global-heap check */
    int fd = open(path, O_RDONLY);
    void *map = fd < 0 || st.st_size == 0 ? MAP_FAILED : mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (fd >= 0) close(fd);
    hid_t fid = map == MAP_FAILED ? -1 : H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (map == MAP_FAILED) fc_set_err(err, errsz, "cannot read %s: %s", path, strerror(errno));
    else if (fid < 0) s_open_failed(path, err, errsz);
    else f = s_open_fid(fid, path, map, (size_t)st.st_size, err, errsz);
    if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
  }
  ds__quiet_end(q);
  return f;
}

/* HDF5's signature at 0, 512, 1024, 2048, ... (where a superblock may start) */
static int s_has_signature(const unsigned char *b, size_t n) {
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  for (size_t off = 0; off + 8 <= n; off = off ? 2 * off : 512)
    if (!memcmp(b + off, sig, 8)) return 1;
  return 0;
}

ds_file *ds_open_image(const void *bytes, size_t n, const char *name, char *err, size_t errsz) {
  ds__quiet q = ds__quiet_begin();
  ds_file *f = NULL;
  if (!bytes || !s_has_signature(bytes, n)) {
    fc_set_err(err, errsz, "%s is not an HDF5 file", name);
  } else {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t fid = -1;
    /* the core driver without a backing store: the image is all there is */
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 64 * 1024, 0) >= 0 && H5Pset_file_image(fapl, (void *)bytes, n) >= 0)
      fid = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (fid < 0) s_open_failed(name, err, errsz);
    else f = s_open_fid(fid, name, bytes, n, err, errsz);
  }
  ds__quiet_end(q);
  return f;
}

void ds_close(ds_file *f) {
  if (!f) return;
  ds__quiet q = ds__quiet_begin();
  if (f->fid >= 0) H5Fclose(f->fid);
  ds__quiet_end(q);
  s_info_free(&f->info);
  free(f);
}

const ds_info *ds_file_info(const ds_file *f) { return &f->info; }

/* ---------- load ---------- */

int ds_mask_find(const ds_mask *masks, int nmasks, const char *name) {
  for (int i = 0; i < nmasks; i++)
    if (!strcmp(masks[i].name, name)) return i;
  return -1;
}

int ds_demo_find(const ds_demo *demos, int ndemos, const char *name) {
  for (int i = 0; i < ndemos; i++)
    if (!strcmp(demos[i].name, name)) return i;
  return -1;
}

int ds_split_csv(char *buf, const char **names, int max) {
  int n = 0;
  for (char *s = buf;;) {
    char *c = strchr(s, ',');
    if (c) *c = 0;
    if (!*s || n == max) return -1;
    names[n++] = s;
    if (!c) break;
    s = c + 1;
  }
  return n;
}

/* Read checked dataset `name` of g (where = "demo_0/obs/object"): it must
 * have N rows of dim values; cast to float32 into dst rows with stride
 * `stride` from column col, checking finiteness. *stored adds the bytes it
 * keeps in the file. */
static int s_read_block(const ds_file *f, hid_t g, const char *name, const char *where, int64_t N, int dim, float *dst,
                        int stride, int col, uint64_t *stored, char *err, size_t errsz) {
  const char *path = f->info.path;
  ds_key k;
  int64_t n = 0;
  uint64_t have = 0;
  hid_t ds = s_numeric_open(f, g, name, where, &k, &n, &have, err, errsz);
  if (ds < 0) return -1;
  if (n != N || k.dim != dim || k.rank > 1) {
    H5Dclose(ds);
    return fc_set_err(err, errsz, "%s: %s has %lld steps of %d values; expected %lld of %d", path, where, (long long)n,
                      k.dim, (long long)N, dim), -1;
  }
  *stored += have;
  if (*stored > f->filesize) {
    H5Dclose(ds);
    return fc_set_err(err, errsz, "%s: %s and the datasets read before it store %llu bytes in all, more than the file's %llu "
                      "(demos sharing their data through hard links?)", path, where, (unsigned long long)*stored,
                      (unsigned long long)f->filesize), -1;
  }
  double *buf = s_read_all(f, ds, where, N, dim, err, errsz);
  H5Dclose(ds);
  if (!buf) return -1;
  for (int64_t i = 0; i < N; i++)
    for (int j = 0; j < dim; j++) {
      double v = buf[(size_t)i * dim + j];
      if (!isfinite(v)) {
        fc_set_err(err, errsz, "%s: %s has a non-finite value (%g) at step %lld, column %d", path, where, v,
                   (long long)i, j);
        free(buf);
        return -1;
      }
      dst[(size_t)i * stride + col + j] = (float)v;
    }
  free(buf);
  return 0;
}

static ds_mask *s_masks_copy(const ds_mask *m, int n) {
  ds_mask *c = fc_calloc((size_t)(n ? n : 1), sizeof(ds_mask));
  for (int i = 0; i < n; i++) {
    c[i] = m[i];
    c[i].demos = fc_calloc((size_t)(m[i].count ? m[i].count : 1), DS_NAME_MAX);
    memcpy(c[i].demos, m[i].demos, (size_t)m[i].count * DS_NAME_MAX);
  }
  return c;
}

static ds_dataset *s_load(ds_file *f, const char *const *keys, int nkeys, char *err, size_t errsz) {
  const ds_info *in = &f->info;
  const char *path = in->path;
  if (nkeys < 0) return fc_set_err(err, errsz, "%s: negative number of observation keys", path), NULL;
  /* the keys must exist (in the first demo; the others are checked as read) */
  ds_dataset *d = fc_calloc(1, sizeof(*d));
  d->path = s_strdup(path);
  d->keys = fc_calloc((size_t)(nkeys ? nkeys : 1), sizeof(ds_key));
  d->nkeys = nkeys;
  int64_t obs_dim = 0;
  for (int k = 0; k < nkeys; k++) {
    int found = -1;
    for (int j = 0; j < in->nobs; j++)
      if (!strcmp(in->obs[j].name, keys[k])) found = j;
    for (int j = 0; j < k; j++)
      if (!strcmp(keys[j], keys[k])) {
        fc_set_err(err, errsz, "%s: observation key '%s' is requested twice", path, keys[k]);
        ds_dataset_free(d);
        return NULL;
      }
    if (found < 0) {
      char list[400] = "";
      for (int j = 0; j < in->nobs; j++) {
        if (j) strncat(list, ", ", sizeof(list) - strlen(list) - 1);
        strncat(list, in->obs[j].name, sizeof(list) - strlen(list) - 1);
      }
      fc_set_err(err, errsz, "%s: %s has no observation key '%s' (keys: %s)", path, in->demos[0].name, keys[k],
                 in->nobs ? list : "none");
      ds_dataset_free(d);
      return NULL;
    }
    if (in->obs[found].rank > 1) {
      fc_set_err(err, errsz, "%s: observation key '%s' has %d-D steps (an image?); lfp uses low-dim keys", path,
                 keys[k], in->obs[found].rank);
      ds_dataset_free(d);
      return NULL;
    }
    if (in->obs[found].dim == 0) {
      fc_set_err(err, errsz, "%s: observation key '%s' has 0 values per step", path, keys[k]);
      ds_dataset_free(d);
      return NULL;
    }
    d->keys[k] = in->obs[found];
    d->keys[k].col = (int)obs_dim;
    obs_dim += in->obs[found].dim;
    if (obs_dim > DS_MAX_COLS) {
      fc_set_err(err, errsz, "%s: the observation keys up to '%s' hold more than lfp's bound of %d values per step",
                 path, keys[k], DS_MAX_COLS);
      ds_dataset_free(d);
      return NULL;
    }
  }
  d->obs_dim = (int)obs_dim;
  /* the arrays: rows and columns were bounded at open and above */
  const int64_t wide = d->obs_dim > in->action_dim ? d->obs_dim : in->action_dim;
  if (in->total * wide > DS_MAX_BYTES / (int64_t)sizeof(float)) {
    fc_set_err(err, errsz, "%s: %lld steps of %lld values would take more than lfp's bound of %lld bytes", path,
               (long long)in->total, (long long)wide, (long long)DS_MAX_BYTES);
    ds_dataset_free(d);
    return NULL;
  }
  d->ndemos = in->ndemos;
  d->demos = fc_malloc((size_t)in->ndemos * sizeof(ds_demo));
  memcpy(d->demos, in->demos, (size_t)in->ndemos * sizeof(ds_demo));
  d->total = in->total;
  d->action_dim = in->action_dim;
  d->env_args = in->env_args ? s_strdup(in->env_args) : NULL;
  d->nmasks = in->nmasks;
  d->masks = s_masks_copy(in->masks, in->nmasks);
  d->obs = fc_malloc((size_t)d->total * (size_t)(d->obs_dim ? d->obs_dim : 1) * sizeof(float));
  d->actions = fc_malloc((size_t)d->total * (size_t)d->action_dim * sizeof(float));

  hid_t data = H5Gopen2(f->fid, "data", H5P_DEFAULT);
  int64_t row = 0;
  uint64_t stored = 0; /* bytes kept in the file by the datasets read so far */
  char where[3 * DS_NAME_MAX + 16];
  for (int i = 0; i < d->ndemos; i++) {
    ds_demo *dm = &d->demos[i];
    dm->row = row;
    hid_t dg = H5Gopen2(data, dm->name, H5P_DEFAULT);
    snprintf(where, sizeof(where), "%s/actions", dm->name);
    int bad = s_read_block(f, dg, "actions", where, dm->len, d->action_dim, d->actions + (size_t)row * d->action_dim,
                           d->action_dim, 0, &stored, err, errsz);
    hid_t og = bad || !nkeys ? -1 : (s_link(dg, "obs") == S_GROUP ? H5Gopen2(dg, "obs", H5P_DEFAULT) : -1);
    if (!bad && nkeys && og < 0) {
      fc_set_err(err, errsz, "%s: %s has no obs group", path, dm->name);
      bad = 1;
    }
    for (int k = 0; !bad && k < nkeys; k++) {
      const ds_key *key = &d->keys[k];
      snprintf(where, sizeof(where), "%s/obs/%s", dm->name, key->name);
      if (s_link(og, key->name) == S_NONE) {
        fc_set_err(err, errsz, "%s: %s has no obs/%s (the first demo has it)", path, dm->name, key->name);
        bad = 1;
      } else {
        bad = s_read_block(f, og, key->name, where, dm->len, key->dim, d->obs + (size_t)row * d->obs_dim, d->obs_dim,
                           key->col, &stored, err, errsz) != 0;
      }
    }
    if (og >= 0) H5Gclose(og);
    if (dg >= 0) H5Gclose(dg);
    if (bad) {
      H5Gclose(data);
      ds_dataset_free(d);
      return NULL;
    }
    row += dm->len;
  }
  H5Gclose(data);
  return d;
}

ds_dataset *ds_load(ds_file *f, const char *const *keys, int nkeys, char *err, size_t errsz) {
  ds__quiet q = ds__quiet_begin();
  ds_dataset *d = s_load(f, keys, nkeys, err, errsz);
  ds__quiet_end(q);
  return d;
}

/* ---------- one whole demo ---------- */

/* dataset `name` of g as (len, dim) doubles (where = "demo_2/obs/object"),
 * checked for shape and finiteness; want_dim 0: any width of rank <= 1 */
static double *s_read_doubles(const ds_file *f, hid_t g, const char *name, const char *where, int64_t len,
                              int want_dim, int *dim, ds_key *key, char *err, size_t errsz) {
  ds_key k;
  int64_t n = 0;
  hid_t ds = s_numeric_open(f, g, name, where, &k, &n, NULL, err, errsz);
  if (ds < 0) return NULL;
  if (n != len || k.rank > 1 || (want_dim && k.dim != want_dim)) {
    H5Dclose(ds);
    if (want_dim) fc_set_err(err, errsz, "%s: %s does not have %lld rows of %d values", f->info.path, where, (long long)len, want_dim);
    else fc_set_err(err, errsz, "%s: %s does not have %lld rows of values", f->info.path, where, (long long)len);
    return NULL;
  }
  double *buf = s_read_all(f, ds, where, len, k.dim, err, errsz);
  H5Dclose(ds);
  for (size_t i = 0; buf && i < (size_t)len * (size_t)k.dim; i++)
    if (!isfinite(buf[i])) {
      fc_set_err(err, errsz, "%s: %s holds a non-finite value (%g) at step %lld", f->info.path, where, buf[i],
                 (long long)(i / (size_t)(k.dim ? k.dim : 1)));
      free(buf);
      return NULL;
    }
  if (buf && dim) *dim = k.dim;
  if (buf && key) *key = k;
  return buf;
}

static ds_record *s_read_record(ds_file *f, int demo, char *err, size_t errsz) {
  const ds_info *in = &f->info;
  const ds_demo *dm = &in->demos[demo];
  ds_record *r = fc_calloc(1, sizeof(*r));
  snprintf(r->name, sizeof(r->name), "%s", dm->name);
  r->len = dm->len;
  char where[3 * DS_NAME_MAX + 16];
  hid_t data = H5Gopen2(f->fid, "data", H5P_DEFAULT), g = data < 0 ? -1 : H5Gopen2(data, dm->name, H5P_DEFAULT);
  int bad = g < 0;
  if (bad) fc_set_err(err, errsz, "%s: %s cannot be opened (damaged)", in->path, dm->name);
  const char *fields[3] = {"rewards", "dones", "states"};
  double **dst[3] = {&r->rewards, &r->dones, &r->states};
  snprintf(where, sizeof(where), "%s/actions", dm->name);
  if (!bad) bad = !(r->actions = s_read_doubles(f, g, "actions", where, r->len, in->action_dim, &r->action_dim, NULL, err, errsz));
  for (int i = 0; i < 3 && !bad; i++) {
    if (s_link(g, fields[i]) == S_NONE) continue;
    snprintf(where, sizeof(where), "%s/%s", dm->name, fields[i]);
    bad = !(*dst[i] = s_read_doubles(f, g, fields[i], where, r->len, i < 2 ? 1 : in->state_dim,
                                     i < 2 ? NULL : &r->state_dim, NULL, err, errsz));
  }
  if (!bad) bad = s_attr_str(f, g, dm->name, "model_file", &r->model_file, err, errsz) < 0;
  if (!bad && s_link(g, "obs") == S_GROUP) {
    hid_t og = H5Gopen2(g, "obs", H5P_DEFAULT);
    hid_t ng = s_link(g, "next_obs") == S_GROUP ? H5Gopen2(g, "next_obs", H5P_DEFAULT) : -1;
    s_names keys;
    s_list(og, &keys);
    r->keys = fc_calloc((size_t)(keys.n ? keys.n : 1), sizeof(ds_key));
    r->obs = fc_calloc((size_t)(keys.n ? keys.n : 1), sizeof(double *));
    r->next_obs = fc_calloc((size_t)(keys.n ? keys.n : 1), sizeof(double *));
    for (int k = 0; k < keys.n && !bad; k++) {
      int kind = s_link(og, keys.names[k]);
      if (kind == S_GROUP || kind == S_OTHER) continue; /* not an obs key */
      snprintf(where, sizeof(where), "%s/obs/%s", dm->name, keys.names[k]);
      bad = !(r->obs[r->nobs] = s_read_doubles(f, og, keys.names[k], where, r->len, 0, NULL, &r->keys[r->nobs], err, errsz));
      if (!bad && ng >= 0 && s_link(ng, keys.names[k]) != S_NONE) {
        snprintf(where, sizeof(where), "%s/next_obs/%s", dm->name, keys.names[k]);
        bad = !(r->next_obs[r->nobs] = s_read_doubles(f, ng, keys.names[k], where, r->len, r->keys[r->nobs].dim, NULL,
                                                      NULL, err, errsz));
      }
      r->nobs++;
    }
    free(keys.names);
    if (ng >= 0) H5Gclose(ng);
    H5Gclose(og);
  }
  if (g >= 0) H5Gclose(g);
  if (data >= 0) H5Gclose(data);
  if (bad) {
    ds_record_free(r);
    return NULL;
  }
  return r;
}

ds_record *ds_read_record(ds_file *f, int demo, char *err, size_t errsz) {
  FC_ASSERT(demo >= 0 && demo < f->info.ndemos);
  ds__quiet q = ds__quiet_begin();
  ds_record *r = s_read_record(f, demo, err, errsz);
  ds__quiet_end(q);
  return r;
}

void ds_record_free(ds_record *r) {
  if (!r) return;
  for (int k = 0; k < r->nobs; k++) {
    free(r->obs[k]);
    free(r->next_obs[k]);
  }
  free(r->obs);
  free(r->next_obs);
  free(r->keys);
  free(r->actions);
  free(r->rewards);
  free(r->dones);
  free(r->states);
  free(r->model_file);
  free(r);
}

const double *ds_record_obs(const ds_record *r, const char *key, int *dim) {
  for (int k = 0; k < r->nobs; k++)
    if (!strcmp(r->keys[k].name, key)) {
      if (dim) *dim = r->keys[k].dim;
      return r->obs[k];
    }
  return NULL;
}

void ds_dataset_free(ds_dataset *d) {
  if (!d) return;
  free(d->path);
  free(d->demos);
  free(d->keys);
  free(d->obs);
  free(d->actions);
  free(d->env_args);
  s_masks_free(d->masks, d->nmasks);
  free(d);
}
