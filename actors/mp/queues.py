"""Queue, JoinableQueue and SimpleQueue as handles on a QueueServer actor.

A put to an unbounded queue is a tell: it returns at once, like the standard
library's (whose feeder thread sends later), and the items of one producer
arrive in order. Unlike the standard library, an item that cannot be pickled
fails at the ``put`` that was given it, not later in a feeder thread.
"""

from __future__ import annotations

import collections
import queue
import time
from typing import Any

from actors.host import running_host
from actors.mp import context
from actors.mp.batching import Batched
from actors.mp.direct import Consumer, Producer
from actors.mp.loans import give_back_all
from actors.mp.primitive import (
    EMPTY,
    Handle,
    Primitive,
    check_timeout,
    log,
    unpack,
)
from actors.mp.routes import Routing, fitting, piece_budget
from actors.protocol import Ext
from actors.ref import ActorRef, Reply

__all__ = ["JoinableQueue", "Queue", "QueueServer", "SimpleQueue"]

_NOTHING = object()


class QueueServer(Routing, Primitive):
    """Queue, JoinableQueue and SimpleQueue. Items stay as they came (the
    pickled ones are never unpickled here).

    Lending. A consumer of an unbounded queue whose process reads its inbox
    on a thread of its own (the main program, an ``actors.mp.Process``) may
    take up to ``want`` items in one answer; the ones it has not used yet are *lent* to it. As
    soon as anybody else needs an item (a get that finds the queue empty)
    or a size (qsize, empty, full), the lenders are told to give back what
    they have not used (an ``Ext("mp.recall")`` service tell to their process), and
    the request waits for those items; for half a second after that, the
    queue lends to nobody (two consumers share it one item at a time).
    Returned items go back to the front, in order.

    The direct path (``actors.mp.routes``): a lone lending consumer's
    producers may send their items straight to it.
    """

    label = "Queue"
    CONTENDED = 0.5  # seconds without lending after a recall

    def __init__(self, maxsize: int = 0, joinable: bool = False, name: str = "") -> None:
        super().__init__(name)
        self.maxsize = maxsize if maxsize > 0 else 0
        self.items: collections.deque[Any] = collections.deque()
        self.getters: dict[int, Any] = {}    # tokens of parked gets, FIFO
        self.putters: dict[int, Any] = {}    # tokens of parked puts -> item
        self.joinable = joinable
        self.unfinished = 0
        self.joiners: list[int] = []
        self.lent: dict[int, list[Any]] = {}  # handle -> [address, ref, recalled, count]
        self.queries: list[tuple[Reply, str]] = []  # sizes waiting for recalls
        self.no_lending_until = 0.0
        self.returning: dict[int, list[Any]] = {}  # handle -> pieces of a give-back so far
        self.init_routing()

    def do_put(self, item: Any) -> None:
        """A put that never waits (the queue is unbounded)."""
        self.unfinished += 1
        self.items.append(item)
        self.serve()

    def do_put_many(self, items: list[Any], producer: int = 0, address: str | None = None,
                    ref: ActorRef | None = None) -> None:
        """A batch of puts of one process (``actors.mp.batching``); a
        producer that can be routed says who it is."""
        self.unfinished += len(items)
        if self.pushing:
            self.push(items)
        else:
            self.items.extend(items)
            self.serve()
        if address is not None:
            self.offer(producer, address, ref)

    def serve(self) -> None:
        """Parked gets take what there is (once what was recalled is back:
        it goes first); then sizes, once nothing is lent."""
        if not self.recalling():  # (nothing below changes that)
            while self.getters and self.items:
                token = next(iter(self.getters))
                del self.getters[token]
                self.answer(token, [self.items.popleft()])
                self.admit()
        if not self.lent and not self.routes:
            for token, (_, info) in list(self.parked.items()):
                if info.get("nowait") and token in self.getters:
                    del self.getters[token]
                    self.answer(token, EMPTY)
            queries, self.queries = self.queries, []
            for reply, op in queries:
                reply.send(self.size_answer(op))

    def do_put_wait(self, token: int, item: Any, who: list[Any], block: bool) -> Any:
        if not self.maxsize or len(self.items) + self.lent_count() < self.maxsize:
            self.do_put(item)
            return True
        if not block:
            return False
        self.watch_owner(who[2])
        self.putters[token] = item
        self.park(token, {"ref": who[2], "put": True})
        return None

    def recalling(self) -> bool:
        """Items recalled are on their way back (they go before the rest)."""
        return self.unrouting or any(entry[2] for entry in self.lent.values())

    def lent_count(self) -> int:
        return sum(entry[3] for entry in self.lent.values())

    def do_get(self, token: int, who: list[Any], want: int, handle: int, address: str | None,
               block: bool) -> Any:
        ref = who[2]
        entry = self.lent.get(handle)
        if entry is not None and not entry[2]:  # it asks: it has used what it had
            del self.lent[handle]  # (unless recalled: its give-back, on its way, comes first)
        if self.items and not self.getters and not self.recalling():
            count = 1
            if (want > 1 and address is not None and len(self.items) > 1 and not self.maxsize
                    and time.monotonic() >= self.no_lending_until):
                count = min(want, len(self.items))
            batch = self.take(count)
            count = len(batch)
            if count > 1:
                self.lent[handle] = [address, ref, False, count - 1]
                self.watch_owner(ref)
            self.admit()
            return batch
        if self.lent or (self.routes and not self.routing_to(handle)):
            self.recall()  # (a route being set up to this consumer goes on)
        elif not block:
            return EMPTY
        self.watch_owner(ref)
        self.getters[token] = handle
        self.park(token, {"ref": ref, "nowait": not block})
        return None

    def do_more(self, handle: int, want: int, who: list[Any]) -> list[Any]:
        """A lender asks ahead for its next loan (``actors.mp.loans``): lent
        while lending goes on, else nothing (it asks with a get later)."""
        entry = self.lent.get(handle)
        if (entry is None or entry[2] or self.getters or not self.items or self.maxsize
                or time.monotonic() < self.no_lending_until):
            return []
        batch = self.take(min(want, len(self.items)))
        entry[3] += len(batch)
        return batch

    def take(self, count: int) -> list[Any]:
        """Up to ``count`` items from the front (at least one), as many as
        fit in half a frame: an answer never exceeds the system's max_frame."""
        items = self.items
        if count == 1:  # (a plain get)
            return [items.popleft()]
        n = fitting(items, count, piece_budget(running_host().runtime))
        return [items.popleft() for _ in range(n)]

    def recall(self) -> None:
        """Ask every lender for the items it has not used (see class doc)."""
        host = running_host().runtime
        self.no_lending_until = time.monotonic() + self.CONTENDED
        self.unroute()  # (its consumer is recalled once the routes are closed)
        routed = self.target[0] if self.target is not None else None
        for handle, entry in self.lent.items():
            if not entry[2] and handle != routed:
                entry[2] = True
                host.tell_service(entry[0], Ext("mp.recall", [handle, self.ref]))

    def do_give_back(self, handle: int, items: list[Any], more: bool = False) -> None:
        """A lender's unused items (recalled, or its handle closed), in
        pieces: ``more`` until the last."""
        if more:
            self.returning.setdefault(handle, []).extend(items)
            return
        items = self.returning.pop(handle, []) + items
        if self.targets(handle):
            self.unroute()  # closed before it heard of its route
        self.lent.pop(handle, None)
        self.items.extendleft(reversed(items))
        self.serve()
        self.admit()

    def admit(self) -> None:
        """Room was made: parked puts go in."""
        while self.putters and len(self.items) + self.lent_count() < self.maxsize:
            token = next(iter(self.putters))
            item = self.putters.pop(token)
            self.answer(token, True)
            self.do_put(item)

    def cancelled(self, token: int, info: Any) -> None:
        self.getters.pop(token, None)
        self.putters.pop(token, None)

    def owner_gone(self, ref: ActorRef) -> None:
        for token, (_, info) in list(self.parked.items()):
            if info.get("ref") == ref:
                self.getters.pop(token, None)
                self.putters.pop(token, None)
        super().owner_gone(ref)
        self.routes_gone(ref)
        for handle in [h for h, entry in self.lent.items() if entry[1] == ref]:
            count = self.lent.pop(handle)[3]
            self.items.extendleft(reversed(self.returning.pop(handle, [])))  # (they came)
            log.warning("%s: up to %d items lent to pid of %r were lost with it", self.describe(),
                        count, ref)
        self.serve()

    def size_answer(self, op: str) -> Any:
        if op == "state":
            return [len(self.items), self.maxsize]
        return len(self.items)

    def ask_size(self, op: str) -> Any:
        if not self.lent and not self.routes:
            return self.size_answer(op)
        self.recall()
        self.queries.append((self.defer_reply(), op))
        return None

    def do_qsize(self) -> Any:
        return self.ask_size("qsize")

    def do_state(self) -> Any:
        """[items, maxsize]: empty() and full() in one answer."""
        return self.ask_size("state")

    def do_sync(self) -> bool:
        """Answered once every put this asker sent before has arrived."""
        return True

    def do_task_done(self) -> None:
        if self.unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self.unfinished -= 1
        if self.unfinished == 0:
            for token in self.joiners:
                if token in self.parked:
                    self.answer(token, True)
            self.joiners = []

    def do_join(self, token: int, who: list[Any]) -> Any:
        ref = who[2]
        if self.unfinished == 0:
            return True
        self.watch_owner(ref)
        self.joiners.append(token)
        self.park(token, {"ref": ref})
        return None


