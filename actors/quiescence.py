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

import logging
from typing import TYPE_CHECKING, Any

from actors import protocol as P
from actors.errors import DeadlockError

if TYPE_CHECKING:
    from actors.deadlock import Detector

log = logging.getLogger("actors")

PROBE_TIMEOUT = 1.0


def check_quiet(detector: Detector) -> None:
    """Fail the main program's old waits if nothing can ever answer them."""
    node = detector.node
    waits = [w for w in node.waits.old(detector.quiescence) if w.future is not None]
    if not waits:
        return
    first = quiet_round(detector)
    if first is None:
        return
    settle = min(0.1, detector.quiescence / 4)
    if detector._stopping.wait(settle):
        return
    second = quiet_round(detector)
    if second is None or second[0] != first[0]:
        return
    held = second[1]
    steps = [detector.text(e) for e in sorted(detector.edges(), key=lambda e: e.since)]
    steps += [f"{detector.member(uid)} holds {n} deferred repl{'y' if n == 1 else 'ies'}"
              for uid, n in held]
    for wait in waits:
        if wait.id not in node.waits.active:
            continue
        message = ("no progress is possible: every actor is idle or blocked and no "
                   "message is in flight, so nothing will ever answer this wait. "
                   f"Waiting: {'; '.join(steps)}")
        if node.waits.fail(wait.id, DeadlockError(message, steps)):
            log.warning("%s", message)

def quiet_round(detector: Detector) -> tuple[Any, list[list[int]]] | None:
    """Every process's message counts, if every one is idle or blocked."""
    node = detector.node
    with node.lock:
        if any(r.state != "running" for r in node.actors.values()):
            return None  # a start, a restart or a stop is in progress
        hosts = [h for h in node.hosts.values() if h.alive and h.hello.done()]
    if node.workers.busy() or node._soon or not node.idle_transport(poll=False):
        return None
    asked = []
    for host in hosts:
        asked.append((host, node.ask(node.service_at(host.address), (P.OP_QUIET,))))
        detector.quiet_sent += 1
    counts: dict[Any, tuple[int, int]] = {}
    held: list[list[int]] = []
    for host, future in asked:
        try:
            idle, sent, received, parked = future.result(PROBE_TIMEOUT)
        except Exception:
            return None
        detector.quiet_replies += 1
        if not idle:
            return None
        counts[host.number] = (sent, received)
        held += parked
    counts["node"] = (node.sent_count() - detector.quiet_sent,
                      node.received - detector.quiet_replies)
    return counts, held


__all__ = ["check_quiet"]
