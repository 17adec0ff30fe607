/* SPDX-License-Identifier: MIT */
/* dip's OpenCL kernels: ports of src/ops' CPU arithmetic, operation by operation, so that a device
 * gives the same bytes as the CPU path. Images are packed 8-bit rows (width * channels bytes).
 * Each kernel computes whole images; borders are read through bidx(), the planner's
 * border_index(), so the result equals the CPU's for any tiling. Integer ops stay integer;
 * the few float ops (hsv, bilateral) use the same operations in the same order, with contraction
 * off and correctly rounded division (the host builds with -cl-fp32-correctly-rounded-divide-sqrt).
 * Embedded in the binary at build time (tools: src/exec/opencl/embed.cmake). */
#pragma OPENCL FP_CONTRACT OFF

/* OpenCV's borderInterpolate: edge 0 reflect-101, 1 replicate. */
static int bidx(int p, int len, int edge)
{
    if (p >= 0 && p < len)
        return p;
    if (edge == 1)
        return p < 0 ? 0 : len - 1;
    if (len == 1)
        return 0;
    do {
        if (p < 0)
            p = -p;
        else
            p = 2 * (len - 1) - p;
    } while (p < 0 || p >= len);
    return p;
}

static int luma15(int r, int g, int b)
{
    return (r * 9798 + g * 19235 + b * 3735 + (1 << 14)) >> 15;
}

static int luma14(int r, int g, int b)
{
    return (r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14;
}

/* ---- point ops ---- */

/* Per-channel table: dst[i] = lut[(i % ch) * 256 + src[i]] over every byte. */
__kernel void lut_ch(__global const uchar *src, __global uchar *dst, __constant uchar *lut,
                     int ch, int n)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    dst[i] = lut[(i % ch) * 256 + src[i]];
}

/* Gray-valued ops: out = lut[gray], gray = luma15 of RGB or channel 0; alpha (ch 2, 4) kept. */
__kernel void gray_lut(__global const uchar *src, __global uchar *dst, __constant uchar *lut,
                       int ch, int npix)
{
    int i = get_global_id(0);
    if (i >= npix)
        return;
    __global const uchar *p = src + i * ch;
    int g = ch >= 3 ? luma15(p[0], p[1], p[2]) : p[0];
    int och = ch == 3 ? 1 : ch == 4 ? 2 : ch;
    dst[i * och] = lut[g];
    if (och == 2)
        dst[i * 2 + 1] = p[ch - 1];
}

/* equalize on colour: OpenCV's integer YCrCb, Y replaced by lut[Y], back to RGB (stats.c). */
__kernel void ycc_lut(__global const uchar *src, __global uchar *dst, __constant uchar *lut,
                      int ch, int npix)
{
    const int h128 = 128 << 14, rnd = 1 << 13;
    int i = get_global_id(0);
    if (i >= npix)
        return;
    __global const uchar *p = src + i * ch;
    __global uchar *q = dst + i * ch;
    int r = p[0], g = p[1], b = p[2];
    int y = luma14(r, g, b);
    int cr = ((r - y) * 11682 + h128 + rnd) >> 14;
    int cb = ((b - y) * 9241 + h128 + rnd) >> 14;
    cr = clamp(cr, 0, 255);
    cb = clamp(cb, 0, 255);
    int ny = lut[y];
    int ro = ny + (((cr - 128) * 22987 + rnd) >> 14);
    int go = ny + (((cb - 128) * -5636 + (cr - 128) * -11698 + rnd) >> 14);
    int bo = ny + (((cb - 128) * 29049 + rnd) >> 14);
    uchar alpha = p[ch - 1];
    q[0] = (uchar)clamp(ro, 0, 255);
    q[1] = (uchar)clamp(go, 0, 255);
    q[2] = (uchar)clamp(bo, 0, 255);
    if (ch == 4)
        q[3] = alpha;
}

static uchar trunc_u8(float f)
{
    int i = (int)f;
    return (uchar)(i < 0 ? 0 : i > 255 ? 255 : i);
}

