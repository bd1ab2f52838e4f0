"""A crash loop and a burst of spawns, served by the spare pool.

A supervised worker is killed (SIGKILL) as soon as each restart answers,
20 times in a row: every restart takes a warm spare process, the pool
grows when the restarts outrun it, and on Linux each new process is forked
from the template process in a few milliseconds instead of starting an
interpreter. Then 30 unsupervised actors are spawned back to back.

The script prints the restart times (median and slowest), the burst's
time, and ``system.spare_pool()``: how many spawns the pool served, how
often it was found empty, how far it grew, and how processes started.

    python examples/crash_loop.py [zmq|pipe]
"""

from __future__ import annotations

import logging
import os
import signal
import statistics
import sys
import time

import actors


class Worker(actors.Actor):
    def receive(self, message: str) -> int:
        return os.getpid()


def main(transport: str) -> None:
    logging.getLogger("actors").setLevel(logging.CRITICAL)  # 20 deaths on purpose
    with actors.ActorSystem(transport, spares=2, max_spares=6, spares_idle=5) as system:
        system.spawn(actors.Supervisor, [actors.ChildSpec("w", Worker)], name="sup",
                     max_restarts=1000, max_seconds=1)
        worker = system.lookup("sup/w")
        pid = worker.ask("pid", timeout=30)
        times = []
        for _ in range(20):
            start = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            while True:  # the first ask may meet the dead process
                try:
                    new = worker.ask("pid", timeout=30)
                except actors.ActorDeadError:
                    continue
                if new != pid:
                    break
            times.append((time.perf_counter() - start) * 1e3)
            pid = new
        print(f"crash loop: 20 restarts, median {statistics.median(times):.1f} ms, "
              f"slowest {max(times):.1f} ms")
        start = time.perf_counter()
        refs = [system.spawn(Worker) for _ in range(30)]
        print(f"burst: 30 spawns in {(time.perf_counter() - start) * 1e3:.0f} ms, "
              f"{len({ref.ask('pid', timeout=30) for ref in refs})} processes")
        pool = system.spare_pool()
        print(f"pool: served {pool['taken']}, found empty {pool['misses']}, "
              f"target {pool['target']} (rest {pool['spares']}, max {pool['max_spares']}), "
              f"forked {pool['forked']}, spawned {pool['spawned']}, "
              f"template {'pid %s' % pool['template'] if pool['template'] else 'none'}")
    print("all processes stopped")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "zmq")
