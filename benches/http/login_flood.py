#!/usr/bin/env python3
"""500 concurrent failed administration logins from 100 loopback addresses (5 each, within the
per-address burst) against a running engine; prints the status counts. Bounded: one round of
N requests, each with a 60 s timeout. Usage: login_flood.py PORT [N] [ADDRESSES]"""
import http.client, json, sys, threading, collections

port = int(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
addresses = int(sys.argv[3]) if len(sys.argv) > 3 else 100
counts = collections.Counter()
lock = threading.Lock()
start = threading.Barrier(n)

def one(i):
    src = ("127.0.0.%d" % (2 + i % addresses), 0)
    body = json.dumps({"username": "guess%d" % i, "password": "wrong"})
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=src)
        c.connect()
        start.wait(timeout=30)
        c.request("POST", "/admin/login", body, {"content-type": "application/json"})
        status = c.getresponse().status
        c.close()
    except Exception as e:  # a refused or reset connection counts as such
        status = type(e).__name__
    with lock:
        counts[status] += 1

threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(" ".join("%s:%d" % kv for kv in sorted(counts.items(), key=str)))
