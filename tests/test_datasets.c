/* Tests of datasets: sequence windows and padding against hand-computed
 * indices, splits, normalization, writer -> reader round trip, and a writer
 * killed in the middle of a demo, the file-image entry point, HDF5's error
 * printing left as the caller set it. (Interoperability with h5py is in
 * test_h5py_interop.py, hostile files in test_hostile_h5.py.) */
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ds_file.h"
#include "fc_norm.h"
#include "ds_seq.h"
#include "ds_writer.h"
#include "fc_ckpt.h"
#include "test.h"

/* an in-memory dataset: demo i has length lens[i]; obs row = (100 i + t, -t),
 * action row = (i, t, 0.5) */
static ds_dataset *s_fake(const int *lens, int n) {
  ds_dataset *d = calloc(1, sizeof(*d));
  d->path = strdup("fake");
  d->ndemos = n;
  d->demos = calloc((size_t)n, sizeof(ds_demo));
  for (int i = 0; i < n; i++) {
    snprintf(d->demos[i].name, DS_NAME_MAX, "demo_%d", i);
    d->demos[i].index = i;
    d->demos[i].len = lens[i];
    d->demos[i].row = d->total;
    d->total += lens[i];
  }
  d->obs_dim = 2;
  d->action_dim = 3;
  d->obs = malloc(sizeof(float) * (size_t)d->total * 2);
  d->actions = malloc(sizeof(float) * (size_t)d->total * 3);
  for (int i = 0; i < n; i++)
    for (int t = 0; t < lens[i]; t++) {
      int64_t r = d->demos[i].row + t;
      d->obs[r * 2] = (float)(100 * i + t);
      d->obs[r * 2 + 1] = (float)-t;
      d->actions[r * 3] = (float)i;
      d->actions[r * 3 + 1] = (float)t;
      d->actions[r * 3 + 2] = 0.5f;
    }
  return d;
}

TEST(window_padding_matches_robomimic) {
  const int lens[2] = {3, 6};
  ds_dataset *d = s_fake(lens, 2);
  const int To = 2, Tp = 4;
  float obs[2 * 2], act[4 * 3];
  /* demo 0 (T = 3): obs frames t-1..t clamped at 0; actions t..t+3 clamped at 2 */
  const int exp_obs[3][2] = {{0, 0}, {0, 1}, {1, 2}};
  const int exp_act[3][4] = {{0, 1, 2, 2}, {1, 2, 2, 2}, {2, 2, 2, 2}};
  for (int t = 0; t < 3; t++) {
    ds_window(d, 0, t, To, Tp, obs, act);
    for (int i = 0; i < To; i++) ASSERT_EQ_INT(obs[i * 2], exp_obs[t][i]);
    for (int i = 0; i < Tp; i++) ASSERT_EQ_INT(act[i * 3 + 1], exp_act[t][i]);
    /* robomimic's pads: begin max(0, To-1-t), end max(0, t+Tp-T) */
    int begin = To - 1 - t > 0 ? To - 1 - t : 0, end = t + Tp - 3 > 0 ? t + Tp - 3 : 0;
    int rep_first = 0, rep_last = 0;
    for (int i = 0; i < To; i++) rep_first += obs[i * 2] == 0 && i < begin;
    for (int i = 0; i < Tp; i++) rep_last += act[i * 3 + 1] == 2 && i >= Tp - end;
    ASSERT_EQ_INT(rep_first, begin);
    ASSERT_EQ_INT(rep_last, end);
  }
  /* demo 1, a middle step: no padding, and the right demo */
  ds_window(d, 1, 3, To, Tp, obs, act);
  ASSERT_EQ_INT(obs[0], 102);
  ASSERT_EQ_INT(obs[2], 103);
  for (int i = 0; i < Tp; i++) {
    ASSERT_EQ_INT(act[i * 3], 1);
    ASSERT_EQ_INT(act[i * 3 + 1], i + 3 < 6 ? i + 3 : 5);
  }
  /* every step of every demo is a sample */
  ds_split all, none;
  ASSERT(ds_split_make(d, 0.0, 0, &all, &none, NULL, 0) == 0);
  ASSERT_EQ_INT(all.samples, 9);
  ASSERT_EQ_INT(none.samples, 0);
  float *wo = malloc(sizeof(float) * 9 * To * 2), *wa = malloc(sizeof(float) * 9 * Tp * 3);
  ds_windows_all(d, &all, To, Tp, NULL, NULL, wo, wa);
  for (int64_t k = 0; k < 9; k++) {
    int demo;
    int64_t t;
    ds_split_locate(&all, k, &demo, &t);
    ds_window(d, demo, t, To, Tp, obs, act);
    ASSERT(memcmp(obs, wo + k * To * 2, sizeof(obs)) == 0);
    ASSERT(memcmp(act, wa + k * Tp * 3, sizeof(act)) == 0);
  }
  free(wo);
  free(wa);
  ds_split_free(&all);
  ds_split_free(&none);
  ds_dataset_free(d);
  return 0;
}

