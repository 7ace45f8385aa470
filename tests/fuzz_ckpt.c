/* Fuzz target: the checkpoint and policy-file reader (fc_ckpt_parse, then
 * pol_load_ckpt for kind "policy" or fc_lfm_load for kind "lfm") on arbitrary
 * bytes, in memory. Invariants: no crash, sanitizer report or leak; a file
 * that loads is consistent enough to act on (one pol_act step, one Euler
 * step per block, so a hostile step count cannot stall the run).
 *
 * Kind "run" (a model and fc_lfm_trainer_save's resume state) is restored
 * into a trainer on 16 fixed samples (train.* readers), then stepped once.
 *
 * Input layout: byte 0 is a flag, the rest is the file. When bit 0 of the
 * flag is set, the target first patches the file's total-size field, its
 * CRC-32 and its end marker (fc_ckpt_seal), so that libFuzzer's mutations
 * reach the section contents instead of dying at the checksum; when it is
 * clear, the bytes are parsed as they are (the container checks themselves).
 *
 * Built with clang and -fsanitize=fuzzer (LFP_FUZZ=ON) it is libFuzzer's
 * target; CTest runs it for a bounded time from the seeds in tests/fuzz/ckpt.
 * Built without libFuzzer it replays files given on the command line
 * (the seeds, or a crash artifact): fuzz_ckpt FILE... ; and
 * `fuzz_ckpt --write-seeds DIR` writes the seed corpus (tiny policies of
 * each method and norm kind, width 8, depth 1, Tp 2, transformers
 * (adaLN-Zero, FiLM, cross-attention) and a latent flow, a bare "lfm" file
 * and an interrupted "run").
 * The seeds v1-* were written by this generator built at commit a28839e,
 * the last lfp of checkpoint format 1, and the seeds cfg1-* at commit
 * 28aa4df, the last lfp of lfm.config section version 1 (no network kind);
 * both stay to keep those readers covered. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_ckpt.h"
#include "fc_rng.h"
#include "pol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* kind "run": a model and a trainer's resume state (fc_lfm_trainer_save),
 * restored into a trainer on S_RUN_N fixed samples with S_RUN_CONFIG, then
 * one step; 1 when it resumed */
#define S_RUN_N 16
static void s_run_config(fc_train_config *tc) {
  fc_train_config_default(tc);
  tc->steps = 8;
  tc->batch = 4;
  tc->seed = 5;
}

static int s_run(const fc_ckpt *ck) {
  char err[512];
  fc_lfm *m = fc_lfm_load(ck, NULL, err, sizeof(err));
  if (!m) return 0;
  /* the current block's inputs are recomputed by pushing through the
   * finished blocks: keep a hostile step count from stalling the run */
  int ok = 0;
  if ((int64_t)m->cfg.steps * m->cfg.nblocks <= 256) {
    const size_t D = (size_t)fc_net_dx(&m->cfg.net), C = (size_t)fc_net_dc(&m->cfg.net);
    float *x = calloc(S_RUN_N * D, sizeof(float)), *c = calloc(S_RUN_N * C + 1, sizeof(float));
    for (size_t i = 0; i < S_RUN_N * D; i++) x[i] = (float)(i % 7) * 0.1f;
    fc_train_config tc;
    s_run_config(&tc);
    fc_lfm_trainer *tr = fc_lfm_trainer_new(m, x, C ? c : NULL, S_RUN_N, &tc, err, sizeof(err));
    if (tr && fc_lfm_trainer_restore(tr, ck, err, sizeof(err)) == 0) {
      if (!fc_lfm_trainer_done(tr)) fc_lfm_trainer_step(tr);
      ok = 1;
    }
    fc_lfm_trainer_free(tr);
    free(x);
    free(c);
  }
  fc_lfm_free(m);
  return ok;
}

