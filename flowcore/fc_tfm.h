/* fc_tfm: a transformer velocity network v(t, x, c) over action chunks
 * (DiT, Peebles & Xie 2023, as action heads use it: GR00T's and others'),
 * with hand-written forward and backward passes on cblas_sgemm. Same API
 * shape as fc_mlp and fc_unet, so it plugs into one network interface
 * (fc_net.h, kind "transformer"); x must be a chunk of T steps of
 * A-dimensional actions.
 *
 * Data: x and y (B, T * A) are time-major, x[b][t * A + a]; inside, every
 * activation is (B, T, width) row-major, one token per chunk step, so the
 * linear layers of the whole batch are single matrix products over B T rows.
 *
 * Architecture (D = width, L = depth, H = heads of dh = D / H, F = ffn,
 * E = temb, act = GELU by default; Linear W is (out, in) as in PyTorch):
 *   time and condition, as fc_unet (so the two compare on one footing):
 *          e = sinusoidal embedding of t (E values), tf = W_t2 act(W_t1 e + b_t1) + b_t2
 *          k = [tf ; c],  km = act(k)                       (dk = E + C)
 *   modulation of every block at once: mod = Wm km + bm, per block
 *          [sh1 ; sc1 ; g1 ; sh2 ; sc2 ; g2] (adaLN: 6 D) or [sh1 ; sc1 ; sh2 ; sc2]
 *          (FiLM: 4 D, the gates fixed at 1), then the final [sh ; sc] (2 D)
 *   tokens: h = x_t W_in^T + b_in + pos_t                   (pos: learned, (T, D))
 *   block l = 1..L (pre-LayerNorm; LN without affine, eps 1e-6, as DiT):
 *          a = LN(h) (1 + sc1) + sh1
 *          [q ; k ; v] = a Wqkv^T + bqkv; per head softmax(q k^T / sqrt(dh)) v -> o
 *          h = h + g1 (o Wo^T + bo)
 *          m = LN(h) (1 + sc2) + sh2
 *          h = h + g2 (act(m W1^T + b1) W2^T + b2)
 *   out:   y_t = (LN(h) (1 + sc) + sh) W_out^T + b_out       (A values per token)
 * Attention is bidirectional over the T steps of the chunk (no mask).
 *
 * Cross-attention (cond FC_TFM_CROSS, Diffusion Policy's transformer): no
 * modulation; time and condition become S = 1 + Tc memory tokens instead
 * (Tc = ctok, c split into Tc tokens of cw = C / Tc values, a policy's To
 * observation frames; S = 1 without a condition):
 *          mem0 = [W_ct km[0:E] + b_ct ; W_co c_j + b_co (j < Tc)] + cpos   (S, D)
 *          mem  = W_e2 act(W_e1 mem0 + b_e1) + b_e2                        (DP's memory MLP, F wide)
 *   and every block gains a cross-attention between its two halves (LN
 *   without modulation everywhere, the final one too):
 *          h = h + SA(LN(h));  h = h + Wo2 CA(Wq2 LN(h) + bq2, Wkv2 mem + bkv2) + bo2;  h = h + MLP(LN(h))
 *   per head softmax(q2 k2^T / sqrt(dh)) v2 over the S memory tokens.
 *
 * Conditioning (cond): FC_TFM_ADALN is DiT's adaLN-Zero: the modulation
 * matrix and the output layer start at zero, so every block starts as the
 * identity and the network at v = 0; FC_TFM_FILM drops the gates and starts
 * from PyTorch's initialization everywhere. README ("the transformer") has
 * the measurement that picked the default (FiLM). FC_TFM_CROSS starts from
 * PyTorch's initialization too; it is DP's design with this network's
 * LayerNorms (no affine) and bidirectional attention (DP's is causal).
 *
 * Parameters: one flat float vector (fc_tfm_layout names the views; every
 * tensor row-major). The double-precision *_ref functions run the same layer
 * code with naive matmuls and attention loops: the specification and the
 * test oracle.
 *
 * Example: the velocity of B chunks of 16 steps of 2-D actions, conditioned
 * on 2 frames of 20-D observations
 *
 *   void chunk_velocity(const float *t, const float *x, const float *c, const float *dv, float *v,
 *                       int B) {
 *     fc_tfm_config cfg;
 *     fc_tfm_config_default(&cfg, 16, 2, 40);           // T = 16, A = 2, C = 40
 *     char err[256];
 *     if (fc_tfm_config_check(&cfg, err, sizeof(err))) {
 *       fprintf(stderr, "%s\n", err);
 *       return;
 *     }
 *     float *params = calloc(fc_tfm_nparams(&cfg), sizeof(float));
 *     float *grads = calloc(fc_tfm_nparams(&cfg), sizeof(float));
 *     fc_tfm net;
 *     fc_tfm_bind(&net, &cfg, params);
 *     fc_rng rng;
 *     fc_rng_seed(&rng, 0);
 *     fc_tfm_init(&net, &rng);
 *     fc_tfm_ws *ws = fc_tfm_ws_new(&cfg, B);             // scratch for batches up to B
 *     fc_tfm_forward(&net, ws, v, t, x, c, B);            // v: (B, 16 * 2)
 *     fc_tfm_backward(&net, ws, grads, 0, NULL, NULL, dv, B);  // grads = dL/dparams for dL/dv = dv
 *     fc_tfm_ws_free(ws);
 *     free(grads);
 *     free(params);
 *   }
 */
