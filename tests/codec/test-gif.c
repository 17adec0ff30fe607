/* SPDX-License-Identifier: MIT */
/* GIF decoder tests. GIFs are written here with giflib's encoder (offset blocks, transparency,
 * local palettes, interlacing, delays and disposal methods, blocks past the screen, many blocks)
 * or by hand (broken LZW), and decoded through dip_codec_decode; expected pixels come from the
 * palettes, indices and disposals the test wrote. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <gif_lib.h>

#include "codec-util.h"
#include "test.h"

struct gframe {
    int x, y, w, h, interlace;
    int trans;                 /* transparent index or -1 */
    const GifColorType *local; /* local palette of nlocal entries, or NULL */
    int nlocal;
    const uint8_t *idx; /* w*h indices, row-major in display order */
    int delay;          /* hundredths of a second in the graphic control extension */
    int disposal;       /* DISPOSE_* */
};

static int gw(GifFileType *g, const GifByteType *d, int n)
{
    bytes_put(g->UserData, d, (size_t)n);
    return n;
}

static struct bytes write_gif(int sw, int sh, const GifColorType *global, int nglobal,
                              const struct gframe *fr, int nfr)
{
    static const int ioff[4] = {0, 4, 2, 1}, istep[4] = {8, 8, 4, 2};
    struct bytes b = {0};
    int e = 0;
    GifFileType *g = EGifOpen(&b, gw, &e);
    ColorMapObject *gm = global ? GifMakeMapObject(nglobal, global) : NULL;

    ASSERT(g != NULL);
    EGifSetGifVersion(g, true);
    ASSERT(EGifPutScreenDesc(g, sw, sh, 8, 0, gm) == GIF_OK);
    for (int f = 0; f < nfr; f++) {
        const struct gframe *F = &fr[f];
        ColorMapObject *lm = F->local ? GifMakeMapObject(F->nlocal, F->local) : NULL;
        GifPixelType *row = malloc((size_t)F->w);
        if (F->trans >= 0 || F->delay || F->disposal) {
            GraphicsControlBlock gcb = {F->disposal, false, F->delay, F->trans};
            GifByteType ext[4];
            EGifGCBToExtension(&gcb, ext);
            ASSERT(EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, 4, ext) == GIF_OK);
        }
        ASSERT(EGifPutImageDesc(g, F->x, F->y, F->w, F->h, F->interlace != 0, lm) == GIF_OK);
        /* Interlaced frames store their rows in pass order. */
        for (int pass = F->interlace ? 0 : 3; pass < 4; pass++)
            for (int y = F->interlace ? ioff[pass] : 0; y < F->h;
                 y += F->interlace ? istep[pass] : 1) {
                memcpy(row, F->idx + (size_t)y * (size_t)F->w, (size_t)F->w);
                ASSERT(EGifPutLine(g, row, F->w) == GIF_OK);
            }
        free(row);
        GifFreeMapObject(lm);
    }
    ASSERT(EGifCloseFile(g, &e) == GIF_OK);
    GifFreeMapObject(gm);
    return b;
}

static int pix(const dip_image *img, int x, int y, int c)
{
    struct dip_view v = dip_image_view(img);
    return v.data[(size_t)y * v.stride + (size_t)x * (size_t)v.channels + (size_t)c];
}

static const GifColorType pal4[4] = {{10, 20, 30}, {200, 0, 0}, {0, 0, 0}, {40, 250, 90}};

/* Two frames: an 8x6 block at (5,4) with transparent index 2 and a delay (so it is the whole
 * first frame), then a full-screen block. */
static struct bytes offset_transparent_gif(uint8_t *idx1)
{
    static uint8_t idx2[20 * 16];
    struct gframe fr[2] = {{5, 4, 8, 6, 0, 2, NULL, 0, idx1, 10, 0},
                           {0, 0, 20, 16, 0, -1, NULL, 0, idx2, 0, 0}};

    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 8; x++)
            idx1[y * 8 + x] = (uint8_t)((x + 2 * y) % 4);
    memset(idx2, 1, sizeof(idx2));
    return write_gif(20, 16, pal4, 4, fr, 2);
}

