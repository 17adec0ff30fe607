/* SPDX-License-Identifier: MIT */
/* Object storage in the CLI (see s3-opts.h). */
#include <fnmatch.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dip/exec.h"
#include "dip/image.h"
#include "s3-opts.h"
#ifdef DIP_WITH_STORE
#include "dip/s3.h"
#include "dip/store.h"
#endif

const char dip__cli_s3_help[] =
    "Object storage (s3://bucket/key; environment AWS_ENDPOINT_URL, AWS_REGION,\n"
    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; see README):\n"
    "  --s3-endpoint URL     http(s)://HOST[:PORT] of an S3-compatible service\n"
    "                        (default AWS_ENDPOINT_URL, else AWS S3 in the region)\n"
    "  --s3-region R         signing region (default AWS_REGION, else us-east-1)\n"
    "  --s3-addressing A     path (http://host/bucket/key) or virtual (http://bucket.host/key);\n"
    "                        default path with an endpoint, virtual for AWS\n";

int dip__cli_s3_opt(int opt, const char *arg, struct dip__cli_s3 *c, int *bad)
{
    switch (opt) {
    case DIP_OPT_S3_ENDPOINT:
        c->endpoint = arg;
        return 1;
    case DIP_OPT_S3_REGION:
        c->region = arg;
        return 1;
    case DIP_OPT_S3_ADDRESSING:
        if (strcmp(arg, "path") == 0) {
            c->path_style = 1;
        } else if (strcmp(arg, "virtual") == 0) {
            c->path_style = 0;
        } else {
            fprintf(stderr, "dip: --s3-addressing must be 'path' or 'virtual'\n");
            *bad = 1;
        }
        return 1;
    default:
        return 0;
    }
}

int dip__cli_s3_is_url(const char *s)
{
    return s != NULL && strncmp(s, "s3://", 5) == 0;
}

void dip__cli_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        dip_free(v[i]);
    dip_free(v);
}

/* A growing list of strings. */
struct strv {
    char **v;
    size_t n, cap;
};

static int strv_add(struct strv *s, const char *a, const char *b)
{
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    char *x;

    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **q = dip_realloc(s->v, cap * sizeof(*q));
        if (q == NULL)
            return DIP_ENOMEM;
        s->v = q;
        s->cap = cap;
    }
    x = dip_malloc(la + lb + 1);
    if (x == NULL)
        return DIP_ENOMEM;
    memcpy(x, a, la);
    if (lb)
        memcpy(x + la, b, lb);
    x[la + lb] = '\0';
    s->v[s->n++] = x;
    return 0;
}

#ifdef DIP_WITH_STORE

void dip__cli_s3_config(const struct dip__cli_s3 *c, struct dip_s3_config *cfg)
{
    dip_s3_config_env(cfg);
    if (c->endpoint != NULL)
        cfg->endpoint = c->endpoint;
    if (c->region != NULL)
        cfg->region = c->region;
    if (c->path_style >= 0)
        cfg->path_style = c->path_style;
}

int dip__cli_s3_client(struct dip__cli_s3 *c, struct dip_err *err)
{
    struct dip_s3_config cfg;

    if (c->client != NULL)
        return 0;
    /* A peer that closes mid-upload must be an error to retry, not a SIGPIPE (curl runs with
     * CURLOPT_NOSIGNAL so that threads may share it). */
    signal(SIGPIPE, SIG_IGN);
    dip__cli_s3_config(c, &cfg);
    return dip_s3_new(&cfg, (dip_s3 **)&c->client, err);
}

void dip__cli_s3_cleanup(struct dip__cli_s3 *c)
{
    dip_s3_free(c->client);
    c->client = NULL;
}

struct match {
    struct strv *out;
    const char *bucket;
    const char *pattern; /* NULL: every key under the prefix */
    int rc;
};

static int on_key(void *ud, const char *key, uint64_t size)
{
    struct match *m = ud;
    char head[80];
    size_t n = strlen(key);

    (void)size;
    if (n == 0 || key[n - 1] == '/')
        return 0; /* a "folder" marker, not an object */
    if (m->pattern != NULL && fnmatch(m->pattern, key, FNM_PATHNAME | FNM_PERIOD) != 0)
        return 0;
    snprintf(head, sizeof(head), "s3://%s/", m->bucket);
    m->rc = strv_add(m->out, head, key);
    return m->rc != 0;
}

