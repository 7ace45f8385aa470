/* pol: action-conditional flow policies. The last To normalized observation
 * frames condition a flow chain (LFM with N blocks, FM with one, or the MSE
 * regression baseline through the same code) that samples a chunk of Tp
 * normalized actions; the first Ta are executed before replanning. Actions
 * are unnormalized and clipped to the action bounds (clips are counted);
 * pol_train sets the bounds to the training split's action range per
 * dimension, unless its config overrides them.
 *
 * A pol_policy is read-only after loading and serves any number of rollouts,
 * each with its own pol_data (observation history, action queue, scratch,
 * RNG); pol_act allocates nothing.
 *
 * Normalized observation values are clipped to [-POL_OBS_CLIP,
 * POL_OBS_CLIP] (the training data lie in [-1, 1] under min-max
 * normalization): an observation far outside the demonstrations saturates
 * instead of driving the network to overflow (a lift quaternion component
 * that varies by 1e-4 in the demonstrations is scaled by about 16000).
 * The sampler's state is bounded (fc_ode_ws.bound = POL_STATE_BOUND, in
 * normalized units, where the data lie in [-1, 1] and the noise beyond 8 has
 * probability 1e-15): a velocity field that diverges from an observation far
 * from the demonstrations (an MLP is near-linear away from its data) is
 * caught before it overflows, and the chunk is refused like a non-finite one
 * (an error, never a command: a diverged chunk is not clipped into the
 * action bounds); the clamps are counted (state_clamped).
 * A non-finite observation (or one beyond float32's range once normalized)
 * is refused with an error and changes nothing; a sampled chunk with a
 * non-finite action is an error, never a command (nothing is clipped to a
 * bound, the queue stays empty). A caller that gets -1 must not act on the
 * output: stop the robot, or hold, as its task demands.
 *
 * Example: a controller loop; read_obs and send fill and take the robot's
 * observation (the keys concatenated) and command
 *
 *   int control(const char *path, int steps, void (*read_obs)(double *), void (*send)(const double *)) {
 *     char err[512];
 *     pol_policy *p = pol_load(path, err, sizeof err);
 *     if (!p) return fprintf(stderr, "%s\n", err), -1;
 *     pol_data *pd = pol_data_new(p, 100000);        // the sampler's seed
 *     double obs[FC_NORM_MAX_DIM], action[POL_MAX_ACTION];
 *     int rc = 0;
 *     pol_reset(pd, 100000);                         // each episode
 *     for (int t = 0; t < steps && rc == 0; t++) {
 *       read_obs(obs);                               // p->meta.obs_dim values
 *       rc = pol_act(p, pd, obs, action, err, sizeof err);
 *       if (rc) fprintf(stderr, "%s: holding\n", err); // never act on a refused step
 *       else send(action);                           // p->meta.action_dim values, within the bounds
 *     }
 *     pol_data_free(pd);
 *     pol_free(p);
 *     return rc;
 *   }
 */
#ifndef POL_H
#define POL_H

#include <stddef.h>
#include <stdint.h>

#include "fc_ae.h"
#include "fc_norm.h"
#include "fc_flow.h"

#define POL_MAX_KEYS 8
#define POL_MAX_ACTION 16
#define POL_ENV_ARGS_MAX 1024
#ifndef POL_OBS_CLIP
#define POL_OBS_CLIP 5.0f /* bound on normalized observation values */
#endif
#define POL_STATE_BOUND 8.0f /* bound on the sampler's state (normalized actions lie in [-1, 1]) */

typedef enum { POL_LFM = 0, POL_FM = 1, POL_MSE = 2, POL_DFM = 3 } pol_method; /* dfm: Diffusion Flow Matching */

/* What inference needs besides the networks and the statistics.
 * Saved as section "pol.meta" (checkpoint format 2, host byte order, see
 * fc_ckpt.h), field by field, never as this struct: u32 section version (1),
 * i32 method, To, Tp, Ta, obs_dim, action_dim, nkeys, then per key a string
 * (u32 length, bytes) and an i32 dim, then f32 action_low[action_dim],
 * action_high[action_dim], string env_args, string version, f64 control_hz.
 * Loading bounds every count (To <= 64, Tp and Ta <= 256, obs_dim <=
 * FC_NORM_MAX_DIM, action_dim <= POL_MAX_ACTION, nkeys <= POL_MAX_KEYS,
 * strings shorter than their fields) and checks the parts against each other
 * before the network is allocated. Format-1 files (lfp up to commit a28839e:
 * this struct written raw, 1752 bytes on x86-64) still load; writing always
 * produces format 2. */
