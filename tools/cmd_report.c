/* lfp report: one self-contained HTML page per policy: its card, the
 * training curves, the evaluation table, the latency histograms, action and
 * coverage traces, and the videos, all inside the file (scripts, styles and
 * MP4s inlined), so that it opens offline from disk and can be mailed.
 *
 * The charts are drawn in the browser by uPlot (MIT, vendored in
 * tools/report/ from npm) from a JSON blob this command writes; the card and
 * tables are plain HTML written here. Why uPlot: the page must open offline
 * with nothing installed, a training log has thousands of points and a user
 * wants to hover and zoom them, and a 50 KB script adds no dependency to lfp
 * (matplotlib would need Python at report time and gives still images;
 * gnuplot is one more program to install). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "env.h"
#include "fc_base.h"
#include "lfp_version.h"
#include "pol.h"

extern const char report_uPlot_iife_min_js[], report_uPlot_min_css[], report_report_js[], report_report_css[];

#define S_MAX_VIDEOS 64

/* ---------- the training log (train_loop.h's CSV) ---------- */

typedef struct {
  long n;
  double *col[8]; /* step, block, train_loss, valid_loss, lr, train_s, score, success; NAN: empty */
} s_log;

static const char *const s_log_cols[8] = {"step", "block", "train_loss", "valid_loss", "lr", "train_s", "score", "success"};

static void s_log_free(s_log *l) {
  for (int c = 0; c < 8; c++) free(l->col[c]);
  memset(l, 0, sizeof(*l));
}

static int s_log_read(const char *path, s_log *l, char *err, size_t errsz) {
  memset(l, 0, sizeof(*l));
  FILE *f = fopen(path, "r");
  if (!f) return fc_set_err(err, errsz, "cannot read the training log %s (%s)", path, strerror(errno)), -1;
  char line[1024];
  long cap = 0, lineno = 0;
  int rc = 0;
  if (!fgets(line, sizeof(line), f) || strncmp(line, "step,block,train_loss,valid_loss,lr,train_s,score,success", 57)) {
    fclose(f);
    return fc_set_err(err, errsz, "%s:1: not an lfp training log (its header is not "
                      "step,block,train_loss,valid_loss,lr,train_s,score,success)", path), -1;
  }
  lineno = 1;
  while (fgets(line, sizeof(line), f)) {
    lineno++;
    if (!strchr(line, '\n') && !feof(f)) {
      rc = (fc_set_err(err, errsz, "%s:%ld: the line is too long for a training log", path, lineno), -1);
      break;
    }
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    if (l->n == cap) {
      cap = cap ? 2 * cap : 1024;
      for (int c = 0; c < 8; c++) l->col[c] = fc_realloc(l->col[c], sizeof(double) * (size_t)cap);
    }
    char *p = line;
    int c = 0;
    for (; c < 8; c++) {
      char *end = p + strcspn(p, ",");
      const int last = *end == 0;
      *end = 0;
      if (!*p) {
        l->col[c][l->n] = NAN;
      } else {
        char *e;
        errno = 0;
        const double v = strtod(p, &e);
        if (*e || errno || !isfinite(v)) {
          rc = (fc_set_err(err, errsz, "%s:%ld: column %s holds '%.40s', not a number", path, lineno, s_log_cols[c], p), -1);
          break;
        }
        l->col[c][l->n] = v;
      }
      if (last) {
        c++;
        break;
      }
      p = end + 1;
    }
    if (rc) break;
    if (c != 8) {
      rc = (fc_set_err(err, errsz, "%s:%ld: %d columns where the header has 8", path, lineno, c), -1);
      break;
    }
    if (isnan(l->col[0][l->n]) || isnan(l->col[1][l->n])) {
      rc = (fc_set_err(err, errsz, "%s:%ld: a row without its step or block", path, lineno), -1);
      break;
    }
    l->n++;
  }
  fclose(f);
  if (rc) s_log_free(l);
  return rc;
}

/* ---------- evaluations (lfp eval / lfp sim --json) ---------- */

typedef struct {
  const char *path;
  cJSON *run;
} s_eval;

