# SPDX-License-Identifier: MIT
# Issue 10, bug 7: the time left (progress.eta_s) comes from the work done per second since the
# job (re)started, not counting images served from the result cache or finished before a restart,
# and is null ("estimating") until it is stable. A job of eight equal images, two of
# them cached from an earlier job, is at 25 % at once: the old ETA (elapsed * left / done) then
# said "0 s left" for a job with seconds to go; after a restart it did the same with the images
# done before it. Every ETA shown must be of the order of the time that was really left.
import os
import sys
import time

from srvutil import Server, check, encode, image

# Every image takes a known time without using the CPU: the test build's hook
# DIP_TEST_ITEM_SLEEP_MS (src/exec/local.c) adds 1 s to each, so a job of six images to compute
# lasts about 6 s on any machine and at any load (the ETA stays null for the first 2 s). Before,
# 2400-pixel images through median and bilateral made the jobs long: 28 CPU seconds, and a run
# time that moved with the machine's speed.
if os.environ.get("DIP_TEST_HOOKS") != "1":
    print("SKIP: needs a build with DIP_TEST_HOOKS (the ci and asan presets)")
    sys.exit(77)
PIPELINE = "invert"
SIDE = 64
ENV = dict(os.environ, DIP_TEST_ITEM_SLEEP_MS="1000")


def follow(s, jid):
    """(readings (time, percent, eta_s) while running, the final job, when it ended)."""
    obs = []
    end = time.time() + 300
    while time.time() < end:
        j = s.get("/api/v1/jobs/" + jid).json()
        if j["state"] == "running":
            obs.append((time.time(), j["progress"]["percent"], j["progress"]["eta_s"]))
        if j["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.05)
    return obs, j, time.time()


def check_etas(what, obs, t_end):
    shown = [(t, p, e) for t, p, e in obs if e is not None]
    check(shown, "%s: an ETA once the rate is known: %r" % (what, obs[-5:]))
    check(obs[0][2] is None, "%s: estimating at the start: %r" % (what, obs[0],))
    for t, p, e in shown:
        left = t_end - t
        # Of the order of the real time left: never a fraction of it ("0 s left at 43 %").
        check(left < 1.0 or e >= 0.3 * left,
              "%s: at %.1f %% the ETA said %.1f s, %.1f s were left" % (what, p, e, left))
    return shown


s = None
try:
    s = Server("--quiet", "--threads", "1", "--shutdown-grace", "0", env=ENV)
    files = [("e%d.png" % i, encode(image(SIDE, SIDE, seed=20 + i), ".png")) for i in range(8)]
    j1 = s.submit(files[:2], pipeline=PIPELINE, fmt="png").json()
    j1 = s.wait(j1["id"], timeout=240)
    check(j1["state"] == "done", "first job done")
    r = s.submit(files, pipeline=PIPELINE, fmt="png")
    check(r.status == 201, "submit: %d %r" % (r.status, r.body[:200]))
    obs, j, t_end = follow(s, r.json()["id"])
    check(j["state"] == "done", "job done: %s" % j["state"])
    check(sum(1 for it in j["items"] if it["cached"]) == 2, "two images from the cache")
    check(any(p >= 25 and t - obs[0][0] < 1.0 for t, p, _ in obs),
          "the cached quarter shows at once: %r" % obs[:5])
    shown = check_etas("cached", obs, t_end)
    print("ok: cached: %d readings, first ETA %.1f s with %.1f s left, estimating before" %
          (len(obs), shown[0][2], t_end - shown[0][0]))

    # A restart after three of eight images: the resumed run's rate counts only its own work.
    files = [("r%d.png" % i, encode(image(SIDE, SIDE, seed=40 + i), ".png")) for i in range(8)]
    jid = s.submit(files, pipeline=PIPELINE, fmt="png").json()["id"]
    end = time.time() + 240
    while time.time() < end:
        j = s.get("/api/v1/jobs/" + jid).json()
        if sum(it["state"] == "done" for it in j["items"]) >= 3 or j["state"] == "done":
            break
        time.sleep(0.05)
    s.stop()
    s.start()
    obs, j, t_end = follow(s, jid)
    check(j["state"] == "done", "resumed job done: %s" % j["state"])
    check(obs and obs[0][1] >= 30, "resumed at the figure it reached: %r" % obs[:3])
    shown = check_etas("restart", obs, t_end)
    print("ok: restart: %d readings, first ETA %.1f s with %.1f s left, estimating before" %
          (len(obs), shown[0][2], t_end - shown[0][0]))
finally:
    if s:
        s.close()
