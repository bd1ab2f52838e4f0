"""ZeroMQ endpoints: one PULL inbox per process, one PUSH outlet per peer.

Messages between two processes travel over one PUSH socket into one PULL
socket, so ZeroMQ keeps them in send order. Queues are bounded: an inbox
takes at most ``HWM`` frames per connected peer (then ZeroMQ stops reading
that peer, whose sends wait), an outlet holds at most ``HWM`` frames, and
an inbox drops (and disconnects) a peer that sends a frame over its
``max_frame``. Addresses are ``ipc://PATH`` or ``tcp://HOST:PORT``.
"""

from __future__ import annotations

import os
from typing import Any

import zmq

__all__ = ["Inbox", "Outlet", "Poller", "new_context"]

# Plain ints: pyzmq's enum flags cost microseconds per operation on hot paths.
EVENTS = int(zmq.EVENTS)
POLLIN = int(zmq.POLLIN)
NOBLOCK = int(zmq.NOBLOCK)


HWM = 10_000  # frames queued per peer, each way


def new_context() -> zmq.Context:
    """A fresh context (never the global instance: each runtime owns its own)."""
    return zmq.Context(io_threads=1)


class Inbox:
    """The receiving socket of one process, bound at ``bind``.

    ``bind`` is ``ipc://PATH`` or ``tcp://HOST`` / ``tcp://HOST:PORT`` (a free
    port is picked when none is given); ``address`` is where peers connect.
    ``max_frame``: the largest frame accepted, in bytes (None: no limit).
    """

    def __init__(self, context: zmq.Context, bind: str, max_frame: int | None = None) -> None:
        self.socket = context.socket(zmq.PULL)
        self.socket.setsockopt(zmq.RCVHWM, HWM)
        self.socket.setsockopt(zmq.LINGER, 0)
        if max_frame is not None:
            self.socket.setsockopt(zmq.MAXMSGSIZE, max_frame)
        self.aliases: list[str] = []
        try:
            if bind.startswith("tcp://") and bind.count(":") == 1:
                port = self.socket.bind_to_random_port(bind)
                self.address = f"{bind}:{port}"
            else:
                self._bind(bind)
                self.address = bind
        except Exception:
            self.socket.close(0)
            raise

    def _bind(self, address: str) -> None:
        if address.startswith("ipc://"):
            path = address[len("ipc://"):]
            if os.path.exists(path):
                os.unlink(path)  # a dead owner's leftover
        self.socket.bind(address)

    def add_alias(self, address: str) -> str:
        """Also receive at ``address`` and return it (``tcp://HOST`` gets a
        free port). Given the address of a process that has died, its
        peers' outlets reconnect here and deliver what they queued for it."""
        if address.startswith("tcp://") and address.count(":") == 1:
            port = self.socket.bind_to_random_port(address)
            address = f"{address}:{port}"
        else:
            self._bind(address)
        self.aliases.append(address)
        return address

    @property
    def pollable(self) -> Any:
        return self.socket

    def recv_frames(self, limit: int = 256) -> list[bytes]:
        """Up to ``limit`` frames that are already waiting (never blocks)."""
        socket = self.socket
        frames = []
        try:
            # Ask for readiness instead of reading until zmq.Again: raising
            # and catching an exception per drain costs more than the read.
            while len(frames) < limit and socket.getsockopt(EVENTS) & POLLIN:
                frames.append(socket.recv(NOBLOCK))
        except zmq.Again:
            pass
        return frames

    def close(self) -> None:
        self.socket.close(0)
        for address in (self.address, *self.aliases):
            if address.startswith("ipc://"):
                try:
                    os.unlink(address[len("ipc://"):])
                except OSError:
                    pass


# When a peer dies, its outlets keep what is sent to it and retry the
# connection every 2-4 ms (ZeroMQ adds up to one interval of jitter): a new
# process binding the same address (a restarted actor) gets it all within
# milliseconds. An outlet made with ``backoff`` retries less and less often,
# up to every RECONNECT_MAX_MS, for a peer whose address no new process
# takes. Outlets to peers gone for good are closed by the runtime.
RECONNECT_MS = 2
RECONNECT_MAX_MS = 100


class Outlet:
    """A sending socket connected to one peer's inbox."""

    def __init__(self, context: zmq.Context, address: str, backoff: bool = True) -> None:
        self.address = address
        self.socket = context.socket(zmq.PUSH)
        self.socket.setsockopt(zmq.SNDHWM, HWM)
        self.socket.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
        if backoff:
            self.socket.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_MAX_MS)
        self.socket.setsockopt(zmq.LINGER, 2000)  # flush on orderly close
        self.socket.connect(address)

    def send(self, frame: bytes) -> None:
        self.socket.send(frame, copy=len(frame) < 65536)

    def close(self, linger: float | None = None) -> None:
        self.socket.close(None if linger is None else int(linger * 1000))


class Poller:
    """Waits on zmq sockets and plain file descriptors together."""

    def __init__(self) -> None:
        self._items: list[tuple[Any, int]] = []

    def register(self, obj: Any) -> None:
        self.unregister(obj)
        self._items.append((obj, POLLIN))

    def unregister(self, obj: Any) -> None:
        self._items = [item for item in self._items if item[0] is not obj and item[0] != obj]

    def poll(self, timeout: float | None) -> list[Any]:
        ms = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
        return [obj for obj, _ in zmq.zmq_poll(self._items, ms)]
