/* SPDX-License-Identifier: MIT */
/* `dip serve`: runs the job service (src/server) until SIGINT or SIGTERM. Under mpirun the
 * coordinator rank serves and the other ranks work for the cluster executor; otherwise jobs run on
 * the local executor. Only argument parsing and process lifetime live here. */
#ifdef DIP_WITH_SERVER
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dip/s3.h"
#include "dip/server.h"
#include "s3-opts.h"

enum {
    OPT_LISTEN = DIP_OPT_FIRST_FREE,
    OPT_DATA,
    OPT_WEB,
    OPT_THREADS,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_MAX_IMAGES,
    OPT_MAX_JOBS,
    OPT_MAX_QUEUE,
    OPT_MAX_CONN,
    OPT_TIMEOUT,
    OPT_ROUTES,
    OPT_QUIET,
    OPT_PUBLIC_HOST,
    OPT_HTTP_THREADS,
    OPT_MAX_PER_IP,
    OPT_HEADER_TIMEOUT,
    OPT_MAX_STREAMS,
    OPT_MAX_USER_STREAMS,
    OPT_KEEP,
    OPT_HELP,
    OPT_BLOBS,
    OPT_ENCRYPT_KEY,
    OPT_DEVICE,
    OPT_SHUTDOWN_GRACE,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_READY_MIN_FREE,
    OPT_COST_CPU_HOUR,
    OPT_COST_GB_MONTH,
    OPT_CLUSTER_KEY,
};

static void usage(FILE *f, const char *web_dir)
{
    fprintf(f,
            "Usage: dip serve [OPTIONS]\n\n"
            "Runs the job service: the HTTP API (/api/v1/...), the web page and durable jobs.\n\n"
            "  --listen HOST:PORT   address to listen on (default 127.0.0.1:8080; port 0: any)\n"
            "  --data DIR           database dip.db and blobs/ (default ./var)\n"
            "  --blobs URL          keep inputs and results in s3://BUCKET/PREFIX instead of\n"
            "                       DIR/blobs (AWS_* environment: see README, Storage)\n"
            "  --encrypt-key FILE   encrypt every blob at rest (dip key create FILE)\n"
            "  --cluster-key FILE   under mpirun: seal every message between ranks (the same\n"
            "                       file on every rank; also DIP_CLUSTER_KEY=FILE)\n"
            "  --web DIR            static files of the web page (default %s)\n"
            "  --threads N          compute threads (default: all cores)\n"
            "  --device D           cpu, opencl or auto (default: an OpenCL GPU when present)\n"
            "  --tls-cert FILE      PEM certificate: serve HTTPS (with --tls-key)\n"
            "  --tls-key FILE       PEM private key\n"
            "  --max-images N       images per job (default 1000)\n"
            "  --max-jobs N         unfinished jobs per user (default 100; more: 429)\n"
            "  --max-queue N        unfinished jobs in all (default 10000; more: 429)\n"
            "  --max-connections N  open connections (default 512)\n"
            "  --timeout S          idle connection timeout in seconds (default 30)\n"
            "  --header-timeout S   a request's headers must arrive within S seconds (default 10)\n"
            "  --max-per-ip N       connections from one address (default 128)\n"
            "  --http-threads N     HTTP threads, each serving many connections (default 4)\n"
            "  --max-streams N      event streams in all (default 256)\n"
            "  --max-user-streams N event streams per user (default 8)\n"
            "  --public-host NAME   the host name clients use (Host and Origin checks)\n"
            "  --keep DURATION      delete finished jobs and their blobs after DURATION\n"
            "                       (e.g. 7d, 12h, 30m, 90s; 0: keep; default 7d)\n"
            "  --routes             print the API's routes and exit\n"
            "  --shutdown-grace S   on SIGTERM/SIGINT, running work may finish for S seconds;\n"
            "                       the rest resumes on the next start (default 20)\n"
            "  --log-format F       text (default) or json: one line per request and job event\n"
            "  --log-level N        0: job events only, 1: also one line per request (default)\n"
            "  --ready-min-free N   /readyz fails below N free bytes on the data disk\n"
            "                       (default 268435456)\n"
            "  --cost-cpu-hour P    price of one CPU hour: GET /api/v1/usage shows a cost\n"
            "  --cost-gb-month P    price of 10^9 bytes stored for 30 days (docs/deploy.md)\n"
            "  --quiet              no log lines\n\n"
            "Without tokens (dip token create), only a loopback address may be used and the API\n"
            "is open to local users. Under mpirun, rank 0 serves and the other ranks work.\n\n%s"
            "%s",
            web_dir, dip__cli_limits_help(), dip__cli_s3_help);
}

/* "7d", "12h", "30m", "90s" or plain seconds; 0 means forever. */
static int parse_duration(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || v < 0 || v > 1e9)
        return -1;
    switch (*end) {
    case 'd':
        v *= 86400;
        end++;
        break;
    case 'h':
        v *= 3600;
        end++;
        break;
    case 'm':
        v *= 60;
        end++;
        break;
    case 's':
        end++;
        break;
    default:
        break;
    }
    if (*end != '\0')
        return -1;
    *out = v;
    return 0;
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

