/* SPDX-License-Identifier: MIT */
/* Colour and tone point operations: linear (scale and offset), brightness, gray, threshold and an
 * HSV adjustment, each matching OpenCV's 8-bit arithmetic (fixed-point luma, OpenCV's integer
 * RGB->HSV and float HSV->RGB). Every output pixel depends only on the same input pixel, so any
 * tiling gives the same bytes. Alpha is passed through unchanged. Also the row helpers shared with
 * the statistic operations (stats.c). */
#include <math.h>
#include <string.h>

#include "pixel.h"

/* ---- Shared row helpers ---- */

DIP_HOT void dip__lut_row(const uint8_t *s, uint8_t *d, int w, int ch, const uint8_t *lut)
{
    size_t n = (size_t)w;

    switch (ch) {
    case 2:
        for (size_t i = 0; i < n; i++) {
            uint8_t a = s[2 * i + 1];
            d[2 * i] = lut[s[2 * i]];
            d[2 * i + 1] = a;
        }
        break;
    case 4:
        for (size_t i = 0; i < n; i++) {
            uint8_t r = s[4 * i], g = s[4 * i + 1], b = s[4 * i + 2], a = s[4 * i + 3];
            d[4 * i] = lut[r];
            d[4 * i + 1] = lut[g];
            d[4 * i + 2] = lut[b];
            d[4 * i + 3] = a;
        }
        break;
    default:
        n *= (size_t)ch;
        /* Four at a time: independent loads keep the lookups in flight. */
        size_t i = 0;
        for (; i + 4 <= n; i += 4) {
            uint8_t a = lut[s[i]], b = lut[s[i + 1]], c = lut[s[i + 2]], e = lut[s[i + 3]];
            d[i] = a;
            d[i + 1] = b;
            d[i + 2] = c;
            d[i + 3] = e;
        }
        for (; i < n; i++)
            d[i] = lut[s[i]];
        break;
    }
}

DIP_HOT void dip__gray_row(const uint8_t *s, uint8_t *g, int w, int ch, int ycc)
{
    size_t n = (size_t)w;

    if (ycc && ch == 3) {
        for (size_t i = 0; i < n; i++)
            g[i] = (uint8_t)dip__luma14(s[3 * i], s[3 * i + 1], s[3 * i + 2]);
    } else if (ycc && ch == 4) {
        for (size_t i = 0; i < n; i++)
            g[i] = (uint8_t)dip__luma14(s[4 * i], s[4 * i + 1], s[4 * i + 2]);
    } else if (ch == 3) {
        for (size_t i = 0; i < n; i++)
            g[i] = (uint8_t)dip__luma(s[3 * i], s[3 * i + 1], s[3 * i + 2]);
    } else if (ch == 4) {
        for (size_t i = 0; i < n; i++)
            g[i] = (uint8_t)dip__luma(s[4 * i], s[4 * i + 1], s[4 * i + 2]);
    } else {
        for (size_t i = 0; i < n; i++)
            g[i] = s[i * (size_t)ch];
    }
}

void dip__gray_hist(const struct dip_view *in, uint64_t hist[256], int ycc)
{
    /* Four sub-histograms so that runs of equal values do not serialise on one counter; 32-bit
     * counters are flushed well before they could overflow. */
    uint32_t h[4][256];
    uint8_t row[1024];
    uint64_t pending = 0;

    memset(h, 0, sizeof(h));
    for (int y = 0; y < in->height; y++) {
        const uint8_t *s = in->data + (size_t)y * in->stride;
        for (int x0 = 0; x0 < in->width; x0 += (int)sizeof(row)) {
            int n = in->width - x0 < (int)sizeof(row) ? in->width - x0 : (int)sizeof(row);
            int i = 0;
            dip__gray_row(s + (size_t)x0 * (size_t)in->channels, row, n, in->channels, ycc);
            for (; i + 4 <= n; i += 4) {
                h[0][row[i]]++;
                h[1][row[i + 1]]++;
                h[2][row[i + 2]]++;
                h[3][row[i + 3]]++;
            }
            for (; i < n; i++)
                h[0][row[i]]++;
            pending += (uint64_t)n;
            if (pending > (1u << 30)) {
                for (int v = 0; v < 256; v++)
                    hist[v] += (uint64_t)h[0][v] + h[1][v] + h[2][v] + h[3][v];
                memset(h, 0, sizeof(h));
                pending = 0;
            }
        }
    }
    for (int v = 0; v < 256; v++)
        hist[v] += (uint64_t)h[0][v] + h[1][v] + h[2][v] + h[3][v];
}

