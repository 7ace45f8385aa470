/* lfp bench: benchmarks (ratios measured side by side in one run, never
 * timed tests). `lfp bench flowcore` times the reference velocity network
 * against the OpenBLAS sgemm peak, the sgemv memory floor and PyTorch;
 * datasets, envs here too; node in bench_node.c. */
#define _GNU_SOURCE /* sched_setaffinity, CPU_* */
#include <cblas.h>
#include <dirent.h>
#include <sched.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fc_par.h"
#include "commands.h"
#include "ds_file.h"
#include "fc_norm.h"
#include "ds_seq.h"
#include "ds_writer.h"
#include "env.h"
#include <pthread.h>
#include "flowcore.h"

static double s_median(double *v, int n) {
  fc_sort(v, n);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* GFLOP/s of one square sgemm on OpenBLAS's own threads: what the BLAS
 * reaches on this machine at its best shape */
typedef struct {
  int n;
  float *a, *b, *c;
} s_peak;

static void s_peak_init(s_peak *p, int n) {
  p->n = n;
  p->a = fc_malloc((size_t)n * n * sizeof(float));
  p->b = fc_malloc((size_t)n * n * sizeof(float));
  p->c = fc_calloc((size_t)n * n, sizeof(float));
  for (size_t i = 0; i < (size_t)n * n; i++) {
    p->a[i] = (float)((i % 7) - 3) * 0.1f;
    p->b[i] = (float)((i % 5) - 2) * 0.1f;
  }
}

static double s_peak_sample(s_peak *p, int threads) {
  const int n = p->n;
  openblas_set_num_threads(threads);
  double t0 = cli_now();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, p->a, n, p->b, n, 0.0f, p->c, n);
  double g = 2.0 * n * (double)n * n / (cli_now() - t0) * 1e-9;
  openblas_set_num_threads(1); /* flowcore splits its matmuls itself */
  return g;
}

static void s_peak_free(s_peak *p) {
  free(p->a);
  free(p->b);
  free(p->c);
}

/* pull "key": number out of a JSON line; NAN when absent or null */
static double s_json_number(const char *line, const char *key) {
  char pat[96];
  snprintf(pat, sizeof(pat), "\"%s\":", key);
  const char *p = strstr(line, pat);
  if (!p) return NAN;
  p += strlen(pat);
  while (*p == ' ') p++;
  char *end;
  double v = strtod(p, &end);
  return end == p ? NAN : v;
}

typedef struct {
  double train_sps, fwd_b1_us, fwd_b1_addmv_us, threads;
  char version[32];
  int ok;
} s_torch;

static void s_run_torch(const char *script, const char *python, const char *args, s_torch *out) {
  memset(out, 0, sizeof(*out));
  out->train_sps = out->fwd_b1_us = out->fwd_b1_addmv_us = NAN;
  struct stat st;
  if (stat(script, &st) != 0 || stat(python, &st) != 0) return;
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "'%s' '%s' --json %s 2>/dev/null", python, script, args);
  FILE *p = popen(cmd, "r");
  if (!p) return;
  char line[4096], last[4096] = "";
  while (fgets(line, sizeof(line), p)) {
    if (line[0] == '{') snprintf(last, sizeof(last), "%s", line);
    else fputs(line, stderr);
  }
  int rc = pclose(p);
  if (rc != 0 || !last[0]) return;
  out->train_sps = s_json_number(last, "torch_train_samples_per_s");
  out->fwd_b1_us = s_json_number(last, "torch_fwd_b1_us");
  out->fwd_b1_addmv_us = s_json_number(last, "torch_fwd_b1_addmv_us");
  out->threads = s_json_number(last, "torch_train_threads");
  const char *v = strstr(last, "\"torch_version\": \"");
  if (v) sscanf(v + 18, "%31[^\"]", out->version);
  out->ok = isfinite(out->train_sps) && isfinite(out->fwd_b1_us);
}

/* pin every thread of this process (the pool's workers, OpenBLAS's) to
 * `set`; threads created afterwards inherit the caller's mask */
static void s_pin_process(const cpu_set_t *set) {
  DIR *d = opendir("/proc/self/task");
  if (!d) {
    sched_setaffinity(0, sizeof(*set), set);
    return;
  }
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') sched_setaffinity((pid_t)atoi(e->d_name), sizeof(*set), set);
  closedir(d);
}

/* seconds per step of a small training run (the toy's FM: 2-D data, width
 * 256, depth 2, batch 256), the same work every call */
static double s_small_run(const float *data, int n, int steps) {
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, 2, 0);
  lc.nblocks = 1;
  lc.net.mlp.width = 256;
  lc.net.mlp.depth = 2;
  char err[256];
  fc_lfm *m = fc_lfm_new(&lc, err, sizeof(err));
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.batch = 256;
  tc.steps = steps + 5;
  tc.seed = 5;
  fc_lfm_trainer *tr = fc_lfm_trainer_new(m, data, NULL, (size_t)n, &tc, err, sizeof(err));
  FC_ASSERT(m && tr);
  for (int i = 0; i < 5; i++) fc_lfm_trainer_step(tr);
  double t0 = cli_now();
  for (int i = 0; i < steps; i++) fc_lfm_trainer_step(tr);
  double per = (cli_now() - t0) / steps;
  fc_lfm_trainer_free(tr);
  fc_lfm_free(m);
  return per;
}

/* the pool oversubscribed: the small run with `threads` threads on one core,
 * over the same run with one thread on that core (the ideal), in alternating
 * rounds; the median of the per-round ratios. The process's CPU mask and the
 * pool's thread count are restored afterwards. */
