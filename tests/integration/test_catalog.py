"""The catalog (issue 8): facts at import, indexed filters, local and hub
search, compare, and the indexes staying in step through rm and ref moves.
Models are small but real: config.json, a README card with model-index
results, and safetensors files whose headers give the parameter count."""
import http.server
import json
import os
import struct
import threading
import subprocess
import urllib.parse

import pytest

from conftest import MODELD, Daemon, raw_call, tiny_llama


def safetensors(path, tensors):
    """tensors: {name: (dtype, shape)}; data bytes are zeros."""
    size = {"F32": 4, "BF16": 2, "F16": 2, "I8": 1}
    hdr, off = {"__metadata__": {"format": "pt"}}, 0
    for name, (dt, shape) in tensors.items():
        n = 1
        for d in shape:
            n *= d
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n * size[dt]]}
        off += n * size[dt]
    h = json.dumps(hdr).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"\0" * off)


def model(root, sub, *, arch="LlamaForCausalLM", task="text-generation", lic="apache-2.0",
          lib="transformers", tensors=None, tie=True, bench=(), text="A test model.",
          ctx=2048, tags=("test",)):
    d = os.path.join(root, sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"architectures": [arch], "hidden_size": 64, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "max_position_embeddings": ctx,
                   "vocab_size": 1000, "tie_word_embeddings": tie}, f)
    card = ("---\nlicense: %s\npipeline_tag: %s\nlibrary_name: %s\ntags: [%s]\n"
            % (lic, task, lib, ", ".join(tags)))
    if bench:
        card += "model-index:\n- name: m\n  results:\n"
        for t, ds, met, v in bench:
            card += ("  - task: {type: %s}\n    dataset: {type: %s, name: %s}\n"
                     "    metrics:\n    - {type: %s, value: %s}\n" % (t, ds, ds, met, v))
    card += "---\n# %s\n%s\n" % (sub, text)
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write(card)
    safetensors(os.path.join(d, "model.safetensors"),
                tensors or {"w": ("BF16", [100, 10])})
    return d


def names(rows):
    return sorted(r["name"] for r in rows)


# Tied embeddings as transformers saves them: lm_head.weight is not stored
# (tie_word_embeddings: true), so the count has the embedding once. (A
# checkpoint storing both copies: test_tied_head_stored_twice_counts_once.)
TIED = {"model.embed_tokens.weight": ("BF16", [1000, 64]),
        "model.layers.0.mlp.weight": ("BF16", [64, 64])}


@pytest.fixture
def catalog(daemon, tmp):
    """Four models with different tasks, providers, licenses, libraries, sizes."""
    m = {
        "acme/alpha": model(tmp, "alpha", tensors=TIED, text="Quantum zebra tokenizer.",
                            bench=[("text-generation", "mmlu", "accuracy", 0.5),
                                   ("text-generation", "gsm8k", "accuracy", 0.25)],
                            tags=("llama", "chat")),
        "acme/bravo": model(tmp, "bravo", arch="MistralForCausalLM", task="text-classification",
                            lic="mit", tensors={"w": ("F32", [1000, 1000])},
                            bench=[("text-generation", "mmlu", "accuracy", 0.75),
                                   ("text-generation", "arc", "acc_norm", 0.5)]),
        "other/charlie": model(tmp, "charlie", lic="mit", lib="gguf",
                               tensors={"w": ("I8", [3000, 1000])}, text="Bravo llama friend."),
        "other/delta": model(tmp, "delta", task="translation", lic="cc-by-nc-4.0",
                             tensors={"w": ("F16", [10, 10])}, ctx=131072),
    }
    for name, d in m.items():
        daemon.ctl("import", d, "--name", name)
    return m


def test_facts_at_import(daemon, catalog):
    s = daemon.ctl("--json", "show", "acme/alpha").json()
    assert s["parameters"] == 1000 * 64 + 64 * 64
    assert s["size_class"] == "small" and s["size_tier"] == "small"
    stored = (1000 * 64 + 64 * 64) * 2  # BF16
    assert s["dtype_bytes"] == {"BF16": stored}
    assert s["memory"]["stored"] == stored
    p = s["parameters"]
    assert s["memory"]["fp16"] == 2 * p and s["memory"]["bf16"] == 2 * p
    assert s["memory"]["int8"] == p and s["memory"]["int4"] == (p + 1) // 2
    assert s["architecture"] == "LlamaForCausalLM"
    assert s["context_length"] == 2048 and s["hidden_size"] == 64
    assert s["num_layers"] == 2 and s["num_heads"] == 4 and s["vocab_size"] == 1000
    assert s["task"] == "text-generation" and s["provider"] == "acme"
    assert s["library"] == "transformers"
    assert [(b["dataset"], b["metric"], b["value"]) for b in s["benchmarks"]] == \
        [("mmlu", "accuracy", 0.5), ("gsm8k", "accuracy", 0.25)]
    assert s["facts"]["parameters_source"] == "converter"  # the tensor tables of the packs
    d = daemon.ctl("--json", "show", "other/delta").json()
    assert d["context_length"] == 131072 and d["parameters"] == 100
    assert d["memory"]["stored"] == 200
    text = daemon.ctl("show", "acme/alpha").out
    for want in ("params:    68.1K (68096)", "size class small", "LlamaForCausalLM",
                 "context 2048", "provider acme", "mmlu", "gsm8k", "memory:"):
        assert want in text, want


def test_no_weights_and_broken_weights(daemon, tmp):
    d = model(tmp, "noweights")
    os.unlink(os.path.join(d, "model.safetensors"))
    daemon.ctl("import", d, "--name", "acme/noweights")
    s = daemon.ctl("--json", "show", "acme/noweights").json()
    assert s["parameters"] is None and s["size_class"] is None and s["memory"] is None
    assert s["architecture"] == "LlamaForCausalLM"  # config facts still there
    assert daemon.ctl("--json", "list", "--size", "small").json() == []
    assert daemon.ctl("show", "acme/noweights").out.count("params:    -") == 1
    d = model(tmp, "broken")
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", 1 << 40) + b"{}")  # declared header over the cap
    r = daemon.ctl("import", d, "--name", "acme/broken", check=False)
    assert r.rc == 1 and "model.safetensors" in r.err  # refused by the converter
    assert daemon.ctl("--json", "list", "--provider", "acme").json()[0]["name"] == "acme/noweights"