TEST(first_frame_offset_and_transparency)
{
    uint8_t idx1[48];
    struct bytes b = offset_transparent_gif(idx1);
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(info.format, DIP_FORMAT_GIF);
    ASSERT_EQ_INT(info.frames, 2);
    ASSERT_EQ_INT(info.channels, 4);
    ASSERT_EQ_STR(info.color, "palette");
    ASSERT_EQ_INT(dip_image_width(img), 20);
    ASSERT_EQ_INT(dip_image_height(img), 16);
    ASSERT_EQ_INT(dip_image_channels(img), 4);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 20; x++) {
            int in = x >= 5 && x < 13 && y >= 4 && y < 10;
            int i = in ? idx1[(y - 4) * 8 + (x - 5)] : -1;
            if (i < 0 || i == 2) { /* outside the frame or transparent */
                ASSERT_EQ_INT(pix(img, x, y, 3), 0);
                continue;
            }
            ASSERT_EQ_INT(pix(img, x, y, 0), pal4[i].Red);
            ASSERT_EQ_INT(pix(img, x, y, 1), pal4[i].Green);
            ASSERT_EQ_INT(pix(img, x, y, 2), pal4[i].Blue);
            ASSERT_EQ_INT(pix(img, x, y, 3), 255);
        }
    dip_image_unref(img);
    bytes_free(&b);
}

TEST(full_frame_local_palette_gives_rgb)
{
    static const GifColorType local[2] = {{1, 2, 3}, {250, 251, 252}};
    uint8_t idx[6 * 5];
    struct gframe fr = {0, 0, 6, 5, 0, -1, local, 2, idx, 0, 0};
    struct bytes b;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    for (int i = 0; i < 30; i++)
        idx[i] = (uint8_t)(i % 3 == 0);
    b = write_gif(6, 5, pal4, 4, &fr, 1);
    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(info.channels, 3);
    ASSERT_EQ_INT(dip_image_channels(img), 3);
    for (int i = 0; i < 30; i++) {
        ASSERT_EQ_INT(pix(img, i % 6, i / 6, 0), local[idx[i]].Red);
        ASSERT_EQ_INT(pix(img, i % 6, i / 6, 2), local[idx[i]].Blue);
    }
    dip_image_unref(img);
    bytes_free(&b);
}

TEST(interlaced_frame)
{
    uint8_t idx[7 * 19];
    struct gframe fr = {0, 0, 7, 19, 1, -1, NULL, 0, idx, 0, 0};
    struct bytes b;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    for (int y = 0; y < 19; y++)
        for (int x = 0; x < 7; x++)
            idx[y * 7 + x] = (uint8_t)((y * 3 + x) % 4);
    b = write_gif(7, 19, pal4, 4, &fr, 1);
    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(info.progressive, 1);
    for (int y = 0; y < 19; y++)
        for (int x = 0; x < 7; x++)
            if (pix(img, x, y, 0) != pal4[idx[y * 7 + x]].Red ||
                pix(img, x, y, 1) != pal4[idx[y * 7 + x]].Green)
                DIP_TEST_FAIL("pixel (%d,%d) misplaced", x, y);
    dip_image_unref(img);
    bytes_free(&b);
}

static struct bytes many_frames(int n)
{
    static const uint8_t idx[4] = {0, 1, 2, 3};
    struct gframe *fr = calloc((size_t)n, sizeof(*fr));
    struct bytes b;

    for (int i = 0; i < n; i++)
        fr[i] = (struct gframe){i % 3, 0, 2, 2, 0, -1, NULL, 0, idx, 0, 0};
    b = write_gif(4, 2, pal4, 4, fr, n);
    free(fr);
    return b;
}

