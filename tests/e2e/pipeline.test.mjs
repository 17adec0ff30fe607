// SPDX-License-Identifier: MIT
// The page's pipeline parser (web/pipeline.js) against the real one: for each text, the page
// and `dip process` must agree on accepting it and, when they refuse, on the position of the
// mistake; and the text the builder writes back for an accepted pipeline must produce the same
// bytes as the text typed. The operation table comes from a real `dip serve` (GET /api/v1/ops).

import {spawnSync, execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import {SRC, DIP, PYTHON, log, startServer, stopServers, dumpServerLogs} from './lib.mjs';

const {parse, format} = await import(path.join(SRC, 'web', 'pipeline.js'));

const ACCEPT = [
    '', '   ', 'invert', 'INVERT', 'invert()', ' gaussian ( size = 9 , sigma=1.5 ) ',
    'gaussian(9)', 'gaussian(9, 2)', 'threshold(t=10, invert=yes)', 'threshold(invert=on)',
    'threshold(invert=0)', 'flip(axis=V)', 'rotate(270)', 'resize(scale=0.25, filter=cubic)',
    'linear(alpha=-1.5, beta=+10)', 'linear(alpha=1e1)', 'linear(alpha=.5)', 'linear(alpha=2.)',
    'hsv(h=-180)|hsv(v=255)', 'gaussian(size=9)|invert|gray', 'hsv(h=0x10)', 'box(size=3)',
    'sharpen(amount=2, sigma=0.5)', 'median(5) | equalize | stretch(low=1, high=99)',
    `${'invert|'.repeat(63)}invert`,
];
const REFUSE = [
    'gausian', 'invert |', '| invert', 'invert invert', 'gaussian(size=9', 'gaussian(size=)',
    'gaussian(foo=1)', 'gaussian(size=9, size=7)', 'gaussian(1, 2, 3)', 'gaussian(size=9.5)',
    'gaussian(size=1000)', 'gaussian(size=abc)', 'threshold(invert=maybe)',
    'flip(axis=diagonal)', 'invert)', 'invert(,)', 'gaussian(size=9))', 'linear(alpha=inf)',
    'linear(alpha=nan)', 'linear(alpha=1e400)', 'invert(1)', 'gaussian(size=9 sigma=2)',
    'hsv(h=-181)', 'resize(filter=)', `${'invert|'.repeat(64)}invert`, 'gaussian(size=9)(',
];

function cli(text, input, out) {
    const r = spawnSync(DIP, ['process', '--quiet', '-p', text, '-o', out, input], {encoding: 'utf8'});
    return {ok: r.status === 0, status: r.status, err: r.stderr};
}

function js(text, ops) {
    try {
        return {ok: true, steps: parse(text, ops)};
    } catch (e) {
        if (e.name !== 'PipelineError') throw e;
        return {ok: false, pos: e.pos, err: e.message};
    }
}

async function main() {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dip-e2e-pipeline-'));
    try {
        fs.mkdirSync(path.join(tmp, 'data'));
        const server = await startServer('server', path.join(tmp, 'data'));
        const {ops} = await (await fetch(`${server.url}/api/v1/ops`)).json();
        assert.ok(ops.length > 0);
        const input = path.join(tmp, 'in.png');
        execFileSync(PYTHON, ['-c', `
import sys, cv2, numpy as np
rng = np.random.default_rng(3)
cv2.imwrite(sys.argv[1], rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
`, input]);
        let n = 0;
        for (const text of [...ACCEPT, ...REFUSE]) {
            const want = ACCEPT.includes(text);
            const c = cli(text, input, path.join(tmp, 'a.png'));
            const j = js(text, ops);
            const label = JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
            assert.equal(c.ok, want, `dip process ${want ? 'refused' : 'accepted'} ${label}: ${c.err}`);
            assert.equal(j.ok, want, `the page ${want ? 'refused' : 'accepted'} ${label}: ${j.err}`);
            if (!want) {
                const m = /at (\d+):/.exec(c.err);
                if (m) assert.equal(j.pos, Number(m[1]), `position for ${label}: page "${j.err}", CLI "${c.err.trim()}"`);
                n++;
                continue;
            }
            // What the builder writes back means the same as what was typed: same bytes out.
            const again = format(j.steps);
            const back = js(again, ops);
            assert.ok(back.ok, `the page cannot read its own text ${JSON.stringify(again)}: ${back.err}`);
            assert.equal(format(back.steps), again, 'format is stable');
            const c2 = cli(again, input, path.join(tmp, 'b.png'));
            assert.ok(c2.ok, `dip process refused the builder's text ${JSON.stringify(again)}: ${c2.err}`);
            assert.ok(fs.readFileSync(path.join(tmp, 'a.png')).equals(fs.readFileSync(path.join(tmp, 'b.png'))),
                      `${label} and the builder's ${JSON.stringify(again)} give different images`);
            n++;
        }
        log(`${n} pipeline texts: the page and dip process agree`);
    } finally {
        await stopServers();
        fs.rmSync(tmp, {recursive: true, force: true});
    }
}

main().catch((e) => {
    console.error(e);
    dumpServerLogs();
    process.exitCode = 1;
});
