/* video: episodes to MP4 files for lfp eval / sim / replay (see video.h). */
#include "video.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "env_render.h"
#include "fc_base.h"

void video_opts_default(video_opts *o) {
  o->dir = NULL;
  o->episodes = 4;
  o->size = "320x320";
}

void video_episode_from_traj(video_episode *e, const pol_rollout_traj *tr, const pol_rollout_result *res, uint64_t seed) {
  e->states = tr->states;
  e->final_state = tr->final_state;
  e->actions = tr->actions;
  e->len = tr->len;
  e->success = res->success;
  snprintf(e->name, sizeof(e->name), "seed%llu", (unsigned long long)seed);
}

static int s_hold(const env_model *em) {
  const int h = (int)lround(env_control_hz(em));
  return h > 0 ? h : 1;
}

int64_t video_frames(const env_model *em, int64_t len) { return len + 1 + s_hold(em); }

static int s_size(const char *s, int *w, int *h) {
  char tail;
  return sscanf(s, "%dx%d%c", w, h, &tail) == 2 && *w > 0 && *h > 0 ? 0 : -1;
}

/* the episodes to draw: up to k, half successes and half failures, the
 * first of each kind by index, the rest from the other kind; in index order */
static int s_pick(const video_episode *eps, int n, int k, int *idx) {
  int ns = 0, nf = 0;
  for (int i = 0; i < n; i++)
    if (eps[i].len > 0) {
      if (eps[i].success) ns++;
      else nf++;
    }
  int kf = nf < k / 2 ? nf : k / 2;
  int ks = ns < k - kf ? ns : k - kf;
  if (kf < k - ks) kf = nf < k - ks ? nf : k - ks;
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (eps[i].len <= 0) continue;
    if (eps[i].success ? ks-- > 0 : kf-- > 0) idx[m++] = i;
  }
  return m;
}

/* the text at the top left of frame t of an episode */
static void s_caption(const env_model *em, env_data *ed, const video_episode *e, int64_t t, const double *state, char *buf,
                      size_t n) {
  env_set_state(em, ed, state);
  int k = snprintf(buf, n, "%s  step %lld/%d", e->name, (long long)(t < e->len ? t : e->len), env_horizon(em));
  if (env_has_coverage(em)) snprintf(buf + k, n - (size_t)k, "\ncoverage %.3f", env_coverage(em, ed));
  else snprintf(buf + k, n - (size_t)k, "\nreward %.3g", env_reward(em, ed));
}

