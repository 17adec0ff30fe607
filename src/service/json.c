/* SPDX-License-Identifier: MIT */
/* The JSON (and Prometheus text) forms of the service's state: a job with its items and progress
 * (percent and ETA from finished items' pixels and, while it runs, the executor's live tiles), the
 * op table, the limits a client checks before uploading, and /metrics. Built in capped buffers;
 * the HTTP layer only sends them. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/internal.h"
#include "dip/codec.h"
#include "dip/op.h"
#include "service/internal.h"

void dip_service_progress(dip_service *svc, const struct dip_store_job *job,
                          struct dip_job_progress *pr)
{
    uint64_t px_final = 0;
    struct dip_progress live;
    double started = 0;
    uint64_t px_skip = 0;
    int running;

    memset(pr, 0, sizeof(*pr));
    pr->eta_s = -1;
    for (size_t i = 0; job->items != NULL && i < job->n_items; i++) {
        const struct dip_store_item *it = &job->items[i];
        uint64_t px = (uint64_t)it->width * (uint64_t)it->height;
        pr->pixels_total += px;
        /* One definition of progress: images that ran (done or failed) count, cancelled ones
         * never ran and do not; so a cancelled job keeps the figure it reached. */
        if (dip_job_state_is(it->state, DIP_JOB_CANCELLED)) {
            pr->items_cancelled++;
        } else if (dip_job_state_final(it->state)) {
            pr->items_done++;
            px_final += px;
        }
        if (dip_job_state_is(it->state, DIP_JOB_FAILED))
            pr->items_failed++;
    }
    pr->items_total = job->n_items;
    pr->in_flight = dip__runner_in_flight(svc, job->id);
    pr->tasks_total = job->n_items;
    pr->tasks_done = pr->items_done;
    running = dip__runner_live(svc, job->id, &live, &started, &px_skip) &&
              dip_job_state_is(job->state, DIP_JOB_RUNNING);
    if (running) {
        /* Pixels of images in flight count as their tiles finish. */
        uint64_t px_live = px_final + live.pixels_done;
        if (live.tasks_total > live.tasks_done) {
            pr->tasks_total += live.tasks_total;
            pr->tasks_done += live.tasks_done;
        }
        if (px_live > px_final && px_live <= pr->pixels_total)
            px_final = px_live;
    }
    pr->pixels_done = px_final;
    if (pr->pixels_total > 0)
        pr->percent = 100.0 * (double)px_final / (double)pr->pixels_total;
    else if (pr->items_total > 0)
        pr->percent = 100.0 * (double)pr->items_done / (double)pr->items_total;
    else
        pr->percent = dip_job_state_final(job->state) ? 100.0 : 0.0;
    if (running && pr->tasks_total > 0) {
        double by_tasks = 100.0 * (double)pr->tasks_done / (double)pr->tasks_total;
        if (by_tasks > pr->percent)
            pr->percent = by_tasks > 99.9 ? 99.9 : by_tasks;
    }
    if (dip_job_state_is(job->state, DIP_JOB_DONE))
        pr->percent = 100.0;
    if (running && pr->percent < 100 && pr->pixels_total > px_skip) {
        /* Time left from the work done per second since the job (re)started (pixels, tiles of
         * large images included): images finished before a restart and cached ones took no
         * time here and do not count. Null ("estimating") until that rate rests on a few
         * seconds and some work. */
        double el = dip__now() - started;
        double done = pr->percent / 100.0 * (double)pr->pixels_total;
        double work = done - (double)px_skip;
        if (el >= DIP__ETA_MIN_S && work > 0 && work * 50 >= (double)(pr->pixels_total - px_skip))
            pr->eta_s = el * ((double)pr->pixels_total - done) / work;
    }
}

int dip__job_json(dip_service *svc, const struct dip_store_job *job, int items, struct dip__sbuf *b)
{
    return dip__job_json_page(svc, job, items, 0, SIZE_MAX, b);
}

