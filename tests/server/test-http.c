/* SPDX-License-Identifier: MIT */
/* Unit tests of the server's pieces that need no daemon: the multipart/form-data parser (good,
 * hostile and truncated bodies, with every allocation made to fail in turn), file-name
 * sanitising, JSON escaping, capped buffers, CRC-32 and the zip records. */
#include <string.h>

#include "dip/image.h"
#include "server/internal.h"
#include "test.h"

static const char body_ok[] =
    "preamble\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"pipeline\"\r\n"
    "\r\n"
    "invert | gray\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"a b.png\"\r\n"
    "Content-Type: image/png\r\n"
    "\r\n"
    "\x89PNG\r\n--X\r\n"
    "--XyZ\r\n"
    "content-disposition: form-data; name=file; filename=\"../../x.jpg\"\r\n"
    "\r\n"
    "\r\n"
    "--XyZ--\r\n";

TEST(multipart_ok)
{
    struct dip__part *parts = NULL;
    size_t n = 0;
    char b[80], name[256];
    struct dip_err err = {0};

    ASSERT_OK(dip__multipart_boundary("multipart/form-data; charset=x; boundary=\"XyZ\"", b,
                                      sizeof(b), &err));
    ASSERT_EQ_STR(b, "XyZ");
    ASSERT_OK(dip__multipart_boundary("Multipart/Form-Data; boundary=XyZ", b, sizeof(b), &err));
    ASSERT_OK(dip__multipart_parse((const uint8_t *)body_ok, sizeof(body_ok) - 1, b, 10, &parts, &n,
                                   &err));
    ASSERT_EQ_INT(n, 3);
    ASSERT_EQ_STR(parts[0].name, "pipeline");
    ASSERT_EQ_INT(parts[0].has_filename, 0);
    ASSERT_EQ_INT(parts[0].len, 13);
    ASSERT(memcmp(parts[0].data, "invert | gray", 13) == 0);
    ASSERT_EQ_STR(parts[1].filename, "a b.png");
    ASSERT_EQ_INT(parts[1].len, 9); /* a CRLF and "--X" inside the data are data */
    ASSERT_EQ_STR(parts[2].name, "file");
    ASSERT_EQ_INT(parts[2].len, 0);
    dip__sanitize_name(parts[2].filename, "image-2", name, sizeof(name));
    ASSERT_EQ_STR(name, "x.jpg");
    dip_free(parts);
    ASSERT_EQ_INT(
        dip__multipart_parse((const uint8_t *)body_ok, sizeof(body_ok) - 1, b, 2, &parts, &n, &err),
        DIP_ELIMIT);
}

TEST(multipart_bad)
{
    static const char *const bad[] = {
        "",
        "--XyZ",
        "--XyZ\r\n",
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
        "--XyZ\r\nX-Other: 1\r\n\r\ndata\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nd\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data\r\n\r\nd\r\n--XyZ--",
        "--XyZgarbage",
        "nothing at all",
    };
    struct dip__part *parts = NULL;
    size_t n = 0;
    struct dip_err err = {0};
    char b[80];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dip_err_clear(&err);
        ASSERT_EQ_INT(dip__multipart_parse((const uint8_t *)bad[i], strlen(bad[i]), "XyZ", 10,
                                           &parts, &n, &err),
                      DIP_EINVAL);
        ASSERT(err.msg[0] != '\0');
        ASSERT(parts == NULL);
    }
    /* Every truncation of a good body is refused or parsed, never read past its end (ASan). */
    for (size_t len = 0; len < sizeof(body_ok) - 1; len++) {
        uint8_t *copy = dip_malloc(len + 1);
        memcpy(copy, body_ok, len);
        if (dip__multipart_parse(copy, len, "XyZ", 10, &parts, &n, &err) == 0)
            dip_free(parts);
        dip_free(copy);
    }
    ASSERT_EQ_INT(dip__multipart_boundary("text/plain", b, sizeof(b), &err), DIP_EINVAL);
    ASSERT_EQ_INT(dip__multipart_boundary("multipart/form-data", b, sizeof(b), &err), DIP_EINVAL);
    ASSERT_EQ_INT(dip__multipart_boundary("multipart/form-data; boundary=", b, sizeof(b), &err),
                  DIP_EINVAL);
    ASSERT_EQ_INT(
        dip__multipart_boundary("multipart/form-data; boundary=\"abc", b, sizeof(b), &err),
        DIP_EINVAL);
    ASSERT_EQ_INT(dip__multipart_boundary(NULL, b, sizeof(b), &err), DIP_EINVAL);
}

TEST(multipart_oom)
{
    struct dip__part *parts = NULL;
    size_t n = 0;
    int rc;

    /* Fail the 1st, 2nd, ... allocation until the parse succeeds: each failure is ENOMEM. */
    for (long k = 1; k < 20; k++) {
        dip__alloc_fail_after(k);
        rc = dip__multipart_parse((const uint8_t *)body_ok, sizeof(body_ok) - 1, "XyZ", 10, &parts,
                                  &n, NULL);
        dip__alloc_fail_after(0);
        if (rc == 0) {
            dip_free(parts);
            return;
        }
        ASSERT_EQ_INT(rc, DIP_ENOMEM);
    }
    DIP_TEST_FAIL("parse never succeeded");
}

