"""The multiprocessing model, one test body per documented behaviour, run
against the standard library (spawn context) and against ``actors.mp``: any
difference between the two shows as a failure of the ``actors`` param.

Each body uses only the standard library's API, reached through the ``ctx``
fixture (``multiprocessing.get_context("spawn")`` or
``actors.mp.get_context("spawn")``) and the few module-level helpers of the
``mp`` fixture (``connection.wait``, ``managers.BaseManager``, the
concurrent.futures executor). Targets that children run live in mp_targets.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import importlib
import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import mp_targets as t
import pytest
from conftest import joined, start, wait_for, wait_gone

FLAVORS = ["stdlib", "actors"]
JOIN = 15.0  # seconds: the longest a test waits for a child that should end


@dataclass
class Flavor:
    """One implementation of the multiprocessing API."""
    kind: str
    module: Any            # multiprocessing or actors.mp
    ctx: Any               # its spawn context

    @property
    def wait(self):
        """connection.wait"""
        return importlib.import_module(self.module.__name__ + ".connection").wait

    @property
    def process_subclass(self):
        """A subclass of this flavour's Process class that overrides run()."""
        return t.StdWorkerProcess if self.kind == "stdlib" else t.ActorsWorkerProcess

    @property
    def manager_class(self):
        """A BaseManager subclass with mp_targets.Counter registered."""
        importlib.import_module(self.module.__name__ + ".managers")
        return t.StdCounterManager if self.kind == "stdlib" else t.ActorsCounterManager

    def executor(self, max_workers: int) -> concurrent.futures.Executor:
        if self.kind == "stdlib":
            return concurrent.futures.ProcessPoolExecutor(max_workers=max_workers, mp_context=self.ctx)
        return self.module.Executor(max_workers=max_workers)


def load_actors_mp():
    """``actors.mp``, or a skip while it does not exist yet. An import error
    from inside an existing actors.mp is a failure, not a skip."""
    try:
        return importlib.import_module("actors.mp")
    except ModuleNotFoundError as e:
        if e.name == "actors.mp":
            pytest.skip(f"actors.mp is not there yet: {e}")
        raise


@pytest.fixture(scope="module", params=FLAVORS)
def mp(request) -> Flavor:
    if request.param == "stdlib":
        return Flavor("stdlib", multiprocessing, multiprocessing.get_context("spawn"))
    module = load_actors_mp()
    return Flavor("actors", module, module.get_context("spawn"))


@pytest.fixture(scope="module")
def ctx(mp):
    return mp.ctx


@pytest.fixture
def queues():
    """Queues a test creates: closed (and their feeder joined) afterwards."""
    made: list = []
    yield made
    for q in made:
        q.close()
        join_thread = getattr(q, "join_thread", None)
        if join_thread is not None:
            join_thread()


def make_queue(ctx, queues, *args, kind="Queue"):
    q = getattr(ctx, kind)(*args)
    queues.append(q)
    return q


def get_n(q, n, timeout=JOIN):
    return [q.get(timeout=timeout) for _ in range(n)]


# =============================================================================
# Process
# =============================================================================
def test_process_target_args_kwargs(ctx, procs, queues):
    """target(*args, **kwargs) runs in the child."""
    q = make_queue(ctx, queues)
    p = start(procs, ctx, t.send_args, q, 1, "two", (3.0, None), key={"k": [4]})
    assert q.get(timeout=JOIN) == ((1, "two", (3.0, None)), {"key": {"k": [4]}})
    assert joined(p) == 0


def test_process_exitcodes(ctx, procs):
    """exitcode: 0 on return, 1 on an uncaught exception, n for sys.exit(n);
    None before the end."""
    ok = ctx.Process(target=t.noop)
    err = ctx.Process(target=t.raise_error)
    three = ctx.Process(target=t.exit_with, args=(3,))
    for p in (ok, err, three):
        assert p.exitcode is None
        procs.append(p)
        p.start()
    assert [joined(p) for p in (ok, err, three)] == [0, 1, 3]
    assert not ok.is_alive()


def test_process_start_twice_and_join_before_start(ctx, procs):
    """A process starts at most once; join() needs a started process."""
    p = ctx.Process(target=t.noop)
    with pytest.raises(Exception):  # noqa: B017 - the class is not documented
        p.join()
    procs.append(p)
    p.start()
    assert joined(p) == 0
    with pytest.raises(Exception):  # noqa: B017 - the class is not documented
        p.start()


def test_process_join_timeout_then_terminate(ctx, procs):
    """join(timeout) returns with the child still alive; terminate() ends it
    with exitcode -SIGTERM."""
    started = ctx.Event()
    p = start(procs, ctx, t.set_then_sleep, started, 60)
    assert started.wait(JOIN)
    t0 = time.monotonic()
    assert p.join(0.2) is None
    assert time.monotonic() - t0 < 5
    assert p.is_alive()
    assert p.exitcode is None
    p.terminate()
    assert joined(p) == -signal.SIGTERM
    assert not p.is_alive()


def test_process_kill_and_active_children(ctx, procs):
    """kill() ends the child with -SIGKILL; active_children() lists a running
    child and not a joined one."""
    started = ctx.Event()
    p = start(procs, ctx, t.set_then_sleep, started, 60)
    assert started.wait(JOIN)
    assert p in ctx.active_children()
    p.kill()
    assert joined(p) == -signal.SIGKILL
    assert p not in ctx.active_children()


def test_process_pid_is_the_real_process(ctx, procs):
    """A signal sent to p.pid from outside ends that very child."""
    started = ctx.Event()
    p = start(procs, ctx, t.set_then_sleep, started, 60)
    assert started.wait(JOIN)
    os.kill(p.pid, signal.SIGTERM)
    assert joined(p) == -signal.SIGTERM


def test_process_sentinel_and_close(mp, ctx, procs):
    """sentinel is ready for connection.wait once the process ended;
    close() frees a finished Process, after which using it raises ValueError."""
    started = ctx.Event()
    p = start(procs, ctx, t.set_then_sleep, started, 0.3)
    assert started.wait(JOIN)
    assert mp.wait([p.sentinel], timeout=JOIN) == [p.sentinel]
    assert joined(p) == 0
    procs.remove(p)
    p.close()
    with pytest.raises(ValueError):
        p.is_alive()
    with pytest.raises(ValueError):
        p.start()


def test_process_close_while_running_raises(ctx, procs):
    started = ctx.Event()
    p = start(procs, ctx, t.set_then_sleep, started, 60)
    assert started.wait(JOIN)
    with pytest.raises(ValueError):
        p.close()
    p.kill()
    assert joined(p) == -signal.SIGKILL


def test_process_daemon_flag(ctx, procs):
    """daemon is False by default (the main process is not a daemon), can be
    set by the constructor or attribute before start."""
    assert ctx.Process(target=t.noop).daemon is False
    p = ctx.Process(target=t.noop, daemon=True)
    assert p.daemon is True
    q = ctx.Process(target=t.noop)
    q.daemon = True
    assert q.daemon is True
    procs.append(p)
    p.start()
    assert joined(p) == 0


def test_process_identity(mp, ctx, procs, queues):
    """pid is an int other than ours; the child sees its own name and pid and
    our pid as its parent's."""
    q = make_queue(ctx, queues)
    p = ctx.Process(target=t.report_identity, args=(q, mp.module.__name__), name="worker-x")
    assert p.name == "worker-x"
    procs.append(p)
    p.start()
    assert isinstance(p.pid, int) and p.pid != os.getpid()
    info = q.get(timeout=JOIN)
    assert joined(p) == 0
    assert info == {"name": "worker-x", "pid": p.pid, "current_pid": p.pid, "parent_pid": os.getpid()}


