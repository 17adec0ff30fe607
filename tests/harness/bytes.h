/* SPDX-License-Identifier: MIT */
/* A growable byte string for the tests that write files by hand (the codec tests, the hostile
 * inputs, the fuzz seed corpus): append in the stated byte order, each header field under the
 * test's control. Test code: aborts on out of memory. */
#ifndef DIP_TEST_BYTES_H
#define DIP_TEST_BYTES_H

#include <stddef.h>
#include <stdint.h>

struct bytes {
    uint8_t *p;
    size_t n, cap;
};

void bytes_put(struct bytes *b, const void *p, size_t n); /* p may be NULL when n is 0 */
void bytes_fill(struct bytes *b, int c, size_t n);
void bytes_u8(struct bytes *b, unsigned v);
void bytes_le16(struct bytes *b, unsigned v);
void bytes_be16(struct bytes *b, unsigned v);
void bytes_le32(struct bytes *b, uint32_t v);
void bytes_be32(struct bytes *b, uint32_t v);
void bytes_str(struct bytes *b, const char *s);
void bytes_printf(struct bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Overwrites 4 bytes at `at` (already written) with v, little-endian. */
void bytes_set_le32(struct bytes *b, size_t at, uint32_t v);
void bytes_free(struct bytes *b);

#endif
