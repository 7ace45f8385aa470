/* fc_net: the velocity network v(t, x, c) behind one interface, whatever its
 * kind. The flows (fc_flow.h), the policies and the tools see only this
 * header; each kind is a standalone module with the same API shape
 * (fc_mlp.h: config, layout, nparams, macs, tensors, bind, init, workspace,
 * forward, backward and their double-precision references) that fc_net.c
 * reaches through one table of operations per kind.
 *
 * Kinds (the number is what checkpoints store, so it never changes):
 *   FC_NET_MLP  0  the residual FiLM MLP of fc_mlp.h
 *   FC_NET_UNET 1  Diffusion Policy's 1-D temporal conv U-Net of fc_unet.h
 *   FC_NET_TRANSFORMER 2  the DiT-style transformer over chunk steps of fc_tfm.h
 * x is (B, dx) and c is (B, dc) for every kind; a kind that sees the time
 * axis of an action chunk reads x as `horizon` steps of dx / horizon values,
 * time-major (x[b][t * A + a]), the horizon given by fc_net_config_set_io.
 *
 * Adding a kind: its enum value and its member of fc_net_config's union (and
 * of fc_net's), its table in fc_net.c (the common operations come from the
 * module's fc_<kind>_* functions; its own: default, check with the bounds
 * below, set_io, width matching, description, checkpoint fields), nothing
 * else. A kind's tensor list returns its count even when that exceeds max.
 *
 * Example: a velocity v (B, D) and the gradient of sum(dv * v) for a batch
 * x (B, D) at times t (B) with conditions c (B, C)
 *
 *   int velocity(const float *t, const float *x, const float *c, const float *dv, float *v, int B, int D, int C) {
 *     char err[256], desc[128];
 *     fc_net_config cfg;
 *     fc_net_config_default(&cfg, fc_net_kind_parse("mlp"), D, C);
 *     cfg.mlp.width = 64;                                // the kind's own fields
 *     if (fc_net_config_check(&cfg, err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;
 *     fc_net_describe(&cfg, desc, sizeof desc);          // "mlp width 64 depth 3 film silu"
 *     float *params = calloc(fc_net_nparams(&cfg), sizeof(float));
 *     float *grads = calloc(fc_net_nparams(&cfg), sizeof(float));
 *     fc_net net;
 *     fc_net_bind(&net, &cfg, params);
 *     fc_rng rng;
 *     fc_rng_seed(&rng, 0);
 *     fc_net_init(&net, &rng);
 *     fc_net_ws *ws = fc_net_ws_new(&cfg, B);            // scratch for batches up to B
 *     fc_net_forward(&net, ws, v, t, x, C ? c : NULL, B);
 *     fc_net_backward(&net, ws, grads, 0, NULL, NULL, dv, B);
 *     fc_net_ws_free(ws);
 *     free(grads);
 *     free(params);
 *     return 0;
 *   }
 */
#ifndef FC_NET_H
#define FC_NET_H

#include <stddef.h>

#include "fc_ckpt.h"
#include "fc_mlp.h"
#include "fc_tfm.h"
#include "fc_unet.h"
#include "fc_rng.h"

typedef enum {
  FC_NET_MLP = 0,   /* fc_mlp.h */
  FC_NET_UNET = 1,  /* fc_unet.h: x is `horizon` steps of dx / horizon values */
  FC_NET_TRANSFORMER = 2, /* fc_tfm.h: likewise, one token per step */
  FC_NET_KINDS = 3  /* how many kinds this lfp knows */
} fc_net_kind;

/* A network's config: the kind, then that kind's own config. Build one with
 * fc_net_config_default, then set the kind's fields. */
typedef struct {
  fc_net_kind kind;
  union {
    fc_mlp_config mlp; /* FC_NET_MLP */
    fc_unet_config unet; /* FC_NET_UNET */
    fc_tfm_config tfm;   /* FC_NET_TRANSFORMER */
  };
} fc_net_config;

/* Bounds of every kind's sizes: fc_net_config_check enforces them and the
 * checkpoint reader bounds every field with them before anything is sized
 * from it, so that one network has far fewer than 2^63 parameters (an MLP
 * at the limits: about 2^40). */
#define FC_NET_MAX_WIDTH 65536 /* hidden width, channels */
#define FC_NET_MAX_DIM 65536   /* dx and dc */
#define FC_NET_MAX_TEMB 4096   /* time-embedding size */
#define FC_NET_MAX_DEPTH 64    /* residual blocks */

/* The kind's defaults for x of dx values and conditions of dc (mlp: width
 * 256, depth 3, temb 32, SiLU, FiLM); horizon 1. */
void fc_net_config_default(fc_net_config *cfg, fc_net_kind kind, int dx, int dc);
/* Set the sizes of x (dx values: horizon steps of dx / horizon, time-major)
 * and c (dc), keeping the kind's other fields. Kinds without a time axis
 * ignore the horizon. */
void fc_net_config_set_io(fc_net_config *cfg, int dx, int dc, int horizon);
/* 0 when the config is usable and within the bounds above, else -1 and a
 * sentence in err (an unknown kind included). */
