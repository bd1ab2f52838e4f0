"""The wait-for graph: edges between members, built from reported waits.

Every process records its blocking waits (``actors.waits``) and reports
those older than a quarter of the detection delay to the node; the node's
own waits are read in place. :class:`WaitGraph` turns them into edges
between *members* (actors, and threads of the main program):

- ``ask`` / ``call``: the waiter asked an actor and blocks its own mailbox
  until the reply comes;
- ``spawn`` / ``restart``: the waiter waits for an actor's ``on_start``;
- ``stack``: two handlers wait on the same thread of one process, one
  nested in the other: the lower one resumes only after the upper returns;
- ``held``: an actor that deferred requests it can answer only once a
  holder lets go (an ``actors.mp`` lock held by one process) waits for that
  holder.

An actor unblocks only when all of its edges are satisfied, so any cycle is
a deadlock, if it is real: ``actors.deadlock`` confirms and breaks them.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from typing import Any, NamedTuple

from actors.protocol import PendingRequest, WaitInfo
from actors.registry import Registry
from actors.runtime import Runtime
from actors.waits import ASK, CALL, FRAME, HELD, SERVICE, TELL

__all__ = ["Edge", "EdgeKey", "WaitGraph"]


class EdgeKey(NamedTuple):
    address: str     # the waiter's process
    wait_id: int
    stack: bool      # the stack edge of that wait (not the wait's own)


class Edge:
    """One edge of the wait-for graph."""

    __slots__ = ("waiter", "target", "kind", "what", "since", "address", "wait_id",
                 "call_id", "thread", "checks", "pending")

    def __init__(self, waiter: Any, target: Any, kind: str, what: str, since: float,
                 address: str, wait_id: int, call_id: int | None, thread: str) -> None:
        self.waiter = waiter
        self.target = target
        self.kind = kind
        self.what = what
        self.since = since
        self.address = address  # the waiter's process
        self.wait_id = wait_id
        self.call_id = call_id
        self.thread = thread
        # waits that must still be on: (process address, wait id)
        self.checks: list[tuple[str, int]] = [(address, wait_id)]
        # a request that must still be unanswered
        self.pending: PendingRequest | None = None

    @property
    def key(self) -> EdgeKey:
        """Names the edge (a wait has its own edge, and maybe a stack edge)."""
        return EdgeKey(self.address, self.wait_id, self.kind == "stack")


class WaitGraph:
    """The node's picture of every blocking wait (see module doc).

    Args:
        report_after: how old a wait of the node's own must be to count.
        changed: set whenever waits are reported (wakes the detector).
    """

    def __init__(self, runtime: Runtime, registry: Registry, report_after: float,
                 changed: threading.Event) -> None:
        self.runtime = runtime
        self.registry = registry
        self.report_after = report_after
        self.changed = changed
        self.lock = threading.Lock()
        self.remote: dict[tuple[str, int], WaitInfo] = {}  # (address, wait id) -> info
        # (reply_to, call_id) of a spawn or restart request -> the uid starting
        self.starting: dict[tuple[str, int], int] = {}
        self.broken: set[EdgeKey] = set()  # edges of victims already failed

    # -- input ---------------------------------------------------------------
    def add(self, address: str, infos: list[WaitInfo]) -> None:
        """Waits a process reported."""
        if address in self.runtime.outboxes.gone:  # news from a process already gone
            return
        with self.lock:
            for info in infos:
                self.remote[(address, info.wait_id)] = info
        self.changed.set()

    def remove(self, address: str, wait_ids: list[int]) -> None:
        with self.lock:
            for wait_id in wait_ids:
                self.remote.pop((address, wait_id), None)
            if self.broken:
                gone = set(wait_ids)
                self.broken = {k for k in self.broken
                               if k.address != address or k.wait_id not in gone}

    def forget_process(self, address: str) -> None:
        """A process is gone: so are its waits."""
        with self.lock:
            for key in [k for k, info in self.remote.items() if info.address == address]:
                del self.remote[key]
            self.broken = {k for k in self.broken if k.address != address}

    def note_start(self, request: tuple[str, int] | None, uid: int) -> None:
        """A spawn or restart asked by ``request`` is starting actor ``uid``."""
        if request is not None:
            with self.lock:
                self.starting[request] = uid

    def end_start(self, request: tuple[str, int] | None) -> None:
        if request is not None:
            with self.lock:
                self.starting.pop(request, None)

    # -- the graph -------------------------------------------------------------
    def infos(self) -> list[WaitInfo]:
        """Every wait old enough to count: reported ones and the node's own."""
        runtime = self.runtime
        with self.lock:
            infos = list(self.remote.values())
        infos += [w.info(runtime.address, runtime.waits.brief)
                  for w in runtime.waits.old(self.report_after)]
        return infos

    def edges(self, infos: list[WaitInfo] | None = None) -> list[Edge]:
        """The graph's edges, from ``infos`` (default: :meth:`infos`)."""
        with self.lock:
            starting = dict(self.starting)
        edges = []
        stacks: dict[str, list[WaitInfo]] = collections.defaultdict(list)
        for info in self.infos() if infos is None else infos:
            waiter, kind, what, call_id, address = (info.waiter, info.kind, info.what,
                                                    info.call_id, info.address)
            target_uid = info.target_uid
            if info.depth is not None:
                stacks[address].append(info)
            if kind == FRAME:
                continue
            if kind == SERVICE:
                uid = starting.get((address, call_id))
                if uid is None:
                    target: Any = "node"
                else:
                    target, kind = uid, "restart" if what == "restart" else "spawn"
            else:
                target = target_uid
            edge = Edge(waiter, target, kind, what, info.since, address, info.wait_id, call_id,
                        info.thread)
            if kind in (ASK, CALL, TELL):
                edge.pending = PendingRequest(target_uid, address, call_id)
            elif kind in ("spawn", "restart"):
                edge.pending = PendingRequest(target, None, None)
            edges.append(edge)
        for address, frames in stacks.items():
            frames.sort(key=lambda info: info.depth)
            for lower, upper in zip(frames, frames[1:]):
                if upper.depth == lower.depth + 1 and upper.waiter != lower.waiter:
                    edge = Edge(lower.waiter, upper.waiter, "stack", "", upper.since, address,
                                lower.wait_id, None, lower.thread)
                    edge.checks.append((address, upper.wait_id))
                    edges.append(edge)
        return edges

    @staticmethod
    def find_cycle(edges: list[Edge], broken: set[Any]) -> list[Edge] | None:
        """A cycle of ``edges`` (in order), or None."""
        out: dict[Any, list[Edge]] = collections.defaultdict(list)
        for edge in edges:
            if edge.key not in broken and edge.target != "node":
                out[edge.waiter].append(edge)
        state: dict[Any, int] = {}  # 1: on the current path, 2: done
        for start in list(out):
            if start in state:
                continue
            path: list[Edge] = []
            stack = [(start, iter(out[start]))]
            state[start] = 1
            while stack:
                member, it = stack[-1]
                edge = next(it, None)
                if edge is None:
                    stack.pop()
                    state[member] = 2
                    if path:
                        path.pop()
                    continue
                nxt = edge.target
                if state.get(nxt) == 1:  # back to the path: a cycle
                    path.append(edge)
                    first = next(i for i, e in enumerate(path) if e.waiter == nxt)
                    return path[first:]
                if nxt not in state:
                    state[nxt] = 1
                    path.append(edge)
                    stack.append((nxt, iter(out.get(nxt, ()))))
        return None

    # -- describing ---------------------------------------------------------------
    def member(self, key: Any, thread: str = "") -> str:
        if isinstance(key, int):
            return self.registry.describe(key)
        if key == "node":
            return "the node"
        if not thread and isinstance(key, str) and key.startswith("thread:"):
            found = threading._active.get(int(key[7:]))  # type: ignore[attr-defined]
            thread = found.name if found is not None else key[7:]
        return f"main program thread {thread!r} (pid {os.getpid()})"

    def text(self, edge: Edge) -> str:
        waiter = self.member(edge.waiter, edge.thread)
        target = self.member(edge.target).partition(" (pid")[0]
        if edge.kind == ASK:
            return f"{waiter} asks {target} {edge.what}"
        if edge.kind == CALL:
            return f"{waiter} calls {target}{edge.what}"
        if edge.kind == TELL:
            return f"{waiter} waits for room in {target}'s mailbox to tell it {edge.what}"
        if edge.kind in ("spawn", "restart"):
            return f"{waiter} {edge.kind}s {target} and waits for its on_start"
        if edge.kind == HELD:
            return f"{waiter.partition(' (pid')[0]} is held by {self.member(edge.target, '')}"
        if edge.kind == "stack":
            return (f"{waiter} waits for {target}'s handler to return (it runs nested "
                    "on the same thread)")
        return f"{waiter} waits for the node ({edge.what})"

    def view(self) -> list[dict[str, Any]]:
        """The wait-for graph as data (``ActorSystem.wait_graph``)."""
        now = time.monotonic()
        result = []
        for edge in sorted(self.edges(), key=lambda e: e.since):
            result.append({
                "waiter": self.member(edge.waiter, edge.thread).partition(" (pid")[0],
                "waiter_uid": edge.waiter if isinstance(edge.waiter, int) else None,
                "target": self.member(edge.target).partition(" (pid")[0],
                "target_uid": edge.target if isinstance(edge.target, int) else None,
                "kind": edge.kind, "waits_on": edge.what,
                "seconds": round(now - edge.since, 3), "text": self.text(edge)})
        return result