/* 1 when the input was accepted as a whole policy or model */
static int s_one(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const int seal = data[0] & 1;
  size_t n = size - 1;
  uint8_t *file = malloc(n ? n : 1);
  if (n) memcpy(file, data + 1, n);
  if (seal) fc_ckpt_seal(file, n);
  char err[512];
  int ok = 0;
  fc_ckpt *ck = fc_ckpt_parse(file, n, "fuzz.lfp", NULL, err, sizeof(err));
  free(file);
  if (!ck) return 0;
  if (!strcmp(fc_ckpt_kind(ck), "policy")) {
    pol_policy *p = pol_load_ckpt(ck, "fuzz.lfp", err, sizeof(err));
    if (p) {
      pol_data *pd = pol_data_new(p, 1);
      pol_set_sampler(p, pd, FC_SAMPLER_EULER, 1);
      double obs[FC_NORM_MAX_DIM] = {0}, act[POL_MAX_ACTION];
      pol_act(p, pd, obs, act, err, sizeof(err)); /* a refusal (non-finite output) is a valid answer */
      pol_data_free(pd);
      pol_free(p);
      ok = 1;
    }
  } else if (!strcmp(fc_ckpt_kind(ck), "run")) {
    ok = s_run(ck);
  } else if (!strcmp(fc_ckpt_kind(ck), "lfm")) {
    fc_lfm *m = fc_lfm_load(ck, NULL, err, sizeof(err));
    if (m) {
      fc_lfm_ws *ws = fc_lfm_ws_new(m, 1);
      float *x = calloc((size_t)fc_net_dx(&m->cfg.net), sizeof(float));
      float *c = calloc((size_t)fc_net_dc(&m->cfg.net) + 1, sizeof(float));
      fc_lfm_generate(m, ws, x, fc_net_dc(&m->cfg.net) ? c : NULL, 1, FC_SAMPLER_EULER, 1);
      free(x);
      free(c);
      fc_lfm_ws_free(ws);
      fc_lfm_free(m);
      ok = 1;
    }
  }
  fc_ckpt_free(ck);
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  s_one(data, size);
  return 0;
}

#ifndef LFP_LIBFUZZER
/* ---------- the seed corpus ---------- */

/* a tiny policy: keys "pos" (2) and "grip" (1), To 2, Tp 2, Ta 1, 2-D
 * actions, width 8, depth 1, statistics fitted on random rows; net: an mlp
 * or a transformer (width 8, 2 heads, conditioned by tcond; cross-attention
 * reads the To frames); latent > 0: flowing in the latent of an autoencoder
 * of width 8 */