typedef struct {
  int32_t method;                   /* pol_method */
  int32_t To, Tp, Ta;               /* observation frames, predicted and executed actions */
  int32_t obs_dim, action_dim;
  int32_t nkeys;
  char keys[POL_MAX_KEYS][64];      /* observation keys, in the order concatenated */
  int32_t key_dims[POL_MAX_KEYS];
  float action_low[POL_MAX_ACTION], action_high[POL_MAX_ACTION]; /* finite, low <= high
                                     (equal: a dimension the demonstrations held constant) */
  char env_args[POL_ENV_ARGS_MAX];  /* the task the policy was trained on (JSON) */
  char version[16];                 /* lfp version that trained it */
  double control_hz;
} pol_meta;

/* How a distilled policy was made (lfp distill; fc_train_config's teacher):
 * saved as section "pol.distill" when present: u32 section version (2),
 * string teacher, u32 teacher_crc, i32 teacher_blocks, teacher_sampler,
 * teacher_steps, teacher_nfe, i64 steps, i32 batch, u64 seed, f32 lr,
 * i64 pairs (version 1 ends before pairs: fresh pairs, 0). A policy without
 * the section was trained, not distilled. */
typedef struct {
  int present;
  char teacher[1024];               /* the teacher's file, as given to lfp distill */
  uint32_t teacher_crc;             /* CRC-32 of the teacher's parameters (pol_params_crc) */
  int32_t teacher_blocks, teacher_sampler, teacher_steps, teacher_nfe; /* its chain and sampler */
  int64_t steps;                    /* distillation steps over all blocks */
  int32_t batch;
  uint64_t seed;
  float lr;
  int64_t pairs;                    /* teacher pairs per block; 0: fresh every step */
} pol_distill;

/* Where a policy came from (lfp train, lfp distill): its training data, run
 * and command line, what `lfp info` and `lfp report` show. Saved as section
 * "pol.origin" when present: u32 section version (1), string data, string
 * data_sha256, i64 demos, train_windows, valid_windows, u64 seed, i64 steps,
 * i32 batch, f32 lr, f64 train_s, string command. A file without the section
 * (lfp before it, or a policy built in code) has present 0. */
typedef struct {
  int present;
  char data[1024];                  /* the dataset, as given to the command */
  char data_sha256[65];             /* SHA-256 of its bytes, hex (sha256sum's) */
  int64_t demos, train_windows, valid_windows;
  uint64_t seed;                    /* of initialization, minibatches, noise, split */
  int64_t steps;                    /* optimizer steps over all blocks */
  int32_t batch;
  float lr;                         /* peak learning rate */
  double train_s;                   /* training seconds (rollouts excluded); 0 until the run ends */
  char command[2048];               /* the command line */
} pol_origin;

/* A latent policy (lfp train --latent d) samples its flow in the d
 * standardized latent dimensions of an autoencoder over normalized action
 * chunks (fc_ae.h) and decodes every sample into a chunk; saved as section
 * "pol.latent" (fc_ae_save's layout) when present. Real-time chunking with
 * guidance needs the flow in action space: a latent policy blends its new
 * chunk towards the old plan instead (POL_RTC_BLENDED). */
typedef struct {
  pol_meta meta;
  fc_norm obs_norm, act_norm;
  fc_lfm *flow;                     /* dx = Tp * A (latent: d), dc = To * obs_dim */
  fc_ae *latent;                    /* NULL, or the autoencoder (dx Tp * A, dz d) the flow samples in */
  pol_distill distill;              /* present: a distilled student */
  pol_origin origin;                /* present: how it was trained */
} pol_policy;

/* A pol_meta from its parts: nkeys observation keys (names[k] of dims[k]
 * values, obs_dim their sum), action_dim actions bounded to [-1, 1] (set
 * action_low / action_high after), env_args (NULL: "{}"), this lfp's
 * version and control_hz. 0, or -1 with a sentence when a count is out of
 * range or a string too long for its field. */
int pol_meta_init(pol_meta *m, pol_method method, int To, int Tp, int Ta, int nkeys, const char *const *names,
                  const int *dims, int action_dim, const char *env_args, double control_hz, char *err, size_t errsz);

const char *pol_method_name(pol_method m);
int pol_method_parse(const char *s);

/* A policy from its parts (the flow is owned by the policy afterwards). */
pol_policy *pol_new(const pol_meta *meta, const fc_norm *obs_norm, const fc_norm *act_norm, fc_lfm *flow,
                    char *err, size_t errsz);
