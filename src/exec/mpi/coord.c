/* SPDX-License-Identifier: MIT */
/* The coordinator (rank 0) of the cluster executor. It keeps a queue of tasks and hands the next
 * one to whichever worker has room (pull-based): a whole item (encoded bytes in and out) for a
 * batch, or a tile of one plan step (the input pixels of dip_plan_need(rect), with the reduced
 * statistics of the earlier steps) for an image too big to leave to one rank. It reduces step
 * statistics, runs GLOBAL steps and encodes tiled images itself. Workers are watched through
 * heartbeats and per-task deadlines; a lost worker's tasks go back to the queue, its late
 * results are dropped, a task that took down three workers fails, and with no worker left the
 * coordinator runs the tasks itself. Every MPI call here is non-blocking and polled. */
#define _GNU_SOURCE
#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "dip/image.h"
#include "internal.h"
#include "transport.h"

#define MAX_CREDIT    258 /* tasks a worker holds: one per thread plus two waiting */
#define MAX_KILLS     3   /* workers a task may take down before it fails */
#define SPAWN_BACKLOG 5   /* queued tasks per worker that call for another worker */

enum { Q_QUEUED, Q_RUNNING, Q_DONE };

struct timg;

struct task {
    uint64_t id;
    int kind;
    int state;
    size_t item;
    struct timg *img; /* TILE */
    size_t step;
    struct dip_rect rect;
    int worker; /* index into workers while RUNNING */
    int kills, attempts;
    int running;    /* its worker's last heartbeat listed it as being computed */
    double since;   /* when its worker began computing it */
    uint8_t *bytes; /* ITEM: the encoded input, kept until done (a lost worker means resending) */
    size_t len;
    const char *in_ref, *out_ref; /* OBJECT: borrowed from the job's io (dip_job_io.refs) */
    double mpix;
};

struct timg {
    size_t item;
    dip_plan *plan;
    size_t step, n_steps;
    dip_image *cur, *nxt;
    uint8_t *stats; /* reduced statistics of finished steps, in step order */
    size_t stats_len;
    uint8_t *acc; /* statistic of the current step */
    size_t stat_size, tiles_left;
    dip_format in_format;
    int in_w, in_h, in_ch;
    int done;
    double t0;
    int attempts;
    double cpu_s; /* thread CPU seconds of its tiles (the workers') and its work here */
    /* Streaming (struct dip_mpi_opts.stream_images): step 0's input rows are decoded as the tiles
     * that need them are built, and kept only while a tile not yet done needs them; the last
     * step's tiles are encoded in row order as they come back. cur/nxt stay NULL then. */
    int streaming;
    uint8_t *src;     /* the encoded input the decoder reads (owned) */
    dip_decoder *dec; /* step 0 reads from here */
    uint8_t *win;     /* decoded input rows win_y0 .. win_y1 - 1 */
    size_t win_cap;   /* rows win has room for */
    int win_y0, win_y1;
    dip_encoder *enc; /* the last step writes here */
    dip_format out_format;
    int out_w, out_h, out_ch;
    int orows;            /* rows of each of the last step's tiles (the last may have fewer) */
    uint8_t **opix;       /* pixels of the last step's tiles that came back, until written */
    size_t ntiles, onext; /* tiles of the last step; the next one the encoder takes */
};

struct worker {
    int id; /* rank in MPI_COMM_WORLD, or world size + n for spawned ones; 0: the coordinator */
    MPI_Comm comm;
    int peer; /* rank of the worker in comm */
    int spawned, alive;
    struct dip__proc_id proc; /* which process it is, from its HELLO */
    int released;             /* let go while idle: not lost */
    double last_heard, idle_since;
    uint64_t job_sent;
    int threads;  /* from its HELLO: it computes this many tasks at once */
    int isolated; /* it holds a suspect task (one that was running when a worker died) alone */
    struct task *q[MAX_CREDIT];
    int nq;
    struct dip__rx rx;                /* the message arriving from it */
    struct dip__chan ch;              /* a sealed cluster: its keys, from the key exchange */
    uint8_t nonce[DIP__WORKER_NONCE]; /* its nonce, from the key exchange */
    int authed; /* a sealed cluster: its HELLO opened under the session's keys */
    struct dip_worker_stat st;
};

struct coord {
    struct dip_executor base;
    struct dip_mpi_opts o;
    char *exe;
    char **spawn_argv;
    struct worker *w;
    size_t nw, capw;
    struct dip__tx tx; /* sends in flight; owner: the worker's index */
    dip_pool *pool;
    struct dip__runner rn; /* runs tasks here when no worker is left */
    uint64_t next_id, job;
    int world_size, next_spawn_id, spawn_failures, any_lost, said_alone;
    double last_spawn, lost_after, drained_at, last_ping;
    char host[64];
    /* A sealed cluster (--cluster-key): the key and this session's nonce (seal.h). */
    int sealed, warned_clear;
    struct dip_key key;
    uint8_t session[DIP__SESSION_NONCE];
    uint8_t job_nonce[DIP__SESSION_NONCE]; /* the current job's, drawn when it first ships */
    uint64_t job_nonce_of;                 /* the job it belongs to (0: none yet) */

    /* the current job */
    const struct dip_job_spec *spec;
    const struct dip_job_io *io;
    struct dip__buf jobmsg;
    struct task **tasks;
    size_t ntasks, captasks;
    uint64_t base_id;
    struct task **queue; /* deque of QUEUED tasks */
    size_t qhead, qlen, qcap;
    struct timg **imgs;
    size_t nimgs;
    struct dip_progress prog;
    double t0, last_prog;

    /* pings sent by a helper thread while this thread computes (busy_begin/busy_end) */
    int busy_depth;
    pthread_t pinger;
    pthread_mutex_t busy_mu;
    pthread_cond_t busy_cv;
    int busy_stop, pinger_on;
};

/* ---- Sending (through the shared transport) ---- */

static void poll_sends(struct coord *c)
{
    dip__tx_poll(&c->tx);
}

/* Sends `data` (taken over) to worker w. */
static int send_to(struct coord *c, struct worker *w, int tag, uint8_t *data, size_t len)
{
    w->st.bytes_to += len; /* the summary's transport figures (issue 12: keys, not pixels) */
    /* Sealed: a worker whose key exchange is not done gets nothing (DIP_EINVAL). */
    return dip__tx_send(&c->tx, w->comm, w->peer, tag, data, len, (size_t)(w - c->w),
                        c->sealed ? &w->ch : NULL);
}

static int live_owner(size_t wi, void *ud)
{
    return ((struct coord *)ud)->w[wi].alive;
}

/* 1 while a send to worker index wi (or to any live worker, wi = SIZE_MAX) is in flight. Sends
 * to lost workers may never complete and are not waited for. */
static int sending_to(struct coord *c, size_t wi)
{
    return dip__tx_pending(&c->tx, wi, live_owner, c);
}

static int send_copy(struct coord *c, struct worker *w, int tag, const struct dip__buf *b)
{
    uint8_t *d = dip_malloc(b->len ? b->len : 1);

    if (!d)
        return DIP_ENOMEM;
    memcpy(d, b->bytes, b->len);
    return send_to(c, w, tag, d, b->len);
}

/* Tells the workers the coordinator is alive (1: a job runs, so they may give up on a silent
 * coordinator) or idle between jobs (0). */
static void send_ping(struct coord *c, int in_job)
{
    for (size_t i = 1; i < c->nw; i++) {
        uint8_t *d;

        if (!c->w[i].alive)
            continue;
        d = dip_malloc(1);
        if (d) {
            d[0] = (uint8_t)in_job;
            send_to(c, &c->w[i], DIP__MPI_PING, d, 1);
        }
    }
}

static void send_stop(struct coord *c, struct worker *w, int finalize)
{
    uint8_t *d = dip_malloc(1);

    if (d) {
        d[0] = (uint8_t)finalize;
        if (c->sealed && !w->ch.tx) /* no keys (it has none, or another): a STOP holds no secret */
            dip__tx_send(&c->tx, w->comm, w->peer, DIP__MPI_STOP, d, 1, (size_t)(w - c->w), NULL);
        else
            send_to(c, w, DIP__MPI_STOP, d, 1);
    }
}

/* ---- Pings while the coordinator computes ----
 * A global step, a decode or an encode of a large image keeps this thread away from MPI for
 * seconds; the workers would take that silence for a dead coordinator. While it computes, a
 * helper thread pings them every heartbeat. This thread makes no MPI call between busy_begin and
 * busy_end, so MPI stays serialised (MPI_THREAD_SERIALIZED). */
static void *pinger_main(void *arg)
{
    struct coord *c = arg;
    double hb = c->o.heartbeat_s > 0 ? c->o.heartbeat_s : 0.5;

    pthread_mutex_lock(&c->busy_mu);
    while (!c->busy_stop) {
        struct timespec until;
        double now = dip__now();

        if (now - c->last_ping >= hb) {
            pthread_mutex_unlock(&c->busy_mu);
            send_ping(c, 1);
            poll_sends(c);
            pthread_mutex_lock(&c->busy_mu);
            c->last_ping = now;
        }
        dip__deadline_in_us(&until, 50000);
        pthread_cond_timedwait(&c->busy_cv, &c->busy_mu, &until);
    }
    pthread_mutex_unlock(&c->busy_mu);
    return NULL;
}

static void busy_begin(struct coord *c)
{
    if (c->busy_depth++ > 0 || c->nw < 2)
        return;
    c->busy_stop = 0;
    c->pinger_on = pthread_create(&c->pinger, NULL, pinger_main, c) == 0;
}

