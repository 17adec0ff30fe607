/* SPDX-License-Identifier: MIT */
/* The S3 client (include/dip/s3.h) on libcurl: requests are signed by CURLOPT_AWS_SIGV4, never by
 * hand. This file is the only one besides store.c's SQLite that talks to a library of the outside
 * world, and curl's codes and S3's XML errors are mapped to DIP_E* here and nowhere else.
 * Bodies stream: an upload reads its source (memory or pread on a file) as curl asks, a download
 * writes into one buffer sized from Content-Length or into a file, so no object is copied twice.
 * The one signature computed by hand is the presigned URL (dip_s3_presign): libcurl cannot
 * presign, so SigV4 query signing is done here with dip_hmac_sha256 (nettle, in src/crypto).
 * What this file does not do: server-side encryption, bucket management. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "dip/crypto.h"
#include "dip/error.h"
#include "dip/image.h" /* dip_malloc */
#include "dip/s3.h"
#include "dip/store.h"
#include "dip/version.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_PARTS    10000
#define XML_MAX      ((size_t)16 << 20) /* a list page or an error body */

struct dip_s3 {
    char *endpoint; /* scheme://host[:port], no trailing slash */
    char *scheme;   /* "http" | "https" */
    char *hostport; /* host[:port] */
    char *region;
    char *userpwd; /* "access:secret" or NULL */
    char *sigv4;   /* "aws:amz:REGION:s3" */
    char *session_token;
    char *session_header; /* "x-amz-security-token: ..." */
    char *connect_to;
    char *fixed_date;
    int path_style;
    int max_attempts, backoff_ms;
    CURLSH *share;
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST]; /* one per kind: curl nests them */
    pthread_mutex_t stats_lock;
    uint64_t requests, retries;
};

/* ---- Small helpers ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *dip_s3_version(void)
{
    static char buf[48];
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

    snprintf(buf, sizeof(buf), "libcurl %s", v && v->version ? v->version : "?");
    return buf;
}

/* A growable byte buffer with a cap. */
struct dbuf {
    char *p;
    size_t len, cap, max;
};

static int dbuf_add(struct dbuf *b, const void *data, size_t n)
{
    if (n > b->max - b->len)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *q;
        while (cap < b->len + n + 1)
            cap *= 2;
        q = realloc(b->p, cap);
        if (q == NULL)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int dbuf_printf(struct dbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int dbuf_printf(struct dbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    return dbuf_add(b, tmp, (size_t)n);
}

/* Percent-encodes `s` as SigV4 wants (RFC 3986 unreserved characters stay; '/' stays when
 * `keep_slash`). */
static int dbuf_uri(struct dbuf *b, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && keep_slash)) {
            if (dbuf_add(b, s, 1) != 0)
                return -1;
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (dbuf_add(b, e, 3) != 0)
                return -1;
        }
    }
    return 0;
}

static char *xstrdup(const char *s)
{
    return s ? dip_strdup(s) : NULL;
}

/* The text of the first <tag>...</tag> at or after `from` (entities decoded) into `out`; returns
 * a pointer past the closing tag, or NULL when absent. */
static const char *xml_get(const char *from, const char *end, const char *tag, char *out,
                           size_t cap)
{
    char open[64], close[64];
    const char *a, *b;
    size_t n = 0;

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    if (cap)
        out[0] = '\0';
    a = from ? strstr(from, open) : NULL;
    if (a == NULL || a >= end)
        return NULL;
    a += strlen(open);
    b = strstr(a, close);
    if (b == NULL || b > end)
        return NULL;
    while (a < b && n + 1 < cap) {
        static const struct {
            const char *ent;
            char c;
        } ents[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        int done = 0;
        if (*a == '&') {
            for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
                size_t el = strlen(ents[i].ent);
                if ((size_t)(b - a) >= el && memcmp(a, ents[i].ent, el) == 0) {
                    out[n++] = ents[i].c;
                    a += el;
                    done = 1;
                    break;
                }
            }
        }
        if (!done)
            out[n++] = *a++;
    }
    if (cap)
        out[n] = '\0';
    return b + strlen(close);
}

/* ---- Configuration ---- */

