"""actors.mp against the standard library's multiprocessing, in one run.

    python -m benchmarks.mp                    # full run: 5 rounds, medians
    python -m benchmarks.mp --quick            # smoke run, under 30 s
    python -m benchmarks.mp --repeat 9 --json results.json
    python -m benchmarks.mp --transport pipe   # sets ACTORS_MP_TRANSPORT first
    python -m benchmarks.mp --control          # the stdlib on both sides (A/A)

Every benchmark runs the same program with ``actors.mp`` and with
``multiprocessing.get_context("spawn")`` (the standard library), each side
starting its own processes, queues, pipes, locks and pools through its own
module; ratios are actors.mp / multiprocessing within this run:

* Queue one-way throughput, child -> main (a child puts N ``("add", 1)``,
  the main program gets them all) and main -> child (the main program puts
  N, the child gets them all and reports the count);
* Pipe round trip: ping-pong of ``("add", 1)`` with a child;
* Lock acquire+release, ``actors.mp.Lock`` against
  ``multiprocessing.Manager().Lock`` (the other message-passing lock) and
  ``multiprocessing.Lock`` (an OS semaphore, for the record): uncontended
  in the main program, and contended by two child processes that take the
  same lock in a loop;
* Value counter: two child processes each do ``with v.get_lock(): v.value
  += 1`` N times on one Value;
* Pool(2): map of 100,000 tiny tasks (default chunksize), map of 10,000
  tiny tasks with chunksize=1, apply_async of 10,000 tiny tasks (all
  results collected), map of 1,000 tasks of 1 ms of CPU each (a busy loop
  on time.thread_time; ``--ms-task sleep`` for time.sleep(0.001)), and
  start-up: a fresh Pool(2) until its first map of 2 tiny tasks returns.

Long-lived processes start once per side; each round then takes one sample
of every benchmark and side, benchmarks in a rotating order, sides in ABBA
order (A B in even rounds, B A in odd ones), and the table gives the median
of the rounds. Every blocking call runs under a watchdog: past its deadline
the run kills the child processes it started and exits with status 3.
Every child process is stopped and joined (killed if need be) on success,
error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import itertools
import json
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks import mp_tasks
from benchmarks.run import best_effort, reap

PAYLOAD = mp_tasks.PAYLOAD
STOP = mp_tasks.STOP

SAMPLE_TIMEOUT = 180.0  # seconds one sample (or one set-up step) may take; --timeout
START_LEAD = 0.05  # contended lock: both contenders start this long after the command
TRANSPORT_ENV = "ACTORS_MP_TRANSPORT"


@dataclass
class Sizes:
    queue: int          # items per Queue sample (each direction)
    pipe: int           # round trips per Pipe sample
    lock: int           # acquire+release per uncontended Lock sample
    contended: int      # acquire+release per process per contended sample
    map_tiny: int       # tasks of Pool.map, default chunksize
    map_tiny_reps: int  # such maps per sample (one takes ~15 ms with the stdlib)
    map_chunk1: int     # tasks of Pool.map, chunksize=1
    apply_async: int    # tasks of Pool.apply_async
    map_1ms: int        # tasks of 1 ms, Pool.map default chunksize
    startups: int       # fresh pools per start-up sample (the sample is their median)
    counter: int        # increments per process per Value counter sample
    warm_div: int       # warm-up samples are 1/warm_div of a sample

    def warm(self) -> Sizes:
        d = self.warm_div
        return Sizes(queue=max(self.queue // d, 1), pipe=max(self.pipe // d, 1),
                     lock=max(self.lock // d, 1), contended=max(self.contended // d, 1),
                     map_tiny=max(self.map_tiny // d, 1), map_tiny_reps=1,
                     map_chunk1=max(self.map_chunk1 // d, 1),
                     apply_async=max(self.apply_async // d, 1),
                     map_1ms=max(self.map_1ms // d, 1), startups=1,
                     counter=max(self.counter // d, 1), warm_div=1)


FULL = Sizes(queue=20_000, pipe=5_000, lock=5_000, contended=2_000, map_tiny=100_000,
             map_tiny_reps=5,
             map_chunk1=10_000, apply_async=10_000, map_1ms=1_000, startups=2, counter=5_000,
             warm_div=10)
QUICK = Sizes(queue=4_000, pipe=500, lock=500, contended=200, map_tiny=100_000,
              map_tiny_reps=2,
              map_chunk1=1_000, apply_async=1_000, map_1ms=100, startups=1, counter=500,
              warm_div=10)


# -- watchdog and reaping --------------------------------------------------------------

class Watchdog:
    """Deadlines for blocking calls that have no timeout of their own (a
    ``get()`` on a queue whose producer died blocks forever): past the
    deadline, kill every child process this run started and exit."""

    def __init__(self, seconds: float = SAMPLE_TIMEOUT) -> None:
        self.seconds = seconds
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._what = ""
        self._seconds = 0.0
        self.processes: list[Any] = []        # Process objects we started
        self.impls: list[Any] = []            # modules whose active_children() are ours
        threading.Thread(target=self._run, name="bench-watchdog", daemon=True).start()

    @contextlib.contextmanager
    def guard(self, what: str, seconds: float | None = None) -> Iterator[None]:
        """Nested guards: the inner one holds until it ends, then the outer
        one's deadline is back."""
        seconds = self.seconds if seconds is None else seconds
        with self._cond:
            outer = (self._deadline, self._what, self._seconds)
            self._deadline, self._what, self._seconds = time.monotonic() + seconds, what, seconds
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._deadline, self._what, self._seconds = outer
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                break
        print(f"\nbenchmarks.mp: {self._what}: no result within {self._seconds:g} s; "
              "killing the child processes this run started and exiting", file=sys.stderr,
              flush=True)
        self.kill_all()
        os._exit(3)

    def kill_all(self) -> None:
        procs = list(self.processes)
        for impl in self.impls:
            with contextlib.suppress(Exception):
                procs.extend(impl.active_children())
        for proc in procs:
            with contextlib.suppress(Exception):
                if proc.is_alive():
                    print(f"  killing {proc.name} (pid {proc.pid})", file=sys.stderr)
                    proc.kill()




