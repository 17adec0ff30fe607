/* SPDX-License-Identifier: MIT */
/* In-process smoke tests of the HTTP daemon on 127.0.0.1:0 (STYLE.md: one MHD smoke test): it
 * answers /healthz, 404s and the job list over a real socket while dip_server_run runs on a
 * second thread, refuses a non-loopback address without tokens, and stops cleanly. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dip/server.h"
#include "dip/store.h"
#include "test.h"

static int http_get(int port, const char *path, char *out, size_t cap)
{
    struct sockaddr_in sa;
    char req[256];
    size_t have = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;

    ASSERT(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    /* The Host names the server: others are refused (DNS rebinding). */
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    ASSERT(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    for (;;) {
        ssize_t r = read(fd, out + have, cap - have - 1);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    out[have] = '\0';
    close(fd);
    if (sscanf(out, "HTTP/1.1 %d", &status) != 1)
        return -1;
    return status;
}

static volatile sig_atomic_t stop_flag;

static void *runner(void *arg)
{
    dip_server_run(arg, &stop_flag);
    return NULL;
}

TEST(smoke)
{
    struct dip_server_opts o;
    struct dip_err err = {0};
    dip_server *s = NULL;
    char buf[65536], dir[512];
    pthread_t t;

    snprintf(dir, sizeof(dir), "%s/var", dip_test_tmpdir());
    dip_server_opts_default(&o);
    o.listen = "127.0.0.1:0";
    o.data_dir = dir;
    o.threads = 1;
    o.quiet = 1;
    ASSERT_OK(dip_server_start(&o, &s, &err));
    ASSERT(dip_server_port(s) > 0);
    ASSERT_EQ_INT(dip_server_open_mode(s), 1);
    ASSERT(pthread_create(&t, NULL, runner, s) == 0);
    ASSERT_EQ_INT(http_get(dip_server_port(s), "/healthz", buf, sizeof(buf)), 200);
    ASSERT_CONTAINS(buf, "{\"status\":\"ok\"}");
    ASSERT_EQ_INT(http_get(dip_server_port(s), "/api/v1/nothing", buf, sizeof(buf)), 404);
    ASSERT_CONTAINS(buf, "\"code\":\"ENOTFOUND\"");
    ASSERT_EQ_INT(http_get(dip_server_port(s), "/api/v1/jobs/x/results/0", buf, sizeof(buf)), 404);
    ASSERT_EQ_INT(http_get(dip_server_port(s), "/api/v1/jobs", buf, sizeof(buf)), 200);
    ASSERT_CONTAINS(buf, "{\"jobs\":[]}");
    stop_flag = 1;
    pthread_join(t, NULL);
    dip_server_free(s);
}

TEST(refuses_open_network)
{
    struct dip_server_opts o;
    struct dip_err err = {0};
    dip_server *s = NULL;
    dip_store *st = NULL;
    char dir[512], tok[80];

    snprintf(dir, sizeof(dir), "%s/var2", dip_test_tmpdir());
    dip_server_opts_default(&o);
    o.listen = "0.0.0.0:0";
    o.data_dir = dir;
    o.quiet = 1;
    ASSERT_EQ_INT(dip_server_start(&o, &s, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "token");
    ASSERT(s == NULL);
    ASSERT_OK(dip_store_open(dir, &st, &err));
    ASSERT_OK(dip_store_token_create(st, "admin", 1, tok, &err));
    dip_store_close(st);
    ASSERT_OK(dip_server_start(&o, &s, &err));
    ASSERT_EQ_INT(dip_server_open_mode(s), 0);
    dip_server_free(s);
    o.listen = "nonsense";
    ASSERT_EQ_INT(dip_server_start(&o, &s, &err), DIP_EINVAL);
    o.listen = "127.0.0.1:0";
    o.tls_cert = "/nonexistent.pem";
    ASSERT_EQ_INT(dip_server_start(&o, &s, &err), DIP_EINVAL); /* cert without key */
}
