/* fc_unet: a velocity network v(t, x, c) over action chunks, Diffusion
 * Policy's ConditionalUnet1D (a 1-D temporal convolutional U-Net with FiLM
 * conditioning), with hand-written forward and backward passes on
 * cblas_sgemm. Same API shape as fc_mlp, so the two plug into one network
 * interface; it is not an MLP replacement for non-sequence data: x must be a
 * chunk of T steps of A-dimensional actions.
 *
 * Data: x and y (B, T * A) are time-major, x[b][t * A + a] is action
 * dimension a at chunk step t; inside, every activation is (B, length,
 * channels) row-major (channels last), so the input is already in place and
 * a convolution over the whole batch is one matrix product.
 *
 * Architecture (L = nlevels, d = dims, K = kernel, G = groups, act = Mish;
 * Linear W is (out, in) as in PyTorch; DP = Diffusion Policy):
 *   time:  e = sinusoidal embedding of t (temb values, fc_mlp's convention)
 *          tf = W_t2 act(W_t1 e + b_t1) + b_t2      (temb -> 4 temb -> temb)
 *          k = [tf ; c],  km = act(k)               (dk = temb + C)
 *   FiLM:  [s_1 ; h_1 ; ... ; s_N ; h_N] = Wf km + bf, one matmul for the N = 4L blocks
 *   Conv1dBlock(in, out) = Conv1d(in, out, K, padding K/2) -> GroupNorm(G) -> act
 *   block(in, out):  u = Conv1dBlock(in, out)(x);  u = (1 + s) u + h   (per channel)
 *                    y = Conv1dBlock(out, out)(u) + R x   (R: 1x1 conv when in != out, else identity)
 *   encoder, level i = 0..L-1 (length T / 2^i): block(i ? d[i-1] : A, d[i]), block(d[i], d[i]),
 *          keep the output as skip i, then Conv1d(d[i], d[i], 3, stride 2, padding 1) but at the last level
 *   middle: block(d[L-1], d[L-1]) twice
 *   decoder, level i = L-1 down to 1: concatenate [x ; skip i], block(2 d[i], d[i-1]),
 *          block(d[i-1], d[i-1]), ConvTranspose1d(d[i-1], d[i-1], 4, stride 2, padding 1)
 *          (as in DP: the decoder upsamples at every stage, and skip 0 is never used)
 *   final: Conv1dBlock(d[0], d[0]) -> Conv1d(d[0], A, 1)
 * The FiLM scale enters as (1 + s), where DP multiplies by s: the same
 * family of functions (s's bias shifted by 1), but at PyTorch's
 * initialization (s small) a block starts near identity instead of scaling
 * its activations by a random factor near 0, as in fc_mlp.
 *
 * Parameters: one flat float vector (fc_unet_layout names the views; every
 * tensor row-major). Conv1d weights are (out, K, in), i.e. tap-major, where
 * PyTorch's are (out, in, K); ConvTranspose1d weights are (K, out, in) where
 * PyTorch's are (in, out, K). The layouts make each convolution one sgemm on
 * an im2col matrix whose rows are K consecutive channel vectors.
 *
 * The double-precision *_ref functions run the same GroupNorm / FiLM code
 * with naive matmuls and direct convolution loops (no im2col): they are the
 * specification and the test oracle.
 *
 * Example: the velocity of B chunks of 16 steps of 2-D actions, conditioned
 * on 2 frames of 20-D observations
 *
 *   void chunk_velocity(const float *t, const float *x, const float *c, const float *dv, float *v,
 *                       int B) {
 *     fc_unet_config cfg;
 *     fc_unet_config_default(&cfg, 16, 2, 40);          // T = 16, A = 2, C = 40
 *     char err[256];
 *     if (fc_unet_config_check(&cfg, err, sizeof(err))) {
 *       fprintf(stderr, "%s\n", err);
 *       return;
 *     }
 *     float *params = calloc(fc_unet_nparams(&cfg), sizeof(float));
 *     float *grads = calloc(fc_unet_nparams(&cfg), sizeof(float));
 *     fc_unet net;
 *     fc_unet_bind(&net, &cfg, params);
 *     fc_rng rng;
 *     fc_rng_seed(&rng, 0);
 *     fc_unet_init(&net, &rng);
 *     fc_unet_ws *ws = fc_unet_ws_new(&cfg, B);           // scratch for batches up to B
 *     fc_unet_forward(&net, ws, v, t, x, c, B);           // v: (B, 16 * 2)
 *     fc_unet_backward(&net, ws, grads, 0, NULL, NULL, dv, B);  // grads = dL/dparams for dL/dv = dv
 *     fc_unet_ws_free(ws);
 *     free(grads);
 *     free(params);
 *   }
 */
