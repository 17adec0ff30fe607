/* SPDX-License-Identifier: MIT */
/* The web page's static files, from the web folder only: paths that could climb out of it are
 * refused before the disk is touched, and files are sent from their descriptor (MHD reads them in
 * pieces). Caching: every file has an ETag (its size and modification time) and `Cache-Control:
 * no-cache`, so a browser keeps it and revalidates it with one small request (304), and an
 * upgraded page is never served stale (the file names carry no content hash, so `immutable` would
 * pin old scripts). Text files (HTML, CSS, JS, SVG, JSON) are gzip-compressed for clients that
 * accept it (docs/web.md). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "server/http.h"

static const char *content_type_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".md", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
        {".woff", "font/woff"},
        {".wasm", "application/wasm"},
    };
    const char *dot = strrchr(path, '.');

    for (size_t i = 0; dot != NULL && i < DIP_COUNTOF(types); i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

#define GZIP_MAX ((size_t)8 << 20) /* larger files go out as they are */

static int compressible(const char *type)
{
    return strncmp(type, "text/", 5) == 0 || strncmp(type, "application/json", 16) == 0 ||
           strcmp(type, "image/svg+xml") == 0;
}

/* 1 when the Accept-Encoding header lists gzip without q=0. */
static int accepts_gzip(struct ctx *c)
{
    const char *ae = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Accept-Encoding");
    const char *g = ae ? strstr(ae, "gzip") : NULL;

    if (g == NULL)
        return 0;
    g += 4;
    while (*g == ' ')
        g++;
    if (*g == ';') {
        const char *q = strstr(g, "q=");
        if (q != NULL && (size_t)(q - g) < strcspn(g, ",") && strtod(q + 2, NULL) <= 0.0)
            return 0; /* gzip;q=0: refused */
    }
    return 1;
}

/* 1 when If-None-Match names `etag` (or is "*"). */
static int not_modified(struct ctx *c, const char *etag)
{
    const char *inm = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "If-None-Match");

    return inm != NULL && (strstr(inm, etag) != NULL || strcmp(inm, "*") == 0);
}

/* The whole file `fd` (size bytes) gzip-compressed into *out (dip_malloc'ed); -1 on failure. */
static int gzip_file(int fd, size_t size, uint8_t **out, size_t *out_len)
{
    uint8_t *in = dip_malloc(size ? size : 1);
    size_t got = 0;
    int rc = -1;

    if (in == NULL)
        return -1;
    while (got < size) {
        ssize_t r = pread(fd, in + got, size - got, (off_t)got);
        if (r <= 0)
            goto out;
        got += (size_t)r;
    }
    rc = dip_gzip(in, size, 6, out, out_len) == 0 ? 0 : -1;
out:
    dip_free(in);
    return rc;
}

static void free_cb(void *p)
{
    dip_free(p);
}

enum MHD_Result dip__serve_static(struct ctx *c, const char *url)
{
    char path[PATH_MAX], real[PATH_MAX], root[PATH_MAX];
    const char *rel = strcmp(url, "/") == 0 ? "/index.html" : url;
    struct MHD_Response *resp;
    struct stat sb;
    size_t rlen;
    int fd;

    /* Refuse anything that could climb out of the web folder before touching the disk. */
    if (rel[0] != '/' || strstr(rel, "..") != NULL || strchr(rel, '\\') != NULL ||
        strstr(rel, "//") != NULL || strlen(rel) > 1024)
        return dip__send_error(c, 404, "ENOTFOUND", "not found");
    for (const char *q = rel; *q != '\0'; q++)
        if ((unsigned char)*q < 0x20)
            return dip__send_error(c, 404, "ENOTFOUND", "not found");
    if (realpath(c->s->web_dir, root) == NULL)
        return dip__send_error(c, 404, "ENOTFOUND", "no web folder");
    if (snprintf(path, sizeof(path), "%s%s", root, rel) >= (int)sizeof(path) ||
        realpath(path, real) == NULL)
        return dip__send_error(c, 404, "ENOTFOUND", "not found");
    rlen = strlen(root);
    if (strncmp(real, root, rlen) != 0 || (real[rlen] != '/' && real[rlen] != '\0'))
        return dip__send_error(c, 404, "ENOTFOUND", "not found");
    fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dip__send_error(c, 404, "ENOTFOUND", "not found");
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return dip__send_error(c, 404, "ENOTFOUND", "not found");
    }
    {
        const char *type = content_type_of(real);
        int gz = compressible(type) && sb.st_size > 256 && (size_t)sb.st_size <= GZIP_MAX &&
                 accepts_gzip(c);
        uint8_t *zbuf = NULL;
        size_t zlen = 0;
        char etag[96];
        int status = 200;

        snprintf(etag, sizeof(etag), "\"%llx-%llx%s\"", (unsigned long long)sb.st_size,
                 (unsigned long long)sb.st_mtim.tv_sec * 1000000000ull +
                     (unsigned long long)sb.st_mtim.tv_nsec,
                 gz ? "-gz" : "");
        if (not_modified(c, etag)) {
            close(fd);
            c->r->bytes = 0;
            resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            status = 304;
        } else if (gz && gzip_file(fd, (size_t)sb.st_size, &zbuf, &zlen) == 0) {
            close(fd);
            c->r->bytes = (int64_t)zlen;
            resp = MHD_create_response_from_buffer_with_free_callback(zlen, zbuf, free_cb);
            if (resp == NULL)
                dip_free(zbuf);
            else
                MHD_add_response_header(resp, "Content-Encoding", "gzip");
        } else {
            /* Not compressible, too large, or the compression failed: the file as it is. */
            if (gz) {
                gz = 0;
                snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)sb.st_size,
                         (unsigned long long)sb.st_mtim.tv_sec * 1000000000ull +
                             (unsigned long long)sb.st_mtim.tv_nsec);
            }
            c->r->bytes = (int64_t)sb.st_size;
            resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
            if (resp == NULL)
                close(fd);
        }
        if (resp == NULL)
            return MHD_NO;
        if (status == 200)
            MHD_add_response_header(resp, "Content-Type", type);
        MHD_add_response_header(resp, "ETag", etag);
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        if (compressible(type))
            MHD_add_response_header(resp, "Vary", "Accept-Encoding");
        return dip__queue(c, status, resp);
    }
}
