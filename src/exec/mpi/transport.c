/* SPDX-License-Identifier: MIT */
/* The transport of the cluster executor (see transport.h): the send queue, the deadline receive,
 * the back-off nap and the executor's log, shared by coord.c and worker.c. */
#define _GNU_SOURCE
#include "transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "internal.h"

struct dip__txsend {
    struct dip__txsend *next;
    MPI_Request req;
    uint8_t *data;
    size_t owner;
};

/* Buffers handed to MPI for good (see dip__tx_abandon and dip__rx_test). */
static struct dip__txsend *abandoned;

int dip__mpi_log_level = 1;

void dip__mpi_log(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (level > dip__mpi_log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "dip-mpi: %s\n", line);
}

void dip__nap(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

    nanosleep(&ts, NULL);
}

void dip__deadline_in_us(struct timespec *until, long us)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_sec += us / 1000000L;
    until->tv_nsec += (us % 1000000L) * 1000L;
    while (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}

long dip__backoff(int moved, int pending)
{
    if (moved)
        return pending ? 20 : 50;
    return pending ? 1000 : 2000;
}

/* The task id a message carries: TASK and RESULT bodies start with it. */
static uint64_t task_of(int tag, const uint8_t *data, size_t len)
{
    uint64_t v = 0;

    if ((tag == DIP__MPI_TASK || tag == DIP__MPI_RESULT) && len >= 8)
        for (int i = 7; i >= 0; i--)
            v = v << 8 | data[i];
    return v;
}

/* Hands `data` to MPI and queues it; frees it when MPI refuses. */
static int post(struct dip__tx *tx, struct dip__txsend *s, MPI_Comm comm, int peer, int tag,
                uint8_t *data, size_t len, size_t owner)
{
    s->data = data;
    s->owner = owner;
    if (MPI_Isend(data, (int)len, MPI_BYTE, peer, tag, comm, &s->req) != MPI_SUCCESS) {
        dip_free(data);
        dip_free(s);
        return DIP_EPEER;
    }
    s->next = tx->head;
    tx->head = s;
    return 0;
}

#ifdef DIP_TEST_HOOKS
/* Test builds only: DIP_TEST_TAMPER=flip or =replay makes this rank alter (one bit of the
 * ciphertext, before it is posted) or send twice (after) its first sealed RESULT, as someone on
 * the network would. Called from a worker's MPI thread only. */
static void tamper(struct dip__tx *tx, MPI_Comm comm, int peer, int tag, uint8_t *data, size_t len,
                   size_t owner, int posted)
{
    static int done;
    const char *v = getenv("DIP_TEST_TAMPER");
    struct dip__txsend *s;
    uint8_t *copy;

    if (done || !v || tag != DIP__MPI_RESULT)
        return;
    if (!posted && strcmp(v, "flip") == 0) {
        done = 1;
        data[0] ^= 0x04;
    } else if (posted && strcmp(v, "replay") == 0 && (s = dip_malloc(sizeof *s)) != NULL) {
        done = 1;
        copy = dip_malloc(len);
        if (!copy) {
            dip_free(s);
            return;
        }
        memcpy(copy, data, len);
        post(tx, s, comm, peer, tag, copy, len, owner); /* goes out after the original */
    }
}
#endif

int dip__tx_send(struct dip__tx *tx, MPI_Comm comm, int peer, int tag, uint8_t *data, size_t len,
                 size_t owner, struct dip__chan *ch)
{
    struct dip__txsend *s = dip_malloc(sizeof *s);

    if (!s || len > INT32_MAX - DIP__SEAL_OVERHEAD) {
        dip_free(s);
        dip_free(data);
        return DIP_ENOMEM;
    }
    if (ch) {
        /* Sealed in place: the buffer grows by the tag and header (realloc moves large blocks
         * with mremap, not by copying). */
        uint8_t *d = ch->tx ? dip_realloc(data, len + DIP__SEAL_OVERHEAD) : NULL;

        if (!d || dip__chan_seal(ch, tag, task_of(tag, d, len), d, len, NULL) != 0) {
            dip_free(d ? d : data);
            dip_free(s);
            return ch->tx ? DIP_ENOMEM : DIP_EINVAL;
        }
        data = d;
        len += DIP__SEAL_OVERHEAD;
    }
#ifdef DIP_TEST_HOOKS
    if (ch && tag == DIP__MPI_RESULT) {
        int rc;

        tamper(tx, comm, peer, tag, data, len, owner, 0);
        rc = post(tx, s, comm, peer, tag, data, len, owner);
        if (rc == 0)
            tamper(tx, comm, peer, tag, data, len, owner, 1);
        return rc;
    }
#endif
    return post(tx, s, comm, peer, tag, data, len, owner);
}

