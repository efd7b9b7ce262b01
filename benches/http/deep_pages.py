#!/usr/bin/env python3
"""Deep callback pages against a running engine (issue #15, item 5). Prints, as key=value:
the time of page 200 by `page` (median of 3), of the 200th page by cursor (if the engine has
`after`), a short query's latency (one phone number) alone and while 4 clients loop on page
200 for LOOP seconds, and a full-range bulk-cancel preview's size, time and the engine's RSS
growth. Bounded: fixed request counts and one LOOP-second window.
Usage: deep_pages.py PORT ENGINE_PID ADMIN_PASSWORD [LOOP]"""
import http.client, json, statistics, sys, threading, time

port, pid, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
loop = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
KEY = {"x-api-key": "bench-key"}

def rss():
    with open("/proc/%s/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))

def get(path, headers=KEY):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t = time.perf_counter()
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    body = r.read()
    dt = time.perf_counter() - t
    c.close()
    return r.status, body, dt

def post(path, payload, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t = time.perf_counter()
    c.request("POST", path, json.dumps(payload), dict(headers, **{"content-type": "application/json"}))
    r = c.getresponse()
    body = r.read()
    dt = time.perf_counter() - t
    c.close()
    return r.status, body, dt

out = {}
deep = "/engagement/v3/callbacks?page=200"
times = []
for _ in range(3):
    s, _, dt = get(deep)
    assert s == 200, s
    times.append(dt)
out["page200_ms"] = round(statistics.median(times) * 1000, 1)

s, body, _ = get("/engagement/v3/callbacks")
cursor = json.loads(body)["data"].get("nextCursor")
if cursor:
    for _ in range(198):
        s, body, _ = get("/engagement/v3/callbacks?after=" + cursor)
        cursor = json.loads(body)["data"]["nextCursor"]
    s, body, dt = get("/engagement/v3/callbacks?after=" + cursor)
    assert s == 200, s
    out["cursor_page200_ms"] = round(dt * 1000, 1)

short = "/engagement/v3/callbacks?phoneNumber=%2B33600042042"
alone = [get(short)[2] for _ in range(30)]
out["short_alone_p50_ms"] = round(statistics.median(alone) * 1000, 1)
out["short_alone_max_ms"] = round(max(alone) * 1000, 1)

stop = time.perf_counter() + loop
deep_done = [0]
def looper():
    while time.perf_counter() < stop:
        get(deep)
        deep_done[0] += 1
threads = [threading.Thread(target=looper) for _ in range(4)]
for t in threads:
    t.start()
time.sleep(0.5)
busy = []
while time.perf_counter() < stop:
    busy.append(get(short)[2])
for t in threads:
    t.join()
busy.sort()
out["short_busy_p50_ms"] = round(statistics.median(busy) * 1000, 1)
out["short_busy_p99_ms"] = round(busy[min(len(busy) - 1, int(len(busy) * 0.99))] * 1000, 1)
out["short_busy_max_ms"] = round(busy[-1] * 1000, 1)
out["short_busy_n"] = len(busy)
out["deep_pages_looped"] = deep_done[0]

s, body, _ = post("/admin/login", {"username": "bench", "password": password}, {})
token = json.loads(body)["data"]["accessToken"]
before = rss()
s, body, dt = post("/admin/callbacks/bulk-cancel/preview",
                   {"serviceName": "Sales_VQ_CB", "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
                   {"authorization": "Bearer " + token})
assert s == 200, (s, body[:200])
out["preview_bytes"] = len(body)
out["preview_ms"] = round(dt * 1000, 1)
out["preview_rss_growth_kib"] = rss() - before
print(" ".join("%s=%s" % kv for kv in out.items()))
