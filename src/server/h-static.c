/* SPDX-License-Identifier: MIT */
/* The web page's static files, from the web folder only: paths that could climb out of it are
 * refused before the disk is touched, and files are sent from their descriptor (MHD reads them in
 * pieces). */
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
    c->r->bytes = (int64_t)sb.st_size;
    resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (resp == NULL) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", content_type_of(real));
    return dip__queue(c, 200, resp);
}
