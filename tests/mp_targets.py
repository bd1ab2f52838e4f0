"""Module-level targets for the multiprocessing tests (test_mp_semantics.py,
test_mp_specific.py): spawned children import this module by name, so every
function and class a child runs or unpickles lives here.

It imports only the standard library: the stdlib children of the semantics
suite must not pay for (or depend on) ``actors``. The one actors-specific
name, ``ActorsCounterManager``, is built on first access (module
``__getattr__``), so that pickling it by reference works in both worlds.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.managers import BaseManager


# -- plain values --------------------------------------------------------------
@dataclass
class Point:
    """An arbitrary picklable object (msgpack cannot carry it as such)."""
    x: int
    y: int
    tags: list = field(default_factory=list)


class Opaque:
    """A class instance with no dataclass sugar and a custom __eq__."""

    __slots__ = ("payload",)

    def __init__(self, payload):
        self.payload = payload

    def __eq__(self, other):
        return isinstance(other, Opaque) and other.payload == self.payload

    def __getstate__(self):
        return self.payload

    def __setstate__(self, state):
        self.payload = state


class Counter:
    """A user class registered with a BaseManager subclass."""

    def __init__(self, start=0):
        self.n = start

    def add(self, k):
        self.n += k
        return self.n

    def get(self):
        return self.n

    def _secret(self):
        return "private"


class StdCounterManager(BaseManager):
    pass


StdCounterManager.register("Counter", Counter)
StdCounterManager.register("OpenCounter", Counter, exposed=("get", "_secret"))


def _make_worker_process(base):
    class WorkerProcess(base):
        """A Process subclass overriding run(), with state of its own."""

        def __init__(self, q, factor):
            super().__init__(name="subclassed")
            self.q = q
            self.factor = factor

        def run(self):
            self.q.put((self.name, self.factor * 2))

    return WorkerProcess


def __getattr__(name):
    # Built lazily: only a run of that flavour (parent or child) touches it.
    if name in ("StdWorkerProcess", "ActorsWorkerProcess"):
        if name == "StdWorkerProcess":
            from multiprocessing.context import SpawnProcess as base
        else:
            from actors.mp import Process as base
        cls = _make_worker_process(base)
        cls.__module__, cls.__qualname__, cls.__name__ = __name__, name, name
        globals()[name] = cls
        return cls
    if name in ("StdReprProcess", "ActorsReprProcess"):
        if name == "StdReprProcess":
            from multiprocessing.context import SpawnProcess as base
        else:
            from actors.mp import Process as base
        cls = _repr_process_class(base)
        # named ReprProcess (its default name and repr say so), found by pickle as `name`
        cls.__module__, cls.__qualname__ = __name__, name
        globals()[name] = cls
        return cls
    if name == "ActorsCounterManager":
        import actors.mp.managers

        class ActorsCounterManager(actors.mp.managers.BaseManager):
            pass

        ActorsCounterManager.__module__ = __name__
        ActorsCounterManager.__qualname__ = "ActorsCounterManager"
        ActorsCounterManager.register("Counter", Counter)
        ActorsCounterManager.register("OpenCounter", Counter, exposed=("get", "_secret"))
        globals()[name] = ActorsCounterManager
        return ActorsCounterManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- Process targets -----------------------------------------------------------
def noop():
    pass


def send_args(q, *args, **kwargs):
    q.put((args, kwargs))


def sleep_for(seconds):
    time.sleep(seconds)  # simulated work


def set_then_sleep(event, seconds):
    event.set()
    time.sleep(seconds)  # simulated work: the parent ends it first


def raise_error():
    raise ValueError("raised in the child on purpose")


def exit_with(code):
    sys.exit(code)


def report_identity(q, mp_module_name):
    """Send back what the child knows about itself and its parent."""
    import importlib

    mp = importlib.import_module(mp_module_name)
    parent = mp.parent_process()
    me = mp.current_process()
    q.put({"name": me.name, "pid": os.getpid(), "current_pid": me.pid,
           "parent_pid": parent.pid if parent is not None else None})


def put_items(q, start, count):
    for i in range(start, start + count):
        q.put(i)


def put_objects(q, objects):
    for obj in objects:
        q.put(obj)


def put_then_set(q, event, count, big):
    """A burst of puts (every tenth item ``big`` bytes long, so batches
    also end on size), then an Event set: the puts must arrive first."""
    for i in range(count):
        q.put((i, b"x" * big) if i % 10 == 0 else i)
    event.set()


def put_from_threads(q, threads, count):
    """``threads`` threads each put (thread, i) for i in range(count)."""
    def run(n):
        for i in range(count):
            q.put((n, i))
    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def take_until_none(q, out):
    """Get items until None; put the list of them on ``out``."""
    got = []
    while True:
        item = q.get(timeout=30)
        if item is None:
            break
        got.append(item)
    out.put(got)


def echo_queue(inq, outq):
    """Get objects until None, put each back."""
    while True:
        item = inq.get(timeout=30)
        if item is None:
            return
        outq.put(item)


def producer(q, n, sentinel_count=1):
    for i in range(n):
        q.put(("item", i))
    for _ in range(sentinel_count):
        q.put(None)


def consumer(q, results):
    total = 0
    count = 0
    while True:
        item = q.get(timeout=30)
        if item is None:
            break
        total += item[1]
        count += 1
    results.put((count, total))


def joinable_worker(q, results):
    while True:
        item = q.get(timeout=30)
        if item is None:
            q.task_done()
            return
        results.put(item * 2)
        q.task_done()


def pipe_echo(conn):
    """Echo objects on a duplex connection until None; then close."""
    while True:
        obj = conn.recv()
        if obj is None:
            break
        conn.send(obj)
    conn.close()


def pipe_send_and_close(conn, objects):
    for obj in objects:
        conn.send(obj)
    conn.close()


def pipe_bytes_echo(conn):
    data = conn.recv_bytes()
    conn.send_bytes(data[::-1])
    conn.close()


# -- synchronisation targets ---------------------------------------------------
def hold_lock(lock, acquired, release):
    """Acquire, say so, hold until told, release."""
    with lock:
        acquired.set()
        release.wait(30)


def try_lock(lock, q):
    q.put(lock.acquire(block=False))


def increment_under_lock(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def increment_with_get_lock(counter, times):
    for _ in range(times):
        with counter.get_lock():
            counter.value += 1


def release_lock(lock, q):
    """Release a lock this process did not acquire (a Lock allows it)."""
    try:
        lock.release()
        q.put("released")
    except ValueError:
        q.put("ValueError")


def hold_value(value, acquired, release):
    """Under the value's own lock: set it to 5, say so, hold until told."""
    with value.get_lock():
        value.value = 5
        acquired.set()
        release.wait(30)


