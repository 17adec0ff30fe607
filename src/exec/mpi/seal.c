/* SPDX-License-Identifier: MIT */
/* Sealing of the cluster's messages: key exchange, per-direction keys, seal and open (seal.h).
 * All cryptography is the crypto module's (AES-256-GCM and HKDF-SHA256 from nettle); this file
 * chooses the nonces, the associated data and the checks, and words the errors. */
#include "seal.h"

#include <stdio.h>
#include <string.h>

#include "dip/error.h"

static const uint8_t keyx_magic[4] = {'D', 'I', 'P', 'K'};
static const uint8_t seal_magic[4] = {'D', 'I', 'P', '0' + DIP__SEAL_VERSION};

enum { DIR_C2W = 1, DIR_W2C = 2 };

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int derive(dip_aead **out, const struct dip_key *key, const uint8_t *salt, size_t salt_len,
                  int dir, uint32_t worker_id, struct dip_err *err)
{
    struct dip_key k;
    uint8_t info[32];
    int rc;

    memcpy(info, "dip cluster v1 ", 15);
    memcpy(info + 15, dir == DIR_C2W ? "c2w" : "w2c", 3);
    put32(info + 18, worker_id);
    rc = dip_hkdf_sha256(key->b, sizeof key->b, salt, salt_len, info, 22, k.b, sizeof k.b, err);
    if (rc == 0 && dip_aead_new(&k, out) != 0)
        rc = dip_err_set(err, DIP_ENOMEM, "cluster key: out of memory");
    dip_key_wipe(&k);
    return rc;
}

int dip__chan_keys(struct dip__chan *ch, const struct dip_key *key,
                   const uint8_t session[DIP__SESSION_NONCE],
                   const uint8_t worker[DIP__WORKER_NONCE], uint32_t worker_id, int coord,
                   struct dip_err *err)
{
    uint8_t salt[DIP__SESSION_NONCE + DIP__WORKER_NONCE];
    dip_aead *c2w = NULL, *w2c = NULL;
    int rc;

    dip__chan_cleanup(ch);
    memcpy(salt, session, DIP__SESSION_NONCE);
    memcpy(salt + DIP__SESSION_NONCE, worker, DIP__WORKER_NONCE);
    rc = derive(&c2w, key, salt, sizeof salt, DIR_C2W, worker_id, err);
    if (rc == 0)
        rc = derive(&w2c, key, salt, sizeof salt, DIR_W2C, worker_id, err);
    if (rc) {
        dip_aead_free(c2w);
        dip_aead_free(w2c);
        return rc;
    }
    ch->tx = coord ? c2w : w2c;
    ch->rx = coord ? w2c : c2w;
    ch->tx_dir = coord ? DIR_C2W : DIR_W2C;
    return 0;
}

void dip__chan_cleanup(struct dip__chan *ch)
{
    dip_aead_free(ch->tx);
    dip_aead_free(ch->rx);
    dip_aead_free(ch->rx_next);
    memset(ch, 0, sizeof *ch);
}

int dip__chan_rekey_tx(struct dip__chan *ch, const struct dip_key *key,
                       const uint8_t job[DIP__SESSION_NONCE],
                       const uint8_t worker[DIP__WORKER_NONCE], uint32_t worker_id, int coord,
                       struct dip_err *err)
{
    struct dip__chan next = {0};
    int rc = dip__chan_keys(&next, key, job, worker, worker_id, coord, err);

    if (rc)
        return rc;
    dip_aead_free(ch->tx);
    dip_aead_free(ch->rx_next);
    ch->tx = next.tx;
    ch->tx_seq = 0;
    ch->rx_next = next.rx;
    return 0;
}

int dip__chan_rekey_rx(struct dip__chan *ch, struct dip_err *err)
{
    if (!ch->rx_next)
        return dip_err_set(err, DIP_EINTEGRITY, "a new job's keys that were never announced");
    dip_aead_free(ch->rx);
    ch->rx = ch->rx_next;
    ch->rx_next = NULL;
    ch->rx_seq = 0;
    memset(ch->seen, 0, sizeof ch->seen);
    return 0;
}

