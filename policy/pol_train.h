/* pol_train: train a policy on a loaded dataset. Every window of the
 * training split (To normalized observation frames, Tp normalized actions)
 * is materialized once; normalization statistics come from the training
 * split; the flow chain is trained by flowcore's LFM trainer (N blocks for
 * lfm, one for fm, the regression objective for mse), so a run can be
 * checkpointed and resumed bit-identically.
 *
 * Example: a policy from a loaded dataset d (ds_file.h) of a 20 Hz task
 *
 *   int train(const ds_dataset *d, const char *out, char *err, size_t errsz) {
 *     pol_train_config tc;
 *     pol_train_config_default(&tc);
 *     tc.steps = 2000;
 *     pol_trainer *t = pol_trainer_new(d, &tc, d->env_args, 20.0, err, errsz);
 *     if (!t) return -1;
 *     double loss = 0;
 *     while (!pol_trainer_done(t)) loss = pol_trainer_step(t);
 *     printf("last loss %.4f, validation %.4f\n", loss, pol_trainer_valid_loss(t));
 *     int rc = pol_save_file(pol_trainer_policy(t), out, err, errsz);
 *     pol_trainer_free(t);
 *     return rc;
 *   }
 */
#ifndef POL_TRAIN_H
#define POL_TRAIN_H

#include "ds_file.h"
#include "ds_seq.h"
#include "pol.h"

/* Data parallelism (fc_train_config's nshards, shard, reduce): n > 1
 * trainers, one per process, each built from the same data and config and
 * stepped identically, rows of every minibatch split among them and the
 * gradients summed by reduce (lfp train under mpirun: MPI_Allreduce).
 * All zero: one trainer. */
typedef struct {
  int n, shard;
  void (*reduce)(float *buf, size_t n, void *user);
  void *user;
} pol_shards;

typedef struct {
  pol_method method;
  int blocks;            /* lfm: N (fm: 1, mse: 1) */
  int64_t steps;         /* optimizer steps over all blocks */
  int batch;
  uint64_t seed;
  int To, Tp, Ta;
  fc_net_config net;     /* the fm/mse network: its kind and the kind's fields
                            (mlp: net.mlp.width, net.mlp.depth, ...); its
                            sizes are set from the data (fc_net_config_set_io:
                            Tp * action_dim, To * obs_dim, horizon Tp); lfm
                            blocks get the config that matches its parameter
                            count with N blocks (fc_net_match) */
  float lr;
  float gamma_c, gamma_rho;
  fc_sampler sampler;
  int ode_steps;         /* sampler steps over the whole chain (lfm: / N per block; N must divide it;
                            dfm: Euler-Maruyama steps, one evaluation each) */
  float dfm_sigma, dfm_delta; /* dfm: the bridge's noise and the early stop (fc_lfm_config) */
  fc_norm_kind norm;
  double obs_min_range;  /* min-max: observation dimensions scale as if their range were at least this
                            (fc_norm_set_min_range); default 0.01, 0: off */
  double valid_frac;     /* seeded split when the file has no masks */
  /* Action bounds (what inference clips to): by default the training
   * split's action range per dimension; nlow / nhigh values override the
   * lower / upper ones: 0 (none), 1 (the same for every dimension) or one
   * per action dimension. An override must be finite and keep low < high. */
  int action_nlow, action_nhigh;
  double action_low[POL_MAX_ACTION], action_high[POL_MAX_ACTION];
  pol_shards par;        /* data parallelism; zero: none */
  /* Latent flows (Jiao et al., seed 000): latent > 0 pre-trains an
   * autoencoder (fc_ae.h) of the normalized Tp x A chunks to `latent`
   * values on the training windows (ae_steps AdamW steps of the same batch,
   * lr 1e-3, ae_width wide, 2 hidden layers a side, seeded by seed), then
   * trains the flow on their standardized latents (the network sees x of
   * `latent` values, horizon 1); sampling decodes. 0: the flow runs on the
   * chunks themselves. */
  int latent;
  int latent_tokens;     /* a chunk network (transformer, U-Net) reads the latent as this many steps of
                            latent / latent_tokens values (default 1; must divide latent) */
  int ae_width;          /* default 256 */
  int64_t ae_steps;      /* default 4000 */
} pol_train_config;

/* Defaults that work for lfp's tasks (To 2, Tp 16, Ta 8, mlp width 256
 * depth 3, ...). */
void pol_train_config_default(pol_train_config *c);

/* The recipe for a task: the settings lfp train uses for it by default
 * (steps, horizons, network, learning rate), each chosen by an experiment on
 * selection seeds (200000 and up) that pol_train.c's table names. Fields the
 * recipe does not set keep their defaults. Returns 1 when the task has a
 * recipe of its own, 0 when it gets the general defaults (c unchanged). */
