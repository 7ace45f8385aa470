/* fc_flow: flow matching and Local Flow Matching (LFM) on fc_net networks
 * (any kind: fc_net.h).
 *
 * Convention (the LFM authors'): t = 0 is the data side, t = 1 the noise side;
 * a network v(t, x, c) points data -> noise; pushing forward integrates
 * t: 0 -> 1 and generation integrates t: 1 -> 0.
 *
 * An LFM model is a chain of N blocks (sub-flows). Block n (1-based) is
 * trained to carry its inputs x_{n-1} (block 1: the data; block n > 1: the
 * training set pushed forward through the trained block n-1) to an
 * Ornstein-Uhlenbeck step of length gamma_n = c * rho^(n-1) from them; the
 * last block is free: its target is N(0, I). N = 1 is global flow matching,
 * through exactly the same code.
 *
 * Example: learn n samples x (n, D) with conditions c (n, C), then generate
 * 1000 samples for the condition cond (C values)
 *
 *   float *learn(const float *x, const float *c, size_t n, int D, int C, const float *cond) {
 *     char err[256];
 *     fc_lfm_config lc;
 *     fc_lfm_config_default(&lc, D, C);
 *     lc.nblocks = 4;
 *     fc_lfm *model = fc_lfm_new(&lc, err, sizeof err);
 *     if (!model) return fprintf(stderr, "%s\n", err), NULL;
 *     fc_train_config tc;
 *     fc_train_config_default(&tc);
 *     fc_lfm_trainer *tr = fc_lfm_trainer_new(model, x, c, n, &tc, err, sizeof err);
 *     if (!tr) return fprintf(stderr, "%s\n", err), fc_lfm_free(model), NULL;
 *     while (!fc_lfm_trainer_done(tr)) fc_lfm_trainer_step(tr);
 *     fc_lfm_trainer_free(tr);                         // model now holds EMA weights
 *     float *xs = malloc(1000 * (size_t)D * sizeof(float));
 *     float *cs = malloc(1000 * (size_t)(C ? C : 1) * sizeof(float));
 *     for (int i = 0; i < 1000; i++) memcpy(cs + (size_t)i * C, cond, (size_t)C * sizeof(float));
 *     fc_rng rng;
 *     fc_rng_seed(&rng, 1);
 *     fc_rng_normal_fill(&rng, xs, 1000 * (size_t)D);  // z ~ N(0, I)
 *     fc_lfm_ws *ws = fc_lfm_ws_new(model, 1000);
 *     fc_lfm_generate(model, ws, xs, C ? cs : NULL, 1000, lc.sampler, lc.steps);  // xs: samples
 *     fc_lfm_ws_free(ws);
 *     fc_lfm_free(model);
 *     free(cs);
 *     return xs;
 *   }
 */
#ifndef FC_FLOW_H
#define FC_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "fc_net.h"
#include "fc_optim.h"
#include "fc_rng.h"

/* ---------- interpolants and the flow-matching loss ---------- */

typedef enum { FC_INTERP_LINEAR = 0, FC_INTERP_TRIG = 1 } fc_interp;

/* I_t = a(t) x0 + b(t) x1, dI/dt = a'(t) x0 + b'(t) x1.
 * linear: a = 1 - t, b = t.  trig: a = cos(pi t / 2), b = sin(pi t / 2). */
void fc_interp_coef(fc_interp k, double t, double *a, double *b, double *da, double *db);

/* Scratch for the loss, one per thread. */
typedef struct {
  fc_net_ws *net;
  int max_batch;
  float *xt, *target, *v; /* (B, D) each */
} fc_fm_ws;
fc_fm_ws *fc_fm_ws_new(const fc_net_config *cfg, int max_batch);
void fc_fm_ws_free(fc_fm_ws *ws);

/* Flow-matching loss (1 / (B D)) sum_b || v(t_b, I_t, c_b) - dI/dt ||^2 for
 * pairs (x0, x1) (B, D) with times t (B) and conditions c (B, C) or NULL.
 * When grads != NULL it receives dLoss/dparams (overwritten). */