void dip_s3_config_env(struct dip_s3_config *c)
{
    const char *v;

    memset(c, 0, sizeof(*c));
    c->path_style = -1;
    c->endpoint = getenv("AWS_ENDPOINT_URL_S3");
    if (c->endpoint == NULL || !*c->endpoint)
        c->endpoint = getenv("AWS_ENDPOINT_URL");
    c->region = getenv("AWS_REGION");
    if (c->region == NULL || !*c->region)
        c->region = getenv("AWS_DEFAULT_REGION");
    c->access_key = getenv("AWS_ACCESS_KEY_ID");
    c->secret_key = getenv("AWS_SECRET_ACCESS_KEY");
    c->session_token = getenv("AWS_SESSION_TOKEN");
    v = getenv("DIP_S3_ADDRESSING");
    if (v != NULL && strcmp(v, "path") == 0)
        c->path_style = 1;
    else if (v != NULL && strcmp(v, "virtual") == 0)
        c->path_style = 0;
    else if (v != NULL && *v)
        c->path_style = -2; /* refused by dip_s3_new */
    v = getenv("DIP_S3_MAX_ATTEMPTS");
    if (v != NULL && *v) {
        long n = strtol(v, NULL, 10);
        c->max_attempts = n < 1 ? 1 : n > 100 ? 100 : (int)n;
    }
    c->connect_to = getenv("DIP_S3_CONNECT_TO");
    c->fixed_date = getenv("DIP_S3_FIXED_DATE");
}

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *ud)
{
    (void)h, (void)a;
    pthread_mutex_lock(&((dip_s3 *)ud)->share_lock[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *ud)
{
    (void)h;
    pthread_mutex_unlock(&((dip_s3 *)ud)->share_lock[d]);
}

int dip_s3_new(const struct dip_s3_config *c, dip_s3 **out, struct dip_err *err)
{
    dip_s3 *s3 = NULL;
    struct dbuf b = {.max = 65536};
    const char *ep, *sep;
    int rc = 0;

    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return dip_err_set(err, DIP_EIO, "s3: curl_global_init: %s", curl_easy_strerror(global_rc));
    if (c->path_style == -2)
        return dip_err_set(err, DIP_EINVAL, "s3: DIP_S3_ADDRESSING must be 'path' or 'virtual'");
    s3 = dip_calloc(1, sizeof(*s3));
    if (s3 == NULL)
        return DIP_ENOMEM;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s3->share_lock[i], NULL);
    pthread_mutex_init(&s3->stats_lock, NULL);
    s3->region = dip_strdup(c->region && *c->region ? c->region : "us-east-1");
    if (s3->region == NULL)
        goto nomem;
    if (c->endpoint != NULL && *c->endpoint) {
        ep = c->endpoint;
        s3->path_style = c->path_style < 0 ? 1 : c->path_style;
    } else {
        if (dbuf_printf(&b, "https://s3.%s.amazonaws.com", s3->region) != 0)
            goto nomem;
        ep = b.p;
        s3->path_style = c->path_style < 0 ? 0 : c->path_style;
    }
    sep = strstr(ep, "://");
    if (sep == NULL || (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) ||
        sep[3] == '\0' ||
        (strchr(sep + 3, '/') != NULL && strcmp(strchr(sep + 3, '/'), "/") != 0)) {
        rc = dip_err_set(err, DIP_EINVAL,
                         "s3: endpoint '%s' is not http(s)://HOST[:PORT] (no path)", ep);
        goto out;
    }
    s3->endpoint = dip_strdup(ep);
    s3->scheme = dip_strdup(ep[4] == 's' ? "https" : "http");
    s3->hostport = dip_strdup(sep + 3);
    if (s3->endpoint == NULL || s3->scheme == NULL || s3->hostport == NULL)
        goto nomem;
    {
        size_t n = strlen(s3->endpoint);
        if (n > 0 && s3->endpoint[n - 1] == '/')
            s3->endpoint[n - 1] = '\0';
        n = strlen(s3->hostport);
        if (n > 0 && s3->hostport[n - 1] == '/')
            s3->hostport[n - 1] = '\0';
    }
    if (c->access_key != NULL && *c->access_key) {
        b.len = 0;
        if (dbuf_printf(&b, "%s:%s", c->access_key, c->secret_key ? c->secret_key : "") != 0 ||
            (s3->userpwd = dip_strdup(b.p)) == NULL)
            goto nomem;
        b.len = 0;
        if (dbuf_printf(&b, "aws:amz:%s:s3", s3->region) != 0 ||
            (s3->sigv4 = dip_strdup(b.p)) == NULL)
            goto nomem;
    }
    if (c->session_token && *c->session_token) {
        b.len = 0;
        if ((s3->session_token = xstrdup(c->session_token)) == NULL ||
            dbuf_add(&b, "x-amz-security-token: ", 22) != 0 ||
            dbuf_add(&b, c->session_token, strlen(c->session_token)) != 0 ||
            (s3->session_header = dip_strdup(b.p)) == NULL)
            goto nomem;
    }
    if ((c->connect_to && *c->connect_to && (s3->connect_to = xstrdup(c->connect_to)) == NULL) ||
        (c->fixed_date && *c->fixed_date && (s3->fixed_date = xstrdup(c->fixed_date)) == NULL))
        goto nomem;
    s3->max_attempts = c->max_attempts > 0 ? c->max_attempts : 5;
    s3->backoff_ms = c->backoff_ms > 0 ? c->backoff_ms : 200;
    s3->share = curl_share_init();
    if (s3->share == NULL)
        goto nomem;
    curl_share_setopt(s3->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(s3->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(s3->share, CURLSHOPT_USERDATA, s3);
    curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    *out = s3;
    s3 = NULL;
    goto out;
nomem:
    rc = DIP_ENOMEM;
out:
    free(b.p);
    dip_s3_free(s3);
    return rc;
}

void dip_s3_free(dip_s3 *s3)
{
    if (s3 == NULL)
        return;
    if (s3->share != NULL)
        curl_share_cleanup(s3->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s3->share_lock[i]);
    pthread_mutex_destroy(&s3->stats_lock);
    dip_free(s3->endpoint);
    dip_free(s3->scheme);
    dip_free(s3->hostport);
    dip_free(s3->region);
    if (s3->userpwd != NULL)
        explicit_bzero(s3->userpwd, strlen(s3->userpwd));
    dip_free(s3->userpwd);
    dip_free(s3->sigv4);
    dip_free(s3->session_token);
    dip_free(s3->session_header);
    dip_free(s3->connect_to);
    dip_free(s3->fixed_date);
    dip_free(s3);
}

void dip_s3_stats(dip_s3 *s3, uint64_t *requests, uint64_t *retries)
{
    pthread_mutex_lock(&s3->stats_lock);
    *requests = s3->requests;
    *retries = s3->retries;
    pthread_mutex_unlock(&s3->stats_lock);
}

int dip_s3_is_url(const char *url)
{
    return url != NULL && strncmp(url, "s3://", 5) == 0;
}

int dip_s3_parse_url(const char *url, char bucket[64], const char **key, struct dip_err *err)
{
    const char *p, *slash;
    size_t n;

    bucket[0] = '\0';
    *key = "";
    if (!dip_s3_is_url(url))
        return dip_err_set(err, DIP_EINVAL, "%s: not an s3:// URL", url);
    p = url + 5;
    slash = strchr(p, '/');
    n = slash ? (size_t)(slash - p) : strlen(p);
    if (n < 3 || n > 63)
        return dip_err_set(err, DIP_EINVAL, "%s: a bucket name has 3 to 63 characters", url);
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return dip_err_set(err, DIP_EINVAL,
                               "%s: a bucket name has lower-case letters, digits, '-' and '.'",
                               url);
    }
    memcpy(bucket, p, n);
    bucket[n] = '\0';
    *key = slash ? slash + 1 : "";
    return 0;
}

/* ---- One request, with retries ---- */

enum { SRC_NONE, SRC_MEM, SRC_FD, SRC_CB };
enum { SINK_NONE, SINK_MEM, SINK_FD };

struct req {
    dip_s3 *s3;
    const char *method;
    const char *bucket, *key; /* for messages */
    struct dbuf url;
    const char *range; /* "bytes=A-B" or NULL */
    const char *content_type;
    /* upload: `src_len` bytes from `src_off` of memory or a file */
    int src;
    const uint8_t *src_mem;
    int src_fd;
    const struct dip_s3_source *src_cb;
    uint64_t src_off, src_len, sent;
    /* download */
    int sink;
    int sink_fd;
    uint8_t *mem;
    size_t mem_len, mem_cap, max_bytes;
    int over_limit;
    int sink_failed;
    /* response */
    long status;
    struct dbuf body; /* an XML answer, or the error body */
    char etag[256];
    uint64_t content_length;
};

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud)
{
    struct req *r = ud;
    size_t want = size * nmemb;
    uint64_t left = r->src_len - r->sent;

    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (r->src == SRC_MEM) {
        memcpy(buf, r->src_mem + r->src_off + r->sent, want);
    } else if (r->src == SRC_CB) {
        want = r->src_cb->read(r->src_cb->ud, (uint8_t *)buf, want);
        if (want == 0)
            return CURL_READFUNC_ABORT;
    } else {
        ssize_t got = pread(r->src_fd, buf, want, (off_t)(r->src_off + r->sent));
        if (got <= 0)
            return CURL_READFUNC_ABORT;
        want = (size_t)got;
    }
    r->sent += want;
    return want;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    struct req *r = ud;
    size_t n = size * nmemb;
    if (r->status == 0 || r->status >= 300 || r->sink == SINK_NONE) {
        /* An XML answer or an error: keep it (capped). */
        if (dbuf_add(&r->body, data, n) != 0)
            return 0;
        return n;
    }
    if (r->sink == SINK_FD) {
        size_t done = 0;
        while (done < n) {
            ssize_t w = pwrite(r->sink_fd, data + done, n - done, (off_t)r->mem_len);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                r->sink_failed = errno ? errno : EIO;
                return 0;
            }
            done += (size_t)w;
            r->mem_len += (size_t)w;
        }
        return n;
    }
    /* Memory: one buffer of the announced length, grown only when the server sent none. */
    if (n > r->max_bytes - r->mem_len) {
        r->over_limit = 1;
        return 0;
    }
    if (r->mem_len + n > r->mem_cap) {
        size_t cap = r->mem_cap;
        uint8_t *q;
        if (r->content_length > 0 && r->content_length <= r->max_bytes &&
            r->content_length >= r->mem_len + n)
            cap = (size_t)r->content_length;
        else
            while (cap < r->mem_len + n)
                cap = cap ? cap * 2 : 65536;
        if (cap > r->max_bytes)
            cap = r->max_bytes;
        q = dip_realloc(r->mem, cap + 1);
        if (q == NULL) {
            r->sink_failed = ENOMEM;
            return 0;
        }
        r->mem = q;
        r->mem_cap = cap;
    }
    memcpy(r->mem + r->mem_len, data, n);
    r->mem_len += n;
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct req *r = ud;
    size_t n = size * nmemb;

    if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (after 100-continue, or a retry): its status. */
        const char *sp = memchr(data, ' ', n);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        r->content_length = 0;
    } else if (n > 15 && strncasecmp(data, "content-length:", 15) == 0) {
        r->content_length = strtoull(data + 15, NULL, 10);
    } else if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
        size_t i = 5, k = 0;
        while (i < n && (data[i] == ' ' || data[i] == '\t'))
            i++;
        while (i < n && data[i] != '\r' && data[i] != '\n' && k + 1 < sizeof(r->etag))
            r->etag[k++] = data[i++];
        r->etag[k] = '\0';
    }
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int retryable_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

