"""The direct path of a Queue, the producer's and the consumer's sides
(the protocol, and the queue's side, are in ``actors.mp.routes``).

Producer. A ``Queue`` handle in a process that reads its inbox on a thread
of its own says who it is with its batches of puts (its handle number,
its process's address, the ref to watch). Offered a route (``mp.route``),
it sends ``("routed", e)`` with its next batch; told to go (``mp.go``), it
sends ``("direct", e)`` to the queue and its batches, as they come, to the
consumer's process (``mp.items``), counting them; told to stop
(``mp.unroute``) it answers at once with that count and puts through the
queue again. Every change of route happens where its batches are sent,
under the handle's ``sending`` lock, so each batch goes one way or the
other, and the markers sit between them in the order the program put.

Consumer. Told of a route (``mp.open``), it answers ``route_ok`` and from
then on a ``get`` that finds nothing here waits here (for the queue's
pushes and the producers' items), without asking the queue. A producer's
items are held until the queue passes on ``mp.opened``, then taken in the
order they came. Recalled with counts, it waits until it has received
them all, then gives back what it holds. Its handle asks for its routes to
end, and waits for that recall (up to 5 s), before it gives back on its
own: when closed, before ``qsize()`` and ``full()``, and at exit. While
routed, a handle is kept alive (its items must not be collected with it).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from actors import protocol as P
from actors.errors import ActorDeadError
from actors.mp import batching, context
from actors.mp.loans import Borrower, _handles, recall
from actors.mp.primitive import CANCELLED, EMPTY, check_timeout, unpack
from actors.protocol import Ext

__all__ = ["NOTHING", "Consumer", "Producer"]

NOTHING = object()
UNROUTE_WAIT = 5.0  # how long a consumer waits for its routes to close before giving back
LOOK_DEAD = 0.5     # how often a routed get looks whether its queue is lost

# route states on the producer's side ([epoch, state, address, consumer, count])
OFFERED, ROUTED, GO, OPEN, CLOSING = range(5)

# handles in a route, kept alive until it ends
_producing: dict[int, Any] = {}
_consuming: dict[int, Any] = {}


class Producer:
    """The producer's side (a mixin of a ``Queue`` handle, with ``Batched``)."""

    _ref: Any
    _handle: int
    _joinable: bool
    LOCAL_FIELDS = ("_route", "_me", "_envelope")

    def _init_producer(self) -> None:
        self._route: list[Any] | None = None
        self._me: Any = None  # (handle, address, ref) if it can be routed; False if not

    def _identity(self) -> Any:
        """Who this handle is, for the queue to offer it a route; False
        where that cannot be (see module doc)."""
        if self._joinable or not context.can_lend():
            return False
        runtime = context.runtime()
        for name, fn in (("mp.route", _on_route), ("mp.go", _on_go),
                         ("mp.unroute", _on_unroute)):
            runtime.extensions[name] = fn
        me = (self._handle, runtime.address, context.me()[2])
        # What a batch's envelope adds to its items, either way it goes (an
        # item that fits no batch fails at its put, never later)
        ref, big = context.bind(self._ref), 1 << 62
        plain = runtime.encode(_tell(ref, ("put_many", [], *me)))
        direct = runtime.service_envelope(Ext("mp.items", [big, big, [], ref]))
        self._envelope = max(len(plain), len(direct)) + 16  # (a longer array's header)
        return me

    def _due(self) -> bool:
        """A marker must leave even with no items (under batching's lock)."""
        route = self._route
        return route is not None and route[1] == CLOSING

    def _deliver(self, runtime: Any, ref: Any, items: list[Any]) -> None:
        """Send a batch (may be empty) and the marker due before it: to the
        queue, or straight to the consumer (see module doc)."""
        if ref.uid in runtime.dead:
            self._route = None
            _producing.pop(self._handle, None)
            return
        marker = direct = None
        with batching._lock:  # (the reading thread changes the state under it)
            route = self._route
            if route is not None:
                epoch, state = route[0], route[1]
                if state == OFFERED:
                    marker, route[1] = ("routed", self._handle, epoch), ROUTED
                elif state == GO:
                    marker, route[1] = ("direct", self._handle, epoch), OPEN
                elif state == CLOSING:
                    marker, self._route = ("unrouted", self._handle, epoch, route[4]), None
                    _producing.pop(self._handle, None)
                direct = route if route[1] == OPEN else None
        if marker is not None:
            runtime.post(ref.address, runtime.encode(_tell(ref, marker)))
        if not items:
            return
        if direct is not None:  # (its count only changes here, under the sending lock)
            runtime.tell_service(direct[2], Ext("mp.items", [direct[3], direct[0], items, ref]))
            direct[4] += len(items)
            return
        me = self._me
        message = ("put_many", items, *me) if me else ("put_many", items)
        runtime.post(ref.address, runtime.encode(_tell(ref, message)))