static void busy_end(struct coord *c)
{
    if (--c->busy_depth > 0 || !c->pinger_on)
        return;
    pthread_mutex_lock(&c->busy_mu);
    c->busy_stop = 1;
    pthread_cond_signal(&c->busy_cv);
    pthread_mutex_unlock(&c->busy_mu);
    pthread_join(c->pinger, NULL);
    c->pinger_on = 0;
}

/* ---- The task queue ---- */

static int q_push(struct coord *c, struct task *t, int front)
{
    if (c->qhead + c->qlen == c->qcap || (front && c->qhead == 0)) {
        size_t cap = c->qcap ? c->qcap * 2 : 64;
        struct task **n = dip_malloc(cap * sizeof *n);

        if (!n)
            return DIP_ENOMEM;
        /* re-centre, leaving room at the front for requeued tasks */
        for (size_t i = 0; i < c->qlen; i++)
            n[cap / 4 + i] = c->queue[c->qhead + i];
        dip_free(c->queue);
        c->queue = n;
        c->qcap = cap;
        c->qhead = cap / 4;
        if (c->qhead + c->qlen + 1 > cap)
            c->qhead = 0;
    }
    t->state = Q_QUEUED;
    if (front && c->qhead > 0) {
        c->queue[--c->qhead] = t;
        c->qlen++;
    } else {
        c->queue[c->qhead + c->qlen++] = t;
    }
    return 0;
}

static struct task *q_pop(struct coord *c)
{
    while (c->qlen) {
        struct task *t = c->queue[c->qhead++];

        c->qlen--;
        if (t->state == Q_QUEUED)
            return t;
    }
    return NULL;
}

/* The next QUEUED task, left in the queue. */
static struct task *q_peek(struct coord *c)
{
    while (c->qlen) {
        struct task *t = c->queue[c->qhead];

        if (t->state == Q_QUEUED)
            return t;
        c->qhead++;
        c->qlen--;
    }
    return NULL;
}

static struct task *task_new(struct coord *c, int kind, size_t item)
{
    struct task *t;

    if (c->ntasks == c->captasks) {
        size_t cap = c->captasks ? c->captasks * 2 : 64;
        struct task **n = dip_realloc(c->tasks, cap * sizeof *n);

        if (!n)
            return NULL;
        c->tasks = n;
        c->captasks = cap;
    }
    t = dip_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->id = c->base_id + c->ntasks;
    t->kind = kind;
    t->item = item;
    t->worker = -1;
    c->tasks[c->ntasks++] = t;
    c->next_id = t->id + 1;
    return t;
}

/* ---- Results and progress ---- */

static const char *item_name(struct coord *c, size_t i, char *buf, size_t len)
{
    const char *n = c->io->name ? c->io->name(c->io->ud, i) : NULL;

    if (n)
        return n;
    snprintf(buf, len, "item %zu", i);
    return buf;
}

static void progress(struct coord *c, int force)
{
    double now = dip__now();

    c->prog.elapsed_s = now - c->t0;
    if (c->io->progress && (force || now - c->last_prog >= 0.1)) {
        c->last_prog = now;
        c->io->progress(c->io->ud, &c->prog);
    }
}

static void item_done(struct coord *c, size_t item, int rc, const char *msg, const uint8_t *data,
                      size_t len, dip_format fmt, int w, int h, int worker, int attempts,
                      double seconds, uint64_t pixels, double cpu_s)
{
    struct dip_item_result r = {.index = item,
                                .rc = rc,
                                .error = rc ? msg : NULL,
                                .data = data,
                                .len = len,
                                .format = fmt,
                                .width = w,
                                .height = h,
                                .worker = worker,
                                .attempts = attempts,
                                .seconds = seconds,
                                .cpu_s = cpu_s};

    c->io->result(c->io->ud, &r);
    c->prog.items_done++;
    c->prog.items_failed += rc != 0;
    c->prog.pixels_done += pixels;
    progress(c, 0);
}

/* ---- Tiled images ---- */

static int enqueue_step(struct coord *c, struct timg *im)
{
    struct dip_step_info si;
    int rows, rc;

    dip_plan_step_info(im->plan, im->step, &si);
    if (im->streaming && im->step + 1 == im->n_steps) {
        /* The last step of a streamed image: its rows go to the encoder in order. */
        struct dip_encode_opts enc = c->spec->encode;
        struct dip_err err = {0};

        if (enc.format == DIP_FORMAT_UNKNOWN)
            enc.format = dip_format_can_encode(im->in_format) ? im->in_format : DIP_FORMAT_PNG;
        im->out_format = enc.format;
        im->out_w = si.out_w;
        im->out_h = si.out_h;
        im->out_ch = si.out_channels;
        rc = dip_encoder_open(si.out_w, si.out_h, si.out_channels, &enc, &im->enc, &err);
        if (rc) {
            dip__mpi_log(2, "rank 0: image %zu: %s", im->item + 1, dip_err_text(&err, rc));
            return rc;
        }
    } else {
        rc = dip_image_new(si.out_w, si.out_h, si.out_channels, &im->nxt);
        if (rc)
            return rc;
    }
    im->stat_size = si.stat_size;
    dip_free(im->acc);
    im->acc = si.stat_size ? dip_calloc(1, si.stat_size) : NULL;
    if (si.stat_size && !im->acc)
        return DIP_ENOMEM;
    {
        /* A few hundred strips per large image, so a slow worker never holds much back. */
        uint64_t px = (uint64_t)si.out_w * (uint64_t)si.out_h;
        uint64_t target = px / 256 > 262144 ? px / 256 : 262144;
        uint64_t r = (target + (uint64_t)si.out_w - 1) / (uint64_t)si.out_w;

        rows = (int)DIP_CLAMP(r, 16, (uint64_t)si.out_h);
    }
    im->tiles_left = 0;
    if (im->enc != NULL) {
        im->orows = rows;
        im->ntiles = ((size_t)si.out_h + (size_t)rows - 1) / (size_t)rows;
        im->onext = 0;
        im->opix = dip_calloc(im->ntiles, sizeof *im->opix);
        if (!im->opix)
            return DIP_ENOMEM;
    }
    for (int y = 0; y < si.out_h; y += rows) {
        struct task *t = task_new(c, DIP__TASK_TILE, im->item);

        if (!t)
            return DIP_ENOMEM;
        t->img = im;
        t->step = im->step;
        t->rect = (struct dip_rect){0, y, si.out_w, DIP_MIN(rows, si.out_h - y)};
        t->mpix = (double)t->rect.w * t->rect.h / 1e6;
        if (q_push(c, t, 0))
            return DIP_ENOMEM;
        im->tiles_left++;
        c->prog.tasks_total++;
    }
    return 0;
}

/* ---- Streamed images: input rows decoded on demand, output rows encoded in order ---- */

static void stream_free_input(struct timg *im)
{
    dip_decoder_free(im->dec);
    im->dec = NULL;
    dip_free(im->win);
    im->win = NULL;
    im->win_cap = 0;
    im->win_y0 = im->win_y1 = 0;
    dip_free(im->src);
    im->src = NULL;
}

static void stream_free(struct timg *im)
{
    stream_free_input(im);
    dip_encoder_free(im->enc);
    im->enc = NULL;
    for (size_t i = 0; im->opix && i < im->ntiles; i++)
        dip_free(im->opix[i]);
    dip_free(im->opix);
    im->opix = NULL;
}

/* Makes the decoded input rows reach y_end: rows no unfinished tile of step 0 needs any more
 * are dropped first (moved out when they are at least half the window, so each row moves a
 * bounded number of times), then rows are decoded up to y_end. */
static int win_fill(struct coord *c, struct timg *im, int y_end, struct dip_err *err)
{
    size_t stride = (size_t)im->in_w * (size_t)im->in_ch, want;
    int low = im->win_y1, rc;
    struct dip_view v;
    double cpu0;

    if (y_end <= im->win_y1)
        return 0;
    for (size_t i = 0; i < c->ntasks; i++) {
        struct task *t = c->tasks[i];

        if (t->img == im && t->step == 0 && t->state != Q_DONE)
            low = DIP_MIN(low, dip_plan_need(im->plan, 0, t->rect).y);
    }
    if (low > im->win_y0 && low - im->win_y0 >= im->win_y1 - low) {
        memmove(im->win, im->win + (size_t)(low - im->win_y0) * stride,
                (size_t)(im->win_y1 - low) * stride);
        im->win_y0 = low;
    }
    want = (size_t)(y_end - im->win_y0);
    if (want > im->win_cap) {
        size_t cap = DIP_MIN(DIP_MAX(want, im->win_cap + im->win_cap / 2), (size_t)im->in_h);
        uint8_t *n = dip_realloc(im->win, cap * stride);

        if (!n)
            return dip_err_set(err, DIP_ENOMEM, "out of memory for %zu decoded rows", cap);
        im->win = n;
        im->win_cap = cap;
    }
    v = (struct dip_view){im->win + (size_t)(im->win_y1 - im->win_y0) * stride, im->in_w,
                          y_end - im->win_y1, im->in_ch, stride};
    cpu0 = dip_thread_cpu_seconds(); /* usage: rank 0's decode counts for the image's owner */
    busy_begin(c);
    rc = dip_decoder_read_rows(im->dec, &v, err);
    busy_end(c);
    im->cpu_s += dip_thread_cpu_seconds() - cpu0;
    if (rc == 0)
        im->win_y1 = y_end;
    return rc;
}

/* Keeps a tile of the last step (its pixels copied) and writes every tile that is next in row
 * order to the encoder. */
