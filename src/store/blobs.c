/* SPDX-License-Identifier: MIT */
/* The blob store (blobs.h): one small backend interface (put, get, size) with two backends, a
 * local folder and S3-compatible object storage, and encryption at rest on top of either. Blobs
 * stay named by the SHA-256 of their plaintext, so deduplication and the result cache work the
 * same with and without a key. A sealed blob is "DIPSEAL1", the key's id, a random nonce, the
 * ciphertext and the tag (include/dip/crypto.h); its name is the associated data, so a blob
 * copied over another one is refused like an altered one. Every refusal names the blob. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_TMPFILE */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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
    char *dir;    /* local: DIR/blobs */
    char *tmpdir; /* the data folder: unlinked temporaries of downloads */
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

/* A full disk or quota is the operator's to fix, not an I/O fault: DIP_ENOSPC (507). */
static int io_code(int e)
{
    return (e == ENOSPC || e == EDQUOT || e == EFBIG) ? DIP_ENOSPC : DIP_EIO;
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
        return dip_err_set(err, io_code(errno), "store: cannot create %s: %s", tmp,
                           strerror(errno));
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
                rc = dip_err_set(err, k == 0 ? DIP_EIO : io_code(errno),
                                 "store: cannot write %s: %s", tmp,
                                 k == 0 ? "short source" : strerror(errno));
                goto out;
            }
            done += k;
        }
    } else if (write_all(fd, data, len) != 0) {
        rc = dip_err_set(err, io_code(errno), "store: cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = dip_err_set(err, io_code(errno), "store: cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = dip_err_set(err, io_code(errno), "store: cannot write %s: %s", tmp, strerror(errno));
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
    if (b == NULL || (b->tmpdir = dip_strdup(dir)) == NULL) {
        dip_free(b);
        return DIP_ENOMEM;
    }
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
    dip_free(b->tmpdir);
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

/* ---- Streamed reads, deletion, listing, presigning ---- */

/* An unlinked temporary file in the data folder (O_TMPFILE, else mkstemp and unlink). */
static int tmp_fd(struct dip__blobs *b, struct dip_err *err)
{
    char path[4200];
    int fd = open(b->tmpdir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);

    if (fd >= 0)
        return fd;
    snprintf(path, sizeof(path), "%s/.blob-read-XXXXXX", b->tmpdir);
    fd = mkstemp(path);
    if (fd < 0) {
        dip_err_set(err, io_code(errno), "store: cannot create a temporary file: %s",
                    strerror(errno));
        return -1;
    }
    unlink(path);
    return fd;
}

static int pread_all(int fd, uint8_t *p, size_t len, uint64_t at)
{
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r, len -= (size_t)r, at += (uint64_t)r;
    }
    return 0;
}

#define READ_CHUNK ((size_t)64 << 10)

int dip__blobs_open_read(struct dip__blobs *b, const char *sha, int *fd_out, uint64_t *size_out,
                         struct dip_err *err)
{
    uint8_t head[DIP_ENVELOPE_HEADER], tag[DIP_TAG_BYTES], *chunk = NULL;
    struct stat sb;
    uint64_t stored;
    int src = -1, out = -1, rc = 0, sealed;

    *fd_out = -1;
    *size_out = 0;
    if (!dip__sha_ok(sha))
        return dip_err_set(err, DIP_ENOTFOUND, "store: bad blob name");
    if (b->dir != NULL) {
        char path[4200];
        local_path(b, sha, path, sizeof(path));
        src = open(path, O_RDONLY | O_CLOEXEC);
        if (src < 0)
            return dip_err_set(err, errno == ENOENT ? DIP_ENOTFOUND : DIP_EIO, "store: blob %s: %s",
                               sha, strerror(errno));
    } else {
        /* A streamed GET into an unlinked file: never the whole object in memory. */
        char key[1200];
        src = tmp_fd(b, err);
        if (src < 0)
            return DIP_EIO;
        s3_key(b, sha, key, sizeof(key));
        rc = dip_s3_get_fd(b->s3, b->bucket, key, src, err);
        if (rc != 0) {
            dip_err_prefix(err, "store: blob %s: ", sha);
            goto out;
        }
    }
    if (fstat(src, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = dip_err_set(err, DIP_EIO, "store: blob %s: not a readable file", sha);
        goto out;
    }
    stored = (uint64_t)sb.st_size;
    memset(head, 0, sizeof(head));
    if (pread_all(src, head, (size_t)(stored < sizeof(head) ? stored : sizeof(head)), 0) != 0) {
        rc = dip_err_set(err, DIP_EIO, "store: blob %s: short read", sha);
        goto out;
    }
    sealed = dip_envelope_is_sealed(head, (size_t)(stored < sizeof(head) ? stored : sizeof(head)));
    if (b->aead == NULL) {
        if (sealed) {
            rc = dip_err_set(err, DIP_EINTEGRITY,
                             "store: blob %s is encrypted; start with --encrypt-key and its key "
                             "(key id %02x%02x%02x%02x%02x%02x%02x%02x)",
                             sha, head[8], head[9], head[10], head[11], head[12], head[13],
                             head[14], head[15]);
            goto out;
        }
        out = src, src = -1;
        *size_out = stored;
        goto out;
    }
    chunk = dip_malloc(READ_CHUNK);
    if (chunk == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    if (!sealed) {
        /* Stored before the key was set: served only when its content matches its name. */
        struct dip_sha256 h;
        uint8_t d[32];
        char got[65];
        dip_sha256_init(&h);
        for (uint64_t at = 0; at < stored;) {
            size_t n = (size_t)(stored - at < READ_CHUNK ? stored - at : READ_CHUNK);
            if (pread_all(src, chunk, n, at) != 0) {
                rc = dip_err_set(err, DIP_EIO, "store: blob %s: short read", sha);
                goto out;
            }
            dip_sha256_update(&h, chunk, n);
            at += n;
        }
        dip_sha256_final(&h, d);
        for (int i = 0; i < 32; i++)
            snprintf(got + 2 * i, 3, "%02x", d[i]);
        if (strcmp(got, sha) != 0) {
            rc = dip_err_set(err, DIP_EINTEGRITY,
                             "store: blob %s is not encrypted and its content does not match its "
                             "name (altered)",
                             sha);
            goto out;
        }
        out = src, src = -1;
        *size_out = stored;
        goto out;
    }
    if (stored < DIP_ENVELOPE_OVERHEAD) {
        rc = dip_err_set(err, DIP_EINTEGRITY,
                         "store: blob %s: truncated: %llu bytes, shorter than the %d bytes of "
                         "header and tag",
                         sha, (unsigned long long)stored, DIP_ENVELOPE_OVERHEAD);
        goto out;
    }
    {
        /* Decrypted chunk by chunk into an unlinked file, and handed out only once the tag
         * matched: nothing unauthenticated ever reaches a client. */
        struct dip_envelope_reader r;
        uint64_t end = stored - DIP_TAG_BYTES;
        rc = dip_envelope_reader_init(&r, b->aead, b->key_id, sha, 64, head, err);
        if (rc != 0) {
            dip_err_prefix(err, "store: blob %s: ", sha);
            goto out;
        }
        out = tmp_fd(b, err);
        if (out < 0) {
            rc = DIP_EIO;
            explicit_bzero(&r, sizeof(r));
            goto out;
        }
        for (uint64_t at = DIP_ENVELOPE_HEADER; at < end;) {
            size_t n = (size_t)(end - at < READ_CHUNK ? end - at : READ_CHUNK);
            if (pread_all(src, chunk, n, at) != 0) {
                rc = dip_err_set(err, DIP_EIO, "store: blob %s: short read", sha);
                break;
            }
            dip_envelope_reader_update(&r, chunk, n, chunk);
            if (write_all(out, chunk, n) != 0) {
                rc = dip_err_set(err, io_code(errno),
                                 "store: blob %s: cannot write a temporary "
                                 "file: %s",
                                 sha, strerror(errno));
                break;
            }
            at += n;
        }
        if (rc == 0 && pread_all(src, tag, sizeof(tag), end) != 0)
            rc = dip_err_set(err, DIP_EIO, "store: blob %s: short read", sha);
        if (rc == 0) {
            rc = dip_envelope_reader_final(&r, tag, err);
            if (rc != 0)
                dip_err_prefix(err, "store: blob %s: ", sha);
        } else {
            explicit_bzero(&r, sizeof(r));
        }
        if (rc == 0 && lseek(out, 0, SEEK_SET) != 0)
            rc = dip_err_set(err, DIP_EIO, "store: blob %s: %s", sha, strerror(errno));
        if (rc != 0)
            goto out;
        *size_out = end - DIP_ENVELOPE_HEADER;
    }
out:
    if (chunk != NULL) {
        explicit_bzero(chunk, READ_CHUNK);
        dip_free(chunk);
    }
    if (src >= 0)
        close(src);
    if (rc != 0) {
        if (out >= 0)
            close(out); /* unlinked: its bytes go with it */
        return rc;
    }
    if (out >= 0 && lseek(out, 0, SEEK_SET) != 0) {
        close(out);
        return dip_err_set(err, DIP_EIO, "store: blob %s: %s", sha, strerror(errno));
    }
    *fd_out = out;
    return 0;
}

int dip__blobs_delete(struct dip__blobs *b, const char *sha, uint64_t *bytes)
{
    uint64_t size = 0;

    if (!dip__sha_ok(sha) || b->be->size(b, sha, &size, NULL) != 0)
        return 0;
    if (b->dir != NULL) {
        char path[4200];
        local_path(b, sha, path, sizeof(path));
        if (unlink(path) != 0)
            return 0;
    } else {
        char key[1200];
        s3_key(b, sha, key, sizeof(key));
        if (dip_s3_delete(b->s3, b->bucket, key, NULL) != 0)
            return 0;
    }
    if (bytes != NULL)
        *bytes += size;
    return 1;
}

struct list_ctx {
    struct dip__blobs *b;
    int (*fn)(void *ud, const char *sha, uint64_t size, double mtime);
    void *ud;
};

static int s3_list_fn(void *ud, const char *key, uint64_t size, double mtime)
{
    struct list_ctx *c = ud;
    size_t pl = strlen(c->b->prefix);
    const char *rest = key + pl;
    char sha[65];

    /* PREFIX/ab/cdef... (64 hex digits in all); anything else under the prefix is not ours. */
    if (strncmp(key, c->b->prefix, pl) != 0 || strlen(rest) != 65 || rest[2] != '/')
        return 0;
    memcpy(sha, rest, 2);
    memcpy(sha + 2, rest + 3, 62);
    sha[64] = '\0';
    if (!dip__sha_ok(sha))
        return 0;
    return c->fn(c->ud, sha, size, mtime);
}

int dip__blobs_list(struct dip__blobs *b,
                    int (*fn)(void *ud, const char *sha, uint64_t size, double mtime), void *ud,
                    struct dip_err *err)
{
    char path[4200];
    DIR *top, *sub;
    struct dirent *d, *e;
    int stop = 0;

    if (b->dir == NULL) {
        struct list_ctx c = {b, fn, ud};
        return dip_s3_list_ex(b->s3, b->bucket, b->prefix, s3_list_fn, &c, err);
    }
    top = opendir(b->dir);
    if (top == NULL)
        return 0;
    while (!stop && (d = readdir(top)) != NULL) {
        if (strlen(d->d_name) != 2)
            continue;
        snprintf(path, sizeof(path), "%s/%s", b->dir, d->d_name);
        sub = opendir(path);
        if (sub == NULL)
            continue;
        while (!stop && (e = readdir(sub)) != NULL) {
            char sha[65];
            struct stat sb;
            if (strlen(e->d_name) != 62 || strchr(e->d_name, '.') != NULL)
                continue;
            memcpy(sha, d->d_name, 2); /* lengths checked: 2 + 62 */
            memcpy(sha + 2, e->d_name, 62);
            sha[64] = '\0';
            snprintf(path, sizeof(path), "%s/%s/%s", b->dir, d->d_name, e->d_name);
            if (!dip__sha_ok(sha) || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
                continue;
            stop = fn(ud, sha, (uint64_t)sb.st_size, (double)sb.st_mtime);
        }
        closedir(sub);
    }
    closedir(top);
    return 0;
}

int dip__blobs_presign(struct dip__blobs *b, const char *sha, unsigned expires_s, char **url,
                       struct dip_err *err)
{
    char key[1200];

    *url = NULL;
    if (b->s3 == NULL || b->aead != NULL || !dip__sha_ok(sha))
        return DIP_ENOTFOUND; /* not presignable: the caller streams the body */
    s3_key(b, sha, key, sizeof(key));
    return dip_s3_presign(b->s3, b->bucket, key, expires_s, url, err);
}