def _tell(ref: Any, message: Any) -> list[Any]:
    return P.Tell.wire(ref.uid, message)


def _on_route(runtime: Any, args: list[Any]) -> None:
    """The queue offers a route (see module doc)."""
    producer, epoch, address, consumer, queue_ref = args
    handle = _handles.get(producer)
    taken = not isinstance(handle, Producer) or getattr(handle, "_closed", True)
    if not taken:
        with batching._lock:
            taken = handle._route is not None  # (one at a time: cannot happen)
            if not taken:
                handle._route = [epoch, OFFERED, address, consumer, 0]
                _producing[producer] = handle
    if taken:  # declined: it sent nothing straight
        runtime.tell(queue_ref, ("unrouted", producer, epoch, 0))


def _on_go(runtime: Any, args: list[Any]) -> None:
    producer, epoch = args
    handle = _producing.get(producer)
    if handle is None:
        return
    with batching._lock:
        route = handle._route
        if route is not None and route[0] == epoch and route[1] == ROUTED:
            route[1] = GO


def _on_unroute(runtime: Any, args: list[Any]) -> None:
    """The queue ends the route: the answer leaves as soon as the loop
    sends what is waiting."""
    producer, epoch, queue_ref = args
    handle = _producing.get(producer)
    with batching._lock:
        route = handle._route if handle is not None else None
        if route is not None and route[0] == epoch:
            route[1] = CLOSING
            batching._unsent[id(handle)] = handle
        else:
            route = None
    if route is None:
        runtime.tell(queue_ref, ("unrouted", producer, epoch, 0))
    else:
        runtime.outboxes.kick(batching._flush)


