#!/usr/bin/python3
"""Time catalog queries over the raw protocol: the daemon's own elapsed_ms
(from request parsed to last frame queued; best of RUNS), the client's wall
time to the last byte, and with PID the daemon's CPU time per query
(utime+stime from /proc over 20 more runs: what the query costs, whatever
else the machine is doing). usage: catalog_query.py SOCKET 'JSON' [RUNS [PID]]"""
import os
import json
import socket
import struct
import sys
import time


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        c = s.recv(min(n - len(buf), 1 << 20))
        if not c:
            raise SystemExit("daemon hung up")
        buf += c
    return bytes(buf)


def run(s, req):
    b = json.dumps(req).encode()
    t0 = time.perf_counter()
    s.sendall(b"MD" + struct.pack("<HII", 1, len(b), 0) + b)
    count = 0
    while True:
        h = recv_exact(s, 12)
        n = struct.unpack("<I", h[4:8])[0]
        body = recv_exact(s, n)
        if body.startswith(b'{"partial"'):
            continue
        msg = json.loads(body)
        if "progress" in msg:
            continue
        wall = (time.perf_counter() - t0) * 1000
        if not msg.get("ok"):
            raise SystemExit("query failed: %s" % msg)
        res = msg["result"]
        count = msg.get("count", len(res) if isinstance(res, list) else res.get("matches"))
        return msg.get("elapsed_ms", -1), wall, count


def main():
    sock, req = sys.argv[1], json.loads(sys.argv[2])
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    run(s, req)  # warm
    best = min((run(s, req) for _ in range(runs)), key=lambda r: r[0])
    cpu = ""
    if len(sys.argv) > 4:
        def ticks():
            with open("/proc/%s/stat" % sys.argv[4]) as f:
                v = f.read().rsplit(")", 1)[1].split()
            return int(v[11]) + int(v[12])
        t0, n = ticks(), 20
        for _ in range(n):
            run(s, req)
        cpu = "   cpu %7.2f ms" % ((ticks() - t0) * 1000.0 / os.sysconf("SC_CLK_TCK") / n)
    print("server %7.2f ms   socket wall %7.2f ms   %6s results" % best + cpu)


main()