double fc_fm_loss(const fc_net *net, fc_fm_ws *ws, float *grads, fc_interp k, const float *t,
                  const float *x0, const float *x1, const float *c, int B);
/* Diffusion Flow Matching (seed 002, DFM) in this file's convention (t = 0
 * data, t = 1 noise; DFM's own time is 1 - t): the Brownian bridge X_t =
 * (1 - t) x0 + t x1 + sigma sqrt(t (1 - t)) eps between data x0 and noise
 * x1, and the loss (1 / (B D)) sum_b || v(t_b, X_t, c_b) - (X_t - x0) / t_b ||^2,
 * so that v = -(DFM's drift): the drift towards the data is -v. Times t in
 * (0, 1]; eps (B, D) standard normal. sigma = 0 is flow matching with the
 * linear interpolant. */
double fc_dfm_loss(const fc_net *net, fc_fm_ws *ws, float *grads, double sigma, const float *t, const float *x0,
                   const float *x1, const float *eps, const float *c, int B);
double fc_dfm_loss_ref(const fc_net_config *cfg, const double *params, fc_net_ws_ref *ws, double *grads, double sigma,
                       const double *t, const double *x0, const double *x1, const double *eps, const double *c, int B);
/* The regression objective: (1 / (B D)) sum_b || v(0, 0, c_b) - x0_b ||^2. */
double fc_regress_loss(const fc_net *net, fc_fm_ws *ws, float *grads, const float *x0, const float *c, int B);
/* The same in double precision on the reference network (test oracle). */
double fc_fm_loss_ref(const fc_net_config *cfg, const double *params, fc_net_ws_ref *ws,
                      double *grads, fc_interp k, const double *t, const double *x0,
                      const double *x1, const double *c, int B);

/* ---------- fixed-step ODE samplers ---------- */

typedef enum { FC_SAMPLER_EULER = 0, FC_SAMPLER_HEUN = 1, FC_SAMPLER_RK4 = 2 } fc_sampler;

/* v (B, D) = f(t, x (B, D)) */
typedef void (*fc_field_fn)(void *ctx, double t, const float *x, float *v, int B);

typedef struct {
  int max_batch, dim;
  float *k1, *k2, *k3, *k4, *xt; /* (B, D) each */
  float bound;      /* > 0: every point the field is evaluated at, and the state after
                       each step, is clamped to [-bound, bound] (diffusion samplers'
                       clip_sample), so a stiff field cannot overflow the state; 0: off */
  int64_t clamped;  /* values clamped so far */
} fc_ode_ws;
fc_ode_ws *fc_ode_ws_new(int max_batch, int dim);
void fc_ode_ws_free(fc_ode_ws *ws);
/* Integrate dx/dt = f(t, x) from t0 to t1 (either direction) in `steps` equal
 * steps of Euler (order 1), Heun (2) or classical RK4 (4); x is updated in
 * place (and clamped to ws->bound when it is set). */
void fc_ode_integrate(fc_field_fn f, void *ctx, fc_ode_ws *ws, fc_sampler s, float *x, int B,
                      double t0, double t1, int steps);
/* Network evaluations per step: 1, 2, 4. */
int fc_sampler_stages(fc_sampler s);

/* ---------- Local Flow Matching chain ---------- */

typedef enum {
  FC_COUPLING_DEPENDENT = 0,   /* OU step from the same sample (the authors' default) */
  FC_COUPLING_SHUFFLED = 1,    /* OU step from a sample permuted within the batch */
  FC_COUPLING_INDEPENDENT = 2  /* OU step from an independently drawn sample */
} fc_coupling;

typedef enum {
  FC_OBJ_FLOW = 0,      /* flow matching (each block a sub-flow) */
  FC_OBJ_REGRESS = 1,   /* the non-generative baseline: the network maps (t = 0,
                           x = 0, c) straight to the sample, trained on the MSE */
  FC_OBJ_DFM = 2        /* Diffusion Flow Matching (fc_dfm_loss): one block,
                           sampled by Euler-Maruyama from t = 1 to dfm_delta */
} fc_objective;

