"""Code that runs in the child processes of ``benchmarks.mp``.

Defined at module level so that the *spawn* start method (of the standard
library and of ``actors.mp``) can import it by name in a fresh interpreter.
Nothing here imports either implementation: a server gets its queues, pipe
ends and locks as arguments, from whichever module started it, and uses
only their methods, so the same code runs under both.

Conventions shared with ``benchmarks.mp``: the payload is ``("add", 1)``;
a server returns on ``("stop",)``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import wait
from typing import Any

PAYLOAD = ("add", 1)
STOP = ("stop",)


def _child_setup() -> None:
    """Ignore Ctrl-C (stopping children is the parent's job) and exit if
    the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()  # the standard library's view
    if parent is not None and parent.sentinel is not None:
        sentinel = parent.sentinel

        def watch() -> None:
            wait([sentinel])
            os._exit(70)
    else:  # started by something else: watch the parent pid instead
        ppid = os.getppid()

        def watch() -> None:
            while os.getppid() == ppid:
                time.sleep(0.5)
            os._exit(70)

    threading.Thread(target=watch, name="bench-parent-watch", daemon=True).start()


# -- Queue ---------------------------------------------------------------------

def queue_server(down: Any, up: Any) -> None:
    """Waits for a command on ``down``:

    * ``("produce", n)``: puts ``("add", 1)`` n times on ``up``;
    * ``("consume", n)``: gets n items from ``down``, then puts
      ``("count", total)`` on ``up`` (the sum of their second items);
    * ``("stop",)``: returns.
    """
    _child_setup()
    up.put(("ready", os.getpid()))
    get, put = down.get, up.put
    while True:
        command = get()
        op = command[0]
        if op == "produce":
            for _ in range(command[1]):
                put(PAYLOAD)
        elif op == "consume":
            total = 0
            for _ in range(command[1]):
                total += get()[1]
            put(("count", total))
        elif op == "stop":
            break
        else:
            raise ValueError(f"queue_server: unknown command {command!r}")


# -- Pipe ----------------------------------------------------------------------

def pipe_echo(conn: Any) -> None:
    """Sends back every object it receives, until ``("stop",)``."""
    _child_setup()
    conn.send(("ready", os.getpid()))
    recv, send = conn.recv, conn.send
    while True:
        message = recv()
        if message == STOP or message == list(STOP):
            break
        send(message)


# -- Lock ----------------------------------------------------------------------

def lock_contender(lock: Any, conn: Any) -> None:
    """On ``("run", n, start_at)``: waits until ``time.monotonic()`` (a
    system-wide clock on Linux) reaches ``start_at``, so that two contenders
    start together; then acquires and releases ``lock`` n times, noting the
    time right after each acquire, and sends the n stamps back. The parent
    merges two contenders' stamps: how long the n + n acquisitions took and
    how often the lock passed from one process to the other."""
    now = time.monotonic

    def run(n: int, start_at: float) -> list[float]:
        stamps: list[float] = []
        note = stamps.append
        acquire, release = lock.acquire, lock.release
        _until(start_at)
        for _ in range(n):
            acquire()
            note(now())
            release()
        return stamps
    _serve_runs(conn, run)


def value_counter(value: Any, conn: Any) -> None:
    """On ``("run", n, start_at)``: from ``start_at`` on (as
    ``lock_contender``), does ``with value.get_lock(): value.value += 1``
    n times, then sends the time it ended."""
    def run(n: int, start_at: float) -> float:
        _until(start_at)
        lock = value.get_lock()
        for _ in range(n):
            with lock:
                value.value += 1
        return time.monotonic()
    _serve_runs(conn, run)


def _serve_runs(conn: Any, run: Any) -> None:
    """The two-worker benchmarks' loop: says ready, then answers each
    ``("run", n, start_at)`` with ``run(n, start_at)``, until ``("stop",)``."""
    _child_setup()
    conn.send(("ready", os.getpid()))
    while (command := conn.recv())[0] != "stop":
        conn.send(run(command[1], command[2]))


def _until(start_at: float) -> None:
    """Return at ``start_at`` (monotonic), so two processes start together:
    sleep to 2 ms before it, then spin (sleep is too coarse)."""
    now = time.monotonic
    if start_at - now() > 0.002:
        time.sleep(start_at - now() - 0.002)
    while now() < start_at:
        pass


# -- Pool tasks ----------------------------------------------------------------

def add_one(x: int) -> int:
    """The tiny task."""
    return x + 1


def busy_1ms(x: int) -> int:
    """1 ms of CPU: a busy loop until this thread has run for 1 ms
    (time.thread_time), so time the worker spends preempted is not counted
    as work done."""
    clock = time.thread_time
    end = clock() + 0.001
    while clock() < end:
        pass
    return x + 1


def sleep_1ms(x: int) -> int:
    """1 ms of waiting: time.sleep(0.001) (about 1.06 ms on Linux)."""
    time.sleep(0.001)
    return x + 1
