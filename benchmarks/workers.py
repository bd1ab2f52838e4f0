"""Code that runs in the benchmark's child processes.

Everything here is defined at module level so that the multiprocessing
*spawn* method can import it by name in a fresh interpreter. The baseline
servers ignore SIGINT (Ctrl-C is the parent's job: it stops and, if need
be, kills them) and exit on their own if the parent dies.

Wire conventions shared with ``benchmarks.run``:

* the payload is ``("add", 1)``; a server adds its second item to a count;
* ``("sync",)`` asks a one-way server to report its count;
* ``("stop",)`` makes a server return;
* ``("pid",)`` asks a :class:`RestartWorker` for its process id (the
  restart benchmark tells incarnations apart by it);
* ``("go", n)`` makes a :class:`Relay` ask its target ``("add", 1)`` n times
  from its handler and return the latency of each ask.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import wait
from typing import Any

import msgpack
import zmq

from actors import Actor, ChildSpec, Supervisor


def _child_setup() -> None:
    """Ignore Ctrl-C and exit when the parent process goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        wait([sentinel])
        os._exit(70)

    threading.Thread(target=watch, name="bench-parent-watch", daemon=True).start()


# -- raw ZeroMQ --------------------------------------------------------------

def zmq_pull_server(ctl_address: str, data_address: str) -> None:
    """One-way floor: PULL at ``data_address``, unpack every message.

    Reports ``("ready",)`` and then ``("count", n)`` on each sync through a
    PUSH connected to the parent's ``ctl_address``.
    """
    _child_setup()
    ctx = zmq.Context(io_threads=1)
    ctl = ctx.socket(zmq.PUSH)
    pull = ctx.socket(zmq.PULL)
    try:
        ctl.setsockopt(zmq.LINGER, 1000)
        ctl.connect(ctl_address)
        pull.setsockopt(zmq.RCVHWM, 0)  # as transport.zmq.Inbox
        pull.setsockopt(zmq.LINGER, 0)
        pull.bind(data_address)
        ctl.send(msgpack.packb(("ready",)))
        recv = pull.recv
        unpackb = msgpack.unpackb
        count = 0
        while True:
            message = unpackb(recv())
            op = message[0]
            if op == "add":
                count += message[1]
            elif op == "sync":
                ctl.send(msgpack.packb(("count", count)))
            elif op == "stop":
                break
    finally:
        pull.close(0)
        ctl.close()
        ctx.term()


def zmq_router_server(ctl_address: str, data_address: str) -> None:
    """Round-trip floor: ROUTER at ``data_address``; every request is
    unpacked and answered with the running count, packed."""
    _child_setup()
    ctx = zmq.Context(io_threads=1)
    ctl = ctx.socket(zmq.PUSH)
    router = ctx.socket(zmq.ROUTER)
    try:
        ctl.setsockopt(zmq.LINGER, 1000)
        ctl.connect(ctl_address)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(data_address)
        ctl.send(msgpack.packb(("ready",)))
        recv_multipart = router.recv_multipart
        send_multipart = router.send_multipart
        packb = msgpack.packb
        unpackb = msgpack.unpackb
        count = 0
        while True:
            identity, data = recv_multipart()
            message = unpackb(data)
            if message[0] == "stop":
                break
            count += message[1]
            send_multipart((identity, packb(count)))
    finally:
        router.close(0)
        ctl.close()
        ctx.term()


# -- standard library ---------------------------------------------------------

def mp_queue_server(inbox: Any, outbox: Any) -> None:
    """One-way stdlib floor: ``multiprocessing.Queue`` consumer."""
    _child_setup()
    outbox.put(("ready",))
    get = inbox.get
    count = 0
    while True:
        message = get()
        op = message[0]
        if op == "add":
            count += message[1]
        elif op == "sync":
            outbox.put(("count", count))
        elif op == "stop":
            break
    outbox.close()
    outbox.join_thread()


def mp_pipe_server(conn: Any) -> None:
    """Round-trip stdlib floor: ``multiprocessing.Pipe`` echo of the count."""
    _child_setup()
    conn.send(("ready",))
    recv = conn.recv
    send = conn.send
    count = 0
    try:
        while True:
            message = recv()
            if message[0] == "stop":
                break
            count += message[1]
            send(count)
    except EOFError:
        pass
    finally:
        conn.close()


# -- actors ----------------------------------------------------------------------

class Counter(Actor):
    """Adds ``("add", k)``; every message is answered with the count."""

    def __init__(self) -> None:
        self.count = 0

    def receive(self, message: Any) -> int:
        if message[0] == "add":
            self.count += message[1]
        return self.count


class Sender(Actor):
    """On ``("go", n, target)``: tells ``target`` ``("add", 1)`` n times, then
    asks it for its count. Messages from one sender to one receiver arrive
    in order, so the reply comes once all n tells have been handled."""

    def receive(self, message: Any) -> int:
        op, n, target = message
        if op != "go":
            raise ValueError(f"unknown message {message!r}")
        tell = target.tell
        payload = ("add", 1)
        for _ in range(n):
            tell(payload)
        return target.ask(("count",))


class Relay(Actor):
    """Asks another actor from inside its handler (a blocking wait: the
    relay's mailbox waits with it, so with deadlock detection on every one
    of these asks is recorded as a wait-for edge).

    On ``("go", n)``: asks ``target`` ``("add", 1)`` n times, one after the
    other, and returns each ask's round trip in microseconds, timed here,
    around ``target.ask`` alone. ``target`` must be a :class:`Counter`: its
    replies are checked (the last must be its count before plus n)."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def receive(self, message: Any) -> list[float]:
        op, n = message
        if op != "go":
            raise ValueError(f"unknown message {message!r}")
        ask = self.target.ask
        before = ask(("count",), timeout=120.0)
        payload = ("add", 1)
        perf = time.perf_counter
        latencies = [0.0] * n
        reply = before
        t = perf()
        for i in range(n):
            reply = ask(payload, timeout=120.0)
            now = perf()
            latencies[i] = (now - t) * 1e6
            t = now
        if reply != before + n:
            raise RuntimeError(f"target replied {reply}, expected {before + n}")
        return latencies


class RestartWorker(Actor):
    """Answers ``("pid",)`` with the id of the process it lives in."""

    def receive(self, message: Any) -> int:
        if message != ("pid",):
            raise ValueError(f"unknown message {message!r}")
        return os.getpid()


class RestartSupervisor(Supervisor):
    """Restarts its one :class:`RestartWorker` (child ``"w"``) every time it
    dies, however often: the restart benchmark kills it hundreds of times."""

    strategy = "one_for_one"
    max_restarts = 1_000_000
    max_seconds = 1.0
    children = [ChildSpec("w", RestartWorker)]
