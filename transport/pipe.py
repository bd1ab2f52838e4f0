"""multiprocessing Pipe endpoints with the same shape as ``transport.zmq``.

A Pipe joins exactly two processes, so the pipe transport is a star: each
child has one duplex :class:`Link` to its parent, which relays frames
between children. ``Link.send`` may block while the peer's pipe buffer is
full; a relay must therefore never block its reading thread on a send (see
:class:`QueuedLink`).
"""

from __future__ import annotations

import collections
import select
import threading
from multiprocessing.connection import Connection
from typing import Any

from transport.codec import MANY_HEADER

__all__ = ["Link", "Poller", "QueuedLink"]


class Link:
    """One end of a duplex Pipe: send frames, receive frames."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.closed = False

    @property
    def pollable(self) -> Any:
        return self.conn.fileno()

    def send(self, frame: bytes) -> None:
        self.conn.send_bytes(frame)

    def recv_frames(self, limit: int = 256) -> list[bytes]:
        """The next frame (call when the pipe is readable); raises EOFError
        once the peer is gone. One frame per call: asking the pipe whether
        more is waiting costs more than polling again."""
        return [self.conn.recv_bytes()]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.conn.close()


class QueuedLink(Link):
    """A Link whose sends from a relay thread go through a writer thread.

    ``send`` writes directly when nothing is queued (callers may block on a
    full pipe; that is back-pressure on them alone); ``send_later`` never
    blocks and keeps order with ``send``.
    """

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self._lock = threading.Lock()
        self._queue: collections.deque[bytes] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._writer: threading.Thread | None = None

    def send(self, frame: bytes) -> None:
        with self._lock:
            if not self._queue:
                if not self.closed:
                    self.conn.send_bytes(frame)
                return
            self._queue.append(frame)
        with self._ready:
            self._ready.notify()

    def send_later(self, frame: bytes) -> None:
        self._queue.append(frame)
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                            name="actors-pipe-writer")
            self._writer.start()
        with self._ready:
            self._ready.notify()

    def _write_loop(self) -> None:
        while not self.closed:
            with self._ready:
                if not self._queue:
                    self._ready.wait(0.5)
            with self._lock:
                if not self._queue:
                    continue
                parts = []
                while self._queue:
                    parts.append(self._queue.popleft())
                try:
                    # Frames merge: one header (of a frame of several
                    # messages), then every frame's messages.
                    self.conn.send_bytes(parts[0] if len(parts) == 1 else
                                         MANY_HEADER + b"".join(p[1:] for p in parts))
                except OSError:
                    return

    def close(self) -> None:
        super().close()
        with self._ready:
            self._ready.notify()


class Poller:
    """Waits on file descriptors (or objects with ``fileno()``)."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self._objs: dict[int, Any] = {}

    def register(self, obj: Any) -> None:
        fd = obj if isinstance(obj, int) else obj.fileno()
        self._objs[fd] = obj
        self._poll.register(fd, select.POLLIN)

    def unregister(self, obj: Any) -> None:
        fd = obj if isinstance(obj, int) else obj.fileno()
        if self._objs.pop(fd, None) is not None:
            self._poll.unregister(fd)

    def poll(self, timeout: float | None) -> list[Any]:
        ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        return [self._objs[fd] for fd, _ in self._poll.poll(ms) if fd in self._objs]
