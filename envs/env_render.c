/* env_render: MuJoCo's renderer on an EGL surfaceless context (see
 * env_render.h). The recipe is ../shared/docs/mujoco.md "Headless
 * rendering": a surfaceless Mesa display, a pbuffer-capable config, the
 * desktop OpenGL API, a context made current without a surface; MuJoCo then
 * renders into its own off-screen framebuffer, whose size is the model's
 * vis.global.offwidth / offheight (set on the renderer's copy). */
#include "env_render.h"

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <mujoco/mujoco.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env_task.h"
#include "fc_base.h"

struct env_render {
  const env_model *em;
  mjModel *m;     /* the task's model, with the renderer's visual settings */
  env_data *ed;   /* the renderer's own state (a task's renderer) */
  mjData *d;      /* the renderer's own data (a model's renderer, env_render_new_model) */
  EGLContext ctx;
  mjvScene scn;
  mjvCamera cam;
  mjvOption opt;
  mjrContext con;
  int w, h;
  unsigned char *flip; /* one frame as GL reads it, bottom row first */
  char backend[160];
};

/* one EGL display per process, initialized once and never terminated (other
 * renderers may still hold contexts on it) */
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static EGLDisplay s_dpy = EGL_NO_DISPLAY;
static char s_dpy_err[256];

