/* SPDX-License-Identifier: MIT */
/* Unit tests of the job service without HTTP: the job state table; submissions refused before
 * anything is stored (options in the CLI's words, unreadable images naming the file, outputs over
 * a limit); quotas that hold under 40 concurrent submissions; users taking turns on the runner;
 * /process through the executor; unique result names; JSON strings that stay valid UTF-8. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dip/codec.h"
#include "dip/image.h"
#include "service/internal.h"
#include "test.h"

static uint8_t *png(int w, int h, size_t *len)
{
    dip_image *img = NULL;
    struct dip_encode_opts eo;
    struct dip_view v;
    uint8_t *out = NULL;

    ASSERT_OK(dip_image_new(w, h, 3, &img));
    v = dip_image_view(img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * 3; x++)
            v.data[(size_t)y * v.stride + (size_t)x] = (uint8_t)(x * 7 + y * 3);
    dip_encode_opts_default(&eo);
    eo.format = DIP_FORMAT_PNG;
    ASSERT_OK(dip_codec_encode(img, &eo, &out, len, NULL));
    dip_image_unref(img);
    return out;
}

static dip_service *open_service(int max_jobs)
{
    struct dip_service_opts o;
    struct dip_err err = {0};
    dip_service *svc = NULL;
    char dir[512];

    snprintf(dir, sizeof(dir), "%s/var", dip_test_tmpdir());
    dip_service_opts_default(&o);
    o.data_dir = dir;
    o.threads = 1;
    o.quiet = 1;
    o.max_active_per_user = max_jobs;
    o.limits.max_pixels = 1000000;
    ASSERT_OK(dip_service_new(&o, &svc, &err));
    return svc;
}

static size_t count_jobs(dip_service *svc)
{
    struct dip_store_job *jobs = NULL;
    size_t n = 0;

    ASSERT_OK(dip_store_job_list(dip_service_store(svc), NULL, 0, 10000, &jobs, &n, NULL));
    dip_store_jobs_free(jobs, n);
    return n;
}

TEST(state_table)
{
    ASSERT_EQ_STR(dip_job_state_name(DIP_JOB_QUEUED), "queued");
    ASSERT_EQ_STR(dip_job_state_name(DIP_JOB_CANCELLED), "cancelled");
    ASSERT_EQ_STR(dip_job_state_name(DIP_JOB_NSTATES), "unknown");
    ASSERT_EQ_INT(dip_job_state_parse("running"), DIP_JOB_RUNNING);
    ASSERT_EQ_INT(dip_job_state_parse("nope"), DIP_JOB_NSTATES);
    ASSERT_EQ_INT(dip_job_state_final("done"), 1);
    ASSERT_EQ_INT(dip_job_state_final("failed"), 1);
    ASSERT_EQ_INT(dip_job_state_final("queued"), 0);
    ASSERT_EQ_INT(dip_job_state_final(""), 0);
}

TEST(submit_refuses_before_storing)
{
    dip_service *svc = open_service(100);
    struct dip_err err = {0};
    char id[DIP_STORE_ID_LEN];
    size_t len = 0;
    uint8_t *img = png(40, 30, &len);
    struct dip_submit_file files[2] = {{"a.png", img, len},
                                       {"bad.png", (const uint8_t *)"nope", 4}};
    struct dip_submit sub = {"alice", "median(size=4)", "", "", files, 1, NULL};

    /* A parameter no image can satisfy: the CLI's message, before any image is looked at. */
    ASSERT_EQ_INT(dip_service_submit(svc, &sub, id, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "must be odd");
    dip_err_clear(&err);
    sub.pipeline = "invert";
    sub.format = "gif";
    ASSERT_EQ_INT(dip_service_submit(svc, &sub, id, &err), DIP_EINVAL);
    sub.format = "";
    sub.quality = "0";
    ASSERT_EQ_INT(dip_service_submit(svc, &sub, id, &err), DIP_EINVAL);
    sub.quality = "";
    /* Every step's output against the limits (1 MP here), before anything is allocated. */
    dip_err_clear(&err);
    sub.pipeline = "resize(width=2000,height=2000) | resize(width=10,height=10)";
    ASSERT_EQ_INT(dip_service_submit(svc, &sub, id, &err), DIP_ETOOBIG);
    ASSERT_CONTAINS(err.msg, "a.png");
    ASSERT_CONTAINS(err.msg, "resize output");
    ASSERT_CONTAINS(err.msg, "max_pixels=1000000");
    /* An unreadable image names its file; nothing of the job is kept. */
    dip_err_clear(&err);
    sub.pipeline = "invert";
    sub.n_files = 2;
    ASSERT_NE_INT(dip_service_submit(svc, &sub, id, &err), 0);
    ASSERT_CONTAINS(err.msg, "bad.png");
    sub.n_files = 0;
    ASSERT_EQ_INT(dip_service_submit(svc, &sub, id, &err), DIP_EINVAL);
    ASSERT_EQ_INT(count_jobs(svc), 0);
    sub.n_files = 1;
    ASSERT_OK(dip_service_submit(svc, &sub, id, &err));
    ASSERT_EQ_INT(count_jobs(svc), 1);
    dip_free(img);
    dip_service_free(svc);
}