/* The object's name for messages: s3://bucket/key. */
static void obj_name(const struct req *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "s3://%s/%s", r->bucket ? r->bucket : "", r->key ? r->key : "");
}

/* Maps an HTTP error answer to a DIP_E* with S3's code and message. */
static int http_error(struct req *r, struct dip_err *err)
{
    char code[128] = "", msg[256] = "", name[600];
    const char *end = r->body.p ? r->body.p + r->body.len : NULL;
    int dip;

    if (r->body.p != NULL) {
        xml_get(r->body.p, end, "Code", code, sizeof(code));
        xml_get(r->body.p, end, "Message", msg, sizeof(msg));
    }
    obj_name(r, name, sizeof(name));
    if (r->status == 404 || strcmp(code, "NoSuchBucket") == 0 || strcmp(code, "NoSuchKey") == 0)
        dip = DIP_ENOTFOUND;
    else if (r->status == 401 || r->status == 403)
        dip = DIP_EAUTH;
    else if (r->status == 400 || r->status == 411 || r->status == 416)
        dip = DIP_EINVAL;
    else
        dip = DIP_EIO;
    if (strcmp(code, "NoSuchBucket") == 0)
        return dip_err_set(err, dip, "%s: bucket '%s' does not exist (%s %ld NoSuchBucket)", name,
                           r->bucket, r->method, r->status);
    if (r->status == 404 && code[0] == '\0')
        return dip_err_set(err, dip, "%s: not found (%s 404)", name, r->method);
    return dip_err_set(err, dip, "%s: %s %ld %s%s%s", name, r->method, r->status,
                       code[0] ? code : "error", msg[0] ? ": " : "", msg);
}

