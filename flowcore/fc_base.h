/* fc_base: what every flowcore file shares: the always-on assert for misuse,
 * the error-message helper for expected failures, a monotonic clock and a few constants. */
#ifndef FC_BASE_H
#define FC_BASE_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define FC_PI 3.14159265358979323846

/* Runtime dispatch of flowcore's hot elementwise loops (activations, FiLM,
 * group norm, AdamW, EMA, ODE steps): each FC_HOT function is compiled for
 * x86-64-v4 (AVX-512), x86-64-v3 (AVX2, FMA) and baseline x86-64, and the
 * loader picks the best the CPU has (function multi-versioning, an ifunc).
 * A portable build (the default) then runs nearly as fast as -march=native
 * on the machine it was built on and still runs on any x86-64 (see
 * tools/bench_flags.sh). For file-local (static) functions only: clang
 * multiversions a public one only when every declaration says so. Off for -march=native builds (LFP_NATIVE), other
 * architectures and ThreadSanitizer, whose runtime cannot start before an
 * ifunc resolver runs. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FC__TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define FC__TSAN 1
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(LFP_NATIVE_BUILD) && !defined(FC__TSAN)
#define FC_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FC_HOT
#endif

/* Misuse of an API (a bug in the caller, not bad input): print file:line, abort. */
#define FC_ASSERT(cond)                                                         \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                  \
    }                                                                           \
  } while (0)

/* Expected failures fill a caller's (err, errsz) with one sentence; err may be NULL. */
void fc_set_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* malloc/calloc that abort with a message when memory is exhausted. */
void *fc_malloc(size_t n);
void *fc_calloc(size_t n, size_t size);
void *fc_realloc(void *p, size_t n); /* as realloc; aborts when out of memory, like fc_malloc */

/* A whole file of at most max bytes, NUL-terminated (len: its bytes);
 * NULL and a sentence in err when it cannot be read or is larger. */
char *fc_read_file(const char *path, size_t max, size_t *len, char *err, size_t errsz);

/* Seconds on the monotonic clock (for durations). */
double fc_now(void);

/* JSON output: a string literal with escapes, and a number (%.6g) that
 * prints null when not finite. */
void fc_json_str(FILE *f, const char *s);
void fc_json_num(FILE *f, double v);

/* Sort v ascending; the q-quantile (0 <= q <= 1) of sorted values (the
 * element at index floor(q (n - 1))), NAN when n = 0. */
void fc_sort(double *v, int n);
double fc_quantile(const double *sorted, int n, double q);

/* Index of s in names[0..n), or -1 (for parsing enum names). */
int fc_name_index(const char *s, const char *const *names, int n);

#endif
