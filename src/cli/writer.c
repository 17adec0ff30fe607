/* SPDX-License-Identifier: MIT */
/* See writer.h: a queue of encoded outputs and the threads that write them. */
#include <pthread.h>
#include <string.h>

#include "writer.h"

struct wjob {
    struct wjob *next;
    size_t index, len;
    const char *path;
    uint8_t *data;
};

struct dip__writer {
    pthread_mutex_t mu;
    pthread_cond_t work;  /* a job was queued, or stop */
    pthread_cond_t space; /* bytes were written */
    struct wjob *head, *tail;
    size_t queued, max_bytes;
    int stop, nthreads;
    dip__writer_done_fn done;
    void *ud;
    pthread_t th[4];
};

static void *writer_main(void *arg)
{
    dip__writer *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct wjob *j;
        struct dip_err err = {0};
        int rc;

        while (w->head == NULL && !w->stop)
            pthread_cond_wait(&w->work, &w->mu);
        if (w->head == NULL)
            break; /* stop, and nothing left */
        j = w->head;
        w->head = j->next;
        if (w->head == NULL)
            w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        rc = dip_file_write_atomic(j->path, j->data, j->len, &err);
        w->done(w->ud, j->index, rc, &err);
        pthread_mutex_lock(&w->mu);
        w->queued -= j->len;
        pthread_cond_broadcast(&w->space);
        dip_free(j->data);
        dip_free(j);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int dip__writer_new(int threads, size_t max_bytes, dip__writer_done_fn done, void *ud,
                    dip__writer **out)
{
    dip__writer *w = dip_calloc(1, sizeof(*w));

    *out = NULL;
    if (w == NULL)
        return DIP_ENOMEM;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->space, NULL);
    w->max_bytes = max_bytes;
    w->done = done;
    w->ud = ud;
    if (threads < 1)
        threads = 1;
    if (threads > (int)(sizeof(w->th) / sizeof(w->th[0])))
        threads = (int)(sizeof(w->th) / sizeof(w->th[0]));
    for (; w->nthreads < threads; w->nthreads++)
        if (pthread_create(&w->th[w->nthreads], NULL, writer_main, w) != 0)
            break;
    if (w->nthreads == 0) {
        dip__writer_free(w);
        return DIP_ENOMEM;
    }
    *out = w;
    return 0;
}

int dip__writer_put(dip__writer *w, size_t index, const char *path, const uint8_t *data, size_t len)
{
    struct wjob *j = dip_calloc(1, sizeof(*j));
    uint8_t *copy = dip_malloc(len);

    if (j == NULL || copy == NULL) {
        dip_free(j);
        dip_free(copy);
        return DIP_ENOMEM;
    }
    memcpy(copy, data, len);
    *j = (struct wjob){.index = index, .len = len, .path = path, .data = copy};
    pthread_mutex_lock(&w->mu);
    /* Back-pressure: a slow disk holds the producers, not an unbounded queue. */
    while (w->queued > 0 && w->queued + len > w->max_bytes)
        pthread_cond_wait(&w->space, &w->mu);
    w->queued += len;
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void dip__writer_free(dip__writer *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&w->mu);
    for (int t = 0; t < w->nthreads; t++)
        pthread_join(w->th[t], NULL);
    pthread_cond_destroy(&w->space);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->mu);
    dip_free(w);
}
