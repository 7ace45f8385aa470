/* fc_ckpt: checkpoint files. A fixed header, a table of named sections, the
 * section bytes, and a CRC-32 of everything before it:
 *
 *   offset 0   char     magic[8] = "LFPCKPT\0"
 *          8   u32      format version (FC_CKPT_VERSION)
 *         12   u32      byte-order mark 0x01020304 as written by the host
 *         16   u32      sizeof(float) (4)
 *         20   u32      number of sections
 *         24   u64      total file size in bytes
 *         32   char     kind[32] (what the file holds: "lfm", "policy", ...)
 *         64   section table: per section char name[40], u64 offset, u64 size
 *         ..   section data, each at an 8-byte aligned offset
 *   size - 8   u32      CRC-32 (IEEE) of bytes [0, size - 8)
 *   size - 4   char     "LFPE"
 *
 * Byte order: every number in the file (header, table and sections) is in
 * the writer's byte order; the byte-order mark makes a reader on a machine of
 * the other order refuse the file with a sentence instead of misreading it.
 *
 * Format versions. 2 (this lfp): the metadata sections are written field by
 * field with the helpers below (fc_ckpt_buf / fc_ckpt_cur), each starting with
 * its own u32 section version, sized by the actual dimensions; bulk tensors
 * (weights, optimizer moments) stay raw float32 / int32 arrays. 1 (lfp 0.1.0
 * up to commit a28839e): the same container, but the metadata sections were
 * raw C structs of x86-64 layout; the section owners keep a bounded reader for
 * that layout (fc_ckpt_version tells which one to use), so old files load.
 * Each owner documents its sections: fc_flow.h (lfm.*, train.*), fc_norm.h
 * (norm.*), pol.h (pol.meta).
 *
 * Files are written to "<path>.tmp.<pid>", flushed, fsync'ed, renamed over
 * path, and the directory is fsync'ed, so a reader never sees a half-written
 * checkpoint and the rename survives a power cut. Reading checks each field
 * with its own message and says whether the file is truncated, corrupted or
 * mismatched (another version, byte order, kind or size). A valid CRC only
 * proves that the bytes arrived: every size inside a section is bounded by
 * its reader before anything is allocated.
 *
 * Example: a file with one field-wise and one raw section, and back
 *
 *   int ckpt_example(void) {
 *     char err[256];
 *     float params[3] = {1, 2, 3};
 *     fc_ckpt_writer *w = fc_ckpt_writer_new("lfm");
 *     fc_ckpt_buf b = {0};                               // a field-wise section
 *     fc_ckpt_put_u32(&b, 1);                            // its version
 *     fc_ckpt_put_i32(&b, 3);                            // a count
 *     fc_ckpt_add_buf(w, "demo.config", &b);             // added, b freed
 *     fc_ckpt_add(w, "demo.params", params, sizeof params);
 *     if (fc_ckpt_write(w, "model.lfp", err, sizeof err)) puts(err);
 *     fc_ckpt_writer_free(w);
 *
 *     fc_ckpt *ck = fc_ckpt_read("model.lfp", "lfm", err, sizeof err);
 *     fc_ckpt_cur c;
 *     uint32_t ver;
 *     int32_t count;
 *     if (!ck || fc_ckpt_cur_open(&c, ck, "demo.config", err, sizeof err) ||
 *         fc_ckpt_cur_version(&c, 1, &ver) || fc_ckpt_get_i32(&c, "count", 1, 3, &count) ||
 *         fc_ckpt_cur_end(&c) || fc_ckpt_get_exact(ck, "demo.params", params, count * sizeof(float), err, sizeof err))
 *       puts(err);
 *     fc_ckpt_free(ck);
 *     return 0;
 *   }
 */
#ifndef FC_CKPT_H
#define FC_CKPT_H

#include <stddef.h>
#include <stdint.h>

#define FC_CKPT_VERSION 2     /* written */
#define FC_CKPT_VERSION_MIN 1 /* oldest read */
#define FC_CKPT_NAME_MAX 40

typedef struct fc_ckpt_writer fc_ckpt_writer;
typedef struct fc_ckpt fc_ckpt;

fc_ckpt_writer *fc_ckpt_writer_new(const char *kind);
void fc_ckpt_writer_free(fc_ckpt_writer *w);
/* Add a section (bytes copied). Names are unique, shorter than FC_CKPT_NAME_MAX. */
void fc_ckpt_add(fc_ckpt_writer *w, const char *name, const void *data, size_t size);
/* Write atomically (temporary file, fsync, rename, fsync of the directory).
 * 0 or -1 with err. */
int fc_ckpt_write(const fc_ckpt_writer *w, const char *path, char *err, size_t errsz);

/* Read and validate a whole file. kind: the expected kind, or NULL for any. */
fc_ckpt *fc_ckpt_read(const char *path, const char *kind, char *err, size_t errsz);
/* The same from bytes in memory (path is only used in messages). */
fc_ckpt *fc_ckpt_parse(const void *bytes, size_t size, const char *path, const char *kind,
                       char *err, size_t errsz);