static double s_pinned_slowdown(int threads, int rounds, double *t_pool, double *t_one) {
  cpu_set_t orig, one;
  if (sched_getaffinity(0, sizeof(orig), &orig) != 0) return NAN;
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &orig)) {
      CPU_SET(c, &one);
      break;
    }
  const int restore = fc_threads(), n = 2048, steps = 100;
  float *data = fc_malloc((size_t)n * 2 * sizeof(float));
  fc_rng rng;
  fc_rng_seed(&rng, 9);
  fc_rng_normal_fill(&rng, data, (size_t)n * 2);
  double ratio[16], tp[16], t1[16];
  if (rounds > 16) rounds = 16;
  s_pin_process(&one);
  for (int r = 0; r < rounds; r++) {
    fc_par_init(1);
    t1[r] = s_small_run(data, n, steps);
    fc_par_init(threads);
    tp[r] = s_small_run(data, n, steps);
    ratio[r] = tp[r] / t1[r];
  }
  s_pin_process(&orig);
  fc_par_init(restore);
  free(data);
  *t_pool = s_median(tp, rounds);
  *t_one = s_median(t1, rounds);
  return s_median(ratio, rounds);
}

/* the reference network: an mlp, x 112 (Tp 16 x 7-D actions), condition 38
 * (To 2 x 19-D Lift observations), width 512, 4 residual blocks; batch 256
 * (tools/bench_torch.py builds the same in PyTorch) */
static void s_reference_net(fc_net_config *cfg) {
  fc_net_config_default(cfg, FC_NET_MLP, 112, 38);
  cfg->mlp.width = 512;
  cfg->mlp.depth = 4;
}

/* The chunk networks (the U-Net, the transformer; through fc_net, not
 * fc_flow): one training step as the trainer's (FM loss on the linear
 * interpolant, forward, backward, gradient-norm clipping, AdamW + EMA in one
 * sweep) at batch B, in rounds of `per_round` steps that each start with
 * one sgemm peak sample; batch-1 forward latency on one thread; PyTorch's
 * twin at the same sizes. */
typedef struct {
  int T, A, C;
  fc_net_config cfg;
  size_t params;
  double macs, train_sps, train_gflops, peak_fraction, fwd_b1_us;
  s_torch th;
} s_chunk_case;

/* the U-Net case's config: fc_unet's default, with the options' dims and
 * temb when given (dims[0] = 0: not given); 0 when usable */
static int s_unet_setup(s_chunk_case *uc, const int *dims, int temb, char *err, size_t errsz) {
  fc_net_config_default(&uc->cfg, FC_NET_UNET, uc->T * uc->A, uc->C);
  fc_unet_config *cfg = &uc->cfg.unet;
  fc_unet_config_default(cfg, uc->T, uc->A, uc->C);
  if (dims[0] > 0) {
    int n = 0;
    while (n < FC_UNET_MAX_LEVELS && dims[n] > 0) n++;
    cfg->nlevels = n;
    for (int i = 0; i < FC_UNET_MAX_LEVELS; i++) cfg->dims[i] = i < n ? dims[i] : 0;
  }
  if (temb > 0) cfg->temb = temb;
  return fc_net_config_check(&uc->cfg, err, errsz);
}

/* the transformer case's config: fc_tfm's default, with the options' width
 * and depth when given (0: not given; ffn 4 x width) and conditioning
 * (cond < 0: the default; cross reads the To = 2 frames as 2 tokens); 0 when
 * usable */
static int s_tfm_setup(s_chunk_case *uc, int width, int depth, int cond, char *err, size_t errsz) {
  fc_net_config_default(&uc->cfg, FC_NET_TRANSFORMER, uc->T * uc->A, uc->C);
  fc_tfm_config *cfg = &uc->cfg.tfm;
  fc_tfm_config_default(cfg, uc->T, uc->A, uc->C);
  if (width > 0) cfg->width = width, cfg->ffn = 4 * width;
  if (depth > 0) cfg->depth = depth;
  if (cond >= 0) cfg->cond = (fc_tfm_cond)cond;
  cfg->ctok = 2;
  return fc_net_config_check(&uc->cfg, err, errsz);
}

/* FLOPs of one training step at batch B: forward + weight gradients (the
 * same MACs) + input gradients, less those nothing needs (the U-Net's first
 * block's convolutions, the transformer's token projection; the time MLP's
 * first layer) */
static double s_chunk_train_flops(const fc_net_config *nc, int B) {
  const double macs = fc_net_macs(nc);
  double first = 0;
  if (nc->kind == FC_NET_UNET) {
    const fc_unet_config *cfg = &nc->unet;
    fc_unet_layout lay;
    fc_unet_layout_make(&lay, cfg);
    const fc_unet_block *b0 = &lay.blk[0];
    first = (double)cfg->horizon * b0->cout * (cfg->kernel * b0->cin + (b0->res ? b0->cin : 0)) +
            4.0 * cfg->temb * cfg->temb;
  } else {
    const fc_tfm_config *cfg = &nc->tfm;
    first = (double)cfg->horizon * cfg->adim * cfg->width + 4.0 * cfg->temb * cfg->temb;
  }
  return 2.0 * B * (3.0 * macs - first);
}

