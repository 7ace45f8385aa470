/* test_unet: fc_unet, the 1-D conv U-Net velocity network: the double
 * reference's gradients against central finite differences and its forward
 * and gradients against PyTorch's (tests/fixtures/unet_torch.txt), the float
 * BLAS path against the reference, configuration refusals, the tensor list, width
 * matching, batch independence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowcore.h"
#include "net_check.h"
#include "test.h"

/* a small config: T, A, C, levels, dims, kernel, groups, act */
static fc_unet_config s_cfg(int T, int A, int C, int L, const int *dims, int K, int G, fc_act act, int temb) {
  fc_unet_config cfg;
  fc_unet_config_default(&cfg, T, A, C);
  cfg.nlevels = L;
  for (int i = 0; i < FC_UNET_MAX_LEVELS; i++) cfg.dims[i] = i < L ? dims[i] : 0;
  cfg.kernel = K;
  cfg.groups = G;
  cfg.act = act;
  cfg.temb = temb;
  return cfg;
}

/* the kind's config as a network config, for net_check.h */
static fc_net_config s_net(const fc_unet_config *cfg) {
  fc_net_config nc;
  memset(&nc, 0, sizeof(nc));
  nc.kind = FC_NET_UNET;
  nc.unet = *cfg;
  return nc;
}

static int s_ref_grads(const fc_unet_config *cfg, uint64_t seed) {
  const fc_net_config nc = s_net(cfg);
  return net_check_ref_grads(&nc, seed, 0.2);
}

static int s_check_blas(const fc_unet_config *cfg, int B, uint64_t seed) {
  const fc_net_config nc = s_net(cfg);
  return net_check_blas(&nc, B, seed, 0.1);
}

/* ---------- the reference's gradients against central finite differences ---------- */

TEST(unet_reference_gradients) {
  /* 3 levels with a residual conv in most blocks, Mish; 1, 2 and 4 levels; no condition; SiLU */
  const int d3[3] = {4, 6, 8}, d1[1] = {6}, d2[2] = {4, 4}, d4[4] = {4, 6, 6, 8};
  fc_unet_config a = s_cfg(8, 2, 3, 3, d3, 3, 2, FC_ACT_MISH, 4);
  fc_unet_config b = s_cfg(5, 3, 2, 1, d1, 5, 3, FC_ACT_MISH, 6);
  fc_unet_config c = s_cfg(4, 2, 0, 2, d2, 3, 2, FC_ACT_SILU, 4);
  fc_unet_config d = s_cfg(8, 1, 2, 4, d4, 3, 2, FC_ACT_GELU, 4);
  if (s_ref_grads(&a, 1)) return 1;
  if (s_ref_grads(&b, 2)) return 1;
  if (s_ref_grads(&c, 3)) return 1;
  return s_ref_grads(&d, 4);
}

/* ---------- the reference against PyTorch (an independent implementation) ---------- */

TEST(unet_matches_pytorch) {
  /* tests/make_torch_fixtures.py: tools/bench_torch.py's UNet1D in double */
  FILE *f = fopen(LFP_UNET_FIXTURE, "r");
  ASSERT_MSG(f, "cannot open %s", LFP_UNET_FIXTURE);
  char line[512];
  ASSERT(fgets(line, sizeof(line), f) && line[0] == '#');
  int cases = 0, T, A, C, L, d[4], K, G, E, B;
  while (fscanf(f, " case %d %d %d %d %d %d %d %d %d %d %d %d", &T, &A, &C, &L, &d[0], &d[1], &d[2], &d[3], &K, &G,
                &E, &B) == 12) {
    fc_unet_config cfg = s_cfg(T, A, C, L, d, K, G, FC_ACT_MISH, E);
    const fc_net_config nc = s_net(&cfg);
    if (net_check_fixture(&nc, f, B)) return 1;
    cases++;
  }
  fclose(f);
  ASSERT_EQ_INT(cases, 2);
  return 0;
}

/* ---------- the float BLAS path against the double reference ---------- */

TEST(unet_blas_matches_reference) {
  const int d3[3] = {16, 24, 32}, d1[1] = {16}, d2[2] = {8, 16}, d4[4] = {8, 16, 16, 24};
  fc_unet_config cfgs[4] = {
      s_cfg(16, 3, 5, 3, d3, 5, 8, FC_ACT_MISH, 8),
      s_cfg(7, 2, 4, 1, d1, 3, 4, FC_ACT_MISH, 4),
      s_cfg(8, 7, 0, 2, d2, 5, 4, FC_ACT_SILU, 6),
      s_cfg(16, 2, 6, 4, d4, 3, 4, FC_ACT_GELU, 8),
  };
  for (int k = 0; k < 4; k++) {
    char err[256];
    ASSERT_MSG(fc_unet_config_check(&cfgs[k], err, sizeof(err)) == 0, "%s", err);
    if (s_check_blas(&cfgs[k], 1, 10 + k)) return 1; /* one sample */
    if (s_check_blas(&cfgs[k], 6, 20 + k)) return 1;
  }
  /* the default network at a batch that splits every matmul over the threads */
  fc_unet_config def;
  fc_unet_config_default(&def, 16, 2, 20);
  return s_check_blas(&def, 40, 30);
}