static int stream_out(struct coord *c, struct timg *im, const struct task *t, const uint8_t *pix,
                      size_t len, struct dip_err *err)
{
    size_t idx = (size_t)t->rect.y / (size_t)im->orows;
    int rc = 0;
    double cpu0;

    if (idx >= im->ntiles || idx < im->onext || im->opix[idx])
        return 0; /* a late duplicate */
    im->opix[idx] = dip_malloc(len ? len : 1);
    if (!im->opix[idx])
        return dip_err_set(err, DIP_ENOMEM, "out of memory keeping a tile");
    memcpy(im->opix[idx], pix, len);
    cpu0 = dip_thread_cpu_seconds(); /* usage: rank 0's encode counts for the image's owner */
    busy_begin(c);
    while (rc == 0 && im->onext < im->ntiles && im->opix[im->onext]) {
        int y = (int)im->onext * im->orows;
        struct dip_view v = {im->opix[im->onext], im->out_w, DIP_MIN(im->orows, im->out_h - y),
                             im->out_ch, (size_t)im->out_w * (size_t)im->out_ch};

        rc = dip_encoder_write_rows(im->enc, &v, err);
        dip_free(im->opix[im->onext]);
        im->opix[im->onext++] = NULL;
    }
    busy_end(c);
    im->cpu_s += dip_thread_cpu_seconds() - cpu0;
    return rc;
}

static void img_finish(struct coord *c, struct timg *im, int rc, const char *msg)
{
    uint8_t *out = NULL;
    size_t len = 0;
    struct dip_err err = {0};
    struct dip_encode_opts enc = c->spec->encode;
    double cpu0 = dip_thread_cpu_seconds(); /* the encode's, added to the tiles' and the rest */

    if (rc == 0) {
        if (enc.format == DIP_FORMAT_UNKNOWN)
            enc.format = dip_format_can_encode(im->in_format) ? im->in_format : DIP_FORMAT_PNG;
        busy_begin(c);
        if (im->enc) {
            enc.format = im->out_format;
            rc = dip_encoder_finish(im->enc, &out, &len, &err);
        } else {
            rc = dip_codec_encode(im->cur, &enc, &out, &len, &err);
        }
        busy_end(c);
        msg = dip_err_text(&err, rc);
    }
    item_done(c, im->item, rc, msg, out, len, enc.format,
              im->enc   ? im->out_w
              : im->cur ? dip_image_width(im->cur)
                        : 0,
              im->enc   ? im->out_h
              : im->cur ? dip_image_height(im->cur)
                        : 0,
              0, im->attempts, dip__now() - im->t0, (uint64_t)im->in_w * (uint64_t)im->in_h,
              im->cpu_s + dip_thread_cpu_seconds() - cpu0);
    dip_free(out);
    {
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        dip__mpi_log(2, "rank 0: image %zu/%llu %s (%s), rank 0 peak RSS %ld MiB", im->item + 1,
                     (unsigned long long)c->prog.items_total, rc ? "failed" : "done",
                     im->streaming ? "streamed in strips" : "decoded and encoded whole",
                     ru.ru_maxrss / 1024);
    }
    stream_free(im);
    im->done = 1;
    /* Tasks of this image still queued or running are abandoned. */
    for (size_t i = 0; i < c->ntasks; i++)
        if (c->tasks[i]->img == im && c->tasks[i]->state != Q_DONE)
            c->tasks[i]->state = Q_DONE;
    dip_plan_free(im->plan);
    im->plan = NULL;
    dip_image_unref(im->cur);
    dip_image_unref(im->nxt);
    im->cur = im->nxt = NULL;
}

/* Runs GLOBAL steps here until the next TILED step (queued) or the end (encoded). */
static void img_advance(struct coord *c, struct timg *im)
{
    struct dip_err err = {0};
    int rc = 0;

    while (im->step < im->n_steps) {
        struct dip_step_info si;
        dip_image *out = NULL;
        struct dip_view vi, vo;
        double cpu0;

        dip_plan_step_info(im->plan, im->step, &si);
        if (si.kind == DIP_STEP_TILED) {
            rc = enqueue_step(c, im);
            if (rc == 0)
                return;
            break;
        }
        rc = dip_image_new(si.out_w, si.out_h, si.out_channels, &out);
        if (rc)
            break;
        vi = dip_image_view(im->cur);
        vo = dip_image_view(out);
        dip__mpi_log(2, "rank 0: image %zu/%llu step %zu (global) here", im->item + 1,
                     (unsigned long long)c->prog.items_total, im->step + 1);
        busy_begin(c);
        cpu0 = dip_thread_cpu_seconds();
        rc = dip_plan_global(im->plan, im->step, &vi, &vo);
        im->cpu_s += dip_thread_cpu_seconds() - cpu0;
        busy_end(c);
        if (rc) {
            dip_image_unref(out);
            break;
        }
        dip_image_unref(im->cur);
        im->cur = out;
        im->step++;
    }
    img_finish(c, im, rc, rc ? dip_err_text(&err, rc) : NULL);
}

static void tile_done(struct coord *c, struct task *t, struct dip__rbuf *r)
{
    struct timg *im = t->img;
    uint64_t stat_len = dip__rbuf_u64(r);
    const uint8_t *stat = stat_len <= r->left ? dip__rbuf_bytes(r, (size_t)stat_len) : NULL;
    uint64_t pix_len = dip__rbuf_u64(r);
    const uint8_t *pix = pix_len <= r->left ? dip__rbuf_bytes(r, (size_t)pix_len) : NULL;
    struct dip_view dst, src;

    if (im->done || t->step != im->step)
        return;
    if (im->nxt)
        dst = dip_image_view(im->nxt);
    else
        dst = (struct dip_view){NULL, im->out_w, im->out_h, im->out_ch, 0};
    if (r->bad || !pix || stat_len != im->stat_size ||
        pix_len != (uint64_t)t->rect.w * (uint64_t)t->rect.h * (uint64_t)dst.channels) {
        img_finish(c, im, DIP_EPEER, "mpi: malformed tile result");
        return;
    }
    if (r->left >= 8) {
        double cpu = dip__rbuf_f64(r); /* the worker's thread CPU clock around the tile */
        im->cpu_s += cpu > 0 && cpu < 1e6 ? cpu : 0;
    }
    if (im->nxt) {
        src = (struct dip_view){(uint8_t *)(uintptr_t)pix, t->rect.w, t->rect.h, dst.channels,
                                (size_t)t->rect.w * (size_t)dst.channels};
        dst = dip_view_sub(&dst, t->rect);
        dip_view_copy(&src, &dst);
    } else {
        struct dip_err err = {0};
        int rc = stream_out(c, im, t, pix, (size_t)pix_len, &err);

        if (rc) {
            img_finish(c, im, rc, dip_err_text(&err, rc));
            return;
        }
    }
    if (im->stat_size) {
        /* Statistics are arrays of fixed-width integers: merge from an aligned copy. */
        uint64_t *aligned = dip_malloc(im->stat_size);

        if (!aligned) {
            img_finish(c, im, DIP_ENOMEM, "out of memory");
            return;
        }
        memcpy(aligned, stat, im->stat_size);
        dip_plan_stat_merge(im->plan, im->step, im->acc, aligned);
        dip_free(aligned);
    }
    if (--im->tiles_left > 0)
        return;
    /* The step is complete: reduce its statistic and move on. */
    if (im->stat_size) {
        uint8_t *s = dip_realloc(im->stats, im->stats_len + im->stat_size);
        int rc;

        if (!s) {
            img_finish(c, im, DIP_ENOMEM, "out of memory");
            return;
        }
        im->stats = s;
        memcpy(s + im->stats_len, im->acc, im->stat_size);
        im->stats_len += im->stat_size;
        rc = dip_plan_stat_finish(im->plan, im->step, im->acc);
        if (rc) {
            img_finish(c, im, rc, dip_strerror(rc));
            return;
        }
    }
    dip_image_unref(im->cur);
    im->cur = im->nxt;
    im->nxt = NULL;
    if (im->step == 0)
        stream_free_input(im); /* every tile of step 0 is in */
    im->step++;
    img_advance(c, im);
}

/* Starts a tiled image from its encoded bytes (owned from here). With stream_images, a format
 * that decodes in rows and a first step that is tiled, the image is never decoded whole here:
 * the decoder keeps the bytes and gives rows as tiles need them. */
static void img_start(struct coord *c, struct timg *im, uint8_t *data, size_t len)
{
    struct dip_err err = {0};
    struct dip_image_info info;
    dip_pipeline *p = NULL;
    dip_decoder *dec = NULL;
    int rc, w = 0, h = 0, ch = 0;

    im->t0 = dip__now();
    im->attempts = 1;
    memset(&info, 0, sizeof info);
    rc = dip_pipeline_parse(c->spec->pipeline, &p, &err);
    if (rc == 0)
        rc = dip_decoder_open(data, len, &c->spec->limits, &c->spec->decode, &dec, &info, &err);
    if (rc == 0) {
        dip_decoder_dims(dec, &w, &h, &ch);
        /* The plan must outlive the pipeline text only through its own copy of the args. */
        rc = dip_plan_compile(p, w, h, ch, &im->plan, &err);
    }
    if (rc == 0) {
        struct dip_step_info si;

        im->n_steps = dip_plan_steps(im->plan);
        if (im->n_steps > 0)
            dip_plan_step_info(im->plan, 0, &si);
        if (c->o.stream_images && dip_decoder_streams(dec) && im->n_steps > 0 &&
            si.kind == DIP_STEP_TILED) {
            im->streaming = 1;
            im->dec = dec;
            im->src = data;
            dec = NULL;
            data = NULL; /* the decoder reads them until step 0 is done */
        } else {
            double cpu0 = dip_thread_cpu_seconds();

            busy_begin(c);
            rc = dip_codec_decode(data, len, &c->spec->limits, &c->spec->decode, &im->cur, &info,
                                  &err);
            busy_end(c);
            im->cpu_s += dip_thread_cpu_seconds() - cpu0;
        }
    }
    if (rc == 0) {
        im->in_format = info.format;
        im->in_w = w;
        im->in_h = h;
        im->in_ch = ch;
        c->prog.pixels_total += (uint64_t)info.width * (uint64_t)info.height;
        im->step = 0;
        dip__mpi_log(2, "rank 0: image %zu/%llu %dx%d split into %zu steps%s", im->item + 1,
                     (unsigned long long)c->prog.items_total, im->in_w, im->in_h, im->n_steps,
                     im->streaming ? ", decoded and encoded in strips" : "");
        img_advance(c, im);
    } else {
        img_finish(c, im, rc, dip_err_text(&err, rc));
    }
    dip_decoder_free(dec);
    dip_free(data);
    dip_pipeline_free(p);
}

