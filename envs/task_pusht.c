/* pusht: the planar Push-T analog (Diffusion Policy). A T block is pushed by
 * a round pusher to a fixed goal pose on a 512 x 512 board.
 *
 * Units: metres, with 1 px of the original = 1 mm: the board is
 * [0, 0.512]^2, the T is a crossbar 0.120 x 0.030 over a stem 0.030 x 0.090,
 * the pusher a disc of radius 0.015. The block frame's origin is the T's
 * "centre of gravity" as Diffusion Policy defines it (the mean of the two
 * rectangles' centres: 0.045 below the top edge, on the axis); its angle is
 * the rotation of the upright T (crossbar at +y) about z. The block moves on
 * slide-x, slide-y and hinge-z joints at that origin with heavy damping and no
 * gravity (quasi-static: it stops as soon as it is not pushed); walls at the
 * board's edges keep it on the board. The pusher is on slide x/y joints
 * (range [0, 0.512]), mass 1 kg, with a PD servo (kp 100 N/m, kv 20 N s/m:
 * critically damped, 0.1 s; force limited to 40 N). Block damping: slides
 * 5 N s/m, hinge 0.01 N m s (about 0.045 m radius of gyration); 0.09 kg.
 * 5 ms physics, 10 Hz control, horizon 300.
 *
 * Action (2, in [-1, 1]): the ABSOLUTE pusher target,
 *   target = 0.256 + 0.256 * a   (a = -1: board edge 0, a = +1: edge 0.512).
 * Observations (metres, radians): agent_pos (pusher x, y), block_pose (x, y,
 * angle wrapped to (-pi, pi]), block_keypoints (the T's 8 outline corners and
 * its origin in world x, y: 18 values, continuous in the pose). Policies
 * observe agent_pos and block_keypoints by default (env_policy_keys), as
 * Diffusion Policy's low-dim Push-T does: the wrapped angle jumps by 2 pi in
 * 25 of 200 expert demos, a full-range step once min-max normalized. Goal pose (0.256, 0.256, pi/4). Reset: pusher
 * U[0.05, 0.45]^2 (redrawn while it would overlap the block), block
 * U[0.10, 0.40]^2, angle U(-pi, pi].
 *
 * Coverage = area(T_block & T_goal) / area(T_goal), exact: each T is two
 * disjoint rectangles, so the intersection is the sum over the 4 rectangle
 * pairs of convex intersections (Sutherland-Hodgman clipping of one rectangle
 * by the other, shoelace area). Success: coverage > 0.95.
 *
 * Expert: a pushing planner on the block's known mobility. Pushing with a force
 * along the inward normal at an outline point gives (quasi-statically) the
 * twist (n / c_t, (r x n) / c_r) about the block origin. Candidate contacts
 * are outline points (edges every 7.5 mm, convex corners with 3 normals in
 * their normal cone) whose pre-contact point (clear of the T) and approach
 * ray are collision-free. Each is scored by the cosine between its twist and
 * the pose error (metric |v|^2 + (L w)^2), less a travel cost; the pusher
 * orbits the T on a ring clear of it to the pre-contact point of the best
 * one, then pushes with a target depth set to the contact displacement that
 * minimizes the error along that twist; it re-plans when the push stops
 * helping. Per episode: metric length, speeds, gains, hysteresis and travel
 * weight are drawn at reset; near-ties between candidates are broken at random
 * (the expert's RNG). Measured (env_reset(seed) for seeds 0..199, then
 * env_expert + env_step until env_done, horizon 300): 200/200 successes,
 * mean max coverage 0.959 (episodes end at success), 108 steps median, 206
 * at most; no unstable steps, no pusher contact while orbiting. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "env_task.h"
#include "fc_base.h"

static const char s_xml[] =
    "<mujoco model=\"pusht\">\n"
    "  <compiler angle=\"radian\" autolimits=\"true\"/>\n"
    "  <option timestep=\"0.005\" gravity=\"0 0 0\" integrator=\"implicit\" solver=\"Newton\" cone=\"elliptic\"/>\n"
    "  <size njmax=\"600\" nconmax=\"150\"/>\n"
    "  <default>\n"
    "    <geom condim=\"3\" friction=\"0.5 0.005 0.0001\" solref=\"0.01 1\"/>\n"
    "  </default>\n"
    "  <worldbody>\n"
    "    <light pos=\"0.256 0.256 1\" dir=\"0 0 -1\"/>\n"
    "    <geom name=\"board\" type=\"plane\" pos=\"0.256 0.256 0\" size=\"0.256 0.256 0.01\" contype=\"0\" conaffinity=\"0\" rgba=\"0.93 0.93 0.93 1\"/>\n"
    "    <geom name=\"wall_w\" type=\"box\" pos=\"-0.025 0.256 0.01\" size=\"0.025 0.306 0.01\" contype=\"4\" conaffinity=\"1\" rgba=\"0.3 0.3 0.3 1\"/>\n"
    "    <geom name=\"wall_e\" type=\"box\" pos=\"0.537 0.256 0.01\" size=\"0.025 0.306 0.01\" contype=\"4\" conaffinity=\"1\" rgba=\"0.3 0.3 0.3 1\"/>\n"
    "    <geom name=\"wall_s\" type=\"box\" pos=\"0.256 -0.025 0.01\" size=\"0.306 0.025 0.01\" contype=\"4\" conaffinity=\"1\" rgba=\"0.3 0.3 0.3 1\"/>\n"
    "    <geom name=\"wall_n\" type=\"box\" pos=\"0.256 0.537 0.01\" size=\"0.306 0.025 0.01\" contype=\"4\" conaffinity=\"1\" rgba=\"0.3 0.3 0.3 1\"/>\n"
    "    <body name=\"goal\" pos=\"0.256 0.256 0\" euler=\"0 0 0.78539816339744831\">\n"
    "      <geom name=\"goal_bar\" type=\"box\" pos=\"0 0.03 0.0005\" size=\"0.06 0.015 0.0005\" contype=\"0\" conaffinity=\"0\" rgba=\"0.4 0.8 0.4 0.5\"/>\n"
    "      <geom name=\"goal_stem\" type=\"box\" pos=\"0 -0.03 0.0005\" size=\"0.015 0.045 0.0005\" contype=\"0\" conaffinity=\"0\" rgba=\"0.4 0.8 0.4 0.5\"/>\n"
    "    </body>\n"
    "    <body name=\"block\">\n"
    "      <joint name=\"block_x\" type=\"slide\" axis=\"1 0 0\" damping=\"5\"/>\n"
    "      <joint name=\"block_y\" type=\"slide\" axis=\"0 1 0\" damping=\"5\"/>\n"
    "      <joint name=\"block_a\" type=\"hinge\" axis=\"0 0 1\" damping=\"0.01\"/>\n"
    "      <geom name=\"bar\" type=\"box\" pos=\"0 0.03 0.01\" size=\"0.06 0.015 0.01\" mass=\"0.05\" contype=\"1\" conaffinity=\"1\" rgba=\"0.45 0.55 0.75 1\"/>\n"
    "      <geom name=\"stem\" type=\"box\" pos=\"0 -0.03 0.01\" size=\"0.015 0.045 0.01\" mass=\"0.04\" contype=\"1\" conaffinity=\"1\" rgba=\"0.45 0.55 0.75 1\"/>\n"
    "    </body>\n"
    "    <body name=\"agent\">\n"
    "      <joint name=\"agent_x\" type=\"slide\" axis=\"1 0 0\" range=\"0 0.512\"/>\n"
    "      <joint name=\"agent_y\" type=\"slide\" axis=\"0 1 0\" range=\"0 0.512\"/>\n"
    "      <geom name=\"agent\" type=\"cylinder\" pos=\"0 0 0.01\" size=\"0.015 0.01\" mass=\"1\" contype=\"2\" conaffinity=\"1\" rgba=\"0.25 0.4 0.9 1\"/>\n"
    "    </body>\n"
    "  </worldbody>\n"
    "  <actuator>\n"
    "    <general name=\"agent_x\" joint=\"agent_x\" ctrlrange=\"0 0.512\" forcerange=\"-40 40\" biastype=\"affine\" gainprm=\"100\" biasprm=\"0 -100 -20\"/>\n"
    "    <general name=\"agent_y\" joint=\"agent_y\" ctrlrange=\"0 0.512\" forcerange=\"-40 40\" biastype=\"affine\" gainprm=\"100\" biasprm=\"0 -100 -20\"/>\n"
    "  </actuator>\n"
    "</mujoco>\n";

enum { I_BX, I_BY, I_BA, I_AX, I_AY, I_UX, I_UY };

/* geometry (metres), in the block frame */
#define S_BOARD 0.512
#define S_HALF_BOARD 0.256
#define S_R 0.015             /* pusher radius */
#define S_GOAL_X 0.256
#define S_GOAL_Y 0.256
#define S_GOAL_A (0.25 * FC_PI)
#define S_T_AREA 0.0063       /* 0.120 * 0.030 + 0.030 * 0.090 */
#define S_T_RADIUS 0.0765     /* farthest outline point from the origin */
#define S_CT 5.0              /* block slide damping */
#define S_CR 0.01             /* block hinge damping */

