/* SPDX-License-Identifier: MIT */
/* Unit tests of src/store: SHA-256 against the FIPS 180-4 vectors, the blob folder, jobs and
 * items, results written once per (job, item), the result cache, recovery after a crash, tokens
 * stored as hashes, and the online backup. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dip/image.h"
#include "dip/store.h"
#include "test.h"

static dip_store *open_store(const char *name)
{
    char dir[512];
    dip_store *st = NULL;
    struct dip_err err = {0};

    snprintf(dir, sizeof(dir), "%s/%s", dip_test_tmpdir(), name);
    ASSERT_OK(dip_store_open(dir, &st, &err));
    return st;
}

TEST(sha256_vectors)
{
    char hex[65];
    struct dip_sha256 s;
    uint8_t d[32], m[1001];

    dip_sha256_hex("", 0, hex);
    ASSERT_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    dip_sha256_hex("abc", 3, hex);
    ASSERT_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    dip_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
    ASSERT_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* One million 'a', fed in uneven pieces. */
    memset(m, 'a', sizeof(m));
    dip_sha256_init(&s);
    for (int i = 0; i < 1000; i++)
        dip_sha256_update(&s, m, (size_t)(i % 2 ? 999 : 1001));
    dip_sha256_final(&s, d);
    ASSERT_EQ_INT(d[0], 0xcd);
    ASSERT_EQ_INT(d[1], 0xc7);
    ASSERT_EQ_INT(d[31], 0xd0);
}

