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
from typing import TYPE_CHECKING, Any

from actors import protocol as P
from actors.errors import DeadlockError

if TYPE_CHECKING:
    from actors.deadlock import Detector
    from actors.node import Node

log = logging.getLogger("actors")

PROBE_TIMEOUT = 1.0


def check_quiet(detector: Detector) -> None:
    """Fail the main program's old waits if nothing can ever answer them."""
    node = detector.node
    now = time.monotonic()
    if now < detector.quiet_next:
        return
    waits = [w for w in node.waits.old(detector.quiescence) if w.future is not None]
    if not waits:
        return
    detector.quiet_next = now + detector.quiescence / 4
    first = quiet_round(detector)
    if first is None:
        return
    settle = min(0.1, detector.quiescence / 4)
    if detector._stopping.wait(settle):
        return
    second = quiet_round(detector)
    if second is None or second[0] != first[0]:
        return
    _, held, infos = second
    infos += [w.info(node.address) for w in node.waits.old(0)]
    edges = sorted(detector.edges(infos), key=lambda e: e.since)
    steps = [detector.text(e) for e in edges]
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


def node_idle(node: Node) -> bool:
    """Nothing unsent, unread or unrelayed in the node. Checked by the
    thread that reads the node's inbox (a poll from another thread is not
    safe), after it handled what it had read."""
    answer: concurrent.futures.Future = concurrent.futures.Future()

    def check() -> None:
        links = getattr(node.network, "links", {})
        answer.set_result(node.idle_transport(poll=True)
                          and not any(link._queue for link in list(links.values())))
    node.call_soon(check)
    try:
        return answer.result(PROBE_TIMEOUT)
    except concurrent.futures.TimeoutError:
        return False


def quiet_round(detector: Detector) -> tuple[Any, list[list[int]], list[list[Any]]] | None:
    """Every process's message counts, the deferred replies held and the
    waits, if every process is idle or blocked (else None)."""
    node = detector.node
    with node.lock:
        if any(r.state != "running" for r in node.actors.values()):
            return None  # a start, a restart or a stop is in progress
        hosts = [h for h in node.hosts.values() if h.alive and h.hello.done()]
    if node.workers.busy() or not node_idle(node):
        return None
    asked = []
    for host in hosts:
        asked.append((host, node.ask(node.service_at(host.address), (P.OP_QUIET,))))
        detector.quiet_sent += 1
    counts: dict[Any, tuple[int, int]] = {}
    held: list[list[int]] = []
    infos: list[list[Any]] = []
    for host, future in asked:
        try:
            idle, sent, received, parked, waits = future.result(PROBE_TIMEOUT)
        except Exception:
            return None
        detector.quiet_replies += 1
        if not idle:
            return None
        counts[host.number] = (sent, received)
        held += parked
        infos += waits
    counts["node"] = (node.sent_count() - detector.quiet_sent,
                      node.received - detector.quiet_replies)
    return counts, held, infos


__all__ = ["check_quiet"]
