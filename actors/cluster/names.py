"""Cluster-wide names: an actor's name is unique in the whole cluster.

``names/NAME`` holds ``{node, node_id, uid, address, class, owner}`` and is
put with its node's lease, so a node that is down takes its names with it
in the same etcd revision as its membership.

- **Claim**: when a named actor is spawned, one transaction puts the key
  if it is absent, before the actor starts; a name held anywhere else
  fails the spawn with ``ValueError`` naming the node that holds it.
  Claiming needs etcd: while etcd is away, a named spawn raises
  :class:`ClusterError` (unnamed ones are not affected).
- **Announce**: once started, the key gets the actor's address.
- **Release**: when the actor is gone for good (a supervised actor keeps
  its name through restarts), its key is deleted if it is still as this
  node last wrote it (compared by mod revision), by a background thread
  that tries again until etcd answers. A key left by an actor that is
  gone (its node down, or its node no longer knowing it) is taken over by
  the next claim of its name; one still starting never is.
- **Lookup**: the local registry first, then the cache every node keeps
  from its watch of ``names/``, then etcd itself (a name registered a
  moment ago whose event is still on its way).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from actors import protocol as P
from actors.cluster import etcd as E
from actors.cluster.etcd import KeyValue
from actors.errors import ActorError, ClusterError
from actors.ref import ActorRef

__all__ = ["Names"]

log = logging.getLogger("actors")


class Names:
    """This node's side of the cluster's names (see module doc)."""

    def __init__(self, node: Any, membership: Any) -> None:
        self.node = node
        self.membership = membership
        self.etcd = membership.etcd
        self.prefix = f"{membership.prefix}names/"
        self.cache: dict[str, dict[str, Any]] = {}
        self.claims: dict[int, int] = {}     # uid -> mod revision of our last write of its key
        self._owner = threading.local()      # the supervisor a placed actor is started for
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="actors-cluster-names",
                                        daemon=True)
        self._writer.start()

    @contextmanager
    def owned_by(self, owner: ActorRef | None) -> Iterator[None]:
        """Claims made by this thread meanwhile record ``owner``."""
        self._owner.ref = owner
        try:
            yield
        finally:
            self._owner.ref = None

    def _value(self, record: Any, address: str | None) -> dict[str, Any]:
        owner = getattr(self._owner, "ref", None)
        membership = self.membership
        return {"node": membership.name, "node_id": membership.node_id, "uid": record.uid,
                "address": address, "class": record.class_path,
                "owner": None if owner is None else [owner.node, owner.uid]}

    def claim(self, record: Any) -> None:
        """Take ``record.name`` in the cluster, or raise ValueError. A key
        left by an actor that is gone (its release still on its way, or
        never made) is taken over."""
        key = self.prefix + record.name
        membership = self.membership
        member = E.created_at(membership.key, membership.created)
        ok, answer = self.etcd.txn([E.absent(key), member],
                                   [E.put(key, self._value(record, None), membership.lease)],
                                   [E.read(key)])
        holder = None if ok else E.read_response(answer)
        if holder is not None and self._stale(record.name, holder):
            ok, answer = self.etcd.txn([E.modified_at(key, holder.mod_revision), member],
                                       [E.put(key, self._value(record, None),
                                              membership.lease)])
        if ok:
            with self._lock:
                self.claims[record.uid] = int(answer["header"]["revision"])
            return
        if holder is None:
            raise ClusterError(f"node {membership.name} is no longer a member of its cluster")
        where = (holder.value or {}).get("node", "?")
        raise ValueError(f"an actor named {record.name!r} already exists in the cluster "
                         f"(on node {where})")

    def _stale(self, name: str, holder: KeyValue) -> bool:
        """Whether the actor ``holder`` names is gone: ours and no longer in
        the registry; on a node that is down; or started once and no longer
        known to its node (one still starting is never stale)."""
        value = holder.value or {}
        node_id, uid = value.get("node_id"), value.get("uid")
        runtime = self.node.runtime
        if node_id == self.membership.node_id:
            record = self.node.registry.get(uid)
            return record is None or record.name != name
        if node_id in runtime.foreign.lost or uid in runtime.dead:
            return True
        return value.get("address") is not None and self.confirmed(name, value) is None

    def confirmed(self, name: str, value: dict[str, Any]) -> ActorRef | None:
        """The ref ``value`` names, if its node says it still runs there."""
        ref = self.ref_of(name, value)
        if ref is None or ref.node == self.membership.node_id:
            return ref
        member = next((m for m in self.membership.live().values() if m.node_id == ref.node),
                      None)
        if member is None:
            return None
        timeout = 2 * self.node.config.link_timeout
        try:
            found = self.node.runtime.foreign.ask(member.address, member.node_id,
                                                  P.PeerLookup(name)).result(timeout)
        except ActorError:
            return None
        return ref if isinstance(found, ActorRef) and found.uid == ref.uid else None

    def announce(self, record: Any) -> None:
        """The actor started: its key gets its address (retried in the
        background if etcd does not answer now)."""
        if record.ref is None:
            return
        value = self._value(record, record.ref.address)
        try:
            self._put_address(record, value)
        except ClusterError:
            self._jobs.put(("announce", record, value))

    def _put_address(self, record: Any, value: dict[str, Any]) -> None:
        """Write ``value`` to the key of a name still claimed, if it is as
        this node last wrote it."""
        with self._lock:
            claimed = self.claims.get(record.uid)
        if claimed is None:
            return
        key = self.prefix + record.name
        ok, answer = self.etcd.txn([E.modified_at(key, claimed)],
                                   [E.put(key, value, self.membership.lease)])
        if ok:
            self._wrote(record, key, int(answer["header"]["revision"]))

    def _wrote(self, record: Any, key: str, revision: int) -> None:
        """Our write of ``key`` is at ``revision`` now (if the actor was
        released meanwhile, release it at that revision)."""
        with self._lock:
            if record.uid in self.claims:
                self.claims[record.uid] = revision
                return
        self._jobs.put(("release", key, revision))

    def released(self, record: Any) -> None:
        """The actor is gone for good (any thread, never blocks)."""
        with self._lock:
            claimed = self.claims.pop(record.uid, None)
        if claimed is not None:
            self._jobs.put(("release", self.prefix + record.name, claimed))

    def _write(self) -> None:
        """Releases and late announces, in order, each retried until etcd
        answers (a release left undone would hold the name while this node
        lives) or this node leaves."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            delay = 0.05
            while not self.membership.stopping.is_set():
                try:
                    self._do(job)
                    break
                except ClusterError as e:
                    log.warning("cluster: name %s: %s; trying again", job[1], e)
                    self.membership.stopping.wait(delay)
                    delay = min(delay * 2, 1.0)

    def _do(self, job: tuple[Any, ...]) -> None:
        if job[0] == "release":
            _, key, revision = job
            self.etcd.txn([E.modified_at(key, revision)], [E.delete(key)])
            return
        _, record, value = job
        self._put_address(record, value)

    # -- lookups ---------------------------------------------------------------------------
    def entry(self, name: str, fresh: bool = False) -> dict[str, Any] | None:
        """The value held for ``name``: from the cache, else (or when
        ``fresh``) from etcd."""
        value = None if fresh else self.cache.get(name)
        if value is None:
            kv = self.etcd.get(self.prefix + name)
            value = kv.value if kv is not None else None
        return value

    def ref_of(self, name: str, value: dict[str, Any] | None) -> ActorRef | None:
        if value is None:
            return None
        node_id, uid, address = value.get("node_id"), value.get("uid"), value.get("address")
        if type(node_id) is not str or type(uid) is not int or type(address) is not str:
            return None  # still starting, or malformed
        if node_id in self.node.runtime.foreign.lost:
            return None  # its node is down; the key is going with its lease
        if node_id == self.membership.node_id:
            return self.node.registry.lookup(name)
        return self.node.runtime.foreign.make_ref(node_id, uid, address, name)

    def lookup(self, name: str) -> ActorRef | None:
        ref = self.node.registry.lookup(name)
        if ref is not None:
            return ref
        if not isinstance(name, str) or not name:
            return None
        cached = self.cache.get(name)
        ref = None if cached is None else self.ref_of(name, cached)
        # not cached, or cached before its address was written: ask etcd
        return ref if ref is not None else self.ref_of(name, self.entry(name, fresh=True))

    def event(self, kind: str, name: str, kv: KeyValue) -> None:
        """A change of ``names/`` from the watch (``reset``: start afresh)."""
        if kind == "DELETE":
            self.cache.pop(name, None)
        elif kv.value is not None:
            self.cache[name] = kv.value

    def reset(self, kvs: list[KeyValue]) -> None:
        self.cache = {kv.key[len(self.prefix):]: kv.value for kv in kvs
                      if kv.key.startswith(self.prefix) and kv.value is not None}

    def close(self) -> None:
        self._jobs.put(None)
        self._writer.join(2.0)