/* the T's outline, counter-clockwise; corners 2 and 5 are concave */
static const double s_outline[8][2] = {{-0.06, 0.045}, {-0.06, 0.015}, {-0.015, 0.015}, {-0.015, -0.075},
                                       {0.015, -0.075}, {0.015, 0.015}, {0.06, 0.015}, {0.06, 0.045}};

/* the T as two rectangles: centre (cx, cy), half sizes (hx, hy) */
static const double s_rect[2][4] = {{0.0, 0.03, 0.06, 0.015}, {0.0, -0.03, 0.015, 0.045}};

static int s_init(const mjModel *m, int *ids, char *err, size_t errsz) {
  static const char *const joints[5] = {"block_x", "block_y", "block_a", "agent_x", "agent_y"};
  for (int i = 0; i < 5; i++) {
    const int j = env_id(m, "pusht", mjOBJ_JOINT, joints[i], err, errsz);
    if (j < 0) return -1;
    ids[I_BX + i] = m->jnt_qposadr[j];
  }
  if ((ids[I_UX] = env_id(m, "pusht", mjOBJ_ACTUATOR, "agent_x", err, errsz)) < 0 ||
      (ids[I_UY] = env_id(m, "pusht", mjOBJ_ACTUATOR, "agent_y", err, errsz)) < 0)
    return -1;
  return 0;
}

