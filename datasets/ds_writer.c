/* ds_writer: incremental Robomimic-style HDF5 writer (see ds_writer.h for
 * the crash-safety design). */
#include "ds_writer.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_h5.h"
#include "fc_base.h"

struct ds_writer {
  char *path;
  hid_t fid, data;
  int count;
  int64_t total;
  void (*hook)(void *ctx, int demo, const char *dataset);
  void *hook_ctx;
};

/* a variable-length UTF-8 string attribute, as h5py writes Python str */
static int s_write_str_attr(hid_t obj, const char *name, const char *value) {
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a >= 0 ? H5Awrite(a, t, &value) : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
  return rc < 0 ? -1 : 0;
}

static int s_write_int_attr(hid_t obj, const char *name, int64_t value) {
  hid_t a;
  if (H5Aexists(obj, name) > 0) {
    a = H5Aopen(obj, name, H5P_DEFAULT);
  } else {
    hid_t sp = H5Screate(H5S_SCALAR);
    a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(sp);
  }
  herr_t rc = a >= 0 ? H5Awrite(a, H5T_NATIVE_INT64, &value) : -1;
  if (a >= 0) H5Aclose(a);
  return rc < 0 ? -1 : 0;
}

/* a (rows, cols) dataset (cols == 0: 1-D). From 64 KB up it is chunked by
 * rows, byte-shuffled and deflated; below that it is contiguous, as h5py
 * writes by default: a chunk index costs about 3 KB per dataset, more than
 * compression saves on a short trajectory (measured on lift demos: 10.9 MB
 * chunked vs 3.9 MB contiguous for 200 demos). */
/* creation properties without modification times: a file's bytes depend
 * only on what is written (two runs, or one run split across processes,
 * give the same file) */
static hid_t s_plist(hid_t cls) {
  hid_t pl = H5Pcreate(cls);
  H5Pset_obj_track_times(pl, 0);
  return pl;
}

static hid_t s_group(hid_t parent, const char *name) {
  hid_t gcpl = s_plist(H5P_GROUP_CREATE);
  hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  H5Pclose(gcpl);
  return g;
}

static int s_write_dataset(ds_writer *w, hid_t g, const char *name, hid_t ftype, hid_t mtype, const void *buf,
                           int64_t rows, int cols, int demo) {
  hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
  int rank = cols > 0 ? 2 : 1;
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  hid_t dcpl = s_plist(H5P_DATASET_CREATE);
  size_t bytes = (size_t)rows * (size_t)(cols > 0 ? cols : 1) * H5Tget_size(ftype);
  if (bytes >= 64 * 1024) {
    hsize_t chunk[2] = {(hsize_t)(rows < 4096 ? rows : 4096), (hsize_t)(cols > 0 ? cols : 1)};
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 4);
  }
  hid_t ds = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  herr_t rc = ds >= 0 ? H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
  if (ds >= 0) H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(sp);
  if (rc >= 0 && w->hook) w->hook(w->hook_ctx, demo, name);
  return rc < 0 ? -1 : 0;
}

static ds_writer *s_create(const char *path, const char *env_args, char *err, size_t errsz) {
  /* metadata stays in memory until a flush: no evictions, no automatic resizing */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5AC_cache_config_t mdc;
  memset(&mdc, 0, sizeof(mdc));
  mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
  H5Pget_mdc_config(fapl, &mdc);
  mdc.evictions_enabled = 0;
  mdc.incr_mode = H5C_incr__off;
  mdc.flash_incr_mode = H5C_flash_incr__off;
  mdc.decr_mode = H5C_decr__off;
  mdc.set_initial_size = 1;
  mdc.initial_size = 16 * 1024 * 1024;
  mdc.max_size = 64 * 1024 * 1024;
  H5Pset_mdc_config(fapl, &mdc);
  hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (fid < 0) return fc_set_err(err, errsz, "cannot create %s", path), NULL;
  ds_writer *w = fc_calloc(1, sizeof(*w));
  size_t n = strlen(path) + 1;
  w->path = fc_malloc(n);
  memcpy(w->path, path, n);
  w->fid = fid;
  w->data = s_group(fid, "data");
  if (w->data < 0 || s_write_int_attr(w->data, "total", 0) ||
      (env_args && s_write_str_attr(w->data, "env_args", env_args)) || H5Fflush(fid, H5F_SCOPE_GLOBAL) < 0) {
    fc_set_err(err, errsz, "cannot write the /data group of %s", path);
    ds_writer_close(w, NULL, 0);
    return NULL;
  }
  return w;
}

