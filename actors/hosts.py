"""Host processes as the node sees them: starting them, and warm spares.

Every host starts *blank*: a fresh interpreter (spawn method) with the
runtime imported, its inbox bound, waiting for the node to tell it which
actor to start (``OP_START``). A spawn then costs one message round trip
when a blank host is at hand, and an interpreter start-up when none is.

The pool keeps up to ``size`` blank hosts ready once it is switched on (the
first supervised actor switches it on; ``ActorSystem(spares=0)`` never
does). Taking one schedules its replacement in the background, so the pool
refills itself and never holds more than ``size``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from actors.errors import SpawnError
from actors.process import host_main

if TYPE_CHECKING:
    from actors.node import Node

log = logging.getLogger("actors")


class HostRecord:
    """One host process: its address, the actors in it, how it ended."""

    def __init__(self, number: int, address: str, process: Any) -> None:
        self.number = number
        self.address = address
        self.process = process
        self.pid: int | None = None
        self.uids: set[int] = set()
        self.alive = True
        self.exited = threading.Event()
        self.hello: concurrent.futures.Future = concurrent.futures.Future()
        self.link: Any = None
        # addresses of dead processes this one took over (restarted actors)
        self.aliases: list[str] = []
        self.exit_reason = ""
        self.reaper: threading.Timer | None = None


class HostStarter:
    """Starts blank hosts for the node, and keeps the pool of spares."""

    def __init__(self, node: Node, size: int) -> None:
        self.node = node
        self.size = size
        self.active = False
        self.pool: collections.deque[HostRecord] = collections.deque()
        self.making = 0
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.preload: set[str] = set()  # modules spares import ahead of time

    def start(self, label: str) -> HostRecord:
        """A new blank host, ready for OP_START (blocks up to the node's
        spawn timeout)."""
        node = self.node
        number = next(node._host_numbers)
        bind = node._host_bind(number)
        boot = {"node_id": node.node_id, "node_address": node.address,
                "transport": node.transport, "bind": bind, "number": number,
                "name": label, "log_level": node.log_level, "parent_pid": os.getpid(),
                "counters": node.counters_path(number),
                "preload": sorted(self.preload), "hold_limit": node.hold_limit,
                "deadlock": node.deadlock_detection, "quiescence": node.quiescence}
        child_conn = parent_conn = None
        if node.transport == "pipe":
            parent_conn, child_conn = node.context.Pipe(duplex=True)
        process = node.context.Process(target=host_main, args=(boot, child_conn),
                                       name=f"actors:{label}")
        host = HostRecord(number, bind, process)
        node.hellos[number] = host
        try:
            node.spawner.submit(process.start).result()
            host.pid = process.pid
            node.started_pids.add(process.pid)
            if child_conn is not None:
                child_conn.close()
                host.link = node.network.add_link(bind, parent_conn)
            with node.lock:
                node.hosts[number] = host
            node.call_soon(lambda: node._watch(host))
            try:
                host.address = host.hello.result(node.spawn_timeout)
            except concurrent.futures.TimeoutError:
                process.kill()
                raise SpawnError(f"a process for {label} did not start within "
                                 f"{node.spawn_timeout} s") from None
        finally:
            node.hellos.pop(number, None)
        return host

    # -- the pool ----------------------------------------------------------
    def take(self) -> HostRecord | None:
        """A ready spare, or None; its replacement starts in the background.
        When none is ready but one is starting, wait for it rather than
        start one more interpreter on a machine already busy starting one."""
        host = None
        with self.lock:
            while host is None:
                while self.pool:
                    candidate = self.pool.popleft()
                    if candidate.alive:
                        host = candidate
                        break
                if host is not None or self.making == 0 or self.node.shutting_down:
                    break
                self.changed.wait(self.node.spawn_timeout)
        if self.active:
            self.refill()
        return host

    def activate(self) -> None:
        if self.size > 0 and not self.active:
            self.active = True
            self.refill()

    def refill(self) -> None:
        node = self.node
        with self.lock:
            wanted = self.size - len(self.pool) - self.making
            if node.shutting_down or wanted <= 0:
                return
            self.making += wanted
        for _ in range(wanted):
            node.workers.submit(self._make)

    def _make(self) -> None:
        node = self.node
        try:
            host = self.start("spare")
        except Exception as e:
            if not node.shutting_down:
                log.warning("could not start a spare process: %s", e)
            with self.lock:
                self.making -= 1
                self.changed.notify_all()
            return
        with self.lock:
            self.making -= 1
            keep = not node.shutting_down
            if keep:
                self.pool.append(host)
            self.changed.notify_all()
        if not keep:
            node.exit_host(host)

    def forget(self, host: HostRecord) -> bool:
        """A host died: drop it from the pool (True if it was a spare)."""
        with self.lock:
            if host in self.pool:
                self.pool.remove(host)
                was_spare = True
            else:
                was_spare = False
        if was_spare and self.active and not self.node.shutting_down:
            self.refill()
        return was_spare


__all__ = ["HostRecord", "HostStarter"]