/* ---- Workers ---- */

static struct worker *add_worker(struct coord *c, int id, MPI_Comm comm, int peer, int spawned)
{
    struct worker *w;

    if (c->nw == c->capw) {
        size_t cap = c->capw ? c->capw * 2 : 8;
        struct worker *n = dip_realloc(c->w, cap * sizeof *n);

        if (!n)
            return NULL;
        c->w = n;
        c->capw = cap;
    }
    w = &c->w[c->nw++];
    memset(w, 0, sizeof *w);
    w->id = id;
    w->comm = comm;
    w->peer = peer;
    w->spawned = spawned;
    w->alive = 1;
    w->last_heard = w->idle_since = dip__now();
    w->st.id = id;
    w->st.alive = 1;
    snprintf(w->st.host, sizeof w->st.host, "?");
    return w;
}

static size_t live_workers(const struct coord *c)
{
    size_t n = 0;

    for (size_t i = 1; i < c->nw; i++)
        n += c->w[i].alive;
    return n;
}

static void fail_task(struct coord *c, struct task *t, int rc, const char *msg)
{
    t->state = Q_DONE;
    if (t->kind != DIP__TASK_TILE) {
        item_done(c, t->item, rc, msg, NULL, 0, DIP_FORMAT_UNKNOWN, 0, 0, 0, t->attempts, 0.0, 0,
                  0.0);
        dip_free(t->bytes);
        t->bytes = NULL;
    } else if (!t->img->done) {
        img_finish(c, t->img, rc, msg);
    }
}

static void lose_worker(struct coord *c, struct worker *w, const char *why)
{
    char nb[32];

    if (!w->alive)
        return;
    w->alive = 0;
    w->st.alive = 0;
    c->any_lost = 1;
    dip__mpi_log(1, "rank %d (%s) lost: %s; %d task%s back to the queue", w->id, w->st.host, why,
                 w->nq, w->nq == 1 ? " goes" : "s go");
    send_stop(c, w, 0); /* in case it is alive but hung or cut off: it should leave */
    /* Requeue at the front, last first, so the queue keeps their order. */
    for (int i = w->nq - 1; i >= 0; i--) {
        struct task *t = w->q[i];

        if (t->state != Q_RUNNING || t->worker != (int)(w - c->w))
            continue;
        t->worker = -1;
        /* Blame only the tasks it said it was computing (workers announce each task before they
         * start it), not those waiting. A blamed task runs alone from now on (see dispatch), so
         * an innocent task that ran next to a poison one is cleared on its next try. */
        if (t->running && ++t->kills >= MAX_KILLS) {
            char msg[512];

            snprintf(msg, sizeof msg, "poison: input %s killed %d workers",
                     item_name(c, t->item, nb, sizeof nb), t->kills);
            dip__mpi_log(0, "%s; failing it", msg);
            w->st.failures++;
            fail_task(c, t, DIP_EPEER, msg);
            continue;
        }
        t->running = 0;
        if (t->kind == DIP__TASK_OBJECT)
            t->mpix = 0; /* its next worker fetches it again: no deadline until then */
        q_push(c, t, 1);
    }
    w->nq = 0;
    w->isolated = 0;
}

/* The spawn watchdog. MPI_Comm_spawn blocks, with no timeout, until the new process has
 * joined; with Debian 12's Open MPI 4.1.4 and PMIx 4.2 it now and then never returns (the new
 * process waits for ever in PMIx_Init; killing it does not free rank 0; openpmix#2735). A thread
 * that does not call MPI ends rank 0 if the spawn outlasts DIP_MPI_SPAWN_S: the outputs written so
 * far are complete, the workers leave when they no longer hear from it, and the run ends with
 * status 7 (the coordinator died) instead of never. */
struct spawn_watch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    double limit_s;
};

static void *spawn_watch_main(void *arg)
{
    struct spawn_watch *sw = arg;
    struct timespec until;
    int late = 0;

    dip__deadline_in_us(&until, (long)(sw->limit_s * 1e6));
    pthread_mutex_lock(&sw->mu);
    while (!sw->done && !late)
        late = pthread_cond_timedwait(&sw->cv, &sw->mu, &until) == ETIMEDOUT;
    pthread_mutex_unlock(&sw->mu);
    if (late && !sw->done) {
        dip__mpi_log(0,
                     "MPI_Comm_spawn has not returned in %.0f s (DIP_MPI_SPAWN_S): Open MPI "
                     "can hang there for ever (openpmix#2735); rank 0 ends the run. Outputs "
                     "written so far are complete; run again for the rest (docs/cluster.md)",
                     sw->limit_s);
        fflush(stderr);
        _exit(7);
    }
    return NULL;
}

static void spawn_worker(struct coord *c)
{
    MPI_Comm inter = MPI_COMM_NULL;
    MPI_Info info = MPI_INFO_NULL;
    int errc = 0, rc, watching;
    struct worker *w;
    struct spawn_watch sw = {.limit_s = c->o.spawn_s > 0 ? c->o.spawn_s : 60.0};
    pthread_t watcher;
    const char *exe = c->exe;
    char **argv = c->spawn_argv;
#ifdef DIP_TEST_HOOKS
    static char hour[] = "3600";
    static char *sleep_argv[] = {hour, NULL};

    if (getenv("DIP_TEST_SPAWN_HANG")) {
        /* Test-only: a new process that never joins, as in the Open MPI hang above. */
        exe = "/bin/sleep";
        argv = sleep_argv;
    }
#endif

    c->last_spawn = dip__now();
    if (!exe)
        return;
    pthread_mutex_init(&sw.mu, NULL);
    pthread_cond_init(&sw.cv, NULL);
    watching = pthread_create(&watcher, NULL, spawn_watch_main, &sw) == 0;
    MPI_Info_create(&info);
    MPI_Info_set(info, "map_by", ":OVERSUBSCRIBE");
    rc = MPI_Comm_spawn(exe, argv, 1, info, 0, MPI_COMM_SELF, &inter, &errc);
    MPI_Info_free(&info);
    if (watching) {
        pthread_mutex_lock(&sw.mu);
        sw.done = 1;
        pthread_cond_signal(&sw.cv);
        pthread_mutex_unlock(&sw.mu);
        pthread_join(watcher, NULL);
    }
    pthread_cond_destroy(&sw.cv);
    pthread_mutex_destroy(&sw.mu);
    if (rc != MPI_SUCCESS || errc != MPI_SUCCESS || inter == MPI_COMM_NULL) {
        c->spawn_failures++;
        dip__mpi_log(1, "could not spawn a worker (MPI error %d/%d)", rc, errc);
        return;
    }
    MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN);
    w = add_worker(c, c->next_spawn_id++, inter, 0, 1);
    if (w)
        dip__mpi_log(1, "spawned worker %d (backlog %zu tasks)", w->id, c->qlen);
    c->last_spawn = dip__now();
}

/* ---- Messages from workers ---- */

/* The result of an OBJECT task: the worker put the output itself; only its size and hash came. */
static void object_done(struct coord *c, struct worker *w, struct task *t, struct dip__rbuf *r,
                        int rc, const char *msg, double busy, double mpix)
{
    int ow = dip__rbuf_i32(r), oh = dip__rbuf_i32(r);
    uint32_t fmt = dip__rbuf_u32(r);
    uint64_t n = dip__rbuf_u64(r);
    char *sha = dip__rbuf_str(r, 64), nb[32];
    double cpu = r->left >= 8 ? dip__rbuf_f64(r) : 0.0; /* the worker's thread CPU clocks */
    struct dip_item_result res = {0};

    if (rc == 0 && (r->bad || !sha || strlen(sha) != 64 || fmt >= DIP_FORMAT_COUNT)) {
        rc = DIP_EPEER;
        msg = "mpi: malformed result";
    }
    dip__mpi_log(2, "rank %d: image %zu/%llu %s -> %s (%.3f s%s%s)", w->id, t->item + 1,
                 (unsigned long long)c->prog.items_total, item_name(c, t->item, nb, sizeof nb),
                 t->out_ref, busy, rc ? ", failed: " : ", put by the worker",
                 rc ? (msg ? msg : dip_strerror(rc)) : "");
    if (mpix > 0 && mpix < 1e6) {
        t->mpix = mpix; /* known only now: the coordinator never saw the input */
        c->prog.pixels_total += (uint64_t)(mpix * 1e6 + 0.5);
    }
    res.index = t->item;
    res.rc = rc;
    res.error = rc ? (msg ? msg : dip_strerror(rc)) : NULL;
    res.len = rc ? 0 : (size_t)n;
    res.format = (dip_format)fmt;
    res.width = ow;
    res.height = oh;
    res.worker = w->id;
    res.attempts = t->attempts;
    res.seconds = busy;
    res.stored = rc == 0;
    res.sha256 = rc ? NULL : sha;
    res.cpu_s = cpu >= 0 && cpu < 1e6 ? cpu : 0.0;
    c->io->result(c->io->ud, &res);
    c->prog.items_done++;
    c->prog.items_failed += rc != 0;
    c->prog.pixels_done += (uint64_t)(t->mpix * 1e6 + 0.5);
    progress(c, 0);
    dip_free(sha);
}

