/* SPDX-License-Identifier: MIT */
/* Unit tests of the cluster's message sealing (src/exec/mpi/seal.c): a coordinator and a worker
 * channel built by the key exchange, as the two ranks build them, and every way a message must be
 * refused: a flipped bit, a replayed message, a swapped pair, a truncated message, a wrong key, a
 * nonce reused by a buggy sender, a message of another kind. Each gets its own sentence, and the
 * channel still takes the next genuine message afterwards. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "dip/crypto.h"
#include "dip/error.h"
#include "dip/image.h"
#include "exec/mpi/seal.h"
#include "test.h"

enum { KIND_TASK = 13, KIND_RESULT = 14 };

struct pair {
    struct dip_key key;
    struct dip__chan coord, worker;
};

static void key_fill(struct dip_key *k, uint8_t v)
{
    memset(k->b, v, sizeof k->b);
}

/* The key exchange, as worker.c and coord.c run it, with `wkey` on the worker. Returns the
 * coordinator's verdict on the worker's message. */
static int handshake(struct pair *p, const struct dip_key *ckey, const struct dip_key *wkey,
                     struct dip_err *err)
{
    uint8_t wn[DIP__WORKER_NONCE], sn[DIP__SESSION_NONCE], got[DIP__WORKER_NONCE];
    uint8_t wmsg[DIP__KEYX_WORKER], cmsg[DIP__KEYX_COORD], session[DIP__SESSION_NONCE];
    uint32_t id = 0;
    int rc;

    memset(&p->coord, 0, sizeof p->coord);
    memset(&p->worker, 0, sizeof p->worker);
    ASSERT_OK(dip_random(wn, sizeof wn, NULL));
    ASSERT_OK(dip_random(sn, sizeof sn, NULL));
    dip__keyx_worker(wmsg, wn, wkey);
    rc = dip__keyx_read_worker(wmsg, sizeof wmsg, ckey, got, err);
    if (rc)
        return rc;
    ASSERT_OK(dip__chan_keys(&p->coord, ckey, sn, got, 7, 1, NULL));
    dip__keyx_coord(cmsg, sn, ckey, 7);
    ASSERT_OK(dip__keyx_read_coord(cmsg, sizeof cmsg, wkey, session, &id, NULL));
    ASSERT_EQ_INT(id, 7);
    ASSERT_OK(dip__chan_keys(&p->worker, wkey, session, wn, id, 0, NULL));
    return 0;
}

static void pair_cleanup(struct pair *p)
{
    dip__chan_cleanup(&p->coord);
    dip__chan_cleanup(&p->worker);
}

/* A sealed copy of `text` (as a TASK whose first 8 bytes are its id). */
static uint8_t *seal_text(struct dip__chan *ch, int kind, const char *text, size_t *len)
{
    size_t n = strlen(text);
    uint8_t *b = dip_malloc(n + DIP__SEAL_OVERHEAD);

    ASSERT(b != NULL);
    memcpy(b, text, n);
    ASSERT_OK(dip__chan_seal(ch, kind, 42, b, n, NULL));
    *len = n + DIP__SEAL_OVERHEAD;
    return b;
}

/* Opens a copy of a sealed message; returns the code and leaves the sentence in err. */
static int open_copy(struct dip__chan *ch, int kind, const uint8_t *msg, size_t len, char *out,
                     struct dip_err *err)
{
    uint8_t *b = dip_malloc(len ? len : 1);
    size_t n = 0;
    int rc;

    ASSERT(b != NULL);
    memcpy(b, msg, len);
    dip_err_clear(err);
    rc = dip__chan_open(ch, kind, b, len, &n, err);
    if (rc == 0 && out) {
        memcpy(out, b, n);
        out[n] = '\0';
    }
    dip_free(b);
    return rc;
}

TEST(round_trip_both_directions)
{
    struct pair p = {0};
    struct dip_err err = {0};
    char out[256];
    const char *msgs[] = {"tile of rows 0..511", "tile of rows 512..1023", "", "result"};

    ASSERT_OK(handshake(&p, &p.key, &p.key, &err));
    for (size_t i = 0; i < 4; i++) {
        size_t len;
        uint8_t *m = seal_text(&p.coord, KIND_TASK, msgs[i], &len);

        /* the plaintext is nowhere in what crosses the network */
        if (strlen(msgs[i]) > 4)
            ASSERT(memmem(m, len, msgs[i], strlen(msgs[i])) == NULL);
        ASSERT_OK(open_copy(&p.worker, KIND_TASK, m, len, out, &err));
        ASSERT_EQ_STR(out, msgs[i]);
        dip_free(m);
        m = seal_text(&p.worker, KIND_RESULT, msgs[i], &len);
        ASSERT_OK(open_copy(&p.coord, KIND_RESULT, m, len, out, &err));
        ASSERT_EQ_STR(out, msgs[i]);
        dip_free(m);
    }
    pair_cleanup(&p);
}

