"""transport.polling: the wake pipe and (adaptive) busy polling, on a real
pipe and a real poll."""

from __future__ import annotations

import select
import threading
import time

import pytest

from transport.polling import BusyWait, WakePipe, busy_poll

pytestmark = pytest.mark.timeout(30)


def poller(waker: WakePipe):
    p = select.poll()
    p.register(waker.fd, select.POLLIN)

    def poll(timeout):
        return [fd for fd, _ in p.poll(None if timeout is None else timeout * 1000)]
    return poll


def test_wake_pipe_wakes_once_until_drained():
    waker = WakePipe()
    poll = poller(waker)
    try:
        assert poll(0) == []
        waker.wake()
        waker.wake()  # pending: no second byte
        assert waker.pending and poll(0) == [waker.fd]
        waker.drain()
        assert not waker.pending and poll(0) == []
        waker.wake()
        assert poll(0) == [waker.fd]
    finally:
        waker.close()
    waker.wake()  # closed: writes nothing (the fd numbers may be reused)
    waker.drain()
    assert waker.closed and waker.pending


def test_busy_poll_returns_what_is_ready_and_never_before_its_timeout():
    waker = WakePipe()
    poll = poller(waker)
    try:
        assert busy_poll(poll, 0.001, 0) == []
        start = time.monotonic()
        assert busy_poll(poll, 0.005, 0.05) == []  # spins 5 ms, then sleeps the rest
        assert time.monotonic() - start >= 0.045
        start = time.monotonic()
        assert busy_poll(poll, 0.2, 0.03) == []  # the budget never outlasts the timeout
        assert time.monotonic() - start >= 0.025
        woken = threading.Timer(0.02, waker.wake)
        woken.start()
        assert busy_poll(poll, 0.005, None) == [waker.fd]  # seen after the spin, asleep
        woken.join()
        waker.drain()
        woken = threading.Timer(0.002, waker.wake)
        woken.start()
        assert busy_poll(poll, 5.0, None) == [waker.fd]  # seen while spinning
        woken.join()
    finally:
        waker.close()


def test_busy_wait_spins_only_inside_a_wait_and_while_waits_are_quick():
    """Outside a wait: plain polls. In one: busy polls, one budget in all
    across the wait's polls, while the last eligible wait took no longer
    than the budget. An ineligible wait neither spins nor counts."""
    waker = WakePipe()
    poll = poller(waker)
    calls: list[float | None] = []

    def counting(timeout):
        calls.append(timeout)
        return poll(timeout)
    busy = BusyWait(0.05)
    try:
        busy.poll(counting, 0.01)
        assert calls == [0.01]  # outside a wait: one plain poll
        began = busy.begin()
        calls.clear()
        busy.poll(counting, 0.08)  # spins its 50 ms, then sleeps the rest
        assert len(calls) > 2 and calls[0] == 0 and 0 <= calls[-1] <= 0.04
        calls.clear()
        busy.poll(counting, 0.01)  # the wait's budget is spent: a plain poll
        assert calls == [0.01]
        busy.end(began)  # took longer than the budget: the next wait does not spin
        assert not busy.quick
        began = busy.begin()
        calls.clear()
        waker.wake()
        assert busy.poll(counting, 0.01) == [waker.fd]
        assert calls == [0.01]  # a plain poll, which returned at once
        waker.drain()
        busy.end(began)  # quick: the next wait spins again
        assert busy.quick
        began = busy.begin()
        inner = busy.begin(False)  # a wait that must not spin (for room in a mailbox)
        calls.clear()
        waker.wake()
        assert busy.poll(counting, 0.06) == [waker.fd]
        assert calls == [0.06]
        waker.drain()
        busy.end(inner)  # ... and says nothing of how fast replies come
        assert busy.quick
        calls.clear()
        waker.wake()
        assert busy.poll(counting, 0.01) == [waker.fd]  # the outer wait spins again:
        assert calls == [0]  # its first look found the pipe ready
        busy.end(began)
    finally:
        waker.close()