int fc_net_config_check(const fc_net_config *cfg, char *err, size_t errsz);
/* 1 when a and b are the same network config, compared field by field (as
 * a checkpoint stores them), else 0. */
int fc_net_config_same(const fc_net_config *a, const fc_net_config *b);
int fc_net_dx(const fc_net_config *cfg); /* D: size of x and of the velocity */
int fc_net_dc(const fc_net_config *cfg); /* C: size of the condition, may be 0 */

/* The functions below take a checked config. */
size_t fc_net_nparams(const fc_net_config *cfg);
/* Multiply-adds of one forward pass for one sample (x 2 for FLOPs). */
double fc_net_macs(const fc_net_config *cfg);
/* Fill out[0..max) with the tensors of the parameter vector in order (names,
 * offsets, shapes, fan-in); returns their count, which may exceed max (only
 * max are written): fc_net_tensors(cfg, NULL, 0) sizes the array. */
int fc_net_tensors(const fc_net_config *cfg, fc_tensor_info *out, int max);
/* out = cfg resized so that `copies` networks of it have the total parameter
 * count closest to one network of cfg, never larger than cfg (how LFM with N
 * blocks is compared with FM; mlp: the width). out may be cfg. */
void fc_net_match(fc_net_config *out, const fc_net_config *cfg, int copies);
/* One line for people: "mlp width 256 depth 3 film silu". */
void fc_net_describe(const fc_net_config *cfg, char *out, size_t n);

/* Name <-> kind ("mlp"); -1 when unknown, "?" for a number out of range. */
const char *fc_net_kind_name(fc_net_kind kind);
int fc_net_kind_parse(const char *s);

/* ---------- a network bound to its parameters ---------- */

typedef struct {
  fc_net_config cfg;
  float *params;       /* fc_net_nparams(&cfg) floats, not owned */
  union {
    fc_mlp mlp;        /* the kind's own view of the same config and params */
    fc_unet unet;
    fc_tfm tfm;
  };
} fc_net;

/* Point net at params (owned by the caller); to use other parameters (an
 * EMA copy), bind again. */
void fc_net_bind(fc_net *net, const fc_net_config *cfg, float *params);
/* The kind's initialization (mlp: PyTorch's Linear default). */
void fc_net_init(fc_net *net, fc_rng *rng);

/* Activations of one pass, kept for backward; one per thread/caller. */
typedef struct fc_net_ws fc_net_ws;
fc_net_ws *fc_net_ws_new(const fc_net_config *cfg, int max_batch);
void fc_net_ws_free(fc_net_ws *ws);

/* y (B, D) = v(t (B), x (B, D), c (B, C) or NULL when C = 0); B <= the
 * workspace's max_batch, which must come from net's config. Allocates nothing. */
void fc_net_forward(const fc_net *net, fc_net_ws *ws, float *y, const float *t, const float *x, const float *c,
                    int B);
/* Backward of the last forward for dL/dy = dy (B, D): dparams = dL/dparams
 * (NULL: no parameter gradients, the cheaper input-only pass),
 * or += when accumulate is nonzero; dx (B, D) and dc (B, C) are overwritten
 * with dL/dx and dL/dc when not NULL. */
void fc_net_backward(const fc_net *net, fc_net_ws *ws, float *dparams, int accumulate, float *dx, float *dc,
                     const float *dy, int B);

/* The reference in double precision with naive loops, same semantics: the
 * specification and the test oracle. */
typedef struct fc_net_ws_ref fc_net_ws_ref;
fc_net_ws_ref *fc_net_ws_new_ref(const fc_net_config *cfg, int max_batch);
void fc_net_ws_free_ref(fc_net_ws_ref *ws);
void fc_net_forward_ref(const fc_net_config *cfg, const double *params, fc_net_ws_ref *ws, double *y,
                        const double *t, const double *x, const double *c, int B);
void fc_net_backward_ref(const fc_net_config *cfg, const double *params, fc_net_ws_ref *ws, double *dparams,
                         int accumulate, double *dx, double *dc, const double *dy, int B);

/* ---------- checkpoint fields (fc_ckpt.h) ----------
 * A config is written as i32 kind, then the kind's fields:
 *   mlp: i32 dx, dc, width, depth, temb, act, cond
 *   unet: i32 dx, dc, horizon, adim, temb, nlevels, dims[4] (0 past
 *         nlevels), kernel, groups, act
 *   transformer: i32 dx, dc, horizon, adim, width, depth, heads, ffn, temb,
 *         act, cond
 * The owner of a section puts it where its layout says (fc_flow.h's
 * lfm.config). Reading bounds every field (the limits above, the known
 * kinds and enum values): an unknown kind is "mismatched" (a newer lfp's
 * network), a value out of bounds "corrupted". The reader checks fields
 * only: fc_net_config_check is the caller's, on the whole config. */
void fc_net_config_put(fc_ckpt_buf *b, const fc_net_config *cfg);
int fc_net_config_get(fc_ckpt_cur *c, fc_net_config *cfg);
/* The fields of a given kind alone, for sections older than the kind field
 * (they held an mlp). */
int fc_net_config_get_fields(fc_ckpt_cur *c, fc_net_kind kind, fc_net_config *cfg);

#endif