class Queue(Consumer, Producer, Batched, Handle):
    _joinable = False
    _local_fields = ("_closed", *Consumer.LOCAL_FIELDS, *Producer.LOCAL_FIELDS,
                     *Batched.BATCH_FIELDS)

    def __init__(self, maxsize: int = 0, *, ctx: Any = None) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool):
            raise TypeError(f"maxsize must be an int, got {maxsize!r}")
        super().__init__(self._spawn(QueueServer, maxsize, self._joinable))
        self._maxsize = maxsize if maxsize > 0 else 0

    def _init_local(self) -> None:
        self._init_batch()
        self._init_loans()
        self._init_producer()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")

    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None:
        self._check_open()
        item = context.pack(obj)
        if not self._maxsize:
            if self._me is None:
                self._me = self._identity()
            self._put_batched(self._tell_ref(), item)
            return
        wait = check_timeout(block, timeout)
        answer = self._wait(("put_wait", context.token(), item, context.me(), wait != 0),
                            wait)
        if answer is not True:
            raise queue.Full

    def put_nowait(self, obj: Any) -> None:
        self.put(obj, False)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        self._check_open()
        if self._buffer:  # the common case under a stream of items: lent here
            item = _NOTHING
            with self._lock:
                if self._buffer:
                    item = self._buffer.popleft()
            if item is not _NOTHING:
                if self._lent and self._ahead is None and len(self._buffer) <= self._want >> 1:
                    self._ask_ahead()
                return unpack(item)
        return self._get_waiting(block, timeout)

    def get_nowait(self) -> Any:
        return self.get(False)

    def qsize(self) -> int:
        self._give_back()
        return self._ask(("qsize",))

    def empty(self) -> bool:
        with self._lock:
            if self._buffer:
                return False
        return self._ask(("qsize",)) == 0

    def full(self) -> bool:
        self._give_back()
        size, maxsize = self._ask(("state",))
        return bool(maxsize) and size >= maxsize

    def close(self) -> None:
        """This process will put no more (further puts and gets here raise
        ValueError); what it put is still delivered, and what was lent to it
        goes back."""
        self._closed = True
        self._give_back()

    def join_thread(self) -> None:
        """Wait until every item this process put has reached the queue."""
        self._ask(("sync",))

    def cancel_join_thread(self) -> None:
        """Nothing to cancel: puts never keep a process from exiting."""

    def __del__(self) -> None:
        try:
            if self._buffer or self._lent:
                self._give_back()
        except Exception:
            pass

    def __repr__(self) -> str:
        if (proxied := self._proxy_repr()) is not None:
            return proxied
        return f"<{type(self).__module__}.{type(self).__name__} object at {id(self):#x}>"


class JoinableQueue(Queue):
    _joinable = True

    def task_done(self) -> None:
        self._ask(("task_done",))

    def join(self) -> None:
        self._wait(("join", context.token(), context.me()), None)


class SimpleQueue(Batched, Handle):
    """An unbounded queue with get, put, empty and close."""

    _local_fields = Batched.BATCH_FIELDS

    def __init__(self, *, ctx: Any = None) -> None:
        super().__init__(self._spawn(QueueServer, 0, False))

    def _init_local(self) -> None:
        self._init_batch()

    def put(self, obj: Any) -> None:
        self._put_batched(self._tell_ref(), context.pack(obj))

    def get(self) -> Any:
        return unpack(self._wait(("get", context.token(), context.me(), 1, 0, None, True),
                                 None)[0])

    def empty(self) -> bool:
        return self._ask(("qsize",)) == 0

    def close(self) -> None:
        """Nothing to release (kept for the standard library's API)."""

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.SimpleQueue object at {id(self):#x}>"


context.EXIT_HOOKS.append(give_back_all)
