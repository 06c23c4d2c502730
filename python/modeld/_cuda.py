"""Loading a model's packs onto a CUDA device (docs/serving.md).

Pipeline: the pack descriptors are read with os.preadv (the GIL is released)
by N threads, each owning two pinned host buffers and a CUDA stream: a thread
reads a chunk into one buffer while the previous chunk's host-to-device copy
from the other is in flight. Each pack lands in one device buffer covering
its data region; the tensors are views of it (every tensor starts at a
4096-byte boundary, so any dtype view is aligned). No build dependency on
CUDA: everything goes through torch.
"""
import ctypes
import fcntl
import os
import threading

DEFAULT_THREADS = 8
DEFAULT_CHUNK_MB = 64
DATA_OFF = 4096               # docs/pack-format.md: the data region starts here


def check(index=None):
    """Raise a clear error unless torch can reach the CUDA device."""
    try:
        import torch
    except ImportError:
        raise ImportError("modeld: device='cuda' needs torch with CUDA support") from None
    if not torch.cuda.is_available():
        raise RuntimeError("modeld: device='cuda' requested but torch.cuda.is_available() is "
                           "False (torch %s, built with CUDA %s); use device='cpu'"
                           % (torch.__version__, torch.version.cuda))
    if index is not None and index >= torch.cuda.device_count():
        raise RuntimeError("modeld: cuda:%d requested but only %d CUDA device(s)"
                           % (index, torch.cuda.device_count()))
    return torch


def _host_view(t, n):
    """A writable memoryview of the first n bytes of pinned tensor t."""
    return memoryview((ctypes.c_ubyte * n).from_address(t.data_ptr())).cast("B")


class _NoStream:
    """Stands in for streams and events when the pipeline runs on the CPU
    (_simulate: tests of the chunking without a GPU)."""

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def synchronize(self):
        pass

    def record(self, stream=None):
        pass


def load(model, index=None, threads=DEFAULT_THREADS, chunk_mb=DEFAULT_CHUNK_MB, direct=False,
         _simulate=False):
    """{name: tensor on cuda:index} for an opened modeld.Model.
    direct=True reads with O_DIRECT (cold loads: no page-cache copy; the
    pinned buffers and chunk offsets are 4096-aligned). _simulate=True runs
    the same pipeline into CPU memory (tests without a GPU)."""
    if _simulate:
        import torch
        dev = torch.device("cpu")
    else:
        torch = check(index)
        dev = torch.device("cuda", index if index is not None else torch.cuda.current_device())
    from . import torch_dtype
    sim = dev.type == "cpu"
    chunk = int(float(chunk_mb) * (1 << 20))
    chunk = max(4096, (chunk + 4095) // 4096 * 4096)

    # the data region of each pack in use, and one device buffer for it
    ends = {}
    for t in model.tensors.values():
        ends[t["pack"]] = max(ends.get(t["pack"], DATA_OFF), t["offset"] + t["length"])
    bufs, work = {}, []
    for p, end in ends.items():
        bufs[p] = torch.empty(end - DATA_OFF, dtype=torch.uint8, device=dev)
        fd = model.packs[p]["fd"]
        if direct:
            try:
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_DIRECT)
            except OSError:
                pass   # a filesystem without O_DIRECT (tmpfs): buffered reads
        for lo in range(DATA_OFF, end, chunk):
            work.append((p, fd, lo, min(end, lo + chunk)))
    work.sort(key=lambda w: (w[2], w[0]))   # spread the packs over the threads
    lock = threading.Lock()
    errors = []

    def worker():
        try:
            if not sim:
                torch.cuda.set_device(dev)
            stream = _NoStream() if sim else torch.cuda.Stream(device=dev)
            pins = [torch.empty(chunk + 4096, dtype=torch.uint8) for _ in range(2)]
            if not sim:
                pins = [x.pin_memory() for x in pins]
            # 4096-aligned starts (O_DIRECT); pinned memory already is
            pins = [x[(-x.data_ptr()) % 4096:][:chunk] for x in pins]
            views = [_host_view(x, chunk) for x in pins]
            events = [None, None]
            k = 0
            while True:
                with lock:
                    if not work or errors:
                        break
                    p, fd, lo, hi = work.pop()
                b = k & 1
                if events[b] is not None:
                    events[b].synchronize()          # its last copy is done
                n, want = 0, hi - lo
                rd = (want + 4095) // 4096 * 4096 if direct else want
                while n < want:
                    got = os.preadv(fd, [views[b][n:rd]], lo + n)
                    if got <= 0:
                        raise IOError("pack %d: short read at %d" % (p, lo + n))
                    n += got
                with (_NoStream() if sim else torch.cuda.stream(stream)):
                    bufs[p][lo - DATA_OFF:hi - DATA_OFF].copy_(pins[b][:want], non_blocking=True)
                    ev = _NoStream() if sim else torch.cuda.Event()
                    ev.record(stream)
                events[b] = ev
                k += 1
            stream.synchronize()
        except BaseException as e:  # reported to the caller below
            with lock:
                errors.append(e)

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, int(threads)))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    if not sim:
        torch.cuda.synchronize(dev)

    out = {}
    for name, t in model.tensors.items():
        dt = torch_dtype(t["dtype"])
        ggml_raw = dt == torch.uint8 and t["dtype"].startswith("GGML_")
        shape = [t["length"]] if ggml_raw else t["shape"]
        if t["length"] == 0:
            out[name] = torch.empty(shape, dtype=dt, device=dev)
            continue
        lo = t["offset"] - DATA_OFF
        out[name] = bufs[t["pack"]][lo:lo + t["length"]].view(dt).view(shape)
    return out
