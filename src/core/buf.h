/* SPDX-License-Identifier: MIT */
/* One capped, growable byte buffer for every layer (curl's dynbuf): HTTP bodies and JSON in the
 * service and server, encoded images in the codecs, little-endian fields on the cluster wire.
 * Not installed; include as "core/buf.h". */
#ifndef DIP_CORE_BUF_H
#define DIP_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

/** A buffer that refuses to grow past `cap`, set at init. The first failure sticks in `failed`
 * (DIP_ELIMIT past the cap, DIP_ENOMEM) and frees the bytes, so a run of appends is checked once
 * at the end and a failed buffer never holds half a document. Once anything was added, the bytes
 * are followed by a NUL (not counted in `len`), so text can be read as a C string. */
struct dip__buf {
    union {
        char *data;     /* text: JSON, HTTP bodies */
        uint8_t *bytes; /* binary: encoded images, wire messages */
    };
    size_t len, size, cap;
    int failed;
};

void dip__buf_init(struct dip__buf *b, size_t cap);
/** Frees the bytes; the buffer may be used again (empty, same cap, failure cleared). */
void dip__buf_free(struct dip__buf *b);
/** Empties the buffer, keeping its memory (not a failure). */
void dip__buf_reset(struct dip__buf *b);
int dip__buf_add(struct dip__buf *b, const void *p, size_t n);
/** Makes room for `n` bytes in all (a Content-Length known in advance), so large bodies are not
 * grown by doubling. */
int dip__buf_reserve(struct dip__buf *b, size_t n);
/** Appends `n` bytes left for the caller to fill and returns them; NULL once failed. */
uint8_t *dip__buf_grow(struct dip__buf *b, size_t n);
/** Hands the bytes to the caller (dip_free them); the buffer is empty afterwards. NULL when
 * failed or empty. */
uint8_t *dip__buf_take(struct dip__buf *b, size_t *len);

/* ---- Text and JSON ---- */

int dip__buf_str(struct dip__buf *b, const char *s);
int dip__buf_printf(struct dip__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends `s` as a JSON string literal (quotes included); NULL appends null. Bytes that are not
 * valid UTF-8 become U+FFFD, so a client's bytes never make the JSON invalid. */
int dip__buf_json_str(struct dip__buf *b, const char *s);
/** Appends a JSON number (finite; NaN and infinities become null): integers exactly, other values
 * with three decimals. */
int dip__buf_json_num(struct dip__buf *b, double v);
/** Appends a JSON number that reads back as exactly `v` (the shorter of %.15g and %.17g); NaN and
 * infinities become null. */
int dip__buf_json_exact(struct dip__buf *b, double v);

/* ---- Little-endian fields ---- */

int dip__buf_u8(struct dip__buf *b, uint8_t v);
int dip__buf_u32le(struct dip__buf *b, uint32_t v);
int dip__buf_u64le(struct dip__buf *b, uint64_t v);
int dip__buf_f64le(struct dip__buf *b, double v);

#endif