# -- the two implementations and what they start -------------------------------------------

@dataclass
class Impl:
    key: str      # "actors" or "mp"
    label: str
    mod: Any      # the actors.mp module, or the stdlib's spawn context


class Env:
    """What each side needs, started on first use and stopped at the end."""

    def __init__(self, stack: contextlib.ExitStack, dog: Watchdog, a: Impl, b: Impl,
                 ms_task: Callable[[int], int]) -> None:
        self.stack, self.dog, self.a, self.b = stack, dog, a, b
        self.ms_task = ms_task
        self._cache: dict[tuple[str, str], Any] = {}

    def once(self, name: str, impl: Impl, make: Callable[[], Any]) -> Any:
        key = (name, impl.key)
        if key not in self._cache:
            with self.dog.guard(f"setting up {name} ({impl.label})"):
                self._cache[key] = make()
        return self._cache[key]

    def start(self, impl: Impl, target: Callable[..., None], args: tuple[Any, ...],
              name: str) -> Any:
        proc = impl.mod.Process(target=target, args=args, name=f"bench-mp:{name}", daemon=True)
        proc.start()
        self.dog.processes.append(proc)
        self.stack.callback(reap, proc)
        return proc

    def queue_server(self, impl: Impl) -> tuple[Any, Any]:
        def make() -> tuple[Any, Any]:
            down, up = impl.mod.Queue(), impl.mod.Queue()
            self.start(impl, mp_tasks.queue_server, (down, up), "queue")
            self.stack.callback(best_effort(lambda: down.put(STOP)))
            ready = up.get()
            assert ready[0] == "ready", ready
            return down, up
        return self.once("Queue server", impl, make)

    def pipe_echo(self, impl: Impl) -> Any:
        def make() -> Any:
            here, there = impl.mod.Pipe()
            self.start(impl, mp_tasks.pipe_echo, (there,), "pipe")
            self.stack.callback(best_effort(lambda: here.send(STOP)))
            ready = here.recv()
            assert ready[0] == "ready", ready
            return here
        return self.once("Pipe echo server", impl, make)

    def manager(self) -> Any:
        def make() -> Any:
            manager = self.b.mod.Manager()
            self.stack.callback(best_effort(manager.shutdown))
            return manager
        return self.once("Manager", self.b, make)

    def lock(self, impl: Impl, kind: str, solo: bool = False) -> Any:
        """kind: "own" (the side's Lock), "manager" (Manager().Lock);
        ``solo``: one that no other process uses (the uncontended one)."""
        make = self.manager().Lock if kind == "manager" else impl.mod.Lock
        return self.once(f"{kind} Lock{' (solo)' if solo else ''}", impl, make)

    def contenders(self, impl: Impl, kind: str) -> list[Any]:
        """Two processes (started by ``impl``) that take the same lock."""
        def make() -> list[Any]:
            return self.pair(impl, mp_tasks.lock_contender, self.lock(impl, kind),
                             f"lock-{kind}")
        return self.once(f"{kind} Lock contenders", impl, make)

    def pair(self, impl: Impl, target: Any, shared: Any, label: str) -> list[Any]:
        """Two processes running ``target(shared, conn)``, both ready; their
        conns (each is sent STOP at the end)."""
        conns = []
        for i in range(2):
            here, there = impl.mod.Pipe()
            self.start(impl, target, (shared, there), f"{label}-{i}")
            self.stack.callback(best_effort(lambda here=here: here.send(STOP)))
            conns.append(here)
        for here in conns:
            ready = here.recv()
            assert ready[0] == "ready", ready
        return conns

    def counters(self, impl: Impl) -> tuple[Any, list[Any]]:
        """A Value and two processes (started by ``impl``) that increment it."""
        def make() -> tuple[Any, list[Any]]:
            value = impl.mod.Value("i", 0)
            return value, self.pair(impl, mp_tasks.value_counter, value, "counter")
        return self.once("Value counters", impl, make)

    def pool(self, impl: Impl) -> Any:
        def make() -> Any:
            pool = impl.mod.Pool(2)
            self.stack.callback(self.stop_pool, impl, pool)
            assert pool.map(mp_tasks.add_one, [0, 1]) == [1, 2]
            return pool
        return self.once("Pool(2)", impl, make)

    def stop_pool(self, impl: Impl, pool: Any) -> None:
        try:
            with self.dog.guard(f"closing and joining the Pool(2) of {impl.label}"):
                pool.close()
                pool.join()
        except Exception as e:  # noqa: BLE001 -- terminate it instead
            print(f"  [cleanup] Pool of {impl.label}: {e!r}; terminating it", file=sys.stderr)
            best_effort(pool.terminate)()


