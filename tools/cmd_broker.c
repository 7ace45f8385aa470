/* lfp broker: a fleet of lfp serve workers behind one endpoint (policy/pol_broker.h). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "pol_broker.h"
#include "pol_keys.h"

static volatile sig_atomic_t s_stop = 0;
static void s_on_signal(int sig) { s_stop = sig; }

int cmd_broker(int argc, char **argv) {
  const char *frontend = "tcp://127.0.0.1:5555", *backend = "tcp://127.0.0.1:5556";
  const char *curve_secret = NULL, *allow_dir = NULL;
  int heartbeat_ms = 500, max_sessions = 4096, insecure = 0, json = 0;
  cli_opt opts[] = {
      {"--frontend", CLI_STR, &frontend, "the clients' endpoint (what they --connect to, as to one node)", NULL, 0, 0},
      {"--backend", CLI_STR, &backend, "the workers' endpoint (lfp serve --connect BACKEND)", NULL, 0, 0},
      {"--heartbeat-ms", CLI_INT, &heartbeat_ms, "heartbeat period; a worker silent for 3 periods is dead", NULL, 10,
       60000},
      {"--max-sessions", CLI_INT, &max_sessions, "sessions whose worker is remembered (least recently used forgotten)",
       NULL, 1, 1 << 20},
      {"--curve-secret", CLI_STR, &curve_secret, "CURVE on both endpoints with this secret key (lfp keygen's .key); "
                                                 "needs --allow", NULL, 0, 0},
      {"--allow", CLI_STR, &allow_dir, "CURVE: admit only clients and workers whose public key is a .pub file here", NULL,
       0, 0},
      {"--insecure", CLI_FLAG, &insecure, "allow binding beyond loopback without CURVE", NULL, 0, 0},
      {"--json", CLI_FLAG, &json, "on shutdown, print only one JSON object (the counters) on stdout", NULL, 0, 0},
  };
  int rc = cli_parse("broker", "lfp broker [--frontend tcp://127.0.0.1:5555] [--backend tcp://127.0.0.1:5556] "
                               "[--curve-secret KEY --allow DIR] [--json]",
                     argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  if (!curve_secret != !allow_dir) {
    cli_error("broker", "%s needs %s", curve_secret ? "--curve-secret" : "--allow", curve_secret ? "--allow DIR" : "--curve-secret KEY");
    return 2;
  }
  if (!curve_secret && !insecure && (cli_endpoint_exposed(frontend) || cli_endpoint_exposed(backend))) {
    const int f = cli_endpoint_exposed(frontend);
    cli_error("broker", "--%s %s leaves this machine unencrypted and open to anyone: give --curve-secret KEY --allow DIR, "
              "or --insecure to serve it as it is", f ? "frontend" : "backend", f ? frontend : backend);
    return 2;
  }
  char err[512], secret[41], public_key[41], fb[256], bb[256];
  pol_keys_allow *allow = NULL;
  if (curve_secret && (pol_keys_read_secret(curve_secret, secret, public_key, err, sizeof(err)) ||
                       !(allow = pol_keys_allow_load(allow_dir, err, sizeof(err))))) {
    cli_error("broker", "%s", err);
    return 1;
  }
  pol_broker_config cfg;
  pol_broker_config_default(&cfg);
  cfg.heartbeat_ms = heartbeat_ms;
  cfg.max_sessions = max_sessions;
  cfg.log = stderr;
  pol_broker *b = pol_broker_new(&cfg);
  if (allow) pol_broker_secure(b, secret, allow);
  if (pol_broker_bind(b, frontend, backend, fb, sizeof(fb), bb, sizeof(bb), err, sizeof(err))) {
    cli_error("broker", "%s", err);
    pol_broker_free(b);
    pol_keys_allow_free(allow);
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = s_on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  printf("lfp broker: clients on %s, workers on %s, heartbeat %d ms, sessions sticky to their worker; SIGINT/SIGTERM "
         "stops\n", fb, bb, heartbeat_ms);
  if (allow)
    printf("lfp broker: CURVE on both: server public key %s; admitting the %d key%s in %s\n", public_key,
           pol_keys_allow_count(allow), pol_keys_allow_count(allow) == 1 ? "" : "s", allow_dir);
  fflush(stdout);
  memset(secret, 0, sizeof(secret));
  const double t0 = cli_now();
  rc = pol_broker_run(b, &s_stop, err, sizeof(err));
  if (rc) cli_error("broker", "%s", err);
  const pol_broker_stats st = pol_broker_get_stats(b);
  const double secs = cli_now() - t0;
  printf("lfp broker: stopped%s after %.1f s: %lld requests, %lld replies, %lld without a worker; %d workers joined, %d "
         "lost, %d live; %lld sessions moved\n",
         s_stop == SIGTERM ? " by SIGTERM" : s_stop == SIGINT ? " by SIGINT" : "", secs, (long long)st.requests,
         (long long)st.replies, (long long)st.no_worker, st.workers_seen, st.workers_lost, st.workers_live,
         (long long)st.moved);
  if (json) {
    cli_json_stdout();
    printf("{\"frontend\": ");
    fc_json_str(stdout, fb);
    printf(", \"backend\": ");
    fc_json_str(stdout, bb);
    printf(", \"requests\": %lld, \"replies\": %lld, \"no_worker\": %lld, \"moved\": %lld, \"refused\": %lld, "
           "\"workers_seen\": %d, \"workers_lost\": %d, \"workers_live\": %d, \"sessions\": %d, \"curve\": %s, "
           "\"seconds\": ",
           (long long)st.requests, (long long)st.replies, (long long)st.no_worker, (long long)st.moved,
           (long long)st.refused, st.workers_seen, st.workers_lost, st.workers_live, st.sessions,
           allow ? "true" : "false");
    fc_json_num(stdout, secs);
    printf("}\n");
  }
  pol_broker_free(b);
  pol_keys_allow_free(allow);
  return rc ? 1 : 0;
}