TEST(frame_limit_refused_with_limit_named)
{
    struct bytes b = many_frames(5);
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    dip_limits_default(&lim);
    lim.max_frames = 5;
    ASSERT_OK(dip_codec_probe(b.p, b.n, &lim, &info, &err));
    ASSERT_EQ_INT(info.frames, 5);
    ASSERT_OK(decode_with(b.p, b.n, &lim, 1, &img, &info, &err));
    ASSERT_EQ_INT(info.frames, 5);
    dip_image_unref(img);
    img = NULL;
    lim.max_frames = 4;
    ASSERT_EQ_INT(dip_codec_probe(b.p, b.n, &lim, &info, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "gif");
    ASSERT_CONTAINS(err.msg, "max_frames=4");
    ASSERT_EQ_INT(decode_with(b.p, b.n, &lim, 1, &img, NULL, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "max_frames=4");
    ASSERT(img == NULL);
    bytes_free(&b);
}

TEST(screen_and_frame_limits)
{
    uint8_t idx1[48];
    struct bytes b = offset_transparent_gif(idx1);
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};

    dip_limits_default(&lim);
    lim.max_width = 19;
    ASSERT_EQ_INT(dip_codec_probe(b.p, b.n, &lim, &info, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "logical screen");
    ASSERT_CONTAINS(err.msg, "max_width=19");
    dip_limits_default(&lim);
    lim.max_pixels = 319;
    ASSERT_EQ_INT(dip_codec_probe(b.p, b.n, &lim, &info, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "max_pixels=319");
    bytes_free(&b);
}

TEST(block_past_screen_is_clipped)
{
    uint8_t idx1[48];
    struct bytes b = offset_transparent_gif(idx1);
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;
    struct dip_limits lim;
    size_t d = 13 + 3 * 4 + 8; /* header+screen, global palette, graphic control extension */

    dip_limits_default(&lim);
    ASSERT_EQ_INT(b.p[d], 0x2c);
    ASSERT_EQ_INT(b.p[d + 1], 5); /* left, little endian */
    ASSERT_EQ_INT(b.p[d + 3], 4); /* top */
    b.p[d + 1] = 15;              /* 15 + 8 > 20: columns 15..19 show, 3 are dropped */
    b.p[d + 3] = 12;              /* 12 + 6 > 16: rows 12..15 show, 2 are dropped */
    ASSERT_OK(dip_codec_probe(b.p, b.n, &lim, &info, &err));
    ASSERT_EQ_INT(info.channels, 4);
    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(dip_image_width(img), 20);
    ASSERT_EQ_INT(dip_image_height(img), 16);
    ASSERT_EQ_INT(dip_image_channels(img), 4);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 20; x++) {
            int in = x >= 15 && y >= 12;
            int i = in ? idx1[(y - 12) * 8 + (x - 15)] : -1;
            if (i < 0 || i == 2) {
                ASSERT_EQ_INT(pix(img, x, y, 3), 0);
                continue;
            }
            ASSERT_EQ_INT(pix(img, x, y, 0), pal4[i].Red);
            ASSERT_EQ_INT(pix(img, x, y, 1), pal4[i].Green);
            ASSERT_EQ_INT(pix(img, x, y, 3), 255);
        }
    dip_image_unref(img);
    img = NULL;
    /* Wholly outside the screen: nothing of it shows. */
    b.p[d + 1] = 30;
    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err));
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 20; x++)
            ASSERT_EQ_INT(pix(img, x, y, 3), 0);
    dip_image_unref(img);
    img = NULL;
    b.p[d + 1] = 5;
    b.p[d + 3] = 4;
    b.p[d + 5] = 0; /* width 0 */
    ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    ASSERT(img == NULL);
    bytes_free(&b);
}

/* A 4x4 screen and one interlaced 6x11 block at (1,0) whose index is (x + 2y) % 4: the block is
 * clipped to columns 1..3 and rows 0..3, and covers column 0 nowhere. */