/* hsv on RGB(A): color.c's hsv_px. */
__kernel void hsv(__global const uchar *src, __global uchar *dst, __constant int *sdiv,
                  __constant int *hdiv, int ch, int npix, int dh, int ds, int dv)
{
    const float hscale = 6.0f / 180.0f, k255 = 1.0f / 255.0f;
    int i = get_global_id(0);
    if (i >= npix)
        return;
    __global const uchar *p = src + i * ch;
    __global uchar *q = dst + i * ch;
    int r = p[0], g = p[1], b = p[2];
    int v = max(max(r, g), b), vmin = min(min(r, g), b);
    int diff = v - vmin;
    int vr = v == r ? -1 : 0, vg = v == g ? -1 : 0;
    int s = (diff * sdiv[v] + (1 << 11)) >> 12;
    int h = (vr & (g - b)) + (~vr & ((vg & (b - r + 2 * diff)) + (~vg & (r - g + 4 * diff))));
    h = (h * hdiv[diff] + (1 << 11)) >> 12;
    h += h < 0 ? 180 : 0;
    h = (h + dh + 360) % 180;
    s = clamp(s + ds, 0, 255);
    v = clamp(v + dv, 0, 255);
    float fh = (float)h * hscale, fs = (float)s * k255, fv = (float)v * k255;
    int sec = (int)fh;
    fh = fh - (float)sec;
    float t0 = fv, t1 = fv * (1.0f - fs), t2 = fv * (1.0f - fs * fh);
    float t3 = fv * (1.0f - fs * (1.0f - fh));
    float rr = (sec == 0 || sec == 5) ? t0 : sec == 1 ? t2 : sec == 4 ? t3 : t1;
    float gg = (sec == 1 || sec == 2) ? t0 : sec == 0 ? t3 : sec == 3 ? t2 : t1;
    float bb = (sec == 3 || sec == 4) ? t0 : sec == 2 ? t3 : sec == 5 ? t2 : t1;
    uchar alpha = p[ch - 1];
    q[0] = trunc_u8(rr * 255.0f);
    q[1] = trunc_u8(gg * 255.0f);
    q[2] = trunc_u8(bb * 255.0f);
    if (ch == 4)
        q[3] = alpha;
}

/* ---- separable integer stencils: box, gaussian, sharpen ---- */

/* Vertical pass: v[y][i] = sum_j wt[j] src[bidx(y - r + j)][i] over the w * ch values of a row. */
__kernel void vsum(__global const uchar *src, __global uint *v, __constant int *wt, int k, int w,
                   int h, int ch, int edge)
{
    int i = get_global_id(0), y = get_global_id(1);
    int n = w * ch, r = k / 2;
    if (i >= n || y >= h)
        return;
    uint s = 0;
    for (int j = 0; j < k; j++)
        s += (uint)wt[j] * src[bidx(y - r + j, h, edge) * n + i];
    v[y * n + i] = s;
}

/* Horizontal pass. mode 0: gaussian, (sum wt v + 2^15) >> 16; mode 1: box, (sum + area/2) / area;
 * mode 2: sharpen, the gaussian then blur.c's sharpen_mix with the centre pixel. */
__kernel void hsum(__global const uint *v, __global const uchar *src, __global uchar *dst,
                   __constant int *wt, int k, int w, int h, int ch, int edge, int mode, int area,
                   int amount_q, int thr)
{
    int x = get_global_id(0), y = get_global_id(1);
    int r = k / 2, n = w * ch;
    if (x >= w || y >= h)
        return;
    for (int c = 0; c < ch; c++) {
        uint s = 0;
        for (int j = 0; j < k; j++)
            s += (uint)wt[j] * v[y * n + bidx(x - r + j, w, edge) * ch + c];
        int o = y * n + x * ch + c;
        if (mode == 1) {
            dst[o] = (uchar)((s + (uint)area / 2) / (uint)area);
        } else if (mode == 0) {
            dst[o] = (uchar)((s + 32768u) >> 16);
        } else {
            uchar in = src[o], d = (uchar)((s + 32768u) >> 16);
            short diff = (short)(in - d);
            short a = (short)(diff * 128);
            short add = (short)(((int)a * (short)amount_q + 16384) >> 15);
            short val = (short)(in + add);
            short ad = diff < 0 ? (short)-diff : diff;
            val = val < 0 ? 0 : val > 255 ? 255 : val;
            dst[o] = (uchar)(ad >= (short)thr ? val : in);
        }
    }
}

/* ---- sobel ---- */

/* Gray plane for sobel (edge.c's gray_row): luma15 of RGB, channel 0 otherwise. */
__kernel void gray_plane(__global const uchar *src, __global uchar *g, int ch, int npix)
{
    int i = get_global_id(0);
    if (i >= npix)
        return;
    __global const uchar *p = src + i * ch;
    g[i] = ch >= 3 ? (uchar)luma15(p[0], p[1], p[2]) : p[0];
}

