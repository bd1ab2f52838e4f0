"""The actors of the example service (examples/service/app.toml).

    shop                 root supervisor (from app.toml), one_for_one
    ├── stock            Stock: how many of each item are left
    ├── packers          Packers: a sub-supervisor, one_for_one
    │   ├── p1           Packer: takes items from the stock
    │   └── p2           Packer
    └── orders           Orders: every `every` seconds, an order to a packer

Run it:   actors run examples/service/app.toml
Look:     actors status shop / actors tree shop / actors top shop
Reload:   edit app.toml, then actors reload shop (or kill -HUP)
Stop:     actors stop shop (or Ctrl-C, or kill -TERM)
"""

from __future__ import annotations

import itertools
import logging
import threading

import actors

log = logging.getLogger("shop")


class Stock(actors.Actor):
    """Items and how many are left."""

    def __init__(self, items: dict[str, int]) -> None:
        self.items = dict(items)

    def on_start(self) -> None:
        log.info("stock open: %s", self.items)

    def take(self, item: str) -> bool:
        """Take one ``item``: False if none is left."""
        if self.items.get(item, 0) <= 0:
            return False
        self.items[item] -= 1
        return True

    def left(self) -> dict[str, int]:
        return dict(self.items)

    def on_stop(self) -> None:
        log.info("stock closed: %s left", self.items)


class Packer(actors.Actor):
    """Packs an order: takes its item from the stock."""

    def __init__(self) -> None:
        self.packed = 0

    def receive(self, message):
        match message:
            case ("pack", number, item):
                stock = self.system.lookup("shop/stock")
                ok = stock is not None and stock.proxy(timeout=5).take(item)
                self.packed += ok
                log.info("order %d: %s %s", number, "packed one" if ok else "out of", item)
                return ok
            case "packed":
                return self.packed


class Packers(actors.Supervisor):
    """Two packers, restarted one for one."""

    strategy = "one_for_one"
    max_restarts = 5
    max_seconds = 10.0
    children = [actors.ChildSpec("p1", Packer), actors.ChildSpec("p2", Packer)]


class Orders(actors.Actor):
    """Sends an order every ``every`` seconds to the packers in turn."""

    def __init__(self, items: list[str], every: float = 1.0) -> None:
        self.items = items
        self.every = every
        self.numbers = itertools.count(1)
        self.packers = itertools.cycle(["shop/packers/p1", "shop/packers/p2"])
        self.stopped = threading.Event()

    def on_start(self) -> None:
        # A timer thread of this actor's process tells it when to order:
        # the orders themselves are handled as messages, one at a time.
        threading.Thread(target=self._clock, name="orders-clock", daemon=True).start()

    def _clock(self) -> None:
        while not self.stopped.wait(self.every):
            self.ref.tell("tick")

    def receive(self, message):
        if message == "tick":
            number = next(self.numbers)
            packer = self.system.lookup(next(self.packers))
            if packer is not None:  # None while it restarts
                packer.tell(("pack", number, self.items[number % len(self.items)]))

    def on_stop(self) -> None:
        self.stopped.set()
