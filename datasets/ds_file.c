/* ds_file: Robomimic-style HDF5 reader on the HDF5 C API. Structure and
 * metadata are read at open; ds_load reads the chosen obs keys and actions.
 * HDF5's own error printing is switched off: every failure becomes one
 * sentence in the caller's err buffer. */
#include "ds_file.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fc_base.h"

struct ds_file {
  hid_t fid;
  ds_info info;
};

static void s_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

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

/* "float64", "int64", "uint8", "string", ... */
static void s_dtype_name(hid_t t, char *out, size_t n) {
  H5T_class_t c = H5Tget_class(t);
  size_t sz = H5Tget_size(t);
  if (c == H5T_FLOAT) snprintf(out, n, "float%zu", 8 * sz);
  else if (c == H5T_INTEGER) snprintf(out, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", 8 * sz);
  else if (c == H5T_STRING) snprintf(out, n, "string");
  else if (c == H5T_ENUM) snprintf(out, n, "enum");
  else snprintf(out, n, "class%d", (int)c);
}

static int s_is_numeric(hid_t t) {
  H5T_class_t c = H5Tget_class(t);
  return c == H5T_FLOAT || c == H5T_INTEGER;
}

static int s_is_group(hid_t loc, const char *name) {
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return 0;
  H5O_info_t oi;
  if (H5Oget_info_by_name(loc, name, &oi, H5P_DEFAULT) < 0) return 0;
  return oi.type == H5O_TYPE_GROUP;
}

static int s_is_dataset(hid_t loc, const char *name) {
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return 0;
  H5O_info_t oi;
  if (H5Oget_info_by_name(loc, name, &oi, H5P_DEFAULT) < 0) return 0;
  return oi.type == H5O_TYPE_DATASET;
}

/* shape of a dataset; returns its rank or -1 */
static int s_shape(hid_t ds, hsize_t *dims, int max) {
  hid_t sp = H5Dget_space(ds);
  if (sp < 0) return -1;
  int r = H5Sget_simple_extent_ndims(sp);
  if (r > max) r = max + 1; /* caller reports "rank too high" */
  else if (r >= 0) H5Sget_simple_extent_dims(sp, dims, NULL);
  H5Sclose(sp);
  return r;
}

static void s_shape_str(const hsize_t *dims, int rank, char *out, size_t n) {
  size_t o = (size_t)snprintf(out, n, "(");
  for (int i = 0; i < rank && o < n; i++)
    o += (size_t)snprintf(out + o, n - o, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
  if (o < n) snprintf(out + o, n - o, rank == 1 ? ",)" : ")");
}

/* read a string attribute (fixed or variable length); NULL when absent */
static char *s_read_str_attr(hid_t obj, const char *name) {
  if (H5Aexists(obj, name) <= 0) return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return NULL;
  hid_t ft = H5Aget_type(a);
  char *out = NULL;
  if (H5Tget_class(ft) == H5T_STRING) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    if (H5Tis_variable_str(ft) > 0) {
      H5Tset_size(mt, H5T_VARIABLE);
      H5Tset_cset(mt, H5Tget_cset(ft));
      char *s = NULL;
      if (H5Aread(a, mt, &s) >= 0 && s) {
        out = s_strdup(s);
        H5free_memory(s);
      }
    } else {
      size_t sz = H5Tget_size(ft);
      H5Tset_size(mt, sz);
      H5Tset_strpad(mt, H5T_STR_NULLPAD);
      char *buf = fc_calloc(sz + 1, 1);
      if (H5Aread(a, mt, buf) >= 0) out = buf;
      else free(buf);
    }
    H5Tclose(mt);
  }
  H5Tclose(ft);
  H5Aclose(a);
  return out;
}

/* read an integer attribute; 0 and *ok = 0 when absent or not an integer */
static int64_t s_read_int_attr(hid_t obj, const char *name, int *ok) {
  *ok = 0;
  if (H5Aexists(obj, name) <= 0) return 0;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return 0;
  hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
  int64_t v = 0;
  if (s_is_numeric(ft) && H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, H5T_NATIVE_INT64, &v) >= 0) *ok = 1;
  H5Sclose(sp);
  H5Tclose(ft);
  H5Aclose(a);
  return v;
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

/* read a 1-D string dataset (a mask) into names */
static int s_read_mask(hid_t g, const char *name, ds_mask *m, const char *path, char *err, size_t errsz) {
  memset(m, 0, sizeof(*m));
  snprintf(m->name, sizeof(m->name), "%s", name);
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return fc_set_err(err, errsz, "%s: mask/%s cannot be read", path, name), -1;
  hid_t ft = H5Dget_type(ds);
  hsize_t dims[4] = {0};
  int rank = s_shape(ds, dims, 4);
  int rc = -1;
  if (H5Tget_class(ft) != H5T_STRING || rank > 1) {
    fc_set_err(err, errsz, "%s: mask/%s is not a 1-D array of demo names", path, name);
    goto out;
  }
  size_t n = rank == 0 ? 1 : (size_t)dims[0];
  m->count = (int)n;
  m->demos = fc_calloc(n ? n : 1, DS_NAME_MAX);
  hid_t mt = H5Tcopy(H5T_C_S1);
  if (H5Tis_variable_str(ft) > 0) {
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft));
    char **buf = fc_calloc(n ? n : 1, sizeof(char *));
    if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
      for (size_t i = 0; i < n; i++) snprintf(m->demos[i], DS_NAME_MAX, "%s", buf[i] ? buf[i] : "");
      hid_t sp = H5Dget_space(ds);
      H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
      H5Sclose(sp);
      rc = 0;
    }
    free(buf);
  } else {
    size_t sz = H5Tget_size(ft);
    H5Tset_size(mt, sz);
    H5Tset_strpad(mt, H5T_STR_NULLPAD);
    char *buf = fc_calloc(n * sz + 1, 1);
    if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
      for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(buf + i * sz, sz);
        if (len >= DS_NAME_MAX) len = DS_NAME_MAX - 1;
        memcpy(m->demos[i], buf + i * sz, len);
        m->demos[i][len] = 0;
      }
      rc = 0;
    }
    free(buf);
  }
  H5Tclose(mt);
  if (rc) fc_set_err(err, errsz, "%s: mask/%s cannot be read", path, name);
