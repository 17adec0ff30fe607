/* SPDX-License-Identifier: MIT */
/* A strict multipart/form-data parser (RFC 7578) over a body already in memory. It borrows the
 * parts' bytes from the body, takes a maximum part count, and reports malformed input as
 * DIP_EINVAL with the reason; it never allocates per byte and never reads past `len`. Also the
 * file-name sanitiser used for uploaded names. */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dip/image.h"
#include "server/internal.h"

int dip__multipart_boundary(const char *ct, char *out, size_t out_len, struct dip_err *err)
{
    const char *p;
    size_t n = 0;

    out[0] = '\0';
    if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return dip_err_set(err, DIP_EINVAL, "multipart: Content-Type must be multipart/form-data");
    p = strcasestr(ct, "boundary=");
    if (p == NULL)
        return dip_err_set(err, DIP_EINVAL, "multipart: no boundary in Content-Type");
    p += 9;
    if (*p == '"') {
        p++;
        while (p[n] != '\0' && p[n] != '"')
            n++;
        if (p[n] != '"')
            return dip_err_set(err, DIP_EINVAL, "multipart: unterminated boundary");
    } else {
        while (p[n] != '\0' && p[n] != ';' && p[n] != ' ' && p[n] != '\t')
            n++;
    }
    if (n == 0 || n > 70 || n + 1 > out_len)
        return dip_err_set(err, DIP_EINVAL, "multipart: boundary must have 1 to 70 characters");
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static const uint8_t *find(const uint8_t *hay, size_t hlen, const char *needle, size_t nlen)
{
    return memmem(hay, hlen, needle, nlen);
}

/* Value of parameter `key` (name, filename) in a Content-Disposition header line [p, end). */
static int disp_param(const char *p, const char *end, const char *key, char *out, size_t out_len)
{
    size_t klen = strlen(key);

    out[0] = '\0';
    while (p < end) {
        /* Parameters follow ';'. */
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (semi == NULL)
            return 0;
        p = semi + 1;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(end - p) > klen && strncasecmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t n = 0;
            p += klen + 1;
            if (p < end && *p == '"') {
                p++;
                while (p + n < end && p[n] != '"') {
                    if (p[n] == '\\' && p + n + 1 < end)
                        n++;
                    n++;
                }
            } else {
                while (p + n < end && p[n] != ';' && p[n] != ' ')
                    n++;
            }
            if (n >= out_len)
                n = out_len - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return 1;
        }
    }
    return 0;
}

int dip__multipart_parse(const uint8_t *body, size_t len, const char *boundary, size_t max_parts,
                         struct dip__part **parts, size_t *n, struct dip_err *err)
{
    char delim[80];
    size_t dlen, cnt = 0, cap = 8;
    struct dip__part *arr = NULL;
    const uint8_t *p, *end = body + len;
    int rc = 0;

    *parts = NULL;
    *n = 0;
    dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
    arr = dip_calloc(cap, sizeof(*arr));
    if (arr == NULL)
        return DIP_ENOMEM;
    /* The first delimiter may start the body (no preceding CRLF). */
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
        p = body + dlen - 2;
    } else {
        const uint8_t *d = find(body, len, delim, dlen);
        if (d == NULL) {
            rc = dip_err_set(err, DIP_EINVAL, "multipart: boundary not found in body");
            goto out;
        }
        p = d + dlen;
    }
    for (;;) {
        const uint8_t *hend, *next, *line;
        struct dip__part part;
        int have_disp = 0;

        /* After a delimiter: "--" ends the body, CRLF starts a part. */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            rc = dip_err_set(err, DIP_EINVAL, "multipart: malformed delimiter line");
            goto out;
        }
        p += 2;
        hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (hend == NULL || hend - p > 16384) {
            rc = dip_err_set(err, DIP_EINVAL, "multipart: part headers missing or too long");
            goto out;
        }
        memset(&part, 0, sizeof(part));
        for (line = p; line < hend + 2;) {
            const uint8_t *le = find(line, (size_t)(hend + 2 - line), "\r\n", 2);
            if (le == NULL)
                break;
            if (le - line > 20 &&
                strncasecmp((const char *)line, "content-disposition:", 20) == 0) {
                const char *ls = (const char *)line + 20, *lend = (const char *)le;
                while (ls < lend && (*ls == ' ' || *ls == '\t'))
                    ls++;
                if ((size_t)(lend - ls) < 9 || strncasecmp(ls, "form-data", 9) != 0) {
                    rc = dip_err_set(err, DIP_EINVAL, "multipart: part is not form-data");
                    goto out;
                }
                have_disp = 1;
                disp_param(ls, lend, "name", part.name, sizeof(part.name));
                part.has_filename =
                    disp_param(ls, lend, "filename", part.filename, sizeof(part.filename));
            }
            line = le + 2;
        }
        if (!have_disp || part.name[0] == '\0') {
            rc = dip_err_set(err, DIP_EINVAL, "multipart: part %zu has no Content-Disposition name",
                             cnt + 1);
            goto out;
        }
        p = hend + 4;
        next = find(p, (size_t)(end - p), delim, dlen);
        if (next == NULL) {
            rc = dip_err_set(err, DIP_EINVAL, "multipart: part '%s' is not terminated", part.name);
            goto out;
        }
        part.data = p;
        part.len = (size_t)(next - p);
        if (cnt == max_parts) {
            rc = dip_err_set(err, DIP_ELIMIT, "multipart: more than %zu parts", max_parts);
            goto out;
        }
        if (cnt == cap) {
            struct dip__part *na = dip_realloc(arr, cap * 2 * sizeof(*arr));
            if (na == NULL) {
                rc = DIP_ENOMEM;
                goto out;
            }
            arr = na;
            cap *= 2;
        }
        arr[cnt++] = part;
        p = next + dlen;
    }
    *parts = arr;
    *n = cnt;
    arr = NULL;
out:
    dip_free(arr);
    return rc;
}