def test_process_default_name(mp, ctx, procs, queues):
    """Without a name, the child's current_process().name is the Process's name."""
    q = make_queue(ctx, queues)
    p = start(procs, ctx, t.report_identity, q, mp.module.__name__)
    info = q.get(timeout=JOIN)
    assert joined(p) == 0
    assert isinstance(p.name, str) and p.name
    assert info["name"] == p.name


def test_process_subclass_overriding_run(mp, ctx, procs, queues):
    q = make_queue(ctx, queues)
    p = mp.process_subclass(q, 21)
    procs.append(p)
    p.start()
    assert q.get(timeout=JOIN) == ("subclassed", 42)
    assert joined(p) == 0


def test_main_process_identity(ctx):
    """In the main program: current_process() is MainProcess, with our pid;
    no parent process; cpu_count() >= 1; the context is spawn's."""
    me = ctx.current_process()
    assert me.name == "MainProcess"
    assert me.pid == os.getpid()
    assert ctx.parent_process() is None
    assert ctx.cpu_count() >= 1
    assert ctx.get_start_method() == "spawn"
    ctx.freeze_support()  # a no-op outside a frozen Windows executable


def test_process_repr_in_the_child(mp, ctx, procs, queues):
    """A Process subclass is named ClassName-N; in the child,
    repr(current_process()) shows its name, its parent and 'started'."""
    q = make_queue(ctx, queues)
    p = (t.StdReprProcess if mp.kind == "stdlib" else t.ActorsReprProcess)(q, mp.module.__name__)
    procs.append(p)
    assert p.name.startswith("ReprProcess-")
    p.start()
    assert q.get(timeout=JOIN) == f"<ReprProcess name={p.name!r} parent={os.getpid()} started>"
    assert joined(p) == 0
    assert repr(p) == f"<ReprProcess name={p.name!r} pid={p.pid} parent={os.getpid()} stopped exitcode=0>"


def test_synchronize_reprs(ctx):
    """Locks, semaphores, Condition, Event and Value print as the standard
    library's."""
    lock, rlock = ctx.Lock(), ctx.RLock()
    assert (repr(lock), repr(rlock)) == ("<Lock(owner=None)>", "<RLock(None, 0)>")
    with lock, rlock, rlock:
        assert (repr(lock), repr(rlock)) == ("<Lock(owner=MainProcess)>", "<RLock(MainProcess, 2)>")
        seen = []
        thread = threading.Thread(target=lambda: seen.append((repr(lock), repr(rlock))))
        thread.start()
        thread.join()
        assert seen == [("<Lock(owner=SomeOtherThread)>", "<RLock(SomeOtherThread, nonzero)>")]
    assert repr(ctx.Semaphore(2)) == "<Semaphore(value=2)>"
    assert repr(ctx.BoundedSemaphore(3)) == "<BoundedSemaphore(value=3, maxvalue=3)>"
    assert repr(ctx.Condition()) == "<Condition(<RLock(None, 0)>, 0)>"
    assert repr(ctx.Condition(ctx.Lock())) == "<Condition(<Lock(owner=None)>, 0)>"
    event = ctx.Event()
    assert repr(event) == f"<Event at {id(event):#x} unset>"
    event.set()
    assert repr(event) == f"<Event at {id(event):#x} set>"
    assert repr(ctx.Value("i", 3)) == "<Synchronized wrapper for c_int(3)>"
    assert repr(ctx.Value("d", 1.5, lock=False)) == "c_double(1.5)"
    assert repr(ctx.Array("i", 3)).startswith("<SynchronizedArray wrapper for <")


# =============================================================================
# Queue
# =============================================================================
def test_queue_fifo_one_producer(ctx, queues):
    q = make_queue(ctx, queues)
    for i in range(200):
        q.put(i)
    assert get_n(q, 200) == list(range(200))


def test_queue_get_timeout_and_nowait_raise_empty(ctx, queues):
    q = make_queue(ctx, queues)
    t0 = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)
    assert time.monotonic() - t0 >= 0.15
    with pytest.raises(queue.Empty):
        q.get(block=False)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    q.put_nowait("x")
    assert q.get(timeout=JOIN) == "x"


def test_queue_maxsize_full(ctx, queues):
    q = make_queue(ctx, queues, 2)
    assert q.empty()
    q.put(1)
    q.put(2)
    assert q.full()
    with pytest.raises(queue.Full):
        q.put(3, block=False)
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    t0 = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.2)
    assert time.monotonic() - t0 >= 0.15
    assert q.get(timeout=JOIN) == 1
    q.put(3, timeout=JOIN)
    assert get_n(q, 2) == [2, 3]


def test_queue_put_blocks_until_a_get(ctx, queues):
    """A blocking put on a full queue returns once another thread gets."""
    q = make_queue(ctx, queues, 1)
    q.put("a")
    done = threading.Event()

    def putter():
        q.put("b")
        done.set()

    th = threading.Thread(target=putter)
    th.start()
    try:
        assert not done.wait(0.2)  # still blocked: the queue is full
        assert q.get(timeout=JOIN) == "a"
        assert done.wait(JOIN)
        assert q.get(timeout=JOIN) == "b"
    finally:
        th.join(JOIN)


def test_queue_empty_and_qsize(ctx, queues):
    q = make_queue(ctx, queues)
    assert q.empty()
    for i in range(3):
        q.put(i)
    wait_for(lambda: q.qsize() == 3, JOIN, "qsize() == 3")
    wait_for(lambda: not q.empty(), JOIN, "a non-empty queue")  # may lag the put
    assert q.get(timeout=JOIN) == 0
    wait_for(lambda: q.qsize() == 2, JOIN, "qsize() == 2")
    get_n(q, 2)
    wait_for(q.empty, JOIN, "an empty queue")
    assert q.qsize() == 0


def test_queue_close_then_put_raises(ctx):
    q = ctx.Queue()
    q.put(1)
    assert q.get(timeout=JOIN) == 1
    q.close()
    with pytest.raises(ValueError):
        q.put(2)
    with pytest.raises(ValueError):
        q.get(timeout=0.1)
    q.join_thread()
    q2 = ctx.Queue()
    q2.put("left behind")
    q2.cancel_join_thread()  # exiting will not wait for it to be flushed
    q2.close()


def test_queue_objects(ctx, queues):
    """None and arbitrary picklable objects come back equal."""
    objects = [None, t.Point(1, 2, ["a"]), {"k": (1, [2, {"x": None}]), 3: b"b"},
               (1, (2, (3,))), b"\x00" * (1024 * 1024), t.Opaque({1, 2}), 1.5, "ünïcode"]
    q = make_queue(ctx, queues)
    for obj in objects:
        q.put(obj)
    got = get_n(q, len(objects))
    assert got == objects
    assert isinstance(got[1], t.Point) and isinstance(got[5], t.Opaque)


def test_queue_objects_through_a_child(ctx, procs, queues):
    """The same objects survive a round trip through another process."""
    objects = [None, t.Point(3, 4), {"nested": ({"a": 1}, [2.5])}, b"x" * (1024 * 1024),
               t.Opaque("p")]
    inq, outq = make_queue(ctx, queues), make_queue(ctx, queues)
    p = start(procs, ctx, t.echo_queue, inq, outq)
    for obj in objects[1:]:
        inq.put(obj)
    got = get_n(outq, len(objects) - 1)
    inq.put(None)
    assert joined(p) == 0
    assert got == objects[1:]


