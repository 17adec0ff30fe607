/* SPDX-License-Identifier: MIT */
/* The HTTP API of `dip serve` on libmicrohttpd: one route table (method, path pattern, who may
 * call it, handler), request bodies gathered under a cap, auth by bearer token, JSON responses
 * and errors, Server-Sent Events for progress, streamed zip archives, and the web page's static
 * files. Connections run thread-per-connection, so a slow client or an event stream blocks only
 * its own thread; jobs themselves run on the runner (runner.c, the caller's thread). MHD results
 * are mapped to DIP_E* here and nowhere else. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/internal.h"
#include "dip/codec.h"
#include "dip/image.h"
#include "dip/op.h"
#include "dip/pipeline.h"
#include "server/internal.h"

#ifndef DIP_WEB_DIR
#define DIP_WEB_DIR "web"
#endif

#define JSON_CAP     ((size_t)64 << 20)
#define MAX_PATH_SEG 128

void dip_server_opts_default(struct dip_server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:8080";
    o->data_dir = "./var";
    o->web_dir = DIP_WEB_DIR;
    dip_limits_default(&o->limits);
    o->max_images_per_job = 1000;
    o->max_active_per_user = 100;
    o->max_queue = 10000;
    o->max_connections = 512;
    o->connection_timeout_s = 30;
    o->connection_memory = 64 * 1024;
    o->sse_max_s = 600;
}

/* ---- Requests ---- */

struct ctx;
typedef enum MHD_Result (*handler_fn)(struct ctx *c);

enum who { ANYONE, USER, ADMIN };

struct route {
    const char *method;
    const char *pattern;
    enum who who;
    int body; /* takes a request body */
    handler_fn fn;
};

struct req {
    dip_server *s;
    const struct route *route;
    char id[MAX_PATH_SEG];
    char n[MAX_PATH_SEG];
    struct dip__sbuf body;
    int too_big;
    int responded;
    double t0;
};

struct ctx {
    dip_server *s;
    struct MHD_Connection *conn;
    struct req *r;
    const char *url;
    char user[64];
    int admin;
    char qtok[216];
};

static enum MHD_Result h_health(struct ctx *c);
static enum MHD_Result h_metrics(struct ctx *c);
static enum MHD_Result h_ops(struct ctx *c);
static enum MHD_Result h_whoami(struct ctx *c);
static enum MHD_Result h_cluster(struct ctx *c);
static enum MHD_Result h_jobs_list(struct ctx *c);
static enum MHD_Result h_jobs_post(struct ctx *c);
static enum MHD_Result h_job_get(struct ctx *c);
static enum MHD_Result h_job_delete(struct ctx *c);
static enum MHD_Result h_events(struct ctx *c);
static enum MHD_Result h_result(struct ctx *c);
static enum MHD_Result h_archive(struct ctx *c);
static enum MHD_Result h_process(struct ctx *c);

static const struct route routes[] = {
    {"GET", "/healthz", ANYONE, 0, h_health},
    {"GET", "/metrics", ADMIN, 0, h_metrics},
    {"GET", "/api/v1/ops", ANYONE, 0, h_ops},
    {"GET", "/api/v1/whoami", USER, 0, h_whoami},
    {"GET", "/api/v1/cluster", ADMIN, 0, h_cluster},
    {"GET", "/api/v1/jobs", USER, 0, h_jobs_list},
    {"POST", "/api/v1/jobs", USER, 1, h_jobs_post},
    {"GET", "/api/v1/jobs/{id}", USER, 0, h_job_get},
    {"DELETE", "/api/v1/jobs/{id}", USER, 0, h_job_delete},
    {"GET", "/api/v1/jobs/{id}/events", USER, 0, h_events},
    {"GET", "/api/v1/jobs/{id}/results/{n}", USER, 0, h_result},
    {"GET", "/api/v1/jobs/{id}/archive.zip", USER, 0, h_archive},
    {"POST", "/api/v1/process", USER, 1, h_process},
};

int dip_server_route(size_t i, const char **method, const char **pattern)
{
    if (i >= DIP_COUNTOF(routes))
        return 0;
    *method = routes[i].method;
    *pattern = routes[i].pattern;
    return 1;
}

/* Matches `url` against `pattern`; captures {id} and {n}. */
static int match(const char *pattern, const char *url, struct req *r)
{
    const char *p = pattern, *u = url;

    while (*p != '\0' && *u != '\0') {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            size_t n = strcspn(u, "/");
            char *dst = p[1] == 'i' ? r->id : r->n;
            if (pe == NULL || n == 0 || n >= MAX_PATH_SEG)
                return 0;
            memcpy(dst, u, n);
            dst[n] = '\0';
            p = pe + 1;
            u += n;
        } else {
            if (*p != *u)
                return 0;
            p++, u++;
        }
    }
    return *p == '\0' && *u == '\0';
}

/* ---- Responses ---- */

static enum MHD_Result queue(struct ctx *c, int status, struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (resp == NULL)
        return MHD_NO; /* out of memory: MHD closes the connection */
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    ret = MHD_queue_response(c->conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);
    c->r->responded = 1;
    return ret;
}

static void free_cb(void *p)
{
    dip_free(p);
}

/* Sends b's bytes (ownership moves to the response). */
static enum MHD_Result send_sbuf(struct ctx *c, int status, const char *type, struct dip__sbuf *b)
{
    struct MHD_Response *resp;

    if (b->failed) {
        dip__sbuf_free(b);
        dip__sbuf_init(b, 1024);
        dip__sbuf_str(b, "{\"error\":{\"code\":\"ENOMEM\",\"message\":\"response too large\"}}");
        status = 503;
    }
    resp = MHD_create_response_from_buffer_with_free_callback(b->len, b->data ? b->data : "",
                                                              b->data ? free_cb : NULL);
    if (resp == NULL) {
        dip__sbuf_free(b);
        return MHD_NO;
    }
    b->data = NULL;
    dip__sbuf_free(b);
    MHD_add_response_header(resp, "Content-Type", type);
    return queue(c, status, resp);
}

static enum MHD_Result send_json(struct ctx *c, int status, struct dip__sbuf *b)
{
    return send_sbuf(c, status, "application/json", b);
}

static enum MHD_Result send_error(struct ctx *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_error(struct ctx *c, int status, const char *code, const char *fmt, ...)
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
    resp = MHD_create_response_from_buffer_with_free_callback(b.len, b.data, free_cb);
    if (resp == NULL) {
        dip__sbuf_free(&b);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"dip\"");
    if (status == 429 || status == 503)
        MHD_add_response_header(resp, "Retry-After", "5");
    if (status == 413 || status == 400 || status == 431)
        MHD_add_response_header(resp, "Connection", "close");
    return queue(c, status, resp);
}

/* An error from a DIP_E* code with the detail in err. */
static enum MHD_Result send_dip_error(struct ctx *c, int rc, const struct dip_err *err)
{
    int status = dip_err_http_status(rc);

    /* 5xx only for real server trouble; dip has no 5xx for bad input. */
    return send_error(c, status, dip_err_name(rc), "%s", dip_err_text(err, rc));
}

/* ---- Auth ---- */

static int get_auth(struct ctx *c, enum who who)
{
    const char *h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Authorization");
    uint64_t ntok = 1;
    struct dip_err err = {0};

    c->user[0] = '\0';
    c->admin = 0;
    /* EventSource and plain links cannot send headers: GETs may carry ?access_token=. */
    if (h == NULL && c->r->route != NULL && strcmp(c->r->route->method, "GET") == 0) {
        const char *q = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "access_token");
        if (q != NULL && q[0] != '\0') {
            snprintf(c->qtok, sizeof(c->qtok), "Bearer %.200s", q);
            h = c->qtok;
        }
    }
    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *tok = h + 7;
        while (*tok == ' ')
            tok++;
        if (strlen(tok) < 200 &&
            dip_store_token_check(c->s->store, tok, c->user, &c->admin, &err) == 0)
            return 0;
        if (who == ANYONE)
            return 0;
        send_error(c, 401, "EAUTH", "invalid token");
        return -1;
    }
    if (c->s->loopback && dip_store_token_count(c->s->store, &ntok, NULL) == 0 && ntok == 0) {
        snprintf(c->user, sizeof(c->user), "anonymous");
        c->admin = 1;
        return 0;
    }
    if (who == ANYONE)
        return 0;
    send_error(c, 401, "EAUTH", "authentication required: send Authorization: Bearer TOKEN");
    return -1;
}