int dip__cli_s3_expand(struct dip__cli_s3 *c, char **args, size_t n, char ***out, size_t *nout,
                       struct dip_err *err)
{
    struct strv s = {0};
    int rc = 0;

    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char bucket[64], prefix[1024];
        const char *key, *glob;
        size_t before;
        struct match m;
        if (!dip__cli_s3_is_url(args[i])) {
            rc = strv_add(&s, args[i], NULL);
            continue;
        }
        rc = dip__cli_s3_client(c, err);
        if (rc == 0)
            rc = dip_s3_parse_url(args[i], bucket, &key, err);
        if (rc != 0)
            break;
        glob = key + strcspn(key, "*?[");
        if (*glob == '\0' && key[0] != '\0' && key[strlen(key) - 1] != '/') {
            rc = strv_add(&s, args[i], NULL); /* one object */
            continue;
        }
        /* List from the longest prefix without a glob character. */
        if ((size_t)(glob - key) >= sizeof(prefix)) {
            rc = dip_err_set(err, DIP_EINVAL, "%s: key too long", args[i]);
            break;
        }
        memcpy(prefix, key, (size_t)(glob - key));
        prefix[glob - key] = '\0';
        m = (struct match){.out = &s, .bucket = bucket, .pattern = *glob ? key : NULL};
        before = s.n;
        rc = dip_s3_list(c->client, bucket, prefix, on_key, &m, err);
        if (rc == 0)
            rc = m.rc;
        if (rc == 0 && s.n == before)
            rc = dip_err_set(err, DIP_ENOTFOUND, "%s: no object matches", args[i]);
    }
    if (rc != 0) {
        dip__cli_strv_free(s.v, s.n);
        return rc;
    }
    *out = s.v;
    *nout = s.n;
    return 0;
}

int dip__cli_s3_read(struct dip__cli_s3 *c, const char *url, size_t max_bytes, uint8_t **data,
                     size_t *len, struct dip_err *err)
{
    char bucket[64];
    const char *key;
    int rc = dip_s3_parse_url(url, bucket, &key, err);

    if (rc == 0)
        rc = dip_s3_get_mem(c->client, bucket, key, max_bytes, data, len, err);
    return rc;
}

int dip__cli_s3_write(struct dip__cli_s3 *c, const char *url, const void *data, size_t len,
                      struct dip_err *err)
{
    char bucket[64];
    const char *key;
    int rc = dip_s3_parse_url(url, bucket, &key, err);

    if (rc == 0 && key[0] == '\0')
        rc = dip_err_set(err, DIP_EINVAL, "%s: no key after the bucket", url);
    if (rc == 0)
        rc = dip_s3_put_mem(c->client, bucket, key, data, len, err);
    return rc;
}

size_t dip__cli_s3_head(struct dip__cli_s3 *c, const char *url, uint8_t head[16])
{
    char bucket[64];
    const char *key;
    uint8_t *d = NULL;
    size_t n = 0;

    if (dip_s3_parse_url(url, bucket, &key, NULL) != 0 ||
        dip_s3_get_range(c->client, bucket, key, 0, 15, &d, &n, NULL) != 0)
        n = 0;
    if (n > 16)
        n = 16;
    if (n)
        memcpy(head, d, n);
    dip_free(d);
    return n;
}

/* ---- Objects the workers get and put themselves (issue 12) ---- */

static const char *const conf_names[] = {"endpoint", "region", "access_key", "secret_key",
                                         "session_token"};

static const char **conf_field(struct dip_s3_config *cfg, size_t i)
{
    const char **f[] = {&cfg->endpoint, &cfg->region, &cfg->access_key, &cfg->secret_key,
                        &cfg->session_token};
    return f[i];
}

int dip__cli_s3_conf(struct dip__cli_s3 *c, char **out, struct dip_err *err)
{
    struct dip_s3_config cfg;
    size_t len = 32;
    char *buf, *p;

    *out = NULL;
    dip__cli_s3_config(c, &cfg);
    for (size_t i = 0; i < (sizeof(conf_names) / sizeof(conf_names[0])); i++) {
        const char *v = *conf_field(&cfg, i);
        if (v != NULL && strchr(v, '\n') != NULL)
            return dip_err_set(err, DIP_EINVAL, "s3: the %s holds a line break", conf_names[i]);
        len += strlen(conf_names[i]) + 2 + (v != NULL ? strlen(v) : 0);
    }
    buf = p = dip_malloc(len);
    if (buf == NULL)
        return DIP_ENOMEM;
    for (size_t i = 0; i < (sizeof(conf_names) / sizeof(conf_names[0])); i++) {
        const char *v = *conf_field(&cfg, i);
        if (v != NULL && *v)
            p += snprintf(p, len - (size_t)(p - buf), "%s=%s\n", conf_names[i], v);
    }
    snprintf(p, len - (size_t)(p - buf), "path_style=%d\n", cfg.path_style);
    *out = buf;
    return 0;
}

