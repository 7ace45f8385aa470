/* train_loop: the training loop of lfp train and lfp distill. */
#include "train_loop.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fc_ckpt.h"
#include "dist.h"
#include "pol_rollout.h"

#define S_SELECTION_VERSION 1

void train_loop_opts_default(train_loop_opts *o, const char *cmd, const char *out, int batch) {
  memset(o, 0, sizeof(*o));
  o->cmd = cmd;
  o->out = out;
  o->batch = batch;
  o->ckpt_every = 1000;
  o->eval_episodes = 20;
  o->eval_seed = 200000;
  o->eval_jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
}

void train_loop_best_path(const char *out, char *dst, size_t n) {
  snprintf(dst, n, "%s", out);
  const size_t k = strlen(dst);
  const int ext = k > 4 && !strcmp(dst + k - 4, ".lfp");
  snprintf(dst + (ext ? k - 4 : k), n - (ext ? k - 4 : k), ".best.lfp");
}

/* the best so far of a run being resumed, from OUT.best.lfp (none: -inf) */
static void s_select_resume(const train_loop_opts *o, train_loop_result *r) {
  char err[512];
  fc_ckpt *ck = fc_ckpt_read(r->best_path, "policy", err, sizeof(err));
  if (!ck) return;
  fc_ckpt_cur cur;
  uint32_t v;
  int32_t ep;
  int64_t step, seed;
  double score, succ;
  if (!fc_ckpt_cur_open(&cur, ck, "train.selection", err, sizeof(err)) &&
      !fc_ckpt_cur_version(&cur, S_SELECTION_VERSION, &v) &&
      !fc_ckpt_get_i64(&cur, "step", 0, INT64_MAX, &step) && !fc_ckpt_get_f64(&cur, "score", &score) &&
      !fc_ckpt_get_f64(&cur, "success", &succ) && !fc_ckpt_get_i32(&cur, "episodes", 1, INT32_MAX, &ep) &&
      !fc_ckpt_get_i64(&cur, "seed", 0, INT64_MAX, &seed) && !fc_ckpt_cur_end(&cur) && isfinite(score) &&
      ep == o->eval_episodes && seed == o->eval_seed) {
    r->best_score = score;
    r->best_step = step;
  }
  fc_ckpt_free(ck);
}

/* evaluate the policy as it stands at step s; a new best is written to
 * OUT.best.lfp (atomically); 0 or -1 with err */
static int s_select_run(const train_loop_opts *o, train_loop_result *r, const pol_trainer *t, int64_t s, char *err,
                        size_t errsz) {
  const double t0 = cli_now();
  pol_policy *snap = pol_trainer_snapshot(t, err, errsz);
  if (!snap) return -1;
  pol_rollout_eval ev;
  int rc = pol_rollout_policy(o->cmd, o->em, snap, snap->flow->cfg.sampler, 0, (uint64_t)o->eval_seed, o->eval_episodes,
                          o->eval_jobs, 0, &ev, err, errsz);
  if (rc == 0) {
    r->last_score = ev.stats.mean_score;
    r->last_success = ev.stats.rate;
    r->evals++;
    if (r->last_score > r->best_score) {
      r->best_score = r->last_score;
      r->best_step = s;
      fc_ckpt_writer *w = fc_ckpt_writer_new("policy");
      pol_save(snap, w);
      fc_ckpt_buf b = {0};
      fc_ckpt_put_u32(&b, S_SELECTION_VERSION);
      fc_ckpt_put_i64(&b, s);
      fc_ckpt_put_f64(&b, ev.stats.mean_score);
      fc_ckpt_put_f64(&b, ev.stats.rate);
      fc_ckpt_put_i32(&b, o->eval_episodes);
      fc_ckpt_put_i64(&b, o->eval_seed);
      fc_ckpt_add_buf(w, "train.selection", &b);
      rc = fc_ckpt_write(w, r->best_path, err, errsz);
      fc_ckpt_writer_free(w);
    }
    pol_rollout_eval_free(&ev, o->eval_episodes);
  }
  pol_free(snap);
  r->eval_s += cli_now() - t0;
  return rc ? -1 : 0;
}

