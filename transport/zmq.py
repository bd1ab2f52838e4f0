"""ZeroMQ endpoints: one PULL inbox per process, one PUSH outlet per peer.

Messages between two processes travel over one PUSH socket into one PULL
socket, so ZeroMQ keeps them in send order. Queues are bounded: an inbox
takes at most ``HWM`` frames per connected peer (then ZeroMQ stops reading
that peer, whose sends wait), an outlet holds at most ``HWM`` frames, and
an inbox drops (and disconnects) a peer that sends a frame over its
``max_frame``. Addresses are ``ipc://PATH`` or ``tcp://HOST:PORT``.

Given a :class:`transport.keys.Curve`, every socket is CurveZMQ: an inbox is
a CURVE server whose ZAP handler (:class:`Guard`, pyzmq's
``ThreadAuthenticator``) admits only the public keys of the keys folder,
an outlet a CURVE client. A :class:`Heartbeat` watches a peer's inbox
with ZMTP heartbeats and reports when the connection is lost; what it
connects to is the peer's :class:`Beacon`, which carries no data and pings
back, so that a peer that was frozen (SIGSTOP) finds its links cut when it
wakes. (Heartbeats go on links of their own: on a data link, a peer whose
queue is full stops reading, PONGs too, and libzmq's TTL is not honoured
when the same process has another connection to that socket.)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq
import zmq.backend

from transport.codec import ONE_HEADER

if TYPE_CHECKING:
    from transport.keys import Curve

# zmq.auth (with asyncio and glob) and zmq.utils.monitor are imported where
# they are used, on tcp only: every ipc host process starts without them.

__all__ = ["Beacon", "Guard", "Heartbeat", "Inbox", "Outlet", "Poller", "new_context"]

# Plain ints: pyzmq's enum flags cost microseconds per operation on hot paths.
EVENTS = int(zmq.EVENTS)
POLLIN = int(zmq.POLLIN)
NOBLOCK = int(zmq.NOBLOCK)


# pyzmq's Cython send, without the Python layer above it (routing ids and
# groups, which PUSH sockets never use): 0.44 against 0.72 us a send
_send = zmq.backend.Socket.send

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

    def __init__(self, context: zmq.Context, bind: str, max_frame: int | None = None,
                 curve: Curve | None = None) -> None:
        self.socket = context.socket(zmq.PULL)
        if curve is not None:
            curve.server(self.socket)
        self.socket.setsockopt(zmq.RCVHWM, HWM)
        self.socket.setsockopt(zmq.LINGER, 0)
        if max_frame is not None:
            self.socket.setsockopt(zmq.MAXMSGSIZE, max_frame)
        self.aliases: list[str] = []
        self._inodes: dict[str, int] = {}  # ipc socket files made here
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
        path = address[len("ipc://"):] if address.startswith("ipc://") else None
        if path is not None and os.path.exists(path):
            os.unlink(path)  # a dead owner's leftover
        self.socket.bind(address)
        if path is not None:
            self._inodes[path] = os.stat(path).st_ino

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
        """Up to ``limit`` frames that are already waiting (never blocks).
        Called when a poll found the socket readable: the first frame is
        read without asking. Only a frame of several messages (a batch: a
        burst is under way) makes it ask for more: a readiness query costs
        a system call or two in libzmq and an enum in pyzmq (~2.4 us), and
        after a lone message (an ask, a reply) the next poll asks anyway.
        Readiness is asked rather than reading until zmq.Again (an
        exception costs ~3.5 us)."""
        socket = self.socket
        frames: list[bytes] = []
        try:
            frame = socket.recv(NOBLOCK)
            frames.append(frame)
            if frame[:1] != ONE_HEADER:
                while len(frames) < limit and socket.getsockopt(EVENTS) & POLLIN:
                    frames.append(socket.recv(NOBLOCK))
        except zmq.Again:
            pass
        return frames

    def close(self) -> None:
        self.socket.close(0)
        for path, inode in self._inodes.items():
            try:  # only the file this inbox made: a later process may have bound the path
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
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

    def __init__(self, context: zmq.Context, address: str, backoff: bool = True,
                 curve: Curve | None = None) -> None:
        self.address = address
        self.socket = context.socket(zmq.PUSH)
        if curve is not None:
            curve.client(self.socket)
        self.socket.setsockopt(zmq.SNDHWM, HWM)
        self.socket.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
        if backoff:
            self.socket.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_MAX_MS)
        self.socket.setsockopt(zmq.LINGER, 2000)  # flush on orderly close
        self.socket.connect(address)

    def send(self, frame: bytes) -> None:
        _send(self.socket, frame, 0, len(frame) < 65536, False)

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


class Guard:
    """The ZAP handler of a context (pyzmq's ``ThreadAuthenticator``): a
    CURVE client is admitted only if its public key is in ``curve.allowed``.
    Start it before binding: a CURVE server without a ZAP handler admits
    any key."""

    def __init__(self, context: zmq.Context, curve: Curve) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        self.auth = ThreadAuthenticator(context, log=logging.getLogger("actors.auth"))
        self.auth.start()
        self.auth.configure_curve(domain="*", location=curve.allowed)

    def stop(self) -> None:
        self.auth.stop()


class Beacon:
    """A socket that carries no data, bound at ``tcp://HOST`` (a free port):
    other nodes' :class:`Heartbeat` connect to it. It pings them in turn
    and drops a connection silent for ``timeout`` s."""

    def __init__(self, context: zmq.Context, host: str, curve: Curve | None,
                 interval: float, timeout: float) -> None:
        self.socket = context.socket(zmq.PULL)
        if curve is not None:
            curve.server(self.socket)
        self.socket.setsockopt(zmq.LINGER, 0)
        # never read: a frame at most, and a small one (MAXMSGSIZE also
        # bounds the CURVE handshake's commands: not below a few hundred)
        self.socket.setsockopt(zmq.RCVHWM, 1)
        self.socket.setsockopt(zmq.MAXMSGSIZE, 4096)
        _heartbeats(self.socket, interval, timeout)
        try:
            self.address = f"{host}:{self.socket.bind_to_random_port(host)}"
        except Exception:
            self.socket.close(0)
            raise

    def close(self) -> None:
        self.socket.close(0)


def _heartbeats(socket: zmq.Socket, interval: float, timeout: float) -> None:
    socket.setsockopt(zmq.HEARTBEAT_IVL, max(1, int(interval * 1000)))
    socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, max(1, int(timeout * 1000)))
    socket.setsockopt(zmq.HEARTBEAT_TTL, max(100, int(timeout * 1000)))


_LINK_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


class Heartbeat:
    """Watches the beacon at ``address`` over its own CURVE connection with
    ZMTP heartbeats (a PING every ``interval`` s; no answer for ``timeout``
    s closes the connection). ``lost(address)`` is called once, from this
    watcher's thread, when the connection drops after its handshake, or
    when no handshake succeeds within ``timeout`` s of the start."""

    def __init__(self, context: zmq.Context, address: str, curve: Curve | None,
                 interval: float, timeout: float, lost: Callable[[str], None]) -> None:
        self.address = address
        self._lost = lost
        self._timeout = timeout
        self._closing = threading.Event()
        self.connected = threading.Event()  # the handshake succeeded
        socket = context.socket(zmq.PUSH)
        if curve is not None:
            curve.client(socket)
        socket.setsockopt(zmq.LINGER, 0)
        _heartbeats(socket, interval, timeout)
        socket.setsockopt(zmq.RECONNECT_IVL, 100)
        self._monitor = socket.get_monitor_socket(_LINK_EVENTS)
        socket.connect(address)
        self._socket = socket
        self.thread = threading.Thread(target=self._watch, name=f"actors-heartbeat {address}",
                                       daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        monitor, lost = self._monitor, False
        last, cpu = time.monotonic(), time.process_time()
        deadline = last + self._timeout
        shaken = False
        try:
            while not self._closing.is_set():
                ready = monitor.poll(100)
                now, used = time.monotonic(), time.process_time()
                gap, last, busy, cpu = now - last, now, used - cpu, used
                if gap > self._timeout and busy < gap / 10:
                    # the whole process was frozen (SIGSTOP, a suspended VM:
                    # no thread used the CPU meanwhile, so this one was not
                    # just kept from the GIL) longer than the timeout: the
                    # peer has lost it
                    lost = True
                    break
                if not ready:
                    if not shaken and now > deadline:
                        lost = True
                        break
                    continue
                event = recv_monitor_message(monitor)["event"]
                if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    shaken = True
                    self.connected.set()
                elif event == zmq.EVENT_DISCONNECTED and shaken:
                    lost = True
                    break
        finally:
            self._socket.disable_monitor()
            monitor.close(0)
            self._socket.close(0)
        if lost and not self._closing.is_set():
            self._lost(self.address)

    def close(self) -> None:
        self._closing.set()
        if threading.current_thread() is not self.thread:
            self.thread.join(2.0)
