/* fc_mlp: the velocity network v(t, x, c), a residual MLP with hand-written
 * forward and backward passes on cblas_sgemm.
 *
 * Architecture (W is (out, in) row-major, y = x W^T + b as in PyTorch):
 *   e   = sinusoidal embedding of t (temb values: sin then cos, t scaled by 1000)
 *   FiLM mode:   h0 = W_in x + b_in            k = [e ; c]
 *   concat mode: h0 = W_in [x ; e ; c] + b_in  (no FiLM)
 *   FiLM: [g_1 ; be_1 ; ... ; g_L ; be_L] = Wf k + bf   (one matmul for all blocks)
 *   block l = 1..depth (pre-activation residual):
 *     a = W1 act(h) + b1
 *     FiLM: m = a * (1 + g_l) + be_l                       (concat: m = a)
 *     h <- h + W2 act(m) + b2
 *   y = W_out act(h) + b_out
 *
 * All weights live in one flat float vector (params); fc_mlp_layout names the
 * views, so gradients, AdamW moments and EMA share one layout and every
 * optimizer / checkpoint / gradient-check operation is a loop over one array.
 *
 * The double-precision *_ref functions run the same layer code with naive
 * loops instead of BLAS: they are the specification and the test oracle.
 *
 * Example: a batch of B points x (B, 2) at times t (B), no condition
 *
 *   void velocity(const float *t, const float *x, const float *dv, float *v, int B) {
 *     fc_mlp_config cfg;
 *     fc_mlp_config_default(&cfg, 2, 0);                 // D = 2, C = 0
 *     float *params = calloc(fc_mlp_nparams(&cfg), sizeof(float));
 *     float *grads = calloc(fc_mlp_nparams(&cfg), sizeof(float));
 *     fc_mlp net;
 *     fc_mlp_bind(&net, &cfg, params);
 *     fc_rng rng;
 *     fc_rng_seed(&rng, 0);
 *     fc_mlp_init(&net, &rng);
 *     fc_mlp_ws *ws = fc_mlp_ws_new(&cfg, B);            // scratch for batches up to B
 *     fc_mlp_forward(&net, ws, v, t, x, NULL, B);        // v: (B, D)
 *     fc_mlp_backward(&net, ws, grads, 0, NULL, NULL, dv, B);  // grads = dL/dparams for dL/dv = dv
 *     fc_mlp_ws_free(ws);
 *     free(grads);
 *     free(params);
 *   }
 */
#ifndef FC_MLP_H
#define FC_MLP_H

#include <stddef.h>

#include "fc_rng.h"

typedef enum { FC_ACT_SILU = 0, FC_ACT_MISH = 1, FC_ACT_GELU = 2 } fc_act;
typedef enum { FC_COND_FILM = 0, FC_COND_CONCAT = 1 } fc_cond_mode;

typedef struct {
  int dx;            /* D: dimension of x and of the output velocity */
  int dc;            /* C: condition dimension, may be 0 */
  int width;         /* H: hidden width */
  int depth;         /* number of residual blocks (>= 0; >= 1 with FiLM, which acts in the blocks) */
  int temb;          /* time-embedding size, even, >= 2 */
  fc_act act;        /* SiLU, Mish or GELU (tanh form) */
  fc_cond_mode cond; /* how t and c enter: FiLM per block, or concatenated at the input */
} fc_mlp_config;

/* Offsets (in floats) of each tensor in the flat parameter vector. */
typedef struct {
  int din;           /* input-layer fan-in: D (FiLM) or D + temb + C (concat) */
  int dk;            /* FiLM condition size temb + C, 0 in concat mode */
  size_t w_in, b_in; /* (H, din), (H) */
  size_t blocks;     /* offset of block 0; block l starts at blocks + l * blk_stride */
  size_t blk_stride;
  size_t w1, b1, w2, b2; /* within a block: (H, H), (H), (H, H), (H) */
  size_t wf, bf;         /* FiLM of all blocks: (depth * 2H, dk), (depth * 2H); FiLM mode only */
  size_t w_out, b_out;   /* (D, H), (D) */
  size_t total;
} fc_mlp_layout;

typedef struct {
  fc_mlp_config cfg;
  fc_mlp_layout lay;
  float *params;     /* lay.total floats, not owned */
} fc_mlp;

/* One named tensor of the layout, for tests, diagnostics and initialization. */
typedef struct {
  char name[24];
  size_t offset;
  int rows, cols;    /* a bias has rows = n, cols = 1 */
  int fan_in;
} fc_tensor_info;

