/* SPDX-License-Identifier: MIT */
/* .npy files of 8-bit images for the tests' helper programs; see npy.h. */
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int npy_read(const char *path, dip_image **out)
{
    FILE *f = fopen(path, "rb");
    unsigned char pre[10];
    char hdr[4096];
    unsigned hlen;
    long dims[3] = {0, 0, 1};
    int nd = 0, rc = 1;
    const char *p;
    dip_image *img = NULL;
    struct dip_view v;

    if (f == NULL || fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1)
        goto out;
    hlen = (unsigned)pre[8] | (unsigned)pre[9] << 8;
    if (hlen >= sizeof(hdr) || fread(hdr, 1, hlen, f) != hlen)
        goto out;
    hdr[hlen] = '\0';
    if (strstr(hdr, "'|u1'") == NULL || strstr(hdr, "'fortran_order': False") == NULL)
        goto out;
    p = strchr(strstr(hdr, "'shape'"), '(');
    while (p && *p && *p != ')' && nd < 3) {
        char *end;
        p++;
        while (*p == ' ')
            p++;
        if (*p == ')')
            break;
        dims[nd++] = strtol(p, &end, 10);
        p = end;
        while (*p == ' ')
            p++;
    }
    if (nd < 2 || dims[2] < 1 || dims[2] > 4)
        goto out;
    if (dip_image_new((int)dims[1], (int)dims[0], (int)dims[2], &img))
        goto out;
    v = dip_image_view(img);
    for (int y = 0; y < v.height; y++)
        if (fread(v.data + (size_t)y * v.stride, 1, (size_t)v.width * (size_t)v.channels, f) !=
            (size_t)v.width * (size_t)v.channels)
            goto out;
    *out = img;
    img = NULL;
    rc = 0;
out:
    dip_image_unref(img);
    if (f)
        fclose(f);
    return rc;
}

int npy_write(const char *path, const dip_image *img)
{
    FILE *f = fopen(path, "wb");
    struct dip_view v = dip_image_view(img);
    char hdr[256];
    int n, bad = 0;

    if (f == NULL)
        return 1;
    if (v.channels == 1)
        n = snprintf(hdr, sizeof(hdr),
                     "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d), }", v.height,
                     v.width);
    else
        n = snprintf(hdr, sizeof(hdr),
                     "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d, %d), }", v.height,
                     v.width, v.channels);
    while ((10 + n + 1) % 64 != 0)
        hdr[n++] = ' ';
    hdr[n++] = '\n';
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(n & 0xff, f);
    fputc(n >> 8, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int y = 0; y < v.height; y++)
        if (fwrite(v.data + (size_t)y * v.stride, 1, (size_t)v.width * (size_t)v.channels, f) !=
            (size_t)v.width * (size_t)v.channels)
            bad = 1;
    return (fclose(f) != 0) | bad;
}
