/* SPDX-License-Identifier: MIT */
/* Job intake: everything that decides whether a job is accepted, before it is recorded. Options
 * first (format, quality, pipeline and its parameters: the CLI's messages), then every image from
 * its header (limits, and every step's output size), then the quotas, the inputs' blobs and the
 * job row with the quotas checked again inside that transaction. All or nothing: a refused job
 * leaves no row. Storage failures are logged with their detail and answered without a path. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "dip/codec.h"
#include "dip/op.h"
#include "dip/pipeline.h"
#include "dip/plan.h"
#include "service/internal.h"

/* A safe file name from a client's (the last path component, printable ASCII, no quotes,
 * backslashes, semicolons or percent signs, at most 200 bytes); `fallback` when nothing is left. */
void dip__sanitize_name(const char *in, const char *fallback, char *out, size_t out_len)
{
    const char *base = in ? in : "";
    size_t n = 0;

    for (const char *q = base; *q != '\0'; q++)
        if (*q == '/' || *q == '\\')
            base = q + 1;
    for (; *base != '\0' && n + 1 < out_len && n < 200; base++) {
        unsigned char c = (unsigned char)*base;
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '/' || c == ';' || c == '%')
            out[n++] = '_';
        else
            out[n++] = (char)c;
    }
    out[n] = '\0';
    if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        snprintf(out, out_len, "%s", fallback);
}

/* Storage errors reach the client without the server's paths; the log keeps the detail. */
static int storage_error(dip_service *svc, int rc, struct dip_err *err, const char *what)
{
    dip__log(svc, "%s: %s", what, dip_err_text(err, rc));
    if (rc == DIP_ENOSPC)
        return dip_err_set(err, DIP_ENOSPC, "%s: the server's storage is full; retry later", what);
    if (rc == DIP_EIO)
        return dip_err_set(err, DIP_EIO, "%s: the server's storage failed", what);
    return rc;
}

int dip_service_check_options(dip_service *svc, const char *pipeline, const char *format,
                              const char *quality, char **canon, struct dip_err *err)
{
    dip_pipeline *p = NULL;
    dip_format f;
    int q, rc;

    (void)svc;
    if (canon)
        *canon = NULL;
    if (dip__parse_format(format, &f) != 0)
        return dip_err_set(
            err, DIP_EINVAL,
            "format '%.32s' is not one of png, jpeg, webp, tiff, bmp, pnm (or empty)", format);
    if (dip__parse_quality(quality, &q) != 0)
        return dip_err_set(err, DIP_EINVAL, "quality '%.32s' is not an integer in 1..100", quality);
    rc = dip_pipeline_parse(pipeline ? pipeline : "", &p, err);
    if (rc != 0)
        return rc;
    /* Parameters that no input can make valid (an even median size) are refused now, before any
     * image is read: an op's prepare() must accept at least one channel count. */
    for (size_t i = 0; rc == 0 && i < dip_pipeline_length(p); i++) {
        const struct dip_op *op = dip_pipeline_op(p, i);
        struct dip_err first = {0};
        int ok = 0;
        if (op->prepare == NULL)
            continue;
        for (int ch = 1; ch <= 4 && !ok; ch++) {
            void *args = dip_malloc(op->args_size ? op->args_size : 1);
            struct dip_err e = {0};
            int prc;
            if (args == NULL) {
                rc = DIP_ENOMEM;
                break;
            }
            memcpy(args, dip_pipeline_args(p, i), op->args_size);
            prc = op->prepare(args, ch, &e);
            dip_free(args);
            if (prc == 0)
                ok = 1;
            else if (first.code == 0)
                first = e, first.code = prc;
        }
        if (rc == 0 && !ok)
            rc = dip_err_set(err, first.code, "%s", dip_err_text(&first, first.code));
    }
    if (rc == 0 && canon) {
        char small[1];
        size_t len = dip_pipeline_format(p, 1, small, sizeof(small));
        *canon = dip_malloc(len + 1);
        if (*canon == NULL)
            rc = DIP_ENOMEM;
        else
            dip_pipeline_format(p, 1, *canon, len + 1);
    }
    dip_pipeline_free(p);
    return rc;
}

