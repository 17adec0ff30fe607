/* SPDX-License-Identifier: MIT */
/* The HTTP layer of `dip serve` on libmicrohttpd: the route table, the checks every request
 * passes before its body is read (Host, Origin, one Content-Length, the token), request bodies
 * gathered under a cap, and start and stop. Connections are served by a few epoll threads, not a
 * thread per connection: an idle or slow socket costs no thread, a request's headers must arrive
 * within a deadline, and one address may hold only so many connections. Long responses (events,
 * downloads) are callbacks or file responses, and a /process request waits suspended. The job
 * service itself is src/service; the handlers are one file per resource (h-*.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "server/http.h"

#ifndef DIP_WEB_DIR
#define DIP_WEB_DIR "web"
#endif

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
    o->http_threads = 4;
    o->max_per_ip = 128;
    o->header_timeout_s = 10;
    o->max_streams = 256;
    o->max_streams_per_user = 8;
    o->keep_s = 7 * 86400.0;
    o->log_level = 1;
    o->shutdown_grace_s = 20.0;
    o->ready_min_free = 256ull << 20;
}

/* ---- The route table ---- */

static const struct route routes[] = {
    /* method, pattern, who, body, changes state, handler */
    {"GET", "/healthz", ANYONE, 0, 0, dip__h_health},
    {"GET", "/readyz", ANYONE, 0, 0, dip__h_ready},
    {"GET", "/metrics", ADMIN, 0, 0, dip__h_metrics},
    {"GET", "/api/v1/ops", ANYONE, 0, 0, dip__h_ops},
    {"GET", "/api/v1/limits", ANYONE, 0, 0, dip__h_limits},
    {"GET", "/api/v1/openapi.json", ANYONE, 0, 0, dip__h_openapi},
    {"GET", "/api/docs", ANYONE, 0, 0, dip__h_docs},
    {"GET", "/api/docs/redoc.js", ANYONE, 0, 0, dip__h_docs_js},
    {"GET", "/api/v1/whoami", USER, 0, 0, dip__h_whoami},
    {"GET", "/api/v1/cluster", ADMIN, 0, 0, dip__h_cluster},
    {"GET", "/api/v1/usage", USER, 0, 0, dip__h_usage},
    {"GET", "/api/v1/jobs", USER, 0, 0, dip__h_jobs_list},
    {"POST", "/api/v1/jobs", USER, 1, 1, dip__h_jobs_post},
    {"GET", "/api/v1/jobs/{id}", USER, 0, 0, dip__h_job_get},
    {"DELETE", "/api/v1/jobs/{id}", USER, 0, 1, dip__h_job_delete},
    {"POST", "/api/v1/jobs/{id}/cancel", USER, 0, 1, dip__h_job_cancel},
    {"GET", "/api/v1/jobs/{id}/events", USER, 0, 0, dip__h_events},
    {"GET", "/api/v1/jobs/{id}/results/{n}", USER, 0, 0, dip__h_result},
    {"GET", "/api/v1/jobs/{id}/archive.zip", USER, 0, 0, dip__h_archive},
    {"GET", "/api/v1/jobs/{id}/items/{n}/input", USER, 0, 0, dip__h_input},
    {"POST", "/api/v1/jobs/{id}/retry", USER, 0, 1, dip__h_retry},
    {"POST", "/api/v1/process", USER, 1, 1, dip__h_process},
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

static size_t body_cap(const dip_server *s, const struct route *rt)
{
    if (rt->fn == dip__h_process)
        return s->o.limits.max_input_bytes;
    return s->o.limits.max_request_bytes;
}

/* ---- Dispatch ---- */

/* First callback of a request: everything decided from the request line and the headers. */
static enum MHD_Result begin(struct ctx *c, const char *url, const char *method)
{
    dip_server *s = c->s;
    struct req *r = c->r;
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    const char *host = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Host");
    struct sockinfo *si = dip__sock_of(c->conn);
    int path_known = 0;
    const char *cl;

    if (si != NULL) {
        pthread_mutex_lock(&s->lock);
        si->in_request = 1;
        pthread_mutex_unlock(&s->lock);
    }
    for (size_t i = 0; i < DIP_COUNTOF(routes); i++) {
        if (!match(routes[i].pattern, url, r))
            continue;
        path_known = 1;
        if (strcmp(routes[i].method, m) == 0) {
            r->route = &routes[i];
            break;
        }
    }
    dip_service_count_request(c->svc);
    /* Request smuggling: a proxy and this server must not disagree on where a body ends. */
    if (!dip__one_length(c->conn))
        return dip__send_error(c, 400, "EINVAL",
                               "conflicting body length: one Content-Length (or Transfer-Encoding) "
                               "only");
    if (!dip__host_ok(s, host))
        return dip__send_error(c, 421, "EINVAL",
                               "Host '%.64s' does not name this server (see --public-host)", host);
    if (r->route == NULL && path_known)
        return dip__send_error(c, 405, "EINVAL", "method %s not allowed on %s", method, url);
    if (r->route == NULL && strncmp(url, "/api/", 5) == 0)
        return dip__send_error(c, 404, "ENOTFOUND", "no such endpoint");
    if (r->route == NULL && strcmp(m, "GET") != 0)
        return dip__send_error(c, 405, "EINVAL", "method %s not allowed on %s", method, url);
    if (r->route == NULL)
        return MHD_YES; /* a static file */
    if (r->route->changes &&
        !dip__origin_ok(s, MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Origin"), host))
        return dip__send_error(c, 403, "EAUTH", "cross-origin %s refused", method);
    if (dip__auth(c, r->route->who) != 0)
        return MHD_YES;
    c->user = r->user;
    c->admin = r->admin;
    if (r->route->who == ADMIN && !r->admin)
        return dip__send_error(c, 403, "EAUTH", "%s is for admins", r->route->pattern);
    if (r->route->body && dip_service_draining(c->svc))
        return dip__send_error(c, 503, "EBUSY", "the server is shutting down; retry shortly");
    if (!r->route->body)
        return MHD_YES;
    cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl != NULL) {
        char *end;
        unsigned long long v;
        errno = 0;
        v = strtoull(cl, &end, 10);
        if (errno == 0 && *end == '\0' && v > body_cap(s, r->route)) {
            /* A client that waits for 100-continue, or a body far over the limit, gets the
             * answer at once and the connection closes. A modest excess is read and dropped
             * first, so that simple clients (which send the whole body before reading) see the
             * 413 rather than a reset. */
            const char *expect = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Expect");
            if (expect != NULL || v / 16 > body_cap(s, r->route))
                return dip__send_error(c, 413, "ELIMIT", "request body of %llu bytes > limit %zu",
                                       v, body_cap(s, r->route));
            r->too_big = 1;
        }
    }
    if (r->route->fn == dip__h_jobs_post &&
        (dip__arg(c, "pipeline") || dip__arg(c, "format") || dip__arg(c, "quality"))) {
        /* Options in the query are checked from the request line: refused before the body. */
        struct dip_err err = {0};
        const char *pl = dip__arg(c, "pipeline"), *fm = dip__arg(c, "format");
        const char *q = dip__arg(c, "quality");
        int rc =
            dip_service_check_options(c->svc, pl ? pl : "", fm ? fm : "", q ? q : "", NULL, &err);
        if (rc != 0)
            return dip__send_dip_error(c, rc, &err);
    }
    dip__sbuf_init(&r->body, body_cap(s, r->route));
    if (r->route->fn == dip__h_jobs_post) {
        const char *ct = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Type");
        if (dip__multipart_boundary(ct, r->boundary, sizeof(r->boundary), NULL) != 0)
            r->boundary[0] = '\0';
    }
    if (cl != NULL && !r->too_big) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        /* A claimed length reserves at most 64 MiB before any byte arrives. */
        if (*end == '\0' && v > 0 && v <= body_cap(s, r->route))
            (void)dip__sbuf_reserve(&r->body, (size_t)DIP_MIN(v, 64ull << 20));
    }
    return MHD_YES;
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
    c.svc = s->svc;
    c.conn = conn;
    c.url = url;
    if (r == NULL) {
        r = dip_calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        r->s = s;
        r->t0 = dip__now();
        r->bytes = -1;
        snprintf(r->method, sizeof(r->method), "%s", method);
        *req_cls = r;
        c.r = r;
        return begin(&c, url, method);
    }
    c.r = r;
    c.user = r->user;
    c.admin = r->admin;
    if (*upload_data_size > 0) {
        if (r->responded || r->route == NULL || !r->route->body) {
            *upload_data_size = 0; /* discarded */
            if (r->route != NULL && !r->route->body)
                r->too_big = 2;
            return MHD_YES;
        }
        if (r->too_big || r->early_rc != 0) {
            *upload_data_size = 0; /* refused already: read and dropped */
            return MHD_YES;
        }
        /* The user's uploads in flight are capped while they stream, not once they are in. */
        if (dip__uploads_add(&c, *upload_data_size) != 0)
            r->too_big = 3;
        else if (dip__sbuf_add(&r->body, upload_data, *upload_data_size) != 0)
            r->too_big = 1;
        *upload_data_size = 0;
        if (r->too_big) {
            /* Refused: what it holds is given back now, the rest is read and dropped. */
            int failed = r->body.failed;
            dip__uploads_done(s, r);
            dip__sbuf_free(&r->body);
            r->body.failed = failed;
            return MHD_YES;
        }
        if (r->route->fn == dip__h_jobs_post && !r->early_checked) {
            dip__early_check(&c);
            if (r->early_rc != 0) {
                /* Free what was buffered; the answer goes out when the body has been read. */
                dip__uploads_done(s, r);
                dip__sbuf_free(&r->body);
            }
        }
        return MHD_YES;
    }
    if (r->responded)
        return MHD_YES;
    if (r->too_big == 1) {
        if (r->body.failed == DIP_ENOMEM)
            return dip__send_error(&c, 503, "ENOMEM", "out of memory for the request body");
        return dip__send_error(&c, 413, "ELIMIT", "request body > limit %zu",
                               body_cap(s, r->route));
    }
    if (r->too_big == 2)
        return dip__send_error(&c, 400, "EINVAL", "%s %s takes no body", method, url);
    if (r->too_big == 3)
        return dip__send_error(&c, 413, "ELIMIT",
                               "user %s has more than %zu bytes of uploads in flight; retry when "
                               "one is done",
                               r->user, s->o.limits.max_request_bytes * 2);
    if (r->early_rc != 0)
        return dip__send_dip_error(&c, r->early_rc, &r->early_err);
    if (r->route == NULL)
        return dip__serve_static(&c, url);
    return r->route->fn(&c);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    dip_server *s = cls;
    struct req *r = *req_cls;
    struct sockinfo *si = dip__sock_of(conn);

    (void)toe;
    if (si != NULL) {
        /* The next request on this connection gets its own header deadline. */
        pthread_mutex_lock(&s->lock);
        si->in_request = 0;
        si->since = dip__now();
        pthread_mutex_unlock(&s->lock);
    }
    if (r == NULL)
        return;
    dip__log_request(s, conn, r, toe);
    dip__uploads_done(s, r);
    if (r->state_free != NULL)
        r->state_free(r->state);
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
    struct dip_service_opts so;
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    int v6 = 0, rc = 0;
    uint64_t ntok = 0;
    unsigned int flags;
    const union MHD_DaemonInfo *info;

    *out = NULL;
    s = dip_calloc(1, sizeof(*s));
    if (s == NULL)
        return DIP_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->o = *o;
    s->listen = dip_strdup(o->listen ? o->listen : "127.0.0.1:8080");
    s->web_dir = dip_strdup(o->web_dir ? o->web_dir : DIP_WEB_DIR);
    s->public_host = o->public_host ? dip_strdup(o->public_host) : NULL;
    if (s->listen == NULL || s->web_dir == NULL || (o->public_host && s->public_host == NULL)) {
        rc = DIP_ENOMEM;
        goto out;
    }
    s->o.listen = s->listen;
    s->o.web_dir = s->web_dir;
    s->o.public_host = s->public_host;
    if (s->o.max_connections <= 0 || s->o.connection_timeout_s <= 0 || s->o.sse_max_s <= 0 ||
        s->o.http_threads <= 0 || s->o.max_per_ip <= 0 || s->o.header_timeout_s <= 0 ||
        s->o.max_streams <= 0 || s->o.max_streams_per_user <= 0) {
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
    dip__service_opts(o, &so);
    rc = dip_service_new(&so, &s->svc, err);
    if (rc != 0)
        goto out;
    rc = dip_store_token_count(dip_service_store(s->svc), &ntok, err);
    if (rc != 0)
        goto out;
    if (!s->loopback && ntok == 0) {
        rc = dip_err_set(err, DIP_EINVAL,
                         "serve: refusing to listen on %s without users: create a token first "
                         "(dip token create NAME --admin --data %s) or listen on 127.0.0.1",
                         s->listen, so.data_dir);
        goto out;
    }
    if (!s->loopback && s->tls_cert_pem == NULL && !o->quiet)
        fprintf(stderr,
                "dip serve: warning: listening on %s without TLS: tokens and images cross "
                "the network in clear (use --tls-cert/--tls-key or a TLS proxy)\n",
                s->listen);
    dip_service_on_change(s->svc, dip__events_wake, s);

    /* A few epoll threads serve every connection; nothing waits on a thread of its own. */
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    if (s->tls_cert_pem != NULL)
        flags |= MHD_USE_TLS;
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, dip__on_connection, s, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)s->o.http_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)s->o.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)s->o.max_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)s->o.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        s->o.connection_memory, s->tls_cert_pem ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
        s->tls_cert_pem, MHD_OPTION_HTTPS_MEM_KEY, s->tls_key_pem,
        /* TLS 1.2 at least: 1.0 and 1.1 are refused at the handshake. */
        MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_END);
    (void)salen;
    if (s->mhd == NULL) {
        rc = dip_err_set(err, DIP_EIO,
                         "serve: cannot listen on %s (address in use, not local, or bad TLS "
                         "files)",
                         s->listen);
        goto out;
    }
    info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    if (pthread_create(&s->ticker, NULL, dip__ticker, s) != 0) {
        rc = dip_err_set(err, DIP_ENOMEM, "serve: cannot start a thread");
        goto out;
    }
    s->has_ticker = 1;
    if (dip__intake_start(s) != 0) {
        rc = dip_err_set(err, DIP_ENOMEM, "serve: cannot start a thread");
        goto out;
    }
    *out = s;
    s = NULL;
