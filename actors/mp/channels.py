"""Pipe and Connection: a direct link between two processes.

A ``Pipe()`` is a pair of connected OS descriptors (a Unix socket pair, or
an OS pipe when it is one-way), made in the process that calls it; its two
ends talk directly, without any actor between them. An end sent to another
process (a Process argument, a message through another pipe, a queue item)
travels as a descriptor (``actors.mp.reduction``), so the two processes
holding the ends then exchange bytes with no third process involved: a
round trip is two system calls each way, as with the standard library.

What travels is the standard library's frame: a 4-byte big-endian length
(or -1 and an 8-byte length past 2 GiB) and the bytes; ``send`` pickles
with ``actors.mp.reduction.ForkingPickler`` (so a Connection or a socket
can be sent through a Connection). So an end speaks the same protocol as
a ``multiprocessing.connection.Connection``, and the one returned by
``Listener.accept`` or ``Client`` (``actors.mp.listeners``) is this class.

An end is closed for its peer once every process that held it closed it
or ended: the operating system's rule for descriptors.
"""

from __future__ import annotations

import os
import pickle
import selectors
import socket
import struct
import time
from typing import Any

from actors.mp import reduction

__all__ = ["Connection", "Pipe", "rebuild_connection"]

BIG = 0x7FFFFFFF       # longer frames: a -1 header, then an 8-byte length
SPLIT = 16384          # longer payloads are written apart from their header
_poll_selector = getattr(selectors, "PollSelector", selectors.SelectSelector)


class Connection:
    """One end of a Pipe, or of a Listener/Client socket."""

    _handle: int | None

    def __init__(self, handle: int, readable: bool = True, writable: bool = True) -> None:
        handle = handle.__index__()
        if handle < 0:
            raise ValueError("invalid handle")
        if not readable and not writable:
            raise ValueError("at least one of `readable` and `writable` must be True")
        self._handle = handle
        self._readable = readable
        self._writable = writable

    # -- state ------------------------------------------------------------------------
    def _check_closed(self) -> None:
        if self._handle is None:
            raise OSError("handle is closed")

    def _check_readable(self) -> None:
        if not self._readable:
            raise OSError("connection is write-only")

    def _check_writable(self) -> None:
        if not self._writable:
            raise OSError("connection is read-only")

    @property
    def closed(self) -> bool:
        return self._handle is None

    @property
    def readable(self) -> bool:
        return self._readable

    @property
    def writable(self) -> bool:
        return self._writable

    def fileno(self) -> int:
        self._check_closed()
        return self._handle  # type: ignore[return-value]

    def close(self) -> None:
        if self._handle is not None:
            try:
                os.close(self._handle)
            finally:
                self._handle = None

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None:
            self.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- sending ------------------------------------------------------------------------
    def send_bytes(self, buf: Any, offset: int = 0, size: int | None = None) -> None:
        """Send bytes from a bytes-like object (a slice of it with offset/size)."""
        self._check_closed()
        self._check_writable()
        view = memoryview(buf)
        if view.itemsize > 1:
            view = view.cast("B")
        n = len(view)
        if offset < 0:
            raise ValueError("offset is negative")
        if n < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = n - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > n:
            raise ValueError("buffer length < offset + size")
        self._send_frame(view[offset:offset + size])

    def send(self, obj: Any) -> None:
        """Send a picklable object."""
        self._check_closed()
        self._check_writable()
        self._send_frame(reduction.ForkingPickler.dumps(obj))

    def _send_frame(self, buf: Any) -> None:
        n = len(buf)
        if n > BIG:
            self._write(struct.pack("!i", -1) + struct.pack("!Q", n))
            self._write(buf)
        elif n > SPLIT:
            self._write(struct.pack("!i", n))
            self._write(buf)
        else:
            self._write(struct.pack("!i", n) + bytes(buf))

    def _write(self, buf: Any) -> None:
        handle = self._handle
        view = memoryview(buf)
        while view:
            written = os.write(handle, view)  # type: ignore[arg-type]
            view = view[written:]

    # -- receiving ----------------------------------------------------------------------
    def _read(self, size: int) -> bytearray:
        handle = self._handle
        data = bytearray()
        while len(data) < size:
            chunk = os.read(handle, size - len(data))  # type: ignore[arg-type]
            if not chunk:
                if data:
                    raise OSError("got end of file during message")
                raise EOFError
            data += chunk
        return data

    def _recv_frame(self, maxlength: int | None = None) -> bytearray | None:
        size, = struct.unpack("!i", self._read(4))
        if size == -1:
            size, = struct.unpack("!Q", self._read(8))
        if maxlength is not None and size > maxlength:
            return None
        return self._read(size)

    def recv_bytes(self, maxlength: int | None = None) -> bytes:
        """Receive the bytes of one ``send_bytes`` (OSError past ``maxlength``)."""
        self._check_closed()
        self._check_readable()
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        data = self._recv_frame(maxlength)
        if data is None:
            self.close()
            raise OSError("bad message length")
        return bytes(data)

    def recv_bytes_into(self, buf: Any, offset: int = 0) -> int:
        """Receive one message into ``buf`` at ``offset``; its size
        (``BufferTooShort`` carrying the message if it does not fit)."""
        self._check_closed()
        self._check_readable()
        with memoryview(buf) as m:
            byte_size = m.nbytes
            if offset < 0:
                raise ValueError("negative offset")
            if offset > byte_size:
                raise ValueError("offset too large")
            data = self._recv_frame()
            size = len(data)  # type: ignore[arg-type]
            if size > byte_size - offset:
                from multiprocessing import BufferTooShort
                raise BufferTooShort(bytes(data))  # type: ignore[arg-type]
            with m.cast("B") as raw:
                raw[offset:offset + size] = data  # type: ignore[index]
            return size

    def recv(self) -> Any:
        """Receive one object sent with ``send``."""
        self._check_closed()
        self._check_readable()
        return pickle.loads(self._recv_frame())  # type: ignore[arg-type]

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Whether there is something to receive (or end of file), waiting
        up to ``timeout`` seconds (None: until there is)."""
        self._check_closed()
        self._check_readable()
        return bool(wait_readable(self._handle, timeout))  # type: ignore[arg-type]

    # -- travelling -----------------------------------------------------------------------
    def __reduce__(self) -> Any:
        self._check_closed()
        return rebuild_connection, (reduction.DupFd(self._handle),  # type: ignore[arg-type]
                                    self._readable, self._writable)

    def __repr__(self) -> str:
        state = "closed" if self._handle is None else f"fd={self._handle}"
        mode = ("r" if self._readable else "") + ("w" if self._writable else "")
        return f"<actors.mp.connection.Connection {state} {mode}>"


def wait_readable(fd: int, timeout: float | None) -> bool:
    """Whether ``fd`` is readable (or at end of file) within ``timeout``."""
    with _poll_selector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            if selector.select(None if deadline is None else
                               max(0.0, deadline - time.monotonic())):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False


def rebuild_connection(df: reduction.DupFd, readable: bool, writable: bool) -> Connection:
    return Connection(df.detach(), readable, writable)


def Pipe(duplex: bool = True) -> tuple[Connection, Connection]:  # noqa: N802 (stdlib name)
    """Two connected ends: both ways (a Unix socket pair), or, with
    ``duplex=False``, (reader, writer) over an OS pipe."""
    if duplex:
        s1, s2 = socket.socketpair()
        s1.setblocking(True)
        s2.setblocking(True)
        return Connection(s1.detach()), Connection(s2.detach())
    r, w = os.pipe()
    return Connection(r, writable=False), Connection(w, readable=False)