/* ---------- configuration ---------- */

TEST(unet_config_check_refusals) {
  char err[256];
  fc_unet_config cfg;
  fc_unet_config_default(&cfg, 16, 2, 40);
  ASSERT_MSG(fc_unet_config_check(&cfg, err, sizeof(err)) == 0, "%s", err);
  ASSERT_EQ_INT(cfg.nlevels, 3);
  /* the defaults always pass: fewer levels for a horizon that halves fewer times */
  for (int T = 1; T <= 40; T++) {
    fc_unet_config_default(&cfg, T, 7, 38);
    ASSERT_MSG(fc_unet_config_check(&cfg, err, sizeof(err)) == 0, "T=%d: %s", T, err);
  }
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.horizon = 12; /* 3 halvings of 12 do not come back to 12 at 4 levels */
  cfg.dx = 24;
  cfg.nlevels = 4;
  cfg.dims[3] = 256;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "horizon 12 is not divisible by 2^(levels - 1) = 8");
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.dims[1] = 100; /* not a multiple of 8 groups */
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "level 1 channels 100 are not divisible by the 8 GroupNorm groups");
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.kernel = 4;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "kernel size must be odd");
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.dx = 31;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "x dimension 31 must be horizon 16 x action dimension 2");
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.nlevels = 5;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  ASSERT_CONTAINS(err, "levels must be in 1..4");
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.temb = 7;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.dims[2] = 2048;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  fc_unet_config_default(&cfg, 16, 2, 40);
  cfg.groups = 0;
  ASSERT(fc_unet_config_check(&cfg, err, sizeof(err)) != 0);
  return 0;
}

