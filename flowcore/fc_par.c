/* fc_par: persistent worker threads that help the calling thread through a
 * job's chunks.
 *
 * A job is k fixed chunks (fc_par_chunk). It lives in one 64-bit claim word:
 * k in the top byte, a bit per chunk below, set once the chunk is claimed. A
 * thread runs a chunk only after claiming its bit with a compare-and-swap on
 * that word, and reads the job's fields (fn, ctx, n) only after such a
 * claim: the claim's acquire pairs with the caller's release when it
 * published the job, and the caller does not overwrite the fields until every
 * claimed chunk has reported done. So a chunk runs exactly once, by whoever
 * claims it, and always for the job whose word it claimed from. The caller
 * claims too: it takes chunk 0 first, then any chunk nobody has taken, and it
 * never waits for a worker that has not started, only for chunks already
 * running. Which thread ran a chunk does not change its bounds, so the
 * arithmetic is the same however the chunks were shared.
 *
 * Waiting (workers for a new job, the caller for running chunks) spins for
 * a moment, then yields the core, then sleeps on a futex: nothing spins
 * unboundedly. A pool with more threads than the CPUs it may use (FC_THREADS
 * above the core count, or a process pinned to fewer cores) skips the spin
 * and yields at once, so the thread that has work gets the core. */
#define _GNU_SOURCE
#include "fc_par.h"

#include <cblas.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fc_base.h"

#define S_DEFAULT_MAX 8   /* the default pool: at most this many threads */
#define S_SPIN_NS 100000   /* a waiter spins for 0.1 ms (when the pool fits the CPUs), */
#define S_YIELD_NS 2000000 /* then yields the core until 2 ms have passed, then sleeps */
#define S_KSHIFT 56 /* k in the top byte; chunk bits 0..55 */
#define S_MASK(k) (((uint64_t)1 << (k)) - 1)

static inline void s_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