# -- benchmarks ---------------------------------------------------------------------------

@dataclass
class Side:
    key: str          # "actors", "mp", "manager", "mp_lock"
    label: str        # as the table names it
    impl: Impl
    samples: list[float] = field(default_factory=list)
    extra: list[float] = field(default_factory=list)   # contended locks: handoff fraction

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """(max - min) / median of the rounds."""
        return (max(self.samples) - min(self.samples)) / self.median if self.median else 0.0


@dataclass
class Check:
    side: str           # the actors.mp side's key
    base: str           # the baseline side's key
    op: str | None      # ">=" or "<=" on the ratio side/base; None: for the record
    target: float | None


class Bench:
    key = ""
    label = ""
    unit = ""   # "msg/s", "tasks/s" (higher is better), "us", "ms" (lower is better)
    what = ""   # one line: what is timed

    def __init__(self, env: Env) -> None:
        self.env = env
        self.sides = [Side("actors", env.a.label, env.a), Side("mp", env.b.label, env.b)]
        self.checks = [Check("actors", "mp", ">=" if self.higher_is_better else "<=", 1.0)]

    @property
    def higher_is_better(self) -> bool:
        return self.unit.endswith("/s")

    def setup(self, side: Side) -> None:
        """Start what the side's samples need (outside the timing)."""

    def sample(self, side: Side, sizes: Sizes) -> float:
        raise NotImplementedError

    def side(self, key: str) -> Side:
        return next(s for s in self.sides if s.key == key)


class QueueUp(Bench):
    key, label, unit = "queue_up", "Queue one-way, child -> main", "msg/s"
    what = "a child puts N ('add', 1); the main program gets all N"

    def setup(self, side: Side) -> None:
        self.env.queue_server(side.impl)

    def sample(self, side: Side, sizes: Sizes) -> float:
        down, up = self.env.queue_server(side.impl)
        n = sizes.queue
        get = up.get
        start = time.perf_counter()
        down.put(("produce", n))
        for _ in range(n - 1):
            get()
        last = get()
        elapsed = time.perf_counter() - start
        if tuple(last) != PAYLOAD:
            raise AssertionError(f"{side.label}: Queue item {last!r}, expected {PAYLOAD!r}")
        return n / elapsed