/* ---- Jobs as JSON ---- */

int dip__state_final(const char *state)
{
    return strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "cancelled") == 0;
}

void dip__result_name(const struct dip_store_job *job, size_t i, char *out, size_t len)
{
    const struct dip_store_item *it = &job->items[i];
    dip_format f = dip_format_from_name(it->out_format);
    const char *ext = f != DIP_FORMAT_UNKNOWN ? dip_format_ext(f) : "bin";
    char stem[256];
    char *dot;
    int dup = 0;

    snprintf(stem, sizeof(stem), "%s", it->name);
    dot = strrchr(stem, '.');
    if (dot != NULL && dot != stem)
        *dot = '\0';
    /* Unique within the job: a later item whose stem and extension repeat an earlier one's
     * gets its index appended. */
    for (size_t k = 0; k < i && !dup; k++) {
        char other[256], *od;
        dip_format of = dip_format_from_name(job->items[k].out_format);
        snprintf(other, sizeof(other), "%s", job->items[k].name);
        od = strrchr(other, '.');
        if (od != NULL && od != other)
            *od = '\0';
        if (strcmp(other, stem) == 0 &&
            strcmp(of != DIP_FORMAT_UNKNOWN ? dip_format_ext(of) : "bin", ext) == 0)
            dup = 1;
    }
    if (dup)
        snprintf(out, len, "%s-%d.%s", stem, it->index, ext);
    else
        snprintf(out, len, "%s.%s", stem, ext);
}

int dip__job_json(dip_server *s, const struct dip_store_job *job, int items, struct dip__sbuf *b)
{
    uint64_t done = 0, failed = 0, px_total = 0, px_final = 0, tasks_total, tasks_done;
    double percent, eta = -1;
    int running;
    struct dip_progress live;
    uint64_t base_tasks, base_pixels;
    double started;

    for (size_t i = 0; job->items != NULL && i < job->n_items; i++) {
        const struct dip_store_item *it = &job->items[i];
        uint64_t px = (uint64_t)it->width * (uint64_t)it->height;
        px_total += px;
        if (dip__state_final(it->state)) {
            done++;
            px_final += px;
        }
        if (strcmp(it->state, "failed") == 0)
            failed++;
    }
    tasks_total = job->n_items;
    tasks_done = done;
    pthread_mutex_lock(&s->lock);
    running = strcmp(s->running_id, job->id) == 0;
    live = s->live;
    base_tasks = s->base_tasks;
    base_pixels = s->base_pixels;
    started = s->run_started;
    pthread_mutex_unlock(&s->lock);
    if (running && strcmp(job->state, "running") == 0) {
        uint64_t px_live = base_pixels + live.pixels_done;
        if (live.tasks_total > 0) {
            tasks_total = base_tasks + live.tasks_total;
            tasks_done = base_tasks + live.tasks_done;
        }
        if (px_live > px_final && px_live <= px_total)
            px_final = px_live;
    }
    if (px_total > 0)
        percent = 100.0 * (double)px_final / (double)px_total;
    else
        percent = dip__state_final(job->state) ? 100.0 : 0.0;
    /* Pixels count when an image is finished; tiles show the progress inside a big one. */
    if (running && tasks_total > 0 && !dip__state_final(job->state)) {
        double by_tasks = 100.0 * (double)tasks_done / (double)tasks_total;
        if (by_tasks > percent)
            percent = by_tasks > 99.9 ? 99.9 : by_tasks;
    }
    if (strcmp(job->state, "done") == 0)
        percent = 100.0;
    if (running && percent > 0 && percent < 100) {
        double el = dip__now() - started;
        eta = el * (100.0 - percent) / percent;
    }

    dip__sbuf_str(b, "{\"id\":");
    dip__sbuf_json_str(b, job->id);
    dip__sbuf_str(b, ",\"state\":");
    dip__sbuf_json_str(b, job->state);
    dip__sbuf_str(b, ",\"pipeline\":");
    dip__sbuf_json_str(b, job->pipeline);
    dip__sbuf_str(b, ",\"format\":");
    dip__sbuf_json_str(b, job->format);
    dip__sbuf_printf(b, ",\"quality\":%d,\"created\":", job->quality);
    dip__sbuf_json_num(b, job->created);
    dip__sbuf_str(b, ",\"finished\":");
    if (job->finished > 0)
        dip__sbuf_json_num(b, job->finished);
    else
        dip__sbuf_str(b, "null");
    dip__sbuf_str(b, ",\"owner\":");
    dip__sbuf_json_str(b, job->owner);
    if (items && job->items != NULL) {
        dip__sbuf_str(b, ",\"items\":[");
        for (size_t i = 0; i < job->n_items; i++) {
            const struct dip_store_item *it = &job->items[i];
            int is_done = strcmp(it->state, "done") == 0 && it->out_sha[0] != '\0';
            dip__sbuf_printf(b, "%s{\"index\":%d,\"name\":", i ? "," : "", it->index);
            dip__sbuf_json_str(b, it->name);
            dip__sbuf_str(b, ",\"state\":");
            dip__sbuf_json_str(b, it->state);
            dip__sbuf_str(b, ",\"error\":");
            dip__sbuf_json_str(b, it->error[0] ? it->error : NULL);
            dip__sbuf_printf(b, ",\"width\":%d,\"height\":%d", it->width, it->height);
            if (is_done) {
                char name[300];
                dip__result_name(job, i, name, sizeof(name));
                dip__sbuf_printf(b,
                                 ",\"out_width\":%d,\"out_height\":%d,\"bytes_in\":%llu,"
                                 "\"bytes_out\":%llu,\"cached\":%s,\"out_format\":",
                                 it->out_width, it->out_height, (unsigned long long)it->bytes_in,
                                 (unsigned long long)it->bytes_out, it->cached ? "true" : "false");
                dip__sbuf_json_str(b, it->out_format);
                dip__sbuf_str(b, ",\"result_name\":");
                dip__sbuf_json_str(b, name);
                dip__sbuf_str(b, ",\"versions\":");
                dip__sbuf_json_str(b, it->versions);
                dip__sbuf_printf(b, ",\"result_url\":\"/api/v1/jobs/%s/results/%d\"}", job->id,
                                 it->index);
            } else {
                dip__sbuf_printf(b,
                                 ",\"out_width\":null,\"out_height\":null,\"bytes_in\":%llu,"
                                 "\"bytes_out\":null,\"cached\":false,\"out_format\":null,"
                                 "\"result_name\":null,\"versions\":null,\"result_url\":null}",
                                 (unsigned long long)it->bytes_in);
            }
        }
        dip__sbuf_str(b, "]");
    }
    dip__sbuf_printf(b,
                     ",\"progress\":{\"items_total\":%zu,\"items_done\":%llu,\"items_failed\":%llu,"
                     "\"tasks_total\":%llu,\"tasks_done\":%llu,\"pixels_total\":%llu,"
                     "\"pixels_done\":%llu,\"percent\":",
                     job->n_items, (unsigned long long)done, (unsigned long long)failed,
                     (unsigned long long)tasks_total, (unsigned long long)tasks_done,
                     (unsigned long long)px_total, (unsigned long long)px_final);
    dip__sbuf_printf(b, "%.1f,\"eta_s\":", percent);
    if (eta >= 0)
        dip__sbuf_printf(b, "%.1f}}", eta);
    else
        dip__sbuf_str(b, "null}}");
    return b->failed;
}

