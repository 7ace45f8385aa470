/* fc_base: error-message and allocation helpers shared by flowcore. */
#include "fc_base.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

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

void *fc_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "lfp: out of memory (%zu bytes)\n", n);
    abort();
  }
  return q;
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

double fc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void fc_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      default:
        if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
  }
  fputc('"', f);
}

void fc_json_num(FILE *f, double v) {
  if (isfinite(v)) fprintf(f, "%.6g", v);
  else fputs("null", f);
}

static int s_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void fc_sort(double *v, int n) { qsort(v, (size_t)n, sizeof(double), s_cmp_double); }

double fc_quantile(const double *v, int n, double q) { return n < 1 ? NAN : v[(size_t)(q * (n - 1))]; }

char *fc_read_file(const char *path, size_t max, size_t *len, char *err, size_t errsz) {
  FILE *f = fopen(path, "rb");
  if (!f) return fc_set_err(err, errsz, "cannot read %s (%s)", path, strerror(errno)), NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = fc_malloc(cap + 1);
  size_t k;
  while ((k = fread(buf + n, 1, cap - n, f)) > 0) {
    n += k;
    if (n == cap) {
      if (cap >= max) {
        free(buf);
        fclose(f);
        return fc_set_err(err, errsz, "%s is larger than %zu MB", path, max >> 20), NULL;
      }
      cap *= 2;
      buf = fc_realloc(buf, cap + 1);
    }
  }
  const int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return fc_set_err(err, errsz, "cannot read %s (a read error)", path), NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}
