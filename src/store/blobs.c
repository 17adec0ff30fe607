/* SPDX-License-Identifier: MIT */
/* The blob store (blobs.h): one small backend interface (put, get, size) with two backends, a
 * local folder and S3-compatible object storage, and encryption at rest on top of either. Blobs
 * stay named by the SHA-256 of their plaintext, so deduplication and the result cache work the
 * same with and without a key. A sealed blob is "DIPSEAL1", the key's id, a random nonce, the
 * ciphertext and the tag (include/dip/crypto.h); its name is the associated data, so a blob
 * copied over another one is refused like an altered one. Every refusal names the blob. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blobs.h"
#include "dip/crypto.h"
#include "dip/image.h"
#include "dip/s3.h"
#include "dip/store.h"

struct backend {
    const char *name;
    int (*put)(struct dip__blobs *b, const char *sha, const void *data, size_t len,
               struct dip_err *err);
    /* The same from a source produced as it is written (a blob sealed on the fly). */
    int (*put_src)(struct dip__blobs *b, const char *sha, const struct dip_s3_source *src,
                   struct dip_err *err);
    int (*get)(struct dip__blobs *b, const char *sha, size_t max_bytes, uint8_t **out, size_t *len,
               struct dip_err *err);
    /* Stored size in bytes; DIP_ENOTFOUND when absent. */
    int (*size)(struct dip__blobs *b, const char *sha, uint64_t *size, struct dip_err *err);
};

struct dip__blobs {
    const struct backend *be;
    char *dir; /* local: DIR/blobs */
    dip_s3 *s3;
    char bucket[64];
    char *prefix; /* "" or "some/prefix/" */
    dip_aead *aead;
    uint8_t key_id[8];
    char describe[512];
};