static void req_reset_attempt(struct req *r)
{
    r->sent = 0;
    r->status = 0;
    r->body.len = 0;
    if (r->body.p)
        r->body.p[0] = '\0';
    r->etag[0] = '\0';
    r->content_length = 0;
    r->mem_len = 0;
    r->over_limit = 0;
    r->sink_failed = 0;
}

static int perform(struct req *r, struct dip_err *err)
{
    dip_s3 *s3 = r->s3;
    char name[600];
    int rc = 0;

    obj_name(r, name, sizeof(name));
    for (int attempt = 1;; attempt++) {
        CURL *h = curl_easy_init();
        struct curl_slist *hdrs = NULL, *ct = NULL;
        char hbuf[512];
        CURLcode cc;
        int retry = 0;

        req_reset_attempt(r);
        if (r->src == SRC_CB)
            r->src_cb->seek(r->src_cb->ud, r->src_off);
        if (r->sink == SINK_FD && ftruncate(r->sink_fd, 0) != 0)
            return dip_err_set(err, DIP_EIO, "%s: cannot truncate the download file: %s", name,
                               strerror(errno));
        if (h == NULL)
            return DIP_ENOMEM;
        pthread_mutex_lock(&s3->stats_lock);
        s3->requests++;
        pthread_mutex_unlock(&s3->stats_lock);
        curl_easy_setopt(h, CURLOPT_URL, r->url.p);
        curl_easy_setopt(h, CURLOPT_SHARE, s3->share);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "dip/" DIP_VERSION);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        /* A stalled transfer (under 1 byte/s for 30 s) is a timeout, and timeouts are retried. */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
        if (s3->connect_to != NULL) {
            ct = curl_slist_append(NULL, s3->connect_to);
            curl_easy_setopt(h, CURLOPT_CONNECT_TO, ct);
        }
        if (s3->userpwd != NULL) {
            curl_easy_setopt(h, CURLOPT_USERPWD, s3->userpwd);
            curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s3->sigv4);
        }
        /* libcurl 7.88 signs the payload hash it finds in this header; S3 wants the header. */
        hdrs = curl_slist_append(hdrs, r->src != SRC_NONE ? "x-amz-content-sha256: UNSIGNED-PAYLOAD"
                                                          : "x-amz-content-sha256: " EMPTY_SHA256);
        if (s3->fixed_date != NULL) {
            snprintf(hbuf, sizeof(hbuf), "x-amz-date: %s", s3->fixed_date);
            hdrs = curl_slist_append(hdrs, hbuf);
        }
        if (s3->session_token != NULL) /* STS tokens run to a few KiB */
            hdrs = curl_slist_append(hdrs, s3->session_header);
        if (r->range != NULL) {
            snprintf(hbuf, sizeof(hbuf), "Range: %s", r->range);
            hdrs = curl_slist_append(hdrs, hbuf);
        }
        if (r->content_type != NULL) {
            snprintf(hbuf, sizeof(hbuf), "Content-Type: %s", r->content_type);
            hdrs = curl_slist_append(hdrs, hbuf);
        }
        if (r->src != SRC_NONE) {
            /* No "Expect: 100-continue" round trip; S3 answers errors after the body anyway. */
            hdrs = curl_slist_append(hdrs, "Expect:");
            if (strcmp(r->method, "PUT") == 0) {
                curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->src_len);
            } else {
                curl_easy_setopt(h, CURLOPT_POST, 1L);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->src_len);
            }
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, r);
        } else if (strcmp(r->method, "HEAD") == 0) {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (strcmp(r->method, "POST") == 0) {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        } else if (strcmp(r->method, "GET") != 0) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        cc = curl_easy_perform(h);
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);
        curl_slist_free_all(ct);

        if (cc == CURLE_WRITE_ERROR && r->over_limit) {
            rc = dip_err_set(err, DIP_ELIMIT, "%s: object has more than %zu bytes", name,
                             r->max_bytes);
        } else if (cc == CURLE_WRITE_ERROR && r->sink_failed) {
            rc = r->sink_failed == ENOMEM
                     ? DIP_ENOMEM
                     : dip_err_set(err, DIP_EIO, "%s: cannot write the download: %s", name,
                                   strerror(r->sink_failed));
        } else if (cc != CURLE_OK) {
            retry = retryable_curl(cc);
            rc = dip_err_set(err, DIP_EIO, "%s: %s %s: %s", name, r->method, s3->endpoint,
                             curl_easy_strerror(cc));
        } else if (r->status >= 500 || r->status == 429) {
            retry = 1;
            rc = http_error(r, err);
            if (rc == DIP_ENOTFOUND)
                rc = DIP_EIO;
        } else if (r->status >= 300) {
            rc = http_error(r, err);
        } else {
            rc = 0;
        }
        if (!retry || attempt >= s3->max_attempts) {
            if (rc != 0 && retry)
                dip_err_prefix(err, "after %d attempts: ", attempt);
            return rc;
        }
        /* Exponential backoff with full jitter, capped at 10 s. */
        {
            long cap = (long)s3->backoff_ms << (attempt - 1 < 6 ? attempt - 1 : 6);
            uint32_t rnd = 0;
            if (cap > 10000)
                cap = 10000;
            (void)dip_store_random(&rnd, sizeof(rnd), NULL);
            pthread_mutex_lock(&s3->stats_lock);
            s3->retries++;
            pthread_mutex_unlock(&s3->stats_lock);
            sleep_ms(cap / 2 + (long)(rnd % (uint32_t)(cap / 2 + 1)));
        }
    }
}

