/* lfp toy: flow matching vs Local Flow Matching on a 2-D distribution. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "fc_toy.h"

static void s_print_json(const fc_toy_config *tc, const fc_toy_result *res, int nres) {
  cli_json_stdout();
  printf("{\"dist\": ");
  fc_json_str(stdout, fc_toy_dist_name(tc->dist));
  printf(", \"seed\": %llu, \"eval_size\": %d, \"eval_reps\": %d, \"train_size\": %d, \"sampler\": ",
         (unsigned long long)tc->seed, tc->eval_size, tc->eval_reps, tc->train_size);
  fc_json_str(stdout, fc_sampler_name(tc->sampler));
  printf(", \"results\": [");
  for (int i = 0; i < nres; i++) {
    const fc_toy_result *r = &res[i];
    printf("%s{\"method\": \"%s\", \"blocks\": %d, \"width\": %d, \"params\": %zu, \"steps\": %lld, \"nfe\": %d, \"w2\": ",
           i ? ", " : "", r->method, r->blocks, r->width, r->params,
           (long long)r->steps, r->nfe);
    fc_json_num(stdout, r->w2);
    printf(", \"w2_floor\": ");
    fc_json_num(stdout, r->w2_floor);
    printf(", \"w2_sd\": ");
    fc_json_num(stdout, r->w2_sd);
    printf(", \"w2_floor_sd\": ");
    fc_json_num(stdout, r->w2_floor_sd);
    printf(", \"energy\": ");
    fc_json_num(stdout, r->energy);
    printf(", \"modes_covered\": %d, \"modes_total\": %d, \"off_mode\": ", r->modes_covered, r->modes_total);
    fc_json_num(stdout, r->off_mode);
    printf(", \"train_s\": ");
    fc_json_num(stdout, r->train_s);
    printf(", \"sample_s\": ");
    fc_json_num(stdout, r->sample_s);
    double inv[64], tra[64];
    for (int b = 0; b < r->blocks; b++) {
      inv[b] = r->diag[b].inversion_err;
      tra[b] = r->diag[b].transport;
    }
    printf(", \"inversion_err\": ");
    cli_json_nums(stdout, inv, r->blocks);
    printf(", \"transport\": ");
    cli_json_nums(stdout, tra, r->blocks);
    printf(", \"ambient\": %d, \"latent\": %d", tc->ambient, tc->latent);
    if (tc->latent) {
      printf(", \"ae_params\": %zu, \"ae_mse\": ", r->ae_params);
      fc_json_num(stdout, r->ae_mse);
      printf(", \"w2_ae\": ");
      fc_json_num(stdout, r->w2_ae);
      printf(", \"w2_ae_sd\": ");
      fc_json_num(stdout, r->w2_ae_sd);
      printf(", \"w2_latent\": ");
      fc_json_num(stdout, r->w2_latent);
      printf(", \"w2_latent_sd\": ");
      fc_json_num(stdout, r->w2_latent_sd);
    }
    if (tc->nsweep) {
      double nf[16];
      for (int k = 0; k < tc->nsweep; k++) nf[k] = tc->sweep[k];
      printf(", \"sweep_nfe\": ");
      cli_json_nums(stdout, nf, tc->nsweep);
      printf(", \"sweep_w2\": ");
      cli_json_nums(stdout, r->sweep_w2, tc->nsweep);
    }
    printf("}");
  }
  printf("]}\n");
}

/* fc_toy_config.progress: a cli_progress bar */
static void s_progress(void *ctx, const char *label, int64_t done, int64_t total, const char *extra) {
  cli_progress *pb = ctx;
  if (done == 0) cli_progress_begin(pb, label, total);
  else if (done < 0) cli_progress_end(pb);
  else cli_progress_update(pb, done, extra);
}