TEST(directions_have_their_own_keys)
{
    struct pair p = {0};
    struct dip_err err = {0};
    size_t len;
    uint8_t *m;

    ASSERT_OK(handshake(&p, &p.key, &p.key, &err));
    /* A message the coordinator sent, reflected back to it as if the worker had sent it. */
    m = seal_text(&p.coord, KIND_RESULT, "reflected", &len);
    ASSERT_EQ_INT(open_copy(&p.coord, KIND_RESULT, m, len, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "does not authenticate");
    dip_free(m);
    pair_cleanup(&p);
}

TEST(flipped_bit)
{
    struct pair p = {0};
    struct dip_err err = {0};
    char out[64];
    size_t len;
    uint8_t *m;

    ASSERT_OK(handshake(&p, &p.key, &p.key, &err));
    m = seal_text(&p.coord, KIND_TASK, "pixels of a tile", &len);
    m[3] ^= 0x10; /* ciphertext */
    ASSERT_EQ_INT(open_copy(&p.worker, KIND_TASK, m, len, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "message 0 does not authenticate: altered on the way");
    m[3] ^= 0x10;
    m[len - DIP__SEAL_OVERHEAD + 2] ^= 1; /* tag */
    ASSERT_EQ_INT(open_copy(&p.worker, KIND_TASK, m, len, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "does not authenticate");
    m[len - DIP__SEAL_OVERHEAD + 2] ^= 1;
    m[len - 16] ^= 1; /* the task id in the header (associated data) */
    ASSERT_EQ_INT(open_copy(&p.worker, KIND_TASK, m, len, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "does not authenticate");
    m[len - 16] ^= 1;
    /* nothing was accepted: the genuine message still opens */
    ASSERT_OK(open_copy(&p.worker, KIND_TASK, m, len, out, &err));
    ASSERT_EQ_STR(out, "pixels of a tile");
    dip_free(m);
    pair_cleanup(&p);
}

TEST(replayed_message)
{
    struct pair p = {0};
    struct dip_err err = {0};
    size_t len, len2;
    uint8_t *m, *m2;

    ASSERT_OK(handshake(&p, &p.key, &p.key, &err));
    m = seal_text(&p.worker, KIND_RESULT, "result of task 42", &len);
    ASSERT_OK(open_copy(&p.coord, KIND_RESULT, m, len, NULL, &err));
    ASSERT_EQ_INT(open_copy(&p.coord, KIND_RESULT, m, len, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "replayed message: sequence 0 was already received (expected 1)");
    /* the replay did not disturb the channel */
    m2 = seal_text(&p.worker, KIND_RESULT, "next", &len2);
    ASSERT_OK(open_copy(&p.coord, KIND_RESULT, m2, len2, NULL, &err));
    dip_free(m);
    dip_free(m2);
    pair_cleanup(&p);
}

TEST(swapped_pair)
{
    struct pair p = {0};
    struct dip_err err = {0};
    char out[64];
    size_t l0, l1;
    uint8_t *m0, *m1;

    ASSERT_OK(handshake(&p, &p.key, &p.key, &err));
    m0 = seal_text(&p.coord, KIND_TASK, "first", &l0);
    m1 = seal_text(&p.coord, KIND_TASK, "second", &l1);
    ASSERT_EQ_INT(open_copy(&p.worker, KIND_TASK, m1, l1, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "reordered or missing message: sequence 1, expected 0");
    ASSERT_OK(open_copy(&p.worker, KIND_TASK, m0, l0, out, &err));
    ASSERT_EQ_STR(out, "first");
    ASSERT_OK(open_copy(&p.worker, KIND_TASK, m1, l1, out, &err));
    ASSERT_EQ_STR(out, "second");
    dip_free(m0);
    dip_free(m1);
    pair_cleanup(&p);
}

TEST(truncated_message)
{
    struct pair p = {0};
    struct dip_err err = {0};
    size_t len;
    uint8_t *m;

    ASSERT_OK(handshake(&p, &p.key, &p.key, &err));
    m = seal_text(&p.coord, KIND_TASK, "encoded bytes of an image", &len);
    /* cut at the end */
    ASSERT_EQ_INT(open_copy(&p.worker, KIND_TASK, m, len - 1, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "truncated or not sealed");
    /* cut in the middle, header kept */
    {
        uint8_t cut[256];
        size_t n = len - DIP__SEAL_OVERHEAD;

        memcpy(cut, m, n - 5);
        memcpy(cut + n - 5, m + n, DIP__SEAL_OVERHEAD);
        ASSERT_EQ_INT(open_copy(&p.worker, KIND_TASK, cut, len - 5, NULL, &err), DIP_EINTEGRITY);
        ASSERT_CONTAINS(err.msg, "truncated or padded message: its header says 25 bytes, it "
                                 "holds 20");
    }
    /* shorter than the seal itself */
    ASSERT_EQ_INT(open_copy(&p.worker, KIND_TASK, m, 20, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "truncated message: 20 bytes");
    ASSERT_OK(open_copy(&p.worker, KIND_TASK, m, len, NULL, &err));
    dip_free(m);
    pair_cleanup(&p);
}

TEST(wrong_key)
{
    struct pair p = {0};
    struct dip_key other;
    struct dip_err err = {0};
    size_t len;
    uint8_t *m;

    key_fill(&other, 0x5a);
    key_fill(&p.key, 0x11);
    /* The key exchange names both fingerprints. */
    ASSERT_EQ_INT(handshake(&p, &p.key, &other, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "it holds another cluster key (key id ");
    ASSERT_CONTAINS(err.msg, ", this rank's ");
    /* A rank that skips the check (or forges the key id) still cannot produce an accepted
     * message: keys derived from another cluster key fail authentication. */
    {
        uint8_t sn[DIP__SESSION_NONCE] = {1}, wn[DIP__WORKER_NONCE] = {2};
        struct dip__chan c = {0}, w = {0};

        ASSERT_OK(dip__chan_keys(&c, &p.key, sn, wn, 3, 1, NULL));
        ASSERT_OK(dip__chan_keys(&w, &other, sn, wn, 3, 0, NULL));
        m = seal_text(&w, KIND_RESULT, "forged result", &len);
        ASSERT_EQ_INT(open_copy(&c, KIND_RESULT, m, len, NULL, &err), DIP_EINTEGRITY);
        ASSERT_CONTAINS(err.msg, "message 0 does not authenticate: altered on the way, or sealed "
                                 "with another key");
        dip_free(m);
        dip__chan_cleanup(&c);
        dip__chan_cleanup(&w);
    }
    dip_key_wipe(&other);
}

TEST(nonce_reused_by_a_buggy_sender)
{
    struct pair p = {0};
    struct dip_err err = {0};
    size_t l0, l1;
    uint8_t *m0, *m1;

    ASSERT_OK(handshake(&p, &p.key, &p.key, &err));
    m0 = seal_text(&p.worker, KIND_RESULT, "result A", &l0);
    p.worker.tx_seq--; /* the bug: the counter goes back, the next message reuses nonce 0 */
    m1 = seal_text(&p.worker, KIND_RESULT, "result B", &l1);
    ASSERT_OK(open_copy(&p.coord, KIND_RESULT, m0, l0, NULL, &err));
    ASSERT_EQ_INT(open_copy(&p.coord, KIND_RESULT, m1, l1, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "nonce reused: sequence 0 came again with other content");
    dip_free(m0);
    dip_free(m1);
    pair_cleanup(&p);
}

TEST(kind_is_authenticated)
{
    struct pair p = {0};
    struct dip_err err = {0};
    size_t len;
    uint8_t *m;

    ASSERT_OK(handshake(&p, &p.key, &p.key, &err));
    m = seal_text(&p.coord, KIND_TASK, "a task", &len);
    /* delivered under another MPI tag */
    ASSERT_EQ_INT(open_copy(&p.worker, KIND_RESULT, m, len, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "message kind 13 sealed, but it arrived as kind 14");
    /* the kind field rewritten to match the tag: the associated data no longer authenticates */
    m[len - DIP__SEAL_HEADER + 4] = KIND_RESULT;
    ASSERT_EQ_INT(open_copy(&p.worker, KIND_RESULT, m, len, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "does not authenticate");
    dip_free(m);
    pair_cleanup(&p);
}

TEST(clear_message_and_no_keys)
{
    struct dip__chan none = {0};
    struct pair p = {0};
    struct dip_err err = {0};
    uint8_t clear[80] = "a message in clear, from a rank without --cluster-key";
    uint8_t buf[16 + DIP__SEAL_OVERHEAD];

    ASSERT_EQ_INT(open_copy(&none, KIND_TASK, clear, sizeof clear, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "before the key exchange");
    ASSERT_EQ_INT(dip__chan_seal(&none, KIND_TASK, 0, buf, 16, &err), DIP_EINVAL);
    ASSERT_OK(handshake(&p, &p.key, &p.key, &err));
    ASSERT_EQ_INT(open_copy(&p.worker, KIND_TASK, clear, sizeof clear, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "truncated or not sealed");
    pair_cleanup(&p);
}

TEST(every_exchange_gives_new_keys)
{
    struct pair a = {0}, b = {0};
    struct dip_err err = {0};
    size_t la, lb;
    uint8_t *ma, *mb;

    /* The same key, the same worker id and the same first sequence number: a worker's fresh
     * nonce still gives other keys, so a restarted worker never reuses a (key, nonce) pair. */
    ASSERT_OK(handshake(&a, &a.key, &a.key, &err));
    ASSERT_OK(handshake(&b, &b.key, &b.key, &err));
    ma = seal_text(&a.worker, KIND_RESULT, "same plaintext", &la);
    mb = seal_text(&b.worker, KIND_RESULT, "same plaintext", &lb);
    ASSERT_EQ_INT(la, lb);
    ASSERT(memcmp(ma, mb, la - DIP__SEAL_HEADER) != 0);
    ASSERT_EQ_INT(open_copy(&b.coord, KIND_RESULT, ma, la, NULL, &err), DIP_EINTEGRITY);
    dip_free(ma);
    dip_free(mb);
    pair_cleanup(&a);
    pair_cleanup(&b);
}

TEST(every_job_has_its_own_keys)
{
    struct pair p = {0};
    struct dip_err err = {0};
    uint8_t job[DIP__SESSION_NONCE], wn[DIP__WORKER_NONCE] = {0};
    char out[64];
    size_t l0, l1, l2, l3, l4;
    uint8_t *old_task, *rekey, *ack, *task, *result;

    /* The handshake's worker nonce is random; the test's rekey uses its own on both sides. */
    ASSERT_OK(handshake(&p, &p.key, &p.key, &err));
    ASSERT_OK(dip_random(job, sizeof job, NULL));
    old_task = seal_text(&p.coord, KIND_TASK, "task of job 1", &l0);
    ASSERT_OK(open_copy(&p.worker, KIND_TASK, old_task, l0, NULL, &err));
    /* coordinator: REKEY under the current keys, then it sends under the job's keys */
    rekey = seal_text(&p.coord, 19, "nonce", &l1);
    ASSERT_OK(dip__chan_rekey_tx(&p.coord, &p.key, job, wn, 7, 1, NULL));
    task = seal_text(&p.coord, KIND_TASK, "task of job 2", &l3);
    /* worker: opens REKEY, answers under its current keys, then switches both ways */
    ASSERT_OK(open_copy(&p.worker, 19, rekey, l1, NULL, &err));
    ack = seal_text(&p.worker, 19, "", &l2);
    ASSERT_OK(dip__chan_rekey_tx(&p.worker, &p.key, job, wn, 7, 0, NULL));
    ASSERT_OK(dip__chan_rekey_rx(&p.worker, NULL));
    result = seal_text(&p.worker, KIND_RESULT, "result of job 2", &l4);
    /* job 1's first task, replayed into job 2 where sequence 0 is expected: refused */
    ASSERT_EQ_INT(open_copy(&p.worker, KIND_TASK, old_task, l0, NULL, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "does not authenticate");
    ASSERT_OK(open_copy(&p.worker, KIND_TASK, task, l3, out, &err));
    ASSERT_EQ_STR(out, "task of job 2");
    /* coordinator: the answer opens under the old keys, then it receives under the new */
    ASSERT_OK(open_copy(&p.coord, 19, ack, l2, NULL, &err));
    ASSERT_OK(dip__chan_rekey_rx(&p.coord, NULL));
    ASSERT_OK(open_copy(&p.coord, KIND_RESULT, result, l4, out, &err));
    ASSERT_EQ_STR(out, "result of job 2");
    /* an answer nobody asked for */
    ASSERT_EQ_INT(dip__chan_rekey_rx(&p.coord, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "never announced");
    dip_free(old_task);
    dip_free(rekey);
    dip_free(ack);
    dip_free(task);
    dip_free(result);
    pair_cleanup(&p);
}
