"""Spawn latency benchmarks (imported by ``benchmarks.run``).

* **spawn, warm**: ``system.spawn`` of an unsupervised actor, timed in the
  main program until the ref is back (its ``on_start`` ran), in a system
  that has spawned before; the spare pool is at rest (full) before each
  spawn. The actor is stopped after each sample, untimed.
* **spawn burst**: 50 unsupervised spawns back to back from the main
  program, one after the other; the figure is the whole burst's time in
  ms. Every actor is stopped afterwards, untimed, and the pool is left to
  come back to rest before the next sample.
"""

from __future__ import annotations

import time
from typing import Any

import actors
from benchmarks import workers

BURST = 50
READY_TIMEOUT = 60.0
REPLY_TIMEOUT = 120.0


def pool_at_rest(system: actors.ActorSystem) -> None:
    """Wait until the spare pool holds its resting size, and nothing is
    starting (the node's launcher; works on code before and after the
    demand-sized pool)."""
    launcher = system._node.launcher
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        making = getattr(launcher, "making", 0)
        if launcher.active or hasattr(launcher, "target"):
            full = len(launcher.pool) >= launcher.size and making == 0
        else:
            full = True  # old code: no pool before a supervised actor
        if full:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the spare pool held {len(launcher.pool)} of {launcher.size} "
                               f"processes after {READY_TIMEOUT} s")
        time.sleep(0.002)


class SpawnSystem:
    """One ActorSystem (default settings) shared by the spawn benchmarks of
    one transport."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.system: actors.ActorSystem | None = None

    def setup(self, stack: Any) -> actors.ActorSystem:
        if self.system is None:
            self.system = stack.enter_context(actors.ActorSystem(transport=self.transport))
            ref = self.system.spawn(workers.Counter)  # the system is warm from here on
            ref.stop()
        return self.system

    def spawn_ms(self) -> float:
        system = self.system
        assert system is not None
        pool_at_rest(system)
        t0 = time.perf_counter()
        ref = system.spawn(workers.Counter)
        elapsed = time.perf_counter() - t0
        ref.ask(workers.COUNT if hasattr(workers, "COUNT") else ("count",), timeout=REPLY_TIMEOUT)
        ref.stop()
        return elapsed * 1e3

    def burst_ms(self, n: int) -> float:
        system = self.system
        assert system is not None
        pool_at_rest(system)
        t0 = time.perf_counter()
        refs = [system.spawn(workers.Counter) for _ in range(n)]
        elapsed = time.perf_counter() - t0
        for ref in refs:
            ref.stop()
        pool_at_rest(system)
        return elapsed * 1e3
