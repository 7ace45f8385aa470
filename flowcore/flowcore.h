/* flowcore: the numerical core of lfp. Depends on BLAS and libm only; never
 * sees HDF5, MuJoCo or ZeroMQ.
 *
 *   fc_rng.h     explicit-state RNG (xoshiro256**), Gaussian draws
 *   fc_mlp.h     velocity network v(t, x, c): residual MLP, forward/backward on sgemm
 *   fc_unet.h    velocity network over action chunks: Diffusion Policy's 1-D conv U-Net
 *   fc_optim.h   AdamW, gradient clipping, warm-up + cosine schedule, EMA
 *   fc_flow.h    interpolants, FM loss, ODE samplers, Local Flow Matching chain + trainer
 *   fc_metric.h  exact W2 (optimal assignment), energy distance
 *   fc_ckpt.h    checkpoint files: header, named sections, CRC-32, atomic write
 *   fc_par.h     the thread pool that runs matmuls and elementwise loops
 */
#ifndef FLOWCORE_H
#define FLOWCORE_H

#include "fc_base.h"
#include "fc_ckpt.h"
#include "fc_flow.h"
#include "fc_metric.h"
#include "fc_mlp.h"
#include "fc_unet.h"
#include "fc_optim.h"
#include "fc_par.h"
#include "fc_rng.h"

#endif
