/* SPDX-License-Identifier: MIT */
/* Results: one item's result (/results/{n}) and every result of a job (/archive.zip, with a
 * failures.txt that lists each image that failed or was cancelled, and why). Both
 * stream from the blob files in chunks, so memory does not grow with a result's size or with the
 * number of downloads in flight: a result is MHD's file response, and the zip is written entry by
 * entry by a content callback that reads each blob twice in 64 KiB pieces (once for its CRC-32,
 * which a stored entry's header needs first, once for its bytes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "server/http.h"

#define CHUNK     65536
#define PRESIGN_S 900 /* a presigned result URL is valid 15 minutes */

static enum MHD_Result send_fd(struct ctx *c, int fd, uint64_t size, dip_format f, const char *name)
{
    struct MHD_Response *resp = MHD_create_response_from_fd(size, fd);
    char cd[400];

    if (resp == NULL) {
        close(fd);
        return MHD_NO;
    }
    c->r->bytes = (int64_t)size;
    snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"", name);
    MHD_add_response_header(resp, "Content-Type", dip__mime_of(f));
    MHD_add_response_header(resp, "Content-Disposition", cd);
    return dip__queue(c, 200, resp);
}

enum MHD_Result dip__h_result(struct ctx *c)
{
    struct dip_store_job *job = NULL;
    struct dip_err err = {0};
    char(*names)[300] = NULL;
    char *end;
    unsigned long n;
    uint64_t size = 0;
    enum MHD_Result ret;
    int rc, fd = -1;

    if (dip__load_job(c, 1, &job) != 0)
        return MHD_YES;
    errno = 0;
    n = strtoul(c->r->n, &end, 10);
    if (errno != 0 || *end != '\0' || c->r->n[0] < '0' || c->r->n[0] > '9' || n >= job->n_items) {
        ret = dip__send_error(c, 404, "ENOTFOUND", "job %s has no item %.32s", job->id, c->r->n);
        goto out;
    }
    if (!dip_job_state_is(job->items[n].state, DIP_JOB_DONE) || job->items[n].out_sha[0] == '\0') {
        ret = dip__send_error(c, 404, "ENOTFOUND", "item %lu of job %s has no result (state %s)", n,
                              job->id, job->items[n].state);
        goto out;
    }
    names = dip__result_names(job);
    if (names == NULL) {
        ret = dip__send_error(c, 503, "ENOMEM", "out of memory");
        goto out;
    }
    {
        /* ?redirect=1: a presigned URL of the object when the blobs are in object storage and
         * not encrypted (a sealed object would hand out ciphertext); otherwise the body below. */
        const char *redir = dip__arg(c, "redirect");
        char *url = NULL;
        if (redir != NULL && strcmp(redir, "1") == 0 &&
            dip_store_blob_presign(dip_service_store(c->svc), job->items[n].out_sha, PRESIGN_S,
                                   &url, NULL) == 0) {
            struct MHD_Response *resp =
                MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            if (resp != NULL) {
                MHD_add_response_header(resp, "Location", url);
                MHD_add_response_header(resp, "Cache-Control", "no-store");
            }
            dip_free(url);
            ret = resp ? dip__queue(c, 302, resp) : MHD_NO;
            goto out;
        }
    }
    rc = dip_store_blob_open(dip_service_store(c->svc), job->items[n].out_sha, &fd, &size, &err);
    if (rc != 0) {
        /* A blob that fails authentication is named (its hash, no path): the operator must know
         * which one was altered or which key is missing. */
        if (rc == DIP_EINTEGRITY)
            ret = dip__send_error(c, dip_err_http_status(rc), dip_err_name(rc), "%s", err.msg);
        else
            ret = dip__send_error(c, dip_err_http_status(rc), dip_err_name(rc),
                                  "the result of item %lu is not readable", n);
        goto out;
    }
    ret = send_fd(c, fd, size, dip_format_from_name(job->items[n].out_format), names[n]);
out:
    dip_free(names);
    dip_store_job_free(job);
    return ret;
}

/* ---- archive.zip ---- */

