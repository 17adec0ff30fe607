/* SPDX-License-Identifier: MIT */
/* AES-256-GCM, HKDF-SHA256, random bytes and key files on nettle (include/dip/crypto.h). The only
 * file of dip that includes nettle: the store seals blobs with it and the cluster executor seals
 * messages with it. Nothing here invents cryptography; it chooses nettle's primitives, checks
 * lengths, and words the errors. A context holds the expanded AES key and the GHASH key, which
 * seal and open only read, so one context serves every thread; the per-message GCM state lives on
 * the caller's stack. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/aes.h>
#include <nettle/gcm.h>
#include <nettle/hkdf.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/version.h>

#include "dip/crypto.h"
#include "dip/image.h"

struct dip_aead {
    struct aes256_ctx aes;
    struct gcm_key gkey;
    uint8_t key[DIP_KEY_BYTES]; /* for GnuTLS's one-shot path; wiped with the context */
};

static const uint8_t envelope_magic[8] = {'D', 'I', 'P', 'S', 'E', 'A', 'L', '1'};

const char *dip_crypto_version(void)
{
    static char buf[64];

    snprintf(buf, sizeof(buf), "nettle %d.%d, GnuTLS %s", nettle_version_major(),
             nettle_version_minor(), gnutls_check_version(NULL));
    return buf;
}

