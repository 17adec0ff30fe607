/* SPDX-License-Identifier: MIT */
/* One job's stored inputs: an item's input image as it was uploaded (/items/{n}/input, so that a
 * page can show before and after for any past job), and a retry of the failed and cancelled
 * images as a new job from those inputs (/retry), without uploading them again. What a retry may
 * be is decided in src/service/submit.c; this file only translates. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "dip/codec.h"
#include "server/http.h"

enum MHD_Result dip__h_input(struct ctx *c)
{
    struct dip_store_job *job = NULL;
    struct dip_err err = {0};
    struct MHD_Response *resp;
    enum MHD_Result ret;
    uint8_t head[64];
    uint64_t size = 0;
    unsigned long n;
    char cd[400], *end;
    ssize_t got;
    int rc, fd = -1;

    if (dip__load_job(c, 1, &job) != 0)
        return MHD_YES;
    errno = 0;
    n = strtoul(c->r->n, &end, 10);
    if (errno != 0 || *end != '\0' || c->r->n[0] < '0' || c->r->n[0] > '9' || n >= job->n_items) {
        ret = dip__send_error(c, 404, "ENOTFOUND", "job %s has no item %.32s", job->id, c->r->n);
        goto out;
    }
    rc = dip_store_blob_open(dip_service_store(c->svc), job->items[n].sha, &fd, &size, &err);
    if (rc != 0) {
        if (rc == DIP_EINTEGRITY)
            ret = dip__send_error(c, dip_err_http_status(rc), dip_err_name(rc), "%s", err.msg);
        else
            ret = dip__send_error(c, dip_err_http_status(rc), dip_err_name(rc),
                                  "the input of item %lu is not readable", n);
        goto out;
    }
    /* The type from the bytes, as the service decided the format when it took the upload. */
    got = pread(fd, head, sizeof(head), 0);
    resp = MHD_create_response_from_fd(size, fd);
    if (resp == NULL) {
        close(fd);
        ret = MHD_NO;
        goto out;
    }
    c->r->bytes = (int64_t)size;
    snprintf(cd, sizeof(cd), "inline; filename=\"%s\"", job->items[n].name);
    MHD_add_response_header(
        resp, "Content-Type",
        dip__mime_of(got > 0 ? dip_codec_sniff(head, (size_t)got) : DIP_FORMAT_UNKNOWN));
    MHD_add_response_header(resp, "Content-Disposition", cd);
    ret = dip__queue(c, 200, resp);
out:
    dip_store_job_free(job);
    return ret;
}

enum MHD_Result dip__h_retry(struct ctx *c)
{
    struct dip_store_job *job = NULL;
    struct dip_err err = {0};
    struct MHD_Response *resp;
    struct dip__sbuf b;
    char id[DIP_STORE_ID_LEN], loc[128];
    int rc;

    rc = dip_service_retry(c->svc, c->r->id, c->user, c->admin, id, &err);
    if (rc == 0)
        rc = dip_store_job_get(dip_service_store(c->svc), id, 1, &job, &err);
    if (rc != 0)
        return dip__send_dip_error(c, rc, &err);
    dip__sbuf_init(&b, DIP__JSON_CAP);
    dip__job_json(c->svc, job, 1, &b);
    dip_store_job_free(job);
    if (b.failed)
        return dip__send_json(c, 201, &b);
    c->r->bytes = (int64_t)b.len;
    resp = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
    dip__sbuf_free(&b);
    if (resp == NULL)
        return MHD_NO;
    snprintf(loc, sizeof(loc), "/api/v1/jobs/%s", id);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Location", loc);
    return dip__queue(c, 201, resp);
}
