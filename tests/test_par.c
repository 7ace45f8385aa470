/* test_par: flowcore's thread pool (fc_par). Every chunk of every job runs
 * exactly once and fc_par_for returns only after all of them finished, with
 * jobs of fewer chunks than the pool, a pool larger than the cores, and
 * thousands of jobs back to back; a small training run is bit-identical run
 * to run; the pool's size follows the affinity mask and the cgroup quota.
 *
 * fc_par__set_test_delay makes every worker wait between seeing a new job
 * and claiming from it: the window in which the pool before this one read a
 * later job's fields (running a chunk of job g+1 twice, and letting
 * fc_par_for return while a chunk still ran). These cases are also built
 * with ThreadSanitizer by tools/test.sh. */
#define _GNU_SOURCE
#include <dirent.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowcore.h"
#include "test.h"

/* ---------- exactly-once bookkeeping ---------- */

#define S_NMAX 4096

typedef struct {
  atomic_int count[S_NMAX]; /* times item i was processed, over all jobs */
  atomic_int calls;         /* fn calls in the current job */
  atomic_int running;       /* chunks running now */
  size_t n;
  int k;                    /* chunks the job is expected to have */
  atomic_int bad_bounds;    /* a call whose [lo, hi) is not one of the k chunks */
  unsigned spin;            /* busy-wait per item, to keep chunks running a while */
} s_count_job;

static void s_count(void *ctx, size_t lo, size_t hi) {
  s_count_job *j = ctx;
  atomic_fetch_add(&j->running, 1);
  atomic_fetch_add(&j->calls, 1);
  int ok = 0;
  for (int i = 0; i < j->k; i++) {
    size_t a, b;
    fc_par_chunk(j->n, j->k, i, &a, &b);
    if (a == lo && b == hi) ok = 1;
  }
  if (!ok) atomic_fetch_add(&j->bad_bounds, 1);
  for (size_t i = lo; i < hi; i++) {
    for (volatile unsigned s = 0; s < j->spin; s = s + 1) {
    }
    atomic_fetch_add_explicit(&j->count[i], 1, memory_order_relaxed);
  }
  atomic_fetch_sub(&j->running, 1);
}

/* run `jobs` jobs of sizes/grains cycling through sizes[] (items each done
 * once per job); check after each return that every item of the job was done
 * exactly once more, that no chunk is still running, and that each call was
 * one of the job's chunks */
static int s_run_jobs(int jobs, const size_t *sizes, const size_t *grains, int nsizes, unsigned spin) {
  static s_count_job j;
  memset(&j, 0, sizeof(j));
  j.spin = spin;
  static int expect[S_NMAX];
  memset(expect, 0, sizeof(expect));
  const int threads = fc_threads();
  for (int it = 0; it < jobs; it++) {
    const size_t n = sizes[it % nsizes], grain = grains[it % nsizes];
    size_t kk = n / grain;
    j.n = n;
    j.k = kk < 2 ? 1 : kk < (size_t)threads ? (int)kk : threads;
    atomic_store(&j.calls, 0);
    fc_par_for(n, grain, s_count, &j);
    ASSERT_EQ_INT(atomic_load(&j.running), 0);
    ASSERT_EQ_INT(atomic_load(&j.bad_bounds), 0);
    for (size_t i = 0; i < n; i++) {
      expect[i]++;
      ASSERT_MSG(atomic_load(&j.count[i]) == expect[i], "job %d (n %zu, %d chunks): item %zu processed %d times, not %d",
                 it, n, j.k, i, atomic_load(&j.count[i]) - expect[i] + 1, 1);
    }
    for (size_t i = n; i < S_NMAX; i++) ASSERT_EQ_INT(atomic_load(&j.count[i]), expect[i]);
    int nonempty = 0;
    for (int c = 0; c < j.k; c++) {
      size_t a, b;
      fc_par_chunk(n, j.k, c, &a, &b);
      nonempty += a < b;
    }
    ASSERT_EQ_INT(atomic_load(&j.calls), nonempty);
  }
  return 0;
}

TEST(jobs_with_fewer_chunks_than_the_pool) {
  /* a pool of 4; jobs of 2, 4, 3 and 1 chunks in turn, so that workers left
   * out of one job see the next one being published; workers delayed between
   * seeing a job and claiming from it */
  fc_par_init(4);
  ASSERT_EQ_INT(fc_threads(), 4);
  fc_par__set_test_delay(200);
  const size_t sizes[] = {64, 256, 192, 48, 1000}, grains[] = {32, 64, 64, 32, 250};
  int rc = s_run_jobs(400, sizes, grains, 5, 50);
  fc_par__set_test_delay(0);
  return rc;
}

