// SPDX-License-Identifier: MIT
// The page's controller: routing between the views (new job, one job, jobs, cluster), the file
// list, submitting a job, following it live, the result viewer, the token prompt and the error
// messages. The API client is api.js, the pipeline builder builder.js, the viewer viewer.js.

import * as api from './api.js';
import {Builder} from './builder.js';
import {inspect, thumbnail, setLimits, FORMAT_NAMES, BROWSER_FORMATS} from './files.js';
import {
    $, h, replaceChildren, formatBytes, formatDims, formatDuration, formatTime, shortId, saveBlob,
    stateBadge, announce, STATE_LABELS,
} from './util.js';
import {Viewer} from './viewer.js';
import {Preview} from './preview.js';
import {setupForm, jobName, clearJobName, saveForm} from './presets.js';
import {emptyTile, setItemThumb, jobThumb, forgetThumbs} from './thumbs.js';
import {setupShortcuts, retryJob, setupViewerNav} from './shortcuts.js';

/* ---- State ---- */

const state = {
    me: null,
    ops: [],
    files: [], // {key, file, info, thumb, el, force}
    originals: new Map(), // job id -> File[] (inputs of jobs started in this tab)
    job: null,
    stopWatch: null,
    submitting: false,
    timers: {},
    viewer: null,
    viewing: null, // {jobId, index, blob, name}
    preview: null, // the live preview (preview.js)
};
let fileKey = 0;

/* ---- Errors and messages ---- */

const ERROR_TITLES = {
    EINVAL: 'Invalid request',
    ELIMIT: 'Over a limit',
    ECORRUPT: 'Corrupt image',
    EFORMAT: 'Unsupported format',
    ENOMEM: 'The server is out of memory',
    EIO: 'Server storage error',
    ENOTFOUND: 'Not found',
    EPEER: 'A worker failed',
    ECANCELED: 'Cancelled',
    EAUTH: 'Not signed in',
    EBUSY: 'The server is busy',
    EINTERNAL: 'Server error',
    EINTEGRITY: 'Stored data failed its integrity check',
    ENETWORK: 'No connection',
    EBADJSON: 'Unexpected reply',
    EFORBIDDEN: 'Not allowed',
};

function errorTitle(err) {
    if (err.status === 403 && !ERROR_TITLES[err.code]) return 'Not allowed';
    return ERROR_TITLES[err.code] || (err.status ? `Error ${err.status}` : 'Error');
}

