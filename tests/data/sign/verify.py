#!/usr/bin/python3
"""Third-party check of a modeld signature bundle, independent of modeld:
Python's standard library for JSON/base64/sha256 and the `openssl` command
for Ed25519 (docs/signing.md walks through the same steps).

usage: verify.py BUNDLE.json PUBKEY.pem [MODEL_DIR]
With MODEL_DIR, every signed file is re-hashed and compared, and files
present in MODEL_DIR but not signed are reported. Exit 0 when valid.
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

PAYLOAD_TYPE = "application/vnd.in-toto+json"


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    bundle = json.load(open(sys.argv[1]))
    env = bundle.get("dsseEnvelope", bundle)
    if env["payloadType"] != PAYLOAD_TYPE:
        print("wrong payloadType")
        return 1
    payload = base64.b64decode(env["payload"], validate=True)
    # DSSE pre-authentication encoding
    pae = b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)
    ok = False
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "pae"), "wb") as f:
            f.write(pae)
        for s in env["signatures"]:
            with open(os.path.join(tmp, "sig"), "wb") as f:
                f.write(base64.b64decode(s["sig"], validate=True))
            r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", sys.argv[2], "-rawin",
                                "-in", os.path.join(tmp, "pae"), "-sigfile", os.path.join(tmp, "sig")],
                               capture_output=True)
            ok = ok or r.returncode == 0
    if not ok:
        print("signature does not verify")
        return 1
    st = json.loads(payload)
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://model_signing/signature/v1.0"
    res = st["predicate"]["resources"]
    names = [r["name"] for r in res]
    assert names == sorted(names, key=lambda n: n.encode()), "resources not sorted"
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in res)).hexdigest()
    if root != st["subject"][0]["digest"]["sha256"]:
        print("subject digest is not the root of the resources")
        return 1
    if len(sys.argv) == 4:
        top = sys.argv[3]
        for r in res:
            h = hashlib.sha256(open(os.path.join(top, r["name"]), "rb").read()).hexdigest()
            if h != r["digest"]:
                print("%s: sha256 differs" % r["name"])
                return 1
        on_disk = set()
        for d, _, fs in os.walk(top):
            for f in fs:
                on_disk.add(os.path.relpath(os.path.join(d, f), top))
        extra = on_disk - set(names)
        if extra:
            print("not covered by the signature: %s" % ", ".join(sorted(extra)))
            return 1
    print("valid: %s, %d files" % (st["subject"][0]["name"], len(res)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