class QueueDown(Bench):
    key, label, unit = "queue_down", "Queue one-way, main -> child", "msg/s"
    what = "the main program puts N ('add', 1); a child gets all N, then reports its count"

    def setup(self, side: Side) -> None:
        self.env.queue_server(side.impl)

    def sample(self, side: Side, sizes: Sizes) -> float:
        down, up = self.env.queue_server(side.impl)
        n = sizes.queue
        put = down.put
        start = time.perf_counter()
        put(("consume", n))
        for _ in range(n):
            put(PAYLOAD)
        reply = up.get()
        elapsed = time.perf_counter() - start
        if tuple(reply) != ("count", n):
            raise AssertionError(f"{side.label}: the child counted {reply!r}, expected "
                                 f"('count', {n})")
        return n / elapsed


class PipeRoundTrip(Bench):
    key, label, unit = "pipe_rtt", "Pipe round trip", "us"
    what = "send ('add', 1) to a child over Pipe(), recv its echo; per round trip"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.checks = [Check("actors", "mp", None, None)]  # no target in the issue

    def setup(self, side: Side) -> None:
        self.env.pipe_echo(side.impl)

    def sample(self, side: Side, sizes: Sizes) -> float:
        conn = self.env.pipe_echo(side.impl)
        n = sizes.pipe
        send, recv = conn.send, conn.recv
        start = time.perf_counter()
        for _ in range(n):
            send(PAYLOAD)
            reply = recv()
        elapsed = time.perf_counter() - start
        if reply != PAYLOAD:
            raise AssertionError(f"{side.label}: Pipe echo {reply!r}, expected {PAYLOAD!r}")
        return elapsed / n * 1e6


class LockBench(Bench):
    unit = "us"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.sides = [Side("actors", f"{env.a.label} Lock", env.a),
                      Side("manager", "multiprocessing Manager().Lock", env.b),
                      Side("mp_lock", "multiprocessing.Lock", env.b)]
        # issue 15's targets: uncontended <= 10x multiprocessing.Lock,
        # contended <= 1x Manager().Lock (the other is for the record)
        if self.key == "lock_uncontended":
            self.checks = [Check("actors", "mp_lock", "<=", 10.0),
                           Check("actors", "manager", None, None)]
        else:
            self.checks = [Check("actors", "manager", "<=", 1.0),
                           Check("actors", "mp_lock", None, None)]

    @staticmethod
    def kind(side: Side) -> str:
        return "manager" if side.key == "manager" else "own"


class LockUncontended(LockBench):
    key, label = "lock_uncontended", "Lock acquire+release, uncontended"
    what = "acquire() then release() in the main program, no other user; per pair"

    def setup(self, side: Side) -> None:
        self.env.lock(side.impl, self.kind(side), solo=True)

    def sample(self, side: Side, sizes: Sizes) -> float:
        lock = self.env.lock(side.impl, self.kind(side), solo=True)
        acquire, release = lock.acquire, lock.release
        n = sizes.lock
        start = time.perf_counter()
        for _ in range(n):
            acquire()
            release()
        return (time.perf_counter() - start) / n * 1e6


class LockContended(LockBench):
    key, label = "lock_contended", "Lock acquire+release, contended"
    what = ("two child processes, started together (a shared monotonic deadline), each "
            "acquire+release the same lock N times; first to last acquire of the 2N, per "
            "acquisition (the wait for the start and the reporting are not timed)")

    def setup(self, side: Side) -> None:
        self.env.contenders(side.impl, self.kind(side))

    def sample(self, side: Side, sizes: Sizes) -> float:
        conns = self.env.contenders(side.impl, self.kind(side))
        n = sizes.contended
        start_at = time.monotonic() + START_LEAD
        for conn in conns:
            conn.send(("run", n, start_at))
        stamps = [list(conn.recv()) for conn in conns]
        for got in stamps:
            if len(got) != n:
                raise AssertionError(f"{side.label}: a contender sent {len(got)} stamps, "
                                     f"expected {n}")
        merged = sorted([(t, 0) for t in stamps[0]] + [(t, 1) for t in stamps[1]])
        handoffs = sum(1 for x, y in itertools.pairwise(merged) if x[1] != y[1])
        side.extra.append(handoffs / (2 * n - 1))
        span = merged[-1][0] - merged[0][0]
        return span / (2 * n - 1) * 1e6


