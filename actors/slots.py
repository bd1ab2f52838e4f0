"""Supervised slots: an address that outlives the processes behind it.

A supervised actor's ref names its *slot address* (``ipc://.../s<uid>``,
``pipe:s<uid>``), not its process's. When the process behind a slot dies:

1. **hold**: the node and every host hold what is sent to the address
   (``Outboxes.hold``; over pipes the node's relay holds the frames), and
   asks pending on the actor fail at once;
2. its supervisor decides;
3. **open**: a restart starts a new incarnation that binds the same
   address, and every holder *resumes* into it, held messages first, in
   send order;
4. or **release**: a slot given up; held messages are dead letters, the
   address is gone for good everywhere.

This module is the one place that decides those steps; the mechanics are
``actors.outbox`` (hosts and node) and ``actors.network`` (the pipe relay).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.config import SystemConfig, tcp_host
from actors.launcher import HostProcess
from actors.registry import HELD, ActorRecord, Registry
from actors.runtime import Runtime

__all__ = ["Slots"]

log = logging.getLogger("actors")

Broadcast = Callable[..., None]


class Slots:
    """The node's supervised slots (see module doc).

    Args:
        config: the system's settings (where slot addresses live).
        rundir: the node's private folder.
        runtime: the node's runtime.
        registry: the node's actors.
        broadcast: a service tell to every live host but ``skip``.
    """

    def __init__(self, config: SystemConfig, rundir: str, runtime: Runtime,
                 registry: Registry, broadcast: Broadcast) -> None:
        self.config = config
        self.rundir = rundir
        self.runtime = runtime
        self.network = runtime.network
        self.registry = registry
        self._broadcast = broadcast
        self.held: dict[str, int] = {}  # held slot address -> uid

    def address_for(self, uid: int) -> str:
        """The address a supervised actor keeps across its restarts."""
        if self.config.transport == "pipe":
            return f"pipe:s{uid}"
        if self.config.bind == "ipc":
            return f"ipc://{self.rundir}/s{uid}"
        return tcp_host(self.config.bind)

    # -- a first start ------------------------------------------------------------------
    def before_first_start(self, record: ActorRecord, host: HostProcess, alias: str) -> None:
        """Pipe relay: what is sent to a new supervised actor's address
        before its start is acknowledged waits for it (it may be its own
        tell from on_start)."""
        if host.link is not None and not record.incarnation:
            self.network.hold(alias)

    def first_start_failed(self, record: ActorRecord, host: HostProcess, alias: str) -> None:
        if host.link is not None and not record.incarnation:
            for frame in self.network.release(alias):
                self.undeliverable(alias, frame)

    # -- hold, open, release ----------------------------------------------------------
    def hold(self, record: ActorRecord, reason: str) -> None:
        """The incarnation of ``record`` ended: hold what is sent to it."""
        with record.lock:
            if record.state == HELD:
                return
            record.state = HELD
            record.settled.clear()  # until its process is gone and that is handled
        address = record.ref.address  # type: ignore[union-attr]
        self.held[address] = record.uid
        self.network.hold(address)
        self.runtime.hold(address, [record.uid], reason)
        self._broadcast(P.Hold(address, [record.uid], reason), skip=record.host)

    def open(self, record: ActorRecord, host: HostProcess, address: str,
             restarting: bool) -> None:
        """A supervised actor answers at ``address`` in ``host``: route it
        there and, after a restart, send what every process held for it."""
        host.aliases.append(address)
        outboxes = self.runtime.outboxes
        if address in outboxes.gone:  # a tcp port of a dead process, reused
            outboxes.revive(address)
        self.network.alias(address, host.link)
        if restarting or address in self.held:
            self.held.pop(address, None)
            outboxes.resume(address)
            self._broadcast(P.Resume(address))

    def release(self, record: ActorRecord) -> None:
        """``record`` is dead for good: its held messages are dead letters
        and its address is gone everywhere."""
        if record.ref is None or self.held.get(record.ref.address) != record.uid:
            return
        address = record.ref.address
        del self.held[address]
        for frame in self.network.release(address):
            self.undeliverable(address, frame)
        self.runtime.outboxes.release(address)
        self._broadcast(P.Gone([address]))

    def unblock(self, record: ActorRecord) -> None:
        """Before a supervisor stops ``record`` to restart it with its group:
        its asks waiting on a held sibling fail now. (The sibling's next
        incarnation starts after this stop: waiting for it would hold the
        stop until its shutdown time ran out.)"""
        host = record.host
        parent = self.registry.get(record.parent) if record.parent is not None else None
        if host is None or parent is None:
            return
        for uid in parent.children:
            sibling = self.registry.get(uid)
            if sibling is not None and sibling.state == HELD and sibling.ref is not None:
                self.runtime.tell_service(host.address, P.Hold(
                    sibling.ref.address, [uid], f"{sibling.name} is being restarted with its group"))

    def process_gone(self, host: HostProcess, reason: str) -> None:
        """``host`` is gone: asks to it fail; its addresses are gone for
        good, except slots held for a restart (asks to those wait)."""
        runtime = self.runtime
        gone = []
        for address in (host.address, *host.aliases):
            kept = self.held.get(address)
            if kept is not None:
                # asks sent to the held actor since it died wait for its
                # next incarnation; any other ask to this process fails
                runtime.calls.fail_where(
                    lambda t, a=address, k=kept: t.address == a and t.uid != k, reason)
            else:
                runtime.fail_address(address, reason)
                runtime.outboxes.forget(address)
                gone.append(address)
        if gone:
            self._broadcast(P.Gone(gone))

    def undeliverable(self, address: str, frame: bytes) -> None:
        """Pipe relay: a frame for a process that is gone; its asks fail."""
        runtime = self.runtime
        try:
            envelopes = runtime.codec.decode_frame(frame)
        except Exception:
            return
        for raw in envelopes:
            try:
                envelope: Any = P.decode_envelope(raw)
            except P.ProtocolError:
                continue
            if not isinstance(envelope, P.Answer):
                runtime.refuse(envelope)
