// SPDX-License-Identifier: MIT
// Small DOM and formatting helpers shared by the page's modules. Everything that puts server or
// file data on the page goes through h() and textContent, never innerHTML, so names and error
// messages cannot inject markup.

/** Creates an element: h('button', {class: 'btn', onclick: fn, 'aria-label': 'x'}, 'text', node). */
export function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === undefined || v === null || v === false) continue;
        if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'class') el.className = v;
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
        else if (k in el && typeof v !== 'string') el[k] = v;
        else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const c of children) {
        if (c === null || c === undefined || c === false) continue;
        if (Array.isArray(c)) append(el, c);
        else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
}

/** Removes every child of el and appends the given ones. */
export function replaceChildren(el, ...children) {
    el.textContent = '';
    append(el, children);
}

export function $(sel, root = document) {
    return root.querySelector(sel);
}

export function formatBytes(n) {
    if (n === null || n === undefined || !Number.isFinite(n)) return '?';
    if (n < 1024) return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatDims(w, h) {
    if (!w || !h) return '? × ?';
    return `${w} × ${h}`;
}

/** "45 s", "3 min 05 s", "1 h 02 min". */
export function formatDuration(s) {
    if (s === null || s === undefined || !Number.isFinite(s) || s < 0) return '';
    s = Math.round(s);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
    return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Accepts Unix seconds, Unix milliseconds or an ISO string; returns a Date or null. */
export function toDate(t) {
    if (t === null || t === undefined || t === '') return null;
    if (typeof t === 'number') return new Date(t > 1e12 ? t : t * 1000);
    const n = Number(t);
    if (Number.isFinite(n)) return toDate(n);
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? null : d;
}

export function formatTime(t) {
    const d = toDate(t);
    if (!d) return '';
    const now = new Date();
    const sameDay = d.toDateString() === now.toDateString();
    const opts = sameDay ? {hour: '2-digit', minute: '2-digit', second: '2-digit'}
        : {year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit'};
    return d.toLocaleString(undefined, opts);
}

/** Shortest decimal text for a number, like the server's formatting ("%.17g" trimmed). */
export function formatNumber(v) {
    if (!Number.isFinite(v)) return String(v);
    return String(Number(v.toPrecision(15))); // drops float noise such as 0.30000000000000004
}

export function debounce(fn, ms) {
    let t = null;
    const d = (...args) => {
        clearTimeout(t);
        t = setTimeout(() => fn(...args), ms);
    };
    d.flush = (...args) => { clearTimeout(t); fn(...args); };
    return d;
}

let liveTimer = null;
/** Tells screen-reader users about a change that is not where their focus is. */
export function announce(text) {
    const el = document.getElementById('live');
    if (!el) return;
    clearTimeout(liveTimer);
    el.textContent = '';
    liveTimer = setTimeout(() => { el.textContent = text; }, 50);
}

/** Short form of a job id for display. */
export function shortId(id) {
    const s = String(id ?? '');
    return s.length > 10 ? s.slice(0, 8) : s;
}

/** Saves a Blob under a file name through a temporary link. */
export function saveBlob(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = h('a', {href: url, download: name, hidden: true});
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
}

export const STATE_LABELS = {
    queued: 'Queued', running: 'Running', done: 'Done', failed: 'Failed', cancelled: 'Cancelled',
    uploading: 'Uploading',
};

export function stateBadge(state) {
    return h('span', {class: `badge state-${state}`}, STATE_LABELS[state] || state);
}