/* threads of this process (/proc/self/task) */
static int s_task_count(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

TEST(pool_of_8_from_fc_threads_env) {
  /* without fc_par_init, flowcore runs on its caller's thread and starts
   * none (a program that embeds it keeps its threads to itself) */
  const int before = s_task_count(); /* OpenBLAS may start its own threads when it loads */
  setenv("FC_THREADS", "8", 1);
  ASSERT_EQ_INT(fc_threads(), 1);
  const size_t one[] = {4096}, g16[] = {16};
  if (s_run_jobs(10, one, g16, 1, 1)) return 1;
  ASSERT_EQ_INT(s_task_count(), before);
  /* FC_THREADS=8 when fc_par_init sizes the pool, on a machine that may
   * have fewer cores: 8 chunks per job, all exactly once */
  fc_par_init(0);
  ASSERT_EQ_INT(fc_threads(), 8);
  ASSERT(s_task_count() >= before + 7); /* 7 workers and the caller */
  fc_par__set_test_delay(100);
  const size_t sizes[] = {4096, 128, 1024, 512}, grains[] = {16, 16, 256, 128};
  int rc = s_run_jobs(300, sizes, grains, 4, 20);
  fc_par__set_test_delay(0);
  return rc;
}

TEST(thousands_of_tiny_jobs_back_to_back) {
  /* 20000 jobs of a few items each, no delay, chunk counts varying from job
   * to job, on a pool twice the cores (8 threads: pinned or not, workers get
   * preempted anywhere) */
  fc_par_init(8);
  const size_t sizes[] = {32, 48, 128, 96, 256, 16, 64}, grains[] = {16, 16, 16, 32, 16, 16, 8};
  int rc = s_run_jobs(20000, sizes, grains, 7, 0);
  if (rc) return rc;
  /* and with the worker delay: late workers find their chunk taken or the
   * next job live, never a stale one */
  fc_par__set_test_delay(20);
  rc = s_run_jobs(2000, sizes, grains, 7, 0);
  fc_par__set_test_delay(0);
  return rc;
}

typedef struct {
  atomic_int count[1024];
} s_nest_job;

static void s_nest_inner(void *ctx, size_t lo, size_t hi) {
  s_nest_job *j = ctx;
  for (size_t i = lo; i < hi; i++) atomic_fetch_add(&j->count[i], 1);
}

static void s_nest_outer(void *ctx, size_t lo, size_t hi) {
  /* a nested fc_par_for over the whole range runs on this thread */
  (void)lo;
  (void)hi;
  fc_par_for(1024, 16, s_nest_inner, ctx);
}

TEST(nested_call_runs_on_the_calling_thread) {
  fc_par_init(2);
  static s_nest_job j;
  fc_par_for(64, 16, s_nest_outer, &j); /* 2 outer chunks, each runs the inner loop whole */
  for (int i = 0; i < 1024; i++) ASSERT_EQ_INT(atomic_load(&j.count[i]), 2);
  return 0;
}

/* ---------- a small training run ---------- */

static float *s_train(int threads, unsigned delay_us, size_t *P) {
  /* sizes chosen so that every matmul and the optimizer split: width 256,
   * batch 128 (128 x 256 x 256 MACs per hidden layer), ~200k parameters */
  const int n = 256, D = 16, C = 8;
  fc_par_init(threads);
  fc_par__set_test_delay(delay_us);
  fc_rng r;
  fc_rng_seed(&r, 6);
  float *x = malloc((size_t)n * D * sizeof(float)), *c = malloc((size_t)n * C * sizeof(float));
  fc_rng_normal_fill(&r, x, (size_t)n * D);
  fc_rng_normal_fill(&r, c, (size_t)n * C);
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, D, C);
  lc.nblocks = 2;
  lc.net.mlp.width = 256;
  lc.net.mlp.depth = 2;
  lc.steps = 2;
  fc_lfm *m = fc_lfm_new(&lc, NULL, 0);
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.steps = 24;
  tc.batch = 128;
  tc.seed = 11;
  fc_lfm_trainer *tr = fc_lfm_trainer_new(m, x, c, (size_t)n, &tc, NULL, 0);
  while (!fc_lfm_trainer_done(tr)) fc_lfm_trainer_step(tr);
  fc_lfm_trainer_free(tr);
  *P = fc_lfm_nparams(m);
  float *w = malloc(*P * sizeof(float));
  memcpy(w, m->params, *P * sizeof(float));
  fc_lfm_free(m);
  free(x);
  free(c);
  fc_par__set_test_delay(0);
  return w;
}

TEST(training_is_bit_identical_run_to_run) {
  /* the same seed and thread count twice: the same weights to the bit, also
   * when the workers are late and the caller runs more of the chunks (which
   * thread runs a chunk does not change its arithmetic) */
  size_t P;
  float *a = s_train(4, 0, &P), *b = s_train(4, 0, &P), *d = s_train(4, 300, &P);
  ASSERT(P > 131072); /* the optimizer's elementwise pass splits too */
  int finite = 1;
  for (size_t i = 0; i < P; i++) finite &= isfinite(a[i]) != 0;
  ASSERT(finite);
  ASSERT(memcmp(a, b, P * sizeof(float)) == 0);
  ASSERT(memcmp(a, d, P * sizeof(float)) == 0);
  free(a); free(b); free(d);
  return 0;
}

/* ---------- the pool's size ---------- */