struct zipstream {
    dip_service *svc;
    struct dip_store_job *job;
    char (*names)[300];
    size_t next; /* next item to consider */
    uint64_t offset;
    uint16_t entries;
    struct dip__sbuf central;
    struct dip__sbuf pending; /* headers and records waiting to go out */
    size_t off;
    struct dip__sbuf failures; /* failures.txt; empty when every image is done */
    int failures_sent;
    int fd;           /* the entry whose bytes are streaming, or -1 */
    uint64_t fd_left; /* its bytes still to send */
    int ended;
    uint8_t chunk[CHUNK];
};

/* CRC-32 and length of a blob, read in chunks. */
static int crc_of(int fd, uint32_t *crc, uint64_t *len)
{
    uint8_t buf[CHUNK];
    off_t at = 0;

    *crc = 0;
    *len = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, sizeof(buf), at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        *crc = dip__crc32(*crc, buf, (size_t)r);
        *len += (uint64_t)r;
        at += r;
    }
}

/* Opens the next done item: its local header into pending and its file ready to stream; or the
 * central directory and the end record when none is left. */
static int zip_next(struct zipstream *z)
{
    while (z->next < z->job->n_items &&
           !dip_job_state_is(z->job->items[z->next].state, DIP_JOB_DONE))
        z->next++;
    if (z->next < z->job->n_items) {
        const struct dip_store_item *it = &z->job->items[z->next];
        const char *name = z->names[z->next];
        uint64_t size = 0, len = 0;
        uint32_t crc;
        int fd = -1;
        if (dip_store_blob_open(dip_service_store(z->svc), it->out_sha, &fd, &size, NULL) != 0)
            return -1;
        if (crc_of(fd, &crc, &len) != 0 || len > 0xffffffffu || z->offset > 0xffffffffu) {
            close(fd);
            return -1;
        }
        dip__zip_central(&z->central, name, crc, (uint32_t)len, (uint32_t)z->offset);
        dip__zip_local_header(&z->pending, name, crc, (uint32_t)len);
        z->offset += z->pending.len + len;
        z->fd = fd;
        z->fd_left = len;
        z->entries++;
        z->next++;
    } else if (!z->failures_sent && z->failures.len > 0) {
        /* After the results: a small text entry from memory, its bytes right after its header. */
        const char *name = "failures.txt";
        uint32_t crc = dip__crc32(0, z->failures.data, z->failures.len);
        for (size_t i = 0; i < z->job->n_items; i++)
            if (strcmp(z->names[i], name) == 0)
                name = "dip-failures.txt"; /* an image's result took the name */
        z->failures_sent = 1;
        dip__zip_central(&z->central, name, crc, (uint32_t)z->failures.len, (uint32_t)z->offset);
        dip__zip_local_header(&z->pending, name, crc, (uint32_t)z->failures.len);
        dip__sbuf_add(&z->pending, z->failures.data, z->failures.len);
        z->offset += z->pending.len;
        z->entries++;
    } else {
        if (z->offset > 0xffffffffu)
            return -1;
        dip__sbuf_add(&z->pending, z->central.data ? z->central.data : "", z->central.len);
        dip__zip_end(&z->pending, z->entries, (uint32_t)z->central.len, (uint32_t)z->offset);
        z->ended = 1;
    }
    return z->pending.failed || z->central.failed ? -1 : 0;
}