struct racer {
    dip_service *svc;
    const uint8_t *img;
    size_t len;
    int rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct dip_submit_file f = {"r.png", r->img, r->len};
    struct dip_submit sub = {"alice", "invert", "", "", &f, 1, NULL};
    char id[DIP_STORE_ID_LEN];

    r->rc = dip_service_submit(r->svc, &sub, id, NULL);
    return NULL;
}

TEST(quota_holds_under_concurrent_submissions)
{
    dip_service *svc = open_service(5);
    struct racer r[40];
    pthread_t t[40];
    size_t len = 0;
    uint8_t *img = png(16, 16, &len);
    int ok = 0, busy = 0;

    /* No runner: every accepted job stays queued, so exactly five may be accepted. */
    for (int i = 0; i < 40; i++) {
        r[i] = (struct racer){svc, img, len, -1};
        ASSERT(pthread_create(&t[i], NULL, race, &r[i]) == 0);
    }
    for (int i = 0; i < 40; i++) {
        pthread_join(t[i], NULL);
        ok += r[i].rc == 0;
        busy += r[i].rc == DIP_EBUSY;
    }
    ASSERT_EQ_INT(ok, 5);
    ASSERT_EQ_INT(busy, 35);
    ASSERT_EQ_INT(count_jobs(svc), 5);
    dip_free(img);
    dip_service_free(svc);
}

static volatile sig_atomic_t stop_flag;

static void *runner(void *arg)
{
    dip_service_run(arg, &stop_flag);
    return NULL;
}

static double finished_at(dip_service *svc, const char *id)
{
    struct dip_store_job *job = NULL;
    double t = 0;

    for (int i = 0; i < 6000; i++) {
        ASSERT_OK(dip_store_job_get(dip_service_store(svc), id, 0, &job, NULL));
        t = job->finished;
        if (dip_job_state_final(job->state)) {
            ASSERT_EQ_STR(job->state, "done");
            dip_store_job_free(job);
            return t;
        }
        dip_store_job_free(job);
        usleep(10000);
    }
    DIP_TEST_FAIL("job %s did not finish", id);
    return t;
}

TEST(users_take_turns_and_process_goes_through_the_runner)
{
    dip_service *svc = open_service(100);
    struct dip_submit_file many[24], one;
    struct dip_submit a = {"alice", "gaussian(sigma=3) | median(size=5)", "", "", many, 24, NULL};
    struct dip_submit b = {"bob", "invert", "", "", &one, 1, NULL};
    struct dip_process_req pr;
    struct dip_err err = {0};
    char ida[DIP_STORE_ID_LEN], idb[DIP_STORE_ID_LEN];
    size_t len = 0;
    uint8_t *img = png(400, 300, &len);
    pthread_t t;

    for (int i = 0; i < 24; i++)
        many[i] = (struct dip_submit_file){"m.png", img, len};
    one = (struct dip_submit_file){"one.png", img, len};
    ASSERT_OK(dip_service_submit(svc, &a, ida, &err));
    ASSERT_OK(dip_service_submit(svc, &b, idb, &err));
    stop_flag = 0;
    ASSERT(pthread_create(&t, NULL, runner, svc) == 0);
    /* Bob's single image waits for one batch of Alice's, not for her whole job. */
    memset(&pr, 0, sizeof(pr));
    pr.pipeline = "gray";
    pr.format = DIP_FORMAT_PNG;
    pr.quality = 90;
    pr.in = img;
    pr.in_len = len;
    ASSERT_OK(dip_service_process(svc, &pr, &err));
    ASSERT(pr.out != NULL && pr.out_len > 8 && memcmp(pr.out, "\x89PNG", 4) == 0);
    ASSERT(finished_at(svc, idb) < finished_at(svc, ida));
    stop_flag = 1;
    pthread_join(t, NULL);
    dip_free(pr.out);
    dip_free(img);
    dip_service_free(svc);
}

TEST(result_names_are_unique)
{
    struct dip_store_item items[4];
    struct dip_store_job job;
    char(*names)[300];

    memset(&job, 0, sizeof(job));
    memset(items, 0, sizeof(items));
    snprintf(job.format, sizeof(job.format), "png");
    snprintf(items[0].name, sizeof(items[0].name), "a.png");
    snprintf(items[1].name, sizeof(items[1].name), "a.png");
    snprintf(items[2].name, sizeof(items[2].name), "a-1.png");
    snprintf(items[3].name, sizeof(items[3].name), "a-1.jpg");
    for (int i = 0; i < 4; i++)
        items[i].index = i;
    job.items = items;
    job.n_items = 4;
    names = dip__result_names(&job);
    ASSERT(names != NULL);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < i; k++)
            ASSERT(strcmp(names[i], names[k]) != 0);
    ASSERT_EQ_STR(names[0], "a.png");
    dip_free(names);
}

TEST(json_strings_stay_utf8)
{
    struct dip__sbuf b;

    dip__sbuf_init(&b, 1024);
    dip__sbuf_json_str(&b, "ok \xc3\xa9 \xff\xfe \xe2\x82 \xed\xa0\x80 \xf0\x9f\x98\x80");
    ASSERT_OK(b.failed);
    ASSERT_EQ_STR(b.data, "\"ok \xc3\xa9 \\ufffd\\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd "
                          "\xf0\x9f\x98\x80\"");
    dip__sbuf_free(&b);
}
