/* lfp keygen: a CURVE key pair for lfp serve and its clients (pol_keys.h). */
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "pol_keys.h"

int cmd_keygen(int argc, char **argv) {
  const char *out = NULL;
  int json = 0;
  cli_opt opts[] = {
      {"--out", CLI_STR, &out, "writes OUT.key (the secret key, mode 0600) and OUT.pub (the public key, Z85 text)", NULL,
       0, 0},
      CLI_OPT_JSON(json),
  };
  int rc = cli_parse("keygen", "lfp keygen --out NAME", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
  if (rc) return rc > 0 ? 0 : 2;
  if (!out) {
    cli_error("keygen", "--out NAME is required");
    return 2;
  }
  char err[512], sec[41], pub[41], path[4200];
  if (pol_keys_generate(out, err, sizeof(err))) {
    cli_error("keygen", "%s", err);
    return 1;
  }
  snprintf(path, sizeof(path), "%s.key", out);
  if (pol_keys_read_secret(path, sec, pub, err, sizeof(err))) {
    cli_error("keygen", "%s", err);
    return 1;
  }
  printf("lfp keygen: wrote %s.key (secret, mode 0600) and %s.pub (public key %s)\n", out, out, pub);
  printf("  the node: lfp serve --curve-secret SERVER.key --allow DIR (DIR holds the clients' .pub files)\n");
  printf("  a client: --curve-server SERVER.pub --curve-secret CLIENT.key\n");
  if (json) {
    cli_json_stdout();
    printf("{\"key\": ");
    fc_json_str(stdout, path);
    snprintf(path, sizeof(path), "%s.pub", out);
    printf(", \"pub\": ");
    fc_json_str(stdout, path);
    printf(", \"public_key\": ");
    fc_json_str(stdout, pub);
    printf("}\n");
  }
  return 0;
}