static int gray_out_channels(const void *args, int in_channels)
{
    (void)args;
    return dip__gray_channels(in_channels);
}

/* ---- linear ---- */

struct linear_args {
    double alpha, beta;
    float a, b; /* single precision, as OpenCV's convertScaleAbs */
    uint8_t lut[256];
};

static const struct dip_param linear_params[] = {
    DIP_PARAM_DOUBLE(struct linear_args, alpha, -64, 64, 1.5, "Gain: out = alpha*in + beta"),
    DIP_PARAM_DOUBLE(struct linear_args, beta, -1024, 1024, 0, "Offset added after the gain"),
};

/* The exact per-value formula: single-precision multiply, then add (no fused multiply-add),
 * rounded half to even by the 1.5*2^23 trick (exact for |f| < 2^22, which the ranges ensure),
 * then saturated. The vector loop and the LUT both use it, so they agree bit for bit. */
static inline int linear_value(int v, float a, float b)
{
    float f = (float)v * a + b;
    f = (f + 12582912.0f) - 12582912.0f;
    int i = (int)f;
    return i < 0 ? 0 : i > 255 ? 255 : i;
}

static int linear_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct linear_args *a = args;

    (void)in_channels;
    (void)err;
    a->a = (float)a->alpha;
    a->b = (float)a->beta;
    for (int v = 0; v < 256; v++)
        a->lut[v] = (uint8_t)linear_value(v, a->a, a->b);
    return 0;
}

DIP_HOT static void linear_row(const uint8_t *s, uint8_t *d, size_t n, float a, float b)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)linear_value(s[i], a, b);
}

static int linear_tile(const void *args, const struct dip_tile *t)
{
    const struct linear_args *a = args;
    int ch = t->out.channels;

    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        if (ch == 1 || ch == 3)
            linear_row(s, d, (size_t)t->out.width * (size_t)ch, a->a, a->b);
        else
            dip__lut_row(s, d, t->out.width, ch, a->lut);
    }
    return 0;
}

const struct dip_op dip_op_linear = {
    .name = "linear",
    .version = 1,
    .summary = "Contrast and brightness: out = saturate(round(alpha*in + beta))",
    .doc = "out = saturate(round_half_even(alpha*in + beta)) on the colour channels, computed in "
           "single precision as OpenCV does; alpha (transparency) is passed through. For alpha "
           ">= 0 and beta >= 0 this is cv2.convertScaleAbs(img, alpha=alpha, beta=beta) "
           "(identical for beta = 0; at most 1 level apart otherwise, where OpenCV's AVX2 path "
           "fuses the multiply-add). Negative results saturate to 0 (OpenCV's convertTo), "
           "where convertScaleAbs would take the absolute value.",
    .kind = DIP_OP_POINT,
    .args_size = sizeof(struct linear_args),
    .params = linear_params,
    .n_params = DIP_COUNTOF(linear_params),
    .prepare = linear_prepare,
    .tile = linear_tile,
};

/* ---- brightness ---- */

struct brightness_args {
    int delta;
    uint8_t lut[256];
};

static const struct dip_param brightness_params[] = {
    DIP_PARAM_INT(struct brightness_args, delta, -255, 255, 60,
                  "Added to every colour channel (negative darkens), saturating"),
};

static int brightness_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct brightness_args *a = args;

    (void)in_channels;
    (void)err;
    for (int v = 0; v < 256; v++) {
        int o = v + a->delta;
        a->lut[v] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o);
    }
    return 0;
}

DIP_HOT static void brightness_row(const uint8_t *s, uint8_t *d, size_t n, int delta)
{
    for (size_t i = 0; i < n; i++) {
        int o = s[i] + delta;
        d[i] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o);
    }
}

