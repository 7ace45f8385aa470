/* fc_par: flowcore's threads. One process-wide pool of persistent workers
 * runs both the matmuls (each GEMM split by output rows into single-threaded
 * cblas_sgemm calls) and the elementwise loops (activations, optimizer,
 * gradient norm), so the cores are never left idle between the two and no
 * second thread pool competes for them: OpenBLAS itself is set to one thread
 * when the pool starts.
 *
 *   static void s_scale(void *ctx, size_t lo, size_t hi) { ... x[lo..hi) ... }
 *   fc_par_for(n, 65536, s_scale, &ctx);   // chunks of at least 65536 items
 *
 * The work is split into independent items and reductions combine
 * fixed-size blocks in order, so flowcore's own arithmetic does not depend on
 * the number of threads; OpenBLAS's does, slightly: its rounding depends on
 * the shape of each call, and a split matmul is several smaller calls. A run
 * is bit-identical for the same seed, machine and thread count. */
#ifndef FC_PAR_H
#define FC_PAR_H

#include <stddef.h>

typedef void (*fc_par_fn)(void *ctx, size_t lo, size_t hi);

/* Threads in use (>= 1). Default: the online CPUs, capped at 8; FC_THREADS
 * in the environment overrides it. */
int fc_threads(void);
/* Use at most n threads from now on (n >= 1, capped at the pool size). */
void fc_set_threads(int n);
/* Run fn over [0, n) in contiguous chunks, one per thread; on the calling
 * thread alone when n < 2 * grain or one thread is in use. Not reentrant:
 * fn must not call fc_par_for. Concurrent callers are serialized. */
void fc_par_for(size_t n, size_t grain, fc_par_fn fn, void *ctx);
/* The bounds fc_par_for gives chunk i of k: [lo, hi), multiples of 16. */
void fc_par_chunk(size_t n, int k, int i, size_t *lo, size_t *hi);

#endif
