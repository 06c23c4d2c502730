#!/usr/bin/python3
"""bench/load.py — weights from modeld against a safetensors-style loader.

Generates a bf16 checkpoint (SIZE_MB, default 8192, in 4 safetensors shards,
32 MiB matrices plus small norm vectors as in a transformer), imports it into a
private modeld, and prints one table: loader, warm GB/s, cold GB/s.

  loaders   safetensors.torch.load_file when importable, else "read + frombuffer"
            (read every file into memory, one torch.frombuffer per tensor: what
            load_file does on the CPU); modeld.load_state_dict(device="cpu")
            (views of the mapping: no byte is read at load time), and the same
            with every page touched once; with CUDA: load_file(device="cuda")
            or read + frombuffer + .to("cuda"), and
            modeld.load_state_dict(device="cuda"); "disk read" is the files
            read sequentially with 16 MiB reads (the disk's own rate when cold).
  warm      best of RUNS (default 3) after one untimed run, files in page cache
  cold      after sync; echo 3 > /proc/sys/vm/drop_caches (root only, else "-")

Env: SIZE_MB, RUNS, BENCH_DIR (default /var/tmp/modeld-bench-load, reused
when the checkpoint of that size is already there), MODELD_BUILD (build/),
CUDA_THREADS, CUDA_CHUNK_MB. Run from the repository: bench/load.sh.
"""
import gc
import json
import os
import shutil
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import modeld  # noqa: E402
import torch  # noqa: E402