/** Shows a message; kind: 'error' | 'info' | 'success'. Errors stay until dismissed. */
function toast(kind, title, text, code) {
    const box = $('#toasts');
    const el = h('div', {class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status'},
        h('div', {class: 'toast-body'},
            h('strong', {}, title),
            code ? h('code', {class: 'toast-code'}, code) : null,
            text ? h('p', {}, text) : null),
        h('button', {type: 'button', class: 'toast-close', 'aria-label': 'Dismiss message',
                     onclick: () => el.remove()}, '✕'));
    box.append(el);
    while (box.children.length > 4) box.firstElementChild.remove();
    setTimeout(() => el.remove(), kind === 'error' ? 20000 : 5000);
    return el;
}

function showError(err, context) {
    if (err && err.name === 'AbortError') return;
    if (!(err instanceof api.ApiError)) {
        console.error(err);
        toast('error', context || 'Something went wrong', String(err && err.message || err));
        return;
    }
    const title = context ? `${context}: ${errorTitle(err)}` : errorTitle(err);
    toast('error', title, err.message, err.code);
}

/* ---- Token prompt ---- */

let tokenPending = null;

function openTokenDialog(reason, err) {
    if (tokenPending) return tokenPending;
    const dlg = $('#token-dialog');
    const input = $('#token-input');
    const errBox = $('#token-error');
    const hadToken = Boolean(api.getToken());
    $('#token-forget').hidden = !hadToken;
    $('#token-cancel').textContent = reason === 'manage' ? 'Close' : 'Cancel';
    if (reason === 'rejected') {
        errBox.hidden = false;
        replaceChildren(errBox, h('strong', {}, 'The server did not accept this token. '),
                        err && err.message ? err.message : '');
    } else {
        errBox.hidden = true;
        errBox.textContent = '';
    }
    input.value = '';
    tokenPending = new Promise((resolve) => {
        const done = (ok) => {
            dlg.removeEventListener('close', onClose);
            $('#token-form').removeEventListener('submit', onSubmit);
            $('#token-cancel').removeEventListener('click', onCancel);
            $('#token-forget').removeEventListener('click', onForget);
            if (dlg.open) dlg.close();
            tokenPending = null;
            resolve(ok);
        };
        const onSubmit = (e) => {
            e.preventDefault();
            const t = input.value.trim();
            if (!t) {
                input.focus();
                return;
            }
            const changed = t !== api.getToken();
            api.setToken(t);
            if (changed && hadToken) forgetUserState();
            done(true);
            refreshIdentity();
        };
        const onCancel = () => done(false);
        const onClose = () => done(false);
        const onForget = () => {
            api.setToken('');
            forgetUserState();
            toast('info', 'Signed out', 'The token was removed from this browser.');
            done(false);
            refreshIdentity();
        };
        dlg.addEventListener('close', onClose);
        $('#token-form').addEventListener('submit', onSubmit);
        $('#token-cancel').addEventListener('click', onCancel);
        $('#token-forget').addEventListener('click', onForget);
    });
    dlg.showModal();
    input.focus();
    return tokenPending;
}

/** Another user (or none): nothing of the previous user's job, files or results stays on screen. */
function forgetUserState() {
    stopWatching();
    closeViewer();
    state.job = null;
    state.originals.clear();
    state.files = [];
    inspectQueue.length = 0;
    renderFiles();
    itemRows.clear();
    replaceChildren($('#items'));
    replaceChildren($('#jobs'));
    for (const id of ['#job-zip', '#job-cancel', '#job-again']) $(id).hidden = true;
    if ($('#job-retry')) $('#job-retry').hidden = true;
    forgetThumbs();
    if (currentRoute().name === 'job') location.hash = '#/';
}

async function refreshIdentity() {
    try {
        state.me = await api.whoami();
    } catch (e) {
        state.me = null;
        if (e.status !== 401) showError(e, 'Checking your identity');
    }
    const me = state.me;
    const who = $('#who');
    if (me) {
        replaceChildren(who, h('span', {class: 'who-name'}, me.name || 'anonymous'),
                        me.admin ? h('span', {class: 'badge badge-admin'}, 'admin') : null);
    } else {
        who.textContent = api.getToken() ? 'Token not accepted' : '';
    }
    $('#token-button').textContent = api.getToken() ? 'Token' : (me && me.auth_required === false ? 'Token' : 'Sign in');
    $('#token-button').hidden = Boolean(me && me.auth_required === false && !api.getToken());
    $('nav a[data-route="cluster"]').hidden = !(me && me.admin);
    if (!state.ops.length && (me || api.getToken())) loadOps();
}

/* ---- Operations ---- */

let builder = null;

let opsLoading = null;

function loadOps() {
    if (!opsLoading) opsLoading = fetchOps().finally(() => { opsLoading = null; });
    return opsLoading;
}

async function fetchOps() {
    try {
        const r = await api.getOps();
        state.ops = (r && r.ops) || [];
        builder.setOps(state.ops);
    } catch (e) {
        replaceChildren($('#op-select'), h('option', {value: ''}, 'Operations could not be loaded'));
        showError(e, 'Loading the operations');
    }
}

/* ---- Files ---- */

const inspectQueue = [];
let inspecting = 0;
let limitsLoading = null;

/** The limits files are checked against come from the server (GET /api/v1/limits, open to
 * anyone), once, before the first file is inspected; without them only the server checks. */
function loadLimits() {
    if (!limitsLoading) limitsLoading = api.getLimits().then(setLimits).catch(() => {});
    return limitsLoading;
}

/** The same file twice (same name, size and date) would give a job with duplicates. */
const sameFile = (a, b) => a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;

function addFiles(list) {
    const added = [];
    const skipped = [];
    for (const file of list) {
        if (state.files.some((e) => sameFile(e.file, file)) || added.some((e) => sameFile(e.file, file))) {
            skipped.push(file.name);
            continue;
        }
        const entry = {key: ++fileKey, file, info: null, thumb: null, el: null, force: false};
        state.files.push(entry);
        added.push(entry);
        inspectQueue.push(entry);
    }
    renderFiles();
    pumpInspect();
    if (added.length) announce(`${added.length} image${added.length === 1 ? '' : 's'} added.`);
    if (skipped.length) {
        toast('warning', `Skipped ${skipped.length} duplicate${skipped.length === 1 ? '' : 's'}`,
              `Already in the list: ${skipped.join(', ')}.`);
    }
}

async function pumpInspect() {
    while (inspecting < 2 && inspectQueue.length) {
        const entry = inspectQueue.shift();
        inspecting++;
        (async () => {
            try {
                await loadLimits();
                entry.info = await inspect(entry.file);
                if (!entry.info.fatal) {
                    entry.thumb = await thumbnail(entry.file, entry.info);
                    if (!entry.thumb && BROWSER_FORMATS.has(entry.info.format)) {
                        entry.info.problems.push('The browser could not decode this image; it ' +
                                                 'may be damaged. The server will check it.');
                    }
                }
            } catch (e) {
                entry.info = {format: null, problems: [`The file could not be read: ${e.message}`],
                              fatal: true};
            }
            inspecting--;
            updateFileCard(entry);
            updateSubmit();
            if (state.preview) state.preview.filesChanged();
            pumpInspect();
        })();
    }
}

function removeFile(entry) {
    const i = state.files.indexOf(entry);
    if (i < 0) return;
    state.files.splice(i, 1);
    const next = state.files[Math.min(i, state.files.length - 1)];
    renderFiles();
    if (next && next.el) next.el.querySelector('.file-remove').focus();
    else $('#choose-files').focus();
    announce(`Removed ${entry.file.name}.`);
}

function renderFiles() {
    const list = $('#file-list');
    for (const entry of state.files) if (!entry.el) entry.el = fileCard(entry);
    replaceChildren(list, state.files.map((e) => e.el));
    for (const entry of state.files) updateFileCard(entry);
    $('#clear-files').hidden = state.files.length === 0;
    $('#drop').classList.toggle('compact', state.files.length > 0);
    updateSubmit();
    if (state.preview) state.preview.filesChanged();
}

function fileCard(entry) {
    return h('li', {class: 'file-card', dataset: {key: entry.key}},
        h('div', {class: 'thumb'}),
        h('div', {class: 'file-info'},
            h('p', {class: 'file-name', title: entry.file.name}, entry.file.name),
            h('p', {class: 'file-meta muted'}),
            h('ul', {class: 'file-problems'}),
            h('button', {type: 'button', class: 'btn-link file-force', hidden: true,
                         onclick: () => {
                             entry.force = !entry.force;
                             updateFileCard(entry);
                             updateSubmit();
                         }})),
        h('button', {type: 'button', class: 'file-remove', 'aria-label': `Remove ${entry.file.name}`,
                     title: 'Remove', onclick: () => removeFile(entry)}, '✕'));
}

function updateFileCard(entry) {
    const el = entry.el;
    if (!el) return;
    const info = entry.info;
    const thumb = el.querySelector('.thumb');
    if (entry.thumb && !thumb.contains(entry.thumb)) {
        entry.thumb.setAttribute('role', 'img');
        entry.thumb.setAttribute('aria-label', `Preview of ${entry.file.name}`);
        replaceChildren(thumb, entry.thumb);
    } else if (!entry.thumb) {
        const label = !info ? '…' : info.format ? FORMAT_NAMES[info.format] : '?';
        const why = !info ? '' : info.fatal ? '' : 'no preview in the browser';
        replaceChildren(thumb, h('span', {class: 'thumb-placeholder', 'aria-hidden': 'true'}, label),
                        why ? h('span', {class: 'thumb-note'}, why) : null);
    }
    const meta = [];
    if (info && info.format) meta.push(FORMAT_NAMES[info.format]);
    meta.push(formatBytes(entry.file.size));
    if (info) meta.push(info.width ? formatDims(info.width, info.height) : '? × ?');
    const metaEl = el.querySelector('.file-meta');
    if (info) replaceChildren(metaEl, meta.map((m, i) => [i ? ' · ' : '', h('span', {class: 'nowrap'}, m)]));
    else metaEl.textContent = `${formatBytes(entry.file.size)} · reading…`;
    const problems = el.querySelector('.file-problems');
    replaceChildren(problems, (info ? info.problems : []).map((p) => h('li', {}, p)));
    const skipped = Boolean(info && info.fatal && !entry.force) || Boolean(entry.serverRefused);
    el.classList.toggle('is-refused', skipped);
    el.classList.toggle('has-warning', Boolean(info && info.problems.length && !skipped));
    const force = el.querySelector('.file-force');
    force.hidden = !(info && info.fatal && info.format) || Boolean(entry.serverRefused);
    force.textContent = entry.force ? 'Do not upload' : 'Upload anyway';
    if (entry.serverRefused) {
        problems.prepend(h('li', {class: 'refused'}, `The server refused it: ${entry.serverRefused}`));
    } else if (skipped) {
        problems.prepend(h('li', {class: 'refused'}, 'Will not be uploaded.'));
    }
}

function sendable() {
    return state.files.filter((e) => e.info && (!e.info.fatal || e.force) && !e.serverRefused);
}

/** The file a refused upload names ("file 'x.png': ..."), when it is one of those sent. */
function refusedEntry(err, entries) {
    const m = err instanceof api.ApiError && /^file '([^']*)': /.exec(err.message || '');
    if (!m) return null;
    return entries.find((e) => e.file.name === m[1]) ||
        (entries.filter((e) => e.force).length === 1 ? entries.find((e) => e.force) : null);
}