static void on_result(struct coord *c, struct worker *w, const uint8_t *data, size_t len)
{
    struct dip__rbuf r = {data, len, 0};
    uint64_t id = dip__rbuf_u64(&r), job = dip__rbuf_u64(&r);
    uint8_t kind = dip__rbuf_u8(&r);
    int rc = (int)dip__rbuf_u32(&r);
    double busy = dip__rbuf_f64(&r), mpix = dip__rbuf_f64(&r);
    char *msg = dip__rbuf_str(&r, 4096);
    struct task *t = NULL;
    int slot = -1;
    char nb[32];

    for (int i = 0; i < w->nq; i++)
        if (w->q[i]->id == id && job == c->job)
            slot = i;
    if (r.bad || slot < 0) {
        dip_free(msg);
        return; /* not ours (any more): a late or stale result */
    }
    t = w->q[slot];
    memmove(&w->q[slot], &w->q[slot + 1], (size_t)(w->nq - slot - 1) * sizeof w->q[0]);
    w->nq--;
    if (t->kills > 0)
        w->isolated = 0;
    if (w->nq == 0)
        w->idle_since = dip__now();
    w->st.tasks++;
    w->st.busy_s += busy > 0 && busy < 1e6 ? busy : 0;
    w->st.megapixels += mpix > 0 && mpix < 1e6 ? mpix : 0;
    w->st.failures += rc != 0;
    if (t->state != Q_RUNNING || t->worker != (int)(w - c->w) || (int)kind != t->kind) {
        dip_free(msg);
        return;
    }
    t->state = Q_DONE;
    t->worker = -1;
    c->prog.tasks_done++;
    if (t->kind == DIP__TASK_ITEM) {
        int ow = dip__rbuf_i32(&r), oh = dip__rbuf_i32(&r);
        uint32_t fmt = dip__rbuf_u32(&r);
        uint64_t n = dip__rbuf_u64(&r);
        const uint8_t *out = n <= r.left ? dip__rbuf_bytes(&r, (size_t)n) : NULL;
        double cpu = r.left >= 8 ? dip__rbuf_f64(&r) : 0.0; /* the worker's thread CPU clocks */

        if (rc == 0 && (r.bad || !out || fmt >= DIP_FORMAT_COUNT)) {
            rc = DIP_EPEER;
            dip_free(msg);
            msg = dip_strdup("mpi: malformed result");
        }
        dip__mpi_log(2, "rank %d: image %zu/%llu %s (%.3f s%s%s)", w->id, t->item + 1,
                     (unsigned long long)c->prog.items_total, item_name(c, t->item, nb, sizeof nb),
                     busy, rc ? ", failed: " : "", rc ? msg : "");
        item_done(c, t->item, rc, msg ? msg : dip_strerror(rc), rc ? NULL : out, rc ? 0 : (size_t)n,
                  (dip_format)fmt, ow, oh, w->id, t->attempts, busy,
                  (uint64_t)(t->mpix * 1e6 + 0.5), cpu >= 0 && cpu < 1e6 ? cpu : 0.0);
        dip_free(t->bytes);
        t->bytes = NULL;
    } else if (t->kind == DIP__TASK_OBJECT) {
        object_done(c, w, t, &r, rc, msg, busy, mpix);
    } else {
        dip__mpi_log(2, "rank %d: image %zu/%llu step %zu rows %d..%d (%.3f s)", w->id, t->item + 1,
                     (unsigned long long)c->prog.items_total, t->step + 1, t->rect.y,
                     t->rect.y + t->rect.h, busy);
        if (rc)
            fail_task(c, t, rc, msg ? msg : dip_strerror(rc));
        else
            tile_done(c, t, &r);
    }
    dip_free(msg);
}

/* BEAT: the ids of the tasks the worker is computing now. */
static void on_beat(struct worker *w, const uint8_t *data, size_t len)
{
    struct dip__rbuf r = {data, len, 0};
    uint32_t n = dip__rbuf_u32(&r);
    uint64_t ids[MAX_CREDIT];
    double mpix[MAX_CREDIT];
    double now = dip__now();

    if (n > MAX_CREDIT)
        return;
    for (uint32_t i = 0; i < n; i++)
        ids[i] = dip__rbuf_u64(&r);
    for (uint32_t i = 0; i < n; i++)
        mpix[i] = dip__rbuf_f64(&r); /* an object task's size, once its worker has read it */
    if (r.bad)
        return;
    for (int k = 0; k < w->nq; k++) {
        struct task *t = w->q[k];
        int on = 0;

        for (uint32_t i = 0; i < n && !on; i++)
            if (ids[i] == t->id) {
                on = 1;
                /* An object task's deadline starts once its worker fetched the input (the S3
                 * client's own timeouts bound the fetch) and grows with its size, as an item's. */
                if (t->kind == DIP__TASK_OBJECT && t->mpix == 0 && mpix[i] > 0 && mpix[i] < 1e6) {
                    t->mpix = mpix[i];
                    t->since = now;
                }
            }
        if (on && !t->running)
            t->since = now;
        t->running = on;
    }
}

/* Without a key on a job whose ranks are on more than one host: one warning, at the first sign. */
static void warn_clear(struct coord *c, const char *why)
{
    if (c->sealed || c->warned_clear)
        return;
    c->warned_clear = 1;
    dip__mpi_log(1,
                 "warning: cluster traffic is not encrypted (%s): anyone on the network "
                 "between the hosts can read images and results and inject results; give every "
                 "rank --cluster-key FILE (dip key create FILE)",
                 why);
}

/* A worker's key exchange: answer with the session nonce and its id, and derive its keys. A worker
 * with another key (or none here) is lost at once; it still gets the answer, so it can tell. */
static void on_keyx(struct coord *c, struct worker *w, const uint8_t *data, size_t len)
{
    uint8_t *kx;
    struct dip_err err = {0};
    char why[600];

    if (!c->sealed) {
        lose_worker(c, w,
                    "it seals its messages (--cluster-key) but this coordinator has no "
                    "cluster key");
        return;
    }
    if (w->ch.tx) {
        lose_worker(c, w, "failed authentication: a second key exchange");
        return;
    }
    kx = dip_malloc(DIP__KEYX_COORD);
    if (kx) {
        dip__keyx_coord(kx, c->session, &c->key, (uint32_t)w->id);
        dip__tx_send(&c->tx, w->comm, w->peer, DIP__MPI_KEYX, kx, DIP__KEYX_COORD,
                     (size_t)(w - c->w), NULL);
    }
    if (dip__keyx_read_worker(data, len, &c->key, w->nonce, &err) != 0 ||
        dip__chan_keys(&w->ch, &c->key, c->session, w->nonce, (uint32_t)w->id, 1, &err) != 0) {
        snprintf(why, sizeof why, "failed authentication: %s", err.msg);
        lose_worker(c, w, why);
        return;
    }
    /* The first sealed word: whether a job runs (dip serve idles between jobs; the PING of 0
     * that dip__mpi_coord_new sent could not reach a worker without keys). */
    kx = dip_malloc(1);
    if (kx) {
        kx[0] = (uint8_t)(c->o.serve && !c->spec ? 0 : 1);
        send_to(c, w, DIP__MPI_PING, kx, 1);
    }
}

static void on_message(struct coord *c, struct worker *w, int tag, const uint8_t *data, size_t len)
{
    if (tag == DIP__MPI_KEYX) {
        on_keyx(c, w, data, len);
    } else if (tag == DIP__MPI_REKEY) {
        /* The worker's last message under the previous job's keys. */
        struct dip_err err = {0};
        char why[600];

        if (!c->sealed || dip__chan_rekey_rx(&w->ch, &err) != 0) {
            snprintf(why, sizeof why, "failed authentication: %s",
                     c->sealed ? err.msg : "a new job's keys in a cluster without a key");
            lose_worker(c, w, why);
        }
    } else if (tag == DIP__MPI_HELLO) {
        struct dip__rbuf r = {data, len, 0};
        char *host;
        uint32_t threads;

        dip__wire_read_proc_id(&r, &w->proc);
        threads = dip__rbuf_u32(&r);
        host = dip__rbuf_str(&r, 255);
        if (!r.bad) {
            w->threads = (int)DIP_CLAMP(threads, 1, MAX_CREDIT - 1);
            if (host)
                snprintf(w->st.host, sizeof w->st.host, "%s", host);
            w->authed = c->sealed; /* it opened: the worker holds the key */
            if (host && strcmp(host, c->host) != 0) {
                char why[160];

                snprintf(why, sizeof why, "rank %d runs on %.60s, the coordinator on %.60s", w->id,
                         host, c->host);
                warn_clear(c, why);
            }
        }
        dip_free(host);
    } else if (tag == DIP__MPI_BEAT) {
        on_beat(w, data, len);
    } else if (tag == DIP__MPI_RESULT) {
        on_result(c, w, data, len);
    }
}

/* A worker whose message was cut short (it died, or stopped, while sending a result) may have
 * sent a BEAT after that message: the task it started next, which is the likeliest to have killed
 * it. The BEAT is complete in MPI's queue behind the cut message; read what is already there, so
 * that lose_worker blames that task and not only the ones it named before. Only BEATs are used. */