static double s_wrap(double a) {
  a = fmod(a, 2.0 * FC_PI);
  if (a > FC_PI) a -= 2.0 * FC_PI;
  if (a <= -FC_PI) a += 2.0 * FC_PI;
  return a;
}

static double s_clamp(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---------- geometry ---------- */

/* distance from a block-frame point to the T (0 inside) */
static double s_dist_t(double px, double py) {
  double best = 1e9;
  for (int k = 0; k < 2; k++) {
    double dx = fabs(px - s_rect[k][0]) - s_rect[k][2], dy = fabs(py - s_rect[k][1]) - s_rect[k][3];
    dx = dx > 0 ? dx : 0;
    dy = dy > 0 ? dy : 0;
    double d = sqrt(dx * dx + dy * dy);
    if (d < best) best = d;
  }
  return best;
}

/* the 4 corners (counter-clockwise) of rectangle k of a T at pose (x, y, a) */
static void s_rect_world(int k, double x, double y, double a, double out[8]) {
  static const double sx[4] = {-1, 1, 1, -1}, sy[4] = {-1, -1, 1, 1};
  double c = cos(a), s = sin(a);
  for (int i = 0; i < 4; i++) {
    double lx = s_rect[k][0] + sx[i] * s_rect[k][2], ly = s_rect[k][1] + sy[i] * s_rect[k][3];
    out[2 * i] = x + c * lx - s * ly;
    out[2 * i + 1] = y + s * lx + c * ly;
  }
}

/* area of the intersection of two convex counter-clockwise quadrilaterals:
 * Sutherland-Hodgman clipping of p by each edge of q, then the shoelace */
static double s_clip_area(const double p[8], const double q[8]) {
  double buf[2][2 * 16];
  int n = 4;
  memcpy(buf[0], p, 8 * sizeof(double));
  double *in = buf[0], *out = buf[1];
  for (int e = 0; e < 4 && n > 0; e++) {
    double ax = q[2 * e], ay = q[2 * e + 1], bx = q[2 * ((e + 1) % 4)], by = q[2 * ((e + 1) % 4) + 1];
    double ex = bx - ax, ey = by - ay;
    int m = 0;
    for (int i = 0; i < n; i++) {
      double cx = in[2 * i], cy = in[2 * i + 1];
      double dx = in[2 * ((i + 1) % n)], dy = in[2 * ((i + 1) % n) + 1];
      double sc = ex * (cy - ay) - ey * (cx - ax), sd = ex * (dy - ay) - ey * (dx - ax); /* >= 0: inside */
      if (sc >= 0) {
        out[2 * m] = cx;
        out[2 * m + 1] = cy;
        m++;
      }
      if ((sc >= 0) != (sd >= 0)) {
        double t = sc / (sc - sd);
        out[2 * m] = cx + t * (dx - cx);
        out[2 * m + 1] = cy + t * (dy - cy);
        m++;
      }
    }
    n = m;
    double *tmp = in;
    in = out;
    out = tmp;
  }
  double area = 0.0;
  for (int i = 0; i < n; i++) {
    int j = (i + 1) % n;
    area += in[2 * i] * in[2 * j + 1] - in[2 * j] * in[2 * i + 1];
  }
  return n >= 3 ? 0.5 * fabs(area) : 0.0;
}

/* coverage of the goal T by a T at pose (x, y, a) */
static double s_coverage_pose(double x, double y, double a) {
  double b[2][8], g[2][8];
  for (int k = 0; k < 2; k++) {
    s_rect_world(k, x, y, a, b[k]);
    s_rect_world(k, S_GOAL_X, S_GOAL_Y, S_GOAL_A, g[k]);
  }
  double inter = 0.0;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) inter += s_clip_area(b[i], g[j]);
  return inter / S_T_AREA;
}

