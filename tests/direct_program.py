"""The direct path of a Queue, scenario by scenario (run by
tests/test_mp_direct.py as a program of its own: ``python direct_program.py
SCENARIO``, under ``ACTORS_MP_TRANSPORT``). Each scenario waits until a
route is open before it does what it tests, checks what it got, and prints
``OK <scenario> <figures>``; any failure raises (exit status 1)."""

from __future__ import annotations

import os
import pickle
import queue
import signal
import sys
import time

import actors.mp as multiprocessing

DEADLINE = 30.0


def routing(q):
    """[routes offered, opened, open now] of q's queue."""
    return q._ask(("routing",))


def until(check, what):
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)  # between two looks (bounded by the deadline above)


def stream(q, stop, out, tag=None, most=10**9):
    """Put 0, 1, 2... (or (tag, i)) until stop is set (or ``most`` were
    put); then None, and how many were put to out."""
    i = 0
    while not stop.is_set() and i < most:
        for _ in range(200):
            q.put(i if tag is None else (tag, i))
            i += 1
    q.put(None)
    out.put((tag, i))


def stream_forever(q):
    i = 0
    while True:
        q.put(i)
        i += 1


def take_until_exit(q, out):
    """Take items until "exit", send them to out, and exit (normally)."""
    got = []
    while (item := q.get(timeout=DEADLINE)) != "exit":
        got.append(item)
    out.put(got)


def take_until_none(q, out):
    got = []
    while (item := q.get(timeout=DEADLINE)) is not None:
        got.append(item)
    out.put(got)


def take_forever(q):
    while True:
        q.get()


def consume_while_routed(q, want_after_open):
    """Get items until a route has been open for ``want_after_open`` of them."""
    got = []
    while True:
        got.append(q.get(timeout=DEADLINE))
        if len(got) % 500 == 0 and routing(q)[2]:
            break
    for _ in range(want_after_open):
        got.append(q.get(timeout=DEADLINE))
    return got


def put_while_routing(q, more):
    """Put 0, 1, 2... until a route is open, then ``more``: how many."""
    i = 0
    while not routing(q)[2]:
        for _ in range(500):
            q.put(i)
            i += 1
    for _ in range(more):
        q.put(i)
        i += 1
    return i


def drain(q, got):
    while (item := q.get(timeout=DEADLINE)) is not None:
        got.append(item)
    return got


def end_stream(q, got, out, p):
    """Take the rest of a stream (to its None): every item, in order."""
    drain(q, got)
    _, total = out.get(timeout=DEADLINE)
    p.join(DEADLINE)
    assert got == list(range(total)), "out of order or lost"
    return total


def kill_routed(p, q):
    """SIGKILL p, a process in q's route; wait until the route has ended."""
    os.kill(p.pid, signal.SIGKILL)
    p.join(DEADLINE)
    until(lambda: routing(q)[2] == 0, "the route to end")


def start(target, *args):
    p = multiprocessing.Process(target=target, args=args)
    p.start()
    return p


def up():
    """A child streams, the main program consumes: in order, nothing lost."""
    q, stop, out = multiprocessing.Queue(), multiprocessing.Event(), multiprocessing.Queue()
    p = start(stream, q, stop, out)
    got = consume_while_routed(q, 20_000)
    stop.set()
    total = end_stream(q, got, out, p)
    return f"items={total} routing={routing(q)}"


def down():
    """The main program streams, a child consumes (and exits): the same."""
    q, out = multiprocessing.Queue(), multiprocessing.Queue()
    p = start(take_until_none, q, out)
    i = put_while_routing(q, 20_000)
    q.put(None)
    got = out.get(timeout=DEADLINE)
    p.join(DEADLINE)
    assert p.exitcode == 0
    assert got == list(range(i)), "out of order or lost"
    return f"items={i} routing={routing(q)}"


def second_consumer():
    """A second consumer comes while the first is routed: the route ends,
    both go on to the end; every item once, each consumer's in order."""
    q, stop, out = multiprocessing.Queue(), multiprocessing.Event(), multiprocessing.Queue()
    theirs = multiprocessing.Queue()
    p = start(stream, q, stop, out, None, 100_000)
    mine = consume_while_routed(q, 5_000)
    c = start(take_until_none, q, theirs)
    for _ in range(2_000):
        mine.append(q.get(timeout=DEADLINE))
    stop.set()
    _, total = out.get(timeout=DEADLINE)
    q.put(None)  # one for each consumer (the producer put one)
    drain(q, mine)
    other = theirs.get(timeout=DEADLINE)
    p.join(DEADLINE)
    c.join(DEADLINE)
    assert sorted(mine + other) == list(range(total)), "lost or taken twice"
    assert mine == sorted(mine) and other == sorted(other), "out of order"
    assert other, "the second consumer got nothing"
    return f"items={total} mine={len(mine)} theirs={len(other)} routing={routing(q)}"


