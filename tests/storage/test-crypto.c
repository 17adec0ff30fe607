/* SPDX-License-Identifier: MIT */
/* Unit tests of src/crypto: published vectors for AES-256-GCM and HKDF-SHA256, every way a sealed
 * message can be refused (flipped bit, wrong key, wrong associated data, truncated, not sealed),
 * and key files (mode 0600, refused when others may read them, wrong size, never overwritten). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dip/crypto.h"
#include "dip/image.h"
#include "test.h"

#define DIP_MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

static void unhex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void key_from(uint8_t fill, struct dip_key *k)
{
    memset(k->b, fill, sizeof(k->b));
}

TEST(gcm_nist_vector)
{
    /* McGrew & Viega, "The GCM mode of operation", test case 14: AES-256, zero key, zero IV,
     * one zero block. */
    struct dip_key k;
    dip_aead *a;
    uint8_t nonce[12] = {0}, pt[16] = {0}, out[32], want[32], back[16];

    key_from(0, &k);
    unhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919", want, 32);
    ASSERT_OK(dip_aead_new(&k, &a));
    dip_aead_seal(a, nonce, NULL, 0, pt, 16, out);
    ASSERT(memcmp(out, want, 32) == 0);
    ASSERT_OK(dip_aead_open(a, nonce, NULL, 0, out, 32, back, NULL));
    ASSERT(memcmp(back, pt, 16) == 0);
    dip_aead_free(a);
}

TEST(hkdf_rfc5869_case1)
{
    uint8_t ikm[22], salt[13], info[10], okm[42], want[42];

    memset(ikm, 0x0b, sizeof(ikm));
    unhex("000102030405060708090a0b0c", salt, 13);
    unhex("f0f1f2f3f4f5f6f7f8f9", info, 10);
    unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
          want, 42);
    ASSERT_OK(dip_hkdf_sha256(ikm, 22, salt, 13, info, 10, okm, 42, NULL));
    ASSERT(memcmp(okm, want, 42) == 0);
    ASSERT_EQ_INT(dip_hkdf_sha256(ikm, 22, NULL, 0, NULL, 0, okm, 255 * 32 + 1, NULL), DIP_EINVAL);
}

/* A sealed 1000-byte message with associated data "blob-A". */
struct sealed {
    struct dip_key key;
    dip_aead *a;
    uint8_t id[8];
    uint8_t pt[1000];
    uint8_t env[1000 + DIP_ENVELOPE_OVERHEAD];
};

static void seal_one(struct sealed *s)
{
    for (size_t i = 0; i < sizeof(s->pt); i++)
        s->pt[i] = (uint8_t)(i * 7);
    key_from(0x42, &s->key);
    ASSERT_OK(dip_aead_new(&s->key, &s->a));
    dip_key_id_bytes(&s->key, s->id);
    ASSERT_OK(dip_envelope_seal(s->a, s->id, "blob-A", 6, s->pt, sizeof(s->pt), s->env, NULL));
    ASSERT(dip_envelope_is_sealed(s->env, sizeof(s->env)));
    /* The plaintext does not appear in the sealed bytes. */
    ASSERT(memmem(s->env, sizeof(s->env), s->pt + 100, 32) == NULL);
}

TEST(envelope_roundtrip_and_fresh_nonce)
{
    struct sealed s;
    uint8_t out[1000], env2[sizeof(s.env)];
    size_t n = 0;

    seal_one(&s);
    ASSERT_OK(dip_envelope_open(s.a, s.id, "blob-A", 6, s.env, sizeof(s.env), out, &n, NULL));
    ASSERT_EQ_INT(n, 1000);
    ASSERT(memcmp(out, s.pt, 1000) == 0);
    /* Sealing the same bytes again gives other bytes: a new random nonce each time. */
    ASSERT_OK(dip_envelope_seal(s.a, s.id, "blob-A", 6, s.pt, sizeof(s.pt), env2, NULL));
    ASSERT(memcmp(env2 + 16, s.env + 16, 12) != 0);
    ASSERT(memcmp(env2 + DIP_ENVELOPE_HEADER, s.env + DIP_ENVELOPE_HEADER, 1000) != 0);
    dip_aead_free(s.a);
}

