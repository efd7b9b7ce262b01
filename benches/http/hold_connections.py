#!/usr/bin/env python3
"""Opens N connections to a running engine from 100 loopback addresses, each sending a partial
request head, holds them HOLD seconds, then closes them all. Prints the descriptors the engine
held (beyond its own) 1 s in and at the end of the hold, and its RSS 1 s in. Bounded: N connections, HOLD seconds.
Usage: hold_connections.py PORT N HOLD PIDFILE_OF_ENGINE"""
import os, socket, sys, time

port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
pid = sys.argv[4]
def rss():
    with open("/proc/%s/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
import os
base_fds = len(os.listdir("/proc/%s/fd" % pid))
socks = []
for i in range(n):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (2 + i % 100), 0))
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
time.sleep(0.5)
for s in socks:
    try:
        s.send(b"GET /engagement/v3/callbacks HTTP/1.1\r\nHost: x\r\nx-api-key: ")
    except OSError:
        pass
time.sleep(1)
held_rss = rss()
def still_open():
    # The engine's own descriptors beyond those it had before the flood.
    return len(os.listdir("/proc/%s/fd" % pid)) - base_fds
open_1s = still_open()
time.sleep(max(0.0, hold - 1))
open_end = still_open()
for s in socks:
    s.close()
print("engine_fds_1s %d rss_1s_kib %d engine_fds_%gs %d" % (open_1s, held_rss, hold, open_end))
