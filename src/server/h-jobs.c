/* SPDX-License-Identifier: MIT */
/* /api/v1/jobs: list, submit (multipart/form-data into a dip_submit for the service), read and
 * cancel. What a job may be is decided in src/service/submit.c; this file only translates. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "server/http.h"

/* A non-negative integer query argument, `def` when absent, capped at `max`; -1 when bad. */
static long long num_arg(struct ctx *c, const char *name, long long def, long long max)
{
    const char *v = dip__arg(c, name);
    char *end;
    long long n;

    if (v == NULL || v[0] == '\0')
        return def;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0)
        return -1;
    return n > max ? max : n;
}

enum MHD_Result dip__h_jobs_list(struct ctx *c)
{
    const char *all = dip__arg(c, "items");
    int items = all != NULL && (strcmp(all, "1") == 0 || strcmp(all, "true") == 0);
    /* With items, each job lists a first page of them (GET /jobs/{id} pages through the rest):
     * a list of big jobs stays small. */
    long long per_job = num_arg(c, "items_limit", 100, 1000);
    dip_store *st = dip_service_store(c->svc);
    struct dip_store_job *jobs = NULL;
    struct dip_err err = {0};
    size_t n = 0;
    struct dip__sbuf b;
    int rc;

    if (per_job < 0)
        return dip__send_error(c, 400, "EINVAL", "items_limit must be a non-negative integer");
    rc = dip_store_job_list(st, c->admin ? NULL : c->user, items, 1000, &jobs, &n, &err);
    if (rc != 0)
        return dip__send_dip_error(c, rc, &err);
    dip__sbuf_init(&b, DIP__JSON_CAP);
    dip__sbuf_str(&b, "{\"jobs\":[");
    for (size_t i = 0; i < n; i++) {
        struct dip_store_job *full = NULL;
        if (i)
            dip__sbuf_str(&b, ",");
        /* The progress needs the items' states; list them only when asked for. */
        if (!items && dip_store_job_get(st, jobs[i].id, 1, &full, NULL) == 0) {
            dip__job_json(c->svc, full, 0, &b);
            dip_store_job_free(full);
        } else {
            dip__job_json_page(c->svc, &jobs[i], items, 0, (size_t)per_job, &b);
        }
    }
    dip__sbuf_str(&b, "]}");
    dip_store_jobs_free(jobs, n);
    return dip__send_json(c, 200, &b);
}

static enum MHD_Result send_job(struct ctx *c, int status, const char *id)
{
    struct dip_store_job *job = NULL;
    struct dip_err err = {0};
    struct dip__sbuf b;
    int rc = dip_store_job_get(dip_service_store(c->svc), id, 1, &job, &err);

    if (rc != 0)
        return dip__send_dip_error(c, rc, &err);
    dip__sbuf_init(&b, DIP__JSON_CAP);
    dip__job_json(c->svc, job, 1, &b);
    dip_store_job_free(job);
    return dip__send_json(c, status, &b);
}

enum MHD_Result dip__h_job_get(struct ctx *c)
{
    long long off = num_arg(c, "items_offset", 0, 1LL << 40);
    long long lim = num_arg(c, "items_limit", 1000, 10000);
    struct dip_store_job *job = NULL;
    struct dip__sbuf b;

    if (off < 0 || lim < 0)
        return dip__send_error(c, 400, "EINVAL",
                               "items_offset and items_limit must be non-negative integers");
    if (dip__load_job(c, 1, &job) != 0)
        return MHD_YES;
    dip__sbuf_init(&b, DIP__JSON_CAP);
    dip__job_json_page(c->svc, job, 1, (size_t)off, (size_t)lim, &b);
    dip_store_job_free(job);
    return dip__send_json(c, 200, &b);
}

/* DELETE: an unfinished job is cancelled (its done results stay); a finished one is deleted with
 * the blobs no other job uses. */
enum MHD_Result dip__h_job_delete(struct ctx *c)
{
    struct dip_store_job *job = NULL;
    struct dip_err err = {0};
    uint64_t freed = 0;
    struct dip__sbuf b;
    int rc;

    if (dip__load_job(c, 0, &job) != 0)
        return MHD_YES;
    if (!dip_job_state_final(job->state)) {
        dip_store_job_free(job);
        rc = dip_service_cancel(c->svc, c->r->id, c->user, c->admin, &err);
        if (rc != 0)
            return dip__send_dip_error(c, rc, &err);
        return send_job(c, 200, c->r->id);
    }
    dip__sbuf_init(&b, 4096);
    dip__sbuf_str(&b, "{\"id\":");
    dip__sbuf_json_str(&b, job->id);
    dip__sbuf_str(&b, ",\"state\":");
    dip__sbuf_json_str(&b, job->state);
    dip_store_job_free(job);
    rc = dip_service_delete(c->svc, c->r->id, c->user, c->admin, &freed, &err);
    if (rc != 0) {
        dip__sbuf_free(&b);
        return dip__send_dip_error(c, rc, &err);
    }
    dip__sbuf_printf(&b, ",\"deleted\":true,\"freed_bytes\":%llu}", (unsigned long long)freed);
    return dip__send_json(c, 200, &b);
}