typedef struct {
  int nblocks;          /* N >= 1; N = 1 is global flow matching */
  fc_net_config net;    /* each block's network (its kind and the kind's config) */
  fc_interp interp;
  float gamma_c, gamma_rho; /* gamma_n = c * rho^(n-1), n = 1..N-1 */
  fc_coupling coupling;
  fc_objective objective; /* FC_OBJ_REGRESS requires nblocks = 1 */
  fc_sampler sampler;   /* default sampler for push-forward and generation
                           (FC_OBJ_DFM: ignored, always Euler-Maruyama) */
  int steps;            /* ODE steps per block (FC_OBJ_DFM: Euler-Maruyama steps) */
  float dfm_sigma;      /* FC_OBJ_DFM: the bridge's noise level, 0..10 */
  float dfm_delta;      /* FC_OBJ_DFM: early stop; training times t in [delta, 1] */
} fc_lfm_config;

typedef struct {
  fc_lfm_config cfg;
  size_t block_params;  /* parameters of one block */
  float *params;        /* nblocks * block_params, owned */
  fc_net *blocks;       /* nblocks views into params */
} fc_lfm;

/* N = 4, the default mlp (fc_net_config_default), linear interpolant,
 * c = 0.2, rho = 1.25, dependent, RK4 with 4 steps per block; for DFM
 * sigma 0.5, delta 0.02. */
void fc_lfm_config_default(fc_lfm_config *cfg, int dx, int dc);
int fc_lfm_config_check(const fc_lfm_config *cfg, char *err, size_t errsz);
/* gamma_n for block n = 1..N-1; the free last block has no gamma (returns 0). */
double fc_lfm_gamma(const fc_lfm_config *cfg, int n);
fc_lfm *fc_lfm_new(const fc_lfm_config *cfg, char *err, size_t errsz);
void fc_lfm_free(fc_lfm *m);
size_t fc_lfm_nparams(const fc_lfm *m);
/* Network evaluations to generate one sample with (s, steps). */
int fc_lfm_nfe(const fc_lfm *m, fc_sampler s, int steps);
/* ODE steps per block when `total` steps are spread over a chain of nblocks
 * (so that chains of any length compare at equal NFE): total / nblocks, or
 * -1 with a sentence naming both numbers when nblocks does not divide total. */
int fc_lfm_steps_per_block(int total, int nblocks, char *err, size_t errsz);

/* Per-caller scratch for pushing and generating (no allocation afterwards). */
typedef struct {
  int max_batch;
  fc_net_ws *net;
  fc_ode_ws *ode;
  float *tbuf;          /* (B) */
} fc_lfm_ws;
fc_lfm_ws *fc_lfm_ws_new(const fc_lfm *m, int max_batch);
void fc_lfm_ws_free(fc_lfm_ws *ws);

/* Integrate block `blk` (0-based) over t: 0 -> 1 (forward = 1, towards noise)
 * or 1 -> 0 (forward = 0, towards data) on x (B, D) in place. Any B: larger
 * batches are processed in slices of ws->max_batch. */
void fc_lfm_push(const fc_lfm *m, fc_lfm_ws *ws, int blk, int forward, float *x, const float *c,
                 int B, fc_sampler s, int steps);
/* Generation: x (B, D) holds z ~ N(0, I) on entry and samples on return;
 * blocks run in reverse order, each t: 1 -> 0. (FC_OBJ_REGRESS: one network
 * evaluation, the input ignored. FC_OBJ_DFM: `steps` Euler-Maruyama steps
 * x <- x - h v(t, x) + sigma sqrt(h) xi from t = 1 to dfm_delta, h = (1 -
 * delta) / steps, xi ~ N(0, I) from rng, which DFM requires; the sampler s
 * is ignored.) */
void fc_lfm_sample(const fc_lfm *m, fc_lfm_ws *ws, float *x, const float *c, int B, fc_sampler s, int steps,
                   fc_rng *rng);