function updateSubmit() {
    const ready = sendable();
    const pending = state.files.filter((e) => !e.info).length;
    const refused = state.files.filter((e) => e.info && e.info.fatal && !e.force).length;
    const total = state.files.reduce((s, e) => s + e.file.size, 0);
    $('#files-summary').textContent = state.files.length
        ? `${state.files.length} file${state.files.length === 1 ? '' : 's'} · ${formatBytes(total)}` : '';
    const run = $('#run');
    let hint = '';
    if (state.submitting) hint = '';
    else if (!state.files.length) hint = 'Add at least one image.';
    else if (pending) hint = 'Reading the images…';
    else if (!ready.length) hint = 'None of the images can be uploaded.';
    else {
        hint = `${ready.length} image${ready.length === 1 ? '' : 's'} will be processed`;
        if (refused) hint += `, ${refused} skipped`;
        hint += '.';
    }
    if (!state.submitting) {
        $('#submit-hint').textContent = hint;
        run.disabled = !ready.length || pending > 0 || !state.ops.length;
        run.textContent = ready.length > 1 ? `Run on ${ready.length} images` : 'Run';
    }
}

function setupDrop() {
    const zone = $('#drop');
    const input = $('#file-input');
    $('#choose-files').addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
        addFiles([...input.files]);
        input.value = '';
    });
    let depth = 0;
    const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
    zone.addEventListener('dragenter', (e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        depth++;
        zone.classList.add('dragover');
    });
    zone.addEventListener('dragover', (e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
    });
    zone.addEventListener('dragleave', () => {
        depth = Math.max(0, depth - 1);
        if (!depth) zone.classList.remove('dragover');
    });
    zone.addEventListener('drop', (e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        e.stopPropagation(); // the window's handler below would add them a second time
        depth = 0;
        zone.classList.remove('dragover');
        addFiles([...e.dataTransfer.files]);
    });
    // A file dropped elsewhere on the page is added too, rather than replacing the page.
    window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
    window.addEventListener('drop', (e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        if (currentRoute().name === 'new') addFiles([...e.dataTransfer.files]);
    });
    $('#clear-files').addEventListener('click', () => {
        state.files = [];
        renderFiles();
        $('#choose-files').focus();
        announce('All images removed.');
    });
}

/* ---- Output and submit ---- */

function setupOutput() {
    const q = $('#quality'), fmt = $('#format');
    const sync = () => {
        $('#quality-value').textContent = q.value;
        const lossy = fmt.value === 'jpeg' || fmt.value === 'webp';
        q.disabled = !(lossy || fmt.value === '');
        $('#quality-hint').textContent = fmt.value === ''
            ? 'Used when the input is JPEG or WebP.' : lossy ? `For ${FORMAT_NAMES[fmt.value]}.`
                : `${FORMAT_NAMES[fmt.value]} is lossless; quality does not apply.`;
    };
    q.addEventListener('input', sync);
    fmt.addEventListener('change', sync);
    // The live preview follows the output options too (preview.js).
    q.addEventListener('input', () => state.preview && state.preview.optionsChanged());
    fmt.addEventListener('change', () => state.preview && state.preview.optionsChanged());
    sync();
    $('#run').addEventListener('click', submit);
}