/* A job's name is shown as text on the page and in the API: any UTF-8 but control characters. */
static int check_name(const char *name, struct dip_err *err)
{
    size_t n = name ? strlen(name) : 0;

    if (n > 100)
        return dip_err_set(err, DIP_EINVAL, "name is %zu bytes long (at most 100)", n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return dip_err_set(err, DIP_EINVAL, "name contains a control character");
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

int dip_service_submit(dip_service *svc, const struct dip_submit *req, char id[DIP_STORE_ID_LEN],
                       struct dip_err *err)
{
    const struct dip_service_opts *o = &svc->o;
    struct dip_store_job job;
    struct dip_job_spec spec;
    dip_pipeline *p = NULL;
    char *canon = NULL;
    dip_format format;
    uint64_t active = 0, bytes = 0;
    struct timespec ts;
    int rc, locked = 0;
    double cpu0 = dip_thread_cpu_seconds(); /* checking and storing the upload is usage too */

    memset(&job, 0, sizeof(job));
    id[0] = '\0';
    rc = dip_service_check_options(svc, req->pipeline, req->format, req->quality, &canon, err);
    if (rc != 0)
        goto out;
    (void)dip__parse_format(req->format, &format);
    (void)dip__parse_quality(req->quality, &job.quality);
    rc = check_name(req->name, err);
    if (rc != 0)
        goto out;
    snprintf(job.name, sizeof(job.name), "%s", req->name ? req->name : "");
    if (req->n_files == 0) {
        rc = dip_err_set(err, DIP_EINVAL, "no file part (send images as form field 'file')");
        goto out;
    }
    if (req->n_files > (size_t)o->max_images_per_job) {
        rc = dip_err_set(err, DIP_ELIMIT, "job has %zu images > limit %d", req->n_files,
                         o->max_images_per_job);
        goto out;
    }
    rc = dip_pipeline_parse(req->pipeline ? req->pipeline : "", &p, err);
    if (rc != 0)
        goto out;
    job.items = dip_calloc(req->n_files, sizeof(*job.items));
    if (job.items == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    dip_job_spec_default(&spec);
    spec.limits = o->limits;
    /* Every image from its header, and what the pipeline makes of it, before anything is kept. */
    for (size_t i = 0; i < req->n_files; i++) {
        const struct dip_submit_file *f = &req->files[i];
        struct dip_store_item *it = &job.items[i];
        struct dip_image_info info;
        char fallback[32];

        it->index = (int)i;
        snprintf(fallback, sizeof(fallback), "image-%zu", i);
        dip__sanitize_name(f->name, fallback, it->name, sizeof(it->name));
        memset(&info, 0, sizeof(info));
        rc = dip_codec_probe(f->data, f->len, &o->limits, &info, err);
        if (rc == 0)
            rc = dip_check_output(&spec, p, f->data, f->len, err);
        if (rc != 0) {
            dip_err_prefix(err, "file '%s': ", it->name);
            goto out;
        }
        /* The sides as processed (and as a browser shows the file): turned by EXIF 5..8. */
        it->width = spec.decode.autorotate && info.orientation >= 5 ? info.height : info.width;
        it->height = spec.decode.autorotate && info.orientation >= 5 ? info.width : info.height;
        it->bytes_in = f->len;
        bytes += f->len;
    }
    /* A cheap look at the quotas before writing blobs; the binding check is in the
     * transaction that records the job. */
    rc = dip_store_job_active(svc->store, req->owner, &active, err);
    if (rc == 0 && active >= (uint64_t)o->max_active_per_user) {
        rc = dip_err_set(err, DIP_EBUSY, "user %s has %llu unfinished jobs (limit %d)", req->owner,
                         (unsigned long long)active, o->max_active_per_user);
        goto out;
    }
    /* From the first blob until the job's rows refer to them, retention must not take them. */
    pthread_rwlock_rdlock(&svc->blobs);
    locked = 1;
    for (size_t i = 0; rc == 0 && i < req->n_files; i++)
        rc = dip_store_blob_put(svc->store, req->files[i].data, req->files[i].len, job.items[i].sha,
                                err);
    if (rc != 0) {
        rc = storage_error(svc, rc, err, "storing the upload");
        goto out;
    }
    if (random_id(job.id) != 0) {
        rc = dip_err_set(err, DIP_EIO, "no randomness for a job id");
        goto out;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(job.owner, sizeof(job.owner), "%s", req->owner);
    snprintf(job.state, sizeof(job.state), "%s", dip_job_state_name(DIP_JOB_QUEUED));
    job.pipeline = (char *)(uintptr_t)(req->pipeline ? req->pipeline : "");
    job.canon = canon;
    snprintf(job.format, sizeof(job.format), "%s",
             format == DIP_FORMAT_UNKNOWN ? "" : dip_format_name(format));
    job.created = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    job.n_items = req->n_files;
    job.cpu_s = dip_thread_cpu_seconds() - cpu0;
    rc = dip_store_job_create_capped(svc->store, &job, (uint64_t)o->max_active_per_user,
                                     (uint64_t)o->max_queue, err);
    pthread_rwlock_unlock(&svc->blobs);
    locked = 0;
    if (rc != 0) {
        if (rc != DIP_EBUSY)
            rc = storage_error(svc, rc, err, "recording the job");
        goto out;
    }
    snprintf(id, DIP_STORE_ID_LEN, "%s", job.id);
    {
        char items[32], nbytes[32];
        snprintf(items, sizeof(items), "%zu", req->n_files);
        snprintf(nbytes, sizeof(nbytes), "%llu", (unsigned long long)bytes);
        dip__log_event(svc, 0, "job_created", "job", job.id, "user", req->owner, "#items", items,
                       "#bytes_in", nbytes, "pipeline", req->pipeline ? req->pipeline : "", NULL);
    }
    dip_service_count_in(svc, bytes);
    pthread_mutex_lock(&svc->lock);
    dip__service_bump(svc);
    pthread_mutex_unlock(&svc->lock);
    dip__runner_wake(svc);
out:
    if (locked)
        pthread_rwlock_unlock(&svc->blobs);
    dip_free(job.items);
    dip_free(canon);
    dip_pipeline_free(p);
    return rc;
}

/* ---- Retry ---- */

int dip_service_retry(dip_service *svc, const char *id, const char *user, int admin,
                      char new_id[DIP_STORE_ID_LEN], struct dip_err *err)
{
    const struct dip_service_opts *o = &svc->o;
    struct dip_store_job *old = NULL;
    struct dip_store_job job;
    struct dip_job_progress prog;
    char quality[16], *canon = NULL;
    struct timespec ts;
    size_t n = 0;
    int rc;

    memset(&job, 0, sizeof(job));
    new_id[0] = '\0';
    /* Under the blob lock the old job's inputs cannot be deleted (deleting takes it for
     * writing): read the job inside it, and it still exists when the new one refers to them. */
    pthread_rwlock_rdlock(&svc->blobs);
    rc = dip_service_job_get(svc, id, user, admin, 1, &old, err);
    if (rc != 0)
        goto out;
    if (!dip_job_state_final(old->state)) {
        rc = dip_err_set(err, DIP_EBUSY, "job %s is %s: retry it once it has finished", old->id,
                         old->state);
        goto out;
    }
    dip_service_progress(svc, old, &prog);
    if (prog.in_flight) {
        /* A cancelled image may still finish as done: retrying it now could run it twice. */
        rc = dip_err_set(err, DIP_EBUSY, "job %s is still finishing images in flight; retry soon",
                         old->id);
        goto out;
    }
    job.items = dip_calloc(old->n_items ? old->n_items : 1, sizeof(*job.items));
    if (job.items == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < old->n_items; i++) {
        const struct dip_store_item *it = &old->items[i];
        struct dip_store_item *ni;
        if (!dip_job_state_is(it->state, DIP_JOB_FAILED) &&
            !dip_job_state_is(it->state, DIP_JOB_CANCELLED))
            continue;
        ni = &job.items[n];
        ni->index = (int)n;
        memcpy(ni->name, it->name, sizeof(ni->name));
        memcpy(ni->sha, it->sha, sizeof(ni->sha));
        ni->bytes_in = it->bytes_in;
        ni->width = it->width;
        ni->height = it->height;
        n++;
    }
    if (n == 0) {
        rc = dip_err_set(err, DIP_EINVAL, "job %s has no failed or cancelled image to retry",
                         old->id);
        goto out;
    }
    /* The options are checked again: an operation may have changed since (its version is part of
     * the canonical text, and so of the result cache's key). */
    snprintf(quality, sizeof(quality), "%d", old->quality);
    rc = dip_service_check_options(svc, old->pipeline, old->format, quality, &canon, err);
    if (rc != 0)
        goto out;
    if (random_id(job.id) != 0) {
        rc = dip_err_set(err, DIP_EIO, "no randomness for a job id");
        goto out;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(job.owner, sizeof(job.owner), "%s", old->owner);
    snprintf(job.state, sizeof(job.state), "%s", dip_job_state_name(DIP_JOB_QUEUED));
    snprintf(job.name, sizeof(job.name), "retry of %.100s", old->name[0] ? old->name : old->id);
    job.pipeline = old->pipeline;
    job.canon = canon;
    snprintf(job.format, sizeof(job.format), "%s", old->format);
    job.quality = old->quality;
    job.created = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    job.n_items = n;
    rc = dip_store_job_create_capped(svc->store, &job, (uint64_t)o->max_active_per_user,
                                     (uint64_t)o->max_queue, err);
    if (rc != 0) {
        if (rc != DIP_EBUSY)
            rc = storage_error(svc, rc, err, "recording the retry");
        goto out;
    }
    snprintf(new_id, DIP_STORE_ID_LEN, "%s", job.id);
    {
        char items[32];
        snprintf(items, sizeof(items), "%zu", n);
        dip__log_event(svc, 0, "job_created", "job", job.id, "user", job.owner, "#items", items,
                       "retry_of", old->id, "pipeline", old->pipeline, NULL);
    }
    pthread_mutex_lock(&svc->lock);
    dip__service_bump(svc);
    pthread_mutex_unlock(&svc->lock);
    dip__runner_wake(svc);
out:
    pthread_rwlock_unlock(&svc->blobs);
    dip_free(job.items);
    dip_free(canon);
    dip_store_job_free(old);
    return rc;
}
