/* env_render: a task's scene as pictures, headless, and pictures as MP4.
 *
 * env_render draws a task at a flat state (env_get_state's vector) from the
 * task's own camera into an RGB buffer, with MuJoCo's renderer on an
 * off-screen OpenGL context that needs no display: EGL surfaceless on Mesa
 * (llvmpipe on a machine without a GPU, the GPU's driver where there is
 * one). The renderer keeps its own copy of the model and its own mjData, so
 * drawing never touches a rollout's state: a rollout gives the same digest
 * with and without pictures.
 *
 * env_video encodes frames to H.264 in an MP4 file through Debian's
 * libavcodec / libavformat (libx264 when present, else any H.264 encoder
 * libavcodec has), written to PATH.part and renamed at the end, so a file
 * with the final name is always a whole video.
 *
 * Process-wide state: env_video_open sets libav's log level to errors only
 * (libx264 prints statistics otherwise).
 *
 * Threads: an env_render belongs to the thread that made it (an OpenGL
 * context is current in one thread); env_video has no thread state.
 *
 * Example: one expert episode of pusht as a 256 x 256 video
 *
 *   int expert_video(const env_model *em, uint64_t seed, const char *path) {
 *     char err[512];
 *     env_render *r = env_render_new(em, 256, 256, err, sizeof err);
 *     if (!r) return fprintf(stderr, "%s\n", err), -1;
 *     env_video *v = env_video_open(path, 256, 256, env_control_hz(em), err, sizeof err);
 *     if (!v) return env_render_free(r), fprintf(stderr, "%s\n", err), -1;
 *     env_data *ed = env_data_new(em);
 *     env_reset(em, ed, seed);
 *     double *state = malloc(sizeof(double) * (size_t)env_state_dim(em)), act[ENV_MAX_ACTION];
 *     unsigned char *rgb = malloc(256 * 256 * 3);
 *     int rc = 0;
 *     for (;;) {
 *       env_get_state(em, ed, state);
 *       char text[64];
 *       snprintf(text, sizeof text, "step %d", env_steps(ed));
 *       rc = env_render_state(r, state, text, NULL, rgb, err, sizeof err) ||
 *            env_video_frame(v, rgb, err, sizeof err);
 *       if (rc || env_done(em, ed)) break;
 *       env_expert(em, ed, act);
 *       if ((rc = env_step(em, ed, act, err, sizeof err))) break;
 *     }
 *     if (env_video_close(v, rc ? NULL : err, sizeof err)) rc = -1;   // NULL: discard
 *     if (rc) fprintf(stderr, "%s\n", err);
 *     free(rgb);
 *     free(state);
 *     env_data_free(ed);
 *     env_render_free(r);
 *     return rc;
 *   }
 */
#ifndef ENV_RENDER_H
#define ENV_RENDER_H

#include <stddef.h>

#include "env.h"

/* ---------- pictures of a task ---------- */

typedef struct env_render env_render;

/* A renderer of em's scene at width x height pixels (each 16..4096, even:
 * H.264 frames have even sizes), from the task's camera (pusht from above,
 * the board filling the frame; lift, can and avoid oblique). NULL with a
 * sentence when no OpenGL context can be made (no EGL, no Mesa driver) or
 * the size is out of range. */
env_render *env_render_new(const env_model *em, int width, int height, char *err, size_t errsz);
void env_render_free(env_render *r);
/* Draw the scene at state into rgb (width * height * 3 bytes, the top row
 * first), with text written over it: left at the top left, right at the top
 * right (either NULL; lines split by '\n'). 0, or -1 with a sentence. */
int env_render_state(env_render *r, const double *state, const char *left, const char *right, unsigned char *rgb,
                     char *err, size_t errsz);
/* A renderer of any MuJoCo model (the user's own, lfp sim --model): from
 * its camera named camera, or with NULL MuJoCo's default free camera,
 * which frames the model; shadows on. Drawn with env_render_data. NULL
 * with a sentence (no such camera, no OpenGL, bad size). */
struct mjModel_;
struct mjData_;
env_render *env_render_new_model(const struct mjModel_ *m, const char *camera, int width, int height, char *err,
                                 size_t errsz);
/* Draw d (of the model the renderer was made for) into rgb as
 * env_render_state does; d is copied, never written. */
int env_render_data(env_render *r, const struct mjData_ *d, const char *left, const char *right, unsigned char *rgb,
                    char *err, size_t errsz);
/* "EGL surfaceless, llvmpipe (LLVM 15.0.6, 256 bits)": what draws */
const char *env_render_backend(const env_render *r);

/* ---------- frames to MP4 ---------- */

typedef struct env_video env_video;

/* An MP4 (H.264, yuv420p) at fps frames per second, written as PATH.part
 * until env_video_close. NULL with a sentence (no H.264 encoder, cannot
 * write the file, bad size or rate). */
env_video *env_video_open(const char *path, int width, int height, double fps, char *err, size_t errsz);
/* append one frame: width * height * 3 bytes of RGB, the top row first */
int env_video_frame(env_video *v, const unsigned char *rgb, char *err, size_t errsz);
/* Finish the file and rename it to PATH (err non-NULL), or discard it (err
 * NULL: PATH.part is removed). 0, or -1 with a sentence (nothing at PATH). */
int env_video_close(env_video *v, char *err, size_t errsz);
/* the encoder's name ("libx264") */
const char *env_video_encoder(const env_video *v);

#endif
