/* lfp train: train an action-conditional flow policy on a demonstration file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"
#include "commands.h"
#include "ds_file.h"
#include "env.h"
#include "fc_ckpt.h"
#include "pol_train.h"
#include "train_loop.h"

/* "a,b,c" -> up to max finite numbers; their count, or -1 */
static int s_parse_numbers(const char *csv, double *v, int max) {
  int n = 0;
  const char *p = csv;
  for (;;) {
    char *end;
    const double x = strtod(p, &end);
    if (end == p || !isfinite(x) || n == max) return -1;
    v[n++] = x;
    while (*end == ' ') end++;
    if (*end == 0) return n;
    if (*end != ',') return -1;
    p = end + 1;
  }
}

/* whether the file's first demo has every one of keys */
static int s_file_has_keys(const ds_info *in, const char *const *keys, int nk) {
  for (int k = 0; k < nk; k++) {
    int found = 0;
    for (int j = 0; j < in->nobs && !found; j++) found = !strcmp(in->obs[j].name, keys[k]);
    if (!found) return 0;
  }
  return 1;
}

/* the value of option `name` in argv ("--data F" or "--data=F"), or NULL */
static const char *s_arg(int argc, char **argv, const char *name) {
  const size_t n = strlen(name);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], name)) return i + 1 < argc ? argv[i + 1] : NULL;
    if (!strncmp(argv[i], name, n) && argv[i][n] == '=') return argv[i] + n + 1;
  }
  return NULL;
}

/* the lfp task a demonstration file was recorded on, into task ("" when
 * the file cannot be read or names no lfp task: the parse proper reports) */
static void s_file_task(const char *path, char *task, size_t n) {
  char err[512];
  task[0] = 0;
  ds_file *f = path ? ds_open(path, err, sizeof(err)) : NULL;
  if (!f) return;
  env_model *em = env_model_from_args(ds_file_info(f)->env_args, err, sizeof(err));
  if (em) snprintf(task, n, "%s", env_name(em));
  env_model_free(em);
  ds_close(f);
}