ds_writer *ds_writer_create(const char *path, const char *env_args, char *err, size_t errsz) {
  ds__quiet q = ds__quiet_begin();
  ds_writer *w = s_create(path, env_args, err, errsz);
  ds__quiet_end(q);
  return w;
}

void ds_writer_on_dataset(ds_writer *w, void (*fn)(void *ctx, int demo, const char *dataset), void *ctx) {
  w->hook = fn;
  w->hook_ctx = ctx;
}

int ds_writer_count(const ds_writer *w) { return w->count; }

static int s_finite(const double *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i])) return 0;
  return 1;
}

static int s_add(ds_writer *w, const ds_demo_data *d, char *err, size_t errsz) {
  char name[32];
  snprintf(name, sizeof(name), "demo_%d", w->count);
  /* validate before touching the file */
  if (d->len < 1) return fc_set_err(err, errsz, "%s: %s would be empty", w->path, name), -1;
  if (d->action_dim < 1 || !d->actions) return fc_set_err(err, errsz, "%s: %s has no actions", w->path, name), -1;
  if (!s_finite(d->actions, (size_t)d->len * d->action_dim))
    return fc_set_err(err, errsz, "%s: %s/actions has a non-finite value", w->path, name), -1;
  for (int k = 0; k < d->nobs; k++) {
    const ds_obs_data *o = &d->obs[k];
    if (!o->name || !*o->name || strchr(o->name, '/') || o->dim < 1 || !o->obs)
      return fc_set_err(err, errsz, "%s: %s has a malformed observation key", w->path, name), -1;
    if (!s_finite(o->obs, (size_t)d->len * o->dim) || (o->next_obs && !s_finite(o->next_obs, (size_t)d->len * o->dim)))
      return fc_set_err(err, errsz, "%s: %s/obs/%s has a non-finite value", w->path, name, o->name), -1;
  }

  hid_t g = s_group(w->data, name);
  int bad = g < 0;
  const int demo = w->count;
  bad = bad || s_write_int_attr(g, "num_samples", d->len);
  if (!bad && d->model_file) bad = s_write_str_attr(g, "model_file", d->model_file);
  bad = bad || s_write_dataset(w, g, "actions", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d->actions, d->len, d->action_dim, demo);
  if (!bad && d->states)
    bad = s_write_dataset(w, g, "states", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d->states, d->len, d->state_dim, demo);
  if (!bad && d->rewards)
    bad = s_write_dataset(w, g, "rewards", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d->rewards, d->len, 0, demo);
  if (!bad && d->dones)
    bad = s_write_dataset(w, g, "dones", H5T_STD_I64LE, H5T_NATIVE_INT64, d->dones, d->len, 0, demo);
  for (int pass = 0; pass < 2 && !bad; pass++) {
    int any = 0;
    for (int k = 0; k < d->nobs; k++) any |= pass ? d->obs[k].next_obs != NULL : 1;
    if (!any) continue;
    hid_t og = s_group(g, pass ? "next_obs" : "obs");
    bad = og < 0;
    for (int k = 0; k < d->nobs && !bad; k++) {
      const double *v = pass ? d->obs[k].next_obs : d->obs[k].obs;
      if (v) bad = s_write_dataset(w, og, d->obs[k].name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, d->len, d->obs[k].dim, demo);
    }
    if (og >= 0) H5Gclose(og);
  }
  if (g >= 0) H5Gclose(g);
  if (bad) {
    /* the partial group lives only in the metadata cache; unlink it so the
     * next flush does not write it */
    H5Ldelete(w->data, name, H5P_DEFAULT);
    return fc_set_err(err, errsz, "%s: writing %s failed (disk full?)", w->path, name), -1;
  }
  w->total += d->len;
  if (s_write_int_attr(w->data, "total", w->total) || H5Fflush(w->fid, H5F_SCOPE_GLOBAL) < 0)
    return fc_set_err(err, errsz, "%s: cannot flush after %s", w->path, name), -1;
  return w->count++;
}

