"""Restart latency of two source trees, paired restart by restart.

    python -m benchmarks.restart_pairs OLD_TREE NEW_TREE [--transport zmq]
        [--spares 2] [--restarts 50] [--extra]

Run-to-run A/B comparisons on a shared machine move with everyone else's
load. Here two driver processes, one per tree (each importing that tree's
``actors`` and its own ``benchmarks.run.RestartSystem``), take turns: A
restarts, B restarts, B, A, ... (ABBA), so each pair sees the same moment
of the machine. Each measured restart follows a restart and a full pool,
as in ``benchmarks.run``. Prints one JSON line: both medians, the median
of the per-pair ratios B/A and how many pairs B was slower in.
``--spares 0``: cold restarts (an interpreter start each). ``--extra``:
three more idle systems in each driver, as ``benchmarks.run`` has.
A tree as old as 986846d works (the script itself runs from this one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Any


def side(transport: str, spares: int, extra: bool) -> None:
    """One driver: a restart per 'go' line on stdin, its ms on stdout."""
    import zmq

    from benchmarks import run

    with contextlib.ExitStack() as stack:
        tmp = tempfile.mkdtemp(prefix="actors-pairs-")
        stack.callback(shutil.rmtree, tmp, True)
        zctx = zmq.Context(io_threads=1)
        stack.callback(zctx.term)
        sizes = run.Sizes(1, 1, 1, 1, 1, 1, 1)
        env = run.Env(stack, multiprocessing.get_context("spawn"), zctx, tmp, sizes)
        group = run.RestartSystem(transport, spares=spares)
        group.setup(env)
        for other in (("zmq", 2), ("zmq", 0), ("pipe", 2), ("pipe", 0)) if extra else ():
            if other != (transport, spares):
                run.RestartSystem(*other).setup(env)  # idle, as in benchmarks.run
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() != "go":
                break
            group.wait_for_spares()
            group.restart()  # the measured one follows a restart and a refill
            group.wait_for_spares()
            elapsed, _ = group.restart()
            print(f"{elapsed * 1e3:.3f}", flush=True)


def _start(tree: str, args: argparse.Namespace) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=tree)
    command = [sys.executable, os.path.abspath(__file__), "--side", args.transport,
               str(args.spares)] + (["--extra"] if args.extra else [])
    driver = subprocess.Popen(command, cwd=tree, env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert driver.stdout is not None and driver.stdout.readline().strip() == "ready"
    return driver


def _one(driver: subprocess.Popen[str]) -> float:
    assert driver.stdin is not None and driver.stdout is not None
    driver.stdin.write("go\n")
    driver.stdin.flush()
    return float(driver.stdout.readline())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.restart_pairs",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--transport", default="zmq", choices=("zmq", "pipe"))
    parser.add_argument("--spares", type=int, default=2)
    parser.add_argument("--restarts", type=int, default=50)
    parser.add_argument("--extra", action="store_true")
    args = parser.parse_args(argv)
    a, b = _start(args.a, args), _start(args.b, args)
    times: tuple[list[float], list[float]] = ([], [])
    try:
        _one(a), _one(b)  # warm-up
        for i in range(args.restarts):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for k in order:
                times[k].append(_one((a, b)[k]))
    finally:
        for driver in (a, b):
            if driver.stdin is not None:
                driver.stdin.close()
            driver.wait(60)
    ratios = [y / x for x, y in zip(*times)]
    result = {"transport": args.transport, "spares": args.spares, "restarts": args.restarts,
              "a_ms": round(statistics.median(times[0]), 3),
              "b_ms": round(statistics.median(times[1]), 3),
              "b_over_a": round(statistics.median(ratios), 3),
              "b_slower_in": sum(r > 1 for r in ratios), "load": round(os.getloadavg()[0], 1)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--side"]:
        side(sys.argv[2], int(sys.argv[3]), "--extra" in sys.argv[4:])
    else:
        main()