TEST(flipped_bit_is_refused)
{
    struct sealed s;
    uint8_t out[1000];
    struct dip_err err = {0};
    size_t n = 7;
    /* A bit in the nonce, the header's reserved bytes, the ciphertext's first and last byte
     * and the tag. */
    const size_t where[] = {20, 30, DIP_ENVELOPE_HEADER, DIP_ENVELOPE_HEADER + 999,
                            sizeof(s.env) - 1};

    seal_one(&s);
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        s.env[where[i]] ^= 0x10;
        memset(out, 0xee, sizeof(out));
        ASSERT_EQ_INT(
            dip_envelope_open(s.a, s.id, "blob-A", 6, s.env, sizeof(s.env), out, &n, &err),
            DIP_EINTEGRITY);
        ASSERT_CONTAINS(err.msg, "authentication failed");
        ASSERT_EQ_INT(n, 0);
        /* No unauthenticated plaintext is handed out. */
        for (size_t k = 0; k < sizeof(out); k++)
            ASSERT_EQ_INT(out[k], 0);
        s.env[where[i]] ^= 0x10;
    }
    dip_aead_free(s.a);
}

TEST(wrong_key_is_refused)
{
    struct sealed s;
    struct dip_key other;
    dip_aead *b;
    uint8_t out[1000], other_id[8];
    struct dip_err err = {0};
    size_t n;

    seal_one(&s);
    key_from(0x43, &other);
    ASSERT_OK(dip_aead_new(&other, &b));
    dip_key_id_bytes(&other, other_id);
    /* The envelope names the key it was sealed with. */
    ASSERT_EQ_INT(dip_envelope_open(b, other_id, "blob-A", 6, s.env, sizeof(s.env), out, &n, &err),
                  DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "sealed with another key");
    /* Even with the key id forged, the tag refuses it. */
    ASSERT_EQ_INT(dip_envelope_open(b, s.id, "blob-A", 6, s.env, sizeof(s.env), out, &n, &err),
                  DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "authentication failed");
    dip_aead_free(b);
    dip_aead_free(s.a);
}

TEST(wrong_associated_data_is_refused)
{
    struct sealed s;
    uint8_t out[1000];
    struct dip_err err = {0};
    size_t n;

    seal_one(&s);
    /* Another blob's name: a blob copied over another one is detected. */
    ASSERT_EQ_INT(dip_envelope_open(s.a, s.id, "blob-B", 6, s.env, sizeof(s.env), out, &n, &err),
                  DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "authentication failed");
    ASSERT_EQ_INT(dip_envelope_open(s.a, s.id, NULL, 0, s.env, sizeof(s.env), out, &n, &err),
                  DIP_EINTEGRITY);
    dip_aead_free(s.a);
}

TEST(truncated_is_refused)
{
    struct sealed s;
    uint8_t out[1000];
    struct dip_err err = {0};
    size_t n;

    seal_one(&s);
    /* Shorter than header and tag. */
    ASSERT_EQ_INT(dip_envelope_open(s.a, s.id, "blob-A", 6, s.env, 40, out, &n, &err),
                  DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "truncated");
    /* Cut anywhere else: the tag no longer matches. */
    ASSERT_EQ_INT(
        dip_envelope_open(s.a, s.id, "blob-A", 6, s.env, sizeof(s.env) - 1, out, &n, &err),
        DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "authentication failed");
    ASSERT_EQ_INT(dip_aead_open(s.a, s.env + 16, NULL, 0, s.env, 15, out, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "truncated");
    /* Plain bytes are not taken for a sealed message. */
    ASSERT_EQ_INT(dip_envelope_open(s.a, s.id, "blob-A", 6, s.pt, sizeof(s.pt), out, &n, &err),
                  DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "not sealed");
    dip_aead_free(s.a);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dip_test_tmpdir(), name);
}

