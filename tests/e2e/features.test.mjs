// SPDX-License-Identifier: MIT
// End-to-end test of what image-tool users expect from the page (issue 10): the live preview
// (through POST /process on a downscaled copy, following the pipeline, debounced), saved
// pipelines, the form kept across a reload, named jobs, Ctrl+Enter, images pasted from the
// clipboard, result thumbnails in the job and the jobs list, failures.txt in the zip, Retry of
// cancelled and failed images from the stored inputs, before/after for a past job after a reload,
// Previous/Next in the viewer, and static files compressed and revalidated. A real `dip serve`
// driven by Debian's chromium; screenshots go to $DIP_BINARY_DIR/e2e-features-screenshots/.
// Exits 77 (skipped) only without chromium.

import {spawnSync, execFileSync} from 'node:child_process';
import {createRequire} from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const CHROMIUM = process.env.DIP_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) {
    console.log(`SKIP: ${CHROMIUM} not found (Debian: apt-get install chromium)`);
    process.exit(77);
}
const {HERE, PYTHON, log, startServer, stopServers, dumpServerLogs} = await import('./lib.mjs');
const SHOTS = path.join(process.env.DIP_BINARY_DIR || os.tmpdir(), 'e2e-features-screenshots');

function loadPlaywright() {
    const req = createRequire(path.join(HERE, 'package.json'));
    try {
        return req('playwright-core');
    } catch {
        const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {cwd: HERE, stdio: 'inherit'});
        if (r.status !== 0) throw new Error('npm ci failed in tests/e2e');
        return req('playwright-core');
    }
}

function makeImages(dir) {
    const script = String.raw`
import sys, cv2, numpy as np
d = sys.argv[1]
def scene(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.dstack([(x * 255 // w), (y * 255 // h), ((x + y) * 255 // (w + h))]).astype(np.uint8)
    for _ in range(12):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(10, min(w, h) // 4)), c, -1)
    cv2.putText(img, 'dip %d' % seed, (w // 10, h - h // 8), cv2.FONT_HERSHEY_SIMPLEX, w / 400, (20, 20, 20), max(2, w // 200))
    return img
for i, (w, h) in enumerate([(640, 480), (512, 384), (720, 540)], 1):
    cv2.imwrite('%s/a%d.png' % (d, i), scene(w, h, i))
good = open('%s/a1.png' % d, 'rb').read()
open('%s/corrupt.png' % d, 'wb').write(good[:len(good) // 2])
big = scene(2400, 1800, 9)
big[100:1700, 100:2300] //= 4
cv2.imwrite('%s/slow.png' % d, big)
`;
    execFileSync(PYTHON, ['-c', script, dir], {stdio: 'inherit'});
}

async function shot(page, name, opts = {}) {
    const file = path.join(SHOTS, `${name}.png`);
    await page.waitForTimeout(150);
    await page.screenshot({path: file, fullPage: !opts.viewport, animations: 'disabled'});
    log(`screenshot ${file}`);
}

async function jobId(page, not) {
    await page.waitForFunction((old) => /#\/jobs\/[^/]+$/.test(location.hash) &&
                               !location.hash.endsWith(`/${old}`), not || '');
    return decodeURIComponent(page.url().split('#/jobs/')[1]);
}

async function waitBadge(page, re) {
    await page.waitForFunction((src) => {
        const b = document.querySelector('#job-title + .badge');
        return b && new RegExp(src).test(b.textContent);
    }, re.source, {timeout: 90000});
    return page.locator('#job-title + .badge').textContent();
}

/* The preview's two images as pixel arrays, to check what the server made of the copy. */
function previewPixels(page) {
    return page.evaluate(() => {
        const px = (img) => {
            const c = document.createElement('canvas');
            c.width = img.naturalWidth;
            c.height = img.naturalHeight;
            const g = c.getContext('2d');
            g.drawImage(img, 0, 0);
            return {w: c.width, h: c.height, d: Array.from(g.getImageData(0, 0, c.width, c.height).data)};
        };
        const [a, b] = document.querySelectorAll('#preview-panel .preview-img');
        return {before: px(a), after: px(b)};
    });
}

