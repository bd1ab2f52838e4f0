"""Deadlock detection: the node's wait-for graph, cycles, and quiescence.

The graph. Every process records its blocking waits (``actors.waits``) and
reports those older than a quarter of the detection delay to the node. The
node's :class:`Detector` turns them into edges between *members* (actors,
and threads of the main program):

- ``ask`` / ``call``: the waiter asked an actor and blocks its own mailbox
  until the reply comes;
- ``spawn`` / ``restart``: the waiter waits for an actor's ``on_start``;
- ``stack``: two handlers wait on the same thread of one process, one
  nested in the other: the lower one resumes only after the upper returns;
- ``held``: an actor that deferred requests it can answer only once a
  holder lets go (an ``actors.mp`` lock held by one process) waits for that
  holder. The asks parked there are *bound*: no other thread answers them.

An actor unblocks only when all of its edges are satisfied, so any cycle is
a deadlock, if it is real.

No false positives. The node's picture lags: a reply may be in flight, or a
wait may have ended, when a cycle appears in it. So before reporting, the
detector *confirms* every edge of the cycle with the processes involved:
each waiter's process says whether that very wait (by id) is still on, and
each target's process whether that very request is still unanswered (in
the mailbox, being handled, or deferred). The probes reach the processes
at different moments, and that is enough: suppose some member left its wait
after its probe; take the first member ever to do so. Its target had not
answered at its own probe, and could answer only by leaving its own wait
first, which would make it an earlier leaver. So no member ever leaves:
the cycle is permanent. A request still in transit is not yet "unanswered"
at its target, so the check fails and is tried again a moment later.

Breaking. The youngest ask of the cycle is the victim: its request is
withdrawn from the target's mailbox (it will never be handled), then its
wait fails with :class:`DeadlockError` naming the cycle. When the victim's
handler unwinds, the rest of the cycle goes on.

Quiescence (opt-in, ``actors.quiescence``) uses the same thread.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import threading
import time
from typing import Any

from actors import protocol as P
from actors.errors import DeadlockError
from actors.protocol import PendingRequest, WaitInfo
from actors.registry import Registry
from actors.runtime import Runtime
from actors.waits import (
    ABSENT,
    ANSWERED,
    ASK,
    BOUND,
    CALL,
    DEFERRED,
    FRAME,
    GONE,
    HELD,
    QUEUED,
    SERVICE,
    WAITING,
)


log = logging.getLogger("actors")

PROBE_TIMEOUT = 1.0   # a process that does not answer a probe confirms nothing
RETRY = 0.02          # look again at an unconfirmed cycle this soon


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
    def key(self) -> tuple[str, int, bool]:
        """Names the edge (a wait has its own edge, and maybe a stack edge)."""
        return (self.address, self.wait_id, self.kind == "stack")


class Detector:
    """The node's wait-for graph and the thread that checks it."""

    def __init__(self, runtime: Runtime, registry: Registry, delay: float | None,
                 quiescence: float | None) -> None:
        self.runtime = runtime
        self.registry = registry
        self.delay = delay
        self.report_after = delay / 4 if delay is not None else math.inf
        self.quiescence = quiescence
        self.lock = threading.Lock()
        self.remote: dict[tuple[str, int], WaitInfo] = {}  # (address, wait id) -> info
        # (reply_to, call_id) of a spawn or restart request -> the uid starting
        self.starting: dict[tuple[str, int], int] = {}
        self.broken: set[tuple[str, int, bool]] = set()  # edges of victims already failed
        # edges that failed a confirmation: not looked at again until then
        self.skip: dict[tuple[str, int, bool], float] = {}
        self.tries: dict[tuple[str, int, bool], int] = {}
        self.reports: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)
        self.changed = threading.Event()
        self.stopped = False
        self.stopping = threading.Event()
        self.retry_at = math.inf
        self.quiet_check: Any = None  # the quiescence check (actors.quiescence), if on
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.delay is not None or self.quiescence is not None:
            self.thread = threading.Thread(target=self._run, name="actors-deadlock",
                                           daemon=True)
            self.thread.start()

    def stop(self) -> None:
        self.stopped = True
        self.stopping.set()
        self.changed.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(PROBE_TIMEOUT + 1.0)

    # -- input ---------------------------------------------------------------
    def add(self, address: str, infos: list[WaitInfo]) -> None:
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
                self.broken = {k for k in self.broken if k[0] != address or k[1] not in gone}

    def forget_process(self, address: str) -> None:
        """A process is gone: so are its waits."""
        with self.lock:
            for key in [k for k in self.remote if k[0] == address]:
                del self.remote[key]
            self.broken = {k for k in self.broken if k[0] != address}

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
            if kind in (ASK, CALL):
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
        if edge.kind in ("spawn", "restart"):
            return f"{waiter} {edge.kind}s {target} and waits for its on_start"
        if edge.kind == HELD:
            return f"{waiter.partition(' (pid')[0]} is held by {self.member(edge.target, '')}"
        if edge.kind == "stack":
            return (f"{waiter} waits for {target}'s handler to return (it runs nested "
                    "on the same thread)")
        return f"{waiter} waits for the node ({edge.what})"

    def graph(self) -> list[dict[str, Any]]:
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

    # -- checking -------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopped:
            timeout = None
            if self.retry_at != math.inf:
                timeout = max(0.0, self.retry_at - time.monotonic())
            if self.quiescence is not None or self.remote:
                period = self.report_after if self.delay is not None else self.quiescence / 4
                timeout = period if timeout is None else min(timeout, period)
            self.changed.wait(timeout)
            self.changed.clear()
            if self.stopped:
                return
            try:
                if self.delay is not None:
                    self.check_cycles()
                if self.quiescence is not None and self.quiet_check is not None:
                    self.quiet_check()
            except Exception:
                if not self.stopped:
                    log.exception("the deadlock detector failed a check")

    def check_cycles(self) -> None:
        self.retry_at = math.inf
        now = time.monotonic()
        skip = {key for key, until in self.skip.items() if until > now}
        edges: list[Edge] = []
        for _ in range(20):  # several cycles may have formed at once
            edges = self.edges()
            with self.lock:
                excluded = self.broken | skip
            cycle = self.find_cycle(edges, excluded)
            if cycle is None:
                break
            transient, permanent = self.confirm(cycle)
            if not transient and not permanent:
                if self.break_cycle(cycle):
                    continue
                transient = [max(cycle, key=lambda e: e.since)]
            # look past the edges that failed (another cycle may be real),
            # and at them again later: soon, then less and less often
            for edge in permanent:
                key = edge.key
                self.skip[key] = math.inf  # until the wait ends
                skip.add(key)
            for edge in transient:
                key = edge.key
                tries = self.tries.get(key, 0)
                self.tries[key] = tries + 1
                until = now + min(1.0, RETRY * 2 ** tries)
                self.skip[key] = until
                self.retry_at = min(self.retry_at, until)
                skip.add(key)
        live = {e.key for e in edges}
        for table in (self.skip, self.tries):
            for key in [k for k in table if k not in live]:
                del table[key]

    def confirm(self, cycle: list[Edge]) -> tuple[list[Edge], list[Edge]]:
        """Ask the processes of the cycle whether each edge still holds (see
        module doc). Returns the edges that do not hold, for now (a reply
        or a request in flight) and for good (a deferred reply, which any
        thread may send); both empty: the cycle is real."""
        runtime = self.runtime
        wait_checks: dict[str, list[tuple[Edge, int, int]]] = collections.defaultdict(list)
        request_checks: dict[str, list[tuple[Edge, PendingRequest]]] = \
            collections.defaultdict(list)
        transient: list[Edge] = []
        permanent: list[Edge] = []
        for edge in cycle:
            for i, (address, wait_id) in enumerate(edge.checks):
                # an ask must still lack its reply; a stack frame must merely be there
                need = WAITING if i == 0 and edge.kind != "stack" else ANSWERED
                wait_checks[address].append((edge, wait_id, need))
            if edge.pending is not None:
                address = self.process_of(edge.pending.uid)
                if address is None or address == runtime.address:
                    transient.append(edge)
                else:
                    request_checks[address].append((edge, edge.pending))
        if transient:
            return transient, permanent
        futures = {}
        for address in set(wait_checks) | set(request_checks):
            ids = [wait_id for _, wait_id, _ in wait_checks.get(address, [])]
            if address == runtime.address:
                futures[address] = P.ProbeAnswer(runtime.waits.probe(ids), [])
                continue
            requests = [request for _, request in request_checks.get(address, [])]
            futures[address] = runtime.ask_service(address, P.Probe(ids, requests))
        for address, future in futures.items():
            try:
                answer = future if isinstance(future, P.ProbeAnswer) else \
                    P.ProbeAnswer(*future.result(PROBE_TIMEOUT))
                states, requests = answer.wait_states, answer.request_states
            except Exception:  # no answer: confirms nothing
                states, requests = [GONE] * len(wait_checks.get(address, [])), \
                    [ABSENT] * len(request_checks.get(address, []))
            for (edge, _, need), state in zip(wait_checks.get(address, []), states):
                if state < need:
                    transient.append(edge)
            for (edge, _), state in zip(request_checks.get(address, []), requests):
                if state == BOUND:
                    continue  # only a member of the cycle could answer it
                if state == DEFERRED:
                    permanent.append(edge)
                elif state != QUEUED:
                    transient.append(edge)
        return transient, permanent

    def process_of(self, uid: Any) -> str | None:
        record = self.registry.get(uid) if isinstance(uid, int) else None
        if record is None or record.host is None or not record.host.alive:
            return None
        return record.host.address

    def break_cycle(self, cycle: list[Edge]) -> bool:
        """Fail the youngest ask of a confirmed cycle; False if that did not
        happen (its reply or its timeout came first)."""
        runtime = self.runtime
        victims = [e for e in cycle if e.kind in (ASK, CALL)]
        if not victims:
            with self.lock:  # nothing can be failed: report once
                self.broken.update(e.key for e in cycle)
            log.error("deadlock that no ask can break: %s",
                      " -> ".join(self.text(e) for e in cycle))
            return True
        victim = max(victims, key=lambda e: e.since)
        target = self.process_of(victim.target)
        if target is None:
            return False
        # Withdraw the request first: it will never be handled. It is
        # always still queued (the youngest request closes the cycle).
        try:
            withdrawn = runtime.ask_service(target, P.Cancel(
                victim.target, victim.address, victim.call_id)).result(PROBE_TIMEOUT)
        except Exception:
            withdrawn = False
        if not withdrawn:
            return False
        at = cycle.index(victim)  # the cycle as text, closed by the victim's wait
        steps = [self.text(e) for e in cycle[at + 1:] + cycle[:at + 1]]
        message = (f"deadlock: {' -> '.join(steps)}. "
                   f"This wait is the youngest of the cycle and fails to break it; the "
                   f"others go on.")
        error = DeadlockError(message, steps)
        # filed before the victim learns it: whoever catches the error finds it
        report = {"cycle": steps, "victim": self.text(victim), "time": time.time()}
        self.reports.append(report)
        if victim.address == runtime.address:
            failed = runtime.waits.fail(victim.wait_id, error)
        else:
            try:
                failed = runtime.ask_service(victim.address, P.FailWait(
                    victim.wait_id, message, steps)).result(PROBE_TIMEOUT)
            except Exception:
                failed = False
        with self.lock:
            self.broken.add(victim.key)
        if failed:
            log.warning("%s", message)
        else:  # its reply or its timeout came first: not a report after all
            with contextlib.suppress(ValueError):
                self.reports.remove(report)
        return True


__all__ = ["Detector"]
