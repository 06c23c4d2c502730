"""License records at import, `license`, `audit` and policy enforcement,
end to end through the daemon."""
import io
import json
import os
import subprocess

from conftest import MODELD, ROOT, Daemon, make_model

APACHE = open("/usr/share/common-licenses/Apache-2.0", "rb").read()


def model(tmp, d, card, license_text=None, extra=None):
    files = {"README.md": card.encode(), "config.json": b"{}"}
    if license_text:
        files["LICENSE"] = license_text
    files.update(extra or {})
    return make_model(os.path.join(tmp, d), files)


def assert_boms_valid(daemon, tmp):
    """audit's CycloneDX and SPDX exports validate against the shipped schemas."""
    for fmt in ("cyclonedx", "spdx"):
        p = os.path.join(tmp, fmt + ".json")
        with open(p, "w") as f:
            f.write(daemon.ctl("audit", "--format", fmt).out)
        v = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests/data/schema/validate.py"),
                            fmt, p], capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr


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
    assert show["license"]["detected"]["score"] >= 0.999 and show["license"]["detected"]["matched"]
    # Debian's Apache-2.0 is the canonical text with its APPENDIX: not "modified"
    assert not [f for f in show["license"]["flags"] if f["kind"] == "license-text-modified"], show["license"]
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
    import csv as csvmod
    rows = {r["name"]: r for r in csvmod.DictReader(io.StringIO(csv))}
    assert rows["acme/nc"]["source"] == "file://" + os.path.join(tmp, "b"), rows["acme/nc"]
    assert_boms_valid(daemon, tmp)
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


def test_sign_output_replaces_the_old_file_whole(daemon, tmp):
    """sign -o writes FILE.part and renames it over FILE: a kill or a full
    disk meanwhile leaves the old signature, never a truncated one; an
    unwritable place is one line naming the file."""
    daemon.ctl("import", model(tmp, "s2", "---\nlicense: mit\n---\n"), "--name", "acme/s2")
    priv = os.path.join(tmp, "k2.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", priv], check=True)
    sig = os.path.join(tmp, "s2.sig")
    with open(sig, "w") as f:
        f.write("old")
    ino = os.stat(sig).st_ino
    keep = os.path.join(tmp, "s2.keep")
    os.link(sig, keep)          # holds the old inode, so it cannot be reused
    daemon.ctl("sign", "acme/s2", "--key", priv, "-o", sig)
    assert os.stat(sig).st_ino != ino and open(keep).read() == "old"
    assert json.load(open(sig))["dsseEnvelope"]
    assert not os.path.exists(sig + ".part")
    bad = os.path.join(tmp, "no-such-dir", "x.sig")
    r = daemon.ctl("sign", "acme/s2", "--key", priv, "-o", bad, check=False)
    assert r.rc == 1 and r.err.count("\n") == 1 and bad in r.err and "No such file" in r.err, r


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


def _policy(tmp, text):
    """A policy file under tmp holding text; its path."""
    pol = os.path.join(tmp, "p.conf")
    with open(pol, "w") as f:
        f.write(text)
    return pol


def _audit(daemon, pol):
    j = daemon.ctl("audit", "--policy", pol, "--format", "json", check=False).json()
    return {m["name"]: m for m in j["models"]}


def _kinds(lic):
    return [f["kind"] for f in lic["flags"]]


