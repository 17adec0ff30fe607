// SPDX-License-Identifier: MIT
// The result viewer: original and result with a comparison slider or side by side, sharing one
// zoom and pan (mouse wheel, drag, pinch, buttons and keys). The view is kept in image
// fractions (centre and zoom relative to "fit"), so both panes stay aligned even when the result
// has another size than the original (resize, crop, rotate).

import {h, replaceChildren} from './util.js';

const MIN_ZOOM = 0.25; // relative to fit
const MAX_SCALE = 32; // screen pixels per image pixel

export class Viewer {
    constructor() {
        this.mode = 'slider';
        this.split = 50; // percent of the stage width showing the original
        this.view = {cx: 0.5, cy: 0.5, zoom: 1};
        this.images = {original: null, result: null}; // {url, width, height, label}
        this.pointers = new Map();
        this.panes = [];
        this.el = this.build();
        this.resizeObserver = new ResizeObserver(() => this.layout());
        this.resizeObserver.observe(this.stage);
    }

    build() {
        const zoomBtn = (label, text, fn, key) => h('button', {
            type: 'button', class: 'btn btn-icon', 'aria-label': label,
            title: `${label} (${key})`, onclick: fn,
        }, text);
        this.zoomLabel = h('output', {class: 'zoom-label', 'aria-live': 'polite'}, '');
        this.modeSlider = h('button', {type: 'button', class: 'seg', 'aria-pressed': 'true',
                                        onclick: () => this.setMode('slider')}, 'Slider');
        this.modeSide = h('button', {type: 'button', class: 'seg', 'aria-pressed': 'false',
                                      onclick: () => this.setMode('side')}, 'Side by side');
        this.modeGroup = h('div', {class: 'segmented', role: 'group', 'aria-label': 'Comparison mode'},
                           this.modeSlider, this.modeSide);
        this.toolbar = h('div', {class: 'viewer-toolbar'},
            this.modeGroup,
            h('div', {class: 'zoom-group', role: 'group', 'aria-label': 'Zoom'},
              zoomBtn('Zoom out', '−', () => this.zoomBy(1 / 1.5), '-'),
              this.zoomLabel,
              zoomBtn('Zoom in', '+', () => this.zoomBy(1.5), '+'),
              h('button', {type: 'button', class: 'btn btn-small', title: 'Fit to the view (0)',
                           onclick: () => this.fit()}, 'Fit'),
              h('button', {type: 'button', class: 'btn btn-small', title: 'Actual pixels (1)',
                           onclick: () => this.actualSize()}, '1:1')));

        this.stage = h('div', {
            // A group, not an img: an img's content is presentational, and the stage holds the
            // comparison slider (axe-core: nested-interactive).
            class: 'viewer-stage', tabindex: '0', role: 'group',
            'aria-label': 'Image comparison. Use + and - to zoom, arrow keys to pan, 0 to fit, ' +
                '1 for actual pixels.',
        });
        this.rangeInput = h('input', {type: 'range', min: '0', max: '100', step: '1', value: '50',
                                      class: 'split-range', 'aria-label': 'Comparison position: ' +
                                      'original on the left, result on the right'});
        this.rangeInput.addEventListener('input', () => {
            this.split = Number(this.rangeInput.value);
            this.applySplit();
        });
        this.caption = h('p', {class: 'viewer-caption muted'});
        this.stage.addEventListener('wheel', (e) => this.onWheel(e), {passive: false});
        this.stage.addEventListener('pointerdown', (e) => this.onPointerDown(e));
        this.stage.addEventListener('pointermove', (e) => this.onPointerMove(e));
        this.stage.addEventListener('pointerup', (e) => this.onPointerUp(e));
        this.stage.addEventListener('pointercancel', (e) => this.onPointerUp(e));
        this.stage.addEventListener('keydown', (e) => this.onKey(e));
        this.stage.addEventListener('dblclick', (e) => {
            if (e.target.closest('.split-handle')) return;
            this.zoomAt(this.view.zoom > 1.01 ? 1 / this.view.zoom : 2, e);
        });
        return h('div', {class: 'viewer'}, this.toolbar, this.stage, this.caption);
    }

    /** original / result: {url, width, height, label} or null. */
    setImages(original, result, note = '') {
        this.images = {original, result};
        const canCompare = Boolean(original && result);
        this.modeGroup.hidden = !canCompare;
        const aspect = (im) => im.width / im.height;
        // Different shapes compare better side by side; the slider is for same-shaped images.
        if (canCompare && Math.abs(aspect(original) - aspect(result)) > 0.01) this.mode = 'side';
        if (!canCompare) this.mode = 'single';
        else if (this.mode === 'single') this.mode = 'slider';
        this.view = {cx: 0.5, cy: 0.5, zoom: 1};
        this.caption.textContent = note;
        this.render();
    }

