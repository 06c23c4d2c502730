"""The modeld control protocol, client side (docs/protocol.md, docs/serving.md).

Pure standard library: a Unix stream socket, frames of a 12-byte header and a
JSON payload, descriptors as SCM_RIGHTS ancillary data (socket.recvmsg).
"""
import array
import json
import os
import socket
import struct

PROTO_VERSION = 1
PROTO_HDR = 12
PROTO_MAX_PAYLOAD = 16 << 20   # the daemon's cap on one frame
PROTO_MAX_FDS = 200            # descriptors per frame
SYSTEM_SOCKET = "/run/modeld/modeld.sock"

# MD_E* codes (common/err.h)
MD_EINVAL, MD_ENOENT, MD_EEXIST, MD_EIO, MD_ENOMEM, MD_EPERM = -1, -2, -3, -4, -5, -6
MD_ECORRUPT, MD_EPROTO, MD_EBUSY, MD_ECANCELED, MD_ENOSPC, MD_EDB = -7, -8, -9, -10, -11, -12
MD_ENET, MD_EUNSUP, MD_ETOOBIG, MD_EREFUSED, MD_EAUTH, MD_ECONN = -13, -14, -15, -16, -17, -18


class ModeldError(Exception):
    """A failure reported by the daemon (code is a negative MD_E* value) or
    met while talking to it (MD_ECONN, MD_EPROTO)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def default_socket():
    """Where modelctl looks: $MODELD_SOCKET, $XDG_RUNTIME_DIR/modeld.sock
    (root: /run/modeld/modeld.sock), /tmp/modeld-UID/modeld.sock; the system
    socket when the per-user one does not exist."""
    e = os.environ.get("MODELD_SOCKET")
    if e:
        return e
    x = os.environ.get("XDG_RUNTIME_DIR")
    if x:
        p = os.path.join(x, "modeld.sock")
    elif os.getuid() == 0:
        p = SYSTEM_SOCKET
    else:
        p = "/tmp/modeld-%d/modeld.sock" % os.getuid()
    if not os.path.exists(p) and os.path.exists(SYSTEM_SOCKET):
        return SYSTEM_SOCKET
    return p


def check_socket_dir(sock):
    """The C client's rule (common/paths.c) for the default socket: its
    directory must belong to you or root and not be writable by others
    unless sticky, or another user could put a socket of their own there."""
    import stat
    d = os.path.dirname(sock) or "."
    try:
        st = os.stat(d)
    except OSError:
        return   # connect says what is wrong
    if st.st_uid not in (os.getuid(), 0):
        raise ModeldError(MD_EPERM, "%s: socket directory owned by uid %d, not by you or root; "
                          "refusing to use it" % (d, st.st_uid))
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise ModeldError(MD_EPERM, "%s: socket directory writable by others (mode %04o); "
                          "refusing to use it" % (d, st.st_mode & 0o7777))


class Connection:
    """One connection to modeld. Leases taken with open() last until close()
    (or until this object is garbage collected)."""

    def __init__(self, path=None):
        if path:
            self.path = os.fspath(path)   # str or path-like
        else:
            self.path = default_socket()
            check_socket_dir(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.connect(self.path)
        except OSError as e:
            self.sock.close()
            if isinstance(e, PermissionError):
                raise ModeldError(MD_EPERM, "%s: %s" % (self.path, e.strerror)) from None
            raise ModeldError(MD_ECONN, "cannot connect to modeld at %s: %s (is it running?)"
                              % (self.path, e.strerror)) from None
        self.buf = bytearray()
        self.fdq = []
        self.bytes_received = 0   # every byte read from the socket, headers included

    def close(self):
        for fd in self.fdq:
            os.close(fd)
        self.fdq = []
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def send(self, obj):
        payload = json.dumps(obj).encode()
        hdr = b"MD" + struct.pack("<HII", PROTO_VERSION, len(payload), 0)
        self.sock.sendall(hdr + payload)

    def _fill(self):
        fdsize = array.array("i").itemsize
        data, anc, flags, _ = self.sock.recvmsg(
            1 << 20, socket.CMSG_SPACE(PROTO_MAX_FDS * fdsize), socket.MSG_CMSG_CLOEXEC)
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[:len(cdata) - len(cdata) % fdsize])
                self.fdq.extend(fds)
        if flags & socket.MSG_CTRUNC:
            raise ModeldError(MD_EPROTO, "descriptors truncated")
        if not data:
            raise ModeldError(MD_EPROTO, "modeld closed the connection")
        self.bytes_received += len(data)
        self.buf += data

    def recv(self):
        """Next frame: (object, [fds]) — the caller owns the descriptors."""
        while len(self.buf) < PROTO_HDR:
            self._fill()
        if self.buf[:2] != b"MD":
            raise ModeldError(MD_EPROTO, "bad frame magic from modeld")
        ver, n, nfds = struct.unpack_from("<HII", self.buf, 2)
        if ver != PROTO_VERSION or n > PROTO_MAX_PAYLOAD or nfds > PROTO_MAX_FDS:
            raise ModeldError(MD_EPROTO, "bad frame header from modeld")
        while len(self.buf) < PROTO_HDR + n:
            self._fill()
        if len(self.fdq) < nfds:
            raise ModeldError(MD_EPROTO, "frame declares %d descriptors, %d arrived"
                              % (nfds, len(self.fdq)))
        payload = bytes(self.buf[PROTO_HDR:PROTO_HDR + n])
        del self.buf[:PROTO_HDR + n]
        fds, self.fdq = self.fdq[:nfds], self.fdq[nfds:]
        return json.loads(payload), fds

    def call(self, obj):
        """Send a request, return (final result, [frames before it], [fds])."""
        self.send(obj)
        parts, fds = [], []
        try:
            while True:
                msg, f = self.recv()
                fds.extend(f)
                if "ok" in msg:
                    if not msg["ok"]:
                        raise ModeldError(msg.get("code", MD_EPROTO), msg.get("error", "?"))
                    return msg.get("result"), parts, fds
                if "progress" not in msg:
                    parts.append(msg)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise

    def open(self, ref):
        """The `open` operation: {name, revision, lease, packs, tensors}, each
        pack carrying its read-only descriptor as "fd" (owned by the caller)."""
        res, parts, fds = self.call({"op": "open", "ref": ref})
        packs, tensors = [], []
        for p in parts:
            o = p.get("open_part")
            if o is None:
                continue
            packs += o["packs"]
            tensors += o["tensors"]
        packs += res["packs"]
        tensors += res["tensors"]
        if len(fds) != len(packs):
            for fd in fds:
                os.close(fd)
            raise ModeldError(MD_EPROTO, "open: %d descriptors for %d packs"
                              % (len(fds), len(packs)))
        for p, fd in zip(packs, fds):
            p["fd"] = fd
        res["packs"], res["tensors"] = packs, tensors
        return res
