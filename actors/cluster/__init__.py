"""Clusters on etcd: membership, cluster-wide names, placement, node failure.

A layer above the core (``transport`` <- ``actors`` <- ``actors.cluster``):
``ActorSystem(cluster="etcd://HOST:PORT/PREFIX")`` loads it by name and
calls :func:`join`, which composes its parts onto the node through the
small hooks the core leaves for it (``Starter.names``/``place``,
``Registry.released``, ``Stopper.stop_placed``, ``Remotes.suspect``, the
node's operation tables). Nothing in the core imports it.

==================  ===========================================================
``etcd``            the calls to etcd: lease, transactions, a resuming watch
``membership``      the table of live nodes, suspicion, verdicts, fencing
``names``           names unique in the cluster
``placement``       actors placed on other nodes, and their owners
==================  ===========================================================

docs/cluster.md says what is guaranteed.
"""

from __future__ import annotations

import logging
from typing import Any

from actors import protocol as P
from actors.cluster.etcd import Etcd, parse_url, tls_files
from actors.cluster.membership import Membership
from actors.cluster.names import Names
from actors.cluster.placement import Placement
from actors.errors import ClusterError
from actors.ref import ActorRef

__all__ = ["Cluster", "join"]

log = logging.getLogger("actors")


def join(node: Any) -> Cluster:
    """Join ``node`` (an :class:`actors.node.Node` whose config names a
    cluster) to its cluster; raises if it cannot (etcd away: ClusterError;
    its name taken by a live member: ConfigError)."""
    return Cluster(node)


class Cluster:
    """The node's cluster parts, composed (see module doc)."""

    def __init__(self, node: Any) -> None:
        config = node.config
        endpoints, prefix = parse_url(config.cluster)
        tls = tls_files(config.keys) if config.cluster.startswith("etcds:") else None
        self.node = node
        self.etcd = Etcd(endpoints, min(1.0, max(0.25, config.lease_ttl / 4)), tls)
        self.membership = Membership(node, self.etcd, prefix, self._event, self._down,
                                     lambda kvs: self.names.reset(kvs))
        self.names = Names(node, self.membership)
        self.placement = Placement(node, self.membership, self.names)
        try:
            self.membership.join()
        except BaseException:
            self.names.close()
            raise
        remotes = node.remotes
        remotes.suspect = self.membership.suspect
        remotes.on_down.append(lambda uids: self.placement.orphans(None, set(uids)))
        node.starter.names = self.names
        node.starter.place = self.placement.place
        node.registry.released = self._released
        node.stopper.stop_placed = self.placement.stop_placed
        node.add_ops({P.Lookup: self._host_lookup},
                     {P.PeerSpawn: lambda op: self.placement.serve_spawn(op.spec, op.owner),
                      P.PeerStop: lambda op: self.placement.serve_stop(op.uid),
                      P.StopRemote: self._stop_remote})
        node.runtime.remote_stop = self.placement.stop_ref
        node.cluster = self

    # -- what the watch reports besides members ----------------------------------------------
    def _event(self, section: str, kind: str, rest: str, kv: Any) -> None:
        if section == "names":
            self.names.event(kind, rest, kv)

    def _down(self, member: Any, why: str) -> None:
        self.placement.orphans(member.node_id, set())

    def _released(self, record: Any) -> None:
        self.names.released(record)
        self.placement.forget(record.uid)

    # -- requests of this node's processes ------------------------------------------------
    def _host_lookup(self, op: P.Lookup, envelope: Any) -> None:
        if not isinstance(envelope, P.Ask):
            return
        runtime = self.node.runtime
        ref = self.node.registry.lookup(op.name)
        cached = self.names.cache.get(op.name) if ref is None else None
        if cached is not None:
            ref = self.names.ref_of(op.name, cached)
        if ref is not None:
            runtime.answer(envelope, True, ref)
            return

        def from_etcd() -> None:  # off the loop thread: etcd may be slow
            try:
                runtime.answer(envelope, True, self.lookup(op.name))
            except ClusterError as e:  # (as the class every process knows)
                runtime.answer(envelope, False, ClusterError(str(e)))
        self.node.workers.submit(from_etcd)

    def _stop_remote(self, op: P.StopRemote) -> bool:
        if not isinstance(op.ref, ActorRef):
            raise TypeError(f"StopRemote takes a ref, got {op.ref!r:.100}")
        self.placement.stop_ref(op.ref)
        return True

    # -- the system's API --------------------------------------------------------------------
    def lookup(self, name: str) -> ActorRef | None:
        return self.names.lookup(name)

    def nodes(self) -> list[str]:
        return sorted([self.membership.name, *self.membership.live()])

    def members(self) -> list[dict[str, Any]]:
        """Every live member as data (``actors nodes``)."""
        membership = self.membership
        runtime = self.node.runtime
        rows = [{"name": membership.name, "node_id": membership.node_id,
                 "address": runtime.address, "lease": membership.lease, "self": True}]
        rows += [{"name": m.name, "node_id": m.node_id, "address": m.address,
                  "lease": m.lease, "self": False, "host": m.host, "pid": m.pid}
                 for m in membership.live().values()]
        for row in rows:
            try:
                row["lease_left"] = membership.lease_left(row["lease"])
            except ClusterError:
                row["lease_left"] = None
        return sorted(rows, key=lambda r: r["name"])

    def leaving(self) -> None:
        """The node starts its orderly shutdown: nothing is placed here now."""
        if self.membership.fenced:
            return
        try:
            self.membership.mark_leaving()
        except ClusterError as e:
            log.warning("cluster: could not mark node %s leaving: %s", self.membership.name, e)

    def close(self) -> None:
        """Leave the cluster (the node's actors have stopped)."""
        self.membership.leave()
        self.names.close()