static void s_chunk_bench(s_chunk_case *uc, s_peak *pk, int threads, int rounds, int per_round, const char *script,
                          const char *python, int no_torch) {
  const int B = 256;
  const fc_net_config *cfg = &uc->cfg;
  const int D = fc_net_dx(cfg), C = fc_net_dc(cfg);
  uc->params = fc_net_nparams(cfg);
  uc->macs = fc_net_macs(cfg);
  const double train_flops = s_chunk_train_flops(cfg, B);

  fc_rng rng;
  fc_rng_seed(&rng, 7);
  float *params = fc_calloc(uc->params, sizeof(float)), *grads = fc_calloc(uc->params, sizeof(float));
  float *ema = fc_calloc(uc->params, sizeof(float));
  fc_net net;
  fc_net_bind(&net, cfg, params);
  fc_net_init(&net, &rng);
  memcpy(ema, params, uc->params * sizeof(float));
  fc_adamw_config oc;
  fc_adamw_config_default(&oc);
  fc_adamw *opt = fc_adamw_new(uc->params, &oc);
  const size_t n = (size_t)B * D;
  float *x0 = fc_malloc(n * sizeof(float)), *x1 = fc_malloc(n * sizeof(float)), *xt = fc_malloc(n * sizeof(float));
  float *v = fc_malloc(n * sizeof(float)), *c = fc_malloc(((size_t)B * C + 1) * sizeof(float));
  float t[256];
  fc_rng_normal_fill(&rng, x0, n);
  fc_rng_normal_fill(&rng, x1, n);
  fc_rng_normal_fill(&rng, c, (size_t)B * C);
  for (int b = 0; b < B; b++) t[b] = (float)fc_rng_uniform(&rng);
  fc_net_ws *ws = fc_net_ws_new(cfg, B);
  double *peaks = fc_malloc((size_t)rounds * sizeof(double)), *trains = fc_malloc((size_t)rounds * sizeof(double));
  double *ratios = fc_malloc((size_t)rounds * sizeof(double)), st[16];
  for (int r = -1; r < rounds; r++) { /* round -1 warms up */
    double pkr = s_peak_sample(pk, threads);
    for (int it = 0; it < per_round; it++) {
      double t0 = cli_now();
      /* x_t = (1 - t) x0 + t x1, target x1 - x0; dL/dv of the mean squared error */
      for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++) {
          size_t i = (size_t)b * D + j;
          xt[i] = (1.0f - t[b]) * x0[i] + t[b] * x1[i];
        }
      fc_net_forward(&net, ws, v, t, xt, C ? c : NULL, B);
      for (size_t i = 0; i < n; i++) v[i] = 2.0f / (float)n * (v[i] - (x1[i] - x0[i]));
      fc_net_backward(&net, ws, grads, 0, NULL, NULL, v, B);
      float gs = fc_clip_scale(fc_grad_norm(grads, uc->params), oc.clip);
      fc_adamw_step(opt, params, grads, gs, 1e-4f, ema, 0.999f);
      st[it] = cli_now() - t0;
    }
    if (r < 0) continue;
    peaks[r] = pkr;
    trains[r] = train_flops / s_median(st, per_round) * 1e-9;
    ratios[r] = trains[r] / peaks[r];
  }
  uc->train_gflops = s_median(trains, rounds);
  uc->peak_fraction = s_median(ratios, rounds);
  uc->train_sps = uc->train_gflops * 1e9 / train_flops * B;

  /* batch-1 forward latency (one thread: a single sample's products are too small to split) */
  const int reps = 500;
  double *lt = fc_malloc((size_t)reps * sizeof(double));
  fc_net_ws *ws1 = fc_net_ws_new(cfg, 1);
  for (int r = -50; r < reps; r++) {
    double t0 = cli_now();
    fc_net_forward(&net, ws1, v, t, x0, c, 1);
    if (r >= 0) lt[r] = cli_now() - t0;
  }
  uc->fwd_b1_us = s_median(lt, reps) * 1e6;

  memset(&uc->th, 0, sizeof(uc->th));
  uc->th.train_sps = uc->th.fwd_b1_us = uc->th.fwd_b1_addmv_us = NAN;
  if (!no_torch) {
    char args[160];
    if (cfg->kind == FC_NET_UNET) {
      const fc_unet_config *u = &cfg->unet;
      snprintf(args, sizeof(args), "--unet %d,%d,%d,%d", uc->T, uc->A, uc->C, u->dims[0]);
      for (int i = 1; i < u->nlevels; i++) snprintf(args + strlen(args), sizeof(args) - strlen(args), "-%d", u->dims[i]);
      snprintf(args + strlen(args), sizeof(args) - strlen(args), ",%d", u->temb);
    } else {
      const fc_tfm_config *m = &cfg->tfm;
      snprintf(args, sizeof(args), "--tfm %d,%d,%d,%d,%d,%d,%d,%d,%d,%d", uc->T, uc->A, uc->C, m->width, m->depth,
               m->heads, m->ffn, m->temb, (int)m->cond, m->ctok);
    }
    s_run_torch(script, python, args, &uc->th);
  }
  fc_net_ws_free(ws);
  fc_net_ws_free(ws1);
  fc_adamw_free(opt);
  free(params); free(grads); free(ema); free(x0); free(x1); free(xt); free(v); free(c);
  free(peaks); free(trains); free(ratios); free(lt);
}

static void s_chunk_print(const s_chunk_case *uc, int threads) {
  char desc[128];
  fc_net_describe(&uc->cfg, desc, sizeof(desc));
  const int unet = uc->cfg.kind == FC_NET_UNET;
  printf("\n  %s Tp %d, A %d, C %d: %s, %zu parameters, %.1f M MACs per sample\n", unet ? "U-Net" : "Transformer",
         uc->T, uc->A, uc->C, desc, uc->params, uc->macs * 1e-6);
  printf("  training step (%s, %d thr)%*s%8.0f samples/s  %6.1f GFLOP/s  = %.0f%% of sgemm peak\n",
         unet ? "fc_unet" : "fc_tfm", threads, unet ? 8 : 9, "", uc->train_sps, uc->train_gflops,
         100.0 * uc->peak_fraction);
  printf("  batch-1 forward (1 thread)             %8.1f us\n", uc->fwd_b1_us);
  if (isfinite(uc->th.train_sps)) {
    printf("  PyTorch %s training                  %8.0f samples/s  -> lfp x%.2f\n", uc->th.version, uc->th.train_sps,
           uc->train_sps / uc->th.train_sps);
    printf("  PyTorch %s batch-1 forward          %8.1f us         -> lfp x%.2f faster\n", uc->th.version,
           uc->th.fwd_b1_us, uc->th.fwd_b1_us / uc->fwd_b1_us);
  }
}