async function submit() {
    let entries = sendable();
    if (!entries.length || state.submitting) return;
    let files = entries.map((e) => e.file);
    const fmt = $('#format').value;
    const fields = {pipeline: $('#pipeline-text').value.trim(), format: fmt};
    if (fmt === 'jpeg' || fmt === 'webp' || fmt === '') fields.quality = $('#quality').value;
    if (jobName()) fields.name = jobName();
    const run = $('#run');
    state.submitting = true;
    run.disabled = true;
    run.textContent = 'Uploading…';
    const hint = $('#submit-hint');
    const bar = h('div', {class: 'progress progress-small', role: 'progressbar', 'aria-label': 'Upload',
                          'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0'},
                  h('div', {class: 'progress-fill'}));
    replaceChildren(hint, bar);
    try {
        let job;
        for (;;) {
            try {
                job = await api.createJob(files, fields, (f) => {
                    const pct = Math.round(f * 100);
                    bar.setAttribute('aria-valuenow', String(pct));
                    bar.firstChild.style.width = `${pct}%`;
                    run.textContent = pct < 100 ? `Uploading ${pct}%` : 'Starting…';
                });
                break;
            } catch (e) {
                // One file the server refuses (e.g. over its limits after "Upload anyway") is
                // skipped and the others are sent again, rather than refusing the whole batch.
                const bad = entries.length > 1 ? refusedEntry(e, entries) : null;
                if (!bad) throw e;
                bad.serverRefused = e.message.replace(/^file '[^']*': /, '');
                updateFileCard(bad);
                entries = sendable();
                files = entries.map((x) => x.file);
                toast('warning', `Skipped ${bad.file.name}`,
                      `The server refused it (${e.code}): ${bad.serverRefused}. ` +
                      `Sending the other ${files.length} image${files.length === 1 ? '' : 's'}.`);
            }
        }
        state.originals.set(String(job.id), files);
        state.job = job;
        clearJobName();
        announce('Job started.');
        location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
    } catch (e) {
        if (e.code === 'EINVAL' && /pipeline|operation|parameter/i.test(e.message)) {
            // Shown next to the text it is about, rather than in a passing message.
            builder.showServerError(e);
            $('#pipeline-text').focus();
            $('#pipeline-error').scrollIntoView({block: 'center', behavior: 'smooth'});
        } else {
            showError(e, 'The job was not started');
        }
    } finally {
        state.submitting = false;
        updateSubmit();
    }
}

/* ---- One job ---- */

const itemRows = new Map();

function stopWatching() {
    if (state.stopWatch) state.stopWatch();
    state.stopWatch = null;
    state.offlineSince = 0;
    $('#job-offline').hidden = true;
}

async function showJob(id) {
    stopWatching();
    closeViewer();
    itemRows.clear();
    replaceChildren($('#items'));
    const known = state.job && String(state.job.id) === id ? state.job : null;
    if (known) renderJob(known);
    else {
        $('#job-title').textContent = `Job ${shortId(id)}`;
        $('#job-meta').textContent = 'Loading…';
    }
    let job;
    try {
        job = await api.getJob(id);
    } catch (e) {
        $('#job-meta').textContent = '';
        showError(e, 'Opening the job');
        return;
    }
    if (currentRoute().id !== id) return;
    renderJob(job);
    if (!api.isSettled(job)) {
        let warned = false;
        state.stopWatch = api.watchJob(id, (j) => {
            if (currentRoute().id !== id) return;
            const was = state.job && state.job.state;
            renderJob(j);
            if (api.isFinal(j) && was !== j.state) {
                announce(`Job ${STATE_LABELS[j.state] || j.state}.`);
                if (j.state === 'done') toast('success', 'Job done', jobSummary(j));
            }
        }, (e) => {
            if (e.code === 'ENETWORK') {
                showOutage(true);
                return;
            }
            if (!warned) {
                warned = true;
                showError(e, 'Following the job');
            }
        }, () => showOutage(false));
    }
}

/** The server cannot be reached (since when) / is back: the page says so instead of an old ETA. */
function showOutage(down) {
    const el = $('#job-offline');
    if (down) {
        if (!state.offlineSince) state.offlineSince = Date.now();
        el.textContent = `The server cannot be reached since ${formatTime(state.offlineSince / 1000)}; ` +
            'retrying every second. The job goes on on the server.';
        el.hidden = false;
        $('#job-eta').textContent = 'server unreachable';
    } else if (state.offlineSince) {
        const s = Math.round((Date.now() - state.offlineSince) / 1000);
        state.offlineSince = 0;
        el.hidden = true;
        toast('success', 'Connected again', `The server is back after ${formatDuration(s)}.`);
        announce('The server is reachable again.');
    }
}

/** "Done with 1 failure" for a failed job where some images succeeded; the state otherwise. */
function jobBadge(job) {
    const c = jobCounts(job);
    if (job.state === 'failed' && c.done > 0) {
        return h('span', {class: 'badge state-partial'},
                 `Done with ${c.failed} failure${c.failed === 1 ? '' : 's'}`);
    }
    return stateBadge(job.state);
}
const barState = (job) => (job.state === 'failed' && jobCounts(job).done > 0 ? 'partial' : job.state);

/** Counts from the items when the job has them, else from the progress object (items_done
 * counts the images that ran, failed ones included). */
function jobCounts(job) {
    const p = job.progress || {};
    const items = job.items;
    if (items && items.length) {
        const n = (st) => items.filter((i) => i.state === st).length;
        return {total: items.length, done: n('done'), failed: n('failed'), cancelled: n('cancelled')};
    }
    const failed = p.items_failed || 0;
    return {total: p.items_total || 0, done: Math.max(0, (p.items_done || 0) - failed), failed,
            cancelled: p.items_cancelled || 0};
}