static void s_futex_wait(atomic_uint *w, unsigned expect) {
  syscall(SYS_futex, (unsigned *)w, FUTEX_WAIT_PRIVATE, expect, NULL, NULL, 0);
}
static void s_futex_wake(atomic_uint *w) {
  syscall(SYS_futex, (unsigned *)w, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static double s_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static struct {
  pthread_mutex_t call; /* one job at a time; guards pool, active, init */
  int pool, blas_set;
  _Atomic int active, started;
  /* the live job: fields, then the claim word that publishes them */
  fc_par_fn fn;
  void *ctx;
  size_t n;
  _Alignas(64) _Atomic uint64_t claim; /* k << 56 | claimed-chunk bits */
  _Alignas(64) atomic_uint gen;        /* bumped per job: what workers wait on */
  atomic_int sleepers;                 /* workers asleep on gen */
  _Alignas(64) atomic_uint done;       /* chunks of the live job that finished */
  atomic_int caller_asleep;
  atomic_uint test_delay_us;
  atomic_uint spin_ns; /* S_SPIN_NS, or 0 when the pool oversubscribes its CPUs */
} S = {.call = PTHREAD_MUTEX_INITIALIZER, .pool = 1, .active = 1};

static _Thread_local int s_in_job; /* this thread is inside a job's chunk (or is a worker) */

/* one step of a wait that began at t0 (ns): spin while under spin_ns, then
 * yield the core; 1 once S_YIELD_NS have passed (time to sleep) */
static int s_backoff(double t0) {
  const double el = s_now_ns() - t0;
  if (el < atomic_load_explicit(&S.spin_ns, memory_order_relaxed)) {
    for (int i = 0; i < 16; i++) s_relax();
    return 0;
  }
  if (el < S_YIELD_NS) {
    sched_yield();
    return 0;
  }
  return 1;
}

void fc_par_chunk(size_t n, int k, int i, size_t *lo, size_t *hi) {
  size_t per = (n + (size_t)k - 1) / (size_t)k;
  per = (per + 15) & ~(size_t)15;
  *lo = per * (size_t)i < n ? per * (size_t)i : n;
  *hi = *lo + per < n ? *lo + per : n;
}

/* Claim and run chunks of the live job: `first` if it is free, then any
 * free one. Returns after the job has no free chunk left. */
static void s_help(int first) {
  uint64_t w = atomic_load_explicit(&S.claim, memory_order_relaxed);
  for (;;) {
    const int k = (int)(w >> S_KSHIFT);
    const uint64_t freebits = ~w & S_MASK(k);
    if (!freebits) return;
    int i = first < k && (freebits >> first & 1) ? first : __builtin_ctzll(freebits);
    if (!atomic_compare_exchange_weak_explicit(&S.claim, &w, w | (uint64_t)1 << i, memory_order_acquire,
                                               memory_order_relaxed))
      continue; /* w now holds the current word */
    /* chunk i of the job published with word w is ours: its fields stay put
     * until we report it done */
    size_t lo, hi;
    fc_par_chunk(S.n, k, i, &lo, &hi);
    if (lo < hi) S.fn(S.ctx, lo, hi);
    if (atomic_fetch_add_explicit(&S.done, 1, memory_order_seq_cst) + 1 == (unsigned)k &&
        atomic_load_explicit(&S.caller_asleep, memory_order_seq_cst))
      s_futex_wake(&S.done);
    w = atomic_load_explicit(&S.claim, memory_order_relaxed);
  }
}

static void *s_worker(void *arg) {
  const int id = (int)(size_t)arg;
  s_in_job = 1; /* a job's fn that calls fc_par_for on a worker runs it inline */
  unsigned seen = atomic_load_explicit(&S.gen, memory_order_acquire);
  for (;;) {
    unsigned g;
    /* wait for the next job: spin, yield, then sleep */
    double t0 = -1;
    while ((g = atomic_load_explicit(&S.gen, memory_order_acquire)) == seen) {
      if (t0 < 0) t0 = s_now_ns();
      if (!s_backoff(t0)) continue;
      atomic_fetch_add_explicit(&S.sleepers, 1, memory_order_seq_cst);
      if (atomic_load_explicit(&S.gen, memory_order_seq_cst) == seen) s_futex_wait(&S.gen, seen);
      atomic_fetch_sub_explicit(&S.sleepers, 1, memory_order_seq_cst);
      t0 = -1;
    }
    seen = g;
    unsigned d = atomic_load_explicit(&S.test_delay_us, memory_order_relaxed);
    if (d) { /* tests: widen the window between seeing a job and claiming from it */
      double t1 = s_now_ns();
      while (s_now_ns() - t1 < d * 1e3) s_relax();
    }
    s_help(id);
  }
  return NULL;
}

/* ---------- how many CPUs this process may use ---------- */

/* cores one cgroup directory's quota allows (0: no limit or no file) */
static int s_quota_dir(const char *dir) {
  char path[4400], buf[128];
  long long quota = -1, period = 0;
  snprintf(path, sizeof(path), "%s/cpu.max", dir);
  FILE *f = fopen(path, "r");
  if (f) { /* v2: "max 100000" or "200000 100000" */
    if (fgets(buf, sizeof(buf), f) && strncmp(buf, "max", 3) != 0) sscanf(buf, "%lld %lld", &quota, &period);
    fclose(f);
  } else {
    snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
    f = fopen(path, "r");
    if (!f) return 0;
    if (!fgets(buf, sizeof(buf), f) || sscanf(buf, "%lld", &quota) != 1) quota = -1;
    fclose(f);
    snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
    f = fopen(path, "r");
    if (!f) return 0;
    if (!fgets(buf, sizeof(buf), f) || sscanf(buf, "%lld", &period) != 1) period = 0;
    fclose(f);
  }
  if (quota <= 0 || period <= 0) return 0;
  long long c = (quota + period - 1) / period;
  return c > 4096 ? 4096 : (int)c;
}

int fc_par__quota_cpus(const char *root, const char *proc_cgroup) {
  /* the tightest quota on the way from this process's cgroup up to the
   * root, for the v2 hierarchy ("0::/path") and v1's cpu controller
   * ("N:cpu,cpuacct:/path"); inside a container the path may not exist
   * under the mount, which is then the process's own cgroup */
  char line[4096];
  int best = 0;
  FILE *f = fopen(proc_cgroup, "r");
  if (!f) return 0;
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = 0;
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c2 = 0;
    const char *ctrl = c1 + 1, *cg = c2 + 1;
    char base[4096];
    if (!*ctrl) {
      snprintf(base, sizeof(base), "%s", root);
    } else {
      int has_cpu = 0;
      char list[256];
      snprintf(list, sizeof(list), "%s", ctrl);
      for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (!strcmp(t, "cpu")) has_cpu = 1;
      if (!has_cpu) continue;
      snprintf(base, sizeof(base), "%s/%s", root, ctrl);
      if (access(base, F_OK) != 0) snprintf(base, sizeof(base), "%s/cpu", root);
    }
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s%s", base, cg);
    if (access(dir, F_OK) != 0) snprintf(dir, sizeof(dir), "%s", base);
    /* walk up to the mount */
    size_t bl = strlen(base);
    for (;;) {
      int q = s_quota_dir(dir);
      if (q > 0 && (best == 0 || q < best)) best = q;
      char *slash = strrchr(dir, '/');
      if (!slash || (size_t)(slash - dir) < bl) break;
      *slash = 0;
    }
  }
  fclose(f);
  return best;
}

int fc_par_cpus(void) {
  int n = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  if (n < 1) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (int)c : 1;
  }
  int q = fc_par__quota_cpus("/sys/fs/cgroup", "/proc/self/cgroup");
  if (q > 0 && q < n) n = q;
  return n;
}

/* ---------- the pool ---------- */

static int s_default_size(void) {
  const char *env = getenv("FC_THREADS");
  if (env && *env) {
    char *end;
    long v = strtol(env, &end, 10);
    if (*end == 0 && v >= 1) return v > FC_PAR_MAX_THREADS ? FC_PAR_MAX_THREADS : (int)v;
    fprintf(stderr, "fc_par: FC_THREADS='%s' is not a thread count from 1 to %d; using the CPU count\n", env,
            FC_PAR_MAX_THREADS);
  }
  int n = fc_par_cpus();
  return n > S_DEFAULT_MAX ? S_DEFAULT_MAX : n;
}

