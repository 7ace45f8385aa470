/* lfp distill: distil a trained lfm or fm policy into a one-step-per-block
 * student (NFE = the teacher's blocks), block by block and independently. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"
#include "commands.h"
#include "ds_file.h"
#include "env.h"
#include "pol_train.h"
#include "train_loop.h"

int cmd_distill(int argc, char **argv) {
  pol_distill_config c;
  pol_distill_config_default(&c);
  const char *teacher_path = NULL, *data = NULL, *out = NULL, *sampler = NULL;
  int64_t steps = c.steps;
  int seed = 0, json = 0, teacher_steps = 0;
  train_loop_opts lo;
  train_loop_opts_default(&lo, "distill", NULL, 0);
  double lr = c.lr;
  static const char *const samplers[] = {"euler", "heun", "rk4", NULL};
  cli_opt opts[] = {
      {"--policy", CLI_STR, &teacher_path, "the teacher: a trained lfm or fm policy", NULL, 0, 0},
      {"--data", CLI_STR, &data, "demonstrations (the teacher's training file, or one like it)", NULL, 0, 0},
      {"--out", CLI_STR, &out, "student policy file to write", NULL, 0, 0},
      {"--steps", CLI_I64, &steps, "distillation steps over all blocks", NULL, 1, 1e9},
      {"--batch", CLI_INT, &c.batch, "minibatch size", NULL, 1, 65536},
      {"--seed", CLI_INT, &seed, "seed of start points, minibatches and split", NULL, 0, 2147483647},
      {"--lr", CLI_DOUBLE, &lr, "peak learning rate", NULL, 1e-7, 1},
      {"--teacher-sampler", CLI_CHOICE, &sampler, "the teacher's ODE sampler for the targets (default: its own)",
       samplers, 0, 0},
      {"--teacher-steps", CLI_INT, &teacher_steps, "its steps per block (0: its own)", NULL, 0, 4096},
      {"--pairs", CLI_I64, &c.pairs,
       "teacher pairs per block, drawn once and reused (0: fresh start points and endpoints every step)", NULL, 0,
       16777216},
      TRAIN_LOOP_CLI_OPTS(lo),
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("distill", "lfp distill --policy TEACHER.lfp --data FILE.hdf5 --out STUDENT.lfp [--steps K] [--json]",
                     argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  if (!teacher_path || !data || !out) {
    cli_error("distill", "--policy TEACHER.lfp, --data FILE.hdf5 and --out STUDENT.lfp are required");
    return 2;
  }
  if (!strcmp(teacher_path, out)) {
    cli_error("distill", "--out %s would overwrite the teacher", out);
    return 2;
  }
  c.steps = steps;
  c.seed = (uint64_t)seed;
  if (dist_size() > 1) { /* under mpirun: data parallel, --batch the global batch */
    if (c.batch < dist_size()) {
      cli_error("distill", "--batch %d is less than the %d ranks: each rank needs at least one row", c.batch, dist_size());
      return 2;
    }
    c.par = (pol_shards){dist_size(), dist_rank(), dist_reduce_cb, NULL};
  }
  c.lr = (float)lr;
  if (sampler && !teacher_steps) {
    cli_error("distill", "--teacher-sampler needs --teacher-steps");
    return 2;
  }
  c.teacher_steps = teacher_steps;
  if (sampler) c.teacher_sampler = (fc_sampler)fc_sampler_parse(sampler);

  char err[1024];
  pol_policy *teacher = pol_load(teacher_path, err, sizeof(err));
  if (!teacher) {
    cli_error("distill", "%s", err);
    return 1;
  }
  if (teacher_steps && !sampler) c.teacher_sampler = teacher->flow->cfg.sampler;
  /* the data, with the teacher's observation keys */
  const char *keys[POL_MAX_KEYS];
  for (int k = 0; k < teacher->meta.nkeys; k++) keys[k] = teacher->meta.keys[k];
  ds_file *f = ds_open(data, err, sizeof(err));
  ds_dataset *d = f ? ds_load(f, keys, teacher->meta.nkeys, err, sizeof(err)) : NULL;
  if (f) ds_close(f);
  int status = 1;
  pol_trainer *t = NULL;
  lo.out = out;
  lo.batch = c.batch;
  if (!d) goto fail;
  if (lo.eval_every && !(lo.em = env_model_from_args(teacher->meta.env_args, err, sizeof(err)))) {
    cli_error("distill", "--eval-every: the teacher's task: %s", err);
    status = 2;
    goto done;
  }
  t = pol_distiller_new(d, teacher, teacher_path, &c, err, sizeof(err));
  if (!t || train_loop_origin(t, data, d->ndemos, c.seed, c.steps, c.batch, c.lr, argc, argv, err, sizeof(err))) goto fail;
  const pol_policy *p = pol_trainer_policy(t);
  const pol_distill *rec = &p->distill;
  char desc[256], pairs[64] = "fresh teacher pairs every step";
  pol_describe(p, desc, sizeof(desc));
  if (c.pairs) snprintf(pairs, sizeof(pairs), "a pool of %lld teacher pairs per block", (long long)c.pairs);
  printf("lfp distill: %s (%s, %d block(s) of %s, NFE %d with %s x %d per block) -> %s, one Euler step per block "
         "(NFE %d); %lld train / %lld valid windows of %s, %lld steps of batch %d, %s\n",
         teacher_path, pol_method_name((pol_method)teacher->meta.method), p->flow->cfg.nblocks, desc, rec->teacher_nfe,
         fc_sampler_name((fc_sampler)rec->teacher_sampler), rec->teacher_steps, out, pol_nfe(p, p->flow->cfg.sampler, 0),
         (long long)pol_trainer_train_windows(t), (long long)pol_trainer_valid_windows(t), data, (long long)c.steps,
         c.batch, pairs);
  fflush(stdout);
  train_loop_result res;
  if (train_loop_run(t, &lo, &res, err, sizeof(err))) goto fail;
  train_loop_print(&lo, &res);
  if (json) {
    cli_json_stdout();
    printf("{\"out\": ");
    fc_json_str(stdout, out);
    printf(", \"teacher\": ");
    fc_json_str(stdout, teacher_path);
    printf(", \"method\": \"%s\", \"blocks\": %d, \"net\": \"%s\", \"params\": %zu, \"steps\": %lld, \"batch\": %d, "
           "\"nfe\": %d, \"teacher_nfe\": %d, \"teacher_sampler\": \"%s\", \"teacher_steps\": %d, "
           "\"pairs\": %lld, \"train_windows\": %lld, \"valid_windows\": %lld",
           pol_method_name((pol_method)p->meta.method), p->flow->cfg.nblocks, fc_net_kind_name(p->flow->cfg.net.kind),
           fc_lfm_nparams(p->flow), (long long)c.steps, c.batch, pol_nfe(p, p->flow->cfg.sampler, 0), rec->teacher_nfe,
           fc_sampler_name((fc_sampler)rec->teacher_sampler), rec->teacher_steps, (long long)c.pairs,
           (long long)pol_trainer_train_windows(t), (long long)pol_trainer_valid_windows(t));
    train_loop_json(stdout, &lo, &res);
    printf("}\n");
  }
  status = 0;
  goto done;
fail:
  cli_error("distill", "%s", err);
done:
  pol_trainer_free(t);
  ds_dataset_free(d);
  env_model_free(lo.em);
  pol_free(teacher);
  return status;
}