    setMode(mode) {
        if (!(this.images.original && this.images.result)) return;
        this.mode = mode;
        this.render();
    }

    makePane(im, cls) {
        const img = h('img', {src: im.url, alt: im.label, draggable: 'false', decoding: 'async'});
        const canvas = h('div', {class: 'viewer-canvas'}, img);
        const pane = h('div', {class: `viewer-pane ${cls}`}, canvas,
                       h('span', {class: 'pane-label'}, im.label));
        return {pane, canvas, img, im};
    }

    render() {
        this.modeSlider.setAttribute('aria-pressed', String(this.mode === 'slider'));
        this.modeSide.setAttribute('aria-pressed', String(this.mode === 'side'));
        const {original, result} = this.images;
        this.panes = [];
        this.stage.className = `viewer-stage mode-${this.mode}`;
        if (!result && !original) {
            replaceChildren(this.stage, h('p', {class: 'viewer-empty'}, 'No image to show.'));
            return;
        }
        if (this.mode === 'slider') {
            const r = this.makePane(result, 'pane-result');
            const o = this.makePane(original, 'pane-original');
            // The original is drawn in the result's box so the two line up pixel for pixel.
            o.im = {...original, width: result.width, height: result.height};
            this.panes = [r, o];
            this.handle = h('div', {class: 'split-handle', 'aria-hidden': 'true'},
                            h('span', {class: 'split-grip'}));
            replaceChildren(this.stage, r.pane, o.pane, this.handle, this.rangeInput);
            this.applySplit();
        } else if (this.mode === 'side') {
            const o = this.makePane(original, 'pane-left');
            const r = this.makePane(result, 'pane-right');
            this.panes = [o, r];
            replaceChildren(this.stage, o.pane, r.pane);
        } else {
            const r = this.makePane(result || original, 'pane-single');
            this.panes = [r];
            replaceChildren(this.stage, r.pane);
        }
        this.layout();
    }

    applySplit() {
        if (this.mode !== 'slider' || !this.panes[1]) return;
        this.panes[1].pane.style.clipPath = `inset(0 ${100 - this.split}% 0 0)`;
        this.handle.style.left = `${this.split}%`;
        this.rangeInput.value = String(this.split);
        this.rangeInput.setAttribute('aria-valuetext', `${Math.round(this.split)}% original`);
    }

    fitScale(pane) {
        const w = pane.pane.clientWidth || 1, hgt = pane.pane.clientHeight || 1;
        return Math.min(w / pane.im.width, hgt / pane.im.height);
    }

    /** Screen pixels per pixel of the result image. */
    scale() {
        const p = this.panes.find((x) => x.pane.classList.contains('pane-result') ||
                                       x.pane.classList.contains('pane-right') ||
                                       x.pane.classList.contains('pane-single'));
        return p ? this.fitScale(p) * this.view.zoom : 1;
    }

    maxZoom() {
        const p = this.panes[0];
        if (!p) return 64;
        const fit = this.fitScale(p);
        return Math.max(1, MAX_SCALE / Math.min(fit, MAX_SCALE));
    }

    /* Fits the stage's height to the image's shape (within the CSS bounds), so a wide image on a
     * phone does not sit in a tall box of checkerboard. */
    fitStageHeight() {
        const im = this.images.result || this.images.original;
        if (!im || this.mode === 'side') {
            this.stage.style.height = '';
            return;
        }
        const w = this.stage.clientWidth;
        const max = Math.min(window.innerHeight * 0.68, 720);
        const want = Math.round(Math.max(260, Math.min(max, (w * im.height) / im.width)));
        if (Math.abs(this.stage.clientHeight - want) > 1) this.stage.style.height = `${want}px`;
    }

    layout() {
        this.fitStageHeight();
        for (const p of this.panes || []) {
            const w = p.pane.clientWidth, hgt = p.pane.clientHeight;
            const s = this.fitScale(p) * this.view.zoom;
            const tx = w / 2 - this.view.cx * p.im.width * s;
            const ty = hgt / 2 - this.view.cy * p.im.height * s;
            p.canvas.style.width = `${p.im.width}px`;
            p.canvas.style.height = `${p.im.height}px`;
            p.canvas.style.transform = `translate(${tx}px, ${ty}px) scale(${s})`;
            p.img.classList.toggle('pixelated', s >= 3);
        }
        this.zoomLabel.textContent = `${Math.round(this.scale() * 100)}%`;
    }

    clampView() {
        this.view.zoom = Math.min(this.maxZoom(), Math.max(MIN_ZOOM, this.view.zoom));
        this.view.cx = Math.min(1, Math.max(0, this.view.cx));
        this.view.cy = Math.min(1, Math.max(0, this.view.cy));
    }

