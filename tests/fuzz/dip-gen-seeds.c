/* SPDX-License-Identifier: MIT */
/* Writes the generated part of the fuzz seed corpora: small valid images of every format made by
 * the hostile-input generators (tests/hostile/gen.c), plus small hostile headers, into
 * OUTDIR/<format>/. make-corpus.sh adds images encoded by OpenCV and the cached third-party
 * files. With --big it writes medium-size versions of the bomb generators instead, so that an
 * independent decoder can confirm that they produce valid files.
 * Usage: dip-gen-seeds [--big] OUTDIR */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "gen.h"

static const char *outdir;

static void put(const char *fmt, const char *name, struct bytes *b)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", outdir, fmt);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", outdir, fmt, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(b->p, 1, b->n, f) != b->n || fclose(f) != 0)
        perror(path);
    bytes_free(b);
}

int main(int argc, char **argv)
{
    struct bytes b = {0};
    int big = argc > 2 && strcmp(argv[1], "--big") == 0;

    if (argc < 2) {
        fprintf(stderr, "usage: dip-gen-seeds [--big] OUTDIR\n");
        return 2;
    }
    outdir = argv[argc - 1];
    mkdir(outdir, 0755);
    if (big) {
        gen_png_gray(&b, 2000, 1000, 77);
        put("png", "big.png", &b);
        gen_jpeg_gray(&b, 2000, 1000);
        put("jpeg", "big.jpg", &b);
        gen_jpeg_many_scans(&b, 256, 256, 3);
        put("jpeg", "scans2688.jpg", &b);
        gen_webp_lossless(&b, 2000, 1000);
        put("webp", "big.webp", &b);
        gen_webp_vp8x(&b, 20, 10, 20, 10);
        put("webp", "vp8x.webp", &b);
        gen_tiff_gray(&b, 2000, 1000, 77, 1, 0, 0);
        put("tiff", "big.tif", &b);
        gen_tiff_gray(&b, 20, 10, 77, 0, 50, 0);
        put("tiff", "tags50.tif", &b);
        gen_gif(&b, 2000, 1000, 2000, 1000, 1);
        put("gif", "big.gif", &b);
        gen_gif(&b, 20, 10, 20, 10, 3);
        put("gif", "frames3.gif", &b);
        gen_bmp_rle8_bomb(&b, 2000, 1000);
        put("bmp", "rle.bmp", &b);
        gen_pbm(&b, 2000, 1000);
        put("pnm", "big.pbm", &b);
        return 0;
    }
    gen_png_gray(&b, 37, 23, 7);
    put("png", "gray37x23.png", &b);
    gen_png_head(&b, 65535, 65535, 8, 6);
    put("png", "header-bomb.png", &b);
    gen_jpeg_gray(&b, 40, 24);
    put("jpeg", "gray40x24.jpg", &b);
    gen_jpeg_many_scans(&b, 8, 8, 1);
    put("jpeg", "progressive-896-scans-8x8.jpg", &b);
    gen_webp_lossless(&b, 33, 17);
    put("webp", "lossless33x17.webp", &b);
    gen_webp_vp8x(&b, 8, 8, 8, 8);
    put("webp", "vp8x8x8.webp", &b);
    gen_webp_vp8_head(&b, 64, 64);
    put("webp", "vp8-head.webp", &b);
    gen_webp_anim(&b, 4, 4, 3);
    put("webp", "anim3.webp", &b);
    gen_tiff_gray(&b, 31, 9, 5, 0, 0, 0);
    put("tiff", "gray31x9.tif", &b);
    gen_tiff_gray(&b, 16, 16, 5, 1, 3, 0);
    put("tiff", "deflate16.tif", &b);
    gen_tiff_pages(&b, 3, 0);
    put("tiff", "pages3.tif", &b);
    gen_gif(&b, 29, 11, 29, 11, 1);
    put("gif", "const29x11.gif", &b);
    gen_gif(&b, 4, 4, 4, 4, 3);
    put("gif", "frames3.gif", &b);
    gen_bmp24(&b, 13, 7, 9);
    put("bmp", "rgb13x7.bmp", &b);
    gen_bmp_rle8_bomb(&b, 16, 16);
    put("bmp", "rle8.bmp", &b);
    gen_pnm(&b, 6, 11, 5, 200);
    put("pnm", "rgb11x5.ppm", &b);
    gen_pnm(&b, 5, 7, 3, 100);
    put("pnm", "gray7x3.pgm", &b);
    gen_pbm(&b, 17, 3);
    put("pnm", "bits17x3.pbm", &b);
    return 0;
}
