// SPDX-License-Identifier: MIT
// End-to-end test of the admin panel (web/admin.js): a real `dip serve` with a price list, jobs by
// two users through the API, then Debian's chromium (playwright-core) signed in as an admin opens
// the cluster view: the "Usage and cost" panel lists both users with the figures the API gives
// (jobs, exact bytes, a cost); switching the period to the last 24 hours keeps them. Signed in as
// one of the users, the panel lists that user alone. Exits 77 (skipped) only without chromium.

import {spawn, spawnSync, execFileSync} from 'node:child_process';
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
const {HERE, SRC, DIP, PYTHON, log} = await import('./lib.mjs');
const SHOTS = path.join(process.env.DIP_BINARY_DIR || os.tmpdir(), 'e2e-admin-screenshots');

function loadPlaywright() {
    const req = createRequire(path.join(HERE, 'package.json'));
    try {
        return req('playwright-core');
    } catch {
        log('playwright-core missing: npm ci in tests/e2e');
        const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {cwd: HERE, stdio: 'inherit'});
        if (r.status !== 0) throw new Error('npm ci failed in tests/e2e');
        return req('playwright-core');
    }
}

/* dip serve with a price list on a free loopback port; resolves with {proc, url, out}. */
function serve(data) {
    const proc = spawn(DIP, ['serve', '--listen', '127.0.0.1:0', '--data', data, '--web',
                             path.join(SRC, 'web'), '--threads', '2', '--cost-cpu-hour', '0.05',
                             '--cost-gb-month', '0.02'], {stdio: ['ignore', 'pipe', 'pipe']});
    const s = {proc, out: '', url: null};
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no address after 20 s:\n${s.out}`)), 20000);
        const onData = (d) => {
            s.out += d;
            const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(s.out);
            if (m && !s.url) {
                clearTimeout(timer);
                s.url = `http://127.0.0.1:${m[1]}`;
                resolve(s);
            }
        };
        proc.stdout.on('data', onData);
        proc.stderr.on('data', onData);
        proc.on('exit', (code) => {
            clearTimeout(timer);
            if (!s.url) reject(new Error(`dip serve exited with ${code}:\n${s.out}`));
        });
    });
}

async function api(s, token, method, p, body) {
    const r = await fetch(`${s.url}/api/v1${p}`, {method, body,
                                                  headers: {Authorization: `Bearer ${token}`}});
    const text = await r.text();
    assert.ok(r.ok, `${method} ${p}: ${r.status} ${text}`);
    return JSON.parse(text);
}

