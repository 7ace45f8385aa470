/* fc_toy: 2-D benchmark distributions and the FM-vs-LFM experiment behind
 * `lfp toy` (and its end-to-end test).
 *
 * Example:
 *
 *   int fc_toy_example(void) {
 *     char err[256];
 *     fc_toy_config tc;
 *     fc_toy_config_default(&tc);
 *     tc.dist = FC_TOY_8GAUSSIANS;
 *     fc_toy_result r;
 *     if (fc_toy_run(&tc, 4, &r, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;  // 4 blocks: LFM; 1: FM
 *     printf("W2 %.3f (floor %.3f), %d/%d modes\n", r.w2, r.w2_floor, r.modes_covered, r.modes_total);
 *     return 0;
 *   }
 */
#ifndef FC_TOY_H
#define FC_TOY_H

#include <stddef.h>
#include <stdint.h>

#include "fc_flow.h"
#include "fc_rng.h"

typedef enum { FC_TOY_8GAUSSIANS = 0, FC_TOY_MOONS, FC_TOY_CHECKERBOARD, FC_TOY_RINGS, FC_TOY_NDIST } fc_toy_dist;

const char *fc_toy_dist_name(fc_toy_dist d);
int fc_toy_dist_parse(const char *s);
int fc_toy_dist_modes(fc_toy_dist d);
/* n points (n, 2) and, when label != NULL, the mode each came from. */
void fc_toy_sample(fc_toy_dist d, fc_rng *rng, float *x, int *label, int n);

typedef struct {
  fc_toy_dist dist;
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
  /* called with done = 0 before training, after each step with the steps
   * done, and with done = -1 once trained (NULL: silent); lfp toy draws a
   * progress bar with it */
  void (*progress)(void *ctx, const char *label, int64_t done, int64_t total, const char *extra);
  void *progress_ctx;
  int dfm;              /* Diffusion Flow Matching instead of a flow (blocks must be 1);
                           sampled by Euler-Maruyama with ode_steps x the sampler's
                           stages steps: the NFE the flows spend */
  float dfm_sigma, dfm_delta;
  int nsweep;           /* after training, W2 at each of these NFEs with first-order
                           steps: Euler for flows (NFE / N per block), Euler-Maruyama for DFM */
  int sweep[16];
  /* Latent flows (seed 000): ambient > 2 embeds the 2-D distribution in
   * that many dimensions, y = Q phi(x) with phi(x) = (x1, x2, sin 1.5 x1,
   * sin 1.5 x2, cos(x1 + x2) / 2, x1 x2 / 4) and Q a fixed (ambient, 6)
   * matrix of orthonormal columns (the same for every seed): a curved 2-D
   * sheet; every W2 is then measured in the ambient space (modes on the
   * sheet's first two coordinates). latent > 0 fits an autoencoder
   * (fc_ae.h, ae_width wide, ae_steps steps) of the ambient points to
   * `latent` values first and trains the flow on their standardized
   * latents; samples are decoded. */
  int ambient;          /* 2 (the plane), or >= 6 */
  int latent;           /* 0: the flow on the points themselves */
  int ae_width;
  int64_t ae_steps;
} fc_toy_config;

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
  /* latent runs (NaN otherwise): the terms of Jiao et al.'s bound
   * W2(p, D#q) <= W2(p, D#E#p) + Lip(D) W2(E#p, q): w2_ae is W2 between
   * held-out targets and other held-out targets passed through the
   * autoencoder (its part), w2_latent W2 between generated latents and
   * encoded held-out targets (the flow's part, in standardized latent
   * units); ae_mse the validation reconstruction MSE */
  double w2_ae, w2_ae_sd, w2_latent, w2_latent_sd, ae_mse;
  size_t ae_params;     /* latent runs: the autoencoder's (params: the flow's) */
} fc_toy_result;

void fc_toy_config_default(fc_toy_config *tc);
/* Width of each of `blocks` networks so their total parameter count is
 * closest to one network of tc->width. */
int fc_toy_block_width(const fc_toy_config *tc, int blocks);
/* Train a chain of `blocks` blocks on tc->dist and evaluate it. */
int fc_toy_run(const fc_toy_config *tc, int blocks, fc_toy_result *out, char *err, size_t errsz);

#endif
