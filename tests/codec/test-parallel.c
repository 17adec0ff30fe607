/* SPDX-License-Identifier: MIT */
/* Parallel codec paths. Every encoder must write the same bytes whatever pool runs it (1, 2 or 3
 * threads) and whatever tile size produced the pixels, as DESIGN.md asks of the cluster: an
 * encoder cuts its work at fixed boundaries, never at thread-count boundaries. The images are
 * large enough for several PNG pieces (4 MiB of filtered rows each). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "codec/internal.h"
#include "core/internal.h"
#include "dip/codec.h"
#include "dip/exec.h"
#include "test.h"

/* A photo-like RGB(A) image: smooth gradients, fine texture and hard edges, deterministic. */
static dip_image *make_photo(int w, int h, int ch)
{
    dip_image *img = NULL;
    struct dip_view v;
    uint32_t s = 7;

    ASSERT_OK(dip_image_new(w, h, ch, &img));
    v = dip_image_view(img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                s = s * 1664525u + 1013904223u;
                int val = (x * (c + 1) + y * (3 - c % 3)) / 7 + (int)(s >> 29);
                if (((x / 97) ^ (y / 61)) & 1)
                    val = 255 - val;
                v.data[(size_t)y * v.stride + (size_t)x * (size_t)ch + (size_t)c] =
                    (uint8_t)(c == 3 ? 255 - (x + y) % 256 : val & 255);
            }
    return img;
}

struct enc_case {
    const char *name;
    dip_format format;
    int level, quality, lossless, channels;
};

/* Runs `gaussian` with tile size `tile` on a pool of `threads` and encodes with the same pool. */
static void run_and_encode(const dip_image *src, const struct enc_case *c, int threads, int tile,
                           uint8_t **out, size_t *len)
{
    dip_pool *pool = NULL;
    dip_pipeline *p = NULL;
    dip_image *res = NULL;
    struct dip_run_opts ro = {0};
    struct dip_encode_opts eo;
    struct dip_err err = {0};

    ASSERT_OK(dip_pool_new(threads, &pool));
    ASSERT_OK(dip_pipeline_parse("gaussian(sigma=1.5)", &p, &err));
    ro.pool = pool;
    ro.tile = tile;
    ASSERT_OK(dip_run_image(p, src, &ro, &res, &err));
    dip_encode_opts_default(&eo);
    eo.format = c->format;
    eo.png_level = c->level;
    eo.quality = c->quality;
    eo.webp_lossless = c->lossless;
    eo.pool = pool;
    ASSERT_OK(dip_codec_encode(res, &eo, out, len, &err));
    dip_image_unref(res);
    dip_pipeline_free(p);
    dip_pool_free(pool);
}

static void same_bytes(const struct enc_case *c, int w, int h)
{
    dip_image *src = make_photo(w, h, c->channels);
    uint8_t *ref = NULL;
    size_t ref_len = 0;
    static const int tiles[2] = {64, 0};

    for (int t = 0; t < 2; t++)
        for (int threads = 1; threads <= 3; threads++) {
            uint8_t *enc = NULL;
            size_t len = 0;

            run_and_encode(src, c, threads, tiles[t], &enc, &len);
            if (ref == NULL) {
                ref = enc;
                ref_len = len;
                continue;
            }
            if (len != ref_len || memcmp(enc, ref, len) != 0)
                fprintf(stderr, "%s: %d threads, tile %d: %zu bytes differ from %zu bytes\n",
                        c->name, threads, tiles[t], len, ref_len);
            ASSERT_EQ_INT((long long)len, (long long)ref_len);
            ASSERT(memcmp(enc, ref, len) == 0);
            dip_free(enc);
        }
    dip_free(ref);
    dip_image_unref(src);
}

TEST(png_same_bytes_any_threads_and_tile)
{
    /* 1600x1000 RGB: 4.8 MB of filtered rows, two pieces. Under ASan, stored blocks and one
     * libdeflate level (3 and 9 run the same code with other settings). */
    for (int level = 0; level <= 9; level += DIP_TEST_SANITIZED ? 6 : 3) {
        struct enc_case c = {"png", DIP_FORMAT_PNG, level, 90, 0, 3};
        same_bytes(&c, 1600, 1000);
    }
}

TEST(png_rgba_same_bytes_any_threads_and_tile)
{
    struct enc_case c = {"png rgba", DIP_FORMAT_PNG, 6, 90, 0, 4};
    same_bytes(&c, 1200, 1000);
}

