/* fc_ae: an autoencoder x (dx) -> z (dz) -> x (dx), two MLPs with
 * hand-written forward and backward passes on cblas_sgemm, for flow
 * matching in a learned latent space (Jiao et al., seed 000: pre-train the
 * autoencoder by reconstruction, then run the flow in its latent space and
 * decode its samples). The policies use it on normalized action chunks
 * (lfp train --latent d).
 *
 * Architecture (Linear W is (out, in) as in PyTorch, act SiLU by default):
 *   encoder: h = act(W_e1 x + b) -> (depth - 1) x act(W h + b) -> z = W_ez h + b
 *   decoder: h = act(W_d1 z + b) -> (depth - 1) x act(W h + b) -> x' = W_dx h + b
 * The hidden layers are `width` wide; depth >= 1 hidden layers a side.
 * Loss: the mean over the batch and the dx values of (x' - x)^2.
 *
 * Latent scale: fc_ae_fit also measures the latents of the training data
 * and stores their mean and standard deviation per dimension (mu, sd), so
 * that a flow from N(0, I) runs on (z - mu) / sd, at the scale of its
 * source (as latent diffusion scales its latents). fc_ae_encode_std and
 * fc_ae_decode_std apply it.
 *
 * Parameters: one flat float vector, the layers in order (encoder first),
 * each W then b. The double-precision fc_ae_loss_grad_ref runs the same
 * layer code with naive loops: the specification and the test oracle.
 *
 * Example: fit an autoencoder of 112-D chunks to 8 latent dimensions, then
 * round-trip one
 *
 *   int fit(const float *x, size_t n, const float *vx, size_t nv, float *z, float *back) {
 *     fc_ae_config cfg;
 *     fc_ae_config_default(&cfg, 112, 8);               // width 256, depth 2, SiLU
 *     char err[256];
 *     if (fc_ae_config_check(&cfg, err, sizeof(err))) return fprintf(stderr, "%s\n", err), -1;
 *     fc_ae *ae = fc_ae_new(&cfg);
 *     fc_ae_fit_config fc;
 *     fc_ae_fit_config_default(&fc);                    // 4000 steps of batch 256, lr 1e-3
 *     fc_ae_fit_result res;
 *     if (fc_ae_fit(ae, x, n, vx, nv, &fc, &res, err, sizeof(err))) return fprintf(stderr, "%s\n", err), -1;
 *     printf("validation reconstruction MSE %.5f\n", res.valid_mse);
 *     fc_ae_ws *ws = fc_ae_ws_new(&cfg, 1);
 *     fc_ae_encode_std(ae, ws, z, x, 1);                 // z: (1, 8), standardized
 *     fc_ae_decode_std(ae, ws, back, z, 1);              // back: (1, 112)
 *     fc_ae_ws_free(ws);
 *     fc_ae_free(ae);
 *     return 0;
 *   }
 */
#ifndef FC_AE_H
#define FC_AE_H

#include <stddef.h>
#include <stdint.h>

#include "fc_ckpt.h"
#include "fc_mlp.h" /* fc_act, fc_tensor_info */
#include "fc_rng.h"

#define FC_AE_MAX_DEPTH 8
#define FC_AE_MAX_WIDTH 8192
#define FC_AE_MAX_DIM 65536
#define FC_AE_MAX_LAYERS (2 * (FC_AE_MAX_DEPTH + 1))

typedef struct {
  int dx;     /* data dimension */
  int dz;     /* latent dimension, 1..dx */
  int width;  /* hidden width */
  int depth;  /* hidden layers per side, >= 1 */
  fc_act act;
} fc_ae_config;

/* width 256, depth 2, SiLU */
void fc_ae_config_default(fc_ae_config *cfg, int dx, int dz);
/* 0 when usable, else -1 and a sentence in err. */
int fc_ae_config_check(const fc_ae_config *cfg, char *err, size_t errsz);
size_t fc_ae_nparams(const fc_ae_config *cfg);
/* Multiply-adds of one encode plus one decode for one sample. */
double fc_ae_macs(const fc_ae_config *cfg);
/* The layers' weights and biases in vector order ("enc0.w", "dec2.b");
 * returns their count, which may exceed max (only max are written). */