static int brightness_tile(const void *args, const struct dip_tile *t)
{
    const struct brightness_args *a = args;
    int ch = t->out.channels;

    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        if (ch == 1 || ch == 3)
            brightness_row(s, d, (size_t)t->out.width * (size_t)ch, a->delta);
        else
            dip__lut_row(s, d, t->out.width, ch, a->lut);
    }
    return 0;
}

const struct dip_op dip_op_brightness = {
    .name = "brightness",
    .version = 1,
    .summary = "Add a constant to every colour channel, saturating",
    .doc = "out = clip(in + delta, 0, 255) on the colour channels; alpha is passed through. Same "
           "as numpy np.clip(img.astype(int) + delta, 0, 255) and cv2.add(img, delta) with "
           "saturation (identical).",
    .kind = DIP_OP_POINT,
    .args_size = sizeof(struct brightness_args),
    .params = brightness_params,
    .n_params = DIP_COUNTOF(brightness_params),
    .prepare = brightness_prepare,
    .tile = brightness_tile,
};

/* ---- gray ---- */

DIP_HOT static void gray_row3(const uint8_t *s, uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)dip__luma(s[3 * i], s[3 * i + 1], s[3 * i + 2]);
}

DIP_HOT static void gray_row4(const uint8_t *s, uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t a = s[4 * i + 3];
        uint8_t g = (uint8_t)dip__luma(s[4 * i], s[4 * i + 1], s[4 * i + 2]);
        d[2 * i] = g;
        d[2 * i + 1] = a;
    }
}

static int gray_tile(const void *args, const struct dip_tile *t)
{
    int ch = t->in.channels;
    size_t n = (size_t)t->out.width;

    (void)args;
    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        if (ch == 3)
            gray_row3(s, d, n);
        else if (ch == 4)
            gray_row4(s, d, n);
        else if (s != d)
            memmove(d, s, n * (size_t)ch);
    }
    return 0;
}

const struct dip_op dip_op_gray = {
    .name = "gray",
    .version = 1,
    .summary = "RGB to gray (BT.601 luma, OpenCV's fixed point); RGBA gives gray+alpha",
    .doc = "gray = (9798*R + 19235*G + 3735*B + 16384) >> 15, OpenCV's 15-bit fixed-point "
           "BT.601 weights: identical to cv2.cvtColor(img, cv2.COLOR_RGB2GRAY). RGB gives 1 channel; "
           "RGBA gives 2 channels (gray, alpha unchanged), where OpenCV's RGBA2GRAY drops alpha; "
           "gray and gray+alpha pass through unchanged.",
    .kind = DIP_OP_POINT,
    .args_size = 1,
    .out_channels = gray_out_channels,
    .tile = gray_tile,
};

/* ---- threshold (and the map of otsu) ---- */

struct threshold_args {
    int t;
    int max;
    int invert;
};

static const struct dip_param threshold_params[] = {
    DIP_PARAM_INT(struct threshold_args, t, 0, 255, 127, "Threshold: gray > t gives max"),
    DIP_PARAM_INT(struct threshold_args, max, 0, 255, 255, "Value of pixels above the threshold"),
    DIP_PARAM_BOOL(struct threshold_args, invert, 0, "THRESH_BINARY_INV: above gives 0"),
};

DIP_HOT static void thresh_row1(const uint8_t *s, uint8_t *d, size_t n, int t, uint8_t hi,
                                uint8_t lo)
{
    for (size_t i = 0; i < n; i++)
        d[i] = s[i] > t ? hi : lo;
}

DIP_HOT static void thresh_row2(const uint8_t *s, uint8_t *d, size_t n, int t, uint8_t hi,
                                uint8_t lo)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t g = s[2 * i], a = s[2 * i + 1];
        d[2 * i] = g > t ? hi : lo;
        d[2 * i + 1] = a;
    }
}

DIP_HOT static void thresh_row3(const uint8_t *s, uint8_t *d, size_t n, int t, uint8_t hi,
                                uint8_t lo)
{
    for (size_t i = 0; i < n; i++)
        d[i] = dip__luma(s[3 * i], s[3 * i + 1], s[3 * i + 2]) > t ? hi : lo;
}