def qsize_exact():
    """qsize() while routed counts what is on its way and what the
    consumer holds: exactly what was put and not taken."""
    q, stop, out = multiprocessing.Queue(), multiprocessing.Event(), multiprocessing.Queue()
    p = start(stream, q, stop, out)
    got = consume_while_routed(q, 10_000)
    stop.set()
    _, total = out.get(timeout=DEADLINE)  # all put (and the None)
    while len(got) < total // 2:  # (so that some are held here, some on their way)
        got.append(q.get(timeout=DEADLINE))
    size = q.qsize()
    assert size == total + 1 - len(got), (size, total, len(got))
    drain(q, got)
    p.join(DEADLINE)
    assert got == list(range(total))
    return f"items={total} qsize={size} routing={routing(q)}"


def producer_killed():
    """The routed producer is SIGKILLed: the consumer gets a prefix of its
    items (in order, no gaps) without hanging, and the queue works on."""
    q = multiprocessing.Queue()
    p = start(stream_forever, q)
    got = consume_while_routed(q, 5_000)
    kill_routed(p, q)
    while True:
        try:
            got.append(q.get(timeout=1.0))
        except queue.Empty:
            break
    assert got == list(range(len(got))), "a gap or a repeat"
    q.put("after")
    assert q.get(timeout=DEADLINE) == "after"
    return f"items={len(got)} routing={routing(q)}"


def consumer_killed():
    """The routed consumer is SIGKILLed: the producer goes on through the
    queue; what it put after the kill all arrives, in order (what the dead
    consumer held is lost, and the queue says how many)."""
    q = multiprocessing.Queue()
    c = start(take_forever, q)
    i = put_while_routing(q, 0)
    kill_routed(c, q)
    first = i
    for _ in range(5_000):
        q.put(i)
        i += 1
    q.put(None)
    got = drain(q, [])
    assert got == sorted(got) and len(set(got)) == len(got), "out of order or repeated"
    assert got[-5_000:] == list(range(first, i)), "lost after the kill"
    return f"items={i} after={len(got)} routing={routing(q)}"


def consumer_closes():
    """The routed consumer closes its handle: what it held and what was on
    its way goes back in order, for another handle."""
    q, stop, out = multiprocessing.Queue(), multiprocessing.Event(), multiprocessing.Queue()
    other = pickle.loads(pickle.dumps(q))  # a second handle, in this process
    p = start(stream, q, stop, out)
    got = consume_while_routed(q, 5_000)
    q.close()
    stop.set()
    total = end_stream(other, got, out, p)
    return f"items={total} routing={routing(other)}"


def consumer_exits():
    """A routed child consumer exits (normally) while it holds items and
    more are on their way: they all come back, in order."""
    q, out = multiprocessing.Queue(), multiprocessing.Queue()
    c = start(take_until_exit, q, out)
    i = put_while_routing(q, 5_000)
    q.put("exit")
    mark = i
    for _ in range(20_000):
        q.put(i)
        i += 1
    theirs = out.get(timeout=DEADLINE)
    c.join(DEADLINE)
    assert c.exitcode == 0
    q.put(None)
    mine = drain(q, [])
    assert theirs == list(range(mark)), "the consumer's share out of order or short"
    assert mine == list(range(mark, i)), "what it held did not come back in order"
    return f"items={i} theirs={len(theirs)} routing={routing(q)}"


def two_producers():
    """Two children stream to one consumer: each one's items in order, all."""
    q, stop, out = multiprocessing.Queue(), multiprocessing.Event(), multiprocessing.Queue()
    ps = [start(stream, q, stop, out, tag) for tag in ("a", "b")]
    got = []
    until_both = time.monotonic() + DEADLINE
    while routing(q)[2] < 2 and time.monotonic() < until_both:
        for _ in range(500):
            got.append(q.get(timeout=DEADLINE))
    for _ in range(10_000):
        got.append(q.get(timeout=DEADLINE))
    stop.set()
    nones = 0
    while nones < 2:
        item = q.get(timeout=DEADLINE)
        if item is None:
            nones += 1
        else:
            got.append(item)
    totals = dict(out.get(timeout=DEADLINE) for _ in ps)
    for p in ps:
        p.join(DEADLINE)
    for tag in ("a", "b"):
        assert [i for t, i in got if t == tag] == list(range(totals[tag])), tag
    return f"items={sum(totals.values())} routing={routing(q)}"


if __name__ == "__main__":
    name = sys.argv[1]
    started = time.monotonic()
    figures = globals()[name]()
    print(f"OK {name} {figures} in {time.monotonic() - started:.1f}s", flush=True)