/* Defaults: width 256, depth 3, temb 32, SiLU, FiLM. */
void fc_mlp_config_default(fc_mlp_config *cfg, int dx, int dc);
/* 0 when the config is usable, else -1 and a sentence in err. */
int fc_mlp_config_check(const fc_mlp_config *cfg, char *err, size_t errsz);
void fc_mlp_layout_make(fc_mlp_layout *lay, const fc_mlp_config *cfg);
size_t fc_mlp_nparams(const fc_mlp_config *cfg);
/* Multiply-adds of one forward pass for one sample (x 2 for FLOPs). */
double fc_mlp_macs(const fc_mlp_config *cfg);
/* The width w <= cfg->width for which `copies` networks of cfg with width w
 * have the total parameter count closest to one network of cfg (how LFM with
 * N blocks is compared with FM at the same size). */
int fc_mlp_width_matching(const fc_mlp_config *cfg, int copies);
/* Fill out[0..n) with the tensors of the layout in order; returns their count
 * (at most FC_MLP_MAX_TENSORS). */
#define FC_MLP_MAX_TENSORS (4 + 4 * 64 + 2)
int fc_mlp_tensors(const fc_mlp_config *cfg, fc_tensor_info *out, int max);

/* Point net at params (fc_mlp_nparams floats, owned by the caller). */
void fc_mlp_bind(fc_mlp *net, const fc_mlp_config *cfg, float *params);
/* PyTorch's Linear default: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
void fc_mlp_init(fc_mlp *net, fc_rng *rng);

/* Activations of one pass, kept for backward; one per thread/caller. */
#define FC_MLP_WS_FIELDS(T)                                                     \
  int max_batch;                                                                \
  T *in0;  /* (B, din) concat-mode input */                                     \
  T *k;    /* (B, dk) FiLM condition [e ; c] */                                 \
  T *h;    /* (depth + 1, B, H) residual stream */                              \
  T *u;    /* (depth + 1, B, H) act(h) */                                       \
  T *a;    /* (depth, B, H) first linear of each block */                       \
  T *f;    /* (depth, B, 2H) FiLM [g ; be] */                                   \
  T *m;    /* (depth, B, H) modulated */                                        \
  T *z;    /* (depth, B, H) act(m) */                                           \
  T *dh, *dt1, *dt2; /* backward scratch (B, H) each */                         \
  T *df;   /* (B, 2H) */                                                        \
  T *dk;   /* (B, dk) */                                                        \
  T *din;  /* (B, din) */                                                       \
  const T *xin; /* input used by the last forward (x or in0) */

typedef struct { FC_MLP_WS_FIELDS(float) } fc_mlp_ws;
typedef struct { FC_MLP_WS_FIELDS(double) } fc_mlp_ws_ref;

fc_mlp_ws *fc_mlp_ws_new(const fc_mlp_config *cfg, int max_batch);
void fc_mlp_ws_free(fc_mlp_ws *ws);

/* y (B, D) = v(t (B), x (B, D), c (B, C) or NULL when C = 0). B <= max_batch.
 * Allocates nothing. */
void fc_mlp_forward(const fc_mlp *net, fc_mlp_ws *ws, float *y, const float *t,
                    const float *x, const float *c, int B);
/* Backward of the last forward for dL/dy = dy (B, D): dparams = dL/dparams
 * (NULL: no parameter gradients, the cheaper input-only pass),
 * or dparams += dL/dparams when accumulate is nonzero; dx (B, D) and dc (B, C)
 * are overwritten with dL/dx, dL/dc when not NULL. */
void fc_mlp_backward(const fc_mlp *net, fc_mlp_ws *ws, float *dparams, int accumulate, float *dx,
                     float *dc, const float *dy, int B);

/* Reference in double precision with naive loops (same semantics as above). */
fc_mlp_ws_ref *fc_mlp_ws_new_ref(const fc_mlp_config *cfg, int max_batch);
void fc_mlp_ws_free_ref(fc_mlp_ws_ref *ws);
void fc_mlp_forward_ref(const fc_mlp_config *cfg, const double *params, fc_mlp_ws_ref *ws,
                        double *y, const double *t, const double *x, const double *c, int B);
void fc_mlp_backward_ref(const fc_mlp_config *cfg, const double *params, fc_mlp_ws_ref *ws,
                         double *dparams, int accumulate, double *dx, double *dc, const double *dy,
                         int B);

/* Activation and derivative on one value (double), for tests. */
double fc_act_ref(fc_act act, double x, double *dydx);
/* Name <-> enum ("silu", "mish", "gelu"; "film", "concat"); -1 when unknown. */
const char *fc_act_name(fc_act act);
int fc_act_parse(const char *s);
const char *fc_cond_name(fc_cond_mode c);
int fc_cond_parse(const char *s);

#endif
