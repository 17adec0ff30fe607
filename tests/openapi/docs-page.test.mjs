// SPDX-License-Identifier: MIT
// The API reference page renders offline: Debian's chromium (driven by playwright-core) opens
// /api/docs of a real `dip serve`; Redoc, served by dip itself, renders docs/openapi.yaml (the
// operations' summaries appear), with no request leaving the server, no page error and no
// Content-Security-Policy violation. Skipped (77) without chromium or `npm ci` in tests/openapi.
import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dip = process.env.DIP ?? "dip";
const CHROMIUM = process.env.DIP_CHROMIUM || "/usr/bin/chromium";
if (!fs.existsSync(CHROMIUM)) {
    console.log(`SKIP: ${CHROMIUM} not found`);
    process.exit(77);
}
let chromium;
try {
    ({ chromium } = createRequire(path.join(here, "package.json"))("playwright-core"));
} catch {
    console.log("SKIP: run npm ci in tests/openapi (make test-deps)");
    process.exit(77);
}
const fail = (msg) => {
    console.error("FAIL: " + msg);
    process.exitCode = 1;
};

const data = fs.mkdtempSync(path.join(os.tmpdir(), "dip-openapi-docs-"));
const server = spawn(dip, ["serve", "--listen", "127.0.0.1:0", "--data", data, "--threads", "1"],
    { stdio: ["ignore", "pipe", "inherit"] });
const banner = await new Promise((resolve, reject) => {
    readline.createInterface({ input: server.stdout }).once("line", resolve);
    server.once("exit", (code) => reject(new Error("dip serve exited with " + code)));
});
const base = banner.match(/https?:\/\/[^/ ]+/)[0];
const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
    const page = await browser.newPage();
    const problems = [];
    const requests = [];
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    // Redoc's bundle hard-codes one image from its CDN (the "API docs by Redocly" logo); dip's
    // Content-Security-Policy blocks it before any request is sent, and the image hides itself.
    const blockedLogo = /cdn\.redoc\.ly\/redoc\/logo-mini\.svg/;
    page.on("console", (m) => {
        if (m.type() === "error" && !blockedLogo.test(m.text()))
            problems.push("console error: " + m.text() + " " + JSON.stringify(m.location()));
    });
    page.on("requestfinished", (r) => requests.push(r.url()));
    page.on("response", (r) => {
        if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`);
    });
    // The web page links the reference.
    await page.goto(base + "/", { waitUntil: "load" });
    await page.click('nav a[href="/api/docs"]');
    await page.waitForURL(base + "/api/docs");
    const t0 = Date.now();
    // Each operation is a heading of the rendered page, with its schemas below it.
    for (const text of ["Submit a job", "The job's progress as Server-Sent Events",
                        "The result image of item n"]) {
        await page.locator("h2", { hasText: text }).first().waitFor({ timeout: 60000 });
    }
    await page.getByText("items_next").first().waitFor({ state: "attached", timeout: 60000 });
    console.log(`Redoc rendered /api/docs in ${Date.now() - t0} ms`);
    const title = await page.locator("h1").first().textContent();
    if (!/dip job service/.test(title ?? "")) fail("title: " + title);
    const outside = requests.filter((u) => !u.startsWith(base) && !u.startsWith("data:") &&
                                           !u.startsWith("blob:"));
    if (outside.length) fail("requests leaving the server: " + outside.join(", "));
    if (problems.length) fail(problems.join("\n"));
    console.log(`${requests.length} requests, all to ${base}: ` +
                [...new Set(requests.map((u) => new URL(u).pathname))].join(" "));
} finally {
    await browser.close();
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
    fs.rmSync(data, { recursive: true, force: true });
}
if (!process.exitCode) console.log("ok: the API reference renders offline");
