/* SPDX-License-Identifier: MIT */
/* Small read-only resources: /healthz, /metrics, the op table, the limits a client checks before
 * uploading, who the caller is, and the cluster's workers. The bodies come from src/service. */
#include <string.h>

#include "core/internal.h"
#include "server/http.h"

enum MHD_Result dip__h_health(struct ctx *c)
{
    struct dip__sbuf b;

    dip__sbuf_init(&b, 256);
    dip__sbuf_str(&b, "{\"status\":\"ok\"}");
    return dip__send_json(c, 200, &b);
}

/* Readiness (Kubernetes' readinessProbe): the store answers, the executor takes work and the
 * data disk is above its floor; 503 with the reason otherwise (and while shutting down). */
enum MHD_Result dip__h_ready(struct ctx *c)
{
    struct dip__sbuf b;
    char why[256];

    if (dip_service_ready(c->svc, why, sizeof(why)) != 0)
        return dip__send_error(c, 503, "EBUSY", "not ready: %s", why);
    dip__sbuf_init(&b, 1024);
    dip__sbuf_str(&b, "{\"status\":\"ready\"}");
    return dip__send_json(c, 200, &b);
}

enum MHD_Result dip__h_whoami(struct ctx *c)
{
    struct dip__sbuf b;
    uint64_t ntok = 0;

    dip_store_token_count(dip_service_store(c->svc), &ntok, NULL);
    dip__sbuf_init(&b, 1024);
    dip__sbuf_str(&b, "{\"name\":");
    dip__sbuf_json_str(&b, c->user);
    dip__sbuf_printf(&b, ",\"admin\":%s,\"auth_required\":%s}", c->admin ? "true" : "false",
                     (!c->s->loopback || ntok > 0) ? "true" : "false");
    return dip__send_json(c, 200, &b);
}

enum MHD_Result dip__h_ops(struct ctx *c)
{
    struct dip__sbuf b;

    dip__sbuf_init(&b, DIP__JSON_CAP);
    dip__ops_json(&b);
    return dip__send_json(c, 200, &b);
}

enum MHD_Result dip__h_limits(struct ctx *c)
{
    struct dip__sbuf b;

    dip__sbuf_init(&b, 4096);
    dip__limits_json(c->svc, &b);
    return dip__send_json(c, 200, &b);
}

enum MHD_Result dip__h_metrics(struct ctx *c)
{
    struct dip__sbuf b;

    dip__sbuf_init(&b, DIP__JSON_CAP);
    dip__metrics_text(c->svc, &b);
    return dip__send_sbuf(c, 200, "text/plain; version=0.0.4", &b);
}

enum MHD_Result dip__h_cluster(struct ctx *c)
{
    dip_executor *ex = dip_service_executor(c->svc);
    struct dip_worker_stat ws[256];
    size_t n = dip_executor_workers(ex, ws, DIP_COUNTOF(ws));
    struct dip__sbuf b;

    if (n > DIP_COUNTOF(ws))
        n = DIP_COUNTOF(ws);
    dip__sbuf_init(&b, DIP__JSON_CAP);
    dip__sbuf_str(&b, "{\"executor\":");
    dip__sbuf_json_str(&b, strcmp(ex->vt->name, "mpi") == 0 ? "mpi" : "local");
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
    return dip__send_json(c, 200, &b);
}