static void nonce_of(uint8_t nonce[DIP_NONCE_BYTES], int dir, uint64_t seq)
{
    put32(nonce, (uint32_t)dir);
    put64(nonce + 4, seq);
}

int dip__chan_seal(struct dip__chan *ch, int kind, uint64_t task, uint8_t *buf, size_t len,
                   struct dip_err *err)
{
    uint8_t nonce[DIP_NONCE_BYTES], *hdr = buf + len + DIP_TAG_BYTES;

    if (!ch->tx)
        return dip_err_set(err, DIP_EINVAL, "cluster: no session key for this rank yet");
    if (ch->tx_seq == UINT64_MAX)
        return dip_err_set(err, DIP_EINVAL, "cluster: message counter spent");
    memcpy(hdr, seal_magic, 4);
    put32(hdr + 4, (uint32_t)kind);
    put64(hdr + 8, ch->tx_seq);
    put64(hdr + 16, task);
    put64(hdr + 24, (uint64_t)len);
    nonce_of(nonce, ch->tx_dir, ch->tx_seq);
    ch->tx_seq++; /* before anything is sent: a nonce is never used twice */
    dip_aead_seal(ch->tx, nonce, hdr, DIP__SEAL_HEADER, buf, len, buf);
    return 0;
}

int dip__chan_open(struct dip__chan *ch, int kind, uint8_t *buf, size_t len, size_t *plain_len,
                   struct dip_err *err)
{
    uint8_t nonce[DIP_NONCE_BYTES], hdr[DIP__SEAL_HEADER], tag[DIP_TAG_BYTES];
    uint64_t seq, n;
    uint32_t k;
    int rc;

    if (!ch->rx)
        return dip_err_set(err, DIP_EINTEGRITY,
                           "a message before the key exchange (that rank has no cluster key?)");
    if (len < DIP__SEAL_OVERHEAD)
        return dip_err_set(err, DIP_EINTEGRITY,
                           "truncated message: %zu bytes, shorter than the %d-byte seal", len,
                           DIP__SEAL_OVERHEAD);
    memcpy(hdr, buf + len - DIP__SEAL_HEADER, DIP__SEAL_HEADER);
    k = get32(hdr + 4);
    seq = get64(hdr + 8);
    n = get64(hdr + 24);
    if (memcmp(hdr, seal_magic, 4) != 0)
        return dip_err_set(err, DIP_EINTEGRITY,
                           "truncated or not sealed: no seal header at the end of its %zu bytes "
                           "(cut short, or sent in clear by a rank without the cluster key)",
                           len);
    if (n != len - DIP__SEAL_OVERHEAD)
        return dip_err_set(err, DIP_EINTEGRITY,
                           "truncated or padded message: its header says %llu bytes, it holds "
                           "%zu",
                           (unsigned long long)n, len - DIP__SEAL_OVERHEAD);
    if (k != (uint32_t)kind)
        return dip_err_set(err, DIP_EINTEGRITY, "message kind %u sealed, but it arrived as kind %d",
                           k, kind);
    if (seq < ch->rx_seq) {
        const uint8_t *got = buf + n; /* the tag follows the ciphertext */

        if (ch->rx_seq - seq > DIP__SEAL_WINDOW)
            return dip_err_set(err, DIP_EINTEGRITY,
                               "replayed message: sequence %llu, expected %llu",
                               (unsigned long long)seq, (unsigned long long)ch->rx_seq);
        if (memcmp(got, ch->seen[seq % DIP__SEAL_WINDOW], DIP_TAG_BYTES) == 0)
            return dip_err_set(err, DIP_EINTEGRITY,
                               "replayed message: sequence %llu was already received "
                               "(expected %llu)",
                               (unsigned long long)seq, (unsigned long long)ch->rx_seq);
        return dip_err_set(err, DIP_EINTEGRITY,
                           "nonce reused: sequence %llu came again with other content (expected "
                           "%llu); the sender reused a nonce, or the message is forged",
                           (unsigned long long)seq, (unsigned long long)ch->rx_seq);
    }
    if (seq > ch->rx_seq)
        return dip_err_set(err, DIP_EINTEGRITY,
                           "reordered or missing message: sequence %llu, expected %llu",
                           (unsigned long long)seq, (unsigned long long)ch->rx_seq);
    nonce_of(nonce, ch->tx_dir == DIR_C2W ? DIR_W2C : DIR_C2W, seq);
    memcpy(tag, buf + n, DIP_TAG_BYTES);
    rc = dip_aead_open(ch->rx, nonce, hdr, DIP__SEAL_HEADER, buf, (size_t)n + DIP_TAG_BYTES, buf,
                       NULL);
    if (rc)
        return dip_err_set(err, DIP_EINTEGRITY,
                           "message %llu does not authenticate: altered on the way, or sealed "
                           "with another key",
                           (unsigned long long)seq);
    memcpy(ch->seen[seq % DIP__SEAL_WINDOW], tag, DIP_TAG_BYTES);
    ch->rx_seq++;
    *plain_len = (size_t)n;
    return 0;
}