DIP_HOT static void thresh_row4(const uint8_t *s, uint8_t *d, size_t n, int t, uint8_t hi,
                                uint8_t lo)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t a = s[4 * i + 3];
        d[2 * i] = dip__luma(s[4 * i], s[4 * i + 1], s[4 * i + 2]) > t ? hi : lo;
        d[2 * i + 1] = a;
    }
}

/* Shared with otsu (stats.c): binary threshold of the gray value at `t`. */
void dip__threshold_view(const struct dip_view *in, const struct dip_view *out, int t, int max,
                         int invert);
void dip__threshold_view(const struct dip_view *in, const struct dip_view *out, int t, int max,
                         int invert)
{
    uint8_t hi = (uint8_t)(invert ? 0 : max), lo = (uint8_t)(invert ? max : 0);
    size_t n = (size_t)out->width;

    for (int y = 0; y < out->height; y++) {
        const uint8_t *s = in->data + (size_t)y * in->stride;
        uint8_t *d = out->data + (size_t)y * out->stride;
        switch (in->channels) {
        case 1:
            thresh_row1(s, d, n, t, hi, lo);
            break;
        case 2:
            thresh_row2(s, d, n, t, hi, lo);
            break;
        case 3:
            thresh_row3(s, d, n, t, hi, lo);
            break;
        default:
            thresh_row4(s, d, n, t, hi, lo);
            break;
        }
    }
}

static int threshold_tile(const void *args, const struct dip_tile *t)
{
    const struct threshold_args *a = args;

    dip__threshold_view(&t->in, &t->out, a->t, a->max, a->invert);
    return 0;
}

const struct dip_op dip_op_threshold = {
    .name = "threshold",
    .version = 1,
    .summary = "Binary threshold of the gray value: gray > t ? max : 0",
    .doc = "out = gray > t ? max : 0 (invert=true: gray > t ? 0 : max), where gray is the "
           "fixed-point luma of op gray (colour is converted first; alpha is kept, so RGBA gives "
           "gray+alpha). Identical to cv2.threshold(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), t, "
           "max, cv2.THRESH_BINARY or THRESH_BINARY_INV).",
    .kind = DIP_OP_POINT,
    .args_size = sizeof(struct threshold_args),
    .params = threshold_params,
    .n_params = DIP_COUNTOF(threshold_params),
    .out_channels = gray_out_channels,
    .tile = threshold_tile,
};

/* ---- hsv ---- */

struct hsv_args {
    int h, s, v;
    int sdiv[256];  /* OpenCV's RGB2HSV_b tables: round((255 << 12) / i) */
    int hdiv[256];  /* round((180 << 12) / (6 i)) */
    uint8_t vlut[256]; /* v shift, saturating (also the whole op on gray input) */
};

static const struct dip_param hsv_params[] = {
    DIP_PARAM_INT(struct hsv_args, h, -180, 180, 0,
                  "Hue shift in OpenCV units (0..180 = 0..360 degrees), wrapping around"),
    DIP_PARAM_INT(struct hsv_args, s, -255, 255, 0, "Saturation shift, saturating at 0 and 255"),
    DIP_PARAM_INT(struct hsv_args, v, -255, 255, 50, "Value shift, saturating at 0 and 255"),
};

static int hsv_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct hsv_args *a = args;

    (void)in_channels;
    (void)err;
    a->sdiv[0] = a->hdiv[0] = 0;
    for (int i = 1; i < 256; i++) {
        a->sdiv[i] = (int)lrint((255 << 12) / (1. * i));
        a->hdiv[i] = (int)lrint((180 << 12) / (6. * i));
    }
    for (int i = 0; i < 256; i++) {
        int o = i + a->v;
        a->vlut[i] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o);
    }
    return 0;
}

static inline int sat8(int x)
{
    return x < 0 ? 0 : x > 255 ? 255 : x;
}