static pol_policy *s_seed_policy_of(pol_method method, fc_norm_kind kind, fc_cond_mode cond, uint64_t seed,
                                    fc_net_kind net, fc_tfm_cond tcond, int latent) {
  pol_meta m;
  memset(&m, 0, sizeof(m));
  m.method = method;
  m.To = 2, m.Tp = 2, m.Ta = 1;
  m.obs_dim = 3, m.action_dim = 2, m.nkeys = 2;
  snprintf(m.keys[0], sizeof(m.keys[0]), "pos");
  snprintf(m.keys[1], sizeof(m.keys[1]), "grip");
  m.key_dims[0] = 2, m.key_dims[1] = 1;
  for (int j = 0; j < 2; j++) m.action_low[j] = -1, m.action_high[j] = 1;
  snprintf(m.env_args, sizeof(m.env_args), "{\"env_name\": \"seed\"}");
  snprintf(m.version, sizeof(m.version), "seed");
  m.control_hz = 10;
  fc_lfm_config lc;
  const int dx = latent ? latent : m.Tp * m.action_dim;
  fc_lfm_config_default(&lc, dx, m.To * m.obs_dim);
  lc.nblocks = method == POL_LFM ? 2 : 1;
  lc.objective = method == POL_MSE ? FC_OBJ_REGRESS : FC_OBJ_FLOW;
  if (net == FC_NET_TRANSFORMER) {
    fc_net_config_default(&lc.net, FC_NET_TRANSFORMER, dx, m.To * m.obs_dim);
    fc_net_config_set_io(&lc.net, dx, m.To * m.obs_dim, m.Tp);
    lc.net.tfm.width = 8, lc.net.tfm.depth = 1, lc.net.tfm.heads = 2, lc.net.tfm.ffn = 8, lc.net.tfm.temb = 4;
    lc.net.tfm.cond = tcond;
    lc.net.tfm.ctok = m.To;
  } else {
    lc.net.mlp.width = 8;
    lc.net.mlp.depth = 1;
    lc.net.mlp.temb = 4;
    lc.net.mlp.cond = cond;
  }
  lc.steps = 2;
  fc_lfm *f = fc_lfm_new(&lc, NULL, 0);
  fc_rng r;
  fc_rng_seed(&r, seed);
  for (size_t i = 0; i < fc_lfm_nparams(f); i++) f->params[i] = 0.3f * (float)fc_rng_normal(&r);
  float rows[3 * 32];
  for (int i = 0; i < 3 * 32; i++) rows[i] = (float)fc_rng_normal(&r);
  fc_norm on, an;
  fc_norm_fit_rows(&on, kind, rows, 32, 3, NULL, 0);
  fc_norm_fit_rows(&an, kind, rows, 48, 2, NULL, 0);
  fc_ae *ae = NULL;
  if (latent) {
    fc_ae_config ac;
    fc_ae_config_default(&ac, m.Tp * m.action_dim, latent);
    ac.width = 8, ac.depth = 1;
    ae = fc_ae_new(&ac);
    fc_ae_init(ae, &r);
  }
  return pol_new_latent(&m, &on, &an, f, ae, NULL, 0);
}

static pol_policy *s_seed_policy(pol_method method, fc_norm_kind kind, fc_cond_mode cond, uint64_t seed) {
  return s_seed_policy_of(method, kind, cond, seed, FC_NET_MLP, FC_TFM_FILM, 0);
}

/* flag byte + the file at tmp */
static int s_write_seed(const char *dir, const char *name, const char *tmp, uint8_t flag) {
  FILE *f = fopen(tmp, "rb");
  if (!f) return -1;
  static uint8_t buf[1 << 20];
  buf[0] = flag;
  size_t n = fread(buf + 1, 1, sizeof(buf) - 1, f);
  fclose(f);
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  f = fopen(path, "wb");
  if (!f) return fprintf(stderr, "fuzz_ckpt: cannot create %s\n", path), -1;
  fwrite(buf, 1, n + 1, f);
  fclose(f);
  printf("fuzz_ckpt: wrote %s (%zu bytes)\n", path, n + 1);
  return 0;
}

