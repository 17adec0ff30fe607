/* SPDX-License-Identifier: MIT */
/* A small HTTP/1.1 load client for `dip serve`: C connections (one thread each, keep-alive) send
 * the same POST body to one path for a fixed time; prints successful (200) requests/s and their
 * p50/p99/max latency, and counts other statuses and connection errors apart.
 * Written for POST /api/v1/process with a small JPEG, where wrk would need a Lua script. */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct worker {
    pthread_t t;
    double *lat;
    size_t n, cap;
    long errors, non200;
};

static const char *host = "127.0.0.1";
static int port;
static const char *path;
static char *body;
static size_t body_len;
static double stop_at;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(void)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* Reads one response; returns its status or -1. Handles Content-Length and chunked=unsupported. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t have = 0, need;
    char *hend = NULL, *cl;
    int status;

    while (hend == NULL) {
        ssize_t r = recv(fd, buf + have, cap - have - 1, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        hend = strstr(buf, "\r\n\r\n");
        if (hend == NULL && have + 1 >= cap)
            return -1;
    }
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl == NULL || cl > hend)
        return -1;
    need = (size_t)(hend + 4 - buf) + strtoul(cl + 17, NULL, 10);
    while (have < need) {
        char sink[65536];
        ssize_t r = recv(fd, sink, sizeof(sink), 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    return status;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    char head[512], buf[16384];
    int fd = -1, hl;

    hl = snprintf(head, sizeof(head),
                  "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  path, host, body_len);
    while (now() < stop_at) {
        double t0;
        int st;
        if (fd < 0 && (fd = connect_to()) < 0) {
            w->errors++;
            usleep(10000);
            continue;
        }
        t0 = now();
        if (send_all(fd, head, (size_t)hl) != 0 || send_all(fd, body, body_len) != 0 ||
            (st = read_response(fd, buf, sizeof(buf))) < 0) {
            w->errors++;
            close(fd);
            fd = -1;
            continue;
        }
        if (st != 200) {
            w->non200++; /* not counted in the latency figures */
            continue;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->lat = realloc(w->lat, w->cap * sizeof(double));
            if (w->lat == NULL)
                abort();
        }
        w->lat[w->n++] = now() - t0;
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct worker *ws;
    FILE *f;
    int conns;
    double secs, t0;
    size_t total = 0, k = 0;
    long errors = 0, non200 = 0;
    double *all;

    if (argc != 6) {
        fprintf(stderr, "usage: dip-load PORT PATH BODYFILE CONNECTIONS SECONDS\n");
        return 2;
    }
    port = (int)strtol(argv[1], NULL, 10);
    path = argv[2];
    conns = (int)strtol(argv[4], NULL, 10);
    secs = strtod(argv[5], NULL);
    f = fopen(argv[3], "rb");
    if (f == NULL || conns < 1) {
        perror(argv[3]);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    body_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    body = malloc(body_len);
    if (fread(body, 1, body_len, f) != body_len)
        return 2;
    fclose(f);
    ws = calloc((size_t)conns, sizeof(*ws));
    t0 = now();
    stop_at = t0 + secs;
    for (int i = 0; i < conns; i++)
        pthread_create(&ws[i].t, NULL, run, &ws[i]);
    for (int i = 0; i < conns; i++) {
        pthread_join(ws[i].t, NULL);
        total += ws[i].n;
        errors += ws[i].errors;
        non200 += ws[i].non200;
    }
    secs = now() - t0;
    all = malloc((total ? total : 1) * sizeof(double));
    for (int i = 0; i < conns; i++) {
        memcpy(all + k, ws[i].lat, ws[i].n * sizeof(double));
        k += ws[i].n;
        free(ws[i].lat);
    }
    qsort(all, total, sizeof(double), cmp);
    printf("%5d %10.1f %9.2f %9.2f %9.2f %7ld %7ld\n", conns, (double)total / secs,
           total ? all[total / 2] * 1e3 : 0, total ? all[(size_t)((double)total * 0.99)] * 1e3 : 0,
           total ? all[total - 1] * 1e3 : 0, non200, errors);
    free(all);
    free(ws);
    free(body);
    return 0;
}