int fc_ae_tensors(const fc_ae_config *cfg, fc_tensor_info *out, int max);

typedef struct {
  fc_ae_config cfg;
  float *params; /* fc_ae_nparams floats, owned */
  float *mu, *sd; /* (dz) the training latents' mean and standard deviation (0 and 1 before fc_ae_fit) */
} fc_ae;

/* A new autoencoder of a checked config, PyTorch's Linear initialization
 * from rng (NULL: parameters zero, for loading). */
fc_ae *fc_ae_new(const fc_ae_config *cfg);
void fc_ae_init(fc_ae *ae, fc_rng *rng);
fc_ae *fc_ae_clone(const fc_ae *ae);
void fc_ae_free(fc_ae *ae);

typedef struct fc_ae_ws fc_ae_ws;
fc_ae_ws *fc_ae_ws_new(const fc_ae_config *cfg, int max_batch);
void fc_ae_ws_free(fc_ae_ws *ws);

/* z (B, dz) = encoder(x (B, dx)); x (B, dx) = decoder(z); B <= max_batch.
 * The _std forms standardize: z = (encoder(x) - mu) / sd, x = decoder(mu + sd z). */
void fc_ae_encode(const fc_ae *ae, fc_ae_ws *ws, float *z, const float *x, int B);
void fc_ae_decode(const fc_ae *ae, fc_ae_ws *ws, float *x, const float *z, int B);
void fc_ae_encode_std(const fc_ae *ae, fc_ae_ws *ws, float *z, const float *x, int B);
void fc_ae_decode_std(const fc_ae *ae, fc_ae_ws *ws, float *x, const float *z, int B);
/* The reconstruction loss of a batch; with grads not NULL, grads = its
 * gradient for the parameters. */
double fc_ae_loss_grad(const fc_ae *ae, fc_ae_ws *ws, float *grads, const float *x, int B);
/* The same in double precision with naive loops (the oracle). */
double fc_ae_loss_grad_ref(const fc_ae_config *cfg, const double *params, double *grads, const double *x, int B);

/* ---------- fitting ---------- */

typedef struct {
  int64_t steps;  /* AdamW steps */
  int batch;
  float lr;       /* peak; warm-up a tenth (at most 500 steps), cosine decay */
  uint64_t seed;  /* initialization and minibatches */
} fc_ae_fit_config;

typedef struct {
  double train_mse, valid_mse; /* on all training rows and all validation rows (NaN without) */
  double seconds;
} fc_ae_fit_result;

/* steps 4000, batch 256, lr 1e-3, seed 0 */
void fc_ae_fit_config_default(fc_ae_fit_config *c);
/* Initialize ae from c->seed, train it on the n rows of x (n, dx), then set
 * mu, sd from the training latents (sd floored at 1e-6); the MSE of the
 * training rows and of the nv validation rows vx (may be 0) in res. The
 * minibatch draws do not depend on the thread count. -1 and a sentence in
 * err when there is nothing to fit or the loss stops being finite. */
int fc_ae_fit(fc_ae *ae, const float *x, size_t n, const float *vx, size_t nv, const fc_ae_fit_config *c,
              fc_ae_fit_result *res, char *err, size_t errsz);
/* The mean squared reconstruction error of n rows (batches of 256). */
double fc_ae_mse(const fc_ae *ae, const float *x, size_t n);

/* ---------- checkpoint section ----------
 * name: i32 dx, dz, width, depth, act; f32 mu (dz), sd (dz), params. Reading
 * bounds every field before anything is sized from it and refuses a
 * non-finite or non-positive sd. */
void fc_ae_save(const fc_ae *ae, fc_ckpt_writer *w, const char *name);
/* NULL and a sentence in why (prefixed with the section's name) when the
 * section is missing (*missing = 1) or malformed. */
fc_ae *fc_ae_load(const fc_ckpt *ck, const char *name, int *missing, char *why, size_t n);

#endif