/* ---- Key exchange ---- */

void dip__keyx_worker(uint8_t out[DIP__KEYX_WORKER], const uint8_t nonce[DIP__WORKER_NONCE],
                      const struct dip_key *key)
{
    memcpy(out, keyx_magic, 4);
    put32(out + 4, DIP__SEAL_VERSION);
    memcpy(out + 8, nonce, DIP__WORKER_NONCE);
    dip_key_id_bytes(key, out + 8 + DIP__WORKER_NONCE);
}

static int keyx_check(const uint8_t *msg, size_t len, size_t want, const uint8_t *id,
                      const struct dip_key *key, struct dip_err *err)
{
    uint8_t mine[8];

    if (len != want || memcmp(msg, keyx_magic, 4) != 0 || get32(msg + 4) != DIP__SEAL_VERSION)
        return dip_err_set(err, DIP_EINTEGRITY, "not a key exchange of this version (%zu bytes)",
                           len);
    dip_key_id_bytes(key, mine);
    if (memcmp(id, mine, 8) != 0) {
        char a[DIP_KEY_ID_HEX], b[DIP_KEY_ID_HEX];

        for (int i = 0; i < 8; i++) {
            snprintf(a + 2 * i, 3, "%02x", id[i]);
            snprintf(b + 2 * i, 3, "%02x", mine[i]);
        }
        return dip_err_set(err, DIP_EINTEGRITY,
                           "it holds another cluster key (key id %s, this rank's %s)", a, b);
    }
    return 0;
}

int dip__keyx_read_worker(const uint8_t *msg, size_t len, const struct dip_key *key,
                          uint8_t nonce[DIP__WORKER_NONCE], struct dip_err *err)
{
    int rc = keyx_check(msg, len, DIP__KEYX_WORKER, msg + 8 + DIP__WORKER_NONCE, key, err);

    if (rc == 0)
        memcpy(nonce, msg + 8, DIP__WORKER_NONCE);
    return rc;
}

void dip__keyx_coord(uint8_t out[DIP__KEYX_COORD], const uint8_t session[DIP__SESSION_NONCE],
                     const struct dip_key *key, uint32_t worker_id)
{
    memcpy(out, keyx_magic, 4);
    put32(out + 4, DIP__SEAL_VERSION);
    memcpy(out + 8, session, DIP__SESSION_NONCE);
    dip_key_id_bytes(key, out + 8 + DIP__SESSION_NONCE);
    put32(out + 16 + DIP__SESSION_NONCE, worker_id);
}

int dip__keyx_read_coord(const uint8_t *msg, size_t len, const struct dip_key *key,
                         uint8_t session[DIP__SESSION_NONCE], uint32_t *worker_id,
                         struct dip_err *err)
{
    int rc = keyx_check(msg, len, DIP__KEYX_COORD, msg + 8 + DIP__SESSION_NONCE, key, err);

    if (rc == 0) {
        memcpy(session, msg + 8, DIP__SESSION_NONCE);
        *worker_id = get32(msg + 16 + DIP__SESSION_NONCE);
    }
    return rc;
}
