/* SPDX-License-Identifier: MIT */
/* The cluster executor's transport, shared by the coordinator and the workers: every message
 * either side sends goes through dip__tx_send and every message it receives comes out of
 * dip__rx_test, so these two functions are the one place to add anything that must apply to all
 * messages (framing checks, sealing). Both are non-blocking: sends are queued and completed by
 * dip__tx_poll, a receive is started by dip__rx_probe and completed by dip__rx_test under a
 * deadline, so a peer that dies or stops mid-message never holds the caller. Only src/exec/mpi
 * includes this header (it needs <mpi.h>). */
#ifndef DIP_EXEC_MPI_TRANSPORT_H
#define DIP_EXEC_MPI_TRANSPORT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "seal.h"

struct dip__txsend;

/** Sends in flight. `owner` is the caller's tag for a destination (the coordinator uses the
 * worker's index) so it can ask whether a send to one destination is still pending. */
struct dip__tx {
    struct dip__txsend *head;
};

/** Queues `data` (taken over, dip_malloc'ed; freed once sent or on error) for `peer` in `comm`
 * with `tag`. With a channel `ch` (a cluster key is set) the message is sealed on it first, in
 * place; NULL sends it in clear (no key, or the key exchange itself). Returns 0, DIP_ENOMEM,
 * DIP_EINVAL (the channel has no keys yet: nothing is sent) or DIP_EPEER. */
int dip__tx_send(struct dip__tx *tx, MPI_Comm comm, int peer, int tag, uint8_t *data, size_t len,
                 size_t owner, struct dip__chan *ch);
/** Completes what it can. A send to a dead peer may never complete: it stays queued (its buffer
 * belongs to MPI) and is never waited for. */
void dip__tx_poll(struct dip__tx *tx);
/** At an exit without MPI_Finalize: the sends still queued belong to MPI until the process ends;
 * keeps them reachable (they are not leaks) and forgets them. */
void dip__tx_abandon(struct dip__tx *tx);
/** 1 while a send to `owner` (SIZE_MAX: to anyone `live(owner, ud)` accepts) is pending. */
int dip__tx_pending(const struct dip__tx *tx, size_t owner, int (*live)(size_t owner, void *ud),
                    void *ud);

/** One receive in progress. */
struct dip__rx {
    int active;
    MPI_Request req;
    uint8_t *buf;
    int len, tag, source;
    double t0;
};

/** When no receive is in progress: matches the next message from `source` (MPI_ANY_SOURCE
 * allowed) in `comm` and starts receiving it. Returns 1 when one was started, 0 when none waits,
 * DIP_ENOMEM / DIP_EPEER on failure. */
int dip__rx_probe(struct dip__rx *rx, MPI_Comm comm, int source);
/** Completes the receive in progress: 1 with the message in *data (dip_malloc'ed, the caller's),
 * *len and *tag; 0 while it is still arriving; -1 with `err` set when it failed or took longer
 * than `limit_s` plus 0.1 s per megabyte (DIP_EPEER; the buffer is then left to MPI: never
 * freed), or when it failed to open on channel `ch` (DIP_EINTEGRITY, the sentence says why; the
 * message is dropped). With a channel, only DIP__MPI_KEYX passes in clear (the caller checks it
 * comes when expected); NULL takes every message in clear. */
int dip__rx_test(struct dip__rx *rx, double limit_s, uint8_t **data, size_t *len, int *tag,
                 struct dip__chan *ch, struct dip_err *err);

/** Sleeps `us` microseconds (the polling loops' back-off). */
void dip__nap(long us);
/** `us` microseconds from now on CLOCK_REALTIME, for pthread_cond_timedwait. */
void dip__deadline_in_us(struct timespec *until, long us);

/** The polling loops' next nap in microseconds: short after activity (`moved`: a message was
 * handled or handed on, so the next may follow at once), else the cap at once: 1 ms while a
 * transfer is still in flight (`pending`; over TCP a large message moves only while both sides
 * poll, so it must not wait long), 2 ms when idle. Open MPI has no blocking wait with a timeout,
 * and its progress engine spins in every MPI_Test: a loop that polled every 20 us while a result
 * was on its way took a core's share from the compute threads on a shared machine, and one that
 * stepped back up from 50 us after every message (50, 100, ... 2000) woke ~16 times an image,
 * each wake-up taking a core from a compute thread when the coordinator shares the machine
 * (docs/cluster.md, "A one-worker cluster against the local executor"). */
long dip__backoff(int moved, int pending);

#endif
