// SPDX-License-Identifier: MIT
// Accessibility of the web page (issue 10): axe-core (npm, pinned in package.json) injected by
// playwright-core into Debian's chromium, on every screen of the page, light and dark, phone and
// wide, against a real `dip serve`: the new-job form empty and filled (a flagged file, a message),
// with a pipeline error, a running job, a cancelled job, a finished job with the compare viewer
// (slider, side by side, and the result alone after a reload), the jobs list, the cluster panel
// and the token dialog. Zero violations of the WCAG 2.0, 2.1 and 2.2 A/AA rules and axe's best
// practices. Then what axe cannot see: the focus ring has 3:1 contrast against what is around it
// (WCAG 2.2 2.4.13), focused headings show it, and a skip link takes the keyboard past 32 file
// cards to the pipeline in a few presses.
// Exits 77 (skipped) only without chromium. A11Y_SCHEME=light (or dark) runs that colour scheme's
// two passes (make test runs the schemes as two tests, e2e/a11y-light and e2e/a11y-dark, which may
// run at once); A11Y_ONLY='dark phone' (scheme and size) runs one of the four passes,
// A11Y_NO_FOCUS=1 leaves out the focus checks, when working on the page.

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
const {HERE, PYTHON, DIP, log, startServer, stopServers, dumpServerLogs} = await import('./lib.mjs');
const SHOTS = path.join(process.env.DIP_BINARY_DIR || os.tmpdir(), 'e2e-screenshots', 'a11y');

/* playwright-core and axe-core come from tests/e2e/node_modules (npm ci, as the set-up step runs
 * it; a folder installed before axe-core was added is completed the same way). */
