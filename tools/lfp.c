/* lfp: the command-line program. One subcommand per job; `lfp help` lists them
 * and `lfp <cmd> --help` describes one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "dist.h"
#include "lfp_version.h"
#include "env.h"
#include "fc_par.h"

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} s_command;

static const s_command s_commands[] = {
    {"toy", cmd_toy, "train FM and Local Flow Matching on a 2-D distribution and compare them"},
    {"collect", cmd_collect, "roll out a task's scripted expert and write Robomimic-style demonstrations"},
    {"train", cmd_train, "train an LFM / FM / MSE policy on demonstrations"},
    {"distill", cmd_distill, "distil an LFM / FM policy into one network evaluation per block"},
    {"eval", cmd_eval, "run a policy in closed loop in MuJoCo: success rate, task figures, latency"},
    {"serve", cmd_serve, "serve a policy as a ZeroMQ controller node (msgpack requests: info, infer, observe, reset, ping)"},
    {"sim", cmd_sim, "run a task in MuJoCo as a separate node driven by an 'lfp serve' controller (lockstep or realtime)"},
    {"broker", cmd_broker, "put several 'lfp serve --connect' workers behind one endpoint (sticky sessions, heartbeats)"},
    {"keygen", cmd_keygen, "write a CURVE key pair (NAME.key, NAME.pub) for an encrypted, allowlisted node"},
    {"replay", cmd_replay, "replay a file's actions from its recorded states and report the largest deviation"},
    {"report", cmd_report, "write one self-contained HTML page of a policy: card, training curves, evaluations, videos"},
    {"info", cmd_info, "describe a Robomimic-style HDF5 demonstration file (demos, keys, actions, masks)"},
    {"bench", cmd_bench, "benchmarks: flowcore, datasets, envs, node"},
};
#define S_NCMD ((int)(sizeof(s_commands) / sizeof(s_commands[0])))

static void s_usage(FILE *f) {
  fprintf(f, "lfp %s: local flow policies (flow matching for robot policies)\n\n"
             "usage: lfp <command> [options]   (lfp <command> --help for its options)\n\ncommands:\n",
          LFP_VERSION);
  for (int i = 0; i < S_NCMD; i++) fprintf(f, "  %-10s %s\n", s_commands[i].name, s_commands[i].summary);
  fprintf(f, "  %-10s %s\n  %-10s %s\n", "help", "show this list", "version", "print the version");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    s_usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  /* an OpenBLAS older than the CPU runs its SSE3 kernels (fc_blas_better_core):
   * once, before any work, lfp runs itself again with OPENBLAS_CORETYPE set
   * to the kernels the CPU can run; a given OPENBLAS_CORETYPE is kept, and
   * LFP_BLAS_AUTO=0 turns this off */
  const char *better = getenv("OPENBLAS_CORETYPE") ? NULL : fc_blas_better_core();
  const char *autob = getenv("LFP_BLAS_AUTO");
  if (better && !(autob && !strcmp(autob, "0"))) {
    setenv("OPENBLAS_CORETYPE", better, 1);
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: go on with the kernels there are */
  }
  /* flowcore's pool (FC_THREADS or the usable CPUs) and OpenBLAS at one
   * thread per call: the process-wide settings, made once, here */
  {
    /* under mpirun, K ranks on one machine share its CPUs */
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (local && !getenv("FC_THREADS")) {
      const long ncpu = sysconf(_SC_NPROCESSORS_ONLN), k = atol(local);
      char buf[32];
      snprintf(buf, sizeof(buf), "%ld", k > 0 && ncpu / k > 1 ? ncpu / k : 1);
      setenv("FC_THREADS", buf, 1);
    }
  }
  fc_par_init(0);
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    if (argc > 2) {
      for (int i = 0; i < S_NCMD; i++)
        if (!strcmp(argv[2], s_commands[i].name)) {
          char *help_argv[] = {argv[2], "--help", NULL};
          return s_commands[i].run(2, help_argv);
        }
    }
    s_usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("lfp %s\n", LFP_VERSION);
    return 0;
  }
  /* the program's one-time process-wide set-up: MuJoCo's error and warning
   * handlers (see env_init) */
  char err[256];
  if (env_init(err, sizeof(err))) {
    fprintf(stderr, "lfp: %s\n", err);
    return 1;
  }
  /* under mpirun: MPI, and rank 0 alone speaks on stdout (errors stay on stderr) */
  if (dist_init(&argc, &argv, err, sizeof(err))) {
    fprintf(stderr, "lfp: %s\n", err);
    return 1;
  }
  if (dist_rank() > 0 && !freopen("/dev/null", "w", stdout)) {
    fprintf(stderr, "lfp: rank %d cannot silence its stdout\n", dist_rank());
    return 1;
  }
  for (int i = 0; i < S_NCMD; i++)
    if (!strcmp(cmd, s_commands[i].name)) {
      const int rc = s_commands[i].run(argc - 1, argv + 1);
      if (rc) dist_abort(rc); /* a rank that failed must not leave the others waiting */
      dist_finalize();
      return rc;
    }
  dist_finalize();
  fprintf(stderr, "lfp: unknown command '%s' (see 'lfp help')\n", cmd);
  return 2;
}
