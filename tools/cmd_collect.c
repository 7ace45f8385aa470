/* lfp collect: roll out a task's scripted expert and write the episodes as
 * Robomimic-style demonstrations; lfp replay: check that a file's actions
 * reproduce its recorded states. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>

#include "cli.h"
#include "video.h"
#include "dist.h"
#include "commands.h"
#include "ds_file.h"
#include "ds_writer.h"
#include "env.h"
#include "fc_base.h"
#include "pol_rollout.h"

#define S_EVAL_SEED 100000 /* seeds from here on are for evaluation only */

/* one expert episode, recorded */
typedef struct {
  int status; /* 0 pending, 1 done */
  int success, unstable;
  int bad_action;                    /* env_step refused the expert's action: the run ends */
  int contact_full, constraint_full; /* MuJoCo lost contacts / constraints (env_warning_counts) */
  char why[256];                     /* env_step's sentence when unstable or bad_action */
  int side;            /* avoid: -1 left, +1 right, 0 undecided */
  double max_coverage; /* pusht: the best goal coverage reached */
  pol_rollout_traj tr;     /* the record */
} s_episode;

static void s_episode_free(s_episode *e) {
  pol_rollout_traj_free(&e->tr);
  memset(e, 0, sizeof(*e));
}

static void s_run_episode(const env_model *em, env_data *ed, uint64_t seed, s_episode *e) {
  double act[ENV_MAX_ACTION];
  pol_rollout_traj_alloc(&e->tr, em);
  env_reset(em, ed, seed);
  e->max_coverage = env_has_coverage(em) ? env_coverage(em, ed) : 0.0;
  while (!env_done(em, ed)) {
    pol_rollout_traj_pre(&e->tr, em, ed);
    env_expert(em, ed, act);
    const int rc = env_step(em, ed, act, e->why, sizeof(e->why));
    if (rc) {
      e->unstable = rc == ENV_UNSTABLE;
      e->bad_action = rc != ENV_UNSTABLE;
      break;
    }
    pol_rollout_traj_post(&e->tr, em, ed, act);
    if (env_has_coverage(em)) {
      double cov = env_coverage(em, ed);
      e->max_coverage = cov > e->max_coverage ? cov : e->max_coverage;
    }
  }
  e->success = !e->unstable && env_success(em, ed);
  e->side = env_side(em, ed);
  env_warnings w;
  env_warning_counts(ed, &w);
  e->contact_full = w.contact_full;
  e->constraint_full = w.constraint_full;
}

typedef struct {
  const env_model *em;
  s_episode *eps;
  int max_attempts;
  uint64_t seed;
  atomic_int next, stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} s_pool;