void dip__tx_poll(struct dip__tx *tx)
{
    struct dip__txsend **pp = &tx->head;

    while (*pp) {
        struct dip__txsend *s = *pp;
        int done = 0;

        if (MPI_Test(&s->req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            done = 0; /* a dead peer: the buffer stays with MPI until exit */
        if (done) {
            *pp = s->next;
            dip_free(s->data);
            dip_free(s);
        } else {
            pp = &s->next;
        }
    }
}

void dip__tx_abandon(struct dip__tx *tx)
{
    struct dip__txsend *s = tx->head;

    while (s) {
        struct dip__txsend *next = s->next;

        s->next = abandoned;
        abandoned = s;
        s = next;
    }
    tx->head = NULL;
}

int dip__tx_pending(const struct dip__tx *tx, size_t owner, int (*live)(size_t owner, void *ud),
                    void *ud)
{
    for (const struct dip__txsend *s = tx->head; s; s = s->next)
        if (owner == SIZE_MAX ? (!live || live(s->owner, ud)) : s->owner == owner)
            return 1;
    return 0;
}

int dip__rx_probe(struct dip__rx *rx, MPI_Comm comm, int source)
{
    MPI_Message mm;
    MPI_Status st;
    int flag = 0, n = 0;

    if (rx->active)
        return 0;
    if (MPI_Improbe(source, MPI_ANY_TAG, comm, &flag, &mm, &st) != MPI_SUCCESS || !flag)
        return 0;
    MPI_Get_count(&st, MPI_BYTE, &n);
    rx->buf = dip_malloc(n > 0 ? (size_t)n : 1);
    if (!rx->buf) {
        /* Take the message anyway so the queue moves on; it is lost. */
        uint8_t sink;

        MPI_Mrecv(&sink, 0, MPI_BYTE, &mm, MPI_STATUS_IGNORE);
        return DIP_ENOMEM;
    }
    if (MPI_Imrecv(rx->buf, n, MPI_BYTE, &mm, &rx->req) != MPI_SUCCESS) {
        dip_free(rx->buf);
        rx->buf = NULL;
        return DIP_EPEER;
    }
    rx->len = n;
    rx->tag = st.MPI_TAG;
    rx->source = st.MPI_SOURCE;
    rx->t0 = dip__now();
    rx->active = 1;
    return 1;
}

int dip__rx_test(struct dip__rx *rx, double limit_s, uint8_t **data, size_t *len, int *tag,
                 struct dip__chan *ch, struct dip_err *err)
{
    int done = 0;

    if (!rx->active)
        return 0;
    if (MPI_Test(&rx->req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS ||
        (!done && dip__now() - rx->t0 > limit_s + (double)rx->len / 10e6)) {
        struct dip__txsend *keep = dip_malloc(sizeof *keep);

        rx->active = 0;
        if (keep) { /* the buffer stays with MPI: keep it reachable, never free it */
            keep->data = rx->buf;
            keep->req = rx->req;
            keep->owner = SIZE_MAX;
            keep->next = abandoned;
            abandoned = keep;
        }
        rx->buf = NULL;
        dip_err_set(err, DIP_EPEER, "a message was cut short");
        return -1;
    }
    if (!done)
        return 0;
    rx->active = 0;
    *data = rx->buf;
    *len = (size_t)rx->len;
    *tag = rx->tag;
    rx->buf = NULL;
    if (ch && rx->tag != DIP__MPI_KEYX) {
        size_t n = 0;

        if (dip__chan_open(ch, rx->tag, *data, *len, &n, err) != 0) {
            dip_free(*data);
            *data = NULL;
            *len = 0;
            return -1;
        }
        *len = n;
    }
    return 1;
}
