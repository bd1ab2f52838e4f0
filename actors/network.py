"""Adapters from the runtime's view (addresses, senders, sources) to a
transport. ZeroMQ is a mesh: every process binds an inbox and connects a
PUSH outlet to each peer it talks to. Pipes are a star: each host has one
duplex Pipe to the node, and the node relays frames between hosts; a frame
from a host starts with its destination address (one length byte, then the
address).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from actors.errors import ConfigError
from transport import pipe as tpipe
from transport import zmq as tzmq

if TYPE_CHECKING:
    from actors.config import SystemConfig
    from transport.keys import Curve

NODE_PIPE_ADDRESS = "pipe:0"

_SLOT = re.compile(r"/s\d+\Z")  # ipc://FOLDER/s<uid>: a supervised slot


def node_network(config: SystemConfig, rundir: str) -> Any:
    """The network of a node's main program, as ``config`` says."""
    if config.transport == "pipe":
        return PipeNodeNetwork()
    if config.bind == "ipc":
        return ZmqNetwork(f"ipc://{rundir}/node", max_frame=config.max_frame)
    # CURVE keys only on tcp: an ipc node (and its hosts) never imports them
    from transport.keys import KeyMaterialError
    from transport.keys import load as load_keys

    try:
        curve = load_keys(config.keys, config.node)
    except KeyMaterialError as e:
        raise ConfigError(str(e)) from None
    return ZmqNetwork(config.bind, max_frame=config.max_frame, curve=curve)


class ZmqNetwork:
    """Inbox bound at ``bind``; an outlet per peer address, made on demand."""

    def __init__(self, bind: str, node_address: str | None = None,
                 max_frame: int | None = None, curve: Curve | None = None) -> None:
        self.context = tzmq.new_context()
        self.curve = curve
        self._beacon: tzmq.Beacon | None = None
        # tcp: CURVE on every socket, the ZAP handler up before the first bind
        self.guard = tzmq.Guard(self.context, curve) if curve is not None else None
        try:
            self.inbox = tzmq.Inbox(self.context, bind, max_frame, curve)
        except Exception:
            self._end()
            raise
        self.address = self.inbox.address
        self.node_address = node_address or self.address
        self.sources = [self.inbox]
        self.outlets: dict[str, tzmq.Outlet] = {}
        self.reader: Any = None  # the loop reading this process's sources

    new_poller = staticmethod(tzmq.Poller)

    def read(self, source: Any) -> list[bytes]:
        return source.recv_frames()

    def sender(self, address: str) -> Callable[[bytes], None]:
        # A supervised actor's slot address is taken again by its next
        # incarnation: reconnect fast there; elsewhere back off.
        outlet = tzmq.Outlet(self.context, address, backoff=not _SLOT.search(address),
                             curve=self.curve)
        self.outlets[address] = outlet
        return outlet.send

    def drop(self, address: str) -> None:
        """Forget a dead peer; what is still queued for it is discarded."""
        outlet = self.outlets.pop(address, None)
        if outlet is not None:
            outlet.close(linger=0)

    def add_alias(self, address: str) -> str:
        """Receive at a second address too (a supervised actor's own)."""
        return self.inbox.add_alias(address)

    # Holding for a restart needs nothing here: a PUSH outlet keeps what is
    # sent to a dead peer and reconnects when a new process binds there.
    def hold(self, address: str) -> None:
        pass

    def alias(self, address: str, link: Any) -> None:
        pass

    def release(self, address: str) -> list[bytes]:
        return []

    def close(self, linger: float = 1.0) -> None:
        for outlet in self.outlets.values():
            outlet.close(linger)
        self.outlets.clear()
        self.inbox.close()
        self._end()

    def beacon(self, interval: float, timeout: float) -> str:
        """Where other nodes watch this one (a :class:`transport.zmq.Beacon`
        on this inbox's host), made on first use."""
        if self._beacon is None:
            host = self.address[:self.address.rfind(":")]
            self._beacon = tzmq.Beacon(self.context, host, self.curve, interval, timeout)
        return self._beacon.address

    def heartbeat(self, address: str, interval: float, timeout: float,
                  lost: Callable[[str], None]) -> tzmq.Heartbeat:
        """Watch another node's beacon at ``address`` with heartbeats."""
        return tzmq.Heartbeat(self.context, address, self.curve, interval, timeout, lost)

    def _end(self) -> None:
        if self._beacon is not None:
            self._beacon.close()
        if self.guard is not None:
            self.guard.stop()
        self.context.term()