/* Builds the URL of `key` in `bucket` (key NULL: the bucket itself) with `query` (already
 * encoded and sorted, or NULL). */
static int build_url(struct req *r, const char *query)
{
    dip_s3 *s3 = r->s3;
    int bad = 0;

    r->url.len = 0;
    r->url.max = 64 * 1024;
    if (s3->path_style)
        bad |= dbuf_printf(&r->url, "%s/%s/", s3->endpoint, r->bucket);
    else
        bad |= dbuf_printf(&r->url, "%s://%s.%s/", s3->scheme, r->bucket, s3->hostport);
    if (r->key != NULL)
        bad |= dbuf_uri(&r->url, r->key, 1);
    if (query != NULL)
        bad |= dbuf_printf(&r->url, "?%s", query);
    return bad ? DIP_ENOMEM : 0;
}

static void req_init(struct req *r, dip_s3 *s3, const char *method, const char *bucket,
                     const char *key)
{
    memset(r, 0, sizeof(*r));
    r->s3 = s3;
    r->method = method;
    r->bucket = bucket;
    r->key = key;
    r->body.max = XML_MAX;
    r->src_fd = -1;
    r->sink_fd = -1;
}

static void req_cleanup(struct req *r)
{
    free(r->url.p);
    free(r->body.p);
    dip_free(r->mem);
}

/* ---- Uploads ---- */

static int put_single(dip_s3 *s3, const char *bucket, const char *key, int src, const void *mem,
                      int fd, const struct dip_s3_source *cb, uint64_t len, struct dip_err *err)
{
    struct req r;
    int rc;

    req_init(&r, s3, "PUT", bucket, key);
    r.src = src;
    r.src_mem = mem;
    r.src_fd = fd;
    r.src_cb = cb;
    r.src_len = len;
    rc = build_url(&r, NULL);
    if (rc == 0)
        rc = perform(&r, err);
    req_cleanup(&r);
    return rc;
}