class ValueCounter(Bench):
    key, label, unit = "value_counter", "Value counter, 2 processes under get_lock()", "ms"
    what = ("two child processes, started together, each do N times `with v.get_lock(): "
            "v.value += 1` on one Value('i'), N = 5,000 (quick 500); from the start to the "
            "second one's end")

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.checks = [Check("actors", "mp", "<=", 3.0)]

    def setup(self, side: Side) -> None:
        self.env.counters(side.impl)

    def sample(self, side: Side, sizes: Sizes) -> float:
        value, conns = self.env.counters(side.impl)
        n = sizes.counter
        value.value = 0
        start_at = time.monotonic() + START_LEAD
        for conn in conns:
            conn.send(("run", n, start_at))
        ends = [conn.recv() for conn in conns]
        if value.value != 2 * n:
            raise AssertionError(f"{side.label}: the counter ended at {value.value}, "
                                 f"expected {2 * n}")
        return (max(ends) - start_at) * 1e3


class PoolBench(Bench):
    def setup(self, side: Side) -> None:
        self.env.pool(side.impl)

    @staticmethod
    def expect(results: Any, n: int) -> None:
        total = sum(results) if not isinstance(results, int) else results
        if total != n * (n + 1) // 2:
            raise AssertionError(f"Pool results sum to {total}, expected {n * (n + 1) // 2}")


class PoolMapTiny(PoolBench):
    key, label, unit = "pool_map_tiny", "Pool(2).map, tiny tasks, default chunksize", "tasks/s"
    what = ("pool.map(add_one, range(N)), N = 100,000 (the sample: all tasks / all time of "
            "5 such maps in a row, quick 2)")

    def sample(self, side: Side, sizes: Sizes) -> float:
        pool, n = self.env.pool(side.impl), sizes.map_tiny
        elapsed = 0.0
        for _ in range(sizes.map_tiny_reps):
            start = time.perf_counter()
            results = pool.map(mp_tasks.add_one, range(n))
            elapsed += time.perf_counter() - start
            self.expect(results, n)
        return n * sizes.map_tiny_reps / elapsed


class PoolMapChunk1(PoolBench):
    key, label, unit = "pool_map_chunk1", "Pool(2).map, tiny tasks, chunksize=1", "tasks/s"
    what = "pool.map(add_one, range(N), chunksize=1)"

    def sample(self, side: Side, sizes: Sizes) -> float:
        pool, n = self.env.pool(side.impl), sizes.map_chunk1
        start = time.perf_counter()
        results = pool.map(mp_tasks.add_one, range(n), chunksize=1)
        elapsed = time.perf_counter() - start
        self.expect(results, n)
        return n / elapsed


class PoolApplyAsync(PoolBench):
    key, label, unit = "pool_apply_async", "Pool(2).apply_async, tiny tasks", "tasks/s"
    what = "N pool.apply_async(add_one, (i,)), then .get() of every result"

    def sample(self, side: Side, sizes: Sizes) -> float:
        pool, n = self.env.pool(side.impl), sizes.apply_async
        apply_async, add_one = pool.apply_async, mp_tasks.add_one
        start = time.perf_counter()
        pending = [apply_async(add_one, (i,)) for i in range(n)]
        total = sum(r.get() for r in pending)
        elapsed = time.perf_counter() - start
        self.expect(total, n)
        return n / elapsed


class PoolMap1ms(PoolBench):
    key, unit = "pool_map_1ms", "tasks/s"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        busy = env.ms_task is mp_tasks.busy_1ms
        self.label = f"Pool(2).map, 1 ms tasks ({'busy loop' if busy else 'sleep'})"
        self.what = ("pool.map(busy_1ms, range(N)): 1 ms of CPU each (busy loop on "
                     "time.thread_time)" if busy else
                     "pool.map(sleep_1ms, range(N)): time.sleep(0.001) each")

    def sample(self, side: Side, sizes: Sizes) -> float:
        pool, n = self.env.pool(side.impl), sizes.map_1ms
        start = time.perf_counter()
        results = pool.map(self.env.ms_task, range(n))
        elapsed = time.perf_counter() - start
        self.expect(results, n)
        return n / elapsed