static void read_last_beats(struct coord *c, struct worker *w)
{
    for (int k = 0; k < 8; k++) {
        uint8_t *data = NULL;
        size_t len = 0;
        int tag = 0, got = 0;
        struct dip_err err = {0};

        if (dip__rx_probe(&w->rx, w->comm, w->peer) <= 0)
            return;
        /* A BEAT is small: it is there or it is not. The last try gives up on a message still
         * arriving (it is left with MPI, as a cut message is). */
        for (int tries = 0; tries < 3 && got == 0; tries++) {
            if (tries > 0)
                dip__nap(100);
            got = dip__rx_test(&w->rx, tries < 2 ? c->lost_after : -1e9, &data, &len, &tag,
                               c->sealed ? &w->ch : NULL, &err);
        }
        if (got <= 0)
            return;
        if (tag == DIP__MPI_BEAT)
            on_beat(w, data, len);
        dip_free(data);
    }
}

/* Handles what has arrived from each live worker, never waiting on any: a message still on its
 * way is left to arrive while the loop goes on (its own deadline covers a sender that died or
 * stopped mid-message). Returns how many messages were handled. */
static int poll_all(struct coord *c)
{
    double t0 = dip__now();
    int n = 0;

    for (size_t i = 1; i < c->nw; i++) {
        for (int k = 0; k < 64; k++) {
            struct worker *w = &c->w[i];
            uint8_t *data = NULL;
            size_t len = 0;
            int tag = 0, got;
            struct dip_err err = {0};

            if (!w->alive)
                break;
            if (!w->rx.active && dip__rx_probe(&w->rx, w->comm, w->peer) <= 0)
                break;
            got = dip__rx_test(&w->rx, c->lost_after, &data, &len, &tag, c->sealed ? &w->ch : NULL,
                               &err);
            if (got == 0)
                break; /* still arriving */
            if (got < 0) {
                char why[600];

                snprintf(why, sizeof why, "%s%s",
                         err.code == DIP_EINTEGRITY ? "failed authentication: " : "", err.msg);
                if (err.code != DIP_EINTEGRITY)
                    read_last_beats(c, w);
                lose_worker(c, w, why);
                break;
            }
            n++;
            w->last_heard = dip__now();
            w->st.bytes_from += len;
            on_message(c, w, tag, data, len);
            dip_free(data);
        }
    }
    poll_sends(c);
    c->drained_at = t0;
    return n;
}

static double task_timeout(const struct coord *c, const struct task *t)
{
    /* --task-timeout is the floor; big tasks get 2 s per megapixel on top. */
    return c->o.task_timeout_s + 2.0 * t->mpix;
}

static void check_workers(struct coord *c)
{
    double now = c->drained_at;
    char why[128];

    for (size_t i = 1; i < c->nw; i++) {
        struct worker *w = &c->w[i];

        if (!w->alive)
            continue;
        if (w->rx.active)
            continue; /* a message is arriving: its own deadline applies */
        if (now - w->last_heard > c->lost_after) {
            snprintf(why, sizeof why, "silent for %.1f s", now - w->last_heard);
            lose_worker(c, w, why);
            return; /* that may have taken a while: hear the others again before judging */
        }
        for (int k = 0; k < w->nq; k++) {
            struct task *t = w->q[k];

            if (t->kind == DIP__TASK_OBJECT && t->mpix == 0)
                continue; /* still fetching: no deadline yet (see on_beat) */
            if (t->running && dip__now() - t->since > task_timeout(c, t)) {
                snprintf(why, sizeof why, "task over its %.0f s deadline", task_timeout(c, t));
                lose_worker(c, w, why);
                return;
            }
        }
    }
}

/* ---- Dispatch ---- */

/* Builds the TASK message of t into b; err tells why it could not (a streamed image's rows
 * failed to decode). */
static int build_task(struct coord *c, struct task *t, struct dip__buf *b, struct dip_err *err)
{
    dip__buf_u64le(b, t->id);
    dip__buf_u64le(b, c->job);
    dip__buf_u8(b, (uint8_t)t->kind);
    dip__buf_u64le(b, t->item);
    dip__buf_u32le(b, (uint32_t)t->attempts);
    if (t->kind == DIP__TASK_ITEM) {
        /* One allocation of the whole message (and room to seal it in place), not a doubling
         * series up to the image's size. */
        dip__buf_reserve(b, b->len + 8 + t->len + DIP__SEAL_OVERHEAD);
        dip__buf_u64le(b, t->len);
        dip__buf_add(b, t->bytes, t->len);
    } else if (t->kind == DIP__TASK_OBJECT) {
        dip__wire_str(b, t->in_ref);
        dip__wire_str(b, t->out_ref);
    } else {
        struct timg *im = t->img;
        struct dip_rect need = dip_plan_need(im->plan, t->step, t->rect), at = need;
        struct dip_view v, sub;
        uint8_t *px;

        if (im->dec && t->step == 0) {
            int rc = win_fill(c, im, need.y + need.h, err);

            if (rc)
                return rc;
            if (DIP_NEVER(need.y < im->win_y0)) /* rows are kept while a tile needs them */
                return dip_err_set(err, DIP_EINTERNAL, "mpi: rows %d.. of a tile were dropped",
                                   need.y);
            v = (struct dip_view){im->win, im->in_w, im->win_y1 - im->win_y0, im->in_ch,
                                  (size_t)im->in_w * (size_t)im->in_ch};
            at.y -= im->win_y0;
        } else {
            v = dip_image_view(im->cur);
        }

        dip__buf_reserve(b, b->len + 128 + im->stats_len +
                                (size_t)need.w * (size_t)need.h * (size_t)v.channels +
                                DIP__SEAL_OVERHEAD); /* as for an item */
        dip__buf_u32le(b, (uint32_t)im->in_w);
        dip__buf_u32le(b, (uint32_t)im->in_h);
        dip__buf_u32le(b, (uint32_t)im->in_ch);
        dip__buf_u32le(b, (uint32_t)t->step);
        dip__buf_u32le(b, (uint32_t)t->rect.x);
        dip__buf_u32le(b, (uint32_t)t->rect.y);
        dip__buf_u32le(b, (uint32_t)t->rect.w);
        dip__buf_u32le(b, (uint32_t)t->rect.h);
        dip__buf_u32le(b, (uint32_t)need.x);
        dip__buf_u32le(b, (uint32_t)need.y);
        dip__buf_u32le(b, (uint32_t)need.w);
        dip__buf_u32le(b, (uint32_t)need.h);
        dip__buf_u64le(b, im->stats_len);
        dip__buf_add(b, im->stats, im->stats_len);
        dip__buf_u64le(b, (uint64_t)need.w * (uint64_t)need.h * (uint64_t)v.channels);
        px = dip__buf_grow(b, (size_t)need.w * (size_t)need.h * (size_t)v.channels);
        if (px) {
            struct dip_view dst = {px, need.w, need.h, v.channels,
                                   (size_t)need.w * (size_t)v.channels};

            sub = dip_view_sub(&v, at);
            dip_view_copy(&sub, &dst);
        }
    }
    return b->failed ? DIP_ENOMEM : 0;
}

/* Loads an item's bytes; on failure the item fails at once. Returns 0 when t can be sent. */
static int load_item(struct coord *c, struct task *t)
{
    const uint8_t *data = NULL;
    size_t len = 0;
    struct dip_err err = {0};
    struct dip_image_info info;
    int rc;

    if (t->bytes)
        return 0;
    rc = c->io->load(c->io->ud, t->item, &data, &len, &err);
    if (rc == 0) {
        t->bytes = dip_malloc(len ? len : 1);
        if (!t->bytes)
            rc = DIP_ENOMEM;
        else
            memcpy(t->bytes, data, len);
        t->len = len;
        if (rc == 0 && dip_codec_probe(data, len, &c->spec->limits, &info, NULL) == 0) {
            t->mpix = (double)info.width * info.height / 1e6;
            c->prog.pixels_total += (uint64_t)info.width * (uint64_t)info.height;
        }
    }
    if (c->io->release)
        c->io->release(c->io->ud, t->item);
    if (rc) {
        fail_task(c, t, rc, dip_err_text(&err, rc));
        return rc;
    }
    return 0;
}

/* A sealed cluster: every job has its own keys, from a random job nonce sent to each worker
 * (under the keys it has) just before the job itself (seal.h). */
static int rekey(struct coord *c, struct worker *w)
{
    uint8_t *d;
    int rc;

    if (c->job_nonce_of != c->job) {
        rc = dip_random(c->job_nonce, sizeof c->job_nonce, NULL);
        if (rc)
            return rc;
        c->job_nonce_of = c->job;
    }
    d = dip_malloc(sizeof c->job_nonce);
    if (!d)
        return DIP_ENOMEM;
    memcpy(d, c->job_nonce, sizeof c->job_nonce);
    rc = send_to(c, w, DIP__MPI_REKEY, d, sizeof c->job_nonce);
    if (rc == 0)
        rc = dip__chan_rekey_tx(&w->ch, &c->key, c->job_nonce, w->nonce, (uint32_t)w->id, 1, NULL);
    if (rc == 0)
        dip__mpi_log(3, "rank %d: job %llu keys announced", w->id, (unsigned long long)c->job);
    return rc;
}