TEST(jpeg_same_bytes_any_threads_and_tile)
{
    struct enc_case c = {"jpeg", DIP_FORMAT_JPEG, 6, 90, 0, 3};
    same_bytes(&c, 1600, 1000);
}

TEST(webp_same_bytes_any_threads_and_tile)
{
    struct enc_case c = {"webp", DIP_FORMAT_WEBP, 6, 90, 0, 3};
    if (!dip_format_can_encode(DIP_FORMAT_WEBP))
        return;
    same_bytes(&c, 1200, 800);
}

TEST(webp_lossless_same_bytes_any_threads_and_tile)
{
    struct enc_case c = {"webp lossless", DIP_FORMAT_WEBP, 6, 90, 1, 3};
    if (!dip_format_can_encode(DIP_FORMAT_WEBP))
        return;
    same_bytes(&c, 600, 400);
}

TEST(tiff_same_bytes_any_threads_and_tile)
{
    struct enc_case c = {"tiff", DIP_FORMAT_TIFF, 6, 90, 0, 3};
    if (!dip_format_can_encode(DIP_FORMAT_TIFF))
        return;
    same_bytes(&c, 1600, 1000);
}

TEST(bmp_and_pnm_same_bytes_any_threads_and_tile)
{
    struct enc_case b = {"bmp", DIP_FORMAT_BMP, 6, 90, 0, 3};
    struct enc_case p = {"pnm", DIP_FORMAT_PNM, 6, 90, 0, 3};
    same_bytes(&b, 640, 480);
    same_bytes(&p, 640, 480);
}

/* Every level and channel count through several pieces decodes to the pixels encoded. */
TEST(png_multi_piece_round_trip_every_level_and_channel_count)
{
    dip_pool *pool = NULL;

    ASSERT_OK(dip_pool_new(3, &pool));
    for (int ch = 1; ch <= 4; ch++)
        for (int level = 0; level <= 9; level++) {
            /* Under ASan: stored (0), both ISA-L levels (1, 2: their own buffer sizes) and
             * libdeflate at 6 and 9; 3-5 and 7-8 run libdeflate's code with other numbers. */
            if (DIP_TEST_SANITIZED &&
                (level == 3 || level == 4 || level == 5 || level == 7 || level == 8))
                continue;
            /* Two to three pieces for every channel count; level 9 on a smaller image. */
            int w = level >= 7 ? 700 : 1500, h = (int)((9u << 20) / ((unsigned)w * ch)) + 3;
            dip_image *src = make_photo(w, h, ch), *back = NULL;
            struct dip_encode_opts eo;
            struct dip_decode_opts dopt;
            struct dip_limits lim;
            struct dip_err err = {0};
            uint8_t *enc = NULL;
            size_t len = 0;
            struct dip_view a, b;

            if (level >= 7 && ch != 3) {
                dip_image_unref(src);
                continue; /* the slow levels once, on RGB */
            }
            dip_encode_opts_default(&eo);
            eo.format = DIP_FORMAT_PNG;
            eo.png_level = level;
            eo.pool = pool;
            ASSERT_OK(dip_codec_encode(src, &eo, &enc, &len, &err));
            dip_decode_opts_default(&dopt);
            dopt.pool = pool;
            dip_limits_default(&lim);
            ASSERT_OK(dip_codec_decode(enc, len, &lim, &dopt, &back, NULL, &err));
            a = dip_image_view(src);
            b = dip_image_view(back);
            ASSERT(dip_view_equal(&a, &b));
            dip_image_unref(back);
            dip_image_unref(src);
            dip_free(enc);
        }
    dip_pool_free(pool);
}

/* Pieces of varied length and content, at every level, joined behind a zlib header and closed
 * by the combined Adler-32, inflate with zlib to the input. Random lengths put the end of a
 * libdeflate piece at every bit position, which is where a piece is made non-final. */
