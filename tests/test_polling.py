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
    """Outside a wait: plain polls. In one: busy polls while the last
    eligible wait took no longer than the budget."""
    waker = WakePipe()
    poll = poller(waker)
    spins: list[float] = []

    def counting(timeout):
        spins.append(timeout)
        return poll(timeout)
    busy = BusyWait(0.002)
    try:
        busy.poll(counting, 0.01)
        assert spins == [0.01]  # outside a wait: one plain poll
        began = busy.begin()
        inner = busy.begin()  # waits nest
        busy.end(inner)
        assert busy.spin == 0.002
        spins.clear()
        busy.poll(counting, 0.01)
        assert len(spins) > 2 and spins[0] == 0  # looked without sleeping first
        busy.end(began)  # took longer than the budget: the next wait does not spin
        assert busy.spin == 0.0 and not busy.quick
        began = busy.begin()
        assert busy.spin == 0.0
        spins.clear()
        waker.wake()
        assert busy.poll(counting, 0.01) == [waker.fd]
        assert spins == [0.01]  # a plain poll, which returned at once
        busy.end(began)  # quick: spinning again
        assert busy.quick
        began = busy.begin(False)  # a wait that must not spin (for room in a mailbox)
        assert busy.spin == 0.0
        busy.poll(counting, 0.01)  # (takes 10 ms)
        busy.end(began)  # ... and says nothing of how fast replies come
        assert busy.quick and busy.begin()[0] == 0.0 and busy.spin == 0.002
    finally:
        waker.close()
