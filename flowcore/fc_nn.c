/* fc_nn: the dense matmul kernels the velocity networks share (fc_nn.h):
 * float on cblas_sgemm split over fc_par's threads, double on naive loops. */
#include "fc_nn.h"

#include <cblas.h>
#include <string.h>

#include "fc_par.h"

/* ---------- float: BLAS ---------- */

/* Each matmul is split over fc_par's threads along the longer side of its
 * output, every part a single-threaded BLAS call with no reduction across
 * threads: every thread then reads all of the smaller operand and its own
 * slice of the larger one. For the MLP (batch 256, width 512) that is the
 * output's columns, i.e. each thread on its own slice of the weights (about
 * 150 GFLOP/s on 2 cores at 256 x 512 x 512 against 120 for row splits); for
 * a convolution over batch x length rows (4096 x 64 at the U-Net's first
 * level) it is the rows, so that each thread reads half of the im2col
 * matrix instead of all of it. Small products run on the calling thread. */
typedef struct {
  float *out, *db;
  const float *in, *w, *b;
  int M, IN, OUT, acc;
} s_mm_job;

static void s_mm_split(s_mm_job *j, size_t n, fc_par_fn fn) {
  double macs = (double)j->M * j->IN * j->OUT;
  fc_par_for(n, macs >= (double)(1 << 20) ? 16 : n, fn, j);
}

/* out[:, lo:hi] = in W[lo:hi]^T + b[lo:hi] */
static void s_mm_fwd_cols(void *ctx, size_t lo, size_t hi) {
  const s_mm_job *j = ctx;
  const int N = (int)(hi - lo), IN = j->IN, OUT = j->OUT, M = j->M;
  float *out = j->out + lo;
  const float *w = j->w + lo * (size_t)IN;
  if (j->b)
    for (int i = 0; i < M; i++) memcpy(out + (size_t)i * OUT, j->b + lo, (size_t)N * sizeof(float));
  const float beta = j->b ? 1.0f : 0.0f;
  if (M == 1)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, N, IN, 1.0f, w, IN, j->in, 1, beta, out, 1);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, IN, 1.0f, j->in, IN, w, IN, beta, out, OUT);
}

/* out[lo:hi, :] = in[lo:hi] W^T + b */
static void s_mm_fwd_rows(void *ctx, size_t lo, size_t hi) {
  const s_mm_job *j = ctx;
  const int R = (int)(hi - lo), IN = j->IN, OUT = j->OUT;
  float *out = j->out + lo * (size_t)OUT;
  if (j->b)
    for (int i = 0; i < R; i++) memcpy(out + (size_t)i * OUT, j->b, (size_t)OUT * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, OUT, IN, 1.0f, j->in + lo * (size_t)IN, IN, j->w, IN,
              j->b ? 1.0f : 0.0f, out, OUT);
}

void fc__mm_fwd(float *out, const float *in, const float *w, const float *b, int M, int IN, int OUT) {
  s_mm_job j = {out, NULL, in, w, b, M, IN, OUT, 0};
  if (M > OUT) s_mm_split(&j, (size_t)M, s_mm_fwd_rows);
  else s_mm_split(&j, (size_t)OUT, s_mm_fwd_cols);
}

/* dW[lo:hi] (+)= dout[:, lo:hi]^T in; db[lo:hi] (+)= column sums of dout */
static void s_mm_bwd_w_rows(void *ctx, size_t lo, size_t hi) {
  const s_mm_job *j = ctx;
  const int R = (int)(hi - lo), IN = j->IN, OUT = j->OUT, M = j->M;
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, IN, M, 1.0f, j->in + lo, OUT, j->w, IN,
              j->acc ? 1.0f : 0.0f, j->out + lo * (size_t)IN, IN);
  if (!j->db) return;
  if (!j->acc) memset(j->db + lo, 0, (hi - lo) * sizeof(float));
  for (int i = 0; i < M; i++) {
    const float *d = j->in + (size_t)i * OUT;
    for (size_t o = lo; o < hi; o++) j->db[o] += d[o];
  }
}