void fc_ckpt_free(fc_ckpt *ck);
const char *fc_ckpt_kind(const fc_ckpt *ck);
/* The file's format version, FC_CKPT_VERSION_MIN..FC_CKPT_VERSION. */
int fc_ckpt_version(const fc_ckpt *ck);
/* A section's bytes (at an offset of the file's buffer, possibly unaligned:
 * copy, do not cast), or NULL when absent. */
const void *fc_ckpt_get(const fc_ckpt *ck, const char *name, size_t *size);
/* Copy a section that must exist and have exactly `size` bytes; otherwise
 * -1 and a "mismatched" sentence naming the section. */
int fc_ckpt_get_exact(const fc_ckpt *ck, const char *name, void *dst, size_t size, char *err,
                      size_t errsz);

/* Make the bytes of a file image (size bytes, at least a header and a
 * trailer) self-consistent: set the total size to `size`, recompute the
 * CRC-32 and write the end marker. fc_ckpt_write seals what it writes;
 * fuzzing and tests seal files they craft, to put hostile contents behind a
 * valid checksum. */
void fc_ckpt_seal(void *bytes, size_t size);

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32) continuing from crc.
 * Thread-safe: the table is a constant. */
uint32_t fc_crc32(uint32_t crc, const void *data, size_t n);

/* ---------- field-wise sections ----------
 * A growable buffer that fields are appended to in order (host byte order);
 * a string is a u32 length then its bytes (no terminator); an array is its
 * elements (the count is a field written before it). Start from {0}. */
typedef struct {
  unsigned char *data;
  size_t len, cap;
} fc_ckpt_buf;
void fc_ckpt_put_u32(fc_ckpt_buf *b, uint32_t v);
void fc_ckpt_put_i32(fc_ckpt_buf *b, int32_t v);
void fc_ckpt_put_u64(fc_ckpt_buf *b, uint64_t v);
void fc_ckpt_put_i64(fc_ckpt_buf *b, int64_t v);
void fc_ckpt_put_f32(fc_ckpt_buf *b, float v);
void fc_ckpt_put_f64(fc_ckpt_buf *b, double v);
void fc_ckpt_put_str(fc_ckpt_buf *b, const char *s);
void fc_ckpt_put_f32s(fc_ckpt_buf *b, const float *v, size_t n);
/* Add the buffer as section `name` and free it (b is {0} afterwards). */
void fc_ckpt_add_buf(fc_ckpt_writer *w, const char *name, fc_ckpt_buf *b);

/* A bounded cursor over one section. Every getter returns 0, or -1 with a
 * "corrupted" sentence naming the section and the field (in the err given to
 * fc_ckpt_cur_open) when the field runs past the section's end or is out of
 * its bounds; after a failure every later call fails too, so calls can be
 * chained with || and checked once. */
typedef struct {
  const unsigned char *p;
  size_t size, pos;
  char name[FC_CKPT_NAME_MAX];
  char *err;
  size_t errsz;
  int failed;
} fc_ckpt_cur;
/* 0, or -1 and a "mismatched" sentence when the section is missing. */
int fc_ckpt_cur_open(fc_ckpt_cur *c, const fc_ckpt *ck, const char *name, char *err, size_t errsz);
/* The section's leading version: 1..max, else a "mismatched" sentence. */
int fc_ckpt_cur_version(fc_ckpt_cur *c, uint32_t max, uint32_t *v);
int fc_ckpt_get_u32(fc_ckpt_cur *c, const char *field, uint32_t *v);
/* A signed integer that must lie in lo..hi. */
int fc_ckpt_get_i32(fc_ckpt_cur *c, const char *field, int32_t lo, int32_t hi, int32_t *v);
int fc_ckpt_get_i64(fc_ckpt_cur *c, const char *field, int64_t lo, int64_t hi, int64_t *v);
int fc_ckpt_get_u64(fc_ckpt_cur *c, const char *field, uint64_t *v);
int fc_ckpt_get_f32(fc_ckpt_cur *c, const char *field, float *v);
int fc_ckpt_get_f64(fc_ckpt_cur *c, const char *field, double *v);
/* A string shorter than cap bytes without NUL bytes, stored NUL-terminated. */
int fc_ckpt_get_str(fc_ckpt_cur *c, const char *field, char *dst, size_t cap);
/* n floats (n bounded by the caller). */
int fc_ckpt_get_f32s(fc_ckpt_cur *c, const char *field, float *dst, size_t n);
/* n raw bytes (fixed-width fields of format-1 structs). */
int fc_ckpt_get_bytes(fc_ckpt_cur *c, const char *field, void *dst, size_t n);
/* 0 when every byte was read, else -1 ("corrupted": bytes left over). */
int fc_ckpt_cur_end(fc_ckpt_cur *c);
/* Fail the cursor with "checkpoint is corrupted: section '<name>' <sentence>"
 * (for checks across fields); returns -1. */
int fc_ckpt_cur_fail(fc_ckpt_cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with "checkpoint is mismatched: ..." for a well-formed value this
 * lfp does not know (a newer section version, a newer network kind). */
int fc_ckpt_cur_mismatch(fc_ckpt_cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