def test_queue_items_from_a_child(ctx, procs, queues):
    q = make_queue(ctx, queues)
    p = start(procs, ctx, t.put_items, q, 0, 50)
    assert get_n(q, 50) == list(range(50))
    assert joined(p) == 0


def test_queue_many_producers_one_consumer(ctx, procs, queues):
    """Three producers, one consumer: every item once, each producer's in order."""
    q = make_queue(ctx, queues)
    for k in range(3):
        start(procs, ctx, t.put_items, q, k * 1000, 40)
    got = get_n(q, 120)
    for p in procs:
        assert joined(p) == 0
    assert sorted(got) == sorted(k * 1000 + i for k in range(3) for i in range(40))
    for k in range(3):
        mine = [x for x in got if k * 1000 <= x < k * 1000 + 1000]
        assert mine == sorted(mine)
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)


def test_joinable_queue_task_done_and_join(ctx, queues):
    """join() blocks until every item got is marked done; one task_done too
    many raises ValueError."""
    q = make_queue(ctx, queues, kind="JoinableQueue")
    q.put("a")
    q.put("b")
    assert get_n(q, 2) == ["a", "b"]
    q.task_done()
    joiner = threading.Thread(target=q.join)
    joiner.start()
    try:
        joiner.join(0.2)
        assert joiner.is_alive()  # one task not done yet
        q.task_done()
        joiner.join(JOIN)
        assert not joiner.is_alive()
    finally:
        q.task_done() if joiner.is_alive() else None
        joiner.join(JOIN)
    with pytest.raises(ValueError):
        q.task_done()


def test_joinable_queue_with_a_worker(ctx, procs, queues):
    q = make_queue(ctx, queues, kind="JoinableQueue")
    results = make_queue(ctx, queues)
    p = start(procs, ctx, t.joinable_worker, q, results)
    for i in range(10):
        q.put(i)
    q.put(None)
    joiner = threading.Thread(target=q.join)
    joiner.start()
    joiner.join(JOIN)
    assert not joiner.is_alive()
    assert sorted(get_n(results, 10)) == [i * 2 for i in range(10)]
    assert joined(p) == 0


def test_simple_queue(ctx, procs):
    q = ctx.SimpleQueue()
    try:
        assert q.empty()
        q.put(t.Point(1, 1))
        q.put(None)
        assert q.get() == t.Point(1, 1)
        assert q.get() is None
        assert q.empty()
        p = start(procs, ctx, t.put_items, q, 0, 5)
        assert [q.get() for _ in range(5)] == list(range(5))
        assert joined(p) == 0
    finally:
        q.close()


# =============================================================================
# Pipe and connection.wait
# =============================================================================
def test_pipe_duplex(ctx):
    a, b = ctx.Pipe()
    with a, b:
        a.send(t.Point(1, 2))
        assert b.recv() == t.Point(1, 2)
        b.send({"back": (None, b"x")})
        assert a.recv() == {"back": (None, b"x")}
        for i in range(100):
            a.send(i)
        assert [b.recv() for _ in range(100)] == list(range(100))


def test_pipe_one_way(ctx):
    """Pipe(duplex=False) returns (reader, writer); the wrong direction raises OSError."""
    r, w = ctx.Pipe(duplex=False)
    with r, w:
        w.send("hi")
        assert r.recv() == "hi"
        with pytest.raises(OSError):
            r.send("no")
        with pytest.raises(OSError):
            w.recv()


def test_pipe_bytes(ctx):
    a, b = ctx.Pipe()
    with a, b:
        a.send_bytes(b"hello world")
        assert b.recv_bytes() == b"hello world"
        a.send_bytes(b"hello world", 6)
        assert b.recv_bytes() == b"world"
        a.send_bytes(b"hello world", 0, 5)
        assert b.recv_bytes() == b"hello"
        a.send_bytes(bytearray(b"abc"))
        buf = bytearray(10)
        assert b.recv_bytes_into(buf, 2) == 3
        assert bytes(buf) == b"\x00\x00abc" + b"\x00" * 5
        big = os.urandom(1024 * 1024)
        th = threading.Thread(target=a.send_bytes, args=(big,))
        th.start()
        assert b.recv_bytes() == big
        th.join(JOIN)


def test_pipe_recv_bytes_limits(ctx):
    """recv_bytes(maxlength) raises OSError for a longer message;
    recv_bytes_into a too small buffer raises BufferTooShort carrying it."""
    a, b = ctx.Pipe()
    with a, b:
        a.send_bytes(b"hello")
        buf = bytearray(3)
        with pytest.raises(ctx.BufferTooShort) as info:
            b.recv_bytes_into(buf)
        assert info.value.args[0] == b"hello"
        a.send_bytes(b"x" * 100)
        with pytest.raises(OSError):
            b.recv_bytes(10)


def test_pipe_send_unpicklable_raises_and_pipe_goes_on(ctx):
    a, b = ctx.Pipe()
    with a, b:
        with pytest.raises(Exception):  # noqa: B017 - pickling errors vary
            a.send(lambda: "a lambda cannot be pickled")
        with pytest.raises(Exception):  # noqa: B017 - pickling errors vary
            a.send(threading.Lock())
        a.send("still fine")
        assert b.recv() == "still fine"
        assert not b.poll(0.05)  # nothing half-sent is left behind


def test_pipe_poll(ctx):
    a, b = ctx.Pipe()
    with a, b:
        assert not b.poll()
        t0 = time.monotonic()
        assert b.poll(0.2) is False
        assert time.monotonic() - t0 >= 0.15
        a.send(1)
        assert b.poll(JOIN) is True
        assert b.poll() is True  # poll does not consume
        assert b.recv() == 1
        assert not b.poll(0)


def test_pipe_close_gives_eof_after_pending(ctx):
    """What was sent before close is still received; then EOFError. A closed
    end is .closed and cannot be used."""
    a, b = ctx.Pipe()
    a.send("last")
    a.close()
    assert a.closed
    with pytest.raises(OSError):
        a.send("more")
    assert b.recv() == "last"
    with pytest.raises(EOFError):
        b.recv()
    b.close()


def test_connection_wait(mp, ctx):
    r1, w1 = ctx.Pipe(duplex=False)
    r2, w2 = ctx.Pipe(duplex=False)
    with r1, w1, r2, w2:
        t0 = time.monotonic()
        assert mp.wait([r1, r2], timeout=0.2) == []
        assert time.monotonic() - t0 >= 0.15
        w2.send("two")
        assert mp.wait([r1, r2], timeout=JOIN) == [r2]
        w1.send("one")
        wait_for(lambda: len(mp.wait([r1, r2], timeout=0.5)) == 2, JOIN, "both ready")
        assert set(mp.wait([r2, r1], timeout=0)) == {r1, r2}
        assert r1.recv() == "one" and r2.recv() == "two"
        assert mp.wait([r1, r2], timeout=0) == []


def test_connection_wait_sees_eof(mp, ctx):
    """A connection whose other end closed is ready (its recv raises EOFError)."""
    r, w = ctx.Pipe(duplex=False)
    w.close()
    assert mp.wait([r], timeout=JOIN) == [r]
    with pytest.raises(EOFError):
        r.recv()
    r.close()


@pytest.mark.parametrize("family", ["AF_UNIX", "AF_INET"])
def test_listener_and_client_between_processes(mp, ctx, procs, family):
    """connection.Listener in this process, connection.Client in a child,
    both with the same authkey (the HMAC challenge both ways): objects go
    back and forth; the child exits 0."""
    connection = importlib.import_module(mp.module.__name__ + ".connection")
    address = ("127.0.0.1", 0) if family == "AF_INET" else None
    objs = [1, "two", t.Point(3, 4), {"five": [6]}, b"\x07" * 100_000]
    with connection.Listener(address, family=family, authkey=b"secret") as listener:
        assert connection.address_type(listener.address) == family
        p = start(procs, ctx, t.client_echo, mp.module.__name__, listener.address, family,
                  b"secret", objs)
        with listener.accept() as conn:
            for obj in iter(conn.recv, None):
                conn.send(obj)
            assert listener.last_accepted is not None or family == "AF_UNIX"
        assert joined(p) == 0