async function runJob(s, token, files, pipeline) {
    const form = new FormData();
    form.append('pipeline', pipeline);
    for (const [name, data] of files) form.append('file', new Blob([data]), name);
    const job = await api(s, token, 'POST', '/jobs', form);
    for (let i = 0; i < 600; i++) {
        const j = await api(s, token, 'GET', `/jobs/${job.id}`);
        if (j.state === 'done') return j;
        assert.ok(!['failed', 'cancelled'].includes(j.state), `job ${j.state}`);
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('job did not finish');
}

async function main() {
    const {chromium} = loadPlaywright();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dip-e2e-admin-'));
    const data = path.join(tmp, 'data');
    fs.mkdirSync(data);
    fs.rmSync(SHOTS, {recursive: true, force: true});
    fs.mkdirSync(SHOTS, {recursive: true});
    const token = (name, admin) => execFileSync(
        DIP, ['token', 'create', name, '--data', data].concat(admin ? ['--admin'] : []),
        {encoding: 'utf8'}).trim().split('\n').pop().trim();
    const alice = token('alice'), bob = token('bob'), root = token('root', true);
    execFileSync(PYTHON, ['-c', `
import sys, cv2, numpy as np
rng = np.random.default_rng(1)
for i, (w, h) in enumerate([(400, 300), (320, 240), (500, 500)]):
    cv2.imwrite('${tmp}/p%d.png' % i, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
`]);
    const img = (i) => [`p${i}.png`, fs.readFileSync(path.join(tmp, `p${i}.png`))];
    const s = await serve(data);
    log(`server: ${s.url}`);
    let browser = null;
    try {
        await runJob(s, alice, [img(0), img(1)], 'gaussian(sigma=2)');
        await runJob(s, bob, [img(2)], 'invert');
        const usage = await api(s, root, 'GET', '/usage');
        const want = Object.fromEntries(usage.users.map((u) => [u.user, u]));
        assert.deepEqual(Object.keys(want).sort(), ['alice', 'bob'], 'API users');

        browser = await chromium.launch({
            executablePath: CHROMIUM, headless: true,
            args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
                   '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        });
        const problems = [];
        const open = async (tok) => {
            const ctx = await browser.newContext({viewport: {width: 1366, height: 900}});
            ctx.setDefaultTimeout(30000);
            await ctx.addInitScript((t) => localStorage.setItem('dip.token', t), tok);
            const page = await ctx.newPage();
            page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
            page.on('console', (m) => {
                if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
            });
            await page.goto(`${s.url}/#/cluster`);
            return page;
        };

        /* The admin: both users, the API's figures, a cost. */
        const page = await open(root);
        await page.waitForSelector('#usage-panel:not([hidden]) tr[data-user="bob"]');
        const rows = await page.$$eval('#usage-rows tr', (trs) => trs.map((tr) => ({
            user: tr.dataset.user,
            cells: [...tr.children].map((td) => td.textContent.trim()),
            titles: [...tr.children].map((td) => td.getAttribute('title')),
        })));
        assert.deepEqual(rows.map((r) => r.user).sort(), ['alice', 'bob'], 'panel rows');
        for (const r of rows) {
            const u = want[r.user];
            assert.equal(r.cells[1], String(u.jobs), `${r.user} jobs`);
            assert.equal(r.cells[2], String(u.items), `${r.user} items`);
            assert.equal(r.titles[3], `${u.bytes_in} bytes`, `${r.user} bytes in`);
            assert.equal(r.titles[4], `${u.bytes_out} bytes`, `${r.user} bytes out`);
            assert.equal(r.titles[6], `${u.bytes_stored} bytes`, `${r.user} stored`);
            assert.match(r.cells[7], /^[0-9.e-]+$/, `${r.user} cost: ${r.cells[7]}`);
        }
        assert.equal(rows.find((r) => r.user === 'alice').cells[1], '1');
        assert.match(await page.textContent('#usage-note'), /0\.05 per CPU hour/);
        const label = await page.$eval('#usage-period', (el) => el.labels.length);
        assert.equal(label, 1, 'the period select has a label');
        await page.screenshot({path: path.join(SHOTS, 'admin-usage.png'), fullPage: true});

        /* A period: the last 24 hours still holds both jobs. */
        await page.selectOption('#usage-period', 'day');
        await page.waitForFunction(() => /Updated/.test(document.querySelector('#usage-note').textContent) &&
                                   document.querySelectorAll('#usage-rows tr[data-user]').length === 2);

        /* A user sees their own row only. */
        const pa = await open(alice);
        await pa.waitForSelector('#usage-panel:not([hidden]) tr[data-user="alice"]');
        const users = await pa.$$eval('#usage-rows tr', (trs) => trs.map((tr) => tr.dataset.user));
        assert.deepEqual(users, ['alice'], 'alice sees only her own usage');
        assert.equal(await pa.isVisible('nav a[data-route="cluster"]'), false, 'no cluster link for alice');
        assert.deepEqual(problems.filter((p) => !/status of 403/.test(p)), [], 'page errors');
        log('OK');
    } finally {
        if (browser) await browser.close();
        s.proc.kill('SIGTERM');
        fs.rmSync(tmp, {recursive: true, force: true});
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