TEST(blobs)
{
    dip_store *st = open_store("blobs");
    struct dip_err err = {0};
    char sha[65], sha2[65], path[700];
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat sb;

    ASSERT_OK(dip_store_blob_put(st, "hello", 5, sha, &err));
    ASSERT_EQ_STR(sha, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    snprintf(path, sizeof(path), "%s/blobs/blobs/2c/%s", dip_test_tmpdir(), sha + 2);
    ASSERT(stat(path, &sb) == 0 && sb.st_size == 5);
    ASSERT_OK(dip_store_blob_put(st, "hello", 5, sha2, &err)); /* again: no change */
    ASSERT_EQ_STR(sha, sha2);
    ASSERT_OK(dip_store_blob_get(st, sha, 100, &data, &len, &err));
    ASSERT_EQ_INT(len, 5);
    ASSERT(memcmp(data, "hello", 5) == 0);
    dip_free(data);
    ASSERT_EQ_INT(dip_store_blob_get(st, sha, 4, &data, &len, &err), DIP_ELIMIT);
    ASSERT_EQ_INT(dip_store_blob_get(st, "00", 100, &data, &len, &err), DIP_ENOTFOUND);
    /* A temporary left by a crash goes with the sweep; blobs stay. */
    snprintf(path, sizeof(path), "%s/blobs/blobs/2c/x.tmp0011", dip_test_tmpdir());
    {
        FILE *f = fopen(path, "w");
        ASSERT(f != NULL);
        fclose(f);
    }
    dip_store_sweep(st);
    ASSERT(stat(path, &sb) != 0);
    snprintf(path, sizeof(path), "%s/blobs/blobs/2c/%s", dip_test_tmpdir(), sha + 2);
    ASSERT(stat(path, &sb) == 0);
    ASSERT_EQ_INT(dip_store_blob_get(st, "../../../../etc/passwd", 100, &data, &len, &err),
                  DIP_ENOTFOUND);
    dip_store_close(st);
}

static void make_job(dip_store *st, const char *id, const char *owner, int n)
{
    struct dip_store_job job;
    struct dip_store_item items[4];
    struct dip_err err = {0};

    memset(&job, 0, sizeof(job));
    memset(items, 0, sizeof(items));
    snprintf(job.id, sizeof(job.id), "%s", id);
    snprintf(job.owner, sizeof(job.owner), "%s", owner);
    job.pipeline = (char *)"invert";
    job.canon = (char *)"invert@1";
    snprintf(job.format, sizeof(job.format), "png");
    job.quality = 90;
    job.created = 1000.0 + (double)strlen(id);
    job.n_items = (size_t)n;
    job.items = items;
    for (int i = 0; i < n; i++) {
        items[i].index = i;
        snprintf(items[i].name, sizeof(items[i].name), "img%d.png", i);
        ASSERT_OK(dip_store_blob_put(st, items[i].name, strlen(items[i].name), items[i].sha, &err));
        items[i].width = 10 + i;
        items[i].height = 20;
        items[i].bytes_in = 8;
    }
    ASSERT_OK(dip_store_job_create(st, &job, &err));
}

TEST(jobs_results_once)
{
    dip_store *st = open_store("jobs");
    struct dip_err err = {0};
    struct dip_store_job *job = NULL, *list = NULL;
    struct dip_store_item res;
    char id[DIP_STORE_ID_LEN];
    uint64_t n = 0, counts[5];
    size_t nl = 0;

    make_job(st, "j1", "alice", 3);
    make_job(st, "j22", "bob", 1);
    ASSERT_EQ_INT(dip_store_job_get(st, "nope", 1, &job, &err), DIP_ENOTFOUND);
    ASSERT_OK(dip_store_job_get(st, "j1", 1, &job, &err));
    ASSERT_EQ_STR(job->state, "queued");
    ASSERT_EQ_INT(job->n_items, 3);
    ASSERT_EQ_STR(job->items[2].name, "img2.png");
    ASSERT_EQ_INT(job->items[2].width, 12);
    dip_store_job_free(job);
    ASSERT_OK(dip_store_job_next(st, NULL, id, &err));
    ASSERT_EQ_STR(id, "j1");
    ASSERT_OK(dip_store_job_next(st, "alice", id, &err)); /* bob's turn */
    ASSERT_EQ_STR(id, "j22");
    ASSERT_OK(dip_store_job_next(st, "bob", id, &err));
    ASSERT_EQ_STR(id, "j1");
    ASSERT_OK(dip_store_job_active(st, "alice", &n, &err));
    ASSERT_EQ_INT(n, 1);
    ASSERT_OK(dip_store_job_list(st, "bob", 0, 10, &list, &nl, &err));
    ASSERT_EQ_INT(nl, 1);
    ASSERT_EQ_STR(list[0].id, "j22");
    dip_store_jobs_free(list, nl);
    ASSERT_OK(dip_store_job_list(st, NULL, 1, 10, &list, &nl, &err));
    ASSERT_EQ_INT(nl, 2);
    ASSERT_EQ_STR(list[0].id, "j22"); /* newest first */
    dip_store_jobs_free(list, nl);

    /* A result is written once: the second put changes nothing. */
    memset(&res, 0, sizeof(res));
    res.index = 1;
    ASSERT_OK(dip_store_blob_put(st, "out-a", 5, res.out_sha, &err));
    snprintf(res.out_format, sizeof(res.out_format), "png");
    res.out_width = 5;
    res.out_height = 6;
    res.bytes_out = 5;
    res.versions = (char *)"invert@1";
    ASSERT_OK(dip_store_result_put(st, "j1", &res, "key1", &err));
    ASSERT_OK(dip_store_blob_put(st, "out-b", 5, res.out_sha, &err));
    res.out_width = 99;
    ASSERT_OK(dip_store_result_put(st, "j1", &res, NULL, &err));
    ASSERT_OK(dip_store_job_get(st, "j1", 1, &job, &err));
    ASSERT_EQ_STR(job->items[1].state, "done");
    ASSERT_EQ_INT(job->items[1].out_width, 5);
    ASSERT_EQ_STR(job->items[1].versions, "invert@1");
    dip_store_job_free(job);
    /* A done item keeps its state. */
    ASSERT_OK(dip_store_item_set_state(st, "j1", 1, "failed", "late", &err));
    ASSERT_OK(dip_store_items_finish(st, "j1", "cancelled", NULL, &err));
    ASSERT_OK(dip_store_job_get(st, "j1", 1, &job, &err));
    ASSERT_EQ_STR(job->items[1].state, "done");
    ASSERT_EQ_STR(job->items[0].state, "cancelled");
    dip_store_job_free(job);

    /* Final states stick unless forced. */
    ASSERT_OK(dip_store_job_set_state(st, "j1", "cancelled", 0, &err));
    ASSERT_OK(dip_store_job_set_state(st, "j1", "done", 0, &err));
    ASSERT_OK(dip_store_job_get(st, "j1", 0, &job, &err));
    ASSERT_EQ_STR(job->state, "cancelled");
    ASSERT(job->finished > 0);
    dip_store_job_free(job);
    ASSERT_OK(dip_store_job_counts(st, counts, &err));
    ASSERT_EQ_INT(counts[0], 1); /* j22 queued */
    ASSERT_EQ_INT(counts[4], 1);
    dip_store_close(st);
}

TEST(cache_and_recover)
{
    dip_store *st = open_store("cache");
    struct dip_err err = {0};
    struct dip_store_item res, hit;
    struct dip_store_job *job = NULL;

    make_job(st, "j1", "alice", 2);
    memset(&res, 0, sizeof(res));
    ASSERT_OK(dip_store_blob_put(st, "result", 6, res.out_sha, &err));
    snprintf(res.out_format, sizeof(res.out_format), "jpeg");
    res.bytes_out = 6;
    res.out_width = 3;
    res.versions = (char *)"gray@2";
    ASSERT_OK(dip_store_result_put(st, "j1", &res, "k", &err));
    memset(&hit, 0, sizeof(hit));
    ASSERT_EQ_INT(dip_store_cache_get(st, "other", &hit, &err), DIP_ENOTFOUND);
    ASSERT_OK(dip_store_cache_get(st, "k", &hit, &err));
    ASSERT_EQ_STR(hit.out_sha, res.out_sha);
    ASSERT_EQ_STR(hit.out_format, "jpeg");
    ASSERT_EQ_STR(hit.versions, "gray@2");
    dip_free(hit.versions);

    ASSERT_OK(dip_store_job_set_state(st, "j1", "running", 0, &err));
    ASSERT_OK(dip_store_items_finish(st, "j1", "running", NULL, &err));
    dip_store_close(st);
    st = open_store("cache"); /* a restart */
    ASSERT_OK(dip_store_recover(st, &err));
    ASSERT_OK(dip_store_job_get(st, "j1", 1, &job, &err));
    ASSERT_EQ_STR(job->state, "queued");
    ASSERT_EQ_STR(job->items[0].state, "done");
    ASSERT_EQ_STR(job->items[1].state, "queued");
    dip_store_job_free(job);
    dip_store_close(st);
}

TEST(tokens)
{
    dip_store *st = open_store("tokens");
    struct dip_err err = {0};
    char tok[80], tok2[80], name[64];
    int admin = -1;
    uint64_t n = 9;

    ASSERT_OK(dip_store_token_count(st, &n, &err));
    ASSERT_EQ_INT(n, 0);
    ASSERT_OK(dip_store_token_create(st, "alice", 0, tok, &err));
    ASSERT_OK(dip_store_token_create(st, "root", 1, tok2, &err));
    ASSERT(strncmp(tok, "dip_", 4) == 0 && strlen(tok) == 68);
    ASSERT(strcmp(tok, tok2) != 0);
    ASSERT_EQ_INT(dip_store_token_create(st, "alice", 0, tok2, &err), DIP_EINVAL);
    ASSERT_EQ_INT(dip_store_token_create(st, "bad name", 0, tok2, &err), DIP_EINVAL);
    ASSERT_EQ_INT(dip_store_token_create(st, "", 0, tok2, &err), DIP_EINVAL);
    ASSERT_OK(dip_store_token_check(st, tok, name, &admin, &err));
    ASSERT_EQ_STR(name, "alice");
    ASSERT_EQ_INT(admin, 0);
    ASSERT_EQ_INT(dip_store_token_check(st, "dip_nope", name, &admin, &err), DIP_EAUTH);
    ASSERT_OK(dip_store_token_revoke(st, "alice", &err));
    ASSERT_EQ_INT(dip_store_token_check(st, tok, name, &admin, &err), DIP_EAUTH);
    ASSERT_EQ_INT(dip_store_token_revoke(st, "alice", &err), DIP_ENOTFOUND);
    dip_store_close(st);
}

TEST(backup)
{
    dip_store *st = open_store("bk"), *copy = NULL;
    struct dip_err err = {0};
    struct dip_store_job *job = NULL;
    char path[700], dir[600];

    make_job(st, "j1", "alice", 2);
    snprintf(dir, sizeof(dir), "%s/bkcopy", dip_test_tmpdir());
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/dip.db", dir);
    ASSERT_OK(dip_store_backup(st, path, &err));
    dip_store_close(st);
    ASSERT_OK(dip_store_open(dir, &copy, &err));
    ASSERT_OK(dip_store_job_get(copy, "j1", 1, &job, &err));
    ASSERT_EQ_INT(job->n_items, 2);
    dip_store_job_free(job);
    dip_store_close(copy);
    st = open_store("bk2");
    ASSERT_EQ_INT(dip_store_backup(st, "/nonexistent/x/y.db", &err), DIP_EIO);
    dip_store_close(st);
}

/* Every allocation of dip's own in the read paths fails in turn: each call returns DIP_ENOMEM or
 * succeeds, and nothing leaks (ASan) or crashes. SQLite's own allocator is not affected. */
TEST(read_paths_oom)
{
    dip_store *st = open_store("oom");
    struct dip_err err = {0};
    struct dip_store_item res, hit;
    int ok_get = 0, ok_list = 0, ok_cache = 0;

    make_job(st, "j1", "alice", 3);
    memset(&res, 0, sizeof(res));
    res.index = 0;
    ASSERT_OK(dip_store_blob_put(st, "r", 1, res.out_sha, &err));
    snprintf(res.out_format, sizeof(res.out_format), "png");
    res.bytes_out = 1;
    res.versions = (char *)"invert@1";
    ASSERT_OK(dip_store_result_put(st, "j1", &res, "key", &err));
    for (long k = 1; k < 40 && !(ok_get && ok_list && ok_cache); k++) {
        struct dip_store_job *job = NULL, *list = NULL;
        size_t n = 0;
        uint8_t *data = NULL;
        size_t len = 0;
        int rc;

        dip__alloc_fail_after(k);
        rc = dip_store_job_get(st, "j1", 1, &job, &err);
        dip__alloc_fail_after(0);
        ASSERT(rc == 0 || rc == DIP_ENOMEM);
        ASSERT(rc != 0 || job->n_items == 3);
        ok_get |= rc == 0;
        dip_store_job_free(job);

        dip__alloc_fail_after(k);
        rc = dip_store_job_list(st, NULL, 1, 5, &list, &n, &err);
        dip__alloc_fail_after(0);
        ASSERT(rc == 0 || rc == DIP_ENOMEM);
        ok_list |= rc == 0;
        dip_store_jobs_free(list, n);

        memset(&hit, 0, sizeof(hit));
        dip__alloc_fail_after(k);
        rc = dip_store_cache_get(st, "key", &hit, &err);
        dip__alloc_fail_after(0);
        ASSERT(rc == 0 || rc == DIP_ENOMEM);
        ok_cache |= rc == 0;
        dip_free(hit.versions);

        dip__alloc_fail_after(k);
        rc = dip_store_blob_get(st, res.out_sha, 10, &data, &len, &err);
        dip__alloc_fail_after(0);
        ASSERT(rc == 0 || rc == DIP_ENOMEM);
        dip_free(data);
    }
    ASSERT(ok_get && ok_list && ok_cache);
    dip_store_close(st);
}

TEST(job_start_finish)
{
    dip_store *st = open_store("startfinish");
    struct dip_err err = {0};
    struct dip_store_job *job = NULL;

    make_job(st, "j1", "alice", 3);
    ASSERT_OK(dip_store_item_set_state(st, "j1", 2, "failed", "bad", &err));
    ASSERT_OK(dip_store_job_start(st, "j1", &err));
    ASSERT_OK(dip_store_job_get(st, "j1", 1, &job, &err));
    ASSERT_EQ_STR(job->state, "running");
    ASSERT_EQ_STR(job->items[0].state, "running");
    ASSERT_EQ_STR(job->items[2].state, "failed");
    dip_store_job_free(job);
    ASSERT_OK(dip_store_job_finish(st, "j1", "failed", "failed", "no result", &err));
    ASSERT_OK(dip_store_job_get(st, "j1", 1, &job, &err));
    ASSERT_EQ_STR(job->state, "failed");
    ASSERT(job->finished > 0);
    ASSERT_EQ_STR(job->items[0].error, "no result");
    ASSERT_EQ_STR(job->items[2].error, "bad");
    dip_store_job_free(job);
    /* A final job stays as it is. */
    ASSERT_OK(dip_store_job_finish(st, "j1", "done", "cancelled", NULL, &err));
    ASSERT_OK(dip_store_job_start(st, "j1", &err));
    ASSERT_OK(dip_store_job_get(st, "j1", 0, &job, &err));
    ASSERT_EQ_STR(job->state, "failed");
    dip_store_job_free(job);
    dip_store_close(st);
}

/* A job's name (issue 10): kept, read back by get and list, and gone with the job, so that a job
 * made later under the same id has none. A job made without one has "". */
TEST(job_names)
{
    dip_store *st = open_store("names");
    struct dip_err err = {0};
    struct dip_store_job job, *got = NULL, *list = NULL;
    struct dip_store_item item;
    size_t n = 0;

    memset(&job, 0, sizeof(job));
    memset(&item, 0, sizeof(item));
    snprintf(job.id, sizeof(job.id), "named");
    snprintf(job.owner, sizeof(job.owner), "alice");
    snprintf(job.name, sizeof(job.name), "Holiday – 2026");
    job.pipeline = (char *)"invert";
    job.canon = (char *)"invert@1";
    job.quality = 90;
    job.created = 5000.0;
    job.n_items = 1;
    job.items = &item;
    snprintf(item.name, sizeof(item.name), "a.png");
    ASSERT_OK(dip_store_blob_put(st, "a", 1, item.sha, &err));
    ASSERT_OK(dip_store_job_create(st, &job, &err));
    make_job(st, "plain", "alice", 1);
    ASSERT_OK(dip_store_job_get(st, "named", 1, &got, &err));
    ASSERT_EQ_STR(got->name, "Holiday – 2026");
    dip_store_job_free(got);
    ASSERT_OK(dip_store_job_get(st, "plain", 0, &got, &err));
    ASSERT_EQ_STR(got->name, "");
    dip_store_job_free(got);
    ASSERT_OK(dip_store_job_list(st, "alice", 0, 10, &list, &n, &err));
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_STR(list[0].id, "named"); /* newest first */
    ASSERT_EQ_STR(list[0].name, "Holiday – 2026");
    ASSERT_EQ_STR(list[1].name, "");
    dip_store_jobs_free(list, n);
    ASSERT_OK(dip_store_job_delete(st, "named", 0, NULL, NULL, &err));
    job.name[0] = '\0';
    ASSERT_OK(dip_store_job_create(st, &job, &err));
    ASSERT_OK(dip_store_job_get(st, "named", 0, &got, &err));
    ASSERT_EQ_STR(got->name, "");
    dip_store_job_free(got);
    dip_store_close(st);
}

/* Usage per user: a job's inputs when it is recorded, a result's bytes and CPU once however often
 * it is put, CPU added on its own, a window by time, the running totals, a deletion that lowers
 * the bytes stored but not what was used, and the query under every failing allocation. */
TEST(usage_counted_once)
{
    dip_store *st = open_store("usage");
    struct dip_err err = {0};
    struct dip_store_item res;
    struct dip_store_usage *u = NULL, spent = {.cpu_s = 0.25};
    size_t n = 0;
    int ok = 0;

    make_job(st, "u1", "alice", 2); /* 2 x 8 bytes in, created at 1002 */
    make_job(st, "u22", "bob", 1);  /* 8 bytes in, created at 1003 */
    memset(&res, 0, sizeof(res));
    ASSERT_OK(dip_store_blob_put(st, "out", 3, res.out_sha, &err));
    snprintf(res.out_format, sizeof(res.out_format), "png");
    res.bytes_out = 5;
    res.cpu_s = 1.5;
    res.versions = (char *)"invert@1";
    ASSERT_OK(dip_store_result_put(st, "u1", &res, NULL, &err));
    ASSERT_OK(dip_store_result_put(st, "u1", &res, NULL, &err)); /* a resumed job: ignored */
    ASSERT_OK(dip_store_usage_add(st, "alice", &spent, &err));

    ASSERT_OK(dip_store_usage_query(st, NULL, 0, 1e12, &u, &n, &err));
    ASSERT_EQ_INT((long)n, 2);
    ASSERT_EQ_STR(u[0].user, "alice"); /* the biggest CPU user first */
    ASSERT_EQ_INT((long)u[0].jobs, 1);
    ASSERT_EQ_INT((long)u[0].items, 1);
    ASSERT_EQ_INT((long)u[0].bytes_in, 16);
    ASSERT_EQ_INT((long)u[0].bytes_out, 5);
    ASSERT(u[0].cpu_s > 1.7499 && u[0].cpu_s < 1.7501);
    ASSERT_EQ_INT((long)u[0].bytes_stored, 21);
    ASSERT_EQ_STR(u[1].user, "bob");
    ASSERT_EQ_INT((long)u[1].bytes_stored, 8);
    dip_free(u);

    /* Up to t = 1500: the job (at 1002) but not the result (stored now); 16 bytes held for
     * 498 s. */
    ASSERT_OK(dip_store_usage_query(st, "alice", 0, 1500, &u, &n, &err));
    ASSERT_EQ_INT((long)n, 1);
    ASSERT_EQ_INT((long)u[0].jobs, 1);
    ASSERT_EQ_INT((long)u[0].items, 0);
    ASSERT(u[0].stored_byte_s > 16 * 498 - 1e-6 && u[0].stored_byte_s < 16 * 498 + 1e-6);
    dip_free(u);
    /* From t = 1500 on: only what came later; the bytes held since, for the whole window. */
    ASSERT_OK(dip_store_usage_query(st, "alice", 1500, 2500, &u, &n, &err));
    ASSERT_EQ_INT((long)n, 1);
    ASSERT_EQ_INT((long)u[0].jobs, 0);
    ASSERT(u[0].stored_byte_s > 16 * 1000 - 1e-6 && u[0].stored_byte_s < 16 * 1000 + 1e-6);
    dip_free(u);

    /* The running totals agree with the history. */
    ASSERT_OK(dip_store_usage_query(st, "alice", -1, 0, &u, &n, &err));
    ASSERT_EQ_INT((long)n, 1);
    ASSERT_EQ_INT((long)u[0].items, 1);
    ASSERT_EQ_INT((long)u[0].bytes_stored, 21);
    dip_free(u);

    /* Deleting the job: nothing stored any more, what was used stays used. */
    ASSERT_OK(dip_store_job_delete(st, "u1", 0, NULL, NULL, &err));
    ASSERT_OK(dip_store_usage_query(st, "alice", 0, 1e12, &u, &n, &err));
    ASSERT_EQ_INT((long)u[0].bytes_stored, 0);
    ASSERT_EQ_INT((long)u[0].bytes_in, 16);
    ASSERT_EQ_INT((long)u[0].items, 1);
    dip_free(u);

    for (long k = 1; k < 40 && !ok; k++) {
        int rc;
        u = NULL;
        dip__alloc_fail_after(k);
        rc = dip_store_usage_query(st, NULL, 0, 1e12, &u, &n, &err);
        dip__alloc_fail_after(0);
        ASSERT(rc == 0 || rc == DIP_ENOMEM);
        ASSERT(rc == 0 || u == NULL);
        ok = rc == 0 && n == 2;
        dip_free(u);
    }
    ASSERT(ok);
    dip_store_close(st);
}
