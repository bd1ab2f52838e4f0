"""Stopping actors in order: children first, the last started first.

A stop is a message (``Stop``) that reaches the actor's host behind what
its sender sent before, and takes its turn in the mailbox. The host then
asks the node to stop the actor's children (``StopChildren``), runs its
``on_stop`` and reports the end. Each actor of a subtree gets its own
shutdown time (its child spec's ``shutdown``, else the caller's timeout,
else the system's ``stop_timeout``) before its process is killed; a
``brutal_kill`` child is killed at once. These calls block: they run on
the node's worker threads or the main program's thread, never on the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from actors import protocol as P
from actors.config import SystemConfig
from actors.errors import ActorDeadError, AskTimeout
from actors.launcher import Launcher
from actors.registry import HELD, RUNNING, STARTING, ActorRecord, Registry
from actors.runtime import Runtime
from actors.slots import Slots

__all__ = ["Stopper"]

log = logging.getLogger("actors")

Finalize = Callable[[ActorRecord, str, bool], None]


class Stopper:
    """Orderly stops, terminations of supervised children, and settling.

    Args:
        finalize: declares a record dead for good (``Endings.finalize``).
    """

    def __init__(self, config: SystemConfig, runtime: Runtime, registry: Registry,
                 launcher: Launcher, slots: Slots, finalize: Finalize,
                 shutting_down: Callable[[], bool]) -> None:
        self.config = config
        self.runtime = runtime
        self.registry = registry
        self.launcher = launcher
        self.slots = slots
        self._finalize = finalize
        self._shutting_down = shutting_down
        # a cluster's (actors.cluster): stop the actors ``uid`` placed on
        # other nodes, unless they are kept for its restart
        self.stop_placed: Callable[[int, bool], None] | None = None

    # -- budgets ------------------------------------------------------------------------
    def own_timeout(self, record: ActorRecord, timeout: float | None) -> float:
        if record.shutdown is not None:
            return record.shutdown
        return self.config.stop_timeout if timeout is None else timeout

    def budget(self, uid: int, timeout: float | None) -> float:
        """How long stopping ``uid`` and its subtree may take."""
        record = self.registry.get(uid)
        if record is None:
            return 0.0
        return self.own_timeout(record, timeout) + sum(
            self.budget(child, timeout) for child in self.registry.children_of(uid))

    def settle(self, record: ActorRecord) -> None:
        """Wait until the last incarnation of ``record`` has been dealt with
        (its start answered, or its process gone and its children stopped)."""
        limit = self.config.spawn_timeout + self.budget(record.uid, None) + 5.0
        if not record.settled.wait(limit):
            log.error("actor %s did not settle within %.0f s", record.name, limit)

    # -- stopping -------------------------------------------------------------------------
    def stop(self, uid: int, timeout: float | None, final: bool = True) -> None:
        """Stop an actor and wait for it (see module doc)."""
        record = self.registry.get(uid)
        if record is None:
            return
        if final:
            record.final = True
        if record.state == STARTING:
            self.settle(record)
        if record.state == HELD:
            if final:
                self.settle(record)
                self._finalize(record, "stopped", False)
            return
        host = record.host
        if host is None or not host.alive:
            return
        if record.shutdown == 0:  # brutal_kill
            self.launcher.kill(host)
            return
        budget = self.budget(uid, timeout)
        try:
            self.runtime.ask_service(host.address, P.Stop(uid)).result(budget)
        except AskTimeout:
            log.warning("actor %s (pid %s) did not stop within %s s: killing its process",
                        record.label, host.pid, budget)
            self.launcher.kill(host)
        except ActorDeadError:
            pass
        if not host.uids:  # its last actor: wait for the process to end
            if not host.exited.wait(self.own_timeout(record, timeout)):
                log.warning("process %s did not exit after its last actor stopped: killing it",
                            host.pid)
                self.launcher.kill(host)

    def stop_children(self, uid: int, timeout: float | None) -> None:
        """Stop an actor's children, the last started first. Supervised
        children of an actor that will be restarted keep their refs."""
        record = self.registry.get(uid)
        if record is None:
            return
        keep = not record.final and record.supervised and not self._shutting_down()
        if self.stop_placed is not None:  # placed children first, the last placed first
            self.stop_placed(uid, keep)
        for child in reversed(self.registry.children_of(uid)):
            try:
                child_record = self.registry.get(child)
                if child_record is None:
                    continue
                if keep and child_record.supervised:
                    self.terminate(child, keep=True)
                else:
                    self.stop(child, timeout)
            except Exception:
                log.exception("stopping child #%d failed", child)

    def stop_all(self, uids: list[int]) -> None:
        """Stop these actors, the last first (orphans of a dead parent)."""
        for uid in reversed(uids):
            try:
                self.stop(uid, None)
            except Exception:
                log.exception("stopping child #%d failed", uid)

    def terminate(self, uid: int, keep: bool) -> bool:
        """Stop a supervised actor (its shutdown timeout, then a kill). With
        ``keep`` its ref stays valid, holding messages for a restart (its
        supervisor is not told: it asked); without, it is gone for good."""
        record = self.registry.get(uid)
        if record is None:
            return False
        self.settle(record)  # a start in progress ends first
        with record.lock:
            running = record.state == RUNNING
            if running and keep:
                record.expect_exit = True  # cleared when it starts again
        if running:
            if keep:
                self.slots.unblock(record)
            self.stop(uid, None, final=not keep)
        self.settle(record)
        current = self.registry.get(uid)
        if current is not None and not keep:  # it was down already
            self._finalize(current, current.last_exit or "stopped", current.last_crashed)
        return True
