/* pol_keys: CURVE key files (see pol_keys.h). */
#include "pol_keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fc_base.h"

#define S_MAX_KEYS 4096

struct pol_keys_allow {
  int n;
  unsigned char (*keys)[32];
  char (*names)[256];
  char dir[4096];
};

/* one line of 40 Z85 characters (an optional final newline), decoded to
 * raw[32]; the text into z85[41] */
static int s_read_z85(const char *path, const char *what, char z85[41], unsigned char raw[32], char *err, size_t errsz) {
  FILE *f = fopen(path, "r");
  if (!f) return fc_set_err(err, errsz, "cannot read the %s %s (%s)", what, path, strerror(errno)), -1;
  char buf[64];
  const size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  size_t len = n;
  if (len && buf[len - 1] == '\n') buf[--len] = 0;
  if (len && buf[len - 1] == '\r') buf[--len] = 0;
  if (len != 40 || strlen(buf) != 40 || !zmq_z85_decode(raw, buf))
    return fc_set_err(err, errsz, "%s is not a CURVE %s: it should hold one line of 40 Z85 characters (lfp keygen writes "
                      "them)", path, what), -1;
  memcpy(z85, buf, 41);
  return 0;
}

/* a secret's file: regular, and no permission for group or others */
static int s_private_file(const char *path, const char *what, char *err, size_t errsz) {
  struct stat st;
  if (stat(path, &st) != 0) return fc_set_err(err, errsz, "cannot read the %s %s (%s)", what, path, strerror(errno)), -1;
  if (!S_ISREG(st.st_mode)) return fc_set_err(err, errsz, "the %s %s is not a file", what, path), -1;
  if (st.st_mode & 077)
    return fc_set_err(err, errsz, "the %s %s may be read by others (mode %04o): chmod 600 %s", what, path,
                      (unsigned)(st.st_mode & 07777), path), -1;
  return 0;
}

int pol_keys_read_api_key(const char *path, char key[256], char *err, size_t errsz) {
  if (s_private_file(path, "API key", err, errsz)) return -1;
  FILE *f = fopen(path, "r");
  if (!f) return fc_set_err(err, errsz, "cannot read the API key %s (%s)", path, strerror(errno)), -1;
  char buf[300];
  const size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  size_t len = strcspn(buf, "\r\n");
  const int rest_blank = buf[len] == 0 || strspn(buf + len, "\r\n") == strlen(buf + len);
  int ok = rest_blank && len >= 16 && len <= 255;
  for (size_t i = 0; ok && i < len; i++) ok = buf[i] > 32 && buf[i] < 127;
  if (!ok)
    return fc_set_err(err, errsz, "%s is not an API key: it should hold one line of 16 to 255 printable characters "
                      "without spaces", path), -1;
  memcpy(key, buf, len);
  key[len] = 0;
  return 0;
}

int pol_keys_read_secret(const char *path, char secret[41], char public_key[41], char *err, size_t errsz) {
  if (s_private_file(path, "secret key", err, errsz)) return -1;
  unsigned char raw[32];
  if (s_read_z85(path, "secret key", secret, raw, err, errsz)) return -1;
  if (zmq_curve_public(public_key, secret) != 0)
    return fc_set_err(err, errsz, "libzmq cannot derive the public key of %s (%s)", path, zmq_strerror(zmq_errno())), -1;
  return 0;
}

int pol_keys_read_public(const char *path, char public_key[41], char *err, size_t errsz) {
  unsigned char raw[32];
  return s_read_z85(path, "public key", public_key, raw, err, errsz);
}

/* write text to path, created with mode (never over an existing file) */
static int s_write_new(const char *path, const char *text, mode_t mode, char *err, size_t errsz) {
  char tmp[4200];
  snprintf(tmp, sizeof(tmp), "%s.part", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode);
  if (fd < 0) return fc_set_err(err, errsz, "cannot create %s (%s)", tmp, strerror(errno)), -1;
  const size_t n = strlen(text);
  const int ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
  if (close(fd) != 0 || !ok) {
    unlink(tmp);
    return fc_set_err(err, errsz, "cannot write %s (%s)", tmp, strerror(errno)), -1;
  }
  /* link + unlink: fails rather than replaces when path exists */
  if (link(tmp, path) != 0) {
    const int e = errno;
    unlink(tmp);
    return fc_set_err(err, errsz, "cannot create %s (%s)", path, strerror(e)), -1;
  }
  unlink(tmp);
  return 0;
}

int pol_keys_generate(const char *name, char *err, size_t errsz) {
  if (!zmq_has("curve")) return fc_set_err(err, errsz, "this libzmq has no CURVE (it was built without libsodium)"), -1;
  if (strlen(name) > 4000) return fc_set_err(err, errsz, "the key name is too long"), -1;
  char sec[41], pub[41], kpath[4100], ppath[4100], line[48];
  if (zmq_curve_keypair(pub, sec) != 0)
    return fc_set_err(err, errsz, "libzmq could not make a key pair (%s)", zmq_strerror(zmq_errno())), -1;
  snprintf(kpath, sizeof(kpath), "%s.key", name);
  snprintf(ppath, sizeof(ppath), "%s.pub", name);
  struct stat st;
  if (stat(kpath, &st) == 0 || stat(ppath, &st) == 0)
    return fc_set_err(err, errsz, "%s exists: lfp keygen never replaces a key (remove it first)",
                      stat(kpath, &st) == 0 ? kpath : ppath), -1;
  snprintf(line, sizeof(line), "%s\n", sec);
  if (s_write_new(kpath, line, 0600, err, errsz)) return -1;
  snprintf(line, sizeof(line), "%s\n", pub);
  if (s_write_new(ppath, line, 0644, err, errsz)) {
    unlink(kpath);
    return -1;
  }
  memset(sec, 0, sizeof(sec));
  return 0;
}

