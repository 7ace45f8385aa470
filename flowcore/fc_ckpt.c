/* fc_ckpt: sectioned checkpoint container with CRC-32 and atomic writes. */
#include "fc_ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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
  int version;
};

/* the CRC-32 table of the reflected polynomial 0xEDB88320, entry i the CRC
 * of byte i (a constant: no lazy initialization shared between threads) */
static const uint32_t s_crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t fc_crc32(uint32_t crc, const void *data, size_t n) {
  const unsigned char *p = data;
  crc = ~crc;
  for (size_t i = 0; i < n; i++) crc = s_crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
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

/* fsync the directory holding path, so that the rename is on disk too */
static int s_sync_dir(const char *path, char *err, size_t errsz) {
  const char *slash = strrchr(path, '/');
  char *dir = fc_malloc(strlen(path) + 2);
  if (!slash) snprintf(dir, 2, ".");
  else if (slash == path) snprintf(dir, 2, "/"); /* a file in the root */
  else snprintf(dir, (size_t)(slash - path) + 1, "%s", path);
  int rc = 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0 || fsync(fd) != 0) {
    fc_set_err(err, errsz, "wrote %s but cannot flush its directory %s: %s", path, dir, strerror(errno));
    rc = -1;
  }
  if (fd >= 0) close(fd);
  free(dir);
  return rc;
}

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
  memcpy(buf + 32, w->kind, sizeof(w->kind));
  for (int i = 0; i < w->n; i++) {
    unsigned char *e = buf + S_HDR + (size_t)i * S_ENTRY;
    memcpy(e, w->sec[i].name, FC_CKPT_NAME_MAX);
    s_put64(e + FC_CKPT_NAME_MAX, offs[i]);
    s_put64(e + FC_CKPT_NAME_MAX + 8, w->sec[i].size);
    if (w->sec[i].size) memcpy(buf + offs[i], w->sec[i].data, w->sec[i].size);
  }
  fc_ckpt_seal(buf, total); /* the size, the CRC and the end marker */
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
  rc = s_sync_dir(path, err, errsz);
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
  if (ver < FC_CKPT_VERSION_MIN || ver > FC_CKPT_VERSION)
    return fc_set_err(err, errsz, "%s is mismatched: format version %u, this lfp reads versions %d to %d", path, ver,
                      FC_CKPT_VERSION_MIN, FC_CKPT_VERSION), NULL;
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
  ck->version = (int)ver;
  ck->sec = fc_calloc(n ? n : 1, sizeof(s_section));
  for (uint32_t i = 0; i < n; i++) {
    const unsigned char *e = b + S_HDR + (size_t)i * S_ENTRY;
    s_section *s = &ck->sec[i];
    memcpy(s->name, e, FC_CKPT_NAME_MAX);
    s->offset = s_get64(e + FC_CKPT_NAME_MAX);
    s->size = s_get64(e + FC_CKPT_NAME_MAX + 8);
    const char *why = NULL;
    if (s->name[0] == 0 || memchr(s->name, 0, FC_CKPT_NAME_MAX) == NULL) why = "has no name of at most 39 bytes";
    else if (s->offset > size - 8 || s->size > size - 8 - s->offset) why = "lies outside the file";
    for (uint32_t j = 0; !why && j < i; j++)
      if (!strcmp(ck->sec[j].name, s->name)) why = "appears twice";
    if (why) {
      s->name[FC_CKPT_NAME_MAX - 1] = 0;
      fc_set_err(err, errsz, "%s is corrupted: section %u ('%s') %s", path, i, s->name, why);
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
  unsigned char *buf = malloc(size ? size : 1); /* a hostile size is an error, not an abort */
  if (!buf) {
    fclose(f);
    return fc_set_err(err, errsz, "cannot read %s: its %zu bytes do not fit in memory", path, size), NULL;
  }
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
int fc_ckpt_version(const fc_ckpt *ck) { return ck->version; }

void fc_ckpt_seal(void *bytes, size_t size) {
  unsigned char *b = bytes;
  if (size < S_HDR + 8) return;
  s_put64(b + 24, (uint64_t)size);
  s_put32(b + size - 8, fc_crc32(0, b, size - 8));
  memcpy(b + size - 4, S_END, 4);
}

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

/* ---------- field-wise sections ---------- */

static void s_buf_put(fc_ckpt_buf *b, const void *v, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    FC_ASSERT(d);
    b->data = d;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->len, v, n);
  b->len += n;
}

void fc_ckpt_put_u32(fc_ckpt_buf *b, uint32_t v) { s_buf_put(b, &v, 4); }
void fc_ckpt_put_i32(fc_ckpt_buf *b, int32_t v) { s_buf_put(b, &v, 4); }
void fc_ckpt_put_u64(fc_ckpt_buf *b, uint64_t v) { s_buf_put(b, &v, 8); }
void fc_ckpt_put_i64(fc_ckpt_buf *b, int64_t v) { s_buf_put(b, &v, 8); }
void fc_ckpt_put_f32(fc_ckpt_buf *b, float v) { s_buf_put(b, &v, 4); }
void fc_ckpt_put_f64(fc_ckpt_buf *b, double v) { s_buf_put(b, &v, 8); }
void fc_ckpt_put_f32s(fc_ckpt_buf *b, const float *v, size_t n) { s_buf_put(b, v, n * sizeof(float)); }

void fc_ckpt_put_str(fc_ckpt_buf *b, const char *s) {
  const size_t n = strlen(s);
  FC_ASSERT(n <= UINT32_MAX);
  fc_ckpt_put_u32(b, (uint32_t)n);
  s_buf_put(b, s, n);
}

void fc_ckpt_add_buf(fc_ckpt_writer *w, const char *name, fc_ckpt_buf *b) {
  fc_ckpt_add(w, name, b->data, b->len);
  free(b->data);
  memset(b, 0, sizeof(*b));
}

int fc_ckpt_cur_open(fc_ckpt_cur *c, const fc_ckpt *ck, const char *name, char *err, size_t errsz) {
  memset(c, 0, sizeof(*c));
  snprintf(c->name, sizeof(c->name), "%s", name);
  c->err = err;
  c->errsz = errsz;
  c->p = fc_ckpt_get(ck, name, &c->size);
  if (!c->p) {
    c->failed = 1;
    return fc_set_err(err, errsz, "checkpoint is mismatched: section '%s' is missing", name), -1;
  }
  return 0;
}

/* fail the cursor with "checkpoint is <how>: section '<name>' <what>",
 * keeping the first message */
static int s_cur_vfail(fc_ckpt_cur *c, const char *how, const char *fmt, va_list ap) {
  if (c->failed) return -1;
  c->failed = 1;
  if (!c->err || !c->errsz) return -1;
  char what[256];
  vsnprintf(what, sizeof(what), fmt, ap);
  fc_set_err(c->err, c->errsz, "checkpoint is %s: section '%s' %s", how, c->name, what);
  return -1;
}

int fc_ckpt_cur_fail(fc_ckpt_cur *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s_cur_vfail(c, "corrupted", fmt, ap);
  va_end(ap);
  return -1;
}

int fc_ckpt_cur_mismatch(fc_ckpt_cur *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s_cur_vfail(c, "mismatched", fmt, ap);
  va_end(ap);
  return -1;
}

/* the next n bytes of field, or NULL when they run past the end */
static const unsigned char *s_take(fc_ckpt_cur *c, const char *field, size_t n) {
  if (c->failed) return NULL;
  if (n > c->size - c->pos) {
    fc_ckpt_cur_fail(c, "ends inside field '%s' (%zu bytes at offset %zu, the section has %zu)", field, n, c->pos,
                     c->size);
    return NULL;
  }
  const unsigned char *q = c->p + c->pos;
  c->pos += n;
  return q;
}

#define S_GETTER(fn, type, nbytes)                                                \
  int fn(fc_ckpt_cur *c, const char *field, type *v) {                            \
    const unsigned char *q = s_take(c, field, nbytes);                            \
    if (!q) return -1;                                                            \
    memcpy(v, q, nbytes);                                                         \
    return 0;                                                                     \
  }
S_GETTER(fc_ckpt_get_u32, uint32_t, 4)
S_GETTER(fc_ckpt_get_u64, uint64_t, 8)
S_GETTER(fc_ckpt_get_f32, float, 4)
S_GETTER(fc_ckpt_get_f64, double, 8)
#undef S_GETTER

int fc_ckpt_cur_version(fc_ckpt_cur *c, uint32_t max, uint32_t *v) {
  if (fc_ckpt_get_u32(c, "version", v)) return -1;
  if (*v < 1 || *v > max) return fc_ckpt_cur_mismatch(c, "has version %u, this lfp reads 1 to %u", *v, max);
  return 0;
}

int fc_ckpt_get_i32(fc_ckpt_cur *c, const char *field, int32_t lo, int32_t hi, int32_t *v) {
  const unsigned char *q = s_take(c, field, 4);
  if (!q) return -1;
  memcpy(v, q, 4);
  if (*v < lo || *v > hi) return fc_ckpt_cur_fail(c, "has %s = %d, outside %d..%d", field, *v, lo, hi);
  return 0;
}

int fc_ckpt_get_i64(fc_ckpt_cur *c, const char *field, int64_t lo, int64_t hi, int64_t *v) {
  const unsigned char *q = s_take(c, field, 8);
  if (!q) return -1;
  memcpy(v, q, 8);
  if (*v < lo || *v > hi)
    return fc_ckpt_cur_fail(c, "has %s = %lld, outside %lld..%lld", field, (long long)*v, (long long)lo, (long long)hi);
  return 0;
}

int fc_ckpt_get_str(fc_ckpt_cur *c, const char *field, char *dst, size_t cap) {
  uint32_t n;
  if (fc_ckpt_get_u32(c, field, &n)) return -1;
  if ((size_t)n >= cap) return fc_ckpt_cur_fail(c, "has a %u-byte %s, longer than %zu", n, field, cap - 1);
  const unsigned char *q = s_take(c, field, n);
  if (!q) return -1;
  if (memchr(q, 0, n)) return fc_ckpt_cur_fail(c, "has a NUL byte inside %s", field);
  memcpy(dst, q, n);
  dst[n] = 0;
  return 0;
}

int fc_ckpt_get_f32s(fc_ckpt_cur *c, const char *field, float *dst, size_t n) {
  if (c->failed) return -1;
  if (n > (c->size - c->pos) / sizeof(float)) /* before multiplying: n is the caller's */
    return fc_ckpt_cur_fail(c, "ends inside field '%s' (%zu floats at offset %zu, the section has %zu bytes)", field, n,
                            c->pos, c->size);
  const unsigned char *q = s_take(c, field, n * sizeof(float));
  if (!q) return -1;
  if (n) memcpy(dst, q, n * sizeof(float));
  return 0;
}

int fc_ckpt_get_bytes(fc_ckpt_cur *c, const char *field, void *dst, size_t n) {
  const unsigned char *q = s_take(c, field, n);
  if (!q) return -1;
  if (n) memcpy(dst, q, n);
  return 0;
}

int fc_ckpt_cur_end(fc_ckpt_cur *c) {
  if (c->failed) return -1;
  if (c->pos != c->size) return fc_ckpt_cur_fail(c, "has %zu bytes left over after its last field", c->size - c->pos);
  return 0;
}