class PoolStartup(Bench):
    key, label, unit = "pool_startup", "Pool(2) start-up + first map of 2 tiny tasks", "ms"
    what = ("a fresh Pool(2) until pool.map(add_one, [0, 1]) returns (then terminate + join, "
            "not timed); the median of the round's fresh pools")

    def sample(self, side: Side, sizes: Sizes) -> float:
        times = []
        for _ in range(sizes.startups):
            start = time.perf_counter()
            pool = side.impl.mod.Pool(2)
            try:
                results = pool.map(mp_tasks.add_one, [0, 1])
                times.append((time.perf_counter() - start) * 1e3)
            finally:
                pool.terminate()
                pool.join()
            if results != [1, 2]:
                raise AssertionError(f"{side.label}: first map gave {results!r}")
        return statistics.median(times)


BENCHES: list[type[Bench]] = [QueueUp, QueueDown, PipeRoundTrip, LockUncontended,
                              LockContended, ValueCounter, PoolMapTiny, PoolMapChunk1, PoolApplyAsync,
                              PoolMap1ms, PoolStartup]


# -- results -------------------------------------------------------------------------------

def evaluate(benches: list[Bench]) -> list[dict[str, Any]]:
    out = []
    for bench in benches:
        for check in bench.checks:
            value, base = bench.side(check.side).median, bench.side(check.base).median
            ratio = value / base
            passed = None
            if check.op is not None and check.target is not None:
                passed = ratio >= check.target if check.op == ">=" else ratio <= check.target
            out.append({"benchmark": bench.key, "side": check.side, "baseline": check.base,
                        "unit": bench.unit, "value": value, "baseline_value": base,
                        "ratio": ratio, "op": check.op, "target": check.target,
                        "pass": passed})
    return out


def fmt(value: float, unit: str) -> str:
    if unit.endswith("/s"):
        return f"{value:,.0f} {unit}"
    if unit == "us":
        return f"{value:,.1f} µs" if value >= 1 else f"{value:,.2f} µs"
    return f"{value:,.1f} {unit}"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def cell(side: Side, unit: str) -> str:
    spread = f" ({side.spread * 100:.0f}%)" if len(side.samples) > 1 else ""
    return fmt(side.median, unit) + spread


def table(benches: list[Bench], results: list[dict[str, Any]], a_label: str) -> str:
    head = ("benchmark", a_label, "baseline", "baseline figure", "ratio", "target", "verdict")
    rows = []
    for bench in benches:
        mine = [r for r in results if r["benchmark"] == bench.key]
        for i, r in enumerate(mine):
            side, base = bench.side(r["side"]), bench.side(r["baseline"])
            if r["op"] is None:
                target, verdict = "- (for the record)", "-"
            else:
                target = f"{r['op']} {r['target']:g}x"
                verdict = "PASS" if r["pass"] else "**MISS**"
            rows.append((bench.label if i == 0 else "", cell(side, bench.unit) if i == 0 else "",
                         base.label, cell(base, bench.unit), fmt_ratio(r["ratio"]), target,
                         verdict))
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    right = {1, 3, 4}

    def line(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":" if i in right else "-" * (w + 2))
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), rule, *(line(row) for row in rows)])