/* float -> uint8 by truncation, as OpenCV's vector HSV2RGB_b (v_trunc, then saturating packs). */
static inline uint8_t trunc_u8(float f)
{
    f = f < 0.0f ? 0.0f : f;
    f = f > 255.0f ? 255.0f : f;
    return (uint8_t)(int)f;
}

DIP_HOT static void hsv_row(const uint8_t *src, uint8_t *dst, size_t n, int ch,
                            const struct hsv_args *a)
{
    const float hscale = 6.0f / 180.0f, k255 = 1.0f / 255.0f;

    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = src + i * (size_t)ch;
        uint8_t *q = dst + i * (size_t)ch;
        int r = p[0], g = p[1], b = p[2];
        int v = r > g ? r : g, vmin = r < g ? r : g;
        v = v > b ? v : b;
        vmin = vmin < b ? vmin : b;
        int diff = v - vmin;
        int vr = v == r ? -1 : 0, vg = v == g ? -1 : 0;
        /* OpenCV RGB2HSV_b, hue range 180. */
        int s = (diff * a->sdiv[v] + (1 << 11)) >> 12;
        int h = (vr & (g - b)) + (~vr & ((vg & (b - r + 2 * diff)) + (~vg & (r - g + 4 * diff))));
        h = (h * a->hdiv[diff] + (1 << 11)) >> 12;
        h += h < 0 ? 180 : 0;
        /* The adjustment: hue wraps, saturation and value saturate. */
        h = (h + a->h + 360) % 180;
        s = sat8(s + a->s);
        v = sat8(v + a->v);
        /* OpenCV HSV2RGB_b's vector path: float, sector by truncation, 8 bits by truncation. */
        float fh = (float)h * hscale, fs = (float)s * k255, fv = (float)v * k255;
        float sector = (float)(int)fh;
        fh = fh - sector;
        float t0 = fv, t1 = fv * (1.0f - fs), t2 = fv * (1.0f - fs * fh);
        float t3 = fv * (1.0f - fs * (1.0f - fh));
        int sec = (int)sector;
        float rr = sec == 0 || sec == 5 ? t0 : sec == 1 ? t2 : sec == 4 ? t3 : t1;
        float gg = sec == 1 || sec == 2 ? t0 : sec == 0 ? t3 : sec == 3 ? t2 : t1;
        float bb = sec == 3 || sec == 4 ? t0 : sec == 2 ? t3 : sec == 5 ? t2 : t1;
        uint8_t ro = trunc_u8(rr * 255.0f), go = trunc_u8(gg * 255.0f), bo = trunc_u8(bb * 255.0f);
        uint8_t alpha = ch == 4 ? p[3] : 0;
        q[0] = ro;
        q[1] = go;
        q[2] = bo;
        if (ch == 4)
            q[3] = alpha;
    }
}

static int hsv_tile(const void *args, const struct dip_tile *t)
{
    const struct hsv_args *a = args;
    int ch = t->out.channels;

    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        if (ch >= 3)
            hsv_row(s, d, (size_t)t->out.width, ch, a);
        else
            dip__lut_row(s, d, t->out.width, ch, a->vlut);
    }
    return 0;
}

const struct dip_op dip_op_hsv = {
    .name = "hsv",
    .version = 1,
    .summary = "Shift hue (wrapping), saturation and value (saturating) in OpenCV's HSV",
    .doc = "Converts each pixel to HSV exactly as cv2.cvtColor(img, cv2.COLOR_RGB2HSV) (8-bit: "
           "H in 0..179, i.e. degrees/2; S, V in 0..255), then H = (H + h) mod 180, "
           "S = clip(S + s), V = clip(V + v), and converts back as cv2.COLOR_HSV2RGB (float, "
           "truncated as OpenCV's vector path does). At most 1 level apart from that OpenCV "
           "composition (OpenCV's scalar tail of each row rounds instead). Alpha is passed through. Gray input has no "
           "hue or saturation: only v applies and the output stays gray.",
    .kind = DIP_OP_POINT,
    .args_size = sizeof(struct hsv_args),
    .params = hsv_params,
    .n_params = DIP_COUNTOF(hsv_params),
    .prepare = hsv_prepare,
    .tile = hsv_tile,
};