function jobSummary(job) {
    const c = jobCounts(job);
    let s = `${c.done} of ${c.total} image${c.total === 1 ? '' : 's'} done`;
    const running = (job.items || []).filter((i) => i.state === 'running').length;
    if (running && !api.isFinal(job)) s += `, ${running} running`;
    if (c.failed) s += `, ${c.failed} failed`;
    if (c.cancelled) s += `, ${c.cancelled} cancelled`;
    return s;
}

function renderJob(job) {
    state.job = job;
    const p = job.progress || {};
    const final = api.isFinal(job);
    // One definition of progress: the server's (cancelled images never count as done).
    let pct = Number.isFinite(p.percent) ? p.percent : 0;
    pct = Math.max(0, Math.min(100, pct));
    $('#job-title').textContent = job.name ? job.name : `Job ${shortId(job.id)}`;
    const title = $('#job-title');
    const badge = title.nextElementSibling && title.nextElementSibling.classList.contains('badge')
        ? title.nextElementSibling : null;
    if (badge) badge.remove();
    title.after(jobBadge(job));
    const meta = [];
    if (job.created) meta.push(`Started ${formatTime(job.created)}`);
    if (job.finished) meta.push(`finished ${formatTime(job.finished)}`);
    if (job.owner) meta.push(`by ${job.owner}`);
    meta.push(`output ${job.format ? FORMAT_NAMES[job.format] || job.format : 'same as input'}` +
              (job.quality && (job.format === 'jpeg' || job.format === 'webp') ? `, quality ${job.quality}` : ''));
    $('#job-meta').textContent = meta.join(' · ');
    $('#job-pipeline').textContent = job.pipeline || '(no operations: format conversion only)';
    const bar = $('#job-progress');
    bar.setAttribute('aria-valuenow', String(Math.round(pct)));
    const eta = !final && Number.isFinite(p.eta_s) && p.eta_s > 0 ? `about ${formatDuration(p.eta_s)} left` : '';
    bar.setAttribute('aria-valuetext', `${Math.round(pct)}%${eta ? `, ${eta}` : ''}`);
    bar.querySelector('.progress-fill').style.width = `${pct}%`;
    bar.className = `progress is-${barState(job)}`;
    $('#job-percent').textContent = `${pct >= 99.95 || pct === 0 ? Math.round(pct) : pct.toFixed(1)}%`;
    $('#job-eta').textContent = state.offlineSince ? 'server unreachable'
        : final ? (p.in_flight ? 'finishing the images in flight…' : jobBadge(job).textContent)
        : (eta || (job.state === 'queued' ? 'waiting for a worker' : 'estimating…'));
    $('#job-counts').textContent = jobSummary(job);
    const cancel = $('#job-cancel');
    cancel.hidden = final;
    const anyDone = (job.items || []).some((i) => i.state === 'done');
    $('#job-zip').hidden = !anyDone;
    $('#job-again').hidden = false;
    const retry = $('#job-retry');
    const again = (job.items || []).filter((i) => i.state === 'failed' || i.state === 'cancelled');
    retry.hidden = !api.isSettled(job) || !again.length;
    retry.textContent = `Retry ${again.length} image${again.length === 1 ? '' : 's'}`;
    const items = job.items || [];
    const failedItems = items.filter((i) => i.state === 'failed');
    const errors = [...new Set(failedItems.filter((i) => i.error).map((i) => i.error))];
    const errBox = $('#job-error');
    errBox.hidden = !failedItems.length;
    if (failedItems.length) {
        let head;
        if (failedItems.length === items.length && items.length > 1 && errors.length === 1) {
            head = 'Every image failed with the same error: ';
        } else if (failedItems.length === 1) {
            head = `${failedItems[0].name || 'One image'} failed: `;
        } else {
            head = `${failedItems.length} of ${items.length} images failed. `;
        }
        replaceChildren(errBox, h('strong', {}, head),
            errors.length === 1 ? errors[0] : 'Each one\'s error is shown in the list below.');
    }
    $('#items-summary').textContent = `${items.length} image${items.length === 1 ? '' : 's'}`;
    const tbody = $('#items');
    for (const item of items) {
        let row = itemRows.get(item.index);
        if (!row) {
            row = itemRow(job, item);
            itemRows.set(item.index, row);
            tbody.append(row.tr);
        }
        updateItemRow(row, job, item);
    }
}

function itemRow(job, item) {
    const view = h('button', {type: 'button', class: 'btn btn-small item-view',
                              onclick: () => openViewer(state.job, row.item)}, 'View');
    const dl = h('button', {type: 'button', class: 'btn btn-small item-download',
                            onclick: () => downloadResult(state.job, row.item)}, 'Download');
    const row = {
        item,
        thumb: emptyTile(),
        tr: h('tr', {dataset: {index: item.index}}),
        cells: {
            num: h('td', {class: 'num'}, String(item.index + 1)),
            name: h('td', {class: 'item-name'}),
            state: h('td', {}),
            dims: h('td', {class: 'nowrap'}),
            bytes: h('td', {class: 'nowrap'}),
            actions: h('td', {class: 'item-actions'}, view, dl),
        },
        view, dl,
    };
    row.tr.append(...Object.values(row.cells));
    return row;
}

