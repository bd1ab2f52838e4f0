"""The message engine every process runs: the node (main program) and hosts.

One thread per process, the *loop thread*, owns receiving: it polls the
inbox, decodes frames and hands envelopes to ``handle`` (the node answers
services, a host fills mailboxes). Any thread may send.

Sending batches without adding latency: a message is encoded at once (so a
bad value raises at the send site) and appended to the outbox of its
destination. An ask flushes its outbox immediately, since someone waits for
the reply. A tell from the loop thread is flushed when the current batch of
incoming messages is done; a tell from another thread wakes the loop, which
flushes everything queued by then. Under load many messages share one
transport send; a lone message goes out without delay. One outbox per
destination, flushed under its lock, keeps send order per sender and
receiver.

Waiting without deadlock: when the loop thread itself waits for a reply (an
ask inside a handler), it keeps polling (``pump_until``), so replies, and the
messages of other actors of the same process, still flow.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from threading import get_ident
from typing import Any

from actors import protocol as P
from actors.errors import ActorDeadError, SerializationError
from actors.ref import ActorFuture, ActorRef
from actors.waits import WaitTracker
from transport.codec import Codec, DecodeError, EncodeError

log = logging.getLogger("actors")

EXT_REF = 32


class Undecodable:
    """Stands in a decoded message for a part that could not be rebuilt."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def find_undecodable(obj: Any) -> Undecodable | None:
    if isinstance(obj, Undecodable):
        return obj
    if isinstance(obj, (list, tuple, set, frozenset)):
        items: Any = obj
    elif isinstance(obj, dict):
        items = itertools.chain(obj.keys(), obj.values())
    else:
        return None
    for item in items:
        found = find_undecodable(item)
        if found is not None:
            return found
    return None


class LenientCodec(Codec):
    """A codec that turns an undecodable ext value into :class:`Undecodable`
    instead of failing the whole frame, so one bad message costs only
    itself."""

    def __init__(self) -> None:
        super().__init__()
        self.bad = 0

    def _ext_hook(self, code: int, data: bytes) -> Any:
        try:
            return super()._ext_hook(code, data)
        except Exception as e:
            self.bad += 1
            return Undecodable(e)


class Outbox:
    """Encoded envelopes waiting for one destination.

    ``lock`` guards ``items`` only and is never held during I/O, so posting
    never waits for a transport. ``sending`` is held while frames are sent,
    which keeps them in order; the loop thread only ever tries it (a Pipe
    send may block, and the loop thread is what drains the other side).
    """

    __slots__ = ("lock", "sending", "items", "send", "address", "held", "sent")

    def __init__(self, address: str, send: Callable[[bytes], None]) -> None:
        self.address = address
        self.lock = threading.Lock()
        self.sending = threading.Lock()
        self.items: list[bytes] = []
        self.send = send
        # Not None while the process at this address is being replaced (a
        # supervised restart): envelopes wait here instead of being sent.
        self.held: list[bytes] | None = None
        self.sent = 0  # envelopes handed to the transport (quiescence counts)


def refuse_send(frame: bytes) -> None:
    raise ConnectionError("the process at this address is gone")


# Service ops (P.OP_EXT) that layers above the runtime handle: name ->
# fn(runtime, args), run on the thread reading the inbox (actors.mp: a
# queue recalling the items it lent to this process).
EXTENSIONS: dict[str, Callable[[Any, list[Any]], None]] = {}