def take_in_turns(lock, progress, index, stop):
    """Take ``lock`` in a loop (50 times between two looks at ``stop``),
    publishing how many times in ``progress[index]``."""
    n = 0
    while not stop.is_set():
        for _ in range(50):
            with lock:
                n += 1
        progress[index] = n


def notify_under(cond, flag):
    with cond:
        flag.value = 1
        cond.notify_all()


def wait_event(event, q, timeout):
    q.put(event.wait(timeout))


def set_event(event):
    event.set()


def condition_waiter(cond, ready, flag, q):
    """Announce readiness under the condition, then wait for the flag."""
    with cond:
        ready.value = 1
        cond.notify_all()
        ok = cond.wait_for(lambda: flag.value == 1, timeout=30)
    q.put(ok)


def condition_plain_waiter(cond, ready, q):
    """Count myself in under the condition (no notify: that would wake the
    other waiters), then wait."""
    with cond:
        with ready.get_lock():
            ready.value += 1
        q.put(cond.wait(30))


def barrier_phases(barrier, slots, index, phases, q):
    """Each phase: write the phase into my slot, wait, check every slot, wait."""
    ok = True
    indices = []
    for phase in range(phases):
        slots[index] = phase
        indices.append(barrier.wait(30))
        if list(slots[:]) != [phase] * len(slots):
            ok = False
        barrier.wait(30)
    q.put((index, ok, indices))


def barrier_wait_report(barrier, q):
    import threading

    try:
        q.put(("index", barrier.wait(30)))
    except threading.BrokenBarrierError:
        q.put(("broken", None))


def fill_array(arr, value):
    with arr.get_lock():
        for i in range(len(arr)):
            arr[i] = value


def set_value(v, x):
    v.value = x


# -- Manager targets -----------------------------------------------------------
def mutate_shared(d, lst, ns):
    d["child"] = os.getpid()
    d["count"] = d.get("count", 0) + 1
    lst.append("from child")
    lst[0] = "changed"
    ns.flag = True
    ns.total = ns.total + 10


def managed_primitives(q, lock, event, value, array):
    with lock:
        value.value = value.value + 1
    array[0] = 42
    q.put("hello from child")
    event.set()


def use_counter(counter, times):
    for _ in range(times):
        counter.add(1)


# -- Pool tasks ----------------------------------------------------------------
def square(x):
    return x * x


def add(a, b):
    return a + b


def getpid(_=None):
    return os.getpid()


