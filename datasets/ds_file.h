/* ds_file: read Robomimic-style HDF5 demonstration files
 * (docs: ../shared/docs/robomimic-hdf5.md) the way robomimic does.
 *
 *   /data                 attrs total (int), env_args (JSON string)
 *     /demo_<k>           attrs num_samples, model_file (optional)
 *       actions (N, A)  rewards (N)  dones (N)  states (N, S)
 *       obs/<key> (N, d)  next_obs/<key> (N, d) (optional)
 *   /mask/<name>          demo names, fixed-width or variable-length strings
 *
 * Demos are listed in integer order (demo_2 before demo_10). Loading reads
 * the chosen low-dim observation keys (concatenated per step, in the order
 * given) and the actions of every demo into memory once, as float32
 * (robomimic's "all" cache mode); float64 and float32 files both load.
 * Every defect gets one sentence naming the file, the demo and the key.
 *
 *   char err[512];
 *   ds_file *f = ds_open("demos.hdf5", err, sizeof err);
 *   const ds_info *info = ds_file_info(f);            // structure, keys, masks
 *   const char *keys[] = {"object", "robot0_eef_pos"};
 *   ds_dataset *d = ds_load(f, keys, 2, err, sizeof err);
 *   // d->obs (d->total, d->obs_dim), d->actions (d->total, d->action_dim)
 *   ds_dataset_free(d);
 *   ds_close(f);
 */
#ifndef DS_FILE_H
#define DS_FILE_H

#include <stddef.h>
#include <stdint.h>

#define DS_NAME_MAX 64

typedef struct {
  char name[DS_NAME_MAX];
  int rank;          /* rank of one step's value: 0 for (N,), 1 for (N, d), ... */
  int64_t shape[4];  /* one step's shape */
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
 * ranks). NULL with a sentence in err on any defect. */
ds_file *ds_open(const char *path, char *err, size_t errsz);
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
