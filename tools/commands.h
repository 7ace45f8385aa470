/* commands: the lfp subcommands; each takes argv with argv[0] = its name and
 * returns the process exit status (0 ok, 1 failure, 2 bad usage). */
#ifndef LFP_COMMANDS_H
#define LFP_COMMANDS_H

int cmd_toy(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_collect(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_broker(int argc, char **argv);
/* lfp sim --model SCENE.xml --map MAP.json (tools/cmd_sim_model.c), dispatched by cmd_sim */
int cmd_sim_model(int argc, char **argv);
/* lfp bench node (tools/bench_node.c), dispatched by cmd_bench */
int bench_node(int argc, char **argv);

#endif