TEST(splits_from_masks_or_seed) {
  const int lens[10] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  ds_dataset *d = s_fake(lens, 10);
  ds_split tr, va, tr2, va2;
  char err[256];
  /* seeded: 10% -> one demo held out; the same seed gives the same split */
  ASSERT(ds_split_make(d, 0.1, 7, &tr, &va, err, sizeof(err)) == 0);
  ASSERT_EQ_INT(tr.n, 9);
  ASSERT_EQ_INT(va.n, 1);
  ASSERT_EQ_INT(tr.samples + va.samples, d->total);
  ASSERT(ds_split_make(d, 0.1, 7, &tr2, &va2, err, sizeof(err)) == 0);
  ASSERT_EQ_INT(va2.demo[0], va.demo[0]);
  ds_split_free(&tr2);
  ds_split_free(&va2);
  /* minibatches come from the training split only */
  fc_rng r;
  fc_rng_seed(&r, 1);
  float obs[64 * 2 * 2], act[64 * 4 * 3];
  ds_batch(d, &tr, &r, 64, 2, 4, NULL, NULL, obs, act);
  for (int b = 0; b < 64; b++) ASSERT((int)act[b * 12] != va.demo[0]);
  ds_split_free(&tr);
  ds_split_free(&va);
  /* masks win over the seed */
  d->nmasks = 2;
  d->masks = calloc(2, sizeof(ds_mask));
  snprintf(d->masks[0].name, DS_NAME_MAX, "train");
  snprintf(d->masks[1].name, DS_NAME_MAX, "valid");
  d->masks[0].count = 8;
  d->masks[0].demos = calloc(8, DS_NAME_MAX);
  for (int i = 0; i < 8; i++) snprintf(d->masks[0].demos[i], DS_NAME_MAX, "demo_%d", i);
  d->masks[1].count = 2;
  d->masks[1].demos = calloc(2, DS_NAME_MAX);
  snprintf(d->masks[1].demos[0], DS_NAME_MAX, "demo_9");
  snprintf(d->masks[1].demos[1], DS_NAME_MAX, "demo_8");
  ASSERT(ds_split_make(d, 0.5, 7, &tr, &va, err, sizeof(err)) == 0);
  ASSERT_EQ_INT(tr.n, 8);
  ASSERT_EQ_INT(va.n, 2);
  ASSERT_EQ_INT(va.demo[0], 8); /* ascending */
  ASSERT_CONTAINS(tr.source, "mask/train");
  ds_split_free(&tr);
  ds_split_free(&va);
  /* a mask naming a demo the file lacks is an error naming both */
  snprintf(d->masks[1].demos[1], DS_NAME_MAX, "demo_42");
  ASSERT(ds_split_make(d, 0.5, 7, &tr, &va, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "mask/valid");
  ASSERT_CONTAINS(err, "demo_42");
  ds_dataset_free(d);
  return 0;
}

/* masks named train/valid of d: the demo numbers in tr (ntr of them, -1: no
 * mask) and va */
static void s_set_masks(ds_dataset *d, const int *tr, int ntr, const int *va, int nva) {
  for (int m = 0; m < d->nmasks; m++) free(d->masks[m].demos);
  free(d->masks);
  d->masks = calloc(2, sizeof(ds_mask));
  d->nmasks = 0;
  for (int s = 0; s < 2; s++) {
    const int *idx = s ? va : tr, n = s ? nva : ntr;
    if (n < 0) continue;
    ds_mask *m = &d->masks[d->nmasks++];
    snprintf(m->name, DS_NAME_MAX, "%s", s ? "valid" : "train");
    m->count = n;
    m->demos = calloc((size_t)(n ? n : 1), DS_NAME_MAX);
    for (int i = 0; i < n; i++) snprintf(m->demos[i], DS_NAME_MAX, "demo_%d", idx[i]);
  }
}

TEST(splits_lone_masks_are_complements) {
  const int lens[10] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  ds_dataset *d = s_fake(lens, 10);
  ds_split tr, va;
  char err[256];
  const int first8[8] = {0, 1, 2, 3, 4, 5, 6, 7}, last2[2] = {9, 8}, all10[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  /* only mask/train: validation is every other demo */
  s_set_masks(d, first8, 8, NULL, -1);
  ASSERT(ds_split_make(d, 0.5, 7, &tr, &va, err, sizeof(err)) == 0);
  ASSERT_EQ_INT(tr.n, 8);
  ASSERT_EQ_INT(va.n, 2);
  ASSERT_EQ_INT(va.demo[0], 8);
  ASSERT_EQ_INT(va.demo[1], 9);
  ASSERT_EQ_INT(va.samples, 11 + 12);
  ASSERT_EQ_INT(tr.samples + va.samples, d->total);
  ASSERT_CONTAINS(tr.source, "mask/train");
  ASSERT_CONTAINS(va.source, "all but mask/train");
  ds_split_free(&tr);
  ds_split_free(&va);
  /* only mask/valid: training is every other demo */
  s_set_masks(d, NULL, -1, last2, 2);
  ASSERT(ds_split_make(d, 0.5, 7, &tr, &va, err, sizeof(err)) == 0);
  ASSERT_EQ_INT(tr.n, 8);
  ASSERT_EQ_INT(va.n, 2);
  ASSERT_EQ_INT(tr.demo[7], 7);
  ASSERT_CONTAINS(tr.source, "all but mask/valid");
  ASSERT_CONTAINS(va.source, "mask/valid");
  ds_split_free(&tr);
  ds_split_free(&va);
  /* both: a demo in neither (demo_7) is in neither split */
  s_set_masks(d, first8, 7, last2, 2);
  ASSERT(ds_split_make(d, 0.5, 7, &tr, &va, err, sizeof(err)) == 0);
  ASSERT_EQ_INT(tr.n, 7);
  ASSERT_EQ_INT(va.n, 2);
  ASSERT_EQ_INT(tr.samples + va.samples, d->total - 10);
  ds_split_free(&tr);
  ds_split_free(&va);
  /* a lone mask/train of every demo: an empty validation split, not an error */
  s_set_masks(d, all10, 10, NULL, -1);
  ASSERT(ds_split_make(d, 0.5, 7, &tr, &va, err, sizeof(err)) == 0);
  ASSERT_EQ_INT(tr.n, 10);
  ASSERT_EQ_INT(va.n, 0);
  ASSERT_EQ_INT(va.samples, 0);
  ds_split_free(&tr);
  ds_split_free(&va);
  /* a lone mask/valid of every demo leaves nothing to train on */
  s_set_masks(d, NULL, -1, all10, 10);
  ASSERT(ds_split_make(d, 0.5, 7, &tr, &va, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "training split is empty");
  /* overlapping masks name the demo in both */
  s_set_masks(d, first8, 8, first8 + 6, 2);
  ASSERT(ds_split_make(d, 0.5, 7, &tr, &va, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "demo_6 is in both mask/train and mask/valid");
  /* a mask naming a missing demo, alone or with the other, or a demo twice */
  const int missing[2] = {3, 42}, twice[2] = {4, 4};
  for (int c = 0; c < 4; c++) {
    if (c == 0) s_set_masks(d, missing, 2, NULL, -1);
    if (c == 1) s_set_masks(d, NULL, -1, missing, 2);
    if (c == 2) s_set_masks(d, first8, 2, missing, 2);
    if (c == 3) s_set_masks(d, twice, 2, NULL, -1);
    ASSERT(ds_split_make(d, 0.5, 7, &tr, &va, err, sizeof(err)) == -1);
    ASSERT_CONTAINS(err, c == 3 ? "demo_4 twice" : "names demo_42, which the file does not have");
    ASSERT_CONTAINS(err, c == 0 || c == 3 ? "mask/train" : "mask/valid");
  }
  /* no masks: the seeded split */
  s_set_masks(d, NULL, -1, NULL, -1);
  ASSERT(ds_split_make(d, 0.2, 7, &tr, &va, err, sizeof(err)) == 0);
  ASSERT_EQ_INT(va.n, 2);
  ASSERT_CONTAINS(va.source, "seeded");
  ds_split_free(&tr);
  ds_split_free(&va);
  ds_dataset_free(d);
  return 0;
}

TEST(normalization) {
  /* 3 columns: a range, a constant, a negative range */
  float x[4 * 3] = {0, 5, -1, 2, 5, -3, 4, 5, -2, 1, 5, -1};
  fc_norm n;
  char err[256];
  ASSERT(fc_norm_fit_rows(&n, FC_NORM_MINMAX, x, 4, 3, err, sizeof(err)) == 0);
  float y[12];
  memcpy(y, x, sizeof(x));
  fc_norm_apply(&n, y, 4);
  ASSERT_NEAR(y[0], -1, 1e-6); /* min -> -1 */
  ASSERT_NEAR(y[6], 1, 1e-6);  /* max -> +1 */
  for (int r = 0; r < 4; r++) {
    ASSERT_NEAR(y[r * 3 + 1], 0, 0); /* constant -> 0, no division by zero */
    ASSERT(y[r * 3 + 2] >= -1 - 1e-6 && y[r * 3 + 2] <= 1 + 1e-6);
  }
  fc_norm_invert(&n, y, 4);
  for (int i = 0; i < 12; i++) ASSERT_NEAR(y[i], x[i], 1e-6);
  /* a floor on the range: columns 0 (range 4) and 2 (range 2) are scaled as
   * if their range were 8, around their centres; the constant column is not */
  fc_norm f = n;
  fc_norm_set_min_range(&f, 8.0);
  memcpy(y, x, sizeof(x));
  fc_norm_apply(&f, y, 4);
  ASSERT_NEAR(y[0], -0.5, 1e-6); /* (0 - 2) * 2 / 8 */
  ASSERT_NEAR(y[6], 0.5, 1e-6);
  ASSERT_NEAR(y[2], 0.25, 1e-6); /* column 2: centre -2, (-1 + 2) * 2 / 8 */
  for (int r = 0; r < 4; r++) ASSERT_NEAR(y[r * 3 + 1], 0, 0); /* constant: unchanged */
  fc_norm_invert(&f, y, 4);
  for (int i = 0; i < 12; i++) ASSERT_NEAR(y[i], x[i], 1e-6);
  f = n;
  fc_norm_set_min_range(&f, 1.0); /* below every range: as fitted */
  ASSERT(memcmp(&f, &n, sizeof(n)) == 0);
  /* mean/std: zero mean, unit variance */
  ASSERT(fc_norm_fit_rows(&n, FC_NORM_MEANSTD, x, 4, 3, err, sizeof(err)) == 0);
  memcpy(y, x, sizeof(x));
  fc_norm_apply(&n, y, 4);
  double s = 0, ss = 0;
  for (int r = 0; r < 4; r++) {
    s += y[r * 3];
    ss += y[r * 3] * y[r * 3];
  }
  ASSERT_NEAR(s / 4, 0, 1e-6);
  ASSERT_NEAR(ss / 4, 1, 1e-5);
  ASSERT_NEAR(y[1], 0, 0);
  /* a checkpoint section round trip restores the same transform */
  char path[] = "/tmp/lfp_norm_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  fc_ckpt_writer *w = fc_ckpt_writer_new("test");
  fc_norm_save(&n, w, "norm.obs");
  ASSERT(fc_ckpt_write(w, path, err, sizeof(err)) == 0);
  fc_ckpt_writer_free(w);
  fc_ckpt *ck = fc_ckpt_read(path, "test", err, sizeof(err));
  fc_norm m;
  ASSERT(ck && fc_norm_load(&m, ck, "norm.obs", err, sizeof(err)) == 0);
  ASSERT(memcmp(&m, &n, sizeof(n)) == 0);
  ASSERT(fc_norm_load(&m, ck, "norm.actions", err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "norm.actions");
  fc_ckpt_free(ck);
  unlink(path);
  /* too many dimensions is an error, not an overflow */
  ASSERT(fc_norm_fit_rows(&n, FC_NORM_MINMAX, x, 1, FC_NORM_MAX_DIM + 1, err, sizeof(err)) == -1);
  return 0;
}

/* demo d of length 4 + d: obs "a" (2) = 10 d + t + 0.25 j, actions (3) = d - t + j */
static void s_write_demo(ds_writer *w, int d, char *err, size_t errsz, int *rc) {
  const int T = 4 + d;
  double a[40], na[40], act[60], rew[20], st[40];
  int64_t done[20];
  for (int t = 0; t < T; t++) {
    for (int j = 0; j < 2; j++) {
      a[t * 2 + j] = 10.0 * d + t + 0.25 * j;
      na[t * 2 + j] = 10.0 * d + t + 1 + 0.25 * j;
      st[t * 2 + j] = t * j;
    }
    for (int j = 0; j < 3; j++) act[t * 3 + j] = d - t + j;
    rew[t] = t == T - 1;
    done[t] = t == T - 1;
  }
  ds_obs_data o = {"a", 2, a, na};
  ds_demo_data dd = {.len = T, .action_dim = 3, .actions = act, .rewards = rew, .dones = done, .state_dim = 2,
                     .states = st, .nobs = 1, .obs = &o, .model_file = "<mujoco/>"};
  *rc = ds_writer_add(w, &dd, err, errsz);
}

static int s_check_demos(const char *path, int n) {
  char err[512];
  ds_file *f = ds_open(path, err, sizeof(err));
  ASSERT_MSG(f, "%s", err);
  ASSERT_EQ_INT(ds_file_info(f)->ndemos, n);
  int64_t total = 0;
  for (int d = 0; d < n; d++) total += 4 + d;
  ASSERT_EQ_INT(ds_file_info(f)->total_attr, total);
  const char *keys[] = {"a"};
  ds_dataset *ds = ds_load(f, keys, 1, err, sizeof(err));
  ASSERT_MSG(ds, "%s", err);
  for (int d = 0; d < n; d++) {
    ASSERT_EQ_INT(ds->demos[d].len, 4 + d);
    for (int t = 0; t < 4 + d; t++) {
      int64_t r = ds->demos[d].row + t;
      ASSERT_NEAR(ds->obs[r * 2 + 1], 10.0 * d + t + 0.25, 0);
      ASSERT_NEAR(ds->actions[r * 3 + 2], d - t + 2, 0);
    }
  }
  ds_dataset_free(ds);
  ds_close(f);
  return 0;
}

TEST(writer_reader_round_trip) {
  char path[] = "/tmp/lfp_ds_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  char err[512];
  ds_writer *w = ds_writer_create(path, "{\"env_name\": \"lift\"}", err, sizeof(err));
  ASSERT_MSG(w, "%s", err);
  int rc;
  for (int d = 0; d < 5; d++) {
    s_write_demo(w, d, err, sizeof(err), &rc);
    ASSERT_EQ_INT(rc, d);
  }
  int train[4] = {0, 1, 2, 3}, valid[1] = {4};
  ASSERT(ds_writer_set_mask(w, "train", train, 4, err, sizeof(err)) == 0);
  ASSERT(ds_writer_set_mask(w, "valid", valid, 1, err, sizeof(err)) == 0);
  ASSERT(ds_writer_set_mask(w, "bad", (int[]){7}, 1, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "demo 7");
  /* a demo with a NaN is refused before anything is written */
  double nan_act[3] = {0, NAN, 0};
  ds_demo_data bad = {.len = 1, .action_dim = 3, .actions = nan_act};
  ASSERT(ds_writer_add(w, &bad, err, sizeof(err)) == -1);
  ASSERT_CONTAINS(err, "non-finite");
  ASSERT(ds_writer_close(w, err, sizeof(err)) == 0);
  if (s_check_demos(path, 5)) return 1;
  ds_file *f = ds_open(path, err, sizeof(err));
  const ds_info *in = ds_file_info(f);
  ASSERT(in->env_args && strstr(in->env_args, "lift"));
  /* the full record of a demo: every field back in float64, exactly */
  ds_record *rec = ds_read_record(f, 2, err, sizeof(err));
  ASSERT_MSG(rec, "%s", err);
  ASSERT_EQ_INT(rec->len, 6);
  ASSERT(rec->model_file && !strcmp(rec->model_file, "<mujoco/>"));
  ASSERT(rec->rewards && rec->dones && rec->states && rec->state_dim == 2);
  int dim;
  const double *ra = ds_record_obs(rec, "a", &dim);
  ASSERT(ra && dim == 2 && ds_record_obs(rec, "nope", NULL) == NULL);
  for (int t = 0; t < 6; t++) {
    ASSERT(ra[t * 2 + 1] == 10.0 * 2 + t + 0.25);
    ASSERT(rec->next_obs[0][t * 2] == 10.0 * 2 + t + 1);
    ASSERT(rec->actions[t * 3 + 1] == 2 - t + 1);
    ASSERT(rec->states[t * 2 + 1] == t);
    ASSERT(rec->rewards[t] == (t == 5) && rec->dones[t] == (t == 5));
  }
  ds_record_free(rec);
  ASSERT_EQ_INT(in->nmasks, 2);
  ASSERT_EQ_INT(in->state_dim, 2);
  ASSERT(in->has_next_obs);
  ds_close(f);
  unlink(path);
  return 0;
}

/* a 5-demo file from the writer at path (a mkstemp template) */
static int s_five_demo_file(char *path) {
  int fd = mkstemp(path);
  close(fd);
  char err[512];
  int rc;
  ds_writer *w = ds_writer_create(path, "{\"env_name\": \"lift\"}", err, sizeof(err));
  ASSERT_MSG(w, "%s", err);
  for (int d = 0; d < 5; d++) s_write_demo(w, d, err, sizeof(err), &rc);
  int train[3] = {0, 1, 2};
  ASSERT(ds_writer_set_mask(w, "train", train, 3, err, sizeof(err)) == 0);
  ASSERT(ds_writer_close(w, err, sizeof(err)) == 0);
  return 0;
}

TEST(open_image_reads_like_open) {
  char path[] = "/tmp/lfp_ds_XXXXXX";
  if (s_five_demo_file(path)) return 1;
  FILE *fp = fopen(path, "rb");
  ASSERT(fp);
  static unsigned char bytes[1 << 20];
  const size_t n = fread(bytes, 1, sizeof(bytes), fp);
  fclose(fp);
  ASSERT(n > 0 && n < sizeof(bytes));
  char err[512];
  ds_file *a = ds_open(path, err, sizeof(err));
  ASSERT_MSG(a, "%s", err);
  unlink(path); /* the image needs no file */
  ds_file *b = ds_open_image(bytes, n, "image.hdf5", err, sizeof(err));
  ASSERT_MSG(b, "%s", err);
  const ds_info *ia = ds_file_info(a), *ib = ds_file_info(b);
  ASSERT_EQ_INT(ib->ndemos, ia->ndemos);
  ASSERT_EQ_INT(ib->total, ia->total);
  ASSERT_EQ_INT(ib->action_dim, ia->action_dim);
  ASSERT_EQ_INT(ib->nmasks, 1);
  ASSERT(!strcmp(ib->path, "image.hdf5"));
  const char *keys[] = {"a"};
  ds_dataset *da = ds_load(a, keys, 1, err, sizeof(err)), *db = ds_load(b, keys, 1, err, sizeof(err));
  ASSERT(da && db);
  ASSERT(!memcmp(da->obs, db->obs, (size_t)da->total * da->obs_dim * sizeof(float)));
  ASSERT(!memcmp(da->actions, db->actions, (size_t)da->total * da->action_dim * sizeof(float)));
  ds_record *r = ds_read_record(b, 4, err, sizeof(err));
  ASSERT_MSG(r, "%s", err);
  ASSERT_EQ_INT(r->len, 8);
  ds_record_free(r);
  ds_dataset_free(da);
  ds_dataset_free(db);
  ds_close(a);
  ds_close(b);
  /* bytes that are not HDF5, and an image cut short, are one sentence each */
  ASSERT(!ds_open_image("not hdf5 at all", 15, "text.hdf5", err, sizeof(err)));
  ASSERT_CONTAINS(err, "text.hdf5 is not an HDF5 file");
  ASSERT(!ds_open_image(bytes, n / 2, "half.hdf5", err, sizeof(err)));
  ASSERT_CONTAINS(err, "half.hdf5 is");
  ASSERT(!strchr(err, '\n'));
  return 0;
}

static int s_printed;
static herr_t s_count_print(hid_t stack, void *data) {
  (void)stack;
  ++*(int *)data;
  return 0;
}

TEST(hdf5_error_printing_is_restored) {
  /* the caller's automatic error handler survives every ds_ / ds_writer_ call */
  H5E_auto2_t fn0 = NULL, fn = NULL;
  void *data0 = NULL, *data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &fn0, &data0);
  H5Eset_auto2(H5E_DEFAULT, s_count_print, &s_printed);
  char path[] = "/tmp/lfp_ds_XXXXXX", err[512];
  if (s_five_demo_file(path)) return 1;
  ds_file *f = ds_open(path, err, sizeof(err));
  ASSERT_MSG(f, "%s", err);
  ASSERT(!ds_load(f, (const char *[]){"nope"}, 1, err, sizeof(err)));
  ds_close(f);
  ASSERT(!ds_open("/tmp/lfp_no_such_dir/x.hdf5", err, sizeof(err)));
  ASSERT(!ds_writer_create("/tmp/lfp_no_such_dir/x.hdf5", NULL, err, sizeof(err)));
  FILE *fp = fopen(path, "r+b"); /* damage the file's superblock: H5Fopen fails */
  fseek(fp, 9, SEEK_SET);
  fputc(0x7f, fp);
  fclose(fp);
  ASSERT(!ds_open(path, err, sizeof(err)));
  unlink(path);
  ASSERT_EQ_INT(s_printed, 0); /* nothing printed inside lfp's calls */
  H5Eget_auto2(H5E_DEFAULT, &fn, &data);
  ASSERT(fn == s_count_print && data == &s_printed);
  /* and it still runs on the caller's own failures */
  ASSERT(H5Fopen("/tmp/lfp_no_such_dir/x.hdf5", H5F_ACC_RDONLY, H5P_DEFAULT) < 0);
  ASSERT(s_printed > 0);
  H5Eset_auto2(H5E_DEFAULT, fn0, data0);
  return 0;
}

/* the child kills itself right after dataset number `at` of demo 3 */
typedef struct {
  int at, seen;
} s_kill_ctx;

static void s_kill_hook(void *ctx, int demo, const char *dataset) {
  (void)dataset;
  s_kill_ctx *k = ctx;
  if (demo == 3 && ++k->seen == k->at) raise(SIGKILL);
}

TEST(writer_killed_mid_demo_keeps_reported_demos) {
  /* demo 3 writes 6 datasets (actions, states, rewards, dones, obs/a,
   * next_obs/a); die after each of them in turn, and before the flush */
  for (int at = 1; at <= 6; at++) {
    char path[] = "/tmp/lfp_kill_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
      char err[512];
      int rc;
      ds_writer *w = ds_writer_create(path, "{}", err, sizeof(err));
      if (!w) _exit(3);
      s_kill_ctx k = {at, 0};
      ds_writer_on_dataset(w, s_kill_hook, &k);
      for (int d = 0; d < 5; d++) {
        s_write_demo(w, d, err, sizeof(err), &rc);
        if (rc != d) _exit(4);
      }
      _exit(5); /* never reached: killed in demo 3 */
    }
    int status;
    waitpid(pid, &status, 0);
    ASSERT_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
    /* demos 0-2 were reported written: complete and readable; demo 3 absent */
    if (s_check_demos(path, 3)) return 1;
    unlink(path);
  }
  return 0;
}

/* ---------- normalization statistics: variance without cancellation ---------- */

TEST(std_of_large_offset_values_is_accurate) {
  /* 10^5 float values 10^4 + u, u uniform on 21 levels in [-0.01, 0.01]:
   * E[x^2] - mean^2 cancels 8 of double's 16 digits (the old fit gave std 0,
   * a "constant" dimension); Welford matches a two-pass reference */
  const int rows = 100000;
  float *x = malloc(sizeof(float) * rows);
  for (int i = 0; i < rows; i++) x[i] = (float)(1e4 + 0.001 * (double)((i * 7) % 21 - 10));
  double mean = 0, m2 = 0;
  for (int i = 0; i < rows; i++) mean += x[i];
  mean /= rows;
  for (int i = 0; i < rows; i++) m2 += (x[i] - mean) * (x[i] - mean);
  const double sd = sqrt(m2 / rows);
  fc_norm n;
  char err[256];
  ASSERT(fc_norm_fit_rows(&n, FC_NORM_MEANSTD, x, rows, 1, err, sizeof(err)) == 0);
  ASSERT_MSG(fabs(n.std[0] - sd) <= 1e-3 * sd, "std %.9g, two-pass %.9g", (double)n.std[0], sd);
  ASSERT_NEAR(n.mean[0], mean, 1e-3);
  ASSERT_NEAR(n.scale[0], 1.0 / sd, 1e-3 / sd); /* normalized, not treated as constant */
  free(x);
  return 0;
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(window_padding_matches_robomimic), TEST_ENTRY(splits_from_masks_or_seed),
      TEST_ENTRY(splits_lone_masks_are_complements), TEST_ENTRY(open_image_reads_like_open),
      TEST_ENTRY(hdf5_error_printing_is_restored),
      TEST_ENTRY(normalization), TEST_ENTRY(writer_reader_round_trip),
      TEST_ENTRY(writer_killed_mid_demo_keeps_reported_demos),
      TEST_ENTRY(std_of_large_offset_values_is_accurate),
  };
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