class PipeHostNetwork:
    """A host's side of the star: every destination goes through one link."""

    def __init__(self, conn: Connection, address: str) -> None:
        self.link = tpipe.Link(conn)
        self.address = address
        self.node_address = NODE_PIPE_ADDRESS
        self.sources = [self.link]
        self.reader: Any = None  # the loop reading this process's sources
        self._lock = threading.Lock()

    new_poller = staticmethod(tpipe.Poller)

    def read(self, source: Any) -> list[bytes]:
        return source.recv_frames()

    def sender(self, address: str) -> Callable[[bytes], None]:
        head = route_header(address)
        link, lock = self.link, self._lock

        def send(frame: bytes) -> None:
            with lock:  # outboxes of several destinations share this one pipe
                link.send(head + frame)
        return send

    def drop(self, address: str) -> None:
        pass

    def add_alias(self, address: str) -> str:
        return address  # the node's relay maps it to this link

    def close(self, linger: float = 1.0) -> None:
        self.link.close()


class PipeNodeNetwork:
    """The node's side of the star: a link per host, and the relay."""

    def __init__(self) -> None:
        self.address = NODE_PIPE_ADDRESS
        self.node_address = NODE_PIPE_ADDRESS
        self.sources: list[Any] = []
        self.links: dict[str, tpipe.QueuedLink] = {}
        # frames for the address of a supervised actor being restarted
        self.held: dict[str, list[bytes]] = {}
        self.hold_limit = 10_000
        self._hold_lock = threading.Lock()
        self.reader: Any = None  # the loop reading this process's sources
        self.undeliverable: Callable[[str, bytes], None] = lambda address, frame: None

    new_poller = staticmethod(tpipe.Poller)

    def add_link(self, address: str, conn: Connection) -> tpipe.QueuedLink:
        link = tpipe.QueuedLink(conn)
        link.address = address  # type: ignore[attr-defined]
        self.links[address] = link
        return link

    def read(self, source: Any) -> list[bytes]:
        mine = []
        for raw in source.recv_frames():
            size = raw[0]
            address = raw[1:1 + size].decode()
            frame = raw[1 + size:]
            if address == self.address:
                mine.append(frame)
                continue
            link = self.links.get(address)
            if link is not None and not link.closed:
                link.send_later(frame)
                continue
            with self._hold_lock:  # see alias()
                link = self.links.get(address)
                held = self.held.get(address)
                if link is not None and not link.closed:
                    link.send_later(frame)
                elif held is not None and len(held) < self.hold_limit:
                    held.append(frame)
                else:
                    self.undeliverable(address, frame)
        return mine

    def hold(self, address: str) -> None:
        """Keep frames relayed to ``address`` until :meth:`alias` or
        :meth:`release` (its process died and a new one will take it)."""
        self.links.pop(address, None)
        self.held.setdefault(address, [])

    def alias(self, address: str, link: tpipe.QueuedLink) -> None:
        """Relay ``address`` to ``link`` from now on, held frames first
        (any thread: the relay sees the link only once they are queued)."""
        with self._hold_lock:
            for frame in self.held.pop(address, ()):
                link.send_later(frame)
            self.links[address] = link

    def release(self, address: str) -> list[bytes]:
        """Stop holding for ``address``; return what was held."""
        return self.held.pop(address, [])

    def sender(self, address: str) -> Callable[[bytes], None]:
        def send(frame: bytes) -> None:
            link = self.links.get(address)
            if link is None or link.closed:
                raise ConnectionError(f"no link to {address}")
            # The loop thread must never block on a full pipe (it is the
            # relay that drains the other side); other threads may.
            if threading.get_ident() == self.reader.ident:
                link.send_later(frame)
            else:
                link.send(frame)
        return send

    def drop(self, address: str) -> None:
        link = self.links.pop(address, None)
        if link is not None:
            link.close()

    def close(self, linger: float = 1.0) -> None:
        for link in self.links.values():
            link.close()
        self.links.clear()


def route_header(address: str) -> bytes:
    raw = address.encode()
    if len(raw) > 255:
        raise ValueError(f"address too long: {address!r}")
    return bytes((len(raw),)) + raw
