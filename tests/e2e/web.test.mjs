// SPDX-License-Identifier: MIT
// End-to-end test of the web page: a real `dip serve` (the binary in $DIP) on a free loopback
// port with a temporary data folder, driven by Debian's chromium through playwright-core. It
// uploads images, builds a pipeline with the builder, follows the job live, checks a downloaded
// result and the zip against the CLI's output, cancels a long job, shows a corrupt file's error,
// and walks the 401/token flow on a second server that has a token. Screenshots of the main
// screens go to $DIP_BINARY_DIR/e2e-screenshots/. Exits 77 (skipped) only without chromium.

import {spawnSync, execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
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
const {HERE, SRC, DIP, PYTHON, log, startServer, stopServer, stopServers, dumpServerLogs} =
    await import('./lib.mjs');
const SHOTS = path.join(process.env.DIP_BINARY_DIR || os.tmpdir(), 'e2e-screenshots');

/* playwright-core comes from tests/e2e/node_modules (npm ci, as the set-up step runs it). */
function loadPlaywright() {
    const req = createRequire(path.join(HERE, 'package.json'));
    try {
        return req('playwright-core');
    } catch {
        log('playwright-core missing: npm ci in tests/e2e');
        const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {cwd: HERE, stdio: 'inherit'});
        if (r.status !== 0) throw new Error('npm ci failed in tests/e2e (try: npm ci --prefix tests/e2e)');
        return req('playwright-core');
    }
}

const sha = (buf) => createHash('sha256').update(buf).digest('hex');

/* ---- Test images (OpenCV through Debian's python3) ---- */

function makeImages(dir) {
    const script = String.raw`
import sys, struct, zlib, cv2, numpy as np
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
for i in range(1, 17):
    cv2.imwrite('%s/big%d.png' % (d, i), scene(1000, 1000, 10 + i))
cv2.imwrite('%s/pic.tif' % d, scene(300, 200, 7))
# A phone photo stored 120 x 60 with EXIF Orientation 6 (turn 90 degrees clockwise to view).
jpg = cv2.imencode('.jpg', scene(120, 60, 9))[1].tobytes()
app1 = b'Exif\0\0II*\0' + struct.pack('<IHHHIHHI', 8, 1, 0x0112, 3, 1, 6, 0, 0)
open('%s/rot.jpg' % d, 'wb').write(jpg[:2] + b'\xff\xe1' + struct.pack('>H', len(app1) + 2) + app1 + jpg[2:])
good = open('%s/a1.png' % d, 'rb').read()
open('%s/corrupt.png' % d, 'wb').write(good[:len(good) // 2])
open('%s/junk.png' % d, 'wb').write(b'this is a text file, not an image\n' * 8)
ihdr = struct.pack('>IIBBBBB', 70000, 1000, 8, 2, 0, 0, 0)
chunk = lambda t, b: struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b))
open('%s/huge.png' % d, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IEND', b''))
`;
    execFileSync(PYTHON, ['-c', script, dir], {stdio: 'inherit'});
}

/* ---- Page helpers ---- */

async function shot(page, name, opts = {}) {
    const file = path.join(SHOTS, `${name}.png`);
    if (!opts.keepScroll) await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(150); // let transitions settle
    await page.screenshot({path: file, fullPage: !opts.viewport, animations: 'disabled'});
    log(`screenshot ${path.relative(process.cwd(), file)}`);
}

async function download(page, click, dir, name) {
    const [dl] = await Promise.all([page.waitForEvent('download'), click()]);
    const file = path.join(dir, name || dl.suggestedFilename());
    await dl.saveAs(file);
    return {file, suggested: dl.suggestedFilename(), bytes: fs.readFileSync(file)};
}

function stepCard(page, opName) {
    return page.locator(`#steps > li[data-op="${opName}"]`);
}

async function addOp(page, name) {
    await page.selectOption('#op-select', name);
    await page.click('#op-add');
    await stepCard(page, name).waitFor();
}

async function waitFinal(page) {
    await page.waitForFunction(() => {
        const b = document.querySelector('#job-title + .badge');
        return b && /Done|Failed|Cancelled/.test(b.textContent);
    }, null, {timeout: 60000});
    return page.locator('#job-title + .badge').textContent();
}