/* Loads job c->r->id if the caller may see it; else sends 404 and returns nonzero. */
static int load_job(struct ctx *c, int items, struct dip_store_job **job)
{
    struct dip_err err = {0};
    int rc;

    *job = NULL;
    rc = dip_store_job_get(c->s->store, c->r->id, items, job, &err);
    if (rc == 0 && !c->admin && strcmp((*job)->owner, c->user) != 0) {
        dip_store_job_free(*job);
        *job = NULL;
        rc = DIP_ENOTFOUND;
    }
    if (rc == DIP_ENOTFOUND)
        send_error(c, 404, "ENOTFOUND", "no job %s", c->r->id);
    else if (rc != 0)
        send_dip_error(c, rc, &err);
    return rc;
}

/* ---- Handlers: small ones ---- */

static enum MHD_Result h_health(struct ctx *c)
{
    struct dip__sbuf b;

    dip__sbuf_init(&b, 256);
    dip__sbuf_str(&b, "{\"status\":\"ok\"}");
    return send_json(c, 200, &b);
}

static enum MHD_Result h_whoami(struct ctx *c)
{
    struct dip__sbuf b;
    uint64_t ntok = 0;

    dip_store_token_count(c->s->store, &ntok, NULL);
    dip__sbuf_init(&b, 1024);
    dip__sbuf_str(&b, "{\"name\":");
    dip__sbuf_json_str(&b, c->user);
    dip__sbuf_printf(&b, ",\"admin\":%s,\"auth_required\":%s}", c->admin ? "true" : "false",
                     (!c->s->loopback || ntok > 0) ? "true" : "false");
    return send_json(c, 200, &b);
}

static const char *kind_name(enum dip_op_kind k)
{
    switch (k) {
    case DIP_OP_POINT:
        return "point";
    case DIP_OP_STENCIL:
        return "stencil";
    case DIP_OP_STAT:
        return "stat";
    case DIP_OP_GLOBAL:
        return "global";
    case DIP_OP_GEOMETRIC:
        return "geometric";
    }
    return "unknown";
}

static enum MHD_Result h_ops(struct ctx *c)
{
    static const char *const types[] = {"int", "double", "bool", "enum"};
    struct dip__sbuf b;

    dip__sbuf_init(&b, JSON_CAP);
    dip__sbuf_str(&b, "{\"ops\":[");
    for (size_t i = 0; i < dip_op_count(); i++) {
        const struct dip_op *op = dip_op_at(i);
        dip__sbuf_str(&b, i ? ",{\"name\":" : "{\"name\":");
        dip__sbuf_json_str(&b, op->name);
        dip__sbuf_printf(&b, ",\"version\":%d,\"summary\":", op->version);
        dip__sbuf_json_str(&b, op->summary);
        dip__sbuf_str(&b, ",\"doc\":");
        dip__sbuf_json_str(&b, op->doc);
        dip__sbuf_str(&b, ",\"kind\":");
        dip__sbuf_json_str(&b, kind_name(op->kind));
        dip__sbuf_str(&b, ",\"params\":[");
        for (size_t k = 0; k < op->n_params; k++) {
            const struct dip_param *p = &op->params[k];
            dip__sbuf_str(&b, k ? ",{\"name\":" : "{\"name\":");
            dip__sbuf_json_str(&b, p->name);
            dip__sbuf_str(&b, ",\"type\":");
            dip__sbuf_json_str(&b, (unsigned)p->type < 4 ? types[p->type] : "int");
            if (p->type == DIP_PARAM_ENUM) {
                size_t nc = 0;
                while (p->choices != NULL && p->choices[nc] != NULL)
                    nc++;
                dip__sbuf_printf(&b, ",\"min\":0,\"max\":%zu,\"default\":", nc ? nc - 1 : 0);
                dip__sbuf_json_str(&b, (size_t)p->def < nc ? p->choices[(size_t)p->def] : NULL);
                dip__sbuf_str(&b, ",\"choices\":[");
                for (size_t q = 0; q < nc; q++) {
                    if (q)
                        dip__sbuf_str(&b, ",");
                    dip__sbuf_json_str(&b, p->choices[q]);
                }
                dip__sbuf_str(&b, "]");
            } else if (p->type == DIP_PARAM_BOOL) {
                dip__sbuf_printf(&b, ",\"min\":0,\"max\":1,\"default\":%s,\"choices\":null",
                                 p->def != 0 ? "true" : "false");
            } else {
                dip__sbuf_str(&b, ",\"min\":");
                dip__sbuf_json_num(&b, p->min);
                dip__sbuf_str(&b, ",\"max\":");
                dip__sbuf_json_num(&b, p->max);
                dip__sbuf_str(&b, ",\"default\":");
                dip__sbuf_json_num(&b, p->def);
                dip__sbuf_str(&b, ",\"choices\":null");
            }
            dip__sbuf_str(&b, ",\"help\":");
            dip__sbuf_json_str(&b, p->help);
            dip__sbuf_str(&b, "}");
        }
        dip__sbuf_str(&b, "]}");
    }
    dip__sbuf_str(&b, "]}");
    return send_json(c, 200, &b);
}

static enum MHD_Result h_cluster(struct ctx *c)
{
    struct dip_worker_stat ws[256];
    size_t n = dip_executor_workers(c->s->ex, ws, DIP_COUNTOF(ws));
    struct dip__sbuf b;

    if (n > DIP_COUNTOF(ws))
        n = DIP_COUNTOF(ws);
    dip__sbuf_init(&b, JSON_CAP);
    dip__sbuf_str(&b, "{\"executor\":");
    dip__sbuf_json_str(&b, strcmp(c->s->ex->vt->name, "mpi") == 0 ? "mpi" : "local");
    dip__sbuf_str(&b, ",\"workers\":[");
    for (size_t i = 0; i < n; i++) {
        ws[i].host[sizeof(ws[i].host) - 1] = '\0';
        dip__sbuf_printf(&b, "%s{\"id\":%d,\"host\":", i ? "," : "", ws[i].id);
        dip__sbuf_json_str(&b, ws[i].host);
        dip__sbuf_printf(&b, ",\"alive\":%s,\"tasks\":%llu,\"failures\":%llu,\"megapixels\":",
                         ws[i].alive ? "true" : "false", (unsigned long long)ws[i].tasks,
                         (unsigned long long)ws[i].failures);
        dip__sbuf_json_num(&b, ws[i].megapixels);
        dip__sbuf_str(&b, ",\"busy_s\":");
        dip__sbuf_json_num(&b, ws[i].busy_s);
        dip__sbuf_str(&b, "}");
    }
    {
        char dev[2048]; /* the OpenCL devices this process found (src/exec/opencl) */
        dip_devices_json(dev, sizeof(dev));
        dip__sbuf_printf(&b, "],\"devices\":%s}", dev);
    }
    return send_json(c, 200, &b);
}

static enum MHD_Result h_metrics(struct ctx *c)
{
    static const char *const states[5] = {"queued", "running", "done", "failed", "cancelled"};
    dip_server *s = c->s;
    struct dip_worker_stat ws[256];
    size_t nw = dip_executor_workers(s->ex, ws, DIP_COUNTOF(ws));
    uint64_t counts[5] = {0}, cum = 0, alive = 0;
    struct dip__sbuf b;