TEST(deflate_pieces_join_into_one_zlib_stream)
{
    uint32_t s = 99;

    for (int round = 0; round < 40; round++) {
        int level = round % 10, npieces = 1 + round % 4;
        size_t total = 0, lens[4], zlen = 2;
        uint8_t *raw, *z, *back;
        uint32_t adler = 1;
        uLongf back_len;

        for (int i = 0; i < npieces; i++) {
            s = s * 1664525u + 1013904223u;
            lens[i] = (s >> 16) % 70000 + (round % 3 == 0 ? 0 : 1);
            total += lens[i];
        }
        raw = malloc(total + 1);
        z = malloc(2 * total + 1024);
        back = malloc(total + 1);
        ASSERT(raw && z && back);
        for (size_t i = 0; i < total; i++) {
            s = s * 1664525u + 1013904223u;
            raw[i] = (uint8_t)(round & 1 ? (i / 5) % 40 + (s >> 30) : s >> 24);
        }
        dip__zlib_header(level, z);
        for (int i = 0, off = 0; i < npieces; off += (int)lens[i], i++) {
            uint8_t *piece = NULL;
            size_t n = 0;
            ASSERT_OK(dip__deflate_piece(raw + off, lens[i], level, i + 1 == npieces, &piece, &n));
            memcpy(z + zlen, piece, n);
            zlen += n;
            adler = dip__zadler32_combine(adler, dip__zadler32(1, raw + off, lens[i]), lens[i]);
            dip_free(piece);
        }
        z[zlen++] = (uint8_t)(adler >> 24);
        z[zlen++] = (uint8_t)(adler >> 16);
        z[zlen++] = (uint8_t)(adler >> 8);
        z[zlen++] = (uint8_t)adler;
        back_len = (uLongf)total + 1;
        ASSERT_EQ_INT(uncompress(back, &back_len, z, (uLong)zlen), Z_OK);
        ASSERT_EQ_INT((long long)back_len, (long long)total);
        ASSERT(memcmp(back, raw, total) == 0);
        free(raw);
        free(z);
        free(back);
    }
}

/* A PNG encode over several pieces on a pool, with the n-th allocation failing for every n:
 * DIP_ENOMEM and nothing leaked (the ASan build checks leaks), until one succeeds. */
TEST(png_multi_piece_encode_out_of_memory_sweep)
{
    dip_image *src = make_photo(1500, 1000, 3);
    dip_pool *pool = NULL;
    int ok = 0;

    ASSERT_OK(dip_pool_new(2, &pool));
    for (long n = 1; n < 200 && !ok; n++) {
        struct dip_encode_opts eo;
        struct dip_err err = {0};
        uint8_t *enc = NULL;
        size_t len = 0;
        int rc;

        dip_encode_opts_default(&eo);
        eo.format = DIP_FORMAT_PNG;
        eo.png_level = n % 2 ? 6 : 1;
        eo.pool = pool;
        dip__alloc_fail_after(n);
        rc = dip_codec_encode(src, &eo, &enc, &len, &err);
        dip__alloc_fail_after(0);
        if (rc == 0)
            ok = 1;
        else
            ASSERT_EQ_INT(rc, DIP_ENOMEM);
        dip_free(enc);
    }
    ASSERT(ok);
    dip_pool_free(pool);
    dip_image_unref(src);
}

/* TIFF strips inflated in parallel: every channel count round-trips on a pool, and a strip whose
 * deflate data is damaged is still refused (the parallel path hands it to libtiff). */
TEST(tiff_parallel_strips_round_trip_and_damage_refused)
{
    dip_pool *pool = NULL;

    if (!dip_format_can_encode(DIP_FORMAT_TIFF))
        return;
    ASSERT_OK(dip_pool_new(3, &pool));
    for (int ch = 1; ch <= 4; ch++) {
        dip_image *src = make_photo(700, 500, ch), *back = NULL;
        struct dip_encode_opts eo;
        struct dip_decode_opts dopt;
        struct dip_limits lim;
        struct dip_err err = {0};
        uint8_t *enc = NULL;
        size_t len = 0;
        struct dip_view a, b;

        dip_encode_opts_default(&eo);
        eo.format = DIP_FORMAT_TIFF;
        eo.pool = pool;
        ASSERT_OK(dip_codec_encode(src, &eo, &enc, &len, &err));
        dip_decode_opts_default(&dopt);
        dopt.pool = pool;
        dip_limits_default(&lim);
        ASSERT_OK(dip_codec_decode(enc, len, &lim, &dopt, &back, NULL, &err));
        a = dip_image_view(src);
        b = dip_image_view(back);
        ASSERT(dip_view_equal(&a, &b));
        dip_image_unref(back);
        back = NULL;
        /* Strips follow the 8-byte header: damage bytes inside the first strip's data. */
        enc[8 + 40] ^= 0x55;
        enc[8 + 41] ^= 0xAA;
        ASSERT_EQ_INT(dip_codec_decode(enc, len, &lim, &dopt, &back, NULL, &err), DIP_ECORRUPT);
        ASSERT(back == NULL);
        dip_free(enc);
        dip_image_unref(src);
    }
    dip_pool_free(pool);
}