int pol_train_recipe(const char *task, pol_train_config *c);
/* After the flags, the recipe's settings for the network they chose, where
 * the flags did not set them (steps_given, tokens_given): a latent run's
 * (c->latent > 0) steps and tokens when it keeps the recipe's network kind;
 * an action-space transformer's steps; c unchanged otherwise. */
void pol_train_recipe_net(const char *task, pol_train_config *c, int steps_given, int tokens_given);
/* One line describing the task's recipe ("pusht: 64000 steps ..."), for
 * --help and the training output; "" for a task without one. */
const char *pol_train_recipe_text(const char *task);

/* The (untrained) flow chain such a config trains for the given dimensions. */
fc_lfm *pol_flow_new(const pol_train_config *c, int obs_dim, int action_dim, char *err, size_t errsz);

typedef struct pol_trainer pol_trainer;

/* keys: obs keys in order (their dims come from d). env_args: the task JSON. */
pol_trainer *pol_trainer_new(const ds_dataset *d, const pol_train_config *c, const char *env_args, double control_hz,
                             char *err, size_t errsz);
void pol_trainer_free(pol_trainer *t);
/* The autoencoder's fit of a latent run (pol_train_config.latent > 0):
 * reconstruction MSE of the normalized training and validation chunks, and
 * its seconds; all NaN / 0 for a run without one. */
fc_ae_fit_result pol_trainer_latent_fit(const pol_trainer *t);
double pol_trainer_step(pol_trainer *t);
int pol_trainer_done(const pol_trainer *t);
int64_t pol_trainer_steps_done(const pol_trainer *t);
int64_t pol_trainer_total_steps(const pol_trainer *t); /* of the whole run */
int pol_trainer_block(const pol_trainer *t);
float pol_trainer_lr(const pol_trainer *t);
/* Validation loss of the block stepped last (fc_lfm_trainer_valid_loss: at a
 * block's end, that block with the weights it keeps; once done, the final
 * model's last block); NAN without a validation split or before a step. */
double pol_trainer_valid_loss(pol_trainer *t);
int64_t pol_trainer_train_windows(const pol_trainer *t);
int64_t pol_trainer_valid_windows(const pol_trainer *t);
const char *pol_trainer_split(const pol_trainer *t);
/* The policy being trained (its weights are final once done). */
const pol_policy *pol_trainer_policy(const pol_trainer *t);
/* Its provenance (pol.h), saved with it and with every checkpoint and
 * snapshot: the command fills it in and sets present; all zero until then. */
pol_origin *pol_trainer_origin(pol_trainer *t);
/* A new policy (free with pol_free) holding the weights the model would be
 * used with now (fc_lfm_trainer_snapshot: the EMA of the block being
 * trained); NULL with a sentence on failure. */
pol_policy *pol_trainer_snapshot(const pol_trainer *t, char *err, size_t errsz);
/* Distillation (lfp distill): a student of a trained lfm or fm teacher
 * whose every block is one Euler step (NFE = the teacher's blocks),
 * trained block by block and independently on the teacher's ODE endpoints
 * (fc_train_config's teacher). The windows of d (loaded with the teacher's
 * observation keys) are normalized with the teacher's statistics; the
 * student keeps the teacher's metadata, statistics and bounds and records
 * its teacher in pol_distill. The returned trainer is stepped, checkpointed,
 * resumed and snapshotted like any other. */
typedef struct {
  int64_t steps;          /* over all blocks */
  int batch;
  uint64_t seed;          /* start points, minibatches, split */
  float lr;
  double valid_frac;      /* seeded split when the file has no masks */
  fc_sampler teacher_sampler; /* the teacher's ODE for the targets */
  int teacher_steps;      /* per block; <= 0: the teacher's own sampler and steps */
  int64_t pairs;          /* teacher pairs per block (fc_train_config's teacher_pairs); 0: fresh every step */
  pol_shards par;         /* data parallelism; zero: none */
} pol_distill_config;

/* 4000 steps (2000 per block of the default LFM), batch 256, seed 0, lr
 * 3e-4, valid_frac 0.1, the teacher's own sampler, fresh pairs every step */
void pol_distill_config_default(pol_distill_config *c);
/* teacher is borrowed (keep it alive while the trainer is); teacher_path is
 * recorded in the student. */
pol_trainer *pol_distiller_new(const ds_dataset *d, const pol_policy *teacher, const char *teacher_path,
                               const pol_distill_config *c, char *err, size_t errsz);

/* Checkpoint: the policy plus the trainer's resume state, atomically. */
int pol_trainer_checkpoint(const pol_trainer *t, const char *path, char *err, size_t errsz);
/* Continue from such a checkpoint (same data and config; else an error). */
int pol_trainer_resume(pol_trainer *t, const char *path, char *err, size_t errsz);

#endif