def meta(args: argparse.Namespace, sizes: Sizes, a: Impl) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "a": a.label,
        "control": args.control,
        "transport": os.environ.get(TRANSPORT_ENV),
        "repeat": args.repeat,
        "quick": args.quick,
        "sizes": sizes.__dict__,
        "ms_task": args.ms_task,
        "payload": list(PAYLOAD),
        "order": "benchmarks rotate each round; sides A B in even rounds, B A in odd ones",
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# -- main ----------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--repeat", type=int,
                        help="rounds; the table shows medians (default 5, quick 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--transport", choices=("zmq", "pipe"),
                        help=f"set {TRANSPORT_ENV} before importing actors.mp "
                             "(default: leave the environment as it is)")
    parser.add_argument("--ms-task", choices=("busy", "sleep"), default="busy",
                        help="the 1 ms task: 1 ms of CPU in a busy loop (default) or "
                             "time.sleep(0.001)")
    parser.add_argument("--control", action="store_true",
                        help="A/A control: the standard library (spawn) on both sides, "
                             "no actors.mp (debugs the harness, shows the noise)")
    parser.add_argument("--timeout", type=float, default=SAMPLE_TIMEOUT, metavar="SECONDS",
                        help="give up after this long on any one sample or set-up step: kill "
                             f"the children and exit with status 3 (default {SAMPLE_TIMEOUT:g})")
    parser.add_argument("--only", metavar="KEYS",
                        help="comma-separated benchmark keys to run (default: all): "
                             + ", ".join(b.key for b in BENCHES))
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.only:
        keys = {b.key for b in BENCHES}
        args.only = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = [k for k in args.only if k not in keys]
        if unknown:
            parser.error(f"--only: unknown benchmark(s) {', '.join(unknown)}")
    return args


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load_a(args: argparse.Namespace) -> Impl:
    if args.control:
        return Impl("actors", "multiprocessing (A/A control)",
                    multiprocessing.get_context("spawn"))
    if args.transport:
        os.environ[TRANSPORT_ENV] = args.transport
    mod = importlib.import_module("actors.mp")
    transport = os.environ.get(TRANSPORT_ENV) or "default transport"
    return Impl("actors", f"actors.mp ({transport})", mod)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    try:
        a = load_a(args)
    except ImportError as e:
        print(f"benchmarks.mp: cannot import actors.mp ({e}); --control runs the harness with "
              "the standard library on both sides", file=sys.stderr)
        return 2
    b = Impl("mp", "multiprocessing", multiprocessing.get_context("spawn"))
    ms_task = mp_tasks.busy_1ms if args.ms_task == "busy" else mp_tasks.sleep_1ms
    started = time.perf_counter()
    dog = Watchdog(args.timeout)
    dog.impls += [a.mod, b.mod]  # their active_children(): pool workers, the Manager
    with contextlib.ExitStack() as stack:
        env = Env(stack, dog, a, b, ms_task)
        benches = [cls(env) for cls in BENCHES if not args.only or cls.key in args.only]
        progress(f"setting up ({len(benches)} benchmarks, {a.label} vs {b.label}) ...")
        for bench in benches:
            for side in bench.sides:
                bench.setup(side)
        progress(f"set up in {time.perf_counter() - started:.1f} s; warming up ...")
        warm = sizes.warm()
        for bench in benches:
            for side in bench.sides:
                with dog.guard(f"warm-up of {bench.key} ({side.label})"):
                    bench.sample(side, warm)
                side.extra.clear()
        for r in range(args.repeat):
            shift = r % len(benches)
            for bench in benches[shift:] + benches[:shift]:
                order = bench.sides if r % 2 == 0 else bench.sides[::-1]
                for side in order:
                    gc.collect()
                    with dog.guard(f"round {r + 1}, {bench.key} ({side.label})"):
                        side.samples.append(bench.sample(side, sizes))
            progress(f"round {r + 1}/{args.repeat} done ({time.perf_counter() - started:.1f} s)")
        progress("stopping processes ...")
    elapsed = time.perf_counter() - started

    results = evaluate(benches)
    print()
    print(f"{a.label} vs multiprocessing (spawn context), median of {args.repeat} round(s); "
          f"(x%): range of the rounds,\n(max - min) / median. ratio: {a.label} / baseline, "
          "both measured in this run.\n")
    print(table(benches, results, a.label))
    print()
    for bench in benches:
        print(f"- {bench.label}: {bench.what}.")
    contended = [bench for bench in benches if isinstance(bench, LockContended)]
    for bench in contended:
        shares = ", ".join(f"{s.label} {statistics.median(s.extra) * 100:.0f}%"
                           for s in bench.sides if s.extra)
        print(f"- contended lock: the lock passed from one process to the other at this share "
              f"of acquisitions (median): {shares}.")
    graded = [r for r in results if r["pass"] is not None]
    print(f"\ntargets met: {sum(r['pass'] for r in graded)}/{len(graded)}; "
          f"total time {elapsed:.1f} s")
    if args.json:
        write_json(args.json, meta(args, sizes, a), elapsed, benches, results)
    return 0


def write_json(path: str, info: dict[str, Any], elapsed: float, benches: list[Bench],
               results: list[dict[str, Any]]) -> None:
    data = {
        "meta": {**info, "total_seconds": elapsed},
        "benchmarks": {
            bench.key: {"label": bench.label, "unit": bench.unit, "what": bench.what,
                        "sides": {s.key: {"label": s.label, "median": s.median,
                                          "min": min(s.samples), "max": max(s.samples),
                                          "samples": s.samples,
                                          **({"handoff_share": s.extra} if s.extra else {})}
                                  for s in bench.sides}}
            for bench in benches},
        "checks": results,
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; child processes were stopped", file=sys.stderr)
        sys.exit(130)
