"""The control endpoint of a running service, and its client.

Transport: a ZeroMQ ROUTER socket bound at ``ipc://RUN_DIR/NAME/control``
(inside the run folder, mode 0700: same user only), served by one thread of
the ``actors run`` process. A client connects a REQ socket, sends one
request and reads one reply. Requests larger than :data:`MAX_REQUEST`
bytes are refused by ZeroMQ itself (it drops the connection).

Messages are msgpack maps of plain values (no ext types):

    request  {"v": 1, "op": OP, "timeout": seconds (optional)}
    reply    {"v": 1, "ok": true, ...data}  or  {"v": 1, "ok": false, "error": TEXT}

with OP one of :data:`OPS`. A request that cannot be decoded or checked
gets an error reply naming what is wrong (or, without a reply address, is
dropped and logged); it never stops the service. The server runs queries
(``status``, ``tree``, ``stats``, ``nodes``) on its thread; ``reload`` and ``stop`` are
handed to the service's main thread, which answers when done, from any
thread, through the ``respond`` callable it was given.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import zmq

from transport.polling import WakePipe

__all__ = ["ControlServer", "NoAnswer", "OPS", "PROTOCOL", "ProtocolError", "Request",
           "call"]

log = logging.getLogger("actors.service")

PROTOCOL = 1
OPS = ("status", "tree", "stats", "nodes", "reload", "stop")
MAX_REQUEST = 64 * 1024     # bytes; a request is a few dozen
MAX_REPLY = 64 * 1024 * 1024

Respond = Callable[[dict[str, Any]], None]


class ProtocolError(ValueError):
    """A control message that does not follow the protocol."""


class NoAnswer(Exception):
    """The control endpoint did not answer in time."""


@dataclasses.dataclass(frozen=True)
class Request:
    """One control request.

    Attributes:
        op: one of :data:`OPS`.
        timeout: for ``stats``, seconds each actor process has to answer.
    """

    op: str
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ProtocolError(f"op must be one of {', '.join(OPS)}, got {self.op!r}")
        t = self.timeout
        if t is not None and not (isinstance(t, (int, float)) and not isinstance(t, bool)
                                  and 0 <= t <= 60 and math.isfinite(t)):
            raise ProtocolError(f"timeout must be a number of seconds in [0, 60], got {t!r}")

    def encode(self) -> bytes:
        data: dict[str, Any] = {"v": PROTOCOL, "op": self.op}
        if self.timeout is not None:
            data["timeout"] = self.timeout
        return msgpack.packb(data)

    @classmethod
    def decode(cls, frame: bytes) -> Request:
        """Check and decode one request frame.

        Raises:
            ProtocolError: naming the field and the bad value.
        """
        try:
            data = msgpack.unpackb(frame, raw=False, strict_map_key=True)
        except Exception as e:  # noqa: BLE001 - any decoding failure is the sender's
            raise ProtocolError(f"not a msgpack message: {type(e).__name__}: {e}") from None
        if not isinstance(data, dict):
            raise ProtocolError(f"a request is a map, got a {type(data).__name__}")
        if data.get("v") != PROTOCOL:
            raise ProtocolError(f"v (protocol version) must be {PROTOCOL}, got {data.get('v')!r}")
        unknown = sorted(set(data) - {"v", "op", "timeout"})
        if unknown:
            raise ProtocolError(f"unknown fields {unknown}")
        return cls(op=data.get("op"), timeout=data.get("timeout"))  # type: ignore[arg-type]


def reply_frame(reply: dict[str, Any]) -> bytes:
    """Encode a reply (``v`` added)."""
    return msgpack.packb({"v": PROTOCOL, **reply})


class ControlServer:
    """Serves control requests at ``endpoint`` on a thread of its own (see
    module doc); ``handle(request, respond)`` must call ``respond`` once."""

    def __init__(self, endpoint: str, handle: Callable[[Request, Respond], None]) -> None:
        self.endpoint = endpoint
        self._handle = handle
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST)
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError:
            self._socket.close()
            self._context.term()
            raise
        path = endpoint.removeprefix("ipc://")
        if os.path.exists(path):
            os.chmod(path, 0o600)
        self._outbox: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self._waker = WakePipe()
        self._closing = False
        self.served = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._run, name="actors-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop serving (replies still queued are sent first) and close."""
        self._closing = True
        self._waker.wake()
        if self._thread.is_alive():
            self._thread.join(5.0)
        if not self._thread.is_alive():
            self._socket.close()
            self._context.term()
        self._waker.close()

    def _responder(self, identity: bytes) -> Respond:
        done = threading.Lock()

        def respond(reply: dict[str, Any]) -> None:
            if not done.acquire(blocking=False):
                return  # answered already
            try:
                frame = reply_frame(reply)
            except Exception as e:  # noqa: BLE001 - a reply that cannot travel says why
                frame = reply_frame({"ok": False, "error": f"the reply could not be encoded: {e}"})
            self._outbox.append((identity, frame))
            self._waker.wake()
        return respond

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._waker.fd, zmq.POLLIN)
        while True:
            events = dict(poller.poll())
            if self._waker.fd in events:
                self._waker.drain()  # (queued replies are sent next)
            self._send_replies()
            if self._closing:
                return
            if self._socket in events:
                self._receive()

    def _send_replies(self) -> None:
        while self._outbox:
            identity, frame = self._outbox.popleft()
            try:
                self._socket.send_multipart([identity, b"", frame], zmq.NOBLOCK)
            except zmq.ZMQError as e:
                log.info("control: could not send a reply: %s", e)

    def _receive(self) -> None:
        while True:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 3 or frames[1] != b"":
                self.refused += 1
                log.warning("control: dropped a message of %d frames that is not a request",
                            len(frames))
                continue
            respond = self._responder(frames[0])
            try:
                if len(frames) != 3:
                    raise ProtocolError(f"a request is one frame, got {len(frames) - 2}")
                request = Request.decode(frames[2])
            except ProtocolError as e:
                self.refused += 1
                log.warning("control: refused a malformed request: %s", e)
                respond({"ok": False, "error": f"malformed request: {e}"})
                continue
            self.served += 1
            try:
                self._handle(request, respond)
            except Exception as e:  # noqa: BLE001 - a failed request must not stop the server
                log.exception("control: %s request failed", request.op)
                respond({"ok": False, "error": f"{request.op} failed: {type(e).__name__}: {e}"})


def call(endpoint: str, request: Request, timeout: float,
         alive: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Send ``request`` to the control endpoint and return the reply map.
    ``alive()``, asked every half second while waiting, says whether the
    service still runs (a long wait ends as soon as it does not).

    Raises:
        NoAnswer: no reply within ``timeout`` seconds, or the service ended.
        ProtocolError: the reply is not a reply of this protocol.
    """
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY)
        sock.connect(endpoint)
        sock.send(request.encode())
        deadline = time.monotonic() + timeout
        while not sock.poll(max(1, int(min(0.5, deadline - time.monotonic()) * 1000))):
            if alive is not None and not alive():
                raise NoAnswer("the service ended without answering")
            if time.monotonic() >= deadline:
                raise NoAnswer(f"no answer from {endpoint} within {timeout:g} s")
        frame = sock.recv()
    finally:
        sock.close()
        context.term()
    try:
        reply = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as e:  # noqa: BLE001
        raise ProtocolError(f"the reply is not msgpack: {e}") from None
    if not isinstance(reply, dict) or reply.get("v") != PROTOCOL or "ok" not in reply:
        raise ProtocolError(f"not a reply of control protocol {PROTOCOL}: {reply!r:.200}")
    return reply