out:
  H5Tclose(ft);
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

/* per-step shape and dtype of one dataset whose first axis is time */
static int s_key_info(hid_t g, const char *name, ds_key *k, hsize_t *nsteps) {
  memset(k, 0, sizeof(*k));
  snprintf(k->name, sizeof(k->name), "%s", name);
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return -1;
  hsize_t dims[8] = {0};
  int rank = s_shape(ds, dims, 5);
  hid_t t = H5Dget_type(ds);
  s_dtype_name(t, k->dtype, sizeof(k->dtype));
  H5Tclose(t);
  H5Dclose(ds);
  if (rank < 1 || rank > 5) {
    k->rank = rank;
    return -2;
  }
  *nsteps = dims[0];
  k->rank = rank - 1;
  k->dim = 1;
  for (int i = 1; i < rank; i++) {
    k->shape[i - 1] = (int64_t)dims[i];
    k->dim *= (int)dims[i];
  }
  return 0;
}

/* ---------- open ---------- */

ds_file *ds_open(const char *path, char *err, size_t errsz) {
  s_quiet();
  struct stat st;
  if (stat(path, &st) != 0) return fc_set_err(err, errsz, "cannot open %s: %s", path, strerror(errno)), NULL;
  if (!S_ISREG(st.st_mode)) return fc_set_err(err, errsz, "%s is not a regular file", path), NULL;
  if (H5Fis_hdf5(path) <= 0) return fc_set_err(err, errsz, "%s is not an HDF5 file", path), NULL;
  hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (fid < 0) {
    int trunc = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, s_find_truncated, &trunc);
    if (trunc) fc_set_err(err, errsz, "%s is truncated: it is shorter than its HDF5 header says", path);
    else fc_set_err(err, errsz, "%s is damaged: HDF5 cannot open it", path);
    return NULL;
  }
  ds_file *f = fc_calloc(1, sizeof(*f));
  f->fid = fid;
  ds_info *in = &f->info;
  in->path = s_strdup(path);
  in->total_attr = -1;
  char msg[512] = "";
  hid_t data = -1, dg = -1;
  s_names names = {0};

  if (!s_is_group(fid, "data")) {
    snprintf(msg, sizeof(msg), "%s has no /data group (not a Robomimic-style demonstration file)", path);
    goto fail;
  }
  data = H5Gopen2(fid, "data", H5P_DEFAULT);
  int ok;
  int64_t tot = s_read_int_attr(data, "total", &ok);
  if (ok) in->total_attr = tot;
  in->env_args = s_read_str_attr(data, "env_args");

  /* demos, in integer order */
  s_list(data, &names);
  in->demos = fc_calloc((size_t)(names.n ? names.n : 1), sizeof(ds_demo));
  for (int i = 0; i < names.n; i++) {
    int64_t idx = s_demo_index(names.names[i]);
    if (idx < 0 || !s_is_group(data, names.names[i])) continue;
    ds_demo *d = &in->demos[in->ndemos++];
    snprintf(d->name, sizeof(d->name), "%s", names.names[i]);
    d->index = idx;
  }
  if (in->ndemos == 0) {
    snprintf(msg, sizeof(msg), "%s: /data holds no demo_<k> groups", path);
    goto fail;
  }
  qsort(in->demos, (size_t)in->ndemos, sizeof(ds_demo), s_demo_cmp);
  for (int i = 1; i < in->ndemos; i++)
    if (in->demos[i].index == in->demos[i - 1].index) {
      snprintf(msg, sizeof(msg), "%s: %s and %s have the same demo number", path, in->demos[i - 1].name, in->demos[i].name);
      goto fail;
    }

  /* each demo: actions (N, A) with N > 0, every obs key N steps long */
  for (int i = 0; i < in->ndemos; i++) {
    ds_demo *d = &in->demos[i];
    dg = H5Gopen2(data, d->name, H5P_DEFAULT);
    if (!s_is_dataset(dg, "actions")) {
      snprintf(msg, sizeof(msg), "%s: %s has no actions dataset", path, d->name);
      goto fail;
    }
    ds_key ak;
    hsize_t n = 0;
    int r = s_key_info(dg, "actions", &ak, &n);
    if (r != 0 || ak.rank != 1) {
      hid_t ads = H5Dopen2(dg, "actions", H5P_DEFAULT);
      hsize_t dims[8] = {0};
      int rank = s_shape(ads, dims, 8);
      H5Dclose(ads);
      char shape[128];
      s_shape_str(dims, rank, shape, sizeof(shape));
      snprintf(msg, sizeof(msg), "%s: %s/actions has rank %d, shape %s; expected rank 2, (steps, action dim)", path,
               d->name, rank, shape);
      goto fail;
    }
    {
      hid_t ads = H5Dopen2(dg, "actions", H5P_DEFAULT);
      hid_t at = H5Dget_type(ads);
      int numeric = s_is_numeric(at);
      H5Tclose(at);
      H5Dclose(ads);
      if (!numeric) {
        snprintf(msg, sizeof(msg), "%s: %s/actions is not numeric (%s)", path, d->name, ak.dtype);
        goto fail;
      }
    }
    d->len = (int64_t)n;
    if (n == 0) {
      snprintf(msg, sizeof(msg), "%s: %s is empty (0 samples)", path, d->name);
      goto fail;
    }
    if (i == 0) {
      in->action_dim = (int)ak.shape[0];
      snprintf(in->action_dtype, sizeof(in->action_dtype), "%s", ak.dtype);
    } else if (ak.shape[0] != in->action_dim) {
      snprintf(msg, sizeof(msg), "%s: %s/actions has %lld columns but %s has %d", path, d->name,
               (long long)ak.shape[0], in->demos[0].name, in->action_dim);
      goto fail;
    }
    int64_t ns = s_read_int_attr(dg, "num_samples", &ok);
    if (ok && ns != d->len) {
      snprintf(msg, sizeof(msg), "%s: %s says num_samples = %lld but actions has %lld steps", path, d->name,
               (long long)ns, (long long)d->len);
      goto fail;
    }
    for (int pass = 0; pass < 2; pass++) {
      const char *grp = pass ? "next_obs" : "obs";
      if (!s_is_group(dg, grp)) continue;
      hid_t og = H5Gopen2(dg, grp, H5P_DEFAULT);
      s_names keys;
      s_list(og, &keys);
      for (int k = 0; k < keys.n; k++) {
        ds_key key;
        hsize_t kn = 0;
        if (!s_is_dataset(og, keys.names[k])) continue;
        if (s_key_info(og, keys.names[k], &key, &kn) == 0 && kn != n) {
          snprintf(msg, sizeof(msg), "%s: %s/%s/%s has %llu steps but actions has %llu", path, d->name, grp,
                   keys.names[k], (unsigned long long)kn, (unsigned long long)n);
          H5Gclose(og);
          free(keys.names);
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
      H5Gclose(og);
    }
    if (i == 0 && s_is_dataset(dg, "states")) {
      ds_key sk;
      hsize_t sn;
      if (s_key_info(dg, "states", &sk, &sn) == 0) in->state_dim = sk.dim;
    }
    in->total += d->len;
    H5Gclose(dg);
    dg = -1;
  }

  /* masks */
  if (s_is_group(fid, "mask")) {
    hid_t mg = H5Gopen2(fid, "mask", H5P_DEFAULT);
    s_names mn;
    s_list(mg, &mn);
    in->masks = fc_calloc((size_t)(mn.n ? mn.n : 1), sizeof(ds_mask));
    for (int i = 0; i < mn.n; i++) {
      if (!s_is_dataset(mg, mn.names[i])) continue;
      if (s_read_mask(mg, mn.names[i], &in->masks[in->nmasks], path, msg, sizeof(msg))) {
        H5Gclose(mg);
        free(mn.names);
        goto fail;
      }
      in->nmasks++;
    }
    free(mn.names);
    H5Gclose(mg);
  }
  free(names.names);
  H5Gclose(data);
  return f;

fail:
  fc_set_err(err, errsz, "%s", msg);
  free(names.names);
  if (dg >= 0) H5Gclose(dg);
  if (data >= 0) H5Gclose(data);
  ds_close(f);
  return NULL;
}

void ds_close(ds_file *f) {
  if (!f) return;
  if (f->fid >= 0) H5Fclose(f->fid);
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

/* read dataset `name` of group g (N rows of dim values) into dst rows with
 * stride `stride` starting at column col, casting to float32; checks finiteness */
static int s_read_block(hid_t g, const char *name, int64_t N, int dim, float *dst, int stride, int col,
                        const char *path, const char *what, char *err, size_t errsz) {
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return fc_set_err(err, errsz, "%s: %s cannot be read", path, what), -1;
  hid_t t = H5Dget_type(ds);
  int numeric = s_is_numeric(t);
  H5Tclose(t);
  if (!numeric) {
    H5Dclose(ds);
    return fc_set_err(err, errsz, "%s: %s is not numeric", path, what), -1;
  }
  double *buf = fc_malloc((size_t)N * (size_t)dim * sizeof(double));
  herr_t rc = H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  H5Dclose(ds);
  if (rc < 0) {
    free(buf);
    return fc_set_err(err, errsz, "%s: %s cannot be read (damaged data)", path, what), -1;
  }
  for (int64_t i = 0; i < N; i++)
    for (int j = 0; j < dim; j++) {
      double v = buf[(size_t)i * dim + j];
      if (!isfinite(v)) {
        fc_set_err(err, errsz, "%s: %s has a non-finite value (%g) at step %lld, column %d", path, what, v,
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

ds_dataset *ds_load(ds_file *f, const char *const *keys, int nkeys, char *err, size_t errsz) {
  const ds_info *in = &f->info;
  const char *path = in->path;
  if (nkeys < 0) return fc_set_err(err, errsz, "%s: negative number of observation keys", path), NULL;
  /* the keys must exist (in the first demo; the others are checked as read) */
  ds_dataset *d = fc_calloc(1, sizeof(*d));
  d->path = s_strdup(path);
  d->keys = fc_calloc((size_t)(nkeys ? nkeys : 1), sizeof(ds_key));
  d->nkeys = nkeys;
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
    d->keys[k] = in->obs[found];
    d->keys[k].col = d->obs_dim;
    d->obs_dim += in->obs[found].dim;
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
  char what[256];
  for (int i = 0; i < d->ndemos; i++) {
    ds_demo *dm = &d->demos[i];
    dm->row = row;
    hid_t dg = H5Gopen2(data, dm->name, H5P_DEFAULT);
    snprintf(what, sizeof(what), "%s/actions", dm->name);
    int bad = s_read_block(dg, "actions", dm->len, d->action_dim, d->actions + (size_t)row * d->action_dim,
                           d->action_dim, 0, path, what, err, errsz);
    hid_t og = bad || !nkeys ? -1 : (s_is_group(dg, "obs") ? H5Gopen2(dg, "obs", H5P_DEFAULT) : -1);
    if (!bad && nkeys && og < 0) {
      fc_set_err(err, errsz, "%s: %s has no obs group", path, dm->name);
      bad = 1;
    }
    for (int k = 0; !bad && k < nkeys; k++) {
      const ds_key *key = &d->keys[k];
      ds_key here;
      hsize_t n = 0;
      if (!s_is_dataset(og, key->name)) {
        fc_set_err(err, errsz, "%s: %s has no obs/%s (the first demo has it)", path, dm->name, key->name);
        bad = 1;
      } else if (s_key_info(og, key->name, &here, &n) != 0 || here.dim != key->dim || here.rank > 1) {
        fc_set_err(err, errsz, "%s: %s/obs/%s has %d values per step but %s has %d", path, dm->name, key->name,
                   here.dim, d->demos[0].name, key->dim);
        bad = 1;
      } else {
        snprintf(what, sizeof(what), "%s/obs/%s", dm->name, key->name);
        bad = s_read_block(og, key->name, dm->len, key->dim, d->obs + (size_t)row * d->obs_dim, d->obs_dim,
                           key->col, path, what, err, errsz) != 0;
      }
    }
    if (og >= 0) H5Gclose(og);
    H5Gclose(dg);
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

/* a whole (len, dim) dataset as doubles, checked for shape and finiteness */
static double *s_read_doubles(hid_t g, const char *name, int64_t len, int *dim, const char *path, const char *demo,
                              char *err, size_t errsz) {
  ds_key k;
  hsize_t n = 0;
  if (s_key_info(g, name, &k, &n) != 0 || k.rank > 1 || (int64_t)n != len) {
    fc_set_err(err, errsz, "%s: %s/%s does not have %lld rows of values", path, demo, name, (long long)len);
    return NULL;
  }
  double *buf = fc_malloc((size_t)len * (size_t)k.dim * sizeof(double));
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  hid_t t = H5Dget_type(ds);
  int ok = s_is_numeric(t) && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
  H5Tclose(t);
  H5Dclose(ds);
  for (size_t i = 0; ok && i < (size_t)len * (size_t)k.dim; i++) ok = isfinite(buf[i]);
  if (!ok) {
    fc_set_err(err, errsz, "%s: %s/%s cannot be read or holds a non-finite value", path, demo, name);
    free(buf);
    return NULL;
  }
  if (dim) *dim = k.dim;
  return buf;
}

ds_record *ds_read_record(ds_file *f, int demo, char *err, size_t errsz) {
  const ds_info *in = &f->info;
  FC_ASSERT(demo >= 0 && demo < in->ndemos);
  const ds_demo *dm = &in->demos[demo];
  ds_record *r = fc_calloc(1, sizeof(*r));
  snprintf(r->name, sizeof(r->name), "%s", dm->name);
  r->len = dm->len;
  char where[2 * DS_NAME_MAX];
  hid_t data = H5Gopen2(f->fid, "data", H5P_DEFAULT), g = H5Gopen2(data, dm->name, H5P_DEFAULT);
  int bad = !(r->actions = s_read_doubles(g, "actions", r->len, &r->action_dim, in->path, dm->name, err, errsz));
  if (!bad && s_is_dataset(g, "rewards"))
    bad = !(r->rewards = s_read_doubles(g, "rewards", r->len, NULL, in->path, dm->name, err, errsz));
  if (!bad && s_is_dataset(g, "dones"))
    bad = !(r->dones = s_read_doubles(g, "dones", r->len, NULL, in->path, dm->name, err, errsz));
  if (!bad && s_is_dataset(g, "states"))
    bad = !(r->states = s_read_doubles(g, "states", r->len, &r->state_dim, in->path, dm->name, err, errsz));
  if (!bad) r->model_file = s_read_str_attr(g, "model_file");
  if (!bad && s_is_group(g, "obs")) {
    hid_t og = H5Gopen2(g, "obs", H5P_DEFAULT);
    hid_t ng = s_is_group(g, "next_obs") ? H5Gopen2(g, "next_obs", H5P_DEFAULT) : -1;
    s_names keys;
    s_list(og, &keys);
    r->keys = fc_calloc((size_t)(keys.n ? keys.n : 1), sizeof(ds_key));
    r->obs = fc_calloc((size_t)(keys.n ? keys.n : 1), sizeof(double *));
    r->next_obs = fc_calloc((size_t)(keys.n ? keys.n : 1), sizeof(double *));
    for (int k = 0; k < keys.n && !bad; k++) {
      if (!s_is_dataset(og, keys.names[k])) continue;
      hsize_t n;
      s_key_info(og, keys.names[k], &r->keys[r->nobs], &n);
      snprintf(where, sizeof(where), "%s/obs", dm->name);
      bad = !(r->obs[r->nobs] = s_read_doubles(og, keys.names[k], r->len, NULL, in->path, where, err, errsz));
      if (!bad && ng >= 0 && s_is_dataset(ng, keys.names[k])) {
        snprintf(where, sizeof(where), "%s/next_obs", dm->name);
        bad = !(r->next_obs[r->nobs] = s_read_doubles(ng, keys.names[k], r->len, NULL, in->path, where, err, errsz));
      }
      r->nobs++;
    }
    free(keys.names);
    if (ng >= 0) H5Gclose(ng);
    H5Gclose(og);
  }
  H5Gclose(g);
  H5Gclose(data);
  if (bad) {
    ds_record_free(r);
    return NULL;
  }
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
