"""Busy polling: look again, without sleeping, for a short while before a
blocking poll.

A thread that sleeps in ``poll`` is woken by the kernel when its reply
lands, and on an idle CPU (above all a virtual one) that wake costs tens
of microseconds, a large share of a round trip between processes. A
thread that keeps polling for a little while sees the reply at once. This
is the trade Erlang's schedulers make by default (``+sbwt``): CPU time
for latency, for a bounded time. Between looks the thread yields its CPU
(``sched_yield``), so a runnable thread there (the ZeroMQ I/O thread
bringing the reply, the process that answers) goes first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

__all__ = ["busy_poll"]


def busy_poll(poll: Callable[[float | None], list[Any]], budget: float,
              timeout: float | None) -> list[Any]:
    """``poll(timeout)``, but polling without a timeout for up to ``budget``
    seconds first (never past ``timeout``)."""
    ready = poll(0)
    if ready or timeout == 0:
        return ready
    clock = time.perf_counter
    spent = budget if timeout is None else min(budget, timeout)
    end = clock() + spent
    while clock() < end:
        os.sched_yield()
        ready = poll(0)
        if ready:
            return ready
    return poll(None if timeout is None else max(0.0, timeout - spent))