/* spin only when the threads in use fit the CPUs (under S.call) */
static void s_set_spin(void) {
  atomic_store_explicit(&S.spin_ns, S.active > fc_par_cpus() ? 0u : (unsigned)S_SPIN_NS, memory_order_relaxed);
}

/* grow the pool to n threads (under S.call) */
static void s_grow(int n) {
  if (n > FC_PAR_MAX_THREADS) n = FC_PAR_MAX_THREADS;
  while (S.pool < n) {
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &at, s_worker, (void *)(size_t)S.pool);
    pthread_attr_destroy(&at);
    if (rc != 0) break; /* fewer threads than asked: still correct */
    S.pool++;
  }
}

/* use without fc_par_init: the caller's thread alone (no thread is
 * started), OpenBLAS untouched */
static void s_ensure(void) {
  if (atomic_load_explicit(&S.started, memory_order_acquire)) return;
  pthread_mutex_lock(&S.call);
  if (!atomic_load_explicit(&S.started, memory_order_relaxed)) {
    S.active = 1;
    s_set_spin();
    atomic_store_explicit(&S.started, 1, memory_order_release);
  }
  pthread_mutex_unlock(&S.call);
}

void fc_par_init(int threads) {
  pthread_mutex_lock(&S.call);
  if (!S.blas_set) {
    /* flowcore does the threading; OpenBLAS runs each call on its caller's thread */
    openblas_set_num_threads(1);
    S.blas_set = 1;
  }
  int n = threads >= 1 ? threads : s_default_size();
  if (n > FC_PAR_MAX_THREADS) n = FC_PAR_MAX_THREADS;
  s_grow(n);
  S.active = n < S.pool ? n : S.pool;
  s_set_spin();
  atomic_store_explicit(&S.started, 1, memory_order_release);
  pthread_mutex_unlock(&S.call);
}

char *openblas_get_corename(void); /* OpenBLAS's, not in every cblas.h */

const char *fc_blas_core(void) {
  const char *c = openblas_get_corename();
  return c ? c : "?";
}

const char *fc_blas_better_core(void) {
  /* OpenBLAS's x86-64 kernel sets without AVX2 */
  static const char *const weak[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Barcelona",
                                     "Opteron", "Opteron_SSE3", "Bobcat", "Sandybridge", "Bulldozer", "Piledriver",
                                     "Steamroller", "Excavator"};
  const char *core = fc_blas_core();
  int is_weak = 0;
  for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) is_weak |= !strcasecmp(core, weak[i]);
  if (!is_weak) return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return NULL;
}

int fc_threads(void) {
  s_ensure();
  return atomic_load_explicit(&S.active, memory_order_relaxed);
}

void fc_set_threads(int n) {
  s_ensure();
  pthread_mutex_lock(&S.call);
  S.active = n < 1 ? 1 : n > S.pool ? (S.pool > 1 ? S.pool : 1) : n;
  s_set_spin();
  pthread_mutex_unlock(&S.call);
}

void fc_par__set_test_delay(unsigned us) { atomic_store(&S.test_delay_us, us); }

void fc_par_for(size_t n, size_t grain, fc_par_fn fn, void *ctx) {
  if (grain < 1) grain = 1;
  if (s_in_job || n / grain < 2) { /* nested, or too small to split */
    if (n) fn(ctx, 0, n);
    return;
  }
  s_ensure();
  pthread_mutex_lock(&S.call);
  size_t kk = n / grain;
  const int active = S.active;
  int k = kk < (size_t)active ? (int)kk : active;
  if (k < 2) {
    pthread_mutex_unlock(&S.call);
    fn(ctx, 0, n);
    return;
  }
  /* publish: the fields, then the claim word (release), then wake the pool */
  S.fn = fn;
  S.ctx = ctx;
  S.n = n;
  atomic_store_explicit(&S.done, 0, memory_order_relaxed);
  atomic_store_explicit(&S.claim, (uint64_t)k << S_KSHIFT, memory_order_release);
  atomic_fetch_add_explicit(&S.gen, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&S.sleepers, memory_order_seq_cst) > 0) s_futex_wake(&S.gen);
  /* run chunks alongside the workers, chunk 0 first */
  s_in_job = 1;
  s_help(0);
  s_in_job = 0;
  /* wait for the chunks others claimed: spin, yield, then sleep */
  double t0 = -1;
  unsigned d;
  while ((d = atomic_load_explicit(&S.done, memory_order_acquire)) != (unsigned)k) {
    if (t0 < 0) t0 = s_now_ns();
    if (!s_backoff(t0)) continue;
    atomic_store_explicit(&S.caller_asleep, 1, memory_order_seq_cst);
    d = atomic_load_explicit(&S.done, memory_order_seq_cst);
    if (d != (unsigned)k) s_futex_wait(&S.done, d);
    atomic_store_explicit(&S.caller_asleep, 0, memory_order_seq_cst);
  }
  pthread_mutex_unlock(&S.call);
}
