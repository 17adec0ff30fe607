/* SPDX-License-Identifier: MIT */
/* What guards the server from hostile clients before a handler runs: the token (checked from the
 * headers, so a refused upload is never read), the Host (DNS rebinding) and Origin (CSRF) checks,
 * one body length only (request smuggling), and the header deadline: a connection whose request
 * headers are not complete within --header-timeout is shut down by the ticker (slowloris), which
 * also wakes the event streams. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "core/internal.h"
#include "server/http.h"

/* ---- Checks before the body ---- */

/* The token from Authorization (or ?access_token= on GETs, for EventSource and plain links).
 * Sets r->user and r->admin; answers 401 and returns -1 when a route needs a user and none is
 * given. Runs on the first callback, from the headers, so a refused upload is never read. */
int dip__auth(struct ctx *c, enum who who)
{
    dip_store *st = dip_service_store(c->svc);
    const char *h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Authorization");
    char qtok[216];
    uint64_t ntok = 1;
    struct dip_err err = {0};

    c->r->user[0] = '\0';
    c->r->admin = 0;
    if (h == NULL && c->r->route != NULL && strcmp(c->r->route->method, "GET") == 0) {
        const char *q = dip__arg(c, "access_token");
        if (q != NULL && q[0] != '\0') {
            snprintf(qtok, sizeof(qtok), "Bearer %.200s", q);
            h = qtok;
        }
    }
    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *tok = h + 7;
        while (*tok == ' ')
            tok++;
        if (strlen(tok) < 200 &&
            dip_store_token_check(st, tok, c->r->user, &c->r->admin, &err) == 0)
            return 0;
        if (who == ANYONE)
            return 0;
        dip__send_error(c, 401, "EAUTH", "invalid token");
        return -1;
    }
    if (c->s->loopback && dip_store_token_count(st, &ntok, NULL) == 0 && ntok == 0) {
        snprintf(c->r->user, sizeof(c->r->user), "anonymous");
        c->r->admin = 1;
        return 0;
    }
    if (who == ANYONE)
        return 0;
    dip__send_error(c, 401, "EAUTH", "authentication required: send Authorization: Bearer TOKEN");
    return -1;
}

/* The host part of a Host header or an Origin's authority, lower-cased, port dropped. */
static void host_part(const char *in, char *out, size_t len)
{
    size_t n = 0;

    if (in[0] == '[') {
        in++;
        while (*in != '\0' && *in != ']' && n + 1 < len)
            out[n++] = (char)tolower((unsigned char)*in++);
    } else {
        while (*in != '\0' && *in != ':' && *in != '/' && n + 1 < len)
            out[n++] = (char)tolower((unsigned char)*in++);
    }
    out[n] = '\0';
}

/* DNS rebinding: a Host must name this server. Accepted: the --listen host, --public-host, the
 * loopback names when listening on loopback, and any address literal when listening on all
 * addresses. */
int dip__host_ok(const dip_server *s, const char *host)
{
    char h[256], lh[256];
    struct in6_addr a6;
    struct in_addr a4;

    if (host == NULL)
        return 1; /* HTTP/1.0; MHD refuses HTTP/1.1 without Host */
    host_part(host, h, sizeof(h));
    host_part(s->listen, lh, sizeof(lh));
    if (h[0] == '\0')
        return 0;
    if (strcmp(h, lh) == 0)
        return 1;
    if (s->public_host != NULL) {
        char ph[256];
        host_part(s->public_host, ph, sizeof(ph));
        if (strcmp(h, ph) == 0)
            return 1;
    }
    if (s->loopback)
        return strcmp(h, "localhost") == 0 || strcmp(h, "127.0.0.1") == 0 || strcmp(h, "::1") == 0;
    if (strcmp(lh, "0.0.0.0") == 0 || strcmp(lh, "::") == 0)
        return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1;
    return 0;
}

/* CSRF: a request that changes state from a browser page carries Origin; it must be this
 * server's own (same host and port as the Host the request was sent to). */
int dip__origin_ok(const dip_server *s, const char *origin, const char *host)
{
    const char *auth;

    if (origin == NULL)
        return 1; /* not a browser's cross-origin request (curl, the CLI) */
    auth = strstr(origin, "://");
    if (auth == NULL)
        return 0; /* "null" and the like */
    auth += 3;
    if (host != NULL && strcasecmp(auth, host) == 0)
        return 1;
    /* Behind a proxy that rewrites Host, the page's origin is the public name. */
    if (s->public_host != NULL) {
        char oh[256], ph[256];
        host_part(auth, oh, sizeof(oh));
        host_part(s->public_host, ph, sizeof(ph));
        return strcmp(oh, ph) == 0;
    }
    return 0;
}

struct hcount {
    int content_length, transfer_encoding;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct hcount *h = cls;

    (void)kind, (void)value;
    if (strcasecmp(key, "Content-Length") == 0)
        h->content_length++;
    else if (strcasecmp(key, "Transfer-Encoding") == 0)
        h->transfer_encoding++;
    return MHD_YES;
}

int dip__one_length(struct MHD_Connection *conn)
{
    struct hcount hc = {0, 0};

    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &hc);
    return hc.content_length <= 1 && !(hc.content_length > 0 && hc.transfer_encoding > 0);
}

/* ---- Connections: the header deadline ---- */

struct sockinfo *dip__sock_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

