/* SPDX-License-Identifier: MIT */
/* Output files of `dip process`, written by threads of their own: each file is written to a
 * temporary name, fsync'ed and renamed (dip_file_write_atomic), which waits on the disk for
 * milliseconds; done on the executor's threads, under its result lock, that wait left a core
 * idle per image. */
#ifndef DIP_CLI_WRITER_H
#define DIP_CLI_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "dip/dip.h"

typedef struct dip__writer dip__writer;

/* Called on a writer thread after each file: rc 0, or the error with its text in err. */
typedef void (*dip__writer_done_fn)(void *ud, size_t index, int rc, const struct dip_err *err);

/* Starts `threads` writer threads; at most max_bytes of copies wait at once (dip__writer_put
 * blocks beyond that). Returns 0 or DIP_ENOMEM. */
int dip__writer_new(int threads, size_t max_bytes, dip__writer_done_fn done, void *ud,
                    dip__writer **out);
/* Queues a copy of data for `path` (borrowed until the file is written) as item `index`.
 * Returns 0, or DIP_ENOMEM (then nothing was queued and done() is not called). */
int dip__writer_put(dip__writer *w, size_t index, const char *path, const uint8_t *data,
                    size_t len);
/* Waits until every queued file is written, stops the threads and frees w. NULL-safe. */
void dip__writer_free(dip__writer *w);

#endif