#ifndef FC_TFM_H
#define FC_TFM_H

#include <stddef.h>

#include "fc_mlp.h" /* fc_act, fc_tensor_info */
#include "fc_rng.h"

#define FC_TFM_MAX_DEPTH 32
#define FC_TFM_MAX_WIDTH 4096
#define FC_TFM_MAX_FFN 16384
#define FC_TFM_MAX_HORIZON 1024 /* T: attention is T x T per head */
#define FC_TFM_MAX_ADIM 4096
#define FC_TFM_MAX_COND 65536
#define FC_TFM_MAX_TEMB 4096

typedef enum { FC_TFM_ADALN = 0, FC_TFM_FILM = 1, FC_TFM_CROSS = 2 } fc_tfm_cond;

typedef struct {
  int dx;          /* T * A: dimension of x and of the output velocity */
  int dc;          /* C: condition dimension, may be 0 */
  int horizon;     /* T: tokens */
  int adim;        /* A: action dimension */
  int width;       /* D: model width, divisible by heads */
  int depth;       /* L: blocks, >= 1 */
  int heads;       /* H */
  int ffn;         /* F: hidden width of each block's MLP */
  int temb;        /* time-embedding size, even, >= 2 */
  fc_act act;      /* GELU (tanh form, as DiT), SiLU or Mish */
  fc_tfm_cond cond;
  int ctok;        /* cross: the condition's tokens Tc (C a multiple of it; 1 by default, a policy's To) */
} fc_tfm_config;

/* Offsets (in floats) of each tensor, in this order in the vector. */
typedef struct {
  size_t wqkv, bqkv, wo, bo;  /* (3D, D), (3D), (D, D), (D) */
  size_t wq2, bq2, wkv2, bkv2, wo2, bo2; /* cross only: (D, D), (D), (2D, D), (2D), (D, D), (D) */
  size_t w1, b1, w2, b2;      /* (F, D), (F), (D, F), (D) */
} fc_tfm_block;

typedef struct {
  int dk;                    /* temb + C */
  int nm;                    /* modulation vectors per block: 6 (adaLN), 4 (FiLM), 0 (cross) */
  int mw;                    /* modulation width: L nm D + 2 D (cross: 0) */
  int ns, cw;                /* cross: memory tokens S = 1 + Tc (1 without a condition), values per condition token */
  size_t tw1, tb1, tw2, tb2; /* time MLP (4E, E), (4E), (E, 4E), (E) */
  size_t w_in, b_in, pos;    /* (D, A), (D), (T, D) */
  size_t w_ct, b_ct, w_co, b_co, cpos; /* cross: time token (D, E), (D); condition tokens (D, cw), (D); (S, D) */
  size_t w_e1, b_e1, w_e2, b_e2;       /* cross: memory MLP (F, D), (F), (D, F), (D) */
  fc_tfm_block blk[FC_TFM_MAX_DEPTH];
  size_t wm, bm;             /* modulation: (mw, dk), (mw) */
  size_t w_out, b_out;       /* (A, D), (A) */
  size_t total;
} fc_tfm_layout;