def test_lineage_whole_chain(daemon, tmp):
    """The verdict and flags use every generation, not only the direct base:
    x/ft2 (MIT) -> acme/ft (Apache) -> meta/llama (Llama 3.1)."""
    daemon.ctl("import", model(tmp, "l", "---\nlicense: llama3.1\n---\n"), "--name", "meta/llama")
    daemon.ctl("import", model(tmp, "f", "---\nlicense: apache-2.0\nbase_model: meta/llama\n---\n"),
               "--name", "acme/ft")
    daemon.ctl("import", model(tmp, "f2", "---\nlicense: mit\nbase_model: [acme/ft, nobody/missing]\n---\n"),
               "--name", "x/ft2")
    pol = _policy(tmp, "deny = @restricted-use\n")
    ms = _audit(daemon, pol)
    assert ms["acme/ft"]["license"]["verdict"] == "deny"
    lic = ms["x/ft2"]["license"]
    assert lic["verdict"] == "deny", lic
    assert lic["decided_by"] == {"license": "LicenseRef-Llama-3.1-Community", "source": "lineage[2]"}
    assert [(e["name"], e["depth"], e["via"]) for e in lic["lineage"]] == [
        ("acme/ft", 1, "x/ft2"), ("nobody/missing", 1, "x/ft2"), ("meta/llama", 2, "acme/ft")]
    msgs = [f["message"] for f in lic["flags"] if f["kind"] == "declared-vs-lineage"]
    assert any("ancestor meta/llama (base model of acme/ft)" in m for m in msgs), lic["flags"]
    assert "lineage-unknown" in _kinds(lic)
    assert [a["name"] for a in ms["x/ft2"]["lineage"]] == ["acme/ft", "nobody/missing", "meta/llama"]
    # the same through `license` (the daemon's policy: allow) and `show`
    j = daemon.ctl("license", "x/ft2", "--json").json()
    assert [e["name"] for e in j["license"]["lineage"]] == ["acme/ft", "nobody/missing", "meta/llama"]
    assert "declared-vs-lineage" in _kinds(j["license"])
    assert "declared-vs-lineage" in _kinds(daemon.ctl("show", "x/ft2", "--json").json()["license"])
    # text: each ancestor nested under the model that names it
    out = daemon.ctl("license", "x/ft2").out
    tree = out[out.index("lineage:\n") + len("lineage:\n"):].splitlines()
    assert tree == ["  acme/ft  Apache-2.0",
                    "    meta/llama  LicenseRef-Llama-3.1-Community",
                    "  nobody/missing  unknown (not in the store)"], out
    assert_boms_valid(daemon, tmp)


def test_lineage_ancestor_listing_several_licenses(daemon, tmp):
    """An ancestor whose card lists several licenses lends every one of them
    to its descendants' verdict, and the source still names the ancestor."""
    daemon.ctl("import", model(tmp, "mp", "---\nlicense: [apache-2.0, cc-by-nc-4.0]\n---\n"),
               "--name", "x/multi")
    daemon.ctl("import", model(tmp, "other", "---\nlicense: mit\n---\n"), "--name", "x/first")
    daemon.ctl("import", model(tmp, "mc", "---\nlicense: mit\nbase_model: [x/first, x/multi]\n---\n"),
               "--name", "x/multichild")
    pol = _policy(tmp, "deny = @non-commercial\n")
    ms = _audit(daemon, pol)
    lic = ms["x/multichild"]["license"]
    assert lic["verdict"] == "deny", lic
    assert lic["decided_by"] == {"license": "CC-BY-NC-4.0", "source": "lineage[1]"}, lic["decided_by"]
    assert lic["lineage"][1]["name"] == "x/multi"
    assert lic["lineage"][1]["licenses"] == ["Apache-2.0", "CC-BY-NC-4.0"], lic["lineage"][1]
    assert ms["x/multi"]["license"]["verdict"] == "deny"


def _nc_pair(daemon, tmp, pol, parent_first):
    child = model(tmp, "c", "---\nlicense: apache-2.0\nbase_model: x/ncparent\n---\n")
    parent = model(tmp, "p", "---\nlicense: cc-by-nc-4.0\n---\n")
    order = [(parent, "x/ncparent"), (child, "x/child")]
    for path, name in (order if parent_first else order[::-1]):
        daemon.ctl("import", path, "--name", name)
    lic = _audit(daemon, pol)["x/child"]["license"]
    assert lic["verdict"] == "deny", lic
    assert lic["decided_by"]["source"] == "lineage[0]"
    assert "declared-vs-lineage" in _kinds(lic) and "lineage-unknown" not in _kinds(lic), lic["flags"]
    assert lic["lineage"][0]["license"] == "CC-BY-NC-4.0"
    for j in (daemon.ctl("license", "x/child", "--json").json()["license"],
              daemon.ctl("show", "x/child", "--json").json()["license"]):
        assert "declared-vs-lineage" in _kinds(j) and "lineage-unknown" not in _kinds(j), j


