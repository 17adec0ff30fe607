// SPDX-License-Identifier: MIT
// A client of dip's API generated from docs/openapi.yaml: `schema.d.ts` comes from
// openapi-typescript (run by client.test.mjs), the calls are openapi-fetch's, type-checked by tsc
// in strict mode against the generated types. It submits a job (multipart), follows its events
// (Server-Sent Events, each parsed as the document's JobEvent), downloads the result and the zip,
// and reads a typed error. Usage: node client.js BASE_URL TOKEN
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type Job = components["schemas"]["Job"];
type JobEvent = components["schemas"]["JobEvent"];

function fail(msg: string): never {
    console.error("FAIL: " + msg);
    process.exit(1);
}

function check(cond: unknown, msg: string): asserts cond {
    if (!cond) fail(msg);
}

// A small RGB PNG (w x h), encoded here so the test needs no image library.
async function png(w: number, h: number): Promise<Uint8Array<ArrayBuffer>> {
    const zlib = await import("node:zlib");
    const raw = Buffer.alloc((w * 3 + 1) * h);
    for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
            const o = y * (w * 3 + 1) + 1 + x * 3;
            raw[o] = (x * 7) & 255;
            raw[o + 1] = (y * 5) & 255;
            raw[o + 2] = ((x + y) * 3) & 255;
        }
    const chunk = (type: string, data: Buffer) => {
        const len = Buffer.alloc(4);
        len.writeUInt32BE(data.length);
        const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
        const crc = Buffer.alloc(4);
        crc.writeUInt32BE(zlib.crc32(td) >>> 0);
        return Buffer.concat([len, td, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr[8] = 8;
    ihdr[9] = 2;
    const file = Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr),
        chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
    const bytes = new Uint8Array(file.length);
    bytes.set(file);
    return bytes;
}

// Reads a text/event-stream body to its `end` event; every event's data is a JobEvent.
async function events(body: ReadableStream<Uint8Array>): Promise<Array<[string, JobEvent]>> {
    const out: Array<[string, JobEvent]> = [];
    const reader = body.getReader();
    const text = new TextDecoder();
    let buf = "";
    for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += text.decode(value, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let name = "";
            const data: string[] = [];
            for (const line of block.split("\n")) {
                if (line.startsWith("event:")) name = line.slice(6).trim();
                else if (line.startsWith("data:")) data.push(line.slice(5).trim());
            }
            if (!name) continue; // a keepalive comment
            out.push([name, JSON.parse(data.join("\n")) as JobEvent]);
            if (name === "end") {
                await reader.cancel();
                return out;
            }
        }
    }
    return out;
}

async function main(): Promise<void> {
    const [base, token] = process.argv.slice(2);
    check(base && token, "usage: client.js BASE_URL TOKEN");
    const api = createClient<paths>({
        baseUrl: base,
        headers: { Authorization: `Bearer ${token}` },
    });

    const who = await api.GET("/api/v1/whoami");
    check(who.data, "whoami: " + JSON.stringify(who.error));
    check(who.data.name === "alice" && who.data.auth_required, "whoami: " + JSON.stringify(who.data));

    const ops = await api.GET("/api/v1/ops");
    check(ops.data?.ops.some((op) => op.name === "invert"), "no invert in /api/v1/ops");

    // Submit: the generated JobSubmission type, sent as multipart/form-data.
    const image = await png(96, 64);
    const created = await api.POST("/api/v1/jobs", {
        body: { pipeline: "invert | flip", format: "png", file: ["a.png"] },
        bodySerializer(body) {
            const fd = new FormData();
            fd.append("pipeline", body.pipeline ?? "");
            fd.append("format", body.format ?? "");
            for (const name of body.file)
                fd.append("file", new Blob([image], { type: "image/png" }), name);
            return fd;
        },
    });
    check(created.response.status === 201,
          `submit: ${created.response.status} ${JSON.stringify(created.error)}`);
    check(created.data, "submit: no job");
    const job: Job = created.data;
    check(created.response.headers.get("Location")?.endsWith(job.id), "no Location");
    console.log(`submitted job ${job.id}: ${job.state}, ${job.items?.length} item`);

    // Follow its events to the end.
    const stream = await api.GET("/api/v1/jobs/{id}/events", {
        params: { path: { id: job.id } },
        parseAs: "stream",
    });
    check(stream.response.ok && stream.data, `events: ${stream.response.status}`);
    const evs = await events(stream.data as ReadableStream<Uint8Array>);
    check(evs.length >= 2, "events: " + evs.map((e) => e[0]).join(","));
    const [lastName, last] = evs[evs.length - 1];
    check(lastName === "end" && last.state === "done", `end event: ${lastName} ${last.state}`);
    check(last.progress.percent === 100 && last.finished !== null, "end: " + JSON.stringify(last.progress));
    const item = last.items[0];
    check(item.state === "done" && item.out_width === 96 && item.out_height === 64,
          "item: " + JSON.stringify(item));
    console.log(`events: ${evs.map((e) => `${e[0]}(${e[1].state} ${e[1].progress.percent}%)`).join(", ")}`);

    // Download the result and the zip.
    const res = await api.GET("/api/v1/jobs/{id}/results/{n}", {
        params: { path: { id: job.id, n: 0 } },
        parseAs: "arrayBuffer",
    });
    check(res.response.status === 200 && res.data, `result: ${res.response.status}`);
    const bytes = new Uint8Array(res.data as ArrayBuffer);
    const dv = new DataView(bytes.buffer);
    check(bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47, "result is not a PNG");
    check(dv.getUint32(16) === 96 && dv.getUint32(20) === 64, "result size");
    check(bytes.length === item.bytes_out, `result bytes ${bytes.length} != bytes_out ${item.bytes_out}`);
    check(res.response.headers.get("Content-Disposition")?.includes(item.result_name ?? "?"),
          "Content-Disposition");
    const zip = await api.GET("/api/v1/jobs/{id}/archive.zip", {
        params: { path: { id: job.id } },
        parseAs: "arrayBuffer",
    });
    check(zip.response.status === 200 && zip.data, `zip: ${zip.response.status}`);
    check(new DataView(zip.data as ArrayBuffer).getUint32(0, true) === 0x04034b50, "not a zip");
    const zipBytes = (zip.data as ArrayBuffer).byteLength;
    console.log(`downloaded ${bytes.length} bytes of PNG (${item.result_name}) and a zip of ` +
                `${zipBytes} bytes`);

    // A typed error.
    const missing = await api.GET("/api/v1/jobs/{id}", { params: { path: { id: "0123abcd" } } });
    check(missing.response.status === 404 && missing.error?.error.code === "ENOTFOUND",
          "missing job: " + JSON.stringify(missing.error));
    const anon = createClient<paths>({ baseUrl: base });
    const denied = await anon.GET("/api/v1/jobs");
    check(denied.response.status === 401 && denied.error?.error.code === "EAUTH", "no token: " + denied.response.status);

    // Delete it: a finished job's DELETE answers a DeletedJob.
    const del = await api.DELETE("/api/v1/jobs/{id}", { params: { path: { id: job.id } } });
    check(del.data && "deleted" in del.data && del.data.deleted, "delete: " + JSON.stringify(del.data));
    console.log(`deleted: ${del.data.freed_bytes} bytes freed`);
    console.log("ok: generated client");
}

main().catch((e) => fail(String(e && e.stack ? e.stack : e)));