static void *s_worker(void *arg) {
  s_pool *p = arg;
  env_data *ed = env_data_new(p->em);
  for (;;) {
    int i = atomic_fetch_add(&p->next, 1);
    if (i >= p->max_attempts || atomic_load(&p->stop)) break;
    s_episode e;
    memset(&e, 0, sizeof(e));
    s_run_episode(p->em, ed, p->seed + (uint64_t)i, &e);
    pthread_mutex_lock(&p->mu);
    p->eps[i] = e;
    p->eps[i].status = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  env_data_free(ed);
  return NULL;
}

/* what rank 0 (or the one process) makes of the attempts, in order */
typedef struct {
  ds_writer *w; /* NULL on ranks > 0 */
  const env_model *em;
  int keep;
  uint64_t seed;
  int written, attempted, successes, unstable, failed_write, contacts_lost, constraints_lost;
  int sides[3]; /* left, undecided, right over attempts */
  double cov_sum;
  cli_progress pb;
} s_tally;

/* attempt i: counted, written when it is a demo, freed */
static void s_take(s_tally *t, s_episode *e, int i, char *err, size_t errsz) {
  if (e->bad_action) { /* a scripted expert's non-finite action is a bug: stop */
    snprintf(err, errsz, "attempt %d (seed %llu): %s", i, (unsigned long long)(t->seed + (uint64_t)i), e->why);
    t->failed_write = 1;
    s_episode_free(e);
    return;
  }
  if (e->unstable)
    fprintf(stderr, "lfp collect: warning: attempt %d (seed %llu) dropped as unstable: %s\n", i,
            (unsigned long long)(t->seed + (uint64_t)i), e->why);
  t->attempted++;
  t->successes += e->success;
  t->unstable += e->unstable;
  t->contacts_lost += e->contact_full > 0;
  t->constraints_lost += e->constraint_full > 0;
  t->sides[e->side + 1]++;
  t->cov_sum += e->max_coverage;
  if (!e->unstable && e->tr.len > 0 && (e->success || t->keep)) {
    if (pol_rollout_traj_write(t->w, t->em, &e->tr, err, errsz)) t->failed_write = 1;
    else t->written++;
  }
  s_episode_free(e);
  char extra[96];
  snprintf(extra, sizeof(extra), "attempts %d, expert success %.1f%%", t->attempted, 100.0 * t->successes / t->attempted);
  cli_progress_update(&t->pb, t->written, extra);
}

/* under mpirun: rounds of attempts, each split among the ranks (every rank
 * on its threads), gathered by rank 0, which takes them in attempt order
 * until it has its demos; a round asks for a quarter more than the demos
 * still missing, so one or two rounds usually do */
static void s_collect_rounds(s_tally *t, int episodes, int max_attempts, int jobs, char *err, size_t errsz) {
  const int K = dist_size();
  int base = 0, done = 0;
  while (!done) {
    const int need = episodes - t->written;
    int A = need + need / 4 + K * jobs;
    if (A > max_attempts - base) A = max_attempts - base;
    int lo, n;
    dist_split(A, &lo, &n);
    s_pool p = {.em = t->em, .max_attempts = n, .seed = t->seed + (uint64_t)base + (uint64_t)lo};
    p.eps = fc_calloc((size_t)(n > 0 ? n : 1), sizeof(s_episode));
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t *th = fc_calloc((size_t)jobs, sizeof(pthread_t));
    for (int j = 0; j < jobs; j++) pthread_create(&th[j], NULL, s_worker, &p);
    for (int j = 0; j < jobs; j++) pthread_join(th[j], NULL);
    free(th);
    /* this rank's episodes as bytes: each its fields, then its trajectory */
    size_t bytes = 0;
    for (int i = 0; i < n; i++) bytes += sizeof(s_episode) + pol_rollout_traj_bytes(&p.eps[i].tr, t->em);
    unsigned char *buf = fc_malloc(bytes ? bytes : 1), *q = buf;
    for (int i = 0; i < n; i++) {
      memcpy(q, &p.eps[i], sizeof(s_episode));
      q += sizeof(s_episode);
      pol_rollout_traj_pack(&p.eps[i].tr, t->em, q);
      q += pol_rollout_traj_bytes(&p.eps[i].tr, t->em);
      s_episode_free(&p.eps[i]);
    }
    free(p.eps);
    void *all;
    size_t total;
    dist_gather(buf, bytes, &all, &total);
    free(buf);
    if (dist_rank() == 0) {
      const unsigned char *r = all, *end = (const unsigned char *)all + total;
      for (int i = 0; i < A && r < end; i++) {
        s_episode e;
        memcpy(&e, r, sizeof(e));
        r += sizeof(e);
        const size_t used = pol_rollout_traj_unpack(&e.tr, t->em, r, (size_t)(end - r));
        FC_ASSERT(used > 0); /* the same binary packed it */
        r += used;
        if (t->written < episodes && !t->failed_write) s_take(t, &e, base + i, err, errsz);
        else s_episode_free(&e);
      }
      free(all);
    }
    base += A;
    int flag = dist_rank() == 0 ? (t->written >= episodes || t->failed_write || base >= max_attempts) : 0;
    dist_bcast(&flag, sizeof(flag));
    done = flag;
  }
}

int cmd_collect(int argc, char **argv) {
  const char *envname = "lift", *out = NULL;
  int episodes = 200, seed = 0, jobs = (int)sysconf(_SC_NPROCESSORS_ONLN), keep = 0, json = 0, max_attempts = 0;
  static const char *tasks[8];
  for (int i = 0; i < env_task_count() && i < 7; i++) tasks[i] = env_task_name(i);
  cli_opt opts[] = {
      {"--env", CLI_CHOICE, &envname, "task", tasks, 0, 0},
      {"--episodes", CLI_INT, &episodes, "demonstrations to write", NULL, 1, 1000000},
      {"--seed", CLI_INT, &seed, "seed of the first attempt (attempt i uses seed + i; 100000 and up are for evaluation)", NULL, 0, S_EVAL_SEED - 1},
      {"--out", CLI_STR, &out, "output HDF5 file (written demo by demo)", NULL, 0, 0},
      {"--jobs", CLI_INT, &jobs, "parallel rollout threads (the file is the same for any number)", NULL, 1, 256},
      {"--keep-failures", CLI_FLAG, &keep, "also write episodes the expert failed", NULL, 0, 0},
      {"--max-attempts", CLI_INT, &max_attempts, "give up after this many attempts (default 4 x episodes)", NULL, 0, 100000000},
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("collect", "lfp collect --env TASK --episodes N --seed S --out FILE.hdf5 [--jobs J] [--keep-failures] [--json]",
                     argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  if (!out) {
    cli_error("collect", "--out FILE.hdf5 is required");
    return 2;
  }
  if (max_attempts <= 0) max_attempts = episodes > 25000000 ? 100000000 : 4 * episodes;
  if (max_attempts < episodes) max_attempts = episodes;
  if ((int64_t)seed + max_attempts > S_EVAL_SEED) {
    cli_error("collect", "seeds %d..%d would reach the evaluation seeds (%d and up); use a smaller --seed or --max-attempts",
              seed, seed + max_attempts - 1, S_EVAL_SEED);
    return 2;
  }
  char err[512];
  env_model *em = env_model_new(envname, err, sizeof(err));
  if (!em) {
    cli_error("collect", "%s", err);
    return 1;
  }
  ds_writer *w = dist_rank() == 0 ? ds_writer_create(out, env_args_json(em), err, sizeof(err)) : NULL;
  if (!w && dist_rank() == 0) {
    cli_error("collect", "%s", err);
    env_model_free(em);
    return 1;
  }

  /* workers roll out attempts in parallel; this thread writes them in
   * attempt order, so the file does not depend on --jobs (nor, under
   * mpirun, on the ranks: they roll out rounds of attempts that rank 0
   * takes in order) */
  s_tally ty = {0};
  ty.w = w;
  ty.em = em;
  ty.keep = keep;
  ty.seed = (uint64_t)seed;
  double t0 = cli_now();
  cli_progress_begin(&ty.pb, "collect", episodes);
  if (dist_size() == 1) {
    s_pool p = {.em = em, .max_attempts = max_attempts, .seed = (uint64_t)seed};
    p.eps = fc_calloc((size_t)max_attempts, sizeof(s_episode));
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t *th = fc_calloc((size_t)jobs, sizeof(pthread_t));
    for (int j = 0; j < jobs; j++) pthread_create(&th[j], NULL, s_worker, &p);
    for (int i = 0; i < max_attempts && ty.written < episodes && !ty.failed_write; i++) {
      pthread_mutex_lock(&p.mu);
      while (!p.eps[i].status) pthread_cond_wait(&p.cv, &p.mu);
      pthread_mutex_unlock(&p.mu);
      s_take(&ty, &p.eps[i], i, err, sizeof(err));
    }
    atomic_store(&p.stop, 1);
    for (int j = 0; j < jobs; j++) pthread_join(th[j], NULL);
    for (int i = 0; i < max_attempts; i++) s_episode_free(&p.eps[i]);
    free(p.eps);
    free(th);
  } else {
    s_collect_rounds(&ty, episodes, max_attempts, jobs, err, sizeof(err));
  }
  cli_progress_end(&ty.pb);
  int written = ty.written, attempted = ty.attempted, successes = ty.successes, unstable = ty.unstable;
  int failed_write = ty.failed_write, contacts_lost = ty.contacts_lost, constraints_lost = ty.constraints_lost;
  int *sides = ty.sides;
  double cov_sum = ty.cov_sum;
  if (dist_rank() != 0) { /* rank 0 writes and reports */
    env_model_free(em);
    return 0;
  }

  /* a seeded 90/10 train/valid split of the written demos */
  if (!failed_write && written > 0) {
    int *perm = fc_malloc(sizeof(int) * (size_t)written), nv = written >= 2 ? (written + 5) / 10 : 0;
    if (written >= 2 && nv == 0) nv = 1;
    fc_rng r;
    fc_rng_seed(&r, (uint64_t)seed);
    fc_rng_permutation(&r, perm, written);
    if (ds_writer_set_mask(w, "valid", perm, nv, err, sizeof(err)) ||
        ds_writer_set_mask(w, "train", perm + nv, written - nv, err, sizeof(err)))
      failed_write = 1;
    free(perm);
  }
  char cerr[512];
  if (ds_writer_close(w, cerr, sizeof(cerr)) && !failed_write) {
    snprintf(err, sizeof(err), "%s", cerr);
    failed_write = 1;
  }
  double secs = cli_now() - t0;
  if (failed_write) {
    cli_error("collect", "%s (the %d demos written before this are complete)", err, written);
    env_model_free(em);
    return 1;
  }
  double rate = attempted ? (double)successes / attempted : 0.0;
  printf("lfp collect: %s, %d demonstrations written to %s (%d attempts, seeds %d..%d)\n", envname, written, out,
         attempted, seed, seed + attempted - 1);
  printf("  expert success %.1f%% (%d/%d), dropped unstable %d, %s, %.1f s on %d threads\n", 100.0 * rate, successes,
         attempted, unstable, keep ? "failures kept" : "failures dropped", secs, jobs);
  printf("  MuJoCo lost contacts (CONTACTFULL) in %d attempts, constraints (CNSTRFULL) in %d (dropped as unstable)\n",
         contacts_lost, constraints_lost);
  if (env_has_side(em))
    printf("  expert sides: %d left, %d right, %d undecided (over attempts)\n", sides[0], sides[2], sides[1]);
  if (env_has_coverage(em))
    printf("  expert mean max coverage %.3f (over attempts)\n", attempted ? cov_sum / attempted : 0.0);
  if (written < episodes)
    printf("  warning: only %d of %d episodes after %d attempts (raise --max-attempts)\n", written, episodes, attempted);
  if (json) {
    cli_json_stdout();
    printf("{\"env\": \"%s\", \"attempted\": %d, \"episodes_written\": %d, \"expert_success_rate\": ", envname, attempted,
           written);
    fc_json_num(stdout, rate);
    printf(", \"dropped_unstable\": %d, \"contact_full\": %d, \"constraint_full\": %d, \"seconds\": ", unstable,
           contacts_lost, constraints_lost);
    fc_json_num(stdout, secs);
    if (env_has_side(em)) printf(", \"left\": %d, \"right\": %d", sides[0], sides[2]);
    if (env_has_coverage(em)) {
      printf(", \"max_coverage_mean\": ");
      fc_json_num(stdout, attempted ? cov_sum / attempted : 0.0);
    }
    printf(", \"jobs\": %d, \"seed\": %d, \"out\": ", jobs, seed);
    fc_json_str(stdout, out);
    printf("}\n");
  }
  env_model_free(em);
  return written == episodes ? 0 : 1;
}

int cmd_replay(int argc, char **argv) {
  const char *path;
  int demo = -1, json = 0;
  video_opts vo;
  video_opts_default(&vo);
  cli_opt opts[] = {
      {"--demo", CLI_INT, &demo, "only this demo (its number k in demo_k); default: every demo", NULL, -1, 1e9},
      VIDEO_CLI_OPTS(vo),
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse_arg("replay", "lfp replay FILE.hdf5 [--demo K] [--video DIR] [--json]", argc, argv, opts,
                         (int)(sizeof(opts) / sizeof(opts[0])), "file", &path);
  if (rc) return rc > 0 ? 0 : 2;
  char err[512];
  ds_file *f = ds_open(path, err, sizeof(err));
  if (!f) {
    cli_error("replay", "%s", err);
    return 1;
  }
  const ds_info *in = ds_file_info(f);
  env_model *em = env_model_from_args(in->env_args, err, sizeof(err));
  if (!em) {
    cli_error("replay", "%s: %s", path, err);
    ds_close(f);
    return 1;
  }
  env_data *ed = env_data_new(em);
  const int S = env_state_dim(em);
  double *state = fc_malloc(sizeof(double) * S), worst = 0.0;
  int replayed = 0, worst_demo = -1, rcode = 0;
  /* with --video: each replayed demo's states, actions and end, to draw */
  video_episode *eps = vo.dir ? fc_calloc((size_t)in->ndemos, sizeof(*eps)) : NULL;
  for (int i = 0; i < in->ndemos; i++) {
    if (demo >= 0 && in->demos[i].index != demo) continue;
    ds_record *r = ds_read_record(f, i, err, sizeof(err));
    if (!r || !r->states || r->state_dim != S || r->action_dim != env_action_dim(em)) {
      if (r) snprintf(err, sizeof(err), "%s: %s has no states of dimension %d for task %s, or %d-D actions", path,
                      in->demos[i].name, S, env_name(em), r->action_dim);
      cli_error("replay", "%s", err);
      ds_record_free(r);
      rcode = 1;
      break;
    }
    /* reset to states[0], then drive the recorded actions and compare */
    env_set_state(em, ed, r->states);
    double dev = 0.0;
    for (int64_t t = 0; t < r->len; t++) {
      env_get_state(em, ed, state);
      for (int j = 0; j < S; j++) {
        double dd = fabs(state[j] - r->states[t * S + j]);
        dev = dd > dev ? dd : dev;
      }
      if (env_step(em, ed, r->actions + t * r->action_dim, err, sizeof(err))) {
        cli_error("replay", "%s: %s", in->demos[i].name, err);
        rcode = 1;
        break;
      }
    }
    printf("  %-10s %4lld steps, largest state deviation %.3g\n", in->demos[i].name, (long long)r->len, dev);
    if (eps && !rcode) {
      video_episode *e = &eps[replayed];
      double *st = fc_malloc(sizeof(double) * (size_t)S * (size_t)r->len), *fin = fc_malloc(sizeof(double) * (size_t)S);
      double *ac = fc_malloc(sizeof(double) * (size_t)r->action_dim * (size_t)r->len);
      memcpy(st, r->states, sizeof(double) * (size_t)S * (size_t)r->len);
      memcpy(ac, r->actions, sizeof(double) * (size_t)r->action_dim * (size_t)r->len);
      env_get_state(em, ed, fin);
      e->states = st;
      e->final_state = fin;
      e->actions = ac;
      e->len = r->len;
      e->success = env_success(em, ed);
      snprintf(e->name, sizeof(e->name), "%s", in->demos[i].name);
    }
    if (dev >= worst) {
      worst = dev;
      worst_demo = i;
    }
    replayed++;
    ds_record_free(r);
    if (rcode) break;
  }
  if (!rcode && replayed == 0) {
    cli_error("replay", "%s has no demo_%d", path, demo);
    rcode = 2;
  }
  video_result vr = {0};
  if (!rcode) {
    printf("lfp replay: %d demos of %s replayed; largest state deviation %.3g (%s)\n", replayed, path, worst,
           worst_demo >= 0 ? in->demos[worst_demo].name : "-");
    if (vo.dir) {
      if (video_render(&vo, em, eps, replayed, &vr, err, sizeof(err))) {
        cli_error("replay", "--video: %s", err);
        rcode = 1;
      } else {
        video_print(stdout, vo.dir, &vr);
      }
    }
  }
  if (!rcode) {
    if (json) {
      cli_json_stdout();
      printf("{\"file\": ");
      fc_json_str(stdout, path);
      printf(", \"env\": \"%s\", \"demos\": %d, \"max_state_deviation\": ", env_name(em), replayed);
      fc_json_num(stdout, worst);
      if (vo.dir) video_json(stdout, &vr);
      printf("}\n");
    }
  }
  video_result_free(&vr);
  for (int i = 0; eps && i < in->ndemos; i++) {
    free((void *)eps[i].states);
    free((void *)eps[i].final_state);
    free((void *)eps[i].actions);
  }
  free(eps);
  free(state);
  env_data_free(ed);
  env_model_free(em);
  ds_close(f);
  return rcode;
}