def test_listener_refuses_a_client_with_another_authkey(mp, ctx, procs):
    """A client with the wrong authkey: accept() raises AuthenticationError
    here, and the child's Client raises it there (exit code 1)."""
    connection = importlib.import_module(mp.module.__name__ + ".connection")
    with connection.Listener(family="AF_UNIX", authkey=b"right") as listener:
        p = start(procs, ctx, t.client_echo, mp.module.__name__, listener.address, "AF_UNIX",
                  b"wrong", [1])
        with pytest.raises(mp.module.AuthenticationError):
            listener.accept()
        assert joined(p) == 1


def test_pipe_with_a_child(ctx, procs):
    """A Connection passed to a child; closing our copy of its end makes the
    child's close reach us as EOFError."""
    here, there = ctx.Pipe()
    p = start(procs, ctx, t.pipe_echo, there)
    there.close()
    objs = [1, "two", t.Point(3, 4), {"five": [6]}, b"\x07" * 100_000]
    for obj in objs:
        here.send(obj)
        assert here.recv() == obj
    here.send(None)
    with pytest.raises(EOFError):
        here.recv()
    here.close()
    assert joined(p) == 0


def test_pipe_child_sends_then_closes(ctx, procs):
    r, w = ctx.Pipe(duplex=False)
    p = start(procs, ctx, t.pipe_send_and_close, w, [1, 2, 3])
    w.close()
    got = []
    with pytest.raises(EOFError):
        while True:
            assert r.poll(JOIN)
            got.append(r.recv())
    r.close()
    assert got == [1, 2, 3]
    assert joined(p) == 0


def test_pipe_bytes_with_a_child(ctx, procs):
    here, there = ctx.Pipe()
    p = start(procs, ctx, t.pipe_bytes_echo, there)
    there.close()
    here.send_bytes(b"abcdef")
    assert here.recv_bytes() == b"fedcba"
    here.close()
    assert joined(p) == 0


# =============================================================================
# Lock, RLock, Semaphore, BoundedSemaphore
# =============================================================================
def test_lock_basics(ctx):
    lock = ctx.Lock()
    assert lock.acquire() is True
    assert lock.acquire(block=False) is False  # not reentrant
    assert lock.acquire(False) is False
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.2) is False
    assert time.monotonic() - t0 >= 0.15
    lock.release()
    with pytest.raises(ValueError):
        lock.release()  # released when unlocked
    with lock:
        assert lock.acquire(block=False) is False
    assert lock.acquire(block=False) is True
    lock.release()


def test_lock_released_by_another_thread(ctx):
    """A Lock (unlike an RLock) may be released by a thread that does not own it."""
    lock = ctx.Lock()
    lock.acquire()
    th = threading.Thread(target=lock.release)
    th.start()
    th.join(JOIN)
    assert lock.acquire(timeout=JOIN) is True
    lock.release()


def test_lock_across_processes(ctx, procs):
    """A lock held by a child blocks us until the child releases it."""
    lock, acquired, release = ctx.Lock(), ctx.Event(), ctx.Event()
    p = start(procs, ctx, t.hold_lock, lock, acquired, release)
    assert acquired.wait(JOIN)
    assert lock.acquire(block=False) is False
    assert lock.acquire(timeout=0.2) is False
    release.set()
    assert lock.acquire(timeout=JOIN) is True
    lock.release()
    assert joined(p) == 0


def test_lock_mutual_exclusion_counter(ctx, procs):
    """Classic: four processes increment a shared Value under one Lock."""
    counter = ctx.Value("i", 0, lock=False)
    lock = ctx.Lock()
    for _ in range(4):
        start(procs, ctx, t.increment_under_lock, counter, lock, 100)
    for p in procs:
        assert joined(p, 45) == 0
    assert counter.value == 400


def test_lock_released_by_another_process(ctx, procs, queues):
    """A Lock held by one process may be released by another (then it is
    free); releasing it again there raises ValueError."""
    lock = ctx.Lock()
    q = make_queue(ctx, queues)
    assert lock.acquire(timeout=JOIN)
    p = start(procs, ctx, t.release_lock, lock, q)
    assert q.get(timeout=JOIN) == "released"
    assert joined(p) == 0
    p = start(procs, ctx, t.release_lock, lock, q)
    assert q.get(timeout=JOIN) == "ValueError"
    assert joined(p) == 0
    assert lock.acquire(timeout=JOIN) is True
    lock.release()


def test_lock_taken_in_turns_by_two_processes_both_progress(ctx, procs):
    """Two processes taking one lock in a tight loop both make progress
    (neither waits for ever)."""
    lock, stop = ctx.Lock(), ctx.Event()
    progress = ctx.Array("i", 2, lock=False)
    for i in range(2):
        start(procs, ctx, t.take_in_turns, lock, progress, i, stop)
    try:
        wait_for(lambda: min(progress[:]) >= 500, JOIN, "both processes to take the lock 500 times")
        first = progress[:]
        wait_for(lambda: all(now > before for now, before in zip(progress[:], first)), JOIN,
                 "both counts to grow again")
    finally:
        stop.set()
    for p in procs:
        assert joined(p) == 0


def counted_by_two(ctx, procs, n: int) -> Any:
    """A Value('i') two child processes each incremented ``n`` times
    under get_lock(), once both exited with 0."""
    counter = ctx.Value("i", 0)
    for _ in range(2):
        start(procs, ctx, t.increment_with_get_lock, counter, n)
    for p in procs:
        assert joined(p, 45) == 0
    return counter


def test_value_counter_of_two_processes_is_exact(ctx, procs):
    """2 x N increments under get_lock() end at exactly 2N."""
    counter = counted_by_two(ctx, procs, 2000)
    assert counter.value == 4000
    with counter.get_lock():
        counter.value += 1
    assert counter.value == 4001


def test_value_read_while_another_process_holds_its_lock(ctx, procs):
    """Reading and writing a Value does not wait for its lock's holder."""
    value, acquired, release = ctx.Value("i", 0), ctx.Event(), ctx.Event()
    p = start(procs, ctx, t.hold_value, value, acquired, release)
    assert acquired.wait(JOIN)
    assert value.value == 5
    value.value = 6
    release.set()
    assert joined(p) == 0
    assert value.value == 6


def test_condition_over_a_lock_two_processes_take(ctx, procs):
    """A Condition over a Lock this process took before (and another process
    takes to notify) wakes its waiter."""
    lock = ctx.Lock()
    for _ in range(3):
        with lock:
            pass
    cond, flag = ctx.Condition(lock), ctx.Value("i", 0)
    with cond:
        p = start(procs, ctx, t.notify_under, cond, flag)
        assert cond.wait_for(lambda: flag.value == 1, timeout=JOIN)
    assert joined(p) == 0


