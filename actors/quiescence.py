"""Quiescence (opt-in). When a thread of the main program has waited longer
than the grace period, the node asks every process whether all its actors
are idle (empty mailbox) or blocked in a wait, and nothing is unsent or
unread, with its message counts; twice, a moment apart. When both rounds
say so and no count moved between them, nothing can ever answer the main
program's waits: they fail with DeadlockError listing what every member
waits on. Threads of the main program and threads that user code starts
are invisible to this check, which is why it is opt-in.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from actors import protocol as P
from actors.deadlock import Detector
from actors.errors import DeadlockError
from actors.launcher import Launcher
from actors.registry import RUNNING, Registry
from actors.runtime import Runtime
from actors.workers import Workers

__all__ = ["Quiescence", "node_idle"]

log = logging.getLogger("actors")

PROBE_TIMEOUT = 1.0



def node_idle(runtime: Runtime, call_soon: Callable[[Callable[[], None]], None]
              ) -> Callable[[], bool]:
    """Whether nothing is unsent, unread or unrelayed in the node (asked of
    the thread that reads its inbox, through ``call_soon``: a poll from
    another thread is unsafe)."""
    def idle() -> bool:
        answer: concurrent.futures.Future = concurrent.futures.Future()
        links = getattr(runtime.network, "links", {})
        call_soon(lambda: answer.set_result(
            runtime.idle(poll=True) and not any(link._queue for link in list(links.values()))))
        try:
            return answer.result(1.0)
        except concurrent.futures.TimeoutError:
            return False
    return idle

class Round(NamedTuple):
    """What one round of the check saw."""
    counts: dict[Any, tuple[int, int]]   # per process: (sent, received)
    held: list[list[int]]                # [uid, deferred replies held]
    waits: list[P.WaitInfo]


class Quiescence:
    """The opt-in check (see module doc), run by the detector's thread.

    Args:
        node_idle: nothing unsent, unread or unrelayed in the node (checked
            by the thread that reads the node's inbox).
    """

    def __init__(self, detector: Detector, runtime: Runtime, registry: Registry,
                 launcher: Launcher, workers: Workers, node_idle: Callable[[], bool]) -> None:
        self.detector = detector
        self.runtime = runtime
        self.registry = registry
        self.launcher = launcher
        self.workers = workers
        self.node_idle = node_idle
        self.grace: float = detector.quiescence or 0.0
        self.sent = 0      # probes this check sent (not counted as traffic)
        self.replies = 0
        self.next = 0.0    # no check before then

    def check(self) -> None:
        """Fail the main program's old waits if nothing can ever answer them."""
        detector, waits = self.detector, self.runtime.waits
        now = time.monotonic()
        if now < self.next:
            return
        old = [w for w in waits.old(self.grace) if w.future is not None]
        if not old:
            return
        self.next = now + self.grace / 4
        first = self.round()
        if first is None:
            return
        settle = min(0.1, self.grace / 4)
        if detector.stopping.wait(settle):
            return
        second = self.round()
        if second is None or second.counts != first.counts:
            return
        held, infos = second.held, second.waits
        infos += [w.info(self.runtime.address, waits.brief) for w in waits.old(0)]
        edges = sorted(detector.graph.edges(infos), key=lambda e: e.since)
        steps = [detector.graph.text(e) for e in edges]
        steps += [f"{detector.graph.member(uid)} holds {n} deferred repl{'y' if n == 1 else 'ies'}"
                  for uid, n in held]
        for wait in old:
            if wait.id not in waits.active:
                continue
            message = ("no progress is possible: every actor is idle or blocked and no "
                       "message is in flight, so nothing will ever answer this wait. "
                       f"Waiting: {'; '.join(steps)}")
            if waits.fail(wait.id, DeadlockError(message, steps)):
                log.warning("%s", message)

    def round(self) -> Round | None:
        """Every process's message counts, the deferred replies held and the
        waits, if every process is idle or blocked (else None)."""
        if any(r.state != RUNNING for r in self.registry.records()):
            return None  # a start, a restart or a stop is in progress
        hosts = self.launcher.ready_hosts()
        if self.workers.busy() or not self.node_idle():
            return None
        runtime = self.runtime
        asked = []
        for host in hosts:
            asked.append((host, runtime.ask_service(host.address, P.Quiet())))
            self.sent += 1
        counts: dict[Any, tuple[int, int]] = {}
        held: list[list[int]] = []
        infos: list[P.WaitInfo] = []
        for host, future in asked:
            try:
                report = P.QuietReport(*future.result(PROBE_TIMEOUT))
            except Exception:
                return None
            self.replies += 1
            if not report.idle:
                return None
            counts[host.number] = (report.sent, report.received)
            held += report.held
            infos += [P.WaitInfo(*info) for info in report.waits]
        counts["node"] = (runtime.outboxes.sent_count() - self.sent,
                          runtime.loop.received - self.replies)
        return Round(counts, held, infos)
