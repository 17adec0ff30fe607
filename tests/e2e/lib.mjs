// SPDX-License-Identifier: MIT
// Shared helpers of the e2e tests: where things are, a timestamped log, and real `dip serve`
// processes on free loopback ports (port 0; the address is read from the server's first line).

import {spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import {fileURLToPath} from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SRC = process.env.DIP_SOURCE_DIR || path.resolve(HERE, '../..');
export const DIP = process.env.DIP || path.join(SRC, 'build', 'dip');
export const PYTHON = '/usr/bin/python3';
const T0 = Date.now();

assert.ok(fs.existsSync(DIP), `dip binary not found at ${DIP} (set DIP)`);

export function log(...a) {
    console.log(`[${((Date.now() - T0) / 1000).toFixed(1).padStart(5)} s]`, ...a);
}

export const servers = [];

/** Starts `dip serve` on 127.0.0.1:port (0: a free one) with dataDir and the repository's web/
 * folder. */
export async function startServer(name, dataDir, port = 0) {
    const proc = spawn(DIP, ['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir,
                             '--web', path.join(SRC, 'web'), '--threads', '2'],
                       {stdio: ['ignore', 'pipe', 'pipe']});
    const s = {name, proc, out: '', url: null};
    servers.push(s);
    s.url = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no address after 20 s:\n${s.out}`)), 20000);
        const onData = (d) => {
            s.out += d;
            const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(s.out);
            if (m) {
                clearTimeout(timer);
                resolve(`http://127.0.0.1:${m[1]}`);
            }
        };
        proc.stdout.on('data', onData);
        proc.stderr.on('data', onData);
        proc.on('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`${name} exited with ${code}:\n${s.out}`));
        });
    });
    for (let i = 0; i < 100; i++) {
        try {
            if ((await fetch(`${s.url}/healthz`)).ok) break;
        } catch {
            /* not listening yet */
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    log(`${name}: ${s.url}`);
    return s;
}

/** SIGTERM to one server; waits for it to exit (a restart can then take its port). */
export async function stopServer(s) {
    if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
    await new Promise((resolve) => {
        s.proc.on('exit', resolve);
        s.proc.kill('SIGTERM');
    });
}

/** SIGTERM to every server started here (SIGKILL after 5 s); waits for them to exit. */
export async function stopServers() {
    await Promise.all(servers.map((s) => new Promise((resolve) => {
        if (s.proc.exitCode !== null || s.proc.signalCode !== null) return resolve();
        const t = setTimeout(() => s.proc.kill('SIGKILL'), 5000);
        s.proc.on('exit', () => {
            clearTimeout(t);
            resolve();
        });
        s.proc.kill('SIGTERM');
    })));
}

export function dumpServerLogs() {
    for (const s of servers) console.log(`---- ${s.name} log ----\n${s.out.slice(-4000)}`);
}
