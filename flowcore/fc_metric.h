/* fc_metric: distances between two samples of points, for evaluating
 * generative models and for flow diagnostics.
 *
 * Example: two samples x, y of 1000 points in 2-D
 *
 *   void compare(const float *x, const float *y) {
 *     double w2 = fc_w2_exact(x, y, 1000, 2, NULL);  // exact, by optimal assignment
 *     double ed = fc_energy_distance(x, 1000, y, 1000, 2);
 *     printf("W2 %.3f, energy distance %.3f\n", w2, ed);
 *   }
 */
#ifndef FC_METRIC_H
#define FC_METRIC_H

#include <stddef.h>

/* Exact 2-Wasserstein distance between the empirical measures of x (n, d) and
 * y (n, d): sqrt(min over permutations s of (1/n) sum_i ||x_i - y_s(i)||^2),
 * solved by the shortest-augmenting-path Hungarian algorithm, O(n^3) time,
 * O(n^2) memory. perm (n, may be NULL) receives the optimal assignment. */
double fc_w2_exact(const float *x, const float *y, int n, int d, int *perm);
/* Energy distance 2 E||X - Y|| - E||X - X'|| - E||Y - Y'|| (Szekely), the
 * V-statistic on all pairs; 0 iff the two empirical measures coincide. */
double fc_energy_distance(const float *x, int n, const float *y, int m, int d);
/* Exact assignment solver for a dense n x n cost matrix (row-major); returns
 * the minimal total cost and the column of each row in assign (n). */
double fc_assignment(const double *cost, int n, int *assign);

#endif
