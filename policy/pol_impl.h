/* pol_impl: the fields of pol_data, for pol.c and white-box tests only (not
 * installed; callers use pol.h's functions). */
#ifndef POL_IMPL_H
#define POL_IMPL_H

#include "pol.h"

struct pol_data {
  float *hist;        /* (To, obs_dim) normalized frames, oldest first */
  float *frame;       /* (obs_dim) scratch */
  int nseen;          /* frames seen this episode */
  double *queue;      /* (Ta, A) actions left to execute */
  int qlen, qpos;
  float *cond;        /* (To * obs_dim) the condition of the last chunk */
  float *chunk;       /* (Tp * A) the last chunk, normalized */
  int has_chunk;      /* chunk holds a good chunk of this episode (for RTC) */
  float *prev, *wts;  /* (Tp * A) RTC scratch: the old plan aligned, its weights */
  fc_lfm_ws *ws;
  float *z;           /* latent policies: (d) the flow's state */
  fc_ae_ws *aews;     /* latent policies: the decoder's workspace */
  fc_rng rng;
  fc_sampler sampler; /* inference setting (default: the trained one) */
  int steps;
  int64_t chunks, clipped; /* chunks sampled, action values clipped */
  int64_t obs_clipped;     /* normalized observation values clipped to +-POL_OBS_CLIP */
  /* the sampler's state values clamped to +-POL_STATE_BOUND: ws->ode->clamped */
  int64_t clamped_seen;    /* ws->ode->clamped when the last chunk was checked */
};

#endif
