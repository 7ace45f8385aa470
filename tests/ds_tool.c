/* ds_tool: drives lfp's HDF5 reader and writer for the h5py interoperability
 * test (test_h5py_interop.py), so that an independent implementation checks
 * both directions.
 *   ds_tool dump FILE KEYS OUTDIR   load FILE (obs KEYS, comma-separated) and
 *                                   write obs.f32, actions.f32, meta.json
 *   ds_tool write FILE NDEMOS       write NDEMOS demos of known values */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_file.h"
#include "ds_writer.h"

static void s_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

static int s_dump(const char *path, const char *keys_csv, const char *outdir) {
  char err[512], buf[1024], fn[4096];
  snprintf(buf, sizeof(buf), "%s", keys_csv);
  const char *keys[64];
  int nk = ds_split_csv(buf, keys, 64);
  if (nk < 1) {
    fprintf(stderr, "ds_tool: bad key list '%s'\n", keys_csv);
    return 2;
  }
  ds_file *f = ds_open(path, err, sizeof(err));
  ds_dataset *d = f ? ds_load(f, keys, nk, err, sizeof(err)) : NULL;
  if (!d) {
    fprintf(stderr, "%s\n", err);
    ds_close(f);
    return 1;
  }
  snprintf(fn, sizeof(fn), "%s/obs.f32", outdir);
  FILE *o = fopen(fn, "wb");
  fwrite(d->obs, sizeof(float), (size_t)d->total * d->obs_dim, o);
  fclose(o);
  snprintf(fn, sizeof(fn), "%s/actions.f32", outdir);
  o = fopen(fn, "wb");
  fwrite(d->actions, sizeof(float), (size_t)d->total * d->action_dim, o);
  fclose(o);
  snprintf(fn, sizeof(fn), "%s/meta.json", outdir);
  o = fopen(fn, "w");
  fprintf(o, "{\"demos\": [");
  for (int i = 0; i < d->ndemos; i++) fprintf(o, "%s\"%s\"", i ? ", " : "", d->demos[i].name);
  fprintf(o, "], \"lens\": [");
  for (int i = 0; i < d->ndemos; i++) fprintf(o, "%s%lld", i ? ", " : "", (long long)d->demos[i].len);
  fprintf(o, "], \"total\": %lld, \"obs_dim\": %d, \"action_dim\": %d, \"env_args\": ", (long long)d->total,
          d->obs_dim, d->action_dim);
  if (d->env_args) s_json_str(o, d->env_args);
  else fprintf(o, "null");
  fprintf(o, ", \"masks\": {");
  for (int m = 0; m < d->nmasks; m++) {
    fprintf(o, "%s\"%s\": [", m ? ", " : "", d->masks[m].name);
    for (int i = 0; i < d->masks[m].count; i++) fprintf(o, "%s\"%s\"", i ? ", " : "", d->masks[m].demos[i]);
    fprintf(o, "]");
  }
  fprintf(o, "}}\n");
  fclose(o);
  ds_dataset_free(d);
  ds_close(f);
  return 0;
}

/* the values test_h5py_interop.py expects */
static int s_write(const char *path, int ndemos) {
  char err[512];
  ds_writer *w = ds_writer_create(path, "{\"env_name\": \"lift\", \"type\": 1, \"env_kwargs\": {\"horizon\": 400}}",
                                  err, sizeof(err));
  if (!w) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  for (int d = 0; d < ndemos; d++) {
    const int T = 5 + 3 * d;
    double *obj = malloc(sizeof(double) * T * 10), *nobj = malloc(sizeof(double) * T * 10);
    double *eef = malloc(sizeof(double) * T * 3), *neef = malloc(sizeof(double) * T * 3);
    double *act = malloc(sizeof(double) * T * 7), *st = malloc(sizeof(double) * T * 4), *rew = malloc(sizeof(double) * T);
    int64_t *done = malloc(sizeof(int64_t) * T);
    for (int t = 0; t < T; t++) {
      for (int j = 0; j < 10; j++) {
        obj[t * 10 + j] = d * 1000.0 + t + 0.01 * j;
        nobj[t * 10 + j] = d * 1000.0 + (t + 1) + 0.01 * j;
      }
      for (int j = 0; j < 3; j++) {
        eef[t * 3 + j] = -(d * 1000.0 + t) - 0.01 * j;
        neef[t * 3 + j] = -(d * 1000.0 + (t + 1)) - 0.01 * j;
      }
      for (int j = 0; j < 7; j++) act[t * 7 + j] = sin(d + 0.1 * t + j);
      for (int j = 0; j < 4; j++) st[t * 4 + j] = d + 0.5 * t + j;
      rew[t] = t == T - 1 ? 1.0 : 0.0;
      done[t] = t == T - 1;
    }
    ds_obs_data obs[2] = {{"object", 10, obj, nobj}, {"robot0_eef_pos", 3, eef, neef}};
    char model[64];
    snprintf(model, sizeof(model), "<mujoco model=\"demo_%d\"/>", d);
    ds_demo_data dd = {.len = T, .action_dim = 7, .actions = act, .rewards = rew, .dones = done, .state_dim = 4,
                       .states = st, .nobs = 2, .obs = obs, .model_file = model};
    int rc = ds_writer_add(w, &dd, err, sizeof(err));
    free(obj); free(nobj); free(eef); free(neef); free(act); free(st); free(rew); free(done);
    if (rc < 0) {
      fprintf(stderr, "%s\n", err);
      ds_writer_close(w, NULL, 0);
      return 1;
    }
  }
  int *idx = malloc(sizeof(int) * (ndemos + 1));
  for (int i = 0; i < ndemos; i++) idx[i] = i;
  int rc = ds_writer_set_mask(w, "train", idx, ndemos - 1, err, sizeof(err)) ||
           ds_writer_set_mask(w, "valid", idx + ndemos - 1, 1, err, sizeof(err));
  free(idx);
  if (ds_writer_close(w, rc ? NULL : err, sizeof(err)) || rc) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && !strcmp(argv[1], "dump")) return s_dump(argv[2], argv[3], argv[4]);
  if (argc == 4 && !strcmp(argv[1], "write") && atoi(argv[3]) >= 1) return s_write(argv[2], atoi(argv[3]));
  fprintf(stderr, "usage: ds_tool dump FILE KEYS OUTDIR | ds_tool write FILE NDEMOS\n");
  return 2;
}