    if (nw > DIP_COUNTOF(ws))
        nw = DIP_COUNTOF(ws);
    for (size_t i = 0; i < nw; i++)
        alive += ws[i].alive ? 1 : 0;
    dip_store_job_counts(s->store, counts, NULL);
    dip__sbuf_init(&b, JSON_CAP);
    dip__sbuf_str(&b, "# HELP dip_jobs Jobs in the store by state.\n# TYPE dip_jobs gauge\n");
    for (int i = 0; i < 5; i++)
        dip__sbuf_printf(&b, "dip_jobs{state=\"%s\"} %llu\n", states[i],
                         (unsigned long long)counts[i]);
    pthread_mutex_lock(&s->lock);
    dip__sbuf_printf(&b,
                     "# HELP dip_tasks_total Items computed by the executor since start.\n"
                     "# TYPE dip_tasks_total counter\ndip_tasks_total %llu\n"
                     "# HELP dip_items_total Items finished since start, by outcome.\n"
                     "# TYPE dip_items_total counter\n"
                     "dip_items_total{outcome=\"done\"} %llu\n"
                     "dip_items_total{outcome=\"failed\"} %llu\n"
                     "# HELP dip_cache_hits_total Items served from the result cache.\n"
                     "# TYPE dip_cache_hits_total counter\ndip_cache_hits_total %llu\n"
                     "# HELP dip_bytes_in_total Image bytes received.\n"
                     "# TYPE dip_bytes_in_total counter\ndip_bytes_in_total %llu\n"
                     "# HELP dip_bytes_out_total Result bytes produced.\n"
                     "# TYPE dip_bytes_out_total counter\ndip_bytes_out_total %llu\n"
                     "# HELP dip_http_requests_total HTTP requests answered.\n"
                     "# TYPE dip_http_requests_total counter\ndip_http_requests_total %llu\n"
                     "# HELP dip_process_requests_total Synchronous /process requests.\n"
                     "# TYPE dip_process_requests_total counter\ndip_process_requests_total %llu\n",
                     (unsigned long long)s->m_tasks, (unsigned long long)s->m_items_done,
                     (unsigned long long)s->m_items_failed, (unsigned long long)s->m_cache_hits,
                     (unsigned long long)s->m_bytes_in, (unsigned long long)s->m_bytes_out,
                     (unsigned long long)s->m_requests, (unsigned long long)s->m_process);
    dip__sbuf_str(&b, "# HELP dip_task_seconds Time to compute one item (decode, run, encode).\n"
                      "# TYPE dip_task_seconds histogram\n");
    for (int i = 0; i < DIP__LAT_BUCKETS; i++) {
        cum += s->lat_count[i];
        dip__sbuf_printf(&b, "dip_task_seconds_bucket{le=\"%g\"} %llu\n", dip__lat_bounds[i],
                         (unsigned long long)cum);
    }
    cum += s->lat_count[DIP__LAT_BUCKETS];
    dip__sbuf_printf(&b, "dip_task_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    dip__sbuf_printf(&b, "dip_task_seconds_sum %.6f\ndip_task_seconds_count %llu\n", s->lat_sum,
                     (unsigned long long)s->lat_n);
    pthread_mutex_unlock(&s->lock);
    dip__sbuf_printf(&b,
                     "# HELP dip_workers Workers of the executor by status.\n"
                     "# TYPE dip_workers gauge\ndip_workers{status=\"alive\"} %llu\n"
                     "dip_workers{status=\"lost\"} %llu\n",
                     (unsigned long long)alive, (unsigned long long)(nw - alive));
    return send_sbuf(c, 200, "text/plain; version=0.0.4", &b);
}

/* ---- Jobs ---- */

static enum MHD_Result h_jobs_list(struct ctx *c)
{
    const char *all = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "items");
    int items = all != NULL && (strcmp(all, "1") == 0 || strcmp(all, "true") == 0);
    struct dip_store_job *jobs = NULL;
    struct dip_err err = {0};
    size_t n = 0;
    struct dip__sbuf b;
    int rc;

    rc = dip_store_job_list(c->s->store, c->admin ? NULL : c->user, items, 1000, &jobs, &n, &err);
    if (rc != 0)
        return send_dip_error(c, rc, &err);
    dip__sbuf_init(&b, JSON_CAP);
    dip__sbuf_str(&b, "{\"jobs\":[");
    for (size_t i = 0; i < n; i++) {
        struct dip_store_job *full = NULL;
        if (i)
            dip__sbuf_str(&b, ",");
        /* The progress needs the items' states; list them only when asked for. */
        if (!items && dip_store_job_get(c->s->store, jobs[i].id, 1, &full, NULL) == 0) {
            dip__job_json(c->s, full, 0, &b);
            dip_store_job_free(full);
        } else {
            dip__job_json(c->s, &jobs[i], items, &b);
        }
    }
    dip__sbuf_str(&b, "]}");
    dip_store_jobs_free(jobs, n);
    return send_json(c, 200, &b);
}

static enum MHD_Result h_job_get(struct ctx *c)
{
    struct dip_store_job *job = NULL;
    struct dip__sbuf b;

    if (load_job(c, 1, &job) != 0)
        return MHD_YES;
    dip__sbuf_init(&b, JSON_CAP);
    dip__job_json(c->s, job, 1, &b);
    dip_store_job_free(job);
    return send_json(c, 200, &b);
}

static enum MHD_Result h_job_delete(struct ctx *c)
{
    struct dip_store_job *job = NULL;
    struct dip__sbuf b;
    dip_server *s = c->s;

    if (load_job(c, 0, &job) != 0)
        return MHD_YES;
    if (!dip__state_final(job->state)) {
        dip_store_job_set_state(s->store, job->id, "cancelled", 0, NULL);
        dip_store_items_finish(s->store, job->id, "cancelled", NULL, NULL);
        pthread_mutex_lock(&s->lock);
        if (strcmp(s->running_id, job->id) == 0)
            s->cancel = 1;
        s->version++;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
    dip_store_job_free(job);
    job = NULL;
    if (load_job(c, 1, &job) != 0)
        return MHD_YES;
    dip__sbuf_init(&b, JSON_CAP);
    dip__job_json(s, job, 1, &b);
    dip_store_job_free(job);
    return send_json(c, 200, &b);
}

static int parse_quality(const char *q, int *out)
{
    char *end;
    long v;

    *out = 90;
    if (q == NULL || q[0] == '\0')
        return 0;
    errno = 0;
    v = strtol(q, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > 100)
        return -1;
    *out = (int)v;
    return 0;
}

/* "" or an encodable format name; returns -1 otherwise. */
static int parse_format(const char *f, dip_format *out)
{
    *out = DIP_FORMAT_UNKNOWN;
    if (f == NULL || f[0] == '\0')
        return 0;
    *out = dip_format_from_name(f);
    if (*out == DIP_FORMAT_UNKNOWN || !dip_format_can_encode(*out) || strchr(f, '.') != NULL)
        return -1;
    return 0;
}

static int random_id(char id[DIP_STORE_ID_LEN])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t rnd[12];

    if (dip_store_random(rnd, sizeof(rnd), NULL) != 0)
        return -1;
    for (int i = 0; i < 12; i++) {
        id[2 * i] = digits[rnd[i] >> 4];
        id[2 * i + 1] = digits[rnd[i] & 15];
    }
    id[24] = '\0';
    return 0;
}

static enum MHD_Result h_jobs_post(struct ctx *c)
{
    dip_server *s = c->s;
    const char *ct = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Type");
    struct dip__part *parts = NULL;
    size_t nparts = 0, nfiles = 0, fi = 0;
    struct dip_err err = {0};
    char boundary[80], canon_small[1];
    const char *pipeline = "", *fmt = "", *qual = "";
    char *pipe_buf = NULL, *fmt_buf = NULL, *q_buf = NULL, *canon = NULL;
    dip_pipeline *p = NULL;
    struct dip_store_job job;
    dip_format format;
    uint64_t active = 0;
    enum MHD_Result ret = MHD_YES;
    struct dip__sbuf b;
    size_t clen;
    int rc;

