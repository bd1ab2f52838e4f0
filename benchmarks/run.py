"""Benchmarks of the actor runtime against its floors, in one run.

    python -m benchmarks.run                  # full run (5 repetitions, medians)
    python -m benchmarks.run --quick          # smoke run, a few seconds
    python -m benchmarks.run --repeat 3 --json results.json

Every message benchmark sends the same small message, ``("add", 1)``:

* floors: raw pyzmq PUSH/PULL one-way throughput and DEALER/ROUTER ping-pong
  over ipc, msgpack per message, one zmq send per message;
* standard library: ``multiprocessing.Queue`` one-way throughput and
  ``multiprocessing.Pipe`` ping-pong (spawn context);
* actors, over the zmq and the pipe transport: tell throughput main->actor,
  tell throughput actor->actor, ask round trip main->actor.

Restart latency, over both transports: SIGKILL of a supervised actor's
process until its new incarnation answers an ask, with warm spare processes
(the pool refilled before each kill), back-to-back (bursts that do not wait
for the refill) and without spares (every restart starts an interpreter).

All processes are started once; each round then takes one sample of every
benchmark (a share of the restarts for the restart benchmarks), in a
rotating order so slow drift of a shared machine spreads over all of them,
and the tables report the median of the rounds (p50 and p99 of all the
restarts). Every child process is stopped, joined with a timeout and killed
if need be, on success, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import multiprocessing
import os
import platform
import queue
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zmq

import actors
from benchmarks import workers

MESSAGE = ("add", 1)
SYNC = ("sync",)
STOP = ("stop",)
COUNT = ("count",)

REPLY_TIMEOUT = 120.0  # seconds any single wait may take before we give up
READY_TIMEOUT = 60.0
JOIN_TIMEOUT = 5.0
RESTART_TIMEOUT = 30.0  # from a SIGKILL to the new incarnation's answer


@dataclass
class Sizes:
    messages: int       # per throughput sample
    round_trips: int    # per latency sample
    warm_messages: int
    warm_round_trips: int
    restarts: int       # per round, per restart benchmark (FULL, QUICK: over all rounds)
    warm_restarts: int
    burst: int          # back-to-back restarts per round


FULL = Sizes(messages=200_000, round_trips=5_000, warm_messages=5_000, warm_round_trips=300,
             restarts=100, warm_restarts=2, burst=6)
QUICK = Sizes(messages=20_000, round_trips=1_000, warm_messages=1_000, warm_round_trips=100,
              restarts=5, warm_restarts=1, burst=3)


# -- waiting with deadlines, and reaping -----------------------------------------

def _check_alive(proc: multiprocessing.process.BaseProcess, what: str, deadline: float) -> None:
    if not proc.is_alive():
        raise RuntimeError(f"{what}: the server process exited (exit code {proc.exitcode})")
    if time.monotonic() >= deadline:
        raise TimeoutError(f"{what}: no answer within the deadline")


def zmq_recv(sock: zmq.Socket, proc: Any, what: str, timeout: float = REPLY_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not sock.poll(250):
        _check_alive(proc, what, deadline)
    return msgpack.unpackb(sock.recv())


def queue_get(q: Any, proc: Any, what: str, timeout: float = REPLY_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return q.get(timeout=0.25)
        except queue.Empty:
            _check_alive(proc, what, deadline)


def conn_recv(conn: Any, proc: Any, what: str, timeout: float = REPLY_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not conn.poll(0.25):
        _check_alive(proc, what, deadline)
    return conn.recv()


def reap(proc: Any) -> None:
    """Join the process we started; kill it (by its Process object) if it
    does not end in time."""
    if proc.pid is None:
        return
    proc.join(JOIN_TIMEOUT)
    if proc.is_alive():
        print(f"  [cleanup] {proc.name} (pid {proc.pid}) did not exit: killing it",
              file=sys.stderr)
        proc.kill()
        proc.join(JOIN_TIMEOUT)


def best_effort(fn: Callable[[], Any]) -> Callable[[], None]:
    def call() -> None:
        try:
            fn()
        except Exception:
            pass
    return call


def start_server(env: Env, target: Callable[..., None], args: tuple[Any, ...],
                 name: str) -> Any:
    proc = env.mp.Process(target=target, args=args, name=f"bench:{name}", daemon=True)
    proc.start()
    env.stack.callback(reap, proc)
    return proc


# -- benchmarks -------------------------------------------------------------------

@dataclass
class Env:
    stack: contextlib.ExitStack
    mp: Any                 # the spawn context
    zctx: zmq.Context
    tmpdir: str
    sizes: Sizes

    def ipc(self, name: str) -> str:
        return f"ipc://{self.tmpdir}/{name}"


@dataclass
class Bench:
    key: str
    label: str
    transport: str
    unit: str  # "msg/s" (higher is better) or "us" (lower is better)
    samples: list[float] = field(default_factory=list)

    @property
    def is_throughput(self) -> bool:
        return self.unit == "msg/s"

    def setup(self, env: Env) -> None:
        raise NotImplementedError

    def run(self, n: int) -> float:
        """Send ``n`` messages (or round trips); return msg/s (or us)."""
        raise NotImplementedError

    def size(self, sizes: Sizes, warm: bool) -> int:
        if self.is_throughput:
            return sizes.warm_messages if warm else sizes.messages
        return sizes.warm_round_trips if warm else sizes.round_trips

    def warm_up(self, sizes: Sizes) -> None:
        self.run(self.size(sizes, warm=True))

    def take(self, sizes: Sizes) -> None:
        """This round's sample(s)."""
        self.samples.append(self.run(self.size(sizes, warm=False)))

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


