// SPDX-License-Identifier: MIT
// The generated client, end to end: openapi-typescript turns docs/openapi.yaml into types
// (schema.d.ts), tsc type-checks client.ts against them in strict mode and compiles it, and the
// compiled client (openapi-fetch) runs against a real `dip serve` with a token: it submits a job,
// follows its events, downloads its results and reads typed errors. Everything is built in
// $DIP_BINARY_DIR/openapi-client. Skipped (77) when `npm ci` has not been run in tests/openapi.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const src = process.env.DIP_SOURCE_DIR ?? path.join(here, "..", "..");
const dip = process.env.DIP ?? "dip";
const mods = path.join(here, "node_modules");
if (!fs.existsSync(path.join(mods, "openapi-typescript")) || !fs.existsSync(path.join(mods, "typescript"))) {
    console.log("SKIP: run `npm ci` in tests/openapi (make test-deps)");
    process.exit(77);
}
const out = path.join(process.env.DIP_BINARY_DIR ?? os.tmpdir(), "openapi-client");
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
fs.symlinkSync(mods, path.join(out, "node_modules"));
fs.writeFileSync(path.join(out, "package.json"), '{"type": "module", "private": true}\n');
fs.copyFileSync(path.join(here, "client.ts"), path.join(out, "client.ts"));

const run = (cmd, args) => execFileSync(cmd, args, { cwd: out, stdio: "inherit" });
// 1. Generate the types from the document.
run(process.execPath, [path.join(mods, "openapi-typescript", "bin", "cli.js"),
    path.join(src, "docs", "openapi.yaml"), "--default-non-nullable", "false",
    "-o", path.join(out, "schema.d.ts")]);
// 2. Type-check (strict) and compile the client against them.
run(process.execPath, [path.join(mods, "typescript", "bin", "tsc"), "--strict", "--target", "es2022",
    "--module", "esnext", "--moduleResolution", "bundler", "--types", "node",
    "--skipLibCheck", "--outDir", out, path.join(out, "client.ts")]);

// 3. A real server with a token.
const data = fs.mkdtempSync(path.join(os.tmpdir(), "dip-openapi-client-"));
const token = execFileSync(dip, ["token", "create", "alice", "--data", data]).toString().trim();
const server = spawn(dip, ["serve", "--listen", "127.0.0.1:0", "--data", data, "--threads", "2"],
    { stdio: ["ignore", "pipe", "inherit"] });
const banner = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: server.stdout });
    rl.once("line", (line) => resolve(line));
    server.once("exit", (code) => reject(new Error("dip serve exited with " + code)));
});
const base = banner.match(/https?:\/\/[^/ ]+/)[0];
let rc = 1;
try {
    execFileSync(process.execPath, [path.join(out, "client.js"), base, token],
        { stdio: "inherit", timeout: 120000 });
    rc = 0;
} catch (e) {
    console.error("FAIL: the generated client failed: " + e.message);
} finally {
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
    fs.rmSync(data, { recursive: true, force: true });
}
process.exit(rc);