/* ---------- task callbacks ---------- */

static void s_block_pose(const int *ids, const mjData *d, double pose[3]) {
  pose[0] = d->qpos[ids[I_BX]];
  pose[1] = d->qpos[ids[I_BY]];
  pose[2] = s_wrap(d->qpos[ids[I_BA]]);
}

/* expert state: its plan for the episode and its current contact */
#define S_NCAND 96
typedef struct {
  int mode;       /* 0: travelling to the pre-contact point, 1: pushing */
  int cand;       /* committed candidate contact, -1: none */
  int push_steps; /* steps in the current push */
  int pad;
  double len;     /* rotation weight in the error metric (m per rad) */
  double vmax;    /* pusher travel per control step (m) */
  double gain;    /* push depth per metre of wanted contact motion */
  double dmax;    /* deepest push (m) */
  double hyst;    /* score margin before abandoning the current contact */
  double travel;  /* score cost per metre of travel */
  double tie;     /* scores within this of the best are ties */
  double clear;   /* pre-contact clearance (m) */
  double ring;    /* orbit radius (m) */
  uint64_t valid[2]; /* candidates whose pre-contact point and approach are free */
} s_expert;
_Static_assert(sizeof(s_expert) <= ENV_TASK_STATE, "pusht expert state too large");

static void s_reset_expert(fc_rng *r, s_expert *e);

