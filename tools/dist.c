/* dist: MPI when launched by mpirun (see dist.h). */
#include "dist.h"

#include <stdlib.h>
#include <string.h>

#include "fc_base.h"

#ifdef LFP_MPI
#include <mpi.h>
static int s_on = 0;
#endif

static int s_launched(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", NULL};
  for (int i = 0; vars[i]; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

int dist_init(int *argc, char ***argv, char *err, size_t errsz) {
  if (!s_launched()) return 0;
#ifdef LFP_MPI
  int provided;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    return fc_set_err(err, errsz, "MPI_Init failed"), -1;
  s_on = 1;
  return 0;
#else
  (void)argc, (void)argv;
  return fc_set_err(err, errsz, "started by mpirun, but this lfp was built without MPI (install libopenmpi-dev and "
                    "rebuild)"), -1;
#endif
}

void dist_finalize(void) {
#ifdef LFP_MPI
  if (s_on) MPI_Finalize();
  s_on = 0;
#endif
}

void dist_abort(int status) {
#ifdef LFP_MPI
  if (s_on && dist_size() > 1) MPI_Abort(MPI_COMM_WORLD, status);
#else
  (void)status;
#endif
}

int dist_rank(void) {
#ifdef LFP_MPI
  int r = 0;
  if (s_on) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
#else
  return 0;
#endif
}

int dist_size(void) {
#ifdef LFP_MPI
  int n = 1;
  if (s_on) MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
#else
  return 1;
#endif
}

#ifdef LFP_MPI
/* MPI counts are ints: large buffers go in pieces */
#define S_CHUNK ((size_t)1 << 28)
static void s_allreduce(void *buf, size_t n, MPI_Datatype t, size_t elem) {
  for (size_t o = 0; o < n; o += S_CHUNK) {
    const int k = (int)(n - o < S_CHUNK ? n - o : S_CHUNK);
    MPI_Allreduce(MPI_IN_PLACE, (char *)buf + o * elem, k, t, MPI_SUM, MPI_COMM_WORLD);
  }
}
#endif

void dist_sum(float *buf, size_t n) {
#ifdef LFP_MPI
  if (s_on && dist_size() > 1) s_allreduce(buf, n, MPI_FLOAT, sizeof(float));
#else
  (void)buf, (void)n;
#endif
}

void dist_sum_d(double *buf, size_t n) {
#ifdef LFP_MPI
  if (s_on && dist_size() > 1) s_allreduce(buf, n, MPI_DOUBLE, sizeof(double));
#else
  (void)buf, (void)n;
#endif
}

void dist_sum_i64(int64_t *buf, size_t n) {
#ifdef LFP_MPI
  if (s_on && dist_size() > 1) s_allreduce(buf, n, MPI_INT64_T, sizeof(int64_t));
#else
  (void)buf, (void)n;
#endif
}

void dist_reduce_cb(float *buf, size_t n, void *user) {
  (void)user;
  dist_sum(buf, n);
}

int dist_same_u32(uint32_t v) {
#ifdef LFP_MPI
  if (!s_on || dist_size() == 1) return 1;
  unsigned lo = v, hi = v;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UNSIGNED, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UNSIGNED, MPI_MAX, MPI_COMM_WORLD);
  return lo == hi;
#else
  (void)v;
  return 1;
#endif
}

void dist_gather(const void *mine, size_t n, void **all, size_t *total) {
  const int K = dist_size(), r = dist_rank();
  if (K == 1) {
    *all = fc_malloc(n ? n : 1);
    memcpy(*all, mine, n);
    *total = n;
    return;
  }
#ifdef LFP_MPI
  /* sizes first, then the bytes (in pieces of at most 1 GB per rank: counts are ints) */
  int64_t mn = (int64_t)n, *ns = r == 0 ? fc_malloc(sizeof(int64_t) * (size_t)K) : NULL;
  MPI_Gather(&mn, 1, MPI_INT64_T, ns, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  if (r == 0) {
    size_t tot = 0;
    for (int i = 0; i < K; i++) tot += (size_t)ns[i];
    char *buf = fc_malloc(tot ? tot : 1);
    memcpy(buf, mine, n);
    size_t off = n;
    for (int i = 1; i < K; i++) {
      for (size_t o = 0; o < (size_t)ns[i]; o += S_CHUNK) {
        const int k = (int)((size_t)ns[i] - o < S_CHUNK ? (size_t)ns[i] - o : S_CHUNK);
        MPI_Recv(buf + off + o, k, MPI_BYTE, i, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      }
      off += (size_t)ns[i];
    }
    free(ns);
    *all = buf;
    *total = tot;
  } else {
    for (size_t o = 0; o < n; o += S_CHUNK) {
      const int k = (int)(n - o < S_CHUNK ? n - o : S_CHUNK);
      MPI_Send((const char *)mine + o, k, MPI_BYTE, 0, 7, MPI_COMM_WORLD);
    }
    *all = NULL;
    *total = 0;
  }
#endif
}

void dist_bcast(void *buf, size_t n) {
#ifdef LFP_MPI
  if (!s_on || dist_size() == 1) return;
  for (size_t o = 0; o < n; o += S_CHUNK) {
    const int k = (int)(n - o < S_CHUNK ? n - o : S_CHUNK);
    MPI_Bcast((char *)buf + o, k, MPI_BYTE, 0, MPI_COMM_WORLD);
  }
#else
  (void)buf, (void)n;
#endif
}

void dist_barrier(void) {
#ifdef LFP_MPI
  if (s_on && dist_size() > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void dist_split(int total, int *lo, int *n) {
  const int64_t K = dist_size(), r = dist_rank();
  const int a = (int)((int64_t)total * r / K), b = (int)((int64_t)total * (r + 1) / K);
  *lo = a;
  *n = b - a;
}