typedef struct {
  fc_tfm_config cfg;
  fc_tfm_layout lay;
  float *params; /* lay.total floats, not owned */
} fc_tfm;

/* Defaults for chunks of T steps of A-dimensional actions, condition C:
 * width 128, depth 4, 4 heads, ffn 4 x width, temb 64, GELU, FiLM (about
 * 1.07M parameters at T 16). FiLM over adaLN-Zero by measurement: on lift's
 * selection seeds, at equal parameters, 98% against 94% and far fewer
 * sampler states out of bounds (README, "The transformer and latent action
 * flows"); the width's speed is in "lfp bench flowcore: the transformer". */
void fc_tfm_config_default(fc_tfm_config *cfg, int T, int A, int dc);
/* Name <-> enum ("adaln", "film", "cross"; fc_tfm_cond_names is that list,
 * NULL-terminated, for option parsers); -1 when unknown. */
extern const char *const fc_tfm_cond_names[];
const char *fc_tfm_cond_name(fc_tfm_cond c);
int fc_tfm_cond_parse(const char *s);
/* 0 when the config is usable, else -1 and a sentence in err. */
int fc_tfm_config_check(const fc_tfm_config *cfg, char *err, size_t errsz);
void fc_tfm_layout_make(fc_tfm_layout *lay, const fc_tfm_config *cfg);
size_t fc_tfm_nparams(const fc_tfm_config *cfg);
/* Multiply-adds of one forward pass for one sample (x 2 for FLOPs): the
 * linear layers and attention's two products, not the normalization,
 * softmax and activations. */
double fc_tfm_macs(const fc_tfm_config *cfg);
/* cfg with the width (a multiple of heads, ffn scaled alike) chosen so that
 * `copies` networks have the total parameter count closest to one network of
 * cfg, never wider than cfg (how LFM with N blocks is compared with FM). */
fc_tfm_config fc_tfm_width_matching(const fc_tfm_config *cfg, int copies);
/* Fill out[0..max) with the tensors of the layout in vector order; returns
 * their count (at most FC_TFM_MAX_TENSORS). Names like "time.fc1.w",
 * "in.w", "pos", "blk2.qkv.w", "mod.w", "out.b" (cross: "ctime.w", "ccond.w",
 * "cpos", "mem.fc1.w", "blk2.xq.w", "blk2.xkv.w", "blk2.xproj.w", no "mod").
 * The positional embeddings have fan_in 0 (they start from N(0, 0.02^2),
 * not from a fan-in). */
#define FC_TFM_MAX_TENSORS (4 + 3 + 9 + 14 * FC_TFM_MAX_DEPTH + 2 + 2)
int fc_tfm_tensors(const fc_tfm_config *cfg, fc_tensor_info *out, int max);

/* Point net at params (fc_tfm_nparams floats, owned by the caller); cfg
 * must pass fc_tfm_config_check. */
void fc_tfm_bind(fc_tfm *net, const fc_tfm_config *cfg, float *params);
/* PyTorch's Linear default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for every
 * linear layer, the positional embedding N(0, 0.02^2); with adaLN the
 * modulation and the output layer at zero (adaLN-Zero). */
void fc_tfm_init(fc_tfm *net, fc_rng *rng);

/* Activations of one pass, kept for backward, and the scratch of both
 * passes, in one allocation; one per thread/caller. (B, T, n) buffers. */
