/* SPDX-License-Identifier: MIT */
/* Responses shared by every handler: JSON bodies and errors (with the headers that go with each
 * status), the job lookup that answers 404 for another user's job, and MIME types. MHD results
 * are mapped here and in server.c, nowhere else. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "server/http.h"

enum MHD_Result dip__queue(struct ctx *c, int status, struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (resp == NULL)
        return MHD_NO; /* out of memory: MHD closes the connection */
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* API answers carry a user's data: never cached. Static files set their own policy. */
    if (MHD_get_response_header(resp, "Cache-Control") == NULL)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    ret = MHD_queue_response(c->conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);
    c->r->responded = 1;
    c->r->status = status;
    return ret;
}

static void free_cb(void *p)
{
    dip_free(p);
}

enum MHD_Result dip__send_sbuf(struct ctx *c, int status, const char *type, struct dip__sbuf *b)
{
    struct MHD_Response *resp;

    if (b->failed) {
        dip__sbuf_free(b);
        dip__sbuf_init(b, 1024);
        dip__sbuf_str(b, "{\"error\":{\"code\":\"ENOMEM\",\"message\":\"response too large\"}}");
        status = 503;
    }
    c->r->bytes = (int64_t)b->len;
    resp = MHD_create_response_from_buffer_with_free_callback(b->len, b->data ? b->data : "",
                                                              b->data ? free_cb : NULL);
    if (resp == NULL) {
        dip__sbuf_free(b);
        return MHD_NO;
    }
    b->data = NULL;
    dip__sbuf_free(b);
    MHD_add_response_header(resp, "Content-Type", type);
    return dip__queue(c, status, resp);
}

enum MHD_Result dip__send_json(struct ctx *c, int status, struct dip__sbuf *b)
{
    return dip__send_sbuf(c, status, "application/json", b);
}

enum MHD_Result dip__send_error(struct ctx *c, int status, const char *code, const char *fmt, ...)
{
    struct dip__sbuf b;
    struct MHD_Response *resp;
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dip__sbuf_init(&b, 4096);
    dip__sbuf_str(&b, "{\"error\":{\"code\":");
    dip__sbuf_json_str(&b, code);
    dip__sbuf_str(&b, ",\"message\":");
    dip__sbuf_json_str(&b, msg);
    dip__sbuf_str(&b, "}}");
    if (b.failed) {
        dip__sbuf_free(&b);
        return MHD_NO;
    }
    c->r->bytes = (int64_t)b.len;
    resp = MHD_create_response_from_buffer_with_free_callback(b.len, b.data, free_cb);
    if (resp == NULL) {
        dip__sbuf_free(&b);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"dip\"");
    if (status == 429 || status == 503 || status == 507)
        MHD_add_response_header(resp, "Retry-After", "5");
    if (status == 413 || status == 400 || status == 431 || status == 401)
        MHD_add_response_header(resp, "Connection", "close");
    return dip__queue(c, status, resp);
}

enum MHD_Result dip__send_dip_error(struct ctx *c, int rc, const struct dip_err *err)
{
    return dip__send_error(c, dip_err_http_status(rc), dip_err_name(rc), "%s",
                           dip_err_text(err, rc));
}

int dip__load_job(struct ctx *c, int items, struct dip_store_job **job)
{
    struct dip_err err = {0};
    int rc = dip_service_job_get(c->svc, c->r->id, c->user, c->admin, items, job, &err);

    if (rc != 0)
        dip__send_dip_error(c, rc, &err);
    return rc;
}

const char *dip__arg(struct ctx *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *dip__mime_of(dip_format f)
{
    switch (f) {
    case DIP_FORMAT_PNG:
        return "image/png";
    case DIP_FORMAT_JPEG:
        return "image/jpeg";
    case DIP_FORMAT_WEBP:
        return "image/webp";
    case DIP_FORMAT_TIFF:
        return "image/tiff";
    case DIP_FORMAT_GIF:
        return "image/gif";
    case DIP_FORMAT_BMP:
        return "image/bmp";
    case DIP_FORMAT_PNM:
        return "image/x-portable-anymap";
    default:
        return "application/octet-stream";
    }
}
