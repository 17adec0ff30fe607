// SPDX-License-Identifier: MIT
// Small things image-tool users expect: Ctrl+Enter (⌘+Enter) runs the job from anywhere on the
// new-job page; images pasted from the clipboard join the file list; Retry sends a job's failed
// and cancelled images again from the inputs the server kept (POST /jobs/{id}/retry), without
// uploading them; Previous / Next in the viewer walk the job's done images.

import * as api from './api.js';
import {$, h, announce} from './util.js';

/** addFiles(File[]) adds to the page's list; isNewJob() says whether the new-job view shows. */
export function setupShortcuts({addFiles, isNewJob}) {
    document.addEventListener('keydown', (e) => {
        if (e.key !== 'Enter' || !(e.ctrlKey || e.metaKey) || e.altKey || e.shiftKey) return;
        if (!isNewJob() || ($('#token-dialog') && $('#token-dialog').open)) return;
        e.preventDefault();
        const run = $('#run');
        if (run.disabled) {
            announce($('#submit-hint').textContent || 'Nothing to run yet.');
            return;
        }
        run.click();
    });
    document.addEventListener('paste', (e) => {
        if (!isNewJob() || !e.clipboardData) return;
        const files = [...e.clipboardData.files].filter((f) => f.type.startsWith('image/'));
        if (!files.length) return; // text pasted into a field stays text
        e.preventDefault();
        // Screenshots arrive as "image.png", all with the same name: give each its own.
        const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
        addFiles(files.map((f, i) => {
            const ext = (f.type.split('/')[1] || 'png').replace('jpeg', 'jpg');
            const name = !f.name || f.name === `image.${ext}` || f.name === 'image.png'
                ? `pasted-${stamp}${files.length > 1 ? `-${i + 1}` : ''}.${ext}` : f.name;
            return name === f.name ? f : new File([f], name, {type: f.type, lastModified: Date.now()});
        }));
        announce(`${files.length} image${files.length === 1 ? '' : 's'} pasted.`);
    });
}

/** Retries `job`'s failed and cancelled images as a new job and opens it. */
export async function retryJob(job, showError) {
    const btn = $('#job-retry');
    if (!job || btn.disabled) return;
    btn.disabled = true;
    const label = btn.textContent;
    btn.textContent = 'Starting the retry…';
    try {
        const next = await api.retryJob(job.id);
        announce(`Retry started with ${(next.items || []).length} images.`);
        location.hash = `#/jobs/${encodeURIComponent(next.id)}`;
    } catch (e) {
        showError(e, 'The retry was not started');
    } finally {
        btn.disabled = false;
        btn.textContent = label;
    }
}

/** Adds Previous / Next to the viewer. getJob() -> the job shown; open(item) shows an item.
 * Returns {update(job, item)}, called whenever the viewer shows an item. Keys: PageUp/PageDown,
 * or ← → when the focus is in the viewer's head (the image itself pans with the arrows). */
export function setupViewerNav(getJob, open) {
    let current = null;
    const done = () => ((getJob() && getJob().items) || []).filter((i) => i.state === 'done');
    const step = (d) => {
        const list = done();
        const at = current ? list.findIndex((i) => i.index === current.index) : -1;
        const next = list[at + d];
        if (at < 0 || !next) return;
        open(next);
    };
    const prev = h('button', {id: 'viewer-prev', type: 'button', class: 'btn btn-small',
                              title: 'Previous image (Page Up)', onclick: () => step(-1)}, '‹ Previous');
    const next = h('button', {id: 'viewer-next', type: 'button', class: 'btn btn-small',
                              title: 'Next image (Page Down)', onclick: () => step(1)}, 'Next ›');
    const pos = h('span', {id: 'viewer-pos', class: 'muted small'});
    $('.viewer-head-actions').prepend(prev, pos, next);
    $('#viewer-panel').addEventListener('keydown', (e) => {
        if (e.altKey || e.ctrlKey || e.metaKey) return;
        const inHead = e.target.closest && e.target.closest('.panel-head');
        const d = e.key === 'PageUp' ? -1 : e.key === 'PageDown' ? 1
            : inHead && e.key === 'ArrowLeft' ? -1 : inHead && e.key === 'ArrowRight' ? 1 : 0;
        if (!d) return;
        e.preventDefault();
        step(d);
    });
    return {
        update(job, item) {
            current = item;
            const list = done();
            const at = list.findIndex((i) => i.index === item.index);
            prev.disabled = at <= 0;
            next.disabled = at < 0 || at >= list.length - 1;
            pos.textContent = at >= 0 ? `${at + 1} of ${list.length}` : '';
        },
    };
}
