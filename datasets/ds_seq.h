/* ds_seq: sequence windows, train/validation splits and minibatches over a
 * loaded dataset, with robomimic's SequenceDataset semantics.
 *
 * The sample at step t of a demo of length T is To observation frames ending
 * at t and Tp actions starting at t; out-of-range frames repeat the first or
 * last frame (begin pad max(0, To-1-t), end pad max(0, t+Tp-T)), so every
 * step of every demo is a sample.
 *
 * Example: one minibatch of 256 windows (To 2, Tp 16) from a loaded dataset
 * d, with statistics fitted on its training split
 *
 *   int batch(const ds_dataset *d, char *err, size_t errsz) {
 *     ds_split train, valid;
 *     if (ds_split_make(d, 0.1, 0, &train, &valid, err, errsz)) return -1;  // masks, or a seeded split
 *     fc_norm on, an;
 *     int rc = ds_norm_fit(&on, FC_NORM_MINMAX, d, &train, DS_FIELD_OBS, err, errsz) ||
 *              ds_norm_fit(&an, FC_NORM_MINMAX, d, &train, DS_FIELD_ACTIONS, err, errsz) ? -1 : 0;
 *     if (rc == 0) {
 *       float *obs = malloc(sizeof(float) * 256 * 2 * (size_t)d->obs_dim);
 *       float *act = malloc(sizeof(float) * 256 * 16 * (size_t)d->action_dim);
 *       fc_rng rng;
 *       fc_rng_seed(&rng, 0);
 *       ds_batch(d, &train, &rng, 256, 2, 16, &on, &an, obs, act);  // normalized windows
 *       free(obs);
 *       free(act);
 *     }
 *     ds_split_free(&train);
 *     ds_split_free(&valid);
 *     return rc;
 *   }
 */
#ifndef DS_SEQ_H
#define DS_SEQ_H

#include <stddef.h>
#include <stdint.h>

#include "ds_file.h"
#include "fc_norm.h"
#include "fc_rng.h"

typedef struct {
  int n;             /* demos in the split */
  int *demo;         /* their indices in d->demos, ascending */
  int64_t samples;   /* windows: the sum of their lengths */
  int64_t *start;    /* (n + 1) prefix sums: sample k lies in demo i when start[i] <= k < start[i+1] */
  char source[64];   /* "mask/train", "seeded 10% split (seed 0)", ... */
} ds_split;

/* Train and validation splits from mask/train and mask/valid when the file
 * has them, else a seeded split holding out valid_frac of the demos (at least
 * one when there are two or more demos and valid_frac > 0). A lone mask's
 * complement is the other split ("all but mask/train"); with both masks a
 * demo in neither is in neither split. A mask naming a demo the file lacks
 * or a demo twice, a demo in both masks, or an empty training split is an
 * error (-1 and a sentence). */
int ds_split_make(const ds_dataset *d, double valid_frac, uint64_t seed, ds_split *train, ds_split *valid,
                  char *err, size_t errsz);
void ds_split_free(ds_split *s);

/* The window of step t of demo `demo`: obs (To, obs_dim), act (Tp, action_dim). */
void ds_window(const ds_dataset *d, int demo, int64_t t, int To, int Tp, float *obs, float *act);
/* Sample k of the split -> (demo index, step). */
void ds_split_locate(const ds_split *s, int64_t k, int *demo, int64_t *t);

/* Normalization statistics (fc_norm.h) of every step of the split's demos,
 * observations or actions. 0, or -1 when the dimension exceeds
 * FC_NORM_MAX_DIM or the split is empty. */
typedef enum { DS_FIELD_OBS = 0, DS_FIELD_ACTIONS = 1 } ds_field;
int ds_norm_fit(fc_norm *n, fc_norm_kind kind, const ds_dataset *d, const ds_split *s, ds_field field, char *err,
                size_t errsz);

/* B windows drawn uniformly with replacement from the split with rng,
 * normalized when the norms are not NULL: obs (B, To * obs_dim), act (B, Tp * A). */
void ds_batch(const ds_dataset *d, const ds_split *s, fc_rng *rng, int B, int To, int Tp,
              const fc_norm *obs_norm, const fc_norm *act_norm, float *obs, float *act);
/* Every window of the split, in order (for trainers that cache their inputs). */
void ds_windows_all(const ds_dataset *d, const ds_split *s, int To, int Tp, const fc_norm *obs_norm,
                    const fc_norm *act_norm, float *obs, float *act);

#endif