    memset(&job, 0, sizeof(job));
    dip__sbuf_init(&b, JSON_CAP);
    rc = dip__multipart_boundary(ct, boundary, sizeof(boundary), &err);
    if (rc == 0)
        rc = dip__multipart_parse((const uint8_t *)c->r->body.data, c->r->body.len, boundary,
                                  (size_t)s->o.max_images_per_job + 16, &parts, &nparts, &err);
    if (rc != 0) {
        ret = send_error(c, rc == DIP_ELIMIT ? 413 : 400, dip_err_name(rc), "%s", err.msg);
        goto out;
    }
    /* Text fields are copied out so they are NUL-terminated. */
    for (size_t i = 0; i < nparts; i++) {
        char **dst = NULL;
        if (parts[i].has_filename || strcmp(parts[i].name, "file") == 0) {
            nfiles++;
            continue;
        }
        if (strcmp(parts[i].name, "pipeline") == 0)
            dst = &pipe_buf;
        else if (strcmp(parts[i].name, "format") == 0)
            dst = &fmt_buf;
        else if (strcmp(parts[i].name, "quality") == 0)
            dst = &q_buf;
        if (dst == NULL)
            continue;
        if (parts[i].len > 65536) {
            ret = send_error(c, 413, "ELIMIT", "field '%s' is longer than 65536 bytes",
                             parts[i].name);
            goto out;
        }
        dip_free(*dst);
        *dst = dip_malloc(parts[i].len + 1);
        if (*dst == NULL) {
            ret = send_error(c, 503, "ENOMEM", "out of memory");
            goto out;
        }
        memcpy(*dst, parts[i].data, parts[i].len);
        (*dst)[parts[i].len] = '\0';
        if (memchr(parts[i].data, '\0', parts[i].len) != NULL) {
            ret = send_error(c, 400, "EINVAL", "field '%s' contains a NUL byte", parts[i].name);
            goto out;
        }
    }
    pipeline = pipe_buf ? pipe_buf : "";
    fmt = fmt_buf ? fmt_buf : "";
    qual = q_buf ? q_buf : "";
    if (nfiles == 0) {
        ret = send_error(c, 400, "EINVAL", "no file part (send images as form field 'file')");
        goto out;
    }
    if (nfiles > (size_t)s->o.max_images_per_job) {
        ret = send_error(c, 413, "ELIMIT", "job has %zu images > limit %d", nfiles,
                         s->o.max_images_per_job);
        goto out;
    }
    if (parse_format(fmt, &format) != 0) {
        ret = send_error(c, 400, "EINVAL",
                         "format '%.32s' is not one of png, jpeg, webp, tiff, bmp, pnm (or empty)",
                         fmt);
        goto out;
    }
    if (parse_quality(qual, &job.quality) != 0) {
        ret = send_error(c, 400, "EINVAL", "quality '%.32s' is not an integer in 1..100", qual);
        goto out;
    }
    rc = dip_pipeline_parse(pipeline, &p, &err);
    if (rc != 0) {
        ret = send_dip_error(c, rc, &err);
        goto out;
    }
    clen = dip_pipeline_format(p, 1, canon_small, sizeof(canon_small));
    canon = dip_malloc(clen + 1);
    if (canon == NULL) {
        ret = send_error(c, 503, "ENOMEM", "out of memory");
        goto out;
    }
    dip_pipeline_format(p, 1, canon, clen + 1);
    job.items = dip_calloc(nfiles, sizeof(*job.items));
    if (job.items == NULL) {
        ret = send_error(c, 503, "ENOMEM", "out of memory");
        goto out;
    }
    /* Probe every image before accepting anything: all or nothing. */
    for (size_t i = 0; i < nparts; i++) {
        struct dip_image_info info;
        struct dip_store_item *it;
        char fallback[32];
        if (!(parts[i].has_filename || strcmp(parts[i].name, "file") == 0))
            continue;
        it = &job.items[fi];
        it->index = (int)fi;
        snprintf(fallback, sizeof(fallback), "image-%zu", fi);
        dip__sanitize_name(parts[i].filename, fallback, it->name, sizeof(it->name));
        memset(&info, 0, sizeof(info));
        dip_err_clear(&err);
        rc = dip_codec_probe(parts[i].data, parts[i].len, &s->o.limits, &info, &err);
        if (rc != 0) {
            ret = send_error(c, dip_err_http_status(rc), dip_err_name(rc), "file '%s': %s",
                             it->name, dip_err_text(&err, rc));
            goto out;
        }
        it->width = info.width;
        it->height = info.height;
        it->bytes_in = parts[i].len;
        fi++;
    }
    rc = dip_store_job_active(s->store, c->user, &active, &err);
    if (rc == 0 && active >= (uint64_t)s->o.max_active_per_user) {
        ret = send_error(c, 429, "EBUSY", "user %s has %llu unfinished jobs (limit %d)", c->user,
                         (unsigned long long)active, s->o.max_active_per_user);
        goto out;
    }
    if (rc == 0)
        rc = dip_store_job_active(s->store, NULL, &active, &err);
    if (rc == 0 && active >= (uint64_t)s->o.max_queue) {
        ret = send_error(c, 429, "EBUSY", "the queue is full (%llu jobs)",
                         (unsigned long long)active);
        goto out;
    }
    fi = 0;
    for (size_t i = 0; rc == 0 && i < nparts; i++) {
        if (!(parts[i].has_filename || strcmp(parts[i].name, "file") == 0))
            continue;
        rc = dip_store_blob_put(s->store, parts[i].data, parts[i].len, job.items[fi].sha, &err);
        fi++;
    }
    if (rc == 0 && random_id(job.id) != 0)
        rc = dip_err_set(&err, DIP_EIO, "no randomness for a job id");
    if (rc == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(job.owner, sizeof(job.owner), "%s", c->user);
        snprintf(job.state, sizeof(job.state), "queued");
        job.pipeline = pipe_buf ? pipe_buf : (char *)"";
        job.canon = canon;
        snprintf(job.format, sizeof(job.format), "%s",
                 format == DIP_FORMAT_UNKNOWN ? "" : dip_format_name(format));
        job.created = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        job.n_items = nfiles;
        rc = dip_store_job_create(s->store, &job, &err);
    }
    if (rc != 0) {
        ret = send_dip_error(c, rc, &err);
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < nfiles; i++)
        s->m_bytes_in += job.items[i].bytes_in;
    pthread_mutex_unlock(&s->lock);
    dip__runner_wake(s);
    {
        struct dip_store_job *stored = NULL;
        char loc[128];
        rc = dip_store_job_get(s->store, job.id, 1, &stored, &err);
        if (rc != 0) {
            ret = send_dip_error(c, rc, &err);
            goto out;
        }
        dip__job_json(s, stored, 1, &b);
        dip_store_job_free(stored);
        snprintf(loc, sizeof(loc), "/api/v1/jobs/%s", job.id);
        if (!b.failed) {
            struct MHD_Response *resp =
                MHD_create_response_from_buffer_with_free_callback(b.len, b.data, free_cb);
            if (resp == NULL) {
                ret = MHD_NO;
                goto out;
            }
            b.data = NULL;
            MHD_add_response_header(resp, "Content-Type", "application/json");
            MHD_add_response_header(resp, "Location", loc);
            ret = queue(c, 201, resp);
        } else {
            ret = send_json(c, 201, &b);
        }
    }
out:
    dip__sbuf_free(&b);
    dip_free(job.items);
    dip_free(canon);
    dip_pipeline_free(p);
    dip_free(pipe_buf);
    dip_free(fmt_buf);
    dip_free(q_buf);
    dip_free(parts);
    return ret;
}

static const char *mime_of(dip_format f)
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

static enum MHD_Result send_image(struct ctx *c, uint8_t *data, size_t len, dip_format f,
                                  const char *name, const char *disposition)
{
    struct MHD_Response *resp;
    char cd[400];

    resp = MHD_create_response_from_buffer_with_free_callback(len, data, free_cb);
    if (resp == NULL) {
        dip_free(data);
        return MHD_NO;
    }
    snprintf(cd, sizeof(cd), "%s; filename=\"%s\"", disposition, name);
    MHD_add_response_header(resp, "Content-Type", mime_of(f));
    MHD_add_response_header(resp, "Content-Disposition", cd);
    return queue(c, 200, resp);
}

static enum MHD_Result h_result(struct ctx *c)
{
    struct dip_store_job *job = NULL;
    struct dip_err err = {0};
    uint8_t *data = NULL;
    size_t len = 0, i;
    char *end, name[300];
    unsigned long n;
    enum MHD_Result ret;
    int rc;