int ds_writer_add(ds_writer *w, const ds_demo_data *d, char *err, size_t errsz) {
  ds__quiet q = ds__quiet_begin();
  int rc = s_add(w, d, err, errsz);
  ds__quiet_end(q);
  return rc;
}

static int s_set_mask(ds_writer *w, const char *name, const int *idx, int n, char *err, size_t errsz) {
  hid_t mg = H5Lexists(w->fid, "mask", H5P_DEFAULT) > 0 ? H5Gopen2(w->fid, "mask", H5P_DEFAULT)
                                                         : s_group(w->fid, "mask");
  if (mg < 0) return fc_set_err(err, errsz, "%s: cannot create /mask", w->path), -1;
  if (H5Lexists(mg, name, H5P_DEFAULT) > 0) H5Ldelete(mg, name, H5P_DEFAULT);
  /* fixed-width, null-padded ASCII, as numpy's 'S' dtype */
  size_t width = 1;
  char tmp[32];
  for (int i = 0; i < n; i++) {
    if (idx[i] < 0 || idx[i] >= w->count) {
      H5Gclose(mg);
      return fc_set_err(err, errsz, "%s: mask %s names demo %d, but only %d demos were written", w->path, name, idx[i], w->count), -1;
    }
    size_t len = (size_t)snprintf(tmp, sizeof(tmp), "demo_%d", idx[i]);
    if (len > width) width = len;
  }
  char *buf = fc_calloc((size_t)(n ? n : 1) * width, 1);
  for (int i = 0; i < n; i++) {
    size_t len = (size_t)snprintf(tmp, sizeof(tmp), "demo_%d", idx[i]);
    memcpy(buf + (size_t)i * width, tmp, len);
  }
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, width);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  hsize_t dims[1] = {(hsize_t)n};
  hid_t sp = H5Screate_simple(1, dims, NULL);
  hid_t mdcpl = s_plist(H5P_DATASET_CREATE);
  hid_t ds = H5Dcreate2(mg, name, t, sp, H5P_DEFAULT, mdcpl, H5P_DEFAULT);
  H5Pclose(mdcpl);
  herr_t rc = ds >= 0 ? (n ? H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : 0) : -1;
  if (ds >= 0) H5Dclose(ds);
  H5Sclose(sp);
  H5Tclose(t);
  H5Gclose(mg);
  free(buf);
  if (rc < 0 || H5Fflush(w->fid, H5F_SCOPE_GLOBAL) < 0)
    return fc_set_err(err, errsz, "%s: cannot write mask %s", w->path, name), -1;
  return 0;
}

int ds_writer_set_mask(ds_writer *w, const char *name, const int *idx, int n, char *err, size_t errsz) {
  ds__quiet q = ds__quiet_begin();
  int rc = s_set_mask(w, name, idx, n, err, errsz);
  ds__quiet_end(q);
  return rc;
}

int ds_writer_close(ds_writer *w, char *err, size_t errsz) {
  if (!w) return 0;
  int rc = 0;
  ds__quiet q = ds__quiet_begin();
  if (w->data >= 0) H5Gclose(w->data);
  if (w->fid >= 0 && H5Fclose(w->fid) < 0) rc = -1;
  ds__quiet_end(q);
  if (rc) fc_set_err(err, errsz, "cannot close %s", w->path);
  free(w->path);
  free(w);
  return rc;
}