TEST(interlaced_block_clipped_and_limits_checked_on_its_own_rectangle)
{
    uint8_t idx[6 * 11];
    struct gframe fr = {1, 0, 6, 11, 1, -1, NULL, 0, idx, 0, 0};
    struct bytes b;
    struct dip_limits lim;
    struct dip_err err = {0};
    dip_image *img = NULL;

    for (int y = 0; y < 11; y++)
        for (int x = 0; x < 6; x++)
            idx[y * 6 + x] = (uint8_t)((x + 2 * y) % 4);
    b = write_gif(4, 4, pal4, 4, &fr, 1);
    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err));
    ASSERT_EQ_INT(dip_image_channels(img), 4);
    for (int y = 0; y < 4; y++) {
        ASSERT_EQ_INT(pix(img, 0, y, 3), 0);
        for (int x = 1; x < 4; x++) {
            int i = idx[y * 6 + (x - 1)];
            ASSERT_EQ_INT(pix(img, x, y, 0), pal4[i].Red);
            ASSERT_EQ_INT(pix(img, x, y, 2), pal4[i].Blue);
            ASSERT_EQ_INT(pix(img, x, y, 3), 255);
        }
    }
    dip_image_unref(img);
    img = NULL;
    /* The screen passes max_height=10, the block's own 11 rows do not. */
    dip_limits_default(&lim);
    lim.max_height = 10;
    ASSERT_EQ_INT(decode_with(b.p, b.n, &lim, 1, &img, NULL, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "image block 1");
    ASSERT_CONTAINS(err.msg, "max_height=10");
    ASSERT(img == NULL);
    sweep_truncations(b.p, b.n, 1, 0);
    bytes_free(&b);
}

/* A 6x4 screen (index 0 everywhere from block A) and blocks without delay:
 *   A 6x4 at (0,0), index 0, disposal 1 (keep);
 *   B 2x2 at (0,0), index 1, disposal 2 (restore to background: transparent);
 *   C 2x2 at (2,0), index 3, disposal 3 (restore previous: index 0 again);
 *   D 2x2 at (4,2), index 1, delay 10, disposal `last_disposal`: ends the first frame;
 *   E 6x4, index 3, delay 10: the second frame, never shown. */
static struct bytes disposal_gif(int last_disposal)
{
    static uint8_t a[24], one[4] = {1, 1, 1, 1}, three[24];
    struct gframe fr[5] = {
        {0, 0, 6, 4, 0, -1, NULL, 0, a, 0, DISPOSE_DO_NOT},
        {0, 0, 2, 2, 0, -1, NULL, 0, one, 0, DISPOSE_BACKGROUND},
        {2, 0, 2, 2, 0, -1, NULL, 0, three, 0, DISPOSE_PREVIOUS},
        {4, 2, 2, 2, 0, -1, NULL, 0, one, 10, last_disposal},
        {0, 0, 6, 4, 0, -1, NULL, 0, three, 10, DISPOSE_DO_NOT},
    };

    memset(a, 0, sizeof(a));
    memset(three, 3, sizeof(three));
    return write_gif(6, 4, pal4, 4, fr, 5);
}

TEST(zero_delay_blocks_composite_with_disposal)
{
    for (int ld = 0; ld < 4; ld++) { /* the last block's own disposal is never applied */
        struct bytes b = disposal_gif(ld);
        struct dip_image_info info;
        struct dip_limits lim;
        struct dip_err err = {0};
        dip_image *img = NULL;

        dip_limits_default(&lim);
        ASSERT_OK(dip_codec_probe(b.p, b.n, &lim, &info, &err));
        ASSERT_EQ_INT(info.channels, 4);
        ASSERT_EQ_INT(info.frames, 5);
        ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
        ASSERT_EQ_INT(dip_image_channels(img), 4);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 6; x++) {
                int i = x < 2 && y < 2 ? -1 : x >= 4 && y >= 2 ? 1 : 0;
                if (i < 0) { /* B, disposed to background */
                    ASSERT_EQ_INT(pix(img, x, y, 3), 0);
                    continue;
                }
                if (pix(img, x, y, 0) != pal4[i].Red || pix(img, x, y, 1) != pal4[i].Green ||
                    pix(img, x, y, 2) != pal4[i].Blue || pix(img, x, y, 3) != 255)
                    DIP_TEST_FAIL("last disposal %d: pixel (%d,%d) is not palette %d", ld, x, y, i);
            }
        dip_image_unref(img);
        bytes_free(&b);
    }
}

/* Four delay-less 3x2 blocks tiling a 6x4 screen (a true-colour GIF): opaque, so RGB; with a
 * transparent index on the last block, still RGB where it lies over opaque pixels, RGBA when it
 * lies over a hole disposal left. */