static int s_eval_read(const char *path, s_eval *e, char *err, size_t errsz) {
  size_t n;
  char *text = fc_read_file(path, (size_t)256 << 20, &n, err, errsz);
  if (!text) return -1;
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(text, n, &end, 0);
  if (!j) {
    const long at = end ? (long)(end - text) : 0;
    free(text);
    return fc_set_err(err, errsz, "%s is not JSON (at byte %ld): write it with lfp eval --json > FILE", path, at), -1;
  }
  free(text);
  static const char *const need[] = {"env", "episodes", "success_rate", "ci95", "seed"};
  const char *missing = NULL;
  if (!cJSON_IsObject(j)) missing = "an object";
  for (size_t i = 0; !missing && i < sizeof(need) / sizeof(need[0]); i++)
    if (!cJSON_GetObjectItemCaseSensitive(j, need[i])) missing = need[i];
  if (!missing && !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "success_rate"))) missing = "a numeric success_rate";
  if (missing) {
    cJSON_Delete(j);
    return fc_set_err(err, errsz, "%s is not what lfp eval --json writes: it has no %s", path, missing), -1;
  }
  e->path = path;
  e->run = j;
  return 0;
}

static double s_num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static const char *s_str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---------- writing ---------- */

static void s_html(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '&': fputs("&amp;", f); break;
      case '"': fputs("&quot;", f); break;
      default: fputc(*s, f);
    }
  }
}

/* text inside <script>: "</" never appears (it could close the element) */
static void s_script_text(FILE *f, const char *s) {
  for (; *s; s++) {
    if (s[0] == '<' && s[1] == '/') fputs("<\\", f);
    else fputc(*s, f);
  }
}

