"""The host: what every spawned process of the runtime is.

A host starts *blank* (``actors.boot``): a fresh interpreter with the
runtime imported, its inbox bound, its hello sent to the node. The node
then tells it which actor to start (``Start``); it hosts that actor (and
others colocated with it) until the last one ends, then exits.

:class:`Host` is the handler of the process's message loop: service
operations from the node go to the table in :meth:`Host.deliver`, messages
for actors go to their mailboxes (``actors.mailbox``). The process's main
thread is the loop's reader, except while an ``actors.mp.Process`` target
runs there (:meth:`run_on_main_thread`).
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from actors import childspec, notices  # noqa: F401 - the runtime's own @message types
from actors import protocol as P
from actors.actor import Actor
from actors.cell import START, Cell, LinkMark, StopMark
from actors.hostboot import HostBoot
from actors.counters import MailboxCounters
from actors.errors import ActorError, SpawnError
from actors.hang import HangWatch
from actors.hostsystem import HostSystem
from actors.logs import ForwardHandler, install
from actors.mailbox import CURRENT, Mailboxes
from actors.peers import Peers
from actors.probes import Probes
from actors.ref import ActorRef, Reply
from actors.runtime import Runtime
from transport.codec import find_class

__all__ = ["Host", "running_host"]

log = logging.getLogger("actors")

_RUNNING: list[Host] = []  # the host of this process, once one runs here


def _open_counters(path: str | None) -> MailboxCounters:
    counters = MailboxCounters(path)
    if counters.degraded:
        logging.getLogger("actors").warning(
            "mailbox counters in memory only (%s): messages lost if this process is "
            "killed will not be counted", counters.degraded)
    return counters


def running_host() -> Host | None:
    """The host of this process, or None (the main program)."""
    return _RUNNING[0] if _RUNNING else None


def _stops_through_node(runtime: Runtime, boot: HostBoot) -> Any:
    """How a host stops another node's actor: a tcp node's cluster does it."""
    if boot.curve is None:
        return None
    return lambda ref, _timeout: runtime.tell_service(boot.node_address, P.StopRemote(ref))


class Host:
    """The handler of a host process's loop (see module doc)."""

    def __init__(self, boot: HostBoot, network: Any) -> None:
        self.boot = boot
        self.name = boot.name
        self.runtime = runtime = Runtime(boot.node_id, network, self, boot.name,
                                         boot.hold_limit, remote_waits=True, token=boot.token,
                                         peers=Peers(boot.node_address), max_frame=boot.max_frame,
                                         flow_size=boot.mailbox_size, when_full=boot.when_full,
                                         send_timeout=boot.send_timeout)
        runtime.waits.configure(boot.deadlock_detection, track=boot.quiescence is not None)
        runtime.loop.busy.budget = boot.busy_wait
        runtime.remote_stop = _stops_through_node(runtime, boot)
        self.mailboxes = Mailboxes(runtime, self._report_stopped, self._stop_children,
                                   _open_counters(boot.counters), self._service)
        self.system = HostSystem(runtime, self)
        self.hangs = HangWatch(lambda: list(self.mailboxes.cells.values()), self._report_hung,
                               lambda: self._exit)
        self.started = False  # a first Start came (a blank host before)
        self._exit = False
        self._reported_dead = 0
        # threads whose blocking waits block an actor (actors.mp: a process's
        # target runs on the main thread, not in a handler)
        self.thread_waiters: dict[int, int] = {}
        self._main_call: Callable[[], int] | None = None
        self._ops: dict[type, Callable[[Any, Any], None]] = {
            P.Down: self._down, P.Hold: self._hold, P.Resume: self._resume,
            P.Gone: self._gone, P.Start: self._start, P.LinkExit: self._link_exit,
            P.Stop: self._stop, P.Ext: self._ext, P.Exit: self._exit_all,
            P.NodeDown: lambda op, env: self.runtime.foreign.fail(op.node_id, op.reason),
            P.Stats: lambda op, env: self._answer(env, self.mailboxes.statistics()),
            P.Counters: lambda op, env: self._answer(env, runtime.counters())}
        probes = Probes(runtime, self.mailboxes, self._answer)
        self._ops.update({P.Probe: probes.probe, P.Cancel: probes.cancel,
                          P.FailWait: probes.fail_wait, P.Quiet: probes.quiet})
        _RUNNING[:] = [self]

    @property
    def cells(self) -> dict[int, Cell]:
        return self.mailboxes.cells

    @property
    def current(self) -> Cell | None:
        return self.mailboxes.current

    # -- lifecycle -------------------------------------------------------------------
    def run(self) -> int:
        """Say hello to the node, then host what it starts here; return
        when the last actor has ended (or the node says exit)."""
        runtime = self.runtime
        runtime.loop.read_on(threading.get_ident())
        runtime.loop.home = threading.get_ident()  # handlers run here; others may relieve
        install(ForwardHandler(self._ship_log, self._actor_name), self.boot.log_level)
        runtime.tell_service(runtime.service.address,
                             P.Hello(self.boot.number, runtime.address, os.getpid()))
        runtime.flush_all()
        cells, run_once = self.mailboxes.cells, runtime.loop.run_once
        while (cells or not self.started) and not self._exit:
            run_once(None)
            if self._main_call is not None:
                return self._run_main(self._main_call)
        self.report_dead_letters()
        self.close()
        return 0

    def run_on_main_thread(self, fn: Callable[[], int]) -> None:
        """From a handler: once it returns, run ``fn`` on this process's main
        thread while a helper thread runs the loop; the process then exits
        with ``fn``'s return value as its exit code (``actors.mp.Process``:
        its target runs where signal handlers can be installed)."""
        if threading.get_ident() != threading.main_thread().ident or self._main_call:
            raise ActorError("run_on_main_thread: the main thread is already taken")
        self._main_call = fn

    def reads_on_own_thread(self) -> bool:
        """The loop runs on a thread of its own (a target runs on the main
        thread), so this process can answer at any time."""
        return self._main_call is not None

    def _run_main(self, fn: Callable[[], int]) -> int:
        loop = self.runtime.loop
        loop.lead_waits = True  # the main thread's waits read their own replies
        loop.home = None  # handlers run on the loop thread; waiters lead in turn
        finished = False

        def stop() -> bool:
            return finished or self._exit

        loop.read_on(None)
        thread = threading.Thread(target=loop.serve_forever, args=(stop,), name="actors-loop",
                                  daemon=True)
        thread.start()
        code = 1
        try:
            code = fn()
        finally:
            finished = True
            loop.wake()
            thread.join(5.0)
            # the loop thread is done (else exit anyway: the node learns the
            # exit code from the process itself)
            if loop.take_reading(5.0):
                try:
                    for cell in list(self.cells.values()):
                        self.mailboxes.end(cell, f"exit code {code}", crashed=False,
                                           run_on_stop=False)
                    self.report_dead_letters()
                    self.close(linger=5.0)
                finally:
                    loop.give_up_reading()
        return code

    def start_actor(self, uid: int, spec: P.ActorSpec, address: str | None,
                    restarting: bool, exc: Any) -> ActorRef:
        """Construct an actor here and run its ``on_start`` (and, in a new
        incarnation of a supervised actor, ``on_restart``)."""
        cls = find_class(spec.class_path)
        if cls is None or not isinstance(cls, type) or not issubclass(cls, Actor):
            raise SpawnError(f"cannot find actor class {spec.class_path!r} in the child "
                             "process (define it in an importable module, or in the main "
                             "script under an `if __name__ == '__main__':` guard)")
        if not self.cells:
            self.name = self.runtime.name = self.runtime.loop.name = spec.label
        actor = cls.__new__(cls)
        ref = self.runtime.local_ref(uid, address or self.runtime.address, spec.name)
        actor.ref = ref
        actor.system = self.system
        cell = Cell(actor, ref)
        mailboxes = self.mailboxes
        # Registered (busy) before __init__: what arrives while on_start waits
        # on something is queued for it, not refused.
        cell.envelope, cell.since = START, time.monotonic()
        cell.busy = True
        cell.hang = spec.options.hang_timeout
        self.cells[uid] = cell
        if cell.hang:
            self.hangs.watch(cell.hang)
        prev, mailboxes.current = mailboxes.current, cell
        try:
            actor.__init__(*spec.args, **spec.kwargs)
            result = actor.on_start()
            if inspect.iscoroutine(result):
                mailboxes.run_coroutine(result)
            if restarting:
                result = actor.on_restart(exc)
                if inspect.iscoroutine(result):
                    mailboxes.run_coroutine(result)
        except BaseException:
            cell.alive = False
            del self.cells[uid]
            while cell.mailbox:
                entry = cell.mailbox.popleft()
                if not isinstance(entry, (StopMark, LinkMark)):  # marks are not messages
                    self.runtime.refuse(entry, None)
            raise
        finally:
            mailboxes.current = prev
            cell.busy = False
            cell.envelope = None
        if cell.mailbox and not cell.queued:
            cell.queued = True
            mailboxes.ready.append(cell)
        return ref

    def defer_reply(self, actor: Actor) -> Reply:
        return self.mailboxes.defer_reply(actor.ref.uid)

    # -- the loop's handler --------------------------------------------------------------
    def deliver(self, envelopes: list[Any]) -> None:
        self.mailboxes.deliver_all(envelopes)

    def _service(self, envelope: Any) -> None:
        """An envelope to this process's service (uid 0)."""
        operation = self.runtime.service_op(envelope)
        handle = self._ops.get(type(operation)) if operation is not None else None
        if handle is not None:  # (operations between nodes are the node's)
            handle(operation, envelope)

    def has_ready(self) -> bool:
        # dead letters counted since run_ready (a flush found an address gone): report soon
        return self.mailboxes.has_ready() or self.runtime.dead_letters > self._reported_dead

    def run_ready(self) -> None:
        self.mailboxes.run_ready()
        if self.runtime.dead_letters != self._reported_dead:
            self.report_dead_letters()

    def on_ready(self, obj: Any) -> None:
        pass

    def source_closed(self, source: Any) -> None:
        # the pipe to the node closed: the node is gone, so must we be (as the watchdog would)
        os._exit(70)

    def waiter(self, thread: int, future: Any) -> Any:
        # The actor whose handler blocks: on the loop thread the one it runs,
        # elsewhere (an async handler) the one its context names.
        uid = self.thread_waiters.get(thread)
        if uid is not None:
            return uid
        if thread == self.runtime.loop.ident:
            cell = self.current
        else:
            cell = CURRENT.get(None)
            if cell is not None and cell.task is not None:
                import asyncio  # loaded already: an async handler runs

                try:
                    task = asyncio.current_task()
                except RuntimeError:  # not on the asyncio thread
                    task = None
                if task is not None and task is not cell.task:
                    return None  # a task the handler started: it does not block it
        return cell.ref.uid if cell is not None and cell.busy else None

    def member(self, thread: int) -> int | None:
        """The actor a blocking wait of ``thread`` blocks, if any."""
        uid = self.thread_waiters.get(thread)
        if uid is None and self.current is not None and thread == self.runtime.loop.ident:
            uid = self.current.ref.uid
        return uid

    def stop_actor(self, ref: ActorRef, timeout: float | None) -> None:
        """From inside an actor a stop is only scheduled, never waited for:
        the caller may be the target itself, or one of its descendants."""
        self.runtime.tell_service(ref.address, P.Stop(ref.uid))

    # -- service operations (from the node) --------------------------------------------
    def _answer(self, envelope: Any, value: Any) -> None:
        if isinstance(envelope, P.Ask):
            self.runtime.answer(envelope, True, P.answer_to_wire(value))

    def _down(self, op: P.Down, envelope: Any) -> None:
        self.runtime.mark_dead(op.uids, op.reason)

    def _hold(self, op: P.Hold, envelope: Any) -> None:
        self.runtime.hold(op.address, op.uids, op.reason)

    def _resume(self, op: P.Resume, envelope: Any) -> None:
        self.runtime.outboxes.resume(op.address)

    def _gone(self, op: P.Gone, envelope: Any) -> None:
        for address in op.addresses:
            self.runtime.outboxes.release(address)

    def _start(self, op: P.Start, envelope: Any) -> None:
        self.started = True
        runtime = self.runtime
        try:
            alias = op.alias
            if alias is not None:
                # a supervised actor's own address, kept across its restarts:
                # what peers queued for it comes in here
                alias = runtime.network.add_alias(alias)
                runtime.outboxes.resume(alias)  # held here too if this was a spare
            value, ok = self.start_actor(op.uid, op.spec, alias, op.restarting, op.exc), True
        except BaseException as e:
            value, ok = e, False
        runtime.answer(envelope, ok, value)

    def _link_exit(self, op: P.LinkExit, envelope: Any) -> None:
        cell = self.cells.get(op.uid)
        if cell is not None:  # crash before its next message
            self.mailboxes.mark(cell, LinkMark(op.reason), first=True)

    def _stop(self, op: P.Stop, envelope: Any) -> None:
        # In band: it reached us behind everything its sender sent before,
        # and it takes its turn in the mailbox behind those.
        cell = self.cells.get(op.uid)
        asked = isinstance(envelope, P.Ask)
        if cell is None:
            self._answer(envelope, False)
        else:
            self.mailboxes.mark(cell, StopMark(envelope.reply_to if asked else None,
                                               envelope.call_id if asked else None), first=False)

    def _ext(self, op: P.Ext, envelope: Any) -> None:
        self.runtime.extension(op)

    def _exit_all(self, op: P.Exit, envelope: Any) -> None:
        for cell in list(self.cells.values()):
            self.mailboxes.end(cell, "stopped", crashed=False, run_on_stop=True)
        self._exit = True

    # -- reports to the node ---------------------------------------------------------------
    def _tell_node(self, operation: Any, flush: bool = False) -> None:
        runtime = self.runtime
        runtime.tell_service(runtime.service.address, operation, flush)

    def _report_stopped(self, cell: Cell, reason: str, crashed: bool, exc: Any) -> None:
        address = self.runtime.address
        try:
            self._tell_node(P.Stopped(cell.ref.uid, reason, crashed, exc, address))
        except Exception:  # an exception that cannot travel: its text does
            self._tell_node(P.Stopped(cell.ref.uid, reason, crashed, None, address))

    def _stop_children(self, uid: int) -> None:
        runtime = self.runtime
        runtime.ask_service(runtime.service.address, P.StopChildren(uid)).result()

    def _report_hung(self, uid: int, message: str) -> None:
        self._tell_node(P.Hung(uid, message, self.runtime.address), flush=True)

    def report_dead_letters(self) -> None:
        count = self.runtime.dead_letters - self._reported_dead
        if count > 0:
            self._reported_dead += count
            self._tell_node(P.DeadLetters(count, self.name))

    def _actor_name(self) -> str:
        cell = CURRENT.get(None) or self.current
        return cell.label if cell is not None else self.name

    def _ship_log(self, record: dict[str, Any]) -> None:
        self._tell_node(P.Log(record))

    def close(self, linger: float = 1.0, flush: bool = True) -> None:
        self.runtime.close(linger, flush)
        self.mailboxes.counters.close()