SIZE_MB = int(os.environ.get("SIZE_MB", "8192"))
RUNS = int(os.environ.get("RUNS", "3"))
DIR = os.environ.get("BENCH_DIR", "/var/tmp/modeld-bench-load")
BUILD = os.path.join(ROOT, os.environ.get("MODELD_BUILD", "build"))
SHARDS = 4
HID = 4096
MAT = HID * HID * 2          # one bf16 matrix: 32 MiB


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def generate(src):
    """SIZE_MB of bf16 in SHARDS safetensors files; returns total bytes."""
    nmat = max(1, SIZE_MB * (1 << 20) // MAT)
    per = [nmat // SHARDS + (1 if i < nmat % SHARDS else 0) for i in range(SHARDS)]
    per = [p for p in per if p]
    gen = torch.Generator().manual_seed(0)
    total, k = 0, 0
    os.makedirs(src, exist_ok=True)
    for s, n in enumerate(per):
        hdr, off = {"__metadata__": {"format": "pt"}}, 0
        names = []
        for _ in range(n):
            for name, nbytes, shape in (("model.layers.%d.w" % k, MAT, [HID, HID]),
                                        ("model.layers.%d.norm" % k, HID * 2, [HID])):
                hdr[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + nbytes]}
                names.append((name, nbytes))
                off += nbytes
            k += 1
        h = json.dumps(hdr).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        path = os.path.join(src, "model-%05d-of-%05d.safetensors" % (s + 1, len(per)))
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for name, nbytes in names:
                # distinct random bytes per tensor (equal tensors would be
                # stored once); int16 random bits viewed as bf16
                t = torch.randint(-32768, 32767, (nbytes // 2,), dtype=torch.int16, generator=gen)
                f.write(t.numpy().tobytes())
        total += off
        log("generated %s (%.0f MiB)" % (path, off / 2**20))
    with open(os.path.join(src, "config.json"), "w") as f:
        f.write('{"architectures":["BenchForCausalLM"]}')
    return total


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def can_drop():
    return os.geteuid() == 0 and os.access("/proc/sys/vm/drop_caches", os.W_OK)


def st_read_frombuffer(files, device="cpu"):
    """The safetensors loader without the package: read, parse, frombuffer."""
    out = {}
    for path in files:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = bytearray(size)
            mv = memoryview(buf)
            n = 0
            while n < size:
                got = f.readinto(mv[n:n + (64 << 20)])
                if not got:
                    break
                n += got
        (hl,) = struct.unpack_from("<Q", buf, 0)
        hdr = json.loads(bytes(buf[8:8 + hl]))
        base = 8 + hl
        for name, e in hdr.items():
            if name == "__metadata__":
                continue
            a, b = e["data_offsets"]
            t = torch.frombuffer(buf, dtype=torch.bfloat16, count=(b - a) // 2,
                                 offset=base + a).view(e["shape"])
            out[name] = t.to(device) if device != "cpu" else t
    if device != "cpu":
        torch.cuda.synchronize()
    return out


def disk_read(files):
    buf = bytearray(16 << 20)
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            while os.readv(fd, [buf]) > 0:
                pass
        finally:
            os.close(fd)
    return None


def touch_pages(sd):
    import numpy as np
    s = 0
    seen = set()
    for t in sd.values():
        if t.numel() == 0:
            continue
        key = t.data_ptr()
        if key in seen:
            continue
        seen.add(key)
        a = t.view(-1).view(torch.uint8).numpy()
        s += int(a[::4096].sum())
    return s


def measure(fn, nbytes, cold):
    """GB/s (1e9 bytes per second) and seconds; warm is best of RUNS."""
    if cold:
        if not drop_caches():
            return None, None
        gc.collect()
        t0 = time.perf_counter()
        r = fn()
        dt = time.perf_counter() - t0
        del r
        gc.collect()
        return nbytes / dt / 1e9, dt
    r = fn()
    del r
    gc.collect()
    best = None
    for _ in range(RUNS):
        t0 = time.perf_counter()
        r = fn()
        dt = time.perf_counter() - t0
        del r
        gc.collect()
        best = dt if best is None else min(best, dt)
    return nbytes / best / 1e9, best


def main():
    src = os.path.join(DIR, "ckpt-%dMB" % SIZE_MB)
    stamp = os.path.join(src, ".done")
    if not os.path.exists(stamp):
        shutil.rmtree(src, ignore_errors=True)
        generate(src)
        open(stamp, "w").close()
    files = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".safetensors"))
    nbytes = 0
    for p in files:
        with open(p, "rb") as f:
            (hl,) = struct.unpack("<Q", f.read(8))
            nbytes += os.path.getsize(p) - 8 - hl

    store, sock = os.path.join(DIR, "store"), os.path.join(DIR, "modeld.sock")
    logf = open(os.path.join(DIR, "modeld.log"), "ab")
    d = subprocess.Popen([os.path.join(BUILD, "modeld"), "-f", "--store", store, "--socket",
                          sock], stdout=logf, stderr=logf)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        t0 = time.perf_counter()
        subprocess.run([os.path.join(BUILD, "modelctl"), "--socket", sock, "import", src,
                        "--name", "bench/load-%d" % SIZE_MB], check=True, stdout=subprocess.DEVNULL)
        log("import: %.1f s" % (time.perf_counter() - t0))
        name = "bench/load-%d" % SIZE_MB

        try:
            from safetensors.torch import load_file
            base_name = "safetensors.torch.load_file"

            def base(device="cpu"):
                out = {}
                for p in files:
                    out.update(load_file(p, device=device))
                if device != "cpu":
                    torch.cuda.synchronize()
                return out
        except ImportError:
            base_name = "read + torch.frombuffer (safetensors-style)"

            def base(device="cpu"):
                return st_read_frombuffer(files, device)

        rows = [("disk read (16 MiB reads)", lambda: disk_read(files)),
                (base_name + ", cpu", lambda: base("cpu")),
                ('modeld.load_state_dict(device="cpu")',
                 lambda: modeld.load_state_dict(name, socket=sock)),
                ('modeld.load_state_dict(device="cpu") + touch every page',
                 lambda: touch_pages(modeld.load_state_dict(name, socket=sock)))]
        if torch.cuda.is_available():
            kw = {}
            if os.environ.get("CUDA_THREADS"):
                kw["threads"] = int(os.environ["CUDA_THREADS"])
            if os.environ.get("CUDA_CHUNK_MB"):
                kw["chunk_mb"] = int(os.environ["CUDA_CHUNK_MB"])

            def h2d():  # the copy alone from one pinned buffer (the PCIe limit)
                src_t = torch.empty(1 << 30, dtype=torch.uint8).pin_memory()
                dst = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(4):
                    dst.copy_(src_t, non_blocking=True)
                torch.cuda.synchronize()
                return 4 * (1 << 30) / (time.perf_counter() - t0) / 1e9
            log("pinned host-to-device copy: %.1f GB/s" % h2d())
            rows += [(base_name + ", cuda", lambda: base("cuda")),
                     ('modeld.load_state_dict(device="cuda")',
                      lambda: modeld.load_state_dict(name, socket=sock, device="cuda", **kw)),
                     ('modeld.load_state_dict(device="cuda", direct=True)',
                      lambda: modeld.load_state_dict(name, socket=sock, device="cuda",
                                                     direct=True, **kw))]
        cold_ok = can_drop()
        print("checkpoint: %.2f GiB bf16 (%d files, %s), torch %s, cuda %s, %s"
              % (nbytes / 2**30, len(files), src, torch.__version__,
                 torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no",
                 "cold runs after drop_caches" if cold_ok else "no cold runs (needs root)"))
        print("%-58s %10s %10s %12s" % ("loader", "warm GB/s", "cold GB/s", "warm time"))
        for label, fn in rows:
            w, wt = measure(fn, nbytes, cold=False)
            c, _ = measure(fn, nbytes, cold=True) if cold_ok else (None, None)
            print("%-58s %10.1f %10s %10.1f ms" % (label, w, "-" if c is None else "%.1f" % c,
                                                   wt * 1000), flush=True)
    finally:
        d.terminate()
        d.wait()


if __name__ == "__main__":
    main()