function loadModules() {
    const req = createRequire(path.join(HERE, 'package.json'));
    try {
        return {pw: req('playwright-core'), axe: fs.readFileSync(req.resolve('axe-core/axe.min.js'), 'utf8')};
    } catch {
        log('playwright-core or axe-core missing: npm ci in tests/e2e');
        const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {cwd: HERE, stdio: 'inherit'});
        if (r.status !== 0) throw new Error('npm ci failed in tests/e2e (try: npm ci --prefix tests/e2e)');
        return {pw: req('playwright-core'), axe: fs.readFileSync(req.resolve('axe-core/axe.min.js'), 'utf8')};
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
    for _ in range(8):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(8, min(w, h) // 4)), c, -1)
    return img
for i in range(1, 33):
    cv2.imwrite('%s/s%02d.png' % (d, i), scene(96, 64, i))
for i in range(1, 17):
    cv2.imwrite('%s/big%d.png' % (d, i), scene(1600, 1600, 40 + i))
open('%s/junk.png' % d, 'wb').write(b'not an image\n' * 8)
`;
    execFileSync(PYTHON, ['-c', script, dir], {stdio: 'inherit'});
}

const RULES = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa', 'best-practice'];

async function main() {
    const {pw, axe} = loadModules();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dip-a11y-'));
    const img = path.join(tmp, 'img');
    fs.mkdirSync(img);
    fs.mkdirSync(path.join(tmp, 'data'));
    fs.rmSync(SHOTS, {recursive: true, force: true});
    fs.mkdirSync(SHOTS, {recursive: true});
    makeImages(img);
    const I = (n) => path.join(img, n);
    fs.mkdirSync(path.join(tmp, 'data2'));
    execFileSync(DIP, ['token', 'create', 'alice', '--data', path.join(tmp, 'data2')], {stdio: 'pipe'});
    const [server, locked] = await Promise.all([startServer('server', path.join(tmp, 'data')),
                                                startServer('server (token required)', path.join(tmp, 'data2'))]);
    const browser = await pw.chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const violations = [];
    const problems = [];
    let screens = 0;
    let current = null;

    /* axe on what the page shows now; every violation is kept with the screen's name. */
    async function audit(page, screen) {
        /* From the top: content scrolled under the sticky top bar would read as obscured targets.
         * A smooth scroll the page started itself (opening the viewer scrolls it into view) ends
         * first: on a loaded machine one still ran after the scroll to the top, and axe found
         * #job-zip under the sticky bar ("partially obscured", dark phone, after a reload). */
        const still = () => new Promise((resolve) => {
            let last = window.scrollY, same = 0;
            const tick = () => {
                same = window.scrollY === last ? same + 1 : 0;
                last = window.scrollY;
                if (same >= 10) resolve(true); else requestAnimationFrame(tick);
            };
            requestAnimationFrame(tick);
        });
        await page.evaluate(still);
        await page.evaluate(() => window.scrollTo({top: 0, left: 0, behavior: 'instant'}));
        await page.evaluate(still);
        await page.waitForTimeout(250); // transitions (toasts, bars) settle
        if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.addScriptTag({content: axe});
        const found = await page.evaluate(async (tags) => {
            const r = await window.axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return r.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 4).map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`),
            }));
        }, RULES);
        screens++;
        for (const v of found) {
            violations.push({screen, ...v});
            console.log(`VIOLATION ${screen}: ${v.id} (${v.impact}) ${v.help}\n    ${v.nodes.join('\n    ')}`);
        }
        log(`${screen}: ${found.length ? found.map((v) => v.id).join(', ') : 'no violations'}`);
        const file = path.join(SHOTS, `${screen.replace(/[^a-z0-9]+/gi, '-')}.png`);
        await page.screenshot({path: file, fullPage: true, animations: 'disabled'});
    }

    try {
        for (const scheme of ['light', 'dark'].filter((c) => !process.env.A11Y_SCHEME || c === process.env.A11Y_SCHEME)) {
            for (const [size, viewport] of [['wide', {width: 1366, height: 900}], ['phone', {width: 390, height: 844}]]) {
                const tag = `${scheme} ${size}`;
                if (process.env.A11Y_ONLY && process.env.A11Y_ONLY !== tag) continue;
                const ctx = await browser.newContext({viewport, colorScheme: scheme, acceptDownloads: true,
                                                      ...(size === 'phone' ? {isMobile: true, hasTouch: true, deviceScaleFactor: 2} : {})});
                ctx.setDefaultTimeout(60000);
                const page = await ctx.newPage();
                current = page;
                page.on('pageerror', (e) => problems.push(`${tag}: page error: ${e.message}`));
                page.on('response', (r) => {
                    if (r.status() >= 400) log(`${tag}: HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
                });
                page.on('console', (m) => {
                    if (m.type() === 'error') log(`${tag}: console: ${m.text()}`);
                });
                await page.goto(`${server.url}/`);
                await page.waitForSelector('#op-select option[value="gaussian"]', {state: 'attached'});
                await audit(page, `${tag} new job, empty`);

                /* Files (one the server would refuse), a duplicate's message, a pipeline. */
                await page.setInputFiles('#file-input', [I('s01.png'), I('s02.png'), I('junk.png')]);
                await page.waitForFunction(() => document.querySelectorAll('.file-card canvas').length === 2);
                await page.setInputFiles('#file-input', [I('s01.png')]);
                await page.waitForSelector('.toast:has-text("Skipped")');
                await page.fill('#pipeline-text', 'gaussian(sigma=2) | hsv(h=30)');
                await page.waitForSelector('#steps > li.step[data-op="hsv"]');
                await page.selectOption('#format', 'png');
                await audit(page, `${tag} new job, filled`);
                await page.fill('#pipeline-text', 'gausian(size=9)');
                await page.waitForSelector('#pipeline-error:not([hidden])');
                await audit(page, `${tag} new job, pipeline error`);

                /* A slow job: running (queued and running images), then cancelled. Sixteen 2.6 MP
                 * images through three heavy steps: about 15 s of work on two idle cores (six 0.8 MP
                 * images through two steps ended in 0.9 s on a quiet machine, before Cancel). */
                await page.click('#clear-files');
                await page.setInputFiles('#file-input', Array.from({length: 16}, (_, k) => I(`big${k + 1}.png`)));
                await page.fill('#pipeline-text', 'bilateral(d=25, sigma_color=60, sigma_space=12) | median(size=31) | bilateral(d=25, sigma_color=60, sigma_space=12)');
                await page.waitForFunction(() => document.querySelector('#steps > li.step[data-op="median"]') &&
                    document.querySelectorAll('#steps > li.step').length === 3 &&
                    document.querySelectorAll('.file-card canvas').length === 16 &&
                    [...document.querySelectorAll('.file-meta')].every((m) => !/reading/.test(m.textContent)) &&
                    !document.querySelector('#run').disabled);
                await page.click('#run');
                await page.waitForSelector('#job-title + .badge:has-text("Running")');
                await audit(page, `${tag} job running`);
                await page.click('#job-cancel');
                await page.waitForSelector('#job-title + .badge:has-text("Cancelled")');
                await page.waitForFunction(() => !/finishing/.test(document.querySelector('#job-eta').textContent));
                await audit(page, `${tag} job cancelled`);

                /* A quick job, its result in the viewer. */
                await page.click('nav a[data-route="new"]');
                await page.click('#clear-files');
                await page.setInputFiles('#file-input', [I('s03.png'), I('s04.png')]);
                await page.fill('#pipeline-text', 'gaussian(sigma=2) | rotate(angle=90)');
                /* Thumbnails drawn and steps built first: the Run button must not move under the click. */
                await page.waitForFunction(() => document.querySelector('#steps > li.step[data-op="rotate"]') &&
                    document.querySelectorAll('#steps > li.step').length === 2 &&
                    document.querySelectorAll('.file-card canvas').length === 2 &&
                    [...document.querySelectorAll('.file-meta')].every((m) => !/reading/.test(m.textContent)) &&
                    !document.querySelector('#run').disabled);
                await page.click('#run');
                await page.waitForSelector('#job-title + .badge:has-text("Done")');
                await page.locator('#items tr').first().locator('.item-view').click();
                await page.waitForFunction(() => [...document.querySelectorAll('.viewer-canvas img')]
                    .filter((i) => i.complete && i.naturalWidth > 0).length === 2);
                await audit(page, `${tag} job done, side by side`);
                const slider = page.getByRole('button', {name: 'Slider'});
                if (await slider.count()) {
                    await slider.click();
                    await audit(page, `${tag} job done, slider`);
                }

                /* After a reload the original is gone from the tab: the viewer shows the result. */
                await page.reload();
                await page.waitForSelector('#job-title + .badge:has-text("Done")');
                await page.locator('#items tr').first().locator('.item-view').click();
                await page.waitForFunction(() => [...document.querySelectorAll('.viewer-canvas img')]
                    .filter((i) => i.complete && i.naturalWidth > 0).length >= 1);
                await audit(page, `${tag} job done after a reload, result only`);

                await page.click('nav a[data-route="jobs"]');
                await page.waitForSelector('#jobs tr');
                await audit(page, `${tag} jobs`);
                await page.click('nav a[data-route="cluster"]');
                await page.waitForSelector('#workers tr');
                await audit(page, `${tag} cluster`);
                if (size === 'wide' && !process.env.A11Y_NO_FOCUS) await focusChecks(page, tag);
                /* The token prompt of a server that needs one. */
                await page.goto(`${locked.url}/`);
                await page.waitForSelector('#token-dialog[open]');
                await audit(page, `${tag} token dialog`);
                await ctx.close();
            }
        }
        assert.ok(screens > 0, `no screen audited (A11Y_SCHEME=${process.env.A11Y_SCHEME}, A11Y_ONLY=${process.env.A11Y_ONLY})`);
        assert.equal(violations.length, 0, `${violations.length} axe-core violations on ${screens} screens`);
        assert.deepEqual(problems, [], 'errors on the page');
        log(`axe-core: no violations on ${screens} screens`);
    } catch (e) {
        if (current && !current.isClosed()) {
            await current.screenshot({path: path.join(SHOTS, 'failure.png'), fullPage: true}).catch(() => {});
            log(`failure on ${current.url()}: ${await current.locator('#job-title + .badge').textContent().catch(() => '?')}`);
            fs.writeFileSync(path.join(SHOTS, 'failure-server.log'), server.out);
        }
        throw e;
    } finally {
        await browser.close().catch(() => {});
        await stopServers();
        fs.rmSync(tmp, {recursive: true, force: true});
    }

    /* What axe cannot check: the focus indicator and the way past many file cards. */
    async function focusChecks(page, tag) {
        await page.click('nav a[data-route="new"]');
        /* Nothing to clear when no file is listed (the button is hidden): a click would wait its
         * whole 60 s timeout for it. */
        if (await page.isVisible('#clear-files') && await page.isEnabled('#clear-files')) await page.click('#clear-files');
        await page.setInputFiles('#file-input', Array.from({length: 32}, (_, k) => I(`s${String(k + 1).padStart(2, '0')}.png`)));
        await page.waitForFunction(() => document.querySelectorAll('.file-card').length === 32 &&
            !document.querySelector('#run').disabled);
        /* From the top of the page, the keyboard reaches the pipeline in a few presses. */
        /* The first Tab on a freshly loaded page lands on the first link: start there (1 press). */
        await page.evaluate(() => { window.scrollTo(0, 0); document.querySelector('a').focus(); });
        let presses = 1;
        for (; presses < 60; presses++) {
            if (await page.evaluate(() => document.activeElement && document.activeElement.id === 'op-select')) break;
            await page.keyboard.press('Tab');
            const skip = await page.evaluate(() => document.activeElement.classList.contains('skip-link') &&
                /pipeline/i.test(document.activeElement.textContent));
            if (skip) {
                await page.screenshot({path: path.join(SHOTS, `${tag.replace(' ', '-')}-skip-link.png`)});
                await page.keyboard.press('Enter');
                presses++;
                // The link moves focus to the pipeline; one more Tab reaches the operation list.
            }
        }
        log(`${tag}: ${presses} key presses from the top to the operation list past 32 images`);
        assert.ok(presses <= 10, `${presses} key presses to reach the pipeline past 32 file cards`);

        /* The focus ring: 3:1 against the panel behind it, on a button, a field and a heading. */
        const rings = [];
        /* The heading is the skip link's target (tabindex -1), focused as the link does it. */
        for (const sel of ['#run', '#clear-files', '#pipeline-text', '#choose-files', '#pipeline-title']) {
            await page.locator(sel).focus();
            await page.keyboard.press('Shift'); // keyboard modality: :focus-visible applies
            if (sel === '#pipeline-title') await page.evaluate((s) => document.querySelector(s).focus(), sel);
            rings.push(await page.evaluate((s) => {
                const el = document.querySelector(s);
                const cs = getComputedStyle(el);
                const parse = (c) => {
                    const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?/.exec(c);
                    return m ? [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]] : null;
                };
                const lum = ([r, g, b]) => {
                    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
                };
                let bgEl = el.parentElement, bg = null;
                while (bgEl) {
                    const c = parse(getComputedStyle(bgEl).backgroundColor);
                    if (c && c[3] > 0.99) { bg = c; break; }
                    bgEl = bgEl.parentElement;
                }
                bg = bg || [255, 255, 255, 1];
                const ring = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2 ? parse(cs.outlineColor) : null;
                if (!ring) return {sel: s, ratio: 0, why: `outline ${cs.outlineStyle} ${cs.outlineWidth}`};
                const [a, b] = [lum(ring), lum(bg)];
                return {sel: s, ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), width: cs.outlineWidth};
            }, sel));
        }
        log(`${tag}: focus ring contrast ${rings.map((r) => `${r.sel} ${r.ratio.toFixed(2)}:1`).join(', ')}`);
        for (const r of rings) assert.ok(r.ratio >= 3, `${tag}: the focus ring of ${r.sel} is ${r.ratio.toFixed(2)}:1 ${r.why || ''}`);
    }
}

main().catch(async (e) => {
    console.error(e);
    dumpServerLogs();
    await stopServers();
    process.exit(1);
});
