"""Supervised workers: a client keeps getting answers while workers crash.

The tree (every box is a process of its own):

    app                 Supervisor, one_for_one (default intensity: 3 in 5 s)
    ├── pool            Supervisor, one_for_one, up to 20 restarts in 5 s
    │   └── w1 .. w4    Worker: squares numbers
    ├── pair            Supervisor, one_for_all: the two restart together
    │   ├── table       Table: cubes of 0..99, built at start
    │   └── cache       Cache: copies of the table's rows, asks the table on a miss
    └── chaos           Chaos (temporary): crashes the others, on a seeded plan

Chaos crashes workers (and twice the table) in three ways: a tell whose
handler raises, a tell whose handler calls ``os._exit``, and ``SIGKILL`` of
the victim's pid, which it reads from ``self.system.tree()``. It strikes
once the previous crash's restart is complete, so each crash makes exactly
one restart. Each restart keeps the ref, starts a new process (a warm spare
when one is ready), and delivers what was sent meanwhile to the new
incarnation. A crash of the table also restarts the cache (one_for_all: its
copies may not outlive the table). The cache is stopped with
``brutal_kill``: it has nothing to save.

Meanwhile the main program asks the workers and the cache, and checks every
answer. An ask that meets a death fails at once with ``ActorDeadError``;
the client then asks again (the same ref) until a deadline. At the end it
prints how many requests were answered, how many retries it took, the
restarts counted by the supervisors, and a drawing of the final tree from
``system.tree()``.

Crash reports are logged by the runtime (logger ``actors``); this script
shows the first line of each on stderr.

Run it:  python examples/supervised_workers.py [zmq|pipe]
"""

import logging
import os
import random
import signal
import sys
import time

import actors

WORKERS = ["w1", "w2", "w3", "w4"]
SEED = 7
CRASHES = 12  # chaos's plan: this many crashes, one at a time
TICK = 0.02  # how often chaos looks whether the last crash's restart is done
DEADLINE = 10.0  # how long the client keeps retrying one request


def crash(how):
    """What chaos tells a victim to do to itself, in a tell handler."""
    if how == "raise":
        raise RuntimeError("chaos: an exception in a tell")
    os._exit(13)


class Worker(actors.Actor):
    def receive(self, message):
        match message:
            case ("square", n):
                return n * n
            case ("crash", how):
                crash(how)


class Table(actors.Actor):
    def __init__(self):
        self.rows = {k: k ** 3 for k in range(100)}

    def receive(self, message):
        match message:
            case ("row", k):
                return self.rows[k]
            case ("crash", how):
                crash(how)


class Cache(actors.Actor):
    def on_start(self):
        self.table = self.system.lookup("app/pair/table")  # started before us
        self.rows = {}

    def receive(self, message):
        match message:
            case ("cube", k):
                if k not in self.rows:
                    self.rows[k] = self.table.ask(("row", k), timeout=DEADLINE)
                return self.rows[k]