class RawPushPull(Bench):
    def __init__(self) -> None:
        super().__init__("raw_zmq_push_pull", "PUSH/PULL one-way (floor)", "raw zmq", "msg/s")

    def setup(self, env: Env) -> None:
        self.ctl = env.zctx.socket(zmq.PULL)
        env.stack.callback(self.ctl.close, 0)
        self.ctl.bind(env.ipc("pp-ctl"))
        self.proc = start_server(env, workers.zmq_pull_server,
                                 (env.ipc("pp-ctl"), env.ipc("pp-data")), "push-pull")
        zmq_recv(self.ctl, self.proc, "PULL server start", READY_TIMEOUT)
        self.push = env.zctx.socket(zmq.PUSH)
        env.stack.callback(self.push.close, 0)
        self.push.setsockopt(zmq.SNDHWM, 0)  # as transport.zmq.Outlet
        self.push.connect(env.ipc("pp-data"))
        env.stack.callback(best_effort(lambda: self.push.send(msgpack.packb(STOP), zmq.NOBLOCK)))
        self.expected = 0

    def run(self, n: int) -> float:
        send = self.push.send
        packb = msgpack.packb
        message = MESSAGE
        t0 = time.perf_counter()
        for _ in range(n):
            send(packb(message))
        send(packb(SYNC))
        reply = zmq_recv(self.ctl, self.proc, "PULL server sync")
        elapsed = time.perf_counter() - t0
        self.expected += n
        if reply != ["count", self.expected]:
            raise RuntimeError(f"PULL server counted {reply}, expected {self.expected}")
        return n / elapsed


class RawPingPong(Bench):
    def __init__(self) -> None:
        super().__init__("raw_zmq_dealer_router", "DEALER/ROUTER round trip (floor)",
                         "raw zmq", "us")

    def setup(self, env: Env) -> None:
        ctl = env.zctx.socket(zmq.PULL)
        env.stack.callback(ctl.close, 0)
        ctl.bind(env.ipc("rr-ctl"))
        self.proc = start_server(env, workers.zmq_router_server,
                                 (env.ipc("rr-ctl"), env.ipc("rr-data")), "router")
        zmq_recv(ctl, self.proc, "ROUTER server start", READY_TIMEOUT)
        self.dealer = env.zctx.socket(zmq.DEALER)
        env.stack.callback(self.dealer.close, 0)
        # A dead server must not hang the run: recv gives up after this.
        self.dealer.setsockopt(zmq.RCVTIMEO, int(REPLY_TIMEOUT * 1000))
        self.dealer.connect(env.ipc("rr-data"))
        env.stack.callback(best_effort(lambda: self.dealer.send(msgpack.packb(STOP),
                                                                zmq.NOBLOCK)))
        self.expected = 0

    def run(self, n: int) -> float:
        send = self.dealer.send
        recv = self.dealer.recv
        packb = msgpack.packb
        unpackb = msgpack.unpackb
        message = MESSAGE
        t0 = time.perf_counter()
        for _ in range(n):
            send(packb(message))
            reply = unpackb(recv())
        elapsed = time.perf_counter() - t0
        self.expected += n
        if reply != self.expected:
            raise RuntimeError(f"ROUTER server replied {reply}, expected {self.expected}")
        return elapsed / n * 1e6


