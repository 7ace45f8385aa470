/* test_tfm: fc_tfm, the transformer velocity network: the double
 * reference's gradients against central finite differences (every tensor,
 * x and c) and its forward and gradients against PyTorch's
 * (tests/fixtures/tfm_torch.txt), the float BLAS path against the reference,
 * configuration refusals, the tensor list, initialization, width matching,
 * batch independence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowcore.h"
#include "net_check.h"
#include "test.h"

/* a small config: T, A, C, width, depth, heads, ffn, temb, act, cond */
static fc_tfm_config s_cfg(int T, int A, int C, int D, int L, int H, int F, int E, fc_act act, fc_tfm_cond cond) {
  fc_tfm_config cfg;
  fc_tfm_config_default(&cfg, T, A, C);
  cfg.width = D;
  cfg.depth = L;
  cfg.heads = H;
  cfg.ffn = F;
  cfg.temb = E;
  cfg.act = act;
  cfg.cond = cond;
  return cfg;
}

/* the kind's config as a network config, for net_check.h */
static fc_net_config s_net(const fc_tfm_config *cfg) {
  fc_net_config nc;
  memset(&nc, 0, sizeof(nc));
  nc.kind = FC_NET_TRANSFORMER;
  nc.tfm = *cfg;
  return nc;
}

static int s_ref_grads(const fc_tfm_config *cfg, uint64_t seed) {
  const fc_net_config nc = s_net(cfg);
  return net_check_ref_grads(&nc, seed, 0.6);
}

static int s_check_blas(const fc_tfm_config *cfg, int B, uint64_t seed) {
  const fc_net_config nc = s_net(cfg);
  return net_check_blas(&nc, B, seed, 0.2);
}

/* ---------- the reference's gradients against central finite differences ---------- */

TEST(tfm_reference_gradients) {
  /* adaLN and FiLM; one and two heads; no condition; T = 1 (attention over one token); each activation */
  fc_tfm_config a = s_cfg(4, 2, 3, 8, 2, 2, 12, 4, FC_ACT_GELU, FC_TFM_ADALN);
  fc_tfm_config b = s_cfg(3, 3, 2, 6, 1, 1, 10, 6, FC_ACT_SILU, FC_TFM_FILM);
  fc_tfm_config c = s_cfg(5, 1, 0, 4, 2, 2, 8, 4, FC_ACT_MISH, FC_TFM_ADALN);
  fc_tfm_config d = s_cfg(1, 2, 2, 4, 1, 2, 4, 2, FC_ACT_GELU, FC_TFM_ADALN);
  /* cross-attention: two condition tokens of 3 over two blocks; one token of 2; four of 1 (without a
   * condition the memory is the time token alone, the queries' gradient exactly zero: the BLAS test has it) */
  fc_tfm_config e = s_cfg(4, 2, 6, 8, 2, 2, 12, 4, FC_ACT_GELU, FC_TFM_CROSS);
  e.ctok = 2;
  fc_tfm_config f = s_cfg(3, 1, 2, 6, 1, 3, 10, 6, FC_ACT_SILU, FC_TFM_CROSS);
  fc_tfm_config g = s_cfg(2, 3, 4, 4, 2, 1, 8, 4, FC_ACT_MISH, FC_TFM_CROSS);
  g.ctok = 4;
  if (s_ref_grads(&a, 1)) return 1;
  if (s_ref_grads(&b, 2)) return 1;
  if (s_ref_grads(&c, 3)) return 1;
  if (s_ref_grads(&e, 5)) return 1;
  if (s_ref_grads(&f, 6)) return 1;
  if (s_ref_grads(&g, 7)) return 1;
  return s_ref_grads(&d, 4);
}

/* ---------- the reference against PyTorch (an independent implementation) ---------- */

