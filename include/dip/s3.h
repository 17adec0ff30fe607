/* SPDX-License-Identifier: MIT */
/* A client for S3-compatible object storage (AWS S3, MinIO, Ceph RGW, s3rver, ...) on libcurl,
 * signed by libcurl's own AWS Signature V4. Objects stream between the network and a file
 * descriptor or one caller buffer, so an object is never held twice in memory; objects over
 * 8 MiB go up as a multipart upload whose parts are read from the source as they are sent.
 * Failures that may pass (5xx, 429, timeouts, dropped connections) are retried with exponential
 * backoff and jitter; the rest map to DIP_ENOTFOUND (no such key or bucket), DIP_EAUTH (denied,
 * unknown access key) or DIP_EIO, with a sentence naming the object and S3's own error code.
 * A client is thread-safe: each call uses its own curl handle; connections are shared. */
#ifndef DIP_S3_H
#define DIP_S3_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIP_S3_PART_BYTES ((size_t)8 << 20) /* multipart above this, in parts of this size */

struct dip_s3_config {
    const char *endpoint;   /* "http://127.0.0.1:9000"; NULL: https://s3.REGION.amazonaws.com */
    const char *region;     /* NULL: "us-east-1" */
    const char *access_key; /* NULL or "": unsigned requests */
    const char *secret_key;
    const char *session_token; /* optional (x-amz-security-token) */
    int path_style;            /* 1: http://host/bucket/key; 0: http://bucket.host/key;
                                  -1 (default): path style when an endpoint is given */
    int max_attempts;          /* per request, default 5 */
    int backoff_ms;            /* first retry's delay, doubled each time; default 200 */
    const char *connect_to;    /* optional, as curl's --connect-to HOST:PORT:HOST2:PORT2 */
    const char *fixed_date;    /* tests only: x-amz-date to sign with (20130524T000000Z) */
};

/** Fills `c` from the environment: AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3), AWS_REGION (or
 * AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, and
 * DIP_S3_ADDRESSING (path | virtual), DIP_S3_MAX_ATTEMPTS, DIP_S3_CONNECT_TO, DIP_S3_FIXED_DATE.
 * The strings are borrowed from the environment. */
void dip_s3_config_env(struct dip_s3_config *c);

typedef struct dip_s3 dip_s3;

/** A client for `c` (copied). DIP_EINVAL for a bad endpoint or addressing, DIP_ENOMEM. */
int dip_s3_new(const struct dip_s3_config *c, dip_s3 **out, struct dip_err *err);
/** NULL is a no-op. */
void dip_s3_free(dip_s3 *s3);

/** 1 when `url` starts with "s3://". */
int dip_s3_is_url(const char *url);
/** Splits "s3://bucket/key" into `bucket` and a pointer into `url` for the key ("" when none).
 * DIP_EINVAL (err names the URL) for a bad bucket name. */
int dip_s3_parse_url(const char *url, char bucket[64], const char **key, struct dip_err *err);

/** Uploads `len` bytes from memory. */
int dip_s3_put_mem(dip_s3 *s3, const char *bucket, const char *key, const void *data, size_t len,
                   struct dip_err *err);
/** A body produced as it is sent (e.g. sealed on the fly): `len` bytes; before each attempt of
 * a request the client calls seek(ud, off) with the offset that request starts at (0, or a
 * part's start), then read(ud, buf, n) in order until the request has its bytes. read returns
 * how many bytes it wrote (1..n), 0 on failure. */
struct dip_s3_source {
    void *ud;
    uint64_t len;
    void (*seek)(void *ud, uint64_t off);
    size_t (*read)(void *ud, uint8_t *buf, size_t n);
};
/** Uploads from `src` (multipart above 8 MiB, a part retried from its start). */
int dip_s3_put_src(dip_s3 *s3, const char *bucket, const char *key, const struct dip_s3_source *src,
                   struct dip_err *err);
/** Uploads the file open on `fd` (its size from fstat; read with pread, never wholly in memory). */
int dip_s3_put_fd(dip_s3 *s3, const char *bucket, const char *key, int fd, struct dip_err *err);
/** Downloads into a dip_malloc'ed buffer of exactly the object's size (dip_free). DIP_ELIMIT when
 * the object has more than `max_bytes`. */
int dip_s3_get_mem(dip_s3 *s3, const char *bucket, const char *key, size_t max_bytes, uint8_t **out,
                   size_t *len, struct dip_err *err);
/** Downloads into the file open on `fd` (written from its start, truncated to the object's size).
 */
int dip_s3_get_fd(dip_s3 *s3, const char *bucket, const char *key, int fd, struct dip_err *err);
/** Downloads bytes [first, last] of an object into a buffer (a Range request; for tests and
 * sniffing headers). */
int dip_s3_get_range(dip_s3 *s3, const char *bucket, const char *key, uint64_t first, uint64_t last,
                     uint8_t **out, size_t *len, struct dip_err *err);
/** The object's size; DIP_ENOTFOUND when it does not exist. */
int dip_s3_head(dip_s3 *s3, const char *bucket, const char *key, uint64_t *size,
                struct dip_err *err);
/** Deletes an object (a missing object is not an error, as in S3). */
int dip_s3_delete(dip_s3 *s3, const char *bucket, const char *key, struct dip_err *err);
/** Calls fn for every object whose key starts with `prefix`, in S3's (byte) order; fn returns
 * nonzero to stop. ListObjectsV2, 1000 keys a page. */
int dip_s3_list(dip_s3 *s3, const char *bucket, const char *prefix,
                int (*fn)(void *ud, const char *key, uint64_t size), void *ud, struct dip_err *err);

/** As dip_s3_list, with each object's LastModified (unix seconds; 0 when unreadable). */
int dip_s3_list_ex(dip_s3 *s3, const char *bucket, const char *prefix,
                   int (*fn)(void *ud, const char *key, uint64_t size, double mtime), void *ud,
                   struct dip_err *err);

/** A presigned GET URL for the object, valid `expires_s` seconds (1..604800): SigV4 query signing
 * (X-Amz-Algorithm ... X-Amz-Signature, signed header host, UNSIGNED-PAYLOAD), computed here
 * since libcurl cannot presign. Signed now, or at DIP_S3_FIXED_DATE. *url is dip_malloc'ed.
 * DIP_EINVAL without credentials. Makes no request. */
int dip_s3_presign(dip_s3 *s3, const char *bucket, const char *key, unsigned expires_s, char **url,
                   struct dip_err *err);

/** Requests made and retried since the client was created (for logs and tests). */
void dip_s3_stats(dip_s3 *s3, uint64_t *requests, uint64_t *retries);

/** "libcurl 7.88.1": the linked library's version (static string). */
const char *dip_s3_version(void);

#ifdef __cplusplus
}
#endif
#endif
