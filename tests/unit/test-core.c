/* SPDX-License-Identifier: MIT */
/* Unit tests for src/core: errors, limits and checked size arithmetic, images and views, the
 * failing allocator and the thread pool. */
#include <stdatomic.h>
#include <stdint.h>

#include "core/internal.h"
#include "dip/dip.h"
#include "test.h"

TEST(err_names_and_codes)
{
    struct dip_err err = {0};

    ASSERT_EQ_STR(dip_err_name(DIP_ELIMIT), "ELIMIT");
    ASSERT_EQ_INT(dip_err_http_status(DIP_ELIMIT), 413);
    ASSERT_EQ_INT(dip_err_http_status(DIP_ECORRUPT), 422);
    ASSERT_EQ_INT(dip_err_http_status(0), 200);
    ASSERT_EQ_INT(dip_err_exit_code(0), 0);
    ASSERT(dip_err_exit_code(DIP_EINVAL) != 0);
    ASSERT_EQ_STR(dip_strerror(12345), "unknown error");
    ASSERT_EQ_INT(dip_err_set(&err, DIP_ECORRUPT, "png: bad crc in %s", "IDAT"), DIP_ECORRUPT);
    ASSERT_EQ_INT(err.code, DIP_ECORRUPT);
    ASSERT_EQ_STR(err.msg, "png: bad crc in IDAT");
    dip_err_prefix(&err, "%s: ", "a.png");
    ASSERT_EQ_STR(err.msg, "a.png: png: bad crc in IDAT");
    ASSERT_EQ_STR(dip_err_text(&err, DIP_ECORRUPT), "a.png: png: bad crc in IDAT");
    dip_err_clear(&err);
    ASSERT_EQ_STR(dip_err_text(&err, DIP_ENOMEM), "out of memory");
    /* NULL err is allowed everywhere. */
    ASSERT_EQ_INT(dip_err_set(NULL, DIP_EINVAL, "x"), DIP_EINVAL);
    dip_err_prefix(NULL, "x");
}

TEST(err_message_truncates)
{
    struct dip_err err = {0};
    char big[2000];

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    dip_err_set(&err, DIP_EINVAL, "%s", big);
    ASSERT_EQ_INT(strlen(err.msg), sizeof(err.msg) - 1);
    dip_err_prefix(&err, "prefix: ");
    ASSERT_EQ_INT(strlen(err.msg), sizeof(err.msg) - 1);
    ASSERT(strncmp(err.msg, "prefix: aaa", 11) == 0);
}

TEST(size_math_overflow)
{
    size_t r = 7;

    ASSERT_OK(dip_size_mul(1000, 1000, &r));
    ASSERT_EQ_INT(r, 1000000);
    ASSERT_EQ_INT(dip_size_mul(SIZE_MAX / 2 + 1, 2, &r), DIP_ELIMIT);
    ASSERT_EQ_INT(r, 1000000); /* untouched on overflow */
    ASSERT_EQ_INT(dip_size_add(SIZE_MAX, 1, &r), DIP_ELIMIT);
    ASSERT_OK(dip_size_add(SIZE_MAX - 1, 1, &r));
    ASSERT(r == SIZE_MAX);
}