class Chaos(actors.Actor):
    """Works through a seeded plan of crashes. Each strike waits until the
    restart of the one before is complete, so every strike is one restart."""

    def __init__(self, seed):
        rng = random.Random(seed)
        victims = [rng.choice(WORKERS) for _ in range(CRASHES)]
        victims[CRASHES // 3] = victims[2 * CRASHES // 3] = "table"  # twice, apart
        self.plan = [(victim, rng.choice(["raise", "exit", "kill"])) for victim in victims]
        self.done = []
        self.waiting = None  # (path, restarts before the strike)

    def receive(self, message):
        match message:
            case "tick":  # the main program sends the first one
                if self.settled():
                    if len(self.done) == len(self.plan):
                        return
                    self.strike()
                time.sleep(TICK)  # chaos's own pace; it blocks only chaos
                self.ref.tell("tick")
            case "done":
                finished = len(self.done) == len(self.plan) and self.waiting is None
                return self.done if finished else None

    def settled(self):
        """True when the last strike's restart is complete."""
        if self.waiting is None:
            return True
        tree = self.system.tree()
        path, before = self.waiting
        if find(tree, path)["restarts"] > before and all_running(tree):
            self.waiting = None
            return True
        return False

    def strike(self):
        victim, how = self.plan[len(self.done)]
        path = f"app/pair/{victim}" if victim == "table" else f"app/pool/{victim}"
        entry = find(self.system.tree(), path)
        if how == "kill":
            os.kill(entry["pid"], signal.SIGKILL)
        else:
            self.system.lookup(path).tell(("crash", how))
        self.waiting = (path, entry["restarts"])
        self.done.append((victim, how))


class Pool(actors.Supervisor):
    strategy = "one_for_one"
    max_restarts = 20  # interchangeable workers: tolerate a lot of crashes
    max_seconds = 5.0
    children = [actors.ChildSpec(name, Worker) for name in WORKERS]


class Pair(actors.Supervisor):
    strategy = "one_for_all"
    children = [actors.ChildSpec("table", Table),
                actors.ChildSpec("cache", Cache, shutdown="brutal_kill")]  # see above


class App(actors.Supervisor):
    strategy = "one_for_one"
    children = [
        actors.ChildSpec("pool", Pool),
        actors.ChildSpec("pair", Pair),
        actors.ChildSpec("chaos", Chaos, args=(SEED,), restart="temporary"),
    ]


def find(entries, name):
    """The entry named ``name`` anywhere in ``system.tree()`` data."""
    for entry in entries:
        if entry["name"] == name:
            return entry
        found = find(entry["children"], name)
        if found is not None:
            return found
    return None


def ask_with_retry(ref, message, stats):
    """Ask ``ref``; while it fails with ActorDeadError (a restart in
    progress), ask again, until DEADLINE seconds have passed."""
    deadline = time.monotonic() + DEADLINE
    pause = 0.005
    while True:
        try:
            return ref.ask(message, timeout=max(0.1, deadline - time.monotonic()))
        except actors.ActorDeadError:
            if time.monotonic() > deadline:
                raise
            stats["retries"] += 1
            time.sleep(pause)  # back off a little: the restart is under way
            pause = min(pause * 2, 0.1)


def draw(entries, prefix=""):
    """Lines of a text drawing of ``system.tree()`` data."""
    lines = []
    for i, entry in enumerate(entries):
        last = i == len(entries) - 1
        label = entry["name"].rpartition("/")[2]
        kind = entry["class"].rpartition(".")[2]
        facts = [f"pid {entry['pid']}", entry["state"]]
        if entry["restart"] is not None:
            facts.append(f"restarts {entry['restarts']}")
        if entry["last_exit"]:
            facts.append(f"last exit: {entry['last_exit']}")
        branch, indent = ("└── ", "    ") if last else ("├── ", "│   ")
        lines.append(f"{prefix}{branch}{label} ({kind}) " + ", ".join(facts))
        lines.extend(draw(entry["children"], prefix + indent))
    return lines


def all_running(entries):
    return all(e["state"] == "running" and all_running(e["children"]) for e in entries)


class FirstLine(logging.Formatter):
    """One line per log record (a crash report carries a traceback)."""

    def format(self, record):
        return "  [log] " + record.getMessage().splitlines()[0]


def main(transport="zmq"):
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(FirstLine())
    logging.getLogger("actors").addHandler(handler)
    logging.getLogger("actors").propagate = False

    stats = {"requests": 0, "answers": 0, "retries": 0}
    with actors.ActorSystem(transport) as system:
        system.spawn(App, name="app")
        workers = [system.lookup(f"app/pool/{name}") for name in WORKERS]
        cache = system.lookup("app/pair/cache")
        chaos = system.lookup("app/chaos")
        chaos.tell("tick")  # let chaos begin
        end = time.monotonic() + 60
        plan_done = None
        n = 0
        while plan_done is None or n < 200:
            assert time.monotonic() < end, "chaos did not get through its plan"
            stats["requests"] += 1
            if n % 3 == 2:
                k = n % 100
                answer, expected = ask_with_retry(cache, ("cube", k), stats), k ** 3
            else:
                ref = workers[n % len(WORKERS)]
                answer, expected = ask_with_retry(ref, ("square", n), stats), n * n
            assert answer == expected, f"request {n}: got {answer}, expected {expected}"
            stats["answers"] += 1
            n += 1
            if plan_done is None and n % 10 == 0:
                plan_done = chaos.ask("done", timeout=DEADLINE)
        tree = system.tree()
        pool_restarts = sum(c.restarts for c in system.lookup("app/pool").proxy().which_children())
        pair = {c.name: c.restarts for c in system.lookup("app/pair").proxy().which_children()}

    kinds = {how: sum(1 for _, h in plan_done if h == how) for how in ("raise", "exit", "kill")}
    print(f"chaos: {len(plan_done)} crashes ({kinds['raise']} exceptions, "
          f"{kinds['exit']} os._exit, {kinds['kill']} SIGKILL)")
    print(f"client: {stats['requests']} requests, {stats['answers']} answered, "
          f"{stats['retries']} retries")
    print(f"restarts: pool {pool_restarts} (workers), pair table {pair['table']} "
          f"cache {pair['cache']} (one_for_all)")
    print("final tree:")
    print("\n".join(draw(tree)))
    assert pool_restarts + pair["table"] == len(plan_done)
    assert pair["cache"] == pair["table"]
    print("every request answered")
    return stats


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "zmq")
