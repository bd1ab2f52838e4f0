"""The message loop: the engine every process of the runtime runs.

The same loop runs in the node (the main program) and in every host (a
spawned process). It is composed with a *handler*, the object that knows
what the process is for: the node's handler answers service requests and
keeps the actor tree; a host's handler fills mailboxes and runs actors.
The loop itself knows envelopes, not actors::

      peers                        this process
    ---------      +--------------------------------------------------+
    inbox  ------> | poll -> frames -> decode -> typed envelopes      |
    (zmq PULL      |   (MessageLoop.run_once)        |                |
     or pipe)      |                   REPLY --------+--> Calls       |
                   |                   (resolve the pending ask)      |
                   |                   TELL/ASK/CALL -> handler.deliver
                   |                                   (mailbox, or   |
                   |                                    service op)   |
                   | handler.run_ready()  runs what became ready      |
                   |   (handlers of actors; the node's queued jobs)   |
                   | Outboxes.flush_all() sends what they produced    |
    outlets <----- |   one frame per destination, in send order       |
    (zmq PUSH      +--------------------------------------------------+
     or pipe)        any thread may send (Runtime.tell/ask/reply);
                     a send from another thread wakes the loop.

One thread reads at a time, the *reader* (``ident``). In a host it is the
process's main thread; in the node, the loop thread of the ActorSystem.

Waiting without deadlock: when the reader itself waits for a reply (an ask
inside a handler), it keeps running the loop (:meth:`pump_until`), so
replies, and the messages of other actors of the same process, still flow.

Leader/follower (``lead_waits``, the node and an ``actors.mp.Process``): a
thread that waits for a reply becomes the reader for its wait, so the reply
needs no hand-off (a thread switch costs more than a Pipe round trip); the
loop thread stays parked for ``LINGER`` after, so back-to-back asks lead on.

Relief (a host, ``home``): the main thread runs handlers and holds the
reading (``_io``) only while it polls; meanwhile another thread may read
(``actors.relief``), completing replies and setting the rest aside, in
order, for the main thread. Where to change what: docs/architecture.md.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from actors.calls import Calls
from actors.handler import Handler
from actors.logs import Throttled
from actors.outbox import Outboxes
from actors.protocol import ASK, CALL, ENVELOPES, RECEIPTED, REPLY, TELL, Answer
from actors.relief import Relief
from actors.waits import WaitTracker, safe_repr
from actors.wire import RuntimeCodec
from transport.codec import DecodeError
from transport.polling import BusyWait, WakePipe

__all__ = ["MessageLoop"]

log = logging.getLogger("actors")


class MessageLoop:
    """Receiving for one process (see module doc)."""

    LINGER = 0.002  # how long the loop thread stays parked after a waiter led

    def __init__(self, network: Any, codec: RuntimeCodec, calls: Calls, outboxes: Outboxes,
                 waits: WaitTracker, handler: Handler, name: str) -> None:
        self.network = network
        self.codec = codec
        self.calls = calls
        self.outboxes = outboxes
        self.waits = waits
        self.handler = handler
        self.name = name
        self.ident: int | None = None  # the reading thread
        self.lead_waits = False
        self.busy = BusyWait()  # how a thread waiting for its own reply polls (busy_wait)
        self.malformed = 0  # frames and envelopes dropped as malformed
        self.received = 0  # envelopes decoded (quiescence counts)
        self.drops = Throttled(log)
        self._backlog: deque[bytes] = deque()
        self._waker = WakePipe()
        self.wake = self._waker.wake  # (any thread) make the poll return
        self.polls = 0  # poll_into sees a nested poll by the count
        self._reader = threading.Lock()   # held by the thread reading the inbox
        self._lead = threading.Lock()     # held by a waiter that takes over reading
        self._wanted = False
        self._led_at = 0.0
        self.home: int | None = None  # hosts: the one thread that runs handlers
        self._io = threading.RLock()  # held by whoever polls (with ``home``); re-entered by
        # the home thread when a handler run inside a delivery (a Start) waits
        self.io_wanted = False        # the home thread waits for ``_io``
        self.aside: deque[Any] = deque()  # envelopes a reliever read, for home
        self.relief = Relief(self)
        self.poller = network.new_poller()
        self.poller.register(self._waker.fd)
        self._sources: dict[Any, Any] = {}
        for source in network.sources:
            self.add_source(source)
        self._route = {kind: (ENVELOPES[kind], len(ENVELOPES[kind]._fields))
                       for kind in (TELL, ASK, CALL, RECEIPTED, REPLY)}  # type, length

    def _set_aside(self, envelopes: list[Any]) -> None:
        bad = self.codec.bad  # a reliever's envelopes wait, with their frame's flag, for home
        self.aside.extend((envelope, bad) for envelope in envelopes)

    # -- what is polled ----------------------------------------------------------
    def add_source(self, source: Any) -> None:
        """Read messages from ``source`` (its ``pollable``) too."""
        self._sources[source.pollable] = source
        self.poller.register(source.pollable)

    def remove_source(self, source: Any) -> None:
        self.poller.unregister(source.pollable)
        self._sources.pop(source.pollable, None)

    def watch(self, obj: Any) -> None:
        """Tell the handler when ``obj`` (a file descriptor) is ready."""
        self.poller.register(obj)

    def unwatch(self, obj: Any) -> None:
        self.poller.unregister(obj)

    # -- reading ------------------------------------------------------------------
    def run_once(self, timeout: float | None) -> None:
        """Poll once (up to ``timeout``), handle what came, run what is
        ready, send what that produced."""
        backlog = self._backlog
        waits = self.waits
        if waits.due != math.inf:  # a blocking wait is old enough to report soon
            waits.report_due()
            due = waits.due
            if due != math.inf:
                left = max(0.0, due - time.monotonic())
                timeout = left if timeout is None else min(timeout, left)
        if backlog or self.aside or self.handler.has_ready():
            timeout = 0
        elif self.outboxes.take_retries():
            # outboxes another thread was sending to: look again shortly
            timeout = 0.001 if timeout is None else min(timeout, 0.001)
        home = self.home is not None
        if home:
            self.take_io()
        try:
            aside = self.aside
            while aside:  # read by a reliever while a handler ran: first
                envelope, self.codec.bad = aside.popleft()  # with its frame's flag
                self.handler.deliver([envelope])
            self.poll_into(backlog, timeout)
            # Frames wait in the backlog until handled: if this thread is
            # interrupted (Ctrl-C in a waiting main thread), the next reader
            # handles what is left instead of losing it.
            while backlog:
                self.on_frame(backlog.popleft())
        finally:
            if home:
                self._io.release()
        self.handler.run_ready()
        self.outboxes.flush_all()

    def take_io(self) -> None:
        """The home thread takes the reading back from a reliever."""
        if not self._io.acquire(False):
            self.io_wanted = True
            self.wake()  # a reliever's poll returns, and it steps aside
            self._io.acquire()
            self.io_wanted = False

    def poll_into(self, backlog: deque[bytes], timeout: float | None,
                  busy: bool = True) -> None:
        """Poll once; frames go to ``backlog`` (``busy=False``: a plain poll
        even inside a busy wait, for a reliever, which waits for no reply)."""
        sources = self._sources
        self.polls += 1
        this = self.polls
        waker = self._waker.fd
        poll = self.poller.poll
        for obj in self.busy.poll(poll, timeout) if busy else poll(timeout):
            if self.polls != this:  # what ran polled again (a death waits for last
                break  # reports): a pipe listed here may be read already; a read would block
            if obj == waker:
                self._waker.drain()  # (the loop flushes after this poll)
                continue
            source = sources.get(obj)
            if source is None:
                self.handler.on_ready(obj)
                continue
            try:
                backlog.extend(self.network.read(source))
            except (EOFError, OSError):
                self.remove_source(source)
                self.handler.source_closed(source)

    def on_frame(self, frame: bytes, relief: bool = False) -> None:
        """Decode a frame and hand its envelopes on (``relief``: replies are
        completed, the rest set aside for the home thread)."""
        codec = self.codec
        outer, codec.bad = codec.bad, 0  # (an outer frame's handler may pump this one)
        try:
            envelopes = codec.decode_frame(frame)
        except DecodeError as e:
            codec.bad = outer
            self.malformed += 1
            self.dropped(f"a malformed frame of {len(frame)} bytes: {e}")
            return
        self.received += len(envelopes)
        route, take = self._route, self._set_aside if relief else self.handler.deliver
        new = tuple.__new__
        run: list[Any] = []  # envelopes for the handler, up to the next reply
        for raw in envelopes:
            try:  # the second field is an int in every kind (a uid, a call id)
                cls, size = route[raw[0]]
                if type(raw) is not list or len(raw) != size or type(raw[1]) is not int:
                    raise ValueError(f"a malformed {cls.__name__} envelope")
            except Exception as e:
                self.drop_malformed(raw, e)
                continue
            if cls is not Answer:
                run.append(new(cls, raw))
                continue
            if run:  # what came before the reply is handed on before it
                take(run)
                run = []
            try:
                self._resolve(new(cls, raw))
            except Exception as e:
                self.drop_malformed(raw, e)
        if run:
            take(run)
        codec.bad = outer

    def drop_malformed(self, what: Any, error: BaseException) -> None:
        """Count and log (rate-limited) an envelope that cannot be handled."""
        self.malformed += 1
        self.dropped(f"a malformed message {safe_repr(what, 200)}: {safe_repr(error)}")

    def dropped(self, what: str) -> None:
        """Log (rate-limited) something a peer sent that was dropped."""
        self.drops.warning(f"{self.name} dropped {what}")

    def _resolve(self, answer: Answer) -> None:
        if not self.calls.resolve(answer, self.codec.bad > 0):
            self.dropped(f"an answer from #{answer.uid} to a call it was not asked")

    def pump_until(self, done: Callable[[], bool], deadline: float | None,
                   busy: bool = False) -> None:
        """Run the loop (on the reader thread) until ``done()`` or ``deadline``.
        ``busy``: the thread waits for its own reply, and may busy-wait in
        its polls (``busy_wait``; ``transport.polling.BusyWait``)."""
        began = self.busy.begin(busy)
        try:
            self.outboxes.flush_all()
            while not done():
                timeout = None
                if deadline is not None:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        return
                self.run_once(timeout)
        finally:
            self.busy.end(began)

    def serve_forever(self, stop: Callable[[], bool]) -> None:
        """The loop thread's body: read until ``stop()``, stepping aside for
        a waiting thread (see module doc)."""
        me = threading.get_ident()
        reader, parked = self._reader, threading.Event()
        while not stop():
            if self._wanted or time.monotonic() - self._led_at < self.LINGER:
                parked.wait(self.LINGER)
                continue
            with reader:
                self.ident = me
                try:
                    while not self._wanted and not stop():
                        self.run_once(None)
                finally:
                    self.ident = None

    def read_on(self, thread: int | None) -> None:
        """Make ``thread`` the reader (a host's main thread, at start)."""
        self.ident = thread

    # -- waiting ------------------------------------------------------------------
    def wait(self, future: Any, timeout: float | None, track: bool = True) -> None:
        """Block until ``future`` is done or ``timeout`` passes.

        ``track=False``: not an edge of the wait-for graph (a timed wait of
        ``actors.mp`` ends by itself, as the standard library's do). The
        reading thread busy-waits unless ``future.busy`` is False
        (``ActorFuture.busy``).
        """
        me = threading.get_ident()
        tracker = self.waits
        if track and tracker.enabled and not future.done():
            waiter = self.handler.waiter(me, future)
            if waiter is not None:
                record = tracker.begin(waiter, future, me == self.ident,
                                       None if timeout is None else time.monotonic() + timeout)
                try:
                    self._wait(future, timeout, me)
                finally:
                    tracker.end(record)
                return
        self._wait(future, timeout, me)

    def _wait(self, future: Any, timeout: float | None, me: int) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        if me == self.ident:
            self.pump_until(future.done, deadline, getattr(future, "busy", True))
            return
        if future.done():
            return
        if self.home is not None:  # a host's other thread: read while home does not
            self.relief.read_until(future, deadline)
            return
        if not self.lead_waits or not self._lead.acquire(False):
            _block(future, timeout)  # just wait for whoever reads to resolve it
            return
        try:
            self._wanted = True
            if not self._reader.acquire(False):
                self.wake()  # the loop thread steps aside while the request flies
                if not self._reader.acquire(True, -1 if timeout is None else max(timeout, 0)):
                    return
            try:
                self.ident = me
                self.pump_until(future.done, deadline, getattr(future, "busy", True))
            finally:
                self.ident = None
                self._reader.release()
        finally:
            self._wanted = False
            self._led_at = time.monotonic()
            self._lead.release()

    def take_reading(self, timeout: float) -> bool:
        """Become the reader (a thread finishing the process's work after
        the loop thread ended); release with :meth:`give_up_reading`."""
        if not self._reader.acquire(True, timeout):
            return False
        self.ident = threading.get_ident()
        return True

    def give_up_reading(self) -> None:
        self.ident = None
        self._reader.release()

    # -- state --------------------------------------------------------------------
    def idle(self, poll: bool) -> bool:
        """Nothing waits to be sent, read or handled (with ``poll``, on the
        reader thread: the inbox has nothing unread either)."""
        if self._backlog or not self.outboxes.idle():
            return False
        if poll:
            for obj in self.poller.poll(0):
                if obj in self._sources:
                    return False
        return True

    def foreign_wait(self, future: Any) -> None:
        """``future`` is waited on by other means than :meth:`wait`
        (``concurrent.futures.wait``): make sure its reply gets read."""
        if self.home is not None:
            self.relief.watch(future)

    def close(self) -> None:
        self.relief.close()
        self._waker.close()


def _block(future: Any, timeout: float | None) -> None:
    try:
        concurrent.futures.Future.exception(future, timeout)
    except (TimeoutError, concurrent.futures.CancelledError):
        pass
