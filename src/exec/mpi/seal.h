/* SPDX-License-Identifier: MIT */
/* Sealing of the cluster's messages (issue 17), apart from MPI so it can be unit-tested: the key
 * exchange that derives a session's keys, and the seal/open of one message on a channel.
 *
 * A channel joins the coordinator and one worker. Its keys come from the cluster key (a 32-byte
 * key file every rank loads), a random 32-byte session nonce the coordinator announces, a random
 * 16-byte nonce the worker announces, and the worker's id, through HKDF-SHA256; each direction has
 * its own key, and each message's 96-bit GCM nonce is the direction and a 64-bit counter that
 * only grows, so no (key, nonce) pair is ever used twice, even when a rank restarts or a key
 * exchange is replayed (the worker's fresh nonce changes the keys).
 *
 * A sealed message is: ciphertext (len) | tag (16) | header (32). The header travels in clear
 * and is the associated data: "DIP1" (magic and version), kind (the MPI tag), sequence, task id,
 * length. It sits at the end so the plaintext is decrypted in place at the start of the receive
 * buffer. The receiver accepts only the next sequence number, so a replayed, reordered, dropped,
 * truncated or altered message is rejected, each with its own sentence. */
#ifndef DIP_EXEC_MPI_SEAL_H
#define DIP_EXEC_MPI_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "dip/crypto.h"

#define DIP__SEAL_HEADER   32
#define DIP__SEAL_OVERHEAD (DIP_TAG_BYTES + DIP__SEAL_HEADER)
#define DIP__SEAL_VERSION  1
#define DIP__SEAL_WINDOW   64 /* tags kept to tell a replay from a reused nonce */

#define DIP__SESSION_NONCE 32
#define DIP__WORKER_NONCE  16
/* Key exchange messages (sent in clear; they hold no secret): */
#define DIP__KEYX_WORKER 32 /* "DIPK" | version u32 | worker nonce 16 | key id 8 */
#define DIP__KEYX_COORD                                                                            \
    52 /* "DIPK" | version u32 | session nonce 32 | key id 8 | worker id u32                       \
        */

/** One direction pair between the coordinator and a worker. Zero-initialise; `tx`/`rx` are NULL
 * until dip__chan_keys(). */
struct dip__chan {
    dip_aead *tx, *rx;
    dip_aead *rx_next;       /* the next job's receive key, between dip__chan_rekey_tx and _rx */
    uint64_t tx_seq, rx_seq; /* next sequence to send / to accept */
    int tx_dir;              /* the direction this side sends (part of each nonce) */
    uint8_t seen[DIP__SEAL_WINDOW][DIP_TAG_BYTES]; /* tags of the last accepted messages */
};

/** Derives the channel's two keys. `coord` is 1 on the coordinator (it sends coordinator to
 * worker), 0 on the worker. Returns 0, DIP_ENOMEM or DIP_EINVAL. */
int dip__chan_keys(struct dip__chan *ch, const struct dip_key *key,
                   const uint8_t session[DIP__SESSION_NONCE],
                   const uint8_t worker[DIP__WORKER_NONCE], uint32_t worker_id, int coord,
                   struct dip_err *err);
/** Frees the keys (wiped) and zeroes the channel. */
void dip__chan_cleanup(struct dip__chan *ch);

/* A new job's keys, from a fresh random job nonce the coordinator announces (REKEY, sealed under
 * the current keys; the worker answers REKEY, the last message under its current keys). MPI
 * keeps each pair's messages in order, so each side switches at a known point and no message
 * carries an epoch: the coordinator switches sending right after its REKEY and receiving when the
 * answer arrives; the worker switches both when the REKEY arrives, right after its answer. */
/** Derives the job's keys (as dip__chan_keys, with the job nonce in place of the session's):
 * sending switches now (counter from 0), the receive key waits for dip__chan_rekey_rx. */
int dip__chan_rekey_tx(struct dip__chan *ch, const struct dip_key *key,
                       const uint8_t job[DIP__SESSION_NONCE],
                       const uint8_t worker[DIP__WORKER_NONCE], uint32_t worker_id, int coord,
                       struct dip_err *err);
/** Receiving switches to the key dip__chan_rekey_tx derived (counter from 0). DIP_EINTEGRITY
 * when there is none (an answer nobody asked for). */
int dip__chan_rekey_rx(struct dip__chan *ch, struct dip_err *err);

/** Seals `len` bytes at `buf` in place; `buf` holds len + DIP__SEAL_OVERHEAD bytes. `kind` is the
 * message's MPI tag and `task` its task id (0 when it has none): both authenticated. Returns 0, or
 * DIP_EINVAL when the channel has no keys or its counter is spent. */
int dip__chan_seal(struct dip__chan *ch, int kind, uint64_t task, uint8_t *buf, size_t len,
                   struct dip_err *err);
/** Opens the `len`-byte message at `buf` that arrived with MPI tag `kind`, in place: on success
 * the plaintext is the first *plain_len bytes of `buf`. On failure DIP_EINTEGRITY with a sentence
 * for each case (truncated, wrong kind, replayed, reused nonce, reordered or missing, failed
 * authentication) and nothing released: the next expected sequence stays the same. */
int dip__chan_open(struct dip__chan *ch, int kind, uint8_t *buf, size_t len, size_t *plain_len,
                   struct dip_err *err);

/** The worker's key exchange message. */
void dip__keyx_worker(uint8_t out[DIP__KEYX_WORKER], const uint8_t nonce[DIP__WORKER_NONCE],
                      const struct dip_key *key);
/** Reads a worker's key exchange: DIP_EINTEGRITY "not a key exchange" (wrong length, magic or
 * version), or "holds another cluster key (key id X, this rank's Y)". The nonce goes to `nonce`. */
int dip__keyx_read_worker(const uint8_t *msg, size_t len, const struct dip_key *key,
                          uint8_t nonce[DIP__WORKER_NONCE], struct dip_err *err);
/** The coordinator's answer, which names the worker's id. */
void dip__keyx_coord(uint8_t out[DIP__KEYX_COORD], const uint8_t session[DIP__SESSION_NONCE],
                     const struct dip_key *key, uint32_t worker_id);
/** Reads the coordinator's answer (the same errors as dip__keyx_read_worker). */
int dip__keyx_read_coord(const uint8_t *msg, size_t len, const struct dip_key *key,
                         uint8_t session[DIP__SESSION_NONCE], uint32_t *worker_id,
                         struct dip_err *err);

#endif
