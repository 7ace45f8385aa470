/* fc_base: what every flowcore file shares: the always-on assert for misuse,
 * the error-message helper for expected failures, and a few constants. */
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

/* Index of s in names[0..n), or -1 (for parsing enum names). */
int fc_name_index(const char *s, const char *const *names, int n);

#endif
