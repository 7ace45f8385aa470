/* cli: what every lfp subcommand shares: option parsing with one-sentence
 * errors, --help text, JSON output helpers, a terminal progress bar, timing.
 *
 * Example:
 *
 *   int cmd_example(int argc, char **argv) {
 *     int steps = 1000, json = 0;
 *     const char *dist = "8gaussians";
 *     static const char *const dists[] = {"moons", "8gaussians", NULL};
 *     cli_opt opts[] = {
 *       {"--steps", CLI_INT, &steps, "training steps", NULL, 1, 1e9},
 *       {"--dist", CLI_CHOICE, &dist, "distribution", dists, 0, 0},
 *       {"--json", CLI_FLAG, &json, "print one JSON object last", NULL, 0, 0},
 *     };
 *     int rc = cli_parse("example", "lfp example [options]", argc, argv, opts, 3);
 *     if (rc) return rc > 0 ? 0 : 2;     // 1: --help printed; -1: error printed
 *     printf("%d steps on %s%s\n", steps, dist, json ? " (json)" : "");
 *     return 0;
 *   }
 */
#ifndef LFP_CLI_H
#define LFP_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "fc_base.h"

typedef enum { CLI_INT, CLI_I64, CLI_DOUBLE, CLI_STR, CLI_FLAG, CLI_CHOICE, CLI_STRS } cli_type;

/* a repeatable string option (CLI_STRS): every occurrence appended; the
 * values before parsing are the default, replaced by the first occurrence */
#define CLI_MAX_STRS 8
typedef struct {
  const char *v[CLI_MAX_STRS];
  int n;
  int given; /* set by cli_parse */
} cli_strs;

typedef struct {
  const char *name;            /* "--steps" */
  cli_type type;
  void *dst;                   /* int*, int64_t*, double*, const char**, int* (flag), const char** (choice), cli_strs* */
  const char *help;
  const char *const *choices;  /* NULL-terminated, for CLI_CHOICE */
  double min, max;             /* numeric bounds (inclusive) when min < max */
} cli_opt;

/* Parse argv[1..] (argv[0] is the subcommand). 0 on success, 1 when --help was
 * printed, -1 after printing one error sentence to stderr. Defaults are the
 * values in dst before the call and are shown by --help. */
int cli_parse(const char *cmd, const char *usage, int argc, char **argv, const cli_opt *opts, int n);
/* The same for commands that take one positional argument (a file): *arg
 * receives it; a missing one is an error naming `what`. */
int cli_parse_arg(const char *cmd, const char *usage, int argc, char **argv, const cli_opt *opts, int n,
                  const char *what, const char **arg);
/* --json prints the JSON object, one line, and nothing else on stdout: when
 * the options hold a set "--json" flag, cli_parse calls cli_json_mode, which
 * points stdout (fd 1) at stderr, so the command's human text goes there;
 * the command calls cli_json_stdout just before it prints the object, which
 * gives stdout back. Both are no-ops when not in json mode. */
void cli_json_mode(void);
void cli_json_stdout(void);
/* The --json option of a command, into int var */
#define CLI_OPT_JSON(var) \
  {"--json", CLI_FLAG, &(var), "print only one JSON object, on one line, on stdout (the text goes to stderr)", NULL, 0, 0}
/* Print "lfp <cmd>: <message>" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* SHA-256 of a file's bytes as 64 hex digits (what sha256sum prints) into
 * hex[65]; 0, or -1 with a sentence. */
int cli_sha256_file(const char *path, char hex[65], char *err, size_t errsz);
/* "lfp CMD ARG ..." from a subcommand's argv (argv[0] is CMD), each argument
 * single-quoted where a shell would need it, cut at n - 1 bytes. */
void cli_command_line(int argc, char **argv, char *buf, size_t n);

/* 1 when a ZeroMQ or websocket endpoint stays on this machine: ipc://,
 * inproc://, or tcp:// / ws:// on a loopback host (127.x.y.z, localhost,
 * ::1); 0 for any other host, an interface name or a wildcard ("*",
 * 0.0.0.0). lfp serve and lfp broker bind such an endpoint unencrypted only
 * with --insecure. */
int cli_endpoint_local(const char *endpoint);
/* 1 when endpoint is a well-formed tcp:// or ws:// endpoint (HOST:PORT,
 * PORT digits or "*") that is not local: what needs CURVE, an API key or
 * --insecure. A malformed endpoint is 0: binding it fails with its own
 * sentence. */
int cli_endpoint_exposed(const char *endpoint);

/* Monotonic seconds. */
double cli_now(void);

/* JSON strings and numbers: fc_json_str, fc_json_num (fc_base.h). */
/* 1 when s is one complete JSON value (RFC 8259), else 0. */
int cli_json_valid(const char *s);
/* [v0, v1, ...] */
void cli_json_nums(FILE *f, const double *v, int n);
/* A policy's action bounds [lo[j], hi[j]] for n dimensions: the text line
 * "  action bounds: [lo, hi] ...", or with json the object members
 * ', "action_low": [...], "action_high": [...]' (what train and eval print). */
void cli_print_bounds(FILE *f, const float *lo, const float *hi, int n, int json);

/* A one-line progress bar on stderr, only when stderr is a terminal. */
typedef struct {
  int enabled;
  double t0, last;
  int64_t total;
  char label[32];
} cli_progress;
void cli_progress_begin(cli_progress *p, const char *label, int64_t total);
/* extra: text shown after the counters (e.g. "loss 0.123"). */
void cli_progress_update(cli_progress *p, int64_t done, const char *extra);
void cli_progress_end(cli_progress *p);

#endif
