// SPDX-License-Identifier: MIT
// The HTTP API client: JSON requests, the multipart upload (with upload progress), job events
// over SSE with a polling fallback, and the bearer token. A 401 answer asks the page for a token
// (through the prompt set with setTokenPrompt) and retries; every other failure becomes an
// ApiError carrying the server's error code and message.

const TOKEN_KEY = 'dip.token';
const BASE = '/api/v1';

export class ApiError extends Error {
    constructor(status, code, message) {
        super(message);
        this.name = 'ApiError';
        this.status = status;
        this.code = code;
    }
}

let tokenPrompt = null;
/** fn(reason: 'required'|'rejected', err: ApiError) -> Promise<boolean> (true: a token was set). */
export function setTokenPrompt(fn) {
    tokenPrompt = fn;
}

export function getToken() {
    try {
        return localStorage.getItem(TOKEN_KEY) || '';
    } catch {
        return '';
    }
}

export function setToken(token) {
    try {
        if (token) localStorage.setItem(TOKEN_KEY, token);
        else localStorage.removeItem(TOKEN_KEY);
    } catch {
        /* storage disabled: the token lives for this page only */
    }
    memToken = token || '';
}
let memToken = '';
function token() {
    return getToken() || memToken;
}

function errorFromBody(status, statusText, text) {
    let code = `HTTP${status}`;
    let message = statusText || `the server answered ${status}`;
    try {
        const body = JSON.parse(text);
        if (body && body.error) {
            code = body.error.code || code;
            message = body.error.message || message;
        }
    } catch {
        if (text && text.length < 300 && !/^\s*</.test(text)) message = text.trim();
    }
    return new ApiError(status, code, message);
}

async function errorFrom(res) {
    let text = '';
    try {
        text = await res.text();
    } catch {
        /* body unreadable: keep the status */
    }
    return errorFromBody(res.status, res.statusText, text);
}

/* Runs send() until it is not a 401 that a new token could fix. send(token) returns
 * {status, error?: ApiError, value?}. */
async function withAuth(send) {
    for (let attempt = 0; ; attempt++) {
        const tok = token();
        const r = await send(tok);
        if (r.status !== 401) return r;
        if (!tokenPrompt || attempt >= 5) throw r.error;
        const ok = await tokenPrompt(tok ? 'rejected' : 'required', r.error);
        if (!ok) throw r.error;
    }
}

/**
 * request('GET', '/jobs') -> parsed JSON. opts: {body, headers, raw: true (returns the Response),
 * signal}. Paths are relative to /api/v1 unless they start with '/api' or '/healthz'.
 */
export async function request(method, path, opts = {}) {
    const url = path.startsWith('/api') || path.startsWith('/healthz') ? path : BASE + path;
    const r = await withAuth(async (tok) => {
        const headers = new Headers(opts.headers || {});
        if (tok) headers.set('Authorization', `Bearer ${tok}`);
        let res;
        try {
            res = await fetch(url, {method, body: opts.body, headers, signal: opts.signal,
                                    cache: 'no-store'});
        } catch (e) {
            if (e.name === 'AbortError') throw e;
            throw new ApiError(0, 'ENETWORK', 'Cannot reach the server. Check that dip serve is ' +
                               'running and the network is up.');
        }
        if (res.ok) return {status: res.status, value: res};
        return {status: res.status, error: await errorFrom(res)};
    });
    if (r.error) throw r.error;
    const res = r.value;
    if (opts.raw) return res;
    if (res.status === 204) return null;
    const text = await res.text();
    if (!text) return null;
    try {
        return JSON.parse(text);
    } catch {
        throw new ApiError(res.status, 'EBADJSON', 'The server sent a reply the page cannot read.');
    }
}

/** Fetches a binary resource (result image, archive) -> {blob, filename}. */
export async function download(url, {signal} = {}) {
    const res = await request('GET', url, {raw: true, signal});
    const blob = await res.blob();
    let filename = null;
    const cd = res.headers.get('Content-Disposition') || '';
    const m = /filename\*=UTF-8''([^;]+)/i.exec(cd) || /filename="?([^";]+)"?/i.exec(cd);
    if (m) {
        try {
            filename = decodeURIComponent(m[1]);
        } catch {
            filename = m[1];
        }
    }
    return {blob, filename, type: res.headers.get('Content-Type') || blob.type};
}

/** POST /jobs with upload progress. fields: {pipeline, format, quality}; files: File[].
 * onProgress(fraction). Resolves to the job object. */