    if (load_job(c, 1, &job) != 0)
        return MHD_YES;
    errno = 0;
    n = strtoul(c->r->n, &end, 10);
    if (errno != 0 || *end != '\0' || c->r->n[0] < '0' || c->r->n[0] > '9' || n >= job->n_items) {
        ret = send_error(c, 404, "ENOTFOUND", "job %s has no item %.32s", job->id, c->r->n);
        goto out;
    }
    i = (size_t)n;
    if (strcmp(job->items[i].state, "done") != 0 || job->items[i].out_sha[0] == '\0') {
        ret = send_error(c, 404, "ENOTFOUND", "item %zu of job %s has no result (state %s)", i,
                         job->id, job->items[i].state);
        goto out;
    }
    rc = dip_store_blob_get(c->s->store, job->items[i].out_sha, SIZE_MAX / 2, &data, &len, &err);
    if (rc != 0) {
        ret = send_dip_error(c, rc, &err);
        goto out;
    }
    dip__result_name(job, i, name, sizeof(name));
    ret = send_image(c, data, len, dip_format_from_name(job->items[i].out_format), name,
                     "attachment");
out:
    dip_store_job_free(job);
    return ret;
}

/* ---- Synchronous /process ---- */

static enum MHD_Result h_process(struct ctx *c)
{
    dip_server *s = c->s;
    const char *pipeline, *fmt, *qual;
    struct dip_job_spec spec;
    struct dip_run_opts ro;
    struct dip_err err = {0};
    dip_pipeline *p = NULL;
    dip_format format, out_format = DIP_FORMAT_UNKNOWN;
    uint8_t *out = NULL;
    size_t out_len = 0;
    int slots = s->o.threads > 0 ? s->o.threads : dip_cpu_count();
    int rc, quality, admitted = 0;
    uint64_t ticket;
    double t0 = dip__now();
    enum MHD_Result ret;
    char name[32];

    pipeline = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "pipeline");
    fmt = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "format");
    qual = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "quality");
    if (parse_format(fmt, &format) != 0) {
        ret = send_error(c, 400, "EINVAL",
                         "format '%.32s' is not one of png, jpeg, webp, tiff, bmp, pnm (or empty)",
                         fmt);
        goto out;
    }
    if (parse_quality(qual, &quality) != 0) {
        ret = send_error(c, 400, "EINVAL", "quality '%.32s' is not an integer in 1..100", qual);
        goto out;
    }
    if (c->r->body.len == 0) {
        ret = send_error(c, 400, "EINVAL", "empty body: send one image's bytes");
        goto out;
    }
    rc = dip_pipeline_parse(pipeline ? pipeline : "", &p, &err);
    if (rc != 0) {
        ret = send_dip_error(c, rc, &err);
        goto out;
    }
    /* Admission, first come first served: tickets are taken in order and ticket t runs once
     * fewer than `slots` earlier tickets are unfinished. A bounded number wait; the rest get
     * 429. The tail latency under load is then the queue's, not a lottery's. */
    pthread_mutex_lock(&s->lock);
    if (s->process_next - s->process_done >= (uint64_t)slots + DIP_MAX(256, 16 * (uint64_t)slots)) {
        pthread_mutex_unlock(&s->lock);
        ret = send_error(c, 429, "EBUSY", "too many synchronous requests; retry later");
        goto out;
    }
    ticket = s->process_next++;
    admitted = 1;
    while (ticket >= s->process_done + (uint64_t)slots) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->process_cond, &s->lock, &ts);
    }
    s->m_bytes_in += c->r->body.len;
    pthread_mutex_unlock(&s->lock);

    dip_job_spec_default(&spec);
    spec.pipeline = pipeline ? pipeline : "";
    spec.encode.format = format;
    spec.encode.quality = quality;
    spec.limits = s->o.limits;
    spec.threads = 1;
    memset(&ro, 0, sizeof(ro));
    rc = dip_process_bytes(&spec, p, (const uint8_t *)c->r->body.data, c->r->body.len, &ro, &out,
                           &out_len, &out_format, NULL, NULL, NULL, &err);
    if (rc != 0) {
        ret = send_dip_error(c, rc, &err);
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    s->m_bytes_out += out_len;
    s->m_process++;
    pthread_mutex_unlock(&s->lock);
    dip__metrics_latency(s, dip__now() - t0);
    snprintf(name, sizeof(name), "result.%s", dip_format_ext(out_format));
    ret = send_image(c, out, out_len, out_format, name, "inline");
    out = NULL;
out:
    if (admitted) {
        pthread_mutex_lock(&s->lock);
        s->process_done++;
        pthread_cond_broadcast(&s->process_cond);
        pthread_mutex_unlock(&s->lock);
    }
    dip_free(out);
    dip_pipeline_free(p);
    return ret;
}

/* ---- Server-Sent Events ---- */

struct sse {
    dip_server *s;
    char id[DIP_STORE_ID_LEN];
    struct dip__sbuf pending;
    size_t off;
    uint64_t seen;
    double started, last_send;
    int first, ended;
};

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sse *e = cls;
    dip_server *s = e->s;
    struct dip_store_job *job = NULL;
    uint64_t version;
    int stopping = 0, changed = 1;
    size_t n;

    (void)pos;
    if (e->off < e->pending.len)
        goto copy;
    dip__sbuf_reset(&e->pending);
    e->off = 0;
    if (e->ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_lock(&s->lock);
    if (!e->first) {
        /* Throttle to ten events a second; wake on a change, on shutdown, or for a keepalive. */
        /* Keepalives well inside the idle timeout, so a quiet stream is not cut. */
        double keepalive = DIP_MIN(15.0, s->o.connection_timeout_s / 2.0);
        while (s->version == e->seen && !s->stopping && dip__now() - e->last_send < keepalive) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        }
        changed = s->version != e->seen;
    }
    version = s->version;
    stopping = s->stopping;
    pthread_mutex_unlock(&s->lock);
    if (stopping || dip__now() - e->started > (double)s->o.sse_max_s)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (!e->first && changed && dip__now() - e->last_send < 0.1)
        usleep((useconds_t)((0.1 - (dip__now() - e->last_send)) * 1e6));
    e->first = 0;
    e->seen = version;
    e->last_send = dip__now();
    if (!changed) {
        dip__sbuf_str(&e->pending, ": keepalive\n\n");
        goto copy;
    }
    if (dip_store_job_get(s->store, e->id, 1, &job, NULL) != 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    dip__sbuf_str(&e->pending, "event: progress\ndata: ");
    dip__job_json(s, job, 1, &e->pending);
    dip__sbuf_str(&e->pending, "\n\n");
    if (dip__state_final(job->state)) {
        dip__sbuf_str(&e->pending, "event: end\ndata: ");
        dip__job_json(s, job, 1, &e->pending);
        dip__sbuf_str(&e->pending, "\n\n");
        e->ended = 1;
    }
    dip_store_job_free(job);
    if (e->pending.failed)
        return MHD_CONTENT_READER_END_WITH_ERROR;
copy:
    n = e->pending.len - e->off;
    if (n > max)
        n = max;
    memcpy(buf, e->pending.data + e->off, n);
    e->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    struct sse *e = cls;

    dip__sbuf_free(&e->pending);
    dip_free(e);
}

static enum MHD_Result h_events(struct ctx *c)
{
    struct dip_store_job *job = NULL;
    struct MHD_Response *resp;
    struct sse *e;

    if (load_job(c, 0, &job) != 0)
        return MHD_YES;
    e = dip_calloc(1, sizeof(*e));
    if (e == NULL) {
        dip_store_job_free(job);
        return send_error(c, 503, "ENOMEM", "out of memory");
    }
    e->s = c->s;
    snprintf(e->id, sizeof(e->id), "%s", job->id);
    dip_store_job_free(job);
    dip__sbuf_init(&e->pending, JSON_CAP);
    e->first = 1;
    e->started = dip__now();
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, e, sse_free);
    if (resp == NULL) {
        sse_free(e);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return queue(c, 200, resp);
}

/* ---- archive.zip ---- */

