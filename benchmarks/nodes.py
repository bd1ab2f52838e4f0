"""Two nodes over tcp with CurveZMQ, against raw pyzmq with and without
CURVE over the same loopback, in one run.

    python -m benchmarks.nodes                 # full run: 5 rounds, medians
    python -m benchmarks.nodes --quick         # smoke run
    python -m benchmarks.nodes --json results.json

Every message is ``("add", 1)``; node b (and each raw server) is a process
of its own on 127.0.0.1:

* raw PUSH/PULL one-way, msgpack per message, N sends then a sync that
  returns the count; with CURVE (a key pair each side) and without;
* raw DEALER/ROUTER round trip (ping-pong), with CURVE and without, and
  with CURVE where the client busy-polls for 200 us before it sleeps in
  ``recv`` (what an asking thread does by default: ``busy_wait``);
* tell a->b: N ``ref.tell`` from node a's main program to an actor of
  node b, then one ``ask`` ordered after them that returns the count;
* ask a->b: sequential ``ref.ask`` round trips, with the default
  ``busy_wait`` and without it (``busy_wait=0``, set between blocks);
* detection: node b is SIGKILLed while an ask to its actor is pending;
  the time until that ask fails with ActorDeadError (default settings).

Ratios are within this run: tell / raw CURVE PUSH/PULL (target >= 0.5),
ask / raw CURVE ping-pong (target <= 1.5; also without busy waiting, and
against a raw client that busy-polls as well), and detection p50 (target
<= 2 s). Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import msgpack
import zmq

import actors
from transport.polling import busy_poll
from transport.keys import create

MESSAGE = ("add", 1)
BUSY = 0.0002  # the default busy_wait, set explicitly: the raw client does the same
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Counter(actors.Actor):
    def __init__(self) -> None:
        self.n = 0

    def receive(self, message: Any) -> Any:
        if message == "get":
            return self.n
        if type(message) is tuple and message[0] == "add":
            self.n += message[1]
            return self.n
        if message == "hang":
            time.sleep(3600)
        return None


# -- raw pyzmq baselines -------------------------------------------------------------
def _curve_server(sock: zmq.Socket, keys: tuple[bytes, bytes] | None) -> None:
    if keys is not None:
        sock.curve_publickey, sock.curve_secretkey = keys
        sock.curve_server = True


def _curve_client(sock: zmq.Socket, keys: tuple[bytes, bytes] | None) -> None:
    if keys is not None:
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
        sock.curve_serverkey = keys[0]


def raw_server(kind: str, keys: tuple[bytes, bytes] | None, ports: Any) -> None:
    """PULL counting to N then answering on a PUSH, or a ROUTER echoing."""
    ctx = zmq.Context()
    if kind == "push":
        pull = ctx.socket(zmq.PULL)
        _curve_server(pull, keys)
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        back = ctx.socket(zmq.PUSH)
        _curve_server(back, keys)
        back_port = back.bind_to_random_port("tcp://127.0.0.1")
        ports.put((port, back_port))
        while True:
            n = msgpack.unpackb(pull.recv())  # how many follow
            if n == 0:
                break
            count = 0
            for _ in range(n):
                msgpack.unpackb(pull.recv())
                count += 1
            back.send(msgpack.packb(count))
    else:
        router = ctx.socket(zmq.ROUTER)
        _curve_server(router, keys)
        ports.put((router.bind_to_random_port("tcp://127.0.0.1"), 0))
        while True:
            who, data = router.recv_multipart()
            if data == b"stop":
                break
            router.send_multipart([who, msgpack.packb(msgpack.unpackb(data))])
    ctx.destroy(linger=0)


class Raw:
    def __init__(self, kind: str, curve: bool, busy: float = 0.0) -> None:
        self.kind = kind
        self.busy = busy  # s the client polls before it sleeps in recv
        self.keys = zmq.curve_keypair() if curve else None
        spawn = multiprocessing.get_context("spawn")
        ports = spawn.Queue()
        self.proc = spawn.Process(target=raw_server, args=(kind, self.keys, ports), daemon=True)
        self.proc.start()
        port, back_port = ports.get(timeout=30)
        self.ctx = zmq.Context()
        if kind == "push":
            self.out = self.ctx.socket(zmq.PUSH)
            _curve_client(self.out, self.keys)
            self.out.connect(f"tcp://127.0.0.1:{port}")
            self.back = self.ctx.socket(zmq.PULL)
            _curve_client(self.back, self.keys)
            self.back.connect(f"tcp://127.0.0.1:{back_port}")
        else:
            self.out = self.ctx.socket(zmq.DEALER)
            _curve_client(self.out, self.keys)
            self.out.connect(f"tcp://127.0.0.1:{port}")
            self.poller = zmq.Poller()
            self.poller.register(self.out, zmq.POLLIN)

    def poll(self, timeout: float | None) -> list[Any]:
        return self.poller.poll(None if timeout is None else timeout * 1000)

    def one_way(self, n: int) -> float:
        """Messages per second."""
        start = time.perf_counter()
        self.out.send(msgpack.packb(n))
        for _ in range(n):
            self.out.send(msgpack.packb(MESSAGE))
        assert msgpack.unpackb(self.back.recv()) == n
        return n / (time.perf_counter() - start)

    def round_trips(self, n: int) -> list[float]:
        """Microseconds per round trip, one sample each."""
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            self.out.send(msgpack.packb(MESSAGE))
            if self.busy:
                busy_poll(self.poll, self.busy, None)
            self.out.recv()
            samples.append((time.perf_counter() - start) * 1e6)
        return samples

    def close(self) -> None:
        self.out.send(msgpack.packb(0) if self.kind == "push" else b"stop")
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.ctx.destroy(linger=0)


# -- node b ----------------------------------------------------------------------------
def serve(name: str, keys: str) -> None:
    with actors.ActorSystem(node=name, bind="tcp://127.0.0.1", keys=keys, spares=0) as system:
        system.spawn(Counter, name="counter")
        system.spawn(Counter, name="hanger")
        print(system.address, flush=True)
        sys.stdin.read()


def start_node(keys: str, serve: tuple[str, ...] = ("benchmarks.nodes", "--serve", "b")
               ) -> tuple[subprocess.Popen, str]:
    """Run ``python -m *serve keys`` (a node that prints its address, then
    serves until its stdin closes); the process and that address."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT,
                                                                     os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", *serve, keys],
                            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    return proc, proc.stdout.readline().strip()


