"""The loop inside every spawned process: it hosts one actor or many.

Design. A host is a :class:`Runtime` whose loop thread is the process's main
thread. Incoming envelopes go into per-actor mailboxes; after each poll the
loop runs the mailboxes of actors that are not busy, a bounded number of
messages each (fairness between actors of one host). An actor handles one
message at a time: while its handler waits on an ask, the loop keeps
polling (``Runtime.pump_until``) and runs other actors' messages, never its
own. ``async def`` handlers run on an asyncio loop in a helper thread while
the host thread pumps, so the actor is busy until the coroutine ends.

Failure semantics: an exception during an ask goes back to the asker and
the actor lives on; during a tell nobody is waiting, so the actor crashes:
the traceback is logged, what is left in its mailbox becomes dead letters
(asks in it fail with ActorDeadError), and the node is told. The process
ends when it hosts no actor any more.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import faulthandler
import inspect
import logging
import os
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from types import CoroutineType
from typing import Any

from actors import protocol as P
from actors.actor import RESERVED, Actor
from actors.errors import ActorDeadError, ActorError, DeadlockError, SerializationError, SpawnError
from actors.logs import ForwardHandler, install
from actors.process import MailboxCounters
from actors.ref import ActorRef, Reply
from actors.runtime import Runtime, find_undecodable
from actors.waits import ABSENT, BOUND, DEFERRED, QUEUED
from transport.codec import find_class

log = logging.getLogger("actors")

BATCH = 64  # messages one actor may handle before the others get a turn
STOP_MARK = -1  # a mailbox entry meaning "stop here"
LINK_MARK = -2  # a mailbox entry meaning "a linked actor crashed: crash now"

# The host of this process, once one runs here (actors.mp finds it).
RUNNING: Host | None = None

# The actor whose async handler runs in this context (async handlers run on
# the asyncio thread, while the host thread may run another actor).
CURRENT: contextvars.ContextVar[Cell] = contextvars.ContextVar("actors_current_cell")


class Cell:
    """An actor instance and its mailbox."""

    __slots__ = ("actor", "ref", "mailbox", "busy", "queued", "stop_waiters", "alive",
                 "envelope", "since", "deferred", "parked", "hang", "task")

    def __init__(self, actor: Actor, ref: ActorRef) -> None:
        self.actor = actor
        self.ref = ref
        self.mailbox: collections.deque[list[Any]] = collections.deque()
        self.busy = False
        self.queued = False
        self.stop_waiters: list[tuple[str, int]] = []
        self.alive = True
        self.envelope: Any = None   # what it handles now (START while starting)
        self.since = 0.0            # when it began handling it
        self.deferred: Reply | None = None  # the reply its current handler deferred
        self.parked: dict[tuple[str, int], Reply] = {}  # deferred replies not sent yet
        self.hang: float | None = None  # hang_timeout from its child spec
        self.task: Any = None  # the asyncio task of its running async handler

    def request_state(self, reply_to: str, call_id: int) -> int:
        """Where the request (reply_to, call_id) is: QUEUED (in the mailbox
        or being handled: only a handler of this actor can answer it),
        DEFERRED (its reply was deferred: any thread may send it), BOUND
        (deferred, and only what a holder of this actor's resource does
        sends it: ``Reply.bound``) or ABSENT (answered, or not arrived yet)."""
        reply = self.parked.get((reply_to, call_id))
        if reply is not None:
            return BOUND if reply.bound else DEFERRED
        current = self.envelope
        if (type(current) is list and current[0] in (P.ASK, P.CALL)
                and current[-1] == call_id and current[-2] == reply_to):
            return QUEUED if self.deferred is None else ABSENT
        for e in self.mailbox:
            if e[0] in (P.ASK, P.CALL) and e[-1] == call_id and e[-2] == reply_to:
                return QUEUED
        return ABSENT
START = "start"  # Cell.envelope while on_start / on_restart run


class HostSystem:
    """``self.system`` inside an actor: spawn and lookup through the node."""

    def __init__(self, host: Host) -> None:
        self._host = host

    def spawn(self, actor_class: type[Actor], *args: Any, name: str | None = None,
              colocate_with: ActorRef | None = None, **kwargs: Any) -> ActorRef:
        """Start a top-level actor (not stopped with the caller; for a child,
        use ``Actor.spawn``)."""
        return self.spawn_child(None, actor_class, args, kwargs, name, colocate_with)

    def spawn_child(self, parent: int | None, actor_class: type[Actor], args: tuple[Any, ...],
                    kwargs: dict[str, Any], name: str | None,
                    colocate_with: ActorRef | None = None) -> ActorRef:
        if not (isinstance(actor_class, type) and issubclass(actor_class, Actor)):
            raise TypeError(f"spawn() takes an Actor subclass, got {actor_class!r}")
        spec = spec_for(actor_class, args, kwargs, name, parent, colocate_with)
        return self.request((P.OP_SPAWN, spec))

    def lookup(self, name: str) -> ActorRef | None:
        return self.request((P.OP_LOOKUP, name))

    def defer_reply(self, actor: Actor) -> Reply:
        """The reply to the ask ``actor`` is handling, to be sent later."""
        host = self._host
        cell = host.cells.get(actor.ref.uid)
        envelope = cell.envelope if cell is not None else None
        if type(envelope) is not list or envelope[0] not in (P.ASK, P.CALL):
            raise ActorError("defer_reply() works only in a handler of an ask or a proxy call")
        if cell.deferred is None:
            key = (envelope[-2], envelope[-1])
            cell.deferred = cell.parked[key] = Reply(host, cell.parked, *key)
        return cell.deferred

    def request(self, payload: tuple[Any, ...]) -> Any:
        """Ask the node's service and wait (spawn, restart, terminate...)."""
        host = self._host
        return host.ask(host.service, payload).result()

    def tree(self) -> list[dict[str, Any]]:
        """The live actors as nested data (see ``ActorSystem.tree``)."""
        return self.request((P.OP_TREE,))

    def watch(self, watcher: ActorRef, target: ActorRef, link: bool) -> None:
        if not isinstance(target, ActorRef):
            raise TypeError(f"watch() takes an ActorRef, got {target!r}")
        host = self._host
        host.tell(host.service, (P.OP_WATCH, watcher, target, bool(link)))

    def unwatch(self, watcher: ActorRef, target: ActorRef) -> None:
        host = self._host
        host.tell(host.service, (P.OP_UNWATCH, watcher.uid, target.uid))


