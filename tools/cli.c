/* cli: option parsing, JSON helpers, progress bar. */
#include "cli.h"

#include <openssl/evp.h>

#include <errno.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cli_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "lfp %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static void s_print_default(const cli_opt *o) {
  switch (o->type) {
    case CLI_INT: printf(" (default %d)", *(int *)o->dst); break;
    case CLI_I64: printf(" (default %lld)", (long long)*(int64_t *)o->dst); break;
    case CLI_DOUBLE: printf(" (default %g)", *(double *)o->dst); break;
    case CLI_STR:
    case CLI_CHOICE:
      if (*(const char **)o->dst) printf(" (default %s)", *(const char **)o->dst);
      break;
    case CLI_FLAG: break;
    case CLI_STRS: {
      const cli_strs *l = o->dst;
      printf(" (");
      for (int i = 0; i < l->n; i++) printf("%s%s", i ? ", " : "default ", l->v[i]);
      printf("%srepeatable)", l->n ? "; " : "");
      break;
    }
  }
}

static void s_help(const char *usage, const cli_opt *opts, int n) {
  printf("usage: %s\n\noptions:\n", usage);
  for (int i = 0; i < n; i++) {
    const cli_opt *o = &opts[i];
    char head[64];
    if (o->type == CLI_CHOICE) {
      char list[256] = "";
      for (int k = 0; o->choices[k]; k++) {
        if (k) strncat(list, "|", sizeof(list) - strlen(list) - 1);
        strncat(list, o->choices[k], sizeof(list) - strlen(list) - 1);
      }
      printf("  %s {%s}\n      %s", o->name, list, o->help);
    } else {
      const char *arg = o->type == CLI_FLAG ? "" : o->type == CLI_STR ? " S" : o->type == CLI_DOUBLE ? " X" : " N";
      snprintf(head, sizeof(head), "%s%s", o->name, arg);
      printf("  %-22s %s", head, o->help);
    }
    s_print_default(o);
    printf("\n");
  }
  printf("  %-22s %s\n", "--help", "show this help");
}

static int s_number(const char *cmd, const cli_opt *o, const char *val) {
  char *end = NULL;
  errno = 0;
  double d;
  if (o->type == CLI_DOUBLE) {
    d = strtod(val, &end);
    if (end == val || *end || errno || !isfinite(d)) {
      cli_error(cmd, "%s expects a number, got '%s'", o->name, val);
      return -1;
    }
  } else {
    long long v = strtoll(val, &end, 10);
    if (end == val || *end || errno) {
      cli_error(cmd, "%s expects an integer, got '%s'", o->name, val);
      return -1;
    }
    d = (double)v;
    if (o->type == CLI_INT && (v < -2147483647LL || v > 2147483647LL)) {
      cli_error(cmd, "%s value %s is out of range", o->name, val);
      return -1;
    }
  }
  if (o->min < o->max && (d < o->min || d > o->max)) {
    cli_error(cmd, "%s must be between %.15g and %.15g, got %s", o->name, o->min, o->max, val);
    return -1;
  }
  if (o->type == CLI_DOUBLE) *(double *)o->dst = d;
  else if (o->type == CLI_I64) *(int64_t *)o->dst = (int64_t)strtoll(val, NULL, 10);
  else *(int *)o->dst = (int)d;
  return 0;
}

static int s_parse(const char *cmd, const char *usage, int argc, char **argv, const cli_opt *opts, int n,
                   const char **arg) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      s_help(usage, opts, n);
      return 1;
    }
    /* accept both "--name value" and "--name=value" */
    const char *eq = strchr(a, '=');
    size_t alen = eq ? (size_t)(eq - a) : strlen(a);
    const cli_opt *o = NULL;
    for (int k = 0; k < n; k++)
      if (strlen(opts[k].name) == alen && !strncmp(opts[k].name, a, alen)) o = &opts[k];
    if (!o && arg && !*arg && a[0] != '-') {
      *arg = a;
      continue;
    }
    if (!o) {
      if (a[0] == '-') cli_error(cmd, "unknown option '%.*s' (see 'lfp %s --help')", (int)alen, a, cmd);
      else cli_error(cmd, "unexpected argument '%s' (see 'lfp %s --help')", a, cmd);
      return -1;
    }
    if (o->type == CLI_FLAG) {
      if (eq) {
        cli_error(cmd, "%s takes no value", o->name);
        return -1;
      }
      *(int *)o->dst = 1;
      continue;
    }
    const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!val) {
      cli_error(cmd, "%s needs a value", o->name);
      return -1;
    }
    if (o->type == CLI_STRS) {
      cli_strs *l = o->dst;
      if (!l->given) l->n = 0, l->given = 1;
      if (l->n == CLI_MAX_STRS) {
        cli_error(cmd, "%s is given more than %d times", o->name, CLI_MAX_STRS);
        return -1;
      }
      l->v[l->n++] = val;
    } else if (o->type == CLI_STR) {
      *(const char **)o->dst = val;
    } else if (o->type == CLI_CHOICE) {
      int ok = 0;
      for (int k = 0; o->choices[k]; k++)
        if (!strcmp(o->choices[k], val)) ok = 1;
      if (!ok) {
        char list[256] = "";
        for (int k = 0; o->choices[k]; k++) {
          if (k) strncat(list, ", ", sizeof(list) - strlen(list) - 1);
          strncat(list, o->choices[k], sizeof(list) - strlen(list) - 1);
        }
        cli_error(cmd, "%s must be one of %s, got '%s'", o->name, list, val);
        return -1;
      }
      *(const char **)o->dst = val;
    } else if (s_number(cmd, o, val)) {
      return -1;
    }
  }
  return 0;
}

