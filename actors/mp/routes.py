"""The direct path of a Queue, the queue's side: the items of a queue with
one consumer go from their producers' processes straight to the
consumer's, not through the queue's (see ``actors.mp.direct`` for the
producer's and the consumer's sides).

When. A plain ``Queue`` (not joinable, unbounded) whose only consumer takes
loans (``actors.mp.loans``: it reads its inbox on a thread of its own), and
a producer that does too: the queue offers that producer a *route* to the
consumer. Each producer may have one; the items of a producer that has
none are pushed to the consumer by the queue as they arrive.

Setting one up (``e``, the epoch, names one route; each step is a one-way
message, and each sender's messages to one process arrive in order):

1. queue -> producer ``mp.route``: with its next batch the producer sends
   ``("routed", e)``, after every batch it sent the queue before;
2. queue -> consumer ``mp.open``: the consumer answers ``("route_ok", e)``
   and from then on waits for items in its own process;
3. the queue pushes what it holds to the consumer (``mp.items``), and
   from now on what it receives; then queue -> producer ``mp.go``;
4. the producer sends ``("direct", e)`` to the queue, then its batches to
   the consumer; the queue passes ``mp.opened`` on to the consumer, which
   holds the producer's direct items until then, so that everything that
   producer put through the queue comes first.

Ending one: another consumer asks, someone asks a size, the consumer
closes its handle or exits. Queue -> producer ``mp.unroute``; the producer
answers ``("unrouted", e, count)``, ``count`` being how many items it sent
straight, and puts through the queue again. Once every route has answered,
queue -> consumer ``mp.recall`` with the counts: the consumer waits until
it has received that many, then gives back everything it holds (to the
front of the queue, in order) and asks the queue again. For half a second
after that, nothing is routed or lent (as after any recall).

Deaths. A consumer that dies loses what it held, as a loan does (a
WARNING with how many, the items sent straight included). A producer that
dies ends its route (``mp.closed`` to the consumer): what it sent is the
consumer's, and items of it that arrive after that go back to the queue.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from actors.errors import MessageTooLarge
from actors.host import running_host
from actors.mp.batching import EXT_HEADER
from actors.mp.primitive import log
from actors.protocol import Ext
from actors.ref import ActorRef
from transport.codec import Pickled

__all__ = ["Route", "Routing", "fitting", "item_size", "piece_budget", "take_front"]

OFFERED, ROUTED, OPEN, CLOSING = range(4)


class Route:
    """A route offered to one producer handle, towards the consumer."""

    __slots__ = ("epoch", "producer", "address", "ref", "state", "acked")

    def __init__(self, epoch: int, producer: int, address: str, ref: ActorRef | None) -> None:
        self.epoch = epoch
        self.producer = producer  # its handle number
        self.address = address    # its process
        self.ref = ref            # watched (None: the main program)
        self.state = OFFERED
        self.acked = False        # the consumer knows of it (it answered route_ok)


class Routing:
    """The direct-path half of ``QueueServer`` (a mixin: it works on the
    server's ``items``, ``lent``, ``getters``, ``joinable``, ``maxsize``
    and ``no_lending_until``)."""

    items: Any
    lent: dict[int, list[Any]]
    getters: dict[int, Any]
    joinable: bool
    maxsize: int
    no_lending_until: float
    ref: ActorRef

    def init_routing(self) -> None:
        self.routes: dict[int, Route] = {}  # producer handle -> its route
        self.epochs = 0         # routes offered so far
        self.opened = 0         # routes opened so far
        self.target: list[Any] | None = None  # [handle, address, ref, alive]: the consumer
        self.pushing = False    # a route is open: what arrives goes to the consumer at once
        self.unrouting = False  # routes are closing: the consumer's recall waits for them
        self.counts: dict[int, int | None] = {}  # epoch -> items sent straight

    def targets(self, handle: int) -> bool:
        """The routes go (or went) to this consumer handle."""
        return self.target is not None and self.target[0] == handle

    def routing_to(self, handle: int) -> bool:
        """Routes to this consumer handle are set up or open (not closing)."""
        return bool(self.routes) and not self.unrouting and self.targets(handle)

    def offer(self, producer: int, address: str, ref: ActorRef | None) -> None:
        """A producer that can be routed put: offer it a route if the queue
        has one consumer (see module doc)."""
        if (self.joinable or self.maxsize or producer in self.routes or self.unrouting
                or len(self.lent) != 1 or self.getters_other()
                or time.monotonic() < self.no_lending_until):
            return
        consumer, entry = next(iter(self.lent.items()))
        if entry[2] or entry[0] == address:  # recalled; or in the producer's own process
            return
        if self.target is None:
            self.target = [consumer, entry[0], entry[1], True]
        elif not self.targets(consumer):
            return
        self.epochs += 1
        self.routes[producer] = Route(self.epochs, producer, address, ref)
        self.watch_owner(ref)  # type: ignore[attr-defined]
        self.tell(address, "mp.route", [producer, self.epochs, self.target[1], consumer,
                                        self.ref])

    def getters_other(self) -> bool:
        target = self.target[0] if self.target is not None else None
        return any(handle != target for handle in self.getters.values())

    def tell(self, address: str, name: str, args: list[Any]) -> None:
        running_host().runtime.tell_service(address, Ext(name, args))

    def route_of(self, producer: int, epoch: int) -> Route | None:
        route = self.routes.get(producer)
        return route if route is not None and route.epoch == epoch else None

    def do_routed(self, producer: int, epoch: int) -> None:
        """Every batch the producer put through the queue before is here:
        ask the consumer."""
        route = self.route_of(producer, epoch)
        if route is None or route.state != OFFERED or self.target is None:
            return
        route.state = ROUTED
        self.tell(self.target[1], "mp.open", [self.target[0], epoch, self.ref])

    def do_route_ok(self, consumer: int, epoch: int, address: str) -> None:
        """The consumer now waits in its own process: push it what there
        is, and let the producer go."""
        route = next((r for r in self.routes.values() if r.epoch == epoch), None)
        if route is None:  # ended before it knew: it forgets it (nothing came straight)
            self.tell(address, "mp.closed", [consumer, epoch, self.ref])
            return
        route.acked = True
        if route.state != ROUTED:
            return  # closing: the consumer's recall will name it
        route.state = OPEN
        self.opened += 1
        self.pushing = True
        items = list(self.items)
        self.items.clear()
        self.push(items)
        if route.state == OPEN:  # (a push too big for it ends the routes instead)
            self.tell(route.address, "mp.go", [route.producer, epoch])

    def do_routing(self) -> list[int]:
        """[routes offered, routes opened, routes open now] (for tests and
        statistics)."""
        return [self.epochs, self.opened, sum(r.state == OPEN for r in self.routes.values())]

    def do_route_no(self, consumer: int, epoch: int) -> None:
        """The consumer's handle was closed before it heard of the route."""
        if self.targets(consumer):
            self.unroute()

    def do_direct(self, producer: int, epoch: int) -> None:
        """The producer's next items go straight: everything it sent
        through the queue was pushed before this."""
        if self.route_of(producer, epoch) is not None and self.target is not None \
                and self.target[3]:
            self.tell(self.target[1], "mp.opened", [self.target[0], epoch])

    def push(self, items: list[Any]) -> None:
        """Items to the consumer, lent to it: a parked get of it takes the
        first of them, the rest go as ``mp.items`` (each under half a frame)."""
        consumer, address, ref, _ = self.target  # type: ignore[misc]
        entry = self.lent.get(consumer)
        if entry is None:
            entry = self.lent[consumer] = [address, ref, False, 0]
        budget = piece_budget(running_host().runtime)
        while items:
            batch, items = take_front(items, budget)
            entry[3] += len(batch)
            token = next((t for t, h in self.getters.items() if h == consumer), None)
            if token is not None:
                del self.getters[token]
                self.answer(token, batch)  # type: ignore[attr-defined]
            else:
                try:
                    self.tell(address, "mp.items", [consumer, 0, batch, self.ref])
                except MessageTooLarge:  # (one item that fitted a loan's answer, not this)
                    entry[3] -= len(batch)
                    self.items.extend(batch)
                    self.items.extend(items)
                    self.recall()  # type: ignore[attr-defined]  (it goes by loan, in order)
                    return

    def unroute(self) -> None:
        """End every route (see module doc): the producers first."""
        if not self.routes:
            return
        self.pushing = False
        self.unrouting = True
        for route in self.routes.values():
            if route.state != CLOSING:
                route.state = CLOSING
                self.tell(route.address, "mp.unroute", [route.producer, route.epoch, self.ref])

    def do_unroute(self, consumer: int) -> None:
        """The consumer asks for its routes to end (it closes, or exits)."""
        if self.targets(consumer):
            self.no_lending_until = time.monotonic() + self.CONTENDED  # type: ignore[attr-defined]
            self.unroute()

    def do_unrouted(self, producer: int, epoch: int, count: int) -> None:
        """A producer sends through the queue again; ``count`` items went straight."""
        route = self.route_of(producer, epoch)
        if route is None:
            return
        del self.routes[producer]
        if route.acked:
            self.counts[epoch] = count
        self.finish()

    def finish(self) -> None:
        """Once every route is closed: the consumer's recall, with the
        counts; then what waited for the routes to close is served."""
        self.close_routes()
        self.serve()  # type: ignore[attr-defined]

    def close_routes(self) -> None:
        if not self.routes:
            self.pushing = False
        if any(r.state == CLOSING for r in self.routes.values()):
            return
        if not self.unrouting:
            if not self.routes:
                self.target = None
            return
        self.unrouting = False
        counts, self.counts = self.counts, {}
        target, self.target = self.target, None
        if target is None:
            return
        consumer, address, ref, alive = target
        if not alive:
            sent = sum(n for n in counts.values() if n)
            if sent:
                log.warning("%s: up to %d items sent straight to pid of %r were lost with it",
                            self.describe(), sent, ref)  # type: ignore[attr-defined]
            return
        entry = self.lent.get(consumer)
        if counts or (entry is not None and not entry[2]):
            if entry is None:
                self.lent[consumer] = [address, ref, True, 0]
            else:
                entry[2] = True
            flat = [x for pair in counts.items() for x in pair]
            self.tell(address, "mp.recall", [consumer, self.ref, flat])

    def routes_gone(self, ref: ActorRef) -> None:
        """The process of ``ref`` died: the consumer (its routes end, its
        producers told), or a producer (its route ends)."""
        target = self.target
        if target is not None and target[2] == ref:
            target[3] = False
            self.unroute()
        for route in [r for r in self.routes.values() if r.ref == ref]:
            del self.routes[route.producer]
            if route.state == CLOSING:
                if route.acked:
                    self.counts[route.epoch] = None
            elif route.acked and target is not None and target[3]:
                self.tell(target[1], "mp.closed", [target[0], route.epoch, self.ref])
        if not any(r.state == OPEN for r in self.routes.values()):
            self.pushing = False
        self.finish()


def piece_budget(runtime: Any) -> int:
    """The most bytes of items one message carries (an answer, a push, a
    piece of a give-back): half a frame, and 1 MB at most, so that with its
    envelope it never exceeds the system's max_frame."""
    return min(1 << 20, runtime.max_message // 2)


def fitting(items: Any, count: int, budget: int) -> int:
    """How many of the first ``count`` items (a list or a deque; at least
    one, if there is any) fit in ``budget`` bytes."""
    size = 0
    for n, item in enumerate(itertools.islice(items, count)):
        size += item_size(item)
        if size > budget and n:
            return n
    return min(count, len(items))


def take_front(items: list[Any], budget: int) -> tuple[list[Any], list[Any]]:
    """As many items from the front of a list as fit in ``budget`` bytes
    (at least one): (those, the rest)."""
    n = fitting(items, len(items), budget)
    return items[:n], items[n:]


def item_size(item: Any) -> int:
    """About how many bytes ``item`` takes in a frame (its pickle, its
    string or bytes; 9 for anything else that is plain)."""
    t = type(item)
    if t is Pickled:
        return len(item.data or b"") + EXT_HEADER
    if t is str or t is bytes:
        return len(item) * (1 if t is bytes else 4) + 5
    return 9