TEST(sanitize_names)
{
    char out[256];

    dip__sanitize_name("C:\\Users\\x\\photo.JPG", "f", out, sizeof(out));
    ASSERT_EQ_STR(out, "photo.JPG");
    dip__sanitize_name("a\"b;c%d\x01.png", "f", out, sizeof(out));
    ASSERT_EQ_STR(out, "a_b_c_d_.png");
    dip__sanitize_name("..", "fallback", out, sizeof(out));
    ASSERT_EQ_STR(out, "fallback");
    dip__sanitize_name("dir/", "fallback", out, sizeof(out));
    ASSERT_EQ_STR(out, "fallback");
    dip__sanitize_name("\xc3\xa9t\xc3\xa9.png", "f", out, sizeof(out));
    ASSERT_EQ_STR(out, "__t__.png");
}

TEST(json_and_sbuf)
{
    struct dip__sbuf b;

    dip__sbuf_init(&b, 1024);
    dip__sbuf_json_str(&b, "a\"b\\c\nd\x01");
    dip__sbuf_str(&b, " ");
    dip__sbuf_json_str(&b, NULL);
    dip__sbuf_str(&b, " ");
    dip__sbuf_json_num(&b, 3.0);
    dip__sbuf_str(&b, " ");
    dip__sbuf_json_num(&b, 0.5);
    dip__sbuf_str(&b, " ");
    dip__sbuf_json_num(&b, 1.0 / 0.0);
    ASSERT_OK(b.failed);
    ASSERT_EQ_STR(b.data, "\"a\\\"b\\\\c\\nd\\u0001\" null 3 0.500 null");
    dip__sbuf_free(&b);

    dip__sbuf_init(&b, 8);
    ASSERT_OK(dip__sbuf_str(&b, "12345678"));
    ASSERT_EQ_INT(dip__sbuf_str(&b, "9"), DIP_ELIMIT);
    ASSERT_EQ_INT(dip__sbuf_str(&b, ""), DIP_ELIMIT); /* sticks */
    dip__sbuf_free(&b);
    dip__sbuf_init(&b, 100000);
    ASSERT_EQ_INT(dip__sbuf_reserve(&b, 100001), DIP_ELIMIT);
    dip__sbuf_free(&b);
    dip__sbuf_init(&b, 100000);
    ASSERT_OK(dip__sbuf_reserve(&b, 5000));
    ASSERT(b.size == 5001 && b.len == 0);
    ASSERT_OK(dip__sbuf_printf(&b, "%0600d|%s", 7, "x"));
    ASSERT_EQ_INT(b.len, 602);
    dip__sbuf_free(&b);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

TEST(crc_and_zip)
{
    struct dip__sbuf z, cd;
    uint32_t crc;
    const uint8_t *p;

    ASSERT_EQ_INT(dip__crc32(0, "123456789", 9), 0xcbf43926u); /* the CRC-32 check value */
    crc = dip__crc32(0, "12345", 5);
    ASSERT_EQ_INT(dip__crc32(crc, "6789", 4), 0xcbf43926u);
    ASSERT_EQ_INT(dip__crc32(0, "", 0), 0);

    dip__sbuf_init(&z, 4096);
    dip__sbuf_init(&cd, 4096);
    ASSERT_OK(dip__zip_local_header(&z, "a.txt", crc, 5));
    ASSERT_OK(dip__sbuf_add(&z, "12345", 5));
    ASSERT_OK(dip__zip_central(&cd, "a.txt", crc, 5, 0));
    ASSERT_EQ_INT(cd.len, 46 + 5);
    ASSERT_OK(dip__sbuf_add(&z, cd.data, cd.len));
    ASSERT_OK(dip__zip_end(&z, 1, (uint32_t)cd.len, 30 + 5 + 5));
    p = (const uint8_t *)z.data;
    ASSERT_EQ_INT(rd32(p), 0x04034b50);
    ASSERT_EQ_INT(rd32(p + 14), crc);
    ASSERT_EQ_INT(rd32(p + 18), 5);
    ASSERT(memcmp(p + 30, "a.txt12345", 10) == 0);
    ASSERT_EQ_INT(rd32(p + 40), 0x02014b50);
    p = (const uint8_t *)z.data + z.len - 22;
    ASSERT_EQ_INT(rd32(p), 0x06054b50);
    ASSERT_EQ_INT(rd32(p + 12), cd.len);
    ASSERT_EQ_INT(rd32(p + 16), 40);
    dip__sbuf_free(&z);
    dip__sbuf_free(&cd);
}

/* Random byte mutations of a good body (a fixed seed, so failures replay): the parser returns
 * 0, DIP_EINVAL or DIP_ELIMIT, and its parts always lie inside the body (ASan checks reads). */
TEST(multipart_mutations)
{
    uint32_t seed = 12345;
    size_t len = sizeof(body_ok) - 1;
    uint8_t *buf = dip_malloc(len);

    for (int iter = 0; iter < 20000; iter++) {
        struct dip__part *parts = NULL;
        size_t n = 0, cut;
        int rc, k;

        memcpy(buf, body_ok, len);
        for (k = 0; k < 1 + iter % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % len] = (uint8_t)(seed >> 24);
        }
        seed = seed * 1103515245u + 12345u;
        cut = iter % 3 == 0 ? (seed >> 8) % (len + 1) : len;
        rc = dip__multipart_parse(buf, cut, "XyZ", 4, &parts, &n, NULL);
        ASSERT(rc == 0 || rc == DIP_EINVAL || rc == DIP_ELIMIT);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            ASSERT(parts[i].data >= buf && parts[i].data + parts[i].len <= buf + cut);
            ASSERT(strlen(parts[i].name) < sizeof(parts[i].name));
        }
        dip_free(parts);
    }
    dip_free(buf);
}
