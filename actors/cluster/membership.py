"""A node's membership of its cluster: the etcd table of live nodes, the
lease that keeps this node in it, the one decision "node X is down", and
fencing.

Keys under the cluster's prefix (values are JSON objects):

=========================  ====================================================
``nodes/NAME``             a live member: incarnation, addresses, its lease
                           (put with that lease: it goes when the lease does)
``names/NAME``             a cluster-wide name (``actors.cluster.names``)
``suspects/ID/VOTER``      VOTER lost its link to incarnation ID (a lease of
                           its own, never refreshed: a vote fades by itself)
``down/ID``                the verdict: incarnation ID is down (with its lease)
=========================  ====================================================

- **Joining**: a lease of ``lease_ttl`` s, then one transaction puts
  ``nodes/NAME`` if no other incarnation holds it (a previous one's lease
  may take up to ``lease_ttl`` s to go: joining waits for it). The node
  reads the table, links to every member (CURVE links, ``actors.remotes``)
  and watches the prefix from the revision it read.
- **Down is one decision**: a member is down when its ``nodes/`` key is
  deleted: its lease expired, it left, or it was declared down. Every node
  acts on that event, the same one: asks pending on its actors fail,
  watchers get Terminated naming the node, its names are gone (they share
  its lease), supervisors restart what it ran elsewhere.
- **Suspicion**: a lost heartbeat link only votes (``suspects/``). When as
  many members as ``min(2, live members - 1)`` voted, a voter declares the
  node down with a transaction that succeeds only while the voter itself
  is a member and not declared down (so of two nodes that lose each other
  exactly one goes), then revokes the suspect's lease. A killed node is so
  down in milliseconds, not after its lease's TTL.
- **Fencing**: a node that can no longer be sure its lease lives (no
  keepalive answered for ``lease_ttl`` minus a margin, or etcd says it is
  gone, or its key was deleted) kills its actors' processes at once and
  shuts down with :class:`ClusterError`: it stops before anyone may
  restart its actors elsewhere, so two incarnations of a named actor never
  both answer. A shorter etcd outage changes nothing; the watch resumes
  from the revision it had.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any, NamedTuple

from actors.cluster import etcd as E
from actors.cluster.etcd import Etcd, KeyValue
from actors.errors import ClusterError, ConfigError

__all__ = ["Member", "Membership"]

log = logging.getLogger("actors")

VOTES = 2  # as Orleans' default: two members must suspect a node to declare it down


class Member(NamedTuple):
    name: str
    node_id: str
    address: str
    beacon: str
    lease: int
    created: int        # the create revision of its key: this incarnation's
    host: str
    pid: int
    joined: float


def member_of(name: str, kv: KeyValue) -> Member | None:
    """A member from its key, if the value is well formed."""
    v = kv.value or {}
    fields = (v.get("node_id"), v.get("address"), v.get("beacon"))
    if not all(type(f) is str and 0 < len(f) <= 300 for f in fields) \
            or type(v.get("lease")) is not int:
        return None
    return Member(name, fields[0], fields[1], fields[2], v["lease"], kv.create_revision,
                  str(v.get("host", ""))[:200], int(v.get("pid", 0) or 0),
                  float(v.get("joined", 0.0) or 0.0))


class Membership:
    """This node in the etcd table (see module doc).

    Args:
        node: the :class:`actors.node.Node` it belongs to.
        on_event: ``(section, kind, rest, kv)`` for keys outside ``nodes/``
            and ``down/`` (names), from the watch thread.
        on_down: ``(member, why)`` once a member is down.
        on_reset: ``(kvs)``, every key under the prefix, read again after
            the watch missed history (a compaction).
    """

    def __init__(self, node: Any, etcd: Etcd, prefix: str, on_event: Any, on_down: Any,
                 on_reset: Any) -> None:
        config = node.config
        self.node = node
        self.etcd = etcd
        self.prefix = prefix
        self.name: str = config.node
        self.node_id: str = node.runtime.node_id
        self.ttl: int = config.lease_ttl
        self.remotes = node.remotes
        self._on_event = on_event
        self._on_down = on_down
        self._on_reset = on_reset
        self.lock = threading.Lock()
        self.members: dict[str, Member] = {}
        self.leaving: set[str] = set()         # members stopping their actors to leave
        self.why: dict[str, str] = {}          # node id -> why it is going (verdict, leave)
        self.fenced = False
        self.unavailable = False
        self.stopping = threading.Event()
        self.key = f"{prefix}nodes/{self.name}"
        self.lease = 0
        self.created = 0
        self.last_ok = 0.0
        self.watch: E.Watch | None = None
        self.keeper: threading.Thread | None = None

    # -- joining -------------------------------------------------------------------
    def join(self) -> None:
        runtime = self.node.runtime
        sent = time.monotonic()
        self.lease = self.etcd.grant(self.ttl)
        self.last_ok = sent
        me = {"node_id": self.node_id, "address": runtime.address,
              "beacon": self.remotes.beacon, "lease": self.lease,
              "host": socket.gethostname(), "pid": os.getpid(), "joined": time.time()}
        deadline = time.monotonic() + self.ttl + 1.5
        while True:
            ok, answer = self.etcd.txn([E.absent(self.key)], [E.put(self.key, me, self.lease)],
                                       [E.read(self.key)])
            if ok:
                self.created = int(answer["header"]["revision"])
                break
            holder = E.read_response(answer)
            if time.monotonic() >= deadline:
                self.etcd.revoke(self.lease)
                other = member_of(self.name, holder) if holder is not None else None
                raise ConfigError(
                    f"node {self.name!r} is a member of the cluster already"
                    f"{f' ({other.node_id} at {other.address}, pid {other.pid} on {other.host})' if other else ''}: "  # noqa: E501
                    f"two nodes have that name")
            # a previous incarnation's lease may still run: wait for it to end
            # (keeping this one's alive meanwhile)
            self.stopping.wait(0.1)
            sent = time.monotonic()
            if self.etcd.keepalive(self.lease) > 0:
                self.last_ok = sent
        revision, kvs = self.etcd.get_prefix(self.prefix)
        self._apply([("PUT", kv) for kv in kvs])
        self.watch = self.etcd.watch(self.prefix, revision + 1, self._apply, self._reset)
        self.keeper = threading.Thread(target=self._keep, name="actors-etcd-lease", daemon=True)
        self.keeper.start()
        threading.Thread(target=self._guard, name="actors-etcd-fence", daemon=True).start()
        log.info("node %s joined cluster %s at etcd %s (%d members)", self.name, self.prefix,
                 self.etcd.where, len(self.members) + 1)

    # -- the table, as the watch reports it ----------------------------------------------
    def _apply(self, events: list[tuple[str, KeyValue]]) -> None:
        for kind, kv in events:
            section, _, rest = kv.key[len(self.prefix):].partition("/")
            try:
                if section == "nodes":
                    self._member_event(kind, rest, kv)
                elif section == "down":
                    self._verdict(kind, rest, kv)
                elif section != "suspects":
                    self._on_event(section, kind, rest, kv)
            except Exception:
                log.exception("cluster event %s %s failed", kind, kv.key)

    def _member_event(self, kind: str, name: str, kv: KeyValue) -> None:
        if name == self.name:
            if kind == "DELETE" and not self.stopping.is_set():
                self.fence("its membership was deleted from etcd")
            return
        if kind == "DELETE":
            with self.lock:
                self.leaving.discard(name)
                member = self.members.pop(name, None)
                why = self.why.pop(member.node_id, None) if member is not None else None
            if member is not None:
                self._down(member, why or "its etcd lease expired")
            return
        if (kv.value or {}).get("leaving"):  # stopping its actors: place nothing there
            with self.lock:
                self.why[str((kv.value or {}).get("node_id"))] = "it left the cluster"
                self.leaving.add(name)
            return
        member = member_of(name, kv)
        if member is None:
            log.warning("cluster: ignored a malformed member %s: %r", kv.key, kv.value)
            return
        with self.lock:
            old = self.members.get(name)
            self.members[name] = member
        if old is not None and old.node_id != member.node_id:
            self._down(old, "restarted as a new incarnation")
        if old is None or old.node_id != member.node_id:
            self.remotes.add(name, member.node_id, member.address, member.beacon)

    def _down(self, member: Member, why: str) -> None:
        log.warning("cluster: node %s (%s) is down: %s", member.name, member.node_id, why)
        self.remotes.drop(member.name, member.node_id, why)
        self._on_down(member, why)

    def _verdict(self, kind: str, node_id: str, kv: KeyValue) -> None:
        if kind != "PUT":
            return
        by = str((kv.value or {}).get("by", "?"))[:64]
        if node_id == self.node_id:
            self.fence(f"node {by} declared it down (its links to the cluster were lost)")
            return
        with self.lock:
            self.why[node_id] = f"declared down by node {by} (its links were lost)"

    def _reset(self) -> int:
        """The watch missed history (compacted): read the table again."""
        revision, kvs = self.etcd.get_prefix(self.prefix)
        present = {kv.key for kv in kvs}
        with self.lock:
            gone = [m for n, m in self.members.items() if f"{self.prefix}nodes/{n}" not in present]
        self._apply([("DELETE", KeyValue(f"{self.prefix}nodes/{m.name}", None, 0, 0, 0))
                     for m in gone] + [("PUT", kv) for kv in kvs])
        self._on_reset(kvs)
        return revision + 1

    def live(self) -> dict[str, Member]:
        with self.lock:
            return dict(self.members)

    def placeable(self) -> dict[str, Member]:
        """The members new actors may go to (not those leaving)."""
        with self.lock:
            return {n: m for n, m in self.members.items() if n not in self.leaving}

    # -- the lease -----------------------------------------------------------------------
    def _keep(self) -> None:
        """Keep the lease alive (a keepalive every third of its TTL)."""
        interval = self.ttl / 3
        failovers = self.etcd.failovers
        while not self.stopping.wait(interval if not self.unavailable else interval / 3):
            sent = time.monotonic()
            try:
                left = self.etcd.keepalive(self.lease)
            except (ClusterError, ValueError, KeyError, TypeError) as e:  # no good answer
                if not self.unavailable:
                    self.unavailable = True
                    log.warning("cluster: etcd at %s does not answer (%s); links and actors "
                                "keep working, membership changes wait; node %s fences "
                                "itself if etcd stays away %.1f s more", self.etcd.where, e,
                                self.name, max(0.0, self.fence_at() - sent))
                continue
            if left <= 0:
                self.fence("etcd says its lease expired")
                return
            self.last_ok = sent
            if self.unavailable or self.etcd.failovers != failovers:
                if self.unavailable:
                    log.warning("cluster: etcd at %s answers again; node %s kept its lease",
                                self.etcd.where, self.name)
                self.unavailable = False
                failovers = self.etcd.failovers
                if self.watch is not None:
                    self.watch.restart()  # its stream may have died unseen

    def fence_at(self) -> float:
        """The monotonic time from which the lease may have expired, less a
        margin: no keepalive answered since ``last_ok`` was sent."""
        return self.last_ok + self.ttl - max(self.ttl / 5, 0.2)

    def _guard(self) -> None:
        """Fence at :meth:`fence_at` whatever a keepalive call is doing
        (one may wait on several silent endpoints in turn)."""
        while not self.stopping.is_set():
            left = self.fence_at() - time.monotonic()
            if left <= 0:
                self.fence(f"etcd did not answer for {time.monotonic() - self.last_ok:.1f} s: "
                           f"its lease ({self.ttl} s) may have expired")
                return
            self.stopping.wait(left)

    def lease_left(self, lease: int) -> int:
        return self.etcd.time_to_live(lease)

    # -- suspicion and verdict ---------------------------------------------------------
    def suspect(self, peer: Any) -> None:
        """A heartbeat link to ``peer`` was lost (from the node's loop thread)."""
        threading.Thread(target=self._vote, args=(peer,), name="actors-cluster-vote",
                         daemon=True).start()

    def _vote(self, peer: Any) -> None:
        with self.lock:
            member = self.members.get(peer.name)
            voters = len(self.members)  # the others
        if member is None or member.node_id != peer.node_id or self.fenced:
            return
        ballot = f"{self.prefix}suspects/{member.node_id}/"
        try:
            if self.etcd.get(ballot + self.name) is None:  # (a vote of ours may still run)
                fade = self.etcd.grant(max(self.ttl, 2 * int(self.node.config.link_timeout) + 2))
                ok, _ = self.etcd.txn([E.created_at(self.key, self.created)],
                                      [E.put(ballot + self.name, {"by": self.name}, fade)])
                if not ok:
                    self.etcd.revoke(fade)
                    return
            _, found = self.etcd.get_prefix(ballot)
            live = self.live()
            votes = [kv for kv in found  # only members' votes count
                     if kv.key[len(ballot):] == self.name or kv.key[len(ballot):] in live]
            if len(votes) < min(VOTES, voters):
                log.warning("cluster: node %s lost its link to node %s (%d of %d votes to "
                            "declare it down)", self.name, member.name, len(votes),
                            min(VOTES, voters))
                self.stopping.wait(self.node.config.link_timeout)
                self.remotes.rewatch(peer)  # lost again: another vote
                return
            ok, _ = self.etcd.txn(
                [E.created_at(self.key, self.created),
                 E.created_at(f"{self.prefix}nodes/{member.name}", member.created),
                 E.absent(f"{self.prefix}down/{self.node_id}"),
                 E.absent(f"{self.prefix}down/{member.node_id}")],
                [E.put(f"{self.prefix}down/{member.node_id}", {"by": self.name}, member.lease)])
            if ok:
                log.warning("cluster: node %s declares node %s down", self.name, member.name)
                self.etcd.revoke(member.lease)
        except ClusterError as e:
            log.warning("cluster: cannot vote on node %s: %s", member.name, e)
            self.stopping.wait(self.node.config.link_timeout)
            self.remotes.rewatch(peer)

    # -- fencing and leaving -------------------------------------------------------------
    def fence(self, why: str) -> None:
        """Stop every actor of this node at once and leave (module doc)."""
        with self.lock:
            if self.fenced or self.stopping.is_set():
                return
            self.fenced = True
        log.critical("cluster: node %s is fenced: %s; killing its actors' processes",
                     self.name, why)
        # the failure first: the deaths below must not be taken for its cause
        self.node.fail(f"node {self.name} left its cluster (fenced): {why}", ClusterError)
        for host in self.node.launcher.live_hosts():
            if host.process is not None and host.alive:
                try:
                    host.process.kill()
                except (OSError, ValueError, AttributeError):
                    pass
        self.stopping.set()
        threading.Thread(target=self._revoke_quietly, daemon=True).start()

    def _revoke_quietly(self) -> None:
        try:
            self.etcd.revoke(self.lease)
        except ClusterError:
            pass

    def mark_leaving(self) -> None:
        """The node starts to stop its actors: the others place nothing
        here from now on, and will say "it left the cluster"."""
        self.etcd.txn([E.created_at(self.key, self.created)],
                      [E.put(self.key, {"leaving": True, "node_id": self.node_id},
                             self.lease)])

    def leave(self) -> None:
        """Leave in order (the node's actors have stopped): the lease and
        every key on it go."""
        if self.stopping.is_set():
            self._stop_threads()
            return
        self.stopping.set()
        try:
            self.mark_leaving()
            self.etcd.revoke(self.lease)
        except ClusterError as e:
            log.warning("cluster: node %s could not leave in order (%s); its lease ends "
                        "within %d s", self.name, e, self.ttl)
        self._stop_threads()

    def _stop_threads(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        if self.keeper is not None and self.keeper is not threading.current_thread():
            self.keeper.join(2.0)