static void s_display_init(void) {
  PFNEGLGETPLATFORMDISPLAYEXTPROC get = (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
  if (!get) {
    snprintf(s_dpy_err, sizeof(s_dpy_err), "EGL has no eglGetPlatformDisplayEXT (install Mesa's libegl-mesa0)");
    return;
  }
  EGLDisplay d = get(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
  EGLint major, minor;
  if (d == EGL_NO_DISPLAY || !eglInitialize(d, &major, &minor)) {
    snprintf(s_dpy_err, sizeof(s_dpy_err),
             "EGL could not open a surfaceless display (error 0x%x; Mesa's libegl-mesa0 and libgl1-mesa-dri are needed)",
             (unsigned)eglGetError());
    return;
  }
  s_dpy = d;
}

/* the context, the model's copy with the renderer's settings, the scene;
 * the camera is set by the caller */
static env_render *s_new(const mjModel *model, int shadows, int width, int height, char *err, size_t errsz) {
  if (width < 16 || height < 16 || width > 4096 || height > 4096 || (width | height) & 1)
    return fc_set_err(err, errsz, "a picture of %d x %d pixels cannot be drawn: each side must be even, 16 to 4096",
                      width, height), NULL;
  pthread_once(&s_once, s_display_init);
  if (s_dpy == EGL_NO_DISPLAY) return fc_set_err(err, errsz, "%s", s_dpy_err), NULL;
  static const EGLint attrs[] = {EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_ALPHA_SIZE, 8,
                                 EGL_DEPTH_SIZE, 24, EGL_STENCIL_SIZE, 8, EGL_SURFACE_TYPE, EGL_PBUFFER_BIT,
                                 EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE};
  EGLConfig cfg;
  EGLint n = 0;
  if (!eglChooseConfig(s_dpy, attrs, &cfg, 1, &n) || n < 1)
    return fc_set_err(err, errsz, "EGL has no RGBA8 configuration with depth and stencil for OpenGL"), NULL;
  if (!eglBindAPI(EGL_OPENGL_API)) return fc_set_err(err, errsz, "EGL does not offer desktop OpenGL"), NULL;
  EGLContext ctx = eglCreateContext(s_dpy, cfg, EGL_NO_CONTEXT, NULL);
  if (ctx == EGL_NO_CONTEXT)
    return fc_set_err(err, errsz, "EGL could not create an OpenGL context (error 0x%x)", (unsigned)eglGetError()), NULL;
  if (!eglMakeCurrent(s_dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx)) {
    eglDestroyContext(s_dpy, ctx);
    return fc_set_err(err, errsz, "EGL could not make a context current without a surface (error 0x%x)",
                      (unsigned)eglGetError()), NULL;
  }
  env_render *r = fc_calloc(1, sizeof(*r));
  r->ctx = ctx;
  r->w = width;
  r->h = height;
  r->m = mj_copyModel(NULL, model);
  r->m->vis.global.offwidth = width;
  r->m->vis.global.offheight = height;
  r->m->vis.quality.offsamples = 2;
  r->m->vis.quality.shadowsize = 1024; /* MuJoCo default 4096: a 4x smaller map draws lift and can about 3x faster on llvmpipe */
  /* a soft headlight and no specular highlights: the tasks' top-down light
   * washes flat colours out otherwise (mujoco.md) */
  for (int i = 0; i < 3; i++) {
    r->m->vis.headlight.ambient[i] = 0.25f;
    r->m->vis.headlight.diffuse[i] = 0.3f;
    r->m->vis.headlight.specular[i] = 0.0f;
  }
  for (int i = 0; i < r->m->nlight; i++)
    for (int k = 0; k < 3; k++) r->m->light_specular[3 * i + k] = 0.0f;
  mjv_defaultScene(&r->scn);
  mjv_makeScene(r->m, &r->scn, 2000);
  r->scn.flags[mjRND_SHADOW] = (mjtByte)(shadows != 0);
  mjv_defaultOption(&r->opt);
  mjv_defaultCamera(&r->cam);
  mjr_defaultContext(&r->con);
  mjr_makeContext(r->m, &r->con, height >= 400 ? mjFONTSCALE_150 : mjFONTSCALE_100);
  mjr_setBuffer(mjFB_OFFSCREEN, &r->con);
  if (r->con.currentBuffer != mjFB_OFFSCREEN) {
    env_render_free(r);
    return fc_set_err(err, errsz, "MuJoCo could not make its off-screen framebuffer of %d x %d", width, height), NULL;
  }
  r->flip = fc_malloc((size_t)width * (size_t)height * 3);
  const char *vendor = eglQueryString(s_dpy, EGL_VENDOR);
  snprintf(r->backend, sizeof(r->backend), "EGL surfaceless (%s)", vendor ? vendor : "unknown vendor");
  return r;
}

env_render *env_render_new(const env_model *em, int width, int height, char *err, size_t errsz) {
  const env_view *v = &em->task->view;
  env_render *r = s_new(em->m, v->shadows, width, height, err, errsz);
  if (!r) return NULL;
  r->em = em;
  r->ed = env_data_new(em);
  r->cam.type = mjCAMERA_FREE;
  for (int i = 0; i < 3; i++) r->cam.lookat[i] = v->lookat[i];
  r->cam.distance = v->distance;
  r->cam.azimuth = v->azimuth;
  r->cam.elevation = v->elevation;
  return r;
}

env_render *env_render_new_model(const mjModel *m, const char *camera, int width, int height, char *err, size_t errsz) {
  int cam = -1;
  if (camera && (cam = mj_name2id(m, mjOBJ_CAMERA, camera)) < 0)
    return fc_set_err(err, errsz, "the model has no camera named '%s' (it has %d camera%s)", camera, m->ncam,
                      m->ncam == 1 ? "" : "s"), NULL;
  env_render *r = s_new(m, 1, width, height, err, errsz);
  if (!r) return NULL;
  r->d = mj_makeData(r->m);
  if (cam >= 0) {
    r->cam.type = mjCAMERA_FIXED;
    r->cam.fixedcamid = cam;
  } else {
    mjv_defaultFreeCamera(r->m, &r->cam); /* framing the model (its statistic's centre and extent) */
  }
  return r;
}

void env_render_free(env_render *r) {
  if (!r) return;
  eglMakeCurrent(s_dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, r->ctx);
  mjr_freeContext(&r->con);
  mjv_freeScene(&r->scn);
  env_data_free(r->ed);
  if (r->d) mj_deleteData(r->d);
  mj_deleteModel(r->m);
  eglMakeCurrent(s_dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
  eglDestroyContext(s_dpy, r->ctx);
  free(r->flip);
  free(r);
}

const char *env_render_backend(const env_render *r) { return r->backend; }

/* the scene of d with the text over it, into rgb (top row first) */
static int s_draw(env_render *r, mjData *d, const char *left, const char *right, unsigned char *rgb, char *err,
                  size_t errsz) {
  mjrRect vp = {0, 0, r->w, r->h};
  mjv_updateScene(r->m, d, &r->opt, NULL, &r->cam, mjCAT_ALL, &r->scn);
  mjr_render(vp, &r->scn, &r->con);
  if (left && *left) mjr_overlay(mjFONT_NORMAL, mjGRID_TOPLEFT, vp, left, NULL, &r->con);
  if (right && *right) mjr_overlay(mjFONT_BIG, mjGRID_TOPRIGHT, vp, right, NULL, &r->con);
  mjr_readPixels(r->flip, NULL, vp, &r->con);
  const size_t row = (size_t)r->w * 3;
  for (int y = 0; y < r->h; y++) memcpy(rgb + (size_t)y * row, r->flip + (size_t)(r->h - 1 - y) * row, row);
  (void)err, (void)errsz;
  return 0;
}

static int s_current(env_render *r, char *err, size_t errsz) {
  if (eglMakeCurrent(s_dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, r->ctx)) return 0;
  return fc_set_err(err, errsz, "EGL could not make the renderer's context current (error 0x%x)",
                    (unsigned)eglGetError()), -1;
}

int env_render_state(env_render *r, const double *state, const char *left, const char *right, unsigned char *rgb,
                     char *err, size_t errsz) {
  FC_ASSERT(r->ed);
  if (s_current(r, err, errsz)) return -1;
  env_set_state(r->em, r->ed, state); /* mj_forward: positions for drawing */
  return s_draw(r, r->ed->d, left, right, rgb, err, errsz);
}

int env_render_data(env_render *r, const mjData *d, const char *left, const char *right, unsigned char *rgb, char *err,
                    size_t errsz) {
  FC_ASSERT(r->d);
  if (s_current(r, err, errsz)) return -1;
  mj_copyData(r->d, r->m, d); /* the caller's data is only read */
  mj_forward(r->m, r->d);
  return s_draw(r, r->d, left, right, rgb, err, errsz);
}
