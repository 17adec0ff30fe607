/* SPDX-License-Identifier: MIT */
/* GET /api/v1/jobs/{id}/events: progress as Server-Sent Events. A stream holds no thread: when it
 * has nothing to send, its content callback suspends the connection, and a change in the service
 * (or the one-second tick of the server's ticker) resumes it. Every tick sends at least a comment
 * line, so a peer that went away is noticed within a second or two rather than at the next
 * progress event. Streams are capped per user and in all, so one user cannot hold every slot. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "server/http.h"

#define KEEPALIVE_S 1.0

struct dip__sse {
    struct dip__sse *next;
    dip_server *s;
    struct MHD_Connection *conn;
    char id[DIP_STORE_ID_LEN];
    char user[64];
    struct dip__sbuf pending;
    size_t off;
    uint64_t seen;
    double started, last_send;
    int first, ended, suspended;
};

/* Resumes every suspended stream (called on a service change and by the ticker). */
void dip__events_wake(void *server)
{
    dip_server *s = server;

    pthread_mutex_lock(&s->lock);
    for (struct dip__sse *e = s->streams; e != NULL; e = e->next) {
        if (e->suspended) {
            e->suspended = 0;
            MHD_resume_connection(e->conn);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

/* Nothing to send now: park the connection until the next wake. 0 bytes with the connection
 * suspended is the pattern MHD documents for content callbacks. */
static ssize_t park(struct dip__sse *e)
{
    pthread_mutex_lock(&e->s->lock);
    if (!e->s->stopping) {
        e->suspended = 1;
        MHD_suspend_connection(e->conn);
    }
    pthread_mutex_unlock(&e->s->lock);
    return 0;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct dip__sse *e = cls;
    dip_server *s = e->s;
    struct dip_store_job *job = NULL;
    uint64_t version;
    double now = dip__now();
    int changed;
    size_t n;

    (void)pos;
    if (e->off < e->pending.len)
        goto copy;
    dip__sbuf_reset(&e->pending);
    e->off = 0;
    if (e->ended || dip_service_stopping(s->svc) || now - e->started > (double)s->o.sse_max_s)
        return MHD_CONTENT_READER_END_OF_STREAM;
    version = dip_service_version(s->svc);
    changed = e->first || version != e->seen;
    /* At most ten events a second; a keepalive comment every tick otherwise. */
    if ((changed && !e->first && now - e->last_send < 0.1) ||
        (!changed && now - e->last_send < KEEPALIVE_S))
        return park(e);
    e->first = 0;
    e->last_send = now;
    if (!changed) {
        dip__sbuf_str(&e->pending, ": keepalive\n\n");
        goto copy;
    }
    e->seen = version;
    if (dip_store_job_get(dip_service_store(s->svc), e->id, 1, &job, NULL) != 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    dip__sbuf_str(&e->pending, "event: progress\ndata: ");
    dip__job_json(s->svc, job, 1, &e->pending);
    dip__sbuf_str(&e->pending, "\n\n");
    if (dip_job_state_final(job->state)) {
        dip__sbuf_str(&e->pending, "event: end\ndata: ");
        dip__job_json(s->svc, job, 1, &e->pending);
        dip__sbuf_str(&e->pending, "\n\n");
        e->ended = 1;
    }
    dip_store_job_free(job);
    if (e->pending.failed)
        return MHD_CONTENT_READER_END_WITH_ERROR;
copy:
    n = DIP_MIN(e->pending.len - e->off, max);
    memcpy(buf, e->pending.data + e->off, n);
    e->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    struct dip__sse *e = cls;
    dip_server *s = e->s;

    pthread_mutex_lock(&s->lock);
    for (struct dip__sse **pp = &s->streams; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            s->n_streams--;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    dip__sbuf_free(&e->pending);
    dip_free(e);
}

enum MHD_Result dip__h_events(struct ctx *c)
{
    dip_server *s = c->s;
    struct dip_store_job *job = NULL;
    struct MHD_Response *resp;
    struct dip__sse *e;
    size_t mine = 0, all;

    if (dip__load_job(c, 0, &job) != 0)
        return MHD_YES;
    dip_store_job_free(job);
    pthread_mutex_lock(&s->lock);
    for (struct dip__sse *x = s->streams; x != NULL; x = x->next)
        mine += strcmp(x->user, c->user) == 0;
    all = s->n_streams;
    pthread_mutex_unlock(&s->lock);
    if (mine >= (size_t)s->o.max_streams_per_user)
        return dip__send_error(c, 429, "EBUSY",
                               "user %s has %zu event streams open (limit %d); close one", c->user,
                               mine, s->o.max_streams_per_user);
    if (all >= (size_t)s->o.max_streams)
        return dip__send_error(c, 429, "EBUSY", "too many event streams open (%zu)", all);
    e = dip_calloc(1, sizeof(*e));
    if (e == NULL)
        return dip__send_error(c, 503, "ENOMEM", "out of memory");
    e->s = s;
    e->conn = c->conn;
    snprintf(e->id, sizeof(e->id), "%.39s", c->r->id);
    snprintf(e->user, sizeof(e->user), "%s", c->user);
    dip__sbuf_init(&e->pending, DIP__JSON_CAP);
    e->first = 1;
    e->started = dip__now();
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, e, sse_free);
    if (resp == NULL) {
        dip__sbuf_free(&e->pending);
        dip_free(e);
        return MHD_NO;
    }
    pthread_mutex_lock(&s->lock);
    e->next = s->streams;
    s->streams = e;
    s->n_streams++;
    pthread_mutex_unlock(&s->lock);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return dip__queue(c, 200, resp);
}
