"""Deadlock detection: finding, confirming and breaking cycles of waits.

The graph is ``actors.waitgraph``: edges between actors and threads of the
main program, built from the blocking waits every process reports. An
actor unblocks only when all of its edges are satisfied, so any cycle is a
deadlock, if it is real.

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
import threading
import time
from typing import Any

from actors import protocol as P
from actors.errors import DeadlockError
from actors.protocol import PendingRequest
from actors.registry import Registry
from actors.runtime import Runtime
from actors.waitgraph import Edge, EdgeKey, WaitGraph
from actors.waits import (
    ABSENT,
    ANSWERED,
    ASK,
    BOUND,
    CALL,
    DEFERRED,
    GONE,
    HELD,
    QUEUED,
    WAITING,
)

log = logging.getLogger("actors")

PROBE_TIMEOUT = 1.0   # a process that does not answer a probe confirms nothing
RETRY = 0.02          # look again at an unconfirmed cycle this soon


class Detector:
    """The node's wait-for graph and the thread that checks it."""

    def __init__(self, runtime: Runtime, registry: Registry, delay: float | None,
                 quiescence: float | None) -> None:
        self.runtime = runtime
        self.registry = registry
        self.delay = delay
        self.report_after = delay / 4 if delay is not None else math.inf
        self.quiescence = quiescence
        # edges that failed a confirmation: not looked at again until then
        self.skip: dict[EdgeKey, float] = {}
        self.tries: dict[EdgeKey, int] = {}
        self.reports: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)
        self.changed = threading.Event()
        self.graph = WaitGraph(runtime, registry, self.report_after, self.changed)
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

    # -- checking -------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopped:
            timeout = None
            if self.retry_at != math.inf:
                timeout = max(0.0, self.retry_at - time.monotonic())
            if self.quiescence is not None or self.graph.remote:
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
            graph = self.graph
            edges = graph.edges()
            with graph.lock:
                excluded = graph.broken | skip
            cycle = graph.find_cycle(edges, excluded)
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
        held = {edge.waiter for edge in cycle if edge.kind == HELD}
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
                elif state != QUEUED or edge.target in held:
                    # A request merely queued at a member that is blocked only
                    # for its parked requests (a held edge: a lock's server)
                    # will be handled: that member reads its mailbox on, and
                    # the holder's release may be queued right before it.
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
            with self.graph.lock:  # nothing can be failed: report once
                self.graph.broken.update(e.key for e in cycle)
            log.error("deadlock that no ask can break: %s",
                      " -> ".join(self.graph.text(e) for e in cycle))
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
        steps = [self.graph.text(e) for e in cycle[at + 1:] + cycle[:at + 1]]
        message = (f"deadlock: {' -> '.join(steps)}. "
                   f"This wait is the youngest of the cycle and fails to break it; the "
                   f"others go on.")
        error = DeadlockError(message, steps)
        # filed before the victim learns it: whoever catches the error finds it
        report = {"cycle": steps, "victim": self.graph.text(victim), "time": time.time()}
        self.reports.append(report)
        if victim.address == runtime.address:
            failed = runtime.waits.fail(victim.wait_id, error)
        else:
            try:
                failed = runtime.ask_service(victim.address, P.FailWait(
                    victim.wait_id, message, steps)).result(PROBE_TIMEOUT)
            except Exception:
                failed = False
        with self.graph.lock:
            self.graph.broken.add(victim.key)
        if failed:
            log.warning("%s", message)
        else:  # its reply or its timeout came first: not a report after all
            with contextlib.suppress(ValueError):
                self.reports.remove(report)
        return True


__all__ = ["Detector"]
