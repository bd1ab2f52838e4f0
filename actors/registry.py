"""The node's table of actors: records, names, parents and children.

One :class:`ActorRecord` per actor, or per supervised *slot* across its
incarnations (same uid, same ref). Its ``state`` is one of the named
states below; the parts of the node that change it (``actors.starting``,
``actors.stopping``, ``actors.endings``, ``actors.slots``) do so under
``record.lock``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from actors.protocol import ActorSpec
from actors.ref import ActorRef

__all__ = ["HELD", "RUNNING", "STARTING", "ActorRecord", "Ending", "Registry"]

STARTING: Final = "starting"   # its process is constructing it
RUNNING: Final = "running"
HELD: Final = "held"           # between incarnations: messages to it wait


class Ending(NamedTuple):
    """How an incarnation ended, as its host reported it."""
    reason: str
    crashed: bool
    exc: Any


class ActorRecord:
    """What the node knows of one actor (of one supervised slot)."""

    def __init__(self, uid: int, spec: ActorSpec) -> None:
        self.uid = uid
        self.spec = spec
        self.name = spec.name
        self.class_path = spec.class_path
        self.parent = spec.parent
        options = spec.options
        self.supervised = options.supervised
        self.is_supervisor = options.supervisor
        self.restart_type = options.restart
        self.shutdown = options.shutdown           # 0: brutal kill
        self.children: list[int] = []
        self.ref: ActorRef | None = None
        self.host: Any = None                       # its HostProcess while it has one
        self.state: str = STARTING
        self.attempt: object | None = None          # the start in progress
        self.incarnation = 0
        self.restarts = 0
        self.last_exit: str | None = None
        self.last_crashed = False
        self.ended: Ending | None = None  # reported, its process not gone yet
        self.final = False                # stopped for good: no restart
        self.hung: str | None = None      # why its start was cut short (hang_timeout)
        self.expect_exit = False          # stopped by its supervisor for a restart
        self.settled = threading.Event()  # the last incarnation's ending is handled
        self.settled.set()
        self.lock = threading.Lock()      # state changes: the reader vs workers

    @property
    def label(self) -> str:
        return self.name or f"#{self.uid}"

    @property
    def pid(self) -> int | None:
        return self.host.pid if self.host is not None else None


class Registry:
    """Every actor of the node by uid, by name, and as a tree."""

    def __init__(self, first_uid: int = 1) -> None:
        self.lock = threading.RLock()
        self.actors: dict[int, ActorRecord] = {}
        self.names: dict[str, int] = {}
        self.top: list[int] = []          # actors without a parent, in start order
        self.crashed: set[int] = set()    # dead uids whose end was a crash
        # uids are unique in the node; a node on tcp starts at a random
        # place, so the uids of nodes that meet (and of a node's next
        # incarnation) do not collide
        self._next_uid = first_uid
        # a cluster's names (actors.cluster): told when a named actor is gone
        self.released: Callable[[ActorRecord], None] | None = None

    def get(self, uid: Any) -> ActorRecord | None:
        return self.actors.get(uid)

    def add(self, spec: ActorSpec) -> ActorRecord:
        """A record for a new actor (its name must be free)."""
        with self.lock:
            if spec.name is not None and spec.name in self.names:
                raise ValueError(f"an actor named {spec.name!r} already exists")
            uid, self._next_uid = self._next_uid, self._next_uid + 1
            record = ActorRecord(uid, spec)
            self.actors[uid] = record
            if spec.name is not None:
                self.names[spec.name] = uid
            parent = self.actors.get(spec.parent) if spec.parent is not None else None
            siblings = parent.children if parent is not None else self.top
            before = spec.options.before  # its place in its parent's start order
            if before in siblings:
                siblings.insert(siblings.index(before), uid)
            else:
                siblings.append(uid)
            return record

    def named(self, name: str) -> ActorRecord | None:
        with self.lock:
            uid = self.names.get(name)
            return self.actors.get(uid) if uid is not None else None

    def lookup(self, name: str) -> ActorRef | None:
        record = self.named(name)
        return record.ref if record is not None else None

    def forget(self, record: ActorRecord) -> None:
        with self.lock:
            self.actors.pop(record.uid, None)
            if record.name is not None and self.names.get(record.name) == record.uid:
                del self.names[record.name]
                if self.released is not None:
                    self.released(record)
            if record.uid in self.top:
                self.top.remove(record.uid)
            parent = self.actors.get(record.parent) if record.parent is not None else None
            if parent is not None and record.uid in parent.children:
                parent.children.remove(record.uid)
            if record.host is not None:
                record.host.uids.discard(record.uid)

    def children_of(self, uid: int) -> list[int]:
        with self.lock:
            record = self.actors.get(uid)
            return list(record.children) if record is not None else []

    def records(self) -> list[ActorRecord]:
        with self.lock:
            return list(self.actors.values())

    def describe(self, key: Any) -> str:
        """An actor as deadlock messages name it: ``name (pid N)``."""
        record = self.actors.get(key)
        if record is None:
            return f"#{key}"
        name = record.name or f"{record.class_path.rpartition(':')[2]}#{key}"
        return f"{name} (pid {record.pid})"

    # -- views -----------------------------------------------------------------------
    def tree(self) -> list[dict[str, Any]]:
        """The live actors as nested data (see ``ActorSystem.tree``)."""
        with self.lock:
            def entry(uid: int) -> dict[str, Any] | None:
                record = self.actors.get(uid)
                if record is None or record.ref is None:
                    return None
                return {"name": record.name, "uid": uid, "ref": record.ref,
                        "class": record.class_path.replace(":", "."),
                        "pid": record.pid,
                        "state": "restarting" if record.state == HELD else record.state,
                        "supervisor": record.is_supervisor,
                        "restart": record.restart_type, "restarts": record.restarts,
                        "last_exit": record.last_exit,
                        "children": [e for e in map(entry, record.children) if e]}
            return [e for e in map(entry, self.top) if e]

    def listing(self) -> list[dict[str, Any]]:
        """Every live actor as flat data (see ``ActorSystem.actors``)."""
        with self.lock:
            return [{"name": r.name, "uid": r.uid, "ref": r.ref,
                     "class": r.class_path.replace(":", "."), "pid": r.pid,
                     "parent": r.parent, "children": list(r.children)}
                    for r in self.actors.values() if r.ref is not None]
