#!/usr/bin/python3
"""Fill a running modeld with N small synthetic models over one connection
(the real import protocol, descriptors and all). Used by bench/list.sh.
usage: populate.py SOCKET N"""
import json
import os
import socket
import struct
import sys
import tempfile


def frame(obj):
    b = json.dumps(obj).encode()
    return b"MD" + struct.pack("<HII", 1, len(b), 0), b


def call(s, obj, fds=()):
    b = json.dumps(obj).encode()
    hdr = b"MD" + struct.pack("<HII", 1, len(b), len(fds))
    socket.send_fds(s, [hdr + b], list(fds))
    while True:
        h = recv_exact(s, 12)
        n, nf = struct.unpack("<II", h[4:])
        msg = json.loads(recv_exact(s, n))
        if "progress" in msg:
            continue
        if not msg.get("ok"):
            raise SystemExit("import failed: %s" % msg)
        return msg


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise SystemExit("daemon hung up")
        buf += c
    return buf


def main():
    sock, n = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    d = tempfile.mkdtemp()
    shared = os.path.join(d, "weights")
    with open(shared, "wb") as f:
        f.write(os.urandom(4096))
    orgs = ["acme", "meta-llama", "google", "mistralai", "qwen", "microsoft", "tiiuae", "bigscience"]
    for i in range(n):
        cfg = os.path.join(d, "config.json")
        with open(cfg, "w") as f:
            json.dump({"architectures": ["LlamaForCausalLM"], "i": i, "hidden_size": 64 + i % 7}, f)
        a = os.open(cfg, os.O_RDONLY)
        b = os.open(shared, os.O_RDONLY)
        call(s, {"op": "import", "name": f"{orgs[i % len(orgs)]}/model-{i:06d}",
                 "files": [{"path": "config.json"}, {"path": "weights.dat"}],
                 "more": False, "source": {"type": "local", "path": "/synthetic"}}, [a, b])
        os.close(a)
        os.close(b)
        if i and i % 1000 == 0:
            print(f"  {i} models", file=sys.stderr)


main()
