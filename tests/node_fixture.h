/* node_fixture: a small random-weight LFM policy for the node's tests and
 * its fuzz target: keys "pos" (3) and "grip" (2), To 2, Tp 4, Ta 3, 2-D
 * actions in [-1, 1], two blocks of width 16, RK4 x 2 steps per block. */
#ifndef LFP_NODE_FIXTURE_H
#define LFP_NODE_FIXTURE_H

#include <string.h>

#include "fc_rng.h"
#include "pol.h"

static inline pol_policy *node_fixture_policy(void) {
  pol_meta m;
  static const char *const names[2] = {"pos", "grip"};
  static const int dims[2] = {3, 2};
  if (pol_meta_init(&m, POL_LFM, 2, 4, 3, 2, names, dims, 2, "{\"env_name\": \"fixture\"}", 20, NULL, 0)) return NULL;
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, m.Tp * m.action_dim, m.To * m.obs_dim);
  lc.nblocks = 2;
  lc.net.mlp.width = 16;
  lc.net.mlp.depth = 1;
  lc.steps = 2;
  fc_lfm *f = fc_lfm_new(&lc, NULL, 0);
  fc_rng r;
  fc_rng_seed(&r, 7);
  for (size_t i = 0; i < fc_lfm_nparams(f); i++) f->params[i] = 0.2f * (float)fc_rng_normal(&r);
  fc_norm on, an;
  fc_norm_range(&on, 5, -2, 2);
  fc_norm_range(&an, 2, -1, 1);
  return pol_new(&m, &on, &an, f, NULL, 0);
}

#endif