static void s_reset(const mjModel *m, const int *ids, mjData *d, fc_rng *r, void *ts) {
  (void)m;
  double bx = 0.10 + 0.30 * fc_rng_uniform(r), by = 0.10 + 0.30 * fc_rng_uniform(r);
  double ba = s_wrap(FC_PI - 2.0 * FC_PI * fc_rng_uniform(r));
  double ax = 0, ay = 0;
  for (int tries = 0; tries < 100; tries++) {
    ax = 0.05 + 0.40 * fc_rng_uniform(r);
    ay = 0.05 + 0.40 * fc_rng_uniform(r);
    double c = cos(ba), s = sin(ba), dx = ax - bx, dy = ay - by;
    if (s_dist_t(c * dx + s * dy, -s * dx + c * dy) > S_R + 0.005) break;
  }
  d->qpos[ids[I_BX]] = bx;
  d->qpos[ids[I_BY]] = by;
  d->qpos[ids[I_BA]] = ba;
  d->qpos[ids[I_AX]] = ax;
  d->qpos[ids[I_AY]] = ay;
  d->ctrl[ids[I_UX]] = ax;
  d->ctrl[ids[I_UY]] = ay;
  s_reset_expert(r, ts);
}

static void s_act(const mjModel *m, const int *ids, mjData *d, const double *a) {
  (void)m;
  d->ctrl[ids[I_UX]] = S_HALF_BOARD + S_HALF_BOARD * a[0];
  d->ctrl[ids[I_UY]] = S_HALF_BOARD + S_HALF_BOARD * a[1];
}

/* block_keypoints: the T's 8 outline corners (s_outline's order) and its
 * origin, in world coordinates: a continuous encoding of the pose (the
 * wrapped angle of block_pose jumps by 2 pi), as Diffusion Policy's low-dim
 * Push-T observes 9 keypoints of the T */
static void s_keypoints(const double pose[3], double *o) {
  const double c = cos(pose[2]), s = sin(pose[2]);
  for (int i = 0; i < 9; i++) {
    const double px = i < 8 ? s_outline[i][0] : 0.0, py = i < 8 ? s_outline[i][1] : 0.0;
    o[2 * i] = pose[0] + c * px - s * py;
    o[2 * i + 1] = pose[1] + s * px + c * py;
  }
}

static void s_obs(const mjModel *m, const int *ids, const mjData *d, double *o) {
  (void)m;
  o[0] = d->qpos[ids[I_AX]];
  o[1] = d->qpos[ids[I_AY]];
  s_block_pose(ids, d, o + 2);
  s_keypoints(o + 2, o + 5);
}

static double s_coverage(const mjModel *m, const int *ids, const mjData *d) {
  (void)m;
  double p[3];
  s_block_pose(ids, d, p);
  return s_coverage_pose(p[0], p[1], p[2]);
}

#define S_COVERAGE_GOAL 0.95 /* success: coverage above it (Diffusion Policy's Push-T) */

static int s_success(const mjModel *m, const int *ids, const mjData *d) {
  return s_coverage(m, ids, d) > S_COVERAGE_GOAL;
}

/* ---------- expert ---------- */


/* candidate contact i in the block frame: point p, outward normal n; 0 when i
 * is past the end. Edges every 7.5 mm (end points excluded), then each convex
 * corner with 3 normals inside its normal cone. */
static int s_candidate(int i, double p[2], double n[2]) {
  for (int e = 0; e < 8; e++) {
    const double *a = s_outline[e], *b = s_outline[(e + 1) % 8];
    double ex = b[0] - a[0], ey = b[1] - a[1], len = sqrt(ex * ex + ey * ey);
    int k = (int)floor(len / 0.0075 + 1e-9); /* k - 1 interior points */
    if (i < k - 1) {
      double t = (i + 1.0) / k;
      p[0] = a[0] + t * ex;
      p[1] = a[1] + t * ey;
      n[0] = ey / len;
      n[1] = -ex / len;
      return 1;
    }
    i -= k - 1;
  }
  static const int convex[6] = {0, 1, 3, 4, 6, 7};
  if (i >= 18) return 0;
  int v = convex[i / 3], j = i % 3;
  const double *c = s_outline[v], *a = s_outline[(v + 7) % 8], *b = s_outline[(v + 1) % 8];
  /* normals of the edges in and out of the corner */
  double ix = c[0] - a[0], iy = c[1] - a[1], ox = b[0] - c[0], oy = b[1] - c[1];
  double li = sqrt(ix * ix + iy * iy), lo = sqrt(ox * ox + oy * oy);
  double n1x = iy / li, n1y = -ix / li, n2x = oy / lo, n2y = -ox / lo;
  double w = 0.25 * (j + 1), nx = (1 - w) * n1x + w * n2x, ny = (1 - w) * n1y + w * n2y, nl = sqrt(nx * nx + ny * ny);
  p[0] = c[0];
  p[1] = c[1];
  n[0] = nx / nl;
  n[1] = ny / nl;
  return 1;
}

