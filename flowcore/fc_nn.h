/* fc_nn: flowcore-internal building blocks that the velocity networks
 * (fc_mlp, fc_unet) share, so that each kernel exists once:
 *   - the dense matmul kernels with llm.c's argument order (outputs first),
 *     split over fc_par's threads into single-threaded cblas_sgemm calls,
 *     and their naive double-precision twins (the specification that the
 *     networks' *_ref functions run on);
 *   - the branch-free exp that lets the activation loops vectorize.
 * The activations and the sinusoidal time embedding, which are templated on
 * the element type, are in fc_nn_impl.inc. Not a public API (the fc__ prefix):
 * programs use the networks' own headers.
 *
 * Shapes: in (M, IN) row-major, W (OUT, IN) row-major (PyTorch's Linear),
 * out (M, OUT) = in W^T + b. */
#ifndef FC_NN_H
#define FC_NN_H

#include <math.h>
#include <stdint.h>

/* out (M, OUT) = in (M, IN) W^T + b; b may be NULL (no bias). */
void fc__mm_fwd(float *out, const float *in, const float *w, const float *b, int M, int IN, int OUT);
/* dW (OUT, IN) = dout^T in and db (OUT) = column sums of dout, or += both
 * when acc; db may be NULL (not computed). */
void fc__mm_bwd_w(float *dw, float *db, const float *dout, const float *in, int M, int IN, int OUT, int acc);
/* din (M, IN) = dout (M, OUT) W, or += when acc. */
void fc__mm_bwd_x(float *din, const float *dout, const float *w, int M, int IN, int OUT, int acc);

/* The same three in double with naive loops. */
void fc__mm_fwd_ref(double *out, const double *in, const double *w, const double *b, int M, int IN, int OUT);
void fc__mm_bwd_w_ref(double *dw, double *db, const double *dout, const double *in, int M, int IN, int OUT,
                      int acc);
void fc__mm_bwd_x_ref(double *din, const double *dout, const double *w, int M, int IN, int OUT, int acc);

/* exp for the activations: a Cody-Waite reduction and a degree-6 Taylor
 * polynomial (relative error < 2e-7), branch-free so loops vectorize. The
 * argument saturates at +-40, where every activation is flat to float
 * precision. (With the full range [-87, 88] GCC specializes the clamped lanes
 * into x / (1 + e^88), a denormal for every lane, and each denormal costs a
 * microcode assist: SiLU ran 2.5x slower.) The clamp also maps NaN into
 * range, so the integer exponent below is always defined; the activations
 * still propagate NaN through their x factor. */
static inline float fc__expf(float x) {
  x = x > -40.0f ? x : -40.0f; /* false for NaN: -40 */
  x = x < 40.0f ? x : 40.0f;
  float k = floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - k * 0.693145751953125f;
  r = r - k * 1.428606765330187045e-06f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f +
            r * (0.008333334f + r * 0.0013888889f)))));
  union { int32_t i; float f; } sc;
  sc.i = ((int32_t)k + 127) << 23;
  return p * sc.f;
}

#endif