static void assign(struct coord *c, struct worker *w, struct task *t)
{
    struct dip__buf b = dip__msg_buf();
    uint8_t *msg;
    size_t len;

    if (t->kind == DIP__TASK_ITEM && load_item(c, t) != 0)
        return;
    if (w->job_sent != c->job) {
        if (c->sealed && rekey(c, w) != 0) {
            q_push(c, t, 1);
            lose_worker(c, w, "cannot send the job's keys");
            return;
        }
        if (send_copy(c, w, DIP__MPI_JOB, &c->jobmsg) != 0) {
            q_push(c, t, 1);
            lose_worker(c, w, "cannot send");
            return;
        }
        w->job_sent = c->job;
    }
    t->attempts++;
    {
        struct dip_err err = {0};
        int rc = build_task(c, t, &b, &err);

        if (rc != 0) {
            dip__buf_free(&b);
            fail_task(c, t, rc, err.msg[0] ? err.msg : "out of memory building a task");
            return;
        }
    }
    t->state = Q_RUNNING;
    t->worker = (int)(w - c->w);
    t->running = 0;
    if (t->kills > 0)
        w->isolated = 1;
    w->q[w->nq++] = t;
    msg = dip__buf_take(&b, &len);
    if (send_to(c, w, DIP__MPI_TASK, msg, len) != 0)
        lose_worker(c, w, "cannot send");
}

/* No worker left: run one task here, through the same code the workers run. */
static void run_here(struct coord *c, struct task *t)
{
    struct dip__buf b = dip__msg_buf(), res = dip__msg_buf();
    struct dip_err berr = {0};
    struct worker *self = &c->w[0];
    uint64_t id = 0;
    int rc;

    if (t->kind == DIP__TASK_ITEM && load_item(c, t) != 0)
        return;
    if (c->rn.job != c->job || !c->rn.pipe) {
        struct dip__rbuf r = {c->jobmsg.bytes, c->jobmsg.len, 0};
        struct dip_err err = {0};

        if (dip__runner_job(&c->rn, &r, &err) != 0) {
            fail_task(c, t, DIP_EINVAL, err.msg);
            return;
        }
    }
    t->attempts++;
    rc = build_task(c, t, &b, &berr);
    if (rc == 0) {
        busy_begin(c);
        rc = dip__runner_task(&c->rn, b.bytes, b.len, DIP__RUN_POOL, &id, &res);
        busy_end(c);
    }
    dip__buf_free(&b);
    if (rc || res.failed) {
        dip__buf_free(&res);
        fail_task(c, t, rc ? rc : DIP_ENOMEM,
                  berr.msg[0] ? berr.msg : "could not run the task on the coordinator");
        return;
    }
    t->state = Q_RUNNING;
    t->worker = 0;
    self->q[0] = t;
    self->nq = 1;
    on_result(c, self, res.bytes, res.len);
    dip__buf_free(&res);
}

/* Tasks worker w may hold: one per thread it computes with (its own count, capped by
 * --threads) plus two waiting, so it never idles between tasks: with one waiting, a thread that
 * finished just after another (which took the spare) idled until the refill arrived, up to a nap
 * of each loop; two cover that without the loops polling faster. */
static int credit(const struct coord *c, const struct worker *w)
{
    int t = w->threads > 0 ? w->threads : 1;

    if (c->spec && c->spec->threads > 0 && c->spec->threads < t)
        t = c->spec->threads;
    return DIP_MIN(t + 2, MAX_CREDIT);
}

static void dispatch(struct coord *c)
{
    for (size_t i = 1; i < c->nw && c->qlen; i++) {
        struct worker *w = &c->w[i];

        if (c->sealed && !w->authed)
            continue; /* its key exchange is not done */
        while (w->alive && !w->isolated && w->nq < credit(c, w) && c->qlen) {
            struct task *t = q_peek(c);

            /* A suspect task (running when a worker died) goes to an idle worker, alone. */
            if (!t || (t->kills > 0 && w->nq > 0))
                break;
            assign(c, w, q_pop(c));
        }
    }
}

/* ---- The executor ---- */

static int items_left(const struct coord *c)
{
    return c->prog.items_done < c->prog.items_total;
}

static void clear_job(struct coord *c)
{
    for (size_t i = 0; i < c->ntasks; i++) {
        dip_free(c->tasks[i]->bytes);
        dip_free(c->tasks[i]);
    }
    dip_free(c->tasks);
    c->tasks = NULL;
    c->ntasks = c->captasks = 0;
    for (size_t i = 0; i < c->nimgs; i++) {
        struct timg *im = c->imgs[i];

        dip_plan_free(im->plan);
        dip_image_unref(im->cur);
        dip_image_unref(im->nxt);
        stream_free(im);
        dip_free(im->stats);
        dip_free(im->acc);
        dip_free(im);
    }
    dip_free(c->imgs);
    c->imgs = NULL;
    c->nimgs = 0;
    dip_free(c->queue);
    c->queue = NULL;
    c->qhead = c->qlen = c->qcap = 0;
    if (c->jobmsg.bytes)
        explicit_bzero(c->jobmsg.bytes, c->jobmsg.len); /* it may carry object credentials */
    dip__buf_free(&c->jobmsg);                          /* empty again, same cap */
    /* Tasks still held by workers belong to no job now. */
    for (size_t i = 0; i < c->nw; i++)
        c->w[i].nq = 0;
}

/* Between jobs, spawned workers idle for DIP_MPI_IDLE_S seconds are let go: they leave the worker
 * loop, disconnect and finalise. Only when DIP_MPI_IDLE_S is set: by default spawned workers stay
 * until the end of the run, because the spawn that follows a release is where Debian 12's Open
 * MPI hung for ever now and then (below; 5 hangs in 501 loaded runs of tests/mpi/mpi-jobs, about
 * 1000 such spawns, none at the 582 first spawns), and a worker kept idle costs a sleeping
 * process. */
static void release_idle(struct coord *c)
{
    double idle = c->o.idle_s, now = dip__now();

    if (idle < 0)
        return;

    for (size_t i = 1; i < c->nw; i++) {
        struct worker *w = &c->w[i];
        double t0 = now;

        if (!w->spawned || !w->alive || w->nq > 0 || now - w->idle_since < idle ||
            now - w->last_heard > c->lost_after)
            continue;
        send_stop(c, w, 1);
        while (sending_to(c, i) && dip__now() - t0 < 2.0) {
            poll_sends(c);
            dip__nap(1000);
        }
        dip__mpi_log(1, "released idle worker %d", w->id);
        w->alive = 0;
        w->released = 1;
        /* The spawn rate limit guards against storms while capacity grows; after a release the
         * next job's backlog may call for a worker at once (else a job that starts within 0.5 s
         * of the last spawn runs on fewer workers than before). */
        c->last_spawn = 0;
        if (!sending_to(c, i)) {
            MPI_Comm_disconnect(&w->comm);
            /* Spawn again only once it has ended: with Debian 12's Open MPI 4.1.4 and PMIx 4.2,
             * a spawn while the released worker is still finalising hung, now and then, for
             * ever: the new process waited in PMIx_Init and rank 0 in MPI_Comm_spawn (a known
             * upstream hang, openpmix#2735; docs/cluster.md). Bounded: a worker on another
             * machine cannot be watched, and one that does not end in 5 s is not waited for. */
            dip__proc_wait_gone(&w->proc, 5.0);
        } else {
            c->any_lost = 1; /* it did not take the message: no clean finalise later */
        }
    }
}