static void s_reset_expert(fc_rng *r, s_expert *e) {
  e->mode = 0;
  e->cand = -1;
  e->len = 0.06 + 0.03 * fc_rng_uniform(r);
  e->vmax = 0.03 + 0.01 * fc_rng_uniform(r);
  e->gain = 1.2 + 0.6 * fc_rng_uniform(r);
  e->dmax = 0.03 + 0.02 * fc_rng_uniform(r);
  e->hyst = 0.10 + 0.10 * fc_rng_uniform(r);
  e->travel = 0.5 + 0.5 * fc_rng_uniform(r);
  e->tie = 0.02 + 0.02 * fc_rng_uniform(r);
  e->clear = 0.008 + 0.004 * fc_rng_uniform(r);
  e->ring = S_T_RADIUS + S_R + 0.018 + 0.006 * fc_rng_uniform(r);
  e->valid[0] = e->valid[1] = 0;
  double p[2], n[2];
  for (int i = 0; i < S_NCAND && s_candidate(i, p, n); i++) {
    int ok = 1;
    for (double s = 0.0; s < 0.25 && ok; s += 0.004) {
      double qx = p[0] + n[0] * (S_R + e->clear + s), qy = p[1] + n[1] * (S_R + e->clear + s);
      if (s_dist_t(qx, qy) < S_R + 0.5 * e->clear) ok = 0;
    }
    if (ok) e->valid[i / 64] |= (uint64_t)1 << (i % 64);
  }
}

/* world <-> block frame */
typedef struct {
  double x, y, c, s;
} s_frame;

static void s_to_world(const s_frame *f, const double p[2], double out[2]) {
  out[0] = f->x + f->c * p[0] - f->s * p[1];
  out[1] = f->y + f->s * p[0] + f->c * p[1];
}
static void s_to_world_dir(const s_frame *f, const double n[2], double out[2]) {
  out[0] = f->c * n[0] - f->s * n[1];
  out[1] = f->s * n[0] + f->c * n[1];
}
static void s_to_body(const s_frame *f, const double w[2], double out[2]) {
  double dx = w[0] - f->x, dy = w[1] - f->y;
  out[0] = f->c * dx + f->s * dy;
  out[1] = -f->s * dx + f->c * dy;
}

/* is the straight move of the pusher from a to b (world) clear of the T? */
static int s_path_free(const s_frame *f, const double a[2], const double b[2], double clear) {
  double len = hypot(b[0] - a[0], b[1] - a[1]);
  int n = 1 + (int)(len / 0.004);
  for (int i = 0; i <= n; i++) {
    double t = (double)i / n, w[2] = {a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])}, q[2];
    s_to_body(f, w, q);
    if (s_dist_t(q[0], q[1]) < clear) return 0;
  }
  return 1;
}

/* a candidate's contact geometry in the world: contact point, outward normal,
 * pre-contact point, entry point on the orbit */
typedef struct {
  double p[2], n[2], q[2], entry[2];
  double cosv, dstar; /* cosine with the error; contact travel that minimizes it */
} s_contact;