TEST(tiled_blocks_give_rgb_and_transparency_over_them_stays_opaque)
{
    static const GifColorType loc[4][2] = {{{1, 2, 3}, {4, 5, 6}},
                                           {{7, 8, 9}, {10, 11, 12}},
                                           {{13, 14, 15}, {16, 17, 18}},
                                           {{19, 20, 21}, {22, 23, 24}}};
    static const uint8_t idx[6] = {0, 1, 0, 1, 1, 0}, tr[4] = {1, 1, 1, 1};
    struct gframe fr[5];
    struct bytes b;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    for (int k = 0; k < 4; k++)
        fr[k] = (struct gframe){(k % 2) * 3, (k / 2) * 2, 3, 2, 0, -1, loc[k], 2, idx, 0, 0};
    b = write_gif(6, 4, NULL, 0, fr, 4);
    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(info.channels, 3);
    ASSERT_EQ_INT(dip_image_channels(img), 3);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 6; x++) {
            int k = (y / 2) * 2 + x / 3, i = idx[(y % 2) * 3 + x % 3];
            ASSERT_EQ_INT(pix(img, x, y, 0), loc[k][i].Red);
            ASSERT_EQ_INT(pix(img, x, y, 2), loc[k][i].Blue);
        }
    dip_image_unref(img);
    img = NULL;
    bytes_free(&b);
    /* A 2x2 block of transparent index 1 over them: nothing changes, still RGB. */
    fr[4] = (struct gframe){2, 1, 2, 2, 0, 1, loc[0], 2, tr, 5, 0};
    b = write_gif(6, 4, NULL, 0, fr, 5);
    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(info.channels, 3);
    ASSERT_EQ_INT(pix(img, 2, 1, 0), loc[0][idx[5]].Red);
    ASSERT_EQ_INT(pix(img, 3, 2, 0), loc[3][idx[0]].Red);
    dip_image_unref(img);
    img = NULL;
    bytes_free(&b);
    /* The first tile disposed to background, and the transparent block over its hole: RGBA. */
    fr[0].disposal = DISPOSE_BACKGROUND;
    fr[4] = (struct gframe){0, 0, 2, 2, 0, 1, loc[0], 2, tr, 5, 0};
    b = write_gif(6, 4, NULL, 0, fr, 5);
    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(info.channels, 4);
    ASSERT_EQ_INT(pix(img, 0, 0, 3), 0);
    ASSERT_EQ_INT(pix(img, 2, 1, 3), 0);
    ASSERT_EQ_INT(pix(img, 3, 0, 0), loc[1][idx[0]].Red);
    ASSERT_EQ_INT(pix(img, 3, 0, 3), 255);
    sweep_truncations(b.p, b.n, 1, 0);
    dip_image_unref(img);
    bytes_free(&b);
}

