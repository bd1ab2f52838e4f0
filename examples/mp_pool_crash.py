"""A Pool whose workers die, with actors.mp: every result still comes back.

Ordinary multiprocessing code: only the import differs. Two tasks of a
Pool(2).map kill their own worker process with SIGKILL the first time they
run (a marker file in a temporary directory remembers it); actors.mp
replaces the dead worker and runs the task again, and the map returns every
result. (The standard library's Pool would replace the worker too, but lose
the task: its map would never return.)

A task that kills its worker every time is run once more after the first
death, then fails with actors.mp.WorkerLost, and the pool goes on working:
a pool never hangs. The last line counts every worker death the pool
survived.

Run it:  python examples/mp_pool_crash.py
(ACTORS_MP_TRANSPORT=zmq or pipe picks the transport.)
"""

import os
import signal
import tempfile

import actors.mp as multiprocessing

CRASH_ONCE = {7, 23}   # these tasks kill their worker the first time they run


def square(job):
    x, marker_dir = job
    if x in CRASH_ONCE:
        marker = os.path.join(marker_dir, f"crashed-{x}")
        if not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)   # the worker dies mid-task
    return x * x, os.getpid()


def always_crash(marker_dir):
    """Kills its worker every time; leaves a file per run to count them."""
    with open(os.path.join(marker_dir, f"always-{os.getpid()}"), "w") as f:
        f.write("ran")
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as marker_dir, multiprocessing.Pool(2) as pool:
        jobs = [(x, marker_dir) for x in range(40)]
        results = pool.map_async(square, jobs).get(timeout=120)
        squares = [r[0] for r in results]
        pids = {r[1] for r in results}
        crashed = sorted(int(name.split("-")[1]) for name in os.listdir(marker_dir)
                         if name.startswith("crashed-"))
        assert squares == [x * x for x in range(40)], squares
        print(f"results: {len(squares)} of {len(jobs)}, sum of squares {sum(squares)} "
              f"(expected {sum(x * x for x in range(40))}), from {len(pids)} worker processes")
        print(f"tasks that killed their worker once: {crashed}")

        try:
            pool.apply_async(always_crash, (marker_dir,)).get(timeout=120)
            print("always_crash returned?!")
        except multiprocessing.WorkerLost as e:
            print(f"always_crash failed: WorkerLost: {e}")
        runs = len([name for name in os.listdir(marker_dir) if name.startswith("always-")])
        print(f"always_crash ran {runs} times (the first run and one retry), "
              "killing its worker each time")

        after = pool.map_async(square, [(x, marker_dir) for x in range(5)]).get(timeout=120)
        print(f"the pool still works: {[r[0] for r in after]}")
        print(f"worker crashes survived: {len(crashed) + runs}")
