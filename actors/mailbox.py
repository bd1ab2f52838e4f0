"""Mailboxes: the actors of one host process and the running of their messages.

Incoming envelopes go into per-actor mailboxes (:class:`Cell`). After each
poll the loop runs the mailboxes of actors that are not busy, up to
``BATCH`` messages each (fairness between the actors of one process). An
actor handles one message at a time: while its handler waits on an ask,
the loop keeps polling (``MessageLoop.pump_until``) and runs other actors'
messages, never its own. ``async def`` handlers run on an asyncio loop in a
helper thread while the host thread pumps, so the actor stays busy until
the coroutine ends.

Failure semantics: an exception during an ask goes back to the asker and
the actor lives on; during a tell nobody is waiting, so the actor crashes:
the traceback is logged, what is left in its mailbox becomes dead letters
(asks in it fail with ActorDeadError) and the node is told.

A mailbox holds envelopes and two runtime marks (``actors.cell``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import inspect
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from actors import protocol as P
from actors.actor import RESERVED
from actors.cell import Cell, LinkMark, StopMark
from actors.counters import MailboxCounters
from actors.errors import ActorDeadError, ActorError, MailboxFull, SerializationError
from actors.flow import HARD_CAP
from actors.ref import Reply
from actors.runtime import Runtime
from actors.waits import safe_repr
from actors.wire import find_undecodable

if TYPE_CHECKING:
    import asyncio  # imported by the first async handler (a host starts without it)

__all__ = ["BATCH", "Cell", "LinkMark", "Mailboxes", "StopMark"]

log = logging.getLogger("actors")

BATCH = 64  # messages one actor may handle before the others get a turn

# The actor whose async handler runs in this context (async handlers run on
# the asyncio thread, while the host thread may run another actor).
CURRENT: contextvars.ContextVar[Cell] = contextvars.ContextVar("actors_current_cell")


class Mailboxes:
    """The actors of one host, their mailboxes and their handlers.

    Args:
        runtime: this process's runtime.
        stopped: tells the node an actor ended ``(cell, reason, crashed, exc)``.
        stop_children: asks the node to stop an actor's children (blocks).
        counters: put/taken message counts the node reads after a death.
    """

    def __init__(self, runtime: Runtime, stopped: Callable[[Cell, str, bool, Any], None],
                 stop_children: Callable[[int], None], counters: MailboxCounters,
                 service: Callable[[Any], None]) -> None:
        self.runtime = runtime
        self._service = service  # envelopes to uid 0: the host's service
        self._codec = runtime.codec
        self._counts = counters.counts  # [put, taken], in the shared page
        self.cap = HARD_CAP * runtime.flow.size  # see actors.flow
        self._stopped = stopped
        self._stop_children = stop_children
        self.counters = counters
        self.cells: dict[int, Cell] = {}
        self.ready: collections.deque[Cell] = collections.deque()
        self.current: Cell | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._handlers: dict[type, Callable[[Cell, Any], None]] = {
            P.Tell: self._tell, P.Ask: self._answer, P.Call: self._answer,
            P.Receipted: self._receipted, StopMark: self._stop, LinkMark: self._link}

    # -- filling -------------------------------------------------------------------
    def deliver_all(self, envelopes: list[Any]) -> None:
        """Tells, Asks, Calls and Receipted envelopes of one frame, in order
        (the loop hands them straight here: the hot path, one call a frame).
        A mailbox below its peak takes an envelope here; :meth:`deliver`
        does the rest (a new peak, the limit, the service, refusals)."""
        cells, counts, ready = self.cells, self._counts, self.ready
        slow = self._codec.bad  # the frame held values that could not be rebuilt
        for envelope in envelopes:
            try:
                cell = cells.get(envelope.uid)
                if cell is None or slow or len(cell.mailbox) >= cell.peak:
                    self.deliver(envelope)
                    continue
                counts[0] += 1
                cell.mailbox.append(envelope)
                if not cell.queued:
                    cell.queued = True
                    ready.append(cell)
            except Exception as e:
                self.runtime.loop.drop_malformed(envelope, e)

    def deliver(self, envelope: Any) -> None:
        """One envelope for an actor of this process (or its service)."""
        cell = self.cells.get(envelope.uid)
        if cell is None:
            if envelope.uid == P.SERVICE_UID:
                self._service(envelope)
            else:
                self.runtime.refuse(envelope, None)
            return
        if self._codec.bad:  # this frame held values that could not be rebuilt
            bad = find_undecodable(envelope)
            if bad is not None:
                self.runtime.refuse(envelope, SerializationError(
                    f"message could not be decoded: {bad.error}"))
                return
        mailbox = cell.mailbox
        depth = len(mailbox)
        if depth >= cell.peak:
            if depth >= self.cap:  # past what flow control allows: a sender ignoring it
                self.runtime.refuse(envelope, MailboxFull(
                    f"the mailbox of {cell.ref!r} holds {depth} messages (its limit)", cell.ref))
                return
            cell.peak = depth + 1
        self._counts[0] += 1
        mailbox.append(envelope)
        if not cell.queued:
            cell.queued = True
            self.ready.append(cell)

    def mark(self, cell: Cell, entry: StopMark | LinkMark, first: bool) -> None:
        """Put a runtime mark in a mailbox (first: before what is queued)."""
        if first:
            cell.mailbox.appendleft(entry)
        else:
            cell.mailbox.append(entry)
        self._counts[0] += 1
        if cell.mailbox and cell.alive and not cell.queued:
            cell.queued = True
            self.ready.append(cell)

    # -- running ---------------------------------------------------------------------
    def has_ready(self) -> bool:
        ready = self.ready
        return bool(ready) and any(not cell.busy for cell in ready)

    def run_ready(self) -> None:
        """Run the ready mailboxes, up to ``BATCH`` messages each (the hot
        path: one actor's run of messages is handled in this one frame)."""
        ready, counts, handlers = self.ready, self._counts, self._handlers
        for _ in range(len(ready)):
            if not ready:  # a nested pump (a handler waiting) emptied it
                break
            cell = ready.popleft()
            cell.queued = False
            if cell.busy or not cell.alive:
                continue
            mailbox = cell.mailbox
            prev, self.current = self.current, cell
            try:
                for _ in range(BATCH):
                    if not mailbox or not cell.alive:
                        break
                    entry = mailbox.popleft()
                    counts[1] += 1
                    cell.handled += 1
                    cell.envelope, cell.deferred = entry, None
                    if cell.hang:
                        cell.since = time.monotonic()
                    cell.busy = True  # last: the hang watchdog reads since once busy
                    try:
                        handlers[type(entry)](cell, entry)
                    finally:
                        cell.busy = False
                        cell.envelope = cell.deferred = None
            finally:
                self.current = prev
                if mailbox and cell.alive and not cell.queued:
                    cell.queued = True
                    ready.append(cell)

    def _tell(self, cell: Cell, envelope: P.Tell) -> None:
        message = envelope.payload
        if envelope.is_tuple:
            if type(message) is not list:  # a peer's malformed tell: not a message
                self.runtime.loop.malformed += 1
                self.runtime.loop.dropped(f"a tell flagged as a tuple of {safe_repr(message, 100)}")
                return
            message = tuple(message)
        try:
            result = cell.actor.receive(message)
            if type(result) is CoroutineType:
                self.run_coroutine(result)
        except BaseException as e:
            self.crash(cell, e, f"while handling a tell of {safe_repr(message, 200)}")

    def _receipted(self, cell: Cell, envelope: P.Receipted) -> None:
        self.runtime.answer(envelope, True, None)  # taken from the mailbox: a receipt
        self._tell(cell, envelope)  # type: ignore[arg-type]

    def _answer(self, cell: Cell, request: P.Ask | P.Call) -> None:
        """Run the handler of an ask (``receive``) or a call (a public
        method) and reply with what it returns or raises."""
        runtime = self.runtime
        if not P.well_formed(request):  # a peer's: not a message (the asker is told)
            runtime.loop.malformed += 1
            runtime.refuse(request, SerializationError("a malformed request"))
            return
        try:
            if type(request) is P.Ask:
                result = cell.actor.receive(request.message)
            else:
                method = request.method
                if method.startswith("_") or method in RESERVED:
                    raise AttributeError(f"{type(cell.actor).__name__}.{method} cannot be "
                                         "called through a proxy")
                result = getattr(cell.actor, method)(*request.args, **request.kwargs)
            if type(result) is CoroutineType:
                result = self.run_coroutine(result)
        except Exception as e:
            if self._owes_reply(cell):
                runtime.answer(request, False, e)
            if cell.actor.crash_on_error:
                self.crash(cell, e, "while handling an ask (crash_on_error)")
            return
        except BaseException as e:
            if self._owes_reply(cell):
                runtime.answer(request, False, ActorDeadError(
                    f"{cell.ref!r} exited while handling the ask: {safe_repr(e)}", None,
                    safe_repr(e)))
            self.crash(cell, e, "while handling an ask")
            return
        if cell.deferred is None:
            runtime.answer(request, True, result)

    def _stop(self, cell: Cell, mark: StopMark) -> None:
        if mark.reply_to is not None:
            cell.stop_waiters.append((mark.reply_to, mark.call_id))  # type: ignore[arg-type]
        # children first, the last started first (the node knows them)
        self._stop_children(cell.ref.uid)
        self.end(cell, "stopped", crashed=False, run_on_stop=True)

    def _link(self, cell: Cell, mark: LinkMark) -> None:
        self.crash(cell, ActorDeadError(mark.reason, None, mark.reason),
                   "because an actor it is linked to crashed")

    @staticmethod
    def _owes_reply(cell: Cell) -> bool:
        """The handler of an ask raised: its error is the reply, unless the
        handler deferred the reply and already sent it."""
        deferred = cell.deferred
        return deferred is None or deferred.take()

    def run_coroutine(self, coro: Any) -> Any:
        """Run an ``async def`` handler to its end, serving other actors and
        replies meanwhile."""
        import asyncio  # here, not at start-up: ~60M instructions a process

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
        future.add_done_callback(lambda _: self.runtime.wake())
        waits = self.runtime.waits
        frame = waits.begin(cell.ref.uid, None, stacked=True) \
            if waits.enabled and cell is not None else None
        try:
            self.runtime.loop.pump_until(future.done, None)
        finally:
            if frame is not None:
                waits.end(frame)
            if cell is not None:
                cell.task = None
        return future.result()

    def defer_reply(self, uid: int) -> Reply:
        """The reply to the ask actor ``uid`` is handling, to be sent later."""
        cell = self.cells.get(uid)
        envelope = cell.envelope if cell is not None else None
        if cell is None or not isinstance(envelope, (P.Ask, P.Call)):
            raise ActorError("defer_reply() works only in a handler of an ask or a proxy call")
        if cell.deferred is None:
            key = (envelope.reply_to, envelope.call_id)
            cell.deferred = cell.parked[key] = Reply(self.runtime, cell.parked, *key, uid)
        return cell.deferred

    def statistics(self) -> list[P.ActorStats]:
        """Each actor's mailbox depth and messages handled."""
        return [P.ActorStats(uid, len(cell.mailbox), cell.handled, cell.peak)
                for uid, cell in list(self.cells.items())]

    def timers_pending(self) -> bool:
        """An asyncio timer is scheduled (quiescence: progress still to come)."""
        loop = self._async_loop
        return bool(loop is not None and getattr(loop, "_scheduled", None))

    # -- ending --------------------------------------------------------------------
    def crash(self, cell: Cell, exc: BaseException, context: str) -> None:
        try:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        except Exception:  # a traceback whose values cannot even be shown
            tb = f"{type(exc).__name__} (its traceback could not be formatted)"
        log.error("actor %s (pid %d) crashed %s:\n%s", cell.label, os.getpid(), context,
                  tb.rstrip(), extra={"actor": cell.label})
        self.end(cell, f"crashed: {safe_repr(exc)}", crashed=True, run_on_stop=False, exc=exc)

    def end(self, cell: Cell, reason: str, crashed: bool, run_on_stop: bool,
            exc: BaseException | None = None) -> None:
        """The actor of ``cell`` ends: its ``on_stop`` (if orderly), its
        deferred replies and mailbox refused, the node told."""
        if not cell.alive:
            return
        cell.alive = False
        runtime = self.runtime
        if run_on_stop:
            try:
                result = cell.actor.on_stop()
                if inspect.iscoroutine(result):
                    self.run_coroutine(result)
            except Exception:
                log.exception("on_stop of %r raised", cell.ref)
        self.cells.pop(cell.ref.uid, None)
        runtime.dead[cell.ref.uid] = reason
        for reply in list(cell.parked.values()):  # deferred replies never sent
            if reply.take():
                runtime.reply(reply._to, reply._call_id, reply._uid, False, ActorDeadError(
                    f"{cell.ref!r} ended before replying ({reason})", None, reason))
        while cell.mailbox:
            entry = cell.mailbox.popleft()
            self._counts[1] += 1
            if type(entry) is StopMark:
                if entry.reply_to is not None:
                    cell.stop_waiters.append((entry.reply_to, entry.call_id))  # type: ignore[arg-type]
            elif type(entry) is not LinkMark:
                runtime.refuse(entry, None)
        self._stopped(cell, reason, crashed, exc)
        for reply_to, call_id in cell.stop_waiters:  # asks of the service (uid 0)
            runtime.reply(reply_to, call_id, P.SERVICE_UID, True, True)
        runtime.flush_all()