TEST(key_file_create_and_load)
{
    char path[512];
    struct stat sb;
    struct dip_key k1, k2;
    struct dip_err err = {0};
    char id1[DIP_KEY_ID_HEX], id2[DIP_KEY_ID_HEX];

    tmp_path(path, sizeof(path), "k1.key");
    unlink(path);
    umask(022);
    ASSERT_OK(dip_key_create(path, &err));
    ASSERT_EQ_INT(stat(path, &sb), 0);
    ASSERT_EQ_INT(sb.st_mode & 0777, 0600);
    ASSERT_EQ_INT(sb.st_size, 32);
    ASSERT_OK(dip_key_load(path, &k1, &err));
    /* Never overwritten. */
    ASSERT_EQ_INT(dip_key_create(path, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "never overwritten");
    ASSERT_OK(dip_key_load(path, &k2, &err));
    ASSERT(memcmp(k1.b, k2.b, 32) == 0);
    dip_key_id(&k1, id1);
    ASSERT_EQ_INT(strlen(id1), 16);
    /* Two keys differ, and so do their ids. */
    tmp_path(path, sizeof(path), "k2.key");
    unlink(path);
    ASSERT_OK(dip_key_create(path, &err));
    ASSERT_OK(dip_key_load(path, &k2, &err));
    ASSERT(memcmp(k1.b, k2.b, 32) != 0);
    dip_key_id(&k2, id2);
    ASSERT(strcmp(id1, id2) != 0);
    dip_key_wipe(&k1);
    for (int i = 0; i < 32; i++)
        ASSERT_EQ_INT(k1.b[i], 0);
}

TEST(key_file_refused)
{
    char path[512];
    struct dip_key k;
    struct dip_err err = {0};
    int fd;

    tmp_path(path, sizeof(path), "open.key");
    unlink(path);
    ASSERT_OK(dip_key_create(path, &err));
    ASSERT_EQ_INT(chmod(path, 0644), 0);
    ASSERT_EQ_INT(dip_key_load(path, &k, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "too open");
    ASSERT_CONTAINS(err.msg, "chmod 600");
    ASSERT_EQ_INT(chmod(path, 0620), 0);
    ASSERT_EQ_INT(dip_key_load(path, &k, &err), DIP_EINVAL);
    ASSERT_EQ_INT(chmod(path, 0400), 0);
    ASSERT_OK(dip_key_load(path, &k, &err));

    tmp_path(path, sizeof(path), "short.key");
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ASSERT(fd >= 0);
    ASSERT_EQ_INT(write(fd, "0123456789", 10), 10);
    close(fd);
    ASSERT_EQ_INT(dip_key_load(path, &k, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "holds 10 bytes");

    tmp_path(path, sizeof(path), "missing.key");
    unlink(path);
    ASSERT_EQ_INT(dip_key_load(path, &k, &err), DIP_EIO);
    ASSERT_CONTAINS(err.msg, "missing.key");
    ASSERT_EQ_INT(dip_key_load(dip_test_tmpdir(), &k, &err), DIP_EINVAL);
}

/* Reads the whole envelope from `w` in chunks of the sizes in `sizes` (cycled). */
static size_t read_all(struct dip_envelope_writer *w, uint8_t *out, size_t cap, const size_t *sizes,
                       size_t nsizes)
{
    size_t got = 0, k, i = 0;

    while ((k = dip_envelope_writer_read(w, out + got, DIP_MIN_SZ(sizes[i % nsizes], cap - got))) >
           0) {
        got += k;
        i++;
    }
    return got;
}

TEST(envelope_writer_streams_what_open_accepts)
{
    enum { LEN = 100003 };
    static uint8_t pt[LEN], env[LEN + DIP_ENVELOPE_OVERHEAD], again[sizeof(env)], back[LEN];
    static const size_t odd[] = {1, 7, 16, 100, 4096, 3, 65536};
    static const size_t big[] = {1 << 20};
    struct dip_envelope_writer w;
    struct dip_key k;
    dip_aead *a;
    uint8_t id[8];
    size_t n;

    for (size_t i = 0; i < LEN; i++)
        pt[i] = (uint8_t)(i * 131 + 7);
    key_from(0x55, &k);
    ASSERT_OK(dip_aead_new(&k, &a));
    dip_key_id_bytes(&k, id);
    ASSERT_OK(dip_envelope_writer_init(&w, a, id, "name", 4, pt, LEN, NULL));
    ASSERT_EQ_INT(read_all(&w, env, sizeof(env), odd, 7), sizeof(env));
    ASSERT_OK(dip_envelope_open(a, id, "name", 4, env, sizeof(env), back, &n, NULL));
    ASSERT_EQ_INT(n, LEN);
    ASSERT(memcmp(back, pt, LEN) == 0);
    /* Back to the start: the same bytes. */
    dip_envelope_writer_seek(&w, 0);
    ASSERT_EQ_INT(read_all(&w, again, sizeof(again), big, 1), sizeof(env));
    ASSERT(memcmp(again, env, sizeof(env)) == 0);
    /* A mark at a part boundary, a read past it, back to the mark (a retried part). */
    dip_envelope_writer_seek(&w, 65536);
    ASSERT_EQ_INT(w.pos, 65536);
    dip_envelope_writer_seek(&w, 65536); /* marks here */
    n = dip_envelope_writer_read(&w, again, 5000);
    ASSERT_EQ_INT(n, 5000);
    dip_envelope_writer_seek(&w, 65536);
    memset(again, 0, sizeof(again));
    ASSERT_EQ_INT(read_all(&w, again + 65536, sizeof(again) - 65536, odd, 7), sizeof(env) - 65536);
    ASSERT(memcmp(again + 65536, env + 65536, sizeof(env) - 65536) == 0);
    /* The tag region read twice gives the same tag. */
    dip_envelope_writer_seek(&w, sizeof(env) - 10);
    ASSERT_EQ_INT(dip_envelope_writer_read(&w, again, 100), 10);
    ASSERT(memcmp(again, env + sizeof(env) - 10, 10) == 0);
    dip_aead_free(a);
}

/* Opens `env` with the streaming reader in chunks of `chunk` bytes (a multiple of 16). */
static int read_in_chunks(dip_aead *a, const uint8_t id[8], const uint8_t *env, size_t len,
                          size_t chunk, uint8_t *out, struct dip_err *err)
{
    struct dip_envelope_reader r;
    size_t body = len - DIP_ENVELOPE_OVERHEAD;
    int rc = dip_envelope_reader_init(&r, a, id, "name", 4, env, err);

    if (rc != 0)
        return rc;
    for (size_t at = 0; at < body; at += chunk)
        dip_envelope_reader_update(&r, env + DIP_ENVELOPE_HEADER + at,
                                   body - at < chunk ? body - at : chunk, out + at);
    return dip_envelope_reader_final(&r, env + len - DIP_TAG_BYTES, err);
}

TEST(envelope_reader_opens_in_chunks_and_refuses_tampering)
{
    enum { LEN = 200001 };
    static uint8_t pt[LEN], env[LEN + DIP_ENVELOPE_OVERHEAD], back[LEN];
    struct dip_err err = {0};
    struct dip_key k, other;
    dip_aead *a, *b;
    uint8_t id[8], oid[8];
    size_t n;

    for (size_t i = 0; i < LEN; i++)
        pt[i] = (uint8_t)(i * 17 + 3);
    key_from(0x42, &k);
    key_from(0x43, &other);
    ASSERT_OK(dip_aead_new(&k, &a));
    ASSERT_OK(dip_aead_new(&other, &b));
    dip_key_id_bytes(&k, id);
    dip_key_id_bytes(&other, oid);
    ASSERT_OK(dip_envelope_seal(a, id, "name", 4, pt, LEN, env, NULL));
    ASSERT_OK(read_in_chunks(a, id, env, sizeof(env), 65536, back, NULL));
    ASSERT(memcmp(back, pt, LEN) == 0);
    ASSERT_OK(read_in_chunks(a, id, env, sizeof(env), 16, back, NULL));
    ASSERT(memcmp(back, pt, LEN) == 0);
    /* What the one-shot open accepts, and the same refusals. */
    ASSERT_OK(dip_envelope_open(a, id, "name", 4, env, sizeof(env), back, &n, NULL));
    ASSERT_EQ_INT(read_in_chunks(b, oid, env, sizeof(env), 65536, back, &err), DIP_EINTEGRITY);
    ASSERT(strstr(err.msg, "sealed with another key") != NULL);
    env[DIP_ENVELOPE_HEADER + 150000] ^= 1;
    ASSERT_EQ_INT(read_in_chunks(a, id, env, sizeof(env), 65536, back, &err), DIP_EINTEGRITY);
    ASSERT(strstr(err.msg, "authentication failed") != NULL);
    env[DIP_ENVELOPE_HEADER + 150000] ^= 1;
    env[20] ^= 1; /* the nonce, in the authenticated header */
    ASSERT_EQ_INT(read_in_chunks(a, id, env, sizeof(env), 65536, back, &err), DIP_EINTEGRITY);
    env[20] ^= 1;
    env[0] ^= 1;
    ASSERT_EQ_INT(read_in_chunks(a, id, env, sizeof(env), 65536, back, &err), DIP_EINTEGRITY);
    ASSERT(strstr(err.msg, "not sealed") != NULL);
    dip_aead_free(a);
    dip_aead_free(b);
}

TEST(hmac_sha256_rfc4231_case2)
{
    uint8_t mac[32], want[32];

    dip_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
    unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
    ASSERT(memcmp(mac, want, 32) == 0);
}

/* dip_aead_seal/open work in pieces (cache-friendly): the bytes are GCM's, the same as one pass
 * of the stream API, for a message of many pieces and an odd tail. */
TEST(seal_in_pieces_is_one_gcm_message)
{
    struct dip_key k;
    dip_aead *a;
    struct dip_aead_stream s;
    uint8_t nonce[DIP_NONCE_BYTES] = {9, 8, 7};
    size_t n = 200000 + 7;
    uint8_t *pt = dip_malloc(n), *one = dip_malloc(n + DIP_TAG_BYTES);
    uint8_t *pieces = dip_malloc(n + DIP_TAG_BYTES), *back = dip_malloc(n);

    ASSERT(pt && one && pieces && back);
    for (size_t i = 0; i < n; i++)
        pt[i] = (uint8_t)(i * 31 + (i >> 8));
    key_from(0x42, &k);
    ASSERT_OK(dip_aead_new(&k, &a));
    dip_aead_stream_init(&s, a, nonce);
    dip_aead_stream_ad(&s, "ad", 2);
    dip_aead_stream_encrypt(&s, pt, n, one);
    dip_aead_stream_tag(&s, one + n);
    dip_aead_seal(a, nonce, "ad", 2, pt, n, pieces);
    ASSERT(memcmp(one, pieces, n + DIP_TAG_BYTES) == 0);
    ASSERT_OK(dip_aead_open(a, nonce, "ad", 2, pieces, n + DIP_TAG_BYTES, back, NULL));
    ASSERT(memcmp(back, pt, n) == 0);
    pieces[150000] ^= 1;
    ASSERT_EQ_INT(dip_aead_open(a, nonce, "ad", 2, pieces, n + DIP_TAG_BYTES, back, NULL),
                  DIP_EINTEGRITY);
    dip_aead_free(a);
    dip_free(pt);
    dip_free(one);
    dip_free(pieces);
    dip_free(back);
}
