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
/** 1 for a well-formed blob name (64 lower-case hex digits). */
int dip__sha_ok(const char *sha);

#endif