/* ---- A PNG handed to a sink while it is encoded (dip process writes it to the file) ---- */

struct collect {
    uint8_t *buf;
    size_t len, cap;
    int calls, fail_at; /* fail_at > 0: the fail_at-th call refuses */
};

static int collect_sink(void *ud, const uint8_t *p, size_t n)
{
    struct collect *c = ud;

    if (c->fail_at > 0 && ++c->calls == c->fail_at)
        return 1;
    ASSERT(c->fail_at == 0 || c->calls < c->fail_at); /* no call after a refusal */
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->buf = realloc(c->buf, c->cap);
        ASSERT(c->buf != NULL);
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    return 0;
}

/* The sink gets, in order, exactly the bytes of the encode without a sink, at 1, 2 and 3 threads
 * and two tile sizes; the encode then returns no buffer, only the length. A sink that refuses
 * part way gets no more calls, and the whole file comes back in the buffer. */
TEST(png_sink_gets_the_same_bytes_any_threads_and_tile)
{
    static const int levels[3] = {0, 1, 6}, tiles[2] = {64, 0};
    dip_image *src = make_photo(1500, 2000, 3); /* 9 MB of filtered rows: three pieces */

    for (int l = 0; l < 3; l++) {
        struct enc_case c = {"png", DIP_FORMAT_PNG, levels[l], 90, 0, 3};
        uint8_t *ref = NULL;
        size_t ref_len = 0;

        run_and_encode(src, &c, 1, 0, &ref, &ref_len);
        for (int t = 0; t < 2; t++)
            /* Under ASan three threads only (the sink's paths are the same at every count; the
             * -Werror pass compares them all): 12 CPU s -> 5. */
            for (int threads = DIP_TEST_SANITIZED ? 3 : 1; threads <= 3; threads++)
                for (int fail_at = 0; fail_at <= 4; fail_at += 4) {
                    dip_pool *pool = NULL;
                    dip_pipeline *p = NULL;
                    dip_image *res = NULL;
                    struct dip_run_opts ro = {0};
                    struct dip_encode_opts eo;
                    struct dip_err err = {0};
                    struct collect col = {.fail_at = fail_at};
                    uint8_t *enc = NULL;
                    size_t len = 0;

                    ASSERT_OK(dip_pool_new(threads, &pool));
                    ASSERT_OK(dip_pipeline_parse("gaussian(sigma=1.5)", &p, &err));
                    ro.pool = pool;
                    ro.tile = tiles[t];
                    ASSERT_OK(dip_run_image(p, src, &ro, &res, &err));
                    dip_encode_opts_default(&eo);
                    eo.format = DIP_FORMAT_PNG;
                    eo.png_level = levels[l];
                    eo.pool = pool;
                    eo.sink = collect_sink;
                    eo.sink_ud = &col;
                    ASSERT_OK(dip_codec_encode(res, &eo, &enc, &len, &err));
                    if (len != ref_len) /* seen once beside five other tests (make test -j6) */
                        fprintf(stderr,
                                "level %d, tile %d, %d threads, sink failing at %d: %zu "
                                "bytes, %zu at 1 thread\n",
                                levels[l], tiles[t], threads, fail_at, len, ref_len);
                    ASSERT_EQ_INT((long long)len, (long long)ref_len);
                    if (fail_at == 0) {
                        ASSERT(enc == NULL); /* the sink has it all */
                        ASSERT_EQ_INT((long long)col.len, (long long)ref_len);
                    } else {
                        ASSERT(enc != NULL);
                        ASSERT(memcmp(enc, ref, len) == 0);
                        ASSERT_EQ_INT(col.calls, fail_at);
                        ASSERT(col.len < ref_len);
                    }
                    ASSERT(memcmp(col.buf, ref, col.len) == 0);
                    free(col.buf);
                    dip_free(enc);
                    dip_image_unref(res);
                    dip_pipeline_free(p);
                    dip_pool_free(pool);
                }
        dip_free(ref);
    }
    dip_image_unref(src);
}

/* ---- PNM decode on a pool; files read in halves and written in parts ---- */

/* A binary PPM and PGM of several 4 MiB bands decode to the same pixels on 1, 2 and 3 threads
 * (the copy runs in bands on the pool); a truncated one is still refused before any copy. */
