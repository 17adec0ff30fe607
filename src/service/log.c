/* SPDX-License-Identifier: MIT */
/* Operator log lines on stderr: one per request (src/server) and one per job event (runner.c,
 * submit.c), as `key=value` text or one JSON object a line (--log-format json). One fputs per
 * line, so lines from several threads do not interleave. Never a token: callers pass the user's
 * name only. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service/internal.h"

/* Appends s, quoted for JSON (or for text when it holds a space, a quote or '='). */
static void put_str(struct dip__sbuf *b, const char *s, int json)
{
    if (json) {
        dip__sbuf_json_str(b, s);
        return;
    }
    if (s[0] != '\0' && strpbrk(s, " \"=\t\n\r") == NULL) {
        for (const char *p = s; *p; p++)
            dip__sbuf_printf(b, "%c", (unsigned char)*p < 0x20 ? '?' : *p);
        return;
    }
    dip__sbuf_str(b, "\"");
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            dip__sbuf_printf(b, "\\%c", ch);
        else
            dip__sbuf_printf(b, "%c", ch < 0x20 ? '?' : ch);
    }
    dip__sbuf_str(b, "\"");
}

void dip__log_event(dip_service *svc, int request, const char *event, ...)
{
    int json = svc->o.log_json;
    struct dip__sbuf b;
    struct timespec ts;
    struct tm tm;
    char when[64];
    const char *k, *v;
    va_list ap;

    if (svc->o.quiet || (request && svc->o.log_level < 1))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    dip__sbuf_init(&b, 1 << 16);
    if (json)
        dip__sbuf_printf(&b, "{\"time\":\"%s\",\"event\":", when);
    else
        dip__sbuf_printf(&b, "%s event=", when);
    put_str(&b, event, json);
    va_start(ap, event);
    while ((k = va_arg(ap, const char *)) != NULL) {
        int num = k[0] == '#'; /* a number: unquoted in JSON */
        v = va_arg(ap, const char *);
        if (num)
            k++;
        dip__sbuf_printf(&b, json ? ",\"%s\":" : " %s=", k);
        if (v == NULL)
            dip__sbuf_str(&b, json ? "null" : "-");
        else if (num)
            dip__sbuf_str(&b, v);
        else
            put_str(&b, v, json);
    }
    va_end(ap);
    dip__sbuf_str(&b, json ? "}\n" : "\n");
    if (!b.failed && b.data != NULL)
        fputs(b.data, stderr);
    dip__sbuf_free(&b);
}
