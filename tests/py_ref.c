/* py_ref: pol.h driven line by line, the C side of tests/test_python.py's
 * bit-for-bit comparison with the Python package. Usage: py_ref POLICY SEED;
 * stdin, one command per line, numbers as C99 hex floats (printf %a):
 *   act V...            pol_act on obs_dim values -> the action
 *   sample N V...       pol_forget, pol_observe N frames, pol_sample -> Ta x A values
 *   reset S | new       pol_reset(S) | pol_new_episode
 * Each answer is one line: the values in %a, or "error: SENTENCE". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_par.h"
#include "pol.h"

static int s_read(char **p, int n, double *v) {
  for (int i = 0; i < n; i++) {
    char *end;
    v[i] = strtod(*p, &end);
    if (end == *p) return -1;
    *p = end;
  }
  return 0;
}

static void s_print(const double *v, int n) {
  for (int i = 0; i < n; i++) printf(i ? " %a" : "%a", v[i]);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc != 3) return fprintf(stderr, "usage: py_ref POLICY SEED\n"), 2;
  fc_par_init(1); /* one thread, as test_python.py's process and node */
  char err[1024];
  pol_policy *p = pol_load(argv[1], err, sizeof err);
  if (!p) return fprintf(stderr, "py_ref: %s\n", err), 1;
  pol_data *pd = pol_data_new(p, strtoull(argv[2], NULL, 10));
  const int O = p->meta.obs_dim, A = p->meta.action_dim, Ta = p->meta.Ta;
  double *obs = malloc(sizeof(double) * (size_t)O * 64), act[POL_MAX_ACTION * 256];
  static char line[1 << 20];
  while (fgets(line, sizeof line, stdin)) {
    char *q = line;
    if (!strncmp(q, "act ", 4)) {
      q += 4;
      if (s_read(&q, O, obs)) return fprintf(stderr, "py_ref: bad act line\n"), 1;
      if (pol_act(p, pd, obs, act, err, sizeof err)) printf("error: %s\n", err);
      else s_print(act, A);
    } else if (!strncmp(q, "sample ", 7)) {
      q += 7;
      const int n = (int)strtol(q, &q, 10);
      if (n < 1 || n > 64 || s_read(&q, n * O, obs)) return fprintf(stderr, "py_ref: bad sample line\n"), 1;
      pol_forget(pd);
      int rc = 0;
      for (int f = 0; f < n && !rc; f++) rc = pol_observe(p, pd, obs + (size_t)f * O, err, sizeof err);
      if (!rc && pol_sample(p, pd, act, err, sizeof err) < 0) rc = -1;
      if (rc) printf("error: %s\n", err);
      else s_print(act, Ta * A);
    } else if (!strncmp(q, "reset ", 6)) {
      pol_reset(pd, strtoull(q + 6, NULL, 10));
      printf("ok\n");
    } else if (!strncmp(q, "new", 3)) {
      pol_new_episode(pd);
      printf("ok\n");
    } else {
      return fprintf(stderr, "py_ref: unknown command '%.20s'\n", q), 1;
    }
    fflush(stdout);
  }
  free(obs);
  pol_data_free(pd);
  pol_free(p);
  return 0;
}
