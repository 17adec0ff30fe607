/* SPDX-License-Identifier: MIT */
/* Speed of one core sealing and opening cluster messages (src/exec/mpi/seal.c: AES-256-GCM from
 * src/crypto), for bench/mpi/crypt.py: a tile-sized message (12 MB, a 4-megapixel RGB tile) and a
 * batch-sized one (600 KB, an encoded 1080p JPEG). Prints "SIZE seal GB/s open GB/s" lines.
 * Built by crypt.py: cc -O2 -Iinclude -Isrc bench/mpi/seal-speed.c src/exec/mpi/seal.c
 * src/crypto/crypto.c src/core/error.c src/core/alloc.c -lnettle -lgnutls */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dip/image.h"
#include "exec/mpi/seal.h"

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine may be loaded */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    static const size_t sizes[] = {12u << 20, 600u << 10};
    uint8_t sn[DIP__SESSION_NONCE] = {1}, wn[DIP__WORKER_NONCE] = {2};
    struct dip_key key;
    struct dip__chan tx = {0}, rx = {0};

    memset(key.b, 7, sizeof key.b);
    if (dip__chan_keys(&tx, &key, sn, wn, 1, 1, NULL) ||
        dip__chan_keys(&rx, &key, sn, wn, 1, 0, NULL))
        return 1;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k], pl = 0;
        int reps = (int)((512u << 20) / n);
        uint8_t *buf = malloc(n + DIP__SEAL_OVERHEAD);
        double ts = 0, to = 0, t0;

        if (!buf)
            return 1;
        memset(buf, 0x5a, n);
        for (int i = 0; i < reps; i++) {
            t0 = now();
            dip__chan_seal(&tx, 13, 0, buf, n, NULL);
            ts += now() - t0;
            t0 = now();
            if (dip__chan_open(&rx, 13, buf, n + DIP__SEAL_OVERHEAD, &pl, NULL) != 0)
                return 2;
            to += now() - t0;
        }
        printf("%zu %.2f %.2f\n", n, (double)n * reps / ts / 1e9, (double)n * reps / to / 1e9);
        free(buf);
    }
    dip__chan_cleanup(&tx);
    dip__chan_cleanup(&rx);
    return 0;
}