void dip__on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    dip_server *s = cls;
    struct sockinfo *si = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        si = dip_calloc(1, sizeof(*si));
        if (si == NULL)
            return;
        si->fd = ci != NULL ? ci->connect_fd : -1;
        si->since = dip__now();
        pthread_mutex_lock(&s->lock);
        si->next = s->socks;
        s->socks = si;
        pthread_mutex_unlock(&s->lock);
        *socket_context = si;
    } else if (si != NULL) {
        /* Called before MHD closes the socket, so the ticker never shuts a reused fd. */
        pthread_mutex_lock(&s->lock);
        for (struct sockinfo **pp = &s->socks; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == si) {
                *pp = si->next;
                break;
            }
        }
        pthread_mutex_unlock(&s->lock);
        dip_free(si);
        *socket_context = NULL;
    }
}

/* Every 200 ms: cuts connections whose headers are overdue (slowloris), and wakes event streams
 * (throttled events, keepalives, and noticing peers that went away). */
void *dip__ticker(void *arg)
{
    dip_server *s = arg;
    double last_wake = 0;

    for (;;) {
        struct timespec ts = {0, 200 * 1000000L};
        double now;
        nanosleep(&ts, NULL);
        now = dip__now();
        pthread_mutex_lock(&s->lock);
        if (s->stopping) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        for (struct sockinfo *si = s->socks; si != NULL; si = si->next) {
            if (!si->in_request && !si->cut && si->fd >= 0 &&
                now - si->since > (double)s->o.header_timeout_s) {
                shutdown(si->fd, SHUT_RDWR); /* MHD sees the end and closes it */
                si->cut = 1;
            }
        }
        pthread_mutex_unlock(&s->lock);
        if (now - last_wake >= 0.2) {
            dip__events_wake(s);
            last_wake = now;
        }
    }
    return NULL;
}

/* ---- While the body arrives ---- */

void dip__early_check(struct ctx *c)
{
    struct req *r = c->r;
    const char *b = r->body.data, *end = b + r->body.len;
    char delim[96];
    size_t dl;
    const char *p;

    if (r->early_checked || r->boundary[0] == '\0' || b == NULL)
        return;
    dl = (size_t)snprintf(delim, sizeof(delim), "--%s", r->boundary);
    p = memmem(b, r->body.len, delim, dl);
    while (p != NULL) {
        const char *h = p + dl, *he, *v, *ve;
        if (end - h < 2)
            return; /* wait for more */
        if (h[0] == '-' && h[1] == '-') {
            r->early_checked = 1; /* the end: no pipeline field before it */
            return;
        }
        he = memmem(h, (size_t)(end - h), "\r\n\r\n", 4);
        if (he == NULL) {
            if (end - h > 8192)
                r->early_checked = 1; /* odd headers: the full parser will say */
            return;
        }
        /* A file part before the pipeline field: nothing to check early. */
        if (memmem(h, (size_t)(he - h), "filename=", 9) != NULL) {
            r->early_checked = 1;
            return;
        }
        v = he + 4;
        ve = memmem(v, (size_t)(end - v), delim, dl);
        if (ve == NULL) {
            if (end - v > 65536)
                r->early_checked = 1;
            return;
        }
        if (memmem(h, (size_t)(he - h), "name=\"pipeline\"", 15) != NULL) {
            char *text;
            size_t n = (size_t)(ve - v);
            if (n >= 2 && v[n - 2] == '\r' && v[n - 1] == '\n')
                n -= 2;
            r->early_checked = 1;
            text = dip_malloc(n + 1);
            if (text == NULL || memchr(v, '\0', n) != NULL) {
                dip_free(text);
                return;
            }
            memcpy(text, v, n);
            text[n] = '\0';
            r->early_rc = dip_service_check_options(c->svc, text, "", "", NULL, &r->early_err);
            dip_free(text);
            return;
        }
        p = ve;
    }
}

int dip__uploads_add(struct ctx *c, uint64_t n)
{
    dip_server *s = c->s;
    uint64_t cap = (uint64_t)s->o.limits.max_request_bytes * 2;
    size_t slot = SIZE_MAX, freeslot = SIZE_MAX;
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < sizeof(s->uploads) / sizeof(s->uploads[0]); i++) {
        if (s->uploads[i].bytes > 0 && strcmp(s->uploads[i].user, c->r->user) == 0)
            slot = i;
        else if (s->uploads[i].bytes == 0 && freeslot == SIZE_MAX)
            freeslot = i;
    }
    if (slot == SIZE_MAX && freeslot != SIZE_MAX) {
        slot = freeslot;
        snprintf(s->uploads[slot].user, sizeof(s->uploads[slot].user), "%s", c->r->user);
    }
    if (slot == SIZE_MAX || s->uploads[slot].bytes + n > cap) {
        rc = -1; /* too many users uploading at once, or this one too much */
    } else {
        s->uploads[slot].bytes += n;
        c->r->counted += n;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void dip__uploads_done(dip_server *s, struct req *r)
{
    if (r->counted == 0)
        return;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < sizeof(s->uploads) / sizeof(s->uploads[0]); i++) {
        if (s->uploads[i].bytes > 0 && strcmp(s->uploads[i].user, r->user) == 0) {
            s->uploads[i].bytes -= DIP_MIN(s->uploads[i].bytes, r->counted);
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    r->counted = 0;
}
