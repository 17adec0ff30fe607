# SPDX-License-Identifier: MIT
# What the web page's features need from the server (issue 10, "what users expect"): a job's
# name; an item's stored input (before/after for past jobs); a retry of the failed and cancelled
# images as a new job from the stored inputs; failures.txt in the zip; and static files that are
# compressed and cached (ETag, revalidated; never no-store), while API answers stay no-store.
import gzip
import io
import os
import time
import zipfile

import numpy as np

from srvutil import SRC, Server, check, decode, encode, image, multipart

s = None
try:
    s = Server("--quiet", "--threads", "2")

    # ---- Named jobs ----
    good = encode(image(120, 80, 1), ".png")
    bad = good[: len(good) // 2]  # a valid header, truncated pixels: fails when it runs
    r = s.submit([("good.png", good), ("bad.png", bad)], pipeline="invert",
                 extra=[("name", "Holiday – invert")])
    check(r.status == 201, "submit: %d %r" % (r.status, r.body[:300]))
    j = s.wait(r.json()["id"])
    check(j["name"] == "Holiday – invert", "the job keeps its name: %r" % j["name"])
    check([i["state"] for i in j["items"]] == ["done", "failed"], "one done, one failed")
    listed = [x for x in s.get("/api/v1/jobs").json()["jobs"] if x["id"] == j["id"]]
    check(listed and listed[0]["name"] == "Holiday – invert", "the list shows the name")
    unnamed = s.wait(s.submit([("u.png", good)], pipeline="invert").json()["id"])
    check(unnamed["name"] is None, "no name: null")
    for name, why in (("a\nb", "control character"), ("x" * 101, "at most 100")):
        r = s.submit([("good.png", good)], pipeline="invert", extra=[("name", name)])
        check(r.status == 400 and why in r.json()["error"]["message"],
              "name %r refused: %d %r" % (name[:10], r.status, r.body[:200]))

    # ---- The stored input, byte for byte ----
    r = s.get("/api/v1/jobs/%s/items/0/input" % j["id"])
    check(r.status == 200 and r.body == good, "input 0 is the upload: %d" % r.status)
    check(r.header("Content-Type") == "image/png", "typed by its bytes: %r"
          % r.header("Content-Type"))
    check(r.header("Cache-Control") == "no-store", "a user's data is not cached")
    check(s.get("/api/v1/jobs/%s/items/1/input" % j["id"]).body == bad,
          "a failed item's input too")
    for n in ("2", "x", "-1"):
        r = s.get("/api/v1/jobs/%s/items/%s/input" % (j["id"], n))
        check(r.status == 404, "item %s: %d" % (n, r.status))
    check(s.get("/api/v1/jobs/nosuchjob/items/0/input").status == 404, "no such job")

    # ---- failures.txt in the zip ----
    z = zipfile.ZipFile(io.BytesIO(s.get("/api/v1/jobs/%s/archive.zip" % j["id"]).body))
    check(z.namelist() == ["good.png", "failures.txt"], "entries: %r" % z.namelist())
    text = z.read("failures.txt").decode()
    check("1 of 2 images have no result" in text and "bad.png: failed: png:" in text,
          "failures.txt says what failed and why:\n" + text)
    check("good.png" not in text, "a done image is not listed")
    z = zipfile.ZipFile(io.BytesIO(s.get("/api/v1/jobs/%s/archive.zip" % unnamed["id"]).body))
    check(z.namelist() == ["u.png"], "no failures.txt when all are done: %r" % z.namelist())

    # ---- Retry ----
    r = s.request("POST", "/api/v1/jobs/%s/retry" % unnamed["id"])
    check(r.status == 400 and "no failed or cancelled" in r.json()["error"]["message"],
          "nothing to retry: %d %r" % (r.status, r.body[:200]))
    check(s.request("POST", "/api/v1/jobs/nosuchjob/retry").status == 404, "retry: no such job")
    r = s.request("POST", "/api/v1/jobs/%s/retry" % j["id"])
    check(r.status == 201, "retry: %d %r" % (r.status, r.body[:300]))
    rj = r.json()
    check(r.header("Location") == "/api/v1/jobs/" + rj["id"] and rj["id"] != j["id"],
          "a new job: %r" % r.header("Location"))
    check([i["name"] for i in rj["items"]] == ["bad.png"], "only the failed image")
    check(rj["name"] == "retry of Holiday – invert" and rj["pipeline"] == "invert",
          "named after the old job, same pipeline: %r" % rj["name"])
    rj = s.wait(rj["id"])
    check(rj["items"][0]["state"] == "failed", "a corrupt input fails again")

    # A job cancelled while queued: its images are retried from the stored inputs (no upload)
    # and the new job's results are right. A slow job keeps the runner busy meanwhile.
    big = image(2400, 1800, seed=5)
    big[100:1700, 100:2300] //= 4
    slow = s.submit([("slow.png", encode(big, ".png"))], pipeline="median(size=15) | bilateral")
    check(slow.status == 201, "slow job: %r" % slow.body[:200])
    imgs = [image(200 + 10 * k, 150, seed=20 + k) for k in range(4)]
    r = s.submit([("c%d.png" % k, encode(im, ".png")) for k, im in enumerate(imgs)],
                 pipeline="invert", fmt="png")
    cj = r.json()
    c = s.request("DELETE", "/api/v1/jobs/" + cj["id"]).json()
    s.request("DELETE", "/api/v1/jobs/" + slow.json()["id"])
    cancelled = [i["name"] for i in c["items"] if i["state"] == "cancelled"]
    check(cancelled, "some images were cancelled: %r" % [i["state"] for i in c["items"]])
    end = time.time() + 60
    while True:
        r = s.request("POST", "/api/v1/jobs/%s/retry" % cj["id"])
        if r.status != 429 or time.time() > end:
            break
        check("in flight" in r.json()["error"]["message"], "429 says why: %r" % r.body[:200])
        time.sleep(0.1)
    check(r.status == 201, "retry of the cancelled job: %d %r" % (r.status, r.body[:200]))
    final = s.get("/api/v1/jobs/" + cj["id"]).json()
    left = [i["name"] for i in final["items"] if i["state"] in ("failed", "cancelled")]
    rj = r.json()
    check([i["name"] for i in rj["items"]] == left and left,
          "the retry holds the cancelled images: %r vs %r" % ([i["name"] for i in rj["items"]], left))
    check(rj["name"] == "retry of " + cj["id"], "an unnamed job's retry names its id")
    rj = s.wait(rj["id"])
    check(rj["state"] == "done", "the retry ran: %r" % [i["error"] for i in rj["items"]])
    for it in rj["items"]:
        k = int(it["name"][1])
        out = decode(s.get("/api/v1/jobs/%s/results/%d" % (rj["id"], it["index"])).body)
        check(np.array_equal(out, 255 - imgs[k]), "%s: the inverted image" % it["name"])

    # A running job is not retried.
    r = s.submit([("slow.png", encode(big, ".png"))], pipeline="median(size=15) | bilateral")
    r2 = s.request("POST", "/api/v1/jobs/%s/retry" % r.json()["id"])
    check(r2.status == 429 and "finished" in r2.json()["error"]["message"],
          "an unfinished job: %d %r" % (r2.status, r2.body[:200]))
    s.request("DELETE", "/api/v1/jobs/" + r.json()["id"])

    # ---- Static files: compressed, ETag, revalidated ----
    with open(os.path.join(SRC, "web", "app.js"), "rb") as f:
        app = f.read()
    r = s.get("/app.js", headers={"Accept-Encoding": "gzip, deflate"})
    check(r.status == 200 and r.header("Content-Encoding") == "gzip", "gzip: %r"
          % r.header("Content-Encoding"))
    check(gzip.decompress(r.body) == app, "the compressed body is app.js")
    check(len(r.body) < len(app) / 2, "compressed: %d of %d bytes" % (len(r.body), len(app)))
    cc = r.header("Cache-Control")
    check(cc == "no-cache" and "no-store" not in cc, "revalidated, not no-store: %r" % cc)
    check(r.header("Vary") == "Accept-Encoding", "Vary: %r" % r.header("Vary"))
    etag = r.header("ETag")
    check(etag and etag.startswith('"'), "an ETag: %r" % etag)
    r = s.get("/app.js", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    check(r.status == 304 and r.body == b"" and r.header("ETag") == etag, "304: %d" % r.status)
    r = s.get("/app.js")
    check(r.status == 200 and r.body == app and r.header("Content-Encoding") is None,
          "plain without Accept-Encoding")
    check(r.header("ETag") != etag, "the plain and gzip bodies have their own ETags")
    r = s.get("/app.js", headers={"Accept-Encoding": "gzip;q=0"})
    check(r.header("Content-Encoding") is None, "gzip;q=0 is refused")
    r = s.get("/favicon.svg", headers={"Accept-Encoding": "gzip"})
    check(r.status == 200 and r.header("ETag"), "svg: %d" % r.status)
    check(s.get("/api/v1/ops").header("Cache-Control") == "no-store", "the API stays no-store")
    print("ok: name, input, failures.txt, retry, static caching")
finally:
    if s:
        s.close()
