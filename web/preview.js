// SPDX-License-Identifier: MIT
// Live preview: the pipeline run on one chosen image before the batch, through the server's
// POST /api/v1/process on a copy downscaled in the browser (at most 512 pixels a side), so it is
// quick and exactly what the server's operations do. It follows every change of the pipeline,
// the format and the quality, debounced, and a newer change aborts the request in flight. Not the
// batch: sizes written in the pipeline (resize, crop) apply to the small copy.

import * as api from './api.js';
import {h, replaceChildren, debounce, formatDims} from './util.js';

export const PREVIEW_SIDE = 512;
const DECODABLE = new Set(['png', 'jpeg', 'webp', 'gif', 'bmp']);
const SHOWN = new Set(['png', 'jpeg', 'webp']); // formats the preview is encoded in

/* ---- A small PNG encoder ---- */

/* The canvas's own PNG is always RGBA, and operations treat a fourth band as alpha (invert would
 * turn an opaque copy transparent): the copy keeps the bands the image has instead: gray when
 * every pixel is, RGBA only where some pixel is not opaque, RGB otherwise. */
const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        t[n] = c >>> 0;
    }
    return t;
})();

function crc32(bytes) {
    let c = 0xffffffff;
    for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
    const out = new Uint8Array(12 + data.length);
    const v = new DataView(out.buffer);
    v.setUint32(0, data.length);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(data, 8);
    v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
}

async function encodePng({width, height, data}) {
    let gray = true, opaque = true;
    for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] !== 255) opaque = false;
        if (data[i] !== data[i + 1] || data[i] !== data[i + 2]) gray = false;
    }
    const bands = gray && opaque ? 1 : opaque ? 3 : 4;
    const raw = new Uint8Array(height * (1 + width * bands));
    let o = 0;
    for (let y = 0; y < height; y++) {
        raw[o++] = 0; // filter: none
        for (let x = 0; x < width; x++) {
            const i = 4 * (y * width + x);
            for (let b = 0; b < bands; b++) raw[o++] = data[i + b];
        }
    }
    const z = new Uint8Array(await new Response(
        new Blob([raw]).stream().pipeThrough(new CompressionStream('deflate'))).arrayBuffer());
    const ihdr = new Uint8Array(13);
    const v = new DataView(ihdr.buffer);
    v.setUint32(0, width);
    v.setUint32(4, height);
    ihdr.set([8, bands === 1 ? 0 : bands === 3 ? 2 : 6, 0, 0, 0], 8);
    return new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
                     chunk('IHDR', ihdr), chunk('IDAT', z), chunk('IEND', new Uint8Array(0))],
                    {type: 'image/png'});
}

export class Preview {
    /**
     * getFiles() -> [{key, file, info}] (the page's file list); getOptions() -> {pipeline,
     * format, quality, valid} (valid: false while the pipeline text does not parse).
     */
    constructor(getFiles, getOptions) {
        this.getFiles = getFiles;
        this.getOptions = getOptions;
        this.key = null; // the chosen file's key
        this.small = new Map(); // file key -> {blob, width, height} of the downscaled copy
        this.urls = [];
        this.controller = null;
        this.seq = 0;
        this.lastInput = '';
        this.active = true; // false while the new-job view is not shown
        this.el = this.build();
        this.schedule = debounce(() => this.run(), 400);
    }

    build() {
        this.select = h('select', {id: 'preview-image'});
        this.select.addEventListener('change', () => {
            this.key = Number(this.select.value) || null;
            this.schedule.flush();
        });
        this.status = h('p', {id: 'preview-status', class: 'muted small', 'aria-live': 'polite'});
        this.before = h('img', {class: 'preview-img', alt: '', hidden: true});
        this.after = h('img', {class: 'preview-img', alt: '', hidden: true});
        this.beforeCap = h('figcaption', {class: 'small muted'}, 'Original (downscaled)');
        this.afterCap = h('figcaption', {class: 'small muted'}, 'Preview');
        this.pair = h('div', {class: 'preview-pair', hidden: true},
            h('figure', {class: 'preview-fig'}, this.before, this.beforeCap),
            h('figure', {class: 'preview-fig'}, this.after, this.afterCap));
        return h('section', {id: 'preview-panel', class: 'panel', 'aria-labelledby': 'preview-title'},
            h('div', {class: 'panel-head'},
              h('h2', {id: 'preview-title'}, 'Live preview'),
              h('div', {class: 'field preview-choose'},
                h('label', {for: 'preview-image', class: 'small'}, 'Image'), this.select)),
            this.status, this.pair);
    }

    /** The file list changed: offer its previewable images, keep the choice when it is still there. */
    filesChanged() {
        const files = this.getFiles().filter((e) => e.info && !e.info.fatal);
        const keys = new Set(files.map((e) => e.key));
        for (const k of [...this.small.keys()]) if (!keys.has(k)) this.small.delete(k);
        const ok = (e) => DECODABLE.has(e.info.format);
        if (!files.some((e) => e.key === this.key && ok(e))) {
            const first = files.find(ok);
            this.key = first ? first.key : null;
        }
        replaceChildren(this.select, files.length
            ? files.map((e) => h('option', {value: String(e.key), disabled: !ok(e),
                                            selected: e.key === this.key},
                                 ok(e) ? e.file.name : `${e.file.name} (no preview in the browser)`))
            : h('option', {value: ''}, 'Add an image first'));
        this.select.disabled = !files.some(ok);
        this.schedule();
    }

