/* SPDX-License-Identifier: MIT */
/* The blob store behind dip_store_blob_put/get (internal to src/store): content-addressed blobs
 * named by the SHA-256 of their plaintext, kept in a local folder (DIR/blobs/ab/cdef...) or under
 * a prefix of an S3 bucket (PREFIX/ab/cdef...), and sealed with AES-256-GCM when a key is given
 * (a fresh random nonce per blob, the blob's name as associated data). */
#ifndef DIP_STORE_BLOBS_H
#define DIP_STORE_BLOBS_H

#include <stddef.h>
#include <stdint.h>

#include "dip/error.h"

struct dip_store_blob_opts;
struct dip__blobs;

/** Opens the blob store for data folder `dir` as `o` says (o NULL: DIR/blobs, not encrypted). */
int dip__blobs_open(const char *dir, const struct dip_store_blob_opts *o, struct dip__blobs **out,
                    struct dip_err *err);
void dip__blobs_close(struct dip__blobs *b);
/** Stores `len` bytes whose hex SHA-256 is `sha`; nothing is written when the blob is there. */
int dip__blobs_put(struct dip__blobs *b, const char *sha, const void *data, size_t len,
                   struct dip_err *err);
/** Reads blob `sha` (plaintext) into a dip_malloc'ed buffer. */
int dip__blobs_get(struct dip__blobs *b, const char *sha, size_t max_bytes, uint8_t **out,
                   size_t *len, struct dip_err *err);
/** 1 when blob `sha` of `len` plaintext bytes is stored. */
int dip__blobs_has(struct dip__blobs *b, const char *sha, uint64_t len);
/** Deletes temporaries a crash left (local folder only). */
void dip__blobs_sweep(struct dip__blobs *b);
/** "DIR/blobs" or "s3://bucket/prefix", and ", encrypted (key id X)" when sealed. */
const char *dip__blobs_describe(const struct dip__blobs *b);
/** Opens blob `sha` for reading as plaintext: *fd (seekable, at 0; close it) and its plaintext
 * size. The local plain folder gives the blob file itself; S3 is a streamed GET into an unlinked
 * file of the data folder; a sealed blob is decrypted in 64 KiB chunks into an unlinked file and
 * handed out only once its tag matched. Memory stays constant whatever the size. */
int dip__blobs_open_read(struct dip__blobs *b, const char *sha, int *fd, uint64_t *size,
                         struct dip_err *err);
/** Deletes blob `sha` (file or object); 1 when it went (its stored size added to *bytes). */
int dip__blobs_delete(struct dip__blobs *b, const char *sha, uint64_t *bytes);
/** Calls fn for every stored blob (name, stored size, mtime); fn returns nonzero to stop. */
int dip__blobs_list(struct dip__blobs *b,
                    int (*fn)(void *ud, const char *sha, uint64_t size, double mtime), void *ud,
                    struct dip_err *err);
/** A presigned GET URL for an unencrypted S3 blob; DIP_ENOTFOUND (no message) when the store is
 * local or encrypted (the caller then streams the body). */
int dip__blobs_presign(struct dip__blobs *b, const char *sha, unsigned expires_s, char **url,
                       struct dip_err *err);
/** 1 for a well-formed blob name (64 lower-case hex digits). */
int dip__sha_ok(const char *sha);

#endif
