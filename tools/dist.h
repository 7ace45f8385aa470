/* dist: lfp under mpirun (OpenMPI from Debian): data-parallel training and
 * episodes split across processes. The same binary runs without mpirun: MPI
 * is initialized only when the process was started by a launcher (OpenMPI's
 * or PMIx's environment variables), else there is one rank and every call
 * here is a no-op.
 *
 * Example: a sum across ranks, printed by rank 0
 *
 *   int dist_demo(int argc, char **argv) {
 *     char err[256];
 *     if (dist_init(&argc, &argv, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
 *     float x = (float)dist_rank();
 *     dist_sum(&x, 1);
 *     if (dist_rank() == 0) printf("%d ranks, sum of ranks %g\n", dist_size(), x);
 *     dist_finalize();
 *     return 0;
 *   }
 */
#ifndef LFP_DIST_H
#define LFP_DIST_H

#include <stddef.h>
#include <stdint.h>

/* MPI_Init when launched by mpirun (and MPI is compiled in); 0, or -1 with
 * a sentence (launched by mpirun but built without MPI). Once, first. */
int dist_init(int *argc, char ***argv, char *err, size_t errsz);
void dist_finalize(void);
/* end every rank now with this status (MPI_Abort; a rank that failed
 * while the others wait in a collective); returns only without MPI */
void dist_abort(int status);
int dist_rank(void);
int dist_size(void);
/* in place, the same result on every rank (MPI_Allreduce, MPI_SUM) */
void dist_sum(float *buf, size_t n);
void dist_sum_d(double *buf, size_t n);
void dist_sum_i64(int64_t *buf, size_t n);
/* the fc_train_config.reduce callback (user unused) */
void dist_reduce_cb(float *buf, size_t n, void *user);
/* 1 when every rank holds the same value (a CRC of the weights, say) */
int dist_same_u32(uint32_t v);
/* rank 0 gets every rank's n_r bytes concatenated in rank order (*all,
 * malloc'd, total *total); the others send theirs (and get NULL) */
void dist_gather(const void *mine, size_t n, void **all, size_t *total);
/* the bytes of rank 0 to every rank (n the same on all) */
void dist_bcast(void *buf, size_t n);
void dist_barrier(void);
/* episodes [*lo, *lo + *n) of total are this rank's (contiguous, in order) */
void dist_split(int total, int *lo, int *n);

#endif