class Runtime:
    """State and loop shared by the node and the hosts (see module doc)."""

    def __init__(self, node_id: str, network: Any, name: str) -> None:
        self.node_id = node_id
        self.network = network
        self.name = name
        self.address: str = network.address
        self.codec = LenientCodec()
        self.codec.register(ActorRef, EXT_REF, self._ref_to_wire, self._ref_from_wire)
        # pickle (actors.mp) only on links that stay on this host
        self.codec.allow_pickle = not str(self.address).startswith("tcp://")
        self.outboxes: dict[str, Outbox] = {}
        self._outbox_lock = threading.Lock()
        self._to_flush: set[Outbox] = set()
        self._retry: set[Outbox] = set()
        self._backlog: collections.deque[bytes] = collections.deque()
        self.calls: dict[int, ActorFuture] = {}
        self._call_ids = itertools.count(1)
        self.dead: dict[int, str] = {}
        self.gone: set[str] = set()  # addresses of processes gone for good
        self.hold_limit = 10_000     # envelopes held per address during a restart
        self.dead_letters = 0
        self.malformed = 0
        self.received = 0  # envelopes decoded (quiescence counts)
        # blocking waits of this process (the deadlock detector's input);
        # off until the node or the host configures it
        self.waits = WaitTracker(self, None, remote=False)
        self.loop_ident: int | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._woken = False
        self._reader = threading.Lock()   # held by the thread reading the inbox
        self._lead = threading.Lock()     # held by a waiter that takes over reading
        self._wanted = False
        self._led_at = 0.0
        # True where the loop thread runs serve_forever (the node): waiting
        # threads may then take over reading.
        self.lead_waits = False
        self.poller = network.new_poller()
        self.poller.register(self._wake_r)
        self.sources = list(network.sources)
        for source in self.sources:
            self.poller.register(source.pollable)
        self._by_pollable = {s.pollable: s for s in self.sources}
        self.service = self.service_at(network.node_address, "node")

    # -- refs ------------------------------------------------------------
    @staticmethod
    def _ref_to_wire(ref: ActorRef) -> list[Any]:
        return [ref.node, ref.uid, ref.address, ref.name]

    def _ref_from_wire(self, value: list[Any]) -> ActorRef:
        node, uid, address, name = value
        return ActorRef(node, uid, address, name, self)

    def make_ref(self, uid: int, address: str, name: str | None) -> ActorRef:
        return ActorRef(self.node_id, uid, address, name, self)

    def service_at(self, address: str, name: str | None = None) -> ActorRef:
        """The runtime service (uid 0) of the process at ``address``."""
        return ActorRef(self.node_id, P.SERVICE_UID, address, name, self)

    def service_envelope(self, payload: tuple[Any, ...]) -> bytes:
        """A tell of ``(op, ...)`` to a runtime service, encoded."""
        return self.encode([P.TELL, P.SERVICE_UID, list(payload), True])

    # -- sending -----------------------------------------------------------
    def encode(self, envelope: list[Any]) -> bytes:
        try:
            return self.codec.encode(envelope)
        except EncodeError as e:
            raise SerializationError(str(e), e.type_name) from None

    def _outbox(self, address: str) -> Outbox:
        box = self.outboxes.get(address)
        if box is None:
            with self._outbox_lock:
                box = self.outboxes.get(address)
                if box is None:
                    if address in self.gone:  # never reconnect to the dead
                        box = Outbox(address, refuse_send)
                    else:
                        box = Outbox(address, self.network.sender(address))
                    self.outboxes[address] = box
        return box

    # A burst of tells leaves in frames of at most this many messages, so the
    # receiver starts working while the sender is still producing.
    FLUSH_COUNT = 256

    def post(self, address: str, data: bytes, flush: bool = False) -> None:
        """Queue one encoded envelope for ``address`` (see module doc)."""
        box = self.outboxes.get(address) or self._outbox(address)
        with box.lock:
            items = box.items
            items.append(data)
            count = len(items)
        if flush or count >= self.FLUSH_COUNT:
            self.flush(box)
        elif count == 1:
            # This append made the outbox non-empty (decided under its lock),
            # so it is this call's job to get it flushed; later appends ride
            # along with it.
            self._to_flush.add(box)
            if get_ident() != self.loop_ident:
                self.wake()

    def wake(self) -> None:
        if not self._woken:
            self._woken = True
            try:
                os.write(self._wake_w, b"!")
            except (BlockingIOError, OSError):
                pass

    def flush(self, box: Outbox) -> None:
        """Send everything queued in ``box``, including what is added while
        sending. On the loop thread, if another thread is sending to the
        same destination, leave it to that thread (and look again soon)."""
        if not box.sending.acquire(blocking=get_ident() != self.loop_ident):
            self._retry.add(box)
            return
        try:
            while True:
                with box.lock:
                    items = box.items
                    if not items:
                        return
                    box.items = []
                    held = box.held
                    if held is not None:
                        room = max(0, self.hold_limit - len(held))
                        held.extend(items[:room])
                        if len(items) > room:
                            self._overflow(box.address, items[room:])
                        continue
                try:
                    box.send(self.codec.frame(items))
                    box.sent += len(items)
                except Exception as e:  # the peer is gone, or we are closing
                    self.lose(len(items))
                    log.debug("could not send %d messages to %s: %s",
                              len(items), box.address, e)
        finally:
            box.sending.release()

    def flush_all(self) -> None:
        pending = self._to_flush
        while pending:
            try:
                box = pending.pop()
            except KeyError:  # another thread took the last one
                break
            self.flush(box)

    # -- messages ----------------------------------------------------------
    def tell(self, ref: ActorRef, message: Any) -> None:
        if ref.uid in self.dead:
            self.count_dead_letter(ref, message)
            return
        if type(message) is tuple:
            envelope = [P.TELL, ref.uid, list(message), True]
        else:
            envelope = [P.TELL, ref.uid, message, False]
        self.post(ref.address, self.encode(envelope))

    def ask(self, ref: ActorRef, message: Any,
            on_done: Callable[[ActorFuture], None] | None = None) -> ActorFuture:
        """Send an ask. ``on_done`` is attached to the future before the
        request leaves, so it runs on the thread that reads the reply,
        before that thread handles anything that came after it."""
        is_tuple = type(message) is tuple
        return self._request(ref, [P.ASK, ref.uid, list(message) if is_tuple else message,
                                   is_tuple, self.address], on_done)

    def call(self, ref: ActorRef, method: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> ActorFuture:
        return self._request(ref, [P.CALL, ref.uid, method, list(args), kwargs, self.address])

    def _request(self, ref: ActorRef, envelope: list[Any],
                 on_done: Callable[[ActorFuture], None] | None = None) -> ActorFuture:
        call_id = next(self._call_ids)
        envelope.append(call_id)
        data = self.encode(envelope)
        future = ActorFuture(self, call_id, ref)
        future.what = envelope
        if on_done is not None:
            future.add_done_callback(on_done)
        # Register before checking for death: mark_dead sets `dead` then scans
        # `calls`, so one of the two always sees the other.
        self.calls[call_id] = future
        reason = self.dead.get(ref.uid)
        if reason is not None:
            if self.calls.pop(call_id, None) is not None:
                future.set_exception(ActorDeadError(f"{ref!r} is dead ({reason})", ref, reason))
            return future
        self.post(ref.address, data, flush=True)
        return future

    def reply(self, address: str, call_id: int, ok: bool, value: Any) -> None:
        is_tuple = type(value) is tuple
        try:
            data = self.encode([P.REPLY, call_id, ok, list(value) if is_tuple else value, is_tuple])
        except SerializationError as e:
            data = self.encode([P.REPLY, call_id, False, e, False])
        self.post(address, data)

    def resolve(self, envelope: list[Any]) -> None:
        _, call_id, ok, value, is_tuple = envelope
        future = self.calls.pop(call_id, None)
        if future is None:
            return  # timed out or forgotten: a late reply is dropped
        if is_tuple:
            value = tuple(value)
        bad = find_undecodable(value) if self.codec.bad else None
        try:
            if bad is not None:
                future.set_exception(SerializationError(f"reply could not be decoded: {bad.error}"))
            elif ok:
                future.set_result(value)
            else:
                future.set_exception(value if isinstance(value, BaseException)
                                     else SerializationError(f"bad error reply {value!r}"))
        except concurrent.futures.InvalidStateError:
            pass

    def refuse(self, envelope: list[Any], error: BaseException | None = None) -> None:
        """An envelope that will not be handled: fail its asker (by default
        with ActorDeadError), or count a tell as a dead letter."""
        if envelope[0] in (P.ASK, P.CALL):
            if error is None:
                reason = self.dead.get(envelope[1], "no such actor here")
                error = ActorDeadError(f"actor #{envelope[1]} is dead ({reason})", None, reason)
            self.reply(envelope[-2], envelope[-1], False, error)
        else:
            self.lose(1)
            if error is not None:
                log.warning("%s dropped a message: %s", self.name, error)

    def lose(self, count: int) -> None:
        """``count`` messages found no actor: dead letters."""
        self.dead_letters += count

    def _overflow(self, address: str, items: list[bytes]) -> None:
        """Envelopes past the restart buffer of a held address: dead
        letters; an ask among them fails now rather than time out."""
        self.lose(len(items))
        log.warning("%s: %d messages to %s exceed the restart buffer (%d): dead letters",
                    self.name, len(items), address, self.hold_limit)
        for data in items:
            try:
                envelope = self.codec.decode(data)
            except Exception:
                continue
            if envelope[0] in (P.ASK, P.CALL):
                future = self.calls.pop(envelope[-1], None)
                if future is not None:
                    try:
                        future.set_exception(ActorDeadError(
                            f"actor #{envelope[1]} is restarting and this process's restart "
                            f"buffer for it ({self.hold_limit} messages) is full",
                            future.target, "restart buffer full"))
                    except concurrent.futures.InvalidStateError:
                        pass

    def forget_call(self, call_id: int) -> None:
        self.calls.pop(call_id, None)

    def count_dead_letter(self, ref: Any, message: Any) -> None:
        self.lose(1)
        log.info("dead letter to %r: %.200r", ref, message)

    # -- deaths ----------------------------------------------------------------
    def hold(self, address: str, uids: list[int], reason: str) -> None:
        """The process at ``address`` died and a supervisor may restart its
        actor there: asks pending on ``uids`` fail now, and what is sent to
        the address from now on waits (up to ``hold_limit`` envelopes) for
        :meth:`resume` or :meth:`release`."""
        box = self.outboxes.get(address)
        if box is None:  # connect only if something is ever sent there
            with self._outbox_lock:
                box = self.outboxes.setdefault(address, Outbox(address, self._lazy_sender(address)))
        with box.lock:
            if box.held is None:
                box.held = []
        gone = set(uids)
        self._fail_calls(lambda target: target.uid in gone, reason)

    def _lazy_sender(self, address: str) -> Callable[[bytes], None]:
        def send(frame: bytes) -> None:
            box = self.outboxes[address]
            box.send = self.network.sender(address)
            box.send(frame)
        return send

    def revive(self, address: str) -> None:
        """A new process listens at an address that had gone (tcp ports are
        reused): talk to it afresh."""
        self.gone.discard(address)
        with self._outbox_lock:
            self.outboxes.pop(address, None)

    def resume(self, address: str) -> None:
        """A new process took over ``address``: send what was held, first."""
        if address in self.gone:
            self.revive(address)
            return
        box = self.outboxes.get(address)
        if box is None:
            return
        with box.lock:
            held, box.held = box.held, None
            if held:
                box.items[:0] = held
            pending = bool(box.items)
        if pending:
            self._to_flush.add(box)
            self.wake()

    def release(self, address: str) -> None:
        """``address`` will not come back: what was held for it is dead
        letters (asks in it have failed through :meth:`mark_dead`)."""
        box = self.outboxes.get(address)
        if box is not None:
            with box.lock:
                held, box.held = box.held, None
            if held:
                self.lose(len(held))
        self.forget_address(address)

    def forget_address(self, address: str) -> None:
        """The process at ``address`` is gone for good: close the outlet
        (never reconnect) and refuse whatever is still sent there."""
        self.gone.add(address)
        box = self.outboxes.get(address)
        if box is not None:
            with box.lock:
                lost, box.items = len(box.items), []
                box.held = None
                box.send = refuse_send
            self.lose(lost)
        self.network.drop(address)

    def mark_dead(self, uids: list[int], reason: str) -> None:
        """These actors are gone: asks pending on them fail now."""
        gone = set(uids)
        for uid in gone:
            self.dead[uid] = reason
        self._fail_calls(lambda target: target.uid in gone, reason)

    def fail_address(self, address: str, reason: str) -> None:
        """A process is gone: every ask pending on it fails now (actors and
        its runtime service alike)."""
        self._fail_calls(lambda target: target.address == address, reason)

    def _fail_calls(self, matches: Callable[[ActorRef], bool], reason: str) -> None:
        for call_id, future in list(self.calls.items()):
            target = future.target
            if target is not None and matches(target):
                if self.calls.pop(call_id, None) is not None:
                    try:
                        future.set_exception(ActorDeadError(
                            f"{target!r} died before replying ({reason})", target, reason))
                    except concurrent.futures.InvalidStateError:
                        pass

    # -- receiving -------------------------------------------------------------
    def wait(self, future: concurrent.futures.Future, timeout: float | None,
             track: bool = True) -> None:
        """Block until ``future`` is done or ``timeout`` passes.

        Leader/follower: where the loop thread runs :meth:`serve_forever`
        (the node), a thread that waits becomes the reader of the inbox for
        the time of its wait, so its reply needs no hand-off from the loop
        thread (a thread switch costs more than a Pipe round trip). One
        thread reads at a time; other waiters wait on their future.

        ``track=False``: not an edge of the wait-for graph (``actors.mp``'s
        timed waits end by themselves, as the standard library's do).
        """
        me = threading.get_ident()
        tracker = self.waits
        if track and tracker.enabled and not future.done():
            waiter = self.waiter(me, future)
            if waiter is not None:
                record = tracker.begin(waiter, future, me == self.loop_ident,
                                       None if timeout is None else time.monotonic() + timeout)
                try:
                    self._wait(future, timeout, me)
                finally:
                    tracker.end(record)
                return
        self._wait(future, timeout, me)

    def waiter(self, thread: int, future: concurrent.futures.Future) -> Any:
        """Who blocks when ``thread`` waits for ``future``: an actor uid, a
        thread key, or None when the wait is not an edge of the wait-for
        graph (see ``actors.waits``)."""
        return None

    def _wait(self, future: concurrent.futures.Future, timeout: float | None, me: int) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        if me == self.loop_ident:
            self.pump_until(future.done, deadline)
            return
        if future.done():
            return
        if not self.lead_waits or not self._lead.acquire(blocking=False):
            try:  # just wait for whoever reads to resolve it
                concurrent.futures.Future.exception(future, timeout)
            except (TimeoutError, concurrent.futures.CancelledError):
                pass
            return
        try:
            self._wanted = True
            if not self._reader.acquire(blocking=False):
                self.wake()  # the loop thread steps aside while the request flies
                if not self._reader.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
                    return
            try:
                self.loop_ident = self.network.loop_ident = me
                self.pump_until(future.done, deadline)
            finally:
                self.loop_ident = self.network.loop_ident = None
                self._reader.release()
        finally:
            self._wanted = False
            self._led_at = time.monotonic()
            self._lead.release()

    LINGER = 0.002  # how long the loop thread stays parked after a waiter led

    def serve_forever(self, stop: Callable[[], bool]) -> None:
        """The loop thread's body: read until ``stop()``, stepping aside for
        a waiting thread (see :meth:`wait`). After a waiter has led, the loop
        thread stays parked for ``LINGER`` seconds: back-to-back asks then
        take over without waking it (each wake costs the asker a GIL switch).
        """
        me = threading.get_ident()
        reader, parked = self._reader, threading.Event()
        while not stop():
            if self._wanted or time.monotonic() - self._led_at < self.LINGER:
                parked.wait(self.LINGER)
                continue
            with reader:
                self.loop_ident = self.network.loop_ident = me
                try:
                    while not self._wanted and not stop():
                        self.run_once(None)
                finally:
                    self.loop_ident = self.network.loop_ident = None

    def pump_until(self, done: Callable[[], bool], deadline: float | None) -> None:
        """Run the loop (on the loop thread) until ``done()`` or ``deadline``."""
        self.flush_all()
        while not done():
            timeout = None
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return
            self.run_once(timeout)

    def run_once(self, timeout: float | None) -> None:
        backlog = self._backlog
        if self.waits.due != math.inf:  # a blocking wait is old enough to report soon
            self.waits.report_due()
            due = self.waits.due
            if due != math.inf:
                left = max(0.0, due - time.monotonic())
                timeout = left if timeout is None else min(timeout, left)
        if backlog or self.has_work():
            timeout = 0
        elif self._retry:
            # outboxes another thread was sending to: look again shortly
            self._to_flush.update(self._retry)
            self._retry.clear()
            timeout = 0.001 if timeout is None else min(timeout, 0.001)
        for obj in self.poller.poll(timeout):
            if obj == self._wake_r:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                # Cleared only after draining: a wake() racing with the drain
                # either wrote a byte we will see, or saw True and relies on
                # the flush that follows in this same call.
                self._woken = False
                continue
            source = self._by_pollable.get(obj)
            if source is None:
                self.on_event(obj)
                continue
            backlog.extend(self.read(source))
        # Frames wait in the backlog until handled: if this thread is
        # interrupted (Ctrl-C in a waiting main thread), the next reader
        # handles what is left instead of losing it.
        while backlog:
            self.on_frame(backlog.popleft())
        self.after_poll()
        self.flush_all()

    def read(self, source: Any) -> list[bytes]:
        return source.recv_frames()

    def on_frame(self, frame: bytes) -> None:
        codec = self.codec
        codec.bad = 0
        try:
            envelopes = codec.decode_frame(frame)
        except DecodeError as e:
            self.malformed += 1
            log.warning("%s dropped a malformed frame of %d bytes: %s", self.name, len(frame), e)
            return
        self.received += len(envelopes)
        handle = self.handle
        for envelope in envelopes:
            try:
                kind = envelope[0]
                if kind == P.REPLY:
                    self.resolve(envelope)
                elif kind == P.TELL or kind == P.ASK or kind == P.CALL:
                    handle(envelope)
                else:
                    raise ValueError(f"unknown envelope kind {kind!r}")
            except Exception as e:
                self.malformed += 1
                log.warning("%s dropped a malformed message %.200r: %r", self.name, envelope, e)

    def sent_count(self) -> int:
        """Envelopes this process has handed to its transport."""
        return sum(box.sent for box in list(self.outboxes.values()))

    def idle_transport(self, poll: bool) -> bool:
        """Nothing waits to be sent, read or handled by this process (with
        ``poll``, on the loop thread: its inbox has nothing unread either)."""
        if self._backlog or self._to_flush or self._retry:
            return False
        if any(box.items for box in list(self.outboxes.values())):
            return False
        if poll:
            for obj in self.poller.poll(0):
                if obj in self._by_pollable:
                    return False
        return True

    def extension(self, payload: list[Any]) -> None:
        """A P.OP_EXT service tell: run its registered hook."""
        fn = EXTENSIONS.get(payload[1])
        if fn is None:
            log.warning("%s: no extension %r", self.name, payload[1])
            return
        try:
            fn(self, payload[2:])
        except Exception:
            log.exception("%s: extension %r failed", self.name, payload[1])

    # hooks
    def handle(self, envelope: list[Any]) -> None:
        """A TELL, ASK or CALL envelope arrived (replies never reach here)."""
        raise NotImplementedError

    def on_event(self, obj: Any) -> None:
        """A registered pollable that is not a message source is ready."""

    def after_poll(self) -> None:
        """Called after each poll, on the loop thread."""

    def has_work(self) -> bool:
        """True when ``after_poll`` has work, so polling must not block."""
        return False

    def close(self, linger: float = 1.0, flush: bool = True) -> None:
        """Send what is queued (unless ``flush`` is False), close the
        transport (waiting up to ``linger`` s for delivery) and the wake pipe."""
        for box in list(self.outboxes.values()):
            if flush:
                self.flush(box)
            else:
                box.items.clear()
        self.network.close(linger)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