TEST(pnm_decode_on_a_pool_round_trip)
{
    for (int ch = 1; ch <= 3; ch += 2) {
        dip_image *src = make_photo(3000, 1700, ch), *back = NULL;
        struct dip_encode_opts eo;
        struct dip_limits lim;
        struct dip_err err = {0};
        uint8_t *enc = NULL;
        size_t len = 0;

        dip_encode_opts_default(&eo);
        eo.format = DIP_FORMAT_PNM;
        ASSERT_OK(dip_codec_encode(src, &eo, &enc, &len, &err));
        dip_limits_default(&lim);
        for (int threads = 1; threads <= 3; threads++) {
            dip_pool *pool = NULL;
            struct dip_decode_opts dopt;
            struct dip_view a, b;

            ASSERT_OK(dip_pool_new(threads, &pool));
            dip_decode_opts_default(&dopt);
            dopt.pool = pool;
            ASSERT_OK(dip_codec_decode(enc, len, &lim, &dopt, &back, NULL, &err));
            a = dip_image_view(src);
            b = dip_image_view(back);
            ASSERT(dip_view_equal(&a, &b));
            dip_image_unref(back);
            back = NULL;
            memset(&err, 0, sizeof(err));
            ASSERT_EQ_INT(dip_codec_decode(enc, len - 1, &lim, &dopt, &back, NULL, &err),
                          DIP_ECORRUPT);
            ASSERT_CONTAINS(err.msg, "truncated pixel data");
            ASSERT(back == NULL);
            dip_pool_free(pool);
        }
        dip_free(enc);
        dip_image_unref(src);
    }
}

static int temporaries_in(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    ASSERT(d != NULL);
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* A file over the split size (read in two halves at once) reads back byte for byte, as does one
 * just under it; a file written in parts of odd sizes and committed reads back whole; an aborted
 * one leaves neither the file nor its temporary; the byte limit still refuses a large file. */
TEST(file_read_in_halves_and_written_in_parts_round_trip)
{
    static const size_t sizes[3] = {((size_t)16 << 20) - 1, ((size_t)21 << 20) + 3, 5};
    char path[4096], gone[4096];
    const char *dir = dip_test_tmpdir();

    snprintf(path, sizeof(path), "%s/big.bin", dir);
    snprintf(gone, sizeof(gone), "%s/gone.bin", dir);
    for (int k = 0; k < 3; k++) {
        size_t n = sizes[k], got_len = 0;
        uint8_t *data = malloc(n), *got = NULL;
        struct dip_err err = {0};
        struct dip_file_out f;
        uint32_t s = 99;

        ASSERT(data != NULL);
        for (size_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            data[i] = (uint8_t)(s >> 24);
        }
        ASSERT_OK(dip_file_write_atomic(path, data, n, &err));
        for (int threads = 0; threads <= 2; threads++) {
            ASSERT_OK(dip_file_read_threads(path, n, threads, &got, &got_len, &err));
            ASSERT_EQ_INT((long long)got_len, (long long)n);
            ASSERT(memcmp(got, data, n) == 0);
            dip_free(got);
            got = NULL;
        }
        if (n > 1) {
            ASSERT_EQ_INT(dip_file_read_threads(path, n - 1, 2, &got, &got_len, &err), DIP_ELIMIT);
            ASSERT_CONTAINS(err.msg, "max_input_bytes");
        }
        /* In parts of 1, 7, 100 000 and the rest, then committed over the file just read. */
        memset(data, 0x5a, DIP_MIN(n, (size_t)1000));
        ASSERT_OK(dip_file_out_open(&f, path, &err));
        {
            size_t done = 0, part[3] = {1, 7, 100000};
            for (int i = 0; done < n; i++) {
                size_t m = DIP_MIN(n - done, i < 3 ? part[i] : n);
                ASSERT_OK(dip_file_out_write(&f, data + done, m, &err));
                done += m;
            }
        }
        ASSERT_EQ_INT(temporaries_in(dir), 1);
        ASSERT_OK(dip_file_out_commit(&f, &err));
        ASSERT_EQ_INT(f.fd, -1);
        ASSERT_OK(dip_file_read_threads(path, n, 2, &got, &got_len, &err));
        ASSERT_EQ_INT((long long)got_len, (long long)n);
        ASSERT(memcmp(got, data, n) == 0);
        dip_free(got);
        /* Aborted: nothing is left. */
        ASSERT_OK(dip_file_out_open(&f, gone, &err));
        ASSERT_OK(dip_file_out_write(&f, data, n, &err));
        dip_file_out_abort(&f);
        dip_file_out_abort(&f); /* a second abort is a no-op */
        ASSERT(access(gone, F_OK) != 0);
        ASSERT_EQ_INT(temporaries_in(dir), 0);
        free(data);
    }
    unlink(path);
}
