"""Two nodes in two processes (two machines in miniature) over tcp://,
authenticated and encrypted with CurveZMQ.

Run it:  python examples/two_nodes.py

It makes a keys folder with ``actors keys new``, starts node "b" in a
second process (this script, with the argument ``b``), then node "a" here:
a meets b, finds b's inventory by name, spawns a shop that uses it through
its ref, watches it, and sees b leave. On two machines, bind each node to
the address the other reaches it at (``tcp://10.0.0.5:7000``) and copy the
same keys folder to both. docs/cluster.md explains each step.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import actors


class Inventory(actors.Actor):
    """Lives on node b."""

    def __init__(self) -> None:
        self.stock: dict[str, int] = {}

    def receive(self, message):
        match message:
            case ("add", item, n):
                self.stock[item] = self.stock.get(item, 0) + n
                return self.stock[item]
            case ("count", item):
                return self.stock.get(item, 0)


class Shop(actors.Actor):
    """Lives on node a; holds a ref to node b's inventory."""

    def __init__(self, inventory: actors.ActorRef) -> None:
        self.inventory = inventory
        self.notices: list[str] = []

    def on_start(self) -> None:
        self.watch(self.inventory)  # told when it ends, or when node b is lost

    def receive(self, message):
        match message:
            case ("sell", item):
                left = self.inventory.ask(("add", item, -1), timeout=5)
                return f"sold one {item}, {left} left"
            case actors.Terminated(reason=reason):
                self.notices.append(reason)
            case "notices":
                return self.notices


def node_b(keys: str) -> None:
    """The second node: serves its inventory until its stdin closes."""
    with actors.ActorSystem(node="b", bind="tcp://127.0.0.1", keys=keys) as system:
        system.spawn(Inventory, name="inventory")
        print(system.address, flush=True)  # where node a connects
        sys.stdin.read()


def main() -> None:
    folder = tempfile.mkdtemp()
    keys = os.path.join(folder, "keys")
    try:
        subprocess.run([sys.executable, "-m", "actors", "keys", "new", keys], check=True,
                       stdout=subprocess.DEVNULL)
        b = subprocess.Popen([sys.executable, __file__, "b", keys], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        try:
            address = b.stdout.readline().strip()
            with actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys) as system:
                print("met node", system.connect(address))
                inventory = system.lookup("inventory")  # found on node b
                print("inventory is on node", inventory.node.split(".")[0])
                inventory.ask(("add", "apple", 3), timeout=5)
                shop = system.spawn(Shop, inventory)  # the ref travels in the spawn
                print(shop.ask(("sell", "apple"), timeout=5))
                print("apples on node b:", inventory.ask(("count", "apple"), timeout=5))
                b.stdin.close()  # node b leaves: its actors stop
                b.wait(30)
                try:
                    inventory.ask(("count", "apple"), timeout=5)
                except actors.ActorDeadError as e:
                    print("after node b left:", type(e).__name__)
                deadline = time.monotonic() + 10  # the notice comes from node b itself
                while not (notices := shop.ask("notices", timeout=5)) \
                        and time.monotonic() < deadline:
                    time.sleep(0.05)
                print("the shop was told:", notices[0] if notices else "nothing")
        finally:
            if b.poll() is None:
                b.kill()
                b.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["b"]:
        node_b(sys.argv[2])
    else:
        main()