#ifndef FC_UNET_H
#define FC_UNET_H

#include <stddef.h>

#include "fc_mlp.h" /* fc_act, fc_tensor_info */
#include "fc_rng.h"

#define FC_UNET_MAX_LEVELS 4
#define FC_UNET_MAX_BLOCKS (4 * FC_UNET_MAX_LEVELS)
#define FC_UNET_MAX_DIM 1024     /* channels of a level */
#define FC_UNET_MAX_HORIZON 4096 /* T */
#define FC_UNET_MAX_ADIM 4096    /* A */
#define FC_UNET_MAX_COND 65536   /* C */
#define FC_UNET_MAX_TEMB 4096
#define FC_UNET_MAX_KERNEL 31

typedef struct {
  int dx;        /* T * A: dimension of x and of the output velocity */
  int dc;        /* C: condition dimension (flattened observation frames), may be 0 */
  int horizon;   /* T: chunk steps, divisible by 2^(nlevels - 1) */
  int adim;      /* A: action dimension */
  int temb;      /* time-embedding size, even, >= 2 */
  int nlevels;   /* L: 1..4 */
  int dims[FC_UNET_MAX_LEVELS]; /* channels of each level, each divisible by groups (DP's down_dims) */
  int kernel;    /* K: odd convolution width */
  int groups;    /* G: GroupNorm groups */
  fc_act act;    /* Mish in DP; SiLU and GELU as in fc_mlp */
} fc_unet_config;

/* One residual block's place in the parameter vector (offsets in floats). */
typedef struct {
  int cin, cout, len;      /* channels in and out, sequence length */
  int film;                /* column of this block's [s ; h] (2 cout) in the FiLM output */
  int res;                 /* 1: 1x1-conv residual (cin != cout), 0: identity */
  size_t w1, b1, n1w, n1b; /* conv (cout, K, cin), (cout); GroupNorm weight, bias (cout) */
  size_t w2, b2, n2w, n2b; /* conv (cout, K, cout), (cout); GroupNorm (cout), (cout) */
  size_t wr, br;           /* residual conv (cout, cin), (cout) when res */
} fc_unet_block;

/* Offsets (in floats) of each tensor, in this order in the vector. Blocks
 * are numbered in forward order: encoder level i has 2i and 2i + 1, the
 * middle 2L and 2L + 1, decoder stage j (level L - 1 - j) 2L + 2 + 2j and
 * 2L + 3 + 2j. */
typedef struct {
  int nblocks;             /* 4 L */
  int dk;                  /* FiLM input size temb + C */
  int fw;                  /* FiLM output width: 2 cout summed over the blocks */
  size_t tw1, tb1, tw2, tb2; /* time MLP (4E, E), (4E), (E, 4E), (E) */
  fc_unet_block blk[FC_UNET_MAX_BLOCKS];
  size_t down_w[FC_UNET_MAX_LEVELS - 1], down_b[FC_UNET_MAX_LEVELS - 1]; /* level i < L - 1: (d, 3, d), (d) */
  size_t up_w[FC_UNET_MAX_LEVELS - 1], up_b[FC_UNET_MAX_LEVELS - 1];     /* stage j: (4, d, d), (d) */
  size_t wf, bf;           /* FiLM of all blocks: (fw, dk), (fw) */
  size_t fin_w, fin_b, fin_nw, fin_nb; /* final Conv1dBlock: (d0, K, d0), (d0), GroupNorm (d0), (d0) */
  size_t w_out, b_out;     /* (A, d0), (A) */
  size_t total;
} fc_unet_layout;