/* Copies text field part p into a NUL-terminated string (*dst, dip_malloc'ed). */
static int text_field(const struct dip__part *p, char **dst, struct dip_err *err)
{
    if (p->len > 65536)
        return dip_err_set(err, DIP_ELIMIT, "field '%s' is longer than 65536 bytes", p->name);
    if (memchr(p->data, '\0', p->len) != NULL)
        return dip_err_set(err, DIP_EINVAL, "field '%s' contains a NUL byte", p->name);
    dip_free(*dst);
    *dst = dip_malloc(p->len + 1);
    if (*dst == NULL)
        return DIP_ENOMEM;
    memcpy(*dst, p->data, p->len);
    (*dst)[p->len] = '\0';
    return 0;
}

enum MHD_Result dip__h_jobs_post(struct ctx *c)
{
    const char *ct = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Type");
    const struct dip_service_opts *so = dip_service_options(c->svc);
    struct dip__part *parts = NULL;
    struct dip_submit_file *files = NULL;
    struct dip_submit sub;
    struct dip_err err = {0};
    char boundary[80], id[DIP_STORE_ID_LEN];
    char *pipe = NULL, *fmt = NULL, *qual = NULL;
    size_t nparts = 0, nfiles = 0;
    enum MHD_Result ret;
    int rc;

    rc = dip__multipart_boundary(ct, boundary, sizeof(boundary), &err);
    if (rc == 0)
        rc = dip__multipart_parse((const uint8_t *)c->r->body.data, c->r->body.len, boundary,
                                  (size_t)so->max_images_per_job + 16, &parts, &nparts, &err);
    if (rc == 0 && (files = dip_calloc(nparts + 1, sizeof(*files))) == NULL)
        rc = DIP_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nparts; i++) {
        const struct dip__part *p = &parts[i];
        if (p->has_filename || strcmp(p->name, "file") == 0) {
            files[nfiles].name = p->filename;
            files[nfiles].data = p->data;
            files[nfiles].len = p->len;
            nfiles++;
        } else if (strcmp(p->name, "pipeline") == 0) {
            rc = text_field(p, &pipe, &err);
        } else if (strcmp(p->name, "format") == 0) {
            rc = text_field(p, &fmt, &err);
        } else if (strcmp(p->name, "quality") == 0) {
            rc = text_field(p, &qual, &err);
        }
    }
    if (rc == 0) {
        memset(&sub, 0, sizeof(sub));
        sub.owner = c->user;
        /* A form field wins; the query may carry the options instead (checked before the
         * body was read). */
        sub.pipeline = pipe ? pipe : dip__arg(c, "pipeline") ? dip__arg(c, "pipeline") : "";
        sub.format = fmt ? fmt : dip__arg(c, "format") ? dip__arg(c, "format") : "";
        sub.quality = qual ? qual : dip__arg(c, "quality") ? dip__arg(c, "quality") : "";
        sub.files = files;
        sub.n_files = nfiles;
        rc = dip_service_submit(c->svc, &sub, id, &err);
    }
    if (rc != 0) {
        ret = dip__send_dip_error(c, rc, &err);
    } else {
        char loc[128];
        struct dip_store_job *job = NULL;
        struct dip__sbuf b;
        struct MHD_Response *resp;
        rc = dip_store_job_get(dip_service_store(c->svc), id, 1, &job, &err);
        if (rc != 0) {
            ret = dip__send_dip_error(c, rc, &err);
            goto out;
        }
        dip__sbuf_init(&b, DIP__JSON_CAP);
        dip__job_json(c->svc, job, 1, &b);
        dip_store_job_free(job);
        if (b.failed) {
            ret = dip__send_json(c, 201, &b);
            goto out;
        }
        resp = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
        dip__sbuf_free(&b);
        if (resp == NULL) {
            ret = MHD_NO;
            goto out;
        }
        snprintf(loc, sizeof(loc), "/api/v1/jobs/%s", id);
        MHD_add_response_header(resp, "Content-Type", "application/json");
        MHD_add_response_header(resp, "Location", loc);
        ret = dip__queue(c, 201, resp);
    }
out:
    dip_free(pipe);
    dip_free(fmt);
    dip_free(qual);
    dip_free(files);
    dip_free(parts);
    return ret;
}