/* Guided generation: real-time chunking's soft-masked inpainting guidance
 * (RTC, Black, Galliker and Levine, arXiv 2506.07339), in this file's time.
 * As fc_lfm_sample for flows (not DFM or the regression), with every
 * evaluation of a block's velocity v replaced by v - w(t) g, where
 *   x_hat = x - t v              the linear interpolant's estimate of the
 *                                block's data side,
 *   e = W (y_k - x_hat)          W (B, D) weights in [0, 1] (1: frozen),
 *   g = e - t (dv/dx)^T e        e through the Jacobian of x_hat (a
 *                                vector-Jacobian product: one backward pass),
 *   w(t) = min(beta, ((1 - t)^2 + t^2) / (t (1 - t)))  the paper's weight,
 * and y_k = y exp(-(gamma_1 + ... + gamma_k)) for block k (0-based): the
 * mean of that block's data side given the data y (B, D), so every block of
 * an LFM chain is pulled towards the same chunk. Scratch comes from gws. */
typedef struct fc_guide_ws fc_guide_ws;
fc_guide_ws *fc_guide_ws_new(const fc_lfm *m, int max_batch);
void fc_guide_ws_free(fc_guide_ws *g);
void fc_lfm_sample_guided(const fc_lfm *m, fc_lfm_ws *ws, fc_guide_ws *gws, float *x, const float *c, int B,
                          fc_sampler s, int steps, const float *y, const float *W, float beta);
/* fc_lfm_sample without a random stream (not for FC_OBJ_DFM). */
void fc_lfm_generate(const fc_lfm *m, fc_lfm_ws *ws, float *x, const float *c, int B,
                     fc_sampler s, int steps);

/* Per-block diagnostics on a sample of inputs x (n, D): push each block's
 * inputs forward, then back, and measure. */
typedef struct {
  double inversion_err; /* mean || x - back(fwd(x)) || */
  double transport;     /* mean || fwd(x) - x || */
} fc_block_diag;
void fc_lfm_diagnose(const fc_lfm *m, fc_lfm_ws *ws, const float *x, const float *c, int n,
                     fc_sampler s, int steps, fc_block_diag *out);

/* ---------- checkpoints (see fc_ckpt.h) ----------
 * Sections (checkpoint format 2; host byte order, see fc_ckpt.h):
 *   <prefix>lfm.config  u32 section version (3), then i32 nblocks, the
 *                       network (fc_net.h: i32 kind, then the kind's fields;
 *                       mlp: i32 dx, dc, width, depth, temb, act, cond), then
 *                       i32 interp, coupling, sampler, steps, objective, then
 *                       f32 gamma_c, gamma_rho; from version 3 on, f32
 *                       dfm_sigma, dfm_delta (earlier versions: 0, no DFM)
 *   <prefix>lfm.params  f32[nblocks * fc_net_nparams(net)], block after block
 *   train.state         u32 section version (1), then i64 block,
 *                       step_in_block, steps_done, perm_pos, nonfinite, n,
 *                       batch, steps, adam_t, has_spare, then u64 seed,
 *                       rng[4], then f64 spare, last_lr
 *   train.perm          i32[n]; train.adam_m, train.adam_v, train.ema
 *                       f32[block_params] each
 * Older files still load, as mlp networks: lfm.config version 1 (lfp up to
 * commit 28aa4df, before the network kinds) is version 2 without the kind; format-1 files (no
 * section versions) hold version 1's fields with lfm.config zero-padded to
 * 16 int32 and 4 floats. Loading bounds every size before allocating: the
 * limits below and the network's (fc_net.h, FC_NET_MAX_*), all enforced by
 * fc_lfm_config_check for every model, then the parameter count
 * (overflow-checked) against the bytes of lfm.params. An unknown network
 * kind is refused as mismatched. */
#define FC_LFM_MAX_BLOCKS 64                /* nblocks */
#define FC_LFM_MAX_WIDTH FC_NET_MAX_WIDTH /* hidden width */
#define FC_LFM_MAX_DIM FC_NET_MAX_DIM     /* dx and dc */
#define FC_LFM_MAX_TEMB FC_NET_MAX_TEMB   /* time-embedding size */