class Consumer(Borrower):
    """The consumer's side (a ``Borrower`` that can be routed to)."""

    _closed: bool
    LOCAL_FIELDS = (*Borrower.LOAN_FIELDS, "_routes", "_got", "_owed", "_arrived")

    def _init_loans(self) -> None:
        super()._init_loans()
        self._routes: dict[int, list[Any] | None] = {}  # epoch -> held items (None: opened)
        self._got: dict[int, int] = {}                # epoch -> direct items received
        self._owed: dict[int, int | None] | None = None  # a recall's counts, waiting
        self._arrived = threading.Condition(self._lock)

    @staticmethod
    def _listen(runtime: Any) -> None:
        """This process may be lent items, recalled and routed to."""
        if "mp.open" not in runtime.extensions:
            for name, fn in (("mp.recall", recall), ("mp.open", _on_open),
                             ("mp.items", _on_items), ("mp.opened", _on_opened),
                             ("mp.closed", _on_closed)):
                runtime.extensions[name] = fn

    def _get_waiting(self, block: bool, timeout: float | None) -> Any:
        """``Queue.get`` once nothing is lent here: wait for a loan asked
        ahead, for a route's items, or ask the queue."""
        wait = check_timeout(block, timeout)
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            with self._lock:
                if self._buffer:
                    return unpack(self._buffer.popleft())
            ahead = self._ahead
            if ahead is True:  # another thread of this process is sending it
                time.sleep(0)
                continue
            if ahead is not None:  # its answer first (never a get meanwhile)
                self._wait_ahead(None if deadline is None or wait == 0 else
                                 max(0.0, deadline - time.monotonic()))
                if not ahead.done():
                    raise queue.Empty  # (the wait timed out)
                continue
            if self._routes:  # the items come here by themselves
                item = self._wait_routed(deadline)
                if item is not NOTHING:
                    return unpack(item)
                continue
            address = None
            if context.can_lend():
                runtime = context.runtime()
                self._listen(runtime)
                address = runtime.address
            message = ("get", context.token(), context.me(), self._want, self._handle, address,
                       wait != 0)
            with self._lock:
                self._lent = False  # a get tells the queue we used what we had
                self._getting += 1
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                answer = self._wait(message, left, self._received)
            finally:
                with self._lock:
                    self._getting -= 1
            if answer == EMPTY or answer == CANCELLED:
                raise queue.Empty

    def _ask_ahead(self) -> None:
        if not self._routes:  # (routed: the items come by themselves)
            super()._ask_ahead()

    def _wait_routed(self, deadline: float | None) -> Any:
        """While routed: the next item, waited for here (``queue.Empty``
        past ``deadline``); NOTHING once no route is left. Every
        ``LOOK_DEAD`` s it looks whether the queue is lost (its process died:
        nobody would end the routes then)."""
        ref = context.bind(self._ref)
        dead = ref._runtime.dead
        with self._lock:
            while self._routes and not self._buffer:
                reason = dead.get(ref.uid)
                if reason is not None:
                    self._forget(list(self._routes))
                    raise self._lost(ActorDeadError("", ref, reason))  # type: ignore[attr-defined]
                left = LOOK_DEAD if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise queue.Empty
                self._arrived.wait(min(left, LOOK_DEAD))
            if self._buffer:
                return self._buffer.popleft()
        return NOTHING

    def _arrive(self, runtime: Any, epoch: int, items: list[Any], queue_ref: Any) -> None:
        """Items pushed by the queue (epoch 0) or sent by a producer."""
        late = False
        with self._lock:
            if epoch == 0:
                self._buffer.extend(items)
            elif epoch in self._routes:
                held = self._routes[epoch]
                (self._buffer if held is None else held).extend(items)
                self._got[epoch] = self._got.get(epoch, 0) + len(items)
            else:
                late = True  # its route ended (its producer died): back to the queue
            if not late:
                self._lent = True
                self._arrived.notify_all()
            settle = self._owed is not None and self._paid()
        if late:
            runtime.tell(queue_ref, ("put_many", items))
        elif settle:
            self._settle()

    def _paid(self) -> bool:
        return all(n is None or self._got.get(epoch, 0) >= n
                   for epoch, n in (self._owed or {}).items())

    def _recalled(self, counts: list[Any] | None) -> None:
        if counts is None:
            super()._recalled(None)
            return
        with self._lock:
            owed = self._owed or {}
            owed.update(zip(counts[::2], counts[1::2]))
            self._owed = owed
            paid = self._paid()
        if paid:
            self._settle()

    def _settle(self) -> None:
        """A recall's counts are all here: its routes end, and everything
        held goes back."""
        with self._lock:
            owed, self._owed = self._owed, None
            if owed is None:
                return
            self._forget(owed)
        self._give_back(recalled=True)

    def _forget(self, epochs: Any) -> None:
        """Under ``_lock``: these routes are over; what they held is next
        here (after what came before it), and waiting gets look again."""
        for epoch in epochs:
            held = self._routes.pop(epoch, None)
            if held:
                self._buffer.extend(held)
            self._got.pop(epoch, None)
        if not self._routes:
            _consuming.pop(self._handle, None)  # (no longer kept alive)
        self._arrived.notify_all()

    def _end_route(self, epoch: int, opened: bool) -> None:
        """``mp.opened`` (its items are next) or ``mp.closed`` (it ended)."""
        with self._lock:
            if epoch not in self._routes:
                return
            if not opened:
                self._forget([epoch])
                return
            held = self._routes[epoch]
            if held:
                self._buffer.extend(held)
            self._routes[epoch] = None
            self._arrived.notify_all()

    def _give_back(self, recalled: bool = False) -> None:
        if not recalled and self._routes and context.runtime().loop.ident != \
                threading.get_ident():
            self._tell(("unroute", self._handle))  # (the recall gives back)
            with self._lock:
                if not self._arrived.wait_for(lambda: not self._routes, UNROUTE_WAIT):
                    return  # still routed: what is here goes back with the recall, in order
        super()._give_back(recalled)


def _on_open(runtime: Any, args: list[Any]) -> None:
    consumer, epoch, queue_ref = args
    handle = _handles.get(consumer)
    if not isinstance(handle, Consumer) or handle._closed:
        runtime.tell(queue_ref, ("route_no", consumer, epoch))
        return
    with handle._lock:
        handle._routes[epoch] = []
    _consuming[consumer] = handle
    handle._tell(("route_ok", consumer, epoch, runtime.address))


def _on_items(runtime: Any, args: list[Any]) -> None:
    consumer, epoch, items, queue_ref = args
    handle = _handles.get(consumer)
    if not isinstance(handle, Consumer):
        runtime.tell(queue_ref, ("put_many", items))  # (cannot happen: kept alive)
        return
    handle._arrive(runtime, epoch, items, queue_ref)


def _on_opened(runtime: Any, args: list[Any]) -> None:
    handle = _consuming.get(args[0])
    if handle is not None:
        handle._end_route(args[1], True)


def _on_closed(runtime: Any, args: list[Any]) -> None:
    handle = _consuming.get(args[0])
    if handle is not None:
        handle._end_route(args[1], False)