static int s_cmp_offset(const void *a, const void *b) {
  const fc_tensor_info *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

TEST(unet_tensors_cover_the_vector) {
  const int d4[4] = {32, 64, 64, 128};
  for (int L = 1; L <= 4; L++)
    for (int C = 0; C <= 5; C += 5) {
      fc_unet_config cfg = s_cfg(16, 3, C, L, d4, 5, 8, FC_ACT_MISH, 16);
      char err[256];
      ASSERT_MSG(fc_unet_config_check(&cfg, err, sizeof(err)) == 0, "%s", err);
      fc_tensor_info ti[FC_UNET_MAX_TENSORS + 1];
      int n = fc_unet_tensors(&cfg, ti, FC_UNET_MAX_TENSORS + 1);
      ASSERT(n <= FC_UNET_MAX_TENSORS);
      /* 4 time, per block 8 or 10, downs and ups 2 each, FiLM 2, final 4, output 2 */
      int nres = 0;
      fc_unet_layout lay;
      fc_unet_layout_make(&lay, &cfg);
      for (int b = 0; b < lay.nblocks; b++) nres += lay.blk[b].res;
      ASSERT_EQ_INT(n, 4 + 8 * 4 * L + 2 * nres + 4 * (L - 1) + 8);
      qsort(ti, (size_t)n, sizeof(ti[0]), s_cmp_offset);
      size_t next = 0;
      for (int k = 0; k < n; k++) {
        ASSERT_MSG(ti[k].offset == next, "%s at %zu, expected %zu", ti[k].name, ti[k].offset, next);
        ASSERT(ti[k].rows >= 1 && ti[k].cols >= 1);
        next += (size_t)ti[k].rows * ti[k].cols;
      }
      ASSERT_EQ_INT(next, fc_unet_nparams(&cfg));
      /* a max below the count fills no more than max, still returns the count */
      fc_tensor_info few[3];
      ASSERT_EQ_INT(fc_unet_tensors(&cfg, few, 3), n);
    }
  /* DP's counts for its blocks: the largest level-2 block at {256, 512, 1024} */
  fc_unet_config dp;
  fc_unet_config_default(&dp, 16, 2, 40);
  dp.dims[0] = 256, dp.dims[1] = 512, dp.dims[2] = 1024;
  fc_unet_layout lay;
  fc_unet_layout_make(&lay, &dp);
  ASSERT_EQ_INT(lay.blk[4].cin, 512);
  ASSERT_EQ_INT(lay.blk[4].cout, 1024);
  ASSERT_EQ_INT(lay.blk[8].cin, 2048); /* decoder stage 0: [mid ; skip 2] */
  ASSERT_EQ_INT(lay.blk[8].cout, 512);
  ASSERT_EQ_INT(lay.blk[10].cin, 1024);
  ASSERT_EQ_INT(lay.blk[10].cout, 256);
  ASSERT_EQ_INT(lay.blk[10].len, 8);
  return 0;
}

TEST(unet_init_follows_pytorch) {
  fc_unet_config cfg;
  fc_unet_config_default(&cfg, 16, 2, 20);
  const size_t P = fc_unet_nparams(&cfg);
  float *p = malloc(P * sizeof(float));
  fc_unet net;
  fc_unet_bind(&net, &cfg, p);
  fc_rng rng;
  fc_rng_seed(&rng, 3);
  fc_unet_init(&net, &rng);
  fc_tensor_info ti[FC_UNET_MAX_TENSORS];
  int n = fc_unet_tensors(&cfg, ti, FC_UNET_MAX_TENSORS);
  for (int k = 0; k < n; k++) {
    const float *v = p + ti[k].offset;
    size_t cnt = (size_t)ti[k].rows * ti[k].cols;
    int is_gn = strstr(ti[k].name, "gn") != NULL;
    ASSERT_EQ_INT(ti[k].fan_in == 0, is_gn);
    double lo = 1e9, hi = -1e9;
    for (size_t j = 0; j < cnt; j++) lo = v[j] < lo ? v[j] : lo, hi = v[j] > hi ? v[j] : hi;
    if (is_gn) {
      double want = ti[k].name[strlen(ti[k].name) - 1] == 'w' ? 1.0 : 0.0;
      ASSERT_MSG(lo == want && hi == want, "%s in [%g, %g]", ti[k].name, lo, hi);
    } else {
      double bound = 1.0 / sqrt((double)ti[k].fan_in);
      ASSERT_MSG(lo >= -bound && hi <= bound, "%s in [%g, %g], bound %g", ti[k].name, lo, hi, bound);
      if (cnt >= 64) ASSERT_MSG(hi - lo > bound, "%s in [%g, %g], bound %g", ti[k].name, lo, hi, bound);
    }
  }
  free(p);
  return 0;
}

TEST(unet_width_matching_is_closest) {
  fc_unet_config cfg;
  fc_unet_config_default(&cfg, 16, 7, 38);
  fc_unet_config one = fc_unet_width_matching(&cfg, 1);
  ASSERT(memcmp(one.dims, cfg.dims, sizeof(cfg.dims)) == 0);
  const double target = (double)fc_unet_nparams(&cfg);
  const int G = cfg.groups, steps = cfg.dims[0] / G;
  for (int copies = 2; copies <= 8; copies++) {
    fc_unet_config m = fc_unet_width_matching(&cfg, copies);
    char err[256];
    ASSERT_MSG(fc_unet_config_check(&m, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < m.nlevels; i++) ASSERT(m.dims[i] % G == 0 && m.dims[i] <= cfg.dims[i]);
    const double gap = fabs((double)fc_unet_nparams(&m) * copies - target);
    /* no other scaling of the levels by a common factor comes closer */
    for (int s = 1; s <= steps; s++) {
      fc_unet_config c = cfg;
      for (int i = 0; i < c.nlevels; i++) {
        long q = lround((double)cfg.dims[i] * s / steps / G);
        c.dims[i] = (int)(q < 1 ? 1 : q) * G;
      }
      ASSERT_MSG(gap <= fabs((double)fc_unet_nparams(&c) * copies - target),
                 "copies %d: dims[0] %d beats the matched %d", copies, c.dims[0], m.dims[0]);
    }
    /* and it is close: within a third of one network */
    ASSERT_MSG(gap < target / 3, "copies %d: gap %g of %g", copies, gap, target);
  }
  return 0;
}

/* ---------- batch behaviour ---------- */

TEST(unet_batch1_equals_row_of_batch) {
  fc_unet_config cfg;
  fc_unet_config_default(&cfg, 16, 7, 38);
  const fc_net_config nc = s_net(&cfg);
  return net_check_batch_rows(&nc, 5, 0.0);
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      TEST_ENTRY(unet_reference_gradients),      TEST_ENTRY(unet_matches_pytorch),
      TEST_ENTRY(unet_blas_matches_reference),
      TEST_ENTRY(unet_config_check_refusals),    TEST_ENTRY(unet_tensors_cover_the_vector),
      TEST_ENTRY(unet_init_follows_pytorch),     TEST_ENTRY(unet_width_matching_is_closest),
      TEST_ENTRY(unet_batch1_equals_row_of_batch),
  };
  fc_par_init(0); /* as lfp does: the pool sized from the CPUs, OpenBLAS one thread per call */
  return test_main(argc, argv, cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