int dip_random(void *buf, size_t len, struct dip_err *err)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t r = getrandom(p, len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return dip_err_set(err, DIP_EIO, "crypto: getrandom: %s", strerror(errno));
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* ---- Key files ---- */

int dip_key_create(const char *path, struct dip_err *err)
{
    struct dip_key key;
    int fd, rc = 0;

    rc = dip_random(key.b, sizeof(key.b), err);
    if (rc != 0)
        return rc;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = dip_err_set(err, errno == EEXIST ? DIP_EINVAL : DIP_EIO, "key file %s: %s%s", path,
                         strerror(errno),
                         errno == EEXIST ? " (an existing key is never overwritten)" : "");
        goto out;
    }
    /* The umask may have cleared bits, never added them; set 0600 exactly anyway. */
    if (fchmod(fd, 0600) != 0 || write(fd, key.b, sizeof(key.b)) != (ssize_t)sizeof(key.b) ||
        fsync(fd) != 0) {
        rc = dip_err_set(err, DIP_EIO, "key file %s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        goto out;
    }
    if (close(fd) != 0) {
        rc = dip_err_set(err, DIP_EIO, "key file %s: cannot write: %s", path, strerror(errno));
        unlink(path);
    }
out:
    dip_key_wipe(&key);
    return rc;
}

int dip_key_load(const char *path, struct dip_key *key, struct dip_err *err)
{
    struct stat sb;
    uint8_t buf[DIP_KEY_BYTES + 1];
    ssize_t got = 0;
    int fd, rc = 0;

    memset(key, 0, sizeof(*key));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dip_err_set(err, DIP_EIO, "key file %s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0) {
        rc = dip_err_set(err, DIP_EIO, "key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = dip_err_set(err, DIP_EINVAL, "key file %s: not a regular file", path);
        goto out;
    }
    if ((sb.st_mode & 077) != 0) {
        rc = dip_err_set(err, DIP_EINVAL,
                         "key file %s: permissions %04o are too open (group or others may read "
                         "or write it); run: chmod 600 %s",
                         path, (unsigned)(sb.st_mode & 07777), path);
        goto out;
    }
    while ((size_t)got < sizeof(buf)) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - (size_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = dip_err_set(err, DIP_EIO, "key file %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += r;
    }
    if (got != DIP_KEY_BYTES) {
        if (got > DIP_KEY_BYTES)
            rc = dip_err_set(err, DIP_EINVAL,
                             "key file %s: holds more than %d bytes; a key is exactly %d random "
                             "bytes (dip key create FILE)",
                             path, DIP_KEY_BYTES, DIP_KEY_BYTES);
        else
            rc = dip_err_set(err, DIP_EINVAL,
                             "key file %s: holds %zd bytes; a key is exactly %d random bytes "
                             "(dip key create FILE)",
                             path, got, DIP_KEY_BYTES);
        goto out;
    }
    memcpy(key->b, buf, DIP_KEY_BYTES);
out:
    explicit_bzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

void dip_key_wipe(struct dip_key *key)
{
    if (key != NULL)
        explicit_bzero(key->b, sizeof(key->b));
}

void dip_key_id_bytes(const struct dip_key *key, uint8_t id[8])
{
    static const char label[] = "dip key id v1";

    (void)dip_hkdf_sha256(key->b, sizeof(key->b), NULL, 0, label, sizeof(label) - 1, id, 8, NULL);
}

void dip_key_id(const struct dip_key *key, char hex[DIP_KEY_ID_HEX])
{
    uint8_t id[8];

    dip_key_id_bytes(key, id);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
}

/* ---- HKDF ---- */

int dip_hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
                    const void *info, size_t info_len, void *out, size_t out_len,
                    struct dip_err *err)
{
    struct hmac_sha256_ctx mac;
    uint8_t prk[SHA256_DIGEST_SIZE];

    if (out_len > 255 * SHA256_DIGEST_SIZE)
        return dip_err_set(err, DIP_EINVAL, "crypto: HKDF output of %zu bytes > %d", out_len,
                           255 * SHA256_DIGEST_SIZE);
    /* RFC 5869: a missing salt is HashLen zeros, which HMAC's zero padding makes equal to the
     * empty key. */
    hmac_sha256_set_key(&mac, salt_len, salt_len ? salt : (const uint8_t *)"");
    hkdf_extract(&mac, (nettle_hash_update_func *)hmac_sha256_update,
                 (nettle_hash_digest_func *)hmac_sha256_digest, SHA256_DIGEST_SIZE, ikm_len, ikm,
                 prk);
    hmac_sha256_set_key(&mac, sizeof(prk), prk);
    hkdf_expand(&mac, (nettle_hash_update_func *)hmac_sha256_update,
                (nettle_hash_digest_func *)hmac_sha256_digest, SHA256_DIGEST_SIZE, info_len, info,
                out_len, out);
    explicit_bzero(prk, sizeof(prk));
    explicit_bzero(&mac, sizeof(mac));
    return 0;
}

/* ---- AEAD ---- */

int dip_aead_new(const struct dip_key *key, dip_aead **out)
{
    dip_aead *a = dip_calloc(1, sizeof(*a));

    *out = NULL;
    if (a == NULL)
        return DIP_ENOMEM;
    aes256_set_encrypt_key(&a->aes, key->b);
    gcm_set_key(&a->gkey, &a->aes, (nettle_cipher_func *)aes256_encrypt);
    memcpy(a->key, key->b, DIP_KEY_BYTES);
    *out = a;
    return 0;
}

void dip_aead_free(dip_aead *a)
{
    if (a == NULL)
        return;
    explicit_bzero(a, sizeof(*a));
    dip_free(a);
}

/* nettle's gcm_encrypt/decrypt make two passes over their whole input (counter mode, then
 * GHASH); in pieces of this size the second pass reads from cache, not memory, which makes a
 * 12 MB message about 1.5x faster. A multiple of 16, as GCM requires of all pieces but the last. */
#define GCM_PIECE (32u << 10)

/* One-shot seal and open go through GnuTLS: on x86-64 its AES-GCM (AES-NI and PCLMUL code, the
 * two interleaved) runs at about 4 GB/s per core, 2-2.5x nettle's 3.8 (measured by
 * bench/mpi/seal-speed.c), which matters for the cluster's messages. The bytes are the same
 * AES-256-GCM (tests/storage/test-crypto.c checks them against nettle's stream). A handle is
 * made per call (a quarter of a microsecond), so one dip_aead still serves many threads; if GnuTLS
 * refuses (no such cipher, out of memory), nettle does the work. */
static gnutls_aead_cipher_hd_t fast_handle(const dip_aead *a)
{
    gnutls_datum_t k = {(unsigned char *)(uintptr_t)a->key, DIP_KEY_BYTES}; /* read only */
    gnutls_aead_cipher_hd_t h;

    return gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &k) < 0 ? NULL : h;
}

void dip_aead_seal(const dip_aead *a, const uint8_t nonce[DIP_NONCE_BYTES], const void *ad,
                   size_t ad_len, const void *in, size_t len, uint8_t *out)
{
    struct gcm_ctx ctx;
    gnutls_aead_cipher_hd_t h = fast_handle(a);

    if (out != in)
        memmove(out, in, len);
    in = out; /* sealed in place from here */
    if (h) {
        giovec_t av = {(void *)(uintptr_t)ad, ad_len}, v = {out, len};
        size_t tl = DIP_TAG_BYTES;
        int rc = gnutls_aead_cipher_encryptv2(h, nonce, DIP_NONCE_BYTES, &av, ad_len ? 1 : 0, &v,
                                              len ? 1 : 0, out + len, &tl);

        gnutls_aead_cipher_deinit(h);
        if (rc < 0 || tl != DIP_TAG_BYTES)
            explicit_bzero(out, len + DIP_TAG_BYTES); /* never seen to happen: nothing leaks,
                                                       * and the receiver refuses the message */
        return;
    }
    gcm_set_iv(&ctx, &a->gkey, DIP_NONCE_BYTES, nonce);
    if (ad_len > 0)
        gcm_update(&ctx, &a->gkey, ad_len, ad);
    for (size_t off = 0, n; off < len; off += n) {
        n = len - off < GCM_PIECE ? len - off : GCM_PIECE;
        gcm_encrypt(&ctx, &a->gkey, &a->aes, (nettle_cipher_func *)aes256_encrypt, n, out + off,
                    (const uint8_t *)in + off);
    }
    gcm_digest(&ctx, &a->gkey, &a->aes, (nettle_cipher_func *)aes256_encrypt, DIP_TAG_BYTES,
               out + len);
}

int dip_aead_open(const dip_aead *a, const uint8_t nonce[DIP_NONCE_BYTES], const void *ad,
                  size_t ad_len, const void *in, size_t len, uint8_t *out, struct dip_err *err)
{
    struct gcm_ctx ctx;
    uint8_t tag[DIP_TAG_BYTES], want[DIP_TAG_BYTES];
    gnutls_aead_cipher_hd_t h;
    size_t n;

    if (len < DIP_TAG_BYTES)
        return dip_err_set(err, DIP_EINTEGRITY,
                           "truncated: %zu bytes, shorter than the %d-byte tag", len,
                           DIP_TAG_BYTES);
    n = len - DIP_TAG_BYTES;
    /* Keep the received tag: `out` may overlap `in`, and decryption writes over it. */
    memcpy(want, (const uint8_t *)in + n, DIP_TAG_BYTES);
    h = fast_handle(a);
    if (h) {
        giovec_t av = {(void *)(uintptr_t)ad, ad_len}, v = {out, n};
        int rc;

        if (out != in)
            memmove(out, in, n);
        rc = gnutls_aead_cipher_decryptv2(h, nonce, DIP_NONCE_BYTES, &av, ad_len ? 1 : 0, &v,
                                          n ? 1 : 0, want, DIP_TAG_BYTES);
        gnutls_aead_cipher_deinit(h);
        if (rc < 0) {
            explicit_bzero(out, n); /* never hand out unauthenticated plaintext */
            return dip_err_set(err, DIP_EINTEGRITY,
                               "authentication failed: the data was altered, or it was sealed "
                               "with another key or other associated data");
        }
        return 0;
    }
    gcm_set_iv(&ctx, &a->gkey, DIP_NONCE_BYTES, nonce);
    if (ad_len > 0)
        gcm_update(&ctx, &a->gkey, ad_len, ad);
    for (size_t off = 0, k; off < n; off += k) {
        k = n - off < GCM_PIECE ? n - off : GCM_PIECE;
        gcm_decrypt(&ctx, &a->gkey, &a->aes, (nettle_cipher_func *)aes256_encrypt, k, out + off,
                    (const uint8_t *)in + off);
    }
    gcm_digest(&ctx, &a->gkey, &a->aes, (nettle_cipher_func *)aes256_encrypt, DIP_TAG_BYTES, tag);
    if (!memeql_sec(tag, want, DIP_TAG_BYTES)) {
        explicit_bzero(out, n); /* never hand out unauthenticated plaintext */
        return dip_err_set(err, DIP_EINTEGRITY,
                           "authentication failed: the data was altered, or it was sealed with "
                           "another key or other associated data");
    }
    return 0;
}

/* ---- Incremental AEAD ---- */

_Static_assert(sizeof(struct gcm_ctx) <= sizeof(((struct dip_aead_stream *)0)->st),
               "dip_aead_stream too small for nettle's gcm_ctx");

static struct gcm_ctx *gctx(struct dip_aead_stream *s)
{
    return (struct gcm_ctx *)(void *)s->st;
}

void dip_aead_stream_init(struct dip_aead_stream *s, const dip_aead *a,
                          const uint8_t nonce[DIP_NONCE_BYTES])
{
    memset(s, 0, sizeof(*s));
    s->a = a;
    gcm_set_iv(gctx(s), &a->gkey, DIP_NONCE_BYTES, nonce);
}

void dip_aead_stream_ad(struct dip_aead_stream *s, const void *ad, size_t len)
{
    if (len > 0)
        gcm_update(gctx(s), &s->a->gkey, len, ad);
}

void dip_aead_stream_encrypt(struct dip_aead_stream *s, const void *in, size_t len, uint8_t *out)
{
    gcm_encrypt(gctx(s), &s->a->gkey, &s->a->aes, (nettle_cipher_func *)aes256_encrypt, len, out,
                in);
}

void dip_aead_stream_decrypt(struct dip_aead_stream *s, const void *in, size_t len, uint8_t *out)
{
    gcm_decrypt(gctx(s), &s->a->gkey, &s->a->aes, (nettle_cipher_func *)aes256_encrypt, len, out,
                in);
}

void dip_aead_stream_tag(struct dip_aead_stream *s, uint8_t tag[DIP_TAG_BYTES])
{
    /* nettle's digest resets the state; work on a copy so the stream can be copied back. */
    struct dip_aead_stream t = *s;

    gcm_digest(gctx(&t), &s->a->gkey, &s->a->aes, (nettle_cipher_func *)aes256_encrypt,
               DIP_TAG_BYTES, tag);
}

/* ---- Envelopes ---- */

static void envelope_header(uint8_t h[DIP_ENVELOPE_HEADER], const uint8_t key_id[8],
                            const uint8_t nonce[DIP_NONCE_BYTES])
{
    memcpy(h, envelope_magic, 8);
    memcpy(h + 8, key_id, 8);
    memcpy(h + 16, nonce, DIP_NONCE_BYTES);
    memset(h + 28, 0, 4);
}

/* The header (32 bytes, a multiple of the block) leads the associated data. */
static void envelope_start(struct dip_aead_stream *s, const dip_aead *a,
                           const uint8_t h[DIP_ENVELOPE_HEADER], const void *ad, size_t ad_len)
{
    dip_aead_stream_init(s, a, h + 16);
    dip_aead_stream_ad(s, h, DIP_ENVELOPE_HEADER);
    dip_aead_stream_ad(s, ad, ad_len);
}

int dip_envelope_is_sealed(const void *data, size_t len)
{
    return len >= sizeof(envelope_magic) &&
           memcmp(data, envelope_magic, sizeof(envelope_magic)) == 0;
}

int dip_envelope_seal(const dip_aead *a, const uint8_t key_id[8], const void *ad, size_t ad_len,
                      const void *in, size_t len, uint8_t *out, struct dip_err *err)
{
    struct dip_aead_stream s;
    uint8_t nonce[DIP_NONCE_BYTES];
    int rc = dip_random(nonce, sizeof(nonce), err);

    if (rc != 0)
        return rc;
    envelope_header(out, key_id, nonce);
    envelope_start(&s, a, out, ad, ad_len);
    dip_aead_stream_encrypt(&s, in, len, out + DIP_ENVELOPE_HEADER);
    dip_aead_stream_tag(&s, out + DIP_ENVELOPE_HEADER + len);
    explicit_bzero(&s, sizeof(s));
    return 0;
}

static void hex8(const uint8_t id[8], char hex[17])
{
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
}

int dip_envelope_open(const dip_aead *a, const uint8_t key_id[8], const void *ad, size_t ad_len,
                      const void *in, size_t len, uint8_t *out, size_t *out_len,
                      struct dip_err *err)
{
    const uint8_t *p = in;
    struct dip_aead_stream s;
    uint8_t tag[DIP_TAG_BYTES], want[DIP_TAG_BYTES];
    size_t n;

    *out_len = 0;
    if (!dip_envelope_is_sealed(in, len))
        return dip_err_set(err, DIP_EINTEGRITY,
                           "not sealed: it lacks the encryption header "
                           "(stored without a key?)");
    if (len < DIP_ENVELOPE_OVERHEAD)
        return dip_err_set(err, DIP_EINTEGRITY,
                           "truncated: %zu bytes, shorter than the %d bytes "
                           "of header and tag",
                           len, DIP_ENVELOPE_OVERHEAD);
    if (memcmp(p + 8, key_id, 8) != 0) {
        char theirs[17], ours[17];
        hex8(p + 8, theirs);
        hex8(key_id, ours);
        return dip_err_set(err, DIP_EINTEGRITY,
                           "sealed with another key (key id %s; this key's id is %s)", theirs,
                           ours);
    }
    n = len - DIP_ENVELOPE_OVERHEAD;
    /* Keep what decryption may overwrite when `out` overlaps `in`. */
    memcpy(want, p + len - DIP_TAG_BYTES, DIP_TAG_BYTES);
    {
        uint8_t h[DIP_ENVELOPE_HEADER];
        memcpy(h, p, DIP_ENVELOPE_HEADER);
        envelope_start(&s, a, h, ad, ad_len);
    }
    dip_aead_stream_decrypt(&s, p + DIP_ENVELOPE_HEADER, n, out);
    dip_aead_stream_tag(&s, tag);
    explicit_bzero(&s, sizeof(s));
    if (!memeql_sec(tag, want, DIP_TAG_BYTES)) {
        explicit_bzero(out, n);
        return dip_err_set(err, DIP_EINTEGRITY,
                           "authentication failed: the data was altered, or it was sealed with "
                           "another key or other associated data");
    }
    *out_len = n;
    return 0;
}

/* ---- Envelope reader ---- */

int dip_envelope_reader_init(struct dip_envelope_reader *r, const dip_aead *a,
                             const uint8_t key_id[8], const void *ad, size_t ad_len,
                             const uint8_t header[DIP_ENVELOPE_HEADER], struct dip_err *err)
{
    memset(r, 0, sizeof(*r));
    if (!dip_envelope_is_sealed(header, DIP_ENVELOPE_HEADER))
        return dip_err_set(err, DIP_EINTEGRITY,
                           "not sealed: it lacks the encryption header "
                           "(stored without a key?)");
    if (memcmp(header + 8, key_id, 8) != 0) {
        char theirs[17], ours[17];
        hex8(header + 8, theirs);
        hex8(key_id, ours);
        return dip_err_set(err, DIP_EINTEGRITY,
                           "sealed with another key (key id %s; this key's id is %s)", theirs,
                           ours);
    }
    envelope_start(&r->s, a, header, ad, ad_len);
    return 0;
}

void dip_envelope_reader_update(struct dip_envelope_reader *r, const void *in, size_t len,
                                uint8_t *out)
{
    dip_aead_stream_decrypt(&r->s, in, len, out);
}

int dip_envelope_reader_final(struct dip_envelope_reader *r, const uint8_t want[DIP_TAG_BYTES],
                              struct dip_err *err)
{
    uint8_t tag[DIP_TAG_BYTES];
    int ok;

    dip_aead_stream_tag(&r->s, tag);
    explicit_bzero(&r->s, sizeof(r->s));
    ok = memeql_sec(tag, want, DIP_TAG_BYTES);
    if (!ok)
        return dip_err_set(err, DIP_EINTEGRITY,
                           "authentication failed: the data was altered, or it was sealed with "
                           "another key or other associated data");
    return 0;
}

void dip_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                     uint8_t out[32])
{
    struct hmac_sha256_ctx mac;

    hmac_sha256_set_key(&mac, key_len, key);
    hmac_sha256_update(&mac, msg_len, msg);
    hmac_sha256_digest(&mac, SHA256_DIGEST_SIZE, out);
    explicit_bzero(&mac, sizeof(mac));
}

/* ---- Envelope writer ---- */

int dip_envelope_writer_init(struct dip_envelope_writer *w, const dip_aead *a,
                             const uint8_t key_id[8], const void *ad, size_t ad_len,
                             const void *plain, size_t len, struct dip_err *err)
{
    uint8_t nonce[DIP_NONCE_BYTES];
    int rc;

    memset(w, 0, sizeof(*w));
    rc = dip_random(nonce, sizeof(nonce), err);
    if (rc != 0)
        return rc;
    envelope_header(w->header, key_id, nonce);
    w->plain = plain;
    w->len = len;
    w->ad = ad;
    w->ad_len = ad_len;
    envelope_start(&w->s, a, w->header, ad, ad_len);
    w->mark = w->s;
    return 0;
}

size_t dip_envelope_writer_read(struct dip_envelope_writer *w, uint8_t *buf, size_t n)
{
    const uint64_t H = DIP_ENVELOPE_HEADER, end = H + w->len;
    size_t out = 0;

    while (out < n) {
        if (w->pos < H) {
            size_t k = (size_t)(H - w->pos) < n - out ? (size_t)(H - w->pos) : n - out;
            memcpy(buf + out, w->header + w->pos, k);
            w->pos += k, out += k;
        } else if (w->pos < end) {
            uint64_t c = w->pos - H; /* ciphertext offset handed out next */
            if (c < w->enc) {
                /* From the block encrypted ahead. */
                uint64_t blk = w->enc - ((w->enc - 1) % 16 + 1);
                size_t k = (size_t)(w->enc - c) < n - out ? (size_t)(w->enc - c) : n - out;
                memcpy(buf + out, w->pend + (c - blk), k);
                w->pos += k, out += k;
            } else {
                uint64_t rem = w->len - c;
                size_t room = n - out, k;
                if (rem >= 16 && room >= 16) {
                    k = (size_t)(rem < room ? rem : room) & ~(size_t)15;
                    dip_aead_stream_encrypt(&w->s, w->plain + c, k, buf + out);
                    w->enc += k;
                    w->pos += k, out += k;
                } else {
                    /* A block (or the final partial one) ahead, for a short read. */
                    size_t b = rem < 16 ? (size_t)rem : 16;
                    dip_aead_stream_encrypt(&w->s, w->plain + c, b, w->pend);
                    w->enc += b;
                }
            }
        } else if (w->pos < end + DIP_TAG_BYTES) {
            size_t k;
            if (!w->have_tag) {
                dip_aead_stream_tag(&w->s, w->tag);
                w->have_tag = 1;
            }
            k = (size_t)(end + DIP_TAG_BYTES - w->pos) < n - out
                    ? (size_t)(end + DIP_TAG_BYTES - w->pos)
                    : n - out;
            memcpy(buf + out, w->tag + (w->pos - end), k);
            w->pos += k, out += k;
        } else {
            break;
        }
    }
    return out;
}

void dip_envelope_writer_seek(struct dip_envelope_writer *w, uint64_t pos)
{
    const uint64_t H = DIP_ENVELOPE_HEADER;
    uint8_t scratch[4096];

    if (pos == w->pos) {
        w->mark = w->s;
        w->mark_pos = pos;
        w->mark_enc = w->enc;
        memcpy(w->mark_pend, w->pend, sizeof(w->pend));
        return;
    }
    if (pos == w->mark_pos) {
        w->s = w->mark;
        w->pos = pos;
        w->enc = w->mark_enc;
        memcpy(w->pend, w->mark_pend, sizeof(w->pend));
        w->have_tag = 0;
        return;
    }
    (void)H;
    /* Anywhere else: again from the start, the same bytes, up to `pos`. */
    w->s = w->mark; /* for its aead pointer */
    envelope_start(&w->s, w->s.a, w->header, w->ad, w->ad_len);
    w->pos = 0;
    w->enc = 0;
    w->have_tag = 0;
    while (w->pos < pos) {
        uint64_t left = pos - w->pos;
        size_t k = dip_envelope_writer_read(
            w, scratch, left < sizeof(scratch) ? (size_t)left : sizeof(scratch));
        if (k == 0)
            break;
    }
    w->mark = w->s;
    w->mark_pos = w->pos;
    w->mark_enc = w->enc;
    memcpy(w->mark_pend, w->pend, sizeof(w->pend));
}
