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
 * Files are written to "<path>.tmp.<pid>", flushed, fsync'ed, then renamed
 * over path, so a reader never sees a half-written checkpoint. Reading checks
 * each field with its own message and says whether the file is truncated,
 * corrupted or mismatched (another version, byte order, kind or size).
 *
 *   fc_ckpt_writer *w = fc_ckpt_writer_new("lfm");
 *   fc_ckpt_add(w, "params", params, n * sizeof(float));
 *   if (fc_ckpt_write(w, "model.lfp", err, sizeof err)) puts(err);
 *   fc_ckpt_writer_free(w);
 *
 *   fc_ckpt *ck = fc_ckpt_read("model.lfp", "lfm", err, sizeof err);
 *   size_t sz; const void *p = fc_ckpt_get(ck, "params", &sz);
 */
#ifndef FC_CKPT_H
#define FC_CKPT_H

#include <stddef.h>
#include <stdint.h>

#define FC_CKPT_VERSION 1
#define FC_CKPT_NAME_MAX 40

typedef struct fc_ckpt_writer fc_ckpt_writer;
typedef struct fc_ckpt fc_ckpt;

fc_ckpt_writer *fc_ckpt_writer_new(const char *kind);
void fc_ckpt_writer_free(fc_ckpt_writer *w);
/* Add a section (bytes copied). Names are unique, shorter than FC_CKPT_NAME_MAX. */
void fc_ckpt_add(fc_ckpt_writer *w, const char *name, const void *data, size_t size);
/* Write atomically (temporary file, fsync, rename). 0 or -1 with err. */
int fc_ckpt_write(const fc_ckpt_writer *w, const char *path, char *err, size_t errsz);

/* Read and validate a whole file. kind: the expected kind, or NULL for any. */
fc_ckpt *fc_ckpt_read(const char *path, const char *kind, char *err, size_t errsz);
/* The same from bytes in memory (path is only used in messages). */
fc_ckpt *fc_ckpt_parse(const void *bytes, size_t size, const char *path, const char *kind,
                       char *err, size_t errsz);
void fc_ckpt_free(fc_ckpt *ck);
const char *fc_ckpt_kind(const fc_ckpt *ck);
/* A section's bytes, or NULL when absent. */
const void *fc_ckpt_get(const fc_ckpt *ck, const char *name, size_t *size);
/* Copy a section that must exist and have exactly `size` bytes; otherwise
 * -1 and a "mismatched" sentence naming the section. */
int fc_ckpt_get_exact(const fc_ckpt *ck, const char *name, void *dst, size_t size, char *err,
                      size_t errsz);

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32) continuing from crc. */
uint32_t fc_crc32(uint32_t crc, const void *data, size_t n);

#endif