static void s_chunk_json(const s_chunk_case *uc) {
  printf("{\"horizon\": %d, \"adim\": %d, \"cond\": %d, ", uc->T, uc->A, uc->C);
  if (uc->cfg.kind == FC_NET_UNET) {
    printf("\"dims\": [");
    for (int i = 0; i < uc->cfg.unet.nlevels; i++) printf("%s%d", i ? ", " : "", uc->cfg.unet.dims[i]);
    printf("], \"temb\": %d", uc->cfg.unet.temb);
  } else {
    const fc_tfm_config *m = &uc->cfg.tfm;
    printf("\"width\": %d, \"depth\": %d, \"heads\": %d, \"ffn\": %d, \"temb\": %d, \"conditioning\": \"%s\"", m->width,
           m->depth, m->heads, m->ffn, m->temb, fc_tfm_cond_name(m->cond));
  }
  printf(", \"params\": %zu, \"macs\": ", uc->params);
  fc_json_num(stdout, uc->macs);
  printf(", \"train_samples_per_s\": ");
  fc_json_num(stdout, uc->train_sps);
  printf(", \"train_gflops\": ");
  fc_json_num(stdout, uc->train_gflops);
  printf(", \"peak_fraction\": ");
  fc_json_num(stdout, uc->peak_fraction);
  printf(", \"fwd_b1_us\": ");
  fc_json_num(stdout, uc->fwd_b1_us);
  printf(", \"torch_train_samples_per_s\": ");
  fc_json_num(stdout, uc->th.train_sps);
  printf(", \"torch_fwd_b1_us\": ");
  fc_json_num(stdout, uc->th.fwd_b1_us);
  printf(", \"train_vs_torch\": ");
  fc_json_num(stdout, uc->train_sps / uc->th.train_sps);
  printf(", \"fwd_b1_vs_torch\": ");
  fc_json_num(stdout, uc->th.fwd_b1_us / uc->fwd_b1_us);
  printf("}");
}

/* "64,128,256" -> dims (at most FC_UNET_MAX_LEVELS); 0 on success */
static int s_parse_dims(const char *s, int *dims) {
  for (int i = 0; i < FC_UNET_MAX_LEVELS; i++) dims[i] = 0;
  if (!s || !*s) return 0;
  for (int i = 0; i < FC_UNET_MAX_LEVELS; i++) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 1 || v > FC_UNET_MAX_DIM) return -1;
    dims[i] = (int)v;
    if (!*end) return 0;
    if (*end != ',') return -1;
    s = end + 1;
  }
  return -1;
}

