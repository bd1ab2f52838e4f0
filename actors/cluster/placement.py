"""Placing actors on the nodes of a cluster.

``system.spawn(Cls, node=...)``, ``self.system.spawn(..., node=...)`` in an
actor, and ``ChildSpec(..., node=...)`` say where an actor goes:

- ``"b"``: node b (it must be a live member);
- ``["b", "c"]``: the first of these that is a live member;
- ``"*"``: any live member other than this node (the one this node has
  placed the fewest actors on), or this node when it is alone.

The chosen node starts the actor as one of its own top-level actors
(``PeerSpawn``); its class must be imported in that node's main program
(the same code runs on every node), else :class:`SpawnError` names it.
A placed child of a supervisor is *owned* by it: the supervisor watches it
(a new ref at each start, found again by its cluster-wide name), and the
node running it stops it when its owner ends for good or the owner's node
is down, so no orphan outlives its supervisor. A supervisor started again
(its own restart) finds its placed children by name and keeps them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from actors import protocol as P
from actors.errors import ActorError, SpawnError
from actors.ref import ActorRef

__all__ = ["Placement"]

log = logging.getLogger("actors")

ANY_OTHER = "*"


class Placement:
    """This node's placements, both ways (see module doc)."""

    def __init__(self, node: Any, membership: Any, names: Any) -> None:
        self.node = node
        self.membership = membership
        self.names = names
        self.lock = threading.Lock()
        self.here: dict[int, tuple[str, int]] = {}         # uid placed here -> owner
        self.by: dict[int, list[ActorRef]] = {}             # owner uid here -> placed refs
        self.counts: dict[str, int] = {}                    # node -> actors placed there

    # -- placing ------------------------------------------------------------------------
    def place(self, spec: P.ActorSpec) -> ActorRef:
        """Start ``spec`` where ``spec.options.node`` says (Starter.place)."""
        node = self.node
        owner = None
        if spec.options.supervised and spec.parent is not None:
            record = node.registry.get(spec.parent)  # (its ref is set once it started)
            if record is not None and record.host is not None:
                owner = record.ref or node.runtime.local_ref(record.uid, record.host.address,
                                                             record.name)
        if owner is not None and spec.name is not None:
            kept = self._kept(spec.name, owner)
            if kept is not None:
                return kept
        target = self.choose(spec.options.node)
        options = spec.options._replace(node=None, supervised=False, restart=None, before=None)
        plain = spec._replace(parent=None, colocate=None, options=options)
        node.runtime.encode(plain.to_wire())  # a bad argument fails here, at the caller
        if target.name == self.membership.name:
            ref = self.serve_spawn(plain, owner)
        else:
            try:
                ref = node.runtime.foreign.ask(
                    target.address, target.node_id, P.PeerSpawn(plain, owner)).result(
                        node.config.spawn_timeout + 5)
            except ActorError as e:
                if isinstance(e, (SpawnError, ValueError)):
                    raise
                raise SpawnError(f"placing {spec.label} on node {target.name} failed: "
                                 f"{e}") from None
            if not isinstance(ref, ActorRef):
                raise SpawnError(f"node {target.name} answered {ref!r:.100} to a spawn")
        with self.lock:
            self.counts[target.name] = self.counts.get(target.name, 0) + 1
        if owner is not None:
            self._record(owner, ref)
        return ref

    def _kept(self, name: str, owner: ActorRef) -> ActorRef | None:
        """A placed child of ``owner`` that still runs under ``name`` (the
        owner was restarted and starts its children again)."""
        value = self.names.entry(name, fresh=True)
        if value is None or value.get("owner") != [owner.node, owner.uid]:
            return None
        ref = self.names.confirmed(name, value)  # (not one that just ended)
        if ref is not None:
            self._record(owner, ref)
        return ref

    def _record(self, owner: ActorRef, ref: ActorRef) -> None:
        """``owner`` placed ``ref``: the one of that name from now on."""
        with self.lock:
            refs = [r for r in self.by.get(owner.uid, []) if r.name != ref.name]
            self.by[owner.uid] = [*refs, ref]

    def choose(self, placement: Any) -> Any:
        live = self.membership.placeable()
        me = self.membership.name
        if placement == ANY_OTHER:
            others = sorted(live.values(), key=lambda m: (self.counts.get(m.name, 0), m.name))
            if others:
                return others[0]
            return _Self(me)
        names = placement if isinstance(placement, list) else [placement]
        for name in names:
            if name == me:
                return _Self(me)
            if name in live:
                return live[name]
        raise SpawnError(f"no live member of the cluster among {names} (live: "
                         f"{sorted([me, *live])})")

    # -- serving a peer's placement ----------------------------------------------------------
    def serve_spawn(self, spec: P.ActorSpec, owner: Any) -> ActorRef:
        if not isinstance(owner, ActorRef):
            owner = None
        if spec.options.node is not None or spec.options.supervised or spec.parent is not None:
            raise SpawnError("a placed actor is a top-level actor of the node it runs on")
        with self.names.owned_by(owner):
            ref = self.node.starter.spawn(spec)
        if owner is not None:
            with self.lock:
                self.here[ref.uid] = (owner.node, owner.uid)
            runtime = self.node.runtime  # its owner may have ended meanwhile
            if owner.node in runtime.foreign.lost or owner.uid in runtime.dead:
                self.orphans(owner.node, {owner.uid})
        return ref

    def serve_stop(self, uid: Any) -> bool:
        """A member stops an actor of this node (one it placed, or any:
        members are trusted as this node's own processes are)."""
        record = self.node.registry.get(uid)
        if record is None:
            return False
        self.node.stopper.stop(uid, None, final=record.parent is None)
        return True

    # -- stopping what was placed ---------------------------------------------------------
    def stop_ref(self, ref: ActorRef, timeout: float | None = None) -> None:
        """Stop ``ref``, an actor of any member (one this node placed, a
        ``ref.stop()`` of another node's actor)."""
        with self.lock:
            for refs in self.by.values():
                if ref in refs:
                    refs.remove(ref)
        if ref.node == self.membership.node_id:
            self.serve_stop(ref.uid)
            return
        target = next((m for m in self.membership.live().values() if m.node_id == ref.node),
                      None)
        if target is None:
            return  # its node is down: it is gone
        timeout = self.node.config.stop_timeout + 5
        try:
            self.node.runtime.foreign.ask(target.address, target.node_id,
                                          P.PeerStop(ref.uid)).result(timeout)
        except ActorError as e:
            log.warning("cluster: stopping %r on node %s failed: %s", ref, target.name, e)

    def stop_placed(self, uid: int, keep: bool) -> None:
        """``uid`` stops its children (Stopper.stop_placed): its placed ones
        first, the last placed first; kept when it will be restarted."""
        if keep:
            return
        with self.lock:
            refs = self.by.pop(uid, [])
        for ref in reversed(refs):
            self.stop_ref(ref)

    def orphans(self, owner_node: str | None, owner_uids: set[int]) -> None:
        """Stop the actors placed here whose owner ended (its node is down:
        ``owner_node``; or these uids ended), on a thread of their own."""
        with self.lock:
            uids = [uid for uid, (node_id, owner) in self.here.items()
                    if node_id == owner_node or owner in owner_uids]
            for uid in uids:
                del self.here[uid]
        if uids:
            threading.Thread(target=self.node.stopper.stop_all, args=(uids,),
                             name="actors-cluster-orphans", daemon=True).start()

    def forget(self, uid: int) -> None:
        with self.lock:
            self.here.pop(uid, None)


class _Self:
    """This node as a placement target."""

    def __init__(self, name: str) -> None:
        self.name = name
