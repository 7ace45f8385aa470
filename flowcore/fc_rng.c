/* fc_rng: xoshiro256** (Blackman & Vigna 2018) with splitmix64 seeding and
 * Box-Muller normals. Pure integer/double arithmetic: identical on every run. */
#include "fc_rng.h"

#include <math.h>

#include "fc_base.h"

static uint64_t s_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline uint64_t s_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void fc_rng_seed(fc_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = s_splitmix64(&x);
  r->spare = 0.0;
  r->has_spare = 0;
}

uint64_t fc_rng_u64(fc_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = s_rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = s_rotl(s[3], 45);
  return result;
}

double fc_rng_uniform(fc_rng *r) { return (double)(fc_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t fc_rng_below(fc_rng *r, uint64_t n) {
  /* rejection on the top of the range keeps every residue equally likely */
  uint64_t lim = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = fc_rng_u64(r);
  while (x >= lim);
  return x % n;
}

double fc_rng_normal(fc_rng *r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  /* Box-Muller on (0, 1] x [0, 1): u1 never 0, so log is finite */
  double u1 = 1.0 - fc_rng_uniform(r);
  double u2 = fc_rng_uniform(r);
  double rad = sqrt(-2.0 * log(u1));
  double th = 2.0 * FC_PI * u2;
  r->spare = rad * sin(th);
  r->has_spare = 1;
  return rad * cos(th);
}

void fc_rng_normal_fill(fc_rng *r, float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = (float)fc_rng_normal(r);
}

void fc_rng_permutation(fc_rng *r, int *idx, int n) {
  for (int i = 0; i < n; i++) idx[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)fc_rng_below(r, (uint64_t)i + 1);
    int t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
}

void fc_rng_split(fc_rng *r, fc_rng *child) { fc_rng_seed(child, fc_rng_u64(r)); }
