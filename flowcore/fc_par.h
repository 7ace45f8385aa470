/* fc_par: flowcore's threads. One process-wide pool of persistent workers
 * runs both the matmuls (each GEMM split by output columns into
 * single-threaded cblas_sgemm calls) and the elementwise loops (activations,
 * optimizer, gradient norm), so the cores are never left idle between the two
 * and no second thread pool competes for them.
 *
 * Process-wide state, set only by fc_par_init (the library never starts a
 * thread or changes OpenBLAS on its own): the pool's size, and OpenBLAS's
 * own thread count, set to 1 (openblas_set_num_threads) so that each BLAS
 * call runs on the thread that makes it. Without fc_par_init flowcore runs
 * on its callers' threads alone, no worker is started and OpenBLAS is left
 * as it is (a program embedding a policy keeps its threads to itself);
 * programs that train should call fc_par_init (lfp does, in main).
 *
 * The pool's default size is the CPUs this process may use (fc_par_cpus:
 * its affinity mask and its cgroup CPU quota), at most 8; FC_THREADS in the
 * environment overrides it, up to FC_PAR_MAX_THREADS, also above the core
 * count. Waiting threads spin for 0.1 ms, then yield the core, then sleep
 * (after 2 ms); a pool with more threads than CPUs (as counted when it was
 * last sized or fc_set_threads was called) does not spin at all, so a pool
 * larger than the cores it runs on costs little.
 *
 * A job is split into k fixed chunks, k = min(threads, n / grain); each
 * chunk runs exactly once, on whichever thread claims it (the caller takes
 * part), and fc_par_for returns after all of them finished. Reductions
 * combine fixed-size blocks in order, so flowcore's own arithmetic does not
 * depend on the number of threads; OpenBLAS's does, slightly: its rounding
 * depends on the shape of each call, and a split matmul is several smaller
 * calls. A run is bit-identical for the same seed, machine and thread
 * count.
 *
 * Example: scale x[0..n) by a on every thread
 *
 *   typedef struct { float *x; float a; } scale_job;
 *   static void s_scale(void *ctx, size_t lo, size_t hi) {
 *     scale_job *j = ctx;
 *     for (size_t i = lo; i < hi; i++) j->x[i] *= j->a;
 *   }
 *   void scale(float *x, size_t n, float a) {
 *     fc_par_init(0);                      // once, at program start: process-wide
 *     scale_job j = {x, a};
 *     fc_par_for(n, 65536, s_scale, &j);   // chunks of at least 65536 items
 *   }
 */
#ifndef FC_PAR_H
#define FC_PAR_H

#include <stddef.h>

#define FC_PAR_MAX_THREADS 56

typedef void (*fc_par_fn)(void *ctx, size_t lo, size_t hi);

/* Size the pool and set OpenBLAS to one thread per call (process-wide: call
 * it from main, before other threads use flowcore). threads >= 1: use that
 * many (up to FC_PAR_MAX_THREADS, above the core count too); 0: the default
 * (FC_THREADS, else fc_par_cpus() capped at 8). Idempotent; a later call
 * resizes (the pool grows; shrinking leaves idle workers asleep). */
void fc_par_init(int threads);
/* CPUs this process may run on: its affinity mask (sched_getaffinity),
 * lowered by a cgroup v2 cpu.max or v1 cfs quota (rounded up). >= 1. */
int fc_par_cpus(void);
/* Threads in use (>= 1). */
int fc_threads(void);
/* The kernels OpenBLAS chose at load time (openblas_get_corename:
 * "Haswell", "SkylakeX", "Prescott", ...). */
const char *fc_blas_core(void);
/* OpenBLAS picks its kernels when it loads, from the CPU model; a release
 * older than the CPU (Debian 12's 0.3.21 on Sapphire / Emerald Rapids, for
 * one) falls back to its SSE3 "Prescott" kernels, several times slower. When
 * OpenBLAS runs such a pre-AVX kernel set on a CPU that has AVX-512
 * ("SkylakeX") or AVX2 and FMA ("Haswell"), the name of the better set;
 * else NULL. Changing it takes OPENBLAS_CORETYPE set before the process
 * starts (lfp's main re-executes itself once with it; see README). */
const char *fc_blas_better_core(void);
/* Use at most n threads from now on (n >= 1, capped at the pool size). */
void fc_set_threads(int n);
/* Run fn over [0, n) in contiguous chunks, at most one per thread; on the
 * calling thread alone when n < 2 * grain or one thread is in use. A call
 * from inside fn runs on its caller's thread. Concurrent callers are
 * serialized. */
void fc_par_for(size_t n, size_t grain, fc_par_fn fn, void *ctx);
/* The bounds fc_par_for gives chunk i of k: [lo, hi), multiples of 16. */
void fc_par_chunk(size_t n, int k, int i, size_t *lo, size_t *hi);

/* Internals, for tests: the quota that root's cgroup files give a process
 * whose /proc/self/cgroup is the file proc_cgroup (0: none); a delay each
 * worker waits between seeing a new job and claiming its chunks. */
int fc_par__quota_cpus(const char *root, const char *proc_cgroup);
void fc_par__set_test_delay(unsigned us);

#endif
