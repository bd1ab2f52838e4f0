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

import actors
import actors.mp as multiprocessing

DEADLINE = 30.0


def routing(q):
    """[routes offered, opened, open now] of q's queue."""
    return q._ask(("routing",))


def until(check, what):
    """Wait for ``check()`` (conftest's wait_for; imported here only, so
    that the children, which import this module, do not load pytest)."""
    from conftest import wait_for

    wait_for(check, DEADLINE, what)


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


def take_until_none(q, out, first=None):
    """Take items until None (setting ``first`` after the first one)."""
    got = []
    while (item := q.get(timeout=DEADLINE)) is not None:
        got.append(item)
        if first is not None and len(got) == 1:
            first.set()
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
    first = multiprocessing.Event()
    c = start(take_until_none, q, theirs, first)
    assert first.wait(DEADLINE)  # (the main program takes nothing meanwhile)
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
    for name, seq in (("mine", mine), ("theirs", other)):
        back = next((k for k in range(1, len(seq)) if seq[k] < seq[k - 1]), None)
        assert back is None, f"{name} out of order: {seq[max(0, back - 3):back + 3]}"
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


BIG = list(range(65300, 65480, 10))  # around the edge of a 64 KiB frame


def put_big(q, refused):
    """Put each BIG size, noting those put refuses (too big to send)."""
    for n in BIG:
        try:
            q.put(b"x" * n)
        except actors.MessageTooLarge:
            refused.put(n)
    q.put("end")


def routed_then_big(q, refused):
    put_while_routing(q, 1_000)
    put_big(q, refused)


def take_big(q, refused, ends):
    """Items until ``ends`` "end"s: (the ints, the sizes of the bytes),
    and the sizes refused."""
    got, sizes = [], []
    while ends:
        item = q.get(timeout=DEADLINE)
        if item == "end":
            ends -= 1
        elif isinstance(item, bytes):
            sizes.append(len(item))
        else:
            got.append(item)
    no = [refused.get(timeout=DEADLINE) for _ in range(refused.qsize())]
    assert sorted(sizes + no) == sorted(BIG * (len(sizes + no) // len(BIG))), (sizes, no)
    return got, sizes, no


def small_frames():
    from actors.mp import context

    context.set_system(actors.ActorSystem(max_frame=1 << 16))
    return multiprocessing.Queue(), multiprocessing.Queue()


def big_direct():
    """Items at the edge of the frame from a routed producer: each one
    arrives, or fails at its put; none is lost on the way."""
    q, refused = small_frames()
    p = start(routed_then_big, q, refused)
    got, sizes, no = take_big(q, refused, 1)
    p.join(DEADLINE)
    assert got == list(range(len(got))) and routing(q)[1] >= 1
    assert len(sizes + no) == len(BIG)
    return f"received={len(sizes)} refused={len(no)} routing={routing(q)}"


def big_pushed():
    """The same from a pool worker while another producer is routed (the
    queue pushes the worker's items to the consumer)."""
    q, refused = small_frames()
    stop, out = multiprocessing.Event(), multiprocessing.Queue()
    p = start(stream, q, stop, out)
    got = consume_while_routed(q, 1_000)
    with multiprocessing.Pool(1) as pool:
        done = pool.apply_async(put_big, (q, refused))
        more, sizes, no = take_big(q, refused, 1)
        done.get(DEADLINE)
    stop.set()
    end_stream(q, got + more, out, p)
    assert len(sizes + no) == len(BIG)
    return f"received={len(sizes)} refused={len(no)} routing={routing(q)}"


def put_then_offer(q, first, more, done):
    """2,000 items (all in the queue), then one more once told (its batch
    gets the route offered), then nothing."""
    for i in range(2_000):
        q.put(i)
    q.join_thread()
    first.set()
    more.wait(DEADLINE)
    q.put(2_000)
    done.wait(DEADLINE)


def offered(close):
    """A route is offered, never taken further; then a size is asked (or
    the consumer closes its handle and another gets): answered at once."""
    q, first, more, done = (multiprocessing.Queue(), multiprocessing.Event(),
                            multiprocessing.Event(), multiprocessing.Event())
    p = start(put_then_offer, q, first, more, done)
    assert first.wait(DEADLINE)
    got = [q.get(timeout=DEADLINE) for _ in range(100)]  # a loan is out here
    more.set()
    until(lambda: routing(q)[0] >= 1, "the offer")
    if close:
        other = pickle.loads(pickle.dumps(q))
        q.close()
        answer = other.get(timeout=10)
        assert answer == 100, answer
    else:
        answer = q.qsize()
        assert answer == 2_001 - len(got), answer
    done.set()
    p.join(DEADLINE)
    return f"answer={answer} routing={routing(q)}"


def size_while_offered():
    return offered(close=False)


def closed_while_offered():
    return offered(close=True)


def host_killed():
    """The primitives' host dies while the main program is routed: its
    get raises PrimitiveLost (it does not wait for ever)."""
    from actors.mp import context

    q = multiprocessing.Queue()
    p = start(stream_forever, q)
    consume_while_routed(q, 1_000)
    assert q._routes, "not routed"
    os.kill(context.anchor().ask(None), signal.SIGKILL)
    p.kill()
    p.join(DEADLINE)
    started = time.monotonic()
    try:
        while True:  # (what had arrived first)
            q.get(timeout=DEADLINE)
    except multiprocessing.PrimitiveLost as e:
        lost = str(e)
    assert "is lost" in lost, lost
    return f"PrimitiveLost after {time.monotonic() - started:.2f}s"


def two_threads():
    """Two threads of the main program get from one routed handle (one of
    them asking ahead while the other waits): no get fails early, every
    item comes once, each thread's in order."""
    import threading

    q, stop, out = multiprocessing.Queue(), multiprocessing.Event(), multiprocessing.Queue()
    p = start(stream, q, stop, out, None, 60_000)
    got = {0: [], 1: []}
    errors = []

    def take(k):
        try:
            while (item := q.get(timeout=DEADLINE)) is not None:
                got[k].append(item)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=take, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    _, total = out.get(timeout=DEADLINE)
    q.put(None)  # (the producer put one: one for each thread)
    for t in threads:
        t.join(DEADLINE)
    p.join(DEADLINE)
    assert not errors, errors
    assert sorted(got[0] + got[1]) == list(range(total))
    assert all(g == sorted(g) for g in got.values()), "a thread's items out of order"
    return f"items={total} threads={len(got[0])},{len(got[1])} routing={routing(q)}"


if __name__ == "__main__":
    name = sys.argv[1]
    started = time.monotonic()
    figures = globals()[name]()
    print(f"OK {name} {figures} in {time.monotonic() - started:.1f}s", flush=True)
