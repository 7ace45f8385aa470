/* train_loop: the loop that lfp train and lfp distill share. It resumes from
 * OUT.ckpt when asked, steps the trainer to the end with a progress bar,
 * logs the CSV (step,block,train_loss,valid_loss,lr,train_s,score,success),
 * checkpoints every K steps, runs the --eval-every rollouts on selection
 * seeds and keeps the best policy in OUT.best.lfp (its section
 * "train.selection": u32 version 1, i64 step, f64 score, f64 success rate,
 * i32 episodes, i64 first seed, so that a resumed run goes on from the best
 * so far), and writes the final policy atomically.
 *
 * Example: run a trainer t to the end and report
 *
 *   int finish(pol_trainer *t, const char *out, char *err, size_t errsz) {
 *     train_loop_opts o;
 *     train_loop_opts_default(&o, "train", out, 256);
 *     train_loop_result r;
 *     if (train_loop_run(t, &o, &r, err, errsz)) return -1;
 *     train_loop_print(&o, &r);
 *     return 0;
 *   }
 */
#ifndef LFP_TRAIN_LOOP_H
#define LFP_TRAIN_LOOP_H

#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "env.h"
#include "pol_train.h"

typedef struct {
  const char *cmd;          /* progress label and error prefix: "train", "distill" */
  const char *out;          /* the policy file */
  const char *log_path;     /* NULL: OUT.csv */
  int batch;                /* for samples/s */
  int ckpt_every, resume;
  int eval_every, eval_episodes, eval_jobs; /* eval_every 0: no rollouts */
  int64_t eval_seed;
  env_model *em;            /* the task of the rollouts (borrowed; needed with eval_every) */
} train_loop_opts;

typedef struct {
  double secs;              /* training seconds, rollouts excluded */
  double samples_per_s;
  double train_loss;        /* EMA of the minibatch loss at the end */
  double valid_loss;        /* final validation loss (NAN without a split) */
  int64_t start;            /* step the run began from (> 0 when resumed) */
  int64_t valid_windows;
  char log[4096], best_path[4096];
  double best_score, last_score, last_success, eval_s;
  int64_t best_step;
  int evals;
} train_loop_result;

/* The command-line options both commands take, as cli_opt initializers
 * pointing into a train_loop_opts o (set o's defaults before parsing). */
#define TRAIN_LOOP_CLI_OPTS(o)                                                                                        \
  {"--ckpt-every", CLI_INT, &(o).ckpt_every, "write OUT.ckpt (resume state) every K steps", NULL, 1, 1e9},           \
      {"--log", CLI_STR, &(o).log_path, "CSV of train and validation loss (default OUT.csv)", NULL, 0, 0},            \
      {"--resume", CLI_FLAG, &(o).resume, "continue from OUT.ckpt", NULL, 0, 0},                                      \
      {"--eval-every", CLI_INT, &(o).eval_every,                                                                      \
       "closed-loop rollouts every K steps and at the end (0: none); the best policy is written to OUT.best.lfp",     \
       NULL, 0, 1e9},                                                                                                 \
      {"--eval-episodes", CLI_INT, &(o).eval_episodes, "rollouts per evaluation", NULL, 1, 100000},                   \
      {"--eval-seed", CLI_I64, &(o).eval_seed, "first seed of those rollouts (selection seeds: 200000 and up)", NULL, \
       200000, 2147483647},                                                                                           \
      {"--eval-jobs", CLI_INT, &(o).eval_jobs, "threads for those rollouts (training pauses meanwhile)", NULL, 1, 256}

/* checkpoint every 1000 steps, no resume, no rollouts (20 episodes from
 * seed 200000 on all CPUs once eval_every is set), log OUT.csv */
void train_loop_opts_default(train_loop_opts *o, const char *cmd, const char *out, int batch);
/* OUT.best.lfp for OUT.lfp (or OUT.best.lfp for OUT) */
void train_loop_best_path(const char *out, char *dst, size_t n);
/* t's provenance (pol_origin): the dataset at path (its SHA-256 and demos),
 * the run's seed, steps, batch and lr, and the command line; 0 or -1 with a
 * sentence (the dataset could not be read). */
int train_loop_origin(pol_trainer *t, const char *data, int64_t demos, uint64_t seed, int64_t steps, int batch, float lr,
                      int argc, char **argv, char *err, size_t errsz);
/* Run t to the end and write o->out; 0, or -1 with a sentence in err. */
int train_loop_run(pol_trainer *t, const train_loop_opts *o, train_loop_result *r, char *err, size_t errsz);
/* The summary lines after a run (time, losses, selection, files). */
void train_loop_print(const train_loop_opts *o, const train_loop_result *r);
/* The shared JSON fields, each with its leading ", " ("train_s", ...). */
void train_loop_json(FILE *f, const train_loop_opts *o, const train_loop_result *r);

#endif