def test_lineage_child_imported_before_parent(daemon, tmp):
    """Lineage is read from the catalog when audit/license run, not frozen at
    import: the parent imported after the child still counts; rm of the
    parent makes it unknown again."""
    pol = _policy(tmp, "deny = @non-commercial\n")
    _nc_pair(daemon, tmp, pol, parent_first=False)
    daemon.ctl("rm", "x/ncparent")
    lic = _audit(daemon, pol)["x/child"]["license"]
    assert lic["verdict"] == "allow", lic
    assert "lineage-unknown" in _kinds(lic) and "declared-vs-lineage" not in _kinds(lic)
    assert lic["lineage"][0]["license"] is None
    assert daemon.ctl("audit", "--policy", pol, check=False).rc == 0


def test_lineage_parent_imported_first(daemon, tmp):
    pol = _policy(tmp, "deny = @non-commercial\n")
    _nc_pair(daemon, tmp, pol, parent_first=True)
    assert daemon.ctl("audit", "--policy", pol, check=False).rc == 1


def test_lineage_cycle_and_self_reference(daemon, tmp):
    """x/a <-> x/b and a card naming itself: a lineage-cycle flag, no loop,
    and the other model's license still counts."""
    daemon.ctl("import", model(tmp, "a", "---\nlicense: mit\nbase_model: x/b\n---\n"), "--name", "x/a")
    daemon.ctl("import", model(tmp, "b", "---\nlicense: cc-by-nc-4.0\nbase_model: x/a\n---\n"),
               "--name", "x/b")
    daemon.ctl("import", model(tmp, "s", "---\nlicense: mit\nbase_model: x/s\n---\n"), "--name", "x/s")
    pol = _policy(tmp, "deny = @non-commercial\n")
    ms = _audit(daemon, pol)
    a = ms["x/a"]["license"]
    assert a["verdict"] == "deny" and "lineage-unknown" not in _kinds(a), a
    assert [(e["name"], e["depth"], e.get("loop", False)) for e in a["lineage"]] == [
        ("x/b", 1, False), ("x/a", 2, True)]
    cyc = [f["message"] for f in a["flags"] if f["kind"] == "lineage-cycle"]
    assert cyc == ["x/b names x/a as its base model, which derives from it: the loop is not followed"]
    assert [m["name"] for m in ms["x/a"]["lineage"]] == ["x/b"]  # the exports' ancestors
    b = ms["x/b"]["license"]
    assert b["verdict"] == "deny" and "lineage-cycle" in _kinds(b)
    s = ms["x/s"]["license"]
    assert s["verdict"] == "allow" and s["decided_by"]["source"] == "declared"
    assert [f for f in s["flags"] if f["kind"].startswith("lineage")] == [
        {"kind": "lineage-cycle", "message": "x/s names itself as its base model: ignored"}]
    assert ms["x/s"]["lineage"] == []
    out = daemon.ctl("license", "x/a").out
    assert "  x/b  CC-BY-NC-4.0\n    x/a  (loop: already in this lineage, not followed)\n" in out, out
    assert_boms_valid(daemon, tmp)


def test_lineage_depth_cap(daemon, tmp):
    """The chain is followed 8 generations deep; past that it is flagged,
    not silently dropped."""
    for i in range(10):
        base = f"base_model: x/m{i + 1}\n" if i < 9 else ""
        lic = "cc-by-nc-4.0" if i == 9 else "mit"
        daemon.ctl("import", model(tmp, f"m{i}", f"---\nlicense: {lic}\n{base}---\n"), "--name", f"x/m{i}")
    pol = _policy(tmp, "deny = @non-commercial\n")
    ms = _audit(daemon, pol)
    m0 = ms["x/m0"]["license"]
    assert [e["depth"] for e in m0["lineage"]] == list(range(1, 9))
    assert m0["lineage"][-1]["name"] == "x/m8" and m0["lineage"][-1]["cut"] is True
    assert m0["verdict"] == "allow"
    assert [f["message"] for f in m0["flags"] if f["kind"] == "lineage-unknown"] == [
        "the base models of x/m8 are not followed (lineage capped at 8 generations, 64 ancestors): "
        "their licenses are unknown"]
    assert ms["x/m1"]["license"]["verdict"] == "deny"  # x/m9 is its 8th generation