async function jobId(page) {
    await page.waitForURL(/#\/jobs\/[^/]+$/);
    return decodeURIComponent(page.url().split('#/jobs/')[1]);
}

async function readZip(file) {
    const r = spawnSync(PYTHON, ['-c', `
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}))
`, file], {encoding: 'utf8'});
    assert.equal(r.status, 0, `zip unreadable: ${r.stderr}`);
    return JSON.parse(r.stdout);
}

/* ---- The test ---- */

async function main() {
    const {chromium} = loadPlaywright();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dip-e2e-'));
    const img = path.join(tmp, 'img');
    const dl = path.join(tmp, 'downloads');
    fs.mkdirSync(img);
    fs.mkdirSync(dl);
    fs.rmSync(SHOTS, {recursive: true, force: true});
    fs.mkdirSync(SHOTS, {recursive: true});

    fs.mkdirSync(path.join(tmp, 'data1'));
    fs.mkdirSync(path.join(tmp, 'data2'));
    const tokenOut = execFileSync(DIP, ['token', 'create', 'alice', '--data', path.join(tmp, 'data2')],
                                  {encoding: 'utf8'});
    const token = tokenOut.trim().split('\n').pop().trim();
    assert.match(token, /^\S{16,}$/, `no token printed: ${tokenOut}`);
    const token2 = execFileSync(DIP, ['token', 'create', 'bob', '--data', path.join(tmp, 'data2')],
                                {encoding: 'utf8'}).trim().split('\n').pop().trim();
    let [open, locked] = await Promise.all([
        startServer('server (no tokens)', path.join(tmp, 'data1')),
        startServer('server (token required)', path.join(tmp, 'data2')),
        Promise.resolve().then(() => makeImages(img)),
    ]);
    const I = (n) => path.join(img, n);

    const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        // launch() gives chromium a fresh temporary --user-data-dir of its own each time.
    });
    const problems = [];
    let outage = false; // while the test has stopped a server on purpose: refused requests expected
    const pages = [];
    const consoleLog = [];
    const watch = (page) => {
        pages.push(page);
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        page.on('console', (m) => consoleLog.push(`${m.type()}: ${m.text()}`));
        page.on('requestfailed', (r) => consoleLog.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
        page.on('response', (r) => {
            if (r.status() >= 400) consoleLog.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
        });
        page.on('console', (m) => {
            if (m.type() === 'error' && !/status of (401|404|409|400|413|422|415)/.test(m.text()) &&
                !(outage && /ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET|ERR_INCOMPLETE_CHUNKED_ENCODING/.test(m.text()))) {
                problems.push(`console error: ${m.text()}`);
            }
        });
    };
    try {
        const ctx = await browser.newContext({viewport: {width: 1366, height: 900}, acceptDownloads: true});
        ctx.setDefaultTimeout(30000);
        const page = await ctx.newPage();
        watch(page);
        const eventRequests = [];
        page.on('request', (r) => {
            if (/\/events(\?|$)/.test(r.url())) eventRequests.push(r.url());
        });

        /* Empty page. */
        await page.goto(`${open.url}/`);
        await page.waitForSelector('#op-select option[value="gaussian"]', {state: 'attached'});
        assert.equal(await page.locator('#run').isDisabled(), true, 'Run is enabled without images');
        await shot(page, '01-empty');

        /* Every form control has an accessible name. */
        const unlabelled = await page.evaluate(() => [...document.querySelectorAll(
            '#view-new input, #view-new select, #view-new textarea, #view-new button')]
            .filter((el) => el.getAttribute('aria-hidden') !== 'true' && el.type !== 'file')
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') &&
                    !el.getAttribute('aria-labelledby') && !el.textContent.trim())
            .map((el) => el.id || el.outerHTML.slice(0, 60)));
        assert.deepEqual(unlabelled, [], 'controls without a label');

        /* Files: three through the picker; a junk file, an oversized header and a TIFF dropped. */
        log('adding files');
        await page.setInputFiles('#file-input', [I('a1.png'), I('a2.png'), I('a3.png')]);
        const dropped = ['junk.png', 'huge.png', 'pic.tif'].map((n) => ({
            name: n, b64: fs.readFileSync(I(n)).toString('base64'),
        }));
        await page.evaluate((files) => {
            const dt = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], f.name));
            }
            const zone = document.getElementById('drop');
            for (const type of ['dragenter', 'dragover', 'drop']) {
                zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
            }
        }, dropped);
        await page.waitForFunction(() => document.querySelectorAll('.file-card canvas').length === 3 &&
            [...document.querySelectorAll('.file-meta')].every((m) => !/reading/.test(m.textContent)));
        const card = (n) => page.locator('.file-card', {has: page.locator('.file-name', {hasText: n})});
        assert.match(await card('a1.png').locator('.file-meta').textContent(), /PNG · .*KiB · 640 × 480/);
        assert.match(await card('a2.png').locator('.file-meta').textContent(), /512 × 384/);
        assert.match(await card('junk.png').textContent(), /Will not be uploaded.*unknown first bytes/s);
        assert.match(await card('huge.png').textContent(), /70000 × 1000 is over the limit of 65535/);
        assert.match(await card('pic.tif').locator('.file-meta').textContent(), /TIFF · .* · 300 × 200/);
        assert.equal(await card('pic.tif').locator('canvas').count(), 0, 'the browser cannot draw TIFF');
        assert.match(await page.locator('#submit-hint').textContent(), /4 images will be processed, 2 skipped/);
        await shot(page, '02-files-added');
        for (const n of ['junk.png', 'huge.png', 'pic.tif']) {
            await page.getByRole('button', {name: `Remove ${n}`}).click();
        }
        assert.equal(await page.locator('.file-card').count(), 3);
        /* Bug 9: the same files added again are skipped, with a warning. */
        await page.setInputFiles('#file-input', [I('a1.png'), I('a2.png')]);
        await page.waitForSelector('.toast:has-text("Skipped 2 duplicates")');
        assert.match(await page.locator('.toast', {hasText: 'Skipped 2 duplicates'}).textContent(),
                     /Already in the list: a1\.png, a2\.png/);
        assert.equal(await page.locator('.file-card').count(), 3);
        /* Bug 5: a photo turned by its EXIF orientation: the card gives its sides as shown (and
         * as the server processes it), and the thumbnail is turned, not squashed. */
        await page.setInputFiles('#file-input', [I('rot.jpg')]);
        await card('rot.jpg').locator('canvas').waitFor();
        assert.match(await card('rot.jpg').locator('.file-meta').textContent(), /JPEG · .* · 60 × 120/);
        const rotThumb = await card('rot.jpg').locator('canvas').evaluate((c) => [c.width, c.height]);
        assert.deepEqual(rotThumb, [60, 120], 'the turned photo\'s thumbnail keeps its shape');
        await page.getByRole('button', {name: 'Remove rot.jpg'}).click();
        assert.equal(await page.locator('.file-card').count(), 3);

        /* Pipeline builder: add, set, reorder from the keyboard, add and remove. */
        log('building the pipeline');
        await addOp(page, 'hsv');
        const focused = await page.evaluate(() => document.activeElement.id);
        assert.match(focused, /-h$/, 'focus moves to the new step\'s first input');
        await stepCard(page, 'hsv').locator('input[type=number][id$="-h"]').fill('60');
        await addOp(page, 'gaussian');
        await stepCard(page, 'gaussian').locator('input[type=number][id$="-size"]').fill('9');
        await page.getByRole('button', {name: 'Move gaussian up'}).focus();
        await page.keyboard.press('Enter');
        assert.match(await page.locator('#steps > li').first().textContent(), /gaussian/);
        await addOp(page, 'flip');
        await stepCard(page, 'flip').locator('select').selectOption('v');
        assert.equal(await page.inputValue('#pipeline-text'), 'gaussian(size=9) | hsv(h=60) | flip(axis=v)');
        await page.getByRole('button', {name: 'Remove flip'}).click();
        const pipeline = await page.inputValue('#pipeline-text');
        assert.equal(pipeline, 'gaussian(size=9) | hsv(h=60)');
        /* Two-way: the text drives the builder, and mistakes are shown. */
        await page.fill('#pipeline-text', 'gaussian(size=9) | hsv(h=60) | rotate(angle=180)');
        await page.waitForFunction(() => document.querySelectorAll('#steps > li.step').length === 3);
        assert.equal(await stepCard(page, 'rotate').locator('select').inputValue(), '180');
        await page.fill('#pipeline-text', 'gausian(size=9)');
        await page.waitForSelector('#pipeline-error:not([hidden])');
        assert.match(await page.locator('#pipeline-error').textContent(), /unknown operation 'gausian' \(did you mean gaussian/);
        await page.fill('#pipeline-text', pipeline);
        await page.waitForSelector('#pipeline-error', {state: 'hidden'});
        assert.equal(await page.locator('#steps > li.step').count(), 2);
        await page.selectOption('#format', 'png');
        /* Bug 12: "Quality 90" is not highlighted while disabled (PNG takes none); the pipeline
         * placeholder reads as an example, not a value. */
        assert.equal(await page.locator('#quality').isDisabled(), true);
        const q = await page.evaluate(() => {
            const css = (sel, pseudo) => getComputedStyle(document.querySelector(sel), pseudo);
            const probe = document.createElement('span');
            probe.style.color = 'var(--accent)';
            document.body.append(probe);
            const accent = getComputedStyle(probe).color;
            probe.remove();
            return {value: css('#quality-value').color, accent,
                    placeholder: document.querySelector('#pipeline-text').placeholder,
                    phStyle: css('#pipeline-text', '::placeholder').fontStyle};
        });
        assert.notEqual(q.value, q.accent, 'disabled quality shown in the accent colour');
        assert.match(q.placeholder, /^for example: /);
        assert.equal(q.phStyle, 'italic');
        await shot(page, '03-pipeline-built');

        /* Run and follow the job to 100 %. */
        log('running the job');
        await page.click('#run');
        const id1 = await jobId(page);
        assert.equal(await waitFinal(page), 'Done');
        assert.equal(await page.getAttribute('#job-progress', 'aria-valuenow'), '100');
        assert.equal(await page.locator('#job-percent').textContent(), '100%');
        assert.equal(await page.locator('#items tr .badge', {hasText: 'Done'}).count(), 3);
        // (Whether the page follows a job over SSE is checked on the slow job below: this one can
        // end in 50 ms, before the page subscribes, and the page then reads it done.)

        /* A downloaded result is byte-identical to the CLI's output. */
        const got = await download(page, () => page.locator('#items tr').first().locator('.item-download').click(), dl, 'result-a1.png');
        assert.equal(got.suggested, 'a1.png');
        const cli = path.join(tmp, 'cli-a1.png');
        execFileSync(DIP, ['process', '-p', pipeline, '-o', cli, I('a1.png')], {stdio: 'pipe'});
        assert.ok(got.bytes.equals(fs.readFileSync(cli)), 'web result differs from `dip process` output');
        log(`result a1.png: ${got.bytes.length} bytes, identical to the CLI`);

        /* The zip holds every result, each identical to the API's. */
        const zip = await download(page, () => page.click('#job-zip'), dl);
        const entries = await readZip(zip.file);
        assert.deepEqual(Object.keys(entries).sort(), ['a1.png', 'a2.png', 'a3.png']);
        assert.equal(entries['a1.png'], sha(fs.readFileSync(cli)));
        for (let n = 0; n < 3; n++) {
            const r = await fetch(`${open.url}/api/v1/jobs/${id1}/results/${n}`);
            assert.equal(r.status, 200);
            assert.equal(entries[`a${n + 1}.png`], sha(Buffer.from(await r.arrayBuffer())));
        }
        log(`zip ${zip.suggested}: ${Object.keys(entries).join(', ')}`);

        /* Compare view: slider, zoom and side by side. */
        await page.locator('#items tr').first().locator('.item-view').click();
        await page.waitForFunction(() => {
            const imgs = document.querySelectorAll('.viewer-canvas img');
            return imgs.length === 2 && [...imgs].every((i) => i.complete && i.naturalWidth > 0);
        });
        assert.equal(await page.locator('.viewer-caption').textContent().then((t) => /640 × 480/.test(t)), true);
        assert.doesNotMatch(await page.locator('.viewer-caption').textContent(), / {2}/, 'double space in the caption');
        const z0 = await page.locator('.zoom-label').textContent();
        await page.getByRole('button', {name: 'Zoom in'}).click();
        assert.notEqual(await page.locator('.zoom-label').textContent(), z0, 'zoom changes the scale');
        await page.getByRole('button', {name: 'Fit'}).click();
        await page.locator('.split-range').focus();
        await page.keyboard.press('ArrowLeft');
        assert.equal(await page.locator('.split-range').inputValue(), '49');
        for (let i = 0; i < 14; i++) await page.keyboard.press('ArrowLeft');
        await page.locator('#viewer-panel').scrollIntoViewIfNeeded();
        await page.evaluate(() => document.getElementById('viewer-panel').scrollIntoView({block: 'end'}));
        await shot(page, '05-results-compare', {viewport: true, keepScroll: true});
        await page.getByRole('button', {name: 'Side by side'}).click();
        await page.locator('.viewer-stage').focus();
        await page.keyboard.press('+');
        await page.keyboard.press('+');
        await page.evaluate(() => document.getElementById('viewer-panel').scrollIntoView({block: 'end'}));
        await shot(page, '05b-results-side-by-side', {viewport: true, keepScroll: true});

        /* Errors: a pipeline the server refuses, then a corrupt file. */
        log('errors');
        await page.click('#job-again'); // "Use this pipeline": back to a new job with its settings
        await page.waitForSelector('#view-new:not([hidden])');
        assert.equal(await page.inputValue('#pipeline-text'), pipeline);
        assert.equal(await page.inputValue('#format'), 'png');
        await page.fill('#pipeline-text', 'gausian(size=9)');
        await page.waitForSelector('#pipeline-error:has-text("Pipeline text")'); // seen before sending
        await page.click('#run');
        await page.waitForSelector('#pipeline-error:has-text("The server refused the pipeline (EINVAL)")');
        assert.match(await page.locator('#pipeline-error').textContent(), /at 1: unknown operation 'gausian'/);
        assert.equal(await page.evaluate(() => document.activeElement.id), 'pipeline-text');
        await shot(page, '06a-error-pipeline');
        /* Bug 4: a parameter's declared constraint (odd sizes, GET /api/v1/ops) is checked in the
         * pipeline text and in the builder; the server refuses it too, before any image. */
        const ops = await (await fetch(`${open.url}/api/v1/ops`)).json();
        assert.equal(ops.ops.find((o) => o.name === 'median').params.find((p) => p.name === 'size').odd, true);
        await page.fill('#pipeline-text', 'median(size=4)');
        await page.waitForSelector('#pipeline-error:has-text("median: size=4 must be odd")');
        await page.fill('#pipeline-text', 'median(size=5)');
        await page.waitForSelector('#pipeline-error', {state: 'hidden'});
        await page.waitForFunction(() => {
            const steps = document.querySelectorAll('#steps > li.step');
            return steps.length === 1 && steps[0].dataset.op === 'median';
        });
        await page.locator('#pipeline-text').blur(); // the builder re-reads the text on blur
        await page.waitForTimeout(500);
        const medianSize = stepCard(page, 'median').locator('input[type=number][id$="-size"]');
        await medianSize.fill('4');
        await page.waitForSelector('#steps > li[data-op="median"] input[type=number][aria-invalid="true"]');
        assert.match(await stepCard(page, 'median').locator('.param-error').textContent(), /must be an odd number/);
        assert.equal(await page.inputValue('#pipeline-text'), 'median(size=5)', 'the invalid size is not taken');
        await shot(page, '06c-error-odd-size');
        const form = new FormData();
        form.append('pipeline', 'median(size=4)');
        form.append('file', new Blob([fs.readFileSync(I('a1.png'))]), 'a1.png');
        const refusedOdd = await fetch(`${open.url}/api/v1/jobs`, {method: 'POST', body: form});
        assert.equal(refusedOdd.status, 400);
        assert.match(await refusedOdd.text(), /EINVAL.*size=4 must be odd|size=4 must be odd.*EINVAL/s);
        await page.fill('#pipeline-text', pipeline);
        await page.waitForSelector('#pipeline-error', {state: 'hidden'});
        await page.click('#clear-files');
        await page.setInputFiles('#file-input', [I('a2.png'), I('corrupt.png')]);
        await page.waitForFunction(() => !document.querySelector('#run').disabled);
        await page.click('#run');
        const id2 = await jobId(page);
        await waitFinal(page);
        const job2 = await (await fetch(`${open.url}/api/v1/jobs/${id2}`)).json();
        const bad = job2.items.find((i) => i.name === 'corrupt.png');
        assert.equal(bad.state, 'failed');
        assert.ok(bad.error && bad.error.length > 5, 'the server names the problem');
        const row = page.locator('#items tr', {hasText: 'corrupt.png'});
        assert.equal(await row.locator('.badge').first().textContent(), 'Failed');
        assert.equal((await row.locator('.item-error').textContent()).trim(), bad.error);
        assert.equal(await page.locator('#items tr', {hasText: 'a2.png'}).locator('.badge').first().textContent(), 'Done');
        log(`corrupt.png: ${bad.error}`);
        /* Bug 10: one failure among successes is "Done with 1 failure", not a red "Failed". */
        assert.equal(await page.locator('#job-title + .badge').textContent(), 'Done with 1 failure');
        assert.equal(await page.locator('#job-title + .badge.state-failed').count(), 0, 'not a red badge');
        assert.match(await page.getAttribute('#job-progress', 'class'), /is-partial/, 'not a red bar');
        await shot(page, '06b-error-corrupt-file');

        /* Cancel a long job. */
        log('cancelling a long job');
        await page.click('nav a[data-route="new"]');
        await page.click('#clear-files');
        /* Enough work that images are still queued when Cancel comes, however fast the machine: the
         * whole batch once finished before the cancel on a quiet machine with 8 images, 2 steps. */
        await page.setInputFiles('#file-input', Array.from({length: 16}, (_, k) => I(`big${k + 1}.png`)));
        const slow = 'bilateral(d=25, sigma_color=60, sigma_space=12) | median(size=31) | bilateral(d=25, sigma_color=50, sigma_space=10)';
        await page.fill('#pipeline-text', slow);
        await page.waitForFunction(() => document.querySelectorAll('#steps > li.step').length === 3);
        await page.waitForFunction(() => !document.querySelector('#run').disabled);
        await page.click('#run');
        const id3 = await jobId(page);
        await page.waitForSelector('#job-title + .badge:has-text("Running")');
        /* Bug 8: only the images the server runs say Running (two threads: at most two at a
         * time); the others wait as Queued. */
        const stateBadges = () => page.locator('#items tr td:nth-child(3) .badge:first-child').allTextContents();
        await page.waitForFunction(() => {
            const b = [...document.querySelectorAll('#items tr td:nth-child(3) .badge:first-child')].map((x) => x.textContent);
            return b.includes('Running') && b.includes('Queued');
        }, null, {timeout: 30000});
        const running = (await stateBadges()).filter((t) => t === 'Running').length;
        assert.ok(running >= 1 && running <= 2, `${running} images shown running on a two-thread server`);
        // A progress screenshot with some images done, when the machine gets there in time.
        await page.waitForFunction(() => Number(document.querySelector('#job-progress')
            .getAttribute('aria-valuenow')) > 0, null, {timeout: 20000}).catch(() => {});
        await shot(page, '04-progress');
        /* Bug 3: a server outage mid-job is shown, and so is its end (a real stop and restart of
         * the server on the same port and data; the job resumes there). */
        log('server outage');
        outage = true;
        await stopServer(open);
        await page.waitForSelector('#job-offline:not([hidden])', {timeout: 20000});
        assert.match(await page.locator('#job-offline').textContent(), /server cannot be reached since/);
        assert.equal(await page.locator('#job-eta').textContent(), 'server unreachable');
        await shot(page, '04c-outage');
        open = await startServer('server (no tokens, restarted)', path.join(tmp, 'data1'),
                                 Number(new URL(open.url).port));
        await page.waitForSelector('#job-offline', {state: 'hidden', timeout: 20000});
        await page.waitForSelector('.toast:has-text("Connected again")');
        assert.notEqual(await page.locator('#job-eta').textContent(), 'server unreachable');
        await shot(page, '04d-outage-recovered');
        outage = false;
        assert.ok(eventRequests.length > 0, 'the page follows a running job over SSE');
        await page.click('#job-cancel');
        assert.equal(await waitFinal(page), 'Cancelled');
        /* Bug 1: images in flight at the cancel may still finish: the page keeps following the
         * job until the server holds none of its images, and then shows what the API says. */
        let job3;
        for (let i = 0; i < 600; i++) {
            job3 = await (await fetch(`${open.url}/api/v1/jobs/${id3}`)).json();
            if (!job3.progress.in_flight) break;
            await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(job3.progress.in_flight, false, 'images still in flight 60 s after the cancel');
        await page.waitForFunction((want) => {
            const got = [...document.querySelectorAll('#items tr')].map((tr) => tr.querySelector('.badge').textContent);
            return JSON.stringify(got) === JSON.stringify(want);
        }, job3.items.map((i) => ({done: 'Done', failed: 'Failed', cancelled: 'Cancelled'})[i.state]),
        {timeout: 10000});
        await shot(page, '04b-cancelled');
        assert.equal(job3.state, 'cancelled');
        assert.ok(job3.items.some((i) => i.state === 'cancelled'), 'some images were never run');
        assert.equal(await page.locator('#job-cancel').isHidden(), true);
        /* Bug 2: one definition of progress, the API's: cancelled images do not count, and the
         * page shows the API's figure. */
        const ran = job3.items.filter((i) => i.state === 'done' || i.state === 'failed');
        assert.equal(job3.progress.items_done, ran.length);
        assert.equal(job3.progress.items_cancelled, job3.items.length - ran.length);
        const px = (l) => l.reduce((s, i) => s + i.width * i.height, 0);
        /* The API prints one decimal (C's printf rounds 31.25 to 31.2, JavaScript's Math.round
         * to 31.3): equal within that rounding. */
        const want = 100 * px(ran) / px(job3.items);
        assert.ok(Math.abs(job3.progress.percent - want) <= 0.05 + 1e-9,
                  `percent ${job3.progress.percent}, done+failed pixels give ${want}`);
        assert.ok(job3.progress.percent < 100, `a cancelled job at ${job3.progress.percent} %`);
        assert.equal(await page.getAttribute('#job-progress', 'aria-valuenow'),
                     String(Math.round(job3.progress.percent)));

        /* Jobs list and cluster panel (the open server makes local users admins). */
        await page.click('nav a[data-route="jobs"]');
        await page.waitForSelector(`#jobs a[href="#/jobs/${id1}"]`);
        assert.equal(await page.locator('#jobs tr').count(), 3);
        /* Bug 2: the jobs list shows the API's figure for the cancelled job (no full bar). */
        const bar3 = page.locator(`#jobs tr:has(a[href="#/jobs/${id3}"]) .mini-progress`);
        assert.equal(await bar3.getAttribute('aria-valuenow'), String(Math.round(job3.progress.percent)));
        await shot(page, '09-jobs');
        await page.click('nav a[data-route="cluster"]');
        await page.waitForSelector('#workers tr');
        assert.match(await page.locator('#cluster-stats').textContent(), /workers alive/);
        await shot(page, '10-cluster');

        /* Bug 11: a file over the server's limits sent with "Upload anyway" is skipped by the
         * server's refusal, and the rest of the batch runs. */
        log('upload anyway');
        await page.click('nav a[data-route="new"]');
        await page.click('#clear-files');
        await page.setInputFiles('#file-input', [I('a1.png'), I('huge.png')]);
        await card('huge.png').locator('.file-force').click();
        await page.waitForFunction(() => !document.querySelector('#run').disabled &&
            /2 images will be processed/.test(document.querySelector('#submit-hint').textContent));
        await page.click('#run');
        const id4 = await jobId(page);
        assert.equal(await waitFinal(page), 'Done');
        const job4 = await (await fetch(`${open.url}/api/v1/jobs/${id4}`)).json();
        assert.deepEqual(job4.items.map((i) => i.name), ['a1.png'], 'the refused file is skipped, the rest run');
        assert.match(await page.locator('.toast', {hasText: 'Skipped huge.png'}).textContent(),
                     /server refused it \(ELIMIT\).*Sending the other 1 image/s);
        await page.click('nav a[data-route="new"]');
        assert.match(await card('huge.png').textContent(), /The server refused it: .*70000/);

        /* Phone width: one column, nothing wider than the screen. */
        log('phone width');
        const phone = await browser.newContext({viewport: {width: 390, height: 844}, deviceScaleFactor: 2,
                                                 isMobile: true, hasTouch: true});
        const pp = await phone.newPage();
        watch(pp);
        await pp.goto(`${open.url}/`);
        await pp.waitForSelector('#op-select option[value="gaussian"]', {state: 'attached'});
        await pp.setInputFiles('#file-input', [I('a1.png'), I('a2.png')]);
        await pp.fill('#pipeline-text', pipeline);
        await pp.waitForSelector('#steps > li[data-op="hsv"]');
        await pp.waitForFunction(() => document.querySelectorAll('.file-card canvas').length === 2 &&
            document.querySelectorAll('#steps > li.step').length === 2);
        const overflow = await pp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `page is ${overflow}px wider than a phone screen`);
        // Each link of the top bar on one line ("New job" used to wrap onto two at this width):
        // one client rect per line of the link's text.
        const tabLines = await pp.evaluate(() => [...document.querySelectorAll('.tabs a')]
            .filter((a) => !a.hidden).map((a) => {
                const r = document.createRange();
                r.selectNodeContents(a);
                return `${a.textContent}: ${new Set([...r.getClientRects()].map((q) => Math.round(q.top))).size}`;
            }));
        assert.ok(tabLines.every((t) => t.endsWith(': 1')), `top bar links on one line each: ${tabLines}`);
        await shot(pp, '08a-phone-new-job');
        await pp.click('#run');
        await jobId(pp);
        assert.equal(await waitFinal(pp), 'Done');
        const overflow2 = await pp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow2 <= 1, `job view is ${overflow2}px wider than a phone screen`);
        await shot(pp, '08b-phone-job');
        await pp.locator('#items tr').first().locator('.item-view').click();
        await pp.waitForFunction(() => [...document.querySelectorAll('.viewer-canvas img')]
            .filter((i) => i.complete && i.naturalWidth > 0).length === 2);
        await pp.evaluate(() => document.getElementById('viewer-panel').scrollIntoView({block: 'end'}));
        await shot(pp, '08c-phone-compare', {viewport: true, keepScroll: true});
        await phone.close();

        /* 401: the token prompt on a server that needs one. */
        log('token flow');
        const anon = await fetch(`${locked.url}/api/v1/jobs`);
        assert.equal(anon.status, 401);
        assert.match(anon.headers.get('www-authenticate') || '', /^Bearer/);
        const tctx = await browser.newContext({viewport: {width: 1366, height: 900}, acceptDownloads: true});
        tctx.setDefaultTimeout(30000);
        const tp = await tctx.newPage();
        watch(tp);
        const sseStatus = [];
        tp.on('response', (r) => {
            if (/\/events\?access_token=/.test(r.url())) sseStatus.push(r.status());
        });
        await tp.goto(`${locked.url}/`);
        await tp.waitForSelector('#token-dialog[open]');
        await shot(tp, '07a-token-prompt', {viewport: true});
        await tp.fill('#token-input', 'dip_not_a_real_token');
        await tp.click('#token-save');
        await tp.waitForSelector('#token-error:not([hidden])');
        assert.match(await tp.locator('#token-error').textContent(), /did not accept/);
        await shot(tp, '07b-token-rejected', {viewport: true});
        await tp.fill('#token-input', token);
        await tp.click('#token-save');
        await tp.waitForSelector('#token-dialog', {state: 'hidden'});
        await tp.waitForSelector('#who:has-text("alice")');
        assert.equal(await tp.evaluate(() => localStorage.getItem('dip.token')), token);
        assert.equal(await tp.locator('nav a[data-route="cluster"]').isHidden(), true, 'alice is no admin');
        await tp.reload();
        await tp.waitForSelector('#who:has-text("alice")');
        assert.equal(await tp.locator('#token-dialog[open]').count(), 0, 'the kept token is used');
        await tp.waitForSelector('#op-select option[value="invert"]', {state: 'attached'});
        // TIFF support is optional in a build (DIP_WITH_TIFF): include the TIFF when dip reads it.
        const hasTiff = spawnSync(DIP, ['process', '--quiet', '-o', path.join(tmp, 'probe.png'), I('pic.tif')]).status === 0;
        await tp.setInputFiles('#file-input', hasTiff ? [I('a3.png'), I('pic.tif')] : [I('a3.png')]);
        await tp.fill('#pipeline-text', 'invert');
        await tp.waitForSelector('#steps > li[data-op="invert"]'); // the builder follows the text
        await tp.waitForFunction(() => !document.querySelector('#run').disabled);
        await tp.click('#run');
        const tokenJob = await jobId(tp);
        assert.equal(await waitFinal(tp), 'Done');
        const tgot = await download(tp, () => tp.locator('#items tr').first().locator('.item-download').click(), dl, 'result-a3.png');
        const cli3 = path.join(tmp, 'cli-a3.png');
        execFileSync(DIP, ['process', '-p', 'invert', '-o', cli3, I('a3.png')], {stdio: 'pipe'});
        assert.ok(tgot.bytes.equals(fs.readFileSync(cli3)), 'authenticated download differs from the CLI');
        /* The page opens the event stream only while a job is unfinished, and this small job may
         * finish first; so ask the stream directly, as EventSource does: the token in the query. */
        const evStatus = (t) => tp.evaluate(async ([id, tok]) => {
            const q = tok ? `?access_token=${encodeURIComponent(tok)}` : '';
            const r = await fetch(`/api/v1/jobs/${encodeURIComponent(id)}/events${q}`);
            await r.text();
            return r.status;
        }, [tokenJob, t]);
        assert.equal(await evStatus(token), 200, `the event stream takes the token (?access_token=); page used: ${sseStatus}`);
        assert.equal(await evStatus(''), 401, 'the event stream needs the token');
        /* TIFF in and out: the browser cannot draw it, so the page has the server convert both
         * for the viewer (POST /process with the token). */
        if (hasTiff) {
            await tp.locator('#items tr', {hasText: 'pic.tif'}).locator('.item-view').click();
            await tp.waitForFunction(() => [...document.querySelectorAll('.viewer-canvas img')]
                .filter((i) => i.complete && i.naturalWidth === 300).length === 2);
        } else {
            log('this dip reads no TIFF: the TIFF viewer check is left out');
        }
        /* Bug 6: switching to another user's token leaves nothing of alice's on screen. */
        assert.ok(await tp.locator('.item-download').count() > 0);
        await tp.click('#token-button');
        await tp.fill('#token-input', token2);
        await tp.click('#token-save');
        await tp.waitForSelector('#who:has-text("bob")');
        await tp.waitForFunction(() => !location.hash.startsWith('#/jobs/'));
        assert.equal(await tp.locator('#items tr').count(), 0, "alice's images still listed");
        assert.equal(await tp.locator('.item-download:visible, #job-zip:visible').count(), 0);
        assert.equal(await tp.locator('.file-card').count(), 0, "alice's files still listed");
        await tp.click('nav a[data-route="jobs"]');
        await tp.waitForTimeout(500);
        assert.equal(await tp.locator(`#jobs a[href="#/jobs/${tokenJob}"]`).count(), 0);
        await shot(tp, '07c-token-switched', {viewport: true});
        await tp.click('#token-button');
        await tp.click('#token-forget');
        assert.equal(await tp.evaluate(() => localStorage.getItem('dip.token')), null);
        await tctx.close();

        assert.deepEqual(problems, [], 'errors in the browser console');
        log('all checks passed');
    } catch (e) {
        // What each page showed when it went wrong, for the CI artefacts.
        for (const [i, p] of pages.entries()) {
            if (!p.isClosed()) await p.screenshot({path: path.join(SHOTS, `failure-${i}.png`)}).catch(() => {});
        }
        console.log(`---- browser ----\n${consoleLog.slice(-40).join('\n')}`);
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