static int put_multipart(dip_s3 *s3, const char *bucket, const char *key, int src, const void *mem,
                         int fd, const struct dip_s3_source *cb, uint64_t len, struct dip_err *err)
{
    struct req r;
    struct dbuf q = {.max = 4096}, done = {.max = (size_t)MAX_PARTS * 200 + 4096};
    char upload_id[1024] = "";
    uint64_t part = DIP_S3_PART_BYTES, nparts;
    int rc;

    /* S3 allows 10000 parts: grow the part size for very large objects. */
    while ((len + part - 1) / part > MAX_PARTS)
        part *= 2;
    nparts = (len + part - 1) / part;

    req_init(&r, s3, "POST", bucket, key);
    rc = build_url(&r, "uploads=");
    if (rc == 0)
        rc = perform(&r, err);
    if (rc == 0 &&
        (r.body.p == NULL ||
         !xml_get(r.body.p, r.body.p + r.body.len, "UploadId", upload_id, sizeof(upload_id)) ||
         upload_id[0] == '\0'))
        rc = dip_err_set(err, DIP_EIO, "s3://%s/%s: multipart upload: no UploadId in the answer",
                         bucket, key);
    req_cleanup(&r);
    if (rc != 0)
        goto out;
    if (dbuf_printf(&done, "<CompleteMultipartUpload>") != 0) {
        rc = DIP_ENOMEM;
        goto abort;
    }
    for (uint64_t i = 0; i < nparts; i++) {
        uint64_t off = i * part;
        q.len = 0;
        if (dbuf_printf(&q, "partNumber=%llu&uploadId=", (unsigned long long)(i + 1)) != 0 ||
            dbuf_uri(&q, upload_id, 0) != 0) {
            rc = DIP_ENOMEM;
            goto abort;
        }
        req_init(&r, s3, "PUT", bucket, key);
        r.src = src;
        r.src_mem = mem;
        r.src_fd = fd;
        r.src_cb = cb;
        r.src_off = off;
        r.src_len = len - off < part ? len - off : part;
        rc = build_url(&r, q.p);
        if (rc == 0)
            rc = perform(&r, err);
        if (rc == 0 && r.etag[0] == '\0')
            rc = dip_err_set(err, DIP_EIO, "s3://%s/%s: part %llu: no ETag in the answer", bucket,
                             key, (unsigned long long)(i + 1));
        if (rc == 0 &&
            dbuf_printf(&done, "<Part><PartNumber>%llu</PartNumber><ETag>%s</ETag></Part>",
                        (unsigned long long)(i + 1), r.etag) != 0)
            rc = DIP_ENOMEM;
        req_cleanup(&r);
        if (rc != 0)
            goto abort;
    }
    if (dbuf_printf(&done, "</CompleteMultipartUpload>") != 0) {
        rc = DIP_ENOMEM;
        goto abort;
    }
    q.len = 0;
    if (dbuf_printf(&q, "uploadId=") != 0 || dbuf_uri(&q, upload_id, 0) != 0) {
        rc = DIP_ENOMEM;
        goto abort;
    }
    req_init(&r, s3, "POST", bucket, key);
    r.src = SRC_MEM;
    r.src_mem = (const uint8_t *)done.p;
    r.src_len = done.len;
    r.content_type = "application/xml";
    rc = build_url(&r, q.p);
    if (rc == 0)
        rc = perform(&r, err);
    /* CompleteMultipartUpload may answer 200 with an <Error> in the body. */
    if (rc == 0 && r.body.p != NULL && strstr(r.body.p, "<Error>") != NULL) {
        r.status = 500;
        rc = http_error(&r, err);
    }
    req_cleanup(&r);
    if (rc == 0)
        goto out;
abort:
    /* Best effort: leave no parts behind (they cost storage). */
    q.len = 0;
    if (dbuf_printf(&q, "uploadId=") == 0 && dbuf_uri(&q, upload_id, 0) == 0) {
        req_init(&r, s3, "DELETE", bucket, key);
        if (build_url(&r, q.p) == 0)
            (void)perform(&r, NULL);
        req_cleanup(&r);
    }
out:
    free(q.p);
    free(done.p);
    return rc;
}

int dip_s3_put_mem(dip_s3 *s3, const char *bucket, const char *key, const void *data, size_t len,
                   struct dip_err *err)
{
    if (len > DIP_S3_PART_BYTES)
        return put_multipart(s3, bucket, key, SRC_MEM, data, -1, NULL, len, err);
    return put_single(s3, bucket, key, SRC_MEM, data, -1, NULL, len, err);
}

int dip_s3_put_src(dip_s3 *s3, const char *bucket, const char *key, const struct dip_s3_source *src,
                   struct dip_err *err)
{
    if (src->len > DIP_S3_PART_BYTES)
        return put_multipart(s3, bucket, key, SRC_CB, NULL, -1, src, src->len, err);
    return put_single(s3, bucket, key, SRC_CB, NULL, -1, src, src->len, err);
}

int dip_s3_put_fd(dip_s3 *s3, const char *bucket, const char *key, int fd, struct dip_err *err)
{
    struct stat sb;

    if (fstat(fd, &sb) != 0)
        return dip_err_set(err, DIP_EIO, "s3://%s/%s: cannot stat the source: %s", bucket, key,
                           strerror(errno));
    if ((uint64_t)sb.st_size > DIP_S3_PART_BYTES)
        return put_multipart(s3, bucket, key, SRC_FD, NULL, fd, NULL, (uint64_t)sb.st_size, err);
    return put_single(s3, bucket, key, SRC_FD, NULL, fd, NULL, (uint64_t)sb.st_size, err);
}

/* ---- Downloads ---- */