static int obj_open(void *ud, const char *conf, void **handle, struct dip_err *err)
{
    struct dip__cli_s3 *c = ud;
    struct dip_s3_config cfg;
    char *copy = dip_strdup(conf), *line, *next;
    size_t copy_len = strlen(conf);
    int rc;

    *handle = NULL;
    if (copy == NULL)
        return DIP_ENOMEM;
    /* This rank's environment and flags, overridden by what the coordinator shipped (it listed
     * the objects with that configuration). */
    signal(SIGPIPE, SIG_IGN);
    dip__cli_s3_config(c, &cfg);
    for (line = copy; *line; line = next) {
        char *eq = strchr(line, '=');
        next = line + strcspn(line, "\n");
        if (*next)
            *next++ = '\0';
        if (eq == NULL || eq > next)
            continue;
        *eq = '\0';
        if (strcmp(line, "path_style") == 0) {
            cfg.path_style = (int)strtol(eq + 1, NULL, 10);
            continue;
        }
        for (size_t i = 0; i < (sizeof(conf_names) / sizeof(conf_names[0])); i++)
            if (strcmp(line, conf_names[i]) == 0 && eq[1])
                *conf_field(&cfg, i) = eq + 1;
    }
    rc = dip_s3_new(&cfg, (dip_s3 **)handle, err); /* copies the strings */
    explicit_bzero(copy, copy_len);
    dip_free(copy);
    return rc;
}

static void obj_close(void *handle)
{
    dip_s3_free(handle);
}

static int obj_get(void *handle, const char *ref, size_t max_bytes, uint8_t **data, size_t *len,
                   struct dip_err *err)
{
    char bucket[64];
    const char *key;
    int rc = dip_s3_parse_url(ref, bucket, &key, err);

    if (rc == 0)
        rc = dip_s3_get_mem(handle, bucket, key, max_bytes, data, len, err);
    return rc;
}

static int obj_put(void *handle, const char *ref, const uint8_t *data, size_t len, char sha256[65],
                   struct dip_err *err)
{
    char bucket[64];
    const char *key;
    int rc = dip_s3_parse_url(ref, bucket, &key, err);

    if (rc == 0 && key[0] == '\0')
        rc = dip_err_set(err, DIP_EINVAL, "%s: no key after the bucket", ref);
    /* One PUT below 8 MiB, a multipart upload above (aborted when it fails; parts of a killed
     * process are never an object): either way the object appears whole or not at all. */
    if (rc == 0)
        rc = dip_s3_put_mem(handle, bucket, key, data, len, err);
    if (rc == 0)
        dip_sha256_hex(data, len, sha256);
    return rc;
}

int dip__cli_s3_objects(struct dip__cli_s3 *c, struct dip_object_io *io)
{
    memset(io, 0, sizeof(*io));
    io->open = obj_open;
    io->close = obj_close;
    io->get = obj_get;
    io->put = obj_put;
    io->ud = c;
    return 0;
}

#else /* built without src/store */

static int absent(struct dip_err *err)
{
    return dip_err_set(err, DIP_EINVAL,
                       "s3:// paths need dip built with object storage "
                       "(DIP_WITH_SERVER: libcurl, SQLite)");
}

int dip__cli_s3_client(struct dip__cli_s3 *c, struct dip_err *err)
{
    (void)c;
    return absent(err);
}

void dip__cli_s3_cleanup(struct dip__cli_s3 *c)
{
    (void)c;
}

int dip__cli_s3_expand(struct dip__cli_s3 *c, char **args, size_t n, char ***out, size_t *nout,
                       struct dip_err *err)
{
    struct strv s = {0};
    int rc = 0;

    (void)c;
    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = dip__cli_s3_is_url(args[i]) ? absent(err) : strv_add(&s, args[i], NULL);
    if (rc != 0) {
        dip__cli_strv_free(s.v, s.n);
        return rc;
    }
    *out = s.v;
    *nout = s.n;
    return 0;
}

int dip__cli_s3_read(struct dip__cli_s3 *c, const char *url, size_t max_bytes, uint8_t **data,
                     size_t *len, struct dip_err *err)
{
    (void)c, (void)url, (void)max_bytes, (void)data, (void)len;
    return absent(err);
}

int dip__cli_s3_write(struct dip__cli_s3 *c, const char *url, const void *data, size_t len,
                      struct dip_err *err)
{
    (void)c, (void)url, (void)data, (void)len;
    return absent(err);
}

size_t dip__cli_s3_head(struct dip__cli_s3 *c, const char *url, uint8_t head[16])
{
    (void)c, (void)url, (void)head;
    return 0;
}

int dip__cli_s3_objects(struct dip__cli_s3 *c, struct dip_object_io *io)
{
    (void)c;
    memset(io, 0, sizeof(*io));
    return DIP_EINVAL;
}

int dip__cli_s3_conf(struct dip__cli_s3 *c, char **out, struct dip_err *err)
{
    (void)c;
    *out = NULL;
    return absent(err);
}
#endif
