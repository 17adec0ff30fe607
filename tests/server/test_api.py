# SPDX-License-Identifier: MIT
# The whole HTTP API against a real `dip serve`: ops, whoami, a batch job followed over SSE to its
# end, per-result downloads checked against OpenCV, archive.zip against the downloads, the result
# cache, the synchronous /process endpoint, /metrics, /cluster and the static web files.
import io
import os
import zipfile

import numpy as np

from srvutil import Server, check, decode, encode, image, multipart, sse_events

web = None
s = None
try:
    import tempfile
    web = tempfile.mkdtemp(prefix="dip-web-")
    with open(os.path.join(web, "index.html"), "w") as f:
        f.write("<!doctype html><title>dip</title>")
    with open(os.path.join(web, "app.js"), "w") as f:
        f.write("console.log('dip');")
    with open(os.path.join(web, "style.css"), "w") as f:
        f.write("body{}")
    s = Server("--web", web, "--threads", "2")

    # ---- small endpoints ----
    r = s.get("/healthz")
    check(r.status == 200 and r.json() == {"status": "ok"}, "healthz")
    r = s.get("/api/v1/whoami")
    check(r.status == 200, "whoami %d" % r.status)
    check(r.json() == {"name": "anonymous", "admin": True, "auth_required": False},
          "open mode whoami: %r" % r.json())
    r = s.get("/api/v1/ops")
    ops = r.json()["ops"]
    names = [o["name"] for o in ops]
    check("invert" in names and "gaussian" in names, "ops lists invert, gaussian")
    g = ops[names.index("gaussian")]
    check(g["kind"] == "stencil" and g["version"] >= 1, "gaussian kind/version")
    for p in g["params"]:
        check(set(p) == {"name", "type", "min", "max", "default", "choices", "help", "odd"},
              "param keys %r" % sorted(p))
        check(p["type"] in ("int", "double", "bool", "enum"), "param type")
    size = [p for p in g["params"] if p["name"] == "size"][0]
    check(size["odd"] is True and size["min"] == 0, "gaussian size declares odd (0: from sigma)")
    r = s.get("/api/v1/cluster")
    check(r.status == 200 and r.json()["executor"] == "local", "cluster %r" % r.body[:200])
    check(len(r.json()["workers"]) >= 1, "cluster lists workers")
    check(all(d["name"] and d["type"] in ("gpu", "cpu") for d in r.json()["devices"]),
          "cluster lists the OpenCL devices %r" % r.json()["devices"])

    # ---- a batch job ----
    imgs = [image(320, 240, seed=i) for i in range(3)]
    files = [("a.png", encode(imgs[0], ".png")), ("b.png", encode(imgs[1], ".png")),
             ("c.jpg", encode(imgs[2], ".jpg"))]
    r = s.submit(files, pipeline="invert", fmt="png")
    check(r.status == 201, "submit: %d %r" % (r.status, r.body[:300]))
    job = r.json()
    check(r.header("Location") == "/api/v1/jobs/" + job["id"], "Location header")
    for k in ("id", "state", "pipeline", "format", "quality", "created", "finished", "owner",
              "items", "progress"):
        check(k in job, "job has %s" % k)
    check(job["state"] in ("queued", "running", "done"), "fresh job state %s" % job["state"])
    check([it["name"] for it in job["items"]] == ["a.png", "b.png", "c.jpg"], "item names")
    check(job["items"][0]["width"] == 320 and job["items"][0]["height"] == 240, "probed size")
    for k in ("items_total", "items_done", "items_failed", "tasks_total", "tasks_done",
              "pixels_total", "pixels_done", "percent", "eta_s"):
        check(k in job["progress"], "progress has %s" % k)
    check(job["progress"]["items_total"] == 3, "items_total")

    events = sse_events(s, job["id"])
    check(len(events) >= 2, "at least a progress and an end event")
    check(events[-1][0] == "end" and events[-1][1]["state"] == "done", "ends done")
    check(all(e == "progress" for e, _ in events[:-1]), "progress events before the end")
    pcts = [d["progress"]["percent"] for _, d in events]
    check(pcts == sorted(pcts), "percent never goes back: %r" % pcts)

    job = s.wait(job["id"])
    check(job["state"] == "done" and job["finished"] is not None, "job done")
    check(job["progress"]["items_done"] == 3 and job["progress"]["percent"] == 100.0, "progress")
    downloads = {}
    for it, src in zip(job["items"], files):
        check(it["state"] == "done" and it["error"] is None, "item done")
        check(it["result_url"] == "/api/v1/jobs/%s/results/%d" % (job["id"], it["index"]),
              "result_url")
        check(it["out_width"] == 320 and it["out_height"] == 240, "out size")
        check(it["cached"] is False, "first run not cached")
        r = s.get(it["result_url"])
        check(r.status == 200 and r.header("Content-Type") == "image/png", "result type")
        cd = r.header("Content-Disposition")
        name = os.path.splitext(src[0])[0] + ".png"
        check(cd == 'attachment; filename="%s"' % name, "disposition %r" % cd)
        check(len(r.body) == it["bytes_out"], "bytes_out")
        got = decode(r.body)
        want = 255 - decode(src[1])
        check(got.shape == want.shape and np.array_equal(got, want),
              "result of %s is not the inverted input" % src[0])
        downloads[name] = r.body

    # ---- archive.zip equals the per-result downloads ----
    r = s.get("/api/v1/jobs/%s/archive.zip" % job["id"])
    check(r.status == 200 and r.header("Content-Type") == "application/zip", "zip response")
    z = zipfile.ZipFile(io.BytesIO(r.body))
    check(z.testzip() is None, "zip CRCs")
    check(sorted(z.namelist()) == sorted(downloads), "zip names %r" % z.namelist())
    for n in z.namelist():
        check(z.read(n) == downloads[n], "zip entry %s equals its download" % n)

    # Names repeat within a job: downloads and zip entries stay unique and agree.
    r = s.submit([("same.png", files[0][1]), ("dir/same.png", files[1][1]),
                  ("same.jpg", files[2][1])], pipeline="invert", fmt="png")
    jd = s.wait(r.json()["id"])
    names = []
    for it in jd["items"]:
        cd = s.get(it["result_url"]).header("Content-Disposition")
        names.append(cd.split('filename="')[1].rstrip('"'))
    check(names == ["same.png", "same-1.png", "same-2.png"], "unique names %r" % names)
    z = zipfile.ZipFile(io.BytesIO(s.get("/api/v1/jobs/%s/archive.zip" % jd["id"]).body))
    check(z.namelist() == names, "zip names %r" % z.namelist())

    # ---- the result cache: same inputs, pipeline, options ----
    r = s.submit(files[:2], pipeline="invert", fmt="png")
    j2 = s.wait(r.json()["id"])
    check(j2["state"] == "done", "cached job done")
    check(all(it["cached"] for it in j2["items"]), "second run served from the cache")
    check(all(it["versions"] == job["items"][0]["versions"] for it in j2["items"]),
          "versions recorded")
    check("invert@" in job["items"][0]["versions"], "versions name the op version")
    r = s.get(j2["items"][0]["result_url"])
    check(r.body == downloads["a.png"], "cached bytes equal")
    # Different options are a different result.
    r = s.submit(files[:1], pipeline="invert", fmt="jpeg", quality="80")
    j3 = s.wait(r.json()["id"])
    check(j3["items"][0]["cached"] is False and j3["items"][0]["out_format"] == "jpeg",
          "jpeg not from the png cache")
    r = s.get(j3["items"][0]["result_url"])
    check(r.header("Content-Type") == "image/jpeg" and r.body[:2] == b"\xff\xd8", "jpeg bytes")

    # Empty format keeps each input's format.
    r = s.submit(files, pipeline="gray")
    j4 = s.wait(r.json()["id"])
    check([it["out_format"] for it in j4["items"]] == ["png", "png", "jpeg"], "same format")

    # ---- list ----
    r = s.get("/api/v1/jobs")
    ids = [j["id"] for j in r.json()["jobs"]]
    check(job["id"] in ids and j2["id"] in ids and len(ids) == 5, "list %r" % ids)
    r = s.get("/api/v1/jobs?items=1")
    check(all("items" in j for j in r.json()["jobs"]), "list with items")

    # ---- synchronous /process ----
    src = encode(image(64, 48, seed=9), ".png")
    r = s.request("POST", "/api/v1/process?pipeline=invert&format=png", body=src)
    check(r.status == 200 and r.header("Content-Type") == "image/png", "process %d" % r.status)
    check(np.array_equal(decode(r.body), 255 - decode(src)), "process result")
    r = s.request("POST", "/api/v1/process?pipeline=invert&format=jpeg&quality=50", body=src)
    check(r.status == 200 and r.header("Content-Type") == "image/jpeg", "process jpeg")
    jpg = encode(image(64, 48, seed=9), ".jpg")
    r = s.request("POST", "/api/v1/process?pipeline=gray", body=jpg)
    check(r.status == 200 and r.header("Content-Type") == "image/jpeg", "process keeps jpeg")
    r = s.request("HEAD", "/healthz")
    check(r.status == 200 and r.body == b"", "HEAD healthz")
    r = s.request("POST", "/api/v1/process?pipeline=nosuchop", body=src)
    check(r.status == 400 and "nosuchop" in r.json()["error"]["message"], "process bad pipeline")
    r = s.request("POST", "/api/v1/process?pipeline=invert", body=b"not an image at all")
    check(r.status in (415, 422), "process bad image %d" % r.status)

    # ---- job failure: an item the pipeline refuses fails with a message ----
    r = s.submit([("g.png", encode(image(40, 30, 1)[:, :, 0:1], ".png"))],
                 pipeline="crop(x=100, y=100, width=10, height=10)")
    if r.status == 201:
        jf = s.wait(r.json()["id"])
        check(jf["state"] == "failed" and jf["items"][0]["error"], "failed item has an error")
        r = s.get("/api/v1/jobs/%s/results/0" % jf["id"])
        check(r.status == 404, "no result for a failed item")
    else:
        check(r.status == 400, "crop outside refused: %d" % r.status)

    # ---- metrics ----
    r = s.get("/metrics")
    text = r.body.decode()
    check(r.status == 200 and r.header("Content-Type").startswith("text/plain"), "metrics")
    for needle in ('dip_jobs{state="done"}', "dip_task_seconds_bucket", "dip_cache_hits_total",
                   "dip_bytes_in_total", "dip_bytes_out_total", 'dip_workers{status="alive"}'):
        check(needle in text, "metrics has %s" % needle)
    hits = [int(l.split()[1]) for l in text.splitlines() if l.startswith("dip_cache_hits_total ")]
    check(hits and hits[0] >= 5, "cache hits counted: %r" % hits)

    # ---- static files ----
    r = s.get("/")
    check(r.status == 200 and r.header("Content-Type").startswith("text/html"), "index")
    check(b"<title>dip</title>" in r.body, "index body")
    r = s.get("/app.js")
    check(r.status == 200 and "javascript" in r.header("Content-Type"), "js type")
    r = s.get("/style.css")
    check(r.status == 200 and r.header("Content-Type").startswith("text/css"), "css type")
    for path in ("/../CMakeLists.txt", "/%2e%2e/%2e%2e/etc/passwd", "/..%2fetc/passwd",
                 "//etc/passwd", "/nope.html", "/app.js/.."):
        r = s.get(path)
        check(r.status in (400, 404), "static %s gave %d" % (path, r.status))
    check(s.healthy(), "healthy at the end")
    print("ok")
finally:
    if s:
        s.close()
    if web:
        import shutil
        shutil.rmtree(web, ignore_errors=True)