int train_loop_origin(pol_trainer *t, const char *data, int64_t demos, uint64_t seed, int64_t steps, int batch, float lr,
                      int argc, char **argv, char *err, size_t errsz) {
  pol_origin *o = pol_trainer_origin(t);
  memset(o, 0, sizeof(*o));
  if (cli_sha256_file(data, o->data_sha256, err, errsz)) return -1;
  snprintf(o->data, sizeof(o->data), "%s", data);
  o->demos = demos;
  o->train_windows = pol_trainer_train_windows(t);
  o->valid_windows = pol_trainer_valid_windows(t);
  o->seed = seed;
  o->steps = steps;
  o->batch = batch;
  o->lr = lr;
  cli_command_line(argc, argv, o->command, sizeof(o->command));
  o->present = 1;
  return 0;
}

int train_loop_run(pol_trainer *t, const train_loop_opts *o, train_loop_result *r, char *err, size_t errsz) {
  memset(r, 0, sizeof(*r));
  r->best_score = -INFINITY;
  r->best_step = -1;
  r->last_score = r->last_success = r->train_loss = r->valid_loss = NAN;
  train_loop_best_path(o->out, r->best_path, sizeof(r->best_path));
  snprintf(r->log, sizeof(r->log), "%s", o->log_path ? o->log_path : o->out);
  if (!o->log_path) strncat(r->log, ".csv", sizeof(r->log) - strlen(r->log) - 1);
  char ckpt[4096];
  snprintf(ckpt, sizeof(ckpt), "%s.ckpt", o->out);
  if (o->resume) {
    if (access(ckpt, R_OK) != 0) return snprintf(err, errsz, "--resume: there is no checkpoint %.400s", ckpt), -1;
    if (pol_trainer_resume(t, ckpt, err, errsz)) return -1;
    if (o->eval_every) s_select_resume(o, r);
  }
  /* under mpirun every rank trains, rank 0 alone writes (log, checkpoints,
   * the policy) and evaluates */
  const int lead = dist_rank() == 0;
  FILE *lg = lead ? fopen(r->log, o->resume ? "a" : "w") : fopen("/dev/null", "w");
  if (!lg) return snprintf(err, errsz, "cannot write the log %.400s", r->log), -1;
  if (!o->resume) fprintf(lg, "step,block,train_loss,valid_loss,lr,train_s,score,success\n");

  cli_progress pb;
  double t0 = cli_now(), ema = NAN;
  r->start = pol_trainer_steps_done(t);
  r->valid_windows = pol_trainer_valid_windows(t);
  cli_progress_begin(&pb, o->cmd, pol_trainer_total_steps(t));
  int rc = -1;
  while (!pol_trainer_done(t)) {
    const int blk = pol_trainer_block(t) + 1; /* the block this step trains, 1-based */
    double loss = pol_trainer_step(t);
    ema = isnan(ema) ? loss : 0.98 * ema + 0.02 * loss;
    int64_t s = pol_trainer_steps_done(t);
    int last = pol_trainer_done(t);
    const double trained = cli_now() - t0 - r->eval_s; /* training time, rollouts excluded */
    int evaluated = 0;
    if (o->eval_every && (s % o->eval_every == 0 || last)) {
      if (lead && s_select_run(o, r, t, s, err, errsz)) goto done;
      evaluated = 1;
    }
    if (s % o->ckpt_every == 0 || last || evaluated) {
      /* the block just stepped (at its end: the weights it keeps); after the
       * last step always, so the final model has a validation loss */
      r->valid_loss = pol_trainer_valid_loss(t);
      fprintf(lg, "%lld,%d,%.6g,%.6g,%.6g,%.6g", (long long)s, blk, ema, r->valid_loss, pol_trainer_lr(t), trained);
      if (evaluated) fprintf(lg, ",%.6g,%.6g\n", r->last_score, r->last_success);
      else fprintf(lg, ",,\n");
      fflush(lg);
      if (dist_size() > 1 && !dist_same_u32(pol_params_crc(pol_trainer_policy(t)))) {
        snprintf(err, errsz, "the ranks' weights differ at step %lld (a data-parallel run must stay in lockstep)",
                 (long long)s);
        goto done;
      }
      if (lead && !last && s % o->ckpt_every == 0 && pol_trainer_checkpoint(t, ckpt, err, errsz)) goto done;
    } else if (s % 100 == 0) {
      fprintf(lg, "%lld,%d,%.6g,,%.6g,%.6g,,\n", (long long)s, blk, ema, pol_trainer_lr(t), trained);
    }
    double el = cli_now() - t0 - r->eval_s;
    char extra[200];
    int n = snprintf(extra, sizeof(extra), "block %d loss %.4f lr %.2e %.0f samples/s", blk, ema, pol_trainer_lr(t),
                     (double)(s - r->start) * o->batch / (el > 0 ? el : 1e-9));
    if (r->evals) snprintf(extra + n, sizeof(extra) - (size_t)n, " score %.3f (best %.3f)", r->last_score, r->best_score);
    cli_progress_update(&pb, s, extra);
  }
  cli_progress_end(&pb);
  r->secs = cli_now() - t0 - r->eval_s;
  r->train_loss = ema;
  r->samples_per_s = (double)(pol_trainer_steps_done(t) - r->start) * o->batch / (r->secs > 0 ? r->secs : 1e-9);
  pol_trainer_origin(t)->train_s = r->secs;
  if (lead && pol_save_file(pol_trainer_policy(t), o->out, err, errsz)) goto done;
  if (lead) unlink(ckpt); /* the run is complete: nothing left to resume */
  rc = 0;
done:
  fclose(lg);
  return rc;
}

