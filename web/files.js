// SPDX-License-Identifier: MIT
// Inspecting files before upload: the format from the magic bytes (the way the server sniffs
// them), the dimensions from the header alone (no decoding, so a 100-megapixel image costs a few
// bytes), checks against the limits the server announces (GET /api/v1/limits), and small
// thumbnails for the formats the browser can decode. Nothing here is trusted by the server, which
// checks every input again.

/** The server's limits, from GET /api/v1/limits once loaded (setLimits); until then nothing is
 * refused here, since the server's own check is the one that counts. */
export const LIMITS = {
    maxBytes: Infinity,
    maxPixels: Infinity,
    maxWidth: Infinity,
    maxHeight: Infinity,
};

/** Takes the limits from the server's answer to GET /api/v1/limits. */
export function setLimits(server) {
    if (!server) return;
    if (server.max_input_bytes) LIMITS.maxBytes = server.max_input_bytes;
    if (server.max_pixels) LIMITS.maxPixels = server.max_pixels;
    // Each side against its own limit, as the server checks them (the file's stored sides).
    if (server.max_width) LIMITS.maxWidth = server.max_width;
    if (server.max_height) LIMITS.maxHeight = server.max_height;
}

export const FORMAT_NAMES = {
    png: 'PNG', jpeg: 'JPEG', webp: 'WebP', tiff: 'TIFF', gif: 'GIF', bmp: 'BMP', pnm: 'PNM',
};

/** Formats Chromium, Firefox and Safari decode in an <img>. */
export const BROWSER_FORMATS = new Set(['png', 'jpeg', 'webp', 'gif', 'bmp']);

const ascii = (b, off, n) => String.fromCharCode(...b.subarray(off, off + n));

/** The format of the bytes, or null: PNG, JPEG, WebP, TIFF, GIF, BMP, PNM (P1-P7). */
export function sniff(b) {
    if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 3) === 'PNG' && b[4] === 0x0d &&
        b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
    if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
    if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
    if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) ||
                          (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42))) return 'tiff';
    if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'gif';
    if (b.length >= 26 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
    if (b.length >= 3 && b[0] === 0x50 && b[1] >= 0x31 && b[1] <= 0x37 &&
        (b[2] === 0x20 || b[2] === 0x0a || b[2] === 0x0d || b[2] === 0x09)) return 'pnm';
    return null;
}

async function readAt(file, off, len) {
    const buf = await file.slice(off, off + len).arrayBuffer();
    return new Uint8Array(buf);
}

function pnmDims(b) {
    const text = ascii(b, 0, Math.min(b.length, 4096));
    if (text[1] === '7') {
        const w = /^WIDTH\s+(\d+)/m.exec(text), hh = /^HEIGHT\s+(\d+)/m.exec(text);
        return w && hh ? {width: Number(w[1]), height: Number(hh[1])} : null;
    }
    // Tokens after the magic, skipping '#' comments to the end of the line.
    const tokens = [];
    let i = 2;
    while (i < text.length && tokens.length < 2) {
        const ch = text[i];
        if (ch === '#') {
            while (i < text.length && text[i] !== '\n' && text[i] !== '\r') i++;
        } else if (/\s/.test(ch)) {
            i++;
        } else {
            let j = i;
            while (j < text.length && /[0-9]/.test(text[j])) j++;
            if (j === i) return null;
            tokens.push(Number(text.slice(i, j)));
            i = j;
        }
    }
    return tokens.length === 2 ? {width: tokens[0], height: tokens[1]} : null;
}

/** EXIF Orientation (tag 0x0112 in IFD0) from an APP1 payload that starts "Exif\0\0"; 1 when
 * absent or damaged (every offset checked, like the server's src/codec/exif.c). */
