/* rollout: what closed-loop evaluation shares between `lfp eval` (policy
 * in-process) and `lfp sim` (policy behind a ZeroMQ node): per-episode
 * bookkeeping, the summary (success with a Wilson interval, task figures, a
 * digest of the final states) and its printing, in words and as JSON keys.
 *
 *   rollout_result r;
 *   rollout_begin(em, ed, &r);                 // after env_reset
 *   while (!env_done(em, ed)) { ... env_step ...; rollout_track(em, ed, &r); }
 *   rollout_end(em, ed, &r, unstable);
 *   rollout_stats s; rollout_summarize(results, n, &s);
 *   rollout_print(stdout, em, &s); rollout_json(stdout, em, &s);
 */
#ifndef LFP_ROLLOUT_H
#define LFP_ROLLOUT_H

#include <stdint.h>
#include <stdio.h>

#include "env.h"

typedef struct {
  int success, len, unstable, side;
  double max_coverage;
  uint32_t digest; /* CRC-32 of the final flat state */
} rollout_result;

typedef struct {
  int episodes, successes, unstable, left, right;
  double rate, ci_lo, ci_hi, mean_len, mean_coverage;
  uint32_t digest; /* CRC-32 over the episodes' digests, in seed order */
} rollout_stats;

void rollout_begin(const env_model *em, const env_data *ed, rollout_result *r);
void rollout_track(const env_model *em, const env_data *ed, rollout_result *r);
void rollout_end(const env_model *em, const env_data *ed, rollout_result *r, int unstable);
void rollout_summarize(const rollout_result *r, int n, rollout_stats *s);
/* "  success ..% (k/n), 95% CI [..], mean length .." and the task's figures */
void rollout_print(FILE *f, const env_model *em, const rollout_stats *s);
/* JSON members (no braces), starting with "success_rate": success_rate,
 * ci95, mean_len, unstable, digest, and max_coverage_mean / left, right
 * where the task has them. */
void rollout_json(FILE *f, const env_model *em, const rollout_stats *s);

#endif