TEST(first_frame_blocks_together_within_max_pixels)
{
    struct bytes b = disposal_gif(DISPOSE_DO_NOT);
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    /* Blocks A..D of the first frame: 24 + 4 + 4 + 4 = 36 pixels; E (24) is not decoded. */
    dip_limits_default(&lim);
    lim.max_pixels = 35;
    ASSERT_EQ_INT(dip_codec_probe(b.p, b.n, &lim, &info, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "36 pixels");
    ASSERT_CONTAINS(err.msg, "max_pixels=35");
    ASSERT_EQ_INT(decode_with(b.p, b.n, &lim, 1, &img, NULL, &err), DIP_ELIMIT);
    ASSERT(img == NULL);
    lim.max_pixels = 36;
    ASSERT_OK(decode_with(b.p, b.n, &lim, 1, &img, NULL, &err));
    ASSERT_EQ_INT(dip_image_width(img), 6);
    dip_image_unref(img);
    bytes_free(&b);
}

/* With max_frames raised, 600 delay-less 1x1 blocks on the diagonal of a 1200x1200 screen that a
 * first block covers: the edges cut the screen into more cells than the channel analysis
 * examines, so the output is RGBA (documented), and still the right picture. */
TEST(many_blocks_past_the_channel_analysis_give_rgba_and_right_pixels)
{
    enum { S = 1200, N = 600 };
    static const uint8_t one = 1;
    uint8_t *full = calloc((size_t)S * S, 1);
    struct gframe *fr = calloc(N + 1, sizeof(*fr));
    struct bytes b;
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    ASSERT(full != NULL && fr != NULL);
    fr[0] = (struct gframe){0, 0, S, S, 0, -1, NULL, 0, full, 0, 0};
    for (int i = 1; i <= N; i++)
        fr[i] = (struct gframe){2 * i - 1, 2 * i - 1, 1, 1, 0, -1, NULL, 0, &one, 0, 0};
    b = write_gif(S, S, pal4, 4, fr, N + 1);
    dip_limits_default(&lim);
    lim.max_frames = N + 1;
    ASSERT_OK(dip_codec_probe(b.p, b.n, &lim, &info, &err));
    ASSERT_EQ_INT(info.channels, 4);
    ASSERT_OK(decode_with(b.p, b.n, &lim, 1, &img, &info, &err));
    ASSERT_EQ_INT(dip_image_channels(img), 4);
    for (int y = 0; y < S; y += 7)
        for (int x = 0; x < S; x += 3) {
            int i = x == y && x % 2 == 1 ? 1 : 0;
            if (pix(img, x, y, 0) != pal4[i].Red || pix(img, x, y, 3) != 255)
                DIP_TEST_FAIL("pixel (%d,%d) is not palette %d", x, y, i);
        }
    ASSERT_EQ_INT(pix(img, 1, 1, 0), pal4[1].Red);
    ASSERT_EQ_INT(pix(img, 2, 2, 0), pal4[0].Red);
    ASSERT_EQ_INT(pix(img, 2 * N - 1, 2 * N - 1, 0), pal4[1].Red);
    dip_image_unref(img);
    bytes_free(&b);
    free(fr);
    free(full);
}

TEST(frame_limit_counts_blocks_past_the_first_frame)
{
    static const uint8_t idx[4] = {0, 1, 2, 3};
    struct gframe fr[6];
    struct bytes b;
    struct dip_limits lim;
    struct dip_err err = {0};
    dip_image *img = NULL;

    for (int i = 0; i < 6; i++) /* each with a delay: the first frame is block 1 alone */
        fr[i] = (struct gframe){0, 0, 2, 2, 0, -1, NULL, 0, idx, 10, 0};
    b = write_gif(2, 2, pal4, 4, fr, 6);
    dip_limits_default(&lim);
    lim.max_frames = 5;
    ASSERT_EQ_INT(decode_with(b.p, b.n, &lim, 1, &img, NULL, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "max_frames=5");
    ASSERT(img == NULL);
    lim.max_frames = 6;
    ASSERT_OK(decode_with(b.p, b.n, &lim, 1, &img, NULL, &err));
    dip_image_unref(img);
    bytes_free(&b);
}

/* A 4x4 GIF by hand whose LZW data is `lzw` (n bytes, one sub-block). */
static struct bytes hand_gif(const uint8_t *lzw, size_t n)
{
    struct bytes b = {0};

    bytes_put(&b, "GIF89a\x04\x00\x04\x00\x80\x00\x00", 13); /* 2-entry global palette */
    bytes_put(&b, "\x00\x00\x00\xff\xff\xff", 6);
    bytes_put(&b, "\x2c\x00\x00\x00\x00\x04\x00\x04\x00\x00", 10);
    bytes_u8(&b, 2); /* LZW minimum code size */
    bytes_u8(&b, (unsigned)n);
    bytes_put(&b, lzw, n);
    bytes_u8(&b, 0);
    bytes_u8(&b, 0x3b);
    return b;
}

TEST(corrupt_lzw_is_corrupt_but_probes)
{
    /* Clear (4) then code 7, which is not defined yet: 3-bit codes, LSB first. */
    static const uint8_t bad[1] = {0x3c};
    /* Clear (4), pixel 1, then end-of-information (5) long before 16 pixels. */
    static const uint8_t short_data[2] = {0x4c, 0x01};
    struct bytes b = hand_gif(bad, 1), c = hand_gif(short_data, 2);
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    dip_limits_default(&lim);
    /* Probe walks the records without decoding pixels, so it accepts both. */
    ASSERT_OK(dip_codec_probe(b.p, b.n, &lim, &info, &err));
    ASSERT_EQ_INT(info.width, 4);
    ASSERT_OK(dip_codec_probe(c.p, c.n, &lim, &info, &err));
    ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    ASSERT_CONTAINS(err.msg, "LZW");
    ASSERT_EQ_INT(decode_with(c.p, c.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    ASSERT_CONTAINS(err.msg, "LZW");
    ASSERT(img == NULL);
    bytes_free(&b);
    bytes_free(&c);
}

TEST(lzw_code_size_above_8_is_corrupt)
{
    static const uint8_t data[1] = {0x3c};
    struct bytes b = hand_gif(data, 1);
    struct dip_err err = {0};
    dip_image *img = NULL;

    ASSERT_EQ_INT(b.p[29], 2);
    b.p[29] = 9;
    ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    ASSERT_CONTAINS(err.msg, "LZW minimum code size");
    /* Truncated right after the image descriptor: the message says so. */
    ASSERT_EQ_INT(decode_with(b.p, 29, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    ASSERT_CONTAINS(err.msg, "premature end of data after 29 bytes");
    bytes_free(&b);
}

TEST(pixel_index_outside_palette_is_corrupt)
{
    /* A 2x2 frame using index 3 while the only colour table has 2 entries. */
    static const GifColorType two[2] = {{0, 0, 0}, {255, 255, 255}};
    uint8_t idx[4] = {0, 1, 3, 1};
    struct gframe fr = {0, 0, 2, 2, 0, -1, NULL, 0, idx, 0, 0};
    struct bytes b;
    struct dip_err err = {0};
    dip_image *img = NULL;
    GifColorType four[4];

    /* giflib writes index 3 with a 4-entry palette; then the palette is cut to 2 entries by
     * rewriting the screen descriptor's size field and dropping two entries. */
    memcpy(four, two, sizeof(two));
    memcpy(four + 2, two, sizeof(two));
    b = write_gif(2, 2, four, 4, &fr, 1);
    ASSERT_EQ_INT(b.p[10] & 7, 1);
    b.p[10] = (uint8_t)((b.p[10] & ~7) | 0);
    memmove(b.p + 13 + 6, b.p + 13 + 12, b.n - 25);
    b.n -= 6;
    ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    ASSERT_CONTAINS(err.msg, "colour map");
    bytes_free(&b);
}

TEST(truncation_at_every_offset)
{
    uint8_t idx1[48];
    struct bytes b = offset_transparent_gif(idx1);
    uint8_t idx[7 * 19];
    struct gframe fr = {0, 0, 7, 19, 1, -1, NULL, 0, idx, 0, 0};
    struct bytes c;

    for (size_t i = 0; i < sizeof(idx); i++)
        idx[i] = (uint8_t)(i * 7 % 4);
    c = write_gif(7, 19, pal4, 4, &fr, 1);
    sweep_truncations(b.p, b.n, 1, 0);
    sweep_truncations(c.p, c.n, 1, 0);
    bytes_free(&b);
    bytes_free(&c);
    for (int ld = 0; ld < 4; ld++) {
        b = disposal_gif(ld);
        sweep_truncations(b.p, b.n, 1, 0);
        bytes_free(&b);
    }
}

TEST(out_of_memory_at_every_allocation)
{
    uint8_t idx1[48];
    struct bytes b = offset_transparent_gif(idx1), c = disposal_gif(DISPOSE_DO_NOT);

    sweep_oom(b.p, b.n, DIP_FORMAT_UNKNOWN);
    sweep_oom(c.p, c.n, DIP_FORMAT_UNKNOWN);
    bytes_free(&b);
    bytes_free(&c);
}

TEST(version_and_decode_only)
{
    char buf[512];

    dip_codec_versions(buf, sizeof(buf));
    ASSERT_CONTAINS(buf, "giflib 5.");
    ASSERT_EQ_INT(dip_format_can_encode(DIP_FORMAT_GIF), 0);
}
