/* lfp: the library a robot stack embeds to run a trained flow policy
 * (liblfp: flowcore and policy inference; BLAS, libm and threads only).
 * This header brings in the whole inference API:
 *
 *   lfp_version.h  LFP_VERSION, lfp_version()
 *   pol.h          load a policy file, feed observation frames, get actions
 *   flowcore.h     the numerical core under it (networks, flows, samplers,
 *                  normalization, checkpoints, the thread pool)
 *
 * The node and its client (ZeroMQ, msgpack-c) are liblfp_node's:
 * <lfp/pol_node.h>, <lfp/pol_wire.h>, <lfp/pol_client.h>. The library starts
 * no thread and sets no process-wide state on its own: fc_par_init (fc_par.h)
 * sizes flowcore's thread pool when a program wants one.
 *
 * Example: the first action of a policy for a constant observation
 *
 *   int first_action(const char *path, double *action) { // room for POL_MAX_ACTION values
 *     char err[512];
 *     pol_policy *p = pol_load(path, err, sizeof err);
 *     if (!p) return fprintf(stderr, "lfp %s: %s\n", lfp_version(), err), -1;
 *     double obs[FC_NORM_MAX_DIM] = {0};
 *     pol_data *pd = pol_data_new(p, 0);
 *     int rc = pol_act(p, pd, obs, action, err, sizeof err);
 *     if (rc) fprintf(stderr, "%s\n", err);
 *     pol_data_free(pd);
 *     pol_free(p);
 *     return rc;
 *   }
 */
#ifndef LFP_H
#define LFP_H

#include "flowcore.h"
#include "lfp_version.h"
#include "pol.h"

#endif
