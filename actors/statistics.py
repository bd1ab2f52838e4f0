"""Per-actor statistics, gathered from every host at once.

Each host keeps, per actor, the depth of its mailbox and the messages
taken from it (one integer increment per message); the node asks every
live host for them at once (``Stats``) under one deadline. A host whose
loop is inside a handler that does not return in time leaves its actors'
counters None: a busy actor shows as busy, and never holds the others up.
``ActorSystem.statistics`` and ``actors top`` read this.
"""

from __future__ import annotations

import time
from typing import Any

from actors import protocol as P
from actors.errors import ActorDeadError, AskTimeout
from actors.launcher import Launcher
from actors.registry import Registry
from actors.runtime import Runtime

__all__ = ["collect", "counters"]


def collect(runtime: Runtime, registry: Registry, launcher: Launcher,
            timeout: float) -> list[dict[str, Any]]:
    """One dict per live actor, in tree order (parents first, in start
    order): ``name``, ``uid``, ``pid``, ``mailbox``, ``handled``, ``peak``."""
    hosts = [h for h in launcher.ready_hosts() if h.uids]
    asks = [(host, runtime.ask_service(host.address, P.Stats())) for host in hosts]
    deadline = time.monotonic() + timeout
    counts: dict[int, P.ActorStats] = {}
    for host, future in asks:
        try:
            rows = future.result(max(0.0, deadline - time.monotonic()))
        except (AskTimeout, ActorDeadError):
            continue  # busy in a handler, or gone meanwhile
        for row in rows:
            stats = P.ActorStats(*row)
            record = registry.get(stats.uid)
            if record is not None and record.host is host:
                counts[stats.uid] = stats
    found: list[dict[str, Any]] = []
    with registry.lock:
        def walk(uids: list[int]) -> None:
            for uid in uids:
                record = registry.get(uid)
                if record is None or record.ref is None:
                    continue
                stats = counts.get(uid)
                found.append({"name": record.name, "uid": uid, "pid": record.pid,
                              "mailbox": stats.mailbox if stats else None,
                              "handled": stats.handled if stats else None,
                              "peak": stats.peak if stats else None})
                walk(record.children)
        walk(registry.top)
    return found


def counters(runtime: Runtime, launcher: Launcher, timeout: float) -> dict[str, int]:
    """What the node and every process it started dropped, and why, summed
    (a process that does not answer within ``timeout`` is left out), with
    the node's count of dead letters (every process reports its own)."""
    total = dict(runtime.counters())
    asks = [runtime.ask_service(host.address, P.Counters()) for host in launcher.ready_hosts()]
    deadline = time.monotonic() + timeout
    for future in asks:
        try:
            found = future.result(max(0.0, deadline - time.monotonic()))
        except (AskTimeout, ActorDeadError):
            continue
        for key, value in found.items():
            if key in total and type(value) is int:
                total[key] += value
    total["dead_letters"] = runtime.dead_letters
    return total
