/* SPDX-License-Identifier: MIT */
/* The blob store in a local folder with encryption at rest: files on disk are sealed, content
 * addressing stays on the plaintext hash, and each refusal (no key, another key, a flipped byte,
 * a blob copied over another one, plaintext slipped in) is DIP_EINTEGRITY naming the blob. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dip/crypto.h"
#include "dip/image.h"
#include "dip/store.h"
#include "test.h"

static char dir[512], key1[600], key2[600];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s/data", dip_test_tmpdir());
    snprintf(key1, sizeof(key1), "%s/k1", dip_test_tmpdir());
    snprintf(key2, sizeof(key2), "%s/k2", dip_test_tmpdir());
    ASSERT_OK(dip_key_create(key1, NULL));
    ASSERT_OK(dip_key_create(key2, NULL));
}

static dip_store *open_with(const char *key)
{
    struct dip_store_blob_opts bo = {.encrypt_key = key};
    struct dip_err err = {0};
    dip_store *st = NULL;
    int rc = dip_store_open_blobs(dir, &bo, &st, &err);

    if (rc != 0)
        DIP_TEST_FAIL("open: %s", err.msg);
    return st;
}

static void blob_file(const char *sha, char *buf, size_t len)
{
    snprintf(buf, len, "%s/blobs/%.2s/%s", dir, sha, sha + 2);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(1 << 20);

    ASSERT(f != NULL);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void spit(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    ASSERT(f != NULL);
    ASSERT_EQ_INT(fwrite(data, 1, len, f), len);
    fclose(f);
}

TEST(sealed_on_disk_and_refusals_name_the_blob)
{
    static const char text[] = "pixels that must not be readable on disk, pixels pixels pixels";
    char sha[65], sha2[65], path[1200], path2[1200];
    struct dip_err err = {0};
    dip_store *st;
    uint8_t *got = NULL, *raw;
    size_t len = 0, rlen;

    setup();
    st = open_with(key1);
    ASSERT_CONTAINS(dip_store_blobs_describe(st), "encrypted (key id ");
    ASSERT_OK(dip_store_blob_put(st, text, sizeof(text), sha, &err));
    /* Content addressing on the plaintext. */
    {
        char want[65];
        dip_sha256_hex(text, sizeof(text), want);
        ASSERT_EQ_STR(sha, want);
    }
    /* A second put of the same bytes writes nothing new (same file, same nonce). */
    blob_file(sha, path, sizeof(path));
    raw = slurp(path, &rlen);
    ASSERT_EQ_INT(rlen, sizeof(text) + DIP_ENVELOPE_OVERHEAD);
    ASSERT(memcmp(raw, "DIPSEAL1", 8) == 0);
    ASSERT(memmem(raw, rlen, "pixels", 6) == NULL);
    ASSERT_OK(dip_store_blob_put(st, text, sizeof(text), sha, &err));
    {
        size_t l2;
        uint8_t *again = slurp(path, &l2);
        ASSERT(l2 == rlen && memcmp(again, raw, rlen) == 0);
        free(again);
    }
    ASSERT_OK(dip_store_blob_get(st, sha, 1 << 20, &got, &len, &err));
    ASSERT_EQ_INT(len, sizeof(text));
    ASSERT(memcmp(got, text, len) == 0);
    dip_free(got);
    ASSERT_OK(dip_store_blob_put(st, "another blob", 12, sha2, &err));
    dip_store_close(st);

    /* No key. */
    st = open_with(NULL);
    ASSERT_EQ_INT(dip_store_blob_get(st, sha, 1 << 20, &got, &len, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, sha);
    ASSERT_CONTAINS(err.msg, "is encrypted");
    ASSERT(got == NULL);
    dip_store_close(st);
    /* Another key. */
    st = open_with(key2);
    ASSERT_EQ_INT(dip_store_blob_get(st, sha, 1 << 20, &got, &len, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, sha);
    ASSERT_CONTAINS(err.msg, "sealed with another key");
    dip_store_close(st);

    st = open_with(key1);
    /* A flipped byte. */
    raw[rlen - 20] ^= 4;
    spit(path, raw, rlen);
    ASSERT_EQ_INT(dip_store_blob_get(st, sha, 1 << 20, &got, &len, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, sha);
    ASSERT_CONTAINS(err.msg, "authentication failed");
    ASSERT(got == NULL);
    /* Another sealed blob copied over this one: its name is the associated data. */
    blob_file(sha2, path2, sizeof(path2));
    {
        size_t l2;
        uint8_t *other = slurp(path2, &l2);
        spit(path, other, l2);
        free(other);
    }
    ASSERT_EQ_INT(dip_store_blob_get(st, sha, 1 << 20, &got, &len, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "authentication failed");
    /* Plaintext slipped in: refused unless it is exactly the named content (a blob stored
     * before the key was set). */
    spit(path, (const uint8_t *)"chosen plaintext", 16);
    ASSERT_EQ_INT(dip_store_blob_get(st, sha, 1 << 20, &got, &len, &err), DIP_EINTEGRITY);
    ASSERT_CONTAINS(err.msg, "not encrypted");
    spit(path, (const uint8_t *)text, sizeof(text));
    ASSERT_OK(dip_store_blob_get(st, sha, 1 << 20, &got, &len, &err));
    ASSERT(len == sizeof(text) && memcmp(got, text, len) == 0);
    dip_free(got);
    /* ... and a put with the key seals it now (the stored size tells them apart). */
    ASSERT_OK(dip_store_blob_put(st, text, sizeof(text), sha, &err));
    free(raw);
    raw = slurp(path, &rlen);
    ASSERT(memcmp(raw, "DIPSEAL1", 8) == 0);
    free(raw);
    dip_store_close(st);
}

TEST(bad_options_are_refused)
{
    struct dip_store_blob_opts bo = {.url = "/some/folder"};
    struct dip_err err = {0};
    dip_store *st = NULL;

    setup();
    ASSERT_EQ_INT(dip_store_open_blobs(dir, &bo, &st, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "s3://");
    bo.url = NULL;
    bo.encrypt_key = "/nonexistent/key";
    ASSERT_EQ_INT(dip_store_open_blobs(dir, &bo, &st, &err), DIP_EIO);
    ASSERT_CONTAINS(err.msg, "/nonexistent/key");
    ASSERT(st == NULL);
    chmod(key1, 0640);
    bo.encrypt_key = key1;
    ASSERT_EQ_INT(dip_store_open_blobs(dir, &bo, &st, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "chmod 600");
}