function updateItemRow(row, job, item) {
    row.item = item;
    const c = row.cells;
    const name = item.name || `image ${item.index + 1}`;
    setItemThumb(row.thumb, job.id, item);
    replaceChildren(c.name, row.thumb, h('span', {class: 'item-filename', title: name}, name),
        item.state === 'failed' && item.error
            ? h('span', {class: 'item-error', role: 'note'}, item.error) : null);
    // Queued / running / done as the API says (it calls running only what the executor started),
    // with a large image's own progress while it runs.
    const ownPct = item.state === 'running' && Number.isFinite(item.percent)
        ? h('span', {class: 'item-percent muted small'}, `${Math.floor(item.percent)}%`) : null;
    replaceChildren(c.state, stateBadge(item.state), ownPct, item.cached ? h('span', {class: 'badge badge-quiet', title: 'Served from the result cache'}, 'cached') : null);
    const inDims = item.width ? formatDims(item.width, item.height) : '';
    const outDims = item.out_width ? formatDims(item.out_width, item.out_height) : '';
    c.dims.textContent = outDims && outDims !== inDims ? `${inDims} → ${outDims}` : inDims || '—';
    const bi = Number.isFinite(item.bytes_in) ? formatBytes(item.bytes_in) : '';
    const bo = Number.isFinite(item.bytes_out) && item.bytes_out > 0 ? formatBytes(item.bytes_out) : '';
    c.bytes.textContent = bo ? `${bi} → ${bo}` : bi || '—';
    const done = item.state === 'done';
    row.view.disabled = !done;
    row.dl.disabled = !done;
    row.view.setAttribute('aria-label', `View ${name}`);
    row.dl.setAttribute('aria-label', `Download the result of ${name}`);
    row.tr.className = `item-${item.state}`;
}

const EXT_BY_TYPE = {
    'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp', 'image/tiff': 'tif',
    'image/bmp': 'bmp', 'image/gif': 'gif', 'image/x-portable-anymap': 'pnm',
    'image/x-portable-pixmap': 'ppm', 'image/x-portable-graymap': 'pgm',
    'image/x-portable-bitmap': 'pbm',
};
const EXT_BY_FORMAT = {png: 'png', jpeg: 'jpg', webp: 'webp', tiff: 'tif', bmp: 'bmp', pnm: 'pnm'};

function resultName(job, item, type, given) {
    if (item.result_name) return item.result_name;
    if (given) return given;
    const base = (item.name || `image-${item.index + 1}`).replace(/\.[^.]*$/, '');
    const orig = /\.([^.]+)$/.exec(item.name || '');
    const ext = EXT_BY_FORMAT[job.format] || EXT_BY_TYPE[(type || '').split(';')[0]] ||
        (orig ? orig[1] : 'img');
    return `${base}.${ext}`;
}

async function fetchResult(job, item) {
    const url = item.result_url || api.resultUrl(job.id, item.index);
    const r = await api.download(url);
    return {blob: r.blob, type: r.type, name: resultName(job, item, r.type, r.filename)};
}

async function downloadResult(job, item) {
    try {
        const r = await fetchResult(job, item);
        saveBlob(r.blob, r.name);
        announce(`Downloading ${r.name}.`);
    } catch (e) {
        showError(e, 'Downloading the result');
    }
}

async function downloadZip() {
    const job = state.job;
    const btn = $('#job-zip');
    btn.disabled = true;
    const label = btn.textContent;
    btn.textContent = 'Preparing…';
    try {
        const r = await api.download(api.archiveUrl(job.id));
        saveBlob(r.blob, r.filename || `dip-job-${shortId(job.id)}.zip`);
    } catch (e) {
        showError(e, 'Downloading the archive');
    } finally {
        btn.disabled = false;
        btn.textContent = label;
    }
}

async function cancelCurrent() {
    const job = state.job;
    if (!job) return;
    const btn = $('#job-cancel');
    btn.disabled = true;
    btn.textContent = 'Cancelling…';
    try {
        const r = await api.cancelJob(job.id);
        if (r && r.id !== undefined && r.state) renderJob(r);
        else renderJob(await api.getJob(job.id));
        announce('Cancel requested.');
    } catch (e) {
        showError(e, 'Cancelling the job');
    } finally {
        btn.disabled = false;
        btn.textContent = 'Cancel job';
    }
}

/* ---- Viewer ---- */

const DISPLAYABLE = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/bmp']);
const objectUrls = [];

function track(url) {
    objectUrls.push(url);
    return url;
}

async function loadImage(url) {
    const img = new Image();
    img.src = url;
    await img.decode();
    return {width: img.naturalWidth, height: img.naturalHeight};
}

/** A displayable object URL for a blob, converting TIFF/PNM to PNG on the server. */
async function displayUrl(blob, type) {
    const t = (type || blob.type || '').split(';')[0];
    let shown = blob;
    if (!DISPLAYABLE.has(t)) shown = await api.processSync(blob, '', 'png');
    return track(URL.createObjectURL(shown));
}

function closeViewer() {
    $('#viewer-panel').hidden = true;
    state.viewing = null;
    while (objectUrls.length) URL.revokeObjectURL(objectUrls.pop());
}