void train_loop_print(const train_loop_opts *o, const train_loop_result *r) {
  printf("  %.1f s, %.0f samples/s, final train loss %.4f, ", r->secs, r->samples_per_s, r->train_loss);
  if (isnan(r->valid_loss)) printf("no validation split\n");
  else printf("final validation loss %.4f (last block, %lld windows)\n", r->valid_loss, (long long)r->valid_windows);
  if (o->eval_every)
    printf("  selection: final score %.3f (success %.0f%%), best %.3f at step %lld -> %s; %d evaluations took %.1f s\n",
           r->last_score, 100 * r->last_success, r->best_score, (long long)r->best_step, r->best_path, r->evals, r->eval_s);
  printf("  wrote %s (log %s)\n", o->out, r->log);
}

void train_loop_json(FILE *f, const train_loop_opts *o, const train_loop_result *r) {
  fprintf(f, ", \"train_s\": ");
  fc_json_num(f, r->secs);
  fprintf(f, ", \"train_loss\": ");
  fc_json_num(f, r->train_loss);
  fprintf(f, ", \"valid_loss\": ");
  fc_json_num(f, r->valid_loss);
  if (o->eval_every) {
    fprintf(f, ", \"eval_every\": %d, \"eval_episodes\": %d, \"eval_seed\": %lld, \"eval_s\": ", o->eval_every,
            o->eval_episodes, (long long)o->eval_seed);
    fc_json_num(f, r->eval_s);
    fprintf(f, ", \"final_score\": ");
    fc_json_num(f, r->last_score);
    fprintf(f, ", \"best_score\": ");
    fc_json_num(f, r->best_score);
    fprintf(f, ", \"best_step\": %lld, \"best\": ", (long long)r->best_step);
    fc_json_str(f, r->best_path);
  }
}
