"""modeld — load model weights from a local modeld daemon (docs/serving.md).

    import modeld
    sd = modeld.load_state_dict("acme/llama", device="cuda")
    with modeld.safe_open("acme/llama") as f:
        w = f.get_tensor("lm_head.weight")

The daemon hands over its pack files as read-only descriptors; no weight byte
crosses the socket. On the CPU every tensor is a view of a read-only mapping
of the pack (no copy). Pure standard library; torch is needed only for the
torch-returning calls.
"""
import fnmatch
import mmap
import os
import warnings

from ._proto import Connection, ModeldError, default_socket  # noqa: F401

__all__ = ["load_state_dict", "safe_open", "open_model", "Model", "Connection",
           "ModeldError", "default_socket"]

# dtype names as the daemon spells them -> torch attribute names
_TORCH_DTYPES = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
    "I32": "int32", "U32": "uint32", "I64": "int64", "U64": "uint64",
    "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
    "C64": "complex64", "C128": "complex128",
    "GGML_F32": "float32", "GGML_F16": "float16", "GGML_BF16": "bfloat16",
}


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("modeld: this call returns torch tensors; install torch") from None
    return torch


def torch_dtype(name):
    """The torch dtype for a daemon dtype name. ggml block types
    (GGML_Q4_K, ...) come back as raw uint8 bytes; names this torch has no
    dtype for raise TypeError."""
    torch = _torch()
    if name.startswith("GGML_") and name not in _TORCH_DTYPES:
        return torch.uint8
    attr = _TORCH_DTYPES.get(name)
    dt = getattr(torch, attr, None) if attr else None
    if dt is None:
        raise TypeError("modeld: dtype %s has no torch equivalent in torch %s"
                        % (name, torch.__version__))
    return dt


class _Map(mmap.mmap):
    """A read-only mapping of one pack. It holds the connection (and so the
    lease) for as long as any tensor view of it is alive."""


class Model:
    """An opened revision: the tensor table and the packs' descriptors, under
    a lease held by this object's connection. Mapping is lazy."""

    def __init__(self, ref, socket=None, files=None, conn=None):
        self.conn = conn or Connection(socket)
        try:
            info = self.conn.open(ref)
        except BaseException:
            if conn is None:
                self.conn.close()
            raise
        self.name, self.revision, self.lease = info["name"], info["revision"], info["lease"]
        self.packs = info["packs"]
        self.maps = [None] * len(self.packs)
        keep = set()
        for i, p in enumerate(self.packs):
            # files=None: what from_pretrained would read (the daemon's
            # "default": model.safetensors over pytorch_model.bin, not
            # consolidated.safetensors, original/ or a GGUF file beside them)
            if (p.get("default", True) if files is None
                    else any(fnmatch.fnmatchcase(p["file"], g) for g in files)):
                keep.add(i)
        if files is not None and not keep:
            have = sorted({p["file"] for p in self.packs})
            self.close()
            raise ModeldError(-2, "%s: no weight file matches files=%r (weight files: %s)"
                              % (ref, list(files), ", ".join(have[:8]) +
                                 (", ..." if len(have) > 8 else "") or "none"))
        self.tensors = {}
        for t in info["tensors"]:
            if t["pack"] not in keep:
                continue
            if t["name"] in self.tensors:
                other = self.packs[self.tensors[t["name"]]["pack"]]["file"]
                self.close()
                raise ModeldError(-1, "%s: tensor %s is in both %s and %s; choose with files=[...]"
                                  % (ref, t["name"], other, self.packs[t["pack"]]["file"]))
            self.tensors[t["name"]] = t

    # -- lifetime ----------------------------------------------------------
    def close_fds(self):
        """Close the pack descriptors (mappings already made stay). The
        connection, and so the lease, then lives as long as a mapping."""
        for p in self.packs:
            if p.get("fd") is not None:
                os.close(p["fd"])
                p["fd"] = None

    def close(self):
        """Close the descriptors and the connection (the lease ends). Tensors
        already returned stay valid: their mappings outlive the lease (the
        store only ever unlinks, never truncates, a blob)."""
        self.close_fds()
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close_fds()
        except Exception:
            pass

    # -- tables ------------------------------------------------------------
    def keys(self):
        return sorted(self.tensors)

    def metadata(self):
        md = {}
        for p in self.packs:
            md.update(p.get("metadata") or {})
        return md or None

    def map(self, i):
        """The read-only mapping of pack i (a mmap object)."""
        if self.maps[i] is None:
            fd = self.packs[i]["fd"]
            if fd is None:
                raise ModeldError(-1, "%s: model is closed" % self.name)
            m = _Map(fd, 0, access=mmap.ACCESS_READ)
            m.lease = self.conn      # the lease lives as long as the mapping
            self.maps[i] = m
        return self.maps[i]

    def buffer(self, name):
        """(mapping, offset, length) of a tensor's bytes: no copy."""
        t = self._entry(name)
        return self.map(t["pack"]), t["offset"], t["length"]

    def _entry(self, name):
        t = self.tensors.get(name)
        if t is None:
            raise KeyError("%s: no tensor %r" % (self.name, name))
        return t

    def tensor(self, name):
        """A CPU torch tensor viewing the mapping (read-only memory: writing to
        it crashes the process; .clone() first)."""
        torch = _torch()
        t = self._entry(name)
        try:
            dt = torch_dtype(t["dtype"])
        except TypeError as e:
            raise TypeError("modeld: %s: tensor %s: %s"
                            % (self.name, name, str(e).replace("modeld: ", "", 1))) from None
        shape = t["shape"] if dt != torch.uint8 or not t["dtype"].startswith("GGML_") \
            else [t["length"]]
        if t["length"] == 0:
            return torch.empty(shape, dtype=dt)
        esz = torch.tensor([], dtype=dt).element_size()
        with warnings.catch_warnings():
            # the mapping is read-only on purpose (the store's bytes)
            warnings.filterwarnings("ignore", message=".*not writable.*")
            v = torch.frombuffer(self.map(t["pack"]), dtype=dt, count=t["length"] // esz,
                                 offset=t["offset"])
        return v.view(shape)