async function openViewer(job, item) {
    closeViewer();
    const panel = $('#viewer-panel');
    panel.hidden = false;
    const name = item.name || `image ${item.index + 1}`;
    $('#viewer-title').textContent = `Compare: ${name}`;
    if (!state.viewer) {
        state.viewer = new Viewer();
        $('#viewer-host').append(state.viewer.el);
    }
    state.viewer.caption.textContent = 'Loading…';
    panel.scrollIntoView({behavior: 'smooth', block: 'start'});
    $('#viewer-title').focus({preventScroll: true});
    const token = {index: item.index};
    state.viewing = token;
    /* Previous / Next step from this image at once, not once it has loaded: Page Up then Page
     * Down in quick succession must come back here, not step from the image before. */
    if (state.viewerNav) state.viewerNav.update(job, item);
    try {
        const res = await fetchResult(job, item);
        token.blob = res.blob;
        token.name = res.name;
        const resUrl = await displayUrl(res.blob, res.type);
        const resDims = await loadImage(resUrl);
        let original = null;
        let note = '';
        const files = state.originals.get(String(job.id));
        const file = files && files[item.index];
        if (file) {
            try {
                const origUrl = await displayUrl(file, file.type);
                const d = await loadImage(origUrl);
                original = {url: origUrl, ...d, label: 'Original'};
            } catch {
                note = 'The original could not be shown in the browser.';
            }
        } else {
            // A past job, or after a reload: the server kept the input (GET .../input).
            try {
                const input = await api.download(api.inputUrl(job.id, item.index));
                const origUrl = await displayUrl(input.blob, input.type);
                const d = await loadImage(origUrl);
                original = {url: origUrl, ...d, label: 'Original'};
            } catch {
                note = 'The original could not be loaded from the server.';
            }
        }
        if (state.viewing !== token) return;
        const result = {url: resUrl, ...resDims, label: 'Result'};
        const dims = original && (original.width !== result.width || original.height !== result.height)
            ? `Original ${formatDims(original.width, original.height)}, result ${formatDims(result.width, result.height)}.`
            : `${formatDims(result.width, result.height)}.`;
        state.viewer.setImages(original, result,
                               [dims, note, 'Scroll or pinch to zoom, drag to pan.'].filter(Boolean).join(' '));
    } catch (e) {
        if (state.viewing === token) state.viewer.caption.textContent = 'The result could not be shown.';
        showError(e, 'Showing the result');
    }
}

/* ---- Jobs list ---- */

async function loadJobs() {
    let r;
    try {
        r = await api.listJobs();
    } catch (e) {
        showError(e, 'Loading the jobs');
        return;
    }
    const jobs = ((r && r.jobs) || []).slice();
    const time = (j) => {
        const d = j.created;
        return typeof d === 'number' ? d : Date.parse(d) / 1000 || 0;
    };
    jobs.sort((a, b) => time(b) - time(a));
    const shown = jobs.slice(0, 200); // a page, not thousands of rows every few seconds
    $('#jobs-more').hidden = jobs.length <= shown.length;
    $('#jobs-more').textContent = `Showing the newest ${shown.length} of ${jobs.length} jobs.`;
    const admin = Boolean(state.me && state.me.admin);
    $('#jobs-empty').hidden = jobs.length > 0;
    $('.jobs').hidden = jobs.length === 0;
    replaceChildren($('#jobs'), shown.map((job, row) => {
        const p = job.progress || {};
        const pct = Math.max(0, Math.min(100, p.percent || 0)); // the server's one figure
        const pctText = `${Math.round(pct)}%`;
        const n = p.items_total ?? (job.items || []).length;
        const failed = p.items_failed || 0;
        return h('tr', {class: `job-row job-${job.state}`},
            h('td', {class: 'job-cell'}, row < 30 ? jobThumb(job) : emptyTile(), // the newest have one
              h('a', {href: `#/jobs/${encodeURIComponent(job.id)}`, class: 'job-link'},
                job.name || shortId(job.id))),
            h('td', {class: 'nowrap'}, formatTime(job.created),
              admin && job.owner ? h('span', {class: 'job-owner muted'}, `by ${job.owner}`) : null),
            h('td', {class: 'pipeline-cell'}, h('code', {title: job.pipeline || ''},
                                                job.pipeline || '(conversion only)')),
            h('td', {class: 'nowrap'}, `${n}${failed ? ` (${failed} failed)` : ''}`),
            h('td', {}, jobBadge(job)),
            h('td', {}, h('div', {class: 'mini-progress', role: 'progressbar', 'aria-valuemin': '0',
                                  'aria-valuemax': '100', 'aria-valuenow': String(Math.round(pct)),
                                  'aria-label': `Job ${shortId(job.id)} progress`},
                          h('div', {class: `progress-fill is-${barState(job)}`, style: {width: `${pct}%`}})),
              h('span', {class: 'small muted'}, pctText)));
    }));
    // Whole rows open the job too (the link in the first cell is the keyboard route).
    for (const tr of $('#jobs').children) {
        tr.addEventListener('click', (e) => {
            if (e.target.closest('a')) return;
            tr.querySelector('a').click();
        });
    }
}

/* ---- Cluster ---- */

async function loadCluster() {
    let r;
    try {
        r = await api.getCluster();
    } catch (e) {
        replaceChildren($('#workers'));
        $('#cluster-note').textContent = e.status === 403 || e.status === 401
            ? 'The cluster panel is for administrators.' : '';
        if (e.status !== 403) showError(e, 'Loading the cluster');
        return false;
    }
    const workers = (r && r.workers) || [];
    $('#cluster-executor').textContent = r.executor ? `Executor: ${r.executor}` : '';
    const alive = workers.filter((w) => w.alive).length;
    const tasks = workers.reduce((s, w) => s + (w.tasks || 0), 0);
    const mp = workers.reduce((s, w) => s + (w.megapixels || 0), 0);
    const rate = (w) => (w.busy_s > 0 ? w.megapixels / w.busy_s : 0);
    const thr = workers.filter((w) => w.alive).reduce((s, w) => s + rate(w), 0);
    const stat = (label, value) => h('div', {class: 'stat'}, h('span', {class: 'stat-value'}, value),
                                     h('span', {class: 'stat-label'}, label));
    replaceChildren($('#cluster-stats'),
        stat('workers alive', `${alive} / ${workers.length}`),
        stat('tasks done', String(tasks)),
        stat('megapixels processed', mp.toFixed(1)),
        stat('throughput (alive workers)', `${thr.toFixed(1)} MP/s`));
    replaceChildren($('#workers'), workers.map((w) => h('tr', {class: w.alive ? '' : 'worker-lost'},
        h('td', {}, String(w.id)),
        h('td', {}, w.host || ''),
        h('td', {}, h('span', {class: `badge ${w.alive ? 'state-done' : 'state-failed'}`},
                      w.alive ? 'alive' : 'lost')),
        h('td', {class: 'num'}, String(w.tasks ?? 0)),
        h('td', {class: 'num'}, String(w.failures ?? 0)),
        h('td', {class: 'num'}, (w.megapixels || 0).toFixed(1)),
        h('td', {class: 'num'}, formatDuration(w.busy_s || 0) || '0 s'),
        h('td', {class: 'num'}, `${rate(w).toFixed(1)} MP/s`))));
    $('#cluster-note').textContent = `Updated ${new Date().toLocaleTimeString()}.`;
    return true;
}