async function main() {
    const {chromium} = loadPlaywright();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dip-e2e-features-'));
    const img = path.join(tmp, 'img');
    fs.mkdirSync(img);
    fs.mkdirSync(path.join(tmp, 'data'));
    fs.rmSync(SHOTS, {recursive: true, force: true});
    fs.mkdirSync(SHOTS, {recursive: true});
    const [srv] = await Promise.all([startServer('server', path.join(tmp, 'data')),
                                     Promise.resolve().then(() => makeImages(img))]);
    const I = (n) => path.join(img, n);
    const browser = await chromium.launch({
        executablePath: CHROMIUM, headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const problems = [];
    const pages = [];
    const watch = (page) => {
        pages.push(page);
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        page.on('console', (m) => {
            if (m.type() === 'error' && !/status of (400|404|409|422|429)/.test(m.text())) {
                problems.push(`console error: ${m.text()}`);
            }
        });
    };
    try {
        const ctx = await browser.newContext({viewport: {width: 1366, height: 900}, acceptDownloads: true});
        ctx.setDefaultTimeout(30000);
        const page = await ctx.newPage();
        watch(page);
        const processCalls = [];
        page.on('request', (r) => {
            if (r.method() === 'POST' && r.url().includes('/api/v1/process')) {
                processCalls.push({url: r.url(), bytes: (r.postDataBuffer() || Buffer.alloc(0)).length});
            }
        });
        await page.goto(`${srv.url}/`);
        await page.waitForSelector('#op-select option[value="gaussian"]', {state: 'attached'});

        log('static files');
        /* ---- Static files: compressed, with an ETag, revalidated (never no-store) ---- */
        const r = await ctx.request.get(`${srv.url}/app.js`, {headers: {'Accept-Encoding': 'gzip'}});
        const hd = r.headers();
        assert.equal(hd['cache-control'], 'no-cache', 'app.js is revalidated, not no-store');
        assert.ok(hd.etag, 'app.js has an ETag');
        const raw = await fetch(`${srv.url}/app.js`, {headers: {'Accept-Encoding': 'gzip'}});
        assert.equal(raw.headers.get('content-encoding'), 'gzip', 'app.js is sent compressed');
        const statics = [];
        page.on('response', (res) => {
            if (/\/(app|util|preview)\.js$|\/style\.css$/.test(res.url())) statics.push(res.status());
        });
        await page.reload();
        await page.waitForSelector('#op-select option[value="gaussian"]', {state: 'attached'});
        assert.ok(statics.length >= 3 && statics.every((s) => s === 304 || s === 200),
                  `statics after a reload: ${statics}`);
        assert.ok(statics.includes(304), `a reload revalidates the page's files (304): ${statics}`);

        log('live preview');
        /* ---- Live preview ---- */
        await page.setInputFiles('#file-input', [I('a1.png'), I('a2.png')]);
        await page.fill('#pipeline-text', 'invert');
        await page.waitForFunction(() => document.querySelector('#preview-panel').dataset.pipeline === 'invert',
                                   null, {timeout: 30000});
        let px = await previewPixels(page);
        assert.deepEqual([px.before.w, px.before.h], [512, 384], 'the preview runs on a copy downscaled to 512 px');
        assert.deepEqual([px.after.w, px.after.h], [512, 384]);
        for (let i = 0; i < px.before.d.length; i += 4 * 997) {
            for (let c = 0; c < 3; c++) {
                assert.equal(px.after.d[i + c], 255 - px.before.d[i + c], 'the preview shows the inverted copy');
            }
        }
        assert.match(await page.locator('#preview-status').textContent(), /a1\.png, downscaled to 512 × 384/);
        assert.ok(processCalls.at(-1).bytes < fs.statSync(I('a1.png')).size,
                  'the copy sent is smaller than the file');
        await shot(page, 'features-01-preview');
        // Typing a pipeline fast costs one or two requests, not one per key (debounced).
        const before = processCalls.length;
        await page.fill('#pipeline-text', '');
        await page.locator('#pipeline-text').pressSequentially('gray | threshold(t=100)', {delay: 25});
        await page.waitForFunction(() => document.querySelector('#preview-panel').dataset.pipeline ===
                                   'gray | threshold(t=100)', null, {timeout: 30000});
        const calls = processCalls.length - before;
        assert.ok(calls >= 1 && calls <= 3, `typing 23 characters made ${calls} preview requests`);
        px = await previewPixels(page);
        const values = new Set();
        for (let i = 0; i < px.after.d.length; i += 4 * 101) values.add(px.after.d[i]);
        assert.deepEqual([...values].sort((a, b) => a - b), [0, 255], 'threshold: black and white only');
        // A parameter changed in the builder updates it too, the field clicked straight from the
        // text, as a user does: leaving the text re-reads it into the builder, and the click must
        // still land in the field. (It used to draw the step cards anew on every blur: the field
        // under the pointer was replaced, the click and the keys after it went nowhere.) Twice:
        // with the text already read (nothing to redraw), and just typed (the cards are redrawn
        // and the field's twin in the new card takes the focus).
        const focusedParam = () => page.evaluate(() => {
            const a = document.activeElement;
            return a && a.type === 'number' && a.closest('#steps > li') ?
                `${a.closest('#steps > li').dataset.op} ${a.id.replace(/^step-\d+-/, '')}` : String(a && (a.id || a.tagName));
        });
        const tField = page.locator('#steps > li[data-op="threshold"] input[type="number"]').first();
        for (const [typed, value] of [[null, '200'], ['gray | threshold(t=120)', '210']]) {
            if (typed) await page.fill('#pipeline-text', typed); // and at once, within the debounce:
            else await page.focus('#pipeline-text');
            await tField.click();
            assert.equal(await focusedParam(), 'threshold t',
                         `the click on threshold's t lands in it (${typed || 'text already read'})`);
            await page.keyboard.press('Control+A');
            await page.keyboard.type(value);
            await page.waitForFunction((v) => new RegExp(`threshold\\(t=${v}\\)`).test(
                document.querySelector('#preview-panel').dataset.pipeline || ''), value, {timeout: 30000});
            assert.equal(await page.inputValue('#pipeline-text'), `gray | threshold(t=${value})`);
        }
        // Another image is chosen.
        await page.selectOption('#preview-image', {label: 'a2.png'});
        await page.waitForFunction(() => /a2\.png, downscaled to 512 × 384/.test(
            document.querySelector('#preview-status').textContent));
        // A text that does not parse is not sent.
        const n0 = processCalls.length;
        await page.fill('#pipeline-text', 'gaussian(sigma=');
        await page.waitForFunction(() => /Fix the pipeline/.test(document.querySelector('#preview-status').textContent));
        assert.equal(processCalls.length, n0, 'no request for a pipeline that does not parse');
        // The server's refusal is shown where the preview is.
        await page.fill('#pipeline-text', 'resize(width=60000, height=60000)');
        await page.waitForFunction(() => /No preview: .*max_pixels/i.test(document.querySelector('#preview-status').textContent),
                                   null, {timeout: 30000}).catch(async () => {
            throw new Error(`preview status: ${await page.locator('#preview-status').textContent()}`);
        });

        log('presets');
        /* ---- Presets ---- */
        await page.fill('#pipeline-text', 'invert');
        await page.selectOption('#format', 'webp');
        await page.fill('#quality', '70');
        await page.fill('#preset-name', 'Negative');
        await page.click('#preset-save');
        await page.fill('#pipeline-text', 'gray');
        await page.selectOption('#format', 'png');
        await page.selectOption('#preset-select', 'Negative');
        assert.equal(await page.inputValue('#pipeline-text'), 'invert', 'the preset sets the pipeline');
        assert.equal(await page.inputValue('#format'), 'webp', 'and the format');
        assert.equal(await page.inputValue('#quality'), '70', 'and the quality');
        await page.waitForFunction(() => document.querySelector('#preview-panel').dataset.pipeline === 'invert');
        await shot(page, 'features-02-presets');

        log('the form across a reload');
        /* ---- The form across a reload; a named job ---- */
        await page.fill('#pipeline-text', 'gaussian(sigma=1.5)');
        await page.selectOption('#format', 'png');
        await page.fill('#job-name', 'Holiday set');
        await page.reload();
        await page.waitForSelector('#op-select option[value="gaussian"]', {state: 'attached'});
        assert.equal(await page.inputValue('#pipeline-text'), 'gaussian(sigma=1.5)', 'pipeline kept');
        assert.equal(await page.inputValue('#format'), 'png', 'format kept');
        assert.equal(await page.inputValue('#job-name'), 'Holiday set', 'job name kept');
        await page.waitForFunction(() => document.querySelectorAll('#steps > li.step').length === 1);
        assert.equal(await page.locator('#preset-select option', {hasText: 'Negative'}).count(), 1, 'preset kept');

        log('paste from the clipboard');
        /* ---- Paste from the clipboard ---- */
        await page.evaluate(async () => {
            const c = document.createElement('canvas');
            c.width = 64;
            c.height = 48;
            const g = c.getContext('2d');
            g.fillStyle = '#c33';
            g.fillRect(0, 0, 64, 48);
            const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
            const dt = new DataTransfer();
            dt.items.add(new File([blob], 'image.png', {type: 'image/png'}));
            document.body.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true}));
        });
        await page.waitForSelector('.file-card .file-name:text-matches("^pasted-.*\\.png$")');

        log('ctrl+enter runs');
        /* ---- Ctrl+Enter runs; thumbnails; failures.txt ---- */
        await page.setInputFiles('#file-input', [I('a1.png'), I('corrupt.png')]);
        await page.waitForFunction(() => !document.querySelector('#run').disabled);
        await page.focus('#pipeline-text');
        await page.keyboard.press('Control+Enter');
        const id1 = await jobId(page);
        assert.equal(await page.locator('#job-title').textContent(), 'Holiday set', 'the job shows its name');
        assert.match(await waitBadge(page, /Done|Failed/), /Done with 1 failure/);
        assert.equal(await page.inputValue('#job-name').catch(() => ''), '', 'the name is not the next job\'s');
        await page.waitForFunction(() => [...document.querySelectorAll('#items img.thumb-mini')]
            .filter((i) => !i.hidden && i.complete && i.naturalWidth > 0).length === 2);
        const [zipDl] = await Promise.all([page.waitForEvent('download'), page.click('#job-zip')]);
        const zipFile = path.join(tmp, 'job.zip');
        await zipDl.saveAs(zipFile);
        const z = spawnSync(PYTHON, ['-c', `
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(json.dumps({'names': z.namelist(), 'failures': z.read('failures.txt').decode()}))
`, zipFile], {encoding: 'utf8'});
        assert.equal(z.status, 0, z.stderr);
        const zj = JSON.parse(z.stdout);
        assert.ok(zj.names.includes('failures.txt'), `zip entries: ${zj.names}`);
        assert.match(zj.failures, /corrupt\.png: failed: png: /, 'failures.txt says why');
        assert.ok(!/a1\.png/.test(zj.failures), 'a done image is not in failures.txt');
        /* Retry of the failed image: a new job from the stored input (no upload). */
        assert.equal(await page.locator('#job-retry').textContent(), 'Retry 1 image');
        const uploads = [];
        page.on('request', (rq) => {
            if (rq.method() === 'POST' && /\/api\/v1\/jobs$/.test(rq.url())) uploads.push(rq.url());
        });
        await page.click('#job-retry');
        await jobId(page, id1);
        await page.waitForFunction(() => document.querySelector('#job-title').textContent === 'retry of Holiday set');
        await waitBadge(page, /Failed/);
        assert.deepEqual(await page.locator('#items .item-filename').allTextContents(), ['corrupt.png']);
        assert.equal(uploads.length, 0, 'a retry uploads nothing');

        log('retry of cancelled images');
        /* ---- Retry of cancelled images ---- */
        // A slow job keeps the runner busy, so that the next job is still queued when it is
        // cancelled; then the slow one goes too, and Retry runs the cancelled images.
        await page.click('nav a[data-route="new"]');
        await page.click('#clear-files');
        await page.setInputFiles('#file-input', [I('a1.png'), I('a2.png'), I('a3.png')]);
        await page.fill('#pipeline-text', 'invert');
        await page.fill('#job-name', 'Three inverted');
        await page.waitForFunction(() => !document.querySelector('#run').disabled);
        const slow = await page.evaluate(async (bytes) => {
            const f = new FormData();
            f.append('pipeline', 'median(size=15) | bilateral');
            for (const n of ['slow1.png', 'slow2.png']) {
                f.append('file', new Blob([new Uint8Array(bytes)], {type: 'image/png'}), n);
            }
            return (await (await fetch('/api/v1/jobs', {method: 'POST', body: f})).json()).id;
        }, [...fs.readFileSync(I('slow.png'))]);
        await page.click('#run');
        const id2 = await jobId(page);
        await page.waitForSelector('#job-title + .badge:has-text("Queued")');
        await page.click('#job-cancel');
        await waitBadge(page, /Cancelled/);
        await page.evaluate((id) => fetch(`/api/v1/jobs/${id}`, {method: 'DELETE'}), slow);
        await page.waitForSelector('#job-retry:not([hidden])', {timeout: 60000});
        const cancelled = await page.locator('#items tr.item-cancelled').count();
        assert.ok(cancelled >= 1, 'images were cancelled');
        assert.equal(await page.locator('#job-retry').textContent(),
                     `Retry ${cancelled} image${cancelled === 1 ? '' : 's'}`);
        await shot(page, 'features-03-cancelled-with-retry');
        await page.click('#job-retry');
        const id3 = await jobId(page, id2);
        assert.equal(await waitBadge(page, /Done|Failed/), 'Done');
        assert.equal(await page.locator('#job-title').textContent(), 'retry of Three inverted');
        assert.equal(await page.locator('#items tr.item-done').count(), cancelled);
        await page.waitForFunction((n) => [...document.querySelectorAll('#items img.thumb-mini')]
            .filter((i) => !i.hidden && i.complete && i.naturalWidth > 0).length === n, cancelled);
        await shot(page, 'features-04-retry-done');

        log('before/after of a past job');
        /* ---- Before/after of a past job after a reload; Previous / Next ---- */
        await page.reload();
        await waitBadge(page, /Done/);
        /* The viewer's waits poll on a timer: under load (six busy loops) the default polling on
         * animation frames saw nothing for 30 s while both images had long been shown. */
        const shown = () => page.waitForFunction(() => [...document.querySelectorAll('.viewer-canvas img')]
            .filter((i) => i.complete && i.naturalWidth > 0).length === 2 &&
            !/Loading/.test(document.querySelector('.viewer-caption').textContent), null, {timeout: 30000, polling: 200});
        await page.locator('#items tr.item-done .item-view').first().click();
        await shown();
        const caption = await page.locator('.viewer-caption').textContent();
        assert.ok(!/only for jobs started|could not/.test(caption), `the original is shown: ${caption}`);
        if (cancelled > 1) {
            assert.equal(await page.locator('#viewer-pos').textContent(), `1 of ${cancelled}`);
            assert.equal(await page.locator('#viewer-prev').isDisabled(), true);
            const first = await page.locator('#viewer-title').textContent();
            await page.click('#viewer-next');
            await page.waitForFunction((t) => document.querySelector('#viewer-title').textContent !== t &&
                                       /^2 of/.test(document.querySelector('#viewer-pos').textContent), first, {polling: 200});
            await shown();
            const second = await page.locator('#viewer-title').textContent();
            /* Page Up then at once Page Down, before the first image has loaded: back on the
             * second image. (Before, the position moved only once an image had loaded, so the
             * Page Down stepped from the stale second image to the third: seen under load.) */
            await page.keyboard.press('PageUp');
            await page.waitForFunction((t) => document.querySelector('#viewer-title').textContent === t, first, {polling: 200});
            await page.keyboard.press('PageDown');
            await page.waitForFunction((t) => document.querySelector('#viewer-title').textContent !== t, first, {polling: 200});
            await shown();
            assert.equal(await page.locator('#viewer-title').textContent(), second);
            assert.equal(await page.locator('#viewer-pos').textContent(), `2 of ${cancelled}`);
        } else {
            log('only one image was cancelled: Previous/Next has nothing to walk');
        }
        await shown();
        await shot(page, 'features-05-viewer-past-job');
        // The original really is the stored input: same size as a1..a3 (not the result's).
        const inputStatus = await page.evaluate(async (id) =>
            (await fetch(`/api/v1/jobs/${id}/items/0/input`)).status, id3);
        assert.equal(inputStatus, 200);

        log('jobs list: names');
        /* ---- Jobs list: names and thumbnails ---- */
        await page.click('nav a[data-route="jobs"]');
        await page.waitForSelector(`#jobs a[href="#/jobs/${id1}"]:has-text("Holiday set")`);
        await page.waitForFunction(() => [...document.querySelectorAll('#jobs img.thumb-mini')]
            .filter((i) => !i.hidden && i.complete && i.naturalWidth > 0).length >= 2, null, {timeout: 30000});
        await shot(page, 'features-06-jobs-list');

        log('phone: the preview');
        /* ---- Phone: the preview fits ---- */
        const phone = await browser.newContext({viewport: {width: 390, height: 844}, deviceScaleFactor: 2});
        const pp = await phone.newPage();
        watch(pp);
        await pp.goto(`${srv.url}/`);
        await pp.waitForSelector('#op-select option[value="gaussian"]', {state: 'attached'});
        await pp.setInputFiles('#file-input', [I('a3.png')]);
        await pp.fill('#pipeline-text', 'gaussian(sigma=3)');
        await pp.waitForFunction(() => document.querySelector('#preview-panel').dataset.pipeline === 'gaussian(sigma=3)');
        const overflow = await pp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `the phone page scrolls sideways by ${overflow} px`);
        await pp.locator('#preview-panel').scrollIntoViewIfNeeded();
        await shot(pp, 'features-07-phone-preview', {viewport: true});
        await phone.close();

        assert.deepEqual(problems, [], 'errors in the browser console');
        log('all checks passed');
    } catch (e) {
        for (const [i, p] of pages.entries()) {
            if (p.isClosed()) continue;
            await p.screenshot({path: path.join(SHOTS, `failure-${i}.png`)}).catch(() => {});
            /* What the viewer holds, for a failed wait on it. */
            const v = await p.evaluate(() => ({
                panel: !document.querySelector('#viewer-panel') || document.querySelector('#viewer-panel').hidden ? 'hidden' : 'shown',
                pos: (document.querySelector('#viewer-pos') || {}).textContent,
                caption: (document.querySelector('.viewer-caption') || {}).textContent,
                rows: [...document.querySelectorAll('#items tr')].map((r) => `${r.dataset.index}:${r.className}`),
                imgs: [...document.querySelectorAll('.viewer-canvas img')].map((i) =>
                    `${i.src.slice(0, 40)} complete=${i.complete} natural=${i.naturalWidth}x${i.naturalHeight}`),
            })).catch((err) => `(${err.message})`);
            log(`page ${i} viewer: ${JSON.stringify(v)}`);
        }
        throw e;
    } finally {
        await browser.close().catch(() => {});
        await stopServers();
        fs.rmSync(tmp, {recursive: true, force: true});
    }
}

main().catch(async (e) => {
    console.error(e);
    dumpServerLogs();
    await stopServers();
    process.exit(1);
});
