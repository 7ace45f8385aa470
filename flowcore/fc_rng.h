/* fc_rng: explicit-state random numbers (xoshiro256** seeded by splitmix64).
 *
 * Every random draw in lfp goes through an fc_rng the caller owns; there is no
 * global generator, so the same seed gives a bit-identical run and a state can
 * be saved and restored (it is a plain struct of integers).
 *
 * Example:
 *
 *   void draws(void) {
 *     fc_rng r;
 *     fc_rng_seed(&r, 42);
 *     double u = fc_rng_uniform(&r);               // [0, 1)
 *     float z[8];
 *     fc_rng_normal_fill(&r, z, 8);                // N(0, 1)
 *     uint64_t k = fc_rng_below(&r, 10);           // uniform in 0..9, unbiased
 *     printf("%g %g %llu\n", u, z[0], (unsigned long long)k);
 *   }
 */
#ifndef FC_RNG_H
#define FC_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t s[4];      /* xoshiro256** state */
  double spare;       /* second Box-Muller value, valid when has_spare */
  int has_spare;
} fc_rng;

/* Seed from one 64-bit value (any value, 0 included). */
void fc_rng_seed(fc_rng *r, uint64_t seed);
/* Next raw 64-bit value. */
uint64_t fc_rng_u64(fc_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double fc_rng_uniform(fc_rng *r);
/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint64_t fc_rng_below(fc_rng *r, uint64_t n);
/* Standard normal draw (Box-Muller, both values used). */
double fc_rng_normal(fc_rng *r);
/* Fill x[0..n) with N(0, 1) draws. */
void fc_rng_normal_fill(fc_rng *r, float *x, size_t n);
/* Fill idx[0..n) with a uniformly random permutation of 0..n-1 (Fisher-Yates). */
void fc_rng_permutation(fc_rng *r, int *idx, int n);
/* Derive an independent stream: seeds `child` from r's next outputs. */
void fc_rng_split(fc_rng *r, fc_rng *child);

#endif
