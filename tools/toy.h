/* toy: 2-D benchmark distributions and the FM-vs-LFM experiment behind
 * `lfp toy` (and its end-to-end test).
 *
 * Example:
 *
 *   int toy_example(void) {
 *     char err[256];
 *     toy_config tc;
 *     toy_config_default(&tc);
 *     tc.dist = TOY_8GAUSSIANS;
 *     toy_result r;
 *     if (toy_run(&tc, 4, &r, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;  // 4 blocks: LFM; 1: FM
 *     printf("W2 %.3f (floor %.3f), %d/%d modes\n", r.w2, r.w2_floor, r.modes_covered, r.modes_total);
 *     return 0;
 *   }
 */
#ifndef LFP_TOY_H
#define LFP_TOY_H

#include <stddef.h>
#include <stdint.h>

#include "flowcore.h"

typedef enum { TOY_8GAUSSIANS = 0, TOY_MOONS, TOY_CHECKERBOARD, TOY_RINGS, TOY_NDIST } toy_dist;

const char *toy_dist_name(toy_dist d);
int toy_dist_parse(const char *s);
int toy_dist_modes(toy_dist d);
/* n points (n, 2) and, when label != NULL, the mode each came from. */
void toy_sample(toy_dist d, fc_rng *rng, float *x, int *label, int n);

typedef struct {
  toy_dist dist;
  int64_t steps;        /* training steps, total over blocks */
  int batch;
  int width, depth;     /* the global (N = 1) network; LFM blocks get the width that
                           matches its parameter count with N blocks */
  int train_size;       /* fixed training set (pushed through the LFM blocks) */
  int eval_size;        /* held-out target and generated points for W2 */
  int eval_reps;        /* independent repetitions averaged in w2 and w2_floor */
  fc_sampler sampler;
  int ode_steps;        /* sampler steps over the whole chain: FM takes all of
                           them, LFM with N blocks ode_steps / N per block, so
                           both spend the same network evaluations (NFE) */
  float lr;
  float gamma_c, gamma_rho;
  uint64_t seed;
  int progress;         /* show a progress bar on a terminal */
  int dfm;              /* Diffusion Flow Matching instead of a flow (blocks must be 1);
                           sampled by Euler-Maruyama with ode_steps x the sampler's
                           stages steps: the NFE the flows spend */
  float dfm_sigma, dfm_delta;
  int nsweep;           /* after training, W2 at each of these NFEs with first-order
                           steps: Euler for flows (NFE / N per block), Euler-Maruyama for DFM */
  int sweep[16];
} toy_config;

typedef struct {
  const char *method;   /* "fm", "lfm", "dfm" */
  int blocks, width;
  size_t params;
  int64_t steps;
  int nfe;
  double w2, w2_floor, energy; /* means over eval_reps repetitions */
  double w2_sd, w2_floor_sd;   /* their standard deviations over the repetitions */
  int modes_covered, modes_total;
  double off_mode;      /* fraction of generated points far from every target point */
  double train_s, sample_s;
  fc_block_diag diag[64]; /* flows only */
  double sweep_w2[16];  /* at tc->sweep[i] (NAN where N does not divide it) */
} toy_result;

void toy_config_default(toy_config *tc);
/* Width of each of `blocks` networks so their total parameter count is
 * closest to one network of tc->width. */
int toy_block_width(const toy_config *tc, int blocks);
/* Train a chain of `blocks` blocks on tc->dist and evaluate it. */
int toy_run(const toy_config *tc, int blocks, toy_result *out, char *err, size_t errsz);

#endif