static int coord_run(dip_executor *base, const struct dip_job_spec *spec,
                     const struct dip_job_io *io, struct dip_err *err)
{
    struct coord *c = (struct coord *)base;
    dip_pipeline *p = NULL;
    size_t live;
    int rc, small, objects;

    rc = dip_pipeline_parse(spec->pipeline, &p, err);
    dip_pipeline_free(p);
    if (rc)
        return rc;
    c->spec = spec;
    c->io = io;
    c->job++;
    c->base_id = c->next_id;
    memset(&c->prog, 0, sizeof c->prog);
    c->prog.items_total = io->n_items;
    c->t0 = dip__now();
    c->said_alone = 0;
    c->last_prog = 0;
    dip__buf_u64le(&c->jobmsg, c->job);
    dip__wire_spec(&c->jobmsg, spec);
    dip__wire_str(&c->jobmsg, spec->pipeline ? spec->pipeline : "");
    if (c->jobmsg.failed) {
        rc = DIP_ENOMEM;
        goto out;
    }
    progress(c, 1);
    poll_all(c);
    release_idle(c);
    live = live_workers(c);
    /* A batch whose inputs and outputs are objects the workers can reach: each worker gets,
     * runs and puts its items itself, and the coordinator ships references, not bytes. (A lone
     * image that may be tiled is read here, as before.) The JOB message ends with the object
     * configuration, or an empty string. */
    small = io->n_items < DIP_MAX(live, (size_t)2) && spec->pipeline && *spec->pipeline;
    objects = !small && c->o.objects && io->refs && io->object_conf && *io->object_conf;
    dip__wire_str(&c->jobmsg, objects ? io->object_conf : "");
    if (c->jobmsg.failed) {
        rc = DIP_ENOMEM;
        goto out;
    }

    /* Fewer images than workers: big ones are cut into tiles; the rest go whole. */
    for (size_t i = 0; i < io->n_items; i++) {
        struct task *t = task_new(c, DIP__TASK_ITEM, i);

        if (!t) {
            rc = DIP_ENOMEM;
            goto out;
        }
        if (objects && io->refs(io->ud, i, &t->in_ref, &t->out_ref) == 1 && t->in_ref &&
            t->out_ref) {
            t->kind = DIP__TASK_OBJECT;
        } else if (small && load_item(c, t) == 0) {
            struct dip_image_info info;

            if (dip_codec_probe(t->bytes, t->len, &spec->limits, &info, NULL) == 0 &&
                (uint64_t)info.width * (uint64_t)info.height >= c->o.tile_pixels) {
                struct timg *im = dip_calloc(1, sizeof *im);
                struct timg **n = dip_realloc(c->imgs, (c->nimgs + 1) * sizeof *n);

                if (!im || !n) {
                    dip_free(im);
                    if (n)
                        c->imgs = n;
                    rc = DIP_ENOMEM;
                    goto out;
                }
                c->imgs = n;
                c->imgs[c->nimgs++] = im;
                im->item = i;
                t->state = Q_DONE; /* replaced by the image's tiles */
                c->prog.pixels_total -= (uint64_t)info.width * (uint64_t)info.height;
                img_start(c, im, t->bytes, t->len);
                t->bytes = NULL; /* img_start owns them */
                continue;
            }
        }
        if (t->state == Q_DONE)
            continue; /* failed to load */
        c->prog.tasks_total++;
        if (q_push(c, t, 0)) {
            rc = DIP_ENOMEM;
            goto out;
        }
    }

    while (items_left(c)) {
        int moved = poll_all(c);
        double now = dip__now();

        if (io->cancel && *io->cancel) {
            for (size_t i = 0; i < c->ntasks; i++) {
                struct task *t = c->tasks[i];

                if (t->state != Q_DONE)
                    fail_task(c, t, DIP_ECANCELED, "cancelled");
            }
            break;
        }
        check_workers(c);
        live = live_workers(c);
        if (c->o.max_workers > 0 && live < (size_t)c->o.max_workers && c->spawn_failures < 3 &&
            c->qlen >= SPAWN_BACKLOG * DIP_MAX(live, (size_t)1) && now - c->last_spawn > 0.5) {
            spawn_worker(c);
            live = live_workers(c);
        }
        dispatch(c);
        if (live == 0 && c->qlen) {
            struct task *t = q_pop(c);

            if (t) {
                if (!c->said_alone)
                    dip__mpi_log(1, "no worker left: rank 0 runs the remaining tasks itself");
                c->said_alone = 1;
                run_here(c, t);
            }
            moved = 1;
        }
        progress(c, 0);
        if (now - c->last_ping >= (c->o.heartbeat_s > 0 ? c->o.heartbeat_s : 0.5)) {
            send_ping(c, 1);
            c->last_ping = now;
        }
        /* Back off while nothing happens (dip__backoff), so an idle coordinator costs little
         * CPU, a busy one answers at once, and one waiting for a send to complete does not take
         * the workers' cores (on one machine it shares them). */
        dip__nap(dip__backoff(moved, sending_to(c, SIZE_MAX)));
    }
    send_ping(c, 0);
    c->prog.elapsed_s = dip__now() - c->t0;
    progress(c, 1);
out:
    clear_job(c);
    c->spec = NULL;
    c->io = NULL;
    return rc;
}

static size_t coord_workers(dip_executor *base, struct dip_worker_stat *out, size_t max)
{
    struct coord *c = (struct coord *)base;
    size_t n = 0;

    for (size_t i = 0; i < c->nw; i++) {
        if (i == 0 && c->w[0].st.tasks == 0)
            continue; /* the coordinator only shows when it had to work */
        if (n < max)
            out[n] = c->w[i].st;
        n++;
    }
    return n;
}

static void coord_free(dip_executor *base)
{
    struct coord *c = (struct coord *)base;
    int clean;
    double t0 = dip__now();

    if (!c)
        return;
    clean = !c->any_lost;
    for (size_t i = 1; i < c->nw; i++)
        if (c->w[i].alive)
            send_stop(c, &c->w[i], clean);
    while (sending_to(c, SIZE_MAX) && dip__now() - t0 < 5.0) {
        poll_sends(c);
        dip__nap(1000);
    }
    if (sending_to(c, SIZE_MAX))
        clean = 0;
    if (c->any_lost) {
        /* A lost rank that is stopped or hung would keep mpirun waiting for ever. Signal it only
         * where it is verified to be that worker: same kernel boot and PID namespace, same start
         * time, through a pidfd (never by PID or host name alone: PIDs wrap). Lost ranks on
         * other machines are left to their own watchdog and to the launcher (dip mpirun). */
        for (size_t i = 1; i < c->nw; i++)
            if (!c->w[i].alive && !c->w[i].released && dip__proc_kill_verified(&c->w[i].proc))
                dip__mpi_log(2, "ended lost worker %d (pid %u)", c->w[i].id, c->w[i].proc.pid);
        for (size_t i = 1; i < c->nw; i++)
            if (!c->w[i].alive && !c->w[i].released)
                dip__mpi_log(1, "lost worker: rank %d on %s", c->w[i].id, c->w[i].st.host);
    }
    if (clean) {
        for (size_t i = 1; i < c->nw; i++)
            if (c->w[i].spawned && c->w[i].alive)
                MPI_Comm_disconnect(&c->w[i].comm);
        MPI_Finalize();
    }
    /* Otherwise MPI is left as it is: MPI_Finalize would wait on the dead. The process exits
     * without it, which mpirun --enable-recovery accepts. */
    dip__tx_abandon(&c->tx);
    for (size_t i = 0; i < c->nw; i++)
        dip__chan_cleanup(&c->w[i].ch);
    dip_key_wipe(&c->key);
    clear_job(c);
    dip__runner_cleanup(&c->rn);
    dip__runner_destroy(&c->rn);
    dip_pool_free(c->rn.pool);
    if (c->spawn_argv)
        for (char **a = c->spawn_argv; *a; a++)
            dip_free(*a);
    dip_free(c->spawn_argv);
    dip_free(c->exe);
    dip_free(c->w);
    dip_free(c);
}

static const struct dip_executor_vtable coord_vt = {
    .name = "mpi",
    .run = coord_run,
    .workers = coord_workers,
    .free = coord_free,
};

int dip__mpi_coord_new(const struct dip_mpi_opts *o, const struct dip_key *key, int argc,
                       char **argv, dip_executor **out, struct dip_err *err)
{
    struct coord *c = dip_calloc(1, sizeof *c);
    char exe[4096];
    ssize_t n;
    int rc = 0;

    if (!c)
        return dip_err_set(err, DIP_ENOMEM, "mpi: out of memory");
    c->base.vt = &coord_vt;
    c->o = *o;
    dip__buf_init(&c->jobmsg, DIP__MSG_MAX);
    if (key) {
        /* The session nonce: fresh keys for every worker of this coordinator (seal.h). */
        c->key = *key;
        c->sealed = 1;
        if (dip_random(c->session, sizeof c->session, err) != 0) {
            dip_key_wipe(&c->key);
            dip_free(c);
            return DIP_EIO;
        }
    }
    pthread_mutex_init(&c->busy_mu, NULL);
    pthread_cond_init(&c->busy_cv, NULL);
    if (c->o.task_timeout_s <= 0)
        c->o.task_timeout_s = 30.0;
    c->lost_after = dip__mpi_lost_after(o);
    MPI_Comm_size(MPI_COMM_WORLD, &c->world_size);
    c->next_spawn_id = c->world_size;
    gethostname(c->host, sizeof c->host - 1);
    if (!add_worker(c, 0, MPI_COMM_SELF, 0, 0)) {
        rc = DIP_ENOMEM;
        goto out;
    }
    snprintf(c->w[0].st.host, sizeof c->w[0].st.host, "%s", c->host);
    for (int r = 1; r < c->world_size; r++)
        if (!add_worker(c, r, MPI_COMM_WORLD, r, 0)) {
            rc = DIP_ENOMEM;
            goto out;
        }
    /* Spawned workers run this same program with the same arguments. */
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        c->exe = dip_strdup(exe);
    }
    c->spawn_argv = dip_calloc((size_t)(argc > 0 ? argc : 1), sizeof(char *));
    if (!c->spawn_argv) {
        rc = DIP_ENOMEM;
        goto out;
    }
    {
        /* The CLI hands its subcommand's argv ("process", ...): keep argv[0] unless it names
         * the program itself. */
        int first = 0;
        const char *b0 = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
        const char *be = c->exe ? strrchr(c->exe, '/') : NULL;

        b0 = b0 ? b0 + 1 : (argc > 0 ? argv[0] : NULL);
        be = be ? be + 1 : c->exe;
        if (b0 && be && strcmp(b0, be) == 0)
            first = 1;
        dip_free(c->spawn_argv);
        c->spawn_argv = dip_calloc((size_t)(argc > 0 ? argc + 1 : 1), sizeof(char *));
        if (!c->spawn_argv) {
            rc = DIP_ENOMEM;
            goto out;
        }
        for (int i = first; i < argc; i++)
            c->spawn_argv[i - first] = dip_strdup(argv[i]);
    }
    dip__runner_init(&c->rn);
    c->rn.objects = c->o.objects; /* run_here gets and puts objects as a worker would */
    if (dip_pool_new(0, &c->rn.pool) != 0)
        c->rn.pool = NULL;
    /* dip serve idles between jobs: tell the workers not to take the silence for a dead
     * coordinator (dip process starts its job at once, and the workers count from their start). */
    if (c->o.serve)
        send_ping(c, 0);
    dip__mpi_log(2, "coordinator on %s with %d worker rank%s", c->host, c->world_size - 1,
                 c->world_size == 2 ? "" : "s");
    {
        int local = dip__mpi_local_ranks();
        char why[96];

        if (local > 0 && local < c->world_size) {
            snprintf(why, sizeof why, "%d of %d ranks run on other hosts", c->world_size - local,
                     c->world_size);
            warn_clear(c, why);
        }
    }
    *out = &c->base;
    c = NULL;
out:
    if (c) {
        dip_key_wipe(&c->key);
        dip_free(c->w);
        dip_free(c);
        rc = dip_err_set(err, rc, "mpi: out of memory");
    }
    return rc;
}