/* --json: fd 1 points at stderr until cli_json_stdout gives it back */
static int s_json_fd = -1;

/* a parsed --json flag turns json mode on */
static int s_json_check(int rc, const cli_opt *opts, int n) {
  for (int i = 0; rc == 0 && i < n; i++)
    if (opts[i].type == CLI_FLAG && !strcmp(opts[i].name, "--json") && *(int *)opts[i].dst) cli_json_mode();
  return rc;
}

void cli_json_mode(void) {
  if (s_json_fd >= 0) return;
  fflush(stdout);
  s_json_fd = dup(STDOUT_FILENO);
  if (s_json_fd >= 0 && dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    close(s_json_fd);
    s_json_fd = -1;
  }
}

void cli_json_stdout(void) {
  if (s_json_fd < 0) return;
  fflush(stdout);
  dup2(s_json_fd, STDOUT_FILENO);
  close(s_json_fd);
  s_json_fd = -1;
}

int cli_parse(const char *cmd, const char *usage, int argc, char **argv, const cli_opt *opts, int n) {
  return s_json_check(s_parse(cmd, usage, argc, argv, opts, n, NULL), opts, n);
}

int cli_parse_arg(const char *cmd, const char *usage, int argc, char **argv, const cli_opt *opts, int n,
                  const char *what, const char **arg) {
  *arg = NULL;
  int rc = s_json_check(s_parse(cmd, usage, argc, argv, opts, n, arg), opts, n);
  if (rc == 0 && !*arg) {
    cli_error(cmd, "which %s? (usage: %s)", what, usage);
    return -1;
  }
  return rc;
}

double cli_now(void) { return fc_now(); }

/* recursive-descent JSON validator: returns the end of one value, or NULL */
static const char *s_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

static const char *s_jvalue(const char *p, int depth);

static const char *s_jstring(const char *p) {
  if (*p++ != '"') return NULL;
  while (*p != '"') {
    if ((unsigned char)*p < 0x20) return NULL;
    if (*p == '\\') {
      p++;
      if (*p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') || (p[i] >= 'A' && p[i] <= 'F'))) return NULL;
        p += 4;
      } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
        return NULL;
      }
    }
    p++;
  }
  return p + 1;
}

static const char *s_jnumber(const char *p) {
  if (*p == '-') p++;
  if (*p == '0') p++;
  else if (*p >= '1' && *p <= '9') while (*p >= '0' && *p <= '9') p++;
  else return NULL;
  if (*p == '.') {
    p++;
    if (!(*p >= '0' && *p <= '9')) return NULL;
    while (*p >= '0' && *p <= '9') p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (!(*p >= '0' && *p <= '9')) return NULL;
    while (*p >= '0' && *p <= '9') p++;
  }
  return p;
}

static const char *s_jvalue(const char *p, int depth) {
  if (depth > 64) return NULL;
  p = s_ws(p);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    int obj = *p == '{';
    p = s_ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
      if (obj) {
        p = s_jstring(s_ws(p));
        if (!p) return NULL;
        p = s_ws(p);
        if (*p++ != ':') return NULL;
      }
      p = s_jvalue(p, depth + 1);
      if (!p) return NULL;
      p = s_ws(p);
      if (*p == ',') p++;
      else if (*p == close) return p + 1;
      else return NULL;
    }
  }
  if (*p == '"') return s_jstring(p);
  if (!strncmp(p, "true", 4)) return p + 4;
  if (!strncmp(p, "false", 5)) return p + 5;
  if (!strncmp(p, "null", 4)) return p + 4;
  return s_jnumber(p);
}

int cli_json_valid(const char *s) {
  const char *e = s ? s_jvalue(s, 0) : NULL;
  return e && !*s_ws(e);
}

void cli_json_nums(FILE *f, const double *v, int n) {
  fputc('[', f);
  for (int i = 0; i < n; i++) {
    if (i) fputs(", ", f);
    fc_json_num(f, v[i]);
  }
  fputc(']', f);
}