function exifOrientation(p) {
    if (p.length < 14 || ascii(p, 0, 4) !== 'Exif' || p[4] !== 0 || p[5] !== 0) return 1;
    const t = 6;
    const le = p[t] === 0x49 && p[t + 1] === 0x49;
    if (!le && !(p[t] === 0x4d && p[t + 1] === 0x4d)) return 1;
    const u16 = (o) => (le ? p[t + o] | (p[t + o + 1] << 8) : (p[t + o] << 8) | p[t + o + 1]);
    const u32 = (o) => (le ? u16(o) + u16(o + 2) * 65536 : u16(o) * 65536 + u16(o + 2));
    const n = p.length - t;
    const ifd = u32(4);
    if (ifd + 2 > n) return 1;
    const count = u16(ifd);
    for (let i = 0; i < count && ifd + 2 + 12 * i + 12 <= n; i++) {
        const e = ifd + 2 + 12 * i;
        if (u16(e) === 0x0112) {
            const v = u16(e + 8);
            return v >= 1 && v <= 8 ? v : 1;
        }
    }
    return 1;
}

async function jpegDims(file) {
    let off = 2;
    let orientation = 1;
    for (let guard = 0; guard < 200 && off < file.size; guard++) {
        const hdr = await readAt(file, off, 10);
        if (hdr.length < 4 || hdr[0] !== 0xff) return null;
        const marker = hdr[1];
        if (marker === 0xff) { off++; continue; } // fill byte
        if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
            off += 2;
            continue;
        }
        const len = (hdr[2] << 8) | hdr[3];
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
            if (hdr.length < 9) return null;
            return {height: (hdr[5] << 8) | hdr[6], width: (hdr[7] << 8) | hdr[8], orientation};
        }
        if (marker === 0xe1 && orientation === 1 && len > 8) {
            orientation = exifOrientation(await readAt(file, off + 4, Math.min(len - 2, 65533)));
        }
        if (marker === 0xda || marker === 0xd9 || len < 2) return null;
        off += 2 + len;
    }
    return null;
}

async function tiffDims(file, b) {
    const le = b[0] === 0x49;
    const u16 = (a, o) => (le ? a[o] | (a[o + 1] << 8) : (a[o] << 8) | a[o + 1]);
    const u32 = (a, o) => (le ? (a[o] | (a[o + 1] << 8) | (a[o + 2] << 16)) + a[o + 3] * 2 ** 24
        : ((a[o + 1] << 16) | (a[o + 2] << 8) | a[o + 3]) + a[o] * 2 ** 24);
    const ifd = u32(b, 4);
    const cnt = await readAt(file, ifd, 2);
    if (cnt.length < 2) return null;
    const n = Math.min(u16(cnt, 0), 512);
    const e = await readAt(file, ifd + 2, n * 12);
    let width = null, height = null;
    for (let i = 0; i + 12 <= e.length; i += 12) {
        const tag = u16(e, i), type = u16(e, i + 2);
        const val = type === 3 ? u16(e, i + 8) : u32(e, i + 8);
        if (tag === 256) width = val;
        if (tag === 257) height = val;
    }
    return width && height ? {width, height} : null;
}

/** Dimensions from the header, or null when the header does not say (or is damaged). */
export async function headerDims(file, fmt, b) {
    const be32 = (o) => b[o] * 2 ** 24 + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
    const le16 = (o) => b[o] | (b[o + 1] << 8);
    const le24 = (o) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);
    const le32s = (o) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
    try {
        switch (fmt) {
        case 'png':
            if (b.length < 24 || ascii(b, 12, 4) !== 'IHDR') return null;
            return {width: be32(16), height: be32(20)};
        case 'gif':
            return b.length >= 10 ? {width: le16(6), height: le16(8)} : null;
        case 'bmp': {
            const dib = le32s(14);
            if (dib === 12) return {width: le16(18), height: le16(20)};
            return b.length >= 26 ? {width: Math.abs(le32s(18)), height: Math.abs(le32s(22))} : null;
        }
        case 'webp': {
            const chunk = ascii(b, 12, 4);
            if (chunk === 'VP8 ' && b.length >= 30) {
                return {width: le16(26) & 0x3fff, height: le16(28) & 0x3fff};
            }
            if (chunk === 'VP8L' && b.length >= 25 && b[20] === 0x2f) {
                const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
                return {width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1};
            }
            if (chunk === 'VP8X' && b.length >= 30) return {width: le24(24) + 1, height: le24(27) + 1};
            return null;
        }
        case 'jpeg':
            return await jpegDims(file);
        case 'tiff':
            return await tiffDims(file, b);
        case 'pnm':
            return pnmDims(b);
        default:
            return null;
        }
    } catch {
        return null;
    }
}