int video_prepare(const video_opts *o, int *w, int *h, char *err, size_t errsz) {
  if (s_size(o->size, w, h))
    return fc_set_err(err, errsz, "--size '%s' is not WIDTHxHEIGHT (e.g. 320x320)", o->size), -1;
  if (*w < 16 || *h < 16 || *w > 4096 || *h > 4096 || (*w | *h) & 1)
    return fc_set_err(err, errsz, "--size '%s': each side must be even, 16 to 4096 pixels (H.264 frames)", o->size), -1;
  if (mkdir(o->dir, 0777) != 0 && errno != EEXIST)
    return fc_set_err(err, errsz, "--video: cannot make the folder %s (%s)", o->dir, strerror(errno)), -1;
  struct stat st;
  if (stat(o->dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return fc_set_err(err, errsz, "--video: %s is not a folder", o->dir), -1;
  return 0;
}

int video_render(const video_opts *o, const env_model *em, const video_episode *eps, int n,
                 video_result *out, char *err, size_t errsz) {
  memset(out, 0, sizeof(*out));
  int w, h;
  if (video_prepare(o, &w, &h, err, errsz)) return -1;
  env_render *r = env_render_new(em, w, h, err, errsz);
  if (!r) return -1;
  int *idx = fc_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
  const int m = s_pick(eps, n, o->episodes, idx);
  out->files = fc_calloc((size_t)(m > 0 ? m : 1), sizeof(video_file));
  out->width = w;
  out->height = h;
  out->fps = env_control_hz(em);
  snprintf(out->backend, sizeof(out->backend), "%s", env_render_backend(r));
  unsigned char *rgb = fc_malloc((size_t)w * (size_t)h * 3);
  env_data *ed = env_data_new(em);
  int rc = 0;
  for (int j = 0; j < m && !rc; j++) {
    const video_episode *e = &eps[idx[j]];
    video_file *vf = &out->files[out->n];
    snprintf(vf->name, sizeof(vf->name), "%s", e->name);
    snprintf(vf->path, sizeof(vf->path), "%s/%s_%s.mp4", o->dir, e->name, e->success ? "success" : "fail");
    vf->success = e->success;
    env_video *v = env_video_open(vf->path, w, h, out->fps, err, errsz);
    if (!v) {
      rc = -1;
      break;
    }
    if (!out->encoder[0]) snprintf(out->encoder, sizeof(out->encoder), "%s", env_video_encoder(v));
    const int sd = env_state_dim(em);
    const int64_t frames = video_frames(em, e->len);
    char caption[160];
    for (int64_t t = 0; t < frames && !rc; t++) {
      const double *state = t < e->len ? e->states + t * sd : e->final_state;
      if (t <= e->len) s_caption(em, ed, e, t, state, caption, sizeof(caption));
      double t0 = fc_now();
      rc = env_render_state(r, state, caption, t >= e->len ? (e->success ? "SUCCESS" : "FAIL") : NULL, rgb, err, errsz);
      double t1 = fc_now();
      if (!rc) rc = env_video_frame(v, rgb, err, errsz);
      out->draw_s += t1 - t0;
      out->encode_s += fc_now() - t1;
    }
    double t0 = fc_now();
    if (env_video_close(v, rc ? NULL : err, errsz)) rc = -1;
    out->encode_s += fc_now() - t0;
    if (!rc) {
      vf->frames = frames;
      out->frames += frames;
      out->n++;
    }
  }
  env_data_free(ed);
  free(rgb);
  free(idx);
  env_render_free(r);
  return rc;
}

void video_print(FILE *f, const char *dir, const video_result *r) {
  const double fr = r->frames > 0 ? (double)r->frames : 1;
  fprintf(f, "  rendered %d video%s to %s (%lld frames at %dx%d, %g fps; %s, %s): %.1f ms/frame drawing, %.1f ms/frame "
          "encoding\n", r->n, r->n == 1 ? "" : "s", dir, (long long)r->frames, r->width, r->height, r->fps, r->backend,
          r->encoder[0] ? r->encoder : "no encoder", 1e3 * r->draw_s / fr, 1e3 * r->encode_s / fr);
}

void video_json(FILE *f, const video_result *r) {
  const double fr = r->frames > 0 ? (double)r->frames : 1;
  fprintf(f, ", \"videos\": [");
  for (int i = 0; i < r->n; i++) {
    fprintf(f, "%s{\"file\": ", i ? ", " : "");
    fc_json_str(f, r->files[i].path);
    fprintf(f, ", \"episode\": ");
    fc_json_str(f, r->files[i].name);
    fprintf(f, ", \"success\": %s, \"frames\": %lld}", r->files[i].success ? "true" : "false",
            (long long)r->files[i].frames);
  }
  fprintf(f, "], \"video_size\": [%d, %d], \"video_fps\": ", r->width, r->height);
  fc_json_num(f, r->fps);
  fprintf(f, ", \"video_ms_per_frame_draw\": ");
  fc_json_num(f, 1e3 * r->draw_s / fr);
  fprintf(f, ", \"video_ms_per_frame_encode\": ");
  fc_json_num(f, 1e3 * r->encode_s / fr);
  fprintf(f, ", \"video_backend\": ");
  fc_json_str(f, r->backend);
  fprintf(f, ", \"video_encoder\": ");
  fc_json_str(f, r->encoder);
}

void video_result_free(video_result *r) {
  free(r->files);
  memset(r, 0, sizeof(*r));
}

void video_json_traces(FILE *f, const env_model *em, const video_episode *eps, int n) {
  int pick[2] = {-1, -1};
  for (int i = 0; i < n; i++)
    if (eps[i].len > 0 && pick[eps[i].success ? 0 : 1] < 0) pick[eps[i].success ? 0 : 1] = i;
  const int A = env_action_dim(em), sd = env_state_dim(em);
  env_data *ed = env_data_new(em);
  fprintf(f, ", \"traces\": [");
  int first = 1;
  for (int k = 0; k < 2; k++) {
    if (pick[k] < 0) continue;
    const video_episode *e = &eps[pick[k]];
    fprintf(f, "%s{\"episode\": ", first ? "" : ", ");
    first = 0;
    fc_json_str(f, e->name);
    fprintf(f, ", \"success\": %s, \"len\": %lld, \"actions\": [", e->success ? "true" : "false", (long long)e->len);
    for (int64_t t = 0; e->actions && t < e->len; t++) {
      fprintf(f, "%s[", t ? ", " : "");
      for (int j = 0; j < A; j++) fprintf(f, "%s%.5g", j ? ", " : "", e->actions[t * A + j]);
      fprintf(f, "]");
    }
    fprintf(f, "]");
    if (env_has_coverage(em)) {
      fprintf(f, ", \"coverage\": [");
      for (int64_t t = 0; t <= e->len; t++) {
        env_set_state(em, ed, t < e->len ? e->states + t * sd : e->final_state);
        fprintf(f, "%s%.4f", t ? ", " : "", env_coverage(em, ed));
      }
      fprintf(f, "]");
    }
    fprintf(f, "}");
  }
  fprintf(f, "]");
  env_data_free(ed);
}

void video_json_hist(FILE *f, const char *name, const double *v, long n, int bins) {
  if (n <= 0 || bins < 1) return;
  const double lo = v[0], hi = v[n - 1] > v[0] ? v[n - 1] : v[0] * 1.001 + 1e-9;
  const int lg = lo > 0;
  double *edges = fc_malloc(sizeof(double) * (size_t)(bins + 1));
  long *counts = fc_calloc((size_t)bins, sizeof(long));
  for (int b = 0; b <= bins; b++)
    edges[b] = lg ? lo * pow(hi / lo, (double)b / bins) : lo + (hi - lo) * b / bins;
  for (long i = 0, b = 0; i < n; i++) {
    while (b < bins - 1 && v[i] >= edges[b + 1]) b++;
    counts[b]++;
  }
  fprintf(f, ", ");
  fc_json_str(f, name);
  fprintf(f, ": {\"edges\": [");
  for (int b = 0; b <= bins; b++) fprintf(f, "%s%.4g", b ? ", " : "", edges[b]);
  fprintf(f, "], \"counts\": [");
  for (int b = 0; b < bins; b++) fprintf(f, "%s%ld", b ? ", " : "", counts[b]);
  fprintf(f, "]}");
  free(edges);
  free(counts);
}
