/* fc_par: persistent worker threads. A job is published by bumping an atomic
 * generation counter; workers spin on it for a short while (jobs come back to
 * back during training), then sleep on a condition variable. */
#include "fc_par.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "fc_base.h"

#define S_MAX_THREADS 8
#define S_SPIN 200000 /* polls before a worker sleeps (~a millisecond) */

static inline void s_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

static struct {
  pthread_once_t once;
  pthread_mutex_t call; /* one job at a time */
  pthread_mutex_t mu;   /* sleeping workers */
  pthread_cond_t cv;
  int pool, active;
  atomic_uint gen;
  atomic_int pending, sleepers;
  fc_par_fn fn;
  void *ctx;
  size_t n;
  int k;
} S = {.once = PTHREAD_ONCE_INIT, .call = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER, .pool = 1, .active = 1};

void fc_par_chunk(size_t n, int k, int i, size_t *lo, size_t *hi) {
  size_t per = (n + (size_t)k - 1) / (size_t)k;
  per = (per + 15) & ~(size_t)15;
  *lo = per * (size_t)i < n ? per * (size_t)i : n;
  *hi = *lo + per < n ? *lo + per : n;
}

static void *s_worker(void *arg) {
  const int id = (int)(size_t)arg;
  unsigned seen = 0; /* the generation before any job: workers start before the first publish */
  for (;;) {
    unsigned g;
    int spins = 0;
    while ((g = atomic_load_explicit(&S.gen, memory_order_acquire)) == seen && spins < S_SPIN) {
      s_relax();
      spins++;
    }
    if (g == seen) {
      pthread_mutex_lock(&S.mu);
      atomic_fetch_add(&S.sleepers, 1);
      while ((g = atomic_load(&S.gen)) == seen) pthread_cond_wait(&S.cv, &S.mu);
      atomic_fetch_sub(&S.sleepers, 1);
      pthread_mutex_unlock(&S.mu);
    }
    seen = g;
    if (id < S.k) {
      size_t lo, hi;
      fc_par_chunk(S.n, S.k, id, &lo, &hi);
      if (lo < hi) S.fn(S.ctx, lo, hi);
      atomic_fetch_sub_explicit(&S.pending, 1, memory_order_release);
    }
  }
  return NULL;
}

static void s_start(void) {
  /* flowcore does the threading; OpenBLAS runs each call on its caller's thread */
  openblas_set_num_threads(1);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int n = ncpu > 0 ? (int)ncpu : 1;
  const char *env = getenv("FC_THREADS");
  if (env && atoi(env) > 0) n = atoi(env);
  if (n > S_MAX_THREADS) n = S_MAX_THREADS;
  for (int i = 1; i < n; i++) {
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, s_worker, (void *)(size_t)i) == 0) S.pool++;
    pthread_attr_destroy(&at);
  }
  S.active = S.pool;
}

int fc_threads(void) {
  pthread_once(&S.once, s_start);
  return S.active;
}

void fc_set_threads(int n) {
  pthread_once(&S.once, s_start);
  pthread_mutex_lock(&S.call);
  S.active = n < 1 ? 1 : n > S.pool ? S.pool : n;
  pthread_mutex_unlock(&S.call);
}

void fc_par_for(size_t n, size_t grain, fc_par_fn fn, void *ctx) {
  int nt = fc_threads();
  if (grain < 1) grain = 1;
  size_t kk = n / grain;
  int k = kk < (size_t)nt ? (int)kk : nt;
  if (k < 2) {
    if (n) fn(ctx, 0, n);
    return;
  }
  pthread_mutex_lock(&S.call);
  S.fn = fn;
  S.ctx = ctx;
  S.n = n;
  S.k = k;
  atomic_store(&S.pending, k - 1);
  atomic_fetch_add(&S.gen, 1); /* publishes the job (sequentially consistent) */
  if (atomic_load(&S.sleepers) > 0) {
    pthread_mutex_lock(&S.mu);
    pthread_cond_broadcast(&S.cv);
    pthread_mutex_unlock(&S.mu);
  }
  size_t lo, hi;
  fc_par_chunk(n, k, 0, &lo, &hi);
  if (lo < hi) fn(ctx, lo, hi);
  while (atomic_load_explicit(&S.pending, memory_order_acquire) > 0) s_relax();
  pthread_mutex_unlock(&S.call);
}