static int get_mem(dip_s3 *s3, const char *bucket, const char *key, const char *range,
                   size_t max_bytes, uint8_t **out, size_t *len, struct dip_err *err)
{
    struct req r;
    int rc;

    *out = NULL;
    *len = 0;
    req_init(&r, s3, "GET", bucket, key);
    r.sink = SINK_MEM;
    r.max_bytes = max_bytes;
    r.range = range;
    rc = build_url(&r, NULL);
    if (rc == 0)
        rc = perform(&r, err);
    if (rc == 0) {
        if (r.mem == NULL)
            r.mem = dip_malloc(1);
        if (r.mem == NULL) {
            rc = DIP_ENOMEM;
        } else {
            *out = r.mem;
            *len = r.mem_len;
            r.mem = NULL;
        }
    }
    req_cleanup(&r);
    return rc;
}

int dip_s3_get_mem(dip_s3 *s3, const char *bucket, const char *key, size_t max_bytes, uint8_t **out,
                   size_t *len, struct dip_err *err)
{
    return get_mem(s3, bucket, key, NULL, max_bytes, out, len, err);
}

int dip_s3_get_range(dip_s3 *s3, const char *bucket, const char *key, uint64_t first, uint64_t last,
                     uint8_t **out, size_t *len, struct dip_err *err)
{
    char range[64];

    snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)first,
             (unsigned long long)last);
    return get_mem(s3, bucket, key, range, (size_t)(last - first + 1), out, len, err);
}

int dip_s3_get_fd(dip_s3 *s3, const char *bucket, const char *key, int fd, struct dip_err *err)
{
    struct req r;
    int rc;

    req_init(&r, s3, "GET", bucket, key);
    r.sink = SINK_FD;
    r.sink_fd = fd;
    rc = build_url(&r, NULL);
    if (rc == 0)
        rc = perform(&r, err);
    if (rc == 0 && r.content_length > 0 && r.mem_len != r.content_length)
        rc = dip_err_set(err, DIP_EIO, "s3://%s/%s: got %zu of %llu bytes", bucket, key, r.mem_len,
                         (unsigned long long)r.content_length);
    req_cleanup(&r);
    return rc;
}

int dip_s3_head(dip_s3 *s3, const char *bucket, const char *key, uint64_t *size,
                struct dip_err *err)
{
    struct req r;
    int rc;

    *size = 0;
    req_init(&r, s3, "HEAD", bucket, key);
    rc = build_url(&r, NULL);
    if (rc == 0)
        rc = perform(&r, err);
    if (rc == 0)
        *size = r.content_length;
    req_cleanup(&r);
    return rc;
}

int dip_s3_delete(dip_s3 *s3, const char *bucket, const char *key, struct dip_err *err)
{
    struct req r;
    int rc;

    req_init(&r, s3, "DELETE", bucket, key);
    rc = build_url(&r, NULL);
    if (rc == 0)
        rc = perform(&r, err);
    req_cleanup(&r);
    return rc;
}

/* ---- Listing ---- */

struct list_plain {
    int (*fn)(void *ud, const char *key, uint64_t size);
    void *ud;
};

static int list_plain_fn(void *ud, const char *key, uint64_t size, double mtime)
{
    struct list_plain *lp = ud;

    (void)mtime;
    return lp->fn(lp->ud, key, size);
}

int dip_s3_list(dip_s3 *s3, const char *bucket, const char *prefix,
                int (*fn)(void *ud, const char *key, uint64_t size), void *ud, struct dip_err *err)
{
    struct list_plain lp = {fn, ud};

    return dip_s3_list_ex(s3, bucket, prefix, list_plain_fn, &lp, err);
}