def open_model(ref, socket=None, files=None):
    """Open NAME[@REV]: a Model (context manager) holding the lease."""
    return Model(ref, socket=socket, files=files)


def _parse_device(device):
    if isinstance(device, int) and not isinstance(device, bool):
        if device < 0:      # safetensors' device=0 means cuda:0
            raise ValueError("modeld: bad device %r" % device)
        return "cuda", device
    d = str(device)
    if d == "cpu":
        return "cpu", None
    if d == "cuda" or d.startswith("cuda:"):
        idx = d[5:] if d.startswith("cuda:") else None
        if idx is not None and not idx.isdigit():
            raise ValueError("modeld: bad device %r" % device)
        return "cuda", None if idx is None else int(idx)
    raise ValueError("modeld: device must be 'cpu', 'cuda', 'cuda:N' or N, not %r" % device)


def _parse_dtype(dtype):
    """dtype= of load_state_dict: None, a floating-point torch dtype, or its
    name ("float16", "torch.bfloat16")."""
    if dtype is None:
        return None
    torch = _torch()
    dt = dtype
    if isinstance(dtype, str):
        dt = getattr(torch, dtype[6:] if dtype.startswith("torch.") else dtype, None)
    if not isinstance(dt, torch.dtype):
        raise TypeError("modeld: dtype must be a torch dtype such as torch.float16, not %r"
                        % (dtype,))
    if not dt.is_floating_point:
        raise ValueError("modeld: dtype %s is not a floating-point type (dtype= converts the "
                         "floating-point tensors)" % dt)
    return dt


def load_state_dict(name, device="cpu", dtype=None, socket=None, files=None, **cuda_opts):
    """{tensor name: torch tensor} for NAME[@REV].

    device "cpu": views of read-only mappings of the packs (no copy, no read;
    pages come in on first touch); the lease (rm refuses the model) lasts
    while any of them lives.
    device "cuda"/"cuda:N"/N: parallel reads into pinned buffers and async
    copies (modeld._cuda; cuda_opts: threads=, chunk_mb=, direct=); one
    device buffer per pack, the tensors are views of it. dtype: convert
    floating-point tensors (a copy) to this floating-point torch dtype (or
    its name, "float16"); other dtypes raise before anything is opened.
    files: glob patterns choosing weight files (e.g. ["model-*.safetensors"],
    ["*"] for all); without it, the files from_pretrained would read: not
    pytorch_model.bin beside model.safetensors, nor the model again under
    other names (consolidated.safetensors, original/, a GGUF file beside).
    """
    _torch()
    kind, index = _parse_device(device)
    dtype = _parse_dtype(dtype)
    if kind == "cuda":
        from . import _cuda
        _cuda.check(index)      # before taking a lease
    m = Model(name, socket=socket, files=files)
    try:
        if kind == "cpu":
            sd = {k: m.tensor(k) for k in m.tensors}
            m.close_fds()   # the mappings keep the connection (the lease)
        else:
            from . import _cuda
            sd = _cuda.load(m, index, **cuda_opts)
            m.close()
    except BaseException:
        m.close()
        raise
    if dtype is not None:
        sd = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    return sd


class _Slice:
    """safetensors' PySafeSlice: shape and dtype without reading, [...] to
    read part of a tensor."""

    def __init__(self, f, name):
        self._f, self._name = f, name
        self._t = f._model._entry(name)

    def get_shape(self):
        return list(self._t["shape"])

    def get_dtype(self):
        return self._t["dtype"]

    def __getitem__(self, idx):
        return self._f.get_tensor(self._name)[idx]


class safe_open:
    """safetensors.safe_open over a stored model:

        with modeld.safe_open("acme/x", framework="pt", device="cpu") as f:
            for k in f.keys(): t = f.get_tensor(k)

    get_tensor on "cpu" returns a view of the read-only mapping; on "cuda:N"
    a copy on that device. metadata(): the string metadata of the weight
    files (safetensors __metadata__), or None.
    """

    def __init__(self, name, framework="pt", device="cpu", socket=None, files=None):
        if framework not in ("pt", "torch", "pytorch"):
            raise ValueError("modeld.safe_open: only framework='pt' is supported")
        self._kind, self._index = _parse_device(device)
        if self._kind == "cuda":
            from . import _cuda
            _cuda.check(self._index)
        self._model = Model(name, socket=socket, files=files)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._model.close()

    def keys(self):
        return self._model.keys()

    def offset_keys(self):
        return sorted(self._model.tensors, key=lambda k: (self._model.tensors[k]["pack"],
                                                          self._model.tensors[k]["offset"]))

    def metadata(self):
        return self._model.metadata()

    def get_tensor(self, name):
        t = self._model.tensor(name)
        if self._kind == "cuda":
            idx = self._index if self._index is not None else _torch().cuda.current_device()
            t = t.to("cuda:%d" % idx)
        return t

    def get_slice(self, name):
        return _Slice(self, name)

    def get_tensors(self):
        """{name: tensor} of every tensor, as get_tensor gives them."""
        return {k: self.get_tensor(k) for k in self.offset_keys()}