#define FC_TFM_WS_FIELDS(T)                                                                   \
  int max_batch;                                                                              \
  T *arena; /* every buffer below points into it */                                           \
  T *e, *h1, *a1, *tf, *k, *km, *mod; /* time (E), (4E), (4E), (E); (dk), (dk); (mw) */         \
  T *h[FC_TFM_MAX_DEPTH + 1];   /* the residual stream: block l's input, h[L] the last output (D) */ \
  T *xh1[FC_TFM_MAX_DEPTH], *a[FC_TFM_MAX_DEPTH], *qkv[FC_TFM_MAX_DEPTH]; /* LN, modulated (cross: xh1 itself), (3D) */ \
  T *p[FC_TFM_MAX_DEPTH], *o[FC_TFM_MAX_DEPTH], *ao[FC_TFM_MAX_DEPTH]; /* softmax (H T), heads, Wo o */ \
  T *hm[FC_TFM_MAX_DEPTH], *xh2[FC_TFM_MAX_DEPTH], *m[FC_TFM_MAX_DEPTH]; /* mid stream, LN, modulated (cross: xh2) */ \
  T *z1[FC_TFM_MAX_DEPTH], *u[FC_TFM_MAX_DEPTH], *z2[FC_TFM_MAX_DEPTH]; /* (F), act (F), (D) */ \
  T *rs1[FC_TFM_MAX_DEPTH], *rs2[FC_TFM_MAX_DEPTH]; /* 1/std per token (1) */                   \
  T *xhf, *rsf, *f;             /* final LN, 1/std, modulated (cross: xhf) */                           \
  T *dh, *dhm, *dt, *dqkv, *dp, *dbig; /* gradients: streams (D), a token (D), (3D), (H T), (F) */ \
  T *dmod, *dk, *dtf, *da1;     /* (mw), (dk), (E), (4E) */                                     \
  /* cross only: memory (S tokens) and each block's cross-attention */                           \
  T *kt, *tt, *co, *mem0, *me1, *meu, *mem; /* act(tf) (E), time token (D), condition tokens (Tc D), (S D), (S F) x 2, (S D) */ \
  T *xh3[FC_TFM_MAX_DEPTH], *q2[FC_TFM_MAX_DEPTH]; /* LN (no modulation: the queries' input), queries (D) */ \
  T *kv2[FC_TFM_MAX_DEPTH], *p2[FC_TFM_MAX_DEPTH], *o2[FC_TFM_MAX_DEPTH]; /* (S 2D), (H T S), (D) */ \
  T *ao2[FC_TFM_MAX_DEPTH], *hc[FC_TFM_MAX_DEPTH], *rs3[FC_TFM_MAX_DEPTH]; /* Wo2 o2, stream, 1/std */ \
  T *dkv2, *dmem, *dmeu, *dmem0, *dtt, *dco, *dp2; /* (S 2D), (S D), (S F), (S D), (D), (Tc D), (H T S) */ \
  const T *x, *c; /* inputs of the last forward, read by backward */

typedef struct { FC_TFM_WS_FIELDS(float) } fc_tfm_ws;
typedef struct { FC_TFM_WS_FIELDS(double) } fc_tfm_ws_ref;

fc_tfm_ws *fc_tfm_ws_new(const fc_tfm_config *cfg, int max_batch);
void fc_tfm_ws_free(fc_tfm_ws *ws);

/* y (B, T * A) = v(t (B), x (B, T * A), c (B, C) or NULL when C = 0).
 * B <= max_batch. Allocates nothing; x (and c, with cross-attention) must stay unchanged until the
 * backward of this forward. */
void fc_tfm_forward(const fc_tfm *net, fc_tfm_ws *ws, float *y, const float *t, const float *x, const float *c,
                    int B);
/* Backward of the last forward for dL/dy = dy (B, T * A): dparams =
 * dL/dparams (NULL: no parameter gradients, the cheaper input-only pass),
 * or dparams += dL/dparams when accumulate is nonzero; dx (B, T * A) and dc
 * (B, C) are overwritten with dL/dx, dL/dc when not NULL. May run more than
 * once after one forward. */
void fc_tfm_backward(const fc_tfm *net, fc_tfm_ws *ws, float *dparams, int accumulate, float *dx, float *dc,
                     const float *dy, int B);

/* Reference in double precision with naive loops (same semantics as above). */
fc_tfm_ws_ref *fc_tfm_ws_new_ref(const fc_tfm_config *cfg, int max_batch);
void fc_tfm_ws_free_ref(fc_tfm_ws_ref *ws);
void fc_tfm_forward_ref(const fc_tfm_config *cfg, const double *params, fc_tfm_ws_ref *ws, double *y,
                        const double *t, const double *x, const double *c, int B);
void fc_tfm_backward_ref(const fc_tfm_config *cfg, const double *params, fc_tfm_ws_ref *ws, double *dparams,
                         int accumulate, double *dx, double *dc, const double *dy, int B);

#endif