out:
    dip_server_free(s);
    return rc;
}

int dip_server_run(dip_server *s, volatile sig_atomic_t *stop)
{
    return dip_service_run(s->svc, stop);
}

int dip_server_port(const dip_server *s)
{
    return s->port;
}

int dip_server_open_mode(const dip_server *s)
{
    uint64_t ntok = 1;

    return s->loopback && dip_store_token_count(dip_service_store(s->svc), &ntok, NULL) == 0 &&
           ntok == 0;
}

void dip_server_free(dip_server *s)
{
    if (s == NULL)
        return;
    if (s->svc != NULL) {
        dip_service_on_change(s->svc, NULL, NULL);
        dip_service_stop(s->svc);
        dip__runner_drain(s->svc); /* resumes waiting /process connections */
    }
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_mutex_unlock(&s->lock);
    if (s->has_ticker)
        pthread_join(s->ticker, NULL);
    dip__intake_stop(s); /* resumes the connections of what was queued */
    /* Suspended event streams must run again to end before the daemon stops. */
    if (s->mhd != NULL) {
        dip__events_wake(s);
        MHD_stop_daemon(s->mhd);
    }
    dip_service_free(s->svc);
    pthread_mutex_destroy(&s->lock);
    dip_free(s->tls_cert_pem);
    dip_free(s->tls_key_pem);
    dip_free(s->listen);
    dip_free(s->web_dir);
    dip_free(s->public_host);
    dip_free(s);
}

const char *dip_server_version(void)
{
    static char buf[48];

    if (buf[0] == '\0')
        snprintf(buf, sizeof(buf), "libmicrohttpd %s", MHD_get_version());
    return buf;
}
