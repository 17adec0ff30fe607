/* SPDX-License-Identifier: MIT */
/* POST /api/v1/process: one image in the body, the result in the response. The image goes to the
 * service's runner, which runs it through the executor (the cluster under mpirun) in turn with
 * jobs; meanwhile the connection is suspended, so no HTTP thread waits for a computation. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "server/http.h"

struct proc {
    struct dip_process_req r;
    struct MHD_Connection *conn;
    char *pipeline;
};

static void proc_free(void *p)
{
    struct proc *pr = p;

    dip_free(pr->r.out);
    dip_free(pr->pipeline);
    dip_free(pr);
}

static void proc_done(void *ud)
{
    struct proc *pr = ud;

    MHD_resume_connection(pr->conn);
}

static void free_cb(void *p)
{
    dip_free(p);
}

enum MHD_Result dip__h_process(struct ctx *c)
{
    struct proc *pr = c->r->state;
    const char *pipeline = dip__arg(c, "pipeline"), *fmt = dip__arg(c, "format");
    const char *qual = dip__arg(c, "quality");
    struct MHD_Response *resp;
    struct dip_err err = {0};
    char name[32];
    int rc;

    if (pr != NULL) {
        /* Resumed: the runner has finished it. */
        if (pr->r.rc != 0)
            return dip__send_dip_error(c, pr->r.rc, &pr->r.err);
        c->r->bytes = (int64_t)pr->r.out_len;
        resp =
            MHD_create_response_from_buffer_with_free_callback(pr->r.out_len, pr->r.out, free_cb);
        if (resp == NULL)
            return MHD_NO;
        pr->r.out = NULL; /* the response owns it */
        snprintf(name, sizeof(name), "inline; filename=\"result.%s\"",
                 dip_format_ext(pr->r.out_format));
        MHD_add_response_header(resp, "Content-Type", dip__mime_of(pr->r.out_format));
        MHD_add_response_header(resp, "Content-Disposition", name);
        return dip__queue(c, 200, resp);
    }
    rc = dip_service_check_options(c->svc, pipeline ? pipeline : "", fmt ? fmt : "",
                                   qual ? qual : "", NULL, &err);
    if (rc != 0)
        return dip__send_dip_error(c, rc, &err);
    if (c->r->body.len == 0)
        return dip__send_error(c, 400, "EINVAL", "empty body: send one image's bytes");
    pr = dip_calloc(1, sizeof(*pr));
    if (pr == NULL || (pr->pipeline = dip_strdup(pipeline ? pipeline : "")) == NULL) {
        dip_free(pr);
        return dip__send_error(c, 503, "ENOMEM", "out of memory");
    }
    pr->conn = c->conn;
    pr->r.pipeline = pr->pipeline;
    (void)dip__parse_format(fmt, &pr->r.format);
    (void)dip__parse_quality(qual, &pr->r.quality);
    pr->r.in = (const uint8_t *)c->r->body.data;
    pr->r.in_len = c->r->body.len;
    pr->r.owner = c->r->user; /* lives as long as the request */
    c->r->state = pr;
    c->r->state_free = proc_free;
    /* Suspend first: the runner may finish before this handler returns. */
    MHD_suspend_connection(c->conn);
    rc = dip_service_process_start(c->svc, &pr->r, proc_done, pr, &err);
    if (rc != 0) {
        pr->r.rc = rc;
        pr->r.err = err;
        MHD_resume_connection(c->conn);
    }
    return MHD_YES;
}