int cmd_toy(int argc, char **argv) {
  fc_toy_config tc;
  fc_toy_config_default(&tc);
  static const char *const dists[] = {"8gaussians", "moons", "checkerboard", "rings", NULL};
  static const char *const methods[] = {"fm", "lfm", "both", "dfm", "all", NULL};
  static const char *const samplers[] = {"euler", "heun", "rk4", NULL};
  const char *dist = "8gaussians", *method = "both", *sampler = "rk4";
  int blocks = 4, json = 0, seed = 0, steps = (int)tc.steps;
  double lr = tc.lr, gc = tc.gamma_c, grho = tc.gamma_rho, dsig = tc.dfm_sigma, ddel = tc.dfm_delta;
  const char *sweep = NULL;
  cli_opt opts[] = {
      {"--dist", CLI_CHOICE, &dist, "target distribution", dists, 0, 0},
      {"--method", CLI_CHOICE, &method, "fm (N = 1), lfm (N blocks), both side by side, dfm (Diffusion Flow Matching), or all "
                                        "three", methods, 0, 0},
      {"--dfm-sigma", CLI_DOUBLE, &dsig, "dfm: noise level of the Brownian bridge and the sampler", NULL, 0, 10},
      {"--dfm-delta", CLI_DOUBLE, &ddel, "dfm: early stop (and least training time)", NULL, 1e-4, 0.5},
      {"--sweep", CLI_STR, &sweep, "NFEs, comma-separated (e.g. 1,2,4,8,16,32): W2 of each trained model at each with "
                                   "first-order steps (Euler; dfm: Euler-Maruyama)", NULL, 0, 0},
      {"--blocks", CLI_INT, &blocks, "LFM blocks N", NULL, 2, 64},
      {"--steps", CLI_INT, &steps, "training steps, total over blocks", NULL, 1, 1e8},
      {"--seed", CLI_INT, &seed, "seed of every random draw", NULL, 0, 2147483647},
      {"--batch", CLI_INT, &tc.batch, "minibatch size", NULL, 1, 65536},
      {"--width", CLI_INT, &tc.width, "FM network width (LFM blocks: same total parameters)", NULL, 4, 4096},
      {"--depth", CLI_INT, &tc.depth, "residual blocks per network (FiLM conditions t and c inside them)", NULL, 1, 32},
      {"--lr", CLI_DOUBLE, &lr, "peak learning rate", NULL, 1e-7, 1},
      {"--gamma-c", CLI_DOUBLE, &gc, "LFM OU step schedule: gamma_n = c * rho^(n-1)", NULL, 1e-6, 100},
      {"--gamma-rho", CLI_DOUBLE, &grho, "LFM OU step growth rho", NULL, 1e-3, 100},
      {"--sampler", CLI_CHOICE, &sampler, "ODE sampler", samplers, 0, 0},
      {"--ode-steps", CLI_INT, &tc.ode_steps, "sampler steps over the chain (LFM: divided among its blocks, a multiple of N, so FM and LFM use the same NFE)", NULL, 1, 10000},
      {"--train-size", CLI_INT, &tc.train_size, "training set size", NULL, 16, 10000000},
      {"--eval-size", CLI_INT, &tc.eval_size, "held-out points for W2 (exact, O(n^3))", NULL, 16, 5000},
      {"--ambient", CLI_INT, &tc.ambient, "embed the distribution as a curved 2-D sheet in this many dimensions (>= 6; "
                                          "2: the plane); W2 is then measured there", NULL, 2, 4096},
      {"--latent", CLI_INT, &tc.latent, "flow in the standardized latent of an autoencoder of this many values, "
                                        "pre-trained on the training points (0: none)", NULL, 0, 4096},
      {"--ae-width", CLI_INT, &tc.ae_width, "--latent: the autoencoder's hidden width", NULL, 1, 8192},
      {"--ae-steps", CLI_I64, &tc.ae_steps, "--latent: the autoencoder's training steps", NULL, 1, 1e9},
      {"--eval-reps", CLI_INT, &tc.eval_reps, "independent evaluations averaged (new targets and samples each)", NULL, 1, 64},
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("toy", "lfp toy [--dist D] [--method fm|lfm|both|dfm|all] [--blocks N] [--steps K] [--seed S] "
                            "[--ambient D --latent d] [--json]",
                     argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  tc.dist = (fc_toy_dist)fc_toy_dist_parse(dist);
  tc.sampler = (fc_sampler)fc_sampler_parse(sampler);
  tc.steps = steps;
  tc.seed = (uint64_t)seed;
  tc.lr = (float)lr;
  tc.gamma_c = (float)gc;
  tc.gamma_rho = (float)grho;
  tc.dfm_sigma = (float)dsig;
  tc.dfm_delta = (float)ddel;
  if (sweep) {
    const char *q = sweep;
    for (;;) {
      char *end;
      const long v = strtol(q, &end, 10);
      if (end == q || v < 1 || v > 10000 || tc.nsweep == 16 || (*end && *end != ',')) {
        cli_error("toy", "--sweep '%s' is not a comma-separated list of at most 16 NFEs in 1..10000", sweep);
        return 2;
      }
      tc.sweep[tc.nsweep++] = (int)v;
      if (!*end) break;
      q = end + 1;
    }
  }
  const int all = !strcmp(method, "all"), both = !strcmp(method, "both") || all;
  if (tc.latent && (all || !strcmp(method, "dfm"))) {
    cli_error("toy", "--latent runs flows (fm, lfm or both), not dfm");
    return 2;
  }
  if (tc.ambient != 2 && tc.ambient < 6) {
    cli_error("toy", "--ambient %d: the curved sheet needs at least 6 dimensions (or 2, the plane)", tc.ambient);
    return 2;
  }
  if (tc.latent > tc.ambient) {
    cli_error("toy", "--latent %d is more than the %d dimensions of the points (--ambient)", tc.latent, tc.ambient);
    return 2;
  }
  if (tc.steps < blocks && (both || !strcmp(method, "lfm"))) {
    cli_error("toy", "--steps (%lld) must be at least --blocks (%d)", (long long)tc.steps, blocks);
    return 2;
  }

  char err[256];
  if ((both || !strcmp(method, "lfm")) && fc_lfm_steps_per_block(tc.ode_steps, blocks, err, sizeof(err)) < 0) {
    cli_error("toy", "--ode-steps: %s", err);
    return 2;
  }
  /* the runs: fm (1 block), lfm (N), dfm (1 block, dfm) */
  int runs[3], dfms[3], nruns = 0;
  if (both || !strcmp(method, "fm")) runs[nruns] = 1, dfms[nruns++] = 0;
  if (both || !strcmp(method, "lfm")) runs[nruns] = blocks, dfms[nruns++] = 0;
  if (all || !strcmp(method, "dfm")) runs[nruns] = 1, dfms[nruns++] = 1;
  fc_toy_result res[3];
  cli_progress pb;
  tc.progress = s_progress;
  tc.progress_ctx = &pb;
  printf("lfp toy: %s, %d training points, %lld steps, seed %d, sampler %s, %d steps over the chain\n",
         dist, tc.train_size, (long long)tc.steps, seed, sampler, tc.ode_steps);
  if (tc.ambient > 2) printf("  embedded as a curved 2-D sheet in %d dimensions\n", tc.ambient);
  if (tc.latent)
    printf("  flowing in a latent of %d values: an autoencoder of width %d pre-trained %lld steps\n", tc.latent,
           tc.ae_width, (long long)tc.ae_steps);
  fflush(stdout);
  for (int i = 0; i < nruns; i++) {
    tc.dfm = dfms[i];
    if (fc_toy_run(&tc, runs[i], &res[i], err, sizeof(err))) {
      cli_error("toy", "%s", err);
      return 1;
    }
  }
  printf("\n%-6s %6s %6s %8s %6s %5s %15s %15s %9s %6s %8s\n", "method", "blocks", "width", "params",
         "steps", "NFE", "W2", "W2 floor", "energy", "modes", "train s");
  for (int i = 0; i < nruns; i++) {
    const fc_toy_result *r = &res[i];
    printf("%-6s %6d %6d %8zu %6lld %5d %7.4f +- %.4f %7.4f +- %.4f %9.5f %3d/%-2d %8.1f\n",
           r->method, r->blocks, r->width, r->params, (long long)r->steps, r->nfe, r->w2,
           r->w2_sd, r->w2_floor, r->w2_floor_sd, r->energy, r->modes_covered, r->modes_total, r->train_s);
  }
  if (tc.latent) {
    printf("\nthe bound's two parts (Jiao et al.): W2(p, D#q) <= W2(p, D#E#p) + Lip(D) W2(E#p, q)\n");
    printf("%-6s %15s %15s %15s %12s %9s\n", "method", "W2 total", "W2 autoenc.", "W2 latent", "recon. MSE", "AE params");
    for (int i = 0; i < nruns; i++) {
      const fc_toy_result *r = &res[i];
      printf("%-6s %7.4f +- %.4f %7.4f +- %.4f %7.4f +- %.4f %12.6f %9zu\n", r->method, r->w2, r->w2_sd, r->w2_ae,
             r->w2_ae_sd, r->w2_latent, r->w2_latent_sd, r->ae_mse, r->ae_params);
    }
    printf("W2 autoenc.: held-out targets against other held-out targets passed through the autoencoder (its floor is\n"
           "W2 floor); W2 latent: generated latents against encoded held-out targets, standardized latent units.\n");
  }
  if (tc.nsweep) {
    printf("\nW2 against the NFE, first-order steps (Euler; dfm: Euler-Maruyama), mean of %d repetitions\n%-6s",
           tc.eval_reps, "NFE");
    for (int k = 0; k < tc.nsweep; k++) printf(" %8d", tc.sweep[k]);
    for (int i = 0; i < nruns; i++) {
      printf("\n%-6s", res[i].method);
      for (int k = 0; k < tc.nsweep; k++) printf(" %8.4f", res[i].sweep_w2[k]);
    }
    printf("\n");
  }
  for (int i = 0; i < nruns; i++) {
    if (dfms[i]) continue; /* no push-forward, no inversion */
    printf("\n%s per-block diagnostics (on %d training points): inversion error / mean transport\n",
           res[i].method, tc.eval_size);
    for (int b = 0; b < res[i].blocks; b++)
      printf("  block %d: %.2e / %.4f\n", b + 1, res[i].diag[b].inversion_err, res[i].diag[b].transport);
  }
  printf("\nW2: exact 2-Wasserstein distance (optimal assignment) between %d generated and %d held-out target\n"
         "points; W2 floor: the same between two independent target samples. Mean +- sd over %d repetitions,\n"
         "each with new targets and samples; modes: covered in every repetition.\n",
         tc.eval_size, tc.eval_size, tc.eval_reps);
  if (json) s_print_json(&tc, res, nruns);
  return 0;
}