class MpQueue(Bench):
    def __init__(self) -> None:
        super().__init__("mp_queue", "mp.Queue one-way (stdlib)", "stdlib", "msg/s")

    def setup(self, env: Env) -> None:
        self.inbox = env.mp.Queue()
        self.outbox = env.mp.Queue()
        for q in (self.inbox, self.outbox):
            # Never let interpreter exit wait on a feeder whose reader is gone.
            env.stack.callback(q.close)
            env.stack.callback(q.cancel_join_thread)
        self.proc = start_server(env, workers.mp_queue_server, (self.inbox, self.outbox),
                                 "mp-queue")
        queue_get(self.outbox, self.proc, "Queue server start", READY_TIMEOUT)
        env.stack.callback(best_effort(lambda: self.inbox.put(STOP)))
        self.expected = 0

    def run(self, n: int) -> float:
        put = self.inbox.put
        message = MESSAGE
        t0 = time.perf_counter()
        for _ in range(n):
            put(message)
        put(SYNC)
        reply = queue_get(self.outbox, self.proc, "Queue server sync")
        elapsed = time.perf_counter() - t0
        self.expected += n
        if reply != ("count", self.expected):
            raise RuntimeError(f"Queue server counted {reply}, expected {self.expected}")
        return n / elapsed


class MpPipe(Bench):
    def __init__(self) -> None:
        super().__init__("mp_pipe", "mp.Pipe round trip (stdlib)", "stdlib", "us")

    def setup(self, env: Env) -> None:
        self.conn, child = env.mp.Pipe(duplex=True)
        env.stack.callback(self.conn.close)
        try:
            self.proc = start_server(env, workers.mp_pipe_server, (child,), "mp-pipe")
        finally:
            child.close()  # ours: so a dead server shows as EOFError, not a hang
        conn_recv(self.conn, self.proc, "Pipe server start", READY_TIMEOUT)
        env.stack.callback(best_effort(lambda: self.conn.send(STOP)))
        self.expected = 0

    def run(self, n: int) -> float:
        send = self.conn.send
        recv = self.conn.recv
        message = MESSAGE
        t0 = time.perf_counter()
        for _ in range(n):
            send(message)
            reply = recv()
        elapsed = time.perf_counter() - t0
        self.expected += n
        if reply != self.expected:
            raise RuntimeError(f"Pipe server replied {reply}, expected {self.expected}")
        return elapsed / n * 1e6