def test_rlock(ctx):
    rlock = ctx.RLock()
    assert rlock.acquire() is True
    assert rlock.acquire(block=False) is True  # reentrant
    with rlock:
        pass
    other: list = []

    def from_another_thread():
        other.append(rlock.acquire(timeout=0.1))
        try:
            rlock.release()
        except Exception as e:  # noqa: BLE001 - the class is what is checked
            other.append(type(e).__name__)

    th = threading.Thread(target=from_another_thread)
    th.start()
    th.join(JOIN)
    assert other == [False, "AssertionError"]  # documented: AssertionError from a non-owner
    rlock.release()
    rlock.release()
    with pytest.raises(AssertionError):
        rlock.release()  # unlocked now

    def acquire_release():
        other.append(rlock.acquire(timeout=JOIN))
        rlock.release()

    th = threading.Thread(target=acquire_release)
    th.start()
    th.join(JOIN)
    assert other[-1] is True  # free now: another thread takes it


def test_rlock_across_processes(ctx, procs, queues):
    rlock = ctx.RLock()
    q = make_queue(ctx, queues)
    with rlock, rlock:
        p = start(procs, ctx, t.try_lock, rlock, q)
        assert q.get(timeout=JOIN) is False
        assert joined(p) == 0


def test_semaphore(ctx):
    sem = ctx.Semaphore(2)
    assert sem.acquire(block=False) is True
    assert sem.acquire(timeout=JOIN) is True
    assert sem.acquire(block=False) is False
    t0 = time.monotonic()
    assert sem.acquire(timeout=0.2) is False
    assert time.monotonic() - t0 >= 0.15
    sem.release()
    with sem:
        assert sem.acquire(False) is False
    assert sem.acquire(False) is True
    sem.release()
    sem.release()
    sem.release()  # an unbounded semaphore may go above its initial value
    assert [sem.acquire(False) for _ in range(4)] == [True, True, True, False]


def test_semaphore_default_and_zero(ctx):
    one = ctx.Semaphore()
    assert one.acquire(False) is True
    assert one.acquire(False) is False
    zero = ctx.Semaphore(0)
    assert zero.acquire(False) is False
    zero.release()
    assert zero.acquire(False) is True


def test_semaphore_across_processes(ctx, procs, queues):
    sem = ctx.Semaphore(1)
    q = make_queue(ctx, queues)
    sem.acquire()
    p = start(procs, ctx, t.try_lock, sem, q)
    assert q.get(timeout=JOIN) is False
    assert joined(p) == 0
    sem.release()
    p2 = start(procs, ctx, t.try_lock, sem, q)
    assert q.get(timeout=JOIN) is True  # the child took it and ended holding it
    assert joined(p2) == 0


def test_bounded_semaphore(ctx):
    sem = ctx.BoundedSemaphore(2)
    with pytest.raises(ValueError):
        sem.release()
    assert sem.acquire(False) and sem.acquire(False)
    assert sem.acquire(False) is False
    sem.release()
    sem.release()
    with pytest.raises(ValueError):
        sem.release()
    with sem:
        pass


# =============================================================================
# Event
# =============================================================================
def test_event(ctx):
    ev = ctx.Event()
    assert ev.is_set() is False
    t0 = time.monotonic()
    assert ev.wait(0.2) is False
    assert time.monotonic() - t0 >= 0.15
    ev.set()
    assert ev.is_set() is True
    assert ev.wait(0) is True
    assert ev.wait() is True
    ev.clear()
    assert ev.is_set() is False
    assert ev.wait(0.01) is False


def test_event_wakes_a_waiting_thread(ctx):
    ev = ctx.Event()
    got: list = []
    th = threading.Thread(target=lambda: got.append(ev.wait(JOIN)))
    th.start()
    ev.set()
    th.join(JOIN)
    assert got == [True]


def test_event_across_processes(ctx, procs, queues):
    ev, ev2 = ctx.Event(), ctx.Event()
    q = make_queue(ctx, queues)
    p = start(procs, ctx, t.wait_event, ev, q, 30)
    ev.set()
    assert q.get(timeout=JOIN) is True
    assert joined(p) == 0
    p2 = start(procs, ctx, t.set_event, ev2)
    assert ev2.wait(JOIN) is True
    assert joined(p2) == 0


# =============================================================================
# Condition
# =============================================================================
def test_condition_wait_timeout_and_wait_for(ctx):
    cond = ctx.Condition()
    with cond:
        t0 = time.monotonic()
        assert cond.wait(0.2) is False
        assert time.monotonic() - t0 >= 0.15
        assert cond.wait_for(lambda: 42) == 42  # true at once: no wait
        assert cond.wait_for(lambda: 0, timeout=0.1) == 0
    with cond:
        cond.notify()  # nobody waits: a no-op
        cond.notify_all()


def test_condition_with_a_given_lock(ctx):
    lock = ctx.RLock()
    cond = ctx.Condition(lock)
    with cond:
        assert lock.acquire(False) is True  # the same (reentrant) lock
        lock.release()
    assert cond.acquire(False) is True
    cond.release()


def test_condition_notify_a_thread(ctx):
    cond = ctx.Condition()
    state = {"ready": False, "go": False}
    got: list = []

    def waiter():
        with cond:
            state["ready"] = True
            cond.notify_all()
            got.append(cond.wait_for(lambda: state["go"], timeout=JOIN))

    th = threading.Thread(target=waiter)
    th.start()
    with cond:
        assert cond.wait_for(lambda: state["ready"], timeout=JOIN)
        state["go"] = True
        cond.notify()
    th.join(JOIN)
    assert got == [True]


def test_condition_with_a_child(ctx, procs, queues):
    cond = ctx.Condition()
    ready, flag = ctx.Value("i", 0), ctx.Value("i", 0)
    q = make_queue(ctx, queues)
    p = start(procs, ctx, t.condition_waiter, cond, ready, flag, q)
    with cond:
        assert cond.wait_for(lambda: ready.value == 1, timeout=JOIN)
        flag.value = 1
        cond.notify()
    assert q.get(timeout=JOIN) is True
    assert joined(p) == 0


def test_condition_notify_one_then_all(ctx, procs, queues):
    """notify() wakes one waiter; notify_all() the rest."""
    cond = ctx.Condition()
    ready = ctx.Value("i", 0)
    q = make_queue(ctx, queues)
    for _ in range(3):
        start(procs, ctx, t.condition_plain_waiter, cond, ready, q)
    wait_for(lambda: ready.value == 3, JOIN, "three waiters")
    with cond:  # each child counted itself holding cond: all are in wait() now
        cond.notify()
    assert q.get(timeout=JOIN) is True
    with pytest.raises(queue.Empty):
        q.get(timeout=0.3)  # only one was woken
    with cond:
        cond.notify_all()
    assert get_n(q, 2) == [True, True]
    for p in procs:
        assert joined(p) == 0


