#!/usr/bin/python3
"""Fill a modeld started with MODELD_BENCH_OPS=1 with N synthetic catalog
entries through the benchmark-only `bench_put` op (manifests without files,
stored by catalog_put_rev exactly like an import's, indexes included), in
batches of 5,000 per write transaction. Real imports run ~250/s (one fsync'd
commit each), so 100,000 would take 7+ minutes; this takes seconds.
Deterministic (seeded). usage: catalog_populate.py SOCKET N"""
import hashlib
import json
import math
import random
import socket
import struct
import sys

TASKS = ["text-generation", "text-classification", "token-classification", "translation",
         "summarization", "question-answering", "fill-mask", "feature-extraction",
         "image-classification", "automatic-speech-recognition", "text-to-image",
         "sentence-similarity"]
LICENSES = ["apache-2.0", "mit", "llama3.1", "cc-by-4.0", "cc-by-nc-4.0", "gemma",
            "openrail", "bsd-3-clause", "gpl-3.0", "other"]
SPDX = {"apache-2.0": "Apache-2.0", "mit": "MIT", "cc-by-4.0": "CC-BY-4.0",
        "cc-by-nc-4.0": "CC-BY-NC-4.0", "bsd-3-clause": "BSD-3-Clause", "gpl-3.0": "GPL-3.0-only"}
LIBS = ["transformers", "diffusers", "sentence-transformers", "gguf", "mlx", "timm"]
ARCH = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "GemmaForCausalLM",
        "BertForMaskedLM", "T5ForConditionalGeneration", "WhisperForConditionalGeneration",
        "GPT2LMHeadModel", "PhiForCausalLM", "FalconForCausalLM"]
FAMILIES = ["llama", "mistral", "qwen", "gemma", "phi", "falcon", "bert", "roberta", "t5",
            "whisper", "bloom", "pythia", "olmo", "mamba", "stablelm", "deepseek", "yi",
            "internlm", "baichuan", "starcoder", "codegen", "opt", "gpt", "electra", "deberta"]
DATASETS = ["mmlu", "gsm8k", "hellaswag", "arc", "truthfulqa", "winogrande", "humaneval"]


def call(s, obj):
    b = json.dumps(obj).encode()
    s.sendall(b"MD" + struct.pack("<HII", 1, len(b), 0) + b)
    while True:
        h = recv_exact(s, 12)
        n = struct.unpack("<I", h[4:8])[0]
        msg = json.loads(recv_exact(s, n))
        if "progress" in msg or "partial" in msg:
            continue
        if not msg.get("ok"):
            raise SystemExit("bench_put failed: %s" % msg)
        return msg


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise SystemExit("daemon hung up")
        buf += c
    return bytes(buf)


def manifest(i, rnd, words):
    org = "org%03d" % rnd.randrange(200)
    fam = rnd.choice(FAMILIES)
    params = int(math.exp(rnd.uniform(math.log(1e7), math.log(4e11))))
    task = rnd.choice(TASKS)
    lic = rnd.choice(LICENSES)
    dt = rnd.choice(["BF16", "F16", "F32", "I8"])
    bpp = {"BF16": 2, "F16": 2, "F32": 4, "I8": 1}[dt]
    name = "%s/%s-%s-v%d" % (org, fam, "%dm" % (params // 10**6) if params < 10**9 else
                             "%db" % (params // 10**9), i)
    rev = hashlib.sha1(name.encode()).hexdigest()
    bench = [{"task": "text-generation", "dataset": d, "metric": "accuracy",
              "value": round(rnd.random(), 3)} for d in rnd.sample(DATASETS, 2)]
    return {
        "name": name, "revision": rev, "total_size": params * bpp + 20000,
        "imported_at": "2026-%02d-%02dT%02d:%02d:00Z" % (1 + i % 11, 1 + i % 28, i % 24, i % 60),
        "source": {"type": "local", "path": "/synthetic"},
        "license": {"declared": lic, "spdx": SPDX.get(lic), "verdict": "allow"},
        "card": {"status": "ok", "text": "# %s\n%s" % (name, " ".join(rnd.sample(words, 30)))},
        "facts": {
            "task": task, "library": rnd.choice(LIBS), "provider": org,
            "license": SPDX.get(lic, "NOASSERTION"), "languages": ["en"],
            "datasets": [], "base_model": [], "tags": [fam, task, "synthetic"],
            "gated": False, "benchmarks": bench, "card_status": "ok",
            "architecture": rnd.choice(ARCH), "model_type": fam,
            "hidden_size": 4096, "num_layers": 32, "num_heads": 32,
            "context_length": rnd.choice([2048, 4096, 8192, 32768, 131072]),
            "vocab_size": 32000, "parameters": params, "dtype_bytes": {dt: params * bpp},
            "parameters_source": "synthetic"},
    }


def main():
    sock, n = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(8)
    words = ["w%04d" % k for k in range(2000)] + ["zebra", "quantum", "chat", "instruct", "code"]
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    batch = []
    for i in range(n):
        batch.append(manifest(i, rnd, words))
        if len(batch) == 5000 or i == n - 1:
            call(s, {"op": "bench_put", "manifests": batch})
            batch = []
            print("  %d entries" % (i + 1), file=sys.stderr)


main()