static void s_row(FILE *f, const char *k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void s_row(FILE *f, const char *k, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  fprintf(f, "<tr><th>%s</th><td>", k);
  s_html(f, buf);
  fprintf(f, "</td></tr>\n");
}

static void s_card(FILE *f, const char *path, const pol_policy *p, const char *task) {
  const pol_meta *m = &p->meta;
  char desc[256], keys[512] = "";
  pol_describe(p, desc, sizeof(desc));
  for (int k = 0; k < m->nkeys; k++) {
    char one[96];
    snprintf(one, sizeof(one), "%s%s (%d)", k ? ", " : "", m->keys[k], m->key_dims[k]);
    strncat(keys, one, sizeof(keys) - strlen(keys) - 1);
  }
  struct stat st;
  const long long bytes = stat(path, &st) == 0 ? (long long)st.st_size : -1;
  fprintf(f, "<table class=\"card\">\n");
  s_row(f, "policy", "%s (%lld bytes, parameters CRC-32 %08x)", path, bytes, pol_params_crc(p));
  s_row(f, "task", "%s at %g Hz", task, m->control_hz);
  s_row(f, "method", "%s, %d block%s", pol_method_name((pol_method)m->method), p->flow->cfg.nblocks,
        p->flow->cfg.nblocks == 1 ? "" : "s");
  s_row(f, "network", "%s, %zu parameters", desc, fc_lfm_nparams(p->flow));
  s_row(f, "horizons", "To %d observation frames, Tp %d predicted actions, Ta %d executed", m->To, m->Tp, m->Ta);
  s_row(f, "sampling", "%s x %d steps per block, NFE %d per chunk", fc_sampler_name(p->flow->cfg.sampler),
        p->flow->cfg.steps, pol_nfe(p, p->flow->cfg.sampler, 0));
  s_row(f, "observations", "%s", keys);
  s_row(f, "actions", "%d values", m->action_dim);
  if (p->distill.present)
    s_row(f, "distilled from", "%s (NFE %d), %lld steps of batch %d", p->distill.teacher, (int)p->distill.teacher_nfe,
          (long long)p->distill.steps, (int)p->distill.batch);
  const pol_origin *o = &p->origin;
  if (o->present) {
    s_row(f, "training data", "%s, %lld demos (%lld train / %lld validation windows)", o->data, (long long)o->demos,
          (long long)o->train_windows, (long long)o->valid_windows);
    s_row(f, "data SHA-256", "%s", o->data_sha256);
    s_row(f, "training run", "seed %llu, %lld steps of batch %d, peak lr %g, %.1f s", (unsigned long long)o->seed,
          (long long)o->steps, (int)o->batch, (double)o->lr, o->train_s);
    s_row(f, "command", "%s", o->command);
  } else {
    s_row(f, "training data", "not recorded (a policy file from before lfp recorded it, or built in code)");
  }
  s_row(f, "trained by", "lfp %s", m->version);
  fprintf(f, "</table>\n");
}

static void s_cell(FILE *f, const char *fmt, double v) {
  if (isfinite(v)) {
    fprintf(f, "<td class=\"num\">");
    fprintf(f, fmt, v);
    fprintf(f, "</td>");
  } else {
    fprintf(f, "<td class=\"num\">&ndash;</td>");
  }
}

static void s_eval_table(FILE *f, const s_eval *ev, int n) {
  if (!n) {
    fprintf(f, "<p class=\"empty\">No evaluation given: pass --eval EVAL.json (from lfp eval --json).</p>\n");
    return;
  }
  fprintf(f, "<table class=\"evals\"><tr><th>run</th><th>task</th><th class=\"num\">episodes</th><th>seeds</th>"
          "<th>sampler</th><th class=\"num\">success</th><th>95%% interval</th><th class=\"num\">score</th>"
          "<th class=\"num\">coverage</th><th class=\"num\">latency p50 / p99 (us)</th><th class=\"num\">unstable</th>"
          "<th>digest</th></tr>\n");
  for (int i = 0; i < n; i++) {
    const cJSON *r = ev[i].run;
    const double eps = s_num(r, "episodes"), seed = s_num(r, "seed");
    fprintf(f, "<tr><td><code>");
    s_html(f, ev[i].path);
    fprintf(f, "</code>%s</td><td>", s_str(r, "mode") ? " (lfp sim)" : "");
    s_html(f, s_str(r, "env"));
    fprintf(f, "</td>");
    s_cell(f, "%.0f", eps);
    if (isfinite(eps) && isfinite(seed)) fprintf(f, "<td>%.0f..%.0f</td>", seed, seed + eps - 1);
    else fprintf(f, "<td>&ndash;</td>");
    const char *smp = s_str(r, "sampler");
    const double steps = s_num(r, "ode_steps"), nfe = s_num(r, "nfe");
    fprintf(f, "<td>");
    if (smp) {
      s_html(f, smp);
      if (isfinite(steps)) fprintf(f, " x %.0f, ", steps);
    }
    if (isfinite(nfe)) fprintf(f, "NFE %.0f", nfe);
    fprintf(f, "</td>");
    s_cell(f, "%.0f%%", 100 * s_num(r, "success_rate"));
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(r, "ci95");
    if (cJSON_IsArray(ci) && cJSON_GetArraySize(ci) == 2 && cJSON_IsNumber(cJSON_GetArrayItem(ci, 0)) &&
        cJSON_IsNumber(cJSON_GetArrayItem(ci, 1)))
      fprintf(f, "<td>[%.0f%%, %.0f%%]</td>", 100 * cJSON_GetArrayItem(ci, 0)->valuedouble,
              100 * cJSON_GetArrayItem(ci, 1)->valuedouble);
    else
      fprintf(f, "<td>&ndash;</td>");
    s_cell(f, "%.3f", s_num(r, "mean_score"));
    s_cell(f, "%.3f", s_num(r, "max_coverage_mean"));
    const double p50 = s_num(r, "latency_us_p50"), p99 = s_num(r, "latency_us_p99");
    if (isfinite(p50) && isfinite(p99)) fprintf(f, "<td class=\"num\">%.0f / %.0f</td>", p50, p99);
    else fprintf(f, "<td class=\"num\">&ndash;</td>");
    s_cell(f, "%.0f", s_num(r, "unstable"));
    fprintf(f, "<td><code>");
    s_html(f, s_str(r, "digest") ? s_str(r, "digest") : "");
    fprintf(f, "</code></td></tr>\n");
  }
  fprintf(f, "</table>\n<p class=\"sub\">Success intervals are Wilson 95%% intervals over the episodes; score is "
          "Diffusion Policy's (mean over episodes of min(1, max coverage / goal) on pusht, success elsewhere); "
          "seeds 100000 and up are lfp's evaluation seeds, 200000 and up its selection seeds.</p>\n");
}

typedef struct {
  char name[256];
  int outcome; /* 1 success, 0 failure, -1 unknown */
} s_video;

static int s_video_cmp(const void *a, const void *b) {
  return strcmp(((const s_video *)a)->name, ((const s_video *)b)->name);
}

/* the MP4 files of dir, sorted by name; -1 with a sentence */
static int s_video_list(const char *dir, s_video *v, int max, int *n, char *err, size_t errsz) {
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return fc_set_err(err, errsz, "--videos: cannot read the folder %s (%s)", dir, strerror(errno)), -1;
  struct dirent *e;
  while ((e = readdir(d)) && *n < max) {
    const size_t k = strlen(e->d_name);
    if (k < 5 || k >= sizeof(v->name) || strcmp(e->d_name + k - 4, ".mp4")) continue;
    snprintf(v[*n].name, sizeof(v->name), "%s", e->d_name);
    v[*n].outcome = k > 12 && !strcmp(e->d_name + k - 12, "_success.mp4") ? 1
                    : k > 9 && !strcmp(e->d_name + k - 9, "_fail.mp4") ? 0 : -1;
    (*n)++;
  }
  closedir(d);
  qsort(v, (size_t)*n, sizeof(*v), s_video_cmp);
  return 0;
}

/* <video> with the file inlined as a data: URI (base64 by OpenSSL) */
static int s_video_embed(FILE *f, const char *dir, const s_video *v, char *err, size_t errsz) {
  char path[4400];
  snprintf(path, sizeof(path), "%s/%s", dir, v->name);
  size_t n;
  unsigned char *bytes = (unsigned char *)fc_read_file(path, (size_t)64 << 20, &n, err, errsz);
  if (!bytes) return -1;
  if (n < 8 || memcmp(bytes + 4, "ftyp", 4)) {
    free(bytes);
    return fc_set_err(err, errsz, "%s is not an MP4 file (no ftyp box at its start)", path), -1;
  }
  fprintf(f, "<figure><video controls loop muted playsinline preload=\"auto\" width=\"320\" src=\"data:video/mp4;base64,");
  unsigned char out[4 * 3072 / 3 + 4];
  for (size_t o = 0; o < n; o += 3072) {
    const int k = (int)(n - o < 3072 ? n - o : 3072);
    EVP_EncodeBlock(out, bytes + o, k);
    fputs((const char *)out, f);
  }
  free(bytes);
  fprintf(f, "\"></video><figcaption>");
  s_html(f, v->name);
  fprintf(f, " <span class=\"%s\">%s</span></figcaption></figure>\n", v->outcome == 1 ? "ok" : "bad",
          v->outcome == 1 ? "success" : v->outcome == 0 ? "failure" : "");
  return 0;
}

static void s_data(FILE *f, const s_log *l, const s_eval *ev, int n) {
  fprintf(f, "<script type=\"application/json\" id=\"lfp-data\">{\"log\": ");
  if (!l->n) {
    fprintf(f, "null");
  } else {
    fprintf(f, "{");
    for (int c = 0; c < 8; c++) {
      fprintf(f, "%s\"%s\": [", c ? ", " : "", s_log_cols[c]);
      for (long i = 0; i < l->n; i++) {
        if (i) fputc(',', f);
        fc_json_num(f, l->col[c][i]);
      }
      fprintf(f, "]");
    }
    fprintf(f, "}");
  }
  fprintf(f, ", \"evals\": [");
  for (int i = 0; i < n; i++) {
    char *txt = cJSON_PrintUnformatted(ev[i].run);
    fprintf(f, "%s{\"label\": ", i ? ", " : "");
    char label[600];
    const char *base = strrchr(ev[i].path, '/');
    snprintf(label, sizeof(label), "%s", base ? base + 1 : ev[i].path);
    /* fc_json_str escapes quotes and controls; "</" is handled below */
    char *lb = NULL;
    size_t lbn = 0;
    FILE *m = open_memstream(&lb, &lbn);
    fc_json_str(m, label);
    fclose(m);
    s_script_text(f, lb);
    free(lb);
    fprintf(f, ", \"run\": ");
    s_script_text(f, txt ? txt : "{}");
    fprintf(f, "}");
    free(txt);
  }
  fprintf(f, "]}</script>\n");
}

int cmd_report(int argc, char **argv) {
  const char *policy = NULL, *out = NULL, *logp = NULL, *videos = NULL, *title = NULL;
  cli_strs evals = {{0}, 0, 0};
  int max_videos = 16;
  cli_opt opts[] = {
      {"--policy", CLI_STR, &policy, "policy file (from lfp train or lfp distill)", NULL, 0, 0},
      {"--eval", CLI_STRS, &evals, "an evaluation's JSON (lfp eval --json > FILE, or lfp sim --json); repeatable", NULL,
       0, 0},
      {"--log", CLI_STR, &logp, "training log CSV (default: POLICY.csv when it exists, as lfp train writes it)", NULL, 0,
       0},
      {"--videos", CLI_STR, &videos, "folder of episode videos (lfp eval --video DIR) to embed", NULL, 0, 0},
      {"--max-videos", CLI_INT, &max_videos, "videos embedded at most (failures and successes alike, by name)", NULL, 0,
       S_MAX_VIDEOS},
      {"--title", CLI_STR, &title, "page title (default: the policy's file name)", NULL, 0, 0},
      {"--out", CLI_STR, &out, "the HTML file to write (self-contained: opens offline)", NULL, 0, 0},
  };
  int rc = cli_parse("report", "lfp report --policy POLICY.lfp [--eval EVAL.json ...] [--videos DIR] --out REPORT.html",
                     argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  if (!policy || !out) {
    cli_error("report", "%s is required", !policy ? "--policy POLICY.lfp" : "--out REPORT.html");
    return 2;
  }
  char err[1024];
  pol_policy *p = pol_load(policy, err, sizeof(err));
  if (!p) {
    cli_error("report", "%s", err);
    return 1;
  }
  int status = 1;
  s_log lg = {0};
  s_eval ev[CLI_MAX_STRS] = {{0}};
  int nev = 0, nvid = 0;
  s_video *vids = fc_calloc(S_MAX_VIDEOS, sizeof(s_video));
  FILE *f = NULL;
  char part[4200] = "", logbuf[4200];
  char task[64] = "unknown task";
  env_model *em = env_model_from_args(p->meta.env_args, err, sizeof(err));
  if (em) {
    snprintf(task, sizeof(task), "%s", env_name(em));
    env_model_free(em);
  }
  if (!logp) {
    snprintf(logbuf, sizeof(logbuf), "%s.csv", policy);
    if (access(logbuf, R_OK) == 0) logp = logbuf;
  }
  if (logp && s_log_read(logp, &lg, err, sizeof(err))) goto done;
  for (int i = 0; i < evals.n; i++, nev++)
    if (s_eval_read(evals.v[i], &ev[i], err, sizeof(err))) goto done;
  if (videos && s_video_list(videos, vids, S_MAX_VIDEOS, &nvid, err, sizeof(err))) goto done;
  snprintf(part, sizeof(part), "%s.part", out);
  if (!(f = fopen(part, "w"))) {
    fc_set_err(err, sizeof(err), "cannot write %s (%s)", part, strerror(errno));
    goto done;
  }
  const char *base = strrchr(policy, '/');
  base = base ? base + 1 : policy;
  fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"generator\" content=\"lfp %s\">\n<title>", lfp_version());
  s_html(f, title ? title : base);
  fprintf(f, " - lfp report</title>\n<style>\n%s\n%s</style>\n</head>\n<body>\n<div id=\"main\">\n<h1>",
          report_uPlot_min_css, report_report_css);
  s_html(f, title ? title : base);
  time_t now = time(NULL);
  char when[64];
  strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&now));
  fprintf(f, "</h1>\n<p class=\"sub\">%s policy on %s, written by lfp report %s on %s</p>\n",
          pol_method_name((pol_method)p->meta.method), task, lfp_version(), when);
  fprintf(f, "<h2>Policy</h2>\n");
  s_card(f, policy, p, task);
  fprintf(f, "<h2>Training</h2>\n");
  if (logp) {
    fprintf(f, "<p class=\"sub\">From <code>");
    s_html(f, logp);
    fprintf(f, "</code> (%ld rows; validation loss at checkpoints and block ends).</p>\n", lg.n);
  }
  fprintf(f, "<div id=\"chart-loss\"></div>\n<div id=\"chart-score\"></div>\n");
  fprintf(f, "<h2>Evaluation</h2>\n");
  s_eval_table(f, ev, nev);
  fprintf(f, "<h3>Chunk sampling latency</h3>\n<div id=\"chart-latency\"></div>\n");
  fprintf(f, "<h3>Action traces</h3>\n<div id=\"chart-traces\"></div>\n");
  fprintf(f, "<div><h3>Goal coverage over an episode</h3>\n<div id=\"chart-coverage\"></div></div>\n");
  fprintf(f, "<h2>Videos</h2>\n");
  if (!videos) {
    fprintf(f, "<p class=\"empty\">No videos given: lfp eval --video DIR renders them, --videos DIR embeds them.</p>\n");
  } else if (!nvid) {
    fprintf(f, "<p class=\"empty\">");
    s_html(f, videos);
    fprintf(f, " holds no .mp4 file.</p>\n");
  }
  int shown = 0;
  for (int kind = 0; kind < 3 && nvid; kind++) {
    const int want = kind == 0 ? 0 : kind == 1 ? 1 : -1; /* failures first: what a user looks for */
    int any = 0;
    for (int i = 0; i < nvid && shown < max_videos; i++) {
      if (vids[i].outcome != want) continue;
      if (!any) fprintf(f, "<h3>%s</h3>\n<div class=\"videos\">\n", want == 0 ? "Failures" : want == 1 ? "Successes" : "Others");
      any = 1;
      if (s_video_embed(f, videos, &vids[i], err, sizeof(err))) goto done;
      shown++;
    }
    if (any) fprintf(f, "</div>\n");
  }
  if (shown < nvid) fprintf(f, "<p class=\"sub\">%d more video%s in the folder (--max-videos %d).</p>\n", nvid - shown,
                            nvid - shown == 1 ? "" : "s", max_videos);
  fprintf(f, "<footer>lfp %s &middot; charts by uPlot (MIT) &middot; everything on this page is inside this file</footer>\n"
          "</div>\n", lfp_version());
  s_data(f, &lg, ev, nev);
  fprintf(f, "<script>\n");
  s_script_text(f, report_uPlot_iife_min_js);
  fprintf(f, "\n</script>\n<script>\n");
  s_script_text(f, report_report_js);
  fprintf(f, "\n</script>\n</body></html>\n");
  if (fflush(f) || ferror(f)) {
    fc_set_err(err, sizeof(err), "cannot write %s (%s)", part, strerror(errno));
    goto done;
  }
  const int cr = fclose(f);
  f = NULL;
  if (cr || rename(part, out)) {
    fc_set_err(err, sizeof(err), "cannot finish %s (%s)", out, strerror(errno));
    goto done;
  }
  part[0] = 0;
  struct stat st;
  printf("lfp report: wrote %s (%.1f MB): the card of %s, %ld log rows, %d evaluation%s, %d video%s\n", out,
         stat(out, &st) == 0 ? (double)st.st_size / 1048576.0 : 0.0, policy, lg.n, nev, nev == 1 ? "" : "s", shown,
         shown == 1 ? "" : "s");
  status = 0;
done:
  if (f) fclose(f);
  if (part[0]) remove(part);
  if (status) cli_error("report", "%s", err);
  for (int i = 0; i < nev; i++) cJSON_Delete(ev[i].run);
  free(vids);
  s_log_free(&lg);
  pol_free(p);
  return status;
}
