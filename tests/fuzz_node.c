/* Fuzz target: the controller node's whole request path (pre-scan, msgpack
 * decoding, validation against a policy, sessions, sampling, the reply) on
 * arbitrary bytes, in lfp's protocol and Isaac GR00T's dialect (with its
 * .npy arrays). Invariants: no crash or sanitizer report, and the reply is
 * always one well-formed msgpack map (or the [action, info] pair of a GR00T
 * N1.6 get_action).
 *
 * Built with clang and -fsanitize=fuzzer (LFP_FUZZ=ON, in the sanitizer
 * build of tools/test.sh) it is libFuzzer's target; CTest runs it for a
 * bounded time from the seeds in tests/fuzz/corpus with tests/fuzz/node.dict.
 * Built without libFuzzer it replays files given on the command line
 * (the seeds, or a crash artifact): fuzz_node FILE... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "node_fixture.h"
#include "pol_node.h"
#include "pol_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pol_node *s_node;

static void s_setup(void) {
  static pol_policy *p;
  p = node_fixture_policy();
  pol_node_config cfg;
  pol_node_config_default(&cfg);
  cfg.max_sessions = 4;   /* eviction is reached quickly */
  cfg.max_msg = 1 << 16;
  s_node = pol_node_new(p, &cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!s_node) s_setup();
  /* the last byte picks one of 8 peers, so sessions are created and evicted */
  const uint8_t peer = size ? (uint8_t)(data[size - 1] & 7) : 0;
  const void *reply;
  size_t rlen;
  pol_node_handle(s_node, &peer, 1, data, size, &reply, &rlen);
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  const msgpack_object *o = &up.data;
  if (pw_scan(reply, rlen, NULL, 0) || msgpack_unpack_next(&up, reply, rlen, &off) != MSGPACK_UNPACK_SUCCESS ||
      off != rlen ||
      !(o->type == MSGPACK_OBJECT_MAP || (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2 &&
                                          o->via.array.ptr[0].type == MSGPACK_OBJECT_MAP &&
                                          o->via.array.ptr[1].type == MSGPACK_OBJECT_MAP))) {
    fprintf(stderr, "fuzz_node: the reply is not one msgpack map (or GR00T N1.6's [action, info])\n");
    abort();
  }
  msgpack_unpacked_destroy(&up);
  return 0;
}

#ifndef LFP_LIBFUZZER
int main(int argc, char **argv) {
  int n = 0;
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      fprintf(stderr, "fuzz_node: cannot open %s\n", argv[i]);
      return 1;
    }
    static uint8_t buf[1 << 20];
    const size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    n++;
  }
  printf("fuzz_node: %d inputs replayed, no failure\n", n);
  return n > 0 ? 0 : 1;
}
#endif