static ssize_t zip_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct zipstream *z = cls;
    size_t n;

    (void)pos;
    for (;;) {
        if (z->off < z->pending.len) {
            n = DIP_MIN(z->pending.len - z->off, max);
            memcpy(buf, z->pending.data + z->off, n);
            z->off += n;
            return (ssize_t)n;
        }
        if (z->fd >= 0 && z->fd_left > 0) {
            ssize_t r = read(z->fd, buf, (size_t)DIP_MIN((uint64_t)max, z->fd_left));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            z->fd_left -= (uint64_t)r;
            return r;
        }
        if (z->fd >= 0) {
            close(z->fd);
            z->fd = -1;
        }
        dip__sbuf_reset(&z->pending);
        z->off = 0;
        if (z->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (zip_next(z) != 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void zip_free(void *cls)
{
    struct zipstream *z = cls;

    if (z->fd >= 0)
        close(z->fd);
    dip_store_job_free(z->job);
    dip_free(z->names);
    dip__sbuf_free(&z->central);
    dip__sbuf_free(&z->pending);
    dip__sbuf_free(&z->failures);
    dip_free(z);
}

/* failures.txt: one line per image that failed or was cancelled, with the reason; at most 256 KiB
 * (then a count of the rest), so that it fits in one pending buffer. */
static void failures_text(const struct dip_store_job *job, struct dip__sbuf *b)
{
    size_t failed = 0, cancelled = 0, listed = 0, total;

    for (size_t i = 0; i < job->n_items; i++) {
        failed += dip_job_state_is(job->items[i].state, DIP_JOB_FAILED);
        cancelled += dip_job_state_is(job->items[i].state, DIP_JOB_CANCELLED);
    }
    total = failed + cancelled;
    if (total == 0)
        return;
    dip__sbuf_printf(b,
                     "dip job %s: %zu of %zu images have no result (%zu failed, %zu cancelled).\n",
                     job->id, total, job->n_items, failed, cancelled);
    dip__sbuf_printf(b, "Pipeline: %s\n\n", job->pipeline ? job->pipeline : "");
    for (size_t i = 0; i < job->n_items && b->len < (256u << 10); i++) {
        const struct dip_store_item *it = &job->items[i];
        if (dip_job_state_is(it->state, DIP_JOB_FAILED))
            dip__sbuf_printf(b, "%s: failed: %s\n", it->name,
                             it->error[0] ? it->error : "no reason recorded");
        else if (dip_job_state_is(it->state, DIP_JOB_CANCELLED))
            dip__sbuf_printf(b, "%s: cancelled: the job was cancelled before it ran\n", it->name);
        else
            continue;
        listed++;
    }
    if (listed < total)
        dip__sbuf_printf(b, "... and %zu more\n", total - listed);
}

enum MHD_Result dip__h_archive(struct ctx *c)
{
    struct dip_store_job *job = NULL;
    struct MHD_Response *resp;
    struct zipstream *z;
    uint64_t total = 22, entries = 0;
    char cd[128];

    if (dip__load_job(c, 1, &job) != 0)
        return MHD_YES;
    for (size_t i = 0; i < job->n_items; i++) {
        if (!dip_job_state_is(job->items[i].state, DIP_JOB_DONE))
            continue;
        entries++;
        total += 30 + 46 + 2 * 300 + job->items[i].bytes_out;
    }
    if (entries >= 65535 || total > 0xffffffffu - ((uint64_t)1 << 20)) { /* failures.txt too */
        dip_store_job_free(job);
        return dip__send_error(c, 413, "ELIMIT",
                               "the archive would exceed 4 GiB or 65535 entries; download results "
                               "one by one");
    }
    z = dip_calloc(1, sizeof(*z));
    if (z == NULL || (z->names = dip__result_names(job)) == NULL) {
        dip_free(z);
        dip_store_job_free(job);
        return dip__send_error(c, 503, "ENOMEM", "out of memory");
    }
    z->svc = c->svc;
    z->job = job;
    z->fd = -1;
    dip__sbuf_init(&z->central, (size_t)1 << 26);
    dip__sbuf_init(&z->pending, (size_t)1 << 20);
    dip__sbuf_init(&z->failures, (size_t)1 << 19);
    failures_text(job, &z->failures);
    if (z->failures.failed) {
        zip_free(z);
        return dip__send_error(c, 503, "ENOMEM", "out of memory");
    }
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, CHUNK, zip_read, z, zip_free);
    if (resp == NULL) {
        zip_free(z);
        return MHD_NO;
    }
    snprintf(cd, sizeof(cd), "attachment; filename=\"dip-%s.zip\"", job->id);
    MHD_add_response_header(resp, "Content-Type", "application/zip");
    MHD_add_response_header(resp, "Content-Disposition", cd);
    return dip__queue(c, 200, resp);
}
