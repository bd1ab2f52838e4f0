"""Endings: what the node does when an actor or its process ends.

Two kinds of news reach the node. A host reports that an actor ended
(``Stopped``: a stop, or a crash during a tell); the node's loop sees a
process's sentinel fire (its exit, a kill, a segfault). For an actor that
is not supervised either is its end for good (:meth:`Endings.finalize`):
every process learns it (asks to it fail at once), watchers are told,
what it started is stopped. A supervised actor's slot is *held* instead
(``actors.slots``) and, once its process is gone and its children are
stopped, its supervisor gets a :class:`ChildExit` and decides.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from actors import protocol as P
from actors.config import SystemConfig
from actors.counters import MailboxCounters
from actors.errors import ActorDeadError, SpawnError
from actors.launcher import HostProcess, Launcher, exit_reason
from actors.notices import ChildExit
from actors.registry import RUNNING, STARTING, ActorRecord, Ending, Registry
from actors.runtime import Runtime
from actors.slots import Broadcast, Slots
from actors.stopping import Stopper
from actors.watches import Watches
from actors.workers import Workers

__all__ = ["Endings"]

log = logging.getLogger("actors")


class Endings:
    """The node's handling of ends (see module doc).

    Args:
        forget_process: the deadlock detector forgets a process's waits.
        fail: the top of a supervision tree failed (shut the system down).
    """

    def __init__(self, config: SystemConfig, runtime: Runtime, registry: Registry,
                 launcher: Launcher, slots: Slots, watches: Watches, stopper: Stopper,
                 workers: Workers, broadcast: Broadcast, forget_process: Callable[[str], None],
                 fail: Callable[[str], None], shutting_down: Callable[[], bool]) -> None:
        self.config = config
        self.runtime = runtime
        self.registry = registry
        self.launcher = launcher
        self.slots = slots
        self.watches = watches
        self.stopper = stopper
        self.workers = workers
        self._broadcast = broadcast
        self._forget_process = forget_process
        self._fail = fail
        self._shutting_down = shutting_down

    def _restartable(self, record: ActorRecord) -> bool:
        return record.supervised and not record.final and not self._shutting_down()

    # -- news from hosts ----------------------------------------------------------------
    def actor_stopped(self, op: P.Stopped) -> None:
        """A host reported that an actor ended (its process may live on)."""
        record = self.registry.get(op.uid)
        if (record is None or record.state == STARTING or record.host is None
                or record.host.address != op.address):
            return  # unknown, or news of an incarnation already replaced
        if self._restartable(record):
            # Its process exits next (a supervised actor is alone in it); the
            # supervisor hears of it then, when the address is free.
            record.ended = Ending(op.reason, op.crashed, op.exc)
            self.slots.hold(record, op.reason)
            host = record.host
            if host is not None and host.reaper is None:
                # its supervisor waits for the process to be gone: make sure
                # it goes (a non-daemon thread of user code could keep it)
                host.reaper = threading.Timer(self.config.stop_timeout, self._reap, (host,))
                host.reaper.daemon = True
                host.reaper.start()
        else:
            self.actor_ended(op.uid, op.reason, op.crashed, logged=True)

    def hung(self, op: P.Hung) -> None:
        """A host says an actor's handler ran past its hang_timeout (its
        stacks are logged): end the process; the supervisor restarts the
        actor as crashed with reason "hung"."""
        record = self.registry.get(op.uid)
        if record is None or record.host is None or record.host.address != op.address:
            return
        host = record.host
        record.hung = op.message  # a start in progress reports it (see Starter.start)
        self.actor_stopped(P.Stopped(op.uid, "hung", True,
                                     ActorDeadError(op.message, None, "hung"), op.address))
        try:
            host.process.kill()
        except (OSError, ValueError):
            pass

    def _reap(self, host: HostProcess) -> None:
        if host.alive:
            log.warning("process %s did not exit after its supervised actor ended: killing it",
                        host.pid)
            self.launcher.kill(host)

    # -- a process ended (on the loop thread) ---------------------------------------------
    def process_exited(self, host: HostProcess) -> None:
        # The sentinel fires when the child's fds close, a moment before it
        # can be reaped; waitpid now returns within that moment.
        host.process.join(2.0)
        if host.process.exitcode == 0 and host.uids:
            # An orderly exit reports each actor's end before exiting; those
            # reports may still be in flight behind the sentinel (its link or
            # inbox is still polled here).
            self.runtime.loop.pump_until(
                lambda: not any(self._running_in(host, uid) for uid in host.uids),
                time.monotonic() + 1.0)
        reason = exit_reason(host.process.exitcode)
        host.alive = False
        host.exit_reason = reason
        counters = self.launcher.counters_path(host.number)
        lost = MailboxCounters.lost(counters)
        if lost:
            self.runtime.lose(lost)
            log.warning("%d messages were lost in the mailboxes of pid %s (%s)",
                        lost, host.pid, reason)
        try:
            os.unlink(counters)
        except OSError:
            pass
        self._forget_process(host.address)
        if host.link is not None:
            self.runtime.loop.remove_source(host.link)
            host.link.close()
        self.launcher.forget(host)
        if not host.hello.done():
            cause = host.start_error()
            host.hello.set_exception(SpawnError(
                f"a new process died while starting ({reason})" + (f": {cause}" if cause else "")))
        for uid in list(host.uids):
            record = self.registry.get(uid)
            if record is None or record.state == STARTING or record.host is not host:
                continue  # a spawn in progress handles its own failure
            host.uids.discard(uid)
            if self._restartable(record):
                logged = record.ended is not None  # its host reported (and logged) it
                ended = record.ended or Ending(reason, True, None)
                self.slots.hold(record, ended.reason)
                self._incarnation_over(record, ended, logged=logged)
            else:
                self.actor_ended(uid, reason, crashed=True, logged=False)
        if host.reaper is not None:
            host.reaper.cancel()
        self.slots.process_gone(host, reason)
        host.exited.set()

    def _running_in(self, host: HostProcess, uid: int) -> bool:
        record = self.registry.get(uid)
        # STARTING too: a start that failed answers just before its process
        # exits (an orderly exit); that answer, not the death, is the cause
        return (record is not None and record.host is host
                and record.state in (RUNNING, STARTING) and record.ended is None)

    def _incarnation_over(self, record: ActorRecord, ended: Ending, logged: bool) -> None:
        """The process of a held slot is gone: stop what its incarnation
        started, then let its supervisor decide (unless it asked for this)."""
        reason, crashed, exc = ended.reason, ended.crashed, ended.exc
        pid = record.pid
        record.host = None
        record.ended = None
        record.last_exit = reason
        record.last_crashed = crashed
        if crashed and not logged and not self._shutting_down() and not record.expect_exit:
            log.error("supervised actor %s (pid %s) died: %s", record.name, pid, reason)
        # Read now: once settled, its supervisor may restart it at once.
        incarnation, expected = record.incarnation, record.expect_exit
        record.expect_exit = False
        stopper = self.stopper

        def finish() -> None:
            try:
                stopper.stop_children(record.uid, None)
            finally:
                record.settled.set()
            if expected:  # its supervisor stopped it, and restarts it
                return
            parent = self.registry.get(record.parent) if record.parent is not None else None
            if parent is None or parent.ref is None or self._shutting_down():
                self.finalize(record, reason, crashed)
                return
            notice = ChildExit(record.uid, incarnation, reason, crashed, exc)
            runtime = self.runtime
            runtime.post(parent.ref.address,
                         runtime.encode(P.Tell.wire(parent.uid, notice)))

        if record.children:  # (settled was cleared by Slots.hold)
            self.workers.submit(finish)
        else:
            finish()

    # -- ends for good ----------------------------------------------------------------------
    def actor_ended(self, uid: int, reason: str, crashed: bool, logged: bool) -> None:
        """An actor is gone for good."""
        record = self.registry.get(uid)
        if record is None or record.state == STARTING:
            return
        if crashed and not logged and not self._shutting_down() \
                and not record.spec.options.quiet:
            log.error("actor %s (pid %s) died: %s", record.label, record.pid, reason)
        self.finalize(record, reason, crashed)

    def finalize(self, record: ActorRecord, reason: str, crashed: bool) -> None:
        """``record`` is dead for good: every runtime learns it, held
        messages become dead letters, watchers are told, what it started
        is stopped."""
        if self.registry.get(record.uid) is not record:
            return
        self.registry.forget(record)
        record.final = True
        record.settled.set()
        if crashed:
            self.registry.crashed.add(record.uid)
        self.runtime.mark_dead([record.uid], reason)
        self._broadcast(P.Down([record.uid], reason), skip=record.host)
        self.slots.release(record)
        self.watches.ended(record, reason, crashed)
        if record.is_supervisor and record.parent is None and crashed \
                and not self._shutting_down():
            self._fail(f"the top-level supervisor {record.name or record.uid} failed "
                       f"({reason}): shutting the actor system down")
        if record.children:
            self.workers.submit(self.stopper.stop_all, list(record.children))