TEST(limits_defaults_and_checks)
{
    struct dip_limits lim;
    struct dip_err err = {0};

    dip_limits_default(&lim);
    ASSERT_EQ_INT(lim.max_width, 65535);
    ASSERT_EQ_INT(lim.max_height, 65535);
    ASSERT_EQ_INT(lim.max_pixels, 100000000);
    ASSERT_EQ_INT(lim.max_input_bytes, 256u << 20);
    ASSERT_EQ_INT(lim.max_jpeg_scans, 100);
    ASSERT_EQ_INT(lim.max_metadata_bytes, 16u << 20);
    ASSERT_EQ_INT(lim.max_frames, 100);
    ASSERT_OK(dip_limits_check_dims(&lim, "png", 10000, 10000, &err));
    ASSERT_EQ_INT(dip_limits_check_dims(&lim, "png", 65536, 1, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "max_width=65535");
    ASSERT_EQ_INT(dip_limits_check_dims(&lim, "bmp", 1, 70000, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "bmp: height 70000");
    ASSERT_EQ_INT(dip_limits_check_dims(&lim, "gif", 20000, 20000, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "max_pixels=100000000");
    ASSERT_EQ_INT(dip_limits_check_dims(&lim, "tiff", 0, 5, &err), DIP_ECORRUPT);
    ASSERT_EQ_INT(dip_limits_check_dims(&lim, "tiff", -3, 5, &err), DIP_ECORRUPT);
    /* The product of two maximal sides must not wrap around. */
    lim.max_width = lim.max_height = 1 << 30;
    lim.max_pixels = UINT64_MAX;
    ASSERT_OK(dip_limits_check_dims(&lim, "x", 1 << 30, 1 << 30, &err));
}

TEST(image_new_and_views)
{
    dip_image *img = NULL, *copy = NULL;
    struct dip_view v, sub, cv;

    ASSERT_EQ_INT(dip_image_new(0, 5, 3, &img), DIP_EINVAL);
    ASSERT_EQ_INT(dip_image_new(5, 5, 5, &img), DIP_EINVAL);
    ASSERT(img == NULL);
    ASSERT_OK(dip_image_new(7, 5, 3, &img));
    ASSERT_EQ_INT(dip_image_width(img), 7);
    ASSERT_EQ_INT(dip_image_height(img), 5);
    ASSERT_EQ_INT(dip_image_channels(img), 3);
    v = dip_image_view(img);
    ASSERT_EQ_INT(v.stride, 21);
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 21; x++)
            v.data[y * 21 + x] = (uint8_t)(y * 21 + x);
    sub = dip_view_sub(&v, (struct dip_rect){2, 1, 3, 2});
    ASSERT_EQ_INT(sub.width, 3);
    ASSERT_EQ_INT(sub.height, 2);
    ASSERT_EQ_INT(sub.data[0], 21 + 6);
    ASSERT_EQ_INT(sub.data[sub.stride + 2], 42 + 8);
    ASSERT_OK(dip_image_copy(img, &copy));
    cv = dip_image_view(copy);
    ASSERT(dip_view_equal(&v, &cv));
    cv.data[3] ^= 1;
    ASSERT(!dip_view_equal(&v, &cv));
    /* A reference keeps the pixels alive after the creator lets go. */
    dip_image_ref(img);
    dip_image_unref(img);
    ASSERT_EQ_INT(dip_image_view(img).data[4], 4);
    dip_image_unref(img);
    dip_image_unref(copy);
    dip_image_unref(NULL);
}

TEST(image_size_overflow_refused)
{
    dip_image *img = NULL;

    /* 2^30 x 2^30 x 4 overflows size_t on no 64-bit machine, but is refused as too big to
     * allocate; on overflow it must be ELIMIT, never a wrapped small buffer. */
    int rc = dip_image_new(1 << 30, 1 << 30, 4, &img);
    ASSERT(rc == DIP_ENOMEM || rc == DIP_ELIMIT);
    ASSERT(img == NULL);
}

TEST(rects)
{
    struct dip_rect r =
        dip_rect_intersect((struct dip_rect){0, 0, 10, 10}, (struct dip_rect){5, -3, 10, 5});

    ASSERT_EQ_INT(r.x, 5);
    ASSERT_EQ_INT(r.y, 0);
    ASSERT_EQ_INT(r.w, 5);
    ASSERT_EQ_INT(r.h, 2);
    r = dip_rect_intersect((struct dip_rect){0, 0, 2, 2}, (struct dip_rect){3, 3, 1, 1});
    ASSERT_EQ_INT(r.w * r.h, 0);
    ASSERT(dip_rect_contains((struct dip_rect){0, 0, 4, 4}, (struct dip_rect){1, 1, 3, 3}));
    ASSERT(!dip_rect_contains((struct dip_rect){0, 0, 4, 4}, (struct dip_rect){1, 1, 4, 3}));
}

TEST(alloc_failure_returns_enomem)
{
    dip_image *img = NULL;

    /* Every allocation point of dip_image_new fails cleanly. */
    for (long n = 1; n <= 2; n++) {
        dip__alloc_fail_after(n);
        ASSERT_EQ_INT(dip_image_new(4, 4, 1, &img), DIP_ENOMEM);
        ASSERT(img == NULL);
    }
    dip__alloc_fail_after(0);
    ASSERT_OK(dip_image_new(4, 4, 1, &img));
    dip_image_unref(img);
}

static atomic_int hits[1000];

static int count_task(void *ud, size_t i, int thread)
{
    (void)ud;
    (void)thread;
    atomic_fetch_add(&hits[i], 1);
    return 0;
}

static int fail_task(void *ud, size_t i, int thread)
{
    (void)ud;
    (void)thread;
    return i == 17 ? DIP_ECANCELED : 0;
}

TEST(pool_runs_every_index_once)
{
    dip_pool *pool = NULL;

    ASSERT_OK(dip_pool_new(4, &pool));
    ASSERT_EQ_INT(dip_pool_threads(pool), 4);
    for (int round = 0; round < 20; round++) {
        memset(hits, 0, sizeof(hits));
        ASSERT_OK(dip_pool_for(pool, 1000, count_task, NULL));
        for (int i = 0; i < 1000; i++)
            ASSERT_EQ_INT(atomic_load(&hits[i]), 1);
    }
    ASSERT_EQ_INT(dip_pool_for(pool, 100, fail_task, NULL), DIP_ECANCELED);
    ASSERT_OK(dip_pool_for(NULL, 10, count_task, NULL)); /* inline */
    dip_pool_free(pool);
    dip_pool_free(NULL);
}

TEST(large_buffers_are_reused_within_bounds)
{
    dip_image *a = NULL, *b = NULL, *c = NULL;
    const uint8_t *pa;

    /* 3000 x 1000 x 3 = 9 MB: large enough to be kept for reuse after it is freed. */
    ASSERT_OK(dip_image_new(3000, 1000, 3, &a));
    pa = dip_image_view(a).data;
    dip_image_unref(a);
    ASSERT_OK(dip_image_new(3000, 1000, 3, &b));
    ASSERT(dip_image_view(b).data == pa); /* the same size comes back from the cache */
    dip_image_unref(b);
    /* Much smaller requests do not take a much larger buffer. */
    ASSERT_OK(dip_image_new(1500, 1000, 3, &c));
    ASSERT(dip_image_view(c).data != pa);
    dip_image_unref(c);
    dip__cache_drop();
    /* Allocation failure still reports ENOMEM with buffers in the cache. */
    ASSERT_OK(dip_image_new(3000, 1000, 3, &a));
    dip_image_unref(a);
    dip__alloc_fail_after(2);
    ASSERT_EQ_INT(dip_image_new(3000, 1000, 3, &b), DIP_ENOMEM);
    dip__alloc_fail_after(0);
    dip__cache_drop();
}