typedef struct {
  fc_unet_config cfg;
  fc_unet_layout lay;
  float *params;           /* lay.total floats, not owned */
} fc_unet;

/* Defaults for chunks of T steps of A-dimensional actions, condition C:
 * 3 levels (2 when T is not divisible by 4, 1 when T is odd) of channels
 * {64, 128, 256}, temb 64, kernel 5, groups 8, Mish: DP's low-dim network
 * at a quarter of its widths ({256, 512, 1024}, temb 256: 16x the
 * multiply-adds). Measured on this project's 2 cores at Tp 16 (README,
 * `lfp bench flowcore`): the narrowest widths whose training runs at >= 60%
 * of the sgemm peak (59-70%; 4.2M parameters, 18.6M multiply-adds a
 * sample, about 750 samples/s) with a batch-1 forward under 1 ms (0.85 ms,
 * 27 ms for a 32-NFE chunk). {32, 64, 128} trains 3x as many samples/s
 * (1.2M parameters, batch-1 0.25 ms) at 47-50% of the peak: im2col copies,
 * OpenBLAS's packing and GroupNorm weigh more at 32 channels; it is the
 * cheaper choice where training time matters more than capacity. */
void fc_unet_config_default(fc_unet_config *cfg, int T, int A, int dc);
/* 0 when the config is usable, else -1 and a sentence in err. */
int fc_unet_config_check(const fc_unet_config *cfg, char *err, size_t errsz);
/* The layout of a config that passes fc_unet_config_check. */
void fc_unet_layout_make(fc_unet_layout *lay, const fc_unet_config *cfg);
size_t fc_unet_nparams(const fc_unet_config *cfg);
/* Multiply-adds of one forward pass for one sample (x 2 for FLOPs):
 * convolutions and linear layers, not the normalization and activations. */
double fc_unet_macs(const fc_unet_config *cfg);
/* cfg with every level's channels scaled by one factor (rounded to
 * multiples of groups, at least groups, at most cfg's) so that `copies`
 * networks have the total parameter count closest to one network of cfg
 * (how LFM with N blocks is compared with FM at the same size). */
fc_unet_config fc_unet_width_matching(const fc_unet_config *cfg, int copies);
/* Fill out[0..n) with the tensors of the layout in vector order (each float
 * of the vector in exactly one); returns their count (at most
 * FC_UNET_MAX_TENSORS). Names like "enc1.0.conv1.w", "mid.1.gn2.b",
 * "dec0.up.w"; rows x cols is the tensor's size as a matrix (a convolution
 * (out, K, in) is out x K in). GroupNorm tensors have fan_in 0: they start
 * at weight 1, bias 0, not from a fan-in. */
#define FC_UNET_MAX_TENSORS (4 + 10 * FC_UNET_MAX_BLOCKS + 4 * (FC_UNET_MAX_LEVELS - 1) + 2 + 6)
int fc_unet_tensors(const fc_unet_config *cfg, fc_tensor_info *out, int max);

/* Point net at params (fc_unet_nparams floats, owned by the caller); cfg
 * must pass fc_unet_config_check. */
void fc_unet_bind(fc_unet *net, const fc_unet_config *cfg, float *params);
/* PyTorch's defaults: Conv1d, ConvTranspose1d and Linear weights and biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (ConvTranspose1d's fan_in is out x K,
 * as PyTorch computes it); GroupNorm weight 1, bias 0. */