    /** The new-job view shows (true) or not: a hidden preview sends nothing, and the request in
     * flight is dropped, so that it does not wait behind the job just started. */
    setActive(on) {
        if (this.active === on) return;
        this.active = on;
        if (on) {
            this.schedule();
        } else if (this.controller) {
            this.seq++;
            this.controller.abort();
            this.controller = null;
            this.el.removeAttribute('aria-busy');
            this.setStatus('');
        }
    }

    /** The pipeline or the output options changed. */
    optionsChanged() {
        this.schedule();
    }

    setStatus(text, isError = false) {
        this.status.textContent = text;
        this.status.classList.toggle('field-error', isError);
        this.status.classList.toggle('muted', !isError);
    }

    async downscaled(entry) {
        let s = this.small.get(entry.key);
        if (s) return s;
        const {width, height} = entry.info;
        const opts = {};
        if (width && height) {
            const scale = Math.min(1, PREVIEW_SIDE / Math.max(width, height));
            opts.resizeWidth = Math.max(1, Math.round(width * scale));
            opts.resizeHeight = Math.max(1, Math.round(height * scale));
            opts.resizeQuality = 'high';
        }
        const bmp = await createImageBitmap(entry.file, opts);
        try {
            const c = document.createElement('canvas');
            const scale = Math.min(1, PREVIEW_SIDE / Math.max(bmp.width, bmp.height));
            c.width = Math.max(1, Math.round(bmp.width * scale));
            c.height = Math.max(1, Math.round(bmp.height * scale));
            const g = c.getContext('2d');
            g.drawImage(bmp, 0, 0, c.width, c.height);
            const blob = await encodePng(g.getImageData(0, 0, c.width, c.height));
            s = {blob, width: c.width, height: c.height};
        } finally {
            bmp.close();
        }
        this.small.set(entry.key, s);
        return s;
    }

    track(blob) {
        const url = URL.createObjectURL(blob);
        this.urls.push(url);
        while (this.urls.length > 4) URL.revokeObjectURL(this.urls.shift());
        return url;
    }

    async run() {
        if (!this.active) return;
        const entry = this.getFiles().find((e) => e.key === this.key);
        const opts = this.getOptions();
        if (this.controller) this.controller.abort();
        this.controller = null;
        if (!entry) {
            this.pair.hidden = true;
            this.setStatus(this.getFiles().length
                ? 'None of the images can be shown in the browser; the batch still runs.'
                : 'Add images to see the pipeline on one of them before you run it.');
            return;
        }
        if (!opts.valid) {
            this.setStatus('Fix the pipeline text to update the preview.', true);
            return;
        }
        const seq = ++this.seq;
        const controller = new AbortController();
        this.controller = controller;
        this.el.setAttribute('aria-busy', 'true');
        this.setStatus(`Updating the preview of ${entry.file.name}…`);
        try {
            const small = await this.downscaled(entry);
            if (seq !== this.seq) return;
            if (this.lastInput !== `${entry.key}`) {
                this.before.src = this.track(small.blob);
                this.before.alt = `${entry.file.name}, downscaled to ${small.width} × ${small.height}`;
                this.before.hidden = false;
                this.lastInput = `${entry.key}`;
            }
            // What the batch would write, where the browser can show it: JPEG and WebP with
            // their quality (to see the artefacts), anything else as PNG.
            const want = opts.format || entry.info.format;
            const format = SHOWN.has(want) ? want : 'png';
            const q = new URLSearchParams({pipeline: opts.pipeline, format});
            if (format === 'jpeg' || format === 'webp') q.set('quality', String(opts.quality));
            const t0 = performance.now();
            const res = await api.request('POST', `/process?${q}`, {
                body: small.blob, raw: true, signal: controller.signal,
                headers: {'Content-Type': 'application/octet-stream'},
            });
            const out = await res.blob();
            if (seq !== this.seq) return;
            const ms = Math.round(performance.now() - t0);
            const url = this.track(out);
            const img = new Image();
            img.src = url;
            await img.decode();
            if (seq !== this.seq) return;
            this.after.src = url;
            this.after.hidden = false;
            this.pair.hidden = false;
            await Promise.all([this.after.decode(), this.before.decode()]).catch(() => {});
            if (seq !== this.seq) return;
            this.after.alt = `Preview of ${opts.pipeline || 'no operations'} on ${entry.file.name}`;
            this.after.hidden = false;
            this.pair.hidden = false;
            this.afterCap.textContent = `Preview · ${formatDims(img.naturalWidth, img.naturalHeight)}` +
                ` · ${format.toUpperCase()}`;
            this.el.dataset.pipeline = opts.pipeline;
            this.setStatus(`${entry.file.name}, downscaled to ${formatDims(small.width, small.height)}` +
                           ` (the batch runs at full size) · ${ms} ms.`);
        } catch (e) {
            if (e.name === 'AbortError' || seq !== this.seq) return;
            this.setStatus(e.code === 'EBUSY'
                ? 'The server is busy; the preview updates with your next change.'
                : `No preview: ${e.message}`, e.code !== 'EBUSY');
        } finally {
            if (seq === this.seq) {
                this.el.removeAttribute('aria-busy');
                this.controller = null;
            }
        }
    }
}