def spec_for(actor_class: type, args: tuple[Any, ...], kwargs: dict[str, Any],
             name: str | None, parent: int | None, colocate_with: ActorRef | None,
             options: dict[str, Any] | None = None) -> list[Any]:
    """What the node needs to start an actor (and to restart it)."""
    from transport.codec import class_path
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"actor name must be a non-empty string, got {name!r}")
    if colocate_with is not None and not isinstance(colocate_with, ActorRef):
        raise TypeError(f"colocate_with must be an ActorRef, got {colocate_with!r}")
    options = dict(options or {})
    if getattr(actor_class, "is_supervisor", False):
        options["supervisor"] = True
    return [class_path(actor_class), list(args), dict(kwargs), name, parent,
            colocate_with.uid if colocate_with is not None else None, options]


class Host(Runtime):
    def __init__(self, node_id: str, network: Any, name: str) -> None:
        super().__init__(node_id, network, name)
        self.started = False  # a first OP_START came (a blank host before)
        self.cells: dict[int, Cell] = {}
        self.ready: collections.deque[Cell] = collections.deque()
        self.current: Cell | None = None
        self.system = HostSystem(self)
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._pending_dead_letters = 0
        self._exit = False
        self.mailed = MailboxCounters(None)
        # threads whose blocking waits block an actor (actors.mp: a
        # process's target runs on the main thread, not in a handler)
        self.thread_waiters: dict[int, int] = {}
        self._main_call: Callable[[], int] | None = None
        global RUNNING
        RUNNING = self

    # -- lifecycle ---------------------------------------------------------
    def run(self, number: int) -> int:
        """Say hello to the node, then host what it starts here; return
        when the last actor has ended (or the node says exit)."""
        self.loop_ident = self.network.loop_ident = threading.get_ident()
        install(ForwardHandler(self._ship_log, self._actor_name), self._log_level)
        self.post(self.service.address,
                  self.service_envelope((P.OP_HELLO, number, self.address, os.getpid())))
        self.flush_all()
        while (self.cells or not self.started) and not self._exit:
            self.run_once(None)
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

    def _run_main(self, fn: Callable[[], int]) -> int:
        self.lead_waits = True  # the main thread's waits read their own replies
        finished = False

        def stop() -> bool:
            return finished or self._exit

        self.loop_ident = self.network.loop_ident = None
        loop = threading.Thread(target=self.serve_forever, args=(stop,), name="actors-loop",
                                daemon=True)
        loop.start()
        code = 1
        try:
            code = fn()
        finally:
            finished = True
            self.wake()
            loop.join(5.0)
            # the loop thread is done (else exit anyway: the node learns the
            # exit code from the process itself)
            if self._reader.acquire(timeout=5.0):
                try:
                    self.loop_ident = self.network.loop_ident = threading.get_ident()
                    for cell in list(self.cells.values()):
                        self.end_cell(cell, f"exit code {code}", crashed=False,
                                      run_on_stop=False)
                    self.report_dead_letters()
                    self.close(linger=5.0)
                finally:
                    self._reader.release()
        return code

    _log_level = logging.WARNING

    def start_actor(self, uid: int, spec: list[Any], address: str | None = None,
                    restart: list[Any] | None = None) -> ActorRef:
        """Construct an actor here and run its ``on_start`` (and, in a new
        incarnation of a supervised actor, ``on_restart``)."""
        path, args, kwargs, name, _parent, _colocate, _options = spec
        _options = _options or {}
        cls = find_class(path)
        if cls is None or not issubclass(cls, Actor):
            raise SpawnError(f"cannot find actor class {path!r} in the child process "
                             "(define it in an importable module, or in the main script "
                             "under an `if __name__ == '__main__':` guard)")
        if not self.cells:
            self.name = name or path.rpartition(":")[2]
        actor = cls.__new__(cls)
        ref = self.make_ref(uid, address or self.address, name)
        actor.ref = ref
        actor.system = self.system
        cell = Cell(actor, ref)
        # Registered (busy) before __init__: what arrives while on_start waits
        # on something is queued for it, not refused.
        cell.envelope, cell.since = START, time.monotonic()
        cell.busy = True
        cell.hang = _options.get("hang_timeout")
        self.cells[uid] = cell
        if cell.hang:
            self._watch_hangs(cell.hang)
        prev, self.current = self.current, cell
        try:
            actor.__init__(*args, **kwargs)
            result = actor.on_start()
            if inspect.iscoroutine(result):
                self.run_coroutine(result)
            if restart is not None:
                result = actor.on_restart(restart[0])
                if inspect.iscoroutine(result):
                    self.run_coroutine(result)
        except BaseException:
            cell.alive = False
            del self.cells[uid]
            while cell.mailbox:
                self.refuse(cell.mailbox.popleft(), None)
            raise
        finally:
            self.current = prev
            cell.busy = False
            cell.envelope = None
        if cell.mailbox and not cell.queued:
            cell.queued = True
            self.ready.append(cell)
        return ref

    def read(self, source: Any) -> list[bytes]:
        try:
            return source.recv_frames()
        except (EOFError, OSError):
            # The pipe to the node is closed: the node is gone, and so must
            # we be (the parent watchdog would do it a moment later).
            os._exit(70)

    # -- incoming ----------------------------------------------------------
    def handle(self, envelope: list[Any]) -> None:
        if self.codec.bad:
            bad = find_undecodable(envelope)
            if bad is not None:
                self.refuse(envelope, SerializationError(f"message could not be decoded: {bad.error}"))
                return
        uid = envelope[1]
        if uid == P.SERVICE_UID:
            self.service_op(envelope)
            return
        cell = self.cells.get(uid)
        if cell is None:
            self.refuse(envelope, None)
            return
        cell.mailbox.append(envelope)
        self.mailed.counts[0] += 1
        if not cell.queued:
            cell.queued = True
            self.ready.append(cell)

    def lose(self, count: int) -> None:
        self._pending_dead_letters += count  # reported to the node in batches

    def service_op(self, envelope: list[Any]) -> None:
        payload = envelope[2]
        op = payload[0]
        if op == P.OP_DOWN:
            _, uids, reason = payload
            self.mark_dead(uids, reason)
        elif op == P.OP_HOLD:
            _, address, uids, reason = payload
            self.hold(address, uids, reason)
        elif op == P.OP_RESUME:
            self.resume(payload[1])
        elif op == P.OP_GONE:
            for address in payload[1]:
                self.release(address)
        elif op == P.OP_START:
            _, uid, spec, alias, restart = payload
            self.started = True
            try:
                if alias is not None:
                    # a supervised actor's own address, kept across its
                    # restarts: what peers queued for it comes in here
                    alias = self.network.add_alias(alias)
                    self.resume(alias)  # held here too if this was a spare
                value, ok = self.start_actor(uid, spec, alias, restart), True
            except BaseException as e:
                value, ok = e, False
            self.reply(envelope[-2], envelope[-1], ok, value)
        elif op == P.OP_LINK_EXIT:
            _, uid, reason = payload
            cell = self.cells.get(uid)
            if cell is not None:  # crash before its next message
                self._mark(cell, [LINK_MARK, reason], first=True)
        elif op == P.OP_STOP:
            # In band: it reached us behind everything its sender sent
            # before, and it takes its turn in the mailbox behind those.
            waiter = (envelope[-2], envelope[-1]) if envelope[0] == P.ASK else (None, None)
            cell = self.cells.get(payload[1])
            if cell is None:
                if waiter[0] is not None:
                    self.reply(waiter[0], waiter[1], True, False)
            else:
                self._mark(cell, [STOP_MARK, *waiter], first=False)
        elif op == P.OP_PROBE:
            _, wait_ids, pending = payload
            answer = [self.waits.probe(wait_ids), []]
            for uid, reply_to, call_id in pending:
                cell = self.cells.get(uid)
                if cell is None:
                    answer[1].append(ABSENT)
                elif call_id is None:  # is it still starting?
                    answer[1].append(QUEUED if cell.envelope is START else ABSENT)
                else:
                    answer[1].append(cell.request_state(reply_to, call_id))
            self.reply(envelope[-2], envelope[-1], True, answer)
        elif op == P.OP_CANCEL:
            _, uid, reply_to, call_id = payload
            cell = self.cells.get(uid)
            found = False
            if cell is not None:
                for e in cell.mailbox:
                    if e[0] in (P.ASK, P.CALL) and e[-1] == call_id and e[-2] == reply_to:
                        # in place: a dispatch loop may hold this very deque
                        cell.mailbox.remove(e)
                        self.mailed.counts[1] += 1
                        found = True
                        break
                reply = cell.parked.get((reply_to, call_id))
                withdraw = getattr(cell.actor, "withdraw", None)
                if (not found and reply is not None and reply.bound and withdraw is not None
                        and withdraw(reply)):
                    found = reply.take()  # never sent: the asker gets DeadlockError
            self.reply(envelope[-2], envelope[-1], True, found)
        elif op == P.OP_DEADLOCK:
            _, wait_id, message, cycle = payload
            failed = self.waits.fail(wait_id, DeadlockError(message, cycle))
            self.reply(envelope[-2], envelope[-1], True, failed)
        elif op == P.OP_QUIET:
            self.reply(envelope[-2], envelope[-1], True, self.quiet_report())
        elif op == P.OP_EXT:
            self.extension(payload)
        elif op == P.OP_EXIT:
            for cell in list(self.cells.values()):
                self.end_cell(cell, "stopped", crashed=False, run_on_stop=True)
            self._exit = True
        else:
            raise ValueError(f"unknown host service op {op!r}")

    def waiter(self, thread: int, future: concurrent.futures.Future) -> Any:
        # The actor whose handler blocks: on the loop thread the one it runs,
        # elsewhere (an async handler) the one its context names.
        uid = self.thread_waiters.get(thread)
        if uid is not None:
            return uid
        if thread == self.loop_ident:
            cell = self.current
        else:
            cell = CURRENT.get(None)
            if cell is not None and cell.task is not None:
                try:
                    task = asyncio.current_task()
                except RuntimeError:  # not on the asyncio thread
                    task = None
                if task is not None and task is not cell.task:
                    return None  # a task the handler started: it does not block it
        return cell.ref.uid if cell is not None and cell.busy else None

    _quiet_probes = 0

    def quiet_report(self) -> list[Any]:
        """For the node's quiescence check: [idle, sent, received, held,
        waits]: whether every actor here is idle (empty mailbox) or blocked
        in a wait without deadline, with no asyncio timer pending and
        nothing unsent or unread; the message counts without this check's
        own traffic; the deferred replies held; and the waits."""
        tracker = self.waits
        loop = self._async_loop
        idle = (self.idle_transport(poll=True)
                and not (loop is not None and getattr(loop, "_scheduled", None))  # timers
                and all((not cell.busy and not cell.mailbox)
                        or (cell.busy and tracker.blocked(uid))
                        for uid, cell in list(self.cells.items())))
        before, self._quiet_probes = self._quiet_probes, self._quiet_probes + 1
        held = [[uid, len(cell.parked)] for uid, cell in self.cells.items() if cell.parked]
        return [idle, self.sent_count() - before, self.received - before - 1, held,
                tracker.infos()]

    def _mark(self, cell: Cell, entry: list[Any], first: bool) -> None:
        """Put a runtime mark (stop here, crash now) in a mailbox."""
        if first:
            cell.mailbox.appendleft(entry)
        else:
            cell.mailbox.append(entry)
        self.mailed.counts[0] += 1
        if not cell.queued:
            cell.queued = True
            self.ready.append(cell)

    # -- running mailboxes -------------------------------------------------
    def has_work(self) -> bool:
        return any(not cell.busy for cell in self.ready)

    def after_poll(self) -> None:
        ready = self.ready
        for _ in range(len(ready)):
            if not ready:  # a nested pump (a handler waiting) emptied it
                break
            cell = ready.popleft()
            cell.queued = False
            if cell.busy or not cell.alive:
                continue
            mailbox = cell.mailbox
            for _ in range(BATCH):
                if not mailbox or cell.busy or not cell.alive:
                    break
                self.mailed.counts[1] += 1
                self.dispatch(cell, mailbox.popleft())
            if mailbox and cell.alive and not cell.queued:
                cell.queued = True
                ready.append(cell)
        if self._pending_dead_letters:
            self.report_dead_letters()

    def dispatch(self, cell: Cell, envelope: list[Any]) -> None:
        prev, self.current = self.current, cell
        cell.envelope, cell.deferred = envelope, None
        if cell.hang:
            cell.since = time.monotonic()
        cell.busy = True  # last: the hang watchdog reads since once busy
        try:
            kind = envelope[0]
            if kind == P.TELL:
                self._tell(cell, envelope)
            elif kind == LINK_MARK:
                self.crash(cell, ActorDeadError(envelope[1], None, envelope[1]),
                           "because an actor it is linked to crashed")
            elif kind == STOP_MARK:
                if envelope[1] is not None:
                    cell.stop_waiters.append((envelope[1], envelope[2]))
                # children first, the last started first (the node knows them)
                self.ask(self.service, (P.OP_STOP_CHILDREN, cell.ref.uid)).result()
                self.end_cell(cell, "stopped", crashed=False, run_on_stop=True)
            else:
                self._ask(cell, envelope)
        finally:
            cell.busy = False
            cell.envelope = cell.deferred = None
            self.current = prev
            if cell.mailbox and cell.alive and not cell.queued:
                cell.queued = True
                self.ready.append(cell)

    def _tell(self, cell: Cell, envelope: list[Any]) -> None:
        payload = envelope[2]
        if envelope[3]:
            payload = tuple(payload)
        try:
            result = cell.actor.receive(payload)
            if type(result) is CoroutineType:
                self.run_coroutine(result)
        except BaseException as e:
            self.crash(cell, e, f"while handling a tell of {payload!r:.200}")

    def _ask(self, cell: Cell, envelope: list[Any]) -> None:
        reply_to, call_id = envelope[-2], envelope[-1]
        try:
            if envelope[0] == P.ASK:
                payload = envelope[2]
                if envelope[3]:
                    payload = tuple(payload)
                result = cell.actor.receive(payload)
            else:
                method = envelope[2]
                if method.startswith("_") or method in RESERVED:
                    raise AttributeError(f"{type(cell.actor).__name__}.{method} cannot be "
                                         "called through a proxy")
                result = getattr(cell.actor, method)(*envelope[3], **envelope[4])
            if type(result) is CoroutineType:
                result = self.run_coroutine(result)
        except Exception as e:
            if self._owes_reply(cell):
                self.reply(reply_to, call_id, False, e)
            if cell.actor.crash_on_error:
                self.crash(cell, e, "while handling an ask (crash_on_error)")
            return
        except BaseException as e:
            if self._owes_reply(cell):
                self.reply(reply_to, call_id, False, ActorDeadError(
                    f"{cell.ref!r} exited while handling the ask: {e!r}", None, repr(e)))
            self.crash(cell, e, "while handling an ask")
            return
        if cell.deferred is None:
            self.reply(reply_to, call_id, True, result)

    @staticmethod
    def _owes_reply(cell: Cell) -> bool:
        """The handler of an ask raised: its error is the reply, unless the
        handler deferred the reply and already sent it."""
        deferred = cell.deferred
        if deferred is None:
            return True
        return deferred.take()

    def run_coroutine(self, coro: Any) -> Any:
        """Run an ``async def`` handler to its end, serving other actors and
        replies meanwhile."""
        if self._async_loop is None:
            loop = self._async_loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="actors-asyncio", daemon=True).start()
        # The coroutine runs on the asyncio thread, in a context naming its
        # actor (for log records and spawns made while another actor runs).
        context = contextvars.copy_context()
        context.run(CURRENT.set, self.current)
        loop = self._async_loop
        future: concurrent.futures.Future = concurrent.futures.Future()

        def finished(task: asyncio.Task) -> None:
            if task.cancelled():
                future.set_exception(asyncio.CancelledError("the handler was cancelled"))
            elif task.exception() is not None:
                future.set_exception(task.exception())
            else:
                future.set_result(task.result())

        cell = self.current

        def start() -> None:
            task = loop.create_task(coro, context=context)
            if cell is not None:
                cell.task = task
            task.add_done_callback(finished)
        loop.call_soon_threadsafe(start)
        future.add_done_callback(lambda _: self.wake())
        frame = (self.waits.begin(cell.ref.uid, None, stacked=True)
                 if self.waits.enabled and cell is not None else None)
        try:
            self.pump_until(future.done, None)
        finally:
            if frame is not None:
                self.waits.end(frame)
            if cell is not None:
                cell.task = None
        return future.result()

    # -- ending --------------------------------------------------------------
    def crash(self, cell: Cell, exc: BaseException, context: str) -> None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        log.error("actor %s (pid %d) crashed %s:\n%s", cell.ref.name or f"#{cell.ref.uid}",
                  os.getpid(), context, tb.rstrip(), extra={"actor": self._actor_name()})
        self.end_cell(cell, f"crashed: {exc!r}", crashed=True, run_on_stop=False, exc=exc)

    def end_cell(self, cell: Cell, reason: str, crashed: bool, run_on_stop: bool,
                 exc: BaseException | None = None) -> None:
        if not cell.alive:
            return
        cell.alive = False
        if run_on_stop:
            try:
                result = cell.actor.on_stop()
                if inspect.iscoroutine(result):
                    self.run_coroutine(result)
            except Exception:
                log.exception("on_stop of %r raised", cell.ref)
        self.cells.pop(cell.ref.uid, None)
        self.dead[cell.ref.uid] = reason
        for reply in list(cell.parked.values()):  # deferred replies never sent
            if reply.take():
                self.reply(reply._to, reply._call_id, False, ActorDeadError(
                    f"{cell.ref!r} ended before replying ({reason})", None, reason))
        while cell.mailbox:
            envelope = cell.mailbox.popleft()
            self.mailed.counts[1] += 1
            if envelope[0] == STOP_MARK:
                if envelope[1] is not None:
                    cell.stop_waiters.append((envelope[1], envelope[2]))
            else:
                self.refuse(envelope, None)
        try:
            report = self.service_envelope(
                (P.OP_STOPPED, cell.ref.uid, reason, crashed, exc, self.address))
        except Exception:  # an exception that cannot travel: its text does
            report = self.service_envelope(
                (P.OP_STOPPED, cell.ref.uid, reason, crashed, None, self.address))
        self.post(self.service.address, report)
        for reply_to, call_id in cell.stop_waiters:
            self.reply(reply_to, call_id, True, True)
        self.flush_all()

    def stop_actor(self, ref: ActorRef, timeout: float | None) -> None:
        """From inside an actor a stop is only scheduled, never waited for:
        the caller may be the target itself, or one of its descendants."""
        self.tell(self.service_at(ref.address), (P.OP_STOP, ref.uid))

    # -- hung handlers -------------------------------------------------------
    _hang_watch: threading.Thread | None = None

    def _watch_hangs(self, limit: float) -> None:
        """Start the watchdog thread of actors with a ``hang_timeout``."""
        if self._hang_watch is not None:
            return
        period = min(1.0, max(0.01, limit / 10))
        thread = self._hang_watch = threading.Thread(
            target=self._hang_loop, args=(period,), name="actors-hang-watch", daemon=True)
        thread.start()

    def _hang_loop(self, period: float) -> None:
        tick = threading.Event()  # never set: a periodic check
        while not self._exit:
            tick.wait(period)
            now = time.monotonic()
            for cell in list(self.cells.values()):
                if cell.hang and cell.busy and cell.alive and now - cell.since > cell.hang:
                    self._hung(cell, now - cell.since)
                    return

    def _hung(self, cell: Cell, seconds: float) -> None:
        """``cell``'s handler ran past its hang_timeout: log every thread's
        Python stack, then tell the node, which kills this process and
        lets the supervisor restart the actor (reason "hung")."""
        with tempfile.TemporaryFile() as f:
            faulthandler.dump_traceback(f, all_threads=True)
            f.seek(0)
            dump = f.read().decode("utf-8", "replace")
        # every thread but this watchdog's own
        stacks = "\n\n".join(block for block in dump.strip().split("\n\n")
                              if not block.startswith("Current thread"))
        envelope = cell.envelope
        if envelope is START:
            what = "its on_start"
        elif type(envelope) is list and envelope[0] == P.CALL:
            what = f"its handler of a call to {envelope[2]}()"
        elif type(envelope) is list:
            what = f"its handler of {envelope[2]!r:.100}"
        else:
            what = "its handler"
        name = cell.ref.name or f"#{cell.ref.uid}"
        message = (f"actor {name} (pid {os.getpid()}) hung: {what} has run for "
                   f"{seconds:.1f} s, past its hang_timeout of {cell.hang} s")
        log.error("%s. Python stacks of its process:\n%s", message, stacks,
                  extra={"actor": name})
        self.post(self.service.address, self.service_envelope(
            (P.OP_HUNG, cell.ref.uid, message, self.address)), flush=True)

    def report_dead_letters(self) -> None:
        count, self._pending_dead_letters = self._pending_dead_letters, 0
        if count:
            self.dead_letters += count
            self.post(self.service.address, self.service_envelope(
                (P.OP_DEAD_LETTERS, count, self.name)))

    # -- logging ---------------------------------------------------------------
    def _actor_name(self) -> str:
        cell = CURRENT.get(None) or self.current
        if cell is not None:
            return cell.ref.name or f"#{cell.ref.uid}"
        return self.name

    def _ship_log(self, record: dict[str, Any]) -> None:
        self.post(self.service.address, self.service_envelope((P.OP_LOG, record)))

    def close(self, linger: float = 1.0, flush: bool = True) -> None:
        super().close(linger, flush)
        self.mailed.close()


__all__ = ["Host", "HostSystem", "spec_for"]
