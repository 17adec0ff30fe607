/* SPDX-License-Identifier: MIT */
/* Usage and cost per user, from the store's usage tables (src/store/usage.c): the JSON of
 * GET /api/v1/usage and `dip usage --json`, the table `dip usage` prints, the per-user series of
 * /metrics (the top users by CPU and one "(other)" series, so the label values stay bounded) and
 * the price list that turns usage into a cost. Recording happens where the work is done: intake
 * (submit.c), results (runner.c) and job deletion (the store). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "service/internal.h"

#define MONTH_S (30.0 * 86400.0) /* a "month" of storage: 30 days, as cloud price lists use */

int dip_usage_parse_time(const char *text, double *out, struct dip_err *err)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    char *end = NULL;
    double v;

    if (text == NULL || *text == '\0')
        return dip_err_set(err, DIP_EINVAL, "empty time (use YYYY-MM-DD or unix seconds)");
    if (strlen(text) < 40 && sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10) {
        const char *p = text + 10;
        int m = 0;
        if ((*p == 'T' || *p == ' ') && sscanf(p + 1, "%2d:%2d%n", &h, &mi, &m) == 2) {
            p += 1 + m;
            if (*p == ':' && sscanf(p + 1, "%2d%n", &sec, &m) == 1)
                p += 1 + m;
        }
        if (*p == 'Z')
            p++;
        if (*p == '\0' && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 &&
            sec <= 60 && h >= 0 && mi >= 0 && sec >= 0) {
            memset(&tm, 0, sizeof(tm));
            tm.tm_year = y - 1900;
            tm.tm_mon = mo - 1;
            tm.tm_mday = d;
            tm.tm_hour = h;
            tm.tm_min = mi;
            tm.tm_sec = sec;
            *out = (double)timegm(&tm); /* UTC */
            return 0;
        }
    } else {
        v = strtod(text, &end);
        if (end != text && *end == '\0' && v >= 0 && v < 1e11 && isdigit((unsigned char)*text)) {
            *out = v;
            return 0;
        }
    }
    return dip_err_set(err, DIP_EINVAL,
                       "'%.40s' is not a time (use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or unix "
                       "seconds, UTC)",
                       text);
}

/* Numbers with their small fractions kept (costs of a few seconds are 1e-5), unlike
 * dip__sbuf_json_num's three decimals; %.15g round-trips what the store holds closely enough
 * that the same figure always prints the same. */
static void num(struct dip__sbuf *b, double v)
{
    if (!isfinite(v))
        dip__sbuf_str(b, "null");
    else
        dip__sbuf_printf(b, "%.15g", v);
}

/* The cost of one row under `p`: CPU hours and GB-months (10^9 bytes for 30 days). */
static void cost_of(const struct dip_store_usage *u, const struct dip_usage_prices *p, double *cpu,
                    double *storage)
{
    *cpu = u->cpu_s / 3600.0 * p->cpu_hour;
    *storage = u->stored_byte_s / 1e9 / MONTH_S * p->gb_month;
}

static void row_json(struct dip__sbuf *b, const struct dip_store_usage *u,
                     const struct dip_usage_prices *p)
{
    dip__sbuf_str(b, "{\"user\":");
    dip__sbuf_json_str(b, u->user);
    dip__sbuf_printf(b,
                     ",\"jobs\":%llu,\"items\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                     "\"cpu_seconds\":",
                     (unsigned long long)u->jobs, (unsigned long long)u->items,
                     (unsigned long long)u->bytes_in, (unsigned long long)u->bytes_out);
    num(b, u->cpu_s);
    dip__sbuf_printf(b,
                     ",\"bytes_stored\":%llu,\"gb_months\":", (unsigned long long)u->bytes_stored);
    num(b, u->stored_byte_s / 1e9 / MONTH_S);
    dip__sbuf_str(b, ",\"cost\":");
    if (p != NULL && (p->cpu_hour > 0 || p->gb_month > 0)) {
        double cpu, storage;
        cost_of(u, p, &cpu, &storage);
        dip__sbuf_str(b, "{\"cpu\":");
        num(b, cpu);
        dip__sbuf_str(b, ",\"storage\":");
        num(b, storage);
        dip__sbuf_str(b, ",\"total\":");
        num(b, cpu + storage);
        dip__sbuf_str(b, "}");
    } else {
        dip__sbuf_str(b, "null");
    }
    dip__sbuf_str(b, "}");
}

