"""What a loop's poll is made of besides its message sources: a wake pipe
(another thread makes the poll return) and busy polling.

Busy polling: look again, without sleeping, for a short while before a
blocking poll. A thread that sleeps in ``poll`` is woken by the kernel when
its reply lands, and on an idle CPU (above all a virtual one) that wake
costs tens of microseconds, a large share of a round trip between
processes. A thread that keeps polling for a little while sees the reply at
once. This is the trade Erlang's schedulers make by default (``+sbwt``):
CPU time for latency, for a bounded time. Between looks the thread yields
its CPU (``sched_yield``), so that a runnable thread there (the ZeroMQ I/O
thread bringing the reply, the process that answers) goes first.
:class:`BusyWait` makes it adaptive: only while replies come that fast.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["BusyWait", "WakePipe", "busy_poll"]

Poll = Callable[[float | None], list[Any]]


class WakePipe:
    """A non-blocking pipe a poll watches (``fd``) so that another thread
    can make it return (:meth:`wake`); the polling thread :meth:`drain` s it."""

    def __init__(self) -> None:
        self.fd, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.pending = False  # a byte was written and not drained yet
        self.closed = False
        self._lock = threading.Lock()  # no write or read once closed: the numbers may be reused

    def wake(self) -> None:
        if not self.pending:
            with self._lock:
                if self.closed:
                    return
                self.pending = True
                try:
                    os.write(self._write, b"!")
                except OSError:  # full: a wake is pending anyway
                    pass

    def drain(self) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                while os.read(self.fd, 4096):
                    pass
            except OSError:  # (BlockingIOError: drained)
                pass
            # Cleared only after draining: a wake() racing with the drain
            # either wrote a byte the next poll sees, or saw True and relies
            # on what the polling thread does after this poll (a loop
            # flushes its outboxes).
            self.pending = False

    def close(self) -> None:
        with self._lock:
            self.closed = self.pending = True
            for fd in (self.fd, self._write):
                try:
                    os.close(fd)
                except OSError:
                    pass


def busy_poll(poll: Poll, budget: float, timeout: float | None) -> list[Any]:
    """``poll(timeout)``, but polling without a timeout for up to ``budget``
    seconds first (never past ``timeout``: the time spent spinning is taken
    off the sleep that follows)."""
    ready = poll(0)
    if ready or timeout == 0:
        return ready
    clock = time.perf_counter
    start = clock()
    end = start + (budget if timeout is None else min(budget, timeout))
    while clock() < end:
        os.sched_yield()
        ready = poll(0)
        if ready:
            return ready
    return poll(None if timeout is None else max(0.0, timeout - (clock() - start)))


class BusyWait:
    """Adaptive busy polling for a thread that waits for its own reply.

    A wait (:meth:`begin` ... :meth:`end`; they nest) gets one budget of
    spinning in all, across every :meth:`poll` it makes (polls return for
    other messages too), and only if the last eligible wait took no longer
    than ``budget``: waits on slow replies stop spinning after one of them.
    An ineligible wait (``begin(False)``) does not spin, even inside an
    eligible one, and its length is not counted. Outside a wait, plain
    polls (an idle process does not spin)."""

    __slots__ = ("budget", "until", "quick")

    def __init__(self, budget: float = 0.0) -> None:
        self.budget = budget  # seconds; 0: off
        self.until = 0.0      # spin until then (perf_counter), in the wait under way
        self.quick = True     # the last eligible wait took no longer than budget

    def begin(self, eligible: bool = True) -> tuple[float, float | None]:
        """A wait starts (``eligible=False``: one that must not spin, and
        whose length says nothing about how fast replies come)."""
        now = time.perf_counter()
        outer = self.until
        self.until = now + self.budget if eligible and self.quick and self.budget else 0.0
        return outer, now if eligible else None

    def end(self, began: tuple[float, float | None]) -> None:
        self.until, start = began
        if self.budget and start is not None:
            self.quick = time.perf_counter() - start <= self.budget

    def poll(self, poll: Poll, timeout: float | None) -> list[Any]:
        until = self.until
        if until:
            left = until - time.perf_counter()
            if left > 0:
                return busy_poll(poll, left, timeout)
        return poll(timeout)