/* "2013-09-17T18:07:53.000Z" -> unix seconds; 0 when unreadable. */
static double iso_time(const char *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (sscanf(t, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm);
}

int dip_s3_list_ex(dip_s3 *s3, const char *bucket, const char *prefix,
                   int (*fn)(void *ud, const char *key, uint64_t size, double mtime), void *ud,
                   struct dip_err *err)
{
    struct dbuf q = {.max = 8192};
    char token[2048] = "", *key = NULL;
    int rc = 0, stop = 0;

    key = dip_malloc(2048);
    if (key == NULL)
        return DIP_ENOMEM;
    do {
        struct req r;
        const char *p, *end;
        char trunc[16] = "", size[32], mtime[64];

        /* Parameters in SigV4's canonical (sorted) order. */
        q.len = 0;
        if ((token[0] && (dbuf_printf(&q, "continuation-token=") != 0 ||
                          dbuf_uri(&q, token, 0) != 0 || dbuf_printf(&q, "&") != 0)) ||
            dbuf_printf(&q, "list-type=2&prefix=") != 0 || dbuf_uri(&q, prefix, 0) != 0) {
            rc = DIP_ENOMEM;
            break;
        }
        req_init(&r, s3, "GET", bucket, prefix);
        r.key = NULL;
        rc = build_url(&r, q.p);
        r.key = prefix;
        if (rc == 0)
            rc = perform(&r, err);
        if (rc != 0 || r.body.p == NULL) {
            if (rc == 0)
                rc = dip_err_set(err, DIP_EIO, "s3://%s/%s: empty listing answer", bucket, prefix);
            req_cleanup(&r);
            break;
        }
        end = r.body.p + r.body.len;
        p = r.body.p;
        while (!stop && (p = strstr(p, "<Contents>")) != NULL) {
            const char *ce = strstr(p, "</Contents>");
            if (ce == NULL)
                break;
            if (xml_get(p, ce, "Key", key, 2048) == NULL) {
                p = ce;
                continue;
            }
            xml_get(p, ce, "Size", size, sizeof(size));
            xml_get(p, ce, "LastModified", mtime, sizeof(mtime));
            stop = fn(ud, key, strtoull(size, NULL, 10), iso_time(mtime));
            p = ce;
        }
        xml_get(r.body.p, end, "IsTruncated", trunc, sizeof(trunc));
        token[0] = '\0';
        if (strcmp(trunc, "true") == 0)
            xml_get(r.body.p, end, "NextContinuationToken", token, sizeof(token));
        req_cleanup(&r);
    } while (!stop && token[0] != '\0');
    free(q.p);
    dip_free(key);
    return rc;
}

/* ---- Presigned URLs (SigV4 query signing) ---- */

static void hex32(const uint8_t d[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";

    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

int dip_s3_presign(dip_s3 *s3, const char *bucket, const char *key, unsigned expires_s,
                   char **url_out, struct dip_err *err)
{
    struct dbuf path = {.max = 64 * 1024}, q = {.max = 64 * 1024}, creq = {.max = 256 * 1024},
                url = {.max = 256 * 1024};
    char ts[32], date[16], host[600], access[256], sts[512], hexd[65];
    const char *colon;
    uint8_t k[32], d[32];
    int rc = 0, bad = 0;

    *url_out = NULL;
    if (s3->userpwd == NULL || (colon = strchr(s3->userpwd, ':')) == NULL ||
        (size_t)(colon - s3->userpwd) >= sizeof(access))
        return dip_err_set(err, DIP_EINVAL,
                           "s3://%s/%s: cannot presign without credentials (AWS_ACCESS_KEY_ID)",
                           bucket, key);
    if (expires_s < 1 || expires_s > 604800)
        return dip_err_set(err, DIP_EINVAL, "presign: expiry %u s outside 1..604800", expires_s);
    memcpy(access, s3->userpwd, (size_t)(colon - s3->userpwd));
    access[colon - s3->userpwd] = '\0';
    if (s3->fixed_date != NULL && strlen(s3->fixed_date) == 16) {
        snprintf(ts, sizeof(ts), "%s", s3->fixed_date);
    } else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
    }
    memcpy(date, ts, 8);
    date[8] = '\0';
    if (s3->path_style) {
        snprintf(host, sizeof(host), "%s", s3->hostport);
        bad |= dbuf_printf(&path, "/%s/", bucket);
    } else {
        snprintf(host, sizeof(host), "%s.%s", bucket, s3->hostport);
        bad |= dbuf_printf(&path, "/");
    }
    bad |= dbuf_uri(&path, key, 1);
    /* The query in canonical (sorted, encoded) order. */
    bad |= dbuf_printf(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    bad |= dbuf_uri(&q, access, 0);
    bad |= dbuf_printf(&q, "%%2F%s%%2F%s%%2Fs3%%2Faws4_request&X-Amz-Date=%s&X-Amz-Expires=%u",
                       date, s3->region, ts, expires_s);
    if (s3->session_token != NULL) {
        bad |= dbuf_printf(&q, "&X-Amz-Security-Token=");
        bad |= dbuf_uri(&q, s3->session_token, 0);
    }
    bad |= dbuf_printf(&q, "&X-Amz-SignedHeaders=host");
    bad |= dbuf_add(&creq, "GET\n", 4) || dbuf_add(&creq, path.p, path.len) ||
           dbuf_add(&creq, "\n", 1) || dbuf_add(&creq, q.p, q.len) ||
           dbuf_printf(&creq, "\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", host);
    if (bad) {
        rc = DIP_ENOMEM;
        goto out;
    }
    dip_sha256_hex(creq.p, creq.len, hexd);
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s/%s/s3/aws4_request\n%s", ts, date,
             s3->region, hexd);
    {
        const char *secret = colon + 1;
        size_t sl = strlen(secret);
        char *ks = dip_malloc(sl + 5);
        if (ks == NULL) {
            rc = DIP_ENOMEM;
            goto out;
        }
        memcpy(ks, "AWS4", 4);
        memcpy(ks + 4, secret, sl + 1);
        dip_hmac_sha256(ks, sl + 4, date, strlen(date), k);
        explicit_bzero(ks, sl + 4);
        dip_free(ks);
    }
    dip_hmac_sha256(k, 32, s3->region, strlen(s3->region), d);
    dip_hmac_sha256(d, 32, "s3", 2, k);
    dip_hmac_sha256(k, 32, "aws4_request", 12, d);
    dip_hmac_sha256(d, 32, sts, strlen(sts), k);
    explicit_bzero(d, sizeof(d));
    hex32(k, hexd);
    if (dbuf_printf(&url, "%s://%s", s3->scheme, host) != 0 ||
        dbuf_add(&url, path.p, path.len) != 0 || dbuf_add(&url, "?", 1) != 0 ||
        dbuf_add(&url, q.p, q.len) != 0 || dbuf_printf(&url, "&X-Amz-Signature=%s", hexd) != 0 ||
        (*url_out = dip_strdup(url.p)) == NULL)
        rc = DIP_ENOMEM;
out:
    free(path.p);
    free(q.p);
    free(creq.p);
    free(url.p);
    return rc;
}