/* dW[:, lo:hi] (+)= dout^T in[:, lo:hi]; chunk 0 also db (+)= column sums of dout */
static void s_mm_bwd_w_cols(void *ctx, size_t lo, size_t hi) {
  const s_mm_job *j = ctx;
  const int N = (int)(hi - lo), IN = j->IN, OUT = j->OUT, M = j->M;
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, N, M, 1.0f, j->in, OUT, j->w + lo, IN,
              j->acc ? 1.0f : 0.0f, j->out + lo, IN);
  if (!j->db || lo) return;
  if (!j->acc) memset(j->db, 0, (size_t)OUT * sizeof(float));
  for (int i = 0; i < M; i++) {
    const float *d = j->in + (size_t)i * OUT;
    for (int o = 0; o < OUT; o++) j->db[o] += d[o];
  }
}

void fc__mm_bwd_w(float *dw, float *db, const float *dout, const float *in, int M, int IN, int OUT, int acc) {
  s_mm_job j = {dw, db, dout, in, NULL, M, IN, OUT, acc};
  if (IN > OUT) s_mm_split(&j, (size_t)IN, s_mm_bwd_w_cols);
  else s_mm_split(&j, (size_t)OUT, s_mm_bwd_w_rows);
}

/* din[:, lo:hi] (+)= dout W[:, lo:hi] */
static void s_mm_bwd_x_cols(void *ctx, size_t lo, size_t hi) {
  const s_mm_job *j = ctx;
  const int N = (int)(hi - lo), IN = j->IN, OUT = j->OUT;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->M, N, OUT, 1.0f, j->in, OUT, j->w + lo, IN,
              j->acc ? 1.0f : 0.0f, j->out + lo, IN);
}

/* din[lo:hi, :] (+)= dout[lo:hi] W */
static void s_mm_bwd_x_rows(void *ctx, size_t lo, size_t hi) {
  const s_mm_job *j = ctx;
  const int R = (int)(hi - lo), IN = j->IN, OUT = j->OUT;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, IN, OUT, 1.0f, j->in + lo * (size_t)OUT, OUT, j->w, IN,
              j->acc ? 1.0f : 0.0f, j->out + lo * (size_t)IN, IN);
}

void fc__mm_bwd_x(float *din, const float *dout, const float *w, int M, int IN, int OUT, int acc) {
  s_mm_job j = {din, NULL, dout, w, NULL, M, IN, OUT, acc};
  if (M > IN) s_mm_split(&j, (size_t)M, s_mm_bwd_x_rows);
  else s_mm_split(&j, (size_t)IN, s_mm_bwd_x_cols);
}

/* ---------- double: naive loops, the specification ---------- */

void fc__mm_fwd_ref(double *out, const double *in, const double *w, const double *b, int M, int IN, int OUT) {
  for (int i = 0; i < M; i++)
    for (int o = 0; o < OUT; o++) {
      double s = b ? b[o] : 0.0;
      for (int k = 0; k < IN; k++) s += in[(size_t)i * IN + k] * w[(size_t)o * IN + k];
      out[(size_t)i * OUT + o] = s;
    }
}

void fc__mm_bwd_w_ref(double *dw, double *db, const double *dout, const double *in, int M, int IN, int OUT,
                      int acc) {
  for (int o = 0; o < OUT; o++) {
    for (int k = 0; k < IN; k++) {
      double s = 0;
      for (int i = 0; i < M; i++) s += dout[(size_t)i * OUT + o] * in[(size_t)i * IN + k];
      dw[(size_t)o * IN + k] = (acc ? dw[(size_t)o * IN + k] : 0.0) + s;
    }
    if (!db) continue;
    double s = 0;
    for (int i = 0; i < M; i++) s += dout[(size_t)i * OUT + o];
    db[o] = (acc ? db[o] : 0.0) + s;
  }
}

void fc__mm_bwd_x_ref(double *din, const double *dout, const double *w, int M, int IN, int OUT, int acc) {
  for (int i = 0; i < M; i++)
    for (int k = 0; k < IN; k++) {
      double s = 0;
      for (int o = 0; o < OUT; o++) s += dout[(size_t)i * OUT + o] * w[(size_t)o * IN + k];
      din[(size_t)i * IN + k] = (acc ? din[(size_t)i * IN + k] : 0.0) + s;
    }
}
