"""File descriptors between processes, as ``multiprocessing.reduction``.

A Connection or a socket sent to another process (a Process argument, a
Pipe message, a queue item) travels as a :class:`DupFd`: the sending
process keeps a duplicate of the descriptor in its *fd sharer* (a thread
listening on a Unix socket in the node's private folder, mode 0700), and
the receiving process fetches it from there once, over ``SCM_RIGHTS``.
A descriptor nobody fetches stays open in the sender until
:func:`forget` closes it (``Process`` does so for what it pickled once
the child has ended) or the process exits.

Also the low-level calls of the standard library: :func:`send_handle` and
:func:`recv_handle` (an fd over a Unix-socket Connection), :func:`sendfds`,
:func:`recvfds`, and :class:`ForkingPickler`, the pickler Connections use
(it can pickle sockets and Connections; plain ``pickle`` can pickle
Connections too).
"""

from __future__ import annotations

import copyreg
import io
import itertools
import os
import pickle
import secrets
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from actors.mp import context

__all__ = ["HAVE_SEND_HANDLE", "DupFd", "ForkingPickler", "dump", "dumps", "forget",
           "recv_handle", "recvfds", "register", "send_handle", "sendfds"]

HAVE_SEND_HANDLE = sys.platform != "win32" and hasattr(socket, "CMSG_LEN")


class ForkingPickler(pickle.Pickler):
    """A pickler that also knows the types :func:`register` was given."""

    _extra_reducers: dict[type, Callable[[Any], Any]] = {}
    _copyreg_dispatch_table = copyreg.dispatch_table

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dispatch_table = self._copyreg_dispatch_table.copy()
        # what was registered with the standard library's pickler too (its
        # heap's Arena, say, which programs and CPython's tests pickle)
        std = sys.modules.get("multiprocessing.reduction")
        if std is not None and std is not sys.modules.get(__name__):
            self.dispatch_table.update(getattr(std.ForkingPickler, "_extra_reducers", {}))
        self.dispatch_table.update(self._extra_reducers)

    @classmethod
    def register(cls, type_: type, reduce: Callable[[Any], Any]) -> None:
        cls._extra_reducers[type_] = reduce

    @classmethod
    def dumps(cls, obj: Any, protocol: int | None = None) -> memoryview:
        buf = io.BytesIO()
        cls(buf, protocol).dump(obj)
        return buf.getbuffer()

    loads = staticmethod(pickle.loads)


register = ForkingPickler.register


def dumps(obj: Any, protocol: int | None = None) -> bytes:
    return bytes(ForkingPickler.dumps(obj, protocol))


def dump(obj: Any, file: Any, protocol: int | None = None) -> None:
    """Like ``pickle.dump`` with :class:`ForkingPickler`."""
    ForkingPickler(file, protocol).dump(obj)


# -- descriptors over a Unix socket --------------------------------------------------
def sendfds(sock: socket.socket, fds: list[int]) -> None:
    """Send descriptors over a connected Unix socket (one byte of data
    carries them, as the standard library does)."""
    socket.send_fds(sock, [bytes([len(fds) % 256])], list(fds))


def recvfds(sock: socket.socket, size: int) -> list[int]:
    """Receive ``size`` descriptors sent by :func:`sendfds`."""
    msg, fds, _, _ = socket.recv_fds(sock, 1, size)
    if not msg and not fds:
        raise EOFError
    if len(fds) != size:
        for fd in fds:
            os.close(fd)
        raise RuntimeError(f"received {len(fds)} file descriptors, expected {size}")
    return list(fds)


def send_handle(conn: Any, handle: int, destination_pid: int | None = None) -> None:
    """Send a descriptor over a Connection made by a duplex ``Pipe()``."""
    with socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as s:
        sendfds(s, [handle])


def recv_handle(conn: Any) -> int:
    """Receive a descriptor sent with :func:`send_handle`."""
    with socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as s:
        return recvfds(s, 1)[0]


# -- the fd sharer ----------------------------------------------------------------------
class _Sharer:
    """This process's descriptors waiting to be fetched (see module doc)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fds: dict[str, int] = {}
        self.address: str | None = None
        self.pid = os.getpid()
        self._listener: socket.socket | None = None
        self._numbers = itertools.count(1)
        self.collecting = threading.local()  # keys registered by one pickling

    def register(self, fd: int) -> tuple[str, str]:
        with self.lock:
            if self.address is None or self.pid != os.getpid():
                self._start()
            key = secrets.token_hex(16)
            self.fds[key] = os.dup(fd)
            collected = getattr(self.collecting, "keys", None)
            if collected is not None:
                collected.append(key)
            return self.address, key  # type: ignore[return-value]

    def _start(self) -> None:
        self.pid = os.getpid()
        self.fds = {}
        path = os.path.join(context.rundir(), f"fds-{os.getpid()}-{next(self._numbers)}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(16)
        self._listener, self.address = listener, path
        threading.Thread(target=self._serve, args=(listener,), name="actors-mp-fds",
                         daemon=True).start()

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            with conn:
                try:
                    key = conn.recv(64).decode("ascii", "replace")
                    with self.lock:
                        fd = self.fds.pop(key, None)
                    if fd is None:
                        conn.sendall(b"?")
                        continue
                    try:
                        sendfds(conn, [fd])
                    finally:
                        os.close(fd)
                except OSError:
                    continue

    def forget(self, keys: list[str]) -> None:
        with self.lock:
            for key in keys:
                fd = self.fds.pop(key, None)
                if fd is not None:
                    os.close(fd)

    def stop(self) -> None:
        with self.lock:
            listener, self._listener = self._listener, None
            address, self.address = self.address, None
            fds, self.fds = self.fds, {}
        for fd in fds.values():
            os.close(fd)
        if listener is not None:
            listener.close()
            try:
                os.unlink(address)  # type: ignore[arg-type]
            except OSError:
                pass


_sharer = _Sharer()


def fetch(address: str, key: str) -> int:
    """Fetch a descriptor another process (or this one) registered."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(address)
        s.sendall(key.encode("ascii"))
        try:
            return recvfds(s, 1)[0]
        except (EOFError, RuntimeError):
            raise OSError(f"file descriptor {key[:8]}... is no longer available from its "
                          "process (fetched already, or its process has ended)") from None


class DupFd:
    """A descriptor on its way to another process (see module doc)."""

    def __init__(self, fd: int) -> None:
        self.address, self.key = _sharer.register(fd)

    def detach(self) -> int:
        """The descriptor, in the process that unpickled this (once)."""
        return fetch(self.address, self.key)


def collect() -> list[str]:
    """Start noting the descriptors this thread registers (until
    :func:`stop_collecting`): what one pickling put in the sharer."""
    _sharer.collecting.keys = []
    return _sharer.collecting.keys


def stop_collecting() -> None:
    _sharer.collecting.keys = None


def forget(keys: list[str]) -> None:
    """Close registered descriptors nobody fetched (their receiver ended)."""
    if keys:
        _sharer.forget(keys)


def _reduce_socket(s: socket.socket) -> Any:
    return _rebuild_socket, (DupFd(s.fileno()), s.family, s.type, s.proto)


def _rebuild_socket(df: DupFd, family: int, type_: int, proto: int) -> socket.socket:
    return socket.socket(family, type_, proto, fileno=df.detach())


register(socket.socket, _reduce_socket)
context.EXIT_HOOKS.append(_sharer.stop)