static void s_contact_eval(const s_expert *e, const s_frame *f, const double err[3], int i, s_contact *c) {
  double pb[2], nb[2];
  s_candidate(i, pb, nb);
  s_to_world(f, pb, c->p);
  s_to_world_dir(f, nb, c->n);
  for (int k = 0; k < 2; k++) c->q[k] = c->p[k] + c->n[k] * (S_R + e->clear);
  /* entry: q + n s with |entry - origin| = ring */
  double ox = c->q[0] - f->x, oy = c->q[1] - f->y;
  double bq = ox * c->n[0] + oy * c->n[1], cq = ox * ox + oy * oy - e->ring * e->ring;
  double s = cq < 0 ? -bq + sqrt(bq * bq - cq) : 0.0;
  for (int k = 0; k < 2; k++) c->entry[k] = c->q[k] + c->n[k] * s;
  /* twist of a unit push along -n at p: (-n / ct, (r x -n) / cr) */
  double rx = c->p[0] - f->x, ry = c->p[1] - f->y;
  double tq = -(rx * c->n[1] - ry * c->n[0]);
  double t[3] = {-c->n[0] / S_CT, -c->n[1] / S_CT, tq / S_CR};
  double L2 = e->len * e->len;
  double tt = t[0] * t[0] + t[1] * t[1] + L2 * t[2] * t[2];
  double te = t[0] * err[0] + t[1] * err[1] + L2 * t[2] * err[2];
  double ee = err[0] * err[0] + err[1] * err[1] + L2 * err[2] * err[2];
  c->cosv = te / sqrt(tt * ee + 1e-30);
  /* amount s* = te / tt along t; the contact point then moves along -n by
   * s* (1 / ct + tq^2 / cr) */
  c->dstar = te / tt * (1.0 / S_CT + tq * tq / S_CR);
}

/* travel length of the pusher from P to the candidate's pre-contact point */
static double s_travel(const s_expert *e, const s_frame *f, const double P[2], const s_contact *c) {
  if (s_path_free(f, P, c->q, S_R + 0.003)) return hypot(c->q[0] - P[0], c->q[1] - P[1]);
  double rp = hypot(P[0] - f->x, P[1] - f->y);
  double a0 = atan2(P[1] - f->y, P[0] - f->x), a1 = atan2(c->entry[1] - f->y, c->entry[0] - f->x);
  double da = fabs(s_wrap(a1 - a0));
  return fabs(e->ring - rp) + e->ring * da + hypot(c->entry[0] - c->q[0], c->entry[1] - c->q[1]);
}

static void s_target_action(const double t[2], double *a) {
  for (int k = 0; k < 2; k++) a[k] = s_clamp((t[k] - S_HALF_BOARD) / S_HALF_BOARD, -1.0, 1.0);
}

