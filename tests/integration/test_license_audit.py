"""License records at import, `license`, `audit` and policy enforcement,
end to end through the daemon."""
import json
import os
import subprocess

from conftest import ROOT, Daemon, make_model

APACHE = open("/usr/share/common-licenses/Apache-2.0", "rb").read()


def model(tmp, d, card, license_text=None, extra=None):
    files = {"README.md": card.encode(), "config.json": b"{}"}
    if license_text:
        files["LICENSE"] = license_text
    files.update(extra or {})
    return make_model(os.path.join(tmp, d), files)


def test_license_recorded_and_lineage(daemon, tmp):
    base = model(tmp, "base", "---\nlicense: llama3.1\n---\n# base\n")
    ft = model(tmp, "ft", "---\nlicense: apache-2.0\nbase_model: meta-llama/Llama-3.1-8B\n"
               "pipeline_tag: text-generation\n---\n# ft\n", APACHE)
    daemon.ctl("import", base, "--name", "meta-llama/Llama-3.1-8B")
    daemon.ctl("import", ft, "--name", "acme/ft")
    lst = {e["name"]: e for e in daemon.ctl("list", "--json").json()}
    assert lst["acme/ft"]["license"]["spdx"] == "Apache-2.0"
    assert "acme/ft" in daemon.ctl("list").out and "Apache-2.0" in daemon.ctl("list").out
    show = daemon.ctl("show", "acme/ft", "--json").json()
    assert show["license"]["detected"]["id"] == "Apache-2.0"
    assert show["license"]["detected"]["score"] >= 0.9
    assert show["facts"]["task"] == "text-generation" and show["facts"]["provider"] == "acme"
    lic = daemon.ctl("license", "acme/ft", "--json").json()
    assert lic["lineage"][0]["name"] == "meta-llama/Llama-3.1-8B"
    assert lic["lineage"][0]["license"] == "LicenseRef-Llama-3.1-Community"
    kinds = [f["kind"] for f in lic["license"]["flags"]]
    assert "declared-vs-lineage" in kinds
    text = daemon.ctl("license", "acme/ft").out
    assert "Apache-2.0" in text and "meta-llama/Llama-3.1-8B" in text


def test_mismatch_flagged(daemon, tmp):
    m = model(tmp, "m", "---\nlicense: mit\n---\n", APACHE)
    daemon.ctl("import", m, "--name", "acme/mis")
    flags = daemon.ctl("show", "acme/mis", "--json").json()["license"]["flags"]
    assert any(f["kind"] == "declared-vs-detected" for f in flags)


def test_hostile_card_never_fails_import(daemon, tmp):
    laughs = "---\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n" \
             "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n" \
             "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n---\n"
    m = model(tmp, "h", laughs)
    daemon.ctl("import", m, "--name", "acme/laughs")
    show = daemon.ctl("show", "acme/laughs", "--json").json()
    assert show["card"]["status"] == "unknown" and show["card"]["reason"]
    m2 = make_model(os.path.join(tmp, "junk"), {"README.md": b"---\n\xff\xfe\x00junk\n---\n",
                                                "config.json": b"{}"})
    daemon.ctl("import", m2, "--name", "acme/junk")


def test_audit_formats_and_exit_code(daemon, tmp):
    daemon.ctl("import", model(tmp, "a", "---\nlicense: apache-2.0\n---\n", APACHE),
               "--name", "acme/ok")
    daemon.ctl("import", model(tmp, "b", "---\nlicense: cc-by-nc-4.0\n---\n"),
               "--name", "acme/nc")
    r = daemon.ctl("audit", "--json")
    assert r.rc == 0 and r.json()["counts"]["allow"] == 2
    pol = os.path.join(tmp, "policy.conf")
    with open(pol, "w") as f:
        f.write("# no non-commercial models\ndeny = @non-commercial\ndefault = allow\n")
    r = daemon.ctl("audit", "--policy", pol, check=False)
    assert r.rc == 1 and "acme/nc" in r.out and "deny" in r.out
    j = daemon.ctl("audit", "--policy", pol, "--format", "json", check=False).json()
    verdicts = {m["name"]: m["license"]["verdict"] for m in j["models"]}
    assert verdicts == {"acme/ok": "allow", "acme/nc": "deny"}
    csv = daemon.ctl("audit", "--format", "csv").out
    assert csv.startswith("name,") and "acme/nc" in csv
    for fmt in ("cyclonedx", "spdx"):
        out = daemon.ctl("audit", "--format", fmt).out
        p = os.path.join(tmp, fmt + ".json")
        with open(p, "w") as f:
            f.write(out)
        v = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests/data/schema/validate.py"),
                            fmt, p], capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
    with open(pol, "w") as f:
        f.write("dney = mit\n")
    r = daemon.ctl("audit", "--policy", pol, check=False)
    assert r.rc == 1 and "policy.conf:1" in r.err