# =============================================================================
# Barrier
# =============================================================================
def run_threads(n, fn):
    results: list = [None] * n
    errors: list = []

    def body(i):
        try:
            results[i] = fn(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(JOIN)
    assert not any(th.is_alive() for th in threads)
    return results, errors


_action_runs: list = []


def _barrier_action():
    _action_runs.append(threading.current_thread().name)


def test_barrier_indices_and_action(ctx):
    _action_runs.clear()
    barrier = ctx.Barrier(3, action=_barrier_action)
    assert barrier.parties == 3
    assert barrier.n_waiting == 0
    assert barrier.broken is False
    results, errors = run_threads(3, lambda i: barrier.wait(JOIN))
    assert not errors
    assert sorted(results) == [0, 1, 2]
    assert len(_action_runs) == 1
    results, errors = run_threads(3, lambda i: barrier.wait(JOIN))  # reusable
    assert sorted(results) == [0, 1, 2] and not errors
    assert len(_action_runs) == 2


def test_barrier_timeout_breaks_it(ctx):
    barrier = ctx.Barrier(2, timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()
    assert time.monotonic() - t0 >= 0.15
    assert barrier.broken is True
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()
    barrier.reset()
    assert barrier.broken is False
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(0.05)  # a per-call timeout


def test_barrier_abort_and_reset(ctx):
    barrier = ctx.Barrier(2)
    got: list = []

    def waiter():
        try:
            got.append(barrier.wait(JOIN))
        except threading.BrokenBarrierError:
            got.append("broken")

    th = threading.Thread(target=waiter)
    th.start()
    wait_for(lambda: barrier.n_waiting == 1, JOIN, "one waiter")
    barrier.abort()
    th.join(JOIN)
    assert got == ["broken"]
    assert barrier.broken is True
    assert barrier.n_waiting == 0
    barrier.reset()
    assert barrier.broken is False
    results, errors = run_threads(2, lambda i: barrier.wait(JOIN))
    assert sorted(results) == [0, 1] and not errors


def test_barrier_reset_breaks_current_waiters(ctx):
    barrier = ctx.Barrier(3)
    results: list = []

    def waiter():
        try:
            results.append(barrier.wait(JOIN))
        except threading.BrokenBarrierError:
            results.append("broken")

    threads = [threading.Thread(target=waiter) for _ in range(2)]
    for th in threads:
        th.start()
    wait_for(lambda: barrier.n_waiting == 2, JOIN, "two waiters")
    barrier.reset()
    for th in threads:
        th.join(JOIN)
    assert results == ["broken", "broken"]
    assert barrier.broken is False  # reset leaves it usable


def test_barrier_phases_across_processes(ctx, procs, queues):
    """Classic: three processes (two children and us) go through three phases
    in lock step; each phase's indices are 0..2."""
    barrier = ctx.Barrier(3)
    slots = ctx.Array("i", [-1, -1, -1])
    q = make_queue(ctx, queues)
    for i in (1, 2):
        start(procs, ctx, t.barrier_phases, barrier, slots, i, 3, q)
    t.barrier_phases(barrier, slots, 0, 3, q)
    reports = sorted(get_n(q, 3))
    for p in procs:
        assert joined(p) == 0
    assert [(i, ok) for i, ok, _ in reports] == [(0, True), (1, True), (2, True)]
    for phase in range(3):
        assert sorted(r[2][phase] for r in reports) == [0, 1, 2]


def test_barrier_abort_reaches_a_child(ctx, procs, queues):
    barrier = ctx.Barrier(2)
    q = make_queue(ctx, queues)
    p = start(procs, ctx, t.barrier_wait_report, barrier, q)
    wait_for(lambda: barrier.n_waiting == 1, JOIN, "the child waiting")
    barrier.abort()
    assert q.get(timeout=JOIN) == ("broken", None)
    assert joined(p) == 0


# =============================================================================
# Value and Array
# =============================================================================
def test_value_typecodes_and_ctypes(ctx):
    i = ctx.Value("i", 0)
    assert i.value == 0
    i.value = 7
    i.value += 1
    assert i.value == 8
    d = ctx.Value("d", 1.5)
    d.value *= 2
    assert d.value == 3.0
    c = ctx.Value(ctypes.c_int, 3)
    assert c.value == 3
    b = ctx.Value(ctypes.c_bool, True)
    assert b.value is True
    default = ctx.Value("i")
    assert default.value == 0


def test_value_get_lock_and_lock_false(ctx):
    v = ctx.Value("i", 1)
    lock = v.get_lock()
    with lock:
        v.value += 1
    assert v.get_lock().acquire(timeout=JOIN)
    v.get_lock().release()
    assert v.value == 2
    raw = ctx.Value("i", 5, lock=False)
    assert raw.value == 5
    with pytest.raises(AttributeError):
        raw.get_lock()
    given = ctx.RLock()
    with_lock = ctx.Value("i", 0, lock=given)
    with with_lock.get_lock():
        assert given.acquire(False) is True  # the same reentrant lock
        given.release()


def test_value_across_processes(ctx, procs):
    v = ctx.Value("d", 0.0)
    p = start(procs, ctx, t.set_value, v, 2.5)
    assert joined(p) == 0
    assert v.value == 2.5
    counter = counted_by_two(ctx, procs, 100)
    assert counter.value == 200


def test_sharedctypes_copy_and_synchronized(mp, ctx):
    """copy() makes a new shared value with the same contents; synchronized()
    puts a raw one behind a lock, sharing its data."""
    sharedctypes = importlib.import_module(mp.module.__name__ + ".sharedctypes")
    raw = ctx.RawValue("i", 3)
    copied = sharedctypes.copy(raw)
    raw.value = 5
    assert (copied.value, raw.value) == (3, 5)
    wrapped = sharedctypes.synchronized(raw)
    with wrapped.get_lock():
        wrapped.value += 1
    assert raw.value == 6 and repr(wrapped) == "<Synchronized wrapper for c_int(6)>"


def test_array_basics(ctx):
    a = ctx.Array("i", 10)
    assert len(a) == 10
    assert a[:] == [0] * 10
    a[3] = 5
    assert a[3] == 5
    assert a[-7] == 5
    assert a[2:5] == [0, 5, 0]
    a[0:3] = [1, 2, 3]
    assert a[:4] == [1, 2, 3, 5]
    assert list(a) == [1, 2, 3, 5, 0, 0, 0, 0, 0, 0]
    with pytest.raises(IndexError):
        a[10]
    d = ctx.Array("d", [1.0, 2.0])
    assert len(d) == 2 and d[:] == [1.0, 2.0]
    r = ctx.Array(ctypes.c_int, range(4))
    assert r[:] == [0, 1, 2, 3]
    with a.get_lock():
        a[9] = 9
    assert a[9] == 9
    raw = ctx.Array("i", 3, lock=False)
    assert list(raw) == [0, 0, 0]
    with pytest.raises(AttributeError):
        raw.get_lock()


def test_array_of_chars(ctx):
    s = ctx.Array("c", b"hello")
    assert len(s) == 5
    assert s.value == b"hello"
    assert s.raw == b"hello"
    assert s[0] == b"h"
    s.value = b"hi"
    assert s.value == b"hi"
    assert s[:2] == b"hi"


def test_array_across_processes(ctx, procs):
    a = ctx.Array("i", 5)
    p = start(procs, ctx, t.fill_array, a, 7)
    assert joined(p) == 0
    assert a[:] == [7] * 5


# =============================================================================
# Manager
# =============================================================================
@pytest.fixture(scope="module")
def manager(ctx):
    m = ctx.Manager()
    yield m
    m.shutdown()


def test_manager_dict_list_namespace(ctx, manager, procs):
    d = manager.dict({"count": 1})
    lst = manager.list(["a", "b"])
    ns = manager.Namespace()
    ns.total = 5
    ns.flag = False
    d["x"] = [1, 2]
    assert d["x"] == [1, 2] and len(d) == 2 and "x" in d
    assert sorted(d.keys()) == ["count", "x"]
    lst.append("c")
    assert lst[:] == ["a", "b", "c"] and len(lst) == 3
    p = start(procs, ctx, t.mutate_shared, d, lst, ns)
    assert joined(p) == 0
    assert d["child"] == p.pid and d["count"] == 2
    assert d.get("missing", "dflt") == "dflt"
    assert lst[:] == ["changed", "b", "c", "from child"]
    assert ns.flag is True and ns.total == 15
    assert dict(d.items())["count"] == 2
    d.update(y=3)
    assert d.pop("y") == 3
    with pytest.raises(KeyError):
        d["nope"]


def test_manager_queue_is_joinable(ctx, manager, procs):
    """Manager().Queue() proxies a queue.Queue: task_done() and join()."""
    q = manager.Queue()
    q.put("job")
    assert q.get(timeout=JOIN) == "job"
    q.task_done()
    q.join()  # every item was marked done: returns at once
    with pytest.raises(ValueError):
        q.task_done()


def test_manager_list_and_dict_repr_and_str(manager):
    """repr() is the proxy's own; str() is the referent's."""
    lst = manager.list([1, 2])
    d = manager.dict(a=1)
    assert repr(lst).startswith("<ListProxy object, typeid 'list' at 0x")
    assert repr(d).startswith("<DictProxy object, typeid 'dict' at 0x")
    assert (str(lst), str(d)) == ("[1, 2]", "{'a': 1}")
    assert [x for x in lst] == [1, 2] and list(d) == ["a"]


def test_manager_primitives(ctx, manager, procs):
    q = manager.Queue()
    lock = manager.Lock()
    event = manager.Event()
    value = manager.Value("i", 1)
    array = manager.Array("i", [0, 0, 0])
    assert value.value == 1
    assert len(array) == 3
    p = start(procs, ctx, t.managed_primitives, q, lock, event, value, array)
    assert event.wait(JOIN) is True
    assert q.get(timeout=JOIN) == "hello from child"
    assert joined(p) == 0
    assert value.value == 2
    assert array[0] == 42 and array[1] == 0
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)
    assert lock.acquire(timeout=JOIN) is True
    assert lock.acquire(False) is False
    lock.release()


def test_manager_as_context_manager(ctx):
    with ctx.Manager() as m:
        d = m.dict()
        d["a"] = 1
        lst = m.list(range(3))
        assert d.copy() == {"a": 1}
        assert list(lst) == [0, 1, 2]


def test_manager_register_user_class(mp, ctx, procs):
    with mp.manager_class(ctx=ctx) as m:
        counter = m.Counter(10)
        assert counter.add(5) == 15
        p = start(procs, ctx, t.use_counter, counter, 5)
        assert joined(p) == 0
        assert counter.get() == 20


def test_manager_primitives_repr_as_proxies(manager):
    """What a manager makes prints as the standard library's proxies."""
    for made, proxy, typeid in [(manager.Event(), "EventProxy", "Event"),
                                (manager.Lock(), "AcquirerProxy", "Lock"),
                                (manager.Condition(), "ConditionProxy", "Condition"),
                                (manager.Queue(), "AutoProxy[Queue]", "Queue")]:
        assert repr(made) == f"<{proxy} object, typeid {typeid!r} at {id(made):#x}>"


def test_manager_process_and_its_exit_code(ctx):
    """manager._process (private, read by CPython's tests): alive while the
    manager runs, exit code 0 once shutdown() returned."""
    m = ctx.Manager()
    try:
        assert m._process.is_alive() and m._process.exitcode is None
        assert isinstance(m._process.pid, int) and m._process.pid != os.getpid()
    finally:
        m.shutdown()
    assert m._process.exitcode == 0 and not m._process.is_alive()


def test_manager_registered_exposed_methods(mp, ctx):
    """A registered type's proxy has its public methods, or exactly those
    registered as ``exposed``; the manager refuses any other."""
    remote_error = importlib.import_module(mp.module.__name__ + ".managers").RemoteError
    with mp.manager_class(ctx=ctx) as m:
        counter, open_counter = m.Counter(1), m.OpenCounter(2)
        assert [n for n in ("add", "get", "_secret") if hasattr(counter, n)] == ["add", "get"]
        assert [n for n in ("add", "get", "_secret") if hasattr(open_counter, n)] == \
            ["get", "_secret"]
        assert open_counter._secret() == "private" and open_counter.get() == 2
        with pytest.raises(remote_error):
            counter._callmethod("_secret")


def test_manager_list_and_dict_iterate_lazily(manager):
    """A list proxy is read item by item; a dict proxy's iterator lives in
    the manager (a dict changed meanwhile raises RuntimeError)."""
    lst = manager.list(range(3))
    it = iter(lst)
    lst[0] = 100
    assert next(it) == 100
    assert list(it) == [1, 2] and list(it) == []
    d = manager.dict({1: "a", 2: "b"})
    it = iter(d)
    assert list(it) == [1, 2] and list(it) == []
    it = iter(d)
    d.clear()
    with pytest.raises(RuntimeError):
        next(it)


# =============================================================================
# Pool
# =============================================================================
def test_pool_apply(pool):
    assert pool.apply(t.square, (7,)) == 49
    assert pool.apply(t.add, (1,), {"b": 2}) == 3
    assert pool.apply(t.identity, (t.Point(1, 2),)) == t.Point(1, 2)
    assert pool.apply(t.getpid) != os.getpid()


def test_pool_apply_async_callbacks(pool):
    got: list = []
    done = threading.Event()

    def callback(result):
        got.append(result)
        done.set()

    r = pool.apply_async(t.square, (6,), callback=callback)
    assert r.get(timeout=JOIN) == 36
    assert done.wait(JOIN)
    assert got == [36]

    errors: list = []
    failed = threading.Event()

    def error_callback(exc):
        errors.append(exc)
        failed.set()

    r = pool.apply_async(t.fail_on, (3,), callback=callback, error_callback=error_callback)
    with pytest.raises(ValueError, match="bad item 3"):
        r.get(timeout=JOIN)
    assert failed.wait(JOIN)
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
    assert got == [36]  # callback not called for a failure
    assert r.successful() is False


def test_pool_async_result_timeout_ready_wait(ctx, pool):
    r = pool.apply_async(t.sleep_then, (0.5, "done"))
    assert r.ready() is False
    with pytest.raises(ValueError):
        r.successful()  # not ready yet
    with pytest.raises(ctx.TimeoutError):
        r.get(timeout=0.01)
    assert isinstance(ctx.TimeoutError(), Exception)
    r.wait(JOIN)
    assert r.ready() is True
    assert r.successful() is True
    assert r.get(timeout=0) == "done"
    r2 = pool.apply_async(t.sleep_then, (0.3,))
    r2.wait(0.01)  # returns on timeout without raising
    assert r2.get(timeout=JOIN) is None


def test_pool_idle_worker_takes_the_next_task(pool):
    """Pool(2): a short task submitted after a long one is done while the
    long one still runs."""
    slow = pool.apply_async(t.sleep_then, (2.0, "slow"))
    assert pool.apply(t.square, (3,)) == 9
    assert not slow.ready()
    assert slow.get(timeout=JOIN) == "slow"


def test_pool_map(pool):
    assert pool.map(t.square, range(20)) == [x * x for x in range(20)]
    assert pool.map(t.square, range(20), chunksize=3) == [x * x for x in range(20)]
    assert pool.map(t.square, range(20), 100) == [x * x for x in range(20)]
    assert pool.map(t.square, []) == []
    assert pool.map(t.square, iter(range(5))) == [0, 1, 4, 9, 16]


def test_pool_map_spreads_over_workers(pool):
    pids = set(pool.map(t.getpid, range(20), chunksize=1))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_pool_map_async(pool):
    got: list = []
    done = threading.Event()
    r = pool.map_async(t.square, range(10), callback=lambda res: (got.append(res), done.set()))
    assert r.get(timeout=JOIN) == [x * x for x in range(10)]
    assert done.wait(JOIN)
    assert got == [[x * x for x in range(10)]]
    r = pool.map_async(t.square, range(10), chunksize=4)
    r.wait(JOIN)
    assert r.successful() and r.get(0) == [x * x for x in range(10)]


def test_pool_imap(ctx, pool):
    assert list(pool.imap(t.square, range(30))) == [x * x for x in range(30)]
    assert list(pool.imap(t.square, range(30), chunksize=4)) == [x * x for x in range(30)]
    it = pool.imap(t.sleep_then, [0.5])
    with pytest.raises(ctx.TimeoutError):
        it.next(timeout=0.01)
    assert it.next(timeout=JOIN) is None
    with pytest.raises(StopIteration):
        next(it)


def test_pool_imap_unordered(pool):
    got = list(pool.imap_unordered(t.square, range(30)))
    assert sorted(got) == [x * x for x in range(30)]
    got = list(pool.imap_unordered(t.square, range(30), chunksize=7))
    assert sorted(got) == [x * x for x in range(30)]


def test_pool_starmap(pool):
    assert pool.starmap(t.add, [(1, 2), (3, 4), (5, 6)]) == [3, 7, 11]
    assert pool.starmap(t.add, [(i, i) for i in range(10)], chunksize=3) == [2 * i for i in range(10)]
    r = pool.starmap_async(t.add, [("a", "b"), ("c", "d")])
    assert r.get(timeout=JOIN) == ["ab", "cd"]


def _broken_iterable(good):
    """Yields 0..good-1, then raises."""
    yield from range(good)
    raise KeyError("the iterable broke")


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def test_pool_callback_runs_before_ready(pool):
    """wait() returns once the callback has run (or the error callback)."""
    seen = []
    pool.apply_async(t.square, (3,), callback=seen.append).wait(JOIN)
    assert seen == [9]
    pool.map_async(t.fail_on, [3], callback=seen.append, error_callback=seen.append).wait(JOIN)
    assert len(seen) == 2 and isinstance(seen[1], ValueError)


def test_pool_imap_iterable_that_raises(pool):
    """imap yields the results of the whole chunks before the iterable broke,
    then raises its exception."""
    it = pool.imap(t.square, _broken_iterable(3), 1)
    assert [next(it) for _ in range(3)] == [0, 1, 4]
    with pytest.raises(KeyError):
        next(it)
    it = pool.imap(t.square, _broken_iterable(7), 2)  # 6 = 3 whole chunks of 2
    assert [next(it) for _ in range(6)] == [0, 1, 4, 9, 16, 25]
    with pytest.raises(KeyError):
        next(it)


def test_pool_map_of_unpicklable_items_raises_their_error(pool):
    with pytest.raises(RuntimeError, match="cannot pickle this"):
        pool.map(t.square, [_Unpicklable()] * 3)
    assert pool.map(t.square, [2]) == [4]  # and the pool goes on


def test_pool_task_exceptions(pool):
    with pytest.raises(ValueError, match="bad item 3"):
        pool.apply(t.fail_on, (3,))
    with pytest.raises(ValueError, match="bad item 3"):
        pool.map(t.fail_on, range(6))
    with pytest.raises(ValueError):
        pool.starmap(t.fail_on, [(1,), (2, 2)])
    it = pool.imap(t.fail_on, range(5))
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError):
        next(it)
    assert next(it) == 4  # imap goes on past a failed item
    # The pool is still fine.
    assert pool.map(t.square, range(3)) == [0, 1, 4]