void fc_unet_init(fc_unet *net, fc_rng *rng);

/* Activations of one pass, kept for backward, and the scratch of both
 * passes, in one allocation; one per thread/caller. Per-sample (length,
 * channels) buffers, B rows of them used. */
#define FC_UNET_WS_FIELDS(T)                                                     \
  int max_batch;                                                                 \
  T *arena;     /* every buffer below points into it */                          \
  T *e, *h1, *a1, *tf;  /* time: embedding (E), W_t1 e + b (4E), act (4E), features (E) */ \
  T *k, *km, *f;        /* (dk) [tf ; c], act(k); FiLM output (fw) */             \
  T *xh1[FC_UNET_MAX_BLOCKS], *u[FC_UNET_MAX_BLOCKS]; /* conv1 normalized, FiLM output */ \
  T *xh2[FC_UNET_MAX_BLOCKS], *out[FC_UNET_MAX_BLOCKS]; /* conv2 normalized, block output */ \
  T *rs1[FC_UNET_MAX_BLOCKS], *rs2[FC_UNET_MAX_BLOCKS]; /* 1/std per group (G) */ \
  T *down[FC_UNET_MAX_LEVELS - 1], *up[FC_UNET_MAX_LEVELS - 1], *cat[FC_UNET_MAX_LEVELS - 1]; \
  T *fxh, *frs, *fa;    /* final Conv1dBlock: normalized, 1/std, output */       \
  T *dout[FC_UNET_MAX_BLOCKS], *ddown[FC_UNET_MAX_LEVELS - 1];  /* gradients */   \
  T *dup[FC_UNET_MAX_LEVELS - 1], *dcat[FC_UNET_MAX_LEVELS - 1], *dfa;           \
  T *dz, *du, *col, *part; /* scratch: GroupNorm input and FiLM output gradients, im2col, per-sample norm grads */ \
  T *df, *dk, *dtf, *da1;  /* (fw), (dk), (E), (4E) */                            \
  const T *x;   /* input of the last forward, read by backward */

typedef struct { FC_UNET_WS_FIELDS(float) } fc_unet_ws;
typedef struct { FC_UNET_WS_FIELDS(double) } fc_unet_ws_ref;

fc_unet_ws *fc_unet_ws_new(const fc_unet_config *cfg, int max_batch);
void fc_unet_ws_free(fc_unet_ws *ws);

/* y (B, T * A) = v(t (B), x (B, T * A), c (B, C) or NULL when C = 0).
 * B <= max_batch. Allocates nothing; x must stay unchanged until the
 * backward of this forward. */
void fc_unet_forward(const fc_unet *net, fc_unet_ws *ws, float *y, const float *t, const float *x,
                     const float *c, int B);
/* Backward of the last forward for dL/dy = dy (B, T * A): dparams =
 * dL/dparams (NULL: no parameter gradients, the cheaper input-only pass),
 * or dparams += dL/dparams when accumulate is nonzero; dx (B, T * A) and dc (B, C) are overwritten with dL/dx, dL/dc when not NULL.
 * May run more than once after one forward. */
void fc_unet_backward(const fc_unet *net, fc_unet_ws *ws, float *dparams, int accumulate, float *dx,
                      float *dc, const float *dy, int B);

/* Reference in double precision with naive loops (same semantics as above). */
fc_unet_ws_ref *fc_unet_ws_new_ref(const fc_unet_config *cfg, int max_batch);
void fc_unet_ws_free_ref(fc_unet_ws_ref *ws);
void fc_unet_forward_ref(const fc_unet_config *cfg, const double *params, fc_unet_ws_ref *ws, double *y,
                         const double *t, const double *x, const double *c, int B);
void fc_unet_backward_ref(const fc_unet_config *cfg, const double *params, fc_unet_ws_ref *ws,
                          double *dparams, int accumulate, double *dx, double *dc, const double *dy, int B);

#endif
