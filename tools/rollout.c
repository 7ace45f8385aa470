/* rollout: episode bookkeeping and the evaluation summary. */
#include "rollout.h"

#include <math.h>
#include <stdlib.h>

#include "cli.h"
#include "fc_base.h"
#include "fc_ckpt.h"

void rollout_begin(const env_model *em, const env_data *ed, rollout_result *r) {
  r->success = r->len = r->unstable = r->side = 0;
  r->contact_full = r->constraint_full = 0;
  r->digest = 0;
  r->score = 0.0;
  r->max_coverage = env_has_coverage(em) ? env_coverage(em, ed) : 0.0;
}

void rollout_track(const env_model *em, const env_data *ed, rollout_result *r) {
  if (!env_has_coverage(em)) return;
  const double cov = env_coverage(em, ed);
  r->max_coverage = cov > r->max_coverage ? cov : r->max_coverage;
}

void rollout_end(const env_model *em, const env_data *ed, rollout_result *r, int unstable) {
  r->unstable = unstable;
  r->success = !unstable && env_success(em, ed);
  r->len = env_steps(ed);
  r->side = env_side(em, ed);
  env_warnings w;
  env_warning_counts(ed, &w);
  r->contact_full = w.contact_full;
  r->constraint_full = w.constraint_full;
  const int sd = env_state_dim(em);
  double *state = fc_malloc(sizeof(double) * (size_t)sd);
  env_get_state(em, ed, state);
  r->digest = fc_crc32(0, state, sizeof(double) * (size_t)sd);
  const double goal = env_coverage_goal(em);
  r->score = goal > 0 ? (r->max_coverage / goal < 1.0 ? r->max_coverage / goal : 1.0) : r->success;
  free(state);
}

void rollout_summarize(const rollout_result *r, int n, rollout_stats *s) {
  FC_ASSERT(n > 0);
  s->episodes = n;
  s->successes = s->unstable = s->left = s->right = 0;
  s->contact_full = s->constraint_full = 0;
  double len = 0, cov = 0, score = 0;
  uint32_t d = 0;
  for (int i = 0; i < n; i++) {
    s->successes += r[i].success;
    s->unstable += r[i].unstable;
    s->left += r[i].side < 0;
    s->right += r[i].side > 0;
    s->contact_full += r[i].contact_full > 0;
    s->constraint_full += r[i].constraint_full > 0;
    len += r[i].len;
    cov += r[i].max_coverage;
    score += r[i].score;
    d = fc_crc32(d, &r[i].digest, sizeof(r[i].digest));
  }
  s->digest = d;
  s->mean_len = len / n;
  s->mean_coverage = cov / n;
  s->mean_score = score / n;
  /* 95% Wilson score interval */
  const double ph = (double)s->successes / n, z = 1.959963984540054;
  const double den = 1 + z * z / n, mid = (ph + z * z / (2.0 * n)) / den;
  const double half = z * sqrt(ph * (1 - ph) / n + z * z / (4.0 * n * n)) / den;
  s->rate = ph;
  s->ci_lo = mid - half;
  s->ci_hi = mid + half;
}

void rollout_warn(FILE *f, const char *cmd, int episode, uint64_t seed, const char *why) {
  fprintf(f, "lfp %s: warning: episode %d (seed %llu) ended as unstable: %s\n", cmd, episode, (unsigned long long)seed,
          why);
}

void rollout_print(FILE *f, const env_model *em, const rollout_stats *s) {
  fprintf(f, "  success %.1f%% (%d/%d), 95%% CI [%.1f%%, %.1f%%], mean score %.3f, mean length %.1f steps\n",
          100 * s->rate, s->successes, s->episodes, 100 * s->ci_lo, 100 * s->ci_hi, s->mean_score, s->mean_len);
  if (env_has_coverage(em)) fprintf(f, "  mean max coverage %.3f\n", s->mean_coverage);
  if (env_has_side(em))
    fprintf(f, "  sides: %d left, %d right, %d neither\n", s->left, s->right, s->episodes - s->left - s->right);
  fprintf(f, "  unstable %d episodes; MuJoCo lost contacts (CONTACTFULL) in %d, constraints (CNSTRFULL) in %d\n",
          s->unstable, s->contact_full, s->constraint_full);
}

void rollout_json_open(FILE *f, const env_model *em, const rollout_run *run, const rollout_stats *s) {
  fprintf(f, "{\"env\": ");
  cli_json_str(f, env_name(em));
  fprintf(f, ", \"policy\": ");
  cli_json_str(f, run->policy);
  fprintf(f, ", \"method\": ");
  cli_json_str(f, run->method);
  fprintf(f, ", \"episodes\": %d, \"seed\": %d, \"success_rate\": ", s->episodes, run->seed);
  cli_json_num(f, s->rate);
  fprintf(f, ", \"ci95\": [");
  cli_json_num(f, s->ci_lo);
  fprintf(f, ", ");
  cli_json_num(f, s->ci_hi);
  fprintf(f, "], \"mean_score\": ");
  cli_json_num(f, s->mean_score);
  fprintf(f, ", \"mean_len\": ");
  cli_json_num(f, s->mean_len);
  fprintf(f, ", \"unstable\": %d, \"contact_full\": %d, \"constraint_full\": %d, \"digest\": \"%08x\"", s->unstable,
          s->contact_full, s->constraint_full, (unsigned)s->digest);
  if (env_has_coverage(em)) {
    fprintf(f, ", \"max_coverage_mean\": ");
    cli_json_num(f, s->mean_coverage);
  }
  if (env_has_side(em)) fprintf(f, ", \"left\": %d, \"right\": %d", s->left, s->right);
  fprintf(f, ", \"latency_us_p50\": ");
  cli_json_num(f, run->latency_us_p50);
  fprintf(f, ", \"latency_us_p99\": ");
  cli_json_num(f, run->latency_us_p99);
  fprintf(f, ", \"nfe\": %d, \"clipped\": %ld", run->nfe, run->clipped);
}

void rollout_json_close(FILE *f, double secs) {
  fprintf(f, ", \"seconds\": ");
  cli_json_num(f, secs);
  fprintf(f, "}\n");
}