int dip__usage_json(dip_store *st, const char *owner, double since, double until,
                    const struct dip_usage_prices *p, struct dip__sbuf *b, struct dip_err *err)
{
    struct dip_store_usage *rows = NULL, none;
    size_t n = 0;
    int rc;

    rc = dip_store_usage_query(st, owner, since, until, &rows, &n, err);
    if (rc != 0)
        return rc;
    dip__sbuf_str(b, "{\"since\":");
    num(b, since);
    dip__sbuf_str(b, ",\"until\":");
    num(b, until);
    dip__sbuf_str(b, ",\"prices\":");
    if (p != NULL && (p->cpu_hour > 0 || p->gb_month > 0)) {
        dip__sbuf_str(b, "{\"cpu_hour\":");
        num(b, p->cpu_hour);
        dip__sbuf_str(b, ",\"gb_month\":");
        num(b, p->gb_month);
        dip__sbuf_str(b, "}");
    } else {
        dip__sbuf_str(b, "null");
    }
    dip__sbuf_str(b, ",\"users\":[");
    /* One user asked for (their own figures) is listed even with nothing used yet. */
    if (n == 0 && owner != NULL) {
        memset(&none, 0, sizeof(none));
        snprintf(none.user, sizeof(none.user), "%s", owner);
        row_json(b, &none, p);
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            dip__sbuf_str(b, ",");
        row_json(b, &rows[i], p);
    }
    dip__sbuf_str(b, "]}");
    dip_free(rows);
    return b->failed;
}

static void human_bytes(uint64_t v, char *out, size_t len)
{
    if (v >= 1ull << 30)
        snprintf(out, len, "%.2f GiB", (double)v / (double)(1ull << 30));
    else if (v >= 1ull << 20)
        snprintf(out, len, "%.2f MiB", (double)v / (double)(1ull << 20));
    else if (v >= 10ull << 10)
        snprintf(out, len, "%.1f KiB", (double)v / 1024.0);
    else
        snprintf(out, len, "%llu B", (unsigned long long)v);
}

int dip_usage_report(dip_store *st, const char *owner, double since, double until,
                     const struct dip_usage_prices *p, int json, char **out, struct dip_err *err)
{
    struct dip__sbuf b;
    struct dip_store_usage *rows = NULL;
    size_t n = 0;
    int rc, priced = p != NULL && (p->cpu_hour > 0 || p->gb_month > 0);

    *out = NULL;
    dip__sbuf_init(&b, DIP__JSON_CAP);
    if (json) {
        rc = dip__usage_json(st, owner, since, until, p, &b, err);
        if (rc == 0)
            rc = dip__sbuf_str(&b, "\n");
        goto out;
    }
    rc = dip_store_usage_query(st, owner, since, until, &rows, &n, err);
    if (rc != 0)
        goto out;
    dip__sbuf_printf(&b, "%-20s %6s %7s %12s %12s %10s %12s %10s%s\n", "user", "jobs", "items",
                     "bytes in", "bytes out", "cpu s", "stored now", "GB-months",
                     priced ? "       cost" : "");
    for (size_t i = 0; i < n; i++) {
        const struct dip_store_usage *u = &rows[i];
        char bi[32], bo[32], bs[32];
        human_bytes(u->bytes_in, bi, sizeof(bi));
        human_bytes(u->bytes_out, bo, sizeof(bo));
        human_bytes(u->bytes_stored, bs, sizeof(bs));
        dip__sbuf_printf(&b, "%-20s %6llu %7llu %12s %12s %10.3f %12s %10.3g", u->user,
                         (unsigned long long)u->jobs, (unsigned long long)u->items, bi, bo,
                         u->cpu_s, bs, u->stored_byte_s / 1e9 / MONTH_S);
        if (priced) {
            double cpu, storage;
            cost_of(u, p, &cpu, &storage);
            dip__sbuf_printf(&b, " %10.3g", cpu + storage);
        }
        dip__sbuf_str(&b, "\n");
    }
    if (n == 0)
        dip__sbuf_str(&b, "(no usage in this period)\n");
    rc = b.failed;
out:
    dip_free(rows);
    if (rc == 0 && b.data != NULL) {
        *out = b.data; /* the caller frees it */
        b.data = NULL;
    }
    dip__sbuf_free(&b);
    return rc;
}

