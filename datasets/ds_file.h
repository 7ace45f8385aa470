/* ds_file: read Robomimic-style HDF5 demonstration files the way robomimic
 * does. The format it reads (robomimic's dataset layout, as h5py writes it):
 *
 *   /data                 group; attrs total (integer: sum of demo lengths,
 *                         optional), env_args (JSON string, optional)
 *     /demo_<k>           group, k a decimal integer; attrs num_samples
 *                         (integer, = N, optional), model_file (string, optional)
 *       actions           (N, A) numbers, N >= 1, A the same in every demo
 *       rewards, dones    (N,) or (N, 1) numbers (optional)
 *       states            (N, S) numbers, S the same in every demo (optional)
 *       obs/<key>         (N, d...) numbers: one per observation key (low-dim
 *                         keys are (N, d); images (N, H, W, C) are listed, not loaded)
 *       next_obs/<key>    as obs (optional)
 *   /mask/<name>          (n,) strings, fixed-width or variable-length: demo names
 *                         (robomimic's "train" and "valid" splits, optional)
 *
 * "Numbers" are HDF5 integer or floating-point types of any width and byte
 * order. Demos are listed in integer order (demo_2 before demo_10). Loading
 * reads the chosen low-dim observation keys (concatenated per step, in the
 * order given) and the actions of every demo into memory once, as float32
 * (robomimic's "all" cache mode); float64 and float32 files both load.
 *
 * The file is untrusted: every size it declares is checked against the bounds
 * below before anything is allocated or read, every value must be backed by
 * bytes stored in the file (a dataset whose chunks were never written, or that
 * maps another file through external storage, a virtual layout or an external
 * link, is refused), and every defect gets one sentence naming the file, the
 * demo and the key. Before HDF5 reads a variable-length string, ds_open checks
 * the file's global heaps (where such strings live; libhdf5 1.10.8 trusts
 * their sizes): it maps the file and reads it once, end to end.
 *
 * HDF5's automatic error printing is process-wide state: every ds_ and
 * ds_writer_ call switches it off for its own duration (HDF5's failures
 * become the err sentence) and restores the caller's setting before it
 * returns, so nothing is needed from callers and nothing lasts.
 *
 * Example: two observation keys and the actions of every demo
 *
 *   int load(const char *path) {
 *     char err[512];
 *     ds_file *f = ds_open(path, err, sizeof err);
 *     if (!f) return fprintf(stderr, "%s\n", err), -1;
 *     const ds_info *info = ds_file_info(f);             // structure, keys, masks
 *     printf("%d demos, %lld steps\n", info->ndemos, (long long)info->total);
 *     const char *keys[] = {"object", "robot0_eef_pos"};
 *     ds_dataset *d = ds_load(f, keys, 2, err, sizeof err);
 *     if (!d) fprintf(stderr, "%s\n", err);
 *     else printf("obs (%lld, %d), actions (%lld, %d)\n", (long long)d->total, d->obs_dim,
 *                 (long long)d->total, d->action_dim);
 *     ds_dataset_free(d);
 *     ds_close(f);
 *     return d ? 0 : -1;
 *   }
 */
#ifndef DS_FILE_H
#define DS_FILE_H

#include <stddef.h>
#include <stdint.h>

#define DS_NAME_MAX 64

/* Bounds on what a file may declare; beyond them it is refused with a
 * sentence, before any allocation. */
#define DS_MAX_RANK 4                      /* dims of one step's value (dataset rank <= DS_MAX_RANK + 1) */
#define DS_MAX_ROWS ((int64_t)1 << 31)     /* steps of one demo, and of all demos together */
#define DS_MAX_COLS (1 << 20)              /* values per step of one dataset, and of the loaded keys together */
#define DS_MAX_BYTES ((int64_t)1 << 34)    /* bytes of one array held in memory (16 GiB) */
#define DS_MAX_DEMOS (1 << 20)             /* demos in a file, names in a mask */
#define DS_MAX_STR (1 << 22)               /* bytes of one string (env_args, model_file, a mask entry's width) */
#define DS_MAX_CHUNK ((int64_t)1 << 26)    /* bytes of one HDF5 chunk, as HDF5 decodes it (64 MiB) */
/* Bytes one stored byte may decode to: deflate's largest ratio (1032:1);
 * unfiltered data decodes 1:1. Only deflate, shuffle and fletcher32 are read. */
#define DS_MAX_RATIO 1032

