/* fc_base: what every flowcore file shares: the always-on assert for misuse,
 * the error-message helper for expected failures, a monotonic clock and a few constants. */
#ifndef FC_BASE_H
#define FC_BASE_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define FC_PI 3.14159265358979323846

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