/* The same for a latent policy: the flow samples in the latent of ae (owned
 * by the policy afterwards, also on failure); ae NULL is pol_new. */
pol_policy *pol_new_latent(const pol_meta *meta, const fc_norm *obs_norm, const fc_norm *act_norm, fc_lfm *flow,
                           fc_ae *ae, char *err, size_t errsz);
void pol_free(pol_policy *p);
/* Its network for people: fc_net_describe's line, and for a latent policy
 * ", flowing in a latent of d values (autoencoder width W)". */
void pol_describe(const pol_policy *p, char *out, size_t n);
/* Add the policy's sections to a checkpoint of kind "policy". */
void pol_save(const pol_policy *p, struct fc_ckpt_writer *w);
int pol_save_file(const pol_policy *p, const char *path, char *err, size_t errsz);
/* Rebuild from a checkpoint (format 1 or 2), checking every part against the
 * others; NULL and a sentence naming the file and the section otherwise. */
pol_policy *pol_load_ckpt(const struct fc_ckpt *ck, const char *path, char *err, size_t errsz);
pol_policy *pol_load(const char *path, char *err, size_t errsz);
/* The metadata through functions, for foreign-function callers (Python's
 * ctypes) that cannot read pol_meta's layout: horizons and sizes; key k's
 * name and values (k in 0..nkeys-1, else NULL and 0); the method's name. */
void pol_dims(const pol_policy *p, int *To, int *Tp, int *Ta, int *obs_dim, int *action_dim);
int pol_nkeys(const pol_policy *p);
const char *pol_key_name(const pol_policy *p, int k);
int pol_key_dim(const pol_policy *p, int k);
const char *pol_method_of(const pol_policy *p);
double pol_control_hz(const pol_policy *p);
/* CRC-32 of the flow's parameters: identifies a teacher. */
uint32_t pol_params_crc(const pol_policy *p);
/* Network evaluations per chunk with (s, steps) (steps <= 0: the trained ones). */
int pol_nfe(const pol_policy *p, fc_sampler s, int steps);

/* A rollout's state: observation history, action queue, the last chunk
 * (for real-time chunking), scratch, RNG and counters. Opaque: its fields
 * are pol_impl.h's, read through the functions below. */
typedef struct pol_data pol_data;

pol_data *pol_data_new(const pol_policy *p, uint64_t seed);
void pol_data_free(pol_data *pd);
/* New episode: empty history, queue and last chunk, RNG reseeded. */
void pol_reset(pol_data *pd, uint64_t seed);
/* New episode without reseeding: the RNG stream continues (the node's
 * reset without a seed). */
void pol_new_episode(pol_data *pd);
/* The sampler and steps per block chunks are sampled with (s < 0: the
 * trained sampler, steps <= 0: the trained steps); default: the policy's
 * trained setting. */
void pol_set_sampler(const pol_policy *p, pol_data *pd, fc_sampler s, int steps);
/* What a rollout has done since pol_data_new (pol_reset keeps counting). */
typedef struct {
  int64_t chunks;         /* chunks sampled */
  int64_t clipped;        /* action values clipped to the bounds */
  int64_t obs_clipped;    /* normalized observation values clipped to +-POL_OBS_CLIP */
  int64_t state_clamped;  /* sampler state values clamped to +-POL_STATE_BOUND */
} pol_counts;
pol_counts pol_data_counts(const pol_data *pd);
/* Frames observed this episode, and actions left in the queue (pol_act
 * samples a chunk when it is 0). */
int pol_data_frames(const pol_data *pd);
/* The rollout's random stream (pol_reset seeds it): for pol_sample_batch,
 * so that a node session's batches follow its seed. */
fc_rng *pol_data_rng(pol_data *pd);
int pol_data_queued(const pol_data *pd);
/* Feed the newest observation (obs_dim values, the keys concatenated) and
 * get the action to execute now (action_dim values); a chunk is sampled
 * whenever the queue is empty. At the start of an episode the first frame
 * fills the whole history, as robomimic pads its windows. pol_act =
 * pol_observe, then pol_sample when the queue is empty, then the queue's
 * next action. 0, or -1 with a sentence in err (a refused observation, or a
 * non-finite chunk); on error action is not written, an observation error
 * leaves pd as it was and a chunk error leaves the queue empty. */
int pol_act(const pol_policy *p, pol_data *pd, const double *obs, double *action, char *err, size_t errsz);

