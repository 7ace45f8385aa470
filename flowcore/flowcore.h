/* flowcore: the numerical core of lfp. Depends on BLAS and libm only; never
 * sees HDF5, MuJoCo or ZeroMQ.
 *
 *   fc_rng.h     explicit-state RNG (xoshiro256**), Gaussian draws
 *   fc_net.h     velocity network v(t, x, c) of any kind: one interface, a table per kind
 *   fc_nn.h      the layers kinds share: split sgemm kernels, activations, time embedding
 *   fc_mlp.h     the residual FiLM MLP kind, forward/backward on sgemm
 *   fc_unet.h    the U-Net kind over action chunks: Diffusion Policy's 1-D conv U-Net
 *   fc_tfm.h     the transformer kind over action chunks: DiT blocks, adaLN-Zero
 *   fc_ae.h      an MLP autoencoder, for flows in a learned latent space
 *   fc_optim.h   AdamW, gradient clipping, warm-up + cosine schedule, EMA
 *   fc_flow.h    interpolants, FM loss, ODE samplers, Local Flow Matching chain + trainer
 *   fc_metric.h  exact W2 (optimal assignment), energy distance
 *   fc_ckpt.h    checkpoint files: header, named sections, CRC-32, atomic write
 *   fc_par.h     the thread pool that runs matmuls and elementwise loops
 *   fc_norm.h    per-dimension normalization statistics (min-max, mean/std)
 *   fc_toy.h     2-D benchmark distributions and the FM-vs-LFM experiment of lfp toy
 */
#ifndef FLOWCORE_H
#define FLOWCORE_H

#include "fc_ae.h"
#include "fc_base.h"
#include "fc_ckpt.h"
#include "fc_flow.h"
#include "fc_metric.h"
#include "fc_mlp.h"
#include "fc_net.h"
#include "fc_nn.h"
#include "fc_norm.h"
#include "fc_tfm.h"
#include "fc_unet.h"
#include "fc_optim.h"
#include "fc_par.h"
#include "fc_rng.h"
#include "fc_toy.h"

#endif
