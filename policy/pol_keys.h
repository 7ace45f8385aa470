/* pol_keys: CURVE key files for the node and its clients (ZeroMQ's
 * CurveZMQ: Curve25519 keys, encryption and authentication of every
 * connection; libzmq with libsodium, as Debian builds it).
 *
 * A key pair is two text files, each one line of 40 Z85 characters (ZeroMQ's
 * text form of a 32-byte key):
 *   NAME.key  the secret key, mode 0600: refused when group or others may
 *             read it (as ssh refuses a private key)
 *   NAME.pub  the public key, to hand to peers
 * The public key is derived from the secret one (zmq_curve_public), so a
 * .key file is all a program needs to prove who it is. An allowlist is a
 * folder of .pub files: the node admits exactly the clients whose public key
 * is one of them.
 *
 * Example: make a pair, read it back, allow it
 *
 *   int keys_roundtrip(const char *dir) {
 *     char err[512], name[4096], sec[41], pub[41], path[4200];
 *     snprintf(name, sizeof name, "%s/client", dir);
 *     if (pol_keys_generate(name, err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;
 *     snprintf(path, sizeof path, "%s.key", name);
 *     if (pol_keys_read_secret(path, sec, pub, err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;
 *     pol_keys_allow *a = pol_keys_allow_load(dir, err, sizeof err);   // client.pub is there
 *     if (!a) return fprintf(stderr, "%s\n", err), -1;
 *     unsigned char raw[32];
 *     zmq_z85_decode(raw, pub);
 *     int ok = pol_keys_allowed(a, raw) != NULL;
 *     pol_keys_allow_free(a);
 *     return ok ? 0 : -1;
 *   }
 */
#ifndef POL_KEYS_H
#define POL_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <zmq.h>

/* NAME.key (0600, written atomically, never over an existing file) and
 * NAME.pub; 0, or -1 with a sentence (either file exists, cannot write, no
 * CURVE in this libzmq). */
int pol_keys_generate(const char *name, char *err, size_t errsz);
/* The secret key of a .key file and its public key (Z85, 40 characters +
 * NUL each); 0, or -1 with a sentence naming the file and what is wrong
 * (missing, readable by group or others, not 40 Z85 characters). */
int pol_keys_read_secret(const char *path, char secret[41], char public_key[41], char *err, size_t errsz);
/* The public key of a .pub file (Z85); 0, or -1 with a sentence. */
int pol_keys_read_public(const char *path, char public_key[41], char *err, size_t errsz);

/* An API key (the websocket side's: openpi's "Authorization: Api-Key K")
 * from a file of mode 0600: one line of 16 to 255 printable characters, no
 * spaces. 0, or -1 with a sentence. */
int pol_keys_read_api_key(const char *path, char key[256], char *err, size_t errsz);

/* An allowlist: the .pub files of a folder. */
typedef struct pol_keys_allow pol_keys_allow;
/* NULL with a sentence when the folder cannot be read, holds no .pub file,
 * or one of them is malformed (named). */
pol_keys_allow *pol_keys_allow_load(const char *dir, char *err, size_t errsz);
void pol_keys_allow_free(pol_keys_allow *a);
int pol_keys_allow_count(const pol_keys_allow *a);
const char *pol_keys_allow_dir(const pol_keys_allow *a);
/* the file name (e.g. "robot1.pub") of a 32-byte public key, or NULL when
 * it is not allowed */
const char *pol_keys_allowed(const pol_keys_allow *a, const unsigned char key[32]);

/* ---------- CURVE on a socket, and the ZAP handler (RFC 27) ---------- */

/* a socket as a CURVE server with this secret key (Z85), in ZAP domain "lfp" */
void pol_keys_curve_server(void *sock, const char *secret_z85);
/* The ZAP handler's REP socket on ctx (inproc://zeromq.zap.01), bound
 * before any CURVE socket of ctx binds; NULL with a sentence. */
void *pol_keys_zap_open(void *ctx, char *err, size_t errsz);
/* Answer one ZAP request waiting on zap (call when it polls readable): 200
 * for a CURVE client whose key is in allow, 400 otherwise, with one line
 * "lfp CMD: refused a client from ADDRESS: its key K is not in DIR" on log
 * (the first 20; log may be NULL) and *refused incremented. 1 admitted, 0
 * refused or nothing waiting. */
int pol_keys_zap_handle(void *zap, const pol_keys_allow *allow, FILE *log, const char *cmd, int64_t *refused);

#endif