TEST(cpus_follow_the_affinity_mask) {
  cpu_set_t all;
  ASSERT(sched_getaffinity(0, sizeof(all), &all) == 0);
  const int n = CPU_COUNT(&all);
  ASSERT(fc_par_cpus() <= n);
  /* pinned to one CPU: the default pool is one thread, and no quota here is
   * below one */
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &all)) {
      CPU_SET(c, &one);
      break;
    }
  ASSERT(sched_setaffinity(0, sizeof(one), &one) == 0);
  ASSERT_EQ_INT(fc_par_cpus(), 1);
  unsetenv("FC_THREADS");
  fc_par_init(0);
  ASSERT_EQ_INT(fc_threads(), 1);
  ASSERT(sched_setaffinity(0, sizeof(all), &all) == 0);
  return 0;
}

static int s_write(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

TEST(cgroup_quota_lowers_the_cpu_count) {
  char root[64], p[512];
  snprintf(root, sizeof(root), "/tmp/lfp_par_cg_%ld", (long)getpid());
  /* v2: the process in /a/b, a quota of 1.5 cores on /a, none on /a/b */
  snprintf(p, sizeof(p), "mkdir -p %s/a/b %s/v1/cpu,cpuacct/x/y && : > %s/none", root, root, root);
  ASSERT(system(p) == 0);
  snprintf(p, sizeof(p), "%s/cpu.max", root);
  ASSERT(s_write(p, "max 100000\n") == 0);
  snprintf(p, sizeof(p), "%s/a/cpu.max", root);
  ASSERT(s_write(p, "150000 100000\n") == 0);
  snprintf(p, sizeof(p), "%s/a/b/cpu.max", root);
  ASSERT(s_write(p, "max 100000\n") == 0);
  snprintf(p, sizeof(p), "%s/self_v2", root);
  ASSERT(s_write(p, "0::/a/b\n") == 0);
  ASSERT_EQ_INT(fc_par__quota_cpus(root, p), 2);
  /* no quota anywhere: 0 */
  snprintf(p, sizeof(p), "%s/a/cpu.max", root);
  ASSERT(s_write(p, "max 100000\n") == 0);
  snprintf(p, sizeof(p), "%s/self_v2", root);
  ASSERT_EQ_INT(fc_par__quota_cpus(root, p), 0);
  /* v1: cpu,cpuacct controller, 3 cores on /x/y, 4 on /x */
  char v1[128];
  snprintf(v1, sizeof(v1), "%s/v1", root);
  snprintf(p, sizeof(p), "%s/cpu,cpuacct/x/y/cpu.cfs_quota_us", v1);
  ASSERT(s_write(p, "300000\n") == 0);
  snprintf(p, sizeof(p), "%s/cpu,cpuacct/x/y/cpu.cfs_period_us", v1);
  ASSERT(s_write(p, "100000\n") == 0);
  snprintf(p, sizeof(p), "%s/cpu,cpuacct/x/cpu.cfs_quota_us", v1);
  ASSERT(s_write(p, "-1\n") == 0);
  snprintf(p, sizeof(p), "%s/cpu,cpuacct/x/cpu.cfs_period_us", v1);
  ASSERT(s_write(p, "100000\n") == 0);
  snprintf(p, sizeof(p), "%s/self_v1", root);
  ASSERT(s_write(p, "4:memory:/x\n3:cpu,cpuacct:/x/y\n0::/\n") == 0);
  ASSERT_EQ_INT(fc_par__quota_cpus(v1, p), 3);
  /* a cgroup path that does not exist under the mount (a container's view):
   * the mount's own files */
  snprintf(p, sizeof(p), "%s/cpu,cpuacct/cpu.cfs_quota_us", v1);
  ASSERT(s_write(p, "250000\n") == 0);
  snprintf(p, sizeof(p), "%s/cpu,cpuacct/cpu.cfs_period_us", v1);
  ASSERT(s_write(p, "100000\n") == 0);
  snprintf(p, sizeof(p), "%s/self_v1", root);
  ASSERT(s_write(p, "3:cpu,cpuacct:/elsewhere/z\n") == 0);
  ASSERT_EQ_INT(fc_par__quota_cpus(v1, p), 3);
  snprintf(p, sizeof(p), "%s/missing", root);
  ASSERT_EQ_INT(fc_par__quota_cpus(root, p), 0);
  snprintf(p, sizeof(p), "rm -rf %s", root);
  ASSERT(system(p) == 0);
  return 0;
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(pool_of_8_from_fc_threads_env), /* first: it checks the state before the pool starts */
      TEST_ENTRY(jobs_with_fewer_chunks_than_the_pool),
      TEST_ENTRY(thousands_of_tiny_jobs_back_to_back),
      TEST_ENTRY(nested_call_runs_on_the_calling_thread),
      TEST_ENTRY(training_is_bit_identical_run_to_run),
      TEST_ENTRY(cpus_follow_the_affinity_mask),
      TEST_ENTRY(cgroup_quota_lowers_the_cpu_count),
  };
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
