/* env_video: RGB frames to an H.264 MP4 through libavcodec / libavformat
 * (see env_render.h). yuv420p for players and browsers, the moov atom at the
 * front (+faststart) so that a page can play the file as it loads. */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env_render.h"
#include "fc_base.h"

struct env_video {
  AVFormatContext *oc;
  AVCodecContext *cc;
  AVStream *st;
  AVFrame *frame;
  AVPacket *pkt;
  struct SwsContext *sws;
  int w, h, header;
  int64_t next_pts;
  char path[4096], part[4200];
};

static void s_averr(char *err, size_t errsz, const char *what, const char *path, int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof(buf));
  fc_set_err(err, errsz, "%s: %s (%s)", path, what, buf);
}

static void s_free(env_video *v) {
  if (!v) return;
  sws_freeContext(v->sws);
  av_packet_free(&v->pkt);
  av_frame_free(&v->frame);
  avcodec_free_context(&v->cc);
  if (v->oc) {
    if (v->oc->pb) avio_closep(&v->oc->pb);
    avformat_free_context(v->oc);
  }
  free(v);
}

/* send frame (NULL: flush) and write every packet the encoder has ready */
static int s_drain(env_video *v, const AVFrame *frame, char *err, size_t errsz) {
  int rc = avcodec_send_frame(v->cc, frame);
  if (rc < 0) return s_averr(err, errsz, "the encoder refused a frame", v->path, rc), -1;
  for (;;) {
    rc = avcodec_receive_packet(v->cc, v->pkt);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
    if (rc < 0) return s_averr(err, errsz, "encoding failed", v->path, rc), -1;
    av_packet_rescale_ts(v->pkt, v->cc->time_base, v->st->time_base);
    v->pkt->stream_index = v->st->index;
    rc = av_interleaved_write_frame(v->oc, v->pkt);
    if (rc < 0) return s_averr(err, errsz, "writing failed", v->part, rc), -1;
  }
}

env_video *env_video_open(const char *path, int width, int height, double fps, char *err, size_t errsz) {
  if (width < 16 || height < 16 || width > 4096 || height > 4096 || (width | height) & 1)
    return fc_set_err(err, errsz, "%s: a video of %d x %d pixels cannot be written: each side must be even, 16 to 4096",
                      path, width, height), NULL;
  if (!(fps >= 1 && fps <= 1000))
    return fc_set_err(err, errsz, "%s: a video at %g frames per second cannot be written (1 to 1000)", path, fps), NULL;
  if (strlen(path) >= 4096) return fc_set_err(err, errsz, "a video path is too long (%zu bytes)", strlen(path)), NULL;
  av_log_set_level(AV_LOG_ERROR); /* libx264's statistics are not lfp's output */
  const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) codec = avcodec_find_encoder(AV_CODEC_ID_H264);
  if (!codec) return fc_set_err(err, errsz, "%s: libavcodec has no H.264 encoder (install libavcodec59 from Debian)", path), NULL;
  env_video *v = fc_calloc(1, sizeof(*v));
  v->w = width;
  v->h = height;
  snprintf(v->path, sizeof(v->path), "%s", path);
  snprintf(v->part, sizeof(v->part), "%s.part", path);
  int rc = avformat_alloc_output_context2(&v->oc, NULL, "mp4", v->part);
  if (rc < 0 || !v->oc) {
    s_averr(err, errsz, "libavformat cannot write MP4", path, rc);
    s_free(v);
    return NULL;
  }
  v->st = avformat_new_stream(v->oc, NULL);
  v->cc = avcodec_alloc_context3(codec);
  v->frame = av_frame_alloc();
  v->pkt = av_packet_alloc();
  if (!v->st || !v->cc || !v->frame || !v->pkt) {
    fc_set_err(err, errsz, "%s: out of memory for the encoder", path);
    s_free(v);
    return NULL;
  }
  const AVRational rate = av_d2q(fps, 100000);
  v->cc->width = width;
  v->cc->height = height;
  v->cc->pix_fmt = AV_PIX_FMT_YUV420P;
  v->cc->time_base = av_inv_q(rate);
  v->cc->framerate = rate;
  v->cc->gop_size = 30;
  if (v->oc->oformat->flags & AVFMT_GLOBALHEADER) v->cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (!strcmp(codec->name, "libx264")) {
    av_opt_set(v->cc->priv_data, "preset", "veryfast", 0);
    av_opt_set(v->cc->priv_data, "crf", "23", 0);
  }
  v->st->time_base = v->cc->time_base;
  v->st->avg_frame_rate = rate;
  if ((rc = avcodec_open2(v->cc, codec, NULL)) < 0 ||
      (rc = avcodec_parameters_from_context(v->st->codecpar, v->cc)) < 0) {
    s_averr(err, errsz, "the H.264 encoder would not open", path, rc);
    s_free(v);
    return NULL;
  }
  v->frame->format = AV_PIX_FMT_YUV420P;
  v->frame->width = width;
  v->frame->height = height;
  if ((rc = av_frame_get_buffer(v->frame, 0)) < 0) {
    s_averr(err, errsz, "no memory for a frame", path, rc);
    s_free(v);
    return NULL;
  }
  v->sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL,
                          NULL);
  if (!v->sws) {
    fc_set_err(err, errsz, "%s: libswscale cannot convert RGB to yuv420p at %d x %d", path, width, height);
    s_free(v);
    return NULL;
  }
  if ((rc = avio_open(&v->oc->pb, v->part, AVIO_FLAG_WRITE)) < 0) {
    s_averr(err, errsz, "cannot write", v->part, rc);
    s_free(v);
    return NULL;
  }
  AVDictionary *opts = NULL;
  av_dict_set(&opts, "movflags", "+faststart", 0);
  rc = avformat_write_header(v->oc, &opts);
  av_dict_free(&opts);
  if (rc < 0) {
    s_averr(err, errsz, "cannot write the MP4 header", v->part, rc);
    avio_closep(&v->oc->pb);
    remove(v->part);
    s_free(v);
    return NULL;
  }
  v->header = 1;
  return v;
}

int env_video_frame(env_video *v, const unsigned char *rgb, char *err, size_t errsz) {
  int rc = av_frame_make_writable(v->frame);
  if (rc < 0) return s_averr(err, errsz, "no memory for a frame", v->path, rc), -1;
  const uint8_t *src[1] = {rgb};
  const int stride[1] = {3 * v->w};
  sws_scale(v->sws, src, stride, 0, v->h, v->frame->data, v->frame->linesize);
  v->frame->pts = v->next_pts++;
  return s_drain(v, v->frame, err, errsz);
}

const char *env_video_encoder(const env_video *v) { return v->cc->codec->name; }

int env_video_close(env_video *v, char *err, size_t errsz) {
  if (!v) return 0;
  int rc = 0;
  char why[8800];
  if (err) {
    if (s_drain(v, NULL, why, sizeof(why))) rc = -1;
    int ar = rc ? 0 : av_write_trailer(v->oc);
    if (ar < 0) s_averr(why, sizeof(why), "cannot finish the MP4", v->part, ar), rc = -1;
  }
  if (v->oc->pb && avio_closep(&v->oc->pb) < 0 && err && !rc)
    snprintf(why, sizeof(why), "%s: cannot finish writing", v->part), rc = -1;
  if (err && !rc && rename(v->part, v->path) != 0)
    snprintf(why, sizeof(why), "%s: cannot rename it to %s", v->part, v->path), rc = -1;
  if (!err || rc) remove(v->part);
  if (err && rc) fc_set_err(err, errsz, "%s", why);
  s_free(v);
  return rc;
}
