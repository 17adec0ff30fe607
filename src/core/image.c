/* SPDX-License-Identifier: MIT */
/* Reference-counted 8-bit images and the view helpers that ops and codecs use to address pixels. */
#include <stdatomic.h>
#include <string.h>

#include "dip/image.h"
#include "dip/limits.h"
#include "internal.h"

struct dip_image {
    atomic_int refs;
    int width, height, channels;
    size_t stride;
    uint8_t *data;
};

int dip_image_new(int w, int h, int channels, dip_image **out)
{
    dip_image *img = NULL;
    size_t stride, bytes;

    *out = NULL;
    if (w <= 0 || h <= 0 || channels < 1 || channels > DIP_MAX_CHANNELS)
        return DIP_EINVAL;
    if (dip_size_mul((size_t)w, (size_t)channels, &stride) ||
        dip_size_mul(stride, (size_t)h, &bytes))
        return DIP_ELIMIT;
    img = dip_malloc(sizeof(*img));
    if (img == NULL)
        return DIP_ENOMEM;
    img->data = dip__malloc_large(bytes);
    if (img->data == NULL) {
        dip_free(img);
        return DIP_ENOMEM;
    }
    atomic_init(&img->refs, 1);
    img->width = w;
    img->height = h;
    img->channels = channels;
    img->stride = stride;
    *out = img;
    return 0;
}

dip_image *dip_image_ref(dip_image *img)
{
    atomic_fetch_add(&img->refs, 1);
    return img;
}

void dip_image_unref(dip_image *img)
{
    if (img == NULL)
        return;
    if (atomic_fetch_sub(&img->refs, 1) == 1) {
        dip__free_large(img->data, img->stride * (size_t)img->height);
        dip_free(img);
    }
}

int dip_image_width(const dip_image *img)
{
    return img->width;
}

int dip_image_height(const dip_image *img)
{
    return img->height;
}

int dip_image_channels(const dip_image *img)
{
    return img->channels;
}

struct dip_view dip_image_view(const dip_image *img)
{
    return (struct dip_view){img->data, img->width, img->height, img->channels, img->stride};
}

struct dip_view dip_view_sub(const struct dip_view *v, struct dip_rect r)
{
    DIP_ASSERT(r.x >= 0 && r.y >= 0 && r.w >= 0 && r.h >= 0);
    DIP_ASSERT(r.x + r.w <= v->width && r.y + r.h <= v->height);
    return (struct dip_view){v->data + (size_t)r.y * v->stride + (size_t)r.x * (size_t)v->channels,
                             r.w, r.h, v->channels, v->stride};
}

void dip_view_copy(const struct dip_view *src, const struct dip_view *dst)
{
    size_t row = (size_t)src->width * (size_t)src->channels;

    DIP_ASSERT(src->width == dst->width && src->height == dst->height);
    DIP_ASSERT(src->channels == dst->channels);
    for (int y = 0; y < src->height; y++)
        memmove(dst->data + (size_t)y * dst->stride, src->data + (size_t)y * src->stride, row);
}

int dip_view_equal(const struct dip_view *a, const struct dip_view *b)
{
    size_t row = (size_t)a->width * (size_t)a->channels;

    if (a->width != b->width || a->height != b->height || a->channels != b->channels)
        return 0;
    for (int y = 0; y < a->height; y++)
        if (memcmp(a->data + (size_t)y * a->stride, b->data + (size_t)y * b->stride, row) != 0)
            return 0;
    return 1;
}

int dip_image_copy(const dip_image *src, dip_image **out)
{
    dip_image *img = NULL;
    int rc = dip_image_new(src->width, src->height, src->channels, &img);
    struct dip_view s, d;

    if (rc)
        return rc;
    s = dip_image_view(src);
    d = dip_image_view(img);
    dip_view_copy(&s, &d);
    *out = img;
    return 0;
}

struct dip_rect dip_rect_intersect(struct dip_rect a, struct dip_rect b)
{
    int x0 = a.x > b.x ? a.x : b.x;
    int y0 = a.y > b.y ? a.y : b.y;
    int x1 = a.x + a.w < b.x + b.w ? a.x + a.w : b.x + b.w;
    int y1 = a.y + a.h < b.y + b.h ? a.y + a.h : b.y + b.h;

    if (x1 <= x0 || y1 <= y0)
        return (struct dip_rect){x0, y0, 0, 0};
    return (struct dip_rect){x0, y0, x1 - x0, y1 - y0};
}

int dip_rect_contains(struct dip_rect outer, struct dip_rect inner)
{
    return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.w <= outer.x + outer.w &&
           inner.y + inner.h <= outer.y + outer.h;
}
