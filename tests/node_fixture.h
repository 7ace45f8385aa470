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
  memset(&m, 0, sizeof(m));
  m.method = POL_LFM;
  m.To = 2, m.Tp = 4, m.Ta = 3;
  m.obs_dim = 5, m.action_dim = 2, m.nkeys = 2;
  snprintf(m.keys[0], 64, "pos");
  snprintf(m.keys[1], 64, "grip");
  m.key_dims[0] = 3, m.key_dims[1] = 2;
  for (int j = 0; j < 2; j++) m.action_low[j] = -1, m.action_high[j] = 1;
  snprintf(m.env_args, sizeof(m.env_args), "{\"env_name\": \"fixture\"}");
  snprintf(m.version, sizeof(m.version), "test");
  m.control_hz = 20;
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
  ds_norm on, an;
  memset(&on, 0, sizeof(on));
  memset(&an, 0, sizeof(an));
  on.dim = 5, an.dim = 2;
  for (int j = 0; j < 5; j++) on.scale[j] = 0.5f, on.lo[j] = -2, on.hi[j] = 2;
  for (int j = 0; j < 2; j++) an.scale[j] = 1.0f, an.lo[j] = -1, an.hi[j] = 1;
  return pol_new(&m, &on, &an, f, NULL, 0);
}

#endif