def slow_square(x, seconds=0.05):
    time.sleep(seconds)  # simulated work
    return x * x


def sleep_then(seconds, value=None):
    time.sleep(seconds)  # simulated work
    return value


def fail_on(x, bad=3):
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def identity(x):
    return x


_initialized = None


def init_global(value):
    global _initialized
    _initialized = value


def read_global(_=None):
    return _initialized


def kill_self_once(marker_dir, x, how="sigkill", bad=3):
    """On item ``bad``: the first time, leave a marker and die (SIGKILL or
    os._exit); once the marker exists, behave."""
    if x == bad:
        marker = os.path.join(marker_dir, f"killed-{x}")
        if not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            die(how)
    return x * x


def kill_self_always(how="sigkill"):
    die(how)


def kill_on(x, how="sigkill", bad=3):
    """Item ``bad`` kills its worker every time it runs."""
    if x == bad:
        die(how)
    return x * x


def die(how):
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(30)  # never reached: the signal is synchronous enough
    os._exit(7)


# -- actors.mp-only targets ----------------------------------------------------
def lock_and_exit(lock, acquired):
    lock.acquire()
    acquired.set()
    os._exit(1)


def lock_and_hang(lock, acquired):
    lock.acquire()
    acquired.set()
    time.sleep(60)  # the parent kills this process


def lease_and_hang(lock, leased):
    """Acquire and release (the lock stays lent here), say so, hang."""
    lock.acquire()
    lock.release()
    leased.set()
    time.sleep(60)  # the parent kills this process


def set_value_under_lock_and_hang(value, acquired):
    """Set the value to 7 under its own lock and hang holding it."""
    value.get_lock().acquire()
    value.value = 7
    acquired.set()
    time.sleep(60)  # the parent kills this process


def two_locks(first, second, barrier, q, name, timeout=None):
    """Take ``first``, meet the other child, then take ``second`` (blocking,
    or with ``timeout``); report the outcome: ok, timeout, or the exception's
    class name and message."""
    import actors

    first.acquire()
    try:
        barrier.wait(30)
        try:
            got = second.acquire(timeout=timeout)
        except Exception as e:  # noqa: BLE001 - reported to the parent, which judges it
            kind = "deadlock" if isinstance(e, actors.DeadlockError) else type(e).__name__
            q.put((name, os.getpid(), kind, str(e)))
            return
        if got:
            second.release()
            q.put((name, os.getpid(), "ok", ""))
        else:
            q.put((name, os.getpid(), "timeout", ""))
    finally:
        first.release()


def pid_then_sleep(marker_dir, seconds):
    """First run: write my pid to a marker and sleep (the parent kills me);
    a retry finds the marker and returns at once."""
    marker = os.path.join(marker_dir, "pid")
    if os.path.exists(marker):
        return "retried"
    tmp = marker + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, marker)
    time.sleep(seconds)  # simulated long work
    return "first run"


def _repr_process_class(base):
    class ReprProcess(base):
        """Reports repr(current_process()) from the child."""

        def __init__(self, q, mp_module_name):
            super().__init__()
            self.q = q
            self.mp_module_name = mp_module_name

        def run(self):
            import importlib
            mp = importlib.import_module(self.mp_module_name)
            self.q.put(repr(mp.current_process()))

    return ReprProcess


def put_value(value, q):
    """Put the Value's number on ``q`` (read without its lock)."""
    q.put(value.value)


def value_recalled_then_hang(value, first, read, second):
    """Under the value's own lock: set it to 7; once the parent has read it
    (calling the number back), read it again (it comes back here), add 2,
    and hang holding the lock."""
    value.get_lock().acquire()
    value.value = 7
    first.set()
    read.wait(30)
    value.value = value.value + 2
    second.set()
    time.sleep(60)  # the parent kills this process


def client_echo(mp_module_name, address, family, authkey, objects):
    """Connect to a Listener with this flavour's connection.Client, send
    each object, and exit 3 unless each comes back equal; then None."""
    import importlib

    connection = importlib.import_module(mp_module_name + ".connection")
    with connection.Client(address, family=family, authkey=authkey) as conn:
        for obj in objects:
            conn.send(obj)
            if conn.recv() != obj:
                sys.exit(3)
        conn.send(None)


def listen_and_report(mp_module_name, q):
    """Open a Listener on the default family's free address, report the
    address, and exit (the address's folder is this process's to clean)."""
    import importlib

    connection = importlib.import_module(mp_module_name + ".connection")
    listener = connection.Listener()
    q.put((listener.address, os.path.exists(listener.address)))
    listener.close()