static int s_name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

pol_keys_allow *pol_keys_allow_load(const char *dir, char *err, size_t errsz) {
  DIR *d = opendir(dir);
  if (!d) return fc_set_err(err, errsz, "--allow: cannot read the folder %s (%s)", dir, strerror(errno)), NULL;
  char **names = NULL;
  int n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    const size_t k = strlen(e->d_name);
    if (k < 5 || k >= 256 || strcmp(e->d_name + k - 4, ".pub")) continue;
    if (n == S_MAX_KEYS) {
      for (int i = 0; i < n; i++) free(names[i]);
      free(names);
      closedir(d);
      return fc_set_err(err, errsz, "--allow: %s holds more than %d .pub files", dir, S_MAX_KEYS), NULL;
    }
    if (n == cap) names = fc_realloc(names, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 16));
    names[n] = fc_malloc(k + 1);
    memcpy(names[n++], e->d_name, k + 1);
  }
  closedir(d);
  if (!n) {
    free(names);
    return fc_set_err(err, errsz, "--allow: %s holds no .pub file: every client would be refused", dir), NULL;
  }
  qsort(names, (size_t)n, sizeof(char *), s_name_cmp);
  pol_keys_allow *a = fc_calloc(1, sizeof(*a));
  a->keys = fc_malloc(32 * (size_t)n);
  a->names = fc_malloc(256 * (size_t)n);
  snprintf(a->dir, sizeof(a->dir), "%s", dir);
  int rc = 0;
  for (int i = 0; i < n; i++) {
    char path[4400], z85[41];
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    if (!rc && s_read_z85(path, "public key", z85, a->keys[i], err, errsz)) rc = -1;
    snprintf(a->names[i], 256, "%s", names[i]);
    free(names[i]);
  }
  free(names);
  a->n = n;
  if (rc) {
    pol_keys_allow_free(a);
    return NULL;
  }
  return a;
}

void pol_keys_allow_free(pol_keys_allow *a) {
  if (!a) return;
  free(a->keys);
  free(a->names);
  free(a);
}

int pol_keys_allow_count(const pol_keys_allow *a) { return a->n; }
const char *pol_keys_allow_dir(const pol_keys_allow *a) { return a->dir; }

const char *pol_keys_allowed(const pol_keys_allow *a, const unsigned char key[32]) {
  for (int i = 0; i < a->n; i++)
    if (!memcmp(a->keys[i], key, 32)) return a->names[i];
  return NULL;
}

/* ---------- CURVE on a socket, and the ZAP handler ---------- */

void pol_keys_curve_server(void *sock, const char *secret_z85) {
  const int one = 1;
  zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one));
  zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret_z85, 41);
  zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "lfp", 3);
}

void *pol_keys_zap_open(void *ctx, char *err, size_t errsz) {
  void *zap = zmq_socket(ctx, ZMQ_REP);
  const int linger = 0;
  zmq_setsockopt(zap, ZMQ_LINGER, &linger, sizeof(linger));
  if (zmq_bind(zap, "inproc://zeromq.zap.01")) {
    fc_set_err(err, errsz, "cannot start the CURVE authentication handler: %s", zmq_strerror(zmq_errno()));
    zmq_close(zap);
    return NULL;
  }
  return zap;
}

/* the ZAP handler (RFC 27) for CURVE: one request, one reply; a client
 * whose key is not allowed gets status 400 and one line in the log */
int pol_keys_zap_handle(void *zap, const pol_keys_allow *allow, FILE *log, const char *cmd, int64_t *refused) {
  zmq_msg_t f[8];
  int k = 0, more = 1;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, zap, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&m);
      if (!k) return 0;
      break;
    }
    more = zmq_msg_more(&m);
    if (k < 8) f[k++] = m;
    else zmq_msg_close(&m);
  }
  /* version, request id, domain, address, routing id, mechanism, credentials */
  const int ok_frames = k >= 7 && zmq_msg_size(&f[5]) == 5 && !memcmp(zmq_msg_data(&f[5]), "CURVE", 5) &&
                        zmq_msg_size(&f[6]) == 32;
  const char *who = ok_frames ? pol_keys_allowed(allow, zmq_msg_data(&f[6])) : NULL;
  if (!who) {
    (*refused)++;
    if (log && *refused <= 20) {
      char addr[64] = "?", key[41] = "(no CURVE key)";
      if (k >= 4) snprintf(addr, sizeof(addr), "%.*s", (int)(zmq_msg_size(&f[3]) < 63 ? zmq_msg_size(&f[3]) : 63),
                           (const char *)zmq_msg_data(&f[3]));
      if (ok_frames) zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
      fprintf(log, "lfp %s: refused a client from %s: its key %s is not in %s%s\n", cmd, addr, key,
              pol_keys_allow_dir(allow), *refused == 20 ? " (further refusals are counted, not logged)" : "");
      fflush(log);
    }
  }
  const char *status = who ? "200" : "400", *text = who ? "OK" : "key not allowed";
  zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
  if (k >= 2) zmq_send(zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
  else zmq_send(zap, "", 0, ZMQ_SNDMORE);
  zmq_send(zap, status, 3, ZMQ_SNDMORE);
  zmq_send(zap, text, strlen(text), ZMQ_SNDMORE);
  zmq_send(zap, who ? who : "", who ? strlen(who) : 0, ZMQ_SNDMORE); /* user id: the key's file name */
  zmq_send(zap, "", 0, 0);
  for (int i = 0; i < k; i++) zmq_msg_close(&f[i]);
  return who ? 1 : 0;
}