def test_every_declared_license_enters_the_verdict(tmp):
    """A card listing several licenses, or `other` with a license_name, is
    judged on all of them: enforce refuses the import, audit says deny, and
    the BOMs carry every declared license."""
    pol = os.path.join(tmp, "policy.conf")
    with open(pol, "w") as f:
        f.write("enforce = true\ndeny = cc-by-nc-4.0\ndeny = qwen-research\n")
    d = Daemon(tmp, extra=["--policy", pol]).start()
    try:
        r = d.ctl("import", model(tmp, "l", "---\nlicense:\n- apache-2.0\n- cc-by-nc-4.0\n---\n"),
                  "--name", "acme/list", check=False)
        assert r.rc == 1 and "CC-BY-NC-4.0" in r.err and "policy.conf:2" in r.err, r
        r = d.ctl("import", model(tmp, "o", "---\nlicense: other\nlicense_name: qwen-research\n---\n"),
                  "--name", "acme/other", check=False)
        assert r.rc == 1 and "LicenseRef-Qwen-Research" in r.err and "policy.conf:3" in r.err, r
        assert d.ctl("list", "--json").json() == []
    finally:
        d.stop()
    d = Daemon(tmp).start()
    try:
        d.ctl("import", os.path.join(tmp, "l"), "--name", "acme/list")
        lic = d.ctl("license", "acme/list", "--json").json()["license"]
        assert lic["licenses"] == ["Apache-2.0", "CC-BY-NC-4.0"]
        assert "CC-BY-NC-4.0" in d.ctl("license", "acme/list").out
        r = d.ctl("audit", "--policy", pol, "--json", check=False)
        assert r.rc == 1 and r.json()["models"][0]["license"]["verdict"] == "deny", r
        cdx = json.loads(d.ctl("audit", "--format", "cyclonedx").out)
        ids = [l["license"].get("id") for l in cdx["components"][0]["licenses"]]
        assert ids == ["Apache-2.0", "CC-BY-NC-4.0"], cdx["components"][0]["licenses"]
        spdx = d.ctl("audit", "--format", "spdx").out
        assert "Apache-2.0 AND CC-BY-NC-4.0" in spdx
        assert_boms_valid(d, tmp)
    finally:
        d.stop()


def test_sign_key_files_checked_and_named(daemon, tmp):
    """A private key others can read is refused (as ssh does), and every key
    error names the key file, not just "key"."""
    daemon.ctl("import", model(tmp, "s", "---\nlicense: mit\n---\n"), "--name", "acme/signed")
    priv, pub = os.path.join(tmp, "k.pem"), os.path.join(tmp, "k.pub")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", priv], check=True)
    subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True)
    os.chmod(priv, 0o644)
    sig = os.path.join(tmp, "model.sig")
    r = daemon.ctl("sign", "acme/signed", "--key", priv, "-o", sig, check=False)
    assert r.rc == 1 and r.err == "modelctl: %s: private key is accessible by group or others " \
        "(mode 0644): chmod 600 it\n" % priv, r
    assert not os.path.exists(sig)
    r = daemon.ctl("export", "acme/signed", "-o", os.path.join(tmp, "b.tar"), "--sign", priv, check=False)
    assert r.rc == 1 and priv + ": private key is accessible" in r.err, r
    os.chmod(priv, 0o600)
    daemon.ctl("sign", "acme/signed", "--key", priv, "-o", sig)
    rsa = os.path.join(tmp, "rsa.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:1024",
                    "-out", rsa], check=True, capture_output=True)
    junk = os.path.join(tmp, "junk.pem")
    with open(junk, "w") as f:
        f.write("not a key\n")
    for key, why in ((rsa, "not an Ed25519 key"), (junk, "not a PEM private key"),
                     (pub, "not a PEM private key")):
        r = daemon.ctl("sign", "acme/signed", "--key", key, "-o", sig + ".2", check=False)
        assert r.rc == 1 and r.err == "modelctl: %s: %s\n" % (key, why), r
    r = daemon.ctl("verify", "acme/signed", "--signature", sig, "--key", junk, check=False)
    assert r.rc == 1 and r.err.startswith("modelctl: %s: not a PEM" % junk), r
    r = daemon.ctl("export", "acme/signed", "-o", os.path.join(tmp, "b.tar"), "--sign", rsa, check=False)
    assert r.rc == 1 and rsa + ": not an Ed25519 key" in r.err, r
    assert "signature OK" in daemon.ctl("verify", "acme/signed", "--signature", sig, "--key", pub).out
    # the private key is no verification key: a verifier needs only the public half
    r = daemon.ctl("verify", "acme/signed", "--signature", sig, "--key", priv, check=False)
    assert r.rc != 0 and r.err.startswith("modelctl: %s: a private key; verify with the public key" % priv), r


