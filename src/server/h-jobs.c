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

/* POST .../cancel: cancels an unfinished job and answers the job; a finished one is left as it is
 * (never deleted), so a Cancel that races the job's end loses nothing. */
enum MHD_Result dip__h_job_cancel(struct ctx *c)
{
    struct dip_err err = {0};
    int rc = dip_service_cancel(c->svc, c->r->id, c->user, c->admin, &err);

    if (rc != 0)
        return dip__send_dip_error(c, rc, &err);
    return send_job(c, 200, c->r->id);
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

/* ---- Submissions, off the HTTP threads ---- */

/* A submission probes every image and writes (and fsyncs) every blob: seconds for a big batch.
 * That runs on the server's intake threads while the connection is suspended, so the HTTP
 * threads stay free for everybody else. */
struct dip__intake {
    struct dip__intake *next;
    struct MHD_Connection *conn;
    dip_service *svc;
    struct dip__part *parts; /* borrow from the request body, which outlives this */
    struct dip_submit_file *files;
    char *pipe, *fmt, *qual, *name;
    char owner[64];
    struct dip_submit sub;
    int rc, finished;
    struct dip_err err;
    char id[DIP_STORE_ID_LEN];
};

static void intake_free(void *p)
{
    struct dip__intake *in = p;

    dip_free(in->pipe);
    dip_free(in->fmt);
    dip_free(in->qual);
    dip_free(in->name);
    dip_free(in->files);
    dip_free(in->parts);
    dip_free(in);
}

static void *intake_worker(void *arg)
{
    dip_server *s = arg;

    for (;;) {
        struct dip__intake *in;
        pthread_mutex_lock(&s->lock);
        while (s->intake_head == NULL && !s->intake_stop)
            pthread_cond_wait(&s->intake_cond, &s->lock);
        in = s->intake_head;
        if (in != NULL)
            s->intake_head = in->next;
        pthread_mutex_unlock(&s->lock);
        if (in == NULL)
            break; /* stopping and nothing left */
        in->rc = dip_service_submit(in->svc, &in->sub, in->id, &in->err);
        in->finished = 1;
        MHD_resume_connection(in->conn);
    }
    return NULL;
}

int dip__intake_start(dip_server *s)
{
    pthread_cond_init(&s->intake_cond, NULL);
    s->has_intake_cond = 1;
    for (size_t i = 0; i < DIP_COUNTOF(s->intake); i++) {
        if (pthread_create(&s->intake[i], NULL, intake_worker, s) != 0)
            return -1;
        s->n_intake++;
    }
    return 0;
}

void dip__intake_stop(dip_server *s)
{
    if (!s->has_intake_cond)
        return;
    /* Workers finish what is queued (a submission is short next to a shutdown), then leave. */
    pthread_mutex_lock(&s->lock);
    s->intake_stop = 1;
    pthread_cond_broadcast(&s->intake_cond);
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < s->n_intake; i++)
        pthread_join(s->intake[i], NULL);
    s->n_intake = 0;
    pthread_cond_destroy(&s->intake_cond);
    s->has_intake_cond = 0;
}

/* Resumed: the intake thread has decided. */
static enum MHD_Result answer(struct ctx *c, struct dip__intake *in)
{
    struct dip_store_job *job = NULL;
    struct dip_err err = {0};
    struct dip__sbuf b;
    struct MHD_Response *resp;
    char loc[128];
    int rc;

    if (in->rc != 0)
        return dip__send_dip_error(c, in->rc, &in->err);
    rc = dip_store_job_get(dip_service_store(c->svc), in->id, 1, &job, &err);
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
    snprintf(loc, sizeof(loc), "/api/v1/jobs/%s", in->id);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Location", loc);
    return dip__queue(c, 201, resp);
}

enum MHD_Result dip__h_jobs_post(struct ctx *c)
{
    const char *ct = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Type");
    const struct dip_service_opts *so = dip_service_options(c->svc);
    struct dip__intake *in = c->r->state;
    struct dip_err err = {0};
    char boundary[80];
    size_t nparts = 0, nfiles = 0;
    int rc;

    if (in != NULL)
        return answer(c, in);
    in = dip_calloc(1, sizeof(*in));
    if (in == NULL)
        return dip__send_error(c, 503, "ENOMEM", "out of memory");
    rc = dip__multipart_boundary(ct, boundary, sizeof(boundary), &err);
    if (rc == 0)
        rc = dip__multipart_parse((const uint8_t *)c->r->body.data, c->r->body.len, boundary,
                                  (size_t)so->max_images_per_job + 16, &in->parts, &nparts, &err);
    if (rc == 0 && (in->files = dip_calloc(nparts + 1, sizeof(*in->files))) == NULL)
        rc = DIP_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nparts; i++) {
        const struct dip__part *p = &in->parts[i];
        if (p->has_filename || strcmp(p->name, "file") == 0) {
            in->files[nfiles].name = p->filename;
            in->files[nfiles].data = p->data;
            in->files[nfiles].len = p->len;
            nfiles++;
        } else if (strcmp(p->name, "pipeline") == 0) {
            rc = text_field(p, &in->pipe, &err);
        } else if (strcmp(p->name, "format") == 0) {
            rc = text_field(p, &in->fmt, &err);
        } else if (strcmp(p->name, "quality") == 0) {
            rc = text_field(p, &in->qual, &err);
        } else if (strcmp(p->name, "name") == 0) {
            rc = text_field(p, &in->name, &err);
        }
    }
    if (rc != 0) {
        intake_free(in);
        return dip__send_dip_error(c, rc, &err);
    }
    snprintf(in->owner, sizeof(in->owner), "%s", c->user);
    in->sub.owner = in->owner;
    /* A form field wins; the query may carry the options instead (checked before the body was
     * read). The query strings live as long as the connection. */
    in->sub.pipeline = in->pipe ? in->pipe : dip__arg(c, "pipeline") ? dip__arg(c, "pipeline") : "";
    in->sub.format = in->fmt ? in->fmt : dip__arg(c, "format") ? dip__arg(c, "format") : "";
    in->sub.quality = in->qual ? in->qual : dip__arg(c, "quality") ? dip__arg(c, "quality") : "";
    in->sub.name = in->name ? in->name : dip__arg(c, "name");
    in->sub.files = in->files;
    in->sub.n_files = nfiles;
    in->svc = c->svc;
    in->conn = c->conn;
    c->r->state = in;
    c->r->state_free = intake_free;
    MHD_suspend_connection(c->conn);
    pthread_mutex_lock(&c->s->lock);
    if (c->s->intake_stop) {
        in->rc = dip_err_set(&in->err, DIP_EBUSY, "the server is stopping");
        in->finished = 1;
        pthread_mutex_unlock(&c->s->lock);
        MHD_resume_connection(c->conn);
        return MHD_YES;
    }
    {
        struct dip__intake **pp = &c->s->intake_head;
        while (*pp != NULL)
            pp = &(*pp)->next;
        *pp = in;
    }
    pthread_cond_signal(&c->s->intake_cond);
    pthread_mutex_unlock(&c->s->lock);
    return MHD_YES;
}