int dip__cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"data", required_argument, NULL, OPT_DATA},
        {"web", required_argument, NULL, OPT_WEB},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"max-images", required_argument, NULL, OPT_MAX_IMAGES},
        {"max-jobs", required_argument, NULL, OPT_MAX_JOBS},
        {"max-queue", required_argument, NULL, OPT_MAX_QUEUE},
        {"max-connections", required_argument, NULL, OPT_MAX_CONN},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"routes", no_argument, NULL, OPT_ROUTES},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"public-host", required_argument, NULL, OPT_PUBLIC_HOST},
        {"http-threads", required_argument, NULL, OPT_HTTP_THREADS},
        {"max-per-ip", required_argument, NULL, OPT_MAX_PER_IP},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
        {"max-streams", required_argument, NULL, OPT_MAX_STREAMS},
        {"max-user-streams", required_argument, NULL, OPT_MAX_USER_STREAMS},
        {"keep", required_argument, NULL, OPT_KEEP},
        {"help", no_argument, NULL, OPT_HELP},
        {"blobs", required_argument, NULL, OPT_BLOBS},
        {"encrypt-key", required_argument, NULL, OPT_ENCRYPT_KEY},
        {"cluster-key", required_argument, NULL, OPT_CLUSTER_KEY},
        {"shutdown-grace", required_argument, NULL, OPT_SHUTDOWN_GRACE},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"ready-min-free", required_argument, NULL, OPT_READY_MIN_FREE},
        {"cost-cpu-hour", required_argument, NULL, OPT_COST_CPU_HOUR},
        {"cost-gb-month", required_argument, NULL, OPT_COST_GB_MONTH},
        DIP_CLI_LIMIT_OPTIONS DIP_CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct dip_server_opts o;
    struct dip__cli_s3 s3o = DIP_CLI_S3_INIT;
    struct dip_s3_config s3cfg;
    struct dip_err err = {0};
    dip_server *srv = NULL;
    dip_executor *ex = NULL;
    struct sigaction sa;
    int opt, bad = 0, rc = 0, routes = 0;
    const char *cluster_key = NULL;
    long v;

    dip_server_opts_default(&o);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (dip__cli_limit_opt(opt, optarg, &o.limits, &bad) ||
            dip__cli_s3_opt(opt, optarg, &s3o, &bad))
            continue;
        switch (opt) {
        case OPT_LISTEN:
            o.listen = optarg;
            break;
        case OPT_DATA:
            o.data_dir = optarg;
            break;
        case OPT_WEB:
            o.web_dir = optarg;
            break;
        case OPT_DEVICE:
            bad |= dip__cli_device("serve", optarg);
            break;
        case OPT_THREADS:
            bad |= dip__cli_int("threads", optarg, 0, 4096, &v);
            o.threads = (int)v;
            break;
        case OPT_TLS_CERT:
            o.tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            o.tls_key = optarg;
            break;
        case OPT_MAX_IMAGES:
            bad |= dip__cli_int("max-images", optarg, 1, 65535, &v);
            o.max_images_per_job = (int)v;
            break;
        case OPT_MAX_JOBS:
            bad |= dip__cli_int("max-jobs", optarg, 1, 1 << 30, &v);
            o.max_active_per_user = (int)v;
            break;
        case OPT_MAX_QUEUE:
            bad |= dip__cli_int("max-queue", optarg, 1, 1 << 30, &v);
            o.max_queue = (int)v;
            break;
        case OPT_MAX_CONN:
            bad |= dip__cli_int("max-connections", optarg, 1, 1 << 20, &v);
            o.max_connections = (int)v;
            break;
        case OPT_TIMEOUT:
            bad |= dip__cli_int("timeout", optarg, 1, 86400, &v);
            o.connection_timeout_s = (int)v;
            break;
        case OPT_ROUTES:
            routes = 1;
            break;
        case OPT_PUBLIC_HOST:
            o.public_host = optarg;
            break;
        case OPT_HTTP_THREADS:
            bad |= dip__cli_int("http-threads", optarg, 1, 256, &v);
            o.http_threads = (int)v;
            break;
        case OPT_MAX_PER_IP:
            bad |= dip__cli_int("max-per-ip", optarg, 1, 1 << 20, &v);
            o.max_per_ip = (int)v;
            break;
        case OPT_HEADER_TIMEOUT:
            bad |= dip__cli_int("header-timeout", optarg, 1, 3600, &v);
            o.header_timeout_s = (int)v;
            break;
        case OPT_MAX_STREAMS:
            bad |= dip__cli_int("max-streams", optarg, 1, 1 << 20, &v);
            o.max_streams = (int)v;
            break;
        case OPT_KEEP:
            if (parse_duration(optarg, &o.keep_s) != 0) {
                dip__cli_error("serve", "--keep '%s' is not a duration (e.g. 7d, 12h, 30m, 90s)",
                               optarg);
                bad = 1;
            }
            break;
        case OPT_MAX_USER_STREAMS:
            bad |= dip__cli_int("max-user-streams", optarg, 1, 1 << 20, &v);
            o.max_streams_per_user = (int)v;
            break;
        case OPT_SHUTDOWN_GRACE:
            if (parse_duration(optarg, &o.shutdown_grace_s) != 0 || o.shutdown_grace_s > 3600) {
                dip__cli_error("serve", "--shutdown-grace '%s' is not a duration of 0..3600 s",
                               optarg);
                bad = 1;
            }
            break;
        case OPT_LOG_FORMAT:
            if (strcmp(optarg, "json") == 0 || strcmp(optarg, "text") == 0) {
                o.log_json = strcmp(optarg, "json") == 0;
            } else {
                dip__cli_error("serve", "--log-format '%s': use text or json", optarg);
                bad = 1;
            }
            break;
        case OPT_LOG_LEVEL:
            bad |= dip__cli_int("log-level", optarg, 0, 1, &v);
            o.log_level = (int)v;
            break;
        case OPT_READY_MIN_FREE:
            bad |= dip__cli_int("ready-min-free", optarg, 0, 1L << 50, &v);
            o.ready_min_free = (uint64_t)v;
            break;
        case OPT_COST_CPU_HOUR:
        case OPT_COST_GB_MONTH: {
            char *end = NULL;
            double price = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(price >= 0 && price < 1e9)) {
                dip__cli_error("serve", "--%s '%s' is not a price (a number >= 0)",
                               opt == OPT_COST_CPU_HOUR ? "cost-cpu-hour" : "cost-gb-month",
                               optarg);
                bad = 1;
            } else if (opt == OPT_COST_CPU_HOUR) {
                o.cost_cpu_hour = price;
            } else {
                o.cost_gb_month = price;
            }
            break;
        }
        case OPT_QUIET:
            o.quiet = 1;
            break;
        case OPT_BLOBS:
            o.blobs = optarg;
            break;
        case OPT_ENCRYPT_KEY:
            o.encrypt_key = optarg;
            break;
        case OPT_CLUSTER_KEY:
            cluster_key = optarg;
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout, o.web_dir);
            return 0;
        default:
            usage(stderr, o.web_dir);
            return 2;
        }
    }
    if (bad)
        return 2;
    if (optind < argc) {
        dip__cli_error("serve", "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (routes) {
        const char *m, *p;
        for (size_t i = 0; dip_server_route(i, &m, &p); i++)
            printf("%s %s\n", m, p);
        return 0;
    }

#ifdef DIP_WITH_MPI
    {
        struct dip_mpi_opts mo;
        int worker_done = 0;
        dip_mpi_opts_default(&mo);
        mo.serve = 1;
        if (cluster_key)
            mo.cluster_key = cluster_key;
        rc = dip_mpi_start(&argc, &argv, &mo, &ex, &worker_done, &err);
        if (rc != 0 && mo.cluster_key && !worker_done && !ex && err.code != DIP_EPEER) {
            /* A bad cluster key is the operator's to fix: never serve in clear instead. */
            dip__cli_error("serve", "%s", dip_err_text(&err, rc));
            return dip_err_exit_code(rc);
        }
        if (rc != 0) {
            /* Fall back to this machine's cores rather than not serving at all. */
            dip__cli_error("serve", "%s; using the local executor", dip_err_text(&err, rc));
            ex = NULL;
            rc = 0;
            dip_err_clear(&err);
        }
        if (worker_done)
            return 0;
    }
#endif
    (void)cluster_key; /* only under mpirun */
    o.executor = ex;   /* NULL: the server starts a local executor */
    dip__cli_s3_config(&s3o, &s3cfg);
    o.s3 = &s3cfg;
    dip__cli_status_open(); /* rank 0 under dip mpirun */

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = dip_server_start(&o, &srv, &err);
    if (rc != 0) {
        dip__cli_error("serve", "%s", dip_err_text(&err, rc));
        goto out;
    }
    {
        const char *host = o.listen;
        const char *colon = strrchr(host, ':');
        int hl = colon ? (int)(colon - host) : (int)strlen(host);
        printf("dip serve: %s://%.*s:%d/ (data %s, executor %s)\n", o.tls_cert ? "https" : "http",
               hl, host, dip_server_port(srv), o.data_dir, ex ? ex->vt->name : "local");
        if (o.blobs != NULL || o.encrypt_key != NULL)
            printf("dip serve: blobs in %s%s\n", o.blobs ? o.blobs : "the data folder",
                   o.encrypt_key ? ", encrypted at rest" : "");
        if (dip_server_open_mode(srv))
            printf("dip serve: warning: no tokens exist, so the API is open to every local user "
                   "(dip token create NAME --admin)\n");
        fflush(stdout);
    }
    dip_server_run(srv, &got_signal);
    if (!o.quiet)
        fprintf(stderr, "dip serve: stopped (signal %d)\n", (int)got_signal);
out:
    dip_server_free(srv);
    dip__cli_status_write(rc ? dip_err_exit_code(rc) : 0, 0);
    dip_executor_free(ex);
    return rc ? dip_err_exit_code(rc) : 0;
}
#else
/* Built without the service: ISO C wants one declaration per file. */
typedef int dip__cmd_serve_absent;
#endif