def test_policy_typo_is_named(tmp):
    """`deny = GPL-3.O` (a letter O) parses, since an id of one's own is
    allowed, but denies nothing GPL: audit and the daemon's log say which
    line and which known id was likely meant; the verdicts do not change."""
    pol = os.path.join(tmp, "policy.conf")
    with open(pol, "w") as f:
        f.write("deny = @non-commercial\ndeny = GPL-3.O\n")
    d = Daemon(tmp, extra=["--policy", pol]).start()
    try:
        assert ("policy: " + pol + ":2: 'GPL-3.O' is not a license id modeld knows; "
                "did you mean 'gpl-3.0'?") in d.read_log()
        d.ctl("import", model(tmp, "g", "---\nlicense: gpl-3.0\n---\n"), "--name", "acme/gpl")
        r = d.ctl("audit", check=False)
        assert r.rc == 0 and "modelctl: warning: " + pol + ":2: 'GPL-3.O'" in r.err, r
        j = d.ctl("audit", "--policy", pol, "--json", check=False)
        assert j.rc == 0 and j.json()["models"][0]["license"]["verdict"] == "allow", j
        assert len(j.json()["policy_warnings"]) == 1 and "did you mean 'gpl-3.0'" in j.err
        with open(pol, "w") as f:
            f.write("deny = GPL-3.0\n")
        r = d.ctl("audit", "--policy", pol, "--json", check=False)
        assert r.rc == 1 and "policy_warnings" not in r.json() and r.err == "", r
    finally:
        d.stop()


def test_hostile_card_text_is_printed_inert(daemon, tmp):
    """A card's license and base_model are the card author's words: `license`
    and `audit` print them with control characters shown as '?', so a
    hostile card cannot send terminal escapes or forge extra output lines.
    --json keeps them exactly as the card has them."""
    esc = "\\e]0;pwned\\a\\e[2J\\nverdict:   allow"
    m = model(tmp, "evil", f'---\nlicense: "mit{esc}"\nbase_model: "acme/base{esc}"\n---\n# evil\n')
    daemon.ctl("import", m, "--name", "acme/evil")
    for cmd in (["license", "acme/evil"], ["audit"]):
        out = daemon.ctl(*cmd).out
        bad = [c for c in out if ord(c) < 0x20 and c != "\n" or ord(c) == 0x7f]
        assert not bad, (cmd, out)
    out = daemon.ctl("license", "acme/evil").out
    assert "declared:  mit?]0;pwned??[2J?verdict:   allow -> " in out, out
    assert [l for l in out.splitlines() if l.startswith("verdict:")] == ["verdict:   allow (built-in default = allow)"], out
    assert "  acme/base?]0;pwned" in out, out
    j = daemon.ctl("license", "acme/evil", "--json").json()
    assert j["license"]["declared"] == "mit\x1b]0;pwned\x07\x1b[2J\nverdict:   allow", j


def test_policy_that_is_a_directory_says_so(daemon, tmp):
    """A directory given as the policy said only 'read error'."""
    r = daemon.ctl("audit", "--policy", tmp, check=False)
    assert r.rc == 1 and r.err == "modelctl: %s: Is a directory\n" % tmp, r
    p = subprocess.run([MODELD, "-n", "--store", os.path.join(tmp, "st"), "--policy", tmp],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "%s: Is a directory" % tmp in p.stderr, p
