/* fc_base: error-message and allocation helpers shared by flowcore. */
#include "fc_base.h"

#include <stdarg.h>
#include <string.h>

void fc_set_err(char *err, size_t errsz, const char *fmt, ...) {
  if (!err || errsz == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errsz, fmt, ap);
  va_end(ap);
}

void *fc_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "lfp: out of memory (%zu bytes)\n", n);
    abort();
  }
  return p;
}

void *fc_calloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) {
    fprintf(stderr, "lfp: out of memory (%zu x %zu bytes)\n", n, size);
    abort();
  }
  return p;
}

int fc_name_index(const char *s, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(s, names[i])) return i;
  return -1;
}
