/* SPDX-License-Identifier: MIT */
/* 8-bit images with 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) interleaved channels, and
 * views (a rectangle of rows with a stride) into them. Images are reference counted; views are
 * plain borrowed structs valid while the image they point into is alive. Also the library's
 * allocator, which tests can make fail on the Nth call. */
#ifndef DIP_IMAGE_H
#define DIP_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIP_MAX_CHANNELS 4

/** A rectangle: x, y of the top-left pixel, width and height. */
struct dip_rect {
    int x, y, w, h;
};

/** Borrowed pixels: row r starts at data + r * stride; pixel c of a row at c * channels. */
struct dip_view {
    uint8_t *data;
    int width;
    int height;
    int channels;
    size_t stride;
};

typedef struct dip_image dip_image;

/** Allocates a w x h image with `channels` (1..4) channels and uninitialised pixels. The rows are
 * contiguous (stride = w * channels). Returns DIP_EINVAL for bad sizes, DIP_ELIMIT when the byte
 * count overflows, DIP_ENOMEM. The caller owns one reference: release with dip_image_unref(). */
int dip_image_new(int w, int h, int channels, dip_image **out);
/** Adds a reference and returns `img`. Thread-safe. */
dip_image *dip_image_ref(dip_image *img);
/** Drops a reference; frees the image at zero. NULL is a no-op. Thread-safe. */
void dip_image_unref(dip_image *img);

int dip_image_width(const dip_image *img);
int dip_image_height(const dip_image *img);
int dip_image_channels(const dip_image *img);
/** A view of the whole image, valid while the caller holds a reference. */
struct dip_view dip_image_view(const dip_image *img);

/** The sub-view of `v` covering `r` (which must lie inside v; checked in debug builds). */
struct dip_view dip_view_sub(const struct dip_view *v, struct dip_rect r);
/** Copies pixels between two views of equal width, height and channels. */
void dip_view_copy(const struct dip_view *src, const struct dip_view *dst);
/** 1 when two views hold the same pixel values (strides may differ). */
int dip_view_equal(const struct dip_view *a, const struct dip_view *b);
/** Deep copy of an image into a new one. */
int dip_image_copy(const dip_image *src, dip_image **out);

/* ---- Rectangles ---- */
/** Intersection of a and b (w or h 0 when empty). */
struct dip_rect dip_rect_intersect(struct dip_rect a, struct dip_rect b);
/** 1 when `inner` lies entirely inside `outer`. */
int dip_rect_contains(struct dip_rect outer, struct dip_rect inner);

/* ---- Allocation ---- */
/** malloc/calloc/realloc/free used by all of dip, so out-of-memory paths can be tested. */
void *dip_malloc(size_t n);
void *dip_calloc(size_t count, size_t size);
void *dip_realloc(void *p, size_t n);
void dip_free(void *p);
char *dip_strdup(const char *s);
/** Test hook: make the n-th allocation from now (1-based) and every later one fail; 0 disables.
 * Also settable with the environment variable DIP_FAIL_ALLOC=n before the first allocation. */
void dip__alloc_fail_after(long n);
/** Number of allocations made since start (for OOM sweep tests). */
long dip__alloc_count(void);

#ifdef __cplusplus
}
#endif
#endif