def stop_node(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.stdin.close()
            proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
    proc.stdout.close()


def tell_rate(counter: actors.ActorRef, n: int) -> float:
    before = counter.ask("get", timeout=30)
    start = time.perf_counter()
    for _ in range(n):
        counter.tell(MESSAGE)
    assert counter.ask("get", timeout=60) == before + n
    return n / (time.perf_counter() - start)


def ask_samples(counter: actors.ActorRef, n: int, busy_wait: float | None = None
                ) -> list[float]:
    """Microseconds per ask; ``busy_wait``: this node's, for these asks."""
    loop = counter._runtime.loop  # (a benchmark reaches in: the setting is per system)
    default = loop.busy.budget
    if busy_wait is not None:
        loop.busy.budget = busy_wait
    try:
        return _ask_samples(counter, n)
    finally:
        loop.busy.budget = default


def _ask_samples(counter: actors.ActorRef, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        counter.ask(MESSAGE, timeout=10)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def detection(system: actors.ActorSystem, keys: str) -> float:
    """Seconds from SIGKILL of node b to the failure of an ask pending there."""
    proc, address = start_node(keys)
    try:
        system.connect(address)
        pending = system.lookup("hanger").ask_async("hang")
        time.sleep(0.05)  # the ask is out
        start = time.perf_counter()
        os.kill(proc.pid, signal.SIGKILL)
        try:
            pending.result(30)
        except actors.ActorDeadError:
            return time.perf_counter() - start
        raise RuntimeError("the pending ask did not fail")
    finally:
        stop_node(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nodes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--serve", nargs=2, metavar=("NAME", "KEYS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    rounds = 1 if args.quick else args.repeat
    messages, trips, kills = (2000, 200, 1) if args.quick else (50_000, 2000, 5)
    folder = tempfile.mkdtemp()
    keys = os.path.join(folder, "keys")
    create(keys)
    raws = {f"raw_{kind}_{'curve' if curve else 'plain'}": Raw(kind, curve)
            for kind in ("push", "dealer") for curve in (True, False)}
    raws["raw_dealer_curve_busy"] = Raw("dealer", True, busy=BUSY)
    proc, address = start_node(keys)
    figures: dict[str, list[float]] = {key: [] for key in
                                       [*raws, "tell_a_to_b", "ask_a_to_b",
                                        "ask_a_to_b_no_busy", "detection"]}
    try:
        with actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys,
                                spares=0, busy_wait=BUSY) as system:
            system.connect(address)
            counter = system.lookup("counter")
            tell_rate(counter, messages // 10)  # warm-up
            ask_samples(counter, trips // 10)
            for _ in range(rounds):
                for key, raw in raws.items():
                    if raw.kind == "push":
                        figures[key].append(raw.one_way(messages))
                    else:
                        figures[key].append(statistics.median(raw.round_trips(trips)))
                figures["tell_a_to_b"].append(tell_rate(counter, messages))
                asks = [("ask_a_to_b", None), ("ask_a_to_b_no_busy", 0.0)]
                for key, busy in asks if len(figures["ask_a_to_b"]) % 2 == 0 else asks[::-1]:
                    figures[key].append(statistics.median(ask_samples(counter, trips, busy)))
            stop_node(proc)
            for _ in range(kills):
                figures["detection"].append(detection(system, keys))
    finally:
        stop_node(proc)
        for raw in raws.values():
            raw.close()
        shutil.rmtree(folder, ignore_errors=True)
    med = {key: statistics.median(values) for key, values in figures.items()}
    ratios = {"tell / raw CURVE PUSH/PULL (target >= 0.5)":
              med["tell_a_to_b"] / med["raw_push_curve"],
              "ask / raw CURVE ping-pong (target <= 1.5)":
              med["ask_a_to_b"] / med["raw_dealer_curve"],
              "ask, busy_wait=0 / raw CURVE ping-pong":
              med["ask_a_to_b_no_busy"] / med["raw_dealer_curve"],
              "ask / raw CURVE ping-pong, both busy-polling":
              med["ask_a_to_b"] / med["raw_dealer_curve_busy"],
              "raw CURVE / plain PUSH/PULL (CURVE's own cost)":
              med["raw_push_curve"] / med["raw_push_plain"],
              "raw CURVE / plain ping-pong": med["raw_dealer_curve"] / med["raw_dealer_plain"]}
    units = {"push": "msg/s", "dealer": "us", "tell": "msg/s", "ask": "us", "detection": "ms"}
    for key, value in med.items():
        unit = next(u for k, u in units.items() if k in key)
        shown = value * 1000 if unit == "ms" else value
        print(f"{key:22} {shown:12,.1f} {unit}  (median of {len(figures[key])})")
    for label, value in ratios.items():
        print(f"{label:48} {value:6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"medians": med, "samples": figures, "ratios": ratios,
                       "messages": messages, "round_trips": trips, "rounds": rounds}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