struct fc_ckpt_writer;
struct fc_ckpt;
/* Add sections "<prefix>lfm.config" and "<prefix>lfm.params" to a checkpoint. */
void fc_lfm_save(const fc_lfm *m, struct fc_ckpt_writer *w, const char *prefix);
/* Rebuild a model from those sections; NULL with a sentence in err when they
 * are missing, invalid, out of the bounds above or of the wrong size. */
fc_lfm *fc_lfm_load(const struct fc_ckpt *ck, const char *prefix, char *err, size_t errsz);
/* Whole-file helpers: a checkpoint of kind "lfm" holding one model. */
int fc_lfm_save_file(const fc_lfm *m, const char *path, char *err, size_t errsz);
fc_lfm *fc_lfm_load_file(const char *path, char *err, size_t errsz);

/* ---------- training ---------- */

typedef struct {
  int64_t steps;        /* optimizer steps over all blocks (split evenly) */
  int batch;
  fc_adamw_config opt;  /* schedule restarts for each block */
  int warm_start;       /* initialize block n from block n-1's weights */
  uint64_t seed;
  /* Distillation (the LFM paper's section 5.2): with a teacher, each block
   * of the model becomes a one-step student of the teacher's same block,
   * trained independently of the other students. Block k starts from the
   * teacher's block-k weights; its start points are block k's generation
   * inputs, drawn as in training: the free last block's N(0, I), an earlier
   * block's OU step (fresh noise every minibatch) from the training set
   * pushed forward through the teacher's blocks before it; its target is the
   * teacher block's ODE endpoint (t: 1 -> 0, teacher_sampler with
   * teacher_steps steps) from the same start point, with the same
   * condition. The loss regresses v(1, x1, c) onto x1 - endpoint, so one
   * Euler step (t: 1 -> 0) of the student lands on the teacher's endpoint:
   * sample the student with FC_SAMPLER_EULER, 1 step per block (NFE = N).
   * The model must have the teacher's chain (blocks, network, gamma
   * schedule) and the flow objective; warm_start is ignored. The teacher
   * is read, never written: keep it alive while the trainer is. */
  const fc_lfm *teacher;
  fc_sampler teacher_sampler;
  int teacher_steps;    /* ODE steps per block */
  /* Teacher pairs per block: 0 draws fresh start points and runs the teacher
   * on every minibatch (batch x the teacher's NFE evaluations per step);
   * P > 0 draws a pool of P (start point, condition, endpoint) triples once
   * when the block begins, from a stream of its own (seed and block: a
   * resumed run rebuilds the same pool), and every minibatch samples the
   * pool with replacement. The pool costs P x NFE evaluations per block,
   * whatever the steps; 1 .. 2^24. */
  int64_t teacher_pairs;
  /* Data parallelism (lfp train under mpirun): nshards > 1 trainers, one per
   * process, shard 0 .. nshards - 1, built from the same data and config,
   * step in lockstep. Every shard draws the whole minibatch (indices,
   * noise, times: the same stream as one trainer, a few percent of a step)
   * and evaluates the loss and gradient on its rows only, rows
   * [B s / K, B (s + 1) / K); the gradients, weighted by rows, and the loss
   * are summed across shards by reduce (in place, the same sum on every
   * shard, e.g. one MPI_Allreduce), so every shard takes the same AdamW
   * step and K shards equal one trainer to float rounding. The pushed-
   * forward inputs of LFM's later blocks and distillation's teacher pool
   * are computed a slice per shard and summed likewise. The validation loss
   * is computed whole on every shard. nshards 0 or 1: one trainer, reduce
   * unused. reduce must be called by all shards in the same order: drive
   * the trainers identically (the same steps, validation and checkpoint
   * calls). */
  int nshards, shard;
  void (*reduce)(float *buf, size_t n, void *user);
  void *reduce_user;
} fc_train_config;

/* 10000 steps, batch 256, fc_adamw defaults, warm start on, seed 0, no
 * teacher (teacher_pairs 0). */