struct zipstream {
    dip_server *s;
    struct dip_store_job *job;
    size_t next; /* next item to consider */
    uint64_t offset;
    uint16_t entries;
    struct dip__sbuf central;
    struct dip__sbuf pending;
    size_t off;
    int ended;
};

static ssize_t zip_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct zipstream *z = cls;
    size_t n;

    (void)pos;
    while (z->off >= z->pending.len) {
        dip__sbuf_reset(&z->pending);
        z->off = 0;
        if (z->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        while (z->next < z->job->n_items && strcmp(z->job->items[z->next].state, "done") != 0)
            z->next++;
        if (z->next < z->job->n_items) {
            const struct dip_store_item *it = &z->job->items[z->next];
            uint8_t *data = NULL;
            size_t len = 0;
            char name[300];
            uint32_t crc;
            if (dip_store_blob_get(z->s->store, it->out_sha, 0xffffffffu, &data, &len, NULL) != 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            dip__result_name(z->job, z->next, name, sizeof(name));
            crc = dip__crc32(0, data, len);
            if (z->offset > 0xffffffffu) {
                dip_free(data);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            dip__zip_central(&z->central, name, crc, (uint32_t)len, (uint32_t)z->offset);
            dip__zip_local_header(&z->pending, name, crc, (uint32_t)len);
            dip__sbuf_add(&z->pending, data, len);
            dip_free(data);
            z->offset += z->pending.len;
            z->entries++;
            z->next++;
        } else {
            if (z->offset > 0xffffffffu)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            dip__sbuf_add(&z->pending, z->central.data ? z->central.data : "", z->central.len);
            dip__zip_end(&z->pending, z->entries, (uint32_t)z->central.len, (uint32_t)z->offset);
            z->ended = 1;
        }
        if (z->pending.failed || z->central.failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = z->pending.len - z->off;
    if (n > max)
        n = max;
    memcpy(buf, z->pending.data + z->off, n);
    z->off += n;
    return (ssize_t)n;
}

static void zip_free(void *cls)
{
    struct zipstream *z = cls;

    dip_store_job_free(z->job);
    dip__sbuf_free(&z->central);
    dip__sbuf_free(&z->pending);
    dip_free(z);
}

static enum MHD_Result h_archive(struct ctx *c)
{
    struct dip_store_job *job = NULL;
    struct MHD_Response *resp;
    struct zipstream *z;
    uint64_t total = 22, entries = 0;
    char cd[128];

    if (load_job(c, 1, &job) != 0)
        return MHD_YES;
    for (size_t i = 0; i < job->n_items; i++) {
        if (strcmp(job->items[i].state, "done") != 0)
            continue;
        entries++;
        total += 30 + 46 + 2 * 300 + job->items[i].bytes_out;
    }
    if (entries > 65535 || total > 0xffffffffu) {
        dip_store_job_free(job);
        return send_error(c, 413, "ELIMIT",
                          "the archive would exceed 4 GiB or 65535 entries; download results "
                          "one by one");
    }
    z = dip_calloc(1, sizeof(*z));
    if (z == NULL) {
        dip_store_job_free(job);
        return send_error(c, 503, "ENOMEM", "out of memory");
    }
    z->s = c->s;
    z->job = job;
    dip__sbuf_init(&z->central, (size_t)1 << 26);
    dip__sbuf_init(&z->pending, (size_t)0xffffffffu);
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 65536, zip_read, z, zip_free);
    if (resp == NULL) {
        zip_free(z);
        return MHD_NO;
    }
    snprintf(cd, sizeof(cd), "attachment; filename=\"dip-%s.zip\"", job->id);
    MHD_add_response_header(resp, "Content-Type", "application/zip");
    MHD_add_response_header(resp, "Content-Disposition", cd);
    return queue(c, 200, resp);
}

/* ---- Static files ---- */

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

static enum MHD_Result serve_static(struct ctx *c, const char *url)
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
        return send_error(c, 404, "ENOTFOUND", "not found");
    for (const char *q = rel; *q != '\0'; q++)
        if ((unsigned char)*q < 0x20)
            return send_error(c, 404, "ENOTFOUND", "not found");
    if (realpath(c->s->web_dir, root) == NULL)
        return send_error(c, 404, "ENOTFOUND", "no web folder");
    if (snprintf(path, sizeof(path), "%s%s", root, rel) >= (int)sizeof(path) ||
        realpath(path, real) == NULL)
        return send_error(c, 404, "ENOTFOUND", "not found");
    rlen = strlen(root);
    if (strncmp(real, root, rlen) != 0 || (real[rlen] != '/' && real[rlen] != '\0'))
        return send_error(c, 404, "ENOTFOUND", "not found");
    fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return send_error(c, 404, "ENOTFOUND", "not found");
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return send_error(c, 404, "ENOTFOUND", "not found");
    }
    resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (resp == NULL) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", content_type_of(real));
    return queue(c, 200, resp);
}

/* ---- Dispatch ---- */

static size_t body_cap(const dip_server *s, const struct route *rt)
{
    if (rt->fn == h_process)
        return s->o.limits.max_input_bytes;
    return s->o.limits.max_request_bytes;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    dip_server *s = cls;
    struct req *r = *req_cls;
    struct ctx c;

    (void)version;
    memset(&c, 0, sizeof(c));
    c.s = s;
    c.conn = conn;
    c.url = url;
    if (r == NULL) {
        int path_known = 0;
        const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
        const char *cl;

        r = dip_calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        r->s = s;
        r->t0 = dip__now();
        *req_cls = r;
        for (size_t i = 0; i < DIP_COUNTOF(routes); i++) {
            if (!match(routes[i].pattern, url, r))
                continue;
            path_known = 1;
            if (strcmp(routes[i].method, m) == 0) {
                r->route = &routes[i];
                break;
            }
        }
        c.r = r;
        pthread_mutex_lock(&s->lock);
        s->m_requests++;
        pthread_mutex_unlock(&s->lock);
        if (r->route == NULL && path_known)
            return send_error(&c, 405, "EINVAL", "method %s not allowed on %s", method, url);
        if (r->route == NULL && strncmp(url, "/api/", 5) == 0)
            return send_error(&c, 404, "ENOTFOUND", "no such endpoint");
        if (r->route == NULL && strcmp(m, "GET") != 0)
            return send_error(&c, 405, "EINVAL", "method %s not allowed on %s", method, url);
        if (r->route != NULL && r->route->body) {
            cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
            if (cl != NULL) {
                char *end;
                unsigned long long v;
                errno = 0;
                v = strtoull(cl, &end, 10);
                if (errno == 0 && *end == '\0' && v > body_cap(s, r->route)) {
                    /* A client that waits for 100-continue, or a body far over the limit, gets
                     * the answer at once and the connection closes. A modest excess is read
                     * and dropped first, so that simple clients (which send the whole body
                     * before reading) see the 413 rather than a reset. */
                    const char *expect =
                        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
                    if (expect != NULL || v / 16 > body_cap(s, r->route))
                        return send_error(&c, 413, "ELIMIT",
                                          "request body of %llu bytes > limit %zu", v,
                                          body_cap(s, r->route));
                    r->too_big = 1;
                }
            }
            dip__sbuf_init(&r->body, body_cap(s, r->route));
            if (cl != NULL && !r->too_big) {
                char *end;
                unsigned long long v = strtoull(cl, &end, 10);
                /* A claimed length reserves at most 64 MiB before any byte arrives. */
                if (*end == '\0' && v > 0 && v <= body_cap(s, r->route))
                    (void)dip__sbuf_reserve(&r->body, (size_t)DIP_MIN(v, 64ull << 20));
            }
        }
        return MHD_YES;
    }
    c.r = r;
    if (*upload_data_size > 0) {
        if (r->responded || r->route == NULL || !r->route->body) {
            *upload_data_size = 0; /* discarded */
            if (r->route != NULL && !r->route->body)
                r->too_big = 2;
            return MHD_YES;
        }
        if (!r->too_big && dip__sbuf_add(&r->body, upload_data, *upload_data_size) != 0)
            r->too_big = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->responded)
        return MHD_YES;
    if (r->too_big == 1) {
        if (r->body.failed == DIP_ENOMEM)
            return send_error(&c, 503, "ENOMEM", "out of memory for the request body");
        return send_error(&c, 413, "ELIMIT", "request body > limit %zu", r->body.cap);
    }
    if (r->too_big == 2)
        return send_error(&c, 400, "EINVAL", "%s %s takes no body", method, url);
    if (r->route == NULL)
        return serve_static(&c, url);
    if (get_auth(&c, r->route->who) != 0)
        return MHD_YES;
    if (r->route->who == ADMIN && !c.admin)
        return send_error(&c, 403, "EAUTH", "%s is for admins", r->route->pattern);
    return r->route->fn(&c);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req *r = *req_cls;

    (void)cls, (void)conn, (void)toe;
    if (r == NULL)
        return;
    dip__sbuf_free(&r->body);
    dip_free(r);
    *req_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    const dip_server *s = cls;

    if (s->o.quiet)
        return;
    fputs("dip serve: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---- Start and stop ---- */

static int parse_listen(const char *listen, struct sockaddr_storage *sa, socklen_t *salen,
                        int *loopback, int *v6, struct dip_err *err)
{
    char host[256];
    const char *colon, *hs = listen;
    size_t hl;
    struct addrinfo hints, *ai = NULL;
    int grc;

    colon = strrchr(listen, ':');
    if (colon == NULL)
        return dip_err_set(err, DIP_EINVAL, "serve: --listen '%s' is not HOST:PORT", listen);
    hl = (size_t)(colon - listen);
    if (hl > 1 && listen[0] == '[' && listen[hl - 1] == ']') {
        hs = listen + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host))
        return dip_err_set(err, DIP_EINVAL, "serve: --listen '%s' has no host", listen);
    memcpy(host, hs, hl);
    host[hl] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    grc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (grc != 0 || ai == NULL)
        return dip_err_set(err, DIP_EINVAL, "serve: --listen '%s': %s", listen, gai_strerror(grc));
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    *salen = ai->ai_addrlen;
    *v6 = ai->ai_family == AF_INET6;
    if (ai->ai_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ai->ai_addr;
        *loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ai->ai_addr;
        *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    freeaddrinfo(ai);
    return 0;
}

static int read_pem(const char *path, char **out, struct dip_err *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;
    int rc = 0;

    *out = NULL;
    if (f == NULL)
        return dip_err_set(err, DIP_EIO, "serve: cannot open %s: %s", path, strerror(errno));
    buf = dip_malloc(1 << 20);
    if (buf == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    n = fread(buf, 1, (1 << 20) - 1, f);
    if (ferror(f) || n == 0 || n == (1 << 20) - 1) {
        rc = dip_err_set(err, DIP_EIO, "serve: cannot read %s (empty, unreadable or over 1 MiB)",
                         path);
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
out:
    dip_free(buf);
    fclose(f);
    return rc;
}

int dip_server_start(const struct dip_server_opts *o, dip_server **out, struct dip_err *err)
{
    dip_server *s = NULL;
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    int v6 = 0, rc = 0;
    uint64_t ntok = 0;
    unsigned int flags;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;

    *out = NULL;
    s = dip_calloc(1, sizeof(*s));
    if (s == NULL)
        return DIP_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_cond_init(&s->process_cond, NULL);
    s->lock_fd = -1;
    s->o = *o;
    s->listen = dip_strdup(o->listen ? o->listen : "127.0.0.1:8080");
    s->data_dir = dip_strdup(o->data_dir ? o->data_dir : "./var");
    s->web_dir = dip_strdup(o->web_dir ? o->web_dir : DIP_WEB_DIR);
    if (s->listen == NULL || s->data_dir == NULL || s->web_dir == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    s->o.listen = s->listen;
    s->o.data_dir = s->data_dir;
    s->o.web_dir = s->web_dir;
    if (s->o.max_images_per_job <= 0 || s->o.max_active_per_user <= 0 || s->o.max_queue <= 0 ||
        s->o.max_connections <= 0 || s->o.connection_timeout_s <= 0 || s->o.sse_max_s <= 0) {
        rc = dip_err_set(err, DIP_EINVAL, "serve: limits must be positive");
        goto out;
    }
    rc = parse_listen(s->listen, &sa, &salen, &s->loopback, &v6, err);
    if (rc != 0)
        goto out;
    if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
        rc = dip_err_set(err, DIP_EINVAL, "serve: --tls-cert and --tls-key go together");
        goto out;
    }
    if (o->tls_cert != NULL) {
        rc = read_pem(o->tls_cert, &s->tls_cert_pem, err);
        if (rc == 0)
            rc = read_pem(o->tls_key, &s->tls_key_pem, err);
        if (rc != 0)
            goto out;
    }
    rc = dip_store_open(s->data_dir, &s->store, err);
    if (rc != 0)
        goto out;
    /* One server per data folder: two runners would compute the same jobs twice. */
    {
        char lock[4200];
        snprintf(lock, sizeof(lock), "%s/serve.lock", s->data_dir);
        s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            rc = dip_err_set(err, DIP_EBUSY,
                             "serve: another dip serve is using %s (%s); stop it or use another "
                             "--data folder",
                             s->data_dir, s->lock_fd < 0 ? strerror(errno) : "locked");
            goto out;
        }
    }
    dip_store_sweep(s->store);
    rc = dip_store_token_count(s->store, &ntok, err);
    if (rc != 0)
        goto out;
    if (!s->loopback && ntok == 0) {
        rc = dip_err_set(err, DIP_EINVAL,
                         "serve: refusing to listen on %s without users: create a token first "
                         "(dip token create NAME --admin --data %s) or listen on 127.0.0.1",
                         s->listen, s->data_dir);
        goto out;
    }
    rc = dip_store_recover(s->store, err);
    if (rc != 0)
        goto out;
    if (o->executor != NULL) {
        s->ex = o->executor;
    } else {
        rc = dip_executor_local_new(o->threads, &s->ex);
        if (rc != 0) {
            dip_err_set(err, rc, "serve: cannot start the local executor");
            goto out;
        }
        s->own_ex = 1;
    }

    flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    if (s->tls_cert_pem != NULL)
        flags |= MHD_USE_TLS;
    d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                         s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned int)s->o.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned int)s->o.connection_timeout_s,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->o.connection_memory,
                         MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
                         s->tls_cert_pem ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
                         s->tls_cert_pem, MHD_OPTION_HTTPS_MEM_KEY, s->tls_key_pem, MHD_OPTION_END);
    (void)salen;
    if (d == NULL) {
        rc = dip_err_set(err, DIP_EIO,
                         "serve: cannot listen on %s (address in use, not local, or bad TLS "
                         "files)",
                         s->listen);
        goto out;
    }
    s->mhd = d;
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *out = s;
    s = NULL;
out:
    dip_server_free(s);
    return rc;
}

int dip_server_port(const dip_server *s)
{
    return s->port;
}

int dip_server_open_mode(const dip_server *s)
{
    uint64_t ntok = 1;

    return s->loopback && dip_store_token_count(s->store, &ntok, NULL) == 0 && ntok == 0;
}

void dip_server_free(dip_server *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->mhd != NULL)
        MHD_stop_daemon(s->mhd);
    if (s->own_ex)
        dip_executor_free(s->ex);
    dip_store_close(s->store);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the lock */
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->process_cond);
    pthread_mutex_destroy(&s->lock);
    dip_free(s->tls_cert_pem);
    dip_free(s->tls_key_pem);
    dip_free(s->listen);
    dip_free(s->data_dir);
    dip_free(s->web_dir);
    dip_free(s);
}

const char *dip_server_version(void)
{
    static char buf[48];

    if (buf[0] == '\0')
        snprintf(buf, sizeof(buf), "libmicrohttpd %s", MHD_get_version());
    return buf;
}