TEST(tfm_matches_pytorch) {
  /* tests/make_torch_fixtures.py: tools/bench_torch.py's DiT1D in double */
  FILE *f = fopen(LFP_TFM_FIXTURE, "r");
  ASSERT_MSG(f, "cannot open %s", LFP_TFM_FIXTURE);
  char line[512];
  ASSERT(fgets(line, sizeof(line), f) && line[0] == '#');
  int cases = 0, T, A, C, D, L, H, F, E, cond, ctok, B;
  while (fscanf(f, " case %d %d %d %d %d %d %d %d %d %d %d", &T, &A, &C, &D, &L, &H, &F, &E, &cond, &ctok, &B) == 11) {
    fc_tfm_config cfg = s_cfg(T, A, C, D, L, H, F, E, FC_ACT_GELU, (fc_tfm_cond)cond);
    cfg.ctok = ctok;
    const fc_net_config nc = s_net(&cfg);
    if (net_check_fixture(&nc, f, B)) return 1;
    cases++;
  }
  fclose(f);
  ASSERT_EQ_INT(cases, 3);
  return 0;
}

/* ---------- the float BLAS path against the double reference ---------- */

TEST(tfm_blas_matches_reference) {
  fc_tfm_config cfgs[6] = {
      s_cfg(16, 3, 5, 32, 2, 4, 64, 8, FC_ACT_GELU, FC_TFM_ADALN),
      s_cfg(7, 2, 4, 24, 1, 3, 40, 4, FC_ACT_SILU, FC_TFM_FILM),
      s_cfg(8, 7, 0, 16, 3, 1, 16, 6, FC_ACT_MISH, FC_TFM_ADALN),
      s_cfg(1, 2, 6, 16, 2, 2, 32, 8, FC_ACT_GELU, FC_TFM_FILM),
      s_cfg(16, 2, 20, 32, 2, 4, 64, 8, FC_ACT_GELU, FC_TFM_CROSS), /* 2 condition tokens of 10 */
      s_cfg(5, 3, 0, 16, 1, 2, 24, 4, FC_ACT_MISH, FC_TFM_CROSS),
  };
  cfgs[4].ctok = 2;
  for (int k = 0; k < 6; k++) {
    char err[256];
    ASSERT_MSG(fc_tfm_config_check(&cfgs[k], err, sizeof(err)) == 0, "%s", err);
    if (s_check_blas(&cfgs[k], 1, 10 + k)) return 1; /* one sample */
    if (s_check_blas(&cfgs[k], 6, 20 + k)) return 1;
  }
  /* the default network at a batch that splits every matmul over the threads */
  fc_tfm_config def;
  fc_tfm_config_default(&def, 16, 2, 20);
  return s_check_blas(&def, 40, 30);
}

/* ---------- configuration ---------- */

TEST(tfm_config_check_refusals) {
  char err[256];
  fc_tfm_config cfg;
  for (int T = 1; T <= 40; T++) { /* the defaults always pass */
    fc_tfm_config_default(&cfg, T, 7, 38);
    ASSERT_MSG(fc_tfm_config_check(&cfg, err, sizeof(err)) == 0, "T=%d: %s", T, err);
  }
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.heads = 3; /* 128 is not a multiple of 3 */
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "width 128 does not split into 3 attention heads");
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.dx = 31;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "x dimension 31 must be horizon 16 x action dimension 2");
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.depth = 0;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "depth must be in 1..32");
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.temb = 7;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.cond = (fc_tfm_cond)3;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "unknown transformer conditioning 3");
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.cond = FC_TFM_CROSS;
  cfg.ctok = 3; /* 40 values do not split into 3 tokens */
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "splits the 40 condition values into 3 tokens");
  cfg.ctok = 0;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  cfg.ctok = 4;
  ASSERT_MSG(fc_tfm_config_check(&cfg, err, sizeof(err)) == 0, "%s", err);
  fc_tfm_config_default(&cfg, 16, 2, 40);
  cfg.ffn = 0;
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  fc_tfm_config_default(&cfg, 2000, 2, 40);
  ASSERT(fc_tfm_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "horizon must be in 1..1024");
  return 0;
}

