/* fc_ckpt: sectioned checkpoint container with CRC-32 and atomic writes. */
#include "fc_ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fc_base.h"

#define S_MAGIC "LFPCKPT"
#define S_END "LFPE"
#define S_BOM 0x01020304u
#define S_HDR 64
#define S_ENTRY (FC_CKPT_NAME_MAX + 16)
#define S_MAX_SECTIONS 4096

typedef struct {
  char name[FC_CKPT_NAME_MAX];
  uint64_t offset, size;
  void *data; /* writer: owned copy */
} s_section;

struct fc_ckpt_writer {
  char kind[32];
  s_section *sec;
  int n, cap;
};

struct fc_ckpt {
  char kind[32];
  unsigned char *bytes; /* the whole file */
  size_t size;
  s_section *sec;
  int n;
};

uint32_t fc_crc32(uint32_t crc, const void *data, size_t n) {
  static uint32_t table[256];
  static int ready = 0;
  if (!ready) { /* idempotent, so a race between threads writes equal values */
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = 1;
  }
  const unsigned char *p = data;
  crc = ~crc;
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

fc_ckpt_writer *fc_ckpt_writer_new(const char *kind) {
  fc_ckpt_writer *w = fc_calloc(1, sizeof(*w));
  FC_ASSERT(strlen(kind) < sizeof(w->kind));
  snprintf(w->kind, sizeof(w->kind), "%s", kind);
  return w;
}

void fc_ckpt_writer_free(fc_ckpt_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) free(w->sec[i].data);
  free(w->sec);
  free(w);
}

void fc_ckpt_add(fc_ckpt_writer *w, const char *name, const void *data, size_t size) {
  FC_ASSERT(strlen(name) > 0 && strlen(name) < FC_CKPT_NAME_MAX);
  for (int i = 0; i < w->n; i++) FC_ASSERT(strcmp(w->sec[i].name, name) != 0);
  FC_ASSERT(w->n < S_MAX_SECTIONS);
  if (w->n == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 8;
    s_section *ns = realloc(w->sec, (size_t)w->cap * sizeof(s_section));
    FC_ASSERT(ns);
    w->sec = ns;
  }
  s_section *s = &w->sec[w->n++];
  memset(s, 0, sizeof(*s));
  snprintf(s->name, sizeof(s->name), "%s", name);
  s->size = size;
  s->data = fc_malloc(size);
  if (size) memcpy(s->data, data, size);
}

static void s_put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void s_put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t s_get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t s_get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static size_t s_align8(size_t x) { return (x + 7) & ~(size_t)7; }

int fc_ckpt_write(const fc_ckpt_writer *w, const char *path, char *err, size_t errsz) {
  /* lay out the whole file in memory */
  size_t off = s_align8(S_HDR + (size_t)w->n * S_ENTRY);
  size_t *offs = fc_malloc((size_t)(w->n ? w->n : 1) * sizeof(size_t));
  for (int i = 0; i < w->n; i++) {
    offs[i] = off;
    off = s_align8(off + w->sec[i].size);
  }
  size_t total = off + 8;
  unsigned char *buf = fc_calloc(total, 1);
  memcpy(buf, S_MAGIC, 8);
  s_put32(buf + 8, FC_CKPT_VERSION);
  s_put32(buf + 12, S_BOM);
  s_put32(buf + 16, (uint32_t)sizeof(float));
  s_put32(buf + 20, (uint32_t)w->n);
  s_put64(buf + 24, (uint64_t)total);
  memcpy(buf + 32, w->kind, sizeof(w->kind));
  for (int i = 0; i < w->n; i++) {
    unsigned char *e = buf + S_HDR + (size_t)i * S_ENTRY;
    memcpy(e, w->sec[i].name, FC_CKPT_NAME_MAX);
    s_put64(e + FC_CKPT_NAME_MAX, offs[i]);
    s_put64(e + FC_CKPT_NAME_MAX + 8, w->sec[i].size);
    if (w->sec[i].size) memcpy(buf + offs[i], w->sec[i].data, w->sec[i].size);
  }
  s_put32(buf + total - 8, fc_crc32(0, buf, total - 8));
  memcpy(buf + total - 4, S_END, 4);
  free(offs);

  /* temporary file in the same directory, fsync, rename over the target */
  size_t plen = strlen(path) + 32;
  char *tmp = fc_malloc(plen);
  snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
  int rc = -1;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fc_set_err(err, errsz, "cannot create %s: %s", tmp, strerror(errno));
    goto done;
  }
  size_t put = 0;
  while (put < total) {
    ssize_t k = write(fd, buf + put, total - put);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      fc_set_err(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
      close(fd);
      unlink(tmp);
      goto done;
    }
    put += (size_t)k;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    fc_set_err(err, errsz, "cannot flush %s: %s", tmp, strerror(errno));
    unlink(tmp);
    goto done;
  }
  if (rename(tmp, path) != 0) {
    fc_set_err(err, errsz, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    unlink(tmp);
    goto done;
  }
  rc = 0;
done:
  free(tmp);
  free(buf);
  return rc;
}