def test_pool_initializer_close_join(ctx, procs):
    pool = ctx.Pool(1, initializer=t.init_global, initargs=("set by initializer",))
    try:
        assert pool.apply(t.read_global) == "set by initializer"
        assert pool.map(t.read_global, range(3)) == ["set by initializer"] * 3
        pool.close()
        with pytest.raises(ValueError):
            pool.apply(t.square, (1,))  # not running
        pool.join()
    finally:
        pool.terminate()
        pool.join()


def test_pool_maxtasksperchild(ctx):
    pool = ctx.Pool(1, maxtasksperchild=1)
    try:
        pids = [pool.apply(t.getpid) for _ in range(3)]
        assert len(set(pids)) == 3  # a new worker for every task
        pool.close()
        pool.join()
    finally:
        pool.terminate()
        pool.join()


def test_pool_terminate(ctx):
    pool = ctx.Pool(1)
    try:
        worker = pool.apply(t.getpid)
        r = pool.apply_async(t.sleep_then, (60,))
        pool.terminate()
        pool.join()
        assert not wait_gone([worker], JOIN)
        assert not r.ready() or not r.successful()
    finally:
        pool.terminate()
        pool.join()


def test_pool_context_manager(ctx):
    with ctx.Pool(1) as pool:
        assert pool.map(t.square, [1, 2, 3]) == [1, 4, 9]
        worker = pool.apply(t.getpid)
    # __exit__ terminates the pool
    with pytest.raises(ValueError):
        pool.apply(t.square, (1,))
    pool.join()
    assert not wait_gone([worker], JOIN)