void cli_print_bounds(FILE *f, const float *lo, const float *hi, int n, int json) {
  if (!json) {
    fprintf(f, "  action bounds:");
    for (int j = 0; j < n; j++) fprintf(f, " [%g, %g]", (double)lo[j], (double)hi[j]);
    fprintf(f, "\n");
    return;
  }
  for (int s = 0; s < 2; s++) {
    const float *b = s ? hi : lo;
    fprintf(f, s ? ", \"action_high\": [" : ", \"action_low\": [");
    for (int j = 0; j < n; j++) {
      if (j) fputs(", ", f);
      fc_json_num(f, b[j]);
    }
    fputc(']', f);
  }
}

void cli_progress_begin(cli_progress *p, const char *label, int64_t total) {
  p->enabled = isatty(STDERR_FILENO);
  p->t0 = p->last = cli_now();
  p->total = total;
  snprintf(p->label, sizeof(p->label), "%s", label);
}

void cli_progress_update(cli_progress *p, int64_t done, const char *extra) {
  if (!p->enabled) return;
  double now = cli_now();
  if (now - p->last < 0.1 && done < p->total) return;
  p->last = now;
  double frac = p->total > 0 ? (double)done / (double)p->total : 1.0;
  int w = 24, fill = (int)(frac * w);
  char bar[32];
  for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
  bar[w] = 0;
  double el = now - p->t0, eta = frac > 0 ? el * (1.0 - frac) / frac : 0.0;
  fprintf(stderr, "\r%s [%s] %lld/%lld %s  %.0fs ETA %.0fs \033[K", p->label, bar, (long long)done,
          (long long)p->total, extra ? extra : "", el, eta);
  fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
  if (p->enabled) fprintf(stderr, "\r\033[K");
}

int cli_sha256_file(const char *path, char hex[65], char *err, size_t errsz) {
  FILE *f = fopen(path, "rb");
  if (!f) return fc_set_err(err, errsz, "cannot read %s to hash it (%s)", path, strerror(errno)), -1;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
  unsigned char buf[1 << 16], md[EVP_MAX_MD_SIZE];
  size_t k;
  while (ok && (k = fread(buf, 1, sizeof(buf), f)) > 0) ok = EVP_DigestUpdate(c, buf, k);
  unsigned int mdlen = 0;
  ok = ok && !ferror(f) && EVP_DigestFinal_ex(c, md, &mdlen) && mdlen == 32;
  EVP_MD_CTX_free(c);
  fclose(f);
  if (!ok) return fc_set_err(err, errsz, "cannot hash %s (a read or digest error)", path), -1;
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  return 0;
}

void cli_command_line(int argc, char **argv, char *buf, size_t n) {
  size_t o = (size_t)snprintf(buf, n, "lfp");
  for (int i = 0; i < argc && o + 1 < n; i++) {
    const char *a = argv[i];
    int plain = *a != 0;
    for (const char *c = a; *c; c++)
      if (!(isalnum((unsigned char)*c) || strchr("-_./,:=+@%", *c))) plain = 0;
    if (plain) {
      o += (size_t)snprintf(buf + o, n - o, " %s", a);
      continue;
    }
    o += (size_t)snprintf(buf + o, n - o, " '");
    for (const char *c = a; *c && o + 1 < n; c++)
      o += (size_t)(*c == '\'' ? snprintf(buf + o, n - o, "'\\''") : snprintf(buf + o, n - o, "%c", *c));
    if (o + 1 < n) o += (size_t)snprintf(buf + o, n - o, "'");
  }
  if (o >= n) buf[n - 1] = 0;
}

int cli_endpoint_local(const char *ep) {
  if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9)) return 1;
  const char *h = !strncmp(ep, "tcp://", 6) ? ep + 6 : !strncmp(ep, "ws://", 5) ? ep + 5 : NULL;
  if (!h) return 0;
  /* a ZeroMQ tcp endpoint may name a source first: "tcp://SRC;HOST:PORT" */
  const char *semi = strchr(h, ';');
  if (semi) h = semi + 1;
  char host[256];
  size_t n;
  if (*h == '[') {
    const char *e = strchr(h, ']');
    if (!e) return 0;
    n = (size_t)(e - h - 1);
    if (n >= sizeof(host)) return 0;
    memcpy(host, h + 1, n);
  } else {
    const char *e = strrchr(h, ':');
    n = e ? (size_t)(e - h) : strlen(h);
    if (n >= sizeof(host)) return 0;
    memcpy(host, h, n);
  }
  host[n] = 0;
  if (!strcmp(host, "localhost") || !strcmp(host, "::1")) return 1;
  unsigned a, b, c, d;
  char tail;
  return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 && c < 256 && d < 256;
}

int cli_endpoint_exposed(const char *ep) {
  const char *h = !strncmp(ep, "tcp://", 6) ? ep + 6 : !strncmp(ep, "ws://", 5) ? ep + 5 : NULL;
  if (!h) return 0;
  const char *colon = strrchr(h, ':');
  if (!colon || colon == h || !colon[1]) return 0;
  const char *port = colon + 1;
  if (strcmp(port, "*") && strspn(port, "0123456789") != strlen(port)) return 0;
  return !cli_endpoint_local(ep);
}