/* ---- Routing ---- */

function currentRoute() {
    const hash = location.hash.replace(/^#\/?/, '');
    const parts = hash.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] === 'jobs' && parts[1]) return {name: 'job', id: parts[1]};
    if (parts[0] === 'jobs') return {name: 'jobs'};
    if (parts[0] === 'cluster') return {name: 'cluster'};
    return {name: 'new'};
}

function every(name, fn, ms) {
    clearInterval(state.timers[name]);
    state.timers[name] = setInterval(() => {
        if (!document.hidden) fn();
    }, ms);
}

function route() {
    const r = currentRoute();
    for (const t of Object.keys(state.timers)) clearInterval(state.timers[t]);
    if (r.name !== 'job') {
        stopWatching();
        closeViewer();
    }
    for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${r.name}`;
    if (state.preview) state.preview.setActive(r.name === 'new');
    $('#skip-pipeline').hidden = r.name !== 'new';
    for (const a of document.querySelectorAll('nav a')) {
        const on = a.dataset.route === r.name || (r.name === 'job' && a.dataset.route === 'jobs');
        if (on) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
    }
    const titles = {new: 'New job', jobs: 'Jobs', cluster: 'Cluster', job: `Job ${shortId(r.id)}`};
    document.title = `${titles[r.name]} · dip`;
    if (r.name === 'job') showJob(r.id);
    if (r.name === 'jobs') {
        loadJobs();
        every('jobs', loadJobs, 3000);
    }
    if (r.name === 'cluster') {
        loadCluster();
        every('cluster', loadCluster, 2000);
    }
    return r;
}

function focusView(r) {
    const target = {job: '#job-title', jobs: '#jobs-title', cluster: '#cluster-title'}[r.name];
    if (target) $(target).focus({preventScroll: false});
}

/* ---- Start ---- */

function start() {
    builder = new Builder({
        list: $('#steps'), select: $('#op-select'), add: $('#op-add'), text: $('#pipeline-text'),
        error: $('#pipeline-error'), status: $('#steps-status'), summary: $('#op-summary'),
    }, () => {
        updateSubmit();
        saveForm();
        if (state.preview) state.preview.optionsChanged();
    });
    builder.render();
    api.setTokenPrompt(openTokenDialog);
    setupDrop();
    setupOutput();
    setupForm(builder, () => state.preview && state.preview.optionsChanged());
    state.preview = new Preview(() => state.files, () => ({
        pipeline: $('#pipeline-text').value.trim(), format: $('#format').value,
        quality: $('#quality').value, valid: !builder.hasError(),
    }));
    $('#pipeline-text').closest('.panel').after(state.preview.el);
    state.preview.filesChanged();
    setupShortcuts({addFiles, isNewJob: () => currentRoute().name === 'new'});
    $('#job-again').after(h('button', {id: 'job-retry', class: 'btn', type: 'button', hidden: true,
                                       onclick: () => retryJob(state.job, showError)}, 'Retry'));
    state.viewerNav = setupViewerNav(() => state.job, (item) => openViewer(state.job, item));
    $('#token-button').addEventListener('click', async () => {
        const ok = await openTokenDialog('manage');
        if (ok) route();
    });
    $('#job-cancel').addEventListener('click', cancelCurrent);
    $('#job-zip').addEventListener('click', downloadZip);
    $('#job-again').addEventListener('click', () => {
        const job = state.job;
        if (!job) return;
        builder.setText(job.pipeline || '');
        $('#format').value = job.format || '';
        $('#format').dispatchEvent(new Event('change'));
        location.hash = '#/';
    });
    $('#viewer-close').addEventListener('click', () => {
        const idx = state.viewing && state.viewing.index;
        closeViewer();
        const row = itemRows.get(idx);
        if (row) row.view.focus();
    });
    $('#viewer-download').addEventListener('click', () => {
        const v = state.viewing;
        if (v && v.blob) saveBlob(v.blob, v.name);
    });
    $('#jobs-refresh').addEventListener('click', loadJobs);
    window.addEventListener('hashchange', () => focusView(route()));
    // Skip links move focus without touching the hash, which holds the route.
    for (const a of document.querySelectorAll('.skip-link')) {
        a.addEventListener('click', (e) => {
            const target = document.getElementById(a.getAttribute('href').slice(1));
            if (!target) return;
            e.preventDefault();
            target.focus();
            target.scrollIntoView({block: 'start'});
        });
    }
    document.addEventListener('keydown', (e) => {
        if (e.key === 'Escape' && !$('#viewer-panel').hidden && !$('#token-dialog').open &&
            document.activeElement && document.activeElement.closest('#viewer-panel')) {
            $('#viewer-close').click();
        }
    });
    route();
    refreshIdentity();
    loadOps();
}

start();
