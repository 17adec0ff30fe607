/* SPDX-License-Identifier: MIT */
/* The MHD-free pieces of src/server, unit-tested without a daemon: the multipart/form-data parser
 * and the zip writer's records (the capped buffer comes from src/service). The daemon's own
 * private header is http.h. */
#ifndef DIP_SERVER_INTERNAL_H
#define DIP_SERVER_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "dip/error.h"
#include "service/internal.h"

/* ---- multipart/form-data (multipart.c) ---- */

struct dip__part {
    char name[64];
    char filename[256]; /* as sent (sanitise before use) */
    int has_filename;
    const uint8_t *data; /* borrowed from the body */
    size_t len;
};

/** Finds the boundary in a Content-Type header value ("multipart/form-data; boundary=x").
 * Returns 0 or DIP_EINVAL (err says why). */
int dip__multipart_boundary(const char *content_type, char *out, size_t out_len,
                            struct dip_err *err);
/** Splits `body` into at most `max_parts` parts (borrowing from body). Returns 0, DIP_EINVAL for
 * malformed bodies, DIP_ELIMIT for too many parts; err says which. *parts is dip_malloc'ed. */
int dip__multipart_parse(const uint8_t *body, size_t len, const char *boundary, size_t max_parts,
                         struct dip__part **parts, size_t *n, struct dip_err *err);

/* ---- zip (zip.c) ---- */

uint32_t dip__crc32(uint32_t crc, const void *data, size_t len);
/** Appends a stored entry's local header for `name` (len bytes, crc). */
int dip__zip_local_header(struct dip__sbuf *b, const char *name, uint32_t crc, uint32_t len);
/** Appends the central directory record of an entry whose local header is at `offset`. */
int dip__zip_central(struct dip__sbuf *b, const char *name, uint32_t crc, uint32_t len,
                     uint32_t offset);
/** Appends the end-of-central-directory record. */
int dip__zip_end(struct dip__sbuf *b, uint16_t entries, uint32_t cd_size, uint32_t cd_offset);

#endif