int cmd_train(int argc, char **argv) {
  pol_train_config c;
  pol_train_config_default(&c);
  /* the task's recipe gives the defaults; flags override them */
  char task[64];
  s_file_task(s_arg(argc, argv, "--data"), task, sizeof(task));
  const int recipe = pol_train_recipe(task, &c);
  const char *data = NULL, *out = NULL, *keys_csv = NULL, *method = "lfm", *sampler = "rk4", *norm = "minmax",
             *low_csv = NULL, *high_csv = NULL, *net = fc_net_kind_name(c.net.kind),
             *unet_dims = NULL, *tfm_cond = NULL;
  int blocks = c.blocks, steps = (int)c.steps, epochs = 0, seed = 0, json = 0;
  train_loop_opts lo;
  train_loop_opts_default(&lo, "train", NULL, 0);
  int width = 0, depth = 0, heads = 0, ffn = 0; /* 0: the kind's default */
  double lr = c.lr, gc = c.gamma_c, grho = c.gamma_rho, dsig = c.dfm_sigma, ddel = c.dfm_delta;
  int ode_steps = 0;
  static const char *const methods[] = {"lfm", "fm", "mse", "dfm", NULL};
  static const char *const samplers[] = {"euler", "heun", "rk4", NULL};
  static const char *const norms[] = {"minmax", "meanstd", NULL};
  const char *nets[FC_NET_KINDS + 1] = {NULL};
  for (int k = 0; k < FC_NET_KINDS; k++) nets[k] = fc_net_kind_name((fc_net_kind)k);
  cli_opt opts[] = {
      {"--data", CLI_STR, &data, "demonstrations (Robomimic-style HDF5)", NULL, 0, 0},
      {"--out", CLI_STR, &out, "policy file to write", NULL, 0, 0},
      {"--obs-keys", CLI_STR, &keys_csv, "observation keys, comma-separated, in order (default: the task's)", NULL, 0, 0},
      {"--method", CLI_CHOICE, &method, "lfm (N blocks), fm (one), mse (regression baseline), dfm (Diffusion Flow Matching, one block, sampled by Euler-Maruyama)", methods, 0, 0},
      {"--blocks", CLI_INT, &blocks, "LFM blocks N", NULL, 2, 64},
      {"--steps", CLI_INT, &steps, "optimizer steps over all blocks", NULL, 1, 1e9},
      {"--epochs", CLI_INT, &epochs, "instead of --steps: passes over the training windows", NULL, 0, 1e6},
      {"--batch", CLI_INT, &c.batch, "minibatch size", NULL, 1, 65536},
      {"--seed", CLI_INT, &seed, "seed of initialization, minibatches, noise, split", NULL, 0, 2147483647},
      {"--To", CLI_INT, &c.To, "observation frames", NULL, 1, 64},
      {"--Tp", CLI_INT, &c.Tp, "predicted actions per chunk", NULL, 1, 256},
      {"--Ta", CLI_INT, &c.Ta, "executed actions per chunk", NULL, 1, 256},
      {"--net", CLI_CHOICE, &net, "velocity network kind", nets, 0, 0},
      {"--width", CLI_INT, &width, "mlp hidden width (0: 256) or transformer model width (0: 128); fm/mse take it "
                                   "as given, lfm blocks are narrowed to the same total parameters", NULL, 0, 8192},
      {"--depth", CLI_INT, &depth, "mlp residual blocks (0: 3) or transformer blocks (0: 4)", NULL, 0, 32},
      {"--heads", CLI_INT, &heads, "transformer attention heads, dividing --width (0: 4)", NULL, 0, 256},
      {"--ffn", CLI_INT, &ffn, "transformer MLP width (0: 4 x --width)", NULL, 0, 16384},
      {"--latent", CLI_INT, &c.latent, "flow in a learned latent of this many values: an autoencoder of the Tp x A "
                                       "chunks is pre-trained first, the flow samples its latent, decoding gives the "
                                       "chunk (0: no latent)", NULL, 0, 65536},
      {"--latent-tokens", CLI_INT, &c.latent_tokens, "--latent with a transformer (or U-Net): the latent as this "
                                                      "many tokens of --latent / K values each", NULL, 1, 4096},
      {"--ae-width", CLI_INT, &c.ae_width, "--latent: the autoencoder's hidden width (2 layers a side)", NULL, 1, 8192},
      {"--ae-steps", CLI_I64, &c.ae_steps, "--latent: the autoencoder's training steps (batch --batch, lr 1e-3)", NULL, 1, 1e9},
      {"--tfm-cond", CLI_CHOICE, &tfm_cond, "transformer conditioning: adaln (adaLN-Zero: shift, scale and gate of "
                                            "every block, zero-initialized), film (shift and scale) or cross "
                                            "(cross-attention to a time token and one token per observation frame, "
                                            "Diffusion Policy's)", fc_tfm_cond_names, 0, 0},
      {"--unet-dims", CLI_STR, &unet_dims, "unet channels per level, 1 to 4 comma-separated (default 64,128,256; "
                                           "Tp must be divisible by 2^(levels - 1))", NULL, 0, 0},
      {"--lr", CLI_DOUBLE, &lr, "peak learning rate", NULL, 1e-7, 1},
      {"--gamma-c", CLI_DOUBLE, &gc, "LFM OU step schedule: gamma_n = c * rho^(n-1)", NULL, 1e-6, 100},
      {"--gamma-rho", CLI_DOUBLE, &grho, "LFM OU step growth", NULL, 1e-3, 100},
      {"--sampler", CLI_CHOICE, &sampler, "ODE sampler", samplers, 0, 0},
      {"--ode-steps", CLI_INT, &ode_steps, "sampler steps over the chain (lfm: divided among blocks, a multiple of N; dfm: "
                                           "Euler-Maruyama steps); 0: 8 (RK4, NFE 32), dfm 32 (NFE 32)", NULL, 0, 10000},
      {"--dfm-sigma", CLI_DOUBLE, &dsig, "dfm: noise level of the Brownian bridge and of the sampler", NULL, 0, 10},
      {"--dfm-delta", CLI_DOUBLE, &ddel, "dfm: early stop of the sampler (and the least training time)", NULL, 1e-4, 0.5},
      {"--norm", CLI_CHOICE, &norm, "normalization", norms, 0, 0},
      {"--obs-min-range", CLI_DOUBLE, &c.obs_min_range, "min-max: an observation value varying less than this in the "
                                                        "data is scaled as if it varied this much (0: off)", NULL, 0, 1e6},
      {"--action-low", CLI_STR, &low_csv, "lower action bounds: one value for all dimensions or one per dimension "
                                          "(default: the training actions' minimum)", NULL, 0, 0},
      {"--action-high", CLI_STR, &high_csv, "upper action bounds, likewise (default: the training actions' maximum)", NULL,
       0, 0},
      TRAIN_LOOP_CLI_OPTS(lo),
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("train", "lfp train --data FILE.hdf5 --out POLICY.lfp [--method lfm|fm|mse] [--steps K | --epochs E] [options]\n"
                     "(the defaults shown are the recipe of the task that --data was recorded on, where it has one)",
                     argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  if (!data || !out) {
    cli_error("train", "--data FILE.hdf5 and --out POLICY.lfp are required");
    return 2;
  }
  if (c.Ta > c.Tp) {
    cli_error("train", "--Ta (%d) cannot exceed --Tp (%d)", c.Ta, c.Tp);
    return 2;
  }
  c.method = (pol_method)pol_method_parse(method);
  /* the network: the kind's defaults (sizes come from the data), then the
   * options of that kind */
  const fc_net_config recipe_net = c.net;
  fc_net_config_default(&c.net, (fc_net_kind)fc_net_kind_parse(net), 1, 0);
  if (c.net.kind == recipe_net.kind) c.net = recipe_net; /* the recipe's widths for its own kind */
  if (c.net.kind == FC_NET_MLP) {
    if (width) c.net.mlp.width = width;
    if (depth) c.net.mlp.depth = depth;
  } else if (c.net.kind == FC_NET_TRANSFORMER) {
    if (width) c.net.tfm.width = width;
    if (depth) c.net.tfm.depth = depth;
    if (heads) c.net.tfm.heads = heads;
    c.net.tfm.ffn = ffn ? ffn : 4 * c.net.tfm.width;
    if (tfm_cond) c.net.tfm.cond = (fc_tfm_cond)fc_tfm_cond_parse(tfm_cond); /* a name the parser took */
  } else if (width || depth) {
    cli_error("train", "--width and --depth are the mlp's and the transformer's; this run trains a %s (--net mlp or "
              "--net transformer to use them)", fc_net_kind_name(c.net.kind));
    return 2;
  }
  if (c.net.kind != FC_NET_TRANSFORMER && (heads || ffn || tfm_cond)) {
    cli_error("train", "--heads, --ffn and --tfm-cond are the transformer's; this run trains a %s (--net transformer "
              "to use them)", fc_net_kind_name(c.net.kind));
    return 2;
  }
  if (unet_dims) {
    double v[FC_UNET_MAX_LEVELS];
    const int n = s_parse_numbers(unet_dims, v, FC_UNET_MAX_LEVELS);
    int ok = c.net.kind == FC_NET_UNET && n >= 1;
    for (int i = 0; ok && i < n; i++) ok = v[i] >= 1 && v[i] <= FC_UNET_MAX_DIM && v[i] == floor(v[i]);
    if (!ok) {
      cli_error("train", c.net.kind != FC_NET_UNET ? "--unet-dims '%s' needs --net unet"
                                                    : "--unet-dims '%s' is not 1 to 4 comma-separated channel counts",
                unet_dims);
      return 2;
    }
    c.net.unet.nlevels = n;
    for (int i = 0; i < FC_UNET_MAX_LEVELS; i++) c.net.unet.dims[i] = i < n ? (int)v[i] : 0;
  }
  c.blocks = blocks;
  c.seed = (uint64_t)seed;
  /* under mpirun: data parallel, --batch the global batch (dist.h) */
  const int ranks = dist_size();
  if (ranks > 1) {
    if (c.batch < ranks) {
      cli_error("train", "--batch %d is less than the %d ranks: each rank needs at least one row", c.batch, ranks);
      return 2;
    }
    c.par = (pol_shards){ranks, dist_rank(), dist_reduce_cb, NULL};
  }
  c.lr = (float)lr;
  c.gamma_c = (float)gc;
  c.gamma_rho = (float)grho;
  c.dfm_sigma = (float)dsig;
  c.dfm_delta = (float)ddel;
  c.ode_steps = ode_steps ? ode_steps : c.method == POL_DFM ? 32 : c.ode_steps;
  c.sampler = (fc_sampler)fc_sampler_parse(sampler);
  c.norm = !strcmp(norm, "meanstd") ? FC_NORM_MEANSTD : FC_NORM_MINMAX;
  if (low_csv && (c.action_nlow = s_parse_numbers(low_csv, c.action_low, POL_MAX_ACTION)) < 0) {
    cli_error("train", "--action-low '%s' is not a comma-separated list of at most %d finite numbers", low_csv, POL_MAX_ACTION);
    return 2;
  }
  if (high_csv && (c.action_nhigh = s_parse_numbers(high_csv, c.action_high, POL_MAX_ACTION)) < 0) {
    cli_error("train", "--action-high '%s' is not a comma-separated list of at most %d finite numbers", high_csv,
              POL_MAX_ACTION);
    return 2;
  }

  /* the data, with the task's keys unless told otherwise */
  char err[512], kbuf[1024];
  ds_file *f = ds_open(data, err, sizeof(err));
  if (!f) {
    cli_error("train", "%s", err);
    return 1;
  }
  const ds_info *in = ds_file_info(f);
  env_model *em = env_model_from_args(in->env_args, err, sizeof(err));
  const char *keys[16];
  int nk = 0;
  if (keys_csv) {
    snprintf(kbuf, sizeof(kbuf), "%s", keys_csv);
    nk = ds_split_csv(kbuf, keys, 16);
    if (nk < 1) {
      cli_error("train", "--obs-keys '%s' is not a comma-separated list of keys", keys_csv);
      ds_close(f);
      env_model_free(em);
      return 2;
    }
  } else if (em) {
    /* the task's policy keys; a file written before one of them existed
     * (pusht's block_keypoints) falls back to the task keys it has */
    nk = env_policy_keys(em, keys, 16);
    if (!s_file_has_keys(in, keys, nk)) {
      nk = 0;
      for (int k = 0; k < env_nkeys(em); k++)
        if (s_file_has_keys(in, &env_keys(em)[k].name, 1)) keys[nk++] = env_keys(em)[k].name;
    }
  } else {
    cli_error("train", "%s: its env_args name no lfp task, so --obs-keys is needed", data);
    ds_close(f);
    return 2;
  }
  ds_dataset *d = ds_load(f, keys, nk, err, sizeof(err));
  ds_close(f);
  if (!d) {
    cli_error("train", "%s", err);
    env_model_free(em);
    return 1;
  }
  double hz = em ? env_control_hz(em) : 0.0;
  lo.out = out;
  lo.batch = c.batch;
  const int eval_every = lo.eval_every;
  if (eval_every && !em) {
    cli_error("train", "--eval-every: %s: its env_args name no lfp task to evaluate on", data);
    ds_dataset_free(d);
    return 2;
  }
  if (eval_every) lo.em = em;
  else env_model_free(em);
  char best[4096];
  train_loop_best_path(out, best, sizeof(best));

  /* --epochs: passes over the training windows */
  int status = 1;
  pol_trainer *t = NULL;
  c.steps = steps;
  /* a latent flow or a transformer: the recipe's own steps (and tokens) where the flags leave them */
  pol_train_recipe_net(task, &c, s_arg(argc, argv, "--steps") || epochs > 0, s_arg(argc, argv, "--latent-tokens") != NULL);
  if (epochs > 0) {
    c.steps = blocks; /* a first trainer only to count windows (lfm needs a step per block) */
    const int latent = c.latent;
    c.latent = 0; /* no autoencoder for counting */
    t = pol_trainer_new(d, &c, d->env_args, hz, err, sizeof(err));
    c.latent = latent;
    if (!t) goto fail;
    int64_t w = pol_trainer_train_windows(t);
    pol_trainer_free(t);
    c.steps = (epochs * w + c.batch - 1) / c.batch;
  }
  if (c.method == POL_LFM && c.steps < blocks) c.steps = blocks;
  t = pol_trainer_new(d, &c, d->env_args, hz, err, sizeof(err));
  if (!t || train_loop_origin(t, data, d->ndemos, c.seed, c.steps, c.batch, c.lr, argc, argv, err, sizeof(err))) goto fail;

  const pol_policy *p = pol_trainer_policy(t);
  char klist[512] = "";
  for (int k = 0; k < p->meta.nkeys; k++) {
    if (k) strncat(klist, ",", sizeof(klist) - strlen(klist) - 1);
    strncat(klist, p->meta.keys[k], sizeof(klist) - strlen(klist) - 1);
  }
  char desc[256];
  pol_describe(p, desc, sizeof(desc));
  printf("lfp train: %s on %s (%lld train / %lld valid windows, %s; obs %s), %d block(s) of %s, "
         "%zu parameters, %lld steps of batch %d, NFE %d per chunk\n",
         method, data, (long long)pol_trainer_train_windows(t), (long long)pol_trainer_valid_windows(t),
         pol_trainer_split(t), klist, p->flow->cfg.nblocks, desc, fc_lfm_nparams(p->flow),
         (long long)c.steps, c.batch, pol_nfe(p, p->flow->cfg.sampler, 0));
  if (recipe) printf("  defaults from the task's recipe (%s); flags given override them\n", pol_train_recipe_text(task));
  const fc_ae_fit_result af = pol_trainer_latent_fit(t);
  if (p->latent)
    printf("  latent flow: %d values for %d-value chunks, autoencoder width %d (%zu parameters) pre-trained %lld steps in "
           "%.1f s: reconstruction MSE %.5f train, %.5f validation (normalized actions)\n", p->latent->cfg.dz,
           p->latent->cfg.dx, p->latent->cfg.width, fc_ae_nparams(&p->latent->cfg), (long long)c.ae_steps, af.seconds,
           af.train_mse, af.valid_mse);
  if (ranks > 1)
    printf("  data parallel on %d ranks (mpirun): %d rows of each minibatch per rank, gradients summed by MPI_Allreduce "
           "(%zu floats per step)\n", ranks, c.batch / ranks, fc_lfm_nparams(p->flow) / (size_t)p->flow->cfg.nblocks + 1);
  if (eval_every)
    printf("  evaluating every %d steps and at the end: %d episodes of %s from seed %d (selection seeds), best -> %s\n",
           eval_every, lo.eval_episodes, env_name(lo.em), (int)lo.eval_seed, best);
  fflush(stdout);
  train_loop_result res;
  if (train_loop_run(t, &lo, &res, err, sizeof(err))) goto fail;
  train_loop_print(&lo, &res);
  cli_print_bounds(stdout, p->meta.action_low, p->meta.action_high, p->meta.action_dim, 0);
  if (json) {
    cli_json_stdout();
    printf("{\"out\": ");
    fc_json_str(stdout, out);
    printf(", \"method\": \"%s\", \"blocks\": %d, \"net\": \"%s\", \"net_desc\": ", method, p->flow->cfg.nblocks,
           fc_net_kind_name(p->flow->cfg.net.kind));
    fc_json_str(stdout, desc);
    if (p->flow->cfg.net.kind == FC_NET_MLP) printf(", \"width\": %d", p->flow->cfg.net.mlp.width);
    if (p->flow->cfg.net.kind == FC_NET_TRANSFORMER) printf(", \"width\": %d", p->flow->cfg.net.tfm.width);
    printf(", \"ranks\": %d, \"latent\": %d", ranks, p->latent ? p->latent->cfg.dz : 0);
    if (p->latent) {
      printf(", \"chunk_values\": %d, \"ae_params\": %zu, \"ae_steps\": %lld, \"ae_s\": ", p->latent->cfg.dx,
             fc_ae_nparams(&p->latent->cfg), (long long)c.ae_steps);
      fc_json_num(stdout, af.seconds);
      printf(", \"ae_train_mse\": ");
      fc_json_num(stdout, af.train_mse);
      printf(", \"ae_valid_mse\": ");
      fc_json_num(stdout, af.valid_mse);
    }
    printf(", \"params\": %zu, \"steps\": %lld, \"batch\": %d, \"nfe\": %d, "
           "\"train_windows\": %lld, \"valid_windows\": %lld",
           fc_lfm_nparams(p->flow), (long long)c.steps, c.batch,
           pol_nfe(p, p->flow->cfg.sampler, 0), (long long)pol_trainer_train_windows(t),
           (long long)pol_trainer_valid_windows(t));
    train_loop_json(stdout, &lo, &res);
    cli_print_bounds(stdout, p->meta.action_low, p->meta.action_high, p->meta.action_dim, 1);
    printf(", \"recipe\": ");
    if (recipe) fc_json_str(stdout, task);
    else printf("null");
    printf("}\n");
  }
  status = 0;
fail:
  if (status) cli_error("train", "%s", err);
  pol_trainer_free(t);
  ds_dataset_free(d);
  env_model_free(lo.em);
  return status;
}