/* min(255, |dx| + |dy|) with the k-tap smoothing `sm` and derivative `dv` (exact integers). */
__kernel void sobel(__global const uchar *g, __global uchar *dst, __constant int *sm,
                    __constant int *dv, int k, int w, int h)
{
    int x = get_global_id(0), y = get_global_id(1);
    int r = k / 2;
    if (x >= w || y >= h)
        return;
    int gx = 0, gy = 0;
    for (int j = 0; j < k; j++) {
        int xx = bidx(x - r + j, w, 0), vs = 0, vd = 0;
        for (int i = 0; i < k; i++) {
            int p = g[bidx(y - r + i, h, 0) * w + xx];
            vs += sm[i] * p;
            vd += dv[i] * p;
        }
        gx += dv[j] * vs;
        gy += sm[j] * vd;
    }
    int mag = abs(gx) + abs(gy);
    dst[y * w + x] = (uchar)(mag > 255 ? 255 : mag);
}

/* ---- median ---- */

/* The median of the k x k window per channel (replicate border): the smallest v with more than
 * k*k/2 window values <= v, found by bisection over 0..255 (exact, like any median). */
__kernel void median(__global const uchar *src, __global uchar *dst, int k, int w, int h, int ch)
{
    int x = get_global_id(0), y = get_global_id(1);
    int r = k / 2, hk = k * k / 2, n = w * ch;
    if (x >= w || y >= h)
        return;
    for (int c = 0; c < ch; c++) {
        int lo = 0, hi = 255;
        while (lo < hi) {
            int mid = (lo + hi) >> 1, cnt = 0;
            for (int i = 0; i < k; i++) {
                __global const uchar *row = src + bidx(y - r + i, h, 1) * n + c;
                for (int j = 0; j < k; j++)
                    cnt += row[bidx(x - r + j, w, 1) * ch] <= mid;
            }
            if (cnt > hk)
                hi = mid;
            else
                lo = mid + 1;
        }
        dst[y * n + x * ch + c] = (uchar)lo;
    }
}

/* ---- bilateral ---- */

static uchar round_u8(float v)
{
    float t = v + 12582912.0f;
    return (uchar)(int)(t - 12582912.0f);
}

/* blur.c's bilateral: taps in OpenCV's order, weights sw * cw[sum |diff|], float sums tap by tap,
 * sum / wsum on gray (and gray+alpha), sum * (1 / wsum) on colour. */
__kernel void bilateral(__global const uchar *src, __global uchar *dst, __global const int *tdx,
                        __global const int *tdy, __global const float *tw,
                        __global const float *cw, int ntaps, int w, int h, int ch)
{
    int x = get_global_id(0), y = get_global_id(1);
    int n = w * ch, cc = ch >= 3 ? 3 : 1;
    if (x >= w || y >= h)
        return;
    __global const uchar *ctr = src + y * n + x * ch;
    float wsum = 0.0f, sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int t = 0; t < ntaps; t++) {
        __global const uchar *p =
            src + bidx(y + tdy[t], h, 0) * n + bidx(x + tdx[t], w, 0) * ch;
        int idx = abs(p[0] - ctr[0]);
        if (cc == 3)
            idx += abs(p[1] - ctr[1]) + abs(p[2] - ctr[2]);
        float wt = tw[t] * cw[idx];
        wsum = wsum + wt;
        for (int c = 0; c < ch; c++)
            sum[c] = sum[c] + (float)p[c] * wt;
    }
    if (cc == 1) {
        for (int c = 0; c < ch; c++)
            dst[y * n + x * ch + c] = round_u8(sum[c] / wsum);
    } else {
        float inv = 1.0f / wsum;
        for (int c = 0; c < ch; c++)
            dst[y * n + x * ch + c] = round_u8(sum[c] * inv);
    }
}

/* ---- statistics: 256-bin histograms for otsu, equalize and stretch ---- */

/* mode 0: gray (luma15 of RGB, channel 0 otherwise); 1: luma14 likewise; 2: every colour value
 * (all bytes of gray and RGB, channel 0 of gray+alpha, R, G, B of RGBA). Counts per work-group
 * in local memory, then added to the global counts. */
__kernel void hist(__global const uchar *src, __global uint *out, int ch, int npix, int mode)
{
    __local uint lh[256];
    int l = get_local_id(0), ls = get_local_size(0);
    for (int b = l; b < 256; b += ls)
        lh[b] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = get_global_id(0); i < npix; i += get_global_size(0)) {
        __global const uchar *p = src + i * ch;
        if (mode == 2) {
            int nc = ch == 2 ? 1 : ch == 4 ? 3 : ch;
            for (int c = 0; c < nc; c++)
                atomic_inc(&lh[p[c]]);
        } else {
            int g = ch < 3 ? p[0] : mode == 0 ? luma15(p[0], p[1], p[2]) : luma14(p[0], p[1], p[2]);
            atomic_inc(&lh[g]);
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int b = l; b < 256; b += ls)
        if (lh[b])
            atomic_add(&out[b], lh[b]);
}