def test_enforce_refuses_denied_import(tmp):
    pol = os.path.join(tmp, "policy.conf")
    with open(pol, "w") as f:
        f.write("enforce = true\ndeny = cc-by-nc-4.0\n")
    d = Daemon(tmp, extra=["--policy", pol]).start()
    try:
        r = d.ctl("import", model(tmp, "nc", "---\nlicense: cc-by-nc-4.0\n---\n"),
                  "--name", "acme/nc", check=False)
        assert r.rc == 1
        assert "CC-BY-NC-4.0" in r.err and "policy.conf:2" in r.err, r.err
        assert d.ctl("list", "--json").json() == []
        d.ctl("gc")
        assert d.ctl("verify", "--json").json()["orphans"] == 0
        r = d.ctl("import", model(tmp, "ok", "---\nlicense: mit\n---\n"), "--name", "acme/ok")
        assert r.rc == 0
    finally:
        d.stop()


def test_provenance_of_a_local_import(daemon, tmp):
    m = model(tmp, "p", "---\nlicense: mit\n---\n")
    daemon.ctl("import", m, "--name", "acme/prov")
    prov = daemon.ctl("show", "acme/prov", "--json").json()["provenance"]
    assert prov["type"] == "local" and prov["path"] == os.path.realpath(m)
    assert prov["modeld_version"] and prov["retrieved_at"].endswith("Z")
    assert {f["path"] for f in prov["files"]} == {"README.md", "config.json"}
    assert all(len(f["sha256"]) == 64 and f["verified_against"] for f in prov["files"])


def test_sign_and_verify_signature(daemon, tmp):
    m = model(tmp, "s", "---\nlicense: mit\n---\n")
    daemon.ctl("import", m, "--name", "acme/signed")
    priv, pub = os.path.join(tmp, "k.pem"), os.path.join(tmp, "k.pub")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", priv], check=True)
    subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True)
    sig = os.path.join(tmp, "model.sig")
    daemon.ctl("sign", "acme/signed", "--key", priv, "-o", sig)
    b = json.load(open(sig))
    assert b["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    # a third party's check (stdlib + openssl, docs/signing.md) against the folder
    chk = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests/data/sign/verify.py"),
                          sig, pub, m], capture_output=True, text=True)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    r = daemon.ctl("verify", "acme/signed", "--signature", sig, "--key", pub)
    assert "signature OK" in r.out
    # another key, or a model whose files differ, is refused
    other = os.path.join(tmp, "o.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", other], check=True)
    r = daemon.ctl("verify", "acme/signed", "--signature", sig, "--key", other, check=False)
    assert r.rc == 1 and r.err.startswith("modelctl: ")
    with open(os.path.join(m, "config.json"), "w") as f:
        f.write('{"changed": 1}')
    daemon.ctl("import", m, "--name", "acme/signed")
    r = daemon.ctl("verify", "acme/signed", "--signature", sig, "--key", pub, check=False)
    assert r.rc == 1 and "config.json" in r.err


def test_policy_file_not_text_is_refused(daemon, tmp):
    """A policy file that is not UTF-8, or holds a NUL, fails naming the file,
    the line and the offset; it is never dropped from the request (audit
    would then decide under the daemon's policy and exit 0)."""
    daemon.ctl("import", model(tmp, "b", "---\nlicense: cc-by-nc-4.0\n---\n"), "--name", "acme/nc")
    pol = os.path.join(tmp, "p14.conf")
    with open(pol, "wb") as f:
        f.write(b"deny = @non-commercial # caf\xc3\xa9\n")
    r = daemon.ctl("audit", "--policy", pol, check=False)
    assert r.rc == 1 and "acme/nc" in r.out and "deny" in r.out, r
    with open(pol, "wb") as f:
        f.write(b"deny = @non-commercial # caf\xe9\n")
    for fmt in ("table", "json", "csv"):
        r = daemon.ctl("audit", "--policy", pol, "--format", fmt, check=False)
        assert r.rc == 1 and r.out == "", r
        assert r.err == f"modelctl: {pol}:1: invalid UTF-8 byte 0xE9 at offset 28\n", r
    with open(pol, "wb") as f:
        f.write(b"# ok\ndeny = @non-commercial\x00\n")
    r = daemon.ctl("audit", "--policy", pol, check=False)
    assert r.rc == 1 and r.err == f"modelctl: {pol}:2: NUL byte at offset 27\n", r
    # a token file goes to the daemon the same way: refused before any request
    tok = os.path.join(tmp, "token")
    with open(tok, "wb") as f:
        f.write(b"hf_abc\xffdef\n")
    r = daemon.ctl("pull", "acme/x", "--hub", "http://127.0.0.1:9", "--token-file", tok, check=False)
    assert r.rc == 1 and r.err == f"modelctl: {tok}:1: invalid UTF-8 byte 0xFF at offset 6\n", r
    with open(tok, "wb") as f:
        f.write(b"hf_abc\x00def\n")
    r = daemon.ctl("pull", "acme/x", "--hub", "http://127.0.0.1:9", "--token-file", tok, check=False)
    assert r.rc == 1 and r.err == f"modelctl: {tok}:1: NUL byte at offset 6\n", r
