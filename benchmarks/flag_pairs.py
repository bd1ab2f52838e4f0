"""In-run A/B of one module-level switch on the ask round trip or tell throughput.

    python -m benchmarks.flag_pairs MODULE ATTR A B [--measure ask|tell]
        [--transport zmq|pipe|tcp] [--blocks 12] [--size 1500] [--quick]

Example: ``python -m benchmarks.flag_pairs actors.mailbox BATCH 64 16``.

Whole runs of ``benchmarks.run`` on a shared machine cannot resolve a
change of a few percent (the floors themselves move by 1.5x from one run
to the next). This flips one module attribute in both processes of the
exchange, the main program and the host of the actor it talks to, between
blocks of asks (or tells) in one system, in ABBA order, and reports each
value's median and the median of the paired ratios B/A. A and B are Python
literals (``ast.literal_eval``). ``--transport tcp`` puts the actor on a
second node (a process of its own, tcp+CURVE on 127.0.0.1, as
``benchmarks.nodes``): the exchange is then between two nodes. Put the
change behind a module attribute for the measurement, and take the switch
out again afterwards.

Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import actors


class Switchable(actors.Actor):
    """Echoes asks, counts tells, and sets a module attribute in its process."""

    def __init__(self) -> None:
        self.count = 0

    def receive(self, message: Any) -> Any:
        if type(message) is tuple and message[0] == "set":
            _, module, attr, value = message
            setattr(importlib.import_module(module), attr, value)
            return getattr(importlib.import_module(module), attr)  # read back
        if message == "count":
            return self.count
        self.count += 1
        return message


def asks(ref: actors.ActorRef, n: int) -> float:
    """Microseconds per round trip."""
    start = time.perf_counter()
    for _ in range(n):
        ref.ask(1, timeout=30)
    return (time.perf_counter() - start) / n * 1e6


def tells(ref: actors.ActorRef, n: int) -> float:
    """Messages per second, up to the last one handled."""
    before = ref.ask("count", timeout=30)
    start = time.perf_counter()
    for _ in range(n):
        ref.tell(("add", 1))
    if ref.ask("count", timeout=120) != before + n:
        raise RuntimeError("tells were lost")
    return n / (time.perf_counter() - start)


def serve(keys: str) -> None:
    """Node b of ``--transport tcp``: hosts the actor until stdin closes."""
    with actors.ActorSystem(node="b", bind="tcp://127.0.0.1", keys=keys, spares=0) as system:
        system.spawn(Switchable, name="switchable")
        print(system.address, flush=True)
        sys.stdin.read()


@contextlib.contextmanager
def exchange(transport: str) -> Iterator[actors.ActorRef]:
    """A ref to a Switchable: in a host of this system, or on node b."""
    if transport != "tcp":
        with actors.ActorSystem(transport=transport, spares=0) as system:
            yield system.spawn(Switchable)
        return
    from benchmarks.nodes import start_node, stop_node
    from transport.keys import create

    folder = tempfile.mkdtemp(prefix="flag-pairs-")
    keys = os.path.join(folder, "keys")
    create(keys)
    proc, address = start_node(keys, ("benchmarks.flag_pairs", "--serve"))
    try:
        with actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys,
                                spares=0) as system:
            system.connect(address)
            ref = system.lookup("switchable")
            if ref is None:
                raise RuntimeError("node b has no actor named 'switchable'")
            yield ref
    finally:
        stop_node(proc)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flag_pairs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module")
    parser.add_argument("attr")
    parser.add_argument("a", type=ast.literal_eval)
    parser.add_argument("b", type=ast.literal_eval)
    parser.add_argument("--measure", choices=("ask", "tell"), default="ask")
    parser.add_argument("--transport", choices=("zmq", "pipe", "tcp"), default="zmq",
                        help="tcp: the actor is on a second node (tcp+CURVE)")
    parser.add_argument("--blocks", type=int, default=12, help="pairs of blocks (A and B each)")
    parser.add_argument("--size", type=int, help="asks (1,500) or tells (100,000) per block")
    parser.add_argument("--quick", action="store_true", help="2 pairs of small blocks")
    args = parser.parse_args(argv)
    module = importlib.import_module(args.module)
    if not hasattr(module, args.attr):
        parser.error(f"{args.module} has no attribute {args.attr!r}")
    blocks = 2 if args.quick else args.blocks
    size = args.size or ((200 if args.quick else 1500) if args.measure == "ask"
                         else (2000 if args.quick else 100_000))
    measure = asks if args.measure == "ask" else tells
    unit = "us per ask" if args.measure == "ask" else "msg/s"
    with exchange(args.transport) as ref:
        def switch(value: Any) -> None:
            setattr(module, args.attr, value)
            there = ref.ask(("set", args.module, args.attr, value), timeout=30)
            if there != value:
                raise RuntimeError(f"the host has {there!r} after setting {value!r}")

        measure(ref, size // 4)  # warm up
        a_figures: list[float] = []
        b_figures: list[float] = []
        for i in range(blocks):
            order = [(args.a, a_figures), (args.b, b_figures)]
            for value, figures in order if i % 2 == 0 else order[::-1]:
                switch(value)
                measure(ref, max(1, size // 10))  # settle after the switch
                figures.append(measure(ref, size))
        switch(args.a)
    ratios = [b / a for a, b in zip(a_figures, b_figures)]
    better = sum((r < 1) if args.measure == "ask" else (r > 1) for r in ratios)
    name = f"{args.module}.{args.attr}"
    print(f"{args.measure} over {args.transport}, {blocks} pairs of {size}, ABBA")
    print(f"{name} = {args.a!r}: median {statistics.median(a_figures):,.1f} {unit}")
    print(f"{name} = {args.b!r}: median {statistics.median(b_figures):,.1f} {unit}")
    print(f"B/A paired: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, "
          f"max {max(ratios):.3f}); B better in {better} of {len(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
