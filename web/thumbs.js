// SPDX-License-Identifier: MIT
// Result thumbnails for the job's image table and the jobs list: each result the browser can
// decode is downloaded once (results up to 16 MiB; larger ones keep a plain tile), shrunk to a
// small JPEG in the browser and kept for the page's life, so the list's refresh every few seconds
// costs nothing. At most three downloads at a time.

import * as api from './api.js';
import {h} from './util.js';

const SIDE = 96;
const MAX_BYTES = 16 << 20;
const DECODABLE = new Set(['png', 'jpeg', 'webp', 'gif', 'bmp']);
const byUrl = new Map(); // result URL -> Promise<object URL | null>
const byJob = new Map(); // job id -> Promise<object URL | null>
const queue = [];
let active = 0;

function pump() {
    while (active < 3 && queue.length) {
        const {url, resolve} = queue.shift();
        active++;
        shrink(url).then(resolve, () => {
            byUrl.delete(url); // a later look may try again (e.g. after an outage)
            resolve(null);
        }).finally(() => {
            active--;
            pump();
        });
    }
}

async function shrink(url) {
    const {blob} = await api.download(url);
    const bmp = await createImageBitmap(blob);
    try {
        const scale = Math.min(1, SIDE / Math.max(bmp.width, bmp.height));
        const c = document.createElement('canvas');
        c.width = Math.max(1, Math.round(bmp.width * scale));
        c.height = Math.max(1, Math.round(bmp.height * scale));
        c.getContext('2d').drawImage(bmp, 0, 0, c.width, c.height);
        const small = await new Promise((resolve) => c.toBlob(resolve, 'image/jpeg', 0.85));
        return small ? URL.createObjectURL(small) : null;
    } finally {
        bmp.close();
    }
}

/** A promise of a thumbnail's object URL for a done item, or null when it gets none. */
export function itemThumb(jobId, item) {
    if (item.state !== 'done' || !DECODABLE.has(item.out_format) || !(item.bytes_out <= MAX_BYTES)) {
        return Promise.resolve(null);
    }
    const url = item.result_url || api.resultUrl(jobId, item.index);
    if (!byUrl.has(url)) byUrl.set(url, new Promise((resolve) => {
        queue.push({url, resolve});
        pump();
    }));
    return byUrl.get(url);
}

/** A small image element that shows `promise`'s thumbnail when it comes (empty tile before). */
export function thumbImg(promise) {
    const img = h('img', {class: 'thumb-mini', alt: '', width: String(SIDE / 2),
                          height: String(SIDE / 2), hidden: true, decoding: 'async'});
    const tile = h('span', {class: 'thumb-tile', 'aria-hidden': 'true'}, img);
    promise.then((src) => {
        if (!src) return;
        img.src = src;
        img.hidden = false;
        tile.classList.add('has-thumb');
    });
    return tile;
}

/** Sets the thumbnail of an item row's tile once its item is done. */
export function setItemThumb(tile, jobId, item) {
    if (tile.dataset.for === `${jobId}/${item.index}` || item.state !== 'done') return;
    tile.dataset.for = `${jobId}/${item.index}`;
    const img = tile.querySelector('img');
    itemThumb(jobId, item).then((src) => {
        if (tile.dataset.for !== `${jobId}/${item.index}`) return;
        if (!src) {
            delete tile.dataset.for; // the next update of the row tries again
            return;
        }
        img.src = src;
        img.hidden = false;
        tile.classList.add('has-thumb');
    });
}

export function emptyTile() {
    return h('span', {class: 'thumb-tile', 'aria-hidden': 'true'},
             h('img', {class: 'thumb-mini', alt: '', width: String(SIDE / 2),
                       height: String(SIDE / 2), hidden: true, decoding: 'async'}));
}

/** The thumbnail of a job in the list: its first done result among the first few images. */
export function jobThumb(job) {
    const p = job.progress || {};
    const ran = (p.items_done || 0) - (p.items_failed || 0);
    if (!['done', 'failed', 'cancelled'].includes(job.state) || ran <= 0) {
        return thumbImg(Promise.resolve(null));
    }
    const id = String(job.id);
    if (!byJob.has(id)) {
        byJob.set(id, api.request('GET', `/jobs/${encodeURIComponent(id)}?items_limit=8`)
            .then((j) => {
                const it = (j.items || []).find((i) => i.state === 'done');
                return it ? itemThumb(id, it) : null;
            })
            .catch(() => null));
    }
    return thumbImg(byJob.get(id));
}

/** Forgets every thumbnail (another user signed in). */
export function forgetThumbs() {
    for (const p of [...byUrl.values(), ...byJob.values()]) {
        p.then((u) => { if (u) URL.revokeObjectURL(u); });
    }
    byUrl.clear();
    byJob.clear();
}
