/* SPDX-License-Identifier: MIT */
/* The access log: one line per request, written by the completed callback (server.c) through the
 * service's log (src/service/log.c: text or JSON, nothing at --log-level 0). */
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/internal.h"
#include "server/http.h"

/* One line per request (docs/deploy.md, "Logs"): the route's pattern, not the URL (no ids or
 * query strings, so no secret in a query reaches the log), and the user's name, never a token. */
void dip__log_request(dip_server *s, struct MHD_Connection *conn, const struct req *r,
                      enum MHD_RequestTerminationCode toe)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char addr[INET6_ADDRSTRLEN + 8] = "-", status[16], bytes[32], ms[32];
    const char *route = r->route                               ? r->route->pattern
                        : r->status == 200 || r->status == 304 ? "(static)"
                                                               : "(none)";

    if (s->o.quiet || s->o.log_level < 1)
        return;
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr,
                      sizeof(addr));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr,
                      sizeof(addr));
    }
    snprintf(status, sizeof(status), "%d", r->status ? r->status : (r->responded ? 200 : 0));
    if (r->bytes >= 0)
        snprintf(bytes, sizeof(bytes), "%lld", (long long)r->bytes);
    snprintf(ms, sizeof(ms), "%.3f", (dip__now() - r->t0) * 1000.0);
    dip__log_event(s->svc, 1, "request", "method", r->method, "route", route, "#status", status,
                   "#bytes", r->bytes >= 0 ? bytes : NULL, "#ms", ms, "user",
                   r->user[0] ? r->user : NULL, "remote", addr, "end",
                   toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "ok" : "aborted", NULL);
}