static int s_bench_flowcore(int argc, char **argv) {
  int json = 0, no_torch = 0, iters = 100, threads = 0, unet_iters = 15, unet_temb = 0, no_unet = 0;
  int tfm_width = 0, tfm_depth = 0, no_tfm = 0;
  const char *tfm_cond = NULL;
  const char *script = LFP_SOURCE_DIR "/tools/bench_torch.py", *python = "/usr/bin/python3", *unet_dims = "";
  cli_opt opts[] = {
      {"--iters", CLI_INT, &iters, "timed training steps (in rounds of 5, each with one sgemm peak sample)", NULL, 5, 100000},
      {"--threads", CLI_INT, &threads, "threads for training (0: all cores)", NULL, 0, 256},
      {"--torch-script", CLI_STR, &script, "the PyTorch reference script", NULL, 0, 0},
      {"--python", CLI_STR, &python, "interpreter that has Debian's python3-torch", NULL, 0, 0},
      {"--no-torch", CLI_FLAG, &no_torch, "skip the PyTorch comparison", NULL, 0, 0},
      {"--unet-iters", CLI_INT, &unet_iters, "timed U-Net and transformer training steps per case (in rounds of 3)", NULL, 3, 10000},
      {"--unet-dims", CLI_STR, &unet_dims, "U-Net level channels, one per level, e.g. 32,64,128 (default: fc_unet's)", NULL, 0, 0},
      {"--unet-temb", CLI_INT, &unet_temb, "U-Net time-embedding size (0: fc_unet's default)", NULL, 0, 4096},
      {"--no-unet", CLI_FLAG, &no_unet, "skip the U-Net cases", NULL, 0, 0},
      {"--tfm-width", CLI_INT, &tfm_width, "transformer width, ffn 4 x width (0: fc_tfm's default)", NULL, 0, 4096},
      {"--tfm-depth", CLI_INT, &tfm_depth, "transformer blocks (0: fc_tfm's default)", NULL, 0, 32},
      {"--tfm-cond", CLI_CHOICE, &tfm_cond, "transformer conditioning (default: fc_tfm's, film)", fc_tfm_cond_names, 0, 0},
      {"--no-tfm", CLI_FLAG, &no_tfm, "skip the transformer cases", NULL, 0, 0},
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("bench flowcore",
                     "lfp bench flowcore [--iters N] [--threads T] [--no-torch] [--unet-dims D0,D1,..] [--tfm-width W] "
                     "[--tfm-cond adaln|film|cross] [--json]",
                     argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  /* the U-Net at Tp 16: Push-T sizes (A 2, To 2 x 20-D observations) and
   * Lift sizes (A 7, To 2 x 19-D), checked before anything runs */
  const int tcond = tfm_cond ? fc_tfm_cond_parse(tfm_cond) : -1; /* the parser took only known names */
  int udims[FC_UNET_MAX_LEVELS];
  if (s_parse_dims(unet_dims, udims)) {
    cli_error("bench flowcore", "--unet-dims wants 1 to %d channel counts like 64,128,256 (got '%s')",
              FC_UNET_MAX_LEVELS, unet_dims);
    return 2;
  }
  /* the chunk networks: the U-Nets, then the transformers, at both sizes */
  s_chunk_case uc[4];
  int nu = 0;
  const int sizes[2][3] = {{16, 2, 40}, {16, 7, 38}};
  for (int kind = 0; kind < 2; kind++)
    for (int z = 0; z < 2; z++) {
      if (kind ? no_tfm : no_unet) continue;
      s_chunk_case *u = &uc[nu++];
      memset(u, 0, sizeof(*u));
      u->T = sizes[z][0], u->A = sizes[z][1], u->C = sizes[z][2];
      char uerr[256];
      if (kind ? s_tfm_setup(u, tfm_width, tfm_depth, tcond, uerr, sizeof(uerr))
               : s_unet_setup(u, udims, unet_temb, uerr, sizeof(uerr))) {
        cli_error("bench flowcore", "%s: %s", kind ? "transformer" : "U-Net", uerr);
        return 2;
      }
    }
  if (threads > 0) fc_set_threads(threads);
  const int train_threads = fc_threads();

  const int B = 256;
  fc_net_config cfg;
  s_reference_net(&cfg);
  const size_t P = fc_net_nparams(&cfg);
  const double macs = fc_net_macs(&cfg);
  const int nt = fc_net_tensors(&cfg, NULL, 0);
  fc_tensor_info *ti = fc_malloc((size_t)nt * sizeof(*ti));
  fc_net_tensors(&cfg, ti, nt);
  /* forward MACs + weight gradients (same) + input gradients (all but the
   * input layer's, the first tensor of the layout) */
  const double train_flops = 2.0 * B * (3.0 * macs - (double)ti[0].rows * ti[0].cols);
  char desc[128];
  fc_net_describe(&cfg, desc, sizeof(desc));

  printf("lfp bench flowcore: reference network D=%d C=%d %s, %zu parameters, batch %d\n", fc_net_dx(&cfg),
         fc_net_dc(&cfg), desc, P, B);
  fflush(stdout);

  /* 1 + 2. the sgemm peak and the training throughput of the real trainer
   * (N = 1: minibatch gather, noise, FM loss forward + backward, clipping,
   * AdamW + EMA), interleaved in rounds so that both see the same machine:
   * this VM's speed drifts by tens of percent between seconds, and a ratio of
   * measurements taken at different moments would carry that drift. */
  const int ndata = 4096, per_round = 5;
  const int rounds = (iters + per_round - 1) / per_round;
  fc_rng rng;
  fc_rng_seed(&rng, 1);
  const int D = fc_net_dx(&cfg), C = fc_net_dc(&cfg);
  float *data = fc_malloc((size_t)ndata * D * sizeof(float));
  float *cond = fc_malloc((size_t)ndata * C * sizeof(float));
  fc_rng_normal_fill(&rng, data, (size_t)ndata * D);
  fc_rng_normal_fill(&rng, cond, (size_t)ndata * C);
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, D, C);
  lc.nblocks = 1;
  lc.net = cfg;
  char err[256];
  fc_lfm *model = fc_lfm_new(&lc, err, sizeof(err));
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.batch = B;
  tc.steps = (int64_t)rounds * per_round + 3;
  fc_lfm_trainer *tr = fc_lfm_trainer_new(model, data, cond, (size_t)ndata, &tc, err, sizeof(err));
  FC_ASSERT(model && tr);
  s_peak pk;
  s_peak_init(&pk, 2048);
  s_peak_sample(&pk, train_threads); /* warm-up */
  for (int it = 0; it < 3; it++) fc_lfm_trainer_step(tr);
  double *peaks = fc_malloc((size_t)rounds * sizeof(double)), *trains = fc_malloc((size_t)rounds * sizeof(double));
  double *ratios = fc_malloc((size_t)rounds * sizeof(double)), st[16];
  for (int r = 0; r < rounds; r++) {
    peaks[r] = s_peak_sample(&pk, train_threads);
    for (int it = 0; it < per_round; it++) {
      double t0 = cli_now();
      fc_lfm_trainer_step(tr);
      st[it] = cli_now() - t0;
    }
    trains[r] = train_flops / s_median(st, per_round) * 1e-9;
    ratios[r] = trains[r] / peaks[r];
  }
  fc_lfm_trainer_free(tr);
  const double peak = s_median(peaks, rounds), train_gflops = s_median(trains, rounds);
  const double peak_fraction = s_median(ratios, rounds);
  const double train_sps = train_gflops * 1e9 / train_flops * B;
  const fc_net *net = &model->blocks[0];
  const float *params = net->params;
  float t[1] = {0.5f}, *x0 = data, *c = cond;

  /* 3. batch-1 forward latency (runs on one thread: a single row is never split) */
  const int reps = 3000;
  double *lt = fc_malloc((size_t)reps * sizeof(double));
  fc_net_ws *ws1 = fc_net_ws_new(&cfg, 1);
  float y1[112];
  for (int r = -200; r < reps; r++) {
    double t0 = cli_now();
    fc_net_forward(net, ws1, y1, t, x0, c, 1);
    if (r >= 0) lt[r] = cli_now() - t0;
  }
  double fwd_b1_us = s_median(lt, reps) * 1e6;

  /* 4. the memory floor: a bare chain of sgemv over weights of the same shapes */
  float *vin = fc_calloc(4096, sizeof(float)), *vout = fc_calloc(4096, sizeof(float));
  for (int i = 0; i < 4096; i++) vin[i] = 0.01f * (float)(i % 13);
  for (int r = -200; r < reps; r++) {
    double t0 = cli_now();
    for (int k = 0; k < nt; k++)
      if (ti[k].cols > 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, ti[k].rows, ti[k].cols, 1.0f, params + ti[k].offset,
                    ti[k].cols, vin, 1, 0.0f, vout, 1);
    if (r >= 0) lt[r] = cli_now() - t0;
  }
  double sgemv_us = s_median(lt, reps) * 1e6;

  /* 5. the pool oversubscribed: >= 2 threads pinned to one core */
  const int pin_threads = train_threads > 2 ? train_threads : 2;
  double pin_pool_s = NAN, pin_one_s = NAN;
  const double pinned_slowdown = s_pinned_slowdown(pin_threads, 5, &pin_pool_s, &pin_one_s);

  /* 6. PyTorch, same network, in its fastest setting */
  s_torch th;
  if (no_torch) memset(&th, 0, sizeof(th)), th.train_sps = th.fwd_b1_us = th.fwd_b1_addmv_us = NAN;
  else s_run_torch(script, python, "", &th);

  printf("\n  build                                  %s (lfp's own loops; OpenBLAS picks its kernels at run time)\n",
         LFP_BUILD_FLAGS);
  printf("  sgemm peak (2048^3, %d threads)        %8.1f GFLOP/s  (median of %d samples; OpenBLAS kernels %s)\n",
         train_threads, peak, rounds, fc_blas_core());
  printf("  training step (lfm trainer, %d thr)    %8.0f samples/s  %6.1f GFLOP/s  = %.0f%% of sgemm peak\n"
         "                                         (median over %d rounds of the per-round ratio)\n",
         train_threads, train_sps, train_gflops, 100.0 * peak_fraction, rounds);
  printf("  batch-1 forward (1 thread)             %8.1f us   sgemv floor %.1f us  (x%.2f)\n", fwd_b1_us, sgemv_us,
         fwd_b1_us / sgemv_us);
  printf("  one core, pool of %d vs 1 thread      %8.2fx  %.2f vs %.2f ms per step (small run: width 256, depth 2,\n"
         "                                         batch 256; median of 5 rounds of the per-round ratio; target <= 1.2x)\n",
         pin_threads, pinned_slowdown, pin_pool_s * 1e3, pin_one_s * 1e3);
  if (th.ok) {
    printf("  PyTorch %s training                  %8.0f samples/s  -> lfp x%.2f\n", th.version, th.train_sps,
           train_sps / th.train_sps);
    printf("  PyTorch %s batch-1 forward (nn.Linear, jit) %6.1f us   -> lfp x%.2f faster\n", th.version,
           th.fwd_b1_us, th.fwd_b1_us / fwd_b1_us);
    printf("  PyTorch %s batch-1 forward (addmv)  %8.1f us         -> lfp x%.2f faster\n", th.version,
           th.fwd_b1_addmv_us, th.fwd_b1_addmv_us / fwd_b1_us);
  } else if (!no_torch) {
    printf("  PyTorch: not measured (%s with torch, or %s, not found)\n", python, script);
  }
  /* 7. the U-Net and transformer cases */
  const int urounds = (unet_iters + 2) / 3;
  for (int k = 0; k < nu; k++) {
    s_chunk_bench(&uc[k], &pk, train_threads, urounds, 3, script, python, no_torch);
    s_chunk_print(&uc[k], train_threads);
    fflush(stdout);
  }
  s_peak_free(&pk);
  if (json) {
    cli_json_stdout();
    printf("{\"bench\": \"flowcore\", \"params\": %zu, \"batch\": %d, \"threads\": %d, \"blas_core\": ", P, B, train_threads);
    fc_json_str(stdout, fc_blas_core());
    printf(", \"build_flags\": ");
    fc_json_str(stdout, LFP_BUILD_FLAGS);
    printf(", \"sgemm_peak_gflops\": ");
    fc_json_num(stdout, peak);
    printf(", \"train_samples_per_s\": ");
    fc_json_num(stdout, train_sps);
    printf(", \"train_gflops\": ");
    fc_json_num(stdout, train_gflops);
    printf(", \"peak_fraction\": ");
    fc_json_num(stdout, peak_fraction);
    printf(", \"fwd_b1_us\": ");
    fc_json_num(stdout, fwd_b1_us);
    printf(", \"sgemv_floor_us\": ");
    fc_json_num(stdout, sgemv_us);
    printf(", \"pinned_threads\": %d, \"pinned_slowdown\": ", pin_threads);
    fc_json_num(stdout, pinned_slowdown);
    printf(", \"pinned_pool_step_ms\": ");
    fc_json_num(stdout, pin_pool_s * 1e3);
    printf(", \"pinned_one_step_ms\": ");
    fc_json_num(stdout, pin_one_s * 1e3);
    printf(", \"torch_train_samples_per_s\": ");
    fc_json_num(stdout, th.train_sps);
    printf(", \"torch_fwd_b1_us\": ");
    fc_json_num(stdout, th.fwd_b1_us);
    printf(", \"torch_fwd_b1_addmv_us\": ");
    fc_json_num(stdout, th.fwd_b1_addmv_us);
    printf(", \"train_vs_torch\": ");
    fc_json_num(stdout, train_sps / th.train_sps);
    printf(", \"fwd_b1_vs_torch\": ");
    fc_json_num(stdout, th.fwd_b1_us / fwd_b1_us);
    for (int kind = 0; kind < 2; kind++) {
      printf(", \"%s\": [", kind ? "transformer" : "unet");
      int first = 1;
      for (int k = 0; k < nu; k++) {
        if ((uc[k].cfg.kind == FC_NET_TRANSFORMER) != kind) continue;
        printf("%s", first ? "" : ", ");
        first = 0;
        s_chunk_json(&uc[k]);
      }
      printf("]");
    }
    printf("}\n");
  }
  free(data); free(cond); free(peaks); free(trains); free(ratios); free(lt); free(vin); free(vout);
  fc_lfm_free(model);
  fc_net_ws_free(ws1);
  free(ti);
  return 0;
}

/* lfp bench datasets: load time of a Lift-sized file and minibatch cost vs
 * a training step */
static int s_bench_datasets(int argc, char **argv) {
  int json = 0, demos = 200, steps = 400;
  const char *dir = "/tmp";
  cli_opt opts[] = {
      {"--demos", CLI_INT, &demos, "demos in the synthetic file", NULL, 1, 100000},
      {"--steps", CLI_INT, &steps, "steps per demo", NULL, 1, 100000},
      {"--dir", CLI_STR, &dir, "where to write the temporary file", NULL, 0, 0},
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("bench datasets", "lfp bench datasets [--demos N] [--steps T] [--dir D] [--json]", argc, argv,
                     opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  char path[1024], err[512];
  snprintf(path, sizeof(path), "%s/lfp_bench_%ld.hdf5", dir, (long)getpid());

  /* 1. a Lift-shaped file: obs 10 + 3 + 4 + 2 = 19-D, actions 7-D, float64 */
  static const char *keys[] = {"object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"};
  static const int dims[] = {10, 3, 4, 2};
  fc_rng rng;
  fc_rng_seed(&rng, 3);
  double *obs[4], *act = fc_malloc(sizeof(double) * steps * 7);
  for (int k = 0; k < 4; k++) obs[k] = fc_malloc(sizeof(double) * steps * dims[k]);
  double t0 = cli_now();
  ds_writer *w = ds_writer_create(path, "{\"env_name\": \"lift\", \"type\": 1}", err, sizeof(err));
  if (!w) {
    cli_error("bench datasets", "%s", err);
    return 1;
  }
  for (int d = 0; d < demos; d++) {
    for (int k = 0; k < 4; k++)
      for (int i = 0; i < steps * dims[k]; i++) obs[k][i] = fc_rng_normal(&rng);
    for (int i = 0; i < steps * 7; i++) act[i] = 2.0 * fc_rng_uniform(&rng) - 1.0;
    ds_obs_data od[4];
    for (int k = 0; k < 4; k++) od[k] = (ds_obs_data){keys[k], dims[k], obs[k], NULL};
    ds_demo_data dd = {.len = steps, .action_dim = 7, .actions = act, .nobs = 4, .obs = od};
    if (ds_writer_add(w, &dd, err, sizeof(err)) < 0) {
      cli_error("bench datasets", "%s", err);
      ds_writer_close(w, NULL, 0);
      unlink(path);
      return 1;
    }
  }
  ds_writer_close(w, NULL, 0);
  double write_s = cli_now() - t0;
  struct stat st;
  stat(path, &st);

  /* 2. open + load everything (median of 5) */
  double lt[5];
  ds_dataset *d = NULL;
  for (int r = 0; r < 5; r++) {
    ds_dataset_free(d);
    t0 = cli_now();
    ds_file *f = ds_open(path, err, sizeof(err));
    d = f ? ds_load(f, keys, 4, err, sizeof(err)) : NULL;
    ds_close(f);
    lt[r] = cli_now() - t0;
    if (!d) {
      cli_error("bench datasets", "%s", err);
      unlink(path);
      return 1;
    }
  }
  double load_s = s_median(lt, 5);

  /* 3. windowed, normalized minibatches of 256 (To 2, Tp 16) */
  ds_split tr, va;
  ds_split_make(d, 0.1, 0, &tr, &va, err, sizeof(err));
  fc_norm on, an;
  ds_norm_fit(&on, FC_NORM_MINMAX, d, &tr, DS_FIELD_OBS, err, sizeof(err));
  ds_norm_fit(&an, FC_NORM_MINMAX, d, &tr, DS_FIELD_ACTIONS, err, sizeof(err));
  const int B = 256, To = 2, Tp = 16, nb = 2000;
  float *bo = fc_malloc(sizeof(float) * B * To * d->obs_dim), *ba = fc_malloc(sizeof(float) * B * Tp * d->action_dim);
  double *bt = fc_malloc(sizeof(double) * nb);
  for (int r = -20; r < nb; r++) {
    t0 = cli_now();
    ds_batch(d, &tr, &rng, B, To, Tp, &on, &an, bo, ba);
    if (r >= 0) bt[r] = cli_now() - t0;
  }
  double batch_us = s_median(bt, nb) * 1e6;

  /* 4. a training step of the reference network on such batches */
  fc_lfm_config lc;
  fc_lfm_config_default(&lc, Tp * d->action_dim, To * d->obs_dim);
  lc.nblocks = 1;
  s_reference_net(&lc.net);
  fc_lfm *model = fc_lfm_new(&lc, err, sizeof(err));
  fc_train_config tc;
  fc_train_config_default(&tc);
  tc.steps = 23;
  fc_lfm_trainer *trn = fc_lfm_trainer_new(model, ba, bo, (size_t)B, &tc, err, sizeof(err));
  double stt[20];
  for (int r = -3; r < 20; r++) {
    t0 = cli_now();
    fc_lfm_trainer_step(trn);
    if (r >= 0) stt[r] = cli_now() - t0;
  }
  double step_us = s_median(stt, 20) * 1e6;
  fc_lfm_trainer_free(trn);
  fc_lfm_free(model);

  printf("lfp bench datasets: %d demos x %d steps, obs 19-D (4 keys), actions 7-D, float64 on disk\n\n", demos, steps);
  printf("  write (lfp writer)                     %8.3f s   %.1f MB\n", write_s, st.st_size / 1e6);
  printf("  open + load all into memory            %8.3f s   (median of 5)\n", load_s);
  printf("  minibatch of %d windows (To %d, Tp %d)  %8.1f us   (normalized; median of %d)\n", B, To, Tp, batch_us, nb);
  printf("  training step, reference network       %8.1f us   -> a minibatch is %.2f%% of a step\n", step_us,
         100.0 * batch_us / step_us);
  if (json) {
    cli_json_stdout();
    printf("{\"bench\": \"datasets\", \"demos\": %d, \"steps\": %d, \"file_mb\": ", demos, steps);
    fc_json_num(stdout, st.st_size / 1e6);
    printf(", \"write_s\": ");
    fc_json_num(stdout, write_s);
    printf(", \"load_s\": ");
    fc_json_num(stdout, load_s);
    printf(", \"batch_us\": ");
    fc_json_num(stdout, batch_us);
    printf(", \"train_step_us\": ");
    fc_json_num(stdout, step_us);
    printf(", \"batch_fraction_of_step\": ");
    fc_json_num(stdout, batch_us / step_us);
    printf("}\n");
  }
  free(bo); free(ba); free(bt); free(act);
  for (int k = 0; k < 4; k++) free(obs[k]);
  ds_split_free(&tr);
  ds_split_free(&va);
  ds_dataset_free(d);
  unlink(path);
  return 0;
}

/* lfp bench envs: physics and control throughput per task, 1 and 2 threads */
typedef struct {
  const env_model *em;
  int steps;    /* control steps to run */
  uint64_t seed;
  int unstable;
} s_env_job;

static void *s_env_worker(void *arg) {
  s_env_job *j = arg;
  env_data *ed = env_data_new(j->em);
  double obs[64], act[ENV_MAX_ACTION];
  char err[256];
  uint64_t seed = j->seed;
  env_reset(j->em, ed, seed);
  for (int s = 0; s < j->steps; s++) {
    if (env_done(j->em, ed)) env_reset(j->em, ed, ++seed);
    env_obs(j->em, ed, obs);
    env_expert(j->em, ed, act);
    if (env_step(j->em, ed, act, err, sizeof(err))) {
      j->unstable++;
      env_reset(j->em, ed, ++seed);
    }
  }
  env_data_free(ed);
  return NULL;
}

/* control steps per second with `threads` rollouts in parallel */
static double s_env_rate(const env_model *em, int threads, int steps_each) {
  pthread_t th[8];
  s_env_job jobs[8];
  double t0 = cli_now();
  for (int i = 0; i < threads; i++) {
    jobs[i] = (s_env_job){em, steps_each, 1000u * (uint64_t)i, 0};
    pthread_create(&th[i], NULL, s_env_worker, &jobs[i]);
  }
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  return threads * steps_each / (cli_now() - t0);
}

static int s_bench_envs(int argc, char **argv) {
  int json = 0;
  double seconds = 2.0;
  cli_opt opts[] = {
      {"--seconds", CLI_DOUBLE, &seconds, "about how long each measurement runs", NULL, 0.1, 600},
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("bench envs", "lfp bench envs [--seconds S] [--json]", argc, argv, opts, 2);
  if (rc) return rc > 0 ? 0 : 2;
  printf("lfp bench envs: scripted-expert rollouts (physics, observations, expert), episodes reset as they end\n\n");
  printf("  %-8s %9s %14s %14s %14s %14s %8s\n", "task", "substeps", "mj_step/s 1T", "control/s 1T", "mj_step/s 2T",
         "control/s 2T", "scaling");
  char js[4096] = "";
  size_t jo = 0;
  for (int i = 0; i < env_task_count(); i++) {
    char err[256];
    env_model *em = env_model_new(env_task_name(i), err, sizeof(err));
    if (!em) {
      cli_error("bench envs", "%s", err);
      return 1;
    }
    /* size the runs from a short probe */
    double probe = s_env_rate(em, 1, 200);
    int steps = (int)(probe * seconds) + 1;
    double r1 = s_env_rate(em, 1, steps), r2 = s_env_rate(em, 2, steps);
    int sub = env_substeps(em);
    printf("  %-8s %9d %14.0f %14.0f %14.0f %14.0f %7.2fx\n", env_task_name(i), sub, r1 * sub, r1, r2 * sub, r2, r2 / r1);
    jo += (size_t)snprintf(js + jo, sizeof(js) - jo,
                           "%s\"%s\": {\"substeps\": %d, \"mj_step_per_s_1\": %.0f, \"control_per_s_1\": %.0f, "
                           "\"mj_step_per_s_2\": %.0f, \"control_per_s_2\": %.0f}",
                           jo ? ", " : "", env_task_name(i), sub, r1 * sub, r1, r2 * sub, r2);
    env_model_free(em);
  }
  if (json) {
    cli_json_stdout();
    printf("{\"bench\": \"envs\", \"tasks\": {%s}}\n", js);
  }
  return 0;
}

int cmd_bench(int argc, char **argv) {
  static const char *usage = "usage: lfp bench <target> [options]\n\ntargets:\n"
                             "  flowcore   the velocity network: training throughput vs sgemm peak and PyTorch,\n"
                             "             batch-1 forward latency vs the sgemv floor\n"
                             "  datasets   loading a 200 x 400-step Lift-sized HDF5 file; minibatch cost vs a training step\n"
                             "  envs       MuJoCo tasks: mj_step/s and control steps/s on 1 and 2 threads\n"
                             "  node       the ZeroMQ controller node: infer round trip vs raw ZeroMQ and sampling,\n"
                             "             requests/s with 1 and 4 clients, memory after 1k and 100k requests\n";
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "flowcore")) return s_bench_flowcore(argc - 1, argv + 1);
  if (!strcmp(argv[1], "datasets")) return s_bench_datasets(argc - 1, argv + 1);
  if (!strcmp(argv[1], "envs")) return s_bench_envs(argc - 1, argv + 1);
  if (!strcmp(argv[1], "node")) return bench_node(argc - 1, argv + 1);
  cli_error("bench", "unknown target '%s' (targets: flowcore, datasets, envs, node)", argv[1]);
  return 2;
}
