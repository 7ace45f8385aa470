/* video: the --video options that lfp eval, lfp sim and lfp replay share:
 * which episodes of a run become MP4 files (env_render.h draws and encodes
 * them), what each frame says, what the files are called, and what it cost.
 *
 * Videos are drawn after the episodes ran, from their recorded states, on
 * the renderer's own copy of the model: rendering never changes a rollout
 * (the digest is the same with and without --video).
 *
 * Example: 50 episodes of a policy from seed 100000, 4 of them as videos in dir
 *
 *   int eval_videos(const env_model *em, const pol_policy *p, const char *dir) {
 *     char err[512];
 *     pol_rollout_eval ev;
 *     if (pol_rollout_policy("example", em, p, p->flow->cfg.sampler, 0, 100000, 50, 2, 1, &ev, err, sizeof err))
 *       return fprintf(stderr, "%s\n", err), -1;              // record = 1: the trajectories are kept
 *     video_opts vo;
 *     video_opts_default(&vo);                                 // or cli_parse with VIDEO_CLI_OPTS(vo)
 *     vo.dir = dir;
 *     video_episode eps[50];
 *     for (int i = 0; i < 50; i++) video_episode_from_traj(&eps[i], &ev.traj[i], &ev.res[i], 100000 + (uint64_t)i);
 *     video_result vr;
 *     int rc = video_render(&vo, em, eps, 50, &vr, err, sizeof err);
 *     if (rc) fprintf(stderr, "%s\n", err);
 *     else video_print(stdout, dir, &vr);
 *     video_result_free(&vr);
 *     pol_rollout_eval_free(&ev, 50);
 *     return rc;
 *   }
 */
#ifndef LFP_VIDEO_H
#define LFP_VIDEO_H

#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "env.h"
#include "pol_rollout.h"

typedef struct {
  const char *dir;  /* NULL: no videos */
  int episodes;     /* how many to render */
  const char *size; /* "WxH" */
} video_opts;

#define VIDEO_CLI_OPTS(o)                                                                                              \
  {"--video", CLI_STR, &(o).dir,                                                                                       \
   "render episodes into this folder as MP4 (H.264), one per episode, named by seed and outcome "                     \
   "(seed100003_success.mp4, seed100004_fail.mp4)", NULL, 0, 0},                                                        \
      {"--video-episodes", CLI_INT, &(o).episodes,                                                                      \
       "episodes to render: half successes, half failures, the first of each by seed (filled from the other kind)",    \
       NULL, 1, 100000},                                                                                                \
      {"--size", CLI_STR, &(o).size, "video frame size WxH, even", NULL, 0, 0}

/* no videos; 4 episodes at 320x320 once --video is given */
void video_opts_default(video_opts *o);

/* One episode to draw: len + 1 states (the len states before each step,
 * then the final one), its outcome and its name. */
typedef struct {
  const double *states;      /* (len, state_dim) */
  const double *final_state; /* (state_dim) */
  const double *actions;     /* (len, action_dim), or NULL */
  int64_t len;
  int success;
  char name[64];             /* "seed100003", "demo_7" */
} video_episode;

/* an episode of pol_rollout_policy / lfp sim (len 0: nothing to draw) */
void video_episode_from_traj(video_episode *e, const pol_rollout_traj *tr, const pol_rollout_result *res, uint64_t seed);

typedef struct {
  char path[4200];
  char name[64];
  int success;
  int64_t frames;
} video_file;

typedef struct {
  int n;
  video_file *files;
  int width, height;
  double fps;
  int64_t frames;
  double draw_s, encode_s;   /* wall time spent drawing and encoding */
  char backend[160], encoder[32];
} video_result;

/* o's frame size into w, h, and its folder made (when missing); 0, or -1
 * with a sentence (a malformed or odd --size, a folder that cannot be) */
int video_prepare(const video_opts *o, int *w, int *h, char *err, size_t errsz);
/* The frames of one episode: the len + 1 states, then the last one held for
 * one second (control_hz frames) with the outcome written on it; the frame
 * rate is the task's control rate. */
int64_t video_frames(const env_model *em, int64_t len);

/* Render the chosen episodes of eps[0..n) (those with len > 0) into o->dir
 * (made if missing) as NAME_success.mp4 / NAME_fail.mp4. 0, or -1 with a
 * sentence (the files written before the failure stay). */
int video_render(const video_opts *o, const env_model *em, const video_episode *eps, int n,
                 video_result *out, char *err, size_t errsz);
/* "  rendered K videos to DIR (F frames at WxH, ...): X ms/frame drawing, Y ms/frame encoding" */
void video_print(FILE *f, const char *dir, const video_result *r);
/* ', "videos": [{"file", "episode", "success", "frames"}...], "video_size": [w, h],
 *  "video_fps", "video_ms_per_frame_draw", "video_ms_per_frame_encode", "video_backend", "video_encoder"' */
void video_json(FILE *f, const video_result *r);
void video_result_free(video_result *r);

/* What lfp report plots of a run's episodes: ', "traces": [...]' with the
 * first success and the first failure of eps (those with len > 0), each
 * {"episode", "success", "len", "actions": [[a_0...], ...] (len rows),
 * "coverage": [len + 1 values] on coverage tasks (the state before each step,
 * then the final one)}. */
void video_json_traces(FILE *f, const env_model *em, const video_episode *eps, int n);
/* ', "NAME": {"edges": [bins + 1], "counts": [bins]}': a histogram of n
 * sorted values on log-spaced bins from the least to the greatest (linear
 * when the least is not positive); nothing when n is 0 */
void video_json_hist(FILE *f, const char *name, const double *sorted, long n, int bins);

#endif