int dip__sha_ok(const char *sha)
{
    size_t i;

    for (i = 0; sha[i] != '\0'; i++)
        if (!((sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f')))
            return 0;
    return i == 64;
}

/* ---- Local folder ---- */

static void local_path(const struct dip__blobs *b, const char *sha, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%.2s/%s", b->dir, sha, sha + 2);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w, len -= (size_t)w;
    }
    return 0;
}

/* Written to a temporary, fsynced, renamed into place, and the rename made durable. The bytes
 * are `data`, or come from `src` in chunks. */
static int local_write(struct dip__blobs *b, const char *sha, const void *data, size_t len,
                       const struct dip_s3_source *src, struct dip_err *err)
{
    uint8_t *chunk = NULL;
    char path[4200], tmp[4300], dirp[4200];
    uint8_t rnd[6];
    int fd = -1, rc = 0;

    local_path(b, sha, path, sizeof(path));
    snprintf(dirp, sizeof(dirp), "%s/%.2s", b->dir, sha);
    if (mkdir(dirp, 0700) != 0 && errno != EEXIST)
        return dip_err_set(err, DIP_EIO, "store: cannot create %s: %s", dirp, strerror(errno));
    rc = dip_random(rnd, sizeof(rnd), err);
    if (rc != 0)
        return rc;
    snprintf(tmp, sizeof(tmp), "%s.tmp%02x%02x%02x%02x%02x%02x", path, rnd[0], rnd[1], rnd[2],
             rnd[3], rnd[4], rnd[5]);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return dip_err_set(err, DIP_EIO, "store: cannot create %s: %s", tmp, strerror(errno));
    if (src != NULL) {
        uint64_t done = 0;
        chunk = dip_malloc(1 << 20);
        if (chunk == NULL) {
            rc = DIP_ENOMEM;
            goto out;
        }
        src->seek(src->ud, 0);
        while (done < src->len) {
            size_t k = src->read(src->ud, chunk, 1 << 20);
            if (k == 0 || write_all(fd, chunk, k) != 0) {
                rc = dip_err_set(err, DIP_EIO, "store: cannot write %s: %s", tmp,
                                 k == 0 ? "short source" : strerror(errno));
                goto out;
            }
            done += k;
        }
    } else if (write_all(fd, data, len) != 0) {
        rc = dip_err_set(err, DIP_EIO, "store: cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = dip_err_set(err, DIP_EIO, "store: cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = dip_err_set(err, DIP_EIO, "store: cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = dip_err_set(err, DIP_EIO, "store: cannot rename to %s: %s", path, strerror(errno));
        goto out;
    }
    fd = open(dirp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        (void)fsync(fd);
out:
    dip_free(chunk);
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int local_put(struct dip__blobs *b, const char *sha, const void *data, size_t len,
                     struct dip_err *err)
{
    return local_write(b, sha, data, len, NULL, err);
}

static int local_put_src(struct dip__blobs *b, const char *sha, const struct dip_s3_source *src,
                         struct dip_err *err)
{
    return local_write(b, sha, NULL, 0, src, err);
}

static int local_get(struct dip__blobs *b, const char *sha, size_t max_bytes, uint8_t **out,
                     size_t *len, struct dip_err *err)
{
    char path[4200];
    struct stat sb;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd = -1, rc = 0;

    local_path(b, sha, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = dip_err_set(err, errno == ENOENT ? DIP_ENOTFOUND : DIP_EIO, "store: blob %s: %s", sha,
                         strerror(errno));
        goto out;
    }
    if (fstat(fd, &sb) != 0) {
        rc = dip_err_set(err, DIP_EIO, "store: blob %s: %s", sha, strerror(errno));
        goto out;
    }
    if ((uint64_t)sb.st_size > max_bytes) {
        rc = dip_err_set(err, DIP_ELIMIT, "store: blob %s has %lld bytes > limit %zu", sha,
                         (long long)sb.st_size, max_bytes);
        goto out;
    }
    buf = dip_malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = dip_err_set(err, DIP_EIO, "store: blob %s: short read", sha);
            goto out;
        }
        got += (size_t)r;
    }
    *out = buf;
    *len = got;
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    dip_free(buf);
    return rc;
}

static int local_size(struct dip__blobs *b, const char *sha, uint64_t *size, struct dip_err *err)
{
    char path[4200];
    struct stat sb;

    local_path(b, sha, path, sizeof(path));
    if (stat(path, &sb) != 0)
        return dip_err_set(err, DIP_ENOTFOUND, "store: blob %s: %s", sha, strerror(errno));
    *size = (uint64_t)sb.st_size;
    return 0;
}

static const struct backend local_backend = {"local", local_put, local_put_src, local_get,
                                             local_size};

/* ---- S3 ---- */

static void s3_key(const struct dip__blobs *b, const char *sha, char *buf, size_t len)
{
    snprintf(buf, len, "%s%.2s/%s", b->prefix, sha, sha + 2);
}

static int s3_put(struct dip__blobs *b, const char *sha, const void *data, size_t len,
                  struct dip_err *err)
{
    char key[1200];

    s3_key(b, sha, key, sizeof(key));
    return dip_s3_put_mem(b->s3, b->bucket, key, data, len, err);
}

static int s3_put_src(struct dip__blobs *b, const char *sha, const struct dip_s3_source *src,
                      struct dip_err *err)
{
    char key[1200];

    s3_key(b, sha, key, sizeof(key));
    return dip_s3_put_src(b->s3, b->bucket, key, src, err);
}

static int s3_get(struct dip__blobs *b, const char *sha, size_t max_bytes, uint8_t **out,
                  size_t *len, struct dip_err *err)
{
    char key[1200];
    int rc;

    s3_key(b, sha, key, sizeof(key));
    rc = dip_s3_get_mem(b->s3, b->bucket, key, max_bytes, out, len, err);
    if (rc != 0)
        dip_err_prefix(err, "store: blob %s: ", sha);
    return rc;
}

static int s3_size(struct dip__blobs *b, const char *sha, uint64_t *size, struct dip_err *err)
{
    char key[1200];

    s3_key(b, sha, key, sizeof(key));
    return dip_s3_head(b->s3, b->bucket, key, size, err);
}

static const struct backend s3_backend = {"s3", s3_put, s3_put_src, s3_get, s3_size};

/* ---- The store ---- */

static int first_only(void *ud, const char *key, uint64_t size)
{
    (void)ud, (void)key, (void)size;
    return 1;
}

int dip__blobs_open(const char *dir, const struct dip_store_blob_opts *o, struct dip__blobs **out,
                    struct dip_err *err)
{
    struct dip__blobs *b = dip_calloc(1, sizeof(*b));
    struct dip_key key;
    int rc = 0;

    *out = NULL;
    if (b == NULL)
        return DIP_ENOMEM;
    if (o != NULL && o->url != NULL && *o->url && !dip_s3_is_url(o->url)) {
        rc = dip_err_set(err, DIP_EINVAL,
                         "store: --blobs %s: want s3://BUCKET[/PREFIX] (or nothing for the data "
                         "folder)",
                         o->url);
        goto out;
    }
    if (o != NULL && o->url != NULL && *o->url) {
        struct dip_s3_config env;
        const char *prefix;
        size_t n;
        rc = dip_s3_parse_url(o->url, b->bucket, &prefix, err);
        if (rc != 0)
            goto out;
        n = strlen(prefix);
        if (n > 512) {
            rc = dip_err_set(err, DIP_EINVAL, "store: --blobs %s: prefix too long", o->url);
            goto out;
        }
        b->prefix = dip_malloc(n + 2);
        if (b->prefix == NULL) {
            rc = DIP_ENOMEM;
            goto out;
        }
        snprintf(b->prefix, n + 2, "%s%s", prefix, n > 0 && prefix[n - 1] != '/' ? "/" : "");
        if (o->s3 == NULL)
            dip_s3_config_env(&env);
        rc = dip_s3_new(o->s3 ? o->s3 : &env, &b->s3, err);
        if (rc != 0)
            goto out;
        /* Fail now, with the reason, rather than at the first upload. */
        rc = dip_s3_list(b->s3, b->bucket, b->prefix, first_only, NULL, err);
        if (rc != 0) {
            dip_err_prefix(err, "store: --blobs %s: ", o->url);
            goto out;
        }
        b->be = &s3_backend;
        snprintf(b->describe, sizeof(b->describe), "%s", o->url);
    } else {
        size_t n = strlen(dir) + 8;
        b->dir = dip_malloc(n);
        if (b->dir == NULL) {
            rc = DIP_ENOMEM;
            goto out;
        }
        snprintf(b->dir, n, "%s/blobs", dir);
        b->be = &local_backend;
        snprintf(b->describe, sizeof(b->describe), "%s", b->dir);
    }
    if (o != NULL && o->encrypt_key != NULL && *o->encrypt_key) {
        char id[DIP_KEY_ID_HEX];
        size_t n = strlen(b->describe);
        rc = dip_key_load(o->encrypt_key, &key, err);
        if (rc != 0)
            goto out;
        rc = dip_aead_new(&key, &b->aead);
        dip_key_id_bytes(&key, b->key_id);
        dip_key_id(&key, id);
        dip_key_wipe(&key);
        if (rc != 0)
            goto out;
        snprintf(b->describe + n, sizeof(b->describe) - n, ", encrypted (key id %s)", id);
    }
    *out = b;
    b = NULL;
out:
    dip__blobs_close(b);
    return rc;
}

void dip__blobs_close(struct dip__blobs *b)
{
    if (b == NULL)
        return;
    dip_s3_free(b->s3);
    dip_aead_free(b->aead);
    dip_free(b->dir);
    dip_free(b->prefix);
    dip_free(b);
}

const char *dip__blobs_describe(const struct dip__blobs *b)
{
    return b->describe;
}

int dip__blobs_has(struct dip__blobs *b, const char *sha, uint64_t len)
{
    uint64_t size = 0;

    if (!dip__sha_ok(sha) || b->be->size(b, sha, &size, NULL) != 0)
        return 0;
    return size == len + (b->aead ? DIP_ENVELOPE_OVERHEAD : 0);
}

static void writer_seek(void *ud, uint64_t off)
{
    dip_envelope_writer_seek(ud, off);
}

static size_t writer_read(void *ud, uint8_t *buf, size_t n)
{
    return dip_envelope_writer_read(ud, buf, n);
}

int dip__blobs_put(struct dip__blobs *b, const char *sha, const void *data, size_t len,
                   struct dip_err *err)
{
    struct dip_envelope_writer w;
    struct dip_s3_source src = {.ud = &w, .seek = writer_seek, .read = writer_read};
    int rc;

    if (dip__blobs_has(b, sha, len))
        return 0; /* content-addressed: same name, same bytes */
    if (b->aead == NULL)
        return b->be->put(b, sha, data, len, err);
    /* Sealed as it is written or uploaded: the blob is never copied whole. */
    rc = dip_envelope_writer_init(&w, b->aead, b->key_id, sha, 64, data, len, err);
    if (rc != 0)
        return rc;
    src.len = (uint64_t)len + DIP_ENVELOPE_OVERHEAD;
    rc = b->be->put_src(b, sha, &src, err);
    explicit_bzero(&w, sizeof(w));
    return rc;
}

int dip__blobs_get(struct dip__blobs *b, const char *sha, size_t max_bytes, uint8_t **out,
                   size_t *len, struct dip_err *err)
{
    uint8_t *buf = NULL;
    size_t n = 0, plain = 0;
    int rc;

    *out = NULL;
    *len = 0;
    if (!dip__sha_ok(sha))
        return dip_err_set(err, DIP_ENOTFOUND, "store: bad blob name");
    if (b->aead != NULL && max_bytes <= SIZE_MAX - DIP_ENVELOPE_OVERHEAD)
        max_bytes += DIP_ENVELOPE_OVERHEAD;
    rc = b->be->get(b, sha, max_bytes, &buf, &n, err);
    if (rc != 0)
        return rc;
    if (b->aead == NULL) {
        if (dip_envelope_is_sealed(buf, n)) {
            rc = dip_err_set(err, DIP_EINTEGRITY,
                             "store: blob %s is encrypted; start with --encrypt-key and its key "
                             "(key id %02x%02x%02x%02x%02x%02x%02x%02x)",
                             sha, n > 8 ? buf[8] : 0, n > 9 ? buf[9] : 0, n > 10 ? buf[10] : 0,
                             n > 11 ? buf[11] : 0, n > 12 ? buf[12] : 0, n > 13 ? buf[13] : 0,
                             n > 14 ? buf[14] : 0, n > 15 ? buf[15] : 0);
            goto out;
        }
    } else if (dip_envelope_is_sealed(buf, n)) {
        /* Opened in place; the plaintext then moves to the buffer's start. */
        rc = dip_envelope_open(b->aead, b->key_id, sha, 64, buf, n, buf + DIP_ENVELOPE_HEADER,
                               &plain, err);
        if (rc != 0) {
            dip_err_prefix(err, "store: blob %s: ", sha);
            goto out;
        }
        memmove(buf, buf + DIP_ENVELOPE_HEADER, plain);
        n = plain;
    } else {
        /* A blob stored before the key was set: accepted only when its content matches its name,
         * so nobody can slip plaintext of their choosing in place of a sealed blob. */
        char got[65];
        dip_sha256_hex(buf, n, got);
        if (strcmp(got, sha) != 0) {
            rc = dip_err_set(err, DIP_EINTEGRITY,
                             "store: blob %s is not encrypted and its content does not match its "
                             "name (altered)",
                             sha);
            goto out;
        }
    }
    *out = buf;
    *len = n;
    buf = NULL;
out:
    dip_free(buf);
    return rc;
}

void dip__blobs_sweep(struct dip__blobs *b)
{
    char path[4200];
    DIR *top, *sub;
    struct dirent *d, *e;

    if (b->dir == NULL)
        return;
    top = opendir(b->dir);
    if (top == NULL)
        return;
    while ((d = readdir(top)) != NULL) {
        if (strlen(d->d_name) != 2)
            continue;
        snprintf(path, sizeof(path), "%s/%s", b->dir, d->d_name);
        sub = opendir(path);
        if (sub == NULL)
            continue;
        while ((e = readdir(sub)) != NULL) {
            if (strstr(e->d_name, ".tmp") != NULL) {
                snprintf(path, sizeof(path), "%s/%s/%.255s", b->dir, d->d_name, e->d_name);
                unlink(path);
            }
        }
        closedir(sub);
    }
    closedir(top);
}