/* 0 when obs (obs_dim values) is finite and stays finite once normalized in
 * float32; else -1 and a sentence naming the key and value. pol_observe
 * checks this itself; it is public for callers that must check several
 * frames before changing anything (the node). */
int pol_check_obs(const pol_policy *p, const double *obs, char *err, size_t errsz);

/* The parts of pol_act, for callers that keep their own queue (the ZeroMQ
 * node): push the newest frame into the history (0, or -1 from
 * pol_check_obs, the history unchanged); forget the history and the queue
 * (the RNG stream and the last chunk, which real-time chunking continues, stay); sample one chunk from the current history into
 * actions (Ta x A, unnormalized, clipped to the bounds), returning the number
 * of values clipped, or -1 with a sentence when a sampled value is not finite
 * (then actions is not written). */
int pol_observe(const pol_policy *p, pol_data *pd, const double *obs, char *err, size_t errsz);
void pol_forget(pol_data *pd);
int pol_sample(const pol_policy *p, pol_data *pd, double *actions, char *err, size_t errsz);
/* pol_sample keeping the first n (1..Tp) of the Tp predicted actions instead
 * of Ta: a caller whose next chunk lands late (a slow network) asks for more
 * than Ta so that it has actions to execute until then. */
int pol_sample_n(const pol_policy *p, pol_data *pd, int n, double *actions, char *err, size_t errsz);

/* Batched sampling: B independent observation histories, one chunk each,
 * from one batched network evaluation per solver step (an sgemm over B rows
 * instead of B sgemv calls: several times the chunks per second of B
 * pol_sample calls). frames (B, nf, obs_dim) holds each row's nf >= 1 raw
 * frames, oldest first: the history pol_forget + nf pol_observe calls would
 * build (the last To count; fewer are padded with the first). The noise is
 * drawn from rng row by row, as B successive pol_sample calls draw it, so
 * for flows row r equals the r-th of those calls up to float rounding (a
 * product over B rows rounds differently from one over 1); DFM's sampler
 * draws its steps' noise for the whole batch. Writes the first n (1..Tp)
 * actions of each row's chunk to actions (B, n, A), unnormalized and
 * clipped to the bounds, and returns the values clipped; -1 with a sentence
 * naming the row for a refused frame (nothing drawn) or a non-finite or
 * diverged chunk (nothing written). pol_batch holds the scratch of batches
 * up to max_batch rows (B <= max_batch); it is one caller's at a time. */
typedef struct pol_batch pol_batch;
pol_batch *pol_batch_new(const pol_policy *p, int max_batch);
void pol_batch_free(pol_batch *b);
int pol_sample_batch(const pol_policy *p, pol_batch *b, const double *frames, int B, int nf, fc_sampler s, int steps,
                     fc_rng *rng, int n, double *actions, char *err, size_t errsz);
/* normalized observation values clipped to +-POL_OBS_CLIP in all batches */
int64_t pol_batch_obs_clipped(const pol_batch *b);

/* Real-time chunking (RTC, arXiv 2506.07339): the next chunk is sampled to
 * continue the one executing. The new chunk's step j is the previous
 * chunk's step j + index (index: the step of the previous chunk executing
 * when the observation was taken); its first `delay` actions (those that
 * run before the reply can land) are frozen to the previous chunk's, and
 * the rest of the overlap is pulled towards it with weights decaying to 0
 * (pol_rtc_weights: 1 for j < delay, then LeRobot's EXP schedule
 * c expm1(c) / (e - 1), c falling linearly to 0 at the overlap's end).
 * Flows with more than one Euler step are guided (fc_lfm_sample_guided,
 * beta: the largest guidance weight); a one-step policy (a distilled
 * student), which has no solver steps to guide, and a latent policy, whose
 * flow is not in action space, are blended with the same weights. Without a previous chunk of this episode, with index outside
 * 0..Tp-1 or for DFM / MSE policies it is pol_sample_n (how = POL_RTC_NONE).
 * Writes the chunk's first n (1..Tp) actions; returns as pol_sample. */
typedef struct {
  int delay, index;
  float beta; /* <= 0: POL_RTC_BETA */
} pol_rtc;
#define POL_RTC_BETA 5.0f
enum { POL_RTC_NONE = 0, POL_RTC_GUIDED = 1, POL_RTC_BLENDED = 2 };
int pol_sample_rtc(const pol_policy *p, pol_data *pd, fc_guide_ws *gws, const pol_rtc *r, int n, double *actions,
                   int *how, char *err, size_t errsz);
/* the per-step weights (Tp values) described above */
void pol_rtc_weights(int Tp, int delay, int index, float *w);

#endif