class ActorBenches:
    """One ActorSystem per transport, shared by its three benchmarks."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.system: actors.ActorSystem | None = None

    def setup(self, env: Env) -> None:
        if self.system is None:
            self.system = env.stack.enter_context(actors.ActorSystem(transport=self.transport))
            self.counter = self.system.spawn(workers.Counter, name="counter")
            self.target = self.system.spawn(workers.Counter, name="target")
            self.sender = self.system.spawn(workers.Sender, name="sender")


class ActorBench(Bench):
    """A benchmark of the runtime over one transport (``group``)."""

    key = label = unit = ""

    def __init__(self, group: ActorBenches) -> None:
        super().__init__(f"actors_{self.key}_{group.transport}", self.label,
                         group.transport, self.unit)
        self.group = group

    def setup(self, env: Env) -> None:
        self.group.setup(env)


class TellMain(ActorBench):
    key, label, unit = "tell_main", "tell main->actor", "msg/s"

    def run(self, n: int) -> float:
        ref = self.group.counter
        before = ref.ask(COUNT, timeout=REPLY_TIMEOUT)
        tell = ref.tell
        message = MESSAGE
        t0 = time.perf_counter()
        for _ in range(n):
            tell(message)
        after = ref.ask(COUNT, timeout=REPLY_TIMEOUT)
        elapsed = time.perf_counter() - t0
        if after != before + n:
            raise RuntimeError(f"counter went {before} -> {after}, expected +{n}")
        return n / elapsed


class TellActor(ActorBench):
    key, label, unit = "tell_actor", "tell actor->actor", "msg/s"

    def run(self, n: int) -> float:
        target, sender = self.group.target, self.group.sender
        before = target.ask(COUNT, timeout=REPLY_TIMEOUT)
        t0 = time.perf_counter()
        after = sender.ask(("go", n, target), timeout=REPLY_TIMEOUT)
        elapsed = time.perf_counter() - t0
        if after != before + n:
            raise RuntimeError(f"target went {before} -> {after}, expected +{n}")
        return n / elapsed


class AskMain(ActorBench):
    key, label, unit = "ask", "ask round trip main->actor", "us"

    def run(self, n: int) -> float:
        ref = self.group.counter
        before = ref.ask(COUNT, timeout=REPLY_TIMEOUT)
        ask = ref.ask
        message = MESSAGE
        t0 = time.perf_counter()
        for _ in range(n):
            reply = ask(message, timeout=REPLY_TIMEOUT)
        elapsed = time.perf_counter() - t0
        if reply != before + n:
            raise RuntimeError(f"counter replied {reply}, expected {before + n}")
        return elapsed / n * 1e6


# -- restart latency -------------------------------------------------------------------

SUPERVISOR = "restart-sup"
CHILD = f"{SUPERVISOR}/w"  # see workers.RestartSupervisor
PID = ("pid",)


def percentile(samples: list[float], q: float) -> float:
    """Nearest rank: the smallest sample with at least q% of them at or below it."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class QuietKills(logging.Filter):
    """Drops the node's log line for each death of the child we SIGKILL on
    purpose (one per restart); every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(record.msg, str) and record.msg.startswith("supervised actor ")
                    and isinstance(args, tuple) and args[:1] == (CHILD,)
                    and args[-1:] == ("killed by SIGKILL",))


QUIET_KILLS = QuietKills()


class RestartSystem:
    """An ActorSystem with one ``RestartSupervisor``, shared by the restart
    benchmarks that use it. ``spares=0``: no pool, every restart starts a
    fresh interpreter."""

    def __init__(self, transport: str, spares: int) -> None:
        self.transport = transport
        self.spares = spares
        self.system: actors.ActorSystem | None = None

    def setup(self, env: Env) -> None:
        if self.system is not None:
            return
        logger = logging.getLogger("actors")
        logger.addFilter(QUIET_KILLS)  # once, however many systems
        env.stack.callback(logger.removeFilter, QUIET_KILLS)
        self.system = env.stack.enter_context(
            actors.ActorSystem(transport=self.transport, spares=self.spares))
        self.system.spawn(workers.RestartSupervisor, name=SUPERVISOR)
        ref = self.system.lookup(CHILD)
        if ref is None:
            raise RuntimeError(f"{CHILD} is not registered after its supervisor started")
        self.ref = ref
        self.pid = ref.ask(PID, timeout=REPLY_TIMEOUT)
        self.starter = self.system._node.starter  # the pool: a deque of ready blank hosts
        self.wait_for_spares()

    def wait_for_spares(self) -> float:
        """Wait until the spare pool is full again; the seconds it took."""
        starter = self.starter
        t0 = time.perf_counter()
        deadline = time.monotonic() + READY_TIMEOUT
        while len(starter.pool) < starter.size:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.transport}: the spare pool held {len(starter.pool)} "
                                   f"of {starter.size} processes after {READY_TIMEOUT} s")
            time.sleep(0.001)
        return time.perf_counter() - t0

    def restart(self) -> tuple[float, bool]:
        """SIGKILL the child's process; seconds until an ask is answered from
        a new process, and whether that process was a ready spare at the kill."""
        ref, old = self.ref, self.pid
        spares = {host.pid for host in tuple(self.starter.pool)}
        deadline = time.monotonic() + RESTART_TIMEOUT
        t0 = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{CHILD} over {self.transport} did not answer from a new "
                                   f"process within {RESTART_TIMEOUT} s of its SIGKILL")
            try:
                pid = ref.ask(PID, timeout=remaining)
            except actors.ActorDeadError:
                # Sent to the old process before the node noticed its death;
                # the next ask is held until the new incarnation runs.
                continue
            if pid != old:
                break
        elapsed = time.perf_counter() - t0
        self.pid = pid
        return elapsed, pid in spares


class RestartBench(Bench):
    """Restart latency of ``group``'s child, in ms (one sample per restart).

    ``refill``: wait for a full spare pool before each kill (a warm restart
    every time); otherwise one burst of back-to-back restarts per round,
    the first from a full pool."""

    def __init__(self, key: str, label: str, group: RestartSystem, refill: bool) -> None:
        super().__init__(f"restart_{key}_{group.transport}", label, group.transport, "ms")
        self.group = group
        self.refill = refill
        self.from_spare: list[bool] = []
        self.refills: list[float] = []  # ms from an answer to a full pool again

    def setup(self, env: Env) -> None:
        self.group.setup(env)

    def count(self, sizes: Sizes, warm: bool) -> int:
        if warm:
            return sizes.warm_restarts
        return sizes.restarts if self.refill else sizes.burst

    def restarts(self, n: int) -> list[tuple[float, bool]]:
        group = self.group
        out = []
        group.wait_for_spares()  # the first kill finds a full pool
        for _ in range(n):
            elapsed, spare = group.restart()
            out.append((elapsed * 1e3, spare))
            if self.refill:
                waited = group.wait_for_spares()
                if group.spares:
                    self.refills.append(waited * 1e3)
        # A burst leaves spares starting: wait for them, or they would slow
        # down whichever benchmark comes next.
        group.wait_for_spares()
        return out

    def warm_up(self, sizes: Sizes) -> None:
        self.restarts(self.count(sizes, warm=True))
        self.refills.clear()

    def take(self, sizes: Sizes) -> None:
        for latency, spare in self.restarts(self.count(sizes, warm=False)):
            self.samples.append(latency)
            self.from_spare.append(spare)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)


def make_benches() -> list[Bench]:
    benches: list[Bench] = [RawPushPull(), RawPingPong(), MpQueue(), MpPipe()]
    for transport in ("zmq", "pipe"):
        group = ActorBenches(transport)
        benches += [TellMain(group), TellActor(group), AskMain(group)]
    for transport in ("zmq", "pipe"):
        warm, cold = RestartSystem(transport, spares=2), RestartSystem(transport, spares=0)
        benches += [RestartBench("warm", "restart, warm spare", warm, refill=True),
                    RestartBench("cold", "restart, cold spawn", cold, refill=True),
                    RestartBench("burst", "restart, back-to-back", warm, refill=False)]
    return benches


# -- targets -------------------------------------------------------------------------

# (benchmark key, floor key, ">=" ratio for throughput or "<=" for latency, target)
TARGETS: list[tuple[str, str, str, float]] = []
for _t in ("zmq", "pipe"):
    for _kind in ("tell_main", "tell_actor"):
        TARGETS.append((f"actors_{_kind}_{_t}", "raw_zmq_push_pull", ">=", 0.5))
        TARGETS.append((f"actors_{_kind}_{_t}", "mp_queue", ">=", 2.0))
TARGETS.append(("actors_ask_zmq", "raw_zmq_dealer_router", "<=", 1.5))
TARGETS.append(("actors_ask_pipe", "mp_pipe", "<=", 2.0))
# restarts: a cold spawn takes at least 5x the p50 of a warm restart
for _t in ("zmq", "pipe"):
    TARGETS.append((f"restart_cold_{_t}", f"restart_warm_{_t}", ">=", 5.0))

# (benchmark key, "<=", target in the benchmark's unit): absolute targets on the median
LIMITS: list[tuple[str, str, float]] = [
    (f"restart_warm_{_t}", "<=", 20.0) for _t in ("zmq", "pipe")]

FLOOR_NAMES = {"raw_zmq_push_pull": "raw PUSH/PULL", "mp_queue": "mp.Queue",
               "raw_zmq_dealer_router": "raw DEALER/ROUTER", "mp_pipe": "mp.Pipe",
               "restart_warm_zmq": "warm p50", "restart_warm_pipe": "warm p50"}


def meets(value: float, op: str, target: float) -> bool:
    return value >= target if op == ">=" else value <= target


def checks(by_key: dict[str, Bench]) -> list[dict[str, Any]]:
    """Ratio checks (``floor`` names the reference benchmark), then absolute
    ones (``floor`` None, ``value`` the median in ``unit``)."""
    out = []
    for key, floor, op, target in TARGETS:
        value, base = by_key[key].median, by_key[floor].median
        ratio = value / base
        out.append({"benchmark": key, "floor": floor, "ratio": ratio, "op": op,
                    "target": target, "pass": meets(ratio, op, target)})
    for key, op, target in LIMITS:
        value = by_key[key].median
        out.append({"benchmark": key, "floor": None, "value": value, "unit": by_key[key].unit,
                    "op": op, "target": target, "pass": meets(value, op, target)})
    return out


# -- output ------------------------------------------------------------------------------

def fmt_figure(bench: Bench, value: float | None = None) -> str:
    value = bench.median if value is None else value
    if bench.is_throughput:
        return f"{value:,.0f} msg/s"
    return f"{value:,.1f} {bench.unit}"


def fmt_spread(bench: Bench) -> str:
    if len(bench.samples) < 2:
        return "-"
    return f"{(max(bench.samples) - min(bench.samples)) / bench.median * 100:.0f}%"


def checks_by_bench(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_bench: dict[str, list[dict[str, Any]]] = {}
    for check in results:
        by_bench.setdefault(check["benchmark"], []).append(check)
    return by_bench


def check_cells(check: dict[str, Any], bench: Bench) -> tuple[str, ...]:
    """vs, ratio (or value), target, verdict."""
    verdict = "PASS" if check["pass"] else "MISS"
    if check["floor"] is None:
        return ("p50" if isinstance(bench, RestartBench) else "median",
                fmt_figure(bench, check["value"]),
                f"{check['op']}{check['target']:g} {check['unit']}", verdict)
    return (FLOOR_NAMES[check["floor"]], f"{check['ratio']:.2f}x",
            f"{check['op']}{check['target']:g}x", verdict)


def table(benches: list[Bench], results: list[dict[str, Any]]) -> str:
    head = ("benchmark", "transport", "median", "range", "vs floor", "ratio", "target", "")
    rows: list[tuple[str, ...]] = []
    by_bench = checks_by_bench(results)
    for bench in benches:
        first = (bench.label, bench.transport, fmt_figure(bench), fmt_spread(bench))
        mine = by_bench.get(bench.key)
        if not mine:
            rows.append(first + ("(floor)", "", "", ""))
            continue
        for i, check in enumerate(mine):
            lead = first if i == 0 else ("",) * 4
            rows.append(lead + check_cells(check, bench))
    return render(head, rows, right={2, 3, 5})


def restart_table(benches: list[RestartBench], results: list[dict[str, Any]]) -> str:
    head = ("benchmark", "transport", "p50", "p99", "max", "restarts", "from a spare",
            "vs", "ratio", "target", "")
    rows: list[tuple[str, ...]] = []
    by_bench = checks_by_bench(results)
    for bench in benches:
        first = (bench.label, bench.transport, fmt_figure(bench), fmt_figure(bench, bench.p99),
                 fmt_figure(bench, max(bench.samples)), str(len(bench.samples)),
                 str(sum(bench.from_spare)))
        mine = by_bench.get(bench.key)
        if not mine:
            rows.append(first + ("", "", "", ""))
            continue
        for i, check in enumerate(mine):
            lead = first if i == 0 else ("",) * len(first)
            rows.append(lead + check_cells(check, bench))
    return render(head, rows, right={2, 3, 4, 5, 6, 8})


def render(head: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = []
    for row in [head, *rows]:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def restart_fields(bench: Bench) -> dict[str, Any]:
    if not isinstance(bench, RestartBench):
        return {}
    fields: dict[str, Any] = {"p99": bench.p99, "from_spare": sum(bench.from_spare)}
    if bench.refills:
        fields["refill_median_ms"] = statistics.median(bench.refills)
    return fields


def meta(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "msgpack": ".".join(map(str, msgpack.version)),
        "actors": actors.__version__,
        "message": list(MESSAGE),
        "repeat": args.repeat,
        "quick": args.quick,
        "messages": sizes.messages,
        "round_trips": sizes.round_trips,
        "restarts_per_round": sizes.restarts,
        "burst": sizes.burst,
        "restart_timing": "SIGKILL of a supervised child until an ask is answered from a "
                          "new process; warm and cold: the spare pool refilled before each "
                          "kill; burst: back-to-back, each burst from a full pool",
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# -- main ----------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a smoke run")
    parser.add_argument("--repeat", type=int, default=5,
                        help="rounds; the table shows medians (default 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--messages", type=int,
                        help="messages per throughput sample (default 200000, quick 20000)")
    parser.add_argument("--round-trips", type=int,
                        help="round trips per latency sample (default 5000, quick 1000)")
    parser.add_argument("--restarts", type=int,
                        help=f"restarts per restart benchmark, spread over the rounds "
                             f"(default {FULL.restarts}, quick {QUICK.restarts}; back-to-back: "
                             f"{FULL.burst}, quick {QUICK.burst} per round)")
    args = parser.parse_args(argv)
    for name in ("repeat", "messages", "round_trips", "restarts"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(messages=args.messages or base.messages,
                  round_trips=args.round_trips or base.round_trips,
                  warm_messages=min(base.warm_messages, args.messages or base.messages),
                  warm_round_trips=min(base.warm_round_trips,
                                       args.round_trips or base.round_trips),
                  restarts=math.ceil((args.restarts or base.restarts) / args.repeat),
                  warm_restarts=base.warm_restarts, burst=base.burst)
    started = time.perf_counter()
    benches = make_benches()
    with contextlib.ExitStack() as stack:
        tmpdir = tempfile.mkdtemp(prefix="actors-bench-")
        stack.callback(shutil.rmtree, tmpdir, True)
        zctx = zmq.Context(io_threads=1)
        stack.callback(zctx.term)
        env = Env(stack, multiprocessing.get_context("spawn"), zctx, tmpdir, sizes)

        progress(f"setting up ({len(benches)} benchmarks) ...")
        for bench in benches:
            bench.setup(env)
        progress(f"set up in {time.perf_counter() - started:.1f} s; warming up ...")
        for bench in benches:
            bench.warm_up(sizes)

        for r in range(args.repeat):
            shift = r % len(benches)
            for bench in benches[shift:] + benches[:shift]:
                gc.collect()
                bench.take(sizes)
            progress(f"round {r + 1}/{args.repeat} done "
                     f"({time.perf_counter() - started:.1f} s)")
        progress("stopping processes ...")
    elapsed = time.perf_counter() - started

    by_key = {b.key: b for b in benches}
    results = checks(by_key)
    restarts = [b for b in benches if isinstance(b, RestartBench)]
    print()
    print(f"actors benchmarks: message {MESSAGE!r}, {sizes.messages:,} messages per "
          f"throughput sample, {sizes.round_trips:,} round trips per latency sample, "
          f"median of {args.repeat} round(s)")
    print(table([b for b in benches if b not in restarts], results))
    print()
    print("restart latency (ms): SIGKILL of a supervised actor's process until an ask is "
          "answered from\na new process. warm (spares=2) and cold (spares=0): the spare pool "
          "was full before each kill;\nback-to-back: bursts of "
          f"{sizes.burst} restarts without waiting for the refill, each from a full pool.")
    print(restart_table(restarts, results))
    for bench in restarts:
        if bench.refills:
            print(f"{bench.transport}: the pool was full again "
                  f"{statistics.median(bench.refills):.0f} ms (median) after a warm restart")
    passed = sum(c["pass"] for c in results)
    print(f"\ntargets met: {passed}/{len(results)}; total time {elapsed:.1f} s")

    if args.json:
        data = {
            "meta": {**meta(args, sizes), "total_seconds": elapsed},
            "benchmarks": {b.key: {"label": b.label, "transport": b.transport, "unit": b.unit,
                                   "median": b.median, "min": min(b.samples),
                                   "max": max(b.samples), "samples": b.samples,
                                   **restart_fields(b)}
                           for b in benches},
            "checks": results,
        }
        with open(args.json, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; child processes were stopped", file=sys.stderr)
        sys.exit(130)
