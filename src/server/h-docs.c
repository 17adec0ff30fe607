/* SPDX-License-Identifier: MIT */
/* The API's own description: /api/v1/openapi.json (docs/openapi.yaml converted to JSON at build
 * time by tools/openapi.py and compiled in, so the served document is the repository's) and the
 * reference page /api/docs, rendered in the browser by Redoc's standalone bundle, which is served
 * from /api/docs/redoc.js (the file npm installed when dip was built; no CDN). */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "server/http.h"

extern const char dip__openapi_json[];
extern const size_t dip__openapi_json_len;

static const char docs_page[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>dip API reference</title>\n"
    "<link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>body{margin:0}</style></head><body>\n"
    "<redoc spec-url=\"/api/v1/openapi.json\"></redoc>\n"
    "<noscript>The reference page needs JavaScript; the document itself is "
    "<a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</noscript>\n"
    "<script src=\"/api/docs/redoc.js\"></script>\n"
    "</body></html>\n";

enum MHD_Result dip__h_openapi(struct ctx *c)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        dip__openapi_json_len, (void *)(uintptr_t)dip__openapi_json, MHD_RESPMEM_PERSISTENT);

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    c->r->bytes = (int64_t)dip__openapi_json_len;
    return dip__queue(c, 200, resp);
}

enum MHD_Result dip__h_docs(struct ctx *c)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof(docs_page) - 1, (void *)(uintptr_t)docs_page, MHD_RESPMEM_PERSISTENT);

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    c->r->bytes = (int64_t)sizeof(docs_page) - 1;
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                            "img-src 'self' data:; worker-src 'self' blob:");
    return dip__queue(c, 200, resp);
}

enum MHD_Result dip__h_docs_js(struct ctx *c)
{
    struct MHD_Response *resp;
    struct stat sb;
    int fd = open(DIP_REDOC_JS, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return dip__send_error(c, 404, "ENOTFOUND",
                               "the Redoc bundle was not installed when dip was built "
                               "(npm ci in tests/openapi); the document is /api/v1/openapi.json");
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return dip__send_error(c, 404, "ENOTFOUND", "the Redoc bundle is not a file");
    }
    resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (resp == NULL) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/javascript");
    c->r->bytes = (int64_t)sb.st_size;
    return dip__queue(c, 200, resp);
}