int dip__job_json_page(dip_service *svc, const struct dip_store_job *job, int items, size_t offset,
                       size_t limit, struct dip__sbuf *b)
{
    size_t end = 0, n_run = 0;
    struct dip_job_progress pr;
    char(*names)[300] = NULL;
    struct dip__run_item *run = NULL;

    dip_service_progress(svc, job, &pr);

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
    dip__sbuf_str(b, ",\"name\":");
    dip__sbuf_json_str(b, job->name[0] ? job->name : NULL);
    if (items && job->items != NULL) {
        names = dip__result_names(job);
        run = dip_calloc((size_t)DIP_MAX(svc->batch, 1), sizeof(*run));
        if (names == NULL || run == NULL) {
            dip_free(names);
            dip_free(run);
            return b->failed = DIP_ENOMEM;
        }
        n_run = dip__runner_running(svc, job->id, run, (size_t)DIP_MAX(svc->batch, 1));
        if (n_run > (size_t)DIP_MAX(svc->batch, 1))
            n_run = (size_t)DIP_MAX(svc->batch, 1);
        /* A page of the items: [offset, offset + limit). */
        if (offset > job->n_items)
            offset = job->n_items;
        end = limit < job->n_items - offset ? offset + limit : job->n_items;
        dip__sbuf_printf(b, ",\"items_offset\":%zu,\"items_next\":", offset);
        if (end < job->n_items)
            dip__sbuf_printf(b, "%zu", end);
        else
            dip__sbuf_str(b, "null");
        dip__sbuf_str(b, ",\"items\":[");
        for (size_t i = offset; i < end; i++) {
            const struct dip_store_item *it = &job->items[i];
            int is_done = dip_job_state_is(it->state, DIP_JOB_DONE) && it->out_sha[0] != '\0';
            const char *state = it->state;
            const struct dip__run_item *r = NULL;
            /* The store calls every unfinished item of a started job running; the API says
             * running only of those the executor has started, the others are queued. */
            if (dip_job_state_is(state, DIP_JOB_QUEUED) ||
                dip_job_state_is(state, DIP_JOB_RUNNING)) {
                for (size_t k = 0; k < n_run && r == NULL; k++)
                    if (run[k].item == i)
                        r = &run[k];
                state = dip_job_state_name(r != NULL ? DIP_JOB_RUNNING : DIP_JOB_QUEUED);
            }
            dip__sbuf_printf(b, "%s{\"index\":%d,\"name\":", i > offset ? "," : "", it->index);
            dip__sbuf_json_str(b, it->name);
            dip__sbuf_str(b, ",\"state\":");
            dip__sbuf_json_str(b, state);
            /* Its own progress while it runs, where the executor reports its tiles. */
            if (r != NULL && r->tiles_total > 0)
                dip__sbuf_printf(b, ",\"percent\":%.1f",
                                 100.0 * (double)DIP_MIN(r->tiles_done, r->tiles_total) /
                                     (double)r->tiles_total);
            else
                dip__sbuf_str(b, ",\"percent\":null");
            dip__sbuf_str(b, ",\"error\":");
            dip__sbuf_json_str(b, it->error[0] ? it->error : NULL);
            dip__sbuf_printf(b, ",\"width\":%d,\"height\":%d", it->width, it->height);
            if (is_done) {
                dip__sbuf_printf(b,
                                 ",\"out_width\":%d,\"out_height\":%d,\"bytes_in\":%llu,"
                                 "\"bytes_out\":%llu,\"cached\":%s,\"out_format\":",
                                 it->out_width, it->out_height, (unsigned long long)it->bytes_in,
                                 (unsigned long long)it->bytes_out, it->cached ? "true" : "false");
                dip__sbuf_json_str(b, it->out_format);
                dip__sbuf_str(b, ",\"result_name\":");
                dip__sbuf_json_str(b, names[i]);
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
                     job->n_items, (unsigned long long)pr.items_done,
                     (unsigned long long)pr.items_failed, (unsigned long long)pr.tasks_total,
                     (unsigned long long)pr.tasks_done, (unsigned long long)pr.pixels_total,
                     (unsigned long long)pr.pixels_done);
    dip__sbuf_printf(b, "%.1f,\"items_cancelled\":%llu,\"in_flight\":%s,\"eta_s\":", pr.percent,
                     (unsigned long long)pr.items_cancelled, pr.in_flight ? "true" : "false");
    if (pr.eta_s >= 0)
        dip__sbuf_printf(b, "%.1f}}", pr.eta_s);
    else
        dip__sbuf_str(b, "null}}");
    dip_free(names);
    dip_free(run);
    return b->failed;
}

int dip__ops_json(struct dip__sbuf *b)
{
    char *json;
    size_t len;
    int rc = dip_op_table_json(&json, &len); /* the same bytes as `dip ops --json` */

    if (rc)
        return b->failed ? b->failed : (b->failed = rc);
    dip__sbuf_add(b, json, len);
    dip_free(json);
    return b->failed;
}

int dip__metrics_text(dip_service *s, struct dip__sbuf *b0)
{
    struct dip_worker_stat ws[256];
    size_t nw = dip_executor_workers(s->ex, ws, DIP_COUNTOF(ws));
    uint64_t counts[DIP_JOB_NSTATES] = {0}, cum = 0, alive = 0;
    struct dip__sbuf *bp = b0;

    if (nw > DIP_COUNTOF(ws))
        nw = DIP_COUNTOF(ws);
    for (size_t i = 0; i < nw; i++)
        alive += ws[i].alive ? 1 : 0;
    dip_store_job_counts(s->store, counts, NULL);
    dip__sbuf_str(bp, "# HELP dip_jobs Jobs in the store by state.\n# TYPE dip_jobs gauge\n");
    for (int i = 0; i < DIP_JOB_NSTATES; i++)
        dip__sbuf_printf(bp, "dip_jobs{state=\"%s\"} %llu\n",
                         dip_job_state_name((enum dip_job_state)i), (unsigned long long)counts[i]);
    pthread_mutex_lock(&s->lock);
    dip__sbuf_printf(bp,
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
    dip__sbuf_printf(
        bp,
        "# HELP dip_blob_bytes Bytes of stored blobs (inputs and results), at the last "
        "retention pass.\n# TYPE dip_blob_bytes gauge\ndip_blob_bytes %llu\n"
        "# HELP dip_blob_files Stored blob files, at the last retention pass.\n"
        "# TYPE dip_blob_files gauge\ndip_blob_files %llu\n"
        "# HELP dip_jobs_deleted_total Jobs deleted (DELETE or --keep) since start.\n"
        "# TYPE dip_jobs_deleted_total counter\ndip_jobs_deleted_total %llu\n"
        "# HELP dip_freed_bytes_total Blob bytes freed since start.\n"
        "# TYPE dip_freed_bytes_total counter\ndip_freed_bytes_total %llu\n",
        (unsigned long long)s->disk_bytes, (unsigned long long)s->disk_files,
        (unsigned long long)s->m_deleted_jobs, (unsigned long long)s->m_freed_bytes);
    dip__sbuf_str(bp, "# HELP dip_task_seconds Time to compute one item (decode, run, encode).\n"
                      "# TYPE dip_task_seconds histogram\n");
    for (int i = 0; i < DIP__LAT_BUCKETS; i++) {
        cum += s->lat_count[i];
        dip__sbuf_printf(bp, "dip_task_seconds_bucket{le=\"%g\"} %llu\n", dip__lat_bounds[i],
                         (unsigned long long)cum);
    }
    cum += s->lat_count[DIP__LAT_BUCKETS];
    dip__sbuf_printf(bp, "dip_task_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    dip__sbuf_printf(bp, "dip_task_seconds_sum %.6f\ndip_task_seconds_count %llu\n", s->lat_sum,
                     (unsigned long long)s->lat_n);
    pthread_mutex_unlock(&s->lock);
    {
        /* The database and its WAL, at the moment of the scrape. */
        uint64_t db = 0;
        char path[4200];
        struct stat sb;
        static const char *const files[] = {"dip.db", "dip.db-wal"};
        for (size_t i = 0; i < DIP_COUNTOF(files); i++) {
            snprintf(path, sizeof(path), "%s/%s", s->data_dir, files[i]);
            if (stat(path, &sb) == 0)
                db += (uint64_t)sb.st_size;
        }
        dip__sbuf_printf(bp,
                         "# HELP dip_db_bytes Bytes of the job database and its WAL.\n"
                         "# TYPE dip_db_bytes gauge\ndip_db_bytes %llu\n",
                         (unsigned long long)db);
    }
    dip__sbuf_printf(bp,
                     "# HELP dip_workers Workers of the executor by status.\n"
                     "# TYPE dip_workers gauge\ndip_workers{status=\"alive\"} %llu\n"
                     "dip_workers{status=\"lost\"} %llu\n",
                     (unsigned long long)alive, (unsigned long long)(nw - alive));
    dip__usage_metrics(s, bp);
    return bp->failed;
}

int dip__limits_json(dip_service *svc, struct dip__sbuf *b)
{
    const struct dip_service_opts *o = &svc->o;

    /* Every per-image limit of DIP_LIMITS_MAP, then the service's own. */
    dip__sbuf_str(b, "{");
    for (int i = 0; i < DIP_LIMIT_COUNT; i++)
        dip__sbuf_printf(b, "\"%s\":%lld,", dip_limit_info(i)->field,
                         dip_limits_get(&o->limits, i));
    dip__sbuf_printf(b, "\"max_images_per_job\":%d,\"max_active_per_user\":%d}",
                     o->max_images_per_job, o->max_active_per_user);
    return b->failed;
}
