/* test.h: a minimal harness. Each TEST(name) is a case; the executable runs
 * the case named in argv[1] (CMake registers one CTest entry per case by
 * scanning the source for TEST(...)), or all cases with no argument.
 * Failures print both values and file:line; return 77 from a case to skip. */
#ifndef LFP_TEST_H
#define LFP_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*test_fn)(void);
typedef struct {
  const char *name;
  test_fn fn;
} test_case;

#define TEST(name) static int test_##name(void)
#define TEST_ENTRY(name) {#name, test_##name}

#define ASSERT(cond)                                                            \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                                 \
    }                                                                           \
  } while (0)

#define ASSERT_MSG(cond, ...)                                                   \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "%s:%d: assertion failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                             \
      fputc('\n', stderr);                                                      \
      return 1;                                                                 \
    }                                                                           \
  } while (0)

#define ASSERT_EQ_INT(a, b)                                                     \
  do {                                                                          \
    long long va_ = (long long)(a), vb_ = (long long)(b);                       \
    if (va_ != vb_) {                                                           \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n", __FILE__, __LINE__, #a, #b, va_, vb_); \
      return 1;                                                                 \
    }                                                                           \
  } while (0)

#define ASSERT_NEAR(a, b, tol)                                                  \
  do {                                                                          \
    double va_ = (double)(a), vb_ = (double)(b);                                \
    if (!(fabs(va_ - vb_) <= (tol))) {                                          \
      fprintf(stderr, "%s:%d: |%s - %s| <= %g failed: %.10g vs %.10g\n", __FILE__, __LINE__, #a, #b, \
              (double)(tol), va_, vb_);                                         \
      return 1;                                                                 \
    }                                                                           \
  } while (0)

#define ASSERT_CONTAINS(hay, needle)                                            \
  do {                                                                          \
    if (!strstr((hay), (needle))) {                                             \
      fprintf(stderr, "%s:%d: expected \"%s\" in \"%s\"\n", __FILE__, __LINE__, (needle), (hay)); \
      return 1;                                                                 \
    }                                                                           \
  } while (0)

static inline int test_main(int argc, char **argv, const test_case *cases, int n) {
  int failed = 0, ran = 0;
  for (int i = 0; i < n; i++) {
    if (argc > 1 && strcmp(argv[1], cases[i].name)) continue;
    ran++;
    int rc = cases[i].fn();
    if (argc > 1) return rc;
    printf("%-36s %s\n", cases[i].name, rc == 0 ? "ok" : rc == 77 ? "skipped" : "FAILED");
    if (rc && rc != 77) failed++;
  }
  if (!ran) {
    fprintf(stderr, "no test case named '%s'\n", argc > 1 ? argv[1] : "");
    return 1;
  }
  return failed ? 1 : 0;
}

#endif
