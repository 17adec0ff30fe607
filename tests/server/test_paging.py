# SPDX-License-Identifier: MIT
# Items are paged (issue 9, finding 13): a job list with items=1 lists a first page of each job's
# items (the answer stays small however big the jobs are), and GET /api/v1/jobs/{id} pages
# through them with items_offset and items_limit; the progress still counts every item.
from srvutil import Server, check, encode, image

s = None
try:
    s = Server("--quiet")
    tiny = encode(image(4, 4, 1), ".png")
    j = s.submit([("t%03d.png" % i, tiny) for i in range(250)], pipeline="invert").json()
    s.wait(j["id"], timeout=300)
    lst = s.get("/api/v1/jobs?items=1").json()["jobs"]
    check(len(lst[0]["items"]) == 100 and lst[0]["items_next"] == 100,
          "the list pages items: %d items, next %r" % (len(lst[0]["items"]),
                                                       lst[0].get("items_next")))
    check(lst[0]["progress"]["items_total"] == 250, "progress counts every item")
    small = s.get("/api/v1/jobs?items=1&items_limit=3").json()["jobs"][0]
    check(len(small["items"]) == 3, "items_limit in the list")
    page = s.get("/api/v1/jobs/%s?items_offset=200&items_limit=100" % j["id"]).json()
    check([it["index"] for it in page["items"]] == list(range(200, 250)), "last page")
    check(page["items_next"] is None and page["items_offset"] == 200, "no next page")
    page = s.get("/api/v1/jobs/%s?items_offset=0&items_limit=120" % j["id"]).json()
    check(len(page["items"]) == 120 and page["items_next"] == 120, "first page")
    full = s.get("/api/v1/jobs/%s" % j["id"]).json()
    check(len(full["items"]) == 250, "a job of up to 1000 items comes whole by default")
    r = s.get("/api/v1/jobs/%s?items_limit=-1" % j["id"])
    check(r.status == 400, "a negative limit: %d" % r.status)
    print("ok")
finally:
    if s:
        s.close()