static int s_cmp_offset(const void *a, const void *b) {
  const fc_tensor_info *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

TEST(tfm_tensors_cover_the_vector) {
  for (int L = 1; L <= 4; L += 3)
    for (int cond = 0; cond <= 3; cond++) { /* adaLN, FiLM, cross, cross without a condition */
      fc_tfm_config cfg = s_cfg(16, 3, cond == 3 ? 0 : 5 * cond, 32, L, 4, 48, 16, FC_ACT_GELU,
                                (fc_tfm_cond)(cond < 2 ? cond : FC_TFM_CROSS));
      cfg.ctok = 5;
      char err[256];
      ASSERT_MSG(fc_tfm_config_check(&cfg, err, sizeof(err)) == 0, "%s", err);
      fc_tensor_info ti[FC_TFM_MAX_TENSORS + 1];
      const int n = fc_tfm_tensors(&cfg, ti, FC_TFM_MAX_TENSORS + 1);
      ASSERT(n <= FC_TFM_MAX_TENSORS);
      /* time, in + pos, blocks, modulation, out; cross: the memory's 9 (7 without a condition), 6 more a block, no modulation */
      ASSERT_EQ_INT(n, cond < 2 ? 4 + 3 + 8 * L + 4 : 4 + 3 + (cond == 2 ? 9 : 7) + 14 * L + 2);
      qsort(ti, (size_t)n, sizeof(ti[0]), s_cmp_offset);
      size_t next = 0;
      for (int k = 0; k < n; k++) {
        ASSERT_MSG(ti[k].offset == next, "%s at %zu, expected %zu", ti[k].name, ti[k].offset, next);
        ASSERT(ti[k].rows >= 1 && ti[k].cols >= 1);
        next += (size_t)ti[k].rows * ti[k].cols;
      }
      ASSERT_EQ_INT(next, fc_tfm_nparams(&cfg));
      fc_tensor_info few[3];
      ASSERT_EQ_INT(fc_tfm_tensors(&cfg, few, 3), n);
      /* the modulation: 6 vectors a block with adaLN, 4 with FiLM, and the final 2 */
      fc_tfm_layout lay;
      fc_tfm_layout_make(&lay, &cfg);
      ASSERT_EQ_INT(lay.mw, cond >= 2 ? 0 : ((cond ? 4 : 6) * L + 2) * 32);
      ASSERT_EQ_INT(lay.ns, cond == 2 ? 1 + 5 : cond == 3 ? 1 : 0); /* memory tokens: time + 5 of 2 values */
    }
  /* DiT's count for one block of width D, ffn 4 D: 12 D^2 + 9 D, plus 6 D (dk + 1) of modulation */
  fc_tfm_config a = s_cfg(16, 2, 10, 64, 1, 4, 256, 16, FC_ACT_GELU, FC_TFM_ADALN), b = a;
  b.depth = 2;
  ASSERT_EQ_INT(fc_tfm_nparams(&b) - fc_tfm_nparams(&a), 12 * 64 * 64 + 9 * 64 + 6 * 64 * (16 + 10 + 1));
  /* cross-attention: each block adds 4 D^2 + 4 D (q, kv, proj) to the 12 D^2 + 9 D, no modulation */
  a.cond = b.cond = FC_TFM_CROSS;
  ASSERT_EQ_INT(fc_tfm_nparams(&b) - fc_tfm_nparams(&a), 16 * 64 * 64 + 13 * 64);
  return 0;
}

TEST(tfm_init_is_adaln_zero) {
  for (int cond = 0; cond <= 2; cond++) {
    fc_tfm_config cfg;
    fc_tfm_config_default(&cfg, 16, 2, 20);
    cfg.cond = (fc_tfm_cond)cond;
    cfg.ctok = 2;
    const size_t P = fc_tfm_nparams(&cfg);
    float *p = malloc(P * sizeof(float));
    fc_tfm net;
    fc_tfm_bind(&net, &cfg, p);
    fc_rng rng;
    fc_rng_seed(&rng, 3);
    fc_tfm_init(&net, &rng);
    fc_tensor_info ti[FC_TFM_MAX_TENSORS];
    const int n = fc_tfm_tensors(&cfg, ti, FC_TFM_MAX_TENSORS);
    for (int k = 0; k < n; k++) {
      const float *v = p + ti[k].offset;
      const size_t cnt = (size_t)ti[k].rows * ti[k].cols;
      double lo = 1e9, hi = -1e9, ss = 0;
      for (size_t j = 0; j < cnt; j++) lo = fmin(lo, v[j]), hi = fmax(hi, v[j]), ss += (double)v[j] * v[j];
      const int zero = cond == FC_TFM_ADALN && (!strncmp(ti[k].name, "mod.", 4) || !strncmp(ti[k].name, "out.", 4));
      if (zero) {
        ASSERT_MSG(lo == 0 && hi == 0, "%s in [%g, %g], adaLN-Zero wants 0", ti[k].name, lo, hi);
      } else if (!strcmp(ti[k].name, "pos") || !strcmp(ti[k].name, "cpos")) {
        ASSERT_EQ_INT(ti[k].fan_in, 0);
        const double sd = sqrt(ss / (double)cnt);
        ASSERT_MSG(sd > 0.018 && sd < 0.022, "pos sd %g, want 0.02", sd);
      } else {
        const double bound = 1.0 / sqrt((double)ti[k].fan_in);
        ASSERT_MSG(lo >= -bound && hi <= bound, "%s in [%g, %g], bound %g", ti[k].name, lo, hi, bound);
        if (cnt >= 64) ASSERT_MSG(hi - lo > bound, "%s in [%g, %g], bound %g", ti[k].name, lo, hi, bound);
      }
    }
    /* adaLN-Zero starts at v = 0 for every input */
    if (cond == FC_TFM_ADALN) {
      float t[2] = {0.3f, 0.8f}, x[64], c[40], y[64];
      fc_rng_normal_fill(&rng, x, 64);
      fc_rng_normal_fill(&rng, c, 40);
      fc_tfm_ws *ws = fc_tfm_ws_new(&cfg, 2);
      fc_tfm_forward(&net, ws, y, t, x, c, 2);
      for (int i = 0; i < 64; i++) ASSERT(y[i] == 0.0f);
      fc_tfm_ws_free(ws);
    }
    free(p);
  }
  return 0;
}

TEST(tfm_width_matching_is_closest) {
  fc_tfm_config cfg;
  fc_tfm_config_default(&cfg, 16, 7, 38);
  fc_tfm_config one = fc_tfm_width_matching(&cfg, 1);
  ASSERT_EQ_INT(one.width, cfg.width);
  ASSERT_EQ_INT(one.ffn, cfg.ffn);
  const double target = (double)fc_tfm_nparams(&cfg);
  for (int copies = 2; copies <= 8; copies++) {
    fc_tfm_config m = fc_tfm_width_matching(&cfg, copies);
    char err[256];
    ASSERT_MSG(fc_tfm_config_check(&m, err, sizeof(err)) == 0, "%s", err);
    ASSERT(m.width % cfg.heads == 0 && m.width <= cfg.width);
    ASSERT_EQ_INT(m.ffn, (int)lround(4.0 * m.width));
    const double gap = fabs((double)fc_tfm_nparams(&m) * copies - target);
    for (int w = cfg.heads; w <= cfg.width; w += cfg.heads) { /* no other width comes closer */
      fc_tfm_config c = cfg;
      c.width = w;
      c.ffn = 4 * w;
      ASSERT_MSG(gap <= fabs((double)fc_tfm_nparams(&c) * copies - target), "copies %d: width %d beats %d", copies, w,
                 m.width);
    }
    ASSERT_MSG(gap < target / 10, "copies %d: gap %g of %g", copies, gap, target);
  }
  return 0;
}

/* ---------- batch behaviour ---------- */

TEST(tfm_batch1_equals_row_of_batch) {
  fc_tfm_config cfg;
  fc_tfm_config_default(&cfg, 16, 7, 38);
  const fc_net_config nc = s_net(&cfg);
  if (net_check_batch_rows(&nc, 5, 0.1)) return 1;
  cfg.cond = FC_TFM_CROSS; /* two condition tokens of 19 */
  cfg.ctok = 2;
  const fc_net_config xc = s_net(&cfg);
  return net_check_batch_rows(&xc, 5, 0.1);
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(tfm_reference_gradients),      TEST_ENTRY(tfm_matches_pytorch),
      TEST_ENTRY(tfm_blas_matches_reference),   TEST_ENTRY(tfm_config_check_refusals),
      TEST_ENTRY(tfm_tensors_cover_the_vector), TEST_ENTRY(tfm_init_is_adaln_zero),
      TEST_ENTRY(tfm_width_matching_is_closest), TEST_ENTRY(tfm_batch1_equals_row_of_batch),
  };
  fc_par_init(0); /* as lfp does: the pool sized from the CPUs, OpenBLAS one thread per call */
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