def test_pool_rejects_zero_processes(ctx):
    with pytest.raises(ValueError):
        ctx.Pool(0)


def test_classic_pool_over_a_list(ctx, pool):
    """Classic: the documentation's first example."""
    assert pool.map(t.square, [1, 2, 3]) == [1, 4, 9]
    words = ["spam", "eggs", "ham"]
    assert pool.map(len, words) == [4, 4, 3]


# =============================================================================
# concurrent.futures
# =============================================================================
@pytest.fixture(scope="module")
def executor(mp):
    ex = mp.executor(2)
    yield ex
    ex.shutdown(wait=True)


def test_executor_submit_result(executor):
    f = executor.submit(t.add, 2, b=3)
    assert f.result(timeout=JOIN) == 5
    assert f.done() and not f.cancelled()
    assert executor.submit(t.identity, t.Point(5, 6)).result(timeout=JOIN) == t.Point(5, 6)


def test_executor_map(executor):
    assert list(executor.map(t.square, range(10), timeout=JOIN)) == [x * x for x in range(10)]
    assert list(executor.map(t.add, [1, 2], [10, 20])) == [11, 22]
    assert list(executor.map(t.square, range(10), chunksize=3)) == [x * x for x in range(10)]


def test_executor_exception(executor):
    f = executor.submit(t.fail_on, 3)
    with pytest.raises(ValueError, match="bad item 3"):
        f.result(timeout=JOIN)
    assert isinstance(f.exception(timeout=JOIN), ValueError)
    it = executor.map(t.fail_on, range(5))
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError):
        next(it)


def test_executor_as_completed(executor):
    futures = {executor.submit(t.slow_square, x): x for x in range(6)}
    done = [f.result() for f in concurrent.futures.as_completed(futures, timeout=JOIN)]
    assert sorted(done) == [x * x for x in range(6)]


def test_executor_idle_worker_takes_the_next_task(executor):
    """With two workers, a short call submitted after a long one finishes
    first (it does not queue behind the long call while a worker idles)."""
    first = executor.submit(t.sleep_then, 2.0, "slow")
    second = executor.submit(t.square, 3)
    finished, _ = concurrent.futures.wait([first, second], timeout=JOIN,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
    assert second in finished and first not in finished
    assert first.result(timeout=JOIN) == "slow"


def test_executor_shutdown(mp):
    with mp.executor(1) as ex:
        f = ex.submit(t.sleep_then, 0.2, "done")
    assert f.done() and f.result() == "done"  # shutdown(wait=True) waited
    with pytest.raises(RuntimeError):
        ex.submit(t.square, 1)


# =============================================================================
# Classic programs
# =============================================================================
def test_classic_producer_consumer(ctx, procs, queues):
    """A producer and a consumer process over one Queue, ended by a sentinel."""
    q = make_queue(ctx, queues)
    results = make_queue(ctx, queues)
    cons = start(procs, ctx, t.consumer, q, results)
    prod = start(procs, ctx, t.producer, q, 500)
    assert results.get(timeout=30) == (500, sum(range(500)))
    assert joined(prod) == 0 and joined(cons) == 0
