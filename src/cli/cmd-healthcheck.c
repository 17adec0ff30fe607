/* SPDX-License-Identifier: MIT */
/* `dip healthcheck [URL]`: GET an http:// URL (default the service's /healthz on
 * 127.0.0.1:8080) and exit 0 on a 2xx status, 1 otherwise. The container image's HEALTHCHECK
 * uses it, so the image needs no curl or wget. Plain HTTP only: a probe runs next to the
 * server, inside its network namespace. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Milliseconds left until `deadline` (CLOCK_MONOTONIC), at least 0. */
static int ms_left(const struct timespec *deadline)
{
    struct timespec now;
    long ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : (int)ms;
}

/* Splits http://HOST[:PORT][/PATH] into its parts; [v6] hosts are accepted. */
static int parse_url(const char *url, char *host, size_t hostsz, char *port, size_t portsz,
                     const char **path)
{
    const char *h, *end, *colon;
    size_t n;

    if (strncmp(url, "http://", 7) != 0)
        return -1;
    h = url + 7;
    *path = strchr(h, '/');
    end = *path ? *path : h + strlen(h);
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close)
            return -1;
        n = (size_t)(close - h - 1);
        if (n == 0 || n >= hostsz)
            return -1;
        memcpy(host, h + 1, n);
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        n = (size_t)((colon ? colon : end) - h);
        if (n == 0 || n >= hostsz)
            return -1;
        memcpy(host, h, n);
    }
    host[n] = '\0';
    n = colon ? (size_t)(end - colon - 1) : 2;
    if (n == 0 || n >= portsz)
        return -1;
    memcpy(port, colon ? colon + 1 : "80", n);
    port[n] = '\0';
    if (!*path)
        *path = "/";
    return 0;
}

/* Connects to one of host:port's addresses before the deadline; returns the socket or -1. */
static int dial(const char *host, const char *port, const struct timespec *deadline)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
    int fd = -1;

    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        struct pollfd p;
        int soerr = 0;
        socklen_t len = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        p = (struct pollfd){.fd = fd, .events = POLLOUT};
        if (errno != EINPROGRESS || poll(&p, 1, ms_left(deadline)) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

int dip__cmd_healthcheck(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = "http://127.0.0.1:8080/healthz", *path;
    char host[256], port[16], req[1024], resp[512];
    struct timespec deadline;
    size_t got = 0;
    long timeout_s = 3;
    int opt, fd, status = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 't') {
            if (dip__cli_int("timeout", optarg, 1, 3600, &timeout_s) != 0)
                return 2;
        } else {
            fprintf(opt == 'h' ? stdout : stderr,
                    "Usage: dip healthcheck [URL] [--timeout S]\n\n"
                    "GETs URL (default http://127.0.0.1:8080/healthz) and exits 0 when the\n"
                    "status is 2xx, 1 otherwise (no answer within S seconds, default 3).\n"
                    "For container health checks: the image needs no curl or wget.\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind < argc)
        url = argv[optind++];
    if (optind != argc || parse_url(url, host, sizeof(host), port, sizeof(port), &path) != 0) {
        dip__cli_error("healthcheck", "expected one http://HOST[:PORT]/PATH URL, got '%s'",
                       optind != argc ? argv[optind] : url);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_s;

    fd = dial(host, port, &deadline);
    if (fd < 0) {
        dip__cli_error("healthcheck", "%s: cannot connect", url);
        return 1;
    }
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
             host);
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        dip__cli_error("healthcheck", "%s: send failed", url);
        close(fd);
        return 1;
    }
    /* The status line is all we need: "HTTP/1.x NNN ...". */
    while (got < sizeof(resp) - 1 && !memchr(resp, '\n', got)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, ms_left(&deadline)) != 1)
            break;
        n = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    resp[got] = '\0';
    if (strncmp(resp, "HTTP/1.", 7) == 0 && resp[8] == ' ')
        status = atoi(resp + 9);
    if (status < 200 || status > 299) {
        if (status)
            dip__cli_error("healthcheck", "%s: status %d", url, status);
        else
            dip__cli_error("healthcheck", "%s: no HTTP answer within %ld s", url, timeout_s);
        return 1;
    }
    printf("%s: %d\n", url, status);
    return 0;
}