export async function createJob(files, fields, onProgress) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) {
        if (v !== undefined && v !== null) form.append(k, String(v));
    }
    for (const f of files) form.append('file', f, f.name);
    const r = await withAuth((tok) => new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open('POST', `${BASE}/jobs`);
        if (tok) xhr.setRequestHeader('Authorization', `Bearer ${tok}`);
        xhr.upload.onprogress = (e) => {
            if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
        };
        xhr.onload = () => {
            if (xhr.status >= 200 && xhr.status < 300) {
                try {
                    resolve({status: xhr.status, value: JSON.parse(xhr.responseText)});
                } catch {
                    reject(new ApiError(xhr.status, 'EBADJSON',
                                        'The server sent a reply the page cannot read.'));
                }
            } else {
                resolve({status: xhr.status,
                         error: errorFromBody(xhr.status, xhr.statusText, xhr.responseText)});
            }
        };
        xhr.onerror = () => reject(new ApiError(0, 'ENETWORK', 'The upload failed: the ' +
                                               'connection to the server was lost.'));
        xhr.onabort = () => reject(new ApiError(0, 'EABORT', 'The upload was stopped.'));
        xhr.send(form);
    }));
    if (r.error) throw r.error;
    return r.value;
}

export const getOps = () => request('GET', '/ops');
export const getLimits = () => request('GET', '/limits');
export const whoami = () => request('GET', '/whoami');
export const listJobs = () => request('GET', '/jobs');
export const getJob = (id) => request('GET', `/jobs/${encodeURIComponent(id)}`);
/* POST .../cancel, not DELETE: a DELETE that arrives just after the job finished deletes it. */
export const cancelJob = (id) => request('POST', `/jobs/${encodeURIComponent(id)}/cancel`);
export const getCluster = () => request('GET', '/cluster');
export const resultUrl = (id, n) => `${BASE}/jobs/${encodeURIComponent(id)}/results/${n}`;
export const archiveUrl = (id) => `${BASE}/jobs/${encodeURIComponent(id)}/archive.zip`;
export const inputUrl = (id, n) => `${BASE}/jobs/${encodeURIComponent(id)}/items/${n}/input`;
export const retryJob = (id) => request('POST', `/jobs/${encodeURIComponent(id)}/retry`);

/** Runs a pipeline synchronously on one image (used to turn TIFF/PNM into PNG for display). */
export async function processSync(blob, pipeline, format) {
    const q = new URLSearchParams({pipeline, format});
    const res = await request('POST', `/process?${q}`, {body: blob, raw: true,
        headers: {'Content-Type': 'application/octet-stream'}});
    return res.blob();
}

const FINAL = new Set(['done', 'failed', 'cancelled']);
export const isFinal = (job) => FINAL.has(job && job.state);
/** Final, and no image of it still in the server's hands: after a cancel an image in flight may
 * still end done, so a watcher keeps going until the server says `in_flight: false`. */
export const isSettled = (job) => isFinal(job) && !(job.progress && job.progress.in_flight);

/**
 * Follows a job live: onUpdate(job) for every change, until the job is final. Uses SSE
 * (the token travels as ?access_token= since EventSource cannot send headers) and falls back
 * to polling GET /jobs/{id} once a second when the event stream fails. Returns stop().
 */
export function watchJob(id, onUpdate, onError, onBack) {
    let stopped = false;
    let es = null;
    let timer = null;
    let lastSeen = 0;
    let down = false; // the last request could not reach the server

    const stop = () => {
        stopped = true;
        if (es) es.close();
        es = null;
        clearTimeout(timer);
    };
    const deliver = (job) => {
        if (stopped || !job) return;
        lastSeen = Date.now();
        if (down) {
            down = false;
            if (onBack) onBack();
        }
        onUpdate(job);
        if (isSettled(job)) stop();
    };
    const poll = async () => {
        if (stopped) return;
        try {
            deliver(await getJob(id));
        } catch (e) {
            if (e.code === 'ENETWORK') down = true;
            if (onError) onError(e);
            if (e.status === 404 || e.status === 401 || e.status === 403) {
                stop();
                return;
            }
        }
        if (!stopped) timer = setTimeout(poll, 1000);
    };
    const startSse = () => {
        if (typeof EventSource === 'undefined') return poll();
        const tok = token();
        const q = tok ? `?access_token=${encodeURIComponent(tok)}` : '';
        es = new EventSource(`${BASE}/jobs/${encodeURIComponent(id)}/events${q}`);
        const onData = (ev) => {
            if (!ev.data) return;
            try {
                deliver(JSON.parse(ev.data));
            } catch {
                /* not a job object (e.g. a comment or heartbeat) */
            }
        };
        es.addEventListener('progress', onData);
        es.addEventListener('message', onData);
        es.addEventListener('end', (ev) => {
            onData(ev);
            if (es) es.close();
            es = null;
            // The final state comes from the job itself, so a short 'end' event is enough.
            if (!stopped) poll();
        });
        es.onerror = () => {
            // EventSource would retry by itself, but gives no status code: a 401 or 404 looks
            // like a dropped connection. Polling surfaces the real error and always works.
            if (es) es.close();
            es = null;
            if (!stopped) poll();
        };
    };
    startSse();
    // Guard against a stream that stays open but silent (a proxy buffering events).
    const watchdog = async () => {
        if (stopped) return;
        if (es && Date.now() - lastSeen > 5000) {
            try {
                deliver(await getJob(id));
            } catch {
                /* the stream or the next check reports it */
            }
        }
        if (!stopped) setTimeout(watchdog, 2500);
    };
    lastSeen = Date.now();
    setTimeout(watchdog, 2500);
    return stop;
}