    fit() {
        this.view = {cx: 0.5, cy: 0.5, zoom: 1};
        this.layout();
    }

    actualSize() {
        const p = this.panes[this.panes.length - 1];
        if (!p) return;
        this.view.zoom = 1 / this.fitScale(p);
        this.clampView();
        this.layout();
    }

    zoomBy(f) {
        this.view.zoom *= f;
        this.clampView();
        this.layout();
    }

    /** Zooms by f keeping the image point under the pointer event e in place. */
    zoomAt(f, e) {
        const pane = this.paneAt(e);
        if (!pane) return this.zoomBy(f);
        const rect = pane.pane.getBoundingClientRect();
        const s0 = this.fitScale(pane) * this.view.zoom;
        const px = e.clientX - rect.left - rect.width / 2;
        const py = e.clientY - rect.top - rect.height / 2;
        // Image point under the pointer, in fractions.
        const ix = this.view.cx + px / (s0 * pane.im.width);
        const iy = this.view.cy + py / (s0 * pane.im.height);
        const old = this.view.zoom;
        this.view.zoom *= f;
        this.clampView();
        const s1 = this.fitScale(pane) * this.view.zoom;
        if (this.view.zoom !== old) {
            this.view.cx = ix - px / (s1 * pane.im.width);
            this.view.cy = iy - py / (s1 * pane.im.height);
        }
        this.clampView();
        this.layout();
    }

    paneAt(e) {
        for (const p of this.panes || []) {
            const r = p.pane.getBoundingClientRect();
            if (e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top &&
                e.clientY <= r.bottom) return p;
        }
        return this.panes && this.panes[0];
    }

    panBy(dx, dy, pane) {
        const p = pane || this.panes[0];
        if (!p) return;
        const s = this.fitScale(p) * this.view.zoom;
        this.view.cx -= dx / (s * p.im.width);
        this.view.cy -= dy / (s * p.im.height);
        this.clampView();
        this.layout();
    }

    onWheel(e) {
        e.preventDefault();
        this.zoomAt(Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)), e);
    }

    onPointerDown(e) {
        if (e.target === this.rangeInput) return;
        if (e.button !== undefined && e.button !== 0) return;
        this.stage.setPointerCapture(e.pointerId);
        if (e.target.closest && e.target.closest('.split-handle')) {
            this.splitDrag = e.pointerId;
            this.moveSplit(e);
            return;
        }
        this.pointers.set(e.pointerId, {x: e.clientX, y: e.clientY});
        this.dragPane = this.paneAt(e);
        this.stage.classList.add('dragging');
    }

    moveSplit(e) {
        const r = this.stage.getBoundingClientRect();
        this.split = Math.min(100, Math.max(0, ((e.clientX - r.left) / r.width) * 100));
        this.applySplit();
    }

    onPointerMove(e) {
        if (this.splitDrag === e.pointerId) {
            this.moveSplit(e);
            return;
        }
        const prev = this.pointers.get(e.pointerId);
        if (!prev) return;
        if (this.pointers.size === 2) {
            const [a, b] = [...this.pointers.values()];
            const d0 = Math.hypot(a.x - b.x, a.y - b.y);
            this.pointers.set(e.pointerId, {x: e.clientX, y: e.clientY});
            const [a1, b1] = [...this.pointers.values()];
            const d1 = Math.hypot(a1.x - b1.x, a1.y - b1.y);
            if (d0 > 0) {
                this.zoomAt(d1 / d0, {clientX: (a1.x + b1.x) / 2, clientY: (a1.y + b1.y) / 2});
            }
            return;
        }
        this.pointers.set(e.pointerId, {x: e.clientX, y: e.clientY});
        this.panBy(e.clientX - prev.x, e.clientY - prev.y, this.dragPane);
    }

    onPointerUp(e) {
        if (this.splitDrag === e.pointerId) this.splitDrag = null;
        this.pointers.delete(e.pointerId);
        if (this.pointers.size === 0) this.stage.classList.remove('dragging');
    }

    onKey(e) {
        if (e.target === this.rangeInput) return;
        const step = 60;
        const keys = {
            '+': () => this.zoomBy(1.5), '=': () => this.zoomBy(1.5), '-': () => this.zoomBy(1 / 1.5),
            '0': () => this.fit(), '1': () => this.actualSize(),
            ArrowLeft: () => this.panBy(step, 0), ArrowRight: () => this.panBy(-step, 0),
            ArrowUp: () => this.panBy(0, step), ArrowDown: () => this.panBy(0, -step),
        };
        const fn = keys[e.key];
        if (fn && !e.ctrlKey && !e.metaKey && !e.altKey) {
            e.preventDefault();
            fn();
        }
    }

    destroy() {
        this.resizeObserver.disconnect();
    }
}