def gguf_file(path, tensors, arch_kvs=True):
    """tensors: [(name, ggml type, ne (innermost first))]; data bytes random."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
    from conv_fixtures import gguf_bytes
    size = {0: lambda n: 4 * n, 1: lambda n: 2 * n, 8: lambda n: n // 32 * 34}
    ts = []
    for name, t, ne in tensors:
        n = 1
        for x in ne:
            n *= x
        ts.append((name, t, ne, os.urandom(size[t](n))))
    kvs = [("general.architecture", 8, "llama"), ("llama.block_count", 4, 2),
           ("llama.context_length", 10, 4096), ("llama.embedding_length", 4, 64),
           ("llama.attention.head_count", 4, 4),
           ("tokenizer.ggml.tokens", 9, (8, ["t%d" % i for i in range(300)]))] if arch_kvs else []
    with open(path, "wb") as f:
        f.write(gguf_bytes(kvs, ts))


def test_one_model_in_several_files_counts_once(daemon, tmp):
    """Parameters are summed over every weight file with each tensor name
    once: the same checkpoint as model.safetensors and as pytorch_model.bin
    (real torch.save) is one model's count (a GGUF file beside them is an
    alternate, test_the_model_again_under_other_names_is_not_counted), a
    component in a folder of its own adds its tensors; two quantizations of
    a GGUF-only model are one model, whose architecture facts come from the
    GGUF metadata when there is no config.json (config.json wins where
    there is one)."""
    d = model(tmp, "formats", tensors={"a": ("F32", [1000, 100]), "b": ("F32", [100])})
    subprocess.run(["/usr/bin/python3", "-c",
                    "import sys, torch; torch.save({'a': torch.zeros(1000, 100), 'b': torch.zeros(100)}, sys.argv[1])",
                    os.path.join(d, "pytorch_model.bin")], check=True)
    gguf_file(os.path.join(d, "model.gguf"), [("a", 1, [100, 1000]), ("b", 0, [100])])
    os.makedirs(os.path.join(d, "vae"))
    safetensors(os.path.join(d, "vae", "model.safetensors"), {"v": ("F16", [10, 10])})
    daemon.ctl("import", d, "--name", "acme/formats")
    s = daemon.ctl("--json", "show", "acme/formats").json()
    assert s["parameters"] == 100100 + 100, s["parameters"]
    # each name's dtype is its first counted file's by path: model.safetensors, vae/
    assert s["dtype_bytes"] == {"F32": 400000 + 400, "F16": 200}, s["dtype_bytes"]
    assert s["facts"]["parameters_alternates"] == ["model.gguf"]
    assert s["architecture"] == "LlamaForCausalLM" and s["context_length"] == 2048
    assert {f["path"]: f.get("format") for f in s["files"]}["pytorch_model.bin"] == "torch"

    g = os.path.join(tmp, "ggufonly")
    os.makedirs(g)
    ts = [("token_embd.weight", 8, [64, 300]), ("blk.0.attn_q.weight", 8, [64, 64]),
          ("output_norm.weight", 0, [64])]
    gguf_file(os.path.join(g, "m-Q8_0.gguf"), ts)
    gguf_file(os.path.join(g, "m-F16.gguf"), [(n, 1 if t == 8 else t, ne) for n, t, ne in ts])
    with open(os.path.join(g, "README.md"), "w") as f:
        f.write("---\nlicense: mit\nlibrary_name: gguf\n---\n# q\n")
    daemon.ctl("import", g, "--name", "acme/ggufonly")
    s = daemon.ctl("--json", "show", "acme/ggufonly").json()
    assert s["parameters"] == 64 * 300 + 64 * 64 + 64, s["parameters"]
    assert s["dtype_bytes"] == {"F16": 2 * (64 * 300 + 64 * 64), "F32": 256}, s["dtype_bytes"]
    assert (s["architecture"], s["num_layers"], s["context_length"], s["hidden_size"],
            s["num_heads"], s["vocab_size"]) == ("llama", 2, 4096, 64, 4, 300), s
    assert "arch:      llama, context 4096, hidden 64, layers 2, heads 4, vocab 300" in \
        daemon.ctl("show", "acme/ggufonly").out


def test_the_model_again_under_other_names_is_not_counted(daemon, tmp):
    """One model shipped again under other tensor names is counted once, as
    from_pretrained loads it (meta/wlayout.h): Mistral's
    consolidated.safetensors beside the transformers shards, a GGUF file
    beside them, Llama's original/ (real torch.save); and a diffusers
    pipeline's single-file checkpoint beside its component folders."""
    hf = {"model.embed_tokens.weight": ("BF16", [1000, 64]),
          "model.layers.0.self_attn.q_proj.weight": ("BF16", [64, 64])}
    d = model(tmp, "mistral", tensors=hf, tie=False)
    os.rename(os.path.join(d, "model.safetensors"), os.path.join(d, "model-00001-of-00002.safetensors"))
    safetensors(os.path.join(d, "model-00002-of-00002.safetensors"), {"lm_head.weight": ("BF16", [1000, 64])})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": {
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "model.layers.0.self_attn.q_proj.weight": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00002-of-00002.safetensors"}}, f)
    safetensors(os.path.join(d, "consolidated.safetensors"),
                {"tok_embeddings.weight": ("BF16", [1000, 64]), "layers.0.attention.wq.weight": ("BF16", [64, 64]),
                 "output.weight": ("BF16", [1000, 64])})
    gguf_file(os.path.join(d, "mistral-Q8_0.gguf"), [("token_embd.weight", 8, [64, 1000])])
    os.makedirs(os.path.join(d, "original"))
    subprocess.run(["/usr/bin/python3", "-c",
                    "import sys, torch; torch.save({'tok_embeddings.weight': torch.zeros(1000, 64, dtype=torch.bfloat16)}, sys.argv[1])",
                    os.path.join(d, "original", "consolidated.00.pth")], check=True)
    os.makedirs(os.path.join(d, "extra"))  # a component of its own still adds up
    safetensors(os.path.join(d, "extra", "model.safetensors"), {"proj": ("F32", [10, 10])})
    daemon.ctl("import", d, "--name", "acme/mistral")
    s = daemon.ctl("--json", "show", "acme/mistral").json()
    want = 1000 * 64 * 2 + 64 * 64 + 100  # untied config: the head counts
    assert s["parameters"] == want, s["parameters"]
    assert s["dtype_bytes"] == {"BF16": 2 * (want - 100), "F32": 400}, s["dtype_bytes"]
    alts = ["consolidated.safetensors", "mistral-Q8_0.gguf", "original/consolidated.00.pth"]
    assert s["facts"]["parameters_alternates"] == alts, s["facts"]
    assert "not counted (the model again): " + ", ".join(alts) in daemon.ctl("show", "acme/mistral").out
    assert s["architecture"] == "LlamaForCausalLM"  # config.json still wins over the GGUF's

    p = os.path.join(tmp, "pipeline")
    for sub in ("unet", "text_encoder"):
        os.makedirs(os.path.join(p, sub))
    with open(os.path.join(p, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline"}, f)
    with open(os.path.join(p, "README.md"), "w") as f:
        f.write("---\nlicense: mit\nlibrary_name: diffusers\n---\n# p\n")
    safetensors(os.path.join(p, "unet", "diffusion_pytorch_model.safetensors"), {"conv": ("F16", [8, 8])})
    safetensors(os.path.join(p, "text_encoder", "model.safetensors"), {"emb": ("F16", [4, 8])})
    safetensors(os.path.join(p, "sd-pruned-emaonly.safetensors"),
                {"model.diffusion_model.conv": ("F16", [8, 8]), "cond_stage_model.emb": ("F16", [4, 8])})
    daemon.ctl("import", p, "--name", "acme/pipeline")
    s = daemon.ctl("--json", "show", "acme/pipeline").json()
    assert s["parameters"] == 64 + 32 and s["facts"]["parameters_alternates"] == ["sd-pruned-emaonly.safetensors"]
    # without the components, the single-file checkpoint is the model
    os.remove(os.path.join(p, "unet", "diffusion_pytorch_model.safetensors"))
    os.remove(os.path.join(p, "text_encoder", "model.safetensors"))
    daemon.ctl("import", p, "--name", "acme/single")
    s = daemon.ctl("--json", "show", "acme/single").json()
    assert s["parameters"] == 96 and "parameters_alternates" not in s["facts"]


def mdb_records(env, db):
    """The records of one LMDB database, and mdb_dump's header (hex format:
    Debian 12's mdb_dump -p leaves a backslash unescaped)."""
    out = subprocess.run(["mdb_dump", "-s", db, env], capture_output=True, check=True).stdout
    lines = out.split(b"\n")
    end = lines.index(b"HEADER=END") + 1
    data = [bytes.fromhex(l[1:].decode()) for l in lines[end:] if l.startswith(b" ")]
    return lines[:end], dict(zip(data[0::2], data[1::2]))


def mdb_put(env, db, header, records):
    """Overwrite records (key -> value bytes) of one LMDB database."""
    header = [h for h in header if not h.startswith(b"db_pagesize=")]  # mdb_load does not know it
    body = b"\n".join(header) + b"\n" + b"".join(b" %s\n %s\n" % (k.hex().encode(), v.hex().encode())
                                                for k, v in records.items())
    subprocess.run(["mdb_load", "-s", db, env], input=body + b"DATA=END\n", check=True)


def test_revisions_recorded_by_an_earlier_modeld_are_described_again(tmp):
    """A revision stored before the counting rules changed (no "described"
    in its record, the model counted twice) is described again from its
    stored files when modeld starts: show, list and the indexes give the
    count an import gives now, and later starts do not scan again."""
    d = Daemon(tmp).start()
    m = model(tmp, "mistral", tensors={"model.embed_tokens.weight": ("BF16", [1000, 64])}, tie=False)
    safetensors(os.path.join(m, "consolidated.safetensors"), {"tok_embeddings.weight": ("BF16", [1000, 64])})
    d.ctl("import", m, "--name", "acme/mistral")
    d.ctl("import", model(tmp, "other", tensors={"w": ("F32", [10, 10])}), "--name", "acme/other")
    now = d.ctl("--json", "show", "acme/mistral").json()
    assert now["parameters"] == 64000 and now["described"] == 1, now
    assert d.stop() == 0  # valgrind's exit code under MODELD_VALGRIND=1
    # rewrite the record as an earlier modeld left it, and make every
    # derived table be rebuilt from it at the next start
    env = os.path.join(d.store, "catalog")
    hdr, revs = mdb_records(env, "revisions")
    old = {}
    for k, v in revs.items():
        rec = json.loads(v)
        if k.startswith(b"acme/mistral\0"):
            del rec["described"]
            rec["facts"]["parameters"] = 128000
            rec["facts"]["dtype_bytes"] = {"BF16": 256000}
            del rec["facts"]["parameters_alternates"]
            old[k] = json.dumps(rec).encode()
    assert len(old) == 1
    mdb_put(env, "revisions", hdr, old)
    mhdr, meta = mdb_records(env, "meta")
    assert meta[b"described_version"] == struct.pack("<I", 1)
    mdb_put(env, "meta", mhdr, {k: b"\0\0\0\0" for k in (b"index", b"summaries_version", b"described_version")})

    d = Daemon(tmp).start()
    s = d.ctl("--json", "show", "acme/mistral").json()
    assert s["parameters"] == 64000 and s["dtype_bytes"] == {"BF16": 128000}, s
    assert s["facts"]["parameters_alternates"] == ["consolidated.safetensors"] and s["described"] == 1
    assert s["revision"] == now["revision"] and s["files"] == now["files"]  # the bytes stay as they were
    assert [x["name"] for x in d.ctl("--json", "list", "--min-params", "100000").json()] == []
    assert [x["name"] for x in d.ctl("--json", "list", "--max-params", "64000").json()] == \
        ["acme/mistral", "acme/other"]
    assert "described 1 stored revisions again, 0 failed" in d.read_log()
    d.ctl("verify", "acme/mistral")
    assert d.stop() == 0
    n = d.read_log().count("described 1 stored revisions again")
    d = Daemon(tmp).start()  # nothing left to describe: no scan
    assert d.stop() == 0
    assert d.read_log().count("described 1 stored revisions again") == n == 1


@pytest.mark.parametrize("tie", [True, False])
def test_tied_head_stored_twice_counts_once(daemon, tmp, tie):
    """A checkpoint that stores lm_head.weight beside an input embedding of
    the same shape: with tie_word_embeddings the two are one weight,
    counted once (parameters and bytes); without, both count."""
    t = {"model.embed_tokens.weight": ("BF16", [1000, 64]), "lm_head.weight": ("BF16", [1000, 64]),
         "model.layers.0.mlp.weight": ("F32", [64, 64])}
    daemon.ctl("import", model(tmp, "tied", tensors=t, tie=tie), "--name", "acme/tied")
    s = daemon.ctl("--json", "show", "acme/tied").json()
    heads = 1 if tie else 2
    assert s["parameters"] == heads * 64000 + 4096, s["parameters"]
    assert s["dtype_bytes"] == {"BF16": heads * 128000, "F32": 16384}, s["dtype_bytes"]


def test_filters(daemon, catalog):
    def ls(*args):
        return names(daemon.ctl("--json", "list", *args).json())
    assert ls("--task", "text-generation") == ["acme/alpha", "other/charlie"]
    assert ls("--task", "TEXT-GENERATION") == ["acme/alpha", "other/charlie"]
    assert ls("--provider", "other") == ["other/charlie", "other/delta"]
    assert ls("--license", "MIT") == ["acme/bravo", "other/charlie"]
    assert ls("--library", "gguf") == ["other/charlie"]
    assert ls("--task", "text-generation", "--license", "mit", "--library", "gguf") == \
        ["other/charlie"]
    assert ls("--task", "text-generation", "--provider", "acme", "--license", "mit") == []
    # params: alpha 68,096; bravo 1,000,000; charlie 3,000,000; delta 100
    assert ls("--min-params", "1M") == ["acme/bravo", "other/charlie"]
    assert ls("--min-params", "1e6", "--max-params", "2.5M") == ["acme/bravo"]
    assert ls("--max-params", "68096") == ["acme/alpha", "other/delta"]
    assert ls("--size", "small") == sorted(catalog)
    assert ls("--size", "large") == []
    # memory at the stored dtype: bravo 4 MB (F32), charlie 3 MB (I8)
    assert ls("--fits", "3.5MB") == ["acme/alpha", "other/charlie", "other/delta"]
    assert ls("--fits", "1MiB", "--provider", "acme") == ["acme/alpha"]
    rows = daemon.ctl("--json", "list", "--sort", "params").json()
    assert [r["name"] for r in rows] == ["other/charlie", "acme/bravo", "acme/alpha",
                                         "other/delta"]
    assert rows[0]["parameters"] == 3000000 and rows[0]["memory"] == 3000000
    assert rows[0]["task"] == "text-generation" and rows[0]["license"] == "MIT"
    out = daemon.ctl("list", "--task", "translation").out
    assert "other/delta" in out and "acme/alpha" not in out and "PARAMS" in out
    # the unfiltered list is the raw summaries, as before
    full = daemon.ctl("--json", "list").json()
    assert len(full) == 4 and all("file_count" in r for r in full)


def test_filter_errors(daemon, catalog):
    # every bad argument is a usage error (exit 2), whether modelctl or the
    # daemon (which knows the configured size classes) checks it
    r = daemon.ctl("list", "--size", "huge", check=False)
    assert r.rc == 2 and "small, large, 100m-1b, 1b-10b, 10b-100b, 100b+" in r.err
    for bad in (["--min-params", "7X"], ["--max-params", "-1"], ["--fits", "24 GiB"],
                ["--fits", "lots"]):
        r = daemon.ctl("list", *bad, check=False)
        assert r.rc == 2, (bad, r)
    r = daemon.ctl("list", "--min-params", "5B", "--max-params", "1B", check=False)
    assert r.rc == 2 and r.err.startswith("modelctl: --min-params 5000000000 is above --max-params 1000000000\n"), r
    r = daemon.ctl("list", "--sort", "random", check=False)
    assert r.rc == 2 and "sort 'random'" in r.err
    r = daemon.ctl("search", "x", "--sort", "random", check=False)
    assert r.rc == 2 and "sort 'random'" in r.err
    r = daemon.ctl("show", "acme/alpha", "--task", "x", check=False)
    assert r.rc == 2
    r = daemon.ctl("list", "--task", "x" * 300, check=False)
    assert r.rc == 2 and "task" in r.err
    r = daemon.ctl("audit", "--format", "xml", check=False)
    assert r.rc == 2 and "--format" in r.err


def test_size_classes_configurable(tmp):
    conf = os.path.join(tmp, "modeld.conf")
    with open(conf, "w") as f:
        f.write("size_classes = 1K, 100K, 2M\n")
    d = Daemon(tmp, extra=["--config", conf]).start()
    try:
        d.ctl("import", model(tmp, "a", tensors=TIED), "--name", "acme/a")  # 68,096
        d.ctl("import", model(tmp, "b", tensors={"w": ("I8", [3000, 1000])}), "--name", "acme/b")
        d.ctl("import", model(tmp, "c", tensors={"w": ("I8", [10, 10])}), "--name", "acme/c")
        s = d.ctl("--json", "show", "acme/a").json()
        assert s["size_class"] == "large" and s["size_tier"] == "1k-100k"
        assert d.ctl("--json", "show", "acme/b").json()["size_tier"] == "2m+"
        assert d.ctl("--json", "show", "acme/c").json()["size_class"] == "small"
        assert names(d.ctl("--json", "list", "--size", "large").json()) == ["acme/a", "acme/b"]
        assert names(d.ctl("--json", "list", "--size", "small").json()) == ["acme/c"]
        assert names(d.ctl("--json", "list", "--size", "2m+").json()) == ["acme/b"]
    finally:
        d.stop()
    with open(conf, "w") as f:
        f.write("size_classes = 1B, 100M\n")
    p = subprocess.run([MODELD, "--config", conf, "-n"], capture_output=True, text=True)
    assert p.returncode != 0 and "size_classes" in p.stderr


def test_index_follows_rm_and_ref_moves(daemon, tmp):
    d = model(tmp, "x", task="translation", text="Aardvark first edition.")
    daemon.ctl("import", d, "--name", "acme/x")
    rev1 = daemon.ctl("--json", "show", "acme/x").json()["revision"]
    # new content under the same name: main moves to rev2
    model(tmp, "x", task="summarization", text="Narwhal second edition.")
    daemon.ctl("import", d, "--name", "acme/x")
    rev2 = daemon.ctl("--json", "show", "acme/x").json()["revision"]
    assert rev1 != rev2

    def revs(*args):
        return sorted(r["revision"] for r in daemon.ctl("--json", *args).json())
    assert revs("list", "--task", "translation") == [rev1]
    assert revs("list", "--task", "summarization") == [rev2]
    assert [r["revision"] for r in daemon.ctl("--json", "search", "aardvark").json()["results"]] == [rev1]
    assert [r["revision"] for r in daemon.ctl("--json", "search", "narwhal").json()["results"]] == [rev2]
    assert revs("list", "--provider", "acme") == sorted([rev1, rev2])
    # the summaries follow the ref; the filtered rows still find both revisions
    full = {r["revision"]: r["refs"] for r in daemon.ctl("--json", "list").json()}
    assert full == {rev1: [], rev2: ["main"]}
    daemon.ctl("rm", "acme/x@" + rev1)
    assert revs("list", "--task", "translation") == []
    assert daemon.ctl("--json", "search", "aardvark").json()["results"] == []
    assert revs("list", "--provider", "acme") == [rev2]
    # a restart keeps the indexes (and would rebuild them if they lagged)
    daemon.stop()
    daemon.start()
    assert revs("list", "--task", "summarization") == [rev2]
    daemon.ctl("rm", "acme/x")
    assert revs("list", "--provider", "acme") == []
    assert daemon.ctl("--json", "search", "narwhal").json()["results"] == []
    assert daemon.ctl("--json", "list", "--sort", "name").json() == []


def test_search_local(daemon, catalog):
    def hits(q, *args):
        return [r["name"] for r in daemon.ctl("--json", "search", q, *args).json()["results"]]
    assert hits("zebra") == ["acme/alpha"]                   # card text
    assert hits("QUANTUM Zebra") == ["acme/alpha"]           # all words, any case
    assert hits("zebra mit") == []
    assert hits("chat") == ["acme/alpha"]                    # tags
    assert hits("mistral") == ["acme/bravo"]                 # architecture
    assert hits("char") == ["other/charlie"]                 # name prefix
    # "bravo" is acme/bravo's name and a word of charlie's card: name first
    assert hits("bravo") == ["acme/bravo", "other/charlie"]
    # a tag (alpha), card text (charlie), and a prefix of LlamaForCausalLM (all but bravo)
    assert hits("llama") == ["acme/alpha", "other/charlie", "other/delta"]
    assert hits("llama", "--provider", "other", "--license", "mit") == ["other/charlie"]
    assert hits("llama", "--limit", "1") == ["acme/alpha"]
    r = daemon.ctl("--json", "search", "llama", "--limit", "1").json()
    assert r["matches"] == 3 and "elapsed_ms" not in r
    out = daemon.ctl("search", "zebra").out
    assert "acme/alpha" in out and "1 shown of 1 matches" in out
    r = daemon.ctl("search", "!!", check=False)
    assert r.rc == 2 and "no word" in r.err   # a bad argument: usage error
    assert daemon.ctl("search", check=False).rc == 2
    assert daemon.ctl("search", "x", "--limit", "0", check=False).rc == 2


def test_one_letter_words_of_names_are_searchable(daemon, tmp):
    """A model is found by the one-letter parts of its name ('search x-b'
    used to be refused with 'no word of 2 to 40 letters or digits')."""
    daemon.ctl("import", tiny_llama(os.path.join(tmp, "a"), seed=1), "--name", "acme/x-b")
    daemon.ctl("import", tiny_llama(os.path.join(tmp, "b"), seed=2), "--name", "acme/xenon")
    def hits(q):
        return [r["name"] for r in daemon.ctl("--json", "search", q).json()["results"]]
    assert hits("x-b") == ["acme/x-b"]
    assert hits("b x") == ["acme/x-b"]
    assert hits("x") == ["acme/x-b"]      # one letter: a whole word, not a prefix
    assert hits("xe") == ["acme/xenon"]   # two or more: a word or the start of one
    assert hits("acme b") == ["acme/x-b"]
    r = daemon.ctl("search", "-", check=False)
    assert r.rc == 2 and "no word of 1 to 40" in r.err, r


def test_compare(daemon, catalog):
    c = daemon.ctl("--json", "compare", "acme/alpha", "acme/bravo", "other/delta").json()
    ms = c["models"]
    assert [m["name"] for m in ms] == ["acme/alpha", "acme/bravo", "other/delta"]
    assert [m["parameters"] for m in ms] == [68096, 1000000, 100]
    assert [m["size_class"] for m in ms] == ["small"] * 3
    assert [m["license_id"] for m in ms] == ["Apache-2.0", "MIT", "CC-BY-NC-4.0"]
    assert all(m["verdict"] in ("allow", "review", "deny") for m in ms)
    assert ms[1]["memory"]["stored"] == 4000000 and ms[1]["memory"]["int4"] == 500000
    assert [m["architecture"] for m in ms] == ["LlamaForCausalLM", "MistralForCausalLM",
                                               "LlamaForCausalLM"]
    assert ms[2]["context_length"] == 131072
    rows = {(b["task"], b["dataset"], b["metric"]): b["values"] for b in c["benchmarks"]}
    assert rows == {
        ("text-generation", "mmlu", "accuracy"): [0.5, 0.75, None],
        ("text-generation", "gsm8k", "accuracy"): [0.25, None, None],
        ("text-generation", "arc", "acc_norm"): [None, 0.5, None],
    }
    text = daemon.ctl("compare", "acme/alpha", "acme/bravo").out
    line = [l for l in text.splitlines() if l.startswith("text-generation / gsm8k / accuracy")][0]
    assert "0.25" in line and line.split()[-1] == "0.25"  # bravo's cell is blank, not 0
    assert "MistralForCausalLM" in text and "verdict" in text
    assert daemon.ctl("compare", "acme/alpha", check=False).rc == 2
    r = daemon.ctl("compare", "acme/alpha", "acme/nope", check=False)
    assert r.rc == 1 and "acme/nope" in r.err


def test_find_reports_server_time_and_bench_put_is_guarded(daemon, catalog):
    r = raw_call(daemon.sock, {"op": "find", "task": "text-generation"})
    assert r["ok"] and r["count"] == 2 and r["elapsed_ms"] >= 0
    r = raw_call(daemon.sock, {"op": "bench_put", "manifests": []})
    assert not r["ok"] and "MODELD_BENCH_OPS" in r["error"]
    r = raw_call(daemon.sock, {"op": "find", "min_params": -1})
    assert not r["ok"] and "min_params" in r["error"]


# ---- hub search against a fixture server ------------------------------------

HUB_MODELS = [{"id": "acme/alpha", "author": "acme", "pipeline_tag": "text-generation",
               "library_name": "transformers", "downloads": 100 - i, "likes": i,
               "tags": ["license:mit", "text-generation"],
               "safetensors": {"total": 10 ** (6 + i % 4)}} for i in range(1)]
HUB_MODELS += [{"id": "hub/model-%d" % i, "author": "hub", "pipeline_tag": "text-generation",
                "downloads": 90 - i, "likes": i, "tags": ["license:mit"],
                "safetensors": {"total": 10 ** (6 + i % 4)}} for i in range(1, 7)]
HUB_MODELS.append({"id": "bad\u001b[31m/escape", "downloads": 1})  # control chars: dropped
HUB_MODELS += [{"id": i, "downloads": 1}   # not a repository id: dropped
               for i in ("../../etc", "/abs", "a//b", "a/b/c", "a/..", "./x")]


class Hub(http.server.BaseHTTPRequestHandler):
    queries = []
    mode = "ok"

    def log_message(self, *a):
        pass

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        Hub.queries.append(q)
        if u.path != "/api/models":
            self.send_error(404)
            return
        if Hub.mode == "500":
            self.send_error(500)
            return
        if Hub.mode == "junk":
            body = b"<html>not json</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        start = int(q.get("cursor", ["0"])[0])
        page = HUB_MODELS[start:start + 3]
        body = json.dumps(page).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if Hub.mode in ("self", "back"):  # a hub whose cursor loops
            nxt = start if Hub.mode == "self" else (start + 3) % 6
            self.send_header("Link", '<http://127.0.0.1:%d/api/models?%s&cursor=%d>; rel="next"' %
                             (self.server.server_address[1], u.query.split("&cursor=")[0], nxt))
        elif start + 3 < len(HUB_MODELS):
            host = "http://evil.example:1" if Hub.mode == "offsite" else \
                "http://127.0.0.1:%d" % self.server.server_address[1]
            self.send_header("Link", '<%s/api/models?%s&cursor=%d>; rel="next"' %
                             (host, u.query.split("&cursor=")[0], start + 3))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hub():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    Hub.queries, Hub.mode = [], "ok"
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_hub_search(daemon, catalog, hub):
    r = daemon.ctl("--json", "search", "model", "--hub", hub, "--task", "text-generation",
                   "--license", "mit", "--provider", "hub", "--limit", "50").json()
    ids = [m["id"] for m in r["results"]]
    assert ids == ["acme/alpha"] + ["hub/model-%d" % i for i in range(1, 7)]  # escape id dropped
    assert r["pages"] == 4   # the fourth page: nothing usable, so the last
    assert [m["stored"] for m in r["results"]] == [True] + [False] * 6
    assert r["results"][0]["license"] == "mit" and r["results"][1]["parameters"] == 10 ** 7
    q = Hub.queries[0]
    assert q["search"] == ["model"] and q["author"] == ["hub"]
    assert sorted(q["filter"]) == ["license:mit", "text-generation"] and q["limit"] == ["50"]
    Hub.queries.clear()
    r = daemon.ctl("--json", "search", "model", "--hub", hub, "--limit", "4").json()
    assert len(r["results"]) == 4 and r["pages"] == 2 and Hub.queries[0]["limit"] == ["4"]
    Hub.queries.clear()
    daemon.ctl("--json", "search", "x", "--hub", hub, "--sort", "likes", "--limit", "1")
    assert Hub.queries[0]["sort"] == ["likes"]
    r = daemon.ctl("--json", "search", "x", "--hub", hub, "--min-params", "1B").json()
    assert [m["id"] for m in r["results"]] == ["hub/model-3"]
    out = daemon.ctl("search", "model", "--hub", hub, "--limit", "3").out
    assert "STORED" in out and "acme/alpha" in out and "yes" in out
    assert "\x1b" not in out


def test_hub_search_lists_each_model_once_when_the_hub_loops(daemon, hub):
    """A hub whose next link points at the same page, or back to an earlier
    one, does not fill the results with copies up to --limit (nor keep us
    for 50 pages): each id once, paging ends at a page with nothing new."""
    Hub.mode = "self"
    r = daemon.ctl("--json", "search", "x", "--hub", hub, "--limit", "100").json()
    assert [m["id"] for m in r["results"]] == ["acme/alpha", "hub/model-1", "hub/model-2"]
    assert r["pages"] == 2 and len(Hub.queries) == 2  # the second added nothing: stop
    Hub.mode, Hub.queries[:] = "back", []
    r = daemon.ctl("--json", "search", "x", "--hub", hub, "--limit", "100").json()
    assert [m["id"] for m in r["results"]] == ["acme/alpha"] + ["hub/model-%d" % i
                                                                for i in range(1, 6)]
    assert r["pages"] == 3 and len(Hub.queries) == 3  # the third page was all repeats
    out = daemon.ctl("search", "x", "--hub", hub, "--limit", "100").out
    assert out.count("hub/model-1 ") == 1


def test_hub_search_refusals(daemon, hub):
    Hub.mode = "offsite"
    r = daemon.ctl("search", "x", "--hub", hub, "--limit", "10", check=False)
    assert r.rc == 1 and "another origin" in r.err
    Hub.mode = "500"
    r = daemon.ctl("search", "x", "--hub", hub, check=False)
    assert r.rc == 1 and "HTTP 500" in r.err
    Hub.mode = "junk"
    r = daemon.ctl("search", "x", "--hub", hub, check=False)
    assert r.rc == 1 and "not a JSON array" in r.err
    # a bad argument value: a usage error, checked before connecting (modelctl(1))
    r = daemon.ctl("search", "x", "--hub", "file:///etc/passwd", check=False)
    assert r.rc == 2 and "http" in r.err
    r = daemon.ctl("search", "x", "--hub", "http://127.0.0.1:1", check=False)
    assert r.rc == 1 and "127.0.0.1:1" in r.err


def test_catalog_reads_for_others_and_hub_confined(tmp, hub):
    conf = os.path.join(tmp, "modeld.conf")
    with open(conf, "w") as f:
        f.write("hub = %s\n" % hub)
    d = Daemon(tmp, extra=["--config", conf]).start()
    try:
        d.ctl("import", model(tmp, "a", text="Zebra."), "--name", "acme/a")
        d.ctl("import", model(tmp, "b"), "--name", "acme/b")
        os.chmod(d.sock, 0o666)
        # the catalog is a read: any uid that can open the socket
        assert names(d.ctl("--json", "list", "--provider", "acme", user="nobody").json()) == \
            ["acme/a", "acme/b"]
        assert d.ctl("--json", "search", "zebra", user="nobody").json()["results"][0]["name"] == "acme/a"
        assert d.ctl("compare", "acme/a", "acme/b", user="nobody").rc == 0
        # the configured hub, yes; any other URL only for the daemon's user or root
        r = d.ctl("--json", "search", "model", "--hub", hub, "--limit", "2", user="nobody")
        assert [m["id"] for m in r.json()["results"]] == ["acme/alpha", "hub/model-1"]
        r = d.ctl("search", "x", "--hub", "http://127.0.0.1:9/", check=False, user="nobody")
        assert r.rc == 1 and "permission denied" in r.err
        r = raw_call(d.sock, {"op": "bench_put", "manifests": []})
        assert not r["ok"]
    finally:
        d.stop()


def test_list_json_of_many_models_is_the_daemons_text(tmp):
    """list --json prints the daemon's reply text (partial frames joined)
    without parsing it: 12,000 models (over 4 MiB, so several frames) come
    out as one JSON array, in order, equal to what the daemon sent, fast."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    d = Daemon(tmp, env=dict(os.environ, MODELD_BENCH_OPS="1")).start()
    try:
        subprocess.run(["/usr/bin/python3", os.path.join(root, "bench/catalog_populate.py"),
                        d.sock, "12000"], check=True, capture_output=True, timeout=600)
        r = d.ctl("list", "--json")
        rows = r.json()
        assert isinstance(rows, list) and len(rows) == 12000
        assert r.out.endswith("]\n") and r.out.count("\n") == 1
        names = [m["name"] for m in rows]
        assert names == sorted(names) and len(set(names)) == 12000
        one = d.ctl("list", "--json", names[5]).json()
        assert [m["name"] for m in one] == [names[5]] and one[0] == rows[5]
        assert d.ctl("list", "--json", "org000/none").json() == []
    finally:
        d.stop()


def test_hostile_card_is_flagged_not_silent(daemon, tmp):
    """A card refused as hostile or broken (alias bomb, bad UTF-8, unclosed
    front matter, deep nesting) never stops the import, and `show` says the
    card was ignored and why, instead of an empty task/license/benchmarks
    that look like the card's own. Dropped fields are listed too."""
    cards = {
        "laughs": b"---\nlicense: mit\na: &a [x,x,x,x,x,x,x,x,x]\n"
                  + b"".join(b"%c: &%c [%s]\n" % (c, c, b",".join([b"*" + bytes([c - 1])] * 9))
                             for c in b"bcde") + b"f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n---\n",
        "latin1": b"---\nlicense: mit\nmodel_name: caf\xe9\n---\n",
        "unclosed": b"---\nlicense: mit\npipeline_tag: text-generation\n",
        "deep": b"---\nlicense: mit\nmodel-index: " + b"[" * 5000 + b"]" * 5000 + b"\n---\n",
    }
    want = {"laughs": "YAML nodes", "latin1": "UTF-8", "unclosed": "not closed",
            "deep": "nest"}
    for sub, text in cards.items():
        d = model(tmp, sub)
        with open(os.path.join(d, "README.md"), "wb") as f:
            f.write(text)
        daemon.ctl("import", d, "--name", "card/" + sub)
        s = daemon.ctl("--json", "show", "card/" + sub).json()
        assert s["card"]["status"] == "unknown" and want[sub] in s["card"]["reason"], s["card"]
        assert s["benchmarks"] == [] and s["parameters"] == 1000  # the weights still count
        out = daemon.ctl("show", "card/" + sub).out
        line = [l for l in out.splitlines() if l.startswith("card:")]
        assert line and "ignored" in line[0] and want[sub] in line[0], out
    d = model(tmp, "warn")
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write("---\nlicense: mit\npipeline_tag: {a: 1}\nmodel-index:\n- results:\n  - task: {type: t}\n"
                "    dataset: {type: d}\n    metrics: [{type: m}]\n---\n")
    daemon.ctl("import", d, "--name", "card/warn")
    out = daemon.ctl("show", "card/warn").out
    assert "pipeline_tag: not a usable string, ignored" in out
    assert "model-index: 1 result(s) without task, dataset, metric or value, ignored" in out
    assert "ignored, README.md" not in out  # the card itself was usable
    assert out.count("card:") == 1


def cols(text):
    """Terminal columns of text (East Asian wide characters take two)."""
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_tables_stay_aligned_with_long_names_and_unicode(daemon, tmp):
    """Columns are as wide as their longest cell in terminal columns: a
    name over 40 characters, a task in accented letters or CJK, a license
    over the column width, in list (filtered and plain), search and compare,, never shift the columns after them."""
    long_name = "longorg/" + "a" * 70
    for sub, name, task, lic in (("a", long_name, "text-generation", "apache-2.0"),
                                 ("b", "uni/cafe", "tâche-générative", "mit"),
                                 ("c", "uni/tokyo", "東京-生成", "other"),
                                 ("d", "uni/plain", "translation", "cc-by-nc-sa-4.0")):
        daemon.ctl("import", model(tmp, sub, task=task, lic=lic, text="Zebra " + sub,
                                   bench=[(task, "データ", "acc", 0.5)]), "--name", name)

    def aligned(lines, col_of_header, cell_at_end):
        h = lines[0]
        start = cols(h[:h.index(col_of_header)])
        for l in lines[1:]:
            assert cols(l[:len(l) - len(cell_at_end(l))]) == start, (lines[0], l)

    out = daemon.ctl("list", "--provider", "uni").out.splitlines()
    aligned(out, "IMPORTED", lambda l: l[-16:])  # the time stamp is 16 columns
    out = daemon.ctl("list", "--sort", "name").out.splitlines()
    assert len(out) == 5 and any(long_name in l for l in out)  # never cut
    aligned(out, "IMPORTED", lambda l: l[-16:])
    out = daemon.ctl("list").out.splitlines()
    aligned(out, "IMPORTED", lambda l: l[-16:])
    out = daemon.ctl("search", "zebra").out.splitlines()[:-1]
    assert len(out) == 5
    aligned(out, "LICENSE", lambda l: l.split()[-1])
    out = daemon.ctl("compare", "uni/cafe", "uni/tokyo", long_name).out.splitlines()
    h = out[0]
    starts = [cols(h[:h.index(n)]) for n in ("uni/cafe", "uni/tokyo")]
    row = [l for l in out if l.startswith("task ")][0]
    assert cols(row[:row.index("東京-生成")]) == starts[1], out
    row = [l for l in out if l.startswith("tâche-générative / データ / acc")][0]
    assert cols(row[:row.index("0.5")]) == starts[0], out
    row = [l for l in out if l.startswith("東京-生成 / データ / acc")][0]
    assert cols(row[:row.index("0.5")]) == starts[1], out
    assert h.rstrip().endswith(" longorg/" + "a" * 17 + "~")  # cut to its 26 columns, marked


def test_compare_aligns_benchmarks_by_dataset_config_and_any_case(daemon, tmp):
    """Rows are (task, dataset with its config, metric): a GLUE card's sst2
    and mnli results are two rows, not one that keeps sst2 and silently
    drops mnli; "MMLU" in one card and "mmlu" in another are one row."""
    def card(sub, name, results):
        d = model(tmp, sub)
        text = "---\nlicense: mit\nmodel-index:\n- name: m\n  results:\n"
        for ds, cfg, met, v in results:
            text += ("  - task: {type: text-classification}\n"
                     "    dataset: {type: %s%s}\n    metrics:\n    - {type: %s, value: %s}\n"
                     % (ds, ", config: " + cfg if cfg else "", met, v))
        with open(os.path.join(d, "README.md"), "w") as f:
            f.write(text + "---\n")
        daemon.ctl("import", d, "--name", name)
    card("g1", "acme/g1", [("glue", "sst2", "accuracy", 0.9), ("glue", "mnli", "accuracy", 0.8),
                           ("MMLU", None, "accuracy", 0.5)])
    card("g2", "acme/g2", [("glue", "mnli", "accuracy", 0.7), ("mmlu", None, "accuracy", 0.6)])
    c = daemon.ctl("--json", "compare", "acme/g1", "acme/g2").json()
    rows = {(b["dataset"], b.get("config")): b["values"] for b in c["benchmarks"]}
    assert rows == {("glue", "sst2"): [0.9, None], ("glue", "mnli"): [0.8, 0.7],
                    ("MMLU", None): [0.5, 0.6]}
    out = daemon.ctl("compare", "acme/g1", "acme/g2").out
    line = [l for l in out.splitlines() if l.startswith("text-classification / glue (mnli) / accuracy")]
    assert line and line[0].split()[-2:] == ["0.8", "0.7"], out
    show = daemon.ctl("show", "acme/g1").out
    assert "glue (sst2)" in show and "glue (mnli)" in show