/* ---- geometry: crop, flip, rotate (pixel moves) ---- */

/* out(x, y) = in(ax x + bx y + cx, ay x + by y + cy): geometry.c's qmap, derived on the host from
 * the op's own need(). */
__kernel void qmap(__global const uchar *src, __global uchar *dst, int iw, int ow, int oh, int ch,
                   int ax, int bx, int cx, int ay, int by, int cy)
{
    int x = get_global_id(0), y = get_global_id(1);
    if (x >= ow || y >= oh)
        return;
    int ix = ax * x + bx * y + cx, iy = ay * x + by * y + cy;
    for (int c = 0; c < ch; c++)
        dst[(y * ow + x) * ch + c] = src[(iy * iw + ix) * ch + c];
}

/* ---- canny's tiled pass: gradient, then non-maximum suppression (edge.c) ---- */

/* 3x3 Sobel of every channel with replicated borders; the channel of largest |dx| + |dy|, ties
 * to B, then G, then R (as OpenCV on BGR); channel 0 for gray and gray+alpha. */
__kernel void canny_grad(__global const uchar *src, __global int *gdx, __global int *gdy,
                         __global int *gmag, int w, int h, int ch)
{
    int x = get_global_id(0), y = get_global_id(1);
    if (x >= w || y >= h)
        return;
    int n = w * ch, ya = bidx(y - 1, h, 1) * n, yb = y * n, yc = bidx(y + 1, h, 1) * n;
    int xl = bidx(x - 1, w, 1) * ch, xm = x * ch, xr = bidx(x + 1, w, 1) * ch;
    int nc = ch >= 3 ? 3 : 1, bm = -1, bx = 0, by = 0;
    for (int c = nc - 1; c >= 0; c--) {
        int vsl = src[ya + xl + c] + 2 * src[yb + xl + c] + src[yc + xl + c];
        int vsr = src[ya + xr + c] + 2 * src[yb + xr + c] + src[yc + xr + c];
        int vdl = src[yc + xl + c] - src[ya + xl + c];
        int vdm = src[yc + xm + c] - src[ya + xm + c];
        int vdr = src[yc + xr + c] - src[ya + xr + c];
        int ex = vsr - vsl, ey = vdl + 2 * vdm + vdr, m = abs(ex) + abs(ey);
        if (m > bm) {
            bm = m;
            bx = ex;
            by = ey;
        }
    }
    gdx[y * w + x] = bx;
    gdy[y * w + x] = by;
    gmag[y * w + x] = bm;
}

static int cmag(__global const int *gmag, int x, int y, int w, int h)
{
    return x < 0 || y < 0 || x >= w || y >= h ? 0 : gmag[y * w + x];
}

/* OpenCV's suppression: direction from tan(22.5) in 15-bit fixed point, strict > on one side,
 * >= on the other; magnitude 0 outside the image. 255 strong, 128 weak, 0 none. */
__kernel void canny_nms(__global const int *gdx, __global const int *gdy,
                        __global const int *gmag, __global uchar *dst, int w, int h, int low,
                        int high)
{
    int x = get_global_id(0), y = get_global_id(1);
    if (x >= w || y >= h)
        return;
    int m = gmag[y * w + x], keep = 0;
    if (m > low) {
        int xs = gdx[y * w + x], ys = gdy[y * w + x];
        int ax = abs(xs), ay = abs(ys) << 15;
        int tg22x = ax * 13573;
        if (ay < tg22x) {
            keep = m > cmag(gmag, x - 1, y, w, h) && m >= cmag(gmag, x + 1, y, w, h);
        } else {
            int tg67x = tg22x + (ax << 16);
            if (ay > tg67x) {
                keep = m > cmag(gmag, x, y - 1, w, h) && m >= cmag(gmag, x, y + 1, w, h);
            } else {
                int sg = (xs ^ ys) < 0 ? -1 : 1;
                keep = m > cmag(gmag, x - sg, y - 1, w, h) && m > cmag(gmag, x + sg, y + 1, w, h);
            }
        }
    }
    dst[y * w + x] = (uchar)(!keep ? 0 : m > high ? 255 : 128);
}

