/* lfp info: what a user needs to know about a demonstration file before
 * training on it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "ds_file.h"

static void s_shape(char *out, size_t n, int64_t steps, const ds_key *k) {
  size_t o = (size_t)snprintf(out, n, "(%lld", (long long)steps);
  for (int i = 0; i < k->rank && o < n; i++) o += (size_t)snprintf(out + o, n - o, ", %lld", (long long)k->shape[i]);
  if (o < n) snprintf(out + o, n - o, k->rank ? ")" : ",)");
}

int cmd_info(int argc, char **argv) {
  int json = 0;
  cli_opt opts[] = {CLI_OPT_JSON(json)};
  const char *path;
  int rc = cli_parse_arg("info", "lfp info FILE.hdf5 [--json]", argc, argv, opts, 1, "file", &path);
  if (rc) return rc > 0 ? 0 : 2;
  char err[512];
  ds_file *f = ds_open(path, err, sizeof(err));
  ds_dataset *acts = f ? ds_load(f, NULL, 0, err, sizeof(err)) : NULL;
  if (!acts) {
    cli_error("info", "%s", err);
    ds_close(f);
    return 1;
  }
  const ds_info *in = ds_file_info(f);
  const int A = in->action_dim;

  /* demo lengths and action ranges */
  int64_t lmin = INT64_MAX, lmax = 0;
  for (int i = 0; i < in->ndemos; i++) {
    lmin = in->demos[i].len < lmin ? in->demos[i].len : lmin;
    lmax = in->demos[i].len > lmax ? in->demos[i].len : lmax;
  }
  double *lo = calloc((size_t)A, sizeof(double)), *hi = calloc((size_t)A, sizeof(double));
  int64_t outside = 0;
  for (int j = 0; j < A; j++) lo[j] = INFINITY, hi[j] = -INFINITY;
  for (int64_t r = 0; r < acts->total; r++)
    for (int j = 0; j < A; j++) {
      double v = acts->actions[r * A + j];
      lo[j] = v < lo[j] ? v : lo[j];
      hi[j] = v > hi[j] ? v : hi[j];
      outside += v < -1.0 || v > 1.0;
    }
  const int env_ok = in->env_args && cli_json_valid(in->env_args);

  printf("%s\n", path);
  printf("  demos      %d (%s .. %s)\n", in->ndemos, in->demos[0].name, in->demos[in->ndemos - 1].name);
  printf("  samples    %lld", (long long)in->total);
  if (in->total_attr >= 0 && in->total_attr != in->total) printf("   (warning: /data attribute total says %lld)", (long long)in->total_attr);
  printf("\n  length     min %lld, mean %.1f, max %lld steps\n", (long long)lmin, (double)in->total / in->ndemos, (long long)lmax);
  printf("  obs keys   %d%s\n", in->nobs, in->has_next_obs ? " (next_obs present)" : "");
  for (int k = 0; k < in->nobs; k++) {
    char shape[96];
    s_shape(shape, sizeof(shape), in->demos[0].len, &in->obs[k]);
    printf("    %-24s %-14s per step %-4d %s\n", in->obs[k].name, in->obs[k].dtype, in->obs[k].dim, shape);
  }
  printf("  actions    dim %d, %s\n", A, in->action_dtype);
  for (int j = 0; j < A; j++) printf("    [%d] %+9.4f .. %+9.4f\n", j, lo[j], hi[j]);
  if (outside)
    printf("  note: %lld action values (%.2f%%) lie outside [-1, 1] (absolute actions?); lfp train bounds a policy's "
           "actions by the training range above (--action-low / --action-high override it)\n",
           (long long)outside, 100.0 * outside / ((double)acts->total * A));
  if (in->state_dim) printf("  states     dim %d\n", in->state_dim);
  printf("  env_args   %s%s\n", in->env_args ? in->env_args : "(none)", in->env_args && !env_ok ? "   (warning: not valid JSON)" : "");
  printf("  masks      %s", in->nmasks ? "" : "(none: training uses a seeded 90/10 split)");
  for (int m = 0; m < in->nmasks; m++) printf("%s%s (%d demos)", m ? ", " : "", in->masks[m].name, in->masks[m].count);
  printf("\n");

  if (json) {
    cli_json_stdout();
    printf("{\"file\": ");
    fc_json_str(stdout, path);
    printf(", \"demos\": %d, \"samples\": %lld, \"length\": {\"min\": %lld, \"mean\": ", in->ndemos,
           (long long)in->total, (long long)lmin);
    fc_json_num(stdout, (double)in->total / in->ndemos);
    printf(", \"max\": %lld}, \"obs\": {", (long long)lmax);
    for (int k = 0; k < in->nobs; k++) {
      printf("%s", k ? ", " : "");
      fc_json_str(stdout, in->obs[k].name);
      printf(": {\"shape\": [");
      for (int i = 0; i < in->obs[k].rank; i++) printf("%s%lld", i ? ", " : "", (long long)in->obs[k].shape[i]);
      printf("], \"dtype\": \"%s\"}", in->obs[k].dtype);
    }
    printf("}, \"next_obs\": %s, \"action_dim\": %d, \"action_dtype\": \"%s\", \"action_min\": ",
           in->has_next_obs ? "true" : "false", A, in->action_dtype);
    cli_json_nums(stdout, lo, A);
    printf(", \"action_max\": ");
    cli_json_nums(stdout, hi, A);
    printf(", \"actions_outside_unit\": %lld, \"state_dim\": %d, \"env_args\": ", (long long)outside, in->state_dim);
    if (env_ok) /* valid JSON holds line breaks only as whitespace: one line */
      for (const char *c = in->env_args; *c; c++) putchar(*c == '\n' || *c == '\r' ? ' ' : *c);
    else if (in->env_args) fc_json_str(stdout, in->env_args);
    else printf("null");
    printf(", \"masks\": {");
    for (int m = 0; m < in->nmasks; m++) {
      printf("%s", m ? ", " : "");
      fc_json_str(stdout, in->masks[m].name);
      printf(": %d", in->masks[m].count);
    }
    printf("}}\n");
  }
  free(lo);
  free(hi);
  ds_dataset_free(acts);
  ds_close(f);
  return 0;
}