fc_ckpt *fc_ckpt_parse(const void *bytes, size_t size, const char *path, const char *kind,
                       char *err, size_t errsz) {
  const unsigned char *b = bytes;
  if (size < 8 && memcmp(b, S_MAGIC, size) == 0)
    return fc_set_err(err, errsz, "%s is truncated: %zu bytes, shorter than the header", path, size), NULL;
  if (size < 8 || memcmp(b, S_MAGIC, 8) != 0)
    return fc_set_err(err, errsz, "%s is not an lfp checkpoint (bad magic)", path), NULL;
  if (size < S_HDR + 8)
    return fc_set_err(err, errsz, "%s is truncated: %zu bytes, shorter than the %d-byte header", path, size, S_HDR + 8), NULL;
  uint32_t ver = s_get32(b + 8), bom = s_get32(b + 12), fsz = s_get32(b + 16), n = s_get32(b + 20);
  uint64_t total = s_get64(b + 24);
  if (bom != S_BOM)
    return fc_set_err(err, errsz, "%s is mismatched: written on a machine of the other byte order", path), NULL;
  if (ver != FC_CKPT_VERSION)
    return fc_set_err(err, errsz, "%s is mismatched: format version %u, this lfp reads version %d", path, ver, FC_CKPT_VERSION), NULL;
  if (fsz != sizeof(float))
    return fc_set_err(err, errsz, "%s is mismatched: sizeof(float) %u, expected %zu", path, fsz, sizeof(float)), NULL;
  if (total > size)
    return fc_set_err(err, errsz, "%s is truncated: %zu bytes, the header says %llu", path, size, (unsigned long long)total), NULL;
  if (total < size)
    return fc_set_err(err, errsz, "%s is corrupted: %zu bytes, the header says %llu", path, size, (unsigned long long)total), NULL;
  if (memcmp(b + size - 4, S_END, 4) != 0)
    return fc_set_err(err, errsz, "%s is corrupted: the end marker is missing", path), NULL;
  uint32_t crc = s_get32(b + size - 8), got = fc_crc32(0, b, size - 8);
  if (crc != got)
    return fc_set_err(err, errsz, "%s is corrupted: checksum %08x, expected %08x", path, got, crc), NULL;
  if (n > S_MAX_SECTIONS || S_HDR + (uint64_t)n * S_ENTRY > size - 8)
    return fc_set_err(err, errsz, "%s is corrupted: bad section count %u", path, n), NULL;
  char k[32];
  memcpy(k, b + 32, 31);
  k[31] = 0;
  if (kind && strcmp(k, kind) != 0)
    return fc_set_err(err, errsz, "%s is mismatched: it holds a '%s' checkpoint, expected '%s'", path, k, kind), NULL;

  fc_ckpt *ck = fc_calloc(1, sizeof(*ck));
  snprintf(ck->kind, sizeof(ck->kind), "%s", k);
  ck->bytes = fc_malloc(size);
  memcpy(ck->bytes, b, size);
  ck->size = size;
  ck->n = (int)n;
  ck->sec = fc_calloc(n ? n : 1, sizeof(s_section));
  for (uint32_t i = 0; i < n; i++) {
    const unsigned char *e = b + S_HDR + (size_t)i * S_ENTRY;
    s_section *s = &ck->sec[i];
    memcpy(s->name, e, FC_CKPT_NAME_MAX);
    s->name[FC_CKPT_NAME_MAX - 1] = 0;
    s->offset = s_get64(e + FC_CKPT_NAME_MAX);
    s->size = s_get64(e + FC_CKPT_NAME_MAX + 8);
    if (s->offset > size - 8 || s->size > size - 8 - s->offset) {
      fc_set_err(err, errsz, "%s is corrupted: section '%s' lies outside the file", path, s->name);
      fc_ckpt_free(ck);
      return NULL;
    }
    s->data = ck->bytes + s->offset;
  }
  return ck;
}

fc_ckpt *fc_ckpt_read(const char *path, const char *kind, char *err, size_t errsz) {
  FILE *f = fopen(path, "rb");
  if (!f) return fc_set_err(err, errsz, "cannot open %s: %s", path, strerror(errno)), NULL;
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return fc_set_err(err, errsz, "%s is not a regular file", path), NULL;
  }
  size_t size = (size_t)st.st_size;
  unsigned char *buf = fc_malloc(size);
  size_t got = fread(buf, 1, size, f);
  fclose(f);
  if (got != size) {
    free(buf);
    return fc_set_err(err, errsz, "cannot read %s", path), NULL;
  }
  fc_ckpt *ck = fc_ckpt_parse(buf, size, path, kind, err, errsz);
  free(buf);
  return ck;
}

void fc_ckpt_free(fc_ckpt *ck) {
  if (!ck) return;
  free(ck->bytes);
  free(ck->sec);
  free(ck);
}

const char *fc_ckpt_kind(const fc_ckpt *ck) { return ck->kind; }

const void *fc_ckpt_get(const fc_ckpt *ck, const char *name, size_t *size) {
  for (int i = 0; i < ck->n; i++)
    if (!strcmp(ck->sec[i].name, name)) {
      if (size) *size = ck->sec[i].size;
      return ck->sec[i].data;
    }
  return NULL;
}

int fc_ckpt_get_exact(const fc_ckpt *ck, const char *name, void *dst, size_t size, char *err,
                      size_t errsz) {
  size_t have = 0;
  const void *p = fc_ckpt_get(ck, name, &have);
  if (!p) return fc_set_err(err, errsz, "checkpoint is mismatched: section '%s' is missing", name), -1;
  if (have != size)
    return fc_set_err(err, errsz, "checkpoint is mismatched: section '%s' has %zu bytes, expected %zu", name, have, size), -1;
  memcpy(dst, p, size);
  return 0;
}