/* ---- resize: the 2x2 halving and the fixed-point interpolation (geometry.c) ---- */

__kernel void resize_half(__global const uchar *src, __global uchar *dst, int iw, int ow, int oh,
                          int ch)
{
    int x = get_global_id(0), y = get_global_id(1);
    if (x >= ow || y >= oh)
        return;
    __global const uchar *s0 = src + (2 * y * iw + 2 * x) * ch, *s1 = s0 + iw * ch;
    for (int c = 0; c < ch; c++)
        dst[(y * ow + x) * ch + c] =
            (uchar)(((s0[c] + s1[c]) + (s0[ch + c] + s1[ch + c]) + 2) >> 2);
}

/* k = 2 (linear, and area when enlarging) or 4 (cubic) taps per axis from the host's tables
 * (input index, 11-bit weight): horizontal sums in int, then the vertical pass of geometry.c
 * (vpass_linear's 16-bit high products, or vpass_cubic's 22-bit rounding). */
__kernel void resize_interp(__global const uchar *src, __global uchar *dst,
                            __global const int *xofs, __global const short *xw,
                            __global const int *yofs, __global const short *yw, int iw, int ow,
                            int oh, int ch, int k)
{
    int x = get_global_id(0), y = get_global_id(1);
    if (x >= ow || y >= oh)
        return;
    for (int c = 0; c < ch; c++) {
        int rows[4];
        for (int j = 0; j < k; j++) {
            __global const uchar *s = src + yofs[y * 4 + j] * iw * ch + c;
            int sum = 0;
            for (int i = 0; i < k; i++)
                sum += s[xofs[x * 4 + i] * ch] * xw[x * 4 + i];
            rows[j] = sum;
        }
        int v;
        if (k == 2) {
            v = (((rows[0] >> 4) * yw[y * 4] >> 16) + ((rows[1] >> 4) * yw[y * 4 + 1] >> 16) + 2) >>
                2;
        } else {
            int sum = (1 << 21) + rows[0] * yw[y * 4] + rows[1] * yw[y * 4 + 1] +
                      rows[2] * yw[y * 4 + 2] + rows[3] * yw[y * 4 + 3];
            v = sum >> 22;
        }
        dst[(y * ow + x) * ch + c] = (uchar)clamp(v, 0, 255);
    }
}

/* resize with filter=area when shrinking, integer factors: exact block sums, (sum + 2) >> 2 for
 * 2x2, else the single-precision product by 1/area (inv, from the host) rounded half to even. */
__kernel void resize_area_fast(__global const uchar *src, __global uchar *dst, int iw, int ow,
                               int oh, int ch, int fx, int fy, float inv)
{
    int x = get_global_id(0), y = get_global_id(1);
    if (x >= ow || y >= oh)
        return;
    for (int c = 0; c < ch; c++) {
        int sum = 0;
        for (int j = 0; j < fy; j++)
            for (int i = 0; i < fx; i++)
                sum += src[((y * fy + j) * iw + x * fx + i) * ch + c];
        int v = fx * fy == 4 && fx == 2 ? (sum + 2) >> 2 : (int)rint((float)sum * inv);
        dst[(y * ow + x) * ch + c] = (uchar)(v > 255 ? 255 : v);
    }
}

/* resize with filter=area when shrinking, other factors: INTER_AREA's cell weights (host
 * tables, m taps a side at most), summed in single precision in geometry.c's order: the columns
 * of each tap row, then the rows; clamped, rounded half to even. */
__kernel void resize_area(__global const uchar *src, __global uchar *dst, __global const int *xofs,
                          __global const float *xw, __global const int *xn,
                          __global const int *yofs, __global const float *yw,
                          __global const int *yn, int iw, int ow, int oh, int ch, int mx, int my)
{
    int x = get_global_id(0), y = get_global_id(1);
    if (x >= ow || y >= oh)
        return;
    for (int c = 0; c < ch; c++) {
        float acc = 0.0f;
        for (int j = 0; j < yn[y]; j++) {
            __global const uchar *s = src + yofs[y * my + j] * iw * ch + c;
            float sum = 0.0f;
            for (int q = 0; q < xn[x]; q++)
                sum += (float)s[xofs[x * mx + q] * ch] * xw[x * mx + q];
            if (j == 0)
                acc = yw[y * my] * sum;
            else
                acc += yw[y * my + j] * sum;
        }
        float f = acc < 0.0f ? 0.0f : acc > 255.0f ? 255.0f : acc;
        dst[(y * ow + x) * ch + c] = (uchar)(int)rint(f);
    }
}