void fc_train_config_default(fc_train_config *tc);

typedef struct fc_lfm_trainer fc_lfm_trainer;

/* Train model on n samples x (n, D) with conditions c (n, C) or NULL. The
 * trainer reads x and c (not copied: keep them alive) and writes model's
 * weights; when it is done the model holds each block's EMA weights. */
fc_lfm_trainer *fc_lfm_trainer_new(fc_lfm *model, const float *x, const float *c, size_t n,
                                   const fc_train_config *tc, char *err, size_t errsz);
void fc_lfm_trainer_free(fc_lfm_trainer *tr);
/* One optimizer step on one minibatch; returns its loss. At the end of each
 * block it stores the EMA weights and pushes the training set forward. A
 * non-finite loss skips the update and is counted (fc_lfm_trainer_nonfinite). */
double fc_lfm_trainer_step(fc_lfm_trainer *tr);
int fc_lfm_trainer_done(const fc_lfm_trainer *tr);
int64_t fc_lfm_trainer_steps_done(const fc_lfm_trainer *tr);
int fc_lfm_trainer_block(const fc_lfm_trainer *tr);       /* block being trained, 0-based */
float fc_lfm_trainer_lr(const fc_lfm_trainer *tr);         /* learning rate of the last step */
int64_t fc_lfm_trainer_nonfinite(const fc_lfm_trainer *tr);
/* A validation set (not copied: keep it alive); it is pushed through the
 * finished blocks like the training set. */
void fc_lfm_trainer_set_valid(fc_lfm_trainer *tr, const float *x, const float *c, size_t n);
/* The validation loss of block k = fc_lfm_trainer_valid_block: block k's
 * objective (its OU-step or noise targets, the dependent coupling) on block
 * k's own validation inputs (the set pushed through blocks 0..k-1), with
 * block k's EMA weights; noise and times come from a fixed seed so that
 * values are comparable over time. Which block:
 *   - mid-block (some of block b's steps done): k = b, its running EMA;
 *   - at a boundary (block b finished, b + 1 not begun): k = b, the EMA
 *     weights it finished with, never b + 1's untrained start;
 *   - when done: k = N - 1, the final model's last block.
 * NAN without a validation set or before the first step. The model's other
 * blocks and the training state are not changed. */
double fc_lfm_trainer_valid_loss(fc_lfm_trainer *tr);
int fc_lfm_trainer_valid_block(const fc_lfm_trainer *tr); /* 0-based; -1 before the first step */
/* The model as it would be used now, into dst's parameters (a model of the
 * same config): the finished blocks' weights, the running EMA of the block
 * being trained, and the untrained blocks as they stand. What lfp train
 * --eval-every evaluates; the trainer is not changed. */
void fc_lfm_trainer_snapshot(const fc_lfm_trainer *tr, fc_lfm *dst);

/* Resume state (llm.c keeps it apart from the weights): sections "train.*"
 * with the step, block, RNG, epoch permutation, AdamW moments and EMA. Save
 * the model with fc_lfm_save into the same checkpoint. To resume: load the
 * model (fc_lfm_load), build a trainer on it with the same data and training
 * config, then fc_lfm_trainer_restore; the run then continues bit-identically
 * to one that was never interrupted (same machine and thread count). The
 * inputs of the current block are recomputed from the saved blocks. */
void fc_lfm_trainer_save(const fc_lfm_trainer *tr, struct fc_ckpt_writer *w);
int fc_lfm_trainer_restore(fc_lfm_trainer *tr, const struct fc_ckpt *ck, char *err, size_t errsz);

/* ---------- names ---------- */
const char *fc_interp_name(fc_interp k);
int fc_interp_parse(const char *s);          /* "linear", "trig" */
const char *fc_sampler_name(fc_sampler s);
int fc_sampler_parse(const char *s);         /* "euler", "heun", "rk4" */
const char *fc_coupling_name(fc_coupling c);
int fc_coupling_parse(const char *s);        /* "dependent", "shuffled", "independent" */

#endif