static int s_write_seeds(const char *dir) {
  static const struct {
    const char *name;
    pol_method method;
    fc_norm_kind kind;
    fc_cond_mode cond;
    uint8_t flag;
  } pols[] = {
      {"lfm-minmax.seed", POL_LFM, FC_NORM_MINMAX, FC_COND_FILM, 1},
      {"fm-meanstd-concat.seed", POL_FM, FC_NORM_MEANSTD, FC_COND_CONCAT, 1},
      {"mse-minmax.seed", POL_MSE, FC_NORM_MINMAX, FC_COND_FILM, 1},
      {"lfm-minmax-unsealed.seed", POL_LFM, FC_NORM_MINMAX, FC_COND_FILM, 0},
  };
  char tmp[4096], err[512];
  snprintf(tmp, sizeof(tmp), "%s/.seed.tmp", dir);
  for (size_t i = 0; i < sizeof(pols) / sizeof(pols[0]); i++) {
    pol_policy *p = s_seed_policy(pols[i].method, pols[i].kind, pols[i].cond, 10 + i);
    if (!p || pol_save_file(p, tmp, err, sizeof(err))) return fprintf(stderr, "fuzz_ckpt: %s\n", err), 1;
    pol_free(p);
    if (s_write_seed(dir, pols[i].name, tmp, pols[i].flag)) return 1;
  }
  /* transformers of the three conditionings, and a latent flow (sections
   * lfm.config's kind 2, cross-attention's ctok, pol.latent) */
  static const struct {
    const char *name;
    fc_net_kind net;
    fc_tfm_cond tcond;
    int latent;
  } more[] = {{"fm-transformer.seed", FC_NET_TRANSFORMER, FC_TFM_ADALN, 0},
              {"fm-latent.seed", FC_NET_MLP, FC_TFM_FILM, 3},
              {"fm-transformer-film.seed", FC_NET_TRANSFORMER, FC_TFM_FILM, 0},
              {"fm-transformer-cross.seed", FC_NET_TRANSFORMER, FC_TFM_CROSS, 0}};
  for (int k = 0; k < 4; k++) {
    pol_policy *q = s_seed_policy_of(POL_FM, FC_NORM_MINMAX, FC_COND_FILM, 30 + (uint64_t)k, more[k].net, more[k].tcond,
                                     more[k].latent);
    if (!q || pol_save_file(q, tmp, err, sizeof(err))) return fprintf(stderr, "fuzz_ckpt: %s\n", err), 1;
    pol_free(q);
    if (s_write_seed(dir, more[k].name, tmp, 1)) return 1;
  }
  pol_policy *p = s_seed_policy(POL_LFM, FC_NORM_MINMAX, FC_COND_FILM, 20);
  int rc = fc_lfm_save_file(p->flow, tmp, err, sizeof(err));
  pol_free(p);
  if (rc || s_write_seed(dir, "lfm-kind.seed", tmp, 1)) return 1;
  /* a run interrupted inside its second block (kind "run") */
  {
    fc_lfm_config lc;
    fc_lfm_config_default(&lc, 2, 1);
    lc.nblocks = 2, lc.net.mlp.width = 8, lc.net.mlp.depth = 1, lc.net.mlp.temb = 4, lc.steps = 2;
    fc_lfm *m = fc_lfm_new(&lc, NULL, 0);
    float x[S_RUN_N * 2], c[S_RUN_N] = {0};
    for (int i = 0; i < S_RUN_N * 2; i++) x[i] = (float)(i % 7) * 0.1f;
    fc_train_config tc;
    s_run_config(&tc);
    fc_lfm_trainer *tr = fc_lfm_trainer_new(m, x, c, S_RUN_N, &tc, err, sizeof(err));
    if (!tr) return fprintf(stderr, "fuzz_ckpt: %s\n", err), 1;
    while (fc_lfm_trainer_steps_done(tr) < 6) fc_lfm_trainer_step(tr);
    fc_ckpt_writer *w = fc_ckpt_writer_new("run");
    fc_lfm_save(m, w, NULL);
    fc_lfm_trainer_save(tr, w);
    rc = fc_ckpt_write(w, tmp, err, sizeof(err));
    fc_ckpt_writer_free(w);
    fc_lfm_trainer_free(tr);
    fc_lfm_free(m);
    if (rc || s_write_seed(dir, "run-kind.seed", tmp, 1)) return 1;
  }
  remove(tmp);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--write-seeds")) return s_write_seeds(argv[2]);
  int n = 0, loaded = 0;
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      fprintf(stderr, "fuzz_ckpt: cannot open %s\n", argv[i]);
      return 1;
    }
    static uint8_t buf[1 << 20];
    const size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    loaded += s_one(buf, len);
    n++;
  }
  printf("fuzz_ckpt: %d inputs replayed, %d loaded as a policy or model, no failure\n", n, loaded);
  /* the seeds are real files: if none loads, the corpus no longer matches the format */
  return n > 0 && loaded > 0 ? 0 : 1;
}
#endif
