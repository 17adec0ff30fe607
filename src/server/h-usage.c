/* SPDX-License-Identifier: MIT */
/* GET /api/v1/usage?since=&until=&user=: usage and cost per user (docs/api.md, "Usage"). A user
 * sees their own figures; asking for another user's is 403. An admin sees everyone, or one user
 * with ?user=. The figures come from the store (src/service/usage.c), so they survive restarts. */
#include <string.h>
#include <time.h>

#include "server/http.h"

enum MHD_Result dip__h_usage(struct ctx *c)
{
    const char *since_s = dip__arg(c, "since"), *until_s = dip__arg(c, "until");
    const char *who = dip__arg(c, "user");
    const struct dip_service_opts *o = dip_service_options(c->svc);
    struct dip_usage_prices prices = {o->cost_cpu_hour, o->cost_gb_month};
    struct dip_err err = {0};
    struct dip__sbuf b;
    struct timespec ts;
    double since = 0, until;
    int rc;

    clock_gettime(CLOCK_REALTIME, &ts);
    until = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (since_s != NULL && since_s[0] != '\0' && dip_usage_parse_time(since_s, &since, &err) != 0)
        return dip__send_error(c, 400, "EINVAL", "since: %s", err.msg);
    if (until_s != NULL && until_s[0] != '\0' && dip_usage_parse_time(until_s, &until, &err) != 0)
        return dip__send_error(c, 400, "EINVAL", "until: %s", err.msg);
    if (until < since)
        return dip__send_error(c, 400, "EINVAL", "until is before since");
    if (who != NULL && who[0] == '\0')
        who = NULL;
    if (!c->admin) {
        if (who != NULL && strcmp(who, c->user) != 0)
            return dip__send_error(c, 403, "EAUTH", "only an admin may read another user's usage");
        who = c->user;
    }
    dip__sbuf_init(&b, DIP__JSON_CAP);
    rc = dip__usage_json(dip_service_store(c->svc), who, since, until, &prices, &b, &err);
    if (rc != 0) {
        dip__sbuf_free(&b);
        return dip__send_dip_error(c, rc, &err);
    }
    return dip__send_json(c, 200, &b);
}
