/* lfp serve: the policy as a ZeroMQ controller node (policy/pol_node.h). */
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "pol_keys.h"
#include "pol_node.h"
#include "pol_wire.h"
#include "pol_ws.h"

static volatile sig_atomic_t s_stop = 0;
static void s_on_signal(int sig) { s_stop = sig; }

static void s_lws_log(int level, const char *line) {
  (void)level;
  fprintf(stderr, "lfp serve: libwebsockets: %s%s", line, line[0] && line[strlen(line) - 1] == '\n' ? "" : "\n");
}

typedef struct {
  pol_ws *w;
  int rc;
  char err[512];
} s_ws_thread;

static void *s_ws_main(void *arg) {
  s_ws_thread *t = arg;
  t->rc = pol_ws_run(t->w, &s_stop, t->err, sizeof(t->err));
  return NULL;
}

int cmd_serve(int argc, char **argv) {
  const char *path = NULL, *sampler = NULL;
  cli_strs binds = {{"tcp://127.0.0.1:5555"}, 1, 0};
  int json = 0, max_sessions = 64, max_kb = 1024, seed = 0, steps = 0, insecure = 0;
  const char *curve_secret = NULL, *allow_dir = NULL, *api_key_file = NULL, *connect = NULL, *curve_server = NULL;
  int heartbeat_ms = 500;
  static const char *const samplers[] = {"euler", "heun", "rk4", NULL};
  cli_opt opts[] = {
      {"--policy", CLI_STR, &path, "policy file (from lfp train)", NULL, 0, 0},
      {"--bind", CLI_STRS, &binds, "endpoint to serve on: a ZeroMQ one (ROUTER: tcp://, ipc://) and/or a websocket one "
                                   "(openpi's protocol: ws://HOST:PORT); loopback unless asked", NULL, 0, 0},
      {"--max-sessions", CLI_INT, &max_sessions, "clients whose history is kept (least recently used evicted)", NULL, 1, 65536},
      {"--max-msg-kb", CLI_INT, &max_kb, "larger requests get an error reply (16x this drops the connection)", NULL, 1, 65536},
      {"--seed", CLI_INT, &seed, "sampler seeds of sessions that do not send one", NULL, 0, 2147483647},
      {"--sampler", CLI_CHOICE, &sampler, "override the trained ODE sampler", samplers, 0, 0},
      {"--ode-steps", CLI_INT, &steps, "override the steps per block", NULL, 0, 100000},
      {"--curve-secret", CLI_STR, &curve_secret, "CURVE: encrypt the ZeroMQ endpoint with this server secret key "
                                                 "(lfp keygen's NAME.key, mode 0600); needs --allow", NULL, 0, 0},
      {"--allow", CLI_STR, &allow_dir, "CURVE: admit only clients whose public key is a .pub file in this folder", NULL, 0,
       0},
      {"--api-key-file", CLI_STR, &api_key_file, "websocket: require openpi's 'Authorization: Api-Key K' header, K read "
                                                 "from this file (mode 0600)", NULL, 0, 0},
      {"--connect", CLI_STR, &connect, "instead of a ZeroMQ --bind: serve as a worker of lfp broker, connected to its "
                                       "backend (tcp://HOST:PORT)", NULL, 0, 0},
      {"--heartbeat-ms", CLI_INT, &heartbeat_ms, "--connect: heartbeat period (the broker's --heartbeat-ms)", NULL, 10,
       60000},
      {"--curve-server", CLI_STR, &curve_server, "--connect: the broker's CURVE public key (.pub); with --curve-secret, this "
                                                 "worker's key", NULL, 0, 0},
      {"--insecure", CLI_FLAG, &insecure, "allow binding beyond loopback without CURVE (ZeroMQ) or an API key (websocket)",
       NULL, 0, 0},
      {"--json", CLI_FLAG, &json, "on shutdown, print only one JSON object (the counters), on one line, on stdout (the text goes to stderr)", NULL, 0, 0},
  };
  int rc = cli_parse("serve", "lfp serve --policy POLICY.lfp [--bind tcp://127.0.0.1:5555] [--curve-secret KEY --allow DIR] "
                     "[--json]", argc, argv, opts,
                     (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  if (!path) {
    cli_error("serve", "--policy POLICY.lfp is required");
    return 2;
  }
  char err[512], bound[256];
  pol_policy *p = pol_load(path, err, sizeof(err));
  if (!p) {
    cli_error("serve", "%s", err);
    return 1;
  }
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  cfg.max_sessions = max_sessions;
  cfg.max_msg = (size_t)max_kb * 1024;
  cfg.seed = (uint64_t)seed;
  cfg.name = path;
  cfg.log = stderr;
  cfg.sampler = sampler ? fc_sampler_parse(sampler) : -1;
  cfg.steps = steps;
  const char *zbind = NULL, *wbind = NULL;
  if (connect && !binds.given) binds.n = 0; /* the default ZeroMQ bind gives way to --connect */
  for (int i = 0; i < binds.n; i++) {
    const char **slot = pol_ws_url(binds.v[i]) ? &wbind : &zbind;
    if (*slot) {
      cli_error("serve", "--bind %s: lfp serve binds one ZeroMQ and one websocket endpoint (%s is already bound)",
                binds.v[i], *slot);
      pol_free(p);
      return 2;
    }
    *slot = binds.v[i];
  }
  if (connect && zbind) {
    cli_error("serve", "--connect %s and --bind %s: a worker of a broker binds no ZeroMQ endpoint of its own", connect, zbind);
    pol_free(p);
    return 2;
  }
  if (connect && (allow_dir || (!curve_server != !curve_secret))) {
    cli_error("serve", "%s", allow_dir ? "--allow belongs to a bound node; a worker (--connect) is admitted by the broker"
                                       : "--connect with CURVE needs both --curve-server BROKER.pub and --curve-secret KEY");
    pol_free(p);
    return 2;
  }
  if (curve_server && !connect) {
    cli_error("serve", "--curve-server belongs to --connect (a bound node takes --curve-secret and --allow)");
    pol_free(p);
    return 2;
  }
  if (!connect && !curve_secret != !allow_dir) {
    cli_error("serve", "%s needs %s", curve_secret ? "--curve-secret" : "--allow", curve_secret ? "--allow DIR" : "--curve-secret KEY");
    pol_free(p);
    return 2;
  }
  if (!insecure && ((zbind && !curve_secret && cli_endpoint_exposed(zbind)) ||
                    (wbind && !api_key_file && cli_endpoint_exposed(wbind)))) {
    const char *ep = zbind && !curve_secret && cli_endpoint_exposed(zbind) ? zbind : wbind;
    cli_error("serve", "--bind %s leaves this machine unencrypted and open to anyone: give %s, or --insecure to serve it "
              "as it is", ep, ep == zbind ? "--curve-secret KEY --allow DIR" : "--api-key-file FILE");
    pol_free(p);
    return 2;
  }
  char secret[41] = "", public_key[41] = "", api_key[256] = "";
  pol_keys_allow *allow = NULL;
  char broker_key[41] = "";
  if ((curve_secret && pol_keys_read_secret(curve_secret, secret, public_key, err, sizeof(err))) ||
      (allow_dir && !(allow = pol_keys_allow_load(allow_dir, err, sizeof(err)))) ||
      (curve_server && pol_keys_read_public(curve_server, broker_key, err, sizeof(err)))) {
    cli_error("serve", "%s", err);
    pol_free(p);
    return 1;
  }
  if (api_key_file && pol_keys_read_api_key(api_key_file, api_key, err, sizeof(err))) {
    cli_error("serve", "%s", err);
    pol_keys_allow_free(allow);
    pol_free(p);
    return 1;
  }
  pol_node *n = pol_node_new(p, &cfg);
  if (allow) pol_node_secure(n, secret, allow);
  char wbound[256] = "";
  pol_ws *ws = NULL;
  /* libwebsockets logs process-wide: nothing while binding (a failure is one
   * sentence below), then its errors only, as the node's lines */
  lws_set_log_level(0, NULL);
  pol_node_worker wk = {heartbeat_ms, curve_server ? broker_key : NULL, curve_server ? public_key : NULL,
                        curve_server ? secret : NULL};
  if (connect) snprintf(bound, sizeof(bound), "%s", connect);
  if ((connect && pol_node_connect(n, connect, &wk, err, sizeof(err))) ||
      (zbind && pol_node_bind(n, zbind, bound, sizeof(bound), err, sizeof(err))) ||
      (wbind && !(ws = pol_ws_new(n, wbind, wbound, sizeof(wbound), err, sizeof(err))))) {
    cli_error("serve", "%s", err);
    pol_node_free(n);
    pol_keys_allow_free(allow);
    pol_free(p);
    return 1;
  }
  memset(secret, 0, sizeof(secret));
  if (ws && api_key[0]) pol_ws_require_key(ws, api_key, stderr);
  memset(api_key, 0, sizeof(api_key));
  const int zmq_side = zbind || connect;
  if (!zmq_side) snprintf(bound, sizeof(bound), "%s", wbound);
  lws_set_log_level(LLL_ERR, s_lws_log);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = s_on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  char where[600];
  if (zmq_side && ws) snprintf(where, sizeof(where), "%s%s and %s", bound, connect ? " (a worker of the broker)" : "", wbound);
  else snprintf(where, sizeof(where), "%s%s", bound, connect ? " (a worker of the broker)" : "");
  printf("lfp serve: %s (%s, To %d, Ta %d, NFE %d) on %s, protocol %d; SIGINT/SIGTERM stops\n", path,
         pol_method_name((pol_method)p->meta.method), p->meta.To, p->meta.Ta,
         pol_node_nfe(n), where, PW_PROTOCOL);
  if (allow)
    printf("lfp serve: CURVE on %s: server public key %s; admitting the %d key%s in %s\n", bound, public_key,
           pol_keys_allow_count(allow), pol_keys_allow_count(allow) == 1 ? "" : "s", allow_dir);
  if (ws && api_key_file) printf("lfp serve: %s requires the API key of %s\n", wbound, api_key_file);
  fflush(stdout);
  const double t0 = cli_now();
  s_ws_thread wt = {ws, 0, ""};
  pthread_t wth;
  if (ws && zmq_side) pthread_create(&wth, NULL, s_ws_main, &wt);
  if (zmq_side) rc = pol_node_run(n, &s_stop, err, sizeof(err));
  else s_ws_main(&wt);
  if (ws && zmq_side) {
    pol_ws_stop(ws);
    pthread_join(wth, NULL);
  }
  if (wt.rc) rc = wt.rc, snprintf(err, sizeof(err), "%s", wt.err);
  const long ws_refused = ws ? pol_ws_refused(ws) : 0;
  pol_ws_free(ws);
  const pol_node_stats st = pol_node_get_stats(n);
  const double secs = cli_now() - t0;
  if (rc) cli_error("serve", "%s", err);
  printf("lfp serve: stopped%s after %.1f s: %lld requests (%lld infer, %lld errors), %lld sessions (%lld evicted)",
         s_stop == SIGTERM ? " by SIGTERM" : s_stop == SIGINT ? " by SIGINT" : "", secs, (long long)st.requests,
         (long long)st.infers, (long long)st.errors, (long long)st.sessions_created, (long long)st.evictions);
  if (allow || api_key_file) printf(", %lld clients refused", (long long)st.refused + ws_refused);
  printf("\n");
  if (json) {
    cli_json_stdout();
    printf("{\"endpoint\": ");
    fc_json_str(stdout, bound);
    printf(", \"worker\": %s, \"websocket\": ", connect ? "true" : "false");
    if (wbound[0]) fc_json_str(stdout, wbound);
    else printf("null");
    printf(", \"policy\": ");
    fc_json_str(stdout, path);
    printf(", \"protocol\": %d, \"requests\": %lld, \"infers\": %lld, \"errors\": %lld, \"sessions_created\": %lld, "
           "\"sessions_live\": %d, \"evictions\": %lld, \"curve\": %s, \"refused\": %lld, \"seconds\": ",
           PW_PROTOCOL, (long long)st.requests, (long long)st.infers, (long long)st.errors,
           (long long)st.sessions_created, st.sessions, (long long)st.evictions, allow ? "true" : "false",
           (long long)st.refused + ws_refused);
    fc_json_num(stdout, secs);
    printf("}\n");
  }
  pol_node_free(n);
  pol_keys_allow_free(allow);
  pol_free(p);
  return rc ? 1 : 0;
}