static void s_expert_act(const mjModel *m, const int *ids, const mjData *d, fc_rng *r, void *ts, double *a) {
  (void)m;
  s_expert *e = ts;
  double pose[3];
  s_block_pose(ids, d, pose);
  s_frame f = {pose[0], pose[1], cos(pose[2]), sin(pose[2])};
  double P[2] = {d->qpos[ids[I_AX]], d->qpos[ids[I_AY]]};
  double err[3] = {S_GOAL_X - pose[0], S_GOAL_Y - pose[1], s_wrap(S_GOAL_A - pose[2])};

  /* score the candidates */
  double score[S_NCAND];
  int best = -1;
  double pt[2], nt[2];
  for (int i = 0; i < S_NCAND && s_candidate(i, pt, nt); i++) {
    score[i] = -1e9;
    if (!((e->valid[i / 64] >> (i % 64)) & 1)) continue;
    s_contact c;
    s_contact_eval(e, &f, err, i, &c);
    score[i] = c.cosv - e->travel * s_travel(e, &f, P, &c);
    if (best < 0 || score[i] > score[best]) best = i;
  }
  if (best < 0) { /* cannot happen: the valid set is never empty; hold still */
    s_target_action(P, a);
    return;
  }
  /* keep the current contact unless another is clearly better, or the push
   * no longer helps */
  int replan = e->cand < 0;
  if (!replan) {
    s_contact c;
    s_contact_eval(e, &f, err, e->cand, &c);
    if (c.cosv < 0.15 || score[e->cand] < score[best] - e->hyst) replan = 1;
  }
  if (replan) {
    int ties[S_NCAND], nties = 0;
    for (int i = 0; i < S_NCAND && s_candidate(i, pt, nt); i++)
      if (score[i] >= score[best] - e->tie) ties[nties++] = i;
    int pick = ties[fc_rng_below(r, (uint64_t)nties)];
    if (pick != e->cand) {
      e->cand = pick;
      e->mode = 0;
      e->push_steps = 0;
    }
  }
  s_contact c;
  s_contact_eval(e, &f, err, e->cand, &c);
  double target[2] = {P[0], P[1]};
  if (e->mode == 0 && hypot(c.q[0] - P[0], c.q[1] - P[1]) < 0.004) e->mode = 1;
  if (e->mode == 1) {
    /* push: the pusher's target is the contact point moved along -n */
    double depth = s_clamp(e->gain * c.dstar, 0.0, e->dmax);
    for (int k = 0; k < 2; k++) target[k] = c.p[k] + c.n[k] * (S_R - depth);
    e->push_steps++;
  } else if (s_path_free(&f, P, c.q, S_R + 0.003)) {
    target[0] = c.q[0];
    target[1] = c.q[1];
  } else {
    double rp = hypot(P[0] - f.x, P[1] - f.y);
    if (rp < e->ring - 0.01 && !s_path_free(&f, P, c.entry, S_R + 0.003)) {
      /* get clear: away from the nearest point of the T, else radially */
      double pb[2];
      s_to_body(&f, P, pb);
      double best_d = 1e9, dir[2] = {P[0] - f.x, P[1] - f.y};
      for (int k = 0; k < 2; k++) {
        double cx = s_clamp(pb[0], s_rect[k][0] - s_rect[k][2], s_rect[k][0] + s_rect[k][2]);
        double cy = s_clamp(pb[1], s_rect[k][1] - s_rect[k][3], s_rect[k][1] + s_rect[k][3]);
        double dd = hypot(pb[0] - cx, pb[1] - cy);
        if (dd < best_d && dd > 1e-6) {
          best_d = dd;
          double db[2] = {(pb[0] - cx) / dd, (pb[1] - cy) / dd};
          s_to_world_dir(&f, db, dir);
        }
      }
      double dl = hypot(dir[0], dir[1]) + 1e-12;
      target[0] = P[0] + e->vmax * dir[0] / dl;
      target[1] = P[1] + e->vmax * dir[1] / dl;
    } else if (rp < e->ring - 0.01) {
      target[0] = c.entry[0];
      target[1] = c.entry[1];
    } else {
      /* orbit towards the entry point's angle */
      double a0 = atan2(P[1] - f.y, P[0] - f.x), a1 = atan2(c.entry[1] - f.y, c.entry[0] - f.x);
      double da = s_wrap(a1 - a0), step = e->vmax / e->ring;
      if (fabs(da) <= step) {
        target[0] = c.entry[0];
        target[1] = c.entry[1];
      } else {
        double an = a0 + (da > 0 ? step : -step);
        target[0] = f.x + e->ring * cos(an);
        target[1] = f.y + e->ring * sin(an);
      }
    }
  }
  /* limit the travel per step (not when pushing) */
  if (e->mode == 0) {
    double dx = target[0] - P[0], dy = target[1] - P[1], dl = hypot(dx, dy);
    if (dl > e->vmax) {
      target[0] = P[0] + dx * e->vmax / dl;
      target[1] = P[1] + dy * e->vmax / dl;
    }
  }
  s_target_action(target, a);
}

double env_pusht_coverage(const double pose[3]) { return s_coverage_pose(pose[0], pose[1], pose[2]); }

const env_task env_task_pusht = {
    .name = "pusht",
    .xml = s_xml,
    .action_dim = 2,
    .control_hz = 10.0,
    .horizon = 300,
    .nkeys = 3,
    .keys = {{"agent_pos", 2}, {"block_pose", 3}, {"block_keypoints", 18}},
    .policy_keys = {"agent_pos", "block_keypoints", NULL},
    .init = s_init,
    .reset = s_reset,
    .act = s_act,
    .obs = s_obs,
    .success = s_success,
    .expert = s_expert_act,
    .coverage = s_coverage,
    .coverage_goal = S_COVERAGE_GOAL,
    .side = NULL,
    .view = {{0.256, 0.256, 0}, 0.76, 90, -90, 0},
};