/* ---- /metrics ---- */

#define METRIC_USERS 10 /* users with their own series; the rest are summed into "(other)" */

int dip__usage_metrics(dip_service *svc, struct dip__sbuf *b)
{
    static const struct {
        const char *name, *help, *type;
    } m[] = {
        {"dip_user_jobs_total", "Jobs submitted, per user.", "counter"},
        {"dip_user_items_total", "Results made (or served from the cache), per user.", "counter"},
        {"dip_user_bytes_in_total", "Image bytes uploaded in jobs, per user.", "counter"},
        {"dip_user_bytes_out_total", "Result bytes made, per user.", "counter"},
        {"dip_user_cpu_seconds_total", "Thread CPU seconds spent on the user's items.", "counter"},
        {"dip_user_bytes_stored", "Bytes of inputs and results the user's jobs hold now.", "gauge"},
    };
    struct dip_store_usage *rows = NULL, other;
    size_t n = 0, shown;

    if (dip_store_usage_query(svc->store, NULL, -1, 0, &rows, &n, NULL) != 0)
        return 0; /* the rest of /metrics still answers */
    shown = DIP_MIN(n, (size_t)METRIC_USERS);
    memset(&other, 0, sizeof(other));
    snprintf(other.user, sizeof(other.user), "(other)");
    for (size_t i = shown; i < n; i++) {
        other.jobs += rows[i].jobs;
        other.items += rows[i].items;
        other.bytes_in += rows[i].bytes_in;
        other.bytes_out += rows[i].bytes_out;
        other.cpu_s += rows[i].cpu_s;
        other.bytes_stored += rows[i].bytes_stored;
    }
    for (size_t k = 0; k < DIP_COUNTOF(m); k++) {
        dip__sbuf_printf(b,
                         "# HELP %s %s Top %d users by CPU; the rest as user=\"(other)\".\n"
                         "# TYPE %s %s\n",
                         m[k].name, m[k].help, METRIC_USERS, m[k].name, m[k].type);
        for (size_t i = 0; i <= shown; i++) {
            const struct dip_store_usage *u = i < shown ? &rows[i] : &other;
            if (i == shown && n <= shown)
                break;
            dip__sbuf_printf(b, "%s{user=\"%s\"} ", m[k].name, u->user);
            switch (k) {
            case 0:
                dip__sbuf_printf(b, "%llu\n", (unsigned long long)u->jobs);
                break;
            case 1:
                dip__sbuf_printf(b, "%llu\n", (unsigned long long)u->items);
                break;
            case 2:
                dip__sbuf_printf(b, "%llu\n", (unsigned long long)u->bytes_in);
                break;
            case 3:
                dip__sbuf_printf(b, "%llu\n", (unsigned long long)u->bytes_out);
                break;
            case 4:
                dip__sbuf_printf(b, "%.6f\n", u->cpu_s);
                break;
            default:
                dip__sbuf_printf(b, "%llu\n", (unsigned long long)u->bytes_stored);
                break;
            }
        }
    }
    dip_free(rows);
    return b->failed;
}