typedef struct {
  char name[DS_NAME_MAX];
  int rank;          /* rank of one step's value: 0 for (N,), 1 for (N, d), ... (<= DS_MAX_RANK) */
  int64_t shape[DS_MAX_RANK];  /* one step's shape */
  int dim;           /* values per step (product of shape) */
  char dtype[16];    /* "float64", "float32", "int64", "uint8", ... */
  int col;           /* first column in ds_dataset.obs (selected keys only) */
} ds_key;

typedef struct {
  char name[DS_NAME_MAX]; /* "demo_7" */
  int64_t index;          /* 7 */
  int64_t len;            /* steps N */
  int64_t row;            /* first row in the loaded arrays */
} ds_demo;

typedef struct {
  char name[DS_NAME_MAX];
  int count;
  char (*demos)[DS_NAME_MAX]; /* demo names in file order */
} ds_mask;

/* What `lfp info` shows: the structure of a file, read without loading the
 * observations. */
typedef struct {
  char *path;
  int ndemos;
  ds_demo *demos;       /* integer order */
  int64_t total;        /* sum of demo lengths */
  int64_t total_attr;   /* /data attribute `total`, -1 when absent */
  int nobs;
  ds_key *obs;          /* obs keys of the first demo, in file order */
  int has_next_obs;
  int action_dim;
  char action_dtype[16];
  int state_dim;        /* 0 when the demos have no states */
  char *env_args;       /* JSON text, NULL when absent */
  int nmasks;
  ds_mask *masks;
} ds_info;

typedef struct ds_file ds_file;

typedef struct {
  char *path;
  int ndemos;
  ds_demo *demos;       /* integer order, with row offsets */
  int64_t total;        /* rows */
  int nkeys;
  ds_key *keys;         /* the selected obs keys, in the order asked, with columns */
  int obs_dim, action_dim;
  float *obs;           /* (total, obs_dim) */
  float *actions;       /* (total, action_dim) */
  char *env_args;       /* JSON text or NULL */
  int nmasks;
  ds_mask *masks;
} ds_dataset;

/* Open a file and check its structure (data group, demos, actions, lengths,
 * ranks, dtypes, attributes, masks; every size against the bounds above).
 * NULL with a sentence in err on any defect. Variable-length masks must be
 * stored contiguously (h5py's default), so that their heap IDs can be checked. */
ds_file *ds_open(const char *path, char *err, size_t errsz);
/* The same from n bytes of a file held in memory (HDF5's file-image API, the
 * core driver without a backing store: nothing on disk is read or written);
 * name labels the messages. The bytes are copied: the caller may free them. */
ds_file *ds_open_image(const void *bytes, size_t n, const char *name, char *err, size_t errsz);
void ds_close(ds_file *f);
const ds_info *ds_file_info(const ds_file *f);

/* Load the named obs keys (concatenated in this order; none: actions only)
 * and the actions of every demo. A missing key is reported with the keys that exist; NaN or Inf
 * anywhere is an error naming the demo and key. */
ds_dataset *ds_load(ds_file *f, const char *const *keys, int nkeys, char *err, size_t errsz);
void ds_dataset_free(ds_dataset *d);
/* Everything stored for one demo, in the file's precision (float64): what
 * replay and conversion tools need beyond the training arrays. */
typedef struct {
  char name[DS_NAME_MAX];
  int64_t len;
  int action_dim, state_dim;   /* state_dim 0: no states */
  double *actions;             /* (len, action_dim) */
  double *rewards;             /* (len) or NULL */
  double *dones;               /* (len) or NULL (robomimic stores integers) */
  double *states;              /* (len, state_dim) or NULL */
  int nobs;
  ds_key *keys;                /* every obs key of this demo */
  double **obs;                /* nobs arrays (len, keys[k].dim) */
  double **next_obs;           /* nobs arrays or NULLs */
  char *model_file;            /* or NULL */
} ds_record;

/* Read demo `demo` (index into the info's integer-ordered list) completely. */
ds_record *ds_read_record(ds_file *f, int demo, char *err, size_t errsz);
void ds_record_free(ds_record *r);
/* The obs key of a record, or NULL. */
const double *ds_record_obs(const ds_record *r, const char *key, int *dim);

/* Index of a mask by name, -1 when absent. */
int ds_mask_find(const ds_mask *masks, int nmasks, const char *name);
/* Index of a demo by name, -1 when absent. */
int ds_demo_find(const ds_demo *demos, int ndemos, const char *name);
/* Split "a,b,c" into at most max names (pointers into buf, which is modified);
 * returns the count, or -1 when there are more than max or a name is empty. */
int ds_split_csv(char *buf, const char **names, int max);

#endif
