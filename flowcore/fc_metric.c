/* fc_metric: exact W2 by optimal assignment, energy distance. */
#include "fc_metric.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "fc_base.h"

/* Hungarian algorithm with potentials (Kuhn-Munkres in the shortest
 * augmenting path form, as in Jonker & Volgenant 1987): each row is added by
 * a Dijkstra-like search over columns with reduced costs. 1-based internals. */
double fc_assignment(const double *cost, int n, int *assign) {
  double *u = fc_calloc((size_t)n + 1, sizeof(double)), *v = fc_calloc((size_t)n + 1, sizeof(double));
  double *minv = fc_malloc(((size_t)n + 1) * sizeof(double));
  int *p = fc_calloc((size_t)n + 1, sizeof(int)), *way = fc_calloc((size_t)n + 1, sizeof(int));
  char *used = fc_malloc((size_t)n + 1);
  for (int i = 1; i <= n; i++) {
    p[0] = i;
    int j0 = 0;
    for (int j = 0; j <= n; j++) minv[j] = DBL_MAX;
    memset(used, 0, (size_t)n + 1);
    do {
      used[j0] = 1;
      int i0 = p[j0], j1 = 0;
      double delta = DBL_MAX;
      const double *row = cost + (size_t)(i0 - 1) * n;
      double ui0 = u[i0];
      for (int j = 1; j <= n; j++) {
        if (used[j]) continue;
        double cur = row[j - 1] - ui0 - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do { /* augment along the alternating path */
      int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  double total = 0.0;
  for (int j = 1; j <= n; j++) {
    assign[p[j] - 1] = j - 1;
    total += cost[(size_t)(p[j] - 1) * n + (j - 1)];
  }
  free(u); free(v); free(minv); free(p); free(way); free(used);
  return total;
}

double fc_w2_exact(const float *x, const float *y, int n, int d, int *perm) {
  FC_ASSERT(n >= 1 && d >= 1);
  double *cost = fc_malloc((size_t)n * n * sizeof(double));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 0.0;
      for (int k = 0; k < d; k++) {
        double df = (double)x[(size_t)i * d + k] - (double)y[(size_t)j * d + k];
        s += df * df;
      }
      cost[(size_t)i * n + j] = s;
    }
  int *assign = perm ? perm : fc_malloc((size_t)n * sizeof(int));
  double total = fc_assignment(cost, n, assign);
  if (!perm) free(assign);
  free(cost);
  return sqrt(total / n);
}

static double s_mean_pair_dist(const float *a, int n, const float *b, int m, int d) {
  double sum = 0.0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) {
      double s = 0.0;
      for (int k = 0; k < d; k++) {
        double df = (double)a[(size_t)i * d + k] - (double)b[(size_t)j * d + k];
        s += df * df;
      }
      sum += sqrt(s);
    }
  return sum / ((double)n * m);
}

double fc_energy_distance(const float *x, int n, const float *y, int m, int d) {
  return 2.0 * s_mean_pair_dist(x, n, y, m, d) - s_mean_pair_dist(x, n, x, n, d) -
         s_mean_pair_dist(y, m, y, m, d);
}
