"""The other nodes this node has met, and what crosses between them.

Two nodes meet when one connects to the other's address
(``system.connect("tcp://HOST:PORT")``, as Erlang's
``net_kernel:connect_node``): it asks the other's service a ``Meet`` with
its name, incarnation and address; the other answers with its own, and
both keep the other as a peer. Only nodes bound to tcp:// with keys meet,
so every frame between them passed CurveZMQ authentication; the
operations they exchange (``actors.protocol.peering``) carry no token.

What being peers gives:

- **Refs cross.** A ref names its node (``ref.node``: name and
  incarnation) and its process's address; tell/ask/proxy go straight to
  that process. A node admits the addresses on the hosts of its peers
  (``admits``), so its processes open outlets there.
- **Names.** ``lookup(name)`` asks every peer when no local actor has it.
- **Deaths.** Each node forwards the deaths of its actors to its peers
  (``PeerDown``): asks pending on them fail at once, everywhere. Watches of
  a remote actor are kept by its node (``PeerWatch``), which tells the
  watcher directly.
- **Lost nodes.** Each node watches each peer's service address with ZMTP
  heartbeats (``transport.zmq.Heartbeat``). When the link drops (the peer
  died, or was silent for ``link_timeout``), the peer is lost: asks
  pending on its actors fail with ActorDeadError naming the node, later
  ones at once, and watchers of its actors get Terminated. A lost
  incarnation is not taken back: it must restart (a new incarnation,
  told apart by its node id) to meet again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.config import SystemConfig
from actors.errors import ActorError, AskTimeout, ConfigError
from actors.notices import Terminated
from actors.ref import ActorRef
from actors.registry import Registry
from actors.runtime import Runtime
from actors.watches import Watches

__all__ = ["PeerNode", "Remotes"]

log = logging.getLogger("actors")


class PeerNode:
    """A node we met: its name, incarnation (node id) and service address."""

    __slots__ = ("name", "node_id", "address", "beacon", "host", "heartbeat")

    def __init__(self, name: str, node_id: str, address: str, beacon: str) -> None:
        self.name = name
        self.node_id = node_id
        self.address = address
        self.beacon = beacon
        self.host = address[:address.rfind(":")]
        self.heartbeat: Any = None

    def __repr__(self) -> str:
        return f"<node {self.name} ({self.node_id}) at {self.address}>"


def _is_str(*values: Any) -> bool:
    return all(type(v) is str and 0 < len(v) <= 300 for v in values)


class Remotes:
    """This node's peers (see module doc).

    Args:
        broadcast: a service operation to every host of this node (not to
            the peers).
        call_soon: run a function on the node's loop thread.
    """

    def __init__(self, config: SystemConfig, runtime: Runtime, registry: Registry,
                 watches: Watches, broadcast: Callable[..., None],
                 call_soon: Callable[[Any], None]) -> None:
        self.runtime = runtime
        self.registry = registry
        self.watches = watches
        watches.remote = self.watch
        self.name = config.node or runtime.node_id
        self.timeout = config.link_timeout
        self._broadcast = lambda op: broadcast(op, peers=False)
        self._call_soon = call_soon
        self.lock = threading.Lock()
        self.peers: dict[str, PeerNode] = {}      # by name
        # watches of remote actors made here: node id -> {(watcher, target)}
        self.watched: dict[str, set[tuple[ActorRef, ActorRef]]] = {}
        self.closed = False
        # where the nodes met watch this one (bound now: every tcp port is
        # there from the start, for a node's whole life)
        self.beacon = runtime.network.beacon(self.timeout / 3, self.timeout)
        # a cluster (actors.cluster) decides who is down: a lost link is
        # then only a suspicion, handed to it; and it hears of every loss
        self.suspect: Callable[[PeerNode], None] | None = None
        self.on_down: list[Callable[[list[int]], None]] = []  # actors dead, here or there
        self.ops: dict[type, Callable[[Any, Any], None]] = {
            P.Lookup: self._lookup, P.Meet: self._meet, P.PeerLookup: self._peer_lookup,
            P.PeerWatch: self._peer_watch, P.PeerDown: self._peer_down}

    # -- meeting -------------------------------------------------------------------
    def connect(self, address: str, timeout: float) -> str:
        """Meet the node whose service is at ``address``; its name."""
        if not isinstance(address, str) or not address.startswith("tcp://"):
            raise ConfigError(f"connect() takes a node's tcp://HOST:PORT, got {address!r}")
        if self.suspect is not None:
            raise ConfigError("in a cluster, nodes meet through etcd: connect() is not needed")
        runtime = self.runtime
        self._reach(address)
        try:
            answer = runtime.foreign.ask(address, "?", self._me()).result(timeout)
        except AskTimeout:
            runtime.outboxes.forget(address)  # no link left reconnecting there
            raise ActorError(f"no node answered at {address} within {timeout} s (is it "
                             f"up, bound there, with the same keys?)") from None
        if not (isinstance(answer, list) and len(answer) == 4 and _is_str(*answer)):
            raise ActorError(f"the node at {address} answered {answer!r:.200}")
        if answer[1] in runtime.foreign.lost:
            raise ActorError(f"node {answer[0]} ({answer[1]}) was lost; only a new "
                             f"incarnation (a restart) meets again")
        self._add(*answer)
        return answer[0]

    def _me(self) -> P.Meet:
        runtime = self.runtime
        return P.Meet(self.name, runtime.node_id, runtime.address, self.beacon)

    def _meet(self, op: P.Meet, envelope: Any) -> None:
        if not isinstance(envelope, P.Ask) or not _is_str(*op):
            self.runtime.loop.dropped(f"a malformed Meet: {op!r:.200}")
            return
        if self.suspect is not None:  # a cluster's members meet through etcd
            error: Exception | None = ActorError(f"node {self.name} is in a cluster; its "
                                                 f"members meet through etcd")
        elif op.name == self.name:
            error = ConfigError(f"two nodes are named {op.name!r}")
        elif op.node_id in self.runtime.foreign.lost:
            error = ActorError(f"node {op.name} ({op.node_id}) was lost; only a new "
                               f"incarnation (a restart) meets again")
        else:
            error = None
        self._reach(op.address)
        if error is not None:
            self.runtime.answer(envelope, False, error)
            return
        self._add(*op)
        self.runtime.answer(envelope, True, list(self._me()))

    def add(self, name: str, node_id: str, address: str, beacon: str) -> None:
        """Keep the node ``name`` as a peer (a member its cluster listed)."""
        self._add(name, node_id, address, beacon)

    def _add(self, name: str, node_id: str, address: str, beacon: str) -> None:
        with self.lock:
            old = self.peers.get(name)
            if old is not None and old.node_id == node_id:
                return
        if old is not None:  # the same name, a new incarnation: the old one is gone
            self._lost(old, "restarted as a new incarnation")
        peer = PeerNode(name, node_id, address, beacon)
        self._reach(address)
        with self.lock:
            if self.closed:
                return
            self.peers[name] = peer
        self.rewatch(peer)
        log.info("node %s met node %s (%s) at %s", self.name, name, node_id, address)

    def rewatch(self, peer: PeerNode) -> None:
        """Watch ``peer``'s beacon with heartbeats (again, after a suspicion)."""
        with self.lock:
            if self.closed or self.peers.get(peer.name) is not peer:
                return
            old, peer.heartbeat = peer.heartbeat, self.runtime.network.heartbeat(
                peer.beacon, self.timeout / 3, self.timeout,
                lambda _address: self._call_soon(lambda: self._link_lost(peer)))
        if old is not None:
            old.close()

    def _link_lost(self, peer: PeerNode) -> None:
        if self.suspect is None:
            self._lost(peer, "its link was lost")
        elif self.peers.get(peer.name) is peer:
            self.suspect(peer)

    def drop(self, name: str, node_id: str, why: str) -> None:
        """The node ``name`` (incarnation ``node_id``) is down: as a lost link
        (on the node's loop thread, as a lost link is)."""
        with self.lock:
            peer = self.peers.get(name)
        if peer is not None and peer.node_id == node_id:
            self._call_soon(lambda: self._lost(peer, why))
        elif node_id not in self.runtime.foreign.lost:
            self._call_soon(lambda: self.runtime.foreign.fail(node_id,
                                                              f"node {name} is down ({why})"))

    def _reach(self, address: str) -> None:
        """Send to the service of a node at ``address`` (a new incarnation
        may listen where a lost one did)."""
        outboxes = self.runtime.outboxes
        outboxes.peers.learn([address])
        if address in outboxes.gone:
            outboxes.revive(address)

    def nodes(self) -> list[str]:
        with self.lock:
            return sorted(self.peers)

    def admits(self, address: str) -> bool:
        """Whether ``address`` is on the host of a node we met."""
        host = address[:address.rfind(":")]
        with self.lock:
            return any(peer.host == host for peer in self.peers.values())

    # -- losing --------------------------------------------------------------------
    def _lost(self, peer: PeerNode, why: str) -> None:
        with self.lock:
            if self.peers.get(peer.name) is not peer:
                return
            del self.peers[peer.name]
            watched = self.watched.pop(peer.node_id, set())
        if peer.heartbeat is not None:
            peer.heartbeat.close()
        reason = f"node {peer.name} is down ({why})"
        log.warning("%s", reason)
        self.runtime.foreign.fail(peer.node_id, reason)
        self.runtime.outboxes.forget(peer.address)
        self._broadcast(P.NodeDown(peer.node_id, reason))
        for watcher, target in watched:
            self._terminated(watcher, target, reason)

    def _terminated(self, watcher: ActorRef, target: ActorRef, reason: str) -> None:
        """``target``'s node is down (or unknown): an abnormal end, crashed."""
        runtime = self.runtime
        runtime.post(watcher.address, runtime.encode(
            P.Tell.wire(watcher.uid, Terminated(target, reason, True))))

    # -- names ---------------------------------------------------------------------
    def _ask_all(self, peers: list[PeerNode], operation: Any,
                 on_done: Callable[[Any], None] | None = None) -> list[Any]:
        return [self.runtime.foreign.ask(peer.address, peer.node_id, operation, on_done)
                for peer in peers]

    def _met(self) -> list[PeerNode]:
        with self.lock:
            return list(self.peers.values())

    def lookup(self, name: str, timeout: float) -> ActorRef | None:
        """The first ref a peer has under ``name`` (None: none has it)."""
        futures = self._ask_all(self._met(), P.PeerLookup(name))
        deadline = time.monotonic() + timeout
        found = None
        for future in futures:
            try:
                ref = future.result(max(0.0, deadline - time.monotonic()))
            except ActorError:
                continue
            if found is None and isinstance(ref, ActorRef):
                found = ref
        return found

    def lookup_then(self, name: str, done: Callable[[ActorRef | None], None]) -> None:
        """As :meth:`lookup` without blocking: ``done`` gets the answer (a
        peer lost meanwhile counts as not having it)."""
        peers = self._met()
        left = [len(peers), False]
        if not peers:
            done(None)
            return

        def settled(future: Any) -> None:
            ref = future.result() if future.exception() is None else None
            with self.lock:
                left[0] -= 1
                if left[1] or not (isinstance(ref, ActorRef) or left[0] <= 0):
                    return
                left[1] = True
            done(ref if isinstance(ref, ActorRef) else None)
        self._ask_all(peers, P.PeerLookup(name), settled)

    def find(self, name: str) -> ActorRef | None:
        """The actor named ``name`` here, else on a node met, else None."""
        ref = self.registry.lookup(name)
        return ref if ref is not None else self.lookup(name, 2 * self.timeout)

    def _lookup(self, op: P.Lookup, envelope: Any) -> None:
        """A Lookup from a process of this node: here, else on the nodes met."""
        if not isinstance(envelope, P.Ask):
            return
        ref = self.registry.lookup(op.name)
        if ref is not None:
            self.runtime.answer(envelope, True, ref)
        else:
            self.lookup_then(op.name, lambda found: self.runtime.answer(envelope, True, found))

    def _peer_lookup(self, op: P.PeerLookup, envelope: Any) -> None:
        if isinstance(envelope, P.Ask):
            ref = self.registry.lookup(op.name) if _is_str(op.name) else None
            self.runtime.answer(envelope, True, ref)

    # -- watches and deaths ------------------------------------------------------------
    def watch(self, watcher: ActorRef, target: ActorRef) -> None:
        """Watch ``target``, an actor of another node."""
        with self.lock:
            peer = next((p for p in self.peers.values() if p.node_id == target.node), None)
            if peer is not None:
                self.watched.setdefault(peer.node_id, set()).add((watcher, target))
        if peer is None:
            reason = self.runtime.foreign.lost.get(target.node, f"node {target.node} is not met")
            self._terminated(watcher, target, reason)
            return
        self._tell(peer, P.PeerWatch(watcher, target))

    def _peer_watch(self, op: P.PeerWatch, envelope: Any) -> None:
        watcher, target = op.watcher, op.target
        if not (isinstance(watcher, ActorRef) and isinstance(target, ActorRef)) \
                or watcher.node == self.runtime.node_id or not self.admits(watcher.address):
            self.runtime.loop.dropped(f"a malformed PeerWatch: {op!r:.200}")
            return
        self.watches.watch(watcher, target, False)

    def forward(self, operation: Any) -> None:
        """A death among this node's actors: tell every peer."""
        if isinstance(operation, P.Down):
            for peer in self._met():
                self._tell(peer, P.PeerDown(operation.uids, operation.reason))
            for hook in self.on_down:
                hook(operation.uids)

    def _peer_down(self, op: P.PeerDown, envelope: Any) -> None:
        uids = [uid for uid in op.uids if type(uid) is int] if type(op.uids) is list else []
        reason = op.reason if type(op.reason) is str else "dead"
        if not uids:
            return
        self.runtime.mark_dead(uids, reason)
        self._broadcast(P.Down(uids, reason))
        for hook in self.on_down:
            hook(uids)
        gone = set(uids)
        with self.lock:
            for pairs in self.watched.values():
                pairs -= {pair for pair in pairs if pair[1].uid in gone}

    def _tell(self, peer: PeerNode, operation: Any) -> None:
        runtime = self.runtime
        runtime.post(peer.address, runtime.encode(
            [P.TELL, P.SERVICE_UID, P.encode_op(operation, P.NO_TOKEN), True]))

    def close(self) -> None:
        with self.lock:
            self.closed = True
            peers, self.peers = list(self.peers.values()), {}
        for peer in peers:
            if peer.heartbeat is not None:
                peer.heartbeat.close()
