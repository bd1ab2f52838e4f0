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
  its name through restarts), its key is deleted if it is still this
  claim's (compared by create revision), by a background thread.
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

from actors.cluster import etcd as E
from actors.cluster.etcd import KeyValue
from actors.errors import ClusterError
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
        self.claims: dict[int, int] = {}     # uid -> create revision of its name's key
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
        """Take ``record.name`` in the cluster, or raise ValueError."""
        key = self.prefix + record.name
        membership = self.membership
        ok, answer = self.etcd.txn(
            [E.absent(key), E.created_at(membership.key, membership.created)],
            [E.put(key, self._value(record, None), membership.lease)], [E.read(key)])
        if ok:
            with self._lock:
                self.claims[record.uid] = int(answer["header"]["revision"])
            return
        holder = E.read_response(answer)
        if holder is None:
            raise ClusterError(f"node {membership.name} is no longer a member of its cluster")
        where = (holder.value or {}).get("node", "?")
        raise ValueError(f"an actor named {record.name!r} already exists in the cluster "
                         f"(on node {where})")

    def announce(self, record: Any) -> None:
        """The actor started: its key gets its address."""
        with self._lock:
            created = self.claims.get(record.uid)
        if created is None or record.ref is None:
            return
        key = self.prefix + record.name
        self.etcd.txn([E.created_at(key, created)],
                      [E.put(key, self._value(record, record.ref.address),
                             self.membership.lease)])

    def released(self, record: Any) -> None:
        """The actor is gone for good (any thread, never blocks)."""
        with self._lock:
            created = self.claims.pop(record.uid, None)
        if created is not None:
            self._jobs.put((self.prefix + record.name, created))

    def _write(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            key, created = job
            try:
                self.etcd.txn([E.created_at(key, created)], [E.delete(key)])
            except ClusterError as e:  # its lease ends it anyway
                log.warning("cluster: could not release the name %s: %s", key, e)

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
        return self.ref_of(name, self.entry(name))

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