/**
 * Inspects a File: {format, width, height, problems: [text], fatal: bool}. A fatal problem means
 * the server will refuse the file (over a limit, or not an image it reads).
 */
export async function inspect(file, limits = LIMITS) {
    const info = {format: null, width: null, height: null, problems: [], fatal: false};
    if (file.size === 0) {
        info.problems.push('The file is empty.');
        info.fatal = true;
        return info;
    }
    if (file.size > limits.maxBytes) {
        info.problems.push(`Too large: ${(file.size / 2 ** 20).toFixed(0)} MiB is over the ` +
                           `server's limit of ${Math.round(limits.maxBytes / 2 ** 20)} MiB per file.`);
        info.fatal = true;
    }
    const head = await readAt(file, 0, 4096);
    info.format = sniff(head);
    if (!info.format) {
        info.problems.push('Not a PNG, JPEG, WebP, TIFF, GIF, BMP or PNM image (unknown first bytes).');
        info.fatal = true;
        return info;
    }
    const dims = await headerDims(file, info.format, head);
    if (dims && dims.width > 0 && dims.height > 0) {
        // As shown and processed: the server applies the EXIF orientation (5-8 swap the sides).
        const swap = dims.orientation >= 5;
        info.orientation = dims.orientation || 1;
        info.width = swap ? dims.height : dims.width;
        info.height = swap ? dims.width : dims.height;
        if (dims.width > limits.maxWidth || dims.height > limits.maxHeight) {
            info.problems.push(`${dims.width} × ${dims.height} is over the limit of ` +
                               `${limits.maxWidth} × ${limits.maxHeight} pixels.`);
            info.fatal = true;
        } else if (dims.width * dims.height > limits.maxPixels) {
            info.problems.push(`${((dims.width * dims.height) / 1e6).toFixed(1)} megapixels is ` +
                               `over the limit of ${limits.maxPixels / 1e6} megapixels.`);
            info.fatal = true;
        }
    }
    return info;
}

/** A thumbnail canvas for formats the browser decodes, or null. Updates info's dimensions when
 * the header did not give them. */
export async function thumbnail(file, info, size = 240) {
    if (!BROWSER_FORMATS.has(info.format) || typeof createImageBitmap === 'undefined') return null;
    if (info.width && info.height && info.width * info.height > 80e6) return null;
    let bmp = null;
    try {
        // The browser turns the image by its EXIF orientation; resizing to the stored sides
        // would squash a turned photo, so a turned one is decoded whole and scaled below.
        const opts = {imageOrientation: 'from-image'};
        if (info.width && info.height && (info.orientation || 1) === 1) {
            const scale = Math.min(1, size / Math.max(info.width, info.height));
            opts.resizeWidth = Math.max(1, Math.round(info.width * scale));
            opts.resizeHeight = Math.max(1, Math.round(info.height * scale));
            opts.resizeQuality = 'medium';
        }
        bmp = await createImageBitmap(file, opts);
        if (!info.width) {
            info.width = bmp.width;
            info.height = bmp.height;
        }
        const scale = Math.min(1, size / Math.max(bmp.width, bmp.height));
        const c = document.createElement('canvas');
        c.width = Math.max(1, Math.round(bmp.width * scale));
        c.height = Math.max(1, Math.round(bmp.height * scale));
        c.getContext('2d').drawImage(bmp, 0, 0, c.width, c.height);
        return c;
    } catch {
        return null;
    } finally {
        if (bmp) bmp.close();
    }
}
